//! Runs through the service: starting a validated, approved plan; rolling back, resuming
//! and purging; and the [`RunHandle`] every front end follows a run with. A run executes in
//! its own task; its progress is the engine's [`Event`] stream, fanned out to every
//! subscriber with the events so far first, so a subscriber that comes late misses nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tabflow_engine::executor::{Cancel, Purge, RunOptions, RunReport};
use tabflow_engine::plan::{Plan, StepKind};
use tabflow_engine::{Engine, Event, RunStatus, Store};
use tokio::sync::mpsc;

use crate::App;
use crate::error::{Error, Kind, Result, missing_hint, missing_text};

/// Knobs of a run a front end chooses.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Run steps that cannot be undone.
    pub acknowledge_irreversible: bool,
    /// Set it to stop the run between items (Ctrl-C, a cancel button): the run finishes the
    /// items in flight and ends `interrupted`, to be resumed or rolled back.
    pub cancel: Cancel,
    /// Queue the run's items for `tabflow worker`s sharing the store instead of running them
    /// here (scale-out): the run is created and answered at once, `running`.
    pub shared: bool,
}

/// What starting a plan did.
pub enum Start {
    /// A run started.
    Running(RunHandle),
    /// The plan changes nothing on the site but asks for recurring reviews: they were stored
    /// (`[{"id", "cadence"}]`); no run was started.
    Scheduled(Vec<Value>),
    /// The plan changes nothing on the site; no run was started. The plan's note saying why,
    /// if it has one.
    NothingToDo(Option<String>),
}

/// The end of a run (or of its rollback / resume).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The engine's report, with the reports written to the data directory listed.
    pub report: RunReport,
    /// Recurring reviews the plan asked for, stored after the run (`[{"id", "cadence"}]`).
    pub schedules: Vec<Value>,
    /// Problems that did not change the run's outcome (reports or learning not written).
    pub warnings: Vec<String>,
}

/// Progress so far and the live subscribers.
#[derive(Default)]
pub(crate) struct Feed {
    history: Vec<Event>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
    closed: bool,
}

/// A subscription to a run's events: every event from the start, then live ones; ends when
/// the engine is done with the run.
pub struct Events {
    backlog: VecDeque<Event>,
    live: Option<mpsc::UnboundedReceiver<Event>>,
}

impl Events {
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        match &mut self.live {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }
}

pub(crate) enum Done {
    Task(tokio::task::JoinHandle<Result<RunOutcome>>),
    Ready(Result<RunOutcome>),
}

/// A run in progress (or finished).
pub struct RunHandle {
    pub(crate) run_id: String,
    pub(crate) feed: Arc<Mutex<Feed>>,
    pub(crate) done: Done,
}

impl RunHandle {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Every event of the run so far, then the live ones.
    pub fn subscribe(&self) -> Events {
        subscribe(&self.feed)
    }

    /// A handle on the run's events that can be cloned and kept (by a server answering
    /// several watchers) while [`RunHandle::wait`] takes the handle itself.
    pub fn watch(&self) -> RunWatch {
        RunWatch { feed: self.feed.clone() }
    }

    /// The events so far (the run's current state).
    pub fn events(&self) -> Vec<Event> {
        self.feed.lock().unwrap_or_else(|e| e.into_inner()).history.clone()
    }

    /// Whether the engine is done with the run (the outcome may still be being recorded).
    pub fn is_finished(&self) -> bool {
        self.feed.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Waits for the run's outcome.
    pub async fn wait(self) -> Result<RunOutcome> {
        match self.done {
            Done::Ready(r) => r,
            Done::Task(t) => t.await.unwrap_or_else(|e| {
                Err(Error::failed(format!("the run's task stopped: {e}"), "see `tabflow runs list` and the audit log"))
            }),
        }
    }
}

/// The events of a run, for as many watchers as want them (see [`RunHandle::watch`]).
#[derive(Clone)]
pub struct RunWatch {
    feed: Arc<Mutex<Feed>>,
}

impl RunWatch {
    /// Every event of the run so far, then the live ones.
    pub fn subscribe(&self) -> Events {
        subscribe(&self.feed)
    }

