//! The plan: `tabflow-plan/2` (DESIGN.md §5). A plan is a serializable artifact holding the
//! exact items and the exact field changes (before → after) of every step; what was reviewed
//! is what runs. Only [`crate::validate`] turns a draft [`Plan`] into a
//! [`crate::validate::ValidatedPlan`].
//!
//! The fingerprint (`hmac-sha256:<key id>:<hex>`) is an HMAC-SHA256, keyed with the store's
//! [`PlanKey`], over the canonical JSON of everything that decides what runs: the id, the
//! request, the site (server URL and site id), the intents, every step (kind, classes,
//! dependencies, items with their `updatedAt`, changes), the questions and the answers. A
//! hand-edited plan cannot be re-sealed without the store's secret, and a plan sealed by
//! another store is named as such.
//!
//! Change values are JSON so the file stays readable and stable; [`crate::ops::Op`] is the
//! typed reading the executor works with.
// Reads plan files (issue #17: no panic from outside data).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used))]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::intent::Intent;
pub use crate::step::StepKind;

pub const PLAN_FORMAT: &str = "tabflow-plan/2";
/// The algorithm part of a fingerprint: `hmac-sha256:<key id>:<hex>`.
pub const FINGERPRINT_ALGORITHM: &str = "hmac-sha256";

/// The secret a store seals its plans with (32 random bytes kept in the store, shared by
/// every process on it). Its id — the first 12 hex digits of the SHA-256 of the secret —
/// is written into each fingerprint so that a plan from another store is recognised; the id
/// reveals nothing of the secret.
pub struct PlanKey {
    id: String,
    secret: SecretBox<[u8; 32]>,
}

impl PlanKey {
    pub fn new(secret: [u8; 32]) -> PlanKey {
        let id: String = sha256_hex(&secret).chars().take(12).collect();
        PlanKey { id, secret: SecretBox::new(Box::new(secret)) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, canonical: &str) -> hmac::Hmac<Sha256> {
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(self.secret.expose_secret()).expect("HMAC takes any key length");
        mac.update(canonical.as_bytes());
        mac
    }
}

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlanKey({}, secret hidden)", self.id)
    }
}

/// Which site a plan was made for. A plan is refused on any other site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SiteRef {
    pub server: String,
    pub content_url: String,
    pub id: String,
}

/// What a step does to the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    Read,
    Write,
    Destructive,
}

/// How well a step can be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackClass {
    /// Every changed field goes back exactly.
    Exact,
    /// Restored from a saved copy (a file, a before-image) — same content, may differ in
    /// server-assigned details such as revision numbers.
    Snapshot,
    /// Partly restorable (e.g. re-created with a new id).
    Lossy,
    /// Cannot be undone.
    None,
}

impl RollbackClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackClass::Exact => "exact",
            RollbackClass::Snapshot => "snapshot",
            RollbackClass::Lossy => "lossy",
            RollbackClass::None => "none",
        }
    }
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::Destructive => "destructive",
        }
    }
}

/// An item a step reads or changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Item {
    /// `workbook`, `datasource`, `project`, `user`, `group`, `subscription`, `view`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The item's `updatedAt` when the plan was made (part of the fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Why the item is in the step ("not viewed since 2026-03-02", "never viewed").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Size in bytes, when known (impact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// One exact field change. `before`/`after` are what a reviewer reads (names); `before_id`
/// and `after_id` carry the ids the executor writes. `after_ref` names a step of this plan
/// whose output (e.g. a project it creates) supplies `after_id` at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub item: String,
    pub field: String,
    pub before: Value,
    pub after: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ref: Option<String>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    pub title: String,
    pub effect: Effect,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default)]
    pub changes: Vec<Change>,
    pub rollback: RollbackClass,
    /// Step-specific facts for reviewers and reports (excluded items with reasons, the usage
    /// source, candidates...). Not executed.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl Step {
    /// A step whose effect and rollback class are derived from its kind and changes
    /// ([`StepKind::derive`]): how the planner makes every step.
    pub fn new(
        id: String,
        kind: StepKind,
        title: String,
        depends_on: Vec<String>,
        items: Vec<Item>,
        changes: Vec<Change>,
        details: Value,
    ) -> Step {
        let (effect, rollback) = kind.derive(&changes, &items);
        Step { id, kind, title, effect, depends_on, items, changes, rollback, details }
    }

    /// The effect and rollback class this step's kind and changes give it.
    pub fn derived(&self) -> (Effect, RollbackClass) {
        self.kind.derive(&self.changes, &self.items)
    }

    pub fn is_write(&self) -> bool {
        self.effect != Effect::Read
    }
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Impact {
    pub items: u64,
    pub users_affected: u64,
    pub projects: u64,
    pub owners: u64,
    pub bytes: u64,
}

