//! The same store contract on both backends: SQLite (a temporary file) and PostgreSQL (a
//! fresh schema in the test database: `TABFLOW_TEST_PG_URL`, by default 127.0.0.1:5432, user
//! postgres, trust auth, as on the project's machines). Set TABFLOW_SKIP_PG=1 to skip the
//! PostgreSQL half on a machine without it.

use chrono::Utc;
use serde_json::json;
use sqlx::AssertSqlSafe;
use tabflow_engine::audit::{self, NewRecord};
use tabflow_engine::plan::{Plan, PlanKey, SiteRef};
use tabflow_engine::store::{ApprovalRow, Backend, NewEntry, Phase, RunRow, RunStatus, StagedRow, Store, TokenRow};

use crate::support::PgSchema;

fn plan(key: &PlanKey) -> Plan {
    let site =
        SiteRef { server: "https://tableau.example.com".into(), content_url: "finance".into(), id: "s-1".into() };
    let mut p = Plan::draft("archive Finance", site, vec![], Utc::now());
    p.seal(key);
    p
}

fn run_row(id: &str, plan: &Plan) -> RunRow {
    let plan_id = plan.id.as_str();
    RunRow {
        id: id.into(),
        plan_id: plan_id.into(),
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
        fingerprint: Some(plan.fingerprint.clone()),
    }
}

fn record(i: usize) -> NewRecord {
    NewRecord {
        actor: format!("actor-{i}"),
        action: "move".into(),
        item_id: Some(format!("w{i}")),
        before: Some(json!({"project": "Finance"})),
        after: Some(json!({"project": "Archive", "i": i})),
        outcome: "applied".into(),
        ..NewRecord::default()
    }
}

