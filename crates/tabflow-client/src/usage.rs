//! Where "last accessed" comes from. REST has no last-access field, so usage is read from a
//! [`UsageSource`]: Tableau Cloud's Admin Insights through the VizQL Data Service, view-count
//! history that tabflow records itself (works on any server), or the Tableau Server
//! repository. A report says which source answered and how much content it covered; "never
//! viewed" (a known zero) and "no data" (absent from the report) are different answers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tabflow_wire::filter::{Filter, Op};

use crate::client::{Body, Client, Request, Response};
use crate::error::{Error, Result};

/// What kind of content a usage row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Workbook,
    Datasource,
    View,
}

/// Usage of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemUsage {
    pub kind: ItemKind,
    /// `None` = never accessed (as far as the source knows).
    pub last_access: Option<DateTime<Utc>>,
    pub total_views: Option<u64>,
}

/// A usage reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// `admin-insights`, `recorded-history` or `repository`.
    pub source: String,
    pub as_of: DateTime<Utc>,
    /// By item LUID. An item that is absent has no usage data.
    pub items: HashMap<String, ItemUsage>,
    /// How far back the source sees, and other caveats, for the plan to state.
    pub note: String,
}

impl UsageReport {
    /// Share of `ids` the report covers (0..=1).
    pub fn coverage<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> f64 {
        let (mut n, mut hit) = (0usize, 0usize);
        for id in ids {
            n += 1;
            if self.items.contains_key(id) {
                hit += 1;
            }
        }
        if n == 0 { 1.0 } else { hit as f64 / n as f64 }
    }
}

/// A reader of usage data.
pub trait UsageSource: Send + Sync {
    /// Short name recorded in plans.
    fn name(&self) -> &'static str;
    fn read<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<UsageReport>>;
}

// ---------------------------------------------------------------- Admin Insights (Cloud)

/// Admin Insights "Site Content" queried through the VizQL Data Service.
#[derive(Debug, Clone)]
pub struct AdminInsights {
    /// Read workbook rows too (a workbook's last access is also its views' latest).
    pub include_workbooks: bool,
}

impl Default for AdminInsights {
    fn default() -> Self {
        AdminInsights { include_workbooks: true }
    }
}

impl AdminInsights {
    /// LUID of the Admin Insights datasource `name` (as tableau-mcp finds it: by project and name).
    pub async fn datasource_luid(client: &Client, name: &str) -> Result<String> {
        let list =
            client.datasources().filter(Filter::new().and("projectName", Op::Eq, "Admin Insights")).collect().await?;
        list.into_iter().find(|d| d.name.as_deref() == Some(name)).and_then(|d| d.id).ok_or_else(|| {
            Error::Config(format!(
                "no '{name}' datasource in an 'Admin Insights' project: Admin Insights is a Tableau Cloud feature for site administrators"
            ))
        })
    }

    async fn vds(client: &Client, endpoint: &str, body: Value) -> Result<Value> {
        let mut r = Request::new(reqwest::Method::POST, format!("/api/v1/vizql-data-service/{endpoint}"))
            .unscoped()
            .idempotent(true);
        r.body = Some(Body::Json(body));
        client.send_json(r).await
    }

    /// Queries "Site Content" rows (item LUID, type, last access) of `kinds` and hands each to
    /// `row` as it is parsed (see [`AdminInsights::each_row`]).
    async fn query_rows(
        client: &Client,
        luid: &str,
        kinds: &[&str],
        row: impl FnMut(&str, ItemKind, Option<DateTime<Utc>>),
    ) -> Result<()> {
        let resp = Self::query(client, luid, kinds, None).await?;
        Self::each_row(&resp, row)
    }

    /// The "Site Content" answer for rows (item LUID, type, last access) of `kinds`; with
    /// `projects`, only of items whose parent project has one of these names.
    async fn query(client: &Client, luid: &str, kinds: &[&str], projects: Option<&[String]>) -> Result<Response> {
        let mut filters = vec![
            json!({"field": {"fieldCaption": "Item Type"}, "filterType": "SET", "values": kinds, "exclude": false}),
        ];
        if let Some(names) = projects {
            filters.push(json!({"field": {"fieldCaption": "Item Parent Project Name"}, "filterType": "SET", "values": names, "exclude": false}));
        }
        let body = json!({
            "datasource": {"datasourceLuid": luid},
            "query": {"fields": [
                {"fieldCaption": "Item LUID"}, {"fieldCaption": "Item Type"}, {"fieldCaption": "Last Accessed At"}
            ],
            "filters": filters},
            "options": {"returnFormat": "OBJECTS", "debug": false, "disaggregate": false}
        });
        let mut r = Request::new(reqwest::Method::POST, "/api/v1/vizql-data-service/query-datasource")
            .unscoped()
            .idempotent(true);
        r.body = Some(Body::Json(body));
        client.send(r).await
    }

