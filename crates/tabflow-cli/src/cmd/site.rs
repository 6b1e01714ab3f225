//! `tabflow site snapshot|diff`: a whole site as a `tabflow-site/1` file, and the
//! differences between two such files.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tabflow_site::diff;

use super::connect::{Connect, client_error};
use super::emulator::load_snapshot;
use crate::exit::{Code, fail};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a whole site through the API and write it as a tabflow-site/1 snapshot.
    Snapshot(Snapshot),
    /// Compare two snapshots (exit 0 when equal, 1 when not).
    Diff(Diff),
}

#[derive(Debug, Args)]
pub struct Snapshot {
    /// Output file (`-` for standard output).
    #[arg(long, short)]
    output: PathBuf,
    /// Do not read last access from Admin Insights.
    #[arg(long)]
    no_usage: bool,
    #[command(flatten)]
    connect: Connect,
}

#[derive(Debug, Args)]
pub struct Diff {
    a: PathBuf,
    b: PathBuf,
    /// Print {"equal": bool, "changes": [...]} (with --match-recreated also "recreated").
    #[arg(long)]
    json: bool,
    /// Compare re-created items as the items they replace: users by name, workbooks and
    /// datasources by project and name (with their views by name), subscriptions by user,
    /// content and subject. A rollback of an account deletion, or of a staged delete after its
    /// purge, re-creates them under new ids, which Tableau cannot avoid. The mapped ids are
    /// listed.
    #[arg(long)]
    match_recreated: bool,
}

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Snapshot(s) => snapshot(s).await,
        Command::Diff(d) => {
            let a = load_snapshot(&d.a)?;
            let mut b = load_snapshot(&d.b)?;
            let recreated = if d.match_recreated { diff::match_recreated(&a, &mut b) } else { vec![] };
            let changes = diff::diff(&a, &b);
            let not_read = diff::not_read(&a, &b);
            let mut out = crate::term::stdout();
            if d.json {
                let mut v = serde_json::json!({"equal": changes.is_empty(), "changes": changes});
                if !not_read.is_empty() {
                    v["not_compared"] = serde_json::to_value(&not_read)?;
                }
                if d.match_recreated {
                    v["recreated"] = serde_json::to_value(&recreated)?;
                }
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for r in &recreated {
                    writeln!(
                        out,
                        "= {} {:?} re-created: {} → {} (compared as the same {})",
                        r.resource, r.name, r.before_id, r.after_id, r.resource
                    )?;
                }
                if !not_read.is_empty() {
                    writeln!(out, "not compared (a snapshot could not read them): {}", not_read.join(", "))?;
                }
                write!(out, "{}", diff::render_text(&changes))?;
            }
            Ok(if changes.is_empty() { Code::Ok } else { Code::Error })
        }
    }
}

async fn snapshot(s: Snapshot) -> anyhow::Result<Code> {
    let session = s.connect.open().await?;
    let started = std::time::Instant::now();
    let options = tabflow_client::snapshot::Options { usage: !s.no_usage };
    let server = session.client.config().server.clone();
    // Streamed: permission rules go to the file as they arrive. A file is written under a
    // temporary name and renamed when complete, so a failed read leaves the target untouched.
    let written = if s.output.as_os_str() == "-" {
        tabflow_client::snapshot::write(&session.client, &options, std::io::stdout().lock()).await
    } else {
        let mut partial = s.output.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = tabflow_engine::private::create(&partial)
            .map_err(|e| fail(format!("cannot write {}: {e}", partial.display()), "check the output path"))?;
        let r = tabflow_client::snapshot::write(&session.client, &options, file).await;
        match &r {
            Ok(_) => std::fs::rename(&partial, &s.output)
                .map_err(|e| fail(format!("cannot write {}: {e}", s.output.display()), "check the output path"))?,
            Err(_) => {
                let _ = std::fs::remove_file(&partial);
            }
        }
        r
    };
    let summary = match written {
        Ok(summary) => summary,
        Err(tabflow_client::snapshot::WriteError::Tableau(e)) => return Err(client_error(e, &server)),
        Err(tabflow_client::snapshot::WriteError::Output(e)) => {
            return Err(fail(format!("cannot write {}: {e}", s.output.display()), "check the output path"));
        }
    };
    let calls = session.client.calls();
    errln!(
        "snapshot: {} workbooks, {} flows, {} datasources, {} users, {} groups, {} projects, {} permission rules, {} subscriptions — {} API calls in {:.1} s, peak RSS {:.0} MiB",
        summary.workbooks,
        summary.flows,
        summary.datasources,
        summary.users,
        summary.groups,
        summary.projects,
        summary.permission_rules,
        summary.subscriptions,
        calls,
        started.elapsed().as_secs_f64(),
        super::bench::peak_rss_mib().unwrap_or(0.0)
    );
    session.finish().await.map_err(crate::exit::app)?;
    Ok(Code::Ok)
}
