//! A run's progress on standard error, from the executor's events (never a timer).
//!
//! In a terminal: a status block redrawn in place (`indicatif::MultiProgress`), one line per
//! step — state icon, "Step 3/5", what it does or found, and for a step that changes items a
//! bar with "12/23", the rate and the time left — plus the reviewer's approval as a line of
//! its own before the step it covers, and failed or skipped items listed under their step.
//! Every line is cut to the terminal's width, never wrapped.
//!
//! Otherwise (a pipe, a file, `TERM=dumb`): plain lines appended as things happen, the
//! format scripts and tests read. With `--json`: nothing (the result is the JSON).

use std::collections::HashMap;
use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use tabflow_app::{Event, Plan};
use tabflow_engine::plan::{Effect, Step};

/// What a read step found, for a person: "Analyzed 847 workbooks (found 23 candidates)".
pub fn findings(step: &Step) -> String {
    let d = &step.details;
    let n = |k: &str| d.get(k).and_then(Value::as_u64);
    let noun = step
        .title
        .strip_prefix("Find ")
        .and_then(|t| t.split_whitespace().next())
        .map(str::to_string)
        .or_else(|| step.items.first().map(|i| format!("{}s", i.kind)))
        .unwrap_or_else(|| "items".into());
    match (n("scanned"), n("candidates")) {
        (Some(s), Some(c)) => format!("Analyzed {s} {noun} (found {c} candidates)"),
        (None, Some(c)) => format!("{} (found {c})", step.title),
        _ if !step.items.is_empty() => format!("{} (found {})", step.title, step.items.len()),
        _ => step.title.clone(),
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// One step as the plan has it.
struct StepInfo {
    number: usize,
    read: bool,
    title: String,
    findings: String,
}

/// The live block: a line per step (and per listed item under it).
struct Live {
    mp: MultiProgress,
    header: ProgressBar,
    rows: HashMap<String, ProgressBar>,
    /// The last line under each step (its row, or the last item listed under it).
    last: HashMap<String, ProgressBar>,
    listed: HashMap<String, usize>,
    rollback: Option<ProgressBar>,
    total: usize,
}

const LISTED_PER_STEP: usize = 8;

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn text_style() -> ProgressStyle {
    style("{prefix}{wide_msg}")
}

fn bar_style() -> ProgressStyle {
    style("{prefix}{wide_msg} {bar:24} {pos:>4}/{len:<4} {rate:>7} {eta:>4}")
        .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let r = s.per_sec();
            let _ = if r.is_finite() && s.pos() > 0 { write!(w, "{r:.0}/s") } else { write!(w, "") };
        })
        .progress_chars("█▓░")
}

fn line(prefix: String, msg: String) -> ProgressBar {
    let pb = ProgressBar::hidden().with_style(text_style());
    pb.set_prefix(prefix);
    pb.set_message(msg);
    pb
}

impl Live {
    fn new(plan: Option<&Plan>, confirmations: &[(String, String)]) -> Live {
        let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = mp.add(line(
            String::new(),
            match plan {
                Some(p) => format!("Workflow progress: {}", crate::term::clean(p.request.lines().next().unwrap_or(""))),
                None => "Progress".into(),
            },
        ));
        header.tick();
        let mut live = Live {
            mp,
            header,
            rows: HashMap::new(),
            last: HashMap::new(),
            listed: HashMap::new(),
            rollback: None,
            total: plan.map(|p| p.steps.len()).unwrap_or(0),
        };
        if let Some(plan) = plan {
            for (i, s) in plan.steps.iter().enumerate() {
                if let Some((_, text)) = confirmations.iter().find(|(id, _)| *id == s.id) {
                    let c = live.mp.add(line("  ✅ Approval   ".into(), crate::term::clean(text)));
                    c.finish();
                }
                let row = live.mp.add(line(
                    format!("  ⏳ Step {}/{}  ", i + 1, plan.steps.len()),
                    format!("Pending — {}", crate::term::clean(&s.title)),
                ));
                row.tick();
                live.last.insert(s.id.clone(), row.clone());
                live.rows.insert(s.id.clone(), row);
            }
        }
        live
    }

