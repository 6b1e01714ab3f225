//! What a person approves: a set of (step, item) pairs of a plan's destructive steps
//! (DESIGN.md §2.4, §6). Approving an item in one step never approves it in another: an
//! offboarding's transfer and access-removal steps and its account deletion may name the same
//! user, and approving the first two must not approve the third.
//!
//! The written form, as `--approve` and the HTTP API take it: `all`, or a comma-separated list
//! of `s2` (every destructive item of step s2, in s2 only), `s2/<item id>` (that item in s2),
//! or a bare `<item id>` — accepted only when exactly one destructive step changes it.
//! Stored approvals keep the pairs as `"s2/<item id>"` strings ([`pair_key`]).

use std::collections::BTreeSet;

use crate::plan::{Effect, Plan};

/// Which destructive (step, item) pairs are approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every destructive item of the plan.
    All,
    /// `(step id, item id)` pairs.
    Pairs(BTreeSet<(String, String)>),
}

/// A selection that names something the plan does not hold, or is ambiguous. A usage error:
/// nothing is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectionError {
    pub message: String,
    pub fix: String,
}

/// How a pair is stored and compared: `s2/<item id>`.
pub fn pair_key(step: &str, item: &str) -> String {
    format!("{step}/{item}")
}

impl Selection {
    /// Reads a written selection against `plan`.
    pub fn parse(plan: &Plan, text: &str) -> Result<Selection, SelectionError> {
        let tokens: Vec<&str> = text.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        if tokens.is_empty() {
            return Err(SelectionError {
                message: "the approval names nothing".into(),
                fix: "write `all`, step ids (s2) or step/item pairs (s2/ITEM) from the plan".into(),
            });
        }
        if tokens.iter().any(|t| t.eq_ignore_ascii_case("all")) {
            return Ok(Selection::All);
        }
        let destructive = |step: &crate::plan::Step| step.effect == Effect::Destructive;
        let mut pairs = BTreeSet::new();
        for token in tokens {
            if let Some(step) = plan.step(token) {
                if destructive(step) {
                    pairs.extend(step.changed_items().into_iter().map(|i| (step.id.clone(), i.to_string())));
                }
                continue;
            }
            if let Some((step_id, item)) = token.split_once('/') {
                let Some(step) = plan.step(step_id) else {
                    return Err(unknown(plan, &format!("plan {} has no step '{step_id}'", plan.id)));
                };
                if !step.changed_items().contains(&item) {
                    return Err(unknown(plan, &format!("step {step_id} of plan {} does not change '{item}'", plan.id)));
                }
                if destructive(step) {
                    pairs.insert((step.id.clone(), item.to_string()));
                }
                continue;
            }
            let steps: Vec<&str> = plan
                .steps
                .iter()
                .filter(|s| destructive(s) && s.changed_items().contains(&token))
                .map(|s| s.id.as_str())
                .collect();
            match steps.as_slice() {
                [one] => {
                    pairs.insert((one.to_string(), token.to_string()));
                }
                [] if plan.steps.iter().any(|s| s.item(token).is_some()) => {}
                [] => {
                    return Err(unknown(plan, &format!("'{token}' is neither a step nor an item of plan {}", plan.id)));
                }
                many => {
                    let pairs: Vec<String> = many.iter().map(|s| pair_key(s, token)).collect();
                    return Err(SelectionError {
                        message: format!(
                            "item {token} is in steps {} of plan {}; an approval names the step it is for",
                            join_and(many),
                            plan.id
                        ),
                        fix: format!("write {}", join_or(&pairs)),
                    });
                }
            }
        }
        Ok(Selection::Pairs(pairs))
    }

    /// The stored form: `None` for all, else the sorted `s2/<item id>` strings.
    pub fn stored(&self) -> Option<Vec<String>> {
        match self {
            Selection::All => None,
            Selection::Pairs(p) => Some(p.iter().map(|(s, i)| pair_key(s, i)).collect()),
        }
    }
}

fn unknown(plan: &Plan, message: &str) -> SelectionError {
    SelectionError {
        message: message.to_string(),
        fix: format!(
            "approve `all`, step ids (s2) or step/item pairs (s2/ITEM) listed by `tabflow plan --json` for plan {}",
            plan.id
        ),
    }
}

