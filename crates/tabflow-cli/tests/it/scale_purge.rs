//! Staged purges under a lease (issue #22): two `tabflow worker`s on one PostgreSQL store
//! purge the same due staged deletes at the same time; each item is claimed by one of them,
//! so each is deleted exactly once (the emulator counts the DELETE calls per item, whatever
//! their answer) and audited once, and the audit chain verifies.
//!
//! PostgreSQL as in `scale_out` (`TABFLOW_TEST_PG_URL`, TABFLOW_SKIP_PG=1 skips).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

#[test]
fn two_workers_purging_one_store_delete_each_staged_item_exactly_once() {
    let _one = crate::scale_out::one_at_a_time();
    let Some(schema) = PgSchema::create("tabflow_purge") else { return };
    let store = schema.url();
    // Each call takes 150 ms, so the two workers' purges overlap for seconds.
    let emu = serve_with(&["--latency-ms", "150"]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plan_path = h.join("plan.json");
    let args = ["plan", "--intent", "delete-content", "--param", "project=Finance", "--param", "stale_days=90"];
    let o = cmd(
        h,
        &emu,
        &[&args[..], &["--answer", "q1=delete-all", "--json", "-o", plan_path.to_str().unwrap()]].concat(),
    )
    .env("TABFLOW_STORE", &store)
    .output()
    .unwrap();
    let plan = ok_json(&o, "plan");
    let staged: BTreeSet<String> = step(&plan, "stage-delete").expect("a stage-delete step")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert!(staged.len() > 5, "the demo's Finance has stale workbooks: {staged:?}");
    let o = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"])
        .env("TABFLOW_STORE", &store)
        .output()
        .unwrap();
    assert_eq!(ok_json(&o, "apply")["status"], "succeeded");
    http(&emu, "POST", "/_emulator/stats/reset", "");

    // Both at once, long after the grace period: each purges what it claims.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            cmd(h, &emu, &["worker", "--once", "--json", "--now", "2099-01-01T00:00:00Z"])
                .env_remove("TABLEAU_PAT_NAME")
                .env_remove("TABLEAU_PAT_SECRET")
                .env("TABLEAU_USERNAME", "admin")
                .env("TABLEAU_PASSWORD", "tabflow")
                .env("TABFLOW_STORE", &store)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut purged_by: Vec<usize> = vec![];
    for w in workers {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success(), "worker --once: {}\n{}", text(&o.stderr), text(&o.stdout));
        let n: usize = text(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["purged"].as_array().map(|p| p.len()))
            .sum();
        purged_by.push(n);
    }
    eprintln!("{} staged items; purged by each worker: {purged_by:?}", staged.len());
    assert_eq!(purged_by.iter().sum::<usize>(), staged.len(), "every staged item purged by one worker");
    assert!(purged_by.iter().all(|n| *n > 0), "both workers purged, at the same time: {purged_by:?}");

    let st = stats(&emu);
    let deletes: BTreeMap<String, u64> =
        st["deletes_by_resource"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    let twice: Vec<_> = deletes.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "items deleted more than once: {twice:?}");
    assert_eq!(deletes.keys().cloned().collect::<BTreeSet<_>>(), staged, "exactly the staged items deleted");
    // One purge record per item, no claim left behind.
    let count = |sql: &str| schema.count(&sql.replace("{s}", &schema.name));
    assert_eq!(count("SELECT count(*) FROM {s}.audit WHERE action = 'purge'"), staged.len() as i64);
    assert_eq!(count("SELECT count(DISTINCT item_id) FROM {s}.audit WHERE action = 'purge'"), staged.len() as i64);
    assert_eq!(count("SELECT count(*) FROM {s}.staged WHERE purged_at IS NULL OR owner IS NOT NULL"), 0);
    assert_eq!(count("SELECT count(*) FROM {s}.staged WHERE epoch = 1"), staged.len() as i64);
    let o = cmd(h, &emu, &["audit", "verify"]).env("TABFLOW_STORE", &store).output().unwrap();
    assert!(o.status.success(), "audit verify: {}\n{}", text(&o.stderr), text(&o.stdout));
}
