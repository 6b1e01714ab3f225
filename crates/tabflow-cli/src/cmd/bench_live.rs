//! `tabflow bench plan --scale N --live [--latency-ms L]`: plans over a live emulated site
//! (issue #15). An emulator serving a generated site of N workbooks runs as a separate process
//! (`tabflow emulator serve --scale N`), so the peak RSS reported is tabflow's alone. Three
//! requests are planned through the application service as `tabflow plan` plans them: the
//! Finance cleanup, the offboarding of the user owning closest to 200 items, and a site-wide
//! audit of tagged content. Each reports wall time, peak RSS (VmHWM, reset before each
//! request), the API calls the emulator answered and the minimum calls for the request.
//! Numbers are reported, never asserted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::time::Instant;

use anyhow::Context;
use futures::TryStreamExt;
use serde_json::{Value, json};
use tabflow_app::{App, Connection, Options, PlanRequest, Source};
use tabflow_client::{Client, Config, Credentials, Secret};

use super::bench::peak_rss_mib;
use crate::exit::{Code, fail};

const FINANCE: &str = "Clean up the Finance project - archive workbooks not accessed in 90 days";
const AUDIT: &str = "Audit permissions on content tagged sensitive, restricted or confidential";
const AUDIT_TAGS: [&str; 3] = ["sensitive", "restricted", "confidential"];
const PAGE: u64 = 1000;

/// What the live bench is asked.
pub struct Live {
    pub scale: usize,
    pub latency_ms: u64,
    /// Read the whole site, as before issue #15 (for comparison).
    pub full: bool,
    /// Plan only these requests (`finance`, `offboard`, `audit`); empty = all.
    pub only: Vec<String>,
    /// Plan each request once to fill the site cache, then measure a second plan that uses it.
    pub cached: bool,
}

/// The emulator child process; stopped (by its own id) when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pages(n: u64) -> u64 {
    n.div_ceil(PAGE).max(1)
}

/// Counts from a read before the measurement, for the minimum calls of each request.
#[derive(Default)]
struct Counts {
    users: u64,
    projects: u64,
    groups: u64,
    /// Workbooks and views in the Finance project's subtree.
    finance_workbooks: u64,
    finance_views: u64,
    /// owner id → (name, items owned: workbooks, datasources, flows)
    owners: HashMap<String, (u64, u64, u64)>,
    tagged_workbooks: u64,
    tagged_datasources: u64,
    projects_total: u64,
    workbooks_total: u64,
    datasources_total: u64,
    flows_total: u64,
}

fn tagged(tags: Option<&tabflow_client::types::Tags>) -> bool {
    tags.map(|t| t.labels()).unwrap_or_default().iter().any(|l| AUDIT_TAGS.iter().any(|x| x.eq_ignore_ascii_case(l)))
}