/// The five checks, exactly as DESIGN.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    DestructiveOperations,
    Permissions,
    Dependencies,
    Impact,
    Rollback,
}

impl Check {
    pub const ALL: [Check; 5] =
        [Check::DestructiveOperations, Check::Permissions, Check::Dependencies, Check::Impact, Check::Rollback];
    pub fn as_str(self) -> &'static str {
        match self {
            Check::DestructiveOperations => "destructive-operations",
            Check::Permissions => "permissions",
            Check::Dependencies => "dependencies",
            Check::Impact => "impact",
            Check::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub check: Check,
    pub level: Level,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Validation {
    pub ok: bool,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub text: String,
    pub choices: Vec<String>,
    /// The safe choice, offered first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A plan (draft or validated; see [`crate::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    pub id: String,
    pub request: String,
    pub created_at: DateTime<Utc>,
    pub site: SiteRef,
    pub intents: Vec<Intent>,
    pub steps: Vec<Step>,
    pub impact: Impact,
    pub validation: Validation,
    pub questions: Vec<Question>,
    pub fingerprint: String,
    /// Answers already given (question id → choice); answering produces a new version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answers: BTreeMap<String, String>,
    /// The questions `answers` answered, as they were asked (for reviewers and learning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answered: Vec<Question>,
    #[serde(default = "one")]
    pub version: u32,
    /// Notes for the reviewer (which usage source was used and its coverage, grounding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A rollback plan: the run whose changes its `compensate` steps undo (absent for every
    /// other plan). Part of the fingerprint when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
}

fn one() -> u32 {
    1
}

/// Why a plan file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the plan file is not valid JSON for {PLAN_FORMAT}: {0}")]
    Malformed(String),
    #[error("the plan's format is '{0}'; this tabflow reads {PLAN_FORMAT}")]
    Format(String),
    #[error(
        "the plan was made by an older tabflow ({0}); plans are now sealed with a key kept in the store, so re-plan it"
    )]
    Older(String),
    #[error(
        "this plan was sealed by another tabflow store (key {plan}; this store's key is {store}); plan it again against this store, or use --store of the store that made it"
    )]
    OtherStore { plan: String, store: String },
    #[error("the plan's fingerprint does not match its content (the file was edited after it was made)")]
    Fingerprint,
    #[error(
        "the plan names no site (server URL and site id); a plan only runs on the site it was made for, so re-plan it"
    )]
    NoSite,
    #[error(
        "plan {plan} was made for site '{plan_site}' on {plan_server}, but tabflow is connected to site '{site}' on {server}; a plan made on another copy of a site (e.g. a rehearsal) must be re-planned against this one"
    )]
    OtherSite { plan: String, plan_server: String, plan_site: String, server: String, site: String },
    #[error("the plan is inconsistent: {0}")]
    Inconsistent(String),
    #[error(
        "step {step} ({kind}) is marked {} / rollback {}, but its kind and changes make it {} / rollback {} — effects and rollback classes are derived, never taken from the file; make the plan again",
        stored.0.as_str(), stored.1.as_str(), derived.0.as_str(), derived.1.as_str()
    )]
    Classes { step: String, kind: StepKind, stored: (Effect, RollbackClass), derived: (Effect, RollbackClass) },
}

impl PlanError {
    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            PlanError::OtherStore { .. } => {
                "run `tabflow plan` again with this store, or pass --store (TABFLOW_STORE) of the store that made the plan"
            }
            PlanError::OtherSite { .. } => {
                "make the plan again with `tabflow plan` while connected to this site, or connect to the plan's site (--server/--site)"
            }
            _ => "make a fresh plan with `tabflow plan ... -o plan.json`",
        }
    }
}

impl Plan {
    /// A new, empty draft.
    pub fn draft(request: &str, site: SiteRef, intents: Vec<Intent>, now: DateTime<Utc>) -> Plan {
        Plan {
            format: PLAN_FORMAT.into(),
            id: new_id("p", now),
            request: request.into(),
            created_at: now,
            site,
            intents,
            steps: vec![],
            impact: Impact::default(),
            validation: Validation::default(),
            questions: vec![],
            fingerprint: String::new(),
            answers: BTreeMap::new(),
            answered: vec![],
            version: 1,
            notes: vec![],
            rollback_of: None,
        }
    }

