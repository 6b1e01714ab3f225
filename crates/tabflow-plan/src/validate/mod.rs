//! The validator: the seed's five checks, every finding reported at once. Only
//! [`validate`] constructs a [`ValidatedPlan`], and only a `ValidatedPlan` can be executed.
//!
//! [`validate`] reads the plan against [`Facts`] (one read of the site) and the policy and
//! calls one function per check, each in its own module: [`destructive`]
//! (`destructive-operations`), [`permissions`], [`dependencies`], [`impact`], [`rollback`].

mod dependencies;
mod destructive;
mod impact;
mod permissions;
mod rollback;

use std::collections::{BTreeSet, HashMap};

use tabflow_site::Site;

use crate::plan::{Check, Effect, Finding, Item, Level, Plan, PlanKey, Step};
use crate::policy::Policy;

/// What the validator knows about the site (read once per validation).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub signed_in_user: String,
    pub site_role: String,
    /// project id → (name, parent id)
    pub projects: HashMap<String, (String, Option<String>)>,
    /// content id → subscription subjects that reference it
    pub subscriptions: HashMap<String, Vec<String>>,
    /// content id → data alert subjects
    pub alerts: HashMap<String, Vec<String>>,
    /// datasource id → names of workbooks using it
    pub dependents: HashMap<String, Vec<String>>,
    /// datasource id → ids of workbooks using it
    pub dependent_ids: HashMap<String, Vec<String>>,
    /// item id → users who can reach it by name (explicit user grants, owner, subscribers);
    /// the members of groups granted on it are in [`audience_groups`](Facts::audience_groups)
    /// ([`Facts::audience_of`] answers both). Kept apart so that a group granted on every
    /// item is stored once, not copied into each item's audience.
    pub audience: HashMap<String, BTreeSet<String>>,
    /// item id → groups granted something (an Allow) on it; their members can reach it
    pub audience_groups: HashMap<String, BTreeSet<String>>,
    /// group id → its members' user ids (group membership, indexed once)
    pub members: HashMap<String, Vec<String>>,
    /// item id → (owner id, project id, tags, size)
    pub items: HashMap<String, (String, String, Vec<String>, u64)>,
    /// user id → content they own (for "never delete a user who still owns content")
    pub owned: HashMap<String, usize>,
    /// workbook/datasource/flow id → (type, name): Tableau refuses two items of one type with
    /// the same name in one project, so moves are checked for clashes.
    pub names: HashMap<String, (String, String)>,
    /// user id → site role (who may own what: a flow's owner needs a Creator license)
    pub roles: HashMap<String, String>,
}

