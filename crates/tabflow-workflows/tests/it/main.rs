//! Integration tests of tabflow-workflows.

mod questions;
