//! Plan → answer → approval → run with its event stream → rollback, through the service;
//! the refusals a front end maps to "needs input" and "needs approval"; approval expiry on
//! the injected clock, and staged deletes' grace period on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tabflow_app::{
    Approver, Clock, Decision, Event, FixedClock, Kind, Missing, Policy, RunStatus, Selection, Start, StartOptions,
    SystemClock,
};

use crate::support::*;

const ARCHIVE: (&str, &[(&str, &str)]) = ("archive-stale-content", &[("project", "Finance"), ("stale_days", "90")]);

fn answers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_answer_approve_run_events_in_order_then_rollback() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let before = env.emu.emulator.snapshot();

    // A plan with a question: it cannot start, and nothing is written.
    let planned = app.plan(intent(ARCHIVE.0, ARCHIVE.1)).await.unwrap();
    let first = planned.plan.as_ref().expect("the archive plan validates").plan().clone();
    let q = first.questions.first().expect("the archive plan asks what to do with the stale workbooks");
    let e = app.start_run(&first.id, "tester", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsInput, "{e:?}");
    assert!(e.message.contains(&q.id), "{e:?}");

    // Answering gives a new plan, from the stored one's request and intents.
    let planned = app.answer(&first.id, answers(&[(&q.id, "archive-all")]), "tester").await.unwrap();
    let plan = planned.plan.as_ref().unwrap().plan().clone();
    assert_ne!(plan.id, first.id);
    assert!(plan.questions.is_empty(), "{:?}", plan.questions);
    assert_eq!(plan.answers.get(&q.id).map(String::as_str), Some("archive-all"));
    let moves = plan.steps.iter().find(|s| s.kind.as_str() == "archive-workbooks").expect("a move step");
    assert_eq!(moves.items.len(), 23, "the demo's Finance has 23 stale workbooks");

    // Destructive: no approval, no run; a request for approval grants nothing.
    let e = app.start_run(&plan.id, "tester", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::None), "{e:?}");
    let req = app.request_approval(&plan.id, Selection::All, "an-mcp-client").await.unwrap();
    assert_eq!(req.plan_id, plan.id);
    let listed: Vec<String> = app.approval_requests(&plan.id).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![req.id.clone()]);
    assert_eq!(app.approval_status(&plan.id).await.unwrap().err(), Some(Missing::None));
    let e = app.start_run(&plan.id, "tester", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::None), "{e:?}");
    assert_eq!(writes(&env), 0, "a refused start writes nothing");

    // Approved at the terminal: the run starts and streams the engine's events in order.
    let row = app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    assert_eq!(row.fingerprint, plan.fingerprint);
    assert!(app.approval_status(&plan.id).await.unwrap().is_ok());
    let Start::Running(handle) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a write plan starts a run");
    };
    let run_id = handle.run_id().to_string();
    let mut events = handle.subscribe();
    let mut seen = vec![];
    while let Some(e) = events.next().await {
        seen.push(e);
    }
    assert!(
        matches!(&seen[0], Event::RunStarted { run_id: r, plan_id, .. } if *r == run_id && *plan_id == plan.id),
        "a late subscriber still gets the run's first event: {:?}",
        seen.first()
    );
    assert!(
        matches!(seen.last(), Some(Event::RunFinished { status, .. }) if status == "succeeded"),
        "{:?}",
        seen.last()
    );
    // Every step: started, its items, finished — never interleaved with another step.
    let mut open: Option<String> = None;
    let mut started = vec![];
    let mut items_of_moves = 0;
    for e in &seen[1..seen.len() - 1] {
        match e {
            Event::StepStarted { step_id, .. } => {
                assert!(open.is_none(), "step {step_id} started inside {open:?}");
                open = Some(step_id.clone());
                started.push(step_id.clone());
            }
            Event::ItemFinished { step_id, outcome, .. } => {
                assert_eq!(open.as_ref(), Some(step_id), "an item outside its step");
                assert_eq!(outcome, "done");
                if *step_id == moves.id {
                    items_of_moves += 1;
                }
            }
            Event::StepFinished { step_id, failed, .. } => {
                assert_eq!(open.take().as_ref(), Some(step_id));
                assert_eq!(*failed, 0);
            }
            other => panic!("unexpected event in a clean run: {other:?}"),
        }
    }
    assert!(open.is_none());
    assert!(started.contains(&moves.id), "{started:?}");
    assert_eq!(items_of_moves, 23);
    assert_eq!(handle.events(), seen, "the handle's state is the stream so far");

    let outcome = handle.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert_eq!(outcome.report.reports.len(), 4, "{:?}", outcome.report.reports);
    assert!(env.dir.path().join("reports").join(format!("{run_id}.md")).exists());
    assert!(writes(&env) >= 23, "the run moved the workbooks");

    // The approval was used: a second start of the same plan needs a new one.
    let e = app.start_run(&plan.id, "tester", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::None), "{e:?}");

    // Rollback through the service: item restorations streamed, the site as before.
    let handle = crate::support::rollback(app, &run_id, "tester").await.unwrap();
    let mut events = handle.subscribe();
    let mut restored = 0;
    while let Some(e) = events.next().await {
        if let Event::ItemRestored { outcome, .. } = e {
            assert_eq!(outcome, "restored");
            restored += 1;
        }
    }
    assert!(restored >= 23, "{restored}");
    let outcome = handle.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::RolledBack, "{:?}", outcome.report);
    let after = env.emu.emulator.snapshot();
    let d = tabflow_site::diff::diff(&before, &after);
    assert!(d.is_empty(), "the rollback left differences: {d:?}");

    let e = crate::support::rollback(app, &run_id, "tester").await.err().expect("refused");
    assert_eq!(e.kind, Kind::Usage, "{e:?}");
    let runs = app.runs(10).await.unwrap();
    assert_eq!(runs[0].id, run_id);
    assert_eq!(runs[0].status, RunStatus::RolledBack);
    assert!(app.audit_verify().await.unwrap().ok);
    let audit = app.audit_export("json").await.unwrap();
    assert!(audit.contains("approval.requested") && audit.contains("approval.approve"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_expires_on_the_injected_clock() {
    let clock = FixedClock::new(chrono::Utc::now());
    let policy = Policy { approval_ttl_hours: 24, ..Policy::default() };
    let env = env(Arc::new(clock.clone()), policy).await;
    let app = &env.app;
    let mut req = intent(ARCHIVE.0, ARCHIVE.1);
    req.answers = answers(&[("q1", "archive-all")]);
    let planned = app.plan(req).await.unwrap();
    let plan = planned.plan.as_ref().unwrap().plan().clone();
    assert!(plan.questions.is_empty(), "{:?}", plan.questions);

    let row = app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    assert_eq!(row.created_at, clock.now(), "the approval is dated by the service's clock");
    clock.advance(chrono::Duration::hours(23));
    assert!(app.approval_status(&plan.id).await.unwrap().is_ok(), "still valid after 23 hours");
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(app.approval_status(&plan.id).await.unwrap().err(), Some(Missing::Expired));
    let e = app.start_run(&plan.id, "tester", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::Expired), "{e:?}");
    assert!(e.message.contains("expired"), "{e:?}");
    assert_eq!(writes(&env), 0, "nothing was written");
    assert!(app.runs(10).await.unwrap().is_empty(), "no run was recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_a_rejection_are_typed_errors_that_change_nothing() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;

    let e = app.plan(intent("archive-stale-contnet", &[("project", "Finance")])).await.err().expect("refused");
    assert_eq!(e.kind, Kind::Usage, "{e:?}");
    assert!(e.hint.contains("did you mean archive-stale-content"), "{e:?}");
    let e = app.get_plan("p-nope").await.expect_err("refused");
    assert_eq!(e.kind, Kind::NotFound, "{e:?}");
    assert!(e.message.contains("p-nope"), "{e:?}");

    let mut req = intent(ARCHIVE.0, ARCHIVE.1);
    req.answers = answers(&[("q1", "archive-all")]);
    let planned = app.plan(req).await.unwrap();
    let plan = planned.plan.as_ref().unwrap().plan().clone();
    let tester = Approver::terminal("tester");
    let step = plan.steps.iter().find(|s| s.kind.as_str() == "archive-workbooks").expect("a move step").id.clone();
    let only = Selection::Pairs([(step.clone(), "no-such-item".to_string())].into());
    let e = app.approve(&tester, &plan.id, Decision::Approve, only).await.expect_err("refused");
    assert_eq!(e.kind, Kind::Usage, "{e:?}");
    assert!(e.message.contains(&format!("{step}/no-such-item")), "{e:?}");

    app.approve(&tester, &plan.id, Decision::Reject, Selection::All).await.unwrap();
    app.approve(&tester, &plan.id, Decision::Approve, Selection::All).await.unwrap();
    let e = app.start_run(&plan.id, "tester", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::Rejected("tester".into())), "{e:?}");
    assert_eq!(writes(&env), 0, "nothing was written");
    let audit = app.audit_export("csv").await.unwrap();
    assert!(audit.contains("approval.reject"), "{audit}");
    assert_eq!(app.audit_export("xml").await.err().map(|e| e.kind), Some(Kind::Usage));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_deletes_wait_out_their_grace_period_on_the_injected_clock() {
    // Whole seconds: the store keeps microseconds.
    let clock = FixedClock::new(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0));
    let policy = Policy { grace_days: 30, ..Policy::default() };
    let env = env(Arc::new(clock.clone()), policy).await;
    let app = &env.app;
    let mut req = intent("delete-content", &[("project", "Finance"), ("stale_days", "90")]);
    req.answers = answers(&[("q1", "delete-all")]);
    let planned = app.plan(req).await.unwrap();
    let plan = planned.plan.as_ref().expect("the delete plan validates").plan().clone();
    assert!(plan.questions.is_empty(), "{:?}", plan.questions);
    app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    let Start::Running(handle) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a delete plan starts a run");
    };
    assert_eq!(handle.wait().await.unwrap().report.status, RunStatus::Succeeded);

    // Quarantined "now" by the service's clock, due grace_days later.
    let staged = app.store().staged().await.unwrap();
    assert!(staged.len() > 5, "the demo's Finance has stale workbooks: {staged:?}");
    for s in &staged {
        assert_eq!(s.quarantined_at, clock.now(), "{s:?}");
        assert_eq!(s.purge_after, clock.now() + chrono::Duration::days(30), "{s:?}");
    }
    // A day before the end of the grace period nothing is purged; a day after, all of them.
    clock.advance(chrono::Duration::days(29));
    let p = app.purge("tester", false).await.unwrap();
    assert!(p.purged.is_empty(), "{p:?}");
    assert_eq!(p.waiting.len(), staged.len(), "{p:?}");
    clock.advance(chrono::Duration::days(2));
    let p = app.purge("tester", false).await.unwrap();
    assert_eq!(p.purged.len(), staged.len(), "{p:?}");
    assert!(p.waiting.is_empty() && p.kept.is_empty(), "{p:?}");
}
