//! The engine through the real binary against `tabflow emulator serve` (real HTTP):
//! plan → apply → snapshot → rollback → snapshot equal; stale plans; fault trials; crash
//! trials with `kill -9` and `runs resume`; audit tampering.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const ARCHIVE: &str = "archive-stale-content project=Finance stale_days=90";
const OFFBOARD: &str = "offboard-user user=jsmith new_owner=Tom_Baker remove_access=true";

#[test]
fn plan_apply_snapshot_rollback_snapshot_equal() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before, _) = snapshot(h, &emu, "before.json");

    // Archive (moves, tags, a new locked project) + offboarding (owners, groups, site role,
    // explicit grants) + permission fixes on sensitive content.
    let (archive, pa) = plan_file(h, &emu, ARCHIVE, &["q1=archive-all"]);
    assert_eq!(pa["format"], "tabflow-plan/2");
    let moves = step(&pa, "archive-workbooks").unwrap();
    assert_eq!(moves["items"].as_array().unwrap().len(), 23, "the demo's Finance has 23 stale workbooks");
    assert!(pa["validation"]["ok"].as_bool().unwrap());
    let checks: Vec<&str> =
        pa["validation"]["findings"].as_array().unwrap().iter().map(|f| f["check"].as_str().unwrap()).collect();
    for c in ["destructive-operations", "permissions", "dependencies", "impact", "rollback"] {
        assert!(checks.contains(&c), "missing check {c}: {checks:?}");
    }

    // No approval → exit 3 and nothing changes.
    let s0 = state(&emu);
    let o = run(h, &emu, &["apply", archive.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(state(&emu), s0);

    let o = run(h, &emu, &["apply", archive.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r1: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r1["status"], "succeeded", "{r1}");
    // Exactly the planned workbooks moved to the new Archive project and were tagged.
    let (archived, site) = snapshot(h, &emu, "archived.json");
    let (_, d) = diff(h, &emu, &before, &archived, &[]);
    let planned: std::collections::BTreeSet<String> =
        moves["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    let dest = site["projects"].as_array().unwrap().iter().find(|p| p["name"] == "Archive").unwrap()["id"].clone();
    only_moved_and_tagged(&d, &planned, dest.as_str().unwrap());

    let (offboard, po) = plan_file(h, &emu, OFFBOARD, &[]);
    let kinds: Vec<&str> = po["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"transfer-ownership") && kinds.contains(&"remove-access"), "{kinds:?} {po}");
    let o = run(h, &emu, &["apply", offboard.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r2: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r2["status"], "succeeded", "{r2}");

    let (perms, _) = plan_file(h, &emu, "update-permissions tags=sensitive", &[]);
    let o = run(h, &emu, &["apply", perms.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r3: Value = serde_json::from_slice(&o.stdout).unwrap();

    let (during, _) = snapshot(h, &emu, "during.json");
    let (code, _) = diff(h, &emu, &before, &during, &[]);
    assert_eq!(code, Some(1), "the runs changed the site");

    // Undo newest first.
    for r in [&r3, &r2, &r1] {
        let id = r["run_id"].as_str().unwrap();
        let o = run(h, &emu, &["runs", "rollback", id, "--yes", "--json"]);
        assert!(o.status.success(), "rollback {id}: {}\n{}", text(&o.stderr), text(&o.stdout));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "rolled-back", "{v}");
    }
    let (after, _) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before, &after, &[]);
    assert_eq!(code, Some(0), "site differs after rollback: {d}");

    // Runs list, audit verify and export.
    let o = run(h, &emu, &["runs", "list", "--json"]);
    let runs: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    assert_eq!(runs[0]["id"], r3["run_id"], "newest first");
    let o = run(h, &emu, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    let o = run(h, &emu, &["audit", "export", "--format", "csv"]);
    let csv = text(&o.stdout);
    assert!(csv.starts_with("seq,at,actor"));
    assert!(csv.contains("test-operator"));
    assert!(!csv.contains("tabflow\",") || !csv.contains("PAT"), "no secrets in the audit export");
}

#[test]
fn a_stale_plan_skips_the_item_changed_meanwhile_and_reports_it() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (path, plan) = plan_file(h, &emu, ARCHIVE, &["q1=archive-all"]);
    let archive = step(&plan, "archive-workbooks").unwrap();
    let victim = archive["items"][0]["id"].as_str().unwrap().to_string();
    // Someone renames one workbook between plan and apply.
    rename_workbook(&emu, &victim, "Renamed by someone else");
    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "partial", "{r}");
    let skipped = r["skipped_items"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{r}");
    assert_eq!(skipped[0]["item_id"], victim.as_str());
    assert!(skipped[0]["reason"].as_str().unwrap().contains("after the plan"), "{r}");
    let s = state(&emu);
    let w = s["workbooks"].as_array().unwrap().iter().find(|w| w["id"] == victim.as_str()).unwrap();
    assert_eq!(w["name"], "Renamed by someone else");
    assert!(
        !w["tags"].as_array().unwrap().iter().any(|t| t == "archived-by-tabflow"),
        "the drifted item was not touched"
    );
}

/// The state a plan's archive step leads to: its workbooks in the target project, tagged.
fn expected_after(original: &Value, plan: &Value) -> Value {
    let mut v = original.clone();
    let archive = step(plan, "archive-workbooks").unwrap();
    for c in archive["changes"].as_array().unwrap() {
        let id = c["item"].as_str().unwrap();
        let w = v["workbooks"].as_array_mut().unwrap().iter_mut().find(|w| w["id"] == id).unwrap();
        match c["field"].as_str().unwrap() {
            "project" => w["project_id"] = c["after_id"].clone(),
            "tags" => w["tags"] = c["after"].clone(),
            _ => {}
        }
    }
    v
}

/// Trials run on fresh copies of one fixed site (`--keep-time`), so every trial's plan is the
/// same: a rollback would leave the archived workbooks "recently edited", which a new archive
/// plan rightly excludes. Each copy is another server, and a plan is bound to the server it
/// was made on, so each trial plans on its own copy.
struct Trials {
    site: std::path::PathBuf,
    original: Value,
    expected: Value,
}

fn trials(home: &Path) -> Trials {
    // The demo site exactly as served, frozen in time.
    let site = home.join("site.json");
    {
        let demo = serve();
        let body = http(&demo, "GET", "/_emulator/snapshot", "");
        let json = dechunk(&body[body.find('{').unwrap()..=body.rfind('}').unwrap()]);
        std::fs::write(&site, json).unwrap();
    }
    let emu = serve_with(&["--snapshot", site.to_str().unwrap(), "--keep-time"]);
    let original = state(&emu);
    let (_, p) = plan_file(home, &emu, ARCHIVE, &["q1=archive-all"]);
    let expected = expected_after(&original, &p);
    Trials { site, original, expected }
}

impl Trials {
    /// A fresh copy of the site and the archive plan made on it (in `home`'s store), which
    /// leads to the same state as every other trial's.
    fn fresh(&self, home: &Path) -> (Emu, std::path::PathBuf) {
        let emu = serve_with(&["--snapshot", self.site.to_str().unwrap(), "--keep-time"]);
        let (path, p) = plan_file(home, &emu, ARCHIVE, &["q1=archive-all"]);
        same(&expected_after(&self.original, &p), &self.expected, "every copy gets the same plan");
        (emu, path)
    }
}

#[test]
fn fault_trials_end_fully_applied_or_fully_restored() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut outcomes = std::collections::BTreeMap::new();
    // 50 different N over the run's 46 writes (23 moves, 23 tag writes) and beyond,
    // alternating a refused write (400: not retried, nothing changed → rollback) and a
    // dropped connection (change applied, answer lost → detected); then storms of 5xx
    // and 429 that the client's retries ride out.
    let mut trials: Vec<String> = (1..=50)
        .map(|n| {
            if n % 2 == 0 {
                format!(r#"{{"fail_nth_write": {n}, "error_status": 400}}"#)
            } else {
                format!(r#"{{"drop_nth_write": {n}}}"#)
            }
        })
        .collect();
    trials.push(r#"{"error_rate": 0.2, "error_status": 503}"#.into());
    trials.push(r#"{"rate_limit_per_s": 40}"#.into());
    let t = self::trials(h);
    let (original, expected) = (&t.original, &t.expected);
    for f in &trials {
        let (emu, path) = t.fresh(h);
        faults(&emu, f);
        let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
        faults(&emu, "{}");
        let r: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        let status = r["status"].as_str().unwrap_or("error").to_string();
        let now = state(&emu);
        match status.as_str() {
            "succeeded" => same(&now, expected, &format!("fault {f}: succeeded but the state is not the planned one")),
            "rolled-back" => {
                assert_eq!(o.status.code(), Some(4), "fault {f}");
                same(&now, original, &format!("fault {f}: not fully restored"));
            }
            other => panic!("fault {f}: run ended {other}: {}\n{}", text(&o.stdout), text(&o.stderr)),
        }
        *outcomes.entry(status).or_insert(0) += 1;
    }
    eprintln!("fault trials: {outcomes:?}");
    assert!(outcomes.get("rolled-back").copied().unwrap_or(0) >= 20, "{outcomes:?}");
    assert!(outcomes.get("succeeded").copied().unwrap_or(0) >= 20, "{outcomes:?}");
}

#[test]
fn crash_trials_resume_without_writing_twice() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut seed: u64 = 0x5EED;
    let mut rnd = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let mut resumed = 0;
    let t = self::trials(h);
    let (original, expected) = (&t.original, &t.expected);
    for trial in 0..20 {
        // Each trial has its own store, so "the newest run" is this trial's.
        let trial_home = h.join(format!("trial-{trial}"));
        std::fs::create_dir_all(&trial_home).unwrap();
        let h = trial_home.as_path();
        let (emu, path) = t.fresh(h);
        http(&emu, "POST", "/_emulator/stats/reset", "");
        // Half the trials die right after a journal intent is durable and before its write
        // (the worst moment); the other half get SIGKILL after a random delay. A latency
        // fault keeps the run in flight long enough to be killed mid-way.
        faults(&emu, r#"{"latency_ms": 15}"#);
        let mut c = cmd(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        if trial % 2 == 0 {
            c.env("TABFLOW_CRASH_AFTER", (1 + rnd(23)).to_string());
        }
        let mut child = c.spawn().unwrap();
        if trial % 2 == 1 {
            std::thread::sleep(Duration::from_millis(400 + rnd(1200)));
            let _ = child.kill();
        }
        let _ = child.wait();
        faults(&emu, "{}");
        let list: Value = serde_json::from_slice(&run(h, &emu, &["runs", "list", "--json"]).stdout).unwrap();
        let Some(newest) = list.as_array().unwrap().first() else {
            // Killed before the run started: nothing may have changed.
            same(&state(&emu), original, &format!("trial {trial}: killed before the run, yet the site changed"));
            continue;
        };
        let id = newest["id"].as_str().unwrap().to_string();
        if newest["status"] == "running" || newest["status"] == "rolling-back" {
            resumed += 1;
            let o = run(h, &emu, &["runs", "resume", &id, "--json"]);
            assert!(o.status.success(), "resume {id}: {}\n{}", text(&o.stderr), text(&o.stdout));
        }
        let shown: Value = serde_json::from_slice(&run(h, &emu, &["runs", "show", &id, "--json"]).stdout).unwrap();
        let st = shown["run"]["status"].as_str().unwrap().to_string();
        let now = state(&emu);
        match st.as_str() {
            "succeeded" => same(&now, expected, &format!("trial {trial}: resumed run did not reach the planned state")),
            "rolled-back" => same(&now, original, &format!("trial {trial}: rolled back but not restored")),
            other => panic!("trial {trial}: run {id} ended {other}"),
        }
        for (res, n) in stats(&emu)["writes_by_resource"].as_object().unwrap() {
            // One move and one tag write per workbook, each at most once.
            assert!(n.as_u64().unwrap() <= 2, "trial {trial}: {res} written {n} times");
        }
    }
    assert!(resumed >= 10, "only {resumed} of 20 trials were interrupted mid-run");
}

#[test]
fn editing_one_byte_of_the_audit_store_is_detected_and_named() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (path, _) = plan_file(h, &emu, ARCHIVE, &["q1=archive-all"]);
    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success());
    let o = run(h, &emu, &["audit", "verify"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    // The store checkpoints its WAL when a command closes it, so the records are in the
    // main file. Flip one hex digit of record 5's hash (audit-only text).
    let db = h.join("tabflow.db");
    assert!(std::fs::metadata(h.join("tabflow.db-wal")).map(|m| m.len() == 0).unwrap_or(true), "WAL not checkpointed");
    let records: Value =
        serde_json::from_slice(&run(h, &emu, &["audit", "export", "--format", "json"]).stdout).unwrap();
    let hash = records["records"][4]["hash"].as_str().unwrap().as_bytes().to_vec();
    let mut bytes = std::fs::read(&db).unwrap();
    let at =
        bytes.windows(hash.len()).position(|w| w == hash.as_slice()).expect("record 5's hash is in the store file");
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&db, &bytes).unwrap();
    let o = run(h, &emu, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(out.contains("TAMPERED") && (out.contains("record 5") || out.contains("record 6")), "{out}");
}
