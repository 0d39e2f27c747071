//! The settings file: TOML, written atomically, never holding a password, and never
//! overwriting a file this version could not read.

use crate::settings::{AccountSettings, Settings};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file format this version reads and writes.
pub const FORMAT: u32 = 1;

/// Environment variable naming the settings file, instead of the default location.
pub const CONFIG_ENV: &str = "VICIFAST_CONFIG";

/// Why the settings could not be read or written. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error(
        "No folder for settings was found for this user (is HOME set?): set {CONFIG_ENV} to \
         the path of the settings file to use"
    )]
    NoConfigDir,
    #[error(
        "Cannot use the settings file {}: {source}. Check that the file and its folder belong \
         to you and that the disk is not full",
        path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "The settings file {} is damaged and was left as it is ({detail}). Repair it, or move \
         it away to start with no accounts",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "The settings file {} was written by a newer VICIfast (format {found}; this version \
         reads format {FORMAT}). Update VICIfast, or move the file away to start afresh",
        path.display()
    )]
    NewerFormat { path: PathBuf, found: u64 },
    #[error(
        "Not saving: the settings file {} {reason}, and saving would lose what it holds. \
         Repair it or move it away, then save again",
        path.display()
    )]
    WouldOverwrite { path: PathBuf, reason: String },
}

/// The file as written: `format` first, then the settings.
#[derive(Serialize)]
struct FileOut<'a> {
    format: u32,
    start_at_login: bool,
    accounts: &'a [AccountSettings],
}

/// The settings file, at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigStore {
    path: PathBuf,
}

impl ConfigStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `<OS config dir>/vicifast/config.toml` (`~/.config` on Linux, `~/Library/Application
    /// Support` on macOS, `%APPDATA%` on Windows); `$VICIFAST_CONFIG` overrides the path.
    pub fn default_location() -> Result<Self, ConfigError> {
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Ok(Self::new(path));
        }
        let dir = dirs::config_dir().ok_or(ConfigError::NoConfigDir)?;
        Ok(Self::new(dir.join("vicifast").join("config.toml")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Missing file => `Ok(Settings::default())`. Corrupt TOML => [`ConfigError::Corrupt`] (the
    /// file is left untouched). A format above [`FORMAT`] => [`ConfigError::NewerFormat`].
    pub fn load(&self) -> Result<Settings, ConfigError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => return Err(self.io(source)),
        };
        let text = String::from_utf8(bytes).map_err(|_| self.corrupt("it is not text"))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| self.corrupt(toml_detail(&e)))?;
        match table.get("format") {
            None => {}
            Some(toml::Value::Integer(n)) if *n >= 1 => {
                let found = u64::try_from(*n).unwrap_or(u64::MAX);
                if found > u64::from(FORMAT) {
                    return Err(ConfigError::NewerFormat {
                        path: self.path.clone(),
                        found,
                    });
                }
            }
            Some(other) => {
                return Err(self.corrupt(format!("`format = {other}` is not a format number")))
            }
        }
        table
            .try_into::<Settings>()
            .map_err(|e| self.corrupt(toml_detail(&e)))
    }

    /// Atomic: writes a temp file in the same folder, syncs it to disk, then renames it over
    /// the file, so a crash leaves the old file or the new one, never half of one. Creates the
    /// folder. The file is readable by its owner only (0600 on Unix).
    ///
    /// Refuses ([`ConfigError::WouldOverwrite`]) when the existing file is corrupt or of a
    /// newer format, so nothing is silently lost.
    pub fn save(&self, settings: &Settings) -> Result<(), ConfigError> {
        match self.load() {
            Ok(_) => {}
            Err(ConfigError::Corrupt { detail, .. }) => {
                return Err(ConfigError::WouldOverwrite {
                    path: self.path.clone(),
                    reason: format!("could not be read ({detail})"),
                })
            }
            Err(ConfigError::NewerFormat { found, .. }) => {
                return Err(ConfigError::WouldOverwrite {
                    path: self.path.clone(),
                    reason: format!("was written by a newer VICIfast (format {found})"),
                })
            }
            Err(other) => return Err(other),
        }
        let text = toml::to_string(&FileOut {
            format: FORMAT,
            start_at_login: settings.start_at_login,
            accounts: &settings.accounts,
        })
        .map_err(|e| self.io(std::io::Error::other(e)))?;

        // Write through a symlink (dotfile managers link the file in), not over it.
        let target = match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::canonicalize(&self.path).map_err(|e| self.io(e))?
            }
            _ => self.path.clone(),
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_private_dir(&dir).map_err(|source| ConfigError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut temp = tempfile::Builder::new()
            .prefix(".config.toml.")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|source| ConfigError::Io {
                path: dir.clone(),
                source,
            })?;
        restrict_to_owner(temp.as_file()).map_err(|e| self.io(e))?;
        temp.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        temp.as_file().sync_all().map_err(|e| self.io(e))?;
        temp.persist(&target).map_err(|e| self.io(e.error))?;
        sync_dir(&dir);
        tracing::debug!(path = %self.path.display(), accounts = settings.accounts.len(), "settings saved");
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> ConfigError {
        ConfigError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: impl Into<String>) -> ConfigError {
        ConfigError::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }
}

