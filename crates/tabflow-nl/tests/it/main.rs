//! Data-driven accuracy checks of `tabflow_nl::parse`.
//!
//! Each line of a data file is `{"request": "...", "intents": [{"name": "...", "params":
//! {...}}], "today": "YYYY-MM-DD"?}`. A request passes when the parser yields the same intent
//! names in the same order and, for each intent, every expected parameter has an equal value
//! (an expected `null` means the parameter must be absent; extra parameters are allowed).

mod properties;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::Value;
use tabflow_nl::{Intent, parse};

/// The day the data files are written against unless a line says otherwise.
fn default_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 8, 14).expect("valid date")
}

fn intent_matches(expected: &Value, got: &Intent) -> bool {
    if expected.get("name").and_then(Value::as_str) != Some(got.name()) {
        return false;
    }
    let Some(params) = expected.get("params").and_then(Value::as_object) else { return true };
    let got = got.params_json();
    params.iter().all(|(key, want)| match (want, got.get(key)) {
        (Value::Null, None | Some(Value::Null)) => true,
        (want, Some(have)) => want == have,
        (_, None) => false,
    })
}

struct Outcome {
    passed: usize,
    total: usize,
    failures: Vec<String>,
}

fn check_file(path: &Path) -> Outcome {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut outcome = Outcome { passed: 0, total: 0, failures: Vec::new() };
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
        let request = case["request"].as_str().unwrap_or_else(|| panic!("{}:{}: no request", path.display(), n + 1));
        let today = case
            .get("today")
            .and_then(Value::as_str)
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("today is YYYY-MM-DD"))
            .unwrap_or_else(default_today);
        let expected = case["intents"].as_array().cloned().unwrap_or_default();
        let parsed = parse(request, today);
        let ok = expected.len() == parsed.intents.len()
            && expected.iter().zip(&parsed.intents).all(|(e, g)| intent_matches(e, g))
            && (!expected.is_empty()
                || !parsed.not_understood.is_empty()
                || !parsed.unsupported.is_empty()
                || !parsed.ambiguous.is_empty());
        outcome.total += 1;
        if ok {
            outcome.passed += 1;
        } else {
            outcome.failures.push(format!(
                "line {}: {request}\n  expected: {}\n  got:      {}\n  not understood: {:?}",
                n + 1,
                Value::Array(expected),
                serde_json::to_string(&parsed.intents).unwrap_or_default(),
                parsed.not_understood
            ));
        }
    }
    outcome
}

fn report(name: &str, o: &Outcome) -> f64 {
    let accuracy = 100.0 * o.passed as f64 / o.total.max(1) as f64;
    println!("{name}: {}/{} requests exactly right ({accuracy:.1} %)", o.passed, o.total);
    for f in &o.failures {
        println!("{f}");
    }
    accuracy
}

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The shared dev set: `TABFLOW_NL_DEV` when set (a worktree checked out elsewhere than
/// beside `shared/`), else `shared/nl/dev.jsonl` beside the repository.
fn dev_path() -> PathBuf {
    std::env::var_os("TABFLOW_NL_DEV")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_path("../../../shared/nl/dev.jsonl"))
}

#[test]
fn dev_set_is_fully_understood() {
    let path = dev_path();
    if !path.exists() {
        eprintln!("skipping: {} not found (the shared dev set lives beside the repository)", path.display());
        return;
    }
    let outcome = check_file(&path);
    assert!(outcome.total >= 1, "the dev set is empty");
    let accuracy = report("dev", &outcome);
    assert_eq!(outcome.passed, outcome.total, "dev accuracy {accuracy:.1} % must be 100 %");
}

#[test]
fn extended_set_is_at_least_90_percent_right() {
    let outcome = check_file(&manifest_path("tests/data/extended.jsonl"));
    assert!(outcome.total >= 120, "the extended set must hold at least 120 requests, has {}", outcome.total);
    let accuracy = report("extended", &outcome);
    assert!(accuracy >= 90.0, "extended accuracy {accuracy:.1} % is below 90 %");
}

/// `names.jsonl`: phrasings of the misses fixed by the rules for multi-word and hyphenated
/// project names, "remove X's access and give …" as one offboarding, deleting inside the
/// Archive project, "upgrade" as a repointing, "Extract" inside datasource names, and the
/// project of a repointing. Every line must be right.
#[test]
fn names_and_repointing_set_is_fully_understood() {
    let outcome = check_file(&manifest_path("tests/data/names.jsonl"));
    assert!(outcome.total >= 30, "the names set must hold at least 30 requests, has {}", outcome.total);
    let accuracy = report("names", &outcome);
    assert_eq!(outcome.passed, outcome.total, "names accuracy {accuracy:.1} % must be 100 %");
}

