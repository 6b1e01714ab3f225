//! Scale-out on PostgreSQL (issue #22) with real processes: a run queued with `apply
//! --shared`, executed by several `tabflow worker` processes against the emulator serving a
//! generated site, the store in a real PostgreSQL. One worker is killed (SIGKILL) mid-run, or
//! paused (SIGSTOP) past its lease and then let go (SIGCONT): the run completes, every item is
//! written exactly as often as the plan changes it (the emulator's per-resource write counts),
//! and `audit verify` passes.
//!
//! PostgreSQL is `TABFLOW_TEST_PG_URL` (default 127.0.0.1:5432, database `test`, see
//! `support::pg_url`); these tests fail when it cannot be reached, unless TABFLOW_SKIP_PG=1,
//! which skips them with a message on stderr.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A generated site large enough for a few hundred moves, each request delayed.
pub(crate) fn generated(latency_ms: u64) -> Emu {
    serve_with(&["--scale", "1200", "--seed", "7", "--latency-ms", &latency_ms.to_string()])
}

/// Plans the archive of stale workbooks on the generated site; answers the plan file and
/// how many writes each item must get (one per change the plan makes to it).
pub(crate) fn plan(h: &Path, emu: &Emu, store: &str) -> (std::path::PathBuf, BTreeMap<String, u64>) {
    let path = h.join("plan.json");
    let o = cmd(
        h,
        emu,
        &[
            "plan",
            "--intent",
            "archive-stale-content",
            "--param",
            "stale_days=30",
            "--answer",
            "q1=archive-all",
            "--json",
            "-o",
            path.to_str().unwrap(),
        ],
    )
    .env("TABFLOW_STORE", store)
    .output()
    .unwrap();
    let plan = ok_json(&o, "plan");
    // Written on the site under their own id: workbooks and datasources (a created project
    // is posted to the collection).
    let mut writes: BTreeMap<String, u64> = BTreeMap::new();
    for s in plan["steps"].as_array().unwrap() {
        let content: std::collections::BTreeSet<&str> = s["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| matches!(i["type"].as_str(), Some("workbook" | "datasource")))
            .filter_map(|i| i["id"].as_str())
            .collect();
        for c in s["changes"].as_array().into_iter().flatten() {
            if let Some(id) = c["item"].as_str().filter(|id| content.contains(id)) {
                *writes.entry(id.to_string()).or_insert(0) += 1;
            }
        }
    }
    (path, writes)
}

/// Held by each test of several workers on PostgreSQL (here, `scale_limits`, `scale_purge`):
/// one at a time, since each starts up to four processes with a pool of up to 8 connections
/// (a server's default limit is 100) and measures timing that a neighbour's load would blur.
pub(crate) fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A spawned worker, killed when dropped if still running: a failed test must not leave
/// workers polling the store (each holds a pool of PostgreSQL connections).
pub(crate) struct Spawned(pub Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

pub(crate) fn worker(h: &Path, emu: &Emu, store: &str, lease: &str, log: &Path) -> Spawned {
    // Each worker signs in with a password: a PAT holds one session at a time (a second
    // sign-in with it ends the first, on Tableau as on the emulator).
    cmd(h, emu, &["worker", "--json", "--lease", lease, "--poll", "100", "--interval", "3600", "--no-purge"])
        .env_remove("TABLEAU_PAT_NAME")
        .env_remove("TABLEAU_PAT_SECRET")
        .env("TABLEAU_USERNAME", "admin")
        .env("TABLEAU_PASSWORD", "tabflow")
        .env("TABFLOW_STORE", store)
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(log.with_extension("err")).unwrap()))
        .spawn()
        .map(Spawned)
        .unwrap()
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(ok.success(), "kill {sig}");
}

pub(crate) fn wait_until(what: &str, secs: u64, f: impl FnMut() -> bool) {
    wait_until_or(what, secs, f, String::new)
}

