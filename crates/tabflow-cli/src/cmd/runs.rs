//! `tabflow runs list|show|resume|rollback|purge` and `tabflow audit verify|export`: the
//! terminal's front end over the application service (`tabflow_app::App`).

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::json;
use tabflow_app::RunStatus;
use tabflow_engine::store::Phase;

use super::connect::Connect;
use super::workflow::{StoreArgs, open_app, print_report, whoami};
use crate::exit::{self, Code, usage};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs, newest first.
    List(ListArgs),
    /// One run: its steps, journal and outcome.
    Show(IdArgs),
    /// Finish an interrupted run (or its rollback) after a crash.
    Resume(ActArgs),
    /// Undo a run: compensate in reverse order, verify each item by reading it back.
    Rollback(ActArgs),
    /// Really delete staged deletes whose grace period has passed (backups must exist).
    Purge(PurgeArgs),
    /// Render a run's report again (Markdown on stdout by default).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    id: String,
    /// md, html, csv or json (default: md, or the extension of -o).
    #[arg(long)]
    format: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    id: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ActArgs {
    id: String,
    #[arg(long)]
    json: bool,
    /// Do not ask for confirmation (a rollback without a terminal needs it).
    #[arg(long)]
    yes: bool,
    /// Rollback only: queue the approved compensations for the `tabflow worker`s sharing this
    /// (PostgreSQL) store instead of undoing them here; the last worker closes the rollback.
    #[arg(long)]
    shared: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Purge now, ignoring the grace period (the backups must still exist).
    #[arg(long)]
    now: bool,
    #[arg(long)]
    json: bool,
    /// Do not ask for confirmation (a purge that deletes anything needs it without a terminal).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    connect: Connect,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(c: Command) -> anyhow::Result<Code> {
    match c {
        Command::List(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let runs = app.runs(a.limit).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let runs = runs?;
            let mut out = crate::term::stdout();
            if a.json {
                let v: Vec<_> = runs
                    .iter()
                    .map(|r| json!({"id": r.id, "status": r.status.as_str(), "request": r.request, "created_at": r.created_at, "plan_id": r.plan_id, "finished_at": r.finished_at}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else if runs.is_empty() {
                writeln!(out, "No runs yet.")?;
            } else {
                for r in runs {
                    writeln!(
                        out,
                        "{}  {:<12} {}  {}",
                        r.id,
                        r.status.as_str(),
                        r.created_at.format("%Y-%m-%d %H:%M"),
                        r.request
                    )?;
                }
            }
            Ok(Code::Ok)
        }
        Command::Show(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let detail = app.run(&a.id).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let tabflow_app::RunDetail { run, journal, plan, template } = detail?;
            let mut out = crate::term::stdout();
            if a.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&json!({"run": run, "journal": journal, "template": template}))?
                )?;
            } else {
                writeln!(out, "Run {} · {} · {}", run.id, run.status.as_str(), run.request)?;
                writeln!(out, "  plan {}  by {}  started {}", run.plan_id, run.actor, run.created_at)?;
                if let Some(t) = &template {
                    writeln!(out, "  template {t}")?;
                }
                let mut counts = std::collections::BTreeMap::new();
                for e in &journal {
                    *counts.entry(e.phase.as_str()).or_insert(0usize) += 1;
                }
                writeln!(
                    out,
                    "  journal: {}",
                    counts.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
                )?;
                // Each item's outcome: its last journal entry, with the item's name from the plan.
                let mut order: Vec<(&str, &str)> = vec![];
                let mut last: std::collections::HashMap<(&str, &str), &tabflow_engine::store::Entry> =
                    std::collections::HashMap::new();
                for e in &journal {
                    let key = (e.step_id.as_str(), e.item_id.as_str());
                    if last.insert(key, e).is_none() {
                        order.push(key);
                    }
                }
                for key in order.iter().take(40) {
                    let e = last[key];
                    let name = plan
                        .as_ref()
                        .and_then(|p| p.steps.iter().find(|s| s.id == e.step_id))
                        .and_then(|s| s.item(&e.item_id))
                        .map(|i| i.name.clone())
                        .unwrap_or_default();
                    let detail = match e.phase {
                        Phase::Intent | Phase::CompensateIntent => {
                            "interrupted after this was announced (resume or roll back)".to_string()
                        }
                        _ => match (e.detail.strip_prefix("recreated:"), e.detail.strip_prefix("created:")) {
                            (Some(new), _) => format!("re-created as {new}"),
                            (_, Some(new)) => format!("created {new}"),
                            _ => e.detail.clone(),
                        },
                    };
                    let sep = if detail.is_empty() { "" } else { ": " };
                    writeln!(
                        out,
                        "  {} {} {:?} ({}) {}{sep}{detail}",
                        e.step_id,
                        e.item_type,
                        name,
                        e.item_id,
                        e.phase.as_str()
                    )?;
                }
                if order.len() > 40 {
                    writeln!(out, "  … and {} more items (--json has the whole journal)", order.len() - 40)?;
                }
            }
            Ok(Code::Ok)
        }
        Command::Report(a) => {
            let format = match (&a.format, &a.output) {
                (Some(f), _) => tabflow_workflows::report::Format::parse(f).ok_or_else(|| {
                    usage(format!("unknown report format '{f}'"), "use --format md, html, csv or json")
                })?,
                (None, Some(p)) => super::report::format_of(p)?,
                (None, None) => tabflow_workflows::report::Format::Markdown,
            };
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let r = app.run_report(&a.id).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let text = r?.render(format);
            match &a.output {
                Some(p) => super::report::write(p, &text)?,
                None => crate::term::stdout().write_all(text.as_bytes())?,
            }
            Ok(Code::Ok)
        }
        Command::Resume(a) => act(a, false).await,
        Command::Rollback(a) => act(a, true).await,
        Command::Purge(a) => {
            let app = open_app(Some(&a.connect), &a.store, Default::default(), Default::default()).await?;
            if !a.yes {
                match confirm_purge(&app, a.now, a.json).await {
                    Ok(true) => {}
                    Ok(false) => {
                        app.close().await.map_err(exit::app)?;
                        errln!("Not purged; nothing was deleted.");
                        return Ok(Code::NeedsInput);
                    }
                    Err(e) => {
                        let _ = app.close().await;
                        return Err(e);
                    }
                }
            }
            let r = app.purge(&whoami(), a.now).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let p = r?;
            if a.json {
                outln!(
                    "{}",
                    json!({"purged": p.purged, "kept": p.kept, "waiting": p.waiting, "other_site": p.other_site})
                );
            } else {
                outln!(
                    "Purged {} staged deletes; kept {}; {} still in their grace period.",
                    p.purged.len(),
                    p.kept.len(),
                    p.waiting.len()
                );
                for x in &p.purged {
                    outln!("  deleted {x}");
                }
                for k in &p.kept {
                    outln!("  kept    {k}");
                }
                for w in p.waiting.iter().take(20) {
                    outln!("  waiting {w}");
                }
                for o in &p.other_site {
                    outln!("  skipped {o} (connect to that site to purge it)");
                }
                if p.waiting.len() > 20 {
                    outln!("  … and {} more (--json lists all)", p.waiting.len() - 20);
                }
                if !p.waiting.is_empty() {
                    outln!(
                        "Next     `tabflow runs purge --now` deletes them before their day; a rollback of their run brings them back."
                    );
                }
            }
            Ok(Code::Ok)
        }
    }
}

