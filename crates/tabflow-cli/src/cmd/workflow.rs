//! `tabflow plan`, `tabflow apply`, `tabflow ask`: the terminal's front end over the
//! application service (`tabflow_app::App`): flags, prompts, rendering and exit codes here;
//! planning, approvals, the run and its reports in the service.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::{Value, json};
use tabflow_app::{
    App, Approver, Connection, Decision, Plan, PlanRequest, Policy, RunReport, RunStatus, Selection, Source, Start,
    StartOptions, ValidatedPlan,
};
use tabflow_engine::plan::{Effect, Level, StepKind};

use super::connect::{Connect, data_dir};
use crate::exit::{self, Code, fail, usage};
use crate::ui;

/// Where the state store and the policy live.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The state store: a SQLite file (default <data dir>/tabflow.db), or a PostgreSQL URL
    /// (postgres://USER:PASSWORD@HOST:PORT/DB) for several tabflow processes sharing one store.
    #[arg(long, global = true, env = "TABFLOW_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// The policy file (default <data dir>/policy.toml when it exists).
    #[arg(long, global = true, env = "TABFLOW_POLICY")]
    pub policy: Option<PathBuf>,
    /// The file the audit log's head is anchored in, outside the store (default
    /// <data dir>/audit.anchor); `tabflow audit verify` checks the store against it.
    #[arg(long, global = true, env = "TABFLOW_AUDIT_ANCHOR")]
    pub audit_anchor: Option<PathBuf>,
}

impl StoreArgs {
    /// `--store`, else the profile's `store`, else the SQLite file in the data directory.
    pub fn location(&self) -> String {
        self.store
            .clone()
            .or_else(|| crate::globals::profile_store().0)
            .unwrap_or_else(|| data_dir().join("tabflow.db").display().to_string())
    }

    /// `--policy`, else the profile's `policy`, else `<data dir>/policy.toml`.
    pub fn policy_path(&self) -> PathBuf {
        self.policy
            .clone()
            .or_else(|| crate::globals::profile_store().1)
            .unwrap_or_else(|| data_dir().join("policy.toml"))
    }

    pub fn policy(&self) -> anyhow::Result<Policy> {
        let given = self.policy.is_some() || crate::globals::profile_store().1.is_some();
        let path = self.policy_path();
        if given && !path.exists() {
            return Err(usage(format!("the policy file {} does not exist", path.display()), "check --policy"));
        }
        Policy::load(&path).map_err(|e| fail(e.to_string(), "fix the policy file (see ARCHITECTURE.md, Policy)"))
    }
}

/// The application service for a command: the store and policy of `store`, the site of
/// `connect` (none: the demo site, never connected by commands that only read the store),
/// notifications to `delivery`, the system clock, and the credentials this process holds.
pub async fn open_app(
    connect: Option<&Connect>,
    store: &StoreArgs,
    policy: Policy,
    delivery: tabflow_app::Delivery,
) -> anyhow::Result<App> {
    open_app_at(connect, store, policy, delivery, Arc::new(tabflow_app::SystemClock)).await
}

/// [`open_app`] for a command that uses the site right away (`plan`, `apply`, `ask`): the
/// sign-in starts while the store opens ([`tabflow_app::App::open_connecting`]).
pub async fn open_app_connecting(
    connect: &Connect,
    store: &StoreArgs,
    policy: Policy,
    delivery: tabflow_app::Delivery,
) -> anyhow::Result<App> {
    let options = app_options(Some(connect), store, policy, delivery, Arc::new(tabflow_app::SystemClock), None)?;
    App::open_connecting(options).await.map_err(exit::app)
}

/// [`open_app`] on another clock (`tabflow worker --now`, for tests and catching up).
pub async fn open_app_at(
    connect: Option<&Connect>,
    store: &StoreArgs,
    policy: Policy,
    delivery: tabflow_app::Delivery,
    clock: Arc<dyn tabflow_app::Clock>,
) -> anyhow::Result<App> {
    App::open(app_options(connect, store, policy, delivery, clock, None)?).await.map_err(exit::app)
}

/// The service's options from the flags and the environment (see [`open_app`]);
/// `tableau_hooks` maps Tableau's webhook events to templates (`tabflow serve`).
pub fn app_options(
    connect: Option<&Connect>,
    store: &StoreArgs,
    policy: Policy,
    delivery: tabflow_app::Delivery,
    clock: Arc<dyn tabflow_app::Clock>,
    tableau_hooks: Option<tabflow_app::TableauHooks>,
) -> anyhow::Result<tabflow_app::Options> {
    let connection = match connect {
        Some(c) => c.connection()?,
        None => Connection::Demo(Default::default()),
    };
    let env = |k: &str| std::env::var(k).ok();
    // The credentials tabflow holds (LLM key, Tableau secrets from the environment), kept out
    // of plans and prompts. The built-in demo site's sign-in is public (DESIGN.md §4).
    let mut secrets: Vec<String> = env("TABFLOW_LLM_API_KEY").into_iter().collect();
    if matches!(connection, Connection::Server(_)) {
        secrets.extend(["TABLEAU_PAT_SECRET", "TABLEAU_PASSWORD", "TABLEAU_JWT"].iter().filter_map(|k| env(k)));
    }
    // Every other configured secret (SMTP, webhook, store and LLM URLs, a profile's
    // credentials): one list, also applied to everything this process prints.
    secrets.extend(crate::term::secrets());
    let options = tabflow_app::Options {
        store: Some(store.location()),
        data_dir: data_dir(),
        connection,
        policy,
        delivery,
        clock,
        secrets,
        notice: Some(Arc::new(|n: &str| errln!("note: {n}"))),
        crash_after_intents: env("TABFLOW_CRASH_AFTER").and_then(|v| v.parse().ok()),
        // The way back to whole-site reads (issue #15), e.g. to compare plans and call counts.
        full_site_reads: env("TABFLOW_FULL_SITE_READS").is_some_and(|v| v == "1"),
        site_cache: match connect {
            Some(c) if c.site_cache && c.fresh => tabflow_app::SiteCache::Refresh,
            Some(c) if c.site_cache => tabflow_app::SiteCache::Use,
            _ => tabflow_app::SiteCache::Off,
        },
        audit_anchor: store.audit_anchor.clone(),
        host_demo: false,
        tableau_hooks,
    };
    Ok(options)
}

