//! What one clause asks for.
//!
//! The first action verb of a clause decides most of it ("Archive …", "… should be
//! deleted"); the words around it settle the rest: duplicates make any lookup a
//! consolidation, permission nouns turn "update"/"remove" into a permission change, a person
//! who leaves makes it an offboarding, an opening "which/how many/who" makes it a question.
//! Clauses that only set the scene ("For the Finance project:", "Find stale workbooks …")
//! are returned as such; `assemble` decides what they mean for their neighbours.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::clause::Clause;
use crate::entity::{
    audience, content_type, datasource_name_at, destination_project, explicit_tags, is_boundary, migrate_names,
    name_at, repoint_project, sensitivity_tags, site_wide, source_project,
};
use crate::lexicon::{
    DEPRECATED_WORDS, DUPLICATE_WORDS, NEGATIONS, SENSITIVITY_WORDS, STALE_WORDS, USAGE_WORDS, Verb, content_type_at,
    datasource_at, is_permission_noun, title_case, verb_at,
};
use crate::offboard::{self, Clues, new_owner, remove_access};
use crate::schedule::schedule;
use crate::time::{Window, first_duration, iso, window};
use crate::token::{Token, tok, word_at};

/// Intent names: the catalogue's (`tabflow_plan::intent::names`), under the parser's short
/// names. Which parameters each takes is `tabflow_plan::Intent::keys`.
pub(crate) mod names {
    pub(crate) use tabflow_plan::intent::names::{
        ARCHIVE_STALE_CONTENT as ARCHIVE, AUDIT_PERMISSIONS as AUDIT, CLEAN_SUBSCRIPTIONS as CLEAN_SUBS,
        CONSOLIDATE_DATASOURCES as CONSOLIDATE, DELETE_CONTENT as DELETE, MIGRATE_DATASOURCE as MIGRATE,
        NOTIFY_OWNERS as NOTIFY, OFFBOARD_USER as OFFBOARD, QUERY, RECLAIM_LICENSES as RECLAIM,
        REVIEW_EXTRACT_REFRESHES as REFRESHES, UPDATE_PERMISSIONS as UPDATE,
    };
}

/// What a clause contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A complete intent.
    Intent(&'static str),
    /// "Find/list …": the selection for a following action, or else a question.
    Find,
    /// "Which/how many/who …": a question; its selection also serves a following "them".
    Question,
    /// "Clean up the Finance project": sets the scene when actions follow, else archives.
    Umbrella,
    /// "For the Finance project:": only a project.
    Context,
    /// "create an access report", "let me know": understood, no intent of its own.
    Report,
    /// "… and repeat it every week": the schedule of the audit before it.
    Recur,
    /// Politeness, thanks.
    Filler,
    /// Understood, but not something tabflow can do yet ("delete data alerts …"): never
    /// mapped to the nearest workflow. `params["what"]` says what, in words.
    Unsupported,
    /// The action could mean two things ("archive or delete …"): a question, never a guess.
    /// `params["what"]` is the clause, `params["choices"]` the readings.
    Ambiguous,
    /// Not understood.
    Unknown,
}

/// One analysed clause.
#[derive(Debug, Clone)]
pub(crate) struct Analysis {
    pub(crate) role: Role,
    /// The intent's parameters, or for scene-setting roles the selection they describe.
    pub(crate) params: Map<String, Value>,
    /// Refers back with "them", "those", "it".
    pub(crate) anaphor: bool,
    /// Says "across the site": no project may be inherited.
    pub(crate) site_wide: bool,
    /// The clause as written.
    pub(crate) text: String,
    /// An offboarding clause that says the person leaves (see `offboard::detect`).
    pub(crate) leaving: bool,
    /// An archive read from "clean up" / "clear out" / "get rid of": a delete said right
    /// after it ("… and delete them for good") replaces it.
    pub(crate) soft: bool,
}

/// Everything about a clause the decision needs, gathered once.
struct Signals {
    head: Option<(Verb, usize, usize)>,
    interrogative: bool,
    dup: bool,
    datasource: bool,
    permission: bool,
    access_question: bool,
    stale: bool,
    duration: Option<u32>,
    window: Window,
    deprecated: bool,
    anaphor: bool,
    archive_word: bool,
    archive_asked: bool,
    audit_noun: bool,
    report_noun: bool,
    sensitivity: bool,
    tagged: bool,
    site_wide: bool,
    content: bool,
}

const INTERROGATIVES: &[&str] = &[
    "how", "what", "which", "who", "whom", "whose", "where", "when", "why", "is", "are", "was", "were", "does", "do",
    "did", "has", "have", "should", "any", "what's", "who's", "how's", "where's", "whats", "whos",
];

/// Determiners and modifiers after which a verb form is a noun ("a monthly review").
const NOUN_MARKERS: &[&str] = &[
    "a",
    "an",
    "the",
    "this",
    "that",
    "any",
    "your",
    "our",
    "my",
    "of",
    "weekly",
    "monthly",
    "daily",
    "quarterly",
    "yearly",
    "annual",
    "access",
    "permission",
    "permissions",
    "view",
    "no",
    "regular",
    "recurring",
    "full",
    "new",
    "its",
    "their",
    "his",
    "her",
    "data",
    "at",
];

