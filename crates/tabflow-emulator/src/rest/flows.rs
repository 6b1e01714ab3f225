//! Tableau Prep flows (API 3.3+): list, get, update (owner and project), delete. Tags and
//! permissions on flows use the shared handlers in `permissions.rs`.

use axum::extract::Path;
use chrono::Utc;
use tabflow_site::Flow;
use tabflow_wire::filter::FieldValue;
use tabflow_wire::{ApiError, capability, xml};

use super::{Auth, Q, Res, Shr, list_query, no_content, ok_xml, parse_body, select};
use crate::server::Fail;
use crate::state::{State, ts};

type P2 = Path<(String, String, String)>;

/// A flow with its dates as the text the XML carries (filters and sorts compare that text).
struct Row<'a> {
    f: &'a Flow,
    created: String,
    updated: String,
}

fn field<'a>(st: &'a State, r: &'a Row<'a>, name: &str) -> Option<FieldValue<'a>> {
    let f = r.f;
    Some(match name {
        "name" => FieldValue::Text(&f.name),
        "projectName" => FieldValue::Text(st.project_name(&f.project_id)),
        "projectId" => FieldValue::Text(&f.project_id),
        "ownerName" => FieldValue::Text(st.user_name(&f.owner_id)),
        "ownerEmail" => FieldValue::Text(st.user(&f.owner_id).map(|u| u.email.as_str()).unwrap_or("")),
        "ownerId" => FieldValue::Text(&f.owner_id),
        "ownerDomain" => FieldValue::Text("local"),
        "tags" | "tag" => FieldValue::List(&f.tags),
        "createdAt" => FieldValue::Date(&r.created),
        "updatedAt" => FieldValue::Date(&r.updated),
        _ => return None,
    })
}

pub(crate) async fn list_flows(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let rows: Vec<Row<'_>> =
        st.site.flows.iter().map(|f| Row { f, created: ts(f.created_at), updated: ts(f.updated_at) }).collect();
    let (page, pagination) = select(rows.iter().collect(), &lq, |r, f| field(&st, r, f)).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.flows = Some(xml::Flows { flow: page.into_iter().map(|row| st.flow_xml(row.f)).collect() });
    ok_xml(&r)
}

pub(crate) async fn get_flow(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let f = st.flow(&id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.flow = Some(st.flow_xml(f));
    ok_xml(&r)
}

/// `PUT /flows/{id}` with `<flow><project id/><owner id/></flow>`. TSC sends the project
/// even when only the owner changes; other attributes are ignored, as the API documents
/// only these two.
pub(crate) async fn update_flow(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_publisher(&shared.0)?;
    let req = parse_body(&body)?;
    let f = req.flow.ok_or_else(|| super::missing("a <flow> element"))?;
    let project = f.project.as_ref().and_then(|p| p.id.clone()).filter(|p| !p.is_empty());
    let owner = f.owner.as_ref().and_then(|o| o.id.clone()).filter(|o| !o.is_empty());
    if project.is_none() && owner.is_none() {
        return Err(super::missing("a <project id> or <owner id> inside <flow>"));
    }
    // Asked before the write lock is taken: the role lookup reads the state.
    let admin = a.require_admin(&shared.0, "change a flow's owner");
    let mut st = shared.0.write();
    let i = st.flow_index(&id).map_err(Fail)?;
    // TSC sends the current owner back when only the project changes: not an owner change.
    let owner = owner.filter(|o| *o != st.site.flows[i].owner_id);
    if owner.is_some() {
        admin?;
    }
    if let Some(p) = &project {
        st.project(p).map_err(Fail)?;
    }
    if let Some(o) = &owner {
        let u = st.user(o).map_err(Fail)?;
        // A flow owner needs a Creator license.
        if !capability::can_own_flows(&u.site_role) {
            return Err(Fail(ApiError::forbidden(
                "403141",
                format!(
                    "User '{}' has the site role {}; a flow's owner needs a Creator license (Creator, SiteAdministratorCreator or ServerAdministrator). Pick another owner or change the user's site role first.",
                    u.name, u.site_role
                ),
            )));
        }
    }
    let flow = &mut st.site.flows[i];
    if let Some(p) = project {
        flow.project_id = p;
    }
    if let Some(o) = owner {
        flow.owner_id = o;
    }
    flow.updated_at = Utc::now();
    let flow = flow.clone();
    let mut r = xml::TsResponse::new();
    r.flow = Some(st.flow_xml(&flow));
    ok_xml(&r)
}

pub(crate) async fn delete_flow(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_publisher(&shared.0)?;
    let mut st = shared.0.write();
    st.flow_index(&id).map_err(Fail)?;
    remove_flows(&mut st, std::slice::from_ref(&id));
    st.reindex();
    no_content()
}

/// Removes flows and what points at them (permission rules, subscriptions, favorites).
pub(crate) fn remove_flows(st: &mut State, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    st.site.flows.retain(|f| !ids.contains(&f.id));
    st.drop_rules_where(|r| ids.contains(&r.resource.id));
    st.site.subscriptions.retain(|s| !ids.contains(&s.content.id));
    st.site.favorites.retain(|f| !ids.contains(&f.content.id));
}
