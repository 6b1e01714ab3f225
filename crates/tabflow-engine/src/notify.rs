//! Notifications after a run: who is told what, and delivery into the outbox.
//!
//! Recipients come from the plan: a `notify-owners` step lists owners with the projects (or
//! content) they are told about; a `transfer-ownership` step tells each new owner what they
//! received and the previous owner what was handed over. Messages are written after the run,
//! from what the journal says was applied (not from what was planned), so nobody is told about
//! an item that was skipped.
//!
//! Every message goes into the store's outbox first (all of a run's at once), then to each
//! configured channel:
//!
//! - **email** ([`smtp`], [`mail`]): with `TABFLOW_SMTP_URL` and `TABFLOW_NOTIFY_FROM` set, a
//!   plain-text message to the recipient's Tableau address; a recipient without one stays `dry`
//!   ("no email address on the Tableau account").
//! - **webhook**: with `TABFLOW_NOTIFY_WEBHOOK`, a JSON POST, optionally signed with
//!   `TABFLOW_NOTIFY_WEBHOOK_SECRET` (header `X-Tabflow-Signature: sha256=<HMAC-SHA256 of the
//!   body>`).
//!
//! A message is `sent` when every configured channel took it, `failed` (with each channel's
//! reason) when one refused or could not be reached, and `dry` when there is no channel (or no
//! address) for it: recorded, visible in `tabflow outbox list`, never silently dropped. A
//! failure to deliver never fails the run. [`retry`] (`tabflow outbox retry`) tries `failed` and
//! `dry` messages again with the configuration of the moment, skipping the channels that already
//! took them; every attempt first claims the row, so no two processes send the same message.

pub mod mail;
pub mod smtp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::plan::{Plan, StepKind};
use crate::store::{Entry, OutboxRow, Phase, Store, StoreResult};
use lettre::message::Mailbox;

/// One message for one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub recipient_id: String,
    pub recipient_name: String,
    pub recipient_email: String,
    pub subject: String,
    pub body: String,
}

/// A notification setting that cannot be used; says which variable and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong (never a password).
    pub problem: String,
    /// What to do.
    pub fix: String,
}

/// Email through an SMTP server.
#[derive(Debug, Clone)]
pub struct EmailChannel {
    pub smtp: smtp::Config,
    pub from: Mailbox,
}

/// The shape of the webhook's JSON body (`TABFLOW_NOTIFY_WEBHOOK_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WebhookFormat {
    /// tabflow's own: `{"event", "run_id", "to", "subject", "body", "at"}`.
    #[default]
    Plain,
    /// A Slack incoming webhook: `text` plus `blocks` (a header, the body, a console link).
    Slack,
    /// A Microsoft Teams incoming webhook: a `MessageCard` with the body and a console link.
    Teams,
}

impl WebhookFormat {
    pub fn parse(s: &str) -> Option<WebhookFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "plain" | "json" | "tabflow" => Some(WebhookFormat::Plain),
            "slack" => Some(WebhookFormat::Slack),
            "teams" | "msteams" => Some(WebhookFormat::Teams),
            _ => None,
        }
    }
}

/// Where messages go.
#[derive(Clone, Default)]
pub struct Delivery {
    pub webhook_url: Option<String>,
    webhook_secret: Option<String>,
    pub email: Option<EmailChannel>,
    /// The webhook body's shape.
    pub webhook_format: WebhookFormat,
    /// The web console's address (`TABFLOW_CONSOLE_URL`), linked from Slack and Teams messages.
    pub console_url: Option<String>,
    /// The events sent to the webhook (`TABFLOW_NOTIFY_EVENTS`); `None` = all of [`EVENTS`].
    pub events: Option<BTreeSet<String>>,
    /// Seconds before the first automatic retry of a failed delivery
    /// (`TABFLOW_NOTIFY_RETRY_SECS`); each later one waits four times longer. `None` = 60.
    pub retry_secs: Option<u64>,
    /// Delivery attempts before a failed message is left to `tabflow outbox retry` (a dead
    /// letter; `TABFLOW_NOTIFY_MAX_ATTEMPTS`). `None` = 5.
    pub max_attempts: Option<u32>,
}

/// The events tabflow tells the webhook about (besides the owners' messages of a run's notify
/// and hand-over steps, which always go out): `TABFLOW_NOTIFY_EVENTS` picks some of them
/// (`all`, the default, or `none`).
pub const EVENTS: &[&str] =
    &["plan-awaiting-approval", "run-started", "run-finished", "run-failed", "run-rolled-back", "report-ready"];

/// The longest wait between two automatic attempts.
const MAX_RETRY_WAIT: chrono::Duration = chrono::Duration::hours(6);

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("webhook_url", &self.webhook_url.as_deref().map(tabflow_client::repository::redact_url))
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "[redacted]"))
            .field("email", &self.email)
            .finish()
    }
}