/// Ends the service (saving the demo site) after a command, keeping the command's error first.
async fn close<T>(app: App, result: anyhow::Result<T>) -> anyhow::Result<T> {
    let closed = app.close().await.map_err(exit::app);
    let r = result?;
    closed?;
    Ok(r)
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// What to do, in plain language.
    request: Option<String>,
    /// Print the plan as tabflow-plan/2 JSON.
    #[arg(long)]
    json: bool,
    /// Also write the plan to this file.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Also write the plan's report to this file; the format follows the extension
    /// (.md, .html, .csv, .json). Nothing is changed on the site.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Answer a question of the plan: q1=archive-all.
    #[arg(long = "answer", value_name = "ID=CHOICE")]
    answers: Vec<String>,
    /// Give the intent directly instead of a sentence (e.g. archive-stale-content).
    #[arg(long)]
    intent: Option<String>,
    /// A parameter of --intent: project=Finance.
    #[arg(long = "param", value_name = "K=V")]
    params: Vec<String>,
    /// Read the request with the configured LLM (TABFLOW_LLM_URL, ...; see README) instead of
    /// the rule-based parser; falls back to the parser when the model fails.
    #[arg(long, conflicts_with = "intent")]
    llm: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file written by `tabflow plan -o` (or a plan id from the store).
    plan: String,
    /// Approve destructive changes: `all`, or steps and step/item pairs (s2,s4,s2/ITEM); a
    /// bare item id only when one destructive step changes it.
    #[arg(long)]
    approve: Option<String>,
    /// Do not ask: approves the steps that read or write. Never destructive steps: those
    /// need --approve (all, or a subset); without it the command exits 3.
    #[arg(long)]
    yes: bool,
    /// Reject the plan (recorded in the audit log).
    #[arg(long)]
    reject: bool,
    /// Run steps that cannot be undone.
    #[arg(long)]
    acknowledge_irreversible: bool,
    /// Print the run result as JSON.
    #[arg(long)]
    json: bool,
    /// Queue the run's items for `tabflow worker`s sharing this (PostgreSQL) store instead of
    /// running them here; answers the run id at once (see `tabflow worker status`).
    #[arg(long)]
    shared: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// What to do, in plain language.
    request: String,
    /// Answer a question of the plan: q1=archive-all (a question about meaning needs this
    /// without a terminal).
    #[arg(long = "answer", value_name = "ID=CHOICE")]
    answers: Vec<String>,
    /// Approve destructive changes without asking: `all` (which also answers "archive all, or
    /// review the list first?" with its all choice), or s2,s2/ITEM,… for a subset.
    #[arg(long)]
    approve: Option<String>,
    /// Do not ask: approves the steps that read or write and answers confirmation questions
    /// ("archive all, or review the list first?") with their proceed choice. Never destructive
    /// steps (they need --approve all or a subset) nor questions about meaning (--answer).
    #[arg(long)]
    yes: bool,
    /// Run steps that cannot be undone.
    #[arg(long)]
    acknowledge_irreversible: bool,
    /// Print the result as JSON (no prompts, no progress).
    #[arg(long)]
    json: bool,
    /// Read the request with the configured LLM instead of the rule-based parser.
    #[arg(long)]
    llm: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

/// Where notifications go (`TABFLOW_SMTP_URL`, `TABFLOW_NOTIFY_WEBHOOK`, …), read before a
/// run starts so that a mistake in it stops the command before anything changes.
/// A webhook on another machine over plain `http://` is warned about on stderr (once).
pub fn notify_delivery() -> anyhow::Result<tabflow_engine::notify::Delivery> {
    let d = tabflow_engine::notify::Delivery::from_settings(|k| std::env::var(k).ok())
        .map_err(|e| usage(e.to_string(), e.fix))?;
    if let Some(url) = &d.webhook_url {
        super::connect::warn_once(tabflow_client::plain_http_warning_for(
            url,
            "the webhook (TABFLOW_NOTIFY_WEBHOOK)",
            "each notification, its signature and the names of the site's content",
        ));
    }
    Ok(d)
}

/// Who runs this command, as recorded in plans, approvals and the audit log:
/// `TABFLOW_ACTOR`, else the OS user (`USER`, `USERNAME`), else "unknown".
pub fn whoami() -> String {
    std::env::var("TABFLOW_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

pub fn parse_answers(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    list.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| usage(format!("--answer '{a}' is not ID=CHOICE"), "e.g. --answer q1=archive-all"))
        })
        .collect()
}

/// `--param K=V` pairs.
pub fn parse_params(list: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    list.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| usage(format!("--param '{p}' is not K=V"), "e.g. --param project=Finance"))
        })
        .collect()
}

