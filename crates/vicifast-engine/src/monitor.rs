//! Watching the network: a stream of "something changed" notices (interfaces, addresses, routes).
//!
//! The driver does not care what changed: on every notice it asks the OS which local address
//! now reaches the server (`route::local_ip_toward`) and tells the core. So each platform only
//! has to wake us up, behind one trait:
//!
//! - Linux: an rtnetlink socket subscribed to the link, address *and route* groups. The common
//!   cross-platform crates watch addresses only, and a Wi-Fi→wired switch with both links up
//!   changes the default route without any address event.
//! - Windows: `if-watch` (address events) and route-change notices (NotifyRouteChange2, through
//!   `vicifast-win32`), so a route-only switch is heard at once there too.
//! - elsewhere (macOS): `if-watch`. Route-only changes there are caught by the route re-check
//!   that rides on every keep-alive (25 s on UDP).

use std::io;

/// Something about the network changed.
pub(crate) trait NetworkMonitor: Send {
    /// Waits for the next change; errors mean the monitor is gone for good.
    fn changed(&mut self) -> impl std::future::Future<Output = io::Result<()>> + Send;
}

/// What each registration holds: a subscription to the process's one platform monitor.
pub(crate) type SystemMonitor = shared::Subscription;

/// Subscribes to the process's network monitor, starting it on first use. Every registration in
/// a process (the app's accounts, a benchmark's thousands) shares one OS watch: one socket and
/// one wake-up per change instead of one each.
pub(crate) fn system_monitor() -> io::Result<SystemMonitor> {
    shared::subscribe(platform::Monitor::new)
}

mod shared;

#[cfg(target_os = "linux")]
mod platform {
    use netlink_sys::{
        protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
    };
    use std::io;

    // From <linux/rtnetlink.h>: the legacy multicast group bits.
    const RTMGRP_LINK: u32 = 0x1;
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV4_ROUTE: u32 = 0x40;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;
    const RTMGRP_IPV6_ROUTE: u32 = 0x400;

    pub struct Monitor {
        socket: TokioSocket,
    }

    impl Monitor {
        pub fn new() -> io::Result<Self> {
            let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
            let groups = RTMGRP_LINK
                | RTMGRP_IPV4_IFADDR
                | RTMGRP_IPV4_ROUTE
                | RTMGRP_IPV6_IFADDR
                | RTMGRP_IPV6_ROUTE;
            socket.socket_mut().bind(&SocketAddr::new(0, groups))?;
            Ok(Self { socket })
        }
    }

    impl super::NetworkMonitor for Monitor {
        async fn changed(&mut self) -> io::Result<()> {
            // The content does not matter: any link, address or route message is a change.
            self.socket.recv_from_full().await.map(|_| ())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use futures_util::StreamExt;
    use std::io;

    pub struct Monitor {
        watcher: if_watch::tokio::IfWatcher,
        #[cfg(windows)]
        routes: Routes,
    }

    /// Route-change notices, arriving on a system thread, turned into a wake-up here.
    #[cfg(windows)]
    struct Routes {
        changed: std::sync::Arc<tokio::sync::Notify>,
        _watch: vicifast_win32::RouteWatch,
    }

    impl Monitor {
        pub fn new() -> io::Result<Self> {
            Ok(Self {
                watcher: if_watch::tokio::IfWatcher::new()?,
                #[cfg(windows)]
                routes: {
                    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
                    let notify = changed.clone();
                    // notify_one keeps one wake-up when nobody waits: a burst of route
                    // changes costs one re-check.
                    let watch = vicifast_win32::RouteWatch::new(move || notify.notify_one())?;
                    Routes {
                        changed,
                        _watch: watch,
                    }
                },
            })
        }

        async fn address_changed(&mut self) -> io::Result<()> {
            match self.watcher.next().await {
                Some(Ok(_)) => Ok(()),
                Some(Err(err)) => Err(err),
                None => Err(io::Error::other("interface watcher ended")),
            }
        }
    }

    impl super::NetworkMonitor for Monitor {
        #[cfg(windows)]
        async fn changed(&mut self) -> io::Result<()> {
            let routes = self.routes.changed.clone();
            tokio::select! {
                changed = self.address_changed() => changed,
                () = routes.notified() => Ok(()),
            }
        }

        #[cfg(not(windows))]
        async fn changed(&mut self) -> io::Result<()> {
            self.address_changed().await
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_on_linux() {
        // Only root can change links here; opening and subscribing needs no privilege.
        assert!(system_monitor().is_ok());
    }

    #[tokio::test]
    async fn registrations_share_one_os_watch() {
        let fds = || std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        let first = system_monitor().expect("monitor");
        let before = fds();
        let more: Vec<_> = (0..50)
            .map(|_| system_monitor().expect("monitor"))
            .collect();
        assert_eq!(
            fds(),
            before,
            "each subscription opened a socket of its own"
        );
        drop((first, more));
    }
}
