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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tabflow_site::{Datasource, Project, Site, User, Workbook};

use crate::ground::{self, Grounded, Quality};

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
}

impl Subject {
    fn plural(self) -> &'static str {
        match self {
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
    #[error("I could not understand the question \"{question}\"")]
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

// ------------------------------------------------------------------ words

#[derive(Debug, Clone)]
struct Word {
    text: String,
    lower: String,
    quoted: bool,
    possessive: bool,
    /// Punctuation (`,`, `?`, `.`, `;`, `:`, `!`) followed the word: names end here.
    stop_after: bool,
}

fn words(question: &str) -> Vec<Word> {
    let mut out: Vec<Word> = vec![];
    let chars: Vec<char> = question.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if matches!(c, '"' | '\u{201c}' | '\u{2018}' | '\'' | '`') {
            let close: &[char] = match c {
                '\u{201c}' => &['\u{201d}', '"'],
                '\u{2018}' => &['\u{2019}', '\''],
                '"' => &['"', '\u{201d}'],
                other => {
                    if other == '\'' {
                        &['\'', '\u{2019}']
                    } else {
                        &['`']
                    }
                }
            };
            // A closing quote followed by a non-letter ends the quoted name.
            let end = (i + 1..chars.len())
                .find(|&k| close.contains(&chars[k]) && chars.get(k + 1).is_none_or(|n| !n.is_alphanumeric()));
            if let Some(end) = end {
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim().to_string();
                if !inner.is_empty() {
                    let mut k = end + 1;
                    let possessive = chars.get(k) == Some(&'s');
                    if possessive {
                        k += 1;
                    }
                    let stop_after = chars.get(k).is_some_and(|n| matches!(n, ',' | '?' | '.' | ';' | ':' | '!'));
                    out.push(Word { lower: inner.to_lowercase(), text: inner, quoted: true, possessive, stop_after });
                    i = end + 1;
                    continue;
                }
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        let mut raw: String = chars[start..i].iter().collect();
        let mut stop_after = false;
        while let Some(last) = raw.chars().last() {
            if matches!(last, ',' | '?' | '.' | ';' | ':' | '!' | '"' | '\u{201d}') {
                raw.pop();
                stop_after = true;
            } else {
                break;
            }
        }
        let mut possessive = false;
        for suffix in ["'s", "\u{2019}s"] {
            if raw.len() > suffix.len() && raw.to_lowercase().ends_with(suffix) {
                raw.truncate(raw.len() - suffix.len());
                possessive = true;
            }
        }
        if raw.is_empty() {
            if stop_after && let Some(prev) = out.last_mut() {
                prev.stop_after = true;
            }
            continue;
        }
        let lower = raw.to_lowercase().replace('\u{2019}', "'");
        out.push(Word { text: raw, lower, quoted: false, possessive, stop_after });
    }
    out
}

/// Words that end a name: verbs, prepositions, question words, subject nouns, time words.
const STOP: &[&str] = &[
    "project",
    "projects",
    "folder",
    "folders",
    "group",
    "groups",
    "team",
    "teams",
    "workbook",
    "workbooks",
    "dashboard",
    "dashboards",
    "report",
    "reports",
    "datasource",
    "datasources",
    "data",
    "source",
    "sources",
    "user",
    "users",
    "view",
    "views",
    "that",
    "which",
    "who",
    "whom",
    "whose",
    "what",
    "not",
    "with",
    "without",
    "and",
    "or",
    "by",
    "owned",
    "owns",
    "own",
    "for",
    "since",
    "in",
    "into",
    "over",
    "during",
    "have",
    "has",
    "haven't",
    "hasn't",
    "hadn't",
    "had",
    "are",
    "is",
    "was",
    "were",
    "aren't",
    "isn't",
    "weren't",
    "use",
    "uses",
    "using",
    "used",
    "does",
    "do",
    "did",
    "doesn't",
    "don't",
    "didn't",
    "last",
    "past",
    "days",
    "weeks",
    "months",
    "years",
    "top",
    "most",
    "least",
    "sorted",
    "ordered",
    "per",
    "each",
    "than",
    "at",
    "on",
    "from",
    "to",
    "under",
    "within",
    "inside",
    "been",
    "be",
    "anyone",
    "anybody",
    "nobody",
    "no",
    "never",
    "tagged",
    "belonging",
    "belong",
    "belongs",
    "created",
    "connect",
    "connects",
    "connected",
    "depend",
    "depends",
    "rely",
    "relies",
    "built",
    "based",
    "pointing",
    "point",
    "points",
    "feed",
    "feeds",
    "behind",
    "powering",
    "power",
    "powers",
    "please",
    "there",
    "currently",
    "right",
    "now",
    "today",
    "as",
    "of",
    "signed",
    "logged",
    "viewed",
    "accessed",
    "opened",
    "visited",
    "where",
    "when",
    "how",
    "many",
    "count",
    "number",
    "list",
    "show",
    "sort",
    "order",
    "grouped",
    "group",
    "broken",
    "down",
    "it",
    "them",
    "they",
    "he",
    "she",
    "his",
    "her",
    "their",
    "its",
    "site",
    "server",
    "all",
    "any",
    "certified",
    "uncertified",
    "deprecated",
];

const ARTICLES: &[&str] = &["the", "a", "an", "our", "my", "this", "that"];

struct Text {
    w: Vec<Word>,
}

impl Text {
    fn lower(&self, i: usize) -> &str {
        self.w.get(i).filter(|w| !w.quoted).map(|w| w.lower.as_str()).unwrap_or("")
    }

    fn has(&self, ws: &[&str]) -> bool {
        self.w.iter().any(|w| !w.quoted && ws.contains(&w.lower.as_str()))
    }

    fn find(&self, ws: &[&str]) -> Option<usize> {
        self.w.iter().position(|w| !w.quoted && ws.contains(&w.lower.as_str()))
    }

    /// `seq` appears as consecutive words; returns the index of its first word.
    fn phrase(&self, seq: &[&str]) -> Option<usize> {
        (0..self.w.len()).find(|&i| seq.iter().enumerate().all(|(k, s)| self.lower(i + k) == *s))
    }

    /// Any of `phrases` (space-separated words); returns the index after the phrase.
    fn after_any(&self, phrases: &[&str]) -> Option<usize> {
        phrases.iter().find_map(|p| {
            let seq: Vec<&str> = p.split(' ').collect();
            self.phrase(&seq).map(|i| i + seq.len())
        })
    }

    /// A name starting at `i` (articles skipped): a quoted name, or words up to a stop word
    /// or punctuation. Returns it and the index after it.
    fn name_at(&self, mut i: usize) -> Option<(String, usize)> {
        while ARTICLES.contains(&self.lower(i)) {
            i += 1;
        }
        let first = self.w.get(i)?;
        if first.quoted {
            return Some((first.text.clone(), i + 1));
        }
        let mut parts = vec![];
        let mut k = i;
        while let Some(w) = self.w.get(k) {
            if w.quoted || STOP.contains(&w.lower.as_str()) {
                break;
            }
            parts.push(w.text.as_str());
            k += 1;
            if w.stop_after || w.possessive {
                break;
            }
        }
        if parts.is_empty() {
            return None;
        }
        let starts_with_number =
            tabflow_nl::first_number(parts[0]).is_some() || parts[0].chars().next().is_some_and(|c| c.is_ascii_digit());
        let ahead: Vec<&str> = self.w[i..self.w.len().min(i + 4)].iter().map(|w| w.text.as_str()).collect();
        if starts_with_number && tabflow_nl::duration_days(&ahead.join(" ")).is_some() {
            return None;
        }
        Some((parts.join(" "), k))
    }

    /// Capitalized (or quoted) words right before `end`: "Finance workbooks" → "Finance".
    fn name_before(&self, end: usize) -> Option<String> {
        // "John Smith's workbooks" names an owner, not a project.
        if end > 0 && self.w[end - 1].possessive {
            return None;
        }
        let mut start = end;
        while start > 0 {
            let w = &self.w[start - 1];
            let capital = w.quoted || w.text.chars().next().is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
            if !capital || STOP.contains(&w.lower.as_str()) || (w.stop_after && start != end) {
                break;
            }
            start -= 1;
            if w.quoted {
                break;
            }
        }
        // The first word of a sentence is capitalized anyway: "Workbooks …", "List …".
        if start == 0 && start < end && !self.w[0].quoted && QUESTION_WORDS.contains(&self.lower(0)) {
            start = 1;
        }
        (start < end).then(|| self.w[start..end].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "))
    }
}

const QUESTION_WORDS: &[&str] = &[
    "how", "what", "which", "who", "list", "show", "give", "find", "count", "are", "is", "do", "does", "top", "most",
    "get", "display", "tell", "all", "any",
];

fn subject_of(word: &str) -> Option<Subject> {
    Some(match word {
        "workbook" | "workbooks" | "dashboard" | "dashboards" | "report" | "reports" | "content" => Subject::Workbooks,
        "datasource" | "datasources" | "sources" | "extract" | "extracts" => Subject::Datasources,
        "user" | "users" | "people" | "accounts" | "account" | "members" | "licenses" | "creators" | "explorers"
        | "viewers" | "admins" | "administrators" => Subject::Users,
        "project" | "projects" | "folders" => Subject::Projects,
        "group" | "groups" | "teams" => Subject::Groups,
        "view" | "views" | "sheets" => Subject::Views,
        _ => return None,
    })
}

fn role_of(word: &str) -> Option<Role> {
    Some(match word {
        "creator" | "creators" => Role::Creator,
        "explorer" | "explorers" => Role::Explorer,
        "viewer" | "viewers" => Role::Viewer,
        "unlicensed" => Role::Unlicensed,
        "admin" | "admins" | "administrator" | "administrators" => Role::Admin,
        _ => return None,
    })
}

const NEGATIONS: &[&str] = &[
    "not", "never", "no", "nobody", "noone", "haven't", "hasn't", "hadn't", "isn't", "aren't", "wasn't", "weren't",
    "without", "didn't", "don't", "doesn't",
];
const USAGE: &[&str] = &[
    "viewed", "view", "views", "accessed", "access", "opened", "open", "used", "visited", "touched", "looked", "hits",
];

/// Understands a question without looking at a site.
pub fn understand(question: &str) -> Result<Query, Error> {
    let t = Text { w: words(question) };
    let not_understood = || Error::NotUnderstood { question: question.trim().to_string() };
    if t.w.is_empty() {
        return Err(not_understood());
    }
    // The subject: "data sources" is one word; a role word alone means users.
    let mut subject = None;
    let mut subject_at = None;
    for (i, w) in t.w.iter().enumerate() {
        if w.quoted {
            continue;
        }
        let s = if w.lower == "data" && matches!(t.lower(i + 1), "source" | "sources") {
            Some(Subject::Datasources)
        } else if matches!(w.lower.as_str(), "source" | "sources") && t.lower(i.wrapping_sub(1)) == "data" {
            None
        } else {
            subject_of(&w.lower)
        };
        if let Some(s) = s {
            // "per project" / "by owner" name a dimension, not the subject.
            if matches!(t.lower(i.wrapping_sub(1)), "per" | "by" | "each") && subject.is_some() {
                continue;
            }
            subject = Some(s);
            subject_at = Some(i);
            break;
        }
    }
    let mut q = Query {
        kind: Kind::List,
        subject: subject.unwrap_or(Subject::Workbooks),
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
    };
    q.role = t.w.iter().filter(|w| !w.quoted).find_map(|w| role_of(&w.lower));
    if q.role.is_some() && subject.is_none() {
        q.subject = Subject::Users;
    }
    let negated = t.has(NEGATIONS) || t.has(&["unused", "stale", "inactive", "dormant", "idle", "abandoned"]);
    q.never = t.has(&["never"]);
    q.days = tabflow_nl::duration_days(question);

    // --- who owns X
    if let Some(at) = t.after_any(&[
        "who owns",
        "who's the owner of",
        "whos the owner of",
        "who is the owner of",
        "owner of",
        "owners of",
        "who created",
        "who made",
        "who published",
    ]) {
        let (name, end) = t.name_at(at).ok_or_else(not_understood)?;
        q.kind = Kind::Owner;
        q.target = Some(name);
        q.subject = match t.lower(end) {
            "datasource" | "extract" => Subject::Datasources,
            "data" => Subject::Datasources,
            "project" | "folder" => Subject::Projects,
            "workbook" | "dashboard" | "report" => Subject::Workbooks,
            _ => Subject::Views, // any kind of content: decided by grounding
        };
        return Ok(q);
    }
    if let Some(i) = t.w.iter().position(|w| w.possessive)
        && matches!(t.lower(i + 1), "owner" | "owners")
    {
        let (name, _) = t.name_at(if t.w[i].quoted { i } else { t.name_start(i) }).ok_or_else(not_understood)?;
        q.kind = Kind::Owner;
        q.target = Some(name);
        q.subject = Subject::Views;
        return Ok(q);
    }

    // --- which datasources does X use / datasources used by X
    if q.subject == Subject::Datasources {
        let verb = t.find(&["use", "uses", "rely", "connect", "depend", "need", "pull"]);
        let does = t.find(&["does", "do"]);
        if let (Some(d), Some(v)) = (does, verb)
            && d < v
            && let Some((name, _)) = t.name_span(d + 1, v)
        {
            q.kind = Kind::DatasourcesOf;
            q.target = Some(name);
            return Ok(q);
        }
        if let Some(at) = t.after_any(&[
            "used by",
            "used in",
            "behind",
            "powering",
            "feeding",
            "of workbook",
            "for workbook",
            "in workbook",
            "does workbook",
        ]) && let Some((name, _)) = t.name_at(at)
        {
            q.kind = Kind::DatasourcesOf;
            q.target = Some(name);
            return Ok(q);
        }
    }

    // --- which workbooks use Y
    if matches!(q.subject, Subject::Workbooks | Subject::Views)
        && let Some(at) = t.after_any(&[
            "connected to",
            "connect to",
            "connects to",
            "built on",
            "based on",
            "depend on",
            "depends on",
            "rely on",
            "relies on",
            "pointing at",
            "pointing to",
            "point at",
            "point to",
            "points at",
            "points to",
            "fed by",
            "use",
            "uses",
            "using",
        ])
    {
        let rest: Vec<&str> = (at..t.w.len()).map(|i| t.lower(i)).collect();
        if rest.iter().take(3).any(|w| *w == "deprecated") {
            q.kind = Kind::WorkbooksUsing;
            q.target = Some("deprecated".into());
            return Ok(q);
        }
        if let Some((name, _)) = t.name_at(at) {
            q.kind = Kind::WorkbooksUsing;
            q.target = Some(name);
            q.project = t.project_filter(q.subject);
            return Ok(q);
        }
    }

    // --- filters
    q.tag = t
        .after_any(&["tagged", "with tag", "with the tag", "tag"])
        .and_then(|at| t.name_at(at))
        .map(|(n, _)| n.to_lowercase());
    if t.has(&["uncertified"]) || t.phrase(&["not", "certified"]).is_some() {
        q.certified = Some(false);
    } else if t.has(&["certified"]) {
        q.certified = Some(true);
    }
    if q.subject == Subject::Datasources && t.has(&["deprecated"]) && q.tag.is_none() {
        q.tag = Some("deprecated".into());
    }
    q.owner = t.owner_filter();
    if matches!(q.subject, Subject::Users) {
        q.group = t.group_filter(true);
    } else {
        q.group = None;
        q.project = t.project_filter(q.subject);
    }
    if q.project.is_none() && !matches!(q.subject, Subject::Users | Subject::Groups) {
        // "Finance workbooks", "the Finance project's workbooks".
        if let Some(at) = subject_at
            && let Some(name) = t.name_before(at)
            && role_of(&name.to_lowercase()).is_none()
            && !QUESTION_WORDS.contains(&name.to_lowercase().as_str())
        {
            q.project = Some(name);
        }
    }

    // --- grouped counts
    let dim_at = t
        .after_any(&[
            "grouped by",
            "broken down by",
            "breakdown by",
            "split by",
            "for each",
            "in each",
            "per",
            "by",
            "each",
        ])
        .filter(|&i| t.lower(i.wrapping_sub(2)) != "owned" && t.lower(i.wrapping_sub(2)) != "used");
    if let Some(at) = dim_at {
        let dim = match t.lower(at) {
            "project" | "projects" | "folder" => Some(Dimension::Project),
            "owner" | "owners" | "user" | "person" | "author" | "publisher" => Some(Dimension::Owner),
            "role" | "site" | "license" | "licence" => Some(Dimension::SiteRole),
            "group" | "team" => Some(Dimension::Group),
            _ => None,
        };
        if let Some(d) = dim {
            q.kind = Kind::GroupBy;
            q.dimension = Some(d);
            if q.subject == Subject::Users && d == Dimension::Group {
                q.group = None;
            }
            return Ok(q);
        }
    }
    if t.phrase(&["does", "each"]).is_some() || t.phrase(&["do", "each"]).is_some() {
        // "how many workbooks does each owner have"
        q.kind = Kind::GroupBy;
        q.dimension = Some(Dimension::Owner);
        return Ok(q);
    }

    // --- not signed in
    let sign_in = t.phrase(&["signed", "in"]).is_some()
        || t.phrase(&["sign", "in"]).is_some()
        || t.phrase(&["logged", "in"]).is_some()
        || t.phrase(&["logged", "on"]).is_some()
        || t.phrase(&["log", "in"]).is_some()
        || t.phrase(&["signed", "on"]).is_some()
        || t.has(&["login", "logins", "logon", "sign-in", "signin"]);
    if (sign_in && (negated || t.has(&["last"])))
        || (q.subject == Subject::Users && t.has(&["inactive", "dormant", "idle"]))
    {
        q.kind = Kind::NotSignedIn;
        q.subject = Subject::Users;
        if q.days.is_none() && !q.never {
            q.days = Some(90);
        }
        return Ok(q);
    }

    // --- not viewed
    let usage = t.has(USAGE);
    if (negated && usage) || t.has(&["unused", "stale", "dormant", "abandoned", "unviewed", "unopened"]) {
        q.kind = Kind::NotViewed;
        if q.subject == Subject::Users {
            return Err(not_understood());
        }
        if q.days.is_none() && !q.never {
            q.days = Some(90);
        }
        return Ok(q);
    }

    // --- most viewed
    let top = t.find(&["top"]);
    let most = t.phrase(&["most", "viewed"]).is_some()
        || t.phrase(&["most", "popular"]).is_some()
        || t.phrase(&["most", "used"]).is_some()
        || t.phrase(&["most", "visited"]).is_some()
        || t.phrase(&["most", "views"]).is_some()
        || t.phrase(&["most", "accessed"]).is_some()
        || t.phrase(&["highest", "views"]).is_some()
        || t.has(&["popular"]);
    let least = t.phrase(&["least", "viewed"]).is_some()
        || t.phrase(&["least", "popular"]).is_some()
        || t.phrase(&["least", "used"]).is_some()
        || t.phrase(&["fewest", "views"]).is_some()
        || t.phrase(&["lowest", "views"]).is_some();
    if top.is_some() || most || least {
        q.kind = Kind::MostViewed;
        q.ascending = least;
        if !matches!(q.subject, Subject::Workbooks | Subject::Views | Subject::Datasources) {
            q.subject = Subject::Workbooks;
        }
        let from = top.unwrap_or(0);
        let tail: Vec<&str> = t.w[from..].iter().take(4).map(|w| w.text.as_str()).collect();
        q.limit = tabflow_nl::first_number(&tail.join(" ")).map(|n| n as usize).filter(|&n| n > 0).or(Some(10));
        return Ok(q);
    }

    // --- counts and lists
    if t.phrase(&["how", "many"]).is_some() || t.phrase(&["number", "of"]).is_some() || t.has(&["count", "total"]) {
        q.kind = Kind::Count;
        return Ok(q);
    }
    if subject.is_some()
        && (QUESTION_WORDS.contains(&t.lower(0))
            || t.has(&["list", "show", "display", "all", "every", "which", "what", "me"])
            || t.w.len() <= 6)
    {
        q.kind = Kind::List;
        return Ok(q);
    }
    Err(not_understood())
}

impl Text {
    /// Where a possessive name that ends at `i` starts (capitalized words backwards).
    fn name_start(&self, i: usize) -> usize {
        let mut s = i;
        while s > 0 {
            let w = &self.w[s - 1];
            if w.quoted || STOP.contains(&w.lower.as_str()) || w.stop_after || ARTICLES.contains(&w.lower.as_str()) {
                break;
            }
            if !w.text.chars().next().is_some_and(|c| c.is_uppercase() || c.is_ascii_digit()) {
                break;
            }
            s -= 1;
        }
        if s == 0 && QUESTION_WORDS.contains(&self.lower(0)) && i > 0 {
            s = 1;
        }
        s
    }

    /// The words between `a` and `b` as a name (articles and a trailing "workbook" dropped).
    fn name_span(&self, mut a: usize, mut b: usize) -> Option<(String, usize)> {
        while a < b && ARTICLES.contains(&self.lower(a)) {
            a += 1;
        }
        while b > a && matches!(self.lower(b - 1), "workbook" | "dashboard" | "report" | "actually" | "currently") {
            b -= 1;
        }
        if a >= b {
            return None;
        }
        if b - a == 1 && self.w[a].quoted {
            return Some((self.w[a].text.clone(), b));
        }
        Some((self.w[a..b].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "), b))
    }

    fn owner_filter(&self) -> Option<String> {
        if let Some(at) =
            self.after_any(&["owned by", "belonging to", "belongs to", "published by", "created by", "that belong to"])
        {
            return self.name_at(at).map(|(n, _)| n);
        }
        // "that John Smith owns", "does jdoe own", "John's workbooks"
        if let Some(i) = self.find(&["owns", "own"]) {
            let from =
                (0..i).rev().take(5).find(|&k| matches!(self.lower(k), "that" | "which" | "does" | "do" | "did"));
            if let Some(k) = from
                && let Some((name, _)) = self.name_span(k + 1, i)
            {
                return Some(name);
            }
        }
        let i = self.w.iter().position(|w| w.possessive)?;
        if matches!(self.lower(i + 1), "owner" | "owners") {
            return None;
        }
        if self.w[i].quoted {
            return Some(self.w[i].text.clone());
        }
        let s = self.name_start(i);
        self.name_span(s, i + 1).map(|(n, _)| n)
    }

    fn group_filter(&self, users: bool) -> Option<String> {
        for marker in ["members of", "member of", "belong to", "in group", "in the group", "in", "from"] {
            let seq: Vec<&str> = marker.split(' ').collect();
            let mut from = 0;
            while let Some(i) =
                (from..self.w.len()).find(|&i| seq.iter().enumerate().all(|(k, s)| self.lower(i + k) == *s))
            {
                from = i + 1;
                if let Some((name, end)) = self.name_at(i + seq.len()) {
                    let explicit = matches!(self.lower(end), "group" | "team")
                        || marker.contains("group")
                        || marker.contains("of")
                        || marker.contains("belong");
                    if explicit || (users && !matches!(self.lower(end), "project" | "folder")) {
                        return Some(name);
                    }
                }
            }
        }
        None
    }

    fn project_filter(&self, subject: Subject) -> Option<String> {
        let _ = subject;
        for marker in ["in project", "in the project", "in", "from", "under", "inside", "within"] {
            let seq: Vec<&str> = marker.split(' ').collect();
            let mut from = 0;
            while let Some(i) =
                (from..self.w.len()).find(|&i| seq.iter().enumerate().all(|(k, s)| self.lower(i + k) == *s))
            {
                from = i + 1;
                if let Some((name, end)) = self.name_at(i + seq.len()) {
                    if matches!(self.lower(end), "group" | "team") {
                        continue;
                    }
                    return Some(name);
                }
            }
        }
        // "the Finance project"
        let p = self.find(&["project"])?;
        self.name_before(p)
    }
}

// ------------------------------------------------------------------ answering

struct Ctx<'a> {
    site: &'a Site,
    users: HashMap<&'a str, &'a User>,
    projects: HashMap<&'a str, &'a Project>,
    notes: Vec<String>,
}

fn day(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.format("%Y-%m-%d").to_string())).unwrap_or(Value::Null)
}

fn last_view(w: &Workbook) -> Option<DateTime<Utc>> {
    w.views.iter().filter_map(|v| v.last_viewed_at).max()
}

fn total_views(w: &Workbook) -> u64 {
    w.views.iter().map(|v| v.total_views).sum()
}

impl<'a> Ctx<'a> {
    fn path(&self, id: &str) -> String {
        let mut parts = vec![];
        let mut cur = Some(id);
        while let Some(c) = cur {
            let Some(p) = self.projects.get(c) else { break };
            parts.push(p.name.as_str());
            cur = p.parent_id.as_deref();
            if parts.len() > 32 {
                break;
            }
        }
        parts.reverse();
        parts.join(" / ")
    }

    fn username(&self, id: &str) -> String {
        self.users.get(id).map(|u| u.name.clone()).unwrap_or_else(|| id.to_string())
    }

    fn subtree(&self, root: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = [root.to_string()].into();
        loop {
            let before = out.len();
            for p in &self.site.projects {
                if p.parent_id.as_ref().is_some_and(|x| out.contains(x)) {
                    out.insert(p.id.clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    fn note_reading(&mut self, wanted: &str, found: &str, what: &str, q: Quality) {
        if q != Quality::Exact && !found.eq_ignore_ascii_case(wanted) {
            self.notes.push(format!("'{wanted}' was read as the {what} '{found}'"));
        }
    }

    fn project(&mut self, wanted: &str) -> Result<&'a Project, Error> {
        let site = self.site;
        let all: Vec<&Project> = site.projects.iter().collect();
        match ground::ground(wanted, &all, |p| vec![p.name.clone()]) {
            Grounded::One(p, q) => {
                self.note_reading(wanted, &p.name, "project", q);
                Ok(p)
            }
            Grounded::Many(ps) => {
                let top: Vec<&&Project> = ps.iter().filter(|p| p.parent_id.is_none()).collect();
                if top.len() == 1 && ps.iter().all(|p| p.name == top[0].name) {
                    return Ok(top[0]);
                }
                Err(Error::Ambiguous {
                    what: "project",
                    wanted: wanted.into(),
                    candidates: ps.iter().map(|p| self.path(&p.id)).collect(),
                    choices: ps.iter().map(|p| p.name.clone()).collect(),
                })
            }
            Grounded::None => Err(Error::NotFound {
                what: "project",
                wanted: wanted.into(),
                suggestions: ground::closest(wanted, site.projects.iter().map(|p| p.name.as_str()), 3),
            }),
        }
    }

    fn user(&mut self, wanted: &str) -> Result<&'a User, Error> {
        let site = self.site;
        let all: Vec<&User> = site.users.iter().collect();
        match ground::ground(wanted, &all, |u| vec![u.name.clone(), u.full_name.clone(), u.email.clone()]) {
            Grounded::One(u, q) => {
                if q != Quality::Exact {
                    self.notes.push(format!("'{wanted}' was read as the user {} ({})", u.full_name, u.name));
                }
                Ok(u)
            }
            Grounded::Many(us) => Err(Error::Ambiguous {
                what: "user",
                wanted: wanted.into(),
                candidates: us.iter().map(|u| format!("{} ({})", u.full_name, u.name)).collect(),
                choices: us.iter().map(|u| u.name.clone()).collect(),
            }),
            Grounded::None => Err(Error::NotFound {
                what: "user",
                wanted: wanted.into(),
                suggestions: ground::closest(wanted, site.users.iter().map(|u| u.full_name.as_str()), 3),
            }),
        }
    }

    fn group(&mut self, wanted: &str) -> Result<&'a tabflow_site::Group, Error> {
        let site = self.site;
        let all: Vec<&tabflow_site::Group> = site.groups.iter().collect();
        match ground::ground(wanted, &all, |g| vec![g.name.clone()]) {
            Grounded::One(g, q) => {
                self.note_reading(wanted, &g.name, "group", q);
                Ok(g)
            }
            Grounded::Many(gs) => Err(Error::Ambiguous {
                what: "group",
                wanted: wanted.into(),
                candidates: gs.iter().map(|g| g.name.clone()).collect(),
                choices: gs.iter().map(|g| g.name.clone()).collect(),
            }),
            Grounded::None => Err(Error::NotFound {
                what: "group",
                wanted: wanted.into(),
                suggestions: ground::closest(wanted, site.groups.iter().map(|g| g.name.as_str()), 3),
            }),
        }
    }

    /// Items named `wanted`; several with exactly that name are all returned (an answer can
    /// list them), several partial matches are ambiguous.
    fn named<T: Clone>(
        &mut self,
        wanted: &str,
        what: &'static str,
        items: Vec<T>,
        name: impl Fn(&T) -> String,
        describe: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, Error> {
        match ground::ground(wanted, &items, |x| vec![name(x)]) {
            Grounded::One(x, q) => {
                self.note_reading(wanted, &name(&x), what, q);
                Ok(vec![x])
            }
            Grounded::Many(xs) => {
                let w = ground::normalize(wanted);
                if xs.iter().all(|x| ground::normalize(&name(x)) == w) {
                    self.notes.push(format!("{} {what}s are named '{}'", xs.len(), name(&xs[0])));
                    return Ok(xs);
                }
                Err(Error::Ambiguous {
                    what,
                    wanted: wanted.into(),
                    candidates: xs.iter().map(describe).collect(),
                    choices: xs.iter().map(&name).collect(),
                })
            }
            Grounded::None => Err(Error::NotFound {
                what,
                wanted: wanted.into(),
                suggestions: ground::closest(
                    wanted,
                    items.iter().map(&name).collect::<Vec<_>>().iter().map(String::as_str),
                    3,
                ),
            }),
        }
    }

    fn workbooks_named(&mut self, wanted: &str) -> Result<Vec<&'a Workbook>, Error> {
        let site = self.site;
        let projects = self.projects.clone();
        let items: Vec<&Workbook> = site.workbooks.iter().collect();
        self.named(
            wanted,
            "workbook",
            items,
            |w| w.name.clone(),
            |w| format!("{} ({})", w.name, projects.get(w.project_id.as_str()).map(|p| p.name.as_str()).unwrap_or("?")),
        )
    }

    fn datasources_named(&mut self, wanted: &str) -> Result<Vec<&'a Datasource>, Error> {
        let site = self.site;
        let projects = self.projects.clone();
        let items: Vec<&Datasource> = site.datasources.iter().collect();
        self.named(
            wanted,
            "datasource",
            items,
            |d| d.name.clone(),
            |d| format!("{} ({})", d.name, projects.get(d.project_id.as_str()).map(|p| p.name.as_str()).unwrap_or("?")),
        )
    }
}

fn cols(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

/// Answers `question` from `site` (read-only). `site.now` is "now" for ages.
pub fn answer(site: &Site, question: &str) -> Result<Answer, Error> {
    let q = understand(question)?;
    answer_query(site, question, &q)
}

/// Answers an understood question.
pub fn answer_query(site: &Site, question: &str, q: &Query) -> Result<Answer, Error> {
    let mut cx = Ctx {
        site,
        users: site.users.iter().map(|u| (u.id.as_str(), u)).collect(),
        projects: site.projects.iter().map(|p| (p.id.as_str(), p)).collect(),
        notes: vec![],
    };
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
    let workbooks: Vec<&Workbook> =
        site.workbooks.iter().filter(|w| in_scope(&w.project_id, &w.owner_id, &w.tags)).collect();
    let datasources: Vec<&Datasource> = site
        .datasources
        .iter()
        .filter(|d| in_scope(&d.project_id, &d.owner_id, &d.tags))
        .filter(|d| q.certified.is_none_or(|c| d.certified == c))
        .collect();
    if q.certified.is_some() {
        scope_label =
            format!("{}{scope_label}", if q.certified == Some(true) { " (certified)" } else { " (not certified)" });
    }
    let users: Vec<&User> = site
        .users
        .iter()
        .filter(|u| group.is_none_or(|g| g.members.contains(&u.id)))
        .filter(|u| q.role.is_none_or(|r| r.site_roles().contains(&u.site_role.as_str())))
        .collect();
    if let Some(r) = q.role {
        scope_label.push_str(&format!(" who are {} ({})", r.label(), r.site_roles().join(", ")));
    }
    // Projects "in Finance" are its sub-projects.
    let projects: Vec<&Project> = site
        .projects
        .iter()
        .filter(|p| {
            scope.as_ref().is_none_or(|s| {
                s.contains(&p.id) && p.parent_id.is_some() && s.contains(p.parent_id.as_deref().unwrap_or(""))
            })
        })
        .filter(|p| owner.is_none_or(|u| u.id == p.owner_id))
        .collect();
    let uses: HashMap<&str, usize> =
        site.workbooks.iter().flat_map(|w| w.datasource_ids.iter()).fold(HashMap::new(), |mut m, d| {
            *m.entry(d.as_str()).or_default() += 1;
            m
        });

    let wb_row = |cx: &Ctx, w: &Workbook| {
        vec![
            json!(w.name),
            json!(cx.path(&w.project_id)),
            json!(cx.username(&w.owner_id)),
            json!(total_views(w)),
            day(last_view(w)),
        ]
    };
    let wb_cols = || cols(&["workbook", "project", "owner", "views", "last_viewed"]);
    let ds_row = |cx: &Ctx, d: &Datasource| {
        vec![
            json!(d.name),
            json!(cx.path(&d.project_id)),
            json!(cx.username(&d.owner_id)),
            json!(d.certified),
            json!(d.tags),
            json!(uses.get(d.id.as_str()).copied().unwrap_or(0)),
        ]
    };
    let ds_cols = || cols(&["datasource", "project", "owner", "certified", "tags", "workbooks"]);
    let user_row = |u: &User| vec![json!(u.name), json!(u.full_name), json!(u.site_role), day(u.last_login)];
    let user_cols = || cols(&["user", "full_name", "site_role", "last_login"]);

    let subject = q.subject;
    let (summary, columns, rows, total): (String, Vec<String>, Vec<Vec<Value>>, usize) = match q.kind {
        Kind::Count | Kind::List => {
            let (columns, mut rows): (Vec<String>, Vec<Vec<Value>>) = match subject {
                Subject::Workbooks => (wb_cols(), workbooks.iter().map(|w| wb_row(&cx, w)).collect()),
                Subject::Datasources => (ds_cols(), datasources.iter().map(|d| ds_row(&cx, d)).collect()),
                Subject::Users => (user_cols(), users.iter().map(|u| user_row(u)).collect()),
                Subject::Projects => (
                    cols(&["project", "owner", "workbooks"]),
                    projects
                        .iter()
                        .map(|p| {
                            let n = site.workbooks.iter().filter(|w| w.project_id == p.id).count();
                            vec![json!(cx.path(&p.id)), json!(cx.username(&p.owner_id)), json!(n)]
                        })
                        .collect(),
                ),
                Subject::Groups => (
                    cols(&["group", "members"]),
                    site.groups.iter().map(|g| vec![json!(g.name), json!(g.members.len())]).collect(),
                ),
                Subject::Views => (
                    cols(&["view", "workbook", "project", "views", "last_viewed"]),
                    workbooks
                        .iter()
                        .flat_map(|w| {
                            let cx = &cx;
                            w.views.iter().map(move |v| {
                                vec![
                                    json!(v.name),
                                    json!(w.name),
                                    json!(cx.path(&w.project_id)),
                                    json!(v.total_views),
                                    day(v.last_viewed_at),
                                ]
                            })
                        })
                        .collect(),
                ),
            };
            rows.sort_by(|a, b| a.iter().map(Value::to_string).cmp(b.iter().map(Value::to_string)));
            let n = rows.len();
            let noun = if n == 1 { subject.singular() } else { subject.plural() };
            if q.kind == Kind::Count {
                (format!("{n} {noun}{scope_label}"), cols(&["count"]), vec![vec![json!(n)]], n)
            } else {
                (format!("{n} {noun}{scope_label}"), columns, rows, n)
            }
        }
        Kind::Owner => {
            let target = q.target.clone().unwrap_or_default();
            let mut rows = vec![];
            let describe = |cx: &Ctx, kind: &str, name: &str, project: Option<&str>, owner_id: &str| {
                let u = cx.users.get(owner_id);
                vec![
                    json!(kind),
                    json!(name),
                    json!(project.map(|p| cx.path(p))),
                    json!(u.map(|u| u.name.clone()).unwrap_or_else(|| owner_id.into())),
                    json!(u.map(|u| u.full_name.clone())),
                    json!(u.map(|u| u.email.clone())),
                ]
            };
            // Which kind of item: the word after the name, else whichever matches best.
            let kinds: Vec<Subject> = match subject {
                Subject::Workbooks | Subject::Datasources | Subject::Projects => vec![subject],
                _ => best_kinds(site, &target),
            };
            for k in kinds {
                match k {
                    Subject::Workbooks => {
                        for w in cx.workbooks_named(&target)? {
                            rows.push(describe(&cx, "workbook", &w.name, Some(&w.project_id), &w.owner_id));
                        }
                    }
                    Subject::Datasources => {
                        for d in cx.datasources_named(&target)? {
                            rows.push(describe(&cx, "datasource", &d.name, Some(&d.project_id), &d.owner_id));
                        }
                    }
                    _ => {
                        let p = cx.project(&target)?;
                        rows.push(describe(&cx, "project", &p.name, p.parent_id.as_deref(), &p.owner_id));
                    }
                }
            }
            let summary = rows
                .iter()
                .map(|r| {
                    format!(
                        "{} '{}' is owned by {} ({})",
                        r[0].as_str().unwrap_or(""),
                        r[1].as_str().unwrap_or(""),
                        r[4].as_str().unwrap_or(""),
                        r[3].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let n = rows.len();
            (summary, cols(&["type", "name", "project", "owner", "owner_name", "owner_email"]), rows, n)
        }
        Kind::MostViewed => {
            let limit = q.limit.unwrap_or(10);
            let order = |a: u64, b: u64| if q.ascending { a.cmp(&b) } else { b.cmp(&a) };
            let word = if q.ascending { "least" } else { "most" };
            match subject {
                Subject::Views => {
                    let mut all: Vec<(&Workbook, &tabflow_site::View)> =
                        workbooks.iter().flat_map(|w| w.views.iter().map(move |v| (*w, v))).collect();
                    all.sort_by(|a, b| order(a.1.total_views, b.1.total_views).then(a.1.name.cmp(&b.1.name)));
                    let total = all.len();
                    let rows = all
                        .iter()
                        .take(limit)
                        .map(|(w, v)| {
                            vec![
                                json!(v.name),
                                json!(w.name),
                                json!(cx.path(&w.project_id)),
                                json!(v.total_views),
                                day(v.last_viewed_at),
                            ]
                        })
                        .collect::<Vec<_>>();
                    (
                        format!("The {} {word} viewed views{scope_label} (of {total})", rows.len()),
                        cols(&["view", "workbook", "project", "views", "last_viewed"]),
                        rows,
                        total,
                    )
                }
                Subject::Datasources => {
                    let mut all = datasources.clone();
                    all.sort_by(|a, b| order(a.total_hits, b.total_hits).then(a.name.cmp(&b.name)));
                    let total = all.len();
                    let rows: Vec<Vec<Value>> = all
                        .iter()
                        .take(limit)
                        .map(|d| {
                            vec![
                                json!(d.name),
                                json!(cx.path(&d.project_id)),
                                json!(cx.username(&d.owner_id)),
                                json!(d.total_hits),
                                day(d.last_accessed_at),
                            ]
                        })
                        .collect();
                    (
                        format!("The {} {word} used datasources{scope_label} (of {total})", rows.len()),
                        cols(&["datasource", "project", "owner", "hits", "last_accessed"]),
                        rows,
                        total,
                    )
                }
                _ => {
                    let mut all = workbooks.clone();
                    all.sort_by(|a, b| {
                        order(total_views(a), total_views(b)).then(a.name.cmp(&b.name)).then(a.id.cmp(&b.id))
                    });
                    let total = all.len();
                    let rows: Vec<Vec<Value>> = all.iter().take(limit).map(|w| wb_row(&cx, w)).collect();
                    (
                        format!("The {} {word} viewed workbooks{scope_label} (of {total})", rows.len()),
                        wb_cols(),
                        rows,
                        total,
                    )
                }
            }
        }
        Kind::NotViewed => {
            let cutoff = q.days.filter(|_| !q.never).map(|d| now - Duration::days(i64::from(d)));
            let window = match (q.never, q.days) {
                (true, _) | (false, None) => "have never been viewed".to_string(),
                (false, Some(d)) => format!(
                    "have not been viewed in {d} days (since {})",
                    cutoff.map(|c| c.format("%Y-%m-%d").to_string()).unwrap_or_default()
                ),
            };
            if subject == Subject::Datasources {
                let mut hits = vec![];
                let mut no_data = 0;
                for d in &datasources {
                    let stale = match (d.last_accessed_at, cutoff) {
                        (Some(l), Some(c)) => l < c,
                        (Some(_), None) => false,
                        (None, _) if d.total_hits == 0 => true,
                        (None, _) => {
                            no_data += 1;
                            false
                        }
                    };
                    if stale && d.created_at.is_none_or(|t| cutoff.is_none_or(|c| t <= c)) {
                        hits.push(*d);
                    }
                }
                if no_data > 0 {
                    cx.notes.push(format!(
                        "{no_data} datasources have hits but no last-access date (no usage data; left out)"
                    ));
                }
                hits.sort_by(|a, b| a.last_accessed_at.cmp(&b.last_accessed_at).then(a.name.cmp(&b.name)));
                let rows: Vec<Vec<Value>> = hits
                    .iter()
                    .map(|d| {
                        vec![
                            json!(d.name),
                            json!(cx.path(&d.project_id)),
                            json!(cx.username(&d.owner_id)),
                            json!(d.total_hits),
                            day(d.last_accessed_at),
                        ]
                    })
                    .collect();
                let n = rows.len();
                (
                    format!("{n} datasources{scope_label} {}", window.replace("viewed", "accessed")),
                    cols(&["datasource", "project", "owner", "hits", "last_accessed"]),
                    rows,
                    n,
                )
            } else {
                let mut hits = vec![];
                let (mut no_data, mut too_new, mut never) = (0, 0, 0);
                for w in &workbooks {
                    let last = last_view(w);
                    let stale = match (last, cutoff) {
                        (Some(l), Some(c)) => l < c,
                        (Some(_), None) => false,
                        (None, _) if total_views(w) == 0 => true,
                        (None, _) => {
                            no_data += 1;
                            false
                        }
                    };
                    if !stale {
                        continue;
                    }
                    if cutoff.is_some_and(|c| w.created_at > c) {
                        too_new += 1;
                        continue;
                    }
                    if last.is_none() {
                        never += 1;
                    }
                    hits.push(*w);
                }
                if no_data > 0 {
                    cx.notes.push(format!(
                        "{no_data} workbooks have views but no last-viewed date (no usage data; left out)"
                    ));
                }
                if too_new > 0 {
                    cx.notes.push(format!(
                        "{too_new} unviewed workbooks were created less than {} days ago (left out)",
                        q.days.unwrap_or(0)
                    ));
                }
                if !site.workbooks.iter().any(|w| last_view(w).is_some()) {
                    cx.notes.push("this site has no last-viewed dates (usage source missing): only never-viewed workbooks can be judged".into());
                }
                hits.sort_by(|a, b| last_view(a).cmp(&last_view(b)).then(a.name.cmp(&b.name)).then(a.id.cmp(&b.id)));
                let rows: Vec<Vec<Value>> = hits.iter().map(|w| wb_row(&cx, w)).collect();
                let n = rows.len();
                let never_note =
                    if cutoff.is_some() && never > 0 { format!(" ({never} never viewed)") } else { String::new() };
                (format!("{n} workbooks{scope_label} {window}{never_note}"), wb_cols(), rows, n)
            }
        }
        Kind::NotSignedIn => {
            let cutoff = q.days.filter(|_| !q.never).map(|d| now - Duration::days(i64::from(d)));
            let mut hits: Vec<&User> = users
                .iter()
                .copied()
                .filter(|u| match (u.last_login, cutoff) {
                    (None, _) => true,
                    (Some(l), Some(c)) => l < c,
                    (Some(_), None) => false,
                })
                .collect();
            hits.sort_by(|a, b| a.last_login.cmp(&b.last_login).then(a.name.cmp(&b.name)));
            let never = hits.iter().filter(|u| u.last_login.is_none()).count();
            let rows: Vec<Vec<Value>> = hits.iter().map(|u| user_row(u)).collect();
            let n = rows.len();
            let window = match cutoff {
                Some(c) => format!(
                    "have not signed in for {} days (since {}; {never} never signed in)",
                    q.days.unwrap_or(0),
                    c.format("%Y-%m-%d")
                ),
                None => "have never signed in".into(),
            };
            (format!("{n} users{scope_label} {window}"), user_cols(), rows, n)
        }
        Kind::DatasourcesOf => {
            let target = q.target.clone().unwrap_or_default();
            let wbs = cx.workbooks_named(&target)?;
            let by_id: HashMap<&str, &Datasource> = site.datasources.iter().map(|d| (d.id.as_str(), d)).collect();
            let mut rows = vec![];
            for w in &wbs {
                for id in &w.datasource_ids {
                    let mut row = match by_id.get(id.as_str()) {
                        Some(d) => ds_row(&cx, d),
                        None => vec![json!(id), Value::Null, Value::Null, Value::Null, json!([]), Value::Null],
                    };
                    row.insert(0, json!(format!("{} ({})", w.name, cx.path(&w.project_id))));
                    rows.push(row);
                }
            }
            let mut columns = ds_cols();
            columns.insert(0, "workbook".into());
            let n = rows.len();
            let names = match wbs.as_slice() {
                [one] => format!("Workbook '{}' uses", one.name),
                many => format!(
                    "The {} workbooks named '{}' use",
                    many.len(),
                    many.first().map(|w| w.name.as_str()).unwrap_or("")
                ),
            };
            let summary = if n == 0 {
                format!("{names} no published datasources (embedded connections only)")
            } else {
                format!("{names} {n} published datasource{}", if n == 1 { "" } else { "s" })
            };
            (summary, columns, rows, n)
        }
        Kind::WorkbooksUsing => {
            let target = q.target.clone().unwrap_or_default();
            let sources: Vec<&Datasource> = if target == "deprecated" {
                site.datasources
                    .iter()
                    .filter(|d| d.tags.iter().any(|t| t.eq_ignore_ascii_case("deprecated")))
                    .collect()
            } else {
                cx.datasources_named(&target)?
            };
            let ids: BTreeMap<&str, &str> = sources.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
            let mut rows = vec![];
            for w in &workbooks {
                let used: Vec<&str> = w.datasource_ids.iter().filter_map(|d| ids.get(d.as_str()).copied()).collect();
                if !used.is_empty() {
                    let mut row = wb_row(&cx, w);
                    row.push(json!(used.join(", ")));
                    rows.push(row);
                }
            }
            rows.sort_by(|a, b| a.iter().map(Value::to_string).cmp(b.iter().map(Value::to_string)));
            let mut columns = wb_cols();
            columns.push("datasource".into());
            let n = rows.len();
            let what = if target == "deprecated" {
                format!(
                    "deprecated datasources ({})",
                    sources.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                )
            } else {
                sources.iter().map(|d| format!("'{}'", d.name)).collect::<Vec<_>>().join(", ")
            };
            (format!("{n} workbook{}{scope_label} use {what}", if n == 1 { "" } else { "s" }), columns, rows, n)
        }
        Kind::GroupBy => {
            let dim = q.dimension.unwrap_or(Dimension::Project);
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            let mut add = |k: String| *counts.entry(k).or_default() += 1;
            match (subject, dim) {
                (Subject::Users, Dimension::Group) => {
                    for g in &site.groups {
                        counts.insert(g.name.clone(), users.iter().filter(|u| g.members.contains(&u.id)).count());
                    }
                }
                (Subject::Users, _) => users.iter().for_each(|u| add(u.site_role.clone())),
                (Subject::Datasources, Dimension::Owner) => {
                    datasources.iter().for_each(|d| add(cx.username(&d.owner_id)))
                }
                (Subject::Datasources, _) => datasources.iter().for_each(|d| add(cx.path(&d.project_id))),
                (Subject::Views, Dimension::Owner) => {
                    workbooks.iter().for_each(|w| w.views.iter().for_each(|_| add(cx.username(&w.owner_id))))
                }
                (Subject::Views, _) => {
                    workbooks.iter().for_each(|w| w.views.iter().for_each(|_| add(cx.path(&w.project_id))))
                }
                (Subject::Projects, _) => projects.iter().for_each(|p| add(cx.username(&p.owner_id))),
                (_, Dimension::Owner) => workbooks.iter().for_each(|w| add(cx.username(&w.owner_id))),
                _ => workbooks.iter().for_each(|w| add(cx.path(&w.project_id))),
            }
            let label = match (subject, dim) {
                (Subject::Users, Dimension::Group) => "group",
                (Subject::Users, _) => "site_role",
                (Subject::Projects, _) | (_, Dimension::Owner) => "owner",
                _ => "project",
            };
            let mut rows: Vec<(String, usize)> = counts.into_iter().collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let total: usize = rows.iter().map(|r| r.1).sum();
            let groups = rows.len();
            (
                format!(
                    "{total} {}{scope_label} by {} ({groups} {}s)",
                    subject.plural(),
                    label.replace('_', " "),
                    label.replace('_', " ")
                ),
                cols(&[label, subject.plural()]),
                rows.into_iter().map(|(k, n)| vec![json!(k), json!(n)]).collect(),
                total,
            )
        }
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

/// For "who owns X" without a type word: the kinds of item whose names match X best
/// (workbooks, datasources and projects compared; equal quality keeps all of them).
fn best_kinds(site: &Site, wanted: &str) -> Vec<Subject> {
    let quality = |g: Grounded<String>| -> Option<u8> {
        match g {
            Grounded::One(_, q) => Some(q as u8),
            Grounded::Many(_) => Some(4),
            Grounded::None => None,
        }
    };
    let names = |v: Vec<String>| v;
    let wb = quality(ground::ground(wanted, &names(site.workbooks.iter().map(|w| w.name.clone()).collect()), |n| {
        vec![n.clone()]
    }));
    let ds = quality(ground::ground(wanted, &names(site.datasources.iter().map(|d| d.name.clone()).collect()), |n| {
        vec![n.clone()]
    }));
    let pr = quality(ground::ground(wanted, &names(site.projects.iter().map(|p| p.name.clone()).collect()), |n| {
        vec![n.clone()]
    }));
    // Exact duplicate names come back as Many; rank them as exact when the name is equal.
    let exact = |v: &mut Option<u8>, list: Vec<&str>| {
        if *v == Some(4) && list.iter().any(|n| ground::normalize(n) == ground::normalize(wanted)) {
            *v = Some(Quality::Normalized as u8);
        }
    };
    let (mut wb, mut ds, pr) = (wb, ds, pr);
    exact(&mut wb, site.workbooks.iter().map(|w| w.name.as_str()).collect());
    exact(&mut ds, site.datasources.iter().map(|d| d.name.as_str()).collect());
    let best = [wb, ds, pr].into_iter().flatten().min();
    let Some(best) = best else { return vec![Subject::Workbooks] };
    let mut out = vec![];
    if wb == Some(best) {
        out.push(Subject::Workbooks);
    }
    if ds == Some(best) {
        out.push(Subject::Datasources);
    }
    if pr == Some(best) {
        out.push(Subject::Projects);
    }
    out
}

/// The answer as a readable table (rows beyond `max_rows` are counted, not printed).
pub fn render(a: &Answer, max_rows: usize) -> String {
    let mut out = format!("{}\n", a.summary);
    for n in &a.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    if a.kind == Kind::Count || a.rows.is_empty() {
        return out;
    }
    let cell = |v: &Value| match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(xs) => xs.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
        Value::Bool(b) => {
            if *b {
                "yes".into()
            } else {
                "no".into()
            }
        }
        other => other.to_string(),
    };
    let shown: Vec<Vec<String>> = a.rows.iter().take(max_rows).map(|r| r.iter().map(cell).collect()).collect();
    let widths: Vec<usize> = a
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            shown.iter().map(|r| r.get(i).map_or(0, |s| s.chars().count())).max().unwrap_or(0).max(c.len()).min(48)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let c: String = if c.chars().count() > w {
                c.chars().take(w.saturating_sub(1)).chain(['…']).collect()
            } else {
                c.clone()
            };
            s.push_str(&format!(" {c:<w$}"));
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(a.columns.iter().map(|c| c.to_uppercase().replace('_', " ")).collect()));
    for r in shown {
        out.push_str(&line(r));
    }
    if a.rows.len() > max_rows {
        out.push_str(&format!("  … and {} more (--json shows all)\n", a.rows.len() - max_rows));
    }
    out
}

/// The choices a plan question offers for this error (names that ground uniquely).
pub fn choices(e: &Error) -> Vec<String> {
    match e {
        Error::Ambiguous { choices, .. } => choices.clone(),
        Error::NotFound { suggestions, .. } => suggestions.clone(),
        _ => vec![],
    }
}

/// The question with the name `wanted` replaced by the quoted `chosen` one.
pub fn with_name(question: &str, wanted: &str, chosen: &str) -> String {
    let quoted = format!("\"{chosen}\"");
    for candidate in [format!("\"{wanted}\""), format!("'{wanted}'"), wanted.to_string()] {
        if let Some(i) = question.find(&candidate) {
            return format!("{}{quoted}{}", &question[..i], &question[i + candidate.len()..]);
        }
    }
    question.to_string()
}

/// The error as a plan question or CLI message, with what the user can do next.
pub fn explain(e: &Error) -> String {
    match e {
        Error::NotUnderstood { question } => format!(
            "I could not understand the question \"{question}\". I can answer questions like: {}.",
            EXAMPLES.iter().map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ")
        ),
        Error::Ambiguous { what, wanted, candidates, .. } => {
            format!("Which {what} do you mean by '{wanted}'? {}", candidates.join(", "))
        }
        Error::NotFound { suggestions, .. } if !suggestions.is_empty() => e.to_string(),
        Error::NotFound { .. } => format!("{e}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Site {
        tabflow_site::generate::demo()
    }

    fn q(s: &str) -> Query {
        understand(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn understands_the_kinds_of_question() {
        let c = q("How many workbooks are in the Finance project?");
        assert_eq!((c.kind, c.subject, c.project.as_deref()), (Kind::Count, Subject::Workbooks, Some("Finance")));
        let c = q("how many users are Creators");
        assert_eq!((c.kind, c.subject, c.role), (Kind::Count, Subject::Users, Some(Role::Creator)));
        let c = q("List all users in the Finance group");
        assert_eq!((c.kind, c.subject, c.group.as_deref()), (Kind::List, Subject::Users, Some("Finance")));
        let c = q("Who owns the Quarterly Revenue workbook?");
        assert_eq!(
            (c.kind, c.subject, c.target.as_deref()),
            (Kind::Owner, Subject::Workbooks, Some("Quarterly Revenue"))
        );
        let c = q("Which workbooks haven't been viewed in the last 30 days?");
        assert_eq!((c.kind, c.days), (Kind::NotViewed, Some(30)));
        let c = q("top 5 most viewed workbooks in Marketing");
        assert_eq!((c.kind, c.limit, c.project.as_deref()), (Kind::MostViewed, Some(5), Some("Marketing")));
        let c = q("users who have not signed in for 60 days");
        assert_eq!((c.kind, c.days), (Kind::NotSignedIn, Some(60)));
        let c = q("What datasources does Q3 Tax Tracker use?");
        assert_eq!((c.kind, c.target.as_deref()), (Kind::DatasourcesOf, Some("Q3 Tax Tracker")));
        let c = q("Which workbooks use the Finance GL datasource?");
        assert_eq!((c.kind, c.target.as_deref()), (Kind::WorkbooksUsing, Some("Finance GL")));
        let c = q("workbooks per project");
        assert_eq!((c.kind, c.dimension), (Kind::GroupBy, Some(Dimension::Project)));
        let c = q("how many workbooks does each owner have?");
        assert_eq!((c.kind, c.dimension), (Kind::GroupBy, Some(Dimension::Owner)));
        let c = q("Show John Smith's workbooks");
        assert_eq!((c.kind, c.owner.as_deref()), (Kind::List, Some("John Smith")));
        let c = q("Finance workbooks nobody has opened in six months");
        assert_eq!((c.kind, c.days, c.project.as_deref()), (Kind::NotViewed, Some(180), Some("Finance")));
        let c = q("workbooks that use deprecated datasources");
        assert_eq!((c.kind, c.target.as_deref()), (Kind::WorkbooksUsing, Some("deprecated")));
        let c = q("which users have never logged in?");
        assert_eq!((c.kind, c.never), (Kind::NotSignedIn, true));
    }

    #[test]
    fn nonsense_is_not_understood_and_never_guessed() {
        for s in ["make me a sandwich", "", "what is the meaning of life"] {
            assert!(matches!(understand(s), Err(Error::NotUnderstood { .. })), "{s}: {:?}", understand(s));
        }
        let text = explain(&Error::NotUnderstood { question: "x".into() });
        assert!(text.contains("how many workbooks are in Finance"), "{text}");
    }

    #[test]
    fn counts_match_the_site() {
        let site = demo();
        let finance = site.projects.iter().find(|p| p.name == "Finance").map(|p| p.id.clone()).unwrap();
        let mut tree: BTreeSet<String> = [finance].into();
        for _ in 0..5 {
            for p in &site.projects {
                if p.parent_id.as_ref().is_some_and(|x| tree.contains(x)) {
                    tree.insert(p.id.clone());
                }
            }
        }
        let expected = site.workbooks.iter().filter(|w| tree.contains(&w.project_id)).count();
        let a = answer(&site, "how many workbooks are in Finance?").unwrap();
        assert_eq!(a.total, expected);
        assert_eq!(a.rows, vec![vec![json!(expected)]]);
        let creators = site
            .users
            .iter()
            .filter(|u| u.site_role.contains("Creator") || u.site_role == "ServerAdministrator")
            .count();
        assert_eq!(answer(&site, "how many users are Creators").unwrap().total, creators);
    }

    #[test]
    fn names_are_grounded_or_questioned() {
        let site = demo();
        let a = answer(&site, "how many workbooks are in Finanse").unwrap();
        assert!(a.notes.iter().any(|n| n.contains("'Finanse' was read as the project 'Finance'")), "{:?}", a.notes);
        match answer(&site, "workbooks owned by John") {
            Err(Error::Ambiguous { candidates, choices, .. }) => {
                assert_eq!(choices, vec!["jsmith".to_string(), "jdoe".to_string()]);
                assert!(
                    candidates.iter().any(|c| c.contains("jsmith")) && candidates.iter().any(|c| c.contains("jdoe")),
                    "{candidates:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        match answer(&site, "how many workbooks are in the Nowhere project") {
            Err(Error::NotFound { what: "project", wanted, .. }) => assert_eq!(wanted, "Nowhere"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn owner_of_a_datasource() {
        let site = demo();
        let d = site.datasources.iter().find(|d| d.name == "Sales Orders").unwrap();
        let owner = site.users.iter().find(|u| u.id == d.owner_id).unwrap();
        let a = answer(&site, "who owns sales orders?").unwrap();
        assert_eq!(a.rows.len(), 1, "{a:?}");
        assert_eq!(a.rows[0][3], json!(owner.name));
        assert!(render(&a, 10).contains(&owner.full_name));
    }

    #[test]
    fn odd_input_never_panics() {
        const PIECES: &[&str] = &[
            "how",
            "many",
            "who",
            "owns",
            "\"",
            "'",
            "'s",
            "workbooks",
            "data",
            "sources",
            "in",
            "the",
            "Finance",
            "project",
            "not",
            "viewed",
            "in",
            "90",
            "days",
            "top",
            "per",
            "by",
            "owner",
            "use",
            "does",
            "?",
            ",",
            "é",
            "日本",
            "\u{201c}",
            "signed",
            "never",
            "John",
            "tagged",
            "group",
            "",
        ];
        let site = demo();
        let mut x: u64 = 7;
        for _ in 0..400 {
            let mut question = String::new();
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for k in 0..(1 + (x >> 60)) {
                let n = ((x >> (k * 5 % 50)) as usize) % PIECES.len();
                question.push_str(PIECES[n]);
                if (x >> k) & 1 == 0 {
                    question.push(' ');
                }
            }
            match answer(&site, &question) {
                Ok(a) => assert!(a.kind == Kind::Count || a.total >= a.rows.len()),
                Err(e) => assert!(!explain(&e).is_empty()),
            }
        }
    }
}