/// The configured LLM (TABFLOW_LLM_URL, …, or the `[llm]` table of the config file).
fn llm(connect: &Connect) -> anyhow::Result<tabflow_llm::Llm> {
    let path = connect.config.clone().unwrap_or_else(|| data_dir().join("config.toml"));
    let file = std::fs::read_to_string(&path).ok();
    let config = tabflow_llm::Config::resolve(|k| std::env::var(k).ok(), file.as_deref())
        .map_err(|e| usage(e.to_string(), "configure a model (README: \"Optional LLM backend\") or leave out --llm"))?;
    super::connect::warn_once(tabflow_client::plain_http_warning_for(
        &config.url,
        "the model URL (TABFLOW_LLM_URL)",
        "the request, the site's names in the prompt and the API key",
    ));
    tabflow_llm::Llm::new(config).map_err(|e| fail(e.to_string(), "check the [llm] settings"))
}

/// Prints the warnings of the service (things that did not fail the command).
fn warn(warnings: &[String]) {
    for w in warnings {
        errln!("warning: {w}");
    }
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1_048_576.0)
}

/// The plan for a person.
/// The last line of `tabflow ask` for a plan with nothing to write: none when every step
/// answered a question (the answers are the output), else "Nothing to change.".
fn closing_line(plan: &Plan) -> Option<&'static str> {
    let only_answers = !plan.steps.is_empty() && plan.steps.iter().all(|s| s.kind == StepKind::AnswerQuery);
    (!only_answers).then_some("Nothing to change.")
}

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let first_line = plan.request.lines().next().unwrap_or("");
    out.push_str(&format!("Plan {} · {}\n", plan.id, first_line));
    for n in &plan.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let effect = match s.effect {
            Effect::Read => "read".to_string(),
            e => format!("{} · {} undo", e.as_str(), s.rollback.as_str()),
        };
        out.push_str(&format!("  {:<3} {:<80} {effect}\n", i + 1, s.title));
        if s.kind == StepKind::AnswerQuery
            && let Ok(a) = serde_json::from_value::<tabflow_workflows::query::Answer>(s.details.clone())
        {
            // The answer's table (its summary is the title, its notes are the plan's).
            for line in tabflow_workflows::query::render(&a, 20).lines().skip(1 + a.notes.len()) {
                out.push_str(&format!("      {line}\n"));
            }
        }
        if s.effect != Effect::Read {
            for it in s.items.iter().take(8) {
                let why = it.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
                let proj = it.project.as_deref().map(|p| format!(" [{p}]")).unwrap_or_default();
                out.push_str(&format!("        {} {}{proj}{why}  ({})\n", it.kind, it.name, it.id));
            }
            if s.items.len() > 8 {
                out.push_str(&format!("        … and {} more (tabflow plan --json shows all)\n", s.items.len() - 8));
            }
        }
    }
    out.push_str("Checks\n");
    for f in &plan.validation.findings {
        let mark = match f.level {
            Level::Info => "✓",
            Level::Warning => "!",
            Level::Error => "✗",
        };
        out.push_str(&format!("  {mark} {}: {}\n", f.check.as_str(), f.message));
    }
    let i = &plan.impact;
    out.push_str(&format!(
        "Impact   {} items · {} owners · {} users can see them · {} projects · {}\n",
        i.items,
        i.owners,
        i.users_affected,
        i.projects,
        mb(i.bytes)
    ));
    for q in &plan.questions {
        out.push_str(&format!("? [{}] {}\n", q.id, q.text));
        if !q.choices.is_empty() {
            out.push_str(&format!(
                "    choices: {}{}\n",
                q.choices.join(" | "),
                q.default.as_deref().map(|d| format!("  (default: {d})")).unwrap_or_default()
            ));
        }
    }
    out
}

/// A request with nothing to read (empty, spaces, control characters only) is a usage error,
/// not an empty plan.
fn check_not_blank(request: &str) -> anyhow::Result<()> {
    if request.chars().all(|c| c.is_whitespace() || c.is_control() || tabflow_site::text::is_unsafe_for_terminal(c)) {
        return Err(usage(
            "the request is empty",
            "say what to do, e.g. tabflow plan \"archive workbooks in Finance not viewed in 90 days\"",
        ));
    }
    Ok(())
}

pub async fn plan_cmd(a: PlanArgs) -> anyhow::Result<Code> {
    let request = match (&a.request, &a.intent) {
        (Some(r), _) => {
            check_not_blank(r)?;
            r.clone()
        }
        (None, Some(i)) => format!("{i} {}", a.params.join(" ")),
        (None, None) => {
            return Err(usage(
                "no request given",
                "tabflow plan \"archive workbooks in Finance not viewed in 90 days\"",
            ));
        }
    };
    let answers = parse_answers(&a.answers)?;
    let report_format = a.report.as_deref().map(super::report::format_of).transpose()?;
    let policy = a.store.policy()?;
    let app = open_app_connecting(&a.connect, &a.store, policy, Default::default()).await?;
    let result = async {
        let source = if a.llm {
            app.connect().await.map_err(exit::app)?;
            Source::Llm(Box::new(llm(&a.connect)?))
        } else if let Some(name) = &a.intent {
            Source::Intent { name: name.clone(), params: parse_params(&a.params)? }
        } else {
            Source::Rules
        };
        let req = PlanRequest { request, source, answers, actor: whoami(), remember: true };
        app.plan(req).await.map_err(exit::app)
    }
    .await;
    let planned = close(app, result).await?;
    print_planned(planned, a.json, a.output.as_deref(), a.report.as_deref(), report_format)
}

