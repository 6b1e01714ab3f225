//! The permissions audit: per workbook or datasource in scope, its rules read against the
//! expected access patterns (the findings listed in the parent module) and the rules it
//! should have instead. Reads only; which fixes become steps is decided in `fixes`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};
use tabflow_plan::ops::{GranteeRef, Rule};
use tabflow_site::{Group, Mode, Site};

use super::stamp;
use crate::DANGEROUS;
use crate::effective::{Evaluator, VIEWER_CAPS};

/// One item in scope with its findings and the recommended rules.
pub(super) struct Audited {
    pub(super) kind: &'static str,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) project_id: String,
    pub(super) updated_at: String,
    pub(super) before: Vec<Rule>,
    pub(super) after: Vec<Rule>,
    pub(super) findings: Vec<Value>,
}

/// A workbook or datasource the audit may look at.
pub(super) struct Content<'s> {
    pub(super) kind: &'static str,
    pub(super) id: &'s str,
    pub(super) name: &'s str,
    pub(super) project: &'s str,
    pub(super) tags: &'s [String],
    pub(super) updated_at: chrono::DateTime<chrono::Utc>,
}

/// Every workbook, then every datasource, of the site.
pub(super) fn content(site: &Site) -> Vec<Content<'_>> {
    let workbooks = site.workbooks.iter().map(|w| Content {
        kind: "workbook",
        id: &w.id,
        name: &w.name,
        project: &w.project_id,
        tags: &w.tags,
        updated_at: w.updated_at,
    });
    let datasources = site.datasources.iter().map(|d| Content {
        kind: "datasource",
        id: &d.id,
        name: &d.name,
        project: &d.project_id,
        tags: &d.tags,
        updated_at: d.updated_at,
    });
    workbooks.chain(datasources).collect()
}

fn is_sensitive(tags: &[String]) -> bool {
    !tags.is_empty()
}

/// What auditing one item needs to know about the site and the request.
pub(super) struct Auditor<'s> {
    ev: &'s Evaluator<'s>,
    /// The request's tags: content the request names by tag is sensitive.
    tags: &'s [String],
    licensed: usize,
    /// group id -> (name, member count)
    group_size: BTreeMap<&'s str, (&'s str, usize)>,
    /// user id -> site role
    role_of: BTreeMap<&'s str, &'s str>,
    /// The policy's `access_allowed_groups`.
    allowed_groups: &'s [String],
    /// group id → the first group of that id
    groups: HashMap<&'s str, &'s Group>,
    /// (group a, group b) → members of a also in b, counted once per pair of groups
    shared: RefCell<HashMap<(&'s str, &'s str), usize>>,
}

impl<'s> Auditor<'s> {
    pub(super) fn new(site: &'s Site, ev: &'s Evaluator<'s>, tags: &'s [String], allowed_groups: &'s [String]) -> Self {
        Auditor {
            ev,
            tags,
            licensed: site.users.iter().filter(|u| u.site_role != "Unlicensed").count().max(1),
            group_size: site.groups.iter().map(|g| (g.id.as_str(), (g.name.as_str(), g.members.len()))).collect(),
            role_of: site.users.iter().map(|u| (u.id.as_str(), u.site_role.as_str())).collect(),
            allowed_groups,
            groups: site.groups.iter().rev().map(|g| (g.id.as_str(), g)).collect(),
            shared: RefCell::new(HashMap::new()),
        }
    }

    /// How many members of group `a` (counted as listed) are also members of group `b`;
    /// 0 when either group is unknown. Computed once per pair.
    fn shared_members(&self, a: &str, b: &str) -> usize {
        let (Some(x), Some(y)) = (self.groups.get(a).copied(), self.groups.get(b).copied()) else { return 0 };
        let key = (x.id.as_str(), y.id.as_str());
        if let Some(n) = self.shared.borrow().get(&key) {
            return *n;
        }
        let in_y: HashSet<&str> = y.members.iter().map(String::as_str).collect();
        let n = x.members.iter().filter(|m| in_y.contains(m.as_str())).count();
        self.shared.borrow_mut().insert(key, n);
        n
    }

