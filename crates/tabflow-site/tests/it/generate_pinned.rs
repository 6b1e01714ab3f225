//! Pinned bytes of generated sites: the generator promises "same options, same bytes", and a
//! refactor of it (moving its data tables, reordering helpers) must not change one byte of the
//! snapshots users already have. A change here that is meant must update the constant and say
//! why in the commit.

use sha2::{Digest, Sha256};
use tabflow_site::generate::{Options, demo, generate};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the demo site's serialized snapshot (`tabflow emulator generate --scale 0`).
/// Re-pinned when three subscriptions became `"suspended": true` (subscription cleanup, drawn
/// from a generator of their own: nothing else changed), and again when the extract refresh
/// schedules, tasks and jobs were added (their own generator too: see the test below), and
/// again when the "Archive reports" schedule and its two tasks were appended (drawn last from
/// the refresh generator: see `the_archive_schedule_changes_nothing_else`).
const DEMO_SHA256: &str = "36d6f5eb4080ffc62ea4369a54bbf5e4f2d20a9daa26b866e938351289d80ac1";
/// The demo site before the "Archive reports" schedule (the previous pin).
const DEMO_BEFORE_ARCHIVE_SCHEDULE_SHA256: &str = "fb6f721354a955a0b9aaf234b793b4d7c8df2b698cd8845c691785a88efbe205";
/// SHA-256 of a 200-workbook site with seed 7 (`tabflow emulator generate --scale 200 --seed 7`).
/// Re-pinned with the extract refresh sections.
const SCALE_200_SEED_7_SHA256: &str = "fcf79d11dc0614877c52bf4cb0bd6fa93f44e9cebf135746f33708e3f6ce9b0f";

#[test]
fn demo_site_bytes_are_pinned() {
    let mut bytes = Vec::new();
    demo().write_json(&mut bytes).unwrap();
    assert_eq!(bytes, demo().to_json().into_bytes(), "write_json and to_json disagree");
    assert_eq!(sha256_hex(&bytes), DEMO_SHA256, "the demo site's bytes changed");
}

/// The demo site as it was before extract refreshes were modelled (the previous pin): the
/// refresh schedules, tasks and jobs draw from a generator of their own and change nothing else.
const DEMO_WITHOUT_REFRESHES_SHA256: &str = "7a29c5a253e2d02694092acee4d9ddf07e7ac6e87c125b34c02db3c35c4dabd1";

#[test]
fn extract_refreshes_change_nothing_else_of_the_demo_site() {
    let mut site = demo();
    assert!(!site.schedules.is_empty() && !site.extract_refreshes.is_empty() && !site.refresh_jobs.is_empty());
    site.schedules.clear();
    site.extract_refreshes.clear();
    site.refresh_jobs.clear();
    assert_eq!(sha256_hex(site.to_json().as_bytes()), DEMO_WITHOUT_REFRESHES_SHA256);
}

/// The schedule `suspend-schedules` finds on the demo site, its tasks and their jobs come
/// last from the refresh generator and are appended: without them the site is byte for byte
/// what it was.
#[test]
fn the_archive_schedule_changes_nothing_else() {
    let mut site = demo();
    let at = site.schedules.iter().position(|s| s.name == "Archive reports (Saturday 5am)").expect("the schedule");
    assert_eq!(at, site.schedules.len() - 1, "appended");
    let id = site.schedules.remove(at).id;
    let tasks: Vec<String> =
        site.extract_refreshes.iter().filter(|t| t.schedule_id == id).map(|t| t.id.clone()).collect();
    assert_eq!(tasks.len(), 2);
    site.extract_refreshes.retain(|t| t.schedule_id != id);
    site.refresh_jobs.retain(|j| !tasks.contains(&j.task_id));
    assert_eq!(sha256_hex(site.to_json().as_bytes()), DEMO_BEFORE_ARCHIVE_SCHEDULE_SHA256);
}

#[test]
fn scaled_site_bytes_are_pinned() {
    let mut bytes = Vec::new();
    generate(&Options { scale: 200, seed: 7 }).write_json(&mut bytes).unwrap();
    assert_eq!(sha256_hex(&bytes), SCALE_200_SEED_7_SHA256, "the scale-200 seed-7 site's bytes changed");
}