impl Delivery {
    /// From the settings a front end read, looked up by name: `TABFLOW_NOTIFY_WEBHOOK`,
    /// `TABFLOW_NOTIFY_WEBHOOK_SECRET`, `TABFLOW_SMTP_URL`, `TABFLOW_NOTIFY_FROM`,
    /// `TABFLOW_SMTP_USERNAME`, `TABFLOW_SMTP_PASSWORD`, `TABFLOW_SMTP_CA_FILE` and
    /// `TABFLOW_SMTP_TIMEOUT_SECS` (blank = unset). The engine reads no environment itself: the
    /// CLI passes its environment here. Front ends call it before a run starts, so a mistake
    /// is reported before anything changes.
    pub fn from_settings(lookup: impl Fn(&str) -> Option<String>) -> Result<Delivery, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let webhook_format = match get("TABFLOW_NOTIFY_WEBHOOK_FORMAT") {
            None => WebhookFormat::Plain,
            Some(f) => WebhookFormat::parse(&f).ok_or_else(|| ConfigError {
                variable: "TABFLOW_NOTIFY_WEBHOOK_FORMAT",
                problem: format!("'{f}' is not a webhook format"),
                fix: "use plain (tabflow's JSON, the default), slack or teams".into(),
            })?,
        };
        let mut d = Delivery {
            webhook_url: get("TABFLOW_NOTIFY_WEBHOOK"),
            webhook_secret: get("TABFLOW_NOTIFY_WEBHOOK_SECRET"),
            email: None,
            webhook_format,
            console_url: get("TABFLOW_CONSOLE_URL").map(|u| u.trim_end_matches('/').to_string()),
            events: match get("TABFLOW_NOTIFY_EVENTS") {
                None => None,
                Some(list) => Some(parse_events(&list).map_err(|problem| ConfigError {
                    variable: "TABFLOW_NOTIFY_EVENTS",
                    problem,
                    fix: format!("give all, none, or a comma-separated list of: {}", EVENTS.join(", ")),
                })?),
            },
            retry_secs: match get("TABFLOW_NOTIFY_RETRY_SECS") {
                None => None,
                Some(v) => Some(v.trim().parse::<u64>().ok().filter(|n| *n <= 86_400).ok_or_else(|| ConfigError {
                    variable: "TABFLOW_NOTIFY_RETRY_SECS",
                    problem: format!("'{v}' is not a number of seconds from 0 to 86400"),
                    fix: "give the wait before the first automatic retry in seconds, e.g. 60 (the default)".into(),
                })?),
            },
            max_attempts: match get("TABFLOW_NOTIFY_MAX_ATTEMPTS") {
                None => None,
                Some(v) => {
                    Some(
                        v.trim().parse::<u32>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| ConfigError {
                            variable: "TABFLOW_NOTIFY_MAX_ATTEMPTS",
                            problem: format!("'{v}' is not a number of attempts from 1 to 100"),
                            fix: "give how many times a message is tried before it stays failed, e.g. 5 (the default)"
                                .into(),
                        })?,
                    )
                }
            },
        };
        if let Some(url) = get("TABFLOW_SMTP_URL") {
            let from = get("TABFLOW_NOTIFY_FROM").ok_or_else(|| ConfigError {
                variable: "TABFLOW_NOTIFY_FROM",
                problem: "TABFLOW_SMTP_URL is set, but not the address notification emails come from".into(),
                fix: "set TABFLOW_NOTIFY_FROM, e.g. TABFLOW_NOTIFY_FROM='tabflow <tabflow@example.com>' (or unset TABFLOW_SMTP_URL)".into(),
            })?;
            let mut email = EmailChannel::new(
                &url,
                &from,
                get("TABFLOW_SMTP_USERNAME"),
                get("TABFLOW_SMTP_PASSWORD"),
                get("TABFLOW_SMTP_CA_FILE").map(PathBuf::from),
            )?;
            if let Some(secs) = get("TABFLOW_SMTP_TIMEOUT_SECS") {
                let secs = secs.trim().parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| ConfigError {
                    variable: "TABFLOW_SMTP_TIMEOUT_SECS",
                    problem: format!("'{secs}' is not a number of seconds"),
                    fix: "give a whole number of seconds, e.g. 30 (the default)".into(),
                })?;
                email.smtp.timeout = std::time::Duration::from_secs(secs);
            }
            d.email = Some(email);
        } else if get("TABFLOW_SMTP_USERNAME").is_some() || get("TABFLOW_SMTP_PASSWORD").is_some() {
            return Err(ConfigError {
                variable: "TABFLOW_SMTP_URL",
                problem: "SMTP credentials are set but no SMTP server".into(),
                fix: "set TABFLOW_SMTP_URL, e.g. smtp://mail.example.com:587 or smtps://mail.example.com:465".into(),
            });
        }
        Ok(d)
    }

    pub fn webhook(url: impl Into<String>, secret: Option<String>) -> Delivery {
        Delivery { webhook_url: Some(url.into()), webhook_secret: secret, ..Delivery::default() }
    }

    /// Whether the webhook is told about `event` (one of [`EVENTS`]): a webhook is configured
    /// and `TABFLOW_NOTIFY_EVENTS` includes it.
    pub fn wants(&self, event: &str) -> bool {
        self.webhook_url.is_some() && self.events.as_ref().is_none_or(|e| e.contains(event))
    }

    /// When a message that failed its `attempts`-th delivery is tried again by itself:
    /// `retry_secs` × 4^(attempts − 1), at most 6 hours; `None` once the attempts are used up.
    pub fn next_attempt(&self, attempts: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if attempts >= i64::from(self.max_attempts.unwrap_or(5)) {
            return None;
        }
        let base = chrono::Duration::seconds(self.retry_secs.unwrap_or(60) as i64);
        let factor = 4i32.saturating_pow(u32::try_from(attempts.max(1) - 1).unwrap_or(0).min(10));
        Some(now + (base * factor).min(MAX_RETRY_WAIT))
    }

    /// The configured channels' names (`email`, `webhook`).
    pub fn channels(&self) -> Vec<&'static str> {
        let mut out = vec![];
        if self.email.is_some() {
            out.push("email");
        }
        if self.webhook_url.is_some() {
            out.push("webhook");
        }
        out
    }
}

impl EmailChannel {
    /// `url` as in [`smtp::Config::parse`], `from` a mailbox (`Name <address>` or `address`).
    pub fn new(
        url: &str,
        from: &str,
        username: Option<String>,
        password: Option<String>,
        ca_file: Option<PathBuf>,
    ) -> Result<EmailChannel, ConfigError> {
        let smtp = smtp::Config::parse(url, username, password, ca_file).map_err(|problem| ConfigError {
            variable: "TABFLOW_SMTP_URL",
            problem,
            fix: "use smtp://[USER:PASSWORD@]HOST[:PORT][?tls=required|opportunistic|none] or smtps://[USER:PASSWORD@]HOST[:PORT]".into(),
        })?;
        let from = mail::parse_mailbox(from).map_err(|problem| ConfigError {
            variable: "TABFLOW_NOTIFY_FROM",
            problem,
            fix: "give an address, optionally with a name: 'tabflow <tabflow@example.com>'".into(),
        })?;
        Ok(EmailChannel { smtp, from })
    }
}

/// `TABFLOW_NOTIFY_EVENTS`: `all`, `none`, or names of [`EVENTS`] separated by commas.
pub fn parse_events(list: &str) -> Result<BTreeSet<String>, String> {
    match list.trim() {
        "all" => return Ok(EVENTS.iter().map(|e| e.to_string()).collect()),
        "none" => return Ok(BTreeSet::new()),
        _ => {}
    }
    let mut out = BTreeSet::new();
    for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !EVENTS.contains(&e) {
            return Err(format!("'{e}' is not an event tabflow sends"));
        }
        out.insert(e.to_string());
    }
    Ok(out)
}

/// A message about one event for the webhook (Slack, Teams or tabflow's JSON): to
/// "tabflow events", no email address. `about` is the run or plan id the console link opens.
pub fn event_message(subject: String, body: String) -> Message {
    Message {
        recipient_id: "tabflow-events".into(),
        recipient_name: "tabflow events".into(),
        recipient_email: String::new(),
        subject,
        body,
    }
}

/// Sends one event's message to the webhook when it is configured for that event (see
/// [`Delivery::wants`]); answers what happened (`None`: not wanted). Kept in the outbox like
/// every message, retried with backoff when it fails.
pub async fn announce(
    store: &Store,
    delivery: &Delivery,
    event: &str,
    about: &str,
    m: Message,
) -> Option<StoreResult<Tally>> {
    if !delivery.wants(event) {
        return None;
    }
    // Only the webhook: the message has no person's address.
    let webhook_only = Delivery { email: None, ..delivery.clone() };
    Some(deliver_event(store, Some(event), about, &[m], &webhook_only).await)
}

/// The event a run's end is: `run-finished` (succeeded or partial), `run-failed` (a failure,
/// undone or not), `run-rolled-back` (a rollback someone asked for).
pub fn run_end_event(status: crate::store::RunStatus, failed_items: usize) -> &'static str {
    use crate::store::RunStatus as S;
    match status {
        S::Succeeded | S::Partial => "run-finished",
        S::RolledBack if failed_items == 0 => "run-rolled-back",
        _ => "run-failed",
    }
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// What was applied in the run: item id → (step id, item name, project).
fn applied(plan: &Plan, journal: &[Entry]) -> BTreeMap<String, (String, String, String)> {
    let done: BTreeSet<(&str, &str)> = journal
        .iter()
        .filter(|e| matches!(e.phase, Phase::Applied | Phase::AlreadyApplied))
        .map(|e| (e.step_id.as_str(), e.item_id.as_str()))
        .collect();
    let mut out = BTreeMap::new();
    for s in &plan.steps {
        for i in &s.items {
            if done.contains(&(s.id.as_str(), i.id.as_str())) {
                out.insert(i.id.clone(), (s.id.clone(), i.name.clone(), i.project.clone().unwrap_or_default()));
            }
        }
    }
    out
}

