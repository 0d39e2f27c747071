//! One platform monitor per process, fanned out to every registration through a
//! `tokio::sync::watch` channel: a subscriber wakes once for any number of changes it has not
//! seen, which is all the driver needs (it re-checks the route, whatever changed).

use super::NetworkMonitor;
use std::io;
use std::sync::Mutex;
use tokio::sync::watch;

/// The live fan-out, if one runs: a receiver kept only to hand out clones.
static FAN_OUT: Mutex<Option<watch::Receiver<()>>> = Mutex::new(None);

/// One registration's view of the shared monitor.
pub(crate) struct Subscription {
    changes: watch::Receiver<()>,
}

/// A subscription to the running fan-out, or to a new one around `open()` when none runs (the
/// first subscriber, or the runtime that ran the last one has shut down).
pub(crate) fn subscribe<M, F>(open: F) -> io::Result<Subscription>
where
    M: NetworkMonitor + 'static,
    F: FnOnce() -> io::Result<M>,
{
    let mut fan_out = FAN_OUT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(changes) = fan_out.as_ref().filter(|rx| rx.has_changed().is_ok()) {
        let mut changes = changes.clone();
        // Only changes from now on concern the new subscriber.
        changes.borrow_and_update();
        return Ok(Subscription { changes });
    }
    let mut monitor = open()?;
    let (notify, changes) = watch::channel(());
    tokio::spawn(async move {
        loop {
            match monitor.changed().await {
                Ok(()) => {
                    notify.send_replace(());
                }
                // Dropping `notify` tells every subscriber the monitor is gone.
                Err(err) => {
                    tracing::warn!(%err, "the network monitor failed");
                    return;
                }
            }
        }
    });
    *fan_out = Some(changes.clone());
    Ok(Subscription { changes })
}

impl NetworkMonitor for Subscription {
    async fn changed(&mut self) -> io::Result<()> {
        self.changes
            .changed()
            .await
            .map_err(|_| io::Error::other("the network monitor stopped"))
    }
}
