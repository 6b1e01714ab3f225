//! Site questions over HTTP (`GET`/`POST /api/v1/query`, any role, read-only), and the
//! policy's `auto_run_on_approval`: the approval that completes what a plan needs starts its
//! run, and one that does not (a first of two approvers) does not.

use reqwest::StatusCode;
use serde_json::json;
use tabflow_app::Policy;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_questions_are_answered_read_only_for_every_role() {
    let env = env(Policy::default()).await;
    let site = env.emu.emulator.snapshot();
    let finance = site.projects.iter().find(|p| p.name == "Finance").expect("the demo site's Finance");
    // Finance and its sub-projects, as the answer counts them.
    let mut within = vec![finance.id.clone()];
    while let Some(more) = site
        .projects
        .iter()
        .find(|p| p.parent_id.as_ref().is_some_and(|id| within.contains(id)) && !within.contains(&p.id))
    {
        within.push(more.id.clone());
    }
    let want = site.workbooks.iter().filter(|w| within.contains(&w.project_id)).count();
    assert!(want > 0);
    for name in ["viewer", "requester", "approver", "admin"] {
        let a = env
            .post("/api/v1/query", Some(env.token(name)), &json!({"question": "how many workbooks are in Finance?"}))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.text);
        assert_eq!(a.json["question"], json!("how many workbooks are in Finance?"));
        assert_eq!(a.json["rows"], json!([[want]]), "{}", a.text);
        assert!(a.json["summary"].as_str().unwrap().starts_with(&format!("{want} workbooks")), "{}", a.text);
        assert!(a.json["columns"].is_array() && a.json["rows"].is_array() && a.json["as_of"].is_string(), "{}", a.text);
    }
    // The same question in the query string.
    let a = env.get("/api/v1/query?question=list%20projects", Some(env.token("viewer"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["total"].as_u64().unwrap() as usize, a.json["rows"].as_array().unwrap().len());
    assert!(a.json["rows"].as_array().unwrap().iter().any(|r| r.to_string().contains("Finance")), "{}", a.text);

    // Refusals name the problem and the fix.
    let viewer = Some(env.token("viewer"));
    let a = env.post("/api/v1/query", viewer, &json!({"question": "what is the weather like?"})).await;
    assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"), "{}", a.text);
    assert!(a.json["error"]["hint"].as_str().unwrap().contains("how many"), "{}", a.text);
    let a = env.post("/api/v1/query", viewer, &json!({"question": "how many workbooks are in Zzyzx Qwv?"})).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not-found"), "{}", a.text);
    let a = env.post("/api/v1/query", viewer, &json!({"question": "  "})).await;
    assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"), "{}", a.text);
    let a = env.post("/api/v1/query", viewer, &json!({"question": "x".repeat(2001)})).await;
    assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"), "{}", a.text);
    let a = env.post("/api/v1/query", viewer, &json!({"q": "list projects"})).await;
    assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"), "{}", a.text);
    let a = env.get("/api/v1/query", viewer).await;
    assert_eq!((a.status, a.code()), (StatusCode::BAD_REQUEST, "bad-request"), "{}", a.text);
    assert_eq!(env.emu.emulator.stats()["writes"].as_u64(), Some(0), "questions write nothing");

    // In the OpenAPI document, generated from the handlers.
    let doc = env.get("/api/openapi.json", None).await;
    for method in ["get", "post"] {
        assert!(doc.json["paths"]["/api/v1/query"][method].is_object(), "{method} /api/v1/query");
    }
    assert!(doc.json["components"]["schemas"]["QueryOut"]["properties"]["rows"].is_object(), "{}", doc.text);
}

const CLEANUP: &str = "Clean up the Finance project - archive workbooks not accessed in 90 days";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_run_on_approval_starts_the_run_once_the_plan_is_ready() {
    let policy = Policy { auto_run_on_approval: Some(true), required_approvers: 2, ..Policy::default() };
    let env = env(policy).await;
    let (req, viewer) = (env.token("requester"), env.token("viewer"));
    let plan = env.answered_plan(req, CLEANUP).await;
    let plan_id = plan["id"].as_str().unwrap().to_string();
    let approve = |token: &'static str| {
        let (env, path) = (&env, format!("/api/v1/plans/{plan_id}/approvals"));
        async move { env.post(&path, Some(env.token(token)), &json!({"decision": "approve", "items": "all"})).await }
    };

    // The first of two approvers: not ready, nothing runs.
    let a = approve("approver").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!((a.json["ready"].clone(), a.json["run"].clone()), (json!(false), json!(null)), "{}", a.text);
    assert!(env.app.runs(10).await.unwrap().is_empty(), "no run before the second approval");
    assert_eq!(env.emu.emulator.stats()["writes"].as_u64(), Some(0));

    // The second completes it: the run starts at once, as that approver, and finishes.
    let a = approve("approver2").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["ready"], json!(true), "{}", a.text);
    assert_eq!(a.json["run"]["status"], json!("running"), "{}", a.text);
    let run_id = a.json["run"]["run_id"].as_str().expect("the started run").to_string();
    assert_eq!(a.json["run"]["events"], json!(format!("/api/v1/runs/{run_id}/events")));
    let events = env.events(&run_id, viewer).await;
    let (last, data) = events.last().expect("events");
    assert_eq!(last, "finished", "{events:?}");
    assert_eq!(data["status"], json!("succeeded"), "{data}");
    let run = env.get(&format!("/api/v1/runs/{run_id}"), Some(viewer)).await;
    assert_eq!(run.json["plan_id"], json!(plan_id), "{}", run.text);
    let audit = env.app.audit_records().await.unwrap();
    assert!(
        audit.iter().any(|r| r.run_id.as_deref() == Some(&run_id) && r.actor == "approver2 via api"),
        "the run is the second approver's: {:?}",
        audit.iter().map(|r| (&r.action, &r.actor)).collect::<Vec<_>>()
    );
    assert!(env.emu.emulator.stats()["writes"].as_u64().unwrap() > 0, "the run changed the site");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_run_an_approval_starts_nothing() {
    let env = env(Policy::default()).await;
    assert!(!Policy::default().auto_run(false), "off by default");
    let plan = env.answered_plan(env.token("requester"), CLEANUP).await;
    let path = format!("/api/v1/plans/{}/approvals", plan["id"].as_str().unwrap());
    let a = env.post(&path, Some(env.token("approver")), &json!({"decision": "approve", "items": "all"})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!((a.json["ready"].clone(), a.json["run"].clone()), (json!(true), json!(null)), "{}", a.text);
    assert!(env.app.runs(10).await.unwrap().is_empty());
    assert_eq!(env.emu.emulator.stats()["writes"].as_u64(), Some(0));
}
