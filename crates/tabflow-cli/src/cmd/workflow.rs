//! `tabflow plan`, `tabflow apply`, `tabflow ask`: from a request to a reviewed plan, its
//! approval, and a run with live progress.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};
use tabflow_engine::approval::{self, Approver, Decision, Missing, Selection};
use tabflow_engine::executor::{Event, RunOptions, RunReport, whoami};
use tabflow_engine::plan::{Effect, Intent, Level, Plan, SiteRef};
use tabflow_engine::{Engine, Facts, Policy, RunStatus, Store, ValidatedPlan, validate};

use super::connect::{Connect, Session, client_error, data_dir};
use crate::exit::{Code, fail, usage};

/// Where the state store and the policy live.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The state store: a SQLite file (default <data dir>/tabflow.db).
    #[arg(long, global = true, env = "TABFLOW_STORE")]
    pub store: Option<String>,
    /// The policy file (default <data dir>/policy.toml when it exists).
    #[arg(long, global = true, env = "TABFLOW_POLICY")]
    pub policy: Option<PathBuf>,
}

impl StoreArgs {
    pub async fn open(&self) -> anyhow::Result<Store> {
        let location = self.store.clone().unwrap_or_else(|| data_dir().join("tabflow.db").display().to_string());
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Err(usage(
                "a PostgreSQL store is not available in this build (it comes with the scale-out feature)",
                "leave --store unset for the embedded SQLite store, or give a file path",
            ));
        }
        let path = PathBuf::from(location.trim_start_matches("sqlite://"));
        Store::open(&path)
            .await
            .map_err(|e| fail(e.to_string(), "set --store (or TABFLOW_STORE) to a writable file path"))
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
    /// Print the plan as tabflow-plan/1 JSON.
    #[arg(long)]
    json: bool,
    /// Also write the plan to this file.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Answer a question of the plan: q1=archive-all.
    #[arg(long = "answer", value_name = "ID=CHOICE")]
    answers: Vec<String>,
    /// Give the intent directly instead of a sentence (e.g. archive-stale-content).
    #[arg(long)]
    intent: Option<String>,
    /// A parameter of --intent: project=Finance.
    #[arg(long = "param", value_name = "K=V")]
    params: Vec<String>,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file written by `tabflow plan -o` (or a plan id from the store).
    plan: String,
    /// Approve destructive changes: `all`, or step/item ids (s2,s4 or item ids).
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
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
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
        return Ok(vec![Intent { name: name.clone(), params: map }]);
    }
    let parsed = tabflow_nl::parse(request, chrono::Utc::now().date_naive());
    Ok(parsed.intents.into_iter().map(|i| Intent { name: i.name, params: i.params }).collect())
}

/// Reads the site and builds + validates the plan.
pub async fn make_plan(
    session: &Session,
    request: &str,
    intents: Vec<Intent>,
    answers: BTreeMap<String, String>,
    policy: &Policy,
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
    };
    let draft = tabflow_workflows::plan(request, intents, &planner);
    let facts = Facts::from_site(&site, &signed_in);
    Ok(validate(draft, &facts, policy))
}

/// Re-validates a plan read from a file against the live site.
async fn revalidate(
    session: &Session,
    plan: Plan,
    policy: &Policy,
) -> anyhow::Result<Result<ValidatedPlan, Box<Plan>>> {
    let server = session.client.config().server.clone();
    let s = session.client.session().await;
    if !plan.site.id.is_empty() && plan.site.id != s.site_id {
        return Err(fail(
            format!(
                "plan {} was made for site '{}' ({}); tabflow is signed in to another site ({})",
                plan.id, plan.site.content_url, plan.site.id, s.site_id
            ),
            "connect to the plan's site (--server/--site), or make a new plan here",
        ));
    }
    let site = tabflow_client::snapshot::take(&session.client, &tabflow_client::snapshot::Options { usage: false })
        .await
        .map_err(|e| client_error(e, &server))?;
    let signed_in = site.users.iter().find(|u| u.id == s.user_id).map(|u| u.name.clone()).unwrap_or_default();
    let facts = Facts::from_site(&site, &signed_in);
    Ok(validate(plan, &facts, policy))
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1_048_576.0)
}