/// Prints a plan made by the service (text or `--json`), writes it (`-o`) and its report
/// (`--report`); exit 0 for a valid plan, 1 for one the checks refused. Shared by `plan` and
/// `templates run`.
pub fn print_planned(
    planned: tabflow_app::Planned,
    json: bool,
    output: Option<&std::path::Path>,
    report: Option<&std::path::Path>,
    report_format: Option<tabflow_workflows::report::Format>,
) -> anyhow::Result<Code> {
    warn(&planned.warnings);
    let (plan, ok) = match planned.plan {
        Ok(v) => (v.into_plan(), true),
        Err(p) => (*p, false),
    };
    if let Some(path) = output {
        tabflow_engine::private::write(path, plan.to_json())
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the output path"))?;
    }
    if let (Some(path), Some(format)) = (report, report_format) {
        super::report::write(path, &tabflow_workflows::report::build(&plan, None).render(format))?;
        errln!("Report   {} (plan only: nothing was changed)", path.display());
    }
    let mut out = crate::term::stdout();
    if json {
        writeln!(out, "{}", plan.to_json())?;
    } else {
        write!(out, "{}", render(&plan))?;
        if ok && plan.questions.is_empty() && plan.steps.iter().any(|s| s.is_write()) {
            writeln!(
                out,
                "Next     tabflow apply {} --approve all   (or --approve s2,ITEM,… for a subset)",
                output.map(|p| p.display().to_string()).unwrap_or_else(|| plan.id.clone())
            )?;
        }
    }
    Ok(if ok { Code::Ok } else { Code::Error })
}

/// Prints the recurring reviews a plan stored (none with --json: they are in its output).
fn say_schedules(stored: &[Value], json: bool) {
    if json {
        return;
    }
    for s in stored {
        outln!(
            "Scheduled a {} review ({}): `tabflow schedule list` shows it; `tabflow worker` runs it on time.",
            s["cadence"].as_str().unwrap_or_default(),
            s["id"].as_str().unwrap_or_default()
        );
    }
}

/// Approval + run of a validated plan; shared by `apply` and `ask`.
async fn approve_and_run(
    app: &App,
    vp: &ValidatedPlan,
    approve: &Option<String>,
    yes: bool,
    reject: bool,
    ack: bool,
    json: bool,
    ui_state: Ui,
) -> anyhow::Result<Code> {
    let plan = vp.plan();
    let mut confirmations: Vec<(String, String)> = vec![];
    if !plan.questions.is_empty() {
        let q = &plan.questions[0];
        let msg = format!("plan {} has unanswered questions: [{}] {}", plan.id, q.id, q.text);
        if json {
            outln!(
                "{}",
                json!({"run_id": null, "status": "awaiting-input", "plan_id": plan.id, "questions": plan.questions, "steps": [], "reports": []})
            );
        }
        return Err(anyhow::Error::new(crate::exit::Failure {
            message: msg,
            hint: Some(format!("answer with: tabflow plan \"{}\" --answer {}=CHOICE -o plan.json", plan.request, q.id)),
            code: Code::NeedsInput,
        }));
    }
    let actor = whoami();
    if !plan.steps.iter().any(|s| s.is_write()) {
        // Nothing would change on the site: no run is started (a recurring review the plan
        // asks for is stored), unless the plan asks for a report (`tabflow_app::wants_report`).
        match app.start_run(&plan.id, &actor, StartOptions::default()).await.map_err(exit::app)? {
            Start::Scheduled(stored) => {
                say_schedules(&stored, json);
                if json {
                    outln!(
                        "{}",
                        json!({"run_id": null, "status": "scheduled", "plan_id": plan.id, "schedules": stored, "steps": [], "reports": []})
                    );
                }
                return Ok(Code::Ok);
            }
            Start::NothingToDo(why) => {
                if json {
                    outln!(
                        "{}",
                        json!({"run_id": null, "status": "nothing-to-do", "plan_id": plan.id, "reason": why, "steps": [], "reports": []})
                    );
                } else {
                    outln!("{}", why.unwrap_or_else(|| format!("Nothing to do: plan {} changes nothing.", plan.id)));
                }
                return Ok(Code::Ok);
            }
            Start::Running(handle) => {
                // A read-only plan that asks for a report (an audit, an inventory, "list …"):
                // a run that changes nothing, recorded in the audit log, with its report files.
                if !json {
                    err!("{}", render(plan));
                }
                crate::progress::Progress::new(Some(plan), &[], json).follow(handle.subscribe()).await;
                let outcome = handle.wait().await.map_err(exit::app)?;
                warn(&outcome.warnings);
                say_schedules(&outcome.schedules, json);
                print_report(&outcome.report, json)?;
                return Ok(code_of(outcome.report.status));
            }
        }
    }
    let approver = Approver::terminal(actor.clone());
    if reject {
        app.approve(&approver, &plan.id, Decision::Reject, Selection::All).await.map_err(exit::app)?;
        outln!("Plan {} rejected (recorded in the audit log).", plan.id);
        return Ok(Code::Ok);
    }
    if vp.has_destructive_steps() {
        let destructive: usize = plan.destructive_items().len();
        // (step, item) pairs: `s2`, `s2/ITEM`, or a bare item id only when one destructive step
        // changes it; anything else is a usage error naming the steps.
        let parse = |text: &str| Selection::parse(plan, text).map_err(|e| usage(e.message, e.fix));
        let selection = match (approve.as_deref(), yes) {
            (Some("all"), _) => Some(Selection::All),
            (Some(list), _) => Some(parse(list)?),
            (None, _) if !json && ui_state.interactive => {
                if !ui_state.shown {
                    show_plan(plan);
                }
                match review_and_approve(plan, ui_state.review) {
                    Some(s) => Some(s),
                    None => {
                        errln!("Not approved; nothing was changed.");
                        return Ok(Code::NeedsInput);
                    }
                }
            }
            // --yes never approves a destructive step.
            (None, true) => None,
            (None, false) => {
                if json {
                    None
                } else {
                    err!("{}", render(plan));
                    match prompt(&format!("Approve the {destructive} destructive changes? [all / s2,s2/ITEM,… / no]"))
                    {
                        Some(a)
                            if a.eq_ignore_ascii_case("all")
                                || a.eq_ignore_ascii_case("y")
                                || a.eq_ignore_ascii_case("yes") =>
                        {
                            Some(Selection::All)
                        }
                        Some(a) if a.is_empty() || a.eq_ignore_ascii_case("no") || a.eq_ignore_ascii_case("n") => {
                            errln!("Not approved; nothing was changed.");
                            return Ok(Code::NeedsInput);
                        }
                        Some(a) => Some(parse(&a)?),
                        None => None,
                    }
                }
            }
        };
        let Some(selection) = selection else {
            if json {
                outln!(
                    "{}",
                    json!({"run_id": null, "status": "awaiting-approval", "plan_id": plan.id, "fingerprint": plan.fingerprint, "steps": [], "reports": []})
                );
            }
            let message = if yes {
                format!(
                    "plan {} has {destructive} destructive changes: --yes approves steps that read or write, never destructive ones",
                    plan.id
                )
            } else {
                format!("plan {} has {destructive} destructive changes and no approval", plan.id)
            };
            return Err(anyhow::Error::new(crate::exit::Failure {
                message,
                hint: Some(
                    "approve them with --approve all (or --approve s2,s2/ITEM,…) — or review them first with tabflow plan"
                        .into(),
                ),
                code: Code::NeedsInput,
            }));
        };
        confirmations = approval_lines(plan, &selection);
        app.approve(&approver, &plan.id, Decision::Approve, selection).await.map_err(exit::app)?;
        if let Err(m) = app.approval_status(&plan.id).await.map_err(exit::app)? {
            let why = tabflow_app::missing_text(&m);
            if json {
                outln!(
                    "{}",
                    json!({"run_id": null, "status": "awaiting-approval", "plan_id": plan.id, "reason": why, "steps": [], "reports": []})
                );
            }
            return Err(anyhow::Error::new(crate::exit::Failure {
                message: format!("plan {} cannot run yet: {why}", plan.id),
                hint: Some(tabflow_app::missing_hint(&m).into()),
                code: Code::NeedsInput,
            }));
        }
    }
    let cancel = tabflow_app::Cancel::new();
    let started = app
        .start_run(
            &plan.id,
            &actor,
            StartOptions { acknowledge_irreversible: ack, cancel: cancel.clone(), shared: ui_state.shared },
        )
        .await
        .map_err(exit::app)?;
    let Start::Running(handle) = started else {
        return Err(fail(format!("plan {} started no run", plan.id), "see `tabflow runs list`"));
    };
    if ui_state.shared {
        let outcome = handle.wait().await.map_err(exit::app)?;
        let r = &outcome.report;
        if json {
            outln!("{}", json!({"run_id": r.run_id, "status": "queued", "plan_id": plan.id, "shared": true}));
        } else {
            outln!(
                "Run {} queued for the workers sharing this store: start `tabflow worker` on it; `tabflow worker status` shows the progress.",
                r.run_id
            );
        }
        return Ok(Code::Ok);
    }
    let live = !json && ui::live_stderr();
    let signals = stop_on_ctrl_c(cancel.clone(), handle.run_id().to_string(), !live);
    crate::progress::Progress::new(Some(plan), &confirmations, json)
        .with_cancel(cancel)
        .follow(handle.subscribe())
        .await;
    let outcome = handle.wait().await.map_err(exit::app);
    signals.abort();
    let outcome = outcome?;
    warn(&outcome.warnings);
    say_schedules(&outcome.schedules, json);
    print_report(&outcome.report, json)?;
    Ok(code_of(outcome.report.status))
}

