//! A server over the demo site (emulator on 127.0.0.1:0), a fresh SQLite store, and one token
//! per role.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tabflow_app::{App, Connection, Options, Policy, Role};
use tabflow_client::{Config, Credentials, Secret};

pub struct Env {
    pub emu: tabflow_emulator::Running,
    pub app: Arc<App>,
    pub server: tabflow_serve::Running,
    pub http: reqwest::Client,
    /// Token by name: `viewer`, `requester`, `approver`, `approver2`, `admin`.
    pub tokens: HashMap<&'static str, String>,
    pub _dir: tempfile::TempDir,
}

pub const ROLES: [(&str, Role); 5] = [
    ("viewer", Role::Viewer),
    ("requester", Role::Requester),
    ("approver", Role::Approver),
    ("approver2", Role::Approver),
    ("admin", Role::Admin),
];

pub async fn env(policy: Policy) -> Env {
    env_with(policy, |_| {}).await
}

/// [`env`] with the service's options changed by `change` (e.g. planted secrets).
pub async fn env_with(policy: Policy, change: impl FnOnce(&mut Options)) -> Env {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let mut options = Options::new(dir.path());
    options.connection = Connection::Server(Config::new(emu.url.clone(), "demo", creds));
    options.store = Some(dir.path().join("tabflow.db").display().to_string());
    options.policy = policy;
    change(&mut options);
    let app = Arc::new(App::open(options).await.unwrap());
    let mut tokens = HashMap::new();
    for (name, role) in ROLES {
        let (_, token) = app.create_token(name, role, "test-setup").await.unwrap();
        tokens.insert(name, token);
    }
    let server = tabflow_serve::start(app.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    Env { emu, app, server, http: reqwest::Client::new(), tokens, _dir: dir }
}

/// An answer: status, body as JSON (Null when not JSON) and as text.
pub struct Answer {
    pub status: StatusCode,
    pub json: Value,
    pub text: String,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

impl Env {
    pub fn token(&self, name: &str) -> &str {
        &self.tokens[name]
    }

    /// A request with a raw body; checks `Cache-Control: no-store` and no CORS header on
    /// every answer.
    pub async fn raw(&self, method: Method, path: &str, token: Option<&str>, body: Option<(&str, Vec<u8>)>) -> Answer {
        let mut rb = self.http.request(method, format!("{}{path}", self.server.url));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some((ctype, bytes)) = body {
            rb = rb.header("content-type", ctype).body(bytes);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        assert_eq!(
            r.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}: every answer has Cache-Control: no-store"
        );
        assert!(r.headers().get("access-control-allow-origin").is_none(), "{path}: no CORS");
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() && status != StatusCode::METHOD_NOT_ALLOWED {
            assert!(json["error"]["message"].is_string() && json["error"]["hint"].is_string(), "{path}: {text}");
        }
        Answer { status, json, text }
    }

    /// Plans `request` as `token` and answers every question (`q1` with `archive-all`, others
    /// with their first choice): the answered plan.
    pub async fn answered_plan(&self, token: &str, request: &str) -> Value {
        let a = self.post("/api/v1/plans", Some(token), &serde_json::json!({"request": request})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let questions = a.json["questions"].as_array().cloned().unwrap_or_default();
        if questions.is_empty() {
            return a.json;
        }
        let answers: std::collections::BTreeMap<String, String> = questions
            .iter()
            .map(|q| {
                let id = q["id"].as_str().unwrap().to_string();
                let choice =
                    if id == "q1" { "archive-all".into() } else { q["choices"][0].as_str().unwrap_or("").to_string() };
                (id, choice)
            })
            .collect();
        let path = format!("/api/v1/plans/{}/answers", a.json["id"].as_str().unwrap());
        let a = self.post(&path, Some(token), &serde_json::json!(answers)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.json
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.raw(Method::GET, path, token, None).await
    }

    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.raw(method, path, token, Some(("application/json", body.to_string().into_bytes()))).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.send(Method::POST, path, token, body).await
    }

    /// A run's Server-Sent Events, read to the end of the stream: (event name, data) pairs.
    pub async fn events(&self, run_id: &str, token: &str) -> Vec<(String, Value)> {
        let r = self
            .http
            .get(format!("{}/api/v1/runs/{run_id}/events", self.server.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let text = r.text().await.unwrap();
        let mut out = vec![];
        for block in text.split("\n\n") {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if let Some(n) = name {
                out.push((n, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
        out
    }
}