/// The plan for a person.
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
        if s.kind == "answer-query"
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
    let intents = intents_of(&request, &a.intent, &a.params)?;
    let policy = a.store.policy()?;
    let store = a.store.open().await?;
    let session = a.connect.open().await?;
    let result = make_plan(&session, &request, intents, answers, &policy).await;
    session.finish().await?;
    let (plan, ok) = match result? {
        Ok(v) => (v.into_plan(), true),
        Err(p) => (*p, false),
    };
    store.save_plan(&plan).await.map_err(|e| fail(e.to_string(), "check the state store"))?;
    if let Some(path) = &a.output {
        std::fs::write(path, plan.to_json())
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display()), "check the output path"))?;
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
        "reports": r.reports,
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
    }
    if matches!(r.status, RunStatus::Succeeded | RunStatus::Partial) {
        writeln!(out, "Undo     tabflow runs rollback {}", r.run_id)?;
    }
    Ok(())
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
        let selection = match (approve.as_deref(), yes) {
            (Some("all"), _) | (None, true) => Some(Selection::All),
            (Some(list), _) => Some(Selection::Items(
                list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<BTreeSet<_>>(),
            )),
            (None, false) => {
                if json {
                    None
                } else {
                    eprint!("{}", render(plan));
                    match prompt(&format!("Approve the {destructive} destructive changes? [all / s2,ITEM,… / no]")) {
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
                        Some(a) => Some(Selection::Items(a.split(',').map(|s| s.trim().to_string()).collect())),
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
        approval::decide(store, vp, &approver, Decision::Approve, selection, policy.approval_ttl_hours)
            .await
            .map_err(|e| usage(e.to_string(), "approve step ids (s2) or item ids listed by tabflow plan --json"))?;
        match approval::grant_for(store, vp, policy.required_approvers).await? {
            Ok(g) => grant = Some(g),
            Err(m) => {
                let why = match m {
                    Missing::NotEnoughApprovers { have, need } => {
                        format!("the policy needs {need} distinct approvers; {have} approved so far")
                    }
                    Missing::Rejected(who) => format!("{who} rejected this plan"),
                    Missing::Expired => "the approval expired".into(),
                    Missing::Stale => "the approval was for an older version of the plan".into(),
                    Missing::None => "no approval".into(),
                };
                if json {
                    println!(
                        "{}",
                        json!({"run_id": null, "status": "awaiting-approval", "plan_id": plan.id, "reason": why, "steps": [], "reports": []})
                    );
                }
                return Err(anyhow::Error::new(crate::exit::Failure {
                    message: format!("plan {} cannot run yet: {why}", plan.id),
                    hint: Some(
                        "another approver approves through the HTTP API or the terminal with the same plan".into(),
                    ),
                    code: Code::NeedsInput,
                }));
            }
        }
    }
    let (tx, printer) = progress_printer(json);
    let engine = Engine { client: &session.client, store, policy: policy.clone(), events: Some(tx) };
    let opts = RunOptions {
        actor: whoami(),
        concurrency: session.client.config().concurrency,
        acknowledge_irreversible: ack,
        crash_after_intents: std::env::var("TABFLOW_CRASH_AFTER").ok().and_then(|v| v.parse().ok()),
    };
    let result = engine.apply(vp, grant, &opts).await;
    drop(engine);
    let _ = printer.await;
    let report = result.map_err(|e| fail(e.to_string(), "see `tabflow runs list` and the audit log"))?;
    print_report(&report, json)?;
    Ok(code_of(report.status))
}

pub async fn apply_cmd(a: ApplyArgs) -> anyhow::Result<Code> {
    let policy = a.store.policy()?;
    let store = a.store.open().await?;
    let plan = if std::path::Path::new(&a.plan).exists() {
        let text = std::fs::read_to_string(&a.plan)
            .map_err(|e| fail(format!("cannot read {}: {e}", a.plan), "check the path"))?;
        Plan::from_json(&text)
            .map_err(|e| fail(format!("{}: {e}", a.plan), "make a fresh plan with `tabflow plan ... -o plan.json`"))?
    } else if a.plan.starts_with("p-") {
        store.plan(&a.plan).await.map_err(|e| fail(e.to_string(), "give a plan file or an id from `tabflow plan`"))?
    } else {
        return Err(usage(format!("{} is neither a plan file nor a plan id", a.plan), "tabflow apply plan.json"));
    };
    let session = a.connect.open().await?;
    let result = async {
        let vp = match revalidate(&session, plan, &policy).await? {
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
        approve_and_run(&session, &store, &policy, &vp, &a.approve, a.yes, a.reject, a.acknowledge_irreversible, a.json)
            .await
    }
    .await;
    session.finish().await?;
    store.close().await;
    result
}

pub async fn ask_cmd(a: AskArgs) -> anyhow::Result<Code> {
    let mut answers = parse_answers(&a.answers)?;
    let policy = a.store.policy()?;
    let store = a.store.open().await?;
    let intents = intents_of(&a.request, &None, &[])?;
    let session = a.connect.open().await?;
    let result = async {
        loop {
            let made = make_plan(&session, &a.request, intents.clone(), answers.clone(), &policy).await?;
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
                if !a.json {
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
                            println!("Answer with: tabflow ask \"{}\" --answer {}=CHOICE", a.request, q.id);
                        }
                        return Ok(Code::NeedsInput);
                    }
                }
            }
            if !plan.steps.iter().any(|s| s.is_write() && !s.changes.is_empty()) {
                store.save_plan(plan).await?;
                if a.json {
                    println!("{}", json!({"run_id": null, "status": "succeeded", "plan_id": plan.id, "steps": [], "reports": [], "plan": plan}));
                } else {
                    print!("{}", render(plan));
                    println!("Nothing to change.");
                }
                return Ok(Code::Ok);
            }
            if !a.json && (a.approve.is_some() || a.yes) {
                eprint!("{}", render(plan));
            }
            return approve_and_run(&session, &store, &policy, &vp, &a.approve, a.yes, false, a.acknowledge_irreversible, a.json).await;
        }
    }
    .await;
    session.finish().await?;
    store.close().await;
    result
}
