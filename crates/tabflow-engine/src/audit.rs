//! The audit log: append-only, hash-chained records. Each record carries the SHA-256 of the
//! previous record and its own hash over all of its fields, so `verify` detects an edited
//! field (hash mismatch), a deleted record (gap in `seq` or broken `prev_hash`) and
//! reordering (broken `prev_hash`). Secrets never enter a record: callers pass ids, names
//! and images, never credentials.
//!
//! A chain alone cannot show its newest records cut off, nor a whole chain rewritten
//! consistently. So the head of the chain (its record count and last hash) is also
//! **anchored** outside the store: after each committed append, a line `<records> <hash>` is
//! appended to the anchor file ([`Store::with_audit_anchor`]; the app keeps it in the data
//! directory). `verify` checks every anchored head against the chain: a chain shorter than an
//! anchored head lost its newest records, a stored hash that differs from an anchored one was
//! rewritten. The store is shared by workers; the anchor is the one thing each keeps apart.

use std::collections::BTreeMap;
use std::path::Path;

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
        for mut r in records {
            redact_record(store.audit_secrets(), &mut r);
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
        Ok::<_, sqlx::Error>((seqs, Head { records: seq, hash: prev }))
    }
    .await;
    match result {
        Ok((seqs, head)) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            // After the commit: an anchor may lag the chain (a crash here), never run ahead of it.
            if let Some(path) = store.audit_anchor() {
                anchor_append(path, &head)?;
            }
            Ok(seqs)
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e.into())
        }
    }
}

/// Replaces every secret of the store's list in each text of `r`, nested JSON strings (and
/// object keys) included.
fn redact_record(secrets: &crate::store::AuditSecrets, r: &mut NewRecord) {
    fn text(secrets: &crate::store::AuditSecrets, t: &mut String) {
        if let Some(clean) = secrets.redact(t) {
            *t = clean;
        }
    }
    fn value(secrets: &crate::store::AuditSecrets, v: &mut Value) {
        match v {
            Value::String(s) => text(secrets, s),
            Value::Array(a) => a.iter_mut().for_each(|x| value(secrets, x)),
            Value::Object(o) => {
                let renamed: Vec<(String, String)> =
                    o.keys().filter_map(|k| secrets.redact(k).map(|c| (k.clone(), c))).collect();
                for (old, new) in renamed {
                    if let Some(x) = o.remove(&old) {
                        o.insert(new, x);
                    }
                }
                o.values_mut().for_each(|x| value(secrets, x));
            }
            _ => {}
        }
    }
    for t in [&mut r.actor, &mut r.action, &mut r.outcome] {
        text(secrets, t);
    }
    for t in [&mut r.plan_id, &mut r.run_id, &mut r.step_id, &mut r.item_id, &mut r.approver].into_iter().flatten() {
        text(secrets, t);
    }
    for v in [&mut r.before, &mut r.after].into_iter().flatten() {
        value(secrets, v);
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
    /// The chain's own head (its last record).
    pub head: Head,
    /// What the anchor outside the store says (`None`: this store is not anchored).
    pub anchor: Option<AnchorState>,
    /// What to do about the problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The head of a chain: how many records it has and the hash of the last one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Head {
    pub records: i64,
    pub hash: String,
}

/// The anchor file as `verify` and exports see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnchorState {
    pub path: String,
    /// Whether the file exists (it is made by the first audit write after anchoring began).
    pub exists: bool,
    /// The newest head it records (`None`: no head yet).
    pub head: Option<Head>,
    /// How many heads it records.
    pub heads: u64,
}

/// Appends a head to the anchor file (made `0600` on Unix).
pub fn anchor_append(path: &Path, head: &Head) -> StoreResult<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        StoreError::Refused(format!(
            "the audit record was stored but its anchor {} cannot be written: {e}; make the file writable (or set TABFLOW_AUDIT_ANCHOR to a writable path)",
            path.display()
        ))
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(fail)?;
    // One write per line: appends from several processes never interleave inside a line.
    f.write_all(format!("{} {}\n", head.records, head.hash).as_bytes()).map_err(fail)
}

/// The heads an anchor file records (seq → hash), and the unreadable lines (1-based).
struct AnchorRead {
    exists: bool,
    heads: Vec<(usize, Head)>,
    unreadable: Vec<usize>,
}

