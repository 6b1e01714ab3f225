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

#[test]
fn yes_approves_read_and_write_steps_never_destructive_ones() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let before = state(&emu);
    // --yes answers the confirmation question, then stops at the destructive step: exit 3.
    let o = run(h, &emu, &["ask", ARCHIVE, "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("answered archive-all (--yes answers confirmation questions)"), "{stderr}");
    assert!(stderr.contains("--yes approves steps that read or write, never destructive ones"), "{stderr}");
    assert!(stderr.contains("--approve all"), "{stderr}");
    assert_eq!(state(&emu), before, "--yes approved a destructive step");
    let o = run(h, &emu, &["ask", ARCHIVE, "--yes", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)));
    assert_eq!(r["status"], "awaiting-approval", "{r}");
    assert_eq!(state(&emu), before);
    // apply --yes of the same plan: the same refusal.
    let (plan_path, _) = plan_file(h, &emu, "archive-stale-content project=Finance", &["q1=archive-all"]);
    let o = run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("never destructive ones"), "{}", text(&o.stderr));
    assert_eq!(state(&emu), before);
    // A question about meaning is not answered by --yes or --approve all: exit 3 says so.
    for flags in [&["--yes"][..], &["--approve", "all"][..]] {
        let o = run(h, &emu, &[&["ask", "John is leaving; give his content to Tom"][..], flags].concat());
        assert_eq!(o.status.code(), Some(3), "{flags:?}: {}", text(&o.stderr));
        let stderr = text(&o.stderr);
        assert!(stderr.contains("is a question about meaning") && stderr.contains("--answer q1="), "{stderr}");
        assert_eq!(state(&emu), before);
    }
    // --approve all approves the destructive step too (and --yes with it changes nothing more).
    let r = ok_json(&run(h, &emu, &["ask", ARCHIVE, "--yes", "--approve", "all", "--json"]), "ask --yes --approve all");
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_ne!(state(&emu), before);
}

#[test]
fn a_purge_without_a_terminal_needs_yes() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (planned, run_id, _) = crate::staged_delete::stage(h, &emu);
    let staged = state(&emu);
    for extra in [&["--now"][..], &["--now", "--json"][..]] {
        let o = run(h, &emu, &[&["runs", "purge"][..], extra].concat());
        assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
        let stderr = text(&o.stderr);
        assert!(stderr.contains(&format!("deletes {} staged items for good", planned.len())), "{stderr}");
        assert!(stderr.contains("needs a confirmation") && stderr.contains("--yes"), "{stderr}");
        assert_eq!(state(&emu), staged, "a refused purge changed the site");
    }
    // Nothing due (the grace period runs): nothing to confirm, nothing deleted.
    let p = run_json(h, &emu, &["runs", "purge", "--json"]);
    assert_eq!(p["purged"].as_array().map(Vec::len), Some(0), "{p}");
    assert_eq!(p["waiting"].as_array().map(Vec::len), Some(planned.len()), "{p}");
    let p = run_json(h, &emu, &["runs", "purge", "--now", "--yes", "--json"]);
    assert_eq!(p["purged"].as_array().map(Vec::len), Some(planned.len()), "{p} (run {run_id})");
}

/// Workbook id → (its project's name, its tags): what a run of the archive changes.
fn shape(site: &Value) -> std::collections::BTreeMap<String, (String, Vec<String>)> {
    let projects: std::collections::HashMap<&str, &str> = site["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    site["workbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let mut tags: Vec<String> =
                w["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect();
            tags.sort();
            let project = projects.get(w["project_id"].as_str().unwrap_or_default()).copied().unwrap_or("?");
            (w["id"].as_str().unwrap().to_string(), (project.to_string(), tags))
        })
        .collect()
}

/// Runs `ask ARCHIVE --approve all` against `emu` (slowed by its latency), sends `signals`
/// SIGINTs once the move step has started; answers the output.
/// The child's stderr line by line as it comes (`rx`), and all of it once it closes (`reader`).
fn stderr_lines(
    child: &mut std::process::Child,
) -> (std::sync::mpsc::Receiver<String>, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, reader)
}

