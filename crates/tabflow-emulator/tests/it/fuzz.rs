//! The GraphQL fuzz target's entry point (`fuzz/src/graphql.rs`, included as is) on stable
//! Rust: every committed seed of `fuzz/corpus/graphql/` replayed (a crash the fuzzer found and
//! saved stays fixed), then mutations of those seeds (bytes set, cut, repeated, brackets and
//! braces inserted) from a fixed-seed generator — a smoke test, not coverage-guided fuzzing.
//! `GRAPHQL_FUZZ_CASES` raises the mutation count for a longer local run.

use std::path::{Path, PathBuf};

#[path = "../../../../fuzz/src/graphql.rs"]
mod target;

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/graphql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("a corpus file"))).collect()
}

#[test]
fn every_graphql_corpus_file_replays_without_a_panic() {
    let seeds = corpus();
    assert!(seeds.len() >= 10, "fuzz/corpus/graphql holds {} seeds; keep at least 10", seeds.len());
    for (path, data) in &seeds {
        let outcome = std::panic::catch_unwind(|| target::graphql(data));
        assert!(outcome.is_ok(), "the graphql fuzz target panicked on {}", path.display());
    }
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets/graphql.rs"))
            .expect("fuzz/fuzz_targets/graphql.rs");
    assert!(source.contains("tabflow_fuzz::graphql(data)"), "the cargo-fuzz target calls the same entry point");
}

/// xorshift64*: a fixed sequence, so a failure names a case that replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_graphql_seeds_never_panic() {
    let seeds = corpus();
    let cases: usize = std::env::var("GRAPHQL_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400);
    let pieces: [&[u8]; 10] = [b"{", b"}", b"[", b"]", b"(", b")", b"...", b"\\u", b"\"", b"$v"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..cases {
        let (_, seed) = &seeds[rng.below(seeds.len())];
        let mut data = seed.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len() + 1);
            match rng.below(4) {
                0 if at < data.len() => data[at] = rng.next() as u8,
                1 => data.truncate(at),
                2 => {
                    let end = (at + 1 + rng.below(64)).min(data.len());
                    let piece = data[at.min(end)..end].to_vec();
                    for _ in 0..rng.below(8) {
                        data.splice(at..at, piece.iter().copied());
                    }
                }
                _ => {
                    let piece = pieces[rng.below(pieces.len())];
                    data.splice(at..at, piece.iter().copied());
                }
            }
        }
        let outcome = std::panic::catch_unwind(|| target::graphql(&data));
        assert!(outcome.is_ok(), "case {case}: the graphql target panicked on {:?}", String::from_utf8_lossy(&data));
    }
}
