//! The connection: sign-in and version negotiation, and one `send` path that every call
//! goes through (concurrency cap, token-bucket rate limit, timeout, 429 and 5xx handling,
//! re-sign-in on 401002).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use tabflow_wire::xml::{self, TsResponse};
use tokio::sync::{Mutex, RwLock, Semaphore};

use crate::config::{Config, Credentials};
use crate::error::{Error, Result};
use crate::secret::{ExposeSecret, Secret};

/// The oldest REST API version tabflow works with (user removal with `mapAssetsTo` is 3.9).
pub const MIN_API_VERSION: &str = "3.9";

/// The signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: Secret,
    pub site_id: String,
    pub user_id: String,
    pub api_version: String,
}

/// A request built as a value: method, path, query, body; tested without a network.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Relative to the site (`workbooks/ID`) when `site_scoped`, else to `/api/{v}/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Body>,
    pub site_scoped: bool,
    /// Safe to repeat after a 5xx or a broken connection.
    pub idempotent: bool,
    /// A file download (capped by `max_download_bytes`, not `max_response_bytes`).
    pub download: bool,
}

#[derive(Debug, Clone)]
pub enum Body {
    Xml(String),
    Json(serde_json::Value),
    /// multipart/mixed: (content type with boundary, bytes)
    Multipart(String, Vec<u8>),
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE | Method::HEAD);
        Request { method, path: path.into(), query: vec![], body: None, site_scoped: true, idempotent, download: false }
    }
    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::GET, path)
    }
    pub fn put(path: impl Into<String>, body: &xml::TsRequest) -> Request {
        Request::new(Method::PUT, path).xml(body)
    }
    pub fn post(path: impl Into<String>, body: &xml::TsRequest) -> Request {
        Request::new(Method::POST, path).xml(body)
    }
    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::DELETE, path)
    }
    pub fn xml(mut self, body: &xml::TsRequest) -> Request {
        self.body = Some(Body::Xml(xml::request_to_string(body)));
        self
    }
    pub fn query(mut self, k: &str, v: impl Into<String>) -> Request {
        self.query.push((k.to_string(), v.into()));
        self
    }
    /// Marks a POST as safe to repeat (e.g. a read-only query sent as POST).
    pub fn idempotent(mut self, yes: bool) -> Request {
        self.idempotent = yes;
        self
    }
    pub fn unscoped(mut self) -> Request {
        self.site_scoped = false;
        self
    }
    /// Marks a file download (a workbook's or datasource's content).
    pub fn download(mut self) -> Request {
        self.download = true;
        self
    }
}

/// The largest download written to a file ([`Client::send_to_file`]): it costs disk, not
/// memory, so it may be far larger than `max_download_bytes` (64 GiB).
pub const MAX_FILE_DOWNLOAD_BYTES: u64 = 64 << 30;

/// A raw answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) config: Config,
    session: RwLock<Option<Session>>,
    /// Serializes re-sign-ins so a burst of 401002s signs in once.
    signin_lock: Mutex<u64>,
    signin_generation: AtomicU64,
    /// All calls in flight (the larger of the two caps), handed to waiting writes first.
    permits: crate::slots::Slots,
    /// Calls that may change the site.
    write_permits: Semaphore,
    /// GET and HEAD calls.
    read_permits: Semaphore,
    bucket: Option<Mutex<Bucket>>,
    /// After a 429, every call waits until then: the whole client backs off together instead
    /// of each call hammering the limit on its own.
    paused_until: std::sync::Mutex<Option<Instant>>,
    pub(crate) calls: AtomicU64,
    /// Limits shared with other processes (see [`Gate`]), asked after the client's own.
    gate: std::sync::RwLock<Option<Arc<dyn Gate>>>,
}

/// Limits a client shares with other processes (the site's concurrency and rate kept in a
/// PostgreSQL store by `tabflow worker`s): asked right before each call is sent, after the
/// client's own permits and token bucket, and told of every 429 so the pause reaches them all.
pub trait Gate: Send + Sync {
    /// Waits until a call may be sent; the answer is held while the call is in flight and
    /// dropped when it ends (a slot of the site's concurrency).
    fn admit(&self) -> futures::future::BoxFuture<'_, Box<dyn Send + Sync>>;
    /// Tableau answered 429: every process sharing the gate waits `wait`. Awaited while the
    /// call that got the 429 still holds its admission, so no other call is admitted between
    /// the 429 and the pause being recorded.
    fn rate_limited(&self, wait: Duration) -> futures::future::BoxFuture<'_, ()>;
}