fn read_anchor(path: &Path) -> StoreResult<AnchorRead> {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(AnchorRead { exists: false, heads: vec![], unreadable: vec![] });
        }
        Err(e) => {
            return Err(StoreError::Refused(format!(
                "the audit anchor {} cannot be read: {e}; make it readable",
                path.display()
            )));
        }
    };
    let text = String::from_utf8_lossy(&text);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut heads = vec![];
    let mut unreadable = vec![];
    for (i, line) in lines.iter().enumerate() {
        let parsed = line.split_once(' ').and_then(|(n, h)| {
            let n: i64 = n.parse().ok()?;
            (n > 0 && h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| Head { records: n, hash: h.to_string() })
        });
        match parsed {
            Some(h) => heads.push((i + 1, h)),
            // A last line cut short by a crash mid-write is not tampering.
            None if i + 1 == lines.len() && !complete => {}
            None => unreadable.push(i + 1),
        }
    }
    Ok(AnchorRead { exists: true, heads, unreadable })
}

/// The anchor's state for exports and `verify`.
pub fn anchor_state(store: &Store) -> StoreResult<Option<AnchorState>> {
    let Some(path) = store.audit_anchor() else { return Ok(None) };
    let read = read_anchor(path)?;
    let head = read.heads.iter().map(|(_, h)| h).max_by_key(|h| h.records).cloned();
    Ok(Some(AnchorState {
        path: path.display().to_string(),
        exists: read.exists,
        head,
        heads: read.heads.len() as u64,
    }))
}

