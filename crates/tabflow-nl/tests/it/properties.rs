//! Property tests of the public entry points over arbitrary Unicode: `parse` (what `tabflow
//! plan` and the LLM fallback call), `duration_days`, `first_number` and `check_cadence`
//! never panic, and `parse` is a function of its input.
//!
//! The requests mix the parser's own vocabulary (so clauses get deep into classification)
//! with text that breaks byte-indexed code: multi-byte letters whose bytes repeat, letters
//! whose lowercase is longer, combining marks, RTL, emoji sequences and control characters.
//! `PROPTEST_CASES` raises the case count for a long local run.

use chrono::NaiveDate;
use proptest::prelude::*;
use tabflow_nl::{check_cadence, duration_days, first_number, parse};

const VOCABULARY: &[&str] = &[
    "archive",
    "Archive",
    "old",
    "stale",
    "workbooks",
    "datasources",
    "in",
    "the",
    "Finance",
    "project",
    "and",
    "then",
    "notify",
    "owners",
    "John's",
    "is",
    "leaving",
    "give",
    "her",
    "to",
    "Tom",
    "remove",
    "access",
    "tagged",
    "every",
    "Monday",
    "at",
    "9am",
    "since",
    "Q2",
    "last",
    "quarter",
    "90+",
    "days",
    "six",
    "months",
    "2026-04-01",
    "between",
    "from",
    "who",
    "can",
    "?",
    "migrate",
    "deprecated",
    "lock",
    "permissions",
    "read-only",
    "6-month",
    "90d",
    "weekly",
    "cron",
    "0 9 * * 1",
    "top",
    "twenty",
    "five",
    "a",
    "dozen",
    "jdoe@x.com",
    "(",
    ")",
    ",",
    ".",
    ";",
    "-",
    "→",
    "—",
    "'",
    "\"",
];

fn request() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(VOCABULARY).prop_map(str::to_string),
        3 => proptest::sample::select(tabflow_nl::hostile::PIECES).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
    ];
    let sep = proptest::sample::select(&[" ", " ", " ", "", "\n", ", "][..]);
    proptest::collection::vec((piece, sep), 0..30)
        .prop_map(|v| v.into_iter().flat_map(|(p, s)| [p, s.to_string()]).collect())
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 8, 14).expect("valid date")
}

fn check_parse(src: &str) -> Result<(), TestCaseError> {
    let a = parse(src, today());
    let b = parse(src, today());
    prop_assert_eq!(&a, &b, "parsing twice differs");
    let json = serde_json::to_value(&a).map_err(|e| TestCaseError::fail(format!("serialize: {e}")))?;
    prop_assert!(json["intents"].is_array());
    if a.intents.is_empty() && !src.trim().is_empty() {
        prop_assert!(!a.not_understood.is_empty(), "{src:?} vanished");
    }
    for fragment in &a.not_understood {
        prop_assert!(!fragment.is_empty());
    }
    Ok(())
}

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn parse_never_panics_and_is_deterministic(src in request()) {
        check_parse(&src)?;
    }

    #[test]
    fn parse_takes_any_string(src in any::<String>()) {
        check_parse(&src)?;
    }

    #[test]
    fn readers_of_plain_language_never_panic(src in request()) {
        let _ = duration_days(&src);
        if let Some(n) = first_number(&src) {
            prop_assert!(src.chars().any(|c| c.is_alphanumeric()), "{n} from {src:?}");
        }
        let _ = check_cadence(&src);
    }
}

#[test]
fn the_reported_crash_parses() {
    // `tabflow plan "archive a丸ed workbooks in Finance"` exited 101: 丸 is E4 B8 B8, and the
    // lemma took its repeated last bytes for a doubled consonant and cut between them.
    let parsed = parse("archive a丸ed workbooks in Finance", today());
    assert_eq!(parsed.intents.first().map(|i| i.name()), Some("archive-stale-content"), "{parsed:?}");
    for request in ["İİ use ‘X’", "ßTRASSE İstanbul's workbooks", "丸丸ing 丸ed", "\u{0}\u{202e}archive"] {
        check_parse(request).unwrap_or_else(|e| panic!("{request:?}: {e}"));
    }
}

#[test]
fn very_long_requests_parse() {
    // One word of 100 000 characters, and 20 000 words: no panic, no stack overflow.
    let one_word = "丸".repeat(100_000);
    assert_eq!(parse(&one_word, today()).not_understood, [one_word.as_str()]);
    let many = "archive old workbooks in Finance İ 丸ed, ".repeat(2_500);
    let parsed = parse(&many, today());
    assert!(!parsed.intents.is_empty());
}
