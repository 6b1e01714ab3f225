//! Text that came from outside (names on the site, requests, config files) made safe for
//! where it goes: a terminal, a spreadsheet, an error message. No IO.
// Reads names and requests from outside (issue #17: no panic from outside data).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used))]

use std::borrow::Cow;

/// Characters a terminal may act on instead of showing: C0 controls other than newline and
/// tab (ESC starts colour, cursor and title sequences; CR overwrites the line), DEL, the C1
/// controls (U+0080–U+009F, e.g. U+009B, a one-character CSI), and the bidirectional
/// overrides and isolates that make a name read differently from what it is.
pub fn is_unsafe_for_terminal(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// `s` with every character of [`is_unsafe_for_terminal`] written as a visible `\uXXXX`
/// escape, so a site's name can neither move the cursor, recolour the screen nor reverse
/// what follows it. JSON stays valid and means the same (every such character is inside a
/// string, where `\uXXXX` is its escape), so every printer uses this one function.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_for_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_for_terminal(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A CSV cell a spreadsheet will not run as a formula: a cell starting with `=`, `+`, `-`,
/// `@`, tab or CR gets a leading `'` (OWASP's advice for CSV injection). The value is
/// otherwise unchanged; quoting is the writer's.
pub fn csv_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Where a TOML file is wrong without quoting it: `line L, column C (key `k`): message`,
/// with quoted text in the parser's message replaced by `"…"`. A config file's lines hold
/// passwords and tokens, and a parser's error normally prints the offending line.
/// `message` and `span` are those of the parser's error; `text` is the file.
pub fn toml_error(text: &str, message: &str, span: Option<std::ops::Range<usize>>) -> String {
    let message = unquote(message.trim());
    let Some(span) = span else { return message };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before.get(line_start..).map(|l| l.chars().count()).unwrap_or(0) + 1;
    let line = text.get(line_start..).and_then(|l| l.lines().next()).unwrap_or("");
    let key = key_of(line).or_else(|| table_of(text, line_start));
    match key {
        Some(k) => format!("line {line_no}, column {column} (key `{k}`): {message}"),
        None => format!("line {line_no}, column {column}: {message}"),
    }
}

/// The key of a `key = value` line (bare or quoted keys, dotted), if the line has one.
fn key_of(line: &str) -> Option<String> {
    let (left, _) = line.split_once('=')?;
    let key = left.trim();
    let ok = !key.is_empty()
        && key.len() <= 100
        && key.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '"' | '\''));
    ok.then(|| key.replace(['"', '\''], ""))
}

/// The `[table]` header above a position, for errors on a line that is not `key = value`.
fn table_of(text: &str, before: usize) -> Option<String> {
    let head = text.get(..before)?;
    head.lines().rev().map(str::trim).find(|l| l.starts_with('[')).and_then(|l| {
        let name = l.trim_matches(|c| c == '[' || c == ']').trim();
        let ok = !name.is_empty()
            && name.len() <= 100
            && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '"'));
        ok.then(|| name.replace('"', ""))
    })
}

/// A parser message with every `"…"` and `'…'` span replaced by `"…"`: serde quotes the
/// value it did not expect (`invalid type: string "hunter2", expected …`). Key names are in
/// backticks and stay.
fn unquote(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c == '`' {
            // A name in backticks (a key, or the characters a parser expected) stays.
            out.push(c);
            for d in chars.by_ref() {
                out.push(d);
                if d == '`' {
                    break;
                }
            }
        } else if c == '"' || c == '\'' {
            // Skip to the matching quote (or the end).
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
            }
            out.push_str("\"…\"");
        } else {
            out.push(c);
        }
    }
    out
}

