//! Route changes: NotifyRouteChange2 calls us whenever a route of either family is added,
//! removed or changed. `if-watch` hears address changes only, and a Wi-Fi→wired switch with
//! both links up changes the default route and nothing else.
#![allow(unsafe_code)] // Win32 calls; each block says why it is sound.

use std::ffi::c_void;
use std::io;
use std::sync::Arc;
use windows_sys::Win32::Foundation::{HANDLE, NO_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    CancelMibChangeNotify2, NotifyRouteChange2, MIB_IPFORWARD_ROW2, MIB_NOTIFICATION_TYPE,
};
use windows_sys::Win32::Networking::WinSock::AF_UNSPEC;

type OnChange = Arc<dyn Fn() + Send + Sync>;

/// A registration for route-change notices; cancelled on drop.
pub struct RouteWatch {
    handle: HANDLE,
    /// Owned here; the callback borrows it until CancelMibChangeNotify2 has returned.
    on_change: *mut OnChange,
}

// SAFETY: the handle is only passed to CancelMibChangeNotify2, which any thread may call, and
// the callback it refers to is Send + Sync.
unsafe impl Send for RouteWatch {}

impl RouteWatch {
    /// Calls `on_change` (on a system thread) after every route change, IPv4 or IPv6.
    pub fn new(on_change: impl Fn() + Send + Sync + 'static) -> io::Result<RouteWatch> {
        let on_change: *mut OnChange = Box::into_raw(Box::new(Arc::new(on_change)));
        let mut handle: HANDLE = std::ptr::null_mut();
        // SAFETY: the callback matches PIPFORWARD_CHANGE_CALLBACK; its context stays valid
        // until Drop has cancelled the notification; `handle` is a valid out pointer.
        let status = unsafe {
            NotifyRouteChange2(
                AF_UNSPEC,
                Some(route_changed),
                on_change as *const c_void,
                false,
                &mut handle,
            )
        };
        if status != NO_ERROR {
            // SAFETY: the registration failed, so no callback can hold the pointer.
            drop(unsafe { Box::from_raw(on_change) });
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        Ok(RouteWatch { handle, on_change })
    }
}

impl Drop for RouteWatch {
    fn drop(&mut self) {
        // SAFETY: `handle` came from NotifyRouteChange2. CancelMibChangeNotify2 returns once no
        // callback runs or will run, so the context can be freed afterwards.
        unsafe { CancelMibChangeNotify2(self.handle) };
        // SAFETY: created by Box::into_raw in `new` and freed only here.
        drop(unsafe { Box::from_raw(self.on_change) });
    }
}

unsafe extern "system" fn route_changed(
    context: *const c_void,
    _row: *const MIB_IPFORWARD_ROW2,
    _kind: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: `context` is the OnChange that `new` registered, alive until Drop cancels.
    let on_change = unsafe { &*(context as *const OnChange) };
    on_change();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_watch_registers_and_cancels() {
        let watch = RouteWatch::new(|| {}).expect("NotifyRouteChange2");
        drop(watch);
    }
}