impl Facts {
    /// Facts from a snapshot of the site (`signed_in` = the signed-in user's name).
    pub fn from_site(site: &Site, signed_in: &str) -> Facts {
        let mut f = Facts { signed_in_user: signed_in.into(), ..Facts::default() };
        f.site_role = site.users.iter().find(|u| u.name == signed_in).map(|u| u.site_role.clone()).unwrap_or_default();
        f.roles = site.users.iter().map(|u| (u.id.clone(), u.site_role.clone())).collect();
        let content = site.workbooks.len() + site.datasources.len() + site.flows.len();
        f.items.reserve(site.projects.len() + content);
        f.names.reserve(content);
        f.audience.reserve(content);
        for p in &site.projects {
            f.projects.insert(p.id.clone(), (p.name.clone(), p.parent_id.clone()));
            f.items.insert(p.id.clone(), (p.owner_id.clone(), p.parent_id.clone().unwrap_or_default(), vec![], 0));
        }
        // The workbook of each view a subscription or data alert names (only those: a map of
        // every view would be the largest thing built here).
        let watched: std::collections::HashSet<&str> = site
            .subscriptions
            .iter()
            .map(|s| s.content.id.as_str())
            .chain(site.data_alerts.iter().map(|a| a.view_id.as_str()))
            .collect();
        let view_owner: HashMap<&str, &str> = site
            .workbooks
            .iter()
            .flat_map(|w| w.views.iter().map(move |v| (v.id.as_str(), w.id.as_str())))
            .filter(|(v, _)| watched.contains(v))
            .collect();
        for s in &site.subscriptions {
            slot(&mut f.subscriptions, &s.content.id).push(s.subject.clone());
            // A view's subscription also rides on its workbook.
            if let Some(w) = view_owner.get(s.content.id.as_str()) {
                slot(&mut f.subscriptions, w).push(s.subject.clone());
            }
        }
        for a in &site.data_alerts {
            if let Some(w) = view_owner.get(a.view_id.as_str()) {
                slot(&mut f.alerts, w).push(a.subject.clone());
            }
        }
        // Later groups of one id win, as a map built in site order does.
        f.members = site.groups.iter().map(|g| (g.id.clone(), g.members.clone())).collect();
        for w in &site.workbooks {
            for d in &w.datasource_ids {
                slot(&mut f.dependents, d).push(w.name.clone());
                slot(&mut f.dependent_ids, d).push(w.id.clone());
            }
            f.items.insert(w.id.clone(), (w.owner_id.clone(), w.project_id.clone(), w.tags.clone(), w.size));
            f.names.insert(w.id.clone(), ("workbook".into(), w.name.clone()));
            slot(&mut f.audience, &w.id).insert(w.owner_id.clone());
            *slot(&mut f.owned, &w.owner_id) += 1;
        }
        for d in &site.datasources {
            f.items.insert(d.id.clone(), (d.owner_id.clone(), d.project_id.clone(), d.tags.clone(), d.size));
            f.names.insert(d.id.clone(), ("datasource".into(), d.name.clone()));
            slot(&mut f.audience, &d.id).insert(d.owner_id.clone());
            *slot(&mut f.owned, &d.owner_id) += 1;
        }
        for x in &site.flows {
            f.items.insert(x.id.clone(), (x.owner_id.clone(), x.project_id.clone(), x.tags.clone(), 0));
            f.names.insert(x.id.clone(), ("flow".into(), x.name.clone()));
            slot(&mut f.audience, &x.id).insert(x.owner_id.clone());
            *slot(&mut f.owned, &x.owner_id) += 1;
        }
        for p in &site.permissions {
            if !p.capabilities.values().any(|m| *m == tabflow_site::Mode::Allow) {
                continue;
            }
            if p.grantee.kind == "group" {
                if f.members.contains_key(&p.grantee.id) {
                    let groups = slot(&mut f.audience_groups, &p.resource.id);
                    if !groups.contains(&p.grantee.id) {
                        groups.insert(p.grantee.id.clone());
                    }
                }
                // An item whose only grant names an unknown group still has an (empty) entry.
                slot(&mut f.audience, &p.resource.id);
            } else {
                let who = slot(&mut f.audience, &p.resource.id);
                if !who.contains(&p.grantee.id) {
                    who.insert(p.grantee.id.clone());
                }
            }
        }
        for s in &site.subscriptions {
            let who = slot(&mut f.audience, &s.content.id);
            if !who.contains(&s.user_id) {
                who.insert(s.user_id.clone());
            }
        }
        f
    }

    /// The users who can reach `id`: its [`audience`](Facts::audience) and the members of its
    /// [`audience_groups`](Facts::audience_groups), each user once.
    pub fn audience_of(&self, id: &str) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.audience.get(id).into_iter().flatten().map(String::as_str).collect();
        for g in self.audience_groups.get(id).into_iter().flatten() {
            out.extend(self.members.get(g).into_iter().flatten().map(String::as_str));
        }
        out
    }

    fn is_admin(&self) -> bool {
        self.site_role.starts_with("SiteAdministrator") || self.site_role == "ServerAdministrator"
    }

    fn can_publish(&self) -> bool {
        self.is_admin() || matches!(self.site_role.as_str(), "Creator" | "ExplorerCanPublish" | "Publisher")
    }

    fn project_name(&self, id: &str) -> String {
        self.projects.get(id).map(|p| p.0.clone()).unwrap_or_else(|| id.to_string())
    }

    /// The project and its ancestors' names.
    fn project_path(&self, id: &str) -> Vec<String> {
        let mut out = vec![];
        let mut cur = Some(id.to_string());
        let mut guard = 0;
        while let Some(c) = cur {
            guard += 1;
            if guard > 64 {
                break;
            }
            match self.projects.get(&c) {
                Some((n, parent)) => {
                    out.push(n.clone());
                    cur = parent.clone();
                }
                None => break,
            }
        }
        out
    }
}

