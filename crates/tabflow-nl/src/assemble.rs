//! From analysed clauses to the intents of the whole request.
//!
//! * A look-up ("Find all workbooks using deprecated datasources") followed by an action is
//!   that action's selection; alone it is a question.
//! * A question stays a question; a following "… them" also inherits its selection.
//! * "Clean up the Finance project - …" and "For Finance:" set the project for what follows.
//! * An intent without a project inherits the previous intent's project ("archive old
//!   workbooks in Finance, then tell the project owners"), unless it says "across the site".
//! * Consecutive clauses of one intent whose parameters do not conflict are one intent
//!   ("Sarah Lee is leaving; give her workbooks to Tom Baker and remove her access").

use serde_json::{Map, Value};
use tabflow_plan::Intent;

use crate::Parsed;
use crate::classify::{Analysis, Role, names};

/// An intent while clauses are still being merged into it: a catalogue name and its
/// parameters so far. Each becomes a typed [`Intent`] at the end.
struct Draft {
    name: &'static str,
    params: Map<String, Value>,
    /// An offboarding whose clauses say the person leaves (or name an offboarding verb):
    /// without a word on access, the whole sequence runs. A hand-over alone does not remove
    /// access (`remove_access: false`).
    leaving: bool,
    /// An archive read from "clean up" / "get rid of" (see `Analysis::soft`).
    soft: bool,
}

/// Intents whose `project` may come from the previous intent.
const INHERITS_PROJECT: &[&str] =
    &[names::ARCHIVE, names::CONSOLIDATE, names::AUDIT, names::UPDATE, names::NOTIFY, names::DELETE];

fn fill(target: &mut Map<String, Value>, source: &Map<String, Value>, name: &str) {
    for key in Intent::keys(name) {
        if !target.contains_key(key)
            && let Some(v) = source.get(key)
        {
            target.insert(key.clone(), v.clone());
        }
    }
}

fn conflicts(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.iter().any(|(k, v)| b.get(k).is_some_and(|w| w != v))
}

