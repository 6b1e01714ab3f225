//! What a request needs from the site (issue #15): each intent declares its lists and the
//! per-item reads it evaluates; a draft plan adds the permissions of every item it changes.
//! The planner runs over the lists, the items it changes or evaluates have their permissions
//! (and the members of the groups those grant to) read, and it plans again until every item
//! the plan changes or evaluates was read; the validator then sees only read items.
//!
//! Intents whose needs are not declared here (datasource consolidation and migration,
//! queries) read the whole site as before.

use std::collections::BTreeSet;

use tabflow_client::scoped::{Coverage, Needs, Scope};
use tabflow_engine::plan::{Intent, Plan};
use tabflow_site::Site;

/// What planning `intents` reads: the scope of the first pass, or `None` for a whole-site read.
pub(crate) fn scope_of(intents: &[Intent]) -> Option<Scope> {
    let mut scope = Scope { usage: false, lineage: false, connections: false };
    for i in intents {
        match i {
            // Candidates by last access; dependencies between workbooks and datasources.
            Intent::ArchiveStaleContent(_) | Intent::DeleteContent(_) => {
                scope.usage = true;
                scope.lineage = true;
            }
            Intent::OffboardUser(_) => scope.lineage = true,
            Intent::AuditPermissions(_) | Intent::UpdatePermissions(_) | Intent::NotifyOwners(_) => {}
            Intent::ConsolidateDatasources(_) | Intent::MigrateDatasource(_) | Intent::Query(_) => return None,
        }
    }
    Some(scope)
}

/// The per-item reads `intents` evaluate whatever the plan becomes, over the lists in `site`.
///
/// - Offboarding looks for explicit grants to the leaver on every project, workbook,
///   datasource and flow (Tableau has no call that lists a user's grants), and for the
///   leaver's groups and their members.
/// - A permissions audit or update evaluates effective access of the workbooks and
///   datasources in its scope (with tags: those tagged; else all): their rules, their
///   projects' rules and ancestors' (project leaders) and default permissions (locked
///   projects), and the members of every group those grant to.
pub(crate) fn declared(intents: &[Intent], site: &Site) -> Needs {
    let mut n = Needs::default();
    for i in intents {
        match i {
            Intent::OffboardUser(_) => {
                n.permissions.extend(site.projects.iter().map(|p| ("project".to_string(), p.id.clone())));
                n.permissions.extend(site.workbooks.iter().map(|w| ("workbook".to_string(), w.id.clone())));
                n.permissions.extend(site.datasources.iter().map(|d| ("datasource".to_string(), d.id.clone())));
                n.permissions.extend(site.flows.iter().map(|f| ("flow".to_string(), f.id.clone())));
                n.members.extend(site.groups.iter().map(|g| g.id.clone()));
            }
            Intent::AuditPermissions(a) => access_of(&mut n, site, a.tags.as_deref().unwrap_or_default()),
            Intent::UpdatePermissions(u) => access_of(&mut n, site, u.tags.as_deref().unwrap_or_default()),
            _ => {}
        }
    }
    n
}

fn tagged(item_tags: &[String], tags: &[String]) -> bool {
    tags.is_empty() || item_tags.iter().any(|t| tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
}

/// Effective access of the workbooks and datasources carrying one of `tags` (all when none).
fn access_of(n: &mut Needs, site: &Site, tags: &[String]) {
    let mut projects: BTreeSet<&str> = BTreeSet::new();
    for w in site.workbooks.iter().filter(|w| tagged(&w.tags, tags)) {
        n.item("workbook", &w.id);
        projects.insert(&w.project_id);
    }
    for d in site.datasources.iter().filter(|d| tagged(&d.tags, tags)) {
        n.item("datasource", &d.id);
        projects.insert(&d.project_id);
    }
    project_lineage(n, site, projects);
    // Evaluated for every licensed user: every group's members.
    n.members.extend(site.groups.iter().map(|g| g.id.clone()));
}

/// The rules and default permissions of `projects` and of their ancestors.
fn project_lineage<'a>(n: &mut Needs, site: &'a Site, projects: BTreeSet<&'a str>) {
    let parent: std::collections::HashMap<&str, Option<&str>> =
        site.projects.iter().map(|p| (p.id.as_str(), p.parent_id.as_deref())).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for p in projects {
        let mut cur = Some(p);
        while let Some(c) = cur {
            if !seen.insert(c) || !parent.contains_key(c) {
                break;
            }
            n.item("project", c);
            n.defaults.insert(c.to_string());
            cur = parent.get(c).copied().flatten();
        }
    }
}

/// The per-item reads a plan's checks evaluate: the permissions of every item a write step
/// changes (the impact check's "N users can see them"), and the members of the groups they
/// grant to (read along with them).
pub(crate) fn of_plan(plan: &Plan) -> Needs {
    let mut n = Needs::default();
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        for id in s.changed_items() {
            if let Some(i) = s.item(id) {
                if matches!(i.kind.as_str(), "project" | "workbook" | "datasource" | "flow" | "view") {
                    n.item(&i.kind, id);
                }
            }
        }
    }
    n
}

/// One line for the plan's notes: what was read per item.
pub(crate) fn describe(read: &Coverage) -> String {
    if read.full {
        return "site read: the whole site (every item's permissions)".to_string();
    }
    format!(
        "site read: scoped to the request — the lists, permissions of {} items, members of {} groups, default permissions of {} projects ({} per-item calls)",
        read.permissions.len(),
        read.members.len(),
        read.defaults.len(),
        read.per_item_calls
    )
}
