//! Schedules, extract refresh tasks and their jobs: Server's server-wide schedules
//! (`/api/{v}/schedules`, Active or Suspended), the tasks on them (`/sites/{s}/tasks/
//! extractRefreshes`, `/sites/{s}/schedules/{id}/extracts`, add-to-schedule), Cloud's tasks
//! with a schedule of their own (create and update), and the `<backgroundJobs>` job list.
//! Shapes follow Tableau's REST reference and the documents tableauserverclient parses.

use axum::extract::{OriginalUri, Path};
use axum::http::StatusCode;
use chrono::Utc;
use tabflow_site::{ExtractRefresh, Recurrence, RefreshJob, ResourceRef, Schedule};
use tabflow_wire::filter::FieldValue;
use tabflow_wire::{ApiError, xml};

use super::{Auth, Q, Res, Shr, list_query, no_content, ok_xml, parse_body, select};
use crate::server::Fail;
use crate::state::{Job, State, new_luid, ts};

type P1 = Path<(String, String)>;
type P2 = Path<(String, String, String)>;

const FREQUENCIES: &[&str] = &["Hourly", "Daily", "Weekly", "Monthly"];
const WEEK_DAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn schedule_not_found(id: &str) -> Fail {
    Fail(ApiError::not_found("404019", "Schedule", id))
}

fn task_not_found(id: &str) -> Fail {
    Fail(ApiError::not_found("404031", "Task", id))
}

fn frequency_xml(r: &Recurrence) -> xml::FrequencyDetails {
    xml::FrequencyDetails {
        start: Some(r.start_time.clone()),
        end: (!r.end_time.is_empty()).then(|| r.end_time.clone()),
        intervals: Some(xml::Intervals {
            interval: r.intervals.iter().filter_map(|(k, v)| xml::Interval::from_pair(k, v)).collect(),
        }),
    }
}

pub(crate) fn schedule_xml(s: &Schedule) -> xml::Schedule {
    xml::Schedule {
        id: Some(s.id.clone()),
        name: Some(s.name.clone()),
        state: Some(s.state.clone()),
        priority: Some(s.priority.to_string()),
        created_at: Some(ts(s.created_at)),
        updated_at: Some(ts(s.updated_at)),
        kind: Some(s.kind.clone()),
        frequency: Some(s.recurrence.frequency.clone()),
        next_run_at: None,
        execution_order: Some(s.execution_order.clone()),
        frequency_details: Some(frequency_xml(&s.recurrence)),
    }
}

/// A Cloud task's own schedule: frequency and details, no id, name or state.
fn own_schedule_xml(r: &Recurrence) -> xml::Schedule {
    xml::Schedule {
        frequency: Some(r.frequency.clone()),
        frequency_details: Some(frequency_xml(r)),
        ..xml::Schedule::default()
    }
}

fn target_refs(t: &ResourceRef) -> (Option<xml::IdRef>, Option<xml::IdRef>) {
    if t.kind == "workbook" {
        (Some(xml::IdRef::id(t.id.clone())), None)
    } else {
        (None, Some(xml::IdRef::id(t.id.clone())))
    }
}

fn task_xml(st: &State, t: &ExtractRefresh) -> xml::ExtractRefresh {
    let schedule = if t.schedule_id.is_empty() {
        t.own_schedule.as_ref().map(own_schedule_xml)
    } else {
        st.site.schedules.iter().find(|s| s.id == t.schedule_id).map(schedule_xml)
    };
    let (workbook, datasource) = target_refs(&t.target);
    xml::ExtractRefresh {
        id: Some(t.id.clone()),
        priority: Some(t.priority.to_string()),
        consecutive_failed_count: Some(t.consecutive_failures.to_string()),
        kind: Some("RefreshExtractTask".into()),
        schedule,
        workbook,
        datasource,
        last_run_at: t.last_run_at.map(ts),
    }
}

