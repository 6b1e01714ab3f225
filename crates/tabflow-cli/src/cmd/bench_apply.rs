//! `tabflow bench apply`: the executor's throughput and the journal's cost.
//!
//! A generated site with exactly N workbooks is served by the in-process emulator with
//! injected latency; one plan moves every workbook to a new project; the engine applies it
//! (validated, approved, journaled, audited) with the given concurrency. The same moves are
//! then applied on a fresh copy of the site with the journal switched off, and the
//! difference is the journal's overhead. Numbers are reported, never asserted.
//!
//! With `--workers N --store postgres://…` the moves are a shared run (as `tabflow apply
//! --shared`) executed by N workers — in-process tasks, each with its own client (its own
//! sign-in and `--concurrency` calls in flight) and its own connection pool to the store, so
//! they meet only in PostgreSQL (claims, fencing, the audit chain) and at the site, as
//! separate `tabflow worker` processes do — and the run is then rolled back as a shared
//! rollback (as `tabflow runs rollback --shared`): its compensations queued as `rollback`
//! work items and claimed by the same N workers.

use std::time::Instant;

use serde_json::{Value, json};
use tabflow_client::{Client, Config, Credentials, Secret};
use tabflow_emulator::{Emulator, Options};
use tabflow_engine::approval::{self, Approver, Decision, Selection};
use tabflow_engine::executor::{Engine, RunOptions};
use tabflow_engine::plan::{Change, Item, Plan, SiteRef, Step, StepKind};
use tabflow_engine::policy::Policy;
use tabflow_engine::store::{RunStatus, Store};
use tabflow_engine::validate::{Facts, validate};
use tabflow_site::{Project, Site, generate};

use super::bench::{ApplyBench, peak_rss_mib};
use crate::exit::{Code, fail};

const TARGET: &str = "Bench Target";

struct Trial {
    wall_s: f64,
    calls: u64,
    status: RunStatus,
    done: usize,
}

/// A generated site with `moves` workbooks, renamed where needed so that every name is
/// distinct (Tableau refuses two workbooks of one name in a project, and all of them go to
/// one project).
fn site(moves: usize) -> Site {
    let mut site = generate::generate(&generate::Options { scale: moves.max(1), seed: 1 });
    site.workbooks.truncate(moves);
    let mut seen = std::collections::HashSet::<String>::new();
    for (i, w) in site.workbooks.iter_mut().enumerate() {
        if !seen.insert(w.name.to_lowercase()) {
            w.name = format!("{} [bench {i}]", w.name);
        }
    }
    let kept: std::collections::HashSet<String> = site
        .workbooks
        .iter()
        .flat_map(|w| std::iter::once(w.id.clone()).chain(w.views.iter().map(|v| v.id.clone())))
        .collect();
    let content = |kind: &str| matches!(kind, "workbook" | "view");
    site.permissions.retain(|p| !content(&p.resource.kind) || kept.contains(&p.resource.id));
    site.subscriptions.retain(|s| !content(&s.content.kind) || kept.contains(&s.content.id));
    site.shift_time_to(chrono::Utc::now());
    let owner = site.projects.first().map(|p| p.owner_id.clone()).unwrap_or_default();
    site.projects.push(Project {
        id: "bench-target-0000-0000-000000000000".into(),
        name: TARGET.into(),
        parent_id: None,
        owner_id: owner,
        content_permissions: "ManagedByOwner".into(),
        description: String::new(),
        created_at: None,
        updated_at: None,
    });
    site
}

