//! Explicit permissions (GET, PUT merge, DELETE one capability), project default
//! permissions, and tags on workbooks, datasources, views and flows.

use axum::extract::{OriginalUri, Path};
use chrono::Utc;
use tabflow_site::{DefaultPermissionRule, GranteeRef, Mode};
use tabflow_wire::{ApiError, capability, xml};

use super::{Auth, Res, Shr, kind_of, no_content, ok_xml, parse_body};
use crate::server::Fail;
use crate::state::{State, grantee_capabilities};

type P2 = Path<(String, String, String)>;
type P6 = Path<(String, String, String, String, String, String, String)>;

/// Validates the `<permissions>` body: grantees exist, capability names and modes are Tableau's.
fn read_rules(st: &State, p: &xml::Permissions) -> Result<Vec<(String, String, Vec<(String, Mode)>)>, Fail> {
    if p.grantee_capabilities.is_empty() {
        return Err(super::missing("at least one <granteeCapabilities> element"));
    }
    let mut out = Vec::new();
    for gc in &p.grantee_capabilities {
        let (gk, gid) =
            gc.grantee().ok_or_else(|| super::missing("a <user id> or <group id> inside granteeCapabilities"))?;
        match gk {
            "user" => {
                st.user(gid).map_err(Fail)?;
            }
            "group" => {
                st.group_index(gid).map_err(Fail)?;
            }
            _ => return Err(Fail(ApiError::bad_request("Group sets are not supported by this server."))),
        }
        let mut caps = Vec::new();
        for c in &gc.capabilities.capability {
            if !capability::is_capability(&c.name) {
                return Err(Fail(ApiError::bad_request(format!("'{}' is not a valid capability name.", c.name))));
            }
            let mode = Mode::parse(&c.mode).ok_or_else(|| {
                Fail(ApiError::bad_request(format!("'{}' is not a valid capability mode; use Allow or Deny.", c.mode)))
            })?;
            caps.push((c.name.clone(), mode));
        }
        out.push((gk.to_string(), gid.to_string(), caps));
    }
    Ok(out)
}

fn grantee_kind(path_kind: &str) -> Result<&'static str, Fail> {
    match path_kind {
        "users" => Ok("user"),
        "groups" => Ok("group"),
        other => Err(Fail(ApiError::bad_request(format!("'{other}' is not a grantee type; use users or groups.")))),
    }
}

pub(crate) async fn get_permissions(shared: Shr, _a: Auth, uri: OriginalUri, Path((_v, _s, id)): P2) -> Res {
    let kind = kind_of(&uri);
    let st = shared.0.read();
    st.resource_exists(kind, &id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.permissions = Some(st.permissions_xml(kind, &id));
    ok_xml(&r)
}

pub(crate) async fn add_permissions(
    shared: Shr,
    a: Auth,
    uri: OriginalUri,
    Path((_v, _s, id)): P2,
    body: String,
) -> Res {
    a.require_publisher(&shared.0)?;
    let kind = kind_of(&uri);
    let req = parse_body(&body)?;
    let p = req.permissions.ok_or_else(|| super::missing("a <permissions> element"))?;
    let mut st = shared.0.write();
    st.resource_exists(kind, &id).map_err(Fail)?;
    let rules = read_rules(&st, &p)?;
    for (gk, gid, caps) in &rules {
        st.merge_rule(kind, &id, gk, gid, caps);
    }
    // The answer lists the grantees and capabilities that were added.
    let mut out = xml::Permissions {
        grantee_capabilities: rules
            .iter()
            .map(|(gk, gid, caps)| {
                grantee_capabilities(&GranteeRef { kind: gk.clone(), id: gid.clone() }, &caps.iter().cloned().collect())
            })
            .collect(),
        ..xml::Permissions::default()
    };
    let full = st.permissions_xml(kind, &id);
    out.project = full.project;
    out.workbook = full.workbook;
    out.datasource = full.datasource;
    out.view = full.view;
    out.flow = full.flow;
    let mut r = xml::TsResponse::new();
    r.permissions = Some(out);
    ok_xml(&r)
}

pub(crate) async fn delete_permission(
    shared: Shr,
    a: Auth,
    uri: OriginalUri,
    Path((_v, _s, id, gkind, gid, cap, mode)): P6,
) -> Res {
    a.require_publisher(&shared.0)?;
    let kind = kind_of(&uri);
    let gk = grantee_kind(&gkind)?;
    let mode = Mode::parse(&mode)
        .ok_or_else(|| Fail(ApiError::bad_request(format!("'{mode}' is not a capability mode; use Allow or Deny."))))?;
    if !capability::is_capability(&cap) {
        return Err(Fail(ApiError::bad_request(format!("'{cap}' is not a valid capability name."))));
    }
    let mut st = shared.0.write();
    st.resource_exists(kind, &id).map_err(Fail)?;
    if gk == "user" {
        st.user(&gid).map_err(Fail)?;
    } else {
        st.group_index(&gid).map_err(Fail)?;
    }
    if !st.delete_capability(&id, gk, &gid, &cap, mode) {
        return Err(Fail(ApiError::not_found("404013", "Permission", &format!("{gk} {gid} {cap}:{}", mode.as_str()))));
    }
    no_content()
}

fn content_type(ctype: &str) -> Result<&'static str, Fail> {
    match ctype {
        "workbooks" => Ok("workbooks"),
        "datasources" => Ok("datasources"),
        "flows" => Ok("flows"),
        "metrics" => Ok("metrics"),
        "lenses" => Ok("lenses"),
        "dataroles" => Ok("dataroles"),
        "virtualconnections" => Ok("virtualconnections"),
        "databases" => Ok("databases"),
        "tables" => Ok("tables"),
        other => Err(Fail(ApiError::not_found("404000", "Default permission content type", other))),
    }
}

