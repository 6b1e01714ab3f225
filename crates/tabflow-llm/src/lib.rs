//! The optional LLM backend of tabflow's planner. A model is asked for the intents of a
//! request (DESIGN.md §5) as JSON; the answer is validated against a JSON Schema generated
//! from the Rust intent types; an invalid answer gets one retry carrying the validation
//! errors; after that, or when the server cannot be reached, times out or refuses the key,
//! the rule-based parser ([`tabflow_nl::parse`]) answers and [`Outcome::source`] says why.
//!
//! The model only ever produces intents. Names are grounded and plans built by the planner,
//! exactly as for the rule-based parser, so an LLM cannot make tabflow call an API it would
//! not call anyway. Secrets never reach it: the API key travels in a header only, and any
//! secret the caller names is replaced by `[redacted]` in the request text before it is sent.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tabflow_llm::Error> {
//! let config = tabflow_llm::Config::resolve(|k| std::env::var(k).ok(), None)?;
//! let llm = tabflow_llm::Llm::new(config)?;
//! let today = chrono::Utc::now().date_naive();
//! let outcome = llm.interpret("offboard jsmith and give his content to Tom Baker", today, &[]).await;
//! for n in &outcome.notes {
//!     eprintln!("note: {n}");
//! }
//! # Ok(()) }
//! ```

pub mod config;
pub mod crosscheck;
pub mod intents;
pub mod provider;
pub mod schema;

use secrecy::ExposeSecret;
use serde_json::Value;

pub use config::{ApiKey, Config, Provider};
use provider::{Message, Role};

/// What went wrong talking to the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are missing or wrong.
    #[error("{0}")]
    Config(String),
    /// No connection (server down, wrong port, DNS).
    #[error("the LLM server at {url} cannot be reached: {detail}")]
    Unreachable { url: String, detail: String },
    /// No answer within the timeout.
    #[error("the LLM server at {url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    /// 401/403: the key is missing, wrong or lacks access.
    #[error("the LLM server at {url} refused the API key (HTTP {status}); check TABFLOW_LLM_API_KEY")]
    Unauthorized { url: String, status: u16 },
    /// Any other non-success status.
    #[error("the LLM server at {url} answered HTTP {status}: {detail}")]
    Http { url: String, status: u16, detail: String },
    /// A success status with a body that is not the provider's format.
    #[error("{0}")]
    Response(String),
}

/// Where the intents came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The model; `attempts` is 1, or 2 when the first answer was invalid.
    Llm { attempts: u8 },
    /// The rule-based parser, because of `reason`.
    RuleBased { reason: String },
}

/// The intents of a request and how they were obtained.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub intents: Vec<tabflow_plan::Intent>,
    /// From the rule-based parser when it answered; empty otherwise.
    pub not_understood: Vec<String>,
    pub source: Source,
    /// For the plan's notes and the terminal: which model answered, what was invalid, why
    /// the rule-based parser was used.
    pub notes: Vec<String>,
}

/// A configured model.
#[derive(Debug, Clone)]
pub struct Llm {
    config: Config,
    http: reqwest::Client,
    schema: Value,
}

/// Longest model answer echoed back in the retry.
const ECHO_LIMIT: usize = 4000;

