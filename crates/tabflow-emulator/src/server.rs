//! Building and running the emulator: options, the router, auth, request stats and fault
//! injection middleware, and the `/_emulator/` control routes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State as AxState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tabflow_site::Site;
use tabflow_wire::ApiError;

use crate::state::State;

/// Largest request body accepted (64 MB of file plus the multipart envelope).
pub const SINGLE_REQUEST_LIMIT: usize = 64 * 1024 * 1024 + 1024 * 1024;

/// What the emulator serves and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub site: Site,
    /// Personal access token accepted for sign-in.
    pub pat_name: String,
    pub pat_secret: String,
    /// Every user's password.
    pub password: String,
    /// Session lifetime.
    pub session_ttl: chrono::Duration,
    /// Faults active from the start.
    pub faults: Faults,
    /// Secret that connected-app JWTs are accepted for (any JWT whose `sub` names a user and
    /// whose signature part equals this value's SHA-less marker is accepted; see auth docs).
    pub jwt_secret: String,
    /// When set, the `/_emulator/*` control routes (test-only: stats, faults, the whole site
    /// as a snapshot) answer 401 to requests without `X-Emulator-Token: <this>`.
    pub control_token: Option<String>,
    /// Caps on file upload sessions (`/fileUploads`), which the emulator keeps in memory.
    pub upload_limits: UploadLimits,
    /// Workbooks (by id) whose download (`…/content`) is this many filler bytes
    /// ([`large_file_byte`]; not a valid package, so such a workbook cannot be published
    /// back), generated as it is sent and never held: a 2 GB workbook costs the emulator no
    /// memory. For tests of bounded memory in the client and the store.
    pub large_files: std::collections::BTreeMap<String, u64>,
}

/// Byte `i` of a large file's filler: a fixed sequence, so a reader can check what it got
/// (`(i * 31 + i / 4093) mod 251`).
pub fn large_file_byte(i: u64) -> u8 {
    ((i.wrapping_mul(31).wrapping_add(i / 4093)) % 251) as u8
}

/// How much the emulator keeps for chunked uploads; beyond it an append is 413 and a new
/// session 429. A publish consumes (frees) its session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UploadLimits {
    /// Sessions open at once (default 64).
    pub sessions: usize,
    /// Bytes in one session (default 1 GiB).
    pub bytes_per_session: usize,
    /// Bytes in all open sessions together (default 2 GiB).
    pub bytes_total: usize,
}

impl Default for UploadLimits {
    fn default() -> UploadLimits {
        UploadLimits { sessions: 64, bytes_per_session: 1 << 30, bytes_total: 2 << 30 }
    }
}

impl Options {
    pub fn new(site: Site) -> Options {
        Options {
            site,
            pat_name: "tabflow".into(),
            pat_secret: "tabflow".into(),
            password: "tabflow".into(),
            session_ttl: chrono::Duration::minutes(240),
            faults: Faults::default(),
            jwt_secret: "tabflow".into(),
            control_token: None,
            upload_limits: UploadLimits::default(),
            large_files: std::collections::BTreeMap::new(),
        }
    }
}

/// Fault injection settings (`POST /_emulator/faults`; absent = off, `{}` clears).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Delay added to every Tableau request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Fraction of Tableau requests (0..1) answered with `error_status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Status for `error_rate` and `fail_nth_write` (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u16>,
    /// Requests per second allowed before answering 429 with Retry-After.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
    /// The Nth write from now fails without changing state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_nth_write: Option<u64>,
    /// The Nth write from now is applied, then its connection is dropped (response lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_nth_write: Option<u64>,
    /// Fail the Nth call of a route template, e.g. `{"route": "PUT /api/{v}/sites/{s}/workbooks/{id}", "n": 3}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_nth_call: Option<NthCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NthCall {
    pub route: String,
    pub n: u64,
}

#[derive(Default)]
struct FaultState {
    faults: Faults,
    writes_seen: u64,
    calls_seen: u64,
    window_start: Option<std::time::Instant>,
    window_count: u32,
    rng: u64,
}

