//! Templates: named, versioned, parameterised workflows (issue #21).
//!
//! A template is a title, typed parameters (type, default, allowed values, range,
//! description), one or more intents of the catalogue whose parameter values may be
//! references `"{{name}}"` to the template's parameters, and the write steps that may run
//! unattended (reads always may; destructive steps never do: they need an approval whatever a
//! template says, DESIGN.md §2.4). Built-in templates, one per workflow and named after the
//! intent it runs, are TOML files in `crates/tabflow-app/templates/` compiled into the
//! binary; user templates live in the store, each save a new version (`templates` table).
//!
//! Running a template plans it like any request ([`App::plan_template`]): its parameters are
//! checked (unknown, missing, wrong type, not allowed, out of range — every problem at once,
//! each with the fix), its intents built, and the plan records the template's name and
//! version (a note in the plan, and `plans.template` in the store).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tabflow_engine::plan::{Effect, Intent, Plan, StepKind};

use crate::App;
use crate::error::{Error, Kind, Result};
use crate::planning::{PlanRequest, Planned, Source};

/// The built-in templates' files, compiled in.
const BUILTIN: &[(&str, &str)] = &[
    ("archive-stale-content", include_str!("../templates/archive-stale-content.toml")),
    ("consolidate-datasources", include_str!("../templates/consolidate-datasources.toml")),
    ("offboard-user", include_str!("../templates/offboard-user.toml")),
    ("audit-permissions", include_str!("../templates/audit-permissions.toml")),
    ("update-permissions", include_str!("../templates/update-permissions.toml")),
    ("notify-owners", include_str!("../templates/notify-owners.toml")),
    ("migrate-datasource", include_str!("../templates/migrate-datasource.toml")),
    ("delete-content", include_str!("../templates/delete-content.toml")),
    ("query", include_str!("../templates/query.toml")),
    ("project-cleanup", include_str!("../templates/project-cleanup.toml")),
    ("reclaim-licenses", include_str!("../templates/reclaim-licenses.toml")),
    ("clean-subscriptions", include_str!("../templates/clean-subscriptions.toml")),
    ("review-extract-refreshes", include_str!("../templates/review-extract-refreshes.toml")),
];

/// The type of a template parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Text,
    Integer,
    Bool,
    List,
}

impl ParamType {
    fn words(self) -> &'static str {
        match self {
            ParamType::Text => "text",
            ParamType::Integer => "a whole number",
            ParamType::Bool => "true or false",
            ParamType::List => "a comma-separated list",
        }
    }
}

/// One parameter of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub description: String,
    /// Used when the parameter is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Must be given when there is no default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// The values a text (or each element of a list) may take; empty = any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// The range of an integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// One intent of a template: a catalogue name and its parameters, literal or `"{{param}}"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateIntent {
    pub name: String,
    #[serde(default)]
    pub params: Map<String, Value>,
}

/// A template (the TOML of a built-in, the JSON body of a stored one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    /// Built-ins carry it in their file; a stored template's is the store's.
    #[serde(default)]
    pub version: i64,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Write step kinds that may run without an approval (`create-project`,
    /// `repoint-workbooks`); reads always may, destructive steps never.
    #[serde(default)]
    pub unattended: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    pub intents: Vec<TemplateIntent>,
    /// Built into tabflow (not in the store).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub builtin: bool,
}

/// A template's name and version, as plans and runs record it (`name@vN`).
pub fn label(name: &str, version: i64) -> String {
    format!("{name}@v{version}")
}

/// A template run's inputs, resolved: the intents to plan and every parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub intents: Vec<Intent>,
    /// Each parameter's value (given or default; absent optional ones left out).
    pub values: BTreeMap<String, Value>,
    /// The request text the plan carries.
    pub request: String,
}

