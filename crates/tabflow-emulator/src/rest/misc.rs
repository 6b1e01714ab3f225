//! Subscriptions, jobs, webhooks, favorites, file uploads, data alerts, refreshes, and the
//! JSON APIs: Metadata API (GraphQL), VizQL Data Service and usage statistics.

use axum::Json;
use axum::extract::{OriginalUri, Path};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use tabflow_site::{Favorite, ResourceRef, Subscription, Webhook};
use tabflow_wire::{ApiError, xml};

use super::{Auth, Q, Res, Shr, created_xml, list_query, no_content, ok_xml, parse_body, select};
use crate::server::{Fail, Shared};
use crate::state::{Job, State, new_luid, ts};

type P2 = Path<(String, String, String)>;
type P3 = Path<(String, String, String, String)>;

// ---------------------------------------------------------------- subscriptions

fn subscription_xml(st: &State, s: &Subscription) -> xml::Subscription {
    let kind = match s.content.kind.as_str() {
        "view" => "View",
        "workbook" => "Workbook",
        other => other,
    };
    xml::Subscription {
        id: Some(s.id.clone()),
        subject: Some(s.subject.clone()),
        attach_image: Some("true".into()),
        attach_pdf: Some("false".into()),
        suspended: Some(s.suspended.to_string()),
        message: None,
        content: Some(xml::SubscriptionContent {
            id: s.content.id.clone(),
            kind: kind.into(),
            send_if_view_empty: Some("true".into()),
        }),
        schedule: Some(xml::IdRef {
            id: Some(if s.schedule.is_empty() {
                "weekly".into()
            } else {
                crate::state::slug(&s.schedule).to_lowercase()
            }),
            name: Some(if s.schedule.is_empty() { "Weekly".into() } else { s.schedule.clone() }),
        }),
        user: Some(xml::IdRef::named(s.user_id.clone(), st.user_name(&s.user_id))),
    }
}

pub(crate) async fn list_subscriptions(shared: Shr, a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    // Administrators see every subscription; anyone else only their own.
    let all = a.is_admin(&shared.0);
    let st = shared.0.read();
    let mine: Vec<&Subscription> = st.site.subscriptions.iter().filter(|s| all || s.user_id == a.0.user_id).collect();
    let (page, pagination) = select(mine, &lq, |s, f| match f {
        "subject" => Some(tabflow_wire::filter::FieldValue::Text(&s.subject)),
        "userId" => Some(tabflow_wire::filter::FieldValue::Text(&s.user_id)),
        _ => None,
    })
    .map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.subscriptions =
        Some(xml::Subscriptions { subscription: page.into_iter().map(|s| subscription_xml(&st, s)).collect() });
    ok_xml(&r)
}

pub(crate) async fn get_subscription(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    let admin = a.is_admin(&shared.0);
    let st = shared.0.read();
    // Another user's subscription is not found for a non-admin (its id says nothing).
    let s = st
        .site
        .subscriptions
        .iter()
        .find(|s| s.id == id && (admin || s.user_id == a.0.user_id))
        .ok_or_else(|| Fail(ApiError::not_found("404025", "Subscription", &id)))?;
    let mut r = xml::TsResponse::new();
    r.subscription = Some(subscription_xml(&st, s));
    ok_xml(&r)
}

fn content_ref(st: &State, c: &xml::SubscriptionContent) -> Result<ResourceRef, Fail> {
    let kind = c.kind.to_ascii_lowercase();
    match kind.as_str() {
        "view" => {
            st.view_index(&c.id).map_err(Fail)?;
        }
        "workbook" => {
            st.workbook(&c.id).map_err(Fail)?;
        }
        _ => {
            return Err(Fail(ApiError::bad_request(format!(
                "Subscription content type '{}' must be View or Workbook.",
                c.kind
            ))));
        }
    }
    Ok(ResourceRef { kind, id: c.id.clone() })
}

