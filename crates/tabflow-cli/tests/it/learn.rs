//! The learning system through the real binary against `tabflow emulator serve` (real HTTP):
//! an owner chosen in an approved offboarding is suggested first next time, with the reason;
//! `learn reset` brings back the planner's own suggestions; repeated answers become a
//! question's default; items removed from an approval are marked and listed last.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::{run, run_json, serve, snapshot, step, text};

/// item id → (new owner user name, reason) of the plan's transfer-ownership step.
fn transfers(plan: &Value) -> BTreeMap<String, (String, String)> {
    let transfer = step(plan, "transfer-ownership").unwrap_or_else(|| panic!("no transfer step: {plan}"));
    let reasons: BTreeMap<&str, &str> = transfer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["reason"].as_str().unwrap_or("")))
        .collect();
    transfer["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["field"] == "owner")
        .map(|c| {
            let id = c["item"].as_str().unwrap();
            (id.to_string(), (c["after"].as_str().unwrap().to_string(), reasons[id].to_string()))
        })
        .collect()
}

const OFFBOARD: [&str; 5] = ["plan", "--intent", "offboard-user", "--param", "user=jsmith"];

#[test]
fn a_chosen_owner_is_suggested_first_until_reset() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    // The oracle: what John Smith owns, his teams, and an owner the planner would not pick.
    let (_, site) = snapshot(h, &emu, "site.json");
    let users = site["users"].as_array().unwrap();
    let john = users.iter().find(|u| u["name"] == "jsmith").unwrap();
    let jid = john["id"].as_str().unwrap();
    let owned: BTreeSet<String> = ["workbooks", "datasources", "projects", "flows"]
        .iter()
        .flat_map(|k| site[*k].as_array().into_iter().flatten())
        .filter(|x| x["owner_id"] == jid)
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert!(owned.len() >= 10, "the demo's John Smith owns content: {}", owned.len());
    let project_name: BTreeMap<&str, &str> = site["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let content_projects: BTreeSet<&str> = ["workbooks", "datasources"]
        .iter()
        .flat_map(|k| site[*k].as_array().unwrap().iter())
        .filter(|x| x["owner_id"] == jid)
        .map(|x| project_name[x["project_id"].as_str().unwrap()])
        .collect();

    // Before: the planner's own suggestions, none of them learned.
    let before = transfers(&run_json(h, &emu, &[&OFFBOARD[..], &["--json"]].concat()));
    assert_eq!(before.keys().cloned().collect::<BTreeSet<_>>(), owned, "every item John owns is handed over");
    assert!(before.values().all(|(_, why)| !why.contains("chosen last time")), "{before:?}");
    let suggested: BTreeSet<&str> = before.values().map(|(o, _)| o.as_str()).collect();
    let can_own = |u: &&Value| {
        let role = u["site_role"].as_str().unwrap();
        role.starts_with("SiteAdministrator") || role == "Creator" || role == "ExplorerCanPublish"
    };
    let chosen = users
        .iter()
        .filter(can_own)
        .map(|u| u["name"].as_str().unwrap())
        .filter(|n| *n != "jsmith" && !suggested.contains(n))
        .min()
        .expect("someone else can own content");

    // The user overrides the suggestion, approves and runs.
    let plan_file = h.join("override.json");
    let p = run_json(
        h,
        &emu,
        &[&OFFBOARD[..], &["--param", &format!("new_owner={chosen}"), "-o", plan_file.to_str().unwrap(), "--json"]]
            .concat(),
    );
    assert!(transfers(&p).values().all(|(o, _)| o == chosen));
    let r = run_json(h, &emu, &["apply", plan_file.to_str().unwrap(), "--approve", "all", "--json"]);
    assert_eq!(r["status"], "succeeded", "{r}");

    // What was learned: the chosen owner for every project John's content was in.
    let learned = run_json(h, &emu, &["learn", "show", "--json"]);
    let by_project: BTreeMap<&str, &str> = learned["owners"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| Some((o["project"].as_str()?, o["new_owner"].as_str().unwrap())))
        .collect();
    for p in &content_projects {
        assert_eq!(by_project.get(p), Some(&chosen), "learned owner for {p}: {learned}");
    }
    assert!(learned["owners"].as_array().unwrap().iter().all(|o| o["source"] == "named"), "{learned}");

    // Undo the run so John owns his content again, then plan the same offboarding.
    let o = run(h, &emu, &["runs", "rollback", r["run_id"].as_str().unwrap(), "--yes"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after = transfers(&run_json(h, &emu, &[&OFFBOARD[..], &["--json"]].concat()));
    assert_eq!(after.keys().cloned().collect::<BTreeSet<_>>(), owned);
    for (item, (owner, why)) in &after {
        assert_eq!(owner, chosen, "{item} should go to the learned owner: {why}");
        assert!(why.contains("chosen last time for"), "the reason is stated: {why}");
    }
    // Content items name their project in the reason.
    let any_project = content_projects.iter().next().unwrap();
    assert!(after.values().any(|(_, why)| why.contains(&format!("chosen last time for {any_project}"))), "{after:?}");

    // Reset: back to the planner's own suggestions, item by item.
    let o = run(h, &emu, &["learn", "reset"]);
    assert!(o.status.success());
    let reset = transfers(&run_json(h, &emu, &[&OFFBOARD[..], &["--json"]].concat()));
    assert_eq!(reset, before, "after `learn reset` the suggestions are the original ones");
    let learned = run_json(h, &emu, &["learn", "show", "--json"]);
    assert_eq!(learned["records"].as_array().unwrap().len(), 0);
}

#[test]
fn repeated_answers_become_the_default_and_removed_items_are_marked() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let archive = ["plan", "--intent", "archive-stale-content", "--param", "project=Finance", "--json"];
    let question = |p: &Value| p["questions"].as_array().unwrap().first().cloned().unwrap_or(Value::Null);

    let first = run_json(h, &emu, &archive);
    let q = question(&first);
    assert_eq!(q["default"], "review", "the safe default before anything is learned: {q}");
    let qid = q["id"].as_str().unwrap().to_string();

    // Answered the same way twice (plan --answer) → that answer becomes the default.
    let answered = run_json(h, &emu, &[&archive[..], &["--answer", &format!("{qid}=archive-all")]].concat());
    assert_eq!(answered["answered"][0]["id"], qid.as_str());
    let once = question(&run_json(h, &emu, &archive));
    assert_eq!(once["default"], "review", "one answer is not yet a habit");
    run_json(h, &emu, &[&archive[..], &["--answer", &format!("{qid}=archive-all")]].concat());
    // A habit never replaces a safe default with one that writes: it is shown instead.
    let learned_q = question(&run_json(h, &emu, &archive));
    assert_eq!(learned_q["default"], "review", "{learned_q}");
    assert!(learned_q["text"].as_str().unwrap().contains("you answered 'archive-all' the last 2 times"), "{learned_q}");

    // Approve all but one item: that one is recorded as removed and marked next time.
    let plan_file = h.join("archive.json");
    let p = run_json(
        h,
        &emu,
        &[&archive[..], &["--answer", &format!("{qid}=archive-all"), "-o", plan_file.to_str().unwrap()]].concat(),
    );
    let moves = step(&p, "archive-workbooks").unwrap();
    let ids: Vec<&str> = moves["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids.len() >= 3, "{ids:?}");
    let left_out = ids[0];
    let approve = ids[1..].join(",");
    let r = run_json(h, &emu, &["apply", plan_file.to_str().unwrap(), "--approve", &approve, "--json"]);
    assert!(matches!(r["status"].as_str(), Some("partial" | "succeeded")), "{r}");
    let learned = run_json(h, &emu, &["learn", "show", "--json"]);
    let removed: Vec<&str> =
        learned["removed"].as_array().unwrap().iter().map(|x| x["item"].as_str().unwrap()).collect();
    assert_eq!(removed, vec![left_out], "{learned}");

    let again = run_json(h, &emu, &[&archive[..], &["--answer", &format!("{qid}=archive-all")]].concat());
    let moves = step(&again, "archive-workbooks").unwrap_or_else(|| panic!("{again}"));
    let last = moves["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["id"], left_out);
    assert!(last["reason"].as_str().unwrap().contains("you removed it from an approval"), "{last}");
}
