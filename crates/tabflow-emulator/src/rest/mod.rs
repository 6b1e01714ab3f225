//! Tableau REST API routes. Paths are Tableau's (`/api/{v}/sites/{s}/...`); every site-scoped
//! route requires `X-Tableau-Auth` and a site id matching the session.

mod auth;
mod content;
mod flows;
mod misc;
mod permissions;
mod principals;
mod refreshes;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use tabflow_wire::fields::Fields;
use tabflow_wire::filter::{FieldValue, Filter};
use tabflow_wire::paging::PageRequest;
use tabflow_wire::sort::{Direction, Sort};
use tabflow_wire::{ApiError, xml};

use crate::server::{Fail, Shared};
use crate::state::Session;

pub(crate) use misc::json_session;

pub(crate) type Shr = axum::extract::State<Arc<Shared>>;
pub(crate) type Res = Result<axum::response::Response, Fail>;
pub(crate) type Q = Query<Vec<(String, String)>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let p = "/api/{v}/sites/{s}";
    let mut r = Router::new()
        .route("/api/{v}/serverInfo", get(auth::server_info))
        .route("/api/{v}/auth/signin", post(auth::sign_in))
        .route("/api/{v}/auth/signout", post(auth::sign_out))
        .route("/api/{v}/auth/switchSite", post(auth::switch_site))
        .route("/api/{v}/sites", get(auth::list_sites))
        .route("/api/{v}/sites/{s}", get(auth::get_site))
        // users and groups
        .route(&format!("{p}/users"), get(principals::list_users).post(principals::add_user))
        .route(
            &format!("{p}/users/{{id}}"),
            get(principals::get_user).put(principals::update_user).delete(principals::delete_user),
        )
        .route(&format!("{p}/users/{{id}}/groups"), get(principals::user_groups))
        .route(&format!("{p}/users/{{id}}/workbooks"), get(principals::user_workbooks))
        .route(&format!("{p}/groups"), get(principals::list_groups).post(principals::add_group))
        .route(&format!("{p}/groups/{{id}}"), put(principals::update_group).delete(principals::delete_group))
        .route(&format!("{p}/groups/{{id}}/users"), get(principals::group_users).post(principals::add_group_member))
        .route(&format!("{p}/groups/{{id}}/users/{{uid}}"), delete(principals::remove_group_member))
        // projects
        .route(&format!("{p}/projects"), get(content::list_projects).post(content::add_project))
        .route(&format!("{p}/projects/{{id}}"), put(content::update_project).delete(content::delete_project))
        // workbooks
        .route(&format!("{p}/workbooks"), get(content::list_workbooks).post(content::publish_workbook))
        .route(
            &format!("{p}/workbooks/{{id}}"),
            get(content::get_workbook).put(content::update_workbook).delete(content::delete_workbook),
        )
        .route(&format!("{p}/workbooks/{{id}}/views"), get(content::workbook_views))
        .route(&format!("{p}/workbooks/{{id}}/connections"), get(content::workbook_connections))
        .route(&format!("{p}/workbooks/{{id}}/content"), get(content::download_workbook))
        .route(&format!("{p}/workbooks/{{id}}/revisions"), get(content::workbook_revisions))
        .route(&format!("{p}/workbooks/{{id}}/revisions/{{n}}/content"), get(content::download_workbook_revision))
        .route(&format!("{p}/workbooks/{{id}}/refresh"), post(misc::refresh))
        // datasources
        .route(&format!("{p}/datasources"), get(content::list_datasources).post(content::publish_datasource))
        .route(
            &format!("{p}/datasources/{{id}}"),
            get(content::get_datasource).put(content::update_datasource).delete(content::delete_datasource),
        )
        .route(&format!("{p}/datasources/{{id}}/connections"), get(content::datasource_connections))
        .route(&format!("{p}/datasources/{{id}}/connections/{{cid}}"), put(content::update_datasource_connection))
        .route(&format!("{p}/datasources/{{id}}/content"), get(content::download_datasource))
        .route(&format!("{p}/datasources/{{id}}/revisions"), get(content::datasource_revisions))
        .route(&format!("{p}/datasources/{{id}}/refresh"), post(misc::refresh))
        // flows
        .route(&format!("{p}/flows"), get(flows::list_flows))
        .route(&format!("{p}/flows/{{id}}"), get(flows::get_flow).put(flows::update_flow).delete(flows::delete_flow))
        // views
        .route(&format!("{p}/views"), get(content::list_views))
        .route(&format!("{p}/views/{{id}}"), get(content::get_view))
        .route(
            &format!("{p}/projects/{{id}}/default-permissions/{{ctype}}"),
            get(permissions::get_default_permissions).put(permissions::add_default_permissions),
        )
        .route(
            &format!("{p}/projects/{{id}}/default-permissions/{{ctype}}/{{gkind}}/{{gid}}/{{cap}}/{{mode}}"),
            delete(permissions::delete_default_permission),
        )
        // subscriptions, jobs, webhooks, favorites, uploads, alerts
        .route(&format!("{p}/subscriptions"), get(misc::list_subscriptions).post(misc::add_subscription))
        .route(
            &format!("{p}/subscriptions/{{id}}"),
            get(misc::get_subscription).put(misc::update_subscription).delete(misc::delete_subscription),
        )
        .route(&format!("{p}/jobs"), get(refreshes::list_jobs))
        // schedules and extract refresh tasks
        .route("/api/{v}/schedules", get(refreshes::list_schedules))
        .route("/api/{v}/schedules/{id}", get(refreshes::get_schedule).put(refreshes::update_schedule))
        .route(&format!("{p}/schedules/{{id}}/extracts"), get(refreshes::schedule_extracts))
        .route(&format!("{p}/schedules/{{id}}/workbooks"), put(refreshes::add_to_schedule))
        .route(&format!("{p}/schedules/{{id}}/datasources"), put(refreshes::add_to_schedule))
        .route(&format!("{p}/tasks/extractRefreshes"), get(refreshes::list_tasks).post(refreshes::create_task))
        .route(
            &format!("{p}/tasks/extractRefreshes/{{id}}"),
            get(refreshes::get_task).put(refreshes::update_task).delete(refreshes::delete_task),
        )
        .route(&format!("{p}/tasks/extractRefreshes/{{id}}/runNow"), post(refreshes::run_task))
        .route(&format!("{p}/jobs/{{id}}"), get(misc::get_job))
        .route(&format!("{p}/webhooks"), get(misc::list_webhooks).post(misc::add_webhook))
        .route(&format!("{p}/webhooks/{{id}}"), get(misc::get_webhook).delete(misc::delete_webhook))
        .route(&format!("{p}/favorites/{{uid}}"), get(misc::list_favorites).put(misc::add_favorite))
        .route(&format!("{p}/favorites/{{uid}}/{{kind}}/{{id}}"), delete(misc::delete_favorite))
        .route(&format!("{p}/fileUploads"), post(misc::start_upload))
        .route(&format!("{p}/fileUploads/{{id}}"), put(misc::append_upload))
        .route(&format!("{p}/dataAlerts"), get(misc::list_data_alerts))
        .route(&format!("{p}/dataAlerts/{{id}}"), get(misc::get_data_alert).delete(misc::delete_data_alert))
        .route(&format!("{p}/dataAlerts/{{id}}/users"), post(misc::add_data_alert_recipient))
        .route(&format!("{p}/dataAlerts/{{id}}/users/{{uid}}"), delete(misc::remove_data_alert_recipient))
        // Metadata API, VizQL Data Service, usage stats
        .route("/api/metadata/graphql", post(crate::metadata::graphql))
        .route("/api/v1/vizql-data-service/read-metadata", post(misc::vds_read_metadata))
        .route("/api/v1/vizql-data-service/query-datasource", post(misc::vds_query))
        .route("/api/v1/vizql-data-service/simple-request", get(misc::vds_simple))
        .route("/api/-/content/usage-stats/{kind}/{id}", get(misc::usage_stats))
        .route("/api/-/content/usage-stats", post(misc::usage_stats_batch));
    // Permissions and tags: one set of handlers for every resource kind; the handler reads the
    // kind from the path. Static segments keep the router free of ambiguous parameters.
    for kind in ["projects", "workbooks", "datasources", "views", "flows"] {
        r = r
            .route(
                &format!("{p}/{kind}/{{id}}/permissions"),
                get(permissions::get_permissions).put(permissions::add_permissions),
            )
            .route(
                &format!("{p}/{kind}/{{id}}/permissions/{{gkind}}/{{gid}}/{{cap}}/{{mode}}"),
                delete(permissions::delete_permission),
            );
        if kind != "projects" {
            r = r
                .route(&format!("{p}/{kind}/{{id}}/tags"), put(permissions::add_tags))
                .route(&format!("{p}/{kind}/{{id}}/tags/{{tag}}"), delete(permissions::delete_tag));
        }
    }
    r
}