fn head_verb(toks: &[&Token]) -> Option<(Verb, usize, usize)> {
    (0..toks.len()).find_map(|i| {
        let (verb, n) = verb_at(toks, i)?;
        if i > 0 {
            let t = tok(toks, i);
            let prev = word_at(toks, i - 1);
            if NOUN_MARKERS.contains(&prev) || SENSITIVITY_WORDS.contains(&t.lower.as_str()) {
                return None;
            }
            // Past participles of look-up verbs describe ("workbooks flagged as …").
            let participle = t.lower.ends_with("ed");
            if participle && matches!(verb, Verb::Find | Verb::List | Verb::Report | Verb::Setup | Verb::Check) {
                return None;
            }
            if participle && t.lower == "consolidated" {
                return None;
            }
        }
        Some((verb, i, n))
    })
}

fn collect(c: &Clause<'_>, today: NaiveDate) -> Signals {
    let toks = &c.toks;
    let head = head_verb(toks);
    let first = word_at(toks, 0);
    let interrogative = INTERROGATIVES.contains(&first)
        && !(first == "any" && head.is_some_and(|(_, i, _)| i == 0))
        && !(matches!(first, "do" | "does") && word_at(toks, 1) == "not");
    // Vocabulary inside a name ("Sales Pipeline (Legacy)", "Orders Old") says nothing.
    let in_name = |k: usize| {
        let t = tok(toks, k);
        t.is_capitalized()
            && k > 0
            && ((tok(toks, k.wrapping_sub(1)).is_punct('(') && k > 1 && tok(toks, k.wrapping_sub(2)).is_capitalized())
                || (k > 1
                    && tok(toks, k.wrapping_sub(1)).is_capitalized()
                    && !tok(toks, k.wrapping_sub(1)).is_any(&["the", "all", "any"])))
    };
    let lower_in = |list: &[&str]| {
        toks.iter().enumerate().any(|(k, t)| t.is_word() && list.contains(&t.lower.as_str()) && !in_name(k))
    };
    let dup = lower_in(DUPLICATE_WORDS)
        || toks.iter().enumerate().any(|(k, t)| t.eq("same") && datasource_at(toks, k + 1).is_some());
    let datasource = (0..toks.len()).any(|k| datasource_at(toks, k).is_some());
    let permission = toks.iter().any(|t| is_permission_noun(t))
        || (0..toks.len()).any(|k| word_at(toks, k) == "who" && matches!(word_at(toks, k + 1), "can" | "has" | "have"));
    let access_question = (0..toks.len()).any(|k| {
        matches!(word_at(toks, k), "who" | "users" | "people" | "groups" | "anyone" | "everyone" | "user" | "group")
            && matches!(word_at(toks, k + 1), "can" | "has" | "have" | "could")
            && (k + 2..(k + 4).min(toks.len())).any(|m| {
                matches!(
                    word_at(toks, m),
                    "access" | "see" | "view" | "open" | "edit" | "download" | "permission" | "permissions"
                )
            })
    });
    let stale = lower_in(STALE_WORDS)
        || (0..toks.len()).any(|k| {
            NEGATIONS.contains(&word_at(toks, k))
                && (k + 1..(k + 5).min(toks.len())).any(|m| USAGE_WORDS.contains(&word_at(toks, m)))
        })
        || (0..toks.len()).any(|k| word_at(toks, k) == "no" && matches!(word_at(toks, k + 1), "one" | "activity"));
    let duration = first_duration(toks);
    let deprecated = lower_in(DEPRECATED_WORDS);
    let anaphor = toks.iter().enumerate().any(|(k, t)| {
        t.eq_any(&["them", "those", "these", "it", "ones", "they", "their"])
            && !(t.eq("it") && k + 1 < toks.len() && word_at(toks, k + 1) == "is")
    });
    let archive_word = toks.iter().any(|t| t.is_word() && t.lemma() == "archiv");
    // "archive" as a word of the request, not the name of a project ("in the Archive project").
    let archive_asked = toks.iter().enumerate().any(|(k, t)| {
        t.is_word()
            && t.lemma() == "archiv"
            && !(k > 0 && t.is_capitalized() && !title_case(toks))
            && !toks.get(k + 1).is_some_and(|n| n.is_word() && n.is_any(&["project", "folder"]))
    });
    let audit_noun =
        toks.iter().any(|t| t.is_any(&["audit", "review", "inspection", "access-review", "recertification"]));
    let report_noun = toks.iter().any(|t| t.is_any(&["report", "summary", "overview", "export", "spreadsheet", "csv"]));
    let sensitivity = lower_in(SENSITIVITY_WORDS);
    let tagged = toks.iter().any(|t| t.eq_any(&["tagged", "tag", "tags", "labelled", "labeled", "marked"]));
    let content = (0..toks.len()).any(|k| content_type_at(toks, k).is_some());
    Signals {
        head,
        interrogative,
        dup,
        datasource,
        permission,
        access_question,
        stale,
        duration,
        window: window(toks, today),
        deprecated,
        anaphor,
        archive_word,
        archive_asked,
        audit_noun,
        report_noun,
        sensitivity,
        tagged,
        site_wide: site_wide(c),
        content,
    }
}

fn put(params: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    params.insert(key.to_string(), value.into());
}

fn put_opt(params: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        put(params, key, v);
    }
}