/// One plan step: every workbook to the bench project.
fn plan_for(site: &Site, server: &str) -> Plan {
    let names: std::collections::HashMap<&str, &str> =
        site.projects.iter().map(|p| (p.id.as_str(), p.name.as_str())).collect();
    let target = site.projects.iter().find(|p| p.name == TARGET).map(|p| p.id.clone()).unwrap_or_default();
    let mut items = Vec::with_capacity(site.workbooks.len());
    let mut changes = Vec::with_capacity(site.workbooks.len());
    for w in &site.workbooks {
        items.push(Item {
            kind: "workbook".into(),
            id: w.id.clone(),
            name: w.name.clone(),
            project: names.get(w.project_id.as_str()).map(|s| s.to_string()),
            updated_at: Some(w.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            ..Item::default()
        });
        changes.push(Change {
            item: w.id.clone(),
            field: "project".into(),
            before: Value::String(names.get(w.project_id.as_str()).copied().unwrap_or_default().into()),
            after: Value::String(TARGET.into()),
            before_id: Some(w.project_id.clone()),
            after_id: Some(target.clone()),
            after_ref: None,
        });
    }
    let site_ref =
        SiteRef { server: server.into(), content_url: site.site.content_url.clone(), id: site.site.id.clone() };
    let mut plan = Plan::draft("bench: move every workbook", site_ref, vec![], chrono::Utc::now());
    plan.steps.push(Step::new(
        "s1".into(),
        StepKind::MoveWorkbooks,
        format!("Move {} workbooks to \"{TARGET}\"", items.len()),
        vec![],
        items,
        changes,
        Value::Null,
    ));
    plan
}

async fn trial(b: &ApplyBench, journal: bool) -> anyhow::Result<Trial> {
    // Reads and writes share one cap here, so that the bound is concurrency / latency.
    let Bench { running, site, cfg } = serve_bench_site(b).await?;
    let client: Client =
        Client::connect(cfg).await.map_err(|e| fail(e.to_string(), "the emulator did not accept the default token"))?;
    let me = client.session().await.user_id;
    let signed_in = site.users.iter().find(|u| u.id == me).map(|u| u.name.clone()).unwrap_or_default();
    let policy = Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() };
    let dir = std::env::temp_dir().join(format!("tabflow-bench-apply-{}-{journal}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let store = match &b.store {
        Some(location) => tabflow_app::open_store(location).await?,
        None => Store::open(&dir.join("tabflow.db")).await?,
    };
    let vp = validate(plan_for(&site, &running.url), &Facts::from_site(&site, &signed_in), &policy, store.plan_key())
        .map_err(|p| {
        let why: Vec<String> = p.validation.findings.iter().map(|f| f.message.clone()).collect();
        fail(format!("the bench plan failed validation: {}", why.join("; ")), "this is a bug in the benchmark")
    })?;
    let approver = Approver::terminal("bench");
    approval::decide(&store, &vp, &approver, Decision::Approve, Selection::All, policy.approval_ttl_hours).await?;
    let grant = approval::grant_for(&store, &vp, 1)
        .await?
        .map_err(|m| fail(format!("no grant: {m:?}"), "this is a bug in the benchmark"))?;
    let engine = Engine {
        client: &client,
        store: &store,
        policy: policy.clone(),
        events: None,
        clock: std::sync::Arc::new(tabflow_engine::SystemClock),
    };
    let opts = RunOptions {
        actor: super::workflow::whoami(),
        concurrency: b.concurrency,
        without_journal: !journal,
        ..RunOptions::default()
    };
    let before = running.emulator.stats()["requests"].as_u64().unwrap_or(0);
    let t = Instant::now();
    let report = engine.apply(&vp, Some(grant), &opts).await?;
    let wall_s = t.elapsed().as_secs_f64();
    let calls = running.emulator.stats()["requests"].as_u64().unwrap_or(0) - before;
    let done = report.steps.iter().map(|s| s.done).sum();
    for n in report.failed.iter().take(3) {
        errln!("failed: {} — {}", n.name, n.reason);
    }
    if !report.skipped.is_empty() {
        errln!("{} skipped, e.g. {} — {}", report.skipped.len(), report.skipped[0].name, report.skipped[0].reason);
    }
    store.close().await;
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Trial { wall_s, calls, status: report.status, done })
}

/// The emulator, the bench site and a client signed in to it.
struct Bench {
    running: tabflow_emulator::Running,
    site: Site,
    cfg: Config,
}

async fn serve_bench_site(b: &ApplyBench) -> anyhow::Result<Bench> {
    let site = site(b.moves);
    let mut options = Options::new(site.clone());
    options.faults.latency_ms = Some(b.latency_ms);
    let running = Emulator::new(options)
        .spawn(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| fail(format!("cannot start the emulator: {e}"), "is the loopback interface available?"))?;
    let mut cfg = Config::new(
        running.url.clone(),
        "demo",
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    );
    cfg.concurrency = b.concurrency;
    cfg.read_concurrency = b.concurrency;
    Ok(Bench { running, site, cfg })
}

