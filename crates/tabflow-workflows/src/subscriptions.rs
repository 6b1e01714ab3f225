//! Subscription cleanup (`clean-subscriptions`): subscriptions nobody receives or should keep
//! go — those of Unlicensed users (Tableau stops sending to them) or of accounts no longer on
//! the site, those to content in the archive or quarantine project (or carrying the archive
//! tag), and those Tableau suspended after repeated failures. Each removal is one `exists`
//! change of one subscription whose before-value describes it (user, content, subject,
//! schedule), so a rollback re-creates it: a new id, matched back by user, content and subject
//! (`site diff --match-recreated`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::json;
use tabflow_plan::intent::{CleanSubscriptions, SubscriptionReason};
use tabflow_plan::plan::{Change, Item, Step, StepKind};
use tabflow_site::{Subscription, Workbook};

use crate::builder::{Builder, text};

/// The archive project's name when the request names none (as `archive-stale-content`).
const ARCHIVE_PROJECT: &str = "Archive";

impl<'p, 'a> Builder<'p, 'a> {
    pub(crate) fn clean_subscriptions(&mut self, c: &CleanSubscriptions) {
        let site = self.p.site;
        let reasons: BTreeSet<SubscriptionReason> = match &c.reason {
            Some(r) if !r.is_empty() => r.iter().copied().collect(),
            _ => SubscriptionReason::ALL.into_iter().collect(),
        };
        // Scope: a project's subtree, a user.
        let scope = match text(&c.project) {
            Some(name) => match self.ground_project(name) {
                Some(p) => Some((self.subtree(&p.id), p.name.clone())),
                None => return,
            },
            None => None,
        };
        let only_user = match text(&c.user) {
            Some(name) => match self.ground_user(name, None, "subscriber") {
                Some(u) => Some(u),
                None => return,
            },
            None => None,
        };
        // Where content lives: views point at their workbook.
        let mut workbook_of: HashMap<&str, &Workbook> = HashMap::with_capacity(site.workbooks.len() * 3);
        for w in &site.workbooks {
            workbook_of.insert(w.id.as_str(), w);
            for v in &w.views {
                workbook_of.insert(v.id.as_str(), w);
            }
        }
        let users: HashMap<&str, &tabflow_site::User> = site.users.iter().map(|u| (u.id.as_str(), u)).collect();
        let policy = self.p.policy;
        let archived_projects: BTreeSet<String> = site
            .projects
            .iter()
            .filter(|p| p.name == ARCHIVE_PROJECT || p.name == policy.quarantine_project)
            .flat_map(|p| self.subtree(&p.id))
            .collect();

        let mut found = vec![];
        let mut items = vec![];
        let mut changes = vec![];
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut kept = 0usize;
        for s in &site.subscriptions {
            let w = workbook_of.get(s.content.id.as_str()).copied();
            if let Some((projects, _)) = &scope
                && !w.is_some_and(|w| projects.contains(&w.project_id))
            {
                continue;
            }
            if only_user.is_some_and(|u| u.id != s.user_id) {
                continue;
            }
            let user = users.get(s.user_id.as_str()).copied();
            let matched: Vec<(SubscriptionReason, String)> = self
                .reasons_of(s, user, w, &archived_projects)
                .into_iter()
                .filter(|(r, _)| reasons.contains(r))
                .collect();
            if matched.is_empty() {
                kept += 1;
                continue;
            }
            for (r, _) in &matched {
                *counts.entry(r.as_str()).or_default() += 1;
            }
            let why: Vec<&str> = matched.iter().map(|(_, w)| w.as_str()).collect();
            let who = user.map(|u| u.name.clone()).unwrap_or_else(|| format!("user {}", s.user_id));
            let content = w.map(|w| w.name.clone()).unwrap_or_else(|| s.content.id.clone());
            found.push(json!({
                "id": s.id, "subject": s.subject, "user": who, "content_type": s.content.kind,
                "content": content, "project": w.map(|w| self.project_name(&w.project_id)),
                "schedule": s.schedule, "suspended": s.suspended, "why": why,
            }));
            items.push(Item {
                kind: "subscription".into(),
                id: s.id.clone(),
                name: s.subject.clone(),
                reason: Some(format!("{who} → {} {content}: {}", s.content.kind, why.join("; "))),
                ..Item::default()
            });
            changes.push(Change {
                item: s.id.clone(),
                field: "exists".into(),
                before: json!({
                    "id": s.id, "subject": s.subject, "user_id": s.user_id,
                    "content": {"type": s.content.kind, "id": s.content.id},
                    "schedule": s.schedule, "suspended": s.suspended,
                }),
                after: serde_json::Value::Null,
                before_id: None,
                after_id: None,
                after_ref: None,
            });
        }
        let find = self.step_id();
        let scope_label = match (&scope, only_user) {
            (Some((_, p)), Some(u)) => format!(" in {p} of {}", u.name),
            (Some((_, p)), None) => format!(" in {p}"),
            (None, Some(u)) => format!(" of {}", u.name),
            (None, None) => String::new(),
        };
        let wanted: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        self.plan.steps.push(Step::new(
            find.clone(),
            StepKind::FindSubscriptions,
            format!(
                "Find subscriptions{scope_label} to remove ({}): {} found, {kept} kept",
                wanted.join(", "),
                items.len()
            ),
            vec![],
            vec![],
            vec![],
            json!({
                "reason": wanted,
                "found": found,
                "by_reason": counts,
                "kept": kept,
                "archive_projects": [ARCHIVE_PROJECT, policy.quarantine_project],
                "archive_tag": policy.archive_tag,
                "rule": "unlicensed-users: the subscriber is Unlicensed or no longer on the site; archived-content: the workbook (or the view's workbook) is in the Archive or quarantine project, or tagged with the archive tag; failing: Tableau suspended it after repeated failures",
            }),
        ));
        if items.is_empty() {
            self.plan.notes.push(format!("Nothing to do: no subscription{scope_label} matches {}.", wanted.join(", ")));
            return;
        }
        let n = items.len();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::RemoveSubscriptions,
            format!("Remove {n} subscriptions{scope_label} (a rollback re-creates them)"),
            vec![find],
            items,
            changes,
            json!({
                "by_reason": counts,
                "undo": "re-creates each subscription for the same user, content, subject and schedule (a new id)",
            }),
        ));
    }
}

