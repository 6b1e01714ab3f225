//! An emulator serving the demo site, a service connected to it, and an MCP client session
//! on the server over an in-memory pipe.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, CustomNotification, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, Implementation, UrlElicitationCapability,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RunningService};
use rmcp::{ClientHandler, ErrorData, ServiceExt};
use serde_json::Value;
use tabflow_app::{App, Connection, Options};
use tabflow_client::{Config, Credentials, Secret};
use tabflow_mcp::{Limits, Settings, TabflowMcp};

pub struct Env {
    pub emu: tabflow_emulator::Running,
    pub app: Arc<App>,
    pub client: RunningService<RoleClient, Client>,
    pub _dir: tempfile::TempDir,
}

pub async fn env(limits: Limits) -> Env {
    env_with(limits, Client::default()).await
}

/// What the test's person answers a URL-mode elicitation: (message, url, id) → action.
pub type OnUrl =
    Arc<dyn Fn(String, String, String) -> Pin<Box<dyn Future<Output = ElicitationAction> + Send>> + Send + Sync>;

/// The test's MCP client. With `on_url` it declares URL-mode elicitation and answers each one
/// with what `on_url` returns; it records the elicitations it was sent and the ids of
/// `notifications/elicitation/complete`.
#[derive(Clone, Default)]
pub struct Client {
    pub on_url: Option<OnUrl>,
    /// (message, url, elicitation id) of each URL-mode elicitation.
    pub elicited: Arc<Mutex<Vec<(String, String, String)>>>,
    /// Elicitation ids the server said are complete.
    pub completed: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        if self.on_url.is_some() {
            caps.elicitation = Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
        }
        ClientConfig::new(caps, Implementation::new("tabflow-test", "0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let (Some(on_url), ElicitRequestParams::UrlElicitationParams { message, url, elicitation_id, .. }) =
            (&self.on_url, request)
        else {
            return Err(ErrorData::invalid_request("this client answers URL-mode elicitations only", None));
        };
        self.elicited.lock().unwrap().push((message.clone(), url.clone(), elicitation_id.clone()));
        Ok(ElicitResult::new(on_url(message, url, elicitation_id).await))
    }

    async fn on_custom_notification(&self, n: CustomNotification, _context: NotificationContext<RoleClient>) {
        if n.method == "notifications/elicitation/complete"
            && let Some(id) = n.params.as_ref().and_then(|p| p["elicitationId"].as_str())
        {
            self.completed.lock().unwrap().push(id.to_string());
        }
    }
}

pub async fn env_with(limits: Limits, handler: Client) -> Env {
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
    let client = handler.serve(client_io).await.unwrap();
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
