//! The `tabflow-site/1` document: one JSON object describing a whole Tableau site.
//!
//! The field names listed in DESIGN.md §5 are the contract. Fields marked "extension" are
//! optional additions (absent in older files, defaulted on load) that the emulator needs to
//! be faithful (content URLs, descriptions, default permissions, webhooks, ...).
// Reads snapshot files (issue #17: no panic from outside data).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used))]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The value of the `format` field this crate reads and writes.
pub const FORMAT: &str = "tabflow-site/1";

/// A whole site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub format: String,
    /// The moment the snapshot describes; usage ages are relative to it.
    pub now: DateTime<Utc>,
    pub site: SiteInfo,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub projects: Vec<Project>,
    pub datasources: Vec<Datasource>,
    pub workbooks: Vec<Workbook>,
    /// Extension: Tableau Prep flows (REST `flowType`). Left out when there are none, so a
    /// site without flows has the same bytes as before flows were modelled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<Flow>,
    pub permissions: Vec<PermissionRule>,
    pub subscriptions: Vec<Subscription>,
    /// Extension: project default permissions per content type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_permissions: Vec<DefaultPermissionRule>,
    /// Extension: webhooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    /// Extension: users' favorites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub favorites: Vec<Favorite>,
    /// Extension: data-driven alerts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_alerts: Vec<DataAlert>,
    /// Extension: Server schedules (REST `GET /schedules`, server-wide). Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    /// Extension: extract refresh tasks (REST `GET /sites/{id}/tasks/extractRefreshes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract_refreshes: Vec<ExtractRefresh>,
    /// Extension: recent background jobs of extract refreshes (REST `GET /sites/{id}/jobs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refresh_jobs: Vec<RefreshJob>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    pub id: String,
    pub name: String,
    pub content_url: String,
    /// What the snapshot could not read, as `resource.field` or a whole `resource`
    /// (`workbook.size`: Tableau's REST API gives sizes in whole MB; `favorite`: one call per
    /// user). `site diff` does not compare these, and says so. Empty for a complete snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_read: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub full_name: String,
    pub email: String,
    pub site_role: String,
    pub last_login: Option<DateTime<Utc>>,
    /// Extension: `ServerDefault`, `SAML`, `OpenID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_setting: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
    /// Extension: minimum site role granted on sign-in (grant license mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_site_role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub owner_id: String,
    /// `LockedToProject`, `LockedToProjectWithoutNested` or `ManagedByOwner`.
    pub content_permissions: String,
    /// Extension.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Connection {
    /// Connection class, e.g. `postgres`, `sqlserver`, `snowflake`, `excel-direct`.
    #[serde(rename = "type")]
    pub kind: String,
    pub server: String,
    pub database: String,
    pub table: String,
    /// Extension: custom SQL, when the datasource is built on a query instead of a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_sql: Option<String>,
    /// Extension: the connection's own id (REST `connection id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Extension.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub port: String,
    /// Extension: the database user name the connection signs in with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datasource {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub owner_id: String,
    pub tags: Vec<String>,
    pub certified: bool,
    pub certification_note: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub connection: Connection,
    pub fields: Vec<String>,
    /// Extension.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_url: String,
    /// Extension.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Extension.
    #[serde(default)]
    pub has_extracts: bool,
    /// Extension: bytes of the published file.
    #[serde(default)]
    pub size: u64,
    /// Extension: hits on the datasource (REST `usage-stats`); last access.
    #[serde(default)]
    pub total_hits: u64,
    /// Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub id: String,
    pub name: String,
    pub total_views: u64,
    pub last_viewed_at: Option<DateTime<Utc>>,
    /// Extension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Extension: `dashboard`, `story` or `view`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sheet_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workbook {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub owner_id: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Published datasources this workbook connects to (its `sqlproxy` connections).
    pub datasource_ids: Vec<String>,
    pub views: Vec<View>,
    /// Extension.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_url: String,
    /// Extension.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Extension.
    #[serde(default = "default_true")]
    pub show_tabs: bool,
    /// Extension: the fields of its published datasources the workbook's sheets use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_used: Vec<String>,
    /// Extension: number of published revisions (1 = as first published).
    #[serde(default = "default_one")]
    pub revision: u32,
}

