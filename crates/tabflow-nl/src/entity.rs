//! Names and other values inside a clause: projects, people, teams, datasources, tags,
//! audiences and content types.
//!
//! A name is a quoted string, a run of capitalized words ("Sales Pipeline (Legacy)",
//! "Sarah Lee"), or an account name (`jdoe`, `john.doe@acme.com`). Lowercase single words
//! count only where the surrounding words make them a name ("the finance project",
//! "offboard jdoe"). Names are cut from the request exactly as written, without quotes and
//! without a possessive `'s`.

use crate::clause::Clause;
use crate::lexicon::{
    DEPRECATED_WORDS, DUPLICATE_WORDS, FUNCTION_WORDS, SENSITIVITY_WORDS, STALE_WORDS, content_type_at, datasource_at,
    is_permission_noun, is_plain_name_word, is_stop_capitalized, is_time_word, verb_at,
};
use crate::token::{Kind, Token, tok, word_at};

/// Personal pronouns that refer back to a person named earlier.
pub(crate) const PRONOUNS: &[&str] = &["he", "she", "they", "him", "her", "his", "their", "them", "hers", "theirs"];

/// Words that turn a preceding name into a team.
const TEAM_NOUNS: &[&str] =
    &["team", "group", "department", "dept", "division", "squad", "org", "unit", "teams", "groups"];

/// A capitalized word that can start a name.
fn is_name_start(t: &Token) -> bool {
    t.is_word()
        && !is_stop_capitalized(t)
        && !is_time_word(t)
        && (t.is_capitalized() || t.is_identifier())
        && !(t.is_number() && t.lower.len() != 4)
}

/// A word that can continue a name started by a capitalized word.
fn is_name_continuation(t: &Token) -> bool {
    t.is_word()
        && !is_time_word(t)
        && (t.is_capitalized() || t.is_identifier() || t.is_number())
        && !t.eq_any(&["i", "and", "or", "the", "then"])
}

/// The text of `toks[a..b]` as written: original spacing between adjacent tokens, a single
/// space where tokens come from different places.
pub(crate) fn span_text(c: &Clause<'_>, a: usize, b: usize) -> String {
    let mut out = String::new();
    for k in a..b {
        let t = tok(&c.toks, k);
        if k > a {
            let p = tok(&c.toks, k.wrapping_sub(1));
            let gap = c.src.get(p.end..t.start).unwrap_or(" ");
            // A hyphen inside one written word ("Year-End", split off as a unit by the
            // tokenizer) stays: names are kept as written.
            let joiner = matches!(gap, "-" | "\u{2010}" | "\u{2011}");
            if p.possessive || gap.is_empty() || joiner || gap.chars().all(char::is_whitespace) && gap.len() <= 3 {
                out.push_str(if p.possessive { " " } else { gap });
            } else {
                out.push(' ');
            }
        }
        out.push_str(&t.text);
    }
    out
}

/// Where a parenthetical of at most three words starting at `tok(toks, k)` ends (exclusive).
fn paren_end(toks: &[&Token], k: usize) -> Option<usize> {
    if !toks.get(k)?.is_punct('(') {
        return None;
    }
    (k + 2..=k + 4).find(|&e| toks.get(e).is_some_and(|t| t.is_punct(')'))).filter(|&e| {
        toks.iter().take(e).skip(k + 1).all(|t| t.is_word())
            && toks.get(k + 1).is_some_and(|t| !t.eq_any(&["no", "not", "e.g", "i.e"]))
    })
}

