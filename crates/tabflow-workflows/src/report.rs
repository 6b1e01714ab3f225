//! Reports of plans and runs for reviewers and compliance (`tabflow-report/1`): a [`Report`]
//! is built from a plan and, when it ran, the run's row and journal; it renders as Markdown,
//! one self-contained HTML file, RFC 4180 CSV (one flat table with a `section` column) and
//! JSON. Pure: no IO, no clock — the same plan and journal always give the same report, so
//! `tabflow runs report ID` reproduces what `tabflow apply` wrote.
//!
//! Workflow-specific facts live in each step's `details`; they are rendered generically so a
//! new workflow's shapes show up without code here: scalars become facts, lists of scalars a
//! joined fact, and every list of objects a table whose columns are the objects' keys (nested
//! objects flattened one level as `key.sub`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tabflow_plan::plan::{Impact, Plan};
use tabflow_plan::record::{Entry, Phase, RunRow};

pub use crate::chart::Chart;

pub const REPORT_FORMAT: &str = "tabflow-report/1";

/// The formats a report renders to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Csv,
    Json,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Markdown, Format::Html, Format::Csv, Format::Json];

    /// The file extension and the `format` name in `--json` output.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// `md`/`markdown`, `html`/`htm`, `csv`, `json` (case-insensitive).
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => return None,
        })
    }

    /// The format a file name's extension asks for.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        path.extension().and_then(|e| e.to_str()).and_then(Format::parse)
    }
}

/// A run as the store keeps it: its row and its journal.
#[derive(Debug, Clone, Copy)]
pub struct RunInput<'a> {
    pub row: &'a RunRow,
    pub journal: &'a [Entry],
}

