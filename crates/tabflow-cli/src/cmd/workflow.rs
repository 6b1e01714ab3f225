//! `tabflow plan`, `tabflow apply`, `tabflow ask`: from a request to a reviewed plan, its
//! approval, and a run with live progress.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};
use tabflow_client::ExposeSecret;
use tabflow_engine::approval::{self, Approver, Decision, Missing, Selection};
use tabflow_engine::executor::{Event, RunOptions, RunReport, whoami};
use tabflow_engine::plan::{Effect, Intent, Level, Plan, PlanKey, SiteRef, StepKind};
use tabflow_engine::{Engine, Facts, Policy, RunStatus, Store, ValidatedPlan, validate};

use super::connect::{Connect, Session, client_error, data_dir};
use crate::exit::{Code, fail, usage};

/// Where the state store and the policy live.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The state store: a SQLite file (default <data dir>/tabflow.db), or a PostgreSQL URL
    /// (postgres://USER:PASSWORD@HOST:PORT/DB) for several tabflow processes sharing one store.
    #[arg(long, global = true, env = "TABFLOW_STORE")]
    pub store: Option<String>,
    /// The policy file (default <data dir>/policy.toml when it exists).
    #[arg(long, global = true, env = "TABFLOW_POLICY")]
    pub policy: Option<PathBuf>,
}

impl StoreArgs {
    pub async fn open(&self) -> anyhow::Result<Store> {
        let location = self.store.clone().unwrap_or_else(|| data_dir().join("tabflow.db").display().to_string());
        let postgres = location.starts_with("postgres://") || location.starts_with("postgresql://");
        Store::open_location(&location).await.map_err(|e| {
            let hint = if postgres {
                "check the server, database, user and password in the URL (postgres://USER:PASSWORD@HOST:PORT/DB), or leave --store unset for the embedded SQLite store"
            } else {
                "set --store (or TABFLOW_STORE) to a writable file path, or a postgres:// URL"
            };
            fail(e.to_string(), hint)
        })
    }

    pub fn policy(&self) -> anyhow::Result<Policy> {
        let path = self.policy.clone().unwrap_or_else(|| data_dir().join("policy.toml"));
        if self.policy.is_some() && !path.exists() {
            return Err(usage(format!("the policy file {} does not exist", path.display()), "check --policy"));
        }
        Policy::load(&path).map_err(|e| fail(e.to_string(), "fix the policy file (see ARCHITECTURE.md, Policy)"))
    }
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
    /// Approve everything and do not ask.
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
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    request: String,
    #[arg(long = "answer", value_name = "ID=CHOICE")]
    answers: Vec<String>,
    #[arg(long)]
    approve: Option<String>,
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    acknowledge_irreversible: bool,
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
pub fn notify_delivery() -> anyhow::Result<tabflow_engine::notify::Delivery> {
    tabflow_engine::notify::Delivery::from_env().map_err(|e| usage(e.to_string(), e.fix))
}

fn parse_answers(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    list.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| usage(format!("--answer '{a}' is not ID=CHOICE"), "e.g. --answer q1=archive-all"))
        })
        .collect()
}

/// The request's intents: the rule-based parser, or `--intent` with `--param`s.
fn intents_of(request: &str, intent: &Option<String>, params: &[String]) -> anyhow::Result<Vec<Intent>> {
    if let Some(name) = intent {
        if !tabflow_workflows::INTENTS.contains(&name.as_str()) {
            let near = tabflow_workflows::ground::closest(name, tabflow_workflows::INTENTS.iter().copied(), 1);
            let mean = near.first().map(|n| format!("did you mean {n}? ")).unwrap_or_default();
            return Err(usage(
                format!("'{name}' is not an intent tabflow knows"),
                format!("{mean}use one of: {}", tabflow_workflows::INTENTS.join(", ")),
            ));
        }
        let mut map = serde_json::Map::new();
        for p in params {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| usage(format!("--param '{p}' is not K=V"), "e.g. --param project=Finance"))?;
            let value = match v.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                x if x.parse::<i64>().is_ok() => Value::from(x.parse::<i64>().unwrap_or(0)),
                x if x.contains(',') && k == "tags" => {
                    Value::from(x.split(',').map(|t| t.trim().to_string()).collect::<Vec<_>>())
                }
                x => Value::String(x.to_string()),
            };
            map.insert(k.trim().to_string(), value);
        }
        return Intent::from_parts(name, map).map(|i| vec![i]).map_err(|e| usage(e.to_string(), e.fix()));
    }
    Ok(tabflow_nl::parse(request, chrono::Utc::now().date_naive()).intents)
}

