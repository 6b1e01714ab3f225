//! VizQL Data Service over the Admin Insights datasources, and REST usage statistics.
//!
//! Admin Insights is modelled as it is on Tableau Cloud: published datasources named
//! "Site Content", "TS Events" and "TS Users" in a project named "Admin Insights". Their rows
//! are computed from the site: Site Content has one row per workbook, view and datasource
//! (`Last Accessed At` is null when never accessed); TS Events holds `Access View` events of
//! the last 90 days, derived deterministically from view usage; TS Users one row per user.
//! Any other datasource answers `read-metadata` from its fields and queries with no rows.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tabflow_site::{Datasource, Index, Site};

/// A VizQL Data Service error: `{"errorCode","message","datetime"}` with an HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct VdsError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl VdsError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> VdsError {
        VdsError { status, code: code.into(), message: message.into() }
    }
    pub fn status(&self) -> u16 {
        self.status
    }
    pub fn to_json(&self) -> Value {
        json!({"errorCode": self.code, "message": self.message, "datetime": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)})
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Str,
    Int,
    Date,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "STRING",
            Ty::Int => "INTEGER",
            Ty::Date => "DATETIME",
        }
    }
}

const SITE_CONTENT: &[(&str, Ty)] = &[
    ("Item ID", Ty::Int),
    ("Item LUID", Ty::Str),
    ("Item Type", Ty::Str),
    ("Item Name", Ty::Str),
    ("Item Hyperlink", Ty::Str),
    ("Item Parent Project Name", Ty::Str),
    ("Top Parent Project Name", Ty::Str),
    ("Owner Email", Ty::Str),
    ("Created At", Ty::Date),
    ("Updated At", Ty::Date),
    ("Last Published At", Ty::Date),
    ("Last Accessed At", Ty::Date),
    ("Size (bytes)", Ty::Int),
    ("View Workbook ID", Ty::Int),
    ("View Workbook Name", Ty::Str),
    ("Site LUID", Ty::Str),
    ("Tags", Ty::Str),
];

const TS_EVENTS: &[(&str, Ty)] = &[
    ("Event Id", Ty::Int),
    ("Event Date", Ty::Date),
    ("Event Name", Ty::Str),
    ("Event Type", Ty::Str),
    ("Item Id", Ty::Int),
    ("Item LUID", Ty::Str),
    ("Item Type", Ty::Str),
    ("Item Name", Ty::Str),
    ("Workbook Name", Ty::Str),
    ("Project Name", Ty::Str),
    ("Item Owner Id", Ty::Int),
    ("Actor User Id", Ty::Int),
    ("Actor User Name", Ty::Str),
    ("Actor Site Role", Ty::Str),
    ("Site Luid", Ty::Str),
];

const TS_USERS: &[(&str, Ty)] = &[
    ("User ID", Ty::Int),
    ("User LUID", Ty::Str),
    ("User Name", Ty::Str),
    ("User Email", Ty::Str),
    ("User Site Role", Ty::Str),
    ("Last Login Date", Ty::Date),
];