/// A plan's or a run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    /// The request, as the user wrote it.
    pub title: String,
    pub plan_id: String,
    pub run_id: Option<String>,
    pub site: SiteLine,
    /// When the run started (RFC 3339), or when the plan was made.
    pub when: String,
    pub finished: Option<String>,
    /// Who ran it (the actor in the audit log); none for a plan that was not run.
    pub actor: Option<String>,
    /// The run's status, or `planned (not applied)`.
    pub status: String,
    pub impact: Impact,
    /// Readable lines: the impact sentence and the per-outcome counts.
    pub summary: Vec<String>,
    pub findings: Vec<FindingLine>,
    pub notes: Vec<String>,
    pub questions: Vec<QuestionLine>,
    pub steps: Vec<StepSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteLine {
    pub server: String,
    pub content_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingLine {
    pub check: String,
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionLine {
    pub id: String,
    pub text: String,
    pub choices: Vec<String>,
    /// The answer given, or none while the question is open.
    pub answer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSection {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub effect: String,
    pub rollback: String,
    pub depends_on: Vec<String>,
    /// Outcome → number of items (only for a run).
    pub outcomes: BTreeMap<String, usize>,
    /// Scalar facts from the step's details (`key`, `value`).
    pub facts: Vec<(String, String)>,
    pub items: Vec<ItemRow>,
    /// Tables from the step's details (inventory, audited items, groups, exclusions...).
    pub tables: Vec<Table>,
    /// An access matrix from the details' `matrix` (permission audits): items × groups and
    /// users, a capability level per cell, broad grants marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Matrix>,
    /// A chart from the details' `chart` (the cleanup's days since last view, the licenses
    /// freed by type), drawn as inline SVG in HTML and as a table elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
}

/// Items × principals, one level per cell (`full`, `edit`, `interact`, `view`, `denied`, or
/// empty for no access).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub columns: Vec<MatrixColumn>,
    pub rows: Vec<MatrixRow>,
    #[serde(default)]
    pub legend: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixColumn {
    pub name: String,
    /// `group` or `user`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A broad grant (All Users, or a group of half the licensed users or more).
    pub broad: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    pub item: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub project: String,
    pub cells: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRow {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
    pub project: Option<String>,
    pub owner: Option<String>,
    pub reason: Option<String>,
    pub changes: Vec<ChangeLine>,
    /// `applied`, `already applied`, `skipped`, `failed`, `restored`, `not restored`,
    /// `restore failed`, `interrupted`, `not run`, `read`; none for a plan that did not run.
    pub outcome: Option<String>,
    /// Why (skipped / failed / not restored).
    pub why: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeLine {
    pub field: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The details key (`owned`, `audited`, `groups`...).
    pub key: String,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl ItemRow {
    /// The changes as one readable cell: `owner: jsmith → tbaker; site_role: Creator → Unlicensed`.
    pub fn changes_text(&self) -> String {
        self.changes.iter().map(|c| format!("{}: {} → {}", c.field, c.before, c.after)).collect::<Vec<_>>().join("; ")
    }

    /// The outcome with its reason: `skipped: drifted since the plan`.
    pub fn outcome_text(&self) -> String {
        match (&self.outcome, &self.why) {
            (Some(o), Some(w)) if !w.is_empty() => format!("{o}: {w}"),
            (Some(o), _) => o.clone(),
            (None, _) => String::new(),
        }
    }
}

/// Builds the report of `plan`, and of its run when there is one.
pub fn build(plan: &Plan, run: Option<RunInput<'_>>) -> Report {
    let last = run.map(|r| last_entries(r.journal)).unwrap_or_default();
    let steps: Vec<StepSection> = plan.steps.iter().map(|s| step_section(s, run.is_some(), &last)).collect();
    let i = &plan.impact;
    let mut summary = vec![format!(
        "{} items across {} projects, owned by {} owner(s); {} users can see them ({} MB).",
        i.items,
        i.projects,
        i.owners,
        i.users_affected,
        i.bytes / 1_048_576
    )];
    if run.is_some() {
        let mut total: BTreeMap<&str, usize> = BTreeMap::new();
        for s in steps.iter().filter(|s| s.effect != "read") {
            for (k, v) in &s.outcomes {
                *total.entry(k.as_str()).or_default() += v;
            }
        }
        if !total.is_empty() {
            summary.push(format!(
                "Outcome: {}.",
                total.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
            ));
        }
    } else {
        summary.push("This is a plan: nothing has been changed.".into());
    }
    let mut questions: Vec<QuestionLine> = plan
        .answered
        .iter()
        .map(|q| QuestionLine {
            id: q.id.clone(),
            text: q.text.clone(),
            choices: q.choices.clone(),
            answer: plan.answers.get(&q.id).cloned(),
        })
        .collect();
    questions.extend(plan.questions.iter().map(|q| QuestionLine {
        id: q.id.clone(),
        text: q.text.clone(),
        choices: q.choices.clone(),
        answer: None,
    }));
    Report {
        format: REPORT_FORMAT.into(),
        title: plan.request.clone(),
        plan_id: plan.id.clone(),
        run_id: run.map(|r| r.row.id.clone()),
        site: SiteLine { server: plan.site.server.clone(), content_url: plan.site.content_url.clone() },
        when: run.map(|r| r.row.created_at).unwrap_or(plan.created_at).to_rfc3339(),
        finished: run.and_then(|r| r.row.finished_at).map(|t| t.to_rfc3339()),
        actor: run.map(|r| r.row.actor.clone()),
        status: run.map(|r| r.row.status.as_str().to_string()).unwrap_or_else(|| "planned (not applied)".into()),
        impact: plan.impact.clone(),
        summary,
        findings: plan
            .validation
            .findings
            .iter()
            .map(|f| FindingLine {
                check: f.check.as_str().into(),
                level: format!("{:?}", f.level).to_lowercase(),
                message: f.message.clone(),
            })
            .collect(),
        notes: plan.notes.clone(),
        questions,
        steps,
    }
}

/// The last journal entry of each (step, item).
fn last_entries(journal: &[Entry]) -> HashMap<(String, String), Entry> {
    let mut m = HashMap::new();
    for e in journal {
        m.insert((e.step_id.clone(), e.item_id.clone()), e.clone());
    }
    m
}

fn outcome_of(e: &Entry) -> (&'static str, bool) {
    // (outcome, whether the journal's detail says why)
    match e.phase {
        Phase::Applied => ("applied", false),
        Phase::AlreadyApplied => ("already applied", false),
        Phase::Skipped => ("skipped", true),
        Phase::Failed => ("failed", true),
        Phase::Intent => ("interrupted", false),
        Phase::CompensateIntent => ("restore interrupted", false),
        Phase::Compensated => ("restored", false),
        Phase::CompensateSkipped => ("not restored", true),
        Phase::CompensateFailed => ("restore failed", true),
    }
}

fn step_section(s: &tabflow_plan::plan::Step, ran: bool, last: &HashMap<(String, String), Entry>) -> StepSection {
    let mut outcomes = BTreeMap::new();
    let items = s
        .items
        .iter()
        .map(|it| {
            let changes: Vec<ChangeLine> = s
                .changes
                .iter()
                .filter(|c| c.item == it.id)
                .map(|c| ChangeLine { field: c.field.clone(), before: readable(&c.before), after: readable(&c.after) })
                .collect();
            let (outcome, why) = if !ran {
                (None, None)
            } else if !s.is_write() {
                (Some("read".to_string()), None)
            } else if changes.is_empty() {
                (Some("unchanged".to_string()), None)
            } else {
                match last.get(&(s.id.clone(), it.id.clone())) {
                    Some(e) => {
                        let (o, with_why) = outcome_of(e);
                        let why = match e.detail.strip_prefix("recreated:") {
                            Some(new) => Some(format!(
                                "re-created with a new id {new}: Tableau cannot restore a deleted account's id or sign-in history"
                            )),
                            None => (with_why && !e.detail.is_empty()).then(|| e.detail.clone()),
                        };
                        (Some(o.to_string()), why)
                    }
                    None => (Some("not run".to_string()), None),
                }
            };
            if let Some(o) = &outcome {
                *outcomes.entry(o.clone()).or_insert(0) += 1;
            }
            ItemRow {
                kind: it.kind.clone(),
                id: it.id.clone(),
                name: it.name.clone(),
                project: it.project.clone(),
                owner: it.owner.clone(),
                reason: it.reason.clone(),
                changes,
                outcome,
                why,
            }
        })
        .collect();
    let mut facts = vec![];
    let mut tables = vec![];
    let mut matrix = None;
    let mut chart = None;
    if let Value::Object(m) = &s.details {
        for (k, v) in m {
            if k == "chart"
                && let Ok(x) = serde_json::from_value::<Chart>(v.clone())
            {
                chart = Some(x);
                continue;
            }
            if k == "matrix"
                && let Ok(x) = serde_json::from_value::<Matrix>(v.clone())
            {
                matrix = Some(x);
                continue;
            }
            details(k, v, &mut facts, &mut tables);
        }
    } else if !s.details.is_null() {
        facts.push(("details".into(), readable(&s.details)));
    }
    StepSection {
        id: s.id.clone(),
        kind: s.kind.as_str().into(),
        title: s.title.clone(),
        effect: s.effect.as_str().into(),
        rollback: s.rollback.as_str().into(),
        depends_on: s.depends_on.clone(),
        outcomes,
        facts,
        items,
        tables,
        matrix,
        chart,
    }
}

/// Sorts one details entry into facts and tables (recursively for nested objects).
fn details(key: &str, v: &Value, facts: &mut Vec<(String, String)>, tables: &mut Vec<Table>) {
    match v {
        Value::Null => {}
        // A map keyed by ids whose values are records (`people`): one table, a row each.
        Value::Object(m) if !m.is_empty() && m.values().all(Value::is_object) && m.keys().all(|k| k.len() >= 32) => {
            tables.push(table(key, &m.values().cloned().collect::<Vec<_>>()))
        }
        Value::Object(m) => {
            for (k, x) in m {
                details(&format!("{key}.{k}"), x, facts, tables);
            }
        }
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => tables.push(table(key, a)),
        Value::Array(a) if a.is_empty() => facts.push((key.into(), "none".into())),
        other => facts.push((key.into(), readable(other))),
    }
}

/// A table from a list of objects: columns in first-seen order, nested objects flattened
/// one level (`canonical.name`), `id` columns last (names first, for people).
fn table(key: &str, rows: &[Value]) -> Table {
    let flat: Vec<Vec<(String, String)>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![];
            if let Value::Object(m) = r {
                for (k, v) in m {
                    match v {
                        Value::Object(inner) => {
                            for (k2, v2) in inner {
                                cells.push((format!("{k}.{k2}"), readable(v2)));
                            }
                        }
                        other => cells.push((k.clone(), readable(other))),
                    }
                }
            }
            cells
        })
        .collect();
    let mut columns: Vec<String> = vec![];
    for r in &flat {
        for (k, _) in r {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let is_id = |c: &String| c == "id" || c.ends_with(".id");
    let (mut named, ids): (Vec<String>, Vec<String>) = columns.into_iter().partition(|c| !is_id(c));
    named.extend(ids);
    let rows = flat
        .iter()
        .map(|r| {
            named.iter().map(|c| r.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone()).unwrap_or_default()).collect()
        })
        .collect();
    Table { key: key.into(), title: title_of(key), columns: named, rows }
}

/// A readable title for a details key; unknown keys are spelled out from the key.
fn title_of(key: &str) -> String {
    match key {
        "owned" => "Content owned".into(),
        "subscriptions" => "Subscriptions".into(),
        "data_alerts_owned" => "Data alerts owned".into(),
        "webhooks_owned" => "Webhooks owned".into(),
        "audited" => "Audited items".into(),
        "findings" => "Findings".into(),
        "groups" => "Groups".into(),
        "excluded" => "Excluded (not changed)".into(),
        "migrations" => "Migrations".into(),
        "moves" => "Repoints".into(),
        other => {
            let s = other.replace(['_', '.'], " ");
            let mut c = s.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        }
    }
}

/// A value as a person reads it: names rather than ids and JSON.
pub fn readable(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.is_empty() => "(none)".into(),
        Value::Array(a) => a.iter().map(readable).collect::<Vec<_>>().join(", "),
        Value::Object(m) => {
            for k in ["name", "subject", "title"] {
                if let Some(Value::String(s)) = m.get(k) {
                    return s.clone();
                }
            }
            if m.is_empty() {
                return "(none)".into();
            }
            // Permission rules and the like: `key=value` pairs, ids dropped when anything else is there.
            let pairs: Vec<String> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "id" || m.len() == 1)
                .map(|(k, x)| format!("{k}={}", readable(x)))
                .collect();
            pairs.join(" ")
        }
    }
}

// ------------------------------------------------------------------------------ renderers

impl Report {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.markdown(),
            Format::Html => self.html(),
            Format::Csv => self.csv(),
            Format::Json => self.json(),
        }
    }

    /// The report serialized; keys in declaration order, stable across versions of a report.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    fn header_facts(&self) -> Vec<(&'static str, String)> {
        let mut v =
            vec![("Site", format!("{} ({})", self.site.content_url, self.site.server)), ("Plan", self.plan_id.clone())];
        if let Some(r) = &self.run_id {
            v.push(("Run", r.clone()));
        }
        v.push(("When", self.when.clone()));
        if let Some(f) = &self.finished {
            v.push(("Finished", f.clone()));
        }
        if let Some(a) = &self.actor {
            v.push(("Run by", a.clone()));
        }
        v.push(("Status", self.status.clone()));
        v
    }

    pub fn markdown(&self) -> String {
        let mut o = String::new();
        o.push_str(&format!("# {}\n\n", md(&self.title)));
        for (k, v) in self.header_facts() {
            o.push_str(&format!("- **{k}:** {}\n", md(&v)));
        }
        o.push_str("\n## Summary\n\n");
        for s in &self.summary {
            o.push_str(&format!("- {}\n", md(s)));
        }
        if !self.findings.is_empty() {
            o.push_str("\n## Validation\n\n");
            md_table(
                &mut o,
                &["Check", "Level", "Finding"],
                self.findings.iter().map(|f| vec![f.check.clone(), f.level.clone(), f.message.clone()]),
            );
        }
        if !self.notes.is_empty() {
            o.push_str("\n## Notes\n\n");
            for n in &self.notes {
                o.push_str(&format!("- {}\n", md(n)));
            }
        }
        if !self.questions.is_empty() {
            o.push_str("\n## Questions\n\n");
            for q in &self.questions {
                let a = q.answer.clone().unwrap_or_else(|| "(open)".into());
                o.push_str(&format!("- [{}] {} — **{}**\n", md(&q.id), md(&q.text), md(&a)));
            }
        }
        for s in &self.steps {
            o.push_str(&format!("\n## {} · {}\n\n", md(&s.id), md(&s.title)));
            o.push_str(&format!(
                "`{}` · effect {} · rollback {}{}\n",
                s.kind,
                s.effect,
                s.rollback,
                if s.depends_on.is_empty() { String::new() } else { format!(" · after {}", s.depends_on.join(", ")) }
            ));
            if !s.outcomes.is_empty() {
                o.push_str(&format!(
                    "\nOutcome: {}\n",
                    md(&s.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "))
                ));
            }
            if !s.facts.is_empty() {
                o.push('\n');
                for (k, v) in &s.facts {
                    o.push_str(&format!("- {}: {}\n", md(k), md(v)));
                }
            }
            if !s.items.is_empty() {
                o.push('\n');
                md_table(&mut o, &ITEM_COLUMNS, s.items.iter().map(item_cells));
            }
            if let Some(c) = &s.chart {
                o.push_str(&format!("\n### {}\n\n", md(&c.title)));
                md_table(&mut o, &[c.x_label.as_str(), c.y_label.as_str()], chart_rows(c));
                if let Some(cut) = &c.cutoff {
                    o.push_str(&format!("\n{}\n", md(&cut.label)));
                }
                if !c.note.is_empty() {
                    o.push_str(&format!("\n{}\n", md(&c.note)));
                }
            }
            if let Some(m) = &s.matrix {
                o.push_str("\n### Access matrix\n\n");
                let mut cols = vec!["Item".to_string()];
                cols.extend(
                    m.columns.iter().map(|c| format!("{} {}{}", c.kind, c.name, if c.broad { " (broad)" } else { "" })),
                );
                let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
                md_table(
                    &mut o,
                    &cols,
                    m.rows.iter().map(|r| std::iter::once(r.item.clone()).chain(r.cells.iter().cloned()).collect()),
                );
                o.push_str(&format!("\n{}\n", md(&m.legend)));
            }
            for t in &s.tables {
                o.push_str(&format!("\n### {}\n\n", md(&t.title)));
                let cols: Vec<&str> = t.columns.iter().map(String::as_str).collect();
                md_table(&mut o, &cols, t.rows.iter().cloned());
            }
        }
        o
    }

    pub fn html(&self) -> String {
        let mut o = String::new();
        o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        o.push_str(&format!("<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n", esc(&self.title)));
        o.push_str(&format!("<h1>{}</h1>\n<dl class=\"meta\">\n", esc(&self.title)));
        for (k, v) in self.header_facts() {
            o.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(&v)));
        }
        o.push_str("</dl>\n<h2>Summary</h2>\n<ul>\n");
        for s in &self.summary {
            o.push_str(&format!("<li>{}</li>\n", esc(s)));
        }
        o.push_str("</ul>\n");
        if !self.findings.is_empty() {
            o.push_str("<h2>Validation</h2>\n");
            html_table(
                &mut o,
                "findings",
                &["Check", "Level", "Finding"],
                self.findings.iter().map(|f| vec![f.check.clone(), f.level.clone(), f.message.clone()]),
            );
        }
        if !self.notes.is_empty() {
            o.push_str("<h2>Notes</h2>\n<ul>\n");
            for n in &self.notes {
                o.push_str(&format!("<li>{}</li>\n", esc(n)));
            }
            o.push_str("</ul>\n");
        }
        if !self.questions.is_empty() {
            o.push_str("<h2>Questions</h2>\n");
            html_table(
                &mut o,
                "questions",
                &["Id", "Question", "Choices", "Answer"],
                self.questions.iter().map(|q| {
                    vec![
                        q.id.clone(),
                        q.text.clone(),
                        q.choices.join(", "),
                        q.answer.clone().unwrap_or_else(|| "(open)".into()),
                    ]
                }),
            );
        }
        for s in &self.steps {
            o.push_str(&format!("<section class=\"step\" id=\"{}\">\n", esc(&s.id)));
            o.push_str(&format!("<h2>{} · {}</h2>\n", esc(&s.id), esc(&s.title)));
            o.push_str(&format!(
                "<p class=\"sub\"><code>{}</code> · effect <b>{}</b> · rollback {}{}</p>\n",
                esc(&s.kind),
                esc(&s.effect),
                esc(&s.rollback),
                if s.depends_on.is_empty() {
                    String::new()
                } else {
                    format!(" · after {}", esc(&s.depends_on.join(", ")))
                }
            ));
            if !s.outcomes.is_empty() {
                o.push_str(&format!(
                    "<p>Outcome: {}</p>\n",
                    esc(&s.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "))
                ));
            }
            if !s.facts.is_empty() {
                o.push_str("<dl class=\"facts\">\n");
                for (k, v) in &s.facts {
                    o.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(v)));
                }
                o.push_str("</dl>\n");
            }
            html_table(&mut o, "items", &ITEM_COLUMNS, s.items.iter().map(item_cells));
            if let Some(c) = &s.chart {
                o.push_str(&format!("<h3>{}</h3>\n", esc(&c.title)));
                o.push_str(&c.svg());
            }
            if let Some(m) = &s.matrix {
                html_matrix(&mut o, m);
            }
            for t in &s.tables {
                o.push_str(&format!("<h3>{}</h3>\n", esc(&t.title)));
                let cols: Vec<&str> = t.columns.iter().map(String::as_str).collect();
                html_table(&mut o, &format!("details {}", t.key), &cols, t.rows.iter().cloned());
            }
            o.push_str("</section>\n");
        }
        o.push_str(&format!("<footer>{} · generated by tabflow</footer>\n</body>\n</html>\n", esc(&self.format)));
        o
    }

    /// One flat table: `section` says what a row is (`run`, `summary`, `finding`, `note`,
    /// `question`, `step`, `fact`, `chart` (a bar's label and value), `item`, or
    /// `details:<key>`). Items carry their changes and outcome; details rows carry their own
    /// columns (the union of all details columns).
    pub fn csv(&self) -> String {
        let mut extra: Vec<String> = vec![];
        for s in &self.steps {
            for t in &s.tables {
                for c in &t.columns {
                    let c = csv_column(c);
                    if !CSV_COLUMNS.contains(&c.as_str()) && !extra.contains(&c) {
                        extra.push(c);
                    }
                }
            }
        }
        let header: Vec<String> = CSV_COLUMNS.iter().map(|c| c.to_string()).chain(extra.iter().cloned()).collect();
        let width = header.len();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap_or(0);
        let mut rows: Vec<Vec<String>> = vec![];
        let mut row = |cells: &[(&str, String)]| {
            let mut r = vec![String::new(); width];
            for (k, v) in cells {
                r[col(k)] = v.clone();
            }
            rows.push(r);
        };
        for (k, v) in self.header_facts() {
            row(&[("section", "run".into()), ("name", k.into()), ("value", v)]);
        }
        for s in &self.summary {
            row(&[("section", "summary".into()), ("value", s.clone())]);
        }
        for f in &self.findings {
            row(&[
                ("section", "finding".into()),
                ("name", f.check.clone()),
                ("outcome", f.level.clone()),
                ("value", f.message.clone()),
            ]);
        }
        for n in &self.notes {
            row(&[("section", "note".into()), ("value", n.clone())]);
        }
        for q in &self.questions {
            row(&[
                ("section", "question".into()),
                ("name", q.id.clone()),
                ("value", q.text.clone()),
                ("outcome", q.answer.clone().unwrap_or_else(|| "(open)".into())),
            ]);
        }
        for s in &self.steps {
            row(&[
                ("section", "step".into()),
                ("step", s.id.clone()),
                ("item_type", s.kind.clone()),
                ("name", s.title.clone()),
                ("value", format!("effect {}, rollback {}", s.effect, s.rollback)),
                ("outcome", s.outcomes.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")),
            ]);
            for (k, v) in &s.facts {
                row(&[("section", "fact".into()), ("step", s.id.clone()), ("name", k.clone()), ("value", v.clone())]);
            }
            for r in s.chart.iter().flat_map(chart_rows) {
                row(&[
                    ("section", "chart".into()),
                    ("step", s.id.clone()),
                    ("name", r[0].clone()),
                    ("value", r[1].clone()),
                ]);
            }
            for it in &s.items {
                row(&[
                    ("section", "item".into()),
                    ("step", s.id.clone()),
                    ("item_type", it.kind.clone()),
                    ("item_id", it.id.clone()),
                    ("name", it.name.clone()),
                    ("project", it.project.clone().unwrap_or_default()),
                    ("owner", it.owner.clone().unwrap_or_default()),
                    ("reason", it.reason.clone().unwrap_or_default()),
                    ("changes", it.changes_text()),
                    ("outcome", it.outcome.clone().unwrap_or_default()),
                    ("why", it.why.clone().unwrap_or_default()),
                ]);
            }
            for t in &s.tables {
                let mut cells: Vec<(&str, String)> =
                    vec![("section", format!("details:{}", t.key)), ("step", s.id.clone())];
                let names: Vec<String> = t.columns.iter().map(|c| csv_column(c)).collect();
                for r in &t.rows {
                    cells.truncate(2);
                    for (c, v) in names.iter().zip(r) {
                        cells.push((c.as_str(), v.clone()));
                    }
                    row(&cells);
                }
            }
        }
        let mut o = String::new();
        csv_line(&mut o, &header);
        for r in &rows {
            csv_line(&mut o, r);
        }
        o
    }
}

