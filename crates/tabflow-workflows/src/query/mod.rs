//! Phase-1 questions ("how many workbooks are in Finance?", "who owns Sales Orders?", "most
//! viewed workbooks", "users who have not signed in for 90 days") answered read-only from a
//! read of the site, as a table.
//!
//! [`understand`] turns the question into a [`Query`] (what to count or list, and filters as
//! the user wrote them); [`answer`] grounds the names against the site (ground.rs: case,
//! accents, typos, first names, usernames, emails) and computes the [`Answer`]. A name that
//! matches several items or none is an [`Error`] listing the candidates — never a guess — and
//! a question of a kind this module does not know is [`Error::NotUnderstood`], which lists
//! [`EXAMPLES`].
//!
//! Submodules: `understand` (question → [`Query`]), `context` (lookups and name grounding),
//! one module per question family (`content`, `users`, `usage`) and `format` (tables,
//! choices, explanations). [`answer_query`] computes the scope and hands it to the family.
//!
//! Conventions (documented in README.md, "tabflow query"):
//! * A project includes its nested sub-projects ("workbooks in Finance" counts Finance's
//!   sub-projects too; the answer says how many).
//! * Site-role words are license levels: "Creators" are `Creator`, `SiteAdministratorCreator`
//!   and `ServerAdministrator`; "Explorers" are `Explorer`, `ExplorerCanPublish` and
//!   `SiteAdministratorExplorer`; "Viewers" `Viewer`; "admins" the three administrator roles.
//! * A workbook's last view is the latest `last_viewed_at` of its views. "Not viewed in N
//!   days" = last view before now − N days, or never viewed (no views at all); workbooks
//!   created after that moment are left out (they cannot have gone N days unviewed), and
//!   workbooks with views but no last-viewed date have no usage data and are counted in a note.
//! * "Not signed in for N days" = last sign-in before now − N days, or never signed in.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tabflow_site::{Datasource, Flow, Index, Project, Site, Subscription, User, Workbook};

use crate::ground::{self, Grounded, Quality};

mod content;
mod context;
mod facts;
mod format;
mod rank;
#[cfg(test)]
mod tests;
mod understand;
mod usage;
mod users;

use context::*;
pub use format::{choices, explain, render, with_name};
pub use understand::understand;

/// Questions this module answers, shown when it cannot understand one.
pub const EXAMPLES: &[&str] = &[
    "how many workbooks are in Finance",
    "how many users are Creators",
    "list the datasources in Sales",
    "who owns Sales Orders",
    "top 5 most viewed workbooks in Marketing",
    "workbooks not viewed in 90 days",
    "users who have not signed in for 60 days",
    "what datasources does Cash Flow Summary use",
    "which workbooks use Finance GL",
    "workbooks per project",
    "who owns the most workbooks",
    "how many workbooks are there in total",
    "when was Opex Analysis last viewed",
    "which projects have no workbooks",
    "the 5 largest workbooks",
    "workbooks created in the last 30 days",
    "how many flows are in Finance",
    "suspended subscriptions",
];

/// What kind of answer a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A number of items.
    Count,
    /// The items themselves.
    List,
    /// Who owns a named item.
    Owner,
    /// Items by view count, highest (or lowest) first.
    MostViewed,
    /// Content not viewed (or accessed) for some days, or never.
    NotViewed,
    /// Users who have not signed in for some days, or never.
    NotSignedIn,
    /// The published datasources a named workbook uses.
    DatasourcesOf,
    /// The workbooks that use a named datasource (or any deprecated one).
    WorkbooksUsing,
    /// Counts grouped by project, owner, site role or group.
    GroupBy,
    /// The groups (owners, projects, site roles, groups) with the most (or fewest) items:
    /// "who owns the most workbooks". Ties at the cut are all shown.
    Most,
    /// Items ordered by an attribute: the largest, oldest, newest, most recently updated.
    Ranked,
    /// The facts of a named item: owner, project, last viewed, views, size, dates, tags,
    /// datasources, certification (users: site role, last sign-in, groups).
    Facts,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Count => "count",
            Kind::List => "list",
            Kind::Owner => "owner",
            Kind::MostViewed => "most-viewed",
            Kind::NotViewed => "not-viewed",
            Kind::NotSignedIn => "not-signed-in",
            Kind::DatasourcesOf => "datasources-of",
            Kind::WorkbooksUsing => "workbooks-using",
            Kind::GroupBy => "group-by",
            Kind::Most => "most",
            Kind::Ranked => "ranked",
            Kind::Facts => "facts",
        }
    }
}

