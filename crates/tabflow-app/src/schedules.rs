//! Recurring reviews that really run (issue #21): `tabflow schedule add|list|remove` and the
//! worker's pass over the store ([`App::work_once`], what `tabflow worker` repeats).
//!
//! A schedule is a cron expression (or `daily`/`weekly`/`monthly`) read in a time zone (UTC
//! unless `--tz`), what to plan when it fires — a template with parameters, or the intent a
//! plan stored ("weekly …") — and the site it runs against. Next-fire times come from
//! `croner` in the schedule's zone (chrono-tz), so "08:00 Europe/Berlin" stays 08:00 local
//! across daylight-saving changes.
//!
//! Firing: the worker claims the schedule in the store (one conditional UPDATE that also
//! requires it to be still due, so of several workers on one store exactly one fires it),
//! plans it, and then
//! - a plan that changes nothing writes its report (`<data dir>/reports/<plan id>.*`);
//! - a plan whose writes its template lets run unattended (never a destructive one) runs;
//! - any other plan asks for an approval — recorded and audited, and the approvers are told
//!   through the outbox (webhook, email) — and waits ("awaiting-approval"); a later pass starts
//!   it once approved when the policy's `auto_run_on_approval` is on (the default).
//!
//! The next fire time is computed from the moment it fired, not from the missed slot: after
//! downtime a schedule fires once, not once per missed slot. The worker also purges staged
//! deletes whose grace period ended (with the purge's own checks).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tabflow_engine::approval::{Missing, Selection};
use tabflow_engine::notify::Tally;
use tabflow_engine::plan::Intent;
use tabflow_engine::store::{ScheduleOutcome, ScheduleRow};

use crate::error::{Error, Kind, Result};
use crate::runs::{Start, StartOptions};
use crate::session::Connection;
use crate::templates::{Template, label};
use crate::{App, Planned};

/// The site a schedule runs against: `<server>|<site content URL>` (the demo site's server is
/// `builtin:demo`).
pub fn site_key(server: &str, content_url: &str) -> String {
    format!("{}|{}", server.trim_end_matches('/'), content_url)
}

/// The cron expression a cadence stands for: `daily` at midnight, `weekly` on Monday at
/// midnight, `monthly` on the 1st at midnight, anything else as written.
fn expression(cadence: &str) -> &str {
    match cadence.trim() {
        "daily" => "0 0 * * *",
        "weekly" => "0 0 * * MON",
        "monthly" => "0 0 1 * *",
        other => other,
    }
}

/// A time zone by its IANA name (`Europe/Berlin`), with the fix when unknown.
pub fn zone(tz: &str) -> Result<chrono_tz::Tz> {
    chrono_tz::Tz::from_str(tz.trim()).map_err(|_| {
        Error::usage(
            format!("'{tz}' is not a time zone tabflow knows"),
            "give an IANA time zone name such as Europe/Berlin, America/New_York or UTC",
        )
    })
}

/// The first time after `after` that a cadence (cron or `daily`/`weekly`/`monthly`) comes
/// round, read in `tz` (UTC when `None`); DST gaps and repeats are croner's.
pub fn next_fire(cadence: &str, tz: Option<&str>, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let expr = expression(cadence);
    let cron = croner::Cron::from_str(expr).map_err(|e| {
        Error::usage(
            format!("'{cadence}' is not a schedule tabflow can run ({e})"),
            "give five cron fields (minute hour day-of-month month day-of-week), e.g. \"0 8 * * MON\", or daily, weekly, monthly",
        )
    })?;
    if expr.split_whitespace().count() != 5 {
        return Err(Error::usage(
            format!(
                "'{cadence}' has {} fields; tabflow reads five-field cron expressions",
                expr.split_whitespace().count()
            ),
            "minute hour day-of-month month day-of-week, e.g. \"0 8 * * MON\"",
        ));
    }
    let never = |_| Error::usage(format!("'{cadence}' never comes round"), "check the day-of-month and month fields");
    match tz {
        None => cron.find_next_occurrence(&after, false).map_err(never),
        Some(tz) => {
            let z = zone(tz)?;
            let local = after.with_timezone(&z);
            cron.find_next_occurrence(&local, false).map(|t| t.with_timezone(&Utc)).map_err(never)
        }
    }
}