#[derive(Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    writes: AtomicU64,
    by_route: Mutex<HashMap<String, u64>>,
    writes_by_resource: Mutex<HashMap<String, u64>>,
    /// DELETE requests received per resource, whatever their answer (a second delete of an
    /// item is a 404, and still a second call).
    deletes_by_resource: Mutex<HashMap<String, u64>>,
    /// API requests being handled now, and the most there ever were at once.
    in_flight: AtomicU64,
    in_flight_max: AtomicU64,
    /// Arrival times of the last second's API requests (a sliding window), and the most
    /// requests any one-second window held.
    last_second: Mutex<std::collections::VecDeque<std::time::Instant>>,
    max_per_second: AtomicU64,
    /// 429s answered by the `rate_limit_per_s` fault, the end of the last Retry-After they
    /// announced, and the API requests that arrived before such a Retry-After had ended.
    rate_limited: AtomicU64,
    retry_after_until: Mutex<Option<std::time::Instant>>,
    during_retry_after: AtomicU64,
}

/// Counts a request as in flight until dropped (also when the client goes away mid-request).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// Records an API request's arrival: the in-flight high-water mark, the one-second
    /// window's, and whether a Retry-After the emulator announced was still running.
    fn arrive(&self) -> InFlight<'_> {
        let now = std::time::Instant::now();
        let n = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.in_flight_max.fetch_max(n, Ordering::Relaxed);
        {
            let mut w = self.last_second.lock().unwrap_or_else(|e| e.into_inner());
            while w.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
                w.pop_front();
            }
            w.push_back(now);
            self.max_per_second.fetch_max(w.len() as u64, Ordering::Relaxed);
        }
        if self.retry_after_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|until| now < until) {
            self.during_retry_after.fetch_add(1, Ordering::Relaxed);
        }
        InFlight(&self.in_flight)
    }

    /// A 429 answered with `Retry-After: secs`.
    fn rate_limited(&self, secs: u64) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        let mut u = self.retry_after_until.lock().unwrap_or_else(|e| e.into_inner());
        if u.is_none_or(|t| t < until) {
            *u = Some(until);
        }
    }

    fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
        self.by_route.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.writes_by_resource.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.deletes_by_resource.lock().unwrap_or_else(|e| e.into_inner()).clear();
        // Requests in flight now stay counted until they end.
        self.in_flight_max.store(self.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
        self.last_second.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.max_per_second.store(0, Ordering::Relaxed);
        self.rate_limited.store(0, Ordering::Relaxed);
        *self.retry_after_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.during_retry_after.store(0, Ordering::Relaxed);
    }
}

/// State shared by every handler.
pub struct Shared {
    pub(crate) state: RwLock<State>,
    pub(crate) options: Options,
    pub(crate) stats: Stats,
    faults: Mutex<FaultState>,
    /// Bumped each time the state is locked for writing: a list answer computed at one
    /// generation is valid while the generation stays the same.
    generation: AtomicU64,
    /// Filtered and sorted lists by query (issue #15): the pages of one list query filter the
    /// site once, not once per page.
    lists: Mutex<ListCache>,
    /// The Metadata API's index and filtered root lists, per generation (issue #15).
    pub(crate) metadata: crate::metadata::Memo,
}

/// The positions (in the handler's unfiltered item order) of a list query's filtered and
/// sorted items, per query without its paging, for one state generation.
#[derive(Default)]
pub(crate) struct ListCache {
    generation: u64,
    entries: HashMap<String, Arc<Vec<u32>>>,
}

/// Queries kept per generation (a plan reads a few lists at a time).
const LIST_CACHE_ENTRIES: usize = 32;

impl Shared {
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        let guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        // While the write lock is held no reader runs: a reader that loads the generation
        // under its read lock sees the generation of the state it reads.
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        guard
    }

    /// The generation of the state; load it while holding [`Shared::read`]'s guard.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A cached list answer for `key` at `generation`.
    pub(crate) fn cached_list(&self, key: &str, generation: u64) -> Option<Arc<Vec<u32>>> {
        let c = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        if c.generation != generation {
            return None;
        }
        c.entries.get(key).cloned()
    }

    /// Keeps a list answer for `key` computed at `generation`.
    pub(crate) fn keep_list(&self, key: String, generation: u64, positions: Arc<Vec<u32>>) {
        let mut c = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        if c.generation != generation {
            if generation < c.generation {
                return;
            }
            c.generation = generation;
            c.entries.clear();
        }
        if c.entries.len() >= LIST_CACHE_ENTRIES {
            c.entries.clear();
        }
        c.entries.insert(key, positions);
    }
}

/// A built emulator; cheap to clone.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