/// A chart's bars as (label, value) rows; marked bars say so.
fn chart_rows(c: &Chart) -> impl Iterator<Item = Vec<String>> + '_ {
    c.bars.iter().map(|b| vec![if b.marked { format!("{} ⚠", b.label) } else { b.label.clone() }, b.value.to_string()])
}

const ITEM_COLUMNS: [&str; 8] = ["Type", "Name", "Project", "Owner", "Reason", "Changes", "Outcome", "Why"];

const CSV_COLUMNS: [&str; 12] = [
    "section",
    "step",
    "item_type",
    "item_id",
    "name",
    "project",
    "owner",
    "reason",
    "changes",
    "outcome",
    "why",
    "value",
];

/// Details columns that mean the same as a fixed CSV column share it.
fn csv_column(c: &str) -> String {
    match c {
        "id" => "item_id".into(),
        "type" => "item_type".into(),
        other => other.into(),
    }
}

fn item_cells(it: &ItemRow) -> Vec<String> {
    vec![
        it.kind.clone(),
        it.name.clone(),
        it.project.clone().unwrap_or_default(),
        it.owner.clone().unwrap_or_default(),
        it.reason.clone().unwrap_or_default(),
        it.changes_text(),
        it.outcome.clone().unwrap_or_default(),
        it.why.clone().unwrap_or_default(),
    ]
}