async fn counts(client: &Client) -> anyhow::Result<(Counts, String)> {
    let mut c = Counts::default();
    let projects = client.projects().collect().await?;
    let finance: Option<String> = projects
        .iter()
        .find(|p| p.name.as_deref() == Some("Finance") && p.parent_project_id.as_deref().unwrap_or("").is_empty())
        .and_then(|p| p.id.clone());
    let parent: HashMap<String, String> = projects
        .iter()
        .filter_map(|p| Some((p.id.clone()?, p.parent_project_id.clone().filter(|x| !x.is_empty())?)))
        .collect();
    let in_finance = |pid: &str| {
        let mut cur = Some(pid.to_string());
        let mut guard = 0;
        while let Some(p) = cur {
            if Some(&p) == finance.as_ref() {
                return true;
            }
            guard += 1;
            if guard > 64 {
                return false;
            }
            cur = parent.get(&p).cloned();
        }
        false
    };
    c.projects = projects.len() as u64;
    c.projects_total = c.projects;
    let mut fin_wb: BTreeSet<String> = BTreeSet::new();
    let mut wb_stream = std::pin::pin!(client.workbooks().stream());
    while let Some(w) = wb_stream.try_next().await? {
        c.workbooks_total += 1;
        let owner = w.owner.as_ref().and_then(|o| o.id.clone()).unwrap_or_default();
        c.owners.entry(owner).or_default().0 += 1;
        if tagged(w.tags.as_ref()) {
            c.tagged_workbooks += 1;
        }
        if w.project.as_ref().and_then(|p| p.id.as_deref()).is_some_and(in_finance) {
            fin_wb.insert(w.id.clone().unwrap_or_default());
        }
    }
    c.finance_workbooks = fin_wb.len() as u64;
    let mut v_stream = std::pin::pin!(client.views(false).stream());
    while let Some(v) = v_stream.try_next().await? {
        if v.workbook.as_ref().and_then(|w| w.id.as_ref()).is_some_and(|id| fin_wb.contains(id)) {
            c.finance_views += 1;
        }
    }
    for d in client.datasources().collect().await? {
        c.datasources_total += 1;
        c.owners.entry(d.owner.as_ref().and_then(|o| o.id.clone()).unwrap_or_default()).or_default().1 += 1;
        if tagged(d.tags.as_ref()) {
            c.tagged_datasources += 1;
        }
    }
    for f in client.flows().collect().await? {
        c.flows_total += 1;
        c.owners.entry(f.owner.as_ref().and_then(|o| o.id.clone()).unwrap_or_default()).or_default().2 += 1;
    }
    let users = client.users().collect().await?;
    c.users = users.len() as u64;
    c.groups = client.groups().collect().await?.len() as u64;
    // The leaver: the user owning closest to 200 items.
    let (leaver, _) = c
        .owners
        .iter()
        .map(|(id, (w, d, f))| (id.clone(), w + d + f))
        .min_by_key(|(id, n)| (n.abs_diff(200), id.clone()))
        .unwrap_or_default();
    let name = users
        .iter()
        .find(|u| u.id.as_deref() == Some(leaver.as_str()))
        .and_then(|u| u.name.clone())
        .unwrap_or_default();
    Ok((c, name))
}

/// The same request again (for the plan that fills the site cache).
fn clone_request(r: &PlanRequest) -> PlanRequest {
    let source = match &r.source {
        Source::Rules => Source::Rules,
        Source::Intent { name, params } => Source::Intent { name: name.clone(), params: params.clone() },
        Source::Given { intents, notes } => Source::Given { intents: intents.clone(), notes: notes.clone() },
        Source::Model { intents, notes } => Source::Model { intents: intents.clone(), notes: notes.clone() },
        Source::Llm(_) => Source::Rules,
    };
    PlanRequest {
        request: r.request.clone(),
        source,
        answers: r.answers.clone(),
        actor: r.actor.clone(),
        remember: false,
    }
}

/// Starts `tabflow emulator serve --scale N` and answers it with its URL.
fn start_emulator(scale: usize) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe().context("finding the tabflow executable")?;
    let mut child = std::process::Command::new(exe)
        .args(["emulator", "serve", "--scale", &scale.to_string(), "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting `tabflow emulator serve`")?;
    let out = child.stdout.take().context("the emulator's output")?;
    let child = Child(child);
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).context("reading the emulator's URL")?;
    let url = line.trim().to_string();
    if !url.starts_with("http") {
        anyhow::bail!("the emulator did not print its URL (got {url:?})");
    }
    Ok((child, url))
}

/// Resets the peak RSS (VmHWM) of this process (Linux: `5` to `/proc/self/clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Row {
    name: String,
    wall_s: f64,
    rss_mib: f64,
    calls: u64,
    minimum: u64,
    per_item: u64,
    plan: String,
}

/// What `--scale N` serves: N generated workbooks, or the demo site for 0.
fn site_name(scale: usize) -> String {
    if scale == 0 { "the demo site".into() } else { format!("{scale} workbooks") }
}

