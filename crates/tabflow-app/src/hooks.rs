//! Events from Tableau's webhooks (issue #21): `POST /hooks/tableau/{secret}` of `tabflow
//! serve` hands the body here; a mapping in the config file says which template each event
//! triggers.
//!
//! ```toml
//! [hooks.tableau]
//! secret_env = "TABFLOW_TABLEAU_HOOK_SECRET"   # the last part of the URL Tableau posts to
//!
//! [[hooks.tableau.map]]
//! event = "WorkbookRefreshFailed"               # Tableau's event_type
//! template = "notify-owners"                    # a built-in or stored template
//! params = { project = "{{project}}" }          # from the object as the site has it now
//! ```
//!
//! The event only triggers: its payload (`resource`, `event_type`, `resource_name`,
//! `site_luid`, `resource_luid`, `created_at`) is not trusted for anything but the id. The
//! object is read again through the REST API, and the template's parameters are filled from
//! what the site says now: `{{resource_id}}`, `{{name}}`, `{{project}}`, `{{owner}}`,
//! `{{owner_email}}`, plus `{{event}}` and `{{resource}}` (a template parameter named
//! `resource_id` gets the id without being mapped). The plan then goes the way a schedule's
//! does ([`App::dispatch`]): a report, an unattended run, or an approval request with the
//! approvers told. Events without a mapping, for another site, or for an object that is gone
//! are acknowledged and recorded in the audit log, nothing more.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tabflow_engine::audit::NewRecord;

use crate::App;
use crate::error::{Error, Result};
use crate::schedules::Fired;

/// The actor of everything an event from Tableau does.
pub const HOOK_ACTOR: &str = "tableau webhook";

/// The largest webhook body read (Tableau's are well under 1 KiB).
pub const HOOK_BODY_LIMIT: usize = 16 * 1024;

/// `[hooks.tableau]` of the config file: the secret of the URL and the event → template map.
#[derive(Clone)]
pub struct TableauHooks {
    secret: String,
    pub rules: Vec<HookRule>,
}

impl std::fmt::Debug for TableauHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableauHooks").field("secret", &"[redacted]").field("rules", &self.rules).finish()
    }
}

/// One `[[hooks.tableau.map]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookRule {
    /// Tableau's `event_type` (`WorkbookRefreshFailed`, `DatasourceRefreshFailed`, `UserDeleted`, …).
    pub event: String,
    pub template: String,
    /// A version of the template; the newest when left out.
    #[serde(default)]
    pub version: Option<i64>,
    /// The template's parameters; `{{placeholder}}`s are filled from the object re-read.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    hooks: Option<HooksSection>,
}

