//! The policy file through the real binary on the emulated demo site: protected projects and
//! tags, the blast radius and a malformed file (the number of distinct approvers is in
//! `approvals.rs`). Every refusal must change nothing on the site (checked against the
//! emulator's own state).

use std::path::Path;

use serde_json::Value;

use crate::support::*;

const ARCHIVE: &str = "archive-stale-content project=Finance stale_days=90";

fn with_policy(home: &Path, emu: &Emu, policy: &Path, actor: &str, args: &[&str]) -> std::process::Output {
    cmd(home, emu, args).env("TABFLOW_POLICY", policy).env("TABFLOW_ACTOR", actor).output().unwrap()
}

fn write_policy(home: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = home.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn errors(plan: &Value) -> Vec<String> {
    plan["validation"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "error")
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect()
}

/// `tabflow plan --json` for an intent under a policy; answers the printed plan and the exit code.
fn plan_under(home: &Path, emu: &Emu, policy: &Path, out: &Path) -> (Value, Option<i32>) {
    let mut args = vec!["plan", "--json", "-o", out.to_str().unwrap(), "--answer", "q1=archive-all"];
    let mut words = ARCHIVE.split(' ');
    args.extend(["--intent", words.next().unwrap()]);
    for p in words {
        args.extend(["--param", p]);
    }
    let o = with_policy(home, emu, policy, "alice", &args);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("plan --json printed no plan ({e}): {}\n{}", text(&o.stdout), text(&o.stderr)));
    (v, o.status.code())
}

#[test]
fn protected_projects_and_tags_and_the_blast_radius_refuse_the_plan_and_change_nothing() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);

    // Finance itself protected: every one of the 23 moves hits it.
    let pol = write_policy(h, "protect-project.toml", "protected_projects = [\"finance\"]\n");
    let out = h.join("p1.json");
    let (plan, code) = plan_under(h, &emu, &pol, &out);
    assert_ne!(code, Some(0), "a plan touching a protected project must not pass");
    assert!(!plan["validation"]["ok"].as_bool().unwrap());
    let errs = errors(&plan);
    assert!(errs.iter().any(|e| e.contains("protected project 'Finance'")), "{errs:?}");
    // Applying it anyway is refused by re-validation; nothing changes.
    if out.exists() {
        let o = with_policy(h, &emu, &pol, "alice", &["apply", out.to_str().unwrap(), "--approve", "all", "--json"]);
        assert_ne!(o.status.code(), Some(0), "{}", text(&o.stdout));
    }
    assert_eq!(state(&emu), s0, "a refused plan changed the site");

    // A protected tag on one of the candidates: that workbook is named.
    let (plan, _) = plan_under(h, &emu, &write_policy(h, "none.toml", ""), &h.join("p0.json"));
    let archive = step(&plan, "archive-workbooks").unwrap();
    let items = archive["items"].as_array().unwrap();
    assert_eq!(items.len(), 23);
    let (_, snapshot) = snapshot(h, &emu, "snap.json");
    // Pick a candidate that carries at least one tag on the site (computed from the snapshot).
    let tagged = items
        .iter()
        .find_map(|i| {
            let w = snapshot["workbooks"].as_array().unwrap().iter().find(|w| w["id"] == i["id"])?;
            let t = w["tags"].as_array()?.first()?.as_str()?.to_string();
            Some((i["name"].as_str().unwrap().to_string(), t))
        })
        .expect("at least one stale Finance workbook has a tag");
    let carriers = items
        .iter()
        .filter(|i| {
            snapshot["workbooks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["id"] == i["id"] && w["tags"].as_array().unwrap().iter().any(|t| t == &tagged.1))
        })
        .count();
    let pol = write_policy(h, "protect-tag.toml", &format!("protected_tags = [\"{}\"]\n", tagged.1.to_uppercase()));
    // Planning under the policy leaves those workbooks out, each with the reason.
    let (plan, code) = plan_under(h, &emu, &pol, &h.join("p2.json"));
    assert_eq!(code, Some(0), "{:?}", errors(&plan));
    let archive = step(&plan, "archive-workbooks").unwrap();
    assert_eq!(archive["items"].as_array().unwrap().len(), 23 - carriers);
    assert!(!archive["items"].as_array().unwrap().iter().any(|i| i["name"] == tagged.0.as_str()));
    let why = plan.to_string();
    assert!(why.contains(&format!("protected by policy (tag '{}')", tagged.1)), "no exclusion reason in {why}");
    // A plan made before the policy protected the tag is refused at apply (re-validation),
    // names the workbook, and changes nothing.
    let o = with_policy(h, &emu, &pol, "alice", &["apply", h.join("p0.json").to_str().unwrap(), "--approve", "all"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains(&format!("tagged '{}'", tagged.1)) && err.contains(&tagged.0), "{err}");
    assert_eq!(state(&emu), s0, "a refused plan changed the site");

    // Blast radius below 23.
    let pol = write_policy(h, "blast.toml", "max_items_per_destructive_step = 10\n");
    let (plan, code) = plan_under(h, &emu, &pol, &h.join("p3.json"));
    assert_ne!(code, Some(0));
    let errs = errors(&plan);
    assert!(errs.iter().any(|e| e.contains("changes 23 items") && e.contains("at most 10")), "{errs:?}");
    // At 23 the same plan passes.
    let pol = write_policy(h, "blast-ok.toml", "max_items_per_destructive_step = 23\n");
    let (plan, code) = plan_under(h, &emu, &pol, &h.join("p4.json"));
    assert_eq!(code, Some(0), "{:?}", errors(&plan));
    assert_eq!(state(&emu), s0, "planning changed the site");
}

#[test]
fn a_malformed_policy_file_is_refused_with_its_path_and_nothing_runs() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    for (name, body, needle) in [
        ("typo.toml", "protected_projets = [\"Finance\"]\n", "protected_projets"),
        ("type.toml", "max_items_per_destructive_step = \"ten\"\n", "max_items_per_destructive_step"),
        ("syntax.toml", "protected_projects = [\"Finance\"\n", "typo"),
    ] {
        let pol = write_policy(h, name, body);
        let o = with_policy(h, &emu, &pol, "alice", &["plan", "--intent", "archive-stale-content", "--json"]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(err.contains(name), "{name}: the message does not name the file: {err}");
        if needle != "typo" {
            assert!(err.contains(needle), "{name}: the message does not name the field: {err}");
        }
        assert!(o.stdout.is_empty(), "{name}: printed a plan anyway");
    }
    let o = with_policy(h, &emu, &h.join("missing.toml"), "alice", &["plan", "--intent", "archive-stale-content"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("missing.toml"), "{}", text(&o.stderr));
    assert_eq!(state(&emu), s0);
}

#[test]
fn an_unknown_intent_name_is_a_usage_error_listing_the_catalogue() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    let o = run(h, &emu, &["plan", "--intent", "archive-stale-contnet", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("'archive-stale-contnet' is not an intent") && err.contains("archive-stale-content"), "{err}");
    assert!(o.stdout.is_empty());
    assert_eq!(state(&emu), s0);
}
