//! Workflows: intents + a read of the site → an exact draft plan. The planner never writes;
//! it grounds names against the site, lists the exact items with reasons, writes every change
//! as before → after, and asks when it is not sure. The validator (`tabflow-plan`) then checks it.
//!
//! Implemented here: `archive-stale-content`, `delete-content` (staged), `offboard-user`,
//! `audit-permissions` / `update-permissions` (revoking overly broad grants), and
//! `notify-owners` (recipients listed; sending belongs to the notifications feature),
//! `consolidate-datasources` and `migrate-datasource` (module `datasources`),
//! `reclaim-licenses` (module `licenses`), `clean-subscriptions` (module `subscriptions`) and
//! `review-extract-refreshes` (module `refreshes`).
//! `query` (Phase-1 questions, module `query`) is answered in a read step.
//!
//! Modules: `builder` (the state a plan is built in and the shared helpers), one module per
//! workflow (`stale`, `offboard`, `notify`, `permissions`, `datasources`), `ground` (names →
//! site items), `effective` (effective permissions), `query`, `report`, `learn`.

mod builder;
pub mod chart;
mod datasources;
pub mod effective;
pub mod ground;
pub mod learn;
mod licenses;
mod notify;
mod offboard;
mod permissions;
pub mod query;
mod refreshes;
pub mod report;
#[cfg(test)]
mod scale_tests;
mod stale;
mod subscriptions;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use tabflow_plan::plan::{Intent, Plan, SiteRef};
use tabflow_plan::policy::Policy;
use tabflow_site::Site;

use builder::Builder;
use stale::Stale;

/// Everything a planner reads.
pub struct Planner<'a> {
    pub site: &'a Site,
    pub site_ref: SiteRef,
    pub policy: &'a Policy,
    /// The signed-in user's name (fallback owner, the actor).
    pub signed_in: String,
    pub now: DateTime<Utc>,
    pub answers: BTreeMap<String, String>,
    /// Where usage came from (for the plan's notes).
    pub usage_source: String,
    /// What earlier choices taught (suggested owners, default answers); empty = nothing.
    pub learned: learn::Learned,
    /// License notices earlier runs sent (`reclaim-licenses` with `grace_days`), the newest
    /// per user of this site; empty = none.
    pub license_notices: Vec<LicenseNotice>,
}

/// A user told by an earlier run that their license goes after a grace period.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseNotice {
    pub user_id: String,
    pub user_name: String,
    pub notified_at: DateTime<Utc>,
    /// When the grace period ends: from then on a plan may change their role.
    pub act_after: DateTime<Utc>,
    pub run_id: String,
}

/// The intent names the planner plans: the catalogue's, `tabflow_plan::Intent::NAMES` (the
/// planner plans every intent of the typed catalogue).
pub const INTENTS: &[&str] = Intent::NAMES;

/// Capabilities too broad for everyone-groups on sensitive content.
pub const DANGEROUS: &[&str] =
    &["Write", "Delete", "ChangePermissions", "ChangeHierarchy", "ExportXml", "SaveAs", "WebAuthoring", "Overwrite"];

/// The draft plan of one intent (by name and JSON parameters) on `site` with the default
/// policy, planned as `admin` at the site's own moment: the workflows' unit tests.
#[cfg(test)]
pub(crate) fn plan_intent(site: &Site, intent: &str, params: serde_json::Value) -> Plan {
    plan_intent_answered(site, intent, params, &[])
}

/// [`plan_intent`] with answers to its questions (`("q1", "archive-all")`).
#[cfg(test)]
pub(crate) fn plan_intent_answered(
    site: &Site,
    intent: &str,
    params: serde_json::Value,
    answers: &[(&str, &str)],
) -> Plan {
    let policy = Policy::default();
    let p = Planner {
        site,
        site_ref: SiteRef { server: "demo".into(), content_url: String::new(), id: "s".into() },
        policy: &policy,
        signed_in: "admin".into(),
        now: site.now,
        answers: answers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        usage_source: "test".into(),
        learned: Default::default(),
        license_notices: vec![],
    };
    let params = params.as_object().cloned().unwrap_or_default();
    plan(intent, vec![Intent::from_parts(intent, params).expect("valid test parameters")], &p)
}

/// Builds the draft plan for these intents. The draft is not sealed: the validator seals it
/// with the store's key (`tabflow_plan::validate`).
pub fn plan(request: &str, intents: Vec<Intent>, p: &Planner<'_>) -> Plan {
    let mut b = Builder {
        p,
        plan: Plan::draft(request, p.site_ref.clone(), intents.clone(), p.now),
        next_step: 0,
        next_q: 0,
        index: tabflow_site::Index::new(p.site),
        earlier_scope: None,
        moved_away: BTreeSet::new(),
        moving_step: None,
        lookups: builder::Lookups::default(),
    };
    b.plan.notes.push(format!("usage source: {}", p.usage_source));
    if intents.is_empty() {
        b.ask(
            format!("I could not work out what to do with \"{request}\". Try e.g. \"archive workbooks in Finance not viewed in 90 days\", \"offboard jsmith and give his content to Tom Baker\" or \"audit permissions on content tagged sensitive\"."),
            vec![],
            None,
        );
    }
    for i in &intents {
        match i {
            Intent::ArchiveStaleContent(a) => b.stale_content(&Stale::archive(a), false),
            Intent::DeleteContent(d) => b.stale_content(&Stale::delete(d), true),
            Intent::OffboardUser(o) => b.offboard(o),
            Intent::AuditPermissions(a) => b.permissions(&permissions::Request::audit(a), false),
            Intent::UpdatePermissions(u) => b.permissions(&permissions::Request::update(u), true),
            Intent::NotifyOwners(n) => b.notify(n),
            Intent::ConsolidateDatasources(c) => b.consolidate(c),
            Intent::MigrateDatasource(m) => b.migrate(m),
            Intent::Query(q) => b.query(q, request),
            Intent::ReclaimLicenses(r) => b.reclaim_licenses(r),
            Intent::CleanSubscriptions(c) => b.clean_subscriptions(c),
            Intent::ReviewExtractRefreshes(r) => b.review_refreshes(r),
        }
    }
    learn::mark_removed(&mut b.plan, &p.learned);
    b.plan
}
