//! Reads driven by a request: the paged lists a plan needs, then per-item reads (permissions,
//! group members, default permissions) only for the items the caller names, with a record of
//! what was read ([`Coverage`]) so that "not read" is never taken for "none".
//!
//! [`take_scoped`] reads the lists (users, groups without members, projects, datasources,
//! workbooks with their views, flows, subscriptions, webhooks, data alerts), the Metadata API
//! lineage and Admin Insights when the [`Scope`] asks for them, and no per-item call.
//! [`read_more`] then reads the permissions of named items, the default permissions of named
//! projects and the members of named groups, and of every group that a rule it read grants
//! to, and merges them into the site. A caller plans, asks which items the plan changes or
//! evaluates, reads those, and plans again until nothing more is needed.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use tabflow_site as site;

use crate::client::Client;
use crate::error::Result;
use crate::resources::ContentKind;
use crate::snapshot::{Options, PerItem};

/// What the first pass of a scoped read reads besides the lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Last access from Admin Insights (when the site has it).
    pub usage: bool,
    /// Lineage and fields from the Metadata API (which workbooks use which datasources).
    pub lineage: bool,
    /// Connections per datasource (server, port, user name): one call per datasource.
    pub connections: bool,
    /// Workbooks and their views (and workbook lineage) only in projects of these names;
    /// `None` = every workbook. The site then holds no other workbook: for requests that
    /// look at these projects only.
    pub within: Option<Vec<String>>,
    /// Each data alert's recipients (one call per alert).
    pub alerts: bool,
}

/// Which per-item reads a site holds. A resource whose id is not in `permissions` has rules
/// that were not read (not: no rules); likewise for group members and project defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Every per-item read was made (a whole-site snapshot).
    pub full: bool,
    /// Resources (project, workbook, datasource, view, flow ids) whose permissions were read.
    pub permissions: HashSet<String>,
    /// Groups whose members were read.
    pub members: HashSet<String>,
    /// Projects whose default permissions (workbooks and datasources) were read.
    pub defaults: HashSet<String>,
    /// The Metadata API lineage was read.
    pub lineage: bool,
    /// Datasource connections were read.
    pub connections: bool,
    /// API calls made for per-item reads (permissions, members, defaults) so far.
    pub per_item_calls: usize,
    /// Workbooks and views were listed only in projects of these names (`None` = all).
    pub within: Option<Vec<String>>,
}

impl Coverage {
    /// Whether the permissions of `id` were read.
    pub fn has_permissions(&self, id: &str) -> bool {
        self.full || self.permissions.contains(id)
    }

    /// Whether the members of group `id` were read.
    pub fn has_members(&self, id: &str) -> bool {
        self.full || self.members.contains(id)
    }

    /// Whether the default permissions of project `id` were read.
    pub fn has_defaults(&self, id: &str) -> bool {
        self.full || self.defaults.contains(id)
    }
}

/// A site read for a request, and what of it was read.
#[derive(Debug, Clone)]
pub struct Scoped {
    pub site: site::Site,
    pub read: Coverage,
}

/// Per-item reads to make: permissions of (kind, id) pairs (kind `project`, `workbook`,
/// `datasource`, `view` or `flow`), default permissions of projects, members of groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub permissions: BTreeSet<(String, String)>,
    pub defaults: BTreeSet<String>,
    pub members: BTreeSet<String>,
}

impl Needs {
    pub fn is_empty(&self) -> bool {
        self.permissions.is_empty() && self.defaults.is_empty() && self.members.is_empty()
    }

    /// Adds the permissions of one item.
    pub fn item(&mut self, kind: &str, id: &str) {
        self.permissions.insert((kind.to_string(), id.to_string()));
    }

    /// Adds everything `other` needs.
    pub fn extend(&mut self, other: Needs) {
        self.permissions.extend(other.permissions);
        self.defaults.extend(other.defaults);
        self.members.extend(other.members);
    }

    /// What of this is not read yet.
    pub fn missing(mut self, read: &Coverage) -> Needs {
        if read.full {
            return Needs::default();
        }
        self.permissions.retain(|(_, id)| !read.permissions.contains(id));
        self.defaults.retain(|id| !read.defaults.contains(id));
        self.members.retain(|id| !read.members.contains(id));
        self
    }
}

fn kind_of(kind: &str) -> Option<ContentKind> {
    Some(match kind {
        "project" => ContentKind::Project,
        "workbook" => ContentKind::Workbook,
        "datasource" => ContentKind::Datasource,
        "view" => ContentKind::View,
        "flow" => ContentKind::Flow,
        _ => return None,
    })
}

