//! The real `tabflow` binary end to end: emulator, snapshots, diffs, the demo site, and
//! bad input (each a clear `error:` + `hint:` and the documented exit code).

use std::path::Path;
use std::process::Output;

use crate::support::{bin, serve, serve_with, text};

/// The binary with no Tableau server or credentials in its environment.
fn run(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.args(args)
        .env("TABFLOW_HOME", home)
        .env_remove("TABLEAU_SERVER")
        .env_remove("TABLEAU_PAT_NAME")
        .env_remove("TABLEAU_PAT_SECRET");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn generate_is_byte_identical_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    for p in [&a, &b] {
        let o =
            run(dir.path(), &["emulator", "generate", "--scale", "300", "--seed", "5", "-o", p.to_str().unwrap()], &[]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn snapshot_of_a_served_snapshot_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.json");
    assert!(
        run(dir.path(), &["emulator", "generate", "--scale", "200", "-o", site.to_str().unwrap()], &[])
            .status
            .success()
    );
    let emu = serve_with(&["--snapshot", site.to_str().unwrap()]);
    let env = [("TABLEAU_PAT_NAME", "tabflow"), ("TABLEAU_PAT_SECRET", "tabflow")];
    let s1 = dir.path().join("s1.json");
    let s2 = dir.path().join("s2.json");
    for s in [&s1, &s2] {
        let o = run(
            dir.path(),
            &["site", "snapshot", "--server", &emu.1, "--site", "demo", "-o", s.to_str().unwrap()],
            &env,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("200 workbooks"), "{}", text(&o.stderr));
    }
    let o = run(dir.path(), &["site", "diff", s1.to_str().unwrap(), s2.to_str().unwrap(), "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["equal"], true);
    // A changed site differs, with exit code 1.
    let o = run(dir.path(), &["site", "diff", site.to_str().unwrap(), s1.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!o.stdout.is_empty());
}

#[test]
fn demo_site_persists_between_commands_and_resets() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = dir.path().join("s1.json");
    let o = run(dir.path(), &["site", "snapshot", "-o", s1.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("built-in demo site"), "{}", text(&o.stderr));
    assert!(dir.path().join("demo-site.json").exists());
    let o = run(dir.path(), &["demo", "reset"], &[]);
    assert!(o.status.success());
    assert!(text(&o.stderr).contains("847 workbooks"));
}

#[test]
fn bad_input_gets_one_clear_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let emu = serve();
    let out = dir.path().join("x.json");
    let o = out.to_str().unwrap();
    let long_request = "archive Finance Quarterly Budget Review ".repeat(60);
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, i32, &str)> = vec![
        (
            vec!["site", "snapshot", "--server", &emu.1, "--site", "demo", "-o", o],
            vec![("TABLEAU_PAT_NAME", "tabflow"), ("TABLEAU_PAT_SECRET", "nope")],
            1,
            "401001",
        ),
        (vec!["site", "snapshot", "--server", &emu.1, "--site", "demo", "-o", o], vec![], 2, "no credentials"),
        (
            vec!["site", "snapshot", "--server", "http://127.0.0.1:9", "--site", "demo", "-o", o],
            vec![("TABLEAU_PAT_NAME", "a"), ("TABLEAU_PAT_SECRET", "b")],
            1,
            "cannot reach",
        ),
        (
            vec!["site", "snapshot", "--server", "tableau.example.com", "-o", o],
            vec![("TABLEAU_PAT_NAME", "a"), ("TABLEAU_PAT_SECRET", "b")],
            1,
            "needs a scheme",
        ),
        (vec!["site", "diff", "/nonexistent/a.json", "/nonexistent/b.json"], vec![], 1, "cannot read the snapshot"),
        (vec!["emulator", "serve", "--error-rate", "3"], vec![], 2, "out of range"),
        (vec!["plan", "--intent", "archive-stale"], vec![], 2, "did you mean archive-stale-content? use one of:"),
        (vec!["plan", "--intent", "ofboard-user"], vec![], 2, "did you mean offboard-user? use one of:"),
        (vec!["plan", &long_request], vec![], 2, "tabflow reads requests of at most 2000"),
        (
            vec!["site", "snapshot", "--server", "https://admin:nope@127.0.0.1:9", "--site", "demo", "-o", o],
            vec![("TABLEAU_PAT_NAME", "a"), ("TABLEAU_PAT_SECRET", "b")],
            1,
            "carries a user name or password",
        ),
    ];
    for (args, env, code, needle) in cases {
        let out = run(dir.path(), &args, &env);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains("error:") && err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("hint:"), "{args:?}: {err}");
        assert!(!err.contains("nope"), "secret echoed: {err}");
    }
    // Help shows which variables are read, never their values (a store URL or server address
    // may carry a password).
    for args in [vec!["plan", "--help"], vec!["site", "snapshot", "--help"], vec!["runs", "list", "--help"]] {
        let out = run(
            dir.path(),
            &args,
            &[("TABFLOW_STORE", "postgres://u:nope@db.example/tabflow"), ("TABLEAU_SERVER", "https://a:nope@h")],
        );
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            (all.contains("[env: TABLEAU_SERVER]") || all.contains("[env: TABFLOW_STORE]")) && !all.contains("nope"),
            "{args:?}: {all}"
        );
    }
    // An intent name like none of them: the list, and no guess.
    let err = text(&run(dir.path(), &["plan", "--intent", "frobnicate"], &[]).stderr);
    assert!(err.contains("hint: use one of: archive-stale-content") && !err.contains("did you mean"), "{err}");
    // A malformed snapshot file
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"something-else/9\"}").unwrap();
    let o = run(dir.path(), &["site", "diff", bad.to_str().unwrap(), bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("unsupported snapshot format"), "{}", text(&o.stderr));
}

#[test]
fn usage_sources_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["usage", "show", "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"], "admin-insights");
    assert_eq!(v["workbooks"], 847);
    assert_eq!(v["coverage"], 1.0);
    let sum = v["never_accessed"].as_u64().unwrap()
        + v["not_accessed_since_days"]["count"].as_u64().unwrap()
        + v["accessed_recently"].as_u64().unwrap();
    assert_eq!(sum, 847);
    // No history yet: a clear error, exit 2.
    let o = run(dir.path(), &["usage", "show", "--source", "recorded-history"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("tabflow usage record"));
    for _ in 0..2 {
        let o = run(dir.path(), &["usage", "record"], &[]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let o = run(dir.path(), &["usage", "show", "--source", "recorded-history", "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Two samples with unchanged counts: only never-viewed workbooks are known.
    assert_eq!(v["covered"], v["never_accessed"]);
    assert!(v["covered"].as_u64().unwrap() > 0);
    let o = run(dir.path(), &["usage", "show", "--source", "repository"], &[("TABFLOW_REPOSITORY_URL", "")]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_emulator_refuses_a_non_loopback_address_unless_allowed_and_then_warns() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["emulator", "serve", "--bind", "0.0.0.0", "--port", "0"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("error: --bind 0.0.0.0") && err.contains("hint:") && err.contains("--allow-remote"), "{err}");
    let o = run(dir.path(), &["emulator", "serve", "--control-token", " "], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    // Allowed: it serves, and says loudly what that exposes.
    use std::io::{BufRead, BufReader};
    let mut child = bin()
        .args(["emulator", "serve", "--bind", "0.0.0.0", "--port", "0", "--allow-remote"])
        .env("TABFLOW_HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut warning = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut warning).unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    assert!(warning.starts_with("WARNING:") && warning.contains("--control-token"), "{warning}");
}

#[test]
fn plan_and_snapshot_files_above_their_limits_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse files: the size is checked, nothing is read.
    let plan = dir.path().join("huge-plan.json");
    std::fs::File::create(&plan).unwrap().set_len((256 << 20) + 1).unwrap();
    let o = run(dir.path(), &["apply", plan.to_str().unwrap(), "--approve", "all"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("a plan above 256 MiB is refused before it is parsed") && err.contains("hint:"), "{err}");

    let snap = dir.path().join("huge-site.json");
    std::fs::File::create(&snap).unwrap().set_len((4u64 << 30) + 1).unwrap();
    let o = run(dir.path(), &["site", "diff", snap.to_str().unwrap(), snap.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("a snapshot above 4 GiB is refused before it is parsed"), "{err}");
    let o = run(dir.path(), &["emulator", "serve", "--snapshot", snap.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
}
