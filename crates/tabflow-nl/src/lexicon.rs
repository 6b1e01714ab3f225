//! Word lists: the vocabulary administrators use for each kind of request.
//!
//! Lists hold base forms; [`Token::is`](crate::token::Token::is) compares lemmas, so
//! inflections ("archived", "archiving") match without being listed. Lists compared with
//! `eq_any` hold exact lowercase forms because their inflections mean something else
//! ("consolidated datasource" is a name, "consolidate datasources" a request).

use crate::token::{Token, edit_distance, tok, word_at};

/// What kind of action a verb asks for. The first verb of a clause decides most of its
/// meaning (see `classify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// archive, retire, shelve.
    Archive,
    /// clean up, clear out, get rid of, tidy, declutter, prune: archive unless the object
    /// says otherwise or the clause says delete.
    Clean,
    /// delete, remove, purge.
    Delete,
    /// consolidate, merge, dedupe.
    Consolidate,
    /// migrate, repoint, point, switch, swap, replace.
    Migrate,
    /// move, relocate, put.
    Move,
    /// transfer, reassign, hand over, give.
    Transfer,
    /// audit, review, inspect.
    Audit,
    /// check, look at.
    Check,
    /// update, change, tighten, restrict, lock, grant, revoke (permissions).
    Update,
    /// notify, tell, email, let … know.
    Notify,
    /// offboard, deprovision, deactivate.
    Offboard,
    /// set up, schedule, automate.
    Setup,
    /// create, generate, export (a report).
    Report,
    /// find, identify, locate.
    Find,
    /// list, show, count, give me.
    List,
}

/// Typos tolerated in these verbs and their inflections: edit distance 1, or 2 for words of
/// ten letters or more ("archve", "consolidte", "ofboard").
const FUZZY: &[(&[&str], Verb)] = &[
    (&["archive", "archived", "archives", "archiving"], Verb::Archive),
    (&["consolidate", "consolidates", "consolidating"], Verb::Consolidate),
    (&["deduplicate", "deduplicating"], Verb::Consolidate),
    (&["offboard", "offboarded", "offboarding", "offboards"], Verb::Offboard),
    (&["migrate", "migrated", "migrates", "migrating"], Verb::Migrate),
    (&["repoint", "repointed", "repointing"], Verb::Migrate),
    (&["delete", "deleted", "deletes", "deleting"], Verb::Delete),
    (&["notify", "notified", "notifies", "notifying"], Verb::Notify),
    (&["transfer", "transferred", "transfers", "transferring"], Verb::Transfer),
    (&["reassign", "reassigned", "reassigning"], Verb::Transfer),
    (&["identify", "identifies"], Verb::Find),
];