/// The `audience` of the `notify-owners` step that warns inactive users before their
/// license goes (`reclaim-licenses` with `grace_days`).
pub const INACTIVE_USERS: &str = "inactive-users";

/// What a finished run of a license reclamation records: the notices it sent (one row per
/// warned user, pending until its grace period ends), the notices it acted on (the users
/// whose role change was applied) and the notices its plan dropped (users who signed in
/// since, or are kept now). Nothing for other plans.
pub async fn record_license_notices(
    store: &Store,
    plan: &Plan,
    run_id: &str,
    journal: &[Entry],
    now: DateTime<Utc>,
) -> StoreResult<Value> {
    let done = applied(plan, journal);
    let (mut sent, mut acted, mut dropped) = (0u64, 0u64, 0u64);
    for s in &plan.steps {
        let site_id = s.details.pointer("/site_id").or(s.details.pointer("/grace/site_id")).and_then(Value::as_str);
        let Some(site_id) = site_id else { continue };
        match s.kind {
            StepKind::NotifyOwners if s.details.get("audience").and_then(Value::as_str) == Some(INACTIVE_USERS) => {
                let rows: Vec<crate::store::LicenseNoticeRow> = s
                    .details
                    .get("recipients")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| {
                        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                        let act_after = DateTime::parse_from_rfc3339(&text("act_after")).ok()?.with_timezone(&Utc);
                        Some(crate::store::LicenseNoticeRow {
                            site_id: site_id.to_string(),
                            user_id: text("id"),
                            user_name: text("user"),
                            site_role: text("site_role"),
                            to_role: text("to"),
                            notified_at: now,
                            act_after: act_after.max(now),
                            run_id: run_id.to_string(),
                            plan_id: plan.id.clone(),
                            resolved_at: None,
                            resolution: None,
                        })
                    })
                    .collect();
                sent += rows.len() as u64;
                store.insert_license_notices(&rows).await?;
            }
            StepKind::FindInactiveUsers => {
                for d in s.details.pointer("/grace/dropped").and_then(Value::as_array).into_iter().flatten() {
                    let (Some(user), Some(why)) =
                        (d.get("user_id").and_then(Value::as_str), d.get("why").and_then(Value::as_str))
                    else {
                        continue;
                    };
                    dropped += store
                        .resolve_license_notices(site_id, &[user.to_string()], &format!("dropped: {why}"), now)
                        .await?;
                }
            }
            StepKind::ChangeSiteRoles => {
                let users: Vec<String> = s
                    .items
                    .iter()
                    .filter(|i| done.get(&i.id).is_some_and(|(step, _, _)| step == &s.id))
                    .map(|i| i.id.clone())
                    .collect();
                acted += store.resolve_license_notices(site_id, &users, &format!("acted: run {run_id}"), now).await?;
            }
            _ => {}
        }
    }
    Ok(json!({"notices_sent": sent, "notices_acted_on": acted, "notices_dropped": dropped}))
}

/// The messages a finished run sends.
pub fn messages(plan: &Plan, run_id: &str, journal: &[Entry]) -> Vec<Message> {
    let done = applied(plan, journal);
    let undo = format!("Undo: tabflow runs rollback {run_id}");
    let mut out = vec![];
    for s in plan.steps.iter().filter(|s| s.kind == StepKind::NotifyOwners) {
        if s.details.get("audience").and_then(Value::as_str) == Some(INACTIVE_USERS) {
            // License reclamation's warning: the planner wrote each user's notice.
            for r in s.details.get("recipients").and_then(Value::as_array).into_iter().flatten() {
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                out.push(message(r, text("subject"), format!("{}\nRun: {run_id}\n", text("body"))));
            }
            continue;
        }
        for r in s.details.get("recipients").and_then(Value::as_array).into_iter().flatten() {
            let projects: BTreeSet<&str> =
                r.get("projects").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let lines: Vec<String> = done
                .iter()
                .filter(|(_, (_, _, project))| projects.contains(project.as_str()))
                .map(|(id, (step, name, project))| format!("- {name} ({project}): {}", describe(plan, step, id)))
                .collect();
            if lines.is_empty() {
                continue;
            }
            out.push(message(
                r,
                format!("tabflow: {} items changed in your projects", lines.len()),
                format!(
                    "Request: {}\nRun: {run_id}\n\nChanged in projects you own ({}):\n{}\n\n{undo}\n",
                    plan.request,
                    projects.iter().copied().collect::<Vec<_>>().join(", "),
                    lines.join("\n")
                ),
            ));
        }
    }
    // Users whose site role the run changed, when the plan says to tell them.
    for s in plan.steps.iter().filter(|s| s.kind == StepKind::ChangeSiteRoles) {
        for r in s.details.pointer("/notify/recipients").and_then(Value::as_array).into_iter().flatten() {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            if done.get(id).is_none_or(|(step, _, _)| step != &s.id) {
                continue;
            }
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            out.push(message(r, text("subject"), format!("{}\nRun: {run_id}\n\n{undo}\n", text("body"))));
        }
    }
    for s in plan.steps.iter().filter(|s| s.kind == StepKind::TransferOwnership) {
        let people: BTreeMap<&str, &Value> = s
            .details
            .get("people")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let mut received: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut previous: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for c in s.changes.iter().filter(|c| c.field == "owner") {
            let Some((_, name, project)) = done.get(&c.item) else { continue };
            let (Some(to), Some(from)) = (c.after_id.as_deref(), c.before_id.as_deref()) else { continue };
            let to_name =
                people.get(to).and_then(|p| p.get("name")).and_then(Value::as_str).or(c.after.as_str()).unwrap_or(to);
            let kind = s.item(&c.item).map(|i| i.kind.as_str()).unwrap_or("item");
            let place = if project.is_empty() { kind.to_string() } else { format!("{kind} in {project}") };
            received.entry(to).or_default().push(format!("- {name} ({place})"));
            previous.entry(from).or_default().push(format!("- {name} ({place}) → {to_name}"));
        }
        for (who, lines) in received {
            if let Some(p) = people.get(who) {
                out.push(message(
                    p,
                    format!("tabflow: you now own {} items", lines.len()),
                    format!(
                        "Request: {}\nRun: {run_id}\n\nYou are the new owner of:\n{}\n\n{undo}\n",
                        plan.request,
                        lines.join("\n")
                    ),
                ));
            }
        }
        for (who, lines) in previous {
            if let Some(p) = people.get(who) {
                out.push(message(
                    p,
                    format!("tabflow: {} of your items have new owners", lines.len()),
                    format!(
                        "Request: {}\nRun: {run_id}\n\nHanded over:\n{}\n\n{undo}\n",
                        plan.request,
                        lines.join("\n")
                    ),
                ));
            }
        }
    }
    out
}

