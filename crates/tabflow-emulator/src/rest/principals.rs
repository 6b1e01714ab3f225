//! Users and groups.

use axum::extract::Path;
use tabflow_site::{Group, User};
use tabflow_wire::filter::FieldValue;
use tabflow_wire::{ApiError, xml};

use super::{Auth, Q, Res, Shr, created_xml, list_query, no_content, ok_xml, parse_body, select};
use crate::server::Fail;
use crate::state::{new_luid, ts};

type P2 = Path<(String, String, String)>;
type P3 = Path<(String, String, String, String)>;

fn user_field<'a>(u: &'a User, f: &str, last_login: &'a str) -> Option<FieldValue<'a>> {
    Some(match f {
        "name" => FieldValue::Text(&u.name),
        "siteRole" => FieldValue::Text(&u.site_role),
        "email" => FieldValue::Text(&u.email),
        "friendlyName" | "fullName" => FieldValue::Text(&u.full_name),
        "lastLogin" => {
            if last_login.is_empty() {
                FieldValue::Missing
            } else {
                FieldValue::Date(last_login)
            }
        }
        "domainName" => FieldValue::Text("local"),
        "authSetting" => FieldValue::Text(u.auth_setting.as_deref().unwrap_or("ServerDefault")),
        _ => return None,
    })
}

/// Each user's last sign-in as the XML gives it, when `lq` filters or sorts by it (else empty:
/// no comparison reads it).
fn last_logins(lq: &super::ListQuery, users: &[&User]) -> Vec<String> {
    let named = lq.filter.as_ref().is_some_and(|f| f.conditions.iter().any(|c| c.field == "lastLogin"))
        || lq.sort.as_ref().is_some_and(|s| s.keys.iter().any(|(k, _)| k == "lastLogin"));
    if named {
        users.iter().map(|u| u.last_login.map(ts).unwrap_or_default()).collect()
    } else {
        vec![String::new(); users.len()]
    }
}

pub(crate) async fn list_users(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    // Precompute last-login strings so the comparator sees the same text as the XML (only
    // when the query filters or sorts by it: 20 000 users are listed in 20 pages).
    let logins = last_logins(&lq, &st.site.users.iter().collect::<Vec<_>>());
    let pairs: Vec<(usize, &User)> = st.site.users.iter().enumerate().collect();
    let (page, pagination) =
        select(pairs.iter().collect(), &lq, |(i, u), f| user_field(u, f, &logins[*i])).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.users = Some(xml::Users { user: page.into_iter().map(|(_, u)| st.user_xml(u)).collect() });
    ok_xml(&r)
}

pub(crate) async fn get_user(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let u = st.user(&id).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.user = Some(st.user_xml(u));
    ok_xml(&r)
}

pub(crate) async fn add_user(shared: Shr, a: Auth, body: String) -> Res {
    a.require_admin(&shared.0, "add users")?;
    let req = parse_body(&body)?;
    let u = req.user.ok_or_else(|| super::missing("a <user> element"))?;
    let name = u.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| super::missing("the user's name"))?;
    let role = u.site_role.unwrap_or_else(|| "Unlicensed".into());
    if !tabflow_wire::capability::is_site_role(&role) {
        return Err(Fail(ApiError::bad_request(format!("'{role}' is not a valid site role."))));
    }
    let mut st = shared.0.write();
    if st.idx.users_by_name.contains_key(&name.to_lowercase()) {
        return Err(Fail(ApiError::conflict(
            "409017",
            format!("A user with the name '{name}' already exists on the site."),
        )));
    }
    let user = User {
        id: new_luid(),
        name: name.clone(),
        full_name: u.full_name.unwrap_or_default(),
        email: u.email.unwrap_or_default(),
        site_role: role,
        last_login: None,
        auth_setting: u.auth_setting,
    };
    st.site.users.push(user.clone());
    // Tableau puts every user of a site in its All Users group.
    if let Some(all) = st.site.groups.iter_mut().find(|g| g.name == "All Users") {
        all.members.push(user.id.clone());
    }
    st.reindex();
    let mut r = xml::TsResponse::new();
    r.user = Some(st.user_xml(&user));
    created_xml(&r)
}

