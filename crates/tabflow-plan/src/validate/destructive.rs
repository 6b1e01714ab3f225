//! The `destructive-operations` check: every step that moves, re-owns, revokes or deletes
//! needs an approval and stays within the policy's blast radius; no write step may touch
//! content the policy protects; a step marked less destructive than its changes are is
//! refused (effects are derived, never taken from the file).

use std::collections::BTreeSet;

use super::{Facts, finding, items_of, plural};
use crate::plan::{Check, Effect, Finding, Level, Plan, PlanError};
use crate::policy::Policy;

/// `destructive-operations`: approval needed, blast radius, protected content, derived effects.
pub(super) fn destructive_operations(plan: &Plan, facts: &Facts, policy: &Policy, findings: &mut Vec<Finding>) {
    for e in plan.class_errors() {
        if let PlanError::Classes { step, stored, derived, .. } = &e
            && stored.0 != derived.0
        {
            findings.push(finding(Check::DestructiveOperations, Level::Error, e.to_string(), Some(step), vec![]));
        }
    }
    let mut any_destructive = false;
    for s in &plan.steps {
        let changed = s.changed_items();
        if s.effect != Effect::Destructive || changed.is_empty() {
            continue;
        }
        any_destructive = true;
        let fields: BTreeSet<&str> = s.changes.iter().map(|c| c.field.as_str()).collect();
        let kinds: BTreeSet<&str> = s.items.iter().map(|i| i.kind.as_str()).collect();
        findings.push(finding(
            Check::DestructiveOperations,
            Level::Warning,
            format!(
                "step {} ({}) changes {} of {} ({}); it needs approval",
                s.id,
                s.title,
                plural(changed.len(), "item", "items"),
                kinds.into_iter().collect::<Vec<_>>().join("/"),
                fields.into_iter().collect::<Vec<_>>().join(", ")
            ),
            Some(&s.id),
            vec![],
        ));
        if changed.len() > policy.max_items_per_destructive_step {
            findings.push(finding(
                Check::DestructiveOperations,
                Level::Error,
                format!(
                    "step {} changes {} items; the policy allows at most {} per destructive step (max_items_per_destructive_step) — narrow the request or split it",
                    s.id,
                    changed.len(),
                    policy.max_items_per_destructive_step
                ),
                Some(&s.id),
                vec![],
            ));
        }
    }
    if !any_destructive {
        findings.push(finding(
            Check::DestructiveOperations,
            Level::Info,
            "no step deletes, moves, re-owns or revokes anything".into(),
            None,
            vec![],
        ));
    }
    // Protected content, for every write step.
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        let mut hit = vec![];
        let items = items_of(s);
        for id in s.changed_items() {
            let Some((_, project, tags, _)) = facts.items.get(id) else { continue };
            let path = facts.project_path(project);
            let by_project = path.iter().find(|n| policy.is_protected_project(n));
            let by_tag = tags.iter().find(|t| policy.is_protected_tag(t));
            if let Some(why) =
                by_project.map(|p| format!("in protected project '{p}'")).or(by_tag.map(|t| format!("tagged '{t}'")))
            {
                let name = items.get(id).map(|i| i.name.clone()).unwrap_or_else(|| id.to_string());
                hit.push((id.to_string(), format!("{name} ({why})")));
            }
        }
        if !hit.is_empty() {
            findings.push(finding(
                Check::DestructiveOperations,
                Level::Error,
                format!(
                    "step {} touches content the policy protects: {} — remove these items or change the policy",
                    s.id,
                    hit.iter().map(|h| h.1.as_str()).collect::<Vec<_>>().join("; ")
                ),
                Some(&s.id),
                hit.into_iter().map(|h| h.0).collect(),
            ));
        }
    }
}
