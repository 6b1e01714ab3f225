//! Archive and (staged) delete of stale content: what is stale, what is excluded and why,
//! where it goes (the archive or quarantine project), the move/tag steps and the datasources
//! that become unused.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tabflow_plan::intent::{Archive, Delete};
use tabflow_plan::plan::{Change, Item, Step, StepKind};

use crate::builder::{Builder, date, day, text};

/// What an archive or a (staged) delete selects: the parameters the two intents share.
pub(crate) struct Stale<'i> {
    pub(crate) project: Option<&'i str>,
    pub(crate) stale_days: Option<u32>,
    pub(crate) since: Option<&'i str>,
    pub(crate) until: Option<&'i str>,
    pub(crate) archive_project: Option<&'i str>,
    pub(crate) tags: Vec<String>,
    /// `workbooks` (default), `datasources` or `all`.
    pub(crate) content: Option<&'i str>,
}

impl<'i> Stale<'i> {
    pub(crate) fn archive(a: &'i Archive) -> Stale<'i> {
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

    pub(crate) fn delete(d: &'i Delete) -> Stale<'i> {
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

impl<'p, 'a> Builder<'p, 'a> {
    /// Finds stale workbooks and moves them to the archive (or quarantine) project.
    pub(crate) fn stale_content(&mut self, intent: &Stale<'_>, delete: bool) {
        let site = self.p.site;
        let stale_days = i64::from(intent.stale_days.unwrap_or(90).max(1));
        let since = intent.since.and_then(date);
        let until = intent.until.and_then(date);
        let cutoff = since.unwrap_or(tabflow_site::time::days_before(self.p.now, stale_days));
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
        // Days since the last view of every workbook looked at (none: never viewed), for the
        // report's histogram; workbooks with views but no date are left out of it.
        let mut ages: Vec<Option<i64>> = vec![];
        // Workbooks (default), datasources, or both.
        let content = intent.content.unwrap_or("workbooks").to_ascii_lowercase();
        let want_wb = !content.starts_with("datasource");
        let want_ds = content.starts_with("datasource") || content == "all";
        // Names already in the destination (ASCII case folded, as the comparison below is).
        let in_dest: HashSet<String> = match dest {
            Some(d) if want_wb => {
                site.workbooks.iter().filter(|x| x.project_id == d.id).map(|x| x.name.to_ascii_lowercase()).collect()
            }
            _ => HashSet::new(),
        };
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
            match last {
                Some(l) => ages.push(Some((self.p.now - l).num_days().max(0))),
                None if total == 0 => ages.push(None),
                None => {}
            }
            let exclude = |why: String| json!({"id": w.id, "name": w.name, "reason": why});
            if let Some(t) = w.tags.iter().find(|t| self.p.policy.is_protected_tag(t)) {
                excluded.push(exclude(format!("protected by policy (tag '{t}')")));
                continue;
            }
            if w.created_at > cutoff || until.is_some_and(|u| w.created_at > tabflow_site::time::days_after(u, 1)) {
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
                && in_dest.contains(&w.name.to_ascii_lowercase())
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
                    "chart": crate::chart::days_histogram(
                        &format!("Workbooks in {scope_label} by days since last view"),
                        "workbooks",
                        &ages,
                        (self.p.now - cutoff).num_days(),
                    ),
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
    pub(crate) fn stale_datasources(
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
        // Datasource names already in the destination (ASCII case folded).
        let in_dest: HashSet<String> = match dest {
            Some(x) => {
                site.datasources.iter().filter(|o| o.project_id == x.id).map(|o| o.name.to_ascii_lowercase()).collect()
            }
            None => HashSet::new(),
        };
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
                let staying = self.workbooks_using(&d.id).iter().filter(|w| !leaving.contains(w.id.as_str())).count();
                if staying > 0 {
                    Some(format!("{staying} workbooks that stay still use it"))
                } else if (dest.is_some() && in_dest.contains(&d.name.to_ascii_lowercase()))
                    || !taken.insert(d.name.to_lowercase())
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
    pub(crate) fn move_and_tag(
        &self,
        items: &[Item],
        dest_name: &str,
        dest_id: Option<&String>,
        dest_ref: Option<&String>,
        tag: &str,
        dated: &str,
    ) -> Vec<Change> {
        let mut changes = vec![];
        for it in items {
            let (project_id, tags) = match it.kind.as_str() {
                "datasource" => match self.index.datasource(&it.id) {
                    Some(d) => (&d.project_id, &d.tags),
                    None => continue,
                },
                _ => match self.index.workbook(&it.id) {
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
    pub(crate) fn archive_destination(
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

    pub(crate) fn push_datasource_step(
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
}

#[cfg(test)]
mod stale_datasource_tests {
    use super::*;
    use tabflow_plan::plan::{Intent, Plan, SiteRef};
    use tabflow_plan::policy::Policy;

    use crate::{Planner, plan};

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
            license_notices: vec![],
        };
        let intent = |content: &str| {
            let params = json!({"content": content, "stale_days": 30}).as_object().cloned().unwrap();
            Intent::from_parts("archive-stale-content", params).unwrap()
        };
        let plan = plan("archive", vec![intent("datasources")], &p);
        let cutoff = site.now - chrono::Duration::days(30);
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