/// Extension: a published Tableau Prep flow, as the REST API's `flowType` describes it
/// (`<flow id name description webpageUrl fileType createdAt updatedAt><project/><owner/><tags/>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub owner_id: String,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `tfl` or `tflx` (a packaged flow, with its input files).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file_type: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn default_true() -> bool {
    true
}

fn default_one() -> u32 {
    1
}

/// What a permission rule or subscription points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    /// `project`, `workbook`, `datasource`, `view`, `flow`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// Who a permission rule is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GranteeRef {
    /// `user` or `group`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Mode {
    Allow,
    Deny,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Allow => "Allow",
            Mode::Deny => "Deny",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "Allow" => Some(Mode::Allow),
            "Deny" => Some(Mode::Deny),
            _ => None,
        }
    }
}

/// Explicit capabilities one grantee has on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRule {
    pub resource: ResourceRef,
    pub grantee: GranteeRef,
    pub capabilities: BTreeMap<String, Mode>,
}

/// Extension: a project's default permissions for one content type
/// (`workbooks`, `datasources`, `flows`, `metrics`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultPermissionRule {
    pub project_id: String,
    pub content_type: String,
    pub grantee: GranteeRef,
    pub capabilities: BTreeMap<String, Mode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub user_id: String,
    pub content: ResourceRef,
    pub subject: String,
    /// Extension: schedule id (Server) or a frequency word (Cloud).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// Extension: Tableau suspended it after repeated failures (REST `suspended`, 3.9+).
    /// Left out when false, so existing snapshots keep their bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
}

/// Extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    /// e.g. `workbook-deleted` (the part after `webhook-source-event-`).
    pub event: String,
    pub url: String,
    pub owner_id: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// Extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Favorite {
    pub user_id: String,
    pub label: String,
    pub content: ResourceRef,
}

/// Extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataAlert {
    pub id: String,
    pub subject: String,
    pub owner_id: String,
    pub view_id: String,
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// Extension: when a schedule (or a Cloud task's own schedule) runs: REST `frequency` and
/// `<frequencyDetails start end><intervals><interval .../></intervals></frequencyDetails>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// `Hourly`, `Daily`, `Weekly` or `Monthly`.
    pub frequency: String,
    /// `HH:MM:SS`, the server's local time.
    pub start_time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end_time: String,
    /// Interval attributes in order, e.g. `[["weekDay", "Monday"]]` or `[["hours", "24"]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<(String, String)>,
}

impl Recurrence {
    /// The start hour (0-23), when the start time reads as `HH:...`.
    pub fn start_hour(&self) -> Option<u32> {
        self.start_time.split(':').next().and_then(|h| h.parse().ok()).filter(|h| *h < 24)
    }
}

/// Extension: a Server schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    /// `Extract`, `Subscription` or `Flow`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Active` or `Suspended`.
    pub state: String,
    /// 1 (highest) to 100.
    pub priority: u32,
    /// `Parallel` or `Serial`.
    pub execution_order: String,
    #[serde(flatten)]
    pub recurrence: Recurrence,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Extension: an extract refresh task, on a Server schedule (`schedule_id`) or, Cloud style,
/// with a schedule of its own (`own_schedule`, `schedule_id` empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractRefresh {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_schedule: Option<Recurrence>,
    /// A `workbook` or a `datasource`.
    pub target: ResourceRef,
    pub priority: u32,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// `FullRefresh` or `IncrementalRefresh`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<DateTime<Utc>>,
}

