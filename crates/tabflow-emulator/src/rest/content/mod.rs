//! Projects, workbooks, datasources and views: list, get, update, delete, connections,
//! download, publish (multipart, overwrite) and revisions.
//!
//! One module per resource (`projects`, `workbooks`, `datasources`, `views`) and `publish`
//! for what workbooks and datasources share; the handlers are re-exported here for the router.

mod datasources;
mod projects;
mod publish;
mod views;
mod workbooks;

use axum::extract::{OriginalUri, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use tabflow_site::{Datasource, Project, Workbook};
use tabflow_wire::filter::FieldValue;
use tabflow_wire::{ApiError, xml};

use super::{
    Auth, Q, Res, Shr, cached_positions, created_xml, flows, list_query, missing, no_content, ok_xml, parse_body,
    positions, select, window,
};
use crate::server::Fail;
use crate::state::{Revision, State, new_luid, slug, ts};

pub(crate) use datasources::*;
pub(crate) use projects::*;
use publish::*;
pub(crate) use views::*;
pub(crate) use workbooks::*;

pub(super) type P2 = Path<(String, String, String)>;
pub(super) type P3 = Path<(String, String, String, String)>;

/// Removes workbooks and datasources and everything that points at them.
pub(super) fn remove_content(st: &mut State, wbs: &[String], dss: &[String]) {
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
    // Tableau deletes a content's extract refresh tasks with it; its job history stays.
    st.site.extract_refreshes.retain(|t| !gone(&t.target.id));
    st.site.favorites.retain(|f| !gone(&f.content.id));
    st.site.data_alerts.retain(|a| !views.contains(&a.view_id));
    for id in wbs.iter().chain(dss) {
        st.revisions.remove(id);
    }
}