pub async fn run(b: Live) -> anyhow::Result<Code> {
    let t0 = Instant::now();
    let (_child, url) = start_emulator(b.scale)?;
    errln!("emulator with {} up at {url} in {:.1} s", site_name(b.scale), t0.elapsed().as_secs_f64());
    let http = reqwest::Client::new();
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let config = Config::new(url.clone(), "demo", creds.clone());
    let client = Client::connect(config.clone())
        .await
        .map_err(|e| fail(format!("connecting to the emulator: {e}"), "see `tabflow emulator serve --help`"))?;
    let (c, leaver) = counts(&client).await?;
    let to = client
        .users()
        .collect()
        .await?
        .into_iter()
        .find(|u| u.site_role.as_deref() == Some("Creator") && u.name.as_deref() != Some(leaver.as_str()))
        .and_then(|u| u.name)
        .unwrap_or_default();
    let leaver_id = client
        .users()
        .collect()
        .await?
        .into_iter()
        .find(|u| u.name.as_deref() == Some(leaver.as_str()))
        .and_then(|u| u.id)
        .unwrap_or_default();
    let owned = c.owners.get(&leaver_id).copied().unwrap_or_default();
    drop(client);
    http.post(format!("{url}/_emulator/faults"))
        .json(&json!({"latency_ms": b.latency_ms}))
        .send()
        .await?
        .error_for_status()?;

    let requests: Vec<(String, PlanRequest)> = vec![
        ("Finance cleanup".into(), rules(FINANCE)),
        (format!("offboard {leaver} ({} items)", owned.0 + owned.1 + owned.2), offboard(&leaver, &to)),
        ("audit of tagged content".into(), rules(AUDIT)),
    ];
    let mut rows = vec![];
    const KEYS: [&str; 3] = ["finance", "offboard", "audit"];
    for (i, (name, req)) in requests.into_iter().enumerate() {
        if !b.only.is_empty() && !b.only.iter().any(|o| o == KEYS[i]) {
            continue;
        }
        let dir = tempfile_dir()?;
        let options = || {
            let mut options = Options::new(dir.clone());
            options.connection = Connection::Server(Config::new(url.clone(), "demo", creds.clone()));
            options.store = Some(dir.join("tabflow.db").display().to_string());
            options.full_site_reads = b.full;
            if b.cached {
                options.site_cache = tabflow_app::SiteCache::Use;
            }
            options
        };
        if b.cached {
            // The first plan fills the cache; the measured one below uses it.
            let app = App::open(options()).await.map_err(crate::exit::app)?;
            app.plan(clone_request(&req)).await.map_err(crate::exit::app)?;
            app.close().await.map_err(crate::exit::app)?;
        }
        let options = options();
        http.post(format!("{url}/_emulator/stats/reset")).send().await?.error_for_status()?;
        let peak_reset = reset_peak();
        let t = Instant::now();
        let app = App::open(options).await.map_err(crate::exit::app)?;
        let planned = app.plan(req).await.map_err(crate::exit::app)?;
        let wall_s = t.elapsed().as_secs_f64();
        let rss_mib = if peak_reset { peak_rss_mib().unwrap_or(0.0) } else { f64::NAN };
        let stats: Value = http.get(format!("{url}/_emulator/stats")).send().await?.json().await?;
        let plan = planned.plan();
        let by_route: BTreeMap<String, u64> = stats["by_route"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
            .unwrap_or_default();
        let per_item: u64 = by_route
            .iter()
            .filter(|(k, _)| {
                k.starts_with("GET ")
                    && (k.ends_with("/permissions")
                        || k.contains("/default-permissions/")
                        || k.ends_with("/groups/{id}/users"))
            })
            .map(|(_, n)| n)
            .sum();
        let changed: BTreeSet<&str> =
            plan.steps.iter().filter(|s| s.is_write()).flat_map(|s| s.changed_items()).collect();
        // The minimum (issue #15): 2 (serverInfo, sign-in) + one page per 1000 items of each
        // list the request needs + the per-item reads it evaluates + lineage and usage pages
        // of its candidates. Per-item reads are those made here: every one is of an item the
        // plan changes or an access check evaluates (tests/it/scoped_reads.rs).
        let base = 2 + pages(c.users) + pages(c.projects);
        let minimum = match i {
            // The Finance subtree's workbooks and views, lineage of its workbooks and usage
            // of its views.
            0 => base + 2 * pages(c.finance_workbooks) + 2 * pages(c.finance_views) + per_item,
            // The leaver's workbooks, datasources and flows, groups, subscriptions and data
            // alerts, lineage of the leaver's items. The per-item reads include the grant scan:
            // explicit grants to the leaver on every project, workbook, datasource and flow
            // (Tableau lists no user's grants) and every group's members.
            1 => {
                base + 3 * pages(owned.0 + owned.1 + owned.2)
                    + pages(c.groups)
                    + 2
                    + pages(owned.0 + owned.1)
                    + per_item
            }
            // Groups, the tagged workbooks and datasources.
            _ => base + pages(c.groups) + pages(c.tagged_workbooks) + pages(c.tagged_datasources) + per_item,
        };
        app.close().await.map_err(crate::exit::app)?;
        let _ = std::fs::remove_dir_all(&dir);
        rows.push(Row {
            name,
            wall_s,
            rss_mib,
            calls: stats["requests"].as_u64().unwrap_or(0),
            minimum,
            per_item,
            plan: format!(
                "{} steps, {} items changed, {} questions",
                plan.steps.len(),
                changed.len(),
                plan.questions.len()
            ),
        });
        if std::env::var_os("TABFLOW_BENCH_ROUTES").is_some() {
            errln!("{}", serde_json::to_string_pretty(&by_route)?);
        }
    }
    if b.cached {
        outln!(
            "(site cache: each request planned once before, unmeasured; the minimum is that of a plan without the cache)"
        );
    }
    outln!(
        "live plans, {}, {} ms per call, {} reads ({} users, {} projects, {} groups; Finance subtree {} workbooks / {} views)",
        site_name(b.scale),
        b.latency_ms,
        if b.full { "whole-site" } else { "scoped" },
        c.users,
        c.projects,
        c.groups,
        c.finance_workbooks,
        c.finance_views
    );
    outln!(
        "{:<34} {:>8} {:>9} {:>9} {:>9} {:>6} {:>9}  plan",
        "request",
        "wall s",
        "RSS MiB",
        "calls",
        "minimum",
        "ratio",
        "per-item"
    );
    for r in rows {
        outln!(
            "{:<34} {:>8.2} {:>9.0} {:>9} {:>9} {:>6.2} {:>9}  {}",
            r.name,
            r.wall_s,
            r.rss_mib,
            r.calls,
            r.minimum,
            r.calls as f64 / r.minimum.max(1) as f64,
            r.per_item,
            r.plan
        );
    }
    Ok(Code::Ok)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "tabflow-bench-live-{}-{}",
        std::process::id(),
        tabflow_engine::plan::new_id("b", chrono::Utc::now())
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn rules(request: &str) -> PlanRequest {
    PlanRequest {
        request: request.into(),
        source: Source::Rules,
        answers: BTreeMap::new(),
        actor: "bench".into(),
        remember: false,
    }
}

fn offboard(user: &str, to: &str) -> PlanRequest {
    PlanRequest {
        request: format!("offboard {user} and give their content to {to}"),
        source: Source::Intent {
            name: "offboard-user".into(),
            params: vec![("user".into(), user.into()), ("new_owner".into(), to.into())],
        },
        answers: BTreeMap::new(),
        actor: "bench".into(),
        remember: false,
    }
}
