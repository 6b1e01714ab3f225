//! A run's progress as Server-Sent Events: `event: step` (run, step and rollback starts and
//! ends), `event: item` (an item done, skipped, failed or restored) and `event: finished`
//! (the run's final status), each with the engine's event as JSON data (its `event` field
//! names the kind: `run-started`, `step-started`, `item-finished`, …).
//!
//! A run this server is executing streams every event so far, then the live ones, so a late
//! watcher misses nothing. Any other run (finished, or executed by another process on the
//! same store, e.g. `tabflow apply`) first gets its current state from the store as
//! `event: step` with `{"event": "state", …}`, then `finished` once the store says it ended.
//!
//! Every event's data passes through the service's redaction list ([`tabflow_app::Redactor`])
//! as it is sent: a stream has no size known in advance, so the answer-wide redaction layer
//! lets it pass, and a configured secret that reached an event's text (a step title from an
//! intent's parameter, an item's failure detail) is `[redacted]` here.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::json;
use tabflow_app::{Event, Permission, Redactor, RunStatus};

use crate::auth::{Auth, need};
use crate::error::ErrorBody;
use crate::{ApiError, Shared, call};

type Events = BoxStream<'static, Result<SseEvent, Infallible>>;

fn sse(e: &Event, redactor: &Redactor) -> SseEvent {
    let name = match e {
        Event::ItemFinished { .. } | Event::ItemRestored { .. } => "item",
        Event::RunFinished { .. } => "finished",
        _ => "step",
    };
    event(name, &serde_json::to_string(e).unwrap_or_default(), redactor)
}

/// One SSE event whose data is `json` with every configured secret `[redacted]` (the raw
/// secret and its JSON-escaped form, which is how it appears inside a string).
fn event(name: &str, json: &str, redactor: &Redactor) -> SseEvent {
    let mut data = redactor.redact(json).into_owned();
    for secret in redactor.secrets() {
        let quoted = serde_json::to_string(secret).unwrap_or_default();
        let escaped = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or_default();
        if !escaped.is_empty() && escaped != secret {
            data = data.replace(escaped, "[redacted]");
        }
    }
    SseEvent::default().event(name).data(data)
}

fn ended(s: RunStatus) -> bool {
    !matches!(s, RunStatus::Running | RunStatus::RollingBack)
}

/// The run's progress (Server-Sent Events).
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, description = "text/event-stream: `event: step|item|finished`, JSON data", content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run_events(
    State(sh): State<Arc<Shared>>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    need(&c, Permission::Read)?;
    stream(&sh, id).await
}

/// The events of run `id` as an SSE answer (the caller checked the reader's right).
pub(crate) async fn stream(sh: &Arc<Shared>, id: String) -> Result<Response, ApiError> {
    let redactor = sh.app.redactor().clone();
    let stream: Events = match sh.watch(&id) {
        Some(w) => {
            let events = w.subscribe();
            stream::unfold((events, redactor), |(mut ev, r)| async move {
                let e = ev.next().await?;
                Some((Ok(sse(&e, &r)), (ev, r)))
            })
            .boxed()
        }
        None => {
            let rid = id.clone();
            let d = call(&sh.app, move |app| async move { app.run(&rid).await }).await?;
            let state = json!({
                "event": "state",
                "run_id": d.run.id,
                "status": d.run.status.as_str(),
                "summary": d.run.summary,
                "journal_entries": d.journal.len(),
            });
            let first = event("step", &state.to_string(), &redactor);
            let app = sh.app.clone();
            let rest = stream::unfold(Some(d.run.status), move |last| {
                let app = app.clone();
                let id = id.clone();
                let redactor = redactor.clone();
                async move {
                    let mut status = last?;
                    while !ended(status) {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        let rid = id.clone();
                        status = match call(&app, move |a| async move { a.run(&rid).await }).await {
                            Ok(d) => d.run.status,
                            Err(_) => return None,
                        };
                    }
                    let data = json!({"event": "run-finished", "run_id": id, "status": status.as_str()});
                    Some((Ok(event("finished", &data.to_string(), &redactor)), None))
                }
            });
            stream::once(async move { Ok(first) }).chain(rest).boxed()
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