/// `project`, `workbook`, `datasource`, `view` or `flow`, from a site-scoped path.
pub(crate) fn kind_of(uri: &axum::http::Uri) -> &'static str {
    let seg = uri.path().split('/').skip_while(|s| *s != "sites").nth(2).unwrap_or("");
    match seg {
        "projects" => "project",
        "workbooks" => "workbook",
        "datasources" => "datasource",
        "views" => "view",
        "flows" => "flow",
        _ => "",
    }
}

// ---------------------------------------------------------------- auth extractor

/// The session behind `X-Tableau-Auth`, checked against the path's site id.
pub(crate) struct Auth(pub Session);

impl FromRequestParts<Arc<Shared>> for Auth {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-tableau-auth")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Fail(ApiError::invalid_token()))?;
        let session = {
            let st = shared.read();
            let s = st.sessions.get(&token).cloned().ok_or_else(|| Fail(ApiError::invalid_token()))?;
            if s.expires < chrono::Utc::now() {
                return Err(Fail(ApiError::invalid_token()));
            }
            if !st.idx.users.contains_key(&s.user_id) {
                return Err(Fail(ApiError::invalid_token()));
            }
            s
        };
        // Every route with a site id in its path serves only the session's site; no query
        // parameter or header changes that.
        if let Ok(params) = RawPathParams::from_request_parts(parts, shared).await {
            for (k, v) in params.iter() {
                if k == "s" && v != session.site_id {
                    let st = shared.read();
                    if v != st.site.site.id {
                        return Err(Fail(ApiError::not_found("404000", "Site", v)));
                    }
                    return Err(Fail(ApiError::forbidden(
                        "403000",
                        "The session belongs to another site; switch site first.",
                    )));
                }
            }
        }
        Ok(Auth(session))
    }
}

