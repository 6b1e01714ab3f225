//! `tabflow site snapshot`: any live site (real or emulated) → `tabflow-site/1`, read through
//! the API with as few calls as the content allows.
//!
//! Calls: one paged list each for users, groups, projects, datasources, workbooks, flows (API
//! 3.3+), views (with usage), subscriptions, webhooks and data alerts; members per group;
//! permissions per project, workbook, datasource and flow, and per view only where the
//! workbook does not show tabs (with tabs shown, views take the workbook's permissions);
//! connections per
//! datasource; two paged Metadata API queries for fields and lineage; default permissions
//! per project for workbooks and datasources; Admin Insights for last access when present;
//! schedules (server-wide), extract refresh tasks, each Extract schedule's extracts list and
//! each extract refresh job (`GET /jobs/{id}`, for its content and notes) when the user is an
//! administrator.
//! Not read: users' favorites (one call per user) and custom SQL text.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use tabflow_site as site;
use tabflow_site::stream::SiteWriter;
use tabflow_wire::xml;

use crate::client::Client;
use crate::error::Result;
use crate::resources::{Capability, ContentKind, Grantee};
use crate::usage::{AdminInsights, ItemKind};

fn time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref().and_then(crate::usage::parse_time)
}

pub(crate) fn rules(kind: &str, id: &str, caps: Vec<Capability>) -> Vec<site::PermissionRule> {
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

/// A project's default permission rules for one content type (`workbooks`, `datasources`).
pub(crate) async fn default_rules(client: &Client, pid: &str, ct: &str) -> Result<Vec<site::DefaultPermissionRule>> {
    let caps = client.default_permissions(&pid.into(), ct).await?;
    Ok(rules("project", pid, caps)
        .into_iter()
        .map(|r| site::DefaultPermissionRule {
            project_id: pid.to_string(),
            content_type: ct.into(),
            grantee: r.grantee,
            capabilities: r.capabilities,
        })
        .collect())
}

fn mb(s: &Option<String>) -> u64 {
    s.as_deref().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0) * 1024 * 1024
}

fn user_model(u: xml::User) -> site::User {
    site::User {
        id: u.id.unwrap_or_default(),
        name: u.name.unwrap_or_default(),
        full_name: u.full_name.unwrap_or_default(),
        email: u.email.unwrap_or_default(),
        site_role: u.site_role.unwrap_or_default(),
        last_login: time(&u.last_login),
        auth_setting: u.auth_setting.filter(|a| a != "ServerDefault"),
    }
}

fn project_model(p: xml::Project) -> site::Project {
    site::Project {
        id: p.id.unwrap_or_default(),
        name: p.name.unwrap_or_default(),
        parent_id: p.parent_project_id.filter(|x| !x.is_empty()),
        owner_id: p.owner.and_then(|o| o.id).unwrap_or_default(),
        content_permissions: p.content_permissions.unwrap_or_else(|| "ManagedByOwner".into()),
        description: p.description.unwrap_or_default(),
        created_at: time(&p.created_at),
        updated_at: time(&p.updated_at),
    }
}

fn subscription_model(s: xml::Subscription) -> site::Subscription {
    let c = s.content.unwrap_or_default();
    site::Subscription {
        id: s.id.unwrap_or_default(),
        user_id: s.user.and_then(|u| u.id).unwrap_or_default(),
        content: site::ResourceRef { kind: c.kind.to_lowercase(), id: c.id },
        subject: s.subject.unwrap_or_default(),
        schedule: s.schedule.and_then(|x| x.name).unwrap_or_default(),
        suspended: s.suspended.as_deref() == Some("true"),
    }
}

fn webhook_model(h: xml::Webhook) -> site::Webhook {
    site::Webhook {
        id: h.id.unwrap_or_default(),
        name: h.name.unwrap_or_default(),
        event: h.source.and_then(|s| s.events.first().map(|e| e.name().to_string())).or(h.event).unwrap_or_default(),
        url: h.destination.map(|d| d.http.url).unwrap_or_default(),
        owner_id: h.owner.and_then(|o| o.id).unwrap_or_default(),
        enabled: xml::parse_bool(h.is_enabled.as_deref()).unwrap_or(true),
    }
}

