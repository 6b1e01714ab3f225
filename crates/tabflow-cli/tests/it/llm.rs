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

fn plan_answered(home: &Path, emu: &Emu, llm_url: &str, request: &str, answer: &str) -> std::process::Output {
    cmd(home, emu, &["plan", "--llm", request, "--answer", answer, "--json"])
        .env("TABLEAU_PAT_SECRET", PAT_SECRET)
        .env("TABFLOW_LLM_URL", llm_url)
        .env("TABFLOW_LLM_MODEL", "fake-small")
        .env("TABFLOW_LLM_TIMEOUT_SECS", "5")
        .output()
        .unwrap()
}

fn destructive_steps(plan: &Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["effect"] == "destructive")
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_models_intents_are_planned_and_grounded_by_the_planner() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    // The model adds a new owner the request never named: the parser does not read it, so
    // the hand-over is asked about first; answered `model`, it is planned and grounded.
    let (url, fake) = fake_llm("openai", &[MODEL]);
    let (p, stderr) = plan(home.path(), &emu, &url, "openai", REQUEST);
    let model: Value = serde_json::from_str(MODEL).unwrap();
    assert_ne!(
        serde_json::to_value(tabflow_nl::parse(REQUEST, today()).intents).unwrap(),
        model["intents"],
        "the rule-based parser must read REQUEST differently for this test to tell them apart"
    );
    assert_eq!(p["questions"][0]["id"], "reading", "{p}");
    assert!(destructive_steps(&p).is_empty(), "{p}");
    assert_eq!(p["intents"], model["intents"], "the model's reading is kept for the answer: {p}");
    assert!(notes(&p).contains("intents from the openai model 'fake-small'"), "{}", notes(&p));
    assert!(stderr.contains("note: intents from the openai model"), "{stderr}");
    assert!(stderr.contains("not planned until question `reading` is answered: offboard-user"), "{stderr}");

    let o = plan_answered(home.path(), &emu, &url, REQUEST, "reading=model");
    let p: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
    assert_eq!(p["intents"], model["intents"], "{p}");
    assert!(p["questions"].as_array().unwrap().iter().all(|q| q["id"] != "reading"), "{p}");
    // Grounded by the planner: the new owner is Tom Baker's site user, access removal planned.
    let transfer = step(&p, "transfer-ownership").unwrap();
    let reason = transfer["items"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Tom Baker (the new owner you named)"), "{reason}");
    assert!(p["steps"].as_array().unwrap().iter().any(|s| s["kind"] == "remove-access"), "{p}");
    assert!(notes(&p).contains("the model's reading is planned (answer to `reading`)"), "{}", notes(&p));
    assert_eq!(fake.seen.lock().unwrap().len(), 2);
}

/// The leaver request of issue #18, which SmolLM2-135M read as a query and a delete of a
/// project called "Tom Baker".
const LEAVER: &str = "John Smith is leaving; give his content to Tom Baker and remove his access";
const MISREAD: &str = r#"{"intents": [{"name": "query", "params": {"question": "John Smith is leaving"}}, {"name": "delete-content", "params": {"project": "Tom Baker"}}]}"#;

#[test]
fn a_destructive_intent_only_the_model_read_becomes_a_question_quoting_both_readings() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let parser = tabflow_nl::parse(LEAVER, today()).intents;
    assert_eq!(parser.len(), 1, "{parser:?}");
    assert_eq!(parser[0].name(), "offboard-user");

    let (url, _fake) = fake_llm("openai", &[MISREAD]);
    let (p, stderr) = plan(home.path(), &emu, &url, "openai", LEAVER);
    let q = &p["questions"][0];
    assert_eq!(q["id"], "reading", "{p}");
    assert_eq!(q["choices"], json!(["parser", "model", "cancel"]));
    assert_eq!(q["default"], "cancel");
    let t = q["text"].as_str().unwrap();
    assert!(t.contains(r#"The model (openai model 'fake-small' at http://127.0.0.1:"#), "{t}");
    assert!(
        t.contains(r#"read: query {"question":"John Smith is leaving"}; delete-content {"project":"Tom Baker"}"#),
        "{t}"
    );
    assert!(t.contains(r#"The rule-based parser read: offboard-user {"new_owner":"Tom Baker","#), "{t}");
    assert!(t.contains(r#"the parser did not find (delete-content {"project":"Tom Baker"})"#), "{t}");
    // Nothing destructive is planned before the answer; the harmless part is.
    assert!(destructive_steps(&p).is_empty(), "{p}");
    assert!(step(&p, "stage-delete").is_none());
    assert!(
        notes(&p)
            .contains(r#"not planned until question `reading` is answered: delete-content {"project":"Tom Baker"}"#),
        "{}",
        notes(&p)
    );
    assert!(stderr.contains("not planned until question `reading`"), "{stderr}");
    // A plan with an open question cannot be applied.
    let id = p["id"].as_str().unwrap();
    let o = cmd(home.path(), &emu, &["apply", id, "--approve", "all", "--json"])
        .env("TABLEAU_PAT_SECRET", PAT_SECRET)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("[reading]"), "{}", text(&o.stderr));

    // `parser`: the parser's reading, exactly as `tabflow plan` without --llm plans it.
    let o = plan_answered(home.path(), &emu, &url, LEAVER, "reading=parser");
    let chosen: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
    assert_eq!(chosen["intents"], serde_json::to_value(&parser).unwrap(), "{chosen}");
    let kinds = |p: &Value| -> Vec<String> {
        p["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap().to_string()).collect()
    };
    let o = cmd(home.path(), &emu, &["plan", LEAVER, "--json"]).env("TABLEAU_PAT_SECRET", PAT_SECRET).output().unwrap();
    let rules: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
    assert_eq!(kinds(&chosen), kinds(&rules));
    assert!(kinds(&chosen).contains(&"transfer-ownership".to_string()), "{chosen}");
    assert!(chosen["questions"].as_array().unwrap().iter().all(|q| q["id"] != "reading"));
    assert!(
        notes(&chosen).contains("the rule-based parser's reading is planned (answer to `reading`)"),
        "{}",
        notes(&chosen)
    );

    // `cancel`: nothing planned, exit 1; a choice that is not one: exit 2.
    let o = plan_answered(home.path(), &emu, &url, LEAVER, "reading=cancel");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("you chose to plan neither reading of the request; nothing was planned"),
        "{}",
        text(&o.stderr)
    );
    let o = plan_answered(home.path(), &emu, &url, LEAVER, "reading=both");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("answer reading=parser, reading=model or reading=cancel"), "{}", text(&o.stderr));
}

#[test]
fn a_model_reading_the_parser_confirms_is_planned_without_a_question() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    // Same hand-over as the parser's (names in another case, remove_access spelled out),
    // plus a notification the parser did not read: nothing destructive is in dispute.
    let agree = r#"{"intents": [{"name": "offboard-user", "params": {"user": "john smith", "new_owner": "TOM BAKER", "remove_access": true}}, {"name": "notify-owners", "params": {"audience": "content-owners"}}]}"#;
    let (url, _fake) = fake_llm("openai", &[agree]);
    let (p, _) = plan(home.path(), &emu, &url, "openai", LEAVER);
    let model: Value = serde_json::from_str(agree).unwrap();
    assert_eq!(p["intents"], model["intents"], "{p}");
    assert!(p["questions"].as_array().unwrap().iter().all(|q| q["id"] != "reading"), "{p}");
    assert!(step(&p, "transfer-ownership").is_some(), "{p}");
    assert!(step(&p, "notify-owners").is_some(), "{p}");
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
