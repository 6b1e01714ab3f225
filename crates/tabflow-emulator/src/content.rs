//! Workbook and datasource files: real `.twb`/`.tds` XML generated from the model, reading
//! them back (which published datasources a workbook uses, which fields its sheets use),
//! repointing a workbook from one published datasource to another, multipart publish bodies,
//! and packaged `.twbx`/`.tdsx` files.
//!
//! A workbook refers to a published datasource through a `<connection class='sqlproxy'
//! dbname='{datasource contentUrl}'>` inside a top-level `<datasource>` (TABLEAU-LINEAGE.md).

use std::collections::BTreeSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};
use tabflow_site::{Datasource, Site, Workbook};

/// What is wrong with a file or body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The document is not well-formed XML.
    #[error("the {what} is not well-formed XML: {detail}")]
    Xml { what: &'static str, detail: String },
    /// Well-formed, but not the expected document.
    #[error("the file is not a Tableau {expected} (its root element is <{found}>)")]
    WrongDocument { expected: &'static str, found: String },
    /// A multipart body that cannot be read.
    #[error("the multipart body cannot be read: {0}")]
    Multipart(String),
    /// A packaged file that cannot be read.
    #[error("the packaged file {name} cannot be read: {detail}")]
    Package { name: String, detail: String },
}

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn bracket_table(table: &str) -> String {
    table.split('.').map(|p| format!("[{p}]")).collect::<Vec<_>>().join(".")
}

fn unbracket_table(t: &str) -> String {
    t.split("].[").map(|p| p.trim_matches(|c| c == '[' || c == ']')).collect::<Vec<_>>().join(".")
}

/// A real `.twb` for `wb`: one `sqlproxy` datasource per published datasource it uses, the
/// columns its sheets use, and one worksheet or dashboard per view. Deterministic.
pub fn workbook_twb(site: &Site, wb: &Workbook, server_host: &str) -> String {
    let host = server_host.split(':').next().unwrap_or("localhost");
    let port = server_host.rsplit_once(':').map(|(_, p)| p).unwrap_or("80");
    let site_url = &site.site.content_url;
    let mut s = String::with_capacity(4096);
    s.push_str("<?xml version='1.0' encoding='utf-8' ?>\n");
    s.push_str(&format!(
        "<workbook original-version='18.1' source-build='2025.1.0 (20251.25.0101.0000)' source-platform='linux' version='18.1' xmlns:user='http://www.tableausoftware.com/xml/user'>\n  <repository-location id='{}' path='/t/{}/workbooks' revision='1.0' site='{}' />\n  <preferences />\n  <datasources>\n",
        esc(&wb.content_url),
        esc(site_url),
        esc(site_url)
    ));
    let dss: Vec<&Datasource> =
        wb.datasource_ids.iter().filter_map(|id| site.datasources.iter().find(|d| &d.id == id)).collect();
    let mut used: Vec<Vec<&str>> = Vec::new();
    for (n, d) in dss.iter().enumerate() {
        let cols: Vec<&str> = {
            let mine: Vec<&str> = d.fields.iter().filter(|f| wb.fields_used.contains(f)).map(String::as_str).collect();
            if mine.is_empty() { d.fields.iter().take(3).map(String::as_str).collect() } else { mine }
        };
        s.push_str(&format!(
            "    <datasource caption='{name}' inline='true' name='sqlproxy.{id}' version='18.1'>\n      <repository-location derived-from='http://{host}/t/{site}/datasources/{url}?rev=1.0' id='{url}' path='/t/{site}/datasources' revision='1.0' site='{site}' />\n      <connection channel='http' class='sqlproxy' dbname='{url}' directory='/dataserver' port='{port}' server='{host}' server-ds-friendly-name='{name}' server-oauth='' username='' workgroup-auth-mode='prompt'>\n        <relation name='sqlproxy' table='[sqlproxy]' type='table' />\n      </connection>\n",
            name = esc(&d.name),
            id = n,
            host = esc(host),
            site = esc(site_url),
            url = esc(&d.content_url),
            port = esc(port)
        ));
        for c in &cols {
            s.push_str(&format!(
                "      <column datatype='string' name='[{}]' role='dimension' type='nominal' />\n",
                esc(c)
            ));
        }
        s.push_str("    </datasource>\n");
        used.push(cols);
    }
    s.push_str("  </datasources>\n  <worksheets>\n");
    for v in wb.views.iter().filter(|v| v.sheet_type != "dashboard" && v.sheet_type != "story") {
        s.push_str(&format!(
            "    <worksheet name='{}'>\n      <table>\n        <view>\n          <datasources>\n",
            esc(&v.name)
        ));
        for (n, d) in dss.iter().enumerate() {
            s.push_str(&format!("            <datasource caption='{}' name='sqlproxy.{n}' />\n", esc(&d.name)));
        }
        s.push_str("          </datasources>\n");
        dependencies(&mut s, &used, "          ");
        s.push_str("        </view>\n      </table>\n    </worksheet>\n");
    }
    s.push_str("  </worksheets>\n  <dashboards>\n");
    // A workbook of dashboards only keeps the fields it uses in its dashboards' dependencies
    // (so a download published again uses the same fields).
    let no_sheets = wb.views.iter().all(|v| v.sheet_type == "dashboard" || v.sheet_type == "story");
    for v in wb.views.iter().filter(|v| v.sheet_type == "dashboard" || v.sheet_type == "story") {
        let kind = if v.sheet_type == "story" { " type='storyboard'" } else { "" };
        s.push_str(&format!("    <dashboard name='{}'{kind}>\n", esc(&v.name)));
        if no_sheets {
            dependencies(&mut s, &used, "      ");
        }
        s.push_str("      <zones />\n    </dashboard>\n");
    }
    s.push_str("  </dashboards>\n  <windows />\n</workbook>\n");
    s
}

/// One `<datasource-dependencies>` element per datasource, each listing the columns used,
/// indented by `indent`.
fn dependencies<T: AsRef<str>>(s: &mut String, used: &[Vec<T>], indent: &str) {
    for (n, cols) in used.iter().enumerate() {
        s.push_str(&format!("{indent}<datasource-dependencies datasource='sqlproxy.{n}'>\n"));
        for c in cols {
            s.push_str(&format!(
                "{indent}  <column datatype='string' name='[{}]' role='dimension' type='nominal' />\n",
                esc(c.as_ref())
            ));
        }
        s.push_str(&format!("{indent}</datasource-dependencies>\n"));
    }
}

/// A real `.tds` for a published datasource.
pub fn datasource_tds(_site: &Site, ds: &Datasource) -> String {
    let c = &ds.connection;
    let mut s = String::with_capacity(2048);
    s.push_str("<?xml version='1.0' encoding='utf-8' ?>\n");
    s.push_str(&format!(
        "<datasource formatted-name='{name}' inline='true' source-platform='linux' version='18.1' xmlns:user='http://www.tableausoftware.com/xml/user'>\n  <connection class='federated'>\n    <named-connections>\n      <named-connection caption='{server}' name='{kind}.1'>\n        <connection class='{kind}' dbname='{db}' port='{port}' server='{server}' username='{user}' />\n      </named-connection>\n    </named-connections>\n",
        name = esc(&ds.name),
        server = esc(&c.server),
        kind = esc(&c.kind),
        db = esc(&c.database),
        port = esc(&c.port),
        user = esc(&c.username)
    ));
    match &c.custom_sql {
        Some(sql) => s.push_str(&format!(
            "    <relation connection='{}.1' name='Custom SQL Query' type='text'>{}</relation>\n",
            esc(&c.kind),
            esc(sql)
        )),
        None => s.push_str(&format!(
            "    <relation connection='{}.1' name='{}' table='{}' type='table' />\n",
            esc(&c.kind),
            esc(c.table.rsplit('.').next().unwrap_or(&c.table)),
            esc(&bracket_table(&c.table))
        )),
    }
    s.push_str("  </connection>\n");
    for f in &ds.fields {
        s.push_str(&format!("  <column datatype='string' name='[{}]' role='dimension' type='nominal' />\n", esc(f)));
    }
    s.push_str("</datasource>\n");
    s
}

/// A published datasource a workbook connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedRef {
    /// The published datasource's content URL (the `sqlproxy` connection's `dbname`).
    pub content_url: String,
    /// Its friendly name.
    pub name: String,
}