fn default_permissions_xml(st: &State, project_id: &str, ctype: &str) -> xml::Permissions {
    let p = st.project(project_id).ok();
    let mut out = xml::Permissions {
        project: p.map(|p| xml::ResourceOwnerRef {
            id: Some(p.id.clone()),
            name: Some(p.name.clone()),
            owner: Some(xml::IdRef::id(p.owner_id.clone())),
        }),
        ..xml::Permissions::default()
    };
    out.grantee_capabilities = st
        .site
        .default_permissions
        .iter()
        .filter(|r| r.project_id == project_id && r.content_type == ctype && !r.capabilities.is_empty())
        .map(|r| grantee_capabilities(&r.grantee, &r.capabilities))
        .collect();
    out
}

pub(crate) async fn get_default_permissions(
    shared: Shr,
    _a: Auth,
    Path((_v, _s, id, ctype)): Path<(String, String, String, String)>,
) -> Res {
    let ctype = content_type(&ctype)?;
    let st = shared.0.read();
    st.project(&id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.permissions = Some(default_permissions_xml(&st, &id, ctype));
    ok_xml(&r)
}

pub(crate) async fn add_default_permissions(
    shared: Shr,
    a: Auth,
    Path((_v, _s, id, ctype)): Path<(String, String, String, String)>,
    body: String,
) -> Res {
    a.require_publisher(&shared.0)?;
    let ctype = content_type(&ctype)?;
    let req = parse_body(&body)?;
    let p = req.permissions.ok_or_else(|| super::missing("a <permissions> element"))?;
    let mut st = shared.0.write();
    st.project(&id).map_err(Fail)?;
    let rules = read_rules(&st, &p)?;
    for (gk, gid, caps) in rules {
        let existing =
            st.site.default_permissions.iter().position(|r| {
                r.project_id == id && r.content_type == ctype && r.grantee.kind == gk && r.grantee.id == gid
            });
        let i = match existing {
            Some(i) => i,
            None => {
                st.site.default_permissions.push(DefaultPermissionRule {
                    project_id: id.clone(),
                    content_type: ctype.into(),
                    grantee: GranteeRef { kind: gk, id: gid },
                    capabilities: Default::default(),
                });
                st.site.default_permissions.len() - 1
            }
        };
        for (n, m) in caps {
            st.site.default_permissions[i].capabilities.insert(n, m);
        }
    }
    let mut r = xml::TsResponse::new();
    r.permissions = Some(default_permissions_xml(&st, &id, ctype));
    ok_xml(&r)
}

pub(crate) async fn delete_default_permission(
    shared: Shr,
    a: Auth,
    Path((_v, _s, id, ctype, gkind, gid, cap, mode)): Path<(
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    )>,
) -> Res {
    a.require_publisher(&shared.0)?;
    let ctype = content_type(&ctype)?;
    let gk = grantee_kind(&gkind)?;
    let mode =
        Mode::parse(&mode).ok_or_else(|| Fail(ApiError::bad_request(format!("'{mode}' is not a capability mode."))))?;
    let mut st = shared.0.write();
    st.project(&id).map_err(Fail)?;
    let hit = st.site.default_permissions.iter_mut().find(|r| {
        r.project_id == id
            && r.content_type == ctype
            && r.grantee.kind == gk
            && r.grantee.id == gid
            && r.capabilities.get(&cap) == Some(&mode)
    });
    match hit {
        Some(r) => {
            r.capabilities.remove(&cap);
            no_content()
        }
        None => Err(Fail(ApiError::not_found(
            "404013",
            "Default permission",
            &format!("{gk} {gid} {cap}:{}", mode.as_str()),
        ))),
    }
}

// ---------------------------------------------------------------- tags

fn tags_of<'a>(st: &'a mut State, kind: &str, id: &str) -> Result<&'a mut Vec<String>, Fail> {
    match kind {
        "workbook" => {
            let i = st.workbook_index(id).map_err(Fail)?;
            Ok(&mut st.site.workbooks[i].tags)
        }
        "datasource" => {
            let i = st.datasource_index(id).map_err(Fail)?;
            Ok(&mut st.site.datasources[i].tags)
        }
        "view" => {
            let (wi, vi) = st.view_index(id).map_err(Fail)?;
            Ok(&mut st.site.workbooks[wi].views[vi].tags)
        }
        "flow" => {
            let i = st.flow_index(id).map_err(Fail)?;
            Ok(&mut st.site.flows[i].tags)
        }
        _ => Err(Fail(ApiError::bad_request("Tags are supported on workbooks, datasources, views and flows."))),
    }
}

