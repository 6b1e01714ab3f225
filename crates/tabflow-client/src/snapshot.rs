//! `tabflow site snapshot`: any live site (real or emulated) → `tabflow-site/1`, read through
//! the API with as few calls as the content allows.
//!
//! Calls: one paged list each for users, groups, projects, datasources, workbooks, views (with
//! usage), subscriptions, webhooks and data alerts; members per group; permissions per
//! project, workbook and datasource, and per view only where the workbook does not show
//! tabs (with tabs shown, views take the workbook's permissions); connections per
//! datasource; two paged Metadata API queries for fields and lineage; default permissions
//! per project for workbooks and datasources; Admin Insights for last access when present.
//! Not read: users' favorites (one call per user) and custom SQL text.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use tabflow_site as site;
use tabflow_wire::xml;

use crate::client::Client;
use crate::error::Result;
use crate::resources::{Capability, ContentKind, Grantee};
use crate::usage::{AdminInsights, ItemKind, UsageSource};

fn time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref().and_then(crate::usage::parse_time)
}

fn rules(kind: &str, id: &str, caps: Vec<Capability>) -> Vec<site::PermissionRule> {
    let mut by: BTreeMap<Grantee, BTreeMap<String, site::Mode>> = BTreeMap::new();
    for c in caps {
        by.entry(c.grantee).or_default().insert(c.name, c.mode);
    }
    by.into_iter()
        .map(|(g, caps)| site::PermissionRule {
            resource: site::ResourceRef { kind: kind.into(), id: id.into() },
            grantee: site::GranteeRef { kind: g.kind().into(), id: g.id().into() },
            capabilities: caps,
        })
        .collect()
}

fn workbook_model(w: xml::Workbook) -> site::Workbook {
    let mb = |s: &Option<String>| s.as_deref().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0) * 1024 * 1024;
    let now = Utc::now();
    site::Workbook {
        size: mb(&w.size),
        created_at: time(&w.created_at).unwrap_or(now),
        updated_at: time(&w.updated_at).unwrap_or(now),
        show_tabs: xml::parse_bool(w.show_tabs.as_deref()).unwrap_or(true),
        id: w.id.unwrap_or_default(),
        name: w.name.unwrap_or_default(),
        project_id: w.project.and_then(|p| p.id).unwrap_or_default(),
        owner_id: w.owner.and_then(|o| o.id).unwrap_or_default(),
        tags: w.tags.map(|t| t.labels()).unwrap_or_default(),
        datasource_ids: vec![],
        views: vec![],
        content_url: w.content_url.unwrap_or_default(),
        description: w.description.unwrap_or_default(),
        fields_used: vec![],
        revision: 1,
    }
}

/// Options for [`take`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Read last access from Admin Insights when the site has it.
    pub usage: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { usage: true }
    }
}

