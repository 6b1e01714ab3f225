use tabflow_client::{Capability, ContentKind, Grantee, PermissionCall, WorkbookUpdate};
use tabflow_site::Mode;

use crate::*;

#[tokio::test]
async fn set_permissions_makes_exactly_the_needed_calls() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let snap = emu.emulator.snapshot();
    let wb = snap.workbooks.iter().find(|w| snap.permissions.iter().any(|r| r.resource.id == w.id)).unwrap();
    let current = c.permissions(ContentKind::Workbook, &wb.id).await.unwrap();
    assert!(!current.is_empty());
    let sales = snap.groups.iter().find(|g| g.name == "Sales").unwrap();
    let mut target: Vec<Capability> = current[1..].to_vec();
    target.push(Capability { grantee: Grantee::Group(sales.id.clone()), name: "Read".into(), mode: Mode::Allow });
    target.push(Capability { grantee: Grantee::Group(sales.id.clone()), name: "ExportData".into(), mode: Mode::Deny });
    let calls = c.set_permissions(ContentKind::Workbook, &wb.id, &target).await.unwrap();
    assert_eq!(calls.iter().filter(|c| matches!(c, PermissionCall::Delete(_))).count(), 1);
    assert_eq!(calls.iter().filter(|c| matches!(c, PermissionCall::Add(..))).count(), 1);
    let mut after = c.permissions(ContentKind::Workbook, &wb.id).await.unwrap();
    after.sort();
    target.sort();
    assert_eq!(after, target);
    // back again
    c.set_permissions(ContentKind::Workbook, &wb.id, &current).await.unwrap();
    assert_eq!(c.permissions(ContentKind::Workbook, &wb.id).await.unwrap(), current);
}

#[tokio::test]
async fn move_reown_tag_and_restore() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let snap = emu.emulator.snapshot();
    let wb = &snap.workbooks[10];
    let archive = snap.projects.iter().find(|p| p.name == "Archive").unwrap();
    let u = WorkbookUpdate { project_id: Some(archive.id.as_str().into()), ..Default::default() };
    let w = c.update_workbook(&wb.id.as_str().into(), &u).await.unwrap();
    assert_eq!(w.project.unwrap().id.as_deref(), Some(archive.id.as_str()));
    let tags = c.add_tags(ContentKind::Workbook, &wb.id, &["archived-by-tabflow".into()]).await.unwrap();
    assert!(tags.contains(&"archived-by-tabflow".to_string()));
    c.delete_tag(ContentKind::Workbook, &wb.id, "archived-by-tabflow").await.unwrap();
    let u = WorkbookUpdate { project_id: Some(wb.project_id.as_str().into()), ..Default::default() };
    c.update_workbook(&wb.id.as_str().into(), &u).await.unwrap();
    let after = emu.emulator.snapshot();
    let w2 = after.workbooks.iter().find(|w| w.id == wb.id).unwrap();
    assert_eq!((&w2.project_id, &w2.tags), (&wb.project_id, &wb.tags));
}

#[tokio::test]
async fn download_and_republish_keeps_the_id() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let snap = emu.emulator.snapshot();
    let wb = snap.workbooks.iter().find(|w| !w.datasource_ids.is_empty()).unwrap();
    let (name, bytes) = c.download_workbook(&wb.id.as_str().into(), false).await.unwrap();
    assert!(name.ends_with(".twb"), "{name}");
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("sqlproxy"));
    let w = c.publish_workbook(&wb.project_id.as_str().into(), &wb.name, &name, &bytes, true).await.unwrap();
    assert_eq!(w.id.as_deref(), Some(wb.id.as_str()));
    let revs = c.workbook_revisions(&wb.id.as_str().into()).collect().await.unwrap();
    assert_eq!(revs.len() as u32, wb.revision + 1);
}