/// [`wait_until`], and on a timeout `why()` (the workers' logs, the emulator's stats) in the
/// panic message, so that a run that never finishes says where it stopped.
pub(crate) fn wait_until_or(what: &str, secs: u64, mut f: impl FnMut() -> bool, why: impl Fn() -> String) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < until, "timed out after {secs} s waiting for {what}\n{}", why());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each planned item written exactly as often as the plan changes it; nothing else written.
pub(crate) fn written_once(emu: &Emu, expected: &BTreeMap<String, u64>) {
    let st = stats(emu);
    let by: BTreeMap<String, u64> = st["writes_by_resource"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .filter(|(k, _)| expected.contains_key(k))
        .collect();
    let twice: Vec<_> = by.iter().filter(|(k, n)| **n > expected[*k]).collect();
    assert!(twice.is_empty(), "items written more often than planned: {twice:?}");
    let missing: Vec<_> = expected.iter().filter(|(k, n)| by.get(*k).copied().unwrap_or(0) < **n).collect();
    assert!(
        missing.is_empty(),
        "items not written: {} of {}: {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
}

pub(crate) fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
        + &std::fs::read_to_string(path.with_extension("err")).unwrap_or_default()
}

#[test]
fn three_workers_share_a_run_and_one_killed_mid_run_writes_nothing_twice() {
    let _one = one_at_a_time();
    let Some(schema) = PgSchema::create("tabflow_scale") else { return };
    let store = schema.url();
    let emu = generated(20);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (plan_path, expected) = plan(h, &emu, &store);
    assert!(expected.len() >= 250, "the generated site gives {} items to move", expected.len());
    let o = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--shared", "--json"])
        .env("TABFLOW_STORE", &store)
        .output()
        .unwrap();
    let queued = ok_json(&o, "apply --shared");
    assert_eq!(queued["status"], "queued", "{queued}");
    let run_id = queued["run_id"].as_str().unwrap().to_string();
    let count = |sql: &str| schema.count(&sql.replace("{s}", &schema.name).replace("{r}", &run_id));
    assert_eq!(
        count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND status = 'pending'"),
        expected.len() as i64
    );
    // Nothing was written by `apply --shared` itself.
    assert_eq!(stats(&emu)["writes"], 0, "{}", stats(&emu));

    let logs: Vec<_> = (0..3).map(|i| h.join(format!("worker{i}.log"))).collect();
    let mut workers: Vec<Spawned> = logs.iter().map(|l| worker(h, &emu, &store, "3", l)).collect();
    // Mid-run: some items done, many left; then worker 0 is killed without any cleanup.
    wait_until("the first items done", 120, || {
        count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND status = 'done'") >= 40
    });
    let held = count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND status = 'claimed'");
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    let left = count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND status <> 'done'");
    assert!(left > 40, "the run was nearly over when the worker was killed ({left} left, {held} claimed)");

    // (The finisher records `run.finished` in the audit log just after the run's status.)
    wait_until("the run to finish", 300, || {
        count("SELECT count(*) FROM {s}.audit WHERE run_id = '{r}' AND action = 'run.finished'") >= 1
    });
    let status = run_status(&schema, &run_id);
    assert_eq!(status, "succeeded", "{}", logs.iter().map(|l| log_of(l)).collect::<String>());
    written_once(&emu, &expected);
    // Finished once, by one worker: the others, seeing the queue closed too, found the run
    // finished once they held its lease and left it alone.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        count("SELECT count(*) FROM {s}.audit WHERE run_id = '{r}' AND action IN ('run.finished', 'run.resumed')"),
        2,
        "the run was resumed and finished more than once: {}",
        logs.iter().map(|l| log_of(l)).collect::<String>()
    );
    // Every item's last journal phase is applied, once per item.
    assert_eq!(
        count(
            "SELECT count(DISTINCT item_id) FROM {s}.journal WHERE run_id = '{r}' AND phase IN ('applied', 'already-applied')"
        ),
        expected.len() as i64
    );
    // The surviving workers took part; the killed one's claims were taken over.
    let took_part = logs[1..].iter().filter(|l| log_of(l).contains("\"shared-pass\"")).count();
    assert!(took_part >= 1, "{}", log_of(&logs[1]));
    let o = cmd(h, &emu, &["audit", "verify"]).env("TABFLOW_STORE", &store).output().unwrap();
    assert!(o.status.success(), "audit verify: {}\n{}", text(&o.stderr), text(&o.stdout));

    // `worker status` reads the store; SIGTERM stops the others cleanly.
    let o = cmd(h, &emu, &["worker", "status", "--json"]).env("TABFLOW_STORE", &store).output().unwrap();
    ok_json(&o, "worker status");
    for w in &mut workers[1..] {
        signal(w, "-TERM");
        let st = w.wait().unwrap();
        assert!(st.success(), "a worker stopped by SIGTERM exits 0: {st:?}");
    }
    assert!(log_of(&logs[1]).contains("worker-stopped"), "{}", log_of(&logs[1]));
}

