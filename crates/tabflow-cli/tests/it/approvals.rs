//! Approvals bound to what a person saw and chose, through the real binary against
//! `tabflow emulator serve`: a plan file edited and re-sealed with the published (unkeyed)
//! algorithm, a plan sealed by another store or made on another copy of the site, a plan
//! saved under the id of an interrupted run's plan, (step, item) approvals, and two names at
//! one terminal. Every refusal is shown to change nothing on the site.

use std::path::Path;

use serde_json::Value;
use sha2::Digest;
use tabflow_engine::plan::{Plan, PlanKey};

use crate::support::*;

const ARCHIVE: &str = "archive-stale-content project=Finance stale_days=90";
const OFFBOARD: &str = "offboard-user user=jsmith new_owner=Tom_Baker delete_user=true";

/// The plan key of the store in `home`, read from its `kv` row as an insider with the store
/// file could.
fn store_key(home: &Path) -> PlanKey {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hex: String = rt.block_on(async {
        let url = format!("sqlite://{}", home.join("tabflow.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let v = sqlx::query_scalar("SELECT value FROM kv WHERE key = 'plan-key'").fetch_one(&pool).await.unwrap();
        pool.close().await;
        v
    });
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    PlanKey::new(bytes.try_into().unwrap())
}

/// Runs one SQL statement on the store in `home` (behind tabflow's back).
fn store_sql(home: &Path, sql: &str, binds: &[&str]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", home.join("tabflow.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
        for b in binds {
            q = q.bind(b.to_string());
        }
        q.execute(&pool).await.unwrap();
        pool.close().await;
    });
}

/// A plan file's JSON as a typed plan, without any check (the forger's view).
fn typed(v: &Value) -> Plan {
    serde_json::from_value(v.clone()).unwrap()
}

/// Re-seals a plan the way anyone could: the published, unkeyed SHA-256 of tabflow-plan/1
/// over the content (the canonical JSON tabflow documents).
fn reseal_unkeyed(p: &mut Plan) {
    p.fingerprint = format!("sha256:{}", tabflow_engine::plan::hex(&sha2::Sha256::digest(p.canonical().as_bytes())));
}

fn write(home: &Path, name: &str, p: &Plan) -> String {
    let path = home.join(name);
    std::fs::write(&path, p.to_json()).unwrap();
    path.to_str().unwrap().to_string()
}

/// `apply FILE --approve all --json` must fail with exit `code` and a message holding every
/// one of `needles`, and the site must be as before.
fn refused(home: &Path, emu: &Emu, file: &str, approve: &str, code: i32, needles: &[&str]) -> String {
    let before = state(emu);
    let o = run(home, emu, &["apply", file, "--approve", approve, "--json"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}\n{}", text(&o.stdout));
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
    same(&state(emu), &before, "the site after a refused plan");
    err
}

#[test]
fn a_destructive_step_relabelled_as_a_write_and_resealed_is_refused() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (_, plan) = plan_file(h, &emu, ARCHIVE, &["q1=archive-all"]);
    let s0 = state(&emu);
    let mut p = typed(&plan);
    let step = p.steps.iter_mut().find(|s| s.kind.as_str() == "archive-workbooks").unwrap();
    step.effect = tabflow_engine::plan::Effect::Write;
    let id = step.id.clone();

    // Re-sealed with the published algorithm: refused as not sealed by this store's key.
    reseal_unkeyed(&mut p);
    let file = write(h, "relabelled.json", &p);
    refused(h, &emu, &file, "all", 1, &["older tabflow", "re-plan"]);
    // Left with its old (keyed) fingerprint: the edit shows.
    let mut p2 = typed(&plan);
    p2.steps.iter_mut().find(|s| s.id == id).unwrap().effect = tabflow_engine::plan::Effect::Write;
    refused(h, &emu, &write(h, "edited.json", &p2), "all", 1, &["fingerprint does not match"]);
    // Even re-sealed with the store's own key (an insider), the classes are derived.
    p2.seal(&store_key(h));
    refused(h, &emu, &write(h, "insider.json", &p2), "all", 1, &[&format!("step {id} (archive-workbooks)")]);
    assert_eq!(state(&emu), s0);
}