    fn row(&mut self, step_id: &str, number: usize, total: usize) -> ProgressBar {
        if let Some(r) = self.rows.get(step_id) {
            return r.clone();
        }
        let r = self.mp.add(line(format!("  ⏳ Step {number}/{total}  "), String::new()));
        self.rows.insert(step_id.to_string(), r.clone());
        self.last.insert(step_id.to_string(), r.clone());
        r
    }

    /// Lists an item under its step (at most a few per step, then a count).
    fn list(&mut self, step_id: &str, text: String) {
        let n = self.listed.entry(step_id.to_string()).or_insert(0);
        *n += 1;
        if *n > LISTED_PER_STEP + 1 {
            return;
        }
        let text =
            if *n == LISTED_PER_STEP + 1 { "… and more (the run's report lists every item)".into() } else { text };
        let Some(after) = self.last.get(step_id).cloned() else { return };
        let pb = self.mp.insert_after(&after, line("        ".into(), text));
        pb.finish();
        self.last.insert(step_id.to_string(), pb);
    }

    fn finish(&self) {
        for r in self.rows.values() {
            if !r.is_finished() {
                // A step the run never reached (it stopped, or rolled back) says so.
                if let Some(title) = r.message().strip_prefix("Pending — ") {
                    r.set_prefix(r.prefix().replace('⏳', "⛔"));
                    r.set_message(format!("Not run — {title}"));
                }
                r.finish();
            }
        }
        if let Some(r) = &self.rollback {
            r.finish();
        }
        self.header.finish();
    }
}

/// Shows a run's events until the engine is done.
pub struct Progress {
    json: bool,
    steps: HashMap<String, StepInfo>,
    live: Option<Live>,
}

