//! A JSON Schema checker for the subset of JSON Schema 2020-12 that `schemars` generates for
//! the intent types (`type`, `properties`, `required`, `additionalProperties`, `enum`,
//! `const`, `oneOf`/`anyOf`, `items`, `minimum`/`maximum`, `minItems`/`maxItems`, `maxLength`). It reports every
//! problem at once, each with the JSON pointer of the offending value, because those messages
//! go back to the model in the retry.
//!
//! Keywords outside the subset (`format`, `description`, `title`, ...) are annotations here
//! and are ignored; `$ref` is not needed because the schema is generated with inlined
//! subschemas.

use serde_json::Value;

/// Every way `value` breaks `schema`; empty when it conforms.
pub fn check(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = vec![];
    walk(schema, value, "", &mut errors);
    errors
}

fn type_name(v: &Value) -> &'static str {
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

fn type_matches(want: &str, v: &Value) -> bool {
    let have = type_name(v);
    have == want || (want == "number" && have == "integer")
}

fn at(path: &str) -> String {
    if path.is_empty() { "the answer".to_string() } else { path.to_string() }
}

fn walk(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{}: no value is allowed here", at(path)));
        }
        return;
    };
    if let Some(t) = s.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !allowed.is_empty() && !allowed.iter().any(|w| type_matches(w, value)) {
            errors.push(format!("{}: expected {}, got {}", at(path), allowed.join(" or "), type_name(value)));
            return;
        }
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        errors.push(format!("{}: must be {c}, got {value}", at(path)));
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        let list: Vec<String> = options.iter().map(Value::to_string).collect();
        errors.push(format!("{}: {value} is not one of {}", at(path), list.join(", ")));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errors.push(format!("{}: {value} is below the minimum {min}", at(path)));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errors.push(format!("{}: {value} is above the maximum {max}", at(path)));
        }
    }
    if let Value::Object(map) = value {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push(format!("{}: the required field \"{r}\" is missing", at(path)));
                }
            }
        }
        for (k, v) in map {
            let sub = format!("{path}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => walk(ps, v, &sub, errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        let known: Vec<&str> =
                            props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                        errors.push(format!(
                            "{}: unknown field \"{k}\" (allowed: {})",
                            at(path),
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        ));
                    }
                    Some(extra @ Value::Object(_)) => walk(extra, v, &sub, errors),
                    _ => {}
                },
            }
        }
    }
    if let Value::String(text) = value
        && let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && text.chars().count() as u64 > max
    {
        errors.push(format!("{}: longer than {max} characters", at(path)));
    }
    if let Value::Array(list) = value {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (list.len() as u64) < min
        {
            errors.push(format!("{}: needs at least {min} entries", at(path)));
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && (list.len() as u64) > max
        {
            errors.push(format!("{}: has more than {max} entries", at(path)));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, v) in list.iter().enumerate() {
                walk(item_schema, v, &format!("{path}/{i}"), errors);
            }
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = s.get(key) {
            one_of(key == "oneOf", branches, value, path, errors);
        }
    }
}

/// `oneOf`/`anyOf`. When the branches are told apart by a `const` property (a tagged enum,
/// such as an intent's `name`), the errors of the branch the value names are reported, or
/// the tag is named unknown; otherwise the errors of the closest branch.
fn one_of(exactly_one: bool, branches: &[Value], value: &Value, path: &str, errors: &mut Vec<String>) {
    let results: Vec<Vec<String>> = branches.iter().map(|b| check_at(b, value, path)).collect();
    let passing = results.iter().filter(|r| r.is_empty()).count();
    if passing == 1 || (!exactly_one && passing > 0) {
        return;
    }
    if passing > 1 {
        errors.push(format!("{}: matches more than one alternative", at(path)));
        return;
    }
    // A discriminating property: one whose subschema is a `const` in every branch.
    let tag = branches.first().and_then(|b| b.get("properties")).and_then(Value::as_object).and_then(|p| {
        p.iter().map(|(k, _)| k.clone()).find(|k| {
            branches.iter().all(|b| b.get("properties").and_then(|p| p.get(k)).and_then(|x| x.get("const")).is_some())
        })
    });
    if let (Some(tag), Value::Object(map)) = (tag, value) {
        let consts: Vec<&Value> =
            branches.iter().filter_map(|b| b.pointer(&format!("/properties/{tag}/const"))).collect();
        match map.get(&tag) {
            Some(given) => match consts.iter().position(|c| *c == given) {
                Some(i) => errors.extend(results[i].iter().cloned()),
                None => errors.push(format!(
                    "{}/{tag}: unknown {tag} {given} (known: {})",
                    path,
                    consts.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                )),
            },
            None => errors.push(format!("{}: the required field \"{tag}\" is missing", at(path))),
        }
        return;
    }
    let closest = results.iter().min_by_key(|r| r.len()).cloned().unwrap_or_default();
    errors.extend(closest);
}

fn check_at(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut e = vec![];
    walk(schema, value, path, &mut e);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_problem_with_its_path() {
        let schema = json!({
            "type": "object", "additionalProperties": false, "required": ["a"],
            "properties": {"a": {"type": "integer", "minimum": 1}, "b": {"type": ["string", "null"], "enum": ["x", "y", null]}}
        });
        assert!(check(&schema, &json!({"a": 3, "b": "x"})).is_empty());
        assert!(check(&schema, &json!({"a": 3, "b": null})).is_empty());
        let e = check(&schema, &json!({"a": 0, "b": "z", "c": 1}));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("/a: 0 is below the minimum")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("/b: \"z\" is not one of")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("unknown field \"c\"")), "{e:?}");
        assert_eq!(check(&schema, &json!({})), vec!["the answer: the required field \"a\" is missing"]);
        assert_eq!(check(&schema, &json!([1])), vec!["the answer: expected object, got array"]);
    }

    #[test]
    fn tagged_alternatives_report_the_named_branch_or_an_unknown_tag() {
        let schema = json!({"oneOf": [
            {"type": "object", "properties": {"name": {"const": "a"}, "n": {"type": "integer"}}, "required": ["name"]},
            {"type": "object", "properties": {"name": {"const": "b"}, "s": {"type": "string"}}, "required": ["name"]}
        ]});
        assert!(check(&schema, &json!({"name": "b", "s": "x"})).is_empty());
        assert_eq!(check(&schema, &json!({"name": "a", "n": "x"})), vec!["/n: expected integer, got string"]);
        let e = check(&schema, &json!({"name": "c"}));
        assert_eq!(e, vec!["/name: unknown name \"c\" (known: \"a\", \"b\")"]);
    }
}
