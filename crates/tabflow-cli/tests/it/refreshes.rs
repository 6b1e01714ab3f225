//! Extract refresh health (`review-extract-refreshes`) through the real binary against
//! `tabflow emulator serve` (the demo site, Server-shaped: its tasks are on Server schedules):
//! the report plan changes nothing; `suspend-unused`, `rebalance`, `suspend-schedules` and
//! `resume-schedules` each plan exactly what the emulator's own state says they should
//! (computed here, apart from the planner), refuse to run without an approval where checked,
//! change that and nothing else, and a rollback puts the site back: `site diff
//! --match-recreated` against the snapshot taken before finds no difference (tasks Tableau
//! re-creates under new ids are matched and listed).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::*;

fn tasks(s: &Value) -> Vec<Value> {
    s.get("extract_refreshes").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn ids(s: &Value) -> BTreeSet<String> {
    tasks(s).iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

/// What identifies a task apart from its id: content, schedule (or its own), type, priority.
fn shapes(s: &Value) -> BTreeSet<String> {
    tasks(s)
        .iter()
        .map(|t| {
            format!("{} {} {} {} {}", t["target"]["id"], t["schedule_id"], t["own_schedule"], t["type"], t["priority"])
        })
        .collect()
}

fn schedule<'v>(s: &'v Value, id: &str) -> &'v Value {
    s["schedules"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap()
}

fn planned(step: &Value) -> BTreeSet<String> {
    step["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

/// The ids of the tasks of content unused for 90 days, from the emulator's state: a workbook
/// with no view since the cutoff; a datasource not accessed since then and with no workbook on
/// it viewed since then; either created before the cutoff.
fn unused_tasks(s0: &Value) -> BTreeSet<String> {
    // The planner's "now" is the moment it reads the site (the emulator's clock).
    let cutoff = chrono::Utc::now() - chrono::Duration::days(90);
    let old = |v: &Value| v.as_str().is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap() < cutoff);
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
    tasks(s0).iter().filter(|t| unused(t)).map(|t| t["id"].as_str().unwrap().to_string()).collect()
}

/// Applies the plan with every step approved; answers the run id.
fn apply_all(h: &Path, emu: &Emu, plan: &Path) -> String {
    let r = ok_json(&run(h, emu, &["apply", plan.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    r["run_id"].as_str().unwrap().to_string()
}

/// Rolls the run back (approved), snapshots the site and diffs it against `before` with
/// `--match-recreated`: there must be no difference. Answers the diff (its `recreated` list).
fn roll_back_to(h: &Path, emu: &Emu, run_id: &str, before: &Path) -> Value {
    let v = ok_json(&run(h, emu, &["runs", "rollback", run_id, "--yes", "--json"]), "rollback");
    assert_eq!(v["status"], "rolled-back", "{v}");
    let (after, _) = snapshot(h, emu, &format!("after-{run_id}.json"));
    let (code, d) = diff(h, emu, before, &after, &["--match-recreated"]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "the site is as it was: {d}");
    d
}

/// What `site diff --match-recreated` finds changed since `before`, as (resource, kind)
/// pairs: the change the run made shows, re-created ids or not.
fn changed_since(h: &Path, emu: &Emu, before: &Path) -> BTreeSet<(String, String)> {
    let (during, _) = snapshot(h, emu, &format!("during-{}.json", rand_suffix()));
    let (code, d) = diff(h, emu, before, &during, &["--match-recreated"]);
    assert_eq!(code, Some(1), "{d}");
    d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["resource"].as_str().unwrap().to_string(), c["kind"].as_str().unwrap().to_string()))
        .collect()
}

fn recreated_tasks(d: &Value) -> BTreeSet<String> {
    d["recreated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resource"] == "extract-refresh")
        .map(|r| r["before_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn refreshes_of_unused_content_are_deleted_and_a_rollback_recreates_them() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    let (before, _) = snapshot(h, &emu, "before.json");
    let want = unused_tasks(&s0);
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

    let run_id = apply_all(h, &emu, &path);
    let s1 = state(&emu);
    assert_eq!(ids(&s0).difference(&ids(&s1)).cloned().collect::<BTreeSet<_>>(), want, "exactly the planned ones went");
    assert!(ids(&s1).is_subset(&ids(&s0)), "nothing was added");
    let pair = |r: &str, k: &str| (r.to_string(), k.to_string());
    assert_eq!(changed_since(h, &emu, &before), [pair("extract-refresh", "removed")].into());

    // Rollback: each comes back under a new id, for the same content, schedule, type and
    // priority; the diff matches each to the one it replaces.
    let d = roll_back_to(h, &emu, &run_id, &before);
    let s2 = state(&emu);
    assert_eq!(ids(&s2).len(), ids(&s0).len());
    assert_eq!(shapes(&s2), shapes(&s0), "every task is back as it was (new ids)");
    assert!(ids(&s2).is_disjoint(&want), "re-created tasks have new ids");
    assert_eq!(recreated_tasks(&d), want, "the diff says which tasks it matched");
}

fn start_hour(s: &Value) -> u32 {
    s["start_time"].as_str().unwrap()[..2].parse().unwrap()
}

#[test]
fn rebalance_recreates_heavy_peak_server_refreshes_off_peak_and_a_rollback_puts_them_back() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    let (before, _) = snapshot(h, &emu, "before.json");
    // Expected, from the emulator's state: tasks on an active Server schedule that runs in
    // peak hours (hourly, or starting 07:00-18:59) whose successful runs take 15 minutes or
    // more on average, moving to the earliest active daily Extract schedule starting off-peak.
    let schedules = s0["schedules"].as_array().unwrap();
    let peak = |s: &Value| s["frequency"] == "Hourly" || (7..19).contains(&start_hour(s));
    let to = schedules
        .iter()
        .filter(|s| s["type"] == "Extract" && s["state"] == "Active" && s["frequency"] == "Daily" && !peak(s))
        .min_by_key(|s| start_hour(s))
        .expect("an off-peak schedule");
    let jobs = s0["refresh_jobs"].as_array().unwrap();
    let secs = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp();
    let heavy = |t: &Value| {
        let runs: Vec<i64> = jobs
            .iter()
            .filter(|j| j["task_id"] == t["id"] && j["finish_code"] == 0)
            .map(|j| secs(j["completed_at"].as_str().unwrap()) - secs(j["started_at"].as_str().unwrap()))
            .collect();
        !runs.is_empty() && runs.iter().sum::<i64>() / runs.len() as i64 >= 15 * 60
    };
    let on_to: BTreeSet<String> = tasks(&s0)
        .iter()
        .filter(|t| t["schedule_id"] == to["id"])
        .map(|t| t["target"]["id"].as_str().unwrap().to_string())
        .collect();
    let by_id = |id: &str| tasks(&s0).into_iter().find(|t| t["id"] == id).unwrap();
    let want: BTreeSet<String> = tasks(&s0)
        .iter()
        .filter(|t| t["schedule_id"].as_str().is_some_and(|s| !s.is_empty()))
        .filter(|t| {
            let s = schedule(&s0, t["schedule_id"].as_str().unwrap());
            s["state"] == "Active" && peak(s)
        })
        .filter(|t| heavy(t) && !on_to.contains(t["target"]["id"].as_str().unwrap()))
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!want.is_empty(), "the demo has heavy refreshes on peak-hour Server schedules");

    let (path, plan) = plan_file(h, &emu, "review-extract-refreshes action=rebalance", &[]);
    let mv = step(&plan, "move-extract-refreshes").expect("a move step");
    assert_eq!((mv["effect"].as_str(), mv["rollback"].as_str()), (Some("destructive"), Some("snapshot")));
    assert_eq!(planned(mv), want, "{plan}");
    assert!(mv["changes"].as_array().unwrap().iter().all(|c| c["after_id"] == to["id"]));
    assert!(plan["validation"]["ok"].as_bool().unwrap(), "{}", plan["validation"]);

    let run_id = apply_all(h, &emu, &path);
    let s1 = state(&emu);
    // The old tasks are gone; each content refreshes on the off-peak schedule instead, with
    // its type and priority; nothing else changed.
    assert!(ids(&s1).is_disjoint(&want));
    assert_eq!(ids(&s1).len(), ids(&s0).len());
    for id in &want {
        let old = by_id(id);
        let now: Vec<Value> = tasks(&s1)
            .into_iter()
            .filter(|t| t["target"]["id"] == old["target"]["id"] && !ids(&s0).contains(t["id"].as_str().unwrap()))
            .collect();
        assert_eq!(now.len(), 1, "{old}");
        assert_eq!(
            (&now[0]["schedule_id"], &now[0]["type"], &now[0]["priority"]),
            (&to["id"], &old["type"], &old["priority"])
        );
    }
    let kept: BTreeSet<String> = ids(&s0).difference(&want).cloned().collect();
    assert!(kept.is_subset(&ids(&s1)), "no other task was touched");
    let pair = |r: &str, k: &str| (r.to_string(), k.to_string());
    assert_eq!(
        changed_since(h, &emu, &before),
        [pair("extract-refresh", "added"), pair("extract-refresh", "removed")].into()
    );

    // Rollback: each is re-created on its old schedule (another new id) and the moved one
    // goes, found by the id the journal kept.
    let d = roll_back_to(h, &emu, &run_id, &before);
    let s2 = state(&emu);
    assert_eq!(shapes(&s2), shapes(&s0), "every task is back on its old schedule");
    assert_eq!(ids(&s2).len(), ids(&s0).len(), "the moved tasks are gone");
    assert_eq!(recreated_tasks(&d), want);
}

#[test]
fn suspend_schedules_suspends_the_schedule_of_only_unused_refreshes_and_a_rollback_resumes_it() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    let (before, _) = snapshot(h, &emu, "before.json");
    // Expected: active Extract schedules with tasks, every one of them of unused content.
    let unused = unused_tasks(&s0);
    let on = |s: &Value| -> Vec<String> {
        tasks(&s0)
            .iter()
            .filter(|t| t["schedule_id"] == s["id"])
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    let want: BTreeSet<String> = s0["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["type"] == "Extract" && s["state"] == "Active")
        .filter(|s| !on(s).is_empty() && on(s).iter().all(|t| unused.contains(t)))
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(want.len(), 1, "the demo has one schedule of unused refreshes only");

    let (path, plan) = plan_file(h, &emu, "review-extract-refreshes action=suspend-schedules", &[]);
    let st = step(&plan, "set-schedule-state").expect("a schedule step");
    assert_eq!((st["effect"].as_str(), st["rollback"].as_str()), (Some("destructive"), Some("exact")));
    assert_eq!(planned(st), want, "{plan}");
    let id = want.iter().next().unwrap();
    // Server-wide, said plainly, with this site's count.
    let n = on(schedule(&s0, id)).len();
    let notes: Vec<&str> = plan["notes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        notes.iter().any(|x| x.contains("server-wide")
            && x.contains("every site")
            && x.contains(&format!("{n} on this site"))
            && x.contains("not visible")),
        "{notes:?}"
    );

    // Without an approval nothing changes.
    assert!(!run(h, &emu, &["apply", path.to_str().unwrap(), "--json"]).status.success());
    assert_eq!(schedule(&state(&emu), id)["state"], "Active");

    let run_id = apply_all(h, &emu, &path);
    let s1 = state(&emu);
    assert_eq!(schedule(&s1, id)["state"], "Suspended");
    let others = |s: &Value| -> Vec<(Value, Value)> {
        s["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["id"] != id.as_str())
            .map(|x| (x["id"].clone(), x["state"].clone()))
            .collect()
    };
    assert_eq!(others(&s1), others(&s0), "no other schedule changed");
    assert_eq!(shapes(&s1), shapes(&s0), "no task changed");
    assert_eq!(changed_since(h, &emu, &before), [("schedule".to_string(), "changed".to_string())].into());

    roll_back_to(h, &emu, &run_id, &before);
    assert_eq!(schedule(&state(&emu), id)["state"], "Active");
}

#[test]
fn resume_schedules_resumes_the_suspended_schedule_of_used_refreshes_and_a_rollback_suspends_it_again() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    let (before, _) = snapshot(h, &emu, "before.json");
    let unused = unused_tasks(&s0);
    let want: BTreeSet<String> = s0["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["type"] == "Extract" && s["state"] == "Suspended")
        .filter(|s| {
            tasks(&s0).iter().any(|t| t["schedule_id"] == s["id"] && !unused.contains(t["id"].as_str().unwrap()))
        })
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(want.len(), 1, "the demo's suspended schedule holds refreshes of used content");

    let (path, plan) = plan_file(h, &emu, "review-extract-refreshes action=resume-schedules", &[]);
    let st = step(&plan, "set-schedule-state").expect("a schedule step");
    assert_eq!(planned(st), want, "{plan}");
    let id = want.iter().next().unwrap();
    assert_eq!(
        (&st["changes"][0]["before"], &st["changes"][0]["after"]),
        (&Value::from("Suspended"), &Value::from("Active"))
    );
    let notes = plan["notes"].to_string();
    assert!(notes.contains("server-wide") && notes.contains("restarts"), "{notes}");

    let run_id = apply_all(h, &emu, &path);
    assert_eq!(schedule(&state(&emu), id)["state"], "Active");
    assert_eq!(changed_since(h, &emu, &before), [("schedule".to_string(), "changed".to_string())].into());
    roll_back_to(h, &emu, &run_id, &before);
    assert_eq!(schedule(&state(&emu), id)["state"], "Suspended");
}
