//! Published datasources: list, get, update, delete, connections (read and update),
//! download, revisions and publish.

use super::*;

pub(super) struct DsRow<'a> {
    pub(super) d: &'a Datasource,
    pub(super) created: String,
    pub(super) updated: String,
}

pub(super) fn datasource_field<'a>(st: &'a State, r: &'a DsRow<'a>, f: &str) -> Option<FieldValue<'a>> {
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

pub(super) fn ds_connection_xml(d: &Datasource) -> xml::Connection {
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
    consume_upload(&mut st, &q.0);
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
