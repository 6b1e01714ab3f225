//! Approvals for destructive steps (invariant 4). An approval is bound to the plan's
//! fingerprint and to the approved (step, item) pairs of its destructive steps
//! ([`Selection`], stored as `"s2/<item id>"` strings), expires, is used once, and records
//! who approved through which channel.
//!
//! The terminal counts as one approver whatever name it runs under (`TABFLOW_ACTOR`, `USER`
//! are not authentication): approvals given there collapse into one. A policy that needs two
//! approvers needs a second, authenticated one — an API token of the approver role.
//!
//! Only an [`Approver`] can grant one, and an `Approver` is made only by the front ends that
//! authenticate a person: the terminal (an interactive confirmation or `--approve` typed by
//! the signed-in operator) and the HTTP API with a token of the approver role. The planner,
//! an LLM and the MCP server have no constructor to call: they can only *request* approval.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::plan::new_id;
use crate::store::{ApprovalRow, Store, StoreError, StoreResult};
use crate::validate::ValidatedPlan;

/// Through which channel a person approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Terminal,
    WebConsole,
    ApiToken,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Terminal => "terminal",
            Channel::WebConsole => "web-console",
            Channel::ApiToken => "api-token",
        }
    }
}

/// An authenticated person allowed to approve. Not `Clone`/`Deserialize`: it cannot be
/// copied out of a message or forged from JSON.
#[derive(Debug)]
pub struct Approver {
    name: String,
    channel: Channel,
}

impl Approver {
    /// The operator at the terminal (the OS user running tabflow).
    pub fn terminal(name: impl Into<String>) -> Approver {
        Approver { name: name.into(), channel: Channel::Terminal }
    }
    /// A person behind an API token that has the approver (or admin) role; the caller must
    /// have checked the token's role.
    pub fn api_token(token_name: impl Into<String>, web_console: bool) -> Approver {
        Approver { name: token_name.into(), channel: if web_console { Channel::WebConsole } else { Channel::ApiToken } }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn channel(&self) -> Channel {
        self.channel
    }
}

pub use tabflow_plan::selection::{Selection, SelectionError, pair_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// Records a decision on a validated plan, as of the system clock.
pub async fn decide(
    store: &Store,
    plan: &ValidatedPlan,
    approver: &Approver,
    decision: Decision,
    selection: Selection,
    ttl_hours: i64,
) -> StoreResult<ApprovalRow> {
    decide_at(store, plan, approver, decision, selection, ttl_hours, Utc::now()).await
}

/// Records a decision on a validated plan made at `now` (the application's clock): the
/// approval expires `ttl_hours` later.
pub async fn decide_at(
    store: &Store,
    plan: &ValidatedPlan,
    approver: &Approver,
    decision: Decision,
    selection: Selection,
    ttl_hours: i64,
    now: DateTime<Utc>,
) -> StoreResult<ApprovalRow> {
    let p = plan.plan();
    // A selection names (step, item) pairs of this plan (see [`Selection::parse`]); a pair
    // the plan does not hold is refused, not ignored.
    if let Selection::Pairs(pairs) = &selection
        && let Some((step, item)) =
            pairs.iter().find(|(s, i)| !p.destructive_items().contains(&(s.as_str(), i.as_str())))
    {
        return Err(StoreError::Refused(format!(
            "{} is not a destructive (step, item) pair of plan {}; approve step ids (s2) or step/item pairs listed by `tabflow plan --json`",
            pair_key(step, item),
            p.id
        )));
    }
    let items = match decision {
        Decision::Reject => Some(vec![]),
        Decision::Approve => selection.stored(),
    };
    let row = ApprovalRow {
        id: new_id("a", now),
        plan_id: p.id.clone(),
        fingerprint: p.fingerprint.clone(),
        decision: match decision {
            Decision::Approve => "approve".into(),
            Decision::Reject => "reject".into(),
        },
        items,
        approver: approver.name.clone(),
        channel: approver.channel.as_str().into(),
        created_at: now,
        expires_at: tabflow_site::time::hours_after(now, ttl_hours.max(1)),
        used_by_run: None,
    };
    store.insert_approval(&row).await?;
    crate::audit::append(
        store,
        crate::audit::NewRecord {
            actor: approver.name.clone(),
            action: format!("approval.{}", row.decision),
            plan_id: Some(p.id.clone()),
            approver: Some(format!("{} via {}", approver.name, approver.channel.as_str())),
            after: Some(serde_json::json!({"approval": row.id, "items": row.items, "fingerprint": row.fingerprint})),
            outcome: "recorded".into(),
            ..Default::default()
        },
    )
    .await?;
    Ok(row)
}

/// The approvals a run may use: valid (unused, unexpired, same fingerprint, approve) and
/// from enough distinct approvers. Answers the approved destructive (step, item) pairs
/// (None = all) and the approval ids to consume.
#[derive(Debug, Clone)]
pub struct Grant {
    pub approval_ids: Vec<String>,
    pub approvers: Vec<String>,
    /// Approved destructive pairs as `"s2/<item id>"` ([`pair_key`]); `None` = all of them.
    pub items: Option<BTreeSet<String>>,
}

/// Why a plan cannot run yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No (valid) approval.
    None,
    Rejected(String),
    Expired,
    Stale,
    NotEnoughApprovers {
        have: usize,
        need: usize,
    },
    /// Only the terminal approved (under however many names): it counts as one, and the
    /// others must come from authenticated approvers (API tokens of the approver role).
    NeedsAuthenticatedApprover {
        need: usize,
        /// The names the terminal's approvals were given under.
        terminal_names: Vec<String>,
    },
}

/// Who an approval row counts as: the terminal is one approver whatever name it claimed;
/// an authenticated approver is its token (or console account) on its channel.
fn approver_of(r: &ApprovalRow) -> String {
    if r.channel == Channel::Terminal.as_str() {
        "terminal".into()
    } else {
        format!("{}\u{1f}{}", r.channel, r.approver)
    }
}

/// The (step, item) pairs a set of approvals lets run: with several approvers, a pair runs
/// only if every one of them approved it (`None` = all pairs).
pub fn approved_items<'a>(rows: impl Iterator<Item = &'a ApprovalRow>) -> Option<BTreeSet<String>> {
    let mut items: Option<BTreeSet<String>> = None;
    for r in rows {
        if let Some(list) = &r.items {
            let set: BTreeSet<String> = list.iter().cloned().collect();
            items = Some(match items {
                None => set,
                Some(prev) => prev.intersection(&set).cloned().collect(),
            });
        }
    }
    items
}

