//! What the tools answer (their structured output, from which the output schemas are
//! generated) and how plans, runs and answers become those values, with items and rows paged
//! by a cursor rather than cut.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use tabflow_app::{Plan, RunRow};

/// A plan as an assistant reviews it: what it will do, what it asks, what the checks found,
/// its impact, and a page of its items.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanView {
    pub plan_id: String,
    pub request: String,
    /// `needs-answers`, `refused` (a check failed), `needs-approval` (destructive items a
    /// person must approve), `ready` (changes nothing destructive) or `nothing-to-do`.
    pub status: String,
    /// What to do next, in one sentence.
    pub next: String,
    /// One line: steps, items and impact.
    pub summary: String,
    pub questions: Vec<QuestionView>,
    /// Whether every check passed.
    pub valid: bool,
    /// The five checks' findings (destructive-operations, permissions, dependencies, impact,
    /// rollback).
    pub checks: Vec<CheckView>,
    pub impact: ImpactView,
    pub steps: Vec<StepView>,
    /// A page of the items the plan's steps change (at most the server's page size).
    pub items: Vec<ItemView>,
    /// Items in the whole plan.
    pub items_total: usize,
    /// Pass to `get_plan` as `cursor` for the next page of items; absent on the last page.
    pub next_cursor: Option<String>,
    /// Notes for the reviewer (usage source, what was read).
    pub notes: Vec<String>,
    /// The plan's keyed fingerprint (an approval is bound to it).
    pub fingerprint: String,
}

