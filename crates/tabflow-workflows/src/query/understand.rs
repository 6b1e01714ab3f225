//! Understanding a question: its words (quotes, possessives, punctuation), the stop words,
//! and [`understand`], which turns it into a [`Query`] — what to count or list and the
//! filters as the user wrote them. No site is read here.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Word {
    pub(super) text: String,
    pub(super) lower: String,
    pub(super) quoted: bool,
    pub(super) possessive: bool,
    /// Punctuation (`,`, `?`, `.`, `;`, `:`, `!`) followed the word: names end here.
    pub(super) stop_after: bool,
}

pub(super) fn words(question: &str) -> Vec<Word> {
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
pub(super) const STOP: &[&str] = &[
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
    "total",
    "overall",
    "altogether",
    "entire",
    "whole",
    "subscription",
    "subscriptions",
    "tag",
    "tags",
    "largest",
    "biggest",
    "smallest",
    "oldest",
    "newest",
    "updated",
    "modified",
    "older",
    "newer",
    "ago",
    "members",
    "member",
    "fewest",
    "nothing",
    "empty",
    "suspended",
];

pub(super) const ARTICLES: &[&str] = &["the", "a", "an", "our", "my", "this", "that"];

pub(super) struct Text {
    pub(super) w: Vec<Word>,
}

impl Text {
    pub(super) fn lower(&self, i: usize) -> &str {
        self.w.get(i).filter(|w| !w.quoted).map(|w| w.lower.as_str()).unwrap_or("")
    }

    pub(super) fn has(&self, ws: &[&str]) -> bool {
        self.w.iter().any(|w| !w.quoted && ws.contains(&w.lower.as_str()))
    }

    pub(super) fn find(&self, ws: &[&str]) -> Option<usize> {
        self.w.iter().position(|w| !w.quoted && ws.contains(&w.lower.as_str()))
    }

    /// `seq` appears as consecutive words; returns the index of its first word.
    pub(super) fn phrase(&self, seq: &[&str]) -> Option<usize> {
        (0..self.w.len()).find(|&i| seq.iter().enumerate().all(|(k, s)| self.lower(i + k) == *s))
    }

    /// Any of `phrases` (space-separated words); returns the index after the phrase.
    pub(super) fn after_any(&self, phrases: &[&str]) -> Option<usize> {
        phrases.iter().find_map(|p| {
            let seq: Vec<&str> = p.split(' ').collect();
            self.phrase(&seq).map(|i| i + seq.len())
        })
    }

    /// A name starting at `i` (articles skipped): a quoted name, or words up to a stop word
    /// or punctuation. Returns it and the index after it.
    pub(super) fn name_at(&self, mut i: usize) -> Option<(String, usize)> {
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
    pub(super) fn name_before(&self, end: usize) -> Option<String> {
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

pub(super) const QUESTION_WORDS: &[&str] = &[
    "how", "what", "which", "who", "list", "show", "give", "find", "count", "are", "is", "do", "does", "top", "most",
    "get", "display", "tell", "all", "any",
];

pub(super) fn subject_of(word: &str) -> Option<Subject> {
    Some(match word {
        "workbook" | "workbooks" | "dashboard" | "dashboards" | "report" | "reports" | "content" => Subject::Workbooks,
        "datasource" | "datasources" | "sources" | "extract" | "extracts" => Subject::Datasources,
        "user" | "users" | "people" | "accounts" | "account" | "members" | "licenses" | "creators" | "explorers"
        | "viewers" | "admins" | "administrators" => Subject::Users,
        "project" | "projects" | "folders" => Subject::Projects,
        "group" | "groups" | "teams" => Subject::Groups,
        "view" | "views" | "sheets" => Subject::Views,
        "flow" | "flows" => Subject::Flows,
        "subscription" | "subscriptions" => Subject::Subscriptions,
        _ => return None,
    })
}

pub(super) fn role_of(word: &str) -> Option<Role> {
    Some(match word {
        "creator" | "creators" => Role::Creator,
        "explorer" | "explorers" => Role::Explorer,
        "viewer" | "viewers" => Role::Viewer,
        "unlicensed" => Role::Unlicensed,
        "admin" | "admins" | "administrator" | "administrators" => Role::Admin,
        _ => return None,
    })
}

pub(super) const NEGATIONS: &[&str] = &[
    "not", "never", "no", "nobody", "noone", "haven't", "hasn't", "hadn't", "isn't", "aren't", "wasn't", "weren't",
    "without", "didn't", "don't", "doesn't",
];
pub(super) const USAGE: &[&str] = &[
    "viewed", "view", "views", "accessed", "access", "opened", "open", "used", "visited", "touched", "looked", "hits",
];

/// Understands a question without looking at a site.
pub fn understand(question: &str) -> Result<Query, Error> {
    let t = Text { w: words(question) };
    let not_understood = || Error::NotUnderstood { question: question.trim().to_string() };
    if t.w.is_empty() {
        return Err(not_understood());
    }
    // "export all workbooks to PDF", "rename the Finance project": an action, not a question.
    if ACTIONS.contains(&t.lower(0)) {
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
        } else if (matches!(w.lower.as_str(), "source" | "sources") && t.lower(i.wrapping_sub(1)) == "data")
            || (matches!(w.lower.as_str(), "flow" | "flows")
                && i > 0
                && w.text.starts_with(char::is_uppercase)
                && t.w[i - 1].text.starts_with(char::is_uppercase)
                && !QUESTION_WORDS.contains(&t.lower(i - 1)))
        {
            // "data source" is read at "data"; "Cash Flow Summary": "Flow" is part of a name.
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
    let mut q = Query::new(Kind::List, subject.unwrap_or(Subject::Workbooks));
    q.role = t.w.iter().filter(|w| !w.quoted).find_map(|w| role_of(&w.lower));
    if q.role.is_some() && subject.is_none() {
        q.subject = Subject::Users;
    }
    let negated = t.has(NEGATIONS) || t.has(&["unused", "stale", "inactive", "dormant", "idle", "abandoned"]);
    q.never = t.has(&["never"]);
    q.days = tabflow_nl::duration_days(question);

    let most = most_question(&t, &mut q);
    if !most {
        match facts_question(&t, &mut q) {
            Ok(true) => return Ok(q),
            Ok(false) => {}
            Err(()) => return Err(not_understood()),
        }
    }
    let superlative = most || ranked_question(&t, &mut q);
    if !superlative {
        match item_question(&t, &mut q) {
            Ok(true) => return Ok(q),
            Ok(false) => {}
            Err(()) => return Err(not_understood()),
        }
    }
    let filtered = extra_filters(&t, &mut q);

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
    q.owner = t.owner_filter().or(q.owner.take());
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
            && !is_number(&name)
            && !QUESTION_WORDS.contains(&name.to_lowercase().as_str())
        {
            q.project = Some(name);
        }
    }

    if superlative {
        // "which user owns the most …": the owner is the grouping, not a filter.
        if q.kind == Kind::Most && q.dimension == Some(Dimension::Owner) && t.after_any(&["owned by"]).is_none() {
            q.owner = None;
        }
        return Ok(q);
    }
    if q.without.is_some() || filtered {
        q.kind = if t.phrase(&["how", "many"]).is_some() || t.phrase(&["number", "of"]).is_some() || t.has(&["count"]) {
            Kind::Count
        } else {
            Kind::List
        };
        return Ok(q);
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

/// The type word right before `end` ("the Opex Analysis workbook"): the subject it names and
/// how many words it takes.
fn type_word_before(t: &Text, end: usize) -> Option<(Subject, usize)> {
    let last = t.lower(end.checked_sub(1)?);
    let before = t.lower(end.wrapping_sub(2));
    match last {
        "workbook" | "dashboard" | "report" => Some((Subject::Workbooks, 1)),
        "datasource" | "extract" => Some((Subject::Datasources, 1)),
        "source" if before == "data" => Some((Subject::Datasources, 2)),
        "flow" => Some((Subject::Flows, 1)),
        "project" | "folder" => Some((Subject::Projects, 1)),
        "user" | "account" => Some((Subject::Users, 1)),
        _ => None,
    }
}

/// A named item's facts: "when was X last viewed", "how many views does X have", "how big is
/// X", "what tags does X have", "is X certified", "which project is X in", "tell me about
/// X", "when did X last sign in", "what site role does X have", "which groups is X in".
fn facts_question(t: &Text, q: &mut Query) -> Result<bool, ()> {
    let n = t.w.len();
    let first = t.lower(0);
    let find_from = |from: usize, ws: &[&str]| (from..n).find(|&i| ws.contains(&t.lower(i)));
    let mut found: Option<(Field, usize, usize)> = None;
    // "when was X last viewed", "when was X created", "when did X last sign in"
    if first == "when"
        && matches!(t.lower(1), "was" | "is" | "were" | "did" | "has")
        && let Some(k) = find_from(
            2,
            &[
                "last",
                "first",
                "viewed",
                "opened",
                "accessed",
                "used",
                "visited",
                "created",
                "published",
                "updated",
                "modified",
                "changed",
                "edited",
                "sign",
                "signed",
                "log",
                "logged",
                "login",
            ],
        )
    {
        let rest: Vec<&str> = (k..n).map(|i| t.lower(i)).collect();
        let any = |ws: &[&str]| rest.iter().any(|w| ws.contains(w));
        let field = if any(&["sign", "signed", "log", "logged", "login"]) {
            Field::LastLogin
        } else if any(&["viewed", "opened", "accessed", "used", "visited", "view"]) {
            Field::LastViewed
        } else if any(&["created", "published", "first"]) {
            Field::Created
        } else {
            Field::Updated
        };
        found = Some((field, 2, k));
    }
    // "how many views does X have", "how many times was X viewed", "how often is X viewed"
    if found.is_none()
        && ((t.phrase(&["how", "many", "views"]) == Some(0)) || t.phrase(&["how", "many", "times"]) == Some(0))
        && let Some(aux) = find_from(3, &["does", "do", "has", "have", "was", "is", "did"])
    {
        let end =
            find_from(aux + 1, &["have", "had", "got", "get", "been", "viewed", "opened", "accessed"]).unwrap_or(n);
        found = Some((Field::Views, aux + 1, end));
    }
    // "how big is X", "how large is X", "what size is X", "what is the size of X", "size of X"
    if found.is_none() {
        if ((t.phrase(&["how", "big"]) == Some(0) || t.phrase(&["how", "large"]) == Some(0))
            && matches!(t.lower(2), "is" | "was"))
            || t.phrase(&["what", "size", "is"]) == Some(0)
        {
            found = Some((Field::Size, 3, n));
        } else if let Some(at) = t.after_any(&["the size of", "size of", "file size of"]) {
            found = Some((Field::Size, at, n));
        }
    }
    // "what tags does X have", "which tags are on X", "tags on X", "how is X tagged"
    if found.is_none() {
        if matches!(first, "what" | "which") && t.lower(1) == "tags" {
            if let Some(d) = find_from(2, &["does", "do"]) {
                let end = find_from(d + 1, &["have", "carry", "got"]).unwrap_or(n);
                found = Some((Field::Tags, d + 1, end));
            } else if let Some(at) = find_from(2, &["on", "of", "for"]) {
                found = Some((Field::Tags, at + 1, n));
            }
        } else if t.phrase(&["how", "is"]) == Some(0) && t.lower(n - 1) == "tagged" {
            found = Some((Field::Tags, 2, n - 1));
        } else if matches!(first, "tags") && matches!(t.lower(1), "on" | "of" | "for") {
            found = Some((Field::Tags, 2, n));
        }
    }
    // "is X certified"
    if found.is_none() && first == "is" && n > 2 && t.lower(n - 1) == "certified" {
        let end = if t.lower(n - 2) == "not" { n - 2 } else { n - 1 };
        found = Some((Field::Certified, 1, end));
    }
    // "which project is X in", "what project does X live in", "where is X"
    if found.is_none() {
        if matches!(first, "which" | "what") && matches!(t.lower(1), "project" | "folder") {
            if let Some(aux) = find_from(2, &["is", "does", "was"]) {
                let end = (aux + 1..n)
                    .rev()
                    .find(|&i| matches!(t.lower(i), "in" | "live" | "belong" | "sit" | "stored"))
                    .unwrap_or(n);
                found = Some((Field::Project, aux + 1, end));
            }
        } else if t.phrase(&["where", "is"]) == Some(0) {
            let end = if t.lower(n - 1) == "stored" { n - 1 } else { n };
            found = Some((Field::Project, 2, end));
        }
    }
    // "what site role does X have", "what role is X", "which groups is X in"
    if found.is_none() && matches!(first, "what" | "which") {
        let role_at = if t.lower(1) == "role" {
            Some(2)
        } else if t.phrase(&["site", "role"]) == Some(1) {
            Some(3)
        } else {
            None
        };
        if let Some(r) = role_at
            && let Some(aux) = find_from(r, &["does", "is", "has"])
        {
            let end = find_from(aux + 1, &["have", "got"]).unwrap_or(n);
            found = Some((Field::SiteRole, aux + 1, end));
        } else if t.lower(1) == "groups"
            && let Some(aux) = find_from(2, &["is", "does", "are"])
        {
            let end = (aux + 1..n).rev().find(|&i| matches!(t.lower(i), "in" | "belong" | "to")).unwrap_or(n);
            let end = if t.lower(end) == "to" && t.lower(end.wrapping_sub(1)) == "belong" { end - 1 } else { end };
            found = Some((Field::Groups, aux + 1, end));
        }
    }
    // "tell me about X", "details of X", "describe X"
    if found.is_none()
        && let Some(at) = t.after_any(&[
            "tell me about",
            "tell me everything about",
            "what do you know about",
            "details of",
            "details for",
            "details about",
            "info on",
            "info about",
            "information about",
            "information on",
            "facts about",
            "describe",
        ])
    {
        found = Some((Field::All, at, n));
    }
    let Some((field, a, mut b)) = found else { return Ok(false) };
    if let Some((subject, len)) = type_word_before(t, b) {
        q.subject = subject;
        b -= len;
    } else {
        q.subject = Subject::Views; // any kind: decided by grounding
    }
    let mut a = a;
    while a < b && ARTICLES.contains(&t.lower(a)) {
        a += 1;
    }
    if a >= b {
        return Err(());
    }
    let name = if b - a == 1 && t.w[a].quoted {
        t.w[a].text.clone()
    } else {
        t.w[a..b].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
    };
    q.kind = Kind::Facts;
    q.field = Some(field);
    q.target = Some(name);
    Ok(true)
}

/// The counted noun at `i`: its subject ("members" counts users by group).
fn counted_at(t: &Text, i: usize) -> Option<Subject> {
    match t.lower(i) {
        "members" | "member" => Some(Subject::Groups),
        "data" if matches!(t.lower(i + 1), "source" | "sources") => Some(Subject::Datasources),
        w => subject_of(w),
    }
}

/// The grouping a noun names: owners, projects, groups, site roles.
fn dimension_of(word: &str) -> Option<Dimension> {
    Some(match word {
        "who" | "whom" | "owner" | "owners" | "user" | "users" | "person" | "people" | "author" | "authors"
        | "publisher" | "publishers" | "creator" | "creators" | "account" | "accounts" | "somebody" | "someone" => {
            Dimension::Owner
        }
        "project" | "projects" | "folder" | "folders" => Dimension::Project,
        "group" | "groups" | "team" | "teams" => Dimension::Group,
        "role" | "roles" | "license" | "licenses" => Dimension::SiteRole,
        _ => return None,
    })
}

/// "who owns the most workbooks", "which project has the fewest datasources", "which group
/// has the most members", "top 3 projects by number of workbooks", "the largest group".
fn most_question(t: &Text, q: &mut Query) -> bool {
    let n = t.w.len();
    let mut counted = None;
    let mut dim_word_at = None;
    let mut ascending = false;
    let mut plural_default = 5;
    if let Some(m) = t.find(&["most", "fewest", "least"]) {
        let c = counted_at(t, m + 1);
        if c.is_none() {
            return false;
        }
        counted = c;
        ascending = t.lower(m) != "most";
        dim_word_at = (0..m).find(|&i| dimension_of(t.lower(i)).is_some());
    } else if let Some(top) = t.find(&["top"])
        && let Some(by) = (top + 1..n).find(|&i| t.lower(i) == "by")
    {
        let mut k = by + 1;
        while matches!(t.lower(k), "number" | "of" | "the" | "count" | "how" | "many") {
            k += 1;
        }
        counted = counted_at(t, k);
        dim_word_at = (top + 1..by).find(|&i| dimension_of(t.lower(i)).is_some());
    } else if let Some(g) = t.find(&["largest", "biggest"])
        && matches!(t.lower(g + 1), "group" | "groups" | "team" | "teams")
    {
        counted = Some(Subject::Groups);
        dim_word_at = Some(g + 1);
        plural_default = 10;
    }
    let (Some(counted), Some(d)) = (counted, dim_word_at) else { return false };
    let dim_word = t.lower(d).to_string();
    let Some(mut dim) = dimension_of(&dim_word) else { return false };
    if counted == Subject::Views && matches!(dim_word.as_str(), "who" | "owner") {
        return false;
    }
    let mut subject = counted;
    if counted == Subject::Groups {
        subject = Subject::Users;
        dim = Dimension::Group;
    } else if counted == Subject::Users && dim == Dimension::Owner {
        return false;
    }
    if counted == Subject::Users && matches!(dim, Dimension::Project) {
        return false;
    }
    q.kind = Kind::Most;
    q.subject = subject;
    q.dimension = Some(dim);
    q.ascending = ascending;
    let before: Vec<&str> = t.w[..d].iter().map(|w| w.text.as_str()).collect();
    let plural = dim_word.ends_with('s') && dim_word != "sales";
    q.limit = tabflow_nl::first_number(&before.join(" ")).map(|x| x as usize).filter(|&x| x > 0).or(Some(if plural {
        plural_default
    } else {
        1
    }));
    true
}

/// "the 5 largest workbooks", "oldest datasources", "newest flow", "most recently updated
/// workbooks", "workbooks by size".
fn ranked_question(t: &Text, q: &mut Query) -> bool {
    let n = t.w.len();
    let mut hit: Option<(RankBy, bool, usize)> = None;
    for i in 0..n {
        let w = t.lower(i);
        let next = t.lower(i + 1);
        let r = match w {
            "largest" | "biggest" | "heaviest" => Some((RankBy::Size, false)),
            "smallest" | "lightest" => Some((RankBy::Size, true)),
            "oldest" | "earliest" => Some((RankBy::Created, true)),
            "newest" | "youngest" | "latest" => Some((RankBy::Created, false)),
            "recently" | "recent" if matches!(next, "updated" | "modified" | "changed" | "edited") => {
                Some((RankBy::Updated, t.lower(i.wrapping_sub(1)) == "least"))
            }
            "recently" if matches!(next, "created" | "published" | "added") => Some((RankBy::Created, false)),
            "by" | "on" if next == "size" => Some((RankBy::Size, false)),
            _ => None,
        };
        if let Some((by, asc)) = r {
            hit = Some((by, asc, i));
            break;
        }
    }
    let Some((by, asc, at)) = hit else { return false };
    // The subject: the noun after the adjective, else the question's subject.
    let noun_at = (at + 1..n.min(at + 4))
        .find(|&i| counted_at(t, i).is_some())
        .or_else(|| (0..at).rev().find(|&i| counted_at(t, i).is_some()));
    let Some(noun_at) = noun_at else { return false };
    let Some(subject) = counted_at(t, noun_at) else { return false };
    if matches!(subject, Subject::Groups) {
        return false; // the largest group: by members (most_question)
    }
    if subject == Subject::Users || subject == Subject::Views || subject == Subject::Subscriptions {
        return false;
    }
    if subject == Subject::Projects && by == RankBy::Size {
        return false;
    }
    if subject == Subject::Flows && by == RankBy::Size {
        return false;
    }
    q.kind = Kind::Ranked;
    q.subject = subject;
    q.rank_by = Some(by);
    q.ascending = asc;
    let noun = t.lower(noun_at);
    let plural = noun.ends_with('s') || noun == "data";
    let head: Vec<&str> = t.w[..noun_at].iter().map(|w| w.text.as_str()).collect();
    q.limit = tabflow_nl::first_number(&head.join(" ")).map(|x| x as usize).filter(|&x| x > 0).or(Some(if plural {
        10
    } else {
        1
    }));
    true
}

/// Negations ("projects with no workbooks", "workbooks without tags", "groups with no
/// members", "users who own nothing"), dates ("created in the last 30 days", "older than a
/// year", "not updated in 6 months"), suspended subscriptions and whose subscriptions.
/// Answers whether a filter of its own was set.
fn extra_filters(t: &Text, q: &mut Query) -> bool {
    let n = t.w.len();
    let mut set = false;
    // --- negations
    for i in 0..n {
        let w = t.lower(i);
        let neg = matches!(w, "no" | "without" | "zero" | "lack" | "lacking")
            || (w == "any"
                && (0..i).rev().take(3).any(|k| {
                    matches!(
                        t.lower(k),
                        "not" | "don't" | "doesn't" | "didn't" | "haven't" | "hasn't" | "aren't" | "isn't"
                    )
                }));
        if !neg {
            continue;
        }
        let mut k = i + 1;
        while matches!(t.lower(k), "any" | "single" | "published" | "associated") {
            k += 1;
        }
        let what = match t.lower(k) {
            "workbook" | "workbooks" | "dashboards" | "dashboard" => Some(Without::Workbooks),
            "datasource" | "datasources" | "extracts" => Some(Without::Datasources),
            "data" if matches!(t.lower(k + 1), "source" | "sources") => Some(Without::Datasources),
            "flow" | "flows" => Some(Without::Flows),
            "content" | "items" | "item" | "anything" => Some(Without::Content),
            "tag" | "tags" => Some(Without::Tags),
            "members" | "member" | "users" | "people" if q.subject == Subject::Groups => Some(Without::Members),
            "subscription" | "subscriptions" | "subscribers" => Some(Without::Subscriptions),
            "group" | "groups" if q.subject == Subject::Users => Some(Without::Groups),
            _ => None,
        };
        if let Some(w) = what {
            q.without = Some(w);
            break;
        }
    }
    if q.without.is_none() {
        if t.has(&["untagged"]) || t.phrase(&["not", "tagged"]).is_some() {
            q.without = Some(Without::Tags);
        } else if t.has(&["nothing"]) && t.has(&["own", "owns", "owning"]) {
            q.without = Some(Without::Content);
        } else if t.has(&["empty"]) {
            q.without = match q.subject {
                Subject::Groups => Some(Without::Members),
                Subject::Projects => Some(Without::Content),
                _ => None,
            };
        }
    }
    if let Some(w) = q.without {
        // "workbooks without tags" is a filter, not the subject's own tag word.
        if w == Without::Tags {
            q.tag = None;
        }
        // "users who own no workbooks": the subject is the first noun, not the negated one.
        if q.subject == Subject::Workbooks && matches!(w, Without::Workbooks) {
            q.without = None;
        }
        set = q.without.is_some();
    }
    // --- dates
    let after = |i: usize| -> Option<u32> {
        let rest: Vec<&str> = t.w[i..n.min(i + 7)].iter().map(|w| w.text.as_str()).collect();
        tabflow_nl::duration_days(&rest.join(" "))
    };
    for i in 0..n {
        let w = t.lower(i);
        let negated = (i.saturating_sub(3)..i)
            .any(|k| matches!(t.lower(k), "not" | "haven't" | "hasn't" | "wasn't" | "weren't" | "never"));
        match w {
            "created" | "published" | "added" | "uploaded" => {
                let more = (i + 1..n.min(i + 4)).any(|k| matches!(t.lower(k), "more" | "over" | "before"))
                    || (i + 1..n).any(|k| t.lower(k) == "ago") && !(i + 1..n.min(i + 3)).any(|k| t.lower(k) == "in");
                if let Some(d) = after(i + 1) {
                    if more {
                        q.older_than = Some(d);
                    } else {
                        q.created_within = Some(d);
                    }
                    set = true;
                }
            }
            "updated" | "modified" | "changed" | "edited" | "refreshed" => {
                let more = (i + 1..n.min(i + 4)).any(|k| matches!(t.lower(k), "more" | "over" | "before"));
                if let Some(d) = after(i + 1) {
                    if negated || more {
                        q.updated_before = Some(d);
                    } else {
                        q.updated_within = Some(d);
                    }
                    set = true;
                }
            }
            "older" if t.lower(i + 1) == "than" => {
                if let Some(d) = after(i + 2) {
                    q.older_than = Some(d);
                    set = true;
                }
            }
            "newer" | "younger" if t.lower(i + 1) == "than" => {
                if let Some(d) = after(i + 2) {
                    q.created_within = Some(d);
                    set = true;
                }
            }
            _ => {}
        }
    }
    if set {
        // The duration was a date filter, not "not viewed in N days".
        q.days = None;
    }
    // --- subscriptions: suspended or active, whose
    if q.subject == Subject::Subscriptions {
        if t.has(&["suspended", "paused", "failing", "disabled"]) {
            q.suspended = Some(true);
            set = true;
        } else if t.has(&["active", "enabled", "running"]) {
            q.suspended = Some(false);
            set = true;
        }
        if q.owner.is_none()
            && let Some(at) = t.after_any(&[
                "subscriptions of",
                "subscriptions for",
                "subscriptions does",
                "subscriptions do",
                "subscribed by",
            ])
            && let Some((name, _)) = t.name_at(at)
        {
            q.owner = Some(name);
        }
        if q.owner.is_none()
            && let Some(at) = t.after_any(&["does", "do"])
            && let Some(end) = (at..n).find(|&i| matches!(t.lower(i), "have" | "has" | "own"))
            && let Some((name, _)) = t.name_span(at, end)
        {
            q.owner = Some(name);
        }
    }
    set
}

/// Questions about one named item: "who owns X", "which datasources does X use", "which
/// workbooks use Y". Sets the kind and target of `q` and answers true when the question is
/// one of them; `Err` when it is but the name cannot be read.
fn item_question(t: &Text, q: &mut Query) -> Result<bool, ()> {
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
        let (name, end) = t.name_at(at).ok_or(())?;
        q.kind = Kind::Owner;
        q.target = Some(name);
        q.subject = match t.lower(end) {
            "datasource" | "extract" => Subject::Datasources,
            "data" => Subject::Datasources,
            "project" | "folder" => Subject::Projects,
            "workbook" | "dashboard" | "report" => Subject::Workbooks,
            _ => Subject::Views, // any kind of content: decided by grounding
        };
        return Ok(true);
    }
    if let Some(i) = t.w.iter().position(|w| w.possessive)
        && matches!(t.lower(i + 1), "owner" | "owners")
    {
        let (name, _) = t.name_at(if t.w[i].quoted { i } else { t.name_start(i) }).ok_or(())?;
        q.kind = Kind::Owner;
        q.target = Some(name);
        q.subject = Subject::Views;
        return Ok(true);
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
            return Ok(true);
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
            return Ok(true);
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
            return Ok(true);
        }
        if let Some((name, _)) = t.name_at(at) {
            q.kind = Kind::WorkbooksUsing;
            q.target = Some(name);
            q.project = t.project_filter(q.subject);
            return Ok(true);
        }
    }
    Ok(false)
}

impl Text {
    /// Where a possessive name that ends at `i` starts (capitalized words backwards).
    pub(super) fn name_start(&self, i: usize) -> usize {
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
    pub(super) fn name_span(&self, mut a: usize, mut b: usize) -> Option<(String, usize)> {
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

    pub(super) fn owner_filter(&self) -> Option<String> {
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

    pub(super) fn group_filter(&self, users: bool) -> Option<String> {
        // "the Contractors group"
        if let Some(g) = self.find(&["group", "team"])
            && let Some(name) = self.name_before(g)
        {
            return Some(name);
        }
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

    pub(super) fn project_filter(&self, subject: Subject) -> Option<String> {
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
        self.name_before(p).filter(|n| !is_number(n))
    }
}

/// "3", "ten": a number, not a name.
fn is_number(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit()) || tabflow_nl::first_number(s).is_some_and(|_| !s.contains(' '))
}

/// Verbs that ask for an action this module never answers.
const ACTIONS: &[&str] = &[
    "export",
    "rename",
    "create",
    "make",
    "download",
    "email",
    "send",
    "copy",
    "duplicate",
    "refresh",
    "publish",
    "restart",
    "reboot",
    "upgrade",
    "install",
    "print",
    "convert",
    "translate",
    "build",
    "write",
    "add",
    "change",
    "set",
    "enable",
    "disable",
    "run",
    "backup",
    "restore",
    "share",
];