/// Analyses one clause. `after_offboard` says the previous intent was an offboarding, so
/// "give her workbooks to Tom" continues it.
pub(crate) fn analyse(c: &Clause<'_>, today: NaiveDate, after_offboard: bool) -> Analysis {
    let sig = collect(c, today);
    if let Some(params) = reclaim(c, &sig) {
        let text = c.text.clone();
        return Analysis {
            role: Role::Intent(names::RECLAIM),
            params,
            anaphor: sig.anaphor,
            site_wide: sig.site_wide,
            text,
            leaving: false,
            soft: false,
        };
    }
    let (role, params, leaving) = match offboard_of(c, &sig, after_offboard) {
        Some((params, leaving)) => (Role::Intent(names::OFFBOARD), params, leaving),
        None => {
            let (role, params) = decide(c, &sig);
            (role, params, false)
        }
    };
    let soft = role == Role::Intent(names::ARCHIVE) && sig.head.is_some_and(|(v, _, _)| v == Verb::Clean);
    Analysis { role, params, anaphor: sig.anaphor, site_wide: sig.site_wide, text: c.text.clone(), leaving, soft }
}

fn is_filler(c: &Clause<'_>) -> bool {
    let toks = &c.toks;
    let all = |ws: &[&str]| toks.iter().all(|t| t.is_any_punct() || t.eq_any(ws));
    all(&[
        "thanks",
        "thank",
        "you",
        "please",
        "cheers",
        "ok",
        "okay",
        "asap",
        "that's",
        "all",
        "that",
        "is",
        "it",
        "done",
        "great",
        "much",
        "so",
        "very",
        "appreciated",
        "urgent",
        "now",
        "today",
        "hi",
        "hello",
        "hey",
        "team",
        "if",
        "yes",
        "possible",
        "when",
        "can",
        "one",
        "more",
        "thing",
        "also",
    ]) || (word_at(toks, 0) == "let" && word_at(toks, 1) == "me" && word_at(toks, 2) == "know")
}

/// An offboarding clause: its parameters and whether it says the person leaves.
fn offboard_of(c: &Clause<'_>, sig: &Signals, after_offboard: bool) -> Option<(Map<String, Value>, bool)> {
    if c.toks.is_empty() || is_filler(c) {
        return None;
    }
    let clues = Clues {
        head: sig.head,
        permission: sig.permission,
        content: sig.content,
        archive_word: sig.archive_word,
        stale: sig.stale,
        datasource: sig.datasource,
        after_offboard,
    };
    offboard::detect(c, &clues)
}

fn decide(c: &Clause<'_>, sig: &Signals) -> (Role, Map<String, Value>) {
    if c.toks.is_empty() || is_filler(c) {
        return (Role::Filler, Map::new());
    }
    if let Some(found) = refresh_review(c, sig).or_else(|| unsupported(c, sig)).or_else(|| ambiguous(c, sig)) {
        return found;
    }
    if sig.interrogative {
        if sig.dup && (sig.datasource || !sig.content) {
            return intent(names::CONSOLIDATE, c, sig);
        }
        if sig.access_question {
            return intent(names::AUDIT, c, sig);
        }
        return (Role::Question, selection(c, sig));
    }
    let Some((verb, at, len)) = sig.head else { return without_verb(c, sig) };
    let head = tok(&c.toks, at);
    match verb {
        Verb::Archive => intent(names::ARCHIVE, c, sig),
        Verb::Clean => {
            // "Clear out …", "get rid of …", "clean up …" archive; only a delete said in
            // the same clause ("get rid of them for good: delete …") deletes.
            let delete_said = c.toks.iter().any(|t| t.is_any(&["delete", "purge", "erase", "destroy", "permanently"]));
            if delete_said && !sig.permission && !sig.dup {
                intent(names::DELETE, c, sig)
            } else if sig.dup && (sig.datasource || !sig.content) {
                intent(names::CONSOLIDATE, c, sig)
            } else if sig.permission {
                intent(names::UPDATE, c, sig)
            } else if !sig.content && !sig.stale && sig.duration.is_none() && sig.window.is_empty() {
                let mut p = Map::new();
                put_opt(&mut p, "project", project(c, sig, true).or_else(|| object_name(c, at + len)));
                (Role::Umbrella, p)
            } else {
                let (role, mut p) = intent(names::ARCHIVE, c, sig);
                if !p.contains_key("stale_days") {
                    put(&mut p, "stale_days", 90);
                }
                (role, p)
            }
        }
        Verb::Delete => {
            // "Remove write permissions for All Users on Marketing workbooks": what is
            // removed is named first.
            let object = (at + len..c.toks.len()).find_map(|k| {
                if is_permission_noun(tok(&c.toks, k)) {
                    Some(true)
                } else {
                    content_type_at(&c.toks, k).map(|_| false)
                }
            });
            if sig.permission && (!sig.content || object == Some(true)) {
                intent(names::UPDATE, c, sig)
            } else if sig.dup && (sig.datasource || !sig.content) {
                intent(names::CONSOLIDATE, c, sig)
            } else if sig.archive_asked {
                intent(names::ARCHIVE, c, sig)
            } else {
                intent(names::DELETE, c, sig)
            }
        }
        Verb::Consolidate => intent(names::CONSOLIDATE, c, sig),
        Verb::Migrate => {
            // "Migrate workbooks from the Finance project to the Archive project" moves
            // content between projects; it repoints nothing.
            let projects = c.toks.iter().any(|t| t.is_word() && t.is_any(&["project", "folder"]));
            // "Upgrade workbooks on deprecated data sources": these verbs repoint only when
            // the clause is about datasources.
            let vague = head.is_any(&["upgrade", "modernize", "modernise"]);
            if vague && !sig.datasource && !sig.deprecated {
                (Role::Unknown, Map::new())
            } else if projects && !sig.datasource && !sig.deprecated {
                intent(names::ARCHIVE, c, sig)
            } else {
                intent(names::MIGRATE, c, sig)
            }
        }
        Verb::Move => {
            let off = c.toks.iter().any(|t| t.eq("off"));
            if off || (sig.datasource && !sig.archive_word && !sig.stale) {
                intent(names::MIGRATE, c, sig)
            } else {
                intent(names::ARCHIVE, c, sig)
            }
        }
        Verb::Transfer => {
            let mut p = Map::new();
            put_opt(&mut p, "new_owner", new_owner(c));
            put_opt(&mut p, "remove_access", remove_access(c));
            (Role::Intent(names::OFFBOARD), p)
        }
        Verb::Audit | Verb::Check => {
            let about_permissions = sig.permission || sig.sensitivity || sig.tagged || sig.access_question;
            if sig.dup && (sig.datasource || !sig.content) {
                intent(names::CONSOLIDATE, c, sig)
            } else if about_permissions || (verb == Verb::Audit && !sig.stale && sig.duration.is_none()) {
                intent(names::AUDIT, c, sig)
            } else {
                (Role::Find, selection(c, sig))
            }
        }
        Verb::Update => {
            let implies =
                head.is_any(&["tighten", "restrict", "lock", "unlock", "revoke", "grant", "harden", "secure"]);
            let mode = permission_mode(c).filter(|m| !matches!(m.as_str(), "revoke" | "grant" | "project-default"));
            if sig.permission || implies || mode.is_some() {
                intent(names::UPDATE, c, sig)
            } else {
                (Role::Unknown, Map::new())
            }
        }
        Verb::Notify => {
            let to_me = matches!(word_at(&c.toks, at + 1), "me" | "us" | "myself");
            let send_what = head.eq_any(&["send", "sends", "cc"])
                && !c.toks.iter().any(|t| {
                    t.is_any(&[
                        "notification",
                        "email",
                        "e-mail",
                        "message",
                        "notice",
                        "note",
                        "heads-up",
                        "alert",
                        "announcement",
                        "owner",
                        "leader",
                        "lead",
                        "user",
                        "everyone",
                        "reminder",
                        "warning",
                    ])
                });
            if head.eq_any(&["send", "sends"]) && (sig.archive_word || (sig.stale && sig.content)) {
                // "Send stale workbooks to the Archive project".
                intent(names::ARCHIVE, c, sig)
            } else if to_me || send_what {
                if sig.permission || sig.audit_noun { intent(names::AUDIT, c, sig) } else { (Role::Report, Map::new()) }
            } else {
                intent(names::NOTIFY, c, sig)
            }
        }
        Verb::Offboard => {
            // "disable …" without a person, e.g. "disable guest access": a permission change.
            if sig.permission { intent(names::UPDATE, c, sig) } else { (Role::Unknown, Map::new()) }
        }
        Verb::Setup => keyword_intent(c, sig).or_else(|| recurrence(c)).unwrap_or((Role::Unknown, Map::new())),
        Verb::Report => {
            if sig.permission || sig.audit_noun || sig.sensitivity || sig.access_question {
                intent(names::AUDIT, c, sig)
            } else {
                (Role::Report, selection(c, sig))
            }
        }
        Verb::Find | Verb::List => {
            let tell_me = len == 2 && matches!(word_at(&c.toks, at), "tell" | "show" | "give" | "get");
            if sig.dup && (sig.datasource || !sig.content) {
                intent(names::CONSOLIDATE, c, sig)
            } else if sig.access_question || (sig.permission && (sig.sensitivity || sig.tagged)) {
                intent(names::AUDIT, c, sig)
            } else if tell_me {
                (Role::Question, selection(c, sig))
            } else {
                (Role::Find, selection(c, sig))
            }
        }
    }
}

