//! The validator: the seed's five checks, every finding reported at once. Only
//! [`validate`] constructs a [`ValidatedPlan`], and only a `ValidatedPlan` can be executed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;
use tabflow_site::Site;

use crate::plan::{Check, Effect, Finding, Impact, Level, Plan, RollbackClass};
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
    /// item id → users who can reach it (explicit user grants, members of granted groups,
    /// owner, subscribers)
    pub audience: HashMap<String, BTreeSet<String>>,
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
        for p in &site.projects {
            f.projects.insert(p.id.clone(), (p.name.clone(), p.parent_id.clone()));
            f.items.insert(p.id.clone(), (p.owner_id.clone(), p.parent_id.clone().unwrap_or_default(), vec![], 0));
        }
        let view_owner: HashMap<&str, &str> =
            site.workbooks.iter().flat_map(|w| w.views.iter().map(move |v| (v.id.as_str(), w.id.as_str()))).collect();
        for s in &site.subscriptions {
            f.subscriptions.entry(s.content.id.clone()).or_default().push(s.subject.clone());
            // A view's subscription also rides on its workbook.
            if let Some(w) = view_owner.get(s.content.id.as_str()) {
                f.subscriptions.entry(w.to_string()).or_default().push(s.subject.clone());
            }
        }
        for a in &site.data_alerts {
            if let Some(w) = view_owner.get(a.view_id.as_str()) {
                f.alerts.entry(w.to_string()).or_default().push(a.subject.clone());
            }
        }
        let members: HashMap<&str, &Vec<String>> = site.groups.iter().map(|g| (g.id.as_str(), &g.members)).collect();
        for w in &site.workbooks {
            for d in &w.datasource_ids {
                f.dependents.entry(d.clone()).or_default().push(w.name.clone());
                f.dependent_ids.entry(d.clone()).or_default().push(w.id.clone());
            }
            f.items.insert(w.id.clone(), (w.owner_id.clone(), w.project_id.clone(), w.tags.clone(), w.size));
            f.names.insert(w.id.clone(), ("workbook".into(), w.name.clone()));
            f.audience.entry(w.id.clone()).or_default().insert(w.owner_id.clone());
            *f.owned.entry(w.owner_id.clone()).or_default() += 1;
        }
        for d in &site.datasources {
            f.items.insert(d.id.clone(), (d.owner_id.clone(), d.project_id.clone(), d.tags.clone(), d.size));
            f.names.insert(d.id.clone(), ("datasource".into(), d.name.clone()));
            f.audience.entry(d.id.clone()).or_default().insert(d.owner_id.clone());
            *f.owned.entry(d.owner_id.clone()).or_default() += 1;
        }
        for x in &site.flows {
            f.items.insert(x.id.clone(), (x.owner_id.clone(), x.project_id.clone(), x.tags.clone(), 0));
            f.names.insert(x.id.clone(), ("flow".into(), x.name.clone()));
            f.audience.entry(x.id.clone()).or_default().insert(x.owner_id.clone());
            *f.owned.entry(x.owner_id.clone()).or_default() += 1;
        }
        for p in &site.permissions {
            if !p.capabilities.values().any(|m| *m == tabflow_site::Mode::Allow) {
                continue;
            }
            let who = f.audience.entry(p.resource.id.clone()).or_default();
            if p.grantee.kind == "group" {
                if let Some(m) = members.get(p.grantee.id.as_str()) {
                    who.extend(m.iter().cloned());
                }
            } else {
                who.insert(p.grantee.id.clone());
            }
        }
        for s in &site.subscriptions {
            f.audience.entry(s.content.id.clone()).or_default().insert(s.user_id.clone());
        }
        f
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

fn finding(check: Check, level: Level, message: String, step: Option<&str>, items: Vec<String>) -> Finding {
    Finding { check, level, message, step: step.map(str::to_string), items }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") }
}

