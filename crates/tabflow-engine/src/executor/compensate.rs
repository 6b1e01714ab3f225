//! Compensation (rollback): undoing, in reverse journal order, what a run changed, verified
//! by reading each item back; a staged delete whose item is gone is re-published from the
//! run's saved file.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use serde_json::Value;

use super::run::{describe_drift, ops_of, read_for};
use super::{Ctx, Engine, Event, ExecError, ItemNote};
use crate::ops::{self, Image, Op, OpError, OpResult, State};
use crate::plan::{Item, Step, StepKind};
use crate::store::{Entry, Phase, Store};

/// The journal detail of an item a partly approved rollback left as it was.
pub const NOT_APPROVED: &str = "not approved: left as it is";

/// What a compensation did: items restored, items that could not be, and items left as they
/// were because the rollback's approval did not cover them.
pub(super) struct Compensation {
    pub restored: usize,
    pub not_restored: Vec<ItemNote>,
    pub unapproved: Vec<ItemNote>,
}

/// What a rollback of a run would undo now, as (step, item) pairs in the order it undoes
/// them (reverse order of the run's intents): every item the run changed or may have changed
/// (an intent without an outcome, or found already applied after a crash) and has not undone
/// yet. Items an earlier, partly approved rollback left as they were are included when
/// `reopen_unapproved` (a new rollback plan may approve them); a resumed rollback leaves them.
pub fn pending(journal: &[Entry], reopen_unapproved: bool) -> Vec<(String, String)> {
    let mut last: HashMap<(&str, &str), &Entry> = HashMap::new();
    for e in journal {
        last.insert((e.step_id.as_str(), e.item_id.as_str()), e);
    }
    let mut seen = HashSet::new();
    let mut out = vec![];
    for e in journal.iter().rev() {
        if e.phase != Phase::Intent && e.phase != Phase::AlreadyApplied {
            continue;
        }
        let key = (e.step_id.as_str(), e.item_id.as_str());
        if !seen.insert(key) {
            continue;
        }
        match last.get(&key) {
            Some(l) if l.phase == Phase::Compensated => continue,
            Some(l) if l.phase == Phase::CompensateSkipped && !(reopen_unapproved && l.detail == NOT_APPROVED) => {
                continue;
            }
            _ => {}
        }
        out.push((e.step_id.clone(), e.item_id.clone()));
    }
    out
}

/// Undoes a repoint by republishing the file this run saved before it (streamed from the
/// store piece by piece); without a saved file (it was never taken), by rewriting the
/// connection back.
async fn undo_repoint(ctx: &Ctx<'_>, store: &Store, id: &str, op: &Op) -> OpResult<Option<String>> {
    match store.backup_pieces(&ctx.run_id, id).await {
        Ok(Some(b)) => ops::republish(ctx.client, id, &b.filename.clone(), b.upload()).await.map(|()| None),
        Ok(None) => ops::compensate(ctx.client, "workbook", id, op, None).await,
        Err(e) => Err(OpError::Missing(format!("the saved file cannot be read: {e}"))),
    }
}

/// What a rollback undoes, one entry per item in the order it undoes them: (step id, item
/// id, the write-ahead before-image, the id of the project the step created). Items outside
/// `only` (a partly approved rollback) are left as they are, journaled "not approved" once,
/// and answered apart. Shared by the rollback in one process and the shared rollback's queue.
pub(super) async fn rollback_todo(
    ctx: &Ctx<'_>,
    journal: &[Entry],
    only: Option<&BTreeSet<String>>,
) -> Result<(Vec<(String, String, Image, String)>, Vec<ItemNote>), ExecError> {
    let mut unapproved = vec![];
    let mut todo = vec![];
    for (step_id, item_id) in pending(journal, only.is_some()) {
        if let Some(only) = only
            && !only.contains(&crate::approval::pair_key(&step_id, &item_id))
        {
            // Not approved: left as it is, and the journal says so (once).
            let last = journal.iter().rev().find(|x| x.step_id == step_id && x.item_id == item_id);
            let item = ctx
                .plan
                .step(&step_id)
                .and_then(|s| s.item(&item_id))
                .cloned()
                .unwrap_or(Item { id: item_id.clone(), ..Item::default() });
            if !last.is_some_and(|l| l.phase == Phase::CompensateSkipped && l.detail == NOT_APPROVED)
                && let Some(step) = ctx.plan.step(&step_id)
            {
                let e = ctx.entry(step, &item, Phase::CompensateSkipped, Value::Null, NOT_APPROVED.into());
                let a = ctx.audit(step, &item, "rollback", None, None, NOT_APPROVED);
                ctx.recorder.write(vec![e], vec![a]).await?;
            }
            unapproved.push(ItemNote { step_id, item_id, name: item.name, reason: NOT_APPROVED.into() });
            continue;
        }
        let (before, created) = before_of(journal, &step_id, &item_id);
        todo.push((step_id, item_id, before, created));
    }
    Ok((todo, unapproved))
}

/// An item's write-ahead before-image and the project its step created, from the journal.
/// The before-image is also there when a resume found the item already applied (a crash after
/// the write): an account's re-creation needs it. The first intent's: a resume that finished a
/// change stopped half-way journals the same image again, but the first is the state before
/// this run touched the item.
pub(super) fn before_of(journal: &[Entry], step_id: &str, item_id: &str) -> (Image, String) {
    let intent = journal.iter().find(|x| x.phase == Phase::Intent && x.step_id == step_id && x.item_id == item_id);
    let before: Image = intent.map(|x| serde_json::from_value(x.image.clone()).unwrap_or_default()).unwrap_or_default();
    let created = journal
        .iter()
        .find(|x| x.step_id == step_id && x.item_id == item_id && x.detail.starts_with("created:"))
        .map(|x| x.detail.trim_start_matches("created:").to_string())
        .unwrap_or_default();
    (before, created)
}

