//! The engine's integration tests: operations against the emulator over real HTTP
//! (in process, on 127.0.0.1:0) and the store contract on SQLite and PostgreSQL. One test
//! binary for the crate; its tests run concurrently in this process, each with its own
//! emulator, temporary directory or PostgreSQL schema.

mod approvals;
mod backups;
mod delete_user;
mod leases;
mod migrations;
mod reads;
mod refresh_moves;
mod restore;
mod stores;
mod support;
