//! Resources (a plan, a run's report) and prompts through a real MCP client.

use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};
use serde_json::json;
use tabflow_app::{Approver, Decision, Selection};
use tabflow_mcp::Limits;

use crate::support::*;

fn text(r: &rmcp::model::ReadResourceResult) -> String {
    match &r.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_and_a_run_report_are_resources_and_unknown_ones_are_refused() {
    let env = env(Limits::default()).await;
    let templates = env.client.list_all_resource_templates().await.unwrap();
    let uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(uris, ["tabflow://plans/{id}", "tabflow://runs/{id}/report"]);

    let plan = env
        .ok("plan_workflow", json!({"request": "Clean up the Finance project - archive workbooks not accessed in 90 days", "answers": {"q1": "archive-all"}}))
        .await;
    let pid = plan["plan_id"].as_str().unwrap().to_string();
    let r = env.client.read_resource(ReadResourceRequestParams::new(format!("tabflow://plans/{pid}"))).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(stored["id"], json!(pid));
    assert_eq!(stored["format"], "tabflow-plan/2");

    let stored = env.app.get_plan(&pid).await.unwrap();
    let sel = Selection::parse(&stored, "all").unwrap();
    env.app.approve(&Approver::api_token("approver1", false), &pid, Decision::Approve, sel).await.unwrap();
    let run = env.ok("start_run", json!({"plan_id": pid})).await;
    let rid = run["run_id"].as_str().unwrap();
    let listed = env.client.list_all_resources().await.unwrap();
    assert!(listed.iter().any(|r| r.uri == format!("tabflow://runs/{rid}/report")), "{listed:?}");
    let r =
        env.client.read_resource(ReadResourceRequestParams::new(format!("tabflow://runs/{rid}/report"))).await.unwrap();
    let md = text(&r);
    assert!(md.contains(rid) && md.contains("Finance"), "{md}");

    for uri in ["tabflow://plans/p-nope", "tabflow://runs/r-nope/report", "tabflow://audit", "https://example.com/x"] {
        let e = env.client.read_resource(ReadResourceRequestParams::new(uri)).await.expect_err(uri);
        assert!(
            e.to_string().contains("p-nope")
                || e.to_string().contains("r-nope")
                || e.to_string().contains("no resource"),
            "{uri}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_name_the_tools_and_say_a_person_approves() {
    let env = env(Limits::default()).await;
    let prompts = env.client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    for n in [
        "content_cleanup",
        "user_migration",
        "permission_audit",
        "datasource_migration",
        "stale_content",
        "license_reclamation",
        "extract_refresh_health",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let p = GetPromptRequestParams::new("content_cleanup")
        .with_arguments(json!({"project": "Sales", "days": 60}).as_object().unwrap().clone());
    let got = env.client.get_prompt(p).await.unwrap();
    let text = serde_json::to_string(&got.messages).unwrap();
    assert!(text.contains("Clean up the Sales project - archive workbooks not accessed in 60 days"), "{text}");
    assert!(text.contains("request_approval") && text.contains("not an approval"), "{text}");
    let p = GetPromptRequestParams::new("extract_refresh_health")
        .with_arguments(json!({"days": 45}).as_object().unwrap().clone());
    let text = serde_json::to_string(&env.client.get_prompt(p).await.unwrap().messages).unwrap();
    assert!(text.contains("Review extract refreshes of content not viewed in 45 days"), "{text}");
    assert!(text.contains("Change nothing") && text.contains("not an approval"), "{text}");
    let e = env.client.get_prompt(GetPromptRequestParams::new("delete_everything")).await.expect_err("unknown");
    assert!(e.to_string().contains("content_cleanup"), "{e}");
}