async fn act(a: ActArgs, rollback: bool) -> anyhow::Result<Code> {
    if a.shared && !rollback {
        return Err(usage(
            "--shared is for `tabflow runs rollback`: a shared run is resumed by its workers",
            format!("start `tabflow worker` on the store to finish run {}", a.id),
        ));
    }
    let delivery = super::workflow::notify_delivery()?;
    let policy = a.store.policy()?;
    let app = open_app(Some(&a.connect), &a.store, policy, delivery).await?;
    let mut plan_id = None;
    let mut signals = None;
    let result = async {
        let handle = if rollback {
            // A rollback is a plan of its own: made, shown, confirmed, then approved by the
            // terminal's operator acting alone (as `ask --approve all`) and run.
            let vp = app.plan_rollback(&a.id, &whoami(), "terminal").await.map_err(exit::app)?;
            let plan = vp.into_plan();
            plan_id = Some(plan.id.clone());
            if !a.yes && !confirm_rollback(&app, &a.id, &plan, a.json).await? {
                return Ok(None);
            }
            let approver = tabflow_app::Approver::terminal(whoami());
            app.approve(&approver, &plan.id, tabflow_app::Decision::Approve, tabflow_app::Selection::All)
                .await
                .map_err(exit::app)?;
            let options = tabflow_app::StartOptions { shared: a.shared, ..Default::default() };
            match app.start_run(&plan.id, &whoami(), options).await.map_err(exit::app)? {
                tabflow_app::Start::Running(h) => h,
                _ => {
                    return Err(exit::fail(
                        format!("rollback plan {} started no run", plan.id),
                        "see `tabflow runs list`",
                    ));
                }
            }
        } else {
            let cancel = tabflow_app::Cancel::new();
            let handle = app.resume(&a.id, &whoami(), cancel.clone()).await.map_err(exit::app)?;
            let live = !a.json && crate::ui::live_stderr();
            if !live && !a.json {
                errln!("Resuming run {} (Ctrl-C stops it between items; twice stops at once).", a.id);
            }
            signals = Some(super::workflow::stop_on_ctrl_c(cancel, a.id.clone(), !live));
            handle
        };
        if a.shared {
            return handle.wait().await.map_err(exit::app).map(Some);
        }
        if !a.json && crate::ui::live_stderr() {
            crate::progress::Progress::new(None, &[], a.json).follow(handle.subscribe()).await;
        } else {
            let mut events = handle.subscribe();
            while let Some(e) = events.next().await {
                if !a.json
                    && let tabflow_app::Event::ItemRestored { k, m, name, outcome, detail, .. } = &e
                    && (outcome != "restored" || k == m)
                {
                    errln!("   {k}/{m} {outcome}: {name} {detail}");
                }
            }
        }
        handle.wait().await.map_err(exit::app).map(Some)
    }
    .await;
    if let Some(s) = signals {
        s.abort();
    }
    let closed = app.close().await.map_err(exit::app);
    let outcome = result?;
    closed?;
    let Some(outcome) = outcome else {
        errln!("Not rolled back; nothing was changed.");
        return Ok(Code::NeedsInput);
    };
    for w in &outcome.warnings {
        errln!("warning: {w}");
    }
    let report = outcome.report;
    if a.shared && report.status == RunStatus::RollingBack {
        let n = report.skipped.len();
        if a.json {
            outln!(
                "{}",
                json!({"run_id": report.run_id, "status": "queued", "rollback_plan": plan_id, "shared": true, "left_as_they_are": n})
            );
        } else {
            outln!(
                "Rollback of run {} queued for the workers sharing this store (rollback plan {}): start `tabflow worker` on it; `tabflow worker status` shows the progress.",
                report.run_id,
                plan_id.as_deref().unwrap_or("-")
            );
        }
        return Ok(Code::Ok);
    }
    match (&plan_id, a.json) {
        (Some(p), true) => {
            let mut v = super::workflow::run_json(&report);
            if let Some(o) = v.as_object_mut() {
                o.insert("rollback_plan".into(), json!(p));
            }
            outln!("{}", serde_json::to_string_pretty(&v)?);
        }
        (Some(p), false) => {
            outln!("Rollback plan {p} (approved here by {}).", whoami());
            print_report(&report, false)?;
        }
        (None, _) => print_report(&report, a.json)?,
    }
    Ok(match report.status {
        RunStatus::RolledBack if rollback => Code::Ok,
        RunStatus::RolledBack => Code::RolledBack,
        RunStatus::Succeeded | RunStatus::Partial => Code::Ok,
        RunStatus::Interrupted => Code::Interrupted,
        _ => Code::Error,
    })
}

