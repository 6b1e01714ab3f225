//! Requests that name a template (issue #21): "run the quarterly cleanup for Sales", "run
//! template audit-permissions with tags=sensitive", "use the offboard user template for
//! jsmith with new_owner=Tom". The caller gives the template names it knows (built-in and
//! stored); a request that starts with run/use/apply and then names one of them (its dashes
//! may be spaces, "the"/"template"/"my"/"our" around it are skipped) is a [`TemplateCall`]:
//! `K=V` pairs are parameters, and "for X" (or "on X", "in X") is the target, which the caller
//! gives to the template's main parameter (its project, its user).

use serde::Serialize;

/// A request that names a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateCall {
    /// The template's name as the caller gave it.
    pub name: String,
    /// What "for X" named, if anything (quotes removed).
    pub target: Option<String>,
    /// `K=V` parameters, in the order written (a value may be quoted or a comma list).
    pub params: Vec<(String, String)>,
}

const VERBS: &[&str] = &["run", "use", "apply", "start"];
const SKIP: &[&str] = &["the", "template", "my", "our", "a"];
const TARGET: &[&str] = &["for", "on", "in"];

/// The template call a request is, if it names one of `names`. Matching ignores case; the
/// longest name that fits wins ("project cleanup" over "project").
pub fn template_call(request: &str, names: &[&str]) -> Option<TemplateCall> {
    let text = request.trim().trim_end_matches(['.', '!']);
    let owned = words_of(text);
    let mut words: Vec<&str> = owned.iter().map(String::as_str).collect();
    // "please run …", "tabflow, run …"
    while words
        .first()
        .is_some_and(|w| matches!(w.to_ascii_lowercase().trim_end_matches(','), "please" | "tabflow" | "now"))
    {
        words.remove(0);
    }
    let verb = words.first()?.to_ascii_lowercase();
    if !VERBS.contains(&verb.as_str()) {
        return None;
    }
    let mut rest: &[&str] = words.get(1..)?;
    while rest.first().is_some_and(|w| SKIP.contains(&w.to_ascii_lowercase().as_str())) {
        rest = rest.get(1..)?;
    }
    // The longest known name whose words start `rest`.
    let mut best: Option<(&str, usize)> = None;
    for name in names {
        let parts: Vec<String> =
            name.split(['-', '_', ' ']).filter(|p| !p.is_empty()).map(str::to_ascii_lowercase).collect();
        if parts.is_empty() || parts.len() > rest.len() {
            continue;
        }
        let whole = rest.first().is_some_and(|w| w.eq_ignore_ascii_case(name));
        let n = if whole {
            1
        } else if rest.iter().zip(&parts).all(|(w, p)| w.to_ascii_lowercase().trim_end_matches(',') == p.as_str()) {
            parts.len()
        } else {
            continue;
        };
        if best.is_none_or(|(b, _)| b.len() < name.len()) {
            best = Some((name, n));
        }
    }
    let (name, used) = best?;
    let mut rest: &[&str] = rest.get(used..).unwrap_or_default();
    if rest.first().is_some_and(|w| w.eq_ignore_ascii_case("template")) {
        rest = rest.get(1..).unwrap_or_default();
    }
    let mut params = vec![];
    let mut target: Vec<&str> = vec![];
    let mut in_target = false;
    for w in rest {
        let lower = w.to_ascii_lowercase();
        let bare = w.trim_end_matches(',');
        if let Some((k, v)) = bare.split_once('=') {
            let k = k.trim();
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                params.push((k.to_string(), unquote(v)));
                in_target = false;
                continue;
            }
        }
        if TARGET.contains(&lower.as_str()) && target.is_empty() {
            in_target = true;
            continue;
        }
        if matches!(lower.as_str(), "with" | "and" | "using") {
            in_target = false;
            continue;
        }
        if in_target {
            target.push(bare);
        }
    }
    let target = (!target.is_empty()).then(|| unquote(&target.join(" ")));
    Some(TemplateCall { name: name.to_string(), target, params })
}

/// Words split at white space, a quoted span ("Human Resources", new_owner="Tom Baker") kept
/// as one.
fn words_of(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        if matches!(c, '"' | '“' | '”') {
            quoted = !quoted;
            cur.push(c);
        } else if c.is_whitespace() && !quoted {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches(|c| c == '"' || c == '\'' || c == '“' || c == '”').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["audit-permissions", "quarterly-cleanup", "project-cleanup", "offboard-user"];

    fn call(name: &str, target: Option<&str>, params: &[(&str, &str)]) -> Option<TemplateCall> {
        Some(TemplateCall {
            name: name.into(),
            target: target.map(str::to_string),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        })
    }

    #[test]
    fn names_with_spaces_or_dashes_targets_and_parameters() {
        assert_eq!(
            template_call("run the quarterly cleanup for Sales", NAMES),
            call("quarterly-cleanup", Some("Sales"), &[])
        );
        assert_eq!(
            template_call("run template audit-permissions with tags=sensitive", NAMES),
            call("audit-permissions", None, &[("tags", "sensitive")])
        );
        assert_eq!(
            template_call("Please use the offboard user template for jsmith with new_owner=\"Tom Baker\"", NAMES),
            call("offboard-user", Some("jsmith"), &[("new_owner", "Tom Baker")])
        );
        assert_eq!(
            template_call("Run project cleanup on \"Human Resources\" with stale_days=60.", NAMES),
            call("project-cleanup", Some("Human Resources"), &[("stale_days", "60")])
        );
        assert_eq!(
            template_call("run audit-permissions tags=sensitive,finance", NAMES),
            call("audit-permissions", None, &[("tags", "sensitive,finance")])
        );
    }

    #[test]
    fn other_requests_are_not_template_calls() {
        for r in [
            "archive stale workbooks in Finance",
            "run a permission audit on sensitive workbooks",
            "run the weekly review for Sales",
            "quarterly cleanup for Sales",
            "",
            "run",
            "run the",
        ] {
            assert_eq!(template_call(r, NAMES), None, "{r}");
        }
    }
}