    /// Whether the engine is done with the run.
    pub fn is_finished(&self) -> bool {
        self.feed.lock().unwrap_or_else(|e| e.into_inner()).closed
    }
}

fn subscribe(feed: &Mutex<Feed>) -> Events {
    let mut f = feed.lock().unwrap_or_else(|e| e.into_inner());
    let backlog = f.history.iter().cloned().collect();
    let live = if f.closed {
        None
    } else {
        let (tx, rx) = mpsc::unbounded_channel();
        f.subscribers.push(tx);
        Some(rx)
    };
    Events { backlog, live }
}

/// A channel for the engine whose events go into a new feed.
pub(crate) fn feed() -> (mpsc::UnboundedSender<Event>, Arc<Mutex<Feed>>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let feed = Arc::new(Mutex::new(Feed::default()));
    let f = feed.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            f.subscribers.retain(|s| s.send(e.clone()).is_ok());
            f.history.push(e);
        }
        let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
        f.closed = true;
        f.subscribers.clear();
    });
    (tx, feed)
}

/// Everything a run task needs, owned.
pub(crate) struct RunCtx {
    pub(crate) client: tabflow_client::Client,
    pub(crate) store: Store,
    pub(crate) policy: tabflow_engine::Policy,
    pub(crate) clock: Arc<dyn tabflow_plan::Clock>,
    pub(crate) data_dir: std::path::PathBuf,
    pub(crate) redactor: crate::Redactor,
    pub(crate) opts: RunOptions,
}

/// Whether a plan was made without a person asking: a schedule fired it ("Fired by schedule
/// …") or a Tableau event triggered it ("Triggered by …"). For such a plan the policy's
/// `auto_run_on_approval` is on unless set (`Policy::auto_run(true)`): the approval that
/// completes its approvals starts its run, since nobody is at a terminal to start it.
pub fn made_without_a_person(plan: &tabflow_engine::Plan) -> bool {
    plan.notes.iter().any(|n| n.starts_with("Fired by schedule") || n.starts_with("Triggered by"))
}

/// Whether a plan that changes nothing still asks for a report: an access audit or a
/// leaver's inventory produces one by nature, and a request that says report, inventory,
/// export or "list" asks for one. Plain questions ("how many workbooks …") are answered on
/// the terminal and start no run.
pub fn wants_report(plan: &tabflow_engine::Plan) -> bool {
    use tabflow_engine::plan::StepKind;
    if plan.steps.is_empty() {
        return false;
    }
    if plan.steps.iter().any(|s| matches!(s.kind, StepKind::AuditPermissions | StepKind::InventoryUser)) {
        return true;
    }
    // License reclamation's warnings (grace period): the run sends them and records them.
    if plan.steps.iter().any(|s| {
        s.kind == StepKind::NotifyOwners
            && !s.items.is_empty()
            && s.details.get("audience").and_then(serde_json::Value::as_str)
                == Some(tabflow_engine::notify::INACTIVE_USERS)
    }) {
        return true;
    }
    let request = plan.request.to_lowercase();
    let words: Vec<&str> = request.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    words.iter().any(|w| matches!(*w, "report" | "reports" | "inventory" | "export" | "audit" | "list"))
}

impl App {
    pub(crate) fn run_ctx(&self, client: &tabflow_client::Client, actor: &str, ack: bool, cancel: Cancel) -> RunCtx {
        RunCtx {
            client: client.clone(),
            store: self.store.clone(),
            policy: self.policy.clone(),
            clock: self.clock.clone(),
            data_dir: self.data_dir.clone(),
            redactor: self.redactor.clone(),
            opts: RunOptions {
                actor: actor.to_string(),
                concurrency: client.config().concurrency,
                acknowledge_irreversible: ack,
                crash_after_intents: self.crash_after_intents,
                without_journal: false,
                delivery: self.delivery.clone(),
                cancel,
                ..RunOptions::default()
            },
        }
    }

