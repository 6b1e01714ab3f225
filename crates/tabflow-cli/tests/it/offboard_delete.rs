//! Offboarding that deletes the leaver's account (`DELETE /users/{id}?mapAssetsTo=…`), through
//! the real binary against `tabflow emulator serve`: asked first, planned after the hand-over,
//! refused while the account owns anything, and undone by re-creating the account (new id)
//! with its groups, site role, grants, subscriptions and favorites.

use serde_json::Value;

use crate::support::*;

const DELETE: &str = "offboard-user user=jsmith new_owner=Tom_Baker delete_user=true";

fn owned_by<'a>(s: &'a Value, kind: &str, owner: &str) -> Vec<&'a str> {
    let mut v: Vec<&str> = s[kind]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["owner_id"] == owner)
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    v.sort();
    v
}

fn favorites_of(s: &Value, user: &str) -> Vec<String> {
    let mut v: Vec<String> = s["favorites"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["user_id"] == user)
        .map(|f| format!("{}:{}", f["label"], f["content"]["id"]))
        .collect();
    v.sort();
    v
}

/// The ids of the data alerts `user` receives.
fn alerts_received(s: &Value, user: &str) -> Vec<String> {
    let mut v: Vec<String> = s["data_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["recipients"].as_array().is_some_and(|r| r.iter().any(|r| r == user)))
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn the_account_is_deleted_after_the_hand_over_and_a_rollback_recreates_it() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s = state(&emu);
    let old = user_id(&s, "jsmith");
    let tom = user_id(&s, "tbaker");
    // A favorite, so that the undo has one to put back.
    let fav_wb = s["workbooks"].as_array().unwrap().iter().find(|w| w["owner_id"] != old.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = rest(
        &emu,
        "PUT",
        &format!("favorites/{old}"),
        &format!(r#"<tsRequest><favorite label="Board pack"><workbook id="{fav_wb}"/></favorite></tsRequest>"#),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let s0 = state(&emu);
    let (before, _) = snapshot(h, &emu, "before.json");

    // Asked first; nothing is deleted without the answer.
    let (_, asked) = plan_file(h, &emu, DELETE, &[]);
    assert_eq!(asked["questions"][0]["choices"], serde_json::json!(["delete", "unlicense"]), "{asked}");
    assert!(!asked["steps"].as_array().unwrap().iter().any(|s| s["kind"] == "delete-user"));

    let (path, plan) = plan_file(h, &emu, DELETE, &["q1=delete"]);
    let steps = plan["steps"].as_array().unwrap();
    let del = steps.last().unwrap();
    assert_eq!(del["kind"], "delete-user", "{plan}");
    assert_eq!(del["rollback"], "lossy");
    assert_eq!(del["changes"][0]["after_id"], tom.as_str(), "mapAssetsTo is the new owner");
    assert!(plan["validation"]["ok"].as_bool().unwrap(), "{}", plan["validation"]);
    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "succeeded", "{r}");

    // Gone, and everything it owned went where the plan said (alerts and webhooks, which
    // Tableau cannot re-own, went with mapAssetsTo).
    let s1 = state(&emu);
    assert!(!s1["users"].as_array().unwrap().iter().any(|u| u["name"] == "jsmith"));
    for kind in ["workbooks", "datasources", "projects", "data_alerts", "webhooks"] {
        let had = owned_by(&s0, kind, &old);
        let now_tom = owned_by(&s1, kind, &tom);
        assert!(had.iter().all(|id| now_tom.contains(id)), "{kind}: {had:?} not all with Tom");
    }
    let lost_owner = owned_by(&s0, "data_alerts", &old).len() + owned_by(&s0, "webhooks", &old).len();

    // Rollback: the account comes back under a new id, with what it had.
    let o = run(h, &emu, &["runs", "rollback", r["run_id"].as_str().unwrap(), "--yes", "--json"]);
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), text(&o.stdout));
    let rb: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rb["status"], "rolled-back", "{rb}");
    assert_eq!(rb["not_restored"], serde_json::json!([]), "{rb}");
    let s2 = state(&emu);
    let new = user_id(&s2, "jsmith");
    assert_ne!(new, old, "Tableau gives a re-created account a new id");
    assert_eq!(rb["recreated"][0]["item_id"], old.as_str(), "{rb}");
    assert!(rb["recreated"][0]["reason"].as_str().unwrap().contains(&format!("new id {new}")), "{rb}");
    let md = rb["reports"].as_array().unwrap().iter().find(|r| r["format"] == "md").unwrap();
    let md = std::fs::read_to_string(md["path"].as_str().unwrap()).unwrap();
    assert!(md.contains(&format!("re-created with a new id {new}")), "the report says so");
    let u0 = s0["users"].as_array().unwrap().iter().find(|u| u["id"] == old.as_str()).unwrap();
    let u2 = s2["users"].as_array().unwrap().iter().find(|u| u["id"] == new.as_str()).unwrap();
    for f in ["name", "full_name", "email", "site_role"] {
        assert_eq!(u0[f], u2[f], "{f}");
    }
    assert_eq!(favorites_of(&s2, &new), favorites_of(&s0, &old));
    let received = alerts_received(&s0, &old);
    assert!(!received.is_empty(), "the demo's jsmith receives data alerts: {s0}");
    assert_eq!(alerts_received(&s2, &new), received, "the re-created account receives the same alerts");
    assert!(!favorites_of(&s0, &old).is_empty());

    // The whole site, with the re-created account compared as the old one: only what the
    // plan said cannot be restored differs.
    let (after, _) = snapshot(h, &emu, "after.json");
    let (code, _) = diff(h, &emu, &before, &after, &[]);
    assert_eq!(code, Some(1), "without matching, the new id shows");
    let (code, d) = diff(h, &emu, &before, &after, &["--match-recreated"]);
    // The re-created account is a recipient of the data alerts the old one received again
    // (`POST /dataAlerts/{id}/users`): no `recipients` difference is left.
    let changes: Vec<&Value> = d["changes"].as_array().unwrap().iter().collect();
    assert!(!changes.iter().any(|c| c["field"] == "recipients"), "{d}");
    assert_eq!(changes.len(), lost_owner, "{d}");
    for c in changes {
        assert!(matches!(c["resource"].as_str(), Some("webhook" | "data-alert")), "{c}");
        assert_eq!(c["field"], "owner_id");
        assert_eq!(c["after"], tom.as_str());
    }
    let rec = d["recreated"].as_array().unwrap();
    assert!(
        rec.iter().any(|x| x["resource"] == "user" && x["before_id"] == old.as_str() && x["after_id"] == new.as_str()),
        "{d}"
    );
    if lost_owner == 0 {
        assert_eq!(code, Some(0));
    }
    let o = run(h, &emu, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    let o = run(h, &emu, &["audit", "export", "--format", "json"]);
    assert!(text(&o.stdout).contains(&format!("re-created with a new id {new}")));
}

#[test]
fn an_account_given_content_after_the_plan_is_refused_at_apply() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let s = state(&emu);
    let old = user_id(&s, "jsmith");
    let (path, plan) = plan_file(h, &emu, DELETE, &["q1=delete"]);
    let planned: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["items"].as_array().unwrap())
        .filter_map(|i| i["id"].as_str())
        .collect();
    // Meanwhile someone makes the leaver the owner of another workbook.
    let w = s["workbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["owner_id"] != old.as_str() && !planned.contains(&w["id"].as_str().unwrap()))
        .unwrap();
    let (wid, wname) = (w["id"].as_str().unwrap(), w["name"].as_str().unwrap());
    let r = rest(
        &emu,
        "PUT",
        &format!("workbooks/{wid}"),
        &format!(r#"<tsRequest><workbook><owner id="{old}"/></workbook></tsRequest>"#),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let mid = state(&emu);

    // Checked again at apply against the live site: refused before anything changes.
    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("still own 1 item") && err.contains(wname), "{err}");
    same(&state(&emu), &mid, "the site after the refused plan");
}