fn alert_model(a: xml::DataAlert) -> site::DataAlert {
    site::DataAlert {
        id: a.id,
        subject: a.subject.unwrap_or_default(),
        owner_id: a.owner.and_then(|o| o.id).unwrap_or_default(),
        view_id: a.view.and_then(|v| v.id).unwrap_or_default(),
        recipients: a.recipients.map(|r| r.recipient.into_iter().filter_map(|u| u.id).collect()).unwrap_or_default(),
    }
}

pub(crate) fn workbook_model(w: xml::Workbook) -> site::Workbook {
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

/// A view as listed (with usage statistics when asked for); last access comes later.
pub(crate) fn view_model(v: xml::View) -> site::View {
    site::View {
        last_viewed_at: None,
        id: v.id.unwrap_or_default(),
        name: v.name.unwrap_or_default(),
        total_views: v.usage.and_then(|u| u.total_view_count.parse().ok()).unwrap_or(0),
        tags: v.tags.map(|t| t.labels()).unwrap_or_default(),
        sheet_type: v.sheet_type.unwrap_or_default(),
    }
}

fn flow_model(f: xml::Flow) -> site::Flow {
    let now = Utc::now();
    site::Flow {
        created_at: time(&f.created_at).unwrap_or(now),
        updated_at: time(&f.updated_at).unwrap_or(now),
        id: f.id.unwrap_or_default(),
        name: f.name.unwrap_or_default(),
        project_id: f.project.and_then(|p| p.id).unwrap_or_default(),
        owner_id: f.owner.and_then(|o| o.id).unwrap_or_default(),
        tags: f.tags.map(|t| t.labels()).unwrap_or_default(),
        description: f.description.unwrap_or_default(),
        file_type: f.file_type.unwrap_or_default(),
    }
}

/// Whether a negotiated REST API version (`3.25`) has the flow methods (3.3+).
fn has_flows(api_version: &str) -> bool {
    let mut parts = api_version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (3, 3)
}

/// What a snapshot through the API cannot read, declared in the snapshot
/// (`SiteInfo::not_read`) so that `site diff` against a complete one does not report it:
/// sizes (REST gives whole MB), favorites (one `GET /favorites/{user}` per user; not read).
pub const NOT_READ: &[&str] = &["workbook.size", "datasource.size", "favorite"];
/// Declared as well when the site has extract refresh tasks with a schedule of their own
/// (Cloud style): the REST answer gives their type as `RefreshExtractTask`, not full or
/// incremental, so it reads as `FullRefresh`.
pub const NOT_READ_OWN_SCHEDULE_TYPE: &str = "extract-refresh.type";

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

/// What a snapshot was written from: counts and API calls, for the command's summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub workbooks: usize,
    pub flows: usize,
    pub datasources: usize,
    pub users: usize,
    pub groups: usize,
    pub projects: usize,
    pub permission_rules: usize,
    pub subscriptions: usize,
}

/// Failure of [`write`]: reading the site, or writing the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Tableau(#[from] crate::Error),
    #[error("{0}")]
    Output(#[from] std::io::Error),
}

/// Reads the whole site into memory.
pub async fn take(client: &Client, options: &Options) -> Result<site::Site> {
    collect(client, options, &PerItem::ALL).await
}

/// Which of the per-item reads [`gather`] makes; the paged lists are always read.
#[derive(Debug, Clone)]
pub(crate) struct PerItem {
    /// Permissions per project, workbook, datasource, untabbed view and flow.
    pub permissions: bool,
    /// Members per group.
    pub members: bool,
    /// Default permissions per project.
    pub defaults: bool,
    /// Connections per datasource.
    pub connections: bool,
    /// The two Metadata API queries (lineage and fields of every workbook and datasource).
    pub lineage: bool,
    /// Workbooks, views and workbook lineage only in projects of these names (server-side
    /// filters `projectName:in:[…]` and `projectNameWithin`); `None` = all.
    pub within: Option<Vec<String>>,
    /// The view list and the workbooks' lineage (false: the workbooks come without views and
    /// lineage, which the caller fills in — the site cache, [`crate::cache`]).
    pub views: bool,
    /// Extract refresh schedules, tasks and jobs: whole-site snapshots read them; a plan's
    /// scoped read does not.
    pub details: bool,
    /// Each data alert's details (its recipients), one call per alert.
    pub alerts: bool,
}

