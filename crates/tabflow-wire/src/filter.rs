//! The REST `filter=` expression: `field:op:value[,field:op:value...]`, ANDed.
//!
//! Operators: `eq gt gte lt lte in has cieq`; `in` takes `[a,b,c]`. `, & : [ ]` cannot be
//! escaped inside values (Tableau's filtering page). Values may contain `*` wildcards (Cloud,
//! Server 2022.1.14+), matched by `eq` and `cieq`.
//!
//! Two wire forms exist: TSC below API 3.7 appends the expression raw
//! (`ownerName:eq:John%20Smith`), from 3.7 on it percent-encodes it
//! (`ownerName%3Aeq%3AJohn+Smith`). [`Filter::parse_query_value`] reads both.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Has,
    Cieq,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::In => "in",
            Op::Has => "has",
            Op::Cieq => "cieq",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "has" => Op::Has,
            "cieq" => Op::Cieq,
            _ => return None,
        })
    }
}

/// One `field:op:value` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    /// One value, or several for `in`.
    pub values: Vec<String>,
}

/// A whole `filter=` expression.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    pub conditions: Vec<Condition>,
}

/// What is wrong with a filter expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter expression {expression:?}: {reason}")]
pub struct ParseError {
    pub expression: String,
    pub reason: String,
}

/// The typed value of a field on the resource being filtered.
#[derive(Debug, Clone, Copy)]
pub enum FieldValue<'a> {
    Text(&'a str),
    /// ISO-8601 UTC timestamps compare as text (`2024-01-02T03:04:05Z`).
    Date(&'a str),
    Number(i64),
    Bool(bool),
    /// Tags.
    List(&'a [String]),
    /// The field is absent on this resource (never matches).
    Missing,
}

impl Filter {
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Adds a condition (builder style).
    pub fn and(mut self, field: &str, op: Op, value: &str) -> Filter {
        self.conditions.push(Condition { field: field.to_string(), op, values: vec![value.to_string()] });
        self
    }

    /// Adds an `in` condition.
    pub fn and_in<I, S>(mut self, field: &str, values: I) -> Filter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.conditions.push(Condition {
            field: field.to_string(),
            op: Op::In,
            values: values.into_iter().map(Into::into).collect(),
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Parses a query value as it arrives on the wire, percent-encoded or not
    /// (`+` is a space, as in form encoding).
    pub fn parse_query_value(raw: &str) -> Result<Filter, ParseError> {
        let plus = raw.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&plus).decode_utf8_lossy();
        Filter::parse(&decoded)
    }

    /// Parses a decoded expression.
    pub fn parse(expr: &str) -> Result<Filter, ParseError> {
        let err = |reason: String| ParseError { expression: expr.to_string(), reason };
        let mut conditions = Vec::new();
        if expr.trim().is_empty() {
            return Err(err("the expression is empty".into()));
        }
        for part in split_top_level(expr) {
            let mut it = part.splitn(3, ':');
            let field = it.next().unwrap_or("").trim();
            let op = it.next().ok_or_else(|| err(format!("{part:?} has no operator (expected field:op:value)")))?;
            let value = it.next().ok_or_else(|| err(format!("{part:?} has no value (expected field:op:value)")))?;
            if field.is_empty() {
                return Err(err(format!("{part:?} has no field name")));
            }
            let op = Op::parse(op).ok_or_else(|| {
                err(format!("unknown operator {op:?}; use one of eq, gt, gte, lt, lte, in, has, cieq"))
            })?;
            let values = if op == Op::In {
                let inner = value
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .ok_or_else(|| err(format!("the value of 'in' must be a list like [a,b], got {value:?}")))?;
                inner.split(',').map(|s| s.to_string()).collect()
            } else {
                vec![value.to_string()]
            };
            conditions.push(Condition { field: field.to_string(), op, values });
        }
        Ok(Filter { conditions })
    }

    /// The decoded expression (`name:eq:Sales,tags:in:[a,b]`).
    pub fn render(&self) -> String {
        self.to_string()
    }

    /// The percent-encoded expression, ready to append after `filter=`.
    pub fn render_encoded(&self) -> String {
        utf8_percent_encode(&self.render(), QUERY_VALUE).to_string()
    }
}

/// Characters left as they are in a query value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'*');

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if c.op == Op::In {
                write!(f, "{}:in:[{}]", c.field, c.values.join(","))?;
            } else {
                write!(f, "{}:{}:{}", c.field, c.op.as_str(), c.values.first().map(String::as_str).unwrap_or(""))?;
            }
        }
        Ok(())
    }
}

/// Splits on commas that are not inside `[...]`.
fn split_top_level(expr: &str) -> Vec<&str> {
    let mut depth = 0i32;
    expr.split(|c| {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        c == ',' && depth == 0
    })
    .collect()
}

