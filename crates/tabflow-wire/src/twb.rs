//! Workbook files (`.twb`) as far as tabflow reads and rewrites them: which published
//! datasources a workbook points at, and pointing it at another one.
//!
//! A workbook refers to a published datasource through a top-level `<datasource>` holding a
//! `<repository-location id='{contentUrl}' path='/t/{site}/datasources'>` and a
//! `<connection class='sqlproxy' dbname='{contentUrl}'>` (TABLEAU-LINEAGE.md §2). Repointing
//! changes what Tableau's own migration transformer changes — `dbname`, the location's `id`
//! and `derived-from` — plus the friendly name and caption; the local `sqlproxy.*` name and
//! every `[sqlproxy.x].[field]` reference stay as they are, so the target must have fields
//! with the same internal names (the planner checks that first).
//!
//! Packaged workbooks (`.twbx`, a zip archive) are refused with a clear error: this build
//! has no zip inflater, and Tableau stores the `.twb` inside compressed.

use std::collections::BTreeSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};

/// What is wrong with a workbook file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not well-formed XML.
    #[error("the workbook file is not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed, but not a workbook.
    #[error("the file is not a Tableau workbook (its root element is <{0}>)")]
    NotAWorkbook(String),
    /// A packaged workbook, which this build cannot rewrite.
    #[error(
        "{0} is a packaged workbook (.twbx); this build rewrites only .twb files — republish it as a .twb or repoint it in Tableau Desktop"
    )]
    Packaged(String),
    /// The file does not point at the datasource to replace.
    #[error("the workbook does not use the published datasource '{0}'")]
    NotUsed(String),
}

/// A published datasource a workbook points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublishedRef {
    /// The published datasource's content URL (the `sqlproxy` connection's `dbname`).
    pub content_url: String,
    /// Its friendly name as the file records it.
    pub name: String,
}

/// Attribute names may carry Tableau's feature-flag mangling: `_.fcp.Flag.true...class`.
fn demangle(key: &str) -> &str {
    if key.starts_with("_.fcp.")
        && let Some((_, plain)) = key.rsplit_once("...")
    {
        return plain;
    }
    key
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| demangle(a.key.as_ref()) == name)
        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
}

/// The XML text of a downloaded workbook file, or why it cannot be used.
pub fn document(filename: &str, bytes: &[u8]) -> Result<String, Error> {
    if bytes.starts_with(b"PK\x03\x04") || filename.to_ascii_lowercase().ends_with(".twbx") {
        return Err(Error::Packaged(filename.to_string()));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| Error::Xml(format!("not UTF-8 text: {e}")))
}

fn is_proxy(e: &BytesStart<'_>) -> bool {
    e.name().as_ref() == "connection" && attr(e, "class").as_deref() == Some("sqlproxy")
}