/// The whole site, every per-item read made (as [`crate::snapshot::take`]).
pub async fn take_full(client: &Client, usage: bool) -> Result<Scoped> {
    let site = crate::snapshot::take(client, &Options { usage }).await?;
    Ok(Scoped { site, read: Coverage { full: true, lineage: true, connections: true, ..Coverage::default() } })
}

/// The first pass: the lists, plus lineage, usage and connections as `scope` asks; no
/// permissions, no group members, no default permissions.
pub async fn take_scoped(client: &Client, scope: &Scope) -> Result<Scoped> {
    let per_item = PerItem {
        permissions: false,
        members: false,
        defaults: false,
        connections: scope.connections,
        lineage: scope.lineage,
        within: scope.within.clone(),
        views: true,
        details: false,
        alerts: scope.alerts,
    };
    let site = crate::snapshot::collect(client, &Options { usage: scope.usage }, &per_item).await?;
    Ok(Scoped {
        site,
        read: Coverage {
            lineage: scope.lineage,
            connections: scope.connections,
            within: scope.within.clone(),
            ..Coverage::default()
        },
    })
}

/// Per-item reads made before the lists that say whether they are needed have arrived:
/// apply's re-validation knows the items its plan changes, so their permissions, and the
/// members of every group those grant to (each group read as soon as the first rule naming
/// it arrives), are read along with the lists instead of after them (issue #15). Each answer
/// is kept with its outcome, and [`read_more_with`] takes those the lists show are needed:
/// an item that is gone (404) or hidden (403) fails nothing unless the lists still hold it.
#[derive(Debug, Default)]
pub struct Early {
    permissions: HashMap<String, Result<Vec<site::PermissionRule>>>,
    members: HashMap<String, Result<Vec<String>>>,
    calls: usize,
}

impl Early {
    /// API calls made.
    pub fn calls(&self) -> usize {
        self.calls
    }
}

/// One answer of [`read_early`].
enum Answer {
    Rules(String, Result<Vec<site::PermissionRule>>),
    Members(String, Result<Vec<String>>),
}

/// Whether a failed per-item read is about that item only (gone, not visible to the
/// signed-in user, an id the server does not take), so that the lists decide whether it
/// matters; anything else (the server unreachable, 5xx after the retries) ends the early reads.
fn about_the_item(e: &crate::Error) -> bool {
    matches!(e.status(), Some(400 | 403 | 404))
}

/// Reads the permissions of `items` ((kind, id) pairs as in [`Needs::permissions`]) and the
/// members of every group their rules grant to, before the lists are known (see [`Early`]).
/// At most the client's read concurrency of permission reads are outstanding (one more is
/// asked as each answers, so the lists read meanwhile and the members wait behind no more
/// than that); a group's members are asked for as soon as the first rule naming it arrives.
pub async fn read_early(client: &Client, items: BTreeSet<(String, String)>) -> Result<Early> {
    use futures::future::BoxFuture;
    let conc = client.config().read_concurrency.max(1);
    let mut queue =
        items.into_iter().filter_map(|(k, id)| kind_of(&k).map(|k| (k, id))).collect::<Vec<_>>().into_iter();
    let permissions = |(kind, id): (ContentKind, String)| -> BoxFuture<'_, Answer> {
        Box::pin(async move {
            let r = client.permissions(kind, &id).await.map(|caps| crate::snapshot::rules(kind.singular(), &id, caps));
            Answer::Rules(id, r)
        })
    };
    let members = |gid: String| -> BoxFuture<'_, Answer> {
        Box::pin(async move {
            let r = client
                .group_members(&gid.as_str().into())
                .collect()
                .await
                .map(|m| m.into_iter().filter_map(|u| u.id).collect::<Vec<String>>());
            Answer::Members(gid, r)
        })
    };
    let mut early = Early::default();
    let mut asked: HashSet<String> = HashSet::new();
    let mut pending = futures::stream::FuturesUnordered::new();
    for t in queue.by_ref().take(conc) {
        pending.push(permissions(t));
        early.calls += 1;
    }
    while let Some(answer) = pending.next().await {
        match answer {
            Answer::Rules(id, r) => {
                let r = match r {
                    Err(e) if !about_the_item(&e) => return Err(e),
                    r => r,
                };
                for rule in r.iter().flatten().filter(|r| r.grantee.kind == "group") {
                    if asked.insert(rule.grantee.id.clone()) {
                        pending.push(members(rule.grantee.id.clone()));
                        early.calls += 1;
                    }
                }
                early.permissions.insert(id, r);
                if let Some(t) = queue.next() {
                    pending.push(permissions(t));
                    early.calls += 1;
                }
            }
            Answer::Members(gid, r) => {
                let r = match r {
                    Err(e) if !about_the_item(&e) => return Err(e),
                    r => r,
                };
                early.members.insert(gid, r);
            }
        }
    }
    Ok(early)
}

