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
    "flow",
    "flows",
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
    let mut q = Query::new(Kind::List, subject.unwrap_or(Subject::Workbooks));
    q.role = t.w.iter().filter(|w| !w.quoted).find_map(|w| role_of(&w.lower));
    if q.role.is_some() && subject.is_none() {
        q.subject = Subject::Users;
    }
    let negated = t.has(NEGATIONS) || t.has(&["unused", "stale", "inactive", "dormant", "idle", "abandoned"]);
    q.never = t.has(&["never"]);
    q.days = tabflow_nl::duration_days(question);

    match item_question(&t, &mut q) {
        Ok(true) => return Ok(q),
        Ok(false) => {}
        Err(()) => return Err(not_understood()),
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
        self.name_before(p)
    }
}