pub async fn grant_for(store: &Store, plan: &ValidatedPlan, required: usize) -> StoreResult<Result<Grant, Missing>> {
    grant_at(store, plan.plan(), required, Utc::now()).await
}

/// [`grant_for`] for a plan as of `now` (the application's clock). Takes the plan itself:
/// only its id and fingerprint matter, so a front end can ask about a stored plan without
/// validating it again.
pub async fn grant_at(
    store: &Store,
    p: &crate::plan::Plan,
    required: usize,
    now: DateTime<Utc>,
) -> StoreResult<Result<Grant, Missing>> {
    let rows = store.approvals_for(&p.id).await?;
    if let Some(r) = rows.iter().rev().find(|r| r.decision == "reject" && r.fingerprint == p.fingerprint) {
        return Ok(Err(Missing::Rejected(r.approver.clone())));
    }
    let mut valid: Vec<&ApprovalRow> = vec![];
    // Every live approval row, repeats by the same person included: a run uses them all,
    // so a repeated approval cannot count again for a later run.
    let mut live_ids: Vec<String> = vec![];
    let mut expired = false;
    let mut stale = false;
    for r in rows.iter().filter(|r| r.decision == "approve" && r.used_by_run.is_none()) {
        if r.fingerprint != p.fingerprint {
            stale = true;
        } else if r.expires_at <= now {
            expired = true;
        } else {
            live_ids.push(r.id.clone());
            // An approver's latest decision is the one that counts (rows come oldest first);
            // every terminal approval is the one terminal approver's.
            match valid.iter_mut().find(|v| approver_of(v) == approver_of(r)) {
                Some(v) => *v = r,
                None => valid.push(r),
            }
        }
    }
    if valid.is_empty() {
        return Ok(Err(if expired {
            Missing::Expired
        } else if stale {
            Missing::Stale
        } else {
            Missing::None
        }));
    }
    if valid.len() < required {
        let terminal_only = valid.iter().all(|r| r.channel == Channel::Terminal.as_str());
        return Ok(Err(if terminal_only {
            let terminal_names: BTreeSet<String> = rows
                .iter()
                .filter(|r| live_ids.contains(&r.id) && r.channel == Channel::Terminal.as_str())
                .map(|r| r.approver.clone())
                .collect();
            Missing::NeedsAuthenticatedApprover { need: required, terminal_names: terminal_names.into_iter().collect() }
        } else {
            Missing::NotEnoughApprovers { have: valid.len(), need: required }
        }));
    }
    let items = approved_items(valid.iter().copied());
    Ok(Ok(Grant {
        approval_ids: live_ids,
        approvers: valid.iter().map(|r| format!("{} via {}", r.approver, r.channel)).collect(),
        items,
    }))
}