/// Reads what `needs` names and is not read yet, and the members of every group the rules read
/// grant to; merges it into `scoped.site`. Answers the number of calls made.
pub async fn read_more(client: &Client, scoped: &mut Scoped, needs: Needs) -> Result<usize> {
    read_more_with(client, scoped, needs, Early::default()).await
}

/// [`read_more`], taking what `early` read already: an item's permissions or a group's
/// members read early are used as if read now (a failed early read of an item still needed
/// fails here, as that read would have), and only the rest is read. Early answers nothing
/// needs are dropped. The calls answered include every early call.
pub async fn read_more_with(client: &Client, scoped: &mut Scoped, needs: Needs, mut early: Early) -> Result<usize> {
    let needs = needs.missing(&scoped.read);
    let mut calls = early.calls;
    if needs.is_empty() {
        scoped.read.per_item_calls += calls;
        return Ok(calls);
    }
    let conc = client.config().read_concurrency.max(1) * 2;

    let mut read_early: Vec<(String, Vec<site::PermissionRule>)> = vec![];
    let mut targets: Vec<(ContentKind, String)> = vec![];
    for (k, id) in &needs.permissions {
        let Some(kind) = kind_of(k) else { continue };
        match early.permissions.remove(id) {
            Some(r) => read_early.push((id.clone(), r?)),
            None => targets.push((kind, id.clone())),
        }
    }
    calls += targets.len();
    let rules = futures::stream::iter(targets)
        .map(|(kind, id)| async move {
            let caps = client.permissions(kind, &id).await?;
            Ok::<_, crate::Error>((id.clone(), crate::snapshot::rules(kind.singular(), &id, caps)))
        })
        .buffered(conc)
        .try_collect::<Vec<_>>();
    let projects: Vec<String> = needs.defaults.iter().cloned().collect();
    calls += projects.len() * 2;
    let defaults = futures::stream::iter(projects.iter().flat_map(|p| ["workbooks", "datasources"].map(|ct| (p, ct))))
        .map(|(pid, ct)| crate::snapshot::default_rules(client, pid, ct))
        .buffered(conc)
        .try_collect::<Vec<_>>();
    let (rules, defaults) = futures::try_join!(rules, defaults)?;

    // Groups to read: those asked for, and every group a rule read here grants to.
    let mut groups: BTreeSet<String> = needs.members.clone();
    let s = &mut scoped.site;
    for (id, rs) in read_early.into_iter().chain(rules) {
        groups.extend(rs.iter().filter(|r| r.grantee.kind == "group").map(|r| r.grantee.id.clone()));
        s.permissions.extend(rs);
        scoped.read.permissions.insert(id);
    }
    for d in defaults.into_iter().flatten() {
        if d.grantee.kind == "group" {
            groups.insert(d.grantee.id.clone());
        }
        s.default_permissions.push(d);
    }
    scoped.read.defaults.extend(projects);
    groups.retain(|g| !scoped.read.has_members(g) && s.groups.iter().any(|x| &x.id == g));
    let mut members: Vec<(String, Vec<String>)> = vec![];
    let mut to_read: Vec<String> = vec![];
    for g in groups {
        match early.members.remove(&g) {
            Some(m) => members.push((g, m?)),
            None => to_read.push(g),
        }
    }
    calls += to_read.len();
    let fresh = futures::stream::iter(to_read)
        .map(|gid| async move {
            let m = client.group_members(&gid.as_str().into()).collect().await?;
            Ok::<_, crate::Error>((gid, m.into_iter().filter_map(|u| u.id).collect::<Vec<String>>()))
        })
        .buffered(conc)
        .try_collect::<Vec<_>>()
        .await?;
    for (gid, m) in members.into_iter().chain(fresh) {
        if let Some(g) = s.groups.iter_mut().find(|g| g.id == gid) {
            g.members = m;
        }
        scoped.read.members.insert(gid);
    }
    scoped.read.per_item_calls += calls;
    Ok(calls)
}
