//! The `rollback` check: how well each write step can be undone, which destructive steps
//! cannot be undone at all (they need an explicit acknowledgement), and a step whose stored
//! rollback class differs from the one its changes give (refused: derived, never taken from
//! the file).

use std::collections::BTreeMap;

use super::finding;
use crate::plan::{Check, Effect, Finding, Level, Plan, PlanError, RollbackClass};

/// Answers the steps that need an acknowledgement to run.
pub(super) fn rollback(plan: &Plan, findings: &mut Vec<Finding>) -> Vec<String> {
    for e in plan.class_errors() {
        if let PlanError::Classes { step, stored, derived, .. } = &e
            && stored.0 == derived.0
        {
            findings.push(finding(Check::Rollback, Level::Error, e.to_string(), Some(step), vec![]));
        }
    }
    let mut needs_ack = vec![];
    let mut by_class: BTreeMap<RollbackClass, Vec<&str>> = BTreeMap::new();
    for s in plan.steps.iter().filter(|s| s.is_write() && !s.changes.is_empty()) {
        by_class.entry(s.rollback).or_default().push(&s.id);
        if s.rollback == RollbackClass::None && s.effect == Effect::Destructive {
            needs_ack.push(s.id.clone());
        }
    }
    if by_class.is_empty() {
        findings.push(finding(
            Check::Rollback,
            Level::Info,
            "nothing to undo: the plan only reads".into(),
            None,
            vec![],
        ));
    }
    for (class, steps) in &by_class {
        let (level, what) = match class {
            RollbackClass::Exact => (Level::Info, "can be undone exactly"),
            RollbackClass::Snapshot => (Level::Info, "can be restored from saved copies"),
            RollbackClass::Lossy => (Level::Warning, "can be undone only in part (re-created items get new ids)"),
            RollbackClass::None => (Level::Warning, "CANNOT be undone"),
        };
        findings.push(finding(
            Check::Rollback,
            level,
            format!(
                "{} {what}",
                if steps.len() == 1 { format!("step {}", steps[0]) } else { format!("steps {}", steps.join(", ")) }
            ),
            None,
            vec![],
        ));
    }
    if !needs_ack.is_empty() {
        findings.push(finding(
            Check::Rollback,
            Level::Warning,
            format!(
                "step(s) {} are destructive and cannot be undone: running them needs an explicit acknowledgement",
                needs_ack.join(", ")
            ),
            None,
            vec![],
        ));
    }
    needs_ack
}