/// RFC 4180: fields with a comma, quote, CR or LF are quoted, quotes doubled; CRLF line ends.
/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) starts
/// with `'` instead (names and notes come from the site and from requests).
fn csv_line(o: &mut String, cells: &[String]) {
    let mut first = true;
    for c in cells {
        let c = tabflow_site::text::csv_safe(c);
        if !first {
            o.push(',');
        }
        first = false;
        if c.contains([',', '"', '\n', '\r']) {
            o.push('"');
            o.push_str(&c.replace('"', "\"\""));
            o.push('"');
        } else {
            o.push_str(&c);
        }
    }
    o.push_str("\r\n");
}

/// Text safe in HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Text safe in a Markdown table cell or line: no raw HTML, no cell breaks, one line.
fn md(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '|' | '<' | '>' | '`' | '*' | '[' | ']' => {
                o.push('\\');
                o.push(ch);
            }
            '&' => o.push_str("&amp;"),
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn md_table(o: &mut String, columns: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    o.push_str(&format!("| {} |\n", columns.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | ")));
    o.push_str(&format!("|{}\n", "---|".repeat(columns.len())));
    for r in rows {
        o.push_str(&format!("| {} |\n", r.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | ")));
    }
}

fn html_table(o: &mut String, class: &str, columns: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    // Wide tables scroll inside their own box; the page never scrolls sideways.
    o.push_str(&format!("<div class=\"wide\">\n<table class=\"{}\">\n<thead><tr>", esc(class)));
    for c in columns {
        o.push_str(&format!("<th>{}</th>", esc(c)));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    let mut any = false;
    for r in rows {
        any = true;
        o.push_str("<tr>");
        for c in &r {
            o.push_str(&format!("<td>{}</td>", esc(c)));
        }
        o.push_str("</tr>\n");
    }
    if !any {
        o.push_str(&format!("<tr><td colspan=\"{}\" class=\"empty\">none</td></tr>\n", columns.len()));
    }
    o.push_str("</tbody>\n</table>\n</div>\n");
}

/// The access matrix as a table: a column per group or user (broad grants marked in the
/// header and in every cell they give), a row per item, the level's class on each cell.
fn html_matrix(o: &mut String, m: &Matrix) {
    o.push_str("<h3>Access matrix</h3>\n<div class=\"wide\">\n<table class=\"matrix\">\n<thead><tr><th>Item</th><th>Project</th>");
    for c in &m.columns {
        let (class, mark) = if c.broad { (" class=\"broad\"", " ⚠ broad") } else { ("", "") };
        o.push_str(&format!("<th{class}>{} {}{mark}</th>", esc(&c.kind), esc(&c.name)));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for r in &m.rows {
        o.push_str(&format!("<tr><th>{}</th><td>{}</td>", esc(&r.item), esc(&r.project)));
        for (i, cell) in r.cells.iter().enumerate() {
            let broad = m.columns.get(i).is_some_and(|c| c.broad) && !cell.is_empty() && cell != "denied";
            let level = match cell.as_str() {
                "full" | "edit" | "interact" | "view" | "denied" => cell.as_str(),
                "" => "none",
                _ => "other",
            };
            o.push_str(&format!("<td class=\"lvl-{level}{}\">{}</td>", if broad { " broad" } else { "" }, esc(cell)));
        }
        o.push_str("</tr>\n");
    }
    if m.rows.is_empty() {
        o.push_str(&format!("<tr><td colspan=\"{}\" class=\"empty\">none</td></tr>\n", m.columns.len() + 2));
    }
    o.push_str(&format!("</tbody>\n</table>\n</div>\n<p class=\"sub\">{}</p>\n", esc(&m.legend)));
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1f2328;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.5rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.25rem}\
h3{font-size:1.05rem;margin-top:1.25rem}.sub{color:#57606a;margin-top:0}\
dl{display:grid;grid-template-columns:minmax(0,max-content) minmax(0,1fr);gap:.2rem 1rem}dt{font-weight:600;overflow-wrap:anywhere}dd{margin:0;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}\
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
.wide{max-width:100%;overflow-x:auto}code{overflow-wrap:anywhere}\
th{background:#f6f8fa}tbody tr:nth-child(even){background:#fbfcfd}td.empty{color:#57606a;font-style:italic}\
footer{margin-top:3rem;color:#57606a;font-size:.8rem}\
table.matrix td{text-align:center;white-space:nowrap}table.matrix th.broad{background:#fff1e5;color:#9a3412}\
td.lvl-full{background:#fecaca}td.lvl-edit{background:#fed7aa}td.lvl-interact{background:#fef08a}\
figure.chart{margin:.5rem 0 1rem}figure.chart svg{display:block;max-width:100%;height:auto}figcaption{color:#57606a;font-size:.85rem}\
td.lvl-view{background:#dcfce7}td.lvl-denied{background:#e5e7eb;color:#57606a}td.broad{outline:2px solid #c2410c;outline-offset:-2px;font-weight:600}";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use tabflow_plan::plan::{Change, Effect, Item, RollbackClass, SiteRef, Step, StepKind};
    use tabflow_plan::record::RunStatus;

    fn plan() -> Plan {
        let mut p = Plan::draft(
            "offboard <b>jsmith</b>",
            SiteRef { server: "s".into(), content_url: "demo".into(), id: "x".into() },
            vec![],
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        );
        let wb = |id: &str, name: &str| Item {
            kind: "workbook".into(),
            id: id.into(),
            name: name.into(),
            project: Some("Sales, \"East\"".into()),
            owner: Some("John".into()),
            reason: Some("→ Tom".into()),
            ..Item::default()
        };
        p.steps.push(Step {
            id: "s1".into(),
            kind: StepKind::InventoryUser,
            title: "Inventory".into(),
            effect: Effect::Read,
            depends_on: vec![],
            items: vec![],
            changes: vec![],
            rollback: RollbackClass::Exact,
            details: json!({"groups": ["Marketing", "Sales"], "explicit_grants": 2,
                "owned": [{"id": "w1", "name": "A<&\"'>", "views": 3}, {"id": "w2", "name": "B", "extra": true}],
                "groups_found": [{"canonical": {"id": "d1", "name": "Orders"}, "duplicates": [{"id": "d2", "name": "Orders (2)"}]}]}),
        });
        p.steps.push(Step {
            id: "s2".into(),
            kind: StepKind::TransferOwnership,
            title: "Transfer".into(),
            effect: Effect::Destructive,
            depends_on: vec!["s1".into()],
            items: vec![wb("w1", "A<&\"'>"), wb("w2", "B\nline"), wb("w3", "C")],
            changes: ["w1", "w2", "w3"]
                .iter()
                .map(|i| Change {
                    item: (*i).into(),
                    field: "owner".into(),
                    before: json!("jsmith"),
                    after: json!("tbaker"),
                    before_id: Some("u1".into()),
                    after_id: Some("u2".into()),
                    after_ref: None,
                })
                .collect(),
            rollback: RollbackClass::Exact,
            details: Value::Null,
        });
        p
    }

    fn entry(seq: i64, item: &str, phase: Phase, detail: &str) -> Entry {
        Entry {
            seq,
            run_id: "r1".into(),
            step_id: "s2".into(),
            item_id: item.into(),
            item_type: "workbook".into(),
            phase,
            image: Value::Null,
            detail: detail.into(),
            at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 5, 0).unwrap(),
        }
    }

    fn row() -> RunRow {
        RunRow {
            id: "r1".into(),
            plan_id: "p".into(),
            status: RunStatus::Partial,
            request: "x".into(),
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 5, 0).unwrap(),
            finished_at: None,
            actor: "alice".into(),
            lease_owner: None,
            lease_expires_at: None,
            lease_epoch: 0,
            approval_id: None,
            summary: Value::Null,
            fingerprint: None,
        }
    }

    #[test]
    fn outcomes_come_from_the_last_journal_entry_of_each_item() {
        let journal = vec![
            entry(1, "w1", Phase::Intent, ""),
            entry(2, "w1", Phase::Applied, ""),
            entry(3, "w2", Phase::Skipped, "changed since the plan"),
            entry(4, "w3", Phase::Intent, ""),
            entry(5, "w3", Phase::Failed, "HTTP 500"),
        ];
        let r = build(&plan(), Some(RunInput { row: &row(), journal: &journal }));
        let s2 = &r.steps[1];
        let got: Vec<String> = s2.items.iter().map(ItemRow::outcome_text).collect();
        assert_eq!(got, ["applied", "skipped: changed since the plan", "failed: HTTP 500"]);
        assert_eq!(s2.outcomes.get("applied"), Some(&1));
        assert_eq!(s2.items[0].changes_text(), "owner: jsmith → tbaker");
        assert_eq!(r.actor.as_deref(), Some("alice"));
        assert_eq!(r.status, "partial");
        assert!(r.summary.iter().any(|s| s.contains("1 applied") && s.contains("1 failed") && s.contains("1 skipped")));
        // Rolled back later: the last entry wins.
        let mut j2 = journal.clone();
        j2.push(entry(6, "w1", Phase::Compensated, ""));
        let r2 = build(&plan(), Some(RunInput { row: &row(), journal: &j2 }));
        assert_eq!(r2.steps[1].items[0].outcome.as_deref(), Some("restored"));
        // A plan alone has no outcomes.
        assert!(build(&plan(), None).steps[1].items.iter().all(|i| i.outcome.is_none()));
    }

    #[test]
    fn details_become_facts_and_tables() {
        let r = build(&plan(), None);
        let s1 = &r.steps[0];
        assert!(s1.facts.contains(&("groups".into(), "Marketing, Sales".into())));
        assert!(s1.facts.contains(&("explicit_grants".into(), "2".into())));
        let owned = s1.tables.iter().find(|t| t.key == "owned").unwrap();
        assert_eq!(owned.columns, ["name", "views", "extra", "id"]);
        assert_eq!(owned.rows[1], ["B", "", "yes", "w2"]);
        let g = s1.tables.iter().find(|t| t.key == "groups_found").unwrap();
        assert_eq!(g.columns, ["canonical.name", "duplicates", "canonical.id"]);
        assert_eq!(g.rows[0], ["Orders", "Orders (2)", "d1"]);
    }

    #[test]
    fn html_escapes_everything() {
        let h = build(&plan(), None).html();
        assert!(!h.contains("<b>jsmith"));
        assert!(h.contains("offboard &lt;b&gt;jsmith&lt;/b&gt;"));
        assert!(h.contains("A&lt;&amp;&quot;&#39;&gt;"));
        assert!(!h.contains("A<&"));
        assert_eq!(h.matches("<table class=\"items\">").count(), 2);
    }

    #[test]
    fn markdown_has_no_raw_html_or_cell_breaks() {
        let m = build(&plan(), None).markdown();
        assert!(!m.contains("<b>"));
        assert!(m.contains("A\\<&amp;\"'\\>"));
        assert!(m.contains("| workbook | B line |"));
    }

    /// A small RFC 4180 reader, the inverse of `csv_line`.
    fn parse_csv(s: &str) -> Vec<Vec<String>> {
        let (mut rows, mut row, mut cell, mut quoted) = (vec![], vec![], String::new(), false);
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            match (quoted, c) {
                (true, '"') if it.peek() == Some(&'"') => {
                    it.next();
                    cell.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => cell.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut cell)),
                (false, '\r') => {}
                (false, '\n') => {
                    row.push(std::mem::take(&mut cell));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => cell.push(c),
            }
        }
        rows
    }

    #[test]
    fn csv_round_trips_awkward_fields() {
        let r = build(&plan(), None);
        let rows = parse_csv(&r.csv());
        let width = rows[0].len();
        assert!(rows.iter().all(|x| x.len() == width));
        let col = |n: &str| rows[0].iter().position(|h| h == n).unwrap();
        let items: Vec<&Vec<String>> = rows.iter().filter(|x| x[col("section")] == "item").collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0][col("name")], "A<&\"'>");
        assert_eq!(items[1][col("name")], "B\nline");
        assert_eq!(items[0][col("project")], "Sales, \"East\"");
        let owned: Vec<&Vec<String>> = rows.iter().filter(|x| x[col("section")] == "details:owned").collect();
        assert_eq!(owned.len(), 2);
        assert_eq!(owned[1][col("item_id")], "w2");
        let mut line = String::new();
        csv_line(&mut line, &["=cmd|'/c calc'!A1".into(), "-2+3".into(), "ok".into()]);
        assert_eq!(line, "'=cmd|'/c calc'!A1,'-2+3,ok\r\n");
    }

    #[test]
    fn a_chart_in_the_details_is_drawn_not_tabled() {
        let mut p = plan();
        let chart = crate::chart::days_histogram("Days <x>", "workbooks", &[Some(1), Some(100), Some(101), None], 90);
        p.steps[0].details["chart"] = serde_json::to_value(&chart).unwrap();
        let r = build(&p, None);
        assert_eq!(r.steps[0].chart.as_ref(), Some(&chart));
        assert!(r.steps[0].tables.iter().all(|t| !t.key.starts_with("chart")));
        assert!(!r.steps[0].facts.iter().any(|(k, _)| k.starts_with("chart")));
        let h = r.html();
        assert_eq!(h.matches("<svg ").count(), 1);
        assert_eq!(h.matches("<rect class=\"bar").count(), chart.bars.len());
        assert!(h.contains("data-label=\"≥90\" data-value=\"2\""), "{h}");
        assert!(h.contains("Days &lt;x&gt;") && !h.contains("Days <x>") && !h.contains("<script"));
        let rows = parse_csv(&r.csv());
        let col = |n: &str| rows[0].iter().position(|h| h == n).unwrap();
        let bars: Vec<(&str, &str)> = rows
            .iter()
            .filter(|x| x[col("section")] == "chart")
            .map(|x| (x[col("name")].as_str(), x[col("value")].as_str()))
            .collect();
        assert_eq!(bars.len(), chart.bars.len());
        assert!(bars.contains(&("≥90 ⚠", "2")) && bars.contains(&("never ⚠", "1")));
        let m = r.markdown();
        assert!(m.contains("| 0–29 | 1 |") && m.contains("cut-off: 90 days"), "{m}");
        let back: Report = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn json_round_trips() {
        let r = build(&plan(), None);
        let back: Report = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn formats_from_extensions() {
        assert_eq!(Format::from_path(std::path::Path::new("x.HTML")), Some(Format::Html));
        assert_eq!(Format::from_path(std::path::Path::new("x.pdf")), None);
        assert_eq!(Format::from_path(std::path::Path::new("x")), None);
    }
}
