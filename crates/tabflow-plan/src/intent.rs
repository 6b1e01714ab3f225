//! The intent catalogue (DESIGN.md §5) as one typed enum: what a user can ask tabflow for.
//!
//! Every producer and consumer of intents uses these types: the rule-based parser
//! (`tabflow-nl`) returns them, the LLM backend (`tabflow-llm`) generates the JSON Schema the
//! model must follow from them (schemars) and reads the answer into them, the CLI builds
//! `--intent NAME --param K=V` with [`Intent::from_parts`], the planner
//! (`tabflow-workflows`) matches on them, and plans store them. So the names, the parameter
//! keys and their types have one definition, and the schema cannot drift from the types.
//!
//! The JSON is the catalogue's: `{"name": "archive-stale-content", "params": {"project":
//! "Finance", "stale_days": 90}}`; absent parameters are left out. Parameters record what the
//! user wrote (`"user": "John"`); grounding against the site happens in the planner.
//!
//! Each parameter struct declares its fields in alphabetical order: plans listed parameters in
//! that order when they were a sorted map, so plan files keep their bytes. Reading is lenient
//! where producers have always been (a number or a comma-separated string where text or a list
//! is expected, `"yes"` for a flag); the schema the model follows stays strict.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The intent names, as plans, the parser and the model spell them.
pub mod names {
    pub const ARCHIVE_STALE_CONTENT: &str = "archive-stale-content";
    pub const CONSOLIDATE_DATASOURCES: &str = "consolidate-datasources";
    pub const OFFBOARD_USER: &str = "offboard-user";
    pub const AUDIT_PERMISSIONS: &str = "audit-permissions";
    pub const UPDATE_PERMISSIONS: &str = "update-permissions";
    pub const NOTIFY_OWNERS: &str = "notify-owners";
    pub const MIGRATE_DATASOURCE: &str = "migrate-datasource";
    pub const DELETE_CONTENT: &str = "delete-content";
    pub const QUERY: &str = "query";
    pub const RECLAIM_LICENSES: &str = "reclaim-licenses";
    pub const CLEAN_SUBSCRIPTIONS: &str = "clean-subscriptions";
    pub const REVIEW_EXTRACT_REFRESHES: &str = "review-extract-refreshes";
}

/// One thing the user asked for: a catalogue name and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "name", content = "params", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Intent {
    /// Move workbooks nobody viewed for a while to an archive project.
    ArchiveStaleContent(Archive),
    /// Find duplicate or similar published datasources and merge them.
    ConsolidateDatasources(Consolidate),
    /// Hand over a departing user's content (and optionally remove their access).
    OffboardUser(Offboard),
    /// Review who can do what, optionally on a schedule.
    AuditPermissions(AuditPermissions),
    /// Change permissions (e.g. make the remaining content read-only).
    UpdatePermissions(UpdatePermissions),
    /// Tell owners about the changes.
    NotifyOwners(Notify),
    /// Repoint workbooks from one published datasource to another.
    MigrateDatasource(Migrate),
    /// Delete content (staged: quarantined first).
    DeleteContent(Delete),
    /// A simple read-only question about the site.
    Query(Query),
    /// Take licenses back from users who have not signed in for a while (Unlicensed, or one
    /// level down: Creator → Explorer, Explorer → Viewer).
    ReclaimLicenses(Reclaim),
    /// Remove subscriptions nobody can receive or should keep: of unlicensed users, to
    /// archived or quarantined content, and suspended (failing) ones. A rollback re-creates
    /// each one (a new id).
    CleanSubscriptions(CleanSubscriptions),
    /// Extract refresh health: tasks, schedules, failing and suspended refreshes, refreshes
    /// of content nobody views; a report, or deleting the unused ones' tasks, or moving
    /// heavy refreshes off-peak.
    ReviewExtractRefreshes(ReviewRefreshes),
}