/// Reads a `<schedule frequency><frequencyDetails>` into a recurrence, with Tableau-style 400s.
fn recurrence_of(s: &xml::Schedule, base: Option<&Recurrence>) -> Result<Recurrence, Fail> {
    let frequency = match (&s.frequency, base) {
        (Some(f), _) => f.clone(),
        (None, Some(b)) => b.frequency.clone(),
        (None, None) => return Err(super::missing("the schedule's frequency attribute")),
    };
    if !FREQUENCIES.contains(&frequency.as_str()) {
        return Err(Fail(ApiError::bad_request(format!(
            "The schedule frequency '{frequency}' must be one of Hourly, Daily, Weekly or Monthly."
        ))));
    }
    let details = s.frequency_details.as_ref();
    let start = match (details.and_then(|d| d.start.clone()), base) {
        (Some(x), _) => x,
        (None, Some(b)) => b.start_time.clone(),
        (None, None) => return Err(super::missing("the <frequencyDetails start> attribute")),
    };
    check_time(&start)?;
    let end = details.and_then(|d| d.end.clone()).or_else(|| base.map(|b| b.end_time.clone())).unwrap_or_default();
    if !end.is_empty() {
        check_time(&end)?;
    }
    // tableauserverclient writes hours as Python floats ("24.0"): a whole number is read as one.
    let number = |k: &str, v: &str| -> String {
        match v.parse::<f64>() {
            Ok(f) if (k == "hours" || k == "minutes") && f.fract() == 0.0 && (0.0..=1440.0).contains(&f) => {
                format!("{}", f as u32)
            }
            _ => v.to_string(),
        }
    };
    let intervals: Vec<(String, String)> = match details.and_then(|d| d.intervals.as_ref()) {
        Some(iv) => iv.interval.iter().filter_map(|i| i.pair().map(|(k, v)| (k.to_string(), number(k, v)))).collect(),
        None => base.map(|b| b.intervals.clone()).unwrap_or_default(),
    };
    for (k, v) in &intervals {
        let ok = match k.as_str() {
            "hours" => matches!(v.as_str(), "1" | "2" | "4" | "6" | "8" | "12" | "24"),
            "minutes" => matches!(v.as_str(), "15" | "30" | "60"),
            "weekDay" => WEEK_DAYS.contains(&v.as_str()),
            "monthDay" => v == "LastDay" || v.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d)),
            _ => false,
        };
        if !ok {
            return Err(Fail(ApiError::bad_request(format!("The schedule interval {k}=\"{v}\" is not valid."))));
        }
    }
    if frequency == "Weekly" && !intervals.iter().any(|(k, _)| k == "weekDay") {
        return Err(Fail(ApiError::bad_request("A Weekly schedule needs at least one <interval weekDay> element.")));
    }
    if frequency == "Monthly" && !intervals.iter().any(|(k, _)| k == "monthDay") {
        return Err(Fail(ApiError::bad_request("A Monthly schedule needs an <interval monthDay> element.")));
    }
    Ok(Recurrence { frequency, start_time: start, end_time: end, intervals })
}

fn check_time(t: &str) -> Result<(), Fail> {
    if chrono::NaiveTime::parse_from_str(t, "%H:%M:%S").is_ok() {
        Ok(())
    } else {
        Err(Fail(ApiError::bad_request(format!("The schedule time '{t}' must be written HH:MM:SS."))))
    }
}

// ---------------------------------------------------------------- schedules (server-wide)

pub(crate) async fn list_schedules(shared: Shr, a: Auth, q: Q) -> Res {
    a.require_admin(&shared.0, "list schedules")?;
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let (page, pagination) = select(st.site.schedules.iter().collect(), &lq, |s, f| match f {
        "name" => Some(FieldValue::Text(&s.name)),
        "type" => Some(FieldValue::Text(&s.kind)),
        "state" => Some(FieldValue::Text(&s.state)),
        "frequency" => Some(FieldValue::Text(&s.recurrence.frequency)),
        _ => None,
    })
    .map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.schedules = Some(xml::Schedules { schedule: page.into_iter().map(schedule_xml).collect() });
    ok_xml(&r)
}

pub(crate) async fn get_schedule(shared: Shr, a: Auth, Path((_v, id)): P1) -> Res {
    a.require_admin(&shared.0, "read schedules")?;
    let st = shared.0.read();
    let s = st.site.schedules.iter().find(|s| s.id == id).ok_or_else(|| schedule_not_found(&id))?;
    let mut r = xml::TsResponse::new();
    r.schedule = Some(schedule_xml(s));
    ok_xml(&r)
}

