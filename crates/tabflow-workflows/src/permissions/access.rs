//! The access report of a permissions audit: for every item in scope, who can do what and
//! why — each group with a rule on it, and each user with effective access (site role,
//! ownership, project leadership, their own rule or a group's, locking and the site role's
//! cap all applied by [`Evaluator::access`]) — and the same as a matrix, items × groups and
//! users, one capability level per cell, broad grants marked (issue #18).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tabflow_site::{Mode, Site};

use super::audit::Audited;
use crate::effective::{Evaluator, Grant};

/// Above this many items the matrix is left out (the per-item rows stay): a table wider and
/// longer than a person reads.
const MATRIX_ITEMS: usize = 300;

/// Up to this many users an item who have access only through groups are listed one by one;
/// more are counted in one row per capability level.
const GROUP_ONLY_LISTED: usize = 50;

/// A capability level from the capabilities allowed: `full` (may change permissions or
/// delete), `edit` (write, overwrite, web edit), `interact` (download, export, filter…),
/// `view`, or `denied` when only denials are written.
pub(crate) fn level<'c>(allowed: impl IntoIterator<Item = &'c str>) -> &'static str {
    let caps: BTreeSet<&str> = allowed.into_iter().collect();
    let any = |names: &[&str]| names.iter().any(|n| caps.contains(n));
    if any(&["ChangePermissions", "Delete", "ChangeHierarchy"]) {
        "full"
    } else if any(&["Write", "Overwrite", "WebAuthoring", "SaveAs"]) {
        "edit"
    } else if any(&["ExportData", "ExportImage", "ExportXml", "Filter", "ViewUnderlyingData", "ShareView", "Connect"]) {
        "interact"
    } else if caps.contains("Read") {
        "view"
    } else if caps.is_empty() {
        ""
    } else {
        "other"
    }
}

/// A group is broad when it is "All Users" or holds at least half of the licensed users.
fn broad(name: &str, members: usize, licensed: usize) -> bool {
    name == "All Users" || members * 2 >= licensed.max(1)
}

