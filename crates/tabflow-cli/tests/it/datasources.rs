//! Datasource consolidation and migration through the real binary against `tabflow emulator
//! serve` (real HTTP): plan → apply → snapshot + diff shows exactly the repointed workbooks'
//! datasources and the archived datasources → rollback → diff empty. The expected changes are
//! computed from the site snapshot taken before, not from the plan; the republished files are
//! downloaded and read to check that the site's datasource references come from them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{
    Emu, diff, ok_json, rest_raw as http, rest_raw_with_head as http_with_head, run, serve, sign_in, snapshot, step,
    text,
};

fn plan(home: &Path, emu: &Emu, intent: &str, params: &[&str], answers: &[&str]) -> (PathBuf, Value) {
    let path = home.join(format!("plan-{intent}-{}.json", answers.len()));
    let mut args = vec!["plan", "--intent", intent, "-o", path.to_str().unwrap(), "--json"];
    for p in params {
        args.extend(["--param", p]);
    }
    for a in answers {
        args.extend(["--answer", a]);
    }
    (path.clone(), ok_json(&run(home, emu, &args), "plan"))
}

/// A list field; absent = empty (the snapshot leaves empty lists out).
fn list<'v>(v: &'v Value, k: &str) -> &'v [Value] {
    v[k].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Project ids of a project and everything below it.
fn subtree(site: &Value, name: &str) -> BTreeSet<String> {
    let projects = list(site, "projects");
    let mut out: BTreeSet<String> =
        projects.iter().filter(|p| p["name"] == name && p["parent_id"].is_null()).map(|p| s(&p["id"])).collect();
    loop {
        let n = out.len();
        for p in projects {
            if out.contains(&s(&p["parent_id"])) {
                out.insert(s(&p["id"]));
            }
        }
        if out.len() == n {
            return out;
        }
    }
}

/// The `dbname`s of the `sqlproxy` connections in a workbook file — read here with plain
/// string search, independently of tabflow's XML code.
fn proxy_dbnames(twb: &str) -> BTreeSet<String> {
    twb.split("<connection")
        .skip(1)
        .map(|c| &c[..c.find('>').unwrap_or(c.len())])
        .filter(|c| c.contains("class='sqlproxy'") || c.contains("class=\"sqlproxy\""))
        .map(|c| {
            let k = c.find("dbname=").unwrap() + 7;
            let q = &c[k..k + 1];
            c[k + 1..k + 1 + c[k + 1..].find(q).unwrap()].to_string()
        })
        .collect()
}

fn download(emu: &Emu, auth: &(String, String), wb: &str) -> String {
    text(&download_file(emu, auth, wb).1)
}

/// A workbook's file as served: (file name from `Content-Disposition`, bytes).
fn download_file(emu: &Emu, auth: &(String, String), wb: &str) -> (String, Vec<u8>) {
    let (code, head, body) = http_with_head(
        emu,
        "GET",
        &format!("/api/3.25/sites/{}/workbooks/{wb}/content", auth.1),
        &[("X-Tableau-Auth", &auth.0)],
        b"",
    );
    assert_eq!(code, 200, "download {wb}: {}", text(&body));
    let name = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
        .and_then(|l| l.split("filename=\"").nth(1))
        .map(|f| f.trim_end().trim_end_matches('"').to_string())
        .unwrap_or_default();
    (name, body)
}

