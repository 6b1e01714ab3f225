//! The state store: plans, approvals, runs, the write-ahead journal, backups of deleted
//! content, staged deletes and the audit log. SQLite (one file in the user's data directory,
//! WAL mode, `synchronous=FULL`) is the embedded default; PostgreSQL (`postgres://…`) serves
//! several tabflow processes sharing one store. Both run the same SQL through sqlx's `Any`
//! driver; only the schema's types and the audit lock differ.
//!
//! Every journal entry is committed before the write it announces is sent; group commit
//! (several items' entries in one transaction) keeps that cheap under parallel execution.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::{AnyPoolOptions, AnyRow};

use crate::plan::{Plan, PlanKey};
pub use tabflow_plan::record::{Entry, LearningRow, NewLearning, Phase, RunRow, RunStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state store {location} cannot be opened: {detail}")]
    Open { location: String, detail: String },
    #[error("state store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("state store holds a damaged record: {0}")]
    Damaged(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    /// A write carried a fencing epoch older than the run's: another process took the run's
    /// lease over, and this one must stop writing.
    #[error("{0}")]
    LeaseLost(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A new journal entry (seq and time are assigned by the store).
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub run_id: String,
    pub step_id: String,
    pub item_id: String,
    pub item_type: String,
    pub phase: Phase,
    pub image: Value,
    pub detail: String,
}

/// The fencing token of a run's writes: the lease as this process claimed it (see
/// [`crate::executor::lease`]). A journal or status write carrying it succeeds only while the
/// run's lease is still this owner's at this epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub run_id: String,
    pub owner: String,
    pub epoch: i64,
}

/// An approval, bound to a plan fingerprint and a subset of its items.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApprovalRow {
    pub id: String,
    pub plan_id: String,
    pub fingerprint: String,
    pub decision: String,
    /// `None` = all items; otherwise the approved item ids.
    pub items: Option<Vec<String>>,
    pub approver: String,
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_by_run: Option<String>,
}

/// An API token of `tabflow serve`: its name, role and the SHA-256 (hex) of the token; the
/// token itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRow {
    pub name: String,
    /// `viewer`, `requester`, `approver` or `admin`.
    pub role: String,
    pub sha256: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A quarantined item waiting for its real delete.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StagedRow {
    pub item_type: String,
    pub item_id: String,
    pub name: String,
    pub run_id: String,
    pub quarantined_at: DateTime<Utc>,
    pub purge_after: DateTime<Utc>,
    pub backup_sha256: Option<String>,
    pub purged_at: Option<DateTime<Utc>>,
}

/// A user told that their license goes after a grace period (`reclaim-licenses` with
/// `grace_days`): recorded by the run that sent the notice, resolved by the run that changed
/// their role (`acted`) or found them active again (`dropped`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LicenseNoticeRow {
    pub site_id: String,
    pub user_id: String,
    pub user_name: String,
    pub site_role: String,
    pub to_role: String,
    pub notified_at: DateTime<Utc>,
    pub act_after: DateTime<Utc>,
    pub run_id: String,
    pub plan_id: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

/// Which database holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A recurring review: an intent (or a template with parameters) to plan again on a cadence,
/// run by `tabflow worker`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ScheduleRow {
    pub id: String,
    /// `daily`, `weekly`, `monthly` or a cron expression, as the user gave it.
    pub cadence: String,
    pub request: String,
    /// The intent to plan each time (`{"name", "params"}`); null for a template's schedule.
    pub intent: Value,
    /// The plan that asked for it; empty for `tabflow schedule add`.
    pub plan_id: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// The template to run (its newest version when the schedule fires).
    pub template: Option<String>,
    /// The template's parameters as given (`{"tags": "sensitive"}`).
    pub params: Value,
    /// The IANA time zone the cron expression is read in; `None` = UTC.
    pub tz: Option<String>,
    /// The site it runs against (`<server>|<site content URL>`); `None` = any (older rows).
    pub site: Option<String>,
    /// When it is due next; `None` = computed from the last run (or creation).
    pub next_run_at: Option<DateTime<Utc>>,
    /// What its last firing did: `report`, `awaiting-approval`, a run status, `failed`, ….
    pub last_outcome: Option<String>,
    pub last_detail: Option<String>,
    pub last_plan_id: Option<String>,
    pub last_run_id: Option<String>,
    /// A plan of this schedule waiting for an approval, started once approved.
    pub pending_plan_id: Option<String>,
}

/// What a schedule's firing (or its approved plan's run) came to, recorded by the worker
/// that holds the schedule's claim.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleOutcome {
    pub at: Option<DateTime<Utc>>,
    pub outcome: String,
    pub detail: String,
    pub plan_id: Option<String>,
    pub run_id: Option<String>,
    /// The plan now waiting for an approval (`None` clears it).
    pub pending_plan_id: Option<String>,
    /// When it is due next (`None` leaves it as it is).
    pub next_run_at: Option<DateTime<Utc>>,
}

/// A template as stored: one version of one name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TemplateRow {
    pub name: String,
    pub version: i64,
    /// The template (JSON, as the application service writes it).
    pub body: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A notification in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub run_id: String,
    pub recipient_id: String,
    pub recipient_name: String,
    pub recipient_email: String,
    pub subject: String,
    pub body: String,
    /// `queued` (written, not yet tried), `sending`, `sent` (every configured channel took
    /// it), `dry` (kept here: no channel configured, or no address for it) or `failed`.
    pub status: String,
    /// What happened, one clause per channel (`email: …; webhook: …`).
    pub detail: String,
    /// Per channel (`email`, `webhook`): `{"status", "detail", "attempts", "at"}`.
    pub channels: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Delivery attempts so far.
    #[serde(default)]
    pub attempts: i64,
    /// When a `failed` message is tried again by itself (the worker's pass, `tabflow serve`);
    /// `None` for a failed one once its attempts are used up: a dead letter, retried only by
    /// `tabflow outbox retry`.
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// What the message is about (`run-started`, `plan-awaiting-approval`, …); `None` for an
    /// owner's message from a run's notify or hand-over step.
    #[serde(default)]
    pub event: Option<String>,
}

/// The store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where it is, for messages: a file path, or the PostgreSQL URL without its password.
    location: String,
    /// Serializes audit appends within this process (SQLite's write lock does it across).
    audit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The key plans are sealed with (kept in `kv`, made when the store is first opened).
    plan_key: std::sync::Arc<PlanKey>,
    /// The file the head of the audit chain is anchored in, outside the store (see
    /// [`crate::audit`]); `None`: not anchored.
    audit_anchor: Option<std::sync::Arc<std::path::PathBuf>>,
    /// Secrets replaced by `[redacted]` in every audit record before it is hashed and stored
    /// ([`Store::with_audit_redaction`]).
    audit_secrets: AuditSecrets,
}

/// The secrets kept out of audit records, longest first; `Debug` shows only their count.
#[derive(Clone, Default)]
pub(crate) struct AuditSecrets(std::sync::Arc<Vec<String>>);

impl std::fmt::Debug for AuditSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditSecrets({})", self.0.len())
    }
}

impl AuditSecrets {
    /// `text` with every secret replaced by `[redacted]`.
    pub(crate) fn redact(&self, text: &str) -> Option<String> {
        if !self.0.iter().any(|s| text.contains(s.as_str())) {
            return None;
        }
        Some(self.0.iter().fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]")))
    }
}

/// The `kv` key of the plan key's secret (hex).
const PLAN_KEY: &str = "plan-key";

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS plans (id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, request TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, plan_id TEXT NOT NULL, fingerprint TEXT NOT NULL, decision TEXT NOT NULL, items TEXT, approver TEXT NOT NULL, channel TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_by_run TEXT)",
    "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, plan_id TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL, created_at TEXT NOT NULL, finished_at TEXT, actor TEXT NOT NULL, owner_pid INTEGER, approval_id TEXT, summary TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL, item_id TEXT NOT NULL, item_type TEXT NOT NULL, phase TEXT NOT NULL, image TEXT NOT NULL, detail TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS journal_run ON journal (run_id, seq)",
    "CREATE TABLE IF NOT EXISTS backups (run_id TEXT NOT NULL, item_id TEXT NOT NULL, filename TEXT NOT NULL, sha256 TEXT NOT NULL, bytes BLOB NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (run_id, item_id))",
    "CREATE TABLE IF NOT EXISTS staged (item_type TEXT NOT NULL, item_id TEXT NOT NULL, name TEXT NOT NULL, run_id TEXT NOT NULL, quarantined_at TEXT NOT NULL, purge_after TEXT NOT NULL, backup_sha256 TEXT, purged_at TEXT, PRIMARY KEY (item_id, run_id))",
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, plan_id TEXT, run_id TEXT, step_id TEXT, item_id TEXT, before TEXT, after TEXT, approver TEXT, outcome TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS learning (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, context TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS schedules (id TEXT PRIMARY KEY, cadence TEXT NOT NULL, request TEXT NOT NULL, intent TEXT NOT NULL, plan_id TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, last_run_at TEXT)",
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, recipient_id TEXT NOT NULL, recipient_name TEXT NOT NULL, recipient_email TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, channels TEXT NOT NULL DEFAULT '{}')",
];

/// Columns added to tables after stores were created with [`SCHEMA`], before the store kept
/// a schema version: part of migration 1, so a store made by such a build gets them (and
/// `then`, if given) when it is first opened by a versioned one. Later columns are new
/// migrations in [`MIGRATIONS`], not entries here.
const ADDED_COLUMNS: &[(&str, &str, &str, Option<&str>)] = &[(
    "outbox",
    "channels",
    "TEXT NOT NULL DEFAULT '{}'",
    // Builds before email delivery said so in the messages they kept; it is no longer true.
    Some(
        "UPDATE outbox SET detail = 'no channel configured: set TABFLOW_SMTP_URL and TABFLOW_NOTIFY_FROM for email, or TABFLOW_NOTIFY_WEBHOOK' WHERE status = 'dry' AND detail LIKE '%email is not sent by this build%'",
    ),
)];