/// A name starting at `tok(toks, i)`: quoted, a capitalized run, an account name, or (when
/// `lower_ok`) a single lowercase word that is not vocabulary. Returns the name and the index
/// after it.
pub(crate) fn name_at(c: &Clause<'_>, i: usize, lower_ok: bool) -> Option<(String, usize)> {
    let toks = &c.toks;
    let t = toks.get(i)?;
    if t.kind == Kind::Quoted {
        return Some((t.text.clone(), i + 1));
    }
    if is_name_start(t) {
        let mut j = i + 1;
        while j < toks.len() && !tok(toks, j.wrapping_sub(1)).possessive {
            if is_name_continuation(tok(toks, j)) {
                j += 1;
            } else if let Some(e) = paren_end(toks, j) {
                j = e + 1;
            } else if (tok(toks, j).is_punct('&')
                || tok(toks, j).is_punct('-')
                || tok(toks, j).is_punct('\u{2013}')
                || tok(toks, j).eq("of"))
                && toks.get(j + 1).is_some_and(|n| n.is_capitalized() && !is_time_word(n))
            {
                j += 2;
            } else {
                break;
            }
        }
        return Some((span_text(c, i, j), j));
    }
    if lower_ok && !is_time_word(t) && (t.is_identifier() || is_plain_name_word(t)) {
        return Some((t.text.clone(), i + 1));
    }
    None
}

/// A name ending just before `tok(toks, end)` (a capitalized run read backwards, or a quoted
/// string, or when `lower_ok` a single plain word); never reaching below `min`. Returns the
/// name and its first index.
pub(crate) fn name_before(c: &Clause<'_>, end: usize, min: usize, lower_ok: bool) -> Option<(String, usize)> {
    let toks = &c.toks;
    if end == 0 || end <= min {
        return None;
    }
    let last = tok(toks, end.wrapping_sub(1));
    if last.kind == Kind::Quoted {
        return Some((last.text.clone(), end - 1));
    }
    let mut k = end;
    loop {
        let connector = |t: &Token| t.is_punct('&') || t.is_punct('-') || t.is_punct('\u{2013}') || t.eq("of");
        if k > min
            && is_name_continuation(tok(toks, k.wrapping_sub(1)))
            && (k == end || !tok(toks, k.wrapping_sub(1)).possessive)
        {
            k -= 1;
        } else if k < end
            && k >= min + 2
            && connector(tok(toks, k.wrapping_sub(1)))
            && tok(toks, k.wrapping_sub(2)).is_capitalized()
            && !is_time_word(tok(toks, k.wrapping_sub(2)))
            && !tok(toks, k.wrapping_sub(2)).possessive
        {
            k -= 2;
        } else if k >= min + 3 && tok(toks, k.wrapping_sub(1)).is_punct(')') {
            match (min..k - 1).rev().find(|&s| tok(toks, s).is_punct('(')) {
                Some(s) if paren_end(toks, s) == Some(k - 1) && s > min => k = s,
                _ => break,
            }
        } else {
            break;
        }
    }
    // Trim leading words that are vocabulary, not part of the name ("Archive Old Workbooks"),
    // unless an article or preposition marks the whole run as a name ("the Old Stuff project").
    let introduced = k > 0
        && tok(toks, k.wrapping_sub(1))
            .eq_any(&["the", "a", "an", "our", "my", "in", "from", "of", "to", "into", "on", "for"]);
    while k < end && (!is_name_start(tok(toks, k)) || (is_vocabulary(tok(toks, k)) && !introduced)) {
        k += 1;
    }
    if k < end && !tok(toks, k).is_any_punct() {
        return Some((span_text(c, k, end), k));
    }
    if lower_ok && is_plain_name_word(last) {
        return Some((last.text.clone(), end - 1));
    }
    None
}

/// A capitalized word that is really vocabulary of requests ("Old", "Stale", "All").
fn is_vocabulary(t: &Token) -> bool {
    let l = t.lower.as_str();
    STALE_WORDS.contains(&l)
        || SENSITIVITY_WORDS.contains(&l)
        || DUPLICATE_WORDS.contains(&l)
        || DEPRECATED_WORDS.contains(&l)
        || FUNCTION_WORDS.contains(&l)
        || l == "unused"
}

/// Index of the first token that may be part of a name: past a verb that opens the clause.
pub(crate) fn first_name_index(c: &Clause<'_>) -> usize {
    match verb_at(&c.toks, 0) {
        Some((_, n)) => n,
        None => 0,
    }
}