pub(crate) async fn update_user(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_admin(&shared.0, "update users")?;
    let req = parse_body(&body)?;
    let u = req.user.ok_or_else(|| super::missing("a <user> element"))?;
    let mut st = shared.0.write();
    let i = st.user_index(&id).map_err(Fail)?;
    if let Some(role) = &u.site_role
        && !tabflow_wire::capability::is_site_role(role)
    {
        return Err(Fail(ApiError::bad_request(format!("'{role}' is not a valid site role."))));
    }
    if let Some(name) = &u.name
        && let Some(&other) = st.idx.users_by_name.get(&name.to_lowercase())
        && other != i
    {
        return Err(Fail(ApiError::conflict(
            "409017",
            format!("A user with the name '{name}' already exists on the site."),
        )));
    }
    let user = &mut st.site.users[i];
    if let Some(v) = u.site_role {
        user.site_role = v;
    }
    if let Some(v) = u.full_name {
        user.full_name = v;
    }
    if let Some(v) = u.email {
        user.email = v;
    }
    if let Some(v) = u.auth_setting {
        user.auth_setting = Some(v);
    }
    if let Some(v) = u.name {
        user.name = v;
    }
    let user = user.clone();
    st.reindex();
    let mut x = st.user_xml(&user);
    x.id = None;
    x.last_login = None;
    let mut r = xml::TsResponse::new();
    r.user = Some(x);
    ok_xml(&r)
}

pub(crate) async fn delete_user(shared: Shr, a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    a.require_admin(&shared.0, "remove users")?;
    let map_to = q.0.iter().find(|(k, _)| k == "mapAssetsTo").map(|(_, v)| v.clone());
    let mut st = shared.0.write();
    st.user_index(&id).map_err(Fail)?;
    if let Some(to) = &map_to {
        st.user(to).map_err(|_| Fail(ApiError::not_found("404002", "User (mapAssetsTo)", to)))?;
        if to == &id {
            return Err(Fail(ApiError::bad_request("mapAssetsTo cannot name the user being removed.")));
        }
    }
    let owns = st.site.workbooks.iter().any(|w| w.owner_id == id)
        || st.site.datasources.iter().any(|d| d.owner_id == id)
        || st.site.flows.iter().any(|f| f.owner_id == id)
        || st.site.projects.iter().any(|p| p.owner_id == id);
    match map_to {
        Some(to) => {
            let now = chrono::Utc::now();
            for w in st.site.workbooks.iter_mut().filter(|w| w.owner_id == id) {
                w.owner_id = to.clone();
                w.updated_at = now;
            }
            for d in st.site.datasources.iter_mut().filter(|d| d.owner_id == id) {
                d.owner_id = to.clone();
                d.updated_at = now;
            }
            for f in st.site.flows.iter_mut().filter(|f| f.owner_id == id) {
                f.owner_id = to.clone();
                f.updated_at = now;
            }
            for p in st.site.projects.iter_mut().filter(|p| p.owner_id == id) {
                p.owner_id = to.clone();
            }
            for h in st.site.webhooks.iter_mut().filter(|h| h.owner_id == id) {
                h.owner_id = to.clone();
            }
            for al in st.site.data_alerts.iter_mut().filter(|al| al.owner_id == id) {
                al.owner_id = to.clone();
            }
        }
        None if owns => {
            return Err(Fail(ApiError::conflict(
                "409003",
                "The user owns content and cannot be removed. Transfer the content first or pass mapAssetsTo.",
            )));
        }
        None => {}
    }
    st.site.users.retain(|u| u.id != id);
    for g in &mut st.site.groups {
        g.members.retain(|m| *m != id);
    }
    st.drop_rules_where(|r| r.grantee.kind == "user" && r.grantee.id == id);
    st.site.default_permissions.retain(|r| !(r.grantee.kind == "user" && r.grantee.id == id));
    st.site.subscriptions.retain(|s| s.user_id != id);
    st.site.favorites.retain(|f| f.user_id != id);
    st.site.data_alerts.retain(|al| al.owner_id != id);
    for al in &mut st.site.data_alerts {
        al.recipients.retain(|r| *r != id);
    }
    st.site.webhooks.retain(|h| h.owner_id != id);
    st.sessions.retain(|_, s| s.user_id != id);
    st.reindex();
    no_content()
}

