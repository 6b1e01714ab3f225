//! tabflow's pure core: what a plan is and what makes it safe to run, with no IO.
//!
//! - [`clock`]: the injected source of "now" ([`Clock`]); the core itself never reads one.
//! - [`intent`]: the intent catalogue as one typed enum ([`Intent`]): the parser, the LLM
//!   backend (whose JSON Schema is generated from it), the CLI and the planner share it.
//! - [`ops`]: the typed reading of a plan's changes, the live image of an item, and where a
//!   live item stands against an operation (before / after / drifted) — the pure half of
//!   operations; the engine performs them.
//! - [`plan`]: the `tabflow-plan/2` format (DESIGN.md §5): steps, items, exact changes,
//!   effects, rollback classes, questions, the fingerprint keyed with the store's [`PlanKey`].
//! - [`selection`]: what an approval approves — (step, item) pairs, and their written form.
//! - [`step`]: step kinds ([`StepKind`]), from which a step's effect and rollback class are
//!   derived.
//! - [`policy`]: the policy file (what no plan may touch, how much a destructive step may do).
//! - [`validate`]: the five checks; only [`validate()`] constructs a [`ValidatedPlan`].
//! - [`record`]: the store's plain records (runs, journal entries, learning) that readers
//!   outside the engine need.
//!
//! Every front end, the planner (`tabflow-workflows`) and the engine build on these types.
//! The crate boundary keeps the core pure: it depends on no async runtime, database, HTTP
//! client or XML layer, and reads no clock (callers pass `now`). Check with
//! `cargo tree -p tabflow-plan -e normal`; the test at the end of this file checks the same
//! from `Cargo.lock`.

pub mod clock;
pub mod intent;
pub mod ops;
pub mod plan;
pub mod policy;
pub mod record;
pub mod selection;
pub mod step;
pub mod validate;

pub use clock::{Clock, FixedClock};
pub use intent::Intent;
pub use plan::{Change, Effect, Item, Plan, PlanKey, RollbackClass, Step};
pub use policy::Policy;
pub use selection::Selection;
pub use step::StepKind;
pub use validate::{Facts, ValidatedPlan, validate};

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// Crates the core must never reach, directly or through a dependency: async runtimes,
    /// databases, HTTP, XML, and tabflow's own IO crates.
    const IMPURE: &[&str] = &[
        "tokio",
        "mio",
        "sqlx",
        "reqwest",
        "hyper",
        "rustls",
        "quick-xml",
        "tabflow-wire",
        "tabflow-client",
        "tabflow-engine",
        "tabflow-emulator",
    ];

    /// Package name → the names of its dependencies, for every `[[package]]` of `Cargo.lock`
    /// (all versions of a name merged, so the closure can only be larger than the real one).
    fn lock_graph(lock: &str) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for package in lock.split("[[package]]").skip(1) {
            let Some(name) = package.lines().find_map(|l| l.strip_prefix("name = \"")).map(|n| n.trim_end_matches('"'))
            else {
                continue;
            };
            let entry = graph.entry(name).or_default();
            if let Some(list) = package.split("dependencies = [").nth(1).and_then(|d| d.split(']').next()) {
                for dep in list.split(',').map(|d| d.trim().trim_matches('"')).filter(|d| !d.is_empty()) {
                    entry.insert(dep.split(' ').next().unwrap_or(dep));
                }
            }
        }
        graph
    }

    #[test]
    fn the_dependency_tree_holds_no_runtime_database_http_or_xml() {
        let graph = lock_graph(include_str!("../../../Cargo.lock"));
        assert!(graph.contains_key("tabflow-plan"), "Cargo.lock lists tabflow-plan");
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut todo = vec!["tabflow-plan"];
        while let Some(p) = todo.pop() {
            if seen.insert(p) {
                todo.extend(graph.get(p).into_iter().flatten().copied());
            }
        }
        let bad: Vec<&&str> = IMPURE.iter().filter(|c| seen.contains(**c)).collect();
        assert!(
            bad.is_empty(),
            "tabflow-plan reaches {bad:?}; `cargo tree -p tabflow-plan -e normal -i <crate>` shows how"
        );
        // The check itself can fail: the engine does reach them.
        let mut engine: BTreeSet<&str> = BTreeSet::new();
        let mut todo = vec!["tabflow-engine"];
        while let Some(p) = todo.pop() {
            if engine.insert(p) {
                todo.extend(graph.get(p).into_iter().flatten().copied());
            }
        }
        assert!(engine.contains("tokio") && engine.contains("sqlx"), "the lock file was not read");
    }
}