/// The credentials tabflow holds (Tableau, LLM key), to be kept out of plans and prompts. The
/// built-in demo site's sign-in is public (DESIGN.md §4), so it is not one of them.
fn secrets(session: &Session) -> Vec<String> {
    let env = |k: &str| std::env::var(k).ok();
    let mut out: Vec<String> = env("TABFLOW_LLM_API_KEY").into_iter().collect();
    if !session.is_demo() {
        out.extend(["TABLEAU_PAT_SECRET", "TABLEAU_PASSWORD", "TABLEAU_JWT"].iter().filter_map(|k| env(k)));
        out.push(match &session.client.config().credentials {
            tabflow_client::config::Credentials::Pat { secret, .. } => secret.expose_secret().to_string(),
            tabflow_client::config::Credentials::Password { password, .. } => password.expose_secret().to_string(),
            tabflow_client::config::Credentials::Jwt { token } => token.expose_secret().to_string(),
        });
    }
    out.retain(|s| s.len() >= 4);
    out
}

/// The request as plans and models see it: any credential pasted into it is `[redacted]`.
fn redacted(session: &Session, request: &str) -> String {
    secrets(session).iter().fold(request.to_string(), |r, s| r.replace(s.as_str(), "[redacted]"))
}

/// The request's intents from the configured LLM (falling back to the rule-based parser),
/// and notes saying which answered; the notes are also printed on stderr.
async fn intents_from_llm(
    session: &Session,
    connect: &Connect,
    request: &str,
) -> anyhow::Result<(Vec<Intent>, Vec<String>)> {
    let path = connect.config.clone().unwrap_or_else(|| data_dir().join("config.toml"));
    let file = std::fs::read_to_string(&path).ok();
    let config = tabflow_llm::Config::resolve(|k| std::env::var(k).ok(), file.as_deref())
        .map_err(|e| usage(e.to_string(), "configure a model (README: \"Optional LLM backend\") or leave out --llm"))?;
    let llm = tabflow_llm::Llm::new(config).map_err(|e| fail(e.to_string(), "check the [llm] settings"))?;
    // The request is already redacted; the library also redacts these (and its own key) from
    // everything it sends.
    let secrets = secrets(session);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let outcome = llm.interpret(request, chrono::Utc::now().date_naive(), &secrets).await;
    for n in &outcome.notes {
        eprintln!("note: {n}");
    }
    Ok((outcome.intents, outcome.notes))
}

/// What earlier choices taught (learning system), for the planner.
async fn learned(store: &Store) -> anyhow::Result<tabflow_workflows::learn::Learned> {
    let rows = store.learning().await.map_err(|e| fail(e.to_string(), "check the state store"))?;
    Ok(tabflow_workflows::learn::Learned::new(rows))
}

/// Records what a plan's answers and a run's approvals teach; a failure to record is
/// reported and does not fail the command.
async fn remember(store: &Store, rows: Vec<tabflow_engine::store::NewLearning>) {
    if let Err(e) = store.record_learning(&rows).await {
        eprintln!("warning: could not record what this run taught ({e}); `tabflow learn show` will miss it");
    }
}

