//! Picks up what other programs change in the settings file while the app runs (support staff
//! adding, changing or removing accounts with `vicifast-cli account set` / `account remove`).
//!
//! Polls the file's modification time and size every few seconds rather than using file-change
//! events: every save (ours and the CLI's) replaces the file by rename, which a watch on the file
//! itself loses, and the poll is one `stat` — nothing next to the engine's own timers.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const POLL: Duration = Duration::from_secs(3);

/// What tells one version of the file from the next.
pub type Stamp = Option<(SystemTime, u64)>;

pub fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Calls `changed` with each new version of the file at `path`; runs until the process ends.
pub async fn watch<F, Fut>(path: PathBuf, mut changed: F)
where
    F: FnMut(Stamp) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut seen = stamp(&path);
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        poll.tick().await;
        let now = stamp(&path);
        if now != seen {
            seen = now;
            changed(now).await;
        }
    }
}
