//! Schedules, extract refresh tasks and refresh jobs through the client, against the emulator.

use futures::TryStreamExt;
use tabflow_client::refreshes;

use crate::*;

#[tokio::test]
async fn the_snapshot_reads_schedules_tasks_and_jobs_as_the_site_has_them() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let want = emu.emulator.snapshot();
    let (schedules, tasks, jobs) = refreshes::read(&c).await.unwrap();
    // Whole, but for the sub-second part of their times (the API writes whole seconds).
    let secs = |s: &tabflow_site::Schedule| (s.created_at.timestamp(), s.updated_at.timestamp());
    let bare = |s: &tabflow_site::Schedule| tabflow_site::Schedule {
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
        ..s.clone()
    };
    assert_eq!(schedules.iter().map(bare).collect::<Vec<_>>(), want.schedules.iter().map(bare).collect::<Vec<_>>());
    assert_eq!(schedules.iter().map(secs).collect::<Vec<_>>(), want.schedules.iter().map(secs).collect::<Vec<_>>());
    // Tasks: everything but the run time, which Tableau's task list does not give for all.
    // A Cloud-style task's type (full or incremental) is in no list: it reads as FullRefresh.
    let strip = |t: &tabflow_site::ExtractRefresh| tabflow_site::ExtractRefresh {
        last_run_at: None,
        kind: if t.schedule_id.is_empty() { "FullRefresh".into() } else { t.kind.clone() },
        ..t.clone()
    };
    let got: Vec<_> = tasks.iter().map(strip).collect();
    let exp: Vec<_> = want.extract_refreshes.iter().map(strip).collect();
    assert_eq!(got, exp);
    // Jobs: content, times, outcome and notes; which task ran it is not in the API.
    assert_eq!(jobs.len(), want.refresh_jobs.len());
    for (g, w) in jobs.iter().zip(&want.refresh_jobs) {
        assert_eq!((&g.id, &g.target, g.finish_code, &g.notes), (&w.id, &w.target, w.finish_code, &w.notes));
        assert_eq!(
            (g.started_at.timestamp(), g.completed_at.timestamp()),
            (w.started_at.timestamp(), w.completed_at.timestamp())
        );
        assert!(g.task_id.is_empty());
    }
    // The whole snapshot carries them too.
    let site = tabflow_client::snapshot::take(&c, &Default::default()).await.unwrap();
    assert_eq!(site.schedules.len(), 9);
    assert_eq!(site.extract_refreshes.len(), want.extract_refreshes.len());
}

#[tokio::test]
async fn suspend_resume_delete_recreate_and_reschedule() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let snap = emu.emulator.snapshot();
    let nightly = snap.schedules.iter().find(|s| s.name == "Nightly (2am)").unwrap();
    assert_eq!(c.set_schedule_state(&nightly.id, "Suspended").await.unwrap().state.as_deref(), Some("Suspended"));
    assert_eq!(c.schedule(&nightly.id).await.unwrap().state.as_deref(), Some("Suspended"));
    c.set_schedule_state(&nightly.id, "Active").await.unwrap();
    assert_eq!(
        emu.emulator.snapshot().schedules,
        snap.schedules
            .iter()
            .cloned()
            .map(|mut s| {
                if s.id == nightly.id {
                    s.updated_at = emu.emulator.snapshot().schedules.iter().find(|x| x.id == s.id).unwrap().updated_at;
                }
                s
            })
            .collect::<Vec<_>>()
    );
    let e = c.set_schedule_state(&nightly.id, "Paused").await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");

    // Server: delete a task, re-create it on its schedule (a new id).
    let t = snap.extract_refreshes.iter().find(|t| !t.schedule_id.is_empty()).unwrap();
    c.delete_extract_refresh_task(&t.id).await.unwrap();
    assert_eq!(c.extract_refresh_task(&t.id).await.unwrap_err().status(), Some(404));
    let again =
        c.add_to_schedule(&t.schedule_id, &t.target.kind, &t.target.id, &t.kind, Some(t.priority)).await.unwrap();
    let new_id = again.id.clone().unwrap();
    assert_ne!(new_id, t.id);
    let back = refreshes::task_model(c.extract_refresh_task(&new_id).await.unwrap());
    assert_eq!((back.schedule_id.as_str(), &back.target), (t.schedule_id.as_str(), &t.target));
    assert_eq!(back.priority, t.priority, "the task's own priority comes back with it");

    // Cloud: a task with a schedule of its own, moved to 02:00 and back exactly.
    let own = snap.extract_refreshes.iter().find(|t| t.own_schedule.is_some()).unwrap();
    let before = own.own_schedule.clone().unwrap();
    let mut later = before.clone();
    later.start_time = "02:00:00".into();
    assert_eq!(c.update_extract_refresh_schedule(&own.id, &later).await.unwrap(), later);
    assert_eq!(refreshes::task_model(c.extract_refresh_task(&own.id).await.unwrap()).own_schedule, Some(later));
    c.update_extract_refresh_schedule(&own.id, &before).await.unwrap();
    let now = emu.emulator.snapshot();
    assert_eq!(now.extract_refreshes.iter().find(|x| x.id == own.id).unwrap().own_schedule, Some(before.clone()));
    // A Cloud task re-created from its description.
    c.delete_extract_refresh_task(&own.id).await.unwrap();
    let created = c
        .create_extract_refresh_task(&own.target.kind, &own.target.id, &own.kind, &before, Some(own.priority))
        .await
        .unwrap();
    let m = refreshes::task_model(c.extract_refresh_task(created.id.as_deref().unwrap()).await.unwrap());
    assert_eq!((m.own_schedule, m.target, m.priority), (Some(before), own.target.clone(), own.priority));

    // Jobs, paged.
    let listed: Vec<_> = c.background_jobs().page_size(7).stream().try_collect().await.unwrap();
    assert_eq!(listed.len(), snap.refresh_jobs.len());
}