impl Auth {
    /// The signed-in user's site role.
    pub(crate) fn role(&self, shared: &Shared) -> String {
        shared.read().user(&self.0.user_id).map(|u| u.site_role.clone()).unwrap_or_default()
    }

    /// Site and server administrators only (users, groups, owner changes).
    pub(crate) fn require_admin(&self, shared: &Shared, what: &str) -> Result<(), Fail> {
        if tabflow_wire::capability::is_admin_role(&self.role(shared)) {
            Ok(())
        } else {
            Err(Fail(ApiError::forbidden("403004", format!("Only administrators can {what}."))))
        }
    }

    /// The signed-in user themselves, or an administrator (favorites, subscriptions and data
    /// alerts belong to one user: Tableau lets others see or change them only as admins).
    pub(crate) fn require_self_or_admin(&self, shared: &Shared, user_id: &str, what: &str) -> Result<(), Fail> {
        if self.0.user_id == user_id || self.is_admin(shared) {
            Ok(())
        } else {
            Err(Fail(ApiError::forbidden(
                "403004",
                format!("Only the user themselves or an administrator can {what}."),
            )))
        }
    }

    pub(crate) fn is_admin(&self, shared: &Shared) -> bool {
        tabflow_wire::capability::is_admin_role(&self.role(shared))
    }

    /// Viewers and unlicensed users cannot change content.
    pub(crate) fn require_publisher(&self, shared: &Shared) -> Result<(), Fail> {
        if tabflow_wire::capability::can_publish(&self.role(shared)) {
            Ok(())
        } else {
            Err(Fail(ApiError::forbidden("403004", "Your site role does not allow changing content.")))
        }
    }
}

