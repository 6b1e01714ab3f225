//! What the model must answer: the intents of the catalogue (DESIGN.md §5), whose Rust types
//! are `tabflow_plan::Intent` — the same the rule-based parser returns and the planner reads.
//! The JSON Schema the model must follow is generated from those types ([`schema`]), so the
//! schema, the validation and what the planner receives cannot drift apart.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tabflow_plan::Intent;

/// What the model answers: the request's intents, in the order the user gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The intents, in the order the user gave them; empty when the request asks for
    /// nothing in the catalogue.
    pub intents: Vec<Intent>,
}

/// Most intents in one answer.
pub const MAX_INTENTS: u64 = 8;
/// Longest text value (a name, a question) in an answer, in characters.
pub const MAX_TEXT: u64 = 160;
/// Most entries of a list parameter (tags, exclusions).
pub const MAX_LIST: u64 = 20;

/// The JSON Schema of [`Answer`] (2020-12, subschemas inlined), bounded: at most
/// [`MAX_INTENTS`] intents, text of at most [`MAX_TEXT`] characters, lists of at most
/// [`MAX_LIST`] entries. A server that turns the schema into a grammar (llama.cpp, vLLM) then
/// cannot let a small model ramble inside a string until `max_tokens` cuts the JSON off.
pub fn schema() -> Value {
    let mut s = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<Answer>()
        .to_value();
    bound(&mut s, true);
    s
}

fn bound(v: &mut Value, root: bool) {
    match v {
        Value::Object(o) => {
            let is = |o: &serde_json::Map<String, Value>, t: &str| match o.get("type") {
                Some(Value::String(x)) => x == t,
                Some(Value::Array(a)) => a.iter().any(|x| x == t),
                _ => false,
            };
            if is(o, "string") && !o.contains_key("enum") && !o.contains_key("const") {
                o.entry("maxLength").or_insert(Value::from(MAX_TEXT));
            }
            if is(o, "array") {
                o.entry("maxItems").or_insert(Value::from(MAX_LIST));
            }
            if root && let Some(intents) = o.get_mut("properties").and_then(|p| p.get_mut("intents")) {
                intents["maxItems"] = Value::from(MAX_INTENTS);
            }
            for (_, child) in o.iter_mut() {
                bound(child, false);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| bound(c, false)),
        _ => {}
    }
}

/// Checks an answer's text: JSON, the schema, then what the schema cannot say (ISO dates,
/// `since` before `until`). Every problem is listed.
pub fn validate(text: &str, schema: &Value) -> Result<Answer, Vec<String>> {
    let json = extract_json(text);
    let value: Value = serde_json::from_str(json).map_err(|e| {
        vec![format!("the answer is not valid JSON ({e}); reply with one JSON object and nothing else")]
    })?;
    let mut errors = crate::schema::check(schema, &value);
    if !errors.is_empty() {
        return Err(errors);
    }
    let answer: Answer = serde_json::from_value(value).map_err(|e| vec![format!("the answer does not fit: {e}")])?;
    for (i, intent) in answer.intents.iter().enumerate() {
        let (since, until) = match intent {
            Intent::ArchiveStaleContent(a) => (a.since.as_deref(), a.until.as_deref()),
            _ => (None, None),
        };
        let mut parsed = vec![];
        for (k, v) in [("since", since), ("until", until)] {
            if let Some(v) = v {
                match chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                    Ok(d) => parsed.push(d),
                    Err(_) => errors.push(format!("/intents/{i}/params/{k}: \"{v}\" is not a date in YYYY-MM-DD form")),
                }
            }
        }
        if let [s, u] = parsed[..]
            && s > u
        {
            errors.push(format!("/intents/{i}/params: since {s} is after until {u}"));
        }
    }
    if errors.is_empty() { Ok(answer) } else { Err(errors) }
}

/// The JSON object inside a reply: models sometimes wrap it in a Markdown code fence or a
/// sentence; the outermost `{ … }` is taken.
fn extract_json(text: &str) -> &str {
    let t = text.trim();
    match (t.find('{'), t.rfind('}')) {
        (Some(a), Some(b)) if a < b => &t[a..=b],
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_accepts_the_catalogue_and_names_what_is_wrong() {
        let s = schema();
        let ok = r#"{"intents": [{"name": "archive-stale-content", "params": {"project": "Finance", "stale_days": 90}},
                                 {"name": "notify-owners", "params": {"audience": "project-owners"}}]}"#;
        let a = validate(ok, &s).unwrap();
        assert_eq!(a.intents[0].params_json()["stale_days"], json!(90));
        assert_eq!(a.intents[1].name(), "notify-owners");
        let bad = r#"{"intents": [{"name": "delete-everything", "params": {}},
                                  {"name": "offboard-user", "params": {"user": "John", "endpoint": "/api/3.24/users"}},
                                  {"name": "archive-stale-content", "params": {"stale_days": "ninety"}},
                                  {"name": "query", "params": {}, "api_call": "DELETE /api/3.24/sites/x"}]}"#;
        let e = validate(bad, &s).unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[3].contains("/intents/3: unknown field \"api_call\""), "{e:?}");
        assert!(e[0].starts_with("/intents/0/name: unknown name \"delete-everything\""), "{e:?}");
        assert!(e[1].contains("/intents/1/params: unknown field \"endpoint\""), "{e:?}");
        assert!(e[2].contains("/intents/2/params/stale_days: expected integer"), "{e:?}");
        let e = validate("Sure! Here are the intents: archive", &s).unwrap_err();
        assert!(e[0].contains("not valid JSON"), "{e:?}");
        let e = validate(
            r#"{"intents":[{"name":"archive-stale-content","params":{"since":"2026-07-01","until":"Q2"}}]}"#,
            &s,
        )
        .unwrap_err();
        assert_eq!(e, vec!["/intents/0/params/until: \"Q2\" is not a date in YYYY-MM-DD form"]);
    }

    #[test]
    fn schedules_are_a_frequency_or_a_cron_expression_as_the_parser_gives_them() {
        let s = schema();
        let answer = |schedule: &str| {
            format!(
                r#"{{"intents": [{{"name": "audit-permissions", "params": {{"tags": ["sensitive"], "schedule": "{schedule}"}}}}]}}"#
            )
        };
        for ok in ["weekly", "0 0 * * 1"] {
            let a = validate(&answer(ok), &s).unwrap();
            assert_eq!(a.intents[0].params_json()["schedule"], json!(ok));
        }
        // Kept as written, like a name that does not ground: the planner checks it with croner
        // and asks when it cannot run (`tabflow_workflows` permissions: schedule questions).
        let a = validate(&answer("fortnightly"), &s).unwrap();
        assert_eq!(a.intents[0].params_json()["schedule"], json!("fortnightly"));
    }

    #[test]
    fn a_fenced_answer_is_read() {
        let a = validate("```json\n{\"intents\": [{\"name\": \"query\", \"params\": {}}]}\n```", &schema()).unwrap();
        assert_eq!(a.intents.len(), 1);
    }
}