/// A requested rollback: the run's rollback plan and the approval asked for it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RollbackView {
    /// The run to undo.
    pub run_id: String,
    /// The rollback plan: start_run it once a person approved it.
    pub plan_id: String,
    /// The approval request.
    pub request_id: String,
    /// The console's review page of the rollback plan, for a person with the approver role.
    pub url: String,
    /// Where the request is read back through the HTTP API.
    pub api_url: String,
    /// Its steps (one per step of the run that changed something, in the order undone).
    pub steps: Vec<StepView>,
    /// (step, item) pairs it puts back.
    pub items_total: usize,
    /// The rollback plan's keyed fingerprint (an approval is bound to it).
    pub fingerprint: String,
    /// What happens next.
    pub note: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct QuestionView {
    pub id: String,
    pub text: String,
    pub choices: Vec<String>,
    pub default: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckView {
    pub check: String,
    /// `info`, `warning` or `error`.
    pub level: String,
    pub message: String,
    pub step: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ImpactView {
    pub items: u64,
    pub users_affected: u64,
    pub projects: u64,
    pub owners: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StepView {
    pub id: String,
    pub kind: String,
    pub title: String,
    /// `read`, `write` or `destructive`.
    pub effect: String,
    /// `exact`, `snapshot`, `lossy` or `none`.
    pub rollback: String,
    pub items: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ItemView {
    pub step: String,
    /// `step/item id`, as `request_approval`'s selection names it.
    pub pair: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
    pub project: Option<String>,
    pub owner: Option<String>,
    pub reason: Option<String>,
}

fn text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A cursor: the offset of the next item, as text (`"50"`).
pub fn offset(cursor: Option<&str>) -> Result<usize, String> {
    match cursor.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(0),
        Some(c) => c.parse::<usize>().map_err(|_| {
            format!("cursor '{c}' is not a cursor of this server; pass the next_cursor of the previous answer")
        }),
    }
}

/// The page of `all` from `from`, at most `size` long, and the cursor of the next page.
pub fn page<T>(all: Vec<T>, from: usize, size: usize) -> (Vec<T>, Option<String>) {
    let total = all.len();
    let end = from.saturating_add(size.max(1)).min(total);
    let items = all.into_iter().skip(from).take(size.max(1)).collect();
    (items, (end < total).then(|| end.to_string()))
}

/// Whether a plan still needs answers, is refused, needs approval, is ready, or changes nothing.
pub fn status(plan: &Plan) -> &'static str {
    if !plan.questions.is_empty() {
        "needs-answers"
    } else if !plan.validation.ok {
        "refused"
    } else if !plan.destructive_items().is_empty() {
        "needs-approval"
    } else if plan.steps.iter().any(|s| s.is_write()) {
        "ready"
    } else {
        "nothing-to-do"
    }
}

fn next(plan: &Plan) -> String {
    match status(plan) {
        "needs-answers" => format!(
            "answer the questions with answer_questions {{\"plan_id\": \"{}\", \"answers\": {{\"{}\": \"<choice>\"}}}}",
            plan.id,
            plan.questions.first().map(|q| q.id.as_str()).unwrap_or("q1")
        ),
        "refused" => "a check refused the plan (see checks with level error); change the request and plan again".into(),
        "needs-approval" => format!(
            "show the person the plan, then request_approval {{\"plan_id\": \"{}\", \"selection\": \"all\"}} (or a list of steps and step/item pairs); a person with the approver role approves it in the console; then start_run",
            plan.id
        ),
        "ready" => format!("start_run {{\"plan_id\": \"{}\"}} (no destructive change, no approval needed)", plan.id),
        _ => "nothing to change on the site".into(),
    }
}

/// The plan's view with items from `from`, at most `page` of them.
pub fn plan_view(plan: &Plan, from: usize, page: usize) -> PlanView {
    let all: Vec<ItemView> = plan
        .steps
        .iter()
        .filter(|s| s.is_write())
        .flat_map(|s| {
            s.items.iter().map(move |i| ItemView {
                step: s.id.clone(),
                pair: format!("{}/{}", s.id, i.id),
                kind: i.kind.clone(),
                id: i.id.clone(),
                name: i.name.clone(),
                project: i.project.clone(),
                owner: i.owner.clone(),
                reason: i.reason.clone(),
            })
        })
        .collect();
    let total = all.len();
    let page = page.max(1);
    let end = from.saturating_add(page).min(total);
    let items: Vec<ItemView> = all.into_iter().skip(from).take(page).collect();
    let steps: Vec<StepView> = plan
        .steps
        .iter()
        .map(|s| StepView {
            id: s.id.clone(),
            kind: text(&s.kind),
            title: s.title.clone(),
            effect: text(&s.effect),
            rollback: text(&s.rollback),
            items: s.items.len(),
        })
        .collect();
    let destructive = plan.destructive_items().len();
    let summary = format!(
        "{} step(s), {} item(s) changed ({} destructive); {} user(s) affected across {} project(s); checks {}",
        steps.len(),
        plan.impact.items,
        destructive,
        plan.impact.users_affected,
        plan.impact.projects,
        if plan.validation.ok { "passed" } else { "refused the plan" }
    );
    PlanView {
        plan_id: plan.id.clone(),
        request: plan.request.clone(),
        status: status(plan).into(),
        next: next(plan),
        summary,
        questions: plan
            .questions
            .iter()
            .map(|q| QuestionView {
                id: q.id.clone(),
                text: q.text.clone(),
                choices: q.choices.clone(),
                default: q.default.clone(),
            })
            .collect(),
        valid: plan.validation.ok,
        checks: plan
            .validation
            .findings
            .iter()
            .map(|f| CheckView {
                check: f.check.as_str().into(),
                level: text(&f.level),
                message: f.message.clone(),
                step: f.step.clone(),
            })
            .collect(),
        impact: ImpactView {
            items: plan.impact.items,
            users_affected: plan.impact.users_affected,
            projects: plan.impact.projects,
            owners: plan.impact.owners,
            bytes: plan.impact.bytes,
        },
        steps,
        items,
        items_total: total,
        next_cursor: (end < total).then(|| end.to_string()),
        notes: plan.notes.clone(),
        fingerprint: plan.fingerprint.clone(),
    }
}

/// An approval request, with where a person approves it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApprovalRequestView {
    pub id: String,
    pub plan_id: String,
    /// The (step, item) pairs asked for; absent = every destructive item.
    pub items: Option<Vec<String>>,
    pub requested_by: String,
    pub created_at: String,
    /// The web console's review page with the selection ticked, for the approver.
    pub url: String,
    /// The same request through the HTTP API.
    pub api_url: String,
    /// Whether the plan may run now, as the store says (it may not until a person approves
    /// in the console or through the API; no answer in the chat counts).
    pub approved: bool,
    /// `pending`, `approved` or `rejected` — the store's record of a person's decision.
    pub decision: String,
    /// The console page put before the person through URL-mode elicitation, when the client
    /// supports it (absent otherwise: give the person `url`).
    pub elicitation: Option<ElicitationView>,
    pub note: String,
}

/// What the client answered when asked to open the approval page (MCP URL-mode elicitation).
/// Informative only: it is never taken as an approval.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ElicitationView {
    /// `url`.
    pub mode: String,
    /// The absolute URL the client was asked to open (the console's review page).
    pub url: String,
    /// The elicitation's id (the approval request's id); `notifications/elicitation/complete`
    /// names it once a person approved or rejected the plan.
    pub elicitation_id: String,
    /// `accept` (the person agreed to open the page), `decline`, `cancel`, `timed-out` or
    /// `failed: …`.
    pub action: String,
}

/// A run: its state, and its steps' counts.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunView {
    /// Absent when nothing had to run.
    pub run_id: Option<String>,
    /// `running`, `succeeded`, `partial`, `failed`, `rolled-back`, `rolling-back`,
    /// `interrupted`, `nothing-to-do`, `scheduled`, `rollback-requested`…
    pub status: String,
    pub plan_id: Option<String>,
    pub request: Option<String>,
    pub actor: Option<String>,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
    /// The engine's summary or report (steps with done/skipped/failed, reports written…).
    pub detail: Value,
    pub note: Option<String>,
    /// Where a person follows or undoes it in the web console.
    pub url: Option<String>,
}

pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn run_view(r: &RunRow, console: &str) -> RunView {
    RunView {
        run_id: Some(r.id.clone()),
        status: r.status.as_str().into(),
        plan_id: Some(r.plan_id.clone()),
        request: Some(r.request.clone()),
        actor: Some(r.actor.clone()),
        created_at: Some(ts(r.created_at)),
        finished_at: r.finished_at.map(ts),
        detail: r.summary.clone(),
        note: None,
        url: Some(format!("{console}/console/runs/{}", r.id)),
    }
}

