//! Moving an extract refresh task to another Server schedule against the emulator over real
//! HTTP: Tableau Server has no call for it, so the op re-creates the task there and deletes
//! the old one. Both halves are safe to repeat: an apply cut off after the new task was made
//! adopts it (Tableau refuses a second task for the content on that schedule), and an undo
//! without the journalled id finds the moved task by content on the schedule it went to.

use serde_json::json;
use tabflow_engine::ops::{self, Op, State};

use crate::support::demo;

#[tokio::test]
async fn a_moved_task_is_recreated_once_and_its_undo_puts_it_back_on_its_old_schedule() {
    let (emu, client, site) = demo().await;
    let nightly = site.schedules.iter().find(|s| s.name == "Nightly (2am)").unwrap();
    let on_nightly = |s: &tabflow_site::Site, target: &str| {
        s.extract_refreshes.iter().filter(|t| t.schedule_id == nightly.id && t.target.id == target).count()
    };
    let t = site
        .extract_refreshes
        .iter()
        .find(|t| {
            !t.schedule_id.is_empty()
                && t.schedule_id != nightly.id
                && on_nightly(&site, &t.target.id) == 0
                && t.priority != 50
        })
        .expect("a task on another Server schedule, with a priority of its own");
    let task = json!({"id": t.id, "target": {"type": t.target.kind, "id": t.target.id}, "schedule_id": t.schedule_id, "type": t.kind, "priority": t.priority});
    let op = Op::MoveExtractRefresh { task: task.clone(), to: nightly.id.clone() };
    let live = ops::read_image(&client, "extract-refresh", &t.id, false).await.unwrap();
    assert_eq!(ops::classify(&op, &live, None), State::Before);

    // An earlier attempt made the new task and was cut off before deleting the old one.
    client.add_to_schedule(&nightly.id, &t.target.kind, &t.target.id, &t.kind, Some(t.priority)).await.unwrap();
    let new = ops::apply(&client, "extract-refresh", &t.id, &op, None).await.unwrap().expect("the new task's id");
    let now = emu.emulator.snapshot();
    assert_eq!(on_nightly(&now, &t.target.id), 1, "adopted, not made twice");
    let moved = now.extract_refreshes.iter().find(|x| x.id == new).unwrap();
    assert_eq!((moved.schedule_id.as_str(), &moved.kind, moved.priority), (nightly.id.as_str(), &t.kind, t.priority));
    assert!(now.extract_refreshes.iter().all(|x| x.id != t.id), "the old task is gone");
    let live = ops::read_image(&client, "extract-refresh", &t.id, false).await.unwrap();
    assert_eq!(ops::classify(&op, &live, None), State::After);

    // The undo without the journalled id (a crash before it was recorded): back on the old
    // schedule under a new id, the moved one found on the schedule it went to and deleted.
    let back = ops::compensate(&client, "extract-refresh", &t.id, &op, None).await.unwrap().unwrap();
    let now = emu.emulator.snapshot();
    assert_eq!(on_nightly(&now, &t.target.id), 0);
    let b = now.extract_refreshes.iter().find(|x| x.id == back).unwrap();
    assert_ne!(back, t.id);
    assert_eq!((&b.schedule_id, &b.target, &b.kind, b.priority), (&t.schedule_id, &t.target, &t.kind, t.priority));
    // Repeated (an undo cut off after it re-created the task): adopts it, makes no other.
    let again = ops::compensate(&client, "extract-refresh", &t.id, &op, Some(&new)).await.unwrap().unwrap();
    assert_eq!(again, back);
    assert_eq!(emu.emulator.snapshot().extract_refreshes.len(), site.extract_refreshes.len());
}
