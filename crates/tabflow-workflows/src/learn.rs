//! The learning system (seed Phase 2C): what users chose before, turned into better
//! suggestions and defaults, always with the reason shown.
//!
//! Three kinds of record (the store's `learning` table):
//! - `answer`: how a question was answered (`plan --answer`, `ask`). Key: the question with
//!   its numbers blanked ([`question_key`]), so "I found 23 workbooks…" and "I found 21
//!   workbooks…" in the same project are one question. When the last [`ANSWER_STREAK`]
//!   answers to a question agree, that answer becomes its default.
//! - `owner`: the new owner an approved offboarding gave an item, per project (key) and the
//!   leaver's teams (context). The planner suggests the owner chosen last time for the
//!   project, else for the team, before its own rules ("chosen last time for Marketing").
//! - `removed`: an item the user took out of an approval. Next time the item is listed last
//!   in its step with a note, so the reviewer sees it was left out before.
//!
//! The planner only reads [`Learned`] (data); recording happens in the front ends after a
//! plan is made ([`from_answers`]) and after a run ([`from_run`]).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tabflow_plan::plan::{Effect, Plan, Question, StepKind};
use tabflow_plan::record::{LearningRow, NewLearning};

pub const ANSWER: &str = "answer";
pub const OWNER: &str = "owner";
pub const REMOVED: &str = "removed";

/// How many consecutive equal answers make a learned default.
pub const ANSWER_STREAK: usize = 2;

/// Marks the learned part of a question's text (cut off again by [`question_key`]).
const LEARNED_MARK: &str = " [default learned:";
/// Shown instead when the default is a safe choice that a habit must not replace.
const HABIT_MARK: &str = " [you answered";

/// What tabflow learned, newest first. Empty = plan as if nothing was learned.
#[derive(Debug, Clone, Default)]
pub struct Learned {
    rows: Vec<LearningRow>,
}

impl Learned {
    /// `rows` as the store lists them (newest first).
    pub fn new(mut rows: Vec<LearningRow>) -> Learned {
        rows.sort_by_key(|r| std::cmp::Reverse(r.id));
        Learned { rows }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s LearningRow> + 's {
        self.rows.iter().filter(move |r| r.kind == kind)
    }

    /// The owner (user name) chosen last time for an item in `project`, else for one of
    /// `teams`, with the reason to show.
    pub fn owner(&self, project: Option<&str>, teams: &[&str]) -> Option<(&str, String)> {
        if let Some(p) = project
            && let Some(r) = self.of_kind(OWNER).find(|r| r.key.eq_ignore_ascii_case(p))
        {
            return Some((r.value.as_str(), format!("chosen last time for {p}")));
        }
        self.of_kind(OWNER).find_map(|r| {
            let their: Vec<&str> = r
                .context
                .get("teams")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            teams
                .iter()
                .find(|t| their.iter().any(|x| x.eq_ignore_ascii_case(t)))
                .map(|t| (r.value.as_str(), format!("chosen last time for {t}")))
        })
    }

    /// The default learned for a question: the answer given the last [`ANSWER_STREAK`]
    /// times, if those agree and it is one of `choices`.
    pub fn default_answer(&self, text: &str, choices: &[String]) -> Option<String> {
        let key = question_key(text);
        let last: Vec<&str> =
            self.of_kind(ANSWER).filter(|r| r.key == key).take(ANSWER_STREAK).map(|r| r.value.as_str()).collect();
        if last.len() < ANSWER_STREAK || last.iter().any(|a| !a.eq_ignore_ascii_case(last[0])) {
            return None;
        }
        choices.iter().find(|c| c.eq_ignore_ascii_case(last[0])).cloned()
    }

    /// When `item_id` was last removed from an approval: the record.
    pub fn removed(&self, item_id: &str) -> Option<&LearningRow> {
        self.of_kind(REMOVED).find(|r| r.key == item_id)
    }
}