#[test]
fn a_plan_whose_unanswered_questions_were_deleted_is_refused() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Unanswered: "archive all, or review the list first?".
    let (_, plan) = plan_file(h, &emu, ARCHIVE, &[]);
    assert!(!plan["questions"].as_array().unwrap().is_empty(), "{plan}");
    let s0 = state(&emu);
    let mut p = typed(&plan);
    p.questions.clear();
    refused(h, &emu, &write(h, "unasked.json", &p), "all", 1, &["fingerprint does not match"]);
    reseal_unkeyed(&mut p);
    refused(h, &emu, &write(h, "unasked-resealed.json", &p), "all", 1, &["older tabflow", "re-plan"]);
    // As made, it stops at its question (exit 3) — still nothing changed.
    let o = run(h, &emu, &["apply", &write(h, "asked.json", &typed(&plan)), "--approve", "all", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(state(&emu), s0);
}

/// The offboarding plan that deletes the account: its transfer, access-removal and
/// deletion step ids.
fn offboarding(h: &Path, emu: &Emu) -> (std::path::PathBuf, Value, [String; 3]) {
    let (path, plan) = plan_file(h, emu, OFFBOARD, &["q1=delete"]);
    let id = |kind: &str| {
        step(&plan, kind).unwrap_or_else(|| panic!("no {kind} step: {plan}"))["id"].as_str().unwrap().to_string()
    };
    let ids = [id("transfer-ownership"), id("remove-access"), id("delete-user")];
    (path, plan, ids)
}

#[test]
fn approving_the_transfer_and_access_removal_does_not_approve_the_account_deletion() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let jsmith = user_id(&state(&emu), "jsmith");
    let (path, plan, [transfer, access, delete]) = offboarding(h, &emu);
    // The same user is an item of the access removal and of the deletion.
    for s in [&access, &delete] {
        let st = plan["steps"].as_array().unwrap().iter().find(|x| x["id"] == s.as_str()).unwrap();
        assert!(st["changes"].as_array().unwrap().iter().any(|c| c["item"] == jsmith.as_str()), "{st}");
    }
    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", &format!("{transfer},{access}"), "--json"]);
    let r = ok_json(&o, "apply");
    assert_eq!(r["status"], "partial", "{r}");
    let steps = r["steps"].as_array().unwrap();
    let of = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap().clone();
    assert!(of(&transfer)["done"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(of(&access)["done"], 1, "{r}");
    assert_eq!((of(&delete)["done"].as_u64(), of(&delete)["skipped"].as_u64()), (Some(0), Some(1)), "{r}");
    // The account is still there, under its id.
    let s1 = state(&emu);
    assert_eq!(user_id(&s1, "jsmith"), jsmith);
    // The pair written out, on a fresh site: <removal step>/<user> approves the removal only.
    let emu = serve();
    let (path, _, [_, access, delete]) = offboarding(h, &emu);
    let o = run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", &format!("{access}/{jsmith}"), "--json"]);
    let r = ok_json(&o, "apply");
    let d = r["steps"].as_array().unwrap().iter().find(|s| s["id"] == delete.as_str()).unwrap().clone();
    assert_eq!(d["done"], 0, "{r}");
    assert_eq!(user_id(&state(&emu), "jsmith"), jsmith);
}

#[test]
fn a_bare_item_id_in_two_destructive_steps_is_a_usage_error_naming_them() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let jsmith = user_id(&state(&emu), "jsmith");
    let (path, plan, [_, access, delete]) = offboarding(h, &emu);
    let err = refused(
        h,
        &emu,
        path.to_str().unwrap(),
        &jsmith,
        2,
        // The user is in the access removal's group and license steps and in the deletion.
        &[
            &format!("item {jsmith} is in steps "),
            &format!(" and {delete} of plan"),
            &format!("{access}/{jsmith}, "),
            &format!(" or {delete}/{jsmith}"),
        ],
    );
    assert!(!err.contains("panicked"));
    // An id the plan does not hold is refused naming the plan.
    let pid = plan["id"].as_str().unwrap();
    refused(h, &emu, path.to_str().unwrap(), "no-such-item", 2, &["no-such-item", pid]);
    refused(h, &emu, path.to_str().unwrap(), &format!("{access}/no-such-item"), 2, &[pid]);
}

#[test]
fn two_names_at_one_terminal_do_not_make_two_approvers() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let policy = h.join("two.toml");
    std::fs::write(&policy, "required_approvers = 2\n").unwrap();
    let (path, _) = plan_file(h, &emu, ARCHIVE, &["q1=archive-all"]);
    let s0 = state(&emu);
    let apply = |env: (&str, &str)| {
        cmd(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"])
            .env("TABFLOW_POLICY", &policy)
            .env_remove("TABFLOW_ACTOR")
            .env(env.0, env.1)
            .output()
            .unwrap()
    };
    // As alice (TABFLOW_ACTOR), then as bob (the login name): still one approver.
    for (who, env) in [("alice", ("TABFLOW_ACTOR", "alice")), ("bob", ("USER", "bob"))] {
        let o = apply(env);
        assert_eq!(o.status.code(), Some(3), "{who}: {}\n{}", text(&o.stdout), text(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "awaiting-approval", "{v}");
        let why = v["reason"].as_str().unwrap();
        assert!(why.contains("the terminal counts as one") && why.contains("authenticated approver"), "{why}");
        assert_eq!(state(&emu), s0, "{who}: the site changed");
    }
    let o = apply(("USER", "bob"));
    let err = text(&o.stderr);
    assert!(err.contains("alice") && err.contains("bob") && err.contains("API token"), "{err}");
    assert_eq!(state(&emu), s0);
}

#[test]
fn a_plan_saved_under_the_id_of_an_interrupted_runs_plan_does_not_run_on_resume() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (path, plan) = plan_file(h, &emu, ARCHIVE, &["q1=archive-all"]);
    // Interrupted after three journal intents.
    let o = cmd(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"])
        .env("TABFLOW_CRASH_AFTER", "3")
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let runs = run_json(h, &emu, &["runs", "list", "--json"]);
    let run_id = runs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(runs[0]["status"], "running", "{runs}");
    let mid = state(&emu);

    // Another plan under the same id — one workbook fewer, sealed with this store's own key
    // as only an insider could — is refused: the store never replaces a plan.
    let key = store_key(h);
    let mut forged = typed(&plan);
    let st = forged.steps.iter_mut().find(|s| s.kind.as_str() == "archive-workbooks").unwrap();
    let dropped = st.items.pop().unwrap().id;
    st.changes.retain(|c| c.item != dropped);
    forged.seal(&key);
    assert_ne!(forged.fingerprint, plan["fingerprint"].as_str().unwrap());
    refused(h, &emu, &write(h, "forged.json", &forged), "all", 1, &["never replaced", forged.id.as_str()]);

    // Written into the store behind tabflow's back: `runs resume` refuses it, naming both
    // fingerprints, and changes nothing.
    store_sql(
        h,
        "UPDATE plans SET body = $1, fingerprint = $2 WHERE id = $3",
        &[&forged.to_json(), &forged.fingerprint, &forged.id],
    );
    let o = run(h, &emu, &["runs", "resume", &run_id, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", text(&o.stdout), text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains(&forged.fingerprint) && err.contains(plan["fingerprint"].as_str().unwrap()), "{err}");
    same(&state(&emu), &mid, "the site after the refused resume");

    // The approved plan put back: the run resumes and finishes.
    store_sql(
        h,
        "UPDATE plans SET body = $1, fingerprint = $2 WHERE id = $3",
        &[&std::fs::read_to_string(&path).unwrap(), plan["fingerprint"].as_str().unwrap(), &forged.id],
    );
    let r = ok_json(&run(h, &emu, &["runs", "resume", &run_id, "--json"]), "resume");
    assert_eq!(r["status"], "succeeded", "{r}");
}

#[test]
fn a_plan_from_another_store_or_another_copy_of_the_site_is_refused_with_its_own_message() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (path, _) = plan_file(h, &emu, ARCHIVE, &["q1=archive-all"]);
    // Another store (another TABFLOW_HOME) on the same site.
    let other = tempfile::tempdir().unwrap();
    let err = refused(other.path(), &emu, path.to_str().unwrap(), "all", 1, &["another tabflow store", "--store"]);
    assert!(err.contains(store_key(h).id()), "{err}");

    // A rehearsal copy of the site (same site id, another server): the plan made there is
    // refused on the original, naming both servers.
    let copy_file = h.join("site.json");
    {
        let body = http(&emu, "GET", "/_emulator/snapshot", "");
        std::fs::write(&copy_file, dechunk(&body[body.find('{').unwrap()..=body.rfind('}').unwrap()])).unwrap();
    }
    let rehearsal = serve_with(&["--snapshot", copy_file.to_str().unwrap()]);
    let (rehearsed, _) = plan_file(h, &rehearsal, ARCHIVE, &["q1=archive-all"]);
    refused(h, &emu, rehearsed.to_str().unwrap(), "all", 1, &[&rehearsal.1, &emu.1, "re-planned"]);
}