/// What a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Workbooks,
    Datasources,
    Users,
    Projects,
    Groups,
    Views,
    Flows,
    Subscriptions,
}

impl Subject {
    fn plural(self) -> &'static str {
        match self {
            Subject::Flows => "flows",
            Subject::Subscriptions => "subscriptions",
            Subject::Workbooks => "workbooks",
            Subject::Datasources => "datasources",
            Subject::Users => "users",
            Subject::Projects => "projects",
            Subject::Groups => "groups",
            Subject::Views => "views",
        }
    }

    fn singular(self) -> &'static str {
        self.plural().trim_end_matches('s')
    }
}

/// What counts are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Project,
    Owner,
    SiteRole,
    Group,
}

/// A license level named by a site-role word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Creator,
    Explorer,
    Viewer,
    Unlicensed,
    Admin,
}

impl Role {
    /// The site roles the word covers.
    pub fn site_roles(self) -> &'static [&'static str] {
        match self {
            Role::Creator => &["Creator", "SiteAdministratorCreator", "ServerAdministrator"],
            Role::Explorer => &["Explorer", "ExplorerCanPublish", "SiteAdministratorExplorer"],
            Role::Viewer => &["Viewer"],
            Role::Unlicensed => &["Unlicensed"],
            Role::Admin => &["SiteAdministratorCreator", "SiteAdministratorExplorer", "ServerAdministrator"],
        }
    }

    fn label(self) -> &'static str {
        match self {
            Role::Creator => "Creators",
            Role::Explorer => "Explorers",
            Role::Viewer => "Viewers",
            Role::Unlicensed => "Unlicensed users",
            Role::Admin => "administrators",
        }
    }
}

/// What a negation asks for: items that have none of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Without {
    /// Projects with no workbooks of their own; users who own no workbook.
    Workbooks,
    /// Projects with no datasources of their own; users who own no datasource.
    Datasources,
    /// Projects with no flows of their own; users who own no flow.
    Flows,
    /// Projects with no workbooks, datasources or flows of their own; users who own none.
    Content,
    /// Workbooks, datasources, flows or views without tags.
    Tags,
    /// Groups without members.
    Members,
    /// Users with no subscription; workbooks nobody subscribes to.
    Subscriptions,
    /// Users in no group other than All Users.
    Groups,
}

/// The attribute items are ordered by in a [`Kind::Ranked`] answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    Size,
    Created,
    Updated,
    Members,
    LastLogin,
}

/// The fact a [`Kind::Facts`] question asks for (all of them for "tell me about X").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    All,
    LastViewed,
    Views,
    Size,
    Created,
    Updated,
    Tags,
    Datasources,
    Certified,
    Project,
    Owner,
    SiteRole,
    LastLogin,
    Groups,
}

impl Field {
    /// The answer column that holds this fact.
    pub fn column(self) -> &'static str {
        match self {
            Field::All => "name",
            Field::LastViewed => "last_viewed",
            Field::Views => "views",
            Field::Size => "size",
            Field::Created => "created",
            Field::Updated => "updated",
            Field::Tags => "tags",
            Field::Datasources => "datasources",
            Field::Certified => "certified",
            Field::Project => "project",
            Field::Owner => "owner",
            Field::SiteRole => "site_role",
            Field::LastLogin => "last_login",
            Field::Groups => "groups",
        }
    }
}

