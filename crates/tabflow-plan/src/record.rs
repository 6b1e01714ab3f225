//! The plain records of the store that code outside the engine reads: runs, journal entries
//! and learning records. They live in the pure core so that the planner and the reports
//! (`tabflow-workflows`) can read them without depending on the engine and its database;
//! the engine's store (`tabflow_engine::store`) reads and writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Succeeded,
    /// Some items were skipped (drift, not approved) or failed without needing rollback.
    Partial,
    RollingBack,
    RolledBack,
    AwaitingApproval,
    Cancelled,
    /// A failure during rollback: the journal says what is left.
    Failed,
    /// Stopped on request (Ctrl-C) between items: the items in flight were finished and
    /// journalled, the rest not started; `resume` finishes it, `rollback` undoes it.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::RollingBack => "rolling-back",
            RunStatus::RolledBack => "rolled-back",
            RunStatus::AwaitingApproval => "awaiting-approval",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "partial" => RunStatus::Partial,
            "rolling-back" => RunStatus::RollingBack,
            "rolled-back" => RunStatus::RolledBack,
            "awaiting-approval" => RunStatus::AwaitingApproval,
            "cancelled" => RunStatus::Cancelled,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            _ => return None,
        })
    }
    pub fn is_unfinished(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::RollingBack)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRow {
    pub id: String,
    pub plan_id: String,
    pub status: RunStatus,
    pub request: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub actor: String,
    /// Who holds the run's lease (`host:pid:random`), while a process executes it.
    #[serde(default)]
    pub lease_owner: Option<String>,
    /// When that lease runs out unless renewed.
    #[serde(default)]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The fencing epoch: raised by every claim; a write carrying an older one is refused.
    #[serde(default)]
    pub lease_epoch: i64,
    pub approval_id: Option<String>,
    pub summary: Value,
    /// The fingerprint of the plan the run was approved for (recorded when it starts); a
    /// resume or rollback refuses a stored plan with another one.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// One journal entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: i64,
    pub run_id: String,
    pub step_id: String,
    pub item_id: String,
    pub item_type: String,
    pub phase: Phase,
    /// Before-image (intent) or after-image (applied/compensated), when relevant.
    pub image: Value,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// Journal phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// About to write; `image` is the before-image.
    Intent,
    /// Written and read back; `image` is the after-image (and any created id in detail).
    Applied,
    /// Found already applied (resume, lost response); no write sent.
    AlreadyApplied,
    /// Not touched: `detail` says why (drift, not approved, protected).
    Skipped,
    /// The write failed; `detail` has the error.
    Failed,
    /// About to undo; `image` is the live state before compensation.
    CompensateIntent,
    /// Undone and verified by read-back.
    Compensated,
    /// Not undone because someone else changed it since (or nothing to undo).
    CompensateSkipped,
    CompensateFailed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Intent => "intent",
            Phase::Applied => "applied",
            Phase::AlreadyApplied => "already-applied",
            Phase::Skipped => "skipped",
            Phase::Failed => "failed",
            Phase::CompensateIntent => "compensate-intent",
            Phase::Compensated => "compensated",
            Phase::CompensateSkipped => "compensate-skipped",
            Phase::CompensateFailed => "compensate-failed",
        }
    }
    pub fn parse(s: &str) -> Option<Phase> {
        Some(match s {
            "intent" => Phase::Intent,
            "applied" => Phase::Applied,
            "already-applied" => Phase::AlreadyApplied,
            "skipped" => Phase::Skipped,
            "failed" => Phase::Failed,
            "compensate-intent" => Phase::CompensateIntent,
            "compensated" => Phase::Compensated,
            "compensate-skipped" => Phase::CompensateSkipped,
            "compensate-failed" => Phase::CompensateFailed,
            _ => return None,
        })
    }
}

/// One thing learned from a user's choices: an answer to a question, the new owner chosen
/// for an item, an item removed from an approval (tabflow-workflows' `learn` module reads
/// them; `tabflow learn show` lists them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LearningRow {
    pub id: i64,
    /// `answer`, `owner` or `removed`.
    pub kind: String,
    /// What the choice is about: a question's key, a project, an item id.
    pub key: String,
    /// What the user chose.
    pub value: String,
    /// Where it happened (request, plan, team, names) — for the reasons shown to users.
    pub context: Value,
    pub at: DateTime<Utc>,
}

/// A learning record to add (id and time are assigned by the store).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLearning {
    pub kind: String,
    pub key: String,
    pub value: String,
    pub context: Value,
}
