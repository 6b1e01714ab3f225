//! A connected site: a real Tableau server, or the built-in demo site served in process by
//! the emulator, whose state is kept in the data directory between sessions (DESIGN.md §4).
//! Which one, and with which credentials, is decided by the front end and passed in as a
//! [`Connection`]; nothing here reads the environment or a config file.

use std::path::{Path, PathBuf};

use tabflow_client::{Client, Config, Credentials, Secret};
use tabflow_emulator::Running;
use tabflow_plan::Clock;
use tabflow_site::Site;

use crate::error::{Error, Result};

/// The note a front end shows when the demo site is used because no server is configured.
pub const DEMO_NOTE: &str = "no server configured — using the built-in demo site (`tabflow demo reset` restores it)";

/// Where to connect.
#[derive(Debug, Clone)]
pub enum Connection {
    /// The built-in demo site, with these limits.
    Demo(Tuning),
    /// A Tableau server or site (credentials included; already tuned).
    Server(Config),
}

/// Limits of the client towards the demo site (a real server's `Config` carries its own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    pub concurrency: Option<usize>,
    pub rate_limit: Option<f64>,
}

impl Tuning {
    pub fn apply(&self, c: &mut Config) {
        if let Some(n) = self.concurrency {
            c.concurrency = n.max(1);
            c.read_concurrency = n.max(1);
        }
        if self.rate_limit.is_some() {
            c.rate_limit_per_s = self.rate_limit;
        }
    }
}

/// A connected site.
pub struct Session {
    pub client: Client,
    demo: Option<(Running, PathBuf)>,
}

impl Session {
    /// Connects to the server, or starts the demo site from `<data_dir>/demo-site.json`.
    pub async fn open(connection: &Connection, data_dir: &Path, clock: &dyn Clock) -> Result<Session> {
        match connection {
            Connection::Server(config) => {
                let server = config.server.clone();
                let client = Client::connect(config.clone()).await.map_err(|e| Error::client(e, &server))?;
                Ok(Session { client, demo: None })
            }
            Connection::Demo(tuning) => {
                let path = demo_state_path(data_dir);
                let site = load_demo(&path, clock)?;
                let running = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.map_err(|e| {
                    Error::failed(
                        format!("cannot start the built-in demo site: {e}"),
                        "is the loopback interface available?",
                    )
                })?;
                let mut config = Config::new(
                    running.url.clone(),
                    "demo",
                    Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
                );
                tuning.apply(&mut config);
                let client = Client::connect(config).await.map_err(|e| Error::client(e, &running.url))?;
                Ok(Session { client, demo: Some((running, path)) })
            }
        }
    }

    /// Whether this is the built-in demo site.
    pub fn is_demo(&self) -> bool {
        self.demo.is_some()
    }

    /// The server as plans record it (the demo site's port changes every session).
    pub fn server_label(&self) -> String {
        if self.is_demo() { "builtin:demo".into() } else { self.client.config().server.clone() }
    }

    /// Signs out, and for the demo site saves its state for the next session.
    pub async fn finish(self) -> Result<()> {
        let _ = self.client.sign_out().await;
        if let Some((running, path)) = self.demo {
            let site = running.emulator.snapshot();
            save_demo(&path, &site)?;
            running.stop().await;
        }
        Ok(())
    }
}

/// Where the demo site's state lives in a data directory.
pub fn demo_state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-site.json")
}

/// Writes the demo site's state (write then rename, so a crash never leaves half a file).
pub fn save_demo(path: &Path, site: &Site) -> Result<()> {
    let fix = "set TABFLOW_HOME to a writable directory";
    if let Some(dir) = path.parent() {
        tabflow_engine::private::create_dir_all(dir)
            .map_err(|e| Error::failed(format!("cannot create {}: {e}", dir.display()), fix))?;
    }
    let tmp = path.with_extension("json.tmp");
    tabflow_engine::private::write(&tmp, site.to_json())
        .map_err(|e| Error::failed(format!("cannot write {}: {e}", tmp.display()), fix))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::failed(format!("cannot replace {}: {e}", path.display()), fix))?;
    Ok(())
}

/// The demo site as the previous session left it, or a fresh one.
pub fn load_demo(path: &Path, clock: &dyn Clock) -> Result<Site> {
    match std::fs::read_to_string(path) {
        Ok(text) => Site::from_json(&text).map_err(|e| {
            Error::failed(
                format!("the saved demo site {} is damaged: {e}", path.display()),
                "run `tabflow demo reset` to start from the original demo site",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(fresh_demo(clock)),
        Err(e) => Err(Error::failed(
            format!("cannot read {}: {e}", path.display()),
            "check the permissions of the tabflow data directory",
        )),
    }
}

/// The original demo site, as of the clock's now.
pub fn fresh_demo(clock: &dyn Clock) -> Site {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(clock.now());
    site
}

/// Writes the original demo site as the saved state.
pub fn reset_demo(data_dir: &Path, clock: &dyn Clock) -> Result<Site> {
    let site = fresh_demo(clock);
    save_demo(&demo_state_path(data_dir), &site)?;
    Ok(site)
}
