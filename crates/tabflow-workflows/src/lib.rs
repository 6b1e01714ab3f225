//! Workflows: intents + a read of the site → an exact draft plan. The planner never writes;
//! it grounds names against the site, lists the exact items with reasons, writes every change
//! as before → after, and asks when it is not sure. The validator (`tabflow-plan`) then checks it.
//!
//! Implemented here: `archive-stale-content`, `delete-content` (staged), `offboard-user`,
//! `audit-permissions` / `update-permissions` (revoking overly broad grants), and
//! `notify-owners` (recipients listed; sending belongs to the notifications feature),
//! `consolidate-datasources` and `migrate-datasource` (module `datasources`).
//! `query` (Phase-1 questions, `query.rs`) is answered in a read step.

mod datasources;
pub mod effective;
pub mod ground;
pub mod learn;
mod permissions;
pub mod query;
pub mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use tabflow_plan::intent::{Archive, Delete, Notify, Offboard, Query};
use tabflow_plan::ops::{GranteeRef, Rule};
use tabflow_plan::plan::{Change, Intent, Item, Plan, Question, SiteRef, Step, StepKind};
use tabflow_plan::policy::Policy;
use tabflow_site::Site;

use ground::{Grounded, ground};

/// Everything a planner reads.
pub struct Planner<'a> {
    pub site: &'a Site,
    pub site_ref: SiteRef,
    pub policy: &'a Policy,
    /// The signed-in user's name (fallback owner, the actor).
    pub signed_in: String,
    pub now: DateTime<Utc>,
    pub answers: BTreeMap<String, String>,
    /// Where usage came from (for the plan's notes).
    pub usage_source: String,
    /// What earlier choices taught (suggested owners, default answers); empty = nothing.
    pub learned: learn::Learned,
}

/// The intent names the planner plans: the catalogue's, `tabflow_plan::Intent::NAMES` (the
/// planner plans every intent of the typed catalogue).
pub const INTENTS: &[&str] = Intent::NAMES;

/// Capabilities too broad for everyone-groups on sensitive content.
pub const DANGEROUS: &[&str] =
    &["Write", "Delete", "ChangePermissions", "ChangeHierarchy", "ExportXml", "SaveAs", "WebAuthoring", "Overwrite"];

struct Builder<'p, 'a> {
    p: &'p Planner<'a>,
    plan: Plan,
    next_step: usize,
    next_q: usize,
    users: HashMap<&'a str, &'a tabflow_site::User>,
    projects: HashMap<&'a str, &'a tabflow_site::Project>,
    /// What an earlier archive/delete of this plan takes away: its scope (None = the whole
    /// site), the items it moves and its step — so "the remaining content" means something.
    earlier_scope: Option<Option<BTreeSet<String>>>,
    moved_away: BTreeSet<String>,
    moving_step: Option<String>,
}

/// A text parameter as the planner reads it: trimmed, and absent when empty.
fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// What an archive or a (staged) delete selects: the parameters the two intents share.
struct Stale<'i> {
    project: Option<&'i str>,
    stale_days: Option<u32>,
    since: Option<&'i str>,
    until: Option<&'i str>,
    archive_project: Option<&'i str>,
    tags: Vec<String>,
    /// `workbooks` (default), `datasources` or `all`.
    content: Option<&'i str>,
}

