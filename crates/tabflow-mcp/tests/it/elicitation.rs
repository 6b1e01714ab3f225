//! `request_approval` with a client that supports URL-mode elicitation: the console's
//! approval page is put before the person; whatever the client answers (accept, decline), the
//! plan stays unapproved until a person approves through the service; the server tells the
//! client `notifications/elicitation/complete` once that decision is recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::ElicitationAction;
use serde_json::json;
use tabflow_app::{App, Approver, Decision, Selection};
use tabflow_mcp::Limits;

use crate::support::*;

const REQUEST: &str = "Clean up the Finance project - archive workbooks not accessed in 90 days";

/// A person approving plan `pid` through the service (an approver token's holder).
async fn approve(app: Arc<App>, pid: String) {
    // The service's futures are not all Send; drive them on a thread of their own.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let plan = app.get_plan(&pid).await.unwrap();
            let sel = Selection::parse(&plan, "all").unwrap();
            app.approve(&Approver::api_token("approver1", false), &pid, Decision::Approve, sel).await.unwrap();
        })
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_elicitation_shows_the_approval_page_and_its_answer_never_approves() {
    // What the person does when the page is put before them.
    let mode: Arc<Mutex<&'static str>> = Arc::new(Mutex::new("accept"));
    let app_slot: Arc<Mutex<Option<Arc<App>>>> = Arc::default();
    let on_url: OnUrl = {
        let (mode, app_slot) = (mode.clone(), app_slot.clone());
        Arc::new(move |_message, url, _id| {
            let mode = *mode.lock().unwrap();
            let app = app_slot.lock().unwrap().clone();
            Box::pin(async move {
                match mode {
                    "decline" => ElicitationAction::Decline,
                    "approve-then-accept" => {
                        let pid = url.split("/console/plans/").nth(1).unwrap().split('?').next().unwrap().to_string();
                        approve(app.unwrap(), pid).await;
                        ElicitationAction::Accept
                    }
                    _ => ElicitationAction::Accept,
                }
            })
        })
    };
    let client = Client { on_url: Some(on_url), ..Client::default() };
    let env = env_with(Limits::default(), client.clone()).await;
    *app_slot.lock().unwrap() = Some(env.app.clone());
    let before = env.workbooks();
    let plan =
        || async { env.ok("plan_workflow", json!({"request": REQUEST, "answers": {"q1": "archive-all"}})).await };

    // Declined: nothing approved, nothing changed, the page's URL is still the answer's.
    *mode.lock().unwrap() = "decline";
    let a = plan().await;
    assert_eq!(a["status"], "needs-approval", "{a}");
    let r = env.ok("request_approval", json!({"plan_id": a["plan_id"]})).await;
    assert_eq!((r["approved"].clone(), r["decision"].clone()), (json!(false), json!("pending")), "{r}");
    assert_eq!(r["elicitation"]["action"], "decline", "{r}");
    assert_eq!(r["elicitation"]["mode"], "url");
    assert_eq!(r["elicitation"]["url"], r["url"], "{r}");
    assert_eq!(env.refused("start_run", json!({"plan_id": a["plan_id"]})).await["code"], "needs-approval");

    // Accepted (the person opened the page) but nobody approved: still not approved.
    *mode.lock().unwrap() = "accept";
    let b = plan().await;
    let bid = b["plan_id"].as_str().unwrap().to_string();
    let r = env.ok("request_approval", json!({"plan_id": bid, "selection": "all"})).await;
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["approved"], false, "{r}");
    assert_eq!(r["decision"], "pending", "{r}");
    assert_eq!(r["elicitation"]["action"], "accept", "{r}");
    assert_eq!(r["elicitation"]["elicitation_id"], json!(rid));
    assert!(r["note"].as_str().unwrap().contains("is not an approval"), "{r}");
    {
        let seen = client.elicited.lock().unwrap();
        let (message, url, id) = seen.last().unwrap();
        assert_eq!(url, &format!("http://127.0.0.1:8080/console/plans/{bid}?request={rid}"));
        assert_eq!(id, &rid);
        assert!(message.contains(&bid) && message.contains("approves nothing"), "{message}");
        assert_eq!(seen.len(), 2, "one elicitation per request");
    }
    let err = env.refused("start_run", json!({"plan_id": bid})).await;
    assert_eq!(err["code"], "needs-approval", "{err}");
    assert_eq!(env.workbooks(), before, "no answer in the chat changed anything");
    assert!(client.completed.lock().unwrap().is_empty(), "nothing was decided yet");

    // A person approves through the service: the client is told the elicitation is complete.
    approve(env.app.clone(), bid.clone()).await;
    let mut waited = 0;
    while !client.completed.lock().unwrap().contains(&rid) && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(client.completed.lock().unwrap().contains(&rid), "elicitation/complete for {rid}");

    // Approved while the page was open: the answer reads the store's decision.
    *mode.lock().unwrap() = "approve-then-accept";
    let c = plan().await;
    let r = env.ok("request_approval", json!({"plan_id": c["plan_id"]})).await;
    assert_eq!((r["approved"].clone(), r["decision"].clone()), (json!(true), json!("approved")), "{r}");
    assert_eq!(r["elicitation"]["action"], "accept");
    assert_eq!(env.workbooks(), before, "an approval changes nothing by itself");
    let run = env.ok("start_run", json!({"plan_id": c["plan_id"]})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_ne!(env.workbooks(), before);

    let audit = env.app.audit_records().await.unwrap();
    let actions: Vec<String> = audit
        .iter()
        .filter(|r| r.action == "approval.elicited")
        .map(|r| r.after.as_ref().unwrap()["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["decline", "accept", "accept"], "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_elicitation_gets_the_url_and_is_not_asked() {
    let client = Client::default();
    let env = env_with(Limits::default(), client.clone()).await;
    let a = env.ok("plan_workflow", json!({"request": REQUEST, "answers": {"q1": "archive-all"}})).await;
    let r = env.ok("request_approval", json!({"plan_id": a["plan_id"]})).await;
    assert!(r["elicitation"].is_null(), "{r}");
    assert_eq!(r["approved"], false);
    assert!(r["url"].as_str().unwrap().starts_with("http://127.0.0.1:8080/console/plans/"), "{r}");
    assert!(client.elicited.lock().unwrap().is_empty());
}