/// `archive-stale-content` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// Where to move the workbooks (default "Archive").
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub archive_project: Option<String>,
    /// What to archive: "workbooks" (default), "datasources" or "all".
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Project name as the user wrote it.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Start of a date window, YYYY-MM-DD.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Not viewed for this many days (e.g. "3 months" = 90).
    #[serde(default, deserialize_with = "de::days", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stale_days: Option<u32>,
    /// Only content with one of these tags (lowercase).
    #[serde(default, deserialize_with = "de::list", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// End of a date window, YYYY-MM-DD (inclusive).
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `consolidate-datasources` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Consolidate {
    /// Where redundant datasources are moved (default "Archive").
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub archive_project: Option<String>,
    /// Project name as the user wrote it.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `offboard-user` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Offboard {
    /// True when the request also asks to delete the account after the hand-over (tabflow
    /// confirms it with a question).
    #[serde(default, deserialize_with = "de::flag", skip_serializing_if = "Option::is_none")]
    pub delete_user: Option<bool>,
    /// Who receives the content, when the request names someone.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub new_owner: Option<String>,
    /// Whether the person's access goes too (groups, explicit grants, license). Absent means
    /// yes: a leaver's request plans the whole sequence, each part its own step the review
    /// can drop; false when the request only hands content over.
    #[serde(default, deserialize_with = "de::flag", skip_serializing_if = "Option::is_none")]
    pub remove_access: Option<bool>,
    /// Their team or group, when the request names one.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The person leaving, exactly as written ("John", "jdoe", an email).
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `audit-permissions` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditPermissions {
    /// Project name as the user wrote it.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// A recurring review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Only content with one of these tags (lowercase).
    #[serde(default, deserialize_with = "de::list", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `update-permissions` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdatePermissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Project name as the user wrote it.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `remaining`, `all`, or a plural content type such as `workbooks`.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Only content with one of these tags (lowercase).
    #[serde(default, deserialize_with = "de::list", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `notify-owners` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Audience>,
    /// Project name as the user wrote it.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `migrate-datasource` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Migrate {
    /// A datasource name, or `deprecated`.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Only workbooks in this project (and its sub-projects) are repointed.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// `delete-content` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    /// What to delete when `type` does not say: "workbooks" (default), "datasources" or "all".
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Project name as the user wrote it.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, deserialize_with = "de::days", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stale_days: Option<u32>,
    #[serde(default, deserialize_with = "de::list", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// `workbook`, `datasource`, ...
    #[serde(default, rename = "type", deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `reclaim-licenses` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Reclaim {
    /// `unlicense` (default: the site role becomes Unlicensed) or `downgrade` (Creator →
    /// Explorer, Explorer or Explorer (can publish) → Viewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<LicenseAction>,
    /// Users (names, emails) or groups whose members keep their license, as written.
    /// Administrators and service accounts are always kept.
    #[serde(default, deserialize_with = "de::list", skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
    /// Warn first: users newly found inactive are told and recorded as pending; their role
    /// changes in a later plan once this many days have passed and they are still inactive
    /// (a user who signed in meanwhile keeps their license). Absent: act now.
    #[serde(default, deserialize_with = "de::days", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub grace_days: Option<u32>,
    /// No sign-in for this many days (default 90).
    #[serde(default, deserialize_with = "de::days", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub inactive_days: Option<u32>,
    /// Tell each user whose role the run changed (after the run, from what was applied).
    /// Default: true with `grace_days`, false without.
    #[serde(default, deserialize_with = "de::flag", skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
}

/// `clean-subscriptions` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CleanSubscriptions {
    /// Only subscriptions to content in this project (and its sub-projects), as written.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Which subscriptions go: `unlicensed-users`, `archived-content`, `failing` (one, or a
    /// list; all three when left out).
    #[serde(default, deserialize_with = "de::reasons", skip_serializing_if = "Option::is_none")]
    pub reason: Option<Vec<SubscriptionReason>>,
    /// Only this user's subscriptions (name, full name or email), as written.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `review-extract-refreshes` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReviewRefreshes {
    /// Only refreshes of content in this project (and its sub-projects), as written.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Content with no view in this many days is unused (default 90).
    #[serde(default, deserialize_with = "de::days", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub unused_days: Option<u32>,
    /// `report` (default: findings and recommendations, nothing changes), `suspend-unused`
    /// (delete the refresh tasks of unused content; a rollback re-creates them), `rebalance`
    /// (move heavy refreshes that run in peak hours to an off-peak time), `suspend-schedules`
    /// (suspend the Server schedules whose every refresh is of unused content) or
    /// `resume-schedules` (resume suspended Server schedules holding refreshes of content
    /// still used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RefreshAction>,
}

/// What `review-extract-refreshes` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshAction {
    Report,
    SuspendUnused,
    Rebalance,
    SuspendSchedules,
    ResumeSchedules,
}