pub(crate) async fn add_subscription(shared: Shr, a: Auth, body: String) -> Res {
    let req = parse_body(&body)?;
    let s = req.subscription.ok_or_else(|| super::missing("a <subscription> element"))?;
    let user_id = s.user.and_then(|u| u.id).ok_or_else(|| super::missing("a <user id> element"))?;
    a.require_self_or_admin(&shared.0, &user_id, "subscribe another user")?;
    let mut st = shared.0.write();
    let content = content_ref(&st, s.content.as_ref().ok_or_else(|| super::missing("a <content> element"))?)?;
    st.user(&user_id).map_err(Fail)?;
    let sub = Subscription {
        id: new_luid(),
        user_id,
        content,
        subject: s.subject.unwrap_or_default(),
        schedule: s.schedule.and_then(|x| x.name.or(x.id)).unwrap_or_default(),
        suspended: false,
    };
    st.site.subscriptions.push(sub.clone());
    let mut r = xml::TsResponse::new();
    r.subscription = Some(subscription_xml(&st, &sub));
    created_xml(&r)
}

pub(crate) async fn update_subscription(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    let req = parse_body(&body)?;
    let s = req.subscription.ok_or_else(|| super::missing("a <subscription> element"))?;
    let admin = a.is_admin(&shared.0);
    if let Some(u) = s.user.as_ref().and_then(|u| u.id.as_deref()) {
        a.require_self_or_admin(&shared.0, u, "give a subscription to another user")?;
    }
    let mut st = shared.0.write();
    let i = st
        .site
        .subscriptions
        .iter()
        .position(|s| s.id == id && (admin || s.user_id == a.0.user_id))
        .ok_or_else(|| Fail(ApiError::not_found("404025", "Subscription", &id)))?;
    // An update's <content> may carry only sendIfViewEmpty (tableauserverclient sends it so):
    // the content changes only when an id is given.
    if let Some(c) = s.content.as_ref().filter(|c| !c.id.is_empty()) {
        let c = content_ref(&st, c)?;
        st.site.subscriptions[i].content = c;
    }
    if let Some(u) = s.user.and_then(|u| u.id) {
        st.user(&u).map_err(Fail)?;
        st.site.subscriptions[i].user_id = u;
    }
    if let Some(subj) = s.subject {
        st.site.subscriptions[i].subject = subj;
    }
    if let Some(sched) = s.schedule.and_then(|x| x.name.or(x.id)) {
        st.site.subscriptions[i].schedule = sched;
    }
    // `suspended="true|false"` suspends or resumes it (REST 3.9+).
    match s.suspended.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => {}
        Some("true") => st.site.subscriptions[i].suspended = true,
        Some("false") => st.site.subscriptions[i].suspended = false,
        Some(other) => {
            return Err(Fail(ApiError::bad_request(format!(
                "The subscription's suspended value '{other}' must be true or false."
            ))));
        }
    }
    let sub = st.site.subscriptions[i].clone();
    let mut r = xml::TsResponse::new();
    r.subscription = Some(subscription_xml(&st, &sub));
    ok_xml(&r)
}

pub(crate) async fn delete_subscription(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    let admin = a.is_admin(&shared.0);
    let mut st = shared.0.write();
    let before = st.site.subscriptions.len();
    st.site.subscriptions.retain(|s| !(s.id == id && (admin || s.user_id == a.0.user_id)));
    if st.site.subscriptions.len() == before {
        return Err(Fail(ApiError::not_found("404025", "Subscription", &id)));
    }
    no_content()
}

// ---------------------------------------------------------------- jobs

fn job_xml(j: &Job) -> xml::Job {
    xml::Job {
        id: j.id.clone(),
        mode: Some("Asynchronous".into()),
        kind: Some(j.kind.clone()),
        progress: Some("100".into()),
        created_at: Some(ts(j.created_at)),
        started_at: Some(ts(j.created_at)),
        completed_at: Some(ts(j.created_at)),
        finish_code: Some(j.finish_code.to_string()),
        extract_refresh_job: None,
    }
}

