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
/// from a generator of their own: nothing else changed).
const DEMO_SHA256: &str = "7a29c5a253e2d02694092acee4d9ddf07e7ac6e87c125b34c02db3c35c4dabd1";
/// SHA-256 of a 200-workbook site with seed 7 (`tabflow emulator generate --scale 200 --seed 7`).
const SCALE_200_SEED_7_SHA256: &str = "43c752abc71109b516c32b10baa80802495fdb2775701b10bdc2abc585a7149e";

#[test]
fn demo_site_bytes_are_pinned() {
    let mut bytes = Vec::new();
    demo().write_json(&mut bytes).unwrap();
    assert_eq!(bytes, demo().to_json().into_bytes(), "write_json and to_json disagree");
    assert_eq!(sha256_hex(&bytes), DEMO_SHA256, "the demo site's bytes changed");
}

#[test]
fn scaled_site_bytes_are_pinned() {
    let mut bytes = Vec::new();
    generate(&Options { scale: 200, seed: 7 }).write_json(&mut bytes).unwrap();
    assert_eq!(sha256_hex(&bytes), SCALE_200_SEED_7_SHA256, "the scale-200 seed-7 site's bytes changed");
}
