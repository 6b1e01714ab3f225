//! The routes of DESIGN.md §6, their request and answer types (from which the OpenAPI
//! document is generated) and the role each needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tabflow_app::{Decision, NewRecord, Permission, Plan, PlanRequest, Role, Selection, Source, Start, StartOptions};
use utoipa::{OpenApi, ToSchema};

use crate::auth::{Auth, Body, need};
use crate::error::ErrorBody;
use crate::{ApiError, Shared, call};

type St = State<Arc<Shared>>;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/openapi.json", get(openapi_doc))
        .route("/api/v1/plans", post(create_plan))
        .route("/api/v1/plans/{id}", get(get_plan))
        .route("/api/v1/plans/{id}/answers", post(answer_plan))
        .route("/api/v1/plans/{id}/approvals", post(decide))
        .route("/api/v1/plans/{id}/approval-requests", post(request_approval).get(list_requests))
        .route("/api/v1/plans/{id}/approval-requests/{request}", get(get_request))
        .route("/api/v1/runs", post(start_run).get(list_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/runs/{id}/events", get(crate::events::run_events))
        .route("/api/v1/runs/{id}/rollback", post(rollback))
        .route("/api/v1/query", get(query_get).post(query_post))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(audit_verify))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{name}", delete(revoke_token))
}

// ------------------------------------------------------------------ types

/// A plan from a request in plain language, or from one intent and its parameters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// What to do, as a person says it (at most 2000 characters).
    pub request: Option<String>,
    /// An intent name (e.g. `archive-stale-content`), instead of `request`.
    pub intent: Option<String>,
    /// The intent's parameters (strings, numbers, booleans; `tags` may be a list).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
    /// Answers to the plan's questions known already (question id → choice).
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
}

