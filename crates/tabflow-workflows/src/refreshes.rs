//! Extract refresh health (`review-extract-refreshes`): every extract refresh task with its
//! schedule, its recent failures (consecutive failures, the last failed jobs' notes), how long
//! it runs and the days since its content was last viewed; recommendations — delete the tasks
//! of content nobody views, fix or delete failing ones, resume or clear suspended schedules,
//! move heavy refreshes that run in peak hours off-peak.
//!
//! Actions: `report` (the read step only), `suspend-unused` (delete the tasks of unused
//! content: each an `exists` change whose before-value describes the task, so a rollback
//! re-creates it on the same schedule, a new id), `rebalance` (a task with a schedule of its
//! own, Cloud style, gets an off-peak start time: a `schedule` change undone exactly; a task
//! on a Server schedule moves the only way Tableau Server allows, by being re-created on the
//! off-peak Extract schedule and the old task deleted: a `schedule_id` change whose undo
//! re-creates it on its old schedule), `suspend-schedules` and `resume-schedules` (a Server
//! schedule's `state`, undone exactly). A Server schedule is server-wide: suspending or
//! resuming it acts on every site's refreshes on it, and a site's sign-in sees only its own,
//! so the plan says how many this site has and that other sites' are not counted.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tabflow_plan::intent::{RefreshAction, ReviewRefreshes};
use tabflow_plan::plan::{Change, Item, Step, StepKind};
use tabflow_site::{ExtractRefresh, Recurrence, RefreshJob, Schedule};

use crate::builder::{Builder, day, text};

/// Peak hours: refreshes that start from 07:00 to 18:59 (server time) compete with people.
const PEAK: std::ops::Range<u32> = 7..19;
/// A refresh that runs this long (seconds, mean of its recent successful runs) is heavy.
const HEAVY_SECONDS: i64 = 15 * 60;
/// Without run times, an extract this large (bytes) is heavy.
const HEAVY_BYTES: u64 = 200_000_000;
/// The off-peak start a rebalanced task gets when the site has no off-peak Extract schedule.
const OFF_PEAK_START: &str = "02:00:00";

/// One task as the review sees it.
struct Row<'a> {
    task: &'a ExtractRefresh,
    name: String,
    project_id: String,
    last_view: Option<DateTime<Utc>>,
    unused: bool,
    schedule: Option<&'a Schedule>,
    recurrence: Option<&'a Recurrence>,
    mean_seconds: Option<i64>,
    size: u64,
    failures: Vec<&'a RefreshJob>,
}

impl Row<'_> {
    fn peak(&self) -> bool {
        match self.recurrence {
            Some(r) if r.frequency == "Hourly" => true,
            Some(r) => r.start_hour().is_some_and(|h| PEAK.contains(&h)),
            None => false,
        }
    }
    fn heavy(&self) -> bool {
        match self.mean_seconds {
            Some(s) => s >= HEAVY_SECONDS,
            None => self.size >= HEAVY_BYTES,
        }
    }
    fn failing(&self) -> bool {
        self.task.consecutive_failures > 0
    }
    fn suspended(&self) -> bool {
        self.schedule.is_some_and(|s| s.state == "Suspended")
    }
    fn when(&self) -> String {
        match (self.schedule, self.recurrence) {
            (Some(s), _) => format!("{} ({})", s.name, s.state),
            (None, Some(r)) => format!("own schedule: {} at {}", r.frequency, r.start_time),
            (None, None) => "no schedule".into(),
        }
    }
}

/// The description a rollback re-creates a task from.
fn task_value(t: &ExtractRefresh) -> Value {
    json!({
        "id": t.id,
        "target": {"type": t.target.kind, "id": t.target.id},
        "schedule_id": t.schedule_id,
        "own_schedule": t.own_schedule,
        "type": t.kind,
        "priority": t.priority,
    })
}