pub async fn apply_cmd(a: ApplyArgs) -> anyhow::Result<Code> {
    let delivery = notify_delivery()?;
    let policy = a.store.policy()?;
    let app = open_app_connecting(&a.connect, &a.store, policy, delivery).await?;
    let result = async {
        let plan = if std::path::Path::new(&a.plan).exists() {
            let text = super::read_capped(std::path::Path::new(&a.plan), super::PLAN_FILE_LIMIT, "plan")?;
            app.read_plan(&text).map_err(|e| fail(format!("{}: {}", a.plan, e.message), e.hint))?
        } else if a.plan.starts_with("p-") {
            app.get_plan(&a.plan).await.map_err(exit::app)?
        } else {
            return Err(usage(format!("{} is neither a plan file nor a plan id", a.plan), "tabflow apply plan.json"));
        };
        let vp = match app.check(plan).await.map_err(exit::app)? {
            Ok(v) => v,
            Err(p) => {
                return Err(fail(
                    format!("plan {} failed validation: {}", p.id, tabflow_app::error_findings(&p).join("; ")),
                    "fix the cause or make a new plan; nothing was changed",
                ));
            }
        };
        let ui_state = Ui { interactive: !a.json && ui::interactive(), review: false, shown: false, shared: a.shared };
        approve_and_run(&app, &vp, &a.approve, a.yes, a.reject, a.acknowledge_irreversible, a.json, ui_state).await
    }
    .await;
    close(app, result).await
}

