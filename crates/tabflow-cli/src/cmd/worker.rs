//! `tabflow worker`: runs the store's schedules on time, starts scheduled plans once they are
//! approved, and purges staged deletes whose grace period ended — a loop over
//! `tabflow_app::App::work_once` until Ctrl-C, or one pass with `--once`. Several workers may
//! share one PostgreSQL store: each schedule is claimed in the store before it fires.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::connect::Connect;
use super::workflow::{StoreArgs, notify_delivery, open_app, open_app_at, whoami};
use crate::exit::{self, Code, usage};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// One pass: run what is due now, then exit.
    #[arg(long)]
    once: bool,
    /// Seconds between passes (1 to 3600).
    #[arg(long, default_value_t = 30)]
    interval: u64,
    /// Do not purge staged deletes whose grace period ended.
    #[arg(long)]
    no_purge: bool,
    /// Print each pass as JSON (one object per line).
    #[arg(long)]
    json: bool,
    /// Run as if it were this time (RFC 3339, e.g. 2026-12-07T08:00:00Z): for tests of what
    /// fires when. The worker's clock stands still at it.
    #[arg(long, hide = true, value_name = "TIME")]
    now: Option<String>,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(a: WorkerArgs) -> anyhow::Result<Code> {
    if !(1..=3600).contains(&a.interval) {
        return Err(usage(
            format!("--interval {} is out of range (1 to 3600 seconds)", a.interval),
            "e.g. --interval 30",
        ));
    }
    let policy = a.store.policy()?;
    let delivery = notify_delivery()?;
    let app = match &a.now {
        None => open_app(Some(&a.connect), &a.store, policy, delivery).await?,
        Some(t) => {
            let at = chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    usage(format!("--now '{t}' is not an RFC 3339 time ({e})"), "e.g. --now 2026-12-07T08:00:00Z")
                })?
                .with_timezone(&chrono::Utc);
            let clock = std::sync::Arc::new(tabflow_app::FixedClock::new(at));
            open_app_at(Some(&a.connect), &a.store, policy, delivery, clock).await?
        }
    };
    let mut options = worker_options("tabflow worker");
    options.purge = !a.no_purge;
    if a.once {
        let pass = app.work_once(&options).await.map_err(exit::app);
        if let Ok(p) = &pass {
            say(p, a.json);
        }
        let closed = app.close().await.map_err(exit::app);
        pass?;
        closed?;
        return Ok(Code::Ok);
    }
    errln!("tabflow worker: running schedules every {} s (Ctrl-C stops)", a.interval);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let as_json = a.json;
    let work = app.work_loop(&options, Duration::from_secs(a.interval), stopped, |p| say(p, as_json));
    let signal = async {
        if tokio::signal::ctrl_c().await.is_err() {
            errln!("warning: cannot wait for Ctrl-C; stopping");
        }
        errln!("tabflow worker: stopping after the pass under way");
        let _ = stop.send(true);
    };
    tokio::join!(work, signal);
    app.close().await.map_err(exit::app)?;
    Ok(Code::Ok)
}

/// A worker's identity (`host:pid:start`, unique per process: the pid alone repeats across
/// machines) and actor (`<who> (<user>)`), for `tabflow worker` and the worker inside
/// `tabflow serve`: both claim schedules the same way.
pub(crate) fn worker_options(who: &str) -> tabflow_app::WorkerOptions {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let owner = format!("{host}:{}:{started:x}", std::process::id());
    tabflow_app::WorkerOptions::new(owner, format!("{who} ({})", whoami()))
}

pub(crate) fn say(pass: &tabflow_app::WorkReport, as_json: bool) {
    if as_json {
        outln!("{}", json!(pass));
        return;
    }
    for f in &pass.fired {
        let what = f.run_id.as_deref().or(f.plan_id.as_deref()).unwrap_or("-");
        outln!(
            "{}  {}  {}{}",
            f.schedule_id,
            f.outcome,
            what,
            if f.detail.is_empty() { String::new() } else { format!("  {}", f.detail) }
        );
    }
    if !pass.purged.is_empty() {
        outln!("purged {} staged delete(s) whose grace period ended", pass.purged.len());
    }
    let o = &pass.outbox;
    if o.sent + o.failed + o.dry > 0 {
        outln!(
            "retried {} failed notification(s): {} sent, {} failed again",
            o.sent + o.failed + o.dry,
            o.sent,
            o.failed
        );
    }
    for w in &pass.warnings {
        errln!("warning: {w}");
    }
}
