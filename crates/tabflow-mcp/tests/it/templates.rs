//! `list_templates` and `run_template`: every template with typed parameters; a template
//! planned like plan_workflow (nothing runs, nothing changes); bad parameters refused naming
//! each problem and what the template takes.

use serde_json::json;
use tabflow_mcp::Limits;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_listed_with_typed_parameters_and_paged() {
    let env = env(Limits { page_size: 4, ..Limits::default() }).await;
    let mut all = vec![];
    let mut page = env.ok("list_templates", json!({})).await;
    let total = page["total"].as_u64().unwrap() as usize;
    loop {
        assert!(page["templates"].as_array().unwrap().len() <= 4, "{page}");
        all.extend(page["templates"].as_array().unwrap().iter().cloned());
        let Some(c) = page["next_cursor"].as_str() else { break };
        page = env.ok("list_templates", json!({"cursor": c})).await;
    }
    let names: Vec<&str> = all.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let builtin = tabflow_app::templates::builtin_names();
    assert_eq!(total, builtin.len());
    assert_eq!(names.len(), total, "{names:?}");
    for n in &builtin {
        assert!(names.contains(n), "{n} listed: {names:?}");
    }
    let archive = all.iter().find(|t| t["name"] == "archive-stale-content").unwrap();
    assert_eq!(archive["source"], "builtin");
    let p = |n: &str| archive["params"].as_array().unwrap().iter().find(|p| p["name"] == n).unwrap().clone();
    let project = p("project");
    assert_eq!((project["type"].clone(), project["required"].clone()), (json!("text"), json!(true)), "{project}");
    assert!(project["default"].is_null());
    let days = p("stale_days");
    assert_eq!((days["type"].clone(), days["default"].clone()), (json!("integer"), json!(90)), "{days}");
    assert_eq!(
        (days["min"].clone(), days["max"].clone(), days["required"].clone()),
        (json!(1), json!(3660), json!(false))
    );
    assert_eq!(p("content")["allowed"], json!(["workbooks", "datasources", "all"]));
    assert_eq!(archive["example"], json!({"name": "archive-stale-content", "params": {"project": "<project>"}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_template_plans_and_never_runs() {
    let env = env(Limits::default()).await;
    let before = env.workbooks();
    let plan = env
        .ok(
            "run_template",
            json!({"name": "archive-stale-content", "params": {"project": "Finance", "stale_days": 90}, "answers": {"q1": "archive-all"}}),
        )
        .await;
    assert!(["needs-approval", "needs-answers"].contains(&plan["status"].as_str().unwrap()), "{plan}");
    assert!(plan["request"].as_str().unwrap().contains("template archive-stale-content@v1"), "{plan}");
    assert!(
        plan["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("archive-stale-content@v1")),
        "{plan}"
    );
    assert!(plan["request"].as_str().unwrap().contains("project=Finance"), "{plan}");
    assert_eq!(env.workbooks(), before, "planning a template changes nothing");
    // The same plan as plan_workflow's intent path: the same items.
    let by_intent = env
        .ok(
            "plan_workflow",
            json!({"intent": "archive-stale-content", "params": {"project": "Finance", "stale_days": 90}, "answers": {"q1": "archive-all"}}),
        )
        .await;
    let pairs = |p: &serde_json::Value| {
        let mut v: Vec<String> =
            p["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(pairs(&plan), pairs(&by_intent));
    assert!(!pairs(&plan).is_empty());
    // It goes on like any plan: no run without a person's approval.
    if plan["status"] == "needs-approval" {
        assert_eq!(env.refused("start_run", json!({"plan_id": plan["plan_id"]})).await["code"], "needs-approval");
    }
    let audit = env.app.audit_records().await.unwrap();
    assert!(audit.iter().any(|r| r.action == "plan.created"
        && r.after.as_ref().is_some_and(|a| a["template"] == "archive-stale-content@v1" && a["channel"] == "mcp")));
    assert_eq!(env.workbooks(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_template_input_is_refused_naming_the_problem() {
    let env = env(Limits::default()).await;
    let before = env.workbooks();
    let err = env.refused("run_template", json!({"name": "archive-stale"})).await;
    assert_eq!(err["code"], "not-found", "{err}");
    assert!(err["hint"].as_str().unwrap().contains("list_templates"), "{err}");
    assert!(!err["hint"].as_str().unwrap().contains("tabflow templates list"), "{err}");

    let err =
        env.refused("run_template", json!({"name": "archive-stale-content", "params": {"stale_days": "ninety"}})).await;
    assert_eq!(err["code"], "invalid", "{err}");
    let m = err["message"].as_str().unwrap();
    assert!(m.contains("stale_days must be a whole number") && m.contains("project is missing"), "{m}");
    assert!(err["hint"].as_str().unwrap().contains("project (text, required)"), "{err}");
    assert!(!err["hint"].as_str().unwrap().contains("--param"), "{err}");

    let err = env
        .refused(
            "run_template",
            json!({"name": "archive-stale-content", "params": {"projekt": "Finance", "content": "everything"}}),
        )
        .await;
    let m = err["message"].as_str().unwrap();
    assert!(m.contains("'projekt' is not a parameter") && m.contains("did you mean project"), "{m}");
    assert!(m.contains("content may be one of workbooks, datasources, all"), "{m}");

    let err = env
        .refused(
            "run_template",
            json!({"name": "archive-stale-content", "params": {"project": "Finance", "stale_days": 0}}),
        )
        .await;
    assert!(err["message"].as_str().unwrap().contains("out of range"), "{err}");

    let m = env.invalid("run_template", json!({"name": "archive-stale-content", "params": "project=Finance"})).await;
    assert!(m.contains("'params'") && m.contains("must be an object"), "{m}");
    let m = env.invalid("run_template", json!({"params": {}})).await;
    assert!(m.contains("needs the argument 'name'"), "{m}");
    let m = env.invalid("list_templates", json!({"all": true})).await;
    assert!(m.contains("no argument 'all'"), "{m}");
    assert_eq!(env.workbooks(), before);
}