/// Runs, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
    /// Pass to `list_runs` as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The templates, with their parameters.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateView>,
    /// Templates in all.
    pub total: usize,
    /// Pass to `list_templates` as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A template as `run_template` takes it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TemplateView {
    pub name: String,
    pub version: i64,
    pub title: String,
    pub description: String,
    /// `builtin` or `store`.
    pub source: String,
    /// Every stored version (a built-in has one).
    pub versions: Vec<i64>,
    /// The intents it plans.
    pub intents: Vec<String>,
    /// Write steps that may run without an approval (destructive steps never do).
    pub unattended: Vec<String>,
    pub params: Vec<TemplateParamView>,
    /// A `run_template` call with every required parameter (a sample value where there is no
    /// default).
    pub example: Value,
}

/// One parameter of a template.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TemplateParamView {
    pub name: String,
    /// `text`, `integer`, `bool` or `list` (a list is a JSON array of strings or a
    /// comma-separated string).
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    /// Must be given (it has no default).
    pub required: bool,
    /// Used when the parameter is not given.
    pub default: Option<Value>,
    /// The values a text (or each element of a list) may take; empty = any.
    pub allowed: Vec<String>,
    /// The range of an integer.
    pub min: Option<i64>,
    pub max: Option<i64>,
}

pub fn template_view(info: &tabflow_app::TemplateInfo) -> TemplateView {
    let t = &info.template;
    let params: Vec<TemplateParamView> = t
        .params
        .iter()
        .map(|(name, p)| TemplateParamView {
            name: name.clone(),
            kind: text(&p.kind),
            description: p.description.clone(),
            required: p.required && p.default.is_none(),
            default: p.default.clone(),
            allowed: p.allowed.clone(),
            min: p.min,
            max: p.max,
        })
        .collect();
    let mut example = serde_json::Map::new();
    for p in params.iter().filter(|p| p.required) {
        let sample = match (p.kind.as_str(), p.allowed.first()) {
            ("integer", _) => Value::from(p.min.unwrap_or(1)),
            ("bool", _) => Value::Bool(true),
            ("list", Some(a)) => Value::from(vec![a.clone()]),
            ("list", None) => Value::from(vec![format!("<{}>", p.name)]),
            (_, Some(a)) => Value::from(a.clone()),
            _ => Value::from(format!("<{}>", p.name)),
        };
        example.insert(p.name.clone(), sample);
    }
    TemplateView {
        name: t.name.clone(),
        version: t.version,
        title: t.title.clone(),
        description: t.description.clone(),
        source: info.source.to_string(),
        versions: info.versions.clone(),
        intents: t.intents.iter().map(|i| i.name.clone()).collect(),
        unattended: t.unattended.clone(),
        params,
        example: serde_json::json!({"name": t.name, "params": example}),
    }
}

/// A question's answer: a table and a summary, with a page of rows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryView {
    pub question: String,
    /// `count`, `list`, …
    pub kind: String,
    /// The site's "now" ages are measured from.
    pub as_of: String,
    pub summary: String,
    pub columns: Vec<String>,
    /// A page of rows, aligned with `columns`.
    pub rows: Vec<Vec<Value>>,
    /// Rows in the whole answer.
    pub rows_total: usize,
    /// Matching items (for a count: the count).
    pub total: usize,
    /// Pass to `query_site` as `cursor` for the next page of rows; absent on the last page.
    pub next_cursor: Option<String>,
    pub notes: Vec<String>,
}

/// A query cursor: the key of the answer kept by the server and the offset of the next row
/// (`"a3:50"`), or an offset alone (`"50"`).
pub fn query_cursor(cursor: Option<&str>) -> Result<(Option<String>, usize), String> {
    match cursor.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok((None, 0)),
        Some(c) => match c.split_once(':') {
            Some((key, at)) if key.starts_with('a') && !key.is_empty() => {
                Ok((Some(key.to_string()), offset(Some(at)).map_err(|_| bad_cursor(c))?))
            }
            Some(_) => Err(bad_cursor(c)),
            None => Ok((None, offset(Some(c))?)),
        },
    }
}

fn bad_cursor(c: &str) -> String {
    format!("cursor '{c}' is not a cursor of this server; pass the next_cursor of the previous answer")
}

/// A page of an answer's rows; `key` names the answer the server keeps for the next pages.
pub fn query_view(a: &tabflow_app::QueryAnswer, from: usize, page: usize, key: &str) -> QueryView {
    let rows_total = a.rows.len();
    let page = page.max(1);
    let end = from.saturating_add(page).min(rows_total);
    QueryView {
        question: a.question.clone(),
        kind: text(&a.kind),
        as_of: ts(a.as_of),
        summary: a.summary.clone(),
        columns: a.columns.clone(),
        rows: a.rows.iter().skip(from).take(page).cloned().collect(),
        rows_total,
        total: a.total,
        next_cursor: (end < rows_total).then(|| format!("{key}:{end}")),
        notes: a.notes.clone(),
    }
}
