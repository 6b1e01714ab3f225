//! Grounding: a name as the user wrote it → the site's item(s). Case, accents, punctuation,
//! first-name-only, usernames, emails and small typos are tolerated; several candidates or
//! none become a question, never a guess.
//!
//! Names are compared folded by [`normalize`]: `unicode-normalization`'s NFKD with the
//! accents of Latin and Greek letters dropped ("Nguyễn" → "nguyen", "İlker" → "ilker",
//! "Ｑ３" → "q3"), plus a small table for the Latin letters Unicode does not decompose
//! (Ł → l, Đ/ð → d, ı → i, Ø → o, ß → ss, Æ → ae, Œ → oe, Þ → th). Marks on other scripts
//! are letters in their own right (Cyrillic й, Japanese ガ) and stay, recomposed (NFC). Not
//! `deunicode`: it transliterates every script ("北京" → "Bei Jing"), so a Chinese or
//! Cyrillic name would match a Latin one it only sounds like. Typos are counted with
//! `strsim`'s optimal-string-alignment distance (swapping two neighbours is one edit), and
//! [`closest`] is the one "did you mean" ranking for plans, questions and the CLI.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lowercase, accents and special Latin letters folded, punctuation dropped, whitespace
/// collapsed: "Łukasz Żółć" and "lukasz  zolc" both become "lukasz zolc".
pub fn normalize(s: &str) -> String {
    if s.is_ascii() {
        return fold_all(s.chars());
    }
    fold_all(s.nfkd()).nfc().collect()
}

/// [`normalize`] over decomposed characters.
fn fold_all(chars: impl Iterator<Item = char>) -> String {
    let mut out = String::new();
    let mut accent_folds = false;
    for c in chars {
        if is_combining_mark(c) {
            // A mark on a Latin or Greek letter is an accent; on another script it is part
            // of the letter. A mark with no letter before it goes.
            if !accent_folds && !out.is_empty() && !out.ends_with(' ') {
                out.push(c);
            }
            continue;
        }
        accent_folds =
            matches!(c, 'A'..='Z' | 'a'..='z' | '\u{c0}'..='\u{24f}' | '\u{370}'..='\u{3ff}' | '\u{1e00}'..='\u{1fff}');
        for c in c.to_lowercase() {
            if let Some(f) = fold(c) {
                out.push_str(f);
            } else if c.is_alphanumeric() {
                out.push(c);
            } else if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Lowercase letters with no Unicode decomposition, as a person types them on a plain keyboard.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'ł' => "l",
        'đ' | 'ð' => "d",
        'ı' => "i",
        'ø' => "o",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'þ' => "th",
        _ => return None,
    })
}

/// How far `name` is from `wanted` (both normalized) as a suggestion, nearest first: 0 when
/// one's words are all among the other's ("HR" / "HR Team") or they share a whole word of
/// three letters or more, 1 when they share a word stem of four or more ("financial" /
/// "finance"), otherwise the edit distance; then the edit distance, to order equals.
fn remoteness(wanted: &str, name: &str) -> (usize, usize) {
    let shared = |x: &str, y: &str| x.chars().zip(y.chars()).take_while(|(a, b)| a == b).count();
    let within = |a: &str, b: &str| a.split(' ').all(|x| b.split(' ').any(|y| x == y));
    let by_word = if within(name, wanted) || within(wanted, name) {
        Some(0)
    } else {
        name.split(' ')
            .flat_map(|x| wanted.split(' ').map(move |y| (x, y)))
            .filter_map(|(x, y)| match shared(x, y) {
                p if p > 2 && x == y => Some(0),
                p if p >= 4 => Some(1),
                _ => None,
            })
            .min()
    };
    let d = strsim::osa_distance(name, wanted);
    (by_word.map_or(d, |w| w.min(d)), d)
}