impl PerItem {
    pub(crate) const ALL: PerItem = PerItem {
        permissions: true,
        members: true,
        defaults: true,
        connections: true,
        lineage: true,
        within: None,
        views: true,
        details: true,
        alerts: true,
    };
}

/// The site in memory, with only the per-item reads `per_item` asks for.
pub(crate) async fn collect(client: &Client, options: &Options, per_item: &PerItem) -> Result<site::Site> {
    let mut sink = Collect::default();
    match gather(client, options, per_item, &mut sink).await {
        Ok(()) => {}
        Err(WriteError::Tableau(e)) => return Err(e),
        Err(WriteError::Output(_)) => unreachable!("collecting in memory writes nothing"),
    }
    sink.site.ok_or_else(|| crate::Error::Config("the snapshot ended without its first sections".into()))
}

/// Reads the whole site and writes it to `out` as `tabflow-site/1`, streaming: permission
/// rules go to the output as they arrive and each section is released once written, so the
/// peak memory is about the workbooks with their views rather than the whole site. The bytes
/// are those [`take`] followed by [`site::Site::write_json`] would give.
pub async fn write<W: std::io::Write>(
    client: &Client,
    options: &Options,
    out: W,
) -> std::result::Result<Summary, WriteError> {
    let mut sink = Stream { writer: None, out: Some(out), summary: Summary::default() };
    gather(client, options, &PerItem::ALL, &mut sink).await?;
    Ok(sink.summary)
}

/// The sections up to `workbooks`, complete.
struct Head {
    now: DateTime<Utc>,
    site: site::SiteInfo,
    users: Vec<site::User>,
    groups: Vec<site::Group>,
    projects: Vec<site::Project>,
    datasources: Vec<site::Datasource>,
    workbooks: Vec<site::Workbook>,
    flows: Vec<site::Flow>,
}

/// The sections after `permissions`.
struct Tail {
    subscriptions: Vec<site::Subscription>,
    default_permissions: Vec<site::DefaultPermissionRule>,
    webhooks: Vec<site::Webhook>,
    data_alerts: Vec<site::DataAlert>,
    schedules: Vec<site::Schedule>,
    extract_refreshes: Vec<site::ExtractRefresh>,
    refresh_jobs: Vec<site::RefreshJob>,
}

/// Where the sections go, in document order: head, then permission rules target by target,
/// then tail.
trait Sink {
    fn head(&mut self, head: Head) -> std::io::Result<()>;
    fn rules(&mut self, rules: Vec<site::PermissionRule>) -> std::io::Result<()>;
    fn tail(&mut self, tail: Tail) -> std::io::Result<()>;
}

#[derive(Default)]
struct Collect {
    site: Option<site::Site>,
}

impl Sink for Collect {
    fn head(&mut self, h: Head) -> std::io::Result<()> {
        self.site = Some(site::Site {
            format: site::FORMAT.into(),
            now: h.now,
            site: h.site,
            users: h.users,
            groups: h.groups,
            projects: h.projects,
            datasources: h.datasources,
            workbooks: h.workbooks,
            flows: h.flows,
            permissions: vec![],
            subscriptions: vec![],
            default_permissions: vec![],
            webhooks: vec![],
            favorites: vec![],
            data_alerts: vec![],
            schedules: vec![],
            extract_refreshes: vec![],
            refresh_jobs: vec![],
        });
        Ok(())
    }
    fn rules(&mut self, rules: Vec<site::PermissionRule>) -> std::io::Result<()> {
        if let Some(s) = &mut self.site {
            s.permissions.extend(rules);
        }
        Ok(())
    }
    fn tail(&mut self, t: Tail) -> std::io::Result<()> {
        if let Some(s) = &mut self.site {
            s.subscriptions = t.subscriptions;
            s.default_permissions = t.default_permissions;
            s.webhooks = t.webhooks;
            s.data_alerts = t.data_alerts;
            s.schedules = t.schedules;
            s.extract_refreshes = t.extract_refreshes;
            s.refresh_jobs = t.refresh_jobs;
        }
        Ok(())
    }
}

struct Stream<W: std::io::Write> {
    out: Option<W>,
    writer: Option<SiteWriter<W>>,
    summary: Summary,
}

