//! `tabflow worker`: runs the store's schedules on time, starts scheduled plans once they are
//! approved, and purges staged deletes whose grace period ended — a loop over
//! `tabflow_app::App::work_once` until Ctrl-C or SIGTERM, or one pass with `--once`. Several
//! workers may share one PostgreSQL store: each schedule is claimed in the store before it
//! fires, and the items of shared runs (`tabflow apply --shared`) are claimed in batches
//! under a lease with a fencing epoch (`tabflow_app::App::work_shared`). A stop finishes the
//! items in flight and hands the others back. `tabflow worker status` shows who holds what.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::connect::Connect;
use super::workflow::{StoreArgs, notify_delivery, open_app, open_app_at, whoami};
use crate::exit::{self, Code, usage};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerArgs {
    #[command(subcommand)]
    action: Option<WorkerAction>,
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
    /// Seconds an item claim of a shared run lasts without renewal (renewed every third);
    /// a killed worker's items are taken over after it (1 to 3600).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    lease: u64,
    /// Items of a shared run claimed at a time (1 to 1000; default twice the concurrency).
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
    /// Milliseconds between looks for shared runs' items when there were none (50 to 60000).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    poll: u64,
    /// Set the site's rate limit shared by every worker of this store: calls per second, all
    /// workers together (1 to 10000). Kept in the store until set again.
    #[arg(long, value_name = "N")]
    site_rate: Option<i64>,
    /// Set the site's concurrency shared by every worker of this store: calls in flight, all
    /// workers together (1 to 256; default 8 with --site-rate).
    #[arg(long, value_name = "N")]
    site_concurrency: Option<i64>,
    /// Run as if it were this time (RFC 3339, e.g. 2026-12-07T08:00:00Z): for tests of what
    /// fires when. The worker's clock stands still at it.
    #[arg(long, hide = true, value_name = "TIME")]
    now: Option<String>,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Subcommand)]