impl Llm {
    pub fn new(config: Config) -> Result<Llm, Error> {
        // No redirects: the API key would go to wherever a 3xx points (an error instead).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout.min(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Llm { config, http, schema: intents::schema() })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The JSON Schema the model's answer must follow.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// "openai model 'local' at http://127.0.0.1:8080" (the URL without a key).
    pub fn label(&self) -> String {
        // The URL may carry a key (`?key=`): shown without it.
        format!(
            "{} model '{}' at {}",
            self.config.provider.as_str(),
            self.config.model,
            tabflow_site::text::redact_url(&self.config.url)
        )
    }

    /// The intents of `request`: from the model when it gives a valid answer (at most two
    /// tries), otherwise from the rule-based parser. Never fails. Occurrences of `secrets`
    /// (and of the API key) in the request are redacted before anything is sent.
    pub async fn interpret(&self, request: &str, today: chrono::NaiveDate, secrets: &[&str]) -> Outcome {
        let mut redacted = request.to_string();
        let key = self.config.api_key.as_ref().map(ExposeSecret::expose_secret);
        for s in secrets.iter().copied().chain(key).filter(|s| s.len() >= 4) {
            redacted = redacted.replace(s, "[redacted]");
        }
        // An OpenAI-compatible server gets the schema as `response_format` (a grammar for
        // llama.cpp): the prompt then lists the catalogue compactly, which a small local model
        // reads in a fraction of the time (about 700 tokens instead of 2 800).
        let system = match self.config.provider {
            Provider::OpenAi => compact_system_prompt(&self.schema, today),
            Provider::Anthropic => system_prompt(&self.schema, today),
        };
        let mut messages = vec![Message { role: Role::User, content: redacted }];
        let mut notes = vec![];
        for attempt in 1..=2u8 {
            let req = provider::request(&self.config, &system, &messages, &self.schema);
            let reply = match provider::send(&self.http, &self.config, &req).await {
                Ok(t) => t,
                Err(e) => return fallback(request, today, notes, e.to_string()),
            };
            let text = reply.text;
            if reply.cut_off {
                // Whatever the text, it is not the whole answer: never read a cut-off answer.
                notes.push(format!(
                    "the {}'s answer was cut off at max_tokens ({} tokens) before it was complete (try {attempt} of 2)",
                    self.label(),
                    provider::MAX_TOKENS
                ));
                if attempt == 2 {
                    let reason = "the model's answer was cut off twice (max_tokens)".to_string();
                    return fallback(request, today, notes, reason);
                }
                messages.push(Message { role: Role::User, content: cut_off_prompt() });
                continue;
            }
            match intents::validate(&text, &self.schema) {
                Ok(answer) => {
                    notes.push(format!(
                        "intents from the {}{}",
                        self.label(),
                        if attempt > 1 { " (second answer, after the first was invalid)" } else { "" }
                    ));
                    return Outcome {
                        intents: answer.intents,
                        not_understood: vec![],
                        source: Source::Llm { attempts: attempt },
                        notes,
                    };
                }
                Err(errors) => {
                    notes.push(format!(
                        "the {} gave an invalid answer (try {attempt} of 2): {}",
                        self.label(),
                        errors.join("; ")
                    ));
                    if attempt == 2 {
                        let reason = "the model's answer was invalid twice".to_string();
                        return fallback(request, today, notes, reason);
                    }
                    let echo: String = text.chars().take(ECHO_LIMIT).collect();
                    messages.push(Message { role: Role::Assistant, content: echo });
                    messages.push(Message { role: Role::User, content: retry_prompt(&errors) });
                }
            }
        }
        fallback(request, today, notes, "no valid answer".into())
    }
}

fn fallback(request: &str, today: chrono::NaiveDate, mut notes: Vec<String>, reason: String) -> Outcome {
    let parsed = tabflow_nl::parse(request, today);
    notes.push(format!("LLM not used: {reason}; the intents come from the rule-based parser"));
    Outcome {
        intents: parsed.intents,
        not_understood: parsed.not_understood,
        source: Source::RuleBased { reason },
        notes,
    }
}

/// The instructions: the catalogue (as the schema), the conventions of the parameters, and
/// that only intents are wanted — no API calls, no plans.
pub fn system_prompt(schema: &Value, today: chrono::NaiveDate) -> String {
    format!(
        "You turn a Tableau administrator's request into intents for tabflow.\n\
Answer with exactly one JSON object following this JSON Schema, and nothing else:\n{}\n\
Rules:\n\
- One intent per thing asked, in the order the user gave them; use only the intent names and parameters of the schema.\n\
- Copy names (projects, users, teams, datasources) exactly as the user wrote them, without possessives (\"John's\" -> \"John\"). Do not guess ids.\n\
- Durations become stale_days (\"3 months\" = 90, \"a year\" = 365). Dates are YYYY-MM-DD; today is {today}.\n\
- Leave out parameters the request does not give.\n\
- Never write API calls, URLs, code or plans: tabflow grounds names and plans the steps itself.\n\
- If nothing in the request fits the catalogue, answer {{\"intents\": []}}.",
        serde_json::to_string(schema).unwrap_or_default()
    )
}

/// The instructions with the catalogue as a list (one line per intent: its name, what it
/// does, its parameters), for servers that are given the JSON Schema itself as a grammar.
pub fn compact_system_prompt(schema: &Value, today: chrono::NaiveDate) -> String {
    format!(
        "You turn a Tableau administrator's request into intents for tabflow.\n\
Answer with exactly one JSON object {{\"intents\": [{{\"name\": ..., \"params\": {{...}}}}, ...]}} and nothing else.\n\
The intents (name: what it does; parameters):\n{}\n\
Rules:\n\
- One intent per thing asked, in the order the user gave them; use only these intent names and parameters.\n\
- Copy names (projects, users, teams, datasources) exactly as the user wrote them, without possessives (\"John's\" -> \"John\"). Do not guess ids.\n\
- Durations become stale_days (\"3 months\" = 90, \"a year\" = 365). Dates are YYYY-MM-DD; today is {today}.\n\
- Leave out parameters the request does not give.\n\
- Never write API calls, URLs, code or plans: tabflow grounds names and plans the steps itself.\n\
- If nothing in the request fits, answer {{\"intents\": []}}.",
        catalogue(schema)
    )
}

/// One line per intent of the schema: `- offboard-user: Hand over … Parameters: user (text:
/// The person leaving …), remove_access (true/false: …)`.
pub fn catalogue(schema: &Value) -> String {
    let first_line = |v: &Value| -> String {
        let d = v.get("description").and_then(Value::as_str).unwrap_or_default();
        let d = d.split(['\n']).next().unwrap_or_default().trim_end_matches(['.', ' ']);
        let mut short: String = d.chars().take(90).collect();
        if d.chars().count() > 90 {
            short.push('…');
        }
        short
    };
    let kind = |p: &Value| -> String {
        if let Some(e) = p.get("enum").and_then(Value::as_array) {
            return e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|");
        }
        let types: Vec<&str> = match p.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let t = types.into_iter().find(|t| *t != "null").unwrap_or("text");
        match t {
            "string" => "text",
            "integer" | "number" => "number",
            "boolean" => "true/false",
            "array" => "list",
            other => other,
        }
        .to_string()
    };
    let branches = schema.pointer("/properties/intents/items/oneOf").and_then(Value::as_array);
    branches
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let name = b.pointer("/properties/name/const").and_then(Value::as_str)?;
            let params = b.pointer("/properties/params/properties").and_then(Value::as_object);
            let list: Vec<String> = params
                .into_iter()
                .flatten()
                .map(|(k, p)| {
                    let d = first_line(p);
                    if d.is_empty() { format!("{k} ({})", kind(p)) } else { format!("{k} ({}: {d})", kind(p)) }
                })
                .collect();
            Some(format!(
                "- {name}: {}. Parameters: {}",
                first_line(b),
                if list.is_empty() { "none".into() } else { list.join(", ") }
            ))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The follow-up after an answer cut off by the token limit (its text is not echoed: it
/// would only fill the context).
pub fn cut_off_prompt() -> String {
    format!(
        "Your answer was cut off after {} tokens, before the JSON object was complete. Reply again with a short JSON object: only the intents and parameters the request gives, names copied as written.",
        provider::MAX_TOKENS
    )
}

/// The follow-up after an invalid answer.
pub fn retry_prompt(errors: &[String]) -> String {
    let list: Vec<String> = errors.iter().map(|e| format!("- {e}")).collect();
    format!(
        "Your answer is not valid:\n{}\nReply again with only the corrected JSON object that follows the schema.",
        list.join("\n")
    )
}
