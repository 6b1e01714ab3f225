//! The intent catalogue of DESIGN.md §5 as Rust types. The JSON Schema the model must follow
//! is generated from these types ([`schema`]), so the schema, the validation and the
//! conversion to the rule-based parser's [`tabflow_nl::Intent`] cannot drift apart.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the model answers: the request's intents, in the order the user gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The intents, in the order the user gave them; empty when the request asks for
    /// nothing in the catalogue.
    pub intents: Vec<TypedIntent>,
}

/// One intent: its catalogue name and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "name", content = "params", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TypedIntent {
    /// Move workbooks nobody viewed for a while to an archive project.
    ArchiveStaleContent(Archive),
    /// Find duplicate or similar published datasources and merge them.
    ConsolidateDatasources(ProjectOnly),
    /// Hand over a departing user's content (and optionally remove their access).
    OffboardUser(Offboard),
    /// Review who can do what, optionally on a schedule.
    AuditPermissions(AuditPermissions),
    /// Change permissions (e.g. make the remaining content read-only).
    UpdatePermissions(UpdatePermissions),
    /// Tell owners about the changes.
    NotifyOwners(Notify),
    /// Repoint workbooks from one published datasource to another.
    MigrateDatasource(Migrate),
    /// Delete content (staged: quarantined first).
    DeleteContent(Delete),
    /// A simple read-only question about the site.
    Query(Query),
}

/// `archive-stale-content` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// Project name as the user wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Not viewed for this many days (e.g. "3 months" = 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stale_days: Option<u32>,
    /// Start of a date window, YYYY-MM-DD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// End of a date window, YYYY-MM-DD (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Where to move the workbooks (default "Archive").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_project: Option<String>,
    /// Only content with one of these tags (lowercase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// What to archive: "workbooks" (default), "datasources" or "all".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Parameters of intents that take only a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProjectOnly {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `offboard-user` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Offboard {
    /// The person leaving, exactly as written ("John", "jdoe", an email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Their team or group, when the request names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Who receives the content, when the request names someone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_owner: Option<String>,
    /// True when the request also asks to remove the person's access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_access: Option<bool>,
}

/// Schedules the planner understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Daily,
    Weekly,
    Monthly,
}

/// `audit-permissions` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditPermissions {
    /// Only content with one of these tags (lowercase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// A recurring review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// How permissions change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    ReadOnly,
    Locked,
    Unlocked,
    Restrict,
    Revoke,
    Grant,
    ProjectDefault,
}

/// `update-permissions` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdatePermissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `remaining`, `all`, or a plural content type such as `workbooks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Only content with one of these tags (lowercase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Who is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    ProjectOwners,
    ContentOwners,
}

/// `notify-owners` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `migrate-datasource` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Migrate {
    /// A datasource name, or `deprecated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Only workbooks in this project (and its sub-projects) are repointed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `delete-content` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    /// `workbook`, `datasource`, ...
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stale_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `query` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The question, as the user asked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
}

/// The JSON Schema of [`Answer`] (2020-12, subschemas inlined).
pub fn schema() -> Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<Answer>()
        .to_value()
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
            TypedIntent::ArchiveStaleContent(a) => (a.since.as_deref(), a.until.as_deref()),
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

impl TypedIntent {
    /// The same intent as the rule-based parser gives it (absent parameters left out).
    pub fn to_nl(&self) -> tabflow_nl::Intent {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let params = v.get("params").and_then(Value::as_object).cloned().unwrap_or_default();
        tabflow_nl::Intent { name, params }
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
        assert_eq!(a.intents[0].to_nl().params["stale_days"], json!(90));
        assert_eq!(a.intents[1].to_nl().name, "notify-owners");
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
    fn a_fenced_answer_is_read() {
        let a = validate("```json\n{\"intents\": [{\"name\": \"query\", \"params\": {}}]}\n```", &schema()).unwrap();
        assert_eq!(a.intents.len(), 1);
    }
}