/// What a `.twb` refers to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TwbInfo {
    pub published_datasources: Vec<PublishedRef>,
    /// Column names (without brackets) the sheets use.
    pub fields_used: Vec<String>,
    /// Worksheet and dashboard names.
    pub worksheets: Vec<String>,
    /// The sheet type of each of `worksheets`, as views report it: `view`, `dashboard`,
    /// `story`.
    pub sheet_types: Vec<String>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.as_ref() == name).and_then(|a| attr_value(&a))
}

fn attr_value(a: &quick_xml::events::attributes::Attribute<'_>) -> Option<String> {
    a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned())
}

fn xml_error(what: &'static str, r: &Reader<&[u8]>, e: impl std::fmt::Display) -> ContentError {
    ContentError::Xml { what, detail: format!("{e} (at byte {})", r.buffer_position()) }
}

/// Reads a `.twb`.
pub fn parse_twb(xml: &str) -> Result<TwbInfo, ContentError> {
    let mut r = Reader::from_str(xml);
    let mut info = TwbInfo::default();
    let mut stack: Vec<String> = Vec::new();
    let mut fields = BTreeSet::new();
    let mut root_seen = false;
    loop {
        let ev = r.read_event().map_err(|e| xml_error(".twb", &r, e))?;
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let Some(e) = start else { continue };
        let name = e.name().as_ref().to_string();
        if !root_seen {
            root_seen = true;
            if name != "workbook" {
                return Err(ContentError::WrongDocument { expected: "workbook (.twb)", found: name });
            }
        }
        let parent = stack.last().map(String::as_str).unwrap_or("");
        match name.as_str() {
            "connection" if attr(&e, "class").as_deref() == Some("sqlproxy") => {
                let url = attr(&e, "dbname").unwrap_or_default();
                let friendly = attr(&e, "server-ds-friendly-name").unwrap_or_default();
                if !url.is_empty() && !info.published_datasources.iter().any(|p| p.content_url == url) {
                    info.published_datasources.push(PublishedRef { content_url: url, name: friendly });
                }
            }
            "worksheet" | "dashboard" if parent == "worksheets" || parent == "dashboards" => {
                if let Some(n) = attr(&e, "name") {
                    info.worksheets.push(n);
                    let kind = match (name.as_str(), attr(&e, "type").as_deref()) {
                        ("worksheet", _) => "view",
                        (_, Some("storyboard")) => "story",
                        _ => "dashboard",
                    };
                    info.sheet_types.push(kind.into());
                }
            }
            "column" if parent == "datasource-dependencies" => {
                if let Some(n) = attr(&e, "name") {
                    fields.insert(n.trim_start_matches('[').trim_end_matches(']').to_string());
                }
            }
            _ => {}
        }
        if !empty {
            stack.push(name);
        }
    }
    if !root_seen {
        return Err(ContentError::Xml { what: ".twb", detail: "the document is empty".into() });
    }
    info.fields_used = fields.into_iter().collect();
    Ok(info)
}

