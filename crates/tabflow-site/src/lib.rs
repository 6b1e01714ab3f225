//! The `tabflow-site/1` model of a whole Tableau site (DESIGN.md §5), its checks, and the
//! deterministic demo-site generator. No IO: callers read and write the files.

pub mod capability;
pub mod diff;
pub mod generate;
pub mod model;
pub mod stream;

pub use model::*;
