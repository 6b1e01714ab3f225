//! The REST API's XML documents as serde types (quick-xml conventions: `@name` is an
//! attribute, `$text` the element's text).
//!
//! One [`TsResponse`] / [`TsRequest`] type carries every child the API uses, each optional,
//! so the same types serve the emulator (serialize) and the client (deserialize). Unknown
//! attributes and children are ignored when reading, as Tableau's own clients do. Structs with
//! optional fields are `#[serde_with::skip_serializing_none]`: a `None` is not written at all
//! (no empty attribute or element), and a missing one reads as `None`.

use serde::{Deserialize, Serialize};

use crate::NAMESPACE;

/// Serializes a response document (with the XML declaration).
pub fn to_string(resp: &TsResponse) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version='1.0' encoding='UTF-8'?>");
    // Serializing these plain structs cannot fail: no maps with non-string keys, no bytes.
    out.push_str(&quick_xml::se::to_string_with_root("tsResponse", resp).expect("tsResponse serializes"));
    out
}

/// Serializes a request document.
pub fn request_to_string(req: &TsRequest) -> String {
    quick_xml::se::to_string_with_root("tsRequest", req).expect("tsRequest serializes")
}

/// Parses a request body. Tableau answers malformed bodies with 400000.
pub fn parse_request(body: &str) -> Result<TsRequest, crate::ApiError> {
    if body.trim().is_empty() {
        return Err(crate::ApiError::bad_request("The request body is empty; expected a <tsRequest> document."));
    }
    quick_xml::de::from_str(body)
        .map_err(|e| crate::ApiError::bad_request(format!("The request body is not a valid tsRequest document: {e}")))
}

/// Parses a response body.
pub fn parse_response(body: &str) -> Result<TsResponse, quick_xml::DeError> {
    quick_xml::de::from_str(body)
}

/// `<tsResponse>`: exactly the children present are written.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TsResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: String,
    pub pagination: Option<Pagination>,
    pub error: Option<ErrorElement>,
    pub credentials: Option<Credentials>,
    #[serde(rename = "serverInfo")]
    pub server_info: Option<ServerInfo>,
    pub site: Option<Site>,
    pub sites: Option<Sites>,
    pub user: Option<User>,
    pub users: Option<Users>,
    pub group: Option<Group>,
    pub groups: Option<Groups>,
    pub project: Option<Project>,
    pub projects: Option<Projects>,
    pub workbook: Option<Workbook>,
    pub workbooks: Option<Workbooks>,
    pub datasource: Option<Datasource>,
    pub datasources: Option<Datasources>,
    pub view: Option<View>,
    pub views: Option<Views>,
    pub flow: Option<Flow>,
    pub flows: Option<Flows>,
    pub connection: Option<Connection>,
    pub connections: Option<Connections>,
    pub permissions: Option<Permissions>,
    pub tags: Option<Tags>,
    pub subscription: Option<Subscription>,
    pub subscriptions: Option<Subscriptions>,
    pub job: Option<Job>,
    pub webhook: Option<Webhook>,
    pub webhooks: Option<Webhooks>,
    pub favorites: Option<Favorites>,
    pub revisions: Option<Revisions>,
    #[serde(rename = "fileUpload")]
    pub file_upload: Option<FileUpload>,
    #[serde(rename = "dataAlerts")]
    pub data_alerts: Option<DataAlerts>,
    /// `GET /dataAlerts/{id}`: one alert with its recipients.
    #[serde(rename = "dataAlert")]
    pub data_alert: Option<DataAlert>,
    pub schedule: Option<Schedule>,
    pub schedules: Option<Schedules>,
    pub tasks: Option<Tasks>,
    pub task: Option<Task>,
    pub extracts: Option<Extracts>,
    #[serde(rename = "extractRefresh")]
    pub extract_refresh: Option<ExtractRefresh>,
    #[serde(rename = "backgroundJobs")]
    pub background_jobs: Option<BackgroundJobs>,
}

impl TsResponse {
    /// An empty response in Tableau's namespace.
    pub fn new() -> TsResponse {
        TsResponse { xmlns: NAMESPACE.to_string(), ..TsResponse::default() }
    }
}

