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
//! A packaged workbook (`.twbx`) is a zip archive holding the `.twb` (at the root or in a
//! folder) next to extracts and images; [`document`] reads the `.twb` inside and
//! [`repoint_file`] rewrites it and packs a new archive in which every other entry keeps its
//! compressed bytes and CRC ([`crate::zip`]).

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
    /// A packaged workbook (`.twbx`) whose archive cannot be read or rewritten.
    #[error("{file} cannot be used as a packaged workbook (.twbx): {source}")]
    Package {
        file: String,
        #[source]
        source: crate::zip::Error,
    },
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

/// Whether a downloaded workbook file is packaged (`.twbx`): by its content, else its name.
pub fn is_packaged(filename: &str, bytes: &[u8]) -> bool {
    crate::zip::looks_like_zip(bytes) || filename.to_ascii_lowercase().ends_with(".twbx")
}

fn text(bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| Error::Xml(format!("not UTF-8 text: {e}")))
}

/// The archive of a packaged workbook, and the `.twb` entry inside with its text.
fn unpack<'a>(filename: &str, bytes: &'a [u8]) -> Result<(crate::zip::Archive<'a>, crate::zip::Entry, String), Error> {
    let package = |source| Error::Package { file: filename.to_string(), source };
    let archive = crate::zip::Archive::parse(bytes).map_err(package)?;
    let entry = archive.document(".twb").map_err(package)?.clone();
    let xml = text(archive.read(&entry).map_err(package)?)?;
    Ok((archive, entry, xml))
}

/// The XML text of a downloaded workbook file — the file itself, or the `.twb` inside a
/// `.twbx` — or why it cannot be used.
pub fn document(filename: &str, bytes: &[u8]) -> Result<String, Error> {
    if is_packaged(filename, bytes) {
        return unpack(filename, bytes).map(|(_, _, xml)| xml);
    }
    text(bytes.to_vec())
}

/// Repoints a downloaded workbook file (see [`repoint`]) and answers the file to publish:
/// its name and bytes. A `.twb` is rewritten; a `.twbx` is packed again with the rewritten
/// `.twb` and every other entry (extracts, images) copied with its compressed bytes and CRC
/// untouched, under a `.twbx` name (so it is published with `workbookType=twbx`).
pub fn repoint_file(filename: &str, bytes: &[u8], from: &str, to: &PublishedRef) -> Result<(String, Vec<u8>), Error> {
    if !is_packaged(filename, bytes) {
        let xml = text(bytes.to_vec())?;
        return Ok((filename.to_string(), repoint(&xml, from, to)?.into_bytes()));
    }
    let (archive, entry, xml) = unpack(filename, bytes)?;
    let new = repoint(&xml, from, to)?;
    let packed = archive
        .replace(&entry.name, new.as_bytes())
        .map_err(|source| Error::Package { file: filename.to_string(), source })?;
    let name = if filename.to_ascii_lowercase().ends_with(".twbx") {
        filename.to_string()
    } else {
        let stem = filename.strip_suffix(".twb").or_else(|| filename.strip_suffix(".TWB")).unwrap_or(filename);
        format!("{stem}.twbx")
    };
    Ok((name, packed))
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
            Event::Start(e) => Event::Start(rewrite(&e, &hit, from, to)?),
            Event::Empty(e) => Event::Empty(rewrite(&e, &hit, from, to)?),
            other => other,
        };
        w.write_event(out).map_err(|e| Error::Xml(e.to_string()))?;
    }
    String::from_utf8(w.into_inner()).map_err(|e| Error::Xml(e.to_string()))
}