/// Per intent of the expected answers: (right, expected). An expected intent is right when
/// the parser yields a matching intent (name and every expected parameter) at the same
/// position; requests expected to be not understood count under `(not understood)`.
fn per_intent(path: &Path) -> std::collections::BTreeMap<String, (usize, usize)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut scores: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("valid line");
        let request = case["request"].as_str().expect("request");
        let parsed = parse(request, default_today());
        let expected = case["intents"].as_array().cloned().unwrap_or_default();
        if expected.is_empty() {
            let e = scores.entry("(not understood)".into()).or_default();
            e.1 += 1;
            e.0 += usize::from(parsed.intents.is_empty() && !parsed.not_understood.is_empty());
        }
        for (k, want) in expected.iter().enumerate() {
            let name = want["name"].as_str().unwrap_or("?").to_string();
            let e = scores.entry(name).or_default();
            e.1 += 1;
            e.0 += usize::from(parsed.intents.get(k).is_some_and(|got| intent_matches(want, got)));
        }
    }
    scores
}

fn print_per_intent(name: &str, scores: &std::collections::BTreeMap<String, (usize, usize)>) {
    println!("{name}, per intent (right / expected):");
    for (intent, (right, total)) in scores {
        println!("  {intent:<26} {right:>3} / {total:<3} {:>5.1} %", 100.0 * *right as f64 / (*total).max(1) as f64);
    }
}

/// `fresh.jsonl`: phrasings written for this check (not taken from the dev set), covering
/// every intent of the catalogue, compound requests, questions and requests that must not
/// be understood.
#[test]
fn fresh_set_scores_per_intent_and_overall() {
    let path = manifest_path("tests/data/fresh.jsonl");
    let outcome = check_file(&path);
    assert!(outcome.total >= 150, "the fresh set must hold at least 150 requests, has {}", outcome.total);
    let scores = per_intent(&path);
    for intent in [
        "archive-stale-content",
        "consolidate-datasources",
        "offboard-user",
        "audit-permissions",
        "update-permissions",
        "notify-owners",
        "migrate-datasource",
        "delete-content",
        "query",
    ] {
        assert!(scores.get(intent).is_some_and(|s| s.1 >= 5), "the fresh set must cover {intent} at least 5 times");
    }
    print_per_intent("fresh", &scores);
    let accuracy = report("fresh (whole request exactly right)", &outcome);
    let dev = dev_path();
    if dev.exists() {
        print_per_intent("dev", &per_intent(&dev));
    }
    assert!(accuracy >= FRESH_FLOOR, "fresh accuracy {accuracy:.1} % is below {FRESH_FLOOR} %");
    for (intent, (right, total)) in &scores {
        let a = 100.0 * *right as f64 / (*total).max(1) as f64;
        assert!(a >= INTENT_FLOOR, "{intent}: {a:.1} % is below {INTENT_FLOOR} %");
    }
}

/// Floors for the fresh set (the measured figures are in the test output and the README).
const FRESH_FLOOR: f64 = 90.0;
const INTENT_FLOOR: f64 = 80.0;

#[test]
fn nonsense_is_not_understood() {
    for request in
        ["Make me a sandwich", "asdf qwerty zxcv", "What is the meaning of life, the universe and everything"]
    {
        let parsed = parse(request, default_today());
        if request.starts_with("What") {
            // A question is passed on as a query; the planner answers or says it cannot.
            continue;
        }
        assert!(parsed.intents.is_empty(), "{request}: {:?}", parsed.intents);
        assert_eq!(parsed.not_understood, [request]);
    }
    let parsed = parse("", default_today());
    assert!(parsed.intents.is_empty() && parsed.not_understood.is_empty());
}

#[test]
fn compound_request_reports_the_part_it_cannot_map() {
    let parsed = parse("Archive stale workbooks in Finance, then bake a cake", default_today());
    assert_eq!(parsed.intents.len(), 1, "{parsed:?}");
    assert_eq!(parsed.intents[0].name(), "archive-stale-content");
    assert_eq!(parsed.not_understood, ["bake a cake"]);
}

#[test]
fn parse_is_deterministic_and_serializes() {
    let request = "Sarah Lee is leaving; give her workbooks to Tom Baker and remove her access";
    let a = parse(request, default_today());
    let b = parse(request, default_today());
    assert_eq!(a, b);
    let json = serde_json::to_value(&a).expect("serializes");
    assert_eq!(json["intents"][0]["params"]["new_owner"], "Tom Baker");
    assert_eq!(json["not_understood"], serde_json::json!([]));
}