/// A question, understood but not yet grounded: names are as the user wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub kind: Kind,
    pub subject: Subject,
    pub project: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub role: Option<Role>,
    pub tag: Option<String>,
    /// `Some(true)` certified only, `Some(false)` not certified.
    pub certified: Option<bool>,
    /// Days for not-viewed / not-signed-in; `None` with [`Query::never`] false = 90.
    pub days: Option<u32>,
    /// "never viewed", "never signed in".
    pub never: bool,
    /// Top N for most-viewed.
    pub limit: Option<usize>,
    /// Least viewed instead of most.
    pub ascending: bool,
    /// The named item (owner, datasources-of, workbooks-using).
    pub target: Option<String>,
    pub dimension: Option<Dimension>,
    /// Created within the last N days.
    pub created_within: Option<u32>,
    /// Created more than N days ago ("older than a year").
    pub older_than: Option<u32>,
    /// Updated within the last N days.
    pub updated_within: Option<u32>,
    /// Not updated for N days.
    pub updated_before: Option<u32>,
    /// Items that have none of something ("projects with no workbooks").
    pub without: Option<Without>,
    /// `Some(true)` suspended subscriptions only, `Some(false)` active ones.
    pub suspended: Option<bool>,
    /// The attribute of a ranked answer.
    pub rank_by: Option<RankBy>,
    /// The fact a facts question asks for.
    pub field: Option<Field>,
}

impl Query {
    /// A list of `subject` with no filter.
    pub fn new(kind: Kind, subject: Subject) -> Query {
        Query {
            kind,
            subject,
            project: None,
            owner: None,
            group: None,
            role: None,
            tag: None,
            certified: None,
            days: None,
            never: false,
            limit: None,
            ascending: false,
            target: None,
            dimension: None,
            created_within: None,
            older_than: None,
            updated_within: None,
            updated_before: None,
            without: None,
            suspended: None,
            rank_by: None,
            field: None,
        }
    }
}

/// The answer to a question: a table plus a one-line summary.
///
/// JSON (`tabflow query --json`): `{"question", "kind", "as_of", "summary", "columns", "rows",
/// "total", "notes"}`; `rows` are arrays aligned with `columns`; `total` is the number of
/// matching items (for `count` the count; for a top-N list all candidates before the limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    pub kind: Kind,
    /// The site's "now" that ages ("not viewed in 90 days") are measured from.
    pub as_of: DateTime<Utc>,
    pub summary: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub total: usize,
    /// How names were read, what was left out and why.
    pub notes: Vec<String>,
}

/// Why a question has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The question is not of a kind this module answers.
    #[error("I can't do that yet: I could not understand the question \"{question}\"")]
    NotUnderstood { question: String },
    /// A name matches several items; the user has to say which.
    #[error("'{wanted}' matches several {what}s: {}", candidates.join(", "))]
    Ambiguous {
        what: &'static str,
        wanted: String,
        /// The candidates as shown ("John Smith (jsmith)").
        candidates: Vec<String>,
        /// The same candidates as names that ground uniquely ("jsmith"), for answers.
        choices: Vec<String>,
    },
    /// A name matches nothing on the site.
    #[error("there is no {what} named '{wanted}' on this site{}", did_you_mean(suggestions))]
    NotFound { what: &'static str, wanted: String, suggestions: Vec<String> },
}

fn did_you_mean(s: &[String]) -> String {
    if s.is_empty() { String::new() } else { format!(" — did you mean {}?", s.join(", ")) }
}

/// Answers `question` from `site` (read-only). `site.now` is "now" for ages.
pub fn answer(site: &Site, question: &str) -> Result<Answer, Error> {
    let q = understand(question)?;
    answer_query(site, question, &q)
}

