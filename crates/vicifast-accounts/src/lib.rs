//! Accounts as the user enters them, the settings file that holds them, and the OS keychain
//! that holds their passwords. The desktop app and `vicifast-cli` both use this crate, so an
//! account saved by one is used by the other.
//!
//! - [`Settings`] / [`AccountSettings`]: what the user typed; [`AccountSettings::to_config`]
//!   checks it and builds the engine's [`vicifast_core::AccountConfig`], or names the field that
//!   is wrong in a [`FieldError`].
//! - [`ConfigStore`]: the TOML file (`<config dir>/vicifast/config.toml`, or `$VICIFAST_CONFIG`),
//!   written atomically, never holding a password, and never overwriting a file it could not read.
//! - [`Keychain`] / [`OsKeychain`]: passwords, under service `vicifast` and the account's name.

mod keychain;
mod settings;
mod store;

pub use keychain::{Keychain, KeychainError, MemoryKeychain, OsKeychain, SERVICE};
pub use settings::{AccountSettings, FieldError, Settings, SoftphoneSettings, DEFAULT_EXPIRES};
pub use store::{ConfigError, ConfigStore, CONFIG_ENV, FORMAT};

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_core::Password;

    /// What the app and `account set` do: settings to the file, password to the keychain.
    /// The password must end up in the keychain and nowhere in the file.
    #[test]
    fn saving_an_account_keeps_its_password_out_of_the_file() {
        keychain::tests::use_mock_store();
        let secret = keychain::tests::throwaway_secret();
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("config.toml"));
        let account = AccountSettings::new("lib-no-password", "pbx.example.com", "101");
        let mut settings = store.load().unwrap();
        settings.upsert(account.clone());
        store.save(&settings).unwrap();
        OsKeychain
            .set(&account.name, &Password::new(secret.clone()))
            .unwrap();

        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("lib-no-password"), "{text}");
        assert!(
            !text.contains(&secret),
            "password in the settings file:\n{text}"
        );
        assert!(!format!("{settings:?}").contains(&secret));
        assert_eq!(
            OsKeychain.get(&account.name).unwrap().unwrap().expose(),
            secret
        );
    }
}
