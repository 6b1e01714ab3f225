//! Bad input through the real binary (issue #17): flags out of range, malformed files,
//! unknown names, wrong credentials, unreachable servers, hostile bytes and oversize input.
//! Each case must end with no panic, exit 1, 2 or 3 with `error:` and `hint:` on stderr, no
//! planted secret in anything printed or written, and nothing written on the site.
//!
//! Every input channel carries a unique planted secret (`PLANTED-…`): the environment (PAT
//! secret, LLM key and URL key, SMTP URL and password, webhook URL and secret), flags
//! (`--store` with a password), a config file (a profile's `pat_secret`), and request text
//! (the PAT secret pasted into a request).

use std::path::Path;
use std::process::Output;

use crate::support::{Emu, bin, serve_with, stats, text};

const PAT: &str = "PLANTED-pat-7f3a9c1e55";
const LLM_KEY: &str = "PLANTED-llm-key-0b1d2c";
const LLM_URL_KEY: &str = "PLANTED-llm-url-key-9e8d";
const SMTP_PASSWORD: &str = "PLANTED-smtp-pw-4c4c4c";
const SMTP_URL_PASSWORD: &str = "PLANTED-smtp-url-pw-3a3a";
const WEBHOOK_PATH: &str = "PLANTED-webhook-path-77aa";
const WEBHOOK_SECRET: &str = "PLANTED-webhook-secret-5b5b";
const PG_PASSWORD: &str = "PLANTED-pg-pw-6e6e6e";
const CONFIG_SECRET: &str = "PLANTED-config-secret-1f1f";

