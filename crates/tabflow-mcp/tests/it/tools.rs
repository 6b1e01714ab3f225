//! The tools through a real MCP client: listing with annotations, the Finance cleanup from
//! plan to run (approved by a person through the service, never by a tool), its rollback a
//! plan that runs only once a person approved it, bad input refused with nothing changed, and the admin's limits.

use serde_json::json;
use tabflow_app::{Approver, Decision, Selection};
use tabflow_mcp::Limits;

use crate::support::*;

const REQUEST: &str = "Clean up the Finance project - archive workbooks not accessed in 90 days";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_listed_with_annotations_and_output_schemas_and_none_approves() {
    let env = env(Limits::default()).await;
    let tools = env.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names.len(), tabflow_mcp::TOOLS.len(), "{names:?}");
    for (name, read_only) in tabflow_mcp::TOOLS {
        let t = tools.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} listed"));
        let a = t.annotations.as_ref().expect("annotations");
        assert_eq!(a.read_only_hint, Some(read_only), "{name}");
        assert!(t.output_schema.is_some(), "{name} has an output schema");
        assert!(t.description.as_ref().is_some_and(|d| !d.is_empty()), "{name}");
    }
    let start = tools.iter().find(|t| t.name == "start_run").unwrap();
    assert_eq!(start.annotations.as_ref().unwrap().destructive_hint, Some(true));
    assert!(!names.iter().any(|n| n.contains("approve") && *n != "request_approval"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_finance_cleanup_runs_only_after_a_person_approves_and_so_does_its_rollback() {
    let env = env(Limits::default()).await;
    let before = env.workbooks();
    let first = env.ok("plan_workflow", json!({"request": REQUEST})).await;
    assert_eq!(first["status"], "needs-answers", "{first}");
    let q = first["questions"][0]["id"].as_str().unwrap().to_string();
    let plan = env.ok("answer_questions", json!({"plan_id": first["plan_id"], "answers": {q: "archive-all"}})).await;
    assert_eq!(plan["status"], "needs-approval", "{plan}");
    let pid = plan["plan_id"].as_str().unwrap().to_string();

    let err = env.refused("start_run", json!({"plan_id": pid})).await;
    assert_eq!(err["code"], "needs-approval", "{err}");
    assert!(err["message"].as_str().unwrap().contains("no approval"), "{err}");

    let req = env.ok("request_approval", json!({"plan_id": pid, "selection": "all"})).await;
    assert_eq!(req["approved"], false);
    assert_eq!(
        req["url"],
        json!(format!("http://127.0.0.1:8080/console/plans/{pid}?request={}", req["id"].as_str().unwrap()))
    );
    assert_eq!(req["requested_by"], "assistant via mcp");
    assert_eq!(env.workbooks(), before, "a request changes nothing");
    assert_eq!(env.refused("start_run", json!({"plan_id": pid})).await["code"], "needs-approval");

    // A person approves (an approver token's holder, through the service).
    let stored = env.app.get_plan(&pid).await.unwrap();
    let sel = Selection::parse(&stored, "all").unwrap();
    env.app.approve(&Approver::api_token("approver1", false), &pid, Decision::Approve, sel).await.unwrap();

    let run = env.ok("start_run", json!({"plan_id": pid})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let after = env.workbooks();
    assert_ne!(after, before);
    let rid = run["run_id"].as_str().unwrap().to_string();
    assert_eq!(env.ok("run_status", json!({"run_id": rid})).await["status"], "succeeded");
    assert_eq!(env.ok("list_runs", json!({"limit": 5})).await["runs"][0]["run_id"], json!(rid));

    // rollback_run makes the rollback plan and requests its approval; it undoes nothing.
    let rb = env.ok("rollback_run", json!({"run_id": rid})).await;
    let rpid = rb["plan_id"].as_str().unwrap().to_string();
    assert_ne!(rpid, pid, "{rb}");
    assert_eq!(rb["run_id"], json!(rid), "{rb}");
    assert_eq!(
        rb["url"],
        json!(format!("http://127.0.0.1:8080/console/plans/{rpid}?request={}", rb["request_id"].as_str().unwrap())),
        "{rb}"
    );
    assert!(rb["steps"].as_array().unwrap().iter().all(|s| s["kind"] == "compensate" && s["effect"] == "destructive"));
    assert_eq!(env.workbooks(), after, "rollback_run undoes nothing itself");
    let shown = env.ok("get_plan", json!({"plan_id": rpid})).await;
    assert_eq!(shown["status"], "needs-approval", "{shown}");
    // start_run on it is refused until a person approves it; then it runs and the site is back.
    let err = env.refused("start_run", json!({"plan_id": rpid})).await;
    assert_eq!(err["code"], "needs-approval", "{err}");
    assert_eq!(env.workbooks(), after);
    let stored = env.app.get_plan(&rpid).await.unwrap();
    let sel = Selection::parse(&stored, "all").unwrap();
    env.app.approve(&Approver::api_token("approver1", false), &rpid, Decision::Approve, sel).await.unwrap();
    let undone = env.ok("start_run", json!({"plan_id": rpid})).await;
    assert_eq!(undone["run_id"], json!(rid), "{undone}");
    assert_eq!(undone["status"], "rolled-back", "{undone}");
    assert_eq!(env.workbooks(), before, "the approved rollback put every workbook back");
    let audit = env.app.audit_records().await.unwrap();
    let requested = audit.iter().find(|r| r.action == "rollback.requested").expect("audited");
    assert_eq!(requested.actor, "assistant via mcp");
    assert_eq!(requested.after.as_ref().unwrap()["channel"], "mcp");
    assert!(
        audit
            .iter()
            .any(|r| r.action == "rollback.approved" && r.approver.as_deref() == Some("approver1 via api-token"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let env = env(Limits::default()).await;
    let before = env.workbooks();
    let m = env.invalid("approve_plan", json!({"plan_id": "p-1"})).await;
    assert!(m.contains("no tool 'approve_plan'") && m.contains("request_approval"), "{m}");
    let m = env.invalid("get_plan", json!({"plan_id": 7})).await;
    assert!(m.contains("'plan_id'") && m.contains("must be a string") && m.contains("an integer"), "{m}");
    let m = env.invalid("start_run", json!({"plan_id": "p-1", "approved": true})).await;
    assert!(m.contains("no argument 'approved'"), "{m}");
    let m = env.invalid("start_run", json!({})).await;
    assert!(m.contains("needs the argument 'plan_id'"), "{m}");
    for tool in ["get_plan", "start_run", "request_approval"] {
        let err = env.refused(tool, json!({"plan_id": "p-nope"})).await;
        assert_eq!(err["code"], "not-found", "{tool}: {err}");
    }
    let err = env.refused("plan_workflow", json!({"request": "x", "intent": "archive-stale-content"})).await;
    assert!(err["message"].as_str().unwrap().contains("both"), "{err}");
    let err = env.refused("plan_workflow", json!({"intent": "archive-everything"})).await;
    assert!(err["hint"].as_str().unwrap().contains("archive-stale-content"), "{err}");
    assert_eq!(env.workbooks(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_lists_and_allows_only_tools_that_change_nothing() {
    let env = env(Limits { read_only: true, ..Limits::default() }).await;
    let tools = env.client.list_all_tools().await.unwrap();
    assert!(tools.iter().all(|t| t.annotations.as_ref().unwrap().read_only_hint == Some(true)));
    assert_eq!(tools.len(), tabflow_mcp::TOOLS.iter().filter(|(_, ro)| *ro).count());
    let m = env.invalid("start_run", json!({"plan_id": "p-1"})).await;
    assert!(m.contains("read-only"), "{m}");
    let a = env.ok("query_site", json!({"question": "how many workbooks are in Finance?"})).await;
    assert_eq!(a["kind"], "count", "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_paged_with_a_cursor_and_large_plans_are_refused() {
    let env = env(Limits { page_size: 2, max_plan_items: Some(1), ..Limits::default() }).await;
    let first = env.ok("plan_workflow", json!({"request": REQUEST})).await;
    let q = first["questions"][0]["id"].as_str().unwrap().to_string();
    let plan = env.ok("answer_questions", json!({"plan_id": first["plan_id"], "answers": {q: "archive-all"}})).await;
    let total = plan["items_total"].as_u64().unwrap() as usize;
    assert!(total > 2, "{plan}");
    let mut seen: Vec<String> = vec![];
    let mut page = plan.clone();
    loop {
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["pair"].as_str().unwrap().to_string()));
        let Some(c) = page["next_cursor"].as_str() else { break };
        page = env.ok("get_plan", json!({"plan_id": plan["plan_id"], "cursor": c})).await;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (total, total));
    let err = env.refused("request_approval", json!({"plan_id": plan["plan_id"]})).await;
    assert!(err["message"].as_str().unwrap().contains("TABFLOW_MCP_MAX_PLAN_ITEMS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_rows_are_paged_with_a_cursor_never_cut() {
    let env = env(Limits { page_size: 2, ..Limits::default() }).await;
    // Rows of an answer: every workbook of the site, two a page.
    let q = "list the workbooks";
    let mut page = env.ok("query_site", json!({"question": q})).await;
    let total = page["rows_total"].as_u64().unwrap() as usize;
    assert!(total > 2, "{page}");
    let mut rows = vec![];
    loop {
        assert!(page["rows"].as_array().unwrap().len() <= 2);
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        let Some(c) = page["next_cursor"].as_str() else { break };
        page = env.ok("query_site", json!({"question": q, "cursor": c})).await;
    }
    assert_eq!(rows.len(), total);
    assert_eq!(total, env.emu.emulator.snapshot().workbooks.len());
    let err = env.refused("query_site", json!({"question": q, "cursor": "next"})).await;
    assert!(err["message"].as_str().unwrap().contains("not a cursor"), "{err}");

    // Runs: three read-only report runs, listed two a page, newest first, none twice.
    let audit = "audit permissions on content tagged sensitive";
    let asks = env.ok("plan_workflow", json!({"request": audit})).await;
    let q = &asks["questions"][0];
    let report = q["choices"].as_array().unwrap().iter().find(|c| c.as_str().unwrap().contains("report")).unwrap();
    let mut ids = vec![];
    for _ in 0..3 {
        let plan =
            env.ok("plan_workflow", json!({"request": audit, "answers": {q["id"].as_str().unwrap(): report}})).await;
        let run = env.ok("start_run", json!({"plan_id": plan["plan_id"]})).await;
        ids.push(run["run_id"].as_str().unwrap_or_else(|| panic!("a run: {run}")).to_string());
    }
    ids.reverse();
    let first = env.ok("list_runs", json!({"limit": 2})).await;
    let c = first["next_cursor"].as_str().unwrap_or_else(|| panic!("a cursor: {first}")).to_string();
    let second = env.ok("list_runs", json!({"limit": 2, "cursor": c})).await;
    assert!(second["next_cursor"].is_null(), "{second}");
    let listed: Vec<String> = first["runs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["runs"].as_array().unwrap())
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ids);
    let err = env.refused("list_runs", json!({"cursor": "r-nope"})).await;
    assert!(err["message"].as_str().unwrap().contains("not a run"), "{err}");
}
