//! Offboarding: a person leaves, their content goes to someone else, their access goes.
//!
//! Recognised from a departure ("Sarah Lee is leaving", "when he leaves", "jdoe quit",
//! "Maria Garcia moved to another company", "Friday is Chloe's last day"), an offboarding
//! verb ("offboard", "deprovision", "deactivate the account of …"), or a hand-over of
//! someone's content ("migrate John's content", "transfer everything owned by asmith",
//! "give her workbooks to Tom" right after an offboarding).

use serde_json::{Map, Value};

use crate::clause::Clause;
use crate::entity::{PRONOUNS, first_name_index, name_at, name_before, person_at, source_project, team};
use crate::lexicon::{Verb, content_type_at, is_plain_name_word};
use crate::token::{Kind, Token, tok, word_at};

/// What the clause analysis already knows.
pub(crate) struct Clues {
    /// The clause's first action verb, its index and length.
    pub(crate) head: Option<(Verb, usize, usize)>,
    pub(crate) permission: bool,
    pub(crate) content: bool,
    pub(crate) archive_word: bool,
    pub(crate) stale: bool,
    pub(crate) datasource: bool,
    /// The previous clause was an offboarding.
    pub(crate) after_offboard: bool,
}

/// Who a departure is about.
enum Subject {
    Named(String),
    Pronoun,
    Unnamed,
}

/// Words between a person and the verb of their departure ("Sarah Lee is about to leave").
const AUXILIARIES: &[&str] = &[
    "is",
    "was",
    "has",
    "have",
    "had",
    "will",
    "be",
    "being",
    "been",
    "just",
    "already",
    "recently",
    "finally",
    "officially",
    "also",
    "now",
    "soon",
    "about",
    "to",
    "going",
    "gonna",
    "who",
    "are",
    "were",
    "did",
    "does",
    "sadly",
    "unfortunately",
    "actually",
    "apparently",
    "suddenly",
    "should",
    "can",
    "shall",
    "would",
    "may",
];

const TEAM_NOUNS: &[&str] = &["team", "group", "department", "dept", "division", "squad", "org", "unit"];

const HELPERS: &[&str] = &[
    "manager",
    "boss",
    "lead",
    "supervisor",
    "successor",
    "replacement",
    "teammate",
    "colleague",
    "backup",
    "deputy",
    "cover",
];

/// Is `tok(toks, v)` (with what follows) a departure verb?
fn is_departure(toks: &[&Token], v: usize) -> bool {
    let t = tok(toks, v);
    let l = t.lower.as_str();
    t.is_any(&["leave", "quit", "resign", "depart", "retire"])
        || matches!(l, "left" | "terminated" | "fired" | "offboarded" | "exits" | "exiting" | "exited")
        || (l == "let" && word_at(toks, v + 1) == "go")
        || (l == "laid" && word_at(toks, v + 1) == "off")
        || (matches!(l, "moved" | "moving" | "moves" | "move")
            && (word_at(toks, v + 1) == "on"
                || (word_at(toks, v + 1) == "to"
                    && (matches!(word_at(toks, v + 2), "another" | "a" | "an" | "other" | "different" | "new")
                        || (v + 2..(v + 7).min(toks.len()))
                            .any(|m| tok(toks, m).is_any(TEAM_NOUNS) || tok(toks, m).is("company"))))))
        || (l == "no" && word_at(toks, v + 1) == "longer")
        || (l == "gone" && v > 0 && matches!(word_at(toks, v - 1), "is" | "has" | "been"))
}