fn touch(st: &mut State, kind: &str, id: &str) {
    let now = Utc::now();
    match kind {
        "workbook" => {
            if let Ok(i) = st.workbook_index(id) {
                st.site.workbooks[i].updated_at = now;
            }
        }
        "datasource" => {
            if let Ok(i) = st.datasource_index(id) {
                st.site.datasources[i].updated_at = now;
            }
        }
        "flow" => {
            if let Ok(i) = st.flow_index(id) {
                st.site.flows[i].updated_at = now;
            }
        }
        _ => {}
    }
}

pub(crate) async fn add_tags(shared: Shr, a: Auth, uri: OriginalUri, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_publisher(&shared.0)?;
    let kind = kind_of(&uri);
    let req = parse_body(&body)?;
    // Tableau splits an unquoted label on spaces and commas; a quoted label is one tag.
    let labels: Vec<String> = req
        .tags
        .map(|t| t.labels())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|l| {
            let t = l.trim();
            if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
                vec![t[1..t.len() - 1].to_string()]
            } else {
                t.split([' ', ',']).filter(|p| !p.is_empty()).map(str::to_string).collect()
            }
        })
        .collect();
    if labels.is_empty() || labels.iter().any(|l| l.trim().is_empty()) {
        return Err(super::missing("one or more <tag label> elements with non-empty labels"));
    }
    let mut st = shared.0.write();
    let tags = tags_of(&mut st, kind, &id)?;
    for l in labels {
        if !tags.iter().any(|t| t.eq_ignore_ascii_case(&l)) {
            tags.push(l);
        }
    }
    let out = xml::Tags::from_labels(tags.iter().cloned());
    touch(&mut st, kind, &id);
    let mut r = xml::TsResponse::new();
    r.tags = Some(out);
    ok_xml(&r)
}

pub(crate) async fn delete_tag(
    shared: Shr,
    a: Auth,
    uri: OriginalUri,
    Path((_v, _s, id, tag)): Path<(String, String, String, String)>,
) -> Res {
    a.require_publisher(&shared.0)?;
    let kind = kind_of(&uri);
    let mut st = shared.0.write();
    let tags = tags_of(&mut st, kind, &id)?;
    let before = tags.len();
    tags.retain(|t| !t.eq_ignore_ascii_case(&tag));
    if tags.len() == before {
        return Err(Fail(ApiError::not_found("404007", "Tag", &tag)));
    }
    touch(&mut st, kind, &id);
    no_content()
}
