//! The team flow over HTTP: a requester plans the Finance cleanup, answers, asks approval for
//! all but two workbooks; an approver approves exactly that selection; the requester starts
//! the run; Server-Sent Events show it to the end; the two unticked workbooks are unchanged on
//! the emulator; the approver rolls back and the site is as before.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tabflow_app::Policy;

use crate::support::*;

fn workbooks(site: &tabflow_site::Site) -> BTreeMap<String, (String, Vec<String>)> {
    site.workbooks.iter().map(|w| (w.id.clone(), (w.project_id.clone(), w.tags.clone()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_asks_approver_approves_a_selection_run_streams_and_rollback_restores() {
    let env = env(Policy::default()).await;
    let (req, appr, viewer) = (env.token("requester"), env.token("approver"), env.token("viewer"));
    let before = env.emu.emulator.snapshot();

    // Plan the request; its question is answered in a second call (a new plan).
    let a = env
        .post(
            "/api/v1/plans",
            Some(req),
            &json!({"request": "Clean up the Finance project - archive workbooks not accessed in 90 days"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let first = a.json;
    let questions = first["questions"].as_array().cloned().unwrap_or_default();
    assert!(!questions.is_empty(), "the cleanup asks what to do with what it found: {first}");
    let answers: BTreeMap<String, String> = questions
        .iter()
        .map(|q| {
            let id = q["id"].as_str().unwrap().to_string();
            let choice =
                if id == "q1" { "archive-all".to_string() } else { q["choices"][0].as_str().unwrap_or("").to_string() };
            (id, choice)
        })
        .collect();
    let a =
        env.post(&format!("/api/v1/plans/{}/answers", first["id"].as_str().unwrap()), Some(req), &json!(answers)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let plan = a.json;
    let plan_id = plan["id"].as_str().unwrap().to_string();
    assert_ne!(plan_id, first["id"].as_str().unwrap());
    assert_eq!(plan["questions"].as_array().map(Vec::len).unwrap_or(0), 0, "{plan}");
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "archive-workbooks")
        .expect("a move step")
        .clone();
    let sid = step["id"].as_str().unwrap();
    let items: Vec<String> =
        step["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert!(items.len() >= 3, "{step}");
    let (unticked, ticked) = items.split_at(2);
    // (In the stored form's order: sorted.)
    let mut selection: Vec<String> = ticked.iter().map(|i| format!("{sid}/{i}")).collect();
    selection.sort();
    assert_eq!(env.get(&format!("/api/v1/plans/{plan_id}"), Some(viewer)).await.json["id"], json!(plan_id));

    // Not approved yet: the run is refused and nothing changes.
    let a = env.post("/api/v1/runs", Some(req), &json!({"plan_id": plan_id})).await;
    assert_eq!((a.status, a.code()), (StatusCode::CONFLICT, "needs-approval"), "{}", a.text);

    // The requester asks for approval of all but two; it cannot approve.
    let a =
        env.post(&format!("/api/v1/plans/{plan_id}/approval-requests"), Some(req), &json!({"items": selection})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let url = a.json["api_url"].as_str().unwrap().to_string();
    assert_eq!(a.json["url"], json!(format!("/console/plans/{plan_id}?request={}", a.json["id"].as_str().unwrap())));
    let read = env.get(&url, Some(appr)).await;
    assert_eq!(read.json["items"], json!(selection), "{}", read.text);
    assert_eq!(read.json["requested_by"], json!("requester via api"));
    let a = env
        .post(&format!("/api/v1/plans/{plan_id}/approvals"), Some(req), &json!({"decision": "approve", "items": "all"}))
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", a.text);

    // An admin who asked for approval itself may not approve its own request.
    let admin = env.token("admin");
    let a =
        env.post(&format!("/api/v1/plans/{plan_id}/approval-requests"), Some(admin), &json!({"items": "all"})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let a = env
        .post(
            &format!("/api/v1/plans/{plan_id}/approvals"),
            Some(admin),
            &json!({"decision": "approve", "items": "all"}),
        )
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", a.text);
    assert!(a.text.contains("asked for plan"), "{}", a.text);

    // The approver approves exactly the requested selection.
    let a = env
        .post(
            &format!("/api/v1/plans/{plan_id}/approvals"),
            Some(appr),
            &json!({"decision": "approve", "items": selection}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["items"], json!(selection));
    assert_eq!(a.json["channel"], json!("api-token"));
    assert_eq!(a.json["ready"], json!(true), "{}", a.text);

    // The requester starts it; a viewer watches it to the end.
    let a = env.post("/api/v1/runs", Some(req), &json!({"plan_id": plan_id})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let run_id = a.json["run_id"].as_str().unwrap().to_string();
    let events = env.events(&run_id, viewer).await;
    let last = events.last().expect("events");
    assert_eq!(last.0, "finished", "{events:?}");
    let status = last.1["status"].as_str().unwrap().to_string();
    assert!(status == "succeeded" || status == "partial", "{events:?}");
    let of_step = |outcome: &str| -> Vec<String> {
        events
            .iter()
            .filter(|(n, d)| n == "item" && d["step_id"] == json!(sid) && d["outcome"] == json!(outcome))
            .map(|(_, d)| d["item_id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut done = of_step("done");
    done.sort();
    let mut want = ticked.to_vec();
    want.sort();
    assert_eq!(done, want, "exactly the approved workbooks were archived");
    assert_eq!(of_step("skipped").len(), 2);
    assert!(events.iter().any(|(n, d)| n == "step" && d["event"] == "step-started"), "{events:?}");

    // On the site: the two unticked workbooks are unchanged, the others moved.
    let after = env.emu.emulator.snapshot();
    let (b, a2) = (workbooks(&before), workbooks(&after));
    for id in unticked {
        assert_eq!(b[id], a2[id], "unticked workbook {id} is unchanged");
    }
    for id in ticked {
        assert_ne!(b[id], a2[id], "approved workbook {id} was archived");
    }

    // The run is listed and shown; a late watcher gets the state and the end.
    let list = env.get("/api/v1/runs", Some(viewer)).await;
    assert_eq!(list.json[0]["id"], json!(run_id), "{}", list.text);
    let shown = env.get(&format!("/api/v1/runs/{run_id}"), Some(viewer)).await;
    assert_eq!(shown.json["status"], json!(status), "{}", shown.text);
    let late = env.events(&run_id, viewer).await;
    assert_eq!(late.first().map(|e| e.0.as_str()), Some("step"));
    assert_eq!(late.last().map(|e| e.0.as_str()), Some("finished"));

    // Rollback: a plan of its own. The requester asks for it (201: the rollback plan and an
    // approval request); nothing changes until an approver approves it; then it runs.
    let a = env.post(&format!("/api/v1/runs/{run_id}/rollback"), Some(viewer), &Value::Null).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "a viewer may not ask for a rollback: {}", a.text);
    let a = env.raw(reqwest::Method::POST, &format!("/api/v1/runs/{run_id}/rollback"), Some(req), None).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let rpid = a.json["plan_id"].as_str().unwrap().to_string();
    assert_eq!(a.json["run_id"], json!(run_id), "{}", a.text);
    assert_eq!(a.json["plan"]["rollback_of"], json!(run_id), "{}", a.text);
    let url = a.json["approval_request"]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("/console/plans/{rpid}?request=")), "{url}");
    assert!(a.json["plan"]["steps"].as_array().unwrap().iter().all(|s| s["kind"] == "compensate"), "{}", a.text);
    assert_eq!(workbooks(&env.emu.emulator.snapshot()), workbooks(&after), "asking changes nothing");
    let s = env.post("/api/v1/runs", Some(req), &json!({"plan_id": rpid})).await;
    assert_eq!(s.status, StatusCode::CONFLICT, "not approved yet: {}", s.text);
    // An approver approves it like any plan, then starts it.
    let d = env.post(&format!("/api/v1/plans/{rpid}/approvals"), Some(appr), &json!({"decision": "approve"})).await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.text);
    assert_eq!(d.json["ready"], json!(true), "{}", d.text);
    let s = env.post("/api/v1/runs", Some(appr), &json!({"plan_id": rpid})).await;
    assert_eq!(s.status, StatusCode::ACCEPTED, "{}", s.text);
    assert_eq!(s.json["run_id"], json!(run_id), "the rollback runs as the run's own: {}", s.text);
    let events = env.events(&run_id, viewer).await;
    assert_eq!(
        events.last().map(|e| (e.0.as_str(), e.1["status"].as_str())),
        Some(("finished", Some("rolled-back"))),
        "{events:?}"
    );
    let restored = env.emu.emulator.snapshot();
    assert_eq!(workbooks(&restored), workbooks(&before), "every workbook is back where it was, with its tags");
    assert_eq!(env.get(&format!("/api/v1/runs/{run_id}"), Some(viewer)).await.json["status"], json!("rolled-back"));

    // The audit log names each token and the channel, and its chain holds.
    let audit = env.get("/api/v1/audit", Some(viewer)).await;
    let records = audit.json["records"].as_array().unwrap();
    let by = |action: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["action"] == json!(action))
            .map(|r| r["actor"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        by("plan.created").iter().all(|a| a == "requester via api") && by("plan.created").len() == 2,
        "{:?}",
        by("plan.created")
    );
    assert!(by("approval.requested").contains(&"requester via api".to_string()));
    let approved = records.iter().find(|r| r["action"] == json!("approval.approve")).expect("approval audited");
    assert_eq!(approved["approver"], json!("approver via api-token"));
    assert!(records.iter().any(|r| r["actor"] == json!("approver via api")), "the rollback is the approver's");
    let requested = records.iter().find(|r| r["action"] == json!("rollback.requested")).expect("rollback requested");
    assert_eq!((&requested["actor"], &requested["after"]["channel"]), (&json!("requester via api"), &json!("api")));
    let approved = records.iter().find(|r| r["action"] == json!("rollback.approved")).expect("rollback approved");
    assert_eq!(approved["approver"], json!("approver via api-token"));
    let ran = records.iter().find(|r| r["action"] == json!("run.rollback")).expect("rollback run");
    assert_eq!((&ran["actor"], &ran["after"]["rollback_plan"]), (&json!("approver via api"), &json!(rpid)));
    assert_eq!(env.get("/api/v1/audit/verify", Some(viewer)).await.json["ok"], json!(true));
    let csv = env.raw(reqwest::Method::GET, "/api/v1/audit?format=csv", Some(viewer), None).await;
    assert!(csv.text.lines().count() > records.len(), "CSV has a header and a line per record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_required_approvers_are_two_distinct_approver_tokens() {
    let env = env(Policy { required_approvers: 2, ..Policy::default() }).await;
    let (req, a1, a2) = (env.token("requester"), env.token("approver"), env.token("approver2"));
    // A plan from an intent and its parameters, its question answered at once.
    let a = env
        .post(
            "/api/v1/plans",
            Some(req),
            &json!({"intent": "archive-stale-content", "params": {"project": "Finance", "stale_days": 90}, "answers": {"q1": "archive-all"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["questions"].as_array().map(Vec::len).unwrap_or(0), 0, "{}", a.text);
    let plan_id = a.json["id"].as_str().unwrap().to_string();
    let approve = json!({"decision": "approve", "items": "all"});
    let path = format!("/api/v1/plans/{plan_id}/approvals");

    let a = env.post(&path, Some(a1), &approve).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["ready"], json!(false));
    assert!(a.json["missing"].as_str().unwrap().contains("needs 2 distinct approvers"), "{}", a.text);
    // The same token approving again is still one approver.
    let a = env.post(&path, Some(a1), &approve).await;
    assert_eq!(a.json["ready"], json!(false), "{}", a.text);
    let a = env.post("/api/v1/runs", Some(req), &json!({"plan_id": plan_id})).await;
    assert_eq!((a.status, a.code()), (StatusCode::CONFLICT, "needs-approval"), "{}", a.text);
    assert_eq!(env.emu.emulator.stats()["writes"].as_u64(), Some(0), "nothing was written");

    let a = env.post(&path, Some(a2), &approve).await;
    assert_eq!(a.json["ready"], json!(true), "{}", a.text);
    // An approver may press Run too.
    let a = env.post("/api/v1/runs", Some(a2), &json!({"plan_id": plan_id})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let events = env.events(a.json["run_id"].as_str().unwrap(), req).await;
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("finished"), "{events:?}");
}