/// `<tsRequest>`: the bodies of writes and sign-in.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TsRequest {
    pub credentials: Option<Credentials>,
    pub site: Option<Site>,
    pub user: Option<User>,
    pub users: Option<Users>,
    pub group: Option<Group>,
    pub project: Option<Project>,
    pub workbook: Option<Workbook>,
    pub datasource: Option<Datasource>,
    pub flow: Option<Flow>,
    pub connection: Option<Connection>,
    pub permissions: Option<Permissions>,
    pub tags: Option<Tags>,
    pub subscription: Option<Subscription>,
    pub webhook: Option<Webhook>,
    pub favorite: Option<Favorite>,
    /// Extract refresh task (Cloud: create and update, with a `<schedule>` sibling) and
    /// add-to-schedule (`<task><extractRefresh>`).
    #[serde(rename = "extractRefresh")]
    pub extract_refresh: Option<ExtractRefresh>,
    pub task: Option<Task>,
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    #[serde(rename = "@pageNumber")]
    pub page_number: String,
    #[serde(rename = "@pageSize")]
    pub page_size: String,
    #[serde(rename = "@totalAvailable")]
    pub total_available: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorElement {
    #[serde(rename = "@code")]
    pub code: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub detail: String,
}

/// Sign-in credentials (request) and the session they open (response).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@password")]
    pub password: Option<String>,
    #[serde(rename = "@personalAccessTokenName")]
    pub personal_access_token_name: Option<String>,
    #[serde(rename = "@personalAccessTokenSecret")]
    pub personal_access_token_secret: Option<String>,
    #[serde(rename = "@jwt")]
    pub jwt: Option<String>,
    #[serde(rename = "@token")]
    pub token: Option<String>,
    #[serde(rename = "@estimatedTimeToExpiration")]
    pub estimated_time_to_expiration: Option<String>,
    pub site: Option<Site>,
    pub user: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    #[serde(rename = "productVersion")]
    pub product_version: ProductVersion,
    #[serde(rename = "restApiVersion")]
    pub rest_api_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductVersion {
    #[serde(rename = "@build", default)]
    pub build: String,
    #[serde(rename = "$text", default)]
    pub version: String,
}

/// A reference to another resource: `<project id="..." name="..."/>`, `<owner id/>`, ...
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
}

impl IdRef {
    pub fn id(id: impl Into<String>) -> IdRef {
        IdRef { id: Some(id.into()), name: None }
    }

