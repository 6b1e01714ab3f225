//! Rollback plans (issue #16): undoing a run is a plan of its own — the compensations of what
//! the run changed, checked, sealed and stored like any plan — approved by (step, item) pairs
//! like any destructive plan; running it undoes exactly the approved pairs and leaves the rest
//! (journaled as not approved); a stale one is refused; the policy's requester/approver rule
//! applies; and each stage is in the audit log with its actor and channel.

use std::collections::BTreeSet;
use std::sync::Arc;

use tabflow_app::plan::{Effect, StepKind};
use tabflow_app::{
    Approver, Decision, Kind, Missing, Policy, RunStatus, Selection, Start, StartOptions, SystemClock, api_actor,
};

use crate::support::*;

/// Runs the Finance archive (every stale workbook), approved at the terminal; answers the
/// run id and the original plan.
async fn archived(env: &Env) -> (String, tabflow_app::Plan) {
    let app = &env.app;
    let mut req = intent("archive-stale-content", &[("project", "Finance"), ("stale_days", "90")]);
    req.answers.insert("q1".into(), "archive-all".into());
    let planned = app.plan(req).await.unwrap();
    let plan = planned.plan.as_ref().expect("valid").plan().clone();
    assert!(plan.questions.is_empty(), "{:?}", plan.questions);
    app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    let Start::Running(h) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("a destructive plan starts a run");
    };
    let outcome = h.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded, "{:?}", outcome.report);
    (outcome.report.run_id, plan)
}

