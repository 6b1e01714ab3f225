//! The two wire formats, as values: a conversation becomes a [`Request`] (URL, headers
//! without the key, JSON body) and a response body becomes the model's text. [`send`] is the
//! one place that adds the API key, as a header.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::Error;
use crate::config::{Config, Provider};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation (the system prompt is separate).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// An HTTP request to the model server, without credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The longest answer asked for, in tokens. The schema bounds an answer well below it (see
/// [`crate::intents::schema`]); an answer that still reaches it is reported as cut off.
pub const MAX_TOKENS: u32 = 1024;

/// The model's answer: its text, and whether the server stopped it at [`MAX_TOKENS`]
/// (`finish_reason: "length"`, Anthropic's `stop_reason: "max_tokens"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub cut_off: bool,
}

/// Whether a response body says the answer was stopped by the token limit.
pub fn cut_off(provider: Provider, body: &Value) -> bool {
    match provider {
        Provider::OpenAi => body.pointer("/choices/0/finish_reason").and_then(Value::as_str) == Some("length"),
        Provider::Anthropic => body.get("stop_reason").and_then(Value::as_str) == Some("max_tokens"),
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// Builds the request for `config.provider`. OpenAI-compatible servers get the schema as
/// `response_format` (llama.cpp and vLLM turn it into a grammar, so even a small model
/// answers in shape); Anthropic gets it in the system prompt.
pub fn request(config: &Config, system: &str, messages: &[Message], schema: &Value) -> Request {
    let turns: Vec<Value> = messages.iter().map(|m| json!({"role": role(m.role), "content": m.content})).collect();
    match config.provider {
        Provider::OpenAi => {
            let mut all = vec![json!({"role": "system", "content": system})];
            all.extend(turns);
            Request {
                url: config.endpoint(),
                headers: vec![("content-type", "application/json".into())],
                body: json!({
                    "model": config.model,
                    "messages": all,
                    "temperature": 0,
                    "max_tokens": MAX_TOKENS,
                    "response_format": {"type": "json_schema", "json_schema": {"name": "tabflow_intents", "schema": schema}},
                }),
            }
        }
        Provider::Anthropic => Request {
            url: config.endpoint(),
            headers: vec![("content-type", "application/json".into()), ("anthropic-version", ANTHROPIC_VERSION.into())],
            body: json!({
                "model": config.model,
                "system": system,
                "messages": turns,
                "temperature": 0,
                "max_tokens": MAX_TOKENS,
            }),
        },
    }
}

/// The model's text from a response body.
pub fn answer_text(provider: Provider, body: &Value) -> Result<String, Error> {
    let text = match provider {
        Provider::OpenAi => body.pointer("/choices/0/message/content").and_then(Value::as_str).map(str::to_string),
        Provider::Anthropic => body.get("content").and_then(Value::as_array).map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("")
        }),
    };
    text.ok_or_else(|| {
        Error::Response(format!(
            "the {} response has no answer text (expected {})",
            provider.as_str(),
            match provider {
                Provider::OpenAi => "choices[0].message.content",
                Provider::Anthropic => "content[].text",
            }
        ))
    })
}

/// Sends `req`, adding the API key header, and returns the model's answer.
pub async fn send(http: &reqwest::Client, config: &Config, req: &Request) -> Result<Reply, Error> {
    let mut b = http.post(&req.url).timeout(config.timeout).json(&req.body);
    for (k, v) in &req.headers {
        b = b.header(*k, v);
    }
    if let Some(key) = &config.api_key {
        b = match config.provider {
            Provider::OpenAi => b.bearer_auth(key.expose_secret()),
            Provider::Anthropic => b.header("x-api-key", key.expose_secret()),
        };
    }
    let response = b.send().await.map_err(|e| {
        if e.is_timeout() {
            Error::Timeout { url: tabflow_site::text::redact_url(&req.url), secs: config.timeout.as_secs() }
        } else {
            Error::Unreachable { url: tabflow_site::text::redact_url(&req.url), detail: root_cause(&e) }
        }
    })?;
    let status = response.status();
    let text = response.text().await.map_err(|e| {
        if e.is_timeout() {
            Error::Timeout { url: tabflow_site::text::redact_url(&req.url), secs: config.timeout.as_secs() }
        } else {
            Error::Unreachable { url: tabflow_site::text::redact_url(&req.url), detail: root_cause(&e) }
        }
    })?;
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Unauthorized { url: tabflow_site::text::redact_url(&req.url), status: status.as_u16() });
    }
    if status.is_redirection() {
        return Err(Error::Http {
            url: req.url.clone(),
            status: status.as_u16(),
            detail: "a redirect, which tabflow does not follow (the API key would go with it); set the model URL to its final address".into(),
        });
    }
    if !status.is_success() {
        let mut detail: String = text.chars().take(200).collect();
        if let Some(k) = &config.api_key {
            detail = detail.replace(k.expose_secret(), "[redacted]");
        }
        return Err(Error::Http { url: tabflow_site::text::redact_url(&req.url), status: status.as_u16(), detail });
    }
    let body: Value =
        serde_json::from_str(&text).map_err(|e| Error::Response(format!("the server's response is not JSON: {e}")))?;
    Ok(Reply { text: answer_text(config.provider, &body)?, cut_off: cut_off(config.provider, &body) })
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKey;
    use std::time::Duration;

    fn config(provider: Provider) -> Config {
        Config {
            provider,
            url: "http://127.0.0.1:9".into(),
            model: "m".into(),
            api_key: Some(ApiKey::from("sk-secret-1")),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn requests_are_values_without_the_key() {
        let msgs = [Message { role: Role::User, content: "archive Finance".into() }];
        let schema = json!({"type": "object"});
        let o = request(&config(Provider::OpenAi), "sys", &msgs, &schema);
        assert_eq!(o.url, "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(o.body["messages"][0], json!({"role": "system", "content": "sys"}));
        assert_eq!(o.body["messages"][1]["content"], "archive Finance");
        assert_eq!(o.body["response_format"]["json_schema"]["schema"], schema);
        let a = request(&config(Provider::Anthropic), "sys", &msgs, &schema);
        assert_eq!(a.url, "http://127.0.0.1:9/v1/messages");
        assert_eq!(a.body["system"], "sys");
        assert!(a.headers.contains(&("anthropic-version", ANTHROPIC_VERSION.to_string())));
        for r in [o, a] {
            assert!(!format!("{r:?}").contains("sk-secret-1"));
        }
    }

    #[test]
    fn answer_text_per_provider() {
        let o = json!({"choices": [{"message": {"role": "assistant", "content": "{\"intents\": []}"}}]});
        assert_eq!(answer_text(Provider::OpenAi, &o).unwrap(), "{\"intents\": []}");
        let a = json!({"content": [{"type": "text", "text": "{\"intents\""}, {"type": "text", "text": ": []}"}]});
        assert_eq!(answer_text(Provider::Anthropic, &a).unwrap(), "{\"intents\": []}");
        assert!(answer_text(Provider::Anthropic, &o).is_err());
        assert!(!cut_off(Provider::OpenAi, &o));
        assert!(cut_off(
            Provider::OpenAi,
            &json!({"choices": [{"finish_reason": "length", "message": {"content": "{"}}]})
        ));
        assert!(cut_off(Provider::Anthropic, &json!({"stop_reason": "max_tokens", "content": []})));
        assert!(!cut_off(Provider::Anthropic, &json!({"stop_reason": "end_turn", "content": []})));
    }
}
