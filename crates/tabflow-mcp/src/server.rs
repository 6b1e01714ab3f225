//! The tools, over the application service.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Json, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tabflow_app::{App, Event, Kind, NewRecord, Permission, Plan, PlanRequest, Selection, Source, Start, StartOptions};

use crate::views::{self, ApprovalRequestView, PlanView, QueryView, RollbackView, RunList, RunView};
use crate::{HttpCaller, Settings, args};

/// Every tool, and whether it changes nothing (listed and allowed in read-only mode).
pub const TOOLS: [(&str, bool); 9] = [
    ("plan_workflow", true),
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
}

/// What a tool needs of an HTTP caller's role (as the HTTP API's routes do).
fn permission(tool: &str) -> Permission {
    match tool {
        "plan_workflow" | "answer_questions" | "request_approval" => Permission::Request,
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
    /// At most this many runs, newest first (default 20, at most 1000).
    pub limit: Option<i64>,
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
        TabflowMcp { app, settings: Arc::new(settings), tool_router, http: false }
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

    fn console(&self) -> &str {
        self.settings.console_url.trim_end_matches('/')
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
        let from = views::offset(a.cursor.as_deref()).map_err(|m| usage(m, "leave cursor out for the first page"))?;
        let question = a.question;
        let answer = self.call(move |app| async move { app.query(&question).await }).await?;
        Ok(Json(views::query_view(answer, from, self.settings.limits.page_size)))
    }

    /// Asks a person to approve (a selection of) a plan's destructive changes. Grants
    /// nothing: answers the web console's page where a person with the approver role reviews
    /// the plan with this selection ticked and approves or rejects it. Show that URL to the
    /// person; their answer in the chat is never an approval.
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
        let (r, status) = self
            .call(move |app| async move {
                let r = app.request_approval(&id, sel, &actor).await?;
                let status = app.approval_status(&id).await?;
                Ok((r, status))
            })
            .await?;
        let console = self.console();
        Ok(Json(ApprovalRequestView {
            url: format!("{console}/console/plans/{}?request={}", r.plan_id, r.id),
            api_url: format!("{console}/api/v1/plans/{}/approval-requests/{}", r.plan_id, r.id),
            id: r.id,
            plan_id: r.plan_id,
            items: r.items,
            requested_by: r.requested_by,
            created_at: views::ts(r.created_at),
            approved: status.is_ok(),
            note: "Nothing was approved or changed. Give the person the url: someone with the approver role signs in to the console (tabflow serve) and approves or rejects; then call start_run. An answer in this chat is not an approval.".into(),
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

    /// Runs, newest first.
    #[tool(name = "list_runs", annotations(title = "List runs", read_only_hint = true, open_world_hint = false))]
    async fn list_runs(&self, Parameters(a): Parameters<ListRunsArgs>) -> Result<Json<RunList>, CallToolResult> {
        let limit = a.limit.unwrap_or(20);
        if !(1..=1000).contains(&limit) {
            return Err(usage(format!("limit {limit} is out of range"), "give a limit from 1 to 1000"));
        }
        let rows = self.call(move |app| async move { app.runs(limit).await }).await?;
        let console = self.console().to_string();
        Ok(Json(RunList { runs: rows.iter().map(|r| views::run_view(r, &console)).collect() }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TabflowMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build())
            .with_server_info(Implementation::new("tabflow", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "tabflow plans Tableau admin work safely. plan_workflow → answer_questions → show the plan to the person → request_approval (a person approves in the console; no tool approves) → start_run → run_status. query_site answers questions read-only."
                    .to_string(),
            )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let runs = self
            .call(|app| async move { app.runs(20).await })
            .await
            .map_err(|_| ErrorData::internal_error("the runs could not be read from the store", None))?;
        Ok(ListResourcesResult::with_all_items(crate::extras::run_resources(&runs)))
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