// ---------------------------------------------------------------- list queries

/// `pageSize`, `pageNumber`, `filter`, `sort`, `fields` and any other parameters.
pub(crate) struct ListQuery {
    pub page: PageRequest,
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    pub fields: Fields,
    pub other: HashMap<String, String>,
}

pub(crate) fn list_query(q: &[(String, String)]) -> Result<ListQuery, ApiError> {
    let get = |k: &str| q.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
    let page = PageRequest::parse(get("pageSize"), get("pageNumber"))?;
    let filter = match get("filter") {
        Some(f) => Some(Filter::parse(f).map_err(|e| ApiError::invalid_filter(e.to_string()))?),
        None => None,
    };
    let sort = match get("sort") {
        Some(s) => Some(Sort::parse(s).map_err(|e| ApiError::invalid_filter(e.to_string()))?),
        None => None,
    };
    let fields = get("fields").map(Fields::parse).unwrap_or_default();
    let other = q.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(ListQuery { page, filter, sort, fields, other })
}

impl ListQuery {
    pub fn flag(&self, name: &str) -> bool {
        self.other.iter().any(|(k, v)| k.eq_ignore_ascii_case(name) && v.eq_ignore_ascii_case("true"))
    }
}

/// Filters, sorts and pages `items`; `value(item, field)` answers `None` for fields the
/// endpoint does not support (Tableau's 400 for an unsupported filter or sort field).
pub(crate) fn select<'a, T>(
    items: Vec<&'a T>,
    lq: &ListQuery,
    value: impl Fn(&'a T, &str) -> Option<FieldValue<'a>>,
) -> Result<(Vec<&'a T>, xml::Pagination), ApiError> {
    let positions = positions(&items, lq, value)?;
    page_of(&items, &positions, lq)
}

/// The filtered and sorted positions of a site list whose items are in the same order
/// whenever the state is the same, kept per query (without its paging) and state generation:
/// `compute` (which builds the list's rows and filters them) runs on the first page only, so
/// reading a list page by page costs the site's size once, not once per page
/// (`views?filter=projectName:in:[…]` over 250 000 views, 35 pages, on a 100k site; the
/// whole views list, 250 pages). `len` is the list's length before filtering.
pub(crate) fn cached_positions(
    shared: &crate::server::Shared,
    route: &str,
    q: &[(String, String)],
    len: usize,
    compute: impl FnOnce() -> Result<Vec<u32>, ApiError>,
) -> Result<Arc<Vec<u32>>, ApiError> {
    // The caller holds the read lock: the generation is that of the state it reads.
    let generation = shared.generation();
    let mut key = format!("{route}#{len}");
    for (k, v) in q {
        if !k.eq_ignore_ascii_case("pageNumber") && !k.eq_ignore_ascii_case("pageSize") {
            key.push('&');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
    }
    if let Some(p) = shared.cached_list(&key, generation) {
        return Ok(p);
    }
    let p = Arc::new(compute()?);
    shared.keep_list(key, generation, p.clone());
    Ok(p)
}

/// The positions of the page `lq` asks for, and its pagination.
pub(crate) fn window<'p>(positions: &'p [u32], lq: &ListQuery) -> Result<(&'p [u32], xml::Pagination), ApiError> {
    let total = positions.len();
    let range = lq.page.window(total)?;
    Ok((&positions[range], lq.page.pagination(total)))
}

/// The page `lq` asks for of `items` at `positions`.
fn page_of<'a, T>(
    items: &[&'a T],
    positions: &[u32],
    lq: &ListQuery,
) -> Result<(Vec<&'a T>, xml::Pagination), ApiError> {
    let total = positions.len();
    let range = lq.page.window(total)?;
    let page: Vec<&T> = positions[range].iter().map(|&i| items[i as usize]).collect();
    Ok((page, lq.page.pagination(total)))
}