/// Publishes a workbook file over the workbook `w` of a snapshot (same name, project, tabs).
fn publish_over(emu: &Emu, auth: &(String, String), w: &Value, filename: &str, file: &[u8]) {
    let payload = format!(
        "<tsRequest><workbook name=\"{}\" showTabs=\"{}\"><project id=\"{}\"/></workbook></tsRequest>",
        s(&w["name"]).replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;"),
        w["show_tabs"].as_bool().unwrap_or(true),
        s(&w["project_id"])
    );
    let ext = filename.rsplit('.').next().unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(b"--B0\r\nContent-Disposition: name=\"request_payload\"\r\nContent-Type: text/xml\r\n\r\n");
    body.extend_from_slice(payload.as_bytes());
    body.extend_from_slice(
        format!("\r\n--B0\r\nContent-Disposition: name=\"tableau_workbook\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--B0--\r\n");
    let (code, out) = http(
        emu,
        "POST",
        &format!("/api/3.25/sites/{}/workbooks?workbookType={ext}&overwrite=true", auth.1),
        &[("X-Tableau-Auth", &auth.0), ("Content-Type", "multipart/mixed; boundary=B0")],
        &body,
    );
    assert!(code == 200 || code == 201, "{code}: {}", text(&out));
}

/// Checks that each workbook's datasources in the snapshot are exactly those its current file
/// points at (through the datasources' content URLs).
fn files_agree_with_snapshot(emu: &Emu, site: &Value, workbooks: &BTreeSet<String>) {
    let auth = sign_in(emu);
    let url_of: BTreeMap<String, String> =
        list(site, "datasources").iter().map(|d| (s(&d["id"]), s(&d["content_url"]))).collect();
    for w in list(site, "workbooks").iter().filter(|w| workbooks.contains(&s(&w["id"]))) {
        let in_snapshot: BTreeSet<String> = list(w, "datasource_ids").iter().map(|d| url_of[&s(d)].clone()).collect();
        let file = download(emu, &auth, &s(&w["id"]));
        assert_eq!(proxy_dbnames(&file), in_snapshot, "workbook {}: file and site disagree", w["name"]);
    }
}

/// Connection key of a datasource in a snapshot.
fn conn_key(d: &Value) -> String {
    let c = &d["connection"];
    format!("{}|{}|{}|{}|{}", c["kind"], c["server"], c["database"], c["table"], c["custom_sql"])
}

fn rollback(home: &Path, emu: &Emu, run_id: &str, before: &Path) {
    let r = ok_json(&run(home, emu, &["runs", "rollback", run_id, "--yes", "--json"]), "rollback");
    assert_eq!(r["status"], "rolled-back", "{r}");
    let (after, _) = snapshot(home, emu, "after-rollback.json");
    let d = diff(home, emu, before, &after, &[]).1;
    assert_eq!(d["equal"], true, "rollback left differences: {d}");
}

#[test]
fn consolidation_repoints_archives_and_rolls_back() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, before) = snapshot(h, &emu, "before.json");

    // Expected, from the snapshot: duplicate groups by connection among Finance's
    // datasources; the certified member stays, the others go.
    let finance = subtree(&before, "Finance");
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for d in list(&before, "datasources").iter().filter(|d| finance.contains(&s(&d["project_id"]))) {
        groups.entry(conn_key(d)).or_default().push(d);
    }
    let mut replace: BTreeMap<String, String> = BTreeMap::new();
    for g in groups.values().filter(|g| g.len() > 1) {
        let canon = g.iter().find(|d| d["certified"] == true).expect("a certified member");
        for d in g.iter().filter(|d| d["id"] != canon["id"]) {
            replace.insert(s(&d["id"]), s(&canon["id"]));
        }
    }
    assert_eq!(replace.len(), 5, "the demo's Finance has 8 datasources in 3 duplicate groups");
    let mut expected_ds: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for w in list(&before, "workbooks") {
        let ids: Vec<String> = list(w, "datasource_ids").iter().map(s).collect();
        if ids.iter().any(|i| replace.contains_key(i)) {
            expected_ds.insert(s(&w["id"]), ids.iter().map(|i| replace.get(i).unwrap_or(i).clone()).collect());
        }
    }
    assert!(expected_ds.len() >= 5, "workbooks use the duplicates: {}", expected_ds.len());

    // A question first, then the plan.
    let (_, asking) = plan(h, &emu, "consolidate-datasources", &["project=Finance"], &[]);
    let q = &list(&asking, "questions")[0];
    assert!(s(&q["text"]).starts_with("Consolidation opportunities for 8 datasources"), "{q}");
    let (path, p) = plan(h, &emu, "consolidate-datasources", &["project=Finance"], &["q1=consolidate-all"]);
    assert!(list(&p, "questions").is_empty(), "{p}");
    let find = step(&p, "find-duplicate-datasources").unwrap();
    assert!(s(&find["title"]).starts_with("Consolidation opportunities for 8 datasources"), "{}", find["title"]);
    for it in list(find, "items") {
        assert!(!s(&it["name"]).is_empty() && !s(&it["reason"]).is_empty(), "{it}");
    }
    let repoint = step(&p, "repoint-workbooks").unwrap();
    let planned: BTreeSet<String> = list(repoint, "items").iter().map(|i| s(&i["id"])).collect();
    assert_eq!(planned, expected_ds.keys().cloned().collect::<BTreeSet<_>>());
    assert!(p["validation"]["ok"].as_bool().unwrap(), "{}", p["validation"]);

    let r = ok_json(&run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    let run_id = s(&r["run_id"]);

    // Exactly the intended changes.
    let (during_path, during) = snapshot(h, &emu, "during.json");
    let d = diff(h, &emu, &before_path, &during_path, &[]).1;
    let changes = list(&d, "changes");
    let mut seen_wb: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seen_ds: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in changes {
        let id = s(&c["id"]);
        match s(&c["resource"]).as_str() {
            "workbook" => {
                assert!(expected_ds.contains_key(&id), "an unplanned workbook changed: {c}");
                seen_wb.entry(id).or_default().insert(s(&c["field"]));
            }
            "datasource" => {
                assert!(replace.contains_key(&id), "an unplanned datasource changed: {c}");
                seen_ds.entry(id).or_default().insert(s(&c["field"]));
            }
            // Moving into the locked Archive project replaces the datasource's own rules.
            "permission" => assert!(replace.keys().any(|r| id.contains(r.as_str())), "{c}"),
            _ => panic!("unexpected change {c}"),
        }
    }
    assert_eq!(seen_wb.keys().cloned().collect::<BTreeSet<_>>(), expected_ds.keys().cloned().collect());
    for (id, fields) in &seen_wb {
        assert!(fields.contains("datasource_ids"), "{id}: {fields:?}");
        assert!(fields.iter().all(|f| f == "datasource_ids" || f == "size"), "{id}: {fields:?}");
    }
    for w in list(&during, "workbooks").iter().filter(|w| expected_ds.contains_key(&s(&w["id"]))) {
        let now: BTreeSet<String> = list(w, "datasource_ids").iter().map(s).collect();
        assert_eq!(now, expected_ds[&s(&w["id"])], "{}", w["name"]);
    }
    let archive = list(&during, "projects").iter().find(|p| p["name"] == "Archive").unwrap()["id"].clone();
    assert_eq!(seen_ds.len(), 5);
    for d in list(&during, "datasources").iter().filter(|d| replace.contains_key(&s(&d["id"]))) {
        assert_eq!(d["project_id"], archive, "{}", d["name"]);
        assert!(list(d, "tags").iter().any(|t| t == "archived-by-tabflow"), "{}", d["name"]);
    }
    // The site's references come from the republished files.
    files_agree_with_snapshot(&emu, &during, &expected_ds.keys().cloned().collect());

    rollback(h, &emu, &run_id, &before_path);
    let (_, restored) = snapshot(h, &emu, "restored.json");
    files_agree_with_snapshot(&emu, &restored, &expected_ds.keys().cloned().collect());
}

