//! Saved accounts: `account set|list|remove`, and `--account NAME` for `register`, `unregister`
//! and `bindings`. The settings file and keychain entries are the desktop app's own
//! (`vicifast-accounts`), so an account saved here shows up there and the other way round.

use crate::password::PasswordArgs;
use crate::{output, UsageError};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vicifast_accounts::{
    AccountSettings, ConfigError, ConfigStore, FieldError, Keychain, KeychainError, OsKeychain,
    SoftphoneSettings,
};
use vicifast_engine::{
    AccountConfig, EdgeConfig, Password, Problem, ProblemCode, ServerAddress, Transport,
};

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Save an account: settings to the settings file, password to the system keychain.
    Set(Box<SetArgs>),
    /// List the saved accounts (passwords are never shown).
    List {
        /// One JSON object: {"path": …, "accounts": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Forget an account and its saved password.
    Remove {
        /// The account's name.
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// A name for the account (used with `register --account NAME`).
    name: String,
    /// Registrar: host, host:port, [v6]:port, sip:host[:port][;transport=tcp] or sips:host[:port].
    #[arg(long)]
    registrar: String,
    /// Extension (user part of the address of record).
    #[arg(long)]
    user: String,
    /// Authentication user name, when it differs from the extension.
    #[arg(long)]
    auth_user: Option<String>,
    /// SIP domain of the extension (default: the registrar's host).
    #[arg(long)]
    domain: Option<String>,
    /// Transport (default: from the registrar URI, else udp).
    #[arg(long, value_parser = crate::parse_transport)]
    transport: Option<Transport>,
    /// Requested registration lifetime in seconds (1 to 86400).
    #[arg(long, default_value_t = vicifast_accounts::DEFAULT_EXPIRES, value_parser = crate::parse_expires, allow_hyphen_values = true)]
    expires: u32,
    /// Send requests through this proxy (sip:host[:port][;transport=...]).
    #[arg(long)]
    outbound_proxy: Option<String>,
    /// Extra CA certificates (PEM) to trust for TLS, besides the system's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Take the extension's calls on the softphone that uses this loopback address as its
    /// outbound proxy (such as 127.0.0.1:5070). Without softphone flags, a saved softphone
    /// setting is kept.
    #[arg(long, value_name = "ADDR:PORT")]
    softphone_listen: Option<String>,
    /// Reach a softphone that does not register at this address (sip:127.0.0.1:PORT).
    #[arg(long, value_name = "URI")]
    softphone_contact: Option<String>,
    #[command(flatten)]
    password: PasswordArgs,
}

/// What stops a saved account from being used or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    #[error("no account named `{name}` is saved in {path}{}", known_names(.known))]
    Unknown {
        name: String,
        path: PathBuf,
        known: Vec<String>,
    },
    #[error(
        "no password is saved for the account `{0}`: save one with \
         `vicifast-cli account set {0} … --password-stdin`"
    )]
    NoPassword(String),
    #[error("the saved account `{name}` cannot be used: {error} Change it with `vicifast-cli account set`")]
    Invalid { name: String, error: FieldError },
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        " (no accounts are saved; add one with `vicifast-cli account set`)".to_owned()
    } else {
        format!(" (saved: {})", known.join(", "))
    }
}

impl AccountError {
    /// Prints the error (as a `credentials` problem line with `--json` when the password is the
    /// trouble) and returns exit code 1.
    pub fn report(&self, json: bool) -> ExitCode {
        match self {
            Self::Keychain(_) | Self::NoPassword(_) => output::query_failed(
                &Problem::new(ProblemCode::Credentials, self.to_string()),
                json,
            ),
            _ => {
                eprintln!("vicifast-cli: {self}");
                ExitCode::from(1)
            }
        }
    }
}

/// A saved account, ready for the engine.
pub struct Resolved {
    pub config: AccountConfig,
    pub password: Password,
    pub ca_file: Option<PathBuf>,
    /// The account's softphone, when its settings have a `[softphone]` table.
    pub softphone: Option<EdgeConfig>,
}

/// Settings from the settings file and the password from the keychain, for `--account NAME`.
pub fn resolve(name: &str) -> Result<Resolved, AccountError> {
    resolve_with(&ConfigStore::default_location()?, &OsKeychain, name)
}

