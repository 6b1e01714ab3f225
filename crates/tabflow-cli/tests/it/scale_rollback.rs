//! A shared rollback on PostgreSQL (issue #22) with real processes: a run applied in one
//! process is rolled back with `runs rollback --shared`, its compensations queued as
//! `rollback` work items and shared by three `tabflow worker`s against the emulator; one is
//! killed (SIGKILL) mid-rollback. The rollback completes, every item is restored exactly once
//! (the emulator's per-resource write counts), the site is back at its before-state and
//! `audit verify` passes.

use std::time::Duration;

use super::scale_out::{Spawned, generated, log_of, one_at_a_time, plan, run_status, signal, wait_until_or, worker};
use crate::support::*;

#[test]
fn three_workers_share_a_rollback_and_one_killed_mid_rollback_restores_every_item_exactly_once() {
    let _one = one_at_a_time();
    let Some(schema) = PgSchema::create("tabflow_scale_rb") else { return };
    let store = schema.url();
    let emu = generated(40);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let before = state(&emu);
    let (plan_path, expected) = plan(h, &emu, &store);
    assert!(expected.len() >= 250, "the generated site gives {} items to move", expected.len());
    // The run itself in one process.
    let o = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"])
        .env("TABFLOW_STORE", &store)
        .output()
        .unwrap();
    let applied = ok_json(&o, "apply");
    let run_id = applied["run_id"].as_str().unwrap().to_string();
    assert_eq!(run_status(&schema, &run_id), "succeeded");
    http(&emu, "POST", "/_emulator/stats/reset", "");
    let count = |sql: &str| schema.count(&sql.replace("{s}", &schema.name).replace("{r}", &run_id));

    // Queued, approved as a rollback in one process is, and nothing undone by this process.
    let o = cmd(h, &emu, &["runs", "rollback", &run_id, "--shared", "--yes", "--json"])
        .env("TABFLOW_STORE", &store)
        .output()
        .unwrap();
    let queued = ok_json(&o, "runs rollback --shared");
    assert_eq!(queued["status"], "queued", "{queued}");
    let items = count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND kind = 'rollback'");
    assert!(items >= expected.len() as i64, "{items} rollback items for {} moved items", expected.len());
    assert_eq!(stats(&emu)["writes"], 0, "{}", stats(&emu));
    assert_eq!(count("SELECT count(*) FROM {s}.runs WHERE id = '{r}' AND status = 'rolling-back'"), 1);
    let o = cmd(h, &emu, &["worker", "status", "--json"]).env("TABFLOW_STORE", &store).output().unwrap();
    let st = ok_json(&o, "worker status");
    assert!(
        st["runs"].as_array().unwrap().iter().any(|r| r["kind"] == "rollback" && r["run_id"] == run_id.as_str()),
        "{st}"
    );

    let logs: Vec<_> = (0..3).map(|i| h.join(format!("worker{i}.log"))).collect();
    let mut workers: Vec<Spawned> = logs.iter().map(|l| worker(h, &emu, &store, "3", l)).collect();
    let why = || logs.iter().map(|l| log_of(l)).collect::<String>();
    wait_until_or(
        "the first compensations done",
        120,
        || {
            count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND kind = 'rollback' AND status = 'done'")
                >= 30
        },
        why,
    );
    let pid = workers[0].id();
    let held = count(&format!(
        "SELECT count(*) FROM {{s}}.work_items WHERE run_id = '{{r}}' AND kind = 'rollback' AND status = 'claimed' AND owner LIKE '%:{pid}:%'"
    ));
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    let left =
        count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND kind = 'rollback' AND status <> 'done'");
    assert!(left > 0, "the rollback was over when the worker was killed");

    wait_until_or(
        "the rollback to finish",
        300,
        || count("SELECT count(*) FROM {s}.audit WHERE run_id = '{r}' AND action = 'run.finished'") >= 2,
        why,
    );
    assert_eq!(run_status(&schema, &run_id), "rolled-back", "{}", why());
    // Closed once, as a rollback in one process closes it.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count("SELECT count(*) FROM {s}.audit WHERE run_id = '{r}' AND action = 'run.rollback'"), 1);
    assert_eq!(
        count("SELECT count(*) FROM {s}.audit WHERE run_id = '{r}' AND action = 'run.finished'"),
        2,
        "{}",
        why()
    );
    // Every item restored exactly once: one PUT moving it back and one DELETE per tag the run
    // added (the same tags on every item), counted by the emulator when they succeeded — an
    // undo that landed twice would make one item's count differ. A request the kill cut off
    // arrived but changed nothing: it counts among the arrivals (`by_route`) only, so the
    // PUTs that arrived are the items plus at most the killed worker's claims.
    let st = stats(&emu);
    let n = |k: &str, v: &str| st[k][v].as_u64().unwrap_or(0);
    let per_item: std::collections::BTreeSet<u64> = expected.keys().map(|k| n("writes_by_resource", k)).collect();
    assert!(
        per_item.len() == 1 && per_item.first() >= Some(&2),
        "items not restored exactly once (successful writes per item: {per_item:?})\n{st}"
    );
    let puts = st["by_route"]["PUT /api/{v}/sites/{s}/workbooks/{id}"].as_i64().unwrap_or(0);
    assert!(
        puts >= items && puts <= items + held,
        "{puts} PUTs arrived for {items} items ({held} held by the killed worker)"
    );
    assert_eq!(
        count("SELECT count(DISTINCT item_id) FROM {s}.journal WHERE run_id = '{r}' AND phase = 'compensated'"),
        items
    );
    if held > 0 {
        // The killed worker's claims lapsed and were taken over (claimed again, new epoch).
        assert!(
            count("SELECT count(*) FROM {s}.work_items WHERE run_id = '{r}' AND kind = 'rollback' AND claims > 1") >= 1,
            "no rollback claim was taken over"
        );
    }
    let after = state(&emu);
    assert!(after == before, "the site is not back at its before-state: {}", differences(&before, &after));
    let o = cmd(h, &emu, &["audit", "verify"]).env("TABFLOW_STORE", &store).output().unwrap();
    assert!(o.status.success(), "audit verify: {}\n{}", text(&o.stderr), text(&o.stdout));
    for w in &mut workers[1..] {
        signal(w, "-TERM");
        assert!(w.wait().unwrap().success());
    }
}
