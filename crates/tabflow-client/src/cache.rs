//! The site cache (issue #15): what a scoped read keeps for the next plan of the same site.
//!
//! Kept: the views of each listed workbook and the workbooks' lineage (the datasources they
//! use, the fields their sheets use) — the two biggest reads of a plan after the per-item
//! ones (2–3 views a workbook; one Metadata API page per 500 workbooks). Tableau changes both
//! only when a workbook is published again, which moves its `updatedAt`.
//!
//! Never kept: the lists themselves (users, groups, projects, workbooks, datasources, flows,
//! subscriptions, …) are read fresh on every plan, so deletions, moves, owners, tags and site
//! roles are always today's; permissions and group members are never cached (they are read
//! per item, [`crate::scoped::read_more`]); last access comes fresh from Admin Insights.
//!
//! A refresh lists the workbooks as usual, and reads views and lineage only of the workbooks
//! updated since the cached read (`updatedAt` ≥ the cached read's start, less a margin for
//! clocks) and of workbooks the cache does not hold; a workbook the list no longer gives is
//! dropped. View counts of workbooks not updated since come from the cache: a site without
//! Admin Insights (whose stale-content rules fall back to view counts) does not use the cache.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tabflow_site as site;

use crate::client::Client;
use crate::error::Result;
use crate::scoped::{Coverage, Scope, Scoped};
use crate::snapshot::{Options, PerItem};

/// The `format` of a cached read; another value is not used (and is replaced).
pub const FORMAT: &str = "tabflow-site-cache/1";

/// How far the server's and tabflow's clocks may disagree: workbooks updated this long before
/// the cached read started are read again too.
const CLOCK_MARGIN_MINUTES: i64 = 10;

/// Above this many workbooks to refresh one by one, the view list is read whole instead.
const MAX_ONE_BY_ONE: usize = 200;

/// A cached read: the views and lineage of the workbooks listed under `within`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cached {
    pub format: String,
    /// When the read the cache holds started (tabflow's clock).
    pub fetched_at: DateTime<Utc>,
    /// The latest `updatedAt` among the workbooks it holds (the server's clock): a workbook
    /// published again after the read has an `updatedAt` at or after it.
    #[serde(default)]
    pub high_water: Option<DateTime<Utc>>,
    /// The projects whose workbooks were listed (`None` = every workbook).
    pub within: Option<Vec<String>>,
    /// Whether the workbooks' lineage was read.
    pub lineage: bool,
    /// Per workbook id: its views (no last access) and lineage.
    pub workbooks: HashMap<String, CachedWorkbook>,
}

/// What the cache keeps of one workbook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedWorkbook {
    pub views: Vec<site::View>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasource_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_used: Vec<String>,
}

impl Cached {
    /// The cache of a read that started at `started`.
    pub fn of(site: &site::Site, scope: &Scope, started: DateTime<Utc>) -> Cached {
        Cached {
            format: FORMAT.to_string(),
            fetched_at: started,
            high_water: site.workbooks.iter().map(|w| w.updated_at).max(),
            within: scope.within.clone(),
            lineage: scope.lineage,
            workbooks: site
                .workbooks
                .iter()
                .map(|w| {
                    let views = w.views.iter().map(|v| site::View { last_viewed_at: None, ..v.clone() }).collect();
                    let c = CachedWorkbook {
                        views,
                        datasource_ids: w.datasource_ids.clone(),
                        fields_used: w.fields_used.clone(),
                    };
                    (w.id.clone(), c)
                })
                .collect(),
        }
    }

    /// The cache as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored cache; `None` when it is not one this build reads (it is then read afresh).
    pub fn from_bytes(bytes: &[u8]) -> Option<Cached> {
        serde_json::from_slice::<Cached>(bytes).ok().filter(|c| c.format == FORMAT)
    }

    /// Why this cache cannot serve `scope`, if it cannot.
    fn unfit_for(&self, scope: &Scope) -> Option<&'static str> {
        if self.within != scope.within {
            Some("the cached read listed other projects")
        } else if scope.lineage && !self.lineage {
            Some("the cached read has no lineage")
        } else if !scope.usage {
            Some("this read takes no last access, so view counts are read fresh")
        } else {
            None
        }
    }
}

