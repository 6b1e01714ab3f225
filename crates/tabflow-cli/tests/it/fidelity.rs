//! Live-site fidelity of `tabflow site snapshot` (issue #18): a generated site's own
//! snapshot (`tabflow emulator generate`) against the snapshot read back through the APIs
//! from the emulator serving it (`--keep-time`) differ only in what the API snapshot declares
//! it cannot read (`site.not_read`: sizes in whole MB, favorites, the full/incremental type of
//! a refresh task with a schedule of its own).

use serde_json::Value;

use crate::support::{bin, diff, serve_with, snapshot_with, text};

#[test]
fn an_api_snapshot_of_a_generated_site_equals_its_own_snapshot_but_for_what_it_declares() {
    let home = tempfile::tempdir().unwrap();
    let a = home.path().join("generated.json");
    // 800 workbooks: custom SQL, dashboard-only workbooks with fields, data alerts with
    // recipients, schema-qualified tables and favorites are all in it.
    let o = bin().args(["emulator", "generate", "--scale", "800", "-o", a.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let generated: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let custom_sql = generated["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["connection"]["custom_sql"].is_string())
        .count();
    let recipients = generated["data_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["recipients"].as_array().is_some_and(|r| !r.is_empty()))
        .count();
    let dashboard_only = generated["workbooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| {
            w["views"].as_array().unwrap().iter().all(|v| v["sheet_type"] == "dashboard")
                && w["fields_used"].as_array().is_some_and(|f| !f.is_empty())
        })
        .count();
    assert!(custom_sql >= 1 && recipients >= 1 && dashboard_only >= 1, "{custom_sql} {recipients} {dashboard_only}");
    assert_eq!(generated["site"]["name"], "Demo");

    let emu = serve_with(&["--snapshot", a.to_str().unwrap(), "--keep-time"]);
    let (b, read, _) = snapshot_with(home.path(), &emu, "read.json", &[]);
    assert_eq!(read["site"]["name"], "Demo", "the site's name, not its content URL");
    assert!(generated["extract_refreshes"].as_array().unwrap().iter().any(|t| t["own_schedule"].is_object()));
    assert_eq!(
        read["site"]["not_read"],
        serde_json::json!(["workbook.size", "datasource.size", "favorite", "extract-refresh.type"])
    );
    let (code, d) = diff(home.path(), &emu, &a, &b, &[]);
    assert_eq!(d["changes"], serde_json::json!([]), "the API snapshot lost: {:#}", d["changes"]);
    assert_eq!((code, &d["equal"]), (Some(0), &Value::Bool(true)));
    assert_eq!(
        d["not_compared"],
        serde_json::json!(["datasource.size", "extract-refresh.type", "favorite", "workbook.size"])
    );
}
