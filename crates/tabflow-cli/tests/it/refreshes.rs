//! Extract refresh health (`review-extract-refreshes`) through the real binary against
//! `tabflow emulator serve`: the report plan changes nothing; `suspend-unused` plans exactly
//! the tasks of content unused for 90 days (computed here from the emulator's state), refuses
//! to run without an approval, deletes those and nothing else, and a rollback re-creates each
//! one on the same schedule (new ids).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::*;

fn tasks(s: &Value) -> Vec<Value> {
    s.get("extract_refreshes").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn ids(s: &Value) -> BTreeSet<String> {
    tasks(s).iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

/// What identifies a task apart from its id: content, schedule (or its own), type.
fn shapes(s: &Value) -> BTreeSet<String> {
    tasks(s)
        .iter()
        .map(|t| format!("{} {} {} {}", t["target"]["id"], t["schedule_id"], t["own_schedule"], t["type"]))
        .collect()
}

#[test]
fn refreshes_of_unused_content_are_deleted_and_a_rollback_recreates_them() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    // The planner's "now" is the moment it reads the site (the emulator's clock).
    let cutoff = chrono::Utc::now() - chrono::Duration::days(90);
    let old = |v: &Value| v.as_str().is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap() < cutoff);
    // Expected, from the emulator's state: a workbook with no view since the cutoff; a
    // datasource not accessed since then and with no workbook on it viewed since then.
    let workbooks = s0["workbooks"].as_array().unwrap();
    let last_view = |w: &Value| {
        w["views"].as_array().unwrap().iter().filter_map(|v| v["last_viewed_at"].as_str()).max().map(str::to_string)
    };
    let unused = |t: &Value| -> bool {
        let id = t["target"]["id"].as_str().unwrap();
        if t["target"]["type"] == "workbook" {
            let w = workbooks.iter().find(|w| w["id"] == id).unwrap();
            old(&Value::from(last_view(w))) && old(&w["created_at"])
        } else {
            let d = s0["datasources"].as_array().unwrap().iter().find(|d| d["id"] == id).unwrap();
            let via = workbooks
                .iter()
                .filter(|w| w["datasource_ids"].as_array().unwrap().iter().any(|x| x == id))
                .filter_map(last_view)
                .max();
            old(&d["last_accessed_at"]) && old(&Value::from(via)) && old(&d["created_at"])
        }
    };
    let want: BTreeSet<String> =
        tasks(&s0).iter().filter(|t| unused(t)).map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert!(want.len() >= 5, "the demo refreshes content nobody views: {want:?}");

    // The report: a read step with the findings; nothing to approve, nothing changes.
    let (_, report) = plan_file(h, &emu, "review-extract-refreshes", &[]);
    let find = step(&report, "find-extract-refreshes").expect("a read step");
    assert_eq!(find["effect"], "read");
    assert_eq!(find["details"]["counts"]["failing"], 4, "{}", find["details"]["counts"]);
    assert_eq!(find["details"]["counts"]["on_suspended_schedules"], 3);
    assert_eq!(find["details"]["counts"]["unused"], want.len());
    assert!(step(&report, "remove-extract-refreshes").is_none());

    let (path, plan) = plan_file(h, &emu, "review-extract-refreshes action=suspend-unused", &[]);
    let remove = step(&plan, "remove-extract-refreshes").expect("a removal step");
    assert_eq!(remove["effect"], "destructive");
    assert_eq!(remove["rollback"], "snapshot");
    let planned: BTreeSet<String> =
        remove["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(planned, want, "{plan}");
    assert!(plan["validation"]["ok"].as_bool().unwrap(), "{}", plan["validation"]);

    // Without an approval of the destructive step nothing runs.
    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--json"]);
    assert!(!o.status.success());
    assert_eq!(ids(&state(&emu)), ids(&s0), "nothing changed without an approval");

    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "succeeded", "{r}");
    let s1 = state(&emu);
    assert_eq!(ids(&s0).difference(&ids(&s1)).cloned().collect::<BTreeSet<_>>(), want, "exactly the planned ones went");

    // Rollback: each comes back under a new id, for the same content, schedule and type.
    let o = run(h, &emu, &["runs", "rollback", r["run_id"].as_str().unwrap(), "--yes", "--json"]);
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), text(&o.stdout));
    let s2 = state(&emu);
    assert_eq!(ids(&s2).len(), ids(&s0).len());
    assert_eq!(shapes(&s2), shapes(&s0), "every task is back as it was (new ids)");
    assert!(ids(&s2).is_disjoint(&want), "re-created tasks have new ids");
}