/// A check run right before each write (POST/PUT/DELETE) sent from within [`fenced`]: the
/// work lease of the item being written, re-checked in the store, since Tableau cannot check
/// a fencing epoch itself.
pub trait WriteCheck: Send + Sync {
    /// `Err(reason)` refuses the write: it is not sent and fails with [`Error::Fenced`].
    /// `Ok(Some(deadline))`: the write may be sent until then and not after — checked again,
    /// without waiting for anything, right before it is handed to the connection, and by
    /// the connection itself right before it writes the request's first byte (the body
    /// carries the deadline), so a process paused (or starved) between the check and the
    /// send does not send it once the claim may have lapsed.
    fn check(&self) -> futures::future::BoxFuture<'_, std::result::Result<Option<Instant>, String>>;
}

tokio::task_local! {
    static WRITE_CHECK: Arc<dyn WriteCheck>;
}

/// Runs `f` with `check` asked right before each write it sends (see [`WriteCheck`]).
pub async fn fenced<F: std::future::Future>(check: Arc<dyn WriteCheck>, f: F) -> F::Output {
    WRITE_CHECK.scope(check, f).await
}

impl Drop for Inner {
    /// Signs out when the last clone goes away (best effort: only inside a Tokio runtime, and
    /// without waiting for the answer). Commands also sign out explicitly before exiting.
    fn drop(&mut self) {
        let Some(session) = self.session.get_mut().take() else { return };
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let url = format!("{}/api/{}/auth/signout", self.config.server, session.api_version);
        let http = self.http.clone();
        handle.spawn(async move {
            let _ = http.post(url).header("X-Tableau-Auth", session.token.expose_secret()).send().await;
        });
    }
}

/// A signed-in Tableau client. Cheap to clone; clones share the session and limits.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.config.server)
            .field("site", &self.inner.config.site)
            .finish()
    }
}

fn api_error_from(status: u16, body: &str, url: &str) -> Error {
    if let Ok(doc) = xml::parse_response(body)
        && let Some(e) = doc.error
    {
        return Error::Api { status, code: e.code, summary: e.summary, detail: e.detail };
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(code) = v
            .get("errorCode")
            .and_then(|c| c.as_str().map(str::to_string).or_else(|| c.as_i64().map(|n| n.to_string())))
    {
        let message = v.get("message").and_then(|m| m.as_str()).unwrap_or("").to_string();
        return Error::Api { status, code, summary: String::new(), detail: message };
    }
    let snippet: String = body.chars().take(200).collect();
    Error::Protocol {
        url: url.to_string(),
        status,
        detail: if snippet.trim().is_empty() {
            "empty body".into()
        } else {
            format!("not a Tableau error body: {snippet}")
        },
    }
}

/// A redirect target fit for a message: scheme, host and path, without user info or query
/// (either could carry a secret).
fn location_for_messages(to: &str) -> String {
    match reqwest::Url::parse(to) {
        Ok(u) => {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + u.path()
        }
        Err(_) => to.split(['?', '#']).next().unwrap_or("").chars().take(200).collect(),
    }
}

/// The warning for a server address whose traffic (credentials, session token, site
/// content) would cross the network unencrypted: plain `http://` to a host that is not this
/// machine. `None` for `https://` and for loopback addresses.
pub fn plain_http_warning(server: &str) -> Option<String> {
    is_plain_http_to_another_machine(server).then(|| {
        format!(
            "{} is plain http:// to another machine: the sign-in credentials, the session token and the site's content cross the network unencrypted; use https://",
            location_for_messages(server)
        )
    })
}

/// The same warning for another service tabflow sends to (a webhook, a language model):
/// `what` names it ("the webhook"), `carries` says what would cross unencrypted. Only the
/// scheme, host and port are quoted — a webhook's path and a model URL's query are secrets.
pub fn plain_http_warning_for(url: &str, what: &str, carries: &str) -> Option<String> {
    if !is_plain_http_to_another_machine(url) {
        return None;
    }
    let u = reqwest::Url::parse(url).ok()?;
    let origin =
        format!("http://{}{}", u.host_str().unwrap_or_default(), u.port().map(|p| format!(":{p}")).unwrap_or_default());
    Some(format!(
        "{what} ({origin}/…) is plain http:// to another machine: {carries} cross the network unencrypted; use https://"
    ))
}

/// `http://` to a host that is not this machine (a loopback address or `localhost`).
fn is_plain_http_to_another_machine(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else { return false };
    if u.scheme() != "http" {
        return false;
    }
    let Some(host) = u.host_str() else { return false };
    let host = host.to_ascii_lowercase();
    let local = match host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    };
    !local
}

