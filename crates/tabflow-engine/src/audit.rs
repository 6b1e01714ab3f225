//! The audit log: append-only, hash-chained records. Each record carries the SHA-256 of the
//! previous record and its own hash over all of its fields, so `verify` detects an edited
//! field (hash mismatch), a deleted record (gap in `seq` or broken `prev_hash`) and
//! reordering (broken `prev_hash`). Secrets never enter a record: callers pass ids, names
//! and images, never credentials.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use crate::plan::{canonical_json, sha256_hex};
use crate::store::{Store, StoreError, StoreResult};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a caller records.
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub actor: String,
    pub action: String,
    pub plan_id: Option<String>,
    pub run_id: Option<String>,
    pub step_id: Option<String>,
    pub item_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub approver: Option<String>,
    pub outcome: String,
}

/// A stored record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub plan_id: Option<String>,
    pub run_id: Option<String>,
    pub step_id: Option<String>,
    pub item_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub approver: Option<String>,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of a record: over every field but `hash`, as canonical JSON.
pub fn record_hash(
    seq: i64,
    at: &str,
    r: &NewRecord,
    before: &Option<String>,
    after: &Option<String>,
    prev_hash: &str,
) -> String {
    let body = json!({
        "seq": seq, "at": at, "actor": r.actor, "action": r.action, "plan_id": r.plan_id,
        "run_id": r.run_id, "step_id": r.step_id, "item_id": r.item_id, "before": before,
        "after": after, "approver": r.approver, "outcome": r.outcome, "prev_hash": prev_hash,
    });
    sha256_hex(canonical_json(&body).as_bytes())
}

/// Appends one record; answers its seq.
pub async fn append(store: &Store, r: NewRecord) -> StoreResult<i64> {
    append_many(store, vec![r]).await.map(|v| v.last().copied().unwrap_or(0))
}

/// Appends records in one transaction, chained in order.
pub async fn append_many(store: &Store, records: Vec<NewRecord>) -> StoreResult<Vec<i64>> {
    if records.is_empty() {
        return Ok(vec![]);
    }
    let _guard = store.audit_lock().await;
    let mut conn = store.pool().acquire().await?;
    // Take the write lock before reading the tail, so two processes never chain onto the
    // same record: SQLite's IMMEDIATE transaction, PostgreSQL's table lock (readers go on).
    match store.backend() {
        crate::store::Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        }
        crate::store::Backend::Postgres => {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            if let Err(e) = sqlx::query("LOCK TABLE audit IN EXCLUSIVE MODE").execute(&mut *conn).await {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(e.into());
            }
        }
    }
    let result = async {
        let tail = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
        let (mut seq, mut prev): (i64, String) = match tail {
            Some(row) => (row.get(0), row.get(1)),
            None => (0, GENESIS.to_string()),
        };
        let mut seqs = vec![];
        for r in records {
            seq += 1;
            let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let before = r.before.as_ref().map(canonical_json);
            let after = r.after.as_ref().map(canonical_json);
            let hash = record_hash(seq, &at, &r, &before, &after, &prev);
            sqlx::query("INSERT INTO audit (seq, at, actor, action, plan_id, run_id, step_id, item_id, before, after, approver, outcome, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
                .bind(seq)
                .bind(&at)
                .bind(&r.actor)
                .bind(&r.action)
                .bind(&r.plan_id)
                .bind(&r.run_id)
                .bind(&r.step_id)
                .bind(&r.item_id)
                .bind(&before)
                .bind(&after)
                .bind(&r.approver)
                .bind(&r.outcome)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut *conn)
                .await?;
            seqs.push(seq);
            prev = hash;
        }
        Ok::<_, sqlx::Error>(seqs)
    }
    .await;
    match result {
        Ok(seqs) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(seqs)
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e.into())
        }
    }
}