/// The departure in a clause and the index of its verb: "Sarah Lee is leaving", "when he
/// leaves", "Priya from the Data team is leaving", "Friday is John's last day", "the departing
/// employee Ravi Kumar".
fn departure(c: &Clause<'_>) -> Option<(Subject, usize)> {
    let toks = &c.toks;
    for v in 0..toks.len() {
        let t = tok(toks, v);
        if !t.is_word() {
            continue;
        }
        let l = t.lower.as_str();
        if matches!(l, "departing" | "leaving" | "outgoing" | "former" | "departed" | "exiting")
            && toks.get(v + 1).is_some_and(|n| {
                n.is_any(&["employee", "user", "colleague", "analyst", "member", "staff", "contractor", "teammate"])
            })
        {
            if let Some((name, _)) = person_at(c, v + 2, true) {
                return Some((Subject::Named(name), v));
            }
            return Some((Subject::Unnamed, v));
        }
        if l == "last" && matches!(word_at(toks, v + 1), "day" | "week") {
            if v > 0
                && tok(toks, v.wrapping_sub(1)).possessive
                && let Some((name, _)) = name_before(c, v, 0, true)
            {
                return Some((Subject::Named(name), v));
            }
            if v > 0 && matches!(word_at(toks, v - 1), "his" | "her" | "their") {
                return Some((Subject::Pronoun, v));
            }
            continue;
        }
        // "is going on (parental) leave".
        let on_leave =
            if t.is("leave") { (1..=2).find(|&d| v >= d && word_at(toks, v - d) == "on").map(|d| v - d) } else { None };
        if !is_departure(toks, v) && on_leave.is_none() {
            continue;
        }
        // A verb at the very start is an instruction ("Leave the rest"), not a departure.
        let mut k = on_leave.unwrap_or(v);
        while k > 0 && AUXILIARIES.contains(&word_at(toks, k - 1)) {
            k -= 1;
        }
        if k == 0 {
            continue;
        }
        let before = tok(toks, k.wrapping_sub(1));
        let bare = before.lower.split('\'').next().unwrap_or("");
        if before.is_word() && (PRONOUNS.contains(&before.lower.as_str()) || PRONOUNS.contains(&bare)) {
            return Some((Subject::Pronoun, v));
        }
        let mut end = k;
        // "John (jdoe) is leaving".
        if before.is_punct(')')
            && let Some(open) = (0..end - 1).rev().find(|&s| tok(toks, s).is_punct('('))
        {
            end = open;
        }
        // "Priya from the Data team is leaving": the person comes before "from".
        if tok(toks, end.wrapping_sub(1)).is_any(TEAM_NOUNS)
            && let Some(f) =
                (end.saturating_sub(6)..end).rev().find(|&s| tok(toks, s).eq_any(&["from", "in", "on", "of"]))
        {
            end = f;
        }
        let Some((name, start)) = name_before(c, end, 0, true) else { continue };
        if content_type_at(toks, start).is_some() {
            continue;
        }
        // A lowercase subject must be an account name or start the sentence ("jdoe left",
        // "when jdoe leaves"), not any word ("on parental leave").
        let lowercase =
            tok(toks, start).is_word() && !tok(toks, start).is_capitalized() && !tok(toks, start).is_identifier();
        let opens = start == 0
            || tok(toks, start.wrapping_sub(1)).is_any_punct()
            || tok(toks, start.wrapping_sub(1))
                .eq_any(&["when", "since", "because", "as", "once", "after", "before", "user", "if", "now"]);
        if lowercase && !opens {
            continue;
        }
        if start > 0
            && word_at(toks, start - 1) == "from"
            && let Some((person, _)) = name_before(c, start - 1, 0, true)
        {
            return Some((Subject::Named(person), v));
        }
        return Some((Subject::Named(name), v));
    }
    None
}

/// The team named with "from X" right after the leaving person ("Sarah from Finance is
/// leaving").
fn team_after_from(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    (0..toks.len()).find_map(|k| {
        if word_at(toks, k) != "from" || k == 0 || !tok(toks, k.wrapping_sub(1)).is_capitalized() {
            return None;
        }
        let (name, end) = name_at(c, k + 1, false)?;
        (AUXILIARIES.contains(&word_at(toks, end))
            || toks.get(end).is_some_and(|t| is_departure(toks, end) && t.is_word()))
        .then_some(name)
    })
}

/// The team named right after the departure verb: "Sandra is leaving Finance", "jdoe left
/// the Sales team" (the latter also found by `team`).
fn team_left(c: &Clause<'_>, verb: Option<usize>) -> Option<String> {
    let toks = &c.toks;
    let v = verb?;
    if !tok(toks, v).is_any(&["leave", "quit", "depart"]) && !tok(toks, v).eq("left") {
        return None;
    }
    let j = if word_at(toks, v + 1) == "the" { v + 2 } else { v + 1 };
    let (name, _) = name_at(c, j, false)?;
    tok(toks, j).is_capitalized().then_some(name)
}