    /// Reads a plan file sealed with `key`: format, JSON shape, site, fingerprint and internal
    /// consistency. Each way a file can be wrong has its own [`PlanError`].
    pub fn from_json(text: &str, key: &PlanKey) -> Result<Plan, PlanError> {
        let v: Value = serde_json::from_str(text).map_err(|e| PlanError::Malformed(e.to_string()))?;
        match v.get("format").and_then(Value::as_str) {
            Some(PLAN_FORMAT) => {}
            Some(old @ "tabflow-plan/1") => return Err(PlanError::Older(format!("format {old}"))),
            Some(other) => return Err(PlanError::Format(other.into())),
            None => return Err(PlanError::Malformed("no \"format\" field".into())),
        }
        let plan: Plan = serde_json::from_value(v).map_err(|e| PlanError::Malformed(e.to_string()))?;
        if plan.fingerprint.starts_with("sha256:") {
            return Err(PlanError::Older("an unkeyed sha256: fingerprint".into()));
        }
        let sealed_by = match plan.fingerprint.split(':').collect::<Vec<_>>().as_slice() {
            [FINGERPRINT_ALGORITHM, id, hex] if !id.is_empty() && !hex.is_empty() => id.to_string(),
            _ => return Err(PlanError::Fingerprint),
        };
        if sealed_by != key.id() {
            return Err(PlanError::OtherStore { plan: sealed_by, store: key.id().into() });
        }
        plan.check_consistency()?;
        if !plan.verify(key) {
            return Err(PlanError::Fingerprint);
        }
        if plan.site.server.trim().is_empty() || plan.site.id.trim().is_empty() {
            return Err(PlanError::NoSite);
        }
        if let Some(e) = plan.class_errors().into_iter().next() {
            return Err(e);
        }
        Ok(plan)
    }

    /// Refuses a plan made for another site than the one tabflow is connected to (`server`
    /// as plans record it, `site_id` of the signed-in session), or for no site at all.
    pub fn check_site(&self, server: &str, site_id: &str) -> Result<(), PlanError> {
        fn norm(s: &str) -> String {
            s.trim().trim_end_matches('/').to_ascii_lowercase()
        }
        if self.site.server.trim().is_empty() || self.site.id.trim().is_empty() {
            return Err(PlanError::NoSite);
        }
        if norm(&self.site.server) != norm(server) || self.site.id.trim() != site_id.trim() {
            return Err(PlanError::OtherSite {
                plan: self.id.clone(),
                plan_server: self.site.server.clone(),
                plan_site: if self.site.content_url.is_empty() {
                    self.site.id.clone()
                } else {
                    self.site.content_url.clone()
                },
                server: server.into(),
                site: site_id.into(),
            });
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serializes")
    }

    /// Step ids unique, dependencies known and acyclic, changes name items of their step.
    pub fn check_consistency(&self) -> Result<(), PlanError> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.steps {
            if !seen.insert(s.id.as_str()) {
                return Err(PlanError::Inconsistent(format!("step id '{}' appears twice", s.id)));
            }
        }
        for s in &self.steps {
            let items: std::collections::HashSet<&str> = s.items.iter().map(|i| i.id.as_str()).collect();
            for d in &s.depends_on {
                if !seen.contains(d.as_str()) {
                    return Err(PlanError::Inconsistent(format!("step {} depends on unknown step '{d}'", s.id)));
                }
            }
            for c in &s.changes {
                if !items.contains(c.item.as_str()) {
                    return Err(PlanError::Inconsistent(format!(
                        "step {} changes item '{}' which is not among its items",
                        s.id, c.item
                    )));
                }
                if let Some(r) = &c.after_ref
                    && !seen.contains(r.as_str())
                {
                    return Err(PlanError::Inconsistent(format!("step {} refers to unknown step '{r}'", s.id)));
                }
            }
            if (s.effect == Effect::Read || s.kind.is_read()) && !s.changes.is_empty() {
                return Err(PlanError::Inconsistent(format!("read step {} lists changes", s.id)));
            }
        }
        self.order().map(|_| ())
    }