impl Progress {
    /// For a run of `plan` (none: a resume or rollback of a stored run); `confirmations`
    /// are (step id, what the reviewer approved) lines shown before their step.
    pub fn new(plan: Option<&Plan>, confirmations: &[(String, String)], json: bool) -> Progress {
        let steps = plan
            .map(|p| {
                p.steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        (
                            s.id.clone(),
                            StepInfo {
                                number: i + 1,
                                read: s.effect == Effect::Read,
                                title: s.title.clone(),
                                findings: findings(s),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let live = (!json && crate::ui::live_stderr()).then(|| Live::new(plan, confirmations));
        Progress { json, steps, live }
    }

    /// Draws (or prints) every event of `events` until the run ends.
    pub async fn follow(mut self, mut events: tabflow_app::Events) {
        while let Some(e) = events.next().await {
            if self.json {
                continue;
            }
            match &mut self.live {
                Some(_) => self.draw(&e),
                None => self.print(&e),
            }
        }
        if let Some(l) = &self.live {
            l.finish();
        }
    }

    fn draw(&mut self, e: &Event) {
        let Some(live) = self.live.as_mut() else { return };
        let clean = |s: &str| crate::term::clean(s);
        match e {
            Event::RunStarted { run_id, request, steps, .. } => {
                live.total = *steps;
                live.header.set_message(format!(
                    "Workflow progress: {}  (run {run_id})",
                    clean(request.lines().next().unwrap_or(""))
                ));
            }
            Event::StepStarted { index, total, step_id, title, items, effect, .. } => {
                let info = self.steps.get(step_id);
                let row = live.row(step_id, *index, *total);
                let read = info.map(|i| i.read).unwrap_or(effect == "read");
                row.set_prefix(format!("  🔄 Step {index}/{total}  "));
                if read || *items == 0 {
                    row.set_message(format!("{}…", clean(title)));
                    row.tick();
                } else {
                    row.set_style(bar_style());
                    row.set_length(*items as u64);
                    row.reset();
                    row.set_message(format!("{}  ", clean(title)));
                }
            }
            Event::ItemFinished { step_id, k, name, outcome, detail, .. } => {
                if let Some(row) = live.rows.get(step_id) {
                    row.set_position(*k as u64);
                }
                if outcome != "done" && outcome != "already-applied" {
                    let mark = if outcome == "failed" { "✗" } else { "–" };
                    live.list(step_id, format!("{mark} {outcome}: {} — {}", clean(name), clean(detail)));
                }
            }
            Event::StepFinished { step_id, done, skipped, failed, elapsed_ms, .. } => {
                let info = self.steps.get(step_id);
                let number = info.map(|i| i.number).unwrap_or(0);
                let row = live.row(step_id, number, live.total);
                let mark = if *failed > 0 { "❌" } else { "✅" };
                row.set_style(text_style());
                row.set_prefix(format!("  {mark} Step {number}/{}  ", live.total));
                // What counts first: a narrow terminal cuts the title, not the numbers.
                let text = match info {
                    Some(i) if i.read => format!("{}  {}", clean(&i.findings), secs(*elapsed_ms)),
                    _ => format!(
                        "{done} done{}{} in {} — {}",
                        if *skipped > 0 { format!(", {skipped} skipped") } else { String::new() },
                        if *failed > 0 { format!(", {failed} failed") } else { String::new() },
                        secs(*elapsed_ms),
                        info.map(|i| clean(&i.title)).unwrap_or_else(|| step_id.clone())
                    ),
                };
                row.set_message(text);
                row.finish();
            }
            Event::RollbackStarted { reason, items, .. } => {
                let pb = live
                    .mp
                    .add(ProgressBar::new(*items as u64).with_style(bar_style()).with_prefix("  ⏪ Rolling back  "));
                pb.set_message(format!("{}  ", clean(reason)));
                pb.tick();
                live.rollback = Some(pb);
            }
            Event::ItemRestored { k, name, outcome, detail, .. } => {
                if let Some(pb) = &live.rollback {
                    pb.set_position(*k as u64);
                    if outcome != "restored" {
                        let l = live.mp.insert_after(
                            pb,
                            line("        ".into(), format!("✗ NOT restored: {} — {}", clean(name), clean(detail))),
                        );
                        l.finish();
                    }
                }
            }
            // The run's summary follows on standard output.
            Event::RunFinished { .. } => live.finish(),
        }
    }

    /// The plain lines (stable: scripts and tests read them).
    fn print(&self, e: &Event) {
        let line = match e {
            Event::RunStarted { run_id, request, steps, .. } => {
                format!("Workflow progress: {request}  (run {run_id}, {steps} steps)")
            }
            Event::StepStarted { index, total, title, items, .. } => {
                format!("🔄 Step {index}/{total}  {title}  (0/{items})")
            }
            Event::ItemFinished { k, m, name, outcome, detail, .. } => {
                if outcome == "done" || outcome == "already-applied" {
                    if *k == *m || k % 10 == 0 { format!("   {k}/{m} complete") } else { return }
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
                match self.steps.get(step_id) {
                    // A read step says what it found, not "0 done".
                    Some(i) if i.read => format!("{mark} {step_id}: {}  ({})", i.findings, secs(*elapsed_ms)),
                    _ => format!(
                        "{mark} {step_id}: {done} done, {skipped} skipped, {failed} failed  ({})",
                        secs(*elapsed_ms)
                    ),
                }
            }
            Event::RollbackStarted { reason, items, .. } => format!("↩️  Rolling back {items} items: {reason}"),
            Event::ItemRestored { k, m, name, outcome, detail, .. } => {
                if outcome == "restored" {
                    if *k == *m || k % 10 == 0 { format!("   {k}/{m} restored") } else { return }
                } else {
                    format!("   {k}/{m} NOT restored: {name} — {detail}")
                }
            }
            Event::RunFinished { status, .. } => format!("Run finished: {status}"),
        };
        let _ = writeln!(crate::term::stderr(), "{line}");
    }
}