/// Answers an understood question.
pub fn answer_query(site: &Site, question: &str, q: &Query) -> Result<Answer, Error> {
    let mut cx = Ctx { site, index: Index::new(site), notes: vec![] };
    let now = site.now;
    // Scope: a project (with sub-projects), an owner, a group.
    let mut scope_label = String::new();
    let scope: Option<BTreeSet<String>> = match &q.project {
        Some(name) => {
            let p = cx.project(name)?;
            let sub = cx.subtree(&p.id);
            scope_label = if sub.len() > 1 {
                format!(" in {} (including its {} sub-projects)", p.name, sub.len() - 1)
            } else {
                format!(" in {}", p.name)
            };
            Some(sub)
        }
        None => None,
    };
    let owner = match &q.owner {
        Some(name) => {
            let u = cx.user(name)?;
            scope_label.push_str(&format!(" owned by {} ({})", u.full_name, u.name));
            Some(u)
        }
        None => None,
    };
    let group = match &q.group {
        Some(name) => {
            let g = cx.group(name)?;
            scope_label.push_str(&format!(" in the group {}", g.name));
            Some(g)
        }
        None => None,
    };
    if let Some(t) = &q.tag {
        scope_label.push_str(&format!(" tagged {t}"));
    }
    let in_scope = |project: &str, owner_id: &str, tags: &[String]| {
        scope.as_ref().is_none_or(|s| s.contains(project))
            && owner.is_none_or(|u| u.id == owner_id)
            && q.tag.as_ref().is_none_or(|t| tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
    };
    // Dates: created within / older than / updated within / not updated for N days.
    let ago = |d: u32| tabflow_site::time::days_before(now, i64::from(d));
    let dated = |created: Option<DateTime<Utc>>, updated: Option<DateTime<Utc>>| {
        q.created_within.is_none_or(|d| created.is_some_and(|c| c >= ago(d)))
            && q.older_than.is_none_or(|d| created.is_some_and(|c| c < ago(d)))
            && q.updated_within.is_none_or(|d| updated.is_some_and(|u| u >= ago(d)))
            && q.updated_before.is_none_or(|d| updated.is_some_and(|u| u < ago(d)))
    };
    let untagged = |tags: &[String]| q.without != Some(Without::Tags) || tags.is_empty();
    let workbooks: Vec<&Workbook> = site
        .workbooks
        .iter()
        .filter(|w| in_scope(&w.project_id, &w.owner_id, &w.tags))
        .filter(|w| dated(Some(w.created_at), Some(w.updated_at)) && untagged(&w.tags))
        .filter(|w| {
            q.without != Some(Without::Subscriptions)
                || !site.subscriptions.iter().any(|s| {
                    s.content.id == w.id || (s.content.kind == "view" && w.views.iter().any(|v| v.id == s.content.id))
                })
        })
        .collect();
    let datasources: Vec<&Datasource> = site
        .datasources
        .iter()
        .filter(|d| in_scope(&d.project_id, &d.owner_id, &d.tags))
        .filter(|d| q.certified.is_none_or(|c| d.certified == c))
        .filter(|d| dated(d.created_at, Some(d.updated_at)) && untagged(&d.tags))
        .collect();
    let flows: Vec<&Flow> = site
        .flows
        .iter()
        .filter(|f| in_scope(&f.project_id, &f.owner_id, &f.tags))
        .filter(|f| dated(Some(f.created_at), Some(f.updated_at)) && untagged(&f.tags))
        .collect();
    if q.certified.is_some() {
        scope_label =
            format!("{}{scope_label}", if q.certified == Some(true) { " (certified)" } else { " (not certified)" });
    }
    let members: Option<HashSet<&str>> = group.map(|g| g.members.iter().map(String::as_str).collect());
    let owns = |id: &str, what: Without| match what {
        Without::Workbooks => site.workbooks.iter().any(|w| w.owner_id == id),
        Without::Datasources => site.datasources.iter().any(|d| d.owner_id == id),
        Without::Flows => site.flows.iter().any(|f| f.owner_id == id),
        _ => {
            site.workbooks.iter().any(|w| w.owner_id == id)
                || site.datasources.iter().any(|d| d.owner_id == id)
                || site.flows.iter().any(|f| f.owner_id == id)
        }
    };
    let users: Vec<&User> = site
        .users
        .iter()
        .filter(|u| members.as_ref().is_none_or(|m| m.contains(u.id.as_str())))
        .filter(|u| q.role.is_none_or(|r| r.site_roles().contains(&u.site_role.as_str())))
        .filter(|u| match q.without {
            None | Some(Without::Tags) | Some(Without::Members) => true,
            Some(Without::Subscriptions) => !site.subscriptions.iter().any(|s| s.user_id == u.id),
            Some(Without::Groups) => {
                !site.groups.iter().any(|g| !g.name.eq_ignore_ascii_case("All Users") && g.members.contains(&u.id))
            }
            Some(w) => !owns(&u.id, w),
        })
        .collect();
    if let Some(r) = q.role {
        scope_label.push_str(&format!(" who are {} ({})", r.label(), r.site_roles().join(", ")));
    }
    // Projects "in Finance" are its sub-projects.
    let holds = |pid: &str, what: Without| match what {
        Without::Workbooks => site.workbooks.iter().any(|w| w.project_id == pid),
        Without::Datasources => site.datasources.iter().any(|d| d.project_id == pid),
        Without::Flows => site.flows.iter().any(|f| f.project_id == pid),
        _ => {
            site.workbooks.iter().any(|w| w.project_id == pid)
                || site.datasources.iter().any(|d| d.project_id == pid)
                || site.flows.iter().any(|f| f.project_id == pid)
        }
    };
    let projects: Vec<&Project> = site
        .projects
        .iter()
        .filter(|p| {
            scope.as_ref().is_none_or(|s| {
                s.contains(&p.id) && p.parent_id.is_some() && s.contains(p.parent_id.as_deref().unwrap_or(""))
            })
        })
        .filter(|p| owner.is_none_or(|u| u.id == p.owner_id))
        .filter(|p| dated(p.created_at, p.updated_at))
        .filter(|p| match q.without {
            Some(w @ (Without::Workbooks | Without::Datasources | Without::Flows | Without::Content)) => {
                !holds(&p.id, w)
            }
            _ => true,
        })
        .collect();
    let subscriptions: Vec<&Subscription> = site
        .subscriptions
        .iter()
        .filter(|s| owner.is_none_or(|u| u.id == s.user_id))
        .filter(|s| q.suspended.is_none_or(|x| s.suspended == x))
        .filter(|s| scope.as_ref().is_none_or(|sc| subscribed_project(site, s).is_some_and(|p| sc.contains(p))))
        .collect();
    if q.suspended.is_some() {
        scope_label = format!("{}{scope_label}", if q.suspended == Some(true) { " (suspended)" } else { " (active)" });
    }
    if let Some(w) = q.without {
        scope_label.push_str(match w {
            Without::Workbooks => " with no workbooks",
            Without::Datasources => " with no datasources",
            Without::Flows => " with no flows",
            Without::Content => " with no content",
            Without::Tags => " without tags",
            Without::Members => " without members",
            Without::Subscriptions => " without subscriptions",
            Without::Groups => " in no group (other than All Users)",
        });
    }
    for (days, what) in [
        (q.created_within, "created in the last"),
        (q.older_than, "created more than"),
        (q.updated_within, "updated in the last"),
        (q.updated_before, "not updated for"),
    ] {
        if let Some(d) = days {
            let ago = if what == "created more than" { " ago" } else { "" };
            scope_label.push_str(&format!(" {what} {d} days{ago}"));
        }
    }
    let uses: HashMap<&str, usize> =
        site.workbooks.iter().flat_map(|w| w.datasource_ids.iter()).fold(HashMap::new(), |mut m, d| {
            *m.entry(d.as_str()).or_default() += 1;
            m
        });

    let s = Scope { q, site, now, scope_label, workbooks, datasources, users, projects, flows, subscriptions, uses };
    let (summary, columns, rows, total) = match q.kind {
        Kind::Count | Kind::List => content::count_or_list(&s, &cx),
        Kind::Owner => users::owner(&s, &mut cx)?,
        Kind::MostViewed => usage::most_viewed(&s, &cx),
        Kind::NotViewed => usage::not_viewed(&s, &mut cx),
        Kind::NotSignedIn => users::not_signed_in(&s),
        Kind::DatasourcesOf => content::datasources_of(&s, &mut cx)?,
        Kind::WorkbooksUsing => content::workbooks_using(&s, &mut cx)?,
        Kind::GroupBy => content::group_by(&s, &cx),
        Kind::Most => rank::most(&s, &cx),
        Kind::Ranked => rank::ranked(&s, &cx),
        Kind::Facts => facts::facts(&s, &mut cx)?,
    };
    Ok(Answer {
        question: question.trim().to_string(),
        kind: q.kind,
        as_of: now,
        summary,
        columns,
        rows,
        total,
        notes: cx.notes,
    })
}

/// One answer's table: summary, columns, rows, total.
type Table = (String, Vec<String>, Vec<Vec<Value>>, usize);

/// What a question is asked about once its filters are applied: the items in scope and how
/// the scope reads in a summary (" in Finance (including its 3 sub-projects) owned by …").
struct Scope<'a> {
    q: &'a Query,
    site: &'a Site,
    now: DateTime<Utc>,
    scope_label: String,
    workbooks: Vec<&'a Workbook>,
    datasources: Vec<&'a Datasource>,
    users: Vec<&'a User>,
    projects: Vec<&'a Project>,
    flows: Vec<&'a Flow>,
    subscriptions: Vec<&'a Subscription>,
    /// datasource id -> number of workbooks that use it
    uses: HashMap<&'a str, usize>,
}

