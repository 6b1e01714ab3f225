//! Projects, workbooks, datasources and views: list, get, update, delete, connections,
//! download, publish (multipart, overwrite) and revisions.

use axum::extract::{OriginalUri, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use tabflow_site::{Datasource, Project, Workbook};
use tabflow_wire::filter::FieldValue;
use tabflow_wire::{ApiError, xml};

use super::{Auth, Q, Res, Shr, created_xml, list_query, no_content, ok_xml, parse_body, select};
use crate::server::Fail;
use crate::state::{Revision, State, new_luid, slug, ts};

type P2 = Path<(String, String, String)>;
type P3 = Path<(String, String, String, String)>;

// ---------------------------------------------------------------- projects

fn project_field<'a>(st: &'a State, p: &'a Project, f: &str) -> Option<FieldValue<'a>> {
    Some(match f {
        "name" => FieldValue::Text(&p.name),
        "ownerName" => FieldValue::Text(st.user_name(&p.owner_id)),
        "ownerEmail" => FieldValue::Text(st.user(&p.owner_id).map(|u| u.email.as_str()).unwrap_or("")),
        "ownerDomain" => FieldValue::Text("local"),
        "parentProjectId" => FieldValue::Text(p.parent_id.as_deref().unwrap_or("")),
        "topLevelProject" => FieldValue::Bool(p.parent_id.is_none()),
        "createdAt" | "updatedAt" => FieldValue::Missing,
        _ => return None,
    })
}

pub(crate) async fn list_projects(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let (page, pagination) =
        select(st.site.projects.iter().collect(), &lq, |p, f| project_field(&st, p, f)).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.projects = Some(xml::Projects { project: page.into_iter().map(|p| st.project_xml(p)).collect() });
    ok_xml(&r)
}

fn check_content_permissions(v: &str) -> Result<(), Fail> {
    if tabflow_wire::capability::CONTENT_PERMISSIONS.contains(&v) {
        Ok(())
    } else {
        Err(Fail(ApiError::bad_request(format!(
            "'{v}' is not a valid contentPermissions value; use LockedToProject, LockedToProjectWithoutNested or ManagedByOwner."
        ))))
    }
}

pub(crate) async fn add_project(shared: Shr, a: Auth, body: String) -> Res {
    a.require_publisher(&shared.0)?;
    let req = parse_body(&body)?;
    let p = req.project.ok_or_else(|| super::missing("a <project> element"))?;
    let name = p.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| super::missing("the project's name"))?;
    if let Some(cp) = &p.content_permissions {
        check_content_permissions(cp)?;
    }
    let mut st = shared.0.write();
    let parent = p.parent_project_id.filter(|x| !x.is_empty());
    if let Some(pid) = &parent {
        st.project(pid).map_err(Fail)?;
    }
    if st.site.projects.iter().any(|x| x.parent_id == parent && x.name.eq_ignore_ascii_case(&name)) {
        return Err(Fail(ApiError::conflict(
            "409006",
            format!("A project named '{name}' already exists at that level."),
        )));
    }
    let owner = p.owner.and_then(|o| o.id).unwrap_or_else(|| a.0.user_id.clone());
    st.user(&owner).map_err(Fail)?;
    let now = Utc::now();
    let project = Project {
        id: new_luid(),
        name,
        parent_id: parent,
        owner_id: owner,
        content_permissions: p.content_permissions.unwrap_or_else(|| "ManagedByOwner".into()),
        description: p.description.unwrap_or_default(),
        created_at: Some(now),
        updated_at: Some(now),
    };
    st.site.projects.push(project.clone());
    st.reindex();
    let mut r = xml::TsResponse::new();
    r.project = Some(st.project_xml(&project));
    created_xml(&r)
}

/// True when `candidate` is `ancestor` or lies below it.
fn is_within(st: &State, candidate: &str, ancestor: &str) -> bool {
    let mut cur = Some(candidate.to_string());
    let mut hops = 0;
    while let Some(c) = cur {
        if c == ancestor {
            return true;
        }
        hops += 1;
        if hops > 1000 {
            return false;
        }
        cur = st.project(&c).ok().and_then(|p| p.parent_id.clone());
    }
    false
}

pub(crate) async fn update_project(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_publisher(&shared.0)?;
    let req = parse_body(&body)?;
    let p = req.project.ok_or_else(|| super::missing("a <project> element"))?;
    if let Some(cp) = &p.content_permissions {
        check_content_permissions(cp)?;
    }
    let owner = p.owner.as_ref().and_then(|o| o.id.clone());
    if owner.is_some() {
        a.require_admin(&shared.0, "change a project's owner")?;
    }
    let mut st = shared.0.write();
    let i = st.project_index(&id).map_err(Fail)?;
    if let Some(o) = &owner {
        st.user(o).map_err(Fail)?;
    }
    let parent = p.parent_project_id.map(|x| if x.is_empty() { None } else { Some(x) });
    if let Some(Some(pid)) = &parent {
        st.project(pid).map_err(Fail)?;
        if is_within(&st, pid, &id) {
            return Err(Fail(ApiError::conflict(
                "409005",
                "A project cannot be moved into itself or one of its children.",
            )));
        }
    }
    let new_parent = parent.clone().unwrap_or_else(|| st.site.projects[i].parent_id.clone());
    if let Some(name) = &p.name
        && st.site.projects.iter().any(|x| x.id != id && x.parent_id == new_parent && x.name.eq_ignore_ascii_case(name))
    {
        return Err(Fail(ApiError::conflict(
            "409006",
            format!("A project named '{name}' already exists at that level."),
        )));
    }
    let pr = &mut st.site.projects[i];
    if let Some(n) = p.name {
        pr.name = n;
    }
    if let Some(d) = p.description {
        pr.description = d;
    }
    if let Some(c) = p.content_permissions {
        pr.content_permissions = c;
    }
    if let Some(par) = parent {
        pr.parent_id = par;
    }
    if let Some(o) = owner {
        pr.owner_id = o;
    }
    pr.updated_at = Some(Utc::now());
    let pr = pr.clone();
    let mut r = xml::TsResponse::new();
    r.project = Some(st.project_xml(&pr));
    ok_xml(&r)
}

