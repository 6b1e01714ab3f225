//! Tokenizer: splits a request into words, quoted names and punctuation.
//!
//! Every token keeps its byte span in the request so that names can be cut out of the
//! original text exactly as the user wrote them ("Sales Pipeline (Legacy)" keeps its
//! parentheses and spacing). Matching is done on a lowercase form and on a crude *lemma*
//! (see [`lemma`]) so that "leaves", "leaving" and "leave" compare equal without a
//! dictionary.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Letters, digits and the joiners that may sit inside a word (`john.doe@x.com`, `90+`).
    Word,
    /// The inside of a pair of quotes; always a name, never a keyword.
    Quoted,
    /// One punctuation character; a line break is `Punct('\n')`.
    Punct(char),
}

/// One token of a request.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// As written, without a possessive `'s` and without quotes.
    pub(crate) text: String,
    /// `text` in lowercase, with typographic apostrophes made plain.
    pub(crate) lower: String,
    pub(crate) kind: Kind,
    /// The word was written with a possessive `'s` ("John's").
    pub(crate) possessive: bool,
    /// Byte span of `text` in the request.
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Byte span including quotes and the possessive suffix.
    pub(crate) outer_start: usize,
    pub(crate) outer_end: usize,
}

impl Token {
    /// A word (not a quoted name, not punctuation).
    pub(crate) fn is_word(&self) -> bool {
        self.kind == Kind::Word
    }

    /// Punctuation `c`.
    pub(crate) fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }

    /// Any punctuation.
    pub(crate) fn is_any_punct(&self) -> bool {
        matches!(self.kind, Kind::Punct(_))
    }

    /// The lowercase form equals `w` exactly.
    pub(crate) fn eq(&self, w: &str) -> bool {
        self.is_word() && self.lower == w
    }

    /// The lowercase form is one of `ws`.
    pub(crate) fn eq_any(&self, ws: &[&str]) -> bool {
        self.is_word() && ws.contains(&self.lower.as_str())
    }

    /// Same lemma as `w` ("leaving" is "leave").
    pub(crate) fn is(&self, w: &str) -> bool {
        self.is_word() && (self.lower == w || lemma(&self.lower) == lemma(w))
    }

    /// Same lemma as one of `ws`.
    pub(crate) fn is_any(&self, ws: &[&str]) -> bool {
        ws.iter().any(|w| self.is(w))
    }

    /// The lemma of this word.
    pub(crate) fn lemma(&self) -> &str {
        lemma(&self.lower)
    }

    /// Written with a capital first letter (or a digit-bearing identifier like `Q2`).
    pub(crate) fn is_capitalized(&self) -> bool {
        self.is_word() && self.text.chars().next().is_some_and(char::is_uppercase)
    }

    /// All digits (optionally followed by `+`).
    pub(crate) fn is_number(&self) -> bool {
        self.is_word() && self.number().is_some()
    }

    /// The value of an all-digit word (`90`, `90+`).
    pub(crate) fn number(&self) -> Option<u32> {
        if !self.is_word() {
            return None;
        }
        let digits = self.lower.strip_suffix('+').unwrap_or(&self.lower);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// Looks like an account name rather than an English word: an email, `john.doe`, `j_doe`,
    /// or a mix of letters and digits.
    pub(crate) fn is_identifier(&self) -> bool {
        self.is_word()
            && self.lower.chars().any(char::is_alphabetic)
            && (self.lower.contains('@')
                || self.lower.contains('_')
                || (self.lower.contains('.') && !self.lower.ends_with('.'))
                || self.lower.chars().any(|c| c.is_ascii_digit()))
    }
}

/// The lowercase word at `toks[k]`; `""` past the end or for punctuation and quoted names.
pub(crate) fn word_at<'t>(toks: &[&'t Token], k: usize) -> &'t str {
    toks.get(k).filter(|t| t.is_word()).map(|t| t.lower.as_str()).unwrap_or("")
}