fn ts(t: &DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn opt_ts(t: &Option<DateTime<Utc>>) -> Value {
    t.as_ref().map(ts).unwrap_or(Value::Null)
}

fn parse_date(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

/// The datasource a request names, and which Admin Insights table it is.
fn target<'a>(
    site: &'a Site,
    body: &Value,
) -> Result<(&'a Datasource, Option<&'static [(&'static str, Ty)]>), VdsError> {
    let luid =
        body.get("datasource").and_then(|d| d.get("datasourceLuid")).and_then(|l| l.as_str()).ok_or_else(|| {
            VdsError::new(
                400,
                "400802",
                "The request must name a datasource: {\"datasource\": {\"datasourceLuid\": \"...\"}}.",
            )
        })?;
    let ds = site
        .datasources
        .iter()
        .find(|d| d.id == luid)
        .ok_or_else(|| VdsError::new(404, "404934", format!("Datasource '{luid}' could not be found.")))?;
    let in_insights = site.projects.iter().any(|p| p.id == ds.project_id && p.name == "Admin Insights");
    let table = match (in_insights, ds.name.as_str()) {
        (true, "Site Content") => Some(SITE_CONTENT),
        (true, "TS Events") => Some(TS_EVENTS),
        (true, "TS Users") => Some(TS_USERS),
        _ => None,
    };
    Ok((ds, table))
}

/// `POST /read-metadata`.
pub fn read_metadata(site: &Site, body: &Value) -> Result<Value, VdsError> {
    let (ds, table) = target(site, body)?;
    let fields: Vec<Value> = match table {
        Some(t) => t
            .iter()
            .map(|(c, ty)| json!({"fieldName": c, "fieldCaption": c, "dataType": ty.name(), "logicalTableId": ""}))
            .collect(),
        None => ds
            .fields
            .iter()
            .map(|c| json!({"fieldName": c, "fieldCaption": c, "dataType": "STRING", "logicalTableId": ""}))
            .collect(),
    };
    Ok(json!({"data": fields, "extraData": {"parameters": []}}))
}

/// One row of an Admin Insights table, by position in the site. Its cells are computed when a
/// filter or the answer reads them: a query over a 100k-workbook site's ~355 000 Site Content
/// rows builds only the cells it reads, and only for the rows its filters keep.
#[derive(Clone, Copy)]
enum Row {
    Workbook(usize),
    View(usize, usize),
    Datasource(usize),
    Event { id: u64, wi: usize, vi: usize, at: DateTime<Utc>, actor: usize },
    User(usize),
}

/// The lookups every cell of a table may need, built once per query.
struct Cells<'a> {
    site: &'a Site,
    pname: HashMap<&'a str, &'a str>,
    top: HashMap<&'a str, String>,
    email: HashMap<&'a str, &'a str>,
    uid: HashMap<&'a str, usize>,
    host: String,
}

impl<'a> Cells<'a> {
    fn new(site: &'a Site) -> Cells<'a> {
        let index = Index::new(site);
        Cells {
            site,
            pname: site.projects.iter().map(|p| (p.id.as_str(), p.name.as_str())).collect(),
            top: site
                .projects
                .iter()
                .map(|p| (p.id.as_str(), index.top(&p.id).map(|t| t.name.clone()).unwrap_or_default()))
                .collect(),
            email: site.users.iter().map(|u| (u.id.as_str(), u.email.as_str())).collect(),
            uid: site.users.iter().enumerate().map(|(i, u)| (u.id.as_str(), i + 1)).collect(),
            host: format!("https://tableau.example.com/#/site/{}", site.site.content_url),
        }
    }

    /// The rows of `table`, in the table's order.
    fn rows(&self, table: &'static [(&'static str, Ty)]) -> Vec<Row> {
        let site = self.site;
        let mut rows = Vec::new();
        if std::ptr::eq(table, SITE_CONTENT) {
            for (wi, w) in site.workbooks.iter().enumerate() {
                rows.push(Row::Workbook(wi));
                rows.extend((0..w.views.len()).map(|vi| Row::View(wi, vi)));
            }
            rows.extend((0..site.datasources.len()).map(Row::Datasource));
        } else if std::ptr::eq(table, TS_EVENTS) {
            let cutoff = site.now - Duration::days(90);
            let mut id = 1u64;
            for (wi, w) in site.workbooks.iter().enumerate() {
                for (vi, v) in w.views.iter().enumerate() {
                    let Some(last) = v.last_viewed_at.filter(|t| *t >= cutoff) else { continue };
                    // One event at the last view, and up to two earlier ones within the window.
                    let extra = v.total_views.saturating_sub(1).min(2);
                    for k in 0..=extra {
                        let at = last - Duration::hours(((wi * 31 + vi * 7) % 48) as i64 * k as i64 + 24 * k as i64);
                        if at < cutoff {
                            break;
                        }
                        let actor = (wi * 7 + vi * 13 + k as usize) % site.users.len().max(1);
                        rows.push(Row::Event { id, wi, vi, at, actor });
                        id += 1;
                    }
                }
            }
        } else {
            rows.extend((0..site.users.len()).map(Row::User));
        }
        rows
    }

    /// Column `k` of `row` (columns as the row's table lists them).
    fn cell(&self, row: Row, k: usize) -> Value {
        let site = self.site;
        let pname = |pid: &str| json!(self.pname.get(pid));
        let top = |pid: &str| json!(self.top.get(pid));
        let email = |uid: &str| json!(self.email.get(uid));
        match row {
            Row::Workbook(wi) => {
                let w = &site.workbooks[wi];
                let wid = 1_000_000 + wi;
                match k {
                    0 => json!(wid),
                    1 => json!(w.id),
                    2 => json!("Workbook"),
                    3 => json!(w.name),
                    4 => json!(format!("{}/workbooks/{}", self.host, wid)),
                    5 => pname(&w.project_id),
                    6 => top(&w.project_id),
                    7 => email(&w.owner_id),
                    8 => ts(&w.created_at),
                    9 | 10 => ts(&w.updated_at),
                    11 => opt_ts(&w.last_viewed_at()),
                    12 => json!(w.size),
                    15 => json!(site.site.id),
                    16 => json!(w.tags.join(", ")),
                    _ => Value::Null,
                }
            }
            Row::View(wi, vi) => {
                let w = &site.workbooks[wi];
                let v = &w.views[vi];
                match k {
                    0 => json!(5_000_000 + wi * 16 + vi),
                    1 => json!(v.id),
                    2 => json!("View"),
                    3 => json!(v.name),
                    4 => json!(format!("{}/views/{}/{}", self.host, w.content_url, v.name)),
                    5 => pname(&w.project_id),
                    6 => top(&w.project_id),
                    7 => email(&w.owner_id),
                    8 => ts(&w.created_at),
                    9 | 10 => ts(&w.updated_at),
                    11 => opt_ts(&v.last_viewed_at),
                    13 => json!(1_000_000 + wi),
                    14 => json!(w.name),
                    15 => json!(site.site.id),
                    16 => json!(v.tags.join(", ")),
                    _ => Value::Null,
                }
            }
            Row::Datasource(di) => {
                let d = &site.datasources[di];
                match k {
                    0 => json!(3_000_000 + di),
                    1 => json!(d.id),
                    2 => json!("Datasource"),
                    3 => json!(d.name),
                    4 => json!(format!("{}/datasources/{}", self.host, 3_000_000 + di)),
                    5 => pname(&d.project_id),
                    6 => top(&d.project_id),
                    7 => email(&d.owner_id),
                    8 => opt_ts(&d.created_at),
                    9 | 10 => ts(&d.updated_at),
                    11 => opt_ts(&d.last_accessed_at),
                    12 => json!(d.size),
                    15 => json!(site.site.id),
                    16 => json!(d.tags.join(", ")),
                    _ => Value::Null,
                }
            }
            Row::Event { id, wi, vi, at, actor } => {
                let w = &site.workbooks[wi];
                let v = &w.views[vi];
                let u = &site.users[actor];
                match k {
                    0 => json!(id),
                    1 => ts(&at),
                    2 => json!("Access View"),
                    3 => json!("Access"),
                    4 => json!(5_000_000 + wi * 16 + vi),
                    5 => json!(v.id),
                    6 => json!("View"),
                    7 => json!(v.name),
                    8 => json!(w.name),
                    9 => pname(&w.project_id),
                    10 => json!(self.uid.get(w.owner_id.as_str())),
                    11 => json!(actor + 1),
                    12 => json!(u.email),
                    13 => json!(u.site_role),
                    14 => json!(site.site.id),
                    _ => Value::Null,
                }
            }
            Row::User(i) => {
                let u = &site.users[i];
                match k {
                    0 => json!(i + 1),
                    1 => json!(u.id),
                    2 => json!(u.name),
                    3 => json!(u.email),
                    4 => json!(u.site_role),
                    5 => opt_ts(&u.last_login),
                    _ => Value::Null,
                }
            }
        }
    }
}

/// The values of a `SET` filter, with a hash set of them when all are strings (a filter naming
/// a project subtree's 80 projects tests each of 355 000 rows once, not 80 times).
struct SetFilter {
    values: Vec<Value>,
    strings: Option<HashSet<String>>,
}

impl SetFilter {
    fn new(values: Vec<Value>) -> SetFilter {
        let strings = values.iter().map(|v| v.as_str().map(str::to_string)).collect();
        SetFilter { values, strings }
    }

    /// Whether `v` is one of the values (JSON equality, as `Vec::contains`).
    fn contains(&self, v: &Value) -> bool {
        match &self.strings {
            Some(set) => v.as_str().is_some_and(|s| set.contains(s)),
            None => self.values.contains(v),
        }
    }
}

struct FieldReq {
    col: usize,
    key: String,
    function: Option<String>,
    sort: Option<(bool, i64)>,
}

fn is_aggregate(f: &str) -> bool {
    matches!(f, "SUM" | "AVG" | "MEDIAN" | "COUNT" | "COUNTD" | "MIN" | "MAX" | "STDEV" | "VAR" | "AGG")
}

/// Date parts and truncations applied to a dimension value.
fn transform(f: &str, v: &Value) -> Value {
    let Some(t) = parse_date(v) else { return v.clone() };
    match f {
        "YEAR" => json!(t.year()),
        "QUARTER" => json!((t.month() - 1) / 3 + 1),
        "MONTH" => json!(t.month()),
        "DAY" => json!(t.day()),
        "TRUNC_YEAR" => ts(&t
            .with_month(1)
            .and_then(|x| x.with_day(1))
            .unwrap_or(t)
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()),
        "TRUNC_MONTH" => {
            ts(&t.with_day(1).unwrap_or(t).date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        }
        "TRUNC_DAY" => ts(&t.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()),
        _ => v.clone(),
    }
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn aggregate(f: &str, vals: &[&Value]) -> Value {
    let nums: Vec<f64> = vals.iter().filter_map(|v| v.as_f64()).collect();
    match f {
        "COUNT" => json!(vals.iter().filter(|v| !v.is_null()).count()),
        "COUNTD" => {
            let mut s: Vec<String> = vals.iter().filter(|v| !v.is_null()).map(|v| v.to_string()).collect();
            s.sort();
            s.dedup();
            json!(s.len())
        }
        "SUM" => json!(nums.iter().sum::<f64>()),
        "AVG" => {
            if nums.is_empty() {
                Value::Null
            } else {
                json!(nums.iter().sum::<f64>() / nums.len() as f64)
            }
        }
        "MEDIAN" => {
            let mut n = nums.clone();
            n.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
            n.get(n.len() / 2).map(|x| json!(x)).unwrap_or(Value::Null)
        }
        "MIN" => vals
            .iter()
            .filter(|v| !v.is_null())
            .min_by(|a, b| cmp_values(a, b))
            .map(|v| (*v).clone())
            .unwrap_or(Value::Null),
        "MAX" => vals
            .iter()
            .filter(|v| !v.is_null())
            .max_by(|a, b| cmp_values(a, b))
            .map(|v| (*v).clone())
            .unwrap_or(Value::Null),
        _ => vals.first().map(|v| (*v).clone()).unwrap_or(Value::Null),
    }
}

/// `POST /query-datasource`.
pub fn query_datasource(site: &Site, body: &Value) -> Result<Value, VdsError> {
    let (_ds, table) = target(site, body)?;
    let query = body.get("query").ok_or_else(|| VdsError::new(400, "400802", "The request has no query."))?;
    if let Some(o) = query.as_object() {
        for k in o.keys() {
            if !matches!(k.as_str(), "fields" | "filters" | "parameters") {
                return Err(VdsError::new(400, "400802", format!("Unknown property '{k}' in query.")));
            }
        }
    }
    let fields = query.get("fields").and_then(|f| f.as_array()).filter(|f| !f.is_empty()).ok_or_else(|| {
        VdsError::new(400, "400802", "The query needs at least one field: {\"fields\": [{\"fieldCaption\": \"...\"}]}.")
    })?;
    let Some(table) = table else {
        // Not an Admin Insights datasource: the emulator has no rows for it, only its fields.
        let (ds, _) = target(site, body)?;
        for f in fields {
            let c = f.get("fieldCaption").and_then(|c| c.as_str()).unwrap_or("");
            if !ds.fields.iter().any(|x| x == c) {
                return Err(VdsError::new(400, "400803", format!("Unknown Field: {c}.")));
            }
        }
        return Ok(json!({"data": []}));
    };
    let col_of = |caption: &str| table.iter().position(|(c, _)| *c == caption);
    let mut reqs = Vec::new();
    for f in fields {
        let caption = f.get("fieldCaption").and_then(|c| c.as_str()).ok_or_else(|| {
            VdsError::new(
                400,
                "400802",
                "Every field needs a fieldCaption (calculations are not supported by the emulator).",
            )
        })?;
        let col = col_of(caption).ok_or_else(|| VdsError::new(400, "400803", format!("Unknown Field: {caption}.")))?;
        let function = f.get("function").and_then(|x| x.as_str()).map(str::to_string);
        let key = f.get("fieldAlias").and_then(|a| a.as_str()).map(str::to_string).unwrap_or_else(|| match &function {
            Some(func) if func != "NONE" && func != "UNSPECIFIED" => format!("{func}({caption})"),
            _ => caption.to_string(),
        });
        let sort = f.get("sortDirection").and_then(|d| d.as_str()).map(|d| {
            (d.eq_ignore_ascii_case("DESC"), f.get("sortPriority").and_then(|p| p.as_i64()).unwrap_or(i64::MAX))
        });
        reqs.push(FieldReq { col, key, function, sort });
    }
    let cells = Cells::new(site);
    let cell = |r: &Row, k: usize| cells.cell(*r, k);
    let mut rows = cells.rows(table);
    // Filters.
    for flt in query.get("filters").and_then(|f| f.as_array()).cloned().unwrap_or_default() {
        let caption = flt
            .get("field")
            .and_then(|f| f.get("fieldCaption"))
            .and_then(|c| c.as_str())
            .ok_or_else(|| VdsError::new(400, "400802", "Every filter needs field.fieldCaption."))?;
        let col = col_of(caption).ok_or_else(|| VdsError::new(400, "400803", format!("Unknown Field: {caption}.")))?;
        let kind = flt.get("filterType").and_then(|t| t.as_str()).unwrap_or("");
        let exclude = flt.get("exclude").and_then(|e| e.as_bool()).unwrap_or(false);
        let include_nulls = flt.get("includeNulls").and_then(|e| e.as_bool()).unwrap_or(false);
        match kind {
            "SET" => {
                let values = SetFilter::new(flt.get("values").and_then(|v| v.as_array()).cloned().unwrap_or_default());
                rows.retain(|r| values.contains(&cell(r, col)) != exclude);
            }
            "MATCH" => {
                let s = |k: &str| flt.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let (sw, ew, ct) = (s("startsWith"), s("endsWith"), s("contains"));
                rows.retain(|r| {
                    let c = cell(r, col);
                    let v = c.as_str().unwrap_or("");
                    let m = sw.as_ref().is_none_or(|p| v.starts_with(p.as_str()))
                        && ew.as_ref().is_none_or(|p| v.ends_with(p.as_str()))
                        && ct.as_ref().is_none_or(|p| v.contains(p.as_str()));
                    m != exclude
                });
            }
            "QUANTITATIVE_DATE" | "QUANTITATIVE_NUMERICAL" => {
                let qt = flt.get("quantitativeFilterType").and_then(|t| t.as_str()).unwrap_or("RANGE");
                let dates = kind == "QUANTITATIVE_DATE";
                let bound = |k: &str| -> Option<f64> {
                    let v = flt.get(k)?;
                    if dates { parse_date(v).map(|t| t.timestamp() as f64) } else { v.as_f64() }
                };
                let (lo, hi) = if dates { (bound("minDate"), bound("maxDate")) } else { (bound("min"), bound("max")) };
                // A maxDate names a whole day: include it.
                let hi = if dates && flt.get("maxDate").and_then(|v| v.as_str()).is_some_and(|s| s.len() == 10) {
                    hi.map(|h| h + 86_399.0)
                } else {
                    hi
                };
                rows.retain(|r| {
                    let c = cell(r, col);
                    let v = if dates { parse_date(&c).map(|t| t.timestamp() as f64) } else { c.as_f64() };
                    match (qt, v) {
                        ("ONLY_NULL", v) => v.is_none(),
                        ("ONLY_NON_NULL", v) => v.is_some(),
                        (_, None) => include_nulls,
                        ("MIN", Some(x)) => lo.is_none_or(|l| x >= l),
                        ("MAX", Some(x)) => hi.is_none_or(|h| x <= h),
                        (_, Some(x)) => lo.is_none_or(|l| x >= l) && hi.is_none_or(|h| x <= h),
                    }
                });
            }
            "DATE" => {
                let anchor = flt.get("anchorDate").and_then(parse_date).unwrap_or(site.now);
                let n = flt.get("rangeN").and_then(|v| v.as_i64()).unwrap_or(1);
                let unit = match flt.get("periodType").and_then(|v| v.as_str()).unwrap_or("DAYS") {
                    "MINUTES" => Duration::minutes(1),
                    "HOURS" => Duration::hours(1),
                    "WEEKS" => Duration::weeks(1),
                    "MONTHS" => Duration::days(30),
                    "QUARTERS" => Duration::days(91),
                    "YEARS" => Duration::days(365),
                    _ => Duration::days(1),
                };
                let (from, to) = match flt.get("dateRangeType").and_then(|v| v.as_str()).unwrap_or("LASTN") {
                    "LAST" => (anchor - unit, anchor),
                    "LASTN" => (anchor - unit * n as i32, anchor),
                    "NEXT" => (anchor, anchor + unit),
                    "NEXTN" => (anchor, anchor + unit * n as i32),
                    "CURRENT" | "TODATE" => (anchor - unit, anchor),
                    other => return Err(VdsError::new(400, "400802", format!("Unknown dateRangeType '{other}'."))),
                };
                rows.retain(|r| match parse_date(&cell(r, col)) {
                    Some(t) => t >= from && t <= to,
                    None => include_nulls,
                });
            }
            "TOP" => {
                let how_many = flt.get("howMany").and_then(|v| v.as_u64()).unwrap_or(10) as usize;
                let measure = flt
                    .get("fieldToMeasure")
                    .and_then(|f| f.get("fieldCaption"))
                    .and_then(|c| c.as_str())
                    .unwrap_or(caption);
                let mcol = col_of(measure)
                    .ok_or_else(|| VdsError::new(400, "400803", format!("Unknown Field: {measure}.")))?;
                let func =
                    flt.get("fieldToMeasure").and_then(|f| f.get("function")).and_then(|f| f.as_str()).unwrap_or("SUM");
                let bottom = flt.get("direction").and_then(|d| d.as_str()) == Some("BOTTOM");
                let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                for r in &rows {
                    groups.entry(cell(r, col).to_string()).or_default().push(cell(r, mcol));
                }
                let mut scored: Vec<(String, Value)> =
                    groups.into_iter().map(|(k, v)| (k, aggregate(func, &v.iter().collect::<Vec<_>>()))).collect();
                scored.sort_by(|a, b| if bottom { cmp_values(&a.1, &b.1) } else { cmp_values(&b.1, &a.1) });
                let keep: Vec<String> = scored.into_iter().take(how_many).map(|(k, _)| k).collect();
                rows.retain(|r| keep.contains(&cell(r, col).to_string()));
            }
            other => return Err(VdsError::new(400, "400802", format!("Unknown filterType '{other}'."))),
        }
    }
    // The cells the answer reads, of the rows the filters kept; `slot[col]` is a column's place.
    let mut slot = vec![usize::MAX; table.len()];
    let mut cols = Vec::new();
    for q in &reqs {
        if slot[q.col] == usize::MAX {
            slot[q.col] = cols.len();
            cols.push(q.col);
        }
    }
    let rows: Vec<Vec<Value>> = rows.iter().map(|r| cols.iter().map(|&k| cell(r, k)).collect()).collect();
    // Aggregation: group by the fields without an aggregate function.
    let aggregated = reqs.iter().any(|r| r.function.as_deref().is_some_and(is_aggregate));
    let disaggregate =
        body.get("options").and_then(|o| o.get("disaggregate")).and_then(|d| d.as_bool()).unwrap_or(false);
    let mut out: Vec<Vec<Value>> = if aggregated && !disaggregate {
        let mut groups: BTreeMap<Vec<String>, (Vec<Value>, Vec<usize>)> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            let dims: Vec<Value> = reqs
                .iter()
                .filter(|q| !q.function.as_deref().is_some_and(is_aggregate))
                .map(|q| {
                    q.function
                        .as_deref()
                        .map(|f| transform(f, &r[slot[q.col]]))
                        .unwrap_or_else(|| r[slot[q.col]].clone())
                })
                .collect();
            let key: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            groups.entry(key).or_insert_with(|| (dims, vec![])).1.push(i);
        }
        groups
            .into_values()
            .map(|(dims, idx)| {
                let mut d = dims.into_iter();
                reqs.iter()
                    .map(|q| match q.function.as_deref() {
                        Some(f) if is_aggregate(f) => {
                            aggregate(f, &idx.iter().map(|&i| &rows[i][slot[q.col]]).collect::<Vec<_>>())
                        }
                        _ => d.next().unwrap_or(Value::Null),
                    })
                    .collect()
            })
            .collect()
    } else {
        rows.iter()
            .map(|r| {
                reqs.iter()
                    .map(|q| {
                        q.function
                            .as_deref()
                            .map(|f| transform(f, &r[slot[q.col]]))
                            .unwrap_or_else(|| r[slot[q.col]].clone())
                    })
                    .collect()
            })
            .collect()
    };
    // Sort.
    let mut order: Vec<(usize, bool, i64)> =
        reqs.iter().enumerate().filter_map(|(i, q)| q.sort.map(|(desc, p)| (i, desc, p))).collect();
    order.sort_by_key(|(_, _, p)| *p);
    if !order.is_empty() {
        out.sort_by(|a, b| {
            for (i, desc, _) in &order {
                let o = cmp_values(&a[*i], &b[*i]);
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    if let Some(limit) = body.get("options").and_then(|o| o.get("rowLimit")).and_then(|l| l.as_u64()) {
        out.truncate(limit as usize);
    }
    let arrays = body.get("options").and_then(|o| o.get("returnFormat")).and_then(|f| f.as_str()) == Some("ARRAYS");
    let data: Vec<Value> = if arrays {
        out.into_iter().map(Value::Array).collect()
    } else {
        out.into_iter()
            .map(|r| Value::Object(reqs.iter().zip(r).map(|(q, v)| (q.key.clone(), v)).collect::<Map<String, Value>>()))
            .collect()
    };
    Ok(json!({"data": data}))
}

/// Hits in the windows Tableau reports, derived from the total and the span of use
/// (creation to last access), so the windows nest: two weeks ≤ month ≤ 3 months ≤ 12 months ≤ total.
fn windowed(now: DateTime<Utc>, total: u64, created: Option<DateTime<Utc>>, last: Option<DateTime<Utc>>) -> Value {
    let hits = |days: i64| -> u64 {
        let Some(last) = last else { return 0 };
        let start = now - Duration::days(days);
        if last < start {
            return 0;
        }
        let first = created.unwrap_or(last).min(last);
        let span = (last - first).num_seconds().max(86_400) as f64;
        let overlap = (last - first.max(start)).num_seconds().max(0) as f64;
        ((total as f64 * overlap / span).round() as u64).clamp(1.min(total), total)
    };
    json!({
        "hitsTotal": total,
        "hitsLastTwoWeeksTotal": hits(14),
        "hitsLastOneMonthTotal": hits(30),
        "hitsLastThreeMonthsTotal": hits(91),
        "hitsLastTwelveMonthsTotal": hits(365),
    })
}

/// `GET /api/-/content/usage-stats/{workbooks|datasources|flows}/{luid}`.
pub fn usage_stats(site: &Site, kind: &str, luid: &str) -> Option<Value> {
    match kind {
        "workbooks" => site
            .workbooks
            .iter()
            .find(|w| w.id == luid)
            .map(|w| windowed(site.now, w.total_views(), Some(w.created_at), w.last_viewed_at())),
        "datasources" => site
            .datasources
            .iter()
            .find(|d| d.id == luid)
            .map(|d| windowed(site.now, d.total_hits, d.created_at, d.last_accessed_at)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        tabflow_site::generate::demo()
    }

    fn luid(s: &Site, name: &str) -> String {
        s.datasources.iter().find(|d| d.name == name).unwrap().id.clone()
    }

    #[test]
    fn site_content_last_access_matches_the_model() {
        let s = site();
        let body = json!({"datasource": {"datasourceLuid": luid(&s, "Site Content")},
            "query": {"fields": [{"fieldCaption": "Item LUID"}, {"fieldCaption": "Last Accessed At"}],
                      "filters": [{"field": {"fieldCaption": "Item Type"}, "filterType": "SET", "values": ["Workbook"], "exclude": false}]}});
        let r = query_datasource(&s, &body).unwrap();
        let rows = r["data"].as_array().unwrap();
        assert_eq!(rows.len(), s.workbooks.len());
        for row in rows {
            let w = s.workbooks.iter().find(|w| w.id == row["Item LUID"]).unwrap();
            assert_eq!(row["Last Accessed At"], opt_ts(&w.last_viewed_at()));
        }
    }

    #[test]
    fn top_parent_project_is_the_top_of_the_nested_projects() {
        let s = site();
        let body = json!({"datasource": {"datasourceLuid": luid(&s, "Site Content")},
            "query": {"fields": [{"fieldCaption": "Item LUID"}, {"fieldCaption": "Top Parent Project Name"}],
                      "filters": [{"field": {"fieldCaption": "Item Type"}, "filterType": "SET", "values": ["Workbook"], "exclude": false}]}});
        let r = query_datasource(&s, &body).unwrap();
        let mut nested = 0;
        for row in r["data"].as_array().unwrap() {
            let w = s.workbooks.iter().find(|w| w.id == row["Item LUID"]).unwrap();
            // Walk up by hand: the demo's projects form a tree.
            let mut p = s.projects.iter().find(|p| p.id == w.project_id).unwrap();
            if p.parent_id.is_some() {
                nested += 1;
            }
            while let Some(parent) = &p.parent_id {
                p = s.projects.iter().find(|x| &x.id == parent).unwrap();
            }
            assert_eq!(row["Top Parent Project Name"], json!(p.name), "{}", w.name);
        }
        assert!(nested > 0, "the demo has workbooks in nested projects");
    }

    #[test]
    fn stale_filter_with_nulls() {
        let s = site();
        let cut = (s.now - Duration::days(90)).format("%Y-%m-%d").to_string();
        let body = json!({"datasource": {"datasourceLuid": luid(&s, "Site Content")},
            "query": {"fields": [{"fieldCaption": "Item LUID"}],
                "filters": [{"field": {"fieldCaption": "Item Type"}, "filterType": "SET", "values": ["Workbook"], "exclude": false},
                            {"field": {"fieldCaption": "Last Accessed At"}, "filterType": "QUANTITATIVE_DATE", "quantitativeFilterType": "MAX", "maxDate": cut, "includeNulls": true}]}});
        let n = query_datasource(&s, &body).unwrap()["data"].as_array().unwrap().len();
        let limit = s.now - Duration::days(90);
        let want = s
            .workbooks
            .iter()
            .filter(|w| w.last_viewed_at().is_none_or(|t| t.date_naive() <= limit.date_naive()))
            .count();
        assert_eq!(n, want);
    }

    #[test]
    fn events_aggregate_to_last_access() {
        let s = site();
        let body = json!({"datasource": {"datasourceLuid": luid(&s, "TS Events")},
            "query": {"fields": [{"fieldCaption": "Item LUID"}, {"fieldCaption": "Event Date", "function": "MAX", "fieldAlias": "last_access"}],
                "filters": [{"field": {"fieldCaption": "Event Type"}, "filterType": "SET", "values": ["Access"], "exclude": false},
                            {"field": {"fieldCaption": "Event Date"}, "filterType": "DATE", "periodType": "DAYS", "dateRangeType": "LASTN", "rangeN": 90}]}});
        let r = query_datasource(&s, &body).unwrap();
        let rows = r["data"].as_array().unwrap();
        assert!(!rows.is_empty());
        for row in rows.iter().take(50) {
            let v = s.workbooks.iter().flat_map(|w| &w.views).find(|v| v.id == row["Item LUID"]).unwrap();
            assert_eq!(row["last_access"], opt_ts(&v.last_viewed_at));
        }
    }

    #[test]
    fn views_of_named_projects_are_those_rows_of_the_whole_answer() {
        let s = tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 400, seed: 2 });
        let names: Vec<String> = s.projects.iter().step_by(3).map(|p| p.name.clone()).collect();
        let query = |filters: Value| {
            let body = json!({"datasource": {"datasourceLuid": luid(&s, "Site Content")},
                "query": {"fields": [{"fieldCaption": "Item LUID"}, {"fieldCaption": "Item Parent Project Name"}, {"fieldCaption": "Last Accessed At"}],
                          "filters": filters}});
            query_datasource(&s, &body).unwrap()["data"].as_array().unwrap().clone()
        };
        let views =
            json!({"field": {"fieldCaption": "Item Type"}, "filterType": "SET", "values": ["View"], "exclude": false});
        let all = query(json!([views]));
        let within = query(
            json!([views, {"field": {"fieldCaption": "Item Parent Project Name"}, "filterType": "SET", "values": names, "exclude": false}]),
        );
        let want: Vec<&Value> =
            all.iter().filter(|r| names.iter().any(|n| r["Item Parent Project Name"] == json!(n))).collect();
        assert!(!want.is_empty() && want.len() < all.len(), "{} of {}", want.len(), all.len());
        assert_eq!(within.iter().collect::<Vec<_>>(), want);
        // Each is a view of a workbook in one of those projects, with its last access.
        for r in &within {
            let (w, v) = s
                .workbooks
                .iter()
                .find_map(|w| w.views.iter().find(|v| v.id == r["Item LUID"]).map(|v| (w, v)))
                .unwrap();
            let p = s.projects.iter().find(|p| p.id == w.project_id).unwrap();
            assert!(names.contains(&p.name));
            assert_eq!(r["Last Accessed At"], opt_ts(&v.last_viewed_at));
        }
        // Excluded: the other views.
        let others = query(
            json!([views, {"field": {"fieldCaption": "Item Parent Project Name"}, "filterType": "SET", "values": names, "exclude": true}]),
        );
        assert_eq!(others.len() + within.len(), all.len());
    }

    #[test]
    fn metadata_and_errors() {
        let s = site();
        let m = read_metadata(&s, &json!({"datasource": {"datasourceLuid": luid(&s, "Site Content")}})).unwrap();
        assert!(
            m["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["fieldCaption"] == "Last Accessed At" && f["dataType"] == "DATETIME")
        );
        let e = query_datasource(&s, &json!({"datasource": {"datasourceLuid": luid(&s, "Site Content")}, "query": {"fields": [{"fieldCaption": "Foobar"}]}})).unwrap_err();
        assert_eq!((e.status, e.code.as_str(), e.message.as_str()), (400, "400803", "Unknown Field: Foobar."));
        assert_eq!(
            query_datasource(&s, &json!({"datasource": {"datasourceLuid": "nope"}, "query": {"fields": []}}))
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(query_datasource(&s, &json!({})).unwrap_err().code, "400802");
    }

    #[test]
    fn usage_windows_nest() {
        let s = site();
        for w in s.workbooks.iter().take(200) {
            let u = usage_stats(&s, "workbooks", &w.id).unwrap();
            let g = |k: &str| u[k].as_u64().unwrap();
            assert!(g("hitsLastTwoWeeksTotal") <= g("hitsLastOneMonthTotal"));
            assert!(g("hitsLastOneMonthTotal") <= g("hitsLastThreeMonthsTotal"));
            assert!(g("hitsLastThreeMonthsTotal") <= g("hitsLastTwelveMonthsTotal"));
            assert!(g("hitsLastTwelveMonthsTotal") <= g("hitsTotal"));
            if w.last_viewed_at().is_none_or(|t| t < s.now - Duration::days(91)) {
                assert_eq!(g("hitsLastThreeMonthsTotal"), 0);
            }
        }
        assert!(usage_stats(&s, "workbooks", "nope").is_none());
    }
}