    /// Every step whose stored effect or rollback class differs from the derived one.
    pub fn class_errors(&self) -> Vec<PlanError> {
        self.steps
            .iter()
            .filter_map(|s| {
                let derived = s.derived();
                (derived != (s.effect, s.rollback)).then(|| PlanError::Classes {
                    step: s.id.clone(),
                    kind: s.kind,
                    stored: (s.effect, s.rollback),
                    derived,
                })
            })
            .collect()
    }

    /// Steps in an order that respects `depends_on` (stable: plan order among ready steps).
    pub fn order(&self) -> Result<Vec<usize>, PlanError> {
        let mut done: Vec<bool> = vec![false; self.steps.len()];
        let mut out = Vec::with_capacity(self.steps.len());
        while out.len() < self.steps.len() {
            let is_done = |j: usize| done.get(j).copied().unwrap_or(false);
            let next = self.steps.iter().enumerate().find(|(i, s)| {
                !is_done(*i)
                    && s.depends_on.iter().all(|d| self.steps.iter().position(|x| &x.id == d).is_some_and(is_done))
            });
            match next {
                Some((i, _)) => {
                    if let Some(d) = done.get_mut(i) {
                        *d = true;
                    }
                    out.push(i);
                }
                None => return Err(PlanError::Inconsistent("the steps' dependencies form a cycle".into())),
            }
        }
        Ok(out)
    }

    /// Ids of the steps that run before `step_id` in [`Plan::order`] (all of them, not only
    /// its dependencies; steps run one after another).
    pub fn steps_before(&self, step_id: &str) -> BTreeSet<&str> {
        let order = self.order().unwrap_or_default();
        order.iter().filter_map(|i| self.steps.get(*i)).map(|s| s.id.as_str()).take_while(|id| *id != step_id).collect()
    }

    /// The canonical JSON the fingerprint covers: everything that decides what runs — the id,
    /// the request, the site, the intents, every step's kind, classes, dependencies, items (id,
    /// type, `updatedAt`) and changes, the questions and the answers. Titles, notes, the impact
    /// summary and the validation findings are presentation and are left out.
    pub fn canonical(&self) -> String {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "kind": s.kind, "effect": s.effect, "rollback": s.rollback,
                    "depends_on": s.depends_on,
                    "items": s.items.iter().map(|i| serde_json::json!([i.kind, i.id, i.updated_at])).collect::<Vec<_>>(),
                    "changes": s.changes,
                })
            })
            .collect();
        let mut canonical = serde_json::json!({
            "format": self.format, "id": self.id, "request": self.request, "site": self.site,
            "intents": self.intents, "steps": steps, "questions": self.questions,
            "answers": self.answers, "answered": self.answered,
        });
        // Only rollback plans carry it: every other plan's fingerprint stays what it was.
        if let (Some(run), Some(o)) = (&self.rollback_of, canonical.as_object_mut()) {
            o.insert("rollback_of".into(), Value::String(run.clone()));
        }
        canonical_json(&canonical)
    }

    /// `hmac-sha256:<key id>:<hex>` over [`Plan::canonical`], keyed with the store's key.
    pub fn compute_fingerprint(&self, key: &PlanKey) -> String {
        let mac = key.mac(&self.canonical()).finalize().into_bytes();
        format!("{FINGERPRINT_ALGORITHM}:{}:{}", key.id(), hex(&mac))
    }

    /// Whether the fingerprint is this content's under `key` (compared in constant time).
    pub fn verify(&self, key: &PlanKey) -> bool {
        let Some(given) = self.fingerprint.rsplit(':').next().and_then(unhex) else { return false };
        self.fingerprint.starts_with(&format!("{FINGERPRINT_ALGORITHM}:{}:", key.id()))
            && key.mac(&self.canonical()).verify_slice(&given).is_ok()
    }

    pub fn seal(&mut self, key: &PlanKey) {
        self.fingerprint = self.compute_fingerprint(key);
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Items of destructive steps, as `(step id, item id)`.
    pub fn destructive_items(&self) -> Vec<(&str, &str)> {
        self.steps
            .iter()
            .filter(|s| s.effect == Effect::Destructive)
            .flat_map(|s| s.changed_items().into_iter().map(move |i| (s.id.as_str(), i)))
            .collect()
    }
}

