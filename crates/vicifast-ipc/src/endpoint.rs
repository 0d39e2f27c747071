//! Where the tray process listens for this user, and who else may connect: nobody.

use crate::framing::{split, LineReader, LineWriter};
use crate::IpcError;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{ListenerOptions, Name};

/// Where the tray process listens, for this user.
pub fn endpoint() -> std::io::Result<Name<'static>> {
    platform_endpoint()
}

/// Connects to the running tray process.
pub async fn connect() -> Result<(LineReader, LineWriter), IpcError> {
    let name = endpoint().map_err(IpcError::NotRunning)?;
    let stream = Stream::connect(name).await.map_err(IpcError::NotRunning)?;
    Ok(split(stream))
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

/// The file the running tray process holds locked: whoever holds it is the one instance.
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