/// A crude, dictionary-free stem used only to compare words with each other: both sides go
/// through the same function, so it only has to be consistent, not linguistically right.
/// It always returns a prefix of its input, so it never allocates.
pub(crate) fn lemma(w: &str) -> &str {
    let mut s = w;
    let n = s.len();
    let mut stripped_affix = false;
    if n > 4 && (s.ends_with("ies") || s.ends_with("ied")) {
        s = &s[..n - 3];
    } else if n > 5 && s.ends_with("ing") {
        s = &s[..n - 3];
        stripped_affix = true;
    } else if n > 4 && s.ends_with("ed") {
        s = &s[..n - 2];
        stripped_affix = true;
    } else if n > 4 && s.ends_with("es") && matches!(s.as_bytes()[n - 3], b's' | b'x' | b'z' | b'h') {
        s = &s[..n - 2];
    } else if n > 3 && s.ends_with('s') && !s.ends_with("ss") && !s.ends_with("us") {
        s = &s[..n - 1];
    }
    let m = s.len();
    if m > 3 && (s.ends_with('e') || s.ends_with('y')) {
        s = &s[..m - 1];
    }
    let b = s.as_bytes();
    let m = b.len();
    if stripped_affix && m > 3 && b[m - 1] == b[m - 2] && !matches!(b[m - 1], b'l' | b's' | b'z' | b'e' | b'o') {
        s = &s[..m - 1];
    }
    s
}

/// `strsim`'s optimal-string-alignment distance (a swap of two neighbours is one edit),
/// capped: anything over `cap` is `cap + 1`. Most pairs the fuzzy verb and noun checks try
/// are far apart, so two cheap lower bounds answer them without computing the distance: the
/// difference in length, and for ASCII words the letters one has and the other lacks (an
/// edit changes that count by at most one; a swap not at all).
pub(crate) fn edit_distance(a: &str, b: &str, cap: usize) -> usize {
    if a.chars().count().abs_diff(b.chars().count()) > cap || letters_apart(a, b) > cap {
        return cap + 1;
    }
    strsim::osa_distance(a, b).min(cap + 1)
}

/// For ASCII words, the larger of "letters of `a` not in `b`" and "letters of `b` not in
/// `a`", counted with repeats; 0 otherwise.
fn letters_apart(a: &str, b: &str) -> usize {
    if !a.is_ascii() || !b.is_ascii() {
        return 0;
    }
    let mut count = [0i32; 128];
    a.bytes().for_each(|x| count[usize::from(x)] += 1);
    b.bytes().for_each(|x| count[usize::from(x)] -= 1);
    let extra = count.iter().filter(|&&c| c > 0).sum::<i32>();
    let missing = -count.iter().filter(|&&c| c < 0).sum::<i32>();
    extra.max(missing).unsigned_abs() as usize
}

const UNIT_SUFFIXES: &[&str] = &[
    "d", "day", "days", "w", "wk", "wks", "week", "weeks", "mo", "mos", "mth", "mths", "month", "months", "y", "yr",
    "yrs", "year", "years", "q", "qtr", "qtrs",
];

const NUMBER_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
];

/// Words whose `'s` is a contraction ("it's" = "it is"), not a possessive.
const CONTRACTIONS: &[&str] = &[
    "it's",
    "that's",
    "what's",
    "who's",
    "let's",
    "he's",
    "she's",
    "there's",
    "here's",
    "where's",
    "how's",
    "everyone's",
    "nobody's",
    "someone's",
    "one's",
];

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '`' | '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}')
}

fn closing_for(c: char) -> &'static [char] {
    match c {
        '"' => &['"', '\u{201d}'],
        '\u{201c}' => &['\u{201d}', '"'],
        '`' => &['`'],
        _ => &['\'', '\u{2019}'],
    }
}