/// Everything the engine asks of a store, checked the same way on either backend.
async fn contract(s: &Store, reopen: impl AsyncFn() -> Store) {
    // Every handle on one store seals with the same key, kept in the store.
    let second = reopen().await;
    assert_eq!(second.plan_key().id(), s.plan_key().id());
    second.close().await;

    // Plans round-trip and are insert-only: the same plan again is a no-op, other content
    // under its id is refused and the stored one stays.
    let p = plan(s.plan_key());
    s.save_plan(&p).await.unwrap();
    s.save_plan(&p).await.unwrap();
    let mut forged = p.clone();
    forged.request = "archive Finance (v2)".into();
    forged.seal(s.plan_key());
    let e = s.save_plan(&forged).await.unwrap_err();
    assert!(e.to_string().contains(&p.id) && e.to_string().contains("never replaced"), "{e}");
    let back = s.plan(&p.id).await.unwrap();
    assert_eq!(back.request, "archive Finance");
    assert_eq!(back.fingerprint, p.fingerprint);
    assert!(s.plan("p-missing").await.unwrap_err().to_string().contains("p-missing"));
    // A plan sealed by another store's key is stored but never read back as valid.
    let foreign = plan(&PlanKey::new([5; 32]));
    s.save_plan(&foreign).await.unwrap();
    assert!(s.plan(&foreign.id).await.unwrap_err().to_string().contains("another tabflow store"));

    // Approvals are used once, atomically.
    let approval = |id: &str, items: Option<Vec<String>>| ApprovalRow {
        id: id.into(),
        plan_id: p.id.clone(),
        fingerprint: p.fingerprint.clone(),
        decision: "approve".into(),
        items,
        approver: "alice".into(),
        channel: "terminal".into(),
        created_at: Utc::now(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        used_by_run: None,
    };
    s.insert_approval(&approval("a1", None)).await.unwrap();
    s.insert_approval(&approval("a2", Some(vec!["w1".into(), "w2".into()]))).await.unwrap();
    let rows = s.approvals_for(&p.id).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].items.as_deref(), Some(&["w1".to_string(), "w2".to_string()][..]));
    s.consume_approvals(&["a1".into(), "a2".into()], "r-1").await.unwrap();
    let again = s.consume_approvals(&["a2".into()], "r-2").await.unwrap_err();
    assert!(again.to_string().contains("already used"), "{again}");
    assert!(s.approvals_for(&p.id).await.unwrap().iter().all(|a| a.used_by_run.as_deref() == Some("r-1")));

    // Runs: insert, status, newest first.
    s.insert_run(&run_row("r-1", &p)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.insert_run(&run_row("r-2", &forged)).await.unwrap();
    s.set_run_status("r-1", RunStatus::Succeeded, Some(&json!({"done": 3}))).await.unwrap();
    let r1 = s.run("r-1").await.unwrap();
    assert_eq!(r1.status, RunStatus::Succeeded);
    assert!(r1.finished_at.is_some());
    assert_eq!(r1.summary["done"], 3);
    assert_eq!((r1.lease_owner.as_deref(), r1.lease_epoch), (None, 0));
    let ids: Vec<String> = s.runs(10).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["r-2", "r-1"]);
    // A run's plan is the one it was approved for, or it is refused.
    assert_eq!(r1.fingerprint.as_deref(), Some(p.fingerprint.as_str()));
    assert_eq!(s.plan_of_run(&r1).await.unwrap().fingerprint, p.fingerprint);
    let r2 = s.run("r-2").await.unwrap();
    let e = s.plan_of_run(&r2).await.unwrap_err().to_string();
    assert!(e.contains("r-2") && e.contains(&forged.fingerprint) && e.contains(&p.fingerprint), "{e}");
    let old = RunRow { fingerprint: None, ..r1.clone() };
    assert!(s.plan_of_run(&old).await.unwrap_err().to_string().contains("records no plan fingerprint"));

    // The journal keeps order across group commits.
    let entry = |item: &str, phase: Phase| NewEntry {
        run_id: "r-1".into(),
        step_id: "s1".into(),
        item_id: item.into(),
        item_type: "workbook".into(),
        phase,
        image: json!({"project": "Finance", "item": item}),
        detail: String::new(),
    };
    s.append(&[entry("w1", Phase::Intent), entry("w2", Phase::Intent)]).await.unwrap();
    s.append(&[entry("w1", Phase::Applied)]).await.unwrap();
    let j = s.journal("r-1").await.unwrap();
    let seen: Vec<(String, Phase)> = j.iter().map(|e| (e.item_id.clone(), e.phase)).collect();
    assert_eq!(seen, vec![("w1".into(), Phase::Intent), ("w2".into(), Phase::Intent), ("w1".into(), Phase::Applied)]);
    assert!(j.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(j[1].image["item"], "w2");

    // Backups: bytes round-trip (binary, with NULs), checksums verified, replace per run.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let sha = s.put_backup("r-1", "w1", "Sales.twbx", &bytes).await.unwrap();
    assert_eq!(sha, tabflow_engine::plan::sha256_hex(&bytes));
    assert_eq!(s.backup_of("r-1", "w1").await.unwrap(), Some(("Sales.twbx".to_string(), bytes.clone())));
    assert_eq!(s.backup("w1").await.unwrap().unwrap().1, bytes);
    // Read piece by piece for a restore: size and bytes as stored (an inline backup here;
    // chunked ones in backups.rs), on either backend.
    let saved = s.backup_pieces("r-1", "w1").await.unwrap().expect("the backup");
    assert_eq!((saved.filename.as_str(), saved.size), ("Sales.twbx", bytes.len() as u64));
    let tabflow_client::Upload::Pieces { pieces, .. } = saved.upload() else { panic!("pieces") };
    let read: Vec<Vec<u8>> =
        futures::StreamExt::collect::<Vec<_>>(pieces).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(read.concat(), bytes);
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    tokio::io::AsyncWriteExt::write_all(&mut file, &bytes).await.unwrap();
    s.put_backup_file("r-2", "w1", "Sales.twbx", &mut file).await.unwrap();
    assert_eq!(s.backup_pieces("r-2", "w1").await.unwrap().map(|b| b.size), Some(bytes.len() as u64));
    s.put_backup("r-1", "w1", "Sales v2.twbx", b"<workbook/>").await.unwrap();
    assert_eq!(s.backup_of("r-1", "w1").await.unwrap().unwrap().0, "Sales v2.twbx");
    assert_eq!(s.backup_of("r-9", "w1").await.unwrap(), None);

    // Staged deletes.
    let staged = StagedRow {
        item_type: "workbook".into(),
        item_id: "w1".into(),
        name: "Sales".into(),
        run_id: "r-1".into(),
        quarantined_at: Utc::now(),
        purge_after: Utc::now() + chrono::Duration::days(30),
        backup_sha256: Some(sha.clone()),
        purged_at: None,
    };
    s.insert_staged(&staged).await.unwrap();
    s.insert_staged(&staged).await.unwrap();
    assert_eq!(s.staged().await.unwrap().len(), 1);
    s.mark_purged("w1", "r-1").await.unwrap();
    assert!(s.staged().await.unwrap()[0].purged_at.is_some());

    // Staged purges under a lease: one holder at a time, a lapsed claim taken over with a new
    // epoch, the old holder fenced out of the check and of the purge record.
    let w2 = StagedRow { item_id: "w2".into(), purged_at: None, ..staged.clone() };
    s.insert_staged(&w2).await.unwrap();
    let now = Utc::now();
    let short = now + chrono::Duration::milliseconds(300);
    let long = now + chrono::Duration::seconds(60);
    assert_eq!(s.claim_staged("w1", "r-1", "A", now, long).await.unwrap(), None, "purged already");
    assert_eq!(s.claim_staged("w2", "r-1", "A", now, short).await.unwrap(), Some(1));
    assert_eq!(s.claim_staged("w2", "r-1", "B", now, long).await.unwrap(), None, "held by A");
    assert!(s.staged_held_until("w2", "r-1", "A", 1, Utc::now()).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(s.staged_held_until("w2", "r-1", "A", 1, Utc::now()).await.unwrap().is_none(), "lapsed");
    assert!(!s.renew_staged("w2", "r-1", "B", 1, long).await.unwrap(), "not B's");
    assert_eq!(s.claim_staged("w2", "r-1", "B", Utc::now(), long).await.unwrap(), Some(2));
    assert!(!s.renew_staged("w2", "r-1", "A", 1, long).await.unwrap());
    assert!(!s.mark_purged_fenced("w2", "r-1", "A", 1).await.unwrap(), "A was taken over");
    s.release_staged("w2", "r-1", "A", 1).await.unwrap();
    assert!(s.staged_held_until("w2", "r-1", "B", 2, Utc::now()).await.unwrap().is_some(), "A's release is a no-op");
    // Released by its holder, claimable again; purged, never again.
    s.release_staged("w2", "r-1", "B", 2).await.unwrap();
    assert_eq!(s.claim_staged("w2", "r-1", "C", Utc::now(), long).await.unwrap(), Some(3));
    assert!(s.mark_purged_fenced("w2", "r-1", "C", 3).await.unwrap());
    assert_eq!(s.claim_staged("w2", "r-1", "D", Utc::now(), long).await.unwrap(), None);

    // A site's shared limits: one token at a time, refilled at 95 % of the rate; slots up to
    // the concurrency; a 429 pause makes every taker wait.
    s.set_site_limit("srv|site", 20, 2).await.unwrap();
    assert_eq!(s.take_site_token("srv|site").await.unwrap(), None, "the bucket starts with one token");
    let wait = s.take_site_token("srv|site").await.unwrap().expect("then empty");
    assert!((45..=53).contains(&wait.as_millis()), "about 1000 / (0.95 × 20) ms: {wait:?}");
    let until = Utc::now().timestamp_millis() + 60_000;
    let (a, b) = (
        s.take_site_slot("srv|site", "A", until).await.unwrap(),
        s.take_site_slot("srv|site", "B", until).await.unwrap(),
    );
    assert!(a.is_some() && b.is_some() && a != b, "{a:?} {b:?}");
    assert_eq!(s.take_site_slot("srv|site", "C", until).await.unwrap(), None, "two in flight at most");
    s.free_site_slot("srv|site", a.unwrap(), "A").await.unwrap();
    assert_eq!(s.take_site_slot("srv|site", "C", until).await.unwrap(), a);
    s.pause_site("srv|site", Utc::now().timestamp_millis() + 5_000).await.unwrap();
    let wait = s.take_site_token("srv|site").await.unwrap().expect("paused");
    assert!(wait.as_millis() > 4_000, "{wait:?}");
    assert_eq!(s.site_limits().await.unwrap()[0].4, 2, "slots held");

    // The audit chain: appends from two handles at once still form one chain, and an edit
    // is found and named.
    let other = reopen().await;
    let (a, b) = tokio::join!(
        async {
            for i in 0..20 {
                audit::append(s, record(i)).await.unwrap();
            }
        },
        async {
            for i in 100..120 {
                audit::append(&other, record(i)).await.unwrap();
            }
        }
    );
    let _ = (a, b);
    let v = audit::verify(s).await.unwrap();
    assert!(v.ok && v.records == 40, "{v:?}");
    other.close().await;

    // API tokens (migration 4): stored by name with their hash, a name used once, revoked once.
    let t = TokenRow {
        name: "alice".into(),
        role: "approver".into(),
        sha256: "ab".repeat(32),
        created_by: "admin".into(),
        created_at: Utc::now(),
        revoked_at: None,
    };
    s.insert_token(&t).await.unwrap();
    assert!(s.insert_token(&t).await.unwrap_err().to_string().contains("'alice' exists"));
    assert_eq!(s.tokens().await.unwrap()[0].sha256, t.sha256);
    assert!(s.revoke_token("alice", Utc::now()).await.unwrap());
    assert!(!s.revoke_token("alice", Utc::now()).await.unwrap(), "revoked once");
    assert!(s.tokens().await.unwrap()[0].revoked_at.is_some());
    // Who asked for a plan: the first one recorded stays.
    assert_eq!(s.plan_requester(&p.id).await.unwrap(), None);
    s.set_plan_requester(&p.id, "bob via api").await.unwrap();
    s.set_plan_requester(&p.id, "eve via api").await.unwrap();
    assert_eq!(s.plan_requester(&p.id).await.unwrap().as_deref(), Some("bob via api"));

    // Work items (a shared run's queue): a claim takes the lapsed claims and then the pending
    // items of the first step not done, answered in queue order; a step waits for the one
    // before; the claim checks, renewals and finishes match (owner, epoch).
    let queue: Vec<(i64, String, String)> =
        (0..4).map(|i| (0, "s1".to_string(), format!("q{i}"))).chain([(1, "s2".into(), "q0".into())]).collect();
    s.queue_work("r-w", &queue).await.unwrap();
    let short = Utc::now() + chrono::Duration::milliseconds(150);
    let a = s.claim_work("r-w", "A", Utc::now(), short, 2).await.unwrap();
    let item = |st: &str, i: &str, e: i64| (st.to_string(), i.to_string(), e);
    assert_eq!(a, vec![item("s1", "q0", 1), item("s1", "q1", 1)]);
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let later = Utc::now() + chrono::Duration::seconds(60);
    let b = s.claim_work("r-w", "B", Utc::now(), later, 10).await.unwrap();
    assert_eq!(b, vec![item("s1", "q0", 2), item("s1", "q1", 2), item("s1", "q2", 1), item("s1", "q3", 1)]);
    assert!(!s.work_held("r-w", "s1", "q0", "A", 1, Utc::now()).await.unwrap(), "A's claim lapsed");
    assert!(s.work_held("r-w", "s1", "q0", "B", 2, Utc::now()).await.unwrap());
    assert!(s.renew_work("r-w", "s1", "q2", "B", 1, later).await.unwrap());
    assert!(!s.renew_work("r-w", "s1", "q1", "A", 1, later).await.unwrap());
    assert!(s.claim_work("r-w", "C", Utc::now(), later, 10).await.unwrap().is_empty(), "s2 waits for s1");
    let ends: Vec<(&str, &str, i64, Option<&str>)> =
        b.iter().map(|(st, i, e)| (st.as_str(), i.as_str(), *e, Some("done"))).collect();
    assert_eq!(s.finish_works("r-w", "B", &ends).await.unwrap(), vec![true; 4]);
    assert!(!s.finish_work("r-w", "s1", "q0", "A", 1, Some("done")).await.unwrap(), "fenced out");
    assert_eq!(s.work_unfinished("r-w").await.unwrap(), 1);
    let c = s.claim_work("r-w", "C", Utc::now(), later, 10).await.unwrap();
    assert_eq!(c, vec![item("s2", "q0", 1)]);
    assert!(s.finish_work("r-w", "s2", "q0", "C", 1, Some("failed")).await.unwrap());
    assert!(s.close_work("r-w", "C").await.unwrap());
    assert_eq!(s.work_unfinished("r-w").await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.backend(), Backend::Sqlite);
    contract(&s, async || Store::open(&path).await.unwrap()).await;
    s.close().await;
    // open_location takes a path or a sqlite:// URL.
    let s = Store::open_location(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(s.runs(10).await.unwrap().len(), 2);
    s.close().await;
}

#[tokio::test]
async fn postgres_store_keeps_the_contract() {
    let Some(schema) = PgSchema::create("tabflow_store").await else { return };
    let url = schema.url();
    let s = Store::open_location(&url).await.unwrap();
    assert_eq!(s.backend(), Backend::Postgres);
    contract(&s, async || Store::open_location(&url).await.unwrap()).await;
    // Editing a record behind tabflow's back is detected and named.
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {}.audit SET after = replace(after, 'Archive', 'Archivf') WHERE seq = 7",
        schema.name
    )))
    .execute(&schema.admin)
    .await
    .unwrap();
    let v = audit::verify(&s).await.unwrap();
    assert!(!v.ok);
    assert_eq!(v.problems[0].seq, 7, "{v:?}");
    // Reopening finds everything (the tables are created once, not again).
    s.close().await;
    let s = Store::open_location(&url).await.unwrap();
    assert_eq!(s.runs(10).await.unwrap().len(), 2);
    s.close().await;
    schema.remove().await;
}