pub(crate) async fn delete_project(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_publisher(&shared.0)?;
    let mut st = shared.0.write();
    st.project_index(&id).map_err(Fail)?;
    if st.site.projects.iter().any(|p| p.id == id && p.name.eq_ignore_ascii_case("default") && p.parent_id.is_none()) {
        return Err(Fail(ApiError::forbidden("403008", "The Default project cannot be deleted.")));
    }
    // Deleting a project deletes everything in it and its children, as Tableau does.
    let doomed: Vec<String> =
        st.site.projects.iter().filter(|p| is_within(&st, &p.id, &id)).map(|p| p.id.clone()).collect();
    let gone_wbs: Vec<String> =
        st.site.workbooks.iter().filter(|w| doomed.contains(&w.project_id)).map(|w| w.id.clone()).collect();
    let gone_ds: Vec<String> =
        st.site.datasources.iter().filter(|d| doomed.contains(&d.project_id)).map(|d| d.id.clone()).collect();
    remove_content(&mut st, &gone_wbs, &gone_ds);
    let gone_flows: Vec<String> =
        st.site.flows.iter().filter(|f| doomed.contains(&f.project_id)).map(|f| f.id.clone()).collect();
    super::flows::remove_flows(&mut st, &gone_flows);
    st.site.projects.retain(|p| !doomed.contains(&p.id));
    st.drop_rules_where(|r| doomed.contains(&r.resource.id));
    st.site.default_permissions.retain(|r| !doomed.contains(&r.project_id));
    st.reindex();
    no_content()
}

/// Removes workbooks and datasources and everything that points at them.
fn remove_content(st: &mut State, wbs: &[String], dss: &[String]) {
    let views: Vec<String> = st
        .site
        .workbooks
        .iter()
        .filter(|w| wbs.contains(&w.id))
        .flat_map(|w| w.views.iter().map(|v| v.id.clone()))
        .collect();
    st.site.workbooks.retain(|w| !wbs.contains(&w.id));
    st.site.datasources.retain(|d| !dss.contains(&d.id));
    for w in &mut st.site.workbooks {
        w.datasource_ids.retain(|d| !dss.contains(d));
    }
    let gone = |id: &String| wbs.contains(id) || dss.contains(id) || views.contains(id);
    st.drop_rules_where(|r| gone(&r.resource.id));
    st.site.subscriptions.retain(|s| !gone(&s.content.id));
    st.site.favorites.retain(|f| !gone(&f.content.id));
    st.site.data_alerts.retain(|a| !views.contains(&a.view_id));
    for id in wbs.iter().chain(dss) {
        st.revisions.remove(id);
    }
}

// ---------------------------------------------------------------- workbooks

pub(crate) fn workbook_field<'a>(st: &'a State, w: &'a Workbook, f: &str) -> Option<FieldValue<'a>> {
    Some(match f {
        "name" => FieldValue::Text(&w.name),
        "contentUrl" => FieldValue::Text(&w.content_url),
        "projectName" => FieldValue::Text(st.project_name(&w.project_id)),
        "projectId" => FieldValue::Text(&w.project_id),
        "ownerName" => FieldValue::Text(st.user_name(&w.owner_id)),
        "ownerEmail" => FieldValue::Text(st.user(&w.owner_id).map(|u| u.email.as_str()).unwrap_or("")),
        "ownerId" => FieldValue::Text(&w.owner_id),
        "ownerDomain" => FieldValue::Text("local"),
        "tags" | "tag" => FieldValue::List(&w.tags),
        "size" => FieldValue::Number(w.size.div_ceil(1024 * 1024) as i64),
        "displayTabs" | "showTabs" => FieldValue::Bool(w.show_tabs),
        "hasExtracts" => FieldValue::Bool(false),
        "favoritesTotal" => {
            FieldValue::Number(st.site.favorites.iter().filter(|x| x.content.id == w.id).count() as i64)
        }
        // Dates are compared as their ISO text; the comparator handles the owned string through a leak-free cache below.
        "createdAt" | "updatedAt" => return None,
        _ => return None,
    })
}

/// Workbook fields including dates (which need owned strings).
struct WbRow<'a> {
    w: &'a Workbook,
    created: String,
    updated: String,
}

fn wb_row_field<'a>(st: &'a State, r: &'a WbRow<'a>, f: &str) -> Option<FieldValue<'a>> {
    match f {
        "createdAt" => Some(FieldValue::Date(&r.created)),
        "updatedAt" => Some(FieldValue::Date(&r.updated)),
        _ => workbook_field(st, r.w, f),
    }
}

