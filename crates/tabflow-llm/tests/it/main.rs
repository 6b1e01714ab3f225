//! The LLM backend against a fake model server (axum on 127.0.0.1:0, real HTTP) that answers
//! from a script and records every request it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tabflow_llm::{ApiKey, Config, Llm, Provider, Source};

#[derive(Clone, Default)]
struct Fake {
    /// (status, body) answers, in order; the last one repeats.
    script: Arc<Mutex<Vec<(u16, Value)>>>,
    /// (headers as "name: value" lines, body) of each request received.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn answer(State(f): State<Fake>, headers: HeaderMap, body: axum::Json<Value>) -> (StatusCode, axum::Json<Value>) {
    let h: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or(""))).collect();
    f.seen.lock().unwrap().push((h.join("\n"), body.0));
    let mut s = f.script.lock().unwrap();
    let (status, body) = if s.len() > 1 { s.remove(0) } else { s[0].clone() };
    (StatusCode::from_u16(status).unwrap(), axum::Json(body))
}

async fn serve(script: Vec<(u16, Value)>) -> (String, Fake) {
    let fake = Fake { script: Arc::new(Mutex::new(script)), ..Fake::default() };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(answer))
        .route("/v1/messages", post(answer))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn openai(content: &str) -> (u16, Value) {
    (200, json!({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}))
}

fn anthropic(content: &str) -> (u16, Value) {
    (200, json!({"id": "msg", "type": "message", "role": "assistant", "content": [{"type": "text", "text": content}]}))
}

const KEY: &str = "sk-test-KEY-123456";
const PAT: &str = "pat-SECRET-987654";

fn llm(url: &str, provider: Provider) -> Llm {
    Llm::new(Config {
        provider,
        url: url.into(),
        model: "small".into(),
        api_key: Some(ApiKey::from(KEY)),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
}

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 8, 14).unwrap()
}

const REQUEST: &str = "Offboard John from Marketing and hand his stuff to Tom Baker";
/// Deliberately different from what the rule-based parser gives for REQUEST, so the test
/// can tell which one answered.
const VALID: &str = r#"{"intents": [{"name": "offboard-user", "params": {"user": "John", "team": "Marketing", "new_owner": "Tom Baker", "remove_access": true}}]}"#;

#[tokio::test]
async fn a_valid_answer_is_used() {
    let (url, fake) = serve(vec![openai(VALID)]).await;
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[PAT]).await;
    assert_eq!(out.source, Source::Llm { attempts: 1 });
    assert_eq!(out.intents.len(), 1);
    assert_eq!(out.intents[0].params_json()["remove_access"], json!(true));
    assert_eq!(out.intents[0].params_json()["new_owner"], json!("Tom Baker"));
    let rule = tabflow_nl::parse(REQUEST, today());
    assert_ne!(rule.intents, out.intents, "the test must tell the model's answer from the parser's");
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].0.contains(&format!("authorization: Bearer {KEY}")), "{}", seen[0].0);
    assert_eq!(seen[0].1["response_format"]["json_schema"]["schema"], tabflow_llm::intents::schema());
    assert_eq!(seen[0].1["messages"][1]["content"], REQUEST);
}

#[tokio::test]
async fn an_invalid_answer_is_retried_with_its_errors() {
    let bad =
        r#"{"intents": [{"name": "offboard-user", "params": {"user": "John", "endpoint": "PUT /api/3.24/users/1"}}]}"#;
    let (url, fake) = serve(vec![openai(bad), openai(VALID)]).await;
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert_eq!(out.source, Source::Llm { attempts: 2 });
    assert_eq!(out.intents[0].params_json()["team"], json!("Marketing"));
    assert!(out.notes.iter().any(|n| n.contains("unknown field \"endpoint\"")), "{:?}", out.notes);
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let retry = seen[1].1["messages"].as_array().unwrap();
    // system, request, the invalid answer, the errors.
    assert_eq!(retry.len(), 4);
    assert_eq!(retry[2], json!({"role": "assistant", "content": bad}));
    let follow_up = retry[3]["content"].as_str().unwrap();
    assert!(follow_up.contains("/intents/0/params: unknown field \"endpoint\""), "{follow_up}");
}

