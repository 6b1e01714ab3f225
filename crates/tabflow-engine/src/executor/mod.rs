//! The executor: runs a [`ValidatedPlan`] step by step (respecting `depends_on`), items of a
//! step in parallel up to the site's concurrency cap, with the write-ahead journal, stale
//! checks, progress events, automatic rollback on failure, later rollback, and resume after
//! a crash.
//!
//! Per item, the rule is always the same (see [`crate::ops`]): read the live state; if every
//! change is already at its after-state, record "already applied" and write nothing; if any
//! changed field drifted (or `updatedAt` moved and this run has not touched the item), skip
//! it and report; otherwise journal the before-image (durably), write, journal the outcome.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use tabflow_client::Client;
use tokio::sync::mpsc;

use crate::approval::Grant;
use crate::audit::NewRecord;
use crate::ops::{Op, Target};
use crate::plan::{Item, Plan, Step, StepKind};
use crate::policy::Policy;
use crate::store::{Entry, Fence, NewEntry, Phase, RunRow, RunStatus, StagedRow, Store, StoreError};
use crate::validate::ValidatedPlan;

mod compensate;
mod journal;

pub use compensate::{NOT_APPROVED, pending};
pub mod lease;
mod purge;
mod run;
mod shared;

use journal::{Ack, Recorder};
pub use purge::{Purge, PurgeClaim, purge_due};
use run::run_steps;
pub use shared::{SharedPass, SiteGate};

/// Progress, as every front end sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        run_id: String,
        plan_id: String,
        request: String,
        steps: usize,
    },
    StepStarted {
        run_id: String,
        index: usize,
        total: usize,
        step_id: String,
        title: String,
        items: usize,
        effect: String,
    },
    ItemFinished {
        run_id: String,
        step_id: String,
        k: usize,
        m: usize,
        item_id: String,
        name: String,
        outcome: String,
        detail: String,
    },
    StepFinished {
        run_id: String,
        step_id: String,
        done: usize,
        skipped: usize,
        failed: usize,
        elapsed_ms: u64,
    },
    RollbackStarted {
        run_id: String,
        reason: String,
        items: usize,
    },
    ItemRestored {
        run_id: String,
        k: usize,
        m: usize,
        item_id: String,
        name: String,
        outcome: String,
        detail: String,
    },
    RunFinished {
        run_id: String,
        status: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Client(#[from] tabflow_client::Error),
}

/// Per-step counts.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct StepReport {
    pub id: String,
    pub status: String,
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// An item that was not touched or not restored, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ItemNote {
    pub step_id: String,
    pub item_id: String,
    pub name: String,
    pub reason: String,
}

/// The outcome of `apply`, `resume` or `rollback`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub steps: Vec<StepReport>,
    pub skipped: Vec<ItemNote>,
    pub failed: Vec<ItemNote>,
    pub restored: usize,
    pub not_restored: Vec<ItemNote>,
    /// Items a rollback restored by re-creating them under a new id (deleted accounts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recreated: Vec<ItemNote>,
    pub reports: Vec<Value>,
    pub elapsed_ms: u64,
    /// Messages written to the outbox after the run: {"sent", "dry", "failed"}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Value>,
    /// Items this run moved to quarantine: {"items", "purge_after"} (the earliest day
    /// `tabflow runs purge` deletes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<Value>,
}

impl RunReport {
    /// The report of a rollback: `done` when everything was restored, `Failed`/`Partial`
    /// (as the caller says) otherwise.
    fn restoration(
        run_id: &str,
        restored: usize,
        not_restored: Vec<ItemNote>,
        short: RunStatus,
        started: Instant,
    ) -> RunReport {
        RunReport {
            run_id: run_id.into(),
            status: if not_restored.is_empty() { RunStatus::RolledBack } else { short },
            steps: vec![],
            skipped: vec![],
            failed: vec![],
            restored,
            not_restored,
            recreated: vec![],
            reports: vec![],
            elapsed_ms: started.elapsed().as_millis() as u64,
            notifications: None,
            staged: None,
        }
    }
}

/// What a person approved of a rollback plan (see [`Engine::rollback_approved`]).
#[derive(Debug, Clone)]
pub struct ApprovedRollback {
    /// The rollback plan.
    pub plan_id: String,
    /// Its valid approvals (used by the rollback).
    pub grant: Grant,
    /// The (step, item) pairs to undo, as `"s2/<item id>"`.
    pub items: BTreeSet<String>,
}