impl Condition {
    /// Does `actual` satisfy this condition?
    pub fn matches(&self, actual: FieldValue<'_>) -> bool {
        let v0 = self.values.first().map(String::as_str).unwrap_or("");
        match actual {
            FieldValue::Missing => false,
            FieldValue::Text(a) => match self.op {
                Op::Eq => wildcard_eq(v0, a, false),
                Op::Cieq => wildcard_eq(v0, a, true),
                Op::In => self.values.iter().any(|v| wildcard_eq(v, a, false)),
                Op::Has => a.to_lowercase().contains(&v0.to_lowercase()),
                Op::Gt => a > v0,
                Op::Gte => a >= v0,
                Op::Lt => a < v0,
                Op::Lte => a <= v0,
            },
            FieldValue::Date(a) => {
                let a = normalize_date(a);
                match self.op {
                    Op::In => self.values.iter().any(|v| normalize_date(v) == a),
                    op => cmp_op(op, a.as_str().cmp(normalize_date(v0).as_str())),
                }
            }
            FieldValue::Number(a) => match self.op {
                Op::In => self.values.iter().any(|v| v.trim().parse::<i64>() == Ok(a)),
                op => match v0.trim().parse::<i64>() {
                    Ok(v) => cmp_op(op, a.cmp(&v)),
                    Err(_) => false,
                },
            },
            FieldValue::Bool(a) => {
                let b = v0.eq_ignore_ascii_case("true");
                matches!(self.op, Op::Eq | Op::Cieq) && a == b
            }
            FieldValue::List(items) => match self.op {
                Op::In => items.iter().any(|t| self.values.iter().any(|v| wildcard_eq(v, t, false))),
                Op::Eq => items.iter().any(|t| wildcard_eq(v0, t, false)),
                Op::Cieq => items.iter().any(|t| wildcard_eq(v0, t, true)),
                Op::Has => items.iter().any(|t| t.to_lowercase().contains(&v0.to_lowercase())),
                _ => false,
            },
        }
    }
}

fn cmp_op(op: Op, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq | Op::Cieq | Op::In => ord == Equal,
        Op::Gt => ord == Greater,
        Op::Gte => ord != Less,
        Op::Lt => ord == Less,
        Op::Lte => ord != Greater,
        Op::Has => false,
    }
}

/// Dates compare as `YYYY-MM-DDTHH:MM:SSZ`; a bare date means midnight.
fn normalize_date(s: &str) -> String {
    let s = s.trim();
    if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.trim_end_matches(".000Z").trim_end_matches('Z').to_string() + "Z"
    }
}

/// `pattern` with `*` wildcards against `text`.
pub fn wildcard_eq(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    if !pattern.contains('*') {
        return if case_insensitive {
            pattern.eq_ignore_ascii_case(text) || pattern.to_lowercase() == text.to_lowercase()
        } else {
            pattern == text
        };
    }
    let (p, t) = if case_insensitive {
        (pattern.to_lowercase(), text.to_lowercase())
    } else {
        (pattern.to_string(), text.to_string())
    };
    let parts: Vec<&str> = p.split('*').collect();
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = rest.get(pos + part.len()..).unwrap_or_default(),
                None => return false,
            }
        }
    }
    rest.is_empty()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_render() {
        let f = Filter::parse("name:eq:Sales,tags:in:[a,b c],createdAt:gte:2024-01-01T00:00:00Z").unwrap();
        assert_eq!(f.conditions.len(), 3);
        assert_eq!(f.conditions[1].values, vec!["a", "b c"]);
        assert_eq!(f.render(), "name:eq:Sales,tags:in:[a,b c],createdAt:gte:2024-01-01T00:00:00Z");
        assert_eq!(
            Filter::new().and("ownerName", Op::Eq, "John Smith").render_encoded(),
            "ownerName%3Aeq%3AJohn%20Smith"
        );
    }

    #[test]
    fn both_wire_forms() {
        let a = Filter::parse_query_value("ownerName%3Aeq%3AJohn+Smith").unwrap();
        let b = Filter::parse_query_value("ownerName:eq:John%20Smith").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.conditions[0].values[0], "John Smith");
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(Filter::parse("name").unwrap_err().reason.contains("no operator"));
        assert!(Filter::parse("name:like:x").unwrap_err().reason.contains("unknown operator"));
        assert!(Filter::parse("tags:in:a,b").unwrap_err().reason.contains("list"));
        assert!(Filter::parse("").is_err());
    }

    #[test]
    fn matching() {
        let c = |e: &str| Filter::parse(e).unwrap().conditions.remove(0);
        assert!(c("name:eq:Sales*").matches(FieldValue::Text("Sales Overview")));
        assert!(!c("name:eq:Sales*").matches(FieldValue::Text("Big Sales")));
        assert!(c("name:eq:*Sales*").matches(FieldValue::Text("Big Sales Q2")));
        assert!(c("name:cieq:sales").matches(FieldValue::Text("SALES")));
        assert!(!c("name:eq:sales").matches(FieldValue::Text("SALES")));
        assert!(c("updatedAt:gt:2024-01-01T00:00:00Z").matches(FieldValue::Date("2024-02-01T00:00:00Z")));
        assert!(!c("updatedAt:lt:2024-01-01").matches(FieldValue::Date("2024-02-01T00:00:00Z")));
        assert!(c("tags:eq:sensitive").matches(FieldValue::List(&["a".into(), "sensitive".into()])));
        assert!(c("tags:in:[x,pii]").matches(FieldValue::List(&["pii".into()])));
        assert!(c("hitsTotal:gte:5").matches(FieldValue::Number(5)));
        assert!(!c("hitsTotal:gt:5").matches(FieldValue::Number(5)));
    }

    proptest! {
        #[test]
        fn encoded_round_trip(field in "[a-zA-Z]{1,10}", value in "[a-zA-Z0-9 ._'@-]{1,20}") {
            let f = Filter::new().and(&field, Op::Eq, &value);
            prop_assert_eq!(Filter::parse_query_value(&f.render_encoded()).unwrap(), f.clone());
            prop_assert_eq!(Filter::parse(&f.render()).unwrap(), f);
        }
    }
}