enum WorkerAction {
    /// What the workers are doing: each shared run's items pending, claimed (by whom) and
    /// done, and each site's shared limits (slots held, a 429 pause), read from the store.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print it as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

async fn status(a: StatusArgs) -> anyhow::Result<Code> {
    let policy = a.store.policy()?;
    let app = open_app(None, &a.store, policy, tabflow_app::Delivery::default()).await?;
    let st = app.worker_status().await.map_err(exit::app);
    let closed = app.close().await.map_err(exit::app);
    let st = st?;
    closed?;
    if a.json {
        outln!("{st}");
        return Ok(Code::Ok);
    }
    let runs = st["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        outln!("No shared run is running in {}.", st["store"].as_str().unwrap_or(""));
    }
    for r in runs {
        outln!(
            "{}  {}: {} pending, {} claimed, {} done",
            r["run_id"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or("apply"),
            r["pending"],
            r["claimed"],
            r["done"]
        );
        if let Some(w) = r["workers"].as_object() {
            for (owner, n) in w {
                outln!("  {owner}: {n} claimed");
            }
        }
    }
    for site in st["sites"].as_array().cloned().unwrap_or_default() {
        outln!(
            "{}  at most {} calls a second and {} in flight ({} now){}",
            site["site"].as_str().unwrap_or(""),
            site["per_second"],
            site["in_flight"],
            site["slots_held"],
            site["paused_until"].as_str().map(|t| format!(", paused until {t} (429)")).unwrap_or_default()
        );
    }
    Ok(Code::Ok)
}

/// One line of the worker's log: a JSON object with `event`, `worker` and `at` (`--json`),
/// else `text` on stderr.
fn log(as_json: bool, worker: &str, event: &str, fields: serde_json::Value, text: &str) {
    if as_json {
        let mut v = json!({"event": event, "worker": worker, "at": chrono::Utc::now().to_rfc3339()});
        if let (Some(o), Some(f)) = (v.as_object_mut(), fields.as_object()) {
            o.extend(f.clone());
        }
        outln!("{v}");
    } else if !text.is_empty() {
        errln!("tabflow worker: {text}");
    }
}

fn say_shared(p: &tabflow_app::SharedPass, as_json: bool, worker: &str) {
    let fields = serde_json::to_value(p).unwrap_or_default();
    let mut text = format!(
        "run {}: {} item(s) done ({} written), {} lost to another worker, {} handed back",
        p.run_id, p.done, p.written, p.lost, p.released
    );
    if let Some(r) = &p.finished {
        text.push_str(&format!("; finished the run: {}", r.status.as_str()));
    }
    for e in &p.errors {
        text.push_str(&format!("\n  error: {e}"));
    }
    log(as_json, worker, "shared-pass", fields, &text);
}

pub async fn run(a: WorkerArgs) -> anyhow::Result<Code> {
    if let Some(WorkerAction::Status(s)) = a.action {
        return status(s).await;
    }
    if !(1..=3600).contains(&a.lease) {
        return Err(usage(format!("--lease {} is out of range (1 to 3600 seconds)", a.lease), "e.g. --lease 60"));
    }
    if !(50..=60000).contains(&a.poll) {
        return Err(usage(format!("--poll {} is out of range (50 to 60000 ms)", a.poll), "e.g. --poll 1000"));
    }
    if let Some(b) = a.batch
        && !(1..=1000).contains(&b)
    {
        return Err(usage(format!("--batch {b} is out of range (1 to 1000 items)"), "e.g. --batch 16"));
    }
    if let Some(r) = a.site_rate
        && !(1..=10000).contains(&r)
    {
        return Err(usage(
            format!("--site-rate {r} is out of range (1 to 10000 calls a second)"),
            "e.g. --site-rate 20",
        ));
    }
    if let Some(c) = a.site_concurrency
        && !(1..=256).contains(&c)
    {
        return Err(usage(format!("--site-concurrency {c} is out of range (1 to 256)"), "e.g. --site-concurrency 8"));
    }
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
    let me = options.owner.clone();
    let lease = Duration::from_secs(a.lease);
    let batch = a.batch.unwrap_or(16);
    // From the first call on (serverInfo, the sign-in) within the site's shared limits.
    app.share_site_limits_as(&me);
    if a.site_rate.is_some() || a.site_concurrency.is_some() {
        let (rate, conc) = (a.site_rate.unwrap_or(10000), a.site_concurrency.unwrap_or(8));
        let site = app.set_shared_site_limit(rate, conc).await.map_err(exit::app)?;
        log(
            a.json,
            &me,
            "site-limit-set",
            json!({"site": site, "per_second": rate, "in_flight": conc}),
            &format!("{site}: at most {rate} calls a second and {conc} in flight, all workers together"),
        );
    }
    let cancel = tabflow_app::Cancel::new();
    if a.once {
        let pass = app.work_once(&options).await.map_err(exit::app);
        if let Ok(p) = &pass {
            say(p, a.json);
        }
        let shared = match &pass {
            Ok(_) => shared_pass(&app, &options, lease, batch, &cancel, a.json).await,
            Err(_) => Ok(false),
        };
        let closed = app.close().await.map_err(exit::app);
        pass?;
        shared?;
        closed?;
        return Ok(Code::Ok);
    }
    log(
        a.json,
        &me,
        "worker-started",
        json!({"interval_s": a.interval, "lease_s": a.lease, "batch": batch, "pid": std::process::id()}),
        &format!(
            "running schedules every {} s and shared runs' items as they come (Ctrl-C or SIGTERM stops)",
            a.interval
        ),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let as_json = a.json;
    let work = app.work_loop(&options, Duration::from_secs(a.interval), stopped.clone(), |p| say(p, as_json));
    let shared = async {
        let mut stopped = stopped.clone();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let busy = shared_pass(&app, &options, lease, batch, &cancel, as_json).await.unwrap_or(false);
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(a.poll)) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
    };
    let signal = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let sigterm = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { errln!("warning: cannot wait for Ctrl-C; stopping"); },
            _ = sigterm => {}
        }
        log(
            as_json,
            &me,
            "worker-stopping",
            json!({}),
            "stopping: finishing the items in flight, handing the others back",
        );
        cancel.cancel();
        let _ = stop.send(true);
    };
    tokio::join!(work, shared, signal);
    app.close().await.map_err(exit::app)?;
    log(as_json, &me, "worker-stopped", json!({}), "stopped");
    Ok(Code::Ok)
}

/// One pass over the shared runs; answers whether there was work (look again at once).
async fn shared_pass(
    app: &tabflow_app::App,
    options: &tabflow_app::WorkerOptions,
    lease: Duration,
    batch: usize,
    cancel: &tabflow_app::Cancel,
    as_json: bool,
) -> anyhow::Result<bool> {
    // The site's shared limits, when set (by this worker or another), before any call.
    static GATED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if GATED.get().is_none() && app.use_shared_site_limit(&options.owner).await.map_err(exit::app)? {
        let _ = GATED.set(());
    }
    let passes = match app.work_shared(&options.owner, &options.actor, lease, batch, cancel.clone()).await {
        Ok(p) => p,
        Err(e) => {
            log(
                as_json,
                &options.owner,
                "shared-error",
                json!({"error": e.message, "hint": e.hint}),
                &format!("shared runs: {} ({})", e.message, e.hint),
            );
            return Ok(false);
        }
    };
    let busy = passes.iter().any(|p| p.batches > 0 || p.finished.is_some());
    for p in passes.iter().filter(|p| p.batches > 0 || p.finished.is_some() || !p.errors.is_empty()) {
        say_shared(p, as_json, &options.owner);
    }
    Ok(busy)
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