fn not_started() -> std::io::Error {
    std::io::Error::other("the snapshot writer was used before its first sections")
}

impl<W: std::io::Write> Sink for Stream<W> {
    fn head(&mut self, h: Head) -> std::io::Result<()> {
        let out = self.out.take().ok_or_else(not_started)?;
        let mut w = SiteWriter::new(out, site::FORMAT, h.now, &h.site)?;
        self.summary = Summary {
            workbooks: h.workbooks.len(),
            flows: h.flows.len(),
            datasources: h.datasources.len(),
            users: h.users.len(),
            groups: h.groups.len(),
            projects: h.projects.len(),
            ..Summary::default()
        };
        // Each section is dropped item by item as it is written.
        w.section("users", h.users)?;
        w.section("groups", h.groups)?;
        w.section("projects", h.projects)?;
        w.section("datasources", h.datasources)?;
        w.section("workbooks", h.workbooks)?;
        w.section("flows", h.flows)?;
        w.begin("permissions")?;
        self.writer = Some(w);
        Ok(())
    }
    fn rules(&mut self, rules: Vec<site::PermissionRule>) -> std::io::Result<()> {
        let w = self.writer.as_mut().ok_or_else(not_started)?;
        self.summary.permission_rules += rules.len();
        rules.iter().try_for_each(|r| w.item(r))
    }
    fn tail(&mut self, t: Tail) -> std::io::Result<()> {
        let mut w = self.writer.take().ok_or_else(not_started)?;
        self.summary.subscriptions = t.subscriptions.len();
        w.end()?;
        w.section("subscriptions", t.subscriptions)?;
        w.section("default_permissions", t.default_permissions)?;
        w.section("webhooks", t.webhooks)?;
        w.section("favorites", Vec::<site::Favorite>::new())?;
        w.section("data_alerts", t.data_alerts)?;
        w.section("schedules", t.schedules)?;
        w.section("extract_refreshes", t.extract_refreshes)?;
        w.section("refresh_jobs", t.refresh_jobs)?;
        w.finish()?.flush()
    }
}

/// Aborts the spawned permission reader when the snapshot ends early.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Rules of one target, or the error that ended the permission reader.
type RulesMsg = Result<Vec<site::PermissionRule>>;

/// How many targets' rules may wait for the writer (the reader runs ahead while the other
/// sections are still being read).
const RULES_AHEAD: usize = 4096;