fn apply_fields_workbook(x: &mut xml::Workbook, fields: &tabflow_wire::fields::Fields) {
    use tabflow_wire::fields::Fields;
    if !matches!(fields, Fields::Only(_)) {
        return;
    }
    macro_rules! keep {
        ($name:literal, $f:expr) => {
            if !fields.wants($name) {
                $f = None;
            }
        };
    }
    keep!("name", x.name);
    keep!("description", x.description);
    keep!("contentUrl", x.content_url);
    keep!("webpageUrl", x.webpage_url);
    keep!("showTabs", x.show_tabs);
    keep!("size", x.size);
    keep!("createdAt", x.created_at);
    keep!("updatedAt", x.updated_at);
    keep!("encryptExtracts", x.encrypt_extracts);
    keep!("defaultViewId", x.default_view_id);
    keep!("project", x.project);
    keep!("owner", x.owner);
    keep!("tags", x.tags);
}

pub(crate) async fn list_workbooks(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let needs_dates = lq.filter.as_ref().is_some_and(|f| f.conditions.iter().any(|c| c.field.ends_with("At")))
        || lq.sort.as_ref().is_some_and(|s| s.keys.iter().any(|(k, _)| k.ends_with("At")));
    let rows: Vec<WbRow<'_>> = st
        .site
        .workbooks
        .iter()
        .map(|w| WbRow {
            w,
            created: if needs_dates { ts(w.created_at) } else { String::new() },
            updated: if needs_dates { ts(w.updated_at) } else { String::new() },
        })
        .collect();
    let (page, pagination) = select(rows.iter().collect(), &lq, |r, f| wb_row_field(&st, r, f)).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.workbooks = Some(xml::Workbooks {
        workbook: page
            .into_iter()
            .map(|row| {
                let mut x = st.workbook_xml(row.w);
                apply_fields_workbook(&mut x, &lq.fields);
                x
            })
            .collect(),
    });
    ok_xml(&r)
}

pub(crate) async fn get_workbook(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let wi = st.workbook_index(&id).map_err(Fail)?;
    let w = &st.site.workbooks[wi];
    let mut x = st.workbook_xml(w);
    x.views = Some(xml::Views { view: (0..w.views.len()).map(|vi| st.view_xml(wi, vi, false)).collect() });
    let mut r = xml::TsResponse::new();
    r.workbook = Some(x);
    ok_xml(&r)
}

pub(crate) async fn update_workbook(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_publisher(&shared.0)?;
    let req = parse_body(&body)?;
    let w = req.workbook.ok_or_else(|| super::missing("a <workbook> element"))?;
    let owner = w.owner.as_ref().and_then(|o| o.id.clone());
    if owner.is_some() {
        a.require_admin(&shared.0, "change a workbook's owner")?;
    }
    let mut st = shared.0.write();
    let i = st.workbook_index(&id).map_err(Fail)?;
    let project = w.project.as_ref().and_then(|p| p.id.clone());
    if let Some(p) = &project {
        st.project(p).map_err(Fail)?;
    }
    if let Some(o) = &owner {
        st.user(o).map_err(Fail)?;
    }
    let target_project = project.clone().unwrap_or_else(|| st.site.workbooks[i].project_id.clone());
    let target_name = w.name.clone().unwrap_or_else(|| st.site.workbooks[i].name.clone());
    if st.site.workbooks.iter().any(|x| x.id != id && x.project_id == target_project && x.name == target_name) {
        return Err(Fail(ApiError::conflict(
            "409021",
            format!("A workbook named '{target_name}' already exists in the target project."),
        )));
    }
    let show_tabs = match w.show_tabs.as_deref() {
        None => None,
        Some(s) => Some(
            xml::parse_bool(Some(s))
                .ok_or_else(|| Fail(ApiError::bad_request(format!("showTabs must be true or false, got '{s}'."))))?,
        ),
    };
    let wb = &mut st.site.workbooks[i];
    if let Some(n) = w.name {
        wb.name = n;
    }
    if let Some(d) = w.description {
        wb.description = d;
    }
    if let Some(p) = project {
        wb.project_id = p;
    }
    if let Some(o) = owner {
        wb.owner_id = o;
    }
    if let Some(t) = show_tabs {
        wb.show_tabs = t;
    }
    wb.updated_at = Utc::now();
    let wb = wb.clone();
    let mut r = xml::TsResponse::new();
    r.workbook = Some(st.workbook_xml(&wb));
    ok_xml(&r)
}

pub(crate) async fn delete_workbook(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_publisher(&shared.0)?;
    let mut st = shared.0.write();
    st.workbook_index(&id).map_err(Fail)?;
    remove_content(&mut st, std::slice::from_ref(&id), &[]);
    st.reindex();
    no_content()
}

