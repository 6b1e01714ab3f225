//! The plan builder: the state a draft plan is built in (the plan, step and question
//! counters, lookups of users and projects, what an earlier step of the plan takes away) and
//! the helpers every workflow uses — asking and reading answers, grounding a project or user
//! name, naming items, reading a resource's rules. Each workflow adds its own `impl Builder`
//! in its module (`stale`, `offboard`, `notify`, `permissions`, `datasources`).

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use tabflow_plan::intent::Query;
use tabflow_plan::ops::{GranteeRef, Rule};
use tabflow_plan::plan::{Change, Item, Plan, Question, Step, StepKind};
use tabflow_site::Index;

use crate::ground::{self, Grounded, ground};
use crate::{Planner, learn, query};

/// The state one draft plan is built in.
pub(crate) struct Builder<'p, 'a> {
    pub(crate) p: &'p Planner<'a>,
    pub(crate) plan: Plan,
    pub(crate) next_step: usize,
    pub(crate) next_q: usize,
    /// Lookups and the project tree of the site.
    pub(crate) index: Index<'a>,
    /// What an earlier archive/delete of this plan takes away: its scope (None = the whole
    /// site), the items it moves and its step — so "the remaining content" means something.
    pub(crate) earlier_scope: Option<Option<BTreeSet<String>>>,
    pub(crate) moved_away: BTreeSet<String>,
    pub(crate) moving_step: Option<String>,
    /// The site's relations as lookups, each built on first use.
    pub(crate) lookups: Lookups<'a>,
}

/// Relations of the site indexed once per plan, on first use (a plan that needs none pays
/// nothing): a workflow looks an item's relations up instead of scanning a whole list for
/// each item, so planning grows with the site, not with its square.
#[derive(Default)]
pub(crate) struct Lookups<'a> {
    /// resource id → its permission rules, in site order
    rules: OnceCell<HashMap<&'a str, Vec<&'a tabflow_site::PermissionRule>>>,
    /// datasource id → the workbooks using it (each once), in site order
    uses: OnceCell<HashMap<&'a str, Vec<&'a tabflow_site::Workbook>>>,
    /// content id (workbook or view) → the positions of the subscriptions on it, ascending
    subscriptions: OnceCell<HashMap<&'a str, Vec<usize>>>,
    /// view id → the data alerts watching it
    alerts: OnceCell<HashMap<&'a str, usize>>,
    /// user name → the first user of that name; full name → likewise
    user_names: OnceCell<(HashMap<&'a str, usize>, HashMap<&'a str, usize>)>,
    /// flow id → flow
    flows: OnceCell<HashMap<&'a str, &'a tabflow_site::Flow>>,
}

/// A text parameter as the planner reads it: trimmed, and absent when empty.
pub(crate) fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An ownership transfer of one item from `from` to `to`.
pub(crate) fn owner_change(item: &str, from: &tabflow_site::User, to: &tabflow_site::User) -> Change {
    Change {
        item: item.to_string(),
        field: "owner".into(),
        before: Value::String(from.name.clone()),
        after: Value::String(to.name.clone()),
        before_id: Some(from.id.clone()),
        after_id: Some(to.id.clone()),
        after_ref: None,
    }
}

pub(crate) fn date(s: &str) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

pub(crate) fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