/// `PUT /schedules/{id}`: name, priority, execution order, state (Active/Suspended) and
/// frequency with its details; what the body leaves out stays.
pub(crate) async fn update_schedule(shared: Shr, a: Auth, Path((_v, id)): P1, body: String) -> Res {
    a.require_admin(&shared.0, "change schedules")?;
    let req = parse_body(&body)?;
    let s = req.schedule.ok_or_else(|| super::missing("a <schedule> element"))?;
    let mut st = shared.0.write();
    let i = st.site.schedules.iter().position(|x| x.id == id).ok_or_else(|| schedule_not_found(&id))?;
    let mut next = st.site.schedules[i].clone();
    if let Some(state) = &s.state {
        if state != "Active" && state != "Suspended" {
            return Err(Fail(ApiError::bad_request(format!(
                "The schedule state '{state}' must be Active or Suspended."
            ))));
        }
        next.state = state.clone();
    }
    if let Some(name) = s.name.as_ref().filter(|n| !n.is_empty()) {
        if st.site.schedules.iter().any(|x| x.id != id && x.name == *name) {
            return Err(Fail(ApiError::conflict("409021", format!("A schedule named '{name}' already exists."))));
        }
        next.name = name.clone();
    }
    if let Some(p) = &s.priority {
        next.priority = p.parse::<u32>().ok().filter(|p| (1..=100).contains(p)).ok_or_else(|| {
            Fail(ApiError::bad_request(format!("The schedule priority '{p}' must be a number from 1 to 100.")))
        })?;
    }
    if let Some(o) = &s.execution_order {
        if o != "Parallel" && o != "Serial" {
            return Err(Fail(ApiError::bad_request(format!("The execution order '{o}' must be Parallel or Serial."))));
        }
        next.execution_order = o.clone();
    }
    if s.frequency.is_some() || s.frequency_details.is_some() {
        next.recurrence = recurrence_of(&s, Some(&next.recurrence))?;
    }
    next.updated_at = Utc::now();
    st.site.schedules[i] = next.clone();
    let mut r = xml::TsResponse::new();
    r.schedule = Some(schedule_xml(&next));
    ok_xml(&r)
}

// ---------------------------------------------------------------- tasks on a schedule

pub(crate) async fn schedule_extracts(shared: Shr, a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    a.require_admin(&shared.0, "list a schedule's extract refreshes")?;
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    if !st.site.schedules.iter().any(|s| s.id == id) {
        return Err(schedule_not_found(&id));
    }
    let tasks: Vec<&ExtractRefresh> = st.site.extract_refreshes.iter().filter(|t| t.schedule_id == id).collect();
    let (page, pagination) = select(tasks, &lq, |_, _| None).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.extracts = Some(xml::Extracts {
        extract: page
            .into_iter()
            .map(|t| {
                let (workbook, datasource) = target_refs(&t.target);
                xml::Extract {
                    id: Some(t.id.clone()),
                    priority: Some(t.priority.to_string()),
                    kind: Some(t.kind.clone()),
                    workbook,
                    datasource,
                }
            })
            .collect(),
    });
    ok_xml(&r)
}