/// Moves that would put two workbooks (or two datasources) of the same name into one
/// project: Tableau refuses the second with 409 Resource Conflict, so the plan is refused
/// before anything runs. Names compare case-insensitively.
fn name_clashes(plan: &Plan, facts: &Facts, findings: &mut Vec<Finding>) -> usize {
    // Where each item ends up after the plan (project id, or "ref:<step>" for a project the
    // plan creates).
    let mut dest: HashMap<&str, String> = HashMap::new();
    let mut step_of: HashMap<&str, &str> = HashMap::new();
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        for c in s.changes.iter().filter(|c| c.field == "project") {
            let to = match (&c.after_id, &c.after_ref) {
                (Some(id), _) => id.clone(),
                (None, Some(r)) => format!("ref:{r}"),
                _ => continue,
            };
            dest.insert(c.item.as_str(), to);
            step_of.insert(c.item.as_str(), s.id.as_str());
        }
    }
    if dest.is_empty() {
        return 0;
    }
    let targets: BTreeSet<&str> = dest.values().map(String::as_str).collect();
    // (target, type, lower-case name) → items there after the plan.
    let mut there: BTreeMap<(&str, &str, String), Vec<&str>> = BTreeMap::new();
    for (id, (kind, name)) in &facts.names {
        let at = match dest.get(id.as_str()) {
            Some(d) => d.as_str(),
            None => match facts.items.get(id) {
                Some((_, project, _, _)) if targets.contains(project.as_str()) => project.as_str(),
                _ => continue,
            },
        };
        there.entry((at, kind.as_str(), name.to_lowercase())).or_default().push(id.as_str());
    }
    let mut n = 0;
    for ((at, kind, _), ids) in there {
        if ids.len() < 2 || !ids.iter().any(|i| dest.contains_key(i)) {
            continue;
        }
        let mut ids = ids;
        ids.sort_unstable();
        let moving: Vec<String> = ids.iter().filter(|i| dest.contains_key(*i)).map(|i| i.to_string()).collect();
        let step = step_of.get(moving[0].as_str()).copied();
        let name = facts.names.get(ids[0]).map(|x| x.1.clone()).unwrap_or_default();
        let project = at
            .strip_prefix("ref:")
            .map(|r| format!("the project step {r} creates"))
            .unwrap_or_else(|| format!("project '{}'", facts.project_name(at)));
        n += 1;
        findings.push(finding(
            Check::Dependencies,
            Level::Error,
            format!(
                "{} {kind}s named '{name}' would end up in {project}; Tableau refuses the second — exclude or rename all but one",
                ids.len()
            ),
            step,
            moving,
        ));
    }
    n
}