    /// Starts a run of a plan: refused with [`Kind::NeedsInput`] while it has unanswered
    /// questions and with [`Kind::NeedsApproval`] while a destructive plan lacks a valid
    /// approval. A plan that changes nothing starts no run. Answers once the run started
    /// (its id is known); the outcome comes from [`RunHandle::wait`].
    pub async fn start_run(&self, plan_id: &str, actor: &str, options: StartOptions) -> Result<Start> {
        let vp = self.validated_plan(plan_id).await?;
        let plan = vp.plan();
        if let Some(q) = plan.questions.first() {
            return Err(Error::new(
                Kind::NeedsInput,
                format!("plan {} has unanswered questions: [{}] {}", plan.id, q.id, q.text),
                format!("answer with: tabflow plan \"{}\" --answer {}=CHOICE -o plan.json", plan.request, q.id),
            ));
        }
        if let Some(run_id) = plan.rollback_of.clone() {
            // A rollback plan: undo exactly what was approved of its run.
            return self.start_rollback(vp, &run_id, actor, options.shared).await.map(Start::Running);
        }
        if !plan.steps.iter().any(|s| s.is_write()) {
            let stored = store_schedules(&self.store, plan, actor, self.clock.now()).await?;
            if !stored.is_empty() {
                return Ok(Start::Scheduled(stored));
            }
            if !wants_report(plan) {
                let why = plan.notes.iter().find(|n| n.starts_with("Nothing to do")).cloned();
                return Ok(Start::NothingToDo(why));
            }
            // A read-only plan that asks for a report (an access audit, an inventory, "list
            // …") runs like any other: the run is recorded in the audit log and its report
            // files are written (issue #18). Its read steps change nothing.
        }
        self.store.save_plan(plan).await.map_err(|e| Error::store(e, "check the state store"))?;
        let grant = if vp.has_destructive_steps() {
            match self.approval_status(plan_id).await? {
                Ok(g) => Some(g),
                Err(m) => return Err(needs_approval(plan, m)),
            }
        } else {
            None
        };
        let session = self.connect().await?;
        let mut ctx = self.run_ctx(&session.client, actor, options.acknowledge_irreversible, options.cancel.clone());
        ctx.opts.shared = options.shared;
        let (tx, feed) = feed();
        let mut first = {
            let mut f = feed.lock().unwrap_or_else(|e| e.into_inner());
            let (stx, srx) = mpsc::unbounded_channel();
            f.subscribers.push(stx);
            srx
        };
        let approved = grant.as_ref().and_then(|g| g.items.clone());
        let task = spawn_run(move || apply_task(ctx, vp, grant, approved, tx));
        // The run is started once the engine announces it; a refusal before that is the answer.
        let run_id = match first.recv().await {
            Some(Event::RunStarted { run_id, .. }) => run_id,
            _ => {
                let r = task.await.unwrap_or_else(|e| {
                    Err(Error::failed(format!("the run's task stopped: {e}"), "see `tabflow runs list`"))
                });
                let outcome = r?;
                let run_id = outcome.report.run_id.clone();
                return Ok(Start::Running(RunHandle { run_id, feed, done: Done::Ready(Ok(outcome)) }));
            }
        };
        drop(first);
        Ok(Start::Running(RunHandle { run_id, feed, done: Done::Task(task) }))
    }

