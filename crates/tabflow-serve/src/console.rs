//! The web console: server-rendered pages (askama templates) with plain forms, and the
//! browser's `EventSource` for a run's progress. Signing in with an API token makes a session
//! (an `HttpOnly`, `SameSite=Strict` cookie naming a server-side session; the token itself
//! never reaches the browser again); every form carries the session's CSRF token, and a POST
//! without it is refused (403). The token is checked again on every request, so revoking it
//! ends its sessions. Pages: ask, plan (review: questions, checks, items with checkboxes,
//! ask for approval / approve / reject, run), run (live progress), runs (filter, rollback with
//! confirmation) and audit (records, chain status, CSV).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tabflow_app::{Approver, Caller, Decision, Permission, PlanRequest, Selection, Source, Start, StartOptions};

use crate::api::RunStarted as RunStartedRef;
use crate::{ApiError, Shared, call};

const COOKIE: &str = "tabflow_session";

/// A signed-in browser: the token it signed in with (kept here, never sent back) and its
/// CSRF token.
pub(crate) struct WebSession {
    token: String,
    csrf: String,
    since: std::time::Instant,
}

/// How long a console session lasts before signing in again.
const SESSION_HOURS: u64 = 12;

fn expired(w: &WebSession) -> bool {
    w.since.elapsed() > std::time::Duration::from_secs(SESSION_HOURS * 3600)
}

pub(crate) type Sessions = std::sync::Mutex<HashMap<String, WebSession>>;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/ask") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/ask", get(ask_page).post(ask))
        .route("/console/plans/{id}", get(plan_page))
        .route("/console/plans/{id}/answers", post(answer))
        .route("/console/plans/{id}/decide", post(decide))
        .route("/console/runs", get(runs_page).post(start))
        .route("/console/runs/{id}", get(run_page))
        .route("/console/runs/{id}/events", get(run_events))
        .route("/console/runs/{id}/rollback", post(rollback))
        .route("/console/audit", get(audit_page))
        .route("/console/audit.csv", get(audit_csv))
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    // Without randomness no session can be made safely; an empty id is never accepted.
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A page answer, or an error page.
struct Page(Result<String, askama::Error>);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
            Err(e) => {
                (StatusCode::INTERNAL_SERVER_ERROR, format!("the page could not be rendered: {e}")).into_response()
            }
        }
    }
}

/// An error shown as a page (with its hint), with the API's status.
struct WebError(ApiError);

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError(e)
    }
}

#[derive(Template)]
#[template(path = "base.html")]
struct ErrorPage {
    who: Option<String>,
    csrf: String,
    error: Option<String>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.0.status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/console/login").into_response();
        }
        let page =
            ErrorPage {
                who: None, csrf: String::new(), error: Some(format!("{} — {}", self.0.message, self.0.hint))
            };
        (self.0.status, Page(page.render())).into_response()
    }
}

/// The signed-in caller of a page.
struct Web {
    caller: Caller,
    csrf: String,
    sid: String,
}

impl Web {
    fn who(&self) -> Option<String> {
        Some(format!("{} ({})", self.caller.name, self.caller.role.as_str()))
    }

    fn need(&self, p: Permission) -> Result<(), WebError> {
        crate::auth::need(&self.caller, p).map_err(WebError)
    }

    /// The fields of a form, refused (403) without this session's CSRF token.
    fn form(&self, body: &Bytes) -> Result<Vec<(String, String)>, WebError> {
        let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let sent = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
        if self.csrf.is_empty() || !same(sent.as_bytes(), self.csrf.as_bytes()) {
            return Err(WebError(ApiError::forbidden(
                "the form did not carry this session's CSRF token",
                "reload the page and send the form again",
            )));
        }
        Ok(fields)
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

impl FromRequestParts<Arc<Shared>> for Web {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sh: &Arc<Shared>) -> Result<Self, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let sid = session_id(&parts.headers).ok_or_else(to_login)?;
        let (token, csrf) = {
            let s = sh.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let w = s.get(&sid).filter(|w| !expired(w)).ok_or_else(to_login)?;
            (w.token.clone(), w.csrf.clone())
        };
        match call(&sh.app, move |app| async move { app.authenticate(&token).await }).await {
            Ok(Some(caller)) => Ok(Web { caller, csrf, sid }),
            Ok(None) => {
                sh.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&sid);
                Err(to_login())
            }
            Err(e) => Err(WebError(e).into_response()),
        }
    }
}

