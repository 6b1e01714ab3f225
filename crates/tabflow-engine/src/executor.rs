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
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use tabflow_client::Client;
use tokio::sync::{mpsc, oneshot};

use crate::approval::Grant;
use crate::audit::NewRecord;
use crate::ops::{self, Image, Op, OpError, OpResult, State, Target};
use crate::plan::{Effect, Item, Plan, Step, StepKind};
use crate::policy::Policy;
use crate::store::{Entry, NewEntry, Phase, RunRow, RunStatus, StagedRow, Store, StoreError};
use crate::validate::ValidatedPlan;

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

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub actor: String,
    pub concurrency: usize,
    pub acknowledge_irreversible: bool,
    /// Test hook: stop (as if killed) after this many journal intents. `None` in production.
    pub crash_after_intents: Option<usize>,
    /// Benchmark baseline only (`tabflow bench apply`): run without writing the journal and
    /// the per-item audit records, to measure what they cost. No front end sets it; a run
    /// without its journal could not be resumed or rolled back.
    pub without_journal: bool,
    /// Where the run's notifications go besides the outbox (front ends read it with
    /// [`crate::notify::Delivery::from_env`] before the run, so a bad setting stops nothing
    /// half-way). The default sends nothing: messages stay `dry` in the outbox.
    pub delivery: crate::notify::Delivery,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            actor: whoami(),
            concurrency: 8,
            acknowledge_irreversible: false,
            crash_after_intents: None,
            without_journal: false,
            delivery: crate::notify::Delivery::default(),
        }
    }
}

/// The OS user running tabflow (the actor recorded in the audit log).
pub fn whoami() -> String {
    std::env::var("TABFLOW_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

// ------------------------------------------------------------------------ journal writer

struct WriteReq {
    entries: Vec<NewEntry>,
    audit: Vec<NewRecord>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// Group commit: everything queued while the previous transaction was being written goes
/// into the next one. Each request is acknowledged only once durable.
#[derive(Clone)]
struct Recorder {
    tx: mpsc::UnboundedSender<WriteReq>,
    /// False only for the benchmark baseline: writes are acknowledged without being stored.
    enabled: bool,
}

impl Recorder {
    fn start(store: Store, enabled: bool) -> (Recorder, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<WriteReq>();
        let handle = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                    if batch.len() >= 512 {
                        break;
                    }
                }
                let entries: Vec<NewEntry> = batch.iter().flat_map(|b| b.entries.iter().cloned()).collect();
                let audit: Vec<NewRecord> = batch.iter_mut().flat_map(|b| std::mem::take(&mut b.audit)).collect();
                let mut res = store.append(&entries).await.map_err(|e| e.to_string());
                if res.is_ok() && !audit.is_empty() {
                    res = crate::audit::append_many(&store, audit).await.map(|_| ()).map_err(|e| e.to_string());
                }
                for b in batch {
                    let _ = b.ack.send(res.clone());
                }
            }
        });
        (Recorder { tx, enabled }, handle)
    }

    async fn write(&self, entries: Vec<NewEntry>, audit: Vec<NewRecord>) -> Result<(), ExecError> {
        match self.send(entries, audit)? {
            Some(rx) => Recorder::wait(rx).await,
            None => Ok(()),
        }
    }

    /// Queues a write without waiting for it to be durable; the caller waits later.
    fn send(&self, entries: Vec<NewEntry>, audit: Vec<NewRecord>) -> Result<Option<Ack>, ExecError> {
        if !self.enabled {
            return Ok(None);
        }
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(WriteReq { entries, audit, ack })
            .map_err(|_| ExecError::Refused("the journal writer stopped".into()))?;
        Ok(Some(rx))
    }

    async fn wait(rx: Ack) -> Result<(), ExecError> {
        rx.await
            .map_err(|_| ExecError::Refused("the journal writer stopped".into()))?
            .map_err(|e| ExecError::Refused(format!("cannot write the journal: {e}")))
    }
}

type Ack = oneshot::Receiver<Result<(), String>>;

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
    /// step id → id of what it created (projects).
    created: Mutex<HashMap<String, String>>,
    /// Deleted account (or purged item) id → the id of what a rollback re-created for it.
    recreated: Mutex<HashMap<String, String>>,
    /// Items this run has written (their `updatedAt` moved because of us).
    touched: Mutex<HashSet<String>>,
    intents: std::sync::atomic::AtomicUsize,
    crash_after: Option<usize>,
    policy: Policy,
    /// "Applied" records queued but not yet known durable. They are not write-ahead (the
    /// intent before the write is), so an item need not wait for its own; every step waits
    /// for all of them before it ends, and a crash before that is handled by resume, which
    /// re-reads the item and finds it already applied.
    pending: Mutex<Vec<Ack>>,
    /// The site's subscriptions, read once for the before-images of staged deletes.
    subscriptions: tokio::sync::OnceCell<Vec<tabflow_wire::xml::Subscription>>,
}