/// A request to stop a run (Ctrl-C at a terminal, later a server's cancel button): once set,
/// the run takes no new item, finishes and journals the items in flight, and ends with status
/// [`RunStatus::Interrupted`]; `resume` finishes it from the journal, `rollback` undoes it.
/// Clones share the one flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the run to stop between items.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Who runs it, as the journal and audit log record it. Front ends pass the person (the
    /// CLI: TABFLOW_ACTOR or the OS user); the default is "tabflow", never read from the
    /// environment here.
    pub actor: String,
    pub concurrency: usize,
    pub acknowledge_irreversible: bool,
    /// Test hook: stop (as if killed) after this many journal intents. Honoured only when the
    /// engine is built with the `test-hooks` feature (see [`crate::test_hooks`]).
    pub crash_after_intents: Option<usize>,
    /// Benchmark baseline only (`tabflow bench apply`): run without writing the journal and
    /// the per-item audit records, to measure what they cost. No front end sets it; a run
    /// without its journal could not be resumed or rolled back.
    pub without_journal: bool,
    /// Where the run's notifications go besides the outbox (front ends read it with
    /// [`crate::notify::Delivery::from_settings`] before the run, so a bad setting stops nothing
    /// half-way). The default sends nothing: messages stay `dry` in the outbox.
    pub delivery: crate::notify::Delivery,
    /// How long the run's lease lasts without renewal (see [`lease`]): a process that stops
    /// holds the run this long at most; the heartbeat renews it every third.
    pub lease: std::time::Duration,
    /// Stops the run between items when set (see [`Cancel`]); the default is never set.
    pub cancel: Cancel,
    /// Hand the run's items to `tabflow worker`s sharing the store instead of running them
    /// here (see [`shared`]): `apply` creates the run, queues its items and answers at once
    /// with the run `running`.
    pub shared: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            actor: "tabflow".into(),
            concurrency: 8,
            acknowledge_irreversible: false,
            crash_after_intents: None,
            without_journal: false,
            delivery: crate::notify::Delivery::default(),
            lease: std::time::Duration::from_secs(60),
            cancel: Cancel::default(),
            shared: false,
        }
    }
}

// ------------------------------------------------------------------------ the run

/// Shared state of one run.
struct Ctx<'a> {
    client: &'a Client,
    store: &'a Store,
    plan: &'a Plan,
    run_id: String,
    actor: String,
    approvers: String,
    events: Option<mpsc::UnboundedSender<Event>>,
    recorder: Recorder,
    /// The run's lease as this process holds it: every run-status write carries it.
    fence: Option<Fence>,
    /// step id → id of what it created (projects).
    created: Mutex<HashMap<String, String>>,
    /// Deleted account (or purged item) id → the id of what a rollback re-created for it.
    recreated: Mutex<HashMap<String, String>>,
    /// (step, item) → the before-image of this run's first intent for it (loaded on resume):
    /// what tells this run's interrupted multi-call change from someone else's.
    intent_images: Mutex<HashMap<(String, String), crate::ops::Image>>,
    /// Items this run has written (their `updatedAt` moved because of us).
    touched: Mutex<HashSet<String>>,
    intents: std::sync::atomic::AtomicUsize,
    crash_after: Option<usize>,
    policy: Policy,
    /// Where the run's events (`run-started`, `run-finished`, …) and owners' messages go.
    delivery: crate::notify::Delivery,
    /// "Applied" records queued but not yet known durable. They are not write-ahead (the
    /// intent before the write is), so an item need not wait for its own; every step waits
    /// for all of them before it ends, and a crash before that is handled by resume, which
    /// re-reads the item and finds it already applied.
    pending: Mutex<Vec<Ack>>,
    /// The site's subscriptions, read once for the before-images of staged deletes.
    subscriptions: tokio::sync::OnceCell<Vec<tabflow_client::types::Subscription>>,
    /// The site's extract refresh tasks, read once for the same before-images (deleting
    /// content deletes its refresh tasks; a restore re-creates them).
    refresh_tasks: tokio::sync::OnceCell<Vec<tabflow_site::ExtractRefresh>>,
    /// The engine's clock: when staged deletes were quarantined and when they may be purged.
    clock: std::sync::Arc<dyn crate::Clock>,
    /// Set when the run is asked to stop between items.
    cancel: Cancel,
}