fn wb_row(cx: &Ctx, w: &Workbook) -> Vec<Value> {
    vec![
        json!(w.name),
        json!(cx.path(&w.project_id)),
        json!(cx.username(&w.owner_id)),
        json!(total_views(w)),
        day(last_view(w)),
    ]
}

fn wb_cols() -> Vec<String> {
    cols(&["workbook", "project", "owner", "views", "last_viewed"])
}

fn ds_row(cx: &Ctx, uses: &HashMap<&str, usize>, d: &Datasource) -> Vec<Value> {
    vec![
        json!(d.name),
        json!(cx.path(&d.project_id)),
        json!(cx.username(&d.owner_id)),
        json!(d.certified),
        json!(d.tags),
        json!(uses.get(d.id.as_str()).copied().unwrap_or(0)),
    ]
}

fn ds_cols() -> Vec<String> {
    cols(&["datasource", "project", "owner", "certified", "tags", "workbooks"])
}

fn user_row(u: &User) -> Vec<Value> {
    vec![json!(u.name), json!(u.full_name), json!(u.site_role), day(u.last_login)]
}

fn user_cols() -> Vec<String> {
    cols(&["user", "full_name", "site_role", "last_login"])
}

/// The project of a subscription's content (a view's workbook's project).
fn subscribed_project<'s>(site: &'s Site, s: &Subscription) -> Option<&'s str> {
    match s.content.kind.as_str() {
        "view" => {
            site.workbooks.iter().find(|w| w.views.iter().any(|v| v.id == s.content.id)).map(|w| w.project_id.as_str())
        }
        "datasource" => site.datasources.iter().find(|d| d.id == s.content.id).map(|d| d.project_id.as_str()),
        _ => site.workbooks.iter().find(|w| w.id == s.content.id).map(|w| w.project_id.as_str()),
    }
}