/// The verb at `tok(toks, i)`, with the number of tokens it spans ("clean up" is two). Only
/// lowercase words, or a capitalized word at the start of the clause, count: a capitalized
/// word in mid-sentence is a name ("Sales Pipeline Consolidated", "the Archive project").
pub(crate) fn verb_at(toks: &[&Token], i: usize) -> Option<(Verb, usize)> {
    let t = toks.get(i)?;
    if !t.is_word() || (i > 0 && t.is_capitalized() && !t.text.chars().all(|c| !c.is_lowercase())) {
        return None;
    }
    let next = |k: usize| word_at(toks, i + k);
    let prev = if i > 0 { tok(toks, i.wrapping_sub(1)).lower.as_str() } else { "" };
    let l = t.lower.as_str();
    // Two-word verbs first.
    let base = PHRASAL_BASES.iter().copied().find(|w| t.is(w)).unwrap_or("");
    match (base, next(1)) {
        ("clean" | "tidy" | "clear", "up" | "out") => return Some((Verb::Clean, 2)),
        ("set", "up") => return Some((Verb::Setup, 2)),
        ("hand", "over" | "off") => return Some((Verb::Transfer, 2)),
        ("look", "for") => return Some((Verb::Find, 2)),
        ("look", "at" | "into" | "over") => return Some((Verb::Check, 2)),
        ("find" | "figure", "out") => return Some((Verb::Find, 2)),
        ("lock", "down") => return Some((Verb::Update, 2)),
        // "Get rid of", like "clear out" and "clean up", archives unless delete is said:
        // archiving is undone exactly, so the cautious reading wins (issue #18).
        ("get", "rid") => return Some((Verb::Clean, 3)),
        ("throw", "away" | "out") => return Some((Verb::Delete, 2)),
        ("give" | "tell" | "show" | "get", "me" | "us") => return Some((Verb::List, 2)),
        ("get", "a" | "the" | "all")
            if matches!(next(2), "list" | "count" | "number" | "overview" | "summary" | "inventory")
                || next(1) == "all" =>
        {
            return Some((Verb::List, 1));
        }
        ("reach", "out") => return Some((Verb::Notify, 2)),
        ("let", _) if (1..=9).any(|k| next(k) == "know") && !matches!(next(1), "me" | "us") => {
            return Some((Verb::Notify, 1));
        }
        // "make all workbooks in Sales read-only".
        ("make", _)
            if (1..=8).any(|k| {
                matches!(next(k), "read-only" | "readonly" | "private" | "public" | "viewable" | "editable")
                    || (matches!(next(k), "read" | "view") && next(k + 1) == "only")
            }) =>
        {
            return Some((Verb::Update, 1));
        }
        _ => {}
    }
    if l == "data" || prev == "data" {
        return None;
    }
    let verb = if t.is_any(&["archive", "retire", "shelve", "mothball", "sunset"]) {
        Verb::Archive
    } else if t.is_any(&["cleanup", "clean-up", "clean", "tidy", "declutter", "prune", "sweep"]) {
        Verb::Clean
    } else if t.is_any(&["delete", "remove", "purge", "erase", "trash", "destroy", "wipe", "nuke", "drop"]) {
        Verb::Delete
    } else if t.is_any(&[
        "consolidate",
        "merge",
        "dedupe",
        "dedup",
        "deduplicate",
        "de-duplicate",
        "de-dupe",
        "combine",
        "unify",
    ]) {
        Verb::Consolidate
    } else if t.is_any(&[
        "migrate",
        "repoint",
        "re-point",
        "point",
        "switch",
        "swap",
        "replace",
        "redirect",
        "reconnect",
        "remap",
        "rewire",
        "relink",
        "re-link",
        "retarget",
        "rebind",
        "upgrade",
        "modernize",
        "modernise",
    ]) {
        Verb::Migrate
    } else if t.is_any(&["move", "relocate", "put", "shift"]) {
        Verb::Move
    } else if t.is_any(&["transfer", "reassign", "re-assign", "hand", "give", "pass", "assign", "handover"]) {
        Verb::Transfer
    } else if t.is_any(&["audit", "review", "inspect", "examine", "assess", "scan", "analyze", "analyse", "verify"]) {
        Verb::Audit
    } else if t.is("check") {
        Verb::Check
    } else if t.is_any(&[
        "update", "change", "fix", "tighten", "restrict", "lock", "unlock", "set", "adjust", "modify", "reset",
        "revoke", "grant", "correct", "harden", "secure", "limit", "apply",
    ]) {
        Verb::Update
    } else if t.is_any(&["notify", "tell", "inform", "email", "e-mail", "alert", "message", "ping", "warn", "contact"])
        || matches!(l, "cc" | "send" | "sends")
    {
        Verb::Notify
    } else if t.is_any(&["offboard", "off-board", "deprovision", "de-provision", "deactivate", "disable", "unlicense"])
    {
        Verb::Offboard
    } else if t.is_any(&["schedule", "setup", "automate", "repeat", "run", "rerun", "re-run"]) {
        Verb::Setup
    } else if t.is_any(&["create", "generate", "produce", "export", "build", "prepare", "compile"]) {
        Verb::Report
    } else if t.is_any(&["find", "identify", "locate", "detect", "search", "spot", "discover", "flag", "pull"]) {
        Verb::Find
    } else if t.is_any(&["list", "show", "display", "count", "enumerate", "print"]) {
        Verb::List
    } else {
        return fuzzy_verb(l);
    };
    Some((verb, 1))
}