impl Ctx<'_> {
    /// What the journal tells of this run's items (on resume, or when a worker takes items
    /// over): the projects its steps created, the items it wrote, and each item's first
    /// intent's before-image.
    fn remember(&self, journal: &[Entry]) {
        for e in journal {
            if let Some(c) = e.detail.strip_prefix("created:")
                && let Ok(mut m) = self.created.lock()
            {
                m.insert(e.step_id.clone(), c.to_string());
            }
            if let Ok(mut t) = self.touched.lock() {
                t.insert(e.item_id.clone());
            }
            if e.phase == Phase::Intent
                && let Ok(image) = serde_json::from_value::<crate::ops::Image>(e.image.clone())
                && let Ok(mut m) = self.intent_images.lock()
            {
                m.entry((e.step_id.clone(), e.item_id.clone())).or_insert(image);
            }
        }
    }

    /// The accounts this rollback re-created, as notes for the report.
    fn recreated_notes(&self) -> Vec<ItemNote> {
        let map = self.recreated.lock().map(|m| m.clone()).unwrap_or_default();
        let mut out: Vec<ItemNote> = map
            .iter()
            .map(|(old, new)| {
                let found = self
                    .plan
                    .steps
                    .iter()
                    .find_map(|s| s.item(old).map(|i| (s.id.clone(), i.name.clone(), i.kind.clone())));
                let (step_id, name, kind) = found.unwrap_or_default();
                let reason = if kind == "user" {
                    format!(
                        "re-created with a new id {new}; Tableau cannot restore a deleted account's id, sign-in history, personal access tokens or custom views"
                    )
                } else {
                    format!(
                        "purged, so re-published from the file saved before the delete, with a new id {new}; its revisions, usage counts, favourites, custom views and data alerts cannot be restored"
                    )
                };
                ItemNote { step_id, item_id: old.clone(), name, reason }
            })
            .collect();
        out.sort_by(|a, b| a.item_id.cmp(&b.item_id));
        out
    }

    fn emit(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    fn entry(&self, step: &Step, item: &Item, phase: Phase, image: Value, detail: String) -> NewEntry {
        NewEntry {
            run_id: self.run_id.clone(),
            step_id: step.id.clone(),
            item_id: item.id.clone(),
            item_type: item.kind.clone(),
            phase,
            image,
            detail,
        }
    }

    fn audit(
        &self,
        step: &Step,
        item: &Item,
        action: &str,
        before: Option<Value>,
        after: Option<Value>,
        outcome: &str,
    ) -> NewRecord {
        NewRecord {
            actor: self.actor.clone(),
            action: action.into(),
            plan_id: Some(self.plan.id.clone()),
            run_id: Some(self.run_id.clone()),
            step_id: Some(step.id.clone()),
            item_id: Some(item.id.clone()),
            before,
            after,
            approver: if self.approvers.is_empty() { None } else { Some(self.approvers.clone()) },
            outcome: outcome.into(),
        }
    }

    fn target_of(&self, op: &Op) -> Option<String> {
        match op {
            Op::Project { after: Target::CreatedBy { step, .. }, .. } => self.created.lock().ok()?.get(step).cloned(),
            Op::Project { after: Target::Id(id), .. } => Some(id.clone()),
            _ => None,
        }
    }

    /// Simulated crash for the crash trials: the process exits without any cleanup.
    fn defer(&self, entries: Vec<NewEntry>, audit: Vec<NewRecord>) -> Result<(), ExecError> {
        if let Some(rx) = self.recorder.send(entries, audit)?
            && let Ok(mut p) = self.pending.lock()
        {
            p.push(rx);
        }
        Ok(())
    }

    /// Waits until every deferred record is durable.
    async fn flush(&self) -> Result<(), ExecError> {
        let waiting: Vec<Ack> = self.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        for rx in waiting {
            Recorder::wait(rx).await?;
        }
        Ok(())
    }

    /// Refuses to go on once the run's lease is known lost: no further call to the site.
    fn check_lease(&self) -> Result<(), ExecError> {
        if self.recorder.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ExecError::Refused(format!(
                "lease lost: another process took run {} over; this one stops without further writes",
                self.run_id
            )));
        }
        Ok(())
    }

    fn maybe_crash(&self) {
        let n = self.intents.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        crate::test_hooks::crash_after(n, self.crash_after);
    }
}

/// The engine: one client, one store, one policy.
pub struct Engine<'a> {
    pub client: &'a Client,
    pub store: &'a Store,
    pub policy: Policy,
    pub events: Option<mpsc::UnboundedSender<Event>>,
    /// Where "now" comes from (approvals' expiry, grace days, leases).
    pub clock: std::sync::Arc<dyn crate::Clock>,
}

impl<'a> Engine<'a> {
    fn ctx(&self, plan: &'a Plan, run_id: &str, opts: &RunOptions, approvers: String, recorder: Recorder) -> Ctx<'a> {
        Ctx {
            clock: self.clock.clone(),
            fence: recorder.fence.clone(),
            client: self.client,
            store: self.store,
            plan,
            run_id: run_id.into(),
            actor: opts.actor.clone(),
            approvers,
            events: self.events.clone(),
            recorder,
            created: Mutex::new(HashMap::new()),
            recreated: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashSet::new()),
            intent_images: Mutex::new(HashMap::new()),
            intents: Default::default(),
            crash_after: opts.crash_after_intents,
            policy: self.policy.clone(),
            delivery: opts.delivery.clone(),
            pending: Mutex::new(Vec::new()),
            subscriptions: tokio::sync::OnceCell::new(),
            refresh_tasks: tokio::sync::OnceCell::new(),
            cancel: opts.cancel.clone(),
        }
    }

    /// Checks that the plan was made for the site the client is signed in to.
    async fn check_site(&self, plan: &Plan) -> Result<(), ExecError> {
        let session = self.client.session().await;
        if plan.site.id.is_empty() || plan.site.id != session.site_id {
            return Err(ExecError::Refused(format!(
                "plan {} was made for site '{}' ({}), but tabflow is signed in to site {}; re-plan on this site or connect to that one",
                plan.id, plan.site.content_url, plan.site.id, session.site_id
            )));
        }
        Ok(())
    }