impl RefreshAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshAction::Report => "report",
            RefreshAction::SuspendUnused => "suspend-unused",
            RefreshAction::Rebalance => "rebalance",
            RefreshAction::SuspendSchedules => "suspend-schedules",
            RefreshAction::ResumeSchedules => "resume-schedules",
        }
    }
}

/// Why `clean-subscriptions` removes a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriptionReason {
    /// The subscriber's site role is Unlicensed: Tableau no longer sends to them.
    UnlicensedUsers,
    /// The content is in the archive or quarantine project, or carries the archive tag.
    ArchivedContent,
    /// Failing: Tableau suspended the subscription after repeated failures.
    #[serde(alias = "suspended")]
    Failing,
}

impl SubscriptionReason {
    pub const ALL: [SubscriptionReason; 3] =
        [SubscriptionReason::UnlicensedUsers, SubscriptionReason::ArchivedContent, SubscriptionReason::Failing];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionReason::UnlicensedUsers => "unlicensed-users",
            SubscriptionReason::ArchivedContent => "archived-content",
            SubscriptionReason::Failing => "failing",
        }
    }
}

/// What `reclaim-licenses` does to an inactive user's site role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LicenseAction {
    Unlicense,
    Downgrade,
}

/// `query` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The question, as the user asked it.
    #[serde(default, deserialize_with = "de::text", skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
}

/// How permissions change. `reset` (every item to its project's default permissions) and
/// `lock` (content follows the project's defaults from then on) are the command line's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    ReadOnly,
    Locked,
    Unlocked,
    Restrict,
    Revoke,
    Grant,
    ProjectDefault,
    Reset,
    Lock,
}

/// Who is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    ProjectOwners,
    ContentOwners,
}

/// When a recurring review runs: a plain frequency, or a five-field cron expression (minute
/// hour day-of-month month day-of-week) for anything more precise ("each Monday" →
/// `0 0 * * 1`), as the parser gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Daily,
    Weekly,
    Monthly,
    Cron(String),
}

impl Schedule {
    pub fn as_str(&self) -> &str {
        match self {
            Schedule::Daily => "daily",
            Schedule::Weekly => "weekly",
            Schedule::Monthly => "monthly",
            Schedule::Cron(c) => c,
        }
    }

    /// Reads `daily`, `weekly`, `monthly`, or anything else as the cron expression the user
    /// gave, kept as written: whether it can run is the planner's question to ask (it checks
    /// it with croner, `tabflow_nl::check_cadence`), like a name that does not ground.
    pub fn parse(s: &str) -> Option<Schedule> {
        match s.trim() {
            "" => None,
            "daily" => Some(Schedule::Daily),
            "weekly" => Some(Schedule::Weekly),
            "monthly" => Some(Schedule::Monthly),
            other => Some(Schedule::Cron(other.to_string())),
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Schedule::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a schedule: expected daily, weekly, monthly or a five-field cron expression"
            ))
        })
    }
}

impl JsonSchema for Schedule {
    fn schema_name() -> Cow<'static, str> {
        "Schedule".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "daily, weekly, monthly, or a five-field cron expression (minute hour day-of-month month day-of-week) for anything more precise",
            "anyOf": [
                {"type": "string", "enum": ["daily", "weekly", "monthly"]},
                {"type": "string", "pattern": "^\\S+\\s+\\S+\\s+\\S+\\s+\\S+\\s+\\S+$"}
            ]
        })
    }
}

/// Parameters that are calendar dates (`YYYY-MM-DD`).
const DATE_KEYS: [&str; 2] = ["since", "until"];