#[derive(Deserialize)]
struct HooksSection {
    tableau: Option<TableauSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableauSection {
    secret_env: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    map: Vec<HookRule>,
}

/// What a placeholder may name.
const PLACEHOLDERS: &[&str] = &["resource_id", "name", "project", "owner", "owner_email", "event", "resource"];

impl TableauHooks {
    /// `[hooks.tableau]` of a config file (`None` when it has none); `env` looks up
    /// `secret_env`. The secret must be at least 16 characters; every rule's placeholders are
    /// checked here, templates when an event comes.
    pub fn from_config(toml_text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Option<TableauHooks>> {
        let hint = "see [hooks.tableau] in the README: secret_env = \"VAR\" and [[hooks.tableau.map]] entries with event, template and params";
        let file: ConfigFile = toml::from_str(toml_text).map_err(|e| {
            Error::usage(
                format!(
                    "the config file is not valid: {}",
                    tabflow_site::text::toml_error(toml_text, e.message(), e.span())
                ),
                hint,
            )
        })?;
        let Some(section) = file.hooks.and_then(|h| h.tableau) else { return Ok(None) };
        let secret = match (&section.secret_env, &section.secret) {
            (Some(var), _) => env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                Error::usage(
                    format!("[hooks.tableau] secret_env names {var}, which is not set"),
                    format!("set {var} to a long random value (e.g. openssl rand -hex 24); Tableau posts to /hooks/tableau/<that value>"),
                )
            })?,
            (None, Some(s)) => s.clone(),
            (None, None) => {
                return Err(Error::usage("[hooks.tableau] has no secret_env (or secret)", hint));
            }
        };
        let secret = secret.trim().to_string();
        if secret.chars().count() < 16 || !secret.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c)) {
            return Err(Error::usage(
                "the [hooks.tableau] secret must be at least 16 characters of letters, digits, - _ . ~ (it is part of a URL)",
                "e.g. openssl rand -hex 24",
            ));
        }
        for r in &section.map {
            if r.event.trim().is_empty() || r.template.trim().is_empty() {
                return Err(Error::usage("a [[hooks.tableau.map]] entry has an empty event or template", hint));
            }
            for v in r.params.values() {
                for p in placeholders(v) {
                    if !PLACEHOLDERS.contains(&p.as_str()) {
                        return Err(Error::usage(
                            format!(
                                "[[hooks.tableau.map]] for {}: '{{{{{p}}}}}' is not a placeholder tabflow fills",
                                r.event
                            ),
                            format!(
                                "use {}",
                                PLACEHOLDERS.iter().map(|p| format!("{{{{{p}}}}}")).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(dup) =
            section.map.iter().enumerate().find(|(i, r)| section.map[..*i].iter().any(|o| o.event == r.event))
        {
            return Err(Error::usage(
                format!("[[hooks.tableau.map]] maps {} twice", dup.1.event),
                "keep one entry per event",
            ));
        }
        Ok(Some(TableauHooks { secret, rules: section.map }))
    }

    /// Hooks with this secret and rules (tests, and front ends that build them themselves).
    pub fn new(secret: impl Into<String>, rules: Vec<HookRule>) -> TableauHooks {
        TableauHooks { secret: secret.into(), rules }
    }

    /// Whether `given` is the secret, compared in constant time (over SHA-256 digests, so
    /// neither the contents nor the length leak through timing).
    pub fn secret_matches(&self, given: &str) -> bool {
        use sha2::Digest;
        let a = sha2::Sha256::digest(self.secret.as_bytes());
        let b = sha2::Sha256::digest(given.as_bytes());
        a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The secret, for the redaction list (it is part of a URL).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn rule(&self, event: &str) -> Option<&HookRule> {
        self.rules.iter().find(|r| r.event == event)
    }
}

/// The `{{name}}`s in a value.
fn placeholders(v: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = v;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else { break };
        out.push(rest[start + 2..start + end].trim().to_string());
        rest = &rest[start + end + 2..];
    }
    out
}

/// A Tableau webhook's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableauEvent {
    /// `WORKBOOK`, `DATASOURCE`, `EXTRACTS`, `USER`, `VIEW`, `SITE`, …
    pub resource: String,
    pub event_type: String,
    #[serde(default)]
    pub resource_name: String,
    #[serde(default)]
    pub site_luid: String,
    pub resource_luid: String,
    #[serde(default)]
    pub created_at: String,
}

impl TableauEvent {
    /// Reads a webhook body; a usage error (400) naming what is wrong.
    pub fn parse(body: &[u8]) -> Result<TableauEvent> {
        let hint = "Tableau's webhook body is JSON with resource, event_type, resource_name, site_luid, resource_luid and created_at";
        let ev: TableauEvent = serde_json::from_slice(body)
            .map_err(|e| Error::usage(format!("the body is not a Tableau webhook event: {e}"), hint))?;
        let ok = |s: &str| !s.trim().is_empty() && s.len() <= 200 && !s.chars().any(char::is_control);
        if !ok(&ev.event_type) || !ok(&ev.resource) || !ok(&ev.resource_luid) {
            return Err(Error::usage(
                "the event has an empty or malformed event_type, resource or resource_luid",
                hint,
            ));
        }
        if ev.resource_name.len() > 1000 || ev.site_luid.len() > 200 || ev.created_at.len() > 100 {
            return Err(Error::usage("the event has an over-long field", hint));
        }
        Ok(ev)
    }

    /// The kind of object the event is about: `workbook`, `datasource`, `user`, `view`, or
    /// `None` (a site event).
    pub fn kind(&self) -> Option<&'static str> {
        let e = self.event_type.as_str();
        let by_resource = match self.resource.to_ascii_uppercase().as_str() {
            "WORKBOOK" => Some("workbook"),
            "DATASOURCE" => Some("datasource"),
            "USER" => Some("user"),
            "VIEW" => Some("view"),
            _ => None,
        };
        if e.starts_with("Workbook") {
            Some("workbook")
        } else if e.starts_with("Datasource") {
            Some("datasource")
        } else if e.starts_with("User") || e.starts_with("Admin") {
            Some("user")
        } else if e.starts_with("View") {
            Some("view")
        } else {
            by_resource
        }
    }
}

/// What an event came to (the HTTP answer says it was accepted; this is recorded in the
/// audit log as `hook.handled`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HookOutcome {
    pub event_type: String,
    pub resource_luid: String,
    /// `ignored` (no mapping), `other-site`, `gone` (the object is no longer on the site),
    /// `failed`, or what the plan came to: `report`, `awaiting-approval`, a run's status,
    /// `needs-input`, `invalid`.
    pub outcome: String,
    pub detail: String,
    pub template: Option<String>,
    pub plan_id: Option<String>,
    pub run_id: Option<String>,
}

/// The object an event is about, as the site has it now.
#[derive(Debug, Clone, Default)]
struct Live {
    name: String,
    project: String,
    owner: String,
    owner_email: String,
}

impl App {
    /// The mapping of Tableau events this service was given (`Options::tableau_hooks`).
    pub fn tableau_hooks(&self) -> Option<&TableauHooks> {
        self.tableau_hooks.as_ref()
    }

    /// Records an event that has no mapping (`hook.ignored` in the audit log).
    pub async fn ignore_tableau_event(&self, ev: &TableauEvent, why: &str) -> HookOutcome {
        let o = HookOutcome {
            event_type: ev.event_type.clone(),
            resource_luid: ev.resource_luid.clone(),
            outcome: "ignored".into(),
            detail: why.to_string(),
            template: None,
            plan_id: None,
            run_id: None,
        };
        self.audit_hook(ev, "hook.ignored", &o).await;
        o
    }

    /// Handles one event from Tableau: re-reads the object, plans the mapped template with
    /// parameters from the live object, and reports, runs or asks for an approval like a
    /// schedule. Every outcome is recorded in the audit log (`hook.handled`).
    pub async fn handle_tableau_event(&self, ev: &TableauEvent) -> HookOutcome {
        let mut o = HookOutcome {
            event_type: ev.event_type.clone(),
            resource_luid: ev.resource_luid.clone(),
            outcome: String::new(),
            detail: String::new(),
            template: None,
            plan_id: None,
            run_id: None,
        };
        let Some(rule) = self.tableau_hooks.as_ref().and_then(|h| h.rule(&ev.event_type)).cloned() else {
            return self
                .ignore_tableau_event(ev, &format!("no [[hooks.tableau.map]] entry for {}", ev.event_type))
                .await;
        };
        o.template = Some(rule.template.clone());
        match self.handle_mapped(ev, &rule, &mut o).await {
            Ok(()) => {}
            Err(e) => {
                o.outcome = "failed".into();
                o.detail = format!("{} ({})", e.message, e.hint);
            }
        }
        o.detail = self.redact_text(&o.detail);
        self.audit_hook(ev, "hook.handled", &o).await;
        o
    }

    async fn handle_mapped(&self, ev: &TableauEvent, rule: &HookRule, o: &mut HookOutcome) -> Result<()> {
        let session = self.connect().await?;
        let site = session.client.session().await.site_id;
        if !ev.site_luid.is_empty() && !site.is_empty() && ev.site_luid != site {
            o.outcome = "other-site".into();
            o.detail = format!("the event is for site {}, this service is connected to {site}", ev.site_luid);
            return Ok(());
        }
        let kind = ev.kind();
        let live = match kind {
            Some(k) => match self.reread(k, &ev.resource_luid).await {
                Ok(Some(l)) => l,
                Ok(None) => {
                    o.outcome = "gone".into();
                    o.detail = format!("{k} {} is no longer on the site; nothing to do", ev.resource_luid);
                    return Ok(());
                }
                Err(e) => return Err(e),
            },
            None => Live::default(),
        };
        let t = self.template(&rule.template, rule.version).await?;
        let values: BTreeMap<&str, String> = [
            ("resource_id", ev.resource_luid.clone()),
            ("name", live.name.clone()),
            ("project", live.project.clone()),
            ("owner", live.owner.clone()),
            ("owner_email", live.owner_email.clone()),
            ("event", ev.event_type.clone()),
            ("resource", kind.unwrap_or("site").to_string()),
        ]
        .into_iter()
        .collect();
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &rule.params {
            let mut filled = v.clone();
            for p in placeholders(v) {
                let value = values.get(p.as_str()).cloned().unwrap_or_default();
                if value.is_empty() {
                    return Err(Error::failed(
                        format!("the {} has no {p} for the template's parameter {k}", kind.unwrap_or("event")),
                        "map the parameter to another placeholder, or give it a fixed value",
                    ));
                }
                filled = filled.replace(&format!("{{{{{p}}}}}"), &value);
                // `{{ p }}` with spaces too.
                filled = filled.replace(&format!("{{{{ {p} }}}}"), &value);
            }
            params.insert(k.clone(), filled);
        }
        if t.params.contains_key("resource_id") && !params.contains_key("resource_id") {
            params.insert("resource_id".into(), ev.resource_luid.clone());
        }
        let instance = t.instantiate(&params)?;
        let what =
            kind.map(|k| format!("{k} '{}' ({})", live.name, ev.resource_luid)).unwrap_or_else(|| "the site".into());
        let origin = format!("Tableau event {} on {what}", ev.event_type);
        let note = format!(
            "Triggered by {origin}{}; the plan is made from the site as read now",
            if ev.created_at.is_empty() { String::new() } else { format!(" at {}", ev.created_at) }
        );
        let planned = self.plan_instance(&t, instance, BTreeMap::new(), HOOK_ACTOR, false, vec![note]).await?;
        let mut f = Fired {
            schedule_id: format!("hook:{}", ev.event_type),
            outcome: String::new(),
            detail: String::new(),
            plan_id: None,
            run_id: None,
        };
        Box::pin(self.dispatch(planned, Some(&t), &origin, HOOK_ACTOR, None, &mut f)).await;
        o.outcome = f.outcome;
        o.detail = f.detail;
        o.plan_id = f.plan_id;
        o.run_id = f.run_id;
        Ok(())
    }

    /// The object as the site has it now; `None` when it is gone (404).
    async fn reread(&self, kind: &str, id: &str) -> Result<Option<Live>> {
        use tabflow_wire::ids::{DatasourceId, UserId, ViewId, WorkbookId};
        let session = self.connect().await?;
        let c = &session.client;
        let server = session.server_label();
        let gone = |e: &tabflow_client::Error| e.status() == Some(404);
        let (name, project, owner_id) = match kind {
            "workbook" => match c.workbook(&WorkbookId::new(id)).await {
                Ok(w) => (w.name, w.project, w.owner),
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(Error::client(e, &server)),
            },
            "datasource" => match c.datasource(&DatasourceId::new(id)).await {
                Ok(d) => (d.name, d.project, d.owner),
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(Error::client(e, &server)),
            },
            "view" => match c.view(&ViewId::new(id)).await {
                Ok(v) => (v.name, v.project, v.owner),
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(Error::client(e, &server)),
            },
            _ => match c.user(&UserId::new(id)).await {
                Ok(u) => {
                    let name = u.name.clone().unwrap_or_default();
                    return Ok(Some(Live {
                        name: name.clone(),
                        project: String::new(),
                        owner: name,
                        owner_email: u.email.unwrap_or_default(),
                    }));
                }
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(Error::client(e, &server)),
            },
        };
        let mut live = Live { name: name.unwrap_or_default(), ..Default::default() };
        live.project = project.and_then(|p| p.name).unwrap_or_default();
        if let Some(owner) = owner_id {
            live.owner = owner.name.clone().unwrap_or_default();
            if let Some(oid) = owner.id.as_deref()
                && let Ok(u) = c.user(&UserId::new(oid)).await
            {
                live.owner = u.name.unwrap_or(live.owner);
                live.owner_email = u.email.unwrap_or_default();
            }
        }
        Ok(Some(live))
    }

    async fn audit_hook(&self, ev: &TableauEvent, action: &str, o: &HookOutcome) {
        let _ = tabflow_engine::audit::append(
            &self.store,
            NewRecord {
                actor: HOOK_ACTOR.into(),
                action: action.into(),
                plan_id: o.plan_id.clone(),
                run_id: o.run_id.clone(),
                item_id: Some(ev.resource_luid.clone()),
                before: Some(json!({
                    "event_type": ev.event_type, "resource": ev.resource, "resource_name": ev.resource_name,
                    "site_luid": ev.site_luid, "created_at": ev.created_at,
                })),
                after: Some(json!({"template": o.template, "detail": o.detail})),
                outcome: o.outcome.clone(),
                ..Default::default()
            },
        )
        .await;
    }
}

/// What the webhook's answer says about an accepted event, before it is handled.
pub fn accepted(ev: &TableauEvent, hooks: &TableauHooks) -> Value {
    match hooks.rule(&ev.event_type) {
        Some(r) => {
            json!({"accepted": true, "event_type": ev.event_type, "resource_luid": ev.resource_luid, "template": r.template, "action": "planning"})
        }
        None => {
            json!({"accepted": true, "event_type": ev.event_type, "resource_luid": ev.resource_luid, "template": null, "action": "ignored"})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_the_secret_from_the_environment_and_checks_placeholders() {
        let text = r#"
[profiles.x]
server = "https://t.example.com"

[hooks.tableau]
secret_env = "HOOK_SECRET"

[[hooks.tableau.map]]
event = "WorkbookRefreshFailed"
template = "notify-owners"
params = { project = "{{project}}" }
"#;
        let env = |k: &str| (k == "HOOK_SECRET").then(|| "0123456789abcdef0123".to_string());
        let h = TableauHooks::from_config(text, env).unwrap().unwrap();
        assert!(h.secret_matches("0123456789abcdef0123"));
        assert!(!h.secret_matches("0123456789abcdef012"));
        assert!(!h.secret_matches(""));
        assert_eq!(h.rule("WorkbookRefreshFailed").unwrap().template, "notify-owners");
        assert!(!format!("{h:?}").contains("0123456789abcdef"));
        let e = TableauHooks::from_config(text, |_| None).unwrap_err();
        assert!(e.message.contains("HOOK_SECRET") && e.hint.contains("openssl"), "{e:?}");
        let short = |_: &str| Some("short".to_string());
        assert!(TableauHooks::from_config(text, short).unwrap_err().message.contains("at least 16"));
        let bad = text.replace("{{project}}", "{{projekt}}");
        let e = TableauHooks::from_config(&bad, env).unwrap_err();
        assert!(e.message.contains("'{{projekt}}' is not a placeholder") && e.hint.contains("{{project}}"), "{e:?}");
        assert!(TableauHooks::from_config("[profiles.x]\nserver = \"s\"\n", env).unwrap().is_none());
    }

    #[test]
    fn bodies_are_read_strictly_and_the_kind_follows_the_event() {
        let ev = TableauEvent::parse(br#"{"resource":"EXTRACTS","event_type":"WorkbookRefreshFailed","resource_name":"Sales","site_luid":"s1","resource_luid":"w1","created_at":"2026-12-03T10:00:00Z"}"#).unwrap();
        assert_eq!(ev.kind(), Some("workbook"));
        let ev =
            TableauEvent::parse(br#"{"resource":"USER","event_type":"UserDeleted","resource_luid":"u1"}"#).unwrap();
        assert_eq!(ev.kind(), Some("user"));
        assert!(TableauEvent::parse(b"not json").unwrap_err().message.contains("not a Tableau webhook event"));
        assert!(TableauEvent::parse(br#"{"resource":"WORKBOOK","event_type":"","resource_luid":"w"}"#).is_err());
        assert!(TableauEvent::parse(br#"{"event_type":"WorkbookCreated"}"#).is_err());
        assert_eq!(placeholders("{{a}} and {{ b }}"), vec!["a", "b"]);
    }
}