pub(crate) async fn get_job(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let job = match super::refreshes::history_job_xml(&st, &id) {
        Some(j) => j,
        None => job_xml(st.jobs.get(&id).ok_or_else(|| Fail(ApiError::not_found("404003", "Job", &id)))?),
    };
    let mut r = xml::TsResponse::new();
    r.job = Some(job);
    ok_xml(&r)
}

pub(crate) async fn refresh(shared: Shr, a: Auth, uri: OriginalUri, Path((_v, _s, id)): P2) -> Res {
    a.require_publisher(&shared.0)?;
    let kind = super::kind_of(&uri);
    let mut st = shared.0.write();
    st.resource_exists(kind, &id).map_err(Fail)?;
    let job = Job { id: new_luid(), kind: "RefreshExtracts".into(), created_at: Utc::now(), finish_code: 0 };
    st.jobs.insert(job.id.clone(), job.clone());
    let mut r = xml::TsResponse::new();
    r.job = Some(job_xml(&job));
    Ok(crate::server::xml_response(StatusCode::ACCEPTED, &r))
}

// ---------------------------------------------------------------- webhooks

fn webhook_xml(st: &State, h: &Webhook) -> xml::Webhook {
    xml::Webhook {
        id: Some(h.id.clone()),
        name: Some(h.name.clone()),
        is_enabled: Some(xml::bool_str(h.enabled)),
        event: Some(h.event.clone()),
        source: xml::WebhookEvent::from_name(&h.event).map(|e| xml::WebhookSource { events: vec![e] }),
        destination: Some(xml::WebhookDestination {
            http: xml::WebhookDestinationHttp { method: "POST".into(), url: h.url.clone() },
        }),
        owner: Some(xml::IdRef::named(h.owner_id.clone(), st.user_name(&h.owner_id))),
    }
}

pub(crate) async fn list_webhooks(shared: Shr, _a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    let st = shared.0.read();
    let (page, pagination) = select(st.site.webhooks.iter().collect(), &lq, |_, _| None).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.webhooks = Some(xml::Webhooks { webhook: page.into_iter().map(|h| webhook_xml(&st, h)).collect() });
    ok_xml(&r)
}

pub(crate) async fn get_webhook(shared: Shr, _a: Auth, Path((_v, _s, id)): P2) -> Res {
    let st = shared.0.read();
    let h = st
        .site
        .webhooks
        .iter()
        .find(|h| h.id == id)
        .ok_or_else(|| Fail(ApiError::not_found("404036", "Webhook", &id)))?;
    let mut r = xml::TsResponse::new();
    r.webhook = Some(webhook_xml(&st, h));
    ok_xml(&r)
}

pub(crate) async fn add_webhook(shared: Shr, a: Auth, body: String) -> Res {
    a.require_admin(&shared.0, "create webhooks")?;
    let req = parse_body(&body)?;
    let h = req.webhook.ok_or_else(|| super::missing("a <webhook> element"))?;
    let name = h.name.filter(|n| !n.is_empty()).ok_or_else(|| super::missing("the webhook's name"))?;
    let event = h
        .source
        .and_then(|s| s.events.into_iter().next())
        .map(|e| e.name().to_string())
        .or(h.event)
        .ok_or_else(|| super::missing("a <webhook-source> event element"))?;
    let url = h
        .destination
        .map(|d| d.http.url)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| super::missing("a <webhook-destination-http url> element"))?;
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(Fail(ApiError::bad_request(format!("The webhook destination '{url}' is not an http(s) URL."))));
    }
    let mut st = shared.0.write();
    let hook = Webhook { id: new_luid(), name, event, url, owner_id: a.0.user_id.clone(), enabled: true };
    st.site.webhooks.push(hook.clone());
    let mut r = xml::TsResponse::new();
    r.webhook = Some(webhook_xml(&st, &hook));
    created_xml(&r)
}

pub(crate) async fn delete_webhook(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    a.require_admin(&shared.0, "delete webhooks")?;
    let mut st = shared.0.write();
    let before = st.site.webhooks.len();
    st.site.webhooks.retain(|h| h.id != id);
    if st.site.webhooks.len() == before {
        return Err(Fail(ApiError::not_found("404036", "Webhook", &id)));
    }
    no_content()
}

