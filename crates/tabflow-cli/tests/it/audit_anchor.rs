//! The audit anchor through the real binary: the head of the chain is kept in
//! `<data dir>/audit.anchor`, outside the store, so cutting off the newest records or
//! swapping in a consistent chain is detected by `tabflow audit verify`; exports carry it.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

const ARCHIVE: &str = "archive-stale-content project=Finance stale_days=90";

/// Deletes the audit records after `seq` behind tabflow's back.
fn cut_audit_after(h: &Path, seq: i64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", h.join("tabflow.db").display());
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        sqlx::query("DELETE FROM audit WHERE seq > $1").bind(seq).execute(&pool).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&pool).await.unwrap();
        pool.close().await;
    });
}

fn applied(h: &Path, emu: &Emu) {
    let (path, _) = plan_file(h, emu, ARCHIVE, &["q1=archive-all"]);
    let o = run(h, emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn normal_use_verifies_and_every_export_carries_the_anchored_head() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    applied(h, &emu);
    let o = run(h, &emu, &["audit", "verify"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("anchored head: record"), "{}", text(&o.stdout));

    let e: Value = serde_json::from_slice(&run(h, &emu, &["audit", "export", "--format", "json"]).stdout).unwrap();
    let n = e["records"].as_array().unwrap().len() as i64;
    assert!(n > 20, "{e}");
    assert_eq!(e["head"]["records"], n);
    assert_eq!(e["head"]["hash"], e["records"][n as usize - 1]["hash"]);
    assert_eq!(e["anchor"]["head"], e["head"], "the anchor holds the chain's head");
    // The anchor file: one `<records> <hash>` line per audit write, the last one the head.
    let anchor = std::fs::read_to_string(h.join("audit.anchor")).unwrap();
    let last = anchor.lines().last().unwrap();
    assert_eq!(last, format!("{n} {}", e["head"]["hash"].as_str().unwrap()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(h.join("audit.anchor")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the anchor is private: {mode:o}");
    }

    let csv = text(&run(h, &emu, &["audit", "export", "--format", "csv"]).stdout);
    let tail = csv.lines().last().unwrap();
    let hash = e["head"]["hash"].as_str().unwrap();
    assert_eq!(tail, format!("#head,{n},{hash},anchor,{n},{hash}"));
}

#[test]
fn deleting_the_newest_audit_records_fails_verify_naming_both_counts() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    applied(h, &emu);
    let e: Value = serde_json::from_slice(&run(h, &emu, &["audit", "export", "--format", "json"]).stdout).unwrap();
    let n = e["records"].as_array().unwrap().len();
    // Cut off the last three records: what is left is a valid chain on its own.
    cut_audit_after(h, n as i64 - 3);
    let o = run(h, &emu, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("the audit log ends at record {} but the anchor", n - 3))
            && out.contains(&format!("records {n}")),
        "{out}"
    );
    assert!(text(&o.stderr).contains("hint: "), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&run(h, &emu, &["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["anchor"]["head"]["records"], n as i64, "{v}");
}

#[test]
fn a_whole_store_swapped_for_a_consistent_chain_fails_verify() {
    let (emu, other) = (serve(), serve());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    applied(a.path(), &emu);
    // Another home does the same work on another site: its chain is valid in itself.
    applied(b.path(), &other);
    assert!(run(b.path(), &other, &["audit", "verify"]).status.success());
    std::fs::copy(b.path().join("tabflow.db"), a.path().join("tabflow.db")).unwrap();
    let o = run(a.path(), &emu, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(out.contains("differs from the head anchored in") && out.contains("rewritten"), "{out}");
    assert!(text(&o.stderr).contains("move the anchor aside"), "{}", text(&o.stderr));
}
