//! Deterministic site generator (see generate.rs docs).
