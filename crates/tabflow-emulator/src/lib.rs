//! tabflow's Tableau emulator: Tableau REST API 3.x, Metadata API (GraphQL) and VizQL Data
//! Service over an in-memory `tabflow-site/1` site, with fault injection and request stats
//! under `/_emulator/`.

pub mod content;
pub mod metadata;
mod rest;
pub mod server;
pub mod state;
pub mod vizql;

pub use server::{Emulator, Faults, NthCall, Options, Running, UploadLimits, start};