/// What a `.tds` describes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TdsInfo {
    pub kind: String,
    pub server: String,
    pub database: String,
    pub table: String,
    pub custom_sql: Option<String>,
    pub fields: Vec<String>,
}

/// Reads a `.tds`.
pub fn parse_tds(xml: &str) -> Result<TdsInfo, ContentError> {
    let mut r = Reader::from_str(xml);
    let mut info = TdsInfo::default();
    let mut depth = 0usize;
    let mut root_seen = false;
    let mut in_text_relation = false;
    loop {
        let ev = r.read_event().map_err(|e| xml_error(".tds", &r, e))?;
        let (e, empty) = match &ev {
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                in_text_relation = false;
                continue;
            }
            Event::Text(t) if in_text_relation => {
                let raw = t.xml10_content().into_owned();
                let text = quick_xml::escape::unescape(&raw).map(|c| c.into_owned()).unwrap_or(raw);
                info.custom_sql = Some(info.custom_sql.take().unwrap_or_default() + &text);
                continue;
            }
            Event::GeneralRef(g) if in_text_relation => {
                // Entity references arrive as their own events: `a &lt; 3` is three events.
                let name = g.xml10_content().into_owned();
                let ch = match name.as_str() {
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "amp" => "&".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    n => n
                        .strip_prefix("#x")
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .or_else(|| n.strip_prefix('#').and_then(|d| d.parse().ok()))
                        .and_then(char::from_u32)
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                };
                info.custom_sql = Some(info.custom_sql.take().unwrap_or_default() + &ch);
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = e.name().as_ref().to_string();
        if !root_seen {
            root_seen = true;
            if name != "datasource" {
                return Err(ContentError::WrongDocument { expected: "datasource (.tds)", found: name });
            }
        }
        match name.as_str() {
            "connection" => {
                let class = attr(&e, "class").unwrap_or_default();
                if class != "federated" && info.kind.is_empty() {
                    info.kind = class;
                    info.server = attr(&e, "server").unwrap_or_default();
                    info.database = attr(&e, "dbname").unwrap_or_default();
                }
            }
            "relation" => match attr(&e, "type").as_deref() {
                Some("table") if info.table.is_empty() => {
                    info.table = unbracket_table(&attr(&e, "table").unwrap_or_default())
                }
                Some("text") => in_text_relation = !empty,
                _ => {}
            },
            "column" if depth == 1 => {
                if let Some(n) = attr(&e, "name") {
                    info.fields.push(n.trim_start_matches('[').trim_end_matches(']').to_string());
                }
            }
            _ => {}
        }
        if !empty {
            depth += 1;
        }
    }
    if !root_seen {
        return Err(ContentError::Xml { what: ".tds", detail: "the document is empty".into() });
    }
    Ok(info)
}

/// Points every `sqlproxy` connection to the published datasource `from_content_url` at
/// `to_content_url` instead (connection `dbname` and friendly name, the datasource's caption
/// and repository location). Everything else is left byte for byte.
pub fn repoint_twb(
    xml: &str,
    from_content_url: &str,
    to_content_url: &str,
    to_name: &str,
) -> Result<String, ContentError> {
    // Pass 1: names of the top-level datasources whose connection points at `from`.
    let mut r = Reader::from_str(xml);
    let mut current: Option<String> = None;
    let mut hit = BTreeSet::new();
    loop {
        match r.read_event().map_err(|e| xml_error(".twb", &r, e))? {
            Event::Start(e) if e.name().as_ref() == "datasource" => current = attr(&e, "name"),
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "connection" => {
                if attr(&e, "class").as_deref() == Some("sqlproxy")
                    && attr(&e, "dbname").as_deref() == Some(from_content_url)
                    && let Some(n) = &current
                {
                    hit.insert(n.clone());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // Pass 2: rewrite.
    let mut r = Reader::from_str(xml);
    let mut w = Writer::new(Vec::with_capacity(xml.len()));
    loop {
        let ev = r.read_event().map_err(|e| xml_error(".twb", &r, e))?;
        let out = match ev {
            Event::Eof => break,
            Event::Start(e) => Event::Start(rewrite(&e, &hit, from_content_url, to_content_url, to_name)),
            Event::Empty(e) => Event::Empty(rewrite(&e, &hit, from_content_url, to_content_url, to_name)),
            other => other,
        };
        w.write_event(out).map_err(|e| ContentError::Xml { what: ".twb", detail: e.to_string() })?;
    }
    String::from_utf8(w.into_inner()).map_err(|e| ContentError::Xml { what: ".twb", detail: e.to_string() })
}

fn rewrite(e: &BytesStart<'_>, hit: &BTreeSet<String>, from: &str, to: &str, to_name: &str) -> BytesStart<'static> {
    let name = e.name().as_ref().to_string();
    let mut out = BytesStart::new(name.clone());
    let is_proxy_conn = name == "connection"
        && attr(e, "class").as_deref() == Some("sqlproxy")
        && attr(e, "dbname").as_deref() == Some(from);
    let is_ds = name == "datasource" && attr(e, "name").is_some_and(|n| hit.contains(&n));
    let is_location = name == "repository-location"
        && attr(e, "id").as_deref() == Some(from)
        && attr(e, "path").is_some_and(|p| p.contains("/datasources"));
    for a in e.attributes().flatten() {
        let key = a.key.as_ref().to_string();
        let value = attr_value(&a).unwrap_or_default();
        let value = match key.as_str() {
            "dbname" if is_proxy_conn => to.to_string(),
            "server-ds-friendly-name" if is_proxy_conn => to_name.to_string(),
            "caption" if is_ds => to_name.to_string(),
            "id" if is_location => to.to_string(),
            "derived-from" if is_location => {
                value.replace(&format!("/datasources/{from}?"), &format!("/datasources/{to}?"))
            }
            _ => value,
        };
        out.push_attribute((key.as_str(), value.as_str()));
    }
    out
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').map(str::trim).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Reads a `multipart/mixed` or `multipart/form-data` body (binary-safe).
pub fn parse_multipart(content_type_header: &str, body: &[u8]) -> Result<Vec<Part>, ContentError> {
    let mp = |s: &str| ContentError::Multipart(s.to_string());
    if !content_type_header.to_ascii_lowercase().starts_with("multipart/") {
        return Err(ContentError::Multipart(format!(
            "the Content-Type is '{content_type_header}', expected multipart/mixed with a boundary"
        )));
    }
    let boundary = param(content_type_header, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| mp("the Content-Type has no boundary"))?;
    let delim = format!("--{boundary}").into_bytes();
    let mut pos = find(body, &delim, 0).ok_or_else(|| mp("the body does not contain its boundary"))?;
    let mut parts = Vec::new();
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            break;
        }
        // Skip the line break after the delimiter.
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos..].starts_with(b"\n") {
            pos += 1;
        }
        let head_end =
            find(body, b"\r\n\r\n", pos).map(|p| (p, 4)).or_else(|| find(body, b"\n\n", pos).map(|p| (p, 2)));
        let (head_end, sep) = head_end.ok_or_else(|| mp("a part has no blank line after its headers"))?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        let data_start = head_end + sep;
        let mut next_delim = Vec::with_capacity(delim.len() + 2);
        next_delim.extend_from_slice(b"\r\n");
        next_delim.extend_from_slice(&delim);
        let (data_end, next) = match find(body, &next_delim, data_start) {
            Some(p) => (p, p + 2),
            None => {
                let mut lf = b"\n".to_vec();
                lf.extend_from_slice(&delim);
                let p = find(body, &lf, data_start).ok_or_else(|| mp("a part is not closed by the boundary"))?;
                (p, p + 1)
            }
        };
        let mut name = String::new();
        let mut filename = None;
        let mut content_type = None;
        for line in head.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = param(v, "name").unwrap_or_default();
                filename = param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        parts.push(Part { name, filename, content_type, data: body[data_start..data_end].to_vec() });
        pos = next;
        if pos + delim.len() > body.len() {
            return Err(mp("the body ends without its closing boundary"));
        }
    }
    Ok(parts)
}

/// The XML document inside a `.twb`/`.tds` (as is) or a `.twbx`/`.tdsx` (a zip archive, as
/// Tableau Desktop and Python's `zipfile` write it: deflated or stored entries, data
/// descriptors, zip64 — read by [`tabflow_wire::zip`], CRC-checked).
pub fn unpack_document(filename: &str, data: &[u8]) -> Result<String, ContentError> {
    let lower = filename.to_ascii_lowercase();
    if tabflow_wire::zip::looks_like_zip(data) || lower.ends_with(".twbx") || lower.ends_with(".tdsx") {
        let want = if lower.ends_with(".tdsx") || lower.ends_with(".tds") { ".tds" } else { ".twb" };
        return unzip_document(filename, data, want);
    }
    String::from_utf8(data.to_vec())
        .map_err(|e| ContentError::Package { name: filename.into(), detail: format!("not UTF-8 text: {e}") })
}

/// The package's document with extension `ext` (the shallowest one), as text.
fn unzip_document(filename: &str, data: &[u8], ext: &str) -> Result<String, ContentError> {
    let err = |detail: String| ContentError::Package { name: filename.into(), detail };
    let archive = tabflow_wire::zip::Archive::parse(data).map_err(|e| err(e.to_string()))?;
    let entry = archive.document(ext).map_err(|e| err(e.to_string()))?;
    let bytes = archive.read(entry).map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| err(format!("{} is not UTF-8: {e}", entry.name)))
}

/// The stand-in for a datasource's extract inside a `.tdsx`: Hyper's file magic and the
/// datasource it belongs to (the emulator keeps no rows).
pub fn hyper_placeholder(d: &Datasource) -> Vec<u8> {
    let mut b = b"HyperFile\0".to_vec();
    b.extend_from_slice(format!("tabflow emulator extract of {} ({})", d.name, d.id).as_bytes());
    b
}

/// Whether a published datasource file carries an extract (a package with a `.hyper` or
/// `.tde` entry).
pub fn has_extract(data: &[u8]) -> bool {
    tabflow_wire::zip::looks_like_zip(data)
        && tabflow_wire::zip::Archive::parse(data).is_ok_and(|a| {
            a.entries().iter().any(|e| {
                let n = e.name.to_ascii_lowercase();
                n.ends_with(".hyper") || n.ends_with(".tde")
            })
        })
}

/// `Content-Disposition` for downloads (TSC reads the file name from it).
pub fn content_disposition(kind: &str, filename: &str) -> String {
    let safe: String = filename.chars().map(|c| if c == '"' || c.is_control() { '_' } else { c }).collect();
    format!("attachment; name=\"{kind}\"; filename=\"{safe}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 300, seed: 2 })
    }

    #[test]
    fn twb_round_trip() {
        let s = site();
        let wb = s.workbooks.iter().find(|w| !w.datasource_ids.is_empty() && !w.fields_used.is_empty()).unwrap();
        let twb = workbook_twb(&s, wb, "127.0.0.1:8080");
        let info = parse_twb(&twb).unwrap();
        let want: Vec<String> = wb
            .datasource_ids
            .iter()
            .map(|id| s.datasources.iter().find(|d| &d.id == id).unwrap().content_url.clone())
            .collect();
        assert_eq!(info.published_datasources.iter().map(|p| p.content_url.clone()).collect::<Vec<_>>(), want);
        assert_eq!(info.worksheets.len(), wb.views.len());
        for f in &info.fields_used {
            assert!(wb.fields_used.contains(f), "{f}");
        }
        assert_eq!(twb, workbook_twb(&s, wb, "127.0.0.1:8080"), "deterministic");
    }

    #[test]
    fn repoint_changes_only_the_target() {
        let s = site();
        let wb = s.workbooks.iter().find(|w| w.datasource_ids.len() == 2).unwrap();
        let twb = workbook_twb(&s, wb, "h:80");
        let info = parse_twb(&twb).unwrap();
        let (a, b) = (&info.published_datasources[0], &info.published_datasources[1]);
        let out = repoint_twb(&twb, &a.content_url, "NewSource", "New Source").unwrap();
        let after = parse_twb(&out).unwrap();
        assert_eq!(
            after.published_datasources[0],
            PublishedRef { content_url: "NewSource".into(), name: "New Source".into() }
        );
        assert_eq!(&after.published_datasources[1], b);
        assert!(out.contains("caption=\"New Source\""));
        assert_eq!(repoint_twb(&twb, "nothing-matches", "x", "y").map(|o| parse_twb(&o).unwrap()).unwrap(), info);
    }

    #[test]
    fn tds_round_trip() {
        let s = site();
        let d = s.datasources.iter().find(|d| d.fields.len() > 3).unwrap();
        let info = parse_tds(&datasource_tds(&s, d)).unwrap();
        assert_eq!(
            (info.kind.as_str(), info.server.as_str(), info.database.as_str(), info.table.as_str()),
            (
                d.connection.kind.as_str(),
                d.connection.server.as_str(),
                d.connection.database.as_str(),
                d.connection.table.as_str()
            )
        );
        assert_eq!(info.fields, d.fields);
        let mut c = d.clone();
        c.connection.custom_sql = Some("select * from t where a < 3".into());
        assert_eq!(
            parse_tds(&datasource_tds(&s, &c)).unwrap().custom_sql.as_deref(),
            Some("select * from t where a < 3")
        );
    }

    #[test]
    fn wrong_or_broken_documents() {
        assert!(matches!(parse_twb("<datasource/>"), Err(ContentError::WrongDocument { .. })));
        assert!(matches!(parse_twb("<workbook><datasources></workbook>"), Err(ContentError::Xml { .. })));
        assert!(parse_twb("").is_err());
        assert!(matches!(parse_tds("<workbook/>"), Err(ContentError::WrongDocument { .. })));
    }

    #[test]
    fn multipart_like_tsc_builds_it() {
        let body = b"--b0\r\nContent-Disposition: name=\"request_payload\"\r\nContent-Type: text/xml\r\n\r\n<tsRequest/>\r\n--b0\r\nContent-Disposition: name=\"tableau_workbook\"; filename=\"A.twb\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--b\xff\r\n--b0--\r\n";
        let parts = parse_multipart("multipart/mixed; boundary=b0", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "request_payload");
        assert_eq!(parts[0].data, b"<tsRequest/>");
        assert_eq!(parts[1].filename.as_deref(), Some("A.twb"));
        assert_eq!(parts[1].data, b"\x00\x01\r\n--b\xff");
        assert!(parse_multipart("text/xml", body).is_err());
        assert!(parse_multipart("multipart/mixed; boundary=zz", body).is_err());
        assert!(parse_multipart("multipart/mixed; boundary=b0", b"--b0\r\nbroken").is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 7;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"-b0\r\n\"=;:<>PK"[(x % 13) as usize]
                })
                .collect();
            let _ = parse_multipart("multipart/mixed; boundary=b0", &bytes);
            let _ = unpack_document("x.twbx", &bytes);
            let _ = parse_twb(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn packaged_files_stored_and_deflated() {
        let doc = b"<workbook><datasources/></workbook>";
        // A stored entry.
        let mut w = tabflow_wire::zip::Writer::new();
        w.add_stored("Book.twb", doc).unwrap();
        let z = w.finish(b"").unwrap();
        assert_eq!(tabflow_wire::zip::Archive::parse(&z).unwrap().entries()[0].method, 0, "stored");
        assert_eq!(unpack_document("Book.twbx", &z).unwrap(), String::from_utf8(doc.to_vec()).unwrap());
        let e = unpack_document("Book.tdsx", &z).unwrap_err().to_string();
        assert!(e.contains("Book.tdsx") && e.contains("no .tds file"), "{e}");

        // Deflated, in a folder, next to an extract: what Tableau Desktop writes.
        let s = site();
        let wb = s.workbooks.iter().find(|w| !w.datasource_ids.is_empty()).unwrap();
        let twb = workbook_twb(&s, wb, "h:80");
        let mut w = tabflow_wire::zip::Writer::new();
        w.add_deflated("Data/Extracts/x.hyper", &[7; 3000]).unwrap();
        w.add_deflated("Sales/Sales.twb", twb.as_bytes()).unwrap();
        let packed = w.finish(b"").unwrap();
        assert_eq!(unpack_document("Sales.twbx", &packed).unwrap(), twb);
        assert_eq!(parse_twb(&unpack_document("Sales.twbx", &packed).unwrap()).unwrap(), parse_twb(&twb).unwrap());
        let mut bad = packed.clone();
        let at = bad.windows(15).position(|x| x == b"Sales/Sales.twb").unwrap() + 20;
        bad[at] ^= 0x21;
        assert!(matches!(unpack_document("Sales.twbx", &bad), Err(ContentError::Package { .. })));
    }
}
