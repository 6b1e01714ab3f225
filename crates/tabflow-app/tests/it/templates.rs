//! Templates through the service: the built-ins list and plan; a plan saved as a template and
//! run again gives the same plan on the same site; bad parameters are refused with the fix;
//! every save is a new version and the old ones stay readable.

use std::collections::BTreeMap;
use std::sync::Arc;

use tabflow_app::{Kind, Policy, SystemClock};

use crate::support::*;

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// What decides what a plan does: per step its kind, items and changes (not ids or times).
fn shape(p: &tabflow_app::Plan) -> serde_json::Value {
    serde_json::json!(
        p.steps
            .iter()
            .map(|s| serde_json::json!({"kind": s.kind.as_str(), "items": s.items, "changes": s.changes}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtins_are_listed_and_a_builtin_plans_like_the_intent_it_runs() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let all = app.templates().await.unwrap();
    let names: Vec<&str> = all.iter().map(|t| t.template.name.as_str()).collect();
    for intent in tabflow_engine::plan::Intent::NAMES {
        assert!(names.contains(intent), "no built-in template for {intent}: {names:?}");
    }
    assert!(all.iter().all(|t| t.source == "builtin" && t.template.builtin));

    let by_template = app
        .plan_template("archive-stale-content", None, &params(&[("project", "Finance")]), Default::default(), "tester")
        .await
        .unwrap();
    let plan = by_template.plan().clone();
    assert!(
        plan.notes.iter().any(|n| n == "Made from template archive-stale-content@v1 (built-in)"),
        "{:?}",
        plan.notes
    );
    assert_eq!(app.plan_template_label(&plan.id).await.unwrap().as_deref(), Some("archive-stale-content@v1"));
    let by_intent = app
        .plan(intent(
            "archive-stale-content",
            &[("project", "Finance"), ("stale_days", "90"), ("archive_project", "Archive"), ("content", "workbooks")],
        ))
        .await
        .unwrap();
    assert_eq!(shape(&plan), shape(by_intent.plan()));
    assert_eq!(writes(&env), 0, "planning a template changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_runs_again_as_the_same_plan_and_versions_are_kept() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let original =
        app.plan(intent("archive-stale-content", &[("project", "Finance"), ("stale_days", "60")])).await.unwrap();
    let original = original.plan().clone();

    // Every value a parameter (the default: the plan's values).
    let t = tabflow_app::templates::from_plan("finance-cleanup", None, &original, None).unwrap();
    let v1 = app.save_template(t, "tester").await.unwrap();
    assert_eq!(v1.version, 1);
    let again =
        app.plan_template("finance-cleanup", None, &BTreeMap::new(), Default::default(), "tester").await.unwrap();
    assert_eq!(shape(again.plan()), shape(&original), "the same template on the same site plans the same");
    assert_eq!(app.plan_template_label(&again.plan().id).await.unwrap().as_deref(), Some("finance-cleanup@v1"));
    // A parameter changes what it plans.
    let longer = app
        .plan_template("finance-cleanup", None, &params(&[("stale_days", "3000")]), Default::default(), "tester")
        .await
        .unwrap();
    assert_ne!(shape(longer.plan()), shape(&original));

    // Only `project` a parameter: a second version; stale_days is fixed at 60 now.
    let keys = vec!["project".to_string()];
    let t = tabflow_app::templates::from_plan("finance-cleanup", Some("Clean up"), &original, Some(&keys)).unwrap();
    let v2 = app.save_template(t, "tester").await.unwrap();
    assert_eq!(v2.version, 2);
    let e = app
        .plan_template("finance-cleanup", None, &params(&[("stale_days", "30")]), Default::default(), "tester")
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, Kind::Usage);
    assert!(e.message.contains("'stale_days' is not a parameter of finance-cleanup"), "{}", e.message);
    assert!(e.hint.contains("project (text, default Finance)"), "{}", e.hint);
    // Version 1 is still there, and still takes stale_days.
    let old = app.template("finance-cleanup", Some(1)).await.unwrap();
    assert!(old.params.contains_key("stale_days"));
    let listed = app.templates().await.unwrap();
    let mine = listed.iter().find(|t| t.template.name == "finance-cleanup").unwrap();
    assert_eq!((mine.template.version, mine.versions.clone(), mine.source), (2, vec![1, 2], "store"));

    // Bad parameters: wrong type and out of range, all named at once.
    let e = app
        .plan_template(
            "archive-stale-content",
            None,
            &params(&[("project", "Finance"), ("stale_days", "-4"), ("content", "x")]),
            Default::default(),
            "tester",
        )
        .await
        .err()
        .unwrap();
    assert!(e.message.contains("stale_days = -4 is out of range: at least 1"), "{}", e.message);
    assert!(e.message.contains("content may be one of workbooks, datasources, all, not 'x'"), "{}", e.message);

    // A built-in's name cannot be taken; an unknown template is "not found" with a suggestion.
    let t = tabflow_app::templates::from_plan("audit-permissions", None, &original, None).unwrap();
    assert_eq!(app.save_template(t, "tester").await.unwrap_err().kind, Kind::Usage);
    let e = app.template("finance-cleanp", None).await.unwrap_err();
    assert_eq!(e.kind, Kind::NotFound);
    assert!(e.hint.contains("did you mean finance-cleanup?"), "{}", e.hint);

    // Deleted: gone from the list, its versions still readable by number.
    app.delete_template("finance-cleanup", "tester").await.unwrap();
    assert!(app.templates().await.unwrap().iter().all(|t| t.template.name != "finance-cleanup"));
    assert_eq!(app.template("finance-cleanup", None).await.unwrap_err().kind, Kind::NotFound);
    assert_eq!(app.template("finance-cleanup", Some(2)).await.unwrap().version, 2);
    // Saving the name again continues the numbering.
    let t = tabflow_app::templates::from_plan("finance-cleanup", None, &original, None).unwrap();
    assert_eq!(app.save_template(t, "tester").await.unwrap().version, 3);
    assert_eq!(writes(&env), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_plain_language_names_a_stored_or_builtin_template() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    // A user template: archive stale content, the project a parameter.
    let original =
        app.plan(intent("archive-stale-content", &[("project", "Finance"), ("stale_days", "60")])).await.unwrap();
    let keys = vec!["project".to_string()];
    let t = tabflow_app::templates::from_plan("quarterly-cleanup", None, original.plan(), Some(&keys)).unwrap();
    app.save_template(t, "tester").await.unwrap();

    let ask = |request: &str| tabflow_app::PlanRequest {
        request: request.into(),
        source: tabflow_app::Source::Rules,
        answers: Default::default(),
        actor: "tester".into(),
        remember: false,
    };
    let by_words = app.plan(ask("run the quarterly cleanup for Sales")).await.unwrap();
    let p = by_words.plan();
    assert_eq!(app.plan_template_label(&p.id).await.unwrap().as_deref(), Some("quarterly-cleanup@v1"));
    assert!(p.notes.iter().any(|n| n == "Read as template quarterly-cleanup with project=Sales"), "{:?}", p.notes);
    let direct = app
        .plan_template("quarterly-cleanup", None, &params(&[("project", "Sales")]), Default::default(), "tester")
        .await
        .unwrap();
    assert_eq!(shape(p), shape(direct.plan()), "the same plan as the template run directly");

    // A built-in with a parameter written K=V.
    let audit = app.plan(ask("run template audit-permissions with tags=sensitive")).await.unwrap();
    assert_eq!(app.plan_template_label(&audit.plan().id).await.unwrap().as_deref(), Some("audit-permissions@v1"));
    assert!(
        audit.plan().notes.iter().any(|n| n == "Read as template audit-permissions with tags=sensitive"),
        "{:?}",
        audit.plan().notes
    );
    // A bad parameter is refused with the template's parameters.
    let e = app.plan(ask("run the quarterly cleanup for Sales with stale_days=5")).await.err().unwrap();
    assert_eq!(e.kind, Kind::Usage);
    assert!(e.message.contains("'stale_days' is not a parameter of quarterly-cleanup"), "{}", e.message);
    // A request that names no template is the parser's as before.
    let plain = app.plan(ask("archive workbooks in Finance not viewed for 60 days")).await.unwrap();
    assert_eq!(app.plan_template_label(&plain.plan().id).await.unwrap(), None);
    assert_eq!(writes(&env), 0);
}
