//! Integration tests of `tabflow serve` over real HTTP (reqwest) against the demo site on the
//! emulator and a temporary SQLite store.

mod access;
mod console;
mod flow;
mod hardening;
mod hooks;
mod query;
mod support;
