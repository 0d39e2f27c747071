//! The protocol between VICIfast's two desktop processes: the tray process (`vicifast-tray`),
//! which runs the registration all day, and the window (`vicifast`), which lives only while it
//! is open. A second launch of the tray process speaks it too, to hand over to the first.
//!
//! One JSON object per line ([`framing`]) over a per-user local socket ([`endpoint`]: a Unix
//! socket in a private directory, a named pipe only the current user can open on Windows;
//! `interprocess` covers both). The window sends [`Request`]s; the tray process answers each
//! with a [`ToWindow::Reply`] carrying the same id, and pushes [`ToWindow::Event`]s (`status`,
//! `timeline`, `trace`, `accounts`, `softphones`, `focus`) to every connection that sent
//! [`Call::Subscribe`]. Passwords never travel here: the window process stores a new password in
//! the OS keychain itself and only says that it did.
//!
//! This crate holds what both sides must agree on and nothing else: the window links it instead
//! of the tray process's engine, tray icon and notification code.

pub mod endpoint;
pub mod error;
pub mod framing;
pub mod process;
pub mod settings;

pub use endpoint::{connect, endpoint, listener_options, lock_path};
pub use error::CommandError;
pub use framing::{split, LineReader, LineWriter, MAX_LINE};
pub use settings::{UiSettings, ACCOUNT};

use serde::{Deserialize, Serialize};

/// What the window (or a second launch) asks of the tray process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// Receive events from now on (the window process does this first).
    Subscribe,
    GetState,
    /// Save the form; `password_saved` says the window put a new password in the keychain.
    SaveSettings {
        settings: UiSettings,
        password_saved: bool,
    },
    Register,
    Unregister,
    /// "Use this computer": another device took the extension; register here now.
    TakeOver,
    ClearTrace,
    /// Show the window: create it, or focus the one that is open.
    OpenWindow,
    /// Unregister every account, answer once the bindings are gone, then end the process (what
    /// the tray's Quit does; scripts and installers stop the tray process this way).
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub call: Call,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToWindow {
    Reply {
        id: u64,
        result: Result<serde_json::Value, CommandError>,
    },
    Event {
        event: String,
        payload: serde_json::Value,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("VICIfast is not running in the tray ({0})")]
    NotRunning(std::io::Error),
    #[error("the connection to VICIfast in the tray broke ({0})")]
    Broken(std::io::Error),
    #[error("the connection to VICIfast in the tray closed")]
    Closed,
    #[error("a message from the other VICIfast process could not be read: {0}")]
    BadMessage(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_have_a_stable_wire_form() {
        let r = Request {
            id: 7,
            call: Call::Register,
        };
        assert_eq!(
            serde_json::to_value(&r).ok(),
            Some(serde_json::json!({"id": 7, "call": "register"}))
        );
        let reply = ToWindow::Reply {
            id: 7,
            result: Err(CommandError::new("credentials", "locked")),
        };
        let text = serde_json::to_string(&reply).unwrap_or_default();
        let back: Result<ToWindow, _> = serde_json::from_str(&text);
        assert_eq!(back.ok(), Some(reply));
    }

    #[test]
    fn unknown_calls_are_refused() {
        assert!(serde_json::from_str::<Request>(r#"{"id":1,"call":"format_disk"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"call":"register"}"#).is_err());
    }

    #[test]
    fn quit_has_its_wire_name() {
        let quit = serde_json::from_str::<Request>(r#"{"id":3,"call":"quit"}"#);
        assert_eq!(quit.ok().map(|r| r.call), Some(Call::Quit));
    }
}
