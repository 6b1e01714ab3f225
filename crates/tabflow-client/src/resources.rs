//! Typed calls for every resource the workflows use. Reads return the wire types from
//! `tabflow_wire::xml`; ids are typed.

use futures::StreamExt;
use reqwest::Method;
use tabflow_site::Mode;
use tabflow_wire::ids::*;
use tabflow_wire::xml::{self, IdRef, TsRequest};

use crate::client::{Body, Client, Request};
use crate::error::{Error, Result};
use crate::list::List;

/// The kinds of content that carry permissions and tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentKind {
    Project,
    Workbook,
    Datasource,
    View,
    Flow,
}

impl ContentKind {
    pub fn plural(self) -> &'static str {
        match self {
            ContentKind::Project => "projects",
            ContentKind::Workbook => "workbooks",
            ContentKind::Datasource => "datasources",
            ContentKind::View => "views",
            ContentKind::Flow => "flows",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            ContentKind::Project => "project",
            ContentKind::Workbook => "workbook",
            ContentKind::Datasource => "datasource",
            ContentKind::View => "view",
            ContentKind::Flow => "flow",
        }
    }

    pub fn parse(s: &str) -> Option<ContentKind> {
        Some(match s.trim_end_matches('s') {
            "project" => ContentKind::Project,
            "workbook" => ContentKind::Workbook,
            "datasource" => ContentKind::Datasource,
            "view" => ContentKind::View,
            "flow" => ContentKind::Flow,
            _ => return None,
        })
    }
}

/// A grantee of a permission rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grantee {
    User(String),
    Group(String),
}

impl Grantee {
    pub fn id(&self) -> &str {
        match self {
            Grantee::User(id) | Grantee::Group(id) => id,
        }
    }
    fn path(&self) -> &'static str {
        match self {
            Grantee::User(_) => "users",
            Grantee::Group(_) => "groups",
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Grantee::User(_) => "user",
            Grantee::Group(_) => "group",
        }
    }
}

/// One capability of one grantee.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability {
    pub grantee: Grantee,
    pub name: String,
    pub mode: Mode,
}

/// The calls that turn one rule set into another (see [`permission_calls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionCall {
    /// `DELETE .../permissions/{users|groups}/{id}/{cap}/{mode}`
    Delete(Capability),
    /// `PUT .../permissions` with these capabilities of one grantee (merge).
    Add(Grantee, Vec<(String, Mode)>),
}

/// The exact calls turning rule set `from` into `to`: deletes first (one per capability, as
/// the API requires; a capability whose mode flips is deleted, then added), then one merge
/// per grantee with everything it gains.
pub fn permission_calls(from: &[Capability], to: &[Capability]) -> Vec<PermissionCall> {
    use std::collections::{BTreeMap, BTreeSet};
    let a: BTreeSet<&Capability> = from.iter().collect();
    let b: BTreeSet<&Capability> = to.iter().collect();
    let mut calls: Vec<PermissionCall> = a.difference(&b).map(|c| PermissionCall::Delete((*c).clone())).collect();
    let mut adds: BTreeMap<&Grantee, Vec<(String, Mode)>> = BTreeMap::new();
    for c in b.difference(&a) {
        adds.entry(&c.grantee).or_default().push((c.name.clone(), c.mode));
    }
    calls.extend(adds.into_iter().map(|(g, caps)| PermissionCall::Add(g.clone(), caps)));
    calls
}

/// Changes to a workbook (`PUT /workbooks/{id}`); `None` = unchanged.
#[derive(Debug, Clone, Default)]
pub struct WorkbookUpdate {
    pub name: Option<String>,
    pub project_id: Option<ProjectId>,
    pub owner_id: Option<UserId>,
    pub show_tabs: Option<bool>,
    pub description: Option<String>,
}

/// Changes to a datasource (`PUT /datasources/{id}`).
#[derive(Debug, Clone, Default)]
pub struct DatasourceUpdate {
    pub name: Option<String>,
    pub project_id: Option<ProjectId>,
    pub owner_id: Option<UserId>,
    pub certified: Option<bool>,
    pub certification_note: Option<String>,
    pub description: Option<String>,
}

/// Changes to a Tableau Prep flow (`PUT /flows/{id}`): the API changes only these two.
#[derive(Debug, Clone, Default)]
pub struct FlowUpdate {
    pub project_id: Option<ProjectId>,
    pub owner_id: Option<UserId>,
}

/// Changes to a project (`PUT /projects/{id}`).
#[derive(Debug, Clone, Default)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    /// `Some(None)` moves it to the top level.
    pub parent_id: Option<Option<ProjectId>>,
    pub owner_id: Option<UserId>,
    pub content_permissions: Option<String>,
    pub description: Option<String>,
}

/// Above this size Tableau requires the chunked upload (`/fileUploads`).
pub const SINGLE_UPLOAD_LIMIT: usize = 64 * 1024 * 1024;
/// Chunk size for the chunked upload.
pub const CHUNK_SIZE: usize = 5 * 1024 * 1024;

