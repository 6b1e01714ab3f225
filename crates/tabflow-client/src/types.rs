//! The client's typed answers: the REST resources its calls return (users, projects,
//! workbooks, subscriptions, …), for crates that call the client and read what it gives back.
//! Parsing and writing the XML stays inside the client; other crates name these types through
//! this module, never `tabflow_wire::xml`.

pub use tabflow_wire::xml::{
    Capabilities, Capability, Connection, DataAlert, Datasource, Favorite, Flow, GranteeCapabilities, Group, IdRef,
    Job, Permissions, Project, ResourceOwnerRef, Revision, ServerInfo, Site, Subscription, SubscriptionContent, Tag,
    Tags, Usage, User, View, Webhook, Workbook,
};

/// Reads a boolean these types carry as text (`true`/`false`, `1`/`0`, `yes`/`no`); `None`
/// when absent or not a boolean.
pub fn parse_bool(s: Option<&str>) -> Option<bool> {
    tabflow_wire::xml::parse_bool(s)
}
