//! The site cache (issue #15) through the real binary: `--site-cache` keeps the views and
//! lineage of the last read in the store; the next plan reads the lists fresh, the views and
//! lineage only of workbooks updated since, and plans exactly what a plan without the cache
//! plans — also after the site changed under it. `--fresh` reads everything again.
use std::collections::BTreeSet;

use serde_json::Value;

use super::support::*;

const FINANCE: &str = "Clean up the Finance project - archive workbooks not accessed in 90 days";

/// `tabflow plan FINANCE --json` with `flags`: the plan and its site-cache note.
fn plan(home: &std::path::Path, emu: &Emu, flags: &[&str]) -> (Value, String) {
    let o = run(home, emu, &[&["plan", FINANCE, "--json"][..], flags].concat());
    let p = ok_json(&o, &format!("plan {flags:?}"));
    let note = p["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| n.starts_with("site cache:"))
        .unwrap_or("")
        .to_string();
    (p, note)
}

/// What a plan does: each step's kind, items and changes (ids and values, not the plan's own
/// ids or times).
fn what(p: &Value) -> Vec<(String, BTreeSet<String>, BTreeSet<String>)> {
    p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let items = s["items"].as_array().unwrap().iter().map(|i| i["id"].to_string()).collect();
            let changes = s["changes"]
                .as_array()
                .map(|c| {
                    c.iter().map(|c| format!("{}/{}/{}/{}", c["item"], c["field"], c["before"], c["after"])).collect()
                })
                .unwrap_or_default();
            (s["kind"].as_str().unwrap().to_string(), items, changes)
        })
        .collect()
}

fn calls(emu: &Emu, route_part: &str) -> u64 {
    let s = stats(emu);
    s["by_route"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains(route_part))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

/// (read again, dropped) from a note of a plan served by the cache.
fn counts(note: &str) -> (u64, u64) {
    let num = |before: &str| -> u64 {
        let head = note.split(before).next().unwrap();
        head.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no count before {before:?}: {note}"))
    };
    (num(" updated or new workbooks read again"), num(" no longer listed dropped"))
}

fn reset(emu: &Emu) {
    http(emu, "POST", "/_emulator/stats/reset", "");
}

#[test]
fn a_cached_plan_reads_less_plans_the_same_and_sees_what_changed_since() {
    let home = tempfile::tempdir().unwrap();
    let emu = serve();
    let home = home.path();

    // Without the cache: the baseline, and no note.
    let (base, note) = plan(home, &emu, &[]);
    assert_eq!(note, "", "no cache unless asked for");
    let archived: Vec<String> = step(&base, "archive-workbooks")
        .or_else(|| step(&base, "move-workbooks"))
        .map(|s| s["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();

    // The first plan with the cache fills it, reading as without it.
    reset(&emu);
    let (first, note) = plan(home, &emu, &["--site-cache"]);
    assert!(note.starts_with("site cache: read fresh (nothing cached"), "{note}");
    assert_eq!(what(&first), what(&base));
    let views_listed = calls(&emu, "/sites/{s}/views");
    assert!(views_listed > 0, "the first plan lists the views");

    // The second plan takes the views and lineage from the cache: no view list, no workbook
    // lineage query, the same plan.
    reset(&emu);
    let (second, note) = plan(home, &emu, &["--site-cache"]);
    assert!(note.starts_with("site cache: views and lineage of "), "{note}");
    // The workbooks updated within the clock margin of the newest one are read again.
    let (again, dropped) = counts(&note);
    assert_eq!(dropped, 0, "{note}");
    assert!(again < 5, "only the newest workbooks are read again: {note}");
    assert_eq!(calls(&emu, "/sites/{s}/views"), 0, "views came from the cache");
    assert_eq!(calls(&emu, "/workbooks/{id}/views"), again, "one view call per workbook read again");
    assert!(calls(&emu, "/sites/{s}/workbooks") > 0, "the workbook list is always read");
    assert!(calls(&emu, "/permissions") > 0, "permissions are never cached");
    assert_eq!(what(&second), what(&base), "the cached plan is the plan without the cache");

    // The site changes under the cache: a candidate is deleted, another is renamed (its
    // updatedAt moves, so its views and lineage are read again).
    assert!(archived.len() >= 2, "the demo's Finance cleanup archives several workbooks: {archived:?}");
    let r = rest(&emu, "DELETE", &format!("workbooks/{}", archived[0]), "");
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    rename_workbook(&emu, &archived[1], "Renamed under the cache");
    reset(&emu);
    let (third, note) = plan(home, &emu, &["--site-cache"]);
    let (again3, dropped) = counts(&note);
    assert_eq!(dropped, 1, "the deleted workbook is dropped: {note}");
    assert!(again3 > again || again3 >= 1, "the renamed workbook is read again: {note}");
    assert_eq!(calls(&emu, "/workbooks/{id}/views"), again3);
    let (now_uncached, _) = plan(home, &emu, &[]);
    assert_eq!(what(&third), what(&now_uncached), "after changes the cached plan is still the uncached one");
    let third_items = serde_json::to_string(&third["steps"]).unwrap();
    assert!(!third_items.contains(&archived[0]), "a deleted workbook is not planned from the cache");
    assert!(third_items.contains("Renamed under the cache"), "the new name is read");

    // --fresh reads everything and replaces the cache.
    reset(&emu);
    let (fresh, note) = plan(home, &emu, &["--site-cache", "--fresh"]);
    assert_eq!(note, "site cache: read fresh (--fresh); kept for the next plan");
    assert!(calls(&emu, "/sites/{s}/views") > 0);
    assert_eq!(what(&fresh), what(&now_uncached));
}
