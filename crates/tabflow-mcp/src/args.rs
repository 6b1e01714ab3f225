//! A tool call's arguments checked against the tool's input schema before anything runs, so
//! that a mistake is answered naming the argument and what it takes (the SDK's own refusal
//! says only what serde saw: "invalid type: integer, expected a string").

use rmcp::ErrorData;
use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON types a property's schema allows; `None` when the schema does not say plainly.
fn allowed_types(schema: &Value) -> Option<Vec<String>> {
    if let Some(t) = schema.get("type") {
        return match t {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(a) => Some(a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()),
            _ => None,
        };
    }
    let alternatives = schema.get("anyOf").or_else(|| schema.get("oneOf"))?.as_array()?;
    let mut out = vec![];
    for a in alternatives {
        out.extend(allowed_types(a)?);
    }
    Some(out)
}

fn fits(v: &Value, types: &[String]) -> bool {
    let t = type_of(v);
    types.iter().any(|x| x == t || (x == "number" && t == "integer"))
}

fn article(t: &str) -> &'static str {
    if matches!(t, "integer" | "array" | "object") { "an" } else { "a" }
}

/// Checks `args` against `tool`'s input schema: unknown arguments, missing required ones and
/// values of the wrong JSON type are refused (invalid params) naming the argument.
pub fn check(tool: &Tool, args: Option<&JsonObject>) -> Result<(), ErrorData> {
    let schema = &tool.input_schema;
    let empty = JsonObject::new();
    let args = args.unwrap_or(&empty);
    let props = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let names = || {
        if props.is_empty() {
            "no arguments".to_string()
        } else {
            format!("the arguments {}", props.keys().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", "))
        }
    };
    for (k, v) in args {
        let Some(p) = props.get(k) else {
            return Err(ErrorData::invalid_params(
                format!("{} has no argument '{k}'; it takes {}", tool.name, names()),
                None,
            ));
        };
        if let Some(types) = allowed_types(p)
            && !types.is_empty()
            && !fits(v, &types)
        {
            let want: Vec<String> =
                types.iter().filter(|t| *t != "null").map(|t| format!("{} {t}", article(t))).collect();
            let got = type_of(v);
            return Err(ErrorData::invalid_params(
                format!(
                    "argument '{k}' of {} must be {}, not {} {got}",
                    tool.name,
                    if want.is_empty() { "null".to_string() } else { want.join(" or ") },
                    article(got)
                ),
                None,
            ));
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !args.contains_key(r) {
                return Err(ErrorData::invalid_params(format!("{} needs the argument '{r}'", tool.name), None));
            }
        }
    }
    Ok(())
}