fn project_of(site: &tabflow_site::Site, workbook: &str) -> String {
    site.workbooks.iter().find(|w| w.id == workbook).map(|w| w.project_id.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_a_plan_approved_by_pairs_and_undoes_exactly_the_approved_items() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let before = env.emu.emulator.snapshot();
    let (run_id, original) = archived(&env).await;
    let moves = original.steps.iter().find(|s| s.kind == StepKind::ArchiveWorkbooks).expect("a move step");
    let writes_before = writes(&env);

    // The rollback plan: one compensate step per changing step, in reverse order, same ids;
    // checked, sealed, stored, linked to the run. Nothing changes on the site.
    let requester = api_actor("alice");
    let vp = app.plan_rollback(&run_id, &requester, "api").await.unwrap();
    let plan = vp.plan().clone();
    assert_eq!(plan.rollback_of.as_deref(), Some(run_id.as_str()));
    assert!(plan.validation.ok, "{:?}", plan.validation.findings);
    assert!(plan.fingerprint.starts_with("hmac-sha256:"), "{}", plan.fingerprint);
    assert!(plan.steps.iter().all(|s| s.kind == StepKind::Compensate && s.effect == Effect::Destructive));
    let changing: Vec<&str> =
        original.steps.iter().filter(|s| s.is_write() && !s.changes.is_empty()).map(|s| s.id.as_str()).collect();
    let undone: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(undone, changing.iter().rev().copied().collect::<Vec<_>>(), "reverse order, the run's step ids");
    let back = plan.step(&moves.id).expect("the moves are undone");
    assert_eq!(back.items.len(), moves.items.len(), "every moved workbook is an item");
    assert!(back.items.iter().all(|i| i.updated_at.is_some()), "items carry their updatedAt now");
    let orig = moves.changes.iter().find(|c| c.field == "project").expect("a move");
    assert!(
        back.changes.iter().any(|x| x.item == orig.item && x.before == orig.after && x.after == orig.before),
        "the move is put back: {:?}",
        back.changes
    );
    assert_eq!(app.get_plan(&plan.id).await.unwrap().fingerprint, plan.fingerprint, "stored as it is");
    assert_eq!(writes(&env), writes_before, "making the rollback plan writes nothing");

    // Like any destructive plan: no approval, no run; the requester may not approve it.
    let e = app.start_run(&plan.id, "bob via api", StartOptions::default()).await.err().expect("refused");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::None), "{e:?}");
    let e = app
        .approve(&Approver::api_token("alice", false), &plan.id, Decision::Approve, Selection::All)
        .await
        .expect_err("the requester may not approve");
    assert_eq!(e.kind, Kind::Forbidden, "{e:?}");

    // Another approver approves all but two workbooks.
    let left: Vec<&str> = back.items.iter().take(2).map(|i| i.id.as_str()).collect();
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for (s, i) in plan.destructive_items() {
        if !(s == back.id && left.contains(&i)) {
            pairs.insert((s.to_string(), i.to_string()));
        }
    }
    // Undoing a created project while two workbooks stay in it is refused, not attempted.
    let creates = original.steps.iter().find(|s| s.kind == StepKind::CreateProject).map(|s| s.id.clone());
    if let Some(c) = &creates {
        pairs.retain(|(s, _)| s != c);
    }
    app.approve(&Approver::api_token("bob", false), &plan.id, Decision::Approve, Selection::Pairs(pairs.clone()))
        .await
        .unwrap();
    let Start::Running(h) = app.start_run(&plan.id, "bob via api", StartOptions::default()).await.unwrap() else {
        panic!("an approved rollback plan runs");
    };
    assert_eq!(h.run_id(), run_id, "the rollback is the run's own (its journal and status)");
    let outcome = h.wait().await.unwrap();
    let r = &outcome.report;
    assert_eq!(r.status, RunStatus::Partial, "two items were left as they are: {r:?}");
    assert_eq!(r.restored, pairs.len(), "{r:?}");
    let skipped: BTreeSet<&str> = r.skipped.iter().map(|n| n.item_id.as_str()).collect();
    assert!(left.iter().all(|i| skipped.contains(i)), "{skipped:?}");
    assert!(r.skipped.iter().all(|n| n.reason == tabflow_app::NOT_APPROVED), "{:?}", r.skipped);

    // On the site: the approved workbooks are back, the two left out stay archived.
    let after = env.emu.emulator.snapshot();
    for i in &back.items {
        let was = project_of(&before, &i.id);
        if left.contains(&i.id.as_str()) {
            assert_ne!(project_of(&after, &i.id), was, "{} was not approved and stays archived", i.name);
        } else {
            assert_eq!(project_of(&after, &i.id), was, "{} is back", i.name);
        }
    }
    // The journal says so.
    let detail = app.run(&run_id).await.unwrap();
    for id in &left {
        let last = detail.journal.iter().rev().find(|e| e.item_id == *id).unwrap();
        assert_eq!(last.detail, tabflow_app::NOT_APPROVED, "{last:?}");
    }

    // A second rollback plan holds what is left: the two workbooks (and the project).
    let second = app.plan_rollback(&run_id, &requester, "api").await.unwrap().into_plan();
    let rest: BTreeSet<String> = second.destructive_items().iter().map(|(_, i)| i.to_string()).collect();
    assert!(left.iter().all(|i| rest.contains(*i)), "{rest:?}");
    assert_eq!(rest.len(), 2 + usize::from(creates.is_some()), "{rest:?}");
    app.approve(&Approver::api_token("bob", false), &second.id, Decision::Approve, Selection::All).await.unwrap();
    let Start::Running(h) = app.start_run(&second.id, "bob via api", StartOptions::default()).await.unwrap() else {
        panic!("runs");
    };
    let outcome = h.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::RolledBack, "{:?}", outcome.report);
    let d = tabflow_site::diff::diff(&before, &env.emu.emulator.snapshot());
    assert!(d.is_empty(), "both rollbacks together restore the site: {d:?}");

    // The audit log: requested (with channel), approved (approver and channel), run.
    let audit: serde_json::Value = serde_json::from_str(&app.audit_export("json").await.unwrap()).unwrap();
    let records = audit["records"].as_array().unwrap();
    let of = |action: &str| records.iter().filter(|r| r["action"] == action).cloned().collect::<Vec<_>>();
    let requested = of("rollback.requested");
    assert_eq!(requested.len(), 2);
    assert_eq!(requested[0]["actor"], requester.as_str());
    assert_eq!(requested[0]["run_id"], run_id.as_str());
    assert_eq!(requested[0]["after"]["channel"], "api");
    let approved = of("rollback.approved");
    assert_eq!(approved.len(), 2);
    assert_eq!(approved[0]["approver"], "bob via api-token");
    let ran = of("run.rollback");
    assert_eq!(ran.len(), 2);
    assert_eq!(ran[0]["actor"], "bob via api");
    assert_eq!(ran[0]["after"]["rollback_plan"], plan.id.as_str());
    assert!(app.audit_verify().await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_rollback_plan_is_refused_and_a_new_one_runs() {
    let env = env(Arc::new(SystemClock), Policy::default()).await;
    let app = &env.app;
    let (run_id, _) = archived(&env).await;
    let plan = app.plan_rollback(&run_id, "tester", "terminal").await.unwrap().into_plan();
    app.approve(&Approver::terminal("tester"), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    // Someone changes one of its workbooks after the plan was made.
    let changed = plan.steps.iter().flat_map(|s| &s.items).find(|i| i.kind == "workbook").unwrap().clone();
    env.emu.emulator.with_site(|s| {
        let w = s.workbooks.iter_mut().find(|w| w.id == changed.id).unwrap();
        w.tags.push("touched".into());
        w.updated_at += chrono::Duration::seconds(5);
    });
    let writes_before = writes(&env);
    let e = app.start_run(&plan.id, "tester", StartOptions::default()).await.err().expect("stale");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::Stale), "{e:?}");
    assert!(e.message.contains(&changed.name) && e.message.contains("stale"), "{e:?}");
    assert!(e.hint.contains(&format!("tabflow runs rollback {run_id}")), "{e:?}");
    assert_eq!(writes(&env), writes_before, "a stale rollback plan writes nothing");
    assert_eq!(app.run(&run_id).await.unwrap().run.status, RunStatus::Succeeded, "the run is untouched");

    // A new rollback plan, made against the site as it is now, runs; the changed workbook
    // is put back where it was (its tag change is someone else's and stays).
    let again = crate::support::rollback(app, &run_id, "tester").await.unwrap();
    let outcome = again.wait().await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::RolledBack, "{:?}", outcome.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_required_approvers_apply_to_a_rollback_plan() {
    let env = env(Arc::new(SystemClock), Policy { required_approvers: 2, ..Policy::default() }).await;
    let app = &env.app;
    let mut req = intent("archive-stale-content", &[("project", "Finance"), ("stale_days", "90")]);
    req.answers.insert("q1".into(), "archive-all".into());
    let plan = app.plan(req).await.unwrap().plan.unwrap().into_plan();
    for who in ["a1", "a2"] {
        app.approve(&Approver::api_token(who, false), &plan.id, Decision::Approve, Selection::All).await.unwrap();
    }
    let Start::Running(h) = app.start_run(&plan.id, "tester", StartOptions::default()).await.unwrap() else {
        panic!("runs");
    };
    let run_id = h.wait().await.unwrap().report.run_id;
    let rb = app.plan_rollback(&run_id, &api_actor("req"), "api").await.unwrap().into_plan();
    app.approve(&Approver::api_token("a1", false), &rb.id, Decision::Approve, Selection::All).await.unwrap();
    let e = app.start_run(&rb.id, "a1 via api", StartOptions::default()).await.err().expect("one is not enough");
    assert_eq!(e.kind, Kind::NeedsApproval(Missing::NotEnoughApprovers { have: 1, need: 2 }), "{e:?}");
    app.approve(&Approver::api_token("a2", false), &rb.id, Decision::Approve, Selection::All).await.unwrap();
    let Start::Running(h) = app.start_run(&rb.id, "a2 via api", StartOptions::default()).await.unwrap() else {
        panic!("runs");
    };
    assert_eq!(h.wait().await.unwrap().report.status, RunStatus::RolledBack);
}