// ------------------------------------------------------------------ sign in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    who: Option<String>,
    csrf: String,
    error: Option<String>,
}

async fn login_page() -> Page {
    Page(LoginPage { who: None, csrf: String::new(), error: None }.render())
}

async fn login(State(sh): State<Arc<Shared>>, body: Bytes) -> Result<Response, WebError> {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let token = field(&fields, "token").trim().to_string();
    let t = token.clone();
    let caller = call(&sh.app, move |app| async move { app.authenticate(&t).await }).await?;
    if caller.is_none() {
        let page = LoginPage {
            who: None,
            csrf: String::new(),
            error: Some("That token is not a live token of this server (unknown or revoked).".into()),
        };
        return Ok((StatusCode::UNAUTHORIZED, Page(page.render())).into_response());
    }
    let (sid, csrf) = (random_hex(), random_hex());
    if sid.is_empty() || csrf.is_empty() {
        return Err(WebError(ApiError::internal("no randomness for a session")));
    }
    let mut sessions = sh.sessions.lock().unwrap_or_else(|e| e.into_inner());
    sessions.retain(|_, w| !expired(w));
    sessions.insert(sid.clone(), WebSession { token, csrf, since: std::time::Instant::now() });
    drop(sessions);
    let cookie = format!("{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}", SESSION_HOURS * 3600);
    let mut r = Redirect::to("/console/ask").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

async fn logout(State(sh): State<Arc<Shared>>, web: Web, body: Bytes) -> Result<Response, WebError> {
    web.form(&body)?;
    sh.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&web.sid);
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tabflow_session=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0"),
    );
    Ok(r)
}

// ------------------------------------------------------------------ ask and review

#[derive(Template)]
#[template(path = "ask.html")]
struct AskPage {
    who: Option<String>,
    csrf: String,
    error: Option<String>,
    can_request: bool,
    role: String,
}

async fn ask_page(web: Web) -> Page {
    Page(
        AskPage {
            who: web.who(),
            csrf: web.csrf.clone(),
            error: None,
            can_request: web.caller.role.may(Permission::Request),
            role: web.caller.role.as_str().into(),
        }
        .render(),
    )
}

async fn ask(State(sh): State<Arc<Shared>>, web: Web, body: Bytes) -> Result<Response, WebError> {
    let fields = web.form(&body)?;
    web.need(Permission::Request)?;
    let req = PlanRequest {
        request: field(&fields, "request").to_string(),
        source: Source::Rules,
        answers: Default::default(),
        actor: web.caller.actor(),
        remember: true,
    };
    let planned = call(&sh.app, move |app| async move { app.plan(req).await }).await?;
    let plan = planned.plan();
    let after = serde_json::json!({"request": plan.request, "fingerprint": plan.fingerprint, "channel": "web-console"});
    crate::api::audit_action(&sh, web.caller.actor(), "plan.created", Some(plan.id.clone()), after).await?;
    Ok(Redirect::to(&format!("/console/plans/{}", plan.id)).into_response())
}

struct QuestionView {
    id: String,
    text: String,
    choices: Vec<String>,
}

struct ItemView {
    id: String,
    name: String,
    detail: String,
    ticked: bool,
}

struct StepView {
    id: String,
    title: String,
    effect: String,
    destructive: bool,
    items: Vec<ItemView>,
}

#[derive(Template)]
#[template(path = "plan.html")]
struct PlanPage {
    who: Option<String>,
    csrf: String,
    error: Option<String>,
    id: String,
    request: String,
    impact: String,
    findings: Vec<String>,
    questions: Vec<QuestionView>,
    steps: Vec<StepView>,
    status: String,
    can_request: bool,
    can_approve: bool,
    can_start: bool,
}

#[derive(Deserialize)]
struct PlanQuery {
    request: Option<String>,
}