fn resolve_with(
    store: &ConfigStore,
    keychain: &dyn Keychain,
    name: &str,
) -> Result<Resolved, AccountError> {
    let settings = store.load()?;
    let Some(account) = settings.account(name) else {
        return Err(AccountError::Unknown {
            name: name.to_owned(),
            path: store.path().to_path_buf(),
            known: settings.accounts.iter().map(|a| a.name.clone()).collect(),
        });
    };
    let config = account.to_config().map_err(|error| AccountError::Invalid {
        name: name.to_owned(),
        error,
    })?;
    let softphone = account
        .softphone_config()
        .map_err(|error| AccountError::Invalid {
            name: name.to_owned(),
            error,
        })?;
    let password = keychain
        .get(&account.name)?
        .ok_or_else(|| AccountError::NoPassword(account.name.clone()))?;
    Ok(Resolved {
        config,
        password,
        ca_file: account.ca_file.clone(),
        softphone,
    })
}

pub fn run(command: AccountCommand) -> ExitCode {
    let store = match ConfigStore::default_location() {
        Ok(store) => store,
        Err(err) => return AccountError::from(err).report(false),
    };
    match command {
        AccountCommand::Set(args) => set(&store, &OsKeychain, *args),
        AccountCommand::List { json } => list(&store, json),
        AccountCommand::Remove { name } => remove(&store, &OsKeychain, &name),
    }
}

fn set(store: &ConfigStore, keychain: &dyn Keychain, args: SetArgs) -> ExitCode {
    let name = args.name.trim().to_owned();
    // Like `register`: without --transport, the registrar URI's, else UDP.
    let transport = args.transport.unwrap_or_else(|| {
        ServerAddress::parse(&args.registrar)
            .ok()
            .and_then(|a| a.transport)
            .unwrap_or_default()
    });
    let account = AccountSettings {
        name: name.clone(),
        server: args.registrar.clone(),
        extension: args.user.clone(),
        auth_user: args.auth_user.clone(),
        domain: args.domain.clone(),
        transport,
        port: None,
        outbound_proxy: args.outbound_proxy.clone(),
        expires: args.expires,
        ca_file: args.ca_file.clone(),
        softphone: None,
    };
    if let Err(err) = account.to_config() {
        return field_usage_error(&err);
    }
    if let Some(path) = &args.ca_file {
        if let Err(err) = vicifast_engine::check_ca_file(path) {
            return crate::usage_error(&UsageError::CaFile(err));
        }
    }
    let mut settings = match store.load() {
        Ok(settings) => settings,
        Err(err) => return AccountError::from(err).report(false),
    };
    let existed = settings.account(&name).is_some();
    let mut account = account;
    account.softphone = if args.softphone_listen.is_some() || args.softphone_contact.is_some() {
        Some(SoftphoneSettings {
            listen: args
                .softphone_listen
                .clone()
                .unwrap_or_else(|| SoftphoneSettings::default().listen),
            contact: args.softphone_contact.clone(),
        })
    } else {
        settings.account(&name).and_then(|a| a.softphone.clone())
    };
    if let Err(err) = account.to_config() {
        return field_usage_error(&err);
    }
    let password = match args.password.read() {
        Ok(Some(password)) => Some(password),
        // Changing the settings of a saved account keeps its password.
        Ok(None) if existed => None,
        Ok(None) => return crate::usage_error(&UsageError::NoPassword),
        Err(err) => return crate::usage_error(&err),
    };
    if let Some(password) = &password {
        if let Err(err) = keychain.set(&name, password) {
            return AccountError::from(err).report(false);
        }
    }
    settings.upsert(account);
    if let Err(err) = store.save(&settings) {
        if !existed && password.is_some() {
            // Leave no orphan password behind for an account that was not saved.
            let _ = keychain.delete(&name);
        }
        return AccountError::from(err).report(false);
    }
    eprintln!(
        "Saved account `{name}` in {}{}",
        store.path().display(),
        if password.is_some() {
            ", password in the system keychain"
        } else {
            " (password unchanged)"
        }
    );
    ExitCode::SUCCESS
}

fn list(store: &ConfigStore, json: bool) -> ExitCode {
    let settings = match store.load() {
        Ok(settings) => settings,
        Err(err) => return AccountError::from(err).report(false),
    };
    if json {
        output::json_line(&serde_json::json!({
            "path": store.path(),
            "accounts": settings.accounts,
        }));
        return ExitCode::SUCCESS;
    }
    if settings.accounts.is_empty() {
        println!("No accounts saved in {}", store.path().display());
    }
    for a in &settings.accounts {
        let mut line = format!(
            "{}\t{}@{}\t{}\texpires {}s",
            a.name, a.extension, a.server, a.transport, a.expires
        );
        if let Some(user) = &a.auth_user {
            line.push_str(&format!("\tauth user {user}"));
        }
        if let Some(proxy) = &a.outbound_proxy {
            line.push_str(&format!("\tvia {proxy}"));
        }
        if let Some(softphone) = &a.softphone {
            line.push_str(&format!("\tsoftphone at {}", softphone.listen));
            if let Some(contact) = &softphone.contact {
                line.push_str(&format!(" reaching {contact}"));
            }
        }
        println!("{line}");
    }
    ExitCode::SUCCESS
}

