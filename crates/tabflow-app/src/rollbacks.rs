//! Rollback plans (issue #16): undoing a run is a plan of its own, approved like any
//! destructive plan. [`App::plan_rollback`] makes it from the run's journal — one
//! `compensate` step per step of the run that changed something, in reverse order, whose
//! items are the items the run changed (with their `updatedAt` now) and whose changes put
//! them back — checks it with the five checks, seals and stores it with `rollback_of` naming
//! the run. Approvals name its (step, item) pairs, which are the run's own (`s2/<item id>`);
//! [`App::start_run`] on it undoes exactly the approved pairs (the engine's compensation with
//! an item filter) and leaves the others as they are, journaled as not approved. A rollback
//! plan whose items changed since it was made (or whose run was undone further meanwhile) is
//! refused as stale.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tabflow_engine::approval::{Missing, pair_key};
use tabflow_engine::executor::{ApprovedRollback, pending};
use tabflow_engine::plan::{Change, Item, Plan, Step, StepKind};
use tabflow_engine::{RunStatus, ValidatedPlan};
use tokio::sync::mpsc;

use crate::App;
use crate::error::{Error, Kind, Result};
use crate::planning::error_findings;
use crate::runs::{Done, RunHandle, RunOutcome, attach_reports, feed, spawn_run};

/// The hint of a stale rollback plan.
fn remake_hint(run_id: &str) -> String {
    format!(
        "nothing was changed; make a new rollback plan of the run (tabflow runs rollback {run_id}, or POST /api/v1/runs/{run_id}/rollback) and have it approved"
    )
}

