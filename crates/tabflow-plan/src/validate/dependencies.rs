//! The `dependencies` check: what else a step affects — subscriptions and data alerts on the
//! items it moves, workbooks still using a datasource it changes (after the plan's own
//! repoints), accounts deleted while they still own content, and two items of one name
//! ending up in one project.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Facts, finding, items_of, plural};
use crate::plan::{Check, Finding, Level, Plan, Step};

/// `dependencies`: subscriptions, alerts, dependent workbooks, accounts with content, name clashes.
pub(super) fn dependencies(plan: &Plan, facts: &Facts, findings: &mut Vec<Finding>) {
    let mut n = 0;
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        n += watched(s, facts, findings);
        n += dependent_workbooks(plan, s, facts, findings);
        n += accounts_still_owning(plan, s, facts, findings);
    }
    n += name_clashes(plan, facts, findings);
    if n == 0 {
        findings.push(finding(
            Check::Dependencies,
            Level::Info,
            "no subscriptions, alerts or dependent workbooks are affected; steps are ordered".into(),
            None,
            vec![],
        ));
    }
}

/// Subscriptions and data alerts on the items a step moves, deletes or re-owns. Answers the
/// number of findings.
fn watched(s: &Step, facts: &Facts, findings: &mut Vec<Finding>) -> usize {
    let mut n = 0;
    let moved: Vec<&str> = s
        .changes
        .iter()
        .filter(|c| matches!(c.field.as_str(), "project" | "exists" | "owner"))
        .map(|c| c.item.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let subs: Vec<(&str, usize)> =
        moved.iter().filter_map(|i| facts.subscriptions.get(*i).map(|v| (*i, v.len()))).collect();
    if !subs.is_empty() {
        n += 1;
        let total: usize = subs.iter().map(|x| x.1).sum();
        findings.push(finding(
            Check::Dependencies,
            Level::Warning,
            format!(
                "{} point at {} changed by step {} (they keep working after a move; subscribers may lose access if permissions change)",
                plural(total, "subscription", "subscriptions"),
                plural(subs.len(), "item", "items"),
                s.id
            ),
            Some(&s.id),
            subs.iter().map(|x| x.0.to_string()).collect(),
        ));
    }
    let alerts: Vec<&str> = moved.iter().copied().filter(|i| facts.alerts.contains_key(*i)).collect();
    if !alerts.is_empty() {
        n += 1;
        findings.push(finding(
            Check::Dependencies,
            Level::Warning,
            format!("data alerts watch {} changed by step {}", plural(alerts.len(), "workbook", "workbooks"), s.id),
            Some(&s.id),
            alerts.iter().map(|x| x.to_string()).collect(),
        ));
    }
    n
}

/// Workbooks still using a datasource the step changes. Answers the number of findings.
fn dependent_workbooks(plan: &Plan, s: &Step, facts: &Facts, findings: &mut Vec<Finding>) -> usize {
    let mut n = 0;
    // Workbooks that an earlier step of this plan repoints away from a datasource no
    // longer depend on it when this step runs.
    let earlier = plan.steps_before(&s.id);
    let repointed: HashSet<(&str, &str)> = plan
        .steps
        .iter()
        .filter(|e| earlier.contains(e.id.as_str()))
        .flat_map(|e| e.changes.iter())
        .filter(|c| c.field == "datasource")
        .filter_map(|c| c.before_id.as_deref().map(|from| (from, c.item.as_str())))
        .collect();
    let changed: HashSet<&str> = s.changes.iter().map(|c| c.item.as_str()).collect();
    let ds: Vec<(&str, usize)> = s
        .items
        .iter()
        .filter(|i| i.kind == "datasource" && changed.contains(i.id.as_str()))
        .filter_map(|i| {
            let left = facts
                .dependent_ids
                .get(&i.id)?
                .iter()
                .filter(|w| !repointed.contains(&(i.id.as_str(), w.as_str())))
                .count();
            (left > 0).then_some((i.id.as_str(), left))
        })
        .collect();
    if !ds.is_empty() {
        n += 1;
        let total: usize = ds.iter().map(|x| x.1).sum();
        findings.push(finding(
            Check::Dependencies,
            Level::Warning,
            format!(
                "{} depend on {} changed by step {} (lineage from the Metadata API)",
                plural(total, "workbook", "workbooks"),
                plural(ds.len(), "datasource", "datasources"),
                s.id
            ),
            Some(&s.id),
            ds.iter().map(|x| x.0.to_string()).collect(),
        ));
    }
    n
}

/// Accounts the step deletes while they still own content. Answers the number of findings.
fn accounts_still_owning(plan: &Plan, s: &Step, facts: &Facts, findings: &mut Vec<Finding>) -> usize {
    let mut n = 0;
    // Accounts deleted: never with content left. What an earlier step of the plan hands
    // to someone else no longer counts.
    let items = items_of(s);
    let is_user = |id: &str| items.get(id).is_some_and(|i| i.kind == "user");
    for c in s.changes.iter().filter(|c| c.field == "exists" && is_user(&c.item)) {
        if !c.after.is_null() {
            continue;
        }
        let handed: BTreeSet<&str> = plan
            .steps
            .iter()
            .take_while(|t| t.id != s.id)
            .flat_map(|t| t.changes.iter())
            .filter(|x| x.field == "owner" && x.before_id.as_deref() == Some(c.item.as_str()))
            .map(|x| x.item.as_str())
            .collect();
        let mut left: Vec<&str> = facts
            .items
            .iter()
            .filter(|(id, (owner, ..))| *owner == c.item && !handed.contains(id.as_str()))
            .map(|(id, _)| id.as_str())
            .collect();
        left.sort();
        if !left.is_empty() {
            n += 1;
            findings.push(finding(
                Check::Dependencies,
                Level::Error,
                format!(
                    "step {} deletes an account that would still own {} ({}); transfer them in an earlier step first (re-plan the offboarding)",
                    s.id,
                    plural(left.len(), "item", "items"),
                    left.iter()
                        .take(5)
                        .map(|id| match facts.names.get(*id) {
                            Some((kind, name)) => format!("{kind} '{name}'"),
                            None => format!("project '{}'", facts.project_name(id)),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(&s.id),
                left.iter().map(|x| x.to_string()).collect(),
            ));
        }
    }
    n
}

/// Moves that would put two workbooks (or two datasources) of the same name into one
/// project: Tableau refuses the second with 409 Resource Conflict, so the plan is refused
/// before anything runs. Names compare case-insensitively.
fn name_clashes(plan: &Plan, facts: &Facts, findings: &mut Vec<Finding>) -> usize {
    // Where each item ends up after the plan (project id, or "ref:<step>" for a project the
    // plan creates).
    let mut dest: HashMap<&str, String> = HashMap::new();
    let mut step_of: HashMap<&str, &str> = HashMap::new();
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        for c in s.changes.iter().filter(|c| c.field == "project") {
            let to = match (&c.after_id, &c.after_ref) {
                (Some(id), _) => id.clone(),
                (None, Some(r)) => format!("ref:{r}"),
                _ => continue,
            };
            dest.insert(c.item.as_str(), to);
            step_of.insert(c.item.as_str(), s.id.as_str());
        }
    }
    if dest.is_empty() {
        return 0;
    }
    let targets: BTreeSet<&str> = dest.values().map(String::as_str).collect();
    // (target, type, lower-case name) → items there after the plan.
    let mut there: BTreeMap<(&str, &str, String), Vec<&str>> = BTreeMap::new();
    for (id, (kind, name)) in &facts.names {
        let at = match dest.get(id.as_str()) {
            Some(d) => d.as_str(),
            None => match facts.items.get(id) {
                Some((_, project, _, _)) if targets.contains(project.as_str()) => project.as_str(),
                _ => continue,
            },
        };
        there.entry((at, kind.as_str(), name.to_lowercase())).or_default().push(id.as_str());
    }
    let mut n = 0;
    for ((at, kind, _), ids) in there {
        if ids.len() < 2 || !ids.iter().any(|i| dest.contains_key(i)) {
            continue;
        }
        let mut ids = ids;
        ids.sort_unstable();
        let moving: Vec<String> = ids.iter().filter(|i| dest.contains_key(*i)).map(|i| i.to_string()).collect();
        let step = step_of.get(moving[0].as_str()).copied();
        let name = facts.names.get(ids[0]).map(|x| x.1.clone()).unwrap_or_default();
        let project = at
            .strip_prefix("ref:")
            .map(|r| format!("the project step {r} creates"))
            .unwrap_or_else(|| format!("project '{}'", facts.project_name(at)));
        n += 1;
        findings.push(finding(
            Check::Dependencies,
            Level::Error,
            format!(
                "{} {kind}s named '{name}' would end up in {project}; Tableau refuses the second — exclude or rename all but one",
                ids.len()
            ),
            step,
            moving,
        ));
    }
    n
}