/// License reclamation: "Reclaim licenses from users who haven't signed in for 90 days",
/// "downgrade inactive Creators", "unlicense users with no sign-in in six months except the
/// Finance group". A named person's license ("remove her license") is an offboarding.
fn reclaim(c: &Clause<'_>, sig: &Signals) -> Option<Map<String, Value>> {
    let toks = &c.toks;
    let license_noun = toks.iter().any(|t| t.is_any(&["license", "licence", "seat"]));
    let verb = |ws: &[&str]| toks.iter().any(|t| t.is_any(ws));
    let reclaiming = verb(&[
        "reclaim",
        "free",
        "recover",
        "recycle",
        "harvest",
        "remove",
        "revoke",
        "take",
        "pull",
        "release",
        "claw",
        "downgrade",
        "demote",
        "lower",
        "unlicense",
        "reduce",
        "cut",
        "save",
    ]);
    let people = toks.iter().any(|t| {
        t.eq_any(&[
            "users",
            "accounts",
            "people",
            "creators",
            "explorers",
            "viewers",
            "everyone",
            "anyone",
            "members",
            "seats",
            "licenses",
            "licences",
        ])
    });
    let signed_in = (0..toks.len()).any(|k| {
        matches!(word_at(toks, k), "signed" | "logged" | "sign-in" | "sign-ins" | "login" | "logins" | "log" | "sign")
    });
    let inactive = signed_in || sig.stale || toks.iter().any(|t| t.is_any(&["inactive", "dormant", "idle"]));
    let downgrade = verb(&["downgrade", "demote", "lower"]);
    let unlicense = verb(&["unlicense"]) || toks.iter().any(|t| t.eq("unlicensed") && k_before_users(toks));
    let asks = (license_noun && reclaiming && (people || inactive)) || ((downgrade || unlicense) && people && inactive);
    if !asks || sig.interrogative || sig.content {
        return None;
    }
    let mut p = Map::new();
    put_opt(&mut p, "inactive_days", sig.duration);
    if downgrade {
        put(&mut p, "action", "downgrade");
    } else if unlicense {
        put(&mut p, "action", "unlicense");
    }
    let exclude = exclusions(c);
    if !exclude.is_empty() {
        put(&mut p, "exclude", exclude);
    }
    Some(p)
}