/// Reads the site and hands it to `sink` in document order.
///
/// Phase 1 pages every list at once (workbooks and views converted to the compact model as
/// pages arrive). Phase 2 starts a permission reader (project, workbook, datasource and
/// untabbed-view permissions, in document order, into a bounded channel) and, alongside it,
/// group members, datasource connections, default permissions, the two Metadata API queries
/// and Admin Insights. All of them share the client's concurrency cap, so the phases overlap
/// instead of waiting for each other. Once phase 2 is done the head sections are written and
/// the permission rules follow as they come.
async fn gather(
    client: &Client,
    options: &Options,
    per_item: &PerItem,
    sink: &mut dyn Sink,
) -> std::result::Result<(), WriteError> {
    let conc = client.config().read_concurrency.max(1) * 2;
    let now = Utc::now();

    // Phase 1: the lists.
    let within = per_item.within.as_ref().map(|names| tabflow_wire::filter::Filter::new().and_in("projectName", names));
    let views_list = match &within {
        Some(f) => client.views(true).filter(f.clone()),
        None => client.views(true),
    };
    let workbooks_list = match &within {
        Some(f) => client.workbooks().filter(f.clone()),
        None => client.workbooks(),
    };
    // Without `views` the list is not asked for at all.
    let views_stream = if per_item.views { views_list.stream().boxed() } else { futures::stream::empty().boxed() };
    let views_grouped = views_stream.try_fold(
        (HashMap::<String, (Vec<site::View>, Vec<u32>)>::new(), 0u32),
        |(mut by_wb, seq), v| async move {
            if let Some(wb) = v.workbook.as_ref().and_then(|w| w.id.clone()) {
                let e = by_wb.entry(wb).or_default();
                e.0.push(view_model(v));
                e.1.push(seq);
            }
            Ok((by_wb, seq + 1))
        },
    );
    // Servers older than API 3.3 have no flow methods: such a site has no flows to read.
    let flows = async {
        if has_flows(&client.session().await.api_version) {
            client.flows().stream().map_ok(flow_model).try_collect::<Vec<_>>().await
        } else {
            Ok(Vec::new())
        }
    };
    // The Metadata API's lineage needs none of the lists: it is read along with them.
    let lineage = async {
        if !per_item.lineage {
            return Ok((HashMap::new(), HashMap::new(), HashMap::new()));
        }
        let workbooks = async {
            if per_item.views {
                client.workbook_lineage_within(per_item.within.as_deref()).await
            } else {
                Ok(Vec::new())
            }
        };
        let (ds, wb, sql) = futures::try_join!(client.datasource_lineage(), workbooks, client.custom_sql())?;
        Ok::<_, crate::Error>((
            ds.into_iter().map(|d| (d.luid.clone(), d)).collect::<HashMap<_, _>>(),
            wb.into_iter().map(|w| (w.luid.clone(), w)).collect::<HashMap<_, _>>(),
            sql.into_iter().collect::<HashMap<_, _>>(),
        ))
    };
    let (
        users,
        groups,
        projects,
        datasources,
        mut workbooks,
        flows,
        (mut views_by_wb, _),
        subscriptions,
        webhooks,
        alerts,
        (schedules, extract_refreshes, refresh_jobs),
        (ds_lineage, wb_lineage, custom_sql),
        site_info,
        usage,
    ) = futures::try_join!(
        client.users().stream().map_ok(user_model).try_collect::<Vec<_>>(),
        client.groups().collect(),
        client.projects().stream().map_ok(project_model).try_collect::<Vec<_>>(),
        client.datasources().collect(),
        workbooks_list.stream().map_ok(workbook_model).try_collect::<Vec<site::Workbook>>(),
        flows,
        views_grouped,
        client.subscriptions().collect(),
        client.webhooks().collect(),
        client.data_alerts().collect(),
        async { if per_item.details { crate::refreshes::read(client).await } else { Ok((vec![], vec![], vec![])) } },
        lineage,
        // The site's display name, read along with the lists rather than after them: one
        // round trip less before a plan or an apply's re-validation (issue #15).
        client.site_info(),
        // Last access needs none of the lists either (issue #15: at 100k workbooks the
        // Admin Insights answer took as long as the lists, and came after them).
        async { Ok(fetch_last_access(client, options, per_item.within.as_deref()).await) },
    )?;
    // The list leaves recipients out: each alert's details (`GET /dataAlerts/{id}`) carry them.
    let alerts: Vec<xml::DataAlert> = futures::stream::iter(alerts)
        .map(|a| async move {
            if !per_item.alerts {
                return Ok(a);
            }
            let detail = client.data_alert(&a.id).await?;
            Ok::<_, crate::Error>(xml::DataAlert { recipients: detail.recipients, ..a })
        })
        .buffered(conc)
        .try_collect()
        .await?;

    // Views into their workbooks; untabbed workbooks' views in the order the list gave them.
    let mut untabbed: Vec<(u32, String)> = Vec::new();
    for w in &mut workbooks {
        if let Some((mut views, seqs)) = views_by_wb.remove(&w.id) {
            if !w.show_tabs {
                untabbed.extend(seqs.into_iter().zip(views.iter().map(|v| v.id.clone())));
            }
            views.shrink_to_fit(); // a few views per workbook: growth slack would be ~40 %
            w.views = views;
        }
    }
    drop(views_by_wb);
    untabbed.sort_unstable_by_key(|(seq, _)| *seq);

    // Phase 2: the permission reader, spawned so that it runs while the rest is read.
    let mut targets: Vec<(ContentKind, String)> =
        Vec::with_capacity(projects.len() + workbooks.len() + datasources.len() + untabbed.len() + flows.len());
    targets.extend(projects.iter().map(|p| (ContentKind::Project, p.id.clone())));
    targets.extend(workbooks.iter().map(|w| (ContentKind::Workbook, w.id.clone())));
    targets.extend(datasources.iter().filter_map(|d| d.id.clone()).map(|id| (ContentKind::Datasource, id)));
    targets.extend(untabbed.into_iter().map(|(_, id)| (ContentKind::View, id)));
    targets.extend(flows.iter().map(|f| (ContentKind::Flow, f.id.clone())));
    if !per_item.permissions {
        targets = Vec::new();
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RulesMsg>(RULES_AHEAD);
    let reader = client.clone();
    let _reader = AbortOnDrop(tokio::spawn(async move {
        let mut rules = futures::stream::iter(targets)
            .map(|(kind, id)| {
                let c = reader.clone();
                // A task of its own per call: a call holds one of the client's permits while
                // it runs, and must finish (releasing it) even while this reader waits for
                // room in the channel, or the other reads would starve.
                let call = tokio::spawn(async move {
                    let caps = c.permissions(kind, &id).await?;
                    Ok(rules(kind.singular(), &id, caps))
                });
                async move {
                    call.await
                        .unwrap_or_else(|e| Err(crate::Error::Config(format!("the permission reader stopped: {e}"))))
                }
            })
            .buffered(conc);
        while let Some(r) = rules.next().await {
            let failed = r.is_err();
            if tx.send(r).await.is_err() || failed {
                return;
            }
        }
    }));

    let members = futures::stream::iter(groups.iter().filter(|_| per_item.members).filter_map(|g| g.id.clone()))
        .map(|gid| async move {
            let m = client.group_members(&gid.as_str().into()).collect().await?;
            Ok::<_, crate::Error>((gid, m.into_iter().filter_map(|u| u.id).collect::<Vec<String>>()))
        })
        .buffered(conc)
        .try_collect::<HashMap<String, Vec<String>>>();
    let defaults = futures::stream::iter(projects.iter().filter(|_| per_item.defaults).map(|p| p.id.clone()))
        .flat_map(|pid| futures::stream::iter(["workbooks", "datasources"].map(move |ct| (pid.clone(), ct))))
        .map(|(pid, ct)| async move { default_rules(client, &pid, ct).await })
        .buffered(conc)
        .try_collect::<Vec<_>>();
    let connections =
        futures::stream::iter(datasources.iter().filter(|_| per_item.connections).filter_map(|d| d.id.clone()))
            .map(|id| async move {
                let c = client.datasource_connections(&id.as_str().into()).await?;
                Ok::<_, crate::Error>((id, c.into_iter().next()))
            })
            .buffered(conc)
            .try_collect::<HashMap<String, Option<xml::Connection>>>();
    let (members, defaults, connections) = futures::try_join!(members, defaults, connections)?;
    let (view_last, ds_last) = match_last_access(usage, &workbooks);

    for (wi, vi, t) in view_last {
        workbooks[wi as usize].views[vi as usize].last_viewed_at = t;
    }
    let mut wb_lineage = wb_lineage;
    for w in &mut workbooks {
        if let Some(lin) = wb_lineage.remove(&w.id) {
            w.datasource_ids = lin.datasources;
            w.fields_used = lin.fields_used;
        }
    }
    drop(wb_lineage);
    let mut members = members;
    let groups = groups
        .into_iter()
        .map(|g| {
            let id = g.id.unwrap_or_default();
            site::Group {
                members: members.remove(&id).unwrap_or_default(),
                id,
                name: g.name.unwrap_or_default(),
                minimum_site_role: g.minimum_site_role,
            }
        })
        .collect();
    let datasources = datasources
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
                    // `schema.table` as the connection names it; the Metadata API splits it.
                    table: if table.1.is_empty() { table.2 } else { format!("{}.{}", table.1, table.2) },
                    custom_sql: custom_sql.get(&id).cloned(),
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
                last_accessed_at: ds_last.get(id.as_str()).copied(),
                id,
            }
        })
        .collect();
    drop((ds_lineage, connections, ds_last, custom_sql));

    let session = client.session().await;
    // The site's display name ("Demo"), not its content URL ("demo"), from `GET /sites/{id}`.
    let site_name = site_info.name.unwrap_or_else(|| client.config().site.clone());
    sink.head(Head {
        now,
        site: site::SiteInfo {
            id: session.site_id.clone(),
            name: site_name,
            not_read: NOT_READ
                .iter()
                .copied()
                .chain(extract_refreshes.iter().any(|t| t.own_schedule.is_some()).then_some(NOT_READ_OWN_SCHEDULE_TYPE))
                .map(str::to_string)
                .collect(),
            content_url: client.config().site.clone(),
        },
        users,
        groups,
        projects,
        datasources,
        workbooks,
        flows,
    })?;
    while let Some(r) = rx.recv().await {
        sink.rules(r?)?;
    }
    sink.tail(Tail {
        subscriptions: subscriptions.into_iter().map(subscription_model).collect(),
        default_permissions: defaults.into_iter().flatten().collect(),
        webhooks: webhooks.into_iter().map(webhook_model).collect(),
        data_alerts: alerts.into_iter().map(alert_model).collect(),
        schedules,
        extract_refreshes,
        refresh_jobs,
    })?;
    Ok(())
}

