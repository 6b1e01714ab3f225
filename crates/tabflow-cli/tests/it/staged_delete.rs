//! The staged delete (`delete-content`) end to end through the real binary against
//! `tabflow emulator serve`: quarantine first (exactly the planned workbooks move and are
//! tagged, each with a backup), nothing is purged before the grace period, a rollback within it
//! restores the site exactly; after the purge only what is still in quarantine is deleted, and
//! a rollback re-publishes the purged workbooks from their saved files with their owners,
//! tags, permissions and subscriptions (new ids, which `site diff --match-recreated` maps); a
//! purged datasource comes back as a `.tdsx` with its extract.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::*;

const DELETE: &str = "delete-content project=Finance stale_days=90";

fn by_id<'v>(site: &'v Value, list: &str, id: &str) -> Option<&'v Value> {
    site[list].as_array().unwrap().iter().find(|x| x["id"] == id)
}

/// Plans and applies the staged delete of Finance's stale workbooks; answers the planned
/// workbook ids, the run id and the quarantine project's name.
pub(crate) fn stage(h: &Path, emu: &Emu) -> (BTreeSet<String>, String, Value) {
    let (plan_path, plan) = plan_file(h, emu, DELETE, &["q1=delete-all"]);
    assert_eq!(plan["validation"]["ok"], true, "{}", plan["validation"]);
    let staging = step(&plan, "stage-delete").unwrap_or_else(|| {
        panic!("no stage-delete step: {plan}");
    });
    assert_eq!(staging["effect"], "destructive");
    let planned: BTreeSet<String> =
        staging["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert!(planned.len() > 5, "the demo's Finance has stale workbooks: {planned:?}");
    let o = run(h, emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]);
    let r = ok_json(&o, "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["staged"]["items"], planned.len(), "the run says what waits in quarantine: {r}");
    (planned, r["run_id"].as_str().unwrap().to_string(), plan)
}

#[test]
fn quarantine_changes_exactly_the_planned_items_nothing_is_purged_early_and_rollback_is_exact() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, before) = snapshot(h, &emu, "before.json");
    let (planned, run_id, _) = stage(h, &emu);

    let (during_path, during) = snapshot(h, &emu, "during.json");
    let quarantine = during["projects"].as_array().unwrap().iter().find(|p| p["name"] == "tabflow Quarantine").unwrap();
    let qid = quarantine["id"].as_str().unwrap();
    assert_eq!(quarantine["content_permissions"], "LockedToProject", "{quarantine}");
    for id in &planned {
        let w = by_id(&during, "workbooks", id).expect("still on the site during the grace period");
        assert_eq!(w["project_id"], qid, "{w}");
        let tags: Vec<&str> = w["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert!(tags.contains(&"deleted-by-tabflow"), "{tags:?}");
    }
    // The diff names only the planned workbooks (moved, tagged, their grants replaced by the
    // locked project's) and the new quarantine project with its defaults.
    let (code, d) = diff(h, &emu, &before_path, &during_path, &[]);
    assert_eq!(code, Some(1));
    only_moved_and_tagged(&d, &planned, qid);

    // The report says what was staged and when it is purged.
    let md = h.join("run.md");
    let o = run(h, &emu, &["runs", "report", &run_id, "-o", md.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report = std::fs::read_to_string(&md).unwrap();
    assert!(report.contains("staged delete"), "{report}");

    // Within the grace period a purge deletes nothing, and says when each one is due.
    let p = ok_json(&run(h, &emu, &["runs", "purge", "--yes", "--json"]), "purge");
    assert_eq!(p["purged"], serde_json::json!([]), "{p}");
    assert_eq!(p["waiting"].as_array().unwrap().len(), planned.len(), "{p}");
    let (_, still) = snapshot(h, &emu, "still.json");
    for id in &planned {
        assert!(by_id(&still, "workbooks", id).is_some());
    }

    // Rollback: the site is as before, exactly.
    let v = ok_json(&run(h, &emu, &["runs", "rollback", &run_id, "--yes", "--json"]), "rollback");
    assert_eq!(v["status"], "rolled-back", "{v}");
    let (after_path, _) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &[]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "rollback left differences: {d}");
    // Nothing is left staged: a forced purge now deletes nothing.
    let p = ok_json(&run(h, &emu, &["runs", "purge", "--yes", "--now", "--json"]), "purge --now");
    assert_eq!(p["purged"], serde_json::json!([]), "{p}");
    let _ = before;
}

#[test]
fn purge_spares_what_was_taken_back_and_a_rollback_republishes_the_purged_from_backups() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, before) = snapshot(h, &emu, "before.json");
    let (planned, run_id, _) = stage(h, &emu);
    // What a restore must put back is there to be lost: subscriptions on the workbooks or
    // their views, descriptions, hidden tabs with view-level grants, explicit grants, tags.
    let wbs: Vec<&Value> = planned.iter().map(|id| by_id(&before, "workbooks", id).unwrap()).collect();
    let view_ids: BTreeSet<&str> =
        wbs.iter().flat_map(|w| w["views"].as_array().unwrap()).map(|v| v["id"].as_str().unwrap()).collect();
    let on = |id: &str| planned.contains(id) || view_ids.contains(id);
    let subs = before["subscriptions"].as_array().unwrap().iter().filter(|s| on(s["content"]["id"].as_str().unwrap()));
    assert!(subs.count() >= 2, "subscriptions on the staged workbooks");
    let rules: Vec<&Value> = before["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| on(r["resource"]["id"].as_str().unwrap()))
        .collect();
    assert!(rules.iter().any(|r| r["resource"]["type"] == "workbook"), "explicit grants");
    assert!(rules.iter().any(|r| r["resource"]["type"] == "view"), "view-level grants (tabs hidden)");
    assert!(wbs.iter().any(|w| !w["description"].as_str().unwrap_or_default().is_empty()), "descriptions");
    assert!(wbs.iter().any(|w| w["show_tabs"] == false), "hidden tabs");

    // Another administrator takes one workbook back out of quarantine before the purge.
    let rescued = planned.iter().next().unwrap().clone();
    let home_project = by_id(&before, "workbooks", &rescued).unwrap()["project_id"].as_str().unwrap().to_string();
    let r = rest(
        &emu,
        "PUT",
        &format!("workbooks/{rescued}"),
        &format!("<tsRequest><workbook><project id=\"{home_project}\"/></workbook></tsRequest>"),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");

    let p = ok_json(&run(h, &emu, &["runs", "purge", "--yes", "--now", "--json"]), "purge --now");
    let purged: Vec<&str> = p["purged"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    let kept: Vec<&str> = p["kept"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(purged.len(), planned.len() - 1, "{p}");
    assert_eq!(kept.len(), 1, "{p}");
    assert!(kept[0].contains(&rescued) && kept[0].contains("moved out of the quarantine project"), "{p}");
    let (_, gone) = snapshot(h, &emu, "purged.json");
    for id in &planned {
        assert_eq!(by_id(&gone, "workbooks", id).is_some(), *id == rescued, "{id}");
    }
    // The purge is in the audit log, and the chain still verifies.
    let csv = text(&run(h, &emu, &["audit", "export", "--format", "csv"]).stdout);
    assert_eq!(csv.lines().filter(|l| l.contains(",purge,")).count(), planned.len() - 1, "{csv}");
    assert!(run(h, &emu, &["audit", "verify"]).status.success());
    // A second purge finds nothing more to do.
    let p = ok_json(&run(h, &emu, &["runs", "purge", "--yes", "--now", "--json"]), "purge again");
    assert_eq!(p["purged"], serde_json::json!([]), "{p}");

    // Rollback: the purged workbooks come back from their saved files.
    let v = ok_json(&run(h, &emu, &["runs", "rollback", &run_id, "--yes", "--json"]), "rollback");
    assert_eq!(v["status"], "rolled-back", "{v}");
    let (after_path, after) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &[]);
    assert_eq!(code, Some(1), "new ids show without --match-recreated: {d}");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &["--match-recreated"]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "restore left differences: {d}");
    let recreated: BTreeSet<&str> = d["recreated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resource"] == "workbook")
        .map(|r| r["before_id"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = planned.iter().map(String::as_str).filter(|id| *id != rescued).collect();
    assert_eq!(recreated, expected, "every purged workbook is re-published, under a new id");
    assert!(by_id(&after, "workbooks", &rescued).is_some(), "the rescued workbook kept its id");
    // The rollback says which came back under new ids and what Tableau cannot restore.
    let notes = v["recreated"].as_array().unwrap();
    assert_eq!(notes.len(), planned.len() - 1, "{v}");
    assert!(notes.iter().all(|n| n["reason"].as_str().unwrap().contains("revisions, usage counts")), "{v}");
    // `runs show` gives each item's outcome by name.
    let shown = text(&run(h, &emu, &["runs", "show", &run_id]).stdout);
    let name = by_id(&before, "workbooks", planned.iter().find(|id| **id != rescued).unwrap()).unwrap()["name"].clone();
    assert!(
        shown.lines().any(|l| l.contains(&format!("{name}")) && l.contains("compensated: re-created as ")),
        "{shown}"
    );
    assert_eq!(shown.matches("re-created as ").count(), planned.len() - 1, "{shown}");
}

#[test]
fn a_purged_datasource_comes_back_with_its_extract_and_description() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, before) = snapshot(h, &emu, "before.json");
    let (plan_path, plan) = plan_file(h, &emu, "delete-content content=datasources stale_days=90", &["q1=delete-all"]);
    let staging = step(&plan, "stage-delete").unwrap();
    let ids: Vec<&str> = staging["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(!ids.is_empty(), "{plan}");
    let ds: Vec<&Value> = ids.iter().map(|id| by_id(&before, "datasources", id).unwrap()).collect();
    assert!(ds.iter().any(|d| d["has_extracts"] == true), "an extract to keep: {ds:?}");
    assert!(ds.iter().any(|d| !d["description"].as_str().unwrap_or_default().is_empty()), "{ds:?}");
    let r = ok_json(&run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    let p = ok_json(&run(h, &emu, &["runs", "purge", "--yes", "--now", "--json"]), "purge --now");
    assert_eq!(p["purged"].as_array().unwrap().len(), ids.len(), "{p}");
    let (_, gone) = snapshot(h, &emu, "gone.json");
    assert!(ids.iter().all(|id| by_id(&gone, "datasources", id).is_none()));

    let run_id = r["run_id"].as_str().unwrap();
    let v = ok_json(&run(h, &emu, &["runs", "rollback", run_id, "--yes", "--json"]), "rollback");
    assert_eq!(v["status"], "rolled-back", "{v}");
    let (after_path, _) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &["--match-recreated"]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "restore left differences: {d}");
    let back: BTreeSet<&str> = d["recreated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resource"] == "datasource")
        .map(|r| r["before_id"].as_str().unwrap())
        .collect();
    assert_eq!(back, ids.iter().copied().collect());
    // The purge took the datasources' refresh tasks with them; the restore re-created them
    // for the re-published datasources, on the same schedules (new ids, matched above).
    let refreshed: BTreeSet<&str> = before["extract_refreshes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| ids.contains(&t["target"]["id"].as_str().unwrap()))
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(!refreshed.is_empty(), "a purged datasource had a refresh task");
    let tasks_back: BTreeSet<&str> = d["recreated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resource"] == "extract-refresh")
        .map(|r| r["before_id"].as_str().unwrap())
        .collect();
    assert_eq!(tasks_back, refreshed);
}

#[test]
fn a_purge_connected_to_another_site_is_refused_and_deletes_nothing() {
    let (emu, other) = (serve(), serve());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (planned, _, _) = stage(h, &emu);
    // Same store, another server: the staged items were not made there.
    let before = stats(&other)["writes"].clone();
    let o = run(h, &other, &["runs", "purge", "--yes", "--now", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("were made on another site than the one connected to") && err.contains("hint:"), "{err}");
    assert!(err.contains("nothing was deleted"), "{err}");
    assert_eq!(stats(&other)["writes"], before, "nothing written on the other site");
    // On the site they came from, the purge goes ahead.
    let p = ok_json(&run(h, &emu, &["runs", "purge", "--yes", "--now", "--json"]), "purge");
    assert_eq!(p["purged"].as_array().unwrap().len(), planned.len(), "{p}");
    assert_eq!(p["other_site"], serde_json::json!([]), "{p}");
}