/// A running emulator on a local port.
pub struct Running {
    pub url: String,
    pub addr: SocketAddr,
    pub emulator: Emulator,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Emulator {
    pub fn new(options: Options) -> Emulator {
        let faults = FaultState { faults: options.faults.clone(), rng: 0x9E37_79B9_7F4A_7C15, ..FaultState::default() };
        let state = State::new(options.site.clone());
        Emulator {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                options,
                stats: Stats::default(),
                faults: Mutex::new(faults),
                generation: AtomicU64::new(0),
                lists: Mutex::new(ListCache::default()),
                metadata: crate::metadata::Memo::default(),
            }),
        }
    }

    /// The live site as a snapshot.
    pub fn snapshot(&self) -> Site {
        self.shared.read().snapshot()
    }

    /// Replaces the active faults.
    pub fn set_faults(&self, faults: Faults) {
        let mut f = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        *f = FaultState { faults, rng: f.rng, ..FaultState::default() };
    }

    /// Runs `f` with mutable access to the live site (tests simulating other admins' changes).
    pub fn with_site<R>(&self, f: impl FnOnce(&mut Site) -> R) -> R {
        let mut st = self.shared.write();
        let r = f(&mut st.site);
        st.reindex();
        r
    }

    /// Request counters as `GET /_emulator/stats` reports them.
    pub fn stats(&self) -> serde_json::Value {
        stats_json(&self.shared.stats)
    }

    /// Starts the counters again, as `POST /_emulator/stats/reset` does.
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    pub fn router(&self) -> Router {
        let api = crate::rest::routes()
            .route_layer(middleware::map_response(tableau_rejections))
            .route_layer(middleware::from_fn_with_state(self.shared.clone(), faults_layer))
            .route_layer(middleware::from_fn_with_state(self.shared.clone(), stats_layer));
        // Test-only control routes: they read the whole site and change its behaviour, so a
        // control token (when set) guards them.
        let control = Router::new()
            .route("/_emulator/stats", get(get_stats))
            .route("/_emulator/stats/reset", post(reset_stats))
            .route("/_emulator/faults", post(post_faults).get(get_faults))
            .route("/_emulator/snapshot", get(get_snapshot))
            .route_layer(middleware::from_fn_with_state(self.shared.clone(), control_token_layer));
        // Tableau takes single-request publishes up to 64 MB; larger files use /fileUploads.
        api.merge(control)
            .fallback(fallback)
            .layer(axum::extract::DefaultBodyLimit::max(SINGLE_REQUEST_LIMIT))
            .with_state(self.shared.clone())
    }

    /// Binds `addr` (port 0 = any free port) and serves until stopped.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        {
            let mut st = self.shared.write();
            st.server_host = addr.to_string();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = self.router();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Running { url: format!("http://{addr}"), addr, emulator: self, shutdown: Some(tx), task })
    }
}

/// Starts an emulator serving `options` on 127.0.0.1 at a free port.
pub async fn start(options: Options) -> std::io::Result<Running> {
    Emulator::new(options).spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

// ---------------------------------------------------------------- responses

/// A Tableau error as an HTTP response.
pub struct Fail(pub ApiError);

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Fail {
        Fail(e)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, self.0.to_xml()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml;charset=utf-8"));
        r
    }
}

/// An XML document response.
pub fn xml_response(status: StatusCode, doc: &tabflow_wire::xml::TsResponse) -> Response {
    let mut r = (status, tabflow_wire::xml::to_string(doc)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml;charset=utf-8"));
    r
}

/// Framework rejections (a body that is not UTF-8, a malformed query string) answered in
/// Tableau's `<error>` shape, like every other REST failure.
async fn tableau_rejections(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.contains("xml") || ct.contains("json") {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&bytes).trim().to_string();
    let code = format!("{}000", status.as_u16());
    let mut r = Fail(ApiError::new(&code, status.canonical_reason().unwrap_or("Error"), detail)).into_response();
    *r.status_mut() = status;
    r
}

async fn fallback(req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/api/metadata") || path.starts_with("/api/v1/vizql-data-service") {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"errorCode": "404000", "message": format!("No route for {path}")})),
        )
            .into_response();
    }
    Fail(ApiError::new("404000", "Resource Not Found", format!("Unknown resource '{path}' requested."))).into_response()
}

