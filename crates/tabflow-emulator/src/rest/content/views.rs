//! Views: list and get.

use super::*;

pub(super) struct ViewRow {
    pub(super) wi: usize,
    pub(super) vi: usize,
    pub(super) created: String,
    pub(super) updated: String,
}

pub(super) fn view_field<'a>(st: &'a State, r: &'a ViewRow, f: &str) -> Option<FieldValue<'a>> {
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
    let workbooks = &st.site.workbooks;
    // Where each workbook's views start in the list of all views (in workbook order).
    let mut starts = Vec::with_capacity(workbooks.len());
    let mut total = 0u32;
    for w in workbooks {
        starts.push(total);
        total += w.views.len() as u32;
    }
    let found = cached_positions(&shared.0, "views", &q.0, total as usize, || {
        let mut rows = Vec::with_capacity(total as usize);
        for (wi, w) in workbooks.iter().enumerate() {
            for vi in 0..w.views.len() {
                let (created, updated) =
                    if needs_dates { (ts(w.created_at), ts(w.updated_at)) } else { Default::default() };
                rows.push(ViewRow { wi, vi, created, updated });
            }
        }
        positions(&rows.iter().collect::<Vec<_>>(), &lq, |r, f| view_field(&st, r, f))
    })
    .map_err(Fail)?;
    let (page, pagination) = window(&found, &lq).map_err(Fail)?;
    let at = |p: u32| {
        // The last workbook whose views start at or before p (workbooks without views share
        // their start with the next one).
        let wi = starts.partition_point(|&s| s <= p) - 1;
        (wi, (p - starts[wi]) as usize)
    };
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.views = Some(xml::Views {
        view: page
            .iter()
            .map(|&p| {
                let (wi, vi) = at(p);
                st.view_xml(wi, vi, usage)
            })
            .collect(),
    });
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
