//! tabflow's application service: the one core every front end calls (DESIGN.md §1). The
//! CLI, and later the HTTP API and web console, the MCP server and the scheduler worker, are
//! thin layers over [`App`]: they read their settings (flags, environment, config files,
//! tokens), authenticate people, render results and choose exit codes or statuses; the
//! orchestration a request goes through — plan → questions → approval → run with progress →
//! reports → learning, and later rollback, resume, purge and audit — lives here, once.
//!
//! Rules of this crate: it never prints, prompts or exits; it reads no environment variable
//! or config file (everything comes in [`Options`]); its time comes from the injected
//! [`Clock`]; its results are typed values and its errors are [`Error`]s that name the
//! problem and the fix and carry a [`Kind`] the front end maps to its own answer. Progress of
//! a run is a stream of the engine's own [`Event`]s ([`RunHandle::subscribe`]), the same
//! events that drive the CLI's progress lines and, later, SSE and MCP progress.

mod admin;
mod approvals;
mod error;
mod history;
pub mod hooks;
mod planning;
pub mod query;
mod reads;
pub mod redact;
pub mod reports;
mod rollbacks;
mod runs;
mod scaleout;
pub mod schedules;
pub mod session;
pub mod templates;
mod tokens;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use approvals::ApprovalRequest;
pub use error::{Error, Kind, Result, missing_hint, missing_text};
pub use history::RunDetail;
pub use hooks::{HookOutcome, HookRule, TableauEvent, TableauHooks};
pub use planning::{PlanRequest, Planned, Source, error_findings, intent_from_parts};
pub use redact::Redactor;
pub use runs::{Events, RunHandle, RunOutcome, RunWatch, Start, StartOptions, made_without_a_person, wants_report};
pub use schedules::{Fired, NewSchedule, WorkReport, WorkerOptions};
pub use session::{Connection, Session, Tuning};
pub use tabflow_workflows::query::Answer as QueryAnswer;
pub use templates::{Template, TemplateInfo};
pub use tokens::{Caller, Permission, Role, TOKEN_PREFIX, TokenInfo, api_actor};

pub use tabflow_engine::approval::{Approver, Channel, Decision, Grant, Missing, Selection, SelectionError, pair_key};
pub use tabflow_engine::audit::{NewRecord, Record, Verification};
pub use tabflow_engine::executor::{Cancel, NOT_APPROVED, Purge, RunReport, SharedPass};
pub use tabflow_engine::notify::{Delivery, Tally};
pub use tabflow_engine::plan;
pub use tabflow_engine::store::{ApprovalRow, RunRow, ScheduleRow};
pub use tabflow_engine::{Event, Plan, Policy, RunStatus, Store, SystemClock, ValidatedPlan};
pub use tabflow_plan::{Clock, FixedClock};

/// Everything the service needs, decided by the front end.
pub struct Options {
    /// The state store: a SQLite path or a `postgres://` URL; `None` = `<data_dir>/tabflow.db`.
    pub store: Option<String>,
    /// tabflow's data directory (demo site state, reports).
    pub data_dir: PathBuf,
    /// Where the site is.
    pub connection: Connection,
    pub policy: Policy,
    /// Where run notifications go besides the outbox.
    pub delivery: Delivery,
    /// The source of "now" (approvals' expiry, schedules, the parser's "today", the demo site).
    pub clock: Arc<dyn Clock>,
    /// Credentials the front end holds (an LLM key, secrets from its environment), kept out
    /// of requests, plans and prompts. The connection's own secret is added by the service.
    pub secrets: Vec<String>,
    /// Called with a short note the front end may show (e.g. that the demo site is used
    /// because no server is configured, or which parser read a request).
    pub notice: Option<Arc<dyn Fn(&str) + Send + Sync>>,
    /// Test hook: a run stops (as if killed) after this many journal intents.
    pub crash_after_intents: Option<usize>,
    /// Read the whole site (every item's permissions) for every plan and check, instead of
    /// what the request needs (issue #15): for comparing the two, and as a way back.
    pub full_site_reads: bool,
    /// The site cache for planning (issue #15, [`SiteCache`]).
    pub site_cache: SiteCache,
    /// Where the audit chain's head is anchored, outside the store; `None` =
    /// [`default_audit_anchor`] in the data directory.
    pub audit_anchor: Option<PathBuf>,
    /// With the built-in demo site: host it for the other processes of the data directory
    /// (`tabflow serve`): its URL and pid are recorded there until [`App::close`].
    pub host_demo: bool,
    /// Which template each event from Tableau's webhooks triggers (`[hooks.tableau]` of the
    /// config file); `None`: `tabflow serve` answers 404 at `/hooks/tableau/…`.
    pub tableau_hooks: Option<hooks::TableauHooks>,
}