/// `/_emulator/*` with a control token set: 401 unless `X-Emulator-Token` carries it.
async fn control_token_layer(AxState(shared): AxState<Arc<Shared>>, req: Request, next: Next) -> Response {
    if let Some(want) = &shared.options.control_token {
        let given = req.headers().get("x-emulator-token").map(|v| v.as_bytes()).unwrap_or_default();
        if !constant_time_eq(given, want.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({
                    "error": "the emulator's control routes need the X-Emulator-Token header (the --control-token this emulator was started with)"
                })),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Compares without stopping at the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------- stats

fn is_write(method: &Method, template: &str) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::DELETE | Method::PATCH)
        && template.starts_with("/api/{v}/sites/{s}/")
}

/// The resource id a write targets: the first id after the collection in the path.
fn resource_of(path: &str) -> Option<String> {
    let mut it = path.split('/').skip_while(|s| *s != "sites").skip(2);
    let _collection = it.next()?;
    it.next().filter(|id| !id.is_empty()).map(|s| s.to_string())
}

async fn stats_layer(AxState(shared): AxState<Arc<Shared>>, req: Request, next: Next) -> Response {
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let key = format!("{} {}", req.method(), template);
    let write = is_write(req.method(), &template);
    let resource = if write { resource_of(req.uri().path()) } else { None };
    let _in_flight = shared.stats.arrive();
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    if *req.method() == Method::DELETE
        && let Some(id) = &resource
    {
        *shared.stats.deletes_by_resource.lock().unwrap_or_else(|e| e.into_inner()).entry(id.clone()).or_insert(0) += 1;
    }
    *shared.stats.by_route.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(0) += 1;
    if write {
        shared.stats.writes.fetch_add(1, Ordering::Relaxed);
    }
    let response = next.run(req).await;
    // Per resource, only writes that ran and succeeded count: a request whose client went
    // away before it was handled (the handler future is dropped) changed nothing.
    if let Some(id) = resource
        && response.status().is_success()
    {
        *shared.stats.writes_by_resource.lock().unwrap_or_else(|e| e.into_inner()).entry(id).or_insert(0) += 1;
    }
    response
}

fn stats_json(stats: &Stats) -> serde_json::Value {
    let by_route: BTreeMap<String, u64> =
        stats.by_route.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect();
    let by_res: BTreeMap<String, u64> = stats
        .writes_by_resource
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let deletes: BTreeMap<String, u64> = stats
        .deletes_by_resource
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    serde_json::json!({
        "requests": stats.requests.load(Ordering::Relaxed),
        "writes": stats.writes.load(Ordering::Relaxed),
        "by_route": by_route,
        "writes_by_resource": by_res,
        "deletes_by_resource": deletes,
        "in_flight_max": stats.in_flight_max.load(Ordering::Relaxed),
        "max_per_second": stats.max_per_second.load(Ordering::Relaxed),
        "rate_limited": stats.rate_limited.load(Ordering::Relaxed),
        "during_retry_after": stats.during_retry_after.load(Ordering::Relaxed),
    })
}

async fn get_stats(AxState(shared): AxState<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(stats_json(&shared.stats))
}

async fn reset_stats(AxState(shared): AxState<Arc<Shared>>) -> StatusCode {
    shared.stats.reset();
    StatusCode::NO_CONTENT
}

async fn get_snapshot(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let snap = shared.read().snapshot();
    let mut r = snap.to_json().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

// ---------------------------------------------------------------- faults

async fn post_faults(AxState(shared): AxState<Arc<Shared>>, body: String) -> Response {
    let body = if body.trim().is_empty() { "{}" } else { body.as_str() };
    match serde_json::from_str::<Faults>(body) {
        Ok(f) => {
            if let Some(r) = f.error_rate
                && !(0.0..=1.0).contains(&r)
            {
                return (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "error_rate must be between 0 and 1"}))).into_response();
            }
            let mut fs = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
            *fs = FaultState { faults: f.clone(), rng: fs.rng, ..FaultState::default() };
            Json(serde_json::to_value(&f).unwrap_or_default()).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": format!("invalid faults document: {e}"), "hint": "fields: latency_ms, error_rate, error_status, rate_limit_per_s, fail_nth_write, drop_nth_write, fail_nth_call {route, n}"})),
        )
            .into_response(),
    }
}

async fn get_faults(AxState(shared): AxState<Arc<Shared>>) -> Json<serde_json::Value> {
    let fs = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
    Json(serde_json::to_value(&fs.faults).unwrap_or_default())
}

enum Injected {
    None,
    Fail(u16),
    RateLimited,
    Drop,
}

