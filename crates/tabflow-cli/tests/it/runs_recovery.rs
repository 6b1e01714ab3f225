//! Recovery of interrupted runs through the real binary (built by `cargo test` with the
//! engine's `test-hooks`) against `tabflow emulator serve`: a permission change stopped
//! between two of its calls is recognised as this run's own half-done change (not someone
//! else's), finished by `runs resume` and restored by `runs rollback`; a crash between the
//! quarantine move and the staged record is recovered by resume; the run's lease lets exactly
//! one of two concurrent resumes proceed and refuses a resume while another owner holds it.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

const REVOKE: &str = "audit-permissions tags=sensitive";
const DELETE: &str = "delete-content project=Finance stale_days=90";

/// Applies `plan` with `TABFLOW_CRASH_AT=point`; the process must die there. Answers the id
/// of the interrupted run.
fn crash_at(h: &Path, emu: &Emu, plan: &Path, point: &str) -> String {
    let o = cmd(h, emu, &["apply", plan.to_str().unwrap(), "--approve", "all", "--json"])
        .env("TABFLOW_CRASH_AT", point)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(137), "no simulated crash at {point}: {}\n{}", text(&o.stderr), text(&o.stdout));
    assert!(text(&o.stderr).contains(&format!("simulated crash at {point}")), "{}", text(&o.stderr));
    let list = run_json(h, emu, &["runs", "list", "--json"]);
    let newest = &list[0];
    assert_eq!(newest["status"], "running", "{newest}");
    newest["id"].as_str().unwrap().to_string()
}

/// The All Users capabilities left on the items of the plan's permission step.
fn all_users_rules(h: &Path, emu: &Emu, plan: &Value, name: &str) -> usize {
    let (_, site) = snapshot(h, emu, name);
    let all_users = site["groups"].as_array().unwrap().iter().find(|g| g["name"] == "All Users").unwrap()["id"].clone();
    let items: Vec<&str> = step(plan, "update-permissions").unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    site["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| items.contains(&r["resource"]["id"].as_str().unwrap_or("")) && r["grantee"]["id"] == all_users)
        .map(|r| r["capabilities"].as_object().map_or(0, |c| c.len()))
        .sum()
}

#[test]
fn a_permission_change_stopped_between_calls_is_finished_by_resume_and_restored_by_rollback() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, _) = snapshot(h, &emu, "before.json");
    let (plan_path, plan) = plan_file(h, &emu, REVOKE, &["q1=revoke"]);
    let planned_rules = all_users_rules(h, &emu, &plan, "planned.json");
    assert!(planned_rules > 1, "the revocation needs several calls");
    let run_id = crash_at(h, &emu, &plan_path, "between-calls");
    // Half-way: some of the first item's capabilities are gone, not all.
    let left = all_users_rules(h, &emu, &plan, "half.json");
    assert!(left > 0 && left < planned_rules, "{left} of {planned_rules} capabilities left");

    // Resume finishes it: the half-done item is this run's own change, not drift.
    let r = run_json(h, &emu, &["runs", "resume", &run_id, "--json"]);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["skipped_items"], serde_json::json!([]), "the run's own half-done change was taken for drift: {r}");
    assert_eq!(all_users_rules(h, &emu, &plan, "done.json"), 0);
    // Resumed again, the finished run is refused at once: nothing is said to resume.
    let again = run(h, &emu, &["runs", "resume", &run_id]);
    let err = text(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(err.contains("is succeeded; only unfinished runs") && !err.contains("Resuming run"), "{err}");

    // Rollback restores the before-image journalled before the first call.
    let v = run_json(h, &emu, &["runs", "rollback", &run_id, "--yes", "--json"]);
    assert_eq!(v["status"], "rolled-back", "{v}");
    let (after_path, _) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &[]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "rollback left differences: {d}");
}

#[test]
fn a_permission_change_stopped_between_calls_is_restored_by_rollback() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, _) = snapshot(h, &emu, "before.json");
    let (plan_path, _) = plan_file(h, &emu, REVOKE, &["q1=revoke"]);
    let run_id = crash_at(h, &emu, &plan_path, "between-calls");
    let v = run_json(h, &emu, &["runs", "rollback", &run_id, "--yes", "--json"]);
    assert_eq!(v["status"], "rolled-back", "{v}");
    assert_eq!(v["not_restored"], serde_json::json!([]), "{v}");
    let (after_path, _) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &[]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "rollback left differences: {d}");
}

#[test]
fn a_crash_between_the_quarantine_move_and_the_staged_record_is_recovered_by_resume() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, _) = snapshot(h, &emu, "before.json");
    let (plan_path, plan) = plan_file(h, &emu, DELETE, &["q1=delete-all"]);
    let planned = step(&plan, "stage-delete").unwrap()["items"].as_array().unwrap().len();
    let run_id = crash_at(h, &emu, &plan_path, "before-staged-record");
    // The first item is in quarantine, with nothing recorded as staged.
    let p = run_json(h, &emu, &["runs", "purge", "--yes", "--json"]);
    assert_eq!(p["waiting"], serde_json::json!([]), "{p}");

    let r = run_json(h, &emu, &["runs", "resume", &run_id, "--json"]);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["staged"]["items"], planned, "every quarantined item is recorded as staged: {r}");
    let p = run_json(h, &emu, &["runs", "purge", "--yes", "--json"]);
    assert_eq!(p["waiting"].as_array().unwrap().len(), planned, "{p}");

    // And the rollback brings every one back.
    let v = run_json(h, &emu, &["runs", "rollback", &run_id, "--yes", "--json"]);
    assert_eq!(v["status"], "rolled-back", "{v}");
    let (after_path, _) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &[]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "rollback left differences: {d}");
    let p = run_json(h, &emu, &["runs", "purge", "--yes", "--now", "--json"]);
    assert_eq!(p["purged"], serde_json::json!([]), "{p}");
}