/// `PUT /sites/{s}/schedules/{id}/workbooks|datasources`: a new extract refresh task for the
/// content on that (Extract) schedule.
pub(crate) async fn add_to_schedule(
    shared: Shr,
    a: Auth,
    uri: OriginalUri,
    Path((_v, _s, id)): P2,
    body: String,
) -> Res {
    a.require_admin(&shared.0, "add extract refreshes to a schedule")?;
    let kind = if uri.path().ends_with("/workbooks") { "workbook" } else { "datasource" };
    let req = parse_body(&body)?;
    let er =
        req.task.and_then(|t| t.extract_refresh).ok_or_else(|| super::missing("a <task><extractRefresh> element"))?;
    let target_id = match er.target() {
        Some((k, tid)) if k == kind => tid.to_string(),
        _ => return Err(super::missing(&format!("a <{kind} id> element inside <extractRefresh>"))),
    };
    let mut st = shared.0.write();
    let sched = st.site.schedules.iter().find(|s| s.id == id).ok_or_else(|| schedule_not_found(&id))?;
    if sched.kind != "Extract" {
        return Err(Fail(ApiError::bad_request(format!(
            "The schedule '{}' is a {} schedule; extract refreshes go on Extract schedules.",
            sched.name, sched.kind
        ))));
    }
    st.resource_exists(kind, &target_id).map_err(Fail)?;
    if st.site.extract_refreshes.iter().any(|t| t.schedule_id == id && t.target.id == target_id) {
        return Err(Fail(ApiError::conflict(
            "409022",
            format!("The {kind} {target_id} already has an extract refresh on this schedule."),
        )));
    }
    let task = ExtractRefresh {
        id: new_luid(),
        schedule_id: id.clone(),
        own_schedule: None,
        target: ResourceRef { kind: kind.into(), id: target_id },
        priority: er.priority.and_then(|p| p.parse().ok()).unwrap_or(50),
        consecutive_failures: 0,
        kind: incremental_or_full(er.kind.as_deref())?,
        last_run_at: None,
    };
    st.site.extract_refreshes.push(task.clone());
    let mut r = xml::TsResponse::new();
    r.task = Some(xml::Task { extract_refresh: Some(task_xml(&st, &task)) });
    ok_xml(&r)
}

fn incremental_or_full(kind: Option<&str>) -> Result<String, Fail> {
    match kind {
        None | Some("") | Some("FullRefresh") | Some("extractRefresh") => Ok("FullRefresh".into()),
        Some("IncrementalRefresh") => Ok("IncrementalRefresh".into()),
        Some(other) => Err(Fail(ApiError::bad_request(format!(
            "The extract refresh type '{other}' must be FullRefresh or IncrementalRefresh."
        )))),
    }
}

// ---------------------------------------------------------------- extract refresh tasks

pub(crate) async fn list_tasks(shared: Shr, a: Auth, q: Q) -> Res {
    a.require_admin(&shared.0, "list extract refresh tasks")?;
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let (page, pagination) = select(st.site.extract_refreshes.iter().collect(), &lq, |_, _| None).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.tasks = Some(xml::Tasks {
        task: page.into_iter().map(|t| xml::Task { extract_refresh: Some(task_xml(&st, t)) }).collect(),
    });
    ok_xml(&r)
}

pub(crate) async fn get_task(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_admin(&shared.0, "read extract refresh tasks")?;
    let st = shared.0.read();
    let t = st.site.extract_refreshes.iter().find(|t| t.id == id).ok_or_else(|| task_not_found(&id))?;
    let mut r = xml::TsResponse::new();
    r.task = Some(xml::Task { extract_refresh: Some(task_xml(&st, t)) });
    ok_xml(&r)
}

pub(crate) async fn delete_task(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_admin(&shared.0, "delete extract refresh tasks")?;
    let mut st = shared.0.write();
    let before = st.site.extract_refreshes.len();
    st.site.extract_refreshes.retain(|t| t.id != id);
    if st.site.extract_refreshes.len() == before {
        return Err(task_not_found(&id));
    }
    no_content()
}

/// `POST .../extractRefreshes/{id}/runNow`: the emulator's refresh finishes at once; a task
/// whose last runs failed fails again (its connection is still broken), any other succeeds.
pub(crate) async fn run_task(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_admin(&shared.0, "run extract refresh tasks")?;
    let mut st = shared.0.write();
    let i = st.site.extract_refreshes.iter().position(|t| t.id == id).ok_or_else(|| task_not_found(&id))?;
    let now = Utc::now();
    let task = st.site.extract_refreshes[i].clone();
    let failed = task.consecutive_failures > 0;
    let job = Job { id: new_luid(), kind: "RefreshExtract".into(), created_at: now, finish_code: u8::from(failed) };
    st.site.refresh_jobs.push(RefreshJob {
        id: job.id.clone(),
        task_id: task.id.clone(),
        target: task.target.clone(),
        created_at: now,
        started_at: now,
        completed_at: now,
        finish_code: job.finish_code,
        notes: if failed {
            "The extract refresh failed again: the data source's connection is still failing.".into()
        } else {
            String::new()
        },
    });
    let t = &mut st.site.extract_refreshes[i];
    t.last_run_at = Some(now);
    t.consecutive_failures = if failed { t.consecutive_failures + 1 } else { 0 };
    let mut r = xml::TsResponse::new();
    r.job = Some(xml::Job {
        id: job.id.clone(),
        mode: Some("Asynchronous".into()),
        kind: Some("RefreshExtract".into()),
        created_at: Some(ts(now)),
        ..xml::Job::default()
    });
    Ok(crate::server::xml_response(StatusCode::OK, &r))
}

