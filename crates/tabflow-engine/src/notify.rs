//! Notifications after a run: who is told what, and delivery into the outbox.
//!
//! Recipients come from the plan: a `notify-owners` step lists owners with the projects (or
//! content) they are told about; a `transfer-ownership` step tells each new owner what they
//! received and the previous owner what was handed over. Messages are written after the run,
//! from what the journal says was applied (not from what was planned), so nobody is told about
//! an item that was skipped.
//!
//! Every message goes into the store's outbox first. With a webhook configured
//! (`TABFLOW_NOTIFY_WEBHOOK`, optionally signed with `TABFLOW_NOTIFY_WEBHOOK_SECRET`: header
//! `X-Tabflow-Signature: sha256=<HMAC-SHA256 of the body>`) it is POSTed and marked `sent` or
//! `failed` (with the reason; `tabflow outbox` lists it). Without one — and for email, which
//! this build does not send — it stays `dry`: recorded, visible, never silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::plan::Plan;
use crate::store::{Entry, Phase, Store, StoreResult};

/// One message for one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub recipient_id: String,
    pub recipient_name: String,
    pub recipient_email: String,
    pub subject: String,
    pub body: String,
}

/// Where messages go.
#[derive(Clone, Default)]
pub struct Delivery {
    pub webhook_url: Option<String>,
    webhook_secret: Option<String>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Delivery {
    /// From `TABFLOW_NOTIFY_WEBHOOK` and `TABFLOW_NOTIFY_WEBHOOK_SECRET`.
    pub fn from_env() -> Delivery {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Delivery { webhook_url: get("TABFLOW_NOTIFY_WEBHOOK"), webhook_secret: get("TABFLOW_NOTIFY_WEBHOOK_SECRET") }
    }

    pub fn webhook(url: impl Into<String>, secret: Option<String>) -> Delivery {
        Delivery { webhook_url: Some(url.into()), webhook_secret: secret }
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

/// The messages a finished run sends.
pub fn messages(plan: &Plan, run_id: &str, journal: &[Entry]) -> Vec<Message> {
    let done = applied(plan, journal);
    let undo = format!("Undo: tabflow runs rollback {run_id}");
    let mut out = vec![];
    for s in plan.steps.iter().filter(|s| s.kind == "notify-owners") {
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
    for s in plan.steps.iter().filter(|s| s.kind == "transfer-ownership") {
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

/// Writes the messages to the outbox and delivers them where a channel is configured.
/// Answers (sent, dry, failed).
pub async fn deliver(
    store: &Store,
    run_id: &str,
    messages: &[Message],
    delivery: &Delivery,
) -> StoreResult<(usize, usize, usize)> {
    let (mut sent, mut dry, mut failed) = (0, 0, 0);
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().ok();
    for m in messages {
        let id = store.insert_outbox(run_id, m).await?;
        let (status, detail) = match (&delivery.webhook_url, &http) {
            (Some(url), Some(client)) => {
                let body = json!({
                    "event": "tabflow.notification", "run_id": run_id, "to": {"id": m.recipient_id, "name": m.recipient_name, "email": m.recipient_email},
                    "subject": m.subject, "body": m.body, "at": Utc::now().to_rfc3339(),
                })
                .to_string();
                let mut req = client.post(url).header("content-type", "application/json");
                if let Some(secret) = &delivery.webhook_secret {
                    req = req.header("X-Tabflow-Signature", signature(secret, body.as_bytes()));
                }
                match req.body(body).send().await {
                    Ok(r) if r.status().is_success() => ("sent", format!("webhook answered {}", r.status().as_u16())),
                    Ok(r) => ("failed", format!("webhook answered {}", r.status().as_u16())),
                    Err(e) => ("failed", format!("webhook unreachable: {}", e.without_url())),
                }
            }
            _ => ("dry", "no webhook configured (TABFLOW_NOTIFY_WEBHOOK); email is not sent by this build".into()),
        };
        match status {
            "sent" => sent += 1,
            "dry" => dry += 1,
            _ => failed += 1,
        }
        store.set_outbox_status(id, status, &detail).await?;
    }
    Ok((sent, dry, failed))
}
