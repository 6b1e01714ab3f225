//! The typed reading of a plan's changes and the live image of an item: the pure half of
//! operations. Reading a change as an [`Op`], deciding where a live item stands against it
//! ([`classify`]) and reversing it ([`Op::inverse`]) need no network, so they live in the
//! core and are tested without IO; the calls that read, apply and undo each op are
//! `tabflow_engine::ops`.
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
use tabflow_site::Mode;

use crate::plan::Change;

/// Why a plan's change cannot be read as an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The change names a field, item type or value shape tabflow does not execute.
    #[error("the plan's change is not one tabflow can execute: {0}")]
    Unsupported(String),
}

/// The result of reading a change.
pub type Result<T> = std::result::Result<T, Error>;

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

/// Rules → the flat capability list (what is compared and written).
pub fn capabilities(rules: &[Rule]) -> Vec<Capability> {
    let mut out = vec![];
    for r in rules {
        let grantee_type = if r.grantee.kind == "group" { "group" } else { "user" };
        for (name, mode) in &r.capabilities {
            out.push(Capability {
                grantee_type: grantee_type.into(),
                grantee_id: r.grantee.id.clone(),
                name: name.clone(),
                mode: *mode,
            });
        }
    }
    out.sort();
    out
}

/// A flat capability list → rules (grantee names left empty).
pub fn rules(caps: &[Capability]) -> Vec<Rule> {
    let mut by: BTreeMap<(String, String), BTreeMap<String, Mode>> = BTreeMap::new();
    for c in caps {
        by.entry((c.grantee_type.clone(), c.grantee_id.clone())).or_default().insert(c.name.clone(), c.mode);
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
    pub permissions: Option<Vec<Capability>>,
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
    /// The data alerts a user receives (ids), read before the account is deleted: the undo
    /// adds the re-created account back as their recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<String>>,
    /// What re-publishing a purged item from its saved file has to put back, read before a
    /// staged delete: `{"description", "show_tabs" (workbooks), "certified",
    /// "certification_note" (datasources), "views": [{"name", "permissions"}]` (workbooks with
    /// tabs hidden, whose views carry their own permissions)}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Value>,
    /// A Server schedule's state (`Active` or `Suspended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// An extract refresh task's schedule: `{"schedule_id"}` on a Server schedule, or its own
    /// recurrence `{"frequency", "start_time", "end_time", "intervals"}` (Cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Value>,
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

/// One capability of one grantee, in the form plans, before-images and the journal keep
/// (`{"grantee_type", "grantee_id", "name", "mode"}`). The engine converts it to and from
/// the Tableau client's type at the call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Capability {
    /// `user` or `group`.
    pub grantee_type: String,
    pub grantee_id: String,
    pub name: String,
    pub mode: Mode,
}

impl Capability {
    pub fn is_group(&self) -> bool {
        self.grantee_type == "group"
    }
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
    /// An extract refresh task deleted; its description (`target` {type, id}, `schedule_id`
    /// or `own_schedule`, `type`, `priority`) re-creates it (a new id) on undo.
    DeleteExtractRefresh {
        task: Value,
    },
    /// An extract refresh task moved to another Server schedule, the only way Tableau Server
    /// moves one: a new task for the same content on `to` (`PUT /sites/{s}/schedules/{to}/
    /// workbooks|datasources`), then the old task deleted. `task` is the plan's description
    /// of the old task (`target`, `schedule_id`, `type`, `priority`). The new task's id is
    /// what the apply answers (the journal keeps it); the undo re-creates the task on its old
    /// schedule (another new id) and deletes the moved one.
    MoveExtractRefresh {
        task: Value,
        to: String,
    },
    /// A Server schedule suspended or resumed (`Active` / `Suspended`); undone exactly.
    ScheduleState {
        before: String,
        after: String,
    },
    /// A task's own (Cloud) schedule changed: recurrences as `schedule` images hold them;
    /// undone exactly with the same call.
    RefreshSchedule {
        before: Value,
        after: Value,
    },
}

/// Where a move goes: a known project, or the project another step of the plan creates.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Id(String),
    CreatedBy { step: String, name: String },
}

