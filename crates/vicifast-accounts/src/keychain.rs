//! Passwords live only in the OS keychain: Secret Service on Linux and the BSDs, Keychain on
//! macOS, Credential Manager on Windows — the stores keyring 4 picks, through keyring-core.

use std::sync::{Arc, Mutex};
use vicifast_core::Password;

/// The keychain service name of every VICIfast entry; the entry's user is the account name.
/// On Linux the item carries the attributes `service` = `vicifast`, `username` = account name.
pub const SERVICE: &str = "vicifast";

/// Passwords, stored only in the OS keychain. Service name "vicifast", user = account name.
pub trait Keychain: Send + Sync {
    /// The saved password, or `None` when there is none for this account.
    fn get(&self, account: &str) -> Result<Option<Password>, KeychainError>;
    /// Saves (or replaces) the password.
    fn set(&self, account: &str, password: &Password) -> Result<(), KeychainError>;
    /// Forgets the password; forgetting one that is not there is not an error.
    fn delete(&self, account: &str) -> Result<(), KeychainError>;
}

/// Why the keychain could not be used, in words to show the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeychainError {
    /// No keychain service (e.g. no Secret Service, or no session bus).
    #[error(
        "No system keychain is available to hold the password ({0}). On Linux, VICIfast needs a \
         Secret Service such as GNOME Keyring or KWallet running in your desktop session"
    )]
    Unavailable(String),
    /// The keychain is locked, or access was refused.
    #[error(
        "The system keychain is locked or refused access ({0}): unlock it (log in again) and retry"
    )]
    Locked(String),
    #[error("The system keychain failed: {0}")]
    Other(String),
}

/// A keychain held in memory, for tests of code that takes a [`Keychain`]; [`failing`] makes
/// every call fail with one error, as a locked or missing keychain does.
///
/// [`failing`]: MemoryKeychain::failing
#[derive(Debug, Default)]
pub struct MemoryKeychain {
    entries: Mutex<std::collections::HashMap<String, String>>,
    failure: Option<KeychainError>,
}

impl MemoryKeychain {
    pub fn failing(error: KeychainError) -> Self {
        Self {
            failure: Some(error),
            ..Self::default()
        }
    }

    fn entries(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::HashMap<String, String>>, KeychainError>
    {
        if let Some(error) = &self.failure {
            return Err(error.clone());
        }
        // A test that panicked while holding the lock leaves the map as it was: still usable.
        Ok(self.entries.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Keychain for MemoryKeychain {
    fn get(&self, account: &str) -> Result<Option<Password>, KeychainError> {
        Ok(self
            .entries()?
            .get(account)
            .map(|p| Password::new(p.clone())))
    }

    fn set(&self, account: &str, password: &Password) -> Result<(), KeychainError> {
        self.entries()?
            .insert(account.to_owned(), password.expose().to_owned());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), KeychainError> {
        self.entries()?.remove(account);
        Ok(())
    }
}

/// The operating system's keychain.
///
/// Uses keyring-core's default store when one is set (a test's mock store, or one the app
/// chose); otherwise it opens the platform's store on first use. A store that could not be
/// opened (a session bus not up yet at login) is tried again on the next call.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsKeychain;

impl OsKeychain {
    fn entry(account: &str) -> Result<keyring_core::Entry, KeychainError> {
        ensure_store()?;
        keyring_core::Entry::new(SERVICE, account).map_err(map_error)
    }
}

impl Keychain for OsKeychain {
    fn get(&self, account: &str) -> Result<Option<Password>, KeychainError> {
        match Self::entry(account)?.get_password() {
            Ok(secret) => Ok(Some(Password::new(secret))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_error(err)),
        }
    }

    fn set(&self, account: &str, password: &Password) -> Result<(), KeychainError> {
        Self::entry(account)?
            .set_password(password.expose())
            .map_err(map_error)
    }

    fn delete(&self, account: &str) -> Result<(), KeychainError> {
        match Self::entry(account)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(err) => Err(map_error(err)),
        }
    }
}

/// Sets the platform store as keyring-core's default, unless a default is already set.
fn ensure_store() -> Result<(), KeychainError> {
    static OPENING: Mutex<()> = Mutex::new(());
    if keyring_core::get_default_store().is_some() {
        return Ok(());
    }
    let _one_at_a_time = OPENING.lock().unwrap_or_else(|p| p.into_inner());
    if keyring_core::get_default_store().is_some() {
        return Ok(());
    }
    let store = platform_store().map_err(|err| match err {
        keyring_core::Error::NoStorageAccess(detail) => KeychainError::Locked(detail.to_string()),
        other => KeychainError::Unavailable(one_line(&other.to_string())),
    })?;
    tracing::debug!(?store, "opened the system keychain");
    keyring_core::set_default_store(store);
    Ok(())
}

#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(target_os = "windows")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(
    target_os = "macos",
    target_os = "windows",
    all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    )
)))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Err(keyring_core::Error::NotSupportedByStore(
        "this operating system has no keychain VICIfast can use".to_owned(),
    ))
}

