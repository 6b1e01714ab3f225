//! `tabflow bench emulator|snapshot`: the speed and memory figures in BENCHMARKS.md.
//! Benchmarks report numbers; they never pass or fail on them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use tabflow_client::{Client, Config, Credentials, ExposeSecret, Secret};
use tabflow_emulator::{Emulator, Options};
use tabflow_site::generate;

use crate::exit::{Code, fail};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generation time, serving memory, and GET-workbook-by-id throughput of the emulator.
    Emulator(EmulatorBench),
    /// Snapshot a large emulated site through the client: calls, wall time, peak memory.
    Snapshot(SnapshotBench),
    /// The executor: apply N workbook moves at injected latency, with and without the journal.
    Apply(ApplyBench),
    /// Rule-based parse + plan (+ validation) of typical requests against an in-memory demo
    /// site: the planner's latency without site reads (budget 20 ms per plan).
    Plan(PlanBench),
    /// `tabflow serve` under N concurrent API clients planning, polling and streaming run
    /// events: requests, errors, p50/p99 latency per kind.
    Serve(super::bench_serve::ServeBench),
}

#[derive(Debug, Args)]
pub struct ApplyBench {
    /// Workbooks to move (the generated site has exactly this many).
    #[arg(long, default_value_t = 10_000)]
    pub moves: usize,
    /// Injected latency per call, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Executor and client concurrency.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Also run the same moves with the journal switched off, to measure its overhead.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub baseline: bool,
    /// Pairs of runs (with and without the journal, alternating); medians are reported, so
    /// a shared machine's noise hits both sides alike.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Journal into this store instead of a fresh SQLite file (e.g. a postgres:// URL).
    #[arg(long)]
    pub store: Option<String>,
    /// Run the moves as a shared run (`apply --shared`) executed by this many workers in this
    /// process, each with its own client (own sign-in, `--concurrency` calls in flight) and
    /// its own connections to the store, then roll it back; needs `--store postgres://…`.
    /// 0: the single-process apply (with and without the journal).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// With `--workers`: items each worker claims at a time (as `tabflow worker --batch`).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
}