/// A worker's client: its own sign-in with a user's password (a PAT holds one session at a
/// time, so N clients cannot share one).
async fn worker_client(bench: &Bench) -> anyhow::Result<Client> {
    let mut cfg = bench.cfg.clone();
    cfg.credentials = Credentials::Password { username: "admin".into(), password: Secret::new("tabflow") };
    Client::connect(cfg).await.map_err(|e| fail(e.to_string(), "the emulator did not accept admin's password"))
}

/// The moves as a shared run executed by `b.workers` workers, then its shared rollback by
/// the same workers: a trial each.
async fn shared_trials(b: &ApplyBench, location: &str) -> anyhow::Result<(Trial, Trial)> {
    let bench = serve_bench_site(b).await?;
    let client = worker_client(&bench).await?;
    let me = client.session().await.user_id;
    let site = &bench.site;
    let signed_in = site.users.iter().find(|u| u.id == me).map(|u| u.name.clone()).unwrap_or_default();
    let policy = Policy { max_items_per_destructive_step: usize::MAX, ..Policy::default() };
    let store = tabflow_app::open_store(location).await?;
    let vp =
        validate(plan_for(site, &bench.running.url), &Facts::from_site(site, &signed_in), &policy, store.plan_key())
            .map_err(|p| {
                let why: Vec<String> = p.validation.findings.iter().map(|f| f.message.clone()).collect();
                fail(format!("the bench plan failed validation: {}", why.join("; ")), "this is a bug in the benchmark")
            })?;
    let approver = Approver::terminal("bench");
    approval::decide(&store, &vp, &approver, Decision::Approve, Selection::All, policy.approval_ttl_hours).await?;
    let grant = approval::grant_for(&store, &vp, 1)
        .await?
        .map_err(|m| fail(format!("no grant: {m:?}"), "this is a bug in the benchmark"))?;
    let clock: std::sync::Arc<dyn tabflow_engine::Clock> = std::sync::Arc::new(tabflow_engine::SystemClock);
    let opts = RunOptions { actor: super::workflow::whoami(), concurrency: b.concurrency, ..RunOptions::default() };
    let engine = Engine { client: &client, store: &store, policy: policy.clone(), events: None, clock: clock.clone() };
    let queued = engine.apply(&vp, Some(grant), &RunOptions { shared: true, ..opts.clone() }).await?;
    let run_id = queued.run_id.clone();
    // Every worker signed in and connected to the store before the clock starts.
    let mut workers = vec![];
    for i in 0..b.workers {
        let client = worker_client(&bench).await?;
        let store = tabflow_app::open_store(location).await?;
        workers.push((format!("bench-worker-{i}:{}", std::process::id()), client, store));
    }
    let stats = |running: &tabflow_emulator::Running| running.emulator.stats()["requests"].as_u64().unwrap_or(0);
    let before = stats(&bench.running);
    let t = Instant::now();
    // Each worker's share of the run (or of its rollback), until one closes it.
    let share = |what: &'static str| {
        let (policy, clock, opts) = (policy.clone(), clock.clone(), opts.clone());
        let workers = &workers;
        let run_id = run_id.clone();
        async move {
            let passes = futures::future::join_all(workers.iter().map(|(owner, client, store)| {
                let (policy, clock, opts, run) = (policy.clone(), clock.clone(), opts.clone(), run_id.as_str());
                async move {
                    let engine = Engine { client, store, policy, events: None, clock };
                    engine.work_shared(run, &opts, owner, b.batch).await
                }
            }))
            .await;
            let mut report = None;
            for (i, p) in passes.into_iter().enumerate() {
                let p = p?;
                errln!(
                    "  {what}, worker {i}: {} items done, {} written, {} batches, {} lost",
                    p.done,
                    p.written,
                    p.batches,
                    p.lost
                );
                for e in p.errors.iter().take(3) {
                    errln!("  {what}, worker {i}: {e}");
                }
                if p.finished.is_some() {
                    report = p.finished;
                }
            }
            report.ok_or_else(|| {
                fail(
                    format!("no worker finished the {what} of run {run_id}"),
                    "see the worker lines above; the run is left in the store",
                )
            })
        }
    };
    let report = share("apply").await?;
    let wall_s = t.elapsed().as_secs_f64();
    let calls = stats(&bench.running) - before;
    let apply = Trial { wall_s, calls, status: report.status, done: report.steps.iter().map(|s| s.done).sum() };
    // (d): queued as `runs rollback --shared` does (under the run's lease), then shared.
    let before = stats(&bench.running);
    let t = Instant::now();
    engine.rollback(&run_id, &RunOptions { shared: true, ..opts.clone() }).await?;
    let undone = share("rollback").await?;
    let rollback = Trial {
        wall_s: t.elapsed().as_secs_f64(),
        calls: stats(&bench.running) - before,
        status: undone.status,
        done: undone.restored,
    };
    for n in undone.not_restored.iter().take(3) {
        errln!("not restored: {} — {}", n.name, n.reason);
    }
    for (_, _, s) in workers {
        s.close().await;
    }
    store.close().await;
    bench.running.stop().await;
    Ok((apply, rollback))
}

