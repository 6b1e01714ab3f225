//! `tabflow serve [--listen ADDR]`: the HTTP API (`tabflow-serve`) over the application
//! service, with the store, policy and site of the usual flags. Listens on 127.0.0.1:8080 by
//! default; an address other hosts can reach is refused unless `--insecure-listen` is given
//! (there is no TLS of its own). With no server configured it hosts the built-in demo site
//! for every process of the data directory (its URL and pid in `demo-site.live.json`: CLI
//! commands and `tabflow mcp` started meanwhile use it). Ctrl-C stops it, removes the record
//! and saves the demo site.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;

use super::connect::Connect;
use super::workflow::{StoreArgs, app_options, notify_delivery};
use crate::exit::{self, Code, usage};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Listen on a non-loopback address without TLS (tokens then cross the network in clear text).
    #[arg(long)]
    insecure_listen: bool,
    /// Do not run the store's schedules (nor retry failed notifications) in this process;
    /// run `tabflow worker` for them instead.
    #[arg(long)]
    no_worker: bool,
    /// Seconds between the worker's passes (1 to 3600).
    #[arg(long, default_value_t = 30, value_name = "S")]
    worker_interval: u64,
    /// Run the worker as if it were this time (RFC 3339): for tests of what fires when.
    #[arg(long, hide = true, value_name = "TIME")]
    now: Option<String>,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(a: ServeArgs) -> anyhow::Result<Code> {
    let addr: SocketAddr = a.listen.parse().map_err(|_| {
        usage(
            format!("--listen '{}' is not an address", a.listen),
            "write HOST:PORT with an IP address, e.g. 127.0.0.1:8080",
        )
    })?;
    tabflow_serve::check_listen(&addr, a.insecure_listen).map_err(|e| usage(e.message, e.hint))?;
    if !(1..=3600).contains(&a.worker_interval) {
        return Err(usage(
            format!("--worker-interval {} is out of range (1 to 3600 seconds)", a.worker_interval),
            "e.g. --worker-interval 30",
        ));
    }
    let policy = a.store.policy()?;
    let delivery = notify_delivery()?;
    let mcp = tabflow_mcp::Limits::from_settings(|k| std::env::var(k).ok()).map_err(|(m, h)| usage(m, h))?;
    let hooks = tableau_hooks(&a.connect)?;
    let clock: Arc<dyn tabflow_app::Clock> = match &a.now {
        None => Arc::new(tabflow_app::SystemClock),
        Some(t) => {
            let at = chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    usage(format!("--now '{t}' is not an RFC 3339 time ({e})"), "e.g. --now 2026-12-07T08:00:00Z")
                })?
                .with_timezone(&chrono::Utc);
            Arc::new(tabflow_app::FixedClock::new(at))
        }
    };
    let hook_events = hooks.as_ref().map(|h| h.rules.len());
    let mut options = app_options(Some(&a.connect), &a.store, policy, delivery, clock, hooks)?;
    // With no server configured, this process hosts the demo site for every other process of
    // the data directory (CLI commands, `tabflow mcp`): connected now, so its URL and pid are
    // recorded before the first request; removed (and the site saved) when it stops.
    options.host_demo = true;
    let demo = matches!(options.connection, tabflow_app::Connection::Demo(_));
    let app = Arc::new(tabflow_app::App::open(options).await.map_err(exit::app)?);
    if demo && let Err(e) = app.connect().await {
        if let Ok(app) = Arc::try_unwrap(app) {
            let _ = app.close().await;
        }
        return Err(exit::app(e));
    }
    let running = tabflow_serve::start_with(app.clone(), addr, mcp).await.map_err(|e| {
        exit::fail(format!("cannot listen on {addr}: {e}"), "pick another port with --listen 127.0.0.1:PORT")
    })?;
    outln!(
        "tabflow serve: listening on {} (API under /api/v1, OpenAPI at /api/openapi.json, MCP at /mcp); Ctrl-C stops it",
        running.url
    );
    if let Some(n) = hook_events {
        outln!("tabflow serve: Tableau webhooks at /hooks/tableau/<secret> ({n} event(s) mapped to templates)");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = async {
        if a.no_worker {
            return;
        }
        outln!("tabflow serve: running schedules every {} s (--no-worker turns this off)", a.worker_interval);
        let options = super::worker::worker_options("tabflow serve");
        app.work_loop(&options, std::time::Duration::from_secs(a.worker_interval), stopped, |p| {
            super::worker::say(p, false)
        })
        .await;
        outln!("tabflow serve: worker stopped");
    };
    let signal = async {
        if tokio::signal::ctrl_c().await.is_err() {
            errln!("warning: cannot wait for Ctrl-C; stopping");
        }
        // The worker finishes the pass under way (a claimed schedule is recorded and
        // released); the server stops accepting requests.
        let _ = stop.send(true);
        running.stop().await;
    };
    tokio::join!(worker, signal);
    // The server's last tasks (a run's follower, a stream's poller) let go of the service
    // shortly after it stops; wait for them a little before giving up on saving the demo site.
    close_when_free(app).await?;
    Ok(Code::Ok)
}

/// `[hooks.tableau]` of the config file (`--config`, else `<data dir>/config.toml` when it
/// exists); its secret joins the redaction list of everything printed.
fn tableau_hooks(connect: &Connect) -> anyhow::Result<Option<tabflow_app::TableauHooks>> {
    let path = connect.config.clone().unwrap_or_else(|| super::connect::data_dir().join("config.toml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && connect.config.is_none() => return Ok(None),
        Err(e) => {
            return Err(usage(
                format!("cannot read the config file {}: {e}", path.display()),
                "pass --config FILE with the [hooks.tableau] table, or leave --config out",
            ));
        }
    };
    let hooks = tabflow_app::TableauHooks::from_config(&text, |k| std::env::var(k).ok()).map_err(exit::app)?;
    if let Some(h) = &hooks {
        crate::term::add_secret(h.secret());
    }
    Ok(hooks)
}

/// Closes a service that front-end tasks share (saving the demo site's state) once the last
/// of them lets go of it: a run's follower or a stream's poller ends shortly after the server
/// or the MCP session stops. Gives up after 10 s with a warning rather than wait forever.
pub(crate) async fn close_when_free(mut app: Arc<tabflow_app::App>) -> anyhow::Result<()> {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Arc::try_unwrap(app) {
            Ok(a) => {
                a.close().await.map_err(exit::app)?;
                return Ok(());
            }
            Err(a) if std::time::Instant::now() < give_up => {
                app = a;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(_) => {
                errln!("warning: runs were still going on; the demo site's state was not saved");
                return Ok(());
            }
        }
    }
}
