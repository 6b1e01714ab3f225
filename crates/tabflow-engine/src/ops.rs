//! The typed reading of a plan's changes, the live image of an item, and the calls that
//! apply, check and undo each change.
//!
//! Every operation is a pair of states (before, after) of one field of one item. That one
//! shape gives the executor its safety rules for free:
//! - live == after → already applied (resume after a crash, or a lost response);
//! - live == before → apply;
//! - anything else → someone else changed it (drift): do not touch, report.
//!
//! Rollback is the same operation with before and after swapped — except a repoint, whose
//! rollback republishes the file saved before it (the executor keeps it in the store).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tabflow_client::{
    Capability, Client, ContentKind, DatasourceUpdate, FlowUpdate, Grantee, ProjectUpdate, WorkbookUpdate,
};
use tabflow_site::Mode;
use tabflow_wire::ids::{DatasourceId, FlowId, GroupId, ProjectId, SubscriptionId, UserId, WorkbookId};

use crate::plan::Change;

/// What went wrong applying or reading an operation.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Client(#[from] tabflow_client::Error),
    #[error("the plan's change is not one tabflow can execute: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Missing(String),
}

pub type OpResult<T> = Result<T, OpError>;

/// One permission rule as plans write it: a grantee and its capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Rule {
    pub grantee: GranteeRef,
    pub capabilities: BTreeMap<String, Mode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
pub struct GranteeRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Rules → the client's flat capability list.
pub fn capabilities(rules: &[Rule]) -> Vec<Capability> {
    let mut out = vec![];
    for r in rules {
        let g = if r.grantee.kind == "group" {
            Grantee::Group(r.grantee.id.clone())
        } else {
            Grantee::User(r.grantee.id.clone())
        };
        for (name, mode) in &r.capabilities {
            out.push(Capability { grantee: g.clone(), name: name.clone(), mode: *mode });
        }
    }
    out.sort();
    out
}

/// The client's capability list → rules (grantee names left empty).
pub fn rules(caps: &[Capability]) -> Vec<Rule> {
    let mut by: BTreeMap<(String, String), BTreeMap<String, Mode>> = BTreeMap::new();
    for c in caps {
        by.entry((c.grantee.kind().to_string(), c.grantee.id().to_string()))
            .or_default()
            .insert(c.name.clone(), c.mode);
    }
    by.into_iter()
        .map(|((kind, id), capabilities)| Rule { grantee: GranteeRef { kind, id, name: String::new() }, capabilities })
        .collect()
}

/// The live state of an item, as far as tabflow changes or restores it. This is also the
/// before-image the journal keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Image {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeSet<String>>,
    /// Explicit permission rules (read only when a change can affect them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Capability2>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_permissions: Option<String>,
    /// Subscriptions that reference the item (content items) or belong to it (users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<Vec<Value>>,
    /// Content URLs of the published datasources a workbook's file points at (read only when
    /// a repoint needs them: it costs a download).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasources: Option<BTreeSet<String>>,
    /// A user's account details (what re-creating the account restores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_setting: Option<String>,
    /// A user's explicit grants, read before the account is deleted:
    /// `[{"type", "id", "capabilities": {Name: Allow|Deny}}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<Value>>,
    /// A user's favorites, read before the account is deleted: `[{"label", "type", "id"}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favorites: Option<Vec<Value>>,
    /// What re-publishing a purged item from its saved file has to put back, read before a
    /// staged delete: `{"description", "show_tabs" (workbooks), "certified",
    /// "certification_note" (datasources), "views": [{"name", "permissions"}]` (workbooks with
    /// tabs hidden, whose views carry their own permissions)}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Value>,
}

/// A published datasource as a repoint names it: the id for people and the validator, the
/// content URL the workbook file refers to, and the display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasourceRef {
    pub id: String,
    pub content_url: String,
    #[serde(default)]
    pub name: String,
}

/// A capability in a serializable form (the client's type carries no serde).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Capability2 {
    pub grantee_type: String,
    pub grantee_id: String,
    pub name: String,
    pub mode: Mode,
}

impl From<&Capability> for Capability2 {
    fn from(c: &Capability) -> Self {
        Capability2 {
            grantee_type: c.grantee.kind().into(),
            grantee_id: c.grantee.id().into(),
            name: c.name.clone(),
            mode: c.mode,
        }
    }
}

impl From<&Capability2> for Capability {
    fn from(c: &Capability2) -> Self {
        let g = if c.grantee_type == "group" {
            Grantee::Group(c.grantee_id.clone())
        } else {
            Grantee::User(c.grantee_id.clone())
        };
        Capability { grantee: g, name: c.name.clone(), mode: c.mode }
    }
}

fn caps2(c: &[Capability]) -> Vec<Capability2> {
    let mut v: Vec<Capability2> = c.iter().map(Capability2::from).collect();
    v.sort();
    v
}

/// A typed change.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Move content (or a project: its parent) to another project.
    Project {
        before: Option<String>,
        after: Target,
    },
    Owner {
        before: String,
        after: String,
    },
    Name {
        before: String,
        after: String,
    },
    /// Tags: the plan's full before and after sets. Only the difference is written, so tags
    /// someone else adds meanwhile are left alone.
    Tags {
        before: BTreeSet<String>,
        after: BTreeSet<String>,
    },
    Permissions {
        before: Vec<Capability>,
        after: Vec<Capability>,
    },
    ContentPermissions {
        before: String,
        after: String,
    },
    SiteRole {
        before: String,
        after: String,
    },
    /// Group membership of a user (group ids).
    Groups {
        before: BTreeSet<String>,
        after: BTreeSet<String>,
    },
    /// A project that does not exist yet and is created by the step.
    CreateProject {
        name: String,
        parent_id: Option<String>,
        content_permissions: Option<String>,
    },
    /// A subscription that exists and is deleted (its description kept to re-create it).
    DeleteSubscription {
        subscription: Value,
    },
    /// A workbook's connection to a published datasource, moved to another one: download
    /// the file, rewrite the `sqlproxy` connection, republish with overwrite.
    Repoint {
        before: DatasourceRef,
        after: DatasourceRef,
    },
    /// A user account removed from the site (`DELETE /users/{id}?mapAssetsTo=…`) — never
    /// while it owns content: the ownership is read again right before the call. `user` is the
    /// plan's description of the account (`name`, `full_name`, `email`, `site_role`,
    /// `grants_on`: resources with explicit grants). The undo re-creates the account (a new
    /// id) with its details, subscriptions, explicit grants and favorites as read just before
    /// the deletion.
    DeleteUser {
        user: Value,
        map_assets_to: String,
    },
}