/// How a read used the cache, for the plan's notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// Read from the site as without a cache (why), and cached for the next plan.
    Filled { reason: String },
    /// The cache's views and lineage served the workbooks not updated since it was read.
    Refreshed {
        /// When the cached read started.
        fetched_at: DateTime<Utc>,
        /// Workbooks served from the cache.
        kept: usize,
        /// Workbooks updated since (or new), read again.
        refreshed: usize,
        /// Cached workbooks the site no longer lists (deleted, or moved out of scope).
        dropped: usize,
    },
}

impl Use {
    /// One line for the plan's notes; `now` gives the cache's age.
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        match self {
            Use::Filled { reason } => format!("site cache: read fresh ({reason}); kept for the next plan"),
            Use::Refreshed { fetched_at, kept, refreshed, dropped } => format!(
                "site cache: views and lineage of {kept} workbooks from the read of {} ({} ago); {refreshed} updated or new workbooks read again, {dropped} no longer listed dropped; every list, permission and group member read fresh (--fresh reads all)",
                fetched_at.format("%Y-%m-%d %H:%M UTC"),
                age(now - *fetched_at)
            ),
        }
    }
}

fn age(d: Duration) -> String {
    let m = d.num_minutes().max(0);
    match m {
        0 => "under a minute".to_string(),
        1..=119 => format!("{m} min"),
        120..=2879 => format!("{} h", m / 60),
        _ => format!("{} days", m / 1440),
    }
}

/// [`crate::scoped::take_scoped`] served in part by `cached`: the lists fresh, the views and
/// lineage of workbooks not updated since the cached read from it. Answers the read, the
/// cache to keep for the next plan, and how the cache was used. Without a fitting cache, or
/// when the site has no last access (no Admin Insights), it reads as `take_scoped` does.
pub async fn take_scoped_cached(
    client: &Client,
    scope: &Scope,
    cached: Option<Cached>,
) -> Result<(Scoped, Cached, Use)> {
    let started = Utc::now();
    let unfit = match &cached {
        None => Some("nothing cached for this site and scope yet"),
        Some(c) => c.unfit_for(scope),
    };
    let Some(cached) = cached.filter(|_| unfit.is_none()) else {
        return fresh(client, scope, started, unfit.unwrap_or_default()).await;
    };

    // The lists (workbooks without views or lineage), no last access yet.
    let per_item = PerItem {
        permissions: false,
        members: false,
        defaults: false,
        connections: scope.connections,
        lineage: scope.lineage,
        within: scope.within.clone(),
        views: false,
        details: false,
        alerts: scope.alerts,
    };
    let mut s = crate::snapshot::collect(client, &Options { usage: false }, &per_item).await?;
    // Updated since the cached read: by the server's clock (the latest `updatedAt` it saw)
    // or by ours, whichever is earlier, less a margin.
    let since = cached.high_water.map_or(cached.fetched_at, |h| h.min(cached.fetched_at))
        - Duration::minutes(CLOCK_MARGIN_MINUTES);
    let stale: Vec<String> = s
        .workbooks
        .iter()
        .filter(|w| w.updated_at >= since || !cached.workbooks.contains_key(&w.id))
        .map(|w| w.id.clone())
        .collect();
    if stale.len() > MAX_ONE_BY_ONE {
        let why = format!("{} workbooks were updated since the cached read", stale.len());
        return fresh(client, scope, started, &why).await;
    }

    // Views and lineage of the workbooks updated since, one call each for the views.
    let conc = client.config().read_concurrency.max(1) * 2;
    let views = futures::stream::iter(stale.iter().cloned())
        .map(|id| async move {
            let vs = client.workbook_views(&id.as_str().into(), true).await?;
            Ok::<_, crate::Error>((id, vs.into_iter().map(crate::snapshot::view_model).collect::<Vec<_>>()))
        })
        .buffered(conc)
        .try_collect::<HashMap<String, Vec<site::View>>>();
    let lineage = async {
        if scope.lineage && !stale.is_empty() { client.workbook_lineage_of(&stale).await } else { Ok(Vec::new()) }
    };
    let (mut views, lineage) = futures::try_join!(views, lineage)?;
    let mut lineage: HashMap<String, crate::metadata::WorkbookLineage> =
        lineage.into_iter().map(|l| (l.luid.clone(), l)).collect();

    let listed = s.workbooks.len();
    let mut kept = 0;
    let mut old = cached.workbooks;
    for w in &mut s.workbooks {
        match (views.remove(&w.id), old.remove(&w.id)) {
            (Some(vs), _) => {
                w.views = vs;
                if let Some(l) = lineage.remove(&w.id) {
                    w.datasource_ids = l.datasources;
                    w.fields_used = l.fields_used;
                }
            }
            (None, Some(c)) => {
                kept += 1;
                w.views = c.views;
                w.datasource_ids = c.datasource_ids;
                w.fields_used = c.fields_used;
            }
            (None, None) => {}
        }
    }
    let dropped = old.len();
    drop(old);

    // Last access, fresh, over the workbooks as they now are.
    let (view_last, ds_last) =
        crate::snapshot::last_access(client, &Options { usage: true }, &s.workbooks, scope.within.as_deref()).await;
    if view_last.iter().all(|(_, _, t)| t.is_none()) && listed > 0 {
        // No Admin Insights: view counts decide, and the cached ones may be old.
        return fresh(client, scope, started, "the site gives no last access, so view counts are read fresh").await;
    }
    for (wi, vi, t) in view_last {
        if let Some(v) = s.workbooks.get_mut(wi as usize).and_then(|w| w.views.get_mut(vi as usize)) {
            v.last_viewed_at = t;
        }
    }
    for d in &mut s.datasources {
        d.last_accessed_at = ds_last.get(d.id.as_str()).copied();
    }

    let read = Coverage {
        lineage: scope.lineage,
        connections: scope.connections,
        within: scope.within.clone(),
        ..Coverage::default()
    };
    let next = Cached::of(&s, scope, started);
    let used = Use::Refreshed { fetched_at: cached.fetched_at, kept, refreshed: stale.len(), dropped };
    Ok((Scoped { site: s, read }, next, used))
}

