//! Schedules, extract refresh tasks and refresh jobs: reading them (paged), suspending and
//! resuming a schedule, deleting, re-creating and re-scheduling a task; and their models in a
//! `tabflow-site/1` snapshot.
//!
//! Server: schedules are server-wide (`/api/{v}/schedules`, administrators only) and a task
//! is moved to another schedule by adding its content to that schedule (a new task) and
//! deleting the old one. Cloud: a task has a schedule of its own, changed in place
//! (`PUT .../tasks/extractRefreshes/{id}`).

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use tabflow_site as site;
use tabflow_wire::filter::{Filter, Op};
use tabflow_wire::xml::{self, IdRef, TsRequest};

use crate::client::{Client, Request};
use crate::error::{Error, Result};
use crate::list::List;

fn missing(what: &str) -> Error {
    Error::Protocol { url: String::new(), status: 200, detail: format!("the answer has no <{what}> element") }
}

fn time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref().and_then(crate::usage::parse_time)
}

/// The `<schedule frequency><frequencyDetails>` of a recurrence (a Cloud task's schedule, or
/// a Server schedule's new frequency).
pub fn schedule_body(r: &site::Recurrence) -> xml::Schedule {
    xml::Schedule {
        frequency: Some(r.frequency.clone()),
        frequency_details: Some(xml::FrequencyDetails {
            start: Some(r.start_time.clone()),
            end: (!r.end_time.is_empty()).then(|| r.end_time.clone()),
            intervals: Some(xml::Intervals {
                interval: r.intervals.iter().filter_map(|(k, v)| xml::Interval::from_pair(k, v)).collect(),
            }),
        }),
        ..xml::Schedule::default()
    }
}

/// A recurrence from a `<schedule>` (no frequency details: the start is unknown, `00:00:00`).
pub fn recurrence_model(s: &xml::Schedule) -> site::Recurrence {
    let d = s.frequency_details.clone().unwrap_or_default();
    site::Recurrence {
        frequency: s.frequency.clone().unwrap_or_default(),
        start_time: d.start.unwrap_or_else(|| "00:00:00".into()),
        end_time: d.end.unwrap_or_default(),
        intervals: d
            .intervals
            .map(|iv| {
                iv.interval.iter().filter_map(|i| i.pair().map(|(k, v)| (k.to_string(), v.to_string()))).collect()
            })
            .unwrap_or_default(),
    }
}

pub fn schedule_model(s: xml::Schedule) -> site::Schedule {
    let recurrence = recurrence_model(&s);
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    site::Schedule {
        id: s.id.clone().unwrap_or_default(),
        name: s.name.clone().unwrap_or_default(),
        kind: s.kind.clone().unwrap_or_default(),
        state: s.state.clone().unwrap_or_else(|| "Active".into()),
        priority: s.priority.as_deref().and_then(|p| p.parse().ok()).unwrap_or(50),
        execution_order: s.execution_order.clone().unwrap_or_else(|| "Parallel".into()),
        recurrence,
        created_at: time(&s.created_at).unwrap_or(epoch),
        updated_at: time(&s.updated_at).unwrap_or(epoch),
    }
}

/// A task from `<extractRefresh>`: on a Server schedule when its `<schedule>` has an id, else
/// with a schedule of its own. Its type (full or incremental) is not in this answer; it is
/// read from the schedule's `extracts` list when there is one.
pub fn task_model(t: xml::ExtractRefresh) -> site::ExtractRefresh {
    let (kind, id) = t.target().map(|(k, i)| (k.to_string(), i.to_string())).unwrap_or_default();
    let (schedule_id, own_schedule) = match &t.schedule {
        Some(s) if s.id.as_deref().is_some_and(|i| !i.is_empty()) => (s.id.clone().unwrap_or_default(), None),
        Some(s) => (String::new(), Some(recurrence_model(s))),
        None => (String::new(), None),
    };
    site::ExtractRefresh {
        id: t.id.clone().unwrap_or_default(),
        schedule_id,
        own_schedule,
        target: site::ResourceRef { kind, id },
        priority: t.priority.as_deref().and_then(|p| p.parse().ok()).unwrap_or(50),
        consecutive_failures: t.consecutive_failed_count.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0),
        kind: "FullRefresh".into(),
        last_run_at: time(&t.last_run_at),
    }
}

impl Client {
    /// Server schedules (`GET /api/{v}/schedules`, server-wide; administrators only).
    pub fn schedules(&self) -> List<xml::Schedule> {
        List::new(
            self,
            "schedules",
            "schedule",
            |d| d.schedules.map(|s| s.schedule).unwrap_or_default(),
            |s: &xml::Schedule| s.id.clone().unwrap_or_default(),
        )
        .unscoped()
    }