fn skip_determiners(toks: &[&Token], mut k: usize) -> usize {
    while toks.get(k).is_some_and(|t| t.eq_any(&["the", "our", "my", "a", "an", "their", "this", "that", "its"])) {
        k += 1;
    }
    k
}

fn is_project_noun(t: &Token) -> bool {
    t.is_word() && t.is_any(&["project", "folder"])
}

/// The project the clause acts on: "the Finance project", "project 'Sales Ops'", "in Sales",
/// "out of Marketing", "Finance workbooks". With `moving`, a project after "to"/"into" is a
/// destination and not returned ("into the Archive project"); otherwise it is the project
/// ("tighten access to the HR project").
pub(crate) fn source_project(c: &Clause<'_>, moving: bool) -> Option<String> {
    project_except(c, moving, &[])
}

/// The project a repointing is limited to: "in Finance", "the Sales project", "Finance
/// workbooks"; never a datasource slot ("from X", "on X", "the Orders extract") nor one of
/// `names` (the datasources).
pub(crate) fn repoint_project(c: &Clause<'_>, names: &[&str]) -> Option<String> {
    project_in(c, false, names, true)
}

fn project_except(c: &Clause<'_>, moving: bool, others: &[&str]) -> Option<String> {
    project_in(c, moving, others, false)
}

fn project_in(c: &Clause<'_>, moving: bool, others: &[&str], repointing: bool) -> Option<String> {
    let toks = &c.toks;
    let other = |name: &str| others.iter().any(|o| o.eq_ignore_ascii_case(name));
    let min = first_name_index(c);
    // "the Finance project", "project Phoenix".
    for k in 0..toks.len() {
        if !is_project_noun(tok(toks, k)) {
            continue;
        }
        if let Some((name, start)) = name_before(c, k, min, true) {
            let before = skip_back_determiners(toks, start);
            let destination = moving && before > 0 && tok(toks, before.wrapping_sub(1)).eq_any(&["to", "into", "onto"]);
            if !destination && !other(&name) {
                return Some(name);
            }
        }
        let mut j = k + 1;
        if toks.get(j).is_some_and(|t| t.eq_any(&["called", "named", "titled"]) || t.is_punct(':')) {
            j += 1;
        }
        if let Some((name, _)) = name_at(c, j, false) {
            let before = skip_back_determiners(toks, k);
            let destination = moving && before > 0 && tok(toks, before.wrapping_sub(1)).eq_any(&["to", "into", "onto"]);
            if !destination && !other(&name) {
                return Some(name);
            }
        }
    }
    // "in Sales", "out of Marketing", "for Finance".
    for k in 0..toks.len() {
        let (next, lower_ok) = match word_at(toks, k) {
            "in" | "within" | "inside" => (k + 1, true),
            "under" | "across" | "throughout" => (k + 1, false),
            _ if repointing => continue,
            "from" => (k + 1, true),
            "out" if word_at(toks, k + 1) == "of" => (k + 2, true),
            "for" | "on" => (k + 1, false),
            _ => continue,
        };
        let j = skip_determiners(toks, next);
        let Some((name, after)) = name_at(c, j, lower_ok) else { continue };
        if toks.get(after).is_some_and(|t| t.is_any(TEAM_NOUNS) || t.is_any(&["user", "member"]))
            || toks.get(after - 1).is_some_and(|t| t.possessive)
            || name.eq_ignore_ascii_case("tableau")
            || other(&name)
            || (after == j + 1 && is_vocabulary(tok(toks, j)))
        {
            continue;
        }
        let lowercase =
            !tok(toks, j).is_capitalized() && tok(toks, j).kind != Kind::Quoted && !tok(toks, j).is_identifier();
        if lowercase && !is_boundary(toks, after) {
            continue;
        }
        return Some(name);
    }
    // "Finance workbooks", "Sandbox content".
    for k in 0..toks.len() {
        if content_type_at(toks, k).is_none() || (repointing && datasource_at(toks, k).is_some()) {
            continue;
        }
        if let Some((name, start)) = name_before(c, k, min, false)
            && !toks.iter().take(k).skip(start).any(|t| t.possessive)
            && !other(&name)
        {
            return Some(name);
        }
    }
    None
}