/// Why `--intent NAME --param K=V` (or any name and parameter map) is not an intent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name is not in the catalogue.
    #[error("'{name}' is not an intent tabflow knows")]
    UnknownIntent { name: String },
    /// The intent takes no parameter of this name.
    #[error("the intent {intent} takes no parameter '{key}'")]
    UnknownKey { intent: &'static str, key: String },
    /// The parameter's value has the wrong type or is not one of the allowed values.
    #[error("the parameter '{key}' of {intent} is not valid: {detail}")]
    WrongType { intent: &'static str, key: String, detail: String },
}

impl Error {
    /// What to do about it (one line, for a `hint:`).
    pub fn fix(&self) -> String {
        match self {
            Error::UnknownIntent { .. } => format!("use one of: {}", Intent::NAMES.join(", ")),
            Error::UnknownKey { intent, .. } => match Intent::keys(intent) {
                [] => format!("{intent} takes no parameters"),
                keys => format!("{intent} takes: {}", keys.join(", ")),
            },
            Error::WrongType { key, .. } if DATE_KEYS.contains(&key.as_str()) => {
                format!("give {key} as a calendar date, YYYY-MM-DD (e.g. 2026-01-31)")
            }
            Error::WrongType { intent, key, .. } => format!("give {key} as {}", expected(intent, key)),
        }
    }
}

impl Intent {
    /// Every intent name, in catalogue order.
    pub const NAMES: &'static [&'static str] = &[
        names::ARCHIVE_STALE_CONTENT,
        names::CONSOLIDATE_DATASOURCES,
        names::OFFBOARD_USER,
        names::AUDIT_PERMISSIONS,
        names::UPDATE_PERMISSIONS,
        names::NOTIFY_OWNERS,
        names::MIGRATE_DATASOURCE,
        names::DELETE_CONTENT,
        names::QUERY,
        names::RECLAIM_LICENSES,
        names::CLEAN_SUBSCRIPTIONS,
        names::REVIEW_EXTRACT_REFRESHES,
    ];

    /// The catalogue name (`archive-stale-content`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Intent::ArchiveStaleContent(_) => names::ARCHIVE_STALE_CONTENT,
            Intent::ConsolidateDatasources(_) => names::CONSOLIDATE_DATASOURCES,
            Intent::OffboardUser(_) => names::OFFBOARD_USER,
            Intent::AuditPermissions(_) => names::AUDIT_PERMISSIONS,
            Intent::UpdatePermissions(_) => names::UPDATE_PERMISSIONS,
            Intent::NotifyOwners(_) => names::NOTIFY_OWNERS,
            Intent::MigrateDatasource(_) => names::MIGRATE_DATASOURCE,
            Intent::DeleteContent(_) => names::DELETE_CONTENT,
            Intent::Query(_) => names::QUERY,
            Intent::ReclaimLicenses(_) => names::RECLAIM_LICENSES,
            Intent::CleanSubscriptions(_) => names::CLEAN_SUBSCRIPTIONS,
            Intent::ReviewExtractRefreshes(_) => names::REVIEW_EXTRACT_REFRESHES,
        }
    }

    /// The parameters as JSON (absent ones left out), as plans write them.
    pub fn params_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut o)) => match o.remove("params") {
                Some(Value::Object(p)) => p,
                _ => Map::new(),
            },
            _ => Map::new(),
        }
    }

    /// The parameter keys an intent takes (empty for an unknown name), read from the
    /// parameter types' schema so that they cannot differ from what deserializes.
    pub fn keys(name: &str) -> &'static [String] {
        static KEYS: LazyLock<BTreeMap<&'static str, Vec<String>>> = LazyLock::new(|| {
            let properties = |s: Schema| -> Vec<String> {
                s.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default()
            };
            let mut g = SchemaGenerator::default();
            BTreeMap::from([
                (names::ARCHIVE_STALE_CONTENT, properties(g.root_schema_for::<Archive>())),
                (names::CONSOLIDATE_DATASOURCES, properties(g.root_schema_for::<Consolidate>())),
                (names::OFFBOARD_USER, properties(g.root_schema_for::<Offboard>())),
                (names::AUDIT_PERMISSIONS, properties(g.root_schema_for::<AuditPermissions>())),
                (names::UPDATE_PERMISSIONS, properties(g.root_schema_for::<UpdatePermissions>())),
                (names::NOTIFY_OWNERS, properties(g.root_schema_for::<Notify>())),
                (names::MIGRATE_DATASOURCE, properties(g.root_schema_for::<Migrate>())),
                (names::DELETE_CONTENT, properties(g.root_schema_for::<Delete>())),
                (names::QUERY, properties(g.root_schema_for::<Query>())),
                (names::RECLAIM_LICENSES, properties(g.root_schema_for::<Reclaim>())),
                (names::CLEAN_SUBSCRIPTIONS, properties(g.root_schema_for::<CleanSubscriptions>())),
                (names::REVIEW_EXTRACT_REFRESHES, properties(g.root_schema_for::<ReviewRefreshes>())),
            ])
        });
        KEYS.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// An intent from its name and parameters (the CLI's `--intent NAME --param K=V`). Errors
    /// name the unknown intent, the unknown key or the parameter of the wrong type, and
    /// [`Error::fix`] says what to give instead.
    pub fn from_parts(name: &str, params: Map<String, Value>) -> Result<Intent, Error> {
        let Some(&known) = Intent::NAMES.iter().find(|n| **n == name) else {
            return Err(Error::UnknownIntent { name: name.to_string() });
        };
        let keys = Intent::keys(known);
        if let Some(key) = params.keys().find(|k| !keys.contains(k)) {
            return Err(Error::UnknownKey { intent: known, key: key.clone() });
        }
        // One key at a time first, so that an error names its key.
        for (key, value) in &params {
            let one = Map::from_iter([(key.clone(), value.clone())]);
            if let Err(e) = Intent::read(known, one) {
                return Err(Error::WrongType { intent: known, key: key.clone(), detail: e.to_string() });
            }
            // A date the planner cannot read would be left out, widening the selection.
            if DATE_KEYS.contains(&key.as_str())
                && let Some(text) = value.as_str()
                && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_err()
            {
                return Err(Error::WrongType {
                    intent: known,
                    key: key.clone(),
                    detail: format!("'{text}' is not a date"),
                });
            }
        }
        Intent::read(known, params).map_err(|e| Error::WrongType {
            intent: known,
            key: String::new(),
            detail: e.to_string(),
        })
    }

    fn read(name: &str, params: Map<String, Value>) -> Result<Intent, serde_json::Error> {
        serde_json::from_value(serde_json::json!({"name": name, "params": params}))
    }
}