    pub fn named(id: impl Into<String>, name: impl Into<String>) -> IdRef {
        IdRef { id: Some(id.into()), name: Some(name.into()) }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@contentUrl")]
    pub content_url: Option<String>,
    #[serde(rename = "@adminMode")]
    pub admin_mode: Option<String>,
    #[serde(rename = "@state")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sites {
    #[serde(default)]
    pub site: Vec<Site>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@siteRole")]
    pub site_role: Option<String>,
    #[serde(rename = "@lastLogin")]
    pub last_login: Option<String>,
    #[serde(rename = "@externalAuthUserId")]
    pub external_auth_user_id: Option<String>,
    #[serde(rename = "@fullName")]
    pub full_name: Option<String>,
    #[serde(rename = "@email")]
    pub email: Option<String>,
    #[serde(rename = "@authSetting")]
    pub auth_setting: Option<String>,
    #[serde(rename = "@password")]
    pub password: Option<String>,
    #[serde(rename = "@locale")]
    pub locale: Option<String>,
    #[serde(rename = "@language")]
    pub language: Option<String>,
    pub domain: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    #[serde(default)]
    pub user: Vec<User>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@minimumSiteRole")]
    pub minimum_site_role: Option<String>,
    #[serde(rename = "@userCount")]
    pub user_count: Option<String>,
    pub domain: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Groups {
    #[serde(default)]
    pub group: Vec<Group>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@description")]
    pub description: Option<String>,
    #[serde(rename = "@contentPermissions")]
    pub content_permissions: Option<String>,
    #[serde(rename = "@parentProjectId")]
    pub parent_project_id: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@updatedAt")]
    pub updated_at: Option<String>,
    #[serde(rename = "@topLevelProject")]
    pub top_level_project: Option<String>,
    #[serde(rename = "@writeable")]
    pub writeable: Option<String>,
    pub owner: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projects {
    #[serde(default)]
    pub project: Vec<Project>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "@label")]
    pub label: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags {
    #[serde(default)]
    pub tag: Vec<Tag>,
}

impl Tags {
    pub fn from_labels<I: IntoIterator<Item = S>, S: Into<String>>(labels: I) -> Tags {
        Tags { tag: labels.into_iter().map(|l| Tag { label: l.into() }).collect() }
    }

    pub fn labels(&self) -> Vec<String> {
        self.tag.iter().map(|t| t.label.clone()).collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(rename = "@totalViewCount")]
    pub total_view_count: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workbook {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@description")]
    pub description: Option<String>,
    #[serde(rename = "@contentUrl")]
    pub content_url: Option<String>,
    #[serde(rename = "@webpageUrl")]
    pub webpage_url: Option<String>,
    #[serde(rename = "@showTabs")]
    pub show_tabs: Option<String>,
    #[serde(rename = "@size")]
    pub size: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@updatedAt")]
    pub updated_at: Option<String>,
    #[serde(rename = "@encryptExtracts")]
    pub encrypt_extracts: Option<String>,
    #[serde(rename = "@defaultViewId")]
    pub default_view_id: Option<String>,
    pub project: Option<IdRef>,
    pub owner: Option<IdRef>,
    pub tags: Option<Tags>,
    pub views: Option<Views>,
    pub connections: Option<Connections>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workbooks {
    #[serde(default)]
    pub workbook: Vec<Workbook>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datasource {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@contentUrl")]
    pub content_url: Option<String>,
    #[serde(rename = "@type")]
    pub kind: Option<String>,
    #[serde(rename = "@description")]
    pub description: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@updatedAt")]
    pub updated_at: Option<String>,
    #[serde(rename = "@isCertified")]
    pub is_certified: Option<String>,
    #[serde(rename = "@certificationNote")]
    pub certification_note: Option<String>,
    #[serde(rename = "@hasExtracts")]
    pub has_extracts: Option<String>,
    #[serde(rename = "@encryptExtracts")]
    pub encrypt_extracts: Option<String>,
    #[serde(rename = "@size")]
    pub size: Option<String>,
    #[serde(rename = "@webpageUrl")]
    pub webpage_url: Option<String>,
    pub project: Option<IdRef>,
    pub owner: Option<IdRef>,
    pub tags: Option<Tags>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datasources {
    #[serde(default)]
    pub datasource: Vec<Datasource>,
}

/// `<flow id name description webpageUrl fileType createdAt updatedAt><project/><owner/><tags/></flow>`
/// (REST `flowType`, API 3.3+). An update (`PUT /flows/{id}`) carries only `<project id/>`
/// and `<owner id/>`; TSC sends both, the project unchanged when only the owner changes.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@description")]
    pub description: Option<String>,
    #[serde(rename = "@webpageUrl")]
    pub webpage_url: Option<String>,
    #[serde(rename = "@fileType")]
    pub file_type: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@updatedAt")]
    pub updated_at: Option<String>,
    pub project: Option<IdRef>,
    pub owner: Option<IdRef>,
    pub tags: Option<Tags>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flows {
    #[serde(default)]
    pub flow: Vec<Flow>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@contentUrl")]
    pub content_url: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@updatedAt")]
    pub updated_at: Option<String>,
    #[serde(rename = "@sheetType")]
    pub sheet_type: Option<String>,
    #[serde(rename = "@viewUrlName")]
    pub view_url_name: Option<String>,
    pub workbook: Option<IdRef>,
    pub owner: Option<IdRef>,
    pub project: Option<IdRef>,
    pub tags: Option<Tags>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Views {
    #[serde(default)]
    pub view: Vec<View>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@type")]
    pub kind: Option<String>,
    #[serde(rename = "@embedPassword")]
    pub embed_password: Option<String>,
    #[serde(rename = "@serverAddress")]
    pub server_address: Option<String>,
    #[serde(rename = "@serverPort")]
    pub server_port: Option<String>,
    #[serde(rename = "@userName")]
    pub user_name: Option<String>,
    #[serde(rename = "@password")]
    pub password: Option<String>,
    #[serde(rename = "@queryTaggingEnabled")]
    pub query_tagging_enabled: Option<String>,
    pub datasource: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    #[serde(default)]
    pub connection: Vec<Connection>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@mode")]
    pub mode: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub capability: Vec<Capability>,
}

/// One grantee's capabilities: exactly one of `user`, `group`, `group_set`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GranteeCapabilities {
    pub group: Option<IdRef>,
    pub user: Option<IdRef>,
    #[serde(rename = "groupSet")]
    pub group_set: Option<IdRef>,
    #[serde(default)]
    pub capabilities: Capabilities,
}

impl GranteeCapabilities {
    /// `("user"|"group"|"groupSet", id)`.
    pub fn grantee(&self) -> Option<(&'static str, &str)> {
        if let Some(id) = self.user.as_ref().and_then(|u| u.id.as_deref()) {
            return Some(("user", id));
        }
        if let Some(id) = self.group.as_ref().and_then(|u| u.id.as_deref()) {
            return Some(("group", id));
        }
        if let Some(id) = self.group_set.as_ref().and_then(|u| u.id.as_deref()) {
            return Some(("groupSet", id));
        }
        None
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub project: Option<ResourceOwnerRef>,
    pub workbook: Option<ResourceOwnerRef>,
    pub datasource: Option<ResourceOwnerRef>,
    pub view: Option<ResourceOwnerRef>,
    pub flow: Option<ResourceOwnerRef>,
    #[serde(rename = "granteeCapabilities", default)]
    pub grantee_capabilities: Vec<GranteeCapabilities>,
}

/// `<workbook id name><owner id/></workbook>` inside `<permissions>`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceOwnerRef {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    pub owner: Option<IdRef>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionContent {
    #[serde(rename = "@id", default)]
    pub id: String,
    #[serde(rename = "@type", default)]
    pub kind: String,
    #[serde(rename = "@sendIfViewEmpty")]
    pub send_if_view_empty: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@subject")]
    pub subject: Option<String>,
    #[serde(rename = "@attachImage")]
    pub attach_image: Option<String>,
    #[serde(rename = "@attachPdf")]
    pub attach_pdf: Option<String>,
    #[serde(rename = "@suspended")]
    pub suspended: Option<String>,
    #[serde(rename = "@message")]
    pub message: Option<String>,
    pub content: Option<SubscriptionContent>,
    pub schedule: Option<IdRef>,
    pub user: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriptions {
    #[serde(default)]
    pub subscription: Vec<Subscription>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    #[serde(rename = "@id", default)]
    pub id: String,
    #[serde(rename = "@mode")]
    pub mode: Option<String>,
    #[serde(rename = "@type")]
    pub kind: Option<String>,
    #[serde(rename = "@progress")]
    pub progress: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@startedAt")]
    pub started_at: Option<String>,
    #[serde(rename = "@completedAt")]
    pub completed_at: Option<String>,
    #[serde(rename = "@finishCode")]
    pub finish_code: Option<String>,
    /// An extract refresh job's details: its content and, when it failed, why.
    #[serde(rename = "extractRefreshJob")]
    pub extract_refresh_job: Option<ExtractRefreshJob>,
}

/// `<extractRefreshJob><notes/><workbook|datasource id name/></extractRefreshJob>`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractRefreshJob {
    pub notes: Option<String>,
    pub workbook: Option<IdRef>,
    pub datasource: Option<IdRef>,
}

/// `<webhook-source><webhook-source-event-workbook-deleted/></webhook-source>`: the single
/// child element's name carries the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSource {
    #[serde(rename = "$value", default)]
    pub events: Vec<WebhookEvent>,
}

/// An event element; its tag is `webhook-source-event-<event>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookEvent {
    #[serde(rename = "webhook-source-event-datasource-refresh-started")]
    DatasourceRefreshStarted,
    #[serde(rename = "webhook-source-event-datasource-refresh-succeeded")]
    DatasourceRefreshSucceeded,
    #[serde(rename = "webhook-source-event-datasource-refresh-failed")]
    DatasourceRefreshFailed,
    #[serde(rename = "webhook-source-event-datasource-updated")]
    DatasourceUpdated,
    #[serde(rename = "webhook-source-event-datasource-created")]
    DatasourceCreated,
    #[serde(rename = "webhook-source-event-datasource-deleted")]
    DatasourceDeleted,
    #[serde(rename = "webhook-source-event-workbook-updated")]
    WorkbookUpdated,
    #[serde(rename = "webhook-source-event-workbook-created")]
    WorkbookCreated,
    #[serde(rename = "webhook-source-event-workbook-deleted")]
    WorkbookDeleted,
    #[serde(rename = "webhook-source-event-view-deleted")]
    ViewDeleted,
    #[serde(rename = "webhook-source-event-workbook-refresh-started")]
    WorkbookRefreshStarted,
    #[serde(rename = "webhook-source-event-workbook-refresh-succeeded")]
    WorkbookRefreshSucceeded,
    #[serde(rename = "webhook-source-event-workbook-refresh-failed")]
    WorkbookRefreshFailed,
    #[serde(rename = "webhook-source-event-admin-promoted")]
    AdminPromoted,
    #[serde(rename = "webhook-source-event-admin-demoted")]
    AdminDemoted,
}

impl WebhookEvent {
    const ALL: &[(WebhookEvent, &str)] = &[
        (WebhookEvent::DatasourceRefreshStarted, "datasource-refresh-started"),
        (WebhookEvent::DatasourceRefreshSucceeded, "datasource-refresh-succeeded"),
        (WebhookEvent::DatasourceRefreshFailed, "datasource-refresh-failed"),
        (WebhookEvent::DatasourceUpdated, "datasource-updated"),
        (WebhookEvent::DatasourceCreated, "datasource-created"),
        (WebhookEvent::DatasourceDeleted, "datasource-deleted"),
        (WebhookEvent::WorkbookUpdated, "workbook-updated"),
        (WebhookEvent::WorkbookCreated, "workbook-created"),
        (WebhookEvent::WorkbookDeleted, "workbook-deleted"),
        (WebhookEvent::ViewDeleted, "view-deleted"),
        (WebhookEvent::WorkbookRefreshStarted, "workbook-refresh-started"),
        (WebhookEvent::WorkbookRefreshSucceeded, "workbook-refresh-succeeded"),
        (WebhookEvent::WorkbookRefreshFailed, "workbook-refresh-failed"),
        (WebhookEvent::AdminPromoted, "admin-promoted"),
        (WebhookEvent::AdminDemoted, "admin-demoted"),
    ];

    /// The short name (`workbook-deleted`).
    pub fn name(&self) -> &'static str {
        WebhookEvent::ALL.iter().find(|(e, _)| e == self).map(|(_, n)| *n).unwrap_or("unknown")
    }

    pub fn from_name(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.iter().find(|(_, n)| *n == name).map(|(e, _)| e.clone())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDestinationHttp {
    #[serde(rename = "@method", default)]
    pub method: String,
    #[serde(rename = "@url", default)]
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDestination {
    #[serde(rename = "webhook-destination-http", default)]
    pub http: WebhookDestinationHttp,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@isEnabled")]
    pub is_enabled: Option<String>,
    #[serde(rename = "@event")]
    pub event: Option<String>,
    #[serde(rename = "webhook-source")]
    pub source: Option<WebhookSource>,
    #[serde(rename = "webhook-destination")]
    pub destination: Option<WebhookDestination>,
    pub owner: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhooks {
    #[serde(default)]
    pub webhook: Vec<Webhook>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Favorite {
    #[serde(rename = "@label", default)]
    pub label: String,
    pub workbook: Option<IdRef>,
    pub view: Option<IdRef>,
    pub datasource: Option<IdRef>,
    pub project: Option<IdRef>,
}

impl Favorite {
    /// `(type, id)` of the favorite's content.
    pub fn content(&self) -> Option<(&'static str, &str)> {
        fn pick(r: &Option<IdRef>) -> Option<&str> {
            r.as_ref().and_then(|r| r.id.as_deref())
        }
        pick(&self.workbook)
            .map(|id| ("workbook", id))
            .or_else(|| pick(&self.view).map(|id| ("view", id)))
            .or_else(|| pick(&self.datasource).map(|id| ("datasource", id)))
            .or_else(|| pick(&self.project).map(|id| ("project", id)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Favorites {
    #[serde(default)]
    pub favorite: Vec<Favorite>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    #[serde(rename = "@revisionNumber", default)]
    pub revision_number: String,
    #[serde(rename = "@publishedAt")]
    pub published_at: Option<String>,
    #[serde(rename = "@deleted")]
    pub deleted: Option<String>,
    #[serde(rename = "@current")]
    pub current: Option<String>,
    #[serde(rename = "@sizeInBytes")]
    pub size_in_bytes: Option<String>,
    pub publisher: Option<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revisions {
    #[serde(default)]
    pub revision: Vec<Revision>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUpload {
    #[serde(rename = "@uploadSessionId", default)]
    pub upload_session_id: String,
    #[serde(rename = "@fileSize", default)]
    pub file_size: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataAlert {
    #[serde(rename = "@id", default)]
    pub id: String,
    #[serde(rename = "@subject")]
    pub subject: Option<String>,
    pub owner: Option<IdRef>,
    pub view: Option<AlertView>,
    /// Only in `GET /dataAlerts/{id}` (the list leaves them out).
    pub recipients: Option<Recipients>,
}

/// A data alert's view: `<view id name><workbook id name/><project id name/></view>` (Tableau
/// always nests both; tableauserverclient fails to parse an alert without them).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    pub workbook: Option<IdRef>,
    pub project: Option<IdRef>,
}

/// `<recipients><recipient id="..."/></recipients>` of a data alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipients {
    #[serde(rename = "recipient", default)]
    pub recipient: Vec<IdRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataAlerts {
    #[serde(rename = "dataAlert", default)]
    pub data_alert: Vec<DataAlert>,
}

/// `<interval hours="24"/>`, `<interval weekDay="Monday"/>`, `<interval monthDay="1"/>`,
/// `<interval minutes="30"/>`: one attribute each.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    #[serde(rename = "@hours")]
    pub hours: Option<String>,
    #[serde(rename = "@minutes")]
    pub minutes: Option<String>,
    #[serde(rename = "@weekDay")]
    pub week_day: Option<String>,
    #[serde(rename = "@monthDay")]
    pub month_day: Option<String>,
}

impl Interval {
    /// The interval as (attribute, value), e.g. `("weekDay", "Monday")`.
    pub fn pair(&self) -> Option<(&'static str, &str)> {
        if let Some(v) = &self.hours {
            Some(("hours", v))
        } else if let Some(v) = &self.minutes {
            Some(("minutes", v))
        } else if let Some(v) = &self.week_day {
            Some(("weekDay", v))
        } else {
            self.month_day.as_deref().map(|v| ("monthDay", v))
        }
    }

    /// The element for (attribute, value); `None` for an attribute Tableau does not know.
    pub fn from_pair(name: &str, value: &str) -> Option<Interval> {
        let v = Some(value.to_string());
        Some(match name {
            "hours" => Interval { hours: v, ..Interval::default() },
            "minutes" => Interval { minutes: v, ..Interval::default() },
            "weekDay" => Interval { week_day: v, ..Interval::default() },
            "monthDay" => Interval { month_day: v, ..Interval::default() },
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals {
    #[serde(default)]
    pub interval: Vec<Interval>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrequencyDetails {
    #[serde(rename = "@start")]
    pub start: Option<String>,
    #[serde(rename = "@end")]
    pub end: Option<String>,
    pub intervals: Option<Intervals>,
}

/// A schedule (`GET /schedules`), or a Cloud task's own schedule (no id, name or state).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@name")]
    pub name: Option<String>,
    #[serde(rename = "@state")]
    pub state: Option<String>,
    #[serde(rename = "@priority")]
    pub priority: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@updatedAt")]
    pub updated_at: Option<String>,
    #[serde(rename = "@type")]
    pub kind: Option<String>,
    #[serde(rename = "@frequency")]
    pub frequency: Option<String>,
    #[serde(rename = "@nextRunAt")]
    pub next_run_at: Option<String>,
    #[serde(rename = "@executionOrder")]
    pub execution_order: Option<String>,
    #[serde(rename = "frequencyDetails")]
    pub frequency_details: Option<FrequencyDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedules {
    #[serde(default)]
    pub schedule: Vec<Schedule>,
}

/// `<extractRefresh id priority consecutiveFailedCount type><schedule/><workbook|datasource/>`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractRefresh {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@priority")]
    pub priority: Option<String>,
    #[serde(rename = "@consecutiveFailedCount")]
    pub consecutive_failed_count: Option<String>,
    #[serde(rename = "@type")]
    pub kind: Option<String>,
    pub schedule: Option<Schedule>,
    pub workbook: Option<IdRef>,
    pub datasource: Option<IdRef>,
    #[serde(rename = "lastRunAt")]
    pub last_run_at: Option<String>,
}

impl ExtractRefresh {
    /// The target as (`workbook`|`datasource`, id).
    pub fn target(&self) -> Option<(&'static str, &str)> {
        if let Some(id) = self.workbook.as_ref().and_then(|w| w.id.as_deref()) {
            Some(("workbook", id))
        } else {
            self.datasource.as_ref().and_then(|d| d.id.as_deref()).map(|id| ("datasource", id))
        }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    #[serde(rename = "extractRefresh")]
    pub extract_refresh: Option<ExtractRefresh>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tasks {
    #[serde(default)]
    pub task: Vec<Task>,
}

/// `GET /sites/{id}/schedules/{id}/extracts`: `<extract id priority type><workbook/></extract>`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extract {
    #[serde(rename = "@id")]
    pub id: Option<String>,
    #[serde(rename = "@priority")]
    pub priority: Option<String>,
    #[serde(rename = "@type")]
    pub kind: Option<String>,
    pub workbook: Option<IdRef>,
    pub datasource: Option<IdRef>,
}

impl Extract {
    /// The target as (`workbook`|`datasource`, id).
    pub fn target(&self) -> Option<(&'static str, &str)> {
        if let Some(id) = self.workbook.as_ref().and_then(|w| w.id.as_deref()) {
            Some(("workbook", id))
        } else {
            self.datasource.as_ref().and_then(|d| d.id.as_deref()).map(|id| ("datasource", id))
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracts {
    #[serde(default)]
    pub extract: Vec<Extract>,
}

/// `GET /sites/{id}/jobs`: `<backgroundJob id status createdAt startedAt endedAt priority jobType title subtitle>`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundJob {
    #[serde(rename = "@id", default)]
    pub id: String,
    /// `Success`, `Failed`, `Cancelled`, `InProgress`, `Pending`.
    #[serde(rename = "@status")]
    pub status: Option<String>,
    #[serde(rename = "@createdAt")]
    pub created_at: Option<String>,
    #[serde(rename = "@startedAt")]
    pub started_at: Option<String>,
    #[serde(rename = "@endedAt")]
    pub ended_at: Option<String>,
    #[serde(rename = "@priority")]
    pub priority: Option<String>,
    #[serde(rename = "@jobType")]
    pub job_type: Option<String>,
    /// The refreshed content's name.
    #[serde(rename = "@title")]
    pub title: Option<String>,
    /// `Workbook` or `Data Source`, as Tableau's job list says.
    #[serde(rename = "@subtitle")]
    pub subtitle: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundJobs {
    #[serde(rename = "backgroundJob", default)]
    pub background_job: Vec<BackgroundJob>,
}

/// `true`/`false` as Tableau writes booleans.
pub fn bool_str(b: bool) -> String {
    if b { "true".into() } else { "false".into() }
}

/// Reads Tableau's boolean attribute values.
pub fn parse_bool(s: Option<&str>) -> Option<bool> {
    match s?.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;

    #[test]
    fn response_has_namespace_and_attributes() {
        let mut r = TsResponse::new();
        r.pagination =
            Some(Pagination { page_number: "1".into(), page_size: "100".into(), total_available: "1".into() });
        r.workbooks = Some(Workbooks {
            workbook: vec![Workbook {
                id: Some("w1".into()),
                name: Some("Sales & Co".into()),
                project: Some(IdRef::named("p1", "Finance")),
                owner: Some(IdRef::id("u1")),
                tags: Some(Tags::from_labels(["a", "b"])),
                ..Workbook::default()
            }],
        });
        let x = to_string(&r);
        assert!(x.contains(r#"<tsResponse xmlns="http://tableau.com/api">"#), "{x}");
        assert!(x.contains(r#"<pagination pageNumber="1" pageSize="100" totalAvailable="1"/>"#), "{x}");
        assert!(x.contains(r#"<workbook id="w1" name="Sales &amp; Co"><project id="p1" name="Finance"/><owner id="u1"/><tags><tag label="a"/><tag label="b"/></tags></workbook>"#), "{x}");
        let back = parse_response(&x).unwrap();
        assert_eq!(back.workbooks.unwrap().workbook[0].name.as_deref(), Some("Sales & Co"));
    }

    #[test]
    fn empty_list_still_has_element() {
        let mut r = TsResponse::new();
        r.workbooks = Some(Workbooks::default());
        assert!(to_string(&r).contains("<workbooks/>"));
    }

    #[test]
    fn reads_signin_request() {
        let req = parse_request(r#"<tsRequest><credentials personalAccessTokenName="tok" personalAccessTokenSecret="s"><site contentUrl="demo" /></credentials></tsRequest>"#).unwrap();
        let c = req.credentials.unwrap();
        assert_eq!(c.personal_access_token_name.as_deref(), Some("tok"));
        assert_eq!(c.site.unwrap().content_url.as_deref(), Some("demo"));
    }

    #[test]
    fn reads_permissions_request() {
        let req = parse_request(r#"<tsRequest><permissions><granteeCapabilities><user id="U"/><capabilities><capability name="Read" mode="Deny"/><capability name="Write" mode="Allow"/></capabilities></granteeCapabilities><granteeCapabilities><group id="G"/><capabilities><capability name="Read" mode="Allow"/></capabilities></granteeCapabilities></permissions></tsRequest>"#).unwrap();
        let p = req.permissions.unwrap();
        assert_eq!(p.grantee_capabilities.len(), 2);
        assert_eq!(p.grantee_capabilities[0].grantee(), Some(("user", "U")));
        assert_eq!(p.grantee_capabilities[0].capabilities.capability.len(), 2);
        assert_eq!(p.grantee_capabilities[1].grantee(), Some(("group", "G")));
    }

    #[test]
    fn tolerates_unknown_children() {
        let req = parse_request(r#"<tsRequest><workbook showTabs="false"><dataAccelerationConfig /><project id="P"/></workbook></tsRequest>"#).unwrap();
        let w = req.workbook.unwrap();
        assert_eq!(w.show_tabs.as_deref(), Some("false"));
        assert_eq!(w.project.unwrap().id.as_deref(), Some("P"));
    }

    #[test]
    fn webhook_round_trip() {
        let mut r = TsResponse::new();
        r.webhook = Some(Webhook {
            id: Some("h".into()),
            name: Some("n".into()),
            source: Some(WebhookSource { events: vec![WebhookEvent::WorkbookDeleted] }),
            destination: Some(WebhookDestination {
                http: WebhookDestinationHttp { method: "POST".into(), url: "https://x".into() },
            }),
            ..Webhook::default()
        });
        let x = to_string(&r);
        assert!(x.contains("<webhook-source><webhook-source-event-workbook-deleted/></webhook-source>"), "{x}");
        let back = parse_response(&x).unwrap().webhook.unwrap();
        assert_eq!(back.source.unwrap().events, vec![WebhookEvent::WorkbookDeleted]);
    }

    #[test]
    fn server_info_text() {
        let mut r = TsResponse::new();
        r.server_info = Some(ServerInfo {
            product_version: ProductVersion { build: "b".into(), version: "2025.1.0".into() },
            rest_api_version: "3.25".into(),
        });
        let x = to_string(&r);
        assert!(x.contains(r#"<serverInfo><productVersion build="b">2025.1.0</productVersion><restApiVersion>3.25</restApiVersion></serverInfo>"#), "{x}");
    }

    #[test]
    fn reads_tsc_flow_list_and_update() {
        // Shapes of TSC's `flow_get.xml` fixture and of its `FlowRequest.update_req`.
        let x = r#"<?xml version='1.0' encoding='UTF-8'?><tsResponse xmlns="http://tableau.com/api"><pagination pageNumber="1" pageSize="100" totalAvailable="1"/><flows><flow id="587d" name="FlowOne" description="Descriptive" webpageUrl="http://tableauserver/#/flows/1" fileType="tflx" createdAt="2019-06-16T21:43:28Z" updatedAt="2019-06-16T21:43:28Z"><project id="aa23" name="Default"/><owner id="7ebb"/><tags><tag label="i_love_tags"/></tags></flow></flows></tsResponse>"#;
        let r = parse_response(x).unwrap();
        let f = &r.flows.unwrap().flow[0];
        assert_eq!((f.name.as_deref(), f.file_type.as_deref()), (Some("FlowOne"), Some("tflx")));
        assert_eq!(f.project.as_ref().unwrap().name.as_deref(), Some("Default"));
        assert_eq!(f.owner.as_ref().unwrap().id.as_deref(), Some("7ebb"));
        assert_eq!(f.tags.as_ref().unwrap().labels(), vec!["i_love_tags".to_string()]);
        let req = parse_request(r#"<tsRequest><flow><project id="P" /><owner id="U" /></flow></tsRequest>"#).unwrap();
        let f = req.flow.unwrap();
        assert_eq!((f.project.unwrap().id.as_deref(), f.owner.unwrap().id.as_deref()), (Some("P"), Some("U")));
    }

    #[test]
    fn malformed_request_is_400000() {
        assert_eq!(parse_request("<tsRequest><user").unwrap_err().code, "400000");
        assert_eq!(parse_request("").unwrap_err().code, "400000");
    }
}