#[tokio::test]
async fn invalid_twice_falls_back_to_the_rule_based_parser() {
    let (url, fake) = serve(vec![
        openai("I would call DELETE /api/3.24/sites/x/workbooks"),
        openai(r#"{"intents": [{"name": "drop-site", "params": {}}]}"#),
    ])
    .await;
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert_eq!(fake.seen.lock().unwrap().len(), 2, "exactly one retry");
    assert!(
        matches!(&out.source, Source::RuleBased { reason } if reason.contains("invalid twice")),
        "{:?}",
        out.source
    );
    assert_eq!(out.intents, tabflow_nl::parse(REQUEST, today()).intents);
    let all = out.notes.join("\n");
    assert!(all.contains("not valid JSON") && all.contains("unknown name \"drop-site\""), "{all}");
    assert!(all.contains("rule-based parser"), "{all}");
}

#[tokio::test]
async fn server_down_timeout_and_401_fall_back_with_a_clear_reason() {
    // A port nobody listens on: bind, take the address, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = llm(&format!("http://{addr}"), Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert!(
        matches!(&out.source, Source::RuleBased { reason } if reason.contains("cannot be reached")),
        "{:?}",
        out.source
    );
    assert_eq!(out.intents, tabflow_nl::parse(REQUEST, today()).intents);

    let (url, _) = serve(vec![(401, json!({"error": {"message": "invalid api key"}}))]).await;
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert!(
        matches!(&out.source, Source::RuleBased { reason } if reason.contains("refused the API key (HTTP 401)") && reason.contains("TABFLOW_LLM_API_KEY")),
        "{:?}",
        out.source
    );
    let (url, _) = serve(vec![(503, json!({"error": "loading model"}))]).await;
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert!(matches!(&out.source, Source::RuleBased { reason } if reason.contains("HTTP 503")), "{:?}", out.source);

    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut slow = llm(&url, Provider::OpenAi).config().clone();
    slow.timeout = Duration::from_millis(300);
    let out = Llm::new(slow).unwrap().interpret(REQUEST, today(), &[]).await;
    assert!(
        matches!(&out.source, Source::RuleBased { reason } if reason.contains("did not answer within")),
        "{:?}",
        out.source
    );
    drop(silent);
}

#[tokio::test]
async fn anthropic_messages_format() {
    let (url, fake) = serve(vec![anthropic(&format!("Here you go:\n```json\n{VALID}\n```"))]).await;
    let out = llm(&url, Provider::Anthropic).interpret(REQUEST, today(), &[]).await;
    assert_eq!(out.source, Source::Llm { attempts: 1 });
    assert_eq!(out.intents[0].params_json()["new_owner"], json!("Tom Baker"));
    let seen = fake.seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert!(headers.contains(&format!("x-api-key: {KEY}")), "{headers}");
    assert!(headers.contains("anthropic-version: 2023-06-01"), "{headers}");
    assert!(!headers.contains("authorization"), "{headers}");
    assert_eq!(body["model"], "small");
    assert!(body["system"].as_str().unwrap().contains("\"offboard-user\""));
    assert_eq!(body["messages"], json!([{"role": "user", "content": REQUEST}]));
    assert!(body["max_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn request_bodies_never_carry_the_key_or_the_tableau_secret() {
    let request = format!("Archive Finance workbooks not viewed in 90 days, my PAT is {PAT} and the key {KEY}");
    let bad = r#"{"intents": [{"name": "archive-stale-content", "params": {"stale_days": 0}}]}"#;
    for provider in [Provider::OpenAi, Provider::Anthropic] {
        let reply = |t: &str| if provider == Provider::OpenAi { openai(t) } else { anthropic(t) };
        let (url, fake) = serve(vec![reply(bad), reply(bad)]).await;
        let out = llm(&url, provider).interpret(&request, today(), &[PAT]).await;
        assert!(matches!(out.source, Source::RuleBased { .. }));
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        for (_, body) in seen.iter() {
            let text = body.to_string();
            assert!(!text.contains(PAT) && !text.contains(KEY), "{provider:?}: a secret reached the model: {text}");
            assert!(text.contains("my PAT is [redacted] and the key [redacted]"), "{text}");
        }
        // The fallback still reads the request as given (it never leaves the process).
        assert_eq!(out.intents[0].name(), "archive-stale-content");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_key_stays_home() {
    // Where the redirect points: records anything that reaches it.
    let (elsewhere, fake) = serve(vec![openai(VALID)]).await;
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let to = format!("{elsewhere}{}", uri.path());
        async move { (StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, to)], "") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert!(matches!(&out.source, Source::RuleBased { reason } if reason.contains("redirect")), "{:?}", out.source);
    assert!(fake.seen.lock().unwrap().is_empty(), "the request (and its key) followed the redirect");
}

/// An OpenAI-format answer the server stopped at `max_tokens` (llama.cpp's `finish_reason`).
fn cut(content: &str) -> (u16, Value) {
    (
        200,
        json!({"id": "x", "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": content}}]}),
    )
}

