//! Running the steps: per item, read, classify against the plan, journal the before-image,
//! write, journal the outcome; steps in dependency order, items of a step in parallel.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value, json};
use tabflow_client::Client;

use super::journal::last_phases;
use super::{Ctx, Engine, Event, ExecError, ItemNote, StepReport};
use crate::ops::{self, Image, Op, OpError, OpResult, State};
use crate::plan::{Effect, Item, Step, StepKind};
use crate::store::{Entry, Phase, RunRow, StagedRow};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ItemOutcome {
    Done,
    AlreadyApplied,
    Skipped(String),
    Failed(String),
    /// The run was asked to stop before this item started: nothing read, written or journalled.
    NotStarted,
}

pub(super) fn ops_of(step: &Step, item: &Item) -> Result<Vec<Op>, OpError> {
    step.changes_of(&item.id).map(|c| Op::from_change(&item.kind, c).map_err(OpError::from)).collect()
}

pub(super) fn describe_drift(op: &Op, live: &Image) -> String {
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
            Op::DeleteSubscription { .. }
            | Op::DeleteUser { .. }
            | Op::DeleteExtractRefresh { .. }
            | Op::MoveExtractRefresh { .. } => img.exists = false,
            Op::ScheduleState { after, .. } => img.state = Some(after.clone()),
            Op::RefreshSchedule { after, .. } => img.schedule = Some(after.clone()),
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
    needs: &PermissionsNeeded<'_>,
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
    let read = match needs.now() {
        Some(with_permissions) => read_for(ctx.client, &item.kind, &item.id, &ops, with_permissions || staged).await,
        None if staged => read_for(ctx.client, &item.kind, &item.id, &ops, true).await,
        // Still being found out: read along, kept only if the answer says so.
        None => read_for_if(ctx.client, &item.kind, &item.id, &ops, true, needs.get()).await,
    };
    // Known by now (the read above waited for it).
    let with_permissions = staged || needs.get().await;
    let mut live = match read {
        Ok(l) => l,
        Err(e) => return Ok(ItemOutcome::Failed(format!("cannot read it: {e}"))),
    };
    if staged {
        let subs = ctx.subscriptions.get_or_try_init(|| ctx.client.subscriptions().collect()).await;
        let filled = match subs {
            Ok(subs) => ops::fill_for_restore(ctx.client, &mut live, subs).await,
            Err(e) => Err(e.into()),
        };
        let filled = match filled {
            Ok(()) => match ctx.refresh_tasks.get_or_try_init(|| ops::site_refresh_tasks(ctx.client)).await {
                Ok(tasks) => ops::fill_refreshes(ctx.client, &mut live, tasks).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = filled {
            return Ok(ItemOutcome::Failed(format!("cannot read what a restore would need: {e}")));
        }
    }
    let targets: Vec<Option<String>> = ops.iter().map(|o| ctx.target_of(o)).collect();
    let mut states: Vec<State> = ops.iter().zip(&targets).map(|(o, t)| ops::classify(o, &live, t.as_deref())).collect();
    // Half-way between before and after: this run's own change, interrupted, when the run
    // journalled the item's before-image and that image was at "before" (finish it from
    // there); otherwise someone else's change (drift).
    let journalled = ctx.intent_images.lock().ok().and_then(|m| m.get(&(step.id.clone(), item.id.clone())).cloned());
    for ((s, op), t) in states.iter_mut().zip(&ops).zip(&targets) {
        if *s == State::Partial
            && !journalled.as_ref().is_some_and(|b| ops::classify(op, b, t.as_deref()) == State::Before)
        {
            *s = State::Drifted;
        }
    }
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
        && !ops.iter().any(|o| {
            matches!(o, Op::CreateProject { .. } | Op::DeleteSubscription { .. } | Op::DeleteExtractRefresh { .. })
        })
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
        // This run's own copy: an older run's file may predate edits made since. Streamed to
        // a temporary file, then into the store in pieces: memory stays bounded whatever the
        // file's size.
        let saved = ctx.store.backup_sha(&ctx.run_id, &item.id).await;
        match saved {
            Ok(Some(_)) => {}
            _ => match download_backup(ctx, item).await {
                Ok(Ok(sha)) => backup_sha = Some(sha),
                Ok(Err(e)) => return Ok(ItemOutcome::Failed(format!("cannot download it for the backup: {e}"))),
                Err(e) => return Err(e),
            },
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
                // Finishing a partial change: the before-image stays the one before this run.
                match &journalled {
                    Some(b) if states.contains(&State::Partial) => serde_json::to_value(b).unwrap_or_default(),
                    _ => serde_json::to_value(&live).unwrap_or_default(),
                },
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
        ctx.check_lease()?;
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
        crate::test_hooks::crash_point("before-staged-record");
        record_staged(ctx, item, backup_sha).await?;
    }
    Ok(ItemOutcome::Done)
}

/// Downloads an item's file into an anonymous temporary file (removed when dropped, mode
/// 0600), then stores it in pieces: its checksum, or the download's failure.
async fn download_backup(ctx: &Ctx<'_>, item: &Item) -> Result<Result<String, String>, ExecError> {
    let temp = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return Ok(Err(format!("no temporary file for it ({e}); check TMPDIR"))),
    };
    let mut file = tokio::fs::File::from_std(temp);
    let downloaded = match item.kind.as_str() {
        "workbook" => {
            ctx.client.download_workbook_to(&tabflow_wire::ids::WorkbookId::new(&item.id), true, &mut file).await
        }
        _ => ctx.client.download_datasource_to(&tabflow_wire::ids::DatasourceId::new(&item.id), true, &mut file).await,
    };
    let name = match downloaded {
        Ok((name, _)) => name,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let (sha, _) = ctx.store.put_backup_file(&ctx.run_id, &item.id, &name, &mut file).await?;
    Ok(Ok(sha))
}

/// Records an item this run moved to quarantine as staged, with the checksum of this run's
/// backup of it.
async fn record_staged(ctx: &Ctx<'_>, item: &Item, backup_sha: Option<String>) -> Result<(), ExecError> {
    let sha = match backup_sha {
        Some(s) => Some(s),
        None => ctx.store.backup_sha(&ctx.run_id, &item.id).await?,
    };
    let now = ctx.clock.now();
    ctx.store
        .insert_staged(&StagedRow {
            item_type: item.kind.clone(),
            item_id: item.id.clone(),
            name: item.name.clone(),
            run_id: ctx.run_id.clone(),
            quarantined_at: now,
            purge_after: tabflow_site::time::days_after(now, ctx.policy.grace_days),
            backup_sha256: sha,
            purged_at: None,
        })
        .await?;
    Ok(())
}

/// A staged delete this run carried out (journalled, or found in quarantine on resume) whose
/// staged record is missing — the process stopped between the move and the record — is
/// recorded now, so that the purge and the rollback know it.
async fn recover_staged(ctx: &Ctx<'_>, step: &Step, item: &Item) -> Result<(), ExecError> {
    let ours = ctx.touched.lock().map(|t| t.contains(&item.id)).unwrap_or(false);
    if step.kind != StepKind::StageDelete || !ours || ctx.store.staged_of(&item.id, &ctx.run_id).await?.is_some() {
        return Ok(());
    }
    tracing::info!(run = %ctx.run_id, item = %item.id, "recording a quarantined item the interrupted run had not recorded as staged");
    record_staged(ctx, item, None).await
}

/// The live image, with the workbook's datasource references when a repoint needs them.
pub(super) async fn read_for(
    client: &Client,
    kind: &str,
    id: &str,
    ops: &[Op],
    with_permissions: bool,
) -> OpResult<Image> {
    read_for_if(client, kind, id, ops, with_permissions, std::future::ready(true)).await
}

/// [`read_for`] while whether the permissions are wanted may still be being found out
/// ([`ops::read_image_if`]: asked for along with the item when `ask`, kept only if `wanted`
/// says so).
async fn read_for_if(
    client: &Client,
    kind: &str,
    id: &str,
    ops: &[Op],
    ask: bool,
    wanted: impl std::future::Future<Output = bool>,
) -> OpResult<Image> {
    let mut img = ops::read_image_if(client, kind, id, ask, wanted).await?;
    ops::fill_datasources(client, &mut img, ops).await?;
    ops::fill_account(client, &mut img, ops).await?;
    Ok(img)
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
    ctx.check_lease()?;
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

/// Whether a step's items are read with their permissions (the step changes them, or moves
/// items into a project whose permissions are locked).
pub(super) async fn step_needs_permissions(ctx: &Ctx<'_>, step: &Step) -> bool {
    permissions_needed(ctx, step).get().await
}

/// Whether a step's items are read with their permissions: known from the step, or still
/// being found out from the site (which of the projects it moves items into are locked).
#[derive(Clone)]
pub(super) enum PermissionsNeeded<'a> {
    Known(bool),
    /// The lock check, started by the first item that awaits it and shared by all: the items
    /// read meanwhile ask for their permissions along with themselves (one round trip, as
    /// when they are known to be needed) and keep them only if the answer says so, instead
    /// of every item waiting for the project list first (issue #15).
    Pending(futures::future::Shared<futures::future::LocalBoxFuture<'a, bool>>),
}

impl PermissionsNeeded<'_> {
    /// The answer, when it is known already.
    fn now(&self) -> Option<bool> {
        match self {
            PermissionsNeeded::Known(b) => Some(*b),
            PermissionsNeeded::Pending(f) => f.peek().copied(),
        }
    }

    /// The answer, waiting for it if needed.
    async fn get(&self) -> bool {
        match self {
            PermissionsNeeded::Known(b) => *b,
            PermissionsNeeded::Pending(f) => f.clone().await,
        }
    }
}

/// [`PermissionsNeeded`] of a step: known when the step changes permissions or moves items
/// into a project the plan creates (yes) or moves nothing (no); else pending on the lock of
/// the projects it moves items into.
pub(super) fn permissions_needed<'a>(ctx: &'a Ctx<'_>, step: &'a Step) -> PermissionsNeeded<'a> {
    use futures::FutureExt;
    if step.changes.iter().any(|c| matches!(c.field.as_str(), "permissions" | "content_permissions"))
        || step.changes.iter().any(|c| c.field == "project" && c.after_ref.is_some())
    {
        return PermissionsNeeded::Known(true);
    }
    if !step.changes.iter().any(|c| c.field == "project" && c.after_id.is_some()) {
        return PermissionsNeeded::Known(false);
    }
    let client = ctx.client;
    PermissionsNeeded::Pending(
        async move {
            let locked = locked_targets(client, step).await;
            step.changes.iter().any(|c| c.field == "project" && c.after_id.as_ref().is_some_and(|a| locked.contains(a)))
        }
        .boxed_local()
        .shared(),
    )
}