pub(crate) async fn user_groups(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    st.user(&id).map_err(Fail)?;
    let groups: Vec<&Group> = st.site.groups.iter().filter(|g| g.members.contains(&id)).collect();
    let (page, pagination) = select(groups, &lq, group_field).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.groups = Some(xml::Groups { group: page.into_iter().map(group_xml).collect() });
    ok_xml(&r)
}

pub(crate) async fn user_workbooks(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let owned_only = lq.flag("ownedBy");
    let st = shared.0.read();
    st.user(&id).map_err(Fail)?;
    // Without ownedBy=true Tableau lists what the user can read; the emulator approximates that
    // by ownership plus explicit grants to the user or the user's groups.
    let groups: Vec<&str> = st.site.groups.iter().filter(|g| g.members.contains(&id)).map(|g| g.id.as_str()).collect();
    let wbs: Vec<&tabflow_site::Workbook> = st
        .site
        .workbooks
        .iter()
        .filter(|w| {
            w.owner_id == id
                || (!owned_only
                    && st.rules_for(&w.id).iter().any(|r| {
                        (r.grantee.kind == "user" && r.grantee.id == id)
                            || (r.grantee.kind == "group" && groups.contains(&r.grantee.id.as_str()))
                    }))
        })
        .collect();
    let (page, pagination) = select(wbs, &lq, |w, f| super::content::workbook_field(&st, w, f)).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.workbooks = Some(xml::Workbooks { workbook: page.into_iter().map(|w| st.workbook_xml(w)).collect() });
    ok_xml(&r)
}

fn group_field<'a>(g: &'a Group, f: &str) -> Option<FieldValue<'a>> {
    Some(match f {
        "name" => FieldValue::Text(&g.name),
        "domainName" => FieldValue::Text("local"),
        "minimumSiteRole" => FieldValue::Text(g.minimum_site_role.as_deref().unwrap_or("")),
        "userCount" => FieldValue::Number(g.members.len() as i64),
        "isLocal" => FieldValue::Bool(true),
        _ => return None,
    })
}

fn group_xml(g: &Group) -> xml::Group {
    xml::Group {
        id: Some(g.id.clone()),
        name: Some(g.name.clone()),
        minimum_site_role: g.minimum_site_role.clone(),
        user_count: Some(g.members.len().to_string()),
        domain: Some(xml::IdRef { id: None, name: Some("local".into()) }),
    }
}

pub(crate) async fn list_groups(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let (page, pagination) = select(st.site.groups.iter().collect(), &lq, group_field).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.groups = Some(xml::Groups { group: page.into_iter().map(group_xml).collect() });
    ok_xml(&r)
}

pub(crate) async fn add_group(shared: Shr, a: Auth, body: String) -> Res {
    a.require_admin(&shared.0, "create groups")?;
    let req = parse_body(&body)?;
    let g = req.group.ok_or_else(|| super::missing("a <group> element"))?;
    let name = g.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| super::missing("the group's name"))?;
    let mut st = shared.0.write();
    if st.site.groups.iter().any(|x| x.name.eq_ignore_ascii_case(&name)) {
        return Err(Fail(ApiError::conflict("409009", format!("A group with the name '{name}' already exists."))));
    }
    let group = Group { id: new_luid(), name, members: vec![], minimum_site_role: g.minimum_site_role };
    st.site.groups.push(group.clone());
    st.reindex();
    let mut r = xml::TsResponse::new();
    r.group = Some(group_xml(&group));
    created_xml(&r)
}