/// A small deterministic generator (no extra dependency) for the robustness check.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn never_panics_and_always_accounts_for_the_request() {
    const PIECES: &[&str] = &[
        "archive",
        "Archive",
        "old",
        "workbooks",
        "in",
        "the",
        "Finance",
        "project",
        "-",
        "and",
        "then",
        ",",
        ".",
        ";",
        "'",
        "\"",
        "(",
        ")",
        "Q2",
        "since",
        "from",
        "between",
        "2026-04-01",
        "to",
        "90+",
        "days",
        "six",
        "months",
        "John's",
        "is",
        "leaving",
        "give",
        "her",
        "Tom",
        "remove",
        "access",
        "tagged",
        "sensitive",
        "or",
        "every",
        "Monday",
        "at",
        "9am",
        "who",
        "can",
        "?",
        "notify",
        "owners",
        "migrate",
        "deprecated",
        "datasources",
        "→",
        "é",
        "日本",
        "\u{2019}s",
        "—",
        "@",
        "jdoe@x.com",
        "100000000000000000000",
        "last",
        "quarter",
        "a",
        "half",
        "year",
        "of",
        "'s",
        "--",
        "::",
        "/",
        "May",
        "the",
        "end",
        "start",
    ];
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date");
    let mut rng = Lcg(42);
    for _ in 0..1500 {
        let len = 1 + rng.next(25);
        let mut request = String::new();
        for _ in 0..len {
            request.push_str(PIECES[rng.next(PIECES.len())]);
            if rng.next(4) != 0 {
                request.push(' ');
            }
        }
        let parsed = parse(&request, today);
        if parsed.intents.is_empty() && !request.trim().is_empty() {
            assert!(!parsed.not_understood.is_empty(), "{request:?} vanished");
        }
        for intent in &parsed.intents {
            assert!(!intent.name().is_empty());
        }
    }
}

/// `safety.jsonl` (issue #18): "get rid of" / "clear out" / "clean up" archive unless delete
/// is said; schedules in any position; project names in any case; a leaver's request leaves
/// `remove_access` absent (the whole sequence) and a hand-over alone sets it false; actions
/// on objects tabflow has no workflow for, and ambiguous verbs, yield no intent. Every line
/// must be right.
#[test]
fn safety_set_is_fully_understood() {
    let outcome = check_file(&manifest_path("tests/data/safety.jsonl"));
    let accuracy = report("safety", &outcome);
    assert_eq!(outcome.passed, outcome.total, "safety accuracy {accuracy:.1} % must be 100 %");
}

#[test]
fn an_action_on_something_tabflow_cannot_do_is_named_never_mapped_to_a_workflow() {
    for (request, what) in [
        ("Update the subscriptions in Finance to daily", "update subscriptions"),
        ("Delete all data alerts in Finance", "delete data alerts"),
        ("Remove the failing extract refreshes", "remove extract refreshes"),
        ("Archive old workbooks in Finance, then delete the orphaned webhooks", "delete webhooks"),
    ] {
        let parsed = parse(request, default_today());
        assert!(
            parsed.intents.iter().all(|i| !matches!(i.name(), "archive-stale-content" | "delete-content"))
                || request.starts_with("Archive old"),
            "{request}: {:?}",
            parsed.intents
        );
        assert_eq!(parsed.unsupported, [what], "{request}: {parsed:?}");
    }
}

#[test]
fn removing_subscriptions_is_the_subscription_cleanup_never_an_archive() {
    for (request, reasons, project) in [
        (
            "Remove subscriptions of unlicensed users and subscriptions to archived content",
            Some(vec!["unlicensed-users", "archived-content"]),
            None,
        ),
        ("Clean up the failing subscriptions in Finance", Some(vec!["failing"]), Some("Finance")),
        ("get rid of subscriptions to quarantined workbooks", Some(vec!["archived-content"]), None),
        ("Delete all subscriptions nobody can receive", None, None),
        ("Archive old workbooks in Finance, then delete the orphaned subscriptions", None, None),
    ] {
        let parsed = parse(request, default_today());
        let clean: Vec<_> = parsed.intents.iter().filter(|i| i.name() == "clean-subscriptions").collect();
        assert_eq!(clean.len(), 1, "{request}: {:?}", parsed.intents);
        let p = clean[0].params_json();
        let got: Option<Vec<&str>> =
            p.get("reason").and_then(|r| r.as_array()).map(|a| a.iter().filter_map(|x| x.as_str()).collect());
        assert_eq!(got, reasons, "{request}: {p:?}");
        assert_eq!(p.get("project").and_then(|x| x.as_str()), project, "{request}: {p:?}");
        assert!(parsed.intents.iter().all(|i| i.name() != "delete-content"), "{request}: {:?}", parsed.intents);
        assert!(parsed.unsupported.is_empty(), "{request}: {parsed:?}");
    }
}

