//! Tests that cannot run on this machine (not root, a program missing) say so and are counted:
//! each skip is printed and, when `VICIFAST_SKIP_LOG` names a file, appended to it as one line,
//! so `make test` can end with how many tests did not run here and why.

use std::io::Write;

/// The file `make test` reads at its end.
pub const SKIP_LOG_ENV: &str = "VICIFAST_SKIP_LOG";

/// Records that `test` did not run, and why.
pub fn skipped(test: &str, why: &str) {
    eprintln!("{test}: skipped: {why}");
    let Some(path) = std::env::var_os(SKIP_LOG_ENV) else {
        return;
    };
    // One short append per skip: concurrent tests' lines do not interleave.
    let line = format!("{test}: {}\n", why.replace('\n', " "));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(err) = written {
        eprintln!(
            "could not record the skip in {}: {err}",
            path.to_string_lossy()
        );
    }
}
