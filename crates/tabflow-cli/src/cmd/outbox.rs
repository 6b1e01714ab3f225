//! `tabflow outbox list`: the notifications runs wrote (sent, dry or failed).

use clap::{Args, Subcommand};

use super::workflow::StoreArgs;
use crate::exit::{Code, fail};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Messages, newest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the messages of this run.
    #[arg(long)]
    run: Option<String>,
    #[arg(long)]
    json: bool,
    /// Print each message's body too.
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(c: Command) -> anyhow::Result<Code> {
    match c {
        Command::List(a) => {
            let store = a.store.open().await?;
            let rows = store.outbox(a.run.as_deref()).await.map_err(|e| fail(e.to_string(), "check the state store"));
            store.close().await;
            let rows = rows?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(Code::Ok);
            }
            if rows.is_empty() {
                println!("The outbox is empty.");
            }
            for r in &rows {
                println!(
                    "{:>5} {} {:<7} {} <{}> — {}   ({})",
                    r.id,
                    r.created_at.format("%Y-%m-%d %H:%M"),
                    r.status,
                    r.recipient_name,
                    r.recipient_email,
                    r.subject,
                    r.run_id
                );
                if a.full {
                    for line in r.body.lines() {
                        println!("        {line}");
                    }
                }
                if r.status != "sent" && !r.detail.is_empty() {
                    println!("        {}", r.detail);
                }
            }
            Ok(Code::Ok)
        }
    }
}