/// What a parameter takes, in words, from its schema.
fn expected(intent: &str, key: &str) -> String {
    static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
        let mut settings = schemars::generate::SchemaSettings::draft2020_12();
        settings.inline_subschemas = true;
        settings.into_generator().into_root_schema_for::<Intent>().to_value()
    });
    let branches = SCHEMA.get("oneOf").and_then(Value::as_array).cloned().unwrap_or_default();
    let property = branches
        .iter()
        .find(|b| b.pointer("/properties/name/const").and_then(Value::as_str) == Some(intent))
        .and_then(|b| b.pointer(&format!("/properties/params/properties/{key}")).cloned())
        .unwrap_or(Value::Null);
    describe(&property)
}

fn describe(schema: &Value) -> String {
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        let words: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
        return format!("one of: {}", words.join(", "));
    }
    if let Some(branches) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array) {
        // An optional parameter is "T or null": describe T. A type of alternatives of its
        // own (a schedule) says in its description what it takes.
        let values: Vec<&Value> = branches.iter().filter(|b| b.get("type") != Some(&Value::from("null"))).collect();
        if values.len() == branches.len()
            && let Some(d) = schema.get("description").and_then(Value::as_str)
        {
            return d.to_string();
        }
        return values.into_iter().map(describe).collect::<Vec<_>>().join(" or ");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => vec![],
    };
    match types.first().copied() {
        Some("integer") => "a whole number (e.g. 90)".into(),
        Some("boolean") => "true or false".into(),
        Some("array") => "a list (comma-separated, e.g. sensitive,confidential)".into(),
        Some("string") => "text".into(),
        _ => "a value of the catalogue (DESIGN.md §5)".into(),
    }
}

/// Lenient readers for parameter values, accepting what producers have always given.
mod de {
    use serde::{Deserialize, Deserializer, de::Error};
    use serde_json::Value;