fn set_of(v: &Value) -> Result<BTreeSet<String>> {
    match v {
        Value::Null => Ok(BTreeSet::new()),
        Value::Array(a) => Ok(a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()),
        _ => Err(Error::Unsupported(format!("expected a list, got {v}"))),
    }
}

fn ids_of(v: &Value) -> Result<BTreeSet<String>> {
    match v {
        Value::Null => Ok(BTreeSet::new()),
        Value::Array(a) => Ok(a
            .iter()
            .filter_map(|x| x.get("id").and_then(Value::as_str).or_else(|| x.as_str()).map(str::to_string))
            .collect()),
        _ => Err(Error::Unsupported(format!("expected a list of groups, got {v}"))),
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

fn rules_of(v: &Value) -> Result<Vec<Capability>> {
    let r: Vec<Rule> = serde_json::from_value(v.clone())
        .map_err(|e| Error::Unsupported(format!("permission rules are malformed: {e}")))?;
    Ok(capabilities(&r))
}

impl Op {
    /// Reads a plan change of an item of type `kind`.
    pub fn from_change(kind: &str, c: &Change) -> Result<Op> {
        let need = |x: &Option<String>, what: &str| {
            x.clone().ok_or_else(|| Error::Unsupported(format!("change of '{}' on {} lacks {what}", c.field, c.item)))
        };
        Ok(match (kind, c.field.as_str()) {
            ("workbook" | "datasource" | "project" | "flow", "project") => Op::Project {
                before: c.before_id.clone(),
                after: match (&c.after_id, &c.after_ref) {
                    (Some(id), _) => Target::Id(id.clone()),
                    (None, Some(step)) => Target::CreatedBy { step: step.clone(), name: str_of(&c.after) },
                    (None, None) => return Err(Error::Unsupported(format!("move of {} has no target id", c.item))),
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
            ("workbook" | "datasource" | "project" | "flow" | "view", "permissions") => {
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
            ("extract-refresh", "exists") if c.before.is_object() && c.after.is_null() => {
                Op::DeleteExtractRefresh { task: c.before.clone() }
            }
            ("extract-refresh", "schedule_id") if c.before.is_object() => Op::MoveExtractRefresh {
                task: c.before.clone(),
                to: need(&c.after_id, "after_id (the schedule it moves to)")?,
            },
            ("extract-refresh", "schedule") if c.before.is_object() && c.after.is_object() => {
                Op::RefreshSchedule { before: c.before.clone(), after: c.after.clone() }
            }
            ("schedule", "state") => {
                let (before, after) = (str_of(&c.before), str_of(&c.after));
                for s in [&before, &after] {
                    if s != "Active" && s != "Suspended" {
                        return Err(Error::Unsupported(format!("schedule state '{s}' (Active or Suspended)")));
                    }
                }
                Op::ScheduleState { before, after }
            }
            ("workbook", "datasource") => {
                let read = |v: &Value, what: &str| {
                    serde_json::from_value::<DatasourceRef>(v.clone()).map_err(|e| {
                        Error::Unsupported(format!("the {what} datasource of {} is malformed: {e}", c.item))
                    })
                };
                Op::Repoint { before: read(&c.before, "current")?, after: read(&c.after, "new")? }
            }
            (k, f) => return Err(Error::Unsupported(format!("field '{f}' of a {k}"))),
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
            let mut out: Vec<Capability> =
                v.iter()
                    .map(|c| {
                        if c.is_group() { c.clone() } else { Capability { grantee_id: id(&c.grantee_id), ..c.clone() } }
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
            Op::ScheduleState { before, after } => Op::ScheduleState { before: after.clone(), after: before.clone() },
            Op::RefreshSchedule { before, after } => {
                Op::RefreshSchedule { before: after.clone(), after: before.clone() }
            }
            Op::CreateProject { .. }
            | Op::DeleteSubscription { .. }
            | Op::DeleteUser { .. }
            | Op::DeleteExtractRefresh { .. }
            | Op::MoveExtractRefresh { .. } => return None,
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
    /// Between before and after, as a change made of several calls (permissions, tags, group
    /// memberships) leaves it when interrupted half-way: every element it changes is at its
    /// before or its after value, and some of each. Only the executor can tell whether this
    /// run did it (its journal holds the before-image) or someone else did (drift).
    Partial,
}

/// Classifies the live image against an op. `target` is the resolved id of a move target.
pub fn classify(op: &Op, live: &Image, target: Option<&str>) -> State {
    // Several calls: a mix of before and after is a change interrupted half-way (or drift).
    let pick_mixed = |is_before: bool, is_after: bool, mixed: bool| {
        if is_after {
            State::After
        } else if is_before {
            State::Before
        } else if mixed {
            State::Partial
        } else {
            State::Drifted
        }
    };
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
        Op::DeleteUser { .. } | Op::DeleteExtractRefresh { .. } => {
            if live.exists {
                State::Before
            } else {
                State::After
            }
        }
        // Moved: the old task is gone (the new one has another id). Still there: on its old
        // schedule it has not moved yet; on any other, someone else moved it.
        Op::MoveExtractRefresh { task, .. } => {
            if !live.exists {
                State::After
            } else {
                let old = json!({"schedule_id": task.get("schedule_id").cloned().unwrap_or(Value::Null)});
                pick(live.schedule.as_ref() == Some(&old), false)
            }
        }
        _ if !live.exists => State::Drifted,
        Op::ScheduleState { before, after } => {
            let now = live.state.as_deref();
            pick(now == Some(before), now == Some(after))
        }
        Op::RefreshSchedule { before, after } => {
            let now = live.schedule.as_ref();
            pick(now == Some(before), now == Some(after))
        }
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
            // A tag is there or not: any other state is a mix.
            pick_mixed(untouched, applied, true)
        }
        Op::Permissions { before, after } => {
            let now: BTreeSet<&Capability> = live.permissions.iter().flatten().collect();
            let b: BTreeSet<&Capability> = before.iter().collect();
            let a: BTreeSet<&Capability> = after.iter().collect();
            // Every rule is one of the two sides', and the rules both keep are all there.
            let mixed =
                now.iter().all(|c| b.contains(c) || a.contains(c)) && b.intersection(&a).all(|c| now.contains(c));
            pick_mixed(now == b, now == a, mixed)
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
            pick_mixed(is(before), is(after), true)
        }
        Op::Repoint { before, after } => {
            let now = live.datasources.clone().unwrap_or_default();
            let uses_before = now.contains(&before.content_url);
            pick(uses_before, !uses_before && now.contains(&after.content_url))
        }
    }
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
    fn a_task_moved_to_another_server_schedule_is_after_once_the_old_task_is_gone() {
        let task = json!({"id": "t", "target": {"type": "workbook", "id": "w"}, "schedule_id": "peak", "type": "FullRefresh", "priority": 50});
        let change = Change {
            item: "t".into(),
            field: "schedule_id".into(),
            before: task.clone(),
            after: json!({"schedule_id": "night"}),
            before_id: Some("peak".into()),
            after_id: Some("night".into()),
            after_ref: None,
        };
        let op = Op::from_change("extract-refresh", &change).unwrap();
        assert_eq!(op, Op::MoveExtractRefresh { task, to: "night".into() });
        let live = |schedule: &str| Image {
            kind: "extract-refresh".into(),
            id: "t".into(),
            exists: true,
            schedule: Some(json!({"schedule_id": schedule})),
            ..Image::default()
        };
        assert_eq!(classify(&op, &live("peak"), None), State::Before);
        assert_eq!(classify(&op, &live("monthly"), None), State::Drifted, "someone else moved it");
        assert_eq!(classify(&op, &Image { exists: false, ..live("peak") }, None), State::After);
        // Re-created, not reversed: no exact inverse.
        assert!(op.inverse(None).is_none());
        // Without the schedule it moves to, the change cannot be executed.
        assert!(Op::from_change("extract-refresh", &Change { after_id: None, ..change }).is_err());
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
    fn permissions_compare_as_sets_and_remapping_touches_only_users() {
        let rule = |kind: &str, id: &str, mode: Mode| json!({"grantee": {"type": kind, "id": id}, "capabilities": {"Read": mode, "Write": Mode::Allow}});
        let change = Change {
            item: "w".into(),
            field: "permissions".into(),
            before: json!([rule("group", "g1", Mode::Allow), rule("user", "u1", Mode::Allow)]),
            after: json!([rule("group", "g1", Mode::Allow)]),
            before_id: None,
            after_id: None,
            after_ref: None,
        };
        let op = Op::from_change("workbook", &change).unwrap();
        let Op::Permissions { before, after } = &op else { panic!("{op:?}") };
        assert_eq!((before.len(), after.len()), (4, 2));
        // Live rules in another order are the same rules.
        let live = Image { permissions: Some(before.iter().rev().cloned().collect()), ..img() };
        assert_eq!(classify(&op, &live, None), State::Before);
        let done = Image { permissions: Some(after.clone()), ..img() };
        assert_eq!(classify(&op, &done, None), State::After);
        let other = Image { permissions: Some(vec![]), ..img() };
        assert_eq!(classify(&op, &other, None), State::Drifted);
        // A re-created account's new id replaces the user grantee; groups keep theirs.
        let map: HashMap<String, String> =
            [("u1".to_string(), "u9".to_string()), ("g1".to_string(), "gx".to_string())].into();
        let Op::Permissions { before, .. } = op.remap_users(&map) else { panic!() };
        let ids: BTreeSet<&str> = before.iter().map(|c| c.grantee_id.as_str()).collect();
        assert_eq!(ids, ["g1", "u9"].into_iter().collect());
        assert_eq!(rules(&before).len(), 2);
    }

    #[test]
    fn a_multi_call_change_stopped_half_way_is_partial_and_a_foreign_rule_is_drift() {
        let cap = |id: &str, name: &str| Capability {
            grantee_type: "group".into(),
            grantee_id: id.into(),
            name: name.into(),
            mode: Mode::Allow,
        };
        // From {g1 Read, g2 Read} to {g1 Read, g3 Read}: delete g2, then add g3.
        let op = Op::Permissions {
            before: vec![cap("g1", "Read"), cap("g2", "Read")],
            after: vec![cap("g1", "Read"), cap("g3", "Read")],
        };
        let with = |caps: Vec<Capability>| Image { permissions: Some(caps), ..img() };
        assert_eq!(classify(&op, &with(vec![cap("g1", "Read")]), None), State::Partial);
        let all = vec![cap("g1", "Read"), cap("g2", "Read"), cap("g3", "Read")];
        assert_eq!(classify(&op, &with(all), None), State::Partial);
        // A rule from neither side, or a kept rule gone, is someone else's change.
        assert_eq!(classify(&op, &with(vec![cap("g1", "Read"), cap("g9", "Read")]), None), State::Drifted);
        assert_eq!(classify(&op, &with(vec![cap("g3", "Read")]), None), State::Drifted);
        // Tags and groups: one added, one not yet removed.
        let tags = Op::Tags { before: ["old".to_string()].into(), after: ["new".to_string()].into() };
        let both = Image { tags: Some(["old".to_string(), "new".to_string()].into()), ..img() };
        assert_eq!(classify(&tags, &both, None), State::Partial);
        let groups = Op::Groups { before: ["a".to_string()].into(), after: ["b".to_string()].into() };
        let user = Image { kind: "user".into(), groups: Some(["a".to_string(), "b".to_string()].into()), ..img() };
        assert_eq!(classify(&groups, &user, None), State::Partial);
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