/// Runs the five checks, fills `impact` and `validation`, re-seals the fingerprint, and
/// answers the validated plan — or the plan with its error findings.
pub fn validate(mut plan: Plan, facts: &Facts, policy: &Policy) -> Result<ValidatedPlan, Box<Plan>> {
    let mut findings: Vec<Finding> = vec![];
    if let Err(e) = plan.check_consistency() {
        findings.push(finding(Check::Dependencies, Level::Error, e.to_string(), None, vec![]));
    }
    // Effects and rollback classes are derived from the steps' kinds and changes, never taken
    // from the file: a step marked otherwise is refused.
    for e in plan.class_errors() {
        if let crate::plan::PlanError::Classes { step, stored, derived, .. } = &e {
            let check = if stored.0 != derived.0 { Check::DestructiveOperations } else { Check::Rollback };
            findings.push(finding(check, Level::Error, e.to_string(), Some(step), vec![]));
        }
    }

    // ---------------------------------------------------------------- destructive-operations
    let mut any_destructive = false;
    for s in &plan.steps {
        let changed = s.changed_items();
        if s.effect != Effect::Destructive || changed.is_empty() {
            continue;
        }
        any_destructive = true;
        let fields: BTreeSet<&str> = s.changes.iter().map(|c| c.field.as_str()).collect();
        let kinds: BTreeSet<&str> = s.items.iter().map(|i| i.kind.as_str()).collect();
        findings.push(finding(
            Check::DestructiveOperations,
            Level::Warning,
            format!(
                "step {} ({}) changes {} of {} ({}); it needs approval",
                s.id,
                s.title,
                plural(changed.len(), "item", "items"),
                kinds.into_iter().collect::<Vec<_>>().join("/"),
                fields.into_iter().collect::<Vec<_>>().join(", ")
            ),
            Some(&s.id),
            vec![],
        ));
        if changed.len() > policy.max_items_per_destructive_step {
            findings.push(finding(
                Check::DestructiveOperations,
                Level::Error,
                format!(
                    "step {} changes {} items; the policy allows at most {} per destructive step (max_items_per_destructive_step) — narrow the request or split it",
                    s.id,
                    changed.len(),
                    policy.max_items_per_destructive_step
                ),
                Some(&s.id),
                vec![],
            ));
        }
    }
    if !any_destructive {
        findings.push(finding(
            Check::DestructiveOperations,
            Level::Info,
            "no step deletes, moves, re-owns or revokes anything".into(),
            None,
            vec![],
        ));
    }
    // Protected content, for every write step.
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        let mut hit = vec![];
        for id in s.changed_items() {
            let Some((_, project, tags, _)) = facts.items.get(id) else { continue };
            let path = facts.project_path(project);
            let by_project = path.iter().find(|n| policy.is_protected_project(n));
            let by_tag = tags.iter().find(|t| policy.is_protected_tag(t));
            if let Some(why) =
                by_project.map(|p| format!("in protected project '{p}'")).or(by_tag.map(|t| format!("tagged '{t}'")))
            {
                let name = s.item(id).map(|i| i.name.clone()).unwrap_or_else(|| id.to_string());
                hit.push((id.to_string(), format!("{name} ({why})")));
            }
        }
        if !hit.is_empty() {
            findings.push(finding(
                Check::DestructiveOperations,
                Level::Error,
                format!(
                    "step {} touches content the policy protects: {} — remove these items or change the policy",
                    s.id,
                    hit.iter().map(|h| h.1.as_str()).collect::<Vec<_>>().join("; ")
                ),
                Some(&s.id),
                hit.into_iter().map(|h| h.0).collect(),
            ));
        }
    }

    // ---------------------------------------------------------------- permissions
    let mut perm_problems = 0;
    let created_by_plan: BTreeSet<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        // Tableau refuses a flow owner without a Creator license (403141): refuse the plan first.
        let refused: Vec<&crate::plan::Change> = s
            .changes
            .iter()
            .filter(|c| c.field == "owner" && s.item(&c.item).is_some_and(|i| i.kind == "flow"))
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

    // ---------------------------------------------------------------- dependencies
    let mut dep_findings = 0;
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        let moved: Vec<&str> = s
            .changes
            .iter()
            .filter(|c| matches!(c.field.as_str(), "project" | "exists" | "owner"))
            .map(|c| c.item.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let subs: Vec<(&str, usize)> =
            moved.iter().filter_map(|i| facts.subscriptions.get(*i).map(|v| (*i, v.len()))).collect();
        if !subs.is_empty() {
            dep_findings += 1;
            let n: usize = subs.iter().map(|x| x.1).sum();
            findings.push(finding(
                Check::Dependencies,
                Level::Warning,
                format!(
                    "{} point at {} changed by step {} (they keep working after a move; subscribers may lose access if permissions change)",
                    plural(n, "subscription", "subscriptions"),
                    plural(subs.len(), "item", "items"),
                    s.id
                ),
                Some(&s.id),
                subs.iter().map(|x| x.0.to_string()).collect(),
            ));
        }
        let alerts: Vec<&str> = moved.iter().copied().filter(|i| facts.alerts.contains_key(*i)).collect();
        if !alerts.is_empty() {
            dep_findings += 1;
            findings.push(finding(
                Check::Dependencies,
                Level::Warning,
                format!("data alerts watch {} changed by step {}", plural(alerts.len(), "workbook", "workbooks"), s.id),
                Some(&s.id),
                alerts.iter().map(|x| x.to_string()).collect(),
            ));
        }
        // Workbooks that an earlier step of this plan repoints away from a datasource no
        // longer depend on it when this step runs.
        let earlier = plan.steps_before(&s.id);
        let repointed: HashSet<(&str, &str)> = plan
            .steps
            .iter()
            .filter(|e| earlier.contains(e.id.as_str()))
            .flat_map(|e| e.changes.iter())
            .filter(|c| c.field == "datasource")
            .filter_map(|c| c.before_id.as_deref().map(|from| (from, c.item.as_str())))
            .collect();
        let ds: Vec<(&str, usize)> = s
            .items
            .iter()
            .filter(|i| i.kind == "datasource" && s.changes.iter().any(|c| c.item == i.id))
            .filter_map(|i| {
                let left = facts
                    .dependent_ids
                    .get(&i.id)?
                    .iter()
                    .filter(|w| !repointed.contains(&(i.id.as_str(), w.as_str())))
                    .count();
                (left > 0).then_some((i.id.as_str(), left))
            })
            .collect();
        if !ds.is_empty() {
            dep_findings += 1;
            let n: usize = ds.iter().map(|x| x.1).sum();
            findings.push(finding(
                Check::Dependencies,
                Level::Warning,
                format!(
                    "{} depend on {} changed by step {} (lineage from the Metadata API)",
                    plural(n, "workbook", "workbooks"),
                    plural(ds.len(), "datasource", "datasources"),
                    s.id
                ),
                Some(&s.id),
                ds.iter().map(|x| x.0.to_string()).collect(),
            ));
        }
        // Accounts deleted: never with content left. What an earlier step of the plan hands
        // to someone else no longer counts.
        for c in s.changes.iter().filter(|c| c.field == "exists" && s.item(&c.item).is_some_and(|i| i.kind == "user")) {
            if !c.after.is_null() {
                continue;
            }
            let handed: BTreeSet<&str> = plan
                .steps
                .iter()
                .take_while(|t| t.id != s.id)
                .flat_map(|t| t.changes.iter())
                .filter(|x| x.field == "owner" && x.before_id.as_deref() == Some(c.item.as_str()))
                .map(|x| x.item.as_str())
                .collect();
            let mut left: Vec<&str> = facts
                .items
                .iter()
                .filter(|(id, (owner, ..))| *owner == c.item && !handed.contains(id.as_str()))
                .map(|(id, _)| id.as_str())
                .collect();
            left.sort();
            if !left.is_empty() {
                dep_findings += 1;
                findings.push(finding(
                    Check::Dependencies,
                    Level::Error,
                    format!(
                        "step {} deletes an account that would still own {} ({}); transfer them in an earlier step first (re-plan the offboarding)",
                        s.id,
                        plural(left.len(), "item", "items"),
                        left.iter()
                            .take(5)
                            .map(|id| match facts.names.get(*id) {
                                Some((kind, name)) => format!("{kind} '{name}'"),
                                None => format!("project '{}'", facts.project_name(id)),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Some(&s.id),
                    left.iter().map(|x| x.to_string()).collect(),
                ));
            }
        }
    }
    dep_findings += name_clashes(&plan, facts, &mut findings);
    if dep_findings == 0 {
        findings.push(finding(
            Check::Dependencies,
            Level::Info,
            "no subscriptions, alerts or dependent workbooks are affected; steps are ordered".into(),
            None,
            vec![],
        ));
    }

    // ---------------------------------------------------------------- impact
    let mut items: BTreeSet<&str> = BTreeSet::new();
    let mut owners: BTreeSet<String> = BTreeSet::new();
    let mut projects: BTreeSet<String> = BTreeSet::new();
    let mut users: BTreeSet<String> = BTreeSet::new();
    let mut bytes = 0u64;
    for s in plan.steps.iter().filter(|s| s.is_write()) {
        for id in s.changed_items() {
            if !items.insert(id) {
                continue;
            }
            if let Some((owner, project, _, size)) = facts.items.get(id) {
                owners.insert(owner.clone());
                if !project.is_empty() {
                    projects.insert(project.clone());
                }
                bytes += size;
            } else if let Some(sz) = s.item(id).and_then(|i| i.size) {
                bytes += sz;
            }
            if let Some(a) = facts.audience.get(id) {
                users.extend(a.iter().cloned());
            }
            if s.item(id).is_some_and(|i| i.kind == "user") {
                users.insert(id.to_string());
            }
        }
        for c in &s.changes {
            if c.field == "project" {
                if let Some(a) = &c.after_id {
                    projects.insert(a.clone());
                } else if let Some(r) = &c.after_ref {
                    let name =
                        c.after.as_str().map(str::to_string).unwrap_or_else(|| format!("the project {r} creates"));
                    projects.insert(format!("{name} (new)"));
                }
            }
        }
    }
    plan.impact = Impact {
        items: items.len() as u64,
        users_affected: users.len() as u64,
        projects: projects.len() as u64,
        owners: owners.len() as u64,
        bytes,
    };
    let project_names: Vec<String> =
        projects.iter().map(|p| if p.starts_with('(') { p.clone() } else { facts.project_name(p) }).collect();
    let message = if items.is_empty() {
        "Nothing on the site changes: the plan only reads".to_string()
    } else {
        format!(
            "This will affect {} across {} ({}), owned by {}; {} can see them ({} MB)",
            plural(items.len(), "item", "items"),
            plural(projects.len(), "project", "projects"),
            project_names.join(", "),
            plural(owners.len(), "owner", "owners"),
            plural(users.len(), "user", "users"),
            bytes / (1024 * 1024)
        )
    };
    findings.push(finding(Check::Impact, Level::Info, message, None, vec![]));

    // ---------------------------------------------------------------- rollback
    let mut needs_ack = vec![];
    let mut by_class: BTreeMap<RollbackClass, Vec<&str>> = BTreeMap::new();
    for s in plan.steps.iter().filter(|s| s.is_write() && !s.changes.is_empty()) {
        by_class.entry(s.rollback).or_default().push(&s.id);
        if s.rollback == RollbackClass::None && s.effect == Effect::Destructive {
            needs_ack.push(s.id.clone());
        }
    }
    if by_class.is_empty() {
        findings.push(finding(
            Check::Rollback,
            Level::Info,
            "nothing to undo: the plan only reads".into(),
            None,
            vec![],
        ));
    }
    for (class, steps) in &by_class {
        let (level, what) = match class {
            RollbackClass::Exact => (Level::Info, "can be undone exactly"),
            RollbackClass::Snapshot => (Level::Info, "can be restored from saved copies"),
            RollbackClass::Lossy => (Level::Warning, "can be undone only in part (re-created items get new ids)"),
            RollbackClass::None => (Level::Warning, "CANNOT be undone"),
        };
        findings.push(finding(
            Check::Rollback,
            level,
            format!(
                "{} {what}",
                if steps.len() == 1 { format!("step {}", steps[0]) } else { format!("steps {}", steps.join(", ")) }
            ),
            None,
            vec![],
        ));
    }
    if !needs_ack.is_empty() {
        findings.push(finding(
            Check::Rollback,
            Level::Warning,
            format!(
                "step(s) {} are destructive and cannot be undone: running them needs an explicit acknowledgement",
                needs_ack.join(", ")
            ),
            None,
            vec![],
        ));
    }

    findings.sort_by_key(|f| (Check::ALL.iter().position(|c| *c == f.check), std::cmp::Reverse(f.level)));
    let ok = !findings.iter().any(|f| f.level == Level::Error);
    plan.validation = crate::plan::Validation { ok, findings };
    plan.seal();
    if ok { Ok(ValidatedPlan { plan, needs_acknowledgement: needs_ack }) } else { Err(Box::new(plan)) }
}

/// `true` when a finding value is a JSON null (helper for change values).
pub fn is_null(v: &Value) -> bool {
    v.is_null()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, Item, SiteRef, Step, StepKind};

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
        plan.seal();
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
        let refused = validate(plan, &facts, &policy).unwrap_err();
        let errs = clash_errors(&refused);
        assert_eq!(errs.len(), 1, "{:?}", refused.validation.findings);
        assert!(errs[0].message.contains(&a.name) && errs[0].message.contains(&target.name), "{}", errs[0].message);
        assert_eq!(errs[0].items.len(), 2);
        // Into the project that already holds the other one: refused, only the mover flagged.
        let plan = move_plan(&site, &[(&a.id, &b.project_id)]);
        let refused = validate(plan, &facts, &policy).unwrap_err();
        assert_eq!(clash_errors(&refused)[0].items, vec![a.id.clone()]);
        // One of them, or a unique name, alone: no clash. Moving both apart: no clash.
        for moves in [vec![(a.id.as_str(), target.id.as_str())], vec![(unique.id.as_str(), target.id.as_str())]] {
            let plan = move_plan(&site, &moves);
            if let Err(p) = validate(plan, &facts, &policy) {
                assert!(clash_errors(&p).is_empty(), "{:?}", p.validation.findings);
            }
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
        let refused = validate(plan_to("jdoe"), &facts, &Policy::default()).unwrap_err();
        let e: Vec<&Finding> = refused.validation.findings.iter().filter(|f| f.level == Level::Error).collect();
        assert_eq!(e.len(), 1, "{:?}", refused.validation.findings);
        assert!(e[0].message.contains("Creator license") && e[0].message.contains("jdoe"), "{}", e[0].message);
        assert_eq!(e[0].items, vec![flow.id.clone()]);
        assert!(validate(plan_to("tbaker"), &facts, &Policy::default()).is_ok(), "a Creator may own it");
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
            plan.seal();
            let p = match validate(plan, &facts, &policy) {
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
}