    /// Finishes an interrupted run (or its rollback) from its journal. (Undoing a finished
    /// run is a plan of its own: [`App::plan_rollback`].) `cancel` stops a resumed run between
    /// items as it stops a run (it ends `interrupted` again); a rollback being finished goes
    /// on to its end.
    pub async fn resume(&self, run_id: &str, actor: &str, cancel: Cancel) -> Result<RunHandle> {
        let run = self.store.run(run_id).await.map_err(|e| Error::lookup(e, "see `tabflow runs list`"))?;
        // Refused before anything starts (the engine refuses it too, under the run's lease).
        if !run.status.is_unfinished() && run.status != RunStatus::Interrupted {
            return Err(Error::failed(
                format!(
                    "run {run_id} is {}; only unfinished runs (running, rolling-back or interrupted) can be resumed",
                    run.status.as_str()
                ),
                format!("see `tabflow runs show {run_id}` for what it did"),
            ));
        }
        // The run's plan must be for the site connected to (server URL and site id); the
        // engine also refuses a plan whose fingerprint is not the one the run was approved for.
        if let Ok(plan) = self.store.plan(&run.plan_id).await {
            self.check_site(&plan).await?;
        }
        let session = self.connect().await?;
        let ctx = self.run_ctx(&session.client, actor, false, cancel);
        let (tx, feed) = feed();
        let id = run_id.to_string();
        let task = spawn_run(move || resume_task(ctx, id, tx));
        Ok(RunHandle { run_id: run_id.to_string(), feed, done: Done::Task(task) })
    }

    /// Really deletes staged deletes whose grace period has passed (`now`: ignore the grace
    /// period); each only when its backup verifies and it is still where the run left it.
    /// Only the connected site's staged deletes are considered; when every staged delete
    /// still waiting was made on another site, the purge is refused naming it.
    pub async fn purge(&self, actor: &str, now: bool) -> Result<Purge> {
        self.purge_as(actor, now, &tabflow_engine::executor::PurgeClaim::this_process()).await
    }

    /// [`App::purge`] with each staged item claimed for `claim`'s owner under its lease (a
    /// worker's identity), so workers sharing a store never purge the same item twice.
    pub async fn purge_as(
        &self,
        actor: &str,
        now: bool,
        claim: &tabflow_engine::executor::PurgeClaim,
    ) -> Result<Purge> {
        let session = self.connect().await?;
        let server = session.server_label();
        let p = tabflow_engine::executor::purge_due(
            &session.client,
            &self.store,
            self.clock.as_ref(),
            actor,
            now,
            &server,
            claim,
        )
        .await
        .map_err(|e| Error::failed(e.to_string(), "see the audit log"))?;
        if !p.other_site.is_empty() && p.purged.is_empty() && p.kept.is_empty() && p.waiting.is_empty() {
            let site_id = session.client.session().await.site_id;
            return Err(Error::failed(
                format!(
                    "the {} staged delete(s) in this store were made on another site than the one connected to ({server}, site id {site_id}): {}",
                    p.other_site.len(),
                    p.other_site.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                ),
                "connect to the site they came from (--server/--site or --profile) and run `tabflow runs purge` there; nothing was deleted",
            ));
        }
        Ok(p)
    }
}

/// The refusal of a plan that cannot run yet for want of approval.
pub(crate) fn needs_approval(plan: &Plan, m: tabflow_engine::approval::Missing) -> Error {
    let message = if m == tabflow_engine::approval::Missing::None {
        format!("plan {} has {} destructive changes and no approval", plan.id, plan.destructive_items().len())
    } else {
        format!("plan {} cannot run yet: {}", plan.id, missing_text(&m))
    };
    let hint = missing_hint(&m);
    Error::new(Kind::NeedsApproval(m), message, hint)
}

/// Runs a run's future on a thread of its own, driven by the current runtime. The engine's
/// futures are not provably `Send` for every lifetime (a known limit of the compiler with
/// borrowed stores inside its streams), so they are not given to `tokio::spawn`; the
/// values moved in are owned and `Send`.
pub(crate) fn spawn_run<F, Fut>(make: F) -> tokio::task::JoinHandle<Result<RunOutcome>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<RunOutcome>>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(make()))
}

