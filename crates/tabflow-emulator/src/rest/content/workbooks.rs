//! Workbooks: list, get, update, delete, their views and connections, download, revisions
//! and publish (multipart, overwrite).

use super::*;

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
pub(super) struct WbRow<'a> {
    pub(super) w: &'a Workbook,
    pub(super) created: String,
    pub(super) updated: String,
}

pub(super) fn wb_row_field<'a>(st: &'a State, r: &'a WbRow<'a>, f: &str) -> Option<FieldValue<'a>> {
    match f {
        "createdAt" => Some(FieldValue::Date(&r.created)),
        "updatedAt" => Some(FieldValue::Date(&r.updated)),
        _ => workbook_field(st, r.w, f),
    }
}

pub(super) fn apply_fields_workbook(x: &mut xml::Workbook, fields: &tabflow_wire::fields::Fields) {
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
    let workbooks = &st.site.workbooks;
    let found = cached_positions(&shared.0, "workbooks", &q.0, workbooks.len(), || {
        let rows: Vec<WbRow<'_>> = workbooks
            .iter()
            .map(|w| WbRow {
                w,
                created: if needs_dates { ts(w.created_at) } else { String::new() },
                updated: if needs_dates { ts(w.updated_at) } else { String::new() },
            })
            .collect();
        positions(&rows.iter().collect::<Vec<_>>(), &lq, |r, f| wb_row_field(&st, r, f))
    })
    .map_err(Fail)?;
    let (page, pagination) = window(&found, &lq).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.workbooks = Some(xml::Workbooks {
        workbook: page
            .iter()
            .map(|&i| {
                let mut x = st.workbook_xml(&workbooks[i as usize]);
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

pub(crate) async fn download_workbook(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let w = st.workbook(&id).map_err(Fail)?;
    if let Some(&size) = shared.0.options.large_files.get(&id) {
        return Ok(super::publish::large_file_response(&format!("{}.twbx", w.name), size));
    }
    if let Some((name, data)) = st.revisions.get(&id).and_then(|r| r.last()).and_then(|r| r.file.clone()) {
        return Ok(file_response("tableau_workbook", &name, data));
    }
    let twb = crate::content::workbook_twb(&st.site, w, &st.server_host);
    Ok(file_response("tableau_workbook", &format!("{}.twb", w.name), twb.into_bytes()))
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

pub(crate) async fn publish_workbook(shared: Shr, a: Auth, headers: HeaderMap, q: Q, body: axum::body::Bytes) -> Res {
    a.require_publisher(&shared.0)?;
    let mut st = shared.0.write();
    let p = read_publish(&st, &headers, &body, &q.0, "tableau_workbook", "workbook")?;
    consume_upload(&mut st, &q.0);
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