pub async fn ask_cmd(a: AskArgs) -> anyhow::Result<Code> {
    check_not_blank(&a.request)?;
    let mut answers = parse_answers(&a.answers)?;
    let delivery = notify_delivery()?;
    let policy = a.store.policy()?;
    let app = open_app_connecting(&a.connect, &a.store, policy, delivery).await?;
    let result = async {
        app.connect().await.map_err(exit::app)?;
        let mut source = Some(if a.llm { Source::Llm(Box::new(llm(&a.connect)?)) } else { Source::Rules });
        let mut read: Option<(Vec<tabflow_app::plan::Intent>, Vec<String>)> = None;
        let interactive = !a.json && ui::interactive();
        // The plan is printed in full once; after each answer a one-line summary.
        let mut shown = false;
        let mut asked: Vec<String> = vec![];
        let mut ui_state = Ui { interactive, review: false, shown: false, shared: false };
        loop {
            let src = match (source.take(), &read) {
                (Some(s), _) => s,
                (None, Some((intents, notes))) => Source::Given { intents: intents.clone(), notes: notes.clone() },
                (None, None) => Source::Rules,
            };
            let req =
                PlanRequest { request: a.request.clone(), source: src, answers: answers.clone(), actor: whoami(), remember: false };
            let planned = app.plan(req).await.map_err(exit::app)?;
            warn(&planned.warnings);
            read = Some((planned.intents.clone(), planned.notes.clone()));
            let vp = match planned.plan {
                Ok(v) => v,
                Err(p) => {
                    if a.json {
                        outln!("{}", p.to_json());
                    } else {
                        out!("{}", ui::fit_lines(&render(&p), ui::width_out()));
                    }
                    return Ok(Code::Error);
                }
            };
            let plan = vp.plan();
            if let Some(q) = plan.questions.first() {
                // Approving every item is the plan's "archive all": --approve all and --yes
                // answer a confirmation question with its proceed choice. A question about
                // meaning (which John?) still needs --answer.
                if let Some(proceed) = proceed_choice(q).filter(|_| answers_confirmation(&a.approve, a.yes)) {
                    let why = if approves_all(&a.approve) {
                        "--approve all approves every item"
                    } else {
                        "--yes answers confirmation questions"
                    };
                    let note = format!("note: answered {proceed} ({why}) to: {}", q.text);
                    errln!("{}", ui::fit_lines(&note, ui::live_stderr().then(ui::width_err)));
                    answers.insert(q.id.clone(), proceed.to_string());
                    continue;
                }
                if interactive {
                    if shown {
                        errln!("{}", ui::fit(&summary(plan), ui::width_err()));
                    } else {
                        show_plan(plan);
                        shown = true;
                    }
                    let help = "↑↓ choose · Enter answers · Esc goes back";
                    match ui::select(&q.text, &q.choices, q.default.as_deref(), help) {
                        ui::Answer::Given(r) => {
                            ui_state.review = r == "review";
                            answers.insert(q.id.clone(), r);
                            asked.push(q.id.clone());
                        }
                        ui::Answer::Back => match asked.pop() {
                            Some(prev) => {
                                answers.remove(&prev);
                            }
                            None => {
                                errln!("Stopped; nothing was changed.");
                                return Ok(Code::NeedsInput);
                            }
                        },
                        ui::Answer::Quit => {
                            errln!("Stopped; nothing was changed.");
                            return Ok(Code::NeedsInput);
                        }
                    }
                    continue;
                }
                // Shown once: on the terminal before the prompt, or on stdout with the hint.
                if !a.json && std::io::stdin().is_terminal() {
                    err!("{}", render(plan));
                }
                let reply = prompt(&format!("? {} [{}]", q.text, q.choices.join("/")));
                match reply {
                    Some(r) => {
                        let r = if r.is_empty() { q.default.clone().unwrap_or_default() } else { r };
                        if r.is_empty() {
                            return Ok(Code::NeedsInput);
                        }
                        answers.insert(q.id.clone(), r);
                        continue;
                    }
                    None => {
                        if a.json {
                            outln!("{}", json!({"run_id": null, "status": "awaiting-input", "plan_id": plan.id, "questions": plan.questions, "steps": [], "reports": []}));
                        } else {
                            out!("{}", ui::fit_lines(&render(plan), ui::width_out()));
                            let how = if proceed_choice(q).is_some() {
                                " (or --approve all to answer it and approve every item)"
                            } else {
                                ""
                            };
                            outln!("Answer with: tabflow ask \"{}\" --answer {}=CHOICE{how}", plan.request, q.id);
                            if proceed_choice(q).is_none() && (a.yes || a.approve.is_some()) {
                                errln!(
                                    "error: [{}] \"{}\" is a question about meaning: --yes and --approve do not answer it",
                                    q.id,
                                    q.text
                                );
                                errln!("hint: add --answer {}=CHOICE (choices: {})", q.id, q.choices.join(", "));
                            }
                        }
                        return Ok(Code::NeedsInput);
                    }
                }
            }
            warn(&app.remember_answers(plan).await.into_iter().collect::<Vec<_>>());
            if !plan.steps.iter().any(|s| s.is_write() && !s.changes.is_empty()) && !tabflow_app::wants_report(plan) {
                if a.json {
                    outln!("{}", json!({"run_id": null, "status": "succeeded", "plan_id": plan.id, "steps": [], "reports": [], "plan": plan}));
                } else {
                    out!("{}", ui::fit_lines(&render(plan), ui::width_out()));
                    if let Some(line) = closing_line(plan) {
                        outln!("{line}");
                    }
                }
                return Ok(Code::Ok);
            }
            if !a.json && (a.approve.is_some() || a.yes) {
                show_plan(plan);
            } else if interactive && !shown {
                show_plan(plan);
                shown = true;
            }
            ui_state.shown = shown;
            return approve_and_run(&app, &vp, &a.approve, a.yes, false, a.acknowledge_irreversible, a.json, ui_state)
                .await;
        }
    }
    .await;
    close(app, result).await
}

