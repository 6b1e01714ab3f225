//! tabflow's workflow engine (DESIGN.md §1–2): plans, the five-check validator, approvals,
//! the parallel executor with its write-ahead journal, rollback, crash resume, staged
//! deletes, policy and the hash-chained audit log.
//!
//! The pure core (plan types, fingerprint, intents, step kinds, policy, validator, op
//! classification) is the `tabflow-plan` crate, re-exported here as [`plan`], [`policy`] and
//! [`validate`]; this crate adds the IO at the edges: the Tableau client ([`ops`]), the
//! store ([`store`]) and the clock.

pub mod approval;
pub mod audit;
pub mod executor;
pub mod notify;
pub mod ops;
pub mod private;
pub mod store;
pub mod test_hooks;

pub use tabflow_plan::{plan, policy, validate};

pub use executor::{Engine, Event, RunOptions, RunReport};
pub use tabflow_plan::clock::{Clock, FixedClock};

/// The system clock: the one place the engine's time comes from when nothing else is given.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}
pub use plan::{Change, Effect, Item, Plan, RollbackClass, Step};
pub use policy::Policy;
pub use store::{RunStatus, Store};
pub use validate::{Facts, ValidatedPlan};