pub(crate) fn run_status(schema: &PgSchema, run_id: &str) -> String {
    for st in ["succeeded", "partial", "failed", "rolled-back", "running", "interrupted", "cancelled"] {
        let sql = format!("SELECT count(*) FROM {}.runs WHERE id = '{run_id}' AND status = '{st}'", schema.name);
        if schema.count(&sql) == 1 {
            return st.to_string();
        }
    }
    "unknown".into()
}

#[test]
fn a_paused_worker_past_its_lease_writes_nothing_after_the_takeover() {
    let _one = one_at_a_time();
    let Some(schema) = PgSchema::create("tabflow_scale_pause") else { return };
    let store = schema.url();
    let emu = generated(40);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (plan_path, expected) = plan(h, &emu, &store);
    assert!(expected.len() >= 250, "the generated site gives {} items to move", expected.len());
    let o = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--shared", "--json"])
        .env("TABFLOW_STORE", &store)
        .output()
        .unwrap();
    let run_id = ok_json(&o, "apply --shared")["run_id"].as_str().unwrap().to_string();
    let count = |sql: &str| schema.count(&sql.replace("{s}", &schema.name).replace("{r}", &run_id));

    let (log_a, log_b) = (h.join("a.log"), h.join("b.log"));
    let mut a = worker(h, &emu, &store, "2", &log_a);
    wait_until("worker A's first items", 120, || {
        count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND status = 'done'") >= 10
    });
    signal(&a, "-STOP");
    let paused_at = Instant::now();
    let a_claims = count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND status = 'claimed'");
    // B starts while A is paused; A's claims lapse after 2 s and B takes them over.
    let mut b = worker(h, &emu, &store, "2", &log_b);
    wait_until("the run to finish without A", 300, || {
        count("SELECT count(*) FROM {s}.audit WHERE run_id = '{r}' AND action = 'run.finished'") >= 1
    });
    assert!(paused_at.elapsed() > Duration::from_secs(2), "A was paused for less than its lease");
    let writes_before = stats(&emu)["writes"].as_u64().unwrap();
    signal(&a, "-CONT");
    // A wakes up: its claims are gone, its next journal write or Tableau call is refused.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        stats(&emu)["writes"].as_u64().unwrap(),
        writes_before,
        "A wrote after the takeover:\n{}",
        log_of(&log_a)
    );
    assert_eq!(run_status(&schema, &run_id), "succeeded", "{}", log_of(&log_b));
    written_once(&emu, &expected);
    if a_claims > 0 {
        assert!(
            count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND claims > 1") >= 1,
            "no claim was taken over"
        );
    }
    let o = cmd(h, &emu, &["audit", "verify"]).env("TABFLOW_STORE", &store).output().unwrap();
    assert!(o.status.success(), "audit verify: {}\n{}", text(&o.stderr), text(&o.stdout));
    for w in [&mut a, &mut b] {
        signal(w, "-TERM");
        assert!(w.wait().unwrap().success());
    }
}
