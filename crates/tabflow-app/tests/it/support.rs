//! Shared helpers: an emulator serving the demo site and an [`App`] connected to it with a
//! fresh SQLite store in a temporary data directory.

use std::sync::Arc;

use tabflow_app::{App, Clock, Connection, Options, PlanRequest, Policy, Source};
use tabflow_client::{Config, Credentials, Secret};

/// A running emulator, the service connected to it, and the data directory (kept alive).
pub struct Env {
    pub emu: tabflow_emulator::Running,
    pub app: App,
    pub dir: tempfile::TempDir,
}

/// The demo site (its clock shifted to now) on 127.0.0.1:0 and an `App` over it.
pub async fn env(clock: Arc<dyn Clock>, policy: Policy) -> Env {
    let emu = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_on(&emu.url, dir.path(), clock, policy).await;
    Env { emu, app, dir }
}

/// An emulator serving the demo site, its clock shifted to now.
pub async fn demo() -> tabflow_emulator::Running {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.unwrap()
}

/// An `App` connected to the site at `url`, with the SQLite store `<dir>/tabflow.db` (two
/// apps on one `dir` share a store).
pub async fn app_on(url: &str, dir: &std::path::Path, clock: Arc<dyn Clock>, policy: Policy) -> App {
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let mut options = Options::new(dir);
    options.connection = Connection::Server(Config::new(url.to_string(), "demo", creds));
    options.store = Some(dir.join("tabflow.db").display().to_string());
    options.policy = policy;
    options.clock = clock;
    App::open(options).await.unwrap()
}

/// Writes the emulator has answered so far (POST/PUT/DELETE other than sign-in).
pub fn writes(env: &Env) -> u64 {
    env.emu.emulator.stats()["writes"].as_u64().unwrap_or(u64::MAX)
}

/// A plan request for an intent and its parameters, as `--intent NAME --param K=V` gives it.
pub fn intent(name: &str, params: &[(&str, &str)]) -> PlanRequest {
    PlanRequest {
        request: format!("{name} {}", params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")),
        source: Source::Intent {
            name: name.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        },
        answers: Default::default(),
        actor: "tester".into(),
        remember: true,
    }
}

/// An `App` on the site at `url` with the store at `store` (a PostgreSQL URL, or a SQLite
/// path), notifications to `delivery`.
pub async fn app_with(
    url: &str,
    dir: &std::path::Path,
    store: &str,
    clock: Arc<dyn Clock>,
    policy: Policy,
    delivery: tabflow_app::Delivery,
) -> App {
    app_as(
        url,
        dir,
        store,
        clock,
        policy,
        delivery,
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    )
    .await
}

/// [`app_with`] signed in with `creds` (two processes on one site sign in as two sessions: a
/// second sign-in with one PAT ends the first one's session, as Tableau does).
pub async fn app_as(
    url: &str,
    dir: &std::path::Path,
    store: &str,
    clock: Arc<dyn Clock>,
    policy: Policy,
    delivery: tabflow_app::Delivery,
    creds: Credentials,
) -> App {
    let mut options = Options::new(dir);
    options.connection = Connection::Server(Config::new(url.to_string(), "demo", creds));
    options.store = Some(store.to_string());
    options.policy = policy;
    options.clock = clock;
    options.delivery = delivery;
    App::open(options).await.unwrap()
}

/// The database of the PostgreSQL tests: `TABFLOW_TEST_PG_URL`, by default the project
/// machines' server (127.0.0.1:5432, user postgres, trust auth, database `test`).
pub fn pg_url() -> String {
    std::env::var("TABFLOW_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema in the PostgreSQL test database for one test; [`PgSchema::remove`] drops it.
/// Unreachable PostgreSQL fails the test naming the URL, unless `TABFLOW_SKIP_PG=1` (then
/// `None`: the test says so and returns).
pub struct PgSchema {
    pub admin: sqlx::PgPool,
    pub name: String,
}

impl PgSchema {
    pub async fn create(prefix: &str) -> Option<PgSchema> {
        use sqlx::AssertSqlSafe;
        let url = pg_url();
        let admin = match sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
        {
            Ok(p) => p,
            Err(e) if std::env::var("TABFLOW_SKIP_PG").as_deref() == Ok("1") => {
                eprintln!("skipped: PostgreSQL not reachable ({e}) and TABFLOW_SKIP_PG=1");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL at {} is not reachable ({e}); start it, set TABFLOW_TEST_PG_URL, or set TABFLOW_SKIP_PG=1",
                tabflow_site::text::redact_url(&url)
            ),
        };
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&admin).await.unwrap();
        Some(PgSchema { admin, name })
    }

    /// The test database's URL with this schema as the search path.
    pub fn url(&self) -> String {
        let url = pg_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20search_path%3D{}", self.name)
    }

    pub async fn remove(self) {
        use sqlx::AssertSqlSafe;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name))).execute(&self.admin).await.unwrap();
        self.admin.close().await;
    }
}

/// A real HTTP server on 127.0.0.1:0 that answers 200 to every request and hands each
/// request's headers (lowercased names) and body to the test.
pub struct Receiver {
    pub url: String,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<(std::collections::BTreeMap<String, String>, String)>,
}

pub async fn receiver() -> Receiver {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_string();
                        let length = head
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (p + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                let _ = tx.send((headers, body));
            });
        }
    });
    Receiver { url, rx }
}

/// Undoes a run as the terminal's operator acting alone (as `tabflow runs rollback --yes`):
/// its rollback plan, approved whole, then started.
pub async fn rollback(app: &App, run_id: &str, actor: &str) -> tabflow_app::Result<tabflow_app::RunHandle> {
    let plan = app.plan_rollback(run_id, actor, "terminal").await?.into_plan();
    let approver = tabflow_app::Approver::terminal(actor);
    app.approve(&approver, &plan.id, tabflow_app::Decision::Approve, tabflow_app::Selection::All).await?;
    match app.start_run(&plan.id, actor, tabflow_app::StartOptions::default()).await? {
        tabflow_app::Start::Running(h) => Ok(h),
        _ => panic!("an approved rollback plan starts a run"),
    }
}
