//! Replays every input the fuzzers found a bug with (`fuzz/regressions/<target>/`) and the seed
//! corpus (`fuzz/corpus/<target>/`) through the same entry points the fuzz targets call, so that
//! a fixed bug stays fixed without a fuzzing run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use vicifast_core::fuzzing;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `entry` on every input of `target`; fails naming each input that panicked.
fn replay(target: &str, entry: fn(&[u8])) {
    let mut failed = Vec::new();
    let mut count = 0;
    for kind in ["regressions", "corpus"] {
        for path in inputs(kind, target) {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| entry(&bytes))).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: these inputs fail: {failed:#?}"
    );
    println!("{target}: {count} inputs replayed");
}

#[test]
fn message_inputs() {
    replay("message", fuzzing::message);
}

#[test]
fn challenge_inputs() {
    replay("challenge", fuzzing::challenge);
}

#[test]
fn registration_inputs() {
    replay("registration", fuzzing::registration);
}

#[test]
fn edge_inputs() {
    replay("edge", fuzzing::edge);
}
