//! The entry points the fuzz targets call, one per reader of outside data. Each takes
//! arbitrary bytes and may return any error, but must not panic, abort or hang.
//!
//! `readers.rs` holds the readers of tabflow-wire, -nl, -plan and -site (tabflow-wire's
//! integration tests include it to replay `fuzz/corpus/<name>/` on stable); `graphql.rs`
//! holds the emulator's Metadata API (tabflow-emulator's integration tests include it and
//! replay `fuzz/corpus/graphql/`). `fuzz_targets/<name>.rs` calls the function of that name.

mod readers;

pub mod graphql;

pub use graphql::graphql;
pub use readers::*;