/// What the compensations need to know of the whole run: the accounts an earlier (or
/// another worker's) compensation re-created, and the projects the run created (the targets
/// of the inverse moves).
pub(super) fn load_maps(ctx: &Ctx<'_>, journal: &[Entry]) {
    for e in journal.iter().filter(|e| e.phase == Phase::Compensated) {
        if let Some(new) = e.detail.strip_prefix("recreated:")
            && let Ok(mut m) = ctx.recreated.lock()
        {
            m.insert(e.item_id.clone(), new.to_string());
        }
    }
    for e in journal {
        if let Some(c) = e.detail.strip_prefix("created:")
            && let Ok(mut m) = ctx.created.lock()
        {
            m.insert(e.step_id.clone(), c.to_string());
        }
    }
}

impl Engine<'_> {
    /// Undoes, in reverse journal order, every item this run changed (or may have changed:
    /// an intent without an outcome). Each undo is verified by reading the item back; items
    /// someone else changed since are skipped and reported.
    pub(super) async fn compensate(
        &self,
        ctx: &Ctx<'_>,
        reason: &str,
        concurrency: usize,
        only: Option<&BTreeSet<String>>,
    ) -> Result<Compensation, ExecError> {
        let journal = self.store.journal(&ctx.run_id).await?;
        let (todo, unapproved) = rollback_todo(ctx, &journal, only).await?;
        load_maps(ctx, &journal);
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
        Ok(Compensation { restored, not_restored, unapproved })
    }

    /// Undoes one item; `Ok(None)` = restored (or nothing to undo), `Ok(Some(why))` = skipped.
    /// The item is classified from the live site first, so an item already back at its
    /// before-state (a compensation that landed before its worker's lease was lost) is
    /// recorded "nothing to undo" and not written again.
    pub(super) async fn compensate_item(
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
                // Tags re-classified from the live site: only the tags the run added that are
                // still there are removed, only those it removed that are still gone are put
                // back — an undo cut off half-way (a lost lease, a crash) is not sent again.
                _ if let (Op::Tags { before: b, after: a }, Some(now)) = (op, &live.tags) => {
                    let remove: BTreeSet<String> = a.difference(b).filter(|t| now.contains(*t)).cloned().collect();
                    let put_back: BTreeSet<String> = b.difference(a).filter(|t| !now.contains(*t)).cloned().collect();
                    if !remove.is_empty() || !put_back.is_empty() {
                        to_undo.push(Op::Tags { before: put_back, after: remove });
                    }
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
            ctx.check_lease()?;
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
            && matches!(item.kind.as_str(), "workbook" | "datasource" | "project" | "flow" | "view")
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
                // Re-created under a new id: the old id stays gone.
                Op::DeleteSubscription { .. } | Op::DeleteExtractRefresh { .. } | Op::MoveExtractRefresh { .. } => {
                    State::Before
                }
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
        let Some(saved) = self.store.backup_pieces(&ctx.run_id, &item.id).await? else {
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
        let filename = saved.filename.clone();
        let (new_id, lost) = match ops::restore_content(ctx.client, before, &filename, saved.upload(), tried).await {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(step: &str, item: &str, phase: Phase, detail: &str) -> Entry {
        Entry {
            seq: 0,
            run_id: "r-1".into(),
            step_id: step.into(),
            item_id: item.into(),
            item_type: "workbook".into(),
            phase,
            image: Value::Null,
            detail: detail.into(),
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn pending_is_what_a_rollback_would_undo_now_in_reverse_order() {
        let journal = vec![
            e("s1", "p", Phase::Intent, ""),
            e("s1", "p", Phase::Applied, "created:p-9"),
            e("s2", "a", Phase::Intent, ""),
            e("s2", "a", Phase::Applied, ""),
            e("s2", "b", Phase::Intent, ""),
            e("s2", "b", Phase::Applied, ""),
            e("s2", "c", Phase::Intent, ""),
            e("s2", "c", Phase::Applied, ""),
            e("s2", "d", Phase::Skipped, "changed since the plan"),
            e("s2", "e", Phase::Intent, ""),
            // A partly approved rollback: c undone, b left as it is, a skipped for drift.
            e("s2", "c", Phase::CompensateIntent, ""),
            e("s2", "c", Phase::Compensated, ""),
            e("s2", "b", Phase::CompensateSkipped, NOT_APPROVED),
            e("s2", "a", Phase::CompensateSkipped, "not restored: changed by someone else"),
        ];
        let pairs = |v: Vec<(String, String)>| v.into_iter().map(|(s, i)| format!("{s}/{i}")).collect::<Vec<_>>();
        // A new rollback plan may approve b again; e (an intent without outcome) may have
        // changed; d was never written, c is back, a was someone else's since.
        assert_eq!(pairs(pending(&journal, true)), ["s2/e", "s2/b", "s1/p"]);
        // A resumed rollback leaves b as the approval left it.
        assert_eq!(pairs(pending(&journal, false)), ["s2/e", "s1/p"]);
    }
}