/// Cloud: `POST /sites/{s}/tasks/extractRefreshes` with `<extractRefresh type><workbook|datasource
/// id/></extractRefresh><schedule frequency><frequencyDetails/></schedule>`.
pub(crate) async fn create_task(shared: Shr, a: Auth, body: String) -> Res {
    a.require_admin(&shared.0, "create extract refresh tasks")?;
    let req = parse_body(&body)?;
    let er = req.extract_refresh.ok_or_else(|| super::missing("an <extractRefresh> element"))?;
    let (kind, target_id) = er
        .target()
        .map(|(k, i)| (k, i.to_string()))
        .ok_or_else(|| super::missing("a <workbook id> or <datasource id> element inside <extractRefresh>"))?;
    let sched = req.schedule.ok_or_else(|| super::missing("a <schedule> element"))?;
    let recurrence = recurrence_of(&sched, None)?;
    let mut st = shared.0.write();
    st.resource_exists(kind, &target_id).map_err(Fail)?;
    let task = ExtractRefresh {
        id: new_luid(),
        schedule_id: String::new(),
        own_schedule: Some(recurrence.clone()),
        target: ResourceRef { kind: kind.into(), id: target_id },
        priority: er.priority.as_deref().and_then(|p| p.parse().ok()).filter(|p| (1..=100).contains(p)).unwrap_or(50),
        consecutive_failures: 0,
        kind: incremental_or_full(er.kind.as_deref())?,
        last_run_at: None,
    };
    st.site.extract_refreshes.push(task.clone());
    let (workbook, datasource) = target_refs(&task.target);
    let mut r = xml::TsResponse::new();
    r.extract_refresh = Some(xml::ExtractRefresh {
        id: Some(task.id.clone()),
        kind: Some(task.kind.clone()),
        workbook,
        datasource,
        ..Default::default()
    });
    let now = ts(Utc::now());
    r.schedule =
        Some(xml::Schedule { created_at: Some(now.clone()), updated_at: Some(now), ..own_schedule_xml(&recurrence) });
    super::created_xml(&r)
}

/// Cloud: `PUT /sites/{s}/tasks/extractRefreshes/{id}` gives the task a schedule of its own
/// (and, optionally, another type); a task on a Server schedule leaves it for its own one.
pub(crate) async fn update_task(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_admin(&shared.0, "change extract refresh tasks")?;
    let req = parse_body(&body)?;
    let sched = req.schedule.ok_or_else(|| super::missing("a <schedule> element"))?;
    let mut st = shared.0.write();
    let i = st.site.extract_refreshes.iter().position(|t| t.id == id).ok_or_else(|| task_not_found(&id))?;
    let base = st.site.extract_refreshes[i].own_schedule.clone();
    let recurrence = recurrence_of(&sched, base.as_ref())?;
    let kind = match req.extract_refresh.as_ref().and_then(|e| e.kind.as_deref()) {
        Some(k) => Some(incremental_or_full(Some(k))?),
        None => None,
    };
    let t = &mut st.site.extract_refreshes[i];
    t.schedule_id.clear();
    t.own_schedule = Some(recurrence.clone());
    if let Some(k) = kind {
        t.kind = k;
    }
    let task = t.clone();
    let (workbook, datasource) = target_refs(&task.target);
    let mut r = xml::TsResponse::new();
    r.extract_refresh = Some(xml::ExtractRefresh {
        id: Some(task.id.clone()),
        kind: Some(task.kind.clone()),
        workbook,
        datasource,
        ..Default::default()
    });
    r.schedule = Some(xml::Schedule { updated_at: Some(ts(Utc::now())), ..own_schedule_xml(&recurrence) });
    ok_xml(&r)
}

// ---------------------------------------------------------------- jobs

fn status_of(code: u8) -> &'static str {
    match code {
        0 => "Success",
        1 => "Failed",
        _ => "Cancelled",
    }
}

