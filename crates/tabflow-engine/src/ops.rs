//! The calls that read, apply, check and undo each operation against a Tableau site: the IO
//! half of operations. The typed reading of a change ([`Op`]), the live image ([`Image`]) and
//! the before/after/drift rule ([`classify`]) are pure and live in `tabflow_plan::ops`
//! (re-exported here); this module talks to the site through the client and converts the
//! core's [`Capability`] to and from the client's type at each call.
//!
//! Rollback is the same operation with before and after swapped — except a repoint, whose
//! rollback republishes the file saved before it (the executor keeps it in the store).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};
use tabflow_client::{Client, ContentKind, DatasourceUpdate, FlowUpdate, Grantee, ProjectUpdate, WorkbookUpdate};
use tabflow_site::Mode;
use tabflow_wire::ids::{DatasourceId, FlowId, GroupId, ProjectId, SubscriptionId, UserId, ViewId, WorkbookId};

pub use tabflow_plan::ops::{
    Capability, DatasourceRef, GranteeRef, Image, Op, Rule, State, Target, capabilities, classify, rules,
};

/// What went wrong applying or reading an operation.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Client(#[from] tabflow_client::Error),
    #[error("the plan's change is not one tabflow can execute: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Missing(String),
}

impl From<tabflow_plan::ops::Error> for OpError {
    fn from(e: tabflow_plan::ops::Error) -> Self {
        match e {
            tabflow_plan::ops::Error::Unsupported(what) => OpError::Unsupported(what),
            other => OpError::Unsupported(other.to_string()),
        }
    }
}

pub type OpResult<T> = Result<T, OpError>;

/// The core's capability → the client's (what a permission call sends).
pub fn to_client(c: &Capability) -> tabflow_client::Capability {
    let grantee = if c.is_group() { Grantee::Group(c.grantee_id.clone()) } else { Grantee::User(c.grantee_id.clone()) };
    tabflow_client::Capability { grantee, name: c.name.clone(), mode: c.mode }
}

/// The client's capabilities → the core's, sorted (images compare them in this order).
pub fn from_client(caps: &[tabflow_client::Capability]) -> Vec<Capability> {
    let mut out: Vec<Capability> = caps
        .iter()
        .map(|c| Capability {
            grantee_type: c.grantee.kind().into(),
            grantee_id: c.grantee.id().into(),
            name: c.name.clone(),
            mode: c.mode,
        })
        .collect();
    out.sort();
    out
}

fn content_kind(kind: &str) -> OpResult<ContentKind> {
    ContentKind::parse(kind).ok_or_else(|| OpError::Unsupported(format!("items of type '{kind}'")))
}

/// Reads the live image of an item. `with_permissions` adds the explicit permission rules:
/// one more call, made at the same time as the item's own read, so that reading an item with
/// its permissions costs one round trip, not two (at 20 ms a call, apply's re-read before each
/// write was half of its time per item, issue #15). When the item turns out not to exist, the
/// permissions call's answer (a 404 as well) is dropped.
pub async fn read_image(client: &Client, kind: &str, id: &str, with_permissions: bool) -> OpResult<Image> {
    read_image_if(client, kind, id, with_permissions, std::future::ready(true)).await
}

/// [`read_image`] while it is still being found out whether the permissions are wanted:
/// the item, its permissions and `wanted` are awaited together, and the permissions are kept
/// only when `wanted` answers true — otherwise the image is exactly the one without them (a
/// failed permissions call included: it fails nothing). `ask` false reads no permissions.
pub async fn read_image_if(
    client: &Client,
    kind: &str,
    id: &str,
    ask: bool,
    wanted: impl std::future::Future<Output = bool>,
) -> OpResult<Image> {
    let asks = ask && matches!(kind, "workbook" | "datasource" | "project" | "flow" | "view");
    let permissions = async {
        if !asks {
            return Ok(None);
        }
        Ok::<_, OpError>(Some(client.permissions(content_kind(kind)?, id).await))
    };
    let (img, permissions, wanted) = futures::join!(read_item(client, kind, id), permissions, wanted);
    let mut img = img?;
    if !img.exists || !wanted {
        return Ok(img);
    }
    if let Some(caps) = permissions? {
        img.permissions = Some(from_client(&caps?));
    }
    Ok(img)
}

