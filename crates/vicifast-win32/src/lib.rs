//! The few Win32 calls VICIfast needs that no well-kept crate wraps safely: the SID of the user
//! the process runs as (to grant that user, and nobody else, the tray process's named pipe) and
//! the access list of an open object, as SDDL (to prove it); and a hidden window that hears
//! WM_POWERBROADCAST, Windows' word that the computer woke from sleep; and route-change notices
//! (NotifyRouteChange2), which `if-watch` does not give. `interprocess` builds the
//! pipe's security descriptor from SDDL, and `tao` (the tray's event loop) does not pass power
//! messages on; `windows-sys` gives only the raw calls, so they are wrapped here, the
//! workspace's one crate allowed `unsafe`. Empty on other systems.

#[cfg(windows)]
mod power;
#[cfg(windows)]
mod route;
#[cfg(windows)]
mod security;

#[cfg(windows)]
pub use power::{send_resume, PowerWindow, POWER_WINDOW_CLASS};
#[cfg(windows)]
pub use route::RouteWatch;
#[cfg(windows)]
pub use security::{current_user_sid, dacl_sddl};
