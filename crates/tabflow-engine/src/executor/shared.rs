//! Shared runs (scale-out): several `tabflow worker`s execute one run's items, each item
//! claimed by one worker at a time. See DESIGN.md §7, "Scale-out on PostgreSQL".
//!
//! - **Queue**: a run started with [`RunOptions::shared`](super::RunOptions::shared) is
//!   created (approvals consumed, `run.started` audited) and its write steps' items are
//!   queued in `work_items`; no item is executed by the process that started it.
//! - **Claim**: a worker claims a batch of pending (or lapsed) items of the run's first
//!   unfinished step ([`Store::claim_work`]: `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
//!   LOCKED LIMIT n) RETURNING`); each claim raises the item's fencing epoch. Steps keep
//!   their order: no item of a later step is claimed while one of an earlier step is not done,
//!   and none at all once an item failed. Claiming, running and settling are a pipeline: the
//!   next batch is claimed as soon as there is room for it, `concurrency × 2` items are in
//!   flight, and each item is marked done once its records are durable (a chunk of claims
//!   ended in one transaction) — the calls to the site never wait for a batch's slowest item
//!   or for the store.
//! - **Heartbeat**: every third of the lease the worker renews each claim it holds, one
//!   compare-and-set per item (owner and epoch); a renewal that fails marks the item lost.
//! - **Fencing**: every journal write of a claimed item carries its epoch
//!   ([`Store::append_work_fenced`]); and since Tableau cannot check an epoch, the claim is
//!   checked again (held, same epoch, not lapsed) right before each write is sent
//!   ([`tabflow_client::fenced`]). A worker whose claim was taken over writes nothing more
//!   for the item, neither to the journal nor to the site.
//! - **Takeover**: a lapsed claim (a killed or paused worker) is claimed by another worker,
//!   which reads the item's journal (its intent before-image, its last phase) and classifies
//!   the item from the live site again — an item whose write landed just before the lease
//!   was lost is found at its after-state and recorded "already applied", not written again.
//! - **Finish**: when no item is pending or claimed (or an item failed and no claim is
//!   live), one worker closes the queue ([`Store::close_work`], which also fences out every
//!   remaining claim) and finishes the run as a resume under the run's lease: items already
//!   journalled are not read again, a failed item is tried once more, and a failure rolls the
//!   run back as in one process. Several workers can see the queue closed at once; the run's
//!   status, read again once the lease is held, lets exactly one of them finish it.
//! - **Shared rollback** (`tabflow runs rollback RUN --shared`): approved as a rollback in
//!   one process, then, under the run's lease, the run is set rolling-back, `run.rollback` is
//!   audited and each compensation is queued as a work item of kind `rollback` (steps in the
//!   order the rollback undoes them). Workers claim them with the same lease, heartbeat,
//!   epoch and pipeline; each compensation reads the item live first (an undo that landed before its
//!   lease was lost is found at the before-state: "nothing to undo", not written again), and
//!   the epoch is checked right before each call. The worker that closes the queue takes the
//!   run's lease and closes the rollback (`run.finished`) from the items' outcomes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use serde_json::json;

use super::compensate::{NOT_APPROVED, before_of, load_maps, rollback_todo};
use super::journal::{Recorder, last_phases};
use super::run::{ItemOutcome, PermissionsNeeded, run_item, step_needs_permissions};
use super::{ApprovedRollback, Engine, ExecError, ItemNote, RunOptions, RunReport, lease};
use crate::audit::NewRecord;
use crate::plan::{Item, Plan};
use crate::store::{Entry, NewEntry, Phase, RunRow, RunStatus, Store, StoreError, WORK_ROLLBACK};

type Key = (String, String);

/// The item claims one worker holds in one run.
pub(super) struct Claims {
    pub(super) run_id: String,
    pub(super) owner: String,
    held: Mutex<HashMap<Key, i64>>,
    lost: Mutex<HashSet<Key>>,
}

impl Claims {
    fn new(run_id: &str, owner: &str) -> Claims {
        Claims {
            run_id: run_id.into(),
            owner: owner.into(),
            held: Mutex::new(HashMap::new()),
            lost: Mutex::new(HashSet::new()),
        }
    }

    fn lose(&self, key: &Key) {
        if let Ok(mut l) = self.lost.lock() {
            l.insert(key.clone());
        }
    }

    fn is_lost(&self, key: &Key) -> bool {
        self.lost.lock().map(|l| l.contains(key)).unwrap_or(true)
    }

    /// An item settled (done or handed back): no longer renewed nor fenced by this worker.
    fn forget(&self, key: &Key) {
        if let Ok(mut h) = self.held.lock() {
            h.remove(key);
        }
        if let Ok(mut l) = self.lost.lock() {
            l.remove(key);
        }
    }

    /// Items just claimed (step, item, epoch): held, renewed and fenced from now on.
    fn hold(&self, got: &[(String, String, i64)]) {
        if let Ok(mut h) = self.held.lock() {
            h.extend(got.iter().map(|(s, i, e)| ((s.clone(), i.clone()), *e)));
        }
        if let Ok(mut l) = self.lost.lock() {
            for (s, i, _) in got {
                l.remove(&(s.clone(), i.clone()));
            }
        }
    }

    /// The check asked before each write of the item `key`, claimed at `epoch`.
    fn check(self: &Arc<Self>, store: &Store, key: &Key, epoch: i64) -> Arc<dyn tabflow_client::WriteCheck> {
        Arc::new(ItemCheck { store: store.clone(), claims: self.clone(), key: key.clone(), epoch })
    }

    fn live(&self) -> Vec<(Key, i64)> {
        let held = self.held.lock().map(|h| h.clone()).unwrap_or_default();
        held.into_iter().filter(|(k, _)| !self.is_lost(k)).collect()
    }

