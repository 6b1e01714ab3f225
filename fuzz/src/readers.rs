//! The entry points of the readers' fuzz targets (the zip, workbook, XML, NL, plan and
//! snapshot readers). Each takes arbitrary bytes and may return any error, but must not
//! panic, abort or hang.
//!
//! This file is the single definition of what these targets do: `fuzz_targets/<name>.rs`
//! calls the function of that name, and tabflow-wire's integration tests include this file
//! (`#[path]`) to replay every file of `fuzz/corpus/<name>/` and to run random inputs
//! through the same functions on the stable toolchain.

use chrono::NaiveDate;
use tabflow_wire::twb::{self, PublishedRef};
use tabflow_wire::zip::Archive;

/// The target names, each with its function; the corpus directory of a target is
/// `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, fn(&[u8]))] =
    &[("zip", zip), ("twb", twb), ("xml", xml), ("nl", nl), ("plan", plan), ("snapshot", snapshot)];

/// Zip archives as a package download arrives (`tabflow_wire::zip`): the directory, every
/// entry read and copied raw, the `.twb` document picked and replaced.
pub fn zip(data: &[u8]) {
    let Ok(archive) = Archive::parse(data) else { return };
    for e in archive.entries() {
        let _ = archive.read(e);
        let _ = archive.raw(e);
    }
    if let Ok(doc) = archive.document(".twb") {
        let name = doc.name.clone();
        if let Ok(out) = archive.replace(&name, b"<workbook/>") {
            // What the rewrite writes must read back.
            if let Err(e) = Archive::parse(&out) {
                panic!("a rewritten archive does not parse: {e:?}");
            }
        }
    }
}

/// Workbook files (`tabflow_wire::twb`): the document of a `.twb` or `.twbx` download, its
/// published datasources, and repointing each of them (the datasource-consolidation write).
pub fn twb(data: &[u8]) {
    let to = PublishedRef { content_url: "NewSales".into(), name: "New Sales".into() };
    for filename in ["Book.twb", "Book.twbx"] {
        let _ = twb::document(filename, data);
        let _ = twb::repoint_file(filename, data, "SalesOld", &to);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(refs) = twb::published_datasources(text) {
        for r in refs.iter().take(8) {
            if let Ok(out) = twb::repoint(text, &r.content_url, &to) {
                assert!(twb::published_datasources(&out).is_ok(), "a repointed workbook does not read back");
            }
        }
    }
}

/// REST API XML bodies (`tabflow_wire::xml`): responses as the client reads them (and
/// written again), requests as the emulator reads them, and the list query parameters.
pub fn xml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(response) = tabflow_wire::xml::parse_response(&text) {
        let _ = tabflow_wire::xml::to_string(&response);
    }
    if let Ok(request) = tabflow_wire::xml::parse_request(&text) {
        let _ = tabflow_wire::xml::request_to_string(&request);
    }
    if let Ok(filter) = tabflow_wire::filter::Filter::parse_query_value(&text) {
        let _ = filter.render_encoded();
    }
    let _ = tabflow_wire::sort::Sort::parse_query_value(&text);
    let _ = tabflow_wire::fields::Fields::parse_query_value(&text);
    let _ = tabflow_wire::paging::PageRequest::parse(Some(&text), Some(&text));
    let _ = serde_json::from_str::<tabflow_wire::graphql::Response>(&text);
}

/// Plain-language requests (`tabflow_nl`), as `tabflow plan "…"` passes them.
pub fn nl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let today = NaiveDate::from_ymd_opt(2026, 8, 14).unwrap_or_default();
    let parsed = tabflow_nl::parse(&text, today);
    assert_eq!(parsed, tabflow_nl::parse(&text, today), "parse is not deterministic");
    let _ = tabflow_nl::duration_days(&text);
    let _ = tabflow_nl::first_number(&text);
    let _ = tabflow_nl::check_cadence(&text);
}

/// Plan files (`tabflow_plan::Plan::from_json`), as `tabflow apply plan.json` reads them,
/// with a fixed store key. A fuzzed file almost never carries a valid keyed fingerprint, so the
/// checks behind it (order, classes, destructive items) are also run on the JSON shape alone.
pub fn plan(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let key = tabflow_plan::PlanKey::new([7; 32]);
    let shaped: Option<tabflow_plan::Plan> = serde_json::from_str(text).ok();
    if let Some(mut plan) = shaped {
        let _ = plan.check_consistency();
        let _ = plan.order();
        let _ = plan.class_errors();
        let _ = plan.destructive_items();
        plan.seal(&key);
        let again = tabflow_plan::Plan::from_json(&plan.to_json(), &key);
        if let Ok(p) = again {
            assert!(p == plan, "a sealed plan read back differs");
        }
    }
    let _ = tabflow_plan::Plan::from_json(text, &key);
}

/// Site snapshots (`tabflow_site::Site::from_json`), as `tabflow site diff` and the
/// emulator's `--snapshot` read them.
pub fn snapshot(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(site) = tabflow_site::Site::from_json(text) {
        let again = tabflow_site::Site::from_json(&site.to_json());
        assert!(again.is_ok_and(|s| s == site), "a snapshot read does not write back the same");
    }
}
