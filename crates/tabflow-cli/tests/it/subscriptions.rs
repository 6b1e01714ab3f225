//! Subscription cleanup (`clean-subscriptions`) through the real binary against `tabflow
//! emulator serve`: the plan lists exactly the subscriptions of Unlicensed users, to archived
//! content and suspended ones (computed here from the emulator's state), the apply deletes
//! those and nothing else, and a rollback re-creates each one (new ids) so that `site diff
//! --match-recreated` finds the site as it was.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::*;

fn ids(s: &Value) -> BTreeSet<String> {
    s["subscriptions"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn subscriptions_nobody_receives_are_removed_and_a_rollback_recreates_them() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s0 = state(&emu);
    // Expected, from the emulator's own state: Unlicensed (or missing) subscribers, content
    // under the Archive (or quarantine) project or tagged as archived, suspended ones.
    let role = |id: &str| {
        s0["users"].as_array().unwrap().iter().find(|u| u["id"] == id).map(|u| u["site_role"].as_str().unwrap())
    };
    let project = |id: &str| s0["projects"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned();
    let under_archive = |mut pid: Value| {
        while let Some(p) = pid.as_str().and_then(project) {
            if p["name"] == "Archive" || p["name"] == "tabflow Quarantine" {
                return true;
            }
            pid = p["parent_id"].clone();
        }
        false
    };
    let archived = |cid: &str| {
        let w = s0["workbooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == cid || w["views"].as_array().unwrap().iter().any(|v| v["id"] == cid))
            .unwrap();
        under_archive(w["project_id"].clone())
            || w["tags"].as_array().unwrap().iter().any(|t| t == "archived-by-tabflow")
    };
    let want: BTreeSet<String> = s0["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            matches!(role(x["user_id"].as_str().unwrap()), None | Some("Unlicensed"))
                || x["suspended"] == true
                || archived(x["content"]["id"].as_str().unwrap())
        })
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert!(want.len() >= 3, "the demo has suspended subscriptions: {want:?}");
    let (before, _) = snapshot(h, &emu, "before.json");

    let (path, plan) = plan_file(h, &emu, "clean-subscriptions", &[]);
    let find = step(&plan, "find-subscriptions").expect("a read step");
    assert_eq!(find["effect"], "read");
    let remove = step(&plan, "remove-subscriptions").expect("a removal step");
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
    let left = ids(&s1);
    assert_eq!(ids(&s0).difference(&left).cloned().collect::<BTreeSet<_>>(), want, "exactly the planned ones went");

    // Rollback: each comes back under a new id, for the same user, content and subject.
    let o = run(h, &emu, &["runs", "rollback", r["run_id"].as_str().unwrap(), "--yes", "--json"]);
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), text(&o.stdout));
    let s2 = state(&emu);
    assert_eq!(ids(&s2).len(), ids(&s0).len());
    let (after, _) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before, &after, &["--match-recreated"]);
    // Suspended ones are re-created suspended, as they were.
    assert_eq!(code, Some(0), "the site is as it was: {d}");
}