/// The person content goes to: "to Tom Baker", "over to his manager, Priya Patel", "Tom will
/// take over", "his replacement is Maya Singh", "with Tom as the new owner", "new owner: Tom".
pub(crate) fn new_owner(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    for k in 0..toks.len() {
        let l = word_at(toks, k);
        if l == "to" {
            let mut j = k + 1;
            if matches!(word_at(toks, j), "his" | "her" | "their" | "the")
                && toks.get(j + 1).is_some_and(|t| t.is_any(HELPERS))
            {
                j += 2;
                if toks.get(j).is_some_and(|t| t.is_punct(',')) {
                    j += 1;
                }
            }
            if let Some((name, _)) = person_at(c, j, true) {
                return Some(name);
            }
        }
        // "Tom will take over", "Tom takes over".
        if matches!(l, "take" | "takes" | "taking") && word_at(toks, k + 1) == "over" {
            let mut m = k;
            while m > 0 && AUXILIARIES.contains(&word_at(toks, m - 1)) {
                m -= 1;
            }
            if let Some((name, _)) = name_before(c, m, 0, true) {
                return Some(name);
            }
        }
        // "his replacement is Maya", "the new owner should be Tom", "new owner: Tom".
        if tok(toks, k).is_any(&["replacement", "successor", "owner"])
            && (tok(toks, k).is("owner") == (k > 0 && word_at(toks, k - 1) == "new"))
        {
            let mut j = k + 1;
            while toks.get(j).is_some_and(|t| {
                t.eq_any(&["is", "should", "be", "will", "would", "shall"]) || t.is_punct(':') || t.is_punct('=')
            }) {
                j += 1;
            }
            if j > k + 1
                && let Some((name, _)) = person_at(c, j, true)
            {
                return Some(name);
            }
        }
        // "with Tom as the new owner", "make Tom the owner".
        if matches!(l, "with" | "make")
            && let Some((name, end)) = person_at(c, k + 1, false)
            && (end..(end + 4).min(toks.len())).any(|m| tok(toks, m).is("owner"))
        {
            return Some(name);
        }
    }
    None
}

/// `remove_access`: true for "remove her access", "disable his account", "revoke access",
/// "remove him from the site"; false for "keep her account", "don't remove access"; absent
/// when not said.
pub(crate) fn remove_access(c: &Clause<'_>) -> Option<bool> {
    let toks = &c.toks;
    let access_noun = |t: &Token| {
        t.is_any(&[
            "access",
            "account",
            "login",
            "license",
            "licence",
            "permission",
            "right",
            "user",
            "role",
            "seat",
            "sign-in",
            "group",
        ]) || t.eq_any(&["him", "her", "them", "site", "server", "unlicensed"])
    };
    let removal = |k: usize| {
        tok(toks, k).is_any(&[
            "remove",
            "revoke",
            "disable",
            "deactivate",
            "delete",
            "suspend",
            "unlicense",
            "terminate",
            "strip",
            "deprovision",
            "de-provision",
            "kill",
            "cancel",
            "block",
        ]) || (word_at(toks, k) == "take" && word_at(toks, k + 1) == "away")
            || (word_at(toks, k) == "cut" && word_at(toks, k + 1) == "off")
            || (word_at(toks, k) == "lock" && word_at(toks, k + 1) == "out")
    };
    for k in 0..toks.len() {
        let near = || (k + 1..(k + 6).min(toks.len())).any(|m| access_noun(tok(toks, m)));
        if tok(toks, k).is_any(&["keep", "retain", "preserve", "maintain"]) && near() {
            return Some(false);
        }
        if matches!(word_at(toks, k), "don't" | "without" | "not" | "never" | "no")
            && (k + 1..(k + 3).min(toks.len())).any(removal)
        {
            return Some(false);
        }
        if (removal(k) && near()) || tok(toks, k).eq("unlicensed") {
            return Some(true);
        }
    }
    None
}

