//! Presenting answers and errors: the answer as a text table, the choices an ambiguous or
//! unknown name offers, a question rewritten with the chosen name, and the error explained.

use super::*;

/// The answer as a readable table (rows beyond `max_rows` are counted, not printed).
pub fn render(a: &Answer, max_rows: usize) -> String {
    let mut out = format!("{}\n", a.summary);
    for n in &a.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    if a.kind == Kind::Count || a.rows.is_empty() {
        return out;
    }
    let cell = |v: &Value| match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(xs) => xs.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
        Value::Bool(b) => {
            if *b {
                "yes".into()
            } else {
                "no".into()
            }
        }
        other => other.to_string(),
    };
    let shown: Vec<Vec<String>> = a.rows.iter().take(max_rows).map(|r| r.iter().map(cell).collect()).collect();
    let widths: Vec<usize> = a
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            shown.iter().map(|r| r.get(i).map_or(0, |s| s.chars().count())).max().unwrap_or(0).max(c.len()).min(48)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let c: String = if c.chars().count() > w {
                c.chars().take(w.saturating_sub(1)).chain(['…']).collect()
            } else {
                c.clone()
            };
            s.push_str(&format!(" {c:<w$}"));
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(a.columns.iter().map(|c| c.to_uppercase().replace('_', " ")).collect()));
    for r in shown {
        out.push_str(&line(r));
    }
    if a.rows.len() > max_rows {
        out.push_str(&format!("  … and {} more (--json shows all)\n", a.rows.len() - max_rows));
    }
    out
}

/// The choices a plan question offers for this error (names that ground uniquely).
pub fn choices(e: &Error) -> Vec<String> {
    match e {
        Error::Ambiguous { choices, .. } => choices.clone(),
        Error::NotFound { suggestions, .. } => suggestions.clone(),
        _ => vec![],
    }
}

/// The question with the name `wanted` replaced by the quoted `chosen` one.
pub fn with_name(question: &str, wanted: &str, chosen: &str) -> String {
    let quoted = format!("\"{chosen}\"");
    for candidate in [format!("\"{wanted}\""), format!("'{wanted}'"), wanted.to_string()] {
        if let Some(i) = question.find(&candidate) {
            return format!("{}{quoted}{}", &question[..i], &question[i + candidate.len()..]);
        }
    }
    question.to_string()
}

/// The error as a plan question or CLI message, with what the user can do next.
pub fn explain(e: &Error) -> String {
    match e {
        Error::NotUnderstood { question } => format!(
            "I could not understand the question \"{question}\". I can answer questions like: {}.",
            EXAMPLES.iter().map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ")
        ),
        Error::Ambiguous { what, wanted, candidates, .. } => {
            format!("Which {what} do you mean by '{wanted}'? {}", candidates.join(", "))
        }
        Error::NotFound { suggestions, .. } if !suggestions.is_empty() => e.to_string(),
        Error::NotFound { .. } => format!("{e}."),
    }
}
