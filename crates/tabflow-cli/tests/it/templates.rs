//! `tabflow templates` and `tabflow schedule add` + `tabflow worker --once` end to end: the
//! built-ins listed, a plan saved as a template and run again (same steps and items), bad
//! parameters refused with exit 2, a weekly review added in a time zone and fired by one
//! worker pass at its time (and not again).

use serde_json::Value;

use crate::support::*;

/// Per step: kind and item ids (what decides what a plan touches).
fn shape(plan: &Value) -> Vec<(String, Vec<String>)> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let items = s["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
            (s["kind"].as_str().unwrap().to_string(), items)
        })
        .collect()
}

#[test]
fn a_plan_saved_as_a_template_runs_again_as_the_same_plan_and_bad_parameters_are_refused() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let list = run_json(h, &emu, &["templates", "list", "--json"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for n in ["audit-permissions", "archive-stale-content", "offboard-user", "delete-content", "migrate-datasource"] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }

    let plan_path = h.join("plan.json");
    let original = run_json(
        h,
        &emu,
        &[
            "plan",
            "--intent",
            "archive-stale-content",
            "--param",
            "project=Finance",
            "--param",
            "stale_days=60",
            "--answer",
            "q1=archive-all",
            "--json",
            "-o",
            plan_path.to_str().unwrap(),
        ],
    );
    let saved = run_json(
        h,
        &emu,
        &[
            "templates",
            "save",
            "finance-cleanup",
            "--from-plan",
            plan_path.to_str().unwrap(),
            "--param-keys",
            "project",
            "--json",
        ],
    );
    assert_eq!(saved["version"], 1, "{saved}");
    assert_eq!(saved["params"]["project"]["default"], "Finance", "{saved}");
    let again = run_json(h, &emu, &["templates", "run", "finance-cleanup", "--answer", "q1=archive-all", "--json"]);
    assert_eq!(shape(&again), shape(&original));
    assert!(
        again["notes"].as_array().unwrap().iter().any(|n| n == "Made from template finance-cleanup@v1 (stored)"),
        "{again}"
    );

    let shown = run(h, &emu, &["templates", "show", "finance-cleanup"]);
    assert!(shown.status.success());
    assert!(text(&shown.stdout).contains("name = \"finance-cleanup\""), "{}", text(&shown.stdout));

    let bad = run(h, &emu, &["templates", "run", "finance-cleanup", "--param", "stale_days=30"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    let err = text(&bad.stderr);
    assert!(err.contains("'stale_days' is not a parameter of finance-cleanup"), "{err}");
    assert!(err.contains("hint: give --param K=V for: project (text, default Finance)"), "{err}");
    let bad = run(
        h,
        &emu,
        &["templates", "run", "archive-stale-content", "--param", "project=Finance", "--param", "stale_days=many"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("stale_days must be a whole number, not many"), "{}", text(&bad.stderr));

    // A second save is version 2; the first stays readable.
    let v2 = run_json(
        h,
        &emu,
        &["templates", "save", "finance-cleanup", "--from-plan", plan_path.to_str().unwrap(), "--json"],
    );
    assert_eq!(v2["version"], 2);
    let v1 = run_json(h, &emu, &["templates", "show", "finance-cleanup", "--version", "1", "--json"]);
    assert!(v1["params"].get("stale_days").is_none(), "{v1}");
    assert!(run(h, &emu, &["templates", "delete", "finance-cleanup"]).status.success());
    assert_eq!(run(h, &emu, &["templates", "show", "finance-cleanup"]).status.code(), Some(1));
}

#[test]
fn a_weekly_review_added_in_a_time_zone_fires_once_at_its_time() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let row = run_json(
        h,
        &emu,
        &[
            "schedule",
            "add",
            "0 8 * * MON",
            "--template",
            "audit-permissions",
            "--param",
            "tags=sensitive",
            "--tz",
            "Europe/Berlin",
            "--json",
        ],
    );
    let next = row["next_run_at"].as_str().unwrap().to_string();
    let t = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    assert_eq!(t.with_timezone(&chrono_tz::Europe::Berlin).format("%a %H:%M").to_string(), "Mon 08:00");

    let before = (t - chrono::Duration::minutes(1)).to_rfc3339();
    let pass = run_json(h, &emu, &["worker", "--once", "--json", "--now", &before]);
    assert_eq!(pass["fired"].as_array().unwrap().len(), 0, "{pass}");
    let pass = run_json(h, &emu, &["worker", "--once", "--json", "--now", &next]);
    let fired = pass["fired"].as_array().unwrap();
    assert_eq!(fired.len(), 1, "{pass}");
    assert_eq!(fired[0]["outcome"], "report", "{pass}");
    assert!(std::path::Path::new(fired[0]["detail"].as_str().unwrap()).exists());
    let pass = run_json(h, &emu, &["worker", "--once", "--json", "--now", &next]);
    assert_eq!(pass["fired"].as_array().unwrap().len(), 0, "fired once: {pass}");

    let rows = run_json(h, &emu, &["schedule", "list", "--json"]);
    let r = &rows.as_array().unwrap()[0];
    assert_eq!(r["last_outcome"], "report", "{r}");
    assert_ne!(r["next_run_at"].as_str().unwrap(), next, "the next Monday is next");
    let listed = text(&run(h, &emu, &["schedule", "list"]).stdout);
    assert!(listed.contains("→ report"), "{listed}");

    // A destructive template stops at awaiting-approval; run by hand, the worker records the run.
    let monthly = run_json(
        h,
        &emu,
        &[
            "schedule",
            "add",
            "0 6 1 * *",
            "--template",
            "archive-stale-content",
            "--param",
            "project=Finance",
            "--json",
        ],
    );
    let due = monthly["next_run_at"].as_str().unwrap().to_string();
    let pass = run_json(h, &emu, &["worker", "--once", "--json", "--now", &due]);
    let f = pass["fired"].as_array().unwrap().iter().find(|f| f["schedule_id"] == monthly["id"]).unwrap().clone();
    assert_eq!(f["outcome"], "awaiting-approval", "{pass}");
    assert_eq!(stats(&emu)["writes"], 0, "nothing written before an approval");
    let plan_id = f["plan_id"].as_str().unwrap();
    let applied = run_json(h, &emu, &["apply", plan_id, "--approve", "all", "--json"]);
    assert_eq!(applied["status"], "succeeded", "{applied}");
    let pass = run_json(h, &emu, &["worker", "--once", "--json", "--now", &due]);
    let f = pass["fired"].as_array().unwrap().iter().find(|f| f["schedule_id"] == monthly["id"]).unwrap().clone();
    assert_eq!(
        (f["outcome"].as_str(), f["run_id"].as_str()),
        (Some("succeeded"), applied["run_id"].as_str()),
        "{pass}"
    );
    let rows = run_json(h, &emu, &["schedule", "list", "--json"]);
    let r = rows.as_array().unwrap().iter().find(|r| r["id"] == monthly["id"]).unwrap();
    assert!(r["pending_plan_id"].is_null(), "{r}");

    let bad = run(h, &emu, &["schedule", "add", "0 8 * * MON", "--template", "audit-permissions", "--tz", "Mars/Base"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("'Mars/Base' is not a time zone"), "{}", text(&bad.stderr));
    let bad = run(h, &emu, &["schedule", "add", "0 8 * *", "--template", "audit-permissions"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

#[test]
fn failed_deliveries_are_dead_letters_listed_with_failed_and_retried_one_by_id_in_slack_format() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plan_path = h.join("off.json");
    run_json(
        h,
        &emu,
        &[
            "plan",
            "--intent",
            "offboard-user",
            "--param",
            "user=jsmith",
            "--param",
            "new_owner=Tom Baker",
            "--json",
            "-o",
            plan_path.to_str().unwrap(),
        ],
    );
    // Nothing listens on port 9: both messages fail and stay in the outbox.
    let o = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"])
        .env("TABFLOW_NOTIFY_WEBHOOK", "http://127.0.0.1:9/hook")
        // Only the owners' messages (not run-started/run-finished events) for this test.
        .env("TABFLOW_NOTIFY_EVENTS", "none")
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["notifications"]["failed"], 2, "{r}");
    let dead = run_json(h, &emu, &["outbox", "list", "--failed", "--json"]);
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().all(|m| m["status"] == "failed"));
    let id = dead[0]["id"].as_i64().unwrap().to_string();

    let (url, got) = crate::permissions::receiver();
    let o = cmd(h, &emu, &["outbox", "retry", "--id", &id, "--json"])
        .env("TABFLOW_NOTIFY_WEBHOOK", &url)
        .env("TABFLOW_NOTIFY_WEBHOOK_FORMAT", "slack")
        .env("TABFLOW_CONSOLE_URL", "https://tabflow.example.com/")
        .output()
        .unwrap();
    let t = ok_json(&o, "retry --id");
    assert_eq!((t["tried"].as_u64(), t["sent"].as_u64()), (Some(1), Some(1)), "{t}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let slack: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(slack["text"], dead[0]["subject"], "{slack}");
    assert_eq!(slack["blocks"][0]["type"], "header", "{slack}");
    let run_id = r["run_id"].as_str().unwrap();
    assert!(
        slack["blocks"][2]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("https://tabflow.example.com/console/runs/{run_id}")),
        "{slack}"
    );
    assert_eq!(run_json(h, &emu, &["outbox", "list", "--failed", "--json"]).as_array().unwrap().len(), 1);
    // Sent now: not one to retry.
    let again = run(h, &emu, &["outbox", "retry", "--id", &id]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("not one to retry"), "{}", text(&again.stderr));
    let bad = cmd(h, &emu, &["outbox", "retry"]).env("TABFLOW_NOTIFY_WEBHOOK_FORMAT", "discord").output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}

/// The schedules' row of `id` after `tabflow schedule list --json`.
fn schedule_row(h: &std::path::Path, emu: &Emu, id: &Value) -> Value {
    let rows = run_json(h, emu, &["schedule", "list", "--json"]);
    rows.as_array().unwrap().iter().find(|r| r["id"] == *id).unwrap().clone()
}

/// Ctrl-C for a child this test started (by its pid).
fn interrupt(child: &std::process::Child) {
    let ok = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn serve_runs_due_schedules_unless_no_worker_and_stops_after_its_pass_on_ctrl_c() {
    use std::process::Stdio;
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let row = run_json(
        h,
        &emu,
        &["schedule", "add", "0 8 * * MON", "--template", "audit-permissions", "--param", "tags=sensitive", "--json"],
    );
    let due = row["next_run_at"].as_str().unwrap().to_string();

    // --no-worker: the server runs, the schedule does not fire.
    let args = ["serve", "--listen", "127.0.0.1:0", "--worker-interval", "1", "--now", &due];
    let quiet = cmd(h, &emu, &args).arg("--no-worker").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(schedule_row(h, &emu, &row["id"])["last_outcome"].is_null(), "fired without a worker");
    interrupt(&quiet);
    let out = quiet.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("running schedules"), "{}", text(&out.stdout));

    // With the worker (the default): fired once, at its time.
    let server = cmd(h, &emu, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut fired = Value::Null;
    for _ in 0..120 {
        fired = schedule_row(h, &emu, &row["id"]);
        if !fired["last_outcome"].is_null() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(fired["last_outcome"], "report", "{fired}");
    interrupt(&server);
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("running schedules every 1 s"), "{said}");
    assert_eq!(said.matches("  report  ").count(), 1, "fired once: {said}");
    assert!(said.contains("worker stopped"), "{said}");
}

#[test]
fn a_run_saved_as_a_template_runs_again_as_the_same_plan() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plan_path = h.join("audit.json");
    let original = run_json(
        h,
        &emu,
        &[
            "plan",
            "--intent",
            "audit-permissions",
            "--param",
            "tags=sensitive",
            "--answer",
            "q1=report-only",
            "--json",
            "-o",
            plan_path.to_str().unwrap(),
        ],
    );
    let applied = run_json(h, &emu, &["apply", plan_path.to_str().unwrap(), "--json"]);
    let run_id = applied["run_id"].as_str().expect("a report run").to_string();
    let saved = run_json(h, &emu, &["templates", "save", "sensitive-review", "--from-run", &run_id, "--json"]);
    assert_eq!(saved["version"], 1, "{saved}");
    let again = run_json(h, &emu, &["templates", "run", "sensitive-review", "--answer", "q1=report-only", "--json"]);
    assert_eq!(shape(&again), shape(&original));
    assert!(
        again["notes"].as_array().unwrap().iter().any(|n| n == "Made from template sensitive-review@v1 (stored)"),
        "{again}"
    );
    // And asked for in plain language.
    let by_words = run_json(h, &emu, &["plan", "run the sensitive review", "--answer", "q1=report-only", "--json"]);
    assert_eq!(shape(&by_words), shape(&original));
}
