//! The model's reading against the rule-based parser's. A small model answers in shape (the
//! schema is a grammar) but not always in sense: "John Smith is leaving; give his content to
//! Tom Baker and remove his access" came back from SmolLM2-135M as `query` +
//! `delete-content {project: "Tom Baker"}`. So a destructive intent of the model that the
//! parser did not also find — the same intent with the same parameters, after defaults — is
//! never planned silently: the planner asks which reading to plan, quoting both
//! ([`Dispute::question`]), and plans no destructive step until it is answered.
//!
//! Destructive intents are those whose plans move, re-own, revoke or delete (DESIGN.md §5:
//! the step kinds of effect `destructive`); `query`, `audit-permissions`, `notify-owners` and
//! `migrate-datasource` (a write, undone from a saved copy) are not.

use serde_json::{Map, Value};
use tabflow_plan::Intent;

/// The id of the question a dispute asks; its choices are [`PARSER`], [`MODEL`], [`CANCEL`].
pub const QUESTION_ID: &str = "reading";
/// Plan the rule-based parser's reading.
pub const PARSER: &str = "parser";
/// Plan the model's reading.
pub const MODEL: &str = "model";
/// Plan neither.
pub const CANCEL: &str = "cancel";

/// Whether an intent's plan can hold destructive steps.
pub fn is_destructive(intent: &Intent) -> bool {
    !matches!(
        intent,
        Intent::Query(_) | Intent::AuditPermissions(_) | Intent::NotifyOwners(_) | Intent::MigrateDatasource(_)
    )
}

/// Two readings that differ where it matters.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispute {
    /// The model's intents, all of them.
    pub model: Vec<Intent>,
    /// The rule-based parser's intents.
    pub parser: Vec<Intent>,
    /// The model's destructive intents the parser did not also find.
    pub unconfirmed: Vec<Intent>,
}

/// The model's destructive intents that the parser did not also find (same name, same
/// parameters after defaults; names compared without regard to case); `None` when there are
/// none.
pub fn cross_check(model: &[Intent], parser: &[Intent]) -> Option<Dispute> {
    let parsed: Vec<(&str, Map<String, Value>)> = parser.iter().map(|p| (p.name(), normalized(p))).collect();
    let unconfirmed: Vec<Intent> = model
        .iter()
        .filter(|m| is_destructive(m))
        .filter(|m| {
            let mine = normalized(m);
            !parsed.iter().any(|(name, params)| *name == m.name() && *params == mine)
        })
        .cloned()
        .collect();
    if unconfirmed.is_empty() {
        return None;
    }
    Some(Dispute { model: model.to_vec(), parser: parser.to_vec(), unconfirmed })
}

