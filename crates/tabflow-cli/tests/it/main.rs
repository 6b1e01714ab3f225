//! End-to-end tests of the real `tabflow` binary, mostly against `tabflow emulator serve`
//! over real HTTP. One test binary for the crate: a binary per file linked the whole tree
//! once per file. The modules' tests run concurrently in this process (see `support`).

mod approvals;
mod audit_anchor;
mod bad_input;
mod cli;
mod datasources;
mod demo_shared;
mod engine;
mod fidelity;
mod flows;
mod learn;
mod licenses;
mod llm;
mod offboard_delete;
mod permissions;
mod policy;
mod postgres_store;
mod query;
mod refreshes;
mod reports;
mod runs_recovery;
mod scale_limits;
mod scale_out;
mod scale_purge;
mod scale_rollback;
mod site_cache;
mod staged_delete;
mod subscriptions;
mod support;
mod templates;
mod terminal;
mod tokens;