    /// Text: a string, or a number or flag written where text was meant (`--param project=2024`).
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => return Err(D::Error::custom(format!("expected text, got {other}"))),
        })
    }

    /// A number of days: a whole number, or one written as text.
    pub fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let v = Value::deserialize(d)?;
        let n = match &v {
            Value::Null => return Ok(None),
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        n.and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a whole number of days, got {v}")))
    }

    /// A list of text: a list, or one comma-separated string.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            Value::String(s) => Some(s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()),
            Value::Array(items) => Some(
                items
                    .into_iter()
                    .map(|x| match x {
                        Value::String(s) => Ok(s),
                        other => Err(D::Error::custom(format!("expected a list of text, got {other} in it"))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(D::Error::custom(format!("expected a list of text, got {other}"))),
        })
    }

    /// `clean-subscriptions` reasons: one, a comma-separated text or a list.
    pub fn reasons<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<super::SubscriptionReason>>, D::Error> {
        let Some(words) = list(d)? else { return Ok(None) };
        words
            .into_iter()
            .map(|w| {
                serde_json::from_value(Value::String(w.clone())).map_err(|_| {
                    D::Error::custom(format!(
                        "unknown reason '{w}': give unlicensed-users, archived-content or failing"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A flag: true or false, or `yes`/`no`, `1`/`0` as text.
    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            Value::Bool(b) => Some(b),
            Value::String(s) if matches!(s.trim(), "true" | "yes" | "1") => Some(true),
            Value::String(s) if matches!(s.trim(), "false" | "no" | "0") => Some(false),
            other => return Err(D::Error::custom(format!("expected true or false, got {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn names_are_the_serialized_names_and_every_intent_round_trips() {
        let examples = [
            Intent::ArchiveStaleContent(Archive {
                project: Some("Finance".into()),
                stale_days: Some(90),
                ..Default::default()
            }),
            Intent::ConsolidateDatasources(Consolidate::default()),
            Intent::OffboardUser(Offboard {
                user: Some("John".into()),
                remove_access: Some(true),
                ..Default::default()
            }),
            Intent::AuditPermissions(AuditPermissions {
                schedule: Some(Schedule::Cron("0 0 * * 1".into())),
                ..Default::default()
            }),
            Intent::UpdatePermissions(UpdatePermissions { mode: Some(Mode::ReadOnly), ..Default::default() }),
            Intent::NotifyOwners(Notify { audience: Some(Audience::ProjectOwners), ..Default::default() }),
            Intent::MigrateDatasource(Migrate { from: Some("deprecated".into()), ..Default::default() }),
            Intent::DeleteContent(Delete { kind: Some("datasource".into()), ..Default::default() }),
            Intent::Query(Query { question: Some("who owns Sales?".into()) }),
            Intent::ReclaimLicenses(Reclaim {
                action: Some(LicenseAction::Downgrade),
                inactive_days: Some(90),
                ..Default::default()
            }),
            Intent::CleanSubscriptions(CleanSubscriptions {
                reason: Some(vec![SubscriptionReason::UnlicensedUsers]),
                ..Default::default()
            }),
            Intent::ReviewExtractRefreshes(ReviewRefreshes {
                action: Some(RefreshAction::SuspendUnused),
                ..Default::default()
            }),
        ];
        let names: Vec<&str> = examples.iter().map(Intent::name).collect();
        assert_eq!(names, Intent::NAMES);
        for i in &examples {
            let v = serde_json::to_value(i).unwrap();
            assert_eq!(v["name"], json!(i.name()), "{v}");
            assert_eq!(v["params"], Value::Object(i.params_json()));
            assert_eq!(serde_json::from_value::<Intent>(v.clone()).unwrap(), *i);
            assert_eq!(Intent::from_parts(i.name(), i.params_json()).unwrap(), *i);
            assert!(!Intent::keys(i.name()).is_empty(), "{}", i.name());
        }
    }

    #[test]
    fn plans_keep_their_bytes_parameters_in_sorted_order_absent_ones_left_out() {
        let i = Intent::from_parts(
            "archive-stale-content",
            params(json!({"until": "2026-06-30", "project": "Finance", "stale_days": 90, "archive_project": "Old"})),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            r#"{"name":"archive-stale-content","params":{"archive_project":"Old","project":"Finance","stale_days":90,"until":"2026-06-30"}}"#
        );
        for name in Intent::NAMES {
            let keys = Intent::keys(name);
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{name}: {keys:?} must be declared in sorted order");
        }
    }

    #[test]
    fn the_catalogue_keys_are_design_plus_the_readme_extras() {
        let keys = |n: &str| Intent::keys(n).join(",");
        assert_eq!(keys("archive-stale-content"), "archive_project,content,project,since,stale_days,tags,until");
        assert_eq!(keys("consolidate-datasources"), "archive_project,project");
        assert_eq!(keys("offboard-user"), "delete_user,new_owner,remove_access,team,user");
        assert_eq!(keys("audit-permissions"), "project,schedule,tags");
        assert_eq!(keys("update-permissions"), "mode,project,scope,tags");
        assert_eq!(keys("notify-owners"), "audience,project");
        assert_eq!(keys("migrate-datasource"), "from,project,to");
        assert_eq!(keys("delete-content"), "content,project,stale_days,tags,type");
        assert_eq!(keys("query"), "question");
        assert_eq!(keys("reclaim-licenses"), "action,exclude,grace_days,inactive_days,notify");
        assert_eq!(keys("clean-subscriptions"), "project,reason,user");
        assert_eq!(keys("review-extract-refreshes"), "action,project,unused_days");
        assert!(Intent::keys("delete-everything").is_empty());
    }

    #[test]
    fn what_the_command_line_gives_is_read_leniently() {
        // The CLI turns `--param` values into numbers, flags, lists or text by their look.
        let i = Intent::from_parts(
            "audit-permissions",
            params(json!({"tags": "sensitive", "project": 2024, "schedule": "monthly"})),
        )
        .unwrap();
        let Intent::AuditPermissions(a) = i else { panic!() };
        assert_eq!(a.tags, Some(vec!["sensitive".to_string()]));
        assert_eq!(a.project.as_deref(), Some("2024"));
        assert_eq!(a.schedule, Some(Schedule::Monthly));
        let i = Intent::from_parts("offboard-user", params(json!({"delete_user": "yes", "user": "jsmith"}))).unwrap();
        assert!(matches!(i, Intent::OffboardUser(Offboard { delete_user: Some(true), .. })));
        let i = Intent::from_parts("delete-content", params(json!({"stale_days": "30", "tags": "a, b,"}))).unwrap();
        let Intent::DeleteContent(d) = i else { panic!() };
        assert_eq!((d.stale_days, d.tags), (Some(30), Some(vec!["a".to_string(), "b".to_string()])));
    }

    #[test]
    fn errors_name_the_intent_the_key_or_the_type_with_the_fix() {
        let e = Intent::from_parts("archive-stale-contnet", Map::new()).unwrap_err();
        assert_eq!(e.to_string(), "'archive-stale-contnet' is not an intent tabflow knows");
        assert!(e.fix().contains("archive-stale-content") && e.fix().contains("query"), "{}", e.fix());

        let e = Intent::from_parts("offboard-user", params(json!({"user": "jsmith", "owner": "tbaker"}))).unwrap_err();
        assert_eq!(e.to_string(), "the intent offboard-user takes no parameter 'owner'");
        assert_eq!(e.fix(), "offboard-user takes: delete_user, new_owner, remove_access, team, user");
        let e = Intent::from_parts("query", params(json!({"project": "x"}))).unwrap_err();
        assert_eq!(e.fix(), "query takes: question");

        let e = Intent::from_parts("archive-stale-content", params(json!({"stale_days": "ninety"}))).unwrap_err();
        assert!(matches!(&e, Error::WrongType { key, .. } if key == "stale_days"), "{e:?}");
        assert!(e.to_string().contains("ninety"), "{e}");
        assert_eq!(e.fix(), "give stale_days as a whole number (e.g. 90)");
        // A date that is not one is refused (left out, it would widen the selection).
        for bad in ["2026-13-45", "yesterdayish", "2026-02-30"] {
            let e = Intent::from_parts("archive-stale-content", params(json!({"since": bad}))).unwrap_err();
            assert!(matches!(&e, Error::WrongType { key, .. } if key == "since"), "{e:?}");
            assert!(e.to_string().contains(bad) && e.fix().contains("YYYY-MM-DD"), "{e}");
        }
        assert!(Intent::from_parts("archive-stale-content", params(json!({"until": "2026-02-28"}))).is_ok());
        let e = Intent::from_parts("update-permissions", params(json!({"mode": "sideways"}))).unwrap_err();
        assert!(e.fix().starts_with("give mode as one of: read-only, locked,"), "{}", e.fix());
        // A schedule is kept as written; whether croner can run it is the planner's question.
        let Intent::AuditPermissions(a) =
            Intent::from_parts("audit-permissions", params(json!({"schedule": "fortnightly"}))).unwrap()
        else {
            panic!("not an audit")
        };
        assert_eq!(a.schedule, Some(Schedule::Cron("fortnightly".into())));
        let e = Intent::from_parts("audit-permissions", params(json!({"schedule": ""}))).unwrap_err();
        assert!(e.fix().contains("five-field cron"), "{}", e.fix());
        let e = Intent::from_parts("offboard-user", params(json!({"remove_access": "perhaps"}))).unwrap_err();
        assert_eq!(e.fix(), "give remove_access as true or false");
    }
}
