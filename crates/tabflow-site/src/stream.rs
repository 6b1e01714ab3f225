//! A `tabflow-site/1` document written section by section, for sites too large to hold in
//! memory at once (a snapshot reader streams permission rules straight to the file).
//!
//! The bytes are exactly those of [`Site::write_json`](crate::Site::write_json) for the same
//! content: each item is pretty-printed by serde_json and indented to its place in the
//! document (JSON strings never hold a raw newline, so indenting line by line is exact).
//! Sections must come in the document's field order; extension sections that are empty are
//! left out, as serde leaves them out of a whole [`Site`](crate::Site).

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::SiteInfo;

/// The document's list sections in field order, and whether an empty one is left out.
const SECTIONS: [(&str, bool); 15] = [
    ("users", false),
    ("groups", false),
    ("projects", false),
    ("datasources", false),
    ("workbooks", false),
    ("flows", true),
    ("permissions", false),
    ("subscriptions", false),
    ("default_permissions", true),
    ("webhooks", true),
    ("favorites", true),
    ("data_alerts", true),
    ("schedules", true),
    ("extract_refreshes", true),
    ("refresh_jobs", true),
];

/// Writes one `tabflow-site/1` document incrementally.
pub struct SiteWriter<W: Write> {
    w: io::BufWriter<W>,
    /// Index into [`SECTIONS`] of the next section that may be written.
    next: usize,
    /// Items written in the open section, if one is open.
    open: Option<usize>,
    buf: Vec<u8>,
}

fn out_of_order(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("tabflow-site/1 writer: {what}"))
}

impl<W: Write> SiteWriter<W> {
    /// Starts the document with its `format`, `now` and `site` fields.
    pub fn new(w: W, format: &str, now: DateTime<Utc>, site: &SiteInfo) -> io::Result<SiteWriter<W>> {
        let mut sw = SiteWriter { w: io::BufWriter::with_capacity(1 << 20, w), next: 0, open: None, buf: Vec::new() };
        sw.w.write_all(b"{\n  \"format\": ")?;
        sw.value(&format, b"\n  ")?;
        sw.w.write_all(b",\n  \"now\": ")?;
        sw.value(&now, b"\n  ")?;
        sw.w.write_all(b",\n  \"site\": ")?;
        sw.value(site, b"\n  ")?;
        Ok(sw)
    }

