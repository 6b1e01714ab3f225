//! Offboarding a user: ground the leaving user and the new owner, transfer what they own,
//! remove their access and group memberships, and (when asked and confirmed) delete the
//! account last, never with content left.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use tabflow_plan::intent::Offboard;
use tabflow_plan::ops::Rule;
use tabflow_plan::plan::{Change, Item, Step, StepKind};

use crate::builder::{Builder, owner_change, text};

impl<'p, 'a> Builder<'p, 'a> {
    pub(crate) fn offboard(&mut self, intent: &Offboard) {
        let site = self.p.site;
        let Some(wanted) = text(&intent.user) else {
            self.ask("Whose content should be handed over? Give a name, username or email.".into(), vec![], None);
            return;
        };
        let team = text(&intent.team);
        let Some(leaver) = self.ground_user(wanted, team, "person leaving") else { return };
        let explicit_new = match text(&intent.new_owner) {
            Some(n) => match self.ground_user(n, None, "new owner") {
                Some(u) if u.id == leaver.id => {
                    self.ask(
                        format!("{} cannot hand content to themselves. Who is the new owner?", u.full_name),
                        vec![],
                        None,
                    );
                    return;
                }
                Some(u) => Some(u),
                None => return,
            },
            None => None,
        };
        let licensed = |u: &tabflow_site::User| u.site_role != "Unlicensed";
        let can_own = |u: &tabflow_site::User| {
            u.site_role.starts_with("SiteAdministrator")
                || matches!(u.site_role.as_str(), "Creator" | "ExplorerCanPublish")
        };
        let owned_count: HashMap<&str, usize> = site
            .workbooks
            .iter()
            .map(|w| w.owner_id.as_str())
            .chain(site.datasources.iter().map(|d| d.owner_id.as_str()))
            .fold(HashMap::new(), |mut m, o| {
                *m.entry(o).or_default() += 1;
                m
            });
        let teams: Vec<&tabflow_site::Group> =
            site.groups.iter().filter(|g| g.name != "All Users" && g.members.contains(&leaver.id)).collect();
        let teammate = teams
            .iter()
            .flat_map(|g| g.members.iter())
            .filter(|m| **m != leaver.id)
            .filter_map(|m| self.index.user(m.as_str()))
            .filter(|u| licensed(u) && can_own(u))
            .max_by_key(|u| (owned_count.get(u.id.as_str()).copied().unwrap_or(0), std::cmp::Reverse(u.name.clone())));
        let admin = site.users.iter().find(|u| u.name == self.p.signed_in);
        let team_names: Vec<&str> = teams.iter().map(|g| g.name.as_str()).collect();
        let suggest = |project_id: &str| -> Option<(&'a tabflow_site::User, String)> {
            if let Some(u) = explicit_new {
                return Some((u, "the new owner you named".into()));
            }
            let project = self.index.project(project_id).map(|p| p.name.as_str());
            if let Some((name, why)) = self.p.learned.owner(project, &team_names)
                && let Some(u) = self.user_named(name, false)
                && u.id != leaver.id
                && licensed(u)
                && can_own(u)
            {
                return Some((u, why));
            }
            if let Some(p) = self.index.project(project_id)
                && p.owner_id != leaver.id
                && let Some(u) = self.index.user(p.owner_id.as_str())
                && licensed(u)
            {
                return Some((u, format!("owner of the project {}", p.name)));
            }
            if let Some(u) = teammate {
                return Some((
                    u,
                    format!(
                        "most active teammate in {}",
                        teams.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            admin.map(|u| (u, "site administrator (no teammate can own content)".to_string()))
        };
        // Inventory, with each item's importance: how much it is used (views), who relies on
        // it (subscribers of others, data alerts) and what depends on it (workbooks on a
        // datasource). Transfers are listed most important first.
        let mut items = vec![];
        let mut changes = vec![];
        let mut inventory = vec![];
        let mut importance: HashMap<String, u64> = HashMap::new();
        for w in site.workbooks.iter().filter(|w| w.owner_id == leaver.id) {
            let view_ids: BTreeSet<&str> = w.views.iter().map(|v| v.id.as_str()).collect();
            let on_it = self.subscriptions_on(std::iter::once(w.id.as_str()).chain(view_ids.iter().copied()));
            let subscribers: BTreeSet<&str> = on_it.iter().map(|s| s.user_id.as_str()).collect();
            let subs = on_it.len();
            let alerts: usize = view_ids.iter().map(|v| self.alerts_on(v)).sum();
            let views: u64 = w.views.iter().map(|v| v.total_views).sum();
            importance.insert(w.id.clone(), views + 50 * subscribers.len() as u64 + 25 * alerts as u64);
            inventory.push(json!({"type": "workbook", "id": w.id, "name": w.name, "project": self.project_name(&w.project_id), "views": views, "subscriptions": subs, "subscribers": subscribers.len(), "data_alerts": alerts}));
            if let Some((u, why)) = suggest(&w.project_id) {
                let mut it = self
                    .workbook_item(w, Some(format!("→ {} ({why}); {views} views, {subs} subscriptions", u.full_name)));
                it.owner = Some(leaver.full_name.clone());
                items.push(it);
                changes.push(owner_change(&w.id, leaver, u));
            }
        }
        for d in site.datasources.iter().filter(|d| d.owner_id == leaver.id) {
            let using = self.workbooks_using(&d.id);
            let dependents = using.len();
            let dependent_views: u64 = using.iter().flat_map(|w| w.views.iter().map(|v| v.total_views)).sum();
            importance.insert(d.id.clone(), dependent_views + 100 * dependents as u64);
            inventory.push(json!({"type": "datasource", "id": d.id, "name": d.name, "project": self.project_name(&d.project_id), "dependents": dependents, "dependent_views": dependent_views, "certified": d.certified}));
            if let Some((u, why)) = suggest(&d.project_id) {
                items.push(Item {
                    kind: "datasource".into(),
                    id: d.id.clone(),
                    name: d.name.clone(),
                    project: Some(self.project_name(&d.project_id)),
                    updated_at: Some(d.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    owner: Some(leaver.full_name.clone()),
                    reason: Some(format!("→ {} ({why}); {dependents} dependent workbooks", u.full_name)),
                    size: Some(d.size),
                });
                changes.push(owner_change(&d.id, leaver, u));
            }
        }
        for p in site.projects.iter().filter(|p| p.owner_id == leaver.id) {
            inventory.push(json!({"type": "project", "id": p.id, "name": p.name}));
            if let Some((u, why)) = suggest(p.parent_id.as_deref().unwrap_or("")) {
                items.push(Item {
                    kind: "project".into(),
                    id: p.id.clone(),
                    name: p.name.clone(),
                    owner: Some(leaver.full_name.clone()),
                    reason: Some(format!("→ {} ({why})", u.full_name)),
                    ..Item::default()
                });
                changes.push(owner_change(&p.id, leaver, u));
            }
        }
        // Flows (Tableau Prep). A flow's owner needs a Creator license, so only users who may
        // own one are suggested; a named new owner without that license is not overridden: the
        // flow stays out of the transfer and the plan says why (Tableau would refuse it, 403141).
        // REST keeps no usage for flows: importance 0, ranked after content with the same score.
        let flow_owner = |u: &tabflow_site::User| tabflow_wire::capability::can_own_flows(&u.site_role);
        let flow_teammate = teams
            .iter()
            .flat_map(|g| g.members.iter())
            .filter(|m| **m != leaver.id)
            .filter_map(|m| self.index.user(m.as_str()))
            .filter(|u| flow_owner(u))
            .max_by_key(|u| (owned_count.get(u.id.as_str()).copied().unwrap_or(0), std::cmp::Reverse(u.name.clone())));
        let suggest_flow = |project_id: &str| -> Result<(&'a tabflow_site::User, String), String> {
            if let Some(u) = explicit_new {
                return if flow_owner(u) {
                    Ok((u, "the new owner you named".into()))
                } else {
                    Err(format!(
                        "{} ({}) is {}; a flow's owner needs a Creator license",
                        u.full_name, u.name, u.site_role
                    ))
                };
            }
            let project = self.index.project(project_id).map(|p| p.name.as_str());
            if let Some((name, why)) = self.p.learned.owner(project, &team_names)
                && let Some(u) = self.user_named(name, false)
                && u.id != leaver.id
                && flow_owner(u)
            {
                return Ok((u, why));
            }
            if let Some(p) = self.index.project(project_id)
                && p.owner_id != leaver.id
                && let Some(u) = self.index.user(p.owner_id.as_str())
                && flow_owner(u)
            {
                return Ok((u, format!("owner of the project {}", p.name)));
            }
            if let Some(u) = flow_teammate {
                return Ok((u, format!("most active teammate with a Creator license in {}", team_names.join(", "))));
            }
            match admin {
                Some(u) if flow_owner(u) => Ok((u, "site administrator (no teammate has a Creator license)".into())),
                _ => Err("no teammate, project owner or administrator has a Creator license".into()),
            }
        };
        let mut flows_left: Vec<String> = vec![];
        for f in site.flows.iter().filter(|f| f.owner_id == leaver.id) {
            let project = self.project_name(&f.project_id);
            let target = suggest_flow(&f.project_id);
            inventory.push(json!({"type": "flow", "id": f.id, "name": f.name, "project": project, "file_type": f.file_type, "usage": "no usage data for flows", "transfer": match &target { Ok((u, _)) => json!(u.name), Err(why) => json!(format!("not transferred: {why}")) }}));
            match target {
                Ok((u, why)) => {
                    importance.insert(f.id.clone(), 0);
                    items.push(Item {
                        kind: "flow".into(),
                        id: f.id.clone(),
                        name: f.name.clone(),
                        project: Some(project),
                        updated_at: Some(f.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        owner: Some(leaver.full_name.clone()),
                        reason: Some(format!("→ {} ({why}); Tableau Prep flow, no usage data", u.full_name)),
                        size: None,
                    });
                    changes.push(owner_change(&f.id, leaver, u));
                }
                Err(why) => flows_left.push(format!("'{}' in {project} ({why})", f.name)),
            }
        }
        if !flows_left.is_empty() {
            self.plan.notes.push(format!(
                "{} of {}'s flows not transferred: {}. Tableau refuses a flow owner without a Creator license. Name a new owner who is a Creator, SiteAdministratorCreator or ServerAdministrator, or change the named owner's site role first, then plan again.",
                flows_left.len(),
                leaver.full_name,
                flows_left.join("; ")
            ));
        }
        // Most important first; the rank goes into each reason.
        let n_owned = items.len();
        items.sort_by(|a: &Item, b: &Item| {
            let ia = importance.get(&a.id).copied().unwrap_or(0);
            let ib = importance.get(&b.id).copied().unwrap_or(0);
            ib.cmp(&ia)
                .then((a.kind == "flow").cmp(&(b.kind == "flow")))
                .then(a.kind.cmp(&b.kind))
                .then(a.name.cmp(&b.name))
        });
        for (rank, it) in items.iter_mut().enumerate() {
            if it.kind != "project"
                && let Some(r) = &mut it.reason
            {
                r.push_str(&format!("; importance {} of {n_owned}", rank + 1));
            }
        }
        let subs: Vec<Value> = site
            .subscriptions
            .iter()
            .filter(|s| s.user_id == leaver.id)
            .map(|s| json!({"id": s.id, "subject": s.subject, "content": s.content.id}))
            .collect();
        // What Tableau cannot hand over through its API: listed so that nothing is forgotten.
        let alerts_owned: Vec<Value> = site
            .data_alerts
            .iter()
            .filter(|a| a.owner_id == leaver.id)
            .map(|a| json!({"id": a.id, "subject": a.subject, "view": a.view_id, "recipients": a.recipients.len()}))
            .collect();
        let alerts_receiving: usize = site.data_alerts.iter().filter(|a| a.recipients.contains(&leaver.id)).count();
        let webhooks: Vec<Value> = site
            .webhooks
            .iter()
            .filter(|h| h.owner_id == leaver.id)
            .map(|h| json!({"id": h.id, "name": h.name, "event": h.event, "url": h.url, "enabled": h.enabled}))
            .collect();
        if !alerts_owned.is_empty() || !webhooks.is_empty() {
            self.plan.notes.push(format!(
                "{} owns {} data alerts and {} webhooks. Tableau's REST API cannot change their owner; they stop when the account is unlicensed or deleted. Re-create them under the new owner (listed in the inventory step).",
                leaver.full_name,
                alerts_owned.len(),
                webhooks.len()
            ));
        }
        let grants: Vec<&tabflow_site::PermissionRule> =
            site.permissions.iter().filter(|r| r.grantee.kind == "user" && r.grantee.id == leaver.id).collect();
        let find = self.step_id();
        self.plan.steps.push(Step::new(
            find.clone(),
            StepKind::InventoryUser,
            format!(
                "Inventory what {} ({}) owns: {} items, {} subscriptions, {} groups, {} explicit grants",
                leaver.full_name,
                leaver.name,
                inventory.len(),
                subs.len(),
                teams.len(),
                grants.len()
            ),
            vec![],
            vec![Item { kind: "user".into(), id: leaver.id.clone(), name: leaver.name.clone(), ..Item::default() }],
            vec![],
            json!({
                "owned": inventory,
                "subscriptions": subs,
                "groups": teams.iter().map(|g| &g.name).collect::<Vec<_>>(),
                "data_alerts_owned": alerts_owned,
                "data_alerts_receiving": alerts_receiving,
                "webhooks_owned": webhooks,
                "explicit_grants": grants.len(),
            }),
        ));
        let mut depends = vec![find.clone()];
        if !changes.is_empty() {
            let n = items.len();
            let s = self.step_id();
            let details = json!({
                "people": changes
                    .iter()
                    .filter_map(|c| c.after_id.as_deref())
                    .chain([leaver.id.as_str()])
                    .filter_map(|id| self.index.user(id))
                    .map(|u| (u.id.clone(), json!({"id": u.id, "name": u.full_name, "email": u.email})))
                    .collect::<serde_json::Map<String, Value>>(),
                "notify": "the new owners and the previous owner are told after the run (outbox; email and webhook when configured)",
            });
            self.plan.steps.push(Step::new(
                s.clone(),
                StepKind::TransferOwnership,
                format!("Transfer ownership of {n} items from {}", leaver.full_name),
                vec![find.clone()],
                items,
                changes,
                details,
            ));
            depends.push(s);
        }
        // Deleting the account (only when asked, and confirmed): Tableau cannot give a deleted
        // account back its id, so the careful default keeps it, Unlicensed.
        let delete_asked = intent.delete_user.unwrap_or(false);
        let map_to = explicit_new.or(admin).filter(|u| u.id != leaver.id && licensed(u));
        let delete = delete_asked
            && {
                let lost = if alerts_owned.is_empty() && webhooks.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; its {} data alerts and {} webhooks go to {} and cannot be handed back",
                        alerts_owned.len(),
                        webhooks.len(),
                        map_to.map(|u| u.full_name.as_str()).unwrap_or("the new owner")
                    )
                };
                let a = self.question(
                format!(
                    "Delete {}'s account after the hand-over, or keep it as Unlicensed? An undo re-creates a deleted account with a new id and without its sign-in history{lost}. Keeping it Unlicensed can be undone exactly.",
                    leaver.full_name
                ),
                vec!["delete".into(), "unlicense".into()],
                Some("unlicense"),
            );
                a.is_some_and(|a| a.eq_ignore_ascii_case("delete"))
            };
        if delete && map_to.is_none() {
            self.plan.notes.push(format!(
                "{}'s account is not deleted: Tableau's mapAssetsTo needs a licensed account to receive anything left, and none was named — name a new owner",
                leaver.full_name
            ));
        }
        let delete = delete && map_to.is_some();
        // A leaver's request plans the whole sequence: absent `remove_access` means yes; a
        // request that only hands content over says false (issue #18).
        if intent.remove_access.unwrap_or(true) || delete_asked {
            self.remove_access(leaver, &teams, &grants, delete, &mut depends);
        }
        if let (true, Some(to)) = (delete, map_to) {
            self.delete_account(leaver, to, &grants, &depends);
        }
    }

    /// The `remove-access` steps, each its own so that the review can drop any of them: the
    /// leaver leaves their groups, loses their explicit grants, and becomes Unlicensed. Each
    /// step's id joins `depends`; each is undone exactly (groups re-joined, rules put back,
    /// the site role restored).
    fn remove_access(
        &mut self,
        leaver: &tabflow_site::User,
        teams: &[&tabflow_site::Group],
        grants: &[&tabflow_site::PermissionRule],
        delete: bool,
        depends: &mut Vec<String>,
    ) {
        let user_item =
            || Item { kind: "user".into(), id: leaver.id.clone(), name: leaver.name.clone(), ..Item::default() };
        let change = |item: &str, field: &str, before: Value, after: Value| Change {
            item: item.into(),
            field: field.into(),
            before,
            after,
            before_id: None,
            after_id: None,
            after_ref: None,
        };
        let after = depends.clone();
        let mut added = vec![];
        if !teams.is_empty() {
            let groups = json!(teams.iter().map(|g| json!({"id": g.id, "name": g.name})).collect::<Vec<_>>());
            let s = self.step_id();
            let names: Vec<&str> = teams.iter().map(|g| g.name.as_str()).collect();
            self.plan.steps.push(Step::new(
                s.clone(),
                StepKind::RemoveAccess,
                format!("Remove {} from {} groups: {}", leaver.full_name, teams.len(), names.join(", ")),
                after.clone(),
                vec![user_item()],
                vec![change(&leaver.id, "groups", groups, json!([]))],
                json!({"part": "group memberships", "undo": "re-adds each membership"}),
            ));
            added.push(s);
        }
        let resources: BTreeSet<(&str, &str)> =
            grants.iter().map(|r| (r.resource.kind.as_str(), r.resource.id.as_str())).collect();
        let mut items = vec![];
        let mut changes = vec![];
        for (kind, id) in resources {
            if !matches!(kind, "workbook" | "datasource" | "project" | "flow" | "view") {
                continue;
            }
            let before = self.rules_of(id);
            let after: Vec<Rule> =
                before.iter().filter(|r| !(r.grantee.kind == "user" && r.grantee.id == leaver.id)).cloned().collect();
            let name = match kind {
                "workbook" => self.index.workbook(id).map(|w| w.name.clone()),
                "datasource" => self.index.datasource(id).map(|d| d.name.clone()),
                "flow" => self.flow(id).map(|f| f.name.clone()),
                "view" => site_view_name(self.p.site, id),
                _ => self.index.project(id).map(|p| p.name.clone()),
            }
            .unwrap_or_default();
            items.push(Item {
                kind: kind.into(),
                id: id.into(),
                name,
                reason: Some(format!("explicit grant to {}", leaver.name)),
                ..Item::default()
            });
            changes.push(change(id, "permissions", json!(before), json!(after)));
        }
        if !changes.is_empty() {
            let s = self.step_id();
            self.plan.steps.push(Step::new(
                s.clone(),
                StepKind::RemoveAccess,
                format!("Revoke {}'s explicit grants on {} items", leaver.full_name, items.len()),
                after.clone(),
                items,
                changes,
                json!({"part": "explicit grants", "undo": "puts each item's rules back as they were"}),
            ));
            added.push(s);
        }
        if leaver.site_role != "Unlicensed" {
            let s = self.step_id();
            self.plan.steps.push(Step::new(
                s.clone(),
                StepKind::RemoveAccess,
                format!("Set {}'s site role from {} to Unlicensed", leaver.full_name, leaver.site_role),
                after,
                vec![user_item()],
                vec![change(&leaver.id, "site_role", json!(leaver.site_role), json!("Unlicensed"))],
                json!({"part": "license", "undo": format!("restores the site role {}", leaver.site_role), "note": if delete {
                    "the account is deleted by the next step, once it owns nothing"
                } else {
                    "the user is not deleted: Tableau refuses to delete a user who owns content, and an Unlicensed user keeps the history"
                }}),
            ));
            added.push(s);
        }
        depends.extend(added);
    }

    /// The `delete-user` step, after everything in `depends`: anything the account still owns
    /// goes to `to` (mapAssetsTo); the before-image is what an undo re-creates.
    fn delete_account(
        &mut self,
        leaver: &tabflow_site::User,
        to: &tabflow_site::User,
        grants: &[&tabflow_site::PermissionRule],
        depends: &[String],
    ) {
        // The data alerts it receives: the undo adds the re-created account back to them.
        let alerts_receiving: Vec<&str> = self
            .p
            .site
            .data_alerts
            .iter()
            .filter(|a| a.recipients.contains(&leaver.id))
            .map(|a| a.id.as_str())
            .collect();
        let grants_on: Vec<Value> = grants
            .iter()
            .map(|r| (r.resource.kind.as_str(), r.resource.id.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(kind, id)| json!({"type": kind, "id": id}))
            .collect();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::DeleteUser,
            format!(
                "Delete the account {} ({}) once it owns nothing; anything still found goes to {} (mapAssetsTo)",
                leaver.full_name, leaver.name, to.full_name
            ),
            depends.to_vec(),
            vec![Item {
                kind: "user".into(),
                id: leaver.id.clone(),
                name: leaver.name.clone(),
                owner: None,
                reason: Some(format!("left the organisation; content handed over to {}", to.full_name)),
                ..Item::default()
            }],
            vec![Change {
                item: leaver.id.clone(),
                field: "exists".into(),
                before: json!({
                    "name": leaver.name,
                    "full_name": leaver.full_name,
                    "email": leaver.email,
                    "site_role": leaver.site_role,
                    "grants_on": grants_on,
                    "alerts_receiving": alerts_receiving,
                }),
                after: Value::Null,
                before_id: None,
                after_id: Some(to.id.clone()),
                after_ref: None,
            }],
            json!({
                "map_assets_to": {"id": to.id, "name": to.full_name},
                "undo_restores": ["the account (new id)", "full name, email, site role, authentication", "group memberships", "explicit grants", "subscriptions", "favorites", "data alerts it received"],
                "undo_cannot_restore": ["the account's id (LUID)", "sign-in history and usage attribution", "personal access tokens", "custom views", "data alerts and webhooks it owned (they stay with the mapAssetsTo owner)"],
            }),
        ));
    }
}

/// The name of a view, as "workbook / view".
fn site_view_name(site: &tabflow_site::Site, id: &str) -> Option<String> {
    site.workbooks.iter().find_map(|w| w.views.iter().find(|v| v.id == id).map(|v| format!("{} / {}", w.name, v.name)))
}

#[cfg(test)]
mod offboard_tests {
    use super::*;
    use tabflow_plan::plan::Plan;
    use tabflow_plan::policy::Policy;
    use tabflow_site::Site;

    fn plan_for(site: &Site, params: Value) -> Plan {
        plan_answered(site, params, &[])
    }

    fn plan_answered(site: &Site, params: Value, answers: &[(&str, &str)]) -> Plan {
        crate::plan_intent_answered(site, "offboard-user", params, answers)
    }

    #[test]
    fn deleting_the_account_is_confirmed_then_planned_last_and_never_with_content_left() {
        let site = tabflow_site::generate::demo();
        let params = json!({"user": "jsmith", "new_owner": "Tom Baker", "delete_user": true});
        // Asked first; the careful default keeps the account.
        let asked = plan_for(&site, params.clone());
        let q = &asked.questions[0];
        assert_eq!(q.choices, vec!["delete", "unlicense"]);
        assert_eq!(q.default.as_deref(), Some("unlicense"));
        assert!(q.text.contains("new id"), "{}", q.text);
        assert!(!asked.steps.iter().any(|s| s.kind == StepKind::DeleteUser));
        assert!(asked.steps.iter().any(|s| s.kind == StepKind::RemoveAccess), "deleting implies removing access");
        let kept = plan_answered(&site, params.clone(), &[("q1", "unlicense")]);
        assert!(!kept.steps.iter().any(|s| s.kind == StepKind::DeleteUser));

        let plan = plan_answered(&site, params, &[("q1", "delete")]);
        let del = plan.steps.last().unwrap();
        assert_eq!(del.kind, StepKind::DeleteUser);
        assert_eq!(del.rollback, tabflow_plan::RollbackClass::Lossy);
        let tom = site.users.iter().find(|u| u.full_name == "Tom Baker").unwrap();
        assert_eq!(del.changes[0].after_id.as_deref(), Some(tom.id.as_str()), "mapAssetsTo is the new owner");
        let transfer = plan.steps.iter().find(|s| s.kind == StepKind::TransferOwnership).unwrap();
        let access = plan.steps.iter().find(|s| s.kind == StepKind::RemoveAccess).unwrap();
        assert!(del.depends_on.contains(&transfer.id) && del.depends_on.contains(&access.id), "{:?}", del.depends_on);
        assert!(!access.depends_on.contains(&access.id));
        let admin = site.users.iter().find(|u| u.name == "admin").unwrap();
        let facts = tabflow_plan::validate::Facts::from_site(&site, &admin.name);
        let policy = Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() };
        let key = tabflow_plan::PlanKey::new([3; 32]);
        let ok = tabflow_plan::validate::validate(plan.clone(), &facts, &policy, &key).map(|v| v.into_plan());
        assert!(ok.as_ref().is_ok_and(|p| p.validation.ok), "{:?}", ok.map(|p| p.validation.findings));

        // A plan whose hand-over misses one item is refused, naming it.
        let mut short = plan.clone();
        let t = short.steps.iter_mut().find(|s| s.kind == StepKind::TransferOwnership).unwrap();
        let kept_back = t.changes.pop().unwrap().item;
        t.items.retain(|i| i.id != kept_back);
        let refused = tabflow_plan::validate::validate(short, &facts, &policy, &key).map(|v| v.into_plan());
        let findings = match refused {
            Ok(p) => p.validation.findings,
            Err(p) => p.validation.findings,
        };
        let err = findings
            .iter()
            .find(|f| f.level == tabflow_plan::plan::Level::Error && f.message.contains("still own"))
            .expect("refused");
        assert_eq!(err.items, vec![kept_back]);
    }

    #[test]
    fn the_inventory_ranks_by_importance_and_lists_what_cannot_be_handed_over() {
        let mut site = tabflow_site::generate::demo();
        let leaver = site.users.iter().find(|u| u.name == "jsmith").unwrap().id.clone();
        // Give the leaver a webhook and a data alert (the demo may have none), so the
        // inventory must find them.
        let view = site.workbooks.iter().find(|w| w.owner_id == leaver).unwrap().views[0].id.clone();
        site.webhooks.push(tabflow_site::Webhook {
            id: "hook-1".into(),
            name: "Refresh failed to Slack".into(),
            event: "datasource-refresh-failed".into(),
            url: "https://hooks.example.com/x".into(),
            owner_id: leaver.clone(),
            enabled: true,
        });
        site.data_alerts.push(tabflow_site::DataAlert {
            id: "alert-1".into(),
            subject: "Revenue below plan".into(),
            owner_id: leaver.clone(),
            view_id: view,
            recipients: vec![leaver.clone()],
        });
        let plan = plan_for(&site, json!({"user": "jsmith", "new_owner": "tbaker"}));
        let inv = plan.steps.iter().find(|s| s.kind == StepKind::InventoryUser).unwrap();
        let owned_alerts = site.data_alerts.iter().filter(|a| a.owner_id == leaver).count();
        assert_eq!(inv.details["data_alerts_owned"].as_array().unwrap().len(), owned_alerts);
        assert!(inv.details["webhooks_owned"].as_array().unwrap().iter().any(|h| h["id"] == "hook-1"));
        assert!(plan.notes.iter().any(|n| n.contains("cannot change their owner")), "{:?}", plan.notes);

        // The most viewed + most subscribed workbook comes first (computed here from the site).
        let transfer = plan.steps.iter().find(|s| s.kind == StepKind::TransferOwnership).unwrap();
        let score = |w: &tabflow_site::Workbook| {
            let views: u64 = w.views.iter().map(|v| v.total_views).sum();
            let ids: BTreeSet<&str> = w.views.iter().map(|v| v.id.as_str()).chain([w.id.as_str()]).collect();
            let subscribers: BTreeSet<&str> = site
                .subscriptions
                .iter()
                .filter(|s| ids.contains(s.content.id.as_str()))
                .map(|s| s.user_id.as_str())
                .collect();
            let alerts = site.data_alerts.iter().filter(|a| ids.contains(a.view_id.as_str())).count() as u64;
            views + 50 * subscribers.len() as u64 + 25 * alerts
        };
        let workbooks: Vec<&Item> = transfer.items.iter().filter(|i| i.kind == "workbook").collect();
        let scores: Vec<u64> =
            workbooks.iter().map(|i| score(site.workbooks.iter().find(|w| w.id == i.id).unwrap())).collect();
        assert!(scores.len() > 3);
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "workbooks not in order of importance: {scores:?}");
        let first = &transfer.items[0];
        assert!(first.reason.as_deref().unwrap().contains("importance 1 of"), "{:?}", first.reason);
        // Projects the leaver owns are still handed over (listed after content).
        let owns_project = site.projects.iter().any(|p| p.owner_id == leaver);
        assert_eq!(transfer.items.iter().any(|i| i.kind == "project"), owns_project);
    }

    #[test]
    fn flows_are_inventoried_and_handed_to_a_creator_only() {
        let site = tabflow_site::generate::demo();
        let john = site.users.iter().find(|u| u.name == "jsmith").unwrap();
        let flow = site.flows.iter().find(|f| f.owner_id == john.id).expect("the demo's leaver owns a flow");
        let owned = site.workbooks.iter().filter(|w| w.owner_id == john.id).count()
            + site.datasources.iter().filter(|d| d.owner_id == john.id).count()
            + site.projects.iter().filter(|p| p.owner_id == john.id).count()
            + site.flows.iter().filter(|f| f.owner_id == john.id).count();

        // A Creator as the new owner: the flow is inventoried and transferred, ranked last
        // among items of equal (zero) importance: flows have no usage data.
        let plan = plan_for(&site, json!({"user": "jsmith", "new_owner": "tbaker"}));
        let inv = plan.steps.iter().find(|s| s.kind == StepKind::InventoryUser).unwrap();
        assert!(inv.title.contains(&format!("owns: {owned} items")), "{}", inv.title);
        let listed = inv.details["owned"].as_array().unwrap().iter().find(|x| x["id"] == flow.id.as_str()).unwrap();
        assert_eq!((listed["type"].as_str(), listed["transfer"].as_str()), (Some("flow"), Some("tbaker")));
        let transfer = plan.steps.iter().find(|s| s.kind == StepKind::TransferOwnership).unwrap();
        let at = transfer.items.iter().position(|i| i.id == flow.id).expect("the flow is transferred");
        assert_eq!(transfer.items[at].kind, "flow");
        assert!(transfer.items[at + 1..].iter().all(|i| i.kind == "flow"), "flows rank after equal content");
        let c = transfer.changes_of(&flow.id).next().unwrap();
        assert_eq!((c.field.as_str(), c.after.as_str()), ("owner", Some("tbaker")));
        assert!(!plan.notes.iter().any(|n| n.contains("flows not transferred")), "{:?}", plan.notes);

        // An Explorer as the new owner: the rest goes to them, the flow stays and the plan says why.
        let plan = plan_for(&site, json!({"user": "jsmith", "new_owner": "jdoe"}));
        let transfer = plan.steps.iter().find(|s| s.kind == StepKind::TransferOwnership).unwrap();
        assert!(!transfer.items.iter().any(|i| i.kind == "flow"), "no transfer Tableau would refuse");
        assert!(transfer.changes.iter().all(|c| c.item != flow.id));
        assert!(transfer.items.iter().any(|i| i.kind == "workbook"), "the other content still moves");
        let note = plan.notes.iter().find(|n| n.contains("flows not transferred")).expect("a note says why");
        assert!(note.contains(&flow.name) && note.contains("Creator license") && note.contains("Explorer"), "{note}");
        let inv = plan.steps.iter().find(|s| s.kind == StepKind::InventoryUser).unwrap();
        let listed = inv.details["owned"].as_array().unwrap().iter().find(|x| x["id"] == flow.id.as_str()).unwrap();
        assert!(listed["transfer"].as_str().unwrap().starts_with("not transferred"), "{listed}");

        // No owner named: the suggestion for a flow is always someone who may own one.
        let plan = plan_for(&site, json!({"user": "jsmith"}));
        let transfer = plan.steps.iter().find(|s| s.kind == StepKind::TransferOwnership).unwrap();
        let c = transfer.changes_of(&flow.id).next().expect("the flow gets a suggested owner");
        let to = site.users.iter().find(|u| Some(u.id.as_str()) == c.after_id.as_deref()).unwrap();
        assert!(tabflow_wire::capability::can_own_flows(&to.site_role), "{} is {}", to.name, to.site_role);
    }

    /// A leaver's request plans the whole sequence by default, each part its own step (so the
    /// review can drop any of them); a hand-over alone (`remove_access: false`) stops after
    /// the transfer.
    #[test]
    fn a_leaver_gets_the_whole_sequence_each_part_its_own_step_and_a_hand_over_only_the_transfer() {
        let mut site = tabflow_site::generate::demo();
        let john = site.users.iter().find(|u| u.name == "jsmith").unwrap().clone();
        // An explicit grant to the leaver (the demo may have none), so the grants step shows.
        let wb = site.workbooks.iter().find(|w| w.owner_id != john.id).unwrap().id.clone();
        site.permissions.push(tabflow_site::PermissionRule {
            resource: tabflow_site::ResourceRef { kind: "workbook".into(), id: wb.clone() },
            grantee: tabflow_site::GranteeRef { kind: "user".into(), id: john.id.clone() },
            capabilities: [("Read".to_string(), tabflow_site::Mode::Allow)].into_iter().collect(),
        });
        let groups: Vec<&str> = site
            .groups
            .iter()
            .filter(|g| g.name != "All Users" && g.members.contains(&john.id))
            .map(|g| g.name.as_str())
            .collect();
        assert!(!groups.is_empty(), "the demo's leaver is in a team");
        let plan = plan_for(&site, json!({"user": "John", "team": "Marketing"}));
        let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                StepKind::InventoryUser,
                StepKind::TransferOwnership,
                StepKind::RemoveAccess,
                StepKind::RemoveAccess,
                StepKind::RemoveAccess
            ],
            "{:?}",
            plan.steps.iter().map(|s| &s.title).collect::<Vec<_>>()
        );
        let parts: Vec<&str> = plan.steps[2..].iter().map(|s| s.details["part"].as_str().unwrap()).collect();
        assert_eq!(parts, ["group memberships", "explicit grants", "license"]);
        let leave = &plan.steps[2];
        assert_eq!(leave.changes[0].field, "groups");
        assert_eq!(leave.changes[0].before.as_array().unwrap().len(), groups.len());
        assert!(plan.steps[3].changes.iter().any(|c| c.item == wb && c.field == "permissions"));
        assert_eq!(plan.steps[4].changes[0].after, json!("Unlicensed"));
        for s in &plan.steps[2..] {
            assert_eq!(s.rollback, tabflow_plan::RollbackClass::Exact, "{}", s.title);
            assert!(s.depends_on.contains(&plan.steps[1].id), "after the hand-over: {}", s.title);
        }
        // The transfer notifies the new and the previous owners (the people the outbox writes to).
        let people = plan.steps[1].details["people"].as_object().unwrap();
        assert!(people.contains_key(&john.id), "the previous owner is told");

        let only = plan_for(&site, json!({"user": "John", "team": "Marketing", "remove_access": false}));
        let kinds: Vec<StepKind> = only.steps.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [StepKind::InventoryUser, StepKind::TransferOwnership]);
    }

    #[test]
    fn a_user_who_owns_nothing_gets_an_inventory_and_no_transfer() {
        let mut site = tabflow_site::generate::demo();
        let mut idle = site.users.iter().find(|u| u.name == "jsmith").unwrap().clone();
        idle.id = "u-idle".into();
        idle.name = "newhire".into();
        idle.full_name = "New Hire".into();
        idle.email = "newhire@example.com".into();
        site.users.push(idle);
        let plan = plan_for(&site, json!({"user": "newhire"}));
        let inv = plan.steps.iter().find(|s| s.kind == StepKind::InventoryUser).unwrap();
        assert!(inv.title.contains("0 items"), "{}", inv.title);
        assert!(!plan.steps.iter().any(|s| s.kind == StepKind::TransferOwnership), "{:?}", plan.steps);
        assert!(plan.questions.is_empty(), "{:?}", plan.questions);
    }
}