impl App {
    /// Makes the rollback plan of a finished, failed or partial run — or of an interrupted
    /// one, whose lease is claimed when the rollback runs (nothing on the site changes now):
    /// validated, sealed, stored with `actor` as its requester (so an approver must differ
    /// from it, as for any plan) and audited as `rollback.requested` with `channel`. Refused
    /// for a run already rolled back and for a run that left nothing to undo.
    pub async fn plan_rollback(&self, run_id: &str, actor: &str, channel: &str) -> Result<ValidatedPlan> {
        let run = self.store.run(run_id).await.map_err(|e| Error::lookup(e, "see `tabflow runs list`"))?;
        if run.status == RunStatus::RolledBack {
            return Err(Error::usage(format!("run {run_id} is already rolled back"), "nothing to undo"));
        }
        let original = self.store.plan_of_run(&run).await.map_err(|e| Error::store(e, "see `tabflow runs show`"))?;
        self.check_site(&original).await?;
        let journal = self.store.journal(run_id).await.map_err(|e| Error::store(e, "check the state store"))?;
        let pairs = pending(&journal, true);
        if pairs.is_empty() {
            return Err(Error::usage(
                format!("run {run_id} left nothing to undo (it changed nothing, or everything it changed is back)"),
                format!("see what it did with `tabflow runs show {run_id}`"),
            ));
        }
        let now = self.clock.now();
        let mut draft = rollback_draft(&original, run_id, &pairs, &journal, now);
        let (site, user_id) = self.read_for_checks(&draft).await?;
        set_updated_at(&mut draft, &site);
        let vp = match self.validate_and_keep(draft, &site, &user_id).await? {
            Ok(v) => v,
            Err(p) => {
                self.store.save_plan(&p).await.map_err(|e| Error::store(e, "check the state store"))?;
                return Err(Error::failed(
                    format!(
                        "the rollback plan {} of run {run_id} failed its checks: {}",
                        p.id,
                        error_findings(&p).join("; ")
                    ),
                    "fix the cause named above, then ask for the rollback again; nothing was changed",
                ));
            }
        };
        let plan = vp.plan();
        self.store.set_plan_requester(&plan.id, actor).await.map_err(|e| Error::store(e, "check the state store"))?;
        tabflow_engine::audit::append(
            &self.store,
            tabflow_engine::audit::NewRecord {
                actor: actor.to_string(),
                action: "rollback.requested".into(),
                plan_id: Some(plan.id.clone()),
                run_id: Some(run_id.to_string()),
                after: Some(json!({
                    "channel": channel,
                    "rollback_plan": plan.id,
                    "items": plan.destructive_items().len(),
                    "fingerprint": plan.fingerprint,
                })),
                outcome: "planned".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(vp)
    }

    /// Whether a rollback plan still describes what its run's rollback would do now: the
    /// same (step, item) pairs left to undo, and each item unchanged since the plan was made
    /// (`updatedAt`). A stale one is refused ([`Kind::NeedsApproval`] with
    /// [`Missing::Stale`]): nothing runs.
    pub(crate) async fn check_rollback_current(&self, plan: &Plan, run_id: &str) -> Result<()> {
        let journal = self.store.journal(run_id).await.map_err(|e| Error::store(e, "check the state store"))?;
        let now: BTreeSet<String> = pending(&journal, true).iter().map(|(s, i)| pair_key(s, i)).collect();
        let planned: BTreeSet<String> = plan.destructive_items().iter().map(|(s, i)| pair_key(s, i)).collect();
        let stale = |why: String| {
            Error::new(
                Kind::NeedsApproval(Missing::Stale),
                format!("rollback plan {} of run {run_id} is stale: {why}", plan.id),
                remake_hint(run_id),
            )
        };
        if let Some(gone) = planned.difference(&now).next() {
            return Err(stale(format!("{gone} is no longer left to undo (undone since the plan was made)")));
        }
        if let Some(new) = now.difference(&planned).next() {
            return Err(stale(format!("{new} was changed by the run and is not in the plan")));
        }
        let (site, _) = self.read_for_checks(plan).await?;
        let live = live_updated(&site);
        for s in &plan.steps {
            for i in &s.items {
                let Some(then) = &i.updated_at else { continue };
                match live.get(i.id.as_str()) {
                    Some(now) if now == then => {}
                    Some(now) => {
                        return Err(stale(format!(
                            "{} '{}' changed since the plan was made (updated {now}, planned {then})",
                            i.kind, i.name
                        )));
                    }
                    None => return Err(stale(format!("{} '{}' no longer exists", i.kind, i.name))),
                }
            }
        }
        Ok(())
    }

    /// Starts an approved rollback plan: undoes exactly the approved pairs of run `run_id`.
    /// The handle's run id is the run undone (its journal and status carry the rollback).
    /// `shared`: the approved compensations are queued for the store's workers (the run is
    /// left rolling-back; the worker that does the last one closes the rollback).
    pub(crate) async fn start_rollback(
        &self,
        vp: ValidatedPlan,
        run_id: &str,
        actor: &str,
        shared: bool,
    ) -> Result<RunHandle> {
        let plan = vp.plan();
        let grant = match self.approval_status(&plan.id).await? {
            Ok(g) => g,
            Err(m) => return Err(crate::runs::needs_approval(plan, m)),
        };
        self.check_rollback_current(plan, run_id).await?;
        let all: BTreeSet<String> = plan.destructive_items().iter().map(|(s, i)| pair_key(s, i)).collect();
        let items: BTreeSet<String> = match &grant.items {
            Some(set) => set.clone(),
            None => all.clone(),
        };
        // Removing a project the run created while some of what the run put in it stays
        // there would take that content with it: refused, not attempted.
        if items != all
            && let Some(s) = plan.steps.iter().find(|s| {
                s.details["undoes"] == "create-project"
                    && s.items.iter().any(|i| items.contains(&pair_key(&s.id, &i.id)))
            })
        {
            return Err(Error::usage(
                format!(
                    "rollback plan {} would remove the project{} the run created (step {}) while {} item(s) the run moved are left as they are",
                    plan.id,
                    s.items.first().map(|i| format!(" '{}'", i.name)).unwrap_or_default(),
                    s.id,
                    all.difference(&items).count()
                ),
                format!(
                    "approve every item of the rollback plan, or leave step {} out of the approval; nothing was changed",
                    s.id
                ),
            ));
        }
        let run = self.store.run(run_id).await.map_err(|e| Error::lookup(e, "see `tabflow runs list`"))?;
        if let Ok(original) = self.store.plan_of_run(&run).await {
            self.check_site(&original).await?;
        }
        let approved = ApprovedRollback { plan_id: plan.id.clone(), grant, items };
        let session = self.connect().await?;
        let mut ctx = self.run_ctx(&session.client, actor, false, tabflow_engine::executor::Cancel::default());
        ctx.opts.shared = shared;
        let (tx, feed) = feed();
        let id = run_id.to_string();
        let task = spawn_run(move || rollback_task(ctx, id, approved, tx));
        Ok(RunHandle { run_id: run_id.to_string(), feed, done: Done::Task(task) })
    }

    /// Records, for a rollback plan, that an approver decided on it (`rollback.approved` or
    /// `rollback.rejected`, with the run it undoes and the approver's channel).
    pub(crate) async fn audit_rollback_decision(
        &self,
        plan: &Plan,
        approver: &tabflow_engine::approval::Approver,
        row: &tabflow_engine::store::ApprovalRow,
    ) -> Result<()> {
        let Some(run_id) = &plan.rollback_of else { return Ok(()) };
        let action = if row.decision == "approve" { "rollback.approved" } else { "rollback.rejected" };
        tabflow_engine::audit::append(
            &self.store,
            tabflow_engine::audit::NewRecord {
                actor: approver.name().to_string(),
                action: action.into(),
                plan_id: Some(plan.id.clone()),
                run_id: Some(run_id.clone()),
                approver: Some(format!("{} via {}", approver.name(), approver.channel().as_str())),
                after: Some(json!({"approval": row.id, "items": row.items, "channel": approver.channel().as_str()})),
                outcome: "recorded".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(())
    }
}

/// The task of an approved rollback, then the run's reports again.
async fn rollback_task(
    ctx: crate::runs::RunCtx,
    id: String,
    approved: ApprovedRollback,
    tx: mpsc::UnboundedSender<tabflow_engine::Event>,
) -> Result<RunOutcome> {
    let engine = tabflow_engine::Engine {
        client: &ctx.client,
        store: &ctx.store,
        policy: ctx.policy.clone(),
        events: Some(tx),
        clock: ctx.clock.clone(),
    };
    let r = engine.rollback_approved(&id, &ctx.opts, &approved).await;
    drop(engine);
    let mut report = r.map_err(|e| Error::failed(e.to_string(), "see `tabflow runs show ID`"))?;
    if ctx.opts.shared && report.status == RunStatus::RollingBack {
        // Queued for the workers: the worker that closes the rollback writes the reports.
        return Ok(RunOutcome { report, schedules: vec![], warnings: vec![] });
    }
    let warnings = attach_reports(&ctx.store, &ctx.data_dir, &ctx.redactor, &mut report).await;
    Ok(RunOutcome { report, schedules: vec![], warnings })
}

/// The rollback plan of `original`'s run, before its site read: a `compensate` step per
/// step with pairs left to undo, in the order the rollback undoes them (reverse order of the
/// run), each keeping the original step's id so that approvals and the journal name the same
/// (step, item) pairs.
pub(crate) fn rollback_draft(
    original: &Plan,
    run_id: &str,
    pairs: &[(String, String)],
    journal: &[tabflow_engine::store::Entry],
    now: chrono::DateTime<chrono::Utc>,
) -> Plan {
    // Ids of the projects the run created, by the step that created them.
    let created: BTreeMap<&str, &str> =
        journal.iter().filter_map(|e| e.detail.strip_prefix("created:").map(|c| (e.step_id.as_str(), c))).collect();
    let mut order: Vec<&str> = vec![];
    let mut by_step: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (s, i) in pairs {
        if !order.contains(&s.as_str()) {
            order.push(s);
        }
        by_step.entry(s).or_default().push(i);
    }
    let request = format!("Roll back run {run_id}: {}", original.request);
    let mut plan = Plan::draft(&request, original.site.clone(), vec![], now);
    plan.rollback_of = Some(run_id.to_string());
    let mut previous: Option<String> = None;
    for step_id in order {
        let Some(step) = original.step(step_id) else { continue };
        let ids = &by_step[step_id];
        let items: Vec<Item> = ids
            .iter()
            .map(|id| step.item(id).cloned().unwrap_or(Item { id: id.to_string(), ..Item::default() }))
            .map(|i| Item { updated_at: None, ..i })
            .collect();
        let changes: Vec<Change> =
            ids.iter().flat_map(|id| step.changes_of(id).map(|c| inverse(c, &created)).collect::<Vec<_>>()).collect();
        let n = items.len();
        let title = format!("Undo step {} — {} ({n} item{})", step.id, step.title, if n == 1 { "" } else { "s" });
        let details = json!({"undoes": step.kind.as_str(), "run_id": run_id});
        let depends_on = previous.iter().cloned().collect();
        plan.steps.push(Step::new(step.id.clone(), StepKind::Compensate, title, depends_on, items, changes, details));
        previous = Some(step.id.clone());
    }
    plan.notes.push(format!(
        "rollback plan of run {run_id} (plan {}): each step puts back what the run's step of the same id changed; approve (step, item) pairs to choose what is undone — the rest stays as it is",
        original.id
    ));
    plan
}

/// The change that puts back what `c` did: before and after swapped; a target the run
/// created (`after_ref`) is named by the id it got.
fn inverse(c: &Change, created: &BTreeMap<&str, &str>) -> Change {
    let made = c.after_ref.as_deref().and_then(|r| created.get(r)).map(|s| s.to_string());
    Change {
        item: c.item.clone(),
        field: c.field.clone(),
        before: c.after.clone(),
        after: c.before.clone(),
        before_id: c.after_id.clone().or(made),
        after_id: c.before_id.clone(),
        after_ref: None,
    }
}

/// Every item's `updatedAt` on the site now, as plans write it.
fn live_updated(site: &tabflow_site::Site) -> BTreeMap<&str, String> {
    let fmt = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = BTreeMap::new();
    for w in &site.workbooks {
        out.insert(w.id.as_str(), fmt(&w.updated_at));
    }
    for d in &site.datasources {
        out.insert(d.id.as_str(), fmt(&d.updated_at));
    }
    for f in &site.flows {
        out.insert(f.id.as_str(), fmt(&f.updated_at));
    }
    for p in &site.projects {
        if let Some(t) = &p.updated_at {
            out.insert(p.id.as_str(), fmt(t));
        }
    }
    out
}

/// Records each item's `updatedAt` as read now: what the rollback plan is made against (part
/// of its fingerprint, and what [`App::check_rollback_current`] compares).
fn set_updated_at(plan: &mut Plan, site: &tabflow_site::Site) {
    let live = live_updated(site);
    for s in &mut plan.steps {
        for i in &mut s.items {
            i.updated_at = live.get(i.id.as_str()).cloned();
        }
    }
}
