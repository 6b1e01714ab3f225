//! The emulator's in-memory state: the site plus lookup indexes, sessions, revisions and
//! uploaded files. Handlers lock it, read or change it, and render XML from it.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use tabflow_site::{Datasource, Flow, Mode, PermissionRule, Project, Site, User, Workbook};
use tabflow_wire::ApiError;
use tabflow_wire::xml;

/// An open REST session.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user_id: String,
    pub site_id: String,
    pub expires: DateTime<Utc>,
    /// The PAT name it was opened with: a second sign-in with the same PAT ends this session.
    pub pat_name: Option<String>,
}

/// One published revision of a workbook or datasource.
#[derive(Debug, Clone)]
pub struct Revision {
    pub number: u32,
    pub published_at: DateTime<Utc>,
    pub publisher_id: String,
    pub size: u64,
    /// The file as published, when it was uploaded through the API.
    pub file: Option<(String, Vec<u8>)>,
}

/// A background job (refreshes, async publishes).
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub finish_code: u8,
}

#[derive(Default)]
pub struct Indexes {
    pub users: HashMap<String, usize>,
    pub users_by_name: HashMap<String, usize>,
    pub groups: HashMap<String, usize>,
    pub projects: HashMap<String, usize>,
    pub workbooks: HashMap<String, usize>,
    pub datasources: HashMap<String, usize>,
    pub datasources_by_content_url: HashMap<String, usize>,
    pub flows: HashMap<String, usize>,
    /// view id -> (workbook index, view index)
    pub views: HashMap<String, (usize, usize)>,
    /// resource id -> indexes into `site.permissions`
    pub permissions: HashMap<String, Vec<usize>>,
}