impl<'p, 'a> Builder<'p, 'a> {
    pub(crate) fn review_refreshes(&mut self, r: &ReviewRefreshes) {
        let site: &'a tabflow_site::Site = self.p.site;
        // As archive-stale-content does: 0 days would call everything unused.
        let days = r.unused_days.unwrap_or(90).max(1);
        let action = r.action.unwrap_or(RefreshAction::Report);
        let scope = match text(&r.project) {
            Some(name) => match self.ground_project(name) {
                Some(p) => Some((self.subtree(&p.id), p.name.clone())),
                None => return,
            },
            None => None,
        };
        let cutoff = site.now - Duration::days(i64::from(days));
        let schedules: HashMap<&str, &Schedule> = site.schedules.iter().map(|s| (s.id.as_str(), s)).collect();
        let workbooks: HashMap<&str, &tabflow_site::Workbook> =
            site.workbooks.iter().map(|w| (w.id.as_str(), w)).collect();
        let datasources: HashMap<&str, &tabflow_site::Datasource> =
            site.datasources.iter().map(|d| (d.id.as_str(), d)).collect();
        // Jobs by task (the emulator's history names it) or, read through the API, by content.
        let mut jobs_of: HashMap<&str, Vec<&RefreshJob>> = HashMap::new();
        for j in &site.refresh_jobs {
            let key = if j.task_id.is_empty() { j.target.id.as_str() } else { j.task_id.as_str() };
            jobs_of.entry(key).or_default().push(j);
        }

        let mut rows: Vec<Row<'a>> = Vec::new();
        for t in &site.extract_refreshes {
            let (name, project_id, last_view, created, size) = match t.target.kind.as_str() {
                "workbook" => match workbooks.get(t.target.id.as_str()) {
                    Some(w) => (w.name.clone(), w.project_id.clone(), w.last_viewed_at(), Some(w.created_at), w.size),
                    None => continue,
                },
                _ => match datasources.get(t.target.id.as_str()) {
                    Some(d) => {
                        // A datasource is used when it is accessed or a workbook on it is viewed.
                        let via = self.workbooks_using(&d.id).iter().filter_map(|w| w.last_viewed_at()).max();
                        (d.name.clone(), d.project_id.clone(), d.last_accessed_at.max(via), d.created_at, d.size)
                    }
                    None => continue,
                },
            };
            if let Some((projects, _)) = &scope
                && !projects.contains(&project_id)
            {
                continue;
            }
            let unused = last_view.is_none_or(|v| v < cutoff) && created.is_none_or(|c| c < cutoff);
            let schedule = schedules.get(t.schedule_id.as_str()).copied();
            let recurrence = schedule.map(|s| &s.recurrence).or(t.own_schedule.as_ref());
            let jobs = jobs_of
                .get(t.id.as_str())
                .or_else(|| jobs_of.get(t.target.id.as_str()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let ok: Vec<i64> = jobs
                .iter()
                .filter(|j| j.finish_code == 0)
                .map(|j| (j.completed_at - j.started_at).num_seconds().max(0))
                .collect();
            let mean_seconds = (!ok.is_empty()).then(|| ok.iter().sum::<i64>() / ok.len() as i64);
            let mut failures: Vec<&RefreshJob> = jobs.iter().copied().filter(|j| j.finish_code == 1).collect();
            failures.sort_by_key(|j| std::cmp::Reverse(j.completed_at));
            rows.push(Row {
                task: t,
                name,
                project_id,
                last_view,
                unused,
                schedule,
                recurrence,
                mean_seconds,
                size,
                failures,
            });
        }

        // Recommendations, one per finding.
        let mut recommendations: Vec<Value> = Vec::new();
        let mut found: Vec<Value> = Vec::new();
        for row in &rows {
            let mut why: Vec<String> = Vec::new();
            if row.unused {
                why.push(match row.last_view {
                    Some(v) => format!("nobody viewed it since {} ({days}+ days)", day(v)),
                    None => "never viewed".into(),
                });
                recommendations.push(json!({
                    "task": row.task.id, "content": row.name, "kind": "delete-unused",
                    "text": format!("Delete the refresh of {} ({}): {}", row.name, row.task.target.kind, why.last().cloned().unwrap_or_default()),
                }));
            }
            if row.failing() {
                let notes = row.failures.first().map(|j| j.notes.clone()).unwrap_or_default();
                why.push(format!("failed {} times in a row", row.task.consecutive_failures));
                recommendations.push(json!({
                    "task": row.task.id, "content": row.name, "kind": "fix-failing",
                    "text": format!("Fix or delete the failing refresh of {} ({} failures in a row){}", row.name, row.task.consecutive_failures,
                        if notes.is_empty() { String::new() } else { format!(": {notes}") }),
                }));
            }
            if row.suspended() {
                why.push("its schedule is suspended".into());
            }
            if row.heavy() && row.peak() && !row.suspended() {
                why.push(format!(
                    "heavy ({}) and runs in peak hours",
                    row.mean_seconds
                        .map(|s| format!("{} min per run", s / 60))
                        .unwrap_or_else(|| format!("{} MB", row.size / 1_000_000))
                ));
                recommendations.push(json!({
                    "task": row.task.id, "content": row.name, "kind": "move-off-peak",
                    "text": format!("Move the refresh of {} off-peak (now {})", row.name, row.when()),
                }));
            }
            found.push(json!({
                "id": row.task.id,
                "content": row.name,
                "content_type": row.task.target.kind,
                "content_id": row.task.target.id,
                "project": self.project_name(&row.project_id),
                "schedule": row.when(),
                "schedule_id": row.task.schedule_id,
                "type": row.task.kind,
                "consecutive_failures": row.task.consecutive_failures,
                "last_failure": row.failures.first().map(|j| json!({"at": j.completed_at, "notes": j.notes})),
                "last_viewed": row.last_view.map(day),
                "unused": row.unused,
                "peak": row.peak(),
                "heavy": row.heavy(),
                "mean_minutes": row.mean_seconds.map(|s| s / 60),
                "why": why,
            }));
        }
        // Schedules: suspended ones that still hold tasks, active ones that only refresh
        // unused content.
        let mut schedule_rows: Vec<Value> = Vec::new();
        for s in site.schedules.iter().filter(|s| s.kind == "Extract") {
            let on: Vec<&Row<'_>> = rows.iter().filter(|r| r.task.schedule_id == s.id).collect();
            let unused = on.iter().filter(|r| r.unused).count();
            schedule_rows.push(json!({
                "id": s.id, "name": s.name, "state": s.state, "frequency": s.recurrence.frequency,
                "start": s.recurrence.start_time, "tasks": on.len(), "unused": unused,
                "peak": s.recurrence.frequency == "Hourly" || s.recurrence.start_hour().is_some_and(|h| PEAK.contains(&h)),
            }));
            if s.state == "Suspended" && !on.is_empty() {
                recommendations.push(json!({
                    "schedule": s.id, "kind": "suspended-schedule",
                    "text": format!("The schedule {} is suspended and holds {} refreshes that no longer run: resume it or delete them", s.name, on.len()),
                }));
            } else if s.state == "Active" && !on.is_empty() && unused == on.len() {
                recommendations.push(json!({
                    "schedule": s.id, "kind": "suspend-schedule",
                    "text": format!("Every refresh on {} is of unused content: suspend the schedule", s.name),
                }));
            }
        }
        let count = |f: &dyn Fn(&Row<'_>) -> bool| rows.iter().filter(|r| f(r)).count();
        let failing = count(&|r| r.failing());
        let unused = count(&|r| r.unused);
        let heavy_peak = count(&|r| r.heavy() && r.peak() && !r.suspended());
        let on_suspended = count(&|r| r.suspended());
        let recent_failures: Vec<Value> = {
            let mut all: Vec<&RefreshJob> = rows.iter().flat_map(|r| r.failures.iter().copied()).collect();
            all.sort_by(|a, b| b.completed_at.cmp(&a.completed_at).then(a.id.cmp(&b.id)));
            all.iter()
                .take(50)
                .map(|j| {
                    let name = rows.iter().find(|r| r.task.target.id == j.target.id).map(|r| r.name.clone());
                    json!({"job": j.id, "content": name, "at": j.completed_at, "notes": j.notes})
                })
                .collect()
        };
        let scope_label = match &scope {
            Some((_, p)) => format!(" in {p}"),
            None => String::new(),
        };
        let find = self.step_id();
        self.plan.steps.push(Step::new(
            find.clone(),
            StepKind::FindExtractRefreshes,
            format!(
                "Review extract refreshes{scope_label}: {} tasks, {failing} failing, {unused} of content unused for {days}+ days, {heavy_peak} heavy in peak hours, {on_suspended} on suspended schedules",
                rows.len()
            ),
            vec![],
            vec![],
            vec![],
            json!({
                "action": action.as_str(),
                "unused_days": days,
                "cutoff": day(cutoff),
                "tasks": found,
                "schedules": schedule_rows,
                "recent_failures": recent_failures,
                "recommendations": recommendations,
                "counts": {"tasks": rows.len(), "failing": failing, "unused": unused, "heavy_in_peak": heavy_peak, "on_suspended_schedules": on_suspended},
                "rule": format!("unused: the content (a workbook, or a datasource and the workbooks on it) has no view since {} and is older than that; failing: consecutive failures > 0; heavy: {} min or more per run ({} MB when no run is known); peak: starts {:02}:00-{:02}:59 or hourly", day(cutoff), HEAVY_SECONDS / 60, HEAVY_BYTES / 1_000_000, PEAK.start, PEAK.end - 1),
            }),
        ));
        match action {
            RefreshAction::Report => {}
            RefreshAction::SuspendUnused => self.remove_unused_refreshes(&rows, find, days, &scope_label),
            RefreshAction::Rebalance => self.rebalance_refreshes(&rows, find, &scope_label),
            RefreshAction::SuspendSchedules => self.set_schedule_states(&rows, find, days, &scope_label, true),
            RefreshAction::ResumeSchedules => self.set_schedule_states(&rows, find, days, &scope_label, false),
        }
    }

    fn remove_unused_refreshes(&mut self, rows: &[Row<'_>], find: String, days: u32, scope_label: &str) {
        let mut items = vec![];
        let mut changes = vec![];
        for row in rows.iter().filter(|r| r.unused) {
            items.push(Item {
                kind: "extract-refresh".into(),
                id: row.task.id.clone(),
                name: format!("{} ({})", row.name, row.task.target.kind),
                project: Some(self.project_name(&row.project_id)),
                reason: Some(match row.last_view {
                    Some(v) => format!("not viewed since {}; {}", day(v), row.when()),
                    None => format!("never viewed; {}", row.when()),
                }),
                size: Some(row.size),
                ..Item::default()
            });
            changes.push(Change {
                item: row.task.id.clone(),
                field: "exists".into(),
                before: task_value(row.task),
                after: Value::Null,
                before_id: None,
                after_id: None,
                after_ref: None,
            });
        }
        if items.is_empty() {
            self.plan
                .notes
                .push(format!("Nothing to do: no extract refresh{scope_label} is of content unused for {days}+ days."));
            return;
        }
        let n = items.len();
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::RemoveExtractRefreshes,
            format!("Delete {n} extract refresh tasks of content unused for {days}+ days{scope_label} (a rollback re-creates them)"),
            vec![find],
            items,
            changes,
            json!({
                "undo": "re-creates each task for the same content on the same schedule (Server: add to schedule) or with the same schedule of its own (Cloud), as a new task with a new id; its run history and failure count start over",
                "why_not_suspend": "Tableau suspends whole schedules, not single tasks: the tasks of unused content are deleted instead",
            }),
        ));
    }

    fn rebalance_refreshes(&mut self, rows: &[Row<'_>], find: String, scope_label: &str) {
        let site = self.p.site;
        let off_peak = off_peak_schedule(&site.schedules);
        let start = off_peak.map(|s| s.recurrence.start_time.clone()).unwrap_or_else(|| OFF_PEAK_START.into());
        let mut own = (vec![], vec![]);
        let mut moved = (vec![], vec![]);
        let mut not_moved: Vec<Value> = vec![];
        for row in rows.iter().filter(|r| r.heavy() && r.peak() && !r.suspended()) {
            let load = row
                .mean_seconds
                .map(|s| format!("{} min", s / 60))
                .unwrap_or_else(|| format!("{} MB", row.size / 1_000_000));
            let item = |reason: String| Item {
                kind: "extract-refresh".into(),
                id: row.task.id.clone(),
                name: format!("{} ({})", row.name, row.task.target.kind),
                project: Some(self.project_name(&row.project_id)),
                reason: Some(reason),
                size: Some(row.size),
                ..Item::default()
            };
            if let Some(recurrence) = row.task.own_schedule.as_ref().filter(|_| row.task.schedule_id.is_empty()) {
                let after = off_peak_recurrence(recurrence, &start);
                own.0.push(item(format!(
                    "{load} a run, starts {} ({}) in peak hours",
                    recurrence.start_time, recurrence.frequency
                )));
                own.1.push(Change {
                    item: row.task.id.clone(),
                    field: "schedule".into(),
                    before: serde_json::to_value(recurrence).unwrap_or_default(),
                    after: serde_json::to_value(&after).unwrap_or_default(),
                    before_id: None,
                    after_id: None,
                    after_ref: None,
                });
                continue;
            }
            match server_move(row, off_peak, &site.extract_refreshes) {
                Err(why) => not_moved.push(json!({
                    "task": row.task.id, "content": row.name, "schedule": row.when(), "why": why,
                    "to": off_peak.map(|s| s.name.clone()),
                })),
                Ok(to) => {
                    moved.0.push(item(format!(
                        "{load} a run on {} in peak hours; re-created on {} ({} {})",
                        row.when(),
                        to.name,
                        to.recurrence.frequency,
                        to.recurrence.start_time
                    )));
                    moved.1.push(Change {
                        item: row.task.id.clone(),
                        field: "schedule_id".into(),
                        before: task_value(row.task),
                        after: json!({"schedule_id": to.id, "schedule": to.name}),
                        before_id: Some(row.task.schedule_id.clone()),
                        after_id: Some(to.id.clone()),
                        after_ref: None,
                    });
                }
            }
        }
        if !not_moved.is_empty() {
            self.plan.notes.push(format!(
                "{} heavy refreshes on Server schedules in peak hours are not moved (see not_moved for why): {}.",
                not_moved.len(),
                not_moved
                    .iter()
                    .filter_map(|n| n["why"].as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if own.0.is_empty() && moved.0.is_empty() {
            self.plan
                .notes
                .push(format!("Nothing to rebalance{scope_label}: no heavy refresh that can move runs in peak hours."));
            if let Some(step) = self.plan.steps.iter_mut().find(|s| s.id == find) {
                step.details["not_moved"] = json!(not_moved);
            }
            return;
        }
        if !own.0.is_empty() {
            let n = own.0.len();
            let s = self.step_id();
            self.plan.steps.push(Step::new(
                s,
                StepKind::RescheduleExtractRefreshes,
                format!("Move {n} heavy extract refreshes with a schedule of their own{scope_label} to an off-peak start ({start}); undone exactly"),
                vec![find.clone()],
                own.0,
                own.1,
                json!({"off_peak_start": start, "off_peak_schedule": off_peak.map(|s| s.name.clone()), "not_moved": if moved.0.is_empty() { json!(not_moved) } else { json!([]) }}),
            ));
        }
        if let Some(to) = off_peak.filter(|_| !moved.0.is_empty()) {
            let n = moved.0.len();
            let s = self.step_id();
            self.plan.notes.push(format!(
                "Tableau Server moves a refresh to another schedule only by re-creating it there: each of the {n} tasks on a Server schedule gets a new task (a new id) on '{}' and the old task is deleted; the run history and failure count start over. A rollback re-creates each on its old schedule (another new id) and deletes the moved one.",
                to.name
            ));
            self.plan.steps.push(Step::new(
                s,
                StepKind::MoveExtractRefreshes,
                format!(
                    "Move {n} heavy extract refreshes{scope_label} from peak-hour Server schedules to '{}' ({} {}): re-created there, old tasks deleted",
                    to.name, to.recurrence.frequency, to.recurrence.start_time
                ),
                vec![find],
                moved.0,
                moved.1,
                json!({
                    "to_schedule": {"id": to.id, "name": to.name, "frequency": to.recurrence.frequency, "start": to.recurrence.start_time},
                    "how": "PUT /sites/{site}/schedules/{to}/workbooks|datasources adds the content to the off-peak schedule (a new task), then the old task is deleted",
                    "undo": "re-creates each task on its old schedule with its type and priority (a new id) and deletes the moved task (its id is in the run's journal)",
                    "not_moved": not_moved,
                }),
            ));
        }
    }

    /// `suspend-schedules` (`suspend`): active Extract schedules whose every refresh on this
    /// site is of unused content; `resume-schedules`: suspended ones holding refreshes of
    /// content still used. One `state` change per schedule, undone exactly.
    fn set_schedule_states(&mut self, rows: &[Row<'_>], find: String, days: u32, scope_label: &str, suspend: bool) {
        let site = self.p.site;
        let (from, to, doing) =
            if suspend { ("Active", "Suspended", "suspending") } else { ("Suspended", "Active", "resuming") };
        let mut items = vec![];
        let mut changes = vec![];
        let mut left: Vec<Value> = vec![];
        let mut counts: Vec<String> = vec![];
        for s in site.schedules.iter().filter(|s| s.kind == "Extract" && s.state == from) {
            let on: Vec<&Row<'_>> = rows.iter().filter(|r| r.task.schedule_id == s.id).collect();
            let all = site.extract_refreshes.iter().filter(|t| t.schedule_id == s.id).count();
            let unused: Vec<&str> = on.iter().filter(|r| r.unused).map(|r| r.name.as_str()).collect();
            let used: Vec<&str> = on.iter().filter(|r| !r.unused).map(|r| r.name.as_str()).collect();
            let decision = schedule_decision(suspend, on.len(), all, used.len());
            if let Err(why) = decision {
                if !on.is_empty() {
                    left.push(json!({"schedule": s.id, "name": s.name, "why": why}));
                }
                continue;
            }
            let list = |v: &[&str]| {
                let mut v = v.to_vec();
                v.sort_unstable();
                let more = v.len().saturating_sub(5);
                let mut t = v.into_iter().take(5).collect::<Vec<_>>().join(", ");
                if more > 0 {
                    t.push_str(&format!(" and {more} more"));
                }
                t
            };
            let reason = if suspend {
                format!(
                    "this site has {all} refreshes on it, all of content unused for {days}+ days ({}); other sites' refreshes on it are not visible from this site",
                    list(&unused)
                )
            } else {
                format!(
                    "suspended, and this site has {all} refreshes on it, {} of content still used ({}){}; other sites' refreshes on it are not visible from this site",
                    used.len(),
                    list(&used),
                    if unused.is_empty() {
                        String::new()
                    } else {
                        format!("; resuming also restarts {} of unused content ({})", unused.len(), list(&unused))
                    }
                )
            };
            counts.push(format!(
                "'{}' ({} {} at {}): {all} on this site",
                s.name,
                s.recurrence.frequency,
                verb_state(from),
                s.recurrence.start_time
            ));
            items.push(Item {
                kind: "schedule".into(),
                id: s.id.clone(),
                name: s.name.clone(),
                reason: Some(reason),
                ..Item::default()
            });
            changes.push(Change {
                item: s.id.clone(),
                field: "state".into(),
                before: json!(from),
                after: json!(to),
                before_id: None,
                after_id: None,
                after_ref: None,
            });
        }
        if items.is_empty() {
            self.plan.notes.push(if site.schedules.is_empty() {
                "Nothing to do: this site has no Server schedules (on Tableau Cloud each refresh has a schedule of its own; suspend-unused deletes those of unused content).".to_string()
            } else if suspend {
                format!("Nothing to suspend{scope_label}: no active Extract schedule has only refreshes of content unused for {days}+ days.")
            } else {
                format!("Nothing to resume{scope_label}: no suspended Extract schedule holds a refresh of content used in the last {days} days.")
            });
            if let Some(step) = self.plan.steps.iter_mut().find(|s| s.id == find) {
                step.details["schedules_left"] = json!(left);
            }
            return;
        }
        let n = items.len();
        let server_wide = format!(
            "A Tableau Server schedule is server-wide: {doing} it {} the refreshes on it on every site of the server, not only this one. This site has on it: {}. Other sites' refreshes on it are not visible from this site's sign-in and are not counted. A rollback sets each schedule back to {from}.",
            if suspend { "stops" } else { "restarts" },
            counts.join("; ")
        );
        self.plan.notes.push(server_wide.clone());
        let s = self.step_id();
        self.plan.steps.push(Step::new(
            s,
            StepKind::SetScheduleState,
            format!(
                "{} {n} Server schedule{}{scope_label} ({}) — server-wide: every site's refreshes on {} {}; undone exactly",
                if suspend { "Suspend" } else { "Resume" },
                if n == 1 { "" } else { "s" },
                items.iter().map(|i| format!("'{}'", i.name)).collect::<Vec<_>>().join(", "),
                if n == 1 { "it" } else { "them" },
                if suspend { "stop" } else { "run again" },
            ),
            vec![find],
            items,
            changes,
            json!({"state": to, "server_wide": server_wide, "left": left}),
        ));
    }
}

/// How a schedule in `state` reads in a sentence.
fn verb_state(state: &str) -> &'static str {
    if state == "Active" { "active" } else { "suspended" }
}

/// Whether a schedule is suspended (`suspend`) or resumed: `on` refreshes of this site on it
/// are in the review's scope out of `all`, `used` of them of content still used. Suspending
/// needs every one of them in scope and unused (a refresh outside the scope is one the
/// request did not look at); resuming, at least one used.
fn schedule_decision(suspend: bool, on: usize, all: usize, used: usize) -> Result<(), String> {
    match (suspend, on, used) {
        (_, 0, _) => Err("no refresh of this site on it".into()),
        (true, _, 0) if on == all => Ok(()),
        (true, _, 0) => Err(format!("{} of its {all} refreshes are outside the review's scope", all - on)),
        (true, _, _) => Err(format!("{used} of its refreshes are of content still used")),
        (false, _, 0) => {
            Err("every refresh on it is of unused content: delete them (suspend-unused) rather than resume it".into())
        }
        (false, _, _) => Ok(()),
    }
}

/// The off-peak Extract schedule rebalanced refreshes go to: the earliest-starting active,
/// daily one that starts outside peak hours.
fn off_peak_schedule(schedules: &[Schedule]) -> Option<&Schedule> {
    schedules
        .iter()
        .filter(|s| s.kind == "Extract" && s.state == "Active" && s.recurrence.frequency == "Daily")
        .filter(|s| s.recurrence.start_hour().is_some_and(|h| !PEAK.contains(&h)))
        .min_by_key(|s| s.recurrence.start_hour())
}

/// A task's own recurrence moved to the off-peak start (an hourly one becomes daily).
fn off_peak_recurrence(own: &Recurrence, start: &str) -> Recurrence {
    let mut after = own.clone();
    after.start_time = start.to_string();
    after.end_time.clear();
    if after.frequency == "Hourly" {
        after.frequency = "Daily".into();
        after.intervals = vec![("hours".into(), "24".into())];
    }
    after
}

/// Where a heavy peak-hour task on a Server schedule moves: the off-peak schedule, unless
/// there is none or its content already refreshes there (Tableau allows one task per content
/// and schedule).
fn server_move<'s>(
    row: &Row<'_>,
    off_peak: Option<&'s Schedule>,
    tasks: &[ExtractRefresh],
) -> Result<&'s Schedule, String> {
    let to = off_peak.ok_or_else(|| {
        "no active daily Extract schedule starts off-peak on this server: create one (or resume one), then rebalance again"
            .to_string()
    })?;
    if tasks.iter().any(|t| t.schedule_id == to.id && t.target.id == row.task.target.id) {
        return Err(format!(
            "{} already refreshes on '{}': delete this peak-hour task instead (suspend-unused does for unused content)",
            row.name, to.name
        ));
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tabflow_plan::plan::{Effect, Plan, RollbackClass};

    use super::*;

    fn plan(site: &tabflow_site::Site, action: &str) -> Plan {
        crate::plan_intent(site, "review-extract-refreshes", json!({"action": action}))
    }

    fn step(plan: &Plan, kind: StepKind) -> Option<&Step> {
        plan.steps.iter().find(|s| s.kind == kind)
    }

    fn schedule<'s>(site: &'s tabflow_site::Site, name: &str) -> &'s Schedule {
        site.schedules.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn suspend_schedules_suspends_only_the_schedule_whose_every_refresh_is_unused_and_says_it_is_server_wide() {
        let site = tabflow_site::generate::demo();
        let p = plan(&site, "suspend-schedules");
        let s = step(&p, StepKind::SetScheduleState).expect("a schedule step");
        assert_eq!((s.effect, s.rollback), (Effect::Destructive, RollbackClass::Exact));
        let archive = schedule(&site, "Archive reports (Saturday 5am)");
        assert_eq!(
            s.items.iter().map(|i| (i.kind.as_str(), i.id.as_str())).collect::<Vec<_>>(),
            [("schedule", archive.id.as_str())]
        );
        assert_eq!(
            (s.changes[0].field.as_str(), &s.changes[0].before, &s.changes[0].after),
            ("state", &json!("Active"), &json!("Suspended"))
        );
        // Its recommendation was in the report already.
        let recs = p.steps[0].details["recommendations"].as_array().unwrap();
        assert!(recs.iter().any(|r| r["kind"] == "suspend-schedule" && r["schedule"] == archive.id.as_str()));
        // Server-wide, with this site's count, and other sites not visible.
        let note = p.notes.iter().find(|n| n.contains("server-wide")).expect("a server-wide note");
        assert!(
            note.contains("every site of the server")
                && note.contains("2 on this site")
                && note.contains("not visible"),
            "{note}"
        );
        assert!(
            s.items[0].reason.as_deref().unwrap().contains("this site has 2 refreshes on it"),
            "{:?}",
            s.items[0].reason
        );
        // Every schedule left alone holds a refresh of content still used (or is not active).
        let unused: BTreeSet<&str> = p.steps[0].details["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["unused"] == true)
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        for x in site.schedules.iter().filter(|x| x.kind == "Extract" && x.state == "Active" && x.id != archive.id) {
            assert!(
                site.extract_refreshes.iter().any(|t| t.schedule_id == x.id && !unused.contains(t.id.as_str())),
                "{}",
                x.name
            );
        }
    }

    /// `unused_days = 0` would call every refresh unused: it counts as 1, as `stale_days` does.
    #[test]
    fn zero_unused_days_counts_as_one() {
        let site = tabflow_site::generate::demo();
        let p =
            crate::plan_intent_answered(&site, "review-extract-refreshes", serde_json::json!({"unused_days": 0}), &[]);
        let find = step(&p, StepKind::FindExtractRefreshes).expect("the read step");
        assert_eq!(find.details["unused_days"], 1);
    }

    #[test]
    fn resume_schedules_resumes_the_suspended_schedule_holding_refreshes_of_used_content() {
        let site = tabflow_site::generate::demo();
        let p = plan(&site, "resume-schedules");
        let s = step(&p, StepKind::SetScheduleState).expect("a schedule step");
        let legacy = schedule(&site, "Legacy Saturday load");
        assert_eq!(s.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [legacy.id.as_str()]);
        assert_eq!((&s.changes[0].before, &s.changes[0].after), (&json!("Suspended"), &json!("Active")));
        let note = p.notes.iter().find(|n| n.contains("server-wide")).unwrap();
        assert!(note.contains("resuming it restarts") && note.contains("3 on this site"), "{note}");
        // Once every refresh on it is of unused content, resuming it is not the advice.
        let mut quiet = site.clone();
        let on: BTreeSet<String> = quiet
            .extract_refreshes
            .iter()
            .filter(|t| t.schedule_id == legacy.id)
            .map(|t| t.target.id.clone())
            .collect();
        quiet.datasources.retain(|d| !on.contains(&d.id));
        quiet.workbooks.retain(|w| !on.contains(&w.id));
        let mut t = quiet.extract_refreshes.iter().find(|t| t.schedule_id == legacy.id).unwrap().clone();
        let old = quiet
            .workbooks
            .iter()
            .find(|w| {
                w.last_viewed_at().is_none_or(|v| v < quiet.now - Duration::days(90))
                    && w.created_at < quiet.now - Duration::days(90)
            })
            .unwrap();
        t.target = tabflow_site::ResourceRef { kind: "workbook".into(), id: old.id.clone() };
        quiet.extract_refreshes.push(t);
        let p = plan(&quiet, "resume-schedules");
        assert!(step(&p, StepKind::SetScheduleState).is_none());
        assert!(p.notes.iter().any(|n| n.starts_with("Nothing to resume")), "{:?}", p.notes);
        assert!(p.steps[0].details["schedules_left"][0]["why"].as_str().unwrap().contains("unused content"));
    }

    #[test]
    fn schedule_decisions() {
        // (suspend, in scope, on the schedule, of content still used)
        assert!(schedule_decision(true, 2, 2, 0).is_ok());
        assert!(schedule_decision(true, 2, 3, 0).unwrap_err().contains("outside the review's scope"));
        assert!(schedule_decision(true, 3, 3, 1).unwrap_err().contains("still used"));
        assert!(schedule_decision(true, 0, 4, 0).is_err());
        assert!(schedule_decision(false, 3, 3, 1).is_ok());
        assert!(schedule_decision(false, 3, 3, 0).is_err());
        // A site without Server schedules (Tableau Cloud) has nothing to suspend.
        let mut cloud = tabflow_site::generate::demo();
        cloud.schedules.clear();
        for t in &mut cloud.extract_refreshes {
            t.schedule_id.clear();
            t.own_schedule.get_or_insert(Recurrence {
                frequency: "Daily".into(),
                start_time: "03:00:00".into(),
                end_time: String::new(),
                intervals: vec![],
            });
        }
        let p = plan(&cloud, "suspend-schedules");
        assert!(p.steps.iter().all(|s| s.kind.is_read()));
        assert!(p.notes.iter().any(|n| n.contains("no Server schedules")), "{:?}", p.notes);
    }

    #[test]
    fn rebalance_moves_heavy_peak_server_tasks_to_the_off_peak_schedule_by_recreating_them() {
        let site = tabflow_site::generate::demo();
        let p = plan(&site, "rebalance");
        let nightly = schedule(&site, "Nightly (2am)");
        let s = step(&p, StepKind::MoveExtractRefreshes).expect("a move step");
        assert_eq!((s.effect, s.rollback), (Effect::Destructive, RollbackClass::Snapshot));
        // Exactly the heavy peak-hour tasks on active Server schedules.
        let want: BTreeSet<&str> = p.steps[0].details["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                t["heavy"] == true
                    && t["peak"] == true
                    && !t["schedule"].as_str().unwrap().contains("Suspended")
                    && !t["schedule_id"].as_str().unwrap_or_default().is_empty()
            })
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert!(!want.is_empty());
        assert_eq!(s.items.iter().map(|i| i.id.as_str()).collect::<BTreeSet<_>>(), want);
        for c in &s.changes {
            let t = site.extract_refreshes.iter().find(|t| t.id == c.item).unwrap();
            assert_eq!(
                (c.field.as_str(), c.before_id.as_deref(), c.after_id.as_deref()),
                ("schedule_id", Some(t.schedule_id.as_str()), Some(nightly.id.as_str()))
            );
            assert_eq!(c.before, task_value(t), "the description the undo re-creates it from");
            // The change reads as the op the engine executes.
            assert!(matches!(
                tabflow_plan::ops::Op::from_change("extract-refresh", c),
                Ok(tabflow_plan::ops::Op::MoveExtractRefresh { .. })
            ));
        }
        assert_eq!(s.details["not_moved"], json!([]));
        assert!(p.notes.iter().any(|n| n.contains("only by re-creating it there")), "{:?}", p.notes);
        assert!(
            step(&p, StepKind::RescheduleExtractRefreshes).is_none(),
            "no heavy Cloud-style task in peak hours on the demo"
        );

        // A Cloud-style heavy peak task keeps the exact schedule change; a task whose content
        // already refreshes on the off-peak schedule is not moved, and says why.
        let mut mixed = site.clone();
        let first = s.items[0].id.clone();
        let second = s.items[1].id.clone();
        let t = mixed.extract_refreshes.iter_mut().find(|t| t.id == first).unwrap();
        let own = Recurrence {
            frequency: "Daily".into(),
            start_time: "09:00:00".into(),
            end_time: String::new(),
            intervals: vec![("hours".into(), "24".into())],
        };
        t.schedule_id.clear();
        t.own_schedule = Some(own);
        let mut twin = mixed.extract_refreshes.iter().find(|t| t.id == second).unwrap().clone();
        twin.id = "twin".into();
        twin.schedule_id = nightly.id.clone();
        mixed.extract_refreshes.push(twin);
        let p = plan(&mixed, "rebalance");
        let own = step(&p, StepKind::RescheduleExtractRefreshes).expect("a reschedule step");
        assert_eq!(own.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [first.as_str()]);
        assert_eq!(own.changes[0].after["start_time"], json!("02:00:00"));
        let moved = step(&p, StepKind::MoveExtractRefreshes).unwrap();
        assert_eq!(moved.items.len(), want.len() - 2);
        let not_moved = moved.details["not_moved"].as_array().unwrap();
        assert_eq!(not_moved.len(), 1);
        assert_eq!(not_moved[0]["task"], json!(second));
        assert!(not_moved[0]["why"].as_str().unwrap().contains("already refreshes on 'Nightly (2am)'"));

        // No off-peak schedule: nothing on Server schedules moves, and the reason says so.
        let mut none = site.clone();
        none.schedules.iter_mut().find(|x| x.id == nightly.id).unwrap().state = "Suspended".into();
        let p = plan(&none, "rebalance");
        assert!(step(&p, StepKind::MoveExtractRefreshes).is_none());
        let left = p.steps[0].details["not_moved"].as_array().unwrap();
        assert_eq!(left.len(), want.len());
        assert!(left.iter().all(|n| n["why"].as_str().unwrap().starts_with("no active daily Extract schedule")));
    }
}
