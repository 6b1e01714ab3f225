//! Connection flags shared by every command that talks to a site, and the built-in demo
//! site: with no `--server` (and no profile), commands run against an in-process emulator
//! whose state lives in the user's data directory between commands.

use std::path::PathBuf;

use clap::Args;
use tabflow_client::{Client, Config, Credentials, Secret};
use tabflow_emulator::{Options, Running};
use tabflow_site::Site;

use crate::exit::{fail, usage};

#[derive(Debug, Args, Clone)]
pub struct Connect {
    /// Tableau Server or Tableau Cloud URL (e.g. https://10ax.online.tableau.com). Without it
    /// (and without --profile) tabflow uses its built-in demo site.
    #[arg(long, global = true, env = "TABLEAU_SERVER")]
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
    /// Calls in flight at once against the site, reads and writes (default: 16 reads, 8 writes).
    #[arg(long, global = true)]
    pub concurrency: Option<usize>,
    /// Calls per second against the site.
    #[arg(long, global = true)]
    pub rate_limit: Option<f64>,
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
    data_dir().join("demo-site.json")
}

/// A connected site: a real server, or the demo site served in process.
pub struct Session {
    pub client: Client,
    demo: Option<Running>,
}

impl Session {
    /// Whether this is the built-in demo site.
    pub fn is_demo(&self) -> bool {
        self.demo.is_some()
    }

    /// The server as plans record it (the demo site's port changes every command).
    pub fn server_label(&self) -> String {
        if self.is_demo() { "builtin:demo".into() } else { self.client.config().server.clone() }
    }

    /// Signs out, and for the demo site saves its state for the next command.
    pub async fn finish(self) -> anyhow::Result<()> {
        let _ = self.client.sign_out().await;
        if let Some(running) = self.demo {
            let site = running.emulator.snapshot();
            save_demo(&site)?;
            running.stop().await;
        }
        Ok(())
    }
}

fn save_demo(site: &Site) -> anyhow::Result<()> {
    let path = demo_state_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            fail(format!("cannot create {}: {e}", dir.display()), "set TABFLOW_HOME to a writable directory")
        })?;
    }
    // Write then rename, so a crash never leaves a half-written demo site.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, site.to_json()).map_err(|e| {
        fail(format!("cannot write {}: {e}", tmp.display()), "set TABFLOW_HOME to a writable directory")
    })?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        fail(format!("cannot replace {}: {e}", path.display()), "set TABFLOW_HOME to a writable directory")
    })?;
    Ok(())
}

/// The demo site as the previous command left it, or a fresh one.
pub fn load_demo() -> anyhow::Result<Site> {
    let path = demo_state_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => Site::from_json(&text).map_err(|e| {
            fail(
                format!("the saved demo site {} is damaged: {e}", path.display()),
                "run `tabflow demo reset` to start from the original demo site",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(fresh_demo()),
        Err(e) => Err(fail(
            format!("cannot read {}: {e}", path.display()),
            "check the permissions of the tabflow data directory",
        )),
    }
}

/// The original demo site, as of now.
pub fn fresh_demo() -> Site {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    site
}

/// Writes the original demo site as the saved state.
pub fn reset_demo() -> anyhow::Result<Site> {
    let site = fresh_demo();
    save_demo(&site)?;
    Ok(site)
}

impl Connect {
    fn config(&self) -> anyhow::Result<Option<Config>> {
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
            self.tune(&mut c);
            return Ok(Some(c));
        }
        let Some(server) = &self.server else { return Ok(None) };
        let credentials = Config::credentials_from_env().ok_or_else(|| {
            usage(
                format!("--server {server} is set but no credentials are"),
                "set TABLEAU_PAT_NAME and TABLEAU_PAT_SECRET (or TABLEAU_USERNAME and TABLEAU_PASSWORD, or TABLEAU_JWT)",
            )
        })?;
        let mut c = Config::new(server.clone(), self.site.clone().unwrap_or_default(), credentials);
        self.tune(&mut c);
        Ok(Some(c))
    }

    fn tune(&self, c: &mut Config) {
        if let Some(n) = self.concurrency {
            c.concurrency = n.max(1);
            c.read_concurrency = n.max(1);
        }
        if self.rate_limit.is_some() {
            c.rate_limit_per_s = self.rate_limit;
        }
    }

    /// Connects to the configured server, or starts the demo site.
    pub async fn open(&self) -> anyhow::Result<Session> {
        match self.config()? {
            Some(config) => {
                let server = config.server.clone();
                let client = Client::connect(config).await.map_err(|e| client_error(e, &server))?;
                Ok(Session { client, demo: None })
            }
            None => {
                eprintln!(
                    "note: no server configured — using the built-in demo site (`tabflow demo reset` restores it)"
                );
                let site = load_demo()?;
                let running = tabflow_emulator::start(Options::new(site)).await.map_err(|e| {
                    fail(format!("cannot start the built-in demo site: {e}"), "is the loopback interface available?")
                })?;
                let mut config = Config::new(
                    running.url.clone(),
                    "demo",
                    Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
                );
                self.tune(&mut config);
                let client = Client::connect(config).await.map_err(|e| client_error(e, &running.url))?;
                Ok(Session { client, demo: Some(running) })
            }
        }
    }
}

/// A client error as a CLI failure with its hint (exit 1).
pub fn client_error(e: tabflow_client::Error, server: &str) -> anyhow::Error {
    let hint = e.hint().unwrap_or_else(|| format!("check that {server} is a reachable Tableau site"));
    fail(e.to_string(), hint)
}
