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
    // The sign-in and serverInfo went together (the connect); count from here.
    emu.emulator.reset_stats();
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

/// While the executor is still finding out whether a step's items need their permissions (the
/// lock of the projects it moves them into), an item is read with its permissions in the same
/// round trip and keeps them only if the answer says so: otherwise its image is the one read
/// without them, even when the permissions call failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_read_while_their_need_is_found_out_are_kept_only_if_needed() {
    let (emu, client, site) = demo().await;
    let w = site.workbooks.iter().find(|w| site.permissions.iter().any(|r| r.resource.id == w.id)).unwrap();
    let plain = ops::read_image(&client, "workbook", &w.id, false).await.unwrap();
    assert!(plain.permissions.is_none());

    emu.emulator.set_faults(tabflow_emulator::Faults { latency_ms: Some(150), ..Default::default() });
    let before = emu.emulator.stats();
    // The answer comes after both reads were sent: all three in flight together.
    let answer = |yes: bool| async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        yes
    };
    let kept = ops::read_image_if(&client, "workbook", &w.id, true, answer(true)).await.unwrap();
    assert!(kept.permissions.as_ref().is_some_and(|p| !p.is_empty()), "{kept:?}");
    let dropped = ops::read_image_if(&client, "workbook", &w.id, true, answer(false)).await.unwrap();
    assert_eq!(dropped, plain, "not needed: the image without permissions");
    let stats = emu.emulator.stats();
    let n = |route: &str| stats["by_route"][route].as_u64().unwrap() - before["by_route"][route].as_u64().unwrap_or(0);
    assert_eq!(n("GET /api/{v}/sites/{s}/workbooks/{id}/permissions"), 2, "{stats}");
    assert_eq!(n("GET /api/{v}/sites/{s}/workbooks/{id}"), 2, "{stats}");

    // A failed permissions call fails the read only when they are needed.
    let fail = || tabflow_emulator::Faults {
        error_status: Some(403),
        fail_nth_call: Some(tabflow_emulator::NthCall {
            route: "GET /api/{v}/sites/{s}/workbooks/{id}/permissions".into(),
            n: 1,
        }),
        ..Default::default()
    };
    emu.emulator.set_faults(fail());
    let dropped = ops::read_image_if(&client, "workbook", &w.id, true, std::future::ready(false)).await.unwrap();
    assert_eq!(dropped, plain);
    emu.emulator.set_faults(fail());
    assert!(ops::read_image_if(&client, "workbook", &w.id, true, std::future::ready(true)).await.is_err());
    emu.stop().await;
}