/// Turns analyses into the parse result of `request`.
pub(crate) fn assemble(request: &str, mut analyses: Vec<Analysis>) -> Parsed {
    resolve_roles(&mut analyses);
    let mut intents: Vec<Draft> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut not_understood = Vec::new();
    let mut scene: Option<Value> = None;
    let mut scene_site_wide = false;
    let mut feed: Option<(Map<String, Value>, bool)> = None;
    let mut reports = 0;
    let mut unsupported: Vec<String> = Vec::new();
    let mut ambiguous: Vec<crate::Ambiguous> = Vec::new();
    // "Weekly, audit …": a schedule given before the audit it belongs to.
    let mut pending_schedule: Option<(Map<String, Value>, String)> = None;
    for a in analyses {
        match a.role {
            Role::Context | Role::Umbrella => {
                if let Some(p) = a.params.get("project") {
                    scene = Some(p.clone());
                }
                scene_site_wide |= a.site_wide;
            }
            Role::Find => feed = Some((a.params, false)),
            Role::Report => reports += 1,
            Role::Recur => match intents.last_mut() {
                Some(prev) if prev.name == names::AUDIT => {
                    for (k, v) in a.params {
                        prev.params.entry(k).or_insert(v);
                    }
                }
                _ => {
                    if let Some((_, text)) = pending_schedule.replace((a.params, a.text)) {
                        not_understood.push(text);
                    }
                }
            },
            Role::Filler => {}
            Role::Unsupported => {
                unsupported.push(a.params.get("what").and_then(Value::as_str).unwrap_or(&a.text).to_string())
            }
            Role::Ambiguous => ambiguous.push(crate::Ambiguous {
                text: a.text,
                choices: a
                    .params
                    .get("choices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            }),
            Role::Unknown => not_understood.push(a.text),
            Role::Question => {
                feed = Some((a.params, true));
                intents.push(Draft { name: names::QUERY, params: Map::new(), leaving: false, soft: false });
                texts.push(a.text);
            }
            Role::Intent(name) => {
                let mut params = a.params;
                if name == names::AUDIT
                    && let Some((schedule, _)) = pending_schedule.take()
                {
                    for (k, v) in schedule {
                        params.entry(k).or_insert(v);
                    }
                }
                if let Some((selection, needs_anaphor)) = feed.take()
                    && (!needs_anaphor || a.anaphor)
                {
                    fill(&mut params, &selection, name);
                }
                // "Clear out old workbooks in HR and delete them for good": the delete said
                // replaces the archive "clear out" implied, over the same selection.
                if name == names::DELETE
                    && a.anaphor
                    && intents.last().is_some_and(|d| d.name == names::ARCHIVE && d.soft)
                    && let Some(archive) = intents.pop()
                {
                    texts.pop();
                    fill(&mut params, &archive.params, name);
                }
                let wants_project = Intent::keys(name).iter().any(|k| k == "project");
                if wants_project && !params.contains_key("project") && !a.site_wide && !scene_site_wide {
                    if let Some(p) = &scene {
                        params.insert("project".into(), p.clone());
                    } else if INHERITS_PROJECT.contains(&name)
                        && let Some(prev) = intents.last()
                        && INHERITS_PROJECT.contains(&prev.name)
                        && let Some(p) = prev.params.get("project")
                    {
                        params.insert("project".into(), p.clone());
                    }
                }
                // "… give her workbooks to Ian, delete her drafts, and revoke her access": a
                // clause about "her" continues the offboarding named earlier.
                if name == names::OFFBOARD
                    && !params.contains_key("user")
                    && let Some(earlier) = intents.iter_mut().rev().find(|i| i.name == names::OFFBOARD)
                    && !conflicts(&earlier.params, &params)
                {
                    earlier.leaving |= a.leaving;
                    for (k, v) in params {
                        earlier.params.entry(k).or_insert(v);
                    }
                    continue;
                }
                if let Some(prev) = intents.last_mut()
                    && prev.name == name
                    && name != names::QUERY
                    && !conflicts(&prev.params, &params)
                {
                    prev.leaving |= a.leaving;
                    for (k, v) in params {
                        prev.params.entry(k).or_insert(v);
                    }
                    continue;
                }
                intents.push(Draft { name, params, leaving: a.leaving, soft: a.soft });
                texts.push(a.text);
            }
        }
    }
    if let Some((_, text)) = pending_schedule {
        not_understood.push(text);
    }
    for d in intents.iter_mut().filter(|d| d.name == names::OFFBOARD && !d.leaving) {
        d.params.entry("remove_access").or_insert(Value::Bool(false));
    }
    let whole = request.trim();
    if intents.is_empty() && reports > 0 && not_understood.is_empty() {
        intents.push(Draft { name: names::QUERY, params: Map::new(), leaving: false, soft: false });
        texts.push(whole.to_string());
    }
    let single = intents.len() == 1;
    for (intent, text) in intents.iter_mut().zip(texts) {
        if intent.name == names::QUERY {
            let question = if single { whole.to_string() } else { text };
            intent.params.insert("question".into(), Value::String(question));
        }
    }
    let mut typed = Vec::with_capacity(intents.len());
    for d in intents {
        match Intent::from_parts(d.name, d.params) {
            Ok(i) => typed.push(i),
            // The rules only write catalogue keys with their types; should one ever write
            // something else, it is reported, not guessed.
            Err(e) => not_understood.push(e.to_string()),
        }
    }
    if typed.is_empty() && unsupported.is_empty() && ambiguous.is_empty() {
        not_understood = if whole.is_empty() { Vec::new() } else { vec![whole.to_string()] };
    }
    Parsed { intents: typed, not_understood, unsupported, ambiguous }
}

/// Decides what look-ups and scene-setting clauses are, given what follows them.
fn resolve_roles(analyses: &mut [Analysis]) {
    for i in 0..analyses.len() {
        let Some(([.., this], rest)) = analyses.split_at_mut_checked(i + 1) else { continue };
        let action_follows = rest
            .iter()
            .find(|a| !matches!(a.role, Role::Filler | Role::Report))
            .is_some_and(|a| matches!(a.role, Role::Intent(n) if n != names::QUERY && n != names::NOTIFY));
        let anything_follows = rest.iter().any(|a| matches!(a.role, Role::Intent(_) | Role::Find | Role::Question));
        match this.role {
            Role::Find if !action_follows => this.role = Role::Question,
            Role::Umbrella if !anything_follows => {
                this.role = Role::Intent(names::ARCHIVE);
                this.soft = true;
                this.params.insert("stale_days".into(), Value::from(90));
            }
            _ => {}
        }
    }
}