/// "Set … users to unlicensed": the word follows a mention of users.
fn k_before_users(toks: &[&Token]) -> bool {
    toks.iter().any(|t| t.eq_any(&["users", "accounts", "people"]))
}

/// Who is kept: the names after "except", "excluding", "other than", "but not", split on
/// commas and "and"/"or"; "the X group" is X; administrators and service accounts (always
/// kept) are left out.
fn exclusions(c: &Clause<'_>) -> Vec<String> {
    let toks = &c.toks;
    let Some(start) = (0..toks.len()).find_map(|k| match (word_at(toks, k), word_at(toks, k + 1)) {
        ("except" | "excluding" | "excl" | "exclude", "for") => Some(k + 2),
        ("except" | "excluding" | "excl" | "exclude", _) => Some(k + 1),
        ("other" | "but" | "apart" | "besides", "than" | "not" | "from") => Some(k + 2),
        _ => None,
    }) else {
        return vec![];
    };
    let mut out = vec![];
    let mut cur: Vec<&str> = vec![];
    let mut flush = |cur: &mut Vec<&str>| {
        let words: Vec<&str> = cur
            .drain(..)
            .filter(|w| !matches!(w.to_lowercase().as_str(), "the" | "group" | "team" | "user" | "users"))
            .collect();
        let name = words.join(" ");
        let lower = name.to_lowercase();
        if !name.is_empty()
            && !["admins", "administrators", "service accounts", "admin accounts", "site admins"]
                .contains(&lower.as_str())
        {
            out.push(name);
        }
    };
    for t in toks.iter().skip(start) {
        if t.is_punct(',') || t.eq_any(&["and", "or", "&"]) {
            flush(&mut cur);
        } else if t.is_word() {
            cur.push(t.text.as_str());
        }
    }
    flush(&mut cur);
    out
}

/// Objects tabflow recognises but has no workflow for yet, as (word, what it is called).
/// An action on one of them is answered "I can't do that yet", never the nearest workflow
/// ("Remove subscriptions of unlicensed users …" once planned an archive of 167 workbooks;
/// removing or cleaning up subscriptions is now `clean-subscriptions`, other actions on them
/// are still refused).
const UNSUPPORTED_OBJECTS: &[(&str, &str)] = &[
    ("subscription", "subscriptions"),
    ("alert", "data alerts"),
    ("schedule", "schedules"),
    ("task", "tasks"),
    ("job", "jobs"),
    ("refresh", "extract refreshes"),
    ("webhook", "webhooks"),
    ("favorite", "favorites"),
    ("favourite", "favorites"),
    ("collection", "collections"),
    ("metric", "metrics"),
    ("comment", "comments"),
    ("token", "tokens"),
    ("connection", "connections"),
    ("credential", "credentials"),
];

/// Words that may stand between an action verb and its object ("remove all the old …").
const OBJECT_LEAD: &[&str] = &[
    "the",
    "all",
    "any",
    "every",
    "each",
    "of",
    "old",
    "stale",
    "unused",
    "inactive",
    "failing",
    "failed",
    "broken",
    "orphaned",
    "orphan",
    "my",
    "his",
    "her",
    "their",
    "our",
    "these",
    "those",
    "existing",
    "outdated",
    "dead",
    "duplicate",
    "extract",
    "data",
    "user",
    "users'",
    "suspended",
    "disabled",
    "email",
    "e-mail",
    "personal",
    "access",
    "custom",
    "expired",
    "unlicensed",
    "a",
    "an",
    "some",
    "pending",
];

/// An action on an object tabflow has no workflow for: `Role::Unsupported` naming it.
fn unsupported(c: &Clause<'_>, sig: &Signals) -> Option<(Role, Map<String, Value>)> {
    if sig.interrogative {
        return None;
    }
    let (verb, at, len) = sig.head?;
    let acts = matches!(
        verb,
        Verb::Delete
            | Verb::Archive
            | Verb::Clean
            | Verb::Move
            | Verb::Migrate
            | Verb::Consolidate
            | Verb::Update
            | Verb::Offboard
            | Verb::Transfer
    );
    if !acts {
        return None;
    }
    let toks = &c.toks;
    let mut k = at + len;
    while k < toks.len() {
        let t = tok(toks, k);
        // Removing or cleaning up subscriptions is a workflow of its own.
        if t.is("subscription") && matches!(verb, Verb::Delete | Verb::Clean) {
            return Some((Role::Intent(names::CLEAN_SUBS), subscription_cleanup(c, sig)));
        }
        if let Some(&(_, what)) = UNSUPPORTED_OBJECTS.iter().find(|(w, _)| t.is(w)) {
            let verb_words: Vec<&str> = (at..at + len).map(|i| word_at(toks, i)).collect();
            let mut p = Map::new();
            put(&mut p, "what", format!("{} {what}", verb_words.join(" ")));
            return Some((Role::Unsupported, p));
        }
        let lead = t.is_any_punct() || t.eq_any(OBJECT_LEAD) || t.is_number();
        if !lead {
            return None;
        }
        k += 1;
    }
    None
}

