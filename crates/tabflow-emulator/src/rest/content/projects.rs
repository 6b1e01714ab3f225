//! Projects: list, create, update (rename, move, content permissions) and delete with
//! everything in them.

use tabflow_site::Index;

use super::*;

pub(super) fn project_field<'a>(st: &'a State, p: &'a Project, f: &str) -> Option<FieldValue<'a>> {
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

pub(super) fn check_content_permissions(v: &str) -> Result<(), Fail> {
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
        if Index::new(&st.site).is_within(pid, &id) {
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
    let doomed: Vec<String> = {
        let index = Index::new(&st.site);
        st.site.projects.iter().filter(|p| index.is_within(&p.id, &id)).map(|p| p.id.clone()).collect()
    };
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
