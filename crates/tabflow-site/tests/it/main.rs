//! Integration tests of tabflow-site through its public API.

mod generate_pinned;