/// A subscription's content by name ("Sales Orders / Overview" for a view).
fn subscribed_name(site: &Site, s: &Subscription) -> String {
    match s.content.kind.as_str() {
        "view" => site
            .workbooks
            .iter()
            .find_map(|w| w.views.iter().find(|v| v.id == s.content.id).map(|v| format!("{} / {}", w.name, v.name))),
        "datasource" => site.datasources.iter().find(|d| d.id == s.content.id).map(|d| d.name.clone()),
        _ => site.workbooks.iter().find(|w| w.id == s.content.id).map(|w| w.name.clone()),
    }
    .unwrap_or_else(|| s.content.id.clone())
}

fn flow_row(cx: &Ctx, f: &Flow) -> Vec<Value> {
    vec![
        json!(f.name),
        json!(cx.path(&f.project_id)),
        json!(cx.username(&f.owner_id)),
        json!(f.tags),
        json!(f.created_at.format("%Y-%m-%d").to_string()),
        json!(f.updated_at.format("%Y-%m-%d").to_string()),
    ]
}

fn flow_cols() -> Vec<String> {
    cols(&["flow", "project", "owner", "tags", "created", "updated"])
}

fn sub_row(cx: &Ctx, site: &Site, s: &Subscription) -> Vec<Value> {
    vec![
        json!(s.subject),
        json!(cx.username(&s.user_id)),
        json!(s.content.kind),
        json!(subscribed_name(site, s)),
        json!(s.schedule),
        json!(s.suspended),
    ]
}

fn sub_cols() -> Vec<String> {
    cols(&["subscription", "user", "content_type", "content", "schedule", "suspended"])
}
