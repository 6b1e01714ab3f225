//! The permission audit and the seed's compound request through the real binary on the demo
//! emulator: findings and recommended changes checked against the site snapshot, apply → diff
//! shows exactly the intended permission changes → rollback → diff empty; the compound
//! request's permission question, project locking, and notifications delivered to a local
//! webhook receiver with a verifiable HMAC signature (or kept in the outbox when none is set).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use hmac::{KeyInit, Mac};
use serde_json::Value;

use crate::support::*;

#[test]
fn sensitive_content_audit_apply_and_rollback() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, site) = snapshot(h, &emu, "before.json");

    // Independently: sensitive items (tag) whose own rules grant All Users anything, in
    // projects that are not locked.
    let all_users = site["groups"].as_array().unwrap().iter().find(|g| g["name"] == "All Users").unwrap()["id"].clone();
    let locked: BTreeSet<&str> = site["projects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["content_permissions"].as_str().unwrap().starts_with("LockedToProject"))
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let nested_locked = |pid: &str| {
        let mut cur = pid.to_string();
        loop {
            if locked.contains(cur.as_str()) {
                return true;
            }
            let parent = site["projects"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["id"] == cur.as_str())
                .and_then(|p| p["parent_id"].as_str().map(str::to_string));
            match parent {
                Some(x) => cur = x,
                None => return false,
            }
        }
    };
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for kind in ["workbooks", "datasources"] {
        for c in site[kind].as_array().unwrap() {
            let tagged = c["tags"].as_array().unwrap().iter().any(|t| t == "sensitive");
            if !tagged || nested_locked(c["project_id"].as_str().unwrap()) {
                continue;
            }
            let broad = site["permissions"].as_array().unwrap().iter().any(|r| {
                r["resource"]["id"] == c["id"]
                    && r["grantee"]["id"] == all_users
                    && r["capabilities"].as_object().unwrap().values().any(|m| m == "Allow")
            });
            if broad {
                expected.insert(c["id"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(!expected.is_empty(), "the demo site has sensitive content open to All Users");

    // Report only (default): findings, no write step, nothing changes.
    let o = run(h, &emu, &["plan", "--intent", "audit-permissions", "--param", "tags=sensitive", "--json"]);
    let plan = ok_json(&o, "plan");
    let audit = step(&plan, "audit-permissions").unwrap();
    let flagged: BTreeSet<String> = audit["details"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["finding"] == "all-users")
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(flagged, expected, "All Users findings differ from the snapshot's");
    assert!(step(&plan, "update-permissions").is_none());
    let q = &plan["questions"][0];
    assert!(q["text"].as_str().unwrap().contains("This will affect"), "{q}");

    // Apply the recommendation: exactly the All Users rules of those items go away.
    let plan_path = h.join("fix.json");
    let o = run(
        h,
        &emu,
        &[
            "plan",
            "--intent",
            "audit-permissions",
            "--param",
            "tags=sensitive",
            "--answer",
            "q1=revoke",
            "--json",
            "-o",
            plan_path.to_str().unwrap(),
        ],
    );
    let plan = ok_json(&o, "plan");
    let fix = step(&plan, "update-permissions").unwrap();
    let fixed: BTreeSet<String> =
        fix["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert!(expected.is_subset(&fixed), "{expected:?} not all in {fixed:?}");
    let r = ok_json(&run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    let (during_path, during) = snapshot(h, &emu, "during.json");
    for id in &expected {
        let still = during["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["resource"]["id"] == id.as_str() && p["grantee"]["id"] == all_users);
        assert!(!still, "All Users still granted on {id}");
    }
    let d = diff(h, &emu, &before_path, &during_path, &[]).1;
    assert_eq!(d["equal"], false);
    // Only permission rules changed.
    let changed: Vec<String> = d["changes"].as_array().unwrap().iter().map(|c| c.to_string()).collect();
    assert!(changed.iter().all(|c| c.contains("permission")), "unexpected changes: {changed:?}");

    let run_id = r["run_id"].as_str().unwrap();
    let o = run(h, &emu, &["runs", "rollback", run_id, "--yes", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (after_path, _) = snapshot(h, &emu, "after.json");
    let d = diff(h, &emu, &before_path, &after_path, &[]).1;
    assert_eq!(d["equal"], true, "rollback left differences: {d}");
}

/// A one-thread HTTP receiver: records (headers, body) of each POST and answers 200.
pub fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(vec![]));
    let sink = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            sink.lock().unwrap().push((head, String::from_utf8_lossy(&body).into_owned()));
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn the_compound_request_asks_how_locks_notifies_and_rolls_back() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, site) = snapshot(h, &emu, "before.json");
    let request =
        "Archive all unused workbooks from Q2, update permissions for remaining content, and notify project owners";

    // The permission update is not guessed: a question with the three concrete choices.
    let plan = ok_json(&run(h, &emu, &["plan", request, "--answer", "q1=archive-all", "--json"]), "plan");
    let intents: Vec<&str> = plan["intents"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(intents, ["archive-stale-content", "update-permissions", "notify-owners"]);
    let q = plan["questions"].as_array().unwrap().iter().find(|q| q["id"] == "q2").expect("a question on the update");
    let choices: Vec<&str> = q["choices"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(choices, ["reset-to-project-defaults", "lock-projects", "revoke-broad-grants"]);

    let plan_path = h.join("compound.json");
    let plan = ok_json(
        &run(
            h,
            &emu,
            &[
                "plan",
                request,
                "--answer",
                "q1=archive-all",
                "--answer",
                "q2=lock-projects",
                "--json",
                "-o",
                plan_path.to_str().unwrap(),
            ],
        ),
        "plan",
    );
    let archive = step(&plan, "archive-workbooks").unwrap();
    let lock = step(&plan, "update-permissions").unwrap();
    let notify = step(&plan, "notify-owners").unwrap();
    // The update depends on the archive and covers what remains: no archived workbook's
    // project is locked only because of it.
    assert!(lock["depends_on"].as_array().unwrap().iter().any(|d| d == &archive["id"]));
    assert!(notify["depends_on"].as_array().unwrap().iter().any(|d| d == &lock["id"]));
    let archived: BTreeSet<&str> =
        archive["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    let to_lock: BTreeSet<&str> = lock["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    for p in &to_lock {
        let holds_remaining = ["workbooks", "datasources"].iter().any(|k| {
            site[*k]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["project_id"] == *p && !archived.contains(c["id"].as_str().unwrap()))
        });
        assert!(holds_remaining, "project {p} holds no remaining content but is locked");
    }

    // Apply with a webhook: every recipient gets a signed message.
    let (url, got) = receiver();
    let secret = "whsec-test-9f2";
    let o = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"])
        .env("TABFLOW_NOTIFY_WEBHOOK", &url)
        .env("TABFLOW_NOTIFY_WEBHOOK_SECRET", secret)
        .output()
        .unwrap();
    let r = ok_json(&o, "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    let recipients = notify["items"].as_array().unwrap().len();
    assert!(recipients > 0);
    assert_eq!(r["notifications"]["sent"], recipients as u64, "{r}");
    let got = got.lock().unwrap().clone();
    // The owners' messages, and the run's own events (run-started, run-finished).
    let kind = |body: &str| serde_json::from_str::<Value>(body).unwrap()["type"].as_str().unwrap().to_string();
    let mut events: Vec<String> = got.iter().map(|(_, b)| kind(b)).filter(|k| k != "notification").collect();
    events.sort();
    assert_eq!(events, ["run-finished", "run-started"], "{got:?}");
    assert_eq!(got.len(), recipients + 2);
    for (head, body) in &got {
        let sig = head
            .lines()
            .find_map(|l| l.strip_prefix("x-tabflow-signature: ").or_else(|| l.strip_prefix("X-Tabflow-Signature: ")))
            .unwrap_or_else(|| panic!("no signature header in {head}"))
            .trim();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sig, format!("sha256={want}"));
        assert!(!head.contains(secret) && !body.contains(secret), "the secret was sent");
        let msg: Value = serde_json::from_str(body).unwrap();
        if msg["type"] != "run-started" {
            assert!(msg["body"].as_str().unwrap().contains("tabflow runs rollback"), "{msg}");
        }
    }
    let outbox = ok_json(&run(h, &emu, &["outbox", "list", "--json"]), "outbox");
    assert!(outbox.as_array().unwrap().iter().all(|m| m["status"] == "sent"), "{outbox}");

    // The projects are locked on the site; rollback restores everything exactly.
    let (during_path, during) = snapshot(h, &emu, "during.json");
    for p in &to_lock {
        let now = during["projects"].as_array().unwrap().iter().find(|x| x["id"] == *p).unwrap();
        assert_eq!(now["content_permissions"], "LockedToProject");
    }
    assert_eq!(diff(h, &emu, &before_path, &during_path, &[]).1["equal"], false);
    let o = run(h, &emu, &["runs", "rollback", r["run_id"].as_str().unwrap(), "--yes", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (after_path, _) = snapshot(h, &emu, "after.json");
    let d = diff(h, &emu, &before_path, &after_path, &[]).1;
    assert_eq!(d["equal"], true, "rollback left differences: {d}");
}

#[test]
fn offboarding_tells_the_new_and_previous_owners_and_keeps_it_in_the_outbox() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plan_path = h.join("off.json");
    let plan = ok_json(
        &run(
            h,
            &emu,
            &[
                "plan",
                "--intent",
                "offboard-user",
                "--param",
                "user=jsmith",
                "--param",
                "new_owner=Tom Baker",
                "--json",
                "-o",
                plan_path.to_str().unwrap(),
            ],
        ),
        "plan",
    );
    let moved = step(&plan, "transfer-ownership").unwrap()["items"].as_array().unwrap().len();
    let r = ok_json(&run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
    assert_eq!(r["notifications"]["dry"], 2, "{r}");
    let outbox =
        ok_json(&run(h, &emu, &["outbox", "list", "--json", "--run", r["run_id"].as_str().unwrap()]), "outbox");
    let rows = outbox.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let to_new = rows.iter().find(|m| m["recipient_name"] == "Tom Baker").expect("a message to the new owner");
    assert_eq!(to_new["status"], "dry");
    assert!(to_new["subject"].as_str().unwrap().contains(&format!("you now own {moved} items")), "{to_new}");
    let to_old = rows.iter().find(|m| m["recipient_name"] == "John Smith").expect("a message to the previous owner");
    assert!(to_old["body"].as_str().unwrap().contains("→ Tom Baker"), "{to_old}");
    // Resuming or re-reading never sends twice: the run is finished, the outbox unchanged.
    let again = ok_json(&run(h, &emu, &["outbox", "list", "--json"]), "outbox");
    assert_eq!(again.as_array().unwrap().len(), 2);
}

#[test]
fn a_recurring_review_is_stored_once_when_the_plan_is_applied() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plan_path = h.join("review.json");
    let plan = ok_json(
        &run(
            h,
            &emu,
            &[
                "plan",
                "--intent",
                "audit-permissions",
                "--param",
                "tags=sensitive",
                "--param",
                "schedule=monthly",
                "--answer",
                "q1=report-only",
                "--json",
                "-o",
                plan_path.to_str().unwrap(),
            ],
        ),
        "plan",
    );
    assert!(step(&plan, "schedule-review").is_some());
    assert!(step(&plan, "update-permissions").is_none(), "report-only must not plan changes");
    // Planning stores nothing.
    let none = ok_json(&run(h, &emu, &["schedule", "list", "--json"]), "schedule list");
    assert_eq!(none.as_array().unwrap().len(), 0);
    let s0 = state(&emu);
    let r = ok_json(&run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--json"]), "apply");
    assert_eq!(r["status"], "scheduled", "{r}");
    let again = ok_json(&run(h, &emu, &["apply", plan_path.to_str().unwrap(), "--json"]), "apply again");
    // The review is stored once; applying the plan again writes the access report (a run
    // that changes nothing, recorded in the audit log).
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["reports"].as_array().map(Vec::len), Some(4), "{again}");
    assert_eq!(state(&emu), s0, "storing a review changed the site");
    let rows = ok_json(&run(h, &emu, &["schedule", "list", "--json"]), "schedule list");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["cadence"], "monthly");
    assert_eq!(rows[0]["intent"]["name"], "audit-permissions");
    assert!(rows[0]["intent"]["params"].get("schedule").is_none());
    let id = rows[0]["id"].as_str().unwrap();
    assert!(run(h, &emu, &["schedule", "remove", id]).status.success());
    let o = run(h, &emu, &["schedule", "remove", id]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}
