//! Re-publishing a deleted workbook from its saved file against the emulator over real HTTP:
//! what the before-image holds comes back under a new id; a second attempt clashes on the
//! name unless it adopts the copy an interrupted attempt published, and then subscribes no one
//! twice.

use tabflow_engine::ops::{self, Image};
use tabflow_wire::ids::WorkbookId;

use crate::support::demo;

#[tokio::test]
async fn a_deleted_workbook_is_republished_once_with_what_it_had() {
    let (_emu, client, site) = demo().await;

    // A workbook with a subscription on it or on one of its views, and tags.
    let subscribed = |w: &tabflow_site::Workbook| {
        site.subscriptions.iter().any(|s| s.content.id == w.id || w.views.iter().any(|v| v.id == s.content.id))
    };
    let w = site.workbooks.iter().find(|w| subscribed(w) && !w.tags.is_empty()).expect("a subscribed, tagged workbook");
    let mut before: Image = ops::read_image(&client, "workbook", &w.id, true).await.unwrap();
    let all = client.subscriptions().collect().await.unwrap();
    ops::fill_for_restore(&client, &mut before, &all).await.unwrap();
    let subs = before.subscriptions.clone().unwrap();
    assert!(!subs.is_empty());
    let (filename, bytes) = client.download_workbook(&WorkbookId::new(&w.id), true).await.unwrap();
    client.delete_workbook(&WorkbookId::new(&w.id)).await.unwrap();

    let (new_id, lost) =
        ops::restore_content(&client, &before, &filename, tabflow_client::Upload::Bytes(&bytes), false).await.unwrap();
    assert_ne!(new_id, w.id, "Tableau gives a re-published workbook a new id");
    assert!(lost.is_empty(), "{lost:?}");
    let mut back = ops::read_image(&client, "workbook", &new_id, true).await.unwrap();
    assert_eq!((&back.name, &back.project_id, &back.owner_id), (&before.name, &before.project_id, &before.owner_id));
    assert_eq!(back.tags, before.tags);
    let sort = |p: &mut Option<Vec<ops::Capability>>| p.iter_mut().for_each(|v| v.sort());
    sort(&mut back.permissions);
    let mut want = before.permissions.clone();
    sort(&mut want);
    assert_eq!(back.permissions, want);
    let all = client.subscriptions().collect().await.unwrap();
    ops::fill_for_restore(&client, &mut back, &all).await.unwrap();
    assert_eq!(back.restore.as_ref().unwrap()["description"], before.restore.as_ref().unwrap()["description"]);
    let count = |all: &[tabflow_client::types::Subscription]| {
        let views: Vec<String> = back
            .subscriptions
            .iter()
            .flatten()
            .filter_map(|s| s.pointer("/content/id"))
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        all.iter().filter(|s| s.content.as_ref().is_some_and(|c| c.id == new_id || views.contains(&c.id))).count()
    };
    let live = client.subscriptions().collect().await.unwrap();
    assert_eq!(count(&live), subs.len(), "every subscription is back");

    // A second attempt: a clash that names the way out, unless it adopts its own copy.
    let err = ops::restore_content(&client, &before, &filename, tabflow_client::Upload::Bytes(&bytes), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is in its old project again"), "{err}");
    let (again, _) =
        ops::restore_content(&client, &before, &filename, tabflow_client::Upload::Bytes(&bytes), true).await.unwrap();
    assert_eq!(again, new_id, "the copy the interrupted attempt published is adopted");
    let live = client.subscriptions().collect().await.unwrap();
    assert_eq!(count(&live), subs.len(), "nobody is subscribed twice");
}