/// The value at `key`, inserted empty when absent; the key is copied only then (building
/// [`Facts`] touches most keys many times).
fn slot<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// A plan that passed the five checks. Only [`validate`] makes one; its fields are private.
#[derive(Debug, Clone)]
pub struct ValidatedPlan {
    plan: Plan,
    needs_acknowledgement: Vec<String>,
}

impl ValidatedPlan {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn into_plan(self) -> Plan {
        self.plan
    }
    /// Steps that cannot be undone and need an explicit acknowledgement to run.
    pub fn needs_acknowledgement(&self) -> &[String] {
        &self.needs_acknowledgement
    }
    pub fn has_destructive_steps(&self) -> bool {
        self.plan.steps.iter().any(|s| s.effect == Effect::Destructive && !s.changes.is_empty())
    }
}

/// A step's items by id (the first of an id, as [`Step::item`] finds it): looked up once per
/// change instead of scanning the items for each.
fn items_of(s: &Step) -> HashMap<&str, &Item> {
    let mut out: HashMap<&str, &Item> = HashMap::with_capacity(s.items.len());
    for i in &s.items {
        out.entry(i.id.as_str()).or_insert(i);
    }
    out
}

fn finding(check: Check, level: Level, message: String, step: Option<&str>, items: Vec<String>) -> Finding {
    Finding { check, level, message, step: step.map(str::to_string), items }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") }
}