/// Reads the site and builds + validates the plan, sealed with the store's `key`. `notes`
/// (e.g. which parser read the request) go into the plan's notes; `learned` ranks
/// suggestions and defaults.
pub async fn make_plan(
    session: &Session,
    key: &PlanKey,
    request: &str,
    intents: Vec<Intent>,
    answers: BTreeMap<String, String>,
    policy: &Policy,
    notes: &[String],
    learned: tabflow_workflows::learn::Learned,
) -> anyhow::Result<Result<ValidatedPlan, Box<Plan>>> {
    let server = session.client.config().server.clone();
    let site = tabflow_client::snapshot::take(&session.client, &tabflow_client::snapshot::Options { usage: true })
        .await
        .map_err(|e| client_error(e, &server))?;
    let me = session.client.session().await.user_id;
    let signed_in = site.users.iter().find(|u| u.id == me).map(|u| u.name.clone()).unwrap_or_default();
    let has_last = site.workbooks.iter().any(|w| w.views.iter().any(|v| v.last_viewed_at.is_some()));
    let usage_source = if has_last {
        "Admin Insights (VizQL Data Service: last view per view)".to_string()
    } else {
        "REST view counts only (no last-viewed dates: only never-viewed content can be judged)".to_string()
    };
    let site_ref = SiteRef {
        server: session.server_label(),
        content_url: site.site.content_url.clone(),
        id: site.site.id.clone(),
    };
    let planner = tabflow_workflows::Planner {
        site: &site,
        site_ref,
        policy,
        signed_in: signed_in.clone(),
        now: site.now,
        answers,
        usage_source,
        learned,
    };
    let mut draft = tabflow_workflows::plan(request, intents, &planner);
    draft.notes.extend(notes.iter().cloned());
    let facts = Facts::from_site(&site, &signed_in);
    Ok(validate(draft, &facts, policy, key))
}

/// Refuses a plan made for another site (server URL and site id) than the one this session
/// is signed in to — a plan made on a rehearsal copy is re-planned against production.
pub async fn check_site(session: &Session, plan: &Plan) -> anyhow::Result<()> {
    let s = session.client.session().await;
    plan.check_site(&session.server_label(), &s.site_id).map_err(|e| fail(e.to_string(), e.fix()))
}

/// Re-validates a plan read from a file against the live site.
async fn revalidate(
    session: &Session,
    plan: Plan,
    policy: &Policy,
    key: &PlanKey,
) -> anyhow::Result<Result<ValidatedPlan, Box<Plan>>> {
    let server = session.client.config().server.clone();
    check_site(session, &plan).await?;
    let s = session.client.session().await;
    let site = tabflow_client::snapshot::take(&session.client, &tabflow_client::snapshot::Options { usage: false })
        .await
        .map_err(|e| client_error(e, &server))?;
    let signed_in = site.users.iter().find(|u| u.id == s.user_id).map(|u| u.name.clone()).unwrap_or_default();
    let facts = Facts::from_site(&site, &signed_in);
    Ok(validate(plan, &facts, policy, key))
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

pub async fn plan_cmd(a: PlanArgs) -> anyhow::Result<Code> {
    let request = match (&a.request, &a.intent) {
        (Some(r), _) => r.clone(),
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
    let store = a.store.open().await?;
    let learned = learned(&store).await?;
    let session = a.connect.open().await?;
    let request = redacted(&session, &request);
    let result = async {
        let (intents, notes) = if a.llm {
            intents_from_llm(&session, &a.connect, &request).await?
        } else {
            (intents_of(&request, &a.intent, &a.params)?, vec![])
        };
        make_plan(&session, store.plan_key(), &request, intents, answers, &policy, &notes, learned).await
    }
    .await;
    session.finish().await?;
    let (plan, ok) = match result? {
        Ok(v) => (v.into_plan(), true),
        Err(p) => (*p, false),
    };
    store.save_plan(&plan).await.map_err(|e| fail(e.to_string(), "check the state store"))?;
    remember(&store, tabflow_workflows::learn::from_answers(&plan)).await;
    if let Some(path) = &a.output {
        std::fs::write(path, plan.to_json())
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the output path"))?;
    }
    if let (Some(path), Some(format)) = (&a.report, report_format) {
        super::report::write(path, &tabflow_workflows::report::build(&plan, None).render(format))?;
        eprintln!("Report   {} (plan only: nothing was changed)", path.display());
    }
    store.close().await;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", plan.to_json())?;
    } else {
        write!(out, "{}", render(&plan))?;
        if ok && plan.questions.is_empty() && plan.steps.iter().any(|s| s.is_write()) {
            writeln!(
                out,
                "Next     tabflow apply {} --approve all   (or --approve s2,ITEM,… for a subset)",
                a.output.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| plan.id.clone())
            )?;
        }
    }
    Ok(if ok { Code::Ok } else { Code::Error })
}