/// Extract refresh health (`review-extract-refreshes`): a clause about extract refreshes
/// ("review extract refreshes", "which extracts are failing", "suspend refreshes of unused
/// workbooks", "move heavy refreshes off-peak", "suspend the refresh schedules nobody needs",
/// "resume suspended extract schedules"). Resuming a schedule is `resume-schedules`,
/// suspending one `suspend-schedules`; suspending, stopping or deleting refreshes is
/// `suspend-unused` when unused content is said (else it is not a workflow: `unsupported`
/// names it); off-peak, rebalancing or heavy ones is `rebalance`; anything else is the report.
fn refresh_review(c: &Clause<'_>, _sig: &Signals) -> Option<(Role, Map<String, Value>)> {
    let toks = &c.toks;
    let any = |ws: &[&str]| toks.iter().any(|t| t.eq_any(ws));
    let refresh = any(&["refresh", "refreshes", "refreshing"]);
    let failing_extracts =
        any(&["extract", "extracts"]) && any(&["failing", "failed", "fail", "fails", "broken", "erroring"]);
    if !refresh && !failing_extracts {
        return None;
    }
    let mut p = Map::new();
    let schedules = any(&["schedule", "schedules"]);
    let suspend_verbs = ["suspend", "stop", "disable", "pause", "deactivate"];
    if schedules && any(&["resume", "reactivate", "unsuspend", "unpause", "reenable", "restart", "enable"]) {
        put(&mut p, "action", "resume-schedules");
    } else if schedules && any(&suspend_verbs) {
        put(&mut p, "action", "suspend-schedules");
    } else if any(&["peak", "off-peak", "offpeak", "rebalance", "rebalancing", "balance", "overnight", "heavy"]) {
        put(&mut p, "action", "rebalance");
    } else if any(&["suspend", "stop", "disable", "pause", "delete", "remove", "cancel", "drop", "kill"]) {
        // Only the refreshes of unused content have a workflow; removing failing (or all)
        // refreshes is named as something tabflow cannot do yet, never this one.
        if !any(&["unused", "unviewed", "nobody", "viewed", "stale", "inactive", "abandoned", "used"]) {
            return None;
        }
        put(&mut p, "action", "suspend-unused");
    }
    // "… in the last 60 days", "not viewed for 120 days": the number before "days".
    if let Some(n) = (1..toks.len())
        .find(|&k| tok(toks, k).eq_any(&["days", "day"]) && tok(toks, k - 1).is_number())
        .and_then(|k| word_at(toks, k - 1).parse::<u32>().ok())
        .filter(|n| *n > 0)
    {
        put(&mut p, "unused_days", n);
    }
    Some((Role::Intent(names::REFRESHES), p))
}

/// `clean-subscriptions` parameters: which subscriptions ("of unlicensed users", "to archived
/// content", "failing"/"suspended"; all three when none is said) and a project.
fn subscription_cleanup(c: &Clause<'_>, sig: &Signals) -> Map<String, Value> {
    let toks = &c.toks;
    // Exact words: "delete" (the verb) must not read as "deleted (users)".
    let any = |ws: &[&str]| toks.iter().any(|t| t.eq_any(ws));
    let mut reasons = vec![];
    if any(&["unlicensed", "unlicenced", "deleted", "removed", "former", "departed", "inactive"]) {
        reasons.push("unlicensed-users");
    }
    if any(&["archived", "archive", "quarantined", "quarantine", "retired"]) {
        reasons.push("archived-content");
    }
    if any(&["failing", "failed", "suspended", "broken", "erroring", "bouncing"]) {
        reasons.push("failing");
    }
    let mut p = Map::new();
    if !reasons.is_empty() {
        put(&mut p, "reason", reasons);
    }
    let project =
        project(c, sig, true).filter(|p| !matches!(p.to_lowercase().as_str(), "archive" | "archived" | "quarantine"));
    put_opt(&mut p, "project", project);
    p
}

/// "Archive or delete …", "delete or archive …": two readings with different undo; asked.
fn ambiguous(c: &Clause<'_>, sig: &Signals) -> Option<(Role, Map<String, Value>)> {
    let toks = &c.toks;
    let pair = (0..toks.len()).any(|k| {
        let either = |w: &Token| w.lemma() == "archiv" || w.is_any(&["delete", "remove", "purge"]);
        word_at(toks, k) == "or" && k > 0 && either(tok(toks, k - 1)) && toks.get(k + 1).is_some_and(|n| either(n))
    });
    if !pair || sig.interrogative {
        return None;
    }
    let mut p = Map::new();
    put(&mut p, "what", c.text.clone());
    put(&mut p, "choices", vec!["archive", "delete"]);
    Some((Role::Ambiguous, p))
}

/// A clause with no action verb.
fn without_verb(c: &Clause<'_>, sig: &Signals) -> (Role, Map<String, Value>) {
    if let Some(found) = keyword_intent(c, sig) {
        return found;
    }
    let toks = &c.toks;
    let popular = (0..toks.len()).any(|k| {
        (matches!(word_at(toks, k), "most" | "least")
            && matches!(word_at(toks, k + 1), "viewed" | "used" | "popular" | "accessed"))
            || (word_at(toks, k) == "top" && toks.get(k + 1).is_some_and(|t| t.is_number()))
            || (word_at(toks, k) == "how" && matches!(word_at(toks, k + 1), "many" | "much"))
    });
    if (c.question && !c.polite) || popular {
        return (Role::Question, selection(c, sig));
    }
    if let Some(found) = recurrence(c) {
        return found;
    }
    // "nobody outside HR can see the Payroll project", "only managers can edit …".
    let limits_access = (0..toks.len()).any(|k| {
        word_at(toks, k) == "can"
            && matches!(word_at(toks, k + 1), "see" | "access" | "view" | "edit" | "open" | "download")
            && toks.iter().take(k).any(|t| t.eq_any(&["nobody", "only", "noone", "except", "outside"]))
    });
    if limits_access {
        let (_, mut p) = intent(names::UPDATE, c, sig);
        p.entry("mode").or_insert_with(|| Value::from("restrict"));
        return (Role::Intent(names::UPDATE), p);
    }
    let words = toks.iter().filter(|t| !t.is_any_punct()).count();
    // "For the Finance project:", "We have too many old workbooks in Marketing."
    if let Some(p) = project(c, sig, true).filter(|_| words <= 6 || sig.content) {
        let mut params = Map::new();
        put(&mut params, "project", p);
        return (Role::Context, params);
    }
    if sig.site_wide && words <= 5 {
        return (Role::Context, Map::new());
    }
    (Role::Unknown, Map::new())
}