/// The positions in `items` of the items `lq` filters for, in its sort order.
pub(crate) fn positions<'a, T>(
    items: &[&'a T],
    lq: &ListQuery,
    value: impl Fn(&'a T, &str) -> Option<FieldValue<'a>>,
) -> Result<Vec<u32>, ApiError> {
    if let (Some(f), Some(first)) = (&lq.filter, items.first()) {
        for c in &f.conditions {
            if value(*first, &c.field).is_none() {
                return Err(ApiError::invalid_filter(format!(
                    "Filter field '{}' is not supported for this resource.",
                    c.field
                )));
            }
        }
    }
    let mut pos: Vec<u32> = (0..items.len() as u32).collect();
    if let Some(f) = &lq.filter {
        let tests: Vec<Test<'_>> = f.conditions.iter().map(Test::of).collect();
        pos.retain(|&i| {
            let it = items[i as usize];
            tests.iter().all(|t| value(it, &t.c.field).is_some_and(|v| t.matches(v)))
        });
    }
    if let (Some(s), Some(&first)) = (&lq.sort, pos.first()) {
        for (k, _) in &s.keys {
            if value(items[first as usize], k).is_none() {
                return Err(ApiError::invalid_filter(format!("Sort field '{k}' is not supported for this resource.")));
            }
        }
        pos.sort_by(|&a, &b| {
            let (a, b) = (items[a as usize], items[b as usize]);
            for (k, d) in &s.keys {
                let o = compare(value(a, k), value(b, k));
                let o = if *d == Direction::Desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    Ok(pos)
}

/// One filter condition, prepared once per request: an `in` list of plain names (no `*`) is a
/// hash set, so a filter naming a whole project subtree costs one lookup per item instead of
/// one comparison per name (a 100k-workbook site lists 250 000 views through it, page by page).
/// What matches is still [`tabflow_wire::filter::Condition::matches`]'s definition.
struct Test<'a> {
    c: &'a tabflow_wire::filter::Condition,
    plain_in: Option<std::collections::HashSet<&'a str>>,
}

impl<'a> Test<'a> {
    fn of(c: &'a tabflow_wire::filter::Condition) -> Self {
        let plain =
            c.op == tabflow_wire::filter::Op::In && c.values.len() > 4 && c.values.iter().all(|v| !v.contains('*'));
        Test { c, plain_in: plain.then(|| c.values.iter().map(String::as_str).collect()) }
    }

    fn matches(&self, v: FieldValue<'_>) -> bool {
        match (&self.plain_in, v) {
            (Some(set), FieldValue::Text(a)) => set.contains(a),
            _ => self.c.matches(v),
        }
    }
}

fn compare(a: Option<FieldValue<'_>>, b: Option<FieldValue<'_>>) -> Ordering {
    use FieldValue::*;
    match (a, b) {
        (Some(Text(a)), Some(Text(b))) => a.to_lowercase().cmp(&b.to_lowercase()).then(a.cmp(b)),
        (Some(Date(a)), Some(Date(b))) => a.cmp(b),
        (Some(Number(a)), Some(Number(b))) => a.cmp(&b),
        (Some(Bool(a)), Some(Bool(b))) => a.cmp(&b),
        (Some(List(a)), Some(List(b))) => a.len().cmp(&b.len()),
        (Some(Missing), Some(Missing)) => Ordering::Equal,
        (Some(Missing), _) => Ordering::Less,
        (_, Some(Missing)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

pub(crate) fn ok_xml(doc: &xml::TsResponse) -> Res {
    Ok(crate::server::xml_response(axum::http::StatusCode::OK, doc))
}

pub(crate) fn created_xml(doc: &xml::TsResponse) -> Res {
    Ok(crate::server::xml_response(axum::http::StatusCode::CREATED, doc))
}

pub(crate) fn no_content() -> Res {
    Ok(axum::response::IntoResponse::into_response(axum::http::StatusCode::NO_CONTENT))
}

pub(crate) fn parse_body(body: &str) -> Result<xml::TsRequest, Fail> {
    xml::parse_request(body).map_err(Fail)
}

pub(crate) fn missing(what: &str) -> Fail {
    Fail(ApiError::bad_request(format!("The request body is missing {what}.")))
}
