//! `audit-permissions` and `update-permissions`: effective access per item (module
//! `effective`), findings against the expected access patterns, and recommendations as
//! exact, reversible permission changes with their impact in users and projects.
//!
//! Findings, per workbook or datasource in scope (tags and/or project):
//! - `all-users`: the All Users group is granted something (write/delete/permission rights are
//!   high severity; on content the request calls sensitive, any grant is);
//! - `large-group`: a group holding more than half of the licensed users is granted access;
//! - `unexpected-group`: a group outside the policy's `access_allowed_groups` is granted access
//!   to content in scope (only when the policy lists allowed groups);
//! - `individual-grant`: a rule for one user, bypassing groups;
//! - `orphaned-grant`: a rule for an Unlicensed user;
//! - `exceeds-site-role`: a rule grants a user more than their site role allows (dead rule);
//! - `deny-allow-conflict`: one group allows and another denies a capability to the same users;
//! - `locked`: the content follows a locked project's default rules (fix them there).
//!
//! Recommendations (`update-permissions` steps, field `permissions`, undone exactly): revoke
//! All Users' write/delete/permission rights (on sensitive content: the whole All Users rule),
//! remove orphaned grants, remove capabilities beyond the user's site role. For "update
//! permissions for the remaining content" after an archive, the user chooses: reset to the
//! project's default permissions, lock the projects, or revoke broad grants.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tabflow_plan::intent::{self, AuditPermissions, Schedule, UpdatePermissions};
use tabflow_plan::ops::{GranteeRef, Rule};
use tabflow_plan::plan::{Change, Intent, Item, Step, StepKind};
use tabflow_site::Mode;

use crate::DANGEROUS;
use crate::builder::{Builder, text};
use crate::effective::{self, Evaluator, VIEWER_CAPS};

/// What an `audit-permissions` or `update-permissions` intent asks for.
pub(crate) struct Request<'i> {
    project: Option<&'i str>,
    tags: Vec<String>,
    scope: Option<&'i str>,
    mode: Option<intent::Mode>,
    schedule: Option<&'i Schedule>,
    /// What a recurring review plans again: the audit without its schedule.
    review: Option<Intent>,
}

