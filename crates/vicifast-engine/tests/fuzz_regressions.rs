//! Replays every input the `stream` fuzz target found a bug with (`fuzz/regressions/stream/`)
//! and its seed corpus (`fuzz/corpus/stream/`), so that a fixed bug stays fixed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

#[test]
fn stream_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut failed = Vec::new();
    let mut count = 0;
    for kind in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join("stream")) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files.into_iter().filter(|p| p.is_file()) {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| {
                vicifast_engine::fuzzing::stream(&bytes)
            }))
            .is_err()
            {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "these inputs fail: {failed:#?}");
    println!("stream: {count} inputs replayed");
}