/// Tableau's `jobType` spelling of a job kind (`RefreshExtracts` → `refresh_extracts`).
fn job_type(kind: &str) -> String {
    let mut out = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn target_title(st: &State, t: &ResourceRef) -> (String, &'static str) {
    match t.kind.as_str() {
        "workbook" => (st.workbook(&t.id).map(|w| w.name.clone()).unwrap_or_default(), "Workbook"),
        _ => (st.datasource(&t.id).map(|d| d.name.clone()).unwrap_or_default(), "Data Source"),
    }
}

/// `GET /sites/{s}/jobs`: `<backgroundJobs>`, refresh history and the emulator's own jobs,
/// oldest first; filters on `jobType`, `status`, `createdAt`, `startedAt`, `endedAt`, `title`.
pub(crate) async fn list_jobs(shared: Shr, a: Auth, q: Q) -> Res {
    a.require_admin(&shared.0, "list background jobs")?;
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let mut rows: Vec<(String, xml::BackgroundJob)> = Vec::new();
    for j in &st.site.refresh_jobs {
        let (title, subtitle) = target_title(&st, &j.target);
        rows.push((
            ts(j.created_at),
            xml::BackgroundJob {
                id: j.id.clone(),
                status: Some(status_of(j.finish_code).into()),
                created_at: Some(ts(j.created_at)),
                started_at: Some(ts(j.started_at)),
                ended_at: Some(ts(j.completed_at)),
                priority: Some("50".into()),
                job_type: Some("refresh_extracts".into()),
                title: Some(title),
                subtitle: Some(subtitle.into()),
            },
        ));
    }
    let history: std::collections::HashSet<&str> = st.site.refresh_jobs.iter().map(|j| j.id.as_str()).collect();
    for j in st.jobs.values().filter(|j| !history.contains(j.id.as_str())) {
        rows.push((
            ts(j.created_at),
            xml::BackgroundJob {
                id: j.id.clone(),
                status: Some(status_of(j.finish_code).into()),
                created_at: Some(ts(j.created_at)),
                started_at: Some(ts(j.created_at)),
                ended_at: Some(ts(j.created_at)),
                priority: Some("50".into()),
                job_type: Some(job_type(&j.kind)),
                title: None,
                subtitle: None,
            },
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    let (page, pagination) = select(rows.iter().map(|(_, j)| j).collect(), &lq, |j, f| match f {
        "jobType" => j.job_type.as_deref().map(FieldValue::Text),
        "status" => j.status.as_deref().map(FieldValue::Text),
        "createdAt" => j.created_at.as_deref().map(FieldValue::Date),
        "startedAt" => j.started_at.as_deref().map(FieldValue::Date),
        "endedAt" => j.ended_at.as_deref().map(FieldValue::Date),
        "title" => Some(j.title.as_deref().map_or(FieldValue::Missing, FieldValue::Text)),
        _ => None,
    })
    .map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.background_jobs = Some(xml::BackgroundJobs { background_job: page.into_iter().cloned().collect() });
    ok_xml(&r)
}

/// `GET /sites/{s}/jobs/{id}` of a refresh in the history: `<job>` with `<extractRefreshJob>`.
pub(crate) fn history_job_xml(st: &State, id: &str) -> Option<xml::Job> {
    let j = st.site.refresh_jobs.iter().find(|j| j.id == id)?;
    let (title, _) = target_title(st, &j.target);
    let r = Some(xml::IdRef::named(j.target.id.clone(), title));
    let (workbook, datasource) = if j.target.kind == "workbook" { (r, None) } else { (None, r) };
    Some(xml::Job {
        id: j.id.clone(),
        mode: Some("Asynchronous".into()),
        kind: Some("RefreshExtract".into()),
        progress: Some("100".into()),
        created_at: Some(ts(j.created_at)),
        started_at: Some(ts(j.started_at)),
        completed_at: Some(ts(j.completed_at)),
        finish_code: Some(j.finish_code.to_string()),
        extract_refresh_job: Some(xml::ExtractRefreshJob {
            notes: (!j.notes.is_empty()).then(|| j.notes.clone()),
            workbook,
            datasource,
        }),
    })
}