fn next_rand(state: &mut u64) -> f64 {
    // splitmix64
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

async fn faults_layer(AxState(shared): AxState<Arc<Shared>>, req: Request, next: Next) -> Response {
    let arrived = std::time::Instant::now();
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let key = format!("{} {}", req.method(), template);
    let write = is_write(req.method(), &template);
    let (latency, injected) = {
        let mut fs = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        let f = fs.faults.clone();
        let status = f.error_status.unwrap_or(500);
        let mut injected = Injected::None;
        if let Some(limit) = f.rate_limit_per_s {
            let now = std::time::Instant::now();
            match fs.window_start {
                Some(s) if now.duration_since(s) < Duration::from_secs(1) => fs.window_count += 1,
                _ => {
                    fs.window_start = Some(now);
                    fs.window_count = 1;
                }
            }
            if fs.window_count > limit {
                injected = Injected::RateLimited;
            }
        }
        if matches!(injected, Injected::None)
            && let Some(nth) = &f.fail_nth_call
            && nth.route == key
        {
            fs.calls_seen += 1;
            if fs.calls_seen == nth.n {
                injected = Injected::Fail(status);
            }
        }
        if matches!(injected, Injected::None) && write {
            fs.writes_seen += 1;
            if f.fail_nth_write == Some(fs.writes_seen) {
                injected = Injected::Fail(status);
            } else if f.drop_nth_write == Some(fs.writes_seen) {
                injected = Injected::Drop;
            }
        }
        if matches!(injected, Injected::None)
            && let Some(rate) = f.error_rate
            && rate > 0.0
            && next_rand(&mut fs.rng) < rate
        {
            injected = Injected::Fail(status);
        }
        (f.latency_ms, injected)
    };
    if let Some(ms) = latency
        && ms > 0
    {
        match arrived.checked_add(Duration::from_millis(ms)) {
            Some(deadline) => wait_until(deadline).await,
            // Past what this platform's clock can name: as long as the timer can wait.
            None => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }
    match injected {
        Injected::None => next.run(req).await,
        Injected::RateLimited => {
            shared.stats.rate_limited(1);
            let mut r =
                Fail(ApiError::too_many_requests("Too many requests. Please retry after 1 seconds.")).into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Injected::Fail(status) => {
            let code = format!("{status}000");
            let err = ApiError::new(
                &code,
                "Injected Fault",
                format!("The emulator was told to fail this request with HTTP {status}."),
            );
            let mut r = Fail(err).into_response();
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            r
        }
        Injected::Drop => {
            // Apply the write, then lose the response: the body stream fails, so hyper aborts the connection.
            let _applied = next.run(req).await;
            let stream = futures_util_once_err();
            let mut r = Response::new(Body::from_stream(stream));
            *r.status_mut() = StatusCode::OK;
            r
        }
    }
}

/// Waits until `deadline`: never before it, and within the OS timer's resolution after it.
/// Tokio's timer fires on whole milliseconds after a deadline (measured here: 21.2 ms for a
/// 20 ms sleep), which would make an injected latency some 6 % longer than asked; so the
/// timer wakes this task a little early and a blocking thread sleeps what is left.
async fn wait_until(deadline: std::time::Instant) {
    const LEAD: Duration = Duration::from_millis(2);
    if let Some(early) = deadline.checked_sub(LEAD) {
        tokio::time::sleep_until(early.into()).await;
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    if !left.is_zero() && tokio::task::spawn_blocking(move || std::thread::sleep(left)).await.is_err() {
        // The runtime is shutting down: the timer's coarser wait still keeps the deadline.
        tokio::time::sleep_until(deadline.into()).await;
    }
}

fn futures_util_once_err() -> impl futures_core::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Send {
    struct Once(bool);
    impl futures_core::Stream for Once {
        type Item = Result<axum::body::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.0 {
                std::task::Poll::Ready(None)
            } else {
                self.0 = true;
                std::task::Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection drop",
                ))))
            }
        }
    }
    Once(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_classification() {
        assert!(is_write(&Method::PUT, "/api/{v}/sites/{s}/workbooks/{id}"));
        assert!(!is_write(&Method::GET, "/api/{v}/sites/{s}/workbooks/{id}"));
        assert!(!is_write(&Method::POST, "/api/{v}/auth/signin"));
        assert!(!is_write(&Method::POST, "/api/metadata/graphql"));
    }

    #[test]
    fn resource_from_path() {
        assert_eq!(resource_of("/api/3.25/sites/S/workbooks/W/permissions").as_deref(), Some("W"));
        assert_eq!(resource_of("/api/3.25/sites/S/workbooks"), None);
    }
}