fn progress_printer(json: bool) -> (tokio::sync::mpsc::UnboundedSender<Event>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let handle = tokio::spawn(async move {
        let mut err = std::io::stderr();
        while let Some(e) = rx.recv().await {
            if json {
                continue;
            }
            let line = match &e {
                Event::RunStarted { run_id, request, steps, .. } => {
                    format!("Workflow progress: {request}  (run {run_id}, {steps} steps)")
                }
                Event::StepStarted { index, total, title, items, .. } => {
                    format!("🔄 Step {index}/{total}  {title}  (0/{items})")
                }
                Event::ItemFinished { k, m, name, outcome, detail, .. } => {
                    if outcome == "done" || outcome == "already-applied" {
                        if *k == *m || k % 10 == 0 { format!("   {k}/{m} complete") } else { continue }
                    } else {
                        format!("   {k}/{m} {outcome}: {name} — {detail}")
                    }
                }
                Event::StepFinished { step_id, done, skipped, failed, elapsed_ms, .. } => {
                    let mark = if *failed > 0 {
                        "❌"
                    } else if *skipped > 0 {
                        "⚠️"
                    } else {
                        "✅"
                    };
                    format!(
                        "{mark} {step_id}: {done} done, {skipped} skipped, {failed} failed  ({:.1} s)",
                        *elapsed_ms as f64 / 1000.0
                    )
                }
                Event::RollbackStarted { reason, items, .. } => format!("↩️  Rolling back {items} items: {reason}"),
                Event::ItemRestored { k, m, name, outcome, detail, .. } => {
                    if outcome == "restored" {
                        if *k == *m || k % 10 == 0 { format!("   {k}/{m} restored") } else { continue }
                    } else {
                        format!("   {k}/{m} NOT restored: {name} — {detail}")
                    }
                }
                Event::RunFinished { status, .. } => format!("Run finished: {status}"),
            };
            let _ = writeln!(err, "{line}");
        }
    });
    (tx, handle)
}

fn prompt(question: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("{question} ");
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
        _ => Code::Error,
    }
}

/// Writes the run's four reports and lists them in `r.reports`; a failure to write them is
/// reported and does not fail the run (the site was changed either way).
pub async fn attach_reports(store: &Store, r: &mut RunReport) {
    match super::report::write_run(store, &r.run_id).await {
        Ok(list) => r.reports = list,
        Err(e) => eprintln!("warning: could not write the run's reports ({e}); try `tabflow runs report {}`", r.run_id),
    }
}

pub fn print_report(r: &RunReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&run_json(r))?)?;
        return Ok(());
    }
    let done: usize = r.steps.iter().map(|s| s.done).sum();
    writeln!(
        out,
        "Run {} {} in {:.1} s: {done} items done, {} skipped, {} failed.",
        r.run_id,
        r.status.as_str(),
        r.elapsed_ms as f64 / 1000.0,
        r.skipped.len(),
        r.failed.len()
    )?;
    for s in r.skipped.iter().take(20) {
        writeln!(out, "  skipped {} ({}): {}", s.name, s.item_id, s.reason)?;
    }
    for s in &r.failed {
        writeln!(out, "  failed  {} ({}): {}", s.name, s.item_id, s.reason)?;
    }
    if r.restored > 0 || !r.not_restored.is_empty() {
        writeln!(out, "  restored {} items; {} not restored", r.restored, r.not_restored.len())?;
        for s in &r.not_restored {
            writeln!(out, "  NOT restored {} ({}): {}", s.name, s.item_id, s.reason)?;
        }
        for s in &r.recreated {
            writeln!(out, "  note: {} ({}) {}", s.name, s.item_id, s.reason)?;
        }
    }
    if let Some(n) = &r.notifications {
        let count = |k: &str| n.get(k).and_then(Value::as_u64).unwrap_or(0);
        let channels: Vec<&str> =
            n.get("channels").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let via = if channels.is_empty() { "no channel configured".to_string() } else { channels.join(" + ") };
        writeln!(
            out,
            "Notified {} people ({via}): {} sent, {} kept in the outbox unsent, {} failed — tabflow outbox list --run {}",
            count("messages"),
            count("sent"),
            count("dry"),
            count("failed"),
            r.run_id
        )?;
        if count("failed") > 0 {
            writeln!(
                out,
                "  the run is not affected; after fixing the cause: tabflow outbox retry --run {}",
                r.run_id
            )?;
        }
    }
    for rep in &r.reports {
        if let (Some(f), Some(p)) = (rep["format"].as_str(), rep["path"].as_str()) {
            writeln!(out, "Report   {f:<5} {p}")?;
        }
    }
    if let Some(st) = &r.staged {
        let day = st["purge_after"].as_str().unwrap_or_default().get(..10).unwrap_or_default().to_string();
        writeln!(
            out,
            "Staged   {} items wait in quarantine until {day}; then `tabflow runs purge` deletes each one still there, unchanged, with its backup",
            st["items"]
        )?;
    }
    if matches!(r.status, RunStatus::Succeeded | RunStatus::Partial) {
        writeln!(out, "Undo     tabflow runs rollback {}", r.run_id)?;
    }
    Ok(())
}

