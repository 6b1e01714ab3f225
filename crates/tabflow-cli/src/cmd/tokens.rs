//! `tabflow tokens create|list|revoke`: the API tokens of `tabflow serve`. A new token is
//! printed once, alone on the last line of stdout; the store keeps only its SHA-256.

use clap::{Args, Subcommand};

use super::workflow::{StoreArgs, open_app, whoami};
use crate::exit::{self, Code};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a token (printed once, alone on the last line of stdout).
    Create(CreateArgs),
    /// The tokens, with their roles (never the tokens themselves).
    List(ListArgs),
    /// Refuse a token from now on.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The token's name, as the audit log records its holder's actions (e.g. alice-approver).
    name: String,
    /// viewer (reads), requester (plans, answers, asks for approval, starts approved runs),
    /// approver (approves or rejects, starts approved runs, rolls back) or admin (everything).
    #[arg(long)]
    role: String,
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
pub struct RevokeArgs {
    name: String,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(c: Command) -> anyhow::Result<Code> {
    match c {
        Command::Create(a) => {
            // The role is checked before the store is opened.
            let role = tabflow_app::Role::parse(&a.role).map_err(exit::app)?;
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let made = app.create_token(&a.name, role, &whoami()).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let (info, token) = made?;
            outln!("Token '{}' ({}) made. It is shown once; keep it somewhere safe:", info.name, info.role.as_str());
            outln!("{token}");
            Ok(Code::Ok)
        }
        Command::List(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let rows = app.tokens().await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let rows = rows?;
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                outln!("No tokens. Make one with: tabflow tokens create NAME --role requester");
            } else {
                for t in &rows {
                    let state = match t.revoked_at {
                        Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                        None => "live".into(),
                    };
                    outln!(
                        "{:<24} {:<9} {}  (by {}, {})",
                        t.name,
                        t.role.as_str(),
                        state,
                        t.created_by,
                        t.created_at.format("%Y-%m-%d %H:%M")
                    );
                }
            }
            Ok(Code::Ok)
        }
        Command::Revoke(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let r = app.revoke_token(&a.name, &whoami()).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            r?;
            outln!("Revoked {}.", a.name);
            Ok(Code::Ok)
        }
    }
}