// ---------------------------------------------------------------- favorites

fn favorite_xml(st: &State, f: &Favorite) -> xml::Favorite {
    let name = match f.content.kind.as_str() {
        "workbook" => st.workbook(&f.content.id).map(|w| w.name.clone()).ok(),
        "datasource" => st.datasource(&f.content.id).map(|d| d.name.clone()).ok(),
        "project" => st.project(&f.content.id).map(|p| p.name.clone()).ok(),
        "view" => st.view_index(&f.content.id).map(|(wi, vi)| st.site.workbooks[wi].views[vi].name.clone()).ok(),
        _ => None,
    };
    let r = Some(xml::IdRef { id: Some(f.content.id.clone()), name });
    let mut x = xml::Favorite { label: f.label.clone(), ..xml::Favorite::default() };
    match f.content.kind.as_str() {
        "workbook" => x.workbook = r,
        "datasource" => x.datasource = r,
        "project" => x.project = r,
        _ => x.view = r,
    }
    x
}

pub(crate) async fn list_favorites(shared: Shr, a: Auth, Path((_v, _s, uid)): P2) -> Res {
    a.require_self_or_admin(&shared.0, &uid, "read another user's favorites")?;
    let st = shared.0.read();
    st.user(&uid).map_err(Fail)?;
    let favs: Vec<xml::Favorite> =
        st.site.favorites.iter().filter(|f| f.user_id == uid).map(|f| favorite_xml(&st, f)).collect();
    let mut r = xml::TsResponse::new();
    r.pagination = Some(
        tabflow_wire::paging::PageRequest { page_number: 1, page_size: favs.len().max(1) as u32 }
            .pagination(favs.len()),
    );
    r.favorites = Some(xml::Favorites { favorite: favs });
    ok_xml(&r)
}

pub(crate) async fn add_favorite(shared: Shr, a: Auth, Path((_v, _s, uid)): P2, body: String) -> Res {
    a.require_self_or_admin(&shared.0, &uid, "change another user's favorites")?;
    let req = parse_body(&body)?;
    let f = req.favorite.ok_or_else(|| super::missing("a <favorite> element"))?;
    let (kind, id) = f
        .content()
        .map(|(k, i)| (k.to_string(), i.to_string()))
        .ok_or_else(|| super::missing("the favorite's content element"))?;
    let mut st = shared.0.write();
    st.user(&uid).map_err(Fail)?;
    st.resource_exists(&kind, &id).map_err(Fail)?;
    if !st.site.favorites.iter().any(|x| x.user_id == uid && x.content.id == id) {
        st.site.favorites.push(Favorite {
            user_id: uid.clone(),
            label: f.label.clone(),
            content: ResourceRef { kind, id },
        });
    }
    let favs: Vec<xml::Favorite> =
        st.site.favorites.iter().filter(|f| f.user_id == uid).map(|f| favorite_xml(&st, f)).collect();
    let mut r = xml::TsResponse::new();
    r.favorites = Some(xml::Favorites { favorite: favs });
    ok_xml(&r)
}

pub(crate) async fn delete_favorite(
    shared: Shr,
    a: Auth,
    Path((_v, _s, uid, kind, id)): Path<(String, String, String, String, String)>,
) -> Res {
    a.require_self_or_admin(&shared.0, &uid, "change another user's favorites")?;
    let kind = kind.trim_end_matches('s').to_string();
    let mut st = shared.0.write();
    st.user(&uid).map_err(Fail)?;
    let before = st.site.favorites.len();
    st.site.favorites.retain(|f| !(f.user_id == uid && f.content.id == id && f.content.kind == kind));
    if st.site.favorites.len() == before {
        return Err(Fail(ApiError::not_found("404000", "Favorite", &id)));
    }
    no_content()
}

// ---------------------------------------------------------------- uploads and alerts