fn join_and(list: &[&str]) -> String {
    match list {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn join_or(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, Item, SiteRef, Step, StepKind};
    use serde_json::{Value, json};

    fn step(id: &str, kind: StepKind, items: &[(&str, &str)], field: &str) -> Step {
        Step::new(
            id.into(),
            kind,
            id.into(),
            vec![],
            items
                .iter()
                .map(|(k, i)| Item { kind: k.to_string(), id: i.to_string(), name: i.to_string(), ..Item::default() })
                .collect(),
            items
                .iter()
                .map(|(_, i)| Change {
                    item: i.to_string(),
                    field: field.into(),
                    before: if kind == StepKind::CreateProject { Value::Null } else { json!("a") },
                    after: if field == "exists" { Value::Null } else { json!("b") },
                    before_id: None,
                    after_id: None,
                    after_ref: None,
                })
                .collect(),
            Value::Null,
        )
    }

    /// An offboarding: s1 inventory (read), s2 transfer (workbook w1), s3 access removal (the
    /// user u1), s4 account deletion (the same u1), s5 a project created (write).
    fn offboarding() -> Plan {
        let now = "2026-08-14T09:00:00Z".parse().unwrap();
        let mut p = Plan::draft("offboard", SiteRef::default(), vec![], now);
        p.steps.push(Step::new(
            "s1".into(),
            StepKind::InventoryUser,
            "inventory".into(),
            vec![],
            vec![Item { kind: "user".into(), id: "u1".into(), name: "u".into(), ..Item::default() }],
            vec![],
            Value::Null,
        ));
        p.steps.push(step("s2", StepKind::TransferOwnership, &[("workbook", "w1")], "owner"));
        p.steps.push(step("s3", StepKind::RemoveAccess, &[("user", "u1")], "site_role"));
        p.steps.push(step("s4", StepKind::DeleteUser, &[("user", "u1")], "exists"));
        p.steps.push(step("s5", StepKind::CreateProject, &[("project", "p1")], "exists"));
        p
    }

    fn pairs(list: &[(&str, &str)]) -> Selection {
        Selection::Pairs(list.iter().map(|(s, i)| (s.to_string(), i.to_string())).collect())
    }

    #[test]
    fn a_step_approves_its_items_in_that_step_only() {
        let p = offboarding();
        assert_eq!(p.steps[3].effect, Effect::Destructive);
        assert_eq!(Selection::parse(&p, "s2,s3").unwrap(), pairs(&[("s2", "w1"), ("s3", "u1")]));
        assert_eq!(Selection::parse(&p, "s4").unwrap(), pairs(&[("s4", "u1")]));
        assert_eq!(Selection::parse(&p, "s3/u1").unwrap(), pairs(&[("s3", "u1")]));
        assert_eq!(Selection::parse(&p, " s2 , all ").unwrap(), Selection::All);
        assert_eq!(Selection::parse(&p, "s3/u1").unwrap().stored(), Some(vec!["s3/u1".to_string()]));
        assert_eq!(Selection::All.stored(), None);
        // Non-destructive steps and items need no approval: accepted, adding nothing.
        assert_eq!(Selection::parse(&p, "s1,s5,p1").unwrap(), pairs(&[]));
    }

    #[test]
    fn a_bare_item_is_accepted_only_in_exactly_one_destructive_step() {
        let p = offboarding();
        assert_eq!(Selection::parse(&p, "w1").unwrap(), pairs(&[("s2", "w1")]));
        let e = Selection::parse(&p, "u1").unwrap_err();
        assert!(e.message.contains("item u1 is in steps s3 and s4"), "{e:?}");
        assert!(e.fix.contains("s3/u1 or s4/u1"), "{e:?}");
    }

    #[test]
    fn unknown_steps_and_items_are_refused_naming_the_plan() {
        let p = offboarding();
        for bad in ["s9", "nope", "s9/u1", "s2/u1", ""] {
            let e = Selection::parse(&p, bad).unwrap_err();
            assert!(bad.is_empty() || e.message.contains(&p.id), "{bad}: {e:?}");
        }
    }
}
