//! Run leases on both backends: of two concurrent claimants exactly one wins; a lapsed lease
//! can be taken over, which raises the fencing epoch; the old holder's journal and status
//! writes are then refused with "lease lost" and write nothing.

use chrono::{Duration, Utc};
use serde_json::json;
use tabflow_engine::store::{Fence, NewEntry, Phase, RunRow, RunStatus, Store, StoreError};

use crate::support::PgSchema;

fn run_row(id: &str) -> RunRow {
    RunRow {
        id: id.into(),
        plan_id: "p-1".into(),
        status: RunStatus::Running,
        request: "archive Finance".into(),
        created_at: Utc::now(),
        finished_at: None,
        actor: "alice".into(),
        lease_owner: None,
        lease_expires_at: None,
        lease_epoch: 0,
        approval_id: None,
        summary: json!({}),
        fingerprint: None,
    }
}

fn entry(run: &str, item: &str) -> NewEntry {
    NewEntry {
        run_id: run.into(),
        step_id: "s1".into(),
        item_id: item.into(),
        item_type: "workbook".into(),
        phase: Phase::Intent,
        image: json!({}),
        detail: String::new(),
    }
}

/// `a` and `b` are two handles (two pools, as two processes would have) on one store.
async fn leases(a: &Store, b: &Store) {
    let now = Utc::now();
    let later = now + Duration::seconds(60);
    for round in 0..10 {
        let id = format!("r-{round}");
        a.insert_run(&run_row(&id)).await.unwrap();
        // Two claims at once, from the two handles: exactly one wins.
        let (x, y) = tokio::join!(
            a.claim_lease(&id, "host-a:1:aaaa", now, later, None),
            b.claim_lease(&id, "host-b:2:bbbb", now, later, None)
        );
        let won: Vec<Fence> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        assert_eq!(won[0].epoch, 1);
        let row = a.run(&id).await.unwrap();
        assert_eq!(row.lease_owner.as_deref(), Some(won[0].owner.as_str()));
        assert_eq!(row.lease_expires_at.map(|t| t.timestamp()), Some(later.timestamp()));
    }

    // A lapsed lease is taken over; the takeover raises the epoch and fences the old holder.
    a.insert_run(&run_row("r-x")).await.unwrap();
    let old = a.claim_lease("r-x", "host-a:1:aaaa", now, now + Duration::seconds(1), None).await.unwrap().unwrap();
    a.append_fenced(Some(&old), &[entry("r-x", "w1")]).await.unwrap();
    assert!(a.renew_lease(&old, now + Duration::seconds(2)).await.unwrap());
    // Still live for someone else.
    assert!(b.claim_lease("r-x", "host-b:2:bbbb", now, later, None).await.unwrap().is_none());
    let new = b
        .claim_lease("r-x", "host-b:2:bbbb", now + Duration::seconds(5), later, None)
        .await
        .unwrap()
        .expect("a lapsed lease is claimable");
    assert_eq!(new.epoch, 2);
    let lost = a.append_fenced(Some(&old), &[entry("r-x", "w2")]).await.unwrap_err();
    assert!(matches!(lost, StoreError::LeaseLost(_)), "{lost}");
    assert!(lost.to_string().contains("lease lost") && lost.to_string().contains("host-b:2:bbbb"), "{lost}");
    let lost = a.set_run_status_fenced(Some(&old), "r-x", RunStatus::Succeeded, None).await.unwrap_err();
    assert!(lost.to_string().contains("lease lost"), "{lost}");
    assert!(!a.renew_lease(&old, later).await.unwrap());
    // Nothing of the old holder's landed after the takeover.
    let items: Vec<String> = a.journal("r-x").await.unwrap().into_iter().map(|e| e.item_id).collect();
    assert_eq!(items, vec!["w1"]);
    assert_eq!(a.run("r-x").await.unwrap().status, RunStatus::Running);
    // The new holder writes; released, the lease is free again (the epoch stays raised).
    b.append_fenced(Some(&new), &[entry("r-x", "w2")]).await.unwrap();
    b.release_lease(&new).await.unwrap();
    let row = a.run("r-x").await.unwrap();
    assert_eq!((row.lease_owner, row.lease_epoch), (None, 2));
    let again = a.claim_lease("r-x", "host-a:1:cccc", now, later, None).await.unwrap().unwrap();
    assert_eq!(again.epoch, 3);
    // A takeover conditioned on an owner and epoch succeeds only while they are current.
    assert!(b.claim_lease("r-x", "host-b:2:bbbb", now, later, Some(("host-a:1:aaaa", 1))).await.unwrap().is_none());
    let stolen = b.claim_lease("r-x", "host-b:2:bbbb", now, later, Some(("host-a:1:cccc", 3))).await.unwrap();
    assert_eq!(stolen.map(|f| f.epoch), Some(4));
}

#[tokio::test]
async fn sqlite_leases_admit_one_claimant_and_fence_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let a = Store::open(&path).await.unwrap();
    let b = Store::open(&path).await.unwrap();
    leases(&a, &b).await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn postgres_leases_admit_one_claimant_and_fence_the_other() {
    let Some(schema) = PgSchema::create("tabflow_lease").await else { return };
    let a = Store::open_location(&schema.url()).await.unwrap();
    let b = Store::open_location(&schema.url()).await.unwrap();
    leases(&a, &b).await;
    a.close().await;
    b.close().await;
    schema.remove().await;
}
