//! `tabflow plan --llm` through the real binary: a fake LLM server (axum on 127.0.0.1:0 in
//! this process, real HTTP) answers from a script and records what it receives; the
//! emulator (`tabflow emulator serve`) is the site. Checks: the model's intents are used;
//! an invalid answer is retried and then replaced by the rule-based parser, and the plan
//! and the terminal say so; a server that is down falls back; Anthropic's format works; no
//! request body carries the LLM key or the Tableau PAT secret.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Emu, cmd, serve_with, step, text};

const PAT_SECRET: &str = "pat-Secret-5r8Kq2";
const LLM_KEY: &str = "sk-llm-key-77Hx";

fn serve() -> Emu {
    serve_with(&["--pat-secret", PAT_SECRET])
}

/// The fake model: scripted answer texts (the last repeats) and the bodies received.
#[derive(Clone)]
struct Fake {
    provider: &'static str,
    script: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn reply(State(f): State<Fake>, headers: HeaderMap, body: axum::Json<Value>) -> axum::Json<Value> {
    let h: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or(""))).collect();
    f.seen.lock().unwrap().push((h.join("\n"), body.0));
    let mut s = f.script.lock().unwrap();
    let text = if s.len() > 1 { s.remove(0) } else { s[0].clone() };
    axum::Json(match f.provider {
        "anthropic" => json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": text}]}),
        _ => json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}),
    })
}

/// Starts the fake model on its own runtime thread; answers its URL.
fn fake_llm(provider: &'static str, script: &[&str]) -> (String, Fake) {
    let fake = Fake {
        provider,
        script: Arc::new(Mutex::new(script.iter().map(|s| s.to_string()).collect())),
        seen: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(reply))
        .route("/v1/messages", post(reply))
        .with_state(fake.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (url, fake)
}

fn plan(home: &Path, emu: &Emu, llm_url: &str, provider: &str, request: &str) -> (Value, String) {
    let o = cmd(home, emu, &["plan", "--llm", request, "--json"])
        .env("TABLEAU_PAT_SECRET", PAT_SECRET)
        .env("TABFLOW_LLM_URL", llm_url)
        .env("TABFLOW_LLM_PROVIDER", provider)
        .env("TABFLOW_LLM_MODEL", "fake-small")
        .env("TABFLOW_LLM_API_KEY", LLM_KEY)
        .env("TABFLOW_LLM_TIMEOUT_SECS", "5")
        .output()
        .unwrap();
    let stderr = text(&o.stderr);
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not a plan ({e}): {}\n{stderr}", text(&o.stdout)));
    (v, stderr)
}

fn notes(plan: &Value) -> String {
    plan["notes"]
        .as_array()
        .map(|n| n.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Phrased so that the rule-based parser reads less than the model answers (no new owner,
/// no removal of access), which tells the two apart.
const REQUEST: &str = "John Smith from Marketing is leaving us";
const MODEL: &str = r#"{"intents": [{"name": "offboard-user", "params": {"user": "John Smith", "team": "Marketing", "new_owner": "Tom Baker", "remove_access": true}}]}"#;

#[test]
fn the_models_intents_are_planned_and_grounded_by_the_planner() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let (url, fake) = fake_llm("openai", &[MODEL]);
    let (p, stderr) = plan(home.path(), &emu, &url, "openai", REQUEST);
    let model: Value = serde_json::from_str(MODEL).unwrap();
    assert_eq!(p["intents"], model["intents"], "{p}");
    assert_ne!(
        serde_json::to_value(tabflow_nl::parse(REQUEST, today()).intents).unwrap(),
        model["intents"],
        "the rule-based parser must read REQUEST differently for this test to tell them apart"
    );
    // Grounded by the planner: the new owner is Tom Baker's site user, access removal planned.
    let transfer = step(&p, "transfer-ownership").unwrap();
    let reason = transfer["items"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Tom Baker (the new owner you named)"), "{reason}");
    assert!(p["steps"].as_array().unwrap().iter().any(|s| s["kind"] == "remove-access"), "{p}");
    assert!(notes(&p).contains("intents from the openai model 'fake-small'"), "{}", notes(&p));
    assert!(stderr.contains("note: intents from the openai model"), "{stderr}");
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

#[test]
fn invalid_twice_or_server_down_falls_back_and_says_so() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let rule = serde_json::to_value(tabflow_nl::parse(REQUEST, today()).intents).unwrap();

    let bad = r#"{"intents": [{"name": "offboard-user", "params": {"user": "John Smith", "api": "PUT /users"}}]}"#;
    let (url, fake) = fake_llm("openai", &[bad, "not json at all"]);
    let (p, stderr) = plan(home.path(), &emu, &url, "openai", REQUEST);
    assert_eq!(p["intents"], rule, "{p}");
    let n = notes(&p);
    assert!(n.contains("invalid answer (try 1 of 2)") && n.contains("unknown field \"api\""), "{n}");
    assert!(
        n.contains("LLM not used: the model's answer was invalid twice; the intents come from the rule-based parser"),
        "{n}"
    );
    assert!(stderr.contains("LLM not used"), "{stderr}");
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one retry only");
    let retry = seen[1].1["messages"].as_array().unwrap();
    assert!(retry.last().unwrap()["content"].as_str().unwrap().contains("unknown field \"api\""), "{retry:?}");

    // Nobody listening.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (p, stderr) = plan(home.path(), &emu, &format!("http://{addr}"), "openai", REQUEST);
    assert_eq!(p["intents"], rule);
    assert!(notes(&p).contains("cannot be reached"), "{}", notes(&p));
    assert!(stderr.contains("LLM not used: the LLM server at"), "{stderr}");
}

#[test]
fn anthropic_format_and_no_secret_in_any_request_body() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let request = format!("{REQUEST} (my Tableau token secret is {PAT_SECRET}, LLM key {LLM_KEY})");
    let invalid = r#"{"intents": [{"name": "offboard-user", "params": {"user": 7}}]}"#;
    let (url, fake) = fake_llm("anthropic", &[invalid, &format!("```json\n{MODEL}\n```")]);
    let (p, _) = plan(home.path(), &emu, &url, "anthropic", &request);
    let model: Value = serde_json::from_str(MODEL).unwrap();
    assert_eq!(p["intents"], model["intents"], "second answer used: {}", notes(&p));
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (headers, body) in seen.iter() {
        assert!(
            headers.contains(&format!("x-api-key: {LLM_KEY}")) && headers.contains("anthropic-version: "),
            "{headers}"
        );
        let text = body.to_string();
        assert!(!text.contains(PAT_SECRET), "the PAT secret reached the model: {text}");
        assert!(!text.contains(LLM_KEY), "the API key reached the model body: {text}");
        assert!(text.contains("my Tableau token secret is [redacted], LLM key [redacted]"), "{text}");
    }
    // Nor is either secret in the plan the user keeps, nor in the plan file in the store.
    let plan_text = p.to_string();
    assert!(!plan_text.contains(LLM_KEY) && !plan_text.contains(PAT_SECRET), "a secret is in the plan: {plan_text}");
    assert!(p["request"].as_str().unwrap().contains("secret is [redacted], LLM key [redacted]"), "{}", p["request"]);
}