    /// Runs a validated plan. Destructive steps need `grant` (from [`crate::approval::grant_for`]).
    pub async fn apply(
        &self,
        plan: &'a ValidatedPlan,
        grant: Option<Grant>,
        opts: &RunOptions,
    ) -> Result<RunReport, ExecError> {
        let p = plan.plan();
        self.check_site(p).await?;
        if !plan.needs_acknowledgement().is_empty() && !opts.acknowledge_irreversible {
            return Err(ExecError::Refused(format!(
                "step(s) {} cannot be undone; pass --acknowledge-irreversible to run them",
                plan.needs_acknowledgement().join(", ")
            )));
        }
        if plan.has_destructive_steps() && grant.is_none() {
            return Err(ExecError::Refused(format!("plan {} has destructive steps and no approval", p.id)));
        }
        self.store.save_plan(p).await?;
        let created_at = Utc::now();
        let run_id = crate::plan::new_id("r", created_at);
        let started = Instant::now();
        let row = RunRow {
            id: run_id.clone(),
            plan_id: p.id.clone(),
            status: RunStatus::Running,
            request: p.request.clone(),
            created_at,
            finished_at: None,
            actor: opts.actor.clone(),
            lease_owner: Some(lease::owner_id()),
            lease_expires_at: Some(
                self.clock.now() + chrono::Duration::from_std(opts.lease).unwrap_or(chrono::Duration::seconds(60)),
            ),
            lease_epoch: 1,
            approval_id: grant.as_ref().map(|g| g.approval_ids.join(",")),
            summary: json!({}),
            fingerprint: Some(p.fingerprint.clone()),
        };
        if opts.shared {
            return self.share(p, grant, opts, row).await;
        }
        self.store.insert_run(&row).await?;
        let fence = Fence { run_id: run_id.clone(), owner: lease::owner_id(), epoch: 1 };
        let held = lease::Held::start(self.store, self.clock.clone(), fence, opts.lease);
        let result = self.apply_held(p, grant, opts, &held.fence, &held.lost, started).await;
        held.release(self.store).await;
        result
    }

    /// A shared run (see [`shared`]): created without a lease, its approvals consumed, its
    /// write steps' items queued for the workers, `run.started` audited.
    async fn share(
        &self,
        p: &'a Plan,
        grant: Option<Grant>,
        opts: &RunOptions,
        mut row: RunRow,
    ) -> Result<RunReport, ExecError> {
        row.lease_owner = None;
        row.lease_expires_at = None;
        row.lease_epoch = 0;
        let run_id = row.id.clone();
        self.store.insert_run(&row).await?;
        if let Some(g) = &grant
            && let Err(e) = self.store.consume_approvals(&g.approval_ids, &run_id).await
        {
            self.store.set_run_status(&run_id, RunStatus::Cancelled, Some(&json!({"error": e.to_string()}))).await?;
            return Err(e.into());
        }
        let order = p.order().map_err(|e| ExecError::Refused(e.to_string()))?;
        let mut items = vec![];
        for (ord, si) in order.into_iter().enumerate() {
            let step = &p.steps[si];
            if !step.is_write() {
                continue;
            }
            let ids = step.changed_items();
            for item in step.items.iter().filter(|i| ids.contains(&i.id.as_str())) {
                items.push((ord as i64, step.id.clone(), item.id.clone()));
            }
        }
        self.store.queue_work(&run_id, &items).await?;
        let approvers = grant.as_ref().map(|g| g.approvers.join(", ")).unwrap_or_default();
        crate::audit::append(
            self.store,
            NewRecord {
                actor: opts.actor.clone(),
                action: "run.started".into(),
                plan_id: Some(p.id.clone()),
                run_id: Some(run_id.clone()),
                approver: if approvers.is_empty() { None } else { Some(approvers) },
                after: Some(
                    json!({"fingerprint": p.fingerprint, "request": p.request, "shared": true, "items": items.len()}),
                ),
                outcome: "queued".into(),
                ..Default::default()
            },
        )
        .await?;
        self.emit_started(&run_id, p);
        Ok(RunReport {
            run_id,
            status: RunStatus::Running,
            steps: vec![],
            skipped: vec![],
            failed: vec![],
            restored: 0,
            not_restored: vec![],
            recreated: vec![],
            reports: vec![],
            elapsed_ms: 0,
            notifications: None,
            staged: None,
        })
    }

    fn emit_started(&self, run_id: &str, p: &Plan) {
        if let Some(tx) = &self.events {
            let _ = tx.send(Event::RunStarted {
                run_id: run_id.into(),
                plan_id: p.id.clone(),
                request: p.request.clone(),
                steps: p.steps.len(),
            });
        }
    }

