//! `tabflow schedule add|list|remove`: recurring reviews — templates on a cron schedule, and
//! the reviews applied plans stored ("audit permissions on sensitive content every month").
//! `tabflow worker` runs them on time.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde_json::json;

use super::connect::Connect;
use super::workflow::{StoreArgs, open_app, parse_params, whoami};
use crate::exit::{self, Code};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a template on a schedule: add "0 8 * * MON" --template audit-permissions --param tags=sensitive.
    Add(AddArgs),
    /// Stored schedules with their next and last run and its outcome.
    List(ListArgs),
    /// Forget one.
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Five cron fields (minute hour day-of-month month day-of-week), e.g. "0 8 * * MON", or
    /// daily, weekly, monthly.
    cron: String,
    /// The template to run (tabflow templates list).
    #[arg(long)]
    template: String,
    /// A parameter of the template: K=V.
    #[arg(long = "param", value_name = "K=V")]
    params: Vec<String>,
    /// The IANA time zone the cron expression is read in (default UTC), e.g. Europe/Berlin.
    #[arg(long)]
    tz: Option<String>,
    #[arg(long)]
    json: bool,
    /// The site it runs against is the one these flags name (the demo site without them).
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    id: String,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(c: Command) -> anyhow::Result<Code> {
    match c {
        Command::Add(a) => add(a).await,
        Command::List(a) => list(a).await,
        Command::Remove(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let removed = app.remove_schedule(&a.id).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            removed?;
            outln!("Removed {}.", a.id);
            Ok(Code::Ok)
        }
    }
}

async fn add(a: AddArgs) -> anyhow::Result<Code> {
    let params: BTreeMap<String, String> =
        parse_params(&a.params)?.into_iter().map(|(k, v)| (k.trim().to_string(), v)).collect();
    let app = open_app(Some(&a.connect), &a.store, Default::default(), Default::default()).await?;
    let s = tabflow_app::NewSchedule { cron: a.cron.clone(), template: a.template.clone(), params, tz: a.tz.clone() };
    let row = app.add_schedule(s, &whoami()).await.map_err(exit::app);
    app.close().await.map_err(exit::app)?;
    let row = row?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&row)?);
    } else {
        outln!(
            "Scheduled {} ({}{}): {}",
            row.id,
            row.cadence,
            row.tz.as_deref().map(|z| format!(" {z}")).unwrap_or_else(|| " UTC".into()),
            row.request
        );
        if let Some(next) = row.next_run_at {
            outln!("  next run {}", next.format("%Y-%m-%d %H:%M UTC"));
        }
        outln!("  `tabflow worker` runs it on time (`tabflow worker --once` runs what is due now).");
    }
    Ok(Code::Ok)
}

async fn list(a: ListArgs) -> anyhow::Result<Code> {
    let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
    let rows = app.schedules().await.map_err(exit::app);
    app.close().await.map_err(exit::app)?;
    let rows = rows?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Code::Ok);
    }
    if rows.is_empty() {
        outln!(
            "No recurring reviews. Add one: tabflow schedule add \"0 8 * * MON\" --template audit-permissions --param tags=sensitive"
        );
        return Ok(Code::Ok);
    }
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_else(|| "never".into())
    };
    for r in &rows {
        let what = match &r.template {
            Some(t) => format!("template {t} {}", json!(r.params)),
            None => r.request.clone(),
        };
        outln!(
            "{}  {}{}  {}  (by {}, {})",
            r.id,
            r.cadence,
            r.tz.as_deref().map(|z| format!(" {z}")).unwrap_or_default(),
            what,
            r.created_by,
            r.created_at.format("%Y-%m-%d")
        );
        let last = match &r.last_outcome {
            Some(o) => format!(
                "{} → {o}{}",
                when(r.last_run_at),
                r.last_detail.as_deref().filter(|d| !d.is_empty()).map(|d| format!(" ({d})")).unwrap_or_default()
            ),
            None => "never".into(),
        };
        outln!("    next {}   last {}", when(r.next_run_at), last);
        if let Some(p) = &r.pending_plan_id {
            outln!("    waiting for an approval of plan {p}: tabflow apply {p} --approve all");
        }
    }
    Ok(Code::Ok)
}