/// `"all"`, or step ids (`"s2"`) and step/item pairs (`"s2/<item id>"`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Items {
    All(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// `approve` or `reject`.
    pub decision: String,
    /// What is approved (a rejection rejects the plan whatever it names; default `all`).
    pub items: Option<Items>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequestBody {
    pub items: Items,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalRequestOut {
    pub id: String,
    /// The web console's review page with the requester's selection ticked (for the approver).
    pub url: String,
    /// Where the request is read back through the API.
    pub api_url: String,
    pub plan_id: String,
    /// The pairs asked for; `null` = all destructive items.
    pub items: Option<Vec<String>>,
    pub requested_by: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalOut {
    pub id: String,
    pub plan_id: String,
    pub decision: String,
    /// The approved pairs; `null` = all destructive items.
    pub items: Option<Vec<String>>,
    pub approver: String,
    pub channel: String,
    pub expires_at: String,
    /// Whether the plan may run now.
    pub ready: bool,
    /// What is still missing when it may not.
    pub missing: Option<String>,
    /// The run this approval started: present when the policy's `auto_run_on_approval` is on
    /// and this approval completed what the plan needs (`status` `not-started` with a `note`
    /// when the run could not start; the approval stands).
    pub run: Option<RunStarted>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    pub plan_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// `null` when no run was needed.
    pub run_id: Option<String>,
    /// `running`, `rolling-back`, `nothing-to-do` or `scheduled`.
    pub status: String,
    /// The run's Server-Sent Events.
    pub events: Option<String>,
    pub note: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub schedules: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: String,
    pub status: String,
    pub request: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub actor: String,
    pub plan_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    #[serde(flatten)]
    pub run: RunSummary,
    /// The engine's summary of the run (steps with done/skipped/failed counts…).
    #[schema(value_type = Object)]
    pub summary: Value,
    /// Journal entries written so far.
    pub journal_entries: usize,
    pub events: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RunsQuery {
    /// At most this many runs, newest first (default 50, at most 1000).
    pub limit: Option<i64>,
}

/// A Phase-1 question about the site (`POST /api/v1/query`; `GET` takes it as `?question=`).
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QuestionBody {
    /// The question in plain language, e.g. "how many workbooks are in Finance?" (at most
    /// 2000 characters).
    pub question: String,
}

/// The answer to a site question, as `tabflow query --json` prints it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryOut {
    pub question: String,
    /// What kind of question it was (`count`, `list`, `top`, …).
    #[schema(value_type = String)]
    pub kind: Value,
    /// The site's "now" that ages are measured from (RFC 3339).
    pub as_of: String,
    pub summary: String,
    pub columns: Vec<String>,
    /// Rows aligned with `columns`.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<Value>>,
    /// Matching items (for a count, the count; for a top-N list, every candidate).
    pub total: usize,
    /// How names were read, what was left out and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// `viewer`, `requester`, `approver` or `admin`.
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenMade {
    pub name: String,
    pub role: String,
    /// Shown once.
    pub token: String,
}

// ------------------------------------------------------------------ helpers

fn plan_response(status: StatusCode, plan: &Plan) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], plan.to_json()).into_response()
}

fn selection(plan: &Plan, items: Option<&Items>) -> Result<Selection, ApiError> {
    let text = match items {
        None => "all".to_string(),
        Some(Items::All(s)) if s.eq_ignore_ascii_case("all") => "all".to_string(),
        Some(Items::All(s)) => {
            return Err(ApiError::usage(
                format!("items is the string '{s}'"),
                "send \"all\" or a list of step ids (\"s2\") and step/item pairs (\"s2/ITEM\")",
            ));
        }
        Some(Items::List(l)) => l.join(","),
    };
    Selection::parse(plan, &text).map_err(|e| ApiError::usage(e.message, e.fix))
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(param_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Records an action the service does not audit itself, with the token's name and channel.
pub(crate) async fn audit_action(
    shared: &Shared,
    actor: String,
    action: &'static str,
    plan_id: Option<String>,
    after: Value,
) -> Result<(), ApiError> {
    call(&shared.app, move |app| async move {
        app.audit_append(NewRecord {
            actor,
            action: action.into(),
            plan_id,
            after: Some(after),
            outcome: "recorded".into(),
            ..Default::default()
        })
        .await
    })
    .await
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn events_url(run_id: &str) -> String {
    format!("/api/v1/runs/{run_id}/events")
}

// ------------------------------------------------------------------ handlers

#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1); no token needed")))]
pub async fn openapi_doc() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi()).into_response()
}

/// Plans a request (or an intent): reads the site, builds the plan, runs the five checks and
/// stores it. Nothing on the site changes. Answers the plan (`tabflow-plan/2`).
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans", request_body = NewPlan,
    security(("bearer" = [])),
    responses((status = 201, description = "The plan (tabflow-plan/2 JSON; refused checks are in its validation)", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_plan(State(sh): St, Auth(c): Auth, Body(b): Body<NewPlan>) -> Result<Response, ApiError> {
    need(&c, Permission::Request)?;
    let (request, source) = match (b.request, b.intent) {
        (Some(r), None) => (r, Source::Rules),
        (None, Some(name)) => {
            let params: Vec<(String, String)> = b.params.iter().map(|(k, v)| (k.clone(), param_text(v))).collect();
            let text =
                format!("{name} {}", params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
            (text.trim().to_string(), Source::Intent { name, params })
        }
        _ => {
            return Err(ApiError::usage(
                "give either \"request\" or \"intent\" (with \"params\")",
                "e.g. {\"request\": \"archive workbooks in Finance not viewed in 90 days\"}",
            ));
        }
    };
    let actor = c.actor();
    let req = PlanRequest { request, source, answers: b.answers, actor: actor.clone(), remember: true };
    let planned = call(&sh.app, move |app| async move { app.plan(req).await }).await?;
    let plan = planned.plan().clone();
    audit_action(
        &sh,
        actor,
        "plan.created",
        Some(plan.id.clone()),
        json!({"request": plan.request, "fingerprint": plan.fingerprint, "channel": "api"}),
    )
    .await?;
    Ok(plan_response(StatusCode::CREATED, &plan))
}

/// A stored plan.
#[utoipa::path(get, path = "/api/v1/plans/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "plan id")),
    responses((status = 200, description = "The plan (tabflow-plan/2 JSON)", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_plan(State(sh): St, Auth(c): Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    need(&c, Permission::Read)?;
    let plan = call(&sh.app, move |app| async move { app.get_plan(&id).await }).await?;
    Ok(plan_response(StatusCode::OK, &plan))
}

/// Answers questions of a plan: the request is planned again with every answer so far; the
/// new plan (a new id) is answered.
#[utoipa::path(post, path = "/api/v1/plans/{id}/answers", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "plan id")),
    request_body(content = BTreeMap<String, String>, description = "question id → choice, e.g. {\"q1\": \"archive-all\"}"),
    responses((status = 201, description = "The new plan", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn answer_plan(
    State(sh): St,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(answers): Body<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    need(&c, Permission::Request)?;
    let actor = c.actor();
    let a = actor.clone();
    let planned = call(&sh.app, move |app| async move { app.answer(&id, answers, &a).await }).await?;
    let plan = planned.plan().clone();
    audit_action(
        &sh,
        actor,
        "plan.created",
        Some(plan.id.clone()),
        json!({"request": plan.request, "answers": plan.answers, "fingerprint": plan.fingerprint, "channel": "api"}),
    )
    .await?;
    Ok(plan_response(StatusCode::CREATED, &plan))
}

/// Approves (all or a selection of its destructive (step, item) pairs) or rejects a plan.
/// An approver token that asked for the plan may not approve it (policy
/// `approver_must_differ_from_requester`).
#[utoipa::path(post, path = "/api/v1/plans/{id}/approvals", tag = "approvals", security(("bearer" = [])),
    params(("id" = String, Path, description = "plan id")), request_body = ApprovalBody,
    responses((status = 201, body = ApprovalOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn decide(
    State(sh): St,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<ApprovalBody>,
) -> Result<(StatusCode, axum::Json<ApprovalOut>), ApiError> {
    need(&c, Permission::Approve)?;
    let decision = match b.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        other => {
            return Err(ApiError::usage(
                format!("decision '{other}' is neither approve nor reject"),
                "send \"approve\" or \"reject\"",
            ));
        }
    };
    let approver =
        c.approver().ok_or_else(|| ApiError::forbidden("this token may not approve", "use an approver token"))?;
    let pid = id.clone();
    let plan = call(&sh.app, move |app| async move { app.get_plan(&pid).await }).await?;
    let sel = selection(&plan, b.items.as_ref())?;
    let pid = id.clone();
    let (row, status) = call(&sh.app, move |app| async move {
        let row = app.approve(&approver, &pid, decision, sel).await?;
        let status = app.approval_status(&pid).await?;
        Ok((row, status))
    })
    .await?;
    let run = auto_run(&sh, &id, decision == Decision::Approve, status.is_ok(), c.actor()).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(ApprovalOut {
            id: row.id,
            plan_id: row.plan_id,
            decision: row.decision,
            items: row.items,
            approver: row.approver,
            channel: row.channel,
            expires_at: ts(row.expires_at),
            ready: status.is_ok(),
            missing: status.err().map(|m| tabflow_app::missing_text(&m)),
            run,
        }),
    ))
}

fn request_out(r: tabflow_app::ApprovalRequest) -> ApprovalRequestOut {
    ApprovalRequestOut {
        url: format!("/console/plans/{}?request={}", r.plan_id, r.id),
        api_url: format!("/api/v1/plans/{}/approval-requests/{}", r.plan_id, r.id),
        id: r.id,
        plan_id: r.plan_id,
        items: r.items,
        requested_by: r.requested_by,
        created_at: ts(r.created_at),
    }
}

/// Asks for approval of (a selection of) a plan; grants nothing. The answer's `url` reads
/// the request back, with the selection the approver starts from.
#[utoipa::path(post, path = "/api/v1/plans/{id}/approval-requests", tag = "approvals", security(("bearer" = [])),
    params(("id" = String, Path, description = "plan id")), request_body = ApprovalRequestBody,
    responses((status = 201, body = ApprovalRequestOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn request_approval(
    State(sh): St,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<ApprovalRequestBody>,
) -> Result<(StatusCode, axum::Json<ApprovalRequestOut>), ApiError> {
    need(&c, Permission::Request)?;
    let pid = id.clone();
    let plan = call(&sh.app, move |app| async move { app.get_plan(&pid).await }).await?;
    let sel = selection(&plan, Some(&b.items))?;
    let actor = c.actor();
    let r = call(&sh.app, move |app| async move { app.request_approval(&id, sel, &actor).await }).await?;
    Ok((StatusCode::CREATED, axum::Json(request_out(r))))
}

/// The approval requests of a plan, oldest first.
#[utoipa::path(get, path = "/api/v1/plans/{id}/approval-requests", tag = "approvals", security(("bearer" = [])),
    params(("id" = String, Path, description = "plan id")),
    responses((status = 200, body = Vec<ApprovalRequestOut>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_requests(
    State(sh): St,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<ApprovalRequestOut>>, ApiError> {
    need(&c, Permission::Read)?;
    let list = call(&sh.app, move |app| async move {
        app.get_plan(&id).await?;
        app.approval_requests(&id).await
    })
    .await?;
    Ok(axum::Json(list.into_iter().map(request_out).collect()))
}

/// One approval request.
#[utoipa::path(get, path = "/api/v1/plans/{id}/approval-requests/{request}", tag = "approvals", security(("bearer" = [])),
    params(("id" = String, Path, description = "plan id"), ("request" = String, Path, description = "request id")),
    responses((status = 200, body = ApprovalRequestOut), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_request(
    State(sh): St,
    Auth(c): Auth,
    Path((id, request)): Path<(String, String)>,
) -> Result<axum::Json<ApprovalRequestOut>, ApiError> {
    need(&c, Permission::Read)?;
    let list = call(&sh.app, move |app| async move { app.approval_requests(&id).await }).await?;
    list.into_iter().find(|r| r.id == request).map(|r| axum::Json(request_out(r))).ok_or_else(|| {
        ApiError::not_found(
            format!("no approval request '{request}' for this plan"),
            "see GET /api/v1/plans/{id}/approval-requests",
        )
    })
}

/// Starts a run of an approved plan (a destructive plan without a valid approval: 409).
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs", security(("bearer" = [])), request_body = StartBody,
    responses((status = 202, description = "The run started", body = RunStarted),
        (status = 200, description = "Nothing to run (read-only plan, or recurring reviews stored)", body = RunStarted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start_run(
    State(sh): St,
    Auth(c): Auth,
    Body(b): Body<StartBody>,
) -> Result<(StatusCode, axum::Json<RunStarted>), ApiError> {
    need(&c, Permission::Start)?;
    let (status, started) = start(&sh, b.plan_id, c.actor()).await?;
    Ok((status, axum::Json(started)))
}

/// Starts the run of an approved plan as `actor`; its events are kept for watchers.
pub(crate) async fn start(
    sh: &Arc<Shared>,
    plan_id: String,
    actor: String,
) -> Result<(StatusCode, RunStarted), ApiError> {
    let start =
        call(&sh.app, move |app| async move { app.start_run(&plan_id, &actor, StartOptions::default()).await }).await?;
    Ok(match start {
        Start::Running(h) => {
            let id = h.run_id().to_string();
            sh.follow(h);
            (
                StatusCode::ACCEPTED,
                RunStarted {
                    events: Some(events_url(&id)),
                    run_id: Some(id),
                    status: "running".into(),
                    note: None,
                    schedules: vec![],
                },
            )
        }
        Start::NothingToDo(note) => (
            StatusCode::OK,
            RunStarted { run_id: None, status: "nothing-to-do".into(), events: None, note, schedules: vec![] },
        ),
        Start::Scheduled(schedules) => (
            StatusCode::OK,
            RunStarted { run_id: None, status: "scheduled".into(), events: None, note: None, schedules },
        ),
    })
}

/// After an approval: with the policy's `auto_run_on_approval` (unset: on for a plan a
/// schedule or a Tableau event made, off for a person's), an approval that made the plan
/// ready starts its run as the approver who gave it. A run that cannot start leaves the
/// approval standing and says why.
pub(crate) async fn auto_run(
    sh: &Arc<Shared>,
    plan_id: &str,
    approved: bool,
    ready: bool,
    actor: String,
) -> Option<RunStarted> {
    if !(approved && ready) {
        return None;
    }
    let pid = plan_id.to_string();
    let unattended = call(&sh.app, move |app| async move { app.get_plan(&pid).await })
        .await
        .is_ok_and(|p| tabflow_app::made_without_a_person(&p));
    if !sh.app.policy().auto_run(unattended) {
        return None;
    }
    Some(match start(sh, plan_id.to_string(), actor).await {
        Ok((_, started)) => started,
        Err(e) => RunStarted {
            run_id: None,
            status: "not-started".into(),
            events: None,
            note: Some(format!("{} — {}", e.message, e.hint)),
            schedules: vec![],
        },
    })
}

fn summary(r: &tabflow_app::RunRow) -> RunSummary {
    RunSummary {
        id: r.id.clone(),
        status: r.status.as_str().into(),
        request: r.request.clone(),
        created_at: ts(r.created_at),
        finished_at: r.finished_at.map(ts),
        actor: r.actor.clone(),
        plan_id: r.plan_id.clone(),
    }
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", security(("bearer" = [])), params(RunsQuery),
    responses((status = 200, body = Vec<RunSummary>), (status = 401, body = ErrorBody)))]
pub async fn list_runs(
    State(sh): St,
    Auth(c): Auth,
    Query(q): Query<RunsQuery>,
) -> Result<axum::Json<Vec<RunSummary>>, ApiError> {
    need(&c, Permission::Read)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let rows = call(&sh.app, move |app| async move { app.runs(limit).await }).await?;
    Ok(axum::Json(rows.iter().map(summary).collect()))
}

/// One run.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunOut), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_run(State(sh): St, Auth(c): Auth, Path(id): Path<String>) -> Result<axum::Json<RunOut>, ApiError> {
    need(&c, Permission::Read)?;
    let d = call(&sh.app, move |app| async move { app.run(&id).await }).await?;
    Ok(axum::Json(RunOut {
        run: summary(&d.run),
        summary: d.run.summary.clone(),
        journal_entries: d.journal.len(),
        events: events_url(&d.run.id),
    }))
}

/// The rollback plan of a run, and the approval it asks for.
#[derive(Debug, Serialize, ToSchema)]
pub struct RollbackPlanned {
    /// The rollback plan (approve it through the plan's approval routes, then start it with
    /// `POST /api/v1/runs {"plan_id"}`).
    pub plan_id: String,
    /// The run it undoes.
    pub run_id: String,
    /// The approval asked for (all of the plan's items): its `url` is the console's review
    /// page for an approver.
    pub approval_request: ApprovalRequestOut,
    /// The rollback plan (tabflow-plan/2 JSON, with `rollback_of`).
    #[schema(value_type = Object)]
    pub plan: Value,
}

/// Asks for a run's rollback: makes its rollback plan (the compensations of what the run
/// changed, checked like any plan; nothing on the site changes) and requests its approval.
/// An approver approves it (all or some of its (step, item) pairs) like any plan; then
/// `POST /api/v1/runs {"plan_id"}` (or `auto_run_on_approval`) undoes exactly what was approved.
#[utoipa::path(post, path = "/api/v1/runs/{id}/rollback", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path, description = "run id")),
    responses((status = 201, body = RollbackPlanned), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rollback(
    State(sh): St,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<RollbackPlanned>), ApiError> {
    need(&c, Permission::Rollback)?;
    let actor = c.actor();
    let run_id = id.clone();
    let (plan, r) = call(&sh.app, move |app| async move {
        let vp = app.plan_rollback(&id, &actor, "api").await?;
        let plan = vp.into_plan();
        let r = app.request_approval(&plan.id, Selection::All, &actor).await?;
        Ok((plan, r))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(RollbackPlanned {
            plan_id: plan.id.clone(),
            run_id,
            approval_request: request_out(r),
            plan: serde_json::to_value(&plan).unwrap_or(Value::Null),
        }),
    ))
}

/// Answers a read-only question about the site (Phase 1: counts, lists, top-N, who can see
/// what) from the live site; any role may ask. A question of no known kind is refused (422)
/// with examples, an ambiguous name needs input (409), an unknown name is not found (404).
#[utoipa::path(post, path = "/api/v1/query", tag = "query", security(("bearer" = [])), request_body = QuestionBody,
    responses((status = 200, body = QueryOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn query_post(
    State(sh): St,
    Auth(c): Auth,
    Body(b): Body<QuestionBody>,
) -> Result<axum::Json<QueryOut>, ApiError> {
    answer_question(&sh, &c, b.question).await
}

/// [`query_post`] with the question in the query string.
#[utoipa::path(get, path = "/api/v1/query", tag = "query", security(("bearer" = [])), params(QuestionBody),
    responses((status = 200, body = QueryOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn query_get(
    State(sh): St,
    Auth(c): Auth,
    q: Result<Query<QuestionBody>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<QueryOut>, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::bad_request(
            format!("the query string is not a question: {}", e.body_text()),
            "send ?question=… (URL-encoded), or POST {\"question\": \"…\"}",
        )
    })?;
    answer_question(&sh, &c, q.question).await
}

async fn answer_question(
    sh: &Arc<Shared>,
    c: &tabflow_app::Caller,
    question: String,
) -> Result<axum::Json<QueryOut>, ApiError> {
    need(c, Permission::Read)?;
    let a = call(&sh.app, move |app| async move { app.query(&question).await }).await?;
    Ok(axum::Json(QueryOut {
        question: a.question,
        kind: serde_json::to_value(a.kind).unwrap_or(Value::Null),
        as_of: ts(a.as_of),
        summary: a.summary,
        columns: a.columns,
        rows: a.rows,
        total: a.total,
        notes: a.notes,
    }))
}

/// The hash-chained audit log, oldest first, as the export `tabflow audit export` writes:
/// JSON `{"head", "anchor", "records"}` or CSV ending with the `#head` line.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "JSON {\"head\", \"anchor\", \"records\"}, or text/csv", body = Object),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn audit(State(sh): St, Auth(c): Auth, Query(q): Query<AuditQuery>) -> Result<Response, ApiError> {
    need(&c, Permission::Read)?;
    let format = q.format.unwrap_or_else(|| "json".into());
    let ctype = if format == "csv" { "text/csv; charset=utf-8" } else { "application/json" };
    let text = call(&sh.app, move |app| async move { app.audit_export(&format).await }).await?;
    Ok(([(header::CONTENT_TYPE, ctype)], text).into_response())
}

/// Re-hashes the audit log: `{"records", "ok", "problems": [{"seq", "message"}]}`.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
pub async fn audit_verify(State(sh): St, Auth(c): Auth) -> Result<axum::Json<Value>, ApiError> {
    need(&c, Permission::Read)?;
    let v = call(&sh.app, move |app| async move { app.audit_verify().await }).await?;
    Ok(axum::Json(serde_json::to_value(v).unwrap_or(Value::Null)))
}

/// The tokens (admin), never the tokens themselves.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(State(sh): St, Auth(c): Auth) -> Result<axum::Json<Value>, ApiError> {
    need(&c, Permission::ManageTokens)?;
    let list = call(&sh.app, move |app| async move { app.tokens().await }).await?;
    Ok(axum::Json(serde_json::to_value(list).unwrap_or(Value::Null)))
}

/// Makes a token (admin); the token is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = NewToken,
    responses((status = 201, body = TokenMade), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(sh): St,
    Auth(c): Auth,
    Body(b): Body<NewToken>,
) -> Result<(StatusCode, axum::Json<TokenMade>), ApiError> {
    need(&c, Permission::ManageTokens)?;
    let role = Role::parse(&b.role)?;
    let actor = c.actor();
    let (info, token) = call(&sh.app, move |app| async move { app.create_token(&b.name, role, &actor).await }).await?;
    Ok((StatusCode::CREATED, axum::Json(TokenMade { name: info.name, role: info.role.as_str().into(), token })))
}

/// Revokes a token (admin).
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens", security(("bearer" = [])),
    params(("name" = String, Path, description = "token name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(State(sh): St, Auth(c): Auth, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    need(&c, Permission::ManageTokens)?;
    let actor = c.actor();
    call(&sh.app, move |app| async move { app.revoke_token(&name, &actor).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ OpenAPI

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, o: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        o.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tabflow", description = "Plans, approvals, runs and audit of tabflow (DESIGN.md §6). Bearer tokens from `tabflow tokens create`; roles viewer < requester/approver < admin."),
    paths(openapi_doc, create_plan, get_plan, answer_plan, decide, request_approval, list_requests, get_request,
        start_run, list_runs, get_run, crate::events::run_events, rollback, query_post, query_get, audit, audit_verify, list_tokens, create_token, revoke_token),
    components(schemas(ErrorBody, NewPlan, Items, ApprovalBody, ApprovalRequestBody, ApprovalRequestOut, ApprovalOut,
        StartBody, RunStarted, RunSummary, RunOut, RollbackPlanned, NewToken, TokenMade, QuestionBody, QueryOut)),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

pub fn openapi() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".into())
}
