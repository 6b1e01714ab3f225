//! The Tableau wire model shared by tabflow's client and its emulator. No IO.
//!
//! - [`ids`]: typed LUIDs (`WorkbookId`, ...).
//! - [`xml`]: the REST API's XML documents. Requests are `<tsRequest>` without a namespace;
//!   responses are `<tsResponse xmlns="http://tableau.com/api">`.
//! - [`error`]: Tableau's `<error code>` bodies and the status each code implies.
//! - [`paging`], [`filter`], [`sort`], [`fields`]: list query parameters, parsed and rendered
//!   in both the raw and the percent-encoded forms.
//! - [`graphql`]: Metadata API request and response envelopes.
//! - [`capability`]: permission capability names and site roles (defined in `tabflow-site`,
//!   which the pure plan crate also reads; re-exported here for the client and the emulator).
//! - [`twb`]: workbook files (`.twb`, and the `.twb` inside a `.twbx`): the published
//!   datasources they point at, and repointing.
//! - [`zip`]: zip archives as Tableau packages files (`.twbx`, `.tdsx`): read an entry, replace
//!   one and copy the others untouched.

// Requests, files and server responses are outside data: none of them may panic this crate.
// Exceptions are reviewed one by one with an `#[allow(..., reason)]` saying why they cannot fail.
#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used)]

pub mod error;
pub mod fields;
pub mod filter;
pub mod graphql;
pub mod ids;
pub mod paging;
pub mod sort;
pub mod twb;
pub mod xml;
pub mod zip;

pub use error::ApiError;
pub use tabflow_site::capability;

/// The namespace of every `tsResponse`.
pub const NAMESPACE: &str = "http://tableau.com/api";

/// The newest REST API version tabflow speaks and the emulator announces.
pub const API_VERSION: &str = "3.25";

/// The product version the emulator announces next to [`API_VERSION`].
pub const PRODUCT_VERSION: &str = "2025.1.0";
