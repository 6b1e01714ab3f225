//! Permission capability names and site roles (ts-api 3.29 XSD enumerations).
//!
//! They live in the site model, not in `tabflow-wire`, because the pure plan crate's
//! validator needs them (who may own a flow) and must not depend on the XML layer;
//! `tabflow_wire::capability` re-exports this module for the client and the emulator.

/// Every capability name the REST API accepts.
pub const CAPABILITIES: &[&str] = &[
    "AddComment",
    "AiAccess",
    "ChangeHierarchy",
    "ChangePermissions",
    "Connect",
    "CreateRefreshMetrics",
    "Delete",
    "Execute",
    "ExportData",
    "ExportImage",
    "ExportXml",
    "ExtractRefresh",
    "Filter",
    "InheritedProjectLeader",
    "Overwrite",
    "ProjectLeader",
    "PulseMetricDefine",
    "Read",
    "RunExplainData",
    "SaveAs",
    "ShareView",
    "ViewComments",
    "ViewUnderlyingData",
    "VizqlDataApiAccess",
    "WebAuthoring",
    "WebAuthoringForFlows",
    "Write",
];

/// Capabilities that let a grantee change or remove content: "broad" when given to everyone.
pub const WRITE_CAPABILITIES: &[&str] =
    &["Write", "Delete", "ChangePermissions", "Overwrite", "ChangeHierarchy", "ProjectLeader"];

/// Site roles the REST API accepts, current and legacy.
pub const SITE_ROLES: &[&str] = &[
    "Creator",
    "Explorer",
    "ExplorerCanPublish",
    "SiteAdministratorCreator",
    "SiteAdministratorExplorer",
    "Viewer",
    "Unlicensed",
    "Guest",
    "ServerAdministrator",
    "ReadOnly",
    "SupportUser",
    "Interactor",
    "Publisher",
    "SiteAdministrator",
    "ViewerWithPublish",
    "UnlicensedWithPublish",
];

/// `contentPermissions` values of a project.
pub const CONTENT_PERMISSIONS: &[&str] = &["LockedToProject", "LockedToProjectWithoutNested", "ManagedByOwner"];

pub fn is_capability(name: &str) -> bool {
    CAPABILITIES.contains(&name)
}

pub fn is_site_role(name: &str) -> bool {
    SITE_ROLES.contains(&name)
}

/// Site administrators (and server administrators) may change owners and permissions anywhere.
pub fn is_admin_role(role: &str) -> bool {
    matches!(
        role,
        "ServerAdministrator" | "SiteAdministrator" | "SiteAdministratorCreator" | "SiteAdministratorExplorer"
    )
}

/// Roles that may publish and own content.
pub fn can_publish(role: &str) -> bool {
    is_admin_role(role) || matches!(role, "Creator" | "ExplorerCanPublish" | "Publisher" | "ViewerWithPublish")
}

/// Site roles whose users may own a Tableau Prep flow: flows need a Creator license.
pub const FLOW_OWNER_ROLES: &[&str] = &["Creator", "SiteAdministratorCreator", "ServerAdministrator"];

/// Whether a user with this site role may own a flow (publish one, or be made its owner).
pub fn can_own_flows(role: &str) -> bool {
    FLOW_OWNER_ROLES.contains(&role)
}