/// A new schedule of a template.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// A cron expression, or `daily`, `weekly`, `monthly`.
    pub cron: String,
    pub template: String,
    pub params: BTreeMap<String, String>,
    pub tz: Option<String>,
}

/// What one schedule did in a worker pass.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fired {
    pub schedule_id: String,
    /// `report`, `awaiting-approval`, a run's status, `needs-input`, `invalid`, `rejected`, `failed`,
    /// `claim-lost` (the worker's claim lapsed and was taken over before it acted).
    pub outcome: String,
    pub detail: String,
    pub plan_id: Option<String>,
    pub run_id: Option<String>,
}

/// What a worker pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkReport {
    pub fired: Vec<Fired>,
    /// Staged deletes purged this pass (item ids).
    pub purged: Vec<String>,
    /// Problems that did not stop the pass.
    pub warnings: Vec<String>,
    /// Failed notifications whose next automatic attempt was due, tried again this pass.
    pub outbox: Tally,
}

/// Who a worker is and how long its claim on a schedule lasts.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique per worker process (`host:pid:random`): the schedule claim's owner.
    pub owner: String,
    /// Recorded as the actor of its plans, approvals requests and runs.
    pub actor: String,
    /// How long a claim holds before another worker may take the schedule over (a worker
    /// that died mid-firing).
    pub lease: chrono::Duration,
    /// Purge staged deletes whose grace period ended.
    pub purge: bool,
    /// How often a firing renews its claim (real time); `None` = a third of the lease.
    pub heartbeat: Option<std::time::Duration>,
}

impl WorkerOptions {
    pub fn new(owner: impl Into<String>, actor: impl Into<String>) -> WorkerOptions {
        WorkerOptions {
            owner: owner.into(),
            actor: actor.into(),
            lease: chrono::Duration::hours(1),
            purge: true,
            heartbeat: None,
        }
    }

    /// How often a firing renews its claim: [`WorkerOptions::heartbeat`], else a third of the
    /// lease (at least a second).
    pub fn heartbeat_every(&self) -> std::time::Duration {
        self.heartbeat.unwrap_or_else(|| {
            (self.lease.to_std().unwrap_or(std::time::Duration::from_secs(3600)) / 3)
                .max(std::time::Duration::from_secs(1))
        })
    }
}

/// A worker's claim on one schedule: its owner and the fencing epoch the claim raised.
pub(crate) struct Claim {
    id: String,
    owner: String,
    epoch: i64,
}

impl App {
    /// The site this service's connection points at, as schedules record it (without
    /// connecting).
    pub fn site_key(&self) -> String {
        match &self.connection {
            Connection::Demo(_) => site_key("builtin:demo", "demo"),
            Connection::Server(c) => site_key(&c.server, &c.site),
        }
    }

