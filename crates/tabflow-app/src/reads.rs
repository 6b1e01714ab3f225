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
    let mut scope = Scope::default();
    for i in intents {
        match i {
            // Candidates by last access; dependencies between workbooks and datasources.
            Intent::ArchiveStaleContent(_) | Intent::DeleteContent(_) => {
                scope.usage = true;
                scope.lineage = true;
            }
            // The leaver's alerts, and the alerts the leaver receives (their recipients).
            Intent::OffboardUser(_) => {
                scope.lineage = true;
                scope.alerts = true;
            }
            Intent::AuditPermissions(_) | Intent::UpdatePermissions(_) | Intent::NotifyOwners(_) => {}
            // License reclamation: the users (with their last sign-in), the owners of content
            // (from the lists) and the members of the excluded groups (declared below); no
            // item's permissions: a site role change grants or revokes no rule.
            Intent::ReclaimLicenses(_) => {}
            Intent::ConsolidateDatasources(_)
            | Intent::MigrateDatasource(_)
            | Intent::Query(_)
            // Subscription cleanup: every subscription, user and workbook (archived content).
            | Intent::CleanSubscriptions(_)
            // Refresh review: every task, schedule and job, and the content they refresh.
            | Intent::ReviewExtractRefreshes(_) => return None,
        }
    }
    Some(scope)
}

/// Whether [`within`] may answer names: archives or deletions of a named project's
/// content, with nothing else but owner notices.
pub(crate) fn may_list_within(intents: &[Intent]) -> bool {
    let named = |p: &Option<String>| p.as_deref().is_some_and(|p| !p.trim().is_empty());
    intents.iter().all(|i| match i {
        Intent::ArchiveStaleContent(a) => named(&a.project),
        Intent::DeleteContent(d) => named(&d.project),
        Intent::NotifyOwners(_) => true,
        _ => false,
    }) && intents.iter().any(|i| !matches!(i, Intent::NotifyOwners(_)))
}

/// A project as the first read sees it: id, name, parent id.
pub(crate) type ProjectRow = (String, String, Option<String>);

/// For requests that only look at named projects (archiving or deleting the workbooks of a
/// project's subtree): the project names whose workbooks and views are listed — the subtree
/// of the project the planner will ground the name to, and the destination (archive or
/// quarantine) project, whose names a move must not clash with. `None` (list every
/// workbook) for any other request, a name the planner would ask about, datasources in the
/// content, or names a `projectName:in:[…]` filter cannot carry.
pub(crate) fn within(intents: &[Intent], projects: &[ProjectRow], quarantine: &str) -> Option<Vec<String>> {
    use tabflow_workflows::ground::{Grounded, ground};
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut any = false;
    for i in intents {
        let (project, content, dest) = match i {
            Intent::ArchiveStaleContent(a) => {
                (a.project.as_deref(), a.content.as_deref(), a.archive_project.as_deref().unwrap_or("Archive"))
            }
            Intent::DeleteContent(d) => {
                let content = d.content.as_deref().or(d.kind.as_deref().filter(|k| k.starts_with("datasource")));
                (d.project.as_deref(), content, quarantine)
            }
            Intent::NotifyOwners(_) => continue,
            _ => return None,
        };
        let project = project.map(str::trim).filter(|p| !p.is_empty())?;
        let content = content.map(str::trim).filter(|c| !c.is_empty()).unwrap_or("workbooks").to_ascii_lowercase();
        if content.starts_with("datasource") || content == "all" {
            return None;
        }
        let rows: Vec<&ProjectRow> = projects.iter().collect();
        let root = match ground(project, &rows, |p| vec![p.1.clone()]) {
            Grounded::One(p, _) => p,
            Grounded::Many(ps) => {
                let top: Vec<_> = ps.iter().filter(|p| p.2.is_none()).collect();
                if top.len() == 1 && ps.iter().all(|p| p.1 == top[0].1) {
                    top[0]
                } else {
                    return None;
                }
            }
            Grounded::None => return None,
        };
        // The subtree (a parent cycle in bad data ends the walk).
        let mut sub: BTreeSet<&str> = BTreeSet::from([root.0.as_str()]);
        loop {
            let before = sub.len();
            for p in projects {
                if p.2.as_deref().is_some_and(|parent| sub.contains(parent)) {
                    sub.insert(&p.0);
                }
            }
            if sub.len() == before {
                break;
            }
        }
        names.extend(projects.iter().filter(|p| sub.contains(p.0.as_str())).map(|p| p.1.clone()));
        names.insert(dest.to_string());
        any = true;
    }
    if !any || names.iter().any(|n| n.contains([',', '[', ']']) || n.is_empty()) {
        return None;
    }
    Some(names.into_iter().collect())
}

