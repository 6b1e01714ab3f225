//! `POST /hooks/tableau/{secret}`: a wrong secret is 404, a bad body 400 and an over-long one
//! 413 (JSON errors); an event without a mapping is acknowledged and audited; a
//! WorkbookRefreshFailed for a demo-site workbook plans the mapped template from the workbook
//! as the site has it now (not the payload's name), stops at awaiting-approval and the
//! approvers' webhook (a real HTTP receiver) hears of it; an object no longer on the site
//! plans nothing; an identical repeat is not handled twice.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tabflow_app::{HookRule, Policy, TableauHooks};

use crate::support::*;

const SECRET: &str = "hook-secret-0123456789abcdef";

/// A real HTTP server that answers 200 and hands each request's body to the test.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(p) = text.find("\r\n\r\n") {
                        let len = text[..p]
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= p + 4 + len {
                            let body = String::from_utf8_lossy(&buf[p + 4..p + 4 + len]).to_string();
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            let _ = tx.send(body);
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

fn event(event_type: &str, resource: &str, luid: &str, name: &str, site: &str) -> Value {
    json!({"resource": resource, "event_type": event_type, "resource_name": name, "site_luid": site,
           "resource_luid": luid, "created_at": "2026-12-03T10:00:00Z"})
}

/// The `hook.handled` or `hook.ignored` audit record of an event (waits for the background).
async fn outcome(env: &Env, action: &str, luid: &str) -> tabflow_app::Record {
    for _ in 0..600 {
        let records = env.app.audit_records().await.unwrap();
        if let Some(r) = records.into_iter().find(|r| r.action == action && r.item_id.as_deref() == Some(luid)) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {action} record for {luid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tableau_event_triggers_its_template_planned_from_the_live_site() {
    let (hook_url, mut heard) = receiver().await;
    let rules = vec![HookRule {
        event: "WorkbookRefreshFailed".into(),
        template: "archive-stale-content".into(),
        version: None,
        params: BTreeMap::from([("project".to_string(), "{{project}}".to_string())]),
    }];
    let env = env_with(Policy::default(), |o| {
        o.tableau_hooks = Some(TableauHooks::new(SECRET, rules));
        o.delivery = tabflow_app::Delivery::webhook(hook_url.clone(), Some("whsec".into()));
    })
    .await;
    let site_luid = env.app.connect().await.unwrap().client.session().await.site_id;
    let demo = tabflow_site::generate::demo();
    let finance = demo.projects.iter().find(|p| p.name == "Finance").unwrap();
    let wb = demo.workbooks.iter().find(|w| w.project_id == finance.id).unwrap();
    let path = format!("/hooks/tableau/{SECRET}");
    let body = |v: &Value| Some(("application/json", v.to_string().into_bytes()));

    // The wrong secret, or a prefix of it: 404 like any unknown route (no bearer token needed).
    let ev = event("WorkbookRefreshFailed", "EXTRACTS", &wb.id, "Spoofed name", &site_luid);
    let a = env.raw(Method::POST, "/hooks/tableau/not-the-secret-000000", None, body(&ev)).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not-found"));
    let a = env.raw(Method::POST, &path[..path.len() - 1], None, body(&ev)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Bad bodies: 400 with the JSON error; too big: 413.
    let a = env.raw(Method::POST, &path, None, Some(("application/json", b"{not json".to_vec()))).await;
    assert_eq!((a.status, a.code()), (StatusCode::BAD_REQUEST, "bad-request"), "{}", a.text);
    assert!(a.json["error"]["message"].as_str().unwrap().contains("not a Tableau webhook event"), "{}", a.text);
    let a = env.raw(Method::POST, &path, None, body(&json!({"event_type": "WorkbookRefreshFailed"}))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let big =
        json!({"resource": "WORKBOOK", "event_type": "x", "resource_luid": "y", "resource_name": "n".repeat(20_000)});
    let a = env.raw(Method::POST, &path, None, body(&big)).await;
    assert_eq!((a.status, a.code()), (StatusCode::PAYLOAD_TOO_LARGE, "too-large"), "{}", a.text);

    // No mapping: acknowledged, audited, nothing planned.
    let other = event("WorkbookCreated", "WORKBOOK", &wb.id, &wb.name, &site_luid);
    let a = env.raw(Method::POST, &path, None, body(&other)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!((a.json["action"].as_str(), a.json["template"].as_str()), (Some("ignored"), None), "{}", a.text);
    let r = outcome(&env, "hook.ignored", &wb.id).await;
    assert_eq!(r.outcome, "ignored");

    // Mapped: planned from the workbook as the site has it (its project, its real name).
    let a = env.raw(Method::POST, &path, None, body(&ev)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.json["template"], "archive-stale-content", "{}", a.text);
    assert_eq!(a.json["action"], "planning", "{}", a.text);
    let r = outcome(&env, "hook.handled", &wb.id).await;
    assert_eq!(r.outcome, "awaiting-approval", "{r:?}");
    let plan_id = r.plan_id.clone().expect("a plan");
    let plan = env.app.get_plan(&plan_id).await.unwrap();
    assert!(
        plan.intents.iter().any(|i| serde_json::to_value(i).unwrap()["params"]["project"] == "Finance"),
        "{:?}",
        plan.intents
    );
    let note = plan.notes.iter().find(|n| n.starts_with("Triggered by Tableau event")).expect("note");
    assert!(note.contains(&wb.name) && !note.contains("Spoofed"), "{note}");
    assert_eq!(env.app.plan_template_label(&plan_id).await.unwrap().as_deref(), Some("archive-stale-content@v1"));
    assert_eq!(env.emu.emulator.stats()["writes"], 0, "nothing changes before an approval");
    let told: Value =
        serde_json::from_str(&tokio::time::timeout(Duration::from_secs(20), heard.recv()).await.unwrap().unwrap())
            .unwrap();
    assert!(told["subject"].as_str().unwrap().contains("awaiting approval"), "{told}");
    assert_eq!(told["type"], "plan-awaiting-approval", "{told}");
    assert!(told["body"].as_str().unwrap().contains("WorkbookRefreshFailed"), "{told}");
    // Nobody asked for this plan at a terminal: the approval that completes it starts its run
    // (policy `auto_run_on_approval` unset = on for a plan an event made), as that approver.
    let a = env
        .post(
            &format!("/api/v1/plans/{plan_id}/approvals"),
            Some(env.token("approver")),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["ready"], json!(true), "{}", a.text);
    let run_id = a.json["run"]["run_id"].as_str().expect("the approval started the event's plan").to_string();
    let events = env.events(&run_id, env.token("viewer")).await;
    let (last, data) = events.last().expect("events");
    assert_eq!((last.as_str(), data["status"].as_str()), ("finished", Some("succeeded")), "{events:?}");
    assert!(env.emu.emulator.stats()["writes"].as_u64().unwrap() > 0, "the run changed the site");

    // The same event again (Tableau may send one twice): acknowledged, not handled again.
    let a = env.raw(Method::POST, &path, None, body(&ev)).await;
    assert_eq!((a.status, a.json["action"].as_str()), (StatusCode::ACCEPTED, Some("duplicate")), "{}", a.text);

    // A workbook that is no longer there: nothing is planned.
    let gone = event("WorkbookRefreshFailed", "EXTRACTS", "00000000-0000-0000-0000-00000000dead", "x", &site_luid);
    assert_eq!(env.raw(Method::POST, &path, None, body(&gone)).await.status, StatusCode::ACCEPTED);
    let r = outcome(&env, "hook.handled", "00000000-0000-0000-0000-00000000dead").await;
    assert_eq!((r.outcome.as_str(), r.plan_id.as_deref()), ("gone", None), "{r:?}");
    // Another site's event: nothing is planned either.
    let elsewhere = event("WorkbookRefreshFailed", "EXTRACTS", &demo.workbooks[1].id, "x", "another-site-luid");
    assert_eq!(env.raw(Method::POST, &path, None, body(&elsewhere)).await.status, StatusCode::ACCEPTED);
    let r = outcome(&env, "hook.handled", &demo.workbooks[1].id).await;
    assert_eq!(r.outcome, "other-site", "{r:?}");
    // The secret never shows in the audit log.
    let all = serde_json::to_string(&env.app.audit_records().await.unwrap()).unwrap();
    assert!(!all.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hooks_configured_the_route_is_not_found() {
    let env = env(Policy::default()).await;
    let ev = event("WorkbookRefreshFailed", "EXTRACTS", "w", "n", "s");
    let a = env
        .raw(
            Method::POST,
            &format!("/hooks/tableau/{SECRET}"),
            None,
            Some(("application/json", ev.to_string().into_bytes())),
        )
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not-found"));
}