impl<'i> Stale<'i> {
    fn archive(a: &'i Archive) -> Stale<'i> {
        Stale {
            project: text(&a.project),
            stale_days: a.stale_days,
            since: text(&a.since),
            until: text(&a.until),
            archive_project: text(&a.archive_project),
            tags: a.tags.clone().unwrap_or_default(),
            content: text(&a.content),
        }
    }

    fn delete(d: &'i Delete) -> Stale<'i> {
        Stale {
            project: text(&d.project),
            stale_days: d.stale_days,
            since: None,
            until: None,
            archive_project: None,
            tags: d.tags.clone().unwrap_or_default(),
            // delete-content names the content `type` ("workbook", "datasource").
            content: text(&d.content).or_else(|| text(&d.kind).filter(|t| t.starts_with("datasource"))),
        }
    }
}

/// An ownership transfer of one item from `from` to `to`.
fn owner_change(item: &str, from: &tabflow_site::User, to: &tabflow_site::User) -> Change {
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

fn date(s: &str) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

impl<'p, 'a> Builder<'p, 'a> {
    fn step_id(&mut self) -> String {
        self.next_step += 1;
        format!("s{}", self.next_step)
    }

    fn ask(&mut self, text: String, choices: Vec<String>, default: Option<&str>) -> String {
        self.next_q += 1;
        let id = format!("q{}", self.next_q);
        self.plan.questions.push(Question { id: id.clone(), text, choices, default: default.map(str::to_string) });
        id
    }

    /// The answer already given to the question with this id, if any.
    fn answer(&self, qid: &str) -> Option<&str> {
        self.p.answers.get(qid).map(String::as_str)
    }

    /// A question that is answered by `answers` disappears from the plan (recorded in
    /// `plan.answers`); otherwise it stays. Answers the chosen value.
    fn question(&mut self, text: String, choices: Vec<String>, default: Option<&str>) -> Option<String> {
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

    fn user_name(&self, id: &str) -> String {
        self.users
            .get(id)
            .map(|u| if u.full_name.is_empty() { u.name.clone() } else { u.full_name.clone() })
            .unwrap_or_else(|| id.into())
    }

    fn project_name(&self, id: &str) -> String {
        self.projects.get(id).map(|p| p.name.clone()).unwrap_or_else(|| id.into())
    }

    fn project_path(&self, id: &str) -> String {
        let mut parts = vec![];
        let mut cur = Some(id);
        let mut guard = 0;
        while let Some(c) = cur {
            guard += 1;
            let Some(p) = self.projects.get(c) else { break };
            parts.push(p.name.as_str());
            cur = p.parent_id.as_deref();
            if guard > 32 {
                break;
            }
        }
        parts.reverse();
        parts.join(" / ")
    }

    /// A project and all projects nested under it.
    fn subtree(&self, root: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = [root.to_string()].into();
        loop {
            let before = out.len();
            for p in &self.p.site.projects {
                if p.parent_id.as_ref().is_some_and(|x| out.contains(x)) {
                    out.insert(p.id.clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    /// Grounds a project name; on failure adds a question and answers None.
    fn ground_project(&mut self, wanted: &str) -> Option<&'a tabflow_site::Project> {
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

    fn ground_user(&mut self, wanted: &str, team: Option<&str>, role: &str) -> Option<&'a tabflow_site::User> {
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

    fn rules_of(&self, resource_id: &str) -> Vec<Rule> {
        let mut out: Vec<Rule> = self
            .p
            .site
            .permissions
            .iter()
            .filter(|r| r.resource.id == resource_id)
            .map(|r| Rule {
                grantee: GranteeRef {
                    kind: r.grantee.kind.clone(),
                    id: r.grantee.id.clone(),
                    name: if r.grantee.kind == "group" {
                        self.p
                            .site
                            .groups
                            .iter()
                            .find(|g| g.id == r.grantee.id)
                            .map(|g| g.name.clone())
                            .unwrap_or_default()
                    } else {
                        self.users.get(r.grantee.id.as_str()).map(|u| u.name.clone()).unwrap_or_default()
                    },
                },
                capabilities: r.capabilities.clone(),
            })
            .collect();
        out.sort();
        out
    }

    fn workbook_item(&self, w: &tabflow_site::Workbook, reason: Option<String>) -> Item {
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

    // ---------------------------------------------------------------- archive / delete

    /// Finds stale workbooks and moves them to the archive (or quarantine) project.
    fn stale_content(&mut self, intent: &Stale<'_>, delete: bool) {
        let site = self.p.site;
        let stale_days = i64::from(intent.stale_days.unwrap_or(90).max(1));
        let since = intent.since.and_then(date);
        let until = intent.until.and_then(date);
        let cutoff = since.unwrap_or(self.p.now - Duration::days(stale_days));
        let dest_name = if delete {
            self.p.policy.quarantine_project.clone()
        } else {
            intent.archive_project.unwrap_or("Archive").to_string()
        };
        let (scope, scope_label): (Option<BTreeSet<String>>, String) = match intent.project {
            Some(name) => match self.ground_project(name) {
                Some(p) => {
                    let sub = self.subtree(&p.id);
                    let label = if sub.len() > 1 {
                        format!("{} (and {} sub-projects)", p.name, sub.len() - 1)
                    } else {
                        p.name.clone()
                    };
                    (Some(sub), label)
                }
                None => return,
            },
            None => (None, "the whole site".into()),
        };
        self.earlier_scope = Some(scope.clone());
        let tags = intent.tags.clone();
        let dest = site.projects.iter().find(|p| p.parent_id.is_none() && p.name.eq_ignore_ascii_case(&dest_name));
        let mut candidates: Vec<Item> = vec![];
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut excluded: Vec<Value> = vec![];
        // Workbooks (default), datasources, or both.
        let content = intent.content.unwrap_or("workbooks").to_ascii_lowercase();
        let want_wb = !content.starts_with("datasource");
        let want_ds = content.starts_with("datasource") || content == "all";
        for w in site.workbooks.iter().filter(|_| want_wb) {
            if let Some(s) = &scope
                && !s.contains(&w.project_id)
            {
                continue;
            }
            if dest.is_some_and(|d| d.id == w.project_id) {
                continue;
            }
            if !tags.is_empty() && !w.tags.iter().any(|t| tags.iter().any(|x| x.eq_ignore_ascii_case(t))) {
                continue;
            }
            let last = w.views.iter().filter_map(|v| v.last_viewed_at).max();
            let total: u64 = w.views.iter().map(|v| v.total_views).sum();
            let exclude = |why: String| json!({"id": w.id, "name": w.name, "reason": why});
            if let Some(t) = w.tags.iter().find(|t| self.p.policy.is_protected_tag(t)) {
                excluded.push(exclude(format!("protected by policy (tag '{t}')")));
                continue;
            }
            if w.created_at > cutoff || until.is_some_and(|u| w.created_at > u + Duration::days(1)) {
                excluded.push(exclude(format!("created too recently to judge ({})", day(w.created_at))));
                continue;
            }
            let reason = match last {
                Some(l) if l >= cutoff => continue,
                Some(l) => format!("not viewed since {}", day(l)),
                None if total == 0 => "never viewed".to_string(),
                None => {
                    excluded.push(exclude(format!("no usage data ({total} views, no last-viewed date)")));
                    continue;
                }
            };
            if w.updated_at > cutoff {
                excluded.push(exclude(format!("edited recently ({}) although not viewed", day(w.updated_at))));
                continue;
            }
            if let Some(d) = dest
                && site.workbooks.iter().any(|x| x.project_id == d.id && x.name.eq_ignore_ascii_case(&w.name))
            {
                excluded.push(exclude(format!(
                    "a workbook named '{}' is already in {} (Tableau refuses the move)",
                    w.name, d.name
                )));
                continue;
            }
            if !taken.insert(w.name.to_lowercase()) {
                excluded.push(exclude(format!(
                    "another workbook named '{}' goes to {dest_name} in this plan (Tableau refuses two of one name in a project); rename one and plan again",
                    w.name
                )));
                continue;
            }
            candidates.push(self.workbook_item(w, Some(reason)));
        }
        candidates.sort_by(|a, b| a.project.cmp(&b.project).then(a.name.cmp(&b.name)));
        // Counted over what is planned (exclusions come after the usage test).
        let never = candidates.iter().filter(|c| c.reason.as_deref() == Some("never viewed")).count();
        let not_since = candidates.len() - never;
        let window = match (since, until) {
            (Some(s), Some(u)) => format!("not viewed since {} (window {} – {})", day(s), day(s), day(u)),
            (Some(s), None) => format!("not viewed since {}", day(s)),
            _ => format!("not accessed in {stale_days}+ days"),
        };
        let (ds_candidates, ds_excluded) = if want_ds {
            let leaving: BTreeSet<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
            self.stale_datasources(scope.as_ref(), dest, cutoff, &tags, &leaving)
        } else {
            (vec![], vec![])
        };
        let find = self.step_id();
        let scanned =
            site.workbooks.iter().filter(|w| scope.as_ref().is_none_or(|s| s.contains(&w.project_id))).count();
        if want_wb {
            self.plan.steps.push(Step::new(
                find.clone(),
                StepKind::FindStaleWorkbooks,
                format!("Find workbooks in {scope_label} {window}"),
                vec![],
                candidates.clone(),
                vec![],
                json!({
                    "scanned": scanned, "candidates": candidates.len(), "never_viewed": never, "not_viewed_since": not_since,
                    "cutoff": day(cutoff), "usage_source": self.p.usage_source, "excluded": excluded,
                    "projects": scope.as_ref().map(|s| s.iter().map(|p| self.project_path(p)).collect::<Vec<_>>()),
                }),
            ));
        }
        if want_ds {
            let ds_scanned =
                site.datasources.iter().filter(|d| scope.as_ref().is_none_or(|s| s.contains(&d.project_id))).count();
            let id = if want_wb { self.step_id() } else { find.clone() };
            self.plan.steps.push(Step::new(
                id,
                StepKind::FindStaleDatasources,
                format!("Find datasources in {scope_label} not accessed since {}", day(cutoff)),
                vec![],
                ds_candidates.clone(),
                vec![],
                json!({
                    "scanned": ds_scanned, "candidates": ds_candidates.len(), "cutoff": day(cutoff),
                    "excluded": ds_excluded, "usage_source": self.p.usage_source,
                }),
            ));
        }
        if candidates.is_empty() && ds_candidates.is_empty() {
            let what = match (want_wb, want_ds) {
                (true, true) => "workbooks or datasources",
                (false, true) => "datasources",
                _ => "workbooks",
            };
            self.plan.notes.push(format!(
                "No {what} in {scope_label} are {window}; nothing to {}.",
                if delete { "delete" } else { "archive" }
            ));
            return;
        }
        let verb = if delete { "Delete (staged: quarantine first)" } else { "Archive" };
        let found = match (want_wb, want_ds) {
            (true, true) => {
                format!("{} workbooks ({never} never viewed) and {} datasources", candidates.len(), ds_candidates.len())
            }
            (false, true) => format!("{} datasources", ds_candidates.len()),
            _ => format!("{} workbooks", candidates.len()),
        };
        let never_note = if want_ds { String::new() } else { format!(" ({never} never viewed)") };
        let choice = self.question(
            format!("I found {found} in {scope_label} {window}{never_note}. {verb} all, or review the list first?"),
            vec![if delete { "delete-all".into() } else { "archive-all".into() }, "review".into(), "cancel".into()],
            Some("review"),
        );
        if choice.as_deref() == Some("cancel") {
            self.plan.notes.push("You chose cancel: no changes are planned.".into());
            return;
        }
        let mut depends = vec![find.clone()];
        let (dest_id, dest_ref) = self.archive_destination(dest, &dest_name, &mut depends, &find);
        let tag = if delete { "deleted-by-tabflow".to_string() } else { self.p.policy.archive_tag.clone() };
        let dated = format!("{}-{}", if delete { "deleted" } else { "archived" }, day(self.p.now));
        let changes = self.move_and_tag(&candidates, &dest_name, dest_id.as_ref(), dest_ref.as_ref(), &tag, &dated);
        let n = candidates.len();
        let ds_changes =
            self.move_and_tag(&ds_candidates, &dest_name, dest_id.as_ref(), dest_ref.as_ref(), &tag, &dated);
        if n == 0 {
            self.push_datasource_step(ds_candidates, ds_changes, depends, delete, &dest_name, &tag);
            return;
        }
        let s = self.step_id();
        self.moved_away.extend(candidates.iter().map(|c| c.id.clone()));
        self.moving_step = Some(s.clone());
        let wb_step = s.clone();
        let ds_depends: Vec<String> = depends.iter().cloned().chain([wb_step]).collect();
        self.plan.steps.push(Step::new(
            s,
            if delete { StepKind::StageDelete } else { StepKind::ArchiveWorkbooks },
            if delete {
                format!(
                    "Move {n} workbooks to \"{dest_name}\" (staged delete: real delete after {} days, backup kept)",
                    self.p.policy.grace_days
                )
            } else {
                format!("Move {n} workbooks to \"{dest_name}\" and tag them {tag}")
            },
            depends,
            candidates,
            changes,
            Value::Null,
        ));
        if !ds_candidates.is_empty() {
            self.push_datasource_step(ds_candidates, ds_changes, ds_depends, delete, &dest_name, &tag);
        }
    }

    /// Datasources not accessed since `cutoff`, with exclusions: certified, protected,
    /// edited recently, still used by workbooks that stay, name clash in the destination.
    fn stale_datasources(
        &self,
        scope: Option<&BTreeSet<String>>,
        dest: Option<&tabflow_site::Project>,
        cutoff: DateTime<Utc>,
        tags: &[String],
        leaving: &BTreeSet<&str>,
    ) -> (Vec<Item>, Vec<Value>) {
        let site = self.p.site;
        let mut out = vec![];
        let mut excluded = vec![];
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for d in &site.datasources {
            if scope.is_some_and(|s| !s.contains(&d.project_id)) || dest.is_some_and(|x| x.id == d.project_id) {
                continue;
            }
            if !tags.is_empty() && !d.tags.iter().any(|t| tags.iter().any(|x| x.eq_ignore_ascii_case(t))) {
                continue;
            }
            let reason = match d.last_accessed_at {
                Some(l) if l >= cutoff => continue,
                Some(l) => format!("not accessed since {}", day(l)),
                None if d.total_hits == 0 => "never accessed".to_string(),
                None => {
                    excluded.push(json!({"id": d.id, "name": d.name, "reason": format!("no usage data ({} hits, no last-access date)", d.total_hits)}));
                    continue;
                }
            };
            let why_not = if d.certified {
                Some("certified (certification signals it is meant to be used)".to_string())
            } else if let Some(t) = d.tags.iter().find(|t| self.p.policy.is_protected_tag(t)) {
                Some(format!("protected by policy (tag '{t}')"))
            } else if d.updated_at > cutoff {
                Some(format!("edited recently ({}) although not accessed", day(d.updated_at)))
            } else {
                let staying = site
                    .workbooks
                    .iter()
                    .filter(|w| w.datasource_ids.contains(&d.id) && !leaving.contains(w.id.as_str()))
                    .count();
                if staying > 0 {
                    Some(format!("{staying} workbooks that stay still use it"))
                } else if dest.is_some_and(|x| {
                    site.datasources.iter().any(|o| o.project_id == x.id && o.name.eq_ignore_ascii_case(&d.name))
                }) || !taken.insert(d.name.to_lowercase())
                {
                    Some(format!("a datasource named '{}' is already there (Tableau refuses the move)", d.name))
                } else {
                    None
                }
            };
            if let Some(why) = why_not {
                excluded.push(json!({"id": d.id, "name": d.name, "reason": why}));
                continue;
            }
            out.push(Item {
                kind: "datasource".into(),
                id: d.id.clone(),
                name: d.name.clone(),
                project: Some(self.project_name(&d.project_id)),
                updated_at: Some(d.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                owner: Some(self.user_name(&d.owner_id)),
                reason: Some(reason),
                size: Some(d.size),
            });
        }
        out.sort_by(|a, b| a.project.cmp(&b.project).then(a.name.cmp(&b.name)));
        (out, excluded)
    }

    /// The project move and the archive tags of workbooks or datasources.
    fn move_and_tag(
        &self,
        items: &[Item],
        dest_name: &str,
        dest_id: Option<&String>,
        dest_ref: Option<&String>,
        tag: &str,
        dated: &str,
    ) -> Vec<Change> {
        let site = self.p.site;
        let mut changes = vec![];
        for it in items {
            let (project_id, tags) = match it.kind.as_str() {
                "datasource" => match site.datasources.iter().find(|d| d.id == it.id) {
                    Some(d) => (&d.project_id, &d.tags),
                    None => continue,
                },
                _ => match site.workbooks.iter().find(|w| w.id == it.id) {
                    Some(w) => (&w.project_id, &w.tags),
                    None => continue,
                },
            };
            changes.push(Change {
                item: it.id.clone(),
                field: "project".into(),
                before: Value::String(self.project_name(project_id)),
                after: Value::String(dest_name.to_string()),
                before_id: Some(project_id.clone()),
                after_id: dest_id.cloned(),
                after_ref: dest_ref.cloned(),
            });
            let before: BTreeSet<String> = tags.iter().cloned().collect();
            let mut after = before.clone();
            after.insert(tag.to_string());
            after.insert(dated.to_string());
            changes.push(Change {
                item: it.id.clone(),
                field: "tags".into(),
                before: json!(before),
                after: json!(after),
                before_id: None,
                after_id: None,
                after_ref: None,
            });
        }
        changes
    }

    /// The archive (or quarantine) project: its id when it exists, else a step of this plan
    /// that creates it locked (its id then comes from that step). Answers (id, creating step).
    fn archive_destination(
        &mut self,
        existing: Option<&tabflow_site::Project>,
        name: &str,
        depends: &mut Vec<String>,
        after: &str,
    ) -> (Option<String>, Option<String>) {
        if let Some(d) = existing {
            return (Some(d.id.clone()), None);
        }
        let create = self.step_id();
        let placeholder = format!("new-project:{name}");
        self.plan.steps.push(Step::new(
            create.clone(),
            StepKind::CreateProject,
            format!("Create the project \"{name}\" with locked permissions"),
            vec![after.to_string()],
            vec![Item { kind: "project".into(), id: placeholder.clone(), name: name.to_string(), ..Item::default() }],
            vec![Change {
                item: placeholder,
                field: "exists".into(),
                before: Value::Null,
                after: json!({"name": name, "parent_id": null, "content_permissions": "LockedToProject"}),
                before_id: None,
                after_id: None,
                after_ref: None,
            }],
            Value::Null,
        ));
        depends.push(create.clone());
        (None, Some(create))
    }

    fn push_datasource_step(
        &mut self,
        items: Vec<Item>,
        changes: Vec<Change>,
        depends: Vec<String>,
        delete: bool,
        dest_name: &str,
        tag: &str,
    ) {
        if items.is_empty() {
            return;
        }
        let n = items.len();
        let s = self.step_id();
        self.moved_away.extend(items.iter().map(|c| c.id.clone()));
        self.moving_step = Some(s.clone());
        self.plan.steps.push(Step::new(
            s,
            if delete { StepKind::StageDelete } else { StepKind::ArchiveDatasources },
            if delete {
                format!(
                    "Move {n} datasources to \"{dest_name}\" (staged delete: real delete after {} days, backup kept)",
                    self.p.policy.grace_days
                )
            } else {
                format!("Move {n} datasources to \"{dest_name}\" and tag them {tag}")
            },
            depends,
            items,
            changes,
            Value::Null,
        ));
    }

    // ---------------------------------------------------------------- offboarding

    fn offboard(&mut self, intent: &Offboard) {
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
            .filter_map(|m| self.users.get(m.as_str()).copied())
            .filter(|u| licensed(u) && can_own(u))
            .max_by_key(|u| (owned_count.get(u.id.as_str()).copied().unwrap_or(0), std::cmp::Reverse(u.name.clone())));
        let admin = site.users.iter().find(|u| u.name == self.p.signed_in);
        let team_names: Vec<&str> = teams.iter().map(|g| g.name.as_str()).collect();
        let suggest = |project_id: &str| -> Option<(&'a tabflow_site::User, String)> {
            if let Some(u) = explicit_new {
                return Some((u, "the new owner you named".into()));
            }
            let project = self.projects.get(project_id).map(|p| p.name.as_str());
            if let Some((name, why)) = self.p.learned.owner(project, &team_names)
                && let Some(u) = site.users.iter().find(|u| u.name == name)
                && u.id != leaver.id
                && licensed(u)
                && can_own(u)
            {
                return Some((u, why));
            }
            if let Some(p) = self.projects.get(project_id)
                && p.owner_id != leaver.id
                && let Some(u) = self.users.get(p.owner_id.as_str())
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
            let on_it: Vec<&tabflow_site::Subscription> = site
                .subscriptions
                .iter()
                .filter(|s| s.content.id == w.id || view_ids.contains(s.content.id.as_str()))
                .collect();
            let subscribers: BTreeSet<&str> = on_it.iter().map(|s| s.user_id.as_str()).collect();
            let subs = on_it.len();
            let alerts = site.data_alerts.iter().filter(|a| view_ids.contains(a.view_id.as_str())).count();
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
            let using: Vec<&tabflow_site::Workbook> =
                site.workbooks.iter().filter(|w| w.datasource_ids.contains(&d.id)).collect();
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
            .filter_map(|m| self.users.get(m.as_str()).copied())
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
            let project = self.projects.get(project_id).map(|p| p.name.as_str());
            if let Some((name, why)) = self.p.learned.owner(project, &team_names)
                && let Some(u) = site.users.iter().find(|u| u.name == name)
                && u.id != leaver.id
                && flow_owner(u)
            {
                return Ok((u, why));
            }
            if let Some(p) = self.projects.get(project_id)
                && p.owner_id != leaver.id
                && let Some(u) = self.users.get(p.owner_id.as_str())
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
                    .filter_map(|id| self.users.get(id))
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
        if intent.remove_access.unwrap_or(false) || delete_asked {
            let mut items =
                vec![Item { kind: "user".into(), id: leaver.id.clone(), name: leaver.name.clone(), ..Item::default() }];
            let mut changes = vec![];
            let group_list = |gs: &[&tabflow_site::Group]| {
                json!(gs.iter().map(|g| json!({"id": g.id, "name": g.name})).collect::<Vec<_>>())
            };
            if !teams.is_empty() {
                changes.push(Change {
                    item: leaver.id.clone(),
                    field: "groups".into(),
                    before: group_list(&teams),
                    after: json!([]),
                    before_id: None,
                    after_id: None,
                    after_ref: None,
                });
            }
            if leaver.site_role != "Unlicensed" {
                changes.push(Change {
                    item: leaver.id.clone(),
                    field: "site_role".into(),
                    before: json!(leaver.site_role),
                    after: json!("Unlicensed"),
                    before_id: None,
                    after_id: None,
                    after_ref: None,
                });
            }
            let resources: BTreeSet<(&str, &str)> =
                grants.iter().map(|r| (r.resource.kind.as_str(), r.resource.id.as_str())).collect();
            for (kind, id) in resources {
                if !matches!(kind, "workbook" | "datasource" | "project" | "flow") {
                    continue;
                }
                let before = self.rules_of(id);
                let after: Vec<Rule> = before
                    .iter()
                    .filter(|r| !(r.grantee.kind == "user" && r.grantee.id == leaver.id))
                    .cloned()
                    .collect();
                let name = match kind {
                    "workbook" => site.workbooks.iter().find(|w| w.id == id).map(|w| w.name.clone()),
                    "datasource" => site.datasources.iter().find(|d| d.id == id).map(|d| d.name.clone()),
                    "flow" => site.flows.iter().find(|f| f.id == id).map(|f| f.name.clone()),
                    _ => site.projects.iter().find(|p| p.id == id).map(|p| p.name.clone()),
                }
                .unwrap_or_default();
                items.push(Item {
                    kind: kind.into(),
                    id: id.into(),
                    name,
                    reason: Some(format!("explicit grant to {}", leaver.name)),
                    ..Item::default()
                });
                changes.push(Change {
                    item: id.into(),
                    field: "permissions".into(),
                    before: json!(before),
                    after: json!(after),
                    before_id: None,
                    after_id: None,
                    after_ref: None,
                });
            }
            if !changes.is_empty() {
                let s = self.step_id();
                let after = depends.clone();
                depends.push(s.clone());
                self.plan.steps.push(Step::new(
                    s,
                    StepKind::RemoveAccess,
                    format!(
                        "Remove {}'s access: leave {} groups, revoke {} explicit grants, set the site role to Unlicensed",
                        leaver.full_name,
                        teams.len(),
                        grants.len()
                    ),
                    after,
                    items,
                    changes,
                    json!({"note": if delete {
                        "the account is deleted by the next step, once it owns nothing"
                    } else {
                        "the user is not deleted: Tableau refuses to delete a user who owns content, and an Unlicensed user keeps the history"
                    }}),
                ));
            }
        }
        if let (true, Some(to)) = (delete, map_to) {
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
                depends.clone(),
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
                    }),
                    after: Value::Null,
                    before_id: None,
                    after_id: Some(to.id.clone()),
                    after_ref: None,
                }],
                json!({
                    "map_assets_to": {"id": to.id, "name": to.full_name},
                    "undo_restores": ["the account (new id)", "full name, email, site role, authentication", "group memberships", "explicit grants", "subscriptions", "favorites"],
                    "undo_cannot_restore": ["the account's id (LUID)", "sign-in history and usage attribution", "personal access tokens", "custom views", "data alerts and webhooks (they stay with the mapAssetsTo owner)"],
                }),
            ));
        }
    }

    // ---------------------------------------------------------------- permissions

    fn notify(&mut self, intent: &Notify) {
        let site = self.p.site;
        let content_owners = intent.audience == Some(tabflow_plan::intent::Audience::ContentOwners);
        if let Some(name) = text(&intent.project)
            && self.ground_project(name).is_none()
        {
            return;
        }
        // Who is told about which projects: project owners about the projects the plan's
        // write steps touch; content owners about the projects of their own items.
        let mut told: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for st in self.plan.steps.iter().filter(|s| s.is_write()) {
            for i in &st.items {
                let Some(project) = i.project.clone() else { continue };
                let who = if content_owners {
                    i.owner.as_ref().and_then(|o| site.users.iter().find(|u| &u.name == o || &u.full_name == o))
                } else {
                    site.projects
                        .iter()
                        .find(|p| p.name == project)
                        .and_then(|p| self.users.get(p.owner_id.as_str()).copied())
                };
                if let Some(u) = who {
                    told.entry(u.id.clone()).or_default().insert(project);
                }
            }
        }
        let mut items = vec![];
        let mut recipients = vec![];
        for (uid, projects) in &told {
            let Some(u) = self.users.get(uid.as_str()) else { continue };
            items.push(Item {
                kind: "user".into(),
                id: u.id.clone(),
                name: u.name.clone(),
                reason: Some(format!(
                    "{} of {}",
                    if content_owners { "owns content in" } else { "owns" },
                    projects.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
                ..Item::default()
            });
            recipients.push(json!({"id": u.id, "name": u.full_name, "email": u.email, "projects": projects}));
        }
        let depends: Vec<String> = self.plan.steps.iter().filter(|s| s.is_write()).map(|s| s.id.clone()).collect();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::NotifyOwners,
            format!(
                "Tell {} {} what changed, after the run (outbox; email and webhook when configured)",
                recipients.len(),
                if content_owners { "content owners" } else { "project owners" }
            ),
            depends,
            items,
            vec![],
            json!({"recipients": recipients, "audience": if content_owners { "content-owners" } else { "project-owners" }}),
        ));
    }
}

impl Builder<'_, '_> {
    /// A Phase-1 question: answered from the site read in a `read` step (`answer-query`,
    /// the answer in `details`); a name that is ambiguous or unknown becomes a question whose
    /// answer replaces the name; a question it cannot understand says so with examples.
    fn query(&mut self, intent: &Query, request: &str) {
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

/// Builds the draft plan for these intents. The draft is not sealed: the validator seals it
/// with the store's key (`tabflow_plan::validate`).
pub fn plan(request: &str, intents: Vec<Intent>, p: &Planner<'_>) -> Plan {
    let mut b = Builder {
        p,
        plan: Plan::draft(request, p.site_ref.clone(), intents.clone(), p.now),
        next_step: 0,
        next_q: 0,
        users: p.site.users.iter().map(|u| (u.id.as_str(), u)).collect(),
        projects: p.site.projects.iter().map(|x| (x.id.as_str(), x)).collect(),
        earlier_scope: None,
        moved_away: BTreeSet::new(),
        moving_step: None,
    };
    b.plan.notes.push(format!("usage source: {}", p.usage_source));
    if intents.is_empty() {
        b.ask(
            format!("I could not work out what to do with \"{request}\". Try e.g. \"archive workbooks in Finance not viewed in 90 days\", \"offboard jsmith and give his content to Tom Baker\" or \"audit permissions on content tagged sensitive\"."),
            vec![],
            None,
        );
    }
    for i in &intents {
        match i {
            Intent::ArchiveStaleContent(a) => b.stale_content(&Stale::archive(a), false),
            Intent::DeleteContent(d) => b.stale_content(&Stale::delete(d), true),
            Intent::OffboardUser(o) => b.offboard(o),
            Intent::AuditPermissions(a) => b.permissions(&permissions::Request::audit(a), false),
            Intent::UpdatePermissions(u) => b.permissions(&permissions::Request::update(u), true),
            Intent::NotifyOwners(n) => b.notify(n),
            Intent::ConsolidateDatasources(c) => b.consolidate(c),
            Intent::MigrateDatasource(m) => b.migrate(m),
            Intent::Query(q) => b.query(q, request),
        }
    }
    learn::mark_removed(&mut b.plan, &p.learned);
    b.plan
}

#[cfg(test)]
mod offboard_tests {
    use super::*;

    fn plan_for(site: &Site, params: Value) -> Plan {
        plan_answered(site, params, &[])
    }

    fn plan_answered(site: &Site, params: Value, answers: &[(&str, &str)]) -> Plan {
        let policy = Policy::default();
        let p = Planner {
            site,
            site_ref: SiteRef { server: "demo".into(), content_url: String::new(), id: "s".into() },
            policy: &policy,
            signed_in: "admin".into(),
            now: site.now,
            answers: answers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            usage_source: "test".into(),
            learned: Default::default(),
        };
        let params = params.as_object().cloned().unwrap_or_default();
        plan("offboard", vec![Intent::from_parts("offboard-user", params).unwrap()], &p)
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

#[cfg(test)]
mod stale_datasource_tests {
    use super::*;

    #[test]
    fn unused_datasources_are_archived_unless_certified_or_still_used() {
        let site = tabflow_site::generate::demo();
        let policy = Policy::default();
        let p = Planner {
            site: &site,
            site_ref: SiteRef { server: "demo".into(), content_url: String::new(), id: "s".into() },
            policy: &policy,
            signed_in: "admin".into(),
            now: site.now,
            answers: [("q1".to_string(), "archive-all".to_string())].into(),
            usage_source: "test".into(),
            learned: Default::default(),
        };
        let intent = |content: &str| {
            let params = json!({"content": content, "stale_days": 30}).as_object().cloned().unwrap();
            Intent::from_parts("archive-stale-content", params).unwrap()
        };
        let plan = plan("archive", vec![intent("datasources")], &p);
        let cutoff = site.now - Duration::days(30);
        let archive = site.projects.iter().find(|x| x.name == "Archive").unwrap();
        // Independently: not accessed since the cutoff (or never), not certified, not edited
        // since, in no workbook, not already in the archive.
        let expected: BTreeSet<&str> = site
            .datasources
            .iter()
            .filter(|d| d.project_id != archive.id)
            .filter(|d| match d.last_accessed_at {
                Some(l) => l < cutoff,
                None => d.total_hits == 0,
            })
            .filter(|d| !d.certified && d.updated_at <= cutoff)
            .filter(|d| !site.workbooks.iter().any(|w| w.datasource_ids.contains(&d.id)))
            .map(|d| d.id.as_str())
            .collect();
        let step = plan.steps.iter().find(|s| s.kind == StepKind::ArchiveDatasources);
        let got: BTreeSet<&str> = step.map(|s| s.items.iter().map(|i| i.id.as_str()).collect()).unwrap_or_default();
        assert_eq!(got, expected);
        assert!(!plan.steps.iter().any(|s| s.kind == StepKind::ArchiveWorkbooks), "workbooks were not asked for");
        // Each planned datasource moves to the archive and is tagged.
        if let Some(s) = step {
            for i in &s.items {
                let fields: BTreeSet<&str> = s.changes_of(&i.id).map(|c| c.field.as_str()).collect();
                assert_eq!(fields, ["project", "tags"].into_iter().collect());
            }
        }
        // "all": a datasource whose only workbooks are archived too may go along.
        let both = plan_fn(&p, intent("all"));
        let wb_step = both.steps.iter().find(|s| s.kind == StepKind::ArchiveWorkbooks).unwrap();
        if let Some(ds) = both.steps.iter().find(|s| s.kind == StepKind::ArchiveDatasources) {
            assert!(ds.depends_on.contains(&wb_step.id), "datasources move after their workbooks");
        }
    }

    fn plan_fn(p: &Planner<'_>, i: Intent) -> Plan {
        plan("archive", vec![i], p)
    }
}