    /// Hands each row of a "Site Content" answer to `row` as it is parsed. At 100k workbooks
    /// the answer has ~250k rows: they are read from the body in place, never as a
    /// `serde_json::Value` tree or a vector of rows.
    pub(crate) fn each_row(resp: &Response, mut row: impl FnMut(&str, ItemKind, Option<DateTime<Utc>>)) -> Result<()> {
        let mut de = serde_json::Deserializer::from_slice(&resp.body);
        let each = |r: Row<'_>| {
            let Some(luid) = r.luid.filter(|l| !l.is_empty()) else {
                return; // an empty extract answers one all-null row
            };
            let kind = match r.kind.as_deref() {
                Some("Workbook") => ItemKind::Workbook,
                Some("Datasource") => ItemKind::Datasource,
                Some("View") => ItemKind::View,
                _ => return,
            };
            row(&luid, kind, r.last.as_deref().and_then(parse_time));
        };
        serde::de::DeserializeSeed::deserialize(Answer(each), &mut de).and_then(|()| de.end()).map_err(|e| {
            Error::Protocol {
                url: "/api/v1/vizql-data-service/query-datasource".into(),
                status: resp.status,
                detail: format!("the answer is not the expected JSON: {e}"),
            }
        })
    }

    /// The "Site Content" answers giving the last access of every datasource and view — with
    /// `within`, of the views in projects of these names only (issue #15: the Finance cleanup
    /// of a 100k-workbook site needs 35 000 of its 250 000 views; the names are those its
    /// workbook and view lists are filtered by, so every listed view is covered). Hand them to
    /// [`AdminInsights::each_row`] in order. The field check runs along with the queries and
    /// decides: fields missing from the datasource are that error, whatever the queries said.
    pub(crate) async fn site_content(client: &Client, within: Option<&[String]>) -> Result<Vec<Response>> {
        let luid = Self::datasource_luid(client, "Site Content").await?;
        let check = Self::check_fields(client, &luid);
        let answers = async {
            match within {
                None => Ok(vec![Self::query(client, &luid, &["Datasource", "View"], None).await?]),
                Some(names) => {
                    let (d, v) = futures::join!(
                        Self::query(client, &luid, &["Datasource"], None),
                        Self::query(client, &luid, &["View"], Some(names))
                    );
                    Ok(vec![d?, v?])
                }
            }
        };
        let (check, answers) = futures::join!(check, answers);
        check?;
        answers
    }

    /// Captions drift between releases: checks that the fields tabflow reads exist.
    async fn check_fields(client: &Client, luid: &str) -> Result<()> {
        let meta = Self::vds(client, "read-metadata", json!({"datasource": {"datasourceLuid": luid}})).await?;
        let captions: Vec<String> = meta
            .get("data")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter().filter_map(|f| f.get("fieldCaption").and_then(|c| c.as_str()).map(str::to_string)).collect()
            })
            .unwrap_or_default();
        for need in ["Item LUID", "Item Type", "Last Accessed At"] {
            if !captions.iter().any(|c| c == need) {
                return Err(Error::Config(format!("Admin Insights 'Site Content' has no '{need}' field on this site")));
            }
        }
        Ok(())
    }

    async fn read_inner(&self, client: &Client) -> Result<UsageReport> {
        let luid = Self::datasource_luid(client, "Site Content").await?;
        Self::check_fields(client, &luid).await?;
        let kinds: Vec<&str> =
            if self.include_workbooks { vec!["Workbook", "Datasource", "View"] } else { vec!["Datasource", "View"] };
        let mut items = HashMap::new();
        Self::query_rows(client, &luid, &kinds, |luid, kind, last_access| {
            items.insert(luid.to_string(), ItemUsage { kind, last_access, total_views: None });
        })
        .await?;
        Ok(UsageReport {
            source: "admin-insights".into(),
            as_of: Utc::now(),
            items,
            note: "Admin Insights Site Content (refreshed daily by Tableau; about 24-48 h behind)".into(),
        })
    }
}

/// One "Site Content" row, borrowed from the answer where its strings have no escapes.
#[derive(Deserialize)]
struct Row<'a> {
    #[serde(rename = "Item LUID", default, borrow)]
    luid: Option<Cow<'a, str>>,
    #[serde(rename = "Item Type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "Last Accessed At", default, borrow)]
    last: Option<Cow<'a, str>>,
}

/// `{"data": [row, ...], ...}` read with a callback per row.
struct Answer<F>(F);

impl<'de, F: FnMut(Row<'_>)> serde::de::DeserializeSeed<'de> for Answer<F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Row<'_>)> serde::de::Visitor<'de> for Answer<F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with a data array")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "data" {
                map.next_value_seed(Rows(&mut self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Rows<'f, F>(&'f mut F);

impl<'de, F: FnMut(Row<'_>)> serde::de::DeserializeSeed<'de> for Rows<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Row<'_>)> serde::de::Visitor<'de> for Rows<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(row) = seq.next_element::<Row<'de>>()? {
            (self.0)(row);
        }
        Ok(())
    }
}

impl UsageSource for AdminInsights {
    fn name(&self) -> &'static str {
        "admin-insights"
    }
    fn read<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<UsageReport>> {
        Box::pin(self.read_inner(client))
    }
}

/// Accepts `2026-01-14T08:30:00Z`, with fractions, and Admin Insights' zone-less form (UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
        .map(|n| n.and_utc())
}