/// The Admin Insights answers for last access (when asked for and present; see
/// [`AdminInsights::site_content`]); `None` on a site without Admin Insights (Tableau Server),
/// which has no last access: not an error. It needs none of the lists, so a snapshot reads it
/// along with them and matches it with them afterwards ([`match_last_access`]).
pub(crate) async fn fetch_last_access(
    client: &Client,
    options: &Options,
    within: Option<&[String]>,
) -> Option<Vec<crate::client::Response>> {
    if !options.usage {
        return None;
    }
    AdminInsights::site_content(client, within).await.ok()
}

/// Last access from Admin Insights answers: for views as (workbook index, view index, time),
/// for datasources by id. Rows are matched as they are parsed.
pub(crate) fn match_last_access(
    answers: Option<Vec<crate::client::Response>>,
    workbooks: &[site::Workbook],
) -> (Vec<(u32, u32, Option<DateTime<Utc>>)>, HashMap<String, DateTime<Utc>>) {
    let mut views = Vec::new();
    let mut datasources = HashMap::new();
    let Some(answers) = answers else { return (views, datasources) };
    let index: HashMap<&str, (u32, u32)> = workbooks
        .iter()
        .enumerate()
        .flat_map(|(wi, w)| w.views.iter().enumerate().map(move |(vi, v)| (v.id.as_str(), (wi as u32, vi as u32))))
        .collect();
    for answer in &answers {
        let read = AdminInsights::each_row(answer, |id, kind, last| {
            // As a report keyed by id would give: the last row for an id wins, whatever its kind.
            if let Some(&(wi, vi)) = index.get(id) {
                views.push((wi, vi, last));
            }
            match (kind, last) {
                (ItemKind::Datasource, Some(t)) => {
                    datasources.insert(id.to_string(), t);
                }
                _ => {
                    datasources.remove(id);
                }
            }
        });
        if read.is_err() {
            return (Vec::new(), HashMap::new());
        }
    }
    (views, datasources)
}

