//! The `permissions` check: the signed-in user may perform every step (owners, site roles
//! and groups need a site administrator; content writes need a publishing role; a flow's new
//! owner needs a Creator license), and moves go to projects that exist or that an earlier
//! step of the plan creates.

use std::collections::BTreeSet;

use super::{Facts, finding, items_of, plural};
use crate::plan::{Change, Check, Finding, Level, Plan};

/// `permissions`: what the signed-in user may do, flow owners, move targets.
pub(super) fn permissions(plan: &Plan, facts: &Facts, findings: &mut Vec<Finding>) {
    let mut perm_problems = 0;
    let created_by_plan: BTreeSet<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        // Tableau refuses a flow owner without a Creator license (403141): refuse the plan first.
        let items = items_of(s);
        let refused: Vec<&Change> = s
            .changes
            .iter()
            .filter(|c| c.field == "owner" && items.get(c.item.as_str()).is_some_and(|i| i.kind == "flow"))
            .filter(|c| {
                c.after_id
                    .as_ref()
                    .and_then(|u| facts.roles.get(u))
                    .is_some_and(|r| !tabflow_site::capability::can_own_flows(r))
            })
            .collect();
        if !refused.is_empty() {
            perm_problems += 1;
            findings.push(finding(
                Check::Permissions,
                Level::Error,
                format!(
                    "step {} makes {} the owner of {}; a flow's owner needs a Creator license (Creator, SiteAdministratorCreator or ServerAdministrator) — pick another owner or leave the flows out",
                    s.id,
                    refused.iter().map(|c| c.after.as_str().unwrap_or("?")).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", "),
                    plural(refused.len(), "flow", "flows"),
                ),
                Some(&s.id),
                refused.iter().map(|c| c.item.clone()).collect(),
            ));
        }
        let fields: BTreeSet<&str> = s.changes.iter().map(|c| c.field.as_str()).collect();
        let admin_only: Vec<&str> =
            fields.iter().copied().filter(|f| matches!(*f, "owner" | "site_role" | "groups")).collect();
        if !admin_only.is_empty() && !facts.is_admin() {
            perm_problems += 1;
            findings.push(finding(
                Check::Permissions,
                Level::Error,
                format!(
                    "step {} changes {} — only site administrators may; {} is '{}'. Sign in as a site administrator",
                    s.id,
                    admin_only.join(", "),
                    facts.signed_in_user,
                    facts.site_role
                ),
                Some(&s.id),
                vec![],
            ));
        } else if !facts.can_publish() {
            perm_problems += 1;
            findings.push(finding(
                Check::Permissions,
                Level::Error,
                format!(
                    "step {} writes content, but {} has site role '{}' which cannot; use a Creator or site administrator",
                    s.id, facts.signed_in_user, facts.site_role
                ),
                Some(&s.id),
                vec![],
            ));
        }
        for c in s.changes.iter().filter(|c| c.field == "project") {
            match (&c.after_id, &c.after_ref) {
                (Some(id), _) if !facts.projects.contains_key(id) => {
                    perm_problems += 1;
                    findings.push(finding(
                        Check::Permissions,
                        Level::Error,
                        format!("step {} moves items to project {id}, which does not exist on the site", s.id),
                        Some(&s.id),
                        vec![c.item.clone()],
                    ));
                }
                (None, Some(r)) if !created_by_plan.contains(r.as_str()) || !s.depends_on.contains(r) => {
                    perm_problems += 1;
                    findings.push(finding(
                        Check::Dependencies,
                        Level::Error,
                        format!(
                            "step {} moves items to a project created by step {r}, but does not depend on it",
                            s.id
                        ),
                        Some(&s.id),
                        vec![],
                    ));
                }
                _ => {}
            }
        }
    }
    if perm_problems == 0 {
        findings.push(finding(
            Check::Permissions,
            Level::Info,
            format!("{} ({}) may perform every step", facts.signed_in_user, facts.site_role),
            None,
            vec![],
        ));
    }
}