/// One item of a write step, as the journal (`last`: each item's last phase) leaves it: an
/// item already applied, already applied before or skipped is not read again; a destructive
/// item outside the approved pairs is skipped; any other is processed ([`process_item`]).
/// A skip is journalled.
pub(super) async fn run_item(
    ctx: &Ctx<'_>,
    step: &Step,
    item: &Item,
    last: &std::collections::HashMap<(String, String), Phase>,
    approved: &Option<BTreeSet<String>>,
    needs_perm_step: &PermissionsNeeded<'_>,
) -> Result<ItemOutcome, ExecError> {
    let key = (step.id.clone(), item.id.clone());
    // Asked to stop: an item not yet started is left for the resume.
    if ctx.cancel.is_cancelled() && !last.contains_key(&key) {
        return Ok(ItemOutcome::NotStarted);
    }
    let outcome = match last.get(&key) {
        Some(Phase::Applied) => Ok(ItemOutcome::Done),
        Some(Phase::AlreadyApplied) => Ok(ItemOutcome::AlreadyApplied),
        Some(Phase::Skipped) => Ok(ItemOutcome::Skipped("skipped before the resume".into())),
        _ if step.effect == Effect::Destructive
            && approved.as_ref().is_some_and(|a| !a.contains(&crate::approval::pair_key(&step.id, &item.id))) =>
        {
            Ok(ItemOutcome::Skipped("not approved".into()))
        }
        _ => process_item(ctx, step, item, needs_perm_step).await,
    };
    let outcome = match outcome {
        Ok(o @ (ItemOutcome::Done | ItemOutcome::AlreadyApplied)) => recover_staged(ctx, step, item).await.map(|()| o),
        other => other,
    };
    if let Ok(ItemOutcome::Skipped(reason)) = &outcome
        && last.get(&key) != Some(&Phase::Skipped)
    {
        let e = ctx.entry(step, item, Phase::Skipped, Value::Null, reason.clone());
        let a = ctx.audit(step, item, step.kind.as_str(), None, None, &format!("skipped: {reason}"));
        ctx.recorder.write(vec![e], vec![a]).await?;
    }
    outcome
}