/// [`read_image`] without the permissions.
async fn read_item(client: &Client, kind: &str, id: &str) -> OpResult<Image> {
    let mut img = Image { kind: kind.into(), id: id.into(), exists: true, ..Image::default() };
    let not_found = |e: &tabflow_client::Error| e.status() == Some(404);
    match kind {
        "workbook" => match client.workbook(&WorkbookId::new(id)).await {
            Ok(w) => fill_content(&mut img, w.name, w.project, w.owner, w.tags, w.updated_at),
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "datasource" => match client.datasource(&DatasourceId::new(id)).await {
            Ok(d) => fill_content(&mut img, d.name, d.project, d.owner, d.tags, d.updated_at),
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "flow" => match client.flow(&FlowId::new(id)).await {
            Ok(f) => fill_content(&mut img, f.name, f.project, f.owner, f.tags, f.updated_at),
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "project" => match find_project(client, id).await? {
            Some(p) => {
                img.name = p.name;
                img.parent_id = p.parent_project_id.filter(|x| !x.is_empty());
                img.owner_id = p.owner.and_then(|o| o.id);
                img.content_permissions = p.content_permissions;
                img.updated_at = p.updated_at;
            }
            None => return Ok(Image { exists: false, ..img }),
        },
        "user" => match client.user(&UserId::new(id)).await {
            Ok(u) => {
                img.name = u.name;
                img.site_role = u.site_role;
                img.full_name = u.full_name;
                img.email = u.email;
                img.auth_setting = u.auth_setting;
                let groups = client.user_groups(&UserId::new(id)).collect().await?;
                img.groups = Some(groups.into_iter().filter_map(|g| g.id).collect());
            }
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        // A view is read for its own permission rules (a leaver's grant on one view).
        "view" => match client.view(&ViewId::new(id)).await {
            Ok(v) => img.name = v.name,
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        // One call per subscription, not a listing of every subscription per item.
        "subscription" => match client.subscription(&SubscriptionId::new(id)).await {
            Ok(s) => img.name = s.subject,
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        // An extract refresh task: its schedule (a Server schedule's id, or its own).
        "extract-refresh" => match client.extract_refresh_task(id).await {
            Ok(t) => {
                let m = tabflow_client::refreshes::task_model(t);
                img.name = Some(format!("{} {}", m.target.kind, m.target.id));
                img.schedule = Some(match &m.own_schedule {
                    Some(r) if m.schedule_id.is_empty() => serde_json::to_value(r).unwrap_or_default(),
                    _ => json!({"schedule_id": m.schedule_id}),
                });
            }
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        "schedule" => match client.schedule(id).await {
            Ok(s) => {
                img.name = s.name;
                img.state = s.state;
                img.updated_at = s.updated_at;
            }
            Err(e) if not_found(&e) => return Ok(Image { exists: false, ..img }),
            Err(e) => return Err(e.into()),
        },
        other => return Err(OpError::Unsupported(format!("items of type '{other}'"))),
    }
    Ok(img)
}

fn fill_content(
    img: &mut Image,
    name: Option<String>,
    project: Option<tabflow_client::types::IdRef>,
    owner: Option<tabflow_client::types::IdRef>,
    tags: Option<tabflow_client::types::Tags>,
    updated_at: Option<String>,
) {
    img.name = name;
    img.project_id = project.and_then(|p| p.id);
    img.owner_id = owner.and_then(|o| o.id);
    img.tags = Some(tags.map(|t| t.labels()).unwrap_or_default().into_iter().collect());
    img.updated_at = updated_at;
}

/// Projects have no GET by id in the REST API: list and pick.
pub async fn find_project(client: &Client, id: &str) -> OpResult<Option<tabflow_client::types::Project>> {
    let all = client.projects().collect().await?;
    Ok(all.into_iter().find(|p| p.id.as_deref() == Some(id)))
}

/// Applies one op; answers the id it created, if any.
pub async fn apply(client: &Client, kind: &str, id: &str, op: &Op, target: Option<&str>) -> OpResult<Option<String>> {
    match op {
        Op::Project { after, .. } => {
            let to = match after {
                Target::Id(x) => x.clone(),
                Target::CreatedBy { name, step } => target
                    .map(str::to_string)
                    .ok_or_else(|| OpError::Missing(format!("project '{name}' from step {step} does not exist")))?,
            };
            match kind {
                "workbook" => {
                    let u = WorkbookUpdate { project_id: Some(ProjectId::new(to)), ..Default::default() };
                    client.update_workbook(&WorkbookId::new(id), &u).await?;
                }
                "datasource" => {
                    let u = DatasourceUpdate { project_id: Some(ProjectId::new(to)), ..Default::default() };
                    client.update_datasource(&DatasourceId::new(id), &u).await?;
                }
                "flow" => {
                    let u = FlowUpdate { project_id: Some(ProjectId::new(to)), ..Default::default() };
                    client.update_flow(&FlowId::new(id), &u).await?;
                }
                _ => {
                    let u = ProjectUpdate { parent_id: Some(Some(ProjectId::new(to))), ..Default::default() };
                    client.update_project(&ProjectId::new(id), &u).await?;
                }
            }
        }
        Op::Owner { after, .. } => match kind {
            "workbook" => {
                let u = WorkbookUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_workbook(&WorkbookId::new(id), &u).await?;
            }
            "datasource" => {
                let u = DatasourceUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_datasource(&DatasourceId::new(id), &u).await?;
            }
            "flow" => {
                let u = FlowUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_flow(&FlowId::new(id), &u).await?;
            }
            _ => {
                let u = ProjectUpdate { owner_id: Some(UserId::new(after)), ..Default::default() };
                client.update_project(&ProjectId::new(id), &u).await?;
            }
        },
        Op::Name { after, .. } => match kind {
            "workbook" => {
                let u = WorkbookUpdate { name: Some(after.clone()), ..Default::default() };
                client.update_workbook(&WorkbookId::new(id), &u).await?;
            }
            "datasource" => {
                let u = DatasourceUpdate { name: Some(after.clone()), ..Default::default() };
                client.update_datasource(&DatasourceId::new(id), &u).await?;
            }
            _ => {
                let u = ProjectUpdate { name: Some(after.clone()), ..Default::default() };
                client.update_project(&ProjectId::new(id), &u).await?;
            }
        },
        Op::Tags { before, after } => {
            let k = content_kind(kind)?;
            let add: Vec<String> = after.difference(before).cloned().collect();
            let mut calls = 0;
            if !add.is_empty() {
                client.add_tags(k, id, &add).await?;
                calls += 1;
            }
            for t in before.difference(after) {
                if calls > 0 {
                    crate::test_hooks::crash_point("between-calls");
                }
                calls += 1;
                match client.delete_tag(k, id, t).await {
                    Ok(()) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Op::Permissions { after, .. } => {
            // The calls one by one (as `Client::set_permissions` makes them), so that the crash
            // tests can stop between two of them.
            let k = content_kind(kind)?;
            let after: Vec<tabflow_client::Capability> = after.iter().map(to_client).collect();
            let current = client.permissions(k, id).await?;
            for (i, call) in tabflow_client::permission_calls(&current, &after).iter().enumerate() {
                if i > 0 {
                    crate::test_hooks::crash_point("between-calls");
                }
                match call {
                    tabflow_client::PermissionCall::Delete(cap) => client.delete_permission(k, id, cap).await?,
                    tabflow_client::PermissionCall::Add(g, caps) => client.add_permissions(k, id, g, caps).await?,
                }
            }
        }
        Op::ContentPermissions { after, .. } => {
            let u = ProjectUpdate { content_permissions: Some(after.clone()), ..Default::default() };
            client.update_project(&ProjectId::new(id), &u).await?;
        }
        Op::SiteRole { after, .. } => client.set_site_role(&UserId::new(id), after).await?,
        Op::Groups { before, after } => {
            let mut calls = 0;
            for g in after.difference(before) {
                if calls > 0 {
                    crate::test_hooks::crash_point("between-calls");
                }
                calls += 1;
                client.add_group_member(&GroupId::new(g), &UserId::new(id)).await?;
            }
            for g in before.difference(after) {
                if calls > 0 {
                    crate::test_hooks::crash_point("between-calls");
                }
                calls += 1;
                match client.remove_group_member(&GroupId::new(g), &UserId::new(id)).await {
                    Ok(()) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Op::CreateProject { name, parent_id, content_permissions } => {
            let p = client
                .create_project(name, parent_id.as_ref().map(ProjectId::new).as_ref(), content_permissions.as_deref())
                .await?;
            return Ok(p.id);
        }
        Op::DeleteSubscription { .. } => match client.delete_subscription(&SubscriptionId::new(id)).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        },
        Op::DeleteExtractRefresh { .. } => match client.delete_extract_refresh_task(id).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        },
        Op::ScheduleState { after, .. } => {
            client.set_schedule_state(id, after).await?;
        }
        Op::MoveExtractRefresh { task, to } => {
            // The new task first, then the old one goes: a failure in between leaves the
            // content refreshed twice, never not at all. A retry adopts the task an earlier
            // attempt made on `to` (Tableau refuses a second one there).
            let new = add_or_adopt(client, to, task).await?;
            match client.delete_extract_refresh_task(id).await {
                Ok(()) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(Some(new));
        }
        Op::RefreshSchedule { after, .. } => {
            let r: tabflow_site::Recurrence = serde_json::from_value(after.clone())
                .map_err(|e| OpError::Unsupported(format!("the new schedule of task {id} is malformed: {e}")))?;
            client.update_extract_refresh_schedule(id, &r).await?;
        }
        Op::DeleteUser { user, map_assets_to } => {
            // Never while the account owns content: Tableau would hand it to `mapAssetsTo`
            // without the per-item choice of owner the plan made.
            let owned = owned_by(client, id).await?;
            if !owned.is_empty() {
                let name = user.get("name").and_then(Value::as_str).unwrap_or(id);
                return Err(OpError::Missing(format!(
                    "{name} still owns {} ({}); tabflow never deletes an account that owns content — transfer it first (re-plan the offboarding)",
                    owned.len(),
                    owned.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            client.delete_user(&UserId::new(id), Some(&UserId::new(map_assets_to))).await?;
        }
        Op::Repoint { before, after } => {
            let wid = WorkbookId::new(id);
            let (filename, bytes) = client.download_workbook(&wid, true).await?;
            let to =
                tabflow_wire::twb::PublishedRef { content_url: after.content_url.clone(), name: after.name.clone() };
            // A .twbx comes back packed again: the rewritten .twb, every other entry as it was.
            let (filename, new) =
                tabflow_wire::twb::repoint_file(&filename, &bytes, &before.content_url, &to).map_err(file_error)?;
            republish(client, id, &filename, tabflow_client::Upload::Bytes(&new)).await?;
        }
    }
    Ok(None)
}

fn file_error(e: tabflow_wire::twb::Error) -> OpError {
    OpError::Unsupported(e.to_string())
}

/// Reads the published datasources a workbook's file points at into the image, when one of
/// the ops needs them (one download per workbook).
pub async fn fill_datasources(client: &Client, img: &mut Image, ops: &[Op]) -> OpResult<()> {
    if img.kind != "workbook" || !img.exists || !ops.iter().any(Op::needs_file) {
        return Ok(());
    }
    let (filename, bytes) = client.download_workbook(&WorkbookId::new(&img.id), false).await?;
    let doc = tabflow_wire::twb::document(&filename, &bytes).map_err(file_error)?;
    let refs = tabflow_wire::twb::published_datasources(&doc).map_err(file_error)?;
    img.datasources = Some(refs.into_iter().map(|r| r.content_url).collect());
    Ok(())
}

/// Reads what deleting an account loses and its undo restores — subscriptions, explicit
/// grants on the resources the plan names, favorites — into the image, when an op needs it.
pub async fn fill_account(client: &Client, img: &mut Image, ops: &[Op]) -> OpResult<()> {
    let Some(Op::DeleteUser { user, .. }) = ops.iter().find(|o| o.needs_account()) else { return Ok(()) };
    if img.kind != "user" || !img.exists {
        return Ok(());
    }
    let uid = UserId::new(&img.id);
    let subs = client.subscriptions().collect().await?;
    img.subscriptions = Some(
        subs.iter()
            .filter(|s| s.user.as_ref().and_then(|u| u.id.as_deref()) == Some(img.id.as_str()))
            .map(subscription_value)
            .collect(),
    );
    let mut grants = vec![];
    for r in user.get("grants_on").and_then(Value::as_array).into_iter().flatten() {
        let (Some(kind), Some(id)) = (r.get("type").and_then(Value::as_str), r.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let Some(k) = ContentKind::parse(kind) else { continue };
        let caps = match client.permissions(k, id).await {
            Ok(c) => c,
            Err(e) if e.status() == Some(404) => continue,
            Err(e) => return Err(e.into()),
        };
        let mine: BTreeMap<String, Mode> = caps
            .iter()
            .filter(|c| matches!(&c.grantee, Grantee::User(u) if *u == img.id))
            .map(|c| (c.name.clone(), c.mode))
            .collect();
        if !mine.is_empty() {
            grants.push(json!({"type": k.singular(), "id": id, "capabilities": mine}));
        }
    }
    img.grants = Some(grants);
    // The data alerts the plan saw it receive, read again (another may have removed it since).
    let mut alerts = vec![];
    for a in user.get("alerts_receiving").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        match client.data_alert(a).await {
            Ok(alert) => {
                if alert.recipients.iter().flat_map(|r| &r.recipient).any(|r| r.id.as_deref() == Some(img.id.as_str()))
                {
                    alerts.push(a.to_string());
                }
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    img.alerts = Some(alerts);
    let favs = client.favorites(&uid).await?;
    img.favorites = Some(
        favs.iter()
            .filter_map(|f| f.content().map(|(kind, id)| json!({"label": f.label, "type": kind, "id": id})))
            .collect(),
    );
    Ok(())
}

/// What a user still owns, by name (workbooks, datasources, flows, projects), read from the site.
pub async fn owned_by(client: &Client, user_id: &str) -> OpResult<Vec<String>> {
    use tabflow_wire::filter::{Filter, Op as By};
    let u = client.user(&UserId::new(user_id)).await?;
    let name = u.name.unwrap_or_default();
    let by_owner = || Filter::new().and("ownerName", By::Eq, name.as_str());
    let mine = |o: &Option<tabflow_client::types::IdRef>| o.as_ref().and_then(|o| o.id.as_deref()) == Some(user_id);
    // Filtered lists come from Tableau's search index, which lags behind writes: what they
    // name is read again directly, so an item just handed over does not count. (An item the
    // index does not show yet is what `mapAssetsTo` is for.)
    let mut out = vec![];
    for w in client.workbooks().filter(by_owner()).collect().await? {
        let Some(id) = w.id else { continue };
        match client.workbook(&WorkbookId::new(&id)).await {
            Ok(now) if mine(&now.owner) => out.push(format!("workbook '{}'", now.name.unwrap_or_default())),
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for d in client.datasources().filter(by_owner()).collect().await? {
        let Some(id) = d.id else { continue };
        match client.datasource(&DatasourceId::new(&id)).await {
            Ok(now) if mine(&now.owner) => out.push(format!("datasource '{}'", now.name.unwrap_or_default())),
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for f in client.flows().filter(by_owner()).collect().await? {
        let Some(id) = f.id else { continue };
        match client.flow(&FlowId::new(&id)).await {
            Ok(now) if mine(&now.owner) => out.push(format!("flow '{}'", now.name.unwrap_or_default())),
            Ok(_) => {}
            Err(e) if matches!(e.status(), Some(404)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Projects have no GET by id: the whole list (small) is read without a filter.
    for p in client.projects().collect().await? {
        if mine(&p.owner) {
            out.push(format!("project '{}'", p.name.unwrap_or_default()));
        }
    }
    Ok(out)
}

/// Re-creates a deleted account from its before-image (or adopts the account of that name a
/// crashed earlier undo created), then restores its subscriptions, explicit grants and
/// favorites. Answers the account's new id.
pub async fn recreate_user(client: &Client, before: &Image, user: &Value) -> OpResult<String> {
    use tabflow_wire::filter::{Filter, Op as By};
    let name = before
        .name
        .clone()
        .or_else(|| user.get("name").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| OpError::Missing("the deleted account's name is not in the journal".into()))?;
    let existing = client.users().filter(Filter::new().and("name", By::Eq, name.as_str())).collect().await?;
    let id = match existing.into_iter().find(|u| u.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&name))) {
        Some(u) => u.id.ok_or_else(|| OpError::Missing(format!("the account '{name}' has no id")))?,
        None => {
            let text = |k: &str| user.get(k).and_then(Value::as_str).map(str::to_string);
            let u = tabflow_client::types::User {
                name: Some(name.clone()),
                site_role: before.site_role.clone().or_else(|| text("site_role")),
                auth_setting: before.auth_setting.clone(),
                full_name: before.full_name.clone().or_else(|| text("full_name")),
                email: before.email.clone().or_else(|| text("email")),
                ..tabflow_client::types::User::default()
            };
            client.add_user_like(&u).await?.id.ok_or_else(|| OpError::Missing("the new account has no id".into()))?
        }
    };
    let uid = UserId::new(&id);
    let live_subs = client.subscriptions().collect().await?;
    for s in before.subscriptions.iter().flatten() {
        let ctype = s.pointer("/content/type").and_then(Value::as_str).unwrap_or("workbook");
        let cid = s.pointer("/content/id").and_then(Value::as_str).unwrap_or_default();
        let subject = s.get("subject").and_then(Value::as_str).unwrap_or_default();
        let there = live_subs.iter().any(|x| {
            x.user.as_ref().and_then(|u| u.id.as_deref()) == Some(id.as_str())
                && x.content.as_ref().is_some_and(|c| c.id == cid)
                && x.subject.as_deref() == Some(subject)
        });
        if !there {
            recreate_subscription(client, &uid, ctype, cid, s).await?;
        }
    }
    for g in before.grants.iter().flatten() {
        let (Some(kind), Some(rid)) = (g.get("type").and_then(Value::as_str), g.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let Some(k) = ContentKind::parse(kind) else { continue };
        let caps: Vec<(String, Mode)> =
            serde_json::from_value::<BTreeMap<String, Mode>>(g.get("capabilities").cloned().unwrap_or_default())
                .map_err(|e| OpError::Missing(format!("a saved grant on {kind} {rid} is malformed: {e}")))?
                .into_iter()
                .collect();
        if !caps.is_empty() {
            client.add_permissions(k, rid, &Grantee::User(id.clone()), &caps).await?;
        }
    }
    for a in before.alerts.iter().flatten() {
        match client.add_data_alert_recipient(a, &uid).await {
            // Gone since, or a crashed earlier undo already added it.
            Ok(()) => {}
            Err(e) if e.status() == Some(404) || e.status() == Some(409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for f in before.favorites.iter().flatten() {
        let (Some(kind), Some(fid)) = (f.get("type").and_then(Value::as_str), f.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let label = f.get("label").and_then(Value::as_str).unwrap_or_default();
        match client.add_favorite(&uid, label, kind, fid).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) || e.status() == Some(409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(id)
}

/// Reads what a staged delete would take with the content and a restore from the saved file
/// has to put back: description, tabs or certification, the views' own permissions (tabs
/// hidden), and the subscriptions on the item or one of its views (named, so a restore can
/// find the view again under its new id).
///
/// `subscriptions` is the site's subscription list, read once per run by the caller (listing
/// them per item would cost a full listing for each staged item).
pub async fn fill_for_restore(
    client: &Client,
    img: &mut Image,
    subscriptions: &[tabflow_client::types::Subscription],
) -> OpResult<()> {
    if !img.exists || !matches!(img.kind.as_str(), "workbook" | "datasource") {
        return Ok(());
    }
    let mut views: HashMap<String, String> = HashMap::new();
    if img.kind == "workbook" {
        let wid = WorkbookId::new(&img.id);
        let w = client.workbook(&wid).await?;
        let show_tabs = tabflow_client::types::parse_bool(w.show_tabs.as_deref()).unwrap_or(true);
        let mut own = vec![];
        for v in client.workbook_views(&wid, false).await? {
            let (Some(id), Some(name)) = (v.id, v.name) else { continue };
            if !show_tabs {
                let caps = client.permissions(ContentKind::View, &id).await?;
                if !caps.is_empty() {
                    own.push(json!({"name": name, "permissions": from_client(&caps)}));
                }
            }
            views.insert(id, name);
        }
        img.restore = Some(json!({"description": w.description, "show_tabs": show_tabs, "views": own}));
    } else {
        let d = client.datasource(&DatasourceId::new(&img.id)).await?;
        img.restore = Some(json!({
            "description": d.description,
            "certified": tabflow_client::types::parse_bool(d.is_certified.as_deref()).unwrap_or(false),
            "certification_note": d.certification_note,
        }));
    }
    img.subscriptions = Some(
        subscriptions
            .iter()
            .filter_map(|s| {
                let cid = s.content.as_ref().map(|c| c.id.as_str())?;
                let mut v = subscription_value(s);
                if cid == img.id {
                    Some(v)
                } else {
                    let name = views.get(cid)?;
                    v["view_name"] = json!(name);
                    Some(v)
                }
            })
            .collect(),
    );
    Ok(())
}

/// The site's extract refresh tasks (`GET /sites/{s}/tasks/extractRefreshes`); none when the
/// signed-in user may not list them (only administrators may: their refreshes cannot be read,
/// so a restore cannot put them back either).
pub async fn site_refresh_tasks(client: &Client) -> OpResult<Vec<tabflow_site::ExtractRefresh>> {
    match client.extract_refresh_tasks().collect().await {
        Ok(t) => Ok(t.into_iter().map(tabflow_client::refreshes::task_model).collect()),
        Err(e) if matches!(e.status(), Some(403 | 404)) => Ok(vec![]),
        Err(e) => Err(e.into()),
    }
}

/// Reads the extract refresh tasks of a staged item into its restore record
/// (`restore.refreshes`: `target`, `schedule_id` or `own_schedule`, `type`, `priority`):
/// Tableau deletes them with the content, and a restore re-creates them for the re-published
/// item. A Server task's full/incremental type comes from its schedule's extract list (the
/// task list does not say).
pub async fn fill_refreshes(client: &Client, img: &mut Image, tasks: &[tabflow_site::ExtractRefresh]) -> OpResult<()> {
    if !img.exists || !matches!(img.kind.as_str(), "workbook" | "datasource") {
        return Ok(());
    }
    let mut out = vec![];
    for t in tasks.iter().filter(|t| t.target.id == img.id) {
        let mut kind = t.kind.clone();
        if !t.schedule_id.is_empty() {
            let on = client.schedule_extracts(&t.schedule_id).collect().await?;
            if let Some(k) = on.into_iter().find(|e| e.id.as_deref() == Some(t.id.as_str())).and_then(|e| e.kind) {
                kind = k;
            }
        }
        out.push(json!({
            "id": t.id,
            "target": {"type": t.target.kind, "id": t.target.id},
            "schedule_id": t.schedule_id,
            "own_schedule": t.own_schedule,
            "type": kind,
            "priority": t.priority,
        }));
    }
    if out.is_empty() {
        return Ok(());
    }
    let mut restore = img.restore.take().unwrap_or_else(|| json!({}));
    restore["refreshes"] = json!(out);
    img.restore = Some(restore);
    Ok(())
}

/// Re-publishes a purged item from the file saved before it was deleted, into its old project
/// under its old name, and puts back what the before-image holds: owner, tags, explicit
/// permissions, and the subscriptions on it (on views, matched by view name). Answers the new
/// id (Tableau gives a re-published item a new one) and what could not be put back.
///
/// With `adopt` (an earlier attempt of this rollback published it and was cut off before it
/// could record so), an item of that name already in the project is taken as the re-published
/// one instead of a name clash.
pub async fn restore_content(
    client: &Client,
    before: &Image,
    filename: &str,
    file: tabflow_client::Upload<'_>,
    adopt: bool,
) -> OpResult<(String, Vec<String>)> {
    use tabflow_wire::filter::{Filter, Op as By};
    let name = before.name.clone().ok_or_else(|| OpError::Missing("the journal has no name for it".into()))?;
    let project =
        before.project_id.clone().ok_or_else(|| OpError::Missing("the journal has no project for it".into()))?;
    let kind = content_kind(&before.kind)?;
    let clash = |e: &tabflow_client::Error| e.status() == Some(409);
    let extra = |k: &str| before.restore.as_ref().and_then(|r| r.get(k)).filter(|v| !v.is_null());
    let mut lost = vec![];
    let (id, views) = match before.kind.as_str() {
        "workbook" => {
            let w = match client.publish_workbook_upload(&ProjectId::new(&project), &name, filename, file, false).await
            {
                Ok(w) => w,
                Err(e) if clash(&e) && adopt => {
                    let same =
                        client.workbooks().filter(Filter::new().and("name", By::Eq, name.as_str())).collect().await?;
                    let found = same.into_iter().find(|w| {
                        w.name.as_deref() == Some(name.as_str())
                            && w.project.as_ref().and_then(|p| p.id.as_deref()) == Some(project.as_str())
                    });
                    found.ok_or(OpError::Client(e))?
                }
                Err(e) if clash(&e) => {
                    return Err(OpError::Missing(format!(
                        "a workbook named '{name}' is in its old project again; rename or move that one, then run the rollback again"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let id = w.id.clone().ok_or_else(|| OpError::Missing("the re-published workbook has no id".into()))?;
            let views: HashMap<String, String> = match w.views {
                Some(v) => v.view.into_iter().filter_map(|v| Some((v.name?, v.id?))).collect(),
                None => client
                    .workbook_views(&WorkbookId::new(&id), false)
                    .await?
                    .into_iter()
                    .filter_map(|v| Some((v.name?, v.id?)))
                    .collect(),
            };
            let u = WorkbookUpdate {
                owner_id: before.owner_id.as_deref().map(UserId::new),
                description: extra("description").and_then(Value::as_str).map(str::to_string),
                show_tabs: extra("show_tabs").and_then(Value::as_bool),
                ..Default::default()
            };
            client.update_workbook(&WorkbookId::new(&id), &u).await?;
            for v in extra("views").and_then(Value::as_array).into_iter().flatten() {
                let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
                let caps: Vec<Capability> =
                    serde_json::from_value(v.get("permissions").cloned().unwrap_or_default()).unwrap_or_default();
                match views.get(name) {
                    Some(vid) => {
                        let caps: Vec<tabflow_client::Capability> = caps.iter().map(to_client).collect();
                        client.set_permissions(ContentKind::View, vid, &caps).await?;
                    }
                    None => lost.push(format!("the permissions of the view '{name}': the file has no such view")),
                }
            }
            (id, views)
        }
        "datasource" => {
            let d = match client
                .publish_datasource_upload(&ProjectId::new(&project), &name, filename, file, false)
                .await
            {
                Ok(d) => d,
                Err(e) if clash(&e) && adopt => {
                    let same =
                        client.datasources().filter(Filter::new().and("name", By::Eq, name.as_str())).collect().await?;
                    let found = same.into_iter().find(|d| {
                        d.name.as_deref() == Some(name.as_str())
                            && d.project.as_ref().and_then(|p| p.id.as_deref()) == Some(project.as_str())
                    });
                    found.ok_or(OpError::Client(e))?
                }
                Err(e) if clash(&e) => {
                    return Err(OpError::Missing(format!(
                        "a datasource named '{name}' is in its old project again; rename or move that one, then run the rollback again"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let id = d.id.clone().ok_or_else(|| OpError::Missing("the re-published datasource has no id".into()))?;
            let certified = extra("certified").and_then(Value::as_bool);
            let u = DatasourceUpdate {
                owner_id: before.owner_id.as_deref().map(UserId::new),
                description: extra("description").and_then(Value::as_str).map(str::to_string),
                certified,
                certification_note: if certified == Some(true) {
                    extra("certification_note").and_then(Value::as_str).map(str::to_string)
                } else {
                    None
                },
                ..Default::default()
            };
            client.update_datasource(&DatasourceId::new(&id), &u).await?;
            (id, HashMap::new())
        }
        other => return Err(OpError::Unsupported(format!("restoring items of type '{other}'"))),
    };
    let tags: Vec<String> = before.tags.iter().flatten().cloned().collect();
    if !tags.is_empty() {
        client.add_tags(kind, &id, &tags).await?;
    }
    if let Some(p) = &before.permissions {
        let caps: Vec<tabflow_client::Capability> = p.iter().map(to_client).collect();
        client.set_permissions(kind, &id, &caps).await?;
    }
    // Its extract refresh tasks (Tableau deleted them with it), for the new id. A retry
    // (`adopt`) finds those an earlier attempt made: Tableau refuses a second one on a
    // schedule, and an own-schedule task is looked for by content and schedule.
    let live_tasks = if adopt { site_refresh_tasks(client).await? } else { vec![] };
    for t in extra("refreshes").and_then(Value::as_array).into_iter().flatten() {
        let mut t = t.clone();
        t["target"]["id"] = json!(id);
        let there = live_tasks.iter().any(|x| {
            x.target.id == id
                && x.schedule_id == t["schedule_id"].as_str().unwrap_or_default()
                && serde_json::to_value(&x.own_schedule).ok() == t.get("own_schedule").cloned()
        });
        if there {
            continue;
        }
        if let Err(e) = recreate_extract_refresh(client, &t).await {
            let on = t["schedule_id"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map_or("its own schedule".to_string(), |s| format!("schedule {s}"));
            lost.push(format!("the extract refresh on {on}: {e}"));
        }
    }
    // A retry must not subscribe anyone twice.
    let live_subs = if adopt { client.subscriptions().collect().await? } else { vec![] };
    for s in before.subscriptions.iter().flatten() {
        let user = s.get("user_id").and_then(Value::as_str).unwrap_or_default();
        let subject = s.get("subject").and_then(Value::as_str).unwrap_or_default();
        let (ctype, cid) = match s.get("view_name").and_then(Value::as_str) {
            Some(v) => match views.get(v) {
                Some(vid) => ("view", vid.clone()),
                None => {
                    lost.push(format!("the subscription '{subject}': the file has no view '{v}' any more"));
                    continue;
                }
            },
            None => (before.kind.as_str(), id.clone()),
        };
        let there = live_subs.iter().any(|x| {
            x.user.as_ref().and_then(|u| u.id.as_deref()) == Some(user)
                && x.content.as_ref().is_some_and(|c| c.id == cid)
                && x.subject.as_deref() == Some(subject)
        });
        if there {
            continue;
        }
        if let Err(e) = recreate_subscription(client, &UserId::new(user), ctype, &cid, s).await {
            lost.push(format!("the subscription '{subject}': {e}"));
        }
    }
    Ok((id, lost))
}

/// Publishes `file` over the workbook `id` (same name and project, overwrite) and puts back
/// what an overwrite drops on Tableau Server (tags, owner). Refuses when the publish made a
/// new workbook instead of replacing this one.
pub async fn republish(client: &Client, id: &str, filename: &str, file: tabflow_client::Upload<'_>) -> OpResult<()> {
    let wid = WorkbookId::new(id);
    let w = client.workbook(&wid).await?;
    let name = w.name.clone().ok_or_else(|| OpError::Missing(format!("workbook {id} has no name")))?;
    let project = w
        .project
        .as_ref()
        .and_then(|p| p.id.clone())
        .ok_or_else(|| OpError::Missing(format!("workbook {id} has no project")))?;
    let tags: BTreeSet<String> = w.tags.as_ref().map(|t| t.labels()).unwrap_or_default().into_iter().collect();
    let owner = w.owner.as_ref().and_then(|o| o.id.clone());
    let show_tabs = tabflow_client::types::parse_bool(w.show_tabs.as_deref()).unwrap_or(true);
    let published =
        client.republish_workbook_upload(&ProjectId::new(project), &name, filename, file, show_tabs).await?;
    if published.id.as_deref().is_some_and(|p| p != id) {
        return Err(OpError::Missing(format!(
            "publishing over '{name}' created another workbook ({}) instead of replacing {id}",
            published.id.unwrap_or_default()
        )));
    }
    let now = client.workbook(&wid).await?;
    let now_tags: BTreeSet<String> = now.tags.map(|t| t.labels()).unwrap_or_default().into_iter().collect();
    let lost: Vec<String> = tags.difference(&now_tags).cloned().collect();
    if !lost.is_empty() {
        client.add_tags(ContentKind::Workbook, id, &lost).await?;
    }
    if let Some(o) = owner
        && now.owner.and_then(|x| x.id).as_deref() != Some(o.as_str())
    {
        let u = WorkbookUpdate { owner_id: Some(UserId::new(o)), ..Default::default() };
        client.update_workbook(&wid, &u).await?;
    }
    Ok(())
}

/// Undoes an op that had been applied. Creates are undone by deleting what was created
/// (a project only while it is empty); deleted subscriptions are re-created (new id).
pub async fn compensate(
    client: &Client,
    kind: &str,
    id: &str,
    op: &Op,
    created: Option<&str>,
) -> OpResult<Option<String>> {
    match op {
        Op::CreateProject { name, .. } => {
            let pid = created.unwrap_or(id);
            match client.delete_project(&ProjectId::new(pid)).await {
                Ok(()) => Ok(None),
                Err(e) if e.status() == Some(404) => Ok(None),
                Err(e) => Err(OpError::Missing(format!("could not remove the project '{name}' tabflow created: {e}"))),
            }
        }
        Op::DeleteSubscription { subscription } => {
            let s = subscription;
            let user = s.get("user_id").and_then(Value::as_str).unwrap_or_default();
            let ctype = s.pointer("/content/type").and_then(Value::as_str).unwrap_or("workbook");
            let cid = s.pointer("/content/id").and_then(Value::as_str).unwrap_or_default();
            recreate_subscription(client, &UserId::new(user), ctype, cid, s).await
        }
        Op::DeleteExtractRefresh { task } => recreate_extract_refresh(client, task).await,
        Op::MoveExtractRefresh { task, to } => {
            // Back on its old schedule (a new id; adopted when an interrupted undo made it),
            // then the moved task goes: the one the apply made (its id in the journal) or,
            // when the journal has none (a crash before it was recorded), the content's task
            // on the schedule it was moved to.
            let from = task.get("schedule_id").and_then(Value::as_str).unwrap_or_default();
            if from.is_empty() {
                return Err(OpError::Missing(format!("the moved task {id} has no schedule to go back to")));
            }
            let back = add_or_adopt(client, from, task).await?;
            let moved = match created {
                Some(c) => Some(c.to_string()),
                None => task_on(client, to, task).await?,
            };
            if let Some(m) = moved.filter(|m| *m != back) {
                match client.delete_extract_refresh_task(&m).await {
                    Ok(()) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Some(back))
        }
        other => {
            let inv = other.inverse(created).ok_or_else(|| OpError::Unsupported("no inverse".into()))?;
            apply(client, kind, id, &inv, None).await
        }
    }
}

/// Re-creates a subscription from its description (`subject`, `schedule`, `suspended`) for
/// `user` on content `ctype`/`cid`; one Tableau had suspended comes back suspended, as it was.
/// Answers the new id.
async fn recreate_subscription(
    client: &Client,
    user: &UserId,
    ctype: &str,
    cid: &str,
    s: &Value,
) -> OpResult<Option<String>> {
    let subject = s.get("subject").and_then(Value::as_str).unwrap_or_default();
    let schedule = s.get("schedule").and_then(Value::as_str).unwrap_or_default();
    let created = client.create_subscription(user, ctype, cid, subject, schedule).await?;
    if s.get("suspended").and_then(Value::as_bool) == Some(true)
        && let Some(new_id) = created.id.as_deref()
    {
        client.set_subscription_suspended(&SubscriptionId::new(new_id), true).await?;
    }
    Ok(created.id)
}

/// Re-creates a deleted extract refresh task from its description: on its Server schedule
/// (add the content to the schedule) or, Cloud style, with its own schedule. Answers the new id.
async fn recreate_extract_refresh(client: &Client, t: &Value) -> OpResult<Option<String>> {
    let (kind, target, refresh_type, priority) = task_parts(t);
    let schedule_id = t.get("schedule_id").and_then(Value::as_str).unwrap_or_default();
    let created = if !schedule_id.is_empty() {
        client.add_to_schedule(schedule_id, kind, target, refresh_type, priority).await?
    } else {
        let own: tabflow_site::Recurrence =
            t.get("own_schedule").cloned().and_then(|v| serde_json::from_value(v).ok()).ok_or_else(|| {
                OpError::Missing(format!("the refresh task of {kind} {target} has no schedule to re-create it on"))
            })?;
        client.create_extract_refresh_task(kind, target, refresh_type, &own, priority).await?
    };
    Ok(created.id)
}

/// The described task's content (`target` {type, id}), its type and priority.
fn task_parts(t: &Value) -> (&str, &str, &str, Option<u32>) {
    let kind = t.pointer("/target/type").and_then(Value::as_str).unwrap_or("datasource");
    let target = t.pointer("/target/id").and_then(Value::as_str).unwrap_or_default();
    let refresh_type = t.get("type").and_then(Value::as_str).unwrap_or("FullRefresh");
    let priority = t.get("priority").and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok());
    (kind, target, refresh_type, priority)
}

/// The id of the described task's content's refresh task on a Server schedule, if it has one.
async fn task_on(client: &Client, schedule_id: &str, t: &Value) -> OpResult<Option<String>> {
    let (kind, target, _, _) = task_parts(t);
    let on = client.schedule_extracts(schedule_id).collect().await?;
    Ok(on.into_iter().find(|e| e.target().is_some_and(|(k, i)| k == kind && i == target)).and_then(|e| e.id))
}

/// Adds the described task's content to a Server schedule; when Tableau refuses because the
/// content already has a task there (409: an earlier, interrupted attempt made it), that task.
/// Answers its id.
async fn add_or_adopt(client: &Client, schedule_id: &str, t: &Value) -> OpResult<String> {
    let (kind, target, refresh_type, priority) = task_parts(t);
    match client.add_to_schedule(schedule_id, kind, target, refresh_type, priority).await {
        Ok(created) => created.id.ok_or_else(|| OpError::Missing("the new extract refresh task has no id".into())),
        Err(e) if e.status() == Some(409) => task_on(client, schedule_id, t).await?.ok_or(OpError::Client(e)),
        Err(e) => Err(e.into()),
    }
}

/// A subscription as plans and before-images record it.
pub fn subscription_value(s: &tabflow_client::types::Subscription) -> Value {
    json!({
        "id": s.id, "subject": s.subject,
        "user_id": s.user.as_ref().and_then(|u| u.id.clone()),
        "content": {"type": s.content.as_ref().map(|c| c.kind.to_lowercase()), "id": s.content.as_ref().map(|c| c.id.clone())},
        "schedule": s.schedule.as_ref().and_then(|x| x.name.clone().or(x.id.clone())),
        "suspended": s.suspended.as_deref() == Some("true"),
    })
}
