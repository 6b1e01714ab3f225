//! Reports of runs and plans, end to end on the demo emulator over real HTTP: an offboarding
//! run writes its Markdown, HTML, CSV and JSON reports; the CSV is valid RFC 4180 with one
//! row per transferred item and its outcome; the HTML escapes a hostile workbook name;
//! `runs report` renders the stored run again; `plan --report` writes a plan's report without
//! changing anything, and an unknown extension is a usage error.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::*;

const HOSTILE: &str = "Leads <script>&\"x\" report";

/// A small RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks;
/// records end with CRLF (or LF). Panics on a malformed file (a quote inside an unquoted field,
/// an unterminated quote), so a broken CSV fails the test.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (vec![], vec![], String::new());
    let (mut quoted, mut was_quoted) = (false, false);
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if quoted {
            match c {
                '"' if it.peek() == Some(&'"') => {
                    it.next();
                    cell.push('"');
                }
                '"' => {
                    quoted = false;
                    assert!(
                        matches!(it.peek(), None | Some(',') | Some('\r') | Some('\n')),
                        "text after a closing quote"
                    );
                }
                c => cell.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(cell.is_empty() && !was_quoted, "a quote inside an unquoted field: {cell:?}");
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                was_quoted = false;
            }
            '\r' => assert_eq!(it.peek(), Some(&'\n'), "a bare CR outside quotes"),
            '\n' => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
                was_quoted = false;
            }
            c => cell.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

#[test]
fn the_csv_reader_handles_rfc_4180() {
    let rows = parse_csv("a,\"b,\"\"c\"\"\",\"d\r\ne\"\r\n,,\r\n");
    assert_eq!(rows, vec![vec!["a", "b,\"c\"", "d\r\ne"], vec!["", "", ""]]);
}

