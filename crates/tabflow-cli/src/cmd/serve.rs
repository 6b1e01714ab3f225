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
    let policy = a.store.policy()?;
    let delivery = notify_delivery()?;
    let mcp = tabflow_mcp::Limits::from_settings(|k| std::env::var(k).ok()).map_err(|(m, h)| usage(m, h))?;
    let mut options = app_options(Some(&a.connect), &a.store, policy, delivery, Arc::new(tabflow_app::SystemClock))?;
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
    if tokio::signal::ctrl_c().await.is_err() {
        errln!("warning: cannot wait for Ctrl-C; stopping");
    }
    running.stop().await;
    // The server's last tasks (a run's follower, a stream's poller) let go of the service
    // shortly after it stops; wait for them a little before giving up on saving the demo site.
    close_when_free(app).await?;
    Ok(Code::Ok)
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