#[derive(Debug, Args)]
pub struct PlanBench {
    /// Plans per request.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Workbooks in the generated site (0 = the demo site). A generated site also plans the
    /// requests of issue #15: the Finance cleanup, offboarding the user who owns the most
    /// content, and a site-wide audit of tagged content.
    #[arg(long, default_value_t = 0)]
    scale: usize,
    /// Write each request's plan as JSON into this directory (plan id and fingerprint blanked,
    /// site times not shifted to now), to compare the plans of two builds.
    #[arg(long, value_name = "DIR")]
    dump: Option<std::path::PathBuf>,
    /// Plan over a live emulated site (`tabflow emulator serve --scale N`, a separate
    /// process) through the API, as `tabflow plan` does: wall time, peak RSS, API calls and
    /// the minimum calls of the Finance cleanup, an offboarding and an audit of tagged content.
    #[arg(long, requires = "scale")]
    live: bool,
    /// With --live: injected latency per API call, in milliseconds.
    #[arg(long, default_value_t = 0, requires = "live")]
    latency_ms: u64,
    /// With --live: read the whole site (every item's permissions), as before issue #15.
    #[arg(long, requires = "live")]
    full_reads: bool,
    /// With --live: plan each request once to fill the site cache, then measure a plan that
    /// uses it (`--site-cache`).
    #[arg(long, requires = "live", conflicts_with = "full_reads")]
    site_cache: bool,
    /// With --live: plan only these requests (default all three).
    #[arg(long, value_delimiter = ',', value_parser = ["finance", "offboard", "audit"], requires = "live")]
    only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EmulatorBench {
    /// Workbooks in the generated site.
    #[arg(long, default_value_t = 100_000)]
    scale: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

#[derive(Debug, Args)]
pub struct SnapshotBench {
    #[arg(long, default_value_t = 100_000)]
    scale: usize,
    /// Injected latency per call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Client concurrency, reads and writes (default: the client's, 16 reads and 8 writes).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Write the snapshot here.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Emulator(b) => emulator(b).await,
        Command::Snapshot(b) => snapshot(b).await,
        Command::Apply(b) => super::bench_apply::run(b).await,
        Command::Plan(b) if b.live => {
            super::bench_live::run(super::bench_live::Live {
                scale: b.scale,
                latency_ms: b.latency_ms,
                full: b.full_reads,
                only: b.only,
                cached: b.site_cache,
            })
            .await
        }
        Command::Plan(b) => plan_bench(b),
        Command::Serve(b) => super::bench_serve::run(b).await,
    }
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn current_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn emulator(b: EmulatorBench) -> anyhow::Result<Code> {
    super::emulator::check_scale(b.scale)?;
    let t = Instant::now();
    let mut site = generate::generate(&generate::Options { scale: b.scale, seed: 1 });
    let gen_s = t.elapsed().as_secs_f64();
    site.shift_time_to(chrono::Utc::now());
    let ids: Vec<String> = site.workbooks.iter().map(|w| w.id.clone()).collect();
    outln!(
        "generate --scale {}: {:.2} s ({} workbooks, {} users, {} views)",
        b.scale,
        gen_s,
        site.workbooks.len(),
        site.users.len(),
        site.workbooks.iter().map(|w| w.views.len()).sum::<usize>()
    );
    let running = Emulator::new(Options::new(site))
        .spawn(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| fail(format!("cannot start the emulator: {e}"), "is the loopback interface available?"))?;
    let client = Client::connect(Config::new(
        running.url.clone(),
        "demo",
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    ))
    .await
    .map_err(|e| fail(e.to_string(), "the emulator did not accept the default token"))?;
    let session = client.session().await;
    outln!(
        "serving: RSS {:.0} MiB (peak {:.0} MiB) with the site loaded",
        current_rss_mib().unwrap_or(0.0),
        peak_rss_mib().unwrap_or(0.0)
    );

    // Load: plain HTTP/1.1 keep-alive connections on OS threads, so the load generator costs
    // as little CPU as possible next to the server on the same two cores.
    let addr = running.addr;
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(ids);
    let mut threads = Vec::new();
    for c in 0..b.connections {
        let (done, count, errors, ids) = (done.clone(), count.clone(), errors.clone(), ids.clone());
        let token = session.token.expose_secret().to_string();
        let prefix = format!("/api/{}/sites/{}/workbooks/", session.api_version, session.site_id);
        threads.push(std::thread::spawn(move || {
            let Ok(mut s) = TcpStream::connect(addr) else {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            };
            s.set_nodelay(true).ok();
            let mut buf = vec![0u8; 64 * 1024];
            let mut i = c * 7919;
            while !done.load(Ordering::Relaxed) {
                i = (i + 104_729) % ids.len();
                let req = format!("GET {prefix}{} HTTP/1.1\r\nHost: bench\r\nX-Tableau-Auth: {token}\r\n\r\n", ids[i]);
                if s.write_all(req.as_bytes()).is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                match read_response(&mut s, &mut buf) {
                    Some(200) => count.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(b.seconds)).await;
    done.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for t in threads {
        let _ = t.join();
    }
    let n = count.load(Ordering::Relaxed);
    outln!(
        "GET workbook by id: {:.0} requests/s ({} in {:.1} s, {} connections, {} errors)",
        n as f64 / elapsed,
        n,
        elapsed,
        b.connections,
        errors.load(Ordering::Relaxed)
    );
    outln!("peak RSS of the process (emulator + site + load generator): {:.0} MiB", peak_rss_mib().unwrap_or(0.0));
    running.stop().await;
    Ok(Code::Ok)
}

/// Reads one HTTP/1.1 response with a Content-Length body; answers its status.
fn read_response(s: &mut TcpStream, buf: &mut [u8]) -> Option<u16> {
    let mut have = 0usize;
    loop {
        let n = s.read(&mut buf[have..]).ok()?;
        if n == 0 {
            return None;
        }
        have += n;
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).ok()?;
            let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body_have = have - (end + 4);
            while body_have < len {
                let n = s.read(&mut buf[..]).ok()?;
                if n == 0 {
                    return None;
                }
                body_have += n;
            }
            return Some(status);
        }
        if have == buf.len() {
            return None;
        }
    }
}

async fn snapshot(b: SnapshotBench) -> anyhow::Result<Code> {
    super::emulator::check_scale(b.scale)?;
    let mut site = generate::generate(&generate::Options { scale: b.scale, seed: 1 });
    site.shift_time_to(chrono::Utc::now());
    let mut options = Options::new(site);
    if b.latency_ms > 0 {
        options.faults.latency_ms = Some(b.latency_ms);
    }
    let rss_before = current_rss_mib().unwrap_or(0.0);
    let running = Emulator::new(options)
        .spawn(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| fail(format!("cannot start the emulator: {e}"), "is the loopback interface available?"))?;
    let mut cfg = Config::new(
        running.url.clone(),
        "demo",
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    );
    if let Some(n) = b.concurrency {
        cfg.concurrency = n.max(1);
        cfg.read_concurrency = n.max(1);
    }
    let reads = cfg.read_concurrency;
    let client =
        Client::connect(cfg).await.map_err(|e| fail(e.to_string(), "the emulator did not accept the default token"))?;
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", running.url)).send().await.ok();
    let t = Instant::now();
    // Streamed, as `tabflow site snapshot` does it.
    let out: Box<dyn std::io::Write> = match &b.output {
        Some(p) => Box::new(std::fs::File::create(p)?),
        None => Box::new(std::io::sink()),
    };
    let snap = tabflow_client::snapshot::write(&client, &Default::default(), out)
        .await
        .map_err(|e| fail(e.to_string(), "see the emulator's output"))?;
    let wall = t.elapsed().as_secs_f64();
    let stats = running.emulator.stats();
    outln!(
        "snapshot --scale {} at {} ms latency, read concurrency {}: {:.1} s, {} API calls, {} workbooks, {} permission rules, peak RSS {:.0} MiB (process incl. emulator; {:.0} MiB before)",
        b.scale,
        b.latency_ms,
        reads,
        wall,
        stats["requests"],
        snap.workbooks,
        snap.permission_rules,
        peak_rss_mib().unwrap_or(0.0),
        rss_before
    );
    outln!("calls by route: {}", serde_json::to_string(&stats["by_route"]).unwrap_or_default());
    running.stop().await;
    Ok(Code::Ok)
}

/// Requests of every kind the planner handles, including questions and compound requests.
const PLAN_REQUESTS: &[&str] = &[
    "Clean up the Finance project - archive old workbooks and consolidate datasources",
    "Archive Finance workbooks not accessed in 90+ days, then tell the project owners",
    "Sarah Lee is leaving; give her workbooks to Tom Baker and remove her access",
    "Migrate John's content when he leaves the Marketing team",
    "Audit who can access anything tagged confidential or sensitive in Finance, and schedule a weekly review",
    "Delete workbooks in the Sandbox project that haven't been viewed in a year",
    "Archive all unused workbooks from Q2, update permissions for remaining content, and notify project owners",
    "How many workbooks are in the Finance project?",
    "Which workbooks haven't been viewed in the last 30 days?",
    "top 10 most viewed workbooks in Marketing",
    "which workbooks use Finance GL?",
    "workbooks per project",
];

/// CPU time this thread has used, in milliseconds (`/proc/thread-self/schedstat`, in
/// nanoseconds): on a shared machine, what a plan costs, apart from waiting for a core.
fn thread_cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e6)
}

/// The requests of issue #15 on a generated site (with `--scale`): the Finance cleanup, the
/// offboarding of the user who owns the most content, a site-wide audit of tagged content.
fn scale_requests(site: &tabflow_site::Site) -> Vec<String> {
    let mut owned: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let owners = site.workbooks.iter().map(|w| w.owner_id.as_str());
    let owners = owners.chain(site.datasources.iter().map(|d| d.owner_id.as_str()));
    for o in owners.chain(site.flows.iter().map(|f| f.owner_id.as_str())) {
        *owned.entry(o).or_default() += 1;
    }
    let mut out = vec!["Clean up the Finance project - archive workbooks not accessed in 90 days".to_string()];
    // The busiest owner (ties: the first in site order), to a licensed administrator.
    let top = site
        .users
        .iter()
        .filter(|u| !u.site_role.starts_with("SiteAdministrator"))
        .max_by_key(|u| (owned.get(u.id.as_str()).copied().unwrap_or(0), std::cmp::Reverse(u.id.clone())));
    if let Some(u) = top {
        out.push(format!("Offboard {} and give their content to admin, and remove their access", u.name));
    }
    out.push("Audit permissions for sensitive workbooks and create access report".to_string());
    out
}

fn plan_bench(b: PlanBench) -> anyhow::Result<Code> {
    use tabflow_engine::plan::SiteRef;
    super::emulator::check_scale(b.scale)?;
    let mut site = if b.scale == 0 {
        generate::demo()
    } else {
        generate::generate(&generate::Options { scale: b.scale, seed: 1 })
    };
    if b.dump.is_none() {
        site.shift_time_to(chrono::Utc::now());
    }
    let site_rss = current_rss_mib().unwrap_or(0.0);
    // Peak RSS from here on: Linux resets VmHWM to the current RSS on "5" (proc(5), clear_refs),
    // so the peak below is what planning needs on top of the generated site.
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let policy = tabflow_engine::Policy::default();
    let site_ref =
        SiteRef { server: "bench".into(), content_url: site.site.content_url.clone(), id: site.site.id.clone() };
    let planner = tabflow_workflows::Planner {
        site: &site,
        site_ref,
        policy: &policy,
        signed_in: "admin".into(),
        now: site.now,
        answers: Default::default(),
        usage_source: "in-memory site".into(),
        learned: Default::default(),
        license_notices: vec![],
    };
    // Sealing is part of the budget: with a key like a store's.
    let key = tabflow_engine::plan::PlanKey::new([0; 32]);
    // Facts are read once per site read in `tabflow plan`, so they are part of the budget too.
    let today = site.now.date_naive();
    let mut requests: Vec<String> = PLAN_REQUESTS.iter().map(|r| r.to_string()).collect();
    if b.scale > 0 {
        requests.extend(scale_requests(&site));
    }
    if let Some(dir) = &b.dump {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display()), "choose a writable directory"))?;
    }
    let mut all: Vec<f64> = vec![];
    outln!(
        "rule-based parse + plan + validate, {} workbooks, {} iterations per request (site reads excluded)",
        site.workbooks.len(),
        b.iterations
    );
    outln!("wall time per plan (mean, p95, max) | mean CPU time per plan and per phase, ms | items planned");
    outln!(
        "{:>9} {:>9} {:>9} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>6}  request",
        "mean ms",
        "p95 ms",
        "max ms",
        "cpu",
        "parse",
        "plan",
        "facts",
        "validate",
        "items"
    );
    let mut cpu_all = 0f64;
    for (n, request) in requests.iter().enumerate() {
        let mut times = vec![];
        // Mean CPU ms per phase: parse, plan, facts, validate.
        let mut phases = [0f64; 4];
        let mut last = None;
        let cpu = || thread_cpu_ms().unwrap_or(0.0);
        for _ in 0..b.iterations.max(1) {
            let t = Instant::now();
            let c0 = cpu();
            let parsed = tabflow_nl::parse(request, today);
            let c1 = cpu();
            let draft = tabflow_workflows::plan(request, parsed.intents, &planner);
            let c2 = cpu();
            let facts = tabflow_engine::Facts::from_site(&site, "admin");
            let c3 = cpu();
            let validated = tabflow_engine::validate(draft, &facts, &policy, &key);
            std::hint::black_box(&validated);
            let c4 = cpu();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            for (p, d) in phases.iter_mut().zip([c1 - c0, c2 - c1, c3 - c2, c4 - c3]) {
                *p += d / b.iterations.max(1) as f64;
            }
            last = Some(validated);
        }
        let cpu_mean: f64 = phases.iter().sum();
        cpu_all += cpu_mean;
        let plan = match last {
            Some(Ok(v)) => Some(v.into_plan()),
            Some(Err(p)) => Some(*p),
            None => None,
        };
        let items: usize = plan.as_ref().map(|p| p.steps.iter().map(|s| s.items.len()).sum()).unwrap_or(0);
        if let (Some(dir), Some(mut plan)) = (&b.dump, plan) {
            plan.id = String::new();
            plan.fingerprint = String::new();
            let path = dir.join(format!("{n:02}.json"));
            std::fs::write(&path, plan.to_json())
                .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "choose a writable directory"))?;
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let p95 = times[((times.len() as f64 * 0.95) as usize).min(times.len() - 1)];
        outln!(
            "{mean:>9.2} {p95:>9.2} {:>9.2} | {cpu_mean:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} | {items:>6}  {request}",
            times[times.len() - 1],
            phases[0],
            phases[1],
            phases[2],
            phases[3]
        );
        all.extend(times);
    }
    all.sort_by(f64::total_cmp);
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let p95 = all[((all.len() as f64 * 0.95) as usize).min(all.len() - 1)];
    let max = all[all.len() - 1];
    outln!(
        "all: mean {mean:.2} ms, p95 {p95:.2} ms, max {max:.2} ms per plan (budget 20 ms: {}); mean CPU time {:.2} ms per plan",
        if p95 <= 20.0 { "within" } else { "OVER" },
        cpu_all / requests.len() as f64
    );
    let peak = peak_rss_mib().unwrap_or(0.0);
    if peak_reset {
        outln!(
            "memory: RSS {site_rss:.0} MiB with the site generated; peak while planning {peak:.0} MiB, {:.0} MiB above the site",
            peak - site_rss
        );
    } else {
        outln!("memory: RSS {site_rss:.0} MiB with the site generated, peak {peak:.0} MiB (VmHWM of the process)");
    }
    Ok(Code::Ok)
}