    /// Refuses to run, resume or roll back a shared run by itself while its items are
    /// queued or claimed by workers.
    async fn refuse_if_shared(&self, run_id: &str, what: &str) -> Result<(), ExecError> {
        let n = self.store.work_unfinished(run_id).await?;
        if n > 0 {
            return Err(ExecError::Refused(format!(
                "run {run_id} is shared among workers and {n} of its items are still queued or claimed; it cannot be {what} here — start `tabflow worker` on its store to finish it"
            )));
        }
        Ok(())
    }

    async fn apply_held(
        &self,
        p: &'a Plan,
        grant: Option<Grant>,
        opts: &RunOptions,
        fence: &Fence,
        lost: &std::sync::Arc<std::sync::atomic::AtomicBool>,
        started: Instant,
    ) -> Result<RunReport, ExecError> {
        let run_id = fence.run_id.clone();
        if let Some(g) = &grant
            && let Err(e) = self.store.consume_approvals(&g.approval_ids, &run_id).await
        {
            self.store
                .set_run_status_fenced(
                    Some(fence),
                    &run_id,
                    RunStatus::Cancelled,
                    Some(&json!({"error": e.to_string()})),
                )
                .await?;
            return Err(e.into());
        }
        let approvers = grant.as_ref().map(|g| g.approvers.join(", ")).unwrap_or_default();
        let (recorder, writer) =
            Recorder::start(self.store.clone(), !opts.without_journal, Some(fence.clone()), lost.clone());
        recorder
            .write(
                vec![],
                vec![NewRecord {
                    actor: opts.actor.clone(),
                    action: "run.started".into(),
                    plan_id: Some(p.id.clone()),
                    run_id: Some(run_id.clone()),
                    approver: if approvers.is_empty() { None } else { Some(approvers.clone()) },
                    after: Some(json!({"fingerprint": p.fingerprint, "request": p.request})),
                    outcome: "started".into(),
                    ..Default::default()
                }],
            )
            .await?;
        let ctx = self.ctx(p, &run_id, opts, approvers, recorder.clone());
        ctx.emit(Event::RunStarted {
            run_id: run_id.clone(),
            plan_id: p.id.clone(),
            request: p.request.clone(),
            steps: p.steps.len(),
        });
        ctx.announce_start().await;
        let approved = grant.and_then(|g| g.items);
        let report = self.finish(&ctx, approved, opts, &[], started).await;
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        report
    }