#[test]
fn migration_excludes_workbooks_using_missing_fields_and_rolls_back() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (before_path, before) = snapshot(h, &emu, "before.json");
    let ds = list(&before, "datasources");
    let legacy =
        ds.iter().find(|d| list(d, "tags").iter().any(|t| t == "deprecated") && d["name"] == "Finance GL (legacy)");
    let legacy = legacy.expect("the demo's deprecated GL");
    let gl = ds.iter().find(|d| d["name"] == "Finance General Ledger").unwrap();
    let gl_fields: BTreeSet<String> = list(gl, "fields").iter().map(s).collect();
    let legacy_fields: BTreeSet<String> = list(legacy, "fields").iter().map(s).collect();
    let (mut movable, mut stuck) = (BTreeSet::new(), BTreeSet::new());
    for w in list(&before, "workbooks").iter().filter(|w| list(w, "datasource_ids").contains(&legacy["id"])) {
        let lacks = list(w, "fields_used").iter().map(s).any(|f| legacy_fields.contains(&f) && !gl_fields.contains(&f));
        if lacks {
            stuck.insert(s(&w["id"]))
        } else {
            movable.insert(s(&w["id"]))
        };
    }
    assert!(!movable.is_empty() && stuck.len() == 1, "{movable:?} {stuck:?}");

    let (path, p) = plan(h, &emu, "migrate-datasource", &["from=deprecated", "project=Finance"], &["q1=migrate-all"]);
    assert!(list(&p, "questions").is_empty(), "{p}");
    let find = step(&p, "find-deprecated-datasources").unwrap();
    let excluded = list(&find["details"], "excluded");
    assert_eq!(excluded.iter().map(|e| s(&e["id"])).collect::<BTreeSet<_>>(), stuck);
    assert!(s(&excluded[0]["reason"]).contains("Finance General Ledger"), "{}", excluded[0]);
    let repoint = step(&p, "repoint-workbooks").unwrap();
    assert_eq!(list(repoint, "items").iter().map(|i| s(&i["id"])).collect::<BTreeSet<_>>(), movable);

    let r = ok_json(&run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
    assert_eq!(r["status"], "succeeded", "{r}");
    let (during_path, during) = snapshot(h, &emu, "during.json");
    let d = diff(h, &emu, &before_path, &during_path, &[]).1;
    let changed: BTreeSet<String> = list(&d, "changes")
        .iter()
        .inspect(|c| {
            assert!(c["resource"] == "workbook" && (c["field"] == "datasource_ids" || c["field"] == "size"), "{c}")
        })
        .map(|c| s(&c["id"]))
        .collect();
    assert_eq!(changed, movable);
    for w in list(&during, "workbooks") {
        let ids: Vec<&Value> = list(w, "datasource_ids").iter().collect();
        if movable.contains(&s(&w["id"])) {
            assert_eq!(ids, vec![&gl["id"]], "{}", w["name"]);
        } else if stuck.contains(&s(&w["id"])) {
            assert_eq!(ids, vec![&legacy["id"]], "{}", w["name"]);
        }
    }
    files_agree_with_snapshot(&emu, &during, &movable.union(&stuck).cloned().collect());
    rollback(h, &emu, &s(&r["run_id"]), &before_path);
}

