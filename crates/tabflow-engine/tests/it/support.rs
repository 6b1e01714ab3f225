//! Shared helpers: the demo site served by an in-process emulator with a signed-in client,
//! and a fresh schema in the PostgreSQL test database.

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPoolOptions;
use tabflow_client::{Client, Config, Credentials, Secret};

/// The demo site (its clock shifted to now) served on 127.0.0.1:0, a client signed in to it
/// with the demo PAT, and the site as generated.
pub async fn demo() -> (tabflow_emulator::Running, Client, tabflow_site::Site) {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site.clone())).await.unwrap();
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let client = Client::connect(Config::new(emu.url.clone(), "demo", creds)).await.unwrap();
    (emu, client, site)
}

/// The database of the PostgreSQL tests: `TABFLOW_TEST_PG_URL`, by default the project
/// machines' server (127.0.0.1:5432, user postgres, trust auth, database `test`).
pub fn pg_url() -> String {
    std::env::var("TABFLOW_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its password, if any, replaced by `***` (for messages).
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// A fresh schema in the PostgreSQL test database, for one test; [`PgSchema::remove`] drops it.
pub struct PgSchema {
    pub admin: sqlx::PgPool,
    pub name: String,
}

impl PgSchema {
    /// Creates the schema `PREFIX_<random>`. When PostgreSQL cannot be reached the test fails
    /// with a message naming the URL, unless `TABFLOW_SKIP_PG=1`: then it says so on stderr
    /// and answers `None`, and the test returns (skipped).
    pub async fn create(prefix: &str) -> Option<PgSchema> {
        let url = pg_url();
        let admin = match PgPoolOptions::new()
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
                "PostgreSQL at {} is not reachable ({e}); start it, set TABFLOW_TEST_PG_URL to another server, or set TABFLOW_SKIP_PG=1",
                without_password(&url)
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
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name))).execute(&self.admin).await.unwrap();
        self.admin.close().await;
    }
}
