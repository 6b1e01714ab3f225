//! The permission fixes: the update the user chose (reset to the project's defaults, lock the
//! projects, or revoke broad grants), its impact in users and projects, and the
//! `update-permissions` steps that carry the exact before → after rules.

use std::collections::BTreeSet;

use serde_json::json;
use tabflow_plan::ops::{GranteeRef, Rule};
use tabflow_plan::plan::{Change, Item, Step, StepKind};
use tabflow_site::Site;

use super::audit::Audited;
use super::stamp;
use crate::builder::Builder;
use crate::effective::{self, Evaluator};

/// The users whose effective access the changes (and the projects to lock) change, and the
/// projects they are in.
pub(super) fn impact(
    site: &Site,
    ev: &Evaluator<'_>,
    audited: &[Audited],
    changing: &[&Audited],
    lock_projects: &BTreeSet<String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    // Impact: users whose effective access changes, across which projects.
    let mut after_site = site.clone();
    for a in changing {
        after_site.permissions.retain(|r| r.resource.id != a.id);
        for r in &a.after {
            after_site.permissions.push(tabflow_site::PermissionRule {
                resource: tabflow_site::ResourceRef { kind: a.kind.into(), id: a.id.clone() },
                grantee: tabflow_site::GranteeRef { kind: r.grantee.kind.clone(), id: r.grantee.id.clone() },
                capabilities: r.capabilities.clone(),
            });
        }
    }
    for p in after_site.projects.iter_mut() {
        if lock_projects.contains(&p.id) {
            p.content_permissions = "LockedToProject".into();
        }
    }
    let ev_after = ev.after(&after_site);
    let mut users: BTreeSet<String> = BTreeSet::new();
    let mut projects: BTreeSet<String> = BTreeSet::new();
    for a in audited {
        if a.before == a.after && !lock_projects.contains(&a.project_id) {
            continue;
        }
        let changed = effective::changed_users(&ev.access(a.kind, &a.id), &ev_after.access(a.kind, &a.id));
        if !changed.is_empty() {
            projects.insert(a.project_id.clone());
        }
        users.extend(changed);
    }
    (users, projects)
}

impl<'p, 'a> Builder<'p, 'a> {
    /// Applies the chosen mode to the recommended rules; returns the projects to lock.
    pub(super) fn apply_mode(&self, ev: &Evaluator<'_>, mode: &str, audited: &mut [Audited]) -> BTreeSet<String> {
        // The chosen mode decides the changes.
        let mut lock_projects: BTreeSet<String> = BTreeSet::new();
        match mode {
            "reset-to-project-defaults" => {
                for a in audited.iter_mut() {
                    if ev.locking_project(&a.project_id).is_some() {
                        continue;
                    }
                    let mut d = self.default_rules(&a.project_id, a.kind);
                    d.sort();
                    a.after = d;
                }
            }
            "lock-projects" => {
                for a in audited.iter_mut() {
                    a.after = a.before.clone();
                    if ev.locking_project(&a.project_id).is_none() {
                        lock_projects.insert(a.project_id.clone());
                    }
                }
            }
            _ => {}
        }
        lock_projects
    }

    /// The `update-permissions` step: lock the projects, or set each changing item's rules.
    pub(super) fn permission_fixes(
        &mut self,
        depends: Vec<String>,
        changing: Vec<&Audited>,
        lock_projects: &BTreeSet<String>,
        label: &str,
        impact: &str,
        mode: &str,
    ) {
        if !lock_projects.is_empty() {
            let s = self.step_id();
            let items: Vec<Item> = lock_projects
                .iter()
                .filter_map(|id| self.index.project(id.as_str()))
                .map(|p| Item {
                    kind: "project".into(),
                    id: p.id.clone(),
                    name: p.name.clone(),
                    updated_at: p.updated_at.map(stamp),
                    reason: Some(format!("lock: content follows the project's defaults ({})", p.content_permissions)),
                    ..Item::default()
                })
                .collect();
            let changes = items
                .iter()
                .map(|i| Change {
                    item: i.id.clone(),
                    field: "content_permissions".into(),
                    before: json!(self.index.project(i.id.as_str()).map(|p| p.content_permissions.clone())),
                    after: json!("LockedToProject"),
                    before_id: None,
                    after_id: None,
                    after_ref: None,
                })
                .collect();
            self.plan.steps.push(Step::new(
                s,
                StepKind::UpdatePermissions,
                format!("Lock {} projects holding {label} — {impact}", items.len()),
                depends,
                items,
                changes,
                json!({"mode": mode}),
            ));
            return;
        }
        let mut items = vec![];
        let mut changes = vec![];
        for a in changing {
            let what: Vec<String> = a
                .findings
                .iter()
                .filter(|f| !f["recommendation"].as_str().unwrap_or("").contains("not changed"))
                .map(|f| format!("{} ({})", f["finding"].as_str().unwrap_or(""), f["grantee"].as_str().unwrap_or("")))
                .collect();
            items.push(Item {
                kind: a.kind.into(),
                id: a.id.clone(),
                name: a.name.clone(),
                project: Some(self.project_name(&a.project_id)),
                updated_at: Some(a.updated_at.clone()),
                reason: Some(if mode == "reset-to-project-defaults" {
                    "reset to the project's default permissions".into()
                } else {
                    what.join("; ")
                }),
                ..Item::default()
            });
            changes.push(Change {
                item: a.id.clone(),
                field: "permissions".into(),
                before: json!(a.before),
                after: json!(a.after),
                before_id: None,
                after_id: None,
                after_ref: None,
            });
        }
        let n = items.len();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::UpdatePermissions,
            if mode == "reset-to-project-defaults" {
                format!("Reset {n} items of {label} to their project's default permissions — {impact}")
            } else {
                format!("Fix permissions on {n} items of {label} — {impact}")
            },
            depends,
            items,
            changes,
            json!({"mode": mode}),
        ));
    }

    /// A project's default rules for a content type, as plan rules.
    fn default_rules(&self, project_id: &str, kind: &str) -> Vec<Rule> {
        let ct = if kind == "datasource" { "datasources" } else { "workbooks" };
        self.p
            .site
            .default_permissions
            .iter()
            .filter(|d| d.project_id == project_id && d.content_type == ct)
            .map(|d| Rule {
                grantee: GranteeRef {
                    kind: d.grantee.kind.clone(),
                    id: d.grantee.id.clone(),
                    name: self.grantee_name(&d.grantee.kind, &d.grantee.id),
                },
                capabilities: d.capabilities.clone(),
            })
            .collect()
    }

    fn grantee_name(&self, kind: &str, id: &str) -> String {
        if kind == "group" {
            self.p.site.groups.iter().find(|g| g.id == id).map(|g| g.name.clone()).unwrap_or_default()
        } else {
            self.index.user(id).map(|u| u.name.clone()).unwrap_or_default()
        }
    }
}
