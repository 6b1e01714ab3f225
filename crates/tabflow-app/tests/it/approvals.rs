//! Approvals bound to what was approved, through the service: plans sealed with the store's
//! key (a hand-edited plan, another store's plan and a plan for another site are refused, each
//! with its fix), approvals of (step, item) pairs, the terminal counted as one approver, and a
//! rollback refused on another copy of the site.

use std::collections::BTreeMap;
use std::sync::Arc;

use tabflow_app::plan::PlanKey;
use tabflow_app::{
    App, Approver, Decision, Event, Kind, Missing, Plan, Policy, RunStatus, Selection, Start, StartOptions, SystemClock,
};

use crate::support::*;

/// The demo's Finance archive plan with its question answered: one destructive move step.
async fn archive_plan(app: &App) -> Plan {
    let mut req = intent("archive-stale-content", &[("project", "Finance"), ("stale_days", "90")]);
    req.answers = BTreeMap::from([("q1".to_string(), "archive-all".to_string())]);
    let planned = app.plan(req).await.unwrap();
    let plan = planned.plan.as_ref().expect("the archive plan validates").plan().clone();
    assert!(plan.questions.is_empty(), "{:?}", plan.questions);
    plan
}

fn move_step(plan: &Plan) -> &tabflow_app::plan::Step {
    plan.steps.iter().find(|s| s.kind.as_str() == "archive-workbooks").expect("a move step")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_files_are_read_with_the_stores_key_and_checked_against_the_connected_site() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let plan = archive_plan(app).await;
    assert!(plan.fingerprint.starts_with(&format!("hmac-sha256:{}:", app.store().plan_key().id())), "{plan:?}");
    assert_eq!(app.read_plan(&plan.to_json()).unwrap(), plan, "a plan file of this store reads back");

    // Edited after it was made: the request is covered by the fingerprint.
    let mut v: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    v["request"] = "archive everything".into();
    let e = app.read_plan(&v.to_string()).expect_err("an edited plan is refused");
    assert_eq!(e.kind, Kind::Failed, "{e:?}");
    assert!(e.message.contains("fingerprint"), "{e:?}");

    // Sealed by another store's key.
    let mut other = plan.clone();
    other.seal(&PlanKey::new([9; 32]));
    let e = app.read_plan(&other.to_json()).expect_err("another store's plan is refused");
    assert!(e.message.contains("another tabflow store") && e.hint.contains("--store"), "{e:?}");

    // Sealed by this store but for another copy of the site: refused before any check runs.
    let mut elsewhere = plan.clone();
    elsewhere.site.server = "https://rehearsal.example.com".into();
    elsewhere.seal(app.store().plan_key());
    let elsewhere = app.read_plan(&elsewhere.to_json()).expect("well-formed and sealed by this store");
    let e = app.check(elsewhere).await.expect_err("another site's plan is refused");
    assert_eq!(e.kind, Kind::Failed, "{e:?}");
    assert!(e.message.contains("https://rehearsal.example.com") && e.message.contains("re-planned"), "{e:?}");
    assert!(e.hint.contains("--server"), "{e:?}");
    assert_eq!(writes(&env), 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_are_step_item_pairs_and_only_approved_pairs_run() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let plan = archive_plan(app).await;
    let step = move_step(&plan);
    let first = step.items[0].id.clone();

    // The written form is read against the plan; a pair it does not hold is refused.
    let e = Selection::parse(&plan, &format!("{}/no-such-item", step.id)).expect_err("refused");
    assert!(e.message.contains(&plan.id), "{e:?}");
    let e = app
        .request_approval(&plan.id, Selection::Pairs([("s99".to_string(), first.clone())].into()), "an-mcp-client")
        .await
        .expect_err("refused");
    assert_eq!(e.kind, Kind::Usage, "{e:?}");
    assert!(e.message.contains(&format!("s99/{first}")), "{e:?}");

    let selection = Selection::parse(&plan, &format!("{}/{first}", step.id)).unwrap();
    let req = app.request_approval(&plan.id, selection.clone(), "an-mcp-client").await.unwrap();
    assert_eq!(req.items, Some(vec![format!("{}/{first}", step.id)]));
    let row = app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, selection).await.unwrap();
    assert_eq!(row.items, Some(vec![format!("{}/{first}", step.id)]));

    let Start::Running(handle) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a write plan starts a run");
    };
    let mut events = handle.subscribe();
    let (mut done, mut skipped) = (vec![], 0);
    while let Some(e) = events.next().await {
        if let Event::ItemFinished { step_id, item_id, outcome, .. } = e
            && step_id == step.id
        {
            match outcome.as_str() {
                "done" => done.push(item_id),
                "skipped" => skipped += 1,
                other => panic!("unexpected outcome {other}"),
            }
        }
    }
    assert_eq!(done, vec![first], "only the approved pair ran");
    assert_eq!(skipped, step.items.len() - 1, "every other item was skipped as not approved");
    let outcome = handle.wait().await.unwrap();
    assert!(matches!(outcome.report.status, RunStatus::Succeeded | RunStatus::Partial), "{:?}", outcome.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_is_one_approver_whatever_name_it_runs_under() {
    let policy = Policy { required_approvers: 2, ..Policy::default() };
    let env = env(Arc::new(SystemClock), policy).await;
    let app = &env.app;
    let plan = archive_plan(app).await;

    app.approve(&Approver::terminal("alice"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    app.approve(&Approver::terminal("bob"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    let missing = Missing::NeedsAuthenticatedApprover { need: 2, terminal_names: vec!["alice".into(), "bob".into()] };
    assert_eq!(app.approval_status(&plan.id).await.unwrap().err(), Some(missing.clone()));
    let e = app.start_run(&plan.id, "tester", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsApproval(missing), "{e:?}");
    assert!(e.message.contains("the terminal counts as one") && e.message.contains("alice, bob"), "{e:?}");
    assert!(e.hint.contains("required_approvers"), "{e:?}");
    assert_eq!(writes(&env), 0, "nothing was written");

    // An authenticated approver (an API token with the approver role) is the second one.
    app.approve(&Approver::api_token("ops-approver", false), &plan.id, Decision::Approve, Selection::All)
        .await
        .unwrap();
    let grant = app.approval_status(&plan.id).await.unwrap().expect("two approvers");
    assert_eq!(grant.approvers.len(), 2, "{grant:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_not_rolled_back_on_another_copy_of_the_site() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let plan = archive_plan(app).await;
    app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    let Start::Running(handle) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a write plan starts a run");
    };
    let outcome = handle.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded, "{:?}", outcome.report);
    let run_id = outcome.report.run_id.clone();

    // The same store, connected to a rehearsal copy of the site (another server).
    let copy = demo().await;
    let rehearsal = app_on(&copy.url, env.dir.path(), Arc::new(SystemClock), Policy::default()).await;
    let e = crate::support::rollback(&rehearsal, &run_id, "tester").await.err().expect("refused on another site");
    assert_eq!(e.kind, Kind::Failed, "{e:?}");
    assert!(e.message.contains(&copy.url) && e.message.contains(&env.emu.url), "{e:?}");
    assert!(e.hint.contains("--server"), "{e:?}");
    let e = rehearsal.resume(&run_id, "tester", Default::default()).await.err().expect("refused on another site");
    assert_eq!(e.kind, Kind::Failed, "{e:?}");
    assert_eq!(copy.emulator.stats()["writes"].as_u64(), Some(0), "nothing was written to the copy");
    rehearsal.close().await.unwrap();

    // On the plan's own site the rollback goes ahead.
    let outcome = crate::support::rollback(app, &run_id, "tester").await.unwrap().wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::RolledBack, "{:?}", outcome.report);
}