/// An intent's parameters with the planner's defaults filled in and text compared the way
/// grounding compares names: trimmed, lowercase, lists sorted.
fn normalized(intent: &Intent) -> Map<String, Value> {
    let mut p = intent.params_json();
    let defaults: &[(&str, Value)] = match intent {
        Intent::OffboardUser(_) => &[("remove_access", Value::Bool(true)), ("delete_user", Value::Bool(false))],
        Intent::ArchiveStaleContent(_) => {
            &[("archive_project", Value::String(String::new())), ("content", Value::String(String::new()))]
        }
        Intent::ConsolidateDatasources(_) => &[("archive_project", Value::String(String::new()))],
        Intent::DeleteContent(_) => &[("content", Value::String(String::new()))],
        Intent::ReclaimLicenses(_) => &[("action", Value::String(String::new()))],
        Intent::CleanSubscriptions(_) => &[("reason", Value::String(String::new()))],
        _ => &[],
    };
    // Defaults that are words: the default's own word and absence are the same reading.
    let default_words: &[(&str, &str)] = &[
        ("archive_project", "archive"),
        ("content", "workbooks"),
        ("action", "unlicense"),
        ("reason", "archived-content,failing,unlicensed-users"),
    ];
    for (k, v) in defaults {
        p.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    for (k, v) in p.iter_mut() {
        *v = canon(v);
        if let Some((_, word)) = default_words.iter().find(|(dk, _)| dk == k)
            && *v == Value::String(canon_text(word))
        {
            *v = Value::String(String::new());
        }
    }
    p
}

fn canon_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn canon(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(canon_text(s)),
        Value::Array(a) => {
            let mut items: Vec<String> = a
                .iter()
                .map(|x| match canon(x) {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect();
            items.sort();
            items.dedup();
            Value::String(items.join(","))
        }
        other => other.clone(),
    }
}

/// `delete-content {"project": "Tom Baker"}` for each intent, `; `-separated; "nothing" when
/// there are none.
pub fn describe(intents: &[Intent]) -> String {
    if intents.is_empty() {
        return "nothing".into();
    }
    intents
        .iter()
        .map(|i| {
            let p = i.params_json();
            if p.is_empty() { i.name().to_string() } else { format!("{} {}", i.name(), Value::Object(p)) }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Dispute {
    /// The question: both readings quoted, the model's destructive intents the parser did not
    /// find named, and what each choice plans.
    pub fn question(&self, model_label: &str) -> String {
        format!(
            "The model and the rule-based parser read this request differently, and the model's reading would change the site in a way the parser did not find ({}). \
The model ({model_label}) read: {}. The rule-based parser read: {}. \
Which reading should tabflow plan? {PARSER} = the parser's reading, {MODEL} = the model's reading, {CANCEL} = neither (nothing is planned). No destructive step is planned until you answer.",
            describe(&self.unconfirmed),
            describe(&self.model),
            describe(&self.parser),
        )
    }

    /// The model's intents that may be planned before the question is answered: those that
    /// change nothing.
    pub fn safe(&self) -> Vec<Intent> {
        self.model.iter().filter(|i| !is_destructive(i)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn intent(name: &str, params: Value) -> Intent {
        Intent::from_parts(name, params.as_object().cloned().unwrap_or_default()).unwrap()
    }

    #[test]
    fn the_leaver_misread_as_a_delete_is_disputed() {
        let model = vec![
            intent("query", json!({"question": "John Smith is leaving"})),
            intent("delete-content", json!({"project": "Tom Baker"})),
        ];
        let parser = vec![intent("offboard-user", json!({"user": "John Smith", "new_owner": "Tom Baker"}))];
        let d = cross_check(&model, &parser).expect("disputed");
        assert_eq!(d.unconfirmed, vec![model[1].clone()]);
        assert_eq!(d.safe(), vec![model[0].clone()]);
        let q = d.question("openai model 'smollm2'");
        assert!(q.contains(r#"The model (openai model 'smollm2') read: query {"question":"John Smith is leaving"}; delete-content {"project":"Tom Baker"}"#), "{q}");
        assert!(
            q.contains(r#"The rule-based parser read: offboard-user {"new_owner":"Tom Baker","user":"John Smith"}"#),
            "{q}"
        );
    }

    #[test]
    fn agreement_after_defaults_and_case_is_no_dispute() {
        let model = vec![
            intent("offboard-user", json!({"user": "john  smith", "new_owner": "Tom Baker", "remove_access": true})),
            intent("archive-stale-content", json!({"project": "finance", "stale_days": 90, "content": "workbooks"})),
            intent("notify-owners", json!({"audience": "content-owners"})),
        ];
        let parser = vec![
            intent("archive-stale-content", json!({"project": "Finance", "stale_days": 90})),
            intent("offboard-user", json!({"user": "John Smith", "new_owner": "tom baker"})),
        ];
        assert_eq!(cross_check(&model, &parser), None);
        // Less destructive than the parser's reading: nothing to ask.
        assert_eq!(cross_check(&model[2..], &parser), None);
    }

    #[test]
    fn a_destructive_parameter_the_parser_did_not_find_is_disputed() {
        let parser = vec![intent("archive-stale-content", json!({"project": "Sales", "stale_days": 180}))];
        for (name, params) in [
            ("archive-stale-content", json!({"project": "Finance", "stale_days": 180})),
            ("archive-stale-content", json!({"project": "Sales", "stale_days": 30})),
            ("archive-stale-content", json!({"project": "Sales"})),
            ("archive-stale-content", json!({"project": "Sales", "stale_days": 180, "content": "all"})),
            ("delete-content", json!({"project": "Sales", "stale_days": 180})),
        ] {
            let model = vec![intent(name, params.clone())];
            let d = cross_check(&model, &parser).unwrap_or_else(|| panic!("{name} {params} not disputed"));
            assert_eq!(d.unconfirmed, model);
            assert!(d.safe().is_empty());
        }
        let off = vec![intent("offboard-user", json!({"user": "John Smith", "remove_access": false}))];
        let model = vec![intent("offboard-user", json!({"user": "John Smith"}))];
        assert!(cross_check(&model, &off).is_some(), "removing access the parser did not read");
        let model = vec![intent(
            "offboard-user",
            json!({"user": "John Smith", "new_owner": "Tom Baker", "remove_access": false}),
        )];
        assert!(cross_check(&model, &off).is_some(), "a new owner the parser did not read");
        assert_eq!(cross_check(&[], &off), None);
    }

    #[test]
    fn which_intents_are_destructive() {
        for (name, destructive) in [
            ("query", false),
            ("audit-permissions", false),
            ("notify-owners", false),
            ("migrate-datasource", false),
            ("archive-stale-content", true),
            ("delete-content", true),
            ("offboard-user", true),
            ("update-permissions", true),
            ("consolidate-datasources", true),
            ("reclaim-licenses", true),
            ("clean-subscriptions", true),
        ] {
            assert_eq!(is_destructive(&intent(name, json!({}))), destructive, "{name}");
        }
    }
}
