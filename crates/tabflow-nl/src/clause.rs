//! Splitting a request into clauses, one action each.
//!
//! A clause ends at a sentence mark (`. ; : ! ?`, a line break), at a dash between spaces
//! ("Clean up Finance - archive …"), at "then", and at "and" / "," / "plus" / "also" when a
//! verb follows ("archive old workbooks and consolidate datasources"); "workbooks and
//! datasources" or "sensitive, restricted or confidential" do not split. Politeness and
//! sequencing words at either end ("please", "can you", "after that", "thanks") are dropped.
//! A clause that is only a verb borrows the object of the next one: "find and archive stale
//! workbooks" is "find stale workbooks" + "archive stale workbooks".

use crate::lexicon::verb_at;
use crate::token::{Kind, Token};

/// One clause of a request.
#[derive(Debug, Clone)]
pub(crate) struct Clause<'a> {
    /// The whole request, to cut names out of.
    pub(crate) src: &'a str,
    /// Tokens without leading and trailing filler.
    pub(crate) toks: Vec<&'a Token>,
    /// The clause as written (for `not_understood` and `query`).
    pub(crate) text: String,
    /// It ended with a question mark.
    pub(crate) question: bool,
    /// It began with a request for help ("can you", "could you"), so a question mark is
    /// politeness, not a question about the site.
    pub(crate) polite: bool,
}

const LEADING_FILLERS: &[&[&str]] = &[
    &["and", "then"],
    &["and", "also"],
    &["and"],
    &["then"],
    &["also"],
    &["plus"],
    &["please"],
    &["pls"],
    &["plz"],
    &["kindly"],
    &["finally"],
    &["lastly"],
    &["next"],
    &["first"],
    &["firstly"],
    &["second"],
    &["secondly"],
    &["third"],
    &["thirdly"],
    &["afterwards"],
    &["afterward"],
    &["additionally"],
    &["so"],
    &["now"],
    &["ok"],
    &["okay"],
    &["hey"],
    &["hi"],
    &["hello"],
    &["just"],
    &["oh"],
    &["but"],
    &["or"],
    &["after", "that"],
    &["after", "this"],
    &["after", "which"],
    &["once", "done"],
    &["when", "done"],
    &["once", "that's", "done"],
    &["once", "that", "is", "done"],
    &["when", "that's", "done"],
    &["in", "addition"],
    &["as", "well", "as"],
    &["as", "well"],
    &["on", "top", "of", "that"],
    &["if", "so"],
    &["if", "yes"],
    &["if", "there", "are", "any"],
    &["if", "any"],
    &["can", "you"],
    &["could", "you"],
    &["would", "you"],
    &["will", "you"],
    &["can", "we"],
    &["could", "we"],
    &["can", "i"],
    &["i", "want", "you", "to"],
    &["i", "want", "to"],
    &["i", "wanna"],
    &["i'd", "like", "you", "to"],
    &["i'd", "like", "to"],
    &["i", "would", "like", "you", "to"],
    &["i", "would", "like", "to"],
    &["we'd", "like", "to"],
    &["we", "would", "like", "to"],
    &["i", "need", "you", "to"],
    &["i", "need", "to"],
    &["we", "need", "to"],
    &["we", "want", "to"],
    &["we", "have", "to"],
    &["we", "should"],
    &["we", "must"],
    &["you", "should"],
    &["you", "need", "to"],
    &["let's"],
    &["lets"],
    &["let", "us"],
    &["go", "ahead", "and"],
    &["help", "me"],
    &["make", "sure", "to"],
    &["make", "sure", "you"],
    &["make", "sure", "that"],
    &["make", "sure"],
    &["ensure", "that"],
    &["ensure"],
    &["be", "sure", "to"],
    &["don't", "forget", "to"],
    &["do", "not", "forget", "to"],
    &["remember", "to"],
    &["need", "to"],
    &["want", "to"],
    &["try", "to"],
    &["it's", "time", "to"],
    &["time", "to"],
    &["i", "want"],
    &["i'd", "like"],
    &["i", "need"],
    &["we", "need"],
];

const TRAILING_FILLERS: &[&[&str]] = &[
    &["please"],
    &["thanks"],
    &["thank", "you"],
    &["asap"],
    &["for", "me"],
    &["right", "away"],
    &["when", "you", "can"],
    &["if", "possible"],
    &["as", "well"],
    &["too"],
];

fn starts_with(toks: &[&Token], at: usize, pattern: &[&str]) -> bool {
    pattern.iter().enumerate().all(|(k, w)| toks.get(at + k).is_some_and(|t| t.eq(w)))
}

fn is_sentence_mark(t: &Token) -> bool {
    matches!(t.kind, Kind::Punct('.' | ';' | ':' | '!' | '?' | '\n' | '\u{2026}'))
}

fn is_dash(t: &Token) -> bool {
    matches!(t.kind, Kind::Punct('-' | '\u{2013}' | '\u{2014}'))
}