/// Names of everything the emulator says `user` owns (workbooks, datasources, projects).
fn owned_by(state: &Value, user: &str) -> BTreeSet<String> {
    let uid = state["users"].as_array().unwrap().iter().find(|u| u["name"] == user).unwrap()["id"].clone();
    let mut out = BTreeSet::new();
    // `flows` is absent from a site without flows.
    for kind in ["workbooks", "datasources", "projects", "flows"] {
        for x in state[kind].as_array().into_iter().flatten() {
            if x["owner_id"] == uid {
                out.insert(x["name"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn an_offboarding_run_writes_four_reports_that_match_the_plan() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    // A workbook of the leaver gets a name that would break unescaped HTML.
    let before = state(&emu);
    let uid = before["users"].as_array().unwrap().iter().find(|u| u["name"] == "jsmith").unwrap()["id"].clone();
    let victim = before["workbooks"].as_array().unwrap().iter().find(|w| w["owner_id"] == uid).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    rename_workbook(&emu, &victim, HOSTILE);
    let original = state(&emu);
    let expected = owned_by(&original, "jsmith");
    assert!(expected.contains(HOSTILE) && expected.len() > 5, "{expected:?}");

    let (plan_path, plan) =
        plan_file(home, &emu, "offboard-user user=jsmith new_owner=Tom_Baker remove_access=true", &[]);
    let steps = plan["steps"].as_array().unwrap();
    let transfer = steps.iter().find(|s| s["kind"] == "transfer-ownership").unwrap();
    let transfer_id = transfer["id"].as_str().unwrap();
    let planned: BTreeSet<String> =
        transfer["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(planned, expected, "the plan transfers exactly what the emulator says jsmith owns");
    assert_eq!(state(&emu), original, "planning changed nothing");

    let o = run(home, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), text(&o.stdout));
    let result: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result["status"], "succeeded");
    let run_id = result["run_id"].as_str().unwrap();
    let reports = result["reports"].as_array().unwrap();
    let formats: Vec<&str> = reports.iter().map(|r| r["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["md", "html", "csv", "json"]);
    for r in reports {
        let p = Path::new(r["path"].as_str().unwrap());
        assert_eq!(p, home.join("reports").join(format!("{run_id}.{}", r["format"].as_str().unwrap())));
        assert!(p.exists(), "{}", p.display());
    }
    let path = |f: &str| home.join("reports").join(format!("{run_id}.{f}"));
    // The site really changed: the leaver owns nothing any more.
    assert!(owned_by(&state(&emu), "jsmith").is_empty());

    // CSV: a rectangular RFC 4180 table; one item row per transferred item, applied.
    let rows = parse_csv(&read(&path("csv")));
    let header = &rows[0];
    assert!(rows.iter().all(|r| r.len() == header.len()), "every record has {} fields", header.len());
    let col = |n: &str| header.iter().position(|h| h == n).unwrap_or_else(|| panic!("no column {n}"));
    let items: Vec<&Vec<String>> =
        rows.iter().filter(|r| r[col("section")] == "item" && r[col("step")] == transfer_id).collect();
    assert_eq!(items.len(), transfer["items"].as_array().unwrap().len());
    let names: BTreeSet<String> = items.iter().map(|r| r[col("name")].clone()).collect();
    assert_eq!(names, expected);
    for r in &items {
        assert_eq!(r[col("outcome")], "applied", "{r:?}");
        assert_eq!(r[col("changes")], "owner: jsmith → tbaker", "{r:?}");
    }
    // Each plan item's project and type come through.
    for i in transfer["items"].as_array().unwrap() {
        let r = items.iter().find(|r| r[col("item_id")] == i["id"].as_str().unwrap()).unwrap();
        assert_eq!(r[col("item_type")], i["type"].as_str().unwrap());
        assert_eq!(r[col("project")], i["project"].as_str().unwrap_or(""));
    }
    // The inventory's owned content is a details table with a row per owned item.
    let inventory = steps.iter().find(|s| s["kind"] == "inventory-user").unwrap();
    let owned_rows = rows.iter().filter(|r| r[col("section")] == "details:owned").count();
    assert_eq!(owned_rows, inventory["details"]["owned"].as_array().unwrap().len());
    // Access removal is one step per part (groups, grants, license), each with its user row.
    let removes: Vec<&str> =
        steps.iter().filter(|s| s["kind"] == "remove-access").map(|s| s["id"].as_str().unwrap()).collect();
    let user_changes: Vec<&String> = rows
        .iter()
        .filter(|r| r[col("section")] == "item" && removes.contains(&r[col("step")].as_str()))
        .map(|r| &r[col("changes")])
        .collect();
    assert!(user_changes.iter().any(|c| c.contains("site_role: Creator → Unlicensed")), "{user_changes:?}");
    assert!(user_changes.iter().any(|c| c.contains("groups: Marketing → (none)")), "{user_changes:?}");

    // JSON: parses, names the run, and agrees with the plan.
    let json_text = read(&path("json"));
    let report: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(report["format"], "tabflow-report/1");
    assert_eq!(report["run_id"], run_id);
    assert_eq!(report["plan_id"], plan["id"]);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["actor"], "test-operator");
    assert_eq!(report["impact"], plan["impact"]);
    assert_eq!(report["steps"].as_array().unwrap().len(), steps.len());

    // HTML: one section and one items table per step; the hostile name is escaped.
    let html = read(&path("html"));
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<section class=\"step\"").count(), steps.len());
    assert_eq!(html.matches("<table class=\"items\">").count(), steps.len());
    assert!(html.contains("Leads &lt;script&gt;&amp;&quot;x&quot; report"));
    assert!(!html.contains("<script"), "no raw <script> in the report");
    // Markdown: a heading per step, no raw HTML.
    let md = read(&path("md"));
    assert_eq!(md.matches("\n## s").count(), steps.len());
    assert!(md.contains("Leads \\<script\\>&amp;\"x\" report"), "the name is escaped in Markdown");
    assert!(!md.replace("\\<", "").contains('<'), "no unescaped '<' in the Markdown");

    // `runs report` renders the stored run again, identically.
    let o = run(home, &emu, &["runs", "report", run_id, "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), json_text);
    let o = run(home, &emu, &["runs", "report", run_id]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), md);

    // After a rollback the stored run's report says the items were restored.
    let o = run(home, &emu, &["runs", "rollback", run_id, "--yes", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Group membership is a set: re-adding the leaver puts them at the end of the list.
    let sorted = |mut v: Value| {
        for g in v["groups"].as_array_mut().unwrap() {
            g["members"].as_array_mut().unwrap().sort_by_key(|m| m.to_string());
        }
        v
    };
    same(&sorted(state(&emu)), &sorted(original.clone()), "rollback restores the site");
    let rows = parse_csv(&read(&path("csv")));
    let restored = rows
        .iter()
        .filter(|r| r[col("section")] == "item" && r[col("step")] == transfer_id && r[col("outcome")] == "restored");
    assert_eq!(restored.count(), expected.len());
}

#[test]
fn plan_report_writes_without_applying_and_refuses_unknown_formats() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let original = state(&emu);
    let html = home.join("offboard.html");
    let args = ["plan", "--intent", "offboard-user", "--param", "user=jsmith", "--param", "new_owner=Tom Baker"];
    let o = run(home, &emu, &[&args[..], &["--json", "--report", html.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let page = read(&html);
    assert!(page.contains("planned (not applied)"));
    let transfer = step(&plan, "transfer-ownership").unwrap();
    for i in transfer["items"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap().replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
        assert!(page.contains(&format!("<td>{name}</td>")), "{name} missing from the plan report");
    }
    assert_eq!(state(&emu), original, "a plan report changes nothing");

    let pdf = home.join("offboard.pdf");
    // Tableau API calls so far (the emulator's control routes do not count).
    let api_calls = || -> u64 {
        stats(&emu)["by_route"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.contains(" /api/"))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum()
    };
    let calls_before = api_calls();
    let o = run(home, &emu, &[&args[..], &["--report", pdf.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(".md, .html, .csv or .json"), "{}", text(&o.stderr));
    assert!(!pdf.exists());
    // Refused before connecting: not one Tableau call, nothing changed.
    assert_eq!(api_calls(), calls_before);
    assert_eq!(state(&emu), original);
    // No run was made by either command.
    let o = run(home, &emu, &["runs", "list", "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap(), serde_json::json!([]));
}