pub(crate) async fn start_upload(shared: Shr, a: Auth) -> Res {
    a.require_publisher(&shared.0)?;
    let id = format!("{}:{}", uuid::Uuid::new_v4().simple(), 0);
    {
        let mut st = shared.0.write();
        let max = shared.0.options.upload_limits.sessions;
        if st.uploads.len() >= max {
            return Err(Fail(ApiError::new(
                "429000",
                "Too Many Upload Sessions",
                format!("{max} upload sessions are open; publish them (which closes them) before starting more."),
            )));
        }
        st.uploads.insert(id.clone(), Vec::new());
    }
    let mut r = xml::TsResponse::new();
    r.file_upload = Some(xml::FileUpload { upload_session_id: id, file_size: "0".into() });
    created_xml(&r)
}

pub(crate) async fn append_upload(
    shared: Shr,
    _a: Auth,
    Path((_v, _s, id)): P2,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Res {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let parts = crate::content::parse_multipart(ct, &body).map_err(|e| Fail(ApiError::bad_request(e.to_string())))?;
    let chunk = parts
        .into_iter()
        .find(|p| p.name == "tableau_file")
        .ok_or_else(|| Fail(ApiError::bad_request("The multipart body has no tableau_file part.")))?;
    let limits = shared.0.options.upload_limits;
    let mut st = shared.0.write();
    let total: usize = st.uploads.values().map(Vec::len).sum();
    let buf = st.uploads.get_mut(&id).ok_or_else(|| Fail(ApiError::not_found("404008", "Upload session", &id)))?;
    let too_large = |detail: String| Fail(ApiError::new("413000", "Payload Too Large", detail));
    if buf.len() + chunk.data.len() > limits.bytes_per_session {
        return Err(too_large(format!(
            "The upload session would exceed {} bytes, the most this emulator keeps for one file.",
            limits.bytes_per_session
        )));
    }
    if total + chunk.data.len() > limits.bytes_total {
        return Err(too_large(format!(
            "The open upload sessions would exceed {} bytes together; publish the finished ones first.",
            limits.bytes_total
        )));
    }
    buf.extend_from_slice(&chunk.data);
    let size = buf.len();
    let mut r = xml::TsResponse::new();
    r.file_upload = Some(xml::FileUpload { upload_session_id: id, file_size: (size / (1024 * 1024)).to_string() });
    ok_xml(&r)
}

pub(crate) async fn list_data_alerts(shared: Shr, a: Auth, q: Q) -> Res {
    let lq = list_query(&q.0).map_err(Fail)?;
    // Administrators see every alert; anyone else the ones they own or receive.
    let all = a.is_admin(&shared.0);
    let me = &a.0.user_id;
    let st = shared.0.read();
    let mine = st.site.data_alerts.iter().filter(|x| all || &x.owner_id == me || x.recipients.contains(me)).collect();
    let (page, pagination) = select(mine, &lq, |_, _| None).map_err(Fail)?;
    let mut r = xml::TsResponse::new();
    r.pagination = Some(pagination);
    r.data_alerts = Some(xml::DataAlerts {
        data_alert: page
            .into_iter()
            .map(|a| xml::DataAlert {
                id: a.id.clone(),
                subject: Some(a.subject.clone()),
                owner: Some(xml::IdRef::named(a.owner_id.clone(), st.user_name(&a.owner_id))),
                view: Some(alert_view(&st, &a.view_id)),
                recipients: None,
            })
            .collect(),
    });
    ok_xml(&r)
}

/// A data alert's view with its workbook and project, as Tableau nests them.
fn alert_view(st: &State, view_id: &str) -> xml::AlertView {
    let Ok((wi, vi)) = st.view_index(view_id) else {
        return xml::AlertView { id: Some(view_id.to_string()), ..xml::AlertView::default() };
    };
    let w = &st.site.workbooks[wi];
    xml::AlertView {
        id: Some(view_id.to_string()),
        name: Some(w.views[vi].name.clone()),
        workbook: Some(xml::IdRef::named(w.id.clone(), w.name.clone())),
        project: Some(xml::IdRef::named(w.project_id.clone(), st.project_name(&w.project_id).to_string())),
    }
}

/// `GET /dataAlerts/{id}`: the alert with its recipients, for an administrator, its owner or
/// a recipient.
pub(crate) async fn get_data_alert(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    let admin = a.is_admin(&shared.0);
    let me = &a.0.user_id;
    let st = shared.0.read();
    let alert = st
        .site
        .data_alerts
        .iter()
        .find(|x| x.id == id && (admin || &x.owner_id == me || x.recipients.contains(me)))
        .ok_or_else(|| Fail(ApiError::not_found("404000", "Data alert", &id)))?;
    let mut r = xml::TsResponse::new();
    r.data_alert = Some(xml::DataAlert {
        id: alert.id.clone(),
        subject: Some(alert.subject.clone()),
        owner: Some(xml::IdRef::named(alert.owner_id.clone(), st.user_name(&alert.owner_id))),
        view: Some(alert_view(&st, &alert.view_id)),
        recipients: Some(xml::Recipients {
            recipient: alert.recipients.iter().map(|u| xml::IdRef::named(u.clone(), st.user_name(u))).collect(),
        }),
    });
    ok_xml(&r)
}

pub(crate) async fn delete_data_alert(shared: Shr, a: Auth, Path((_v, _s, id)): P2) -> Res {
    let admin = a.is_admin(&shared.0);
    let mut st = shared.0.write();
    let before = st.site.data_alerts.len();
    st.site.data_alerts.retain(|x| !(x.id == id && (admin || x.owner_id == a.0.user_id)));
    if st.site.data_alerts.len() == before {
        return Err(Fail(ApiError::not_found("404000", "Data alert", &id)));
    }
    no_content()
}

/// `POST /dataAlerts/{id}/users` (`<user id/>`): adds a recipient, as Tableau's "Add User to
/// Data-Driven Alert" does, for an administrator or the alert's owner; answers the user.
pub(crate) async fn add_data_alert_recipient(shared: Shr, a: Auth, Path((_v, _s, id)): P2, body: String) -> Res {
    let admin = a.is_admin(&shared.0);
    let uid = parse_body(&body)?.user.and_then(|u| u.id).ok_or_else(|| super::missing("a <user id> element"))?;
    let mut st = shared.0.write();
    st.user(&uid).map_err(Fail)?;
    let alert = st
        .site
        .data_alerts
        .iter_mut()
        .find(|x| x.id == id && (admin || x.owner_id == a.0.user_id))
        .ok_or_else(|| Fail(ApiError::not_found("404000", "Data alert", &id)))?;
    if alert.recipients.contains(&uid) {
        return Err(Fail(ApiError::conflict("409000", format!("User '{uid}' already receives the data alert."))));
    }
    alert.recipients.push(uid.clone());
    let mut r = xml::TsResponse::new();
    r.user = Some(st.user_xml(st.user(&uid).map_err(Fail)?));
    ok_xml(&r)
}

/// `DELETE /dataAlerts/{id}/users/{uid}`: removes a recipient (administrator, owner, or the
/// recipient itself).
pub(crate) async fn remove_data_alert_recipient(shared: Shr, a: Auth, Path((_v, _s, id, uid)): P3) -> Res {
    let admin = a.is_admin(&shared.0);
    let me = a.0.user_id.clone();
    let mut st = shared.0.write();
    let alert = st
        .site
        .data_alerts
        .iter_mut()
        .find(|x| x.id == id && (admin || x.owner_id == me || uid == me))
        .ok_or_else(|| Fail(ApiError::not_found("404000", "Data alert", &id)))?;
    let before = alert.recipients.len();
    alert.recipients.retain(|r| *r != uid);
    if alert.recipients.len() == before {
        return Err(Fail(ApiError::not_found("404002", "User on data alert", &uid)));
    }
    no_content()
}

// ---------------------------------------------------------------- JSON APIs

/// The session for a JSON API call (`X-Tableau-Auth`), answered in that API's error shape:
/// unexpired, its user still on the site, and the site the one served (the JSON APIs have
/// no site in their paths: the session's site is the one they read); unlicensed users are
/// refused, as Tableau refuses them every API.
pub(crate) fn json_session(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<crate::state::Session, axum::response::Response> {
    let token = headers.get("x-tableau-auth").and_then(|v| v.to_str().ok()).unwrap_or("");
    let st = shared.read();
    let refuse = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            Json(serde_json::json!({"timestamp": Utc::now().timestamp_millis(), "status": status.as_u16(), "error": status.canonical_reason().unwrap_or("Error"), "errorCode": code, "message": message})),
        )
            .into_response()
    };
    let unauthorized =
        || refuse(StatusCode::UNAUTHORIZED, "401002", "Invalid authentication credentials were provided.");
    let s = match st.sessions.get(token) {
        Some(s) if s.expires > Utc::now() && s.site_id == st.site.site.id => s.clone(),
        _ => return Err(unauthorized()),
    };
    match st.user(&s.user_id) {
        Ok(u) if u.site_role.eq_ignore_ascii_case("Unlicensed") => {
            Err(refuse(StatusCode::FORBIDDEN, "403004", "Unlicensed users cannot use this API."))
        }
        Ok(_) => Ok(s),
        Err(_) => Err(unauthorized()),
    }
}