/// Every record, in order.
pub async fn records(store: &Store) -> StoreResult<Vec<Record>> {
    let rows = sqlx::query("SELECT seq, at, actor, action, plan_id, run_id, step_id, item_id, before, after, approver, outcome, prev_hash, hash FROM audit ORDER BY seq")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            let at: String = r.get(1);
            let before: Option<String> = r.get(8);
            let after: Option<String> = r.get(9);
            Ok(Record {
                seq: r.get(0),
                at: DateTime::parse_from_rfc3339(&at)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                actor: r.get(2),
                action: r.get(3),
                plan_id: r.get(4),
                run_id: r.get(5),
                step_id: r.get(6),
                item_id: r.get(7),
                before: before.as_deref().map(|s| serde_json::from_str(s).unwrap_or(Value::String(s.into()))),
                after: after.as_deref().map(|s| serde_json::from_str(s).unwrap_or(Value::String(s.into()))),
                approver: r.get(10),
                outcome: r.get(11),
                prev_hash: r.get(12),
                hash: r.get(13),
            })
        })
        .collect()
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verification {
    pub records: u64,
    pub ok: bool,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    /// The record where the chain breaks.
    pub seq: i64,
    pub message: String,
}

/// Re-computes the chain from the raw stored text (not from re-serialized values, so a
/// one-byte edit anywhere in a record is caught).
pub async fn verify(store: &Store) -> StoreResult<Verification> {
    let rows = sqlx::query("SELECT seq, at, actor, action, plan_id, run_id, step_id, item_id, before, after, approver, outcome, prev_hash, hash FROM audit ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .map_err(|e| StoreError::Damaged(format!("the audit table cannot be read: {e}")))?;
    let mut problems = vec![];
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1i64;
    for row in &rows {
        let seq: i64 = row.try_get(0).map_err(|e| StoreError::Damaged(e.to_string()))?;
        let text = |i: usize| -> Option<String> { row.try_get::<Option<String>, _>(i).ok().flatten() };
        let at = text(1).unwrap_or_default();
        let r = NewRecord {
            actor: text(2).unwrap_or_default(),
            action: text(3).unwrap_or_default(),
            plan_id: text(4),
            run_id: text(5),
            step_id: text(6),
            item_id: text(7),
            before: None,
            after: None,
            approver: text(10),
            outcome: text(11).unwrap_or_default(),
        };
        let prev_hash = text(12).unwrap_or_default();
        let hash = text(13).unwrap_or_default();
        if seq != expected_seq {
            problems.push(Problem {
                seq,
                message: if seq > expected_seq {
                    format!("records {expected_seq}..{} are missing (deleted)", seq - 1)
                } else {
                    format!("record {seq} is out of order")
                },
            });
        }
        if prev_hash != prev {
            problems.push(Problem {
                seq,
                message: format!(
                    "record {seq} does not chain onto the record before it (deleted or reordered records)"
                ),
            });
        }
        let computed = record_hash(seq, &at, &r, &text(8), &text(9), &prev_hash);
        if computed != hash {
            problems.push(Problem {
                seq,
                message: format!(
                    "record {seq} ({} by {} at {at}) was edited: its content no longer matches its hash",
                    r.action, r.actor
                ),
            });
        }
        prev = hash;
        expected_seq = seq + 1;
    }
    Ok(Verification { records: rows.len() as u64, ok: problems.is_empty(), problems })
}

/// CSV with a header; JSON values as compact text. A cell a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, tab, CR first) starts with `'` instead.
pub fn to_csv(records: &[Record]) -> String {
    fn cell(s: &str) -> String {
        let s = tabflow_site::text::csv_safe(s);
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.into_owned() }
    }
    let mut out = String::from(
        "seq,at,actor,action,plan_id,run_id,step_id,item_id,before,after,approver,outcome,prev_hash,hash\n",
    );
    for r in records {
        let opt = |o: &Option<String>| cell(o.as_deref().unwrap_or(""));
        let val = |o: &Option<Value>| cell(&o.as_ref().map(canonical_json).unwrap_or_default());
        let line = [
            r.seq.to_string(),
            r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            cell(&r.actor),
            cell(&r.action),
            opt(&r.plan_id),
            opt(&r.run_id),
            opt(&r.step_id),
            opt(&r.item_id),
            val(&r.before),
            val(&r.after),
            opt(&r.approver),
            cell(&r.outcome),
            r.prev_hash.clone(),
            r.hash.clone(),
        ]
        .join(",");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, s)
    }

    fn rec(i: usize) -> NewRecord {
        NewRecord {
            actor: "admin".into(),
            action: "move".into(),
            item_id: Some(format!("w{i}")),
            before: Some(json!({"project": "Finance"})),
            after: Some(json!({"project": "Archive"})),
            outcome: "applied".into(),
            ..NewRecord::default()
        }
    }

    #[tokio::test]
    async fn an_intact_chain_verifies_and_edits_deletions_and_reordering_are_named() {
        let (_d, s) = store().await;
        for i in 0..5 {
            append(&s, rec(i)).await.unwrap();
        }
        let v = verify(&s).await.unwrap();
        assert!(v.ok && v.records == 5, "{v:?}");

        sqlx::query("UPDATE audit SET after = replace(after, 'Archive', 'Archivf') WHERE seq = 3")
            .execute(s.pool())
            .await
            .unwrap();
        let v = verify(&s).await.unwrap();
        assert!(!v.ok);
        assert_eq!(v.problems[0].seq, 3, "{v:?}");
        assert!(v.problems[0].message.contains("edited"));
        sqlx::query("UPDATE audit SET after = replace(after, 'Archivf', 'Archive') WHERE seq = 3")
            .execute(s.pool())
            .await
            .unwrap();
        assert!(verify(&s).await.unwrap().ok);

        sqlx::query("DELETE FROM audit WHERE seq = 2").execute(s.pool()).await.unwrap();
        let v = verify(&s).await.unwrap();
        assert!(!v.ok && v.problems.iter().all(|p| p.seq == 3), "{v:?}");
    }

    #[tokio::test]
    async fn swapping_two_records_breaks_the_chain() {
        let (_d, s) = store().await;
        for i in 0..4 {
            append(&s, rec(i)).await.unwrap();
        }
        // Swap the contents of records 2 and 3 (keeping seq numbers).
        sqlx::query("UPDATE audit SET seq = -2 WHERE seq = 2").execute(s.pool()).await.unwrap();
        sqlx::query("UPDATE audit SET seq = 2 WHERE seq = 3").execute(s.pool()).await.unwrap();
        sqlx::query("UPDATE audit SET seq = 3 WHERE seq = -2").execute(s.pool()).await.unwrap();
        let v = verify(&s).await.unwrap();
        assert!(!v.ok);
        assert_eq!(v.problems[0].seq, 2);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let r = Record {
            seq: 1,
            at: Utc::now(),
            actor: "a,b".into(),
            action: "x".into(),
            plan_id: None,
            run_id: None,
            step_id: None,
            item_id: None,
            before: Some(json!({"k": "v"})),
            after: None,
            approver: None,
            outcome: "ok".into(),
            prev_hash: GENESIS.into(),
            hash: "h".into(),
        };
        let csv = to_csv(&[r]);
        assert!(csv.lines().nth(1).unwrap().starts_with("1,"));
        assert!(csv.contains("\"a,b\""));
        assert!(csv.contains("\"{\"\"k\"\":\"\"v\"\"}\""));
        // A formula from outside (an actor or outcome) is text in a spreadsheet.
        let mut r = records_one();
        r.actor = "=HYPERLINK(\"http://x\")".into();
        r.outcome = "@SUM(A1)".into();
        let csv = to_csv(&[r]);
        assert!(csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\"") && csv.contains(",'@SUM(A1),"), "{csv}");
    }

    fn records_one() -> Record {
        Record {
            seq: 1,
            at: Utc::now(),
            actor: "a".into(),
            action: "x".into(),
            plan_id: None,
            run_id: None,
            step_id: None,
            item_id: None,
            before: None,
            after: None,
            approver: None,
            outcome: "ok".into(),
            prev_hash: GENESIS.into(),
            hash: "h".into(),
        }
    }
}
