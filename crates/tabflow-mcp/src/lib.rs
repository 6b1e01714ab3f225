//! `tabflow mcp`: the MCP server AI assistants use to plan Tableau admin work, over the
//! application service ([`tabflow_app::App`]), built on the official Rust SDK (`rmcp`).
//!
//! The tools (names are a contract, DESIGN.md §6): `plan_workflow`, `list_templates`,
//! `run_template`, `answer_questions`, `get_plan`, `query_site`, `request_approval`,
//! `start_run`, `run_status`, `rollback_run`, `list_runs`. Each has a JSON Schema for its
//! arguments and its structured output, and the MCP annotations `readOnlyHint` /
//! `destructiveHint`. **No tool approves**: `request_approval` records a request and answers
//! the web console's page where a person with the approver role decides (a client with
//! URL-mode elicitation is asked to open it; its answer approves nothing, the store's decision
//! is read); `start_run` runs only what such a person approved and otherwise says what is
//! missing; `rollback_run` makes a run's rollback plan and requests its approval (it never
//! undoes a run itself; `start_run` on the approved rollback plan does).
//!
//! Mistakes are answered, never acted on: an unknown tool, an argument of the wrong type or an
//! unknown argument are JSON-RPC errors (invalid params) naming the argument and what it
//! takes; an unknown plan or run id, a plan made for another site, a plan without approval
//! are tool errors (`isError`) with `{"error": {"code", "message", "hint"}}`; nothing changes.
//!
//! Limits an admin sets ([`Limits`]): read-only (`TABFLOW_MCP_READ_ONLY=1`: only the tools
//! that change nothing are listed or callable), the tools allowed, the most items a plan may
//! have to be requested or run through MCP, and the page size of items, rows and templates
//! (longer lists are paged with a cursor, never cut; runs too).

mod args;
mod extras;
mod server;
mod views;

pub use server::{TOOLS, TabflowMcp};
pub use views::{PlanView, QueryView, RunView};

use std::sync::Arc;

use tabflow_app::App;

/// What an admin allows through MCP.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Only tools that change nothing (`TABFLOW_MCP_READ_ONLY=1`).
    pub read_only: bool,
    /// Only these tools (`TABFLOW_MCP_TOOLS=a,b`); `None` = all.
    pub allowed: Option<Vec<String>>,
    /// A plan with more changed items than this is not requested or run through MCP
    /// (`TABFLOW_MCP_MAX_PLAN_ITEMS`); `None` = no limit.
    pub max_plan_items: Option<usize>,
    /// Items of a plan and rows of an answer per page (`TABFLOW_MCP_PAGE_SIZE`, default 100).
    pub page_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { read_only: false, allowed: None, max_plan_items: None, page_size: 100 }
    }
}

impl Limits {
    /// The limits from settings (`TABFLOW_MCP_*`), read with `get`; a bad value is an error
    /// naming the setting and what it takes.
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Result<Limits, (String, String)> {
        let mut l = Limits::default();
        if let Some(v) = get("TABFLOW_MCP_READ_ONLY") {
            l.read_only = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "" | "0" | "false" | "no" => false,
                other => {
                    return Err((
                        format!("TABFLOW_MCP_READ_ONLY is '{other}'"),
                        "set TABFLOW_MCP_READ_ONLY=1 (read-only) or 0".into(),
                    ));
                }
            };
        }
        if let Some(v) = get("TABFLOW_MCP_TOOLS").filter(|v| !v.trim().is_empty()) {
            let list: Vec<String> = v.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
            if let Some(bad) = list.iter().find(|t| !TOOLS.iter().any(|(n, _)| n == t)) {
                return Err((
                    format!("TABFLOW_MCP_TOOLS names '{bad}', which is not a tabflow tool"),
                    format!("list some of: {}", TOOLS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
                ));
            }
            l.allowed = Some(list);
        }
        let number = |k: &str, v: String| -> Result<usize, (String, String)> {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| (format!("{k} is '{v}'"), format!("set {k} to a whole number above 0")))
        };
        if let Some(v) = get("TABFLOW_MCP_MAX_PLAN_ITEMS").filter(|v| !v.trim().is_empty()) {
            l.max_plan_items = Some(number("TABFLOW_MCP_MAX_PLAN_ITEMS", v)?);
        }
        if let Some(v) = get("TABFLOW_MCP_PAGE_SIZE").filter(|v| !v.trim().is_empty()) {
            l.page_size = number("TABFLOW_MCP_PAGE_SIZE", v)?;
        }
        Ok(l)
    }
}

/// Everything the server needs besides the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who the assistant acts for, as recorded in plans, requests, runs and the audit log
    /// (e.g. `alice via mcp`).
    pub actor: String,
    /// The web console's base URL (`http://127.0.0.1:8080`), for approval links.
    pub console_url: String,
    pub limits: Limits,
}

/// The actor of an assistant's actions for a person: `NAME via mcp`.
pub fn mcp_actor(name: &str) -> String {
    format!("{name} via mcp")
}

/// Who calls over HTTP: put in the request's extensions by the server that authenticated the
/// caller's token (`tabflow serve`). Its role decides the tools it may call (a viewer reads;
/// planning, requesting and starting need the roles the HTTP API asks for); its name is the
/// actor (`NAME via mcp`).
#[derive(Debug, Clone)]
pub struct HttpCaller {
    pub name: String,
    pub role: tabflow_app::Role,
}

/// The MCP service over streamable HTTP, for mounting at `/mcp` behind the server's token
/// check (which must put an [`HttpCaller`] in every request's extensions; a request without
/// one is refused). Approval links are relative to the server (`/console/plans/…`).
pub fn http_service(
    app: Arc<App>,
    limits: Limits,
) -> rmcp::transport::StreamableHttpService<
    TabflowMcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    let settings = Settings { actor: String::new(), console_url: String::new(), limits };
    let config = rmcp::transport::StreamableHttpServerConfig::default();
    rmcp::transport::StreamableHttpService::new(
        move || Ok(TabflowMcp::new(app.clone(), settings.clone()).over_http()),
        Arc::new(Default::default()),
        config,
    )
}

/// Serves MCP on stdin/stdout until the client closes the connection. Nothing but JSON-RPC
/// is written to stdout.
pub async fn serve_stdio(app: Arc<App>, settings: Settings) -> Result<(), String> {
    use rmcp::ServiceExt;
    let server = TabflowMcp::new(app, settings);
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| format!("MCP start failed: {e}"))?;
    running.waiting().await.map_err(|e| format!("the MCP connection ended with an error: {e}"))?;
    Ok(())
}
