//! Issue #17 over the HTTP API and the console: a secret the service was configured with,
//! planted in every part of a request the answers quote (paths, JSON field names and values,
//! query strings, form fields), never comes back in an error or a page; and audit records are
//! redacted when they are written, so the chain never holds it.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tabflow_app::Policy;

use crate::console::Browser;
use crate::support::*;

/// Unique, so a hit can only be this test's; long enough for the redaction list (8+ chars),
/// and a valid token name.
const SECRET: &str = "planted-s3cret-7f3a9c2e";

async fn env_with_secret() -> Env {
    env_with(Policy::default(), |o| o.secrets.push(SECRET.to_string())).await
}

/// Each answer is an error that quoted the planted secret, redacted: `[redacted]` proves the
/// channel echoes what it was sent, so the check could fail.
fn assert_redacted(what: &str, status: StatusCode, text: &str) {
    assert!(!status.is_success(), "{what}: expected an error, got {status}: {text}");
    assert!(!text.contains(SECRET), "{what} leaked the secret: {text}");
    assert!(text.contains("[redacted]"), "{what} did not quote what it was sent: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_api_error_or_console_page_carries_a_configured_secret() {
    let env = env_with_secret().await;
    let (viewer, req, admin) = (env.token("viewer"), env.token("requester"), env.token("admin"));
    let json_body = |text: String| Some(("application/json", text.into_bytes()));

    let cases = vec![
        ("unknown plan id in the path", env.get(&format!("/api/v1/plans/{SECRET}"), Some(viewer)).await),
        ("unknown run id in the path", env.get(&format!("/api/v1/runs/{SECRET}"), Some(viewer)).await),
        (
            "unknown approval request",
            env.get(&format!("/api/v1/plans/p-none/approval-requests/{SECRET}"), Some(viewer)).await,
        ),
        ("unknown intent name", env.post("/api/v1/plans", Some(req), &json!({"intent": SECRET})).await),
        (
            "unknown JSON field",
            env.raw(
                Method::POST,
                "/api/v1/runs",
                Some(req),
                json_body(format!("{{\"plan_id\": \"x\", \"{SECRET}\": 1}}")),
            )
            .await,
        ),
        (
            "a bad token name",
            env.post("/api/v1/tokens", Some(admin), &json!({"name": format!("{SECRET}!"), "role": "viewer"})).await,
        ),
        (
            "a bad decision",
            env.post("/api/v1/plans/p-none/approvals", Some(env.token("approver")), &json!({"decision": SECRET})).await,
        ),
        (
            "a question naming an unknown project (POST)",
            env.post(
                "/api/v1/query",
                Some(viewer),
                &json!({"question": format!("how many workbooks are in {SECRET}?")}),
            )
            .await,
        ),
        (
            "a question naming an unknown project (GET)",
            env.get(&format!("/api/v1/query?question=how%20many%20workbooks%20are%20in%20{SECRET}%3F"), Some(viewer))
                .await,
        ),
        ("a question of no known kind", env.post("/api/v1/query", Some(viewer), &json!({"question": SECRET})).await),
    ];
    for (what, a) in cases {
        assert_redacted(what, a.status, &a.text);
    }

    // The console's error pages go through the same list.
    let mut b = Browser::new(&env);
    b.sign_in(env.token("approver")).await;
    let g = b.get(&format!("/console/plans/{SECRET}")).await;
    assert_redacted("console plan page", g.status, &g.body);
    let g = b.get(&format!("/console/runs/{SECRET}")).await;
    assert_redacted("console run page", g.status, &g.body);
    let csrf = b.csrf("/console/ask").await;
    let g = b.post(&format!("/console/plans/{SECRET}/decide"), &[("csrf", &csrf), ("action", "approve")]).await;
    assert!(!g.body.contains(SECRET) && !g.location.contains(SECRET), "console decide: {}", g.body);
    assert_eq!(env.emu.emulator.stats()["writes"].as_u64(), Some(0), "nothing was written to the site");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_are_redacted_when_written() {
    let env = env_with_secret().await;
    // A token whose name is the secret: its creation is audited with its name.
    let a = env.post("/api/v1/tokens", Some(env.token("admin")), &json!({"name": SECRET, "role": "viewer"})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(!a.text.contains(SECRET), "the answer is redacted too: {}", a.text);
    let planted = a.json["token"].as_str().unwrap().to_string();
    // That token acts: its name is the actor of what it does.
    let a = env.get("/api/v1/runs", Some(&planted)).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = env.raw(Method::DELETE, &format!("/api/v1/tokens/{SECRET}"), Some(env.token("admin")), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);

    // As stored: every record, read straight from the store (not an export, which redacts
    // again), is free of it, and the chain verifies (hashes are over the redacted text).
    let records = env.app.audit_records().await.unwrap();
    let stored = serde_json::to_string(&records).unwrap();
    assert!(records.iter().any(|r| r.action == "token.created"), "{stored}");
    assert!(!stored.contains(SECRET), "an audit record holds the secret: {stored}");
    assert!(stored.contains("[redacted]"), "the token's name was recorded, redacted: {stored}");
    let v = env.get("/api/v1/audit/verify", Some(env.token("viewer"))).await;
    assert_eq!(v.json["ok"], json!(true), "{}", v.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_carry_no_configured_secret() {
    let env = env_with_secret().await;
    let (req, appr) = (env.token("requester"), env.token("approver"));
    // The secret planted in a request: an intent's parameter (not request text, which is
    // redacted when planned) names the archive project, so it is in the move step's title and
    // in every moved item's event.
    let a = env
        .post(
            "/api/v1/plans",
            Some(req),
            &json!({"intent": "archive-stale-content",
                    "params": {"project": "Finance", "stale_days": 90, "archive_project": SECRET},
                    "answers": {"q1": "archive-all"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(!a.text.contains(SECRET), "the plan answer is redacted: {}", a.text);
    let plan_id = a.json["id"].as_str().unwrap().to_string();
    let a = env
        .post(
            &format!("/api/v1/plans/{plan_id}/approvals"),
            Some(appr),
            &json!({"decision": "approve", "items": "all"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let a = env.post("/api/v1/runs", Some(req), &json!({"plan_id": plan_id})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let run_id = a.json["run_id"].as_str().unwrap().to_string();

    // The live stream (the run this server executes), read to its end.
    let events = env.events(&run_id, env.token("viewer")).await;
    let live = serde_json::to_string(&events).unwrap();
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("finished"), "{live}");
    assert!(!live.contains(SECRET), "a run event carried the secret: {live}");
    // The secret was there to leak: the step that moves into that project says so, redacted.
    assert!(
        events.iter().any(|(n, d)| n == "step" && d["title"].as_str().is_some_and(|t| t.contains("[redacted]"))),
        "{live}"
    );
    // The run did happen: the project of that name exists on the site now.
    assert!(env.emu.emulator.snapshot().projects.iter().any(|p| p.name == SECRET), "no archive project");
    // A finished run's stream (from the store) and the run's JSON are clean as well.
    let again = serde_json::to_string(&env.events(&run_id, env.token("viewer")).await).unwrap();
    assert!(!again.contains(SECRET), "{again}");
    let run = env.get(&format!("/api/v1/runs/{run_id}"), Some(env.token("viewer"))).await;
    assert!(!run.text.contains(SECRET), "{}", run.text);
}
