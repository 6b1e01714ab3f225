//! The terminal front end without a terminal (issue #19): `--approve all` answers the
//! "archive all, or review the list first?" question; a rollback needs `--yes` when no one can
//! confirm it; the global flags are read before or after the subcommand; read steps print
//! what they found. (The interactive review list is driven in a real pseudo-terminal by
//! tests/compat/test_tty_review.py.)

use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

const ARCHIVE: &str = "Archive Finance workbooks not accessed in 90+ days";

#[test]
fn approve_all_answers_the_archive_all_question_and_runs() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let before = state(&emu);
    let o = run(h, &emu, &["ask", ARCHIVE, "--approve", "all", "--json"]);
    let r = ok_json(&o, "ask --approve all");
    assert_eq!(r["status"], "succeeded", "{r}");
    let done: u64 = r["steps"].as_array().unwrap().iter().map(|s| s["done"].as_u64().unwrap()).sum();
    assert!(done > 0, "{r}");
    // It said which answer it gave, and why.
    let stderr = text(&o.stderr);
    assert!(stderr.contains("answered archive-all (--approve all approves every item)"), "{stderr}");
    assert_ne!(state(&emu), before, "the run changed nothing");

    // A selection that is not `all` does not answer for the person: exit 3, nothing changed.
    let emu = serve();
    let before = state(&emu);
    let o = run(h, &emu, &["ask", ARCHIVE, "--approve", "s2"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("--approve all"), "{}", text(&o.stdout));
    assert_eq!(state(&emu), before);
}

#[test]
fn read_steps_print_what_they_found_not_zero_counts() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let o = run(home.path(), &emu, &["ask", ARCHIVE, "--approve", "all"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    let found = stderr.lines().find(|l| l.starts_with("✅ s1: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        found.contains("Analyzed ") && found.contains(" workbooks (found ") && found.contains(" candidates)"),
        "{found}"
    );
    assert!(!stderr.contains("s1: 0 done"), "{stderr}");
    // The step that changes items keeps its counts (scripts read them).
    assert!(stderr.lines().any(|l| l.starts_with("✅ s2: ") && l.contains(" done, 0 skipped, 0 failed")), "{stderr}");
}

#[test]
fn a_rollback_without_a_terminal_needs_yes() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let before = state(&emu);
    let r = ok_json(&run(h, &emu, &["ask", ARCHIVE, "--approve", "all", "--json"]), "ask");
    let run_id = r["run_id"].as_str().unwrap().to_string();
    let after = state(&emu);
    assert_ne!(after, before);
    for extra in [&[][..], &["--json"][..]] {
        let o = run(h, &emu, &[&["runs", "rollback", &run_id][..], extra].concat());
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        let stderr = text(&o.stderr);
        assert!(stderr.contains("needs a confirmation") && stderr.contains("--yes"), "{stderr}");
        assert!(stderr.contains("puts back 23 changed items"), "{stderr}");
        assert_eq!(state(&emu), after, "a refused rollback changed the site");
    }
    // An unknown run is still "no run" (exit 1), not a confirmation.
    let o = run(h, &emu, &["runs", "rollback", "r-does-not-exist"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let o = run(h, &emu, &["runs", "rollback", &run_id, "--yes"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(state(&emu), before);
}

/// `tabflow` with the test's home and credentials but no TABLEAU_SERVER/TABLEAU_SITE in its
/// environment: the flags alone say where to connect.
fn bare(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    bin()
        .args(args)
        .env_remove("TABLEAU_SERVER")
        .env_remove("TABLEAU_SITE")
        .env_remove("TABFLOW_STORE")
        .env_remove("TABFLOW_PROFILE")
        .env("TABFLOW_HOME", home)
        .env("TABLEAU_PAT_NAME", "tabflow")
        .env("TABLEAU_PAT_SECRET", "tabflow")
        .env("TABFLOW_ACTOR", "test-operator")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn global_flags_are_read_before_or_after_the_subcommand() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = |name: &str| h.join(name).to_str().unwrap().to_string();
    let (a, b) = (out("before.json"), out("after.json"));
    let o = bare(h, &["--server", &emu.1, "--site", "demo", "site", "snapshot", "--no-usage", "-o", &a]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = bare(h, &["site", "snapshot", "--server", &emu.1, "--site", "demo", "--no-usage", "-o", &b]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Both read the emulator (not the built-in demo site, which says so on stderr).
    assert!(!text(&o.stderr).contains("demo site"), "{}", text(&o.stderr));
    let o = bare(h, &["--json", "site", "diff", &a, &b]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)));
    assert_eq!(d["equal"], true, "{d}");
    let site: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    assert!(site["workbooks"].as_array().is_some_and(|w| !w.is_empty()), "no workbooks read");

    // --store and --json before the subcommand, against a store of its own.
    let store = out("other.db");
    let r = ok_json(
        &bare(
            h,
            &["--server", &emu.1, "--site", "demo", "--store", &store, "--json", "ask", ARCHIVE, "--approve", "all"],
        ),
        "ask",
    );
    let run_id = r["run_id"].as_str().unwrap();
    let listed = bare(h, &["--store", &store, "--json", "runs", "list"]);
    let runs: Value =
        serde_json::from_slice(&listed.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&listed.stdout)));
    assert_eq!(runs[0]["id"], run_id, "{runs}");
    let default_store = bare(h, &["runs", "list", "--json"]);
    let runs: Value = serde_json::from_slice(&default_store.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "the run went to the default store: {runs}");
    // --profile before the subcommand is read too (here: a profile that is not there).
    let o = bare(h, &["--profile", "nope", "site", "snapshot", "-o", &out("x.json")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("config file"), "{}", text(&o.stderr));

    // A flag the subcommand does not take is refused wherever it is written.
    for args in
        [&["--json", "demo", "reset"][..], &["demo", "reset", "--json"][..], &["--server", &emu.1, "demo", "reset"][..]]
    {
        let o = bare(h, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
    let o = bare(h, &["--json", "demo", "reset"]);
    assert!(text(&o.stderr).contains("does not take --json"), "{}", text(&o.stderr));
}
