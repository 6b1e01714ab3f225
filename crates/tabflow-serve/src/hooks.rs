//! `POST /hooks/tableau/{secret}`: events from Tableau's webhooks. Tableau sends no custom
//! headers, so the secret is the last part of the path, compared in constant time; a wrong
//! one (or none configured) is 404 like any unknown route. The body is read up to
//! [`tabflow_app::hooks::HOOK_BODY_LIMIT`] (413 beyond), must be Tableau's JSON event (400
//! otherwise), and is answered 202 at once: the service handles it in the background
//! ([`tabflow_app::App::handle_tableau_event`]: the object re-read through the REST API, the
//! mapped template planned), recording the outcome in the audit log (`hook.handled`, or
//! `hook.ignored` for an event without a mapping). An event repeated identically (Tableau may
//! send one twice) is acknowledged and not handled again.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tabflow_app::TableauEvent;
use tabflow_app::hooks::HOOK_BODY_LIMIT;

use crate::{ApiError, Shared};

/// How many recent events are remembered to drop repeats.
const SEEN: usize = 1000;

pub(crate) async fn tableau(
    State(sh): State<Arc<Shared>>,
    Path(secret): Path<String>,
    body: axum::body::Body,
) -> Response {
    let Some(hooks) = sh.app.tableau_hooks() else {
        return ApiError::not_found("no such route", "see /api/openapi.json for the routes").into_response();
    };
    if !hooks.secret_matches(&secret) {
        return ApiError::not_found("no such route", "see /api/openapi.json for the routes").into_response();
    }
    let bytes = match axum::body::to_bytes(body, HOOK_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the body is over {} KiB", HOOK_BODY_LIMIT / 1024),
                "send Tableau's webhook event (a small JSON object)",
            )
            .into_response();
        }
    };
    let ev = match TableauEvent::parse(&bytes) {
        Ok(ev) => ev,
        Err(e) => return ApiError::bad_request(e.message, e.hint).into_response(),
    };
    let mut answer = tabflow_app::hooks::accepted(&ev, hooks);
    let key = format!("{}|{}|{}|{}", ev.event_type, ev.resource_luid, ev.site_luid, ev.created_at);
    {
        let mut seen = sh.hooks_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&key) {
            answer["action"] = "duplicate".into();
            return (StatusCode::ACCEPTED, Json(answer)).into_response();
        }
        if seen.len() >= SEEN {
            seen.pop_front();
        }
        seen.push_back(key);
    }
    let app = sh.app.clone();
    let handle = tokio::runtime::Handle::current();
    // The service's futures are not all `Send` (see `crate::call`): a thread of its own.
    tokio::task::spawn_blocking(move || {
        let o = handle.block_on(app.handle_tableau_event(&ev));
        tracing::info!(event = o.event_type, resource = o.resource_luid, outcome = o.outcome, "Tableau event handled");
    });
    (StatusCode::ACCEPTED, Json(answer)).into_response()
}
