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
use std::time::{Duration, Instant};

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

const LISTED_PER_STEP: usize = 8;
/// Columns of a step's bar.
const BAR: usize = 20;

/// A bar's state: `pos` of `len`, started at `since` (time into the run), last moved at `now`.
#[derive(Debug, Clone)]
struct Bar {
    pos: u64,
    len: u64,
    since: Duration,
    now: Duration,
}

impl Bar {
    fn new(len: u64, at: Duration) -> Bar {
        Bar { pos: 0, len, since: at, now: at }
    }

    /// "████████░░░░  12/23   31/s   1s": the bar, the count, the rate and the time left.
    fn render(&self) -> String {
        let filled = if self.len == 0 { BAR } else { (self.pos.min(self.len) as usize * BAR) / self.len as usize };
        let elapsed = self.now.saturating_sub(self.since).as_secs_f64();
        let rate = (elapsed > 0.0 && self.pos > 0).then(|| self.pos as f64 / elapsed);
        let rate_text = rate.map(|r| format!("{r:.0}/s")).unwrap_or_default();
        let eta = rate
            .map(|r| format!("{}s", ((self.len.saturating_sub(self.pos)) as f64 / r).ceil() as u64))
            .unwrap_or_default();
        format!(
            "{}{} {:>4}/{:<4} {:>6} {:>4}",
            "█".repeat(filled),
            "░".repeat(BAR - filled),
            self.pos,
            self.len,
            rate_text,
            eta
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending,
    Running,
    Done,
    Failed,
    NotRun,
}

impl State {
    fn icon(self) -> &'static str {
        match self {
            State::Pending => "⏳",
            State::Running => "🔄",
            State::Done => "✅",
            State::Failed => "❌",
            State::NotRun => "⛔",
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    /// A step: its number, state, text and (while it changes items) its bar.
    Step { id: String, number: usize, total: usize, state: State, text: String, bar: Option<Bar> },
    /// Anything else: the reviewer's approval, an item listed under its step, the rollback.
    Text { prefix: String, text: String, bar: Option<Bar> },
}

/// One line of the block, with a key that stays the same while it is redrawn.
#[derive(Debug, Clone)]
struct Line {
    key: usize,
    kind: Kind,
}

/// The status block as data: what a run looks like so far, from its events. Rendering it
/// ([`Block::render`]) is pure: the same block at the same width gives the same lines, so it
/// is drawn in place at a terminal and compared in snapshot tests.
pub struct Block {
    request: String,
    run_id: Option<String>,
    stopping: bool,
    /// The run is over (its last event came).
    ended: bool,
    lines: Vec<Line>,
    next_key: usize,
    total: usize,
    steps: HashMap<String, StepInfo>,
    listed: HashMap<String, usize>,
}

impl Block {
    /// The block of a run of `plan` (none: a resume or rollback of a stored run), every step
    /// pending; `confirmations` are (step id, what the reviewer approved) lines shown before
    /// their step.
    pub fn new(plan: Option<&Plan>, confirmations: &[(String, String)]) -> Block {
        let mut b = Block {
            request: plan.map(|p| p.request.lines().next().unwrap_or("").to_string()).unwrap_or_default(),
            run_id: None,
            stopping: false,
            ended: false,
            lines: vec![],
            next_key: 0,
            total: plan.map(|p| p.steps.len()).unwrap_or(0),
            steps: step_infos(plan),
            listed: HashMap::new(),
        };
        if let Some(plan) = plan {
            for (i, s) in plan.steps.iter().enumerate() {
                if let Some((_, text)) = confirmations.iter().find(|(id, _)| *id == s.id) {
                    b.push(Kind::Text { prefix: "✅ Approval  ".into(), text: text.clone(), bar: None });
                }
                b.push(Kind::Step {
                    id: s.id.clone(),
                    number: i + 1,
                    total: plan.steps.len(),
                    state: State::Pending,
                    text: format!("Pending — {}", s.title),
                    bar: None,
                });
            }
        }
        b
    }

    fn push(&mut self, kind: Kind) {
        self.insert(self.lines.len(), kind);
    }

    fn insert(&mut self, at: usize, kind: Kind) {
        self.lines.insert(at, Line { key: self.next_key, kind });
        self.next_key += 1;
    }

    fn step_at(&self, step_id: &str) -> Option<usize> {
        self.lines.iter().position(|l| matches!(&l.kind, Kind::Step { id, .. } if id == step_id))
    }

    /// The step's line (added at the end for a step the plan did not list).
    fn step_line(&mut self, step_id: &str, number: usize, total: usize) -> usize {
        match self.step_at(step_id) {
            Some(i) => i,
            None => {
                self.push(Kind::Step {
                    id: step_id.to_string(),
                    number,
                    total,
                    state: State::Pending,
                    text: String::new(),
                    bar: None,
                });
                self.lines.len() - 1
            }
        }
    }

    /// Lists an item under its step (at most a few per step, then a count).
    fn list(&mut self, step_id: &str, text: String) {
        let n = self.listed.entry(step_id.to_string()).or_insert(0);
        *n += 1;
        let n = *n;
        if n > LISTED_PER_STEP + 1 {
            return;
        }
        let text =
            if n == LISTED_PER_STEP + 1 { "… and more (the run's report lists every item)".into() } else { text };
        let Some(at) = self.step_at(step_id) else { return };
        self.insert(at + n, Kind::Text { prefix: "      ".into(), text, bar: None });
    }

    /// The run was asked to stop (Ctrl-C): the header says so.
    pub fn stopping(&mut self) {
        self.stopping = true;
    }

    /// Takes in one event that happened `at` into the run.
    pub fn apply(&mut self, e: &Event, at: Duration) {
        match e {
            Event::RunStarted { run_id, request, steps, .. } => {
                self.total = *steps;
                self.run_id = Some(run_id.clone());
                self.request = request.lines().next().unwrap_or("").to_string();
            }
            Event::StepStarted { index, total, step_id, title, items, effect, .. } => {
                let read = self.steps.get(step_id).map(|i| i.read).unwrap_or(effect == "read");
                let i = self.step_line(step_id, *index, *total);
                if let Kind::Step { state, text, bar, number, .. } = &mut self.lines[i].kind {
                    *state = State::Running;
                    *number = *index;
                    if read || *items == 0 {
                        *text = format!("{title}…");
                        *bar = None;
                    } else {
                        *text = title.clone();
                        *bar = Some(Bar::new(*items as u64, at));
                    }
                }
            }
            Event::ItemFinished { step_id, k, name, outcome, detail, .. } => {
                if let Some(i) = self.step_at(step_id)
                    && let Kind::Step { bar: Some(b), .. } = &mut self.lines[i].kind
                {
                    b.pos = *k as u64;
                    b.now = at;
                }
                if outcome != "done" && outcome != "already-applied" {
                    let mark = if outcome == "failed" { "✗" } else { "–" };
                    self.list(step_id, format!("{mark} {outcome}: {name} — {detail}"));
                }
            }
            Event::StepFinished { step_id, done, skipped, failed, elapsed_ms, .. } => {
                let info = self.steps.get(step_id);
                let number = info.map(|i| i.number).unwrap_or(0);
                // What counts first: a narrow terminal cuts the title, not the numbers.
                let new_text = match info {
                    Some(i) if i.read => format!("{}  {}", i.findings, secs(*elapsed_ms)),
                    _ => format!(
                        "{done} done{}{} in {} — {}",
                        if *skipped > 0 { format!(", {skipped} skipped") } else { String::new() },
                        if *failed > 0 { format!(", {failed} failed") } else { String::new() },
                        secs(*elapsed_ms),
                        info.map(|i| i.title.clone()).unwrap_or_else(|| step_id.clone())
                    ),
                };
                let total = self.total;
                let title = info.map(|i| i.title.clone()).unwrap_or_else(|| step_id.clone());
                let stopping = self.stopping;
                let i = self.step_line(step_id, number, total);
                if let Kind::Step { state, text, bar, .. } = &mut self.lines[i].kind {
                    let finished = (done + skipped + failed) as u64;
                    match bar {
                        // Stopped on Ctrl-C before every item was reached.
                        Some(b) if stopping && finished < b.len => {
                            *state = State::NotRun;
                            *text = format!("Stopped at {finished}/{} — {title}", b.len);
                        }
                        _ => {
                            *state = if *failed > 0 { State::Failed } else { State::Done };
                            *text = new_text;
                        }
                    }
                    *bar = None;
                }
            }
            Event::RollbackStarted { reason, items, .. } => {
                self.push(Kind::Text {
                    prefix: "⏪ Rolling back ".into(),
                    text: reason.clone(),
                    bar: Some(Bar::new(*items as u64, at)),
                });
            }
            Event::ItemRestored { k, name, outcome, detail, .. } => {
                let at_line = self.lines.iter().rposition(|l| matches!(&l.kind, Kind::Text { bar: Some(_), .. }));
                if let Some(i) = at_line {
                    if let Kind::Text { bar: Some(b), .. } = &mut self.lines[i].kind {
                        b.pos = *k as u64;
                        b.now = at;
                    }
                    if outcome != "restored" {
                        self.insert(
                            i + 1,
                            Kind::Text {
                                prefix: "      ".into(),
                                text: format!("✗ NOT restored: {name} — {detail}"),
                                bar: None,
                            },
                        );
                    }
                }
            }
            Event::RunFinished { .. } => self.finish(),
        }
    }

    /// The run ended: a step it never reached (it stopped, or rolled back) says so.
    pub fn finish(&mut self) {
        self.ended = true;
        for l in &mut self.lines {
            if let Kind::Step { state, text, bar, .. } = &mut l.kind
                && matches!(state, State::Pending | State::Running)
            {
                let title = text.strip_prefix("Pending — ").map(str::to_string).unwrap_or_else(|| text.clone());
                let title = title.trim_end_matches('…');
                *text = match (&state, &bar) {
                    // Stopped half-way (Ctrl-C): how far it got.
                    (State::Running, Some(b)) => format!("Stopped at {}/{} — {title}", b.pos, b.len),
                    (State::Running, None) => format!("Stopped — {title}"),
                    _ => format!("Not run — {title}"),
                };
                *state = State::NotRun;
                *bar = None;
            }
        }
    }

    /// The block's first line.
    fn header(&self) -> String {
        let mut h = format!("Workflow progress: {}", self.request);
        if let Some(r) = &self.run_id {
            h.push_str(&format!("  (run {r})"));
        }
        h
    }

    /// Every line of the block at `width` columns: never wider, never wrapped (text from the
    /// site is cleaned here).
    pub fn render(&self, width: usize) -> Vec<String> {
        let clean = |s: &str| crate::term::clean(s);
        let mut out = vec![crate::ui::fit(&clean(&self.header()), width)];
        for l in &self.lines {
            let (prefix, text, bar) = match &l.kind {
                Kind::Step { number, total, state, text, bar, .. } => {
                    (format!("  {} Step {number}/{total}  ", state.icon()), text, bar)
                }
                Kind::Text { prefix, text, bar } => (format!("  {prefix}"), text, bar),
            };
            out.push(fit_row(&prefix, &clean(text), bar.as_ref().map(Bar::render), width));
        }
        if self.stopping {
            let notice = if self.ended {
                "  ⏸  Stopped on Ctrl-C: the items in flight were finished; the rest were not started"
            } else {
                "  ⏸  Stopping: finishing the items in flight (Ctrl-C again stops at once)"
            };
            out.push(crate::ui::fit(notice, width));
        }
        out
    }
}

/// `prefix` + `text` + `right` in `width` columns: the text is cut first (with an ellipsis),
/// then the right part goes if even that does not fit.
fn fit_row(prefix: &str, text: &str, right: Option<String>, width: usize) -> String {
    let w = console::measure_text_width;
    if let Some(right) = right {
        let room = width.saturating_sub(w(prefix) + w(&right) + 2);
        if room >= 12 {
            let t = crate::ui::fit(text, room);
            let pad = room.saturating_sub(w(&t));
            return format!("{prefix}{t}{}  {right}", " ".repeat(pad));
        }
    }
    crate::ui::fit(&format!("{prefix}{text}"), width)
}

fn step_infos(plan: Option<&Plan>) -> HashMap<String, StepInfo> {
    plan.map(|p| {
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
    .unwrap_or_default()
}

/// The live block: one indicatif line per line of the [`Block`], redrawn in place.
struct Live {
    mp: MultiProgress,
    bars: Vec<(usize, ProgressBar)>,
    started: Instant,
}

impl Live {
    fn new() -> Live {
        Live {
            mp: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: vec![],
            started: Instant::now(),
        }
    }

    /// Draws `block` at the terminal's width: new lines are inserted where the block has them.
    fn sync(&mut self, block: &Block) {
        let width = crate::ui::width_err();
        let rendered = block.render(width);
        // The header is line 0 of the rendering; the block's lines follow.
        // (and the stop notice, when there is one, after them).
        let mut keys: Vec<usize> = std::iter::once(usize::MAX).chain(block.lines.iter().map(|l| l.key)).collect();
        keys.extend((keys.len()..rendered.len()).map(|i| usize::MAX - i));
        for (i, key) in keys.iter().enumerate() {
            if self.bars.get(i).map(|(k, _)| k) != Some(key) {
                let pb = ProgressBar::hidden()
                    .with_style(ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
                let pb = self.mp.insert(i, pb);
                self.bars.insert(i, (*key, pb));
            }
            self.bars[i].1.set_message(rendered[i].clone());
        }
    }

    fn finish(&self) {
        for (_, pb) in &self.bars {
            pb.finish();
        }
    }
}

/// Shows a run's events until the engine is done.
pub struct Progress {
    json: bool,
    steps: HashMap<String, StepInfo>,
    block: Block,
    live: Option<Live>,
    cancel: Option<tabflow_app::Cancel>,
}

impl Progress {
    /// For a run of `plan` (none: a resume or rollback of a stored run); `confirmations`
    /// are (step id, what the reviewer approved) lines shown before their step.
    pub fn new(plan: Option<&Plan>, confirmations: &[(String, String)], json: bool) -> Progress {
        let live = (!json && crate::ui::live_stderr()).then(Live::new);
        let mut p =
            Progress { json, steps: step_infos(plan), block: Block::new(plan, confirmations), live, cancel: None };
        if let Some(l) = &mut p.live {
            l.sync(&p.block);
        }
        p
    }

    /// The run's stop request: once it is set the block says that the run is stopping.
    pub fn with_cancel(mut self, cancel: tabflow_app::Cancel) -> Progress {
        self.cancel = Some(cancel);
        self
    }

    /// Draws (or prints) every event of `events` until the run ends.
    pub async fn follow(mut self, mut events: tabflow_app::Events) {
        while let Some(e) = events.next().await {
            if self.json {
                continue;
            }
            match &mut self.live {
                Some(live) => {
                    if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                        self.block.stopping();
                    }
                    self.block.apply(&e, live.started.elapsed());
                    live.sync(&self.block);
                }
                None => self.print(&e),
            }
        }
        if let Some(l) = &mut self.live {
            self.block.finish();
            l.sync(&self.block);
            l.finish();
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