pub(crate) async fn workbook_views(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let usage = lq.flag("includeUsageStatistics");
    let st = shared.0.read();
    let wi = st.workbook_index(&id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.views = Some(xml::Views {
        view: (0..st.site.workbooks[wi].views.len()).map(|vi| st.view_xml(wi, vi, usage)).collect(),
    });
    ok_xml(&r)
}

pub(crate) async fn workbook_connections(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let w = st.workbook(&id).map_err(Fail)?;
    let mut conns = Vec::new();
    for (n, dsid) in w.datasource_ids.iter().enumerate() {
        if let Ok(d) = st.datasource(dsid) {
            conns.push(xml::Connection {
                id: Some(derived_id(&w.id, n)),
                kind: Some("sqlproxy".into()),
                embed_password: Some("false".into()),
                server_address: Some(st.server_host.split(':').next().unwrap_or("localhost").to_string()),
                server_port: Some(st.server_host.rsplit(':').next().unwrap_or("80").to_string()),
                user_name: Some(String::new()),
                query_tagging_enabled: Some("false".into()),
                password: None,
                datasource: Some(xml::IdRef::named(d.id.clone(), d.name.clone())),
            });
        }
    }
    let mut r = xml::TsResponse::new();
    r.connections = Some(xml::Connections { connection: conns });
    ok_xml(&r)
}

/// A stable LUID-shaped id derived from another id and an index.
fn derived_id(base: &str, n: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in base.bytes().chain(n.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let h2 = h.rotate_left(29) ^ 0x9E37_79B9_7F4A_7C15;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xffff,
        h2 >> 48,
        h2 & 0xffff_ffff_ffff
    )
}

fn file_response(kind: &str, filename: &str, data: Vec<u8>) -> axum::response::Response {
    let mut r = (StatusCode::OK, data).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&crate::content::content_disposition(kind, filename)) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

pub(crate) async fn download_workbook(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let w = st.workbook(&id).map_err(Fail)?;
    if let Some((name, data)) = st.revisions.get(&id).and_then(|r| r.last()).and_then(|r| r.file.clone()) {
        return Ok(file_response("tableau_workbook", &name, data));
    }
    let twb = crate::content::workbook_twb(&st.site, w, &st.server_host);
    Ok(file_response("tableau_workbook", &format!("{}.twb", w.name), twb.into_bytes()))
}

fn revision_list(
    st: &State,
    id: &str,
    current: u32,
    published: chrono::DateTime<Utc>,
    owner: &str,
    size: u64,
) -> Vec<Revision> {
    let mut revs = st.revisions.get(id).cloned().unwrap_or_default();
    // Revisions before the emulator saw a publish are synthesized from the model's count.
    let known: Vec<u32> = revs.iter().map(|r| r.number).collect();
    for n in 1..=current {
        if !known.contains(&n) {
            revs.push(Revision {
                number: n,
                published_at: published,
                publisher_id: owner.to_string(),
                size,
                file: None,
            });
        }
    }
    revs.sort_by_key(|r| r.number);
    revs
}

fn revisions_xml(revs: &[Revision], current: u32) -> xml::Revisions {
    xml::Revisions {
        revision: revs
            .iter()
            .map(|r| xml::Revision {
                revision_number: r.number.to_string(),
                published_at: Some(ts(r.published_at)),
                deleted: Some("false".into()),
                current: Some(xml::bool_str(r.number == current)),
                size_in_bytes: Some(r.size.to_string()),
                publisher: Some(xml::IdRef::id(r.publisher_id.clone())),
            })
            .collect(),
    }
}

pub(crate) async fn workbook_revisions(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let w = st.workbook(&id).map_err(Fail)?;
    let revs = revision_list(&st, &id, w.revision, w.updated_at, &w.owner_id, w.size);
    let (page, pagination) = select(revs.iter().collect(), &lq, |_, _| None).map_err(Fail)?;
    let page: Vec<Revision> = page.into_iter().cloned().collect();
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.revisions = Some(revisions_xml(&page, w.revision));
    ok_xml(&r)
}

pub(crate) async fn download_workbook_revision(shared: Shr, _a: Auth, Path((_v, _s, id, n)): P3) -> Res {
    let st = shared.0.read();
    let w = st.workbook(&id).map_err(Fail)?;
    let n: u32 = n.parse().map_err(|_| Fail(ApiError::bad_request(format!("'{n}' is not a revision number."))))?;
    if n == 0 || n > w.revision {
        return Err(Fail(ApiError::not_found("404026", "Revision", &n.to_string())));
    }
    if let Some((name, data)) =
        st.revisions.get(&id).and_then(|rs| rs.iter().find(|r| r.number == n)).and_then(|r| r.file.clone())
    {
        return Ok(file_response("tableau_workbook", &name, data));
    }
    let twb = crate::content::workbook_twb(&st.site, w, &st.server_host);
    Ok(file_response("tableau_workbook", &format!("{}.twb", w.name), twb.into_bytes()))
}

/// Publish parameters common to workbooks and datasources.
struct Publish {
    name: String,
    project_id: String,
    description: Option<String>,
    show_tabs: Option<bool>,
    filename: String,
    data: Vec<u8>,
    overwrite: bool,
    as_job: bool,
}

fn read_publish(
    st: &State,
    headers: &HeaderMap,
    body: &[u8],
    q: &[(String, String)],
    file_part: &str,
    kind: &str,
) -> Result<Publish, Fail> {
    let param = |k: &str| q.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    let flag = |k: &str| param(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let parts = crate::content::parse_multipart(ct, body).map_err(|e| Fail(ApiError::bad_request(e.to_string())))?;
    let payload = parts
        .iter()
        .find(|p| p.name == "request_payload")
        .ok_or_else(|| Fail(ApiError::bad_request("The multipart body has no request_payload part.")))?;
    let req = parse_body(&String::from_utf8_lossy(&payload.data))?;
    let (name, project, description, show_tabs) = if kind == "workbook" {
        let w = req.workbook.ok_or_else(|| super::missing("a <workbook> element"))?;
        let st = xml::parse_bool(w.show_tabs.as_deref());
        (w.name, w.project.and_then(|p| p.id), w.description, st)
    } else {
        let d = req.datasource.ok_or_else(|| super::missing("a <datasource> element"))?;
        (d.name, d.project.and_then(|p| p.id), d.description, None)
    };
    let name = name.filter(|n| !n.trim().is_empty()).ok_or_else(|| super::missing("a name"))?;
    let project_id = project.ok_or_else(|| super::missing("a <project id> element"))?;
    st.project(&project_id).map_err(Fail)?;
    let (filename, data) = if let Some(sid) = param("uploadSessionId") {
        let data =
            st.uploads.get(&sid).cloned().ok_or_else(|| Fail(ApiError::not_found("404008", "Upload session", &sid)))?;
        let ext = param(&format!("{kind}Type"))
            .unwrap_or_else(|| if kind == "workbook" { "twbx".into() } else { "tdsx".into() });
        (format!("{name}.{ext}"), data)
    } else {
        let file = parts
            .iter()
            .find(|p| p.name == file_part)
            .ok_or_else(|| Fail(ApiError::bad_request(format!("The multipart body has no {file_part} part."))))?;
        (
            file.filename
                .clone()
                .unwrap_or_else(|| format!("{name}.{}", if kind == "workbook" { "twb" } else { "tds" })),
            file.data.clone(),
        )
    };
    Ok(Publish {
        name,
        project_id,
        description,
        show_tabs,
        filename,
        data,
        overwrite: flag("overwrite"),
        as_job: flag("asJob"),
    })
}

pub(crate) async fn publish_workbook(shared: Shr, a: Auth, headers: HeaderMap, q: Q, body: axum::body::Bytes) -> Res {
    a.require_publisher(&shared.0)?;
    let mut st = shared.0.write();
    let p = read_publish(&st, &headers, &body, &q.0, "tableau_workbook", "workbook")?;
    let doc = crate::content::unpack_document(&p.filename, &p.data)
        .map_err(|e| Fail(ApiError::bad_request(e.to_string())))?;
    let info = crate::content::parse_twb(&doc).map_err(|e| Fail(ApiError::bad_request(e.to_string())))?;
    let mut ds_ids = Vec::new();
    for r in &info.published_datasources {
        match st.idx.datasources_by_content_url.get(&r.content_url) {
            Some(&i) => ds_ids.push(st.site.datasources[i].id.clone()),
            None => {
                return Err(Fail(ApiError::bad_request(format!(
                    "The workbook connects to the published datasource '{}' (contentUrl '{}'), which does not exist on this site.",
                    r.name, r.content_url
                ))));
            }
        }
    }
    ds_ids.dedup();
    let now = Utc::now();
    let existing = st.site.workbooks.iter().position(|w| w.project_id == p.project_id && w.name == p.name);
    let publisher = a.0.user_id.clone();
    let (wi, status) = match existing {
        Some(i) if p.overwrite => {
            // The model's size counts extract data the served file does not materialize; that
            // part carries over, so republishing the downloaded file keeps the size and an
            // edit changes it by what the file grew or shrank.
            let previous_file_len = match st.revisions.get(&st.site.workbooks[i].id).and_then(|r| r.last()) {
                Some(Revision { file: Some((_, f)), .. }) => f.len() as u64,
                _ => crate::content::workbook_twb(&st.site, &st.site.workbooks[i], &st.server_host).len() as u64,
            };
            let w = &mut st.site.workbooks[i];
            let unmaterialized = w.size.saturating_sub(previous_file_len);
            w.revision += 1;
            w.updated_at = now;
            w.size = p.data.len() as u64 + unmaterialized;
            w.datasource_ids = ds_ids;
            if !info.fields_used.is_empty() {
                w.fields_used = info.fields_used.clone();
            }
            if let Some(d) = p.description {
                w.description = d;
            }
            if let Some(t) = p.show_tabs {
                w.show_tabs = t;
            }
            (i, StatusCode::OK)
        }
        Some(_) => {
            return Err(Fail(ApiError::conflict(
                "409004",
                format!(
                    "A workbook named '{}' already exists in the project; publish with overwrite=true to replace it.",
                    p.name
                ),
            )));
        }
        None => {
            let id = new_luid();
            let mut url = slug(&p.name);
            while st.site.workbooks.iter().any(|w| w.content_url == url) {
                url.push('_');
            }
            let views = info
                .worksheets
                .iter()
                .zip(&info.sheet_types)
                .map(|(n, kind)| tabflow_site::View {
                    id: new_luid(),
                    name: n.clone(),
                    total_views: 0,
                    last_viewed_at: None,
                    tags: vec![],
                    sheet_type: kind.clone(),
                })
                .collect();
            st.site.workbooks.push(Workbook {
                id,
                name: p.name.clone(),
                project_id: p.project_id.clone(),
                owner_id: publisher.clone(),
                tags: vec![],
                size: p.data.len() as u64,
                created_at: now,
                updated_at: now,
                datasource_ids: ds_ids,
                views,
                content_url: url,
                description: p.description.unwrap_or_default(),
                show_tabs: p.show_tabs.unwrap_or(true),
                fields_used: info.fields_used.clone(),
                revision: 1,
            });
            st.reindex();
            (st.site.workbooks.len() - 1, StatusCode::CREATED)
        }
    };
    let w = st.site.workbooks[wi].clone();
    let mut revs = revision_list(&st, &w.id, w.revision.saturating_sub(1), w.created_at, &w.owner_id, w.size);
    revs.push(Revision {
        number: w.revision,
        published_at: now,
        publisher_id: publisher,
        size: p.data.len() as u64,
        file: Some((p.filename, p.data)),
    });
    st.revisions.insert(w.id.clone(), revs);
    let mut r = xml::TsResponse::new();
    if p.as_job {
        let job = misc_job(&mut st, "PublishWorkbook");
        r.job = Some(job);
        return Ok(crate::server::xml_response(StatusCode::ACCEPTED, &r));
    }
    let mut x = st.workbook_xml(&w);
    x.views = Some(xml::Views { view: (0..w.views.len()).map(|vi| st.view_xml(wi, vi, false)).collect() });
    r.workbook = Some(x);
    Ok(crate::server::xml_response(status, &r))
}

fn misc_job(st: &mut State, kind: &str) -> xml::Job {
    let id = new_luid();
    let now = Utc::now();
    st.jobs
        .insert(id.clone(), crate::state::Job { id: id.clone(), kind: kind.into(), created_at: now, finish_code: 0 });
    xml::Job {
        id,
        mode: Some("Asynchronous".into()),
        kind: Some(kind.into()),
        created_at: Some(ts(now)),
        ..xml::Job::default()
    }
}

// ---------------------------------------------------------------- datasources

struct DsRow<'a> {
    d: &'a Datasource,
    created: String,
    updated: String,
}

fn datasource_field<'a>(st: &'a State, r: &'a DsRow<'a>, f: &str) -> Option<FieldValue<'a>> {
    let d = r.d;
    Some(match f {
        "name" => FieldValue::Text(&d.name),
        "contentUrl" => FieldValue::Text(&d.content_url),
        "projectName" => FieldValue::Text(st.project_name(&d.project_id)),
        "projectId" => FieldValue::Text(&d.project_id),
        "ownerName" => FieldValue::Text(st.user_name(&d.owner_id)),
        "ownerEmail" => FieldValue::Text(st.user(&d.owner_id).map(|u| u.email.as_str()).unwrap_or("")),
        "ownerId" => FieldValue::Text(&d.owner_id),
        "ownerDomain" => FieldValue::Text("local"),
        "tags" | "tag" => FieldValue::List(&d.tags),
        "isCertified" => FieldValue::Bool(d.certified),
        "hasExtracts" => FieldValue::Bool(d.has_extracts),
        "type" | "datasourceType" => FieldValue::Text(&d.connection.kind),
        "connectedWorkbookType" => FieldValue::Missing,
        "createdAt" => FieldValue::Date(&r.created),
        "updatedAt" => FieldValue::Date(&r.updated),
        "favoritesTotal" => {
            FieldValue::Number(st.site.favorites.iter().filter(|x| x.content.id == d.id).count() as i64)
        }
        _ => return None,
    })
}