#[test]
fn nothing_matches_nothing_to_do_and_no_run() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for (intent, params) in [
        ("migrate-datasource", vec!["from=deprecated", "project=Admin Insights"]),
        ("consolidate-datasources", vec!["project=Admin Insights"]),
    ] {
        let (path, p) = plan(h, &emu, intent, &params, &[]);
        assert!(list(&p, "questions").is_empty(), "{p}");
        assert!(list(&p, "steps").iter().all(|s| s["effect"] == "read"), "{p}");
        assert!(list(&p, "notes").iter().any(|n| s(n).starts_with("Nothing to do")), "{}", p["notes"]);
        let r = ok_json(&run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
        assert_eq!(r["status"], "nothing-to-do", "{r}");
        assert!(r["run_id"].is_null());
    }
    let runs = ok_json(&run(h, &emu, &["runs", "list", "--json"]), "runs list");
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "no run was started: {runs}");
}

/// The oracle behind `files_agree_with_snapshot`: the emulator takes a workbook's datasources
/// from the file it is given. A file rewritten here by hand (plain string replace, no tabflow
/// code) and published with overwrite moves the workbook to the datasource the file names.
#[test]
fn the_emulator_reads_datasources_from_the_published_file() {
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (_, before) = snapshot(h, &emu, "before.json");
    let ds = list(&before, "datasources");
    let w = list(&before, "workbooks").iter().find(|w| list(w, "datasource_ids").len() == 1).unwrap();
    let from = ds.iter().find(|d| list(w, "datasource_ids").contains(&d["id"])).unwrap();
    let to = ds.iter().find(|d| d["id"] != from["id"] && d["project_id"] == from["project_id"]).unwrap();
    let auth = sign_in(&emu);
    let file = download(&emu, &auth, &s(&w["id"]));
    let (old, new) = (format!("dbname='{}'", s(&from["content_url"])), format!("dbname='{}'", s(&to["content_url"])));
    assert!(file.contains(&old), "{file}");
    let edited = file.replace(&old, &new);
    publish_over(&emu, &auth, w, "w.twb", edited.as_bytes());
    let (_, after) = snapshot(h, &emu, "after.json");
    let now = list(&after, "workbooks").iter().find(|x| x["id"] == w["id"]).unwrap();
    assert_eq!(list(now, "datasource_ids"), &[to["id"].clone()], "the workbook follows its file");
}