/// Runs the five checks, fills `impact` and `validation`, seals the fingerprint with the
/// store's `key`, and answers the validated plan — or the plan with its error findings.
pub fn validate(mut plan: Plan, facts: &Facts, policy: &Policy, key: &PlanKey) -> Result<ValidatedPlan, Box<Plan>> {
    let mut findings: Vec<Finding> = vec![];
    if let Err(e) = plan.check_consistency() {
        findings.push(finding(Check::Dependencies, Level::Error, e.to_string(), None, vec![]));
    }
    let structural = findings.len();
    destructive::destructive_operations(&plan, facts, policy, &mut findings);
    permissions::permissions(&plan, facts, &mut findings);
    dependencies::dependencies(&plan, facts, &mut findings);
    plan.impact = impact::impact(&plan, facts, &mut findings);
    if let Some(run) = &plan.rollback_of {
        // A rollback plan puts back a state the site had before its run; the checks read the
        // site as the run left it (a leaver still unlicensed while the undo of the licence
        // change comes first in the same plan). What they refuse is said, not blocking: an
        // item that cannot be put back is reported by the rollback, which goes on.
        for f in findings.iter_mut().skip(structural).filter(|f| f.level == Level::Error) {
            f.level = Level::Warning;
            f.message = format!(
                "{} (as the site is now; the rollback of run {run} restores the state before it, and reports any item it cannot put back)",
                f.message
            );
        }
    }
    let needs_ack = rollback::rollback(&plan, &mut findings);

    findings.sort_by_key(|f| (Check::ALL.iter().position(|c| *c == f.check), std::cmp::Reverse(f.level)));
    let ok = !findings.iter().any(|f| f.level == Level::Error);
    plan.validation = crate::plan::Validation { ok, findings };
    plan.seal(key);
    if ok { Ok(ValidatedPlan { plan, needs_acknowledgement: needs_ack }) } else { Err(Box::new(plan)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use serde_json::Value;

    use crate::plan::{Change, Item, RollbackClass, SiteRef, Step, StepKind};

    fn key() -> PlanKey {
        PlanKey::new([1; 32])
    }

    fn move_plan(site: &Site, moves: &[(&str, &str)]) -> Plan {
        let mut plan = Plan::draft("move", SiteRef::default(), vec![], site.now);
        let mut step = Step {
            id: "s1".into(),
            kind: StepKind::MoveWorkbooks,
            title: "move".into(),
            effect: Effect::Destructive,
            depends_on: vec![],
            items: vec![],
            changes: vec![],
            rollback: RollbackClass::Exact,
            details: Value::Null,
        };
        for (wb, to) in moves {
            let w = site.workbooks.iter().find(|w| w.id == *wb).unwrap();
            step.items.push(Item {
                kind: "workbook".into(),
                id: w.id.clone(),
                name: w.name.clone(),
                ..Item::default()
            });
            step.changes.push(Change {
                item: w.id.clone(),
                field: "project".into(),
                before: Value::Null,
                after: Value::Null,
                before_id: Some(w.project_id.clone()),
                after_id: Some(to.to_string()),
                after_ref: None,
            });
        }
        plan.steps.push(step);
        plan
    }

    fn clash_errors(plan: &Plan) -> Vec<&Finding> {
        plan.validation.findings.iter().filter(|f| f.level == Level::Error && f.message.contains("named")).collect()
    }

    #[test]
    fn moves_that_would_put_two_items_of_one_name_in_a_project_are_refused() {
        let site = tabflow_site::generate::demo();
        let admin = site.users.iter().find(|u| u.site_role.starts_with("SiteAdministrator")).unwrap();
        let facts = Facts::from_site(&site, &admin.name);
        let policy = Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() };
        // Two workbooks of one name (case-insensitively) in different projects.
        let mut by_name: HashMap<String, Vec<&tabflow_site::Workbook>> = HashMap::new();
        for w in &site.workbooks {
            by_name.entry(w.name.to_lowercase()).or_default().push(w);
        }
        let pair = by_name.values().find(|v| v.len() >= 2 && v[0].project_id != v[1].project_id).unwrap();
        let (a, b) = (pair[0], pair[1]);
        let target = site.projects.iter().find(|p| p.id != a.project_id && p.id != b.project_id).unwrap();
        let clash_free = |w: &&tabflow_site::Workbook| by_name[&w.name.to_lowercase()].len() == 1;
        let unique = site.workbooks.iter().find(|w| clash_free(w) && w.project_id != target.id).unwrap();

        // Both to one project: refused, both named.
        let plan = move_plan(&site, &[(&a.id, &target.id), (&b.id, &target.id), (&unique.id, &target.id)]);
        let refused = validate(plan, &facts, &policy, &key()).unwrap_err();
        let errs = clash_errors(&refused);
        assert_eq!(errs.len(), 1, "{:?}", refused.validation.findings);
        assert!(errs[0].message.contains(&a.name) && errs[0].message.contains(&target.name), "{}", errs[0].message);
        assert_eq!(errs[0].items.len(), 2);
        // Into the project that already holds the other one: refused, only the mover flagged.
        let plan = move_plan(&site, &[(&a.id, &b.project_id)]);
        let refused = validate(plan, &facts, &policy, &key()).unwrap_err();
        assert_eq!(clash_errors(&refused)[0].items, vec![a.id.clone()]);
        // One of them, or a unique name, alone: no clash. Moving both apart: no clash.
        for moves in [vec![(a.id.as_str(), target.id.as_str())], vec![(unique.id.as_str(), target.id.as_str())]] {
            let plan = move_plan(&site, &moves);
            if let Err(p) = validate(plan, &facts, &policy, &key()) {
                assert!(clash_errors(&p).is_empty(), "{:?}", p.validation.findings);
            }
        }
    }

    #[test]
    fn a_step_marked_other_than_its_changes_make_it_is_refused() {
        let site = tabflow_site::generate::demo();
        let facts = Facts::from_site(&site, "admin");
        let policy = Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() };
        let to = site.projects.iter().find(|p| p.name == "Archive").unwrap();
        let unique = |w: &&tabflow_site::Workbook| {
            site.workbooks.iter().filter(|x| x.name.eq_ignore_ascii_case(&w.name)).count() == 1
        };
        let w = site.workbooks.iter().find(|w| unique(w) && w.project_id != to.id).unwrap();
        let honest = move_plan(&site, &[(&w.id, &to.id)]);
        let errors = |p: Plan| match validate(p, &facts, &policy, &key()) {
            Ok(_) => vec![],
            Err(p) => p.validation.findings.into_iter().filter(|f| f.level == Level::Error).collect::<Vec<_>>(),
        };
        assert!(errors(honest.clone()).is_empty(), "{:?}", errors(honest.clone()));
        for (effect, rollback, check) in [
            (Effect::Write, RollbackClass::Exact, Check::DestructiveOperations),
            (Effect::Destructive, RollbackClass::Snapshot, Check::Rollback),
        ] {
            let mut p = honest.clone();
            p.steps[0].effect = effect;
            p.steps[0].rollback = rollback;
            let e = errors(p);
            assert_eq!(e.len(), 1, "{e:?}");
            assert_eq!((e[0].check, e[0].step.as_deref()), (check, Some("s1")));
            assert!(e[0].message.contains("step s1 (move-workbooks)"), "{}", e[0].message);
        }
    }

    #[test]
    fn a_flow_owner_without_a_creator_license_is_refused() {
        let site = tabflow_site::generate::demo();
        let facts = Facts::from_site(&site, "admin");
        let flow = &site.flows[0];
        let from = site.users.iter().find(|u| u.id == flow.owner_id).unwrap();
        let plan_to = |name: &str| {
            let to = site.users.iter().find(|u| u.name == name).unwrap();
            let mut plan = Plan::draft("offboard", SiteRef::default(), vec![], site.now);
            plan.steps.push(Step {
                id: "s1".into(),
                kind: StepKind::TransferOwnership,
                title: "transfer".into(),
                effect: Effect::Destructive,
                depends_on: vec![],
                items: vec![Item {
                    kind: "flow".into(),
                    id: flow.id.clone(),
                    name: flow.name.clone(),
                    ..Item::default()
                }],
                changes: vec![Change {
                    item: flow.id.clone(),
                    field: "owner".into(),
                    before: Value::String(from.name.clone()),
                    after: Value::String(to.name.clone()),
                    before_id: Some(from.id.clone()),
                    after_id: Some(to.id.clone()),
                    after_ref: None,
                }],
                rollback: RollbackClass::Exact,
                details: Value::Null,
            });
            plan
        };
        let refused = validate(plan_to("jdoe"), &facts, &Policy::default(), &key()).unwrap_err();
        let e: Vec<&Finding> = refused.validation.findings.iter().filter(|f| f.level == Level::Error).collect();
        assert_eq!(e.len(), 1, "{:?}", refused.validation.findings);
        assert!(e[0].message.contains("Creator license") && e[0].message.contains("jdoe"), "{}", e[0].message);
        assert_eq!(e[0].items, vec![flow.id.clone()]);
        assert!(validate(plan_to("tbaker"), &facts, &Policy::default(), &key()).is_ok(), "a Creator may own it");
    }

    #[test]
    fn workbooks_repointed_by_an_earlier_step_no_longer_count_as_dependents() {
        let site = tabflow_site::generate::demo();
        let admin = site.users.iter().find(|u| u.site_role.starts_with("SiteAdministrator")).unwrap();
        let facts = Facts::from_site(&site, &admin.name);
        let policy = Policy::default();
        // A datasource with at least two dependent workbooks, and another to repoint them to.
        let (from, users) = facts.dependent_ids.iter().find(|(_, w)| w.len() >= 2).unwrap();
        let to = site.datasources.iter().find(|d| &d.id != from).unwrap();
        let archive = site.projects.iter().find(|p| p.name == "Archive").unwrap();
        let ds = site.datasources.iter().find(|d| &d.id == from).unwrap();
        let build = |repoint: &[String]| {
            let mut plan = Plan::draft("consolidate", SiteRef::default(), vec![], site.now);
            let mut s1 = Step {
                id: "s1".into(),
                kind: StepKind::RepointWorkbooks,
                title: "repoint".into(),
                effect: Effect::Write,
                depends_on: vec![],
                items: vec![],
                changes: vec![],
                rollback: RollbackClass::Snapshot,
                details: Value::Null,
            };
            for w in repoint {
                s1.items.push(Item { kind: "workbook".into(), id: w.clone(), name: w.clone(), ..Item::default() });
                s1.changes.push(Change {
                    item: w.clone(),
                    field: "datasource".into(),
                    before: Value::Null,
                    after: Value::Null,
                    before_id: Some(from.clone()),
                    after_id: Some(to.id.clone()),
                    after_ref: None,
                });
            }
            let s2 = Step {
                id: "s2".into(),
                kind: StepKind::ArchiveDatasources,
                title: "archive".into(),
                effect: Effect::Destructive,
                depends_on: vec!["s1".into()],
                items: vec![Item {
                    kind: "datasource".into(),
                    id: ds.id.clone(),
                    name: ds.name.clone(),
                    ..Item::default()
                }],
                changes: vec![Change {
                    item: ds.id.clone(),
                    field: "project".into(),
                    before: Value::Null,
                    after: Value::Null,
                    before_id: Some(ds.project_id.clone()),
                    after_id: Some(archive.id.clone()),
                    after_ref: None,
                }],
                rollback: RollbackClass::Exact,
                details: Value::Null,
            };
            plan.steps = vec![s1, s2];
            let p = match validate(plan, &facts, &policy, &key()) {
                Ok(v) => v.into_plan(),
                Err(p) => *p,
            };
            p.validation
                .findings
                .iter()
                .find(|f| f.check == Check::Dependencies && f.message.contains("depend on"))
                .map(|f| f.message.clone())
        };
        assert_eq!(build(users), None, "every dependent was repointed first");
        let one_left = build(&users[1..]).expect("one workbook still depends on it");
        assert!(one_left.starts_with("1 workbook depend"), "{one_left}");
        let none = build(&[]).unwrap();
        assert!(none.starts_with(&format!("{} workbooks depend", users.len())), "{none}");
    }

    /// The audience as the validator used to store it: a copy of every granted group's
    /// members in each item's set.
    fn audience_copied_per_item(site: &Site) -> HashMap<String, BTreeSet<String>> {
        let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
        let members: HashMap<&str, &Vec<String>> = site.groups.iter().map(|g| (g.id.as_str(), &g.members)).collect();
        let owners = site.workbooks.iter().map(|w| (&w.id, &w.owner_id));
        let owners = owners.chain(site.datasources.iter().map(|d| (&d.id, &d.owner_id)));
        for (id, owner) in owners.chain(site.flows.iter().map(|f| (&f.id, &f.owner_id))) {
            out.entry(id.clone()).or_default().insert(owner.clone());
        }
        for p in site.permissions.iter().filter(|p| p.capabilities.values().any(|m| *m == tabflow_site::Mode::Allow)) {
            let who = out.entry(p.resource.id.clone()).or_default();
            if p.grantee.kind == "group" {
                who.extend(members.get(p.grantee.id.as_str()).into_iter().flat_map(|m| m.iter().cloned()));
            } else {
                who.insert(p.grantee.id.clone());
            }
        }
        for s in &site.subscriptions {
            out.entry(s.content.id.clone()).or_default().insert(s.user_id.clone());
        }
        out
    }

    #[test]
    fn the_audience_of_an_item_is_its_users_and_its_groups_members() {
        for site in [
            tabflow_site::generate::demo(),
            tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 1500, seed: 2 }),
        ] {
            let facts = Facts::from_site(&site, "admin");
            let copied = audience_copied_per_item(&site);
            let ids: BTreeSet<&String> = copied.keys().chain(facts.audience.keys()).collect();
            assert!(ids.len() > site.workbooks.len());
            for id in ids {
                let want: BTreeSet<&str> = copied.get(id).into_iter().flatten().map(String::as_str).collect();
                assert_eq!(facts.audience_of(id), want, "{id}");
            }
            // Impact counts each user once, however many changed items their groups reach.
            let moved: Vec<(&str, &str)> =
                site.workbooks.iter().step_by(3).map(|w| (w.id.as_str(), "nowhere")).collect();
            let archive = site.projects.iter().find(|p| p.name == "Archive").map(|p| p.id.clone()).unwrap();
            let moves: Vec<(&str, &str)> = moved.iter().map(|(w, _)| (*w, archive.as_str())).collect();
            let plan = move_plan(&site, &moves);
            let mut findings = vec![];
            let impact = impact::impact(&plan, &facts, &mut findings);
            let users: BTreeSet<&str> =
                moves.iter().flat_map(|(w, _)| copied.get(*w).into_iter().flatten()).map(String::as_str).collect();
            assert_eq!(impact.users_affected, users.len() as u64);
            assert!(
                findings[0].message.contains(&format!("{} users can see them", users.len())),
                "{}",
                findings[0].message
            );
        }
    }
}
