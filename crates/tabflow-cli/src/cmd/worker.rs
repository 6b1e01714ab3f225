//! `tabflow worker`: runs the store's schedules on time, starts scheduled plans once they are
//! approved, and purges staged deletes whose grace period ended — a loop over
//! `tabflow_app::App::work_once` until Ctrl-C, or one pass with `--once`. Several workers may
//! share one PostgreSQL store: each schedule is claimed in the store before it fires.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::connect::Connect;
use super::workflow::{StoreArgs, notify_delivery, open_app, whoami};
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
    let app = open_app(Some(&a.connect), &a.store, policy, delivery).await?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    // host:pid:start — unique per worker process (the pid alone repeats across machines).
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let owner = format!("{host}:{}:{started:x}", std::process::id());
    let mut options = tabflow_app::WorkerOptions::new(owner, format!("tabflow worker ({})", whoami()));
    options.purge = !a.no_purge;
    if !a.once {
        errln!("tabflow worker: running schedules every {} s (Ctrl-C stops)", a.interval);
    }
    let result: anyhow::Result<Code> = async {
        loop {
            let pass = app.work_once(&options).await.map_err(exit::app)?;
            say(&pass, a.json);
            if a.once {
                return Ok(Code::Ok);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(a.interval)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(Code::Ok),
            }
        }
    }
    .await;
    let closed = app.close().await.map_err(exit::app);
    let code = result?;
    closed?;
    Ok(code)
}

fn say(pass: &tabflow_app::WorkReport, as_json: bool) {
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
    for w in &pass.warnings {
        errln!("warning: {w}");
    }
}
