//! The repository usage source against a real PostgreSQL holding the workgroup schema subset.
//! PostgreSQL is `TABFLOW_TEST_PG_URL`, by default 127.0.0.1:5432 (user postgres, database
//! test) as on the project's machines; set TABFLOW_SKIP_PG=1 to skip on a machine without it.

use chrono::{Duration, NaiveDateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPoolOptions;
use tabflow_client::repository::Repository;

/// The test database: `TABFLOW_TEST_PG_URL`, by default the project machines' server.
fn pg_url() -> String {
    std::env::var("TABFLOW_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its password, if any, replaced by `***` (for messages).
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

async fn pool_or_skip() -> Option<sqlx::PgPool> {
    let url = pg_url();
    match PgPoolOptions::new().max_connections(1).acquire_timeout(std::time::Duration::from_secs(5)).connect(&url).await
    {
        Ok(p) => Some(p),
        Err(e) if std::env::var("TABFLOW_SKIP_PG").as_deref() == Ok("1") => {
            eprintln!("skipped: PostgreSQL not reachable ({e}) and TABFLOW_SKIP_PG=1");
            None
        }
        Err(e) => panic!(
            "PostgreSQL at {} is not reachable ({e}); start it, set TABFLOW_TEST_PG_URL to another server, or set TABFLOW_SKIP_PG=1 to skip",
            without_password(&url)
        ),
    }
}

fn naive(t: chrono::DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

#[tokio::test]
async fn last_access_per_workbook_from_views_stats() {
    let Some(pool) = pool_or_skip().await else { return };
    let schema = format!("tabflow_repo_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await.unwrap();
    let ddl = include_str!("../sql/workgroup_subset.sql");
    sqlx::raw_sql(AssertSqlSafe(format!("SET search_path TO {schema};\n{ddl}"))).execute(&pool).await.unwrap();
    let now = Utc::now();
    let (site, other) = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222");
    let wb = |n: u8| format!("aaaaaaaa-0000-4000-8000-0000000000{n:02}");
    let inserts = format!(
        "SET search_path TO {schema};
         INSERT INTO sites VALUES (1, '{site}', 'Demo', 'demo'), (2, '{other}', 'Other', 'other');
         INSERT INTO workbooks VALUES (1, '{w1}', 'Never Viewed', 1, false), (2, '{w2}', 'Stale', 1, false),
             (3, '{w3}', 'Fresh', 1, false), (4, '{w4}', 'Deleted', 1, true), (5, '{w5}', 'Elsewhere', 2, false);
         INSERT INTO views VALUES (10, gen_random_uuid(), 'Overview', 1, 1), (20, gen_random_uuid(), 'A', 2, 1),
             (21, gen_random_uuid(), 'B', 2, 1), (30, gen_random_uuid(), 'Main', 3, 1), (40, gen_random_uuid(), 'X', 4, 1),
             (50, gen_random_uuid(), 'Y', 5, 2);",
        w1 = wb(1), w2 = wb(2), w3 = wb(3), w4 = wb(4), w5 = wb(5)
    );
    sqlx::raw_sql(AssertSqlSafe(inserts)).execute(&pool).await.unwrap();
    let stale_a = naive(now - Duration::days(100));
    let stale_b = naive(now - Duration::days(120));
    let fresh = naive(now - Duration::days(1));
    for (id, user, view, n, t) in [
        (1, 7, 20, 3, stale_a),
        (2, 8, 21, 2, stale_b),
        (3, 7, 30, 9, fresh),
        (4, 7, 40, 1, fresh),
        (5, 7, 50, 4, fresh),
    ] {
        sqlx::query(AssertSqlSafe(format!("INSERT INTO {schema}.views_stats (id, user_id, view_id, nviews, \"time\", site_id) VALUES ($1, $2, $3, $4, $5, 1)")))
            .bind(id)
            .bind(user)
            .bind(view)
            .bind(n)
            .bind(t)
            .execute(&pool)
            .await
            .unwrap();
    }
    let mut repo = Repository::new(pg_url(), Some(site.to_string()));
    repo.options = vec![("search_path".into(), schema.clone())];
    let report = repo.read_direct().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&pool).await.unwrap();
    let report = report.unwrap();
    assert_eq!(report.source, "repository");
    assert_eq!(
        report.items.len(),
        3,
        "the deleted workbook and the other site's are left out: {:?}",
        report.items.keys()
    );
    let never = &report.items[&wb(1)];
    assert_eq!((never.last_access, never.total_views), (None, Some(0)));
    let stale = &report.items[&wb(2)];
    assert_eq!(stale.last_access.map(|t| t.timestamp()), Some(stale_a.and_utc().timestamp()));
    assert_eq!(stale.total_views, Some(5));
    let fresh_usage = &report.items[&wb(3)];
    assert_eq!(fresh_usage.last_access.map(|t| t.timestamp()), Some(fresh.and_utc().timestamp()));
}

#[tokio::test]
async fn not_the_repository_and_bad_credentials_say_so_without_the_password() {
    let Some(pool) = pool_or_skip().await else { return };
    let schema = format!("tabflow_empty_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await.unwrap();
    let mut repo = Repository::new(pg_url(), None);
    repo.options = vec![("search_path".into(), schema.clone())];
    let e = repo.read_direct().await.unwrap_err();
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&pool).await.unwrap();
    assert!(e.to_string().contains("no views_stats table"), "{e}");
    // Nothing listens on port 9: a connection error that names the server, not the password.
    let repo = Repository::new("postgres://readonly:TopSecret99@127.0.0.1:9/workgroup", None);
    let e = repo.read_direct().await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(text.contains("127.0.0.1:9"), "{text}");
    assert!(!text.contains("TopSecret99"), "{text}");
}
