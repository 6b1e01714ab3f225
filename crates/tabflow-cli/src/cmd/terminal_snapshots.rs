//! Snapshot tests (`insta`) of what a person reads in a terminal (issue #19): the plan and
//! its one-line summary, a question, the progress block at 80 and 120 columns (drawn by the
//! pure [`crate::progress::Block::render`]), and the run's final summary. The plans are real
//! plans of the built-in demo site (tests/fixtures, written by `tabflow plan --json`); the
//! events and timings are fixed, so every rendering is the same on every machine.

use std::time::Duration;

use serde_json::json;
use tabflow_app::{Event, Plan, RunReport, RunStatus};
use tabflow_engine::executor::{ItemNote, StepReport};

use super::workflow::{render, report_text, summary};
use crate::progress::Block;

fn plan(name: &str) -> Plan {
    let text = match name {
        "question" => include_str!("../../tests/fixtures/archive-question.json"),
        _ => include_str!("../../tests/fixtures/archive-plan.json"),
    };
    serde_json::from_str(text).expect("the fixture is a plan")
}

#[test]
fn plan_and_its_summary() {
    let p = plan("plan");
    insta::assert_snapshot!("plan", render(&p));
    insta::assert_snapshot!("plan_summary", summary(&p));
}

#[test]
fn a_question() {
    let p = plan("question");
    assert!(!p.questions.is_empty(), "the fixture asks");
    let text = render(&p);
    let at = text.find("\n? [").expect("the question is printed") + 1;
    insta::assert_snapshot!("question", &text[at..]);
}

/// The events of a run half-way through its move step: the read step done, 12 of 23 items
/// moved in 4 s (two of them skipped), and the reviewer's approval of 21 of 23.
fn half_way() -> Block {
    let p = plan("plan");
    let s2 = &p.steps[1];
    let confirmations =
        vec![(s2.id.clone(), "you approved 21 of 23 items of the next step (2 left out: not touched)".to_string())];
    let mut b = Block::new(Some(&p), &confirmations);
    let run = "r-20261203-160000-abcd".to_string();
    let at = Duration::from_millis;
    b.apply(
        &Event::RunStarted { run_id: run.clone(), plan_id: p.id.clone(), request: p.request.clone(), steps: 2 },
        at(0),
    );
    let s1 = &p.steps[0];
    b.apply(
        &Event::StepStarted {
            run_id: run.clone(),
            index: 1,
            total: 2,
            step_id: s1.id.clone(),
            title: s1.title.clone(),
            items: s1.items.len(),
            effect: "read".into(),
        },
        at(0),
    );
    b.apply(
        &Event::StepFinished {
            run_id: run.clone(),
            step_id: s1.id.clone(),
            done: 0,
            skipped: 0,
            failed: 0,
            elapsed_ms: 0,
        },
        at(10),
    );
    b.apply(
        &Event::StepStarted {
            run_id: run.clone(),
            index: 2,
            total: 2,
            step_id: s2.id.clone(),
            title: s2.title.clone(),
            items: 23,
            effect: "destructive".into(),
        },
        at(1000),
    );
    for k in 1..=12usize {
        let item = &s2.items[k - 1];
        let (outcome, detail) = if k <= 2 { ("skipped", "not approved") } else { ("done", "") };
        b.apply(
            &Event::ItemFinished {
                run_id: run.clone(),
                step_id: s2.id.clone(),
                k,
                m: 23,
                item_id: item.id.clone(),
                name: item.name.clone(),
                outcome: outcome.into(),
                detail: detail.into(),
            },
            at(1000 + 4000 * k as u64 / 12),
        );
    }
    b
}

#[test]
fn progress_block_at_80_and_120_columns() {
    let b = half_way();
    let at80 = b.render(80);
    assert!(at80.iter().all(|l| console::measure_text_width(l) <= 80), "{at80:#?}");
    insta::assert_snapshot!("progress_80", at80.join("\n"));
    let at120 = b.render(120);
    assert!(at120.iter().all(|l| console::measure_text_width(l) <= 120), "{at120:#?}");
    insta::assert_snapshot!("progress_120", at120.join("\n"));
}

#[test]
fn progress_block_after_ctrl_c() {
    let mut b = half_way();
    b.stopping();
    insta::assert_snapshot!("progress_stopping_120", b.render(120).join("\n"));
    // The items in flight finish (two more), then the step and the run end.
    let p = plan("plan");
    b.apply(
        &Event::StepFinished {
            run_id: "r-20261203-160000-abcd".into(),
            step_id: p.steps[1].id.clone(),
            done: 12,
            skipped: 2,
            failed: 0,
            elapsed_ms: 5200,
        },
        Duration::from_millis(6200),
    );
    b.apply(
        &Event::RunFinished { run_id: "r-20261203-160000-abcd".into(), status: "interrupted".into() },
        Duration::from_millis(6300),
    );
    insta::assert_snapshot!("progress_stopped_120", b.render(120).join("\n"));
}

#[test]
fn final_summary() {
    let p = plan("plan");
    let s2 = &p.steps[1];
    let note = |i: usize| ItemNote {
        step_id: s2.id.clone(),
        item_id: s2.items[i].id.clone(),
        name: s2.items[i].name.clone(),
        reason: "not approved".into(),
    };
    let report = RunReport {
        run_id: "r-20261203-160000-abcd".into(),
        status: RunStatus::Partial,
        steps: vec![
            StepReport { id: "s1".into(), status: "succeeded".into(), done: 0, failed: 0, skipped: 0 },
            StepReport { id: "s2".into(), status: "partial".into(), done: 21, failed: 0, skipped: 2 },
        ],
        skipped: vec![note(0), note(1)],
        failed: vec![],
        restored: 0,
        not_restored: vec![],
        recreated: vec![],
        reports: vec![
            json!({"format": "md", "path": "/data/reports/r-20261203-160000-abcd.md"}),
            json!({"format": "html", "path": "/data/reports/r-20261203-160000-abcd.html"}),
        ],
        elapsed_ms: 4210,
        notifications: None,
        staged: None,
    };
    insta::assert_snapshot!("final_summary", report_text(&report));
    let stopped = RunReport { status: RunStatus::Interrupted, skipped: vec![], ..report.clone() };
    insta::assert_snapshot!("final_summary_interrupted", report_text(&stopped));
    // A rollback's own report leads with what it put back, not "0 items done".
    let undone = RunReport {
        status: RunStatus::RolledBack,
        steps: vec![],
        skipped: vec![],
        restored: 20,
        not_restored: vec![ItemNote { reason: "changed since the run: left as it is".into(), ..note(0) }],
        ..report
    };
    let text = report_text(&undone);
    let lines: Vec<&str> = text.lines().take(2).collect();
    assert_eq!(
        lines,
        [
            "Run r-20261203-160000-abcd rolled-back in 4.2 s: 20 items restored, 1 not restored.",
            &format!("  NOT restored {} ({}): changed since the run: left as it is", s2.items[0].name, s2.items[0].id),
        ],
        "{text}"
    );
}
