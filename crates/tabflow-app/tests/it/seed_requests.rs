//! Issue #18: the seed's own requests, end to end through the service on the demo site.
//! A leaver's request plans the whole sequence and is undone exactly; an access audit that
//! changes nothing still runs, is audited and writes its report (with the access matrix);
//! an action tabflow has no workflow for is refused by name, never mapped to another.

use std::sync::Arc;

use tabflow_app::{
    Approver, Decision, Kind, PlanRequest, Policy, RunStatus, Selection, Source, Start, StartOptions, SystemClock,
};

use crate::support::*;

fn request(text: &str, answers: &[(&str, &str)]) -> PlanRequest {
    PlanRequest {
        request: text.into(),
        source: Source::Rules,
        answers: answers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        actor: "tester".into(),
        remember: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leavers_request_plans_the_whole_sequence_runs_and_is_undone_exactly() {
    let policy = Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() };
    let env = env(Arc::new(SystemClock), policy).await;
    let app = &env.app;
    let before = env.emu.emulator.snapshot();
    let john = before.users.iter().find(|u| u.name == "jsmith").unwrap().clone();
    let groups = before.groups.iter().filter(|g| g.name != "All Users" && g.members.contains(&john.id)).count();
    let grants = before.permissions.iter().filter(|r| r.grantee.kind == "user" && r.grantee.id == john.id).count();
    assert!(groups > 0 && grants > 0, "the demo's leaver has a team and an explicit grant");

    let planned = app.plan(request("Migrate John's content when he leaves the Marketing team", &[])).await.unwrap();
    let plan = planned.plan.as_ref().expect("validates").plan().clone();
    assert!(plan.questions.is_empty(), "{:?}", plan.questions);
    let kinds: Vec<&str> = plan.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["inventory-user", "transfer-ownership", "remove-access", "remove-access", "remove-access"],
        "{:?}",
        plan.steps.iter().map(|s| &s.title).collect::<Vec<_>>()
    );
    let fields: Vec<&str> = plan.steps[2..].iter().map(|s| s.changes[0].field.as_str()).collect();
    assert_eq!(fields, ["groups", "permissions", "site_role"]);

    app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    let Start::Running(handle) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a write plan starts a run")
    };
    let run_id = handle.run_id().to_string();
    let outcome = handle.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded, "{:?}", outcome.report);
    assert_eq!(outcome.report.reports.len(), 4, "the migration report is written");
    let after = env.emu.emulator.snapshot();
    let john_after = after.users.iter().find(|u| u.id == john.id).unwrap();
    assert_eq!(john_after.site_role, "Unlicensed");
    assert!(!after.groups.iter().any(|g| g.name != "All Users" && g.members.contains(&john.id)), "left every team");
    assert!(
        !after.permissions.iter().any(|r| r.grantee.kind == "user" && r.grantee.id == john.id),
        "no explicit grant left"
    );
    assert!(!after.workbooks.iter().any(|w| w.owner_id == john.id), "owns nothing");
    // Old and new owners are told (the outbox holds their messages).
    let outbox = app.outbox(Some(&run_id)).await.unwrap();
    assert!(outbox.iter().any(|m| m.recipient_email == john.email), "the previous owner is told");
    assert!(outbox.len() >= 2, "the new owners are told too: {}", outbox.len());

    let outcome = crate::support::rollback(app, &run_id, "tester").await.unwrap().wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::RolledBack, "{:?}", outcome.report);
    let d = tabflow_site::diff::diff(&before, &env.emu.emulator.snapshot());
    assert!(d.is_empty(), "the rollback left differences: {d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_audit_that_changes_nothing_still_runs_and_writes_its_report() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let text = "Audit permissions for sensitive workbooks and create access report";
    let planned = app.plan(request(text, &[])).await.unwrap();
    let first = planned.plan.as_ref().unwrap().plan().clone();
    let q = first.questions.first().expect("the audit asks whether to fix or only report");
    let planned = app.plan(request(text, &[(&q.id, "report-only")])).await.unwrap();
    let plan = planned.plan.as_ref().unwrap().plan().clone();
    assert!(plan.questions.is_empty(), "{:?}", plan.questions);
    assert!(!plan.steps.iter().any(|s| s.is_write()), "report only");
    assert!(tabflow_app::wants_report(&plan));
    let Start::Running(handle) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a read-only plan that asks for a report runs")
    };
    let run_id = handle.run_id().to_string();
    let outcome = handle.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded, "{:?}", outcome.report);
    assert_eq!(writes(&env), 0, "nothing on the site changes");
    let html = env.dir.path().join("reports").join(format!("{run_id}.html"));
    let html = std::fs::read_to_string(&html).expect("the HTML report is written");
    assert!(html.contains("<table class=\"matrix\">") && !html.contains("<script"), "the access matrix");
    let site = env.emu.emulator.snapshot();
    for w in site.workbooks.iter().filter(|w| w.tags.iter().any(|t| t == "sensitive")) {
        assert!(html.contains(&w.name), "{} is in the report", w.name);
    }
    let records = app.audit_records().await.unwrap();
    assert!(records.iter().any(|r| r.run_id.as_deref() == Some(run_id.as_str())), "the run is in the audit log");

    // A question starts no run (nothing to report).
    let asked = app.plan(request("How many workbooks are in the Finance project?", &[])).await.unwrap();
    let asked = asked.plan.as_ref().unwrap().plan().clone();
    assert!(matches!(
        app.start_run(&asked.id, "tester", StartOptions::default()).await.unwrap(),
        Start::NothingToDo(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_tabflow_cannot_do_is_refused_by_name_and_nothing_is_planned() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let e = env.app.plan(request("Delete all data alerts in Finance", &[])).await.err().expect("refused");
    assert_eq!(e.kind, Kind::Failed, "{e:?}");
    assert_eq!(e.message, "I can't do that yet: delete data alerts");
    assert!(e.hint.contains("archive stale content"), "{}", e.hint);
    // An ambiguous verb is a question, and the plan has no step.
    let planned = env.app.plan(request("Archive or delete the old workbooks in Sandbox", &[])).await.unwrap();
    let plan = planned.plan();
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    assert!(plan.questions[0].text.contains("archive or delete"), "{:?}", plan.questions);
    assert_eq!(writes(&env), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_users_licenses_are_reclaimed_reported_and_restored_exactly() {
    let env =
        env(Arc::new(SystemClock), Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() }).await;
    let app = &env.app;
    let before = env.emu.emulator.snapshot();
    let planned =
        app.plan(request("Reclaim licenses from users who haven't signed in for 90 days", &[])).await.unwrap();
    let plan = planned.plan.as_ref().expect("validates").plan().clone();
    let change = plan.steps.iter().find(|s| s.kind.as_str() == "change-site-roles").expect("a change step");
    // Expected, from the site: licensed, not an administrator, no sign-in for 90 days.
    let cutoff = before.now - chrono::Duration::days(90);
    let expected: Vec<&str> = before
        .users
        .iter()
        .filter(|u| u.last_login.is_none_or(|t| t < cutoff))
        .filter(|u| u.site_role != "Unlicensed" && !u.site_role.contains("Administrator"))
        .map(|u| u.id.as_str())
        .collect();
    let mut got: Vec<&str> = change.items.iter().map(|i| i.id.as_str()).collect();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want);

    app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    let Start::Running(handle) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a write plan starts a run")
    };
    let run_id = handle.run_id().to_string();
    let outcome = handle.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded, "{:?}", outcome.report);
    let mid = env.emu.emulator.snapshot();
    for id in &expected {
        assert_eq!(mid.users.iter().find(|u| u.id == *id).unwrap().site_role, "Unlicensed");
    }
    let md = std::fs::read_to_string(env.dir.path().join("reports").join(format!("{run_id}.md"))).unwrap();
    assert!(md.contains("licenses_freed"), "the report counts the licenses freed");

    let outcome = crate::support::rollback(app, &run_id, "tester").await.unwrap().wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::RolledBack, "{:?}", outcome.report);
    let d = tabflow_site::diff::diff(&before, &env.emu.emulator.snapshot());
    assert!(d.is_empty(), "the rollback left differences: {d:?}");
}