// ---------------------------------------------------------------- recorded history (any server)

/// One recording of every view's `totalViewCount`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewCountSample {
    pub taken_at: DateTime<Utc>,
    /// workbook LUID -> summed total views of its views
    pub workbooks: HashMap<String, u64>,
}

/// View-count history tabflow records itself (`tabflow usage record`, or the scheduler):
/// a workbook was accessed between two samples when its count rose. Works on any server;
/// precision is the recording interval, and it knows nothing before the first sample.
#[derive(Debug, Clone)]
pub struct RecordedHistory {
    /// JSON-lines file of [`ViewCountSample`]s.
    pub path: PathBuf,
}

impl RecordedHistory {
    pub fn new(path: impl Into<PathBuf>) -> RecordedHistory {
        RecordedHistory { path: path.into() }
    }

    /// Reads every view with usage and appends a sample.
    pub async fn record(&self, client: &Client) -> Result<ViewCountSample> {
        let views = client.views(true).collect().await?;
        let mut workbooks: HashMap<String, u64> = HashMap::new();
        for v in views {
            let (Some(wb), Some(u)) = (v.workbook.and_then(|w| w.id), v.usage) else { continue };
            *workbooks.entry(wb).or_default() += u.total_view_count.parse::<u64>().unwrap_or(0);
        }
        let sample = ViewCountSample { taken_at: Utc::now(), workbooks };
        let line = serde_json::to_string(&sample).map_err(|e| Error::Config(e.to_string()))? + "\n";
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        {
            // Owner-only, like the rest of tabflow's data directory.
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o
            .open(&self.path)
            .map_err(|e| Error::Config(format!("cannot write usage history {}: {e}", self.path.display())))?;
        f.write_all(line.as_bytes())
            .map_err(|e| Error::Config(format!("cannot write usage history {}: {e}", self.path.display())))?;
        Ok(sample)
    }

    pub fn samples(&self) -> Result<Vec<ViewCountSample>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::Config(format!("cannot read usage history {}: {e}", self.path.display()))),
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            out.push(serde_json::from_str(line).map_err(|e| {
                Error::Config(format!("usage history {} line {} is damaged: {e}", self.path.display(), i + 1))
            })?);
        }
        Ok(out)
    }

    /// Usage from samples: the last access is bounded by the first sample after the count
    /// last rose; a count that never rose since the first sample means "not accessed since".
    pub fn report_from(samples: &[ViewCountSample]) -> UsageReport {
        let mut items = HashMap::new();
        let mut sorted: Vec<&ViewCountSample> = samples.iter().collect();
        sorted.sort_by_key(|s| s.taken_at);
        if let Some(last) = sorted.last() {
            for (wb, &count) in &last.workbooks {
                let mut last_access = None;
                let mut prev: Option<u64> = None;
                for s in &sorted {
                    if let Some(&c) = s.workbooks.get(wb) {
                        if prev.is_some_and(|p| c > p) {
                            last_access = Some(s.taken_at);
                        }
                        prev = Some(c);
                    }
                }
                // A workbook whose count never rose: never viewed when the count is zero;
                // otherwise viewed before the first sample, which the report cannot date.
                if last_access.is_none() && count > 0 {
                    continue;
                }
                items.insert(wb.clone(), ItemUsage { kind: ItemKind::Workbook, last_access, total_views: Some(count) });
            }
        }
        let since = sorted.first().map(|s| s.taken_at.to_rfc3339()).unwrap_or_else(|| "never".into());
        UsageReport {
            source: "recorded-history".into(),
            as_of: sorted.last().map(|s| s.taken_at).unwrap_or_else(Utc::now),
            items,
            note: format!("view counts recorded by tabflow since {since} ({} samples)", sorted.len()),
        }
    }
}

impl UsageSource for RecordedHistory {
    fn name(&self) -> &'static str {
        "recorded-history"
    }
    fn read<'a>(&'a self, _client: &'a Client) -> BoxFuture<'a, Result<UsageReport>> {
        Box::pin(async move { Ok(RecordedHistory::report_from(&self.samples()?)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(day: i64, counts: &[(&str, u64)]) -> ViewCountSample {
        ViewCountSample {
            taken_at: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
                + chrono::Duration::days(day),
            workbooks: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn history_distinguishes_never_rising_and_unknown() {
        let r = RecordedHistory::report_from(&[
            sample(0, &[("a", 0), ("b", 5), ("c", 3)]),
            sample(10, &[("a", 0), ("b", 7), ("c", 3)]),
            sample(20, &[("a", 0), ("b", 7), ("c", 3)]),
        ]);
        assert_eq!(r.items["a"].last_access, None); // never viewed
        assert_eq!(r.items["b"].last_access, Some(sample(10, &[]).taken_at)); // rose by day 10
        assert!(!r.items.contains_key("c")); // viewed before the first sample: no data
        assert!((r.coverage(["a", "b", "c"]) - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn times() {
        assert!(parse_time("2026-01-14T08:30:00Z").is_some());
        assert!(parse_time("2025-09-02T23:26:02").is_some());
        assert!(parse_time("2025-09-02T23:26:02.123Z").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