/// A question's identity across plans: lowercase, numbers blanked, the learned note removed.
pub fn question_key(text: &str) -> String {
    let text = text.split(LEARNED_MARK).next().unwrap_or(text);
    let text = text.split(HABIT_MARK).next().unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// Choices that change nothing by themselves.
fn is_safe_choice(c: &str) -> bool {
    matches!(c.to_ascii_lowercase().as_str(), "review" | "cancel" | "no" | "skip")
}

/// A question as the planner asks it, with a learned default when there is one: the default
/// replaces the planner's and the text says why.
pub fn with_learned_default(
    learned: &Learned,
    text: String,
    choices: &[String],
    default: Option<&str>,
) -> (String, Option<String>) {
    match learned.default_answer(&text, choices) {
        // A safe default (look first, or do nothing) is never replaced by a learned one that
        // writes: pressing Enter must not archive or delete because of habit. The habit is
        // shown instead.
        Some(d) if Some(d.as_str()) != default && default.is_some_and(is_safe_choice) => {
            let text = format!("{text}{HABIT_MARK} '{d}' the last {ANSWER_STREAK} times; the safe default stays]");
            (text, default.map(str::to_string))
        }
        Some(d) if Some(d.as_str()) != default => {
            let text = format!("{text}{LEARNED_MARK} '{d}', your answer the last {ANSWER_STREAK} times]");
            (text, Some(d))
        }
        _ => (text, default.map(str::to_string)),
    }
}

/// Lists items the user removed from an approval before last in their step, with a note.
pub fn mark_removed(plan: &mut Plan, learned: &Learned) {
    let mut noted = vec![];
    for step in plan.steps.iter_mut().filter(|s| s.effect == Effect::Destructive) {
        let mut again = vec![];
        for it in step.items.iter_mut() {
            if let Some(r) = learned.removed(&it.id) {
                let when = r.at.format("%Y-%m-%d");
                let why = format!("you removed it from an approval on {when}");
                it.reason = Some(match it.reason.take() {
                    Some(x) => format!("{x}; {why}"),
                    None => why,
                });
                again.push(it.id.clone());
                noted.push(format!("{} ({})", it.name, it.id));
            }
        }
        // Stable: the others keep their order, the removed ones go last.
        step.items.sort_by_key(|i| again.contains(&i.id));
    }
    if !noted.is_empty() {
        plan.notes.push(format!(
            "{} items were removed from an approval before and are listed last: {}",
            noted.len(),
            noted.join(", ")
        ));
    }
}

/// What a plan's answered questions teach.
pub fn from_answers(plan: &Plan) -> Vec<NewLearning> {
    plan.answered
        .iter()
        .filter_map(|q: &Question| {
            let a = plan.answers.get(&q.id)?;
            Some(NewLearning {
                kind: ANSWER.into(),
                key: question_key(&q.text),
                value: a.clone(),
                context: json!({"question": q.text.split(LEARNED_MARK).next(), "request": plan.request, "plan_id": plan.id}),
            })
        })
        .collect()
}

/// What an approved run teaches: the owner each transferred item went to, and the items left
/// out of the approval (`approved` = the approved destructive (step, item) pairs as
/// `"s2/<item id>"`, `None` = all).
pub fn from_run(plan: &Plan, approved: Option<&BTreeSet<String>>) -> Vec<NewLearning> {
    // Approvals are (step, item) pairs, stored as "s2/<item id>".
    let is_approved = |step: &str, id: &str| approved.is_none_or(|a| a.contains(&format!("{step}/{id}")));
    let mut out = vec![];
    let teams: Vec<Value> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::InventoryUser)
        .flat_map(|s| s.details.get("groups").and_then(Value::as_array).cloned().unwrap_or_default())
        .collect();
    for step in plan.steps.iter().filter(|s| s.effect == Effect::Destructive) {
        for it in &step.items {
            if !is_approved(&step.id, &it.id) {
                out.push(NewLearning {
                    kind: REMOVED.into(),
                    key: it.id.clone(),
                    value: it.name.clone(),
                    context: json!({"type": it.kind, "step": step.kind, "request": plan.request, "plan_id": plan.id}),
                });
                continue;
            }
            if step.kind != StepKind::TransferOwnership {
                continue;
            }
            let Some(change) = step.changes.iter().find(|c| c.item == it.id && c.field == "owner") else { continue };
            let Some(new_owner) = change.after.as_str() else { continue };
            let project = match it.kind.as_str() {
                "project" => None,
                _ => it.project.clone(),
            };
            let reason = it.reason.as_deref().unwrap_or_default();
            let source = if reason.contains("the new owner you named") {
                "named"
            } else if reason.contains("chosen last time") {
                "learned"
            } else {
                "suggested"
            };
            out.push(NewLearning {
                kind: OWNER.into(),
                key: project.clone().unwrap_or_default(),
                value: new_owner.to_string(),
                context: json!({"teams": teams, "project": project, "item": it.id, "item_name": it.name,
                                "leaver": change.before, "source": source, "plan_id": plan.id}),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn row(id: i64, kind: &str, key: &str, value: &str, context: Value) -> LearningRow {
        LearningRow { id, kind: kind.into(), key: key.into(), value: value.into(), context, at: Utc::now() }
    }

    #[test]
    fn owner_by_project_then_team_newest_first() {
        let l = Learned::new(vec![
            row(1, OWNER, "Finance", "old", json!({"teams": ["Finance"]})),
            row(2, OWNER, "Finance", "fresh", json!({"teams": ["Finance"]})),
            row(3, OWNER, "Web Analytics", "web", json!({"teams": ["Marketing"]})),
        ]);
        assert_eq!(l.owner(Some("finance"), &[]), Some(("fresh", "chosen last time for finance".into())));
        assert_eq!(l.owner(Some("Campaigns"), &["Marketing"]), Some(("web", "chosen last time for Marketing".into())));
        assert_eq!(l.owner(Some("Campaigns"), &["Sales"]), None);
        assert_eq!(Learned::default().owner(Some("Finance"), &["Finance"]), None);
    }

    #[test]
    fn a_default_needs_the_same_answer_the_last_times() {
        let q = "I found 23 workbooks in Finance not accessed in 90+ days. Archive all, or review?";
        let choices: Vec<String> = ["archive-all", "review", "cancel"].map(String::from).into();
        let k = question_key(q);
        assert_eq!(k, question_key("I found 7 workbooks in Finance not accessed in 90+ days. Archive all, or review?"));
        assert_ne!(k, question_key("I found 7 workbooks in Sales not accessed in 90+ days. Archive all, or review?"));
        let once = Learned::new(vec![row(1, ANSWER, &k, "archive-all", Value::Null)]);
        assert_eq!(once.default_answer(q, &choices), None);
        let twice = Learned::new(vec![
            row(1, ANSWER, &k, "archive-all", Value::Null),
            row(2, ANSWER, &k, "archive-all", Value::Null),
        ]);
        assert_eq!(twice.default_answer(q, &choices).as_deref(), Some("archive-all"));
        // A safe default stays; the habit is shown.
        let (text, d) = with_learned_default(&twice, q.to_string(), &choices, Some("review"));
        assert_eq!(d.as_deref(), Some("review"));
        assert!(text.contains("you answered 'archive-all' the last 2 times"), "{text}");
        assert_eq!(question_key(&text), k, "the habit note does not change the question's identity");
        // With no default (or a default that is not a safe one) the habit becomes the default.
        let (text, d) = with_learned_default(&twice, q.to_string(), &choices, None);
        assert_eq!(d.as_deref(), Some("archive-all"));
        assert!(text.contains("'archive-all', your answer the last 2 times"), "{text}");
        assert_eq!(question_key(&text), k, "the learned note does not change the question's identity");
        let mixed = Learned::new(vec![
            row(1, ANSWER, &k, "archive-all", Value::Null),
            row(2, ANSWER, &k, "review", Value::Null),
        ]);
        assert_eq!(mixed.default_answer(q, &choices), None);
    }
}