    /// Writes journal entries (then audit records) fenced by the claims of their items.
    pub(super) async fn write(&self, store: &Store, entries: &[NewEntry], audit: Vec<NewRecord>) -> Result<(), String> {
        let mut fences: Vec<(String, String, String, i64)> = {
            let held = self.held.lock().map(|h| h.clone()).unwrap_or_default();
            entries
                .iter()
                .filter_map(|e| {
                    held.get(&(e.step_id.clone(), e.item_id.clone()))
                        .map(|epoch| (e.run_id.clone(), e.step_id.clone(), e.item_id.clone(), *epoch))
                })
                .collect()
        };
        fences.sort();
        fences.dedup();
        match store.append_work_fenced(&self.owner, &fences, entries).await {
            Ok(()) => {}
            Err(StoreError::LeaseLost(m)) => {
                if let [(_, step, item, _)] = fences.as_slice() {
                    self.lose(&(step.clone(), item.clone()));
                }
                return Err(m);
            }
            Err(e) => return Err(e.to_string()),
        }
        if !audit.is_empty() {
            crate::audit::append_many(store, audit).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The check before each write to the site of a claimed item (see [`tabflow_client::WriteCheck`]).
struct ItemCheck {
    store: Store,
    claims: Arc<Claims>,
    key: Key,
    epoch: i64,
}

impl tabflow_client::WriteCheck for ItemCheck {
    fn check(&self) -> futures::future::BoxFuture<'_, Result<Option<std::time::Instant>, String>> {
        Box::pin(async move {
            let c = &self.claims;
            // Taken before the question is sent: the answer may come back after a pause.
            let (now, asked) = (chrono::Utc::now(), std::time::Instant::now());
            let until = self
                .store
                .work_held_until(&c.run_id, &self.key.0, &self.key.1, &c.owner, self.epoch, now)
                .await
                .map_err(|e| format!("the item's lease cannot be checked: {e}"))?;
            if let Some(until) = until
                && !c.is_lost(&self.key)
            {
                // Sent within half of what was left of the claim when the check was asked,
                // or not at all: a process paused during or right after this check must not
                // send once another worker may have taken the item over.
                let left = (until - now).to_std().unwrap_or_default();
                return Ok(Some(asked + left / 2));
            }
            c.lose(&self.key);
            Err(format!(
                "lease lost: item {} of run {} is no longer this worker's (epoch {}); the write was not sent",
                self.key.1, c.run_id, self.epoch
            ))
        })
    }
}

/// An item claimed by this worker, on its way to be run: its claim's epoch, its last phase
/// in the journal (a previous owner's) and whether its step reads permissions.
struct Claimed {
    key: Key,
    epoch: i64,
    last: Option<Phase>,
    needs: bool,
}

/// An item run by this worker, on its way to be settled.
struct Ran {
    key: Key,
    epoch: i64,
    last: Option<Phase>,
    out: Result<ItemOutcome, ExecError>,
}

/// What one worker did in one shared run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SharedPass {
    pub run_id: String,
    /// Items this worker finished (done, already applied, skipped or failed).
    pub done: usize,
    /// Items written to the site by this worker.
    pub written: usize,
    /// Items whose claim was lost to another worker (nothing more written for them).
    pub lost: usize,
    /// Items handed back unstarted (a graceful stop).
    pub released: usize,
    /// Batches of items claimed.
    pub batches: usize,
    /// The run's report when this worker finished the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<RunReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The name of an item's outcome in `work_items.outcome`.
fn outcome_name(o: &ItemOutcome) -> &'static str {
    match o {
        ItemOutcome::Done => "done",
        ItemOutcome::AlreadyApplied => "already-applied",
        ItemOutcome::Skipped(_) => "skipped",
        ItemOutcome::Failed(_) => "failed",
        ItemOutcome::NotStarted => "not-started",
    }
}

impl<'a> Engine<'a> {
    /// Marks the items of `chunk` done (or hands them back for another try) once their
    /// records are durable: `unwritten` holds the records of the chunk the store refused.
    async fn settle(
        &self,
        run_id: &str,
        owner: &str,
        claims: &Claims,
        chunk: Vec<Ran>,
        unwritten: &[String],
        pass: &mut SharedPass,
    ) -> Result<(), ExecError> {
        // What becomes of each claim (its outcome, or None: handed back), then all of them
        // ended in one transaction.
        let mut ends: Vec<(Key, i64, Option<&'static str>)> = vec![];
        for Ran { key, epoch, last, out } in chunk {
            let lost = claims.is_lost(&key);
            // Not renewed any more: the heartbeat must not take a finished claim for a lost one.
            claims.forget(&key);
            if lost {
                pass.lost += 1;
                continue;
            }
            match out {
                Ok(ItemOutcome::NotStarted) => {
                    ends.push((key, epoch, None));
                    pass.released += 1;
                }
                Ok(o) if unwritten.is_empty() => {
                    if o == ItemOutcome::Done && last.is_none() {
                        pass.written += 1;
                    }
                    ends.push((key, epoch, Some(outcome_name(&o))));
                }
                Ok(_) => {
                    ends.push((key, epoch, None));
                    pass.released += 1;
                }
                Err(e) => {
                    let msg = e.to_string();
                    if msg.contains("lease lost") {
                        pass.lost += 1;
                    } else {
                        // Handed back for another try (by this worker or another).
                        ends.push((key.clone(), epoch, None));
                        pass.released += 1;
                        pass.errors.push(format!("{}: {msg}", key.1));
                    }
                }
            }
        }
        let rows: Vec<(&str, &str, i64, Option<&str>)> =
            ends.iter().map(|((s, i), e, o)| (s.as_str(), i.as_str(), *e, *o)).collect();
        for (held, (_, _, _, outcome)) in self.store.finish_works(run_id, owner, &rows).await?.into_iter().zip(&rows) {
            match (held, outcome) {
                (true, Some(_)) => pass.done += 1,
                (false, Some(_)) => pass.lost += 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// One worker's share of a shared run: claims batches of `batch` items and executes them
    /// until none is left to claim or `opts.cancel` is set (then the items not started are
    /// handed back); finishes the run when its queue is done. `owner` names this worker in
    /// the claims (unique per process).
    pub async fn work_shared(
        &self,
        run_id: &str,
        opts: &RunOptions,
        owner: &str,
        batch: usize,
    ) -> Result<SharedPass, ExecError> {
        let mut pass = SharedPass { run_id: run_id.into(), ..Default::default() };
        let run = self.store.run(run_id).await?;
        if run.status == RunStatus::RollingBack {
            return self.work_rollback(&run, opts, owner, batch).await;
        }
        if run.status != RunStatus::Running {
            return Ok(pass);
        }
        let plan = self.store.plan_of_run(&run).await?;
        self.check_site(&plan).await?;
        let approved = self.approved_items_of(&run).await?;
        let approvers = match &run.approval_id {
            Some(ids) => {
                let rows = self.store.approvals_for(&run.plan_id).await?;
                let mut names: Vec<String> =
                    rows.into_iter().filter(|r| ids.split(',').any(|i| i == r.id)).map(|r| r.approver).collect();
                names.dedup();
                names.join(", ")
            }
            None => String::new(),
        };
        let claims = Arc::new(Claims::new(run_id, owner));
        let lost_run = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (recorder, writer) = Recorder::start_with(self.store.clone(), true, None, lost_run, Some(claims.clone()));
        let ctx = self.ctx(&plan, run_id, opts, approvers, recorder.clone());
        let heartbeat = heartbeat(self.store.clone(), claims.clone(), opts.lease, self.clock.clone());
        let mut needs_perm: HashMap<String, bool> = HashMap::new();
        let claim = async |n: usize| -> Result<Vec<Claimed>, ExecError> {
            let now = self.clock.now();
            let until = now + chrono::Duration::from_std(opts.lease).unwrap_or(chrono::Duration::seconds(60));
            let got = self.store.claim_work(run_id, owner, now, until, n as i64).await?;
            claims.hold(&got);
            // What the journal already says of these items (a previous owner's intent and
            // before-image, or its outcome): the same reading as a resume's.
            let ids: Vec<String> = got.iter().map(|(_, i, _)| i.clone()).collect();
            let journal = if ids.is_empty() { vec![] } else { self.store.journal_of_items(run_id, &ids).await? };
            ctx.remember(&journal);
            let last = last_phases(&journal);
            for (s, _, _) in &got {
                if !needs_perm.contains_key(s)
                    && let Some(step) = plan.steps.iter().find(|x| &x.id == s)
                {
                    needs_perm.insert(s.clone(), step_needs_permissions(&ctx, step).await);
                }
            }
            Ok(got
                .into_iter()
                .map(|(s, i, epoch)| {
                    let key = (s, i);
                    let needs = needs_perm.get(&key.0).copied().unwrap_or(true);
                    let last = last.get(&key).copied();
                    Claimed { key, epoch, last, needs }
                })
                .collect())
        };
        let run = async |c: Claimed| -> Ran {
            let (ctx, approved, plan) = (&ctx, &approved, &plan);
            let Claimed { key, epoch, last, needs } = c;
            let (s, i) = (&key.0, &key.1);
            let Some(step) = plan.steps.iter().find(|x| &x.id == s) else {
                let out = Ok(ItemOutcome::Failed(format!("step {s} is not in the plan")));
                return Ran { key, epoch, last, out };
            };
            let Some(item) = step.items.iter().find(|x| &x.id == i) else {
                let out = Ok(ItemOutcome::Failed(format!("item {i} is not in step {s}")));
                return Ran { key, epoch, last, out };
            };
            let check = claims.check(self.store, &key, epoch);
            let phases: HashMap<Key, Phase> = last.map(|p| (key.clone(), p)).into_iter().collect();
            let needs = PermissionsNeeded::Known(needs);
            let out = tabflow_client::fenced(check, run_item(ctx, step, item, &phases, approved, &needs)).await;
            Ran { key, epoch, last, out }
        };
        let settle = async |chunk: Vec<Ran>| -> Result<bool, ExecError> {
            // Every deferred "applied" record of these items was queued before they ended:
            // durable (or refused) before a claim is done.
            let acks = ctx.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
            let mut unwritten = vec![];
            for rx in acks {
                if let Err(e) = Recorder::wait(rx).await {
                    let e = e.to_string();
                    if !e.contains("lease lost") {
                        unwritten.push(e);
                    }
                }
            }
            let settled = self.settle(run_id, owner, &claims, chunk, &unwritten, &mut pass).await;
            pass.errors.extend(unwritten);
            settled.map(|()| !pass.errors.is_empty())
        };
        // The items' re-reads at the pace their writes go out (see tabflow-client's `slots.rs`).
        let room = self.client.room_for_writes();
        let result = pipeline(batch, opts.concurrency.max(1) * 2, &opts.cancel, claim, run, settle).await;
        drop(room);
        heartbeat.abort();
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        pass.batches = result?;
        if !opts.cancel.is_cancelled() && pass.errors.is_empty() && self.store.close_work(run_id, owner).await? {
            match self.resume_shared(run_id, opts, Some(owner)).await {
                Ok(r) => pass.finished = Some(r),
                // Another worker is finishing it (it holds the run's lease), or did.
                Err(ExecError::Refused(m)) => tracing::info!(run = run_id, "not finishing the run here: {m}"),
                Err(e) => return Err(e),
            }
        }
        Ok(pass)
    }
}

/// One worker's pipeline over a shared queue, its three parts polled together in one task:
/// the feeder claims a batch (`claim(n)`, up to `n` items) whenever there is room for a whole
/// one, the runner keeps `in_flight` items running (`run`), and the finisher settles them a
/// chunk at a time (`settle`, which answers whether to stop claiming). So the calls to the
/// site never wait for a batch's slowest item, nor for the store. Ends when nothing is left
/// to claim and every claimed item is settled, when `cancel` is set (claimed items still
/// run), or after a failure of `claim` or `settle` (the rest is drained unsettled: those
/// claims lapse). Answers the number of batches claimed.
async fn pipeline<C, R>(
    batch: usize,
    in_flight: usize,
    cancel: &super::Cancel,
    mut claim: impl AsyncFnMut(usize) -> Result<Vec<C>, ExecError>,
    run: impl AsyncFn(C) -> R,
    mut settle: impl AsyncFnMut(Vec<R>) -> Result<bool, ExecError>,
) -> Result<usize, ExecError> {
    let batch = batch.max(1);
    // Items claimed and not settled yet: those running, those waiting to run, and a batch
    // or two the finisher has not settled — it may fall behind (a slow or busy store), and
    // then no more is claimed: what this worker holds stays what it can soon finish (other
    // workers claim the rest; the heartbeat renews only this much).
    let most = 4 * (in_flight.max(1) + 2 * batch);
    let (to_run, queued) = tokio::sync::mpsc::channel::<C>(batch);
    let (to_finish, finished) = tokio::sync::mpsc::unbounded_channel::<Vec<R>>();
    let outstanding = AtomicUsize::new(0);
    let batches = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let settled = tokio::sync::Notify::new();
    let feeder = async {
        let to_run = to_run;
        loop {
            if cancel.is_cancelled() || stop.load(Ordering::SeqCst) {
                break;
            }
            // Room for a whole batch first: an item is not claimed long before it can start.
            let Ok(room) = to_run.reserve_many(batch).await else { break };
            loop {
                let more = settled.notified();
                if outstanding.load(Ordering::SeqCst) + batch <= most {
                    break;
                }
                more.await;
            }
            if cancel.is_cancelled() || stop.load(Ordering::SeqCst) {
                break;
            }
            let got = match claim(batch).await {
                Ok(got) => got,
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            if got.is_empty() {
                drop(room);
                let more = settled.notified();
                if outstanding.load(Ordering::SeqCst) == 0 {
                    break;
                }
                // This worker's items still in flight may open the next step when done.
                let _ = tokio::time::timeout(Duration::from_millis(200), more).await;
                continue;
            }
            batches.fetch_add(1, Ordering::SeqCst);
            outstanding.fetch_add(got.len(), Ordering::SeqCst);
            for (c, slot) in got.into_iter().zip(room) {
                slot.send(c);
            }
        }
        Ok::<(), ExecError>(())
    };
    let runner = async {
        let run = &run;
        let items = futures::stream::unfold(queued, |mut q| async move { q.recv().await.map(|c| (c, q)) });
        let done = items.map(|c| run(c)).buffer_unordered(in_flight.max(1)).ready_chunks(batch);
        let mut done = std::pin::pin!(done);
        while let Some(chunk) = done.next().await {
            if to_finish.send(chunk).is_err() {
                break;
            }
        }
        drop(to_finish);
    };
    let finisher = async {
        let mut finished = finished;
        let mut failure: Option<ExecError> = None;
        while let Some(chunk) = finished.recv().await {
            let n = chunk.len();
            if failure.is_none() {
                match settle(chunk).await {
                    Ok(false) => {}
                    Ok(true) => stop.store(true, Ordering::SeqCst),
                    Err(e) => {
                        failure = Some(e);
                        stop.store(true, Ordering::SeqCst);
                    }
                }
            }
            outstanding.fetch_sub(n, Ordering::SeqCst);
            settled.notify_waiters();
        }
        failure
    };
    let (fed, (), failure) = futures::join!(feeder, runner, finisher);
    fed.and(failure.map_or(Ok(()), Err))?;
    Ok(batches.load(Ordering::SeqCst))
}

/// Renews each live claim of `claims` every third of `ttl` (one compare-and-set per item);
/// a renewal that fails marks the item lost, so nothing more is written for it.
fn heartbeat(
    store: Store,
    claims: Arc<Claims>,
    ttl: Duration,
    clock: Arc<dyn crate::Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep((ttl / 3).max(Duration::from_millis(100))).await;
            let until = clock.now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
            for ((step, item), epoch) in claims.live() {
                match store.renew_work(&claims.run_id, &step, &item, &claims.owner, epoch, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let key = (step, item);
                        // (A claim finished meanwhile is no longer held: nothing lost.)
                        if claims.held.lock().map(|h| h.get(&key) == Some(&epoch)).unwrap_or(false) {
                            tracing::warn!(run = %claims.run_id, item = key.1, "the item's claim was taken over");
                            claims.lose(&key);
                        }
                    }
                    Err(e) => tracing::warn!(run = %claims.run_id, "renewing item claims: {e}"),
                }
            }
        }
    })
}

/// The prefix of a rollback item's outcome when its undo did not put it back (the reason
/// follows); `restored` otherwise. Never `failed`: one item not restored does not stop the
/// others, as in a rollback in one process.
const NOT_RESTORED: &str = "not-restored: ";

impl<'a> Engine<'a> {
    /// A shared rollback (see the module's notes), under the run's lease `held` and after its
    /// approvals were used: the run set rolling-back, `run.rollback` audited, the
    /// compensations queued as `rollback` work items. A rollback with nothing to undo is
    /// closed here at once.
    pub(super) async fn queue_rollback(
        &self,
        run: &RunRow,
        plan: &'a Plan,
        opts: &RunOptions,
        held: &lease::Held,
        approved: Option<&ApprovedRollback>,
    ) -> Result<RunReport, ExecError> {
        let (run_id, fence, lost) = (run.id.as_str(), &held.fence, &held.lost);
        self.store.set_run_status_fenced(Some(fence), run_id, RunStatus::RollingBack, None).await?;
        let started = std::time::Instant::now();
        let approvers = approved.map(|a| a.grant.approvers.join(", ")).unwrap_or_default();
        // The workers' per-item audit records name the approvers as a rollback here would.
        self.store.rollback_approvers(run_id, Some(&approvers)).await?;
        let (recorder, writer) = Recorder::start(self.store.clone(), true, Some(fence.clone()), lost.clone());
        let ctx = self.ctx(plan, run_id, opts, approvers.clone(), recorder.clone());
        let result = async {
            let journal = self.store.journal(run_id).await?;
            let pairs = super::compensate::pending(&journal, approved.is_some()).len();
            let mut after = json!({"shared": true, "items": pairs});
            if let Some(a) = approved {
                after["rollback_plan"] = json!(a.plan_id);
                after["approvals"] = json!(a.grant.approval_ids);
                after["items"] = json!(a.items.len());
            }
            recorder.write(vec![], vec![super::rollback_started(opts, plan, run_id, &approvers, Some(after))]).await?;
            let (todo, unapproved) = rollback_todo(&ctx, &journal, approved.map(|a| &a.items)).await?;
            // Steps keep the order the rollback undoes them in: one step order per step.
            let mut items: Vec<(i64, String, String)> = vec![];
            for (step, item, _, _) in &todo {
                let ord = match items.last() {
                    Some((o, s, _)) if s == step => *o,
                    Some((o, _, _)) => o + 1,
                    None => 0,
                };
                items.push((ord, step.clone(), item.clone()));
            }
            self.store.queue_work_of(run_id, WORK_ROLLBACK, &items).await?;
            if items.is_empty() {
                let mut report = RunReport::restoration(run_id, 0, vec![], RunStatus::Partial, started);
                if !unapproved.is_empty() {
                    report.status = RunStatus::Partial;
                    report.skipped = unapproved;
                }
                self.close(&ctx, &report).await?;
                return Ok(report);
            }
            let mut report = RunReport::restoration(run_id, 0, vec![], RunStatus::Partial, started);
            report.status = RunStatus::RollingBack;
            report.skipped = unapproved;
            Ok(report)
        }
        .await;
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        result
    }

