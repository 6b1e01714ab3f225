//! The worker's passes on an injected clock: a weekly review fires once a week and once after
//! a two-week outage; a destructive scheduled template stops at awaiting-approval, a real HTTP
//! receiver gets the approvers' signed notice, and the next pass runs it once approved; two
//! workers on one PostgreSQL store never fire one schedule twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use tabflow_app::{Approver, Decision, FixedClock, NewSchedule, Policy, Selection, WorkerOptions};

use crate::support::*;

/// The next Monday 07:00 UTC after the real now (the demo site is shifted to the real now).
fn next_monday_7() -> DateTime<Utc> {
    let now = Utc::now();
    let mut d = now.date_naive() + Duration::days(1);
    while d.weekday() != chrono::Weekday::Mon {
        d += Duration::days(1);
    }
    d.and_hms_opt(7, 0, 0).unwrap().and_utc()
}

fn schedule(template: &str, params: &[(&str, &str)]) -> NewSchedule {
    NewSchedule {
        cron: "0 8 * * MON".into(),
        template: template.into(),
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        tz: None,
    }
}

/// Two apps on one PostgreSQL store and one demo site — A with the test's token, B signed in
/// with a password (one session each) — and a weekly audit schedule added by A; both signed in.
struct Pair {
    emu: tabflow_emulator::Running,
    a: tabflow_app::App,
    b: tabflow_app::App,
    row: tabflow_app::ScheduleRow,
    dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Two apps on one PostgreSQL store and one demo site: A with the test's token, B signed in
/// as a user (one PAT holds one session at a time, as on Tableau).
async fn two_apps(
    pg: &PgSchema,
    clock: &FixedClock,
) -> (tabflow_emulator::Running, tabflow_app::App, tabflow_app::App, (tempfile::TempDir, tempfile::TempDir)) {
    let emu = demo().await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a =
        app_with(&emu.url, d1.path(), &pg.url(), Arc::new(clock.clone()), Policy::default(), Default::default()).await;
    let admin = tabflow_client::Credentials::Password {
        username: "admin".into(),
        password: tabflow_client::Secret::new("tabflow"),
    };
    let b =
        app_as(&emu.url, d2.path(), &pg.url(), Arc::new(clock.clone()), Policy::default(), Default::default(), admin)
            .await;
    (emu, a, b, (d1, d2))
}

async fn two_workers(pg: &PgSchema, clock: &FixedClock) -> Pair {
    let (emu, a, b, (d1, d2)) = two_apps(pg, clock).await;
    let row = a.add_schedule(schedule("audit-permissions", &[("tags", "sensitive")]), "tester").await.unwrap();
    a.connect().await.unwrap();
    b.connect().await.unwrap();
    Pair { emu, a, b, row, dirs: (d1, d2) }
}

fn worker(name: &str) -> WorkerOptions {
    WorkerOptions::new(format!("test:{name}"), format!("worker {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_review_fires_once_a_week_and_once_after_two_weeks_down() {
    let t0 = next_monday_7();
    let clock = FixedClock::new(t0);
    let env = env(Arc::new(clock.clone()), Policy::default()).await;
    let app = &env.app;
    let w = worker("a");
    let row = app.add_schedule(schedule("audit-permissions", &[("tags", "sensitive")]), "tester").await.unwrap();
    assert_eq!(row.next_run_at, Some(t0 + Duration::hours(1)));

    clock.set(t0 + Duration::minutes(59));
    assert!(app.work_once(&w).await.unwrap().fired.is_empty(), "not due before 08:00");

    clock.set(t0 + Duration::hours(1));
    let pass = app.work_once(&w).await.unwrap();
    assert_eq!(pass.fired.len(), 1, "{pass:?}");
    let f = &pass.fired[0];
    // Read-only (its question's default is report-only): it writes its report.
    assert_eq!(f.outcome, "report", "{f:?}");
    assert!(std::path::Path::new(&f.detail).exists(), "report {} written", f.detail);
    let plan_id = f.plan_id.clone().unwrap();
    assert_eq!(app.plan_template_label(&plan_id).await.unwrap().as_deref(), Some("audit-permissions@v1"));
    assert!(app.get_plan(&plan_id).await.unwrap().notes.iter().any(|n| n.contains(&row.id)));

    clock.set(t0 + Duration::hours(1) + Duration::minutes(5));
    assert!(app.work_once(&w).await.unwrap().fired.is_empty(), "fired already this week");
    clock.set(t0 + Duration::days(6));
    assert!(app.work_once(&w).await.unwrap().fired.is_empty());

    clock.set(t0 + Duration::days(7) + Duration::hours(1));
    assert_eq!(app.work_once(&w).await.unwrap().fired.len(), 1, "the next Monday");

    // Down for two weeks (two slots missed): one firing, then the next Monday is next.
    let back = t0 + Duration::days(21) + Duration::hours(3);
    clock.set(back);
    assert_eq!(app.work_once(&w).await.unwrap().fired.len(), 1, "fires once after the outage");
    assert!(app.work_once(&w).await.unwrap().fired.is_empty(), "not once per missed slot");
    let rows = app.schedules().await.unwrap();
    let r = rows.iter().find(|r| r.id == row.id).unwrap();
    assert_eq!(r.next_run_at, Some(t0 + Duration::days(28) + Duration::hours(1)));
    assert_eq!(r.last_run_at, Some(back));
    assert_eq!(r.last_outcome.as_deref(), Some("report"));
    assert_eq!(writes(&env), 0, "a review changes nothing on the site");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_scheduled_template_waits_for_approval_tells_the_approvers_then_runs() {
    let t0 = next_monday_7();
    let clock = FixedClock::new(t0);
    let mut hook = receiver().await;
    let emu = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("tabflow.db").display().to_string();
    let delivery = tabflow_app::Delivery::webhook(hook.url.clone(), Some("hook-secret".into()));
    let app = app_with(&emu.url, dir.path(), &store, Arc::new(clock.clone()), Policy::default(), delivery).await;
    let w = worker("a");
    let row = app.add_schedule(schedule("archive-stale-content", &[("project", "Finance")]), "tester").await.unwrap();

    clock.set(t0 + Duration::hours(1));
    let pass = app.work_once(&w).await.unwrap();
    let f = pass.fired.first().cloned().expect("fired");
    assert_eq!(f.outcome, "awaiting-approval", "{f:?}");
    assert!(f.detail.contains("the approvers were told"), "{}", f.detail);
    let plan_id = f.plan_id.clone().unwrap();
    assert_eq!(emu.emulator.stats()["writes"], 0, "nothing written before the approval");

    // The approvers' webhook: a signed POST naming the plan.
    let (headers, body) =
        tokio::time::timeout(std::time::Duration::from_secs(10), hook.rx.recv()).await.unwrap().unwrap();
    let signature = tabflow_engine::notify::signature("hook-secret", body.as_bytes());
    assert_eq!(headers.get("x-tabflow-signature"), Some(&signature));
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["run_id"], serde_json::json!(plan_id));
    assert!(event["subject"].as_str().unwrap().contains("awaiting approval"), "{event}");
    assert!(event["body"].as_str().unwrap().contains(&format!("tabflow apply {plan_id} --approve all")), "{event}");

    // Not approved yet: the next pass leaves it waiting.
    clock.set(t0 + Duration::hours(2));
    assert!(app.work_once(&w).await.unwrap().fired.is_empty());
    let r = app.schedules().await.unwrap().into_iter().find(|r| r.id == row.id).unwrap();
    assert_eq!(
        (r.pending_plan_id.as_deref(), r.last_outcome.as_deref()),
        (Some(plan_id.as_str()), Some("awaiting-approval"))
    );

    // Approved: the next pass starts it (auto_run_on_approval, the default).
    app.approve(&Approver::terminal("boss"), &plan_id, Decision::Approve, Selection::All).await.unwrap();
    clock.set(t0 + Duration::hours(3));
    let pass = app.work_once(&w).await.unwrap();
    let f = pass.fired.first().cloned().expect("the approved plan ran");
    assert_eq!(f.outcome, "succeeded", "{f:?}");
    assert!(f.run_id.is_some());
    assert!(emu.emulator.stats()["writes"].as_u64().unwrap() > 0);
    let r = app.schedules().await.unwrap().into_iter().find(|r| r.id == row.id).unwrap();
    assert_eq!(r.pending_plan_id, None);
    assert_eq!(r.last_run_id, f.run_id);
    let detail = app.run(f.run_id.as_deref().unwrap()).await.unwrap();
    assert_eq!(detail.template.as_deref(), Some("archive-stale-content@v1"), "the run records the template's version");
    assert!(app.work_once(&w).await.unwrap().fired.is_empty(), "started once");
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_postgres_store_never_fire_a_schedule_twice() {
    let Some(pg) = PgSchema::create("tabflow_sched").await else { return };
    let t0 = next_monday_7();
    let clock = FixedClock::new(t0);
    let (_emu, a, b, _dirs) = two_apps(&pg, &clock).await;
    let mut ids = vec![];
    for tags in ["sensitive", "confidential", "finance"] {
        ids.push(a.add_schedule(schedule("audit-permissions", &[("tags", tags)]), "tester").await.unwrap().id);
    }
    let (wa, wb) = (worker("a"), worker("b"));
    for week in 0..2 {
        clock.set(t0 + Duration::days(7 * week) + Duration::hours(1));
        let mut fired = vec![];
        // Two passes each, at the same time: every schedule fires exactly once per slot.
        for _ in 0..2 {
            let (ra, rb) = tokio::join!(a.work_once(&wa), b.work_once(&wb));
            fired.extend(ra.unwrap().fired);
            fired.extend(rb.unwrap().fired);
        }
        let mut got: Vec<String> = fired.iter().map(|f| f.schedule_id.clone()).collect();
        got.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want, "week {week}: {fired:?}");
        assert!(fired.iter().all(|f| f.outcome == "report"), "{fired:?}");
    }
    let rows = a.schedules().await.unwrap();
    assert!(rows.iter().all(|r| r.next_run_at.map(|t| (t.weekday(), t.hour())) == Some((chrono::Weekday::Mon, 8))));
    a.close().await.unwrap();
    b.close().await.unwrap();
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_firing_renews_its_claim_so_a_second_worker_on_postgres_does_not_take_it_over() {
    let Some(pg) = PgSchema::create("tabflow_beat").await else { return };
    let t0 = next_monday_7();
    let clock = FixedClock::new(t0);
    let Pair { emu, a, b, row, dirs: _dirs } = two_workers(&pg, &clock).await;
    let lease = Duration::minutes(30);
    let mut wa = worker("a");
    wa.lease = lease;
    wa.heartbeat = Some(std::time::Duration::from_millis(150));
    let mut wb = worker("b");
    wb.lease = lease;
    clock.set(t0 + Duration::hours(1));
    // Every call to the site takes a while: A's firing outlasts what follows.
    emu.emulator.set_faults(tabflow_emulator::Faults { latency_ms: Some(700), ..Default::default() });

    let store = a.store().clone();
    let id = row.id.clone();
    let meanwhile = async {
        let first = loop {
            if let Some((owner, until)) = store.schedule_claim(&id).await.unwrap() {
                break (owner, until);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(first.0, "test:a");
        assert_eq!(first.1, t0 + Duration::hours(1) + lease);
        // Twenty minutes on, A's heartbeat extends the claim to 30 minutes from then.
        clock.set(t0 + Duration::hours(1) + Duration::minutes(20));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let renewed = store.schedule_claim(&id).await.unwrap().expect("A still holds it");
        assert_eq!(renewed, ("test:a".to_string(), t0 + Duration::hours(1) + Duration::minutes(50)));
        // Past the first claim's end: B finds the schedule due but held, and leaves it.
        clock.set(t0 + Duration::hours(1) + Duration::minutes(40));
        let pass = b.work_once(&wb).await.unwrap();
        let still = store.schedule_claim(&id).await.unwrap();
        assert!(still.as_ref().is_some_and(|(o, _)| o == "test:a"), "A was still firing when B looked: {still:?}");
        pass
    };
    let (pa, pb) = tokio::join!(a.work_once(&wa), meanwhile);
    assert!(pb.fired.is_empty(), "B took over a schedule A was firing: {pb:?}");
    let pa = pa.unwrap();
    assert_eq!(pa.fired.len(), 1, "{pa:?}");
    assert_eq!(pa.fired[0].outcome, "report", "{pa:?}");
    emu.emulator.set_faults(Default::default());
    let r = a.schedules().await.unwrap().into_iter().find(|r| r.id == row.id).unwrap();
    assert_eq!(r.last_outcome.as_deref(), Some("report"), "A's outcome recorded: its claim held to the end");
    assert_eq!(store.schedule_claim(&id).await.unwrap(), None, "released");
    a.close().await.unwrap();
    b.close().await.unwrap();
    pg.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_claim_acts_on_nothing_once_another_took_the_schedule_over() {
    let Some(pg) = PgSchema::create("tabflow_fence").await else { return };
    let t0 = next_monday_7();
    let clock = FixedClock::new(t0);
    let Pair { emu, a, b, row, dirs: (d1, d2) } = two_workers(&pg, &clock).await;
    let lease = Duration::minutes(30);
    // A never renews its claim while this test runs: as if it were stopped (SIGSTOP) mid-firing.
    let mut wa = worker("a");
    wa.lease = lease;
    wa.heartbeat = Some(std::time::Duration::from_secs(3600));
    let mut wb = worker("b");
    wb.lease = lease;
    clock.set(t0 + Duration::hours(1));
    // Every call to the site takes a while: A's firing is still reading when B comes.
    emu.emulator.set_faults(tabflow_emulator::Faults { latency_ms: Some(400), ..Default::default() });

    let store = a.store().clone();
    let id = row.id.clone();
    let meanwhile = async {
        loop {
            if store.schedule_claim(&id).await.unwrap().is_some_and(|(o, _)| o == "test:a") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // A's claim lapses: B takes the schedule over (a new epoch) and fires it.
        clock.set(t0 + Duration::hours(1) + lease + Duration::minutes(1));
        b.work_once(&wb).await.unwrap()
    };
    let (pa, pb) = tokio::join!(a.work_once(&wa), meanwhile);
    emu.emulator.set_faults(Default::default());
    let (pa, pb) = (pa.unwrap(), pb);
    assert_eq!(pb.fired.len(), 1, "B took the lapsed schedule over: {pb:?}");
    assert_eq!(pb.fired[0].outcome, "report", "{pb:?}");
    assert_eq!(pa.fired.len(), 1, "{pa:?}");
    assert_eq!(pa.fired[0].outcome, "claim-lost", "A acted after its claim was taken over: {pa:?}");
    // A wrote no report: only B's firing did anything.
    let reports_of =
        |dir: &std::path::Path| walk(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "html")).count();
    assert_eq!(reports_of(d1.path()), 0, "A wrote a report after losing its claim");
    assert!(reports_of(d2.path()) >= 1, "B's report");
    let r = a.schedules().await.unwrap().into_iter().find(|r| r.id == row.id).unwrap();
    assert_eq!(r.last_outcome.as_deref(), Some("report"), "B's outcome stands; A's finish was refused");
    assert_eq!(store.schedule_claim(&id).await.unwrap(), None, "released by B; A released nothing of B's");
    // The audit log says A's outcome was not kept.
    let records = tabflow_engine::audit::records(&store).await.unwrap();
    let fired: Vec<_> = records.iter().filter(|r| r.action == "schedule.fired").collect();
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert!(
        fired.iter().any(|r| r.outcome == "claim-lost"
            && r.after.as_ref().is_some_and(|a| a["claim_kept"] == serde_json::json!(false))),
        "{fired:?}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
    pg.remove().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
