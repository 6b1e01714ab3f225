//! The Tableau Server repository as a usage source: the read-only PostgreSQL `workgroup`
//! database (`tsm data-access repository-access enable`, port 8060, user `readonly`).
//!
//! Last access per workbook is `MAX(views_stats.time)` over its views — all history, not cut
//! by the audit retention that limits `historical_events` (TABLEAU-USAGE.md §3). Times are
//! `timestamp without time zone` in UTC. A workbook with no `views_stats` rows was never
//! viewed; deleted workbooks (`is_deleted`, the recycle bin) are left out.

use std::collections::HashMap;

use chrono::{NaiveDateTime, Utc};
use futures::future::BoxFuture;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::secret::{ExposeSecret, Secret};
use crate::usage::{ItemKind, ItemUsage, UsageReport, UsageSource};

/// Reads usage from the repository database.
#[derive(Debug, Clone)]
pub struct Repository {
    /// `postgres://readonly:PASSWORD@host:8060/workgroup`; never printed.
    pub url: Secret,
    /// Only this site (its LUID); `None` = every site.
    pub site_luid: Option<String>,
    /// Extra connection options, e.g. `("search_path", "...")` in tests.
    pub options: Vec<(String, String)>,
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    tabflow_site::text::redact_url(url)
}

const LAST_ACCESS: &str = r#"
SELECT w.luid::text AS luid,
       MAX(vs."time") AS last_access,
       COALESCE(SUM(vs.nviews), 0)::bigint AS total_views
FROM workbooks w
JOIN sites s ON s.id = w.site_id
LEFT JOIN views v ON v.workbook_id = w.id
LEFT JOIN views_stats vs ON vs.view_id = v.id
WHERE NOT COALESCE(w.is_deleted, false)
  AND ($1::text IS NULL OR s.luid::text = $1)
GROUP BY w.luid
"#;

impl Repository {
    pub fn new(url: impl Into<String>, site_luid: Option<String>) -> Repository {
        Repository { url: Secret::new(url), site_luid, options: vec![] }
    }

    async fn read_inner(&self) -> Result<UsageReport> {
        let shown = redact_url(self.url.expose_secret());
        let mut opts: PgConnectOptions = self.url.expose_secret().parse().map_err(|e: sqlx::Error| {
            Error::Config(format!("the repository URL {shown} is not valid: {}", scrub(&e.to_string(), &self.url)))
        })?;
        if !self.options.is_empty() {
            opts = opts.options(self.options.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| Error::Connect { url: shown.clone(), detail: scrub(&e.to_string(), &self.url) })?;
        let has_table = sqlx::query("SELECT to_regclass('views_stats') IS NOT NULL AS ok")
            .fetch_one(&pool)
            .await
            .map_err(|e| Error::Connect { url: shown.clone(), detail: scrub(&e.to_string(), &self.url) })?
            .try_get::<bool, _>("ok")
            .unwrap_or(false);
        if !has_table {
            pool.close().await;
            return Err(Error::Config(format!(
                "the database at {shown} has no views_stats table: is this the Tableau Server repository (workgroup)?"
            )));
        }
        let rows = sqlx::query(LAST_ACCESS).bind(self.site_luid.as_deref()).fetch_all(&pool).await.map_err(|e| {
            Error::Config(format!("querying the repository at {shown} failed: {}", scrub(&e.to_string(), &self.url)))
        })?;
        pool.close().await;
        let mut items = HashMap::new();
        for r in rows {
            let luid: String = r.try_get("luid").unwrap_or_default();
            let last: Option<NaiveDateTime> = r.try_get("last_access").ok().flatten();
            let total: i64 = r.try_get("total_views").unwrap_or(0);
            items.insert(
                luid,
                ItemUsage {
                    kind: ItemKind::Workbook,
                    last_access: last.map(|t| t.and_utc()),
                    total_views: Some(total.max(0) as u64),
                },
            );
        }
        Ok(UsageReport {
            source: "repository".into(),
            as_of: Utc::now(),
            items,
            note: "Tableau Server repository views_stats (all history)".into(),
        })
    }
}

/// Removes the password from driver messages that might echo the URL.
fn scrub(msg: &str, url: &Secret) -> String {
    let u = url.expose_secret();
    let pw = u.find("://").and_then(|s| {
        let at = u.rfind('@')?;
        let info = &u[s + 3..at];
        info.split_once(':').map(|(_, p)| p.to_string())
    });
    match pw {
        Some(p) if !p.is_empty() => msg.replace(&p, "***"),
        _ => msg.to_string(),
    }
}

impl UsageSource for Repository {
    fn name(&self) -> &'static str {
        "repository"
    }
    fn read<'a>(&'a self, _client: &'a Client) -> BoxFuture<'a, Result<UsageReport>> {
        Box::pin(self.read_inner())
    }
}

impl Repository {
    /// Reads without a Tableau client (the repository needs none).
    pub async fn read_direct(&self) -> Result<UsageReport> {
        self.read_inner().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://readonly:s3cr3t@tab:8060/workgroup"),
            "postgres://readonly:***@tab:8060/workgroup"
        );
        assert_eq!(redact_url("postgres://tab:8060/workgroup"), "postgres://tab:8060/workgroup");
        let r = Repository::new("postgres://readonly:s3cr3t@tab:8060/workgroup", None);
        assert!(!format!("{r:?}").contains("s3cr3t"));
        assert_eq!(scrub("password s3cr3t rejected", &r.url), "password *** rejected");
    }
}