impl Step {
    /// Ids of the items this step changes, in item order.
    pub fn changed_items(&self) -> Vec<&str> {
        let changed: std::collections::HashSet<&str> = self.changes.iter().map(|c| c.item.as_str()).collect();
        self.items.iter().filter(|i| changed.contains(i.id.as_str())).map(|i| i.id.as_str()).collect()
    }
    pub fn changes_of<'a>(&'a self, item: &'a str) -> impl Iterator<Item = &'a Change> + 'a {
        self.changes.iter().filter(move |c| c.item == item)
    }
}

/// JSON with object keys sorted at every level (serde_json's maps are already ordered by
/// key without the `preserve_order` feature; this makes it explicit and independent of it).
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&m[*k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `p-…`, `r-…`, `a-…`: a prefix and a time-ordered random id (`now` from the caller: the
/// core reads no clock).
pub fn new_id(prefix: &str, now: DateTime<Utc>) -> String {
    let t = now.format("%Y%m%d%H%M%S");
    let r = uuid::Uuid::new_v4().simple().to_string();
    let r: String = r.chars().take(8).collect();
    format!("{prefix}-{t}-{r}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-08-14T09:00:00Z".parse().unwrap()
    }

    fn key() -> PlanKey {
        PlanKey::new([7; 32])
    }

    fn sample() -> Plan {
        let mut p = Plan::draft(
            "move it",
            SiteRef { server: "https://tableau.example.com".into(), content_url: "demo".into(), id: "x".into() },
            vec![],
            now(),
        );
        p.steps.push(Step {
            id: "s1".into(),
            kind: StepKind::MoveWorkbooks,
            title: "Move".into(),
            effect: Effect::Destructive,
            depends_on: vec![],
            items: vec![Item {
                kind: "workbook".into(),
                id: "w1".into(),
                name: "W".into(),
                updated_at: Some("2026-01-01T00:00:00Z".into()),
                ..Item::default()
            }],
            changes: vec![Change {
                item: "w1".into(),
                field: "project".into(),
                before: "A".into(),
                after: "B".into(),
                before_id: Some("pa".into()),
                after_id: Some("pb".into()),
                after_ref: None,
            }],
            rollback: RollbackClass::Exact,
            details: Value::Null,
        });
        p.questions.push(Question {
            id: "q1".into(),
            text: "Move all?".into(),
            choices: vec!["move-all".into(), "cancel".into()],
            default: None,
        });
        p.seal(&key());
        p
    }

    /// The fingerprint anyone could compute: tabflow-plan/1's published, unkeyed algorithm.
    fn unkeyed(p: &Plan) -> String {
        format!("sha256:{}", sha256_hex(p.canonical().as_bytes()))
    }

    #[test]
    fn round_trip_keeps_the_fingerprint() {
        let p = sample();
        assert!(p.fingerprint.starts_with(&format!("hmac-sha256:{}:", key().id())), "{}", p.fingerprint);
        let back = Plan::from_json(&p.to_json(), &key()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn any_edit_to_what_runs_breaks_the_fingerprint() {
        let p = sample();
        for (edit, replacement) in [
            ("\"pb\"", "\"pc\""),
            ("\"2026-01-01T00:00:00Z\"", "\"2026-01-02T00:00:00Z\""),
            ("\"destructive\"", "\"write\""),
            ("\"move it\"", "\"move them\""),
            ("\"Move all?\"", "\"Move none?\""),
            ("\"https://tableau.example.com\"", "\"https://rehearsal.example.com\""),
        ] {
            let text = p.to_json().replacen(edit, replacement, 1);
            assert_ne!(text, p.to_json(), "{edit}");
            assert!(matches!(Plan::from_json(&text, &key()), Err(PlanError::Fingerprint)), "{edit}");
        }
        // Questions deleted, answers added: both are covered.
        let mut q = p.clone();
        q.questions.clear();
        let text = q.to_json().replace(&q.fingerprint, &p.fingerprint);
        assert!(matches!(Plan::from_json(&text, &key()), Err(PlanError::Fingerprint)));
        let mut a = p.clone();
        a.answers.insert("q1".into(), "move-all".into());
        assert!(matches!(Plan::from_json(&a.to_json(), &key()), Err(PlanError::Fingerprint)));
        // Titles are presentation, not what runs.
        let text = p.to_json().replacen("\"Move\"", "\"Move them\"", 1);
        assert!(Plan::from_json(&text, &key()).is_ok());
    }

    #[test]
    fn a_plan_resealed_with_the_unkeyed_algorithm_or_an_older_format_is_refused_as_older() {
        let mut p = sample();
        p.steps[0].effect = Effect::Write;
        p.questions.clear();
        p.fingerprint = unkeyed(&p);
        let e = Plan::from_json(&p.to_json(), &key()).unwrap_err();
        assert!(matches!(e, PlanError::Older(_)), "{e:?}");
        assert!(e.to_string().contains("re-plan it"), "{e}");
        p.format = "tabflow-plan/1".into();
        let e = Plan::from_json(&p.to_json(), &key()).unwrap_err();
        assert!(matches!(&e, PlanError::Older(w) if w.contains("tabflow-plan/1")), "{e:?}");
        // A keyed fingerprint under a key of the same id but another secret (or none) fails.
        let mut p = sample();
        p.fingerprint = format!("hmac-sha256:{}:{}", key().id(), "00".repeat(32));
        assert!(matches!(Plan::from_json(&p.to_json(), &key()), Err(PlanError::Fingerprint)));
        p.fingerprint = format!("hmac-sha256:{}:zz", key().id());
        assert!(matches!(Plan::from_json(&p.to_json(), &key()), Err(PlanError::Fingerprint)));
    }

    #[test]
    fn a_plan_of_another_store_is_named_with_both_keys() {
        let other = PlanKey::new([9; 32]);
        assert_ne!(other.id(), key().id());
        let mut p = sample();
        p.seal(&other);
        let e = Plan::from_json(&p.to_json(), &key()).unwrap_err();
        assert!(
            matches!(&e, PlanError::OtherStore { plan, store } if plan == other.id() && store == key().id()),
            "{e:?}"
        );
        assert!(e.to_string().contains("another tabflow store") && e.fix().contains("--store"), "{e}");
        // The key's secret never shows.
        assert!(!format!("{:?}", key()).contains("7, 7"), "{:?}", key());
    }

    #[test]
    fn a_plan_without_a_site_or_for_another_site_is_refused_naming_both() {
        let mut p = sample();
        p.site.server.clear();
        p.seal(&key());
        assert!(matches!(Plan::from_json(&p.to_json(), &key()), Err(PlanError::NoSite)));
        assert!(matches!(p.check_site("https://tableau.example.com", "x"), Err(PlanError::NoSite)));
        let p = sample();
        assert!(p.check_site("https://TABLEAU.example.com/", "x").is_ok());
        let e = p.check_site("http://127.0.0.1:8080", "x").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("https://tableau.example.com")
                && text.contains("http://127.0.0.1:8080")
                && text.contains("re-planned"),
            "{text}"
        );
        assert!(matches!(p.check_site("https://tableau.example.com", "y"), Err(PlanError::OtherSite { .. })));
    }

    #[test]
    fn a_step_relabelled_and_resealed_is_refused_naming_the_step_and_both_classes() {
        for (effect, rollback) in [(Effect::Write, RollbackClass::Exact), (Effect::Destructive, RollbackClass::None)] {
            let mut p = sample();
            p.steps[0].effect = effect;
            p.steps[0].rollback = rollback;
            p.seal(&key());
            let e = Plan::from_json(&p.to_json(), &key()).unwrap_err();
            assert!(
                matches!(&e, PlanError::Classes { step, stored, derived, .. }
                    if step == "s1" && *stored == (effect, rollback) && *derived == (Effect::Destructive, RollbackClass::Exact)),
                "{e:?}"
            );
            let text = e.to_string();
            assert!(
                text.contains("step s1 (move-workbooks)") && text.contains("destructive / rollback exact"),
                "{text}"
            );
        }
        // A read kind cannot carry changes.
        let mut p = sample();
        p.steps[0].kind = StepKind::FindStaleWorkbooks;
        p.steps[0].effect = Effect::Read;
        p.seal(&key());
        assert!(matches!(Plan::from_json(&p.to_json(), &key()), Err(PlanError::Inconsistent(_))));
    }

    #[test]
    fn malformed_and_foreign_files_are_named() {
        assert!(matches!(Plan::from_json("{", &key()), Err(PlanError::Malformed(_))));
        assert!(matches!(Plan::from_json(r#"{"format":"tabflow-plan/9"}"#, &key()), Err(PlanError::Format(_))));
        let mut p = sample();
        p.steps[0].depends_on.push("s9".into());
        p.seal(&key());
        assert!(matches!(Plan::from_json(&p.to_json(), &key()), Err(PlanError::Inconsistent(_))));
    }
}