impl<'p, 'a> Builder<'p, 'a> {
    /// The permission rules on `resource_id`, in site order.
    pub(crate) fn rules_on(&self, resource_id: &str) -> &[&'a tabflow_site::PermissionRule] {
        let site: &'a tabflow_site::Site = self.p.site;
        let by_resource = self.lookups.rules.get_or_init(|| {
            let mut m: HashMap<&'a str, Vec<&'a tabflow_site::PermissionRule>> = HashMap::new();
            for r in &site.permissions {
                m.entry(r.resource.id.as_str()).or_default().push(r);
            }
            m
        });
        by_resource.get(resource_id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The workbooks using datasource `ds` (each once), in site order.
    pub(crate) fn workbooks_using(&self, ds: &str) -> &[&'a tabflow_site::Workbook] {
        let site: &'a tabflow_site::Site = self.p.site;
        let uses = self.lookups.uses.get_or_init(|| {
            let mut m: HashMap<&'a str, Vec<&'a tabflow_site::Workbook>> = HashMap::new();
            for w in &site.workbooks {
                let mut seen: Vec<&str> = Vec::with_capacity(w.datasource_ids.len());
                for d in &w.datasource_ids {
                    if !seen.contains(&d.as_str()) {
                        seen.push(d.as_str());
                        m.entry(d.as_str()).or_default().push(w);
                    }
                }
            }
            m
        });
        uses.get(ds).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The subscriptions on any of `content_ids` (a workbook and its views), each once, in
    /// site order.
    pub(crate) fn subscriptions_on<'x>(
        &self,
        content_ids: impl IntoIterator<Item = &'x str>,
    ) -> Vec<&'a tabflow_site::Subscription> {
        let site: &'a tabflow_site::Site = self.p.site;
        let on = self.lookups.subscriptions.get_or_init(|| {
            let mut m: HashMap<&'a str, Vec<usize>> = HashMap::new();
            for (n, s) in site.subscriptions.iter().enumerate() {
                m.entry(s.content.id.as_str()).or_default().push(n);
            }
            m
        });
        let mut at: Vec<usize> = content_ids.into_iter().filter_map(|id| on.get(id)).flatten().copied().collect();
        at.sort_unstable();
        at.dedup();
        at.into_iter().map(|n| &site.subscriptions[n]).collect()
    }

    /// How many data alerts watch view `view_id`.
    pub(crate) fn alerts_on(&self, view_id: &str) -> usize {
        let site: &'a tabflow_site::Site = self.p.site;
        let on = self.lookups.alerts.get_or_init(|| {
            let mut m: HashMap<&'a str, usize> = HashMap::new();
            for a in &site.data_alerts {
                *m.entry(a.view_id.as_str()).or_default() += 1;
            }
            m
        });
        on.get(view_id).copied().unwrap_or(0)
    }

    /// The first user (in site order) whose name is `name`; with `or_full_name`, whose name
    /// or full name is.
    pub(crate) fn user_named(&self, name: &str, or_full_name: bool) -> Option<&'a tabflow_site::User> {
        let site: &'a tabflow_site::Site = self.p.site;
        let (names, full) = self.lookups.user_names.get_or_init(|| {
            let (mut names, mut full) = (HashMap::new(), HashMap::new());
            for (n, u) in site.users.iter().enumerate() {
                names.entry(u.name.as_str()).or_insert(n);
                full.entry(u.full_name.as_str()).or_insert(n);
            }
            (names, full)
        });
        let by_name = names.get(name).copied();
        let by_full = if or_full_name { full.get(name).copied() } else { None };
        by_name.into_iter().chain(by_full).min().map(|n| &site.users[n])
    }

