//! Apply's re-read of an item before its write (issue #15): the item and its permissions are
//! read at the same time, one round trip rather than two, and an item that is gone reads as
//! gone (its permissions call's 404 is not an error).

use tabflow_engine::ops;

use crate::support::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_and_its_permissions_are_read_at_once_and_a_missing_item_reads_as_gone() {
    let (emu, client, site) = demo().await;
    // Long enough that two calls made one after the other never overlap.
    emu.emulator.set_faults(tabflow_emulator::Faults { latency_ms: Some(150), ..Default::default() });
    assert_eq!(emu.emulator.stats()["in_flight_max"], 1, "sign-in and server info one at a time");
    let w = site.workbooks.iter().find(|w| site.permissions.iter().any(|r| r.resource.id == w.id)).unwrap();
    let img = ops::read_image(&client, "workbook", &w.id, true).await.unwrap();
    assert!(img.exists);
    assert_eq!(img.project_id.as_deref(), Some(w.project_id.as_str()));
    assert!(img.permissions.as_ref().is_some_and(|p| !p.is_empty()), "{img:?}");
    let stats = emu.emulator.stats();
    assert_eq!(stats["by_route"]["GET /api/{v}/sites/{s}/workbooks/{id}"], 1, "{stats}");
    assert_eq!(stats["by_route"]["GET /api/{v}/sites/{s}/workbooks/{id}/permissions"], 1, "{stats}");
    assert_eq!(stats["in_flight_max"], 2, "the item and its permissions were in flight together: {stats}");

    // Gone since the plan: not an error, whatever the permissions call answered.
    let gone = ops::read_image(&client, "workbook", "00000000-0000-0000-0000-000000000000", true).await.unwrap();
    assert!(!gone.exists && gone.permissions.is_none(), "{gone:?}");
    emu.stop().await;
}
