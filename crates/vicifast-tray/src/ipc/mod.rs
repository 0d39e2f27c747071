//! The local connection between the tray process and the window process (and a second launch
//! of the tray process): one JSON object per line over a per-user local socket (a Unix socket in the user's
//! runtime directory, a named pipe on Windows; `interprocess` covers both).
//!
//! The window sends [`Request`]s; the tray process answers each with a [`ToWindow::Reply`]
//! carrying the same id, and pushes [`ToWindow::Event`]s (`status`, `timeline`, `trace`,
//! `accounts`, `softphones`, `focus`) to every connection that sent [`Call::Subscribe`].
//! Passwords never travel here: the window process stores a new password in the OS keychain
//! itself and only says that it did.

pub mod server;

use crate::error::CommandError;
use crate::settings::UiSettings;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{ListenerOptions, Name};
use serde::{Deserialize, Serialize};
use tokio::io::{
    AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};

/// The longest line either side accepts; anything longer ends the connection.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

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

/// Where the tray process listens, for this user.
pub fn endpoint() -> std::io::Result<Name<'static>> {
    platform_endpoint()
}

#[cfg(unix)]
fn platform_endpoint() -> std::io::Result<Name<'static>> {
    use interprocess::local_socket::{GenericFilePath, ToFsName};
    socket_path()?.to_fs_name::<GenericFilePath>()
}

/// `$XDG_RUNTIME_DIR/vicifast/tray.sock` (a directory only this user can enter), else the same
/// under the user's cache directory (macOS has no runtime directory).
#[cfg(unix)]
pub fn socket_path() -> std::io::Result<std::path::PathBuf> {
    Ok(private_dir()?.join("tray.sock"))
}

/// The file the running tray process holds locked (see `claim_single_instance`).
pub fn lock_path() -> std::io::Result<std::path::PathBuf> {
    Ok(private_dir()?.join("tray.lock"))
}

#[cfg(unix)]
fn private_dir() -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let base = dirs::runtime_dir()
        .or_else(dirs::cache_dir)
        .ok_or_else(|| std::io::Error::other("no runtime or cache directory for this user"))?;
    let dir = base.join("vicifast");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    // An existing directory keeps its mode: make sure nobody else can reach the socket.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

#[cfg(not(unix))]
fn private_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = dirs::data_local_dir()
        .ok_or_else(|| std::io::Error::other("no local data directory for this user"))?
        .join("VICIfast");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(windows)]
fn platform_endpoint() -> std::io::Result<Name<'static>> {
    use interprocess::local_socket::{GenericNamespaced, ToNsName};
    pipe_name().to_ns_name::<GenericNamespaced>()
}

/// The named pipe's name for this user, `vicifast-tray-<user>`; its path is `\\.\pipe\` and
/// this name.
#[cfg(windows)]
pub fn pipe_name() -> String {
    let user = std::env::var("USERNAME").unwrap_or_else(|_| "user".to_owned());
    format!("vicifast-tray-{user}")
}

/// How the tray process listens at `name`. On Windows a named pipe gets, without an explicit
/// security descriptor, one that lets Everyone and the anonymous logon read it: this one grants
/// the current user alone, and nothing is inherited (`D:P`). Remote clients are refused
/// (`interprocess` sets PIPE_REJECT_REMOTE_CLIENTS unless asked not to), and the first
/// instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, so no other process can have taken
/// the name first. On Unix the socket's directory is private ([`socket_path`]).
pub fn listener_options(name: Name<'_>) -> std::io::Result<ListenerOptions<'_>> {
    let options = ListenerOptions::new().name(name);
    #[cfg(windows)]
    let options = {
        use interprocess::os::windows::local_socket::ListenerOptionsExt;
        use interprocess::os::windows::security_descriptor::SecurityDescriptor;
        let sddl = owner_only_sddl(&vicifast_win32::current_user_sid()?);
        let sddl = widestring::U16CString::from_str(&sddl).map_err(std::io::Error::other)?;
        options.security_descriptor(SecurityDescriptor::deserialize(&sddl)?)
    };
    Ok(options)
}

/// The pipe's security descriptor: a protected access list granting `sid` all access.
#[cfg(windows)]
fn owner_only_sddl(sid: &str) -> String {
    format!("D:P(A;;GA;;;{sid})")
}

/// Connects to the running tray process.
pub async fn connect() -> Result<(LineReader, LineWriter), IpcError> {
    let name = endpoint().map_err(IpcError::NotRunning)?;
    let stream = Stream::connect(name).await.map_err(IpcError::NotRunning)?;
    Ok(split(stream))
}

pub fn split(stream: Stream) -> (LineReader, LineWriter) {
    let (recv, send) = tokio::io::split(stream);
    (
        LineReader {
            inner: BufReader::new(recv),
            line: Vec::new(),
        },
        LineWriter { inner: send },
    )
}

/// Reads one JSON message per line.
pub struct LineReader {
    inner: BufReader<ReadHalf<Stream>>,
    line: Vec<u8>,
}

impl LineReader {
    /// The next message; `Ok(None)` when the other side closed the connection.
    pub async fn next<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, IpcError> {
        self.line.clear();
        let read = (&mut self.inner)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(IpcError::Broken)?;
        if read == 0 {
            return Ok(None);
        }
        if self.line.len() > MAX_LINE {
            return Err(IpcError::BadMessage(format!(
                "longer than {MAX_LINE} bytes"
            )));
        }
        serde_json::from_slice(&self.line)
            .map(Some)
            .map_err(|e| IpcError::BadMessage(e.to_string()))
    }
}

/// Writes one JSON message per line.
pub struct LineWriter {
    inner: WriteHalf<Stream>,
}

impl LineWriter {
    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), IpcError> {
        let mut bytes =
            serde_json::to_vec(message).map_err(|e| IpcError::BadMessage(e.to_string()))?;
        bytes.push(b'\n');
        self.inner
            .write_all(&bytes)
            .await
            .map_err(IpcError::Broken)?;
        self.inner.flush().await.map_err(IpcError::Broken)
    }
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