async fn plan_page(
    State(sh): State<Arc<Shared>>,
    web: Web,
    Path(id): Path<String>,
    Query(q): Query<PlanQuery>,
) -> Result<Page, WebError> {
    let pid = id.clone();
    let (plan, status, requests) = call(&sh.app, move |app| async move {
        let plan = app.get_plan(&pid).await?;
        let status = if plan.questions.is_empty() { Some(app.approval_status(&pid).await?) } else { None };
        let requests = app.approval_requests(&pid).await?;
        Ok((plan, status, requests))
    })
    .await?;
    let destructive: BTreeSet<(String, String)> =
        plan.destructive_items().into_iter().map(|(s, i)| (s.to_string(), i.to_string())).collect();
    // Ticked: what the approval request named (all when it named everything), else all.
    let asked: Option<BTreeSet<String>> = q
        .request
        .as_deref()
        .and_then(|rid| requests.iter().find(|r| r.id == rid))
        .and_then(|r| r.items.clone())
        .map(|v| v.into_iter().collect());
    let steps = plan
        .steps
        .iter()
        .map(|s| StepView {
            id: s.id.clone(),
            title: s.title.clone(),
            effect: s.effect.as_str().into(),
            destructive: destructive.iter().any(|(sid, _)| *sid == s.id),
            items: s
                .items
                .iter()
                .map(|i| ItemView {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    detail: [
                        i.kind.clone(),
                        i.project.clone().unwrap_or_default(),
                        i.owner.clone().unwrap_or_default(),
                    ]
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join(" · "),
                    ticked: asked.as_ref().is_none_or(|a| a.contains(&tabflow_app::pair_key(&s.id, &i.id))),
                })
                .collect(),
        })
        .collect();
    let writes = plan.steps.iter().any(|s| s.is_write());
    let ready = match &status {
        Some(Ok(_)) => true,
        Some(Err(_)) => destructive.is_empty(),
        None => false,
    };
    let status_text = match &status {
        None => String::new(),
        Some(_) if !writes => "This plan changes nothing on the site.".into(),
        Some(Ok(g)) => format!("Approved by {}: ready to run.", g.approvers.join(", ")),
        Some(Err(_)) if destructive.is_empty() => "No approval needed: ready to run.".into(),
        Some(Err(tabflow_app::Missing::None)) if !requests.is_empty() => "Waiting for approval.".into(),
        Some(Err(m)) => format!("Not approved: {}.", tabflow_app::missing_text(m)),
    };
    let impact = format!(
        "{} item(s), {} user(s) affected, {} project(s), {} owner(s)",
        plan.impact.items, plan.impact.users_affected, plan.impact.projects, plan.impact.owners
    );
    let findings = plan
        .validation
        .findings
        .iter()
        .map(|f| format!("{} ({:?}): {}", f.check.as_str(), f.level, f.message))
        .collect();
    let role = web.caller.role;
    let page = PlanPage {
        who: web.who(),
        csrf: web.csrf.clone(),
        error: None,
        id: plan.id.clone(),
        request: plan.request.clone(),
        impact,
        findings,
        questions: plan
            .questions
            .iter()
            .map(|q| QuestionView { id: q.id.clone(), text: q.text.clone(), choices: q.choices.clone() })
            .collect(),
        steps,
        status: status_text,
        can_request: role.may(Permission::Request) && !destructive.is_empty(),
        can_approve: role.may(Permission::Approve) && !destructive.is_empty(),
        can_start: role.may(Permission::Start) && writes && ready,
    };
    Ok(Page(page.render()))
}

async fn answer(
    State(sh): State<Arc<Shared>>,
    web: Web,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let fields = web.form(&body)?;
    web.need(Permission::Request)?;
    let answers = fields.into_iter().filter(|(k, _)| k != "csrf").collect();
    let actor = web.caller.actor();
    let planned = call(&sh.app, move |app| async move { app.answer(&id, answers, &actor).await }).await?;
    let plan = planned.plan();
    let after = serde_json::json!({"request": plan.request, "answers": plan.answers, "fingerprint": plan.fingerprint, "channel": "web-console"});
    crate::api::audit_action(&sh, web.caller.actor(), "plan.created", Some(plan.id.clone()), after).await?;
    Ok(Redirect::to(&format!("/console/plans/{}", plan.id)).into_response())
}