/// The task of a run: the engine's apply, then its reports, learning and schedules.
async fn apply_task(
    ctx: RunCtx,
    vp: tabflow_engine::ValidatedPlan,
    grant: Option<tabflow_engine::approval::Grant>,
    approved: Option<std::collections::BTreeSet<String>>,
    tx: mpsc::UnboundedSender<Event>,
) -> Result<RunOutcome> {
    let engine = Engine {
        client: &ctx.client,
        store: &ctx.store,
        policy: ctx.policy.clone(),
        events: Some(tx),
        clock: ctx.clock.clone(),
    };
    let result = engine.apply(&vp, grant, &ctx.opts).await;
    drop(engine);
    let mut report = result.map_err(|e| Error::failed(e.to_string(), "see `tabflow runs list` and the audit log"))?;
    if ctx.opts.shared {
        // Queued for the workers: the worker that finishes the run writes its reports.
        return Ok(RunOutcome { report, schedules: vec![], warnings: vec![] });
    }
    let plan = vp.plan();
    let mut warnings = attach_reports(&ctx.store, &ctx.data_dir, &ctx.redactor, &mut report).await;
    let mut schedules = vec![];
    if matches!(report.status, RunStatus::Succeeded | RunStatus::Partial) {
        let rows = tabflow_workflows::learn::from_run(plan, approved.as_ref());
        if let Err(e) = ctx.store.record_learning(&rows).await {
            warnings.push(format!("could not record what this run taught ({e}); `tabflow learn show` will miss it"));
        }
        schedules = store_schedules(&ctx.store, plan, &ctx.opts.actor, ctx.clock.now()).await?;
    }
    Ok(RunOutcome { report, schedules, warnings })
}

/// The task of a resume, then the run's reports again.
async fn resume_task(ctx: RunCtx, id: String, tx: mpsc::UnboundedSender<Event>) -> Result<RunOutcome> {
    let engine = Engine {
        client: &ctx.client,
        store: &ctx.store,
        policy: ctx.policy.clone(),
        events: Some(tx),
        clock: ctx.clock.clone(),
    };
    let r = engine.resume(&id, &ctx.opts).await;
    drop(engine);
    let mut report = r.map_err(|e| Error::failed(e.to_string(), "see `tabflow runs show ID`"))?;
    // The run's reports now show the restored (or resumed) items.
    let warnings = attach_reports(&ctx.store, &ctx.data_dir, &ctx.redactor, &mut report).await;
    Ok(RunOutcome { report, schedules: vec![], warnings })
}

/// Writes the run's four reports and lists them in `r.reports`; a failure to write them is
/// answered as a warning (the site was changed either way).
pub(crate) async fn attach_reports(
    store: &Store,
    data_dir: &std::path::Path,
    redactor: &crate::Redactor,
    r: &mut RunReport,
) -> Vec<String> {
    match crate::reports::write_run(store, data_dir, redactor, &r.run_id).await {
        Ok(list) => {
            r.reports = list;
            vec![]
        }
        Err(e) => vec![format!("could not write the run's reports ({e}); try `tabflow runs report {}`", r.run_id)],
    }
}

/// Stores the recurring reviews a plan asks for (steps `schedule-review`), once per plan;
/// answers the ones stored now.
async fn store_schedules(
    store: &Store,
    plan: &Plan,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Value>> {
    let mut stored = vec![];
    for s in plan.steps.iter().filter(|s| s.kind == StepKind::ScheduleReview) {
        let row = tabflow_engine::store::ScheduleRow {
            id: format!("sch-{}-{}", plan.id.trim_start_matches("p-"), s.id),
            cadence: s.details["cadence"].as_str().unwrap_or("monthly").to_string(),
            request: plan.request.clone(),
            intent: s.details["intent"].clone(),
            plan_id: plan.id.clone(),
            created_by: actor.to_string(),
            created_at: now,
            site: Some(crate::schedules::site_key(&plan.site.server, &plan.site.content_url)),
            ..Default::default()
        };
        if store.insert_schedule(&row).await.map_err(|e| Error::store(e, "check the state store"))? {
            tabflow_engine::audit::append(
                store,
                tabflow_engine::audit::NewRecord {
                    actor: actor.to_string(),
                    action: "schedule.created".into(),
                    plan_id: Some(plan.id.clone()),
                    after: Some(json!({"id": row.id, "cadence": row.cadence, "intent": row.intent})),
                    outcome: "stored".into(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
            stored.push(json!({"id": row.id, "cadence": row.cadence}));
        }
    }
    Ok(stored)
}
