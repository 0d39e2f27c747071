//! The window's TypeScript types, `ui/src/generated/`, are generated from the Rust types that
//! cross to it (ts-rs reads their serde attributes), so the UI cannot drift from what this
//! process sends. The files are committed: the UI builds without Rust.
//!
//! [`generated_ui_types_are_current`] generates them into a temporary directory and fails, naming
//! the command to run, when the committed files differ; with `VICIFAST_WRITE_UI_TYPES=1` (what
//! `make ui-types` sets) it writes them instead.

use crate::state::UiState;
use std::collections::BTreeMap;
use std::path::Path;
use ts_rs::{Config, TS};
use vicifast_ipc::CommandError;

/// Two levels below the repository root, wherever this crate lives.
const GENERATED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/src/generated");
const WRITE_VAR: &str = "VICIFAST_WRITE_UI_TYPES";
const REGENERATE: &str = "make ui-types";

/// Writes every type the window receives into `dir`, one file per type.
fn export(dir: &Path) -> Result<(), ts_rs::ExportError> {
    // Seconds, ports and ids all fit a JS number exactly.
    let config = Config::new().with_out_dir(dir).with_large_int("number");
    // `get_state`'s answer holds every event payload (status, timeline, trace, accounts,
    // softphones); a rejected command carries a `CommandError`.
    UiState::export_all(&config)?;
    CommandError::export_all(&config)?;
    Ok(())
}

/// The files of `dir` by name (none when `dir` does not exist).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let bytes = std::fs::read(e.path())
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", e.path().display()));
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// How `committed` differs from `fresh`, one phrase per file.
fn differences(
    fresh: &BTreeMap<String, Vec<u8>>,
    committed: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, bytes) in fresh {
        match committed.get(name) {
            None => out.push(format!("{name} is missing")),
            Some(old) if old != bytes => out.push(format!("{name} is out of date")),
            Some(_) => {}
        }
    }
    for name in committed.keys().filter(|n| !fresh.contains_key(*n)) {
        out.push(format!("{name} is no longer generated"));
    }
    out
}

/// Replaces the committed files with `fresh`, removing the ones no longer generated.
fn write(dir: &Path, fresh: &BTreeMap<String, Vec<u8>>) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for name in files(dir).keys().filter(|n| !fresh.contains_key(*n)) {
        std::fs::remove_file(dir.join(name))
            .unwrap_or_else(|e| panic!("cannot remove {name}: {e}"));
    }
    for (name, bytes) in fresh {
        std::fs::write(dir.join(name), bytes)
            .unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
    }
}

#[test]
fn generated_ui_types_are_current() {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    export(scratch.path()).expect("ts-rs exports the window's types");
    let fresh = files(scratch.path());
    assert!(
        fresh.contains_key("UiState.ts") && fresh.contains_key("CommandError.ts"),
        "nothing exported: {:?}",
        fresh.keys()
    );
    let committed_dir = Path::new(GENERATED_DIR);
    if std::env::var_os(WRITE_VAR).is_some_and(|v| v == "1") {
        write(committed_dir, &fresh);
        return;
    }
    let differences = differences(&fresh, &files(committed_dir));
    assert!(
        differences.is_empty(),
        "ui/src/generated/ does not match the Rust types it is generated from ({}). Run \
         `{REGENERATE}` and commit the result.",
        differences.join("; ")
    );
}

#[test]
fn a_changed_missing_or_stale_file_is_named() {
    let fresh = BTreeMap::from([
        ("A.ts".to_owned(), b"a".to_vec()),
        ("B.ts".to_owned(), b"b".to_vec()),
    ]);
    let committed = BTreeMap::from([
        ("A.ts".to_owned(), b"old".to_vec()),
        ("C.ts".to_owned(), b"c".to_vec()),
    ]);
    assert_eq!(
        differences(&fresh, &committed),
        [
            "A.ts is out of date",
            "B.ts is missing",
            "C.ts is no longer generated"
        ]
    );
    assert!(differences(&fresh, &fresh).is_empty());
}