/// toml's message on one line (it quotes the offending line beneath; the file never holds a
/// secret, but one line reads better in a dialog).
fn toml_detail(err: &toml::de::Error) -> String {
    let message = err.message().trim().to_owned();
    match err.span() {
        Some(span) => format!("{message}, at byte {}", span.start),
        None => message,
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn restrict_to_owner(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_file: &std::fs::File) -> std::io::Result<()> {
    // The per-user config folder is already private to the user on Windows.
    Ok(())
}

/// Makes the rename itself durable. Best effort: some file systems refuse to sync a folder.
#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_core::Transport;

    fn sample() -> Settings {
        let mut office = AccountSettings::new("Office", "sips:pbx.example.com", "101");
        office.transport = Transport::Tls;
        office.auth_user = Some("agent101".into());
        office.ca_file = Some(PathBuf::from("/etc/ssl/office-ca.pem"));
        let mut home = AccountSettings::new("Home", "192.0.2.10", "202");
        home.port = Some(5080);
        home.expires = 120;
        Settings {
            start_at_login: true,
            accounts: vec![office, home],
        }
    }

    fn store_in(dir: &tempfile::TempDir) -> ConfigStore {
        ConfigStore::new(dir.path().join("sub").join("config.toml"))
    }

    #[test]
    fn missing_file_is_empty_settings() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(store_in(&dir).load().unwrap(), Settings::default());
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), sample());

        let mut changed = sample();
        changed.accounts.remove(0);
        store.save(&changed).unwrap();
        assert_eq!(store.load().unwrap(), changed);

        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.toml")]);
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.starts_with("format = 1\n"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&sample()).unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(dir.path().join("sub"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o077, 0, "folder open to others: {dir_mode:o}");
    }

    #[test]
    fn reads_what_a_person_writes_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        std::fs::write(
            store.path(),
            "format = 1\n[[accounts]]\nname = \"Desk\"\nserver = \"pbx\"\nextension = \"7\"\n\
             transport = \"tcp\"\nfuture_field = 3\n",
        )
        .unwrap();
        let settings = store.load().unwrap();
        assert!(!settings.start_at_login);
        let desk = &settings.accounts[0];
        assert_eq!(desk.transport, Transport::Tcp);
        assert_eq!(desk.expires, crate::DEFAULT_EXPIRES);
        assert_eq!(desk.port, None);
    }

    #[test]
    fn corrupt_file_is_reported_kept_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        let garbage = "format = 1\n[[accounts]\nname = \"Office\n";
        std::fs::write(store.path(), garbage).unwrap();

        let err = store.load().unwrap_err();
        assert!(matches!(err, ConfigError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("damaged") && message.contains("config.toml"),
            "{message}"
        );

        let err = store.save(&sample()).unwrap_err();
        assert!(matches!(err, ConfigError::WouldOverwrite { .. }), "{err:?}");
        assert!(err.to_string().contains("Not saving"), "{err}");
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), garbage);
    }

    #[test]
    fn wrong_shapes_are_corrupt_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        for text in [
            "format = \"one\"\n",
            "accounts = 3\n",
            "[[accounts]]\nname = \"x\"\n",
            "[[accounts]]\nname = \"x\"\nserver = \"p\"\nextension = \"1\"\ntransport = \"sctp\"\n",
        ] {
            std::fs::write(store.path(), text).unwrap();
            let err = store.load().unwrap_err();
            assert!(
                matches!(err, ConfigError::Corrupt { .. }),
                "{text}: {err:?}"
            );
        }
        std::fs::write(store.path(), [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(store.load(), Err(ConfigError::Corrupt { .. })));
    }

    #[test]
    fn newer_format_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        std::fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        let newer = "format = 2\nwhatever = \"new\"\n";
        std::fs::write(store.path(), newer).unwrap();

        let err = store.load().unwrap_err();
        assert!(
            matches!(err, ConfigError::NewerFormat { found: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("newer VICIfast"), "{err}");
        assert!(matches!(
            store.save(&sample()),
            Err(ConfigError::WouldOverwrite { .. })
        ));
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), newer);
    }

    #[cfg(unix)]
    #[test]
    fn saving_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles").join("vicifast.toml");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "format = 1\n").unwrap();
        let link = dir.path().join("config.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let store = ConfigStore::new(&link);
        store.save(&sample()).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(ConfigStore::new(&real).load().unwrap(), sample());
    }

    #[test]
    fn env_overrides_the_default_location() {
        // The only test touching the variable (tests in this binary share the environment).
        let outer = std::env::var_os(CONFIG_ENV);
        std::env::remove_var(CONFIG_ENV);
        let default = ConfigStore::default_location();
        std::env::set_var(CONFIG_ENV, "/tmp/elsewhere/vicifast.toml");
        let chosen = ConfigStore::default_location().unwrap();
        match outer {
            Some(value) => std::env::set_var(CONFIG_ENV, value),
            None => std::env::remove_var(CONFIG_ENV),
        }
        assert_eq!(chosen.path(), Path::new("/tmp/elsewhere/vicifast.toml"));
        if let Ok(store) = default {
            assert!(store.path().ends_with("vicifast/config.toml"), "{store:?}");
        }
    }
}