/// The published datasources a workbook points at, in file order, each once.
pub fn published_datasources(xml: &str) -> Result<Vec<PublishedRef>, Error> {
    let mut r = Reader::from_str(xml);
    let mut out: Vec<PublishedRef> = vec![];
    let mut root = None;
    loop {
        let ev = r.read_event().map_err(|e| Error::Xml(format!("{e} (at byte {})", r.buffer_position())))?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                if root.is_none() {
                    let name = e.name().as_ref().to_string();
                    if name != "workbook" {
                        return Err(Error::NotAWorkbook(name));
                    }
                    root = Some(name);
                }
                if is_proxy(e)
                    && let Some(url) = attr(e, "dbname").filter(|u| !u.is_empty())
                    && !out.iter().any(|p| p.content_url == url)
                {
                    out.push(PublishedRef {
                        content_url: url,
                        name: attr(e, "server-ds-friendly-name").unwrap_or_default(),
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if root.is_none() {
        return Err(Error::Xml("the document is empty".into()));
    }
    Ok(out)
}

/// Points every reference to the published datasource `from` at `to` instead. Everything
/// else is kept; the answer is the new document.
pub fn repoint(xml: &str, from: &str, to: &PublishedRef) -> Result<String, Error> {
    if !published_datasources(xml)?.iter().any(|p| p.content_url == from) {
        return Err(Error::NotUsed(from.to_string()));
    }
    // Pass 1: local names of the top-level datasources whose connection points at `from`.
    let mut r = Reader::from_str(xml);
    let mut current: Vec<Option<String>> = vec![];
    let mut hit = BTreeSet::new();
    loop {
        match r.read_event().map_err(|e| Error::Xml(e.to_string()))? {
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (Event::Start(e) | Event::Empty(e)) = &ev else { continue };
                if is_proxy(e)
                    && attr(e, "dbname").as_deref() == Some(from)
                    && let Some(n) = current.iter().rev().flatten().next()
                {
                    hit.insert(n.clone());
                }
                if matches!(ev, Event::Start(_)) {
                    current.push((e.name().as_ref() == "datasource").then(|| attr(e, "name")).flatten());
                }
            }
            Event::End(_) => {
                current.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // Pass 2: rewrite start tags; text, CDATA (the second PDS copy) and order are kept.
    let mut r = Reader::from_str(xml);
    let mut w = Writer::new(Vec::with_capacity(xml.len() + 64));
    loop {
        let ev = r.read_event().map_err(|e| Error::Xml(e.to_string()))?;
        let out = match ev {
            Event::Eof => break,
            Event::Start(e) => Event::Start(rewrite(&e, &hit, from, to)),
            Event::Empty(e) => Event::Empty(rewrite(&e, &hit, from, to)),
            other => other,
        };
        w.write_event(out).map_err(|e| Error::Xml(e.to_string()))?;
    }
    String::from_utf8(w.into_inner()).map_err(|e| Error::Xml(e.to_string()))
}

fn rewrite(e: &BytesStart<'_>, hit: &BTreeSet<String>, from: &str, to: &PublishedRef) -> BytesStart<'static> {
    let tag = e.name().as_ref().to_string();
    let proxy = is_proxy(e) && attr(e, "dbname").as_deref() == Some(from);
    let ds = tag == "datasource" && attr(e, "name").is_some_and(|n| hit.contains(&n));
    let location = tag == "repository-location"
        && attr(e, "id").as_deref() == Some(from)
        && attr(e, "path").is_some_and(|p| p.ends_with("/datasources"));
    let mut out = BytesStart::new(tag);
    for a in e.attributes().flatten() {
        let key = a.key.as_ref().to_string();
        let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map(|v| v.into_owned()).unwrap_or_default();
        let value = match demangle(&key) {
            "dbname" if proxy => to.content_url.clone(),
            "server-ds-friendly-name" if proxy && !to.name.is_empty() => to.name.clone(),
            "caption" if ds && !to.name.is_empty() => to.name.clone(),
            "id" if location => to.content_url.clone(),
            "derived-from" if location => {
                value.replace(&format!("/datasources/{from}?"), &format!("/datasources/{}?", to.content_url))
            }
            _ => value,
        };
        out.push_attribute((key.as_str(), value.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The BEFORE example of TABLEAU-LINEAGE.md §2, inside a workbook with a second source.
    const TWB: &str = r#"<?xml version='1.0' encoding='utf-8' ?>
<workbook version='18.1'>
  <datasources>
    <datasource caption='Sales (old)' inline='true' name='sqlproxy.1k2j' version='18.1'>
      <repository-location derived-from='https://tab.example.com/t/finance/datasources/SalesOld?rev=1.3' id='SalesOld' path='/t/finance/datasources' revision='1.3' site='finance' />
      <connection channel='https' class='sqlproxy' dbname='SalesOld' port='443' server='tab.example.com' server-ds-friendly-name='Sales (old)' username=''>
        <relation name='sqlproxy' table='[sqlproxy]' type='table' />
      </connection>
      <column name='[Region]' datatype='string' />
    </datasource>
    <datasource caption='Costs' inline='true' name='sqlproxy.9z' version='18.1'>
      <repository-location id='Costs' path='/t/finance/datasources' site='finance' />
      <connection class='sqlproxy' dbname='Costs' server-ds-friendly-name='Costs' />
    </datasource>
  </datasources>
  <worksheets><worksheet name='S1'><table><view><datasources><datasource caption='Sales (old)' name='sqlproxy.1k2j' /></datasources>
  <rows>[sqlproxy.1k2j].[none:Region:nk]</rows></view></table></worksheet></worksheets>
</workbook>"#;

    fn r(url: &str, name: &str) -> PublishedRef {
        PublishedRef { content_url: url.into(), name: name.into() }
    }

    #[test]
    fn reads_the_published_datasources() {
        assert_eq!(published_datasources(TWB).unwrap(), vec![r("SalesOld", "Sales (old)"), r("Costs", "Costs")]);
        assert_eq!(published_datasources("<datasource/>"), Err(Error::NotAWorkbook("datasource".into())));
        assert!(published_datasources("<workbook><a></workbook>").is_err());
        assert!(published_datasources("").is_err());
    }

    #[test]
    fn repoint_changes_only_the_target_source() {
        let out = repoint(TWB, "SalesOld", &r("SalesNew", "Sales (new)")).unwrap();
        assert_eq!(published_datasources(&out).unwrap(), vec![r("SalesNew", "Sales (new)"), r("Costs", "Costs")]);
        assert!(out.contains("id=\"SalesNew\""), "repository-location id");
        assert!(out.contains("/datasources/SalesNew?rev=1.3"), "derived-from");
        assert!(out.contains("caption=\"Sales (new)\" inline"), "datasource caption");
        // The local name and shelf references are untouched.
        assert!(out.contains("name=\"sqlproxy.1k2j\""));
        assert!(out.contains("[sqlproxy.1k2j].[none:Region:nk]"));
        assert!(!out.contains("SalesOld"));
        // And back again gives the same references.
        let back = repoint(&out, "SalesNew", &r("SalesOld", "Sales (old)")).unwrap();
        assert_eq!(published_datasources(&back).unwrap(), published_datasources(TWB).unwrap());
        assert_eq!(repoint(TWB, "Nope", &r("x", "y")), Err(Error::NotUsed("Nope".into())));
    }

    #[test]
    fn mangled_attribute_names_are_understood() {
        let twb = "<workbook><datasources><datasource name='sqlproxy.a'><connection _.fcp.X.true...class='sqlproxy' dbname='A' /></datasource></datasources></workbook>";
        assert_eq!(published_datasources(twb).unwrap(), vec![r("A", "")]);
        let out = repoint(twb, "A", &r("B", "")).unwrap();
        assert_eq!(published_datasources(&out).unwrap(), vec![r("B", "")]);
    }

    #[test]
    fn packaged_files_are_refused() {
        assert_eq!(document("Book.twbx", b"PK\x03\x04rest"), Err(Error::Packaged("Book.twbx".into())));
        assert_eq!(document("Book.twb", b"<workbook/>").unwrap(), "<workbook/>");
    }
}