/// The chain's own head (its last record; `0` and [`GENESIS`] when empty).
pub async fn head(store: &Store) -> StoreResult<Head> {
    let tail =
        sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(store.pool()).await?;
    Ok(match tail {
        Some(row) => Head { records: row.try_get(0)?, hash: row.try_get(1)? },
        None => Head { records: 0, hash: GENESIS.to_string() },
    })
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
    // Every head the anchor records, by record number (two different hashes anchored for
    // one record mean the chain was rewritten between two writes).
    let anchor = match store.audit_anchor() {
        Some(path) => Some((path, read_anchor(path)?)),
        None => None,
    };
    let mut anchored: BTreeMap<i64, &str> = BTreeMap::new();
    if let Some((path, read)) = &anchor {
        for line in &read.unreadable {
            problems.push(Problem {
                seq: 0,
                message: format!(
                    "line {line} of the audit anchor {} is unreadable: the anchor was edited",
                    path.display()
                ),
            });
        }
        for (line, h) in &read.heads {
            match anchored.get(&h.records) {
                Some(other) if *other != h.hash => problems.push(Problem {
                    seq: h.records,
                    message: format!(
                        "the audit anchor {} records two different hashes for record {} (line {line}): the chain was rewritten between two writes",
                        path.display(),
                        h.records
                    ),
                }),
                _ => {
                    anchored.insert(h.records, &h.hash);
                }
            }
        }
    }
    let mut rewritten = 0usize;
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
        if let (Some((path, _)), Some(want)) = (&anchor, anchored.get(&seq))
            && *want != hash
        {
            // Name the first rewritten record; count the rest.
            if rewritten == 0 {
                problems.push(Problem {
                    seq,
                    message: format!(
                        "record {seq} differs from the head anchored in {} (anchored hash {}…, stored {}…): the chain was rewritten after it was anchored",
                        path.display(),
                        want.get(..12).unwrap_or(want),
                        hash.get(..12).unwrap_or(&hash)
                    ),
                });
            }
            rewritten += 1;
        }
        prev = hash;
        expected_seq = seq + 1;
    }
    if rewritten > 1
        && let Some((path, _)) = &anchor
    {
        problems.push(Problem {
            seq: 0,
            message: format!("{rewritten} anchored heads in {} differ from the stored chain", path.display()),
        });
    }
    let last =
        rows.last().map(|r| (r.try_get::<i64, _>(0).unwrap_or(0), r.try_get::<String, _>(13).unwrap_or_default()));
    let head = match last {
        Some((records, hash)) => Head { records, hash },
        None => Head { records: 0, hash: GENESIS.to_string() },
    };
    let mut anchor_problem = rewritten > 0 || anchor.as_ref().is_some_and(|(_, r)| !r.unreadable.is_empty());
    if let (Some((path, _)), Some((&max, _))) = (&anchor, anchored.last_key_value())
        && max > head.records
    {
        anchor_problem = true;
        problems.push(Problem {
            seq: head.records + 1,
            message: format!(
                "the audit log ends at record {} but the anchor {} records {max}: records {}..{max} were deleted from the store",
                head.records,
                path.display(),
                head.records + 1
            ),
        });
    }
    let hint = if problems.is_empty() {
        None
    } else if anchor_problem {
        let path = anchor.as_ref().map(|(p, _)| p.display().to_string()).unwrap_or_default();
        Some(format!(
            "the store was changed outside tabflow: restore it from a backup taken before the change and keep the anchor {path}; if the store was replaced on purpose, move the anchor aside"
        ))
    } else {
        Some("the store was changed outside tabflow: restore it from a backup taken before the change".to_string())
    };
    let anchor_state = anchor.map(|(path, read)| AnchorState {
        path: path.display().to_string(),
        exists: read.exists,
        head: read.heads.iter().map(|(_, h)| h).max_by_key(|h| h.records).cloned(),
        heads: read.heads.len() as u64,
    });
    Ok(Verification { records: rows.len() as u64, ok: problems.is_empty(), problems, head, anchor: anchor_state, hint })
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

    async fn anchored() -> (tempfile::TempDir, Store, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let anchor = dir.path().join("audit.anchor");
        let s = Store::open(&dir.path().join("t.db")).await.unwrap().with_audit_anchor(&anchor);
        (dir, s, anchor)
    }

    #[tokio::test]
    async fn deleting_the_newest_records_is_caught_by_the_anchor() {
        let (_d, s, anchor) = anchored().await;
        for i in 0..5 {
            append(&s, rec(i)).await.unwrap();
        }
        let v = verify(&s).await.unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.anchor.as_ref().and_then(|a| a.head.clone()), Some(v.head.clone()), "{v:?}");
        assert_eq!(std::fs::read_to_string(&anchor).unwrap().lines().count(), 5);
        // The chain of records 1..3 is intact on its own: only the anchor can tell.
        sqlx::query("DELETE FROM audit WHERE seq > 3").execute(s.pool()).await.unwrap();
        let v = verify(&s).await.unwrap();
        assert!(!v.ok, "{v:?}");
        let m = &v.problems.last().unwrap().message;
        assert!(m.contains("ends at record 3 but the anchor") && m.contains("records 5"), "{m}");
        assert!(v.hint.as_deref().unwrap().contains("backup"), "{v:?}");
        // Without an anchor the same store looks intact (what the anchor adds).
        let bare = Store::open_location(s.location()).await.unwrap();
        assert!(verify(&bare).await.unwrap().ok);
    }

    #[tokio::test]
    async fn a_whole_chain_rewritten_consistently_is_caught_by_the_anchor() {
        let (_d, s, _anchor) = anchored().await;
        for i in 0..4 {
            append(&s, rec(i)).await.unwrap();
        }
        // Rewrite every record (record 2 says something else) and re-chain the hashes, as
        // someone with the code and the store could.
        let rows = records(&s).await.unwrap();
        sqlx::query("DELETE FROM audit").execute(s.pool()).await.unwrap();
        let bare = Store::open_location(s.location()).await.unwrap();
        for (i, r) in rows.iter().enumerate() {
            let mut n = rec(i);
            n.actor = r.actor.clone();
            if i == 1 {
                n.outcome = "skipped".into();
            }
            append(&bare, n).await.unwrap();
        }
        assert!(verify(&bare).await.unwrap().ok, "the rewritten chain is consistent in itself");
        let v = verify(&s).await.unwrap();
        assert!(!v.ok, "{v:?}");
        assert_eq!(v.problems[0].seq, 1, "{v:?}");
        assert!(v.problems[0].message.contains("rewritten"), "{v:?}");
    }

    #[tokio::test]
    async fn an_edited_anchor_is_named_and_a_torn_last_line_is_not_tampering() {
        let (_d, s, anchor) = anchored().await;
        append(&s, rec(0)).await.unwrap();
        let mut text = std::fs::read_to_string(&anchor).unwrap();
        text.push_str("2 abc");
        std::fs::write(&anchor, &text).unwrap();
        assert!(verify(&s).await.unwrap().ok, "a line cut short by a crash is skipped");
        text.push('\n');
        std::fs::write(&anchor, &text).unwrap();
        let v = verify(&s).await.unwrap();
        assert!(!v.ok && v.problems[0].message.contains("line 2 of the audit anchor"), "{v:?}");
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