async fn decide(
    State(sh): State<Arc<Shared>>,
    web: Web,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let fields = web.form(&body)?;
    let action = field(&fields, "action").to_string();
    let items: Vec<String> = fields.iter().filter(|(k, _)| k == "item").map(|(_, v)| v.clone()).collect();
    let pid = id.clone();
    let plan = call(&sh.app, move |app| async move { app.get_plan(&pid).await }).await?;
    let selection = |items: &[String]| {
        if items.is_empty() {
            return Err(WebError(ApiError::usage(
                "no item is ticked",
                "tick the items to approve, or reject the plan",
            )));
        }
        Selection::parse(&plan, &items.join(",")).map_err(|e| WebError(ApiError::usage(e.message, e.fix)))
    };
    match action.as_str() {
        "request" => {
            web.need(Permission::Request)?;
            let sel = selection(&items)?;
            let actor = web.caller.actor();
            let r = call(&sh.app, move |app| async move { app.request_approval(&id, sel, &actor).await }).await?;
            Ok(Redirect::to(&format!("/console/plans/{}?request={}", r.plan_id, r.id)).into_response())
        }
        "approve" | "reject" => {
            web.need(Permission::Approve)?;
            let (decision, sel) = if action == "approve" {
                (Decision::Approve, selection(&items)?)
            } else {
                (Decision::Reject, Selection::All)
            };
            let approver = Approver::api_token(&web.caller.name, true);
            let pid = id.clone();
            let ready = call(&sh.app, move |app| async move {
                app.approve(&approver, &pid, decision, sel).await?;
                Ok(app.approval_status(&pid).await?.is_ok())
            })
            .await?;
            // The policy's auto_run_on_approval: the approval that made the plan ready starts it.
            let approved = decision == Decision::Approve;
            match crate::api::auto_run(&sh, &id, approved, ready, web.caller.actor()).await {
                Some(RunStartedRef { run_id: Some(run), .. }) => {
                    Ok(Redirect::to(&format!("/console/runs/{run}")).into_response())
                }
                _ => Ok(Redirect::to(&format!("/console/plans/{id}")).into_response()),
            }
        }
        other => Err(WebError(ApiError::usage(format!("unknown action '{other}'"), "use the page's buttons"))),
    }
}

// ------------------------------------------------------------------ runs

async fn start(State(sh): State<Arc<Shared>>, web: Web, body: Bytes) -> Result<Response, WebError> {
    let fields = web.form(&body)?;
    web.need(Permission::Start)?;
    let plan_id = field(&fields, "plan_id").to_string();
    let actor = web.caller.actor();
    let pid = plan_id.clone();
    let start =
        call(&sh.app, move |app| async move { app.start_run(&pid, &actor, StartOptions::default()).await }).await?;
    Ok(match start {
        Start::Running(h) => {
            let id = h.run_id().to_string();
            sh.follow(h);
            Redirect::to(&format!("/console/runs/{id}")).into_response()
        }
        Start::NothingToDo(_) | Start::Scheduled(_) => {
            Redirect::to(&format!("/console/plans/{plan_id}")).into_response()
        }
    })
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    who: Option<String>,
    csrf: String,
    error: Option<String>,
    id: String,
    request: String,
    status: String,
    steps: Vec<String>,
}

