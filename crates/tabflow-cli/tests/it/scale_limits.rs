//! Scale-out on PostgreSQL (issue #22): the site's limits hold across workers, and staged
//! purges are claimed. Real `tabflow worker` processes share one store in a real PostgreSQL
//! and one emulator, which counts what arrives: the most API requests in flight at once, the
//! most in any one second, the 429s it answered and the requests that came while a
//! Retry-After it announced was still running, and the DELETEs per item.
//!
//! PostgreSQL as in `scale_out` (`TABFLOW_TEST_PG_URL`, TABFLOW_SKIP_PG=1 skips).

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::scale_out::{
    Spawned, log_of, one_at_a_time, plan, run_status, signal, wait_until, wait_until_or, written_once,
};
use crate::support::*;

/// A `tabflow worker` on `store` (password sign-in, one session per process), with `extra`.
fn worker(h: &Path, emu: &Emu, store: &str, log: &Path, extra: &[&str]) -> Spawned {
    cmd(h, emu, &[&["worker", "--json", "--poll", "100", "--interval", "3600"][..], extra].concat())
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

fn sign_ins(emu: &Emu) -> u64 {
    stats(emu)["by_route"]["POST /api/{v}/auth/signin"].as_u64().unwrap_or(0)
}

fn reset_stats(emu: &Emu) {
    http(emu, "POST", "/_emulator/stats/reset", "");
}

fn stop(workers: &mut [Spawned]) {
    for w in workers {
        signal(w, "-TERM");
        assert!(w.wait().unwrap().success(), "a worker stopped by SIGTERM exits 0");
    }
}

/// Four workers started (each signed in, idle), then a shared run queued on the store:
/// answers the workers, their logs, the run id and the items to write. The emulator's stats
/// are reset once the run is queued, so they hold the workers' calls only (the sign-ins and
/// `apply --shared`'s own calls are not gated by the store's limits).
fn four_workers_on_a_queued_run(
    h: &Path,
    emu: &Emu,
    store: &str,
    limits: &[&str],
) -> (Vec<Spawned>, Vec<std::path::PathBuf>, String, std::collections::BTreeMap<String, u64>) {
    let (plan_path, expected) = plan(h, emu, store);
    let logs: Vec<_> = (0..4).map(|i| h.join(format!("worker{i}.log"))).collect();
    reset_stats(emu);
    let workers: Vec<Spawned> = logs
        .iter()
        .map(|l| worker(h, emu, store, l, &[&["--lease", "5", "--no-purge"][..], limits].concat()))
        .collect();
    wait_until("four workers signed in", 60, || sign_ins(emu) >= 4);
    let o = cmd(h, emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--shared", "--json"])
        .env("TABFLOW_STORE", store)
        .output()
        .unwrap();
    let run_id = ok_json(&o, "apply --shared")["run_id"].as_str().unwrap().to_string();
    reset_stats(emu);
    (workers, logs, run_id, expected)
}

/// What a run that did not finish left behind: its work items by state, the site's limits
/// row, the emulator's stats and the last lines of each worker's log.
fn diagnose(schema: &PgSchema, emu: &Emu, logs: &[std::path::PathBuf], run_id: &str) -> String {
    let mut out = String::new();
    for state in ["pending", "claimed", "done"] {
        let sql =
            format!("SELECT count(*) FROM {}.work_items WHERE run_id = '{run_id}' AND status = '{state}'", schema.name);
        out += &format!("work items {state}: {}\n", schema.count(&sql));
    }
    out += &format!("run status: {}\nemulator: {}\n", run_status(schema, run_id), stats(emu));
    for l in logs {
        let log = log_of(l);
        let lines: Vec<&str> = log.lines().collect();
        out += &format!("--- {} (last 40 of {} lines)\n", l.display(), lines.len());
        out += &lines[lines.len().saturating_sub(40)..].join("\n");
        out += "\n";
    }
    out
}

fn finished(schema: &PgSchema, run_id: &str) -> bool {
    let sql =
        format!("SELECT count(*) FROM {}.audit WHERE run_id = '{run_id}' AND action = 'run.finished'", schema.name);
    schema.count(&sql) >= 1
}

/// The run was resumed and finished by one worker only (several may see its queue closed;
/// the others find it finished once they hold its lease and leave it alone).
fn finished_once(schema: &PgSchema, run_id: &str, logs: &[std::path::PathBuf]) {
    std::thread::sleep(std::time::Duration::from_secs(1));
    let sql = format!(
        "SELECT count(*) FROM {}.audit WHERE run_id = '{run_id}' AND action IN ('run.finished', 'run.resumed')",
        schema.name
    );
    let all_logs: String = logs.iter().map(|l| log_of(l)).collect();
    assert_eq!(schema.count(&sql), 2, "the run was resumed and finished more than once: {all_logs}");
}

fn audit_verifies(h: &Path, emu: &Emu, store: &str) {
    let o = cmd(h, emu, &["audit", "verify"]).env("TABFLOW_STORE", store).output().unwrap();
    assert!(o.status.success(), "audit verify: {}\n{}", text(&o.stderr), text(&o.stdout));
}

#[test]
fn four_workers_together_stay_within_the_sites_concurrency_and_rate() {
    let _one = one_at_a_time();
    let Some(schema) = PgSchema::create("tabflow_limits") else { return };
    let store = schema.url();
    // 100 ms a call: three in flight allow 30 calls a second, just above the rate of 25.
    let emu = serve_with(&["--scale", "600", "--seed", "7", "--latency-ms", "100"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let limits = ["--site-concurrency", "3", "--site-rate", "25"];
    let (mut workers, logs, run_id, expected) = four_workers_on_a_queued_run(h, &emu, &store, &limits);
    assert!(expected.len() >= 60, "the generated site gives {} items to move", expected.len());
    let started = std::time::Instant::now();
    wait_until_or("the run to finish", 300, || finished(&schema, &run_id), || diagnose(&schema, &emu, &logs, &run_id));
    let took = started.elapsed();
    let st = stats(&emu);
    let all_logs: String = logs.iter().map(|l| log_of(l)).collect();
    assert_eq!(run_status(&schema, &run_id), "succeeded", "{all_logs}");
    written_once(&emu, &expected);
    finished_once(&schema, &run_id, &logs);
    // Never more than the site's limits, all four workers together: without the shared gate
    // each worker has 8 calls in flight (32 together) and nothing holds them to 25 a second.
    let (in_flight, per_second) = (st["in_flight_max"].as_u64().unwrap(), st["max_per_second"].as_u64().unwrap());
    assert!(in_flight <= 3, "{in_flight} calls were in flight at once (limit 3): {st}");
    assert!(per_second <= 25, "{per_second} calls arrived within one second (limit 25): {st}");
    // The limits were reached, not just respected by a slow run.
    assert!(in_flight >= 2, "the workers' calls never overlapped: {st}");
    let requests = st["requests"].as_u64().unwrap();
    eprintln!(
        "{} items, {requests} calls in {took:?}: at most {in_flight} in flight, {per_second} in one second",
        expected.len()
    );
    assert!(requests > 100, "{st}");
    assert!(
        took.as_secs_f64() >= requests as f64 / 25.0 * 0.9,
        "{requests} calls in {took:?} is faster than 25 a second"
    );
    let took_part = logs.iter().filter(|l| log_of(l).contains("\"shared-pass\"")).count();
    assert!(took_part >= 2, "only {took_part} worker(s) took part: {all_logs}");
    audit_verifies(h, &emu, &store);
    stop(&mut workers);
}

#[test]
fn a_429_pauses_every_worker_not_only_the_one_that_got_it() {
    let _one = one_at_a_time();
    let Some(schema) = PgSchema::create("tabflow_limits_429") else { return };
    let store = schema.url();
    let emu = serve_with(&["--scale", "300", "--seed", "7", "--latency-ms", "20"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // One call at a time across the workers (so a call of another worker cannot already be
    // on its way when the 429 arrives); a rate the site refuses well before.
    let limits = ["--site-concurrency", "1", "--site-rate", "1000"];
    let (mut workers, logs, run_id, expected) = four_workers_on_a_queued_run(h, &emu, &store, &limits);
    assert!(expected.len() >= 30, "the generated site gives {} items to move", expected.len());
    faults(&emu, r#"{"rate_limit_per_s": 15}"#);
    // The pause is kept in the site's row of the store, where every worker reads it.
    let paused_now = format!(
        "SELECT count(*) FROM {}.site_limits WHERE paused_until_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint",
        schema.name
    );
    let mut saw_pause = false;
    wait_until_or(
        "the run to finish",
        300,
        || {
            saw_pause |= schema.count(&paused_now) > 0;
            finished(&schema, &run_id)
        },
        || diagnose(&schema, &emu, &logs, &run_id),
    );
    assert!(saw_pause, "no pause was ever recorded in the store");
    let o = cmd(h, &emu, &["worker", "status", "--json"]).env("TABFLOW_STORE", &store).output().unwrap();
    let status = ok_json(&o, "worker status");
    assert_eq!(status["sites"][0]["in_flight"], 1, "{status}");
    assert_eq!(status["sites"][0]["per_second"], 1000, "{status}");
    let st: Value = stats(&emu);
    let all_logs: String = logs.iter().map(|l| log_of(l)).collect();
    assert_eq!(run_status(&schema, &run_id), "succeeded", "{all_logs}");
    written_once(&emu, &expected);
    finished_once(&schema, &run_id, &logs);
    eprintln!(
        "{} items, {} calls, {} answered 429, {} during a Retry-After",
        expected.len(),
        st["requests"],
        st["rate_limited"],
        st["during_retry_after"]
    );
    assert!(st["rate_limited"].as_u64().unwrap() >= 2, "the site never answered 429: {st}");
    // After each 429 nobody called until its Retry-After had passed: the pause reached every
    // worker through the store, not only the one that got the 429.
    assert_eq!(st["during_retry_after"], 0, "calls arrived during a Retry-After: {st}\n{all_logs}");
    let took_part = logs.iter().filter(|l| log_of(l).contains("\"shared-pass\"")).count();
    assert!(took_part >= 2, "only {took_part} worker(s) took part: {all_logs}");
    audit_verifies(h, &emu, &store);
    stop(&mut workers);
}

#[test]
fn workers_starting_at_once_sign_in_within_the_sites_concurrency() {
    let _one = one_at_a_time();
    let Some(schema) = PgSchema::create("tabflow_limits_signin") else { return };
    let store = schema.url();
    // 300 ms a call: four workers starting together would have their serverInfo and sign-in
    // calls in flight at once if the sign-in were not gated.
    let emu = serve_with(&["--scale", "50", "--seed", "7", "--latency-ms", "300"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    reset_stats(&emu);
    let logs: Vec<_> = (0..4).map(|i| h.join(format!("worker{i}.log"))).collect();
    let mut workers: Vec<Spawned> = logs
        .iter()
        .map(|l| worker(h, &emu, &store, l, &["--no-purge", "--site-concurrency", "1", "--site-rate", "100"]))
        .collect();
    let all_logs = || logs.iter().map(|l| log_of(l)).collect::<String>();
    // A worker asks serverInfo and signs in at once (each admitted by the gate on its own).
    let server_infos = || stats(&emu)["by_route"]["GET /api/{v}/serverInfo"].as_u64().unwrap_or(0);
    wait_until_or("four workers signed in", 120, || sign_ins(&emu) >= 4 && server_infos() >= 4, all_logs);
    let st = stats(&emu);
    assert!(st["requests"].as_u64().unwrap() >= 8, "serverInfo and a sign-in each: {st}");
    assert_eq!(st["in_flight_max"], 1, "the workers' first calls overlapped (site limit 1): {st}\n{}", all_logs());
    stop(&mut workers);
}