/// Splits `tokens` (of `src`) into clauses.
pub(crate) fn split<'a>(src: &'a str, tokens: &'a [Token]) -> Vec<Clause<'a>> {
    let refs: Vec<&Token> = tokens.iter().collect();
    let mut raw: Vec<(Vec<&Token>, bool)> = Vec::new();
    let mut cur: Vec<&Token> = Vec::new();
    let mut i = 0;
    while let Some(&t) = refs.get(i) {
        if is_sentence_mark(t) {
            raw.push((std::mem::take(&mut cur), t.is_punct('?')));
            i += 1;
            continue;
        }
        // A dash separates actions ("Clean up Finance - archive …") but may sit inside a
        // name ("Finance - Archive"): split only before a verb.
        if is_dash(t) {
            let mut j = i + 1;
            while refs.get(j).is_some_and(|x| x.eq_any(&["and", "then", "also", "please"])) {
                j += 1;
            }
            let inside_name = i.checked_sub(1).and_then(|p| refs.get(p)).is_some_and(|x| x.is_capitalized())
                && refs.get(i + 1).is_some_and(|x| x.is_capitalized())
                && j == i + 1;
            let verb_follows = verb_at(refs.get(j..).unwrap_or_default(), 0).is_some();
            if (verb_follows && !inside_name) || refs.get(j).is_none_or(|x| x.is_any_punct()) {
                raw.push((std::mem::take(&mut cur), false));
                i = j;
                continue;
            }
        }
        if t.eq("then") {
            raw.push((std::mem::take(&mut cur), false));
            i += 1;
            continue;
        }
        if t.eq_any(&["and", "plus", "also", "&"]) || t.is_punct(',') {
            let mut j = i + 1;
            while refs.get(j).is_some_and(|x| {
                x.eq_any(&["and", "then", "also", "please", "finally", "lastly", "afterwards", "plus"])
                    || x.is_punct(',')
            }) {
                j += 1;
            }
            // Only an imperative splits: "restricted" or "archived" after a comma describe.
            let imperative = refs.get(j).is_some_and(|x| !x.lower.ends_with("ed") && !x.lower.ends_with("ing"));
            if refs.get(j).is_some_and(|x| x.eq("then")) || (imperative && verb_at(&refs, j).is_some()) {
                raw.push((std::mem::take(&mut cur), false));
                i = j;
                continue;
            }
        }
        cur.push(t);
        i += 1;
    }
    raw.push((cur, false));
    let mut clauses: Vec<Clause<'a>> =
        raw.into_iter().filter_map(|(toks, question)| strip(src, toks, question)).collect();
    borrow_objects(&mut clauses);
    clauses
}

/// Drops fillers at both ends; `None` when nothing is left.
fn strip<'a>(src: &'a str, toks: Vec<&'a Token>, question: bool) -> Option<Clause<'a>> {
    let mut start = 0;
    let mut end = toks.len();
    let mut polite = false;
    loop {
        while start < end && toks.get(start).is_some_and(|t| t.is_any_punct() && !t.is_punct('(')) {
            start += 1;
        }
        let Some(p) = LEADING_FILLERS.iter().find(|p| start + p.len() <= end && starts_with(&toks, start, p)) else {
            break;
        };
        polite |= matches!(p.first(), Some(&("can" | "could" | "would" | "will")));
        start += p.len();
    }
    loop {
        while end > start && toks.get(end - 1).is_some_and(|t| t.is_any_punct() && !t.is_punct(')')) {
            end -= 1;
        }
        let Some(p) = TRAILING_FILLERS.iter().find(|p| end >= start + p.len() && starts_with(&toks, end - p.len(), p))
        else {
            break;
        };
        end -= p.len();
    }
    let toks: Vec<&Token> = toks.get(start..end)?.to_vec();
    let (first, last) = (toks.first()?, toks.last()?);
    // Token spans lie on character boundaries of `src` (see `token::tokenize`).
    let text = src.get(first.outer_start..last.outer_end)?.to_string();
    Some(Clause { src, toks, text, question, polite })
}

fn borrow_objects(clauses: &mut [Clause<'_>]) {
    for i in 1..clauses.len() {
        let Some([.., this, next]) = clauses.get_mut(..=i) else { continue };
        let Some((_, n)) = verb_at(&this.toks, 0) else { continue };
        if n != this.toks.len() {
            continue;
        }
        let Some((_, m)) = verb_at(&next.toks, 0) else { continue };
        this.toks.extend(next.toks.get(m..).unwrap_or_default().iter().copied());
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;
    use crate::token::tokenize;

    fn texts(s: &str) -> Vec<String> {
        let toks = tokenize(s);
        split(s, &toks).into_iter().map(|c| c.text).collect()
    }

    #[test]
    fn splits_on_verbs_not_on_lists() {
        assert_eq!(
            texts("Clean up the Finance project - archive old workbooks and consolidate datasources"),
            ["Clean up the Finance project", "archive old workbooks", "consolidate datasources"]
        );
        assert_eq!(
            texts(
                "Archive all unused workbooks from Q2, update permissions for remaining content, and notify project owners"
            ),
            [
                "Archive all unused workbooks from Q2",
                "update permissions for remaining content",
                "notify project owners"
            ]
        );
        assert_eq!(
            texts("Hand her dashboards and data sources to the Marketing project leader."),
            ["Hand her dashboards and data sources to the Marketing project leader"]
        );
        assert_eq!(
            texts("audit anything tagged sensitive, restricted or confidential"),
            ["audit anything tagged sensitive, restricted or confidential"]
        );
        assert_eq!(
            texts("Please archive stale workbooks, then tell the owners. Thanks!"),
            ["archive stale workbooks", "tell the owners"]
        );
        assert_eq!(texts("Can you find and archive old dashboards?"), ["find", "archive old dashboards"]);
    }

    #[test]
    fn verb_only_clause_borrows_the_object() {
        let s = "find and archive old dashboards";
        let toks = tokenize(s);
        let clauses = split(s, &toks);
        let words: Vec<&str> = clauses[0].toks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, ["find", "old", "dashboards"]);
    }
}