/// The environment of every case: a real server (the emulator, whose PAT secret is planted)
/// and every secret-bearing setting.
fn planted_env(emu: &Emu) -> Vec<(String, String)> {
    [
        ("TABLEAU_SERVER", emu.1.clone()),
        ("TABLEAU_SITE", "demo".into()),
        ("TABLEAU_PAT_NAME", "tabflow".into()),
        ("TABLEAU_PAT_SECRET", PAT.into()),
        ("TABFLOW_ACTOR", "bad-input-test".into()),
        ("TABFLOW_LLM_API_KEY", LLM_KEY.into()),
        ("TABFLOW_LLM_URL", format!("http://127.0.0.1:9/v1?key={LLM_URL_KEY}")),
        ("TABFLOW_SMTP_URL", format!("smtp://mailer:{SMTP_URL_PASSWORD}@127.0.0.1:9")),
        ("TABFLOW_SMTP_PASSWORD", SMTP_PASSWORD.into()),
        ("TABFLOW_NOTIFY_FROM", "tabflow@example.com".into()),
        ("TABFLOW_NOTIFY_WEBHOOK", format!("http://127.0.0.1:9/hooks/{WEBHOOK_PATH}")),
        ("TABFLOW_NOTIFY_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn run(home: &Path, base: &[(String, String)], args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.args(args).env("TABFLOW_HOME", home).stdin(std::process::Stdio::null());
    for (k, v) in base {
        c.env(k, v);
    }
    for (k, v) in env {
        if v.is_empty() {
            c.env_remove(k);
        } else {
            c.env(k, v);
        }
    }
    c.output().unwrap()
}

/// Every file under `dir` that contains `needle` (bytes, so the SQLite store's rows count).
pub fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

struct Case {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// The exit code, or 0 for "1, 2 or 3".
    code: i32,
    /// A part of the error message.
    needle: &'static str,
}

fn case(args: &[&str], code: i32, needle: &'static str) -> Case {
    Case { args: args.iter().map(|s| s.to_string()).collect(), env: vec![], code, needle }
}

fn case_env(args: &[&str], env: &[(&'static str, &str)], code: i32, needle: &'static str) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        code,
        needle,
    }
}

#[test]
fn forty_kinds_of_bad_input_each_one_clear_error_and_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let emu = serve_with(&["--pat-secret", PAT]);
    let base = planted_env(&emu);
    let f = |name: &str, content: &[u8]| {
        let p = files.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    };

    // A good plan to tamper with, made against the emulator (reads only).
    let good = files.join("good.json");
    let o = run(
        &home,
        &base,
        &["plan", "archive stale workbooks in Finance", "--answer", "q1=archive-all", "-o", good.to_str().unwrap()],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let good_text = std::fs::read_to_string(&good).unwrap();
    let tampered = f("tampered.json", good_text.replacen("Finance", "Finance2", 1).as_bytes());
    let half: String = good_text.chars().take(good_text.chars().count() / 2).collect();
    let truncated = f("truncated.json", half.as_bytes());
    let other_store = dir.path().join("other.db");
    // A plan made on another copy of the site (the built-in demo site, same store).
    let demo_plan = files.join("demo-plan.json");
    let o = run(
        &home,
        &base,
        &[
            "plan",
            "archive stale workbooks in Finance",
            "--answer",
            "q1=archive-all",
            "-o",
            demo_plan.to_str().unwrap(),
        ],
        &[("TABLEAU_SERVER", "")],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));

    let bad_policy_ttl = f("ttl.toml", b"approval_ttl_hours = 9223372036854775807\n");
    let bad_policy_grace = f("grace.toml", b"grace_days = -1\n");
    let bad_policy_grace_huge = f("grace2.toml", b"grace_days = 100000000000000\n");
    let bad_policy_syntax = f("syntax.toml", format!("protected_tags = [\"x\"\nnote = {PAT}\n").as_bytes());
    let bad_policy_key = f("key.toml", b"protected_tag = [\"legal-hold\"]\n");
    let bad_config_syntax = f(
        "c1.toml",
        format!("[profiles.prod]\nserver = \"{}\"\npat_name = \"tabflow\"\npat_secret = {CONFIG_SECRET}\n", emu.1)
            .as_bytes(),
    );
    let bad_config_type = f(
        "c2.toml",
        format!("[profiles.prod]\nserver = \"{}\"\npat_name = \"tabflow\"\npat_secret = \"{CONFIG_SECRET}\"\nconcurrency = \"{CONFIG_SECRET}\"\n", emu.1)
            .as_bytes(),
    );
    let bad_config_rate = f(
        "c3.toml",
        format!("[profiles.prod]\nserver = \"{}\"\npat_name = \"tabflow\"\npat_secret = \"{CONFIG_SECRET}\"\nrate_limit_per_s = 1e-30\n", emu.1)
            .as_bytes(),
    );
    let wrong_config_secret = f(
        "c4.toml",
        format!("[profiles.prod]\nserver = \"{}\"\nsite = \"demo\"\npat_name = \"tabflow\"\npat_secret = \"{CONFIG_SECRET}\"\n", emu.1)
            .as_bytes(),
    );
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let garbage = f("garbage.bin", &garbage);
    let wrong_format = f("wrong.json", b"{\"format\": \"something-else/9\"}");
    let not_json = f("notjson.json", "\u{1b}[2J\u{202e}{{{ not json".as_bytes());
    let deep_json = f("deep.json", "[".repeat(100_000).as_bytes());
    let out = files.join("out.json").display().to_string();
    let long_request = format!("archive {PAT} ").repeat(120);
    let hostile_long = "\u{202e}\u{1b}[31m丸".repeat(700);
    let pg = format!("postgres://tabflow:{PG_PASSWORD}@127.0.0.1:9/tabflow");
    // Files larger than tabflow reads (sparse: no disk is used), refused before parsing.
    let sparse = |name: &str, len: u64| {
        let p = files.join(name);
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        p.display().to_string()
    };
    let huge_plan = sparse("huge-plan.json", (256 << 20) + 1);
    let huge_snapshot = sparse("huge-snapshot.json", (4 << 30) + 1);

    let cases: Vec<Case> = vec![
        // Numbers out of range (flags).
        case(&["plan", "archive stale workbooks", "--rate-limit", "1e-30"], 2, "--rate-limit"),
        case(&["plan", "archive stale workbooks", "--rate-limit", "NaN"], 2, "--rate-limit"),
        case(&["plan", "archive stale workbooks", "--rate-limit", "inf"], 2, "--rate-limit"),
        case(&["plan", "archive stale workbooks", "--rate-limit", "0"], 2, "out of range"),
        case(&["plan", "archive stale workbooks", "--rate-limit=-5"], 2, "out of range"),
        case(&["plan", "archive stale workbooks", "--rate-limit", "lots"], 2, "invalid value"),
        case(&["plan", "archive stale workbooks", "--concurrency", "0"], 2, "--concurrency"),
        case(&["plan", "archive stale workbooks", "--concurrency", "18446744073709551615"], 2, "--concurrency"),
        case(&["emulator", "generate", "--scale", "4000000000", "-o", &out], 2, "--scale"),
        case(&["emulator", "serve", "--session-minutes", "99999999999999"], 2, "--session-minutes"),
        case(&["emulator", "serve", "--session-minutes", "0"], 2, "--session-minutes"),
        case(&["emulator", "serve", "--error-rate", "NaN"], 2, "--error-rate"),
        case(&["usage", "show", "--stale-days", "9999999999999"], 2, "--stale-days"),
        case(&["usage", "show", "--stale-days=-3"], 2, "--stale-days"),
        // Policy files.
        case(&["plan", "archive stale workbooks", "--policy", &bad_policy_ttl], 1, "approval_ttl_hours"),
        case(&["plan", "archive stale workbooks", "--policy", &bad_policy_grace], 1, "grace_days"),
        case(&["plan", "archive stale workbooks", "--policy", &bad_policy_grace_huge], 1, "grace_days"),
        case(&["plan", "archive stale workbooks", "--policy", &bad_policy_syntax], 1, "line 2"),
        case(&["plan", "archive stale workbooks", "--policy", &bad_policy_key], 1, "protected_tag"),
        case(&["plan", "archive stale workbooks", "--policy", "/nonexistent/policy.toml"], 2, "does not exist"),
        // Config files and profiles.
        case(&["site", "snapshot", "--profile", "prod", "--config", &bad_config_syntax, "-o", &out], 2, "line 4"),
        case(&["site", "snapshot", "--profile", "prod", "--config", &bad_config_type, "-o", &out], 2, "concurrency"),
        case(
            &["site", "snapshot", "--profile", "prod", "--config", &bad_config_rate, "-o", &out],
            2,
            "rate_limit_per_s",
        ),
        case(&["site", "snapshot", "--profile", "dev", "--config", &wrong_config_secret, "-o", &out], 2, "no profile"),
        case(
            &["site", "snapshot", "--profile", "prod", "--config", "/nonexistent/c.toml", "-o", &out],
            2,
            "config file",
        ),
        case(&["site", "snapshot", "--profile", "prod", "--config", &wrong_config_secret, "-o", &out], 1, "401"),
        // Credentials and servers.
        case_env(&["site", "snapshot", "-o", &out], &[("TABLEAU_PAT_SECRET", "PLANTED-wrong-secret-00")], 1, "401"),
        case_env(
            &["site", "snapshot", "-o", &out],
            &[("TABLEAU_PAT_SECRET", ""), ("TABLEAU_PAT_NAME", "")],
            2,
            "no credentials",
        ),
        case(&["site", "snapshot", "--server", "http://127.0.0.1:9", "-o", &out], 1, "cannot reach"),
        case(&["site", "snapshot", "--server", "tableau.example.com", "-o", &out], 1, "needs a scheme"),
        case(
            &["site", "snapshot", "--server", &format!("https://admin:{PAT}@127.0.0.1:9"), "-o", &out],
            1,
            "user name or password",
        ),
        case(&["runs", "list", "--store", &pg], 1, "***"),
        // Unknown names and malformed flags.
        case(&["plan", "--intent", "archive-stale"], 2, "did you mean archive-stale-content"),
        case(&["plan", "--intent", "archive-stale-content", "--param", "stale_days=ninety"], 2, "stale_days"),
        case(&["plan", "archive stale workbooks", "--answer", "q1"], 2, "ID=CHOICE"),
        case(
            &["plan", "archive stale workbooks", "--report", &files.join("r.pdf").display().to_string()],
            2,
            "report format",
        ),
        case(&["plan", "archive stale workbooks", "--no-such-flag"], 2, "unexpected argument"),
        case(&["frobnicate"], 2, "unrecognized subcommand"),
        case(&["audit", "export", "--format", "xml"], 2, "invalid value"),
        case(&["runs", "show", "r-does-not-exist"], 1, "no run"),
        case(&["runs", "rollback", "r-does-not-exist"], 1, "no run"),
        case(&["query", &format!("how many workbooks are in \u{1b}[2J{PAT}\u{202e}?")], 1, "no project named"),
        // Requests: oversize, hostile bytes.
        case(&["plan", &long_request], 2, "at most 2000"),
        case(&["plan", &hostile_long], 2, "at most 2000"),
        case(&["plan", ""], 2, "the request is empty"),
        case(&["ask", " \u{1}\u{1b}\u{202e}\t\r\n"], 2, "the request is empty"),
        // Plan and snapshot files.
        case(&["apply", "/nonexistent/plan.json"], 2, "neither a plan file nor a plan id"),
        case(&["apply", &tampered, "--yes"], 1, "fingerprint"),
        case(&["apply", &truncated, "--yes"], 1, "plan file"),
        case(&["apply", &garbage, "--yes"], 1, "not a plan"),
        case(&["apply", &not_json, "--yes"], 1, "plan file"),
        case(&["apply", &deep_json, "--yes"], 1, "plan file"),
        case(
            &["apply", good.to_str().unwrap(), "--yes", "--store", other_store.to_str().unwrap()],
            1,
            "another tabflow store",
        ),
        case(&["apply", demo_plan.to_str().unwrap(), "--yes"], 1, "was made for site"),
        case(&["site", "diff", &garbage, &garbage], 1, "snapshot"),
        case(&["site", "diff", &wrong_format, &wrong_format], 1, "unsupported snapshot format"),
        case(&["site", "diff", &deep_json, &deep_json], 1, "snapshot"),
        case(&["emulator", "serve", "--snapshot", &not_json], 1, "snapshot"),
        // Oversize files: refused by their size, before a byte is parsed.
        case(&["apply", &huge_plan, "--yes"], 1, "refused before it is parsed"),
        case(&["emulator", "serve", "--snapshot", &huge_snapshot], 1, "refused before it is parsed"),
        // Listening where other machines can reach, without saying so.
        case(&["emulator", "serve", "--bind", "0.0.0.0"], 0, "--allow-remote"),
        case(&["serve", "--listen", "0.0.0.0:0"], 2, "not a loopback address"),
        case(&["serve", "--listen", "localhost:port"], 2, "is not an address"),
        // Notification and model settings (read before anything runs).
        case_env(
            &["apply", good.to_str().unwrap(), "--yes"],
            &[("TABFLOW_NOTIFY_WEBHOOK_FORMAT", "xml")],
            2,
            "not a webhook format",
        ),
        case_env(&["apply", good.to_str().unwrap(), "--yes"], &[("TABFLOW_NOTIFY_FROM", "")], 2, "TABFLOW_NOTIFY_FROM"),
        case_env(
            &["apply", good.to_str().unwrap(), "--yes"],
            &[("TABFLOW_SMTP_TIMEOUT_SECS", "-1")],
            2,
            "not a number of seconds",
        ),
        case_env(
            &["plan", "archive stale workbooks", "--llm"],
            &[("TABFLOW_LLM_URL", "llm.example.com:8080")],
            2,
            "TABFLOW_LLM_URL",
        ),
        // Intent parameters out of range or malformed.
        case(&["plan", "--intent", "archive-stale-content", "--param", "stale_days=99999999999"], 2, "stale_days"),
        case(&["plan", "--intent", "archive-stale-content", "--param", "since=2026-13-45"], 2, "since"),
        case(&["plan", "--intent", "archive-stale-content", "--param", "stale_days"], 2, "K=V"),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = c.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let o = run(&home, &base, &args, &env);
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        let shown: Vec<String> = args.iter().map(|a| a.chars().take(80).collect()).collect();
        let code = o.status.code();
        assert_ne!(code, Some(101), "{shown:?} panicked: {err}");
        match c.code {
            0 => assert!(matches!(code, Some(1..=3)), "{shown:?}: exit {code:?}: {err}"),
            n => assert_eq!(code, Some(n), "{shown:?}: {err}"),
        }
        assert!(err.contains("error:") && err.contains(c.needle), "{shown:?}: {err}");
        assert!(err.contains("hint:"), "{shown:?}: no hint: {err}");
        assert!(!out.contains("PLANTED") && !err.contains("PLANTED"), "{shown:?}: a planted secret shown: {err}{out}");
        // Whatever came from the input is shown escaped, never as raw control characters.
        assert!(!err.contains('\u{1b}') && !err.contains('\u{202e}'), "{shown:?}: raw control characters: {err}");
    }
    // Nothing was written on the site, and no file of the data directory holds a secret.
    assert_eq!(stats(&emu)["writes"], 0, "a bad input wrote to the site");
    let leaked = files_containing(&home, "PLANTED");
    assert!(leaked.is_empty(), "planted secrets in {leaked:?}");
}

#[test]
fn a_secret_planted_in_every_channel_reaches_no_output_file_or_store_row() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let emu = serve_with(&["--pat-secret", PAT]);
    let base = planted_env(&emu);
    let plan = dir.path().join("plan.json");
    let p = plan.to_str().unwrap();
    let report_csv = home.join("plan-report.csv");
    std::fs::create_dir_all(&home).unwrap();
    let mut printed = String::new();
    let mut go = |args: &[&str], ok: bool| {
        let o = run(&home, &base, args, &[]);
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        assert_ne!(o.status.code(), Some(101), "{} panicked: {err}", args[0]);
        if ok {
            assert!(o.status.success(), "{}: {err}", args[0]);
        }
        // (The arguments themselves hold planted secrets: only what came back is collected.)
        printed.push_str(&format!("$ {}\n{out}{err}", args[0]));
    };
    // The secret pasted into a request: redacted before the plan (and the store) see it.
    go(&["plan", &format!("archive stale workbooks in Finance, my token is {PAT}"), "--json"], false);
    go(
        &[
            "plan",
            "archive stale workbooks in Finance",
            "--answer",
            "q1=archive-all",
            "-o",
            p,
            "--report",
            report_csv.to_str().unwrap(),
        ],
        true,
    );
    // A run: notifications to the planted SMTP server and webhook fail and are kept.
    go(&["apply", p, "--approve", "all"], false);
    go(&["runs", "list"], true);
    go(&["runs", "list", "--json"], true);
    go(&["audit", "export", "--format", "csv", "-o", home.join("audit.csv").to_str().unwrap()], true);
    go(&["audit", "export", "--format", "json"], true);
    go(&["outbox", "list"], false);
    go(&["outbox", "list", "--json"], false);
    go(&["plan", "archive stale workbooks in Finance", "--llm"], false);
    // A config file's secret (refused by the server: the error must not quote it) and a
    // store URL's password given as a flag.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[profiles.prod]\nserver = \"{}\"\nsite = \"demo\"\npat_name = \"tabflow\"\npat_secret = \"{CONFIG_SECRET}\"\n", emu.1),
    )
    .unwrap();
    let snap = home.join("snap.json");
    go(
        &["site", "snapshot", "--profile", "prod", "--config", config.to_str().unwrap(), "-o", snap.to_str().unwrap()],
        false,
    );
    go(&["runs", "list", "--store", &format!("postgres://tabflow:{PG_PASSWORD}@127.0.0.1:9/tabflow")], false);
    let n = printed.matches("PLANTED").count();
    assert_eq!(n, 0, "planted secrets printed:\n{printed}");
    let leaked = files_containing(&home, "PLANTED");
    assert!(leaked.is_empty(), "planted secrets in {leaked:?}");
    // Everything tabflow wrote is its owner's only (the test made `home` itself).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut stack = vec![home.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
    }
    // The run did write (the test is not vacuous): reports exist and the audit log has rows.
    assert!(std::fs::read_dir(home.join("reports")).map(|d| d.count()).unwrap_or(0) >= 4, "{printed}");
    assert!(std::fs::read_to_string(home.join("audit.csv")).unwrap().lines().count() > 2);
}

