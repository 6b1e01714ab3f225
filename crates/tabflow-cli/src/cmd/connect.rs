//! Connection flags shared by every command that talks to a site, and where tabflow's data
//! lives. This file reads the flags, the environment and the config file into a
//! [`tabflow_app::Connection`]; connecting (a real server, or the built-in demo site whose
//! state lives in the data directory between commands) is the application service's.

use std::path::PathBuf;

use clap::Args;
use tabflow_app::{Connection, Session, Tuning};
use tabflow_client::{Config, ExposeSecret};
use tabflow_site::Site;

use crate::exit::usage;

#[derive(Debug, Args, Clone)]
pub struct Connect {
    /// Tableau Server or Tableau Cloud URL (e.g. https://10ax.online.tableau.com). Without it
    /// (and without --profile) tabflow uses its built-in demo site.
    #[arg(long, global = true, env = "TABLEAU_SERVER", hide_env_values = true)]
    pub server: Option<String>,
    /// Site content URL ("" for the Default site).
    #[arg(long, global = true, env = "TABLEAU_SITE")]
    pub site: Option<String>,
    /// A profile of the config file (`--config`, default <data dir>/config.toml).
    #[arg(long, global = true, env = "TABFLOW_PROFILE")]
    pub profile: Option<String>,
    /// The config file holding profiles.
    #[arg(long, global = true, env = "TABFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    /// Calls in flight at once against the site, reads and writes (default: 16 reads, 8
    /// writes; 1 to 1024).
    #[arg(long, global = true)]
    pub concurrency: Option<usize>,
    /// Calls per second against the site (0.01 to 10000).
    #[arg(long, global = true)]
    pub rate_limit: Option<f64>,
    /// Plan with the site cache: the views and lineage of workbooks not updated since the
    /// last plan of the same site and projects come from the store (lists, permissions and
    /// group members are always read fresh; apply never uses it).
    #[arg(long, env = "TABFLOW_SITE_CACHE")]
    pub site_cache: bool,
    /// Read the site fresh for this plan and replace the site cache.
    #[arg(long)]
    pub fresh: bool,
}

/// tabflow's data directory: `$TABFLOW_HOME`, else `$XDG_DATA_HOME/tabflow`, else
/// `~/.local/share/tabflow`.
pub fn data_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("TABFLOW_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(x).join("tabflow");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/tabflow")
}

pub fn demo_state_path() -> PathBuf {
    tabflow_app::session::demo_state_path(&data_dir())
}

/// Writes the original demo site as the saved state.
pub fn reset_demo() -> anyhow::Result<Site> {
    tabflow_app::session::reset_demo(&data_dir(), &tabflow_app::SystemClock).map_err(crate::exit::app)
}

impl Connect {
    /// The flags' concurrency and rate limit, checked: a number out of range is a usage
    /// error naming the flag and the range, before anything connects.
    fn tuning(&self) -> anyhow::Result<Tuning> {
        if let Some(problem) = self.concurrency.and_then(tabflow_client::config::check_concurrency) {
            return Err(usage(
                format!("--concurrency: {problem}"),
                "give a whole number of calls in flight, e.g. --concurrency 8",
            ));
        }
        if let Some(problem) = self.rate_limit.and_then(tabflow_client::config::check_rate_limit) {
            return Err(usage(
                format!("--rate-limit: {problem}"),
                "give calls per second between 0.01 and 10000, e.g. --rate-limit 10 (leave it out for no limit)",
            ));
        }
        Ok(Tuning { concurrency: self.concurrency, rate_limit: self.rate_limit })
    }

    /// Where to connect: a profile of the config file, `--server` with credentials from the
    /// environment, or the built-in demo site.
    pub fn connection(&self) -> anyhow::Result<Connection> {
        if let Some(profile) = &self.profile {
            let path = self.config.clone().unwrap_or_else(|| data_dir().join("config.toml"));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                usage(
                    format!("cannot read the config file {}: {e}", path.display()),
                    "pass --config FILE or create it with a [profiles.NAME] table",
                )
            })?;
            let mut c = Config::from_profile(&text, profile)
                .map_err(|e| usage(e.to_string(), "see the [profiles.NAME] keys in the README"))?;
            // The profile's secret joins the redaction list of everything printed.
            crate::term::add_secret(match &c.credentials {
                tabflow_client::config::Credentials::Pat { secret, .. } => secret.expose_secret(),
                tabflow_client::config::Credentials::Password { password, .. } => password.expose_secret(),
                tabflow_client::config::Credentials::Jwt { token } => token.expose_secret(),
            });
            self.tuning()?.apply(&mut c);
            warn_plain_http(&c.server);
            return Ok(Connection::Server(c));
        }
        let tuning = self.tuning()?;
        let Some(server) = &self.server else { return Ok(Connection::Demo(tuning)) };
        let credentials = Config::credentials_from_env().ok_or_else(|| {
            usage(
                format!("--server {server} is set but no credentials are"),
                "set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET (or TABLEAU_USERNAME and TABLEAU_PASSWORD, or TABLEAU_JWT)",
            )
        })?;
        let mut c = Config::new(server.clone(), self.site.clone().unwrap_or_default(), credentials);
        tuning.apply(&mut c);
        warn_plain_http(&c.server);
        Ok(Connection::Server(c))
    }

    /// Connects to the configured server, or starts the demo site (saying so on stderr).
    pub async fn open(&self) -> anyhow::Result<Session> {
        let connection = self.connection()?;
        let s = Session::open(&connection, &data_dir(), &tabflow_app::SystemClock).await.map_err(crate::exit::app)?;
        match s.shared_demo() {
            Some(live) => errln!("note: {}", tabflow_app::session::shared_note(live)),
            None if s.is_demo() => errln!("note: {}", tabflow_app::session::DEMO_NOTE),
            None => {}
        }
        Ok(s)
    }
}

/// A client error as a CLI failure with its hint (exit 1).
/// Says once per process, on stderr, that a plain `http://` server on another machine gets
/// the credentials and the session unencrypted.
fn warn_plain_http(server: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if let Some(w) = tabflow_client::plain_http_warning(server) {
        ONCE.call_once(|| errln!("warning: {w}"));
    }
}

/// Prints a warning on stderr once per process (the same text twice is said once).
pub fn warn_once(warning: Option<String>) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Some(w) = warning else { return };
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&w) {
        errln!("warning: {w}");
        said.push(w);
    }
}

pub fn client_error(e: tabflow_client::Error, server: &str) -> anyhow::Error {
    crate::exit::app(tabflow_app::Error::client(e, server))
}
