//! Deterministic, offline, rule-based understanding of a Tableau administrator's request.
//!
//! [`parse`] turns plain language ("Clean up the Finance project - archive old workbooks and
//! consolidate datasources") into the intents of DESIGN.md §5, in the order the user gave
//! them, and lists what it could not map. It grounds nothing against a site: names are kept
//! exactly as written ("John's" → `"John"`), and the planner resolves them.
//!
//! ```
//! use chrono::NaiveDate;
//! use serde_json::json;
//!
//! let today = NaiveDate::from_ymd_opt(2026, 8, 14).unwrap();
//! let parsed = tabflow_nl::parse("Archive Finance workbooks not accessed in 90+ days, then tell the project owners", today);
//! assert_eq!(parsed.intents[0].name(), "archive-stale-content");
//! assert_eq!(parsed.intents[0].params_json()["project"], json!("Finance"));
//! assert_eq!(parsed.intents[0].params_json()["stale_days"], json!(90));
//! assert_eq!(parsed.intents[1].name(), "notify-owners");
//! assert_eq!(parsed.intents[1].params_json()["audience"], json!("project-owners"));
//! assert!(parsed.not_understood.is_empty());
//! ```
//!
//! # How it works
//! 1. `token`: words, quoted names and punctuation, with byte spans into the request.
//! 2. `clause`: one clause per action ("…, then …", "… and notify …", sentences).
//! 3. `classify`: what each clause asks for, from its first action verb and the words
//!    around it (`lexicon`), with values from `entity` (names, tags, audiences),
//!    `time` (durations, quarters, date windows) and `schedule` (recurrence); `offboard`
//!    recognises departures and hand-overs.
//! 4. `assemble`: look-ups become the selection of the action that follows, scene-setting
//!    clauses lend their project, clauses continuing one intent are merged.
//!
//! Parameter values: names as strings; `stale_days` a number of days; `since`/`until` ISO
//! dates (`YYYY-MM-DD`, inclusive); `tags` a list of lowercase strings; `remove_access` a
//! bool; `schedule` `daily`/`weekly`/`monthly`, a five-field cron string, or a period cron
//! cannot count in words (`every 90 days`, refused by [`check_cadence`]);
//! `update-permissions` `scope` is `remaining`, `all` or a plural content type and `mode` one
//! of `read-only`, `locked`, `unlocked`, `restrict`, `revoke`, `grant`, `project-default`.
//! Parameters the request does not give are absent.

// Requests, files and server responses are outside data: none of them may panic this crate.
// Exceptions are reviewed one by one with an `#[allow(..., reason)]` saying why they cannot fail.
#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used)]

mod assemble;
mod classify;
mod clause;
mod entity;
#[doc(hidden)]
pub mod hostile;
mod lexicon;
mod offboard;
mod schedule;
mod template;
mod time;
mod token;

pub use schedule::check_cadence;
use serde::Serialize;
pub use template::{TemplateCall, template_call};

/// One thing the user asked for: the catalogue's typed intent (`tabflow_plan::Intent`).
pub use tabflow_plan::Intent;

/// The result of [`parse`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parsed {
    /// The intents, in the order the user gave them.
    pub intents: Vec<Intent>,
    /// Clauses or fragments that could not be mapped; empty when everything was understood.
    /// When nothing at all was understood, `intents` is empty and this holds the request.
    pub not_understood: Vec<String>,
    /// Actions understood but not something tabflow can do yet, in words ("delete
    /// data alerts"). A front end refuses the request ("I can't do that yet: …") rather
    /// than plan the rest: the nearest workflow is never a stand-in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<String>,
    /// Clauses whose action could mean two things ("archive or delete …"): the planner asks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ambiguous: Vec<Ambiguous>,
}

/// A clause whose action has two readings, and the readings ("archive", "delete").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ambiguous {
    /// The clause as written.
    pub text: String,
    /// The readings, safest first.
    pub choices: Vec<String>,
}

/// Parses `request`. `today` resolves calendar references: "from Q2" is the most recent
/// second quarter that has ended by `today`, "last quarter" the one before today's.
///
/// Never fails and never panics: anything it cannot map ends up in
/// [`Parsed::not_understood`].
pub fn parse(request: &str, today: chrono::NaiveDate) -> Parsed {
    let tokens = token::tokenize(request);
    let clauses = clause::split(request, &tokens);
    let mut analyses = Vec::with_capacity(clauses.len());
    let mut after_offboard = false;
    for c in &clauses {
        let a = classify::analyse(c, today, after_offboard);
        match a.role {
            classify::Role::Intent(name) => after_offboard = name == classify::names::OFFBOARD,
            classify::Role::Filler | classify::Role::Report | classify::Role::Recur => {}
            _ => after_offboard = false,
        }
        analyses.push(a);
    }
    assemble::assemble(request, analyses)
}

/// The first duration in `text` in whole days, read as [`parse`] reads durations ("90+ days"
/// = 90, "six months" = 180, "a year" = 365, "the last 30 days" = 30); schedules ("every 90
/// days") are not durations. For other readers of plain language (the query path).
///
/// ```
/// assert_eq!(tabflow_nl::duration_days("not viewed in two quarters"), Some(180));
/// assert_eq!(tabflow_nl::duration_days("who owns Sales?"), None);
/// ```
pub fn duration_days(text: &str) -> Option<u32> {
    let tokens = token::tokenize(text);
    let words: Vec<&token::Token> = tokens.iter().filter(|t| t.is_word()).collect();
    time::first_duration(&words)
}

/// The first number in `text`, in digits or words ("10", "ten", "twenty five", "a dozen"),
/// not counting a bare "a"/"an".
///
/// ```
/// assert_eq!(tabflow_nl::first_number("the top twenty five workbooks"), Some(25));
/// assert_eq!(tabflow_nl::first_number("a list of workbooks"), None);
/// ```
pub fn first_number(text: &str) -> Option<u32> {
    let tokens = token::tokenize(text);
    let words: Vec<&token::Token> = tokens.iter().filter(|t| t.is_word()).collect();
    words.iter().enumerate().find_map(|(i, w)| {
        if w.eq_any(&["a", "an"]) && !matches!(token::word_at(&words, i + 1), "dozen" | "couple" | "few") {
            return None;
        }
        time::number_at(&words, i).map(|(n, _)| n)
    })
}