/// What a rollback of `run_id` will undo, shown before it starts: its rollback plan's items,
/// by step. At a terminal the person confirms (No by default); without one the rollback
/// needs --yes (exit 3 otherwise). Answers whether to go ahead.
async fn confirm_rollback(
    app: &tabflow_app::App,
    run_id: &str,
    plan: &tabflow_app::Plan,
    json: bool,
) -> anyhow::Result<bool> {
    let detail = app.run(run_id).await.map_err(exit::app)?;
    let total: usize = plan.steps.iter().map(|s| s.items.len()).sum();
    let what = format!(
        "Rolling back run {} puts back {total} changed items, each verified by reading it back (rollback plan {})",
        detail.run.id, plan.id
    );
    let about = format!("({}: {})", detail.run.status.as_str(), detail.run.request.lines().next().unwrap_or(""));
    if json || !crate::ui::interactive() {
        return Err(anyhow::Error::new(crate::exit::Failure {
            message: format!("{what} {about}; a rollback changes the site and needs a confirmation"),
            hint: Some(format!("run it in a terminal to confirm, or add --yes: tabflow runs rollback {run_id} --yes")),
            code: Code::NeedsInput,
        }));
    }
    let width = crate::ui::width_err();
    errln!("{}", crate::ui::fit(&what, width));
    errln!("{}", crate::ui::fit(&format!("  {about}"), width));
    for s in &plan.steps {
        errln!("{}", crate::ui::fit(&format!("  {:>5} items  {}", s.items.len(), s.title), width));
    }
    Ok(matches!(
        crate::ui::confirm(
            &format!("Roll back {total} items?"),
            false,
            "y to roll back · Enter or n keeps the site as it is"
        ),
        crate::ui::Answer::Given(true)
    ))
}