/// `delete_user`: true for "delete her account", "delete the user jdoe", "remove his account
/// permanently", "delete John from the site"; absent otherwise (and after "don't delete" or
/// "keep the account"). Deleting is asked again by the planner: the careful default is to
/// keep the account, Unlicensed.
pub(crate) fn delete_account(c: &Clause<'_>) -> Option<bool> {
    let toks = &c.toks;
    let account = |t: &Token| t.is_any(&["account", "login", "profile"]) || t.eq_any(&["user", "site", "server"]);
    for k in 0..toks.len() {
        let negated = k > 0 && matches!(word_at(toks, k - 1), "don't" | "not" | "never" | "without" | "no");
        if tok(toks, k).is_any(&["keep", "retain", "preserve"])
            && (k + 1..(k + 5).min(toks.len())).any(|m| tok(toks, m).is_any(&["account", "login"]))
        {
            return None;
        }
        let delete = tok(toks, k).is_any(&["delete", "erase", "purge"]);
        let remove_for_good = tok(toks, k).is_any(&["remove"])
            && toks.iter().skip(k + 1).any(|t| t.eq_any(&["permanently", "entirely", "completely", "altogether"]));
        if (delete || remove_for_good) && !negated && (k + 1..(k + 7).min(toks.len())).any(|m| account(tok(toks, m))) {
            return Some(true);
        }
    }
    None
}

/// "user jdoe", "the account of john.doe@acme.com", "employee Ravi Kumar".
fn explicit_user(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    (0..toks.len()).find_map(|k| {
        if !tok(toks, k).eq_any(&[
            "user",
            "account",
            "employee",
            "colleague",
            "analyst",
            "member",
            "contractor",
            "username",
        ]) {
            return None;
        }
        let j = if toks.get(k + 1).is_some_and(|t| t.eq_any(&["called", "named", "of"]) || t.is_punct(':')) {
            k + 2
        } else {
            k + 1
        };
        person_at(c, j, true).map(|(n, _)| n)
    })
}

/// A possessive person ("John's content") that is not a project or team.
fn possessive_person(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    let min = first_name_index(c);
    (0..toks.len()).find_map(|k| {
        let t = tok(toks, k);
        // An account name in lowercase counts before an access noun ("jdoe's access",
        // "asmith's account").
        let account = is_plain_name_word(t)
            && !(k > 0 && tok(toks, k.wrapping_sub(1)).eq_any(&["the", "a", "an", "our", "my", "this", "that"]))
            && toks.get(k + 1).is_some_and(|n| n.is_any(&["access", "account", "login", "license", "licence"]));
        if !t.possessive || !(t.is_capitalized() || t.is_identifier() || t.kind == Kind::Quoted || account) {
            return None;
        }
        if toks.get(k + 1).is_some_and(|n| n.is_any(&["project", "team", "group", "department", "folder", "last"])) {
            return None;
        }
        name_before(c, k + 1, min, true).map(|(n, _)| n)
    })
}

/// "owned by John", "belonging to jdoe", "transfer ownership from John".
fn owned_by(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    let ownership = toks.iter().any(|t| t.is_any(&["ownership", "owner"]));
    (0..toks.len()).find_map(|k| {
        let by = matches!(
            (word_at(toks, k), word_at(toks, k + 1)),
            ("owned" | "published" | "created", "by") | ("belonging", "to")
        );
        if by {
            return person_at(c, k + 2, true).map(|(n, _)| n);
        }
        if word_at(toks, k) == "from" && ownership {
            return person_at(c, k + 1, true).map(|(n, _)| n);
        }
        None
    })
}

/// The person right after an offboarding verb: "offboard Sarah Lee", "deactivate the departing
/// employee jdoe".
fn object_person(c: &Clause<'_>, at: usize) -> Option<String> {
    let toks = &c.toks;
    let mut j = at;
    while toks.get(j).is_some_and(|t| {
        t.eq_any(&[
            "the",
            "a",
            "user",
            "employee",
            "colleague",
            "analyst",
            "account",
            "member",
            "departing",
            "leaving",
            "former",
            "of",
            "for",
            "our",
            "contractor",
            "ownership",
            "all",
            "everything",
            "content",
            "owned",
            "by",
            "from",
        ])
    }) {
        j += 1;
    }
    person_at(c, j, true).map(|(n, _)| n)
}