    /// Pretty-prints `v` into the output, putting `newline` (a newline plus indentation)
    /// wherever serde_json would start a new line.
    fn value<T: Serialize + ?Sized>(&mut self, v: &T, newline: &[u8]) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer_pretty(&mut self.buf, v).map_err(io::Error::other)?;
        let mut rest = &self.buf[..];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.w.write_all(&rest[..i])?;
            self.w.write_all(newline)?;
            rest = &rest[i + 1..];
        }
        self.w.write_all(rest)
    }

    /// Opens list section `name`; the sections before it that are optional and not written
    /// are left out.
    pub fn begin(&mut self, name: &str) -> io::Result<()> {
        if self.open.is_some() {
            return Err(out_of_order(&format!("section {name} opened before the previous one was ended")));
        }
        let Some(pos) = SECTIONS[self.next..].iter().position(|(n, _)| *n == name) else {
            return Err(out_of_order(&format!("section {name} is unknown or comes too late")));
        };
        if let Some((skipped, _)) = SECTIONS[self.next..self.next + pos].iter().find(|(_, optional)| !optional) {
            return Err(out_of_order(&format!("section {skipped} must come before {name}")));
        }
        self.next += pos + 1;
        write!(self.w, ",\n  \"{name}\": [")?;
        self.open = Some(0);
        Ok(())
    }

    /// Writes one item of the open section.
    pub fn item<T: Serialize>(&mut self, item: &T) -> io::Result<()> {
        let Some(n) = self.open.as_mut() else {
            return Err(out_of_order("an item was written outside a section"));
        };
        let sep: &[u8] = if *n == 0 { b"\n    " } else { b",\n    " };
        *n += 1;
        self.w.write_all(sep)?;
        self.value(item, b"\n    ")
    }

    /// Closes the open section.
    pub fn end(&mut self) -> io::Result<()> {
        match self.open.take() {
            None => Err(out_of_order("end() without an open section")),
            Some(0) => self.w.write_all(b"]"),
            Some(_) => self.w.write_all(b"\n  ]"),
        }
    }

    /// Writes a whole section from `items`. An optional (extension) section with no items is
    /// left out.
    pub fn section<T: Serialize>(&mut self, name: &str, items: impl IntoIterator<Item = T>) -> io::Result<()> {
        let mut items = items.into_iter().peekable();
        let optional = SECTIONS.iter().any(|(n, optional)| *n == name && *optional);
        if optional && items.peek().is_none() {
            return Ok(());
        }
        self.begin(name)?;
        for it in items {
            self.item(&it)?;
        }
        self.end()
    }

    /// Ends the document (trailing newline included) and flushes it.
    pub fn finish(mut self) -> io::Result<W> {
        if self.open.is_some() {
            return Err(out_of_order("finish() with a section still open"));
        }
        if let Some((missing, _)) = SECTIONS[self.next..].iter().find(|(_, optional)| !optional) {
            return Err(out_of_order(&format!("section {missing} was never written")));
        }
        self.w.write_all(b"\n}\n")?;
        self.w.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Site;

    fn streamed(s: &Site) -> Vec<u8> {
        let mut w = SiteWriter::new(Vec::new(), &s.format, s.now, &s.site).unwrap();
        w.section("users", &s.users).unwrap();
        w.section("groups", &s.groups).unwrap();
        w.section("projects", &s.projects).unwrap();
        w.section("datasources", &s.datasources).unwrap();
        // item by item, as a reader streaming from the network does
        w.begin("workbooks").unwrap();
        for wb in &s.workbooks {
            w.item(wb).unwrap();
        }
        w.end().unwrap();
        w.section("flows", &s.flows).unwrap();
        w.section("permissions", &s.permissions).unwrap();
        w.section("subscriptions", &s.subscriptions).unwrap();
        w.section("default_permissions", &s.default_permissions).unwrap();
        w.section("webhooks", &s.webhooks).unwrap();
        w.section("favorites", &s.favorites).unwrap();
        w.section("data_alerts", &s.data_alerts).unwrap();
        w.section("schedules", &s.schedules).unwrap();
        w.section("extract_refreshes", &s.extract_refreshes).unwrap();
        w.section("refresh_jobs", &s.refresh_jobs).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn same_bytes_as_the_whole_document() {
        let mut site = crate::generate::demo();
        assert!(!site.flows.is_empty(), "the demo has flows, so the flows section is written");
        assert_eq!(String::from_utf8(streamed(&site)).unwrap(), site.to_json());
        // empty required sections, empty and present extension sections, odd characters
        site.users[0].full_name = "Zoë \"Q\" O'Neil\nsecond line\t\u{1F600}".into();
        site.workbooks.clear();
        site.permissions.clear();
        site.webhooks.clear();
        site.favorites.push(crate::Favorite {
            user_id: site.users[0].id.clone(),
            label: "fav".into(),
            content: crate::ResourceRef { kind: "view".into(), id: "v1".into() },
        });
        assert_eq!(String::from_utf8(streamed(&site)).unwrap(), site.to_json());
        let empty = Site { users: vec![], groups: vec![], projects: vec![], datasources: vec![], ..site };
        let empty = Site {
            subscriptions: vec![],
            default_permissions: vec![],
            favorites: vec![],
            data_alerts: vec![],
            schedules: vec![],
            extract_refreshes: vec![],
            refresh_jobs: vec![],
            flows: vec![],
            ..empty
        };
        assert!(!empty.to_json().contains("\"flows\""), "no flows, no section: older files keep their bytes");
        assert_eq!(String::from_utf8(streamed(&empty)).unwrap(), empty.to_json());
    }

    #[test]
    fn sections_out_of_order_are_refused() {
        let s = crate::generate::demo();
        let mut w = SiteWriter::new(Vec::new(), &s.format, s.now, &s.site).unwrap();
        let e = w.section("groups", &s.groups).unwrap_err();
        assert!(e.to_string().contains("users must come before groups"), "{e}");
        w.section("users", &s.users).unwrap();
        assert!(w.section("users", &s.users).is_err(), "a section written twice");
        w.begin("groups").unwrap();
        assert!(w.begin("projects").is_err(), "nested section");
        w.end().unwrap();
        let e = w.finish().unwrap_err();
        assert!(e.to_string().contains("projects was never written"), "{e}");
    }
}
