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

use std::collections::{BTreeSet, HashSet};

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

/// Reads what `needs` names and is not read yet, and the members of every group the rules read
/// grant to; merges it into `scoped.site`. Answers the number of calls made.
pub async fn read_more(client: &Client, scoped: &mut Scoped, needs: Needs) -> Result<usize> {
    let needs = needs.missing(&scoped.read);
    if needs.is_empty() {
        return Ok(0);
    }
    let conc = client.config().read_concurrency.max(1) * 2;
    let mut calls = 0usize;

    let targets: Vec<(ContentKind, String)> =
        needs.permissions.iter().filter_map(|(k, id)| kind_of(k).map(|k| (k, id.clone()))).collect();
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
    for (id, rs) in rules {
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
    calls += groups.len();
    let members = futures::stream::iter(groups)
        .map(|gid| async move {
            let m = client.group_members(&gid.as_str().into()).collect().await?;
            Ok::<_, crate::Error>((gid, m.into_iter().filter_map(|u| u.id).collect::<Vec<String>>()))
        })
        .buffered(conc)
        .try_collect::<Vec<_>>()
        .await?;
    for (gid, m) in members {
        if let Some(g) = s.groups.iter_mut().find(|g| g.id == gid) {
            g.members = m;
        }
        scoped.read.members.insert(gid);
    }
    scoped.read.per_item_calls += calls;
    Ok(calls)
}