/// `--workers N`: the shared run's apply and rollback, one line each and a JSON summary.
async fn run_shared(b: &ApplyBench) -> anyhow::Result<Code> {
    let Some(location) = b.store.as_deref().filter(|l| l.starts_with("postgres")) else {
        return Err(crate::exit::usage(
            "--workers needs a PostgreSQL store to share the run through",
            "add --store postgres://user@host/db (a database or schema the benchmark may write to)",
        ));
    };
    if !(1..=64).contains(&b.workers) || !(1..=1000).contains(&b.batch) {
        return Err(crate::exit::usage(
            format!("--workers {} / --batch {} out of range (1 to 64 / 1 to 1000)", b.workers, b.batch),
            "e.g. --workers 4 --batch 16",
        ));
    }
    let per_worker = b.concurrency as f64 * 1000.0 / b.latency_ms.max(1) as f64;
    let bound = per_worker * b.workers as f64;
    outln!(
        "apply {} workbook moves as a shared run of {} worker(s) on PostgreSQL, then roll it back; {} ms injected latency, concurrency {} per worker (bound: {:.0} calls/s = {} x {:.0})",
        b.moves,
        b.workers,
        b.latency_ms,
        b.concurrency,
        bound,
        b.workers,
        per_worker
    );
    let (mut applies, mut rollbacks) = (vec![], vec![]);
    for _ in 0..b.repeat.max(1) {
        let (apply, rollback) = shared_trials(b, location).await?;
        let line = |name: &str, t: &Trial, bound: f64| {
            outln!(
                "  {name}: {} items ({}) in {:.2} s, {} API calls = {:.0} calls/s ({:.1} % of the bound {bound:.0}), {:.2} calls per item",
                t.done,
                t.status.as_str(),
                t.wall_s,
                t.calls,
                t.calls as f64 / t.wall_s,
                100.0 * t.calls as f64 / t.wall_s / bound,
                t.calls as f64 / t.done.max(1) as f64
            );
        };
        line(&format!("(c) apply, {} worker(s)", b.workers), &apply, bound);
        line(&format!("(d) rollback, {} worker(s)", b.workers), &rollback, bound);
        applies.push(apply);
        rollbacks.push(rollback);
    }
    let summary = |ts: &[Trial], bound: f64| {
        let wall = median(ts.iter().map(|t| t.wall_s).collect());
        let calls = median(ts.iter().map(|t| t.calls as f64).collect());
        json!({
            "wall_s": ts.iter().map(|t| t.wall_s).collect::<Vec<_>>(), "median_wall_s": wall,
            "calls": calls, "items": ts.last().map(|t| t.done).unwrap_or(0),
            "status": ts.last().map(|t| t.status.as_str()).unwrap_or(""),
            "calls_per_s": calls / wall, "bound_calls_per_s": bound, "ratio_to_bound": calls / wall / bound,
        })
    };
    outln!("peak RSS of the process (emulator + {} workers): {:.0} MiB", b.workers, peak_rss_mib().unwrap_or(0.0));
    let out = json!({
        "moves": b.moves, "latency_ms": b.latency_ms, "concurrency": b.concurrency, "workers": b.workers,
        "batch": b.batch, "apply": summary(&applies, bound), "rollback": summary(&rollbacks, bound),
    });
    outln!("{out}");
    Ok(Code::Ok)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub async fn run(b: ApplyBench) -> anyhow::Result<Code> {
    if b.workers > 0 {
        return run_shared(&b).await;
    }
    let bound_calls = b.concurrency as f64 * 1000.0 / b.latency_ms.max(1) as f64;
    outln!(
        "apply {} workbook moves at {} ms injected latency, concurrency {} (bound: {:.0} calls/s), {} pair(s) of runs",
        b.moves,
        b.latency_ms,
        b.concurrency,
        bound_calls,
        b.repeat.max(1)
    );
    let line = |name: &str, t: &Trial| {
        let moves_s = t.done as f64 / t.wall_s;
        let calls_s = t.calls as f64 / t.wall_s;
        outln!(
            "  {name}: {} moves ({}) in {:.2} s — {:.0} moves/s ({:.1} % of the bound), {} API calls = {:.0} calls/s ({:.1} % of the bound), {:.2} calls per move",
            t.done,
            t.status.as_str(),
            t.wall_s,
            moves_s,
            100.0 * moves_s / bound_calls,
            t.calls,
            calls_s,
            100.0 * calls_s / bound_calls,
            t.calls as f64 / t.done.max(1) as f64,
        );
    };
    let journal_kind = match &b.store {
        Some(l) if l.starts_with("postgres") => "PostgreSQL".to_string(),
        _ => "SQLite, synchronous=FULL".to_string(),
    };
    let (mut with_s, mut without_s, mut calls_with, mut overheads) = (vec![], vec![], vec![], vec![]);
    let mut done = 0;
    for _ in 0..b.repeat.max(1) {
        let with = trial(&b, true).await?;
        line(&format!("with the journal ({journal_kind})"), &with);
        if with.done < b.moves {
            outln!("  note: only {} of {} moves were made", with.done, b.moves);
        }
        done = with.done;
        with_s.push(with.wall_s);
        calls_with.push(with.calls as f64);
        if b.baseline {
            let without = trial(&b, false).await?;
            line("without the journal (baseline)", &without);
            overheads.push(100.0 * (with.wall_s - without.wall_s) / without.wall_s);
            without_s.push(without.wall_s);
        }
    }
    let w = median(with_s.clone());
    let calls = median(calls_with);
    outln!(
        "median with the journal: {:.2} s = {:.0} moves/s ({:.1} % of {:.0}), {:.0} calls/s ({:.1} % of the bound)",
        w,
        done as f64 / w,
        100.0 * done as f64 / w / bound_calls,
        bound_calls,
        calls / w,
        100.0 * calls / w / bound_calls
    );
    let mut out = json!({
        "moves": b.moves, "latency_ms": b.latency_ms, "concurrency": b.concurrency, "bound_ops_per_s": bound_calls,
        "with_journal_wall_s": with_s, "median_with_journal_s": w, "calls_per_run": calls,
        "moves_per_s": done as f64 / w, "calls_per_s": calls / w,
    });
    if b.baseline {
        let wo = median(without_s.clone());
        let overhead = 100.0 * (w - wo) / wo;
        outln!(
            "median without the journal: {wo:.2} s; journal overhead {overhead:+.1} % (median of medians; per pair: {})",
            overheads.iter().map(|o| format!("{o:+.1} %")).collect::<Vec<_>>().join(", ")
        );
        out["without_journal_wall_s"] = json!(without_s);
        out["median_without_journal_s"] = json!(wo);
        out["journal_overhead_pct"] = json!(overhead);
    }
    outln!("peak RSS of the process (emulator + engine): {:.0} MiB", peak_rss_mib().unwrap_or(0.0));
    outln!("{out}");
    Ok(Code::Ok)
}