    pub async fn schedule(&self, id: &str) -> Result<xml::Schedule> {
        self.send_xml(Request::get(format!("schedules/{id}")).unscoped())
            .await?
            .schedule
            .ok_or_else(|| missing("schedule"))
    }

    /// Suspends (`Suspended`) or resumes (`Active`) a Server schedule; answers the schedule.
    pub async fn set_schedule_state(&self, id: &str, state: &str) -> Result<xml::Schedule> {
        let body = TsRequest {
            schedule: Some(xml::Schedule { state: Some(state.into()), ..xml::Schedule::default() }),
            ..TsRequest::default()
        };
        self.send_xml(Request::put(format!("schedules/{id}"), &body).unscoped())
            .await?
            .schedule
            .ok_or_else(|| missing("schedule"))
    }

    /// The extract refresh tasks of a schedule (`GET /sites/{s}/schedules/{id}/extracts`).
    pub fn schedule_extracts(&self, schedule_id: &str) -> List<xml::Extract> {
        List::new(
            self,
            format!("schedules/{schedule_id}/extracts"),
            "extract",
            |d| d.extracts.map(|e| e.extract).unwrap_or_default(),
            |e: &xml::Extract| e.id.clone().unwrap_or_default(),
        )
    }

    /// Extract refresh tasks of the site (`GET /sites/{s}/tasks/extractRefreshes`).
    pub fn extract_refresh_tasks(&self) -> List<xml::ExtractRefresh> {
        List::new(
            self,
            "tasks/extractRefreshes",
            "extract refresh task",
            |d| d.tasks.map(|t| t.task.into_iter().filter_map(|t| t.extract_refresh).collect()).unwrap_or_default(),
            |t: &xml::ExtractRefresh| t.id.clone().unwrap_or_default(),
        )
    }

    pub async fn extract_refresh_task(&self, id: &str) -> Result<xml::ExtractRefresh> {
        self.send_xml(Request::get(format!("tasks/extractRefreshes/{id}")))
            .await?
            .task
            .and_then(|t| t.extract_refresh)
            .ok_or_else(|| missing("task"))
    }

    pub async fn delete_extract_refresh_task(&self, id: &str) -> Result<()> {
        self.send(Request::delete(format!("tasks/extractRefreshes/{id}"))).await.map(|_| ())
    }

    /// Runs a task now; answers the job.
    pub async fn run_extract_refresh_task(&self, id: &str) -> Result<xml::Job> {
        self.send_xml(Request::post(format!("tasks/extractRefreshes/{id}/runNow"), &TsRequest::default()))
            .await?
            .job
            .ok_or_else(|| missing("job"))
    }

    /// Server: a new extract refresh task for `kind` (`workbook`|`datasource`) `target_id` on
    /// the schedule (`PUT /sites/{s}/schedules/{id}/workbooks|datasources`). `priority` (a
    /// task's own, 1-100) is sent as the `priority` attribute; a Tableau that ignores it gives
    /// the task its default.
    pub async fn add_to_schedule(
        &self,
        schedule_id: &str,
        kind: &str,
        target_id: &str,
        refresh_type: &str,
        priority: Option<u32>,
    ) -> Result<xml::ExtractRefresh> {
        let er = task_body(kind, target_id, refresh_type, priority);
        let body = TsRequest { task: Some(xml::Task { extract_refresh: Some(er) }), ..TsRequest::default() };
        self.send_xml(Request::put(format!("schedules/{schedule_id}/{kind}s"), &body).idempotent(false))
            .await?
            .task
            .and_then(|t| t.extract_refresh)
            .ok_or_else(|| missing("task"))
    }

    /// Cloud: a new task with a schedule of its own (`POST /sites/{s}/tasks/extractRefreshes`);
    /// `priority` as in [`Client::add_to_schedule`].
    pub async fn create_extract_refresh_task(
        &self,
        kind: &str,
        target_id: &str,
        refresh_type: &str,
        schedule: &site::Recurrence,
        priority: Option<u32>,
    ) -> Result<xml::ExtractRefresh> {
        let er = task_body(kind, target_id, refresh_type, priority);
        let body =
            TsRequest { extract_refresh: Some(er), schedule: Some(schedule_body(schedule)), ..TsRequest::default() };
        self.send_xml(Request::post("tasks/extractRefreshes", &body))
            .await?
            .extract_refresh
            .ok_or_else(|| missing("extractRefresh"))
    }

    /// Cloud: gives a task another schedule of its own (`PUT .../tasks/extractRefreshes/{id}`).
    pub async fn update_extract_refresh_schedule(
        &self,
        id: &str,
        schedule: &site::Recurrence,
    ) -> Result<site::Recurrence> {
        let body = TsRequest { schedule: Some(schedule_body(schedule)), ..TsRequest::default() };
        let d = self.send_xml(Request::put(format!("tasks/extractRefreshes/{id}"), &body)).await?;
        d.schedule.map(|s| recurrence_model(&s)).ok_or_else(|| missing("schedule"))
    }

