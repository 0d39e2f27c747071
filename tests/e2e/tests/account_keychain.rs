//! A saved account works end to end with a real Secret Service (GNOME Keyring):
//! `account set` puts the settings in the file and the password only in the keychain (where
//! `secret-tool` finds it under `service vicifast` / `username <account>`), `register --account`
//! reaches `registered` at Kamailio with that password, and a locked or missing keychain is a
//! clear `credentials` error, exit 1, with nothing sent to the registrar. `account remove`
//! forgets the password too.
//!
//! Each test re-runs itself inside `dbus-run-session` with an unlocked GNOME Keyring of its own,
//! and throwaway HOME, XDG_DATA_HOME, XDG_RUNTIME_DIR and VICIFAST_CONFIG — always, even on a
//! desktop whose session bus is up, so nothing lands in the real keychain or home.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use vicifast_e2e::{
    account_args, random_password, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT,
};

/// Set in the re-run: the test body runs only inside the private session.
const INSIDE: &str = "VICIFAST_E2E_PRIVATE_KEYRING";
/// The private keyring's own unlock password, handed to the re-run's shell.
const KEYRING_PW: &str = "VICIFAST_E2E_KEYRING_PW";
const TOOLS: [&str; 4] = [
    "dbus-run-session",
    "dbus-send",
    "gnome-keyring-daemon",
    "secret-tool",
];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// True inside the private session (run the test body). Outside, runs `test` again inside one,
/// asserts that it passed, and returns false; or skips with a message if the tools are missing.
fn in_private_keychain(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let missing: Vec<_> = TOOLS.iter().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() {
        vicifast_e2e::skip::skipped(
            test,
            &format!(
                "{missing:?} not installed (apt-get install dbus-daemon dbus-bin gnome-keyring \
                 libsecret-tools, or `make test`)"
            ),
        );
        return false;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let path = root.path().join(name);
        std::fs::create_dir(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        path
    };
    let (home, data, runtime, config) = (dir("home"), dir("data"), dir("run"), dir("config"));
    let output = Command::new("dbus-run-session")
        .args(["--", "sh", "-c"])
        .arg(concat!(
            "printf %s \"$VICIFAST_E2E_KEYRING_PW\" | ",
            "gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 97; ",
            "exec \"$0\" \"$@\""
        ))
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("HOME", &home)
        .env("XDG_DATA_HOME", &data)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_CONFIG_HOME", &config)
        .env("VICIFAST_CONFIG", config.join("config.toml"))
        .env(KEYRING_PW, random_password())
        .env(INSIDE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "{test} in a private D-Bus session: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(
        stdout.contains("1 passed"),
        "the test did not run: {report}"
    );
    false
}

/// `vicifast-cli <args>` with `env_args` (`VAR=value` or `-u VAR`) applied first. The runner
/// appends `--password-env VAR` to every command line; the shell drops it, so `--account` gets
/// its password from the keychain alone (the variable holds a wrong one, to be sure).
fn spawn_cli(env_args: &[&str], args: &[&str]) -> Cli {
    let mut script = String::from("exec env");
    for e in env_args {
        script.push(' ');
        script.push_str(e);
    }
    script.push_str(" \"$0\"");
    for i in 1..=args.len() {
        script.push_str(&format!(" \"${i}\""));
    }
    let mut sh_args = vec!["-c".to_owned(), script, path_str(&Cli::binary().unwrap())];
    sh_args.extend(args.iter().map(|a| (*a).to_owned()));
    Cli::spawn_program(PathBuf::from("/bin/sh"), &sh_args, "not-the-password").unwrap()
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn config_path() -> PathBuf {
    PathBuf::from(std::env::var_os("VICIFAST_CONFIG").unwrap())
}

/// `secret-tool lookup service vicifast username <account>`: the stored secret, if any.
fn keyring_lookup(account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "vicifast", "username", account])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn account_set(name: &str, flags: &[String], password: &str) {
    let mut args = vec!["account".to_owned(), "set".to_owned(), name.to_owned()];
    args.extend(flags.iter().cloned());
    let done = Cli::run(&args, password, WAIT).unwrap();
    assert!(done.status.success(), "account set: {done:?}");
}

#[test]
fn saved_account_registers_with_the_keychain_password() {
    if !in_private_keychain("saved_account_registers_with_the_keychain_password") {
        return;
    }
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let name = format!("desk {ext}");
    account_set(
        &name,
        &account_args(&registrar, Transport::Udp, &ext),
        &password,
    );

    let file = std::fs::read_to_string(config_path()).unwrap();
    assert!(file.contains(&format!("extension = \"{ext}\"")), "{file}");
    assert!(
        !file.contains(&password),
        "password in the settings file:\n{file}"
    );
    assert_eq!(keyring_lookup(&name).as_deref(), Some(password.as_str()));

    let mut cli = spawn_cli(&[], &["register", "--account", &name, "--json"]);
    let status = cli.wait_for_state("registered", WAIT).unwrap();
    registrar.sole_binding(&ext, status["contact"].as_str().expect("contact"));
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
    assert!(
        !cli.stderr().contains(&password) && !cli.stdout_lines().concat().contains(&password),
        "the password was printed"
    );

    // Locked keychain: a clear credentials problem, exit 1, and no REGISTER sent.
    let sent = registrar.register_count(&ext);
    let lock = Command::new("dbus-send")
        .args([
            "--session",
            "--dest=org.freedesktop.secrets",
            "--print-reply",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .output()
        .unwrap();
    assert!(lock.status.success(), "locking the keyring: {lock:?}");
    let mut locked = spawn_cli(&[], &["register", "--account", &name, "--json"]);
    let problem = locked
        .wait_for(|s| s["problem"]["code"] == "credentials", WAIT)
        .unwrap();
    assert!(
        problem["problem"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("keychain is locked")),
        "{problem}"
    );
    assert_eq!(locked.wait_exit(WAIT).unwrap().code(), Some(1));
    locked.wait_for_stderr("unlock it", WAIT).unwrap();

    // No Secret Service at all (no session bus): the same, saying what is missing.
    let nobus = format!(
        "DBUS_SESSION_BUS_ADDRESS=unix:path={}",
        path_str(&config_path().with_file_name("no-bus"))
    );
    let mut missing = spawn_cli(&[&nobus], &["register", "--account", &name]);
    assert_eq!(missing.wait_exit(WAIT).unwrap().code(), Some(1));
    missing
        .wait_for_stderr("No system keychain is available", WAIT)
        .unwrap();
    assert_eq!(
        registrar.register_count(&ext),
        sent,
        "REGISTER sent without a password"
    );
}

#[test]
fn removing_an_account_forgets_its_password() {
    if !in_private_keychain("removing_an_account_forgets_its_password") {
        return;
    }
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let name = format!("desk {ext}");
    account_set(
        &name,
        &account_args(&registrar, Transport::Tcp, &ext),
        &password,
    );
    assert!(keyring_lookup(&name).is_some());

    let mut list = spawn_cli(&[], &["account", "list", "--json"]);
    let listed = list.wait_for(|v| v["accounts"].is_array(), WAIT).unwrap();
    assert_eq!(listed["accounts"][0]["name"], name.as_str(), "{listed}");
    assert_eq!(listed["accounts"][0]["transport"], "tcp", "{listed}");
    assert!(!listed.to_string().contains(&password));

    let mut remove = spawn_cli(&[], &["account", "remove", &name]);
    assert!(
        remove.wait_exit(WAIT).unwrap().success(),
        "{}",
        remove.stderr()
    );
    assert_eq!(keyring_lookup(&name), None, "password left in the keychain");
    assert!(!std::fs::read_to_string(config_path())
        .unwrap()
        .contains(&ext));

    let mut gone = spawn_cli(&[], &["register", "--account", &name]);
    assert_eq!(gone.wait_exit(WAIT).unwrap().code(), Some(1));
    gone.wait_for_stderr("no account named", WAIT).unwrap();
}
