//! Tableau Prep flows end to end through the real binary against `tabflow emulator serve`:
//! offboarding a leaver who owns a flow hands it over (the diff shows exactly the planned
//! owner changes) and a rollback restores the site; a new owner without a Creator license
//! gets everything but the flow, and the plan says why.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::*;

fn flows_of(site: &Value, owner: &str) -> BTreeSet<String> {
    site["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["owner_id"] == owner)
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn offboarding_hands_over_flows_and_a_rollback_restores_them() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, before, summary) = snapshot_with(h, &emu, "before.json", &["--no-usage"]);
    assert!(summary.contains(" flows, "), "the summary counts flows: {summary}");
    let john = user_id(&before, "jsmith");
    let tom = user_id(&before, "tbaker");
    let johns_flows = flows_of(&before, &john);
    assert!(!johns_flows.is_empty(), "the demo's leaver owns a flow: {}", before["flows"]);

    let (plan_path, plan) =
        plan_file(h, &emu, "offboard-user user=jsmith new_owner=Tom_Baker remove_access=false", &[]);
    assert_eq!(plan["validation"]["ok"], true, "{}", plan["validation"]);
    let inventory = step(&plan, "inventory-user").unwrap();
    let listed: BTreeSet<String> = inventory["details"]["owned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["type"] == "flow")
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, johns_flows, "the inventory lists the leaver's flows");
    let transfer = step(&plan, "transfer-ownership").unwrap();
    let planned_flows: BTreeSet<String> = transfer["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "flow")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned_flows, johns_flows);
    let planned: BTreeSet<String> =
        transfer["changes"].as_array().unwrap().iter().map(|c| c["item"].as_str().unwrap().to_string()).collect();

    let o = run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), text(&o.stdout));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "succeeded", "{r}");

    let (during_path, during) = snapshot(h, &emu, "during.json");
    assert!(flows_of(&during, &john).is_empty(), "the leaver owns no flow any more");
    assert!(johns_flows.is_subset(&flows_of(&during, &tom)), "Tom Baker owns them now");
    // The diff is exactly the planned owner changes: one owner_id change per planned item.
    let (code, d) = diff(h, &emu, &before_path, &during_path, &[]);
    assert_eq!(code, Some(1));
    let changes = d["changes"].as_array().unwrap();
    for c in changes {
        assert_eq!((c["kind"].as_str(), c["field"].as_str()), (Some("changed"), Some("owner_id")), "{c}");
        assert_eq!((c["before"].as_str(), c["after"].as_str()), (Some(john.as_str()), Some(tom.as_str())), "{c}");
    }
    let changed: BTreeSet<String> = changes.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(changed, planned, "exactly the planned items changed");
    assert_eq!(changes.len(), planned.len());
    let flow_changes = changes.iter().filter(|c| c["resource"] == "flow").count();
    assert_eq!(flow_changes, johns_flows.len());

    // Rollback: the site equals the one before.
    let o = run(h, &emu, &["runs", "rollback", r["run_id"].as_str().unwrap(), "--yes", "--json"]);
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), text(&o.stdout));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "rolled-back", "{v}");
    let (after_path, after) = snapshot(h, &emu, "after.json");
    let (code, d) = diff(h, &emu, &before_path, &after_path, &[]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)), "rollback left differences: {d}");
    assert_eq!(flows_of(&after, &john), johns_flows);
}

#[test]
fn an_explorer_as_new_owner_gets_no_flow_and_the_plan_says_why() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let site = state(&emu);
    let john = user_id(&site, "jsmith");
    let doe = site["users"].as_array().unwrap().iter().find(|u| u["name"] == "jdoe").unwrap();
    assert_eq!(doe["site_role"], "Explorer");
    let flow_id = flows_of(&site, &john).into_iter().next().expect("the leaver owns a flow");
    let flow = site["flows"].as_array().unwrap().iter().find(|f| f["id"] == flow_id.as_str()).unwrap();

    let (plan_path, plan) = plan_file(h, &emu, "offboard-user user=jsmith new_owner=jdoe", &[]);
    let transfer = step(&plan, "transfer-ownership").unwrap();
    assert!(!transfer["items"].as_array().unwrap().iter().any(|i| i["type"] == "flow"), "{transfer}");
    assert!(!transfer["changes"].as_array().unwrap().iter().any(|c| c["item"] == flow_id.as_str()));
    let notes: Vec<&str> = plan["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let why = notes.iter().find(|n| n.contains("flows not transferred")).unwrap_or_else(|| panic!("{notes:?}"));
    assert!(why.contains(flow["name"].as_str().unwrap()) && why.contains("Creator license"), "{why}");
    assert_eq!(plan["validation"]["ok"], true, "{}", plan["validation"]);

    // Applying hands over the rest; the flow stays with its owner.
    let o = run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), text(&o.stdout));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "succeeded", "{r}");
    let now = state(&emu);
    assert!(flows_of(&now, &john).contains(&flow_id), "the flow was not handed to an Explorer");
    let doe_id = doe["id"].as_str().unwrap();
    assert!(now["workbooks"].as_array().unwrap().iter().any(|w| w["owner_id"] == doe_id), "the rest moved");
}