impl Builder<'_, '_> {
    /// Every reason a subscription matches, each with its explanation.
    fn reasons_of(
        &self,
        s: &Subscription,
        user: Option<&tabflow_site::User>,
        w: Option<&Workbook>,
        archived: &BTreeSet<String>,
    ) -> Vec<(SubscriptionReason, String)> {
        let policy = self.p.policy;
        let mut out = vec![];
        match user {
            None => out.push((SubscriptionReason::UnlicensedUsers, "the subscriber is no longer on the site".into())),
            Some(u) if u.site_role == "Unlicensed" => {
                out.push((SubscriptionReason::UnlicensedUsers, format!("{} is Unlicensed", u.name)))
            }
            Some(_) => {}
        }
        match w {
            None => out.push((SubscriptionReason::ArchivedContent, "its content is no longer on the site".into())),
            Some(w) if archived.contains(&w.project_id) => out.push((
                SubscriptionReason::ArchivedContent,
                format!("{} is in {}", w.name, self.project_name(&w.project_id)),
            )),
            Some(w) if w.tags.iter().any(|t| t == &policy.archive_tag) => {
                out.push((SubscriptionReason::ArchivedContent, format!("{} is tagged {}", w.name, policy.archive_tag)))
            }
            Some(_) => {}
        }
        if s.suspended {
            out.push((SubscriptionReason::Failing, "Tableau suspended it after repeated failures".into()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tabflow_plan::RollbackClass;
    use tabflow_plan::plan::{Intent, StepKind};

    fn plan_on(site: &tabflow_site::Site, params: serde_json::Value) -> tabflow_plan::plan::Plan {
        crate::plan_intent(site, "clean-subscriptions", params)
    }

    #[test]
    fn unlicensed_suspended_and_archived_subscriptions_go_the_rest_stay() {
        let mut site = tabflow_site::generate::demo();
        // Archive one subscribed workbook by hand: its subscriptions must be found.
        let archive_id = site.projects.iter().find(|p| p.name == "Archive").map(|p| p.id.clone());
        let sub_wb = site.subscriptions.iter().find(|s| s.content.kind == "workbook").unwrap().content.id.clone();
        if let Some(a) = &archive_id {
            site.workbooks.iter_mut().find(|w| w.id == sub_wb).unwrap().project_id = a.clone();
        } else {
            site.workbooks.iter_mut().find(|w| w.id == sub_wb).unwrap().tags.push("archived-by-tabflow".into());
        }
        // Expected, computed here from the site without the planner's helpers.
        let role = |id: &str| site.users.iter().find(|u| u.id == id).map(|u| u.site_role.as_str());
        let wb_of =
            |cid: &str| site.workbooks.iter().find(|w| w.id == cid || w.views.iter().any(|v| v.id == cid)).unwrap();
        let archived = |cid: &str| {
            let w = wb_of(cid);
            Some(&w.project_id) == archive_id.as_ref() || w.tags.iter().any(|t| t == "archived-by-tabflow")
        };
        let mut want: Vec<&str> = site
            .subscriptions
            .iter()
            .filter(|s| matches!(role(&s.user_id), None | Some("Unlicensed")) || s.suspended || archived(&s.content.id))
            .map(|s| s.id.as_str())
            .collect();
        want.sort();
        assert!(site.subscriptions.iter().filter(|s| s.suspended).count() == 3, "the demo has 3 suspended");
        assert!(want.len() >= 4 && want.len() < site.subscriptions.len(), "{}", want.len());

        let p = plan_on(&site, json!({}));
        let remove = p.steps.iter().find(|s| s.kind == StepKind::RemoveSubscriptions).expect("a removal step");
        let mut got: Vec<&str> = remove.items.iter().map(|i| i.id.as_str()).collect();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(remove.effect, tabflow_plan::plan::Effect::Destructive);
        assert_eq!(remove.rollback, RollbackClass::Snapshot);
        for c in &remove.changes {
            let s = site.subscriptions.iter().find(|s| s.id == c.item).unwrap();
            assert_eq!(c.before["user_id"], json!(s.user_id));
            assert_eq!(c.before["content"]["id"], json!(s.content.id));
            assert_eq!(c.before["subject"], json!(s.subject));
            assert!(c.after.is_null());
        }
        assert!(archived(&sub_wb));
        assert!(got.contains(&site.subscriptions.iter().find(|s| s.content.id == sub_wb).unwrap().id.as_str()));

        // One reason only: exactly the suspended ones.
        let p = plan_on(&site, json!({"reason": "failing"}));
        let remove = p.steps.iter().find(|s| s.kind == StepKind::RemoveSubscriptions).unwrap();
        assert_eq!(remove.items.len(), 3);
        assert!(remove.items.iter().all(|i| i.reason.as_deref().unwrap().contains("suspended")));
    }

    #[test]
    fn unknown_scope_is_asked_and_nothing_is_planned() {
        let site = tabflow_site::generate::demo();
        let p = plan_on(&site, json!({"project": "No Such Project"}));
        assert!(p.steps.is_empty());
        assert!(p.questions[0].text.contains("No Such Project"), "{:?}", p.questions);
        let p = plan_on(&site, json!({"user": "nobody-here"}));
        assert!(p.steps.is_empty() && p.questions[0].text.contains("nobody-here"));
        let e = Intent::from_parts("clean-subscriptions", json!({"reason": ["bogus"]}).as_object().cloned().unwrap());
        assert!(e.is_err());
    }
}