    /// One worker's share of a shared rollback: claims `rollback` items (the pipeline of a
    /// shared run) and compensates each (fenced by its claim, re-checked before each call)
    /// until none is left or `opts.cancel` is set; closes the rollback when its queue is done.
    async fn work_rollback(
        &self,
        run: &RunRow,
        opts: &RunOptions,
        owner: &str,
        batch: usize,
    ) -> Result<SharedPass, ExecError> {
        let run_id = run.id.as_str();
        let mut pass = SharedPass { run_id: run_id.into(), ..Default::default() };
        let plan = self.store.plan_of_run(run).await?;
        self.check_site(&plan).await?;
        let approvers = self.store.rollback_approvers(run_id, None).await?;
        let claims = Arc::new(Claims::new(run_id, owner));
        let lost_run = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (recorder, writer) = Recorder::start_with(self.store.clone(), true, None, lost_run, Some(claims.clone()));
        let ctx = self.ctx(&plan, run_id, opts, approvers, recorder.clone());
        let beat = heartbeat(self.store.clone(), claims.clone(), opts.lease, self.clock.clone());
        // The journal, read again whenever a claimed batch's step differs from the last one
        // read for: the steps are undone in order and no item of a step is claimed before
        // every item of the steps before it is done, so by then every account an earlier
        // step re-created is in it.
        let mut journal: Arc<Vec<Entry>> = Arc::new(vec![]);
        let mut read_for: Option<String> = None;
        let claim = async |n: usize| -> Result<Vec<(Key, i64, Arc<Vec<Entry>>)>, ExecError> {
            let now = self.clock.now();
            let until = now + chrono::Duration::from_std(opts.lease).unwrap_or(chrono::Duration::seconds(60));
            let got = self.store.claim_work_of(run_id, WORK_ROLLBACK, owner, now, until, n as i64).await?;
            claims.hold(&got);
            if let Some((first_step, _, _)) = got.first()
                && read_for.as_deref() != Some(first_step.as_str())
            {
                journal = Arc::new(self.store.journal(run_id).await?);
                load_maps(&ctx, &journal);
                read_for = Some(first_step.clone());
            }
            Ok(got.into_iter().map(|(s, i, epoch)| ((s, i), epoch, journal.clone())).collect())
        };
        let run = async |(key, epoch, journal): (Key, i64, Arc<Vec<Entry>>)| {
            let (s, i) = (&key.0, &key.1);
            let Some(step) = plan.step(s) else {
                return (key.clone(), epoch, Ok(Some(format!("step {s} is not in the plan"))));
            };
            let item = step.item(i).cloned().unwrap_or(Item { id: i.clone(), ..Item::default() });
            let (before, created) = before_of(&journal, s, i);
            // Classified from the live site first (a previous owner's undo that landed is
            // found at the before-state and not written again).
            let check = claims.check(self.store, &key, epoch);
            let out = tabflow_client::fenced(check, self.compensate_item(&ctx, step, &item, &before, &created)).await;
            (key, epoch, out)
        };
        let settle = async |chunk: Vec<(Key, i64, Result<Option<String>, ExecError>)>| -> Result<bool, ExecError> {
            let mut ends: Vec<(Key, i64, String)> = vec![];
            for (key, epoch, r) in chunk {
                let lost = claims.is_lost(&key);
                // Not renewed any more: the heartbeat must not take a finished claim for a lost one.
                claims.forget(&key);
                let outcome = match r {
                    _ if lost => None,
                    Err(e) if e.to_string().contains("lease lost") => None,
                    Ok(None) => {
                        pass.written += 1;
                        Some("restored".to_string())
                    }
                    Ok(Some(why)) => Some(format!("{NOT_RESTORED}{why}")),
                    Err(e) => {
                        pass.errors.push(format!("{}: {e}", key.1));
                        Some(format!("{NOT_RESTORED}{e}"))
                    }
                };
                match outcome {
                    Some(o) => ends.push((key, epoch, o)),
                    None => pass.lost += 1,
                }
            }
            let rows: Vec<(&str, &str, i64, Option<&str>)> =
                ends.iter().map(|((s, i), e, o)| (s.as_str(), i.as_str(), *e, Some(o.as_str()))).collect();
            for held in self.store.finish_works(run_id, owner, &rows).await? {
                if held {
                    pass.done += 1;
                } else {
                    pass.lost += 1;
                }
            }
            Ok(false)
        };
        let result = pipeline(batch, opts.concurrency.max(1) * 2, &opts.cancel, claim, run, settle).await;
        beat.abort();
        drop(ctx);
        drop(recorder);
        let _ = writer.await;
        pass.batches = result?;
        if !opts.cancel.is_cancelled() && self.store.close_work_of(run_id, WORK_ROLLBACK, owner).await? {
            match self.finish_rollback_shared(run_id, opts, owner).await {
                Ok(r) => pass.finished = Some(r),
                // Another worker is closing it (it holds the run's lease), or did.
                Err(ExecError::Refused(m)) => tracing::info!(run = run_id, "not closing the rollback here: {m}"),
                Err(e) => return Err(e),
            }
        }
        Ok(pass)
    }

