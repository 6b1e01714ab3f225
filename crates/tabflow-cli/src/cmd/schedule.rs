//! `tabflow schedule list|remove`: recurring reviews stored by applied plans ("audit
//! permissions on sensitive content every month"). Running them on time is the scheduler
//! worker's job, which is not in this build.

use clap::{Args, Subcommand};

use super::workflow::{StoreArgs, open_app};
use crate::exit::{self, Code};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stored recurring reviews.
    List(ListArgs),
    /// Forget one.
    Remove(RemoveArgs),
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
        Command::List(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let rows = app.schedules().await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let rows = rows?;
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                outln!(
                    "No recurring reviews. Ask for one, e.g. tabflow plan \"audit permissions on sensitive content every month\"."
                );
            } else {
                for r in &rows {
                    outln!(
                        "{}  {:<8} {}  (by {}, {}; last run: {})",
                        r.id,
                        r.cadence,
                        r.request,
                        r.created_by,
                        r.created_at.format("%Y-%m-%d"),
                        r.last_run_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "never".into())
                    );
                }
                outln!("note: `tabflow worker` (which runs them on time) is not in this build.");
            }
            Ok(Code::Ok)
        }
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