/// Ctrl-C during a run: the first asks the run to stop between items (the items in flight
/// are finished and journalled; the run ends `interrupted`, exit 130); the second exits at
/// once with 130 (the journal still lets `tabflow runs resume` finish the run). `say`: print
/// the first notice here (the live block shows it itself).
pub fn stop_on_ctrl_c(cancel: tabflow_app::Cancel, run_id: String, say: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        cancel.cancel();
        if say {
            errln!("Stopping: finishing the items in flight (Ctrl-C again stops at once).");
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            errln!();
            errln!(
                "Stopped at once. The journal keeps what was done: `tabflow runs resume {run_id}` finishes the run, `tabflow runs rollback {run_id}` undoes it."
            );
            std::process::exit(Code::Interrupted as i32);
        }
    })
}

/// How `ask` and `apply` talk to a person at a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Prompts are drawn with `inquire` (stdin and stderr are terminals, no --json).
    pub interactive: bool,
    /// The person chose "review": the approval opens the review list of each destructive step.
    pub review: bool,
    /// The plan was already printed in full.
    pub shown: bool,
    /// `apply --shared`: queue the run's items for the workers.
    pub shared: bool,
}

/// The choice of a confirmation question that goes ahead with every item ("archive-all" in
/// "Archive all, or review the list first?"): the one `*-all` choice of a question that also
/// offers "review". None for a question about meaning (which John? which mode?).
pub fn proceed_choice(q: &tabflow_engine::plan::Question) -> Option<&str> {
    if !q.choices.iter().any(|c| c == "review") {
        return None;
    }
    let mut all = q.choices.iter().filter(|c| c.ends_with("-all"));
    match (all.next(), all.next()) {
        (Some(c), None) => Some(c.as_str()),
        _ => None,
    }
}

/// `--approve all`: every destructive item is approved.
fn approves_all(approve: &Option<String>) -> bool {
    approve.as_deref().is_some_and(|a| a.trim().eq_ignore_ascii_case("all"))
}

/// `--approve all` or `--yes`: a confirmation question ("archive all, or review the list
/// first?") is answered with its proceed choice.
fn answers_confirmation(approve: &Option<String>, yes: bool) -> bool {
    yes || approves_all(approve)
}

/// The plan on standard error, each line cut to the terminal's width (at a terminal, its
/// questions are left to the prompts that follow).
fn show_plan(plan: &Plan) {
    let width = ui::live_stderr().then(ui::width_err);
    let mut text = render(plan);
    if width.is_some()
        && let Some(at) = text.find("\n? [")
    {
        text.truncate(at + 1);
    }
    err!("{}", ui::fit_lines(&text, width));
}

/// One line about a plan, printed after an answer instead of the whole plan again.
pub(crate) fn summary(plan: &Plan) -> String {
    let changing: usize = plan.steps.iter().filter(|s| s.is_write()).map(|s| s.changed_items().len()).sum();
    let destructive = plan.destructive_items().len();
    let answered: Vec<String> = plan.answers.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "Plan {} · {} steps · {changing} items to change ({destructive} destructive){}",
        plan.id,
        plan.steps.len(),
        if answered.is_empty() { String::new() } else { format!(" · answered {}", answered.join(", ")) }
    )
}

/// The approval lines the progress block shows before each destructive step.
fn approval_lines(plan: &Plan, selection: &Selection) -> Vec<(String, String)> {
    plan.steps
        .iter()
        .filter(|s| s.effect == Effect::Destructive)
        .map(|s| {
            let n = s.changed_items().len();
            let k = match selection {
                Selection::All => n,
                Selection::Pairs(p) => p.iter().filter(|(step, _)| *step == s.id).count(),
            };
            let text = if k == n {
                format!("you approved all {n} items of the next step")
            } else {
                format!("you approved {k} of {n} items of the next step ({} left out: not touched)", n - k)
            };
            (s.id.clone(), text)
        })
        .collect()
}

/// The approval at a terminal: "Approve all N / Review the list / Cancel", and the review
/// lists (one per destructive step; Esc goes back a step). Answers the selection, or none
/// when the person cancels or unticks everything.
fn review_and_approve(plan: &Plan, review: bool) -> Option<Selection> {
    let steps = ui::destructive_steps(plan);
    let total: usize = steps.iter().map(|(_, s)| ui::reviewed_items(s).len()).sum();
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut review = review;
    loop {
        if review {
            let mut i = 0;
            while i < steps.len() {
                let (number, step) = steps[i];
                match ui::review_step(step, number, kept.get(&step.id).map(Vec::as_slice)) {
                    ui::Answer::Given(ids) => {
                        let n = ui::reviewed_items(step).len();
                        errln!(
                            "{}",
                            ui::fit(
                                &format!(
                                    "  Step {number}: {} of {n} ticked{}",
                                    ids.len(),
                                    if ids.len() < n {
                                        format!(" ({} left out: not touched)", n - ids.len())
                                    } else {
                                        String::new()
                                    }
                                ),
                                ui::width_err()
                            )
                        );
                        kept.insert(step.id.clone(), ids);
                        i += 1;
                    }
                    ui::Answer::Back if i > 0 => i -= 1,
                    ui::Answer::Back => break,
                    ui::Answer::Quit => return None,
                }
            }
        }
        let ticked: usize = steps
            .iter()
            .map(|(_, s)| kept.get(&s.id).map(Vec::len).unwrap_or_else(|| ui::reviewed_items(s).len()))
            .sum();
        let approve = if ticked == total {
            format!("Approve all {total} destructive changes")
        } else {
            format!("Approve the {ticked} ticked ({} left out)", total - ticked)
        };
        let choices = vec![approve.clone(), "Review the list".to_string(), "Cancel".to_string()];
        let question = format!("{} · approve {ticked} of {total} destructive changes?", plan.id);
        match ui::select(&question, &choices, Some(&approve), "↑↓ choose · Enter answers · Esc cancels") {
            ui::Answer::Given(c) if c == approve => {
                if ticked == 0 {
                    return None;
                }
                if ticked == total {
                    return Some(Selection::All);
                }
                let pairs = steps
                    .iter()
                    .flat_map(|(_, s)| {
                        let ids: Vec<String> = match kept.get(&s.id) {
                            Some(k) => k.clone(),
                            None => ui::reviewed_items(s).iter().map(|i| i.id.clone()).collect(),
                        };
                        ids.into_iter().map(|i| (s.id.clone(), i))
                    })
                    .collect();
                return Some(Selection::Pairs(pairs));
            }
            ui::Answer::Given(c) if c == choices[1] => review = true,
            _ => return None,
        }
    }
}