/// Reads the whole site.
pub async fn take(client: &Client, options: &Options) -> Result<site::Site> {
    let conc = client.config().concurrency.max(1) * 2;
    let (users, groups, projects, datasources, workbooks, views, subscriptions, webhooks, alerts) = futures::try_join!(
        client.users().collect(),
        client.groups().collect(),
        client.projects().collect(),
        client.datasources().collect(),
        // Workbooks and views are converted to the compact model as they stream in: at 100k
        // workbooks the full XML records would hold several hundred MB.
        client.workbooks().stream().map_ok(workbook_model).try_collect::<Vec<site::Workbook>>(),
        client
            .views(true)
            .stream()
            .try_filter_map(|v| async move {
                let Some(wb) = v.workbook.as_ref().and_then(|w| w.id.clone()) else { return Ok(None) };
                Ok(Some((
                    wb,
                    site::View {
                        last_viewed_at: None,
                        id: v.id.unwrap_or_default(),
                        name: v.name.unwrap_or_default(),
                        total_views: v.usage.and_then(|u| u.total_view_count.parse().ok()).unwrap_or(0),
                        tags: v.tags.map(|t| t.labels()).unwrap_or_default(),
                        sheet_type: v.sheet_type.unwrap_or_default(),
                    },
                )))
            })
            .try_collect::<Vec<(String, site::View)>>(),
        client.subscriptions().collect(),
        client.webhooks().collect(),
        client.data_alerts().collect(),
    )?;
    let session = client.session().await;

    // Group members.
    let members: Vec<(String, Vec<String>)> = futures::stream::iter(groups.iter().filter_map(|g| g.id.clone()))
        .map(|gid| async move {
            let m = client.group_members(&gid.as_str().into()).collect().await?;
            Ok::<_, crate::Error>((gid, m.into_iter().filter_map(|u| u.id).collect()))
        })
        .buffered(conc)
        .try_collect()
        .await?;
    let members: HashMap<String, Vec<String>> = members.into_iter().collect();

    // Permissions.
    let mut targets: Vec<(ContentKind, String)> = Vec::new();
    targets.extend(projects.iter().filter_map(|p| p.id.clone()).map(|id| (ContentKind::Project, id)));
    targets.extend(workbooks.iter().map(|w| (ContentKind::Workbook, w.id.clone())));
    targets.extend(datasources.iter().filter_map(|d| d.id.clone()).map(|id| (ContentKind::Datasource, id)));
    let tabbed: HashMap<&str, bool> = workbooks.iter().map(|w| (w.id.as_str(), w.show_tabs)).collect();
    for (wb, v) in &views {
        if !tabbed.get(wb.as_str()).copied().unwrap_or(true) {
            targets.push((ContentKind::View, v.id.clone()));
        }
    }
    let permissions: Vec<Vec<site::PermissionRule>> = futures::stream::iter(targets)
        .map(|(kind, id)| async move {
            let caps = client.permissions(kind, &id).await?;
            Ok::<_, crate::Error>(rules(kind.singular(), &id, caps))
        })
        .buffered(conc)
        .try_collect()
        .await?;

    // Default permissions.
    let defaults: Vec<Vec<site::DefaultPermissionRule>> =
        futures::stream::iter(projects.iter().filter_map(|p| p.id.clone()))
            .flat_map(|pid| futures::stream::iter(["workbooks", "datasources"].map(move |ct| (pid.clone(), ct))))
            .map(|(pid, ct)| async move {
                let caps = client.default_permissions(&pid.as_str().into(), ct).await?;
                Ok::<_, crate::Error>(
                    rules("project", &pid, caps)
                        .into_iter()
                        .map(|r| site::DefaultPermissionRule {
                            project_id: pid.clone(),
                            content_type: ct.into(),
                            grantee: r.grantee,
                            capabilities: r.capabilities,
                        })
                        .collect(),
                )
            })
            .buffered(conc)
            .try_collect()
            .await?;

    // Datasource connections.
    let connections: Vec<(String, Option<xml::Connection>)> =
        futures::stream::iter(datasources.iter().filter_map(|d| d.id.clone()))
            .map(|id| async move {
                let c = client.datasource_connections(&id.as_str().into()).await?;
                Ok::<_, crate::Error>((id, c.into_iter().next()))
            })
            .buffered(conc)
            .try_collect()
            .await?;
    let connections: HashMap<String, Option<xml::Connection>> = connections.into_iter().collect();

    // Lineage and fields.
    let (ds_lineage, wb_lineage) = futures::try_join!(client.datasource_lineage(), client.workbook_lineage())?;
    let ds_lineage: HashMap<String, crate::metadata::DatasourceLineage> =
        ds_lineage.into_iter().map(|d| (d.luid.clone(), d)).collect();
    let wb_lineage: HashMap<String, crate::metadata::WorkbookLineage> =
        wb_lineage.into_iter().map(|w| (w.luid.clone(), w)).collect();

    // Last access.
    let usage = if options.usage { AdminInsights { include_workbooks: false }.read(client).await.ok() } else { None };
    let last = |id: &str| usage.as_ref().and_then(|u| u.items.get(id)).and_then(|i| i.last_access);
    let ds_last = |id: &str| {
        usage
            .as_ref()
            .and_then(|u| u.items.get(id))
            .filter(|i| i.kind == ItemKind::Datasource)
            .and_then(|i| i.last_access)
    };

    let mut views_by_wb: HashMap<String, Vec<site::View>> = HashMap::new();
    for (wb, mut v) in views {
        v.last_viewed_at = last(&v.id);
        views_by_wb.entry(wb).or_default().push(v);
    }
    let mb = |s: &Option<String>| s.as_deref().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0) * 1024 * 1024;

    let now = Utc::now();
    Ok(site::Site {
        format: site::FORMAT.into(),
        now,
        site: site::SiteInfo {
            id: session.site_id.clone(),
            name: client.config().site.clone(),
            content_url: client.config().site.clone(),
        },
        users: users
            .into_iter()
            .map(|u| site::User {
                id: u.id.unwrap_or_default(),
                name: u.name.unwrap_or_default(),
                full_name: u.full_name.unwrap_or_default(),
                email: u.email.unwrap_or_default(),
                site_role: u.site_role.unwrap_or_default(),
                last_login: time(&u.last_login),
                auth_setting: u.auth_setting.filter(|a| a != "ServerDefault"),
            })
            .collect(),
        groups: groups
            .into_iter()
            .map(|g| {
                let id = g.id.unwrap_or_default();
                site::Group {
                    members: members.get(&id).cloned().unwrap_or_default(),
                    id,
                    name: g.name.unwrap_or_default(),
                    minimum_site_role: g.minimum_site_role,
                }
            })
            .collect(),
        projects: projects
            .into_iter()
            .map(|p| site::Project {
                id: p.id.unwrap_or_default(),
                name: p.name.unwrap_or_default(),
                parent_id: p.parent_project_id.filter(|x| !x.is_empty()),
                owner_id: p.owner.and_then(|o| o.id).unwrap_or_default(),
                content_permissions: p.content_permissions.unwrap_or_else(|| "ManagedByOwner".into()),
                description: p.description.unwrap_or_default(),
                created_at: time(&p.created_at),
                updated_at: time(&p.updated_at),
            })
            .collect(),
        datasources: datasources
            .into_iter()
            .map(|d| {
                let id = d.id.clone().unwrap_or_default();
                let lin = ds_lineage.get(&id);
                let table = lin.and_then(|l| l.upstream_tables.first()).cloned().unwrap_or_default();
                let conn = connections.get(&id).cloned().flatten().unwrap_or_default();
                site::Datasource {
                    name: d.name.unwrap_or_default(),
                    project_id: d.project.and_then(|p| p.id).unwrap_or_default(),
                    owner_id: d.owner.and_then(|o| o.id).unwrap_or_default(),
                    tags: d.tags.map(|t| t.labels()).unwrap_or_default(),
                    certified: xml::parse_bool(d.is_certified.as_deref()).unwrap_or(false),
                    certification_note: d.certification_note.filter(|n| !n.is_empty()),
                    updated_at: time(&d.updated_at).unwrap_or(now),
                    connection: site::Connection {
                        kind: d.kind.clone().unwrap_or_default(),
                        server: conn.server_address.unwrap_or_default(),
                        database: table.0,
                        table: table.2,
                        custom_sql: None,
                        id: conn.id.unwrap_or_default(),
                        port: conn.server_port.unwrap_or_default(),
                        username: conn.user_name.unwrap_or_default(),
                    },
                    fields: lin.map(|l| l.fields.clone()).unwrap_or_default(),
                    content_url: d.content_url.unwrap_or_default(),
                    description: d.description.unwrap_or_default(),
                    created_at: time(&d.created_at),
                    has_extracts: xml::parse_bool(d.has_extracts.as_deref()).unwrap_or(false),
                    size: mb(&d.size),
                    total_hits: 0,
                    last_accessed_at: ds_last(&id),
                    id,
                }
            })
            .collect(),
        workbooks: workbooks
            .into_iter()
            .map(|mut w| {
                if let Some(lin) = wb_lineage.get(&w.id) {
                    w.datasource_ids = lin.datasources.clone();
                    w.fields_used = lin.fields_used.clone();
                }
                w.views = views_by_wb.remove(&w.id).unwrap_or_default();
                w
            })
            .collect(),
        permissions: permissions.into_iter().flatten().collect(),
        subscriptions: subscriptions
            .into_iter()
            .map(|s| {
                let c = s.content.unwrap_or_default();
                site::Subscription {
                    id: s.id.unwrap_or_default(),
                    user_id: s.user.and_then(|u| u.id).unwrap_or_default(),
                    content: site::ResourceRef { kind: c.kind.to_lowercase(), id: c.id },
                    subject: s.subject.unwrap_or_default(),
                    schedule: s.schedule.and_then(|x| x.name).unwrap_or_default(),
                }
            })
            .collect(),
        default_permissions: defaults.into_iter().flatten().collect(),
        webhooks: webhooks
            .into_iter()
            .map(|h| site::Webhook {
                id: h.id.unwrap_or_default(),
                name: h.name.unwrap_or_default(),
                event: h
                    .source
                    .and_then(|s| s.events.first().map(|e| e.name().to_string()))
                    .or(h.event)
                    .unwrap_or_default(),
                url: h.destination.map(|d| d.http.url).unwrap_or_default(),
                owner_id: h.owner.and_then(|o| o.id).unwrap_or_default(),
                enabled: xml::parse_bool(h.is_enabled.as_deref()).unwrap_or(true),
            })
            .collect(),
        favorites: vec![],
        data_alerts: alerts
            .into_iter()
            .map(|a| site::DataAlert {
                id: a.id,
                subject: a.subject.unwrap_or_default(),
                owner_id: a.owner.and_then(|o| o.id).unwrap_or_default(),
                view_id: a.view.and_then(|v| v.id).unwrap_or_default(),
                recipients: vec![],
            })
            .collect(),
    })
}