/// The per-item access rows, the matrix (or `Value::Null` over [`MATRIX_ITEMS`]), and the
/// members (user names) of each group whose members some item's rows count instead of list —
/// once for the report, so who can do what stays readable without items × users rows.
pub(super) fn report(
    site: &Site,
    ev: &Evaluator<'_>,
    audited: &[Audited],
    project_path: impl Fn(&str) -> String,
) -> (Vec<Value>, Value, BTreeMap<String, Vec<String>>) {
    let licensed = site.users.iter().filter(|u| u.site_role != "Unlicensed").count();
    let groups: BTreeMap<&str, (&str, usize)> =
        site.groups.iter().map(|g| (g.id.as_str(), (g.name.as_str(), g.members.len()))).collect();
    let users: BTreeMap<&str, (&str, &str)> =
        site.users.iter().map(|u| (u.id.as_str(), (u.name.as_str(), u.site_role.as_str()))).collect();
    let mut rows = vec![];
    // Matrix: column key → (label, type, broad); per item its cells.
    let mut columns: BTreeMap<(u8, String), (String, &'static str, bool)> = BTreeMap::new();
    let mut cells: Vec<(String, &'static str, String, BTreeMap<(u8, String), String>)> = vec![];
    let mut counted_groups: BTreeSet<&str> = BTreeSet::new();
    for a in audited {
        let project = project_path(&a.project_id);
        let mut row_cells = BTreeMap::new();
        for r in a.before.iter().filter(|r| r.grantee.kind == "group") {
            let Some(&(name, members)) = groups.get(r.grantee.id.as_str()) else { continue };
            let allowed: Vec<&str> =
                r.capabilities.iter().filter(|(_, m)| **m == Mode::Allow).map(|(c, _)| c.as_str()).collect();
            let denied: Vec<&str> =
                r.capabilities.iter().filter(|(_, m)| **m == Mode::Deny).map(|(c, _)| c.as_str()).collect();
            let lvl = match level(allowed.iter().copied()) {
                "" if !denied.is_empty() => "denied",
                l => l,
            };
            let is_broad = broad(name, members, licensed);
            rows.push(json!({
                "type": a.kind, "item": a.name, "project": project,
                "who": format!("group {name}"), "members": members, "level": lvl,
                "allowed": allowed.join(" "), "denied": denied.join(" "),
                "why": "a rule for the group on the item", "broad": is_broad,
            }));
            let key = (0, r.grantee.id.clone());
            columns.entry(key.clone()).or_insert((name.to_string(), "group", is_broad));
            row_cells.insert(key, lvl.to_string());
        }
        // By classes of users with the same access (issue #15): counting takes a class at a
        // time, and only the users listed are visited one by one.
        let classes = ev.access_classes(a.kind, &a.id);
        let only_groups_of = |caps: &BTreeMap<String, Grant>| {
            caps.values().any(|g| g.allowed) && caps.values().filter(|g| g.allowed).all(|g| g.via.starts_with("group"))
        };
        // Users whose access comes only through groups: listed one by one up to
        // GROUP_ONLY_LISTED, else summed up in one row per level (the group rows above say
        // which groups, and the groups' members are the site's) — so the report grows with the
        // items, not with items × users.
        let group_only: usize = classes.iter().filter(|c| only_groups_of(&c.caps)).map(|c| c.len()).sum();
        let sum_up = group_only > GROUP_ONLY_LISTED;
        let mut summed: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut listed: Vec<(&str, &BTreeMap<String, Grant>, &'static str)> = vec![];
        for class in &classes {
            let caps = &class.caps;
            let allowed: Vec<&str> = caps.iter().filter(|(_, g)| g.allowed).map(|(c, _)| c.as_str()).collect();
            if allowed.is_empty() {
                continue;
            }
            let lvl = level(allowed.iter().copied());
            if only_groups_of(caps) && sum_up {
                *summed.entry(lvl).or_default() += class.len();
                continue;
            }
            listed.extend(class.users().map(|u| (u, caps, lvl)));
        }
        // In user id order, as the rows were listed from the per-user access map.
        listed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (user, caps, lvl) in listed {
            let allowed: Vec<&str> = caps.iter().filter(|(_, g)| g.allowed).map(|(c, _)| c.as_str()).collect();
            // A user whose access comes only through groups is shown under the groups in the
            // matrix; the rows list everyone (or, past GROUP_ONLY_LISTED, count them).
            let only_groups = only_groups_of(caps);
            let (name, role) = users.get(user).copied().unwrap_or(("?", "?"));
            let why = reasons(caps);
            rows.push(json!({
                "type": a.kind, "item": a.name, "project": project,
                "who": format!("user {name}"), "site_role": role, "level": lvl,
                "allowed": allowed.join(" "), "why": why, "broad": false,
            }));
            if !only_groups {
                let key = (1, user.to_string());
                columns.entry(key.clone()).or_insert((name.to_string(), "user", false));
                row_cells.insert(key, lvl.to_string());
            }
        }
        if !summed.is_empty() {
            counted_groups.extend(a.before.iter().filter(|r| r.grantee.kind == "group").map(|r| r.grantee.id.as_str()));
        }
        for (lvl, n) in summed {
            rows.push(json!({
                "type": a.kind, "item": a.name, "project": project,
                "who": format!("{n} users through their groups"), "users": n, "level": lvl,
                "allowed": "", "why": "members of the groups with a rule on the item (the group rows; their members are listed once under group_members); users are listed one by one only up to 50 such users an item", "broad": false,
            }));
        }
        cells.push((a.name.clone(), a.kind, project, row_cells));
    }
    let names: BTreeMap<&str, &str> = site.users.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
    let group_members: BTreeMap<String, Vec<String>> = site
        .groups
        .iter()
        .filter(|g| counted_groups.contains(g.id.as_str()))
        .map(|g| {
            let mut m: Vec<String> =
                g.members.iter().map(|u| names.get(u.as_str()).copied().unwrap_or(u.as_str()).to_string()).collect();
            m.sort();
            (g.name.clone(), m)
        })
        .collect();
    if audited.len() > MATRIX_ITEMS {
        return (rows, Value::Null, group_members);
    }
    let keys: Vec<&(u8, String)> = columns.keys().collect();
    let matrix = json!({
        "columns": keys.iter().map(|k| {
            let (label, kind, broad) = &columns[*k];
            json!({"name": label, "type": kind, "broad": broad})
        }).collect::<Vec<_>>(),
        "rows": cells.iter().map(|(name, kind, project, c)| json!({
            "item": name, "type": kind, "project": project,
            "cells": keys.iter().map(|k| c.get(*k).cloned().unwrap_or_default()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "legend": "full = may change permissions or delete; edit = may write or overwrite; interact = may filter, download or export; view = may see it; denied = only denials written; broad = All Users or a group holding half the licensed users or more",
    });
    (rows, matrix, group_members)
}

/// Why a user has their access, from the grants' reasons, most telling first.
fn reasons(caps: &BTreeMap<String, Grant>) -> String {
    let vias: BTreeSet<&str> = caps.values().filter(|g| g.allowed).map(|g| g.via.as_str()).collect();
    vias.into_iter().collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};
    use tabflow_plan::plan::StepKind;

    use super::level;

    /// "Audit permissions for sensitive workbooks and create access report": every item
    /// tagged sensitive is in the report (not only those with findings), with its groups and
    /// users, and the matrix has a row per item and marks All Users as broad.
    #[test]
    fn the_access_report_covers_every_matching_item() {
        let site = tabflow_site::generate::demo();
        let plan = crate::plan_intent_answered(&site, "audit-permissions", json!({"tags": ["sensitive"]}), &[]);
        let step = plan.steps.iter().find(|s| s.kind == StepKind::AuditPermissions).unwrap();
        // Computed here from the site, apart from the audit.
        let sensitive: Vec<&str> = site
            .workbooks
            .iter()
            .filter(|w| w.tags.iter().any(|t| t == "sensitive"))
            .map(|w| w.name.as_str())
            .chain(site.datasources.iter().filter(|d| d.tags.iter().any(|t| t == "sensitive")).map(|d| d.name.as_str()))
            .collect();
        assert!(sensitive.len() > 5, "the demo has sensitive content");
        let rows = step.details["access"].as_array().unwrap();
        let matrix = &step.details["matrix"];
        let matrix_items: Vec<&str> =
            matrix["rows"].as_array().unwrap().iter().map(|r| r["item"].as_str().unwrap()).collect();
        for name in &sensitive {
            assert!(rows.iter().any(|r| r["item"] == *name), "{name} missing from the access rows");
            assert!(matrix_items.contains(name), "{name} missing from the matrix");
        }
        assert_eq!(matrix_items.len(), sensitive.len());
        // Someone always has access (the owner at least), and each row says why.
        assert!(rows.iter().all(|r| !r["why"].as_str().unwrap_or("").is_empty()));
        let columns = matrix["columns"].as_array().unwrap();
        let width = columns.len();
        assert!(matrix["rows"].as_array().unwrap().iter().all(|r| r["cells"].as_array().unwrap().len() == width));
        if let Some(all) = columns.iter().find(|c| c["name"] == "All Users") {
            assert_eq!(all["broad"], json!(true));
        }
        // The HTML report draws the matrix, broad columns marked, with no script.
        let report = crate::report::build(&plan, None);
        let html = report.html();
        assert!(html.contains("<table class=\"matrix\">"), "no matrix table");
        assert!(!html.contains("<script"), "no script in a report");
        if columns.iter().any(|c| c["broad"] == json!(true)) {
            assert!(html.contains("⚠ broad"));
        }
    }

    /// On a site whose groups hold hundreds of users, an item's users who see it only through
    /// groups are counted, not listed: the report grows with the items, not items × users
    /// (an audit of tagged content on a 20 000-workbook site held 3.7 GiB of such rows).
    /// Each summed row counts what the evaluator grants, per level.
    #[test]
    fn group_only_users_past_fifty_an_item_are_counted_not_listed() {
        let site = tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 2000, seed: 7 });
        let plan = crate::plan_intent_answered(&site, "audit-permissions", json!({"tags": ["sensitive"]}), &[]);
        let step = plan.steps.iter().find(|s| s.kind == StepKind::AuditPermissions).unwrap();
        let rows = step.details["access"].as_array().unwrap();
        let summed: Vec<&Value> = rows.iter().filter(|r| r["users"].is_u64()).collect();
        assert!(!summed.is_empty(), "a generated site's broad groups put more than 50 users on some item");
        // The counted users' groups are listed once, with their members.
        let members = step.details["group_members"].as_object().unwrap();
        assert!(!members.is_empty());
        for (g, m) in members {
            let group = site.groups.iter().find(|x| &x.name == g).unwrap();
            assert_eq!(m.as_array().unwrap().len(), group.members.len(), "{g}");
        }
        let ev = crate::effective::Evaluator::new(&site);
        let mut items: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for r in rows {
            items.entry(r["item"].as_str().unwrap()).or_default().push(r);
        }
        for (item, rs) in items {
            let same_name = site.workbooks.iter().filter(|w| w.name == item).count()
                + site.datasources.iter().filter(|d| d.name == item).count();
            if same_name != 1 {
                continue;
            }
            let users = rs.iter().filter(|r| r["who"].as_str().unwrap().starts_with("user ")).count();
            let counted: u64 = rs.iter().filter_map(|r| r["users"].as_u64()).sum();
            let (kind, id) = site
                .workbooks
                .iter()
                .find(|w| w.name == item)
                .map(|w| ("workbook", w.id.as_str()))
                .or_else(|| site.datasources.iter().find(|d| d.name == item).map(|d| ("datasource", d.id.as_str())))
                .unwrap();
            let with_access = ev.access(kind, id).values().filter(|c| c.values().any(|g| g.allowed)).count();
            assert_eq!(users as u64 + counted, with_access as u64, "{item}: listed + counted = everyone with access");
            if counted > 0 {
                assert!(users < with_access, "{item}");
            }
        }
    }

    #[test]
    fn levels_follow_the_strongest_capability() {
        assert_eq!(level(["Read", "Filter"]), "interact");
        assert_eq!(level(["Read"]), "view");
        assert_eq!(level(["Read", "Write"]), "edit");
        assert_eq!(level(["Read", "ChangePermissions"]), "full");
        assert_eq!(level(std::iter::empty()), "");
    }
}