/// The per-item reads `intents` evaluate whatever the plan becomes, over the lists in `site`.
///
/// - Offboarding looks for explicit grants to the leaver on every project, workbook,
///   datasource, flow and view of a workbook without tabs (Tableau has no call that lists a
///   user's grants; a deleted account's grants are re-created by a rollback), and for the
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
                // Views have rules of their own where the workbook does not show tabs (a
                // deleted account's grants there are re-created by a rollback).
                n.permissions.extend(
                    site.workbooks
                        .iter()
                        .filter(|w| !w.show_tabs)
                        .flat_map(|w| w.views.iter().map(|v| ("view".to_string(), v.id.clone()))),
                );
                n.members.extend(site.groups.iter().map(|g| g.id.clone()));
            }
            // The members of the groups the request excludes (as the planner matches names: a
            // group's name, case-insensitive). A user excluded by name needs no read.
            Intent::ReclaimLicenses(r) => {
                for x in r.exclude.iter().flatten().map(|x| x.trim().to_lowercase()).filter(|x| !x.is_empty()) {
                    n.members.extend(site.groups.iter().filter(|g| g.name.to_lowercase() == x).map(|g| g.id.clone()));
                }
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

/// The items whose permissions a plan's checks evaluate, as (kind, id) pairs: every item a
/// write step changes (the impact check's "N users can see them"). [`of_plan`] keeps those
/// the lists show are there.
fn changed_items(plan: &Plan) -> BTreeSet<(String, String)> {
    changed_items_of(plan.steps.iter())
}

/// The items of [`of_plan`] that may be on the site already (not those a step creates), known
/// from the plan alone: apply's re-validation reads their permissions along with the lists
/// ([`tabflow_client::scoped::read_early`]) instead of after them.
pub(crate) fn items_of_plan(plan: &Plan) -> BTreeSet<(String, String)> {
    changed_items_of(plan.steps.iter().filter(|s| s.kind != tabflow_engine::plan::StepKind::CreateProject))
}

fn changed_items_of<'a>(steps: impl Iterator<Item = &'a tabflow_engine::plan::Step>) -> BTreeSet<(String, String)> {
    let mut wanted = BTreeSet::new();
    for s in steps.filter(|s| s.is_write()) {
        for id in s.changed_items() {
            if let Some(i) = s.item(id)
                && matches!(i.kind.as_str(), "project" | "workbook" | "datasource" | "flow" | "view")
            {
                wanted.insert((i.kind.clone(), id.to_string()));
            }
        }
    }
    wanted
}

/// The per-item reads a plan's checks evaluate: the permissions of every item a write step
/// changes (the impact check's "N users can see them"), and the members of the groups they
/// grant to (read along with them). Items the plan creates (not on `site` yet) have none.
pub(crate) fn of_plan(plan: &Plan, site: &Site) -> Needs {
    let wanted = changed_items(plan);
    let mut n = Needs::default();
    if wanted.is_empty() {
        return n;
    }
    let ids: std::collections::HashSet<&str> = site
        .projects
        .iter()
        .map(|p| p.id.as_str())
        .chain(
            site.workbooks
                .iter()
                .flat_map(|w| std::iter::once(w.id.as_str()).chain(w.views.iter().map(|v| v.id.as_str()))),
        )
        .chain(site.datasources.iter().map(|d| d.id.as_str()))
        .chain(site.flows.iter().map(|f| f.id.as_str()))
        .collect();
    for (kind, id) in wanted {
        if ids.contains(id.as_str()) {
            n.item(&kind, &id);
        }
    }
    n
}

/// Whether every workbook a write step of `plan` changes is on `site` (listed).
pub(crate) fn holds_changed_workbooks(plan: &Plan, site: &Site) -> bool {
    let listed: std::collections::HashSet<&str> = site.workbooks.iter().map(|w| w.id.as_str()).collect();
    plan.steps.iter().filter(|s| s.is_write()).all(|s| {
        s.changed_items().into_iter().all(|id| s.item(id).is_none_or(|i| i.kind != "workbook") || listed.contains(id))
    })
}

/// One line for the plan's notes: what was read per item.
pub(crate) fn describe(read: &Coverage) -> String {
    if read.full {
        return "site read: the whole site (every item's permissions)".to_string();
    }
    let lists = match &read.within {
        Some(names) => format!("the lists (workbooks and views of {} projects only)", names.len()),
        None => "the lists".to_string(),
    };
    format!(
        "site read: scoped to the request — {lists}, permissions of {} items, members of {} groups, default permissions of {} projects ({} per-item calls)",
        read.permissions.len(),
        read.members.len(),
        read.defaults.len(),
        read.per_item_calls
    )
}