/// One change of a migration.
enum Change {
    /// A statement in SQLite's dialect (translated by [`postgres_schema`]).
    Sql(&'static str),
    /// `ALTER TABLE table ADD COLUMN column definition` unless the column is there, then
    /// `then` if given (idempotent, for stores that may already have it).
    AddColumn { table: &'static str, column: &'static str, definition: &'static str, then: Option<&'static str> },
}

/// A numbered schema change, applied once per store in its own transaction and recorded in
/// `schema_migrations`.
struct Migration {
    version: i64,
    name: &'static str,
    changes: fn() -> Vec<Change>,
}

/// Every migration, in order. Append only: a released migration is never edited.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "the tables of the unversioned stores (plans, approvals, runs, journal, backups, staged, audit, kv, learning, schedules, outbox)",
        changes: || {
            // Idempotent: a store created before versioning has these tables already.
            let mut v: Vec<Change> = SCHEMA.iter().map(|s| Change::Sql(s)).collect();
            v.extend(ADDED_COLUMNS.iter().map(|(table, column, definition, then)| Change::AddColumn {
                table,
                column,
                definition,
                then: *then,
            }));
            v
        },
    },
    Migration {
        version: 2,
        name: "run leases (owner, expiry, fencing epoch) replace the owner's process id",
        changes: || {
            vec![
                Change::AddColumn { table: "runs", column: "lease_owner", definition: "TEXT", then: None },
                Change::AddColumn { table: "runs", column: "lease_expires_at", definition: "TEXT", then: None },
                Change::AddColumn {
                    table: "runs",
                    column: "lease_epoch",
                    definition: "INTEGER NOT NULL DEFAULT 0",
                    then: None,
                },
            ]
        },
    },
    Migration {
        version: 3,
        name: "the plan fingerprint a run was approved for",
        // Older runs have none; resume and rollback refuse them (`Store::plan_of_run`).
        changes: || vec![Change::AddColumn { table: "runs", column: "fingerprint", definition: "TEXT", then: None }],
    },
    Migration {
        version: 4,
        name: "API tokens (name, role, SHA-256 of the token) and who asked for a plan",
        changes: || {
            vec![
                Change::Sql(
                    "CREATE TABLE IF NOT EXISTS api_tokens (name TEXT PRIMARY KEY, role TEXT NOT NULL, sha256 TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)",
                ),
                Change::AddColumn { table: "plans", column: "requested_by", definition: "TEXT", then: None },
            ]
        },
    },
    Migration {
        version: 5,
        name: "workbook and datasource backups stored in chunks (a file of any size, streamed)",
        changes: || {
            vec![Change::Sql(
                "CREATE TABLE IF NOT EXISTS backup_chunks (run_id TEXT NOT NULL, item_id TEXT NOT NULL, n INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (run_id, item_id, n))",
            )]
        },
    },
    Migration {
        version: 6,
        name: "templates (named, versioned), the template a plan was made from, and schedules the worker runs (template, parameters, time zone, site, next and last run, claim)",
        changes: || {
            let column = |table, column, definition| Change::AddColumn { table, column, definition, then: None };
            vec![
                Change::Sql(
                    "CREATE TABLE IF NOT EXISTS templates (name TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT, PRIMARY KEY (name, version))",
                ),
                column("plans", "template", "TEXT"),
                column("schedules", "template", "TEXT"),
                column("schedules", "params", "TEXT NOT NULL DEFAULT '{}'"),
                column("schedules", "tz", "TEXT"),
                column("schedules", "site", "TEXT"),
                column("schedules", "next_run_at", "TEXT"),
                column("schedules", "last_outcome", "TEXT"),
                column("schedules", "last_detail", "TEXT"),
                column("schedules", "last_plan_id", "TEXT"),
                column("schedules", "last_run_id", "TEXT"),
                column("schedules", "pending_plan_id", "TEXT"),
                column("schedules", "lease_owner", "TEXT"),
                column("schedules", "lease_expires_at", "TEXT"),
            ]
        },
    },
    Migration {
        version: 8,
        name: "outbox delivery attempts and the next automatic retry (backoff), events received from Tableau webhooks",
        changes: || {
            vec![
                Change::AddColumn {
                    table: "outbox",
                    column: "attempts",
                    definition: "INTEGER NOT NULL DEFAULT 0",
                    then: None,
                },
                Change::AddColumn { table: "outbox", column: "next_attempt_at", definition: "TEXT", then: None },
                Change::AddColumn { table: "outbox", column: "event", definition: "TEXT", then: None },
            ]
        },
    },
    Migration {
        version: 9,
        name: "work items: a shared run's items, each claimed by one worker under a lease with a fencing epoch",
        changes: || {
            vec![
                Change::Sql(
                    "CREATE TABLE IF NOT EXISTS work_items (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_ord INTEGER NOT NULL, step_id TEXT NOT NULL, item_id TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', owner TEXT, expires_at TEXT, epoch INTEGER NOT NULL DEFAULT 0, claims INTEGER NOT NULL DEFAULT 0, outcome TEXT, UNIQUE (run_id, step_id, item_id))",
                ),
                Change::Sql("CREATE INDEX IF NOT EXISTS work_items_run ON work_items (run_id, status, step_ord, id)"),
            ]
        },
    },
    Migration {
        version: 10,
        name: "site limits shared by workers: a token bucket and concurrency slots per site, and the 429 pause",
        changes: || {
            vec![
                Change::Sql(
                    "CREATE TABLE IF NOT EXISTS site_limits (site TEXT PRIMARY KEY, per_second INTEGER NOT NULL, burst INTEGER NOT NULL, tokens_milli INTEGER NOT NULL, stamp_ms INTEGER NOT NULL, paused_until_ms INTEGER NOT NULL DEFAULT 0, max_in_flight INTEGER NOT NULL)",
                ),
                Change::Sql(
                    "CREATE TABLE IF NOT EXISTS site_slots (site TEXT NOT NULL, slot INTEGER NOT NULL, owner TEXT, expires_ms INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (site, slot))",
                ),
            ]
        },
    },
    Migration {
        version: 11,
        name: "the site cache: the last scoped read's workbook lists per site and scope (issue #15)",
        changes: || {
            vec![Change::Sql(
                "CREATE TABLE IF NOT EXISTS site_cache (key TEXT PRIMARY KEY, fetched_at TEXT NOT NULL, written_at TEXT NOT NULL, body BLOB NOT NULL)",
            )]
        },
    },
    Migration {
        version: 13,
        name: "license notices: users told their license goes after a grace period, and how each ended",
        changes: || {
            vec![Change::Sql(
                "CREATE TABLE IF NOT EXISTS license_notices (site_id TEXT NOT NULL, user_id TEXT NOT NULL, user_name TEXT NOT NULL, site_role TEXT NOT NULL, to_role TEXT NOT NULL, notified_at TEXT NOT NULL, act_after TEXT NOT NULL, run_id TEXT NOT NULL, plan_id TEXT NOT NULL, resolved_at TEXT, resolution TEXT, PRIMARY KEY (site_id, user_id, run_id))",
            )]
        },
    },
    Migration {
        version: 14,
        name: "staged purges under a lease: the worker purging a staged item, until when, and its fencing epoch",
        changes: || {
            vec![
                Change::AddColumn { table: "staged", column: "owner", definition: "TEXT", then: None },
                Change::AddColumn { table: "staged", column: "expires_at", definition: "TEXT", then: None },
                Change::AddColumn {
                    table: "staged",
                    column: "epoch",
                    definition: "INTEGER NOT NULL DEFAULT 0",
                    then: None,
                },
            ]
        },
    },
    Migration {
        version: 16,
        name: "schedule claims fenced: a fencing epoch raised by every claim of a schedule",
        changes: || {
            vec![Change::AddColumn {
                table: "schedules",
                column: "lease_epoch",
                definition: "INTEGER NOT NULL DEFAULT 0",
                then: None,
            }]
        },
    },
    Migration {
        version: 17,
        name: "work items of a kind: 'apply' (a shared run's items) or 'rollback' (a shared rollback's compensations), one row per run, kind, step and item",
        changes: || {
            // The unique key gains the kind (a rollback item names the same step and item as
            // the apply item it undoes): the table is rebuilt, rows copied in id order.
            vec![
                Change::Sql(
                    "CREATE TABLE work_items_v17 (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'apply', step_ord INTEGER NOT NULL, step_id TEXT NOT NULL, item_id TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', owner TEXT, expires_at TEXT, epoch INTEGER NOT NULL DEFAULT 0, claims INTEGER NOT NULL DEFAULT 0, outcome TEXT, UNIQUE (run_id, kind, step_id, item_id))",
                ),
                Change::Sql(
                    "INSERT INTO work_items_v17 (run_id, kind, step_ord, step_id, item_id, status, owner, expires_at, epoch, claims, outcome) SELECT run_id, 'apply', step_ord, step_id, item_id, status, owner, expires_at, epoch, claims, outcome FROM work_items ORDER BY id",
                ),
                Change::Sql("DROP TABLE work_items"),
                Change::Sql("ALTER TABLE work_items_v17 RENAME TO work_items"),
                Change::Sql(
                    "CREATE INDEX IF NOT EXISTS work_items_run_kind ON work_items (run_id, kind, status, step_ord, id)",
                ),
            ]
        },
    },
    Migration {
        version: 18,
        name: "indexes for a shared run's per-item statements: a claim by (run, step, item), a failed item of a queue, a run's journal by item",
        changes: || {
            // Without them each claim check, renewal, finish and fenced append scanned every
            // row of the run (the unique key leads with the kind, which those statements do
            // not name), and each claim read the run's whole journal: quadratic in the run's
            // size (a 10 000-item shared apply at 44 % of its latency bound, 81 % at 3 000).
            vec![
                Change::Sql("CREATE INDEX IF NOT EXISTS work_items_item ON work_items (run_id, step_id, item_id)"),
                Change::Sql(
                    "CREATE INDEX IF NOT EXISTS work_items_failed ON work_items (run_id, kind) WHERE outcome = 'failed'",
                ),
                Change::Sql("CREATE INDEX IF NOT EXISTS journal_run_item ON journal (run_id, item_id)"),
            ]
        },
    },
];

/// The kind of a shared run's work items (`work_items.kind`).
pub const WORK_APPLY: &str = "apply";
/// The kind of a shared rollback's work items: one compensation each.
pub const WORK_ROLLBACK: &str = "rollback";

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 18;

/// The versions of every migration this build knows, in order (numbers are taken by
/// branches of the project, so a build may lack one between two it has).
pub fn migration_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

/// The size of one stored piece of a backup ([`Store::put_backup_file`]): what a backup
/// costs in memory while it is written or checked, whatever the file's size.
pub const BACKUP_CHUNK_BYTES: usize = 4 << 20;

/// A stored backup, read piece by piece when it is restored ([`Store::backup_pieces`]).
#[derive(Debug)]
pub struct StoredBackup {
    pub filename: String,
    /// Its size in bytes.
    pub size: u64,
    sha256: String,
    /// Pieces in `backup_chunks` (0: the file is inline in its `backups` row, an older form).
    pieces: i64,
    store: Store,
    run_id: String,
    item_id: String,
}

impl StoredBackup {
    /// The file as an upload ([`tabflow_client::Upload::Pieces`]): each piece read from the
    /// store when the upload asks for it, hashed as it goes; after the last piece a checksum
    /// that does not match the recorded one is an error, so a damaged backup is never
    /// committed on the server.
    pub fn upload(self) -> tabflow_client::Upload<'static> {
        use futures::StreamExt;
        use sha2::Digest;
        let size = self.size;
        let state = (self, 0i64, Some(sha2::Sha256::new()));
        let pieces = futures::stream::unfold(state, |(b, n, hasher)| async move {
            let mut hasher = hasher?;
            let read = if b.pieces == 0 && n == 0 {
                sqlx::query("SELECT bytes FROM backups WHERE run_id = $1 AND item_id = $2")
                    .bind(&b.run_id)
                    .bind(&b.item_id)
                    .fetch_optional(&b.store.pool)
                    .await
            } else if n < b.pieces {
                sqlx::query("SELECT bytes FROM backup_chunks WHERE run_id = $1 AND item_id = $2 AND n = $3")
                    .bind(&b.run_id)
                    .bind(&b.item_id)
                    .bind(n)
                    .fetch_optional(&b.store.pool)
                    .await
            } else {
                // The end: the whole file was read; does it match what was recorded?
                let got: String = hasher.finalize().iter().map(|x| format!("{x:02x}")).collect();
                if got == b.sha256 {
                    return None;
                }
                let e = format!("the backup of {} from run {} does not match its checksum", b.item_id, b.run_id);
                return Some((Err(e), (b, n, None)));
            };
            let bytes: Vec<u8> = match read {
                Ok(Some(row)) => row.get(0),
                Ok(None) => {
                    let e = format!("piece {n} of the backup of {} from run {} is missing", b.item_id, b.run_id);
                    return Some((Err(e), (b, n, None)));
                }
                Err(e) => {
                    let e = format!("the backup of {} cannot be read from the store: {e}", b.item_id);
                    return Some((Err(e), (b, n, None)));
                }
            };
            hasher.update(&bytes);
            // (An inline backup is one piece: after it comes the end.)
            Some((Ok(bytes), (b, n + 1, Some(hasher))))
        });
        tabflow_client::Upload::Pieces { size, pieces: pieces.boxed() }
    }
}

/// The schema in PostgreSQL's types (the SQLite text above is the reference).
fn postgres_schema(stmt: &str) -> String {
    stmt.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
        .replace("INTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
}

/// Whether `table` has `column` (asked of the catalogue: a failed probe would abort a
/// PostgreSQL transaction).
async fn has_column(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    table: &str,
    column: &str,
) -> Result<bool, sqlx::Error> {
    let q = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
        }
    };
    let n: i64 = sqlx::query(q).bind(table).bind(column).fetch_one(&mut *conn).await?.get(0);
    Ok(n > 0)
}