/// Stores the recurring reviews a plan asks for (steps `schedule-review`), once per plan;
/// answers the ones stored now.
async fn store_schedules(store: &Store, plan: &Plan, say: bool) -> anyhow::Result<Vec<Value>> {
    let mut stored = vec![];
    for s in plan.steps.iter().filter(|s| s.kind == StepKind::ScheduleReview) {
        let row = tabflow_engine::store::ScheduleRow {
            id: format!("sch-{}-{}", plan.id.trim_start_matches("p-"), s.id),
            cadence: s.details["cadence"].as_str().unwrap_or("monthly").to_string(),
            request: plan.request.clone(),
            intent: s.details["intent"].clone(),
            plan_id: plan.id.clone(),
            created_by: whoami(),
            created_at: chrono::Utc::now(),
            last_run_at: None,
        };
        if store.insert_schedule(&row).await.map_err(|e| fail(e.to_string(), "check the state store"))? {
            tabflow_engine::audit::append(
                store,
                tabflow_engine::audit::NewRecord {
                    actor: whoami(),
                    action: "schedule.created".into(),
                    plan_id: Some(plan.id.clone()),
                    after: Some(json!({"id": row.id, "cadence": row.cadence, "intent": row.intent})),
                    outcome: "stored".into(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| fail(e.to_string(), "check the state store"))?;
            if say {
                println!(
                    "Scheduled a {} review ({}): `tabflow schedule list` shows it; `tabflow worker` (not in this build) runs it.",
                    row.cadence, row.id
                );
            }
            stored.push(json!({"id": row.id, "cadence": row.cadence}));
        }
    }
    Ok(stored)
}

/// Approval + run of a validated plan; shared by `apply` and `ask`.
async fn approve_and_run(
    session: &Session,
    store: &Store,
    policy: &Policy,
    vp: &ValidatedPlan,
    approve: &Option<String>,
    yes: bool,
    reject: bool,
    ack: bool,
    json: bool,
    delivery: tabflow_engine::notify::Delivery,
) -> anyhow::Result<Code> {
    let plan = vp.plan();
    if !plan.questions.is_empty() {
        let q = &plan.questions[0];
        let msg = format!("plan {} has unanswered questions: [{}] {}", plan.id, q.id, q.text);
        if json {
            println!(
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
    if !plan.steps.iter().any(|s| s.is_write()) {
        // Nothing would change on the site: no run is started (a recurring review the plan
        // asks for is stored).
        let stored = store_schedules(store, plan, !json).await?;
        if !stored.is_empty() {
            if json {
                println!(
                    "{}",
                    json!({"run_id": null, "status": "scheduled", "plan_id": plan.id, "schedules": stored, "steps": [], "reports": []})
                );
            }
            return Ok(Code::Ok);
        }
        let why = plan.notes.iter().find(|n| n.starts_with("Nothing to do")).cloned();
        if json {
            println!(
                "{}",
                json!({"run_id": null, "status": "nothing-to-do", "plan_id": plan.id, "reason": why, "steps": [], "reports": []})
            );
        } else {
            println!("{}", why.unwrap_or_else(|| format!("Nothing to do: plan {} changes nothing.", plan.id)));
        }
        return Ok(Code::Ok);
    }
    store.save_plan(plan).await.map_err(|e| fail(e.to_string(), "check the state store"))?;
    let approver = Approver::terminal(whoami());
    if reject {
        approval::decide(store, vp, &approver, Decision::Reject, Selection::All, policy.approval_ttl_hours).await?;
        println!("Plan {} rejected (recorded in the audit log).", plan.id);
        return Ok(Code::Ok);
    }
    let mut grant = None;
    if vp.has_destructive_steps() {
        let destructive: usize = plan.destructive_items().len();
        let parse = |text: &str| Selection::parse(plan, text).map_err(|e| usage(e.message, e.fix));
        let selection = match (approve.as_deref(), yes) {
            (Some("all"), _) | (None, true) => Some(Selection::All),
            (Some(list), _) => Some(parse(list)?),
            (None, false) => {
                if json {
                    None
                } else {
                    eprint!("{}", render(plan));
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
                            eprintln!("Not approved; nothing was changed.");
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
                println!(
                    "{}",
                    json!({"run_id": null, "status": "awaiting-approval", "plan_id": plan.id, "fingerprint": plan.fingerprint, "steps": [], "reports": []})
                );
            }
            return Err(anyhow::Error::new(crate::exit::Failure {
                message: format!("plan {} has {destructive} destructive changes and no approval", plan.id),
                hint: Some(
                    "approve with --approve all (or --approve s2,ITEM,…) — or review it first with tabflow plan".into(),
                ),
                code: Code::NeedsInput,
            }));
        };
        approval::decide(store, vp, &approver, Decision::Approve, selection, policy.approval_ttl_hours).await.map_err(
            |e| {
                usage(e.to_string(), "approve step ids (s2) or step/item pairs (s2/ITEM) listed by tabflow plan --json")
            },
        )?;
        match approval::grant_for(store, vp, policy.required_approvers).await? {
            Ok(g) => grant = Some(g),
            Err(m) => {
                let why = match &m {
                    Missing::NotEnoughApprovers { have, need } => {
                        format!("the policy needs {need} distinct approvers; {have} approved so far")
                    }
                    Missing::NeedsAuthenticatedApprover { need, terminal_names } => format!(
                        "the policy needs {need} distinct approvers, and the terminal counts as one whatever name it runs under (approved here as {}); the other approvals must come from authenticated approvers — an API token with the approver role, through `tabflow serve`, which this build does not provide yet",
                        terminal_names.join(", ")
                    ),
                    Missing::Rejected(who) => format!("{who} rejected this plan"),
                    Missing::Expired => "the approval expired".into(),
                    Missing::Stale => "the approval was for an older version of the plan".into(),
                    Missing::None => "no approval".into(),
                };
                let hint = if matches!(m, Missing::NeedsAuthenticatedApprover { .. }) {
                    "nothing was changed; until `tabflow serve` issues approver tokens, lower required_approvers in the policy file if one approver is enough"
                } else {
                    "another approver approves through the HTTP API or the terminal with the same plan"
                };
                if json {
                    println!(
                        "{}",
                        json!({"run_id": null, "status": "awaiting-approval", "plan_id": plan.id, "reason": why, "steps": [], "reports": []})
                    );
                }
                return Err(anyhow::Error::new(crate::exit::Failure {
                    message: format!("plan {} cannot run yet: {why}", plan.id),
                    hint: Some(hint.into()),
                    code: Code::NeedsInput,
                }));
            }
        }
    }
    let (tx, printer) = progress_printer(json);
    let engine = Engine {
        client: &session.client,
        store,
        policy: policy.clone(),
        events: Some(tx),
        clock: std::sync::Arc::new(tabflow_engine::SystemClock),
    };
    let opts = RunOptions {
        actor: whoami(),
        concurrency: session.client.config().concurrency,
        acknowledge_irreversible: ack,
        crash_after_intents: std::env::var("TABFLOW_CRASH_AFTER").ok().and_then(|v| v.parse().ok()),
        without_journal: false,
        delivery,
        ..RunOptions::default()
    };
    let approved = grant.as_ref().and_then(|g| g.items.clone());
    let result = engine.apply(vp, grant, &opts).await;
    drop(engine);
    let _ = printer.await;
    let mut report = result.map_err(|e| fail(e.to_string(), "see `tabflow runs list` and the audit log"))?;
    attach_reports(store, &mut report).await;
    if matches!(report.status, RunStatus::Succeeded | RunStatus::Partial) {
        remember(store, tabflow_workflows::learn::from_run(plan, approved.as_ref())).await;
        store_schedules(store, plan, !json).await?;
    }
    print_report(&report, json)?;
    Ok(code_of(report.status))
}

pub async fn apply_cmd(a: ApplyArgs) -> anyhow::Result<Code> {
    let delivery = notify_delivery()?;
    let policy = a.store.policy()?;
    let store = a.store.open().await?;
    let plan = if std::path::Path::new(&a.plan).exists() {
        let text = std::fs::read_to_string(&a.plan)
            .map_err(|e| fail(format!("cannot read {}: {e}", a.plan), "check the path"))?;
        Plan::from_json(&text, store.plan_key()).map_err(|e| fail(format!("{}: {e}", a.plan), e.fix()))?
    } else if a.plan.starts_with("p-") {
        store.plan(&a.plan).await.map_err(|e| fail(e.to_string(), "give a plan file or an id from `tabflow plan`"))?
    } else {
        return Err(usage(format!("{} is neither a plan file nor a plan id", a.plan), "tabflow apply plan.json"));
    };
    let session = a.connect.open().await?;
    let result = async {
        let vp = match revalidate(&session, plan, &policy, store.plan_key()).await? {
            Ok(v) => v,
            Err(p) => {
                let errors: Vec<String> = p
                    .validation
                    .findings
                    .iter()
                    .filter(|f| f.level == Level::Error)
                    .map(|f| format!("{}: {}", f.check.as_str(), f.message))
                    .collect();
                return Err(fail(
                    format!("plan {} failed validation: {}", p.id, errors.join("; ")),
                    "fix the cause or make a new plan; nothing was changed",
                ));
            }
        };
        approve_and_run(
            &session,
            &store,
            &policy,
            &vp,
            &a.approve,
            a.yes,
            a.reject,
            a.acknowledge_irreversible,
            a.json,
            delivery,
        )
        .await
    }
    .await;
    session.finish().await?;
    store.close().await;
    result
}

pub async fn ask_cmd(a: AskArgs) -> anyhow::Result<Code> {
    let mut answers = parse_answers(&a.answers)?;
    let delivery = notify_delivery()?;
    let policy = a.store.policy()?;
    let store = a.store.open().await?;
    let learned = learned(&store).await?;
    let session = a.connect.open().await?;
    let request = redacted(&session, &a.request);
    let result = async {
        let (intents, notes) = if a.llm {
            intents_from_llm(&session, &a.connect, &request).await?
        } else {
            (intents_of(&request, &None, &[])?, vec![])
        };
        loop {
            let made =
                make_plan(
                    &session,
                    store.plan_key(),
                    &request,
                    intents.clone(),
                    answers.clone(),
                    &policy,
                    &notes,
                    learned.clone(),
                )
                .await?;
            let vp = match made {
                Ok(v) => v,
                Err(p) => {
                    store.save_plan(&p).await?;
                    if a.json {
                        println!("{}", p.to_json());
                    } else {
                        print!("{}", render(&p));
                    }
                    return Ok(Code::Error);
                }
            };
            let plan = vp.plan();
            if let Some(q) = plan.questions.first() {
                // Shown once: on the terminal before the prompt, or on stdout with the hint.
                if !a.json && std::io::stdin().is_terminal() {
                    eprint!("{}", render(plan));
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
                        store.save_plan(plan).await?;
                        if a.json {
                            println!("{}", json!({"run_id": null, "status": "awaiting-input", "plan_id": plan.id, "questions": plan.questions, "steps": [], "reports": []}));
                        } else {
                            print!("{}", render(plan));
                            println!("Answer with: tabflow ask \"{}\" --answer {}=CHOICE", request, q.id);
                        }
                        return Ok(Code::NeedsInput);
                    }
                }
            }
            remember(&store, tabflow_workflows::learn::from_answers(plan)).await;
            if !plan.steps.iter().any(|s| s.is_write() && !s.changes.is_empty()) {
                store.save_plan(plan).await?;
                if a.json {
                    println!("{}", json!({"run_id": null, "status": "succeeded", "plan_id": plan.id, "steps": [], "reports": [], "plan": plan}));
                } else {
                    print!("{}", render(plan));
                    if let Some(line) = closing_line(plan) {
                        println!("{line}");
                    }
                }
                return Ok(Code::Ok);
            }
            if !a.json && (a.approve.is_some() || a.yes) {
                eprint!("{}", render(plan));
            }
            return approve_and_run(
                &session,
                &store,
                &policy,
                &vp,
                &a.approve,
                a.yes,
                false,
                a.acknowledge_irreversible,
                a.json,
                delivery,
            )
            .await;
        }
    }
    .await;
    session.finish().await?;
    store.close().await;
    result
}