fn vds_answer(r: Result<serde_json::Value, crate::vizql::VdsError>) -> axum::response::Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            (StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), Json(e.to_json())).into_response()
        }
    }
}

fn vds_body(body: &str) -> Result<serde_json::Value, axum::response::Response> {
    serde_json::from_str(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"errorCode": "400000", "message": format!("The request body is not valid JSON: {e}"), "datetime": ts(Utc::now())})),
        )
            .into_response()
    })
}

pub(crate) async fn vds_read_metadata(shared: Shr, headers: HeaderMap, body: String) -> axum::response::Response {
    if let Err(r) = json_session(&shared.0, &headers) {
        return r;
    }
    let v = match vds_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let st = shared.0.read();
    vds_answer(crate::vizql::read_metadata(&st.site, &v))
}

pub(crate) async fn vds_query(shared: Shr, headers: HeaderMap, body: String) -> axum::response::Response {
    if let Err(r) = json_session(&shared.0, &headers) {
        return r;
    }
    let v = match vds_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let st = shared.0.read();
    vds_answer(crate::vizql::query_datasource(&st.site, &v))
}

pub(crate) async fn vds_simple() -> axum::response::Response {
    "VizQL Data Service is available".into_response()
}

pub(crate) async fn usage_stats(
    shared: Shr,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> axum::response::Response {
    if let Err(r) = json_session(&shared.0, &headers) {
        return r;
    }
    let st = shared.0.read();
    match crate::vizql::usage_stats(&st.site, &kind, &id) {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"errorCode": "404000", "message": format!("No {kind} with id {id}.")})),
        )
            .into_response(),
    }
}

pub(crate) async fn usage_stats_batch(shared: Shr, headers: HeaderMap, body: String) -> axum::response::Response {
    if let Err(r) = json_session(&shared.0, &headers) {
        return r;
    }
    let v = match vds_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let items = v.get("content_items").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    let st = shared.0.read();
    let mut out = Vec::new();
    for it in items {
        let luid = it.get("luid").and_then(|l| l.as_str()).unwrap_or("");
        let kind = it.get("type").and_then(|l| l.as_str()).unwrap_or("workbook");
        let plural = format!("{}s", kind.trim_end_matches('s'));
        if let Some(mut stats) = crate::vizql::usage_stats(&st.site, &plural, luid) {
            if let Some(o) = stats.as_object_mut() {
                o.insert("content".into(), serde_json::json!({"luid": luid, "type": kind}));
            }
            out.push(stats);
        }
    }
    (StatusCode::CREATED, Json(serde_json::json!({"contentUsageStatistics": out}))).into_response()
}