/// [`fetch_last_access`], then [`match_last_access`].
pub(crate) async fn last_access(
    client: &Client,
    options: &Options,
    workbooks: &[site::Workbook],
    within: Option<&[String]>,
) -> (Vec<(u32, u32, Option<DateTime<Utc>>)>, HashMap<String, DateTime<Utc>>) {
    match_last_access(fetch_last_access(client, options, within).await, workbooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_read_from_api_3_3_on() {
        for (v, yes) in [("3.3", true), ("3.25", true), ("4.0", true), ("3.2", false), ("2.8", false), ("", false)] {
            assert_eq!(has_flows(v), yes, "{v}");
        }
    }

    #[test]
    fn a_tsc_shaped_flow_becomes_the_model() {
        let f = xml::Flow {
            id: Some("f1".into()),
            name: Some("Clean Leads".into()),
            description: Some(String::new()),
            file_type: Some("tflx".into()),
            created_at: Some("2019-06-16T21:43:28Z".into()),
            updated_at: Some("2019-06-18T03:08:19Z".into()),
            project: Some(xml::IdRef::named("p1", "Default")),
            owner: Some(xml::IdRef::id("u1")),
            tags: Some(xml::Tags::from_labels(["etl"])),
            ..xml::Flow::default()
        };
        let m = flow_model(f);
        assert_eq!((m.project_id.as_str(), m.owner_id.as_str(), m.tags.clone()), ("p1", "u1", vec!["etl".to_string()]));
        assert_eq!(m.updated_at.to_rfc3339(), "2019-06-18T03:08:19+00:00");
        assert_eq!(m.file_type, "tflx");
    }
}