pub(crate) async fn list_datasources(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let rows: Vec<DsRow<'_>> = st
        .site
        .datasources
        .iter()
        .map(|d| DsRow { d, created: ts(d.created_at.unwrap_or(d.updated_at)), updated: ts(d.updated_at) })
        .collect();
    let (page, pagination) = select(rows.iter().collect(), &lq, |r, f| datasource_field(&st, r, f)).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.datasources =
        Some(xml::Datasources { datasource: page.into_iter().map(|row| st.datasource_xml(row.d)).collect() });
    ok_xml(&r)
}

pub(crate) async fn get_datasource(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let d = st.datasource(&id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.datasource = Some(st.datasource_xml(d));
    ok_xml(&r)
}

pub(crate) async fn update_datasource(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_publisher(&shared.0)?;
    let req = parse_body(&body)?;
    let d = req.datasource.ok_or_else(|| super::missing("a <datasource> element"))?;
    let owner = d.owner.as_ref().and_then(|o| o.id.clone());
    if owner.is_some() {
        a.require_admin(&shared.0, "change a datasource's owner")?;
    }
    let mut st = shared.0.write();
    let i = st.datasource_index(&id).map_err(Fail)?;
    let project = d.project.as_ref().and_then(|p| p.id.clone());
    if let Some(p) = &project {
        st.project(p).map_err(Fail)?;
    }
    if let Some(o) = &owner {
        st.user(o).map_err(Fail)?;
    }
    let certified = match d.is_certified.as_deref() {
        None => None,
        Some(s) => Some(
            xml::parse_bool(Some(s))
                .ok_or_else(|| Fail(ApiError::bad_request(format!("isCertified must be true or false, got '{s}'."))))?,
        ),
    };
    let ds = &mut st.site.datasources[i];
    if let Some(n) = d.name {
        ds.name = n;
    }
    if let Some(p) = project {
        ds.project_id = p;
    }
    if let Some(o) = owner {
        ds.owner_id = o;
    }
    if let Some(c) = certified {
        ds.certified = c;
        if !c {
            ds.certification_note = None;
        }
    }
    if let Some(n) = d.certification_note {
        ds.certification_note = if n.is_empty() { None } else { Some(n) };
    }
    if let Some(desc) = d.description {
        ds.description = desc;
    }
    ds.updated_at = Utc::now();
    let ds = ds.clone();
    let mut r = xml::TsResponse::new();
    r.datasource = Some(st.datasource_xml(&ds));
    ok_xml(&r)
}

pub(crate) async fn delete_datasource(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_publisher(&shared.0)?;
    let mut st = shared.0.write();
    st.datasource_index(&id).map_err(Fail)?;
    remove_content(&mut st, &[], std::slice::from_ref(&id));
    st.reindex();
    no_content()
}

fn ds_connection_xml(d: &Datasource) -> xml::Connection {
    let c = &d.connection;
    xml::Connection {
        id: Some(if c.id.is_empty() { derived_id(&d.id, 0) } else { c.id.clone() }),
        kind: Some(c.kind.clone()),
        embed_password: Some("true".into()),
        server_address: Some(c.server.clone()),
        server_port: Some(c.port.clone()),
        user_name: Some(c.username.clone()),
        password: None,
        query_tagging_enabled: Some("false".into()),
        datasource: Some(xml::IdRef::named(d.id.clone(), d.name.clone())),
    }
}

pub(crate) async fn datasource_connections(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let d = st.datasource(&id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.connections = Some(xml::Connections { connection: vec![ds_connection_xml(d)] });
    ok_xml(&r)
}

pub(crate) async fn update_datasource_connection(
    shared: Shr,
    a: Auth,
    Path((_v, _s, id, cid)): P3,
    body: String,
) -> Res {
    a.require_publisher(&shared.0)?;
    let req = parse_body(&body)?;
    let c = req.connection.ok_or_else(|| super::missing("a <connection> element"))?;
    let mut st = shared.0.write();
    let i = st.datasource_index(&id).map_err(Fail)?;
    let current = ds_connection_xml(&st.site.datasources[i]).id.unwrap_or_default();
    if current != cid {
        return Err(Fail(ApiError::not_found("404020", "Connection", &cid)));
    }
    let ds = &mut st.site.datasources[i];
    if let Some(v) = c.server_address {
        ds.connection.server = v;
    }
    if let Some(v) = c.server_port {
        ds.connection.port = v;
    }
    if let Some(v) = c.user_name {
        ds.connection.username = v;
    }
    ds.updated_at = Utc::now();
    let x = ds_connection_xml(ds);
    let mut r = xml::TsResponse::new();
    r.connection = Some(x);
    ok_xml(&r)
}

pub(crate) async fn download_datasource(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    let st = shared.0.read();
    let d = st.datasource(&id).map_err(Fail)?;
    if let Some((name, data)) = st.revisions.get(&id).and_then(|r| r.last()).and_then(|r| r.file.clone()) {
        return Ok(file_response("tableau_datasource", &name, data));
    }
    let tds = crate::content::datasource_tds(&st.site, d);
    if d.has_extracts
        && q.0.iter().find(|(k, _)| k == "includeExtract").is_none_or(|(_, v)| !v.eq_ignore_ascii_case("false"))
    {
        // With its extract, as Tableau serves it: a .tdsx holding the .tds and the .hyper.
        let pack = || {
            let mut z = tabflow_wire::zip::Writer::new();
            z.add_deflated(&format!("{}.tds", d.name), tds.as_bytes())?;
            z.add_deflated(&format!("Data/Extracts/{}.hyper", d.content_url), &crate::content::hyper_placeholder(d))?;
            z.finish(b"")
        };
        let tdsx = pack().map_err(|e| Fail(ApiError::internal(format!("the .tdsx cannot be packed: {e}"))))?;
        return Ok(file_response("tableau_datasource", &format!("{}.tdsx", d.name), tdsx));
    }
    Ok(file_response("tableau_datasource", &format!("{}.tds", d.name), tds.into_bytes()))
}

pub(crate) async fn datasource_revisions(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let d = st.datasource(&id).map_err(Fail)?;
    let current = st.revisions.get(&id).and_then(|r| r.last()).map(|r| r.number).unwrap_or(1);
    let revs = revision_list(&st, &id, current, d.updated_at, &d.owner_id, d.size);
    let (page, pagination) = select(revs.iter().collect(), &lq, |_, _| None).map_err(Fail)?;
    let page: Vec<Revision> = page.into_iter().cloned().collect();
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.revisions = Some(revisions_xml(&page, current));
    ok_xml(&r)
}

pub(crate) async fn publish_datasource(shared: Shr, a: Auth, headers: HeaderMap, q: Q, body: axum::body::Bytes) -> Res {
    a.require_publisher(&shared.0)?;
    let mut st = shared.0.write();
    let p = read_publish(&st, &headers, &body, &q.0, "tableau_datasource", "datasource")?;
    let doc = crate::content::unpack_document(&p.filename, &p.data)
        .map_err(|e| Fail(ApiError::bad_request(e.to_string())))?;
    let info = crate::content::parse_tds(&doc).map_err(|e| Fail(ApiError::bad_request(e.to_string())))?;
    let has_extracts = crate::content::has_extract(&p.data);
    let now = Utc::now();
    let existing = st.site.datasources.iter().position(|d| d.project_id == p.project_id && d.name == p.name);
    let publisher = a.0.user_id.clone();
    let (di, status) = match existing {
        Some(i) if p.overwrite => {
            let d = &mut st.site.datasources[i];
            d.updated_at = now;
            d.size = p.data.len() as u64;
            d.connection.kind = info.kind.clone();
            d.connection.server = info.server.clone();
            d.connection.database = info.database.clone();
            d.connection.table = info.table.clone();
            d.connection.custom_sql = info.custom_sql.clone();
            d.has_extracts = has_extracts;
            if !info.fields.is_empty() {
                d.fields = info.fields.clone();
            }
            (i, StatusCode::OK)
        }
        Some(_) => {
            return Err(Fail(ApiError::conflict(
                "409004",
                format!(
                    "A datasource named '{}' already exists in the project; publish with overwrite=true to replace it.",
                    p.name
                ),
            )));
        }
        None => {
            let mut url = slug(&p.name);
            while st.idx.datasources_by_content_url.contains_key(&url) {
                url.push('_');
            }
            st.site.datasources.push(Datasource {
                id: new_luid(),
                name: p.name.clone(),
                project_id: p.project_id.clone(),
                owner_id: publisher.clone(),
                tags: vec![],
                certified: false,
                certification_note: None,
                updated_at: now,
                connection: tabflow_site::Connection {
                    kind: info.kind.clone(),
                    server: info.server.clone(),
                    database: info.database.clone(),
                    table: info.table.clone(),
                    custom_sql: info.custom_sql.clone(),
                    id: new_luid(),
                    port: String::new(),
                    username: String::new(),
                },
                fields: info.fields.clone(),
                content_url: url,
                description: p.description.unwrap_or_default(),
                created_at: Some(now),
                has_extracts,
                size: p.data.len() as u64,
                total_hits: 0,
                last_accessed_at: None,
            });
            st.reindex();
            (st.site.datasources.len() - 1, StatusCode::CREATED)
        }
    };
    let d = st.site.datasources[di].clone();
    let mut revs = st.revisions.get(&d.id).cloned().unwrap_or_default();
    let number = revs.last().map(|r| r.number + 1).unwrap_or(if status == StatusCode::OK { 2 } else { 1 });
    revs.push(Revision {
        number,
        published_at: now,
        publisher_id: publisher,
        size: p.data.len() as u64,
        file: Some((p.filename, p.data)),
    });
    st.revisions.insert(d.id.clone(), revs);
    let mut r = xml::TsResponse::new();
    if p.as_job {
        r.job = Some(misc_job(&mut st, "PublishDatasource"));
        return Ok(crate::server::xml_response(StatusCode::ACCEPTED, &r));
    }
    r.datasource = Some(st.datasource_xml(&d));
    Ok(crate::server::xml_response(status, &r))
}

// ---------------------------------------------------------------- views

struct ViewRow {
    wi: usize,
    vi: usize,
    created: String,
    updated: String,
}

fn view_field<'a>(st: &'a State, r: &'a ViewRow, f: &str) -> Option<FieldValue<'a>> {
    let w = &st.site.workbooks[r.wi];
    let v = &w.views[r.vi];
    Some(match f {
        "name" => FieldValue::Text(&v.name),
        "viewUrlName" | "contentUrl" => FieldValue::Text(&v.name),
        "caption" => FieldValue::Text(&v.name),
        "ownerName" => FieldValue::Text(st.user_name(&w.owner_id)),
        "ownerEmail" => FieldValue::Text(st.user(&w.owner_id).map(|u| u.email.as_str()).unwrap_or("")),
        "ownerDomain" => FieldValue::Text("local"),
        "projectName" => FieldValue::Text(st.project_name(&w.project_id)),
        "workbookName" => FieldValue::Text(&w.name),
        "tags" | "tag" => FieldValue::List(&v.tags),
        "hitsTotal" => FieldValue::Number(v.total_views as i64),
        "sheetType" => FieldValue::Text(&v.sheet_type),
        "favoritesTotal" => {
            FieldValue::Number(st.site.favorites.iter().filter(|x| x.content.id == v.id).count() as i64)
        }
        "createdAt" => FieldValue::Date(&r.created),
        "updatedAt" => FieldValue::Date(&r.updated),
        _ => return None,
    })
}

pub(crate) async fn list_views(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let usage = lq.flag("includeUsageStatistics");
    let st = shared.0.read();
    let needs_dates = lq.filter.as_ref().is_some_and(|f| f.conditions.iter().any(|c| c.field.ends_with("At")))
        || lq.sort.as_ref().is_some_and(|s| s.keys.iter().any(|(k, _)| k.ends_with("At")));
    let mut rows = Vec::new();
    for (wi, w) in st.site.workbooks.iter().enumerate() {
        for vi in 0..w.views.len() {
            let (created, updated) =
                if needs_dates { (ts(w.created_at), ts(w.updated_at)) } else { Default::default() };
            rows.push(ViewRow { wi, vi, created, updated });
        }
    }
    let (page, pagination) = select(rows.iter().collect(), &lq, |r, f| view_field(&st, r, f)).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.views = Some(xml::Views { view: page.into_iter().map(|row| st.view_xml(row.wi, row.vi, usage)).collect() });
    ok_xml(&r)
}

pub(crate) async fn get_view(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q, _uri: OriginalUri) -> Res {
    let usage = q.0.iter().any(|(k, v)| k == "includeUsageStatistics" && v == "true");
    let st = shared.0.read();
    let (wi, vi) = st.view_index(&id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.view = Some(st.view_xml(wi, vi, usage));
    ok_xml(&r)
}