/// The `offboard-user` parameters if the clause is about a person leaving or handing over.
/// The offboarding a clause asks for: its parameters, and whether the clause says the person
/// leaves (a departure or an offboarding verb) rather than only handing content over.
pub(crate) fn detect(c: &Clause<'_>, clues: &Clues) -> Option<(Map<String, Value>, bool)> {
    let toks = &c.toks;
    let verb = clues.head.map(|(v, _, _)| v);
    let departure = departure(c);
    let possessive = possessive_person(c);
    let owned_by = owned_by(c);
    let owner = new_owner(c);
    let pronoun_owner = toks.iter().enumerate().any(|(k, t)| {
        (t.eq_any(&["his", "her", "their"]) && toks.get(k + 1).is_some_and(|n| n.is_word()))
            || (t.eq_any(&["he", "she", "they"])
                && toks
                    .get(k + 1)
                    .is_some_and(|n| n.is_any(&["own", "owned", "owns", "created", "published", "built"])))
    });
    let pronoun_object = toks.iter().any(|t| t.eq_any(&["him", "her", "them"]));
    // The departure verb may itself be the clause's head ("Kevin is retiring").
    let departure_is_head = matches!((&departure, clues.head), (Some((_, v)), Some((_, h, _))) if *v == h);
    let content_action = matches!(
        verb,
        Some(Verb::Archive | Verb::Delete | Verb::Consolidate | Verb::Audit | Verb::Notify | Verb::Clean)
    );
    let is_offboard = match verb {
        Some(Verb::Offboard) => {
            !clues.permission || possessive.is_some() || explicit_user(c).is_some() || pronoun_owner
        }
        Some(Verb::Transfer) => true,
        Some(Verb::Migrate | Verb::Move) => {
            (possessive.is_some()
                || owned_by.is_some()
                || (pronoun_owner && (clues.after_offboard || departure.is_some())))
                && !clues.archive_word
                && !clues.stale
                && !(clues.datasource && verb == Some(Verb::Migrate) && possessive.is_none())
        }
        Some(Verb::Delete | Verb::Update) => {
            let access = toks.iter().any(|t| {
                t.is_any(&["access", "account", "login", "license", "licence"])
                    || t.eq("user")
                    || (pronoun_object && t.eq_any(&["site", "server", "tableau"]))
            });
            let who = pronoun_owner || pronoun_object || possessive.is_some() || explicit_user(c).is_some();
            let no_project = source_project(c, false).is_none();
            // "Delete the user jsmith …", "remove jsmith from the site permanently".
            let deletes_account = verb == Some(Verb::Delete)
                && delete_account(c) == Some(true)
                && no_project
                && (who
                    || (!clues.content && clues.head.is_some_and(|(_, at, len)| object_person(c, at + len).is_some())));
            (access && (departure.is_some() || (who && no_project && !clues.content)))
                || (clues.after_offboard && who && clues.permission && no_project)
                || deletes_account
        }
        _ => false,
    } || (departure.is_some() && (!content_action || departure_is_head))
        || (clues.after_offboard && owner.is_some() && !content_action);
    if !is_offboard {
        return None;
    }
    let team_name = team(c).or_else(|| team_after_from(c)).or_else(|| team_left(c, departure.as_ref().map(|d| d.1)));
    let mut user = explicit_user(c);
    if user.is_none()
        && let Some((Subject::Named(n), _)) = &departure
    {
        user = Some(n.clone());
    }
    user = user.or(possessive).or(owned_by);
    if user.is_none()
        && let Some((Verb::Offboard | Verb::Transfer | Verb::Delete | Verb::Update, at, len)) = clues.head
    {
        user = object_person(c, at + len);
    }
    if user.is_none() {
        user = toks.iter().find(|t| t.is_word() && t.lower.contains('@')).map(|t| t.text.clone());
    }
    let user = user.filter(|u| Some(u) != owner.as_ref() && Some(u) != team_name.as_ref());
    let hard_verb = clues.head.is_some_and(|(v, i, _)| {
        v == Verb::Offboard
            && tok(toks, i).is_any(&["deactivate", "disable", "deprovision", "de-provision", "unlicense"])
    });
    let mut p = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            p.insert(k.to_string(), v);
        }
    };
    put("user", user.map(Value::from));
    put("team", team_name.map(Value::from));
    put("new_owner", owner.map(Value::from));
    let delete = delete_account(c);
    put("remove_access", remove_access(c).or(hard_verb.then_some(true)).or(delete).map(Value::from));
    put("delete_user", delete.map(Value::from));
    let on_leave = toks.iter().enumerate().any(|(k, t)| {
        t.eq("leave")
            && k > 0
            && matches!(
                word_at(toks, k - 1),
                "on" | "parental" | "maternity" | "paternity" | "sick" | "medical" | "annual" | "extended" | "study"
            )
    }) || toks.iter().any(|t| t.is_any(&["vacation", "holiday", "sabbatical"]));
    let leaving = (departure.is_some() && !on_leave) || verb == Some(Verb::Offboard);
    Some((p, leaving))
}