#[tokio::test]
async fn an_answer_cut_off_at_max_tokens_is_never_read_and_is_reported() {
    // Cut off, though what came so far happens to parse: still not read.
    let (url, fake) = serve(vec![cut(r#"{"intents": []}"#), openai(VALID)]).await;
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert_eq!(out.source, Source::Llm { attempts: 2 });
    assert_eq!(out.intents[0].params_json()["new_owner"], json!("Tom Baker"));
    assert!(
        out.notes[0].contains("answer was cut off at max_tokens (1024 tokens) before it was complete (try 1 of 2)"),
        "{:?}",
        out.notes
    );
    {
        let seen = fake.seen.lock().unwrap();
        let retry = seen[1].1["messages"].as_array().unwrap();
        // system, request, the follow-up: the cut-off text is not echoed.
        assert_eq!(retry.len(), 3, "{retry:?}");
        assert!(retry[2]["content"].as_str().unwrap().contains("cut off after 1024 tokens"), "{retry:?}");
    }

    let half = r#"{"intents": [{"name": "delete-content", "params": {"project": "Tom Baker and then the"#;
    let (url, _) = serve(vec![cut(half)]).await;
    let out = llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    assert!(
        matches!(&out.source, Source::RuleBased { reason } if reason == "the model's answer was cut off twice (max_tokens)"),
        "{:?}",
        out.source
    );
    assert_eq!(out.intents, tabflow_nl::parse(REQUEST, today()).intents);
}

#[tokio::test]
async fn the_schema_sent_as_a_grammar_bounds_every_answer() {
    let (url, fake) = serve(vec![openai(VALID)]).await;
    llm(&url, Provider::OpenAi).interpret(REQUEST, today(), &[]).await;
    let seen = fake.seen.lock().unwrap();
    let body = &seen[0].1;
    assert_eq!(body["max_tokens"], json!(tabflow_llm::provider::MAX_TOKENS));
    assert_eq!(body["response_format"]["type"], "json_schema");
    let schema = &body["response_format"]["json_schema"]["schema"];
    assert_eq!(schema["properties"]["intents"]["maxItems"], json!(tabflow_llm::intents::MAX_INTENTS));
    // Every free text and every list in the schema has a bound.
    fn unbounded(v: &Value, path: &str, out: &mut Vec<String>) {
        if let Value::Object(o) = v {
            // (`properties` may hold a parameter called "type": only a type name counts.)
            let t = o.get("type").filter(|t| !t.is_object()).map(Value::to_string).unwrap_or_default();
            if t.contains("\"string\"")
                && !o.contains_key("enum")
                && !o.contains_key("const")
                && !o.contains_key("maxLength")
            {
                out.push(path.to_string());
            }
            if t.contains("\"array\"") && !o.contains_key("maxItems") {
                out.push(path.to_string());
            }
            for (k, c) in o {
                unbounded(c, &format!("{path}/{k}"), out);
            }
        } else if let Value::Array(a) = v {
            for (i, c) in a.iter().enumerate() {
                unbounded(c, &format!("{path}/{i}"), out);
            }
        }
    }
    let mut out = vec![];
    unbounded(schema, "", &mut out);
    assert!(out.is_empty(), "unbounded: {out:?}");
    // The checker holds answers to the same bounds.
    let long = format!(r#"{{"intents": [{{"name": "query", "params": {{"question": "{}"}}}}]}}"#, "a".repeat(161));
    let e = tabflow_llm::intents::validate(&long, schema).unwrap_err();
    assert_eq!(e, vec!["/intents/0/params/question: longer than 160 characters"]);
}

#[test]
fn the_compact_prompt_names_every_intent_and_parameter() {
    let schema = tabflow_llm::intents::schema();
    let compact = tabflow_llm::compact_system_prompt(&schema, today());
    let full = tabflow_llm::system_prompt(&schema, today());
    for name in tabflow_plan::Intent::NAMES {
        assert!(compact.contains(&format!("- {name}: ")), "{name} missing:\n{compact}");
        for key in tabflow_plan::Intent::keys(name) {
            assert!(compact.contains(&format!(" {key} (")), "{name}.{key} missing:\n{compact}");
        }
    }
    assert!(compact.contains("offboard-user: Hand over a departing user's content"), "{compact}");
    assert!(compact.contains("today is 2026-08-14"));
    assert!(compact.len() * 2 < full.len(), "{} vs {}", compact.len(), full.len());
}
