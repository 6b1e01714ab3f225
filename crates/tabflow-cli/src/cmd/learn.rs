//! `tabflow learn show|reset`: what tabflow learned from earlier choices (owners chosen in
//! offboardings, answers to questions, items removed from approvals) and forgetting it.

use std::collections::BTreeMap;
use std::io::Write;

use clap::Subcommand;
use serde_json::{Value, json};
use tabflow_engine::store::LearningRow;
use tabflow_workflows::learn;

use super::workflow::{StoreArgs, open_app};
use crate::exit::{self, Code};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List what was learned and what it changes in future plans.
    Show {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Forget everything learned: plans suggest and default as they did at first.
    Reset {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The newest owner per project ("" = by team only), as the planner will use them.
fn owners(rows: &[LearningRow]) -> BTreeMap<String, &LearningRow> {
    let mut out = BTreeMap::new();
    for r in rows.iter().filter(|r| r.kind == learn::OWNER) {
        out.entry(r.key.clone()).or_insert(r);
    }
    out
}

fn teams(r: &LearningRow) -> String {
    r.context
        .get("teams")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Show { json, store } => {
            let app = open_app(None, &store, Default::default(), Default::default()).await?;
            let rows = app.learning().await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let rows = rows?;
            let learned = learn::Learned::new(rows.clone());
            let owners = owners(&rows);
            let mut questions: BTreeMap<&str, Vec<&LearningRow>> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.kind == learn::ANSWER) {
                questions.entry(r.key.as_str()).or_default().push(r);
            }
            let removed: Vec<&LearningRow> = rows.iter().filter(|r| r.kind == learn::REMOVED).collect();
            let mut out = crate::term::stdout();
            if json {
                let defaults: Vec<Value> = questions
                    .iter()
                    .filter_map(|(k, rs)| {
                        let text = rs[0].context.get("question").and_then(Value::as_str).unwrap_or(k);
                        let choices: Vec<String> = rs.iter().map(|r| r.value.clone()).collect();
                        learned.default_answer(text, &choices).map(|d| json!({"question": text, "default": d}))
                    })
                    .collect();
                let doc = json!({
                    "format": "tabflow-learning/1",
                    "owners": owners.values().map(|r| json!({"project": if r.key.is_empty() { Value::Null } else { json!(r.key) }, "teams": r.context.get("teams"), "new_owner": r.value, "source": r.context.get("source"), "at": r.at})).collect::<Vec<_>>(),
                    "defaults": defaults,
                    "removed": removed.iter().map(|r| json!({"item": r.key, "name": r.value, "at": r.at})).collect::<Vec<_>>(),
                    "records": rows,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
                return Ok(Code::Ok);
            }
            if rows.is_empty() {
                writeln!(out, "Nothing learned yet: plans use their own rules for owners and defaults.")?;
                return Ok(Code::Ok);
            }
            writeln!(out, "Learned from {} choices (`tabflow learn reset` forgets them)", rows.len())?;
            if !owners.is_empty() {
                writeln!(out, "Owners suggested first in offboardings")?;
                for (project, r) in &owners {
                    let scope = if project.is_empty() { "(projects)".to_string() } else { project.clone() };
                    let source = r.context.get("source").and_then(Value::as_str).unwrap_or("");
                    writeln!(
                        out,
                        "  {scope:<28} → {:<14} teams: {}  ({source}, {})",
                        r.value,
                        teams(r),
                        r.at.format("%Y-%m-%d")
                    )?;
                }
            }
            if !questions.is_empty() {
                writeln!(out, "Answers")?;
                for (k, rs) in &questions {
                    let text = rs[0].context.get("question").and_then(Value::as_str).unwrap_or(k);
                    let choices: Vec<String> = rs.iter().map(|r| r.value.clone()).collect();
                    let default =
                        learned.default_answer(text, &choices).map(|d| format!("default now '{d}'")).unwrap_or_else(
                            || format!("no default yet (needs the same answer {} times)", learn::ANSWER_STREAK),
                        );
                    let last: Vec<&str> = rs.iter().take(5).map(|r| r.value.as_str()).collect();
                    writeln!(out, "  {text}\n      answered {} (newest first) — {default}", last.join(", "))?;
                }
            }
            if !removed.is_empty() {
                writeln!(out, "Removed from approvals (listed last next time)")?;
                for r in &removed {
                    writeln!(out, "  {} ({})  {}", r.value, r.key, r.at.format("%Y-%m-%d"))?;
                }
            }
            Ok(Code::Ok)
        }
        Command::Reset { store } => {
            let app = open_app(None, &store, Default::default(), Default::default()).await?;
            let n = app.reset_learning().await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            outln!("Forgot {} learned choices; plans suggest owners and defaults by their own rules again.", n?);
            Ok(Code::Ok)
        }
    }
}