/// Extension: one finished extract refresh job (REST `backgroundJob`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshJob {
    pub id: String,
    /// The task that ran it (empty for a refresh run by hand).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    pub target: ResourceRef,
    pub created_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// 0 success, 1 failed, 2 cancelled (REST `finishCode`).
    pub finish_code: u8,
    /// The failure's message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// Errors loading a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is not JSON or misses required fields.
    #[error("not a valid tabflow-site/1 document: {0}")]
    Json(#[from] serde_json::Error),
    /// The `format` field names another format or version.
    #[error("unsupported snapshot format {found:?}; this tabflow reads {FORMAT:?}")]
    Format { found: String },
    /// An id is used twice, or a reference points at nothing.
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
}

impl Site {
    /// Parses and checks a snapshot (format, unique ids, references).
    pub fn from_json(text: &str) -> Result<Site, Error> {
        let probe: serde_json::Value = serde_json::from_str(text)?;
        let found = probe.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if found != FORMAT {
            return Err(Error::Format { found: found.to_string() });
        }
        let site: Site = serde_json::from_value(probe)?;
        site.check()?;
        Ok(site)
    }

    /// Pretty JSON with a trailing newline. Field order is fixed, so equal sites give equal bytes.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("site serializes");
        s.push('\n');
        s
    }

    /// Writes the same bytes as [`Site::to_json`] without building the string in memory.
    pub fn write_json<W: std::io::Write>(&self, w: W) -> std::io::Result<()> {
        use std::io::Write;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, w);
        serde_json::to_writer_pretty(&mut w, self).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    /// Referential checks: unique ids, owners/projects/members/grantees that exist.
    pub fn check(&self) -> Result<(), Error> {
        use std::collections::HashSet;
        let mut problems = Vec::new();
        let mut ids = HashSet::new();
        let mut dup = |kind: &str, id: &str, problems: &mut Vec<String>| {
            if !ids.insert(id.to_string()) {
                problems.push(format!("{kind} id {id} is used twice"));
            }
        };
        for u in &self.users {
            dup("user", &u.id, &mut problems);
        }
        for g in &self.groups {
            dup("group", &g.id, &mut problems);
        }
        for p in &self.projects {
            dup("project", &p.id, &mut problems);
        }
        for d in &self.datasources {
            dup("datasource", &d.id, &mut problems);
        }
        for w in &self.workbooks {
            dup("workbook", &w.id, &mut problems);
            for v in &w.views {
                dup("view", &v.id, &mut problems);
            }
        }
        for f in &self.flows {
            dup("flow", &f.id, &mut problems);
        }
        let users: HashSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        let groups: HashSet<&str> = self.groups.iter().map(|g| g.id.as_str()).collect();
        let projects: HashSet<&str> = self.projects.iter().map(|p| p.id.as_str()).collect();
        let datasources: HashSet<&str> = self.datasources.iter().map(|d| d.id.as_str()).collect();
        for g in &self.groups {
            for m in &g.members {
                if !users.contains(m.as_str()) {
                    problems.push(format!("group {} lists unknown member {m}", g.name));
                }
            }
        }
        for p in &self.projects {
            if let Some(parent) = &p.parent_id
                && !projects.contains(parent.as_str())
            {
                problems.push(format!("project {} has unknown parent {parent}", p.name));
            }
            if !users.contains(p.owner_id.as_str()) {
                problems.push(format!("project {} has unknown owner {}", p.name, p.owner_id));
            }
        }
        for d in &self.datasources {
            if !projects.contains(d.project_id.as_str()) {
                problems.push(format!("datasource {} is in unknown project {}", d.name, d.project_id));
            }
            if !users.contains(d.owner_id.as_str()) {
                problems.push(format!("datasource {} has unknown owner {}", d.name, d.owner_id));
            }
        }
        for w in &self.workbooks {
            if !projects.contains(w.project_id.as_str()) {
                problems.push(format!("workbook {} is in unknown project {}", w.name, w.project_id));
            }
            if !users.contains(w.owner_id.as_str()) {
                problems.push(format!("workbook {} has unknown owner {}", w.name, w.owner_id));
            }
            for ds in &w.datasource_ids {
                if !datasources.contains(ds.as_str()) {
                    problems.push(format!("workbook {} uses unknown datasource {ds}", w.name));
                }
            }
        }
        for f in &self.flows {
            if !projects.contains(f.project_id.as_str()) {
                problems.push(format!("flow {} is in unknown project {}", f.name, f.project_id));
            }
            if !users.contains(f.owner_id.as_str()) {
                problems.push(format!("flow {} has unknown owner {}", f.name, f.owner_id));
            }
        }
        for r in &self.permissions {
            let ok = match r.grantee.kind.as_str() {
                "user" => users.contains(r.grantee.id.as_str()),
                "group" => groups.contains(r.grantee.id.as_str()),
                _ => false,
            };
            if !ok {
                problems.push(format!("permission rule names unknown grantee {} {}", r.grantee.kind, r.grantee.id));
            }
        }
        for s in &self.subscriptions {
            if !users.contains(s.user_id.as_str()) {
                problems.push(format!("subscription {} has unknown user {}", s.id, s.user_id));
            }
        }
        let schedules: HashSet<&str> = self.schedules.iter().map(|s| s.id.as_str()).collect();
        if schedules.len() != self.schedules.len() {
            problems.push("a schedule id is used twice".to_string());
        }
        let mut tasks = HashSet::new();
        for t in &self.extract_refreshes {
            if !tasks.insert(t.id.as_str()) {
                problems.push(format!("extract refresh task id {} is used twice", t.id));
            }
            if t.schedule_id.is_empty() && t.own_schedule.is_none() {
                problems.push(format!("extract refresh task {} has neither a schedule id nor a schedule", t.id));
            }
            if !t.schedule_id.is_empty() && !schedules.contains(t.schedule_id.as_str()) {
                problems.push(format!("extract refresh task {} has unknown schedule {}", t.id, t.schedule_id));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            if problems.len() > 20 {
                let more = problems.len() - 20;
                problems.truncate(20);
                problems.push(format!("... and {more} more"));
            }
            Err(Error::Inconsistent(problems.join("; ")))
        }
    }

    /// Moves every timestamp by the same amount so that `now` becomes `new_now`
    /// (DESIGN.md §4: a loaded site is presented as of the moment it was loaded).
    pub fn shift_time_to(&mut self, new_now: DateTime<Utc>) {
        let delta = new_now - self.now;
        // A snapshot's dates come from a file: a shift past chrono's range saturates.
        let sh = |t: &mut DateTime<Utc>| *t = crate::time::plus(*t, delta);
        let sho = |t: &mut Option<DateTime<Utc>>| {
            if let Some(t) = t {
                *t = crate::time::plus(*t, delta);
            }
        };
        self.now = new_now;
        for u in &mut self.users {
            sho(&mut u.last_login);
        }
        for p in &mut self.projects {
            sho(&mut p.created_at);
            sho(&mut p.updated_at);
        }
        for d in &mut self.datasources {
            sh(&mut d.updated_at);
            sho(&mut d.created_at);
            sho(&mut d.last_accessed_at);
        }
        for w in &mut self.workbooks {
            sh(&mut w.created_at);
            sh(&mut w.updated_at);
            for v in &mut w.views {
                sho(&mut v.last_viewed_at);
            }
        }
        for f in &mut self.flows {
            sh(&mut f.created_at);
            sh(&mut f.updated_at);
        }
        for s in &mut self.schedules {
            sh(&mut s.created_at);
            sh(&mut s.updated_at);
        }
        for t in &mut self.extract_refreshes {
            sho(&mut t.last_run_at);
        }
        for j in &mut self.refresh_jobs {
            sh(&mut j.created_at);
            sh(&mut j.started_at);
            sh(&mut j.completed_at);
        }
    }
}

impl Workbook {
    /// Sum of the views' view counts.
    pub fn total_views(&self) -> u64 {
        self.views.iter().map(|v| v.total_views).sum()
    }

    /// The most recent view access, if any view was ever viewed.
    pub fn last_viewed_at(&self) -> Option<DateTime<Utc>> {
        self.views.iter().filter_map(|v| v.last_viewed_at).max()
    }
}