impl<'i> Request<'i> {
    pub(crate) fn audit(a: &'i AuditPermissions) -> Request<'i> {
        Request {
            project: text(&a.project),
            tags: a.tags.clone().unwrap_or_default(),
            scope: None,
            mode: None,
            schedule: a.schedule.as_ref(),
            review: Some(Intent::AuditPermissions(AuditPermissions { schedule: None, ..a.clone() })),
        }
    }

    pub(crate) fn update(u: &'i UpdatePermissions) -> Request<'i> {
        Request {
            project: text(&u.project),
            tags: u.tags.clone().unwrap_or_default(),
            scope: text(&u.scope),
            mode: u.mode,
            schedule: None,
            review: None,
        }
    }
}

/// One item in scope with its findings and the recommended rules.
struct Audited {
    kind: &'static str,
    id: String,
    name: String,
    project_id: String,
    updated_at: String,
    before: Vec<Rule>,
    after: Vec<Rule>,
    findings: Vec<Value>,
}

fn is_sensitive(tags: &[String]) -> bool {
    !tags.is_empty()
}

impl<'p, 'a> Builder<'p, 'a> {
    pub(crate) fn permissions(&mut self, request: &Request<'_>, apply: bool) {
        let site = self.p.site;
        let tags = request.tags.clone();
        let remaining = request.scope.is_some_and(|s| s.eq_ignore_ascii_case("remaining"));
        let scope: Option<BTreeSet<String>> = match request.project {
            Some(name) => match self.ground_project(name) {
                Some(p) => Some(self.subtree(&p.id)),
                None => return,
            },
            None if remaining => self.earlier_scope.clone().flatten(),
            None => None,
        };
        let moved = if remaining { self.moved_away.clone() } else { BTreeSet::new() };
        let in_scope = |project: &str, id: &str, item_tags: &[String]| {
            !moved.contains(id)
                && scope.as_ref().is_none_or(|s| s.contains(project))
                && (tags.is_empty() || item_tags.iter().any(|t| tags.iter().any(|x| x.eq_ignore_ascii_case(t))))
        };
        let mut label =
            if tags.is_empty() { "content".to_string() } else { format!("content tagged {}", tags.join(", ")) };
        if let Some(s) = &scope {
            let roots: Vec<String> = site
                .projects
                .iter()
                .filter(|p| s.contains(&p.id) && p.parent_id.as_ref().is_none_or(|x| !s.contains(x)))
                .map(|p| p.name.clone())
                .collect();
            label = format!("{label} in {}", roots.join(", "));
        }
        if remaining {
            label = format!("the remaining {label}");
        }

        // "Update permissions for the remaining content": what kind of update.
        use intent::Mode as Asked;
        let mode = match request.mode {
            Some(Asked::Lock | Asked::Locked | Asked::Unlocked) => "lock-projects".to_string(),
            Some(Asked::Reset | Asked::ProjectDefault) => "reset-to-project-defaults".to_string(),
            Some(Asked::ReadOnly | Asked::Restrict | Asked::Revoke | Asked::Grant) => "revoke-broad-grants".to_string(),
            None if remaining => {
                match self.question(
                    format!("How should permissions on {label} be updated: reset every item to its project's default permissions, lock the projects (content follows the project's defaults from then on), or only revoke overly broad grants?"),
                    vec!["reset-to-project-defaults".into(), "lock-projects".into(), "revoke-broad-grants".into()],
                    None,
                ) {
                    Some(m) => m,
                    None => return,
                }
            }
            None => "revoke-broad-grants".to_string(),
        };

        let ev = Evaluator::new(site);
        let licensed = site.users.iter().filter(|u| u.site_role != "Unlicensed").count().max(1);
        let group_size: BTreeMap<&str, (&str, usize)> =
            site.groups.iter().map(|g| (g.id.as_str(), (g.name.as_str(), g.members.len()))).collect();
        let role_of: BTreeMap<&str, &str> = site.users.iter().map(|u| (u.id.as_str(), u.site_role.as_str())).collect();
        let allowed_groups = &self.p.policy.access_allowed_groups;
        let mut audited: Vec<Audited> = vec![];
        let mut content: Vec<(&'static str, &str, &str, &str, &[String], String)> = vec![];
        for w in &site.workbooks {
            content.push(("workbook", &w.id, &w.name, &w.project_id, &w.tags, stamp(w.updated_at)));
        }
        for d in &site.datasources {
            content.push(("datasource", &d.id, &d.name, &d.project_id, &d.tags, stamp(d.updated_at)));
        }
        for (kind, id, name, project, item_tags, updated_at) in content {
            if !in_scope(project, id, item_tags) {
                continue;
            }
            let before = self.rules_of(id);
            let mut after = before.clone();
            let mut findings = vec![];
            let sensitive = is_sensitive(&tags) || is_sensitive(item_tags);
            let mut finding =
                |kind: &str, severity: &str, grantee: &str, caps: Vec<String>, text: String, fix: &str| {
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
                audited.push(Audited {
                    kind,
                    id: id.into(),
                    name: name.into(),
                    project_id: project.into(),
                    updated_at,
                    after: before.clone(),
                    before,
                    findings,
                });
                continue;
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
                    let shared = site
                        .groups
                        .iter()
                        .find(|g| g.id == a.grantee.id)
                        .zip(site.groups.iter().find(|g| g.id == b.grantee.id))
                        .map(|(x, y)| x.members.iter().filter(|m| y.members.contains(m)).count())
                        .unwrap_or(0);
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
            audited.push(Audited {
                kind,
                id: id.into(),
                name: name.into(),
                project_id: project.into(),
                updated_at,
                before,
                after,
                findings,
            });
        }

        // The chosen mode decides the changes.
        let mut lock_projects: BTreeSet<String> = BTreeSet::new();
        match mode.as_str() {
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

        let n_findings: usize = audited.iter().map(|a| a.findings.len()).sum();
        let flat: Vec<Value> = audited
            .iter()
            .flat_map(|a| {
                let project = self.project_path(&a.project_id);
                a.findings.iter().map(move |f| {
                    let mut f = f.clone();
                    f["type"] = json!(a.kind);
                    f["name"] = json!(a.name);
                    f["project"] = json!(project);
                    f["id"] = json!(a.id);
                    f
                })
            })
            .collect();
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for f in &flat {
            *by_kind.entry(f["finding"].as_str().unwrap_or("").to_string()).or_default() += 1;
        }
        let changing: Vec<&Audited> = audited.iter().filter(|a| a.before != a.after).collect();

        // Impact: users whose effective access changes, across which projects.
        let mut after_site = site.clone();
        for a in &changing {
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
        let ev_after = Evaluator::new(&after_site);
        let mut users: BTreeSet<String> = BTreeSet::new();
        let mut projects: BTreeSet<String> = BTreeSet::new();
        for a in &audited {
            if a.before == a.after && !lock_projects.contains(&a.project_id) {
                continue;
            }
            let changed = effective::changed_users(&ev.access(a.kind, &a.id), &ev_after.access(a.kind, &a.id));
            if !changed.is_empty() {
                projects.insert(a.project_id.clone());
            }
            users.extend(changed);
        }
        let impact = format!("This will affect {} users across {} projects", users.len(), projects.len());

        let find = self.step_id();
        self.plan.steps.push(Step::new(
            find.clone(),
            StepKind::AuditPermissions,
            format!(
                "Audit effective permissions on {} items of {label}: {n_findings} findings ({})",
                audited.len(),
                by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
            ),
            self.moving_step.clone().filter(|_| remaining).into_iter().collect(),
            vec![],
            vec![],
            json!({
                "scope": label,
                "mode": mode,
                "audited": audited.len(),
                "findings": flat,
                "findings_by_kind": by_kind,
                "dangerous_capabilities": DANGEROUS,
                "impact": {"users": users.len(), "projects": projects.iter().map(|p| self.project_path(p)).collect::<Vec<_>>()},
                "schedule": request.schedule.map(Schedule::as_str),
                "evaluation": "Tableau's order: Unlicensed nothing; admins, owners, project leaders everything; locked projects use their defaults; user rules before group rules; Deny beats Allow; the site role caps the result",
            }),
        ));
        // A cadence that croner cannot run is a question, never stored as given.
        let cadence = match request.schedule.map(|c| (c.as_str(), tabflow_nl::check_cadence(c.as_str()))) {
            None => None,
            Some((given, Ok(()))) => Some(given.to_string()),
            Some((_, Err(mut why))) => loop {
                let text = format!(
                    "The review's schedule cannot be stored: {why}. How often should the review of {label} run? Answer daily, weekly, monthly or a five-field cron expression (minute hour day-of-month month day-of-week), e.g. 0 6 * * 1 for Mondays at 6:00."
                );
                let Some(answer) = self.question(text, vec![], None) else { break None };
                match tabflow_nl::check_cadence(&answer) {
                    Ok(()) => break Some(answer.trim().to_string()),
                    Err(e) => why = e,
                }
            },
        };
        if let Some(cadence) = cadence {
            // The recurring review: stored when the plan is applied; each time, the same
            // intent is planned again (run by the scheduler worker).
            let s = self.step_id();
            self.plan.steps.push(Step::new(
                s,
                StepKind::ScheduleReview,
                format!("Store a {cadence} review of {label} (stored on apply; `tabflow schedule list`)"),
                vec![find.clone()],
                vec![],
                vec![],
                json!({"cadence": cadence, "intent": request.review}),
            ));
            self.plan.notes.push(format!(
                "A {cadence} review is stored when this plan is applied (`tabflow schedule list`). Running it on time needs `tabflow worker`, which is not in this build: until then `tabflow schedule list` shows it and its request can be planned by hand."
            ));
        }
        if changing.is_empty() && lock_projects.is_empty() {
            self.plan
                .notes
                .push(format!("Nothing to change on {label}: {n_findings} findings, none with an automatic fix."));
            return;
        }
        let go = if apply || remaining {
            true
        } else {
            let n = changing.len();
            self.question(
                format!("{n} items of {label} have permissions to fix ({impact}). Apply the recommended changes now, or only report them?"),
                vec!["revoke".into(), "report-only".into()],
                Some("report-only"),
            )
            .as_deref()
                == Some("revoke")
        };
        if !go {
            return;
        }
        let mut depends = vec![find];
        depends.extend(self.moving_step.clone().filter(|_| remaining));
        if !lock_projects.is_empty() {
            let s = self.step_id();
            let items: Vec<Item> = lock_projects
                .iter()
                .filter_map(|id| self.projects.get(id.as_str()).copied())
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
                    before: json!(self.projects.get(i.id.as_str()).map(|p| p.content_permissions.clone())),
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
            self.users.get(id).map(|u| u.name.clone()).unwrap_or_default()
        }
    }
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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

#[cfg(test)]
mod schedule_tests {
    use tabflow_plan::plan::{Plan, SiteRef, StepKind};
    use tabflow_plan::policy::Policy;

    use super::*;

    fn audit(schedule: &str, answers: &[(&str, &str)]) -> Plan {
        let site = tabflow_site::generate::demo();
        let policy = Policy::default();
        let p = crate::Planner {
            site: &site,
            site_ref: SiteRef { server: "demo".into(), content_url: String::new(), id: "s".into() },
            policy: &policy,
            signed_in: "admin".into(),
            now: site.now,
            answers: answers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            usage_source: "test".into(),
            learned: Default::default(),
        };
        let params = json!({"tags": ["sensitive"], "schedule": schedule}).as_object().cloned().unwrap();
        crate::plan("audit", vec![Intent::from_parts("audit-permissions", params).unwrap()], &p)
    }

    fn stored(plan: &Plan) -> Option<&str> {
        plan.steps.iter().find(|s| s.kind == StepKind::ScheduleReview).and_then(|s| s.details["cadence"].as_str())
    }

    #[test]
    fn a_cadence_croner_refuses_is_asked_about_not_stored() {
        let plan = audit("0 6 * * 1", &[]);
        assert_eq!(stored(&plan), Some("0 6 * * 1"));
        assert!(!plan.questions.iter().any(|q| q.text.contains("schedule")), "{:?}", plan.questions);

        let plan = audit("0 25 * * *", &[]);
        assert_eq!(stored(&plan), None);
        let q = &plan.questions[0];
        assert!(q.text.contains("'0 25 * * *' is not a cron expression") && q.text.contains("How often"), "{}", q.text);

        // A wrong answer is asked about again; a good one is stored.
        let plan = audit("0 25 * * *", &[("q1", "every 90 days")]);
        assert_eq!(stored(&plan), None);
        assert!(plan.questions[0].text.contains("cannot repeat every 90 days"), "{}", plan.questions[0].text);
        let plan = audit("0 25 * * *", &[("q1", "every 90 days"), ("q2", "0 0 1 */3 *")]);
        assert_eq!(stored(&plan), Some("0 0 1 */3 *"));
        assert!(!plan.questions.iter().any(|q| q.text.contains("schedule")), "{:?}", plan.questions);
    }
}
