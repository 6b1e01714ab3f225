//! The terminal's interactive side: whether a person is at the keyboard, prompts (`inquire`),
//! the review list, and fitting lines to the terminal's width. Every prompt here has a
//! non-terminal path at its caller (`--yes`, `--approve`, `--answer`, exit 3), so nothing in
//! a pipe or CI ever waits for a key.
//!
//! Text from the site (item names, owners, projects) is cleaned (`term::clean`) before it is
//! handed to `inquire` or `indicatif`, which write to the terminal themselves.

use std::io::IsTerminal;

use inquire::ui::RenderConfig;
use tabflow_app::Plan;
use tabflow_engine::plan::{Effect, Item, Step};

/// A person can answer prompts: standard input and standard error (where prompts are drawn)
/// are terminals, and `TERM` is not `dumb`.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && !dumb()
}

fn dumb() -> bool {
    std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

/// Live (redrawn in place) progress may go to standard error.
pub fn live_stderr() -> bool {
    std::io::stderr().is_terminal() && !dumb()
}

/// Prompts without colour when `NO_COLOR` is set (https://no-color.org).
pub fn init() {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        inquire::set_global_render_config(RenderConfig::empty());
    }
}

/// The width of the terminal on standard error (80 when unknown).
pub fn width_err() -> usize {
    console::Term::stderr().size_checked().map(|(_, w)| w as usize).filter(|w| *w >= 20).unwrap_or(80)
}

/// The width of the terminal on standard output, or none when it is not a terminal.
pub fn width_out() -> Option<usize> {
    std::io::stdout().is_terminal().then(|| console::Term::stdout().size_checked().map(|(_, w)| w as usize)).flatten()
}

/// `line` cut to `width` columns with an ellipsis (never wrapped by the terminal).
pub fn fit(line: &str, width: usize) -> String {
    console::truncate_str(line, width, "…").into_owned()
}

/// Every line of `text` cut to `width` columns (none: unchanged).
pub fn fit_lines(text: &str, width: Option<usize>) -> String {
    let Some(w) = width else { return text.to_string() };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        out.push_str(&fit(body, w));
        out.push_str(nl);
    }
    out
}

/// What a prompt ended with.
pub enum Answer<T> {
    Given(T),
    /// Esc: go back one question.
    Back,
    /// Ctrl-C, or the terminal went away.
    Quit,
}

fn answer<T>(r: inquire::error::InquireResult<T>) -> Answer<T> {
    match r {
        Ok(v) => Answer::Given(v),
        Err(inquire::InquireError::OperationCanceled) => Answer::Back,
        Err(_) => Answer::Quit,
    }
}

/// A choice among `choices`, the cursor on `default` (the safe choice).
pub fn select(message: &str, choices: &[String], default: Option<&str>, help: &str) -> Answer<String> {
    let start = default.and_then(|d| choices.iter().position(|c| c == d)).unwrap_or(0);
    let options: Vec<String> = choices.iter().map(|c| crate::term::clean(c)).collect();
    let message = crate::term::clean(message);
    let r = inquire::Select::new(&message, options).with_starting_cursor(start).with_help_message(help).raw_prompt();
    match answer(r) {
        Answer::Given(o) => Answer::Given(choices[o.index].clone()),
        Answer::Back => Answer::Back,
        Answer::Quit => Answer::Quit,
    }
}

/// Yes or no, `default` when Enter is pressed.
pub fn confirm(message: &str, default: bool, help: &str) -> Answer<bool> {
    let message = crate::term::clean(message);
    answer(inquire::Confirm::new(&message).with_default(default).with_help_message(help).prompt())
}

fn size(bytes: Option<u64>) -> String {
    match bytes {
        None => "—".into(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        Some(b) if b >= 1 << 20 => format!("{:.0} MB", b as f64 / (1u64 << 20) as f64),
        Some(b) => format!("{:.0} KB", (b as f64 / 1024.0).ceil()),
    }
}

fn pad(text: &str, width: usize) -> String {
    let t = fit(text, width);
    let w = console::measure_text_width(&t);
    format!("{t}{}", " ".repeat(width.saturating_sub(w)))
}

/// The item as a row of the review list, at most `width` columns.
fn row(item: &Item, width: usize) -> String {
    let last = item.reason.as_deref().unwrap_or("");
    let last =
        last.strip_prefix("not viewed since ").or_else(|| last.strip_prefix("not accessed since ")).unwrap_or(last);
    let text = format!(
        "{} {} {} {} {:>7}",
        pad(&crate::term::clean(&item.name), 34),
        pad(&crate::term::clean(item.project.as_deref().unwrap_or("—")), 16),
        pad(&crate::term::clean(item.owner.as_deref().unwrap_or("—")), 14),
        pad(&crate::term::clean(last), 12),
        size(item.size)
    );
    fit(text.trim_end(), width)
}

/// The review list of one destructive step (see [`crate::review`]): every item ticked to
/// start with (or as `kept` says); the person unticks what must not change, watching the
/// running count. Answers the ticked item ids.
pub fn review_step(step: &Step, number: usize, kept: Option<&[String]>) -> Answer<Vec<String>> {
    // Room for the cursor and the box ("> [x] ").
    let width = width_err().saturating_sub(7).max(40);
    let items = reviewed_items(step);
    let rows: Vec<String> = items.iter().map(|i| row(i, width)).collect();
    let ticked: Vec<usize> = match kept {
        Some(k) => items.iter().enumerate().filter(|(_, i)| k.contains(&i.id)).map(|(n, _)| n).collect(),
        None => (0..items.len()).collect(),
    };
    errln!("{}", fit(&format!("Step {number} · {}", crate::term::clean(&step.title)), width_err()));
    let message = format!("Untick what must not change ({} items; Enter accepts)", items.len());
    let header = format!(
        "      {} {} {} {} {:>7}",
        pad("name", 34),
        pad("project", 16),
        pad("owner", 14),
        pad("last view", 12),
        "size"
    );
    let page =
        console::Term::stderr().size_checked().map(|(h, _)| h as usize).unwrap_or(24).saturating_sub(8).clamp(5, 20);
    let mut list = crate::review::List::new(rows, ticked, page);
    match crate::review::run(&mut list, &message, header.trim_end()) {
        Ok(crate::review::Step::Accept) => {
            Answer::Given(list.ticked().into_iter().map(|n| items[n].id.clone()).collect())
        }
        Ok(crate::review::Step::Back) => Answer::Back,
        _ => Answer::Quit,
    }
}

/// The items of a destructive step that it changes (the ones an approval names).
pub fn reviewed_items(step: &Step) -> Vec<&Item> {
    let changed = step.changed_items();
    step.items.iter().filter(|i| changed.contains(&i.id.as_str())).collect()
}

/// The destructive steps of `plan` (the ones a review list is shown for), numbered as the
/// plan prints them.
pub fn destructive_steps(plan: &Plan) -> Vec<(usize, &Step)> {
    plan.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.effect == Effect::Destructive && !reviewed_items(s).is_empty())
        .map(|(i, s)| (i + 1, s))
        .collect()
}