async fn run_page(State(sh): State<Arc<Shared>>, web: Web, Path(id): Path<String>) -> Result<Page, WebError> {
    let d = call(&sh.app, move |app| async move { app.run(&id).await }).await?;
    let steps = d.run.summary["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    format!(
                        "{}: {} — {} done, {} skipped, {} failed",
                        s["id"].as_str().unwrap_or("?"),
                        s["status"].as_str().unwrap_or("?"),
                        s["done"],
                        s["skipped"],
                        s["failed"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Page(
        RunPage {
            who: web.who(),
            csrf: web.csrf.clone(),
            error: None,
            id: d.run.id.clone(),
            request: d.run.request.clone(),
            status: d.run.status.as_str().into(),
            steps,
        }
        .render(),
    ))
}

async fn run_events(State(sh): State<Arc<Shared>>, _web: Web, Path(id): Path<String>) -> Result<Response, WebError> {
    Ok(crate::events::stream(&sh, id).await?)
}

struct RunLine {
    id: String,
    status: String,
    request: String,
    actor: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    who: Option<String>,
    csrf: String,
    error: Option<String>,
    q: String,
    runs: Vec<RunLine>,
    can_rollback: bool,
}

#[derive(Deserialize)]
struct RunsQuery {
    q: Option<String>,
}

async fn runs_page(State(sh): State<Arc<Shared>>, web: Web, Query(q): Query<RunsQuery>) -> Result<Page, WebError> {
    let rows = call(&sh.app, move |app| async move { app.runs(200).await }).await?;
    let filter = q.q.unwrap_or_default();
    let needle = filter.to_lowercase();
    let runs = rows
        .into_iter()
        .map(|r| RunLine {
            id: r.id,
            status: r.status.as_str().into(),
            request: r.request,
            actor: r.actor,
            created_at: r.created_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .filter(|r| {
            needle.is_empty()
                || [&r.id, &r.status, &r.request, &r.actor].iter().any(|t| t.to_lowercase().contains(&needle))
        })
        .collect();
    Ok(Page(
        RunsPage {
            who: web.who(),
            csrf: web.csrf.clone(),
            error: None,
            q: filter,
            runs,
            can_rollback: web.caller.role.may(Permission::Rollback),
        }
        .render(),
    ))
}

async fn rollback(
    State(sh): State<Arc<Shared>>,
    web: Web,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let fields = web.form(&body)?;
    web.need(Permission::Rollback)?;
    if field(&fields, "confirm") != "yes" {
        return Err(WebError(ApiError::usage("the rollback was not confirmed", "tick \"Yes, undo this run\"")));
    }
    // A rollback is a plan of its own: made here, approved on its review page like any
    // destructive plan, then run from there.
    let actor = web.caller.actor();
    let r = call(&sh.app, move |app| async move {
        let vp = app.plan_rollback(&id, &actor, "web-console").await?;
        app.request_approval(&vp.plan().id, tabflow_app::Selection::All, &actor).await
    })
    .await?;
    Ok(Redirect::to(&format!("/console/plans/{}?request={}", r.plan_id, r.id)).into_response())
}

// ------------------------------------------------------------------ audit

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    who: Option<String>,
    csrf: String,
    error: Option<String>,
    chain: String,
    records: Vec<String>,
}

async fn audit_page(State(sh): State<Arc<Shared>>, web: Web) -> Result<Page, WebError> {
    let (v, records) =
        call(&sh.app, |app| async move { Ok((app.audit_verify().await?, app.audit_records().await?)) }).await?;
    let chain = if v.ok {
        format!("Hash chain intact: {} records.", v.records)
    } else {
        format!(
            "Hash chain BROKEN: {}",
            v.problems.iter().map(|p| format!("record {}: {}", p.seq, p.message)).collect::<Vec<_>>().join("; ")
        )
    };
    let records = records
        .iter()
        .rev()
        .take(500)
        .map(|r| {
            format!(
                "#{} {} · {} · {}{}{} · {}",
                r.seq,
                r.at.format("%Y-%m-%d %H:%M:%S"),
                r.actor,
                r.action,
                r.plan_id.as_deref().map(|p| format!(" plan {p}")).unwrap_or_default(),
                r.run_id.as_deref().map(|p| format!(" run {p}")).unwrap_or_default(),
                r.outcome
            )
        })
        .collect();
    Ok(Page(AuditPage { who: web.who(), csrf: web.csrf.clone(), error: None, chain, records }.render()))
}

async fn audit_csv(State(sh): State<Arc<Shared>>, _web: Web) -> Result<Response, WebError> {
    let csv = call(&sh.app, |app| async move { app.audit_export("csv").await }).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"tabflow-audit.csv\""),
        ],
        csv,
    )
        .into_response())
}