/// A packaged workbook — a deflated .twbx with an extract next to the .twb — is migrated
/// like a .twb: the .twb inside is repointed, the archive repacked with the extract's
/// compressed bytes and CRC untouched and republished as a .twbx; rollback republishes the
/// downloaded original, so the file served afterwards is byte for byte the one published.
#[test]
fn migration_repoints_a_packaged_workbook_and_rollback_restores_its_bytes() {
    use tabflow_wire::zip::{Archive, Writer};
    let emu = serve();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (_, site) = snapshot(h, &emu, "site.json");
    let ds = list(&site, "datasources");
    let legacy = ds.iter().find(|d| d["name"] == "Finance GL (legacy)").unwrap();
    let gl = ds.iter().find(|d| d["name"] == "Finance General Ledger").unwrap();
    let gl_fields: BTreeSet<String> = list(gl, "fields").iter().map(s).collect();
    let w = list(&site, "workbooks")
        .iter()
        .find(|w| {
            list(w, "datasource_ids") == [legacy["id"].clone()]
                && list(w, "fields_used").iter().all(|f| gl_fields.contains(&s(f)))
        })
        .expect("a workbook that only uses the legacy GL and can move");
    let auth = sign_in(&emu);
    let twb = download(&emu, &auth, &s(&w["id"]));
    let extract: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut z = Writer::new();
    z.add_deflated("Data/Extracts/GL.hyper", &extract).unwrap();
    z.add_deflated("Ledger.twb", twb.as_bytes()).unwrap();
    z.add_deflated("Image/logo.png", b"\x89PNG\r\n\x1a\n").unwrap();
    let original = z.finish(b"").unwrap();
    let filename = format!("{}.twbx", s(&w["name"]));
    publish_over(&emu, &auth, w, &filename, &original);
    assert_eq!(download_file(&emu, &auth, &s(&w["id"])), (filename.clone(), original.clone()), "stored as given");
    let (before_path, _) = snapshot(h, &emu, "before.json");

    let (path, p) = plan(h, &emu, "migrate-datasource", &["from=deprecated", "project=Finance"], &["q1=migrate-all"]);
    let repoint = step(&p, "repoint-workbooks").unwrap();
    assert!(list(repoint, "items").iter().any(|i| i["id"] == w["id"]), "the .twbx workbook is planned: {repoint}");
    assert!(p["validation"]["ok"].as_bool().unwrap(), "{}", p["validation"]);
    let r = ok_json(&run(h, &emu, &["apply", path.to_str().unwrap(), "--approve", "all", "--json"]), "apply");
    assert_eq!(r["status"], "succeeded", "{r}");

    // tabflow signed in with the same PAT, which displaced this session.
    let auth = sign_in(&emu);
    let (name, now) = download_file(&emu, &auth, &s(&w["id"]));
    assert_eq!(name, filename, "republished as a .twbx");
    let (a, b) = (Archive::parse(&original).unwrap(), Archive::parse(&now).unwrap());
    let inside = text(&b.read(b.entry("Ledger.twb").unwrap()).unwrap());
    assert_eq!(proxy_dbnames(&inside), BTreeSet::from([s(&gl["content_url"])]));
    for e in a.entries().iter().filter(|e| e.name != "Ledger.twb") {
        let f = b.entry(&e.name).unwrap();
        assert_eq!((a.raw(e).unwrap(), e.crc32), (b.raw(f).unwrap(), f.crc32), "{} copied untouched", e.name);
    }
    let (_, during) = snapshot(h, &emu, "during.json");
    let moved = list(&during, "workbooks").iter().find(|x| x["id"] == w["id"]).unwrap();
    assert_eq!(list(moved, "datasource_ids"), [gl["id"].clone()], "the emulator read the .twb inside");

    rollback(h, &emu, &s(&r["run_id"]), &before_path);
    let auth = sign_in(&emu);
    assert_eq!(download_file(&emu, &auth, &s(&w["id"])), (filename, original), "the original bytes are back");
}