/// Splits `src` into tokens.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let n = chars.len();
    let byte_at = |i: usize| if i < n { chars[i].0 } else { src.len() };
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let ch = chars[i].1;
        if ch.is_whitespace() {
            if ch == '\n' {
                out.push(punct(src, chars[i].0, ch));
            }
            i += 1;
            continue;
        }
        if is_quote(ch) {
            let prev_ok = i == 0 || {
                let p = chars[i - 1].1;
                p.is_whitespace() || matches!(p, '(' | '[' | ':' | ',' | '-')
            };
            if prev_ok && let Some(close) = find_close(&chars, i) {
                let inner_start = byte_at(i + 1);
                let inner_end = chars[close].0;
                let raw = &src[inner_start..inner_end];
                let trimmed_start = inner_start + (raw.len() - raw.trim_start().len());
                let trimmed = raw.trim();
                let trimmed = trimmed.trim_end_matches(['.', ',', ';', '!', '?']);
                if !trimmed.is_empty() {
                    out.push(Token {
                        text: trimmed.to_string(),
                        lower: trimmed.to_lowercase().replace('\u{2019}', "'"),
                        kind: Kind::Quoted,
                        possessive: false,
                        start: trimmed_start,
                        end: trimmed_start + trimmed.len(),
                        outer_start: chars[i].0,
                        outer_end: byte_at(close + 1),
                    });
                }
                i = close + 1;
                continue;
            }
            if matches!(ch, '\'' | '\u{2019}') {
                // A stray apostrophe (`Jones'`): nothing to keep.
                i += 1;
                continue;
            }
            out.push(punct(src, chars[i].0, ch));
            i += 1;
            continue;
        }
        if ch.is_alphanumeric() || ch == '_' || ch == '#' {
            let s = i;
            i += 1;
            while i < n {
                let c = chars[i].1;
                let next_alnum = i + 1 < n && chars[i + 1].1.is_alphanumeric();
                let prev_digit = chars[i - 1].1.is_ascii_digit();
                let next_digit = i + 1 < n && chars[i + 1].1.is_ascii_digit();
                let inside = c.is_alphanumeric()
                    || c == '_'
                    || c == '@'
                    || (matches!(c, '.' | '-' | '\'' | '\u{2019}' | '&') && next_alnum)
                    || (matches!(c, ':' | '/') && prev_digit && next_digit);
                if inside {
                    i += 1;
                } else if c == '+' && prev_digit {
                    i += 1;
                    break;
                } else {
                    break;
                }
            }
            push_word(src, byte_at(s), byte_at(i), &mut out);
            continue;
        }
        out.push(punct(src, chars[i].0, ch));
        i += 1;
    }
    out
}

fn find_close(chars: &[(usize, char)], open: usize) -> Option<usize> {
    let closers = closing_for(chars[open].1);
    let single = matches!(chars[open].1, '\'' | '\u{2018}' | '\u{2019}');
    (open + 1..chars.len()).find(|&j| {
        let c = chars[j].1;
        if !closers.contains(&c) {
            return false;
        }
        if !single {
            return true;
        }
        // A single quote closes only when it is not an apostrophe inside a word.
        let next = chars.get(j + 1).map(|x| x.1);
        !next.is_some_and(char::is_alphanumeric) && !chars[j - 1].1.is_whitespace()
    })
}

fn punct(src: &str, at: usize, c: char) -> Token {
    let end = at + c.len_utf8();
    Token {
        text: src[at..end].to_string(),
        lower: src[at..end].to_string(),
        kind: Kind::Punct(c),
        possessive: false,
        start: at,
        end,
        outer_start: at,
        outer_end: end,
    }
}

fn word_token(src: &str, start: usize, end: usize, outer_end: usize, possessive: bool) -> Token {
    let text = &src[start..end];
    Token {
        text: text.to_string(),
        lower: text.to_lowercase().replace('\u{2019}', "'"),
        kind: Kind::Word,
        possessive,
        start,
        end,
        outer_start: start,
        outer_end,
    }
}