/// Sets the run's lease in the store as another process on another host would hold it.
fn lease_elsewhere(h: &Path, run_id: &str, owner: &str, until: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", h.join("tabflow.db").display());
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        sqlx::query(
            "UPDATE runs SET lease_owner = $1, lease_expires_at = $2, lease_epoch = lease_epoch + 1 WHERE id = $3",
        )
        .bind(owner)
        .bind(until)
        .bind(run_id)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
}

#[test]
fn a_resume_is_refused_while_another_owner_holds_the_lease_and_proceeds_once_it_lapses() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (plan_path, _) = plan_file(h, &emu, REVOKE, &["q1=revoke"]);
    let run_id = crash_at(h, &emu, &plan_path, "between-calls");
    let far = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    lease_elsewhere(h, &run_id, "other-host:4242:abcd1234", &far);
    let writes = stats(&emu)["writes"].clone();
    let o = run(h, &emu, &["runs", "resume", &run_id, "--json"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("other-host:4242:abcd1234") && err.contains(&far[..16].replace('T', " ")), "{err}");
    assert_eq!(stats(&emu)["writes"], writes, "a refused resume wrote to the site");
    let o = run(h, &emu, &["runs", "rollback", &run_id, "--yes", "--json"]);
    assert!(!o.status.success() && text(&o.stderr).contains("other-host:4242:abcd1234"), "{}", text(&o.stderr));
    // Lapsed: the resume takes it over.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    lease_elsewhere(h, &run_id, "other-host:4242:abcd1234", &past);
    let r = run_json(h, &emu, &["runs", "resume", &run_id, "--json"]);
    assert_eq!(r["status"], "succeeded", "{r}");
}

#[test]
fn of_two_concurrent_resumes_of_one_run_exactly_one_proceeds() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (plan_path, _) = plan_file(h, &emu, DELETE, &["q1=delete-all"]);
    let run_id = crash_at(h, &emu, &plan_path, "before-staged-record");
    // Slow calls keep the winner busy while the other one tries.
    faults(&emu, r#"{"latency_ms": 40}"#);
    let spawn = || {
        cmd(h, &emu, &["runs", "resume", &run_id, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    faults(&emu, "{}");
    let (won, lost): (Vec<_>, Vec<_>) = [a, b].into_iter().partition(|o| o.status.success());
    assert_eq!((won.len(), lost.len()), (1, 1), "exactly one resume proceeds");
    let err = text(&lost[0].stderr);
    assert!(err.contains("is being executed by") && err.contains("lease runs until"), "{err}");
    let r: Value = serde_json::from_slice(&won[0].stdout).unwrap();
    assert_eq!(r["status"], "succeeded", "{r}");
    let shown = run_json(h, &emu, &["runs", "show", &run_id, "--json"]);
    assert_eq!(shown["run"]["status"], "succeeded", "{shown}");
    assert_eq!(shown["run"]["lease_owner"], Value::Null, "the lease is released: {shown}");
}

/// (runs, journal entries) in the test's SQLite store, and the newest run's id.
fn store_counts(h: &Path) -> (i64, i64, Option<String>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let db = h.join("tabflow.db");
        if !db.exists() {
            return (0, 0, None);
        }
        let url = format!("sqlite://{}", db.display());
        let Ok(pool) = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await else {
            return (0, 0, None);
        };
        let count = |q: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query_scalar::<_, i64>(q).fetch_one(&pool).await.unwrap_or(0) }
        };
        let runs = count("SELECT COUNT(*) FROM runs").await;
        let journal = count("SELECT COUNT(*) FROM journal").await;
        let id = sqlx::query_scalar::<_, String>("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1")
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
        pool.close().await;
        (runs, journal, id)
    })
}

#[test]
fn a_run_whose_lease_is_taken_over_stops_without_further_writes() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (plan_path, _) = plan_file(h, &emu, DELETE, &["q1=delete-all"]);
    faults(&emu, r#"{"latency_ms": 60}"#);
    let child = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run has journalled its first intent, another process takes its lease over.
    let started = std::time::Instant::now();
    let run_id = loop {
        let (_, journal, id) = store_counts(h);
        if journal > 0 {
            break id.unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let far = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    lease_elsewhere(h, &run_id, "thief-host:7:feedbeef", &far);
    let (_, journal_at_takeover, _) = store_counts(h);
    let o = child.wait_with_output().unwrap();
    faults(&emu, "{}");
    assert!(!o.status.success(), "the run went on after losing its lease: {}", text(&o.stdout));
    assert!(text(&o.stderr).contains("lease lost"), "{}", text(&o.stderr));
    // Nothing more in its journal, and the run is left to the new holder (not closed).
    let (_, journal_after, _) = store_counts(h);
    assert_eq!(journal_after, journal_at_takeover, "a fenced journal write landed");
    let shown = run_json(h, &emu, &["runs", "show", &run_id, "--json"]);
    assert_eq!(shown["run"]["status"], "running", "{shown}");
    assert_eq!(shown["run"]["lease_owner"], "thief-host:7:feedbeef", "{shown}");
}