/// "Did you mean": up to `n` of `names` near enough to `wanted` to be what was meant, nearest
/// first (then alphabetically, each name once). Near enough is a shared word or stem (see
/// above) or an edit distance within a third of `wanted`'s length (at least 2), so a name
/// that matches nothing gets no suggestions rather than arbitrary ones.
pub fn closest<'n>(wanted: &str, names: impl IntoIterator<Item = &'n str>, n: usize) -> Vec<String> {
    let w = normalize(wanted);
    let limit = (w.chars().count() / 3).max(2);
    let mut scored: Vec<((usize, usize), &str)> =
        names.into_iter().map(|x| (remoteness(&w, &normalize(x)), x)).filter(|&((r, _), _)| r <= limit).collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, x)| x.to_string()).collect()
}

/// How a candidate matched, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    Exact,
    Normalized,
    /// A word-prefix match ("John" → "John Smith", "fin" → "Finance").
    Partial,
    /// Within a small edit distance.
    Typo,
}

/// A grounding result.
#[derive(Debug, Clone, PartialEq)]
pub enum Grounded<T> {
    One(T, Quality),
    Many(Vec<T>),
    None,
}

/// Matches `wanted` against items, each known by several names (name, full name, email...).
pub fn ground<T: Clone>(wanted: &str, items: &[T], names: impl Fn(&T) -> Vec<String>) -> Grounded<T> {
    let w = wanted.trim();
    let wn = normalize(w);
    if wn.is_empty() {
        return Grounded::None;
    }
    let wlen = wn.chars().count();
    let mut best: Option<Quality> = None;
    let mut hits: Vec<T> = vec![];
    for it in items {
        let mut q: Option<Quality> = None;
        for n in names(it) {
            if n.is_empty() {
                continue;
            }
            let nn = normalize(&n);
            let this = if n == w {
                Some(Quality::Exact)
            } else if nn == wn || nn.split('@').next() == Some(wn.as_str()) {
                Some(Quality::Normalized)
            } else if nn.split(' ').any(|word| word == wn) || (wlen >= 3 && nn.starts_with(&wn)) {
                Some(Quality::Partial)
            } else {
                let limit = if wlen >= 8 {
                    2
                } else if wlen >= 4 {
                    1
                } else {
                    0
                };
                (limit > 0 && strsim::osa_distance(&nn, &wn) <= limit).then_some(Quality::Typo)
            };
            if let Some(t) = this {
                q = Some(q.map_or(t, |x| x.min(t)));
            }
        }
        let Some(q) = q else { continue };
        match best {
            Some(b) if q > b => {}
            Some(b) if q == b => hits.push(it.clone()),
            _ => {
                best = Some(q);
                hits = vec![it.clone()];
            }
        }
    }
    match (hits.len(), best) {
        (0, _) | (_, None) => Grounded::None,
        (1, Some(q)) => Grounded::One(hits.remove(0), q),
        _ => Grounded::Many(hits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> Vec<(&'static str, &'static str, &'static str)> {
        vec![
            ("jsmith", "John Smith", "jsmith@example.com"),
            ("jdoe", "John Doe", "jdoe@example.com"),
            ("mgarcia", "María García", "mgarcia@example.com"),
            ("slee", "Sarah Lee", "slee@example.com"),
        ]
    }

    fn names(p: &(&str, &str, &str)) -> Vec<String> {
        vec![p.0.into(), p.1.into(), p.2.into()]
    }

    #[test]
    fn first_names_are_ambiguous_full_names_are_not() {
        assert!(matches!(ground("John", &people(), names), Grounded::Many(v) if v.len() == 2));
        assert!(matches!(ground("John Smith", &people(), names), Grounded::One(p, _) if p.0 == "jsmith"));
        assert!(matches!(ground("jdoe", &people(), names), Grounded::One(p, Quality::Exact) if p.0 == "jdoe"));
        assert!(matches!(ground("slee@example.com", &people(), names), Grounded::One(p, _) if p.0 == "slee"));
    }

    #[test]
    fn accents_case_and_typos() {
        assert!(
            matches!(ground("maria garcia", &people(), names), Grounded::One(p, Quality::Normalized) if p.0 == "mgarcia")
        );
        assert!(matches!(ground("Sarah Leee", &people(), names), Grounded::One(p, Quality::Typo) if p.0 == "slee"));
        assert_eq!(ground("Nobody Here", &people(), names), Grounded::None);
    }

    #[test]
    fn names_fold_as_people_type_them() {
        for (written, typed) in [
            ("Łukasz Żółć", "Lukasz Zolc"),
            ("Işıl Güneş", "Isil Gunes"),
            ("İlker", "Ilker"),
            ("Jürgen Groß", "Jurgen Gross"),
            ("Søren Ærø", "Soren Aero"),
            ("Nguyễn Thị Minh Khai", "Nguyen Thi Minh Khai"),
            ("Đặng Þór Œuvre", "Dang Thor Oeuvre"),
            ("María García", "maria  garcia"),
        ] {
            assert_eq!(normalize(written), normalize(typed), "{written} / {typed}");
            assert!(normalize(written).is_ascii(), "{written} → {}", normalize(written));
        }
        assert_eq!(normalize("  Łukasz   ŻÓŁĆ! "), "lukasz zolc");
        // Decomposed input (e + combining acute) and compatibility forms fold the same way.
        assert_eq!(normalize("Jose\u{301} Ｑ３"), "jose q3");
        // Other scripts stay as written (lowercased, composed), never transliterated.
        assert_eq!(normalize("Дмитрий 北京"), "дмитрий 北京");
        assert_eq!(normalize("ガブリエル 김민준"), "ガブリエル 김민준");
        assert_eq!(normalize("Ελένη"), "ελενη");
        let staff = [("lzolc", "Łukasz Żółć"), ("igunes", "Işıl Güneş"), ("sohm", "Søren Ærø")];
        let names = |p: &(&str, &str)| vec![p.0.to_string(), p.1.to_string()];
        for (typed, user) in [("lukasz zolc", "lzolc"), ("Isil Gunes", "igunes"), ("Soren Aero", "sohm")] {
            assert!(
                matches!(ground(typed, &staff, names), Grounded::One(p, Quality::Normalized) if p.0 == user),
                "{typed}"
            );
        }
        assert!(matches!(ground("Lukas Zolc", &staff, names), Grounded::One(p, Quality::Typo) if p.0 == "lzolc"));
    }

    #[test]
    fn one_did_you_mean_ranking() {
        let projects = ["Finance", "Finance Archive", "Marketing", "Sales", "HR", "Operations"];
        // A shared stem ranks first; a name sharing nothing is not suggested at all.
        assert_eq!(closest("Financial Planning", projects, 3), ["Finance Archive", "Finance"]);
        assert_eq!(closest("HR Team", projects, 3), ["HR"]);
        // Equally related names: the one fewer edits away first.
        let sources = ["Order Backlog Data", "Partner Sales Mart", "Sales Orders", "Sales Orders (copy)"];
        assert_eq!(closest("Sales Order", sources, 3), ["Sales Orders", "Sales Orders (copy)", "Partner Sales Mart"]);
        assert_eq!(closest("Markting", projects, 3), ["Marketing"]);
        assert_eq!(closest("Slaes", projects, 3), ["Sales"], "a swap is one edit");
        assert!(closest("Nowhere", projects, 3).is_empty());
        assert_eq!(closest("finance", ["Finance", "Finance", "finance"], 5), ["Finance", "finance"]);
        assert_eq!(closest("Lukasz", ["Lukas Gray", "Łukasz Żółć", "Tom Baker"], 5), ["Łukasz Żółć", "Lukas Gray"]);
        let intents = ["archive-stale-content", "audit-permissions", "offboard-user", "update-permissions"];
        assert_eq!(closest("archive-content", intents, 3), ["archive-stale-content"]);
        assert_eq!(closest("offbord-user", intents, 3), ["offboard-user"]);
        assert_eq!(closest("audit-permission", intents, 1), ["audit-permissions"]);
    }
}
