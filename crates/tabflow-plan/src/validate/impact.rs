//! The `impact` check: how many items, projects, owners and users the plan's writes touch,
//! and how many bytes — the plan's `impact`, and one finding saying it in words.

use std::collections::BTreeSet;

use super::{Facts, finding, items_of, plural};
use crate::plan::{Check, Finding, Impact, Level, Plan};

/// `impact`: answers the plan's impact and says it in one finding.
pub(super) fn impact(plan: &Plan, facts: &Facts, findings: &mut Vec<Finding>) -> Impact {
    let mut items: BTreeSet<&str> = BTreeSet::new();
    let mut owners: BTreeSet<String> = BTreeSet::new();
    let mut projects: BTreeSet<String> = BTreeSet::new();
    let mut users: BTreeSet<&str> = BTreeSet::new();
    // A group's members are added once, however many changed items it is granted on.
    let mut groups_seen: BTreeSet<&str> = BTreeSet::new();
    let mut bytes = 0u64;
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        let step_items = items_of(s);
        for id in s.changed_items() {
            if !items.insert(id) {
                continue;
            }
            if let Some((owner, project, _, size)) = facts.items.get(id) {
                owners.insert(owner.clone());
                if !project.is_empty() {
                    projects.insert(project.clone());
                }
                bytes += size;
            } else if let Some(sz) = step_items.get(id).and_then(|i| i.size) {
                bytes += sz;
            }
            users.extend(facts.audience.get(id).into_iter().flatten().map(String::as_str));
            for g in facts.audience_groups.get(id).into_iter().flatten() {
                if groups_seen.insert(g.as_str()) {
                    users.extend(facts.members.get(g).into_iter().flatten().map(String::as_str));
                }
            }
            if step_items.get(id).is_some_and(|i| i.kind == "user") {
                users.insert(id);
            }
        }
        for c in &s.changes {
            if c.field == "project" {
                if let Some(a) = &c.after_id {
                    projects.insert(a.clone());
                } else if let Some(r) = &c.after_ref {
                    let name =
                        c.after.as_str().map(str::to_string).unwrap_or_else(|| format!("the project {r} creates"));
                    projects.insert(format!("{name} (new)"));
                }
            }
        }
    }
    let impact = Impact {
        items: items.len() as u64,
        users_affected: users.len() as u64,
        projects: projects.len() as u64,
        owners: owners.len() as u64,
        bytes,
    };
    let project_names: Vec<String> =
        projects.iter().map(|p| if p.starts_with('(') { p.clone() } else { facts.project_name(p) }).collect();
    let message = if items.is_empty() {
        "Nothing on the site changes: the plan only reads".to_string()
    } else {
        format!(
            "This will affect {} across {} ({}), owned by {}; {} can see them ({} MB)",
            plural(items.len(), "item", "items"),
            plural(projects.len(), "project", "projects"),
            project_names.join(", "),
            plural(owners.len(), "owner", "owners"),
            plural(users.len(), "user", "users"),
            bytes / (1024 * 1024)
        )
    };
    findings.push(finding(Check::Impact, Level::Info, message, None, vec![]));
    impact
}