#[test]
fn archive_or_delete_is_asked_not_guessed() {
    let parsed = parse("Archive or delete the old workbooks in Sandbox", default_today());
    assert!(parsed.intents.is_empty(), "{parsed:?}");
    assert_eq!(parsed.ambiguous.len(), 1, "{parsed:?}");
    assert_eq!(parsed.ambiguous[0].choices, ["archive", "delete"]);
    assert!(parsed.not_understood.is_empty(), "{parsed:?}");
}

/// No request that says archive (or a word that means it) ever plans a delete.
#[test]
fn a_request_that_says_archive_never_yields_a_delete() {
    for file in
        ["tests/data/extended.jsonl", "tests/data/fresh.jsonl", "tests/data/names.jsonl", "tests/data/safety.jsonl"]
    {
        let text = std::fs::read_to_string(manifest_path(file)).expect("data file");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let case: Value = serde_json::from_str(line).expect("valid line");
            let request = case["request"].as_str().expect("request");
            let lower = request.to_lowercase();
            let says_archive = ["archive", "get rid of", "clear out", "clean up"].iter().any(|w| lower.contains(w));
            let says_delete =
                ["delete", "purge", "erase", "permanently", "trash", "remove", "destroy", "deleet", "delet"]
                    .iter()
                    .any(|w| lower.contains(w));
            if says_archive && !says_delete {
                let parsed = parse(request, default_today());
                assert!(
                    parsed.intents.iter().all(|i| i.name() != "delete-content"),
                    "{file}: {request} yields a delete: {:?}",
                    parsed.intents
                );
            }
        }
    }
}

/// Requests that name a template (issue #21): the template, its target and its parameters;
/// requests that only sound like one are left to the parser.
#[test]
fn requests_naming_a_template() {
    use tabflow_nl::template_call;
    let names = ["audit-permissions", "archive-stale-content", "quarterly-cleanup", "offboard-user"];
    let c = template_call("run the quarterly cleanup for Sales", &names).expect("a template call");
    assert_eq!((c.name.as_str(), c.target.as_deref(), c.params.len()), ("quarterly-cleanup", Some("Sales"), 0));
    let c = template_call("run template audit-permissions with tags=sensitive", &names).expect("a template call");
    assert_eq!(c.name, "audit-permissions");
    assert_eq!(c.params, vec![("tags".to_string(), "sensitive".to_string())]);
    let c = template_call("Run the archive stale content template for Finance with stale_days=120", &names).unwrap();
    assert_eq!((c.name.as_str(), c.target.as_deref()), ("archive-stale-content", Some("Finance")));
    assert_eq!(c.params, vec![("stale_days".to_string(), "120".to_string())]);
    // Not a template: the parser's.
    assert!(template_call("Audit permissions for sensitive workbooks", &names).is_none());
    assert!(template_call("run a quarterly review of Sales", &names).is_none());
}

#[test]
fn extract_refresh_requests_are_the_refresh_review() {
    for (request, action) in [
        ("Review extract refreshes", None),
        ("Which extracts are failing?", None),
        ("Suspend refreshes of unused workbooks", Some("suspend-unused")),
        ("Stop refreshing extracts nobody viewed in 60 days", Some("suspend-unused")),
        ("Move heavy refreshes off-peak", Some("rebalance")),
        ("Suspend the refresh schedules that only refresh unused content", Some("suspend-schedules")),
        ("Pause extract refresh schedules nobody needs", Some("suspend-schedules")),
        ("Resume the suspended refresh schedules", Some("resume-schedules")),
        ("Reactivate suspended extract refresh schedules that still matter", Some("resume-schedules")),
        ("Move heavy refreshes to the nightly schedule", Some("rebalance")),
    ] {
        let parsed = parse(request, default_today());
        assert_eq!(parsed.intents.len(), 1, "{request}: {parsed:?}");
        let i = &parsed.intents[0];
        assert_eq!(i.name(), "review-extract-refreshes", "{request}: {parsed:?}");
        let p = i.params_json();
        assert_eq!(p.get("action").and_then(|a| a.as_str()), action, "{request}: {p:?}");
        if request.contains("60 days") {
            assert_eq!(p.get("unused_days").and_then(|d| d.as_u64()), Some(60), "{request}: {p:?}");
        }
    }
    // Deleting failing refreshes is not a workflow: named, nothing planned.
    let parsed = parse("Remove the failing extract refreshes", default_today());
    assert!(parsed.intents.is_empty(), "{parsed:?}");
}