impl Options {
    /// Options with the defaults: the demo site, default policy, no delivery, system clock.
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            store: None,
            data_dir: data_dir.into(),
            connection: Connection::Demo(Tuning::default()),
            policy: Policy::default(),
            delivery: Delivery::default(),
            clock: Arc::new(SystemClock),
            secrets: vec![],
            notice: None,
            crash_after_intents: None,
            full_site_reads: false,
            site_cache: SiteCache::Off,
            audit_anchor: None,
            host_demo: false,
            tableau_hooks: None,
        }
    }
}

/// Whether plans use the site cache (issue #15): the views and lineage of workbooks not
/// updated since the last plan of the same site and scope, kept in the store. Lists,
/// permissions and group members are read fresh whatever this says; `apply` and checks of a
/// plan never use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SiteCache {
    /// Every plan reads everything it needs from the site (the default).
    #[default]
    Off,
    /// Plans use the cache and keep it up to date.
    Use,
    /// Plans read everything fresh and replace the cache (`--fresh`).
    Refresh,
}

/// The audit anchor of a store in a data directory: `<data_dir>/audit.anchor` for the
/// default store (`<data_dir>/tabflow.db`), `<data_dir>/audit-<12 hex of the location's
/// SHA-256>.anchor` for any other (so one data directory can serve several stores).
pub fn default_audit_anchor(data_dir: &std::path::Path, store_location: &str) -> PathBuf {
    let default = data_dir.join("tabflow.db");
    if store_location == default.display().to_string() {
        return data_dir.join("audit.anchor");
    }
    let id = tabflow_engine::plan::sha256_hex(store_location.as_bytes());
    data_dir.join(format!("audit-{}.anchor", id.get(..12).unwrap_or(&id)))
}

/// The application service. One per front-end process (or per command for the CLI); the
/// site connection is opened on first use and closed by [`App::close`].
pub struct App {
    store: Store,
    data_dir: PathBuf,
    connection: Connection,
    policy: Policy,
    delivery: Delivery,
    clock: Arc<dyn Clock>,
    secrets: Vec<String>,
    /// Every configured secret (the front end's and the store URL's), for text leaving the
    /// service.
    redactor: Redactor,
    notice: Option<Arc<dyn Fn(&str) + Send + Sync>>,
    crash_after_intents: Option<usize>,
    full_site_reads: bool,
    site_cache: SiteCache,
    host_demo: bool,
    session: tokio::sync::OnceCell<Session>,
    /// The sign-in [`App::open_connecting`] started, until [`App::connect`] takes it.
    signing_in: Mutex<Option<tokio::task::JoinHandle<Result<Session>>>>,
    /// A worker's name, when its calls — the sign-in included — keep the site's limits
    /// shared in the store ([`App::share_site_limits_as`]).
    limits_owner: std::sync::OnceLock<String>,
    /// Plans validated against the live site by this service (plan id → validated plan).
    validated: Mutex<HashMap<String, ValidatedPlan>>,
    tableau_hooks: Option<hooks::TableauHooks>,
}

impl App {
    /// Opens the store; the site is connected on first use (or by [`App::connect`]).
    pub async fn open(o: Options) -> Result<App> {
        let location = o.store.clone().unwrap_or_else(|| o.data_dir.join("tabflow.db").display().to_string());
        let store = open_store(&location).await?;
        let mut redactor =
            Redactor::new(o.secrets.iter().cloned().chain(o.tableau_hooks.as_ref().map(|h| h.secret().to_string())));
        redactor.add_url(&location);
        let anchor = o.audit_anchor.clone().unwrap_or_else(|| default_audit_anchor(&o.data_dir, store.location()));
        // Audit records are redacted as they are written: the front end's secrets, the store
        // URL's and the connection's own sign-in secret never reach the chain.
        let mut audit_secrets = redactor.clone();
        if let Connection::Server(config) = &o.connection {
            audit_secrets.add(redact::credential_secret(config));
        }
        let store = store.with_audit_anchor(anchor).with_audit_redaction(audit_secrets.secrets().to_vec());
        Ok(App {
            redactor,
            store,
            data_dir: o.data_dir,
            connection: o.connection,
            policy: o.policy,
            delivery: o.delivery,
            clock: o.clock,
            secrets: o.secrets,
            notice: o.notice,
            crash_after_intents: o.crash_after_intents,
            full_site_reads: o.full_site_reads,
            site_cache: o.site_cache,
            host_demo: o.host_demo,
            session: tokio::sync::OnceCell::new(),
            signing_in: Mutex::new(None),
            limits_owner: std::sync::OnceLock::new(),
            validated: Mutex::new(HashMap::new()),
            tableau_hooks: o.tableau_hooks,
        })
    }