fn skip_back_determiners(toks: &[&Token], mut k: usize) -> usize {
    while k > 0 && tok(toks, k.wrapping_sub(1)).eq_any(&["the", "our", "my", "a", "an"]) {
        k -= 1;
    }
    k
}

/// What may follow a lowercase project name: the end, punctuation, a relative pronoun, a
/// preposition, a conjunction or a content noun.
pub(crate) fn is_boundary(toks: &[&Token], k: usize) -> bool {
    match toks.get(k) {
        None => true,
        Some(t) if t.is_any_punct() => true,
        Some(t) => {
            t.eq_any(&[
                "that",
                "which",
                "who",
                "where",
                "and",
                "or",
                "with",
                "older",
                "not",
                "from",
                "to",
                "into",
                "for",
                "since",
                "before",
                "after",
                "nobody",
                "no",
                "haven't",
                "hasn't",
                "than",
                "over",
                "by",
                "untouched",
                "unused",
                "is",
                "are",
                "were",
                "was",
                "last",
            ]) || content_type_at(toks, k).is_some()
                || is_project_noun(t)
        }
    }
}

/// The project content should go to: "into the Archive project", "to 'Cold Storage'".
pub(crate) fn destination_project(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    let min = first_name_index(c);
    for k in 0..toks.len() {
        if !is_project_noun(tok(toks, k)) {
            continue;
        }
        if let Some((name, start)) = name_before(c, k, min, true) {
            let before = skip_back_determiners(toks, start);
            if before > 0 && tok(toks, before.wrapping_sub(1)).eq_any(&["to", "into", "onto"]) {
                return Some(name);
            }
        }
    }
    for k in 0..toks.len() {
        if !tok(toks, k).eq_any(&["to", "into", "onto"]) {
            continue;
        }
        let j = skip_determiners(toks, k + 1);
        if let Some((name, _)) = name_at(c, j, false) {
            return Some(name);
        }
    }
    None
}

/// The clause says the whole site ("across the site", "site-wide", "in all projects").
pub(crate) fn site_wide(c: &Clause<'_>) -> bool {
    let toks = &c.toks;
    (0..toks.len()).any(|k| {
        let l = word_at(toks, k);
        let prev = if k > 0 { word_at(toks, k - 1) } else { "" };
        matches!(l, "sitewide" | "site-wide" | "everywhere" | "server-wide")
            || (matches!(l, "site" | "server" | "tenant") && matches!(prev, "the" | "whole" | "entire" | "across"))
            || (tok(toks, k).is_any(&["project"]) && l.ends_with('s') && matches!(prev, "all" | "the"))
            || (l == "project" && matches!(prev, "every" | "each" | "any"))
    })
}

/// A person's name at `tok(toks, i)`: quoted, capitalized words, an account or email; with
/// `lower_ok` also a plain lowercase word.
pub(crate) fn person_at(c: &Clause<'_>, i: usize, lower_ok: bool) -> Option<(String, usize)> {
    let t = c.toks.get(i)?;
    if t.is_word() && (PRONOUNS.contains(&t.lower.as_str()) || t.eq_any(&["me", "us", "everyone", "someone", "anyone"]))
    {
        return None;
    }
    let (name, end) = name_at(c, i, lower_ok)?;
    // A name that is a project or team is not a person.
    if c.toks.get(end).is_some_and(|n| is_project_noun(n) || n.is_any(TEAM_NOUNS)) {
        return None;
    }
    Some((name, end))
}

/// The team a person leaves: "the Marketing team", "Sales group".
pub(crate) fn team(c: &Clause<'_>) -> Option<String> {
    let toks = &c.toks;
    let min = first_name_index(c);
    (0..toks.len()).find_map(|k| {
        if !tok(toks, k).is_word() || !tok(toks, k).is_any(TEAM_NOUNS) {
            return None;
        }
        name_before(c, k, min, true).map(|(n, _)| n)
    })
}

