//! The PostgreSQL state store through the real binary: plan → apply → rollback with
//! `TABFLOW_STORE=postgres://…`, runs and audit read back from PostgreSQL, and nothing left in
//! a SQLite file. PostgreSQL must be at 127.0.0.1:5432 (user postgres, trust auth), as on the
//! project's machines; set TABFLOW_SKIP_PG=1 to skip on a machine without it.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use sqlx::AssertSqlSafe;
use support::*;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn with_store(home: &Path, emu: &Emu, store: &str, args: &[&str]) -> Output {
    cmd(home, emu, args).env("TABFLOW_STORE", store).output().unwrap()
}

fn ok(o: &Output, what: &str) -> Value {
    assert!(o.status.success(), "{what} failed: {}\n{}", text(&o.stderr), text(&o.stdout));
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

#[test]
fn plan_apply_rollback_with_the_store_in_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = match rt.block_on(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(PG),
    ) {
        Ok(p) => p,
        Err(e) if std::env::var("TABFLOW_SKIP_PG").as_deref() == Ok("1") => {
            eprintln!("skipped: PostgreSQL not reachable ({e}) and TABFLOW_SKIP_PG=1");
            return;
        }
        Err(e) => panic!("PostgreSQL at {PG} is not reachable ({e}); start it, or set TABFLOW_SKIP_PG=1"),
    };
    let schema = format!("tabflow_cli_{}", uuid::Uuid::new_v4().simple());
    rt.block_on(sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin)).unwrap();
    let store = format!("{PG}?options=-c%20search_path%3D{schema}");

    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let before = state(&emu);
    let plan_path = h.join("plan.json");
    let o = with_store(
        h,
        &emu,
        &store,
        &[
            "plan",
            "--intent",
            "archive-stale-content",
            "--param",
            "project=Finance",
            "--answer",
            "q1=archive-all",
            "--json",
            "-o",
            plan_path.to_str().unwrap(),
        ],
    );
    let plan = ok(&o, "plan");
    let moved = plan["steps"].as_array().unwrap().iter().find(|s| s["kind"] == "archive-workbooks").unwrap()["items"]
        .as_array()
        .unwrap()
        .len();
    let r = ok(
        &with_store(h, &emu, &store, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"]),
        "apply",
    );
    assert_eq!(r["status"], "succeeded", "{r}");
    let run_id = r["run_id"].as_str().unwrap().to_string();
    assert_ne!(state(&emu), before);

    // The run, its journal and the audit records are in PostgreSQL.
    let count = |sql: &str| -> i64 {
        rt.block_on(sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.replace("{s}", &schema))).fetch_one(&admin)).unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM {s}.runs"), 1);
    assert!(count("SELECT count(*) FROM {s}.journal WHERE phase = 'applied'") >= moved as i64);
    assert!(count("SELECT count(*) FROM {s}.audit") > moved as i64);
    let runs = ok(&with_store(h, &emu, &store, &["runs", "list", "--json"]), "runs list");
    assert_eq!(runs[0]["id"], run_id.as_str());

    let o = with_store(h, &emu, &store, &["runs", "rollback", &run_id, "--yes", "--json"]);
    assert!(o.status.success(), "rollback: {}\n{}", text(&o.stderr), text(&o.stdout));
    assert_eq!(state(&emu), before, "rollback from the PostgreSQL journal did not restore the site");
    let o = with_store(h, &emu, &store, &["audit", "verify"]);
    assert!(o.status.success(), "audit verify: {}\n{}", text(&o.stderr), text(&o.stdout));
    assert!(!h.join("tabflow.db").exists(), "a SQLite file was written although the store is PostgreSQL");

    // A wrong URL: one clear error, exit 1, the password not shown.
    let o = with_store(h, &emu, "postgres://postgres:hunter2-pw@127.0.0.1:1/test", &["runs", "list"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("cannot be opened") && err.contains("postgres://"), "{err}");
    assert!(!err.contains("hunter2-pw"), "{err}");

    rt.block_on(sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin)).unwrap();
}

/// The outbox in PostgreSQL: an outbox table from before the `channels` column is upgraded,
/// an unreachable SMTP server leaves the messages `failed` (the run succeeds), and `outbox
/// retry` claims and updates them with PostgreSQL's SQL.
#[test]
fn the_outbox_in_postgres_upgrades_records_failures_and_retries() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = match rt.block_on(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(PG),
    ) {
        Ok(p) => p,
        Err(e) if std::env::var("TABFLOW_SKIP_PG").as_deref() == Ok("1") => {
            eprintln!("skipped: PostgreSQL not reachable ({e}) and TABFLOW_SKIP_PG=1");
            return;
        }
        Err(e) => panic!("PostgreSQL at {PG} is not reachable ({e}); start it, or set TABFLOW_SKIP_PG=1"),
    };
    let schema = format!("tabflow_outbox_{}", uuid::Uuid::new_v4().simple());
    for sql in [
        format!("CREATE SCHEMA {schema}"),
        format!(
            "CREATE TABLE {schema}.outbox (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, run_id TEXT NOT NULL, recipient_id TEXT NOT NULL, recipient_name TEXT NOT NULL, recipient_email TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        ),
    ] {
        rt.block_on(sqlx::query(AssertSqlSafe(sql)).execute(&admin)).unwrap();
    }
    let store = format!("{PG}?options=-c%20search_path%3D{schema}");
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let plan_path = h.join("off.json");
    let args = ["plan", "--intent", "offboard-user", "--param", "user=jsmith", "--param", "new_owner=Tom Baker"];
    let o = with_store(h, &emu, &store, &[&args[..], &["--json", "-o", plan_path.to_str().unwrap()]].concat());
    ok(&o, "plan");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let smtp = format!("smtp://127.0.0.1:{closed}");
    let o = cmd(h, &emu, &["apply", plan_path.to_str().unwrap(), "--approve", "all", "--json"])
        .env("TABFLOW_STORE", &store)
        .env("TABFLOW_SMTP_URL", &smtp)
        .env("TABFLOW_NOTIFY_FROM", "tabflow@example.com")
        .output()
        .unwrap();
    let r = ok(&o, "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["notifications"]["failed"], 2, "{r}");
    let rows = ok(&with_store(h, &emu, &store, &["outbox", "list", "--json"]), "outbox list");
    for row in rows.as_array().unwrap() {
        assert_eq!(row["status"], "failed", "{row}");
        assert_eq!(row["channels"]["email"]["attempts"], 1, "{row}");
        assert!(row["detail"].as_str().unwrap().contains("cannot connect to the SMTP server"), "{row}");
    }
    // Still down: failed again (exit 1); without SMTP: kept dry.
    let o = cmd(h, &emu, &["outbox", "retry", "--json"])
        .env("TABFLOW_STORE", &store)
        .env("TABFLOW_SMTP_URL", &smtp)
        .env("TABFLOW_NOTIFY_FROM", "tabflow@example.com")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((t["tried"].as_u64(), t["failed"].as_u64()), (Some(2), Some(2)), "{t}");
    let t = ok(&with_store(h, &emu, &store, &["outbox", "retry", "--json"]), "retry");
    assert_eq!((t["tried"].as_u64(), t["dry"].as_u64()), (Some(2), Some(2)), "{t}");
    let rows = ok(&with_store(h, &emu, &store, &["outbox", "list", "--json"]), "outbox list");
    assert!(rows.as_array().unwrap().iter().all(|r| r["status"] == "dry" && r["channels"]["email"]["attempts"] == 2));
    rt.block_on(sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin)).unwrap();
}
