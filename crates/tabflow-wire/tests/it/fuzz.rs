//! The fuzz targets' entry points (`fuzz/src/readers.rs`, included as is) on stable Rust.
//!
//! cargo-fuzz needs a nightly toolchain; these tests give the same functions two stable
//! runs: every committed corpus file replayed (a crash the fuzzer found and saved stays
//! fixed), and proptest's random and mutated inputs — not coverage-guided, so a smoke test,
//! not fuzzing. `PROPTEST_CASES` raises the case count of the smoke tests for a long local
//! run (`PROPTEST_CASES=200000 cargo test -p tabflow-wire --release --test it fuzz::smoke`).

use std::path::{Path, PathBuf};

use proptest::prelude::*;

#[path = "../../../../fuzz/src/readers.rs"]
#[allow(dead_code, reason = "the fuzz crate's library, compiled here as a module")]
mod targets;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// The corpus files of `target`, sorted.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = corpus_root().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_replays_without_a_panic() {
    for (name, run) in targets::TARGETS {
        let files = corpus(name);
        assert!(files.len() >= 5, "fuzz/corpus/{name} holds {} seeds; keep at least 5", files.len());
        for file in files {
            let data = std::fs::read(&file).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "fuzz target {name} panicked on {}", file.display());
        }
    }
}

#[test]
fn every_target_has_a_corpus_and_a_fuzz_target_file() {
    let targets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for (name, _) in targets::TARGETS {
        let source = std::fs::read_to_string(targets_dir.join(format!("{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(source.contains(&format!("tabflow_fuzz::{name}(data)")), "{name}.rs calls its entry point");
    }
}

/// Random inputs: mutations of the corpus (a few bytes set, cut or repeated), and plain
/// random bytes. Deterministic per run (proptest's fixed seed unless `PROPTEST_RNG_SEED`).
mod smoke {
    use super::*;

    fn config(default: u32) -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
        ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Set(usize, u8),
        Cut(usize),
        Repeat(usize, usize),
        Insert(usize, Vec<u8>),
    }

    fn edits() -> impl Strategy<Value = Vec<Edit>> {
        let edit = prop_oneof![
            4 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
            1 => any::<usize>().prop_map(Edit::Cut),
            1 => (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Repeat(at, n)),
            2 => (any::<usize>(), prop_oneof![
                Just(b"PK\x03\x04".to_vec()), Just(b"PK\x01\x02".to_vec()), Just(b"PK\x05\x06".to_vec()),
                Just(b"\xff\xff\xff\xff".to_vec()), Just(b"<".to_vec()), Just(b"/>".to_vec()),
                Just(b"&amp;".to_vec()), Just(b"\"".to_vec()), Just("丸İ".as_bytes().to_vec()),
                Just(b"{\"".to_vec()), Just(b"]".to_vec()),
            ]).prop_map(|(at, b)| Edit::Insert(at, b)),
        ];
        proptest::collection::vec(edit, 1..8)
    }

    fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
        for e in edits {
            let len = bytes.len().max(1);
            match e {
                Edit::Set(at, b) => {
                    if let Some(x) = bytes.get_mut(at % len) {
                        *x = *b;
                    }
                }
                Edit::Cut(at) => bytes.truncate(at % len),
                Edit::Repeat(at, n) => {
                    let start = at % len;
                    let piece: Vec<u8> = bytes.iter().skip(start).take(*n).copied().collect();
                    let at = start.min(bytes.len());
                    bytes.splice(at..at, piece);
                }
                Edit::Insert(at, b) => {
                    let at = (at % len).min(bytes.len());
                    bytes.splice(at..at, b.iter().copied());
                }
            }
        }
        bytes
    }

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        corpus(target).iter().map(|p| std::fs::read(p).expect("a corpus file")).collect()
    }

    fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
        let seeds = seeds(target);
        let n = seeds.len();
        (0..n, edits()).prop_map(move |(k, e)| apply(seeds.get(k).cloned().unwrap_or_default(), &e))
    }

    proptest! {
        #![proptest_config(config(300))]

        #[test]
        fn zip_mutations(data in mutated("zip")) {
            targets::zip(&data);
        }

        #[test]
        fn twb_mutations(data in mutated("twb")) {
            targets::twb(&data);
        }

        #[test]
        fn xml_mutations(data in mutated("xml")) {
            targets::xml(&data);
        }

        #[test]
        fn nl_mutations(data in mutated("nl")) {
            targets::nl(&data);
        }

        #[test]
        fn plan_and_snapshot_mutations(plan in mutated("plan"), snapshot in mutated("snapshot")) {
            targets::plan(&plan);
            targets::snapshot(&snapshot);
        }

        #[test]
        fn random_bytes_everywhere(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            for (_, run) in targets::TARGETS {
                run(&data);
            }
        }
    }
}