fn map_error(err: keyring_core::Error) -> KeychainError {
    use keyring_core::Error as E;
    match err {
        E::NoDefaultStore => KeychainError::Unavailable("no keychain service was found".to_owned()),
        E::NoStorageAccess(detail) => KeychainError::Locked(one_line(&detail.to_string())),
        E::PlatformFailure(detail) => {
            let detail = one_line(&detail.to_string());
            // A bus that vanished or a service that is not there is the same as none at all.
            if detail.contains("ServiceUnknown") || detail.contains("NameHasNoOwner") {
                KeychainError::Unavailable(detail)
            } else {
                KeychainError::Other(detail)
            }
        }
        E::Ambiguous(entries) => KeychainError::Other(format!(
            "{} passwords are saved for this account; remove them with your keychain's tool \
             and save the password again",
            entries.len()
        )),
        E::BadEncoding(_) | E::BadDataFormat(..) => KeychainError::Other(
            "the saved password is not readable text; save the password again".to_owned(),
        ),
        other => KeychainError::Other(one_line(&other.to_string())),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Once;

    /// keyring-core's in-memory store as the default, set once for this test binary before any
    /// entry is made. Tests use distinct account names, since they share it.
    pub(crate) fn use_mock_store() {
        static SET: Once = Once::new();
        SET.call_once(|| {
            let store = keyring_core::mock::Store::new().unwrap();
            keyring_core::set_default_store(store);
        });
    }

    /// A password made up for one test run, so no credential is written into the source.
    pub(crate) fn throwaway_secret() -> String {
        use rand::distributions::{Alphanumeric, DistString};
        Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
    }

    #[test]
    fn set_get_replace_delete() {
        use_mock_store();
        let keychain = OsKeychain;
        assert_eq!(keychain.get("kc-round-trip").unwrap(), None);
        keychain
            .set("kc-round-trip", &Password::new("first"))
            .unwrap();
        keychain
            .set("kc-round-trip", &Password::new("second"))
            .unwrap();
        let got = keychain.get("kc-round-trip").unwrap().unwrap();
        assert_eq!(got.expose(), "second");
        assert_eq!(
            keychain.get("kc-other").unwrap(),
            None,
            "entries are per account"
        );
        keychain.delete("kc-round-trip").unwrap();
        assert_eq!(keychain.get("kc-round-trip").unwrap(), None);
        keychain
            .delete("kc-round-trip")
            .expect("deleting what is not there is fine");
    }

    #[test]
    fn store_errors_become_plain_words() {
        use_mock_store();
        let entry = keyring_core::Entry::new(SERVICE, "kc-locked").unwrap();
        let cred: &keyring_core::mock::Cred = entry.as_any().downcast_ref().unwrap();
        cred.set_error(keyring_core::Error::NoStorageAccess("Locked".into()));
        let err = OsKeychain.get("kc-locked").unwrap_err();
        assert!(matches!(err, KeychainError::Locked(_)), "{err:?}");
        assert!(err.to_string().contains("unlock it"), "{err}");

        assert!(matches!(
            map_error(keyring_core::Error::NoDefaultStore),
            KeychainError::Unavailable(_)
        ));
        let err = map_error(keyring_core::Error::PlatformFailure(
            "org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable".into(),
        ));
        assert!(matches!(err, KeychainError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("GNOME Keyring"), "{err}");
    }

    #[test]
    fn passwords_stay_out_of_errors_and_debug() {
        use_mock_store();
        let secret = throwaway_secret();
        OsKeychain
            .set("kc-debug", &Password::new(secret.clone()))
            .unwrap();
        let got = OsKeychain.get("kc-debug").unwrap();
        assert!(!format!("{got:?}").contains(&secret));
    }
}
