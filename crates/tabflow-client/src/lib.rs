//! A typed async client for the Tableau REST API and Metadata API.
//!
//! ```no_run
//! # async fn demo() -> tabflow_client::Result<()> {
//! use futures::TryStreamExt;
//! use tabflow_client::{Client, Config, Credentials, Secret};
//! use tabflow_wire::filter::{Filter, Op};
//!
//! let config = Config::new("https://tableau.example.com", "finance",
//!     Credentials::Pat { name: "tabflow".into(), secret: Secret::new("...") });
//! let client = Client::connect(config).await?;
//! let stale: Vec<_> = client.workbooks()
//!     .filter(Filter::new().and("projectName", Op::Eq, "Finance"))
//!     .stream().try_collect().await?;
//! # Ok(()) }
//! ```
//!
//! Every call goes through one path ([`Client::send`]) that applies the site's concurrency
//! cap and rate limit, retries 429s (waiting as Tableau says) and, for idempotent calls only,
//! 5xx and broken connections with jittered exponential backoff, and signs in again once on
//! 401002.

pub mod cache;
pub mod client;
pub mod config;
pub mod error;
pub mod list;
pub mod metadata;
pub mod refreshes;
pub mod repository;
pub mod resources;
pub mod scoped;
pub mod secret;
mod send_by;
mod slots;
pub mod snapshot;
pub mod types;
pub mod usage;

pub use client::{Client, Gate, Request, Session, WriteCheck, fenced, plain_http_warning, plain_http_warning_for};
pub use config::{Config, Credentials};
pub use error::{Error, Result};
pub use resources::{
    Capability, ContentKind, DatasourceUpdate, FlowUpdate, Grantee, PermissionCall, ProjectUpdate, Upload,
    WorkbookUpdate, permission_calls,
};
pub use secret::{ExposeSecret, Secret};
pub use slots::WriteRoom;