/// What a purge will delete for good, shown before it starts: the staged items whose grace
/// period has passed (all with `--now`), by run. Nothing due: nothing to confirm. At a
/// terminal the person confirms (No by default); without one the purge needs --yes (exit 3
/// otherwise). Answers whether to go ahead.
async fn confirm_purge(app: &tabflow_app::App, now: bool, json: bool) -> anyhow::Result<bool> {
    let staged =
        app.store().staged().await.map_err(|e| {
            exit::fail(format!("cannot read the staged deletes: {e}"), "check the state store (--store)")
        })?;
    let at = app.clock().now();
    let due: Vec<_> = staged.iter().filter(|s| s.purged_at.is_none() && (now || s.purge_after <= at)).collect();
    if due.is_empty() {
        return Ok(true);
    }
    let mut by_run: Vec<(String, usize)> = vec![];
    for s in &due {
        match by_run.iter_mut().find(|(r, _)| *r == s.run_id) {
            Some((_, n)) => *n += 1,
            None => by_run.push((s.run_id.clone(), 1)),
        }
    }
    let what = format!(
        "Purging deletes {} staged items for good ({}), each only if its backup verifies and it is unchanged in quarantine",
        due.len(),
        if now { "--now: grace periods ignored" } else { "their grace period has passed" }
    );
    let flags = if now { " --now" } else { "" };
    if json || !crate::ui::interactive() {
        return Err(anyhow::Error::new(crate::exit::Failure {
            message: format!("{what}; a purge deletes content and needs a confirmation"),
            hint: Some(format!("run it in a terminal to confirm, or add --yes: tabflow runs purge{flags} --yes")),
            code: Code::NeedsInput,
        }));
    }
    let width = crate::ui::width_err();
    errln!("{}", crate::ui::fit(&what, width));
    for (run, n) in &by_run {
        errln!("{}", crate::ui::fit(&format!("  {n:>5} items  staged by run {run}"), width));
    }
    for s in due.iter().take(10) {
        errln!("{}", crate::ui::fit(&format!("        {} {} ({})", s.item_type, s.name, s.item_id), width));
    }
    if due.len() > 10 {
        errln!("        … and {} more", due.len() - 10);
    }
    Ok(matches!(
        crate::ui::confirm(
            &format!("Delete {} items for good?", due.len()),
            false,
            "y to delete · Enter or n keeps them in quarantine (a rollback of their run still brings them back)"
        ),
        crate::ui::Answer::Given(true)
    ))
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: names any edited, deleted or reordered record.
    Verify(AuditArgs),
    /// Export every record for compliance.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_parser = ["csv", "json"], default_value = "json")]
    format: String,
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn audit_run(c: AuditCommand) -> anyhow::Result<Code> {
    match c {
        AuditCommand::Verify(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let v = app.audit_verify().await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let v = v?;
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else if v.ok {
                let anchored = match &v.anchor {
                    Some(a) => match &a.head {
                        Some(h) => format!("; anchored head: record {} in {}", h.records, a.path),
                        None => format!("; anchor {} has no head yet (made by the next audit write)", a.path),
                    },
                    None => String::new(),
                };
                outln!("audit log intact: {} records, hash chain verified{anchored}", v.records);
            } else {
                outln!("audit log TAMPERED: {} problem(s) in {} records", v.problems.len(), v.records);
                for p in &v.problems {
                    if p.seq > 0 {
                        outln!("  record {}: {}", p.seq, p.message);
                    } else {
                        outln!("  anchor: {}", p.message);
                    }
                }
            }
            if let (false, Some(h)) = (v.ok, &v.hint) {
                errln!("hint: {h}");
            }
            Ok(if v.ok { Code::Ok } else { Code::Error })
        }
        AuditCommand::Export(a) => {
            let app = open_app(None, &a.store, Default::default(), Default::default()).await?;
            let text = app.audit_export(&a.format).await.map_err(exit::app);
            app.close().await.map_err(exit::app)?;
            let text = text?;
            match a.output {
                Some(p) => tabflow_engine::private::write(&p, text)
                    .map_err(|e| exit::fail(format!("cannot write {}: {e}", p.display()), "check the path"))?,
                None => out!("{text}"),
            }
            Ok(Code::Ok)
        }
    }
}