#[tokio::test]
async fn a_wrong_postgres_location_is_one_clear_error_without_the_password() {
    let e = Store::open_location("postgres://postgres:s3cret-pw@127.0.0.1:1/test").await.unwrap_err().to_string();
    assert!(e.contains("cannot be opened") && e.contains("127.0.0.1:1"), "{e}");
    assert!(!e.contains("s3cret-pw"), "the password leaked into the message: {e}");
}

#[tokio::test]
async fn postgres_over_tls_when_the_url_asks_for_it() {
    let Some(schema) = PgSchema::create("tabflow_tls").await else { return };
    let app = format!("tabflow_tls_{}", std::process::id());
    let url = format!("{}&sslmode=require&application_name={app}", schema.url());
    let s = Store::open_location(&url).await.unwrap();
    s.runs(1).await.unwrap();
    // The store's own connections, seen from the server.
    let ssl: Vec<bool> = sqlx::query_scalar(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
    )
    .bind(&app)
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    assert!(!ssl.is_empty() && ssl.iter().all(|x| *x), "sslmode=require connected without TLS: {ssl:?}");
    s.close().await;
    schema.remove().await;
}

/// A PostgreSQL front door that refuses TLS: answers the client's SSLRequest with `N`.
async fn no_tls_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut req = [0u8; 8];
                if c.read_exact(&mut req).await.is_ok() {
                    let _ = c.write_all(b"N").await;
                    let mut rest = [0u8; 1024];
                    let _ = c.read(&mut rest).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn sslmode_require_against_a_server_without_tls_is_a_clear_error() {
    let port = no_tls_server().await;
    let e = Store::open_location(&format!("postgres://postgres:pw-XYZ@127.0.0.1:{port}/test?sslmode=require"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be opened") && e.to_ascii_lowercase().contains("tls"), "{e}");
    assert!(!e.contains("pw-XYZ"), "{e}");
}

/// Audit records are redacted as they are appended: a configured secret in any text of a
/// record (actor, outcome, ids, nested before/after strings and keys) is `[redacted]` in the
/// stored row itself, the chain verifies over the redacted text, and a store opened without
/// the list sees the same rows.
async fn audit_redaction(s: Store, raw: impl AsyncFn() -> Vec<String>) {
    const SECRET: &str = "planted-audit-s3cret-91c4";
    let s = s.with_audit_redaction(vec![SECRET.to_string(), "abc".to_string()]);
    audit::append(
        &s,
        NewRecord {
            actor: format!("{SECRET} via api"),
            action: "item.moved".into(),
            item_id: Some(format!("wb-{SECRET}")),
            before: Some(json!({"url": format!("https://u:{SECRET}@h/x"), "list": [SECRET], SECRET: 1})),
            after: Some(json!({"note": "short secrets (abc) are not searched for"})),
            outcome: format!("failed: server said {SECRET}"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for row in raw().await {
        assert!(!row.contains(SECRET), "a stored audit row holds the secret: {row}");
        assert!(row.contains("[redacted]"), "{row}");
        assert!(row.contains("(abc)"), "a secret under 4 characters is not searched for: {row}");
    }
    let records = audit::records(&s).await.unwrap();
    assert_eq!(records[0].actor, "[redacted] via api");
    assert_eq!(records[0].before.as_ref().unwrap()["[redacted]"], json!(1));
    assert!(audit::verify(&s).await.unwrap().ok);
    assert!(!format!("{s:?}").contains(SECRET), "the store's Debug does not show the list");
    s.close().await;
}

#[tokio::test]
async fn sqlite_audit_rows_are_redacted_when_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = Store::open(&path).await.unwrap();
    audit_redaction(s, async || {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let rows = sqlx::query_scalar::<_, String>(
            "SELECT actor || '|' || item_id || '|' || before || '|' || after || '|' || outcome FROM audit",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    })
    .await;
}

#[tokio::test]
async fn postgres_audit_rows_are_redacted_when_written() {
    let Some(schema) = PgSchema::create("tabflow_audit_redact").await else { return };
    let s = Store::open_location(&schema.url()).await.unwrap();
    audit_redaction(s, async || {
        sqlx::query_scalar::<_, String>(AssertSqlSafe(format!(
            "SELECT actor || '|' || item_id || '|' || before || '|' || after || '|' || outcome FROM {}.audit",
            schema.name
        )))
        .fetch_all(&schema.admin)
        .await
        .unwrap()
    })
    .await;
    schema.remove().await;
}