pub(crate) async fn update_group(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_admin(&shared.0, "update groups")?;
    let req = parse_body(&body)?;
    let g = req.group.ok_or_else(|| super::missing("a <group> element"))?;
    let mut st = shared.0.write();
    let i = st.group_index(&id).map_err(Fail)?;
    if let Some(name) = &g.name
        && st.site.groups.iter().any(|x| x.id != id && x.name.eq_ignore_ascii_case(name))
    {
        return Err(Fail(ApiError::conflict("409009", format!("A group with the name '{name}' already exists."))));
    }
    let group = &mut st.site.groups[i];
    if let Some(n) = g.name {
        group.name = n;
    }
    if g.minimum_site_role.is_some() {
        group.minimum_site_role = g.minimum_site_role;
    }
    let x = group_xml(group);
    let mut r = xml::TsResponse::new();
    r.group = Some(x);
    ok_xml(&r)
}

pub(crate) async fn delete_group(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_admin(&shared.0, "delete groups")?;
    let mut st = shared.0.write();
    let i = st.group_index(&id).map_err(Fail)?;
    if st.site.groups[i].name == "All Users" {
        return Err(Fail(ApiError::forbidden("403007", "The All Users group cannot be deleted.")));
    }
    st.site.groups.remove(i);
    st.drop_rules_where(|r| r.grantee.kind == "group" && r.grantee.id == id);
    st.site.default_permissions.retain(|r| !(r.grantee.kind == "group" && r.grantee.id == id));
    st.reindex();
    no_content()
}

pub(crate) async fn group_users(shared: Shr, _a: Auth, Path((_v, _s, id)): P2, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let gi = st.group_index(&id).map_err(Fail)?;
    let members: Vec<&User> = st.site.groups[gi].members.iter().filter_map(|m| st.user(m).ok()).collect();
    let logins = last_logins(&lq, &members);
    let pairs: Vec<(usize, &User)> = members.into_iter().enumerate().collect();
    let (page, pagination) =
        select(pairs.iter().collect(), &lq, |(i, u), f| user_field(u, f, &logins[*i])).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.users = Some(xml::Users { user: page.into_iter().map(|(_, u)| st.user_xml(u)).collect() });
    ok_xml(&r)
}

pub(crate) async fn add_group_member(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    a.require_admin(&shared.0, "change group membership")?;
    let req = parse_body(&body)?;
    let mut ids: Vec<String> = req.user.and_then(|u| u.id).into_iter().collect();
    if let Some(us) = req.users {
        ids.extend(us.user.into_iter().filter_map(|u| u.id));
    }
    if ids.is_empty() {
        return Err(super::missing("a <user id> element"));
    }
    let mut st = shared.0.write();
    let gi = st.group_index(&id).map_err(Fail)?;
    for uid in &ids {
        st.user(uid).map_err(Fail)?;
        if st.site.groups[gi].members.contains(uid) {
            return Err(Fail(ApiError::conflict("409011", format!("User '{uid}' is already a member of the group."))));
        }
    }
    let mut out = Vec::new();
    for uid in ids {
        st.site.groups[gi].members.push(uid.clone());
        out.push(st.user_xml(st.user(&uid).map_err(Fail)?));
    }
    let mut r = xml::TsResponse::new();
    if out.len() == 1 {
        r.user = out.pop();
    } else {
        r.users = Some(xml::Users { user: out });
    }
    ok_xml(&r)
}

pub(crate) async fn remove_group_member(shared: Shr, a: Auth, Path((_v, _s, id, uid)): P3) -> Res {
    a.require_admin(&shared.0, "change group membership")?;
    let mut st = shared.0.write();
    let gi = st.group_index(&id).map_err(Fail)?;
    st.user(&uid).map_err(Fail)?;
    let before = st.site.groups[gi].members.len();
    st.site.groups[gi].members.retain(|m| *m != uid);
    if st.site.groups[gi].members.len() == before {
        return Err(Fail(ApiError::not_found("404002", "User in group", &uid)));
    }
    no_content()
}