fn is_iso_date(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Pushes one word, splitting off a possessive, a hyphenated number/unit ("6-month") and a
/// glued unit ("90d").
fn push_word(src: &str, start: usize, end: usize, out: &mut Vec<Token>) {
    let raw = &src[start..end];
    let lower = raw.to_lowercase().replace('\u{2019}', "'");
    // Possessive.
    if (lower.ends_with("'s")) && !CONTRACTIONS.contains(&lower.as_str()) && raw.len() > 2 {
        let cut = raw.rfind(['\'', '\u{2019}']).unwrap_or(raw.len());
        out.push(word_token(src, start, start + cut, end, true));
        return;
    }
    if raw.contains('-') && !is_iso_date(raw) {
        let parts: Vec<&str> = raw.split('-').collect();
        let numeric = |p: &str| {
            let l = p.to_lowercase();
            p.bytes().all(|b| b.is_ascii_digit())
                || NUMBER_WORDS.contains(&l.as_str())
                || UNIT_SUFFIXES.contains(&l.as_str())
        };
        if parts.iter().all(|p| !p.is_empty()) && parts.iter().any(|p| numeric(p)) {
            let mut at = start;
            for p in parts {
                push_word(src, at, at + p.len(), out);
                at += p.len() + 1;
            }
            return;
        }
    }
    // "90d", "6mo", "2yrs".
    let digits = raw.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < raw.len() && UNIT_SUFFIXES.contains(&&lower[digits..]) {
        out.push(word_token(src, start, start + digits, start + digits, false));
        out.push(word_token(src, start + digits, end, end, false));
        return;
    }
    out.push(word_token(src, start, end, end, false));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn words_quotes_possessives() {
        let t = tokenize("Migrate John's content to 'Sales Pipeline (Legacy)', please.");
        assert_eq!(t[1].text, "John");
        assert!(t[1].possessive);
        assert_eq!(t[4].kind, Kind::Quoted);
        assert_eq!(t[4].text, "Sales Pipeline (Legacy)");
        assert!(t.last().is_some_and(|t| t.is_punct('.')));
    }

    #[test]
    fn emails_numbers_and_units() {
        assert_eq!(texts("offboard john.doe@acme.com now"), ["offboard", "john.doe@acme.com", "now"]);
        assert_eq!(texts("90+ days"), ["90+", "days"]);
        assert_eq!(texts("a 6-month window, 90d"), ["a", "6", "month", "window", ",", "90", "d"]);
        assert_eq!(texts("2026-04-01 read-only"), ["2026-04-01", "read-only"]);
        assert_eq!(texts("it's fine"), ["it's", "fine"]);
    }

    #[test]
    fn lemmas_are_consistent() {
        for (a, b) in [("leaves", "leave"), ("leaving", "leave"), ("archived", "archive"), ("notifies", "notify")] {
            assert_eq!(lemma(a), lemma(b), "{a} vs {b}");
        }
        assert_eq!(lemma("quitting"), lemma("quit"));
        assert_ne!(lemma("user"), lemma("use"));
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("archve", "archive", 2), 1);
        assert_eq!(edit_distance("ofboard", "offboard", 2), 1);
        assert_eq!(edit_distance("notice", "notify", 1), 2);
        assert_eq!(edit_distance("teh", "the", 1), 1);
        assert_eq!(edit_distance("permissions", "perms", 2), 3);
        // Letters, not bytes: "é" for "e" is one edit.
        assert_eq!(edit_distance("archivé", "archive", 1), 1);
        // The letter-count bound never cuts a pair within the cap.
        for (a, b) in [("archive", "achrive"), ("notify", "notfiy"), ("revoke", "revkoe"), ("abc", "cab")] {
            assert_eq!(edit_distance(a, b, 2), strsim::osa_distance(a, b).min(3), "{a} {b}");
        }
    }
}