impl Ctx<'_> {
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

    fn maybe_crash(&self) {
        let n = self.intents.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.crash_after == Some(n) {
            eprintln!("tabflow: simulated crash after {n} journal intents (TABFLOW_CRASH_AFTER)");
            std::process::exit(137);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ItemOutcome {
    Done,
    AlreadyApplied,
    Skipped(String),
    Failed(String),
}

fn ops_of(step: &Step, item: &Item) -> Result<Vec<Op>, OpError> {
    step.changes_of(&item.id).map(|c| Op::from_change(&item.kind, c).map_err(OpError::from)).collect()
}

fn describe_drift(op: &Op, live: &Image) -> String {
    match op {
        Op::Project { .. } => {
            format!("its project changed since the plan (now {})", live.project_id.clone().unwrap_or_default())
        }
        Op::Owner { .. } => {
            format!("its owner changed since the plan (now {})", live.owner_id.clone().unwrap_or_default())
        }
        Op::Name { .. } => format!("it was renamed since the plan (now '{}')", live.name.clone().unwrap_or_default()),
        Op::Permissions { .. } => "its permissions changed since the plan".into(),
        Op::SiteRole { .. } => {
            format!("its site role changed since the plan (now {})", live.site_role.clone().unwrap_or_default())
        }
        _ if !live.exists => "it no longer exists".into(),
        Op::Repoint { before, .. } => format!(
            "it no longer uses '{}' (its file points at {})",
            before.name,
            live.datasources.iter().flatten().cloned().collect::<Vec<_>>().join(", ")
        ),
        _ => "it changed since the plan".into(),
    }
}

/// After-image: the live image with the ops applied (what a read-back must show).
/// A set after a change from `before` to `after` that only touches what differs (members
/// someone else added meanwhile stay).
fn with_change(now: Option<BTreeSet<String>>, before: &BTreeSet<String>, after: &BTreeSet<String>) -> BTreeSet<String> {
    let mut set = now.unwrap_or_default();
    for x in before.difference(after) {
        set.remove(x);
    }
    set.extend(after.difference(before).cloned());
    set
}

fn after_image(live: &Image, ops: &[Op], ctx_target: &dyn Fn(&Op) -> Option<String>) -> Image {
    let mut img = live.clone();
    for op in ops {
        match op {
            Op::Project { .. } => {
                if img.kind == "project" {
                    img.parent_id = ctx_target(op);
                } else {
                    img.project_id = ctx_target(op);
                }
            }
            Op::Owner { after, .. } => img.owner_id = Some(after.clone()),
            Op::Name { after, .. } => img.name = Some(after.clone()),
            Op::Tags { before, after } => img.tags = Some(with_change(img.tags.take(), before, after)),
            Op::Permissions { after, .. } => img.permissions = Some(after.clone()),
            Op::ContentPermissions { after, .. } => img.content_permissions = Some(after.clone()),
            Op::SiteRole { after, .. } => img.site_role = Some(after.clone()),
            Op::Groups { before, after } => img.groups = Some(with_change(img.groups.take(), before, after)),
            Op::CreateProject { .. } => img.exists = true,
            Op::DeleteSubscription { .. } | Op::DeleteUser { .. } => img.exists = false,
            Op::Repoint { before, after } => {
                let mut d = img.datasources.clone().unwrap_or_default();
                d.remove(&before.content_url);
                d.insert(after.content_url.clone());
                img.datasources = Some(d);
            }
        }
    }
    img
}

/// Whether a move lands in a project whose permissions are locked (so the item's own
/// permissions change with it and belong in the before-image).
async fn locked_targets(client: &Client, step: &Step) -> HashSet<String> {
    let ids: BTreeSet<&str> =
        step.changes.iter().filter(|c| c.field == "project").filter_map(|c| c.after_id.as_deref()).collect();
    if ids.is_empty() {
        return HashSet::new();
    }
    match client.projects().collect().await {
        Ok(all) => all
            .into_iter()
            .filter(|p| p.id.as_deref().is_some_and(|i| ids.contains(i)))
            .filter(|p| p.content_permissions.as_deref().is_some_and(|c| c.starts_with("Locked")))
            .filter_map(|p| p.id)
            .collect(),
        Err(_) => ids.into_iter().map(str::to_string).collect(),
    }
}

async fn process_item(
    ctx: &Ctx<'_>,
    step: &Step,
    item: &Item,
    with_permissions: bool,
) -> Result<ItemOutcome, ExecError> {
    let ops = match ops_of(step, item) {
        Ok(o) => o,
        Err(e) => return Ok(ItemOutcome::Failed(e.to_string())),
    };
    if let Some(Op::CreateProject { name, parent_id, .. }) = ops.first() {
        return create_project_item(ctx, step, item, name, parent_id.as_deref(), &ops[0]).await;
    }
    // A staged delete keeps what a restore from the saved file has to put back: the explicit
    // permissions and the subscriptions on the item.
    let staged = step.kind == StepKind::StageDelete;
    let with_permissions = with_permissions || staged;
    let mut live = match read_for(ctx.client, &item.kind, &item.id, &ops, with_permissions).await {
        Ok(l) => l,
        Err(e) => return Ok(ItemOutcome::Failed(format!("cannot read it: {e}"))),
    };
    if staged {
        let subs = ctx.subscriptions.get_or_try_init(|| ctx.client.subscriptions().collect()).await;
        let filled = match subs {
            Ok(subs) => ops::fill_for_restore(ctx.client, &mut live, subs).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = filled {
            return Ok(ItemOutcome::Failed(format!("cannot read what a restore would need: {e}")));
        }
    }
    let targets: Vec<Option<String>> = ops.iter().map(|o| ctx.target_of(o)).collect();
    let states: Vec<State> = ops.iter().zip(&targets).map(|(o, t)| ops::classify(o, &live, t.as_deref())).collect();
    let tgt = |o: &Op| ctx.target_of(o);
    if states.iter().all(|s| *s == State::After) {
        let after = after_image(&live, &ops, &tgt);
        ctx.recorder
            .write(
                vec![ctx.entry(
                    step,
                    item,
                    Phase::AlreadyApplied,
                    serde_json::to_value(&after).unwrap_or_default(),
                    String::new(),
                )],
                vec![ctx.audit(
                    step,
                    item,
                    step.kind.as_str(),
                    None,
                    serde_json::to_value(&after).ok(),
                    "already-applied",
                )],
            )
            .await?;
        return Ok(ItemOutcome::AlreadyApplied);
    }
    if let Some(i) = states.iter().position(|s| *s == State::Drifted) {
        return Ok(ItemOutcome::Skipped(describe_drift(&ops[i], &live)));
    }
    let touched = ctx.touched.lock().map(|t| t.contains(&item.id)).unwrap_or(false);
    if !touched
        && let (Some(planned), Some(now)) = (&item.updated_at, &live.updated_at)
        && planned != now
        && !ops.iter().any(|o| matches!(o, Op::CreateProject { .. } | Op::DeleteSubscription { .. }))
    {
        return Ok(ItemOutcome::Skipped(format!(
            "it was updated at {now}, after the plan was made ({planned}); re-plan to include it"
        )));
    }
    // Staged delete: the backup must exist before the item is moved to quarantine.
    // A repoint keeps the file as it was before this run, to republish on rollback.
    let mut backup_sha = None;
    let keeps_file = ops.iter().any(Op::needs_file);
    if (step.kind == StepKind::StageDelete || keeps_file) && matches!(item.kind.as_str(), "workbook" | "datasource") {
        // This run's own copy: an older run's file may predate edits made since.
        let saved = ctx.store.backup_of(&ctx.run_id, &item.id).await;
        match saved {
            Ok(Some(_)) => {}
            _ => {
                let downloaded = match item.kind.as_str() {
                    "workbook" => {
                        ctx.client.download_workbook(&tabflow_wire::ids::WorkbookId::new(&item.id), true).await
                    }
                    _ => ctx.client.download_datasource(&tabflow_wire::ids::DatasourceId::new(&item.id), true).await,
                };
                match downloaded {
                    Ok((name, bytes)) => {
                        backup_sha = Some(ctx.store.put_backup(&ctx.run_id, &item.id, &name, &bytes).await?);
                    }
                    Err(e) => return Ok(ItemOutcome::Failed(format!("cannot download it for the backup: {e}"))),
                }
            }
        }
    }
    // Write-ahead: the before-image is durable before the first write.
    ctx.maybe_crash();
    {
        if let Ok(mut t) = ctx.touched.lock() {
            t.insert(item.id.clone());
        }
    }
    ctx.recorder
        .write(
            vec![ctx.entry(
                step,
                item,
                Phase::Intent,
                serde_json::to_value(&live).unwrap_or_default(),
                backup_sha.clone().unwrap_or_default(),
            )],
            vec![],
        )
        .await?;
    let mut created = None;
    for ((op, state), target) in ops.iter().zip(&states).zip(&targets) {
        if *state == State::After {
            continue;
        }
        match ops::apply(ctx.client, &item.kind, &item.id, op, target.as_deref()).await {
            Ok(c) => {
                if c.is_some() {
                    created = c;
                }
            }
            Err(e) => {
                // The response may have been lost after the server applied it: look.
                let now = read_for(
                    ctx.client,
                    &item.kind,
                    &item.id,
                    std::slice::from_ref(op),
                    with_permissions || op.needs_permissions(),
                )
                .await;
                let landed = now.as_ref().is_ok_and(|l| ops::classify(op, l, target.as_deref()) == State::After);
                if !landed || matches!(op, Op::CreateProject { .. }) {
                    let msg = e.to_string();
                    ctx.recorder
                        .write(
                            vec![ctx.entry(step, item, Phase::Failed, Value::Null, msg.clone())],
                            vec![ctx.audit(
                                step,
                                item,
                                step.kind.as_str(),
                                serde_json::to_value(&live).ok(),
                                None,
                                &format!("failed: {msg}"),
                            )],
                        )
                        .await?;
                    return Ok(ItemOutcome::Failed(msg));
                }
            }
        }
    }
    if let Some(c) = &created
        && let Ok(mut m) = ctx.created.lock()
    {
        m.insert(step.id.clone(), c.clone());
    }
    let after = after_image(&live, &ops, &tgt);
    let after_v = serde_json::to_value(&after).unwrap_or_default();
    ctx.defer(
        vec![ctx.entry(
            step,
            item,
            Phase::Applied,
            after_v.clone(),
            created.clone().map(|c| format!("created:{c}")).unwrap_or_default(),
        )],
        vec![ctx.audit(step, item, step.kind.as_str(), serde_json::to_value(&live).ok(), Some(after_v), "applied")],
    )?;
    if step.kind == StepKind::StageDelete {
        let sha = match backup_sha {
            Some(s) => Some(s),
            None => ctx.store.backup_of(&ctx.run_id, &item.id).await?.map(|(_, b)| crate::plan::sha256_hex(&b)),
        };
        ctx.store
            .insert_staged(&StagedRow {
                item_type: item.kind.clone(),
                item_id: item.id.clone(),
                name: item.name.clone(),
                run_id: ctx.run_id.clone(),
                quarantined_at: Utc::now(),
                purge_after: Utc::now() + chrono::Duration::days(ctx.policy.grace_days),
                backup_sha256: sha,
                purged_at: None,
            })
            .await?;
    }
    Ok(ItemOutcome::Done)
}

/// The live image, with the workbook's datasource references when a repoint needs them.
async fn read_for(client: &Client, kind: &str, id: &str, ops: &[Op], with_permissions: bool) -> OpResult<Image> {
    let mut img = ops::read_image(client, kind, id, with_permissions).await?;
    ops::fill_datasources(client, &mut img, ops).await?;
    ops::fill_account(client, &mut img, ops).await?;
    Ok(img)
}

/// Undoes a repoint by republishing the file this run saved before it; without a saved file
/// (it was never taken), by rewriting the connection back.
async fn undo_repoint(ctx: &Ctx<'_>, store: &Store, id: &str, op: &Op) -> OpResult<Option<String>> {
    match store.backup_of(&ctx.run_id, id).await {
        Ok(Some((filename, bytes))) => ops::republish(ctx.client, id, &filename, &bytes).await.map(|()| None),
        Ok(None) => ops::compensate(ctx.client, "workbook", id, op, None).await,
        Err(e) => Err(OpError::Missing(format!("the saved file cannot be read: {e}"))),
    }
}

async fn project_named(client: &Client, name: &str, parent: Option<&str>) -> Result<Option<String>, ExecError> {
    let all = client.projects().collect().await?;
    Ok(all
        .into_iter()
        .find(|p| p.name.as_deref() == Some(name) && p.parent_project_id.as_deref().filter(|x| !x.is_empty()) == parent)
        .and_then(|p| p.id))
}

/// Creates a project once: a project of that name that this run already announced (a crash
/// or a lost response) is adopted; one that appeared from elsewhere is drift.
async fn create_project_item(
    ctx: &Ctx<'_>,
    step: &Step,
    item: &Item,
    name: &str,
    parent: Option<&str>,
    op: &Op,
) -> Result<ItemOutcome, ExecError> {
    let touched = ctx.touched.lock().map(|t| t.contains(&item.id)).unwrap_or(false);
    let adopt = |id: String, phase: Phase| {
        if let Ok(mut m) = ctx.created.lock() {
            m.insert(step.id.clone(), id.clone());
        }
        let img = json!({"type": "project", "id": id, "exists": true, "name": name, "parent_id": parent});
        (
            vec![ctx.entry(step, item, phase, img.clone(), format!("created:{id}"))],
            vec![ctx.audit(
                step,
                item,
                step.kind.as_str(),
                None,
                Some(img),
                if phase == Phase::Applied { "applied" } else { "already-applied" },
            )],
        )
    };
    match project_named(ctx.client, name, parent).await {
        Ok(Some(id)) if touched => {
            let (e, a) = adopt(id, Phase::AlreadyApplied);
            ctx.recorder.write(e, a).await?;
            return Ok(ItemOutcome::AlreadyApplied);
        }
        Ok(Some(_)) => {
            return Ok(ItemOutcome::Skipped(format!(
                "a project named '{name}' was created by someone else after the plan; re-plan to use it"
            )));
        }
        Ok(None) => {}
        Err(e) => return Ok(ItemOutcome::Failed(format!("cannot list projects: {e}"))),
    }
    ctx.maybe_crash();
    if let Ok(mut t) = ctx.touched.lock() {
        t.insert(item.id.clone());
    }
    let before = json!({"type": "project", "id": item.id, "exists": false});
    ctx.recorder.write(vec![ctx.entry(step, item, Phase::Intent, before, String::new())], vec![]).await?;
    let created = match ops::apply(ctx.client, &item.kind, &item.id, op, None).await {
        Ok(Some(id)) => Some(id),
        Ok(None) => None,
        Err(e) => {
            // The answer may have been lost after the project was made.
            match project_named(ctx.client, name, parent).await {
                Ok(Some(id)) => Some(id),
                _ => {
                    let msg = e.to_string();
                    ctx.recorder
                        .write(
                            vec![ctx.entry(step, item, Phase::Failed, Value::Null, msg.clone())],
                            vec![ctx.audit(step, item, step.kind.as_str(), None, None, &format!("failed: {msg}"))],
                        )
                        .await?;
                    return Ok(ItemOutcome::Failed(msg));
                }
            }
        }
    };
    let Some(id) = created else {
        return Ok(ItemOutcome::Failed("the server did not answer the new project's id".into()));
    };
    let (e, a) = adopt(id, Phase::Applied);
    ctx.recorder.write(e, a).await?;
    Ok(ItemOutcome::Done)
}

/// What the journal says about each (step, item): its last phase.
fn last_phases(journal: &[Entry]) -> HashMap<(String, String), Phase> {
    let mut m = HashMap::new();
    for e in journal {
        m.insert((e.step_id.clone(), e.item_id.clone()), e.phase);
    }
    m
}

async fn run_steps(
    ctx: &Ctx<'_>,
    approved: &Option<BTreeSet<String>>,
    concurrency: usize,
    journal: &[Entry],
) -> Result<(Vec<StepReport>, Vec<ItemNote>, Vec<ItemNote>), ExecError> {
    let plan = ctx.plan;
    let order = plan.order().map_err(|e| ExecError::Refused(e.to_string()))?;
    let last = last_phases(journal);
    let total = plan.steps.len();
    let mut reports = vec![];
    let mut skipped_notes = vec![];
    let mut failed_notes = vec![];
    for (index, si) in order.into_iter().enumerate() {
        let step = &plan.steps[si];
        let started = Instant::now();
        let items: Vec<&Item> = if step.is_write() {
            let ids = step.changed_items();
            step.items.iter().filter(|i| ids.contains(&i.id.as_str())).collect()
        } else {
            step.items.iter().collect()
        };
        ctx.emit(Event::StepStarted {
            run_id: ctx.run_id.clone(),
            index: index + 1,
            total,
            step_id: step.id.clone(),
            title: step.title.clone(),
            items: items.len(),
            effect: step.effect.as_str().into(),
        });
        let mut rep = StepReport { id: step.id.clone(), status: "succeeded".into(), ..Default::default() };
        if !step.is_write() {
            // A read step was done while planning; it changes nothing here.
            ctx.emit(Event::StepFinished {
                run_id: ctx.run_id.clone(),
                step_id: step.id.clone(),
                done: rep.done,
                skipped: 0,
                failed: 0,
                elapsed_ms: 0,
            });
            reports.push(rep);
            continue;
        }
        let locked = locked_targets(ctx.client, step).await;
        let needs_perm_step =
            step.changes.iter().any(|c| matches!(c.field.as_str(), "permissions" | "content_permissions"))
                || step
                    .changes
                    .iter()
                    .any(|c| c.field == "project" && c.after_id.as_ref().is_some_and(|a| locked.contains(a)))
                || step.changes.iter().any(|c| c.field == "project" && c.after_ref.is_some());
        let m = items.len();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<(&Item, Result<ItemOutcome, ExecError>)> = futures::stream::iter(items.iter().copied())
            .map(|item| {
                let counter = &counter;
                let last = &last;
                async move {
                    let key = (step.id.clone(), item.id.clone());
                    let outcome = match last.get(&key) {
                        Some(Phase::Applied) => Ok(ItemOutcome::Done),
                        Some(Phase::AlreadyApplied) => Ok(ItemOutcome::AlreadyApplied),
                        Some(Phase::Skipped) => Ok(ItemOutcome::Skipped("skipped before the resume".into())),
                        _ if step.effect == Effect::Destructive
                            && approved
                                .as_ref()
                                .is_some_and(|a| !a.contains(&crate::approval::pair_key(&step.id, &item.id))) =>
                        {
                            Ok(ItemOutcome::Skipped("not approved".into()))
                        }
                        _ => process_item(ctx, step, item, needs_perm_step).await,
                    };
                    if let Ok(ItemOutcome::Skipped(reason)) = &outcome
                        && last.get(&key) != Some(&Phase::Skipped)
                    {
                        let e = ctx.entry(step, item, Phase::Skipped, Value::Null, reason.clone());
                        let a = ctx.audit(step, item, step.kind.as_str(), None, None, &format!("skipped: {reason}"));
                        if let Err(err) = ctx.recorder.write(vec![e], vec![a]).await {
                            return (item, Err(err));
                        }
                    }
                    let k = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if let Ok(o) = &outcome {
                        let (name, detail) = match o {
                            ItemOutcome::Done => ("done", String::new()),
                            ItemOutcome::AlreadyApplied => ("already-applied", String::new()),
                            ItemOutcome::Skipped(r) => ("skipped", r.clone()),
                            ItemOutcome::Failed(r) => ("failed", r.clone()),
                        };
                        ctx.emit(Event::ItemFinished {
                            run_id: ctx.run_id.clone(),
                            step_id: step.id.clone(),
                            k,
                            m,
                            item_id: item.id.clone(),
                            name: item.name.clone(),
                            outcome: name.into(),
                            detail,
                        });
                    }
                    (item, outcome)
                }
            })
            // Twice the cap in items: the client holds API calls to the cap, and the extra
            // items keep its slots busy while others wait for their journal record.
            .buffer_unordered(concurrency.max(1) * 2)
            .collect()
            .await;
        ctx.flush().await?;
        for (item, r) in results {
            match r? {
                ItemOutcome::Done | ItemOutcome::AlreadyApplied => rep.done += 1,
                ItemOutcome::Skipped(reason) => {
                    rep.skipped += 1;
                    skipped_notes.push(ItemNote {
                        step_id: step.id.clone(),
                        item_id: item.id.clone(),
                        name: item.name.clone(),
                        reason,
                    });
                }
                ItemOutcome::Failed(reason) => {
                    rep.failed += 1;
                    failed_notes.push(ItemNote {
                        step_id: step.id.clone(),
                        item_id: item.id.clone(),
                        name: item.name.clone(),
                        reason,
                    });
                }
            }
        }
        if rep.failed > 0 {
            rep.status = "failed".into();
        } else if rep.skipped > 0 {
            rep.status = "partial".into();
        }
        ctx.emit(Event::StepFinished {
            run_id: ctx.run_id.clone(),
            step_id: step.id.clone(),
            done: rep.done,
            skipped: rep.skipped,
            failed: rep.failed,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        let failed = rep.failed > 0;
        reports.push(rep);
        if failed {
            break;
        }
    }
    Ok((reports, skipped_notes, failed_notes))
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
            intents: Default::default(),
            crash_after: opts.crash_after_intents,
            policy: self.policy.clone(),
            pending: Mutex::new(Vec::new()),
            subscriptions: tokio::sync::OnceCell::new(),
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
            owner_pid: Some(std::process::id() as i64),
            approval_id: grant.as_ref().map(|g| g.approval_ids.join(",")),
            summary: json!({}),
            fingerprint: Some(p.fingerprint.clone()),
        };
        self.store.insert_run(&row).await?;
        if let Some(g) = &grant
            && let Err(e) = self.store.consume_approvals(&g.approval_ids, &run_id).await
        {
            self.store.set_run_status(&run_id, RunStatus::Cancelled, Some(&json!({"error": e.to_string()}))).await?;
            return Err(e.into());
        }
        let approvers = grant.as_ref().map(|g| g.approvers.join(", ")).unwrap_or_default();
        let (recorder, writer) = Recorder::start(self.store.clone(), !opts.without_journal);
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
        let (steps, skipped, failed) = run_steps(ctx, &approved, opts.concurrency, journal).await?;
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
            self.store.set_run_status(&ctx.run_id, RunStatus::RollingBack, None).await?;
            let (restored, not_restored) = self.compensate(ctx, &reason, opts.concurrency).await?;
            report.restored = restored;
            report.not_restored = not_restored;
            report.recreated = ctx.recreated_notes();
            report.status = if report.not_restored.is_empty() { RunStatus::RolledBack } else { RunStatus::Failed };
        } else if !report.skipped.is_empty() {
            report.status = RunStatus::Partial;
        }
        if matches!(report.status, RunStatus::Succeeded | RunStatus::Partial) {
            report.notifications = self.notify(ctx, &opts.delivery).await?;
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
        if !ctx.plan.steps.iter().any(|s| matches!(s.kind, StepKind::NotifyOwners | StepKind::TransferOwnership)) {
            return Ok(None);
        }
        if !self.store.outbox(Some(&ctx.run_id)).await?.is_empty() {
            // Already told (a resumed run): never twice.
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
        self.store.set_run_status(&ctx.run_id, report.status, Some(&summary)).await?;
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
        Ok(())
    }

    /// Undoes, in reverse journal order, every item this run changed (or may have changed:
    /// an intent without an outcome). Each undo is verified by reading the item back; items
    /// someone else changed since are skipped and reported.
    async fn compensate(
        &self,
        ctx: &Ctx<'_>,
        reason: &str,
        concurrency: usize,
    ) -> Result<(usize, Vec<ItemNote>), ExecError> {
        let journal = self.store.journal(&ctx.run_id).await?;
        // (step, item) in reverse order of their intents, with the before-image.
        let mut seen = HashSet::new();
        let mut todo: Vec<(String, String, Image, String)> = vec![];
        let last = last_phases(&journal);
        for e in journal.iter().rev() {
            if e.phase != Phase::Intent && e.phase != Phase::AlreadyApplied {
                continue;
            }
            let key = (e.step_id.clone(), e.item_id.clone());
            if !seen.insert(key.clone()) {
                continue;
            }
            if matches!(last.get(&key), Some(Phase::Compensated | Phase::CompensateSkipped)) {
                continue;
            }
            // The write-ahead before-image, also when a resume found the item already applied
            // (a crash after the write): an account's re-creation needs it.
            let intent = if e.phase == Phase::Intent {
                Some(e)
            } else {
                journal
                    .iter()
                    .rev()
                    .find(|x| x.phase == Phase::Intent && x.step_id == e.step_id && x.item_id == e.item_id)
            };
            let before: Image =
                intent.map(|x| serde_json::from_value(x.image.clone()).unwrap_or_default()).unwrap_or_default();
            let created = journal
                .iter()
                .find(|x| x.step_id == e.step_id && x.item_id == e.item_id && x.detail.starts_with("created:"))
                .map(|x| x.detail.trim_start_matches("created:").to_string())
                .unwrap_or_default();
            todo.push((e.step_id.clone(), e.item_id.clone(), before, created));
        }
        // Accounts an earlier (interrupted) rollback already re-created.
        for e in journal.iter().filter(|e| e.phase == Phase::Compensated) {
            if let Some(new) = e.detail.strip_prefix("recreated:")
                && let Ok(mut m) = ctx.recreated.lock()
            {
                m.insert(e.item_id.clone(), new.to_string());
            }
        }
        // Created projects are resolvable for the inverse moves.
        for e in &journal {
            if let Some(c) = e.detail.strip_prefix("created:")
                && let Ok(mut m) = ctx.created.lock()
            {
                m.insert(e.step_id.clone(), c.to_string());
            }
        }
        ctx.emit(Event::RollbackStarted { run_id: ctx.run_id.clone(), reason: reason.into(), items: todo.len() });
        let m = todo.len();
        let mut restored = 0;
        let mut not_restored = vec![];
        // Undo step by step in reverse order; items of one step in parallel.
        let mut groups: Vec<(String, Vec<(String, Image, String)>)> = vec![];
        for (s, i, b, c) in todo {
            match groups.last_mut() {
                Some((gs, v)) if *gs == s => v.push((i, b, c)),
                _ => groups.push((s, vec![(i, b, c)])),
            }
        }
        let counter = std::sync::atomic::AtomicUsize::new(0);
        for (step_id, items) in groups {
            let Some(step) = ctx.plan.step(&step_id) else { continue };
            let results: Vec<(String, String, Result<Option<String>, ExecError>)> = futures::stream::iter(items)
                .map(|(item_id, before, created)| {
                    let counter = &counter;
                    async move {
                        let item =
                            step.item(&item_id).cloned().unwrap_or(Item { id: item_id.clone(), ..Item::default() });
                        let r = self.compensate_item(ctx, step, &item, &before, &created).await;
                        let k = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        let (outcome, detail) = match &r {
                            Ok(None) => ("restored".to_string(), String::new()),
                            Ok(Some(why)) => ("not-restored".to_string(), why.clone()),
                            Err(e) => ("not-restored".to_string(), e.to_string()),
                        };
                        ctx.emit(Event::ItemRestored {
                            run_id: ctx.run_id.clone(),
                            k,
                            m,
                            item_id: item.id.clone(),
                            name: item.name.clone(),
                            outcome,
                            detail,
                        });
                        (item.id.clone(), item.name.clone(), r)
                    }
                })
                .buffer_unordered(concurrency.max(1))
                .collect()
                .await;
            for (item_id, name, r) in results {
                match r {
                    Ok(None) => restored += 1,
                    Ok(Some(why)) => {
                        not_restored.push(ItemNote { step_id: step_id.clone(), item_id, name, reason: why })
                    }
                    Err(e) => {
                        not_restored.push(ItemNote { step_id: step_id.clone(), item_id, name, reason: e.to_string() })
                    }
                }
            }
        }
        Ok((restored, not_restored))
    }

    /// Undoes one item; `Ok(None)` = restored (or nothing to undo), `Ok(Some(why))` = skipped.
    async fn compensate_item(
        &self,
        ctx: &Ctx<'_>,
        step: &Step,
        item: &Item,
        before: &Image,
        created: &str,
    ) -> Result<Option<String>, ExecError> {
        let ops = match ops_of(step, item) {
            Ok(o) => o,
            Err(e) => return Ok(Some(e.to_string())),
        };
        // Accounts re-created by this rollback have new ids: the undo refers to those.
        let recreated = ctx.recreated.lock().map(|m| m.clone()).unwrap_or_default();
        let ops: Vec<Op> = ops.iter().map(|o| o.remap_users(&recreated)).collect();
        let mut before = before.clone();
        if let Some(p) = &mut before.permissions {
            for c in p.iter_mut().filter(|c| c.grantee_type == "user") {
                if let Some(n) = recreated.get(&c.grantee_id) {
                    c.grantee_id = n.clone();
                }
            }
            p.sort();
        }
        let before = &before;
        let created = if created.is_empty() { None } else { Some(created) };
        let with_perm = before.permissions.is_some() || ops.iter().any(Op::needs_permissions);
        // A project tabflow created: its id is the created one.
        let live_id = if ops.iter().any(|o| matches!(o, Op::CreateProject { .. })) {
            match created {
                Some(c) => c.to_string(),
                None => {
                    // Never created (crash before the answer): nothing to undo... unless it
                    // exists by name under the same parent, which a resume would have adopted.
                    let e = ctx.entry(
                        step,
                        item,
                        Phase::CompensateSkipped,
                        Value::Null,
                        "the project was never created".into(),
                    );
                    ctx.recorder.write(vec![e], vec![]).await?;
                    return Ok(None);
                }
            }
        } else if item.kind == "user"
            && let Some(n) = recreated.get(&item.id)
        {
            n.clone()
        } else {
            item.id.clone()
        };
        let live = read_for(ctx.client, &item.kind, &live_id, &ops, with_perm)
            .await
            .map_err(|e| ExecError::Refused(e.to_string()))?;
        if step.kind == StepKind::StageDelete && !live.exists && matches!(item.kind.as_str(), "workbook" | "datasource")
        {
            return self.restore_deleted(ctx, step, item, before).await;
        }
        let mut to_undo = vec![];
        for op in ops.iter().rev() {
            let target = ctx.target_of(op);
            match ops::classify(op, &live, target.as_deref()) {
                State::Before if !matches!(op, Op::Tags { .. } | Op::Groups { .. } | Op::Permissions { .. }) => {}
                State::Drifted => {
                    let why =
                        format!("not restored: {} — changed by someone else after this run", describe_drift(op, &live));
                    let e = ctx.entry(
                        step,
                        item,
                        Phase::CompensateSkipped,
                        serde_json::to_value(&live).unwrap_or_default(),
                        why.clone(),
                    );
                    let a = ctx.audit(step, item, "rollback", serde_json::to_value(&live).ok(), None, &why);
                    ctx.recorder.write(vec![e], vec![a]).await?;
                    return Ok(Some(why));
                }
                _ => to_undo.push(op.clone()),
            }
        }
        let perms_differ =
            before.permissions.as_ref().is_some_and(|b| live.permissions.as_ref().is_some_and(|l| l != b));
        if to_undo.is_empty() && !perms_differ {
            let e = ctx.entry(
                step,
                item,
                Phase::Compensated,
                serde_json::to_value(&live).unwrap_or_default(),
                "nothing to undo".into(),
            );
            ctx.recorder.write(vec![e], vec![]).await?;
            return Ok(None);
        }
        ctx.recorder
            .write(
                vec![ctx.entry(
                    step,
                    item,
                    Phase::CompensateIntent,
                    serde_json::to_value(&live).unwrap_or_default(),
                    String::new(),
                )],
                vec![],
            )
            .await?;
        let mut file_restored = false;
        let mut live_id = live_id;
        let mut detail = String::new();
        for op in &to_undo {
            if let Op::DeleteUser { user, .. } = op {
                // The account comes back with a new id; later undos (earlier steps) use it.
                match ops::recreate_user(ctx.client, before, user).await {
                    Ok(new) => {
                        if let Ok(mut m) = ctx.recreated.lock() {
                            m.insert(item.id.clone(), new.clone());
                        }
                        detail = format!("recreated:{new}");
                        live_id = new;
                        continue;
                    }
                    Err(e) => {
                        let msg = format!("undo failed: the account could not be re-created: {e}");
                        let en = ctx.entry(step, item, Phase::CompensateFailed, Value::Null, msg.clone());
                        let a = ctx.audit(step, item, "rollback", serde_json::to_value(&live).ok(), None, &msg);
                        ctx.recorder.write(vec![en], vec![a]).await?;
                        return Ok(Some(msg));
                    }
                }
            }
            let target = ctx.target_of(op);
            let created_for_op = match op {
                Op::Project { .. } => target.as_deref(),
                _ => created,
            };
            let undone = if op.needs_file() {
                // One republish of the saved file undoes every repoint of this workbook.
                let r = if file_restored { Ok(None) } else { undo_repoint(ctx, self.store, &live_id, op).await };
                file_restored = true;
                r
            } else {
                ops::compensate(ctx.client, &item.kind, &live_id, op, created_for_op).await
            };
            if let Err(e) = undone {
                let msg = format!("undo failed: {e}");
                let en = ctx.entry(step, item, Phase::CompensateFailed, Value::Null, msg.clone());
                let a = ctx.audit(step, item, "rollback", serde_json::to_value(&live).ok(), None, &msg);
                ctx.recorder.write(vec![en], vec![a]).await?;
                return Ok(Some(msg));
            }
        }
        // Permissions replaced as a side effect (a move into a locked project): restore them.
        if let Some(b) = &before.permissions
            && matches!(item.kind.as_str(), "workbook" | "datasource" | "project" | "flow")
        {
            let now = ops::read_image(ctx.client, &item.kind, &live_id, true)
                .await
                .map_err(|e| ExecError::Refused(e.to_string()))?;
            if now.permissions.as_ref() != Some(b) {
                let caps: Vec<tabflow_client::Capability> = b.iter().map(ops::to_client).collect();
                if let Some(k) = tabflow_client::ContentKind::parse(&item.kind) {
                    ctx.client.set_permissions(k, &live_id, &caps).await?;
                }
            }
        }
        // Verify by reading back.
        let back = read_for(ctx.client, &item.kind, &live_id, &ops, with_perm)
            .await
            .map_err(|e| ExecError::Refused(e.to_string()))?;
        let mut ok = true;
        for op in &to_undo {
            let target = ctx.target_of(op);
            let state = match op {
                Op::CreateProject { .. } => {
                    if back.exists {
                        State::After
                    } else {
                        State::Before
                    }
                }
                Op::DeleteSubscription { .. } => State::Before,
                _ => ops::classify(op, &back, target.as_deref()),
            };
            if state != State::Before {
                ok = false;
            }
            if let Op::Tags { before: b, after: a } = op {
                let now = back.tags.clone().unwrap_or_default();
                ok &= a.difference(b).all(|t| !now.contains(t)) && b.difference(a).all(|t| now.contains(t));
            }
        }
        if let Some(b) = &before.permissions {
            ok &= back.permissions.as_ref() == Some(b);
        }
        let back_v = serde_json::to_value(&back).unwrap_or_default();
        if ok {
            if step.kind == StepKind::StageDelete {
                self.store.remove_staged(&item.id, &ctx.run_id).await?;
            }
            let outcome = match detail.strip_prefix("recreated:") {
                Some(new) => format!(
                    "restored: the account was re-created with a new id {new} (Tableau cannot restore a deleted account's id or sign-in history)"
                ),
                None => "restored".to_string(),
            };
            let e = ctx.entry(step, item, Phase::Compensated, back_v.clone(), detail);
            let a = ctx.audit(step, item, "rollback", serde_json::to_value(&live).ok(), Some(back_v), &outcome);
            ctx.recorder.write(vec![e], vec![a]).await?;
            Ok(None)
        } else {
            let msg = "the read-back after the undo does not match the before-image".to_string();
            let e = ctx.entry(step, item, Phase::CompensateFailed, back_v, msg.clone());
            ctx.recorder.write(vec![e], vec![]).await?;
            Ok(Some(msg))
        }
    }

    /// Undoes a staged delete whose item is gone (purged after the grace period, or deleted by
    /// someone else): re-publishes this run's saved file into the old project under the old
    /// name and puts back owner, tags, permissions and subscriptions, then reads it back. The
    /// item gets a new id; revisions, usage counts, favourites, custom views and data alerts
    /// cannot be restored, and the outcome says so.
    async fn restore_deleted(
        &self,
        ctx: &Ctx<'_>,
        step: &Step,
        item: &Item,
        before: &Image,
    ) -> Result<Option<String>, ExecError> {
        let fail = |msg: String| async move {
            let en = ctx.entry(step, item, Phase::CompensateFailed, Value::Null, msg.clone());
            let a = ctx.audit(step, item, "rollback", None, None, &msg);
            ctx.recorder.write(vec![en], vec![a]).await?;
            Ok::<_, ExecError>(Some(msg))
        };
        let Some((filename, bytes)) = self.store.backup_of(&ctx.run_id, &item.id).await? else {
            return fail(format!("undo failed: the {} was deleted and this run saved no file of it", item.kind)).await;
        };
        // An earlier attempt of this rollback that was cut off may have published it already.
        let tried = self.store.journal(&ctx.run_id).await?.iter().any(|e| {
            e.item_id == item.id && e.phase == Phase::CompensateIntent && e.detail == "restore from the saved file"
        });
        let gone = Image { exists: false, ..before.clone() };
        ctx.recorder
            .write(
                vec![ctx.entry(
                    step,
                    item,
                    Phase::CompensateIntent,
                    serde_json::to_value(&gone).unwrap_or_default(),
                    "restore from the saved file".into(),
                )],
                vec![],
            )
            .await?;
        let (new_id, lost) = match ops::restore_content(ctx.client, before, &filename, &bytes, tried).await {
            Ok(r) => r,
            Err(e) => return fail(format!("undo failed: the saved file could not be re-published: {e}")).await,
        };
        let mut back = match ops::read_image(ctx.client, &item.kind, &new_id, true).await {
            Ok(b) => b,
            Err(e) => return fail(format!("undo failed: the re-published {} cannot be read: {e}", item.kind)).await,
        };
        let mut wrong = vec![];
        if back.name != before.name {
            wrong.push("name");
        }
        if back.project_id != before.project_id {
            wrong.push("project");
        }
        if before.owner_id.is_some() && back.owner_id != before.owner_id {
            wrong.push("owner");
        }
        if before.tags.as_ref().is_some_and(|t| !t.is_empty()) && back.tags != before.tags {
            wrong.push("tags");
        }
        if let Some(p) = &before.permissions {
            let mut p = p.clone();
            p.sort();
            if let Some(b) = &mut back.permissions {
                b.sort();
            }
            if back.permissions.as_ref() != Some(&p) {
                wrong.push("permissions");
            }
        }
        let back_v = serde_json::to_value(&back).unwrap_or_default();
        if !wrong.is_empty() {
            let msg = format!(
                "the re-published {} {new_id} does not match the before-image ({})",
                item.kind,
                wrong.join(", ")
            );
            let e = ctx.entry(step, item, Phase::CompensateFailed, back_v, msg.clone());
            ctx.recorder.write(vec![e], vec![]).await?;
            return Ok(Some(msg));
        }
        let mut outcome = format!(
            "restored from the saved file as a new {} {new_id} (Tableau gives a re-published item a new id; its revisions, usage counts, favourites, custom views and data alerts are not restored)",
            item.kind
        );
        if !lost.is_empty() {
            outcome.push_str(&format!("; not restored: {}", lost.join("; ")));
        }
        if let Ok(mut m) = ctx.recreated.lock() {
            m.insert(item.id.clone(), new_id.clone());
        }
        let e = ctx.entry(step, item, Phase::Compensated, back_v.clone(), format!("recreated:{new_id}"));
        let a = ctx.audit(step, item, "rollback", None, Some(back_v), &outcome);
        ctx.recorder.write(vec![e], vec![a]).await?;
        Ok(None)
    }

    /// Rolls back a finished (or interrupted) run.
    pub async fn rollback(&self, run_id: &str, opts: &RunOptions) -> Result<RunReport, ExecError> {
        let run = self.store.run(run_id).await?;
        if run.status == RunStatus::RolledBack {
            return Err(ExecError::Refused(format!("run {run_id} is already rolled back")));
        }
        self.refuse_if_live(&run)?;
        let plan = self.store.plan_of_run(&run).await?;
        self.check_site(&plan).await?;
        self.store.claim_run(run_id, std::process::id() as i64).await?;
        self.store.set_run_status(run_id, RunStatus::RollingBack, None).await?;
        let started = Instant::now();
        let (recorder, writer) = Recorder::start(self.store.clone(), true);
        let ctx = self.ctx(&plan, run_id, opts, String::new(), recorder.clone());
        recorder
            .write(
                vec![],
                vec![NewRecord {
                    actor: opts.actor.clone(),
                    action: "run.rollback".into(),
                    plan_id: Some(plan.id.clone()),
                    run_id: Some(run_id.into()),
                    outcome: "started".into(),
                    ..Default::default()
                }],
            )
            .await?;
        let (restored, not_restored) = self.compensate(&ctx, "rollback requested", opts.concurrency).await?;
        let mut report = RunReport::restoration(run_id, restored, not_restored, RunStatus::Partial, started);
        report.recreated = ctx.recreated_notes();
        self.close(&ctx, &report).await?;
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        Ok(report)
    }

    fn refuse_if_live(&self, run: &RunRow) -> Result<(), ExecError> {
        if run.status.is_unfinished()
            && let Some(pid) = run.owner_pid
            && pid != std::process::id() as i64
            && std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::env::var("TABFLOW_IGNORE_LIVE_OWNER").is_err()
        {
            return Err(ExecError::Refused(format!(
                "run {} is still being executed by process {pid}; wait for it or stop it first",
                run.id
            )));
        }
        Ok(())
    }

    /// Finishes an interrupted run (or its rollback) from the journal: items already applied
    /// are detected and not written again.
    pub async fn resume(&self, run_id: &str, opts: &RunOptions) -> Result<RunReport, ExecError> {
        let run = self.store.run(run_id).await?;
        if !run.status.is_unfinished() {
            return Err(ExecError::Refused(format!(
                "run {run_id} is {}; only interrupted runs (running or rolling-back) can be resumed",
                run.status.as_str()
            )));
        }
        self.refuse_if_live(&run)?;
        let plan = self.store.plan_of_run(&run).await?;
        self.check_site(&plan).await?;
        self.store.claim_run(run_id, std::process::id() as i64).await?;
        let journal = self.store.journal(run_id).await?;
        let started = Instant::now();
        let (recorder, writer) = Recorder::start(self.store.clone(), true);
        let ctx = self.ctx(&plan, run_id, opts, String::new(), recorder.clone());
        for e in &journal {
            if let Some(c) = e.detail.strip_prefix("created:")
                && let Ok(mut m) = ctx.created.lock()
            {
                m.insert(e.step_id.clone(), c.to_string());
            }
            if let Ok(mut t) = ctx.touched.lock() {
                t.insert(e.item_id.clone());
            }
        }
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
            let (restored, not_restored) =
                self.compensate(&ctx, "resuming the interrupted rollback", opts.concurrency).await?;
            let mut report = RunReport::restoration(run_id, restored, not_restored, RunStatus::Failed, started);
            report.recreated = ctx.recreated_notes();
            self.close(&ctx, &report).await?;
            Ok(report)
        } else {
            // The approved subset was fixed when the run started.
            let approved = self.approved_items_of(&run).await?;
            self.finish(&ctx, approved, opts, &journal, started).await
        };
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        result
    }

    async fn approved_items_of(&self, run: &RunRow) -> Result<Option<BTreeSet<String>>, ExecError> {
        let Some(ids) = &run.approval_id else { return Ok(None) };
        let rows = self.store.approvals_for(&run.plan_id).await?;
        Ok(crate::approval::approved_items(rows.iter().filter(|r| ids.split(',').any(|i| i == r.id))))
    }

    async fn adopt_created(&self, ctx: &Ctx<'_>, journal: &[Entry]) -> Result<(), ExecError> {
        for step in &ctx.plan.steps {
            for item in &step.items {
                let Ok(ops) = ops_of(step, item) else { continue };
                let Some(Op::CreateProject { name, parent_id, .. }) =
                    ops.iter().find(|o| matches!(o, Op::CreateProject { .. }))
                else {
                    continue;
                };
                let has_intent =
                    journal.iter().any(|e| e.step_id == step.id && e.item_id == item.id && e.phase == Phase::Intent);
                let known = ctx.created.lock().map(|m| m.contains_key(&step.id)).unwrap_or(false);
                if has_intent && !known {
                    let all = ctx.client.projects().collect().await?;
                    if let Some(p) = all.into_iter().find(|p| {
                        p.name.as_deref() == Some(name.as_str())
                            && p.parent_project_id.clone().filter(|x| !x.is_empty()) == *parent_id
                    }) && let Some(id) = p.id
                    {
                        let e = ctx.entry(step, item, Phase::Applied, Value::Null, format!("created:{id}"));
                        ctx.recorder.write(vec![e], vec![]).await?;
                        if let Ok(mut m) = ctx.created.lock() {
                            m.insert(step.id.clone(), id);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a purge did: deleted, kept (with the reason), and still in the grace period (with the
/// day it is due).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Purge {
    pub purged: Vec<String>,
    pub kept: Vec<String>,
    pub waiting: Vec<String>,
}

/// Staged deletes whose grace period has passed: deletes each one that is still in
/// quarantine, unchanged since, and whose backup exists.
pub async fn purge_due(client: &Client, store: &Store, actor: &str, force_now: bool) -> Result<Purge, ExecError> {
    let now = Utc::now();
    let mut purged = vec![];
    let mut kept = vec![];
    let mut waiting = vec![];
    for s in store.staged().await? {
        if s.purged_at.is_some() {
            continue;
        }
        if !force_now && s.purge_after > now {
            waiting.push(format!("{} ({}): due {}", s.name, s.item_id, s.purge_after.format("%Y-%m-%d %H:%M UTC")));
            continue;
        }
        // A damaged backup keeps its item (and only its item) from being deleted.
        let backup = match store.backup_of(&s.run_id, &s.item_id).await {
            Ok(b) => b,
            Err(e) => {
                kept.push(format!("{} ({}): {e}, not deleted", s.name, s.item_id));
                continue;
            }
        };
        let Some((_, bytes)) = backup else {
            kept.push(format!("{} ({}): no backup in the store, not deleted", s.name, s.item_id));
            continue;
        };
        if s.backup_sha256.as_deref().is_some_and(|h| *h != crate::plan::sha256_hex(&bytes)) {
            kept.push(format!("{} ({}): the backup does not match its checksum, not deleted", s.name, s.item_id));
            continue;
        }
        // Only what is still where the staged delete put it: an item someone moved out of
        // quarantine (or renamed, or edited since) was taken back, and is not deleted.
        match still_quarantined(client, store, &s).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                kept.push(format!("{} ({}): {why}, not deleted", s.name, s.item_id));
                continue;
            }
            Err(e) => {
                kept.push(format!("{} ({}): {e}", s.name, s.item_id));
                continue;
            }
        }
        let result = match s.item_type.as_str() {
            "workbook" => client.delete_workbook(&tabflow_wire::ids::WorkbookId::new(&s.item_id)).await,
            "datasource" => client.delete_datasource(&tabflow_wire::ids::DatasourceId::new(&s.item_id)).await,
            other => {
                kept.push(format!("{} ({}): items of type {other} are not purged", s.name, s.item_id));
                continue;
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => {
                kept.push(format!("{} ({}): {e}", s.name, s.item_id));
                continue;
            }
        }
        store.mark_purged(&s.item_id, &s.run_id).await?;
        crate::audit::append(
            store,
            NewRecord {
                actor: actor.into(),
                action: "purge".into(),
                run_id: Some(s.run_id.clone()),
                item_id: Some(s.item_id.clone()),
                before: Some(json!({"name": s.name, "type": s.item_type, "backup_sha256": s.backup_sha256})),
                outcome: "deleted".into(),
                ..Default::default()
            },
        )
        .await?;
        purged.push(format!("{} ({})", s.name, s.item_id));
    }
    Ok(Purge { purged, kept, waiting })
}

/// Why a staged item is no longer the one the staged delete left (None: it still is): it was
/// moved out of the quarantine project, renamed, or re-published since. Gone already is fine.
async fn still_quarantined(client: &Client, store: &Store, s: &StagedRow) -> Result<Option<String>, ExecError> {
    let journal = store.journal(&s.run_id).await?;
    let Some(left) = journal
        .iter()
        .rev()
        .find(|e| e.item_id == s.item_id && matches!(e.phase, Phase::Applied | Phase::AlreadyApplied))
    else {
        return Ok(Some("the run's journal has no record of moving it to quarantine".into()));
    };
    let left: Image = serde_json::from_value(left.image.clone())
        .map_err(|e| ExecError::Refused(format!("the journal's image of {} is unreadable: {e}", s.item_id)))?;
    let now = ops::read_image(client, &s.item_type, &s.item_id, false)
        .await
        .map_err(|e| ExecError::Refused(e.to_string()))?;
    if !now.exists {
        return Ok(None);
    }
    if now.project_id != left.project_id {
        return Ok(Some("it was moved out of the quarantine project after the staged delete".into()));
    }
    if now.name != left.name {
        return Ok(Some(format!("it was renamed to '{}' after the staged delete", now.name.unwrap_or_default())));
    }
    // The move into quarantine itself updates it; an edit is a later update (five minutes of
    // slack for the server's clock).
    let updated = now.updated_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    if let Some(t) = updated
        && t.with_timezone(&Utc) > s.quarantined_at + chrono::Duration::minutes(5)
    {
        return Ok(Some(format!("it was changed at {t} after the staged delete, so the saved file is out of date")));
    }
    Ok(None)
}
