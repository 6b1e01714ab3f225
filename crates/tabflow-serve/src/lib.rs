//! `tabflow serve`: the HTTP API of DESIGN.md §6 over the application service
//! ([`tabflow_app::App`]). This crate authenticates callers (bearer tokens made by `tabflow
//! tokens create`, stored hashed), checks their role, maps requests to the service's calls
//! and its errors to statuses, and streams run progress as Server-Sent Events; planning,
//! approvals, runs, rollback and the audit log are the service's.
//!
//! Every response carries `Cache-Control: no-store`; errors are `{"error": {"code",
//! "message", "hint"}}`; request bodies are limited to [`BODY_LIMIT`] bytes; no CORS headers
//! are sent (a browser page of another origin cannot read the answers). The OpenAPI document
//! at `/api/openapi.json` is generated from the handlers' types.

mod api;
mod auth;
mod console;
mod error;
mod events;
mod hooks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tabflow_app::{App, RunWatch};

pub use error::ApiError;

/// The largest request body read, in bytes (a request is at most 2000 characters; a
/// selection of a few thousand (step, item) pairs fits).
pub const BODY_LIMIT: usize = 256 * 1024;

/// What every handler shares: the service, and the runs this process is executing (their
/// events for any number of watchers).
pub struct Shared {
    pub(crate) app: Arc<App>,
    pub(crate) live: Mutex<HashMap<String, RunWatch>>,
    /// The web console's signed-in browsers (session id → token and CSRF token).
    pub(crate) sessions: console::Sessions,
    /// Recent events from Tableau's webhooks (to drop identical repeats).
    pub(crate) hooks_seen: Mutex<std::collections::VecDeque<String>>,
}

impl Shared {
    pub(crate) fn watch(&self, run_id: &str) -> Option<RunWatch> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).get(run_id).cloned()
    }

    /// Keeps a started run's events for watchers while it runs, and waits for it (its
    /// reports are written when it ends) in the background; then watchers read it from the
    /// store.
    pub(crate) fn follow(self: &Arc<Self>, handle: tabflow_app::RunHandle) {
        let id = handle.run_id().to_string();
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), handle.watch());
        let shared = self.clone();
        tokio::spawn(async move {
            if let Err(e) = handle.wait().await {
                tracing::warn!(run = id, "run ended with an error: {}", e.message);
            }
            // Unless a rollback of the same run started meanwhile.
            let mut live = shared.live.lock().unwrap_or_else(|e| e.into_inner());
            if live.get(&id).is_some_and(RunWatch::is_finished) {
                live.remove(&id);
            }
        });
    }
}

/// The API's router over a service (MCP at `/mcp` with the default limits).
pub fn router(app: Arc<App>) -> Router {
    router_with(app, tabflow_mcp::Limits::default())
}

/// The API's router over a service, with MCP over streamable HTTP at `/mcp` under `mcp`'s
/// limits (a bearer token is required there too; its role decides the tools it may call).
pub fn router_with(app: Arc<App>, mcp: tabflow_mcp::Limits) -> Router {
    let mcp_service = tabflow_mcp::http_service(app.clone(), mcp);
    let shared = Arc::new(Shared {
        app,
        live: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        hooks_seen: Mutex::new(Default::default()),
    });
    let mcp_routes = Router::new()
        .route_service("/mcp", mcp_service)
        .route_layer(axum::middleware::from_fn_with_state(shared.clone(), mcp_auth));
    api::routes()
        .route("/hooks/tableau/{secret}", axum::routing::post(hooks::tableau))
        .merge(console::routes())
        .merge(mcp_routes)
        .fallback(|| async { ApiError::not_found("no such route", "see /api/openapi.json for the routes") })
        .with_state(shared.clone())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(shared, redact))
        .layer(axum::middleware::map_response(no_store))
}

/// `/mcp` needs a live bearer token like the API; the caller goes to the MCP server in the
/// request's extensions.
async fn mcp_auth(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    let (mut parts, body) = req.into_parts();
    match auth::Auth::from_request_parts(&mut parts, &shared).await {
        Ok(auth::Auth(c)) => {
            parts.extensions.insert(tabflow_mcp::HttpCaller { name: c.name, role: c.role });
            next.run(axum::extract::Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}

/// The largest answer [`redact`] reads whole to redact; a larger one (or one of unknown
/// size, such as an event stream) is a streamed answer and passes as it is.
const REDACT_LIMIT: u64 = 32 * 1024 * 1024;

/// Every answer of a known size — every error of the API (its message and hint, including
/// the JSON and path refusals that quote what the caller sent) and every console page —
/// passes through the service's one redaction list ([`tabflow_app::Redactor`]): a configured
/// secret never leaves in an answer. Event streams (`text/event-stream`) pass as they are:
/// `events.rs` redacts each event's data through the same list as it is sent.
async fn redact(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let r = next.run(req).await;
    let redactor = shared.app.redactor();
    if redactor.secrets().is_empty() {
        return r;
    }
    let streamed = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let size = axum::body::HttpBody::size_hint(r.body()).exact();
    if streamed || size.is_none_or(|n| n > REDACT_LIMIT) {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    let bytes = match axum::body::to_bytes(body, REDACT_LIMIT as usize).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(format!("the answer could not be read: {e}")).into_response(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = match redactor.redact(&text) {
        std::borrow::Cow::Borrowed(_) => axum::body::Body::from(bytes),
        std::borrow::Cow::Owned(clean) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            axum::body::Body::from(clean)
        }
    };
    Response::from_parts(parts, body)
}

async fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// The OpenAPI document of the API (JSON).
pub fn openapi_json() -> String {
    api::openapi()
}

/// Refuses to listen on an address other hosts can reach unless the operator said so: the
/// API has no TLS of its own, so tokens would cross the network in clear text.
pub fn check_listen(addr: &SocketAddr, insecure: bool) -> Result<(), ApiError> {
    if addr.ip().is_loopback() || insecure {
        return Ok(());
    }
    Err(ApiError::usage(
        format!("{addr} is not a loopback address: tokens would cross the network without TLS"),
        "listen on 127.0.0.1 (the default) behind a TLS-terminating proxy, or pass --insecure-listen to accept the risk",
    ))
}

/// A running server.
pub struct Running {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting connections and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }
}

/// Serves the API on `addr` (e.g. `127.0.0.1:0` for any free port) until [`Running::stop`].
pub async fn start(app: Arc<App>, addr: SocketAddr) -> std::io::Result<Running> {
    start_with(app, addr, tabflow_mcp::Limits::default()).await
}

/// [`start`] with the limits of MCP at `/mcp`.
pub async fn start_with(app: Arc<App>, addr: SocketAddr, mcp: tabflow_mcp::Limits) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = router_with(app, mcp);
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(Running { url: format!("http://{addr}"), addr, stop: Some(tx), task })
}

/// Runs an [`App`] call on a thread of its own driven by the current runtime: the service's
/// futures are not all provably `Send` (see `tabflow_app::runs`), which axum's handlers
/// must be.
pub(crate) async fn call<T, F, Fut>(app: &Arc<App>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(Arc<App>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = tabflow_app::Result<T>>,
    T: Send + 'static,
{
    let app = app.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(f(app)))
        .await
        .map_err(|e| ApiError::internal(format!("the request's task stopped: {e}")))?
        .map_err(ApiError::from)
}