/// A file to publish: whole in memory, or read piece by piece (a backup kept in a store) with
/// its total size. A file of pieces larger than [`CHUNK_SIZE`] goes to the server through an
/// upload session one piece at a time, so publishing it costs memory of one piece whatever
/// its size; a smaller one is gathered (at most [`CHUNK_SIZE`]) and published in one request.
/// A piece that fails (`Err` with what went wrong, e.g. a checksum that does not match at
/// the end) stops the publish before the file is committed.
pub enum Upload<'a> {
    Bytes(&'a [u8]),
    Pieces { size: u64, pieces: futures::stream::BoxStream<'a, std::result::Result<Vec<u8>, String>> },
}

impl std::fmt::Debug for Upload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upload::Bytes(b) => write!(f, "Upload::Bytes({} bytes)", b.len()),
            Upload::Pieces { size, .. } => write!(f, "Upload::Pieces({size} bytes)"),
        }
    }
}

fn multipart(parts: &[(&str, Option<&str>, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("tabflow-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, filename, ctype, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => {
                body.extend_from_slice(format!("Content-Disposition: name=\"{name}\"; filename=\"{f}\"\r\n").as_bytes())
            }
            None => body.extend_from_slice(format!("Content-Disposition: name=\"{name}\"\r\n").as_bytes()),
        }
        body.extend_from_slice(format!("Content-Type: {ctype}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), body)
}

fn filename_from(resp: &crate::client::Response, fallback: &str) -> String {
    resp.headers
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("filename=").nth(1))
        .map(|f| f.trim().trim_matches('"').to_string())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}

impl Client {
    // ------------------------------------------------------------ workbooks

    pub fn workbooks(&self) -> List<xml::Workbook> {
        List::new(
            self,
            "workbooks",
            "workbook",
            |d| d.workbooks.map(|w| w.workbook).unwrap_or_default(),
            |w: &xml::Workbook| w.id.clone().unwrap_or_default(),
        )
    }

    pub async fn workbook(&self, id: &WorkbookId) -> Result<xml::Workbook> {
        let d = self.send_xml(Request::get(format!("workbooks/{id}"))).await?;
        d.workbook.ok_or_else(|| missing("workbook"))
    }

    pub async fn update_workbook(&self, id: &WorkbookId, u: &WorkbookUpdate) -> Result<xml::Workbook> {
        let w = xml::Workbook {
            name: u.name.clone(),
            description: u.description.clone(),
            show_tabs: u.show_tabs.map(xml::bool_str),
            project: u.project_id.as_ref().map(|p| IdRef::id(p.as_str())),
            owner: u.owner_id.as_ref().map(|o| IdRef::id(o.as_str())),
            ..xml::Workbook::default()
        };
        let d = self
            .send_xml(Request::put(format!("workbooks/{id}"), &TsRequest { workbook: Some(w), ..TsRequest::default() }))
            .await?;
        d.workbook.ok_or_else(|| missing("workbook"))
    }

    pub async fn delete_workbook(&self, id: &WorkbookId) -> Result<()> {
        self.send(Request::delete(format!("workbooks/{id}"))).await.map(|_| ())
    }

    pub async fn workbook_views(&self, id: &WorkbookId, usage: bool) -> Result<Vec<xml::View>> {
        let mut r = Request::get(format!("workbooks/{id}/views"));
        if usage {
            r = r.query("includeUsageStatistics", "true");
        }
        Ok(self.send_xml(r).await?.views.map(|v| v.view).unwrap_or_default())
    }

    pub async fn workbook_connections(&self, id: &WorkbookId) -> Result<Vec<xml::Connection>> {
        Ok(self
            .send_xml(Request::get(format!("workbooks/{id}/connections")))
            .await?
            .connections
            .map(|c| c.connection)
            .unwrap_or_default())
    }

    pub fn workbook_revisions(&self, id: &WorkbookId) -> List<xml::Revision> {
        List::new(
            self,
            format!("workbooks/{id}/revisions"),
            "revision",
            |d| d.revisions.map(|r| r.revision).unwrap_or_default(),
            |r| r.revision_number.clone(),
        )
    }

    /// Downloads the workbook file: (file name, bytes).
    pub async fn download_workbook(&self, id: &WorkbookId, include_extract: bool) -> Result<(String, Vec<u8>)> {
        let r = Request::get(format!("workbooks/{id}/content"))
            .query("includeExtract", if include_extract { "True" } else { "False" })
            .download();
        let resp = self.send(r).await?;
        Ok((filename_from(&resp, &format!("{id}.twbx")), resp.body))
    }

    /// Downloads a workbook's file into `file` as it arrives (bounded memory, any size up to
    /// [`crate::client::MAX_FILE_DOWNLOAD_BYTES`]): its file name and size.
    pub async fn download_workbook_to(
        &self,
        id: &WorkbookId,
        include_extract: bool,
        file: &mut tokio::fs::File,
    ) -> Result<(String, u64)> {
        let r = Request::get(format!("workbooks/{id}/content"))
            .query("includeExtract", if include_extract { "True" } else { "False" })
            .download();
        let resp = self.send_to_file(r, file).await?;
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        Ok((filename_from(&resp, &format!("{id}.twbx")), size))
    }

    /// Publishes a workbook file (`.twb` or `.twbx`); with `overwrite` it replaces the workbook
    /// of the same name in the project, keeping its id. Files over 64 MB use the chunked upload.
    pub async fn publish_workbook(
        &self,
        project: &ProjectId,
        name: &str,
        filename: &str,
        data: &[u8],
        overwrite: bool,
    ) -> Result<xml::Workbook> {
        self.publish_workbook_upload(project, name, filename, Upload::Bytes(data), overwrite).await
    }

    /// [`Client::publish_workbook`] of an [`Upload`] (e.g. a stored backup, piece by piece).
    pub async fn publish_workbook_upload(
        &self,
        project: &ProjectId,
        name: &str,
        filename: &str,
        data: Upload<'_>,
        overwrite: bool,
    ) -> Result<xml::Workbook> {
        let payload = xml::request_to_string(&TsRequest {
            workbook: Some(xml::Workbook {
                name: Some(name.to_string()),
                show_tabs: Some("true".into()),
                project: Some(IdRef::id(project.as_str())),
                ..xml::Workbook::default()
            }),
            ..TsRequest::default()
        });
        let ext = if filename.to_lowercase().ends_with(".twbx") { "twbx" } else { "twb" };
        let d = self
            .publish("workbooks", "workbookType", ext, "tableau_workbook", &payload, filename, data, overwrite)
            .await?;
        d.workbook.ok_or_else(|| missing("workbook"))
    }

    /// Publishes a workbook file over the workbook of the same name in the project (overwrite),
    /// keeping its tabs setting (a publish sets it, and it decides whether views carry their
    /// own permissions).
    pub async fn republish_workbook(
        &self,
        project: &ProjectId,
        name: &str,
        filename: &str,
        data: &[u8],
        show_tabs: bool,
    ) -> Result<xml::Workbook> {
        self.republish_workbook_upload(project, name, filename, Upload::Bytes(data), show_tabs).await
    }

    /// [`Client::republish_workbook`] of an [`Upload`] (e.g. a stored backup, piece by piece).
    pub async fn republish_workbook_upload(
        &self,
        project: &ProjectId,
        name: &str,
        filename: &str,
        data: Upload<'_>,
        show_tabs: bool,
    ) -> Result<xml::Workbook> {
        let payload = xml::request_to_string(&TsRequest {
            workbook: Some(xml::Workbook {
                name: Some(name.to_string()),
                show_tabs: Some(xml::bool_str(show_tabs)),
                project: Some(IdRef::id(project.as_str())),
                ..xml::Workbook::default()
            }),
            ..TsRequest::default()
        });
        let ext = if filename.to_lowercase().ends_with(".twbx") { "twbx" } else { "twb" };
        let d =
            self.publish("workbooks", "workbookType", ext, "tableau_workbook", &payload, filename, data, true).await?;
        d.workbook.ok_or_else(|| missing("workbook"))
    }

    pub async fn publish_datasource(
        &self,
        project: &ProjectId,
        name: &str,
        filename: &str,
        data: &[u8],
        overwrite: bool,
    ) -> Result<xml::Datasource> {
        self.publish_datasource_upload(project, name, filename, Upload::Bytes(data), overwrite).await
    }

    /// [`Client::publish_datasource`] of an [`Upload`] (e.g. a stored backup, piece by piece).
    pub async fn publish_datasource_upload(
        &self,
        project: &ProjectId,
        name: &str,
        filename: &str,
        data: Upload<'_>,
        overwrite: bool,
    ) -> Result<xml::Datasource> {
        let payload = xml::request_to_string(&TsRequest {
            datasource: Some(xml::Datasource {
                name: Some(name.to_string()),
                project: Some(IdRef::id(project.as_str())),
                ..xml::Datasource::default()
            }),
            ..TsRequest::default()
        });
        let ext = if filename.to_lowercase().ends_with(".tdsx") { "tdsx" } else { "tds" };
        let d = self
            .publish("datasources", "datasourceType", ext, "tableau_datasource", &payload, filename, data, overwrite)
            .await?;
        d.datasource.ok_or_else(|| missing("datasource"))
    }

    async fn publish(
        &self,
        collection: &str,
        type_param: &str,
        ext: &str,
        file_part: &str,
        payload: &str,
        filename: &str,
        data: Upload<'_>,
        overwrite: bool,
    ) -> Result<xml::TsResponse> {
        let mut req =
            Request::new(Method::POST, collection).query(type_param, ext).query("overwrite", overwrite.to_string());
        let whole: Vec<u8>;
        let single: Option<&[u8]> = match data {
            Upload::Bytes(d) if d.len() <= SINGLE_UPLOAD_LIMIT => Some(d),
            Upload::Bytes(d) => {
                let pieces = futures::stream::iter(d.chunks(CHUNK_SIZE).map(|c| Ok(c.to_vec()))).boxed();
                req = req.query("uploadSessionId", self.upload_in_chunks(pieces).await?);
                None
            }
            Upload::Pieces { size, pieces } if size <= CHUNK_SIZE as u64 => {
                whole = gather(pieces, CHUNK_SIZE).await?;
                Some(whole.as_slice())
            }
            Upload::Pieces { pieces, .. } => {
                req = req.query("uploadSessionId", self.upload_in_chunks(pieces).await?);
                None
            }
        };
        let (ct, body) = match single {
            Some(data) => multipart(&[
                ("request_payload", None, "text/xml", payload.as_bytes()),
                (file_part, Some(filename), "application/octet-stream", data),
            ]),
            None => multipart(&[("request_payload", None, "text/xml", payload.as_bytes())]),
        };
        req.body = Some(Body::Multipart(ct, body));
        // Publishing with overwrite replaces the same file: repeating it is harmless. Without
        // overwrite a repeat would fail with 409, so it is not retried blindly.
        req.idempotent = overwrite;
        self.send_xml(req).await
    }

    /// Sends a file's pieces into a new upload session, each as it is read (pieces larger
    /// than [`CHUNK_SIZE`] in parts of that size): its id. A piece that fails stops it (the
    /// session is left unfinished; the server expires it).
    async fn upload_in_chunks(
        &self,
        mut pieces: futures::stream::BoxStream<'_, std::result::Result<Vec<u8>, String>>,
    ) -> Result<String> {
        let d = self.send_xml(Request::new(Method::POST, "fileUploads")).await?;
        let id = d.file_upload.map(|f| f.upload_session_id).ok_or_else(|| missing("fileUpload"))?;
        while let Some(piece) = pieces.next().await {
            let piece = piece.map_err(Error::Upload)?;
            for chunk in piece.chunks(CHUNK_SIZE) {
                let (ct, body) = multipart(&[
                    ("request_payload", None, "text/xml", b""),
                    ("tableau_file", Some("file"), "application/octet-stream", chunk),
                ]);
                let mut r = Request::new(Method::PUT, format!("fileUploads/{id}"));
                r.body = Some(Body::Multipart(ct, body));
                // Appending a chunk twice would corrupt the file: never retried blindly.
                r.idempotent = false;
                self.send(r).await?;
            }
        }
        Ok(id)
    }

    // ------------------------------------------------------------ datasources

    pub fn datasources(&self) -> List<xml::Datasource> {
        List::new(
            self,
            "datasources",
            "datasource",
            |d| d.datasources.map(|w| w.datasource).unwrap_or_default(),
            |w: &xml::Datasource| w.id.clone().unwrap_or_default(),
        )
    }

    pub async fn datasource(&self, id: &DatasourceId) -> Result<xml::Datasource> {
        self.send_xml(Request::get(format!("datasources/{id}"))).await?.datasource.ok_or_else(|| missing("datasource"))
    }

    pub async fn update_datasource(&self, id: &DatasourceId, u: &DatasourceUpdate) -> Result<xml::Datasource> {
        let d = xml::Datasource {
            name: u.name.clone(),
            description: u.description.clone(),
            is_certified: u.certified.map(xml::bool_str),
            certification_note: u.certification_note.clone(),
            project: u.project_id.as_ref().map(|p| IdRef::id(p.as_str())),
            owner: u.owner_id.as_ref().map(|o| IdRef::id(o.as_str())),
            ..xml::Datasource::default()
        };
        let r = self
            .send_xml(Request::put(
                format!("datasources/{id}"),
                &TsRequest { datasource: Some(d), ..TsRequest::default() },
            ))
            .await?;
        r.datasource.ok_or_else(|| missing("datasource"))
    }

    pub async fn delete_datasource(&self, id: &DatasourceId) -> Result<()> {
        self.send(Request::delete(format!("datasources/{id}"))).await.map(|_| ())
    }

    pub async fn datasource_connections(&self, id: &DatasourceId) -> Result<Vec<xml::Connection>> {
        Ok(self
            .send_xml(Request::get(format!("datasources/{id}/connections")))
            .await?
            .connections
            .map(|c| c.connection)
            .unwrap_or_default())
    }

    pub async fn download_datasource(&self, id: &DatasourceId, include_extract: bool) -> Result<(String, Vec<u8>)> {
        let r = Request::get(format!("datasources/{id}/content"))
            .query("includeExtract", if include_extract { "True" } else { "False" })
            .download();
        let resp = self.send(r).await?;
        Ok((filename_from(&resp, &format!("{id}.tdsx")), resp.body))
    }

    /// Downloads a datasource's file into `file` as it arrives (see
    /// [`Client::download_workbook_to`]): its file name and size.
    pub async fn download_datasource_to(
        &self,
        id: &DatasourceId,
        include_extract: bool,
        file: &mut tokio::fs::File,
    ) -> Result<(String, u64)> {
        let r = Request::get(format!("datasources/{id}/content"))
            .query("includeExtract", if include_extract { "True" } else { "False" })
            .download();
        let resp = self.send_to_file(r, file).await?;
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        Ok((filename_from(&resp, &format!("{id}.tdsx")), size))
    }

    // ------------------------------------------------------------ flows

    /// Every Tableau Prep flow (API 3.3+).
    pub fn flows(&self) -> List<xml::Flow> {
        List::new(
            self,
            "flows",
            "flow",
            |d| d.flows.map(|f| f.flow).unwrap_or_default(),
            |f: &xml::Flow| f.id.clone().unwrap_or_default(),
        )
    }

    pub async fn flow(&self, id: &FlowId) -> Result<xml::Flow> {
        self.send_xml(Request::get(format!("flows/{id}"))).await?.flow.ok_or_else(|| missing("flow"))
    }

    /// Changes a flow's owner and/or project. Tableau requires the new owner to hold a
    /// Creator license.
    pub async fn update_flow(&self, id: &FlowId, u: &FlowUpdate) -> Result<xml::Flow> {
        let f = xml::Flow {
            project: u.project_id.as_ref().map(|p| IdRef::id(p.as_str())),
            owner: u.owner_id.as_ref().map(|o| IdRef::id(o.as_str())),
            ..xml::Flow::default()
        };
        let r = self
            .send_xml(Request::put(format!("flows/{id}"), &TsRequest { flow: Some(f), ..TsRequest::default() }))
            .await?;
        r.flow.ok_or_else(|| missing("flow"))
    }

    pub async fn delete_flow(&self, id: &FlowId) -> Result<()> {
        self.send(Request::delete(format!("flows/{id}"))).await.map(|_| ())
    }

    // ------------------------------------------------------------ views

    /// Every view; with `usage`, each carries `<usage totalViewCount>`.
    pub fn views(&self, usage: bool) -> List<xml::View> {
        let l = List::new(
            self,
            "views",
            "view",
            |d| d.views.map(|w| w.view).unwrap_or_default(),
            |w: &xml::View| w.id.clone().unwrap_or_default(),
        );
        if usage { l.param("includeUsageStatistics", "true") } else { l }
    }

    pub async fn view(&self, id: &ViewId) -> Result<xml::View> {
        self.send_xml(Request::get(format!("views/{id}")).query("includeUsageStatistics", "true"))
            .await?
            .view
            .ok_or_else(|| missing("view"))
    }

    // ------------------------------------------------------------ users and groups

    pub fn users(&self) -> List<xml::User> {
        List::new(
            self,
            "users",
            "user",
            |d| d.users.map(|w| w.user).unwrap_or_default(),
            |w: &xml::User| w.id.clone().unwrap_or_default(),
        )
    }

    pub async fn user(&self, id: &UserId) -> Result<xml::User> {
        self.send_xml(Request::get(format!("users/{id}"))).await?.user.ok_or_else(|| missing("user"))
    }

    pub async fn add_user(&self, name: &str, site_role: &str) -> Result<xml::User> {
        let u = xml::User { name: Some(name.into()), site_role: Some(site_role.into()), ..xml::User::default() };
        self.send_xml(Request::post("users", &TsRequest { user: Some(u), ..TsRequest::default() }))
            .await?
            .user
            .ok_or_else(|| missing("user"))
    }

    /// Adds a user with the details a re-creation restores (name, site role, authentication,
    /// full name, email): one POST, then one PUT for what the POST does not take.
    pub async fn add_user_like(&self, u: &xml::User) -> Result<xml::User> {
        let name = u.name.clone().ok_or_else(|| missing("user name"))?;
        let post = xml::User {
            name: Some(name),
            site_role: u.site_role.clone(),
            auth_setting: u.auth_setting.clone(),
            ..xml::User::default()
        };
        let created = self
            .send_xml(Request::post("users", &TsRequest { user: Some(post), ..TsRequest::default() }))
            .await?
            .user
            .ok_or_else(|| missing("user"))?;
        let id = created.id.clone().ok_or_else(|| missing("user id"))?;
        let details = xml::User { full_name: u.full_name.clone(), email: u.email.clone(), ..xml::User::default() };
        if details.full_name.is_some() || details.email.is_some() {
            self.send(Request::put(format!("users/{id}"), &TsRequest { user: Some(details), ..TsRequest::default() }))
                .await?;
        }
        Ok(created)
    }

    /// A user's favorites (`GET /favorites/{user}`, API 2.5).
    pub async fn favorites(&self, user: &UserId) -> Result<Vec<xml::Favorite>> {
        let r = self.send_xml(Request::get(format!("favorites/{user}"))).await?;
        Ok(r.favorites.map(|f| f.favorite).unwrap_or_default())
    }

    /// Adds a favorite (`PUT /favorites/{user}`): `kind` is workbook, view, datasource or project.
    pub async fn add_favorite(&self, user: &UserId, label: &str, kind: &str, id: &str) -> Result<()> {
        let r = Some(IdRef::id(id));
        let mut f = xml::Favorite { label: label.into(), ..xml::Favorite::default() };
        match kind {
            "workbook" => f.workbook = r,
            "view" => f.view = r,
            "datasource" => f.datasource = r,
            "project" => f.project = r,
            other => return Err(Error::Config(format!("a favorite cannot point at a {other}"))),
        }
        self.send(Request::put(format!("favorites/{user}"), &TsRequest { favorite: Some(f), ..TsRequest::default() }))
            .await
            .map(|_| ())
    }

    pub async fn set_site_role(&self, id: &UserId, site_role: &str) -> Result<()> {
        let u = xml::User { site_role: Some(site_role.into()), ..xml::User::default() };
        self.send(Request::put(format!("users/{id}"), &TsRequest { user: Some(u), ..TsRequest::default() }))
            .await
            .map(|_| ())
    }

    /// Removes a user; with `map_assets_to` their content moves to that user first (API 3.9+).
    pub async fn delete_user(&self, id: &UserId, map_assets_to: Option<&UserId>) -> Result<()> {
        let mut r = Request::delete(format!("users/{id}"));
        if let Some(to) = map_assets_to {
            r = r.query("mapAssetsTo", to.as_str());
        }
        self.send(r).await.map(|_| ())
    }

    pub fn user_groups(&self, id: &UserId) -> List<xml::Group> {
        List::new(
            self,
            format!("users/{id}/groups"),
            "group",
            |d| d.groups.map(|w| w.group).unwrap_or_default(),
            |w: &xml::Group| w.id.clone().unwrap_or_default(),
        )
    }

    pub fn groups(&self) -> List<xml::Group> {
        List::new(
            self,
            "groups",
            "group",
            |d| d.groups.map(|w| w.group).unwrap_or_default(),
            |w: &xml::Group| w.id.clone().unwrap_or_default(),
        )
    }

    pub fn group_members(&self, id: &GroupId) -> List<xml::User> {
        List::new(
            self,
            format!("groups/{id}/users"),
            "group member",
            |d| d.users.map(|w| w.user).unwrap_or_default(),
            |w: &xml::User| w.id.clone().unwrap_or_default(),
        )
    }

    pub async fn add_group(&self, name: &str) -> Result<xml::Group> {
        let g = xml::Group { name: Some(name.into()), ..xml::Group::default() };
        self.send_xml(Request::post("groups", &TsRequest { group: Some(g), ..TsRequest::default() }))
            .await?
            .group
            .ok_or_else(|| missing("group"))
    }

    pub async fn delete_group(&self, id: &GroupId) -> Result<()> {
        self.send(Request::delete(format!("groups/{id}"))).await.map(|_| ())
    }

    /// Adds a member. Not idempotent on the wire (a repeat is 409), so a 409 "already a
    /// member" after a lost response counts as done.
    pub async fn add_group_member(&self, group: &GroupId, user: &UserId) -> Result<()> {
        let u = xml::User { id: Some(user.to_string()), ..xml::User::default() };
        match self
            .send(Request::post(format!("groups/{group}/users"), &TsRequest { user: Some(u), ..TsRequest::default() }))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("409011") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn remove_group_member(&self, group: &GroupId, user: &UserId) -> Result<()> {
        self.send(Request::delete(format!("groups/{group}/users/{user}"))).await.map(|_| ())
    }

    // ------------------------------------------------------------ projects

    pub fn projects(&self) -> List<xml::Project> {
        List::new(
            self,
            "projects",
            "project",
            |d| d.projects.map(|w| w.project).unwrap_or_default(),
            |w: &xml::Project| w.id.clone().unwrap_or_default(),
        )
    }

    pub async fn create_project(
        &self,
        name: &str,
        parent: Option<&ProjectId>,
        content_permissions: Option<&str>,
    ) -> Result<xml::Project> {
        let p = xml::Project {
            name: Some(name.into()),
            parent_project_id: parent.map(|p| p.to_string()),
            content_permissions: content_permissions.map(str::to_string),
            ..xml::Project::default()
        };
        self.send_xml(Request::post("projects", &TsRequest { project: Some(p), ..TsRequest::default() }))
            .await?
            .project
            .ok_or_else(|| missing("project"))
    }

    pub async fn update_project(&self, id: &ProjectId, u: &ProjectUpdate) -> Result<xml::Project> {
        let p = xml::Project {
            name: u.name.clone(),
            description: u.description.clone(),
            content_permissions: u.content_permissions.clone(),
            parent_project_id: u.parent_id.as_ref().map(|p| p.as_ref().map(|x| x.to_string()).unwrap_or_default()),
            owner: u.owner_id.as_ref().map(|o| IdRef::id(o.as_str())),
            ..xml::Project::default()
        };
        self.send_xml(Request::put(format!("projects/{id}"), &TsRequest { project: Some(p), ..TsRequest::default() }))
            .await?
            .project
            .ok_or_else(|| missing("project"))
    }

    pub async fn delete_project(&self, id: &ProjectId) -> Result<()> {
        self.send(Request::delete(format!("projects/{id}"))).await.map(|_| ())
    }

    // ------------------------------------------------------------ permissions and tags

    /// Explicit capabilities on a resource.
    pub async fn permissions(&self, kind: ContentKind, id: &str) -> Result<Vec<Capability>> {
        let d = self.send_xml(Request::get(format!("{}/{id}/permissions", kind.plural()))).await?;
        Ok(capabilities_of(d.permissions.unwrap_or_default()))
    }

    /// Adds (merges) capabilities for one grantee. Idempotent: merging the same set twice
    /// leaves the same rules.
    pub async fn add_permissions(
        &self,
        kind: ContentKind,
        id: &str,
        grantee: &Grantee,
        caps: &[(String, Mode)],
    ) -> Result<()> {
        let body = TsRequest { permissions: Some(permissions_body(grantee, caps)), ..TsRequest::default() };
        self.send(Request::put(format!("{}/{id}/permissions", kind.plural()), &body)).await.map(|_| ())
    }

    /// Deletes one capability (404 when it is not there).
    pub async fn delete_permission(&self, kind: ContentKind, id: &str, cap: &Capability) -> Result<()> {
        let path = format!(
            "{}/{id}/permissions/{}/{}/{}/{}",
            kind.plural(),
            cap.grantee.path(),
            cap.grantee.id(),
            cap.name,
            cap.mode.as_str()
        );
        self.send(Request::delete(path)).await.map(|_| ())
    }

    /// Applies [`permission_calls`] from the current rules to `target`; returns the calls made.
    pub async fn set_permissions(
        &self,
        kind: ContentKind,
        id: &str,
        target: &[Capability],
    ) -> Result<Vec<PermissionCall>> {
        let current = self.permissions(kind, id).await?;
        let calls = permission_calls(&current, target);
        for c in &calls {
            match c {
                PermissionCall::Delete(cap) => self.delete_permission(kind, id, cap).await?,
                PermissionCall::Add(g, caps) => self.add_permissions(kind, id, g, caps).await?,
            }
        }
        Ok(calls)
    }

    pub async fn default_permissions(&self, project: &ProjectId, content_type: &str) -> Result<Vec<Capability>> {
        let d = self.send_xml(Request::get(format!("projects/{project}/default-permissions/{content_type}"))).await?;
        Ok(capabilities_of(d.permissions.unwrap_or_default()))
    }

    /// Adds tags; answers the resulting tags.
    pub async fn add_tags(&self, kind: ContentKind, id: &str, labels: &[String]) -> Result<Vec<String>> {
        // Tableau splits unquoted labels on spaces and commas: quote those.
        let quoted = labels.iter().map(|l| if l.contains([' ', ',']) { format!("\"{l}\"") } else { l.clone() });
        let body = TsRequest { tags: Some(xml::Tags::from_labels(quoted)), ..TsRequest::default() };
        let d = self.send_xml(Request::put(format!("{}/{id}/tags", kind.plural()), &body)).await?;
        Ok(d.tags.map(|t| t.labels()).unwrap_or_default())
    }

    pub async fn delete_tag(&self, kind: ContentKind, id: &str, label: &str) -> Result<()> {
        let enc = percent_encoding::utf8_percent_encode(label, percent_encoding::NON_ALPHANUMERIC).to_string();
        self.send(Request::delete(format!("{}/{id}/tags/{enc}", kind.plural()))).await.map(|_| ())
    }

    // ------------------------------------------------------------ subscriptions, webhooks, jobs, alerts

    pub fn subscriptions(&self) -> List<xml::Subscription> {
        List::new(
            self,
            "subscriptions",
            "subscription",
            |d| d.subscriptions.map(|w| w.subscription).unwrap_or_default(),
            |w: &xml::Subscription| w.id.clone().unwrap_or_default(),
        )
    }

    /// One subscription (`GET /subscriptions/{id}`): an administrator reads anyone's.
    pub async fn subscription(&self, id: &SubscriptionId) -> Result<xml::Subscription> {
        self.send_xml(Request::get(format!("subscriptions/{id}")))
            .await?
            .subscription
            .ok_or_else(|| missing("subscription"))
    }

    pub async fn create_subscription(
        &self,
        user: &UserId,
        kind: &str,
        content_id: &str,
        subject: &str,
        schedule: &str,
    ) -> Result<xml::Subscription> {
        let s = xml::Subscription {
            subject: Some(subject.into()),
            content: Some(xml::SubscriptionContent {
                id: content_id.into(),
                kind: kind.into(),
                send_if_view_empty: None,
            }),
            schedule: Some(IdRef { id: None, name: Some(schedule.into()) }),
            user: Some(IdRef::id(user.as_str())),
            ..xml::Subscription::default()
        };
        self.send_xml(Request::post("subscriptions", &TsRequest { subscription: Some(s), ..TsRequest::default() }))
            .await?
            .subscription
            .ok_or_else(|| missing("subscription"))
    }

    /// Suspends or resumes a subscription (`PUT /subscriptions/{id}` with `suspended`, REST 3.9+).
    pub async fn set_subscription_suspended(&self, id: &SubscriptionId, suspended: bool) -> Result<xml::Subscription> {
        let s = xml::Subscription { suspended: Some(suspended.to_string()), ..xml::Subscription::default() };
        self.send_xml(Request::put(
            format!("subscriptions/{id}"),
            &TsRequest { subscription: Some(s), ..TsRequest::default() },
        ))
        .await?
        .subscription
        .ok_or_else(|| missing("subscription"))
    }

    pub async fn delete_subscription(&self, id: &SubscriptionId) -> Result<()> {
        self.send(Request::delete(format!("subscriptions/{id}"))).await.map(|_| ())
    }

    pub fn webhooks(&self) -> List<xml::Webhook> {
        List::new(
            self,
            "webhooks",
            "webhook",
            |d| d.webhooks.map(|w| w.webhook).unwrap_or_default(),
            |w: &xml::Webhook| w.id.clone().unwrap_or_default(),
        )
    }

    pub fn data_alerts(&self) -> List<xml::DataAlert> {
        List::new(
            self,
            "dataAlerts",
            "data alert",
            |d| d.data_alerts.map(|w| w.data_alert).unwrap_or_default(),
            |a| a.id.clone(),
        )
    }

    /// `GET /dataAlerts/{id}`: the alert with its recipients.
    pub async fn data_alert(&self, id: &str) -> Result<xml::DataAlert> {
        self.send_xml(Request::get(format!("dataAlerts/{id}"))).await?.data_alert.ok_or_else(|| missing("dataAlert"))
    }

    /// `POST /dataAlerts/{id}/users`: makes a user a recipient of a data alert.
    pub async fn add_data_alert_recipient(&self, alert: &str, user: &UserId) -> Result<()> {
        let req = TsRequest {
            user: Some(xml::User { id: Some(user.to_string()), ..xml::User::default() }),
            ..TsRequest::default()
        };
        self.send(Request::post(format!("dataAlerts/{alert}/users"), &req)).await.map(|_| ())
    }

    /// `GET /api/{v}/sites/{id}`: the signed-in site (its display name).
    pub async fn site_info(&self) -> Result<xml::Site> {
        let id = self.session().await.site_id;
        self.send_xml(Request::get(format!("sites/{id}")).unscoped()).await?.site.ok_or_else(|| missing("site"))
    }

    pub async fn job(&self, id: &JobId) -> Result<xml::Job> {
        self.send_xml(Request::get(format!("jobs/{id}"))).await?.job.ok_or_else(|| missing("job"))
    }

    /// Windowed hit counts (`/api/-/content/usage-stats/{type}/{luid}`).
    pub async fn usage_stats(&self, kind: &str, luid: &str) -> Result<serde_json::Value> {
        self.send_json(Request::get(format!("/api/-/content/usage-stats/{kind}/{luid}")).unscoped()).await
    }
}

fn missing(what: &str) -> Error {
    Error::Protocol { url: String::new(), status: 200, detail: format!("the answer has no <{what}> element") }
}

fn permissions_body(grantee: &Grantee, caps: &[(String, Mode)]) -> xml::Permissions {
    let mut gc = xml::GranteeCapabilities::default();
    match grantee {
        Grantee::User(id) => gc.user = Some(IdRef::id(id.clone())),
        Grantee::Group(id) => gc.group = Some(IdRef::id(id.clone())),
    }
    gc.capabilities.capability =
        caps.iter().map(|(n, m)| xml::Capability { name: n.clone(), mode: m.as_str().into() }).collect();
    xml::Permissions { grantee_capabilities: vec![gc], ..xml::Permissions::default() }
}

/// Flattens `<permissions>` into capabilities (group sets are skipped).
pub fn capabilities_of(p: xml::Permissions) -> Vec<Capability> {
    let mut out = Vec::new();
    for gc in p.grantee_capabilities {
        let grantee = match gc.grantee() {
            Some(("user", id)) => Grantee::User(id.to_string()),
            Some(("group", id)) => Grantee::Group(id.to_string()),
            _ => continue,
        };
        for c in gc.capabilities.capability {
            if let Some(mode) = Mode::parse(&c.mode) {
                out.push(Capability { grantee: grantee.clone(), name: c.name, mode });
            }
        }
    }
    out.sort();
    out
}

/// A small file's pieces gathered in memory (at most `limit` bytes; more is refused).
async fn gather(
    mut pieces: futures::stream::BoxStream<'_, std::result::Result<Vec<u8>, String>>,
    limit: usize,
) -> Result<Vec<u8>> {
    let mut whole = Vec::new();
    while let Some(piece) = pieces.next().await {
        whole.extend_from_slice(&piece.map_err(Error::Upload)?);
        if whole.len() > limit {
            return Err(Error::Upload(format!("the file is larger than its stated size ({limit} bytes or less)")));
        }
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(g: &str, n: &str, m: Mode) -> Capability {
        Capability { grantee: Grantee::Group(g.into()), name: n.into(), mode: m }
    }

    #[test]
    fn permission_calls_are_minimal() {
        let a = vec![cap("g", "Read", Mode::Allow), cap("g", "Write", Mode::Allow), cap("h", "Read", Mode::Allow)];
        let b = vec![cap("g", "Read", Mode::Allow), cap("g", "Write", Mode::Deny), cap("k", "Read", Mode::Allow)];
        let calls = permission_calls(&a, &b);
        assert_eq!(
            calls,
            vec![
                PermissionCall::Delete(cap("g", "Write", Mode::Allow)),
                PermissionCall::Delete(cap("h", "Read", Mode::Allow)),
                PermissionCall::Add(Grantee::Group("g".into()), vec![("Write".into(), Mode::Deny)]),
                PermissionCall::Add(Grantee::Group("k".into()), vec![("Read".into(), Mode::Allow)]),
            ]
        );
        assert!(permission_calls(&a, &a).is_empty());
    }

    #[test]
    fn multipart_shape() {
        let (ct, body) = multipart(&[
            ("request_payload", None, "text/xml", b"<x/>"),
            ("tableau_workbook", Some("a.twb"), "application/octet-stream", b"DATA"),
        ]);
        let b = ct.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{b}\r\nContent-Disposition: name=\"request_payload\"\r\n")));
        assert!(text.contains("filename=\"a.twb\"\r\nContent-Type: application/octet-stream\r\n\r\nDATA\r\n"));
        assert!(text.ends_with(&format!("--{b}--\r\n")));
    }
}