/// Where a move goes: a known project, or the project another step of the plan creates.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Id(String),
    CreatedBy { step: String, name: String },
}

fn set_of(v: &Value) -> OpResult<BTreeSet<String>> {
    match v {
        Value::Null => Ok(BTreeSet::new()),
        Value::Array(a) => Ok(a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()),
        _ => Err(OpError::Unsupported(format!("expected a list, got {v}"))),
    }
}

fn ids_of(v: &Value) -> OpResult<BTreeSet<String>> {
    match v {
        Value::Null => Ok(BTreeSet::new()),
        Value::Array(a) => Ok(a
            .iter()
            .filter_map(|x| x.get("id").and_then(Value::as_str).or_else(|| x.as_str()).map(str::to_string))
            .collect()),
        _ => Err(OpError::Unsupported(format!("expected a list of groups, got {v}"))),
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

fn rules_of(v: &Value) -> OpResult<Vec<Capability>> {
    let r: Vec<Rule> = serde_json::from_value(v.clone())
        .map_err(|e| OpError::Unsupported(format!("permission rules are malformed: {e}")))?;
    Ok(capabilities(&r))
}

impl Op {
    /// Reads a plan change of an item of type `kind`.
    pub fn from_change(kind: &str, c: &Change) -> OpResult<Op> {
        let need = |x: &Option<String>, what: &str| {
            x.clone().ok_or_else(|| OpError::Unsupported(format!("change of '{}' on {} lacks {what}", c.field, c.item)))
        };
        Ok(match (kind, c.field.as_str()) {
            ("workbook" | "datasource" | "project" | "flow", "project") => Op::Project {
                before: c.before_id.clone(),
                after: match (&c.after_id, &c.after_ref) {
                    (Some(id), _) => Target::Id(id.clone()),
                    (None, Some(step)) => Target::CreatedBy { step: step.clone(), name: str_of(&c.after) },
                    (None, None) => return Err(OpError::Unsupported(format!("move of {} has no target id", c.item))),
                },
            },
            ("workbook" | "datasource" | "project" | "flow", "owner") => {
                Op::Owner { before: need(&c.before_id, "before_id")?, after: need(&c.after_id, "after_id")? }
            }
            ("workbook" | "datasource" | "project", "name") => {
                Op::Name { before: str_of(&c.before), after: str_of(&c.after) }
            }
            ("workbook" | "datasource" | "flow", "tags") => {
                Op::Tags { before: set_of(&c.before)?, after: set_of(&c.after)? }
            }
            ("workbook" | "datasource" | "project" | "flow", "permissions") => {
                Op::Permissions { before: rules_of(&c.before)?, after: rules_of(&c.after)? }
            }
            ("project", "content_permissions") => {
                Op::ContentPermissions { before: str_of(&c.before), after: str_of(&c.after) }
            }
            ("project", "exists") if c.before.is_null() || c.before == Value::Bool(false) => Op::CreateProject {
                name: c.after.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                parent_id: c.after.get("parent_id").and_then(Value::as_str).map(str::to_string),
                content_permissions: c.after.get("content_permissions").and_then(Value::as_str).map(str::to_string),
            },
            ("user", "exists") if c.before.is_object() && c.after.is_null() => {
                Op::DeleteUser { user: c.before.clone(), map_assets_to: need(&c.after_id, "after_id (mapAssetsTo)")? }
            }
            ("user", "site_role") => Op::SiteRole { before: str_of(&c.before), after: str_of(&c.after) },
            ("user", "groups") => Op::Groups { before: ids_of(&c.before)?, after: ids_of(&c.after)? },
            ("subscription", "exists") if !c.before.is_null() && c.after.is_null() => {
                Op::DeleteSubscription { subscription: c.before.clone() }
            }
            ("workbook", "datasource") => {
                let read = |v: &Value, what: &str| {
                    serde_json::from_value::<DatasourceRef>(v.clone()).map_err(|e| {
                        OpError::Unsupported(format!("the {what} datasource of {} is malformed: {e}", c.item))
                    })
                };
                Op::Repoint { before: read(&c.before, "current")?, after: read(&c.after, "new")? }
            }
            (k, f) => return Err(OpError::Unsupported(format!("field '{f}' of a {k}"))),
        })
    }

    /// Whether reading the item's explicit permissions is needed to check or undo this op.
    pub fn needs_permissions(&self) -> bool {
        matches!(self, Op::Permissions { .. } | Op::ContentPermissions { .. })
    }

    /// Whether checking this op needs the workbook's file (its datasource references), and
    /// undoing it the file saved before it.
    pub fn needs_file(&self) -> bool {
        matches!(self, Op::Repoint { .. })
    }

    /// Whether checking or undoing this op needs the account's details, subscriptions, grants
    /// and favorites (read before a deletion).
    pub fn needs_account(&self) -> bool {
        matches!(self, Op::DeleteUser { .. })
    }

    /// The op with user ids replaced: after an undo re-created a deleted account, the earlier
    /// steps' undos (owners, grants, group memberships) refer to its new id.
    pub fn remap_users(&self, map: &HashMap<String, String>) -> Op {
        if map.is_empty() {
            return self.clone();
        }
        let id = |x: &String| map.get(x).cloned().unwrap_or_else(|| x.clone());
        let caps = |v: &[Capability]| -> Vec<Capability> {
            let mut out: Vec<Capability> = v
                .iter()
                .map(|c| match &c.grantee {
                    Grantee::User(u) => Capability { grantee: Grantee::User(id(u)), ..c.clone() },
                    Grantee::Group(_) => c.clone(),
                })
                .collect();
            out.sort();
            out
        };
        match self {
            Op::Owner { before, after } => Op::Owner { before: id(before), after: id(after) },
            Op::Permissions { before, after } => Op::Permissions { before: caps(before), after: caps(after) },
            Op::DeleteSubscription { subscription } => {
                let mut s = subscription.clone();
                if let Some(u) = s.get("user_id").and_then(Value::as_str).and_then(|u| map.get(u)) {
                    s["user_id"] = json!(u);
                }
                Op::DeleteSubscription { subscription: s }
            }
            other => other.clone(),
        }
    }

    /// The same change, reversed (for compensation). `created` is the id a create produced.
    pub fn inverse(&self, resolved_after: Option<&str>) -> Option<Op> {
        Some(match self {
            Op::Project { before, after } => Op::Project {
                before: resolved_after.map(str::to_string).or(match after {
                    Target::Id(id) => Some(id.clone()),
                    Target::CreatedBy { .. } => None,
                }),
                after: Target::Id(before.clone()?),
            },
            Op::Owner { before, after } => Op::Owner { before: after.clone(), after: before.clone() },
            Op::Name { before, after } => Op::Name { before: after.clone(), after: before.clone() },
            Op::Tags { before, after } => Op::Tags { before: after.clone(), after: before.clone() },
            Op::Permissions { before, after } => Op::Permissions { before: after.clone(), after: before.clone() },
            Op::ContentPermissions { before, after } => {
                Op::ContentPermissions { before: after.clone(), after: before.clone() }
            }
            Op::SiteRole { before, after } => Op::SiteRole { before: after.clone(), after: before.clone() },
            Op::Groups { before, after } => Op::Groups { before: after.clone(), after: before.clone() },
            Op::Repoint { before, after } => Op::Repoint { before: after.clone(), after: before.clone() },
            Op::CreateProject { .. } | Op::DeleteSubscription { .. } | Op::DeleteUser { .. } => return None,
        })
    }
}

/// Where the live state of one op stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Before,
    After,
    /// Neither: someone else changed it.
    Drifted,
}

/// Classifies the live image against an op. `target` is the resolved id of a move target.
pub fn classify(op: &Op, live: &Image, target: Option<&str>) -> State {
    let pick = |is_before: bool, is_after: bool| {
        if is_after {
            State::After
        } else if is_before {
            State::Before
        } else {
            State::Drifted
        }
    };
    match op {
        Op::CreateProject { .. } => {
            if live.exists {
                State::After
            } else {
                State::Before
            }
        }
        Op::DeleteSubscription { .. } => {
            if live.exists {
                State::Before
            } else {
                State::After
            }
        }
        Op::DeleteUser { .. } => {
            if live.exists {
                State::Before
            } else {
                State::After
            }
        }
        _ if !live.exists => State::Drifted,
        Op::Project { before, after } => {
            let now = live.project_id.as_deref().or(live.parent_id.as_deref());
            let after_id = match after {
                Target::Id(id) => Some(id.as_str()),
                Target::CreatedBy { .. } => target,
            };
            pick(now == before.as_deref(), after_id.is_some() && now == after_id)
        }
        Op::Owner { before, after } => {
            let now = live.owner_id.as_deref();
            pick(now == Some(before), now == Some(after))
        }
        Op::Name { before, after } => {
            let now = live.name.as_deref();
            pick(now == Some(before), now == Some(after))
        }
        Op::Tags { before, after } => {
            let now = live.tags.clone().unwrap_or_default();
            let added: Vec<&String> = after.difference(before).collect();
            let removed: Vec<&String> = before.difference(after).collect();
            let applied = added.iter().all(|t| now.contains(*t)) && removed.iter().all(|t| !now.contains(*t));
            let untouched = added.iter().all(|t| !now.contains(*t)) && removed.iter().all(|t| now.contains(*t));
            pick(untouched, applied)
        }
        Op::Permissions { before, after } => {
            let now: BTreeSet<Capability> =
                live.permissions.as_ref().map(|p| p.iter().map(Capability::from).collect()).unwrap_or_default();
            let b: BTreeSet<Capability> = before.iter().cloned().collect();
            let a: BTreeSet<Capability> = after.iter().cloned().collect();
            pick(now == b, now == a)
        }
        Op::ContentPermissions { before, after } => {
            let now = live.content_permissions.as_deref();
            pick(now == Some(before), now == Some(after))
        }
        Op::SiteRole { before, after } => {
            let now = live.site_role.as_deref();
            pick(now == Some(before), now == Some(after))
        }
        Op::Groups { before, after } => {
            let now = live.groups.clone().unwrap_or_default();
            // Only the memberships this op changes are compared.
            let changed: BTreeSet<&String> = before.symmetric_difference(after).collect();
            let is = |set: &BTreeSet<String>| changed.iter().all(|g| now.contains(*g) == set.contains(*g));
            pick(is(before), is(after))
        }
        Op::Repoint { before, after } => {
            let now = live.datasources.clone().unwrap_or_default();
            let uses_before = now.contains(&before.content_url);
            pick(uses_before, !uses_before && now.contains(&after.content_url))
        }
    }
}

fn content_kind(kind: &str) -> OpResult<ContentKind> {
    ContentKind::parse(kind).ok_or_else(|| OpError::Unsupported(format!("items of type '{kind}'")))
}

/// Reads the live image of an item. `with_permissions` adds the explicit permission rules
/// (one more call).
pub async fn read_image(client: &Client, kind: &str, id: &str, with_permissions: bool) -> OpResult<Image> {
    let mut img = Image { kind: kind.into(), id: id.into(), exists: true, ..Image::default() };
    let not_found = |e: &tabflow_client::Error| e.status() == Some(404);
    match kind {
        "workbook" => match client.workbook(&WorkbookId::new(id)).await {
            Ok(w) => fill_content(&mut img, w.name, w.project, w.owner, w.tags, w.updated_at),
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "datasource" => match client.datasource(&DatasourceId::new(id)).await {
            Ok(d) => fill_content(&mut img, d.name, d.project, d.owner, d.tags, d.updated_at),
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "flow" => match client.flow(&FlowId::new(id)).await {
            Ok(f) => fill_content(&mut img, f.name, f.project, f.owner, f.tags, f.updated_at),
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "project" => match find_project(client, id).await? {
            Some(p) => {
                img.name = p.name;
                img.parent_id = p.parent_project_id.filter(|x| !x.is_empty());
                img.owner_id = p.owner.and_then(|o| o.id);
                img.content_permissions = p.content_permissions;
                img.updated_at = p.updated_at;
            }
            None => return Ok(Image { exists: false, ..img }),
        },
        "user" => match client.user(&UserId::new(id)).await {
            Ok(u) => {
                img.name = u.name;
                img.site_role = u.site_role;
                img.full_name = u.full_name;
                img.email = u.email;
                img.auth_setting = u.auth_setting;
                let groups = client.user_groups(&UserId::new(id)).collect().await?;
                img.groups = Some(groups.into_iter().filter_map(|g| g.id).collect());
            }
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "subscription" => {
            let subs = client.subscriptions().collect().await?;
            img.exists = subs.iter().any(|s| s.id.as_deref() == Some(id));
        }
        other => return Err(OpError::Unsupported(format!("items of type '{other}'"))),
    }
    if with_permissions && matches!(kind, "workbook" | "datasource" | "project" | "flow") {
        let caps = client.permissions(content_kind(kind)?, id).await?;
        img.permissions = Some(caps2(&caps));
    }
    Ok(img)
}

fn fill_content(
    img: &mut Image,
    name: Option<String>,
    project: Option<tabflow_wire::xml::IdRef>,
    owner: Option<tabflow_wire::xml::IdRef>,
    tags: Option<tabflow_wire::xml::Tags>,
    updated_at: Option<String>,
) {
    img.name = name;
    img.project_id = project.and_then(|p| p.id);
    img.owner_id = owner.and_then(|o| o.id);
    img.tags = Some(tags.map(|t| t.labels()).unwrap_or_default().into_iter().collect());
    img.updated_at = updated_at;
}

/// Projects have no GET by id in the REST API: list and pick.
pub async fn find_project(client: &Client, id: &str) -> OpResult<Option<tabflow_wire::xml::Project>> {
    let all = client.projects().collect().await?;
    Ok(all.into_iter().find(|p| p.id.as_deref() == Some(id)))
}

/// Applies one op; answers the id it created, if any.
pub async fn apply(client: &Client, kind: &str, id: &str, op: &Op, target: Option<&str>) -> OpResult<Option<String>> {
    match op {
        Op::Project { after, .. } => {
            let to = match after {
                Target::Id(x) => x.clone(),
                Target::CreatedBy { name, step } => target
                    .map(str::to_string)
                    .ok_or_else(|| OpError::Missing(format!("project '{name}' from step {step} does not exist")))?,
            };
            match kind {
                "workbook" => {
                    let u = WorkbookUpdate { project_id: Some(ProjectId::new(to)), ..Default::default() };
                    client.update_workbook(&WorkbookId::new(id), &u).await?;
                }
                "datasource" => {
                    let u = DatasourceUpdate { project_id: Some(ProjectId::new(to)), ..Default::default() };
                    client.update_datasource(&DatasourceId::new(id), &u).await?;
                }
                "flow" => {
                    let u = FlowUpdate { project_id: Some(ProjectId::new(to)), ..Default::default() };
                    client.update_flow(&FlowId::new(id), &u).await?;
                }
                _ => {
                    let u = ProjectUpdate { parent_id: Some(Some(ProjectId::new(to))), ..Default::default() };
                    client.update_project(&ProjectId::new(id), &u).await?;
                }
            }
        }
        Op::Owner { after, .. } => match kind {
            "workbook" => {
                let u = WorkbookUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_workbook(&WorkbookId::new(id), &u).await?;
            }
            "datasource" => {
                let u = DatasourceUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_datasource(&DatasourceId::new(id), &u).await?;
            }
            "flow" => {
                let u = FlowUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_flow(&FlowId::new(id), &u).await?;
            }
            _ => {
                let u = ProjectUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_project(&ProjectId::new(id), &u).await?;
            }
        },
        Op::Name { after, .. } => match kind {
            "workbook" => {
                let u = WorkbookUpdate { name: Some(after.clone()), ..Default::default() };
                client.update_workbook(&WorkbookId::new(id), &u).await?;
            }
            "datasource" => {
                let u = DatasourceUpdate { name: Some(after.clone()), ..Default::default() };
                client.update_datasource(&DatasourceId::new(id), &u).await?;
            }
            _ => {
                let u = ProjectUpdate { name: Some(after.clone()), ..Default::default() };
                client.update_project(&ProjectId::new(id), &u).await?;
            }
        },
        Op::Tags { before, after } => {
            let k = content_kind(kind)?;
            let add: Vec<String> = after.difference(before).cloned().collect();
            if !add.is_empty() {
                client.add_tags(k, id, &add).await?;
            }
            for t in before.difference(after) {
                match client.delete_tag(k, id, t).await {
                    Ok(()) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Op::Permissions { after, .. } => {
            client.set_permissions(content_kind(kind)?, id, after).await?;
        }
        Op::ContentPermissions { after, .. } => {
            let u = ProjectUpdate { content_permissions: Some(after.clone()), ..Default::default() };
            client.update_project(&ProjectId::new(id), &u).await?;
        }
        Op::SiteRole { after, .. } => client.set_site_role(&UserId::new(id), after).await?,
        Op::Groups { before, after } => {
            for g in after.difference(before) {
                client.add_group_member(&GroupId::new(g), &UserId::new(id)).await?;
            }
            for g in before.difference(after) {
                match client.remove_group_member(&GroupId::new(g), &UserId::new(id)).await {
                    Ok(()) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Op::CreateProject { name, parent_id, content_permissions } => {
            let p = client
                .create_project(name, parent_id.as_ref().map(ProjectId::new).as_ref(), content_permissions.as_deref())
                .await?;
            return Ok(p.id);
        }
        Op::DeleteSubscription { .. } => match client.delete_subscription(&SubscriptionId::new(id)).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        },
        Op::DeleteUser { user, map_assets_to } => {
            // Never while the account owns content: Tableau would hand it to `mapAssetsTo`
            // without the per-item choice of owner the plan made.
            let owned = owned_by(client, id).await?;
            if !owned.is_empty() {
                let name = user.get("name").and_then(Value::as_str).unwrap_or(id);
                return Err(OpError::Missing(format!(
                    "{name} still owns {} ({}); tabflow never deletes an account that owns content — transfer it first (re-plan the offboarding)",
                    owned.len(),
                    owned.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            client.delete_user(&UserId::new(id), Some(&UserId::new(map_assets_to))).await?;
        }
        Op::Repoint { before, after } => {
            let wid = WorkbookId::new(id);
            let (filename, bytes) = client.download_workbook(&wid, true).await?;
            let to =
                tabflow_wire::twb::PublishedRef { content_url: after.content_url.clone(), name: after.name.clone() };
            // A .twbx comes back packed again: the rewritten .twb, every other entry as it was.
            let (filename, new) =
                tabflow_wire::twb::repoint_file(&filename, &bytes, &before.content_url, &to).map_err(file_error)?;
            republish(client, id, &filename, &new).await?;
        }
    }
    Ok(None)
}

fn file_error(e: tabflow_wire::twb::Error) -> OpError {
    OpError::Unsupported(e.to_string())
}

/// Reads the published datasources a workbook's file points at into the image, when one of
/// the ops needs them (one download per workbook).
pub async fn fill_datasources(client: &Client, img: &mut Image, ops: &[Op]) -> OpResult<()> {
    if img.kind != "workbook" || !img.exists || !ops.iter().any(Op::needs_file) {
        return Ok(());
    }
    let (filename, bytes) = client.download_workbook(&WorkbookId::new(&img.id), false).await?;
    let doc = tabflow_wire::twb::document(&filename, &bytes).map_err(file_error)?;
    let refs = tabflow_wire::twb::published_datasources(&doc).map_err(file_error)?;
    img.datasources = Some(refs.into_iter().map(|r| r.content_url).collect());
    Ok(())
}

/// Reads what deleting an account loses and its undo restores — subscriptions, explicit
/// grants on the resources the plan names, favorites — into the image, when an op needs it.
pub async fn fill_account(client: &Client, img: &mut Image, ops: &[Op]) -> OpResult<()> {
    let Some(Op::DeleteUser { user, .. }) = ops.iter().find(|o| o.needs_account()) else { return Ok(()) };
    if img.kind != "user" || !img.exists {
        return Ok(());
    }
    let uid = UserId::new(&img.id);
    let subs = client.subscriptions().collect().await?;
    img.subscriptions = Some(
        subs.iter()
            .filter(|s| s.user.as_ref().and_then(|u| u.id.as_deref()) == Some(img.id.as_str()))
            .map(subscription_value)
            .collect(),
    );
    let mut grants = vec![];
    for r in user.get("grants_on").and_then(Value::as_array).into_iter().flatten() {
        let (Some(kind), Some(id)) = (r.get("type").and_then(Value::as_str), r.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let Some(k) = ContentKind::parse(kind) else { continue };
        let caps = match client.permissions(k, id).await {
            Ok(c) => c,
            Err(e) if e.status() == Some(404) => continue,
            Err(e) => return Err(e.into()),
        };
        let mine: BTreeMap<String, Mode> = caps
            .iter()
            .filter(|c| matches!(&c.grantee, Grantee::User(u) if *u == img.id))
            .map(|c| (c.name.clone(), c.mode))
            .collect();
        if !mine.is_empty() {
            grants.push(json!({"type": k.singular(), "id": id, "capabilities": mine}));
        }
    }
    img.grants = Some(grants);
    let favs = client.favorites(&uid).await?;
    img.favorites = Some(
        favs.iter()
            .filter_map(|f| f.content().map(|(kind, id)| json!({"label": f.label, "type": kind, "id": id})))
            .collect(),
    );
    Ok(())
}

/// What a user still owns, by name (workbooks, datasources, flows, projects), read from the site.
pub async fn owned_by(client: &Client, user_id: &str) -> OpResult<Vec<String>> {
    use tabflow_wire::filter::{Filter, Op as By};
    let u = client.user(&UserId::new(user_id)).await?;
    let name = u.name.unwrap_or_default();
    let by_owner = || Filter::new().and("ownerName", By::Eq, name.as_str());
    let mine = |o: &Option<tabflow_wire::xml::IdRef>| o.as_ref().and_then(|o| o.id.as_deref()) == Some(user_id);
    // Filtered lists come from Tableau's search index, which lags behind writes: what they
    // name is read again directly, so an item just handed over does not count. (An item the
    // index does not show yet is what `mapAssetsTo` is for.)
    let mut out = vec![];
    for w in client.workbooks().filter(by_owner()).collect().await? {
        let Some(id) = w.id else { continue };
        match client.workbook(&WorkbookId::new(&id)).await {
            Ok(now) if mine(&now.owner) => out.push(format!("workbook '{}'", now.name.unwrap_or_default())),
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for d in client.datasources().filter(by_owner()).collect().await? {
        let Some(id) = d.id else { continue };
        match client.datasource(&DatasourceId::new(&id)).await {
            Ok(now) if mine(&now.owner) => out.push(format!("datasource '{}'", now.name.unwrap_or_default())),
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for f in client.flows().filter(by_owner()).collect().await? {
        let Some(id) = f.id else { continue };
        match client.flow(&FlowId::new(&id)).await {
            Ok(now) if mine(&now.owner) => out.push(format!("flow '{}'", now.name.unwrap_or_default())),
            Ok(_) => {}
            Err(e) if matches!(e.status(), Some(404)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Projects have no GET by id: the whole list (small) is read without a filter.
    for p in client.projects().collect().await? {
        if mine(&p.owner) {
            out.push(format!("project '{}'", p.name.unwrap_or_default()));
        }
    }
    Ok(out)
}

/// Re-creates a deleted account from its before-image (or adopts the account of that name a
/// crashed earlier undo created), then restores its subscriptions, explicit grants and
/// favorites. Answers the account's new id.
pub async fn recreate_user(client: &Client, before: &Image, user: &Value) -> OpResult<String> {
    use tabflow_wire::filter::{Filter, Op as By};
    let name = before
        .name
        .clone()
        .or_else(|| user.get("name").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| OpError::Missing("the deleted account's name is not in the journal".into()))?;
    let existing = client.users().filter(Filter::new().and("name", By::Eq, name.as_str())).collect().await?;
    let id = match existing.into_iter().find(|u| u.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&name))) {
        Some(u) => u.id.ok_or_else(|| OpError::Missing(format!("the account '{name}' has no id")))?,
        None => {
            let text = |k: &str| user.get(k).and_then(Value::as_str).map(str::to_string);
            let u = tabflow_wire::xml::User {
                name: Some(name.clone()),
                site_role: before.site_role.clone().or_else(|| text("site_role")),
                auth_setting: before.auth_setting.clone(),
                full_name: before.full_name.clone().or_else(|| text("full_name")),
                email: before.email.clone().or_else(|| text("email")),
                ..tabflow_wire::xml::User::default()
            };
            client.add_user_like(&u).await?.id.ok_or_else(|| OpError::Missing("the new account has no id".into()))?
        }
    };
    let uid = UserId::new(&id);
    let live_subs = client.subscriptions().collect().await?;
    for s in before.subscriptions.iter().flatten() {
        let ctype = s.pointer("/content/type").and_then(Value::as_str).unwrap_or("workbook");
        let cid = s.pointer("/content/id").and_then(Value::as_str).unwrap_or_default();
        let subject = s.get("subject").and_then(Value::as_str).unwrap_or_default();
        let schedule = s.get("schedule").and_then(Value::as_str).unwrap_or_default();
        let there = live_subs.iter().any(|x| {
            x.user.as_ref().and_then(|u| u.id.as_deref()) == Some(id.as_str())
                && x.content.as_ref().is_some_and(|c| c.id == cid)
                && x.subject.as_deref() == Some(subject)
        });
        if !there {
            client.create_subscription(&uid, ctype, cid, subject, schedule).await?;
        }
    }
    for g in before.grants.iter().flatten() {
        let (Some(kind), Some(rid)) = (g.get("type").and_then(Value::as_str), g.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let Some(k) = ContentKind::parse(kind) else { continue };
        let caps: Vec<(String, Mode)> =
            serde_json::from_value::<BTreeMap<String, Mode>>(g.get("capabilities").cloned().unwrap_or_default())
                .map_err(|e| OpError::Missing(format!("a saved grant on {kind} {rid} is malformed: {e}")))?
                .into_iter()
                .collect();
        if !caps.is_empty() {
            client.add_permissions(k, rid, &Grantee::User(id.clone()), &caps).await?;
        }
    }
    for f in before.favorites.iter().flatten() {
        let (Some(kind), Some(fid)) = (f.get("type").and_then(Value::as_str), f.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let label = f.get("label").and_then(Value::as_str).unwrap_or_default();
        match client.add_favorite(&uid, label, kind, fid).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) || e.status() == Some(409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(id)
}

/// Reads what a staged delete would take with the content and a restore from the saved file
/// has to put back: description, tabs or certification, the views' own permissions (tabs
/// hidden), and the subscriptions on the item or one of its views (named, so a restore can
/// find the view again under its new id).
///
/// `subscriptions` is the site's subscription list, read once per run by the caller (listing
/// them per item would cost a full listing for each staged item).
pub async fn fill_for_restore(
    client: &Client,
    img: &mut Image,
    subscriptions: &[tabflow_wire::xml::Subscription],
) -> OpResult<()> {
    if !img.exists || !matches!(img.kind.as_str(), "workbook" | "datasource") {
        return Ok(());
    }
    let mut views: HashMap<String, String> = HashMap::new();
    if img.kind == "workbook" {
        let wid = WorkbookId::new(&img.id);
        let w = client.workbook(&wid).await?;
        let show_tabs = tabflow_wire::xml::parse_bool(w.show_tabs.as_deref()).unwrap_or(true);
        let mut own = vec![];
        for v in client.workbook_views(&wid, false).await? {
            let (Some(id), Some(name)) = (v.id, v.name) else { continue };
            if !show_tabs {
                let caps = client.permissions(ContentKind::View, &id).await?;
                if !caps.is_empty() {
                    own.push(json!({"name": name, "permissions": caps2(&caps)}));
                }
            }
            views.insert(id, name);
        }
        img.restore = Some(json!({"description": w.description, "show_tabs": show_tabs, "views": own}));
    } else {
        let d = client.datasource(&DatasourceId::new(&img.id)).await?;
        img.restore = Some(json!({
            "description": d.description,
            "certified": tabflow_wire::xml::parse_bool(d.is_certified.as_deref()).unwrap_or(false),
            "certification_note": d.certification_note,
        }));
    }
    img.subscriptions = Some(
        subscriptions
            .iter()
            .filter_map(|s| {
                let cid = s.content.as_ref().map(|c| c.id.as_str())?;
                let mut v = subscription_value(s);
                if cid == img.id {
                    Some(v)
                } else {
                    let name = views.get(cid)?;
                    v["view_name"] = json!(name);
                    Some(v)
                }
            })
            .collect(),
    );
    Ok(())
}

/// Re-publishes a purged item from the file saved before it was deleted, into its old project
/// under its old name, and puts back what the before-image holds: owner, tags, explicit
/// permissions, and the subscriptions on it (on views, matched by view name). Answers the new
/// id (Tableau gives a re-published item a new one) and what could not be put back.
///
/// With `adopt` (an earlier attempt of this rollback published it and was cut off before it
/// could record so), an item of that name already in the project is taken as the re-published
/// one instead of a name clash.
pub async fn restore_content(
    client: &Client,
    before: &Image,
    filename: &str,
    bytes: &[u8],
    adopt: bool,
) -> OpResult<(String, Vec<String>)> {
    use tabflow_wire::filter::{Filter, Op as By};
    let name = before.name.clone().ok_or_else(|| OpError::Missing("the journal has no name for it".into()))?;
    let project =
        before.project_id.clone().ok_or_else(|| OpError::Missing("the journal has no project for it".into()))?;
    let kind = content_kind(&before.kind)?;
    let clash = |e: &tabflow_client::Error| e.status() == Some(409);
    let extra = |k: &str| before.restore.as_ref().and_then(|r| r.get(k)).filter(|v| !v.is_null());
    let mut lost = vec![];
    let (id, views) = match before.kind.as_str() {
        "workbook" => {
            let w = match client.publish_workbook(&ProjectId::new(&project), &name, filename, bytes, false).await {
                Ok(w) => w,
                Err(e) if clash(&e) && adopt => {
                    let same =
                        client.workbooks().filter(Filter::new().and("name", By::Eq, name.as_str())).collect().await?;
                    let found = same.into_iter().find(|w| {
                        w.name.as_deref() == Some(name.as_str())
                            && w.project.as_ref().and_then(|p| p.id.as_deref()) == Some(project.as_str())
                    });
                    found.ok_or(OpError::Client(e))?
                }
                Err(e) if clash(&e) => {
                    return Err(OpError::Missing(format!(
                        "a workbook named '{name}' is in its old project again; rename or move that one, then run the rollback again"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let id = w.id.clone().ok_or_else(|| OpError::Missing("the re-published workbook has no id".into()))?;
            let views: HashMap<String, String> = match w.views {
                Some(v) => v.view.into_iter().filter_map(|v| Some((v.name?, v.id?))).collect(),
                None => client
                    .workbook_views(&WorkbookId::new(&id), false)
                    .await?
                    .into_iter()
                    .filter_map(|v| Some((v.name?, v.id?)))
                    .collect(),
            };
            let u = WorkbookUpdate {
                owner_id: before.owner_id.as_deref().map(UserId::new),
                description: extra("description").and_then(Value::as_str).map(str::to_string),
                show_tabs: extra("show_tabs").and_then(Value::as_bool),
                ..Default::default()
            };
            client.update_workbook(&WorkbookId::new(&id), &u).await?;
            for v in extra("views").and_then(Value::as_array).into_iter().flatten() {
                let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
                let caps: Vec<Capability2> =
                    serde_json::from_value(v.get("permissions").cloned().unwrap_or_default()).unwrap_or_default();
                match views.get(name) {
                    Some(vid) => {
                        let caps: Vec<Capability> = caps.iter().map(Capability::from).collect();
                        client.set_permissions(ContentKind::View, vid, &caps).await?;
                    }
                    None => lost.push(format!("the permissions of the view '{name}': the file has no such view")),
                }
            }
            (id, views)
        }
        "datasource" => {
            let d = match client.publish_datasource(&ProjectId::new(&project), &name, filename, bytes, false).await {
                Ok(d) => d,
                Err(e) if clash(&e) && adopt => {
                    let same =
                        client.datasources().filter(Filter::new().and("name", By::Eq, name.as_str())).collect().await?;
                    let found = same.into_iter().find(|d| {
                        d.name.as_deref() == Some(name.as_str())
                            && d.project.as_ref().and_then(|p| p.id.as_deref()) == Some(project.as_str())
                    });
                    found.ok_or(OpError::Client(e))?
                }
                Err(e) if clash(&e) => {
                    return Err(OpError::Missing(format!(
                        "a datasource named '{name}' is in its old project again; rename or move that one, then run the rollback again"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let id = d.id.clone().ok_or_else(|| OpError::Missing("the re-published datasource has no id".into()))?;
            let certified = extra("certified").and_then(Value::as_bool);
            let u = DatasourceUpdate {
                owner_id: before.owner_id.as_deref().map(UserId::new),
                description: extra("description").and_then(Value::as_str).map(str::to_string),
                certified,
                certification_note: if certified == Some(true) {
                    extra("certification_note").and_then(Value::as_str).map(str::to_string)
                } else {
                    None
                },
                ..Default::default()
            };
            client.update_datasource(&DatasourceId::new(&id), &u).await?;
            (id, HashMap::new())
        }
        other => return Err(OpError::Unsupported(format!("restoring items of type '{other}'"))),
    };
    let tags: Vec<String> = before.tags.iter().flatten().cloned().collect();
    if !tags.is_empty() {
        client.add_tags(kind, &id, &tags).await?;
    }
    if let Some(p) = &before.permissions {
        let caps: Vec<Capability> = p.iter().map(Capability::from).collect();
        client.set_permissions(kind, &id, &caps).await?;
    }
    // A retry must not subscribe anyone twice.
    let live_subs = if adopt { client.subscriptions().collect().await? } else { vec![] };
    for s in before.subscriptions.iter().flatten() {
        let user = s.get("user_id").and_then(Value::as_str).unwrap_or_default();
        let subject = s.get("subject").and_then(Value::as_str).unwrap_or_default();
        let schedule = s.get("schedule").and_then(Value::as_str).unwrap_or_default();
        let (ctype, cid) = match s.get("view_name").and_then(Value::as_str) {
            Some(v) => match views.get(v) {
                Some(vid) => ("view", vid.clone()),
                None => {
                    lost.push(format!("the subscription '{subject}': the file has no view '{v}' any more"));
                    continue;
                }
            },
            None => (before.kind.as_str(), id.clone()),
        };
        let there = live_subs.iter().any(|x| {
            x.user.as_ref().and_then(|u| u.id.as_deref()) == Some(user)
                && x.content.as_ref().is_some_and(|c| c.id == cid)
                && x.subject.as_deref() == Some(subject)
        });
        if there {
            continue;
        }
        if let Err(e) = client.create_subscription(&UserId::new(user), ctype, &cid, subject, schedule).await {
            lost.push(format!("the subscription '{subject}': {e}"));
        }
    }
    Ok((id, lost))
}

/// Publishes `bytes` over the workbook `id` (same name and project, overwrite) and puts back
/// what an overwrite drops on Tableau Server (tags, owner). Refuses when the publish made a
/// new workbook instead of replacing this one.
pub async fn republish(client: &Client, id: &str, filename: &str, bytes: &[u8]) -> OpResult<()> {
    let wid = WorkbookId::new(id);
    let w = client.workbook(&wid).await?;
    let name = w.name.clone().ok_or_else(|| OpError::Missing(format!("workbook {id} has no name")))?;
    let project = w
        .project
        .as_ref()
        .and_then(|p| p.id.clone())
        .ok_or_else(|| OpError::Missing(format!("workbook {id} has no project")))?;
    let tags: BTreeSet<String> = w.tags.as_ref().map(|t| t.labels()).unwrap_or_default().into_iter().collect();
    let owner = w.owner.as_ref().and_then(|o| o.id.clone());
    let show_tabs = tabflow_wire::xml::parse_bool(w.show_tabs.as_deref()).unwrap_or(true);
    let published = client.republish_workbook(&ProjectId::new(project), &name, filename, bytes, show_tabs).await?;
    if published.id.as_deref().is_some_and(|p| p != id) {
        return Err(OpError::Missing(format!(
            "publishing over '{name}' created another workbook ({}) instead of replacing {id}",
            published.id.unwrap_or_default()
        )));
    }
    let now = client.workbook(&wid).await?;
    let now_tags: BTreeSet<String> = now.tags.map(|t| t.labels()).unwrap_or_default().into_iter().collect();
    let lost: Vec<String> = tags.difference(&now_tags).cloned().collect();
    if !lost.is_empty() {
        client.add_tags(ContentKind::Workbook, id, &lost).await?;
    }
    if let Some(o) = owner
        && now.owner.and_then(|x| x.id).as_deref() != Some(o.as_str())
    {
        let u = WorkbookUpdate { owner_id: Some(UserId::new(o)), ..Default::default() };
        client.update_workbook(&wid, &u).await?;
    }
    Ok(())
}

/// Undoes an op that had been applied. Creates are undone by deleting what was created
/// (a project only while it is empty); deleted subscriptions are re-created (new id).
pub async fn compensate(
    client: &Client,
    kind: &str,
    id: &str,
    op: &Op,
    created: Option<&str>,
) -> OpResult<Option<String>> {
    match op {
        Op::CreateProject { name, .. } => {
            let pid = created.unwrap_or(id);
            match client.delete_project(&ProjectId::new(pid)).await {
                Ok(()) => Ok(None),
                Err(e) if e.status() == Some(404) => Ok(None),
                Err(e) => Err(OpError::Missing(format!("could not remove the project '{name}' tabflow created: {e}"))),
            }
        }
        Op::DeleteSubscription { subscription } => {
            let s = subscription;
            let user = s.get("user_id").and_then(Value::as_str).unwrap_or_default();
            let ctype = s.pointer("/content/type").and_then(Value::as_str).unwrap_or("workbook");
            let cid = s.pointer("/content/id").and_then(Value::as_str).unwrap_or_default();
            let subject = s.get("subject").and_then(Value::as_str).unwrap_or_default();
            let schedule = s.get("schedule").and_then(Value::as_str).unwrap_or_default();
            let created = client.create_subscription(&UserId::new(user), ctype, cid, subject, schedule).await?;
            Ok(created.id)
        }
        other => {
            let inv = other.inverse(created).ok_or_else(|| OpError::Unsupported("no inverse".into()))?;
            apply(client, kind, id, &inv, None).await
        }
    }
}

/// A subscription as plans and before-images record it.
pub fn subscription_value(s: &tabflow_wire::xml::Subscription) -> Value {
    json!({
        "id": s.id, "subject": s.subject,
        "user_id": s.user.as_ref().and_then(|u| u.id.clone()),
        "content": {"type": s.content.as_ref().map(|c| c.kind.to_lowercase()), "id": s.content.as_ref().map(|c| c.id.clone())},
        "schedule": s.schedule.as_ref().and_then(|x| x.name.clone().or(x.id.clone())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> Image {
        Image {
            kind: "workbook".into(),
            id: "w".into(),
            exists: true,
            project_id: Some("a".into()),
            owner_id: Some("u1".into()),
            tags: Some(["x".to_string()].into()),
            ..Image::default()
        }
    }

    #[test]
    fn moves_classify_before_after_and_drift() {
        let op = Op::Project { before: Some("a".into()), after: Target::Id("b".into()) };
        assert_eq!(classify(&op, &img(), None), State::Before);
        let moved = Image { project_id: Some("b".into()), ..img() };
        assert_eq!(classify(&op, &moved, None), State::After);
        let elsewhere = Image { project_id: Some("c".into()), ..img() };
        assert_eq!(classify(&op, &elsewhere, None), State::Drifted);
        let gone = Image { exists: false, ..img() };
        assert_eq!(classify(&op, &gone, None), State::Drifted);
        let created = Op::Project {
            before: Some("a".into()),
            after: Target::CreatedBy { step: "s1".into(), name: "Archive".into() },
        };
        assert_eq!(classify(&created, &moved, Some("b")), State::After);
        assert_eq!(classify(&created, &img(), Some("b")), State::Before);
    }

    #[test]
    fn tags_only_compare_what_the_op_changes() {
        let op = Op::Tags { before: ["x".to_string()].into(), after: ["x".to_string(), "archived".to_string()].into() };
        assert_eq!(classify(&op, &img(), None), State::Before);
        // Someone else added an unrelated tag: still "before", and applying leaves theirs.
        let other = Image { tags: Some(["x".to_string(), "mine".to_string()].into()), ..img() };
        assert_eq!(classify(&op, &other, None), State::Before);
        let done = Image { tags: Some(["x".to_string(), "archived".to_string()].into()), ..img() };
        assert_eq!(classify(&op, &done, None), State::After);
        let inv = op.inverse(None).unwrap();
        assert_eq!(classify(&inv, &done, None), State::Before);
    }

    #[test]
    fn flow_owner_and_project_changes_are_ops_and_names_are_not() {
        let change = |field: &str| Change {
            item: "f".into(),
            field: field.into(),
            before: Value::String("jsmith".into()),
            after: Value::String("tbaker".into()),
            before_id: Some("u1".into()),
            after_id: Some("u2".into()),
            after_ref: None,
        };
        let op = Op::from_change("flow", &change("owner")).unwrap();
        assert_eq!(op, Op::Owner { before: "u1".into(), after: "u2".into() });
        let live = Image { kind: "flow".into(), ..img() };
        assert_eq!(classify(&op, &live, None), State::Before);
        let moved = Image { owner_id: Some("u2".into()), ..live.clone() };
        assert_eq!(classify(&op, &moved, None), State::After);
        assert_eq!(classify(&op.inverse(None).unwrap(), &moved, None), State::Before);
        assert!(matches!(Op::from_change("flow", &change("project")).unwrap(), Op::Project { .. }));
        // The REST API cannot rename a flow.
        assert!(Op::from_change("flow", &change("name")).is_err());
    }

    #[test]
    fn inverse_of_a_move_to_a_created_project_uses_the_created_id() {
        let op = Op::Project {
            before: Some("a".into()),
            after: Target::CreatedBy { step: "s1".into(), name: "Archive".into() },
        };
        let inv = op.inverse(Some("new")).unwrap();
        assert_eq!(inv, Op::Project { before: Some("new".into()), after: Target::Id("a".into()) });
    }
}