    async fn finish(
        &self,
        ctx: &Ctx<'_>,
        approved: Option<BTreeSet<String>>,
        opts: &RunOptions,
        journal: &[Entry],
        started: Instant,
    ) -> Result<RunReport, ExecError> {
        let (steps, skipped, failed, interrupted) = run_steps(ctx, &approved, opts.concurrency, journal).await?;
        let mut report = RunReport {
            run_id: ctx.run_id.clone(),
            status: RunStatus::Succeeded,
            steps,
            skipped,
            failed,
            restored: 0,
            not_restored: vec![],
            recreated: vec![],
            reports: vec![],
            elapsed_ms: 0,
            notifications: None,
            staged: None,
        };
        if !report.failed.is_empty() {
            let reason = format!(
                "{} failed ({}); undoing what this run changed",
                report.failed[0].name, report.failed[0].reason
            );
            self.store.set_run_status_fenced(ctx.fence.as_ref(), &ctx.run_id, RunStatus::RollingBack, None).await?;
            let c = self.compensate(ctx, &reason, opts.concurrency, None).await?;
            report.restored = c.restored;
            report.not_restored = c.not_restored;
            report.recreated = ctx.recreated_notes();
            report.status = if report.not_restored.is_empty() { RunStatus::RolledBack } else { RunStatus::Failed };
        } else if interrupted {
            // Stopped on request: what was in flight is done and journalled; nothing else is
            // told or counted until a resume finishes the run.
            report.status = RunStatus::Interrupted;
        } else if !report.skipped.is_empty() {
            report.status = RunStatus::Partial;
        }
        if matches!(report.status, RunStatus::Succeeded | RunStatus::Partial) {
            report.notifications = self.notify(ctx, &opts.delivery).await?;
            if ctx.plan.steps.iter().any(|s| s.kind == StepKind::FindInactiveUsers) {
                let journal = self.store.journal(&ctx.run_id).await?;
                crate::notify::record_license_notices(self.store, ctx.plan, &ctx.run_id, &journal, self.clock.now())
                    .await?;
            }
            let staged: Vec<StagedRow> =
                self.store.staged().await?.into_iter().filter(|s| s.run_id == ctx.run_id).collect();
            if let Some(first) = staged.iter().map(|s| s.purge_after).min() {
                report.staged = Some(json!({"items": staged.len(), "purge_after": first.to_rfc3339()}));
            }
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        self.close(ctx, &report).await?;
        Ok(report)
    }

    /// Tells owners what the run changed (see [`crate::notify`]): outbox first, then the
    /// configured channels. Recorded in the audit log. A message that cannot be delivered is
    /// recorded as `failed` in the outbox; it never fails the run.
    async fn notify(&self, ctx: &Ctx<'_>, delivery: &crate::notify::Delivery) -> Result<Option<Value>, ExecError> {
        if !ctx
            .plan
            .steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::NotifyOwners | StepKind::TransferOwnership | StepKind::ChangeSiteRoles))
        {
            return Ok(None);
        }
        if self.store.outbox(Some(&ctx.run_id)).await?.iter().any(|m| m.event.is_none()) {
            // Already told (a resumed run): never twice. (The run's events, such as
            // `run-started`, are not owners' messages.)
            return Ok(None);
        }
        let journal = self.store.journal(&ctx.run_id).await?;
        let messages = crate::notify::messages(ctx.plan, &ctx.run_id, &journal);
        if messages.is_empty() {
            return Ok(None);
        }
        let crate::notify::Tally { sent, dry, failed } =
            crate::notify::deliver(self.store, &ctx.run_id, &messages, delivery).await?;
        let summary = json!({"messages": messages.len(), "sent": sent, "dry": dry, "failed": failed, "channels": delivery.channels()});
        ctx.recorder
            .write(
                vec![],
                vec![NewRecord {
                    actor: ctx.actor.clone(),
                    action: "run.notified".into(),
                    plan_id: Some(ctx.plan.id.clone()),
                    run_id: Some(ctx.run_id.clone()),
                    after: Some(json!({
                        "recipients": messages.iter().map(|m| &m.recipient_name).collect::<Vec<_>>(),
                        "sent": sent, "dry": dry, "failed": failed, "channels": delivery.channels(),
                    })),
                    outcome: if failed > 0 {
                        "partly delivered".into()
                    } else if sent == messages.len() {
                        "delivered".into()
                    } else {
                        "queued".into()
                    },
                    ..Default::default()
                }],
            )
            .await?;
        Ok(Some(summary))
    }

    async fn close(&self, ctx: &Ctx<'_>, report: &RunReport) -> Result<(), ExecError> {
        let summary = serde_json::to_value(report).unwrap_or_default();
        self.store.set_run_status_fenced(ctx.fence.as_ref(), &ctx.run_id, report.status, Some(&summary)).await?;
        ctx.recorder
            .write(
                vec![],
                vec![NewRecord {
                    actor: ctx.actor.clone(),
                    action: "run.finished".into(),
                    plan_id: Some(ctx.plan.id.clone()),
                    run_id: Some(ctx.run_id.clone()),
                    after: Some(json!({"steps": report.steps, "skipped": report.skipped.len(), "failed": report.failed.len(), "restored": report.restored})),
                    outcome: report.status.as_str().into(),
                    ..Default::default()
                }],
            )
            .await?;
        ctx.emit(Event::RunFinished { run_id: ctx.run_id.clone(), status: report.status.as_str().into() });
        ctx.announce_end(report).await;
        Ok(())
    }
}

impl Ctx<'_> {
    /// Tells the webhook a run started (event `run-started`), when it wants to know. A
    /// delivery problem stays in the outbox; it never stops the run.
    async fn announce_start(&self) {
        let p = self.plan;
        let mut body =
            format!("Request: {}\nPlan: {}\nRun: {}\nStarted by: {}\n", p.request, p.id, self.run_id, self.actor);
        if !self.approvers.is_empty() {
            body.push_str(&format!("Approved by: {}\n", self.approvers));
        }
        for s in p.steps.iter().filter(|s| s.is_write()) {
            body.push_str(&format!("  {} {} ({} item(s), {})\n", s.id, s.title, s.items.len(), s.effect.as_str()));
        }
        let m =
            crate::notify::event_message(format!("tabflow: run {} started — {}", self.run_id, short(&p.request)), body);
        if let Some(Err(e)) = crate::notify::announce(self.store, &self.delivery, "run-started", &self.run_id, m).await
        {
            tracing::warn!(run = self.run_id, "the run-started event could not be queued: {e}");
        }
    }

    /// Tells the webhook how a run (or its rollback) ended: `run-finished`, `run-failed` or
    /// `run-rolled-back`.
    async fn announce_end(&self, report: &RunReport) {
        let event = crate::notify::run_end_event(report.status, report.failed.len());
        let p = self.plan;
        let mut body = format!(
            "Request: {}\nPlan: {}\nRun: {}\nStatus: {}\n",
            p.request,
            p.id,
            self.run_id,
            report.status.as_str()
        );
        for f in report.failed.iter().take(20) {
            body.push_str(&format!("  failed: {} ({})\n", f.name, f.reason));
        }
        if report.restored > 0 {
            body.push_str(&format!("Restored: {} item(s)\n", report.restored));
        }
        if !report.not_restored.is_empty() {
            body.push_str(&format!("Not restored: {} item(s)\n", report.not_restored.len()));
        }
        if matches!(report.status, RunStatus::Succeeded | RunStatus::Partial) {
            body.push_str(&format!("Undo: tabflow runs rollback {}\n", self.run_id));
        }
        let what = match event {
            "run-finished" => format!("finished ({})", report.status.as_str()),
            "run-rolled-back" => "rolled back".to_string(),
            _ => format!("failed ({})", report.status.as_str()),
        };
        let m =
            crate::notify::event_message(format!("tabflow: run {} {what} — {}", self.run_id, short(&p.request)), body);
        if let Some(Err(e)) = crate::notify::announce(self.store, &self.delivery, event, &self.run_id, m).await {
            tracing::warn!(run = self.run_id, "the {event} event could not be queued: {e}");
        }
    }
}