    /// Background jobs (`GET /sites/{s}/jobs`, `<backgroundJobs>`).
    pub fn background_jobs(&self) -> List<xml::BackgroundJob> {
        List::new(
            self,
            "jobs",
            "background job",
            |d| d.background_jobs.map(|j| j.background_job).unwrap_or_default(),
            |j: &xml::BackgroundJob| j.id.clone(),
        )
    }
}

/// Schedules, tasks (with their full/incremental type from each schedule's `extracts`) and
/// refresh jobs (the `refresh_extracts` jobs, each one's content and notes from
/// `GET /jobs/{id}`). A site user who is not an administrator is refused these lists: the
/// snapshot then has none (the answer is empty, not an error).
pub async fn read(client: &Client) -> Result<(Vec<site::Schedule>, Vec<site::ExtractRefresh>, Vec<site::RefreshJob>)> {
    let refused = |e: &Error| matches!(e, Error::Api { status: 403 | 404, .. });
    let schedules = match client.schedules().stream().map_ok(schedule_model).try_collect::<Vec<_>>().await {
        Ok(s) => s,
        Err(e) if refused(&e) => return Ok((vec![], vec![], vec![])),
        Err(e) => return Err(e),
    };
    let mut tasks: Vec<site::ExtractRefresh> =
        client.extract_refresh_tasks().stream().map_ok(task_model).try_collect().await?;
    // Full or incremental: only the schedule's extracts list says.
    let incremental: Vec<Vec<String>> = futures::stream::iter(schedules.iter().filter(|s| s.kind == "Extract"))
        .map(|s| async move {
            let ex: Vec<xml::Extract> = client.schedule_extracts(&s.id).collect().await?;
            Ok::<_, Error>(
                ex.into_iter()
                    .filter(|e| e.kind.as_deref() == Some("IncrementalRefresh"))
                    .filter_map(|e| e.id)
                    .collect::<Vec<String>>(),
            )
        })
        .buffered(4)
        .try_collect()
        .await?;
    let incremental: std::collections::HashSet<String> = incremental.into_iter().flatten().collect();
    for t in &mut tasks {
        if incremental.contains(&t.id) {
            t.kind = "IncrementalRefresh".into();
        }
    }
    let listed: Vec<xml::BackgroundJob> =
        client.background_jobs().filter(Filter::new().and("jobType", Op::Eq, "refresh_extracts")).collect().await?;
    let conc = client.config().read_concurrency.max(1);
    let mut jobs: Vec<site::RefreshJob> = futures::stream::iter(listed)
        .map(|b| async move {
            let j = client.job(&b.id.as_str().into()).await?;
            let d = j.extract_refresh_job.unwrap_or_default();
            let (kind, id) = match (d.workbook.and_then(|w| w.id), d.datasource.and_then(|w| w.id)) {
                (Some(w), _) => ("workbook", w),
                (None, Some(ds)) => ("datasource", ds),
                (None, None) => ("", String::new()),
            };
            let epoch = DateTime::<Utc>::UNIX_EPOCH;
            let created = time(&b.created_at).unwrap_or(epoch);
            Ok::<_, Error>(site::RefreshJob {
                id: b.id,
                task_id: String::new(),
                target: site::ResourceRef { kind: kind.into(), id },
                created_at: created,
                started_at: time(&b.started_at).unwrap_or(created),
                completed_at: time(&b.ended_at).unwrap_or(created),
                finish_code: j.finish_code.as_deref().and_then(|c| c.parse().ok()).unwrap_or(
                    match b.status.as_deref() {
                        Some("Success") => 0,
                        Some("Failed") => 1,
                        _ => 2,
                    },
                ),
                notes: d.notes.unwrap_or_default(),
            })
        })
        .buffered(conc)
        .try_collect()
        .await?;
    jobs.retain(|j| !j.target.id.is_empty());
    jobs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok((schedules, tasks, jobs))
}

/// A task's body for a new extract refresh of a workbook or datasource (`kind`).
fn task_body(kind: &str, target_id: &str, refresh_type: &str, priority: Option<u32>) -> xml::ExtractRefresh {
    let r = Some(IdRef::id(target_id));
    let (workbook, datasource) = if kind == "workbook" { (r, None) } else { (None, r) };
    xml::ExtractRefresh {
        kind: Some(refresh_type.into()),
        priority: priority.map(|p| p.to_string()),
        workbook,
        datasource,
        ..Default::default()
    }
}