/// Verbs that take a particle ("clean up", "hand over", "let … know").
const PHRASAL_BASES: &[&str] = &[
    "clean", "tidy", "clear", "set", "hand", "look", "find", "figure", "lock", "get", "throw", "give", "tell", "show",
    "reach", "let", "make",
];

fn fuzzy_verb(l: &str) -> Option<(Verb, usize)> {
    if l.len() < 5 || !l.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    FUZZY.iter().find_map(|&(forms, verb)| {
        forms
            .iter()
            .any(|w| {
                let cap = if w.len() >= 10 { 2 } else { 1 };
                edit_distance(l, w, cap) <= cap
            })
            .then_some((verb, 1))
    })
}

/// A word naming workbooks (the `delete-content` type `workbook`).
pub(crate) fn is_workbook_noun(t: &Token) -> bool {
    t.is_any(&[
        "workbook",
        "dashboard",
        "report",
        "viz",
        "vizzes",
        "visualization",
        "visualisation",
        "chart",
        "sheet",
        "story",
    ]) || fuzzy_noun(t, &["workbooks", "dashboards"])
}

/// `toks[i..]` names published datasources; returns how many tokens ("data sources" is two).
pub(crate) fn datasource_at(toks: &[&Token], i: usize) -> Option<usize> {
    let t = toks.get(i)?;
    if t.eq_any(&["data", "published"]) {
        let n = toks.get(i + 1)?;
        if n.is_any(&["source", "set"]) {
            return Some(2);
        }
        if t.eq("published") && n.eq("data") && toks.get(i + 2).is_some_and(|x| x.is("source")) {
            return Some(3);
        }
        return None;
    }
    (t.is_any(&["datasource", "data-source", "dataset", "extract", "ds"])
        || fuzzy_noun(t, &["datasources", "datasource"]))
    .then_some(1)
}

/// A generic word for content of any type.
pub(crate) fn is_generic_content(t: &Token) -> bool {
    t.eq_any(&[
        "content",
        "contents",
        "item",
        "items",
        "asset",
        "assets",
        "stuff",
        "everything",
        "anything",
        "things",
        "objects",
        "material",
    ])
}

fn fuzzy_noun(t: &Token, words: &[&str]) -> bool {
    t.is_word() && t.lower.len() >= 8 && words.iter().any(|w| edit_distance(&t.lower, w, 1) <= 1)
}

/// The `delete-content` type a noun at `tok(toks, i)` names, and how many tokens it spans.
pub(crate) fn content_type_at(toks: &[&Token], i: usize) -> Option<(Option<&'static str>, usize)> {
    let t = toks.get(i)?;
    if !t.is_word() {
        return None;
    }
    if let Some(n) = datasource_at(toks, i) {
        return Some((Some("datasource"), n));
    }
    if inside_name(toks, i) {
        return None;
    }
    if is_workbook_noun(t) {
        return Some((Some("workbook"), 1));
    }
    if t.is("flow") {
        return Some((Some("flow"), 1));
    }
    let describes_access = toks.get(i + 1).is_some_and(|n| is_permission_noun(n) || n.eq_any(&["only", "permission"]));
    if t.is("view")
        && !describes_access
        && !toks.get(i.wrapping_sub(1)).is_some_and(|p| p.eq_any(&["no", "zero", "any", "of"]))
    {
        return Some((Some("view"), 1));
    }
    if is_generic_content(t) {
        return Some((None, 1));
    }
    None
}