fn interrupted(h: &std::path::Path, emu: &Emu, signals: usize) -> std::process::Output {
    let mut child = cmd(h, emu, &["ask", ARCHIVE, "--approve", "all", "--concurrency", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (rx, reader) = stderr_lines(&mut child);
    let started = std::time::Instant::now();
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("the run never reached its move step");
        if line.starts_with("🔄 Step 2/2") {
            break;
        }
        assert!(started.elapsed().as_secs() < 120);
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = child.id().to_string();
    for _ in 0..signals {
        let k = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(k.success());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    std::process::Output { status, stdout: stdout.into_bytes(), stderr: err.into_bytes() }
}

#[test]
fn ctrl_c_stops_between_items_and_resume_ends_like_an_uninterrupted_run() {
    // The same request without interruption, on an emulator of its own.
    let plain = serve();
    let home_plain = tempfile::tempdir().unwrap();
    let r = ok_json(&run(home_plain.path(), &plain, &["ask", ARCHIVE, "--approve", "all", "--json"]), "ask");
    assert_eq!(r["status"], "succeeded", "{r}");
    let expected = shape(&state(&plain));

    let emu = serve_with(&["--latency-ms", "60"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let before = shape(&state(&emu));
    assert_ne!(before, expected);
    let o = interrupted(h, &emu, 1);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(130), "{err}\n{out}");
    assert!(err.contains("Stopping: finishing the items in flight"), "{err}");
    assert!(out.contains(" interrupted in ") && out.contains("tabflow runs resume r-"), "{out}");
    let runs = run_json(h, &emu, &["runs", "list", "--json"]);
    assert_eq!(runs[0]["status"], "interrupted", "{runs}");
    let run_id = runs[0]["id"].as_str().unwrap().to_string();
    // Part of the work is done, not all of it.
    let half = shape(&state(&emu));
    assert_ne!(half, before, "nothing was done before Ctrl-C");
    assert_ne!(half, expected, "Ctrl-C did not stop the run");
    // The items in flight were journalled: each moved workbook has its journal entry.
    let show = run_json(h, &emu, &["runs", "show", &run_id, "--json"]);
    let applied = show["journal"].as_array().unwrap().iter().filter(|e| e["phase"] == "applied").count();
    let moved = half.iter().filter(|(id, v)| before.get(*id) != Some(v)).count();
    assert_eq!(applied, moved, "every changed workbook is journalled");

    let o = run(h, &emu, &["runs", "resume", &run_id, "--json"]);
    let r = ok_json(&o, "resume");
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(shape(&state(&emu)), expected, "the resumed run did not end like an uninterrupted one");

    // Twice Ctrl-C: out at once (130); the run is left unfinished and a resume finishes it.
    let emu = serve_with(&["--latency-ms", "60"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = interrupted(h, &emu, 2);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("Stopped at once"), "{}", text(&o.stderr));
    let runs = run_json(h, &emu, &["runs", "list", "--json"]);
    let run_id = runs[0]["id"].as_str().unwrap().to_string();
    assert!(matches!(runs[0]["status"].as_str(), Some("running" | "interrupted")), "{runs}");
    let r = ok_json(&run(h, &emu, &["runs", "resume", &run_id, "--json"]), "resume after two Ctrl-C");
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(shape(&state(&emu)), expected);
}

#[test]
fn ctrl_c_stops_a_resumed_run_between_items_too() {
    let plain = serve();
    let home_plain = tempfile::tempdir().unwrap();
    let r = ok_json(&run(home_plain.path(), &plain, &["ask", ARCHIVE, "--approve", "all", "--json"]), "ask");
    assert_eq!(r["status"], "succeeded", "{r}");
    let expected = shape(&state(&plain));

    let emu = serve_with(&["--latency-ms", "150"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = interrupted(h, &emu, 1);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    let runs = run_json(h, &emu, &["runs", "list", "--json"]);
    let run_id = runs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(runs[0]["status"], "interrupted", "{runs}");

    // The resume is stopped by Ctrl-C as the run was: between items, `interrupted`, exit 130.
    // Two calls at a time, as the interrupted apply had: items are still waiting to start
    // when the Ctrl-C comes, however slow the machine is.
    let mut child = cmd(h, &emu, &["runs", "resume", &run_id, "--concurrency", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (rx, reader) = stderr_lines(&mut child);
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("the resume never started");
        if line.starts_with(&format!("Resuming run {run_id}")) {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let k = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(k.success());
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{err}\n{out}");
    assert!(err.contains("Stopping: finishing the items in flight"), "{err}");
    let runs = run_json(h, &emu, &["runs", "list", "--json"]);
    assert_eq!(runs[0]["status"], "interrupted", "{runs}");
    assert_ne!(shape(&state(&emu)), expected, "the resume ran to its end despite Ctrl-C");

    // A resume left alone finishes it as an uninterrupted run would have.
    let r = ok_json(&run(h, &emu, &["runs", "resume", &run_id, "--json"]), "resume");
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(shape(&state(&emu)), expected);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Runs that only read (a report each), so that `runs list` has several lines.
    for _ in 0..3 {
        let r = ok_json(&run(h, &emu, &["ask", "list workbooks in Finance", "--json"]), "ask");
        assert!(r["run_id"].is_string(), "{r}");
    }
    for line in ["runs list | head -1", "man | head -1", "completions bash | head -1"] {
        let script = format!("set -o pipefail; \"$TABFLOW\" {line}");
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .env("TABFLOW", env!("CARGO_BIN_EXE_tabflow"))
            .env("TABFLOW_HOME", h)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{line}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{line}");
        assert_eq!(text(&out.stdout).lines().count(), 1, "{line}");
    }
}

#[test]
fn doctor_checks_the_emulator_and_config_init_writes_a_profile_without_secrets() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = run(h, &emu, &["doctor", "--json"]);
    let checks = ok_json(&o, "doctor");
    let status = |name: &str| {
        checks.as_array().unwrap().iter().find(|c| c["check"] == name).unwrap_or_else(|| panic!("{name}: {checks}"))
            ["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for name in ["config", "connectivity", "tls", "api version", "credentials", "site role", "store"] {
        assert_eq!(status(name), "ok", "{name}: {checks}");
    }
    assert_eq!(status("smtp"), "warn");
    // A wrong secret: credentials fail, with what to fix; exit 1.
    let o = cmd(h, &emu, &["doctor"]).env("TABLEAU_PAT_SECRET", "wrong-secret-123").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("FAIL  credentials")), "{out}");
    assert!(out.contains("fix: "), "{out}");
    assert!(!out.contains("wrong-secret-123") && !text(&o.stderr).contains("wrong-secret-123"));
    // A server that is not there.
    let o = cmd(h, &emu, &["doctor"]).env("TABLEAU_SERVER", "http://127.0.0.1:9").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).lines().any(|l| l.starts_with("FAIL  connectivity")), "{}", text(&o.stdout));

    // config init without a terminal, from flags; the profile then connects (doctor).
    let config = h.join("config.toml");
    let store = h.join("profile.db");
    let o = bare(
        h,
        &[
            "config",
            "init",
            "--profile",
            "emu",
            "--server",
            &emu.1,
            "--site",
            "demo",
            "--pat-name",
            "tabflow",
            "--secret-env",
            "EMU_SECRET",
            "--store",
            store.to_str().unwrap(),
            "--concurrency",
            "4",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("pat_secret_env = \"EMU_SECRET\"") && written.contains("concurrency = 4"), "{written}");
    assert!(written.contains("# The state store"), "the keys are commented: {written}");
    assert!(!written.contains("\"tabflow\"\npat_secret ="), "{written}");
    assert!(!written.lines().any(|l| l.starts_with("pat_secret =")), "a secret value was written: {written}");
    // The same name twice is refused.
    let o = bare(
        h,
        &[
            "config",
            "init",
            "--profile",
            "emu",
            "--server",
            &emu.1,
            "--pat-name",
            "x",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    // The profile is used: its server, its secret from EMU_SECRET, its store.
    let o = bin()
        .args(["--profile", "emu", "--config", config.to_str().unwrap(), "doctor", "--json"])
        .env_remove("TABLEAU_SERVER")
        .env_remove("TABFLOW_STORE")
        .env("TABFLOW_HOME", h)
        .env("EMU_SECRET", "tabflow")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let checks = ok_json(&o, "doctor --profile");
    let store_line = checks.as_array().unwrap().iter().find(|c| c["check"] == "store").unwrap();
    assert!(store_line["detail"].as_str().unwrap().contains("profile.db"), "{store_line}");
    assert!(store.exists(), "the profile's store was not used");
}

#[test]
fn completions_and_man_pages() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for (shell, marker) in [
        ("bash", "_tabflow()"),
        ("zsh", "#compdef tabflow"),
        ("fish", "complete -c tabflow"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let o = bare(h, &["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", text(&o.stderr));
        let s = text(&o.stdout);
        assert!(s.contains(marker) && s.contains("rollback") && s.contains("doctor"), "{shell}");
    }
    assert_eq!(bare(h, &["completions", "tcsh"]).status.code(), Some(2));
    let o = bare(h, &["man"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).starts_with(".ie") && text(&o.stdout).contains(".SH NAME"));
    let dir = h.join("man");
    let o = bare(h, &["man", "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for page in ["tabflow.1", "tabflow-ask.1", "tabflow-runs-rollback.1", "tabflow-doctor.1", "tabflow-config-init.1"] {
        let p = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(p.contains(".SH NAME"), "{page}");
    }
    let ask = std::fs::read_to_string(dir.join("tabflow-ask.1")).unwrap();
    assert!(ask.to_lowercase().contains("never destructive"), "the --yes help is in the page");
}