    /// Closes a shared rollback whose queue is done, under the run's lease (exactly one
    /// worker: the status, read again under the lease, must still be rolling-back): the
    /// report from the items' outcomes, then the run's status and `run.finished` as a
    /// rollback in one process writes them.
    async fn finish_rollback_shared(
        &self,
        run_id: &str,
        opts: &RunOptions,
        owner: &str,
    ) -> Result<RunReport, ExecError> {
        let run = self.store.run(run_id).await?;
        if run.status != RunStatus::RollingBack {
            return Err(ExecError::Refused(format!("run {run_id} is {} already", run.status.as_str())));
        }
        let (plan, held) = self.take_over(&run, opts, Some(owner)).await?;
        let started = std::time::Instant::now();
        let (recorder, writer) = Recorder::start(self.store.clone(), true, Some(held.fence.clone()), held.lost.clone());
        let result = async {
            let approvers = self.store.rollback_approvers(run_id, None).await?;
            let ctx = self.ctx(&plan, run_id, opts, approvers, recorder.clone());
            let journal = self.store.journal(run_id).await?;
            load_maps(&ctx, &journal);
            let name = |s: &str, i: &str| plan.step(s).and_then(|st| st.item(i)).map(|x| x.name.clone());
            let mut restored = 0;
            let mut not_restored = vec![];
            for (step_id, item_id, outcome) in self.store.work_outcomes(run_id, WORK_ROLLBACK).await? {
                let reason = match outcome.as_deref() {
                    Some("restored") => {
                        restored += 1;
                        continue;
                    }
                    Some(o) if o.starts_with(NOT_RESTORED) => o[NOT_RESTORED.len()..].to_string(),
                    _ => format!(
                        "the undo did not finish (its queue was closed without it); `tabflow runs rollback {run_id}` undoes what is left"
                    ),
                };
                let name = name(&step_id, &item_id).unwrap_or_default();
                not_restored.push(ItemNote { step_id, item_id, name, reason });
            }
            let mut report = RunReport::restoration(run_id, restored, not_restored, RunStatus::Partial, started);
            // Items a partly approved rollback left as they were: the run is not wholly undone.
            let mut last: HashMap<(&str, &str), &Entry> = HashMap::new();
            for e in &journal {
                last.insert((e.step_id.as_str(), e.item_id.as_str()), e);
            }
            let mut unapproved: Vec<ItemNote> = last
                .values()
                .filter(|e| e.phase == Phase::CompensateSkipped && e.detail == NOT_APPROVED)
                .map(|e| ItemNote {
                    step_id: e.step_id.clone(),
                    item_id: e.item_id.clone(),
                    name: name(&e.step_id, &e.item_id).unwrap_or_default(),
                    reason: NOT_APPROVED.into(),
                })
                .collect();
            if !unapproved.is_empty() {
                unapproved.sort_by(|a, b| (&a.step_id, &a.item_id).cmp(&(&b.step_id, &b.item_id)));
                report.status = RunStatus::Partial;
                report.skipped = unapproved;
            }
            report.recreated = ctx.recreated_notes();
            self.close(&ctx, &report).await?;
            Ok(report)
        }
        .await;
        drop(recorder);
        let _ = writer.await;
        held.release(self.store).await;
        result
    }
}

/// A site's limits shared by the workers of one store (see [`tabflow_client::Gate`]): a token
/// bucket (`site_limits`) and concurrency slots (`site_slots`, each held under an expiry, so
/// a killed worker's slots come back), and the pause after a 429 written for all of them.
pub struct SiteGate {
    store: Store,
    site: String,
    owner: String,
}

impl SiteGate {
    /// The gate of `site`, when limits are set for it in the store.
    pub async fn of(store: &Store, site: &str, owner: &str) -> Result<Option<SiteGate>, StoreError> {
        Ok(store.site_limit(site).await?.map(|_| SiteGate {
            store: store.clone(),
            site: site.into(),
            owner: owner.into(),
        }))
    }
}

/// A concurrency slot held while a call is in flight; freed when dropped.
struct Slot {
    store: Store,
    site: String,
    owner: String,
    slot: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (store, site, owner, slot) = (self.store.clone(), self.site.clone(), self.owner.clone(), self.slot);
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                if let Err(e) = store.free_site_slot(&site, slot, &owner).await {
                    tracing::warn!("freeing a slot of the site's concurrency: {e}");
                }
            });
        }
    }
}

