//! The application service's integration tests: `tabflow_app::App` driven directly (no CLI)
//! against the demo site served by an in-process emulator over real HTTP, with a temporary
//! SQLite store. One test binary for the crate; each test has its own emulator and store.

mod approvals;
mod rollbacks;
mod runs;
mod scheduler;
mod scoped_reads;
mod seed_requests;
mod support;
mod templates;