    /// The flow with this id.
    pub(crate) fn flow(&self, id: &str) -> Option<&'a tabflow_site::Flow> {
        let site: &'a tabflow_site::Site = self.p.site;
        let flows = self.lookups.flows.get_or_init(|| site.flows.iter().map(|f| (f.id.as_str(), f)).collect());
        flows.get(id).copied()
    }

    pub(crate) fn step_id(&mut self) -> String {
        self.next_step += 1;
        format!("s{}", self.next_step)
    }

    pub(crate) fn ask(&mut self, text: String, choices: Vec<String>, default: Option<&str>) -> String {
        self.next_q += 1;
        let id = format!("q{}", self.next_q);
        self.plan.questions.push(Question { id: id.clone(), text, choices, default: default.map(str::to_string) });
        id
    }

    /// The answer already given to the question with this id, if any.
    pub(crate) fn answer(&self, qid: &str) -> Option<&str> {
        self.p.answers.get(qid).map(String::as_str)
    }

    /// A question that is answered by `answers` disappears from the plan (recorded in
    /// `plan.answers`); otherwise it stays. Answers the chosen value.
    pub(crate) fn question(&mut self, text: String, choices: Vec<String>, default: Option<&str>) -> Option<String> {
        let (text, default) = learn::with_learned_default(&self.p.learned, text, &choices, default);
        let default = default.as_deref();
        let qid = format!("q{}", self.next_q + 1);
        if let Some(a) = self.answer(&qid).map(str::to_string) {
            self.next_q += 1;
            if !choices.is_empty() && !choices.iter().any(|c| c.eq_ignore_ascii_case(&a)) {
                // Not a valid choice: ask again, saying why.
                self.next_q -= 1;
                self.ask(format!("{text} ('{a}' is not one of the choices)"), choices, default);
                return None;
            }
            self.plan.answers.insert(qid.clone(), a.clone());
            self.plan.answered.push(Question { id: qid, text, choices, default: default.map(str::to_string) });
            return Some(a);
        }
        self.ask(text, choices, default);
        None
    }

    pub(crate) fn user_name(&self, id: &str) -> String {
        self.index
            .user(id)
            .map(|u| if u.full_name.is_empty() { u.name.clone() } else { u.full_name.clone() })
            .unwrap_or_else(|| id.into())
    }

    pub(crate) fn project_name(&self, id: &str) -> String {
        self.index.project(id).map(|p| p.name.clone()).unwrap_or_else(|| id.into())
    }

    pub(crate) fn project_path(&self, id: &str) -> String {
        self.index.path(id)
    }

    /// A project and all projects nested under it.
    pub(crate) fn subtree(&self, root: &str) -> BTreeSet<String> {
        self.index.subtree(root).into_iter().map(str::to_string).collect()
    }

    /// Grounds a project name; on failure adds a question and answers None.
    pub(crate) fn ground_project(&mut self, wanted: &str) -> Option<&'a tabflow_site::Project> {
        let site = self.p.site;
        match ground(wanted, &site.projects.iter().collect::<Vec<_>>(), |p| vec![p.name.clone()]) {
            Grounded::One(p, _) => {
                if !p.name.eq_ignore_ascii_case(wanted) {
                    self.plan.notes.push(format!("'{wanted}' was read as the project '{}'", p.name));
                }
                Some(p)
            }
            Grounded::Many(ps) => {
                // Prefer a top-level one when the names are equal.
                let top: Vec<_> = ps.iter().filter(|p| p.parent_id.is_none()).collect();
                if top.len() == 1 && ps.iter().all(|p| p.name == top[0].name) {
                    return Some(top[0]);
                }
                let choices: Vec<String> = ps.iter().map(|p| self.project_path(&p.id)).collect();
                let a = self.question(
                    format!("Which project is '{wanted}'? {}", choices.join(", ")),
                    choices.clone(),
                    None,
                )?;
                ps.into_iter().find(|p| self.project_path(&p.id).eq_ignore_ascii_case(&a))
            }
            Grounded::None => {
                let names = ground::closest(wanted, site.projects.iter().map(|p| p.name.as_str()), 5);
                let near = if names.is_empty() { String::new() } else { format!(" Closest: {}", names.join(", ")) };
                self.ask(
                    format!("There is no project named '{wanted}' on this site. Which project did you mean?{near}"),
                    names,
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn ground_user(
        &mut self,
        wanted: &str,
        team: Option<&str>,
        role: &str,
    ) -> Option<&'a tabflow_site::User> {
        let site = self.p.site;
        let users: Vec<&tabflow_site::User> = site.users.iter().collect();
        match ground(wanted, &users, |u| vec![u.name.clone(), u.full_name.clone(), u.email.clone()]) {
            Grounded::One(u, q) => {
                if q != ground::Quality::Exact {
                    self.plan.notes.push(format!("'{wanted}' was read as {} ({})", u.full_name, u.name));
                }
                Some(u)
            }
            Grounded::Many(mut us) => {
                if let Some(t) = team {
                    let groups: Vec<&tabflow_site::Group> = site
                        .groups
                        .iter()
                        .filter(|g| ground::normalize(&g.name).contains(&ground::normalize(t)))
                        .collect();
                    let in_team: Vec<&tabflow_site::User> =
                        us.iter().copied().filter(|u| groups.iter().any(|g| g.members.contains(&u.id))).collect();
                    if in_team.len() == 1 {
                        self.plan
                            .notes
                            .push(format!("'{wanted}' in {t} is {} ({})", in_team[0].full_name, in_team[0].name));
                        return Some(in_team[0]);
                    }
                    if !in_team.is_empty() {
                        us = in_team;
                    }
                }
                let describe = |u: &tabflow_site::User| {
                    let teams: Vec<&str> = site
                        .groups
                        .iter()
                        .filter(|g| g.name != "All Users" && g.members.contains(&u.id))
                        .map(|g| g.name.as_str())
                        .take(2)
                        .collect();
                    if teams.is_empty() {
                        format!("{} ({})", u.full_name, u.name)
                    } else {
                        format!("{} ({}, {})", u.full_name, u.name, teams.join(", "))
                    }
                };
                let text = format!(
                    "Which {wanted} is the {role}? {}",
                    us.iter().map(|u| describe(u)).collect::<Vec<_>>().join(", ")
                );
                let choices: Vec<String> = us.iter().map(|u| u.name.clone()).collect();
                let a = self.question(text, choices, None)?;
                us.into_iter().find(|u| u.name.eq_ignore_ascii_case(&a))
            }
            Grounded::None => {
                self.ask(
                    format!("There is no user '{wanted}' on this site. Give their username or email (e.g. jsmith or jsmith@example.com)."),
                    vec![],
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn rules_of(&self, resource_id: &str) -> Vec<Rule> {
        let mut out: Vec<Rule> = self
            .rules_on(resource_id)
            .iter()
            .map(|r| Rule {
                grantee: GranteeRef {
                    kind: r.grantee.kind.clone(),
                    id: r.grantee.id.clone(),
                    name: if r.grantee.kind == "group" {
                        self.index.group(r.grantee.id.as_str()).map(|g| g.name.clone()).unwrap_or_default()
                    } else {
                        self.index.user(r.grantee.id.as_str()).map(|u| u.name.clone()).unwrap_or_default()
                    },
                },
                capabilities: r.capabilities.clone(),
            })
            .collect();
        out.sort();
        out
    }

    pub(crate) fn workbook_item(&self, w: &tabflow_site::Workbook, reason: Option<String>) -> Item {
        Item {
            kind: "workbook".into(),
            id: w.id.clone(),
            name: w.name.clone(),
            project: Some(self.project_name(&w.project_id)),
            updated_at: Some(w.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            owner: Some(self.user_name(&w.owner_id)),
            reason,
            size: Some(w.size),
        }
    }
}

impl Builder<'_, '_> {
    /// A Phase-1 question: answered from the site read in a `read` step (`answer-query`,
    /// the answer in `details`); a name that is ambiguous or unknown becomes a question whose
    /// answer replaces the name; a question it cannot understand says so with examples.
    pub(crate) fn query(&mut self, intent: &Query, request: &str) {
        let mut question = text(&intent.question).unwrap_or(request).to_string();
        let mut result = query::answer(self.p.site, &question);
        // At most a few names per question are asked about, one after the other.
        for _ in 0..3 {
            let Err(e) = &result else { break };
            let wanted = match e {
                query::Error::Ambiguous { wanted, .. } | query::Error::NotFound { wanted, .. } => wanted.clone(),
                _ => break,
            };
            let choices = query::choices(e);
            let Some(chosen) = self.question(query::explain(e), choices, None) else { return };
            question = query::with_name(&question, &wanted, &chosen);
            result = query::answer(self.p.site, &question);
        }
        match result {
            Ok(a) => {
                let id = self.step_id();
                self.plan.notes.extend(a.notes.iter().cloned());
                self.plan.steps.push(Step::new(
                    id,
                    StepKind::AnswerQuery,
                    a.summary.clone(),
                    vec![],
                    vec![],
                    vec![],
                    serde_json::to_value(&a).unwrap_or(Value::Null),
                ));
            }
            Err(e) => {
                self.ask(query::explain(&e), query::choices(&e), None);
            }
        }
    }
}
