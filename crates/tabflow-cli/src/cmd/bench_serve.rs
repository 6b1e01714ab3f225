//! `tabflow bench serve`: N concurrent API clients against `tabflow serve` (in process, over
//! real HTTP) on the demo site served by the emulator, for S seconds. Each client cycles
//! through planning (`POST /api/v1/plans`, an intent with its answer), polling
//! (`GET /api/v1/plans/{id}`, `GET /api/v1/runs`) and streaming a run's events
//! (`GET /api/v1/runs/{id}/events`, read to `finished`). Reports requests, errors and p50/p99
//! latency per kind; it never passes or fails on them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use tabflow_app::{App, Connection, Options, Policy, Role};
use tabflow_client::{Config, Credentials, Secret};

use crate::exit::{Code, fail};

#[derive(Debug, Args)]
pub struct ServeBench {
    /// Concurrent API clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

const KINDS: [&str; 4] = ["plan", "poll-plan", "list-runs", "stream-events"];

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn run(b: ServeBench) -> anyhow::Result<Code> {
    let failed = |what: &str, e: String| fail(format!("bench serve: {what}: {e}"), "see the message");
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site))
        .await
        .map_err(|e| failed("emulator", e.to_string()))?;
    let dir = tempfile_dir()?;
    let mut options = Options::new(&dir);
    options.connection = Connection::Server(Config::new(
        emu.url.clone(),
        "demo",
        Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") },
    ));
    options.store = Some(dir.join("tabflow.db").display().to_string());
    options.policy = Policy::default();
    let app = Arc::new(App::open(options).await.map_err(|e| failed("store", e.message))?);
    let (_, req) =
        app.create_token("bench-requester", Role::Requester, "bench").await.map_err(|e| failed("token", e.message))?;
    let (_, appr) =
        app.create_token("bench-approver", Role::Approver, "bench").await.map_err(|e| failed("token", e.message))?;
    let server =
        tabflow_serve::start(app.clone(), "127.0.0.1:0".parse()?).await.map_err(|e| failed("listen", e.to_string()))?;
    let base = server.url.clone();
    let http = reqwest::Client::new();
    let plan_body = json!({"intent": "archive-stale-content", "params": {"project": "Finance", "stale_days": 90}, "answers": {"q1": "archive-all"}});

    // One approved run to stream.
    let post = |path: String, token: &str, body: Value| {
        http.post(format!("{base}{path}")).bearer_auth(token).json(&body).send()
    };
    let plan: Value = post("/api/v1/plans".into(), &req, plan_body.clone()).await?.json().await?;
    let plan_id = plan["id"].as_str().unwrap_or_default().to_string();
    post(format!("/api/v1/plans/{plan_id}/approvals"), &appr, json!({"decision": "approve", "items": "all"})).await?;
    let run: Value = post("/api/v1/runs".into(), &req, json!({"plan_id": plan_id})).await?.json().await?;
    let run_id = run["run_id"].as_str().unwrap_or_default().to_string();
    http.get(format!("{base}/api/v1/runs/{run_id}/events")).bearer_auth(&req).send().await?.text().await?;

    let end = Instant::now() + Duration::from_secs(b.seconds);
    let started = Instant::now();
    let mut tasks = vec![];
    for c in 0..b.clients {
        let (http, base, req, plan_body, run_id) =
            (http.clone(), base.clone(), req.clone(), plan_body.clone(), run_id.clone());
        let mut last_plan = plan_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
            let mut errors: Vec<String> = vec![];
            let mut i = c;
            while Instant::now() < end {
                let kind = KINDS[i % KINDS.len()];
                i += 1;
                let t = Instant::now();
                let r = match kind {
                    "plan" => http.post(format!("{base}/api/v1/plans")).bearer_auth(&req).json(&plan_body).send().await,
                    "poll-plan" => http.get(format!("{base}/api/v1/plans/{last_plan}")).bearer_auth(&req).send().await,
                    "list-runs" => http.get(format!("{base}/api/v1/runs")).bearer_auth(&req).send().await,
                    _ => http.get(format!("{base}/api/v1/runs/{run_id}/events")).bearer_auth(&req).send().await,
                };
                let ok = match r {
                    Ok(resp) if resp.status().is_success() => match resp.text().await {
                        Ok(text) => {
                            if kind == "plan"
                                && let Some(id) = serde_json::from_str::<Value>(&text)
                                    .ok()
                                    .and_then(|v| v["id"].as_str().map(String::from))
                            {
                                last_plan = id;
                            }
                            kind != "stream-events" || text.contains("event: finished")
                        }
                        Err(e) => {
                            errors.push(format!("{kind}: {e}"));
                            false
                        }
                    },
                    Ok(resp) => {
                        errors.push(format!("{kind}: HTTP {}", resp.status()));
                        false
                    }
                    Err(e) => {
                        errors.push(format!("{kind}: {e}"));
                        false
                    }
                };
                if ok {
                    lat.entry(kind).or_default().push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            (lat, errors)
        }));
    }
    let mut lat: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut errors = vec![];
    for t in tasks {
        let (l, e) = t.await?;
        for (k, v) in l {
            lat.entry(k).or_default().extend(v);
        }
        errors.extend(e);
    }
    let wall = started.elapsed().as_secs_f64();
    server.stop().await;
    let mut kinds = serde_json::Map::new();
    let mut total = 0;
    for (k, v) in lat.iter_mut() {
        v.sort_by(|a, b| a.total_cmp(b));
        total += v.len();
        kinds.insert(
            k.to_string(),
            json!({"requests": v.len(), "p50_ms": (pct(v, 0.5) * 10.0).round() / 10.0, "p99_ms": (pct(v, 0.99) * 10.0).round() / 10.0}),
        );
    }
    let out = json!({
        "clients": b.clients, "seconds": b.seconds, "wall_s": (wall * 10.0).round() / 10.0,
        "requests": total, "errors": errors.len(), "requests_per_s": (total as f64 / wall * 10.0).round() / 10.0,
        "kinds": kinds, "first_errors": errors.iter().take(5).collect::<Vec<_>>(),
    });
    if b.json {
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        outln!(
            "bench serve: {} clients for {:.1} s: {} requests ({:.1}/s), {} errors",
            b.clients,
            wall,
            total,
            out["requests_per_s"],
            errors.len()
        );
        for (k, v) in &kinds {
            outln!("  {k:<14} {:>6} requests  p50 {:>8} ms  p99 {:>8} ms", v["requests"], v["p50_ms"], v["p99_ms"]);
        }
        for e in errors.iter().take(5) {
            outln!("  error: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Code::Ok)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tabflow-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