#[tokio::test]
async fn chunked_upload_for_large_files() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let snap = emu.emulator.snapshot();
    let wb = snap.workbooks.iter().find(|w| !w.datasource_ids.is_empty()).unwrap();
    let (name, bytes) = c.download_workbook(&wb.id.as_str().into(), false).await.unwrap();
    // Pad the XML with a comment past the 64 MB single-request limit.
    let mut big = String::from_utf8(bytes).unwrap();
    let pad = "x".repeat(tabflow_client::resources::SINGLE_UPLOAD_LIMIT + 1024);
    big = big.replacen("?>", &format!("?><!--{pad}-->"), 1);
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", emu.url)).send().await.unwrap();
    let w = c.publish_workbook(&wb.project_id.as_str().into(), &wb.name, &name, big.as_bytes(), true).await.unwrap();
    assert_eq!(w.id.as_deref(), Some(wb.id.as_str()));
    let s = stats(&emu.url).await;
    let chunks = s["by_route"]["PUT /api/{v}/sites/{s}/fileUploads/{id}"].as_u64().unwrap();
    assert_eq!(chunks as usize, big.len().div_ceil(tabflow_client::resources::CHUNK_SIZE));
}

#[tokio::test]
async fn delete_user_with_map_assets_to() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let snap = emu.emulator.snapshot();
    let john = snap.users.iter().find(|u| u.name == "jsmith").unwrap();
    let sarah = snap.users.iter().find(|u| u.name == "slee").unwrap();
    let e = c.delete_user(&john.id.as_str().into(), None).await.unwrap_err();
    assert!(e.code().unwrap().starts_with("409"));
    c.delete_user(&john.id.as_str().into(), Some(&sarah.id.as_str().into())).await.unwrap();
    assert!(!emu.emulator.snapshot().workbooks.iter().any(|w| w.owner_id == john.id));
}

