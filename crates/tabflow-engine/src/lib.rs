//! tabflow's workflow engine (DESIGN.md §1–2): plans, the five-check validator, approvals,
//! the parallel executor with its write-ahead journal, rollback, crash resume, staged
//! deletes, policy and the hash-chained audit log.
//!
//! The core is pure (plan types, fingerprint, validator, op classification); IO sits at the
//! edges: the Tableau client ([`ops`]), the store ([`store`]) and the clock.

pub mod approval;
pub mod audit;
pub mod executor;
pub mod notify;
pub mod ops;
pub mod plan;
pub mod policy;
pub mod store;
pub mod validate;

pub use executor::{Engine, Event, RunOptions, RunReport};
pub use plan::{Change, Effect, Item, Plan, RollbackClass, Step};
pub use policy::Policy;
pub use store::{RunStatus, Store};
pub use validate::{Facts, ValidatedPlan, validate};
