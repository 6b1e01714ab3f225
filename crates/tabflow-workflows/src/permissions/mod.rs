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

mod access;
mod audit;
mod fixes;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tabflow_plan::intent::{self, AuditPermissions, Schedule, UpdatePermissions};
use tabflow_plan::plan::{Intent, Step, StepKind};

use crate::DANGEROUS;
use crate::builder::{Builder, text};
use crate::effective::Evaluator;
use audit::Audited;

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

        let ev = Evaluator::with_index(site, self.index.clone());
        let auditor = audit::Auditor::new(site, &ev, &tags, &self.p.policy.access_allowed_groups);
        let mut audited: Vec<Audited> = vec![];
        for c in audit::content(site) {
            if !in_scope(c.project, c.id, c.tags) {
                continue;
            }
            let before = self.rules_of(c.id);
            audited.push(auditor.item(c, before));
        }

        // The chosen mode decides the changes.
        let lock_projects = self.apply_mode(&ev, &mode, &mut audited);

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
        // The access report: every item in scope, who can do what and why (issue #18).
        let (access, matrix, group_members) = access::report(site, &ev, &audited, |p| self.project_path(p));

        // Impact: users whose effective access changes, across which projects.
        let (users, projects) = fixes::impact(&ev, &audited, &changing, &lock_projects);
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
                "access": access,
                "matrix": matrix,
                "group_members": group_members,
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
                "A {cadence} review is stored when this plan is applied (`tabflow schedule list`); `tabflow worker` runs it on time and writes its report."
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
        self.permission_fixes(depends, changing, &lock_projects, &label, &impact, &mode);
    }
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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
            license_notices: vec![],
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
