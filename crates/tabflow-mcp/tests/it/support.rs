//! An emulator serving the demo site, a service connected to it, and an MCP client session
//! on the server over an in-memory pipe.

use std::sync::Arc;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::{ErrorData, ServiceExt};
use serde_json::Value;
use tabflow_app::{App, Connection, Options};
use tabflow_client::{Config, Credentials, Secret};
use tabflow_mcp::{Limits, Settings, TabflowMcp};

pub struct Env {
    pub emu: tabflow_emulator::Running,
    pub app: Arc<App>,
    pub client: RunningService<RoleClient, ()>,
    pub _dir: tempfile::TempDir,
}

pub async fn env(limits: Limits) -> Env {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let mut options = Options::new(dir.path());
    options.connection = Connection::Server(Config::new(emu.url.clone(), "demo", creds));
    options.store = Some(dir.path().join("tabflow.db").display().to_string());
    let app = Arc::new(App::open(options).await.unwrap());
    let settings =
        Settings { actor: tabflow_mcp::mcp_actor("assistant"), console_url: "http://127.0.0.1:8080".into(), limits };
    let server = TabflowMcp::new(app.clone(), settings);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let client = ().serve(client_io).await.unwrap();
    Env { emu, app, client, _dir: dir }
}

/// What a call answered: a tool result, or a JSON-RPC error.
pub enum Answer {
    Ok(Value),
    ToolError(Value),
    Protocol(ErrorData),
}

impl Env {
    pub async fn call(&self, name: &str, args: Value) -> Answer {
        let mut p = CallToolRequestParams::new(name.to_string());
        if let Value::Object(o) = args {
            p = p.with_arguments(o);
        }
        match self.client.call_tool(p).await {
            Ok(r) => result(r),
            Err(rmcp::ServiceError::McpError(e)) => Answer::Protocol(e),
            Err(e) => panic!("{name}: transport error {e}"),
        }
    }

    /// A call that must succeed: its structured content.
    pub async fn ok(&self, name: &str, args: Value) -> Value {
        match self.call(name, args.clone()).await {
            Answer::Ok(v) => v,
            Answer::ToolError(e) => panic!("{name} {args}: tool error {e}"),
            Answer::Protocol(e) => panic!("{name} {args}: protocol error {e:?}"),
        }
    }

    /// A call that must be a tool error: its `error` object.
    pub async fn refused(&self, name: &str, args: Value) -> Value {
        match self.call(name, args.clone()).await {
            Answer::ToolError(e) => {
                let err = e["error"].clone();
                assert!(err["message"].is_string() && err["hint"].is_string(), "{e}");
                err
            }
            Answer::Ok(v) => panic!("{name} {args} was not refused: {v}"),
            Answer::Protocol(e) => panic!("{name} {args}: protocol error {e:?}"),
        }
    }

    /// A call that must be a JSON-RPC invalid-params error: its message.
    pub async fn invalid(&self, name: &str, args: Value) -> String {
        match self.call(name, args.clone()).await {
            Answer::Protocol(e) => {
                assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{e:?}");
                e.message.to_string()
            }
            Answer::Ok(v) | Answer::ToolError(v) => panic!("{name} {args} was answered: {v}"),
        }
    }

    pub fn workbooks(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> =
            self.emu.emulator.snapshot().workbooks.iter().map(|w| (w.id.clone(), w.project_id.clone())).collect();
        v.sort();
        v
    }
}

fn result(r: CallToolResult) -> Answer {
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    if r.is_error == Some(true) { Answer::ToolError(v) } else { Answer::Ok(v) }
}
