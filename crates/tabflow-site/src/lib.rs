//! The `tabflow-site/1` model of a whole Tableau site (DESIGN.md §5), its checks and diff, the
//! deterministic demo-site generator, and [`Index`] (item lookups and the project tree of a
//! site: paths, ancestors, subtrees). No IO: callers read and write the files.

pub mod capability;
pub mod diff;
pub mod generate;
pub mod index;
pub mod model;
pub mod stream;
pub mod text;
pub mod time;

pub use index::Index;
pub use model::*;