#[tokio::test]
async fn snapshot_through_the_api_matches_the_emulator() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let truth = emu.emulator.snapshot();
    let snap = tabflow_client::snapshot::take(&c, &Default::default()).await.unwrap();
    assert_eq!(snap.workbooks.len(), truth.workbooks.len());
    assert_eq!(snap.users.len(), truth.users.len());
    let key = |s: &tabflow_site::Site| {
        let mut v: Vec<(String, String, String, Vec<(String, Mode)>)> = s
            .permissions
            .iter()
            .map(|r| {
                (
                    r.resource.id.clone(),
                    r.grantee.kind.clone(),
                    r.grantee.id.clone(),
                    r.capabilities.clone().into_iter().collect(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&snap), key(&truth), "permission rules differ");
    for w in &truth.workbooks {
        let s = snap.workbooks.iter().find(|x| x.id == w.id).unwrap();
        assert_eq!((&s.project_id, &s.owner_id, &s.name), (&w.project_id, &w.owner_id, &w.name));
        let mut a = s.datasource_ids.clone();
        let mut b = w.datasource_ids.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "lineage of {}", w.name);
        assert_eq!(s.views.len(), w.views.len());
        for v in &w.views {
            let sv = s.views.iter().find(|x| x.id == v.id).unwrap();
            assert_eq!(sv.total_views, v.total_views);
            assert_eq!(
                sv.last_viewed_at.map(|t| t.timestamp()),
                v.last_viewed_at.map(|t| t.timestamp()),
                "last view of {}",
                v.name
            );
        }
    }
    for g in &truth.groups {
        let s = snap.groups.iter().find(|x| x.id == g.id).unwrap();
        let mut a = s.members.clone();
        let mut b = g.members.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
    assert_eq!(snap.subscriptions.len(), truth.subscriptions.len());
}

#[tokio::test]
async fn subscriptions_create_and_delete() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let snap = emu.emulator.snapshot();
    let user = &snap.users[3];
    let wb = &snap.workbooks[2];
    let sub = c
        .create_subscription(&user.id.as_str().into(), "Workbook", &wb.id, "Weekly numbers", "Weekly (Monday 8am)")
        .await
        .unwrap();
    let id = sub.id.unwrap();
    let after = emu.emulator.snapshot();
    let s = after.subscriptions.iter().find(|s| s.id == id).unwrap();
    assert_eq!(
        (s.user_id.as_str(), s.content.id.as_str(), s.subject.as_str()),
        (user.id.as_str(), wb.id.as_str(), "Weekly numbers")
    );
    c.delete_subscription(&id.as_str().into()).await.unwrap();
    assert!(!emu.emulator.snapshot().subscriptions.iter().any(|s| s.id == id));
    let e = c.delete_subscription(&id.as_str().into()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
}

#[tokio::test]
async fn streamed_snapshot_is_the_in_memory_snapshot() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let mut bytes = Vec::new();
    let summary = tabflow_client::snapshot::write(&c, &Default::default(), &mut bytes).await.unwrap();
    let taken = tabflow_client::snapshot::take(&c, &Default::default()).await.unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let mut streamed = tabflow_site::Site::from_json(&text).unwrap();
    // The streamed bytes are exactly the serde rendering of what they hold...
    assert_eq!(text, streamed.to_json());
    // ...and they hold what the in-memory reader reads (the two reads differ only in `now`).
    streamed.now = taken.now;
    assert_eq!(streamed.to_json(), taken.to_json());
    let truth = emu.emulator.snapshot();
    assert_eq!(
        (summary.workbooks, summary.users, summary.permission_rules, summary.subscriptions),
        (truth.workbooks.len(), truth.users.len(), truth.permissions.len(), truth.subscriptions.len())
    );
    let untabbed = truth.workbooks.iter().filter(|w| !w.show_tabs).count();
    assert!(untabbed > 0, "the demo site has workbooks without tabs, whose views carry their own permissions");
    assert!(streamed.permissions.iter().any(|r| r.resource.kind == "view"));
}

#[tokio::test]
async fn a_failing_read_ends_the_streamed_snapshot_with_the_error() {
    let emu = demo().await;
    let c = connect(&emu).await;
    // The 200th workbook-permissions read is refused (403: not retried), far into the stream.
    set_faults(
        &emu.url,
        serde_json::json!({"error_status": 403, "fail_nth_call": {"route": "GET /api/{v}/sites/{s}/workbooks/{id}/permissions", "n": 200}}),
    )
    .await;
    let mut bytes = Vec::new();
    let e = tabflow_client::snapshot::write(&c, &Default::default(), &mut bytes).await.unwrap_err();
    match e {
        tabflow_client::snapshot::WriteError::Tableau(e) => assert_eq!(e.status(), Some(403), "{e}"),
        other => panic!("expected the API error, got {other}"),
    }
    // Without the fault the same client reads the whole site.
    set_faults(&emu.url, serde_json::json!({})).await;
    let mut bytes = Vec::new();
    tabflow_client::snapshot::write(&c, &Default::default(), &mut bytes).await.unwrap();
}

#[tokio::test]
async fn streamed_snapshot_of_a_site_with_more_rules_than_wait_for_the_writer() {
    // 5 000 workbooks: more permission targets than the reader may hold ahead of the writer,
    // so the reader must wait for it while the other reads still get their turn.
    let mut site = tabflow_site::generate::generate(&tabflow_site::generate::Options { scale: 5000, seed: 3 });
    site.shift_time_to(chrono::Utc::now());
    let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.unwrap();
    let c = connect(&emu).await;
    let mut bytes = Vec::new();
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tabflow_client::snapshot::write(&c, &Default::default(), &mut bytes),
    )
    .await
    .expect("the snapshot finishes")
    .unwrap();
    let truth = emu.emulator.snapshot();
    let streamed = tabflow_site::Site::from_json(std::str::from_utf8(&bytes).unwrap()).unwrap();
    assert_eq!((summary.workbooks, summary.permission_rules), (truth.workbooks.len(), truth.permissions.len()));
    assert_eq!(streamed.permissions.len(), truth.permissions.len());
}