/// Intents recognisable from nouns alone ("a weekly audit of …", "duplicate datasources").
fn keyword_intent(c: &Clause<'_>, sig: &Signals) -> Option<(Role, Map<String, Value>)> {
    if sig.dup && (sig.datasource || !sig.content) {
        return Some(intent(names::CONSOLIDATE, c, sig));
    }
    if sig.access_question || sig.audit_noun || (sig.permission && (sig.sensitivity || sig.tagged)) {
        return Some(intent(names::AUDIT, c, sig));
    }
    if sig.report_noun && (sig.permission || sig.sensitivity) {
        return Some(intent(names::AUDIT, c, sig));
    }
    if sig.archive_word || c.toks.iter().any(|t| t.is_any(&["cleanup", "clean-up", "housekeeping", "retirement"])) {
        let (role, mut p) = intent(names::ARCHIVE, c, sig);
        if sig.stale && !p.contains_key("stale_days") {
            put(&mut p, "stale_days", 90);
        }
        return Some((role, p));
    }
    if sig.permission && sig.content && c.toks.iter().any(|t| t.is_any(&["change", "update", "fix", "tightening"])) {
        return Some(intent(names::UPDATE, c, sig));
    }
    None
}

/// A clause that only gives a schedule ("repeat it every week", "weekly from now on").
fn recurrence(c: &Clause<'_>) -> Option<(Role, Map<String, Value>)> {
    let when = schedule(&c.toks)?;
    let words = c.toks.iter().filter(|t| !t.is_any_punct()).count();
    (words <= 8).then(|| {
        let mut p = Map::new();
        put(&mut p, "schedule", when);
        (Role::Recur, p)
    })
}

/// The project of a clause unless it says "across the site".
fn project(c: &Clause<'_>, sig: &Signals, moving: bool) -> Option<String> {
    if sig.site_wide { None } else { source_project(c, moving) }
}

/// The name right after a verb ("Tidy up Marketing", "Archive Finance"), when nothing but
/// the end of the clause or "project" follows it.
fn object_name(c: &Clause<'_>, at: usize) -> Option<String> {
    let toks = &c.toks;
    let at = if word_at(toks, at) == "the" { at + 1 } else { at };
    let (name, end) = name_at(c, at, false)?;
    // "Archive Board Reports not accessed in 18 months": a description may follow.
    let ok = end >= toks.len()
        || tok(toks, end).is_any_punct()
        || tok(toks, end).is_any(&["project", "folder", "space"])
        || (end > at + 1 && is_boundary(toks, end));
    // "Archive Old Workbooks" (title case) describes content; it names nothing.
    let describes = (at..end).any(|k| content_type_at(toks, k).is_some());
    (ok && !describes && !tok(toks, end.saturating_sub(1)).possessive).then_some(name)
}

/// `stale_days` as the clause implies it: its duration, or 90 when it says "old", "unused",
/// "not viewed" without one.
fn stale_days(sig: &Signals) -> Option<u32> {
    sig.duration.or(if sig.stale { Some(90) } else { None })
}

/// Tags in the order they appear: explicit ("tagged x or y") and sensitivity labels
/// ("sensitive workbooks").
fn tags(c: &Clause<'_>) -> Vec<String> {
    let explicit = explicit_tags(c);
    let sensitive = sensitivity_tags(c);
    let mut out: Vec<String> = Vec::new();
    for t in &c.toks {
        let l = t.lower.trim_start_matches('#');
        if (explicit.iter().any(|e| e == l) || sensitive.iter().any(|e| e == l)) && !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    }
    out
}