async fn fresh(client: &Client, scope: &Scope, started: DateTime<Utc>, reason: &str) -> Result<(Scoped, Cached, Use)> {
    let s = crate::scoped::take_scoped(client, scope).await?;
    let next = Cached::of(&s.site, scope, started);
    Ok((s, next, Use::Filled { reason: reason.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_serves_only_the_scope_it_was_read_for() {
        let c = Cached {
            format: FORMAT.into(),
            fetched_at: Utc::now(),
            high_water: None,
            within: Some(vec!["Finance".into()]),
            lineage: true,
            workbooks: HashMap::new(),
        };
        let scope = |within: Option<Vec<String>>, lineage, usage| Scope {
            usage,
            lineage,
            connections: false,
            within,
            alerts: false,
        };
        assert_eq!(c.unfit_for(&scope(Some(vec!["Finance".into()]), true, true)), None);
        assert!(c.unfit_for(&scope(None, true, true)).is_some());
        assert!(c.unfit_for(&scope(Some(vec!["Sales".into()]), true, true)).is_some());
        assert!(c.unfit_for(&scope(Some(vec!["Finance".into()]), true, false)).is_some());
        let no_lineage = Cached { lineage: false, ..c.clone() };
        assert!(no_lineage.unfit_for(&scope(Some(vec!["Finance".into()]), true, true)).is_some());
        assert_eq!(no_lineage.unfit_for(&scope(Some(vec!["Finance".into()]), false, true)), None);
    }

    #[test]
    fn a_stored_cache_reads_back_and_another_format_is_not_used() {
        let c = Cached {
            format: FORMAT.into(),
            fetched_at: Utc::now(),
            high_water: None,
            within: None,
            lineage: false,
            workbooks: HashMap::new(),
        };
        let back = Cached::from_bytes(&c.to_bytes()).expect("reads back");
        assert_eq!(back.fetched_at, c.fetched_at);
        let other = Cached { format: "tabflow-site-cache/0".into(), ..c };
        assert!(Cached::from_bytes(&other.to_bytes()).is_none());
        assert!(Cached::from_bytes(b"{not json").is_none());
    }

    #[test]
    fn the_age_reads_like_a_person_would_say_it() {
        assert_eq!(age(Duration::seconds(20)), "under a minute");
        assert_eq!(age(Duration::minutes(45)), "45 min");
        assert_eq!(age(Duration::hours(5)), "5 h");
        assert_eq!(age(Duration::days(3)), "3 days");
    }
}