fn is_tag_item(toks: &[&Token], k: usize) -> bool {
    let Some(t) = toks.get(k) else { return false };
    if t.kind == Kind::Quoted {
        return true;
    }
    if !t.is_word() || t.is_number() || is_time_word(t) {
        return false;
    }
    let l = t.lower.trim_start_matches('#');
    if SENSITIVITY_WORDS.contains(&l) || t.lower.starts_with('#') {
        return true;
    }
    if FUNCTION_WORDS.contains(&l)
        || content_type_at(toks, k).is_some()
        || is_permission_noun(t)
        || matches!(
            l,
            "daily" | "weekly" | "monthly" | "quarterly" | "nightly" | "yearly" | "annually" | "every" | "each"
        )
    {
        return false;
    }
    // A verb ends the list ("tagged pii and schedule …"); a participle is a fine tag
    // ("tagged deprecated", "tagged archived").
    verb_at(toks, k).is_none() || l.ends_with("ed")
}

fn tag_text(t: &Token) -> String {
    t.lower.trim_start_matches('#').to_string()
}

/// Tags named explicitly: "tagged confidential or sensitive", "with the tags pii, hr",
/// "labelled 'restricted'".
pub(crate) fn explicit_tags(c: &Clause<'_>) -> Vec<String> {
    let toks = &c.toks;
    let mut out: Vec<String> = Vec::new();
    for k in 0..toks.len() {
        let t = tok(toks, k);
        let trigger = t
            .eq_any(&["tagged", "tag", "tags", "labelled", "labeled", "label", "labels", "marked", "hashtag"])
            || (t.eq("classified") && word_at(toks, k + 1) == "as");
        if !trigger {
            continue;
        }
        let mut j = k + 1;
        while toks
            .get(j)
            .is_some_and(|x| x.eq_any(&["as", "with", "the", "a", "tag", "tags", "label", "labels"]) || x.is_punct(':'))
        {
            j += 1;
        }
        while is_tag_item(toks, j) {
            let tag = tag_text(tok(toks, j));
            if !out.contains(&tag) {
                out.push(tag);
            }
            j += 1;
            let mut sep = j;
            while toks
                .get(sep)
                .is_some_and(|x| x.eq_any(&["or", "and", "and/or", "&"]) || x.is_punct(',') || x.is_punct('/'))
            {
                sep += 1;
            }
            if sep == j {
                break;
            }
            j = sep;
        }
    }
    out
}

/// Sensitivity words used as labels anywhere in the clause ("sensitive workbooks").
pub(crate) fn sensitivity_tags(c: &Clause<'_>) -> Vec<String> {
    c.toks
        .iter()
        .filter(|t| t.is_word() && SENSITIVITY_WORDS.contains(&t.lower.as_str()))
        .map(|t| tag_text(t))
        .collect()
}