/// What a step did to one item, in words ("moved to Archive; tags +archived-by-tabflow").
fn describe(plan: &Plan, step_id: &str, item_id: &str) -> String {
    let Some(step) = plan.steps.iter().find(|s| s.id == step_id) else { return String::new() };
    let parts: Vec<String> = step
        .changes_of(item_id)
        .map(|c| {
            let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            match c.field.as_str() {
                "project" => format!("moved to {}", text(&c.after)),
                "owner" => format!("new owner {}", text(&c.after)),
                "tags" => {
                    let set = |v: &Value| -> BTreeSet<String> {
                        v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
                    };
                    let added: Vec<String> = set(&c.after).difference(&set(&c.before)).cloned().collect();
                    format!("tagged {}", added.join(", "))
                }
                "permissions" => "permissions changed".to_string(),
                "datasource" => format!(
                    "now uses the datasource {}",
                    c.after.get("name").and_then(Value::as_str).unwrap_or("(replacement)")
                ),
                other => format!("{other} changed"),
            }
        })
        .collect();
    if parts.is_empty() { step.title.clone() } else { parts.join("; ") }
}

fn message(person: &Value, subject: String, body: String) -> Message {
    let s = |k: &str| person.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Message { recipient_id: s("id"), recipient_name: s("name"), recipient_email: s("email"), subject, body }
}

/// How many messages ended up in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub sent: usize,
    pub dry: usize,
    pub failed: usize,
}

/// Messages left `queued` or `sending` this long ago belong to a process that stopped; retry
/// takes them. (One attempt is bounded by the timeouts, a few minutes at most.)
const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// Writes a run's messages to the outbox and delivers them on the configured channels.
pub async fn deliver(store: &Store, run_id: &str, messages: &[Message], delivery: &Delivery) -> StoreResult<Tally> {
    deliver_event(store, None, run_id, messages, delivery).await
}

/// [`deliver`] of messages about one event (`run-started`, `report-ready`, …).
pub async fn deliver_event(
    store: &Store,
    event: Option<&str>,
    run_id: &str,
    messages: &[Message],
    delivery: &Delivery,
) -> StoreResult<Tally> {
    let ids = store.insert_outbox_event(run_id, event, messages).await?;
    let rows = ids
        .into_iter()
        .zip(messages.iter().cloned())
        .map(|(id, message)| Pending {
            id,
            run_id: run_id.to_string(),
            message,
            channels: json!({}),
            event: event.map(str::to_string),
            attempts: 0,
        })
        .collect();
    send_all(store, rows, &["queued"], None, delivery).await
}

/// Tries again the `failed` messages whose next automatic attempt is due at `now` (what the
/// worker's pass and `tabflow serve` do): backoff between attempts, then the message stays
/// `failed` without a next attempt, a dead letter (`tabflow outbox list --failed`).
pub async fn retry_due(store: &Store, now: DateTime<Utc>, delivery: &Delivery) -> StoreResult<Tally> {
    let rows = store.due_outbox(now).await?.into_iter().map(pending_of).collect();
    send_all(store, rows, &["failed"], None, delivery).await
}

fn pending_of(r: OutboxRow) -> Pending {
    Pending {
        id: r.id,
        run_id: r.run_id.clone(),
        message: message_of(&r),
        channels: r.channels,
        event: r.event,
        attempts: r.attempts,
    }
}

/// Tries one message of the outbox again (`tabflow outbox retry --id`): answers `None` when
/// there is no such message or it is not one to retry (it was sent, or another process is
/// sending it).
pub async fn retry_one(store: &Store, id: i64, delivery: &Delivery) -> StoreResult<Option<Tally>> {
    let stale = Utc::now() - STALE_AFTER;
    let rows: Vec<Pending> =
        store.retryable_outbox(None, stale).await?.into_iter().filter(|r| r.id == id).map(pending_of).collect();
    if rows.is_empty() {
        return Ok(None);
    }
    send_all(store, rows, &["failed", "dry"], Some(stale), delivery).await.map(Some)
}

/// Tries again the `failed` and `dry` messages (of one run, or all), and those a stopped
/// process left behind, with `delivery` as it is now; channels that already took a message are
/// not used again for it.
pub async fn retry(store: &Store, run_id: Option<&str>, delivery: &Delivery) -> StoreResult<Tally> {
    let stale = Utc::now() - STALE_AFTER;
    let rows = store.retryable_outbox(run_id, stale).await?;
    let rows = rows.into_iter().map(pending_of).collect();
    send_all(store, rows, &["failed", "dry"], Some(stale), delivery).await
}

fn message_of(r: &OutboxRow) -> Message {
    Message {
        recipient_id: r.recipient_id.clone(),
        recipient_name: r.recipient_name.clone(),
        recipient_email: r.recipient_email.clone(),
        subject: r.subject.clone(),
        body: r.body.clone(),
    }
}

/// A message being delivered, with what its channels did before.
struct Pending {
    id: i64,
    run_id: String,
    message: Message,
    channels: Value,
    event: Option<String>,
    /// Attempts before this one.
    attempts: i64,
}

/// One channel's outcome for one message.
struct Outcome {
    status: &'static str,
    detail: String,
}

async fn send_all(
    store: &Store,
    rows: Vec<Pending>,
    from: &[&str],
    stale_before: Option<DateTime<Utc>>,
    delivery: &Delivery,
) -> StoreResult<Tally> {
    let mut tally = Tally::default();
    let http = webhook_client();
    let mut email = delivery.email.as_ref().map(Mailer::new);
    for Pending { id, run_id, message: m, mut channels, event, attempts } in rows {
        if !store.claim_outbox(id, from, stale_before).await? {
            // Another process (a concurrent retry) has it.
            continue;
        }
        let status_of = |channels: &Value, ch: &str| {
            channels.get(ch).and_then(|c| c.get("status")).and_then(Value::as_str).map(str::to_string)
        };
        let took_it: BTreeSet<&'static str> =
            ["email", "webhook"].into_iter().filter(|c| status_of(&channels, c).as_deref() == Some("sent")).collect();
        let already = |ch: &str| took_it.contains(ch);
        let mut now: Vec<(&'static str, Outcome)> = vec![];
        if let Some(mailer) = email.as_mut()
            && !already("email")
        {
            now.push(("email", mailer.send(id, &run_id, &m).await));
        }
        if let Some(url) = &delivery.webhook_url
            && !already("webhook")
        {
            now.push(("webhook", post(http.as_ref(), url, delivery, &run_id, event.as_deref(), &m).await));
        }
        let at = Utc::now().to_rfc3339();
        if !channels.is_object() {
            channels = json!({});
        }
        for (name, o) in &now {
            let attempts = channels.get(*name).and_then(|c| c.get("attempts")).and_then(Value::as_u64).unwrap_or(0);
            channels[*name] = json!({"status": o.status, "detail": o.detail, "attempts": attempts + 1, "at": at});
        }
        // The channels that count: those configured now, and any that took it before.
        let counted: Vec<(&str, &str, String)> = delivery
            .channels()
            .into_iter()
            .chain(took_it.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|c| {
                let entry = channels.get(c)?;
                let status = entry.get("status").and_then(Value::as_str).unwrap_or("dry");
                Some((c, status, entry.get("detail").and_then(Value::as_str).unwrap_or_default().to_string()))
            })
            .collect();
        let (status, detail) = if counted.is_empty() {
            (
                "dry",
                "no channel configured: set TABFLOW_SMTP_URL and TABFLOW_NOTIFY_FROM for email, or TABFLOW_NOTIFY_WEBHOOK"
                    .to_string(),
            )
        } else {
            let status = if counted.iter().any(|(_, s, _)| *s == "failed") {
                "failed"
            } else if counted.iter().all(|(_, s, _)| *s == "sent") {
                "sent"
            } else {
                "dry"
            };
            (status, counted.iter().map(|(c, _, d)| format!("{c}: {d}")).collect::<Vec<_>>().join("; "))
        };
        match status {
            "sent" => tally.sent += 1,
            "dry" => tally.dry += 1,
            _ => tally.failed += 1,
        }
        let next = if status == "failed" { delivery.next_attempt(attempts + 1, Utc::now()) } else { None };
        let detail = match next {
            Some(t) => {
                format!("{detail} (tried {} time(s); next automatic attempt at {})", attempts + 1, t.to_rfc3339())
            }
            None if status == "failed" => format!(
                "{detail} (tried {} time(s); no more automatic attempts: tabflow outbox retry --id {id})",
                attempts + 1
            ),
            None => detail,
        };
        store.finish_outbox_attempt(id, status, &detail, &channels, next).await?;
    }
    if let Some(mailer) = email {
        mailer.close().await;
    }
    Ok(tally)
}

/// The webhook channel's HTTP client. No redirects: the signed body would go to wherever a
/// 3xx points; a redirect is a failure that names the fix.
fn webhook_client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .ok()
}