#[test]
fn plain_http_webhook_and_model_urls_to_another_machine_are_warned_about_without_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let emu = serve_with(&["--pat-secret", PAT]);
    let mut base = planted_env(&emu);
    base.retain(|(k, _)| k != "TABFLOW_NOTIFY_WEBHOOK" && k != "TABFLOW_LLM_URL");
    let webhook = ("TABFLOW_NOTIFY_WEBHOOK", format!("http://hooks.invalid:8080/services/{WEBHOOK_PATH}"));
    let model = ("TABFLOW_LLM_URL", format!("http://llm.invalid/v1?key={LLM_URL_KEY}"));
    let env = [(webhook.0, webhook.1.as_str()), (model.0, model.1.as_str())];
    let warning = |err: &str, what: &str| err.lines().filter(|l| l.starts_with("warning:") && l.contains(what)).count();

    // A command that reads the notification settings (it fails afterwards: no such plan).
    let o = run(&home, &base, &["apply", "/nonexistent/plan.json"], &env);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        warning(&err, "the webhook (TABFLOW_NOTIFY_WEBHOOK) (http://hooks.invalid:8080/…) is plain http://"),
        1,
        "{err}"
    );
    assert_eq!(warning(&err, "TABFLOW_LLM_URL"), 0, "the model is not used here: {err}");
    // A plan with --llm (the model cannot be reached: the rules plan it, and say so).
    let o = run(&home, &base, &["plan", "archive stale workbooks in Finance", "--llm"], &env);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_ne!(o.status.code(), Some(101), "{err}");
    assert_eq!(warning(&err, "the model URL (TABFLOW_LLM_URL) (http://llm.invalid/…) is plain http://"), 1, "{err}");
    assert!(!out.contains("PLANTED") && !err.contains("PLANTED"), "a secret of a URL was quoted: {err}{out}");
    // https:// and this machine are not warned about.
    let quiet =
        [("TABFLOW_NOTIFY_WEBHOOK", "https://hooks.invalid/services/x"), ("TABFLOW_LLM_URL", "http://localhost:9/v1")];
    let o = run(&home, &base, &["plan", "archive stale workbooks in Finance", "--llm"], &quiet);
    let err = text(&o.stderr);
    assert!(!err.contains("plain http://"), "{err}");
    let o = run(&home, &base, &["apply", "/nonexistent/plan.json"], &quiet);
    assert!(!text(&o.stderr).contains("plain http://"), "{}", text(&o.stderr));
}