/// A request cut to 80 characters for a subject line.
fn short(request: &str) -> String {
    let mut s: String = request.chars().take(80).collect();
    if request.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// The audit record of a rollback's start (`run.rollback`, outcome `started`), in one process
/// or queued for workers.
pub(super) fn rollback_started(
    opts: &RunOptions,
    plan: &Plan,
    run_id: &str,
    approvers: &str,
    after: Option<serde_json::Value>,
) -> NewRecord {
    NewRecord {
        actor: opts.actor.clone(),
        action: "run.rollback".into(),
        plan_id: Some(plan.id.clone()),
        run_id: Some(run_id.into()),
        approver: if approvers.is_empty() { None } else { Some(approvers.to_string()) },
        after,
        outcome: "started".into(),
        ..Default::default()
    }
}

impl<'a> Engine<'a> {
    /// Rolls back a finished (or interrupted) run: every item it changed.
    pub async fn rollback(&self, run_id: &str, opts: &RunOptions) -> Result<RunReport, ExecError> {
        self.rollback_with(run_id, opts, None).await
    }

    /// Runs an approved rollback plan of a run (DESIGN.md §7, rollback plans): undoes exactly
    /// the approved (step, item) pairs of `approved.items` (`"s2/<item id>"`) and leaves every
    /// other item the run changed as it is, journaling "not approved: left as it is" for each.
    /// The plan's approvals are used by this rollback (recorded against the run undone).
    pub async fn rollback_approved(
        &self,
        run_id: &str,
        opts: &RunOptions,
        approved: &ApprovedRollback,
    ) -> Result<RunReport, ExecError> {
        self.rollback_with(run_id, opts, Some(approved)).await
    }

    async fn rollback_with(
        &self,
        run_id: &str,
        opts: &RunOptions,
        approved: Option<&ApprovedRollback>,
    ) -> Result<RunReport, ExecError> {
        self.refuse_if_shared(run_id, "rolled back").await?;
        let run = self.store.run(run_id).await?;
        if run.status == RunStatus::RolledBack {
            return Err(ExecError::Refused(format!("run {run_id} is already rolled back")));
        }
        let (plan, held) = self.take_over(&run, opts, None).await?;
        // Shared (`runs rollback --shared`): the compensations are queued for the workers
        // under the same lease and approvals; nothing is undone by this process.
        let result = match approved {
            Some(a) => match self.store.consume_approvals(&a.grant.approval_ids, run_id).await {
                Ok(()) if opts.shared => self.queue_rollback(&run, &plan, opts, &held, Some(a)).await,
                Ok(()) => self.rollback_held(&run, &plan, opts, &held, Some(a)).await,
                Err(e) => Err(e.into()),
            },
            None if opts.shared => self.queue_rollback(&run, &plan, opts, &held, None).await,
            None => self.rollback_held(&run, &plan, opts, &held, None).await,
        };
        held.release(self.store).await;
        result
    }

    /// The stored plan of an existing run, checked against this site, and the run's lease
    /// claimed for `owner` — a shared run's worker — or else for this process (renewed until
    /// released).
    async fn take_over(
        &self,
        run: &RunRow,
        opts: &RunOptions,
        owner: Option<&str>,
    ) -> Result<(Plan, lease::Held), ExecError> {
        let plan = self.store.plan_of_run(run).await?;
        self.check_site(&plan).await?;
        let me = owner.map_or_else(lease::owner_id, str::to_string);
        let fence = lease::claim(self.store, self.clock.as_ref(), run, opts.lease, &me).await?;
        let held = lease::Held::start(self.store, self.clock.clone(), fence, opts.lease);
        // The caller decided on the status it read before the lease was claimed; another
        // process may have held the lease meanwhile and finished (or rolled back) the run.
        // Read under the lease, the status is final: if it moved, nothing is done here.
        let now = match self.store.run(&run.id).await {
            Ok(now) => now,
            Err(e) => {
                held.release(self.store).await;
                return Err(e.into());
            }
        };
        if now.status != run.status {
            held.release(self.store).await;
            return Err(ExecError::Refused(format!(
                "run {} became {} (it was {}) while this process waited for its lease: another process acted on it; nothing was done here — see `tabflow runs show {}`",
                run.id,
                now.status.as_str(),
                run.status.as_str(),
                run.id
            )));
        }
        Ok((plan, held))
    }

    async fn rollback_held(
        &self,
        run: &RunRow,
        plan: &Plan,
        opts: &RunOptions,
        held: &lease::Held,
        approved: Option<&ApprovedRollback>,
    ) -> Result<RunReport, ExecError> {
        let (run_id, fence, lost) = (run.id.as_str(), &held.fence, &held.lost);
        self.store.set_run_status_fenced(Some(fence), run_id, RunStatus::RollingBack, None).await?;
        let started = Instant::now();
        let (recorder, writer) = Recorder::start(self.store.clone(), true, Some(fence.clone()), lost.clone());
        let approvers = approved.map(|a| a.grant.approvers.join(", ")).unwrap_or_default();
        let ctx = self.ctx(plan, run_id, opts, approvers.clone(), recorder.clone());
        recorder
            .write(
                vec![],
                vec![rollback_started(
                    opts,
                    plan,
                    run_id,
                    &approvers,
                    approved.map(|a| {
                        json!({"rollback_plan": a.plan_id, "approvals": a.grant.approval_ids, "items": a.items.len()})
                    }),
                )],
            )
            .await?;
        let c = self.compensate(&ctx, "rollback requested", opts.concurrency, approved.map(|a| &a.items)).await?;
        let mut report = RunReport::restoration(run_id, c.restored, c.not_restored, RunStatus::Partial, started);
        if !c.unapproved.is_empty() {
            // Items left as they were: the run is not wholly undone.
            report.status = RunStatus::Partial;
            report.skipped = c.unapproved;
        }
        report.recreated = ctx.recreated_notes();
        self.close(&ctx, &report).await?;
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        Ok(report)
    }

    /// Finishes an interrupted run (or its rollback) from the journal: items already applied
    /// are detected and not written again.
    pub async fn resume(&self, run_id: &str, opts: &RunOptions) -> Result<RunReport, ExecError> {
        self.refuse_if_shared(run_id, "resumed").await?;
        self.resume_shared(run_id, opts, None).await
    }

    /// [`Engine::resume`] without the shared-run check: how the worker that closed a shared
    /// run's queue finishes it, holding the run's lease under its own id (`owner`).
    pub(super) async fn resume_shared(
        &self,
        run_id: &str,
        opts: &RunOptions,
        owner: Option<&str>,
    ) -> Result<RunReport, ExecError> {
        let run = self.store.run(run_id).await?;
        if !run.status.is_unfinished() && run.status != RunStatus::Interrupted {
            return Err(ExecError::Refused(format!(
                "run {run_id} is {}; only unfinished runs (running, rolling-back or interrupted) can be resumed",
                run.status.as_str()
            )));
        }
        let (plan, held) = self.take_over(&run, opts, owner).await?;
        let result = self.resume_held(&run, &plan, opts, &held).await;
        held.release(self.store).await;
        result
    }

    async fn resume_held(
        &self,
        run: &RunRow,
        plan: &Plan,
        opts: &RunOptions,
        held: &lease::Held,
    ) -> Result<RunReport, ExecError> {
        let (run_id, fence, lost) = (run.id.as_str(), &held.fence, &held.lost);
        if run.status == RunStatus::Interrupted {
            self.store.set_run_status_fenced(Some(fence), run_id, RunStatus::Running, None).await?;
        }
        // Read after the claim: nothing can be appended to it by another process now.
        let journal = self.store.journal(run_id).await?;
        let started = Instant::now();
        let (recorder, writer) = Recorder::start(self.store.clone(), true, Some(fence.clone()), lost.clone());
        let ctx = self.ctx(plan, run_id, opts, String::new(), recorder.clone());
        ctx.remember(&journal);
        // A project created just before the crash, whose id was never journaled: adopt it.
        self.adopt_created(&ctx, &journal).await?;
        recorder
            .write(
                vec![],
                vec![NewRecord {
                    actor: opts.actor.clone(),
                    action: "run.resumed".into(),
                    plan_id: Some(plan.id.clone()),
                    run_id: Some(run_id.into()),
                    outcome: run.status.as_str().into(),
                    ..Default::default()
                }],
            )
            .await?;
        let result = if run.status == RunStatus::RollingBack {
            // Items a partly approved rollback left as they were stay so (the journal says so).
            let c = self.compensate(&ctx, "resuming the interrupted rollback", opts.concurrency, None).await?;
            let mut report = RunReport::restoration(run_id, c.restored, c.not_restored, RunStatus::Failed, started);
            report.recreated = ctx.recreated_notes();
            self.close(&ctx, &report).await?;
            Ok(report)
        } else {
            // The approved subset was fixed when the run started.
            let approved = self.approved_items_of(run).await?;
            self.finish(&ctx, approved, opts, &journal, started).await
        };
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        result
    }
}