/// Seconds to wait from `Retry-After`, or from Tableau's detail text ("retry after 29 minutes").
pub fn retry_after(headers: &reqwest::header::HeaderMap, detail: &str) -> Option<Duration> {
    if let Some(v) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok())
        && let Ok(s) = v.trim().parse::<u64>()
    {
        return Some(Duration::from_secs(s));
    }
    let lower = detail.to_lowercase();
    let idx = lower.find("retry after")?;
    let rest = &lower[idx + "retry after".len()..];
    let mut words = rest.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    let unit = words.next().unwrap_or("seconds");
    let secs = if unit.starts_with("min") {
        n * 60
    } else if unit.starts_with("hour") {
        n * 3600
    } else {
        n
    };
    Some(Duration::from_secs(secs))
}

/// Full-jitter exponential backoff for attempt `n` (0-based).
fn backoff(base: Duration, max: Duration, n: u32, seed: u64) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX)).min(max);
    // xorshift from the seed: cheap jitter without a rand dependency
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15 ^ ((n as u64) << 32);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let frac = (x % 1000) as f64 / 1000.0;
    exp.mul_f64(0.5 + frac / 2.0)
}

/// Whether a server address names a user or password before its host (`https://u:p@host`,
/// or `u:p@host` without a scheme).
pub(crate) fn has_userinfo(server: &str) -> bool {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.contains('@')
}

fn version_tuple(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.trim().parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The version of the sign-in made while serverInfo is asked: the lowest tabflow supports,
/// except for a connected app's JWT, which needs 3.17 (Tableau Server 2022.3) anyway.
fn early_sign_in_version(credentials: &Credentials) -> &'static str {
    match credentials {
        Credentials::Jwt { .. } => "3.17",
        _ => MIN_API_VERSION,
    }
}

impl Client {
    /// Negotiates the API version and signs in.
    pub async fn connect(config: Config) -> Result<Client> {
        Client::connect_gated(config, None).await
    }