    /// The findings on one item whose rules are `before`, and the rules it should have.
    pub(super) fn item(&self, c: Content<'_>, before: Vec<Rule>) -> Audited {
        let Content { kind, id, name, project, tags: item_tags, updated_at } = c;
        // Formatted for the items in scope only.
        let updated_at = stamp(updated_at);
        let Auditor { ev, tags, group_size, role_of, allowed_groups, .. } = self;
        let licensed = self.licensed;
        let mut after = before.clone();
        let mut findings = vec![];
        let sensitive = is_sensitive(tags) || is_sensitive(item_tags);
        let mut finding = |kind: &str, severity: &str, grantee: &str, caps: Vec<String>, text: String, fix: &str| {
            findings.push(json!({
                "finding": kind, "severity": severity, "grantee": grantee,
                "capabilities": caps.join(" "), "detail": text, "recommendation": fix,
            }));
        };
        if let Some(lock) = ev.locking_project(project) {
            finding(
                "locked",
                "info",
                "",
                vec![],
                format!("follows the default permissions of the locked project '{}'", lock.name),
                "review the project's default permissions (not changed by tabflow)",
            );
            return Audited {
                kind,
                id: id.into(),
                name: name.into(),
                project_id: project.into(),
                updated_at,
                after: before.clone(),
                before,
                findings,
            };
        }
        for r in &before {
            let allowed: Vec<String> =
                r.capabilities.iter().filter(|(_, m)| **m == Mode::Allow).map(|(c, _)| c.clone()).collect();
            let who = if r.grantee.name.is_empty() { r.grantee.id.clone() } else { r.grantee.name.clone() };
            if r.grantee.kind == "group" {
                let (gname, members) = group_size.get(r.grantee.id.as_str()).copied().unwrap_or(("", 0));
                if gname == "All Users" && !allowed.is_empty() {
                    let dangerous: Vec<String> =
                        allowed.iter().filter(|c| DANGEROUS.contains(&c.as_str())).cloned().collect();
                    if sensitive {
                        finding(
                            "all-users",
                            "high",
                            "All Users",
                            allowed.clone(),
                            "every user of the site can reach content marked sensitive".into(),
                            "remove the All Users rule",
                        );
                        remove_rule(&mut after, &r.grantee);
                    } else if !dangerous.is_empty() {
                        finding(
                            "all-users",
                            "high",
                            "All Users",
                            dangerous.clone(),
                            "every user of the site may change, delete or re-permission it".into(),
                            "revoke these capabilities from All Users",
                        );
                        remove_caps(&mut after, &r.grantee, &dangerous);
                    }
                } else if members * 2 > licensed && !allowed.is_empty() {
                    finding(
                        "large-group",
                        "medium",
                        &who,
                        allowed.clone(),
                        format!("group of {members} users (more than half of the {licensed} licensed users)"),
                        "grant a smaller team group instead (not changed automatically)",
                    );
                }
                if !allowed_groups.is_empty()
                    && sensitive
                    && gname != "All Users"
                    && !allowed.is_empty()
                    && !allowed_groups.iter().any(|g| g.eq_ignore_ascii_case(gname))
                {
                    finding(
                        "unexpected-group",
                        "medium",
                        &who,
                        allowed.clone(),
                        format!("the policy allows only {} on sensitive content", allowed_groups.join(", ")),
                        "review this group's access (not changed automatically)",
                    );
                }
            } else {
                let role = role_of.get(r.grantee.id.as_str()).copied().unwrap_or("");
                if role == "Unlicensed" {
                    finding(
                        "orphaned-grant",
                        "medium",
                        &who,
                        allowed.clone(),
                        format!("{who} is Unlicensed; the rule grants nothing and lingers"),
                        "remove the rule",
                    );
                    remove_rule(&mut after, &r.grantee);
                    continue;
                }
                let beyond: Vec<String> = if role == "Viewer" {
                    allowed.iter().filter(|c| !VIEWER_CAPS.contains(&c.as_str())).cloned().collect()
                } else {
                    vec![]
                };
                if !beyond.is_empty() {
                    finding(
                        "exceeds-site-role",
                        "low",
                        &who,
                        beyond.clone(),
                        format!("{who} is a Viewer; these capabilities cannot take effect"),
                        "remove these capabilities from the rule",
                    );
                    remove_caps(&mut after, &r.grantee, &beyond);
                }
                finding(
                    "individual-grant",
                    "low",
                    &who,
                    allowed,
                    format!("a rule for {who} alone bypasses group-based access"),
                    "prefer a group rule (not changed automatically)",
                );
            }
        }
        // Deny/Allow conflicts between groups sharing members.
        let groups: Vec<&Rule> = before.iter().filter(|r| r.grantee.kind == "group").collect();
        for a in &groups {
            for b in &groups {
                if a.grantee.id >= b.grantee.id {
                    continue;
                }
                let shared = self.shared_members(&a.grantee.id, &b.grantee.id);
                let clash: Vec<String> = a
                    .capabilities
                    .iter()
                    .filter(|(c, m)| b.capabilities.get(*c).is_some_and(|n| n != *m))
                    .map(|(c, _)| c.clone())
                    .collect();
                if shared > 0 && !clash.is_empty() {
                    finding(
                        "deny-allow-conflict",
                        "low",
                        &format!("{} / {}", a.grantee.name, b.grantee.name),
                        clash,
                        format!("{shared} users are in both groups; Deny wins for them"),
                        "make the groups' rules agree (not changed automatically)",
                    );
                }
            }
        }
        after.retain(|r| !r.capabilities.is_empty());
        after.sort();
        Audited {
            kind,
            id: id.into(),
            name: name.into(),
            project_id: project.into(),
            updated_at,
            before,
            after,
            findings,
        }
    }
}

fn remove_rule(rules: &mut Vec<Rule>, grantee: &GranteeRef) {
    rules.retain(|r| &r.grantee != grantee);
}

fn remove_caps(rules: &mut [Rule], grantee: &GranteeRef, caps: &[String]) {
    for r in rules.iter_mut().filter(|r| &r.grantee == grantee) {
        for c in caps {
            r.capabilities.remove(c);
        }
    }
}
