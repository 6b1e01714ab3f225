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