fn remove(store: &ConfigStore, keychain: &dyn Keychain, name: &str) -> ExitCode {
    let mut settings = match store.load() {
        Ok(settings) => settings,
        Err(err) => return AccountError::from(err).report(false),
    };
    if settings.remove(name).is_none() {
        return AccountError::Unknown {
            name: name.to_owned(),
            path: store.path().to_path_buf(),
            known: settings.accounts.iter().map(|a| a.name.clone()).collect(),
        }
        .report(false);
    }
    if let Err(err) = store.save(&settings) {
        return AccountError::from(err).report(false);
    }
    // The settings go first: a keychain that cannot be reached must not keep an account alive.
    if let Err(err) = keychain.delete(name) {
        eprintln!(
            "vicifast-cli: removed the account `{name}`, but not its password: {err}. Remove the \
             entry (service vicifast, user {name}) with your keychain's tool"
        );
        return ExitCode::from(1);
    }
    eprintln!("Removed account `{name}` and its password");
    ExitCode::SUCCESS
}

/// The password from `--password-stdin` or `--password-env VAR`, or `None` when neither is given.
/// The `account set` flag that carries a settings field.
pub fn flag_of(field: &str) -> &'static str {
    match field {
        "name" => "<NAME>",
        "extension" => "--user",
        "auth_user" => "--auth-user",
        "domain" => "--domain",
        "transport" => "--transport",
        "outbound_proxy" => "--outbound-proxy",
        "expires" => "--expires",
        "instance_id" => "--instance-id",
        _ => "--registrar",
    }
}