/// A capitalized word that continues a capitalized name in mid-sentence ("the Board
/// Reports workbooks", "archive Board Reports"): part of the name, not a content noun, unless
/// the whole clause is written in title case ("Archive Old Workbooks").
pub(crate) fn inside_name(toks: &[&Token], i: usize) -> bool {
    let Some(t) = toks.get(i) else { return false };
    if i < 2 || !t.is_capitalized() {
        return false;
    }
    let prev = tok(toks, i.wrapping_sub(1));
    let name_before = prev.is_capitalized() && !prev.possessive && !is_stop_capitalized(prev) && !is_time_word(prev);
    name_before && !title_case(toks)
}

/// Every word of four letters or more is capitalized (headline style).
pub(crate) fn title_case(toks: &[&Token]) -> bool {
    toks.iter()
        .filter(|t| t.is_word() && t.text.chars().count() >= 4 && t.text.chars().all(char::is_alphabetic))
        .all(|t| t.is_capitalized())
}

/// Words that say content is old or unused on their own.
pub(crate) const STALE_WORDS: &[&str] = &[
    "stale",
    "old",
    "older",
    "oldest",
    "unused",
    "inactive",
    "dormant",
    "abandoned",
    "outdated",
    "obsolete",
    "idle",
    "untouched",
    "unviewed",
    "unopened",
    "unaccessed",
    "neglected",
    "forgotten",
    "aging",
    "ageing",
    "aged",
    "ancient",
    "unpopular",
    "disused",
    "orphaned",
    "dusty",
    "dead",
    "cold",
    "legacy",
];

/// Words that negate usage ("nobody has opened", "no views", "haven't been viewed").
pub(crate) const NEGATIONS: &[&str] = &[
    "not",
    "no",
    "never",
    "nobody",
    "none",
    "haven't",
    "hasn't",
    "havent",
    "hasnt",
    "didn't",
    "don't",
    "doesn't",
    "isn't",
    "aren't",
    "weren't",
    "wasn't",
    "without",
    "zero",
    "nothing",
    "nothing's",
    "noone",
    "hadn't",
];

/// Words about usage that a negation turns into staleness.
pub(crate) const USAGE_WORDS: &[&str] = &[
    "view",
    "viewed",
    "views",
    "viewing",
    "access",
    "accessed",
    "accesses",
    "open",
    "opened",
    "opens",
    "use",
    "used",
    "uses",
    "using",
    "usage",
    "touch",
    "touched",
    "touches",
    "visits",
    "logs",
    "viewers",
    "users",
    "visit",
    "visited",
    "look",
    "looked",
    "activity",
    "hit",
    "hits",
    "login",
    "logged",
    "modified",
    "updated",
    "edited",
    "refreshed",
    "traffic",
    "clicked",
    "seen",
    "read",
];

/// Words that mark a published datasource as one to move away from.
pub(crate) const DEPRECATED_WORDS: &[&str] = &[
    "deprecated",
    "legacy",
    "obsolete",
    "outdated",
    "retired",
    "old",
    "superseded",
    "sunset",
    "sunsetted",
    "decommissioned",
];

/// Words that mean "duplicate datasources".
pub(crate) const DUPLICATE_WORDS: &[&str] = &[
    "duplicate",
    "duplicates",
    "duplicated",
    "duplication",
    "dup",
    "dups",
    "dupe",
    "dupes",
    "redundant",
    "redundancy",
    "similar",
    "overlapping",
    "overlap",
    "identical",
    "copies",
    "near-duplicate",
    "near-duplicates",
    "consolidate",
    "consolidation",
    "consolidating",
    "merge",
    "dedupe",
    "deduplicate",
    "de-duplicate",
    "deduplication",
];

/// Sensitivity labels that are tags when they qualify content ("sensitive workbooks").
pub(crate) const SENSITIVITY_WORDS: &[&str] = &[
    "sensitive",
    "confidential",
    "restricted",
    "private",
    "secret",
    "classified",
    "internal",
    "pii",
    "phi",
    "gdpr",
    "hipaa",
    "regulated",
    "protected",
    "proprietary",
    "top-secret",
    "internal-only",
];