/// A URL as it may be shown: the password of `user:password@` and every query value
/// (`?key=…`, `?sig=…`) replaced by `***`. The scheme, host, port and path stay, so the
/// message still says where.
pub fn redact_url(url: &str) -> String {
    let (main, fragment) = match url.split_once('#') {
        Some((m, _)) => (m, "#***"),
        None => (url, ""),
    };
    let (base, query) = match main.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (main, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = base.get(s + 3..at).unwrap_or("");
            let scheme = base.get(..s + 3).unwrap_or("");
            let rest = base.get(at..).unwrap_or("");
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}{user}:***{rest}"),
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    if let Some(q) = query {
        out.push('?');
        let masked: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => kv.to_string(),
            })
            .collect();
        out.push_str(&masked.join("&"));
    }
    out.push_str(fragment);
    out
}

/// The secrets a URL carries: the password of `user:password@` and every query value, as
/// written and percent-decoded.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = vec![];
    let main = url.split('#').next().unwrap_or("");
    let (base, query) = match main.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (main, None),
    };
    if let (Some(s), Some(at)) = (base.find("://"), base.rfind('@'))
        && at > s
        && let Some((_, password)) = base.get(s + 3..at).and_then(|u| u.split_once(':'))
    {
        out.push(password.to_string());
    }
    for kv in query.into_iter().flat_map(|q| q.split('&')) {
        if let Some((_, v)) = kv.split_once('=') {
            out.push(v.to_string());
        }
    }
    let decoded: Vec<String> = out.iter().map(|s| percent_decode(s)).filter(|d| !out.contains(d)).collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out
}

/// `%XX` decoded (invalid escapes kept as written; invalid UTF-8 replaced).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|h| (*h as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(if c == b'+' { b' ' } else { c });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_safe_escapes_controls_and_overrides() {
        assert!(matches!(terminal_safe("Sales Q1 — ünïcode\n\tok"), Cow::Borrowed(_)));
        assert_eq!(terminal_safe("a\u{1b}[31mred\u{7}"), "a\\u001b[31mred\\u0007");
        assert_eq!(terminal_safe("x\ry"), "x\\u000dy");
        assert_eq!(terminal_safe("evil\u{202e}fdp.exe"), "evil\\u202efdp.exe");
        assert_eq!(terminal_safe("\u{9b}2J"), "\\u009b2J");
        // JSON stays valid and means the same.
        let json = serde_json::to_string(&"n\u{202e}\u{1b}x").unwrap();
        let safe = terminal_safe(&json);
        assert_eq!(serde_json::from_str::<String>(&safe).unwrap(), "n\u{202e}\u{1b}x");
        assert!(!safe.chars().any(is_unsafe_for_terminal));
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        for f in ["=1+2", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_safe(f), format!("'{f}"));
        }
        assert_eq!(csv_safe("Finance"), "Finance");
        assert_eq!(csv_safe(""), "");
    }

    #[test]
    fn toml_errors_name_the_place_not_the_value() {
        let text = "[profiles.prod]\nserver = \"https://x\"\npat_secret = hunter2-secret\n";
        let start = text.find("hunter2").unwrap();
        let e = toml_error(text, "invalid string\nexpected `\"`, `'`", Some(start..start + 7));
        assert!(e.starts_with("line 3, column 14 (key `pat_secret`)"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = toml_error("x = 1", "invalid type: string \"hunter2\", expected usize", Some(0..1));
        assert!(!e.contains("hunter2") && e.contains("(key `x`)"), "{e}");
        assert_eq!(toml_error("", "missing field `server`", None), "missing field `server`");
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(redact_url("postgres://u:pw@db:5432/t?sslmode=require"), "postgres://u:***@db:5432/t?sslmode=***");
        assert_eq!(redact_url("https://llm.example/v1?key=AIza123#frag"), "https://llm.example/v1?key=***#***");
        assert_eq!(redact_url("https://h.example/x"), "https://h.example/x");
        assert_eq!(redact_url("smtp://user@mail:25"), "smtp://user@mail:25");
        assert_eq!(url_secrets("postgres://u:p%40ss@db/t?key=a+b"), vec!["p%40ss", "a+b", "p@ss", "a b"]);
        assert!(url_secrets("https://h.example/x").is_empty());
    }
}
