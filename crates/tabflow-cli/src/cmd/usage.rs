//! `tabflow usage record|show`: where "last accessed" comes from, and what it says.
//!
//! `record` appends every workbook's view count to the site's history file (run it on a
//! schedule: it is the usage source that works on any Tableau Server); `show` reads one
//! source and summarises what it knows.

use std::path::PathBuf;

use chrono::Utc;
use clap::{Args, Subcommand, ValueEnum};
use tabflow_client::repository::Repository;
use tabflow_client::usage::{AdminInsights, ItemKind, RecordedHistory, UsageReport, UsageSource};

use super::connect::{Connect, client_error, data_dir};
use crate::exit::{Code, usage};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record every workbook's view count now (builds history on any server).
    Record(Common),
    /// Read a usage source and summarise what it knows.
    Show(Show),
}

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    connect: Connect,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Source {
    /// Tableau Cloud Admin Insights through the VizQL Data Service.
    AdminInsights,
    /// View counts recorded by `tabflow usage record`.
    RecordedHistory,
    /// The Tableau Server repository (PostgreSQL); needs --repository-url.
    Repository,
}

#[derive(Debug, Args)]
pub struct Show {
    #[arg(long, value_enum, default_value = "admin-insights")]
    source: Source,
    /// `postgres://readonly:PASSWORD@host:8060/workgroup` (or TABFLOW_REPOSITORY_URL).
    #[arg(long, env = "TABFLOW_REPOSITORY_URL", hide_env_values = true)]
    repository_url: Option<String>,
    /// Age in days that counts as stale (1 to 36500).
    #[arg(long, default_value_t = 90)]
    stale_days: i64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: Connect,
}

/// The history file of one site: `<data dir>/usage/<server>_<site>.jsonl`.
fn history_path(server: &str, site: &str) -> PathBuf {
    let clean = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>();
    data_dir().join("usage").join(format!(
        "{}_{}.jsonl",
        clean(server.trim_start_matches("https://").trim_start_matches("http://")),
        clean(site)
    ))
}

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Record(c) => {
            let session = c.connect.open().await?;
            let cfg = session.client.config().clone();
            // The demo site's server address changes every run; key its history by "demo".
            let server =
                if cfg.server.starts_with("http://127.0.0.1:") { "demo".to_string() } else { cfg.server.clone() };
            let path = history_path(&server, &cfg.site);
            if let Some(dir) = path.parent() {
                tabflow_engine::private::create_dir_all(dir)?;
            }
            let sample =
                RecordedHistory::new(&path).record(&session.client).await.map_err(|e| client_error(e, &cfg.server))?;
            let n = RecordedHistory::new(&path).samples().map(|s| s.len()).unwrap_or(0);
            errln!(
                "recorded view counts of {} workbooks ({} samples so far) in {}",
                sample.workbooks.len(),
                n,
                path.display()
            );
            session.finish().await.map_err(crate::exit::app)?;
            Ok(Code::Ok)
        }
        Command::Show(s) => show(s).await,
    }
}

async fn show(s: Show) -> anyhow::Result<Code> {
    if !(1..=36_500).contains(&s.stale_days) {
        return Err(usage(
            format!("--stale-days {} is out of range (1 to 36500)", s.stale_days),
            "give an age in days, e.g. --stale-days 90",
        ));
    }
    let session = s.connect.open().await?;
    let cfg = session.client.config().clone();
    let report: UsageReport = match s.source {
        Source::AdminInsights => {
            AdminInsights::default().read(&session.client).await.map_err(|e| client_error(e, &cfg.server))?
        }
        Source::RecordedHistory => {
            let server =
                if cfg.server.starts_with("http://127.0.0.1:") { "demo".to_string() } else { cfg.server.clone() };
            let source = RecordedHistory::new(history_path(&server, &cfg.site));
            let r = source.read(&session.client).await.map_err(|e| client_error(e, &cfg.server))?;
            if r.items.is_empty() && source.samples().map(|v| v.is_empty()).unwrap_or(true) {
                session.finish().await.map_err(crate::exit::app)?;
                return Err(usage(
                    "no view-count history has been recorded for this site yet",
                    "run `tabflow usage record` now and again later (e.g. daily); each run adds a sample",
                ));
            }
            r
        }
        Source::Repository => {
            let url = s.repository_url.clone().filter(|u| !u.trim().is_empty()).ok_or_else(|| {
                usage(
                    "--source repository needs the repository's address",
                    "pass --repository-url postgres://readonly:PASSWORD@HOST:8060/workgroup (or set TABFLOW_REPOSITORY_URL); enable it with `tsm data-access repository-access enable`",
                )
            })?;
            let site = session.client.session().await.site_id;
            Repository::new(url, Some(site)).read(&session.client).await.map_err(|e| client_error(e, &cfg.server))?
        }
    };
    let workbooks = session.client.workbooks().collect().await.map_err(|e| client_error(e, &cfg.server))?;
    session.finish().await.map_err(crate::exit::app)?;
    let cutoff = tabflow_site::time::days_before(Utc::now(), s.stale_days);
    let ids: Vec<String> = workbooks.iter().filter_map(|w| w.id.clone()).collect();
    let mut covered = 0usize;
    let (mut never, mut stale, mut recent) = (0usize, 0usize, 0usize);
    for id in &ids {
        let Some(u) = report.items.get(id).filter(|u| u.kind == ItemKind::Workbook) else { continue };
        covered += 1;
        match u.last_access {
            None => never += 1,
            Some(t) if t < cutoff => stale += 1,
            Some(_) => recent += 1,
        }
    }
    let coverage = if ids.is_empty() { 1.0 } else { covered as f64 / ids.len() as f64 };
    if s.json {
        let v = serde_json::json!({
            "source": report.source, "note": report.note, "as_of": report.as_of,
            "workbooks": ids.len(), "covered": covered, "coverage": coverage,
            "never_accessed": never, "not_accessed_since_days": {"days": s.stale_days, "count": stale}, "accessed_recently": recent,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("usage source: {} — {}", report.source, report.note);
        outln!(
            "{} of {} workbooks covered ({:.0} %): {} never accessed, {} not accessed in {}+ days, {} accessed since",
            covered,
            ids.len(),
            coverage * 100.0,
            never,
            stale,
            s.stale_days,
            recent
        );
        if covered < ids.len() {
            outln!(
                "{} workbooks have no usage data in this source (that is not the same as never viewed)",
                ids.len() - covered
            );
        }
    }
    Ok(Code::Ok)
}