    /// Stores a schedule of a template: the cron expression and time zone are checked, the
    /// template must exist and the parameters must be valid now (a mistake is refused here,
    /// not found by the worker at 3 a.m.).
    pub async fn add_schedule(&self, s: NewSchedule, actor: &str) -> Result<ScheduleRow> {
        let now = self.clock.now();
        let next = next_fire(&s.cron, s.tz.as_deref(), now)?;
        let t = self.template(&s.template, None).await?;
        let instance = t.instantiate(&s.params)?;
        let row = ScheduleRow {
            id: tabflow_engine::plan::new_id("sch", now),
            cadence: s.cron.trim().to_string(),
            request: instance.request,
            intent: Value::Null,
            plan_id: String::new(),
            created_by: actor.to_string(),
            created_at: now,
            template: Some(t.name.clone()),
            params: serde_json::to_value(&s.params).unwrap_or(Value::Null),
            tz: s.tz.map(|z| z.trim().to_string()),
            site: Some(self.site_key()),
            next_run_at: Some(next),
            ..Default::default()
        };
        self.store.insert_schedule(&row).await.map_err(|e| Error::store(e, "check the state store"))?;
        tabflow_engine::audit::append(
            &self.store,
            tabflow_engine::audit::NewRecord {
                actor: actor.to_string(),
                action: "schedule.created".into(),
                after: Some(json!({"id": row.id, "cadence": row.cadence, "tz": row.tz, "template": row.template, "params": row.params, "site": row.site})),
                outcome: "stored".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(row)
    }

    /// The stored schedules, each with its next fire time (computed for rows that have none
    /// stored yet).
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        let mut rows = self.store.schedules().await.map_err(|e| Error::store(e, "check the state store"))?;
        for r in &mut rows {
            if r.next_run_at.is_none() {
                r.next_run_at = next_fire(&r.cadence, r.tz.as_deref(), r.last_run_at.unwrap_or(r.created_at)).ok();
            }
        }
        Ok(rows)
    }

    /// Forgets one recurring review; a usage error when there is none with that id.
    pub async fn remove_schedule(&self, id: &str) -> Result<()> {
        let removed = self.store.remove_schedule(id).await.map_err(|e| Error::store(e, "check the state store"))?;
        if !removed {
            return Err(Error::usage(format!("no schedule '{id}'"), "see tabflow schedule list"));
        }
        Ok(())
    }

    /// One worker pass: every due schedule of the connected site fires once, plans waiting
    /// for an approval start once approved, and staged deletes past their grace period are
    /// purged. Errors of one schedule are its outcome, never the end of the pass.
    pub async fn work_once(&self, w: &WorkerOptions) -> Result<WorkReport> {
        let mut report = WorkReport::default();
        let site = {
            let session = self.connect().await?;
            site_key(&session.server_label(), &session.client.config().site)
        };
        let rows = self.store.schedules().await.map_err(|e| Error::store(e, "check the state store"))?;
        for row in rows.into_iter().filter(|r| r.site.as_deref().is_none_or(|s| s == site)) {
            if let Some(pending) = row.pending_plan_id.clone() {
                let now = self.clock.now();
                if let Some(claim) = self.claim(&row.id, w, now, None).await? {
                    match self.heartbeat(&claim, w, Box::pin(self.follow_up(&row, &pending, w, &claim))).await {
                        Some(f) => {
                            self.finish(&claim, w, &f, None, pending_after(&f, &pending)).await?;
                            report.fired.push(f);
                        }
                        None => self.release(&claim).await?,
                    }
                }
            }
            let now = self.clock.now();
            let due = match row.next_run_at {
                Some(t) => t,
                None => match next_fire(&row.cadence, row.tz.as_deref(), row.last_run_at.unwrap_or(row.created_at)) {
                    Ok(t) => t,
                    Err(e) => {
                        report.warnings.push(format!("schedule {}: {}", row.id, e.message));
                        continue;
                    }
                },
            };
            if due > now {
                continue;
            }
            let Some(claim) = self.claim(&row.id, w, now, Some(now)).await? else { continue };
            let f = self.heartbeat(&claim, w, Box::pin(self.fire(&row, w, &claim))).await;
            // The next slot after now: a schedule that missed several slots fires once.
            let next = next_fire(&row.cadence, row.tz.as_deref(), now).ok();
            let pending = (f.outcome == "awaiting-approval").then(|| f.plan_id.clone()).flatten();
            self.finish(&claim, w, &f, next, pending).await?;
            report.fired.push(f);
        }
        if w.purge {
            self.purge_due_staged(w, &mut report).await;
        }
        match tabflow_engine::notify::retry_due(&self.store, Utc::now(), &self.delivery).await {
            Ok(t) => report.outbox = t,
            Err(e) => report.warnings.push(format!("could not retry failed notifications: {e}")),
        }
        Ok(report)
    }

    /// Passes of [`App::work_once`] every `interval` until `stop` turns true (what `tabflow
    /// worker` and `tabflow serve` run): a pass under way is finished, never cut off, so a
    /// claimed schedule is recorded and released. `each` sees every pass's report; an error
    /// of a pass (the store unreachable) is reported as a warning and the loop goes on.
    pub async fn work_loop(
        &self,
        w: &WorkerOptions,
        interval: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
        mut each: impl FnMut(&WorkReport),
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.work_once(w).await {
                Ok(pass) => each(&pass),
                Err(e) => each(&WorkReport {
                    warnings: vec![format!("the worker's pass failed: {} ({})", e.message, e.hint)],
                    ..Default::default()
                }),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Runs `work` while renewing the schedule's claim every [`WorkerOptions::heartbeat_every`]
    /// (to the clock's now + the lease), so a long firing keeps it and no other worker takes
    /// the schedule over. A claim found lost stops the renewing; the work still finishes (its
    /// outcome is then not recorded: `finish_schedule` refuses).
    async fn heartbeat<T>(&self, claim: &Claim, w: &WorkerOptions, work: impl std::future::Future<Output = T>) -> T {
        let id = claim.id.as_str();
        let beat = async {
            loop {
                tokio::time::sleep(w.heartbeat_every()).await;
                let until = self.clock.now() + w.lease;
                match self.store.renew_schedule(id, &claim.owner, claim.epoch, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(schedule = id, "the schedule's claim was lost; it is no longer renewed");
                        break;
                    }
                    Err(e) => tracing::warn!(schedule = id, "renewing the schedule's claim failed: {e}"),
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => out,
            // The heartbeat never ends; were it to, the work still finishes.
            _ = beat => work.await,
        }
    }

    async fn claim(
        &self,
        id: &str,
        w: &WorkerOptions,
        now: DateTime<Utc>,
        due_by: Option<DateTime<Utc>>,
    ) -> Result<Option<Claim>> {
        let epoch = self
            .store
            .claim_schedule(id, &w.owner, now, now + w.lease, due_by)
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(epoch.map(|epoch| Claim { id: id.to_string(), owner: w.owner.clone(), epoch }))
    }

    async fn release(&self, claim: &Claim) -> Result<()> {
        self.store
            .release_schedule(&claim.id, &claim.owner, claim.epoch)
            .await
            .map_err(|e| Error::store(e, "check the state store"))
    }

    /// Right before a firing acts (starts a run, asks for an approval, writes a report):
    /// whether this worker still holds the schedule's claim at its epoch. When it does not
    /// (it was paused past its lease and another worker took the schedule over), `f` says so
    /// and nothing more is done here.
    async fn still_held(&self, claim: Option<&Claim>, f: &mut Fired) -> bool {
        let Some(c) = claim else { return true };
        match self.store.schedule_held(&c.id, &c.owner, c.epoch, self.clock.now()).await {
            Ok(true) => true,
            Ok(false) => {
                f.outcome = "claim-lost".into();
                f.detail = format!(
                    "this worker's claim on schedule {} (epoch {}) lapsed and may have been taken over; nothing was started or sent here",
                    c.id, c.epoch
                );
                false
            }
            Err(e) => {
                f.outcome = "failed".into();
                f.detail = format!("the schedule's claim cannot be checked: {e}; nothing was started or sent");
                false
            }
        }
    }

    async fn finish(
        &self,
        claim: &Claim,
        w: &WorkerOptions,
        f: &Fired,
        next: Option<DateTime<Utc>>,
        pending: Option<String>,
    ) -> Result<()> {
        let o = ScheduleOutcome {
            at: Some(self.clock.now()),
            outcome: f.outcome.clone(),
            detail: f.detail.clone(),
            plan_id: f.plan_id.clone(),
            run_id: f.run_id.clone(),
            pending_plan_id: pending,
            next_run_at: next,
        };
        let id = claim.id.as_str();
        let kept = self
            .store
            .finish_schedule(id, &claim.owner, claim.epoch, &o)
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
        let _ = tabflow_engine::audit::append(
            &self.store,
            tabflow_engine::audit::NewRecord {
                actor: w.actor.clone(),
                action: "schedule.fired".into(),
                plan_id: f.plan_id.clone(),
                run_id: f.run_id.clone(),
                after: Some(json!({"schedule": id, "outcome": f.outcome, "detail": f.detail, "claim_kept": kept})),
                outcome: f.outcome.clone(),
                ..Default::default()
            },
        )
        .await;
        Ok(())
    }

    /// What to plan for a schedule: its template (newest version) with its parameters, or the
    /// intent a plan stored; a recurring review's own `schedule` parameter is dropped (the
    /// plan it fires must not store another schedule).
    async fn schedule_plan(&self, row: &ScheduleRow, actor: &str) -> Result<(Planned, Option<Template>)> {
        let note = format!(
            "Fired by schedule {} ({}{})",
            row.id,
            row.cadence,
            row.tz.as_deref().map(|z| format!(" {z}")).unwrap_or_default()
        );
        match &row.template {
            Some(name) => {
                let t = self.template(name, None).await?;
                let given: BTreeMap<String, Value> =
                    row.params.as_object().map(|o| o.clone().into_iter().collect()).unwrap_or_default();
                let mut instance = t.instantiate_values(&given)?;
                instance.intents = instance.intents.into_iter().map(without_schedule).collect();
                let planned = self.plan_instance(&t, instance, BTreeMap::new(), actor, false, vec![note]).await?;
                Ok((planned, Some(t)))
            }
            None => {
                let intent: Intent = serde_json::from_value(row.intent.clone()).map_err(|e| {
                    Error::failed(
                        format!("schedule {} holds an intent tabflow cannot read: {e}", row.id),
                        "remove it and ask for the review again",
                    )
                })?;
                let planned = self
                    .plan(crate::PlanRequest {
                        request: row.request.clone(),
                        source: crate::Source::Given { intents: vec![without_schedule(intent)], notes: vec![note] },
                        answers: BTreeMap::new(),
                        actor: actor.to_string(),
                        remember: false,
                    })
                    .await?;
                Ok((planned, None))
            }
        }
    }

    /// Fires a claimed schedule: plan, then report, run, or ask for an approval.
    async fn fire(&self, row: &ScheduleRow, w: &WorkerOptions, claim: &Claim) -> Fired {
        let mut f = Fired {
            schedule_id: row.id.clone(),
            outcome: String::new(),
            detail: String::new(),
            plan_id: None,
            run_id: None,
        };
        let (planned, template) = match self.schedule_plan(row, &w.actor).await {
            Ok(p) => p,
            Err(e) => {
                f.outcome = "failed".into();
                f.detail = format!("{} ({})", e.message, e.hint);
                return f;
            }
        };
        let origin = format!(
            "Schedule {} ({}{})",
            row.id,
            row.cadence,
            row.tz.as_deref().map(|z| format!(" {z}")).unwrap_or_default()
        );
        self.dispatch(planned, template.as_ref(), &origin, &w.actor, Some(claim), &mut f).await;
        f
    }

    /// What a plan made without a person (a schedule's or a Tableau event's) comes to:
    /// questions with a default take it; a plan that changes nothing writes its report (and the
    /// webhook hears `report-ready`); writes its template lets run unattended (never a
    /// destructive one) run; anything else asks for an approval, the approvers are told
    /// (`plan-awaiting-approval`) and it waits. `origin` says where it came from, in messages.
    pub(crate) async fn dispatch(
        &self,
        mut planned: Planned,
        template: Option<&Template>,
        origin: &str,
        actor: &str,
        claim: Option<&Claim>,
        f: &mut Fired,
    ) {
        // Questions with a default take it: the safe choice is the default (UX.md); a question
        // without one waits for a person.
        let defaults: BTreeMap<String, String> =
            planned.plan().questions.iter().filter_map(|q| Some((q.id.clone(), q.default.clone()?))).collect();
        if !planned.plan().questions.is_empty() && defaults.len() == planned.plan().questions.len() {
            let id = planned.plan().id.clone();
            match self.answer_quietly(&id, defaults, actor, template).await {
                Ok(p) => planned = p,
                Err(e) => {
                    f.outcome = "failed".into();
                    f.detail = e.message;
                    return;
                }
            }
        }
        let plan = planned.plan().clone();
        f.plan_id = Some(plan.id.clone());
        if planned.plan.is_err() {
            f.outcome = "invalid".into();
            f.detail = crate::error_findings(&plan).join("; ");
            return;
        }
        if let Some(q) = plan.questions.first() {
            f.outcome = "needs-input".into();
            f.detail = format!("[{}] {} — answer with tabflow plan --answer, or change the parameters", q.id, q.text);
            return;
        }
        if !self.still_held(claim, f).await {
            return;
        }
        if !plan.steps.iter().any(|s| s.is_write()) {
            match crate::reports::write_plan(&self.data_dir, &self.redactor, &plan) {
                Ok(list) => {
                    f.outcome = "report".into();
                    f.detail = list
                        .iter()
                        .find(|r| r["format"] == "html")
                        .and_then(|r| r["path"].as_str())
                        .unwrap_or_default()
                        .to_string();
                    self.announce_report(&plan, origin, &list).await;
                }
                Err(e) => {
                    f.outcome = "failed".into();
                    f.detail = format!("could not write the report: {}", e.message);
                }
            }
            return;
        }
        let unattended = plan.steps.iter().filter(|s| s.is_write()).all(|s| {
            s.effect != tabflow_engine::plan::Effect::Destructive
                && template.is_some_and(|t| t.unattended_allows(s.kind))
        });
        if unattended {
            self.start_and_wait(&plan.id, actor, claim, f).await;
            return;
        }
        match self.record_approval_request(&plan.id, Selection::All, actor).await {
            Ok(_) => {
                let told = self.tell_approvers(&plan, origin, template).await;
                f.outcome = "awaiting-approval".into();
                let then = if origin.starts_with("Schedule") { "; the next pass starts it" } else { "" };
                f.detail = format!(
                    "{} destructive change(s) wait for an approval (in the console or the API{then}), or run it now: tabflow apply {} --approve all; {told}",
                    plan.destructive_items().len(),
                    plan.id
                );
            }
            Err(e) => {
                f.outcome = "failed".into();
                f.detail = e.message;
            }
        }
    }

    async fn answer_quietly(
        &self,
        plan_id: &str,
        answers: BTreeMap<String, String>,
        actor: &str,
        template: Option<&Template>,
    ) -> Result<Planned> {
        let old = self.get_plan(plan_id).await?;
        // The notes saying where the plan came from go with it.
        let notes = old
            .notes
            .iter()
            .filter(|n| {
                n.starts_with("Made from template")
                    || n.starts_with("Fired by schedule")
                    || n.starts_with("Triggered by")
            })
            .cloned()
            .collect();
        let planned = self
            .plan(crate::PlanRequest {
                request: old.request.clone(),
                source: crate::Source::Given { intents: old.intents.clone(), notes },
                answers,
                actor: actor.to_string(),
                remember: false,
            })
            .await?;
        if let Some(t) = template {
            let _ = self.store.set_plan_template(&planned.plan().id, &label(&t.name, t.version)).await;
        }
        Ok(planned)
    }

    /// A plan waiting for an approval: started once approved (policy `auto_run_on_approval`);
    /// `None` while it still waits.
    async fn follow_up(&self, row: &ScheduleRow, plan_id: &str, w: &WorkerOptions, claim: &Claim) -> Option<Fired> {
        let mut f = Fired {
            schedule_id: row.id.clone(),
            outcome: String::new(),
            detail: String::new(),
            plan_id: Some(plan_id.to_string()),
            run_id: None,
        };
        // Approved and started by a person already (`tabflow apply --approve` runs it at once):
        // that run is the outcome.
        if let Ok(runs) = self.store.runs(500).await
            && let Some(r) = runs.iter().find(|r| r.plan_id == plan_id)
        {
            f.outcome = r.status.as_str().to_string();
            f.detail = format!("started by {}", r.actor);
            f.run_id = Some(r.id.clone());
            return Some(f);
        }
        match self.approval_status(plan_id).await {
            Ok(Ok(_)) if self.policy.auto_run(true) => {
                self.start_and_wait(plan_id, &w.actor, Some(claim), &mut f).await;
                Some(f)
            }
            Ok(Ok(_)) => None,
            Ok(Err(m @ (Missing::Rejected(_) | Missing::Expired | Missing::Stale))) => {
                f.outcome = if matches!(m, Missing::Rejected(_)) { "rejected" } else { "approval-lapsed" }.into();
                f.detail = crate::missing_text(&m);
                Some(f)
            }
            Ok(Err(_)) => None,
            Err(e) => {
                f.outcome = "failed".into();
                f.detail = e.message;
                Some(f)
            }
        }
    }

    async fn start_and_wait(&self, plan_id: &str, actor: &str, claim: Option<&Claim>, f: &mut Fired) {
        if !self.still_held(claim, f).await {
            return;
        }
        match self.start_run(plan_id, actor, StartOptions::default()).await {
            Ok(Start::Running(h)) => {
                f.run_id = Some(h.run_id().to_string());
                match h.wait().await {
                    Ok(o) => {
                        f.outcome = o.report.status.as_str().to_string();
                        f.detail = o
                            .report
                            .reports
                            .iter()
                            .find(|r| r["format"] == "html")
                            .and_then(|r| r["path"].as_str())
                            .unwrap_or_default()
                            .to_string();
                    }
                    Err(e) => {
                        f.outcome = "failed".into();
                        f.detail = e.message;
                    }
                }
            }
            Ok(Start::Scheduled(_)) | Ok(Start::NothingToDo(_)) => {
                f.outcome = "nothing-to-do".into();
            }
            Err(e) if matches!(e.kind, Kind::NeedsApproval(_)) => {
                f.outcome = "awaiting-approval".into();
                f.detail = e.message;
            }
            Err(e) => {
                f.outcome = "failed".into();
                f.detail = e.message;
            }
        }
    }

    /// Tells the approvers through the outbox (its webhook and email channels; event
    /// `plan-awaiting-approval`) that a plan waits for them; `origin` says what made it.
    /// Answers what happened, for the caller's detail.
    pub(crate) async fn tell_approvers(
        &self,
        plan: &tabflow_engine::Plan,
        origin: &str,
        t: Option<&Template>,
    ) -> String {
        let what = t.map(|t| format!(" from template {}", label(&t.name, t.version))).unwrap_or_default();
        let mut body =
            format!("{origin}: plan {}{what} waits for an approval.\n\nPlan {}: {}\n", plan.id, plan.id, plan.request);
        for s in plan.steps.iter().filter(|s| s.is_write()) {
            body.push_str(&format!("  {} {} ({} item(s), {})\n", s.id, s.title, s.items.len(), s.effect.as_str()));
        }
        let then = if origin.starts_with("Schedule") { " The worker starts it once approved." } else { "" };
        body.push_str(&format!("\nApprove: tabflow apply {} --approve all (or in the web console).{then}\n", plan.id));
        let m = tabflow_engine::notify::Message {
            recipient_id: "approvers".into(),
            recipient_name: "approvers".into(),
            recipient_email: String::new(),
            subject: format!("tabflow: plan {} awaiting approval ({})", plan.id, short(origin)),
            body: self.redact_text(&body),
        };
        match tabflow_engine::notify::deliver_event(
            &self.store,
            Some("plan-awaiting-approval"),
            &plan.id,
            &[m],
            &self.delivery,
        )
        .await
        {
            Ok(t) if t.sent > 0 => "the approvers were told".into(),
            Ok(t) if t.failed > 0 => "telling the approvers failed (tabflow outbox list)".into(),
            Ok(_) => "the message is in the outbox (no channel configured)".into(),
            Err(e) => format!("the message could not be queued: {e}"),
        }
    }

    /// Tells the webhook a review's report is ready (event `report-ready`), when it wants to.
    async fn announce_report(&self, plan: &tabflow_engine::Plan, origin: &str, reports: &[Value]) {
        let mut body = format!("{origin}: the report of plan {} is ready.\n\nRequest: {}\n", plan.id, plan.request);
        for r in reports {
            if let (Some(format), Some(path)) = (r["format"].as_str(), r["path"].as_str()) {
                body.push_str(&format!("  {format}: {path}\n"));
            }
        }
        for s in &plan.steps {
            if let Some(summary) = s.details.get("summary").and_then(Value::as_str) {
                body.push_str(&format!("  {}: {summary}\n", s.title));
            }
        }
        let m = tabflow_engine::notify::event_message(
            format!("tabflow: report ready — {}", short(&plan.request)),
            self.redact_text(&body),
        );
        if let Some(Err(e)) =
            tabflow_engine::notify::announce(&self.store, &self.delivery, "report-ready", &plan.id, m).await
        {
            tracing::warn!(plan = plan.id, "the report-ready event could not be queued: {e}");
        }
    }

    async fn purge_due_staged(&self, w: &WorkerOptions, report: &mut WorkReport) {
        let now = self.clock.now();
        let due = match self.store.staged().await {
            Ok(rows) => rows.iter().any(|s| s.purged_at.is_none() && s.purge_after <= now),
            Err(e) => {
                report.warnings.push(format!("could not read staged deletes: {e}"));
                return;
            }
        };
        if !due {
            return;
        }
        // Claimed item by item under the worker's identity: other workers of the store may be
        // purging at the same time. A minute at most (renewed every 20 s), so a killed
        // worker's claims come back soon.
        let lease = w
            .lease
            .to_std()
            .unwrap_or_default()
            .clamp(std::time::Duration::from_secs(3), std::time::Duration::from_secs(60));
        let claim = tabflow_engine::executor::PurgeClaim { owner: w.owner.clone(), lease };
        match self.purge_as(&w.actor, false, &claim).await {
            Ok(p) => {
                report.purged = p.purged.iter().map(|x| x.to_string()).collect();
            }
            Err(e) => report.warnings.push(format!("purge: {}", e.message)),
        }
    }
}

/// A text cut to 80 characters for a subject line.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// The pending plan after a follow-up: kept only while it still waits.
fn pending_after(f: &Fired, pending: &str) -> Option<String> {
    (f.outcome == "awaiting-approval").then(|| pending.to_string())
}

fn without_schedule(i: Intent) -> Intent {
    match i {
        Intent::AuditPermissions(mut a) => {
            a.schedule = None;
            Intent::AuditPermissions(a)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_fire_reads_cron_and_words_in_utc_or_a_zone_across_dst() {
        // 2026-03-02 is a Monday.
        assert_eq!(next_fire("0 8 * * MON", None, at("2026-03-02T07:59:00Z")).unwrap(), at("2026-03-02T08:00:00Z"));
        assert_eq!(next_fire("0 8 * * MON", None, at("2026-03-02T08:00:00Z")).unwrap(), at("2026-03-09T08:00:00Z"));
        assert_eq!(next_fire("weekly", None, at("2026-03-03T00:00:00Z")).unwrap(), at("2026-03-09T00:00:00Z"));
        assert_eq!(next_fire("monthly", None, at("2026-03-03T00:00:00Z")).unwrap(), at("2026-04-01T00:00:00Z"));
        // Berlin: CET (UTC+1) until 2026-03-29, CEST (UTC+2) after: 08:00 local both times.
        assert_eq!(
            next_fire("0 8 * * MON", Some("Europe/Berlin"), at("2026-03-22T00:00:00Z")).unwrap(),
            at("2026-03-23T07:00:00Z")
        );
        assert_eq!(
            next_fire("0 8 * * MON", Some("Europe/Berlin"), at("2026-03-24T00:00:00Z")).unwrap(),
            at("2026-03-30T06:00:00Z")
        );
        let e = next_fire("0 8 * *", None, at("2026-03-02T00:00:00Z")).unwrap_err();
        assert!(matches!(e.kind, Kind::Usage), "{e:?}");
        let e = next_fire("0 8 * * MON", Some("Mars/Olympus"), at("2026-03-02T00:00:00Z")).unwrap_err();
        assert!(e.message.contains("Mars/Olympus") && e.hint.contains("Europe/Berlin"), "{e:?}");
        assert!(next_fire("0 0 31 2 *", None, at("2026-03-02T00:00:00Z")).is_err());
    }
}
