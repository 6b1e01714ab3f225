//! Grounding: a name as the user wrote it → the site's item(s). Case, accents, punctuation,
//! first-name-only, usernames, emails and small typos are tolerated; several candidates or
//! none become a question, never a guess.

/// Lowercase, accents folded, punctuation dropped, whitespace collapsed.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = fold(c);
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_string()
}

fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'a',
        'ç' | 'Ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
        'ñ' | 'Ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        other => other,
    }
}

/// The `n` names closest to `wanted` (edit distance after normalizing), closest first — for
/// "did you mean" questions.
pub fn closest<'n>(wanted: &str, names: impl Iterator<Item = &'n str>, n: usize) -> Vec<String> {
    let w = normalize(wanted);
    let mut scored: Vec<(usize, &str)> = names.map(|x| (distance(&normalize(x), &w), x)).collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, x)| x.to_string()).collect()
}

/// Levenshtein distance (small strings).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + usize::from(ca != cb));
        }
        prev = cur;
    }
    prev[b.len()]
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
            } else if nn.split(' ').any(|word| word == wn) || (wn.len() >= 3 && nn.starts_with(&wn)) {
                Some(Quality::Partial)
            } else {
                let limit = if wn.len() >= 8 {
                    2
                } else if wn.len() >= 4 {
                    1
                } else {
                    0
                };
                (limit > 0 && distance(&nn, &wn) <= limit).then_some(Quality::Typo)
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
}
