//! Test hooks: simulated crashes at chosen moments of a run, for the crash tests of the
//! end-to-end suite. They exist only when the engine is built with the `test-hooks` feature,
//! which only the CLI crate's dev-dependencies turn on: the binary `cargo test` builds for its
//! integration tests has them, `cargo build --release --bin tabflow` does not (there every
//! hook is an empty inline function, and no environment variable is read).
//!
//! - `TABFLOW_CRASH_AT=between-calls`: exit (as if killed) after the first call of a change
//!   that needs several (permissions, tags, group memberships), before the next one.
//! - `TABFLOW_CRASH_AT=before-staged-record`: exit after moving an item to quarantine and
//!   before recording it as staged.
//! - [`RunOptions::crash_after_intents`](crate::executor::RunOptions::crash_after_intents):
//!   exit after that many durable journal intents.

/// Whether this build has the hooks.
pub const ENABLED: bool = cfg!(feature = "test-hooks");

/// Exits the process with status 137, without any cleanup, when `TABFLOW_CRASH_AT` names
/// this point.
#[cfg(feature = "test-hooks")]
pub(crate) fn crash_point(name: &str) {
    if std::env::var("TABFLOW_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("tabflow: simulated crash at {name} (TABFLOW_CRASH_AT)");
        std::process::exit(137);
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn crash_point(_name: &str) {}

/// Exits the process when `n` reaches `after` (the crash-after-intents hook).
#[cfg(feature = "test-hooks")]
pub(crate) fn crash_after(n: usize, after: Option<usize>) {
    if after == Some(n) {
        eprintln!("tabflow: simulated crash after {n} journal intents (TABFLOW_CRASH_AFTER)");
        std::process::exit(137);
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn crash_after(_n: usize, _after: Option<usize>) {}
