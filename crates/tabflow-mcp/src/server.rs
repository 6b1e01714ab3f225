//! The tools, over the application service.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomNotification, ElicitRequestParams,
    ElicitationAction, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams, ProgressNotificationParam,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, ServerNotification,
};
use rmcp::service::{ElicitationMode, RequestContext};
use rmcp::{ErrorData, Json, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tabflow_app::{
    App, Event, Grant, Kind, Missing, NewRecord, Permission, Plan, PlanRequest, QueryAnswer, Selection, Source, Start,
    StartOptions,
};

use crate::views::{
    self, ApprovalRequestView, ElicitationView, PlanView, QueryView, RollbackView, RunList, RunView, TemplateList,
    TemplateView,
};
use crate::{HttpCaller, Settings, args};

/// Every tool, and whether it changes nothing (listed and allowed in read-only mode).
pub const TOOLS: [(&str, bool); 11] = [
    ("plan_workflow", true),
    ("list_templates", true),
    ("run_template", true),
    ("answer_questions", true),
    ("get_plan", true),
    ("query_site", true),
    ("run_status", true),
    ("list_runs", true),
    ("request_approval", false),
    ("start_run", false),
    ("rollback_run", false),
];

/// The MCP server: the service, the settings, and the tools an admin allows.
#[derive(Clone)]
pub struct TabflowMcp {
    app: Arc<App>,
    settings: Arc<Settings>,
    tool_router: ToolRouter<Self>,
    /// Served over HTTP: every call must come with an authenticated [`HttpCaller`].
    http: bool,
    /// The latest query answers (key, answer), for their next pages.
    answers: Arc<Mutex<Answers>>,
}

#[derive(Default)]
struct Answers {
    next: u64,
    kept: VecDeque<(String, Arc<QueryAnswer>)>,
}

/// How many query answers a server keeps for paging.
const KEPT_ANSWERS: usize = 16;

/// What a tool needs of an HTTP caller's role (as the HTTP API's routes do).
fn permission(tool: &str) -> Permission {
    match tool {
        "plan_workflow" | "run_template" | "answer_questions" | "request_approval" => Permission::Request,
        "rollback_run" => Permission::Rollback,
        "start_run" => Permission::Start,
        _ => Permission::Read,
    }
}

// ------------------------------------------------------------------ arguments

/// A plan from a request in plain language, or from one intent and its parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// What to do, as a person says it (at most 2000 characters), e.g. "Clean up the Finance
    /// project - archive workbooks not accessed in 90 days". Give this or `intent`.
    pub request: Option<String>,
    /// An intent name instead of `request` (e.g. `archive-stale-content`).
    pub intent: Option<String>,
    /// The intent's parameters (e.g. {"project": "Finance", "days": 90}).
    pub params: Option<BTreeMap<String, Value>>,
    /// Answers to the plan's questions known already (question id → choice).
    pub answers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerArgs {
    /// The plan whose questions are answered.
    pub plan_id: String,
    /// Question id → one of its choices, e.g. {"q1": "archive-all"}.
    pub answers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPlanArgs {
    pub plan_id: String,
    /// The `next_cursor` of a previous answer, for the next page of items.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    /// A question about the site, e.g. "how many workbooks are in Finance?".
    pub question: String,
    /// The `next_cursor` of a previous answer, for the next page of rows.
    pub cursor: Option<String>,
}

/// `"all"`, or step ids (`"s2"`) and step/item pairs (`"s2/<item id>"`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Items {
    All(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestApprovalArgs {
    pub plan_id: String,
    /// What to ask approval for: "all" (default), or a list of step ids ("s2") and
    /// step/item pairs ("s2/<item id>", the `pair` of get_plan's items).
    pub selection: Option<Items>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanIdArgs {
    pub plan_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIdArgs {
    pub run_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRunsArgs {
    /// Runs per page, newest first (default 20, at most 1000).
    pub limit: Option<i64>,
    /// The `next_cursor` of a previous answer, for the next (older) page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTemplatesArgs {
    /// The `next_cursor` of a previous answer, for the next page.
    pub cursor: Option<String>,
}

/// A template and its parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunTemplateArgs {
    /// The template's name (list_templates), e.g. `archive-stale-content`.
    pub name: String,
    /// Its parameters as JSON values, e.g. {"project": "Finance", "stale_days": 90}; a
    /// parameter left out takes its default.
    pub params: Option<BTreeMap<String, Value>>,
    /// A stored template's version (default: its newest).
    pub version: Option<i64>,
    /// Answers to the plan's questions known already (question id → choice).
    pub answers: Option<BTreeMap<String, String>>,
}

// ------------------------------------------------------------------ errors

/// A service error as a tool error: `{"error": {"code", "message", "hint"}}`, and the same in
/// words for the model.
fn tool_error(e: tabflow_app::Error) -> CallToolResult {
    let code = match &e.kind {
        Kind::Usage => "invalid",
        Kind::Failed => "failed",
        Kind::NeedsInput => "needs-input",
        Kind::NeedsApproval(_) => "needs-approval",
        Kind::Forbidden => "forbidden",
        Kind::NotFound => "not-found",
    };
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{} (what to do: {})", e.message, e.hint))]);
    r.structured_content = Some(json!({"error": {"code": code, "message": e.message, "hint": e.hint}}));
    r
}

fn usage(message: impl Into<String>, hint: impl Into<String>) -> CallToolResult {
    tool_error(tabflow_app::Error::usage(message, hint))
}

// ------------------------------------------------------------------ service calls

impl TabflowMcp {
    pub fn new(app: Arc<App>, settings: Settings) -> TabflowMcp {
        let mut tool_router = Self::tool_router();
        for (name, read_only) in TOOLS {
            let allowed = settings.limits.allowed.as_ref().is_none_or(|a| a.iter().any(|x| x == name));
            if !allowed || (settings.limits.read_only && !read_only) {
                tool_router.remove_route(name);
            }
        }
        TabflowMcp { app, settings: Arc::new(settings), tool_router, http: false, answers: Arc::default() }
    }

    /// This server answers HTTP callers only (see [`crate::http_service`]).
    pub fn over_http(mut self) -> TabflowMcp {
        self.http = true;
        self
    }

    /// This server acting for an authenticated HTTP caller.
    fn for_caller(&self, c: &HttpCaller) -> TabflowMcp {
        let mut settings = (*self.settings).clone();
        settings.actor = crate::mcp_actor(&c.name);
        TabflowMcp { settings: Arc::new(settings), ..self.clone() }
    }

    /// Runs a service call on a thread of its own driven by the current runtime: the
    /// service's futures are not all provably `Send`, which the SDK's tool futures must be.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, CallToolResult>
    where
        F: FnOnce(Arc<App>) -> Fut + Send + 'static,
        Fut: Future<Output = tabflow_app::Result<T>>,
        T: Send + 'static,
    {
        let app = self.app.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || handle.block_on(f(app)))
            .await
            .unwrap_or_else(|e| {
                Err(tabflow_app::Error::failed(format!("the tool's task stopped: {e}"), "see the server's log"))
            })
            .map_err(tool_error)
    }

    /// A stored plan of the site this server is connected to (a plan made for another site,
    /// e.g. a rehearsal copy, is refused naming both).
    pub(crate) async fn plan_here(&self, plan_id: String) -> Result<Plan, CallToolResult> {
        self.call(move |app| async move {
            let plan = app.get_plan(&plan_id).await?;
            let session = app.connect().await?;
            let site_id = session.client.session().await.site_id;
            plan.check_site(&session.server_label(), &site_id)
                .map_err(|e| tabflow_app::Error::failed(e.to_string(), format!("{}; nothing was changed", e.fix())))?;
            Ok(plan)
        })
        .await
    }

    /// Refuses a plan with more changed items than the admin allows through MCP.
    fn check_size(&self, plan: &Plan) -> Result<(), CallToolResult> {
        let n = plan.steps.iter().filter(|s| s.is_write()).map(|s| s.items.len()).sum::<usize>();
        match self.settings.limits.max_plan_items {
            Some(max) if n > max => Err(tool_error(tabflow_app::Error::new(
                Kind::Forbidden,
                format!(
                    "plan {} changes {n} items; this MCP server takes plans of at most {max} (TABFLOW_MCP_MAX_PLAN_ITEMS)",
                    plan.id
                ),
                "narrow the request (a project, a tag, fewer days) and plan again, or have a person run it through the console or `tabflow apply`; nothing was changed",
            ))),
            _ => Ok(()),
        }
    }

    fn plan_view(&self, plan: &Plan, cursor: Option<&str>) -> Result<Json<PlanView>, CallToolResult> {
        let from = views::offset(cursor).map_err(|m| usage(m, "leave cursor out for the first page"))?;
        Ok(Json(views::plan_view(plan, from, self.settings.limits.page_size)))
    }

    fn keep_answer(&self, answer: Arc<QueryAnswer>) -> String {
        let mut a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        a.next += 1;
        let key = format!("a{}", a.next);
        a.kept.push_back((key.clone(), answer));
        while a.kept.len() > KEPT_ANSWERS {
            a.kept.pop_front();
        }
        key
    }

    fn kept_answer(&self, key: &str, question: &str) -> Option<(String, Arc<QueryAnswer>)> {
        let a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        a.kept.iter().find(|(k, ans)| k == key && ans.question.trim() == question.trim()).cloned()
    }

    fn console(&self) -> &str {
        self.settings.console_url.trim_end_matches('/')
    }

    /// The absolute URL of a console path: under the console URL, or, over HTTP (where links
    /// are paths of the same server), under the scheme and host the client reached.
    fn absolute(&self, path: &str, ctx: &RequestContext<RoleServer>) -> Option<String> {
        let console = self.console();
        if !console.is_empty() {
            return Some(format!("{console}{path}"));
        }
        let parts = ctx.extensions.get::<http::request::Parts>()?;
        let host = parts.headers.get(http::header::HOST)?.to_str().ok()?;
        let authority: http::uri::Authority = host.parse().ok()?;
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|s| *s == "https")
            .unwrap_or("http");
        Some(format!("{scheme}://{authority}{path}"))
    }

    /// Puts the console's approval page before the person (URL-mode elicitation, id = the
    /// approval request's id) and answers what the client said. The answer approves nothing;
    /// while the page is open (and after an `accept`, up to [`ELICITATION_WAIT`]) a watcher
    /// tells the client `notifications/elicitation/complete` once the store records a person's
    /// decision.
    async fn elicit_approval(
        &self,
        peer: &Peer<RoleServer>,
        plan: &Plan,
        request_id: &str,
        url: String,
    ) -> Result<ElicitationView, CallToolResult> {
        let pid = plan.id.clone();
        let before = self.call(move |app| async move { app.approval_status(&pid).await }).await?;
        if decision(&before) != "pending" {
            // Decided already: nothing to put before the person.
            return Ok(ElicitationView {
                mode: "url".into(),
                url,
                elicitation_id: request_id.to_string(),
                action: format!("not-sent: already {}", decision(&before)),
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        self.watch_decision(peer.clone(), plan.id.clone(), request_id.to_string(), stop.clone());
        let message = format!(
            "tabflow asks a person with the approver role to review plan {} ({} destructive change(s): {}) and approve or reject it in the console at this page. Answering this dialog approves nothing.",
            plan.id,
            plan.destructive_items().len(),
            plan.request
        );
        let params = ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message,
            url: url.clone(),
            elicitation_id: request_id.to_string(),
        };
        let action = match peer.create_elicitation_with_timeout(params, Some(ELICITATION_WAIT)).await {
            Ok(r) => match r.action {
                ElicitationAction::Accept => "accept".to_string(),
                ElicitationAction::Decline => "decline".to_string(),
                ElicitationAction::Cancel => "cancel".to_string(),
                other => format!("{other:?}").to_lowercase(),
            },
            Err(rmcp::ServiceError::Timeout { .. }) => "timed-out".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        if action != "accept" {
            stop.store(true, Ordering::Relaxed);
        }
        self.audit(
            "approval.elicited",
            Some(plan.id.clone()),
            json!({"request": request_id, "url": url, "action": action, "channel": "mcp"}),
        )
        .await?;
        Ok(ElicitationView { mode: "url".into(), url, elicitation_id: request_id.to_string(), action })
    }

    /// Watches the store for a person's decision on `plan_id` and then sends
    /// `notifications/elicitation/complete` for `elicitation_id`; stops at `stop`, when the
    /// client goes away, or after [`ELICITATION_WAIT`].
    fn watch_decision(&self, peer: Peer<RoleServer>, plan_id: String, elicitation_id: String, stop: Arc<AtomicBool>) {
        let me = self.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + ELICITATION_WAIT;
            while tokio::time::Instant::now() < deadline && !stop.load(Ordering::Relaxed) && !peer.is_transport_closed()
            {
                let id = plan_id.clone();
                if let Ok(status) = me.call(move |app| async move { app.approval_status(&id).await }).await
                    && decision(&status) != "pending"
                {
                    let n = CustomNotification::new(
                        "notifications/elicitation/complete",
                        Some(json!({"elicitationId": elicitation_id})),
                    );
                    if let Err(e) = peer.send_notification(ServerNotification::CustomNotification(n)).await {
                        tracing::debug!("elicitation/complete for {elicitation_id} not sent: {e}");
                    }
                    return;
                }
                tokio::time::sleep(WATCH_EVERY).await;
            }
        });
    }

    async fn audit(&self, action: &'static str, plan_id: Option<String>, after: Value) -> Result<(), CallToolResult> {
        let actor = self.settings.actor.clone();
        self.call(move |app| async move {
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
}

/// How long `request_approval` keeps the approval page open in the client and then watches
/// for a person's decision.
const ELICITATION_WAIT: Duration = Duration::from_secs(15 * 60);
/// How often the watcher reads the store.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// A person's decision as the store records it: `approved`, `rejected` or `pending`.
fn decision(status: &Result<Grant, Missing>) -> &'static str {
    match status {
        Ok(_) => "approved",
        Err(Missing::Rejected(_)) => "rejected",
        Err(_) => "pending",
    }
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(param_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// "Step 2/3 · Archive 12 workbooks · 5/12" for a run's event, with the progress so far.
struct Progress {
    steps: usize,
    step: usize,
    title: String,
    done: f64,
}

impl Progress {
    fn on(&mut self, e: &Event) -> Option<(f64, Option<f64>, String)> {
        match e {
            Event::RunStarted { steps, .. } => {
                self.steps = *steps;
                Some((0.0, Some(*steps as f64), format!("Run started: {steps} step(s)")))
            }
            Event::StepStarted { index, total, title, items, .. } => {
                self.step = *index;
                self.steps = *total;
                self.title = title.clone();
                Some((self.done, Some(*total as f64), format!("Step {index}/{total} · {title} · 0/{items}")))
            }
            Event::ItemFinished { k, m, name, outcome, .. } => Some((
                self.done + *k as f64 / (*m).max(1) as f64,
                Some(self.steps as f64),
                format!("Step {}/{} · {} · {k}/{m} ({outcome}: {name})", self.step, self.steps, self.title),
            )),
            Event::StepFinished { done, skipped, failed, .. } => {
                self.done += 1.0;
                Some((
                    self.done,
                    Some(self.steps as f64),
                    format!(
                        "Step {}/{} finished: {done} done, {skipped} skipped, {failed} failed",
                        self.step, self.steps
                    ),
                ))
            }
            Event::RollbackStarted { reason, items, .. } => {
                Some((self.done, Some(self.steps as f64), format!("Rolling back {items} item(s): {reason}")))
            }
            Event::ItemRestored { k, m, name, .. } => {
                Some((self.done, Some(self.steps as f64), format!("Restored {k}/{m}: {name}")))
            }
            Event::RunFinished { status, .. } => {
                Some((self.steps as f64, Some(self.steps as f64), format!("Run finished: {status}")))
            }
        }
    }
}

// ------------------------------------------------------------------ tools

#[tool_router(router = tool_router)]
impl TabflowMcp {
    /// Plans Tableau admin work from a request in plain language (or an intent and its
    /// parameters): reads the site, builds the exact plan, runs the five safety checks and
    /// stores it. Nothing on the site changes. Answers the plan's id, a summary, its
    /// questions, the checks' findings, its impact and a page of the items it changes.
    #[tool(
        name = "plan_workflow",
        annotations(
            title = "Plan a workflow",
            read_only_hint = true,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn plan_workflow(&self, Parameters(a): Parameters<PlanArgs>) -> Result<Json<PlanView>, CallToolResult> {
        let actor = self.settings.actor.clone();
        let (request, source) = match (a.request, a.intent) {
            (Some(r), None) if !r.trim().is_empty() => (r, Source::Rules),
            (None, Some(name)) => {
                let params: Vec<(String, String)> =
                    a.params.unwrap_or_default().iter().map(|(k, v)| (k.clone(), param_text(v))).collect();
                let text =
                    format!("{name} {}", params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
                (text.trim().to_string(), Source::Intent { name, params })
            }
            (Some(_), Some(_)) => {
                return Err(usage(
                    "plan_workflow was given both request and intent",
                    "give either request (plain language) or intent with params",
                ));
            }
            _ => {
                return Err(usage(
                    "plan_workflow needs a request",
                    "give request, e.g. \"Clean up the Finance project - archive workbooks not accessed in 90 days\", or intent with params",
                ));
            }
        };
        let answers = a.answers.unwrap_or_default();
        let a2 = actor.clone();
        let planned = self
            .call(move |app| async move {
                app.plan(PlanRequest { request, source, answers, actor: a2, remember: true }).await
            })
            .await?;
        let plan = planned.plan().clone();
        self.audit(
            "plan.created",
            Some(plan.id.clone()),
            json!({"request": plan.request, "answers": plan.answers, "fingerprint": plan.fingerprint, "channel": "mcp"}),
        )
        .await?;
        self.plan_view(&plan, None)
    }

    /// Answers questions of a plan: plans its request again with every answer so far and
    /// stores the new plan (a new plan id). Nothing on the site changes.
    #[tool(
        name = "answer_questions",
        annotations(
            title = "Answer a plan's questions",
            read_only_hint = true,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn answer_questions(&self, Parameters(a): Parameters<AnswerArgs>) -> Result<Json<PlanView>, CallToolResult> {
        let old = self.plan_here(a.plan_id.clone()).await?;
        if a.answers.is_empty() {
            return Err(usage(
                "no answers given",
                format!(
                    "answer e.g. {{\"{}\": \"<choice>\"}} with a choice of the plan's questions",
                    old.questions.first().map(|q| q.id.as_str()).unwrap_or("q1")
                ),
            ));
        }
        for (id, choice) in &a.answers {
            let Some(q) = old.questions.iter().chain(old.answered.iter()).find(|q| &q.id == id) else {
                let ids: Vec<&str> = old.questions.iter().map(|q| q.id.as_str()).collect();
                return Err(usage(
                    format!("plan {} has no question '{id}'", old.id),
                    if ids.is_empty() {
                        "this plan asks nothing; use it as it is".to_string()
                    } else {
                        format!("answer {}", ids.join(", "))
                    },
                ));
            };
            if !q.choices.is_empty() && !q.choices.iter().any(|c| c == choice) {
                return Err(usage(
                    format!("'{choice}' is not a choice of question {id}"),
                    format!("answer one of: {}", q.choices.join(", ")),
                ));
            }
        }
        let actor = self.settings.actor.clone();
        let (id, answers) = (a.plan_id, a.answers);
        let planned = self.call(move |app| async move { app.answer(&id, answers, &actor).await }).await?;
        let plan = planned.plan().clone();
        self.audit(
            "plan.created",
            Some(plan.id.clone()),
            json!({"request": plan.request, "answers": plan.answers, "fingerprint": plan.fingerprint, "channel": "mcp"}),
        )
        .await?;
        self.plan_view(&plan, None)
    }

    /// A stored plan with a page of its items (`cursor` from the previous answer's
    /// `next_cursor` for the next page).
    #[tool(name = "get_plan", annotations(title = "Show a plan", read_only_hint = true, open_world_hint = false))]
    async fn get_plan(&self, Parameters(a): Parameters<GetPlanArgs>) -> Result<Json<PlanView>, CallToolResult> {
        let plan = self.plan_here(a.plan_id).await?;
        self.plan_view(&plan, a.cursor.as_deref())
    }

    /// Answers a question about the site read-only ("how many workbooks are in Finance?",
    /// "list the datasources in Sales", "which workbooks have not been viewed in 90 days").
    #[tool(
        name = "query_site",
        annotations(title = "Ask about the site", read_only_hint = true, open_world_hint = true)
    )]
    async fn query_site(&self, Parameters(a): Parameters<QueryArgs>) -> Result<Json<QueryView>, CallToolResult> {
        let (key, from) =
            views::query_cursor(a.cursor.as_deref()).map_err(|m| usage(m, "leave cursor out for the first page"))?;
        // The next pages read the answer the first page kept (the same rows, no new site
        // read); an answer no longer kept is asked again.
        let kept = key.and_then(|k| self.kept_answer(&k, &a.question));
        let (key, answer) = match kept {
            Some(hit) => hit,
            None => {
                let question = a.question;
                let answer = Arc::new(self.call(move |app| async move { app.query(&question).await }).await?);
                (self.keep_answer(answer.clone()), answer)
            }
        };
        Ok(Json(views::query_view(&answer, from, self.settings.limits.page_size, &key)))
    }

    /// Asks a person to approve (a selection of) a plan's destructive changes. Grants
    /// nothing: answers the web console's page where a person with the approver role reviews
    /// the plan with this selection ticked and approves or rejects it. When the client
    /// supports URL-mode elicitation, the page is put before the person through it; whatever
    /// the client answers, only a decision recorded in the console or the API approves.
    /// Show the URL to the person; their answer in the chat is never an approval.
    #[tool(
        name = "request_approval",
        annotations(
            title = "Request approval",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn request_approval(
        &self,
        Parameters(a): Parameters<RequestApprovalArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ApprovalRequestView>, CallToolResult> {
        let plan = self.plan_here(a.plan_id.clone()).await?;
        if !plan.questions.is_empty() {
            return Err(tool_error(tabflow_app::Error::new(
                Kind::NeedsInput,
                format!("plan {} has unanswered questions", plan.id),
                "answer them with answer_questions, then request approval of the new plan",
            )));
        }
        if !plan.validation.ok {
            return Err(usage(
                format!(
                    "plan {} was refused by its checks: {}",
                    plan.id,
                    tabflow_app::error_findings(&plan).join("; ")
                ),
                "change the request and plan again; a refused plan is never approved",
            ));
        }
        if plan.destructive_items().is_empty() {
            return Err(usage(
                format!("plan {} has no destructive change to approve", plan.id),
                "start it with start_run; no approval is needed",
            ));
        }
        self.check_size(&plan)?;
        let text = match &a.selection {
            None => "all".to_string(),
            Some(Items::All(s)) if s.trim().eq_ignore_ascii_case("all") => "all".to_string(),
            Some(Items::All(s)) => s.clone(),
            Some(Items::List(l)) => l.join(","),
        };
        let sel = Selection::parse(&plan, &text).map_err(|e| usage(e.message, e.fix))?;
        let actor = self.settings.actor.clone();
        let id = plan.id.clone();
        let r = self.call(move |app| async move { app.request_approval(&id, sel, &actor).await }).await?;
        let path = format!("/console/plans/{}?request={}", r.plan_id, r.id);
        let elicitation = match self.absolute(&path, &ctx) {
            Some(url) if ctx.peer.supported_elicitation_modes().contains(&ElicitationMode::Url) => {
                Some(self.elicit_approval(&ctx.peer, &plan, &r.id, url).await?)
            }
            _ => None,
        };
        let id = plan.id.clone();
        let status = self.call(move |app| async move { app.approval_status(&id).await }).await?;
        let decision = decision(&status);
        let console = self.console();
        let note = match (decision, &elicitation) {
            ("approved", _) => "A person with the approver role approved it (recorded in the store); call start_run.".to_string(),
            ("rejected", _) => "A person with the approver role rejected it; nothing will run. Change the request and plan again if needed.".to_string(),
            (_, Some(e)) => format!(
                "Nothing was approved or changed. The client was asked to open the approval page ({}); the answer '{}' is not an approval: someone with the approver role approves or rejects in the console (tabflow serve); then call start_run.",
                e.url, e.action
            ),
            (_, None) => "Nothing was approved or changed. Give the person the url: someone with the approver role signs in to the console (tabflow serve) and approves or rejects; then call start_run. An answer in this chat is not an approval.".to_string(),
        };
        Ok(Json(ApprovalRequestView {
            url: format!("{console}{path}"),
            api_url: format!("{console}/api/v1/plans/{}/approval-requests/{}", r.plan_id, r.id),
            id: r.id,
            plan_id: r.plan_id,
            items: r.items,
            requested_by: r.requested_by,
            created_at: views::ts(r.created_at),
            approved: status.is_ok(),
            decision: decision.to_string(),
            elicitation,
            note,
        }))
    }

    /// Runs a plan exactly as reviewed — only what a person approved. A plan with
    /// unanswered questions or destructive changes without a valid approval is refused,
    /// saying what is missing; nothing changes then. Sends progress notifications ("Step 2/3
    /// · … · 5/12") when the call carries a progress token, and answers when the run ends.
    #[tool(
        name = "start_run",
        annotations(
            title = "Run an approved plan",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn start_run(
        &self,
        Parameters(a): Parameters<PlanIdArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RunView>, CallToolResult> {
        let plan = self.plan_here(a.plan_id.clone()).await?;
        self.check_size(&plan)?;
        let actor = self.settings.actor.clone();
        let id = plan.id.clone();
        let start =
            self.call(move |app| async move { app.start_run(&id, &actor, StartOptions::default()).await }).await?;
        let handle = match start {
            Start::Running(h) => h,
            Start::NothingToDo(note) => {
                return Ok(Json(RunView {
                    run_id: None,
                    status: "nothing-to-do".into(),
                    plan_id: Some(plan.id),
                    request: Some(plan.request),
                    actor: None,
                    created_at: None,
                    finished_at: None,
                    detail: Value::Null,
                    note,
                    url: None,
                }));
            }
            Start::Scheduled(schedules) => {
                return Ok(Json(RunView {
                    run_id: None,
                    status: "scheduled".into(),
                    plan_id: Some(plan.id),
                    request: Some(plan.request),
                    actor: None,
                    created_at: None,
                    finished_at: None,
                    detail: json!({"schedules": schedules}),
                    note: Some("recurring reviews were stored; nothing on the site changed".into()),
                    url: None,
                }));
            }
        };
        let run_id = handle.run_id().to_string();
        if let Some(token) = ctx.meta.get_progress_token() {
            let mut events = handle.subscribe();
            let mut p = Progress { steps: 0, step: 0, title: String::new(), done: 0.0 };
            while let Some(e) = events.next().await {
                if let Some((progress, total, message)) = p.on(&e) {
                    let mut n = ProgressNotificationParam::new(token.clone(), progress).with_message(message);
                    if let Some(t) = total {
                        n = n.with_total(t);
                    }
                    // A client that went away does not stop the run.
                    let _ = ctx.peer.notify_progress(n).await;
                }
            }
        }
        let outcome = match handle.wait().await {
            Ok(o) => o,
            Err(e) => return Err(tool_error(e)),
        };
        let rid = run_id.clone();
        let row = self.call(move |app| async move { app.run(&rid).await }).await?;
        let mut view = views::run_view(&row.run, self.console());
        view.detail = serde_json::to_value(&outcome.report).unwrap_or(Value::Null);
        if !outcome.warnings.is_empty() {
            view.note = Some(outcome.warnings.join("; "));
        }
        Ok(Json(view))
    }

    /// The state of a run: status, steps with done/skipped/failed counts, when it started
    /// and ended.
    #[tool(name = "run_status", annotations(title = "Show a run", read_only_hint = true, open_world_hint = false))]
    async fn run_status(&self, Parameters(a): Parameters<RunIdArgs>) -> Result<Json<RunView>, CallToolResult> {
        let id = a.run_id;
        let d = self.call(move |app| async move { app.run(&id).await }).await?;
        let mut v = views::run_view(&d.run, self.console());
        v.note = Some(format!("{} journal entries", d.journal.len()));
        Ok(Json(v))
    }

    /// Asks a person to undo a run: makes the run's rollback plan (the compensations of what
    /// it changed, checked like any plan; nothing changes now) and requests its approval.
    /// Never undoes it itself: a person with the approver role approves the rollback plan in
    /// the console (the answer's url), all of it or some of its items; then start_run with the
    /// rollback plan's id undoes exactly what was approved.
    #[tool(
        name = "rollback_run",
        annotations(
            title = "Request a rollback",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn rollback_run(&self, Parameters(a): Parameters<RunIdArgs>) -> Result<Json<RollbackView>, CallToolResult> {
        let id = a.run_id;
        let rid = id.clone();
        let d = self.call(move |app| async move { app.run(&rid).await }).await?;
        if let Some(plan) = &d.plan {
            self.plan_here(plan.id.clone()).await?;
        }
        let actor = self.settings.actor.clone();
        let rid = id.clone();
        let (plan, r) = self
            .call(move |app| async move {
                let plan = app.plan_rollback(&rid, &actor, "mcp").await?.into_plan();
                let r = app.request_approval(&plan.id, Selection::All, &actor).await?;
                Ok((plan, r))
            })
            .await?;
        let console = self.console();
        Ok(Json(RollbackView {
            run_id: id,
            plan_id: plan.id.clone(),
            request_id: r.id.clone(),
            url: format!("{console}/console/plans/{}?request={}", r.plan_id, r.id),
            api_url: format!("{console}/api/v1/plans/{}/approval-requests/{}", r.plan_id, r.id),
            steps: plan
                .steps
                .iter()
                .map(|s| views::StepView {
                    id: s.id.clone(),
                    kind: s.kind.as_str().into(),
                    title: s.title.clone(),
                    effect: s.effect.as_str().into(),
                    rollback: s.rollback.as_str().into(),
                    items: s.items.len(),
                })
                .collect(),
            items_total: plan.destructive_items().len(),
            fingerprint: plan.fingerprint.clone(),
            note: format!(
                "Nothing was undone yet. Give the person the url: someone with the approver role reviews the rollback plan in the console and approves it (all or some items); then call start_run {{\"plan_id\": \"{}\"}}. An answer in this chat is not an approval.",
                plan.id
            ),
        }))
    }

    /// Runs, newest first, a page at a time (`cursor` from the previous answer's
    /// `next_cursor` for older ones).
    #[tool(name = "list_runs", annotations(title = "List runs", read_only_hint = true, open_world_hint = false))]
    async fn list_runs(&self, Parameters(a): Parameters<ListRunsArgs>) -> Result<Json<RunList>, CallToolResult> {
        let limit = a.limit.unwrap_or(20);
        if !(1..=1000).contains(&limit) {
            return Err(usage(format!("limit {limit} is out of range"), "give a limit from 1 to 1000"));
        }
        let after = a.cursor.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        let (rows, next) = self.call(move |app| async move { runs_page(&app, limit, after).await }).await?;
        let console = self.console().to_string();
        Ok(Json(RunList { runs: rows.iter().map(|r| views::run_view(r, &console)).collect(), next_cursor: next }))
    }

    /// The templates (built-in and stored) with their parameters: type, default, allowed
    /// values, range, whether required — what `run_template` takes.
    #[tool(
        name = "list_templates",
        annotations(title = "List templates", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_templates(
        &self,
        Parameters(a): Parameters<ListTemplatesArgs>,
    ) -> Result<Json<TemplateList>, CallToolResult> {
        let from = views::offset(a.cursor.as_deref()).map_err(|m| usage(m, "leave cursor out for the first page"))?;
        let all = self.call(|app| async move { app.templates().await }).await?;
        let total = all.len();
        let views: Vec<TemplateView> = all.iter().map(views::template_view).collect();
        let (templates, next_cursor) = views::page(views, from, self.settings.limits.page_size);
        Ok(Json(TemplateList { templates, total, next_cursor }))
    }

    /// Plans a template with parameters, like plan_workflow: its parameters are checked
    /// (unknown, missing, wrong type, not allowed, out of range — each named with the fix),
    /// the plan is built, checked and stored. Nothing on the site changes and nothing runs:
    /// request_approval and start_run follow as for any plan.
    #[tool(
        name = "run_template",
        annotations(
            title = "Plan a template",
            read_only_hint = true,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn run_template(&self, Parameters(a): Parameters<RunTemplateArgs>) -> Result<Json<PlanView>, CallToolResult> {
        let name = a.name.trim().to_string();
        if name.is_empty() {
            return Err(usage("run_template needs a template name", "give name, one of list_templates' names"));
        }
        let (n, version) = (name.clone(), a.version);
        let template = self
            .call(move |app| async move { app.template(&n, version).await })
            .await
            .map_err(|e| rehint(e, "list_templates names them"))?;
        let given = a.params.unwrap_or_default();
        let instance = template.instantiate_values(&given).map_err(|e| {
            tool_error(tabflow_app::Error::new(
                e.kind,
                e.message,
                format!("give params as JSON, e.g. {{\"name\": value}}, for: {}", template.param_summary()),
            ))
        })?;
        // The service reads text as each parameter's type says: the checked values, as text.
        let params: BTreeMap<String, String> =
            given.keys().filter_map(|k| instance.values.get(k).map(|v| (k.clone(), param_text(v)))).collect();
        let answers = a.answers.unwrap_or_default();
        let actor = self.settings.actor.clone();
        let (n, v) = (template.name.clone(), template.version);
        let planned =
            self.call(move |app| async move { app.plan_template(&n, Some(v), &params, answers, &actor).await }).await?;
        let plan = planned.plan().clone();
        self.audit(
            "plan.created",
            Some(plan.id.clone()),
            json!({
                "request": plan.request,
                "answers": plan.answers,
                "fingerprint": plan.fingerprint,
                "template": tabflow_app::templates::label(&template.name, template.version),
                "channel": "mcp"
            }),
        )
        .await?;
        self.plan_view(&plan, None)
    }
}

/// A service error with an MCP hint in place of one naming CLI commands.
fn rehint(r: CallToolResult, hint: &str) -> CallToolResult {
    let Some(mut v) = r.structured_content.clone() else { return r };
    let old = v["error"]["hint"].as_str().unwrap_or("").to_string();
    let new = old.replace("see tabflow templates list", hint);
    if new == old {
        return r;
    }
    v["error"]["hint"] = Value::from(new.clone());
    let message = v["error"]["message"].as_str().unwrap_or("").to_string();
    let mut out = CallToolResult::error(vec![ContentBlock::text(format!("{message} (what to do: {new})"))]);
    out.structured_content = Some(v);
    out
}

/// A page of runs, newest first: `limit` runs after the run `after` (the previous page's
/// last), and the cursor of the next page. The cursor is a run id, so runs started between
/// pages neither repeat nor hide older ones.
async fn runs_page(
    app: &App,
    limit: i64,
    after: Option<String>,
) -> tabflow_app::Result<(Vec<tabflow_app::RunRow>, Option<String>)> {
    let mut want = limit + 1;
    loop {
        let rows = app.runs(want).await?;
        let all_read = (rows.len() as i64) < want;
        let start = match &after {
            None => 0,
            Some(c) => match rows.iter().position(|r| &r.id == c) {
                Some(p) => p + 1,
                None if all_read => {
                    return Err(tabflow_app::Error::usage(
                        format!("cursor '{c}' is not a run of this store"),
                        "pass the next_cursor of the previous list_runs answer, or leave cursor out for the newest runs",
                    ));
                }
                None => {
                    want = want.saturating_mul(4);
                    continue;
                }
            },
        };
        let end = start + limit as usize;
        if rows.len() > end || all_read {
            let more = rows.len() > end;
            let page: Vec<_> = rows.into_iter().skip(start).take(limit as usize).collect();
            let next = if more { page.last().map(|r| r.id.clone()) } else { None };
            return Ok((page, next));
        }
        want = end as i64 + 1;
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TabflowMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build())
            .with_server_info(Implementation::new("tabflow", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "tabflow plans Tableau admin work safely. plan_workflow (or list_templates → run_template) → answer_questions → show the plan to the person → request_approval (a person approves in the console; no tool approves) → start_run → run_status. query_site answers questions read-only. Long answers are paged: pass next_cursor back as cursor."
                    .to_string(),
            )
    }

    /// The runs' reports, newest first, 20 a page (`nextCursor` for older ones).
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let after = request.and_then(|r| r.cursor).filter(|c| !c.trim().is_empty());
        let (runs, next) =
            self.call(move |app| async move { runs_page(&app, 20, after).await }).await.map_err(|r| {
                let e = r.structured_content.unwrap_or(Value::Null);
                ErrorData::invalid_params(
                    format!(
                        "{} ({})",
                        e["error"]["message"].as_str().unwrap_or("the runs could not be read from the store"),
                        e["error"]["hint"].as_str().unwrap_or("")
                    ),
                    None,
                )
            })?;
        let mut out = ListResourcesResult::with_all_items(crate::extras::run_resources(&runs));
        out.next_cursor = next;
        Ok(out)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(crate::extras::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(self.read(&request.uri).await?.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(crate::extras::prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Ok(crate::extras::prompt(&request.name, request.arguments.as_ref())?.into())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let Some(tool) = self.tool_router.get(&name) else {
            let known = TOOLS.iter().any(|(n, _)| *n == name);
            let listed: Vec<String> = self.tool_router.list_all().iter().map(|t| t.name.to_string()).collect();
            let why = if known && self.settings.limits.read_only {
                format!("tool '{name}' is switched off: this server is read-only (TABFLOW_MCP_READ_ONLY=1)")
            } else if known {
                format!("tool '{name}' is not allowed on this server (TABFLOW_MCP_TOOLS)")
            } else {
                format!("there is no tool '{name}'")
            };
            return Err(ErrorData::invalid_params(format!("{why}; the tools are: {}", listed.join(", ")), None));
        };
        args::check(tool, request.arguments.as_ref())?;
        let caller =
            context.extensions.get::<http::request::Parts>().and_then(|p| p.extensions.get::<HttpCaller>()).cloned();
        let me = match (&caller, self.http) {
            (Some(c), _) => {
                if !c.role.may(permission(&name)) {
                    return Err(ErrorData::invalid_params(
                        format!(
                            "token '{}' has the {} role, which may not call {name}; use a token with the requester role (an admin makes one with `tabflow tokens create NAME --role requester`)",
                            c.name,
                            c.role.as_str()
                        ),
                        None,
                    ));
                }
                self.for_caller(c)
            }
            (None, true) => {
                return Err(ErrorData::invalid_params("this call carries no authenticated caller", None));
            }
            (None, false) => self.clone(),
        };
        let tcc = ToolCallContext::new(&me, request, context);
        me.tool_router.call(tcc).await
    }
}