/// Nouns about permissions.
pub(crate) fn is_permission_noun(t: &Token) -> bool {
    t.is_any(&["permission", "privilege", "capability", "acl", "grant"])
        || t.eq_any(&["access", "rights", "sharing", "read-only", "readonly", "perms"])
        || (t.is_word() && t.lower.len() >= 9 && edit_distance(&t.lower, "permissions", 2) <= 2)
}

/// Articles, determiners, pronouns, prepositions, conjunctions, auxiliaries: never a name.
pub(crate) const FUNCTION_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "this",
    "that",
    "these",
    "those",
    "all",
    "any",
    "every",
    "each",
    "some",
    "my",
    "our",
    "your",
    "his",
    "her",
    "their",
    "its",
    "i",
    "we",
    "you",
    "he",
    "she",
    "they",
    "it",
    "me",
    "us",
    "him",
    "them",
    "who",
    "whom",
    "whose",
    "which",
    "what",
    "where",
    "when",
    "why",
    "how",
    "in",
    "on",
    "at",
    "to",
    "from",
    "for",
    "of",
    "by",
    "with",
    "within",
    "inside",
    "into",
    "onto",
    "out",
    "off",
    "over",
    "under",
    "across",
    "about",
    "after",
    "before",
    "since",
    "until",
    "till",
    "between",
    "during",
    "and",
    "or",
    "but",
    "nor",
    "then",
    "so",
    "if",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "has",
    "have",
    "had",
    "do",
    "does",
    "did",
    "will",
    "would",
    "should",
    "could",
    "can",
    "may",
    "might",
    "must",
    "shall",
    "not",
    "no",
    "yes",
    "please",
    "also",
    "just",
    "only",
    "there",
    "here",
    "up",
    "down",
    "as",
    "than",
    "too",
    "very",
    "more",
    "most",
    "less",
    "least",
    "other",
    "another",
    "same",
    "such",
    "own",
    "one",
    "ones",
    "none",
    "nobody",
    "everyone",
    "anyone",
    "someone",
    "everybody",
    "anybody",
    "somebody",
    "else",
    "again",
    "now",
    "today",
    "still",
    "both",
    "either",
    "neither",
    "via",
    "per",
    "like",
    "unless",
    "whether",
    "while",
    "once",
    "whole",
    "entire",
    "rest",
    "remaining",
    "new",
    "current",
    "existing",
    "left",
    "last",
    "past",
    "next",
    "first",
    "it's",
    "that's",
    "what's",
    "who's",
    "he's",
    "she's",
    "they're",
    "they've",
    "he'll",
    "she'll",
    "they'll",
    "i'm",
    "we're",
    "you're",
    "there's",
    "here's",
    "let's",
    "we've",
    "i've",
    "i'd",
    "we'd",
    "he'd",
    "she'd",
    "they'd",
];

/// Never part of a name even when capitalized.
pub(crate) fn is_stop_capitalized(t: &Token) -> bool {
    t.eq_any(&[
        "i",
        "the",
        "a",
        "an",
        "all",
        "any",
        "every",
        "each",
        "this",
        "that",
        "these",
        "those",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "its",
        "please",
        "and",
        "or",
        "then",
        "no",
        "not",
        "if",
        "when",
        "once",
        "after",
        "before",
        "also",
        "some",
        "we",
        "you",
        "he",
        "she",
        "they",
        "it",
        "hi",
        "hey",
        "hello",
        "thanks",
        "ok",
        "okay",
        "so",
        "now",
        "everyone",
        "anyone",
        "nobody",
        "everything",
        "anything",
        "there",
        "what",
        "which",
        "who",
        "how",
        "where",
        "why",
        "is",
        "are",
        "can",
        "could",
        "would",
        "should",
        "will",
        "do",
        "does",
        "for",
        "in",
        "on",
        "from",
        "to",
        "with",
        "by",
        "of",
        "at",
        "into",
        "across",
        "between",
        "since",
        "until",
        "let's",
        "lets",
    ])
}