fn intent(name: &'static str, c: &Clause<'_>, sig: &Signals) -> (Role, Map<String, Value>) {
    let mut p = Map::new();
    match name {
        names::ARCHIVE => {
            let head_end = sig.head.map(|(_, i, n)| i + n).unwrap_or(0);
            let archive_project = destination_project(c);
            let source = project(c, sig, true)
                .or_else(|| if sig.site_wide { None } else { object_name(c, head_end) })
                .filter(|s| Some(s) != archive_project.as_ref() || !c.toks.iter().any(|t| t.eq_any(&["to", "into"])));
            put_opt(&mut p, "project", source);
            put_opt(&mut p, "stale_days", stale_days(sig));
            put_opt(&mut p, "since", sig.window.since.map(iso));
            put_opt(&mut p, "until", sig.window.until.map(iso));
            put_opt(&mut p, "archive_project", archive_project);
            // Workbooks are the default; datasources only when the request names them.
            let mut kinds = std::collections::BTreeSet::new();
            for k in 0..c.toks.len() {
                if let Some((Some(ty), _)) = crate::lexicon::content_type_at(&c.toks, k) {
                    kinds.insert(ty);
                }
            }
            if kinds.contains("datasource") {
                put(&mut p, "content", if kinds.contains("workbook") { "all" } else { "datasources" });
            }
        }
        names::CONSOLIDATE => put_opt(&mut p, "project", project(c, sig, false)),
        names::AUDIT => {
            let tags = tags(c);
            if !tags.is_empty() {
                put(&mut p, "tags", tags);
            }
            put_opt(&mut p, "project", project(c, sig, false));
            put_opt(&mut p, "schedule", schedule(&c.toks));
        }
        names::UPDATE => {
            put_opt(&mut p, "project", project(c, sig, false));
            put_opt(&mut p, "scope", permission_scope(c));
            put_opt(&mut p, "mode", permission_mode(c));
        }
        names::NOTIFY => {
            put(&mut p, "audience", audience(c));
            put_opt(&mut p, "project", project(c, sig, false));
        }
        names::MIGRATE => {
            let (at, len) = sig.head.map(|(_, i, n)| (i, n)).unwrap_or((0, 0));
            let (from, to) = migrate_names(c, at, len);
            let named: Vec<&str> = [&from, &to].into_iter().flatten().map(String::as_str).collect();
            let scope = if sig.site_wide { None } else { repoint_project(c, &named) };
            put_opt(&mut p, "project", scope);
            put_opt(&mut p, "from", from.or_else(|| sig.deprecated.then(|| "deprecated".to_string())));
            put_opt(&mut p, "to", to);
        }
        names::DELETE => {
            // "Delete the Sandbox project": with no content named, the project itself goes.
            let whole_project = !sig.content && c.toks.iter().any(|t| t.is_word() && t.is_any(&["project", "folder"]));
            put_opt(&mut p, "type", content_type(c).or(whole_project.then_some("project")));
            put_opt(&mut p, "project", project(c, sig, true));
            put_opt(&mut p, "stale_days", stale_days(sig));
            let tags = tags(c);
            if !tags.is_empty() {
                put(&mut p, "tags", tags);
            }
        }
        _ => {}
    }
    (Role::Intent(name), p)
}

/// What a look-up selects, for a following action to use: project, age, dates, tags,
/// content type, the datasource it uses.
fn selection(c: &Clause<'_>, sig: &Signals) -> Map<String, Value> {
    let mut p = Map::new();
    put_opt(&mut p, "project", project(c, sig, true));
    put_opt(&mut p, "stale_days", stale_days(sig));
    put_opt(&mut p, "since", sig.window.since.map(iso));
    put_opt(&mut p, "until", sig.window.until.map(iso));
    let tags = tags(c);
    if !tags.is_empty() {
        put(&mut p, "tags", tags);
    }
    put_opt(&mut p, "type", content_type(c));
    let toks = &c.toks;
    let from = (0..toks.len())
        .find_map(|k| {
            // "using X", "connected to X" name a datasource; "on X", "from X" only when the
            // clause talks about datasources ("workbooks on the Orders datasource").
            let (j, sure) = match (word_at(toks, k), word_at(toks, k + 1)) {
                ("using" | "use" | "uses", _) => (k + 1, true),
                ("connected" | "pointing" | "pointed" | "built" | "based", "to" | "at" | "on") => (k + 2, true),
                ("on" | "from" | "against", _) => (k + 1, false),
                _ => return None,
            };
            (sure || sig.datasource).then(|| datasource_name_at(c, j).map(|(n, _)| n)).flatten()
        })
        .or_else(|| (sig.deprecated && sig.datasource).then(|| "deprecated".to_string()));
    put_opt(&mut p, "from", from);
    p
}

fn permission_scope(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    if toks.iter().any(|t| t.eq_any(&["remaining", "rest", "leftover", "left-over", "remains", "remain", "else"]))
        || (0..toks.len()).any(|k| word_at(toks, k) == "what's" && word_at(toks, k + 1) == "left")
    {
        return Some("remaining".into());
    }
    if (0..toks.len()).any(|k| {
        (word_at(toks, k) == "all" && matches!(word_at(toks, k + 1), "content" | "items" | "assets"))
            || word_at(toks, k) == "everything"
    }) {
        return Some("all".into());
    }
    content_type(c).map(|t| format!("{t}s"))
}

fn permission_mode(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    let has = |ws: &[&str]| toks.iter().any(|t| t.is_any(ws));
    let mode = if has(&["read-only", "readonly", "view-only"])
        || (0..toks.len()).any(|k| matches!(word_at(toks, k), "read" | "view") && word_at(toks, k + 1) == "only")
    {
        "read-only"
    } else if (0..toks.len()).any(|k| word_at(toks, k) == "lock" && (1..=3).any(|d| word_at(toks, k + d) == "down")) {
        "restrict"
    } else if has(&["unlock"]) {
        "unlocked"
    } else if has(&["lock"]) {
        "locked"
    } else if has(&["restrict", "tighten", "harden", "secure", "limit", "least-privilege", "narrow"])
        || (0..toks.len()).any(|k| {
            word_at(toks, k) == "all" && word_at(toks, k + 1) == "users"
                || word_at(toks, k) == "everyone"
                || word_at(toks, k) == "broad"
        })
    {
        "restrict"
    } else if has(&["revoke", "remove", "delete", "strip"]) {
        "revoke"
    } else if has(&["grant", "give", "allow", "open"]) {
        "grant"
    } else if has(&["reset", "inherit", "default", "defaults", "sync", "match"]) {
        "project-default"
    } else {
        return None;
    };
    Some(mode.to_string())
}