/// A PostgreSQL URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    tabflow_site::text::redact_url(url)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Damaged(format!("bad timestamp '{s}': {e}")))
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`.
    pub async fn open(path: &Path) -> StoreResult<Store> {
        let location = path.display().to_string();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            crate::private::create_dir_all(dir)
                .map_err(|e| StoreError::Open { location: location.clone(), detail: e.to_string() })?;
        }
        // The store holds the audit log and the site's names: owner-only (SQLite gives its
        // -wal and -shm files the database file's mode). An existing file is narrowed too.
        if !path.exists() {
            crate::private::create(path)
                .map_err(|e| StoreError::Open { location: location.clone(), detail: e.to_string() })?;
        }
        crate::private::restrict(path)
            .map_err(|e| StoreError::Open { location: location.clone(), detail: e.to_string() })?;
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{location}?mode=rwc");
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL + FULL: a committed journal entry survives a power cut; the busy
                    // timeout lets several tabflow processes share the file.
                    for pragma in
                        ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 30000"]
                    {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| StoreError::Open { location: location.clone(), detail: e.to_string() })?;
        Store::init(pool, Backend::Sqlite, location).await
    }

    /// Opens a store by location: `postgres://…` (or `postgresql://…`) for PostgreSQL,
    /// anything else (optionally `sqlite://`) as the path of a SQLite file.
    pub async fn open_location(location: &str) -> StoreResult<Store> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Store::open_postgres(location).await;
        }
        let path = location.strip_prefix("sqlite://").unwrap_or(location);
        Store::open(Path::new(path)).await
    }

    /// Opens (creating the tables if needed) a PostgreSQL store.
    pub async fn open_postgres(url: &str) -> StoreResult<Store> {
        let location = redact_url(url);
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            // A process stopped (SIGSTOP, a VM pause) inside one of its short transactions
            // would hold its row locks — on claimed work items, say — for as long as it is
            // stopped, and every other worker would wait for it. PostgreSQL ends such a
            // session after 10 s idle in its transaction: its transaction is rolled back
            // (nothing of it was written) and the locks are free for the others.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET idle_in_transaction_session_timeout = '10s'").execute(conn).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| StoreError::Open { location: location.clone(), detail: e.to_string() })?;
        Store::init(pool, Backend::Postgres, location).await
    }

    async fn init(pool: AnyPool, backend: Backend, location: String) -> StoreResult<Store> {
        let open_err = |detail: String| StoreError::Open { location: location.clone(), detail };
        loop {
            let mut conn = pool.acquire().await.map_err(|e| open_err(e.to_string()))?;
            // One migrator at a time across processes: SQLite's write lock, PostgreSQL's
            // transaction-scoped advisory lock. Each migration is one transaction.
            let begin = match backend {
                Backend::Sqlite => sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map(|_| ()),
                Backend::Postgres => match sqlx::query("BEGIN").execute(&mut *conn).await {
                    Ok(_) => {
                        sqlx::query("SELECT pg_advisory_xact_lock(7362836101)").fetch_all(&mut *conn).await.map(|_| ())
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = begin {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(open_err(format!("starting the schema check: {e}")));
            }
            let step = Store::migrate_one(&mut conn, backend, &location).await;
            match step {
                Ok(more) => {
                    sqlx::query("COMMIT").execute(&mut *conn).await.map_err(|e| open_err(e.to_string()))?;
                    if !more {
                        break;
                    }
                }
                Err(e) => {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    return Err(e);
                }
            }
        }
        let plan_key = std::sync::Arc::new(Store::load_plan_key(&pool, &location).await?);
        Ok(Store {
            pool,
            backend,
            location,
            audit_lock: Default::default(),
            plan_key,
            audit_anchor: None,
            audit_secrets: AuditSecrets::default(),
        })
    }

    /// The store's plan key: made (32 random bytes) by the first process that opens the store,
    /// read by every later one. Two processes opening a new store at once agree on the first
    /// one written.
    async fn load_plan_key(pool: &AnyPool, location: &str) -> StoreResult<PlanKey> {
        let open = |detail: String| StoreError::Open { location: location.to_string(), detail };
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| open(format!("no randomness for the plan key: {e}")))?;
        sqlx::query("INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(PLAN_KEY)
            .bind(crate::plan::hex(&secret))
            .execute(pool)
            .await
            .map_err(|e| open(format!("storing the plan key: {e}")))?;
        let row = sqlx::query("SELECT value FROM kv WHERE key = $1")
            .bind(PLAN_KEY)
            .fetch_one(pool)
            .await
            .map_err(|e| open(format!("reading the plan key: {e}")))?;
        let stored: String = row.get(0);
        let bytes: Vec<u8> = (0..stored.len())
            .step_by(2)
            .filter_map(|i| stored.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Damaged(format!("the plan key in {location} is not 32 bytes of hex")))?;
        Ok(PlanKey::new(secret))
    }

    /// The key this store seals and checks plans with.
    pub fn plan_key(&self) -> &PlanKey {
        &self.plan_key
    }

    /// Inside the caller's transaction: applies the next pending migration, if any. Answers
    /// whether one was applied (call again), or refuses a store newer than this build.
    async fn migrate_one(conn: &mut sqlx::AnyConnection, backend: Backend, location: &str) -> StoreResult<bool> {
        let open_err = |detail: String| StoreError::Open { location: location.to_string(), detail };
        let sql = |s: &str| match backend {
            Backend::Sqlite => s.to_string(),
            Backend::Postgres => postgres_schema(s),
        };
        sqlx::query(sqlx::AssertSqlSafe(sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, name TEXT NOT NULL)",
        )))
        .execute(&mut *conn)
        .await
        .map_err(|e| open_err(format!("creating schema_migrations: {e}")))?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| open_err(format!("reading schema_migrations: {e}")))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let current = applied.iter().copied().max().unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(open_err(format!(
                "its schema is at version {current}, newer than this tabflow build knows (up to {SCHEMA_VERSION}); a newer tabflow wrote it — upgrade tabflow to use this store, or point TABFLOW_STORE at another one"
            )));
        }
        // The lowest one not applied yet: a migration numbered below one already applied (its
        // branch merged later) is applied too.
        let Some(m) = MIGRATIONS.iter().find(|m| !applied.contains(&m.version)) else { return Ok(false) };
        for change in (m.changes)() {
            match change {
                Change::Sql(s) => {
                    sqlx::query(sqlx::AssertSqlSafe(sql(s)))
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| open_err(format!("migration {} ({}): {e}", m.version, m.name)))?;
                }
                Change::AddColumn { table, column, definition, then } => {
                    if has_column(conn, backend, table, column).await.map_err(|e| open_err(e.to_string()))? {
                        continue;
                    }
                    let alter = format!("ALTER TABLE {table} ADD COLUMN {column} {}", sql(definition));
                    sqlx::query(sqlx::AssertSqlSafe(alter))
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| open_err(format!("migration {}: adding {table}.{column}: {e}", m.version)))?;
                    if let Some(s) = then {
                        sqlx::query(sqlx::AssertSqlSafe(s)).execute(&mut *conn).await.map_err(|e| {
                            open_err(format!("migration {}: updating {table} after adding {column}: {e}", m.version))
                        })?;
                    }
                }
            }
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at, name) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(ts(Utc::now()))
            .bind(m.name)
            .execute(&mut *conn)
            .await
            .map_err(|e| open_err(format!("recording migration {}: {e}", m.version)))?;
        tracing::info!(store = location, version = m.version, "applied store migration: {}", m.name);
        Ok(true)
    }

    /// The applied migrations: (version, applied_at), oldest first.
    pub async fn schema_versions(&self) -> StoreResult<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT version, applied_at FROM schema_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Anchors the audit chain's head in `path` (a file outside the store, appended on each
    /// audit write and checked by [`crate::audit::verify`]).
    pub fn with_audit_anchor(mut self, path: impl Into<std::path::PathBuf>) -> Store {
        self.audit_anchor = Some(std::sync::Arc::new(path.into()));
        self
    }

    /// Keeps `secrets` out of the audit log: every text of a record (actor, action, ids,
    /// outcome, approver, and every string inside its before/after images) has them replaced
    /// by `[redacted]` when it is appended, before it is hashed, so nothing secret is ever
    /// stored. Secrets shorter than 4 characters are ignored (they would hit ordinary words).
    pub fn with_audit_redaction(mut self, secrets: impl IntoIterator<Item = String>) -> Store {
        let mut list: Vec<String> = secrets.into_iter().filter(|s| s.chars().count() >= 4).collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
        list.dedup();
        self.audit_secrets = AuditSecrets(std::sync::Arc::new(list));
        self
    }

    pub(crate) fn audit_secrets(&self) -> &AuditSecrets {
        &self.audit_secrets
    }

    /// Where the audit chain's head is anchored, if anywhere.
    pub fn audit_anchor(&self) -> Option<&Path> {
        self.audit_anchor.as_deref().map(|p| p.as_path())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ------------------------------------------------------------------ plans

    /// Stores a plan. Plans are insert-only: saving the same plan again (same id, same
    /// fingerprint) does nothing; another content under a stored id is refused.
    pub async fn save_plan(&self, plan: &Plan) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO plans (id, fingerprint, request, created_at, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&plan.id)
        .bind(&plan.fingerprint)
        .bind(&plan.request)
        .bind(ts(plan.created_at))
        .bind(plan.to_json())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let row =
            sqlx::query("SELECT fingerprint FROM plans WHERE id = $1").bind(&plan.id).fetch_one(&self.pool).await?;
        let stored: String = row.get(0);
        if stored == plan.fingerprint {
            Ok(())
        } else {
            Err(StoreError::Refused(format!(
                "the store already holds a plan {} with other content (fingerprint {stored}, not {}); a stored plan is never replaced — make a new plan with `tabflow plan` (it gets a new id)",
                plan.id, plan.fingerprint
            )))
        }
    }

    pub async fn plan(&self, id: &str) -> StoreResult<Plan> {
        let row = sqlx::query("SELECT body FROM plans WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("no plan '{id}' in the store")))?;
        let body: String = row.get(0);
        Plan::from_json(&body, &self.plan_key).map_err(|e| StoreError::Damaged(format!("plan {id}: {e}")))
    }

    /// The stored plan of a run, refused unless it is the one the run was approved for (same
    /// fingerprint).
    pub async fn plan_of_run(&self, run: &RunRow) -> StoreResult<Plan> {
        let plan = self.plan(&run.plan_id).await?;
        match &run.fingerprint {
            Some(f) if *f == plan.fingerprint => Ok(plan),
            Some(f) => Err(StoreError::Refused(format!(
                "run {} was approved for plan {} with fingerprint {f}, but the store now holds that plan with fingerprint {}; it will not run a plan nobody approved — roll the run back or make a new plan",
                run.id, run.plan_id, plan.fingerprint
            ))),
            None => Err(StoreError::Refused(format!(
                "run {} records no plan fingerprint (it was started by an older tabflow), so the plan it was approved for cannot be checked; finish it with the tabflow that started it, or make a new plan",
                run.id
            ))),
        }
    }

    // ------------------------------------------------------------------ approvals

    pub async fn insert_approval(&self, a: &ApprovalRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO approvals (id, plan_id, fingerprint, decision, items, approver, channel, created_at, expires_at, used_by_run) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)")
            .bind(&a.id)
            .bind(&a.plan_id)
            .bind(&a.fingerprint)
            .bind(&a.decision)
            .bind(a.items.as_ref().map(|i| serde_json::to_string(i).unwrap_or_default()))
            .bind(&a.approver)
            .bind(&a.channel)
            .bind(ts(a.created_at))
            .bind(ts(a.expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn approvals_for(&self, plan_id: &str) -> StoreResult<Vec<ApprovalRow>> {
        let rows = sqlx::query("SELECT id, plan_id, fingerprint, decision, items, approver, channel, created_at, expires_at, used_by_run FROM approvals WHERE plan_id = $1 ORDER BY created_at")
            .bind(plan_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let items: Option<String> = r.get(4);
                Ok(ApprovalRow {
                    id: r.get(0),
                    plan_id: r.get(1),
                    fingerprint: r.get(2),
                    decision: r.get(3),
                    items: match items {
                        Some(t) => Some(serde_json::from_str(&t).map_err(|e| StoreError::Damaged(e.to_string()))?),
                        None => None,
                    },
                    approver: r.get(5),
                    channel: r.get(6),
                    created_at: parse_ts(&r.get::<String, _>(7))?,
                    expires_at: parse_ts(&r.get::<String, _>(8))?,
                    used_by_run: r.get(9),
                })
            })
            .collect()
    }

    /// Marks approvals used by a run, atomically: fails if any was used meanwhile.
    pub async fn consume_approvals(&self, ids: &[String], run_id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            let done = sqlx::query("UPDATE approvals SET used_by_run = $1 WHERE id = $2 AND used_by_run IS NULL")
                .bind(run_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Refused(format!("approval {id} was already used by another run")));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------------ runs

    pub async fn insert_run(&self, r: &RunRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO runs (id, plan_id, status, request, created_at, finished_at, actor, lease_owner, lease_expires_at, lease_epoch, approval_id, summary, fingerprint) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9, $10, $11, $12)")
            .bind(&r.id)
            .bind(&r.plan_id)
            .bind(r.status.as_str())
            .bind(&r.request)
            .bind(ts(r.created_at))
            .bind(&r.actor)
            .bind(&r.lease_owner)
            .bind(r.lease_expires_at.map(ts))
            .bind(r.lease_epoch)
            .bind(&r.approval_id)
            .bind(r.summary.to_string())
            .bind(&r.fingerprint)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_run_status(&self, id: &str, status: RunStatus, summary: Option<&Value>) -> StoreResult<()> {
        self.set_run_status_fenced(None, id, status, summary).await
    }

    /// [`Store::set_run_status`] under the run's lease (see [`Store::append_fenced`]).
    pub async fn set_run_status_fenced(
        &self,
        fence: Option<&Fence>,
        id: &str,
        status: RunStatus,
        summary: Option<&Value>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(f) = fence {
            Store::check_fence(&mut tx, f).await?;
        }
        let finished = if status.is_unfinished() { None } else { Some(ts(Utc::now())) };
        match summary {
            Some(s) => {
                sqlx::query("UPDATE runs SET status = $1, finished_at = $2, summary = $3 WHERE id = $4")
                    .bind(status.as_str())
                    .bind(finished)
                    .bind(s.to_string())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
            }
            None => {
                sqlx::query("UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3")
                    .bind(status.as_str())
                    .bind(finished)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------------ site cache (issue #15)

    /// The cached read under `key`: when it was read from the site, and its body.
    pub async fn site_cache(&self, key: &str) -> StoreResult<Option<(DateTime<Utc>, Vec<u8>)>> {
        let row = sqlx::query("SELECT fetched_at, body FROM site_cache WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((parse_ts(&r.get::<String, _>(0))?, r.get(1)))),
            None => Ok(None),
        }
    }

    /// Keeps `body` as the cached read under `key` (replacing the one before).
    pub async fn put_site_cache(&self, key: &str, fetched_at: DateTime<Utc>, body: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO site_cache (key, fetched_at, written_at, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET fetched_at = excluded.fetched_at, written_at = excluded.written_at, body = excluded.body",
        )
        .bind(key)
        .bind(ts(fetched_at))
        .bind(ts(Utc::now()))
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ run leases (see crate::executor::lease)

    /// Takes the run's lease for `owner` until `expires` if it is free, lapsed (expiry before
    /// `now`) or already `owner`'s — or, with `steal_from`, if it is still exactly that
    /// (owner, epoch). One conditional UPDATE: of two claimants, one wins. Answers the new
    /// fencing epoch, or None when another owner holds the lease.
    pub async fn claim_lease(
        &self,
        run_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
        steal_from: Option<(&str, i64)>,
    ) -> StoreResult<Option<Fence>> {
        let (victim, victim_epoch) = steal_from.unwrap_or(("", -1));
        let row = sqlx::query("UPDATE runs SET lease_owner = $1, lease_expires_at = $2, lease_epoch = lease_epoch + 1 WHERE id = $3 AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at < $4 OR lease_owner = $1 OR (lease_owner = $5 AND lease_epoch = $6)) RETURNING lease_epoch")
            .bind(owner)
            .bind(ts(expires))
            .bind(run_id)
            .bind(ts(now))
            .bind(victim)
            .bind(victim_epoch)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| Fence { run_id: run_id.into(), owner: owner.into(), epoch: r.get(0) }))
    }

    /// Extends a lease this fence still holds; false when it was lost.
    pub async fn renew_lease(&self, fence: &Fence, expires: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE runs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3 AND lease_epoch = $4",
        )
        .bind(ts(expires))
        .bind(&fence.run_id)
        .bind(&fence.owner)
        .bind(fence.epoch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease up (no-op when it was lost meanwhile); the epoch stays, so a late write
    /// of this holder is still refused.
    pub async fn release_lease(&self, fence: &Fence) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3")
            .bind(&fence.run_id)
            .bind(&fence.owner)
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Fails with [`StoreError::LeaseLost`] unless the fence still holds its run's lease. The
    /// no-op UPDATE also locks the run's row until the transaction ends, so a claim cannot
    /// slip in between this check and the write it guards.
    async fn check_fence(tx: &mut sqlx::Transaction<'_, sqlx::Any>, f: &Fence) -> StoreResult<()> {
        let held = sqlx::query(
            "UPDATE runs SET lease_epoch = lease_epoch WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3",
        )
        .bind(&f.run_id)
        .bind(&f.owner)
        .bind(f.epoch)
        .execute(&mut **tx)
        .await?;
        if held.rows_affected() == 1 {
            return Ok(());
        }
        let now = sqlx::query("SELECT lease_owner, lease_epoch FROM runs WHERE id = $1")
            .bind(&f.run_id)
            .fetch_optional(&mut **tx)
            .await?;
        let (holder, epoch): (Option<String>, i64) = match &now {
            Some(r) => (r.get(0), r.get(1)),
            None => (None, 0),
        };
        Err(StoreError::LeaseLost(format!(
            "lease lost: run {} is now held by {} at epoch {epoch} (this process held epoch {}); it stops without further writes — see `tabflow runs show {}`",
            f.run_id,
            holder.as_deref().unwrap_or("nobody"),
            f.epoch,
            f.run_id
        )))
    }

    fn run_row(r: &AnyRow) -> StoreResult<RunRow> {
        let status: String = r.get(2);
        let finished: Option<String> = r.get(5);
        let summary: String = r.get(9);
        Ok(RunRow {
            id: r.get(0),
            plan_id: r.get(1),
            status: RunStatus::parse(&status).ok_or_else(|| StoreError::Damaged(format!("run status '{status}'")))?,
            request: r.get(3),
            created_at: parse_ts(&r.get::<String, _>(4))?,
            finished_at: finished.as_deref().map(parse_ts).transpose()?,
            actor: r.get(6),
            lease_owner: r.get(10),
            lease_expires_at: r.get::<Option<String>, _>(11).as_deref().map(parse_ts).transpose()?,
            lease_epoch: r.get(12),
            approval_id: r.get(8),
            summary: serde_json::from_str(&summary).unwrap_or(Value::Null),
            fingerprint: r.get(13),
        })
    }

    pub async fn run(&self, id: &str) -> StoreResult<RunRow> {
        let row = sqlx::query("SELECT id, plan_id, status, request, created_at, finished_at, actor, owner_pid, approval_id, summary, lease_owner, lease_expires_at, lease_epoch, fingerprint FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no run '{id}' in the store {}", self.location)))?;
        Self::run_row(&row)
    }

    /// Newest first.
    pub async fn runs(&self, limit: i64) -> StoreResult<Vec<RunRow>> {
        let rows = sqlx::query("SELECT id, plan_id, status, request, created_at, finished_at, actor, owner_pid, approval_id, summary, lease_owner, lease_expires_at, lease_epoch, fingerprint FROM runs ORDER BY created_at DESC, id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::run_row).collect()
    }

    // ------------------------------------------------------------------ journal

    /// Appends entries in one transaction (one fsync), in order.
    pub async fn append(&self, entries: &[NewEntry]) -> StoreResult<()> {
        self.append_fenced(None, entries).await
    }

    /// [`Store::append`], refused with [`StoreError::LeaseLost`] (and nothing written) unless
    /// `fence` still holds the run's lease; the check and the entries are one transaction.
    pub async fn append_fenced(&self, fence: Option<&Fence>, entries: &[NewEntry]) -> StoreResult<()> {
        if entries.is_empty() && fence.is_none() {
            return Ok(());
        }
        let now = ts(Utc::now());
        let mut tx = self.pool.begin().await?;
        if let Some(f) = fence {
            Store::check_fence(&mut tx, f).await?;
        }
        for e in entries {
            sqlx::query("INSERT INTO journal (run_id, step_id, item_id, item_type, phase, image, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&e.run_id)
                .bind(&e.step_id)
                .bind(&e.item_id)
                .bind(&e.item_type)
                .bind(e.phase.as_str())
                .bind(e.image.to_string())
                .bind(&e.detail)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn journal(&self, run_id: &str) -> StoreResult<Vec<Entry>> {
        let rows = sqlx::query("SELECT seq, run_id, step_id, item_id, item_type, phase, image, detail, at FROM journal WHERE run_id = $1 ORDER BY seq")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Store::entry_row).collect()
    }

    fn entry_row(r: &AnyRow) -> StoreResult<Entry> {
        let phase: String = r.get(5);
        let image: String = r.get(6);
        Ok(Entry {
            seq: r.get(0),
            run_id: r.get(1),
            step_id: r.get(2),
            item_id: r.get(3),
            item_type: r.get(4),
            phase: Phase::parse(&phase).ok_or_else(|| StoreError::Damaged(format!("journal phase '{phase}'")))?,
            image: serde_json::from_str(&image).unwrap_or(Value::Null),
            detail: r.get(7),
            at: parse_ts(&r.get::<String, _>(8))?,
        })
    }

    // ------------------------------------------------------------------ backups and staged deletes

    pub async fn put_backup(&self, run_id: &str, item_id: &str, filename: &str, bytes: &[u8]) -> StoreResult<String> {
        let sha = crate::plan::sha256_hex(bytes);
        sqlx::query("INSERT INTO backups (run_id, item_id, filename, sha256, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, item_id) DO UPDATE SET filename = excluded.filename, sha256 = excluded.sha256, bytes = excluded.bytes, created_at = excluded.created_at")
            .bind(run_id)
            .bind(item_id)
            .bind(filename)
            .bind(&sha)
            .bind(bytes)
            .bind(ts(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(sha)
    }

    /// Stores a backup from a file, read from its start in [`BACKUP_CHUNK_BYTES`] pieces (one
    /// row each, in `backup_chunks`) in one transaction, hashed as it goes: memory stays at one
    /// piece whatever the file's size (a 2 GB workbook can be staged). Answers the SHA-256 and
    /// the size. Replaces an earlier backup of the same run and item.
    pub async fn put_backup_file(
        &self,
        run_id: &str,
        item_id: &str,
        filename: &str,
        file: &mut tokio::fs::File,
    ) -> StoreResult<(String, u64)> {
        use sha2::Digest;
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let io = |e: std::io::Error| StoreError::Damaged(format!("cannot read the backup file of {item_id}: {e}"));
        file.rewind().await.map_err(io)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM backup_chunks WHERE run_id = $1 AND item_id = $2")
            .bind(run_id)
            .bind(item_id)
            .execute(&mut *tx)
            .await?;
        let mut hasher = sha2::Sha256::new();
        let mut size: u64 = 0;
        let mut n: i64 = 0;
        let mut buf = vec![0u8; BACKUP_CHUNK_BYTES];
        loop {
            // Fill the piece (a read may return less than asked).
            let mut filled = 0;
            while filled < buf.len() {
                let got = file.read(buf.get_mut(filled..).unwrap_or_default()).await.map_err(io)?;
                if got == 0 {
                    break;
                }
                filled += got;
            }
            if filled == 0 {
                break;
            }
            let piece = buf.get(..filled).unwrap_or_default();
            hasher.update(piece);
            size += filled as u64;
            sqlx::query("INSERT INTO backup_chunks (run_id, item_id, n, bytes) VALUES ($1, $2, $3, $4)")
                .bind(run_id)
                .bind(item_id)
                .bind(n)
                .bind(piece)
                .execute(&mut *tx)
                .await?;
            n += 1;
            if filled < buf.len() {
                break;
            }
        }
        let sha: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let empty: &[u8] = &[];
        sqlx::query("INSERT INTO backups (run_id, item_id, filename, sha256, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, item_id) DO UPDATE SET filename = excluded.filename, sha256 = excluded.sha256, bytes = excluded.bytes, created_at = excluded.created_at")
            .bind(run_id)
            .bind(item_id)
            .bind(filename)
            .bind(&sha)
            .bind(empty)
            .bind(ts(Utc::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((sha, size))
    }

    /// The checksum recorded for a run's backup of an item, without reading the file.
    pub async fn backup_sha(&self, run_id: &str, item_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT sha256 FROM backups WHERE run_id = $1 AND item_id = $2")
            .bind(run_id)
            .bind(item_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Re-hashes a run's backup of an item piece by piece (bounded memory): `Some(true)` when
    /// it matches its recorded checksum, `None` when there is no backup.
    pub async fn backup_intact(&self, run_id: &str, item_id: &str) -> StoreResult<Option<bool>> {
        use sha2::Digest;
        let Some(sha) = self.backup_sha(run_id, item_id).await? else { return Ok(None) };
        let mut hasher = sha2::Sha256::new();
        let pieces: i64 = sqlx::query("SELECT COUNT(*) FROM backup_chunks WHERE run_id = $1 AND item_id = $2")
            .bind(run_id)
            .bind(item_id)
            .fetch_one(&self.pool)
            .await?
            .get(0);
        if pieces == 0 {
            let row = sqlx::query("SELECT bytes FROM backups WHERE run_id = $1 AND item_id = $2")
                .bind(run_id)
                .bind(item_id)
                .fetch_one(&self.pool)
                .await?;
            hasher.update(row.get::<Vec<u8>, _>(0));
        }
        for n in 0..pieces {
            let row = sqlx::query("SELECT bytes FROM backup_chunks WHERE run_id = $1 AND item_id = $2 AND n = $3")
                .bind(run_id)
                .bind(item_id)
                .bind(n)
                .fetch_one(&self.pool)
                .await?;
            hasher.update(row.get::<Vec<u8>, _>(0));
        }
        let got: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(got == sha))
    }

    /// A backup's bytes: its pieces in order when it was stored in chunks, else the row's.
    async fn backup_bytes(&self, run_id: &str, item_id: &str, inline: Vec<u8>) -> StoreResult<Vec<u8>> {
        let rows = sqlx::query("SELECT bytes FROM backup_chunks WHERE run_id = $1 AND item_id = $2 ORDER BY n")
            .bind(run_id)
            .bind(item_id)
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            return Ok(inline);
        }
        let mut out = Vec::new();
        for r in rows {
            out.extend_from_slice(&r.get::<Vec<u8>, _>(0));
        }
        Ok(out)
    }

    /// The backup one run took of an item (a repoint's original file), verified against its
    /// checksum, read whole into memory (for small files and checks; restoring streams it
    /// piece by piece with [`Store::backup_pieces`]).
    pub async fn backup_of(&self, run_id: &str, item_id: &str) -> StoreResult<Option<(String, Vec<u8>)>> {
        let row = sqlx::query("SELECT filename, sha256, bytes FROM backups WHERE run_id = $1 AND item_id = $2")
            .bind(run_id)
            .bind(item_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let bytes: Vec<u8> = self.backup_bytes(run_id, item_id, r.get(2)).await?;
        let sha: String = r.get(1);
        if crate::plan::sha256_hex(&bytes) != sha {
            return Err(StoreError::Damaged(format!(
                "the backup of {item_id} from run {run_id} does not match its checksum"
            )));
        }
        Ok(Some((r.get(0), bytes)))
    }

    /// The backup one run took of an item, to be read piece by piece ([`StoredBackup::upload`]):
    /// restoring a file of any size costs memory of one piece. `None` when there is none.
    pub async fn backup_pieces(&self, run_id: &str, item_id: &str) -> StoreResult<Option<StoredBackup>> {
        let row = sqlx::query(
            "SELECT filename, sha256, CAST(LENGTH(bytes) AS BIGINT) FROM backups WHERE run_id = $1 AND item_id = $2",
        )
        .bind(run_id)
        .bind(item_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let inline: i64 = r.get(2);
        let chunks = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(LENGTH(bytes)), 0) AS BIGINT) FROM backup_chunks WHERE run_id = $1 AND item_id = $2",
        )
        .bind(run_id)
        .bind(item_id)
        .fetch_one(&self.pool)
        .await?;
        let pieces: i64 = chunks.get(0);
        let size: i64 = if pieces == 0 { inline } else { chunks.get(1) };
        Ok(Some(StoredBackup {
            filename: r.get(0),
            size: u64::try_from(size).unwrap_or(0),
            sha256: r.get(1),
            pieces,
            store: self.clone(),
            run_id: run_id.to_string(),
            item_id: item_id.to_string(),
        }))
    }

    /// The newest backup of an item: (filename, bytes), verified against its checksum.
    pub async fn backup(&self, item_id: &str) -> StoreResult<Option<(String, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT filename, sha256, bytes, run_id FROM backups WHERE item_id = $1 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(item_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let run_id: String = r.get(3);
        let bytes: Vec<u8> = self.backup_bytes(&run_id, item_id, r.get(2)).await?;
        let sha: String = r.get(1);
        if crate::plan::sha256_hex(&bytes) != sha {
            return Err(StoreError::Damaged(format!("the backup of {item_id} does not match its checksum")));
        }
        Ok(Some((r.get(0), bytes)))
    }

    pub async fn insert_staged(&self, s: &StagedRow) -> StoreResult<()> {
        sqlx::query("INSERT INTO staged (item_type, item_id, name, run_id, quarantined_at, purge_after, backup_sha256, purged_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) ON CONFLICT (item_id, run_id) DO UPDATE SET item_type = excluded.item_type, name = excluded.name, quarantined_at = excluded.quarantined_at, purge_after = excluded.purge_after, backup_sha256 = excluded.backup_sha256, purged_at = NULL")
            .bind(&s.item_type)
            .bind(&s.item_id)
            .bind(&s.name)
            .bind(&s.run_id)
            .bind(ts(s.quarantined_at))
            .bind(ts(s.purge_after))
            .bind(&s.backup_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One run's staged record of an item.
    pub async fn staged_of(&self, item_id: &str, run_id: &str) -> StoreResult<Option<StagedRow>> {
        let row = sqlx::query("SELECT COUNT(*) FROM staged WHERE item_id = $1 AND run_id = $2")
            .bind(item_id)
            .bind(run_id)
            .fetch_one(&self.pool)
            .await?;
        if row.get::<i64, _>(0) == 0 {
            return Ok(None);
        }
        Ok(self.staged().await?.into_iter().find(|s| s.item_id == item_id && s.run_id == run_id))
    }

    pub async fn remove_staged(&self, item_id: &str, run_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM staged WHERE item_id = $1 AND run_id = $2 AND purged_at IS NULL")
            .bind(item_id)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn staged(&self) -> StoreResult<Vec<StagedRow>> {
        let rows = sqlx::query("SELECT item_type, item_id, name, run_id, quarantined_at, purge_after, backup_sha256, purged_at FROM staged ORDER BY purge_after")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let purged: Option<String> = r.get(7);
                Ok(StagedRow {
                    item_type: r.get(0),
                    item_id: r.get(1),
                    name: r.get(2),
                    run_id: r.get(3),
                    quarantined_at: parse_ts(&r.get::<String, _>(4))?,
                    purge_after: parse_ts(&r.get::<String, _>(5))?,
                    backup_sha256: r.get(6),
                    purged_at: purged.as_deref().map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    /// Claims a staged item for purging by `owner` until `expires`, when it is not purged and
    /// nobody holds it (or the holder's claim lapsed before `now`): the row is locked with
    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL (a claimant never waits for another), and the
    /// claim raises the item's fencing epoch. Answers the epoch, or None when not claimed.
    pub async fn claim_staged(
        &self,
        item_id: &str,
        run_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE staged SET owner = $1, expires_at = $2, epoch = epoch + 1 WHERE item_id = $3 AND run_id = $4 AND item_id IN (SELECT item_id FROM staged WHERE item_id = $3 AND run_id = $4 AND purged_at IS NULL AND (owner IS NULL OR expires_at IS NULL OR expires_at < $5){lock}) RETURNING epoch"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(ts(expires))
            .bind(item_id)
            .bind(run_id)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Extends a staged item's claim while `owner` holds it at `epoch`; false when lost.
    pub async fn renew_staged(
        &self,
        item_id: &str,
        run_id: &str,
        owner: &str,
        epoch: i64,
        expires: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE staged SET expires_at = $1 WHERE item_id = $2 AND run_id = $3 AND owner = $4 AND epoch = $5 AND purged_at IS NULL")
            .bind(ts(expires))
            .bind(item_id)
            .bind(run_id)
            .bind(owner)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Until when `owner` holds the staged item's claim at `epoch`, when it does and it has
    /// not lapsed at `now` (`None` otherwise).
    pub async fn staged_held_until(
        &self,
        item_id: &str,
        run_id: &str,
        owner: &str,
        epoch: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT expires_at FROM staged WHERE item_id = $1 AND run_id = $2 AND owner = $3 AND epoch = $4 AND purged_at IS NULL AND expires_at > $5")
            .bind(item_id)
            .bind(run_id)
            .bind(owner)
            .bind(epoch)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(parse_ts(&r.get::<String, _>(0))?)),
            None => Ok(None),
        }
    }

    /// Ends a staged item's claim without purging it (kept, or an error): another pass may
    /// claim it again. A no-op when the claim was lost meanwhile.
    pub async fn release_staged(&self, item_id: &str, run_id: &str, owner: &str, epoch: i64) -> StoreResult<()> {
        sqlx::query("UPDATE staged SET owner = NULL, expires_at = NULL WHERE item_id = $1 AND run_id = $2 AND owner = $3 AND epoch = $4")
            .bind(item_id)
            .bind(run_id)
            .bind(owner)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a claimed staged item purged (and its claim ended) while `owner` still holds it at
    /// `epoch`; false when the claim was lost (then the new holder records the purge).
    pub async fn mark_purged_fenced(&self, item_id: &str, run_id: &str, owner: &str, epoch: i64) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE staged SET purged_at = $1, owner = NULL, expires_at = NULL WHERE item_id = $2 AND run_id = $3 AND owner = $4 AND epoch = $5 AND purged_at IS NULL")
            .bind(ts(Utc::now()))
            .bind(item_id)
            .bind(run_id)
            .bind(owner)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn mark_purged(&self, item_id: &str, run_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE staged SET purged_at = $1 WHERE item_id = $2 AND run_id = $3")
            .bind(ts(Utc::now()))
            .bind(item_id)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ license notices

    /// Records the notices a run sent (a notice already recorded for the run is kept).
    pub async fn insert_license_notices(&self, rows: &[LicenseNoticeRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query("INSERT INTO license_notices (site_id, user_id, user_name, site_role, to_role, notified_at, act_after, run_id, plan_id, resolved_at, resolution) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL) ON CONFLICT (site_id, user_id, run_id) DO NOTHING")
                .bind(&r.site_id)
                .bind(&r.user_id)
                .bind(&r.user_name)
                .bind(&r.site_role)
                .bind(&r.to_role)
                .bind(ts(r.notified_at))
                .bind(ts(r.act_after))
                .bind(&r.run_id)
                .bind(&r.plan_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The open notices of a site (not yet acted on or dropped), the newest per user.
    pub async fn license_notices(&self, site_id: &str) -> StoreResult<Vec<LicenseNoticeRow>> {
        let rows = sqlx::query("SELECT site_id, user_id, user_name, site_role, to_role, notified_at, act_after, run_id, plan_id, resolved_at, resolution FROM license_notices WHERE site_id = $1 AND resolved_at IS NULL ORDER BY notified_at DESC, run_id")
            .bind(site_id)
            .fetch_all(&self.pool)
            .await?;
        let mut seen = std::collections::HashSet::new();
        let mut out = vec![];
        for r in &rows {
            let user: String = r.get(1);
            if !seen.insert(user.clone()) {
                continue;
            }
            let resolved: Option<String> = r.get(9);
            out.push(LicenseNoticeRow {
                site_id: r.get(0),
                user_id: user,
                user_name: r.get(2),
                site_role: r.get(3),
                to_role: r.get(4),
                notified_at: parse_ts(&r.get::<String, _>(5))?,
                act_after: parse_ts(&r.get::<String, _>(6))?,
                run_id: r.get(7),
                plan_id: r.get(8),
                resolved_at: resolved.as_deref().map(parse_ts).transpose()?,
                resolution: r.get(10),
            });
        }
        Ok(out)
    }

    /// Closes a site's open notices of these users (`acted`, `dropped: …`).
    pub async fn resolve_license_notices(
        &self,
        site_id: &str,
        user_ids: &[String],
        resolution: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut n = 0;
        let mut tx = self.pool.begin().await?;
        for u in user_ids {
            n += sqlx::query("UPDATE license_notices SET resolved_at = $1, resolution = $2 WHERE site_id = $3 AND user_id = $4 AND resolved_at IS NULL")
                .bind(ts(at))
                .bind(resolution)
                .bind(site_id)
                .bind(u)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    // ------------------------------------------------------------------ learning

    /// Adds learning records in one transaction.
    pub async fn record_learning(&self, rows: &[NewLearning]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = ts(Utc::now());
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query("INSERT INTO learning (kind, key, value, context, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&r.kind)
                .bind(&r.key)
                .bind(&r.value)
                .bind(r.context.to_string())
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every learning record, newest first.
    pub async fn learning(&self) -> StoreResult<Vec<LearningRow>> {
        let rows = sqlx::query("SELECT id, kind, key, value, context, at FROM learning ORDER BY id DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let context: String = r.get(4);
                Ok(LearningRow {
                    id: r.get(0),
                    kind: r.get(1),
                    key: r.get(2),
                    value: r.get(3),
                    context: serde_json::from_str(&context).unwrap_or(Value::Null),
                    at: parse_ts(&r.get::<String, _>(5))?,
                })
            })
            .collect()
    }

    /// Forgets everything learned; answers how many records were removed.
    pub async fn reset_learning(&self) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM learning").execute(&self.pool).await?.rows_affected())
    }

    // ------------------------------------------------------------------ schedules

    /// Stores a recurring review; answers false when it was already stored.
    pub async fn insert_schedule(&self, r: &ScheduleRow) -> StoreResult<bool> {
        let done = sqlx::query("INSERT INTO schedules (id, cadence, request, intent, plan_id, created_by, created_at, last_run_at, template, params, tz, site, next_run_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING")
            .bind(&r.id)
            .bind(&r.cadence)
            .bind(&r.request)
            .bind(r.intent.to_string())
            .bind(&r.plan_id)
            .bind(&r.created_by)
            .bind(ts(r.created_at))
            .bind(&r.template)
            .bind(if r.params.is_null() { "{}".to_string() } else { r.params.to_string() })
            .bind(&r.tz)
            .bind(&r.site)
            .bind(r.next_run_at.map(ts))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn schedules(&self) -> StoreResult<Vec<ScheduleRow>> {
        let rows = sqlx::query("SELECT id, cadence, request, intent, plan_id, created_by, created_at, last_run_at, template, params, tz, site, next_run_at, last_outcome, last_detail, last_plan_id, last_run_id, pending_plan_id FROM schedules ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let intent: String = r.get(3);
                let last: Option<String> = r.get(7);
                let params: String = r.get(9);
                let next: Option<String> = r.get(12);
                Ok(ScheduleRow {
                    id: r.get(0),
                    cadence: r.get(1),
                    request: r.get(2),
                    intent: serde_json::from_str(&intent).unwrap_or(Value::Null),
                    plan_id: r.get(4),
                    created_by: r.get(5),
                    created_at: parse_ts(&r.get::<String, _>(6))?,
                    last_run_at: last.as_deref().map(parse_ts).transpose()?,
                    template: r.get(8),
                    params: serde_json::from_str(&params).unwrap_or(Value::Null),
                    tz: r.get(10),
                    site: r.get(11),
                    next_run_at: next.as_deref().map(parse_ts).transpose()?,
                    last_outcome: r.get(13),
                    last_detail: r.get(14),
                    last_plan_id: r.get(15),
                    last_run_id: r.get(16),
                    pending_plan_id: r.get(17),
                })
            })
            .collect()
    }

    /// Removes a schedule; answers whether it existed.
    pub async fn remove_schedule(&self, id: &str) -> StoreResult<bool> {
        Ok(sqlx::query("DELETE FROM schedules WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Claims a schedule for one worker until `until`: one conditional UPDATE (a row lock on
    /// PostgreSQL, the write lock on SQLite), so of several workers at most one gets it. It
    /// is taken only when no live claim holds it and, with `due_by`, only while it is still due
    /// then (`next_run_at` unset or not after `due_by`): a worker that read the list before
    /// another fired and released it does not fire it again. Every claim raises the schedule's
    /// fencing epoch; answers it when this worker got the schedule. The holder's later writes
    /// (renew, finish, release, and [`Store::schedule_held`] before it acts) name the epoch, so
    /// a worker whose claim lapsed and was taken over is refused even if it claims again later.
    pub async fn claim_schedule(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        due_by: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<i64>> {
        let row = sqlx::query("UPDATE schedules SET lease_owner = $1, lease_expires_at = $2, lease_epoch = lease_epoch + 1 WHERE id = $3 AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at < $4) AND ($5 = '' OR next_run_at IS NULL OR next_run_at <= $5) RETURNING lease_epoch")
            .bind(owner)
            .bind(ts(until))
            .bind(id)
            .bind(ts(now))
            .bind(due_by.map(ts).unwrap_or_default())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Extends the claim `owner` holds at `epoch` until `until` (a long firing's heartbeat);
    /// false when the claim is no longer `owner`'s at that epoch.
    pub async fn renew_schedule(&self, id: &str, owner: &str, epoch: i64, until: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE schedules SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3 AND lease_epoch = $4",
        )
        .bind(ts(until))
        .bind(id)
        .bind(owner)
        .bind(epoch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `owner` still holds the schedule at `epoch` and its claim has not lapsed at
    /// `now`: asked right before a firing acts (starts a run, asks for an approval, writes a
    /// report), so a worker paused past its lease does nothing once another took over.
    pub async fn schedule_held(&self, id: &str, owner: &str, epoch: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM schedules WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND lease_expires_at >= $4")
            .bind(id)
            .bind(owner)
            .bind(epoch)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Who holds a schedule's claim, and until when.
    pub async fn schedule_claim(&self, id: &str) -> StoreResult<Option<(String, DateTime<Utc>)>> {
        let row = sqlx::query("SELECT lease_owner, lease_expires_at FROM schedules WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let (owner, until): (Option<String>, Option<String>) = (r.get(0), r.get(1));
        match (owner, until) {
            (Some(o), Some(u)) => Ok(Some((o, parse_ts(&u)?))),
            _ => Ok(None),
        }
    }

    /// Records what a claimed schedule did and releases the claim; refused (false) when the
    /// claim is no longer `owner`'s at `epoch`.
    pub async fn finish_schedule(&self, id: &str, owner: &str, epoch: i64, o: &ScheduleOutcome) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE schedules SET last_run_at = COALESCE($1, last_run_at), last_outcome = $2, last_detail = $3, last_plan_id = COALESCE($4, last_plan_id), last_run_id = $5, pending_plan_id = $6, next_run_at = COALESCE($7, next_run_at), lease_owner = NULL, lease_expires_at = NULL WHERE id = $8 AND lease_owner = $9 AND lease_epoch = $10")
            .bind(o.at.map(ts))
            .bind(&o.outcome)
            .bind(&o.detail)
            .bind(&o.plan_id)
            .bind(&o.run_id)
            .bind(&o.pending_plan_id)
            .bind(o.next_run_at.map(ts))
            .bind(id)
            .bind(owner)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases a claim without recording anything (nothing was done).
    pub async fn release_schedule(&self, id: &str, owner: &str, epoch: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE schedules SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3",
        )
        .bind(id)
        .bind(owner)
        .bind(epoch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ templates

    /// Stores a new version of a template (1 for a new name, else one more than the newest,
    /// deleted ones included, so a number always means one body); answers the version.
    pub async fn insert_template(
        &self,
        name: &str,
        body: &str,
        created_by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        // Two savers at once: the second insert meets the primary key and tries the next number.
        for _ in 0..5 {
            let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM templates WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
            let version = row.get::<i64, _>(0) + 1;
            let done = sqlx::query("INSERT INTO templates (name, version, body, created_by, created_at, deleted_at) VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (name, version) DO NOTHING")
                .bind(name)
                .bind(version)
                .bind(body)
                .bind(created_by)
                .bind(ts(at))
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 1 {
                return Ok(version);
            }
        }
        Err(StoreError::Refused(format!("template '{name}' is being saved by others at the same time; try again")))
    }

    /// Every stored version of every template (deleted ones included), by name then version.
    pub async fn template_rows(&self) -> StoreResult<Vec<TemplateRow>> {
        let rows = sqlx::query(
            "SELECT name, version, body, created_by, created_at, deleted_at FROM templates ORDER BY name, version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let deleted: Option<String> = r.get(5);
                Ok(TemplateRow {
                    name: r.get(0),
                    version: r.get(1),
                    body: r.get(2),
                    created_by: r.get(3),
                    created_at: parse_ts(&r.get::<String, _>(4))?,
                    deleted_at: deleted.as_deref().map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    /// Marks every version of a template deleted (they stay, for the plans made from them);
    /// answers whether there was a live one.
    pub async fn delete_template(&self, name: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE templates SET deleted_at = $1 WHERE name = $2 AND deleted_at IS NULL")
            .bind(ts(at))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the template (`name@vN`) a stored plan was made from.
    pub async fn set_plan_template(&self, plan_id: &str, template: &str) -> StoreResult<()> {
        sqlx::query("UPDATE plans SET template = $1 WHERE id = $2")
            .bind(template)
            .bind(plan_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The template (`name@vN`) a stored plan was made from, when it was.
    pub async fn plan_template(&self, plan_id: &str) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT template FROM plans WHERE id = $1").bind(plan_id).fetch_optional(&self.pool).await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)))
    }

    // ------------------------------------------------------------------ API tokens

    /// Stores a new token; refused when a token of that name exists (revoked ones included:
    /// a name in the audit log always means one token).
    pub async fn insert_token(&self, t: &TokenRow) -> StoreResult<()> {
        let done = sqlx::query("INSERT INTO api_tokens (name, role, sha256, created_by, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (name) DO NOTHING")
            .bind(&t.name)
            .bind(&t.role)
            .bind(&t.sha256)
            .bind(&t.created_by)
            .bind(ts(t.created_at))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Refused(format!("a token named '{}' exists already", t.name)));
        }
        Ok(())
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let rows = sqlx::query(
            "SELECT name, role, sha256, created_by, created_at, revoked_at FROM api_tokens ORDER BY created_at, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let revoked: Option<String> = r.get(5);
                Ok(TokenRow {
                    name: r.get(0),
                    role: r.get(1),
                    sha256: r.get(2),
                    created_by: r.get(3),
                    created_at: parse_ts(&r.get::<String, _>(4))?,
                    revoked_at: revoked.as_deref().map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    /// Revokes a token; answers false when there is no live token of that name.
    pub async fn revoke_token(&self, name: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(ts(at))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records who asked for a stored plan (an actor as the front end names it); the first
    /// one recorded stays.
    pub async fn set_plan_requester(&self, plan_id: &str, actor: &str) -> StoreResult<()> {
        sqlx::query("UPDATE plans SET requested_by = $1 WHERE id = $2 AND requested_by IS NULL")
            .bind(actor)
            .bind(plan_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Who asked for a stored plan, when recorded.
    pub async fn plan_requester(&self, plan_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT requested_by FROM plans WHERE id = $1")
            .bind(plan_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)))
    }

    // ------------------------------------------------------------------ outbox

    /// Queues a run's messages (status `queued`) in one transaction, so that either all of
    /// them are in the outbox or none; answers their ids in order.
    pub async fn insert_outbox(&self, run_id: &str, messages: &[crate::notify::Message]) -> StoreResult<Vec<i64>> {
        self.insert_outbox_event(run_id, None, messages).await
    }

    /// [`Store::insert_outbox`] of messages about one event (`run-started`, …).
    pub async fn insert_outbox_event(
        &self,
        run_id: &str,
        event: Option<&str>,
        messages: &[crate::notify::Message],
    ) -> StoreResult<Vec<i64>> {
        let now = ts(Utc::now());
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let row = sqlx::query("INSERT INTO outbox (run_id, recipient_id, recipient_name, recipient_email, subject, body, status, detail, created_at, updated_at, channels, event) VALUES ($1, $2, $3, $4, $5, $6, 'queued', '', $7, $7, '{}', $8) RETURNING id")
                .bind(run_id)
                .bind(&m.recipient_id)
                .bind(&m.recipient_name)
                .bind(&m.recipient_email)
                .bind(&m.subject)
                .bind(&m.body)
                .bind(&now)
                .bind(event)
                .fetch_one(&mut *tx)
                .await?;
            ids.push(row.get(0));
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Takes a message for delivery (status `sending`) if it is still in one of `from`, or was
    /// left `queued`/`sending` before `stale_before` by a process that stopped. Answers whether
    /// this caller got it: two processes never send the same message.
    pub async fn claim_outbox(&self, id: i64, from: &[&str], stale_before: Option<DateTime<Utc>>) -> StoreResult<bool> {
        let listed = |s: &str| from.contains(&s);
        let stale = stale_before.map(ts).unwrap_or_default();
        let done = sqlx::query("UPDATE outbox SET status = 'sending', updated_at = $1 WHERE id = $2 AND ((status = 'queued' AND $3 = 1) OR (status = 'failed' AND $4 = 1) OR (status = 'dry' AND $5 = 1) OR (status IN ('queued', 'sending') AND updated_at < $6))")
            .bind(ts(Utc::now()))
            .bind(id)
            .bind(i32::from(listed("queued")))
            .bind(i32::from(listed("failed")))
            .bind(i32::from(listed("dry")))
            .bind(stale)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the outcome of a delivery attempt.
    pub async fn finish_outbox(&self, id: i64, status: &str, detail: &str, channels: &Value) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET status = $1, detail = $2, channels = $3, updated_at = $4 WHERE id = $5")
            .bind(status)
            .bind(detail)
            .bind(channels.to_string())
            .bind(ts(Utc::now()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the outcome of one delivery attempt: counts it, and sets when a `failed`
    /// message is tried again by itself (`None`: not by itself, a dead letter).
    pub async fn finish_outbox_attempt(
        &self,
        id: i64,
        status: &str,
        detail: &str,
        channels: &Value,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET status = $1, detail = $2, channels = $3, updated_at = $4, attempts = attempts + 1, next_attempt_at = $5 WHERE id = $6")
            .bind(status)
            .bind(detail)
            .bind(channels.to_string())
            .bind(ts(Utc::now()))
            .bind(next_attempt_at.map(ts))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `failed` messages whose next automatic attempt is due at `now`, oldest first.
    pub async fn due_outbox(&self, now: DateTime<Utc>) -> StoreResult<Vec<OutboxRow>> {
        let mut rows = self.outbox_where(None, true, None).await?;
        rows.retain(|r| r.status == "failed" && r.next_attempt_at.is_some_and(|t| t <= now));
        rows.reverse();
        Ok(rows)
    }

    /// Newest first; `run_id` narrows to one run.
    pub async fn outbox(&self, run_id: Option<&str>) -> StoreResult<Vec<OutboxRow>> {
        self.outbox_where(run_id, false, None).await
    }

    /// What `tabflow outbox retry` takes, oldest first: `failed` and `dry` messages, and those
    /// left `queued` or `sending` before `stale_before`.
    pub async fn retryable_outbox(
        &self,
        run_id: Option<&str>,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<Vec<OutboxRow>> {
        let mut rows = self.outbox_where(run_id, true, Some(stale_before)).await?;
        rows.reverse();
        Ok(rows)
    }

    async fn outbox_where(
        &self,
        run_id: Option<&str>,
        retryable: bool,
        stale_before: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<OutboxRow>> {
        let rows = sqlx::query("SELECT id, run_id, recipient_id, recipient_name, recipient_email, subject, body, status, detail, channels, created_at, updated_at, attempts, next_attempt_at, event FROM outbox WHERE ($1 = '' OR run_id = $1) AND ($2 = 0 OR status IN ('failed', 'dry') OR (status IN ('queued', 'sending') AND updated_at < $3)) ORDER BY id DESC")
            .bind(run_id.unwrap_or(""))
            .bind(i32::from(retryable))
            .bind(stale_before.map(ts).unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let channels: String = r.get(9);
                Ok(OutboxRow {
                    id: r.get(0),
                    run_id: r.get(1),
                    recipient_id: r.get(2),
                    recipient_name: r.get(3),
                    recipient_email: r.get(4),
                    subject: r.get(5),
                    body: r.get(6),
                    status: r.get(7),
                    detail: r.get(8),
                    channels: serde_json::from_str(&channels)
                        .map_err(|e| StoreError::Damaged(format!("outbox {} channels: {e}", r.get::<i64, _>(0))))?,
                    created_at: parse_ts(&r.get::<String, _>(10))?,
                    updated_at: parse_ts(&r.get::<String, _>(11))?,
                    attempts: r.get(12),
                    next_attempt_at: r.get::<Option<String>, _>(13).as_deref().map(parse_ts).transpose()?,
                    event: r.get(14),
                })
            })
            .collect()
    }

    // ------------------------------------------------------------------ work items (see crate::executor::shared)

    /// Queues a shared run's items: `(step order, step id, item id)`, all pending.
    pub async fn queue_work(&self, run_id: &str, items: &[(i64, String, String)]) -> StoreResult<()> {
        self.queue_work_of(run_id, WORK_APPLY, items).await
    }

    /// Queues work items of `kind` ([`WORK_APPLY`] or [`WORK_ROLLBACK`]), all pending. A
    /// rollback's queue replaces the finished one of an earlier rollback of the same run (a
    /// run partly rolled back may be rolled back again).
    pub async fn queue_work_of(&self, run_id: &str, kind: &str, items: &[(i64, String, String)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM work_items WHERE run_id = $1 AND kind = $2 AND status = 'done'")
            .bind(run_id)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        for (ord, step, item) in items {
            sqlx::query("INSERT INTO work_items (run_id, kind, step_ord, step_id, item_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, kind, step_id, item_id) DO NOTHING")
                .bind(run_id)
                .bind(kind)
                .bind(*ord)
                .bind(step)
                .bind(item)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The items of one kind of a run's queue with their outcomes (step id, item id, outcome),
    /// in queue order: how the worker that closes a shared rollback tells what it undid.
    pub async fn work_outcomes(&self, run_id: &str, kind: &str) -> StoreResult<Vec<(String, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT step_id, item_id, outcome FROM work_items WHERE run_id = $1 AND kind = $2 ORDER BY step_ord, id",
        )
        .bind(run_id)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// Keeps (or, with `None`, reads) who approved a shared rollback of a run, so that the
    /// workers' audit records name the approvers as a rollback in one process does.
    pub async fn rollback_approvers(&self, run_id: &str, set: Option<&str>) -> StoreResult<String> {
        let key = format!("rollback-approvers:{run_id}");
        if let Some(v) = set {
            sqlx::query(
                "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(&key)
            .bind(v)
            .execute(&self.pool)
            .await?;
            return Ok(v.to_string());
        }
        let row = sqlx::query("SELECT value FROM kv WHERE key = $1").bind(&key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.get(0)).unwrap_or_default())
    }

    /// Claims up to `limit` items of the run's first unfinished step that are pending or whose
    /// claim lapsed (expiry before `now`), for `owner` until `expires`: an UPDATE over a
    /// `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (concurrent claimants get disjoint
    /// items), the same statement under SQLite's single writer — one for lapsed claims, then
    /// one for pending items. Each claim raises the item's fencing epoch. Answers (step id,
    /// item id, epoch) in queue order.
    pub async fn claim_work(
        &self,
        run_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        self.claim_work_of(run_id, WORK_APPLY, owner, now, expires, limit).await
    }

    /// [`Store::claim_work`] over the items of one kind of the run's queue.
    pub async fn claim_work_of(
        &self,
        run_id: &str,
        kind: &str,
        owner: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Lapsed claims first, then pending items, each in queue order: two statements so
        // that each reads its own index range (`work_items_run_kind`) in id order instead of
        // the run's rows; the first step not done and a failed item are index look-ups too.
        let mut got = Vec::new();
        for lapsed in [true, false] {
            let want = limit - got.len() as i64;
            if want <= 0 {
                break;
            }
            let which = if lapsed { "status = 'claimed' AND expires_at < $6" } else { "status = 'pending'" };
            let sql = format!(
                "UPDATE work_items SET status = 'claimed', owner = $1, expires_at = $2, epoch = epoch + 1, claims = claims + 1 WHERE id IN (SELECT id FROM work_items WHERE run_id = $3 AND kind = $5 AND {which} AND step_ord = (SELECT MIN(m) FROM (SELECT MIN(step_ord) AS m FROM work_items WHERE run_id = $3 AND kind = $5 AND status = 'pending' UNION ALL SELECT MIN(step_ord) AS m FROM work_items WHERE run_id = $3 AND kind = $5 AND status = 'claimed') AS firsts) AND NOT EXISTS (SELECT 1 FROM work_items f WHERE f.run_id = $3 AND f.kind = $5 AND f.outcome = 'failed') ORDER BY id LIMIT $4{lock}) RETURNING id, step_id, item_id, epoch"
            );
            let mut q =
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(ts(expires)).bind(run_id).bind(want).bind(kind);
            if lapsed {
                q = q.bind(ts(now));
            }
            let rows = q.fetch_all(&self.pool).await?;
            got.extend(rows.iter().map(|r| (r.get::<i64, _>(0), (r.get(1), r.get(2), r.get(3)))));
        }
        // RETURNING does not promise the subquery's order.
        got.sort_by_key(|(id, _)| *id);
        Ok(got.into_iter().map(|(_, c)| c).collect())
    }

    /// Extends one claim while `owner` still holds it at `epoch`; false when it was taken over.
    pub async fn renew_work(
        &self,
        run_id: &str,
        step_id: &str,
        item_id: &str,
        owner: &str,
        epoch: i64,
        expires: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE work_items SET expires_at = $1 WHERE run_id = $2 AND step_id = $3 AND item_id = $4 AND owner = $5 AND epoch = $6 AND status = 'claimed'")
            .bind(ts(expires))
            .bind(run_id)
            .bind(step_id)
            .bind(item_id)
            .bind(owner)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a claim: `done` (with its outcome) or, with `outcome` None, back to pending for
    /// another worker (a graceful stop). A no-op when the claim was lost meanwhile.
    pub async fn finish_work(
        &self,
        run_id: &str,
        step_id: &str,
        item_id: &str,
        owner: &str,
        epoch: i64,
        outcome: Option<&str>,
    ) -> StoreResult<bool> {
        Ok(self.finish_works(run_id, owner, &[(step_id, item_id, epoch, outcome)]).await?[0])
    }

    /// [`Store::finish_work`] for several claims (step, item, epoch, outcome) of `owner` in
    /// one transaction (one commit for a chunk of items); answers, for each, whether it was
    /// still this owner's claim.
    pub async fn finish_works(
        &self,
        run_id: &str,
        owner: &str,
        claims: &[(&str, &str, i64, Option<&str>)],
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut held = Vec::with_capacity(claims.len());
        for &(step_id, item_id, epoch, outcome) in claims {
            held.push(Store::finish_one(&mut tx, run_id, step_id, item_id, owner, epoch, outcome).await?);
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn finish_one(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        run_id: &str,
        step_id: &str,
        item_id: &str,
        owner: &str,
        epoch: i64,
        outcome: Option<&str>,
    ) -> StoreResult<bool> {
        let sql = match outcome {
            Some(_) => {
                "UPDATE work_items SET status = 'done', outcome = $1, expires_at = NULL WHERE run_id = $2 AND step_id = $3 AND item_id = $4 AND owner = $5 AND epoch = $6 AND status = 'claimed'"
            }
            None => {
                "UPDATE work_items SET status = 'pending', outcome = $1, owner = NULL, expires_at = NULL WHERE run_id = $2 AND step_id = $3 AND item_id = $4 AND owner = $5 AND epoch = $6 AND status = 'claimed'"
            }
        };
        let done = sqlx::query(sql)
            .bind(outcome)
            .bind(run_id)
            .bind(step_id)
            .bind(item_id)
            .bind(owner)
            .bind(epoch)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `owner` still holds the item's claim at `epoch` and it has not lapsed at `now`.
    pub async fn work_held(
        &self,
        run_id: &str,
        step_id: &str,
        item_id: &str,
        owner: &str,
        epoch: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(self.work_held_until(run_id, step_id, item_id, owner, epoch, now).await?.is_some())
    }

    /// [`Store::work_held`], answering until when the claim holds (its expiry) when it does.
    pub async fn work_held_until(
        &self,
        run_id: &str,
        step_id: &str,
        item_id: &str,
        owner: &str,
        epoch: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query("SELECT expires_at FROM work_items WHERE run_id = $1 AND step_id = $2 AND item_id = $3 AND owner = $4 AND epoch = $5 AND status = 'claimed' AND expires_at > $6")
            .bind(run_id)
            .bind(step_id)
            .bind(item_id)
            .bind(owner)
            .bind(epoch)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(parse_ts(&r.get::<String, _>(0))?)),
            None => Ok(None),
        }
    }

    /// Journal entries, written only while `owner` still holds every item claim in `fences`
    /// (run, step, item, epoch); one transaction, whose no-op UPDATEs lock the claims' rows
    /// until it ends, so a takeover cannot slip in between the check and the write.
    pub async fn append_work_fenced(
        &self,
        owner: &str,
        fences: &[(String, String, String, i64)],
        entries: &[NewEntry],
    ) -> StoreResult<()> {
        let now = ts(Utc::now());
        let mut tx = self.pool.begin().await?;
        for (run_id, step_id, item_id, epoch) in fences {
            let held = sqlx::query("UPDATE work_items SET epoch = epoch WHERE run_id = $1 AND step_id = $2 AND item_id = $3 AND owner = $4 AND epoch = $5 AND status = 'claimed'")
                .bind(run_id)
                .bind(step_id)
                .bind(item_id)
                .bind(owner)
                .bind(*epoch)
                .execute(&mut *tx)
                .await?;
            if held.rows_affected() != 1 {
                return Err(StoreError::LeaseLost(format!(
                    "lease lost: item {item_id} of run {run_id} was taken over by another worker (this one held epoch {epoch}); it writes nothing more for it"
                )));
            }
        }
        for e in entries {
            sqlx::query("INSERT INTO journal (run_id, step_id, item_id, item_type, phase, image, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&e.run_id)
                .bind(&e.step_id)
                .bind(&e.item_id)
                .bind(&e.item_type)
                .bind(e.phase.as_str())
                .bind(e.image.to_string())
                .bind(&e.detail)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes a shared run's queue when nothing is left to claim — no item pending, or an
    /// item failed — and no claim is live: every item not done yet is marked done for
    /// `owner` with a new epoch (fencing out a paused holder). Answers whether the queue is
    /// closed, i.e. the run may be finished (as a resume).
    pub async fn close_work(&self, run_id: &str, owner: &str) -> StoreResult<bool> {
        self.close_work_of(run_id, WORK_APPLY, owner).await
    }

    /// [`Store::close_work`] over the items of one kind of the run's queue.
    pub async fn close_work_of(&self, run_id: &str, kind: &str, owner: &str) -> StoreResult<bool> {
        sqlx::query("UPDATE work_items SET status = 'done', outcome = 'closed', owner = $2, epoch = epoch + 1, expires_at = NULL WHERE run_id = $1 AND kind = $4 AND status <> 'done' AND NOT EXISTS (SELECT 1 FROM work_items c WHERE c.run_id = $1 AND c.kind = $4 AND c.status = 'claimed' AND c.expires_at > $3) AND (NOT EXISTS (SELECT 1 FROM work_items p WHERE p.run_id = $1 AND p.kind = $4 AND p.status = 'pending') OR EXISTS (SELECT 1 FROM work_items f WHERE f.run_id = $1 AND f.kind = $4 AND f.outcome = 'failed'))")
            .bind(run_id)
            .bind(owner)
            .bind(ts(Utc::now()))
            .bind(kind)
            .execute(&self.pool)
            .await?;
        Ok(self.work_unfinished(run_id).await? == 0)
    }

    /// The journal entries of some items of a run, in order.
    pub async fn journal_of_items(&self, run_id: &str, item_ids: &[String]) -> StoreResult<Vec<Entry>> {
        if item_ids.is_empty() {
            return Ok(vec![]);
        }
        let marks: Vec<String> = (0..item_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT seq, run_id, step_id, item_id, item_type, phase, image, detail, at FROM journal WHERE run_id = $1 AND item_id IN ({}) ORDER BY seq",
            marks.join(", ")
        );
        // Planned anew each time (not a cached prepared statement): a plan PostgreSQL cached
        // while the run's journal was nearly empty read the whole run's index range and
        // filtered the items, so each claim read more as the run grew (measured over a
        // 10 000-item shared apply and rollback: 5.2 million index entries; planned with the
        // table's current size, 0.18 million, one descent per item once the journal is large).
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(run_id).persistent(false);
        for id in item_ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(Store::entry_row).collect()
    }

    /// How many of the run's work items are not done (0 for a run that was never shared).
    pub async fn work_unfinished(&self, run_id: &str) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM work_items WHERE run_id = $1 AND status IN ('pending', 'claimed')")
            .bind(run_id)
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// Shared runs still running, and runs whose shared rollback is under way, oldest first.
    pub async fn shared_runs(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT r.id FROM runs r WHERE (r.status = 'running' AND EXISTS (SELECT 1 FROM work_items w WHERE w.run_id = r.id AND w.kind = 'apply')) OR (r.status = 'rolling-back' AND EXISTS (SELECT 1 FROM work_items w WHERE w.run_id = r.id AND w.kind = 'rollback')) ORDER BY r.created_at, r.id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Work items per (run, kind, status) and who holds claims: for `tabflow worker status`
    /// (a running run's apply items, a rolling-back run's rollback items).
    pub async fn work_status(&self) -> StoreResult<Vec<(String, String, String, Option<String>, i64)>> {
        let rows = sqlx::query("SELECT w.run_id, w.kind, w.status, w.owner, COUNT(*) FROM work_items w JOIN runs r ON r.id = w.run_id WHERE (r.status = 'running' AND w.kind = 'apply') OR (r.status = 'rolling-back' AND w.kind = 'rollback') GROUP BY w.run_id, w.kind, w.status, w.owner ORDER BY w.run_id, w.kind, w.status, w.owner")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
    }

    // ------------------------------------------------------------------ site limits shared by workers

    /// Sets a site's shared limits (`per_second` calls, at most `max_in_flight` at once). The
    /// bucket holds one token (burst 1): calls are spaced 1/`per_second` apart, so no second
    /// ever sees more than `per_second` of them (a bucket of `per_second` tokens would let
    /// twice that through in the second it is spent and refilled).
    pub async fn set_site_limit(&self, site: &str, per_second: i64, max_in_flight: i64) -> StoreResult<()> {
        let now = Utc::now().timestamp_millis();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO site_limits (site, per_second, burst, tokens_milli, stamp_ms, paused_until_ms, max_in_flight) VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (site) DO UPDATE SET per_second = excluded.per_second, burst = excluded.burst, tokens_milli = CASE WHEN site_limits.tokens_milli < excluded.tokens_milli THEN site_limits.tokens_milli ELSE excluded.tokens_milli END, max_in_flight = excluded.max_in_flight")
            .bind(site)
            .bind(per_second)
            .bind(1i64)
            .bind(1000i64)
            .bind(now)
            .bind(max_in_flight)
            .execute(&mut *tx)
            .await?;
        for slot in 0..max_in_flight {
            sqlx::query("INSERT INTO site_slots (site, slot) VALUES ($1, $2) ON CONFLICT (site, slot) DO NOTHING")
                .bind(site)
                .bind(slot)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM site_slots WHERE site = $1 AND slot >= $2")
            .bind(site)
            .bind(max_in_flight)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A site's limits: (per second, max in flight, paused until ms), if set.
    pub async fn site_limit(&self, site: &str) -> StoreResult<Option<(i64, i64, i64)>> {
        let row = sqlx::query("SELECT per_second, max_in_flight, paused_until_ms FROM site_limits WHERE site = $1")
            .bind(site)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    /// Every site's shared limits: (site, per second, max in flight, paused until ms, slots
    /// held now), for `tabflow worker status`.
    pub async fn site_limits(&self) -> StoreResult<Vec<(String, i64, i64, i64, i64)>> {
        let now = Utc::now().timestamp_millis();
        let rows = sqlx::query("SELECT l.site, l.per_second, l.max_in_flight, l.paused_until_ms, (SELECT COUNT(*) FROM site_slots s WHERE s.site = l.site AND s.owner IS NOT NULL AND s.expires_ms >= $1) FROM site_limits l ORDER BY l.site")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
    }

    /// One token of the site's bucket: `Ok(None)` when taken, `Ok(Some(wait))` when the
    /// caller must wait (empty bucket or a 429 pause), with a compare-and-set on the bucket's
    /// row so that concurrent takers never take the same token.
    pub async fn take_site_token(&self, site: &str) -> StoreResult<Option<std::time::Duration>> {
        let Some(row) = sqlx::query(
            "SELECT per_second, burst, tokens_milli, stamp_ms, paused_until_ms FROM site_limits WHERE site = $1",
        )
        .bind(site)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let (per_second, burst, tokens, stamp, paused): (i64, i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let now = Utc::now().timestamp_millis();
        if paused > now {
            return Ok(Some(std::time::Duration::from_millis((paused - now) as u64)));
        }
        // Refilled at 95 % of the rate (in thousandths of a token a millisecond): calls leave
        // at least 1/(0.95 × rate) apart, so `rate + 1` of them span 1.05 s and the site,
        // counting arrivals, sees no more than `rate` in any second unless the network delays
        // one call 50 ms more than another.
        let per_second = per_second.max(1);
        let filled = (tokens + (now - stamp).max(0) * per_second * 19 / 20).min(burst.max(1) * 1000);
        if filled < 1000 {
            let wait = ((1000 - filled) * 20 / (per_second * 19)).max(1);
            return Ok(Some(std::time::Duration::from_millis(wait as u64)));
        }
        let done = sqlx::query("UPDATE site_limits SET tokens_milli = $1, stamp_ms = $2 WHERE site = $3 AND tokens_milli = $4 AND stamp_ms = $5")
            .bind(filled - 1000)
            .bind(now.max(stamp))
            .bind(site)
            .bind(tokens)
            .bind(stamp)
            .execute(&self.pool)
            .await?;
        Ok(if done.rows_affected() == 1 { None } else { Some(std::time::Duration::ZERO) })
    }

    /// Takes a free (or lapsed) concurrency slot of the site for `owner` until `expires_ms`.
    pub async fn take_site_slot(&self, site: &str, owner: &str, expires_ms: i64) -> StoreResult<Option<i64>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let now = Utc::now().timestamp_millis();
        let sql = format!(
            "UPDATE site_slots SET owner = $1, expires_ms = $2 WHERE site = $3 AND slot = (SELECT slot FROM site_slots WHERE site = $3 AND (owner IS NULL OR expires_ms < $4) ORDER BY slot LIMIT 1{lock}) RETURNING slot"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(expires_ms)
            .bind(site)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Frees a slot taken by [`Store::take_site_slot`].
    pub async fn free_site_slot(&self, site: &str, slot: i64, owner: &str) -> StoreResult<()> {
        sqlx::query("UPDATE site_slots SET owner = NULL, expires_ms = 0 WHERE site = $1 AND slot = $2 AND owner = $3")
            .bind(site)
            .bind(slot)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A 429 from the site: every worker sharing the store waits until `until_ms`.
    pub async fn pause_site(&self, site: &str, until_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE site_limits SET paused_until_ms = $1 WHERE site = $2 AND paused_until_ms < $1")
            .bind(until_ms)
            .bind(site)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ audit (see crate::audit)

    pub(crate) async fn audit_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.audit_lock.lock().await
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}