impl tabflow_client::Gate for SiteGate {
    /// A slot first, then a token: the token (and the 429 pause, read with it) is the last
    /// thing checked before the call is sent, so the calls leave no faster than the rate
    /// allows however long they waited for a slot, and none leaves once a pause is recorded.
    fn admit(&self) -> futures::future::BoxFuture<'_, Box<dyn Send + Sync>> {
        Box::pin(async move {
            let mut idle = Duration::from_millis(2);
            let slot: Box<dyn Send + Sync> = loop {
                // A slot lapses after two minutes: longer than any call's timeout.
                let until = chrono::Utc::now().timestamp_millis() + 120_000;
                match self.store.take_site_slot(&self.site, &self.owner, until).await {
                    Ok(Some(slot)) => {
                        break Box::new(Slot {
                            store: self.store.clone(),
                            site: self.site.clone(),
                            owner: self.owner.clone(),
                            slot,
                        });
                    }
                    // All taken: look again, less often the longer it lasts (every waiting
                    // call of every worker polls the table).
                    Ok(None) => {
                        tokio::time::sleep(idle).await;
                        idle = (idle * 2).min(Duration::from_millis(40));
                    }
                    Err(e) => {
                        tracing::warn!("the site's shared concurrency cannot be read ({e}); going on");
                        break Box::new(());
                    }
                }
            };
            loop {
                match self.store.take_site_token(&self.site).await {
                    Ok(None) => break,
                    Ok(Some(wait)) => tokio::time::sleep(wait.max(Duration::from_millis(1))).await,
                    Err(e) => {
                        tracing::warn!("the site's shared rate limit cannot be read ({e}); going on");
                        break;
                    }
                }
            }
            slot
        })
    }

    fn rate_limited(&self, wait: Duration) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            // Rounded up, so the shared pause never ends before the Retry-After does.
            let until = chrono::Utc::now().timestamp_millis() + wait.as_millis() as i64 + 1;
            if let Err(e) = self.store.pause_site(&self.site, until).await {
                tracing::warn!("sharing the 429 pause with the other workers: {e}");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn entry(run: &str, item: &str) -> NewEntry {
        NewEntry {
            run_id: run.into(),
            step_id: "s1".into(),
            item_id: item.into(),
            item_type: "workbook".into(),
            phase: Phase::Intent,
            image: serde_json::json!({}),
            detail: String::new(),
        }
    }

    #[tokio::test]
    async fn claims_are_disjoint_lapse_to_another_owner_and_fence_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let items: Vec<(i64, String, String)> =
            (0..5).map(|i| (0, "s1".to_string(), format!("w{i}"))).chain([(1, "s2".into(), "w0".into())]).collect();
        store.queue_work("r", &items).await.unwrap();
        let now = Utc::now();
        let short = now + chrono::Duration::milliseconds(200);
        let a = store.claim_work("r", "A", now, short, 3).await.unwrap();
        let b = store.claim_work("r", "B", now, now + chrono::Duration::seconds(60), 10).await.unwrap();
        assert_eq!(a.len(), 3);
        // B gets the rest of step 1 only: step 2 waits for step 1.
        assert_eq!(b.len(), 2, "{b:?}");
        assert!(a.iter().all(|x| !b.iter().any(|y| y.1 == x.1)));
        // A's fenced write holds while its claim does.
        let (_, item, epoch) = a[0].clone();
        let fence = vec![("r".to_string(), "s1".to_string(), item.clone(), epoch)];
        store.append_work_fenced("A", &fence, &[entry("r", &item)]).await.unwrap();
        // A's claims lapse; C takes them over with a new epoch.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let c = store.claim_work("r", "C", Utc::now(), Utc::now() + chrono::Duration::seconds(60), 10).await.unwrap();
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c.iter().all(|x| x.2 == 2), "{c:?}");
        let e = store.append_work_fenced("A", &fence, &[entry("r", &item)]).await.unwrap_err();
        assert!(matches!(e, StoreError::LeaseLost(_)), "{e}");
        assert_eq!(store.journal("r").await.unwrap().len(), 1, "the stale write left nothing");
        assert!(!store.finish_work("r", "s1", &item, "A", epoch, Some("done")).await.unwrap());
        assert!(!store.work_held("r", "s1", &item, "A", epoch, Utc::now()).await.unwrap());
        assert!(store.renew_work("r", "s1", &item, "C", 2, Utc::now() + chrono::Duration::seconds(60)).await.unwrap());
        // Not closable while claims are live and items pending.
        assert!(!store.close_work("r", "X").await.unwrap());
        for (s, i, ep) in b.iter().chain(&c) {
            let owner = if c.contains(&(s.clone(), i.clone(), *ep)) { "C" } else { "B" };
            assert!(store.finish_work("r", s, i, owner, *ep, Some("done")).await.unwrap());
        }
        let d = store.claim_work("r", "D", Utc::now(), Utc::now() + chrono::Duration::seconds(60), 10).await.unwrap();
        assert_eq!(d, vec![("s2".to_string(), "w0".to_string(), 1)]);
        assert!(store.finish_work("r", "s2", "w0", "D", 1, Some("done")).await.unwrap());
        assert!(store.close_work("r", "X").await.unwrap());
        store.close().await;
    }

    #[tokio::test]
    async fn rollback_items_are_claimed_and_closed_apart_from_the_runs_apply_items_of_the_same_step_and_item() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(60);
        // The shared run: two items applied, the second failed; its queue closed.
        store.queue_work("r", &[(0, "s1".into(), "w0".into()), (0, "s1".into(), "w1".into())]).await.unwrap();
        let a = store.claim_work("r", "A", now, later, 10).await.unwrap();
        assert!(store.finish_work("r", "s1", "w0", "A", a[0].2, Some("done")).await.unwrap());
        assert!(store.finish_work("r", "s1", "w1", "A", a[1].2, Some("failed")).await.unwrap());
        assert!(store.close_work("r", "A").await.unwrap());
        // Its rollback: the same (step, item) pairs, another kind, undone step by step.
        let undo: Vec<(i64, String, String)> =
            vec![(0, "s2".into(), "p".into()), (1, "s1".into(), "w1".into()), (1, "s1".into(), "w0".into())];
        store.queue_work_of("r", WORK_ROLLBACK, &undo).await.unwrap();
        assert_eq!(store.work_unfinished("r").await.unwrap(), 3);
        // The apply item that failed does not hold the rollback up; its step order does.
        let short = Utc::now() + chrono::Duration::milliseconds(200);
        let b = store.claim_work_of("r", WORK_ROLLBACK, "B", Utc::now(), short, 10).await.unwrap();
        assert_eq!(b, vec![("s2".to_string(), "p".to_string(), 1)]);
        assert!(store.claim_work("r", "X", Utc::now(), later, 10).await.unwrap().is_empty(), "no apply item left");
        assert!(!store.close_work_of("r", WORK_ROLLBACK, "X").await.unwrap(), "a live claim keeps it open");
        // B is killed: its claim lapses and C takes it over with a new epoch; B is fenced out.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let c = store.claim_work_of("r", WORK_ROLLBACK, "C", Utc::now(), later, 10).await.unwrap();
        assert_eq!(c, vec![("s2".to_string(), "p".to_string(), 2)]);
        let fence = vec![("r".to_string(), "s2".to_string(), "p".to_string(), 1)];
        let e = store.append_work_fenced("B", &fence, &[entry("r", "p")]).await.unwrap_err();
        assert!(matches!(e, StoreError::LeaseLost(_)), "{e}");
        assert!(!store.finish_work("r", "s2", "p", "B", 1, Some("restored")).await.unwrap());
        assert!(store.finish_work("r", "s2", "p", "C", 2, Some("restored")).await.unwrap());
        let d = store.claim_work_of("r", WORK_ROLLBACK, "D", Utc::now(), later, 10).await.unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        // Claims of rollback items are fenced and renewed like the run's own.
        assert!(store.work_held("r", "s1", "w0", "D", 1, Utc::now()).await.unwrap());
        assert!(store.renew_work("r", "s1", "w0", "D", 1, later).await.unwrap());
        assert!(store.finish_work("r", "s1", "w0", "D", 1, Some("restored")).await.unwrap());
        assert!(store.finish_work("r", "s1", "w1", "D", 1, Some("not-restored: drifted")).await.unwrap());
        assert!(store.close_work_of("r", WORK_ROLLBACK, "D").await.unwrap());
        let outcomes = store.work_outcomes("r", WORK_ROLLBACK).await.unwrap();
        assert_eq!(outcomes.len(), 3);
        assert_eq!(outcomes[0], ("s2".into(), "p".into(), Some("restored".into())));
        // A second rollback of the run replaces the finished queue.
        store.queue_work_of("r", WORK_ROLLBACK, &undo[1..2]).await.unwrap();
        assert_eq!(store.work_outcomes("r", WORK_ROLLBACK).await.unwrap().len(), 1);
        assert_eq!(store.work_outcomes("r", crate::store::WORK_APPLY).await.unwrap().len(), 2);
        store.close().await;
    }

    #[tokio::test]
    async fn a_finisher_that_falls_behind_stops_the_claims_until_it_catches_up() {
        // 300 items; running is instant, settling slow (a busy store): the worker must not
        // claim the whole queue ahead of what it settles.
        let (claimed, settled, most_held) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
        let claim = async |n: usize| -> Result<Vec<usize>, ExecError> {
            let from = claimed.load(Ordering::SeqCst);
            let got: Vec<usize> = (from..(from + n).min(300)).collect();
            claimed.fetch_add(got.len(), Ordering::SeqCst);
            let held = claimed.load(Ordering::SeqCst) - settled.load(Ordering::SeqCst);
            most_held.fetch_max(held, Ordering::SeqCst);
            Ok(got)
        };
        let run = async |i: usize| i;
        let settle = async |chunk: Vec<usize>| -> Result<bool, ExecError> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            settled.fetch_add(chunk.len(), Ordering::SeqCst);
            Ok(false)
        };
        let batches = pipeline(4, 8, &super::super::Cancel::default(), claim, run, settle).await.unwrap();
        assert_eq!((claimed.load(Ordering::SeqCst), settled.load(Ordering::SeqCst)), (300, 300));
        assert!(batches >= 75, "{batches} batches");
        let held = most_held.load(Ordering::SeqCst);
        assert!(held <= 4 * (8 + 2 * 4), "{held} items held unsettled at once");
    }
}