/// A parameter value: a reference when the whole string is `{{name}}`.
fn reference(v: &Value) -> Option<&str> {
    v.as_str()?.trim().strip_prefix("{{")?.strip_suffix("}}").map(str::trim)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

impl Template {
    /// A template from TOML text (a built-in's file, or `templates save --file`), checked.
    pub fn from_toml(text: &str) -> std::result::Result<Template, String> {
        let t: Template =
            toml::from_str(text).map_err(|e| tabflow_site::text::toml_error(text, e.message(), e.span()))?;
        t.check().map_err(|p| p.join("; "))?;
        Ok(t)
    }

    /// The template as TOML (what `templates show` prints).
    pub fn to_toml(&self) -> String {
        let mut t = self.clone();
        t.builtin = false;
        toml::to_string_pretty(&t).unwrap_or_else(|e| format!("# cannot render as TOML: {e}\n"))
    }

    /// Every problem with the template, or none: its name, title, intents and their keys,
    /// parameter references, parameter declarations and defaults, unattended steps — and
    /// that its intents build with sample values.
    pub fn check(&self) -> std::result::Result<(), Vec<String>> {
        let mut problems = vec![];
        if !valid_name(&self.name) {
            problems.push(format!(
                "'{}' is not a template name: use lowercase letters, digits and '-', starting with a letter, at most 64",
                self.name
            ));
        }
        if self.title.trim().is_empty() {
            problems.push("the title is empty".into());
        }
        if self.intents.is_empty() {
            problems.push("it has no intents".into());
        }
        let mut used = std::collections::BTreeSet::new();
        for (i, intent) in self.intents.iter().enumerate() {
            if !Intent::NAMES.contains(&intent.name.as_str()) {
                problems.push(format!(
                    "intent {}: '{}' is not an intent tabflow knows (one of: {})",
                    i + 1,
                    intent.name,
                    Intent::NAMES.join(", ")
                ));
                continue;
            }
            let keys = Intent::keys(&intent.name);
            for (k, v) in &intent.params {
                if !keys.contains(k) {
                    problems.push(format!(
                        "intent {} takes no parameter '{k}' (it takes: {})",
                        intent.name,
                        keys.join(", ")
                    ));
                }
                if let Some(r) = reference(v) {
                    if self.params.contains_key(r) {
                        used.insert(r.to_string());
                    } else {
                        problems.push(format!(
                            "intent {}: {k} refers to '{{{{{r}}}}}', which is not a parameter",
                            intent.name
                        ));
                    }
                }
            }
        }
        for (name, p) in &self.params {
            if !valid_name(&name.replace('_', "-")) {
                problems.push(format!("'{name}' is not a parameter name: use lowercase letters, digits and '_'"));
            }
            if !used.contains(name) {
                problems.push(format!("parameter '{name}' is declared but no intent uses it"));
            }
            if !p.allowed.is_empty() && !matches!(p.kind, ParamType::Text | ParamType::List) {
                problems.push(format!("parameter '{name}': allowed values are for text and list parameters"));
            }
            if (p.min.is_some() || p.max.is_some()) && p.kind != ParamType::Integer {
                problems.push(format!("parameter '{name}': min and max are for integer parameters"));
            }
            if let (Some(lo), Some(hi)) = (p.min, p.max)
                && lo > hi
            {
                problems.push(format!("parameter '{name}': min {lo} is above max {hi}"));
            }
            if let Some(d) = &p.default
                && let Err(e) = typed(name, p, d)
            {
                problems.push(format!("the default of {e}"));
            }
        }
        for s in &self.unattended {
            match StepKind::ALL.iter().find(|k| k.as_str() == s) {
                None => problems.push(format!("unattended: '{s}' is not a step kind")),
                Some(k) if k.derive(&[], &[]).0 == Effect::Destructive => problems.push(format!(
                    "unattended: '{s}' steps are destructive and always need an approval; list only create-project or repoint-workbooks"
                )),
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            // The intents must build: with the defaults, and a sample for each required one.
            let given: BTreeMap<String, Value> = self
                .params
                .iter()
                .filter(|(_, p)| p.default.is_none() && p.required)
                .map(|(n, p)| (n.clone(), sample(p)))
                .collect();
            if let Err(e) = self.instantiate_values(&given) {
                problems.push(e.message);
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// The intents and values of a run with `given` parameters (as written: `k=v` text, or
    /// JSON values). Every problem at once: unknown, missing, wrong type, not allowed, out of
    /// range — as a usage error with the fix.
    pub fn instantiate(&self, given: &BTreeMap<String, String>) -> Result<Instance> {
        let given: BTreeMap<String, Value> = given.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        self.instantiate_values(&given)
    }

    /// [`Template::instantiate`] with values as JSON (a string is read by the parameter's type).
    pub fn instantiate_values(&self, given: &BTreeMap<String, Value>) -> Result<Instance> {
        let mut problems = vec![];
        for k in given.keys() {
            if !self.params.contains_key(k) {
                let near = tabflow_workflows::ground::closest(k, self.params.keys().map(String::as_str), 1);
                let mean = near.first().map(|n| format!(" (did you mean {n}?)")).unwrap_or_default();
                problems.push(format!("'{k}' is not a parameter of {}{mean}", self.name));
            }
        }
        let mut values = BTreeMap::new();
        for (name, p) in &self.params {
            match given.get(name).or(p.default.as_ref()) {
                Some(v) => match typed(name, p, v) {
                    Ok(v) => {
                        values.insert(name.clone(), v);
                    }
                    Err(e) => problems.push(e),
                },
                None if p.required => problems.push(format!("{name} is missing: it is required ({})", p.kind.words())),
                None => {}
            }
        }
        if !problems.is_empty() {
            return Err(Error::usage(
                format!("template {}: {}", self.name, problems.join("; ")),
                format!("give --param K=V for: {}", self.param_summary()),
            ));
        }
        let mut intents = vec![];
        for ti in &self.intents {
            let mut map = Map::new();
            for (k, v) in &ti.params {
                match reference(v) {
                    Some(r) => {
                        if let Some(val) = values.get(r) {
                            map.insert(k.clone(), val.clone());
                        }
                    }
                    None => {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
            let intent = Intent::from_parts(&ti.name, map).map_err(|e| {
                Error::usage(
                    format!("template {}: {e}", self.name),
                    format!("{}; check the template's parameters", e.fix()),
                )
            })?;
            intents.push(intent);
        }
        let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
        let request = if shown.is_empty() {
            format!("{} (template {})", self.title, label(&self.name, self.version))
        } else {
            format!("{} (template {}: {})", self.title, label(&self.name, self.version), shown.join(", "))
        };
        Ok(Instance { intents, values, request })
    }

    /// `name (type, default …)` per parameter, for hints.
    pub fn param_summary(&self) -> String {
        if self.params.is_empty() {
            return "none (it takes no parameters)".into();
        }
        self.params
            .iter()
            .map(|(n, p)| {
                let mut s = format!("{n} ({}", p.kind.words());
                if let Some(d) = &p.default {
                    s.push_str(&format!(", default {}", plain(d)));
                } else if p.required {
                    s.push_str(", required");
                }
                if !p.allowed.is_empty() {
                    s.push_str(&format!(", one of {}", p.allowed.join("|")));
                }
                if p.min.is_some() || p.max.is_some() {
                    s.push_str(&format!(
                        ", {}..{}",
                        p.min.map(|x| x.to_string()).unwrap_or_default(),
                        p.max.map(|x| x.to_string()).unwrap_or_default()
                    ));
                }
                s.push(')');
                s
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether a step of `kind` may run without an approval under this template.
    pub fn unattended_allows(&self, kind: StepKind) -> bool {
        kind.is_read() || self.unattended.iter().any(|u| u == kind.as_str())
    }
}

/// A value for a person: text as is, lists comma-joined.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A sample value of a parameter's type (to check that a template's intents build).
fn sample(p: &Param) -> Value {
    match p.kind {
        ParamType::Text => Value::from(p.allowed.first().cloned().unwrap_or_else(|| "x".into())),
        ParamType::Integer => Value::from(p.min.unwrap_or(1)),
        ParamType::Bool => Value::Bool(true),
        ParamType::List => Value::from(vec![p.allowed.first().cloned().unwrap_or_else(|| "x".into())]),
    }
}

/// A parameter's value in its type: text given on the command line is read as the type says.
fn typed(name: &str, p: &Param, v: &Value) -> std::result::Result<Value, String> {
    let wrong = |got: &Value| format!("{name} must be {}, not {}", p.kind.words(), plain(got));
    let allowed = |s: &str| -> std::result::Result<(), String> {
        if p.allowed.is_empty() || p.allowed.iter().any(|a| a == s) {
            Ok(())
        } else {
            Err(format!("{name} may be one of {}, not '{s}'", p.allowed.join(", ")))
        }
    };
    match p.kind {
        ParamType::Text => {
            let s = match v {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                other => return Err(wrong(other)),
            };
            if s.is_empty() {
                return Err(format!("{name} is empty"));
            }
            allowed(&s)?;
            Ok(Value::String(s))
        }
        ParamType::Integer => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| wrong(v))?;
            if let Some(lo) = p.min
                && n < lo
            {
                return Err(format!("{name} = {n} is out of range: at least {lo}"));
            }
            if let Some(hi) = p.max
                && n > hi
            {
                return Err(format!("{name} = {n} is out of range: at most {hi}"));
            }
            Ok(Value::from(n))
        }
        ParamType::Bool => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if matches!(s.trim(), "true" | "yes" | "1") => Ok(Value::Bool(true)),
            Value::String(s) if matches!(s.trim(), "false" | "no" | "0") => Ok(Value::Bool(false)),
            other => Err(wrong(other)),
        },
        ParamType::List => {
            let items: Vec<String> = match v {
                Value::String(s) => s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(|s| s.trim().to_string()).ok_or_else(|| wrong(v)))
                    .collect::<std::result::Result<_, _>>()?,
                other => return Err(wrong(other)),
            };
            if items.is_empty() {
                return Err(format!("{name} is an empty list"));
            }
            for i in &items {
                allowed(i)?;
            }
            Ok(Value::from(items))
        }
    }
}

/// The built-in templates, parsed. A built-in that does not load is a bug of this build
/// (a test loads and checks every one); it is left out rather than stop every command.
pub fn builtins() -> Vec<Template> {
    BUILTIN
        .iter()
        .filter_map(|(name, text)| match Template::from_toml(text) {
            Ok(mut t) if t.name == *name => {
                t.builtin = true;
                Some(t)
            }
            _ => None,
        })
        .collect()
}

/// The built-in templates' names and the problems of any that does not load (for tests).
pub fn check_builtins() -> Vec<String> {
    let mut problems = vec![];
    for (name, text) in BUILTIN {
        match Template::from_toml(text) {
            Ok(t) if t.name != *name => problems.push(format!("{name}.toml names itself '{}'", t.name)),
            Ok(_) => {}
            Err(e) => problems.push(format!("{name}.toml: {e}")),
        }
    }
    problems
}

/// The intent names the built-in templates run (for the test that every workflow has one).
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A template made from a plan's intents: each chosen parameter key (`keys`; `None` = every
/// key the intents give) becomes a parameter whose default is the plan's value, the rest stay
/// as the plan had them.
pub fn from_plan(name: &str, title: Option<&str>, plan: &Plan, keys: Option<&[String]>) -> Result<Template> {
    if plan.intents.is_empty() {
        return Err(Error::usage(
            format!("plan {} has no intents to make a template of", plan.id),
            "give a plan made from a request tabflow understood",
        ));
    }
    let mut params: BTreeMap<String, Param> = BTreeMap::new();
    let mut intents = vec![];
    let mut seen_keys = std::collections::BTreeSet::new();
    for intent in &plan.intents {
        let mut out = Map::new();
        for (k, v) in intent.params_json() {
            seen_keys.insert(k.clone());
            let chosen = keys.is_none_or(|ks| ks.iter().any(|x| x == &k));
            let kind = match &v {
                Value::String(_) => Some(ParamType::Text),
                Value::Number(_) => Some(ParamType::Integer),
                Value::Bool(_) => Some(ParamType::Bool),
                Value::Array(_) => Some(ParamType::List),
                _ => None,
            };
            let (true, Some(kind)) = (chosen, kind) else {
                out.insert(k, v);
                continue;
            };
            // The same key with another value in another intent gets a name of its own.
            let mut pname = k.clone();
            let mut n = 2;
            while params.get(&pname).is_some_and(|p| p.default.as_ref() != Some(&v)) {
                pname = format!("{k}_{n}");
                n += 1;
            }
            params.entry(pname.clone()).or_insert(Param {
                kind,
                description: format!("{} of {} (the plan had {})", k, intent.name(), plain(&v)),
                default: Some(v),
                required: false,
                allowed: vec![],
                min: None,
                max: None,
            });
            out.insert(k, Value::String(format!("{{{{{pname}}}}}")));
        }
        intents.push(TemplateIntent { name: intent.name().to_string(), params: out });
    }
    if let Some(ks) = keys
        && let Some(k) = ks.iter().find(|k| !seen_keys.contains(*k))
    {
        return Err(Error::usage(
            format!("plan {} has no parameter '{k}'", plan.id),
            format!(
                "choose among its parameters: {}",
                if seen_keys.is_empty() {
                    "(none)".into()
                } else {
                    seen_keys.iter().cloned().collect::<Vec<_>>().join(",")
                }
            ),
        ));
    }
    let first_line = plan.request.lines().next().unwrap_or_default();
    let t = Template {
        name: name.to_string(),
        version: 0,
        title: title.map(str::to_string).unwrap_or_else(|| first_line.chars().take(120).collect()),
        description: format!("Saved from plan {}: {}", plan.id, first_line.chars().take(200).collect::<String>()),
        unattended: vec![],
        params,
        intents,
        builtin: false,
    };
    t.check().map_err(|p| {
        Error::usage(format!("the template would not be valid: {}", p.join("; ")), "choose other --param-keys")
    })?;
    Ok(t)
}

/// A template with its versions, for `templates list|show`.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateInfo {
    #[serde(flatten)]
    pub template: Template,
    /// `builtin` or `store`.
    pub source: &'static str,
    /// Every stored version of it (a built-in has one).
    pub versions: Vec<i64>,
    pub created_by: Option<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl App {
    /// Every template: the built-ins, then the store's newest version of each live name.
    pub async fn templates(&self) -> Result<Vec<TemplateInfo>> {
        let mut out: Vec<TemplateInfo> = builtins()
            .into_iter()
            .map(|t| TemplateInfo {
                versions: vec![t.version],
                template: t,
                source: "builtin",
                created_by: None,
                created_at: None,
            })
            .collect();
        let rows = self.store.template_rows().await.map_err(|e| Error::store(e, "check the state store"))?;
        let mut by_name: BTreeMap<String, Vec<tabflow_engine::store::TemplateRow>> = BTreeMap::new();
        for r in rows {
            by_name.entry(r.name.clone()).or_default().push(r);
        }
        for (_, versions) in by_name {
            let Some(newest) = versions.iter().filter(|r| r.deleted_at.is_none()).max_by_key(|r| r.version) else {
                continue;
            };
            let template = stored(newest)?;
            out.push(TemplateInfo {
                template,
                source: "store",
                versions: versions.iter().filter(|r| r.deleted_at.is_none()).map(|r| r.version).collect(),
                created_by: Some(newest.created_by.clone()),
                created_at: Some(newest.created_at),
            });
        }
        Ok(out)
    }

    /// One template: a built-in, or a stored one (its newest version, or `version`).
    pub async fn template(&self, name: &str, version: Option<i64>) -> Result<Template> {
        if let Some(t) = builtins().into_iter().find(|t| t.name == name) {
            if let Some(v) = version
                && v != t.version
            {
                return Err(Error::usage(
                    format!("the built-in template {name} has version {} only, not {v}", t.version),
                    format!("leave out the version, or use {}", t.version),
                ));
            }
            return Ok(t);
        }
        let rows = self.store.template_rows().await.map_err(|e| Error::store(e, "check the state store"))?;
        let mine: Vec<_> = rows.into_iter().filter(|r| r.name == name).collect();
        let row = match version {
            // A plan's recorded version stays readable after a delete.
            Some(v) => mine.iter().find(|r| r.version == v),
            None => mine.iter().filter(|r| r.deleted_at.is_none()).max_by_key(|r| r.version),
        };
        match row {
            Some(r) => stored(r),
            None => {
                let all = self.templates().await?;
                let near = tabflow_workflows::ground::closest(name, all.iter().map(|t| t.template.name.as_str()), 1);
                let mean = near.first().map(|n| format!("did you mean {n}? ")).unwrap_or_default();
                Err(Error::new(
                    Kind::NotFound,
                    match version {
                        Some(v) if !mine.is_empty() => format!("template {name} has no version {v}"),
                        _ => format!("there is no template '{name}'"),
                    },
                    format!("{mean}see tabflow templates list"),
                ))
            }
        }
    }

    /// Stores a template as a new version of its name (1 for a new name); refused for a
    /// built-in's name or an invalid template. Answers it with its version.
    pub async fn save_template(&self, mut t: Template, actor: &str) -> Result<Template> {
        if builtins().iter().any(|b| b.name == t.name) {
            return Err(Error::usage(
                format!("'{}' is a built-in template's name", t.name),
                "save under another name (e.g. my-audit); a built-in cannot be replaced",
            ));
        }
        t.builtin = false;
        t.check().map_err(|p| {
            Error::usage(
                format!("template {} is not valid: {}", t.name, p.join("; ")),
                "fix the template and save it again",
            )
        })?;
        t.version = 0;
        let body = serde_json::to_string(&t).map_err(|e| Error::failed(e.to_string(), "report this as a bug"))?;
        let version = self
            .store
            .insert_template(&t.name, &body, actor, self.clock.now())
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
        t.version = version;
        self.audit_template(actor, "template.saved", &t.name, json!({"version": version})).await?;
        Ok(t)
    }

    /// Deletes a stored template (every version stays readable for the plans made from it).
    pub async fn delete_template(&self, name: &str, actor: &str) -> Result<()> {
        if builtins().iter().any(|b| b.name == name) {
            return Err(Error::usage(
                format!("'{name}' is a built-in template"),
                "built-in templates cannot be deleted",
            ));
        }
        if !self
            .store
            .delete_template(name, self.clock.now())
            .await
            .map_err(|e| Error::store(e, "check the state store"))?
        {
            return Err(Error::new(
                Kind::NotFound,
                format!("there is no stored template '{name}'"),
                "see tabflow templates list",
            ));
        }
        self.audit_template(actor, "template.deleted", name, json!({})).await
    }

    async fn audit_template(&self, actor: &str, action: &str, name: &str, after: Value) -> Result<()> {
        let mut after = after;
        after["template"] = Value::from(name);
        tabflow_engine::audit::append(
            &self.store,
            tabflow_engine::audit::NewRecord {
                actor: actor.to_string(),
                action: action.into(),
                after: Some(after),
                outcome: "recorded".into(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(())
    }

    /// A template made from a stored run's plan (see [`from_plan`]).
    pub async fn template_from_run(
        &self,
        name: &str,
        title: Option<&str>,
        run_id: &str,
        keys: Option<&[String]>,
    ) -> Result<Template> {
        let run = self.store.run(run_id).await.map_err(|e| Error::lookup(e, "see tabflow runs list"))?;
        let plan = self.get_plan(&run.plan_id).await?;
        from_plan(name, title, &plan, keys)
    }

    /// Plans a template with parameters, like any request: the plan's notes and the store
    /// record the template's name and version. Nothing on the site changes.
    pub async fn plan_template(
        &self,
        name: &str,
        version: Option<i64>,
        params: &BTreeMap<String, String>,
        answers: BTreeMap<String, String>,
        actor: &str,
    ) -> Result<Planned> {
        let t = self.template(name, version).await?;
        let instance = t.instantiate(params)?;
        self.plan_instance(&t, instance, answers, actor, true, vec![]).await
    }

    pub(crate) async fn plan_instance(
        &self,
        t: &Template,
        instance: Instance,
        answers: BTreeMap<String, String>,
        actor: &str,
        remember: bool,
        mut notes: Vec<String>,
    ) -> Result<Planned> {
        let source = if t.builtin { "built-in" } else { "stored" };
        notes.insert(0, format!("Made from template {} ({source})", label(&t.name, t.version)));
        let planned = self
            .plan(PlanRequest {
                request: instance.request,
                source: Source::Given { intents: instance.intents, notes },
                answers,
                actor: actor.to_string(),
                remember,
            })
            .await?;
        self.store
            .set_plan_template(&planned.plan().id, &label(&t.name, t.version))
            .await
            .map_err(|e| Error::store(e, "check the state store"))?;
        Ok(planned)
    }

    /// The template (`name@vN`) a stored plan was made from, if any.
    pub async fn plan_template_label(&self, plan_id: &str) -> Result<Option<String>> {
        self.store.plan_template(plan_id).await.map_err(|e| Error::store(e, "check the state store"))
    }
}

fn stored(r: &tabflow_engine::store::TemplateRow) -> Result<Template> {
    let mut t: Template = serde_json::from_str(&r.body).map_err(|e| {
        Error::failed(format!("stored template {} v{} is damaged: {e}", r.name, r.version), "save it again")
    })?;
    t.version = r.version;
    t.builtin = false;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit() -> Template {
        builtins().into_iter().find(|t| t.name == "audit-permissions").unwrap()
    }

    fn given(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_builtin_loads_and_checks_and_every_workflow_has_one() {
        assert_eq!(check_builtins(), Vec::<String>::new());
        assert_eq!(builtins().len(), BUILTIN.len());
        for name in Intent::NAMES {
            assert!(
                builtin_names().contains(name),
                "the intent {name} has no built-in template: add crates/tabflow-app/templates/{name}.toml"
            );
        }
    }

    #[test]
    fn parameters_are_typed_defaulted_and_substituted() {
        let i = audit().instantiate(&given(&[("tags", "sensitive,confidential")])).unwrap();
        assert_eq!(
            serde_json::to_value(&i.intents[0]).unwrap(),
            json!({"name": "audit-permissions", "params": {"tags": ["sensitive", "confidential"]}})
        );
        let i = audit().instantiate(&BTreeMap::new()).unwrap();
        assert_eq!(i.values["tags"], json!(["sensitive"]));
        assert!(i.request.contains("audit-permissions@v1") && i.request.contains("tags=sensitive"), "{}", i.request);
    }

    #[test]
    fn bad_parameters_are_refused_all_at_once_with_the_fix() {
        let t = builtins().into_iter().find(|t| t.name == "archive-stale-content").unwrap();
        let e = t
            .instantiate(&given(&[("stale_dayz", "9"), ("stale_days", "ninety"), ("content", "everything")]))
            .unwrap_err();
        assert!(matches!(e.kind, Kind::Usage));
        for part in [
            "'stale_dayz' is not a parameter of archive-stale-content (did you mean stale_days?)",
            "stale_days must be a whole number, not ninety",
            "content may be one of workbooks, datasources, all, not 'everything'",
            "project is missing: it is required",
        ] {
            assert!(e.message.contains(part), "{part} not in: {}", e.message);
        }
        assert!(e.hint.contains("project (text, required)"), "{}", e.hint);
        let e = t.instantiate(&given(&[("project", "Finance"), ("stale_days", "0")])).unwrap_err();
        assert!(e.message.contains("stale_days = 0 is out of range: at least 1"), "{}", e.message);
        let t = builtins().into_iter().find(|t| t.name == "offboard-user").unwrap();
        let e = t.instantiate(&given(&[("user", "jdoe"), ("remove_access", "perhaps")])).unwrap_err();
        assert!(e.message.contains("remove_access must be true or false, not perhaps"), "{}", e.message);
    }

    #[test]
    fn a_bad_template_names_every_problem() {
        let text = r#"
name = "Bad Name"
title = ""
unattended = ["stage-delete", "fly"]
[params.days]
type = "text"
min = 3
[params.unused]
type = "integer"
default = "x"
[[intents]]
name = "archive-stale-content"
params = { project = "{{proj}}", colour = "red", stale_days = "{{days}}" }
"#;
        let e = Template::from_toml(text).unwrap_err();
        for part in [
            "'Bad Name' is not a template name",
            "the title is empty",
            "takes no parameter 'colour'",
            "refers to '{{proj}}'",
            "parameter 'unused' is declared but no intent uses it",
            "min and max are for integer parameters",
            "the default of unused must be a whole number",
            "'stage-delete' steps are destructive",
            "'fly' is not a step kind",
        ] {
            assert!(e.contains(part), "{part} not in: {e}");
        }
    }
}