pub(super) async fn run_steps(
    ctx: &Ctx<'_>,
    approved: &Option<BTreeSet<String>>,
    concurrency: usize,
    journal: &[Entry],
) -> Result<(Vec<StepReport>, Vec<ItemNote>, Vec<ItemNote>, bool), ExecError> {
    let plan = ctx.plan;
    let order = plan.order().map_err(|e| ExecError::Refused(e.to_string()))?;
    let last = last_phases(journal);
    let total = plan.steps.len();
    let mut reports = vec![];
    let mut skipped_notes = vec![];
    let mut failed_notes = vec![];
    let mut interrupted = false;
    for (index, si) in order.into_iter().enumerate() {
        let step = &plan.steps[si];
        if ctx.cancel.is_cancelled() {
            // Asked to stop: no further step starts.
            interrupted = true;
            break;
        }
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
        let needs_perm_step = permissions_needed(ctx, step);
        // The items' re-reads at the pace their writes go out (see tabflow-client's `slots.rs`).
        let _room = ctx.client.room_for_writes();
        let m = items.len();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<(&Item, Result<ItemOutcome, ExecError>)> = futures::stream::iter(items.iter().copied())
            .map(|item| {
                let counter = &counter;
                let last = &last;
                let needs_perm_step = &needs_perm_step;
                async move {
                    // Boxed: an item's future is large, and each of those in flight would otherwise
                    // sit inside this one.
                    let outcome = Box::pin(run_item(ctx, step, item, last, approved, needs_perm_step)).await;
                    let k = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if let Ok(o) = &outcome {
                        let (name, detail) = match o {
                            ItemOutcome::NotStarted => ("not-started", String::new()),
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
        let mut not_started = 0;
        for (item, r) in results {
            match r? {
                ItemOutcome::NotStarted => not_started += 1,
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
        } else if not_started > 0 {
            rep.status = "interrupted".into();
            interrupted = true;
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
        if failed || interrupted {
            break;
        }
    }
    Ok((reports, skipped_notes, failed_notes, interrupted))
}

impl Engine<'_> {
    pub(super) async fn approved_items_of(&self, run: &RunRow) -> Result<Option<BTreeSet<String>>, ExecError> {
        let Some(ids) = &run.approval_id else { return Ok(None) };
        let rows = self.store.approvals_for(&run.plan_id).await?;
        Ok(crate::approval::approved_items(rows.iter().filter(|r| ids.split(',').any(|i| i == r.id))))
    }

    pub(super) async fn adopt_created(&self, ctx: &Ctx<'_>, journal: &[Entry]) -> Result<(), ExecError> {
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