/// The start tag `e` with the repointed values. Every attribute is written back, so one that
/// does not parse (the reader's `attr` skips those) is an error rather than silently dropped:
/// a malformed tag could otherwise swallow the rest of the document and write it back cut.
fn rewrite(
    e: &BytesStart<'_>,
    hit: &BTreeSet<String>,
    from: &str,
    to: &PublishedRef,
) -> Result<BytesStart<'static>, Error> {
    let tag = e.name().as_ref().to_string();
    let proxy = is_proxy(e) && attr(e, "dbname").as_deref() == Some(from);
    let ds = tag == "datasource" && attr(e, "name").is_some_and(|n| hit.contains(&n));
    let location = tag == "repository-location"
        && attr(e, "id").as_deref() == Some(from)
        && attr(e, "path").is_some_and(|p| p.ends_with("/datasources"));
    let mut out = BytesStart::new(tag);
    let malformed = |detail: String| Error::Xml(format!("a malformed attribute in <{}>: {detail}", e.name().as_ref()));
    for a in e.attributes() {
        let a = a.map_err(|x| malformed(x.to_string()))?;
        let key = a.key.as_ref().to_string();
        let value =
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|x| malformed(x.to_string()))?.into_owned();
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
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
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

    fn twbx(twb_name: &str, twb: &str) -> Vec<u8> {
        let mut w = crate::zip::Writer::new();
        w.add_deflated("Data/Extracts/x.hyper", &(0..4000u32).map(|i| (i * 31 % 253) as u8).collect::<Vec<_>>())
            .unwrap();
        w.add_deflated(twb_name, twb.as_bytes()).unwrap();
        w.add_deflated("Image/logo.png", b"\x89PNG").unwrap();
        w.finish(b"").unwrap()
    }

    #[test]
    fn packaged_workbooks_are_read_and_repointed() {
        let file = twbx("Sales/Book.twb", TWB);
        assert!(is_packaged("Book.twbx", &file) && is_packaged("Book.twb", &file) && !is_packaged("B.twb", b"<w/>"));
        assert_eq!(document("Book.twbx", &file).unwrap(), TWB);
        assert_eq!(published_datasources(&document("Book.twbx", &file).unwrap()).unwrap().len(), 2);

        let (name, out) = repoint_file("Book.twbx", &file, "SalesOld", &r("SalesNew", "Sales (new)")).unwrap();
        assert_eq!(name, "Book.twbx");
        let inside = document(&name, &out).unwrap();
        assert_eq!(inside, repoint(TWB, "SalesOld", &r("SalesNew", "Sales (new)")).unwrap());
        let (a, b) = (crate::zip::Archive::parse(&file).unwrap(), crate::zip::Archive::parse(&out).unwrap());
        assert_eq!(
            a.entries().iter().map(|e| &e.name).collect::<Vec<_>>(),
            b.entries().iter().map(|e| &e.name).collect::<Vec<_>>(),
            "same entries, same order"
        );
        for (x, y) in a.entries().iter().zip(b.entries()).filter(|(x, _)| x.name != "Sales/Book.twb") {
            assert_eq!((a.raw(x).unwrap(), x.crc32), (b.raw(y).unwrap(), y.crc32), "{}", x.name);
        }
        // A package served under a .twb name is republished as a .twbx.
        assert_eq!(repoint_file("Book.twb", &file, "Costs", &r("C2", "")).unwrap().0, "Book.twbx");
        assert_eq!(repoint_file("Book.twbx", &file, "Nope", &r("x", "y")).err(), Some(Error::NotUsed("Nope".into())));
        // A plain .twb stays a plain .twb.
        let (name, plain) = repoint_file("Book.twb", TWB.as_bytes(), "SalesOld", &r("SalesNew", "")).unwrap();
        assert_eq!(
            (name.as_str(), String::from_utf8(plain).unwrap()),
            ("Book.twb", repoint(TWB, "SalesOld", &r("SalesNew", "")).unwrap())
        );
        assert_eq!(document("Book.twb", b"<workbook/>").unwrap(), "<workbook/>");
    }

    #[test]
    fn unusable_packages_name_the_file_and_the_problem() {
        let no_twb = {
            let mut w = crate::zip::Writer::new();
            w.add_deflated("Data/Extracts/x.hyper", b"hyper").unwrap();
            w.finish(b"").unwrap()
        };
        let e = document("Book.twbx", &no_twb).unwrap_err();
        assert_eq!(
            e,
            Error::Package { file: "Book.twbx".into(), source: crate::zip::Error::NoDocument(".twb".into()) }
        );
        assert!(
            e.to_string()
                .starts_with("Book.twbx cannot be used as a packaged workbook (.twbx): the archive holds no .twb file"),
            "{e}"
        );
        let e = document("Book.twbx", b"PK\x03\x04rest").unwrap_err();
        assert!(matches!(e, Error::Package { source: crate::zip::Error::Damaged(_), .. }), "{e}");
        let e = document("Book.twbx", b"<workbook/>").unwrap_err();
        assert!(matches!(e, Error::Package { source: crate::zip::Error::NotZip, .. }), "{e}");
        let mut not_xml = twbx("Book.twb", "<workbook><a></workbook>");
        assert!(matches!(repoint_file("Book.twbx", &not_xml, "A", &r("B", "")), Err(Error::Xml(_))));
        // A damaged byte in the .twb's compressed data is caught before anything is rewritten.
        let name_at = not_xml.windows(8).position(|w| w == b"Book.twb").unwrap();
        not_xml[name_at + 8 + 3] ^= 0x40;
        assert!(matches!(document("Book.twbx", &not_xml), Err(Error::Package { .. })));
    }

    /// Found by the stable smoke run of the `twb` fuzz target: a `"` in a tag name opened a
    /// quote that ran to the end of the file, the reader skipped the unparsable attributes,
    /// and the rewrite wrote back a document cut after that tag. Now an error.
    #[test]
    fn a_malformed_tag_is_refused_not_written_back_cut() {
        let to = PublishedRef { content_url: "NewSales".into(), name: "New Sales".into() };
        let xml = "<workbook><datasources><datasource name='sqlproxy.0'><connection class='sqlproxy' dbname='SalesOld' /></datasource></datasources><\"ws><w name='S'><table/></w>{\"</workbook>";
        assert_eq!(published_datasources(xml).map(|p| p.len()), Ok(1), "the reader is lenient");
        assert!(matches!(repoint(xml, "SalesOld", &to), Err(Error::Xml(m)) if m.contains("malformed attribute")));
        // An attribute value with an unknown entity is not written back empty.
        let xml = "<workbook><datasource name='a'><connection class='sqlproxy' dbname='SalesOld' caption='&nope;'/></datasource></workbook>";
        assert!(matches!(repoint(xml, "SalesOld", &to), Err(Error::Xml(m)) if m.contains("malformed attribute")));
    }
}
