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

/// The note a front end shows when it uses the demo site a `tabflow serve` hosts.
pub fn shared_note(live: &LiveDemo) -> String {
    format!(
        "no server configured — using the demo site that `tabflow serve` (pid {}) hosts at {}; its changes show in the console",
        live.pid, live.url
    )
}

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
    demo: Option<Demo>,
}

/// Which demo site a session uses.
enum Demo {
    /// Started by this process from the saved state; saved again when the session ends.
    /// `hosted`: its URL is recorded in the data directory for other processes (removed at
    /// the end).
    Own { running: Running, path: PathBuf, hosted: Option<PathBuf> },
    /// Hosted by another live process (`tabflow serve`): used as it is, never saved here.
    Shared(LiveDemo),
}

/// The record of a demo site a long-running process hosts for every other process of the
/// same data directory (`<data_dir>/demo-site.live.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiveDemo {
    /// Where the demo site answers (the emulator's REST endpoint).
    pub url: String,
    /// The hosting process.
    pub pid: u32,
}

/// Where the record of a hosted demo site lives in a data directory.
pub fn live_demo_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-site.live.json")
}

/// Whether a process is alive (`None`: cannot tell on this system).
fn pid_alive(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new(&format!("/proc/{pid}")).exists())
}

/// The record of the demo site another live process hosts, if any: its process must be
/// alive. A record whose process is gone is stale: it is removed and ignored.
pub fn live_demo(data_dir: &Path) -> Option<LiveDemo> {
    let path = live_demo_path(data_dir);
    let text = std::fs::read_to_string(&path).ok()?;
    let Ok(live) = serde_json::from_str::<LiveDemo>(&text) else {
        let _ = std::fs::remove_file(&path);
        return None;
    };
    if live.pid == std::process::id() {
        return None;
    }
    if pid_alive(live.pid) == Some(false) {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(live)
}

/// The client of the demo site at `url` (the emulator's built-in access token).
async fn demo_client(url: &str, tuning: &Tuning) -> tabflow_client::Result<Client> {
    let mut config = Config::new(
        url.to_string(),
        "demo",
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    );
    tuning.apply(&mut config);
    Client::connect(config).await
}

impl Session {
    /// Connects to the server, or to the demo site: the one a live `tabflow serve` of the
    /// same data directory hosts (its pid alive and its URL answering), else one started
    /// here from `<data_dir>/demo-site.json`.
    pub async fn open(connection: &Connection, data_dir: &Path, clock: &dyn Clock) -> Result<Session> {
        Session::open_with(connection, data_dir, clock, false).await
    }

    /// [`Session::open`]; with `host`, a demo site started here is recorded in the data
    /// directory for other processes to use until this session ends.
    pub async fn open_with(connection: &Connection, data_dir: &Path, clock: &dyn Clock, host: bool) -> Result<Session> {
        Session::open_gated(connection, data_dir, clock, host, None).await
    }

    /// [`Session::open_with`]; a server's sign-in waits for `gate` (the site's limits shared
    /// by the workers of a store) as every later call does.
    pub async fn open_gated(
        connection: &Connection,
        data_dir: &Path,
        clock: &dyn Clock,
        host: bool,
        gate: Option<std::sync::Arc<dyn tabflow_client::Gate>>,
    ) -> Result<Session> {
        match connection {
            Connection::Server(config) => {
                let server = config.server.clone();
                let client =
                    Client::connect_gated(config.clone(), gate).await.map_err(|e| Error::client(e, &server))?;
                Ok(Session { client, demo: None })
            }
            Connection::Demo(tuning) => {
                if let Some(live) = live_demo(data_dir) {
                    // The URL must answer serverinfo and sign-in; a record that does not is ignored.
                    let probe = tokio::time::timeout(std::time::Duration::from_secs(5), demo_client(&live.url, tuning));
                    if let Ok(Ok(client)) = probe.await {
                        return Ok(Session { client, demo: Some(Demo::Shared(live)) });
                    }
                }
                let path = demo_state_path(data_dir);
                let site = load_demo(&path, clock)?;
                let running = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.map_err(|e| {
                    Error::failed(
                        format!("cannot start the built-in demo site: {e}"),
                        "is the loopback interface available?",
                    )
                })?;
                let client = demo_client(&running.url, tuning).await.map_err(|e| Error::client(e, &running.url))?;
                let hosted = if host {
                    let record = live_demo_path(data_dir);
                    let live = LiveDemo { url: running.url.clone(), pid: std::process::id() };
                    write_atomic(&record, &serde_json::to_string_pretty(&live).unwrap_or_default())?;
                    Some(record)
                } else {
                    None
                };
                Ok(Session { client, demo: Some(Demo::Own { running, path, hosted }) })
            }
        }
    }

    /// Whether this is the built-in demo site.
    pub fn is_demo(&self) -> bool {
        self.demo.is_some()
    }

    /// The live demo site this session uses, when another process hosts it.
    pub fn shared_demo(&self) -> Option<&LiveDemo> {
        match &self.demo {
            Some(Demo::Shared(l)) => Some(l),
            _ => None,
        }
    }

    /// The server as plans record it (the demo site's port changes every session).
    pub fn server_label(&self) -> String {
        if self.is_demo() { "builtin:demo".into() } else { self.client.config().server.clone() }
    }

    /// Signs out; for a demo site started here, saves its state for the next session (and
    /// removes its record if it was hosted). A shared demo site is left to its host.
    pub async fn finish(self) -> Result<()> {
        let _ = self.client.sign_out().await;
        if let Some(Demo::Own { running, path, hosted }) = self.demo {
            if let Some(record) = &hosted {
                // Only our own record: another process may have taken over meanwhile.
                let ours = std::fs::read_to_string(record)
                    .ok()
                    .and_then(|t| serde_json::from_str::<LiveDemo>(&t).ok())
                    .is_some_and(|l| l.pid == std::process::id());
                if ours {
                    let _ = std::fs::remove_file(record);
                }
            }
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
    write_atomic(path, &site.to_json())
}

/// Writes a file of the data directory (write then rename, so a crash never leaves half a file).
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let fix = "set TABFLOW_HOME to a writable directory";
    if let Some(dir) = path.parent() {
        tabflow_engine::private::create_dir_all(dir)
            .map_err(|e| Error::failed(format!("cannot create {}: {e}", dir.display()), fix))?;
    }
    let tmp = path.with_extension("json.tmp");
    tabflow_engine::private::write(&tmp, text)
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