fn field_usage_error(err: &FieldError) -> ExitCode {
    eprintln!(
        "error: {}: {}\n\nFor more information, try '--help'.",
        flag_of(&err.field),
        err.message
    );
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_accounts::MemoryKeychain;

    fn saved(dir: &tempfile::TempDir) -> ConfigStore {
        let store = ConfigStore::new(dir.path().join("config.toml"));
        let mut settings = store.load().unwrap();
        let mut office = AccountSettings::new("Office", "sip:pbx.example.com:5070", "101");
        office.transport = Transport::Tcp;
        settings.upsert(office);
        store.save(&settings).unwrap();
        store
    }

    #[test]
    fn resolves_settings_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = saved(&dir);
        let keychain = MemoryKeychain::default();
        keychain.set("Office", &Password::new("pw-1")).unwrap();
        let resolved = resolve_with(&store, &keychain, "Office").unwrap();
        assert_eq!(resolved.password.expose(), "pw-1");
        assert_eq!(resolved.config.user, "101");
        assert_eq!(resolved.config.registrar.port, Some(5070));
        assert_eq!(resolved.config.effective_transport(), Transport::Tcp);
    }

    #[test]
    fn unknown_account_lists_the_saved_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = saved(&dir);
        let err = resolve_with(&store, &MemoryKeychain::default(), "Home")
            .err()
            .unwrap();
        assert!(matches!(err, AccountError::Unknown { .. }), "{err:?}");
        assert!(err.to_string().contains("saved: Office"), "{err}");
    }

    #[test]
    fn missing_password_and_locked_keychain_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = saved(&dir);
        let err = resolve_with(&store, &MemoryKeychain::default(), "Office")
            .err()
            .unwrap();
        assert!(matches!(err, AccountError::NoPassword(_)), "{err:?}");
        assert!(err.to_string().contains("account set Office"), "{err}");

        let locked = MemoryKeychain::failing(KeychainError::Locked("Locked".into()));
        let err = resolve_with(&store, &locked, "Office").err().unwrap();
        assert!(err.to_string().contains("keychain is locked"), "{err}");
    }

    fn set_args(name: &str, extra: &[&str]) -> SetArgs {
        let mut argv = vec!["vicifast-cli", "account", "set", name];
        argv.extend_from_slice(extra);
        match <crate::Cli as clap::Parser>::try_parse_from(argv)
            .unwrap()
            .command
        {
            crate::Command::Account {
                command: AccountCommand::Set(args),
            } => *args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn set_saves_settings_and_password_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("config.toml"));
        let keychain = MemoryKeychain::default();
        std::env::set_var("VICIFAST_TEST_PW_SET", "pw-set-1");
        let args = set_args(
            " Desk ",
            &[
                "--registrar",
                "sips:pbx.example.com",
                "--user",
                "101",
                "--password-env",
                "VICIFAST_TEST_PW_SET",
            ],
        );
        assert_eq!(set(&store, &keychain, args), ExitCode::SUCCESS);
        let desk = store.load().unwrap().account("Desk").cloned().unwrap();
        assert_eq!(
            desk.transport,
            Transport::Tls,
            "transport from the sips: URI"
        );
        assert_eq!(
            keychain.get("Desk").unwrap().map(|p| p.expose().to_owned()),
            Some("pw-set-1".to_owned())
        );
        assert!(!std::fs::read_to_string(store.path())
            .unwrap()
            .contains("pw-set-1"));

        // Changing a saved account without a password flag keeps the saved password.
        let args = set_args(
            "Desk",
            &["--registrar", "sips:pbx.example.com", "--user", "102"],
        );
        assert_eq!(set(&store, &keychain, args), ExitCode::SUCCESS);
        assert_eq!(store.load().unwrap().accounts[0].extension, "102");
        assert!(keychain.get("Desk").unwrap().is_some());
    }

    #[test]
    fn set_refuses_bad_fields_and_a_new_account_without_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("config.toml"));
        let keychain = MemoryKeychain::default();
        std::env::set_var("VICIFAST_TEST_PW_BAD", "pw-bad");
        let bad = set_args(
            "Desk",
            &[
                "--registrar",
                "pb x",
                "--user",
                "101",
                "--password-env",
                "VICIFAST_TEST_PW_BAD",
            ],
        );
        assert_eq!(set(&store, &keychain, bad), ExitCode::from(2));
        let no_password = set_args("Desk", &["--registrar", "pbx", "--user", "101"]);
        assert_eq!(set(&store, &keychain, no_password), ExitCode::from(2));
        assert!(!store.path().exists(), "nothing saved");
        assert!(keychain.get("Desk").unwrap().is_none());
    }

    #[test]
    fn set_with_a_locked_keychain_saves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("config.toml"));
        let locked = MemoryKeychain::failing(KeychainError::Locked("Locked".into()));
        std::env::set_var("VICIFAST_TEST_PW_LOCKED", "pw-locked");
        let args = set_args(
            "Desk",
            &[
                "--registrar",
                "pbx",
                "--user",
                "1",
                "--password-env",
                "VICIFAST_TEST_PW_LOCKED",
            ],
        );
        assert_eq!(set(&store, &locked, args), ExitCode::from(1));
        assert!(!store.path().exists());
    }

    #[test]
    fn remove_forgets_settings_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = saved(&dir);
        let keychain = MemoryKeychain::default();
        keychain.set("Office", &Password::new("pw")).unwrap();
        assert_eq!(remove(&store, &keychain, "Office"), ExitCode::SUCCESS);
        assert!(store.load().unwrap().accounts.is_empty());
        assert!(keychain.get("Office").unwrap().is_none());
        assert_eq!(remove(&store, &keychain, "Office"), ExitCode::from(1));
    }

    #[test]
    fn account_flag_replaces_registrar_and_user() {
        use clap::Parser;
        let parse = |args: &[&str]| crate::Cli::try_parse_from(args).map(|_| ());
        assert!(parse(&["vicifast-cli", "register", "--account", "Desk"]).is_ok());
        assert!(parse(&["vicifast-cli", "bindings", "--account", "Desk", "--json"]).is_ok());
        assert!(parse(&["vicifast-cli", "register"]).is_err());
        for extra in [
            &["--registrar", "pbx"][..],
            &["--user", "1"],
            &["--password-env", "PW"],
            &["--expires", "60"],
        ] {
            let mut argv = vec!["vicifast-cli", "unregister", "--account", "Desk"];
            argv.extend_from_slice(extra);
            let err = parse(&argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{extra:?}");
        }
    }

    #[test]
    fn every_field_maps_to_its_flag() {
        for (field, flag) in [
            ("server", "--registrar"),
            ("port", "--registrar"),
            ("extension", "--user"),
            ("auth_user", "--auth-user"),
            ("outbound_proxy", "--outbound-proxy"),
        ] {
            assert_eq!(flag_of(field), flag);
        }
    }
}