    /// [`App::open`] for a front end that uses the site right away (`tabflow plan`, `apply`,
    /// `ask`): the sign-in to a Tableau server (server info, then sign-in: two round trips)
    /// starts at once and runs while the store opens (a disk sync or a database connection),
    /// instead of after it (issue #15). Its outcome is taken by the first [`App::connect`], so
    /// a failed sign-in is reported where it was before. The demo site is still started on
    /// first use, and an app that shares the site's limits ([`App::share_site_limits_as`])
    /// signs in again through them.
    pub async fn open_connecting(o: Options) -> Result<App> {
        let signing_in = match &o.connection {
            Connection::Server(_) => {
                let (connection, data_dir, clock) = (o.connection.clone(), o.data_dir.clone(), o.clock.clone());
                Some(tokio::spawn(async move {
                    Session::open_gated(&connection, &data_dir, clock.as_ref(), false, None).await
                }))
            }
            Connection::Demo(_) => None,
        };
        match App::open(o).await {
            Ok(app) => {
                *app.signing_in.lock().unwrap_or_else(|e| e.into_inner()) = signing_in;
                Ok(app)
            }
            Err(e) => {
                if let Some(task) = signing_in {
                    task.abort();
                }
                Err(e)
            }
        }
    }

    /// The connected site, connecting now if needed.
    pub async fn connect(&self) -> Result<&Session> {
        self.session
            .get_or_try_init(|| async {
                let gate = match self.limits_owner.get() {
                    Some(owner) => self.site_gate(owner).await?,
                    None => None,
                };
                let early = self.signing_in.lock().unwrap_or_else(|e| e.into_inner()).take();
                let s = match early {
                    Some(task) if gate.is_none() => task.await.map_err(|e| {
                        Error::failed(format!("the sign-in stopped: {e}"), "try again; if it persists, report it")
                    })??,
                    other => {
                        if let Some(task) = other {
                            task.abort();
                        }
                        Session::open_gated(&self.connection, &self.data_dir, self.clock.as_ref(), self.host_demo, gate)
                            .await?
                    }
                };
                match s.shared_demo() {
                    Some(live) => self.notify(&session::shared_note(live)),
                    None if s.is_demo() => self.notify(session::DEMO_NOTE),
                    None => {}
                }
                Ok(s)
            })
            .await
    }

    /// Ends the session (the demo site's state is saved) and closes the store, both at once
    /// (signing out is a round trip, closing a SQLite store a checkpoint of its log).
    pub async fn close(self) -> Result<()> {
        let early = self.signing_in.into_inner().unwrap_or_else(|e| e.into_inner());
        let finish = async {
            let mut r = match self.session.into_inner() {
                Some(s) => s.finish().await,
                None => Ok(()),
            };
            // A sign-in started ahead and never used: signed out when it was made, else given
            // up (a command refused before it needed the site does not wait for the server).
            if let Some(task) = early {
                if !task.is_finished() {
                    task.abort();
                } else if let Ok(Ok(s)) = task.await {
                    r = r.and(s.finish().await);
                }
            }
            r
        };
        let (r, ()) = tokio::join!(finish, self.store.close());
        r
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Where run notifications go besides the outbox.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    fn notify(&self, note: &str) {
        if let Some(n) = &self.notice {
            n(note);
        }
    }

    fn remember_validated(&self, vp: &ValidatedPlan) {
        self.validated.lock().unwrap_or_else(|e| e.into_inner()).insert(vp.plan().id.clone(), vp.clone());
    }

    fn cached(&self, plan_id: &str) -> Option<ValidatedPlan> {
        self.validated.lock().unwrap_or_else(|e| e.into_inner()).get(plan_id).cloned()
    }
}

/// Opens the state store at a location, with the fix for each kind of failure.
pub async fn open_store(location: &str) -> Result<Store> {
    let postgres = location.starts_with("postgres://") || location.starts_with("postgresql://");
    Store::open_location(location).await.map_err(|e| {
        let detail = e.to_string().to_ascii_lowercase();
        let tls = location.contains("sslmode=require") || location.contains("sslmode=verify");
        let hint = if detail.contains("newer than this tabflow build") {
            "upgrade tabflow to the version that wrote this store (its schema is newer than this build's), or point --store (TABFLOW_STORE) at another store"
        } else if postgres && tls && (detail.contains("tls") || detail.contains("ssl")) {
            "the URL asks for TLS (sslmode=require) and the server does not offer it: enable ssl on the PostgreSQL server, or use sslmode=prefer only on a network you trust"
        } else if postgres && tls && detail.contains("certificate") {
            "the server's TLS certificate was not accepted (sslmode=verify-ca/verify-full check it against the public roots): name its CA with sslrootcert=/path/ca.pem in the URL, or use sslmode=require (encrypted, not verified)"
        } else if postgres {
            "check the server, database, user and password in the URL (postgres://USER:PASSWORD@HOST:PORT/DB), or leave --store unset for the embedded SQLite store"
        } else {
            "set --store (or TABFLOW_STORE) to a writable file path, or a postgres:// URL"
        };
        Error::failed(e.to_string(), hint)
    })
}