/// The webhook's JSON body in the configured format. Slack and Teams get the subject as a
/// heading, the body as text and a link to the console (when `TABFLOW_CONSOLE_URL` is set).
pub fn webhook_body(
    format: WebhookFormat,
    console: Option<&str>,
    run_id: &str,
    m: &Message,
    at: DateTime<Utc>,
) -> Value {
    webhook_body_for(format, console, run_id, None, m, at)
}

/// [`webhook_body`] of a message about an event: tabflow's JSON says which in `type` (an
/// owner's message is `notification`).
pub fn webhook_body_for(
    format: WebhookFormat,
    console: Option<&str>,
    run_id: &str,
    event: Option<&str>,
    m: &Message,
    at: DateTime<Utc>,
) -> Value {
    let link = console.map(|c| {
        if run_id.starts_with("p-") {
            format!("{c}/console/plans/{run_id}")
        } else {
            format!("{c}/console/runs/{run_id}")
        }
    });
    match format {
        WebhookFormat::Plain => json!({
            "event": "tabflow.notification", "run_id": run_id, "to": {"id": m.recipient_id, "name": m.recipient_name, "email": m.recipient_email},
            "subject": m.subject, "body": m.body, "at": at.to_rfc3339(), "type": event.unwrap_or("notification"),
        }),
        WebhookFormat::Slack => {
            // Slack's section text is limited to 3000 characters.
            let text: String = m.body.chars().take(2900).collect();
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": m.subject.chars().take(150).collect::<String>()}}),
                json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{text}```")}}),
            ];
            if let Some(l) = &link {
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("<{l}|Open in the tabflow console>")}}));
            }
            json!({"text": m.subject, "blocks": blocks})
        }
        WebhookFormat::Teams => {
            let mut card = json!({
                "@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": m.subject, "title": m.subject,
                "text": m.body.replace('\n', "  \n"),
            });
            if let Some(l) = &link {
                card["potentialAction"] = json!([{"@type": "OpenUri", "name": "Open in the tabflow console", "targets": [{"os": "default", "uri": l}]}]);
            }
            card
        }
    }
}

/// The webhook channel: one signed JSON POST.
async fn post(
    http: Option<&reqwest::Client>,
    url: &str,
    delivery: &Delivery,
    run_id: &str,
    event: Option<&str>,
    m: &Message,
) -> Outcome {
    let Some(client) = http else {
        return Outcome { status: "failed", detail: "no HTTP client could be built".into() };
    };
    let secret = delivery.webhook_secret.as_deref();
    let body = webhook_body_for(delivery.webhook_format, delivery.console_url.as_deref(), run_id, event, m, Utc::now())
        .to_string();
    let mut req = client.post(url).header("content-type", "application/json");
    if let Some(secret) = secret {
        req = req.header("X-Tabflow-Signature", signature(secret, body.as_bytes()));
    }
    match req.body(body).send().await {
        Ok(r) if r.status().is_success() => {
            Outcome { status: "sent", detail: format!("answered {}", r.status().as_u16()) }
        }
        Ok(r) if r.status().is_redirection() => Outcome {
            status: "failed",
            detail: format!(
                "the webhook answered {}, a redirect, which tabflow does not follow; set the webhook URL to its final address",
                r.status().as_u16()
            ),
        },
        Ok(r) => Outcome { status: "failed", detail: format!("the webhook answered {}", r.status().as_u16()) },
        Err(e) => Outcome { status: "failed", detail: format!("the webhook is unreachable: {}", e.without_url()) },
    }
}

/// The email channel over one SMTP session for a batch, reconnecting after a broken one.
struct Mailer<'a> {
    channel: &'a EmailChannel,
    session: Option<smtp::Session>,
    /// Why the server could not be reached, once it could not: the rest of the batch fails
    /// with the same reason instead of waiting for the same timeout again.
    unreachable: Option<(String, bool)>,
}

impl<'a> Mailer<'a> {
    fn new(channel: &'a EmailChannel) -> Mailer<'a> {
        Mailer { channel, session: None, unreachable: None }
    }

    async fn send(&mut self, id: i64, run_id: &str, m: &Message) -> Outcome {
        let address = m.recipient_email.trim();
        if address.is_empty() {
            return Outcome { status: "dry", detail: "not sent: no email address on the Tableau account".into() };
        }
        let to = match mail::check_address(address) {
            Ok(to) => Mailbox::new(Some(m.recipient_name.clone()), to),
            Err(problem) => {
                return Outcome { status: "failed", detail: format!("not sent: {problem} (fix the Tableau account)") };
            }
        };
        if let Some((reason, temporary)) = &self.unreachable {
            return failure(reason.clone(), *temporary);
        }
        let session = match self.session.take().filter(smtp::Session::usable) {
            Some(s) => self.session.insert(s),
            None => match smtp::Session::connect(&self.channel.smtp).await {
                Ok(s) => self.session.insert(s),
                Err(e) => {
                    let reason = self.channel.smtp.scrub(&e.to_string());
                    if matches!(e, smtp::Error::Connect { .. } | smtp::Error::Timeout { .. }) || !e.temporary() {
                        // It would be the same for every message of the batch.
                        self.unreachable = Some((reason.clone(), e.temporary()));
                    }
                    return failure(reason, e.temporary());
                }
            },
        };
        let from = &self.channel.from;
        let email = mail::Email {
            from,
            to: &to,
            subject: &m.subject,
            body: &m.body,
            date: Utc::now(),
            message_id: format!("tabflow.{id}.{}@{}", uuid::Uuid::new_v4().simple(), from.email.domain()),
            run_id,
        };
        let message = match email.build() {
            Ok(message) => message,
            Err(problem) => return failure(format!("not sent: {problem}"), false),
        };
        match session.send(&message).await {
            Ok(reply) => Outcome {
                status: "sent",
                detail: format!("sent to {address} ({})", self.channel.smtp.scrub(&reply.to_string())),
            },
            Err(e) => failure(self.channel.smtp.scrub(&e.to_string()), e.temporary()),
        }
    }

    async fn close(self) {
        if let Some(s) = self.session {
            s.quit().await;
        }
    }
}

fn failure(reason: String, temporary: bool) -> Outcome {
    let next = if temporary {
        "temporary; `tabflow outbox retry` sends it again"
    } else {
        "fix the cause, then `tabflow outbox retry`"
    };
    Outcome { status: "failed", detail: format!("{reason} ({next})") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw one-connection-at-a-time HTTP server answering `status` with `extra` headers;
    /// counts the requests it got.
    fn http_server(status: &'static str, extra: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                );
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn a_webhook_redirect_is_a_failure_and_is_not_followed() {
        let (target, target_hits) = http_server("200 OK", String::new());
        let (hook, hook_hits) = http_server("307 Temporary Redirect", format!("Location: {target}/elsewhere\r\n"));
        let http = webhook_client().unwrap();
        let m = Message {
            recipient_id: "u1".into(),
            recipient_name: "Ann".into(),
            recipient_email: "ann@example.com".into(),
            subject: "s".into(),
            body: "b".into(),
        };
        let url = format!("{hook}/hook");
        let delivery = Delivery::webhook(url.clone(), Some("whsec".into()));
        let out = post(Some(&http), &url, &delivery, "run-1", None, &m).await;
        assert_eq!(out.status, "failed", "{}", out.detail);
        assert!(out.detail.contains("redirect"), "{}", out.detail);
        assert_eq!(hook_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(target_hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the signed body followed the redirect");
    }
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// A port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn message(name: &str, email: &str) -> Message {
        Message {
            recipient_id: format!("id-{name}"),
            recipient_name: name.into(),
            recipient_email: email.into(),
            subject: "tabflow: 1 items changed".into(),
            body: "- Sales (Finance): moved to Archive\n".into(),
        }
    }

    /// One SMTP conversation played by the server side: (what the client must send, the
    /// reply). `""` sends the reply without reading (the greeting); `"<data>"` reads a
    /// message up to its final dot. Answers what the client sent.
    async fn scripted(script: Vec<(&'static str, &'static str)>) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut read = BufReader::new(read);
            let mut heard = vec![];
            for (expect, reply) in script {
                if expect == "<data>" {
                    let mut data = vec![];
                    while !data.ends_with(b"\r\n.\r\n") {
                        let mut byte = [0u8];
                        read.read_exact(&mut byte).await.unwrap();
                        data.push(byte[0]);
                    }
                    heard.push(String::from_utf8(data).unwrap());
                } else if !expect.is_empty() {
                    let mut line = String::new();
                    read.read_line(&mut line).await.unwrap();
                    assert!(line.starts_with(expect), "expected {expect:?}, the client sent {line:?}");
                    heard.push(line.trim_end().to_string());
                }
                write.write_all(reply.as_bytes()).await.unwrap();
            }
            heard
        });
        (port, task)
    }

    fn config(url: &str) -> smtp::Config {
        smtp::Config::parse(url, None, None, None).unwrap()
    }

    #[tokio::test]
    async fn multiline_replies_temporary_refusal_rset_and_dot_stuffing() {
        let (port, server) = scripted(vec![
            ("", "220-mail.example.com first line\r\n220 ready\r\n"),
            ("EHLO ", "250-mail.example.com\r\n250 8BITMIME\r\n"),
            ("MAIL FROM:<tabflow@example.com>", "250 ok\r\n"),
            ("RCPT TO:<busy@example.com>", "451-4.3.0 mailbox busy\r\n451 4.3.0 try later\r\n"),
            ("RSET", "250 reset\r\n"),
            ("MAIL FROM:<tabflow@example.com>", "250 ok\r\n"),
            ("RCPT TO:<ann@example.com>", "250 ok\r\n"),
            ("DATA", "354 go ahead\r\n"),
            ("<data>", "250 2.0.0 queued as 42\r\n"),
            ("QUIT", "221 bye\r\n"),
        ])
        .await;
        let from = mail::parse_mailbox("tabflow@example.com").unwrap();
        let email = |to: &str, body: &str| {
            let to = mail::parse_mailbox(to).unwrap();
            mail::Email {
                from: &from,
                to: &to,
                subject: "x",
                body,
                date: Utc::now(),
                message_id: "tabflow.1.x@example.com".into(),
                run_id: "r-1",
            }
            .build()
            .unwrap()
        };
        let mut s = smtp::Session::connect(&config(&format!("smtp://127.0.0.1:{port}"))).await.unwrap();
        let e = s.send(&email("busy@example.com", "x")).await.unwrap_err();
        assert!(e.temporary(), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "the SMTP server 127.0.0.1:{port} refused RCPT TO:<busy@example.com>: 451 4.3.0 mailbox busy try later"
            )
        );
        assert!(s.usable(), "a refused recipient must not end the session");
        let reply = s.send(&email("ann@example.com", ".leading dot\n..two\nend\n")).await.unwrap();
        assert_eq!(reply.to_string(), "250 2.0.0 queued as 42");
        s.quit().await;
        let heard = server.await.unwrap();
        let data = heard.iter().find(|l| l.contains("leading")).unwrap();
        assert!(data.ends_with("\r\n\r\n..leading dot\r\n...two\r\nend\r\n.\r\n"), "{data:?}");
        assert!(!data.contains("\r\n\r\n.\r\n"), "the message gained an empty last line: {data:?}");
    }

    #[tokio::test]
    async fn replies_in_any_language_are_read_and_quoted_without_a_panic() {
        // Multi-byte text where a byte-sliced reply would be cut inside a character.
        let (port, server) = scripted(vec![
            ("", "220-丸丸 mail.example.com prêt\r\n220 ré丸dy 🚀\r\n"),
            ("EHLO ", "250-mail.例え.com\r\n250 8BITMIME\r\n"),
            ("MAIL FROM:<tabflow@example.com>", "250 ok\r\n"),
            ("RCPT TO:<ann@example.com>", "550-5.1.1 adresse refusée — İİ\r\n550 5.1.1 丸\r\n"),
        ])
        .await;
        let from = mail::parse_mailbox("tabflow@example.com").unwrap();
        let to = mail::parse_mailbox("ann@example.com").unwrap();
        let message = mail::Email {
            from: &from,
            to: &to,
            subject: "x",
            body: "x",
            date: Utc::now(),
            message_id: "tabflow.2.x@example.com".into(),
            run_id: "r-2",
        }
        .build()
        .unwrap();
        let mut s = smtp::Session::connect(&config(&format!("smtp://127.0.0.1:{port}"))).await.unwrap();
        let e = s.send(&message).await.unwrap_err();
        assert!(!e.temporary(), "{e}");
        assert!(e.to_string().ends_with("550 5.1.1 adresse refusée — İİ 丸"), "{e}");
        drop(s);
        assert_eq!(server.await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn auth_login_when_it_is_all_the_server_offers() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let user = Box::leak(format!("{}\r\n", b64("ann")).into_boxed_str());
        let pass = Box::leak(format!("{}\r\n", b64("pw-1234")).into_boxed_str());
        let (port, server) = scripted(vec![
            ("", "220 ready\r\n"),
            ("EHLO", "250-mail.example.com\r\n250-SIZE 1000000\r\n250 AUTH LOGIN\r\n"),
            ("AUTH LOGIN", "334 VXNlcm5hbWU6\r\n"),
            (user.trim_end(), "334 UGFzc3dvcmQ6\r\n"),
            (pass.trim_end(), "235 2.7.0 accepted\r\n"),
            ("QUIT", "221 bye\r\n"),
        ])
        .await;
        let c =
            smtp::Config::parse(&format!("smtp://ann@localhost:{port}"), None, Some("pw-1234".into()), None).unwrap();
        smtp::Session::connect(&c).await.unwrap().quit().await;
        assert_eq!(server.await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn required_tls_without_starttls_and_a_refused_login_are_permanent() {
        let (port, _server) = scripted(vec![("", "220 ready\r\n"), ("EHLO", "250 mail.example.com\r\n")]).await;
        let e = smtp::Session::connect(&config(&format!("smtp://127.0.0.1:{port}?tls=required"))).await.err().unwrap();
        assert!(!e.temporary() && e.to_string().contains("does not offer STARTTLS"), "{e}");
        assert!(e.to_string().contains("smtps://"), "{e}");

        let (port, _server) = scripted(vec![
            ("", "220 ready\r\n"),
            ("EHLO", "250-mail.example.com\r\n250 AUTH PLAIN\r\n"),
            ("AUTH PLAIN ", "535 5.7.8 credentials invalid\r\n"),
        ])
        .await;
        let c = smtp::Config::parse(&format!("smtp://ann:hunter22@127.0.0.1:{port}"), None, None, None).unwrap();
        let e = smtp::Session::connect(&c).await.err().unwrap();
        assert!(!e.temporary(), "{e}");
        assert!(e.to_string().contains("refused AUTH for the user 'ann' (PLAIN): 535"), "{e}");
        assert!(!e.to_string().contains("hunter22") && !format!("{e:?}").contains("hunter22"), "{e:?}");
    }

    #[tokio::test]
    async fn no_address_stays_dry_an_unreachable_server_fails_and_retry_uses_new_settings() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let down = EmailChannel::new(
            &format!("smtp://127.0.0.1:{}", closed_port()),
            "tabflow <tabflow@example.com>",
            None,
            None,
            None,
        )
        .unwrap();
        let delivery = Delivery { email: Some(down), ..Delivery::default() };
        let tally =
            deliver(&store, "r-1", &[message("Ann", "ann@example.com"), message("Bob", "")], &delivery).await.unwrap();
        assert_eq!(tally, Tally { sent: 0, dry: 1, failed: 1 });
        let rows = store.outbox(Some("r-1")).await.unwrap();
        let bob = rows.iter().find(|r| r.recipient_name == "Bob").unwrap();
        assert_eq!(bob.status, "dry");
        assert!(bob.detail.contains("no email address on the Tableau account"), "{}", bob.detail);
        let ann = rows.iter().find(|r| r.recipient_name == "Ann").unwrap();
        assert_eq!(ann.status, "failed");
        assert!(ann.detail.starts_with("email: cannot connect to the SMTP server 127.0.0.1:"), "{}", ann.detail);
        assert_eq!(ann.channels["email"]["attempts"], 1);

        // A fresh claim of a failed row works once; a second claimant gets nothing.
        assert!(store.claim_outbox(ann.id, &["failed"], None).await.unwrap());
        assert!(!store.claim_outbox(ann.id, &["failed"], None).await.unwrap());
        // A row left `sending` is taken over only once it is stale.
        assert_eq!(
            retry(&store, Some("r-1"), &Delivery::default()).await.unwrap(),
            Tally { sent: 0, dry: 1, failed: 0 }
        );
        let later = Utc::now() + chrono::Duration::minutes(1);
        assert!(store.claim_outbox(ann.id, &[], Some(later)).await.unwrap());

        // Without any channel, everything is dry and says how to configure one.
        store.finish_outbox(ann.id, "failed", "x", &ann.channels).await.unwrap();
        let t = retry(&store, None, &Delivery::default()).await.unwrap();
        assert_eq!(t, Tally { sent: 0, dry: 2, failed: 0 });
        let rows = store.outbox(None).await.unwrap();
        assert!(rows.iter().all(|r| r.status == "dry"));
        assert!(rows.iter().any(|r| r.detail.contains("no channel configured: set TABFLOW_SMTP_URL")), "{rows:?}");
        store.close().await;
    }

    #[tokio::test]
    async fn a_store_from_before_the_channels_column_is_upgraded_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            use sqlx::ConnectOptions;
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
            let mut conn = opts.connect().await.unwrap();
            sqlx::query("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, recipient_id TEXT NOT NULL, recipient_name TEXT NOT NULL, recipient_email TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO outbox (run_id, recipient_id, recipient_name, recipient_email, subject, body, status, detail, created_at, updated_at) VALUES ('r-0', 'u', 'Ann', 'ann@example.com', 's', 'b', 'dry', 'no webhook configured (TABFLOW_NOTIFY_WEBHOOK); email is not sent by this build', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let store = Store::open(&path).await.unwrap();
        let rows = store.outbox(None).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].channels, json!({}));
        assert!(rows[0].detail.starts_with("no channel configured: set TABFLOW_SMTP_URL"), "{}", rows[0].detail);
        assert_eq!(retry(&store, None, &Delivery::default()).await.unwrap(), Tally { sent: 0, dry: 1, failed: 0 });
        store.close().await;
        // Opening it again finds the column there.
        Store::open(&path).await.unwrap().close().await;
    }

    #[test]
    fn settings_errors_name_the_variable_and_never_the_password() {
        let e =
            EmailChannel::new("smtp://u:hunter22@h.example?tls=bogus", "a@b.example", None, None, None).unwrap_err();
        assert_eq!(e.variable, "TABFLOW_SMTP_URL");
        assert!(!format!("{e} {e:?}").contains("hunter22"), "{e:?}");
        let e = EmailChannel::new("smtp://h.example", "not an address", None, None, None).unwrap_err();
        assert_eq!(e.variable, "TABFLOW_NOTIFY_FROM");
        let d = Delivery {
            email: Some(EmailChannel::new("smtp://u:hunter22@h.example", "a@b.example", None, None, None).unwrap()),
            ..Delivery::webhook("https://hooks.example/x", Some("whsec-1".into()))
        };
        let shown = format!("{d:?}");
        assert!(!shown.contains("hunter22") && !shown.contains("whsec-1"), "{shown}");
        assert_eq!(d.channels(), vec!["email", "webhook"]);
    }
}

#[cfg(test)]
mod webhook_body_tests {
    use super::*;

    #[test]
    fn slack_and_teams_bodies_carry_the_subject_the_body_and_a_console_link() {
        let m = Message {
            recipient_id: "approvers".into(),
            recipient_name: "approvers".into(),
            recipient_email: String::new(),
            subject: "tabflow: plan p-1 awaiting approval".into(),
            body: "line one\nline two".into(),
        };
        let at = DateTime::parse_from_rfc3339("2026-12-07T08:00:00Z").unwrap().with_timezone(&Utc);
        let plain = webhook_body(WebhookFormat::Plain, None, "r-1", &m, at);
        assert_eq!(plain["event"], "tabflow.notification");
        assert_eq!(plain["subject"], m.subject);
        let slack = webhook_body(WebhookFormat::Slack, Some("https://tf.example.com"), "p-1", &m, at);
        assert_eq!(slack["text"], m.subject);
        assert_eq!(slack["blocks"][0]["type"], "header");
        assert!(slack["blocks"][1]["text"]["text"].as_str().unwrap().contains("line two"));
        assert_eq!(
            slack["blocks"][2]["text"]["text"],
            "<https://tf.example.com/console/plans/p-1|Open in the tabflow console>"
        );
        let teams = webhook_body(WebhookFormat::Teams, Some("https://tf.example.com"), "r-1", &m, at);
        assert_eq!(teams["@type"], "MessageCard");
        assert_eq!(teams["title"], m.subject);
        assert_eq!(teams["potentialAction"][0]["targets"][0]["uri"], "https://tf.example.com/console/runs/r-1");
        assert!(webhook_body(WebhookFormat::Teams, None, "r-1", &m, at).get("potentialAction").is_none());
        assert_eq!(WebhookFormat::parse("Slack"), Some(WebhookFormat::Slack));
        assert_eq!(WebhookFormat::parse("discord"), None);
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};

    type Heard = Arc<Mutex<Vec<(BTreeMap<String, String>, String)>>>;

    /// A real HTTP receiver on 127.0.0.1:0 that answers 500 to its first `fail_first`
    /// requests and 200 after; keeps every request's headers (lowercased) and body.
    fn flaky_receiver(fail_first: usize) -> (String, Heard) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let heard: Heard = Arc::new(Mutex::new(vec![]));
        let keep = heard.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut headers = BTreeMap::new();
                let mut first = true;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if std::mem::take(&mut first) {
                        continue;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0usize);
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let n = {
                    let mut h = keep.lock().unwrap();
                    h.push((headers, String::from_utf8_lossy(&body).to_string()));
                    h.len()
                };
                let status = if n <= fail_first { "500 Internal Server Error" } else { "200 OK" };
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                );
            }
        });
        (url, heard)
    }

    fn event(subject: &str) -> Message {
        event_message(subject.into(), "Request: archive Finance\nRun: r-1\n".into())
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_with_backoff_until_the_receiver_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let (url, heard) = flaky_receiver(2);
        let mut delivery = Delivery::webhook(url, Some("whsec-9".into()));
        delivery.retry_secs = Some(0);
        delivery.max_attempts = Some(5);
        let t = announce(&store, &delivery, "run-started", "r-1", event("tabflow: run r-1 started"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t, Tally { sent: 0, dry: 0, failed: 1 });
        let row = store.outbox(None).await.unwrap().remove(0);
        assert_eq!((row.status.as_str(), row.attempts, row.event.as_deref()), ("failed", 1, Some("run-started")));
        assert!(row.next_attempt_at.is_some(), "a first failure is tried again by itself");
        assert!(row.detail.contains("next automatic attempt"), "{}", row.detail);

        // Not due yet for a clock an hour back; due now.
        assert_eq!(
            retry_due(&store, Utc::now() - chrono::Duration::hours(1), &delivery).await.unwrap(),
            Tally::default()
        );
        assert_eq!(retry_due(&store, Utc::now(), &delivery).await.unwrap().failed, 1, "the receiver fails twice");
        assert_eq!(retry_due(&store, Utc::now(), &delivery).await.unwrap().sent, 1);
        let row = store.outbox(None).await.unwrap().remove(0);
        assert_eq!((row.status.as_str(), row.attempts, row.next_attempt_at), ("sent", 3, None));
        assert_eq!(retry_due(&store, Utc::now(), &delivery).await.unwrap(), Tally::default(), "sent: never again");

        // Every attempt carried the same signed body; the last one was taken.
        let heard = heard.lock().unwrap().clone();
        assert_eq!(heard.len(), 3);
        for (headers, body) in &heard {
            assert_eq!(headers.get("x-tabflow-signature"), Some(&signature("whsec-9", body.as_bytes())));
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!((v["type"].as_str(), v["run_id"].as_str()), (Some("run-started"), Some("r-1")), "{v}");
        }

        // The backoff grows fourfold and stops at the last attempt.
        let d = Delivery { retry_secs: Some(60), max_attempts: Some(3), ..Delivery::default() };
        let now = Utc::now();
        assert_eq!(d.next_attempt(1, now), Some(now + chrono::Duration::seconds(60)));
        assert_eq!(d.next_attempt(2, now), Some(now + chrono::Duration::seconds(240)));
        assert_eq!(d.next_attempt(3, now), None);
        store.close().await;
    }

    #[tokio::test]
    async fn attempts_used_up_leave_a_dead_letter_that_only_a_retry_by_id_sends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let (url, heard) = flaky_receiver(2);
        let mut delivery = Delivery::webhook(url, None);
        delivery.retry_secs = Some(0);
        delivery.max_attempts = Some(2);
        delivery.webhook_format = WebhookFormat::Teams;
        delivery.console_url = Some("https://tf.example.com".into());
        announce(&store, &delivery, "run-failed", "r-7", event("tabflow: run r-7 failed")).await.unwrap().unwrap();
        assert_eq!(retry_due(&store, Utc::now(), &delivery).await.unwrap().failed, 1);
        let dead = store.outbox(None).await.unwrap().remove(0);
        assert_eq!((dead.status.as_str(), dead.attempts, dead.next_attempt_at), ("failed", 2, None));
        assert!(dead.detail.contains(&format!("tabflow outbox retry --id {}", dead.id)), "{}", dead.detail);
        assert_eq!(retry_due(&store, Utc::now(), &delivery).await.unwrap(), Tally::default(), "a dead letter waits");
        assert_eq!(heard.lock().unwrap().len(), 2);

        // `tabflow outbox retry --id`: the receiver takes it now.
        assert_eq!(retry_one(&store, dead.id, &delivery).await.unwrap(), Some(Tally { sent: 1, dry: 0, failed: 0 }));
        let heard = heard.lock().unwrap().clone();
        let card: Value = serde_json::from_str(&heard[2].1).unwrap();
        assert_eq!(card["@type"], "MessageCard", "{card}");
        assert_eq!(card["title"], "tabflow: run r-7 failed");
        assert_eq!(card["potentialAction"][0]["targets"][0]["uri"], "https://tf.example.com/console/runs/r-7");

        // Events the settings leave out, or without a webhook, are not written at all.
        let mut only = delivery.clone();
        only.events = Some(parse_events("run-failed, run-rolled-back").unwrap());
        assert!(announce(&store, &only, "run-started", "r-8", event("x")).await.is_none());
        assert!(announce(&store, &Delivery::default(), "run-failed", "r-8", event("x")).await.is_none());
        assert_eq!(store.outbox(Some("r-8")).await.unwrap().len(), 0);
        assert!(parse_events("run-exploded").unwrap_err().contains("run-exploded"));
        assert!(parse_events("none").unwrap().is_empty());
        store.close().await;
    }
}