pub struct State {
    pub site: Site,
    pub idx: Indexes,
    pub sessions: HashMap<String, Session>,
    pub revisions: HashMap<String, Vec<Revision>>,
    pub uploads: HashMap<String, Vec<u8>>,
    pub jobs: HashMap<String, Job>,
    pub server_host: String,
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn new_luid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl State {
    pub fn new(site: Site) -> State {
        let mut s = State {
            site,
            idx: Indexes::default(),
            sessions: HashMap::new(),
            revisions: HashMap::new(),
            uploads: HashMap::new(),
            jobs: HashMap::new(),
            server_host: "127.0.0.1".into(),
        };
        s.reindex();
        s
    }

    /// Rebuilds every index (after structural deletes; O(site)).
    pub fn reindex(&mut self) {
        let s = &self.site;
        let mut idx = Indexes::default();
        for (i, u) in s.users.iter().enumerate() {
            idx.users.insert(u.id.clone(), i);
            idx.users_by_name.insert(u.name.to_lowercase(), i);
        }
        for (i, g) in s.groups.iter().enumerate() {
            idx.groups.insert(g.id.clone(), i);
        }
        for (i, p) in s.projects.iter().enumerate() {
            idx.projects.insert(p.id.clone(), i);
        }
        for (i, d) in s.datasources.iter().enumerate() {
            idx.datasources.insert(d.id.clone(), i);
            idx.datasources_by_content_url.insert(d.content_url.clone(), i);
        }
        for (i, w) in s.workbooks.iter().enumerate() {
            idx.workbooks.insert(w.id.clone(), i);
            for (j, v) in w.views.iter().enumerate() {
                idx.views.insert(v.id.clone(), (i, j));
            }
        }
        for (i, f) in s.flows.iter().enumerate() {
            idx.flows.insert(f.id.clone(), i);
        }
        for (i, r) in s.permissions.iter().enumerate() {
            idx.permissions.entry(r.resource.id.clone()).or_default().push(i);
        }
        self.idx = idx;
    }

    /// The live site as a snapshot (rules emptied by deletes are left out).
    pub fn snapshot(&self) -> Site {
        let mut site = self.site.clone();
        site.permissions.retain(|r| !r.capabilities.is_empty());
        site.default_permissions.retain(|r| !r.capabilities.is_empty());
        site.now = Utc::now();
        site
    }

    // ---- lookups with Tableau's not-found errors

    pub fn user(&self, id: &str) -> Result<&User, ApiError> {
        self.idx.users.get(id).map(|&i| &self.site.users[i]).ok_or_else(|| ApiError::not_found("404002", "User", id))
    }
    pub fn user_index(&self, id: &str) -> Result<usize, ApiError> {
        self.idx.users.get(id).copied().ok_or_else(|| ApiError::not_found("404002", "User", id))
    }
    pub fn group_index(&self, id: &str) -> Result<usize, ApiError> {
        self.idx.groups.get(id).copied().ok_or_else(|| ApiError::not_found("404012", "Group", id))
    }
    pub fn project(&self, id: &str) -> Result<&Project, ApiError> {
        self.idx
            .projects
            .get(id)
            .map(|&i| &self.site.projects[i])
            .ok_or_else(|| ApiError::not_found("404005", "Project", id))
    }
    pub fn project_index(&self, id: &str) -> Result<usize, ApiError> {
        self.idx.projects.get(id).copied().ok_or_else(|| ApiError::not_found("404005", "Project", id))
    }
    pub fn workbook(&self, id: &str) -> Result<&Workbook, ApiError> {
        self.idx
            .workbooks
            .get(id)
            .map(|&i| &self.site.workbooks[i])
            .ok_or_else(|| ApiError::not_found("404006", "Workbook", id))
    }
    pub fn workbook_index(&self, id: &str) -> Result<usize, ApiError> {
        self.idx.workbooks.get(id).copied().ok_or_else(|| ApiError::not_found("404006", "Workbook", id))
    }
    pub fn datasource(&self, id: &str) -> Result<&Datasource, ApiError> {
        self.idx
            .datasources
            .get(id)
            .map(|&i| &self.site.datasources[i])
            .ok_or_else(|| ApiError::not_found("404011", "Datasource", id))
    }
    pub fn datasource_index(&self, id: &str) -> Result<usize, ApiError> {
        self.idx.datasources.get(id).copied().ok_or_else(|| ApiError::not_found("404011", "Datasource", id))
    }
    pub fn flow(&self, id: &str) -> Result<&Flow, ApiError> {
        self.idx.flows.get(id).map(|&i| &self.site.flows[i]).ok_or_else(|| ApiError::not_found("404004", "Flow", id))
    }
    pub fn flow_index(&self, id: &str) -> Result<usize, ApiError> {
        self.idx.flows.get(id).copied().ok_or_else(|| ApiError::not_found("404004", "Flow", id))
    }
    pub fn view_index(&self, id: &str) -> Result<(usize, usize), ApiError> {
        self.idx.views.get(id).copied().ok_or_else(|| ApiError::not_found("404011", "View", id))
    }

    pub fn project_name(&self, id: &str) -> &str {
        self.idx.projects.get(id).map(|&i| self.site.projects[i].name.as_str()).unwrap_or("")
    }
    pub fn user_name(&self, id: &str) -> &str {
        self.idx.users.get(id).map(|&i| self.site.users[i].name.as_str()).unwrap_or("")
    }

    /// Does the resource of this kind exist?
    pub fn resource_exists(&self, kind: &str, id: &str) -> Result<(), ApiError> {
        match kind {
            "project" => self.project(id).map(|_| ()),
            "workbook" => self.workbook(id).map(|_| ()),
            "datasource" => self.datasource(id).map(|_| ()),
            "view" => self.view_index(id).map(|_| ()),
            "flow" => self.flow(id).map(|_| ()),
            _ => Err(ApiError::bad_request(format!("unknown resource type {kind}"))),
        }
    }

    /// The explicit rules on one resource (live ones only).
    pub fn rules_for(&self, resource_id: &str) -> Vec<&PermissionRule> {
        self.idx
            .permissions
            .get(resource_id)
            .map(|v| v.iter().map(|&i| &self.site.permissions[i]).filter(|r| !r.capabilities.is_empty()).collect())
            .unwrap_or_default()
    }

    /// Merges capabilities into a resource's rules (Tableau's PUT permissions: add or merge).
    pub fn merge_rule(
        &mut self,
        kind: &str,
        resource_id: &str,
        grantee_kind: &str,
        grantee_id: &str,
        caps: &[(String, Mode)],
    ) {
        let existing = self.idx.permissions.get(resource_id).and_then(|v| {
            v.iter().copied().find(|&i| {
                let r = &self.site.permissions[i];
                r.grantee.kind == grantee_kind && r.grantee.id == grantee_id
            })
        });
        let i = match existing {
            Some(i) => i,
            None => {
                self.site.permissions.push(PermissionRule {
                    resource: tabflow_site::ResourceRef { kind: kind.into(), id: resource_id.into() },
                    grantee: tabflow_site::GranteeRef { kind: grantee_kind.into(), id: grantee_id.into() },
                    capabilities: Default::default(),
                });
                let i = self.site.permissions.len() - 1;
                self.idx.permissions.entry(resource_id.to_string()).or_default().push(i);
                i
            }
        };
        for (name, mode) in caps {
            self.site.permissions[i].capabilities.insert(name.clone(), *mode);
        }
    }

    /// Removes one capability; false when the grantee did not have it in that mode.
    pub fn delete_capability(
        &mut self,
        resource_id: &str,
        grantee_kind: &str,
        grantee_id: &str,
        cap: &str,
        mode: Mode,
    ) -> bool {
        let Some(list) = self.idx.permissions.get(resource_id) else { return false };
        for &i in list {
            let r = &mut self.site.permissions[i];
            if r.grantee.kind == grantee_kind && r.grantee.id == grantee_id && r.capabilities.get(cap) == Some(&mode) {
                r.capabilities.remove(cap);
                return true;
            }
        }
        false
    }

    /// Drops every rule on a resource or naming a grantee (when content or principals are deleted).
    pub fn drop_rules_where(&mut self, pred: impl Fn(&PermissionRule) -> bool) {
        for r in &mut self.site.permissions {
            if pred(r) {
                r.capabilities.clear();
            }
        }
    }

    // ---- rendering model -> XML

    pub fn user_xml(&self, u: &User) -> xml::User {
        xml::User {
            id: Some(u.id.clone()),
            name: Some(u.name.clone()),
            site_role: Some(u.site_role.clone()),
            last_login: u.last_login.map(ts),
            external_auth_user_id: Some(String::new()),
            full_name: Some(u.full_name.clone()),
            email: Some(u.email.clone()),
            auth_setting: Some(u.auth_setting.clone().unwrap_or_else(|| "ServerDefault".into())),
            locale: None,
            language: Some("en".into()),
            password: None,
            domain: Some(xml::IdRef { id: None, name: Some("local".into()) }),
        }
    }

    pub fn project_xml(&self, p: &Project) -> xml::Project {
        xml::Project {
            id: Some(p.id.clone()),
            name: Some(p.name.clone()),
            description: Some(p.description.clone()),
            content_permissions: Some(p.content_permissions.clone()),
            parent_project_id: p.parent_id.clone(),
            created_at: p.created_at.map(ts),
            updated_at: p.updated_at.map(ts),
            top_level_project: Some(xml::bool_str(p.parent_id.is_none())),
            writeable: Some("true".into()),
            owner: Some(xml::IdRef::id(p.owner_id.clone())),
        }
    }

    pub fn workbook_xml(&self, w: &Workbook) -> xml::Workbook {
        xml::Workbook {
            id: Some(w.id.clone()),
            name: Some(w.name.clone()),
            description: Some(w.description.clone()),
            content_url: Some(w.content_url.clone()),
            webpage_url: Some(format!(
                "http://{}/#/site/{}/workbooks/{}",
                self.server_host, self.site.site.content_url, w.content_url
            )),
            show_tabs: Some(xml::bool_str(w.show_tabs)),
            size: Some(w.size.div_ceil(1024 * 1024).max(1).to_string()),
            created_at: Some(ts(w.created_at)),
            updated_at: Some(ts(w.updated_at)),
            encrypt_extracts: Some("false".into()),
            default_view_id: w.views.first().map(|v| v.id.clone()),
            project: Some(xml::IdRef::named(w.project_id.clone(), self.project_name(&w.project_id))),
            owner: Some(xml::IdRef::named(w.owner_id.clone(), self.user_name(&w.owner_id))),
            tags: Some(xml::Tags::from_labels(w.tags.iter().cloned())),
            views: None,
            connections: None,
        }
    }

    pub fn datasource_xml(&self, d: &Datasource) -> xml::Datasource {
        xml::Datasource {
            id: Some(d.id.clone()),
            name: Some(d.name.clone()),
            content_url: Some(d.content_url.clone()),
            kind: Some(d.connection.kind.clone()),
            description: Some(d.description.clone()),
            created_at: Some(ts(d.created_at.unwrap_or(d.updated_at))),
            updated_at: Some(ts(d.updated_at)),
            is_certified: Some(xml::bool_str(d.certified)),
            certification_note: d.certification_note.clone(),
            has_extracts: Some(xml::bool_str(d.has_extracts)),
            encrypt_extracts: Some("false".into()),
            size: Some(d.size.div_ceil(1024 * 1024).max(1).to_string()),
            webpage_url: Some(format!(
                "http://{}/#/site/{}/datasources/{}",
                self.server_host, self.site.site.content_url, d.content_url
            )),
            project: Some(xml::IdRef::named(d.project_id.clone(), self.project_name(&d.project_id))),
            owner: Some(xml::IdRef::named(d.owner_id.clone(), self.user_name(&d.owner_id))),
            tags: Some(xml::Tags::from_labels(d.tags.iter().cloned())),
        }
    }

    pub fn flow_xml(&self, f: &Flow) -> xml::Flow {
        // Tableau's flow pages are addressed by a numeric id the REST API does not expose;
        // the LUID stands in for it.
        xml::Flow {
            id: Some(f.id.clone()),
            name: Some(f.name.clone()),
            description: Some(f.description.clone()),
            webpage_url: Some(format!(
                "http://{}/#/site/{}/flows/{}",
                self.server_host, self.site.site.content_url, f.id
            )),
            file_type: Some(if f.file_type.is_empty() { "tflx".into() } else { f.file_type.clone() }),
            created_at: Some(ts(f.created_at)),
            updated_at: Some(ts(f.updated_at)),
            project: Some(xml::IdRef::named(f.project_id.clone(), self.project_name(&f.project_id))),
            owner: Some(xml::IdRef::id(f.owner_id.clone())),
            tags: Some(xml::Tags::from_labels(f.tags.iter().cloned())),
        }
    }

    pub fn view_xml(&self, wi: usize, vi: usize, usage: bool) -> xml::View {
        let w = &self.site.workbooks[wi];
        let v = &w.views[vi];
        let url_name: String = v.name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        xml::View {
            id: Some(v.id.clone()),
            name: Some(v.name.clone()),
            content_url: Some(format!("{}/sheets/{}", w.content_url, url_name)),
            created_at: Some(ts(w.created_at)),
            updated_at: Some(ts(w.updated_at)),
            sheet_type: Some(if v.sheet_type.is_empty() { "view".into() } else { v.sheet_type.clone() }),
            view_url_name: Some(url_name),
            workbook: Some(xml::IdRef::id(w.id.clone())),
            owner: Some(xml::IdRef::id(w.owner_id.clone())),
            project: Some(xml::IdRef::id(w.project_id.clone())),
            tags: Some(xml::Tags::from_labels(v.tags.iter().cloned())),
            usage: usage.then(|| xml::Usage { total_view_count: v.total_views.to_string() }),
        }
    }

    /// `<permissions>` for a resource.
    pub fn permissions_xml(&self, kind: &str, id: &str) -> xml::Permissions {
        let (name, owner) = match kind {
            "project" => self.project(id).map(|p| (p.name.clone(), p.owner_id.clone())).unwrap_or_default(),
            "workbook" => self.workbook(id).map(|w| (w.name.clone(), w.owner_id.clone())).unwrap_or_default(),
            "datasource" => self.datasource(id).map(|d| (d.name.clone(), d.owner_id.clone())).unwrap_or_default(),
            "flow" => self.flow(id).map(|f| (f.name.clone(), f.owner_id.clone())).unwrap_or_default(),
            "view" => self
                .view_index(id)
                .map(|(wi, vi)| {
                    let w = &self.site.workbooks[wi];
                    (w.views[vi].name.clone(), w.owner_id.clone())
                })
                .unwrap_or_default(),
            _ => Default::default(),
        };
        let r = Some(xml::ResourceOwnerRef {
            id: Some(id.to_string()),
            name: Some(name),
            owner: Some(xml::IdRef::id(owner)),
        });
        let mut p = xml::Permissions::default();
        match kind {
            "project" => p.project = r,
            "workbook" => p.workbook = r,
            "datasource" => p.datasource = r,
            "view" => p.view = r,
            "flow" => p.flow = r,
            _ => {}
        }
        p.grantee_capabilities =
            self.rules_for(id).into_iter().map(|r| grantee_capabilities(&r.grantee, &r.capabilities)).collect();
        p
    }
}

pub fn grantee_capabilities(
    g: &tabflow_site::GranteeRef,
    caps: &std::collections::BTreeMap<String, Mode>,
) -> xml::GranteeCapabilities {
    let mut gc = xml::GranteeCapabilities::default();
    match g.kind.as_str() {
        "user" => gc.user = Some(xml::IdRef::id(g.id.clone())),
        _ => gc.group = Some(xml::IdRef::id(g.id.clone())),
    }
    gc.capabilities.capability =
        caps.iter().map(|(n, m)| xml::Capability { name: n.clone(), mode: m.as_str().to_string() }).collect();
    gc
}

/// A URL slug for content URLs (`Q3 Revenue` -> `Q3Revenue`), as Tableau derives them.
pub fn slug(name: &str) -> String {
    let s: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    if s.is_empty() { "content".into() } else { s }
}