    /// [`connect`](Client::connect) under limits shared with other processes (see [`Gate`]):
    /// serverInfo and the sign-in wait for the gate too, so that workers starting at once
    /// stay within the site's concurrency and rate from their first call.
    pub async fn connect_gated(config: Config, gate: Option<Arc<dyn Gate>>) -> Result<Client> {
        // Before anything quotes the address: it is kept in plans, runs, reports and errors.
        if has_userinfo(&config.server) {
            return Err(Error::Config(
                "the server address carries a user name or password (user:password@host); remove them from the address and sign in with TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET (or TABLEAU_USERNAME and TABLEAU_PASSWORD, or a profile) — the address is kept in plans, runs and reports"
                    .into(),
            ));
        }
        if !(config.server.starts_with("http://") || config.server.starts_with("https://")) {
            return Err(Error::Config(format!(
                "the server address '{}' needs a scheme, e.g. https://{}",
                config.server, config.server
            )));
        }
        if let Some(problem) = config.rate_limit_per_s.and_then(crate::config::check_rate_limit) {
            return Err(Error::Config(format!("the rate limit: {problem}")));
        }
        if let Some(problem) = [config.concurrency, config.read_concurrency]
            .into_iter()
            .find_map(|n| crate::config::check_concurrency(n.max(1)))
        {
            return Err(Error::Config(format!("the concurrency: {problem}")));
        }
        // No redirects: a 3xx would carry the sign-in credentials or the session token to
        // wherever it points (another host, or plain http). It is answered as an error instead.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(config.concurrency.max(config.read_concurrency).max(1).saturating_mul(2))
            .user_agent(concat!("tabflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let bucket = config
            .rate_limit_per_s
            .filter(|r| crate::config::RATE_LIMIT_RANGE.contains(r))
            .map(|r| Mutex::new(Bucket { tokens: r.max(1.0), last: Instant::now() }));
        let client = Client {
            inner: Arc::new(Inner {
                http,
                permits: crate::slots::Slots::new(
                    config.concurrency.max(config.read_concurrency).max(1),
                    config.concurrency,
                ),
                write_permits: Semaphore::new(config.concurrency.max(1)),
                read_permits: Semaphore::new(config.read_concurrency.max(1)),
                config,
                session: RwLock::new(None),
                signin_lock: Mutex::new(0),
                signin_generation: AtomicU64::new(0),
                bucket,
                paused_until: std::sync::Mutex::new(None),
                gate: std::sync::RwLock::new(gate),
                calls: AtomicU64::new(0),
            }),
        };
        // serverInfo and sign-in change nothing on the site: safe to retry on transient failures.
        if let Some(v) = &client.inner.config.api_version {
            client.retrying(|| client.sign_in(v)).await?;
            return Ok(client);
        }
        // serverInfo and the sign-in go together, one round trip instead of two: the sign-in
        // at a version every server tabflow works with accepts (a session's token is good
        // for every version of the API), then the session uses the negotiated one.
        let early = early_sign_in_version(&client.inner.config.credentials);
        let (version, signed) =
            tokio::join!(client.retrying(|| client.negotiate_version()), client.retrying(|| client.sign_in(early)));
        match (version, signed) {
            (Ok(version), Ok(())) => {
                if let Some(s) = client.inner.session.write().await.as_mut() {
                    s.api_version = version;
                }
                Ok(client)
            }
            // The server's answer first (unreachable, not Tableau, too old), as before.
            (Err(e), signed) => {
                if signed.is_ok() {
                    let _ = client.sign_out().await;
                }
                Err(e)
            }
            (Ok(_), Err(e)) => Err(e),
        }
    }

    /// Runs `f` again after transient failures, with the configured backoff.
    async fn retrying<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Err(e) if e.is_transient() && attempt < self.inner.config.max_retries => {
                    let wait =
                        backoff(self.inner.config.backoff_base, self.inner.config.max_wait, attempt, attempt as u64);
                    tracing::info!(error = %e, ?wait, "transient failure while connecting; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Shares this client's calls' limits with other processes (see [`Gate`]); every clone
    /// of the client uses it from now on.
    pub fn set_gate(&self, gate: Arc<dyn Gate>) {
        *self.inner.gate.write().unwrap_or_else(|e| e.into_inner()) = Some(gate);
    }

    /// Keeps room for writes while the answer lives: reads in flight stay within what the
    /// write cap leaves of the shared cap (16 − 8 by default; no limit when the two caps are
    /// equal). An executor holds it while it re-reads and writes items, so its items are read
    /// at the pace their writes go out (see `slots.rs`).
    pub fn room_for_writes(&self) -> crate::slots::WriteRoom {
        self.inner.permits.room_for_writes()
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// HTTP calls made so far (including retries and sign-ins).
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    pub async fn session(&self) -> Session {
        self.inner.session.read().await.clone().expect("connect() signs in before returning")
    }

    /// `GET /api/2.4/serverInfo` (no auth), then the lower of the server's and tabflow's version.
    async fn negotiate_version(&self) -> Result<String> {
        let url = format!("{}/api/2.4/serverInfo", self.inner.config.server);
        let resp = self.raw_admitted(Method::GET, &url, None).await?;
        let text = resp.text();
        if resp.status != 200 {
            return Err(api_error_from(resp.status, &text, &url));
        }
        let doc = xml::parse_response(&text).map_err(|e| Error::Protocol {
            url: url.clone(),
            status: resp.status,
            detail: format!("serverInfo is not Tableau XML: {e}"),
        })?;
        let found = doc.server_info.map(|s| s.rest_api_version).ok_or_else(|| Error::Protocol {
            url: url.clone(),
            status: 200,
            detail: "no <serverInfo> in the answer".into(),
        })?;
        if version_tuple(&found) < version_tuple(MIN_API_VERSION) {
            return Err(Error::Version { found, needed: MIN_API_VERSION.into() });
        }
        let ours = tabflow_wire::API_VERSION;
        Ok(if version_tuple(&found) < version_tuple(ours) { found } else { ours.to_string() })
    }

    async fn sign_in(&self, version: &str) -> Result<()> {
        let c = &self.inner.config;
        let site = Some(xml::Site { content_url: Some(c.site.clone()), ..xml::Site::default() });
        let creds = match &c.credentials {
            Credentials::Pat { name, secret } => xml::Credentials {
                personal_access_token_name: Some(name.clone()),
                personal_access_token_secret: Some(secret.expose_secret().to_string()),
                site,
                ..xml::Credentials::default()
            },
            Credentials::Password { username, password } => xml::Credentials {
                name: Some(username.clone()),
                password: Some(password.expose_secret().to_string()),
                site,
                ..xml::Credentials::default()
            },
            Credentials::Jwt { token } => {
                xml::Credentials { jwt: Some(token.expose_secret().to_string()), site, ..xml::Credentials::default() }
            }
        };
        let body = xml::request_to_string(&xml::TsRequest { credentials: Some(creds), ..xml::TsRequest::default() });
        let url = format!("{}/api/{version}/auth/signin", c.server);
        let resp = self.raw_admitted(Method::POST, &url, Some(Body::Xml(body))).await?;
        let text = resp.text();
        if resp.status == 401 || resp.status == 403 {
            let detail = match api_error_from(resp.status, &text, &url) {
                Error::Api { code, detail, .. } => format!("{code}: {detail}"),
                other => other.to_string(),
            };
            return Err(Error::SignIn { server: c.server.clone(), site: c.site.clone(), detail });
        }
        if resp.status != 200 {
            return Err(api_error_from(resp.status, &text, &url));
        }
        let doc = xml::parse_response(&text).map_err(|e| Error::Protocol {
            url: url.clone(),
            status: 200,
            detail: format!("sign-in answer is not Tableau XML: {e}"),
        })?;
        let cr = doc.credentials.ok_or_else(|| Error::Protocol {
            url: url.clone(),
            status: 200,
            detail: "no <credentials>".into(),
        })?;
        let session = Session {
            token: Secret::new(cr.token.unwrap_or_default()),
            site_id: cr.site.and_then(|s| s.id).unwrap_or_default(),
            user_id: cr.user.and_then(|u| u.id).unwrap_or_default(),
            api_version: version.to_string(),
        };
        *self.inner.session.write().await = Some(session);
        self.inner.signin_generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Signs in again unless another task already did since `seen_generation`.
    async fn resign_in(&self, seen_generation: u64) -> Result<()> {
        let _guard = self.inner.signin_lock.lock().await;
        if self.inner.signin_generation.load(Ordering::SeqCst) != seen_generation {
            return Ok(());
        }
        let version = self.session().await.api_version;
        tracing::info!("session expired or displaced (401002); signing in again");
        self.retrying(|| self.sign_in(&version)).await
    }

    /// Ends the session (`POST /auth/signout`).
    pub async fn sign_out(&self) -> Result<()> {
        let s = match self.inner.session.write().await.take() {
            Some(s) => s,
            None => return Ok(()),
        };
        let url = format!("{}/api/{}/auth/signout", self.inner.config.server, s.api_version);
        let _ = self.raw(Method::POST, &url, None, Some(&s.token)).await;
        Ok(())
    }

    /// Switches the session to another site of the same server (`POST /auth/switchSite`).
    pub async fn switch_site(&self, content_url: &str) -> Result<Session> {
        let body = xml::TsRequest {
            site: Some(xml::Site { content_url: Some(content_url.to_string()), ..xml::Site::default() }),
            ..xml::TsRequest::default()
        };
        let mut r = Request::post("auth/switchSite", &body).unscoped();
        r.idempotent = true;
        let doc = self.send_xml(r).await?;
        let cr = doc.credentials.ok_or_else(|| Error::Protocol {
            url: "auth/switchSite".into(),
            status: 200,
            detail: "no <credentials> in the answer".into(),
        })?;
        let mut guard = self.inner.session.write().await;
        let old = guard.clone().expect("signed in");
        let session = Session {
            token: Secret::new(cr.token.unwrap_or_default()),
            site_id: cr.site.and_then(|s| s.id).unwrap_or(old.site_id),
            user_id: cr.user.and_then(|u| u.id).unwrap_or(old.user_id),
            api_version: old.api_version,
        };
        *guard = Some(session.clone());
        self.inner.signin_generation.fetch_add(1, Ordering::SeqCst);
        Ok(session)
    }

    /// Everyone waits while the client is paused after a 429.
    async fn wait_out_pause(&self) {
        loop {
            let until = *self.inner.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t.into()).await,
                _ => return,
            }
        }
    }

    fn pause_until(&self, t: Instant) {
        let mut p = self.inner.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|x| x < t) {
            *p = Some(t);
        }
    }

    async fn throttle(&self) {
        let Some(bucket) = &self.inner.bucket else { return };
        let rate = self.inner.config.rate_limit_per_s.unwrap_or(1.0);
        loop {
            let wait = {
                let mut b = bucket.lock().await;
                let now = Instant::now();
                b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(rate.max(1.0));
                b.last = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    return;
                }
                // The rate is checked when the client is built; a wait past any sane one is
                // capped rather than allowed to panic.
                Duration::try_from_secs_f64((1.0 - b.tokens) / rate).unwrap_or(Duration::from_secs(100))
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange, no retries.
    /// [`raw`](Client::raw) without a session (serverInfo, sign-in), admitted by the shared
    /// gate first when there is one. (Sign-out is not: a stopping worker does not wait for a
    /// slot to end its session.)
    async fn raw_admitted(&self, method: Method, url: &str, body: Option<Body>) -> Result<Response> {
        let gate = self.inner.gate.read().unwrap_or_else(|e| e.into_inner()).clone();
        let _slot = match &gate {
            Some(g) => Some(g.admit().await),
            None => None,
        };
        self.raw(method, url, body, None).await
    }

    async fn raw(&self, method: Method, url: &str, body: Option<Body>, token: Option<&Secret>) -> Result<Response> {
        self.raw_capped(method, url, body, token, self.inner.config.max_response_bytes, "answer", None, None).await
    }

    /// One HTTP exchange reading at most `limit` bytes of body (`what`: for the message).
    async fn raw_capped(
        &self,
        method: Method,
        url: &str,
        body: Option<Body>,
        token: Option<&Secret>,
        limit: u64,
        what: &'static str,
        sink: Option<&mut tokio::fs::File>,
        send_by: Option<Instant>,
    ) -> Result<Response> {
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let mut rb = self.inner.http.request(method.clone(), url);
        if let Some(t) = token {
            rb = rb.header("X-Tableau-Auth", t.expose_secret());
        }
        let (content_type, data) = match body {
            Some(Body::Xml(x)) => (Some("application/xml".to_string()), bytes::Bytes::from(x)),
            Some(Body::Json(j)) => (
                Some("application/json".to_string()),
                bytes::Bytes::from(
                    serde_json::to_vec(&j).map_err(|e| Error::Io(format!("cannot encode the request: {e}")))?,
                ),
            ),
            Some(Body::Multipart(ct, bytes)) => (Some(ct), bytes::Bytes::from(bytes)),
            None => (None, bytes::Bytes::new()),
        };
        let has_body = content_type.is_some();
        if let Some(ct) = content_type {
            rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
        }
        // A fenced write's body checks its deadline once more in the connection's own task,
        // right before the request's first byte is written (see `send_by`).
        match send_by {
            Some(deadline) => rb = rb.body(reqwest::Body::wrap(crate::send_by::SendBy::new(data, deadline))),
            None if has_body => rb = rb.body(data),
            None => {}
        }
        let mut resp = rb.send().await.map_err(|e| self.transport_error(&method, url, e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if (300..400).contains(&status) && status != 304 {
            let to = headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("");
            return Err(Error::Redirect { url: url.to_string(), status, location: location_for_messages(to) });
        }
        let too_large = || Error::TooLarge { url: url.to_string(), what, limit };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        // A download to a file: a 2xx body goes to the file as it comes (the file is emptied
        // first, so a retried attempt starts over), never into memory.
        if let Some(file) = sink
            && (200..300).contains(&status)
        {
            use tokio::io::{AsyncSeekExt, AsyncWriteExt};
            let io = |e: std::io::Error| Error::Io(format!("cannot write the download of {url} to a file: {e}"));
            file.set_len(0).await.map_err(io)?;
            file.rewind().await.map_err(io)?;
            let mut written: u64 = 0;
            while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&method, url, e))? {
                written += chunk.len() as u64;
                if written > limit {
                    return Err(too_large());
                }
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            return Ok(Response { status, headers, body: Vec::new() });
        }
        // Chunk by chunk into one buffer sized from Content-Length: collecting the chunks
        // first and then joining them would hold a large answer (Admin Insights at 100k
        // workbooks: ~30 MB) twice. Counted as it comes: a server that sends more than it
        // announced (or announces nothing) is cut off at the limit.
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(1 << 28) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&method, url, e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }

    fn transport_error(&self, method: &Method, url: &str, e: reqwest::Error) -> Error {
        if let Some(why) = crate::send_by::too_late(&e) {
            return Error::Fenced(why);
        }
        if e.is_timeout() {
            return Error::Timeout {
                method: method.to_string(),
                url: url.to_string(),
                seconds: self.inner.config.timeout.as_secs(),
            };
        }
        // reqwest's Display hides the cause (TLS, DNS, refused); walk the chain.
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let t = s.to_string();
            if !detail.contains(&t) {
                detail.push_str(": ");
                detail.push_str(&t);
            }
            src = s.source();
        }
        Error::Connect { url: url.to_string(), detail }
    }

    /// Sends a request with the site's limits and the retry rules; answers 2xx responses and
    /// turns everything else into [`Error`].
    pub async fn send(&self, req: Request) -> Result<Response> {
        self.send_inner(req, None).await
    }

    /// [`Client::send`] for a download whose 2xx body is written to `file` as it arrives
    /// (memory stays bounded whatever its size; the answer's `body` is empty). The file is
    /// emptied before each attempt.
    pub async fn send_to_file(&self, req: Request, file: &mut tokio::fs::File) -> Result<Response> {
        self.send_inner(req, Some(file)).await
    }

    async fn send_inner(&self, req: Request, mut sink: Option<&mut tokio::fs::File>) -> Result<Response> {
        let mut attempt: u32 = 0;
        let mut resigned = false;
        let mut rate_limited = Duration::ZERO;
        // Jitter differs per call, so calls failing together do not retry together.
        let seed = self.inner.calls.load(Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ req.path.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        loop {
            self.wait_out_pause().await;
            let generation = self.inner.signin_generation.load(Ordering::SeqCst);
            let session = self.session().await;
            let base = if req.site_scoped {
                format!(
                    "{}/api/{}/sites/{}/{}",
                    self.inner.config.server, session.api_version, session.site_id, req.path
                )
            } else if req.path.starts_with('/') {
                format!("{}{}", self.inner.config.server, req.path)
            } else {
                format!("{}/api/{}/{}", self.inner.config.server, session.api_version, req.path)
            };
            let url = if req.query.is_empty() {
                base
            } else {
                let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={}", encode_query(v))).collect();
                format!("{base}?{}", q.join("&"))
            };
            // A write's claim is checked before the call waits for its permits, so the
            // store's answer does not hold one of the site's slots; the deadline it gives is
            // compared again, without waiting, right before the send (see below).
            let check = if matches!(req.method, Method::GET | Method::HEAD) {
                None
            } else {
                WRITE_CHECK.try_with(|c| c.clone()).ok()
            };
            let mut checked = match &check {
                Some(c) => Some(c.check().await.map_err(Error::Fenced)?),
                None => None,
            };
            // The shared gate's admission, held while the call is in flight (and, after a
            // 429, until the pause is shared).
            let mut slot: Option<Box<dyn Send + Sync>>;
            let outcome = {
                let kind = if matches!(req.method, Method::GET | Method::HEAD) {
                    &self.inner.read_permits
                } else {
                    &self.inner.write_permits
                };
                let _kind = kind.acquire().await.expect("semaphore is never closed");
                let _permit = self.inner.permits.acquire(!matches!(req.method, Method::GET | Method::HEAD)).await;
                self.throttle().await;
                let gate = self.inner.gate.read().unwrap_or_else(|e| e.into_inner()).clone();
                slot = match &gate {
                    Some(g) => Some(g.admit().await),
                    None => None,
                };
                if let Some(check) = &check {
                    // Checked without a deadline, or its deadline passed while waiting for
                    // the permits: asked again, now, holding them.
                    if !matches!(checked, Some(Some(deadline)) if Instant::now() < deadline) {
                        checked = Some(check.check().await.map_err(Error::Fenced)?);
                    }
                    if let Some(Some(deadline)) = checked
                        && Instant::now() >= deadline
                    {
                        return Err(Error::Fenced(format!(
                            "the claim was checked {} ms ago, too long before the write could be sent (the process was paused or starved); the write was not sent",
                            (Instant::now() - deadline).as_millis()
                        )));
                    }
                }
                let (limit, what) = if req.download && sink.is_some() {
                    (self.inner.config.max_download_bytes.max(MAX_FILE_DOWNLOAD_BYTES), "download")
                } else if req.download {
                    (self.inner.config.max_download_bytes, "download")
                } else {
                    (self.inner.config.max_response_bytes, "answer")
                };
                let started = Instant::now();
                let r = self
                    .raw_capped(
                        req.method.clone(),
                        &url,
                        req.body.clone(),
                        Some(&session.token),
                        limit,
                        what,
                        sink.as_deref_mut(),
                        checked.flatten(),
                    )
                    .await;
                // A timeline of the calls (`TABFLOW_LOG=tabflow_client::calls=debug`): where a
                // plan or an apply waits.
                tracing::debug!(target: "tabflow_client::calls", method = %req.method, path = %req.path, ms = started.elapsed().as_millis() as u64, "call");
                r
            };
            let err = match outcome {
                Ok(resp) if (200..300).contains(&resp.status) => return Ok(resp),
                Ok(resp) => {
                    if resp.status != 429 {
                        drop(slot.take());
                    }
                    let text = resp.text();
                    let err = api_error_from(resp.status, &text, &url);
                    if resp.status == 429 && rate_limited < self.inner.config.rate_limit_patience {
                        // Not processed: safe to repeat for any method, for as long as the
                        // patience lasts. The whole client pauses, then calls resume spread
                        // over a little jitter.
                        let detail = match &err {
                            Error::Api { detail, .. } => detail.clone(),
                            _ => String::new(),
                        };
                        let n = (rate_limited.as_secs_f64() / 0.5) as u32;
                        let wait = retry_after(&resp.headers, &detail).unwrap_or_else(|| {
                            backoff(self.inner.config.backoff_base, self.inner.config.max_wait, n, seed)
                        });
                        let wait = wait.min(self.inner.config.max_wait);
                        self.pause_until(Instant::now() + wait);
                        let gate = self.inner.gate.read().unwrap_or_else(|e| e.into_inner()).clone();
                        if let Some(g) = gate {
                            g.rate_limited(wait).await;
                        }
                        drop(slot.take());
                        let spread = backoff(Duration::from_millis(50), Duration::from_millis(500), 2, seed ^ n as u64);
                        tracing::info!(%url, ?wait, "rate limited (429); waiting");
                        tokio::time::sleep(wait + spread).await;
                        rate_limited += wait + spread;
                        continue;
                    }
                    if resp.status == 401 && err.code() == Some("401002") && !resigned {
                        resigned = true;
                        self.resign_in(generation).await?;
                        continue;
                    }
                    err
                }
                Err(e) => e,
            };
            drop(slot);
            if req.idempotent && err.is_transient() && attempt < self.inner.config.max_retries {
                let wait = backoff(
                    self.inner.config.backoff_base,
                    self.inner.config.max_wait,
                    attempt,
                    seed ^ generation ^ attempt as u64,
                );
                tracing::info!(%url, error = %err, ?wait, "transient failure; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(err);
        }
    }

    /// Sends and parses a `tsResponse`.
    pub async fn send_xml(&self, req: Request) -> Result<TsResponse> {
        let path = req.path.clone();
        let resp = self.send(req).await?;
        if resp.body.is_empty() {
            return Ok(TsResponse::default());
        }
        // Parsed in place; a body that is not UTF-8 is decoded leniently (a copy) first.
        let text = match std::str::from_utf8(&resp.body) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => std::borrow::Cow::Owned(resp.text()),
        };
        xml::parse_response(&text).map_err(|e| Error::Protocol {
            url: path,
            status: resp.status,
            detail: format!("the answer is not Tableau XML: {e}"),
        })
    }

    /// Sends and parses JSON (Metadata API, VizQL Data Service, usage stats).
    pub async fn send_json(&self, req: Request) -> Result<serde_json::Value> {
        let path = req.path.clone();
        let resp = self.send(req).await?;
        serde_json::from_slice(&resp.body).map_err(|e| Error::Protocol {
            url: path,
            status: resp.status,
            detail: format!("the answer is not JSON: {e}"),
        })
    }
}

/// Percent-encodes a query value (Tableau decodes both encoded and raw filter forms).
fn encode_query(v: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'*');
    utf8_percent_encode(v, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_a_user_or_password_are_recognised() {
        for a in ["https://admin:pw@tableau.example.com", "http://u@127.0.0.1:8080/x", "u:p@host", "https://u:p%40x@h/"]
        {
            assert!(has_userinfo(a), "{a}");
        }
        for a in ["https://tableau.example.com", "https://h/path@x", "https://h?x=a@b", "https://h#a@b", "host"] {
            assert!(!has_userinfo(a), "{a}");
        }
    }

    #[test]
    fn retry_after_sources() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(
            retry_after(&h, "Too many requests for 'x'. Please retry after 29 minutes."),
            Some(Duration::from_secs(1740))
        );
        assert_eq!(retry_after(&h, "nothing here"), None);
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h, "retry after 29 minutes"), Some(Duration::from_secs(3)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let b0 = backoff(base, max, 0, 7);
        let b3 = backoff(base, max, 3, 7);
        assert!(b0 >= Duration::from_millis(50) && b0 <= Duration::from_millis(100));
        assert!(b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(800));
        assert!(backoff(base, max, 30, 7) <= max);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_tuple("3.10") > version_tuple("3.9"));
        assert!(version_tuple("2.8") < version_tuple(MIN_API_VERSION));
    }

    #[test]
    fn requests_are_values() {
        let r = Request::get("workbooks").query("filter", "name:eq:A B");
        assert!(r.idempotent && r.site_scoped);
        assert_eq!(encode_query("name:eq:A B"), "name%3Aeq%3AA%20B");
        assert!(!Request::new(Method::POST, "x").idempotent);
    }

    #[test]
    fn error_bodies() {
        let e = api_error_from(404, &tabflow_wire::ApiError::not_found("404006", "Workbook", "x").to_xml(), "u");
        assert_eq!(e.code(), Some("404006"));
        let e = api_error_from(502, "<html>Bad gateway</html>", "u");
        assert!(matches!(e, Error::Protocol { status: 502, .. }));
        assert!(e.is_transient());
        let e = api_error_from(400, r#"{"errorCode":"400803","message":"Unknown Field: X."}"#, "u");
        assert_eq!(e.code(), Some("400803"));
    }
}
