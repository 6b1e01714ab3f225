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
    /// Stands for a position past either end of a token list ([`tok`]): no word, no name,
    /// no punctuation, so every check on it is false.
    Absent,
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

/// What [`tok`] returns past the end: [`Kind::Absent`], empty, and at no position.
static ABSENT: Token = Token {
    text: String::new(),
    lower: String::new(),
    kind: Kind::Absent,
    possessive: false,
    start: 0,
    end: 0,
    outer_start: 0,
    outer_end: 0,
};

/// The token at `toks[k]`, or an [`Kind::Absent`] one past the end: the scanners look
/// around a position ("the word before", "up to four words after") and a look past either
/// end reads as nothing instead of panicking.
/// A position before the start is written `k.wrapping_sub(1)`, which wraps past the end.
pub(crate) fn tok<'t>(toks: &[&'t Token], k: usize) -> &'t Token {
    toks.get(k).copied().unwrap_or(&ABSENT)
}

/// The lowercase word at `toks[k]`; `""` past the end or for punctuation and quoted names.
pub(crate) fn word_at<'t>(toks: &[&'t Token], k: usize) -> &'t str {
    toks.get(k).filter(|t| t.is_word()).map(|t| t.lower.as_str()).unwrap_or("")
}

/// A crude, dictionary-free stem used only to compare words with each other: both sides go
/// through the same function, so it only has to be consistent, not linguistically right.
/// It always returns a prefix of its input, so it never allocates.
pub(crate) fn lemma(w: &str) -> &str {
    // Only ASCII suffixes are stripped (`strip_suffix`), so every cut lands on a character
    // boundary whatever the word holds; byte lengths only gate how short a stem may get.
    let mut s = w;
    let n = s.len();
    let mut stripped_affix = false;
    if n > 4
        && let Some(stem) = s.strip_suffix("ies").or_else(|| s.strip_suffix("ied"))
    {
        s = stem;
    } else if n > 5
        && let Some(stem) = s.strip_suffix("ing")
    {
        s = stem;
        stripped_affix = true;
    } else if n > 4
        && let Some(stem) = s.strip_suffix("ed")
    {
        s = stem;
        stripped_affix = true;
    } else if n > 4
        && let Some(stem) = s.strip_suffix("es")
        && stem.ends_with(['s', 'x', 'z', 'h'])
    {
        s = stem;
    } else if n > 3
        && !s.ends_with("ss")
        && !s.ends_with("us")
        && let Some(stem) = s.strip_suffix('s')
    {
        s = stem;
    }
    if s.len() > 3
        && let Some(stem) = s.strip_suffix(['e', 'y'])
    {
        s = stem;
    }
    // A doubled final consonant ("quitting" → "quitt" → "quit"), compared as characters: the
    // bytes of one multi-byte character may repeat ("丸" is E4 B8 B8).
    let mut last = s.chars().rev();
    if stripped_affix
        && s.len() > 3
        && let (Some(a), Some(b)) = (last.next(), last.next())
        && a == b
        && !matches!(a, 'l' | 's' | 'z' | 'e' | 'o')
        && let Some(stem) = s.strip_suffix(a)
    {
        s = stem;
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
    // Both are ASCII (checked above), so every byte has a slot; `get_mut` keeps that local.
    let mut tally = |x: u8, by: i32| {
        if let Some(c) = count.get_mut(usize::from(x)) {
            *c += by;
        }
    };
    a.bytes().for_each(|x| tally(x, 1));
    b.bytes().for_each(|x| tally(x, -1));
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
///
/// Positions are walked as characters (`char_indices`), and every cut into `src` goes
/// through `str::get`, so a request in any script cannot split a character: spans always
/// lie on character boundaries of `src`.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(src.len(), |c| c.0);
    let char_at = |i: usize| chars.get(i).map(|c| c.1);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&(at, ch)) = chars.get(i) {
        if ch.is_whitespace() {
            if ch == '\n' {
                out.push(punct(at, ch));
            }
            i += 1;
            continue;
        }
        if is_quote(ch) {
            let prev_ok = i
                .checked_sub(1)
                .and_then(char_at)
                .is_none_or(|p| p.is_whitespace() || matches!(p, '(' | '[' | ':' | ',' | '-'));
            if prev_ok && let Some(close) = find_close(&chars, i) {
                let inner_start = byte_at(i + 1);
                let inner_end = byte_at(close);
                let raw = src.get(inner_start..inner_end).unwrap_or("");
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
                        outer_start: at,
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
            out.push(punct(at, ch));
            i += 1;
            continue;
        }
        if ch.is_alphanumeric() || ch == '_' || ch == '#' {
            let s = i;
            i += 1;
            while let Some(c) = char_at(i) {
                let next = char_at(i + 1);
                let next_alnum = next.is_some_and(char::is_alphanumeric);
                let prev_digit = i.checked_sub(1).and_then(char_at).is_some_and(|p| p.is_ascii_digit());
                let next_digit = next.is_some_and(|n| n.is_ascii_digit());
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
        out.push(punct(at, ch));
        i += 1;
    }
    out
}

fn find_close(chars: &[(usize, char)], open: usize) -> Option<usize> {
    let opener = chars.get(open)?.1;
    let closers = closing_for(opener);
    let single = matches!(opener, '\'' | '\u{2018}' | '\u{2019}');
    let char_at = |j: usize| chars.get(j).map(|x| x.1);
    (open + 1..chars.len()).find(|&j| {
        if !char_at(j).is_some_and(|c| closers.contains(&c)) {
            return false;
        }
        if !single {
            return true;
        }
        // A single quote closes only when it is not an apostrophe inside a word (`j` is past
        // `open`, so `j - 1` exists).
        !char_at(j + 1).is_some_and(char::is_alphanumeric)
            && !j.checked_sub(1).and_then(char_at).is_some_and(char::is_whitespace)
    })
}

fn punct(at: usize, c: char) -> Token {
    Token {
        text: c.to_string(),
        lower: c.to_string(),
        kind: Kind::Punct(c),
        possessive: false,
        start: at,
        end: at + c.len_utf8(),
        outer_start: at,
        outer_end: at + c.len_utf8(),
    }
}

/// `start..end` and `outer_end` come from `char_indices` of `src` (or a cut at an ASCII
/// character found in it), so `get` always succeeds; an empty text is the harmless fallback.
fn word_token(src: &str, start: usize, end: usize, outer_end: usize, possessive: bool) -> Token {
    let text = src.get(start..end).unwrap_or("");
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
    b.len() == 10 && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

/// Pushes one word, splitting off a possessive, a hyphenated number/unit ("6-month") and a
/// glued unit ("90d").
///
/// Cuts are measured on `raw` (the text as written), never on its lowercase copy: lowercasing
/// changes byte lengths ("İ" is two bytes, "i̇" three).
fn push_word(src: &str, start: usize, end: usize, out: &mut Vec<Token>) {
    let raw = src.get(start..end).unwrap_or("");
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
    // "90d", "6mo", "2yrs": the digits are ASCII, so the unit starts at the same byte in `raw`.
    let digits = raw.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0
        && let Some(unit) = raw.get(digits..)
        && !unit.is_empty()
        && UNIT_SUFFIXES.contains(&unit.to_lowercase().as_str())
    {
        out.push(word_token(src, start, start + digits, start + digits, false));
        out.push(word_token(src, start + digits, end, end, false));
        return;
    }
    out.push(word_token(src, start, end, end, false));
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
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
    fn multi_byte_words_never_split_a_character() {
        // "丸" is E4 B8 B8: its last two bytes repeat, which once read as a doubled consonant.
        assert_eq!(lemma("a丸ed"), "a丸");
        assert_eq!(lemma("ññing"), "ñ");
        // Lowercasing "İ" grows it from two bytes to three; cuts are measured on the original.
        assert_eq!(texts("İİ's 90İ 6-İ"), ["İİ", "90İ", "6", "İ"]);
        for t in tokenize("archive a丸ed workbooks in «Finance» 'İstanbul' ß’s") {
            assert!(
                t.text.is_empty()
                    || "archive a丸ed workbooks in «Finance» 'İstanbul' ß’s".get(t.start..t.end)
                        == Some(t.text.as_str())
            );
        }
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

    mod properties {
        //! The tokenizer over arbitrary Unicode: it never panics, and every span it reports is
        //! a slice of the request on character boundaries, in order.
        use proptest::prelude::*;

        use super::super::*;

        pub(crate) fn request() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                3 => proptest::sample::select(crate::hostile::PIECES).prop_map(str::to_string),
                2 => any::<char>().prop_map(String::from),
                1 => "[a-zA-Z]{1,8}",
            ];
            proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
        }

        fn check_spans(src: &str) -> Result<(), TestCaseError> {
            let mut previous_end = 0;
            for t in tokenize(src) {
                for at in [t.start, t.end, t.outer_start, t.outer_end] {
                    prop_assert!(src.is_char_boundary(at), "{at} in {src:?} for {t:?}");
                }
                prop_assert!(t.outer_start <= t.start && t.start <= t.end && t.end <= t.outer_end, "{t:?}");
                prop_assert!(previous_end <= t.outer_start, "tokens overlap or go back: {t:?} in {src:?}");
                previous_end = t.outer_end;
                prop_assert_eq!(src.get(t.start..t.end), Some(t.text.as_str()));
                prop_assert!(!t.text.is_empty());
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn spans_are_slices_on_character_boundaries(src in request()) {
                check_spans(&src)?;
            }

            #[test]
            fn spans_hold_for_any_string(src in any::<String>()) {
                check_spans(&src)?;
            }

            #[test]
            fn lemma_is_a_prefix_and_stable(w in request()) {
                let l = lemma(&w);
                prop_assert!(w.starts_with(l));
                let lower = w.to_lowercase();
                prop_assert!(lower.starts_with(lemma(&lower)));
            }

            #[test]
            fn edit_distance_is_symmetric_and_capped(a in request(), b in request()) {
                let d = edit_distance(&a, &b, 2);
                prop_assert!(d <= 3);
                prop_assert_eq!(d, edit_distance(&b, &a, 2));
            }
        }
    }
}