fn prompt(question: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    err!("{question} ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

/// The machine-readable run result (DESIGN.md §6).
pub fn run_json(r: &RunReport) -> Value {
    json!({
        "run_id": r.run_id,
        "status": r.status.as_str(),
        "steps": r.steps.iter().map(|s| json!({"id": s.id, "status": s.status, "done": s.done, "failed": s.failed, "skipped": s.skipped})).collect::<Vec<_>>(),
        "skipped_items": r.skipped,
        "failed_items": r.failed,
        "restored": r.restored,
        "not_restored": r.not_restored,
        "recreated": r.recreated,
        "reports": r.reports,
        "notifications": r.notifications,
        "staged": r.staged,
        "elapsed_ms": r.elapsed_ms,
    })
}

fn code_of(status: RunStatus) -> Code {
    match status {
        RunStatus::Succeeded | RunStatus::Partial => Code::Ok,
        RunStatus::RolledBack => Code::RolledBack,
        RunStatus::AwaitingApproval => Code::NeedsInput,
        RunStatus::Interrupted => Code::Interrupted,
        _ => Code::Error,
    }
}

pub fn print_report(r: &RunReport, json: bool) -> anyhow::Result<()> {
    let mut out = crate::term::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&run_json(r))?)?;
    } else {
        out.write_all(report_text(r).as_bytes())?;
    }
    Ok(())
}

/// The run's result for a person: counts, the items skipped or failed, what was restored,
/// notifications, reports, what is staged, and how to undo (or resume) it.
pub fn report_text(r: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let done: usize = r.steps.iter().map(|s| s.done).sum();
    // A rollback's own report: nothing done by steps, items put back (or not).
    let undo = done == 0 && r.failed.is_empty() && (r.restored > 0 || !r.not_restored.is_empty());
    let counts = if undo {
        format!("{} items restored, {} not restored", r.restored, r.not_restored.len())
    } else {
        format!("{done} items done, {} skipped, {} failed", r.skipped.len(), r.failed.len())
    };
    let _ = writeln!(out, "Run {} {} in {:.1} s: {counts}.", r.run_id, r.status.as_str(), r.elapsed_ms as f64 / 1000.0);
    for s in r.skipped.iter().take(20) {
        let _ = writeln!(out, "  skipped {} ({}): {}", s.name, s.item_id, s.reason);
    }
    for s in &r.failed {
        let _ = writeln!(out, "  failed  {} ({}): {}", s.name, s.item_id, s.reason);
    }
    if r.restored > 0 || !r.not_restored.is_empty() {
        if !undo {
            let _ = writeln!(out, "  restored {} items; {} not restored", r.restored, r.not_restored.len());
        }
        for s in &r.not_restored {
            let _ = writeln!(out, "  NOT restored {} ({}): {}", s.name, s.item_id, s.reason);
        }
        for s in &r.recreated {
            let _ = writeln!(out, "  note: {} ({}) {}", s.name, s.item_id, s.reason);
        }
    }
    if let Some(n) = &r.notifications {
        let count = |k: &str| n.get(k).and_then(Value::as_u64).unwrap_or(0);
        let channels: Vec<&str> =
            n.get("channels").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let via = if channels.is_empty() { "no channel configured".to_string() } else { channels.join(" + ") };
        let _ = writeln!(
            out,
            "Notified {} people ({via}): {} sent, {} kept in the outbox unsent, {} failed — tabflow outbox list --run {}",
            count("messages"),
            count("sent"),
            count("dry"),
            count("failed"),
            r.run_id
        );
        if count("failed") > 0 {
            let _ = writeln!(
                out,
                "  the run is not affected; after fixing the cause: tabflow outbox retry --run {}",
                r.run_id
            );
        }
    }
    for rep in &r.reports {
        if let (Some(f), Some(p)) = (rep["format"].as_str(), rep["path"].as_str()) {
            let _ = writeln!(out, "Report   {f:<5} {p}");
        }
    }
    if let Some(st) = &r.staged {
        let day = st["purge_after"].as_str().unwrap_or_default().get(..10).unwrap_or_default().to_string();
        let _ = writeln!(
            out,
            "Staged   {} items wait in quarantine until {day}; then `tabflow runs purge` deletes each one still there, unchanged, with its backup",
            st["items"]
        );
    }
    if r.status == RunStatus::Interrupted {
        let _ = writeln!(
            out,
            "Stopped on Ctrl-C: the items in flight were finished and journalled; the rest were not started."
        );
        let _ = writeln!(out, "Resume   tabflow runs resume {}     (finishes the run)", r.run_id);
        let _ = writeln!(out, "Undo     tabflow runs rollback {}   (puts back what it changed)", r.run_id);
        return out;
    }
    // A run that only read (a report) has nothing to undo.
    if matches!(r.status, RunStatus::Succeeded | RunStatus::Partial) && done > 0 {
        let _ = writeln!(out, "Undo     tabflow runs rollback {}", r.run_id);
    }
    out
}