/// `notify-owners` audience: `project-owners` when project owners/leaders are named,
/// otherwise `content-owners`.
pub(crate) fn audience(c: &Clause<'_>) -> &'static str {
    let toks = &c.toks;
    let lead =
        |t: &Token| t.is_any(&["owner", "leader", "lead", "admin", "administrator", "manager", "contact", "steward"]);
    for k in 0..toks.len() {
        if tok(toks, k).is_word() && tok(toks, k).is("project") && toks.get(k + 1).is_some_and(|t| lead(t)) {
            return "project-owners";
        }
        if lead(tok(toks, k)) && word_at(toks, k + 1) == "of" {
            let j = skip_determiners(toks, k + 2);
            let j = if toks.get(j).is_some_and(|t| t.eq_any(&["each", "every", "all"])) { j + 1 } else { j };
            if (j..(j + 4).min(toks.len())).any(|m| is_project_noun(tok(toks, m)) || tok(toks, m).eq("projects")) {
                return "project-owners";
            }
        }
    }
    "content-owners"
}

/// The first content type the clause names (`workbook`, `datasource`, `flow`, `view`);
/// `None` when it names content in general or nothing.
pub(crate) fn content_type(c: &Clause<'_>) -> Option<&'static str> {
    let toks = &c.toks;
    let mut k = 0;
    while k < toks.len() {
        if let Some((ty, _)) = content_type_at(toks, k) {
            return ty;
        }
        k += 1;
    }
    None
}

/// A datasource name at `tok(toks, i)`, after determiners and adjectives ("the new Sales
/// Consolidated datasource" → "Sales Consolidated"); `None` for a description ("the new
/// consolidated datasource").
pub(crate) fn datasource_name_at(c: &Clause<'_>, i: usize) -> Option<(String, usize)> {
    let toks = &c.toks;
    let mut j = skip_determiners(toks, i);
    while toks.get(j).is_some_and(|t| {
        t.eq_any(&[
            "new",
            "old",
            "current",
            "existing",
            "consolidated",
            "published",
            "certified",
            "deprecated",
            "legacy",
            "every",
            "all",
            "each",
            "single",
            "one",
            "same",
            "official",
            "replacement",
            "updated",
            "original",
        ])
    }) {
        j += 1;
    }
    // "the datasource 'Sales'", "the datasource called Sales".
    if let Some(n) = datasource_at(toks, j) {
        let mut k = j + n;
        if toks.get(k).is_some_and(|t| t.eq_any(&["called", "named"])) {
            k += 1;
        }
        return name_at(c, k, false)
            .filter(|_| toks.get(k).is_some_and(|t| t.kind == Kind::Quoted || t.is_capitalized()));
    }
    let t = toks.get(j)?;
    let lower_ok = t.is_identifier() || datasource_at(toks, j + 1).is_some();
    let (name, mut end) = name_at(c, j, lower_ok)?;
    // Drop a trailing capitalized type noun ("Orders Datasource"); "Extract" names a kind of
    // datasource and is part of names ("Customer Master Extract").
    if end > j + 1
        && datasource_at(toks, end - 1).is_some()
        && tok(toks, end.wrapping_sub(1)).kind != Kind::Quoted
        && !tok(toks, end.wrapping_sub(1)).is("extract")
    {
        end -= 1;
        return Some((span_text(c, j, end), end + 1));
    }
    Some((name, end))
}

/// `from` and `to` of a repointing: "from A to B", "off A onto B", "on A at B", "replace A
/// with B", "swap A for B", "using A … to B", "A → B".
pub(crate) fn migrate_names(c: &Clause<'_>, head: usize, head_len: usize) -> (Option<String>, Option<String>) {
    let toks = &c.toks;
    let (mut from, mut to) = (None, None);
    let replace = toks.get(head).is_some_and(|t| t.is_any(&["replace", "swap"]));
    let mut k = head + head_len;
    if replace {
        let j = if word_at(toks, k) == "out" { k + 1 } else { k };
        if let Some((name, end)) = datasource_name_at(c, j) {
            from = Some(name);
            k = end;
        }
    }
    while k < toks.len() {
        let l = word_at(toks, k);
        let arrow = tok(toks, k).is_punct('\u{2192}')
            || (tok(toks, k).is_punct('-') && toks.get(k + 1).is_some_and(|t| t.is_punct('>')));
        if arrow {
            if from.is_none() {
                from = name_before(c, k, head + head_len, true).map(|(n, _)| n);
            }
            let step = if tok(toks, k).is_punct('-') { 2 } else { 1 };
            if let Some((name, end)) = datasource_name_at(c, k + step) {
                to.get_or_insert(name);
                k = end;
                continue;
            }
        }
        let from_at = match l {
            "from" | "on" | "using" | "use" | "uses" | "against" => Some(k + 1),
            "off" => Some(if word_at(toks, k + 1) == "of" { k + 2 } else { k + 1 }),
            "connected" | "pointing" | "pointed" | "built" | "based" | "sourced"
                if matches!(word_at(toks, k + 1), "to" | "at" | "on" | "from") =>
            {
                Some(k + 2)
            }
            "instead" if word_at(toks, k + 1) == "of" => Some(k + 2),
            _ => None,
        };
        if let Some(j) = from_at
            && from.is_none()
            && let Some((name, end)) = datasource_name_at(c, j)
        {
            from = Some(name);
            k = end;
            continue;
        }
        let to_at = match l {
            "to" | "onto" | "at" | "towards" | "toward" | "into" => Some(k + 1),
            "with" if replace => Some(k + 1),
            "for" if replace => Some(k + 1),
            _ => None,
        };
        if let Some(j) = to_at
            && to.is_none()
            && let Some((name, end)) = datasource_name_at(c, j)
        {
            to = Some(name);
            k = end;
            continue;
        }
        k += 1;
    }
    // "use B instead of A": the name before "instead" is the new one.
    if to.is_none()
        && let Some(k) = (0..toks.len()).find(|&k| word_at(toks, k) == "instead")
        && let Some((name, _)) = name_before(c, k, head + head_len, true)
        && Some(&name) != from.as_ref()
    {
        to = Some(name);
    }
    (from, to)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;
    use crate::clause::split;
    use crate::token::tokenize;

    fn with_clause<R>(s: &str, f: impl FnOnce(&Clause<'_>) -> R) -> R {
        let toks = tokenize(s);
        let clauses = split(s, &toks);
        f(&clauses[0])
    }

    #[test]
    fn projects() {
        for (text, want) in [
            ("Delete workbooks in the Sandbox project", Some("Sandbox")),
            ("Archive workbooks in Sales that nobody has opened", Some("Sales")),
            ("Move stale dashboards out of Marketing into the Archive project", Some("Marketing")),
            ("Archive Finance workbooks not accessed in 90 days", Some("Finance")),
            ("archive stale content in the finance project", Some("finance")),
            ("consolidate datasources in project 'Sales Ops'", Some("Sales Ops")),
            ("Archive Old Workbooks", None),
            ("Archive unused workbooks from Q2", None),
            ("List all users in the Finance group", None),
            ("Archive the Board Reports workbooks not accessed in 18 months", Some("Board Reports")),
            ("Archive content in Year-End Close that nobody opened", Some("Year-End Close")),
            ("audit permissions on PII content in HR", Some("HR")),
        ] {
            assert_eq!(with_clause(text, |c| source_project(c, true)).as_deref(), want, "{text}");
        }
        assert_eq!(
            with_clause("Move stale dashboards out of Marketing into the Archive project", destination_project)
                .as_deref(),
            Some("Archive")
        );
    }

    #[test]
    fn tags() {
        assert_eq!(
            with_clause("Audit who can access anything tagged confidential or sensitive in Finance", explicit_tags),
            ["confidential", "sensitive"]
        );
        assert_eq!(
            with_clause("review content tagged sensitive, restricted or confidential", explicit_tags),
            ["sensitive", "restricted", "confidential"]
        );
        assert_eq!(with_clause("audit workbooks with the tag 'PII'", explicit_tags), ["pii"]);
    }

    #[test]
    fn datasource_names() {
        let names =
            with_clause("Point every workbook on Sales Pipeline (Legacy) at Sales Pipeline Consolidated", |c| {
                migrate_names(c, 0, 1)
            });
        assert_eq!(names, (Some("Sales Pipeline (Legacy)".into()), Some("Sales Pipeline Consolidated".into())));
        let names = with_clause("replace Orders v1 with \"Orders v2\" everywhere", |c| migrate_names(c, 0, 1));
        assert_eq!(names, (Some("Orders v1".into()), Some("Orders v2".into())));
        let names = with_clause("migrate them to the new consolidated datasource", |c| migrate_names(c, 0, 1));
        assert_eq!(names, (None, None));
    }

    #[test]
    fn audiences() {
        assert_eq!(with_clause("notify project owners", audience), "project-owners");
        assert_eq!(with_clause("email the owners of each project", audience), "project-owners");
        assert_eq!(with_clause("tell the workbook owners", audience), "content-owners");
    }
}