/// Calendar words: quarters, halves, months, weekdays.
pub(crate) fn is_time_word(t: &Token) -> bool {
    if !t.is_word() {
        return false;
    }
    let l = t.lower.as_str();
    matches!(l, "q1" | "q2" | "q3" | "q4" | "h1" | "h2" | "ytd" | "fy" | "yesterday" | "tomorrow" | "today" | "tonight")
        || month_number(l).is_some()
        || weekday_number(l).is_some()
        || l.strip_prefix("fy").is_some_and(|y| !y.is_empty() && y.bytes().all(|b| b.is_ascii_digit()))
}

/// 1–12 for a month name or its abbreviation ("may" included; callers decide whether the
/// context makes it a month).
pub(crate) fn month_number(l: &str) -> Option<u32> {
    Some(match l {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    })
}

/// Cron day of week (0 = Sunday) for a weekday name, singular or plural.
pub(crate) fn weekday_number(l: &str) -> Option<u32> {
    let l = l.strip_suffix('s').unwrap_or(l);
    Some(match l {
        "sunday" | "sun" => 0,
        "monday" | "mon" => 1,
        "tuesday" | "tue" | "tues" => 2,
        "wednesday" | "wed" => 3,
        "thursday" | "thu" | "thur" | "thurs" => 4,
        "friday" | "fri" => 5,
        "saturday" | "sat" => 6,
        _ => return None,
    })
}

/// A lowercase word that could be a name: not a function word, not vocabulary of this
/// domain, not a number or a calendar word.
pub(crate) fn is_plain_name_word(t: &Token) -> bool {
    if !t.is_word() || t.is_number() || is_time_word(t) {
        return false;
    }
    let l = t.lower.as_str();
    if FUNCTION_WORDS.contains(&l)
        || STALE_WORDS.contains(&l)
        || NEGATIONS.contains(&l)
        || USAGE_WORDS.contains(&l)
        || SENSITIVITY_WORDS.contains(&l)
        || DUPLICATE_WORDS.contains(&l)
        || DEPRECATED_WORDS.contains(&l)
    {
        return false;
    }
    let toks = [t];
    if verb_at(&toks, 0).is_some() || content_type_at(&toks, 0).is_some() || is_permission_noun(t) {
        return false;
    }
    !t.is_any(&[
        "project",
        "folder",
        "site",
        "server",
        "owner",
        "user",
        "team",
        "group",
        "department",
        "tag",
        "day",
        "week",
        "month",
        "quarter",
        "year",
        "schedule",
        "audit",
        "access",
        "leader",
        "lead",
        "admin",
        "manager",
        "people",
        "account",
        "employee",
        "company",
        "org",
        "organization",
        "notification",
        "email",
        "total",
        "general",
        "bulk",
        "order",
        "place",
        "time",
        "case",
        "use",
        "report",
        "detail",
        "ago",
        "days",
        "weekly",
        "daily",
        "monthly",
        "yearly",
        "quarterly",
        "nightly",
        "hourly",
        "way",
        "end",
        "lot",
        "bit",
        "favor",
        "favour",
        "question",
        "something",
        "somewhere",
        "anywhere",
        "everywhere",
        "nothing",
        "otherwise",
        "afterwards",
        "meantime",
        "advance",
        "future",
        "production",
        "prod",
        "bit",
        "batch",
        "sync",
        "line",
        "mind",
        "charge",
        "progress",
        "addition",
        "particular",
        "short",
        "full",
        "summary",
        "ok",
        "thanks",
        "thank",
        "asap",
        "soon",
        "later",
        "yeah",
        "yep",
        "hi",
        "hey",
        "hello",
        "here",
        "there",
    ])
}
