//! `tabflow mcp`: the MCP server (`tabflow-mcp`) on stdio for AI assistants, over the
//! application service with the store, policy and site of the usual flags (the built-in demo
//! site when no server is configured). Nothing but JSON-RPC is written to stdout; notes and
//! logs go to stderr. Limits from the environment: `TABFLOW_MCP_READ_ONLY=1` (only tools that
//! change nothing), `TABFLOW_MCP_TOOLS`, `TABFLOW_MCP_MAX_PLAN_ITEMS`, `TABFLOW_MCP_PAGE_SIZE`.

use std::sync::Arc;

use clap::Args;

use super::connect::Connect;
use super::serve::close_when_free;
use super::workflow::{StoreArgs, notify_delivery, open_app, whoami};
use crate::exit::{self, Code, usage};

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The web console's base URL (where `tabflow serve` listens), for approval links.
    #[arg(long, env = "TABFLOW_CONSOLE_URL", default_value = "http://127.0.0.1:8080")]
    console_url: String,
    /// Only the tools that change nothing (same as TABFLOW_MCP_READ_ONLY=1).
    #[arg(long)]
    read_only: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(a: McpArgs) -> anyhow::Result<Code> {
    let mut limits = tabflow_mcp::Limits::from_settings(|k| std::env::var(k).ok()).map_err(|(m, h)| usage(m, h))?;
    limits.read_only |= a.read_only;
    let console_url = a.console_url.trim().trim_end_matches('/').to_string();
    if !(console_url.starts_with("http://") || console_url.starts_with("https://")) {
        return Err(usage(
            format!("--console-url '{console_url}' is not an http(s) URL"),
            "give where `tabflow serve` listens, e.g. http://127.0.0.1:8080",
        ));
    }
    let policy = a.store.policy()?;
    let delivery = notify_delivery()?;
    let app = Arc::new(open_app(Some(&a.connect), &a.store, policy, delivery).await?);
    let settings = tabflow_mcp::Settings { actor: tabflow_mcp::mcp_actor(&whoami()), console_url, limits };
    let served = tabflow_mcp::serve_stdio(app.clone(), settings).await;
    // Runs started by the session let go of the service shortly after the connection ends;
    // wait for them a little before saving the demo site.
    close_when_free(app).await?;
    served.map_err(|e| exit::fail(e, "check the MCP client's configuration (it starts `tabflow mcp` on stdio)"))?;
    Ok(Code::Ok)
}
