//! The Windows build of `vicifast-cli` (`vicifast-cli.exe`, cross-built with mingw-w64) run by
//! Wine against a real Kamailio on loopback: it registers over UDP, TCP and TLS (a CA made at
//! test time, given with `--ca-file` as a Windows path), shows the binding with `bindings`,
//! refreshes, and on Ctrl-C removes its binding and exits 0. A saved account goes to the
//! settings file under `%APPDATA%\vicifast` and its password to Credential Manager only
//! (no file of the Wine prefix holds it), and `register --account` registers with it.
//!
//! Runs in `make test-windows-e2e` (a private Wine prefix and display per run); elsewhere each
//! test says why it was skipped.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::Path;
use vicifast_e2e::wine::{windows_path, Wine};
use vicifast_e2e::{
    account_args, registrar_with_user, Finished, Registrar, RegistrarOptions, Transport, WAIT,
};

fn wine_or_skip(test: &str) -> Option<Wine> {
    match Wine::from_env() {
        Ok(wine) => Some(wine),
        Err(why) => {
            vicifast_e2e::wine::not_run(test, &why);
            None
        }
    }
}

/// The account flags for the Windows CLI: as on Linux, with the CA file named the Windows way.
fn windows_account_args(registrar: &Registrar, transport: Transport, ext: &str) -> Vec<String> {
    let mut args = account_args(registrar, transport, ext);
    if let Some(i) = args.iter().position(|a| a == "--ca-file") {
        args[i + 1] = windows_path(Path::new(&args[i + 1]));
    }
    args
}

fn command(name: &str, registrar: &Registrar, transport: Transport, ext: &str) -> Vec<String> {
    let mut args = vec![name.to_owned()];
    args.extend(windows_account_args(registrar, transport, ext));
    args.push("--json".to_owned());
    args
}

fn listed_contacts(output: &Finished) -> Vec<String> {
    let json = output.json();
    let doc = json
        .iter()
        .find(|v| v.get("bindings").is_some())
        .unwrap_or_else(|| panic!("no {{\"bindings\":..}} line in {output:?}"));
    doc["bindings"]
        .as_array()
        .expect("bindings array")
        .iter()
        .map(|b| b["contact"].as_str().expect("contact").to_owned())
        .collect()
}

/// Registers, lists the binding, refreshes, and unregisters on Ctrl-C.
fn registers_refreshes_and_unregisters_on_ctrl_c(test: &str, transport: Transport) {
    let Some(wine) = wine_or_skip(test) else {
        return;
    };
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions {
        min_expires: 5,
        ..RegistrarOptions::default()
    });
    let mut args = command("register", &registrar, transport, &ext);
    args.extend(["--expires".to_owned(), "8".to_owned()]);
    let mut cli = wine.spawn_cli(&args, &password).unwrap();
    let registered = cli.wait_for_state("registered", WAIT).unwrap();
    let contact = registered["contact"].as_str().expect("contact").to_owned();
    registrar.sole_binding(&ext, &contact);

    let listed = wine
        .run_cli(
            &command("bindings", &registrar, transport, &ext),
            &password,
            WAIT,
        )
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(
        listed_contacts(&listed),
        std::slice::from_ref(&contact),
        "{listed:?}"
    );

    let registers_before = registrar.register_count(&ext);
    let refreshed = cli.wait_for(|s| s["cause"] == "refreshed", WAIT).unwrap();
    assert_eq!(refreshed["state"], "registered", "{refreshed}");
    assert!(registrar.register_count(&ext) > registers_before);
    assert_eq!(registrar.bindings(&ext).unwrap().len(), 1);

    // Wine turns SIGINT into the console's Ctrl-C event.
    cli.interrupt().unwrap();
    cli.wait_for_state("unregistered", WAIT).unwrap();
    let status = cli.wait_exit(WAIT).unwrap();
    assert!(status.success(), "{status:?}\n{}", cli.stderr());
    let left = registrar.bindings(&ext).unwrap();
    assert!(left.is_empty(), "binding left behind: {left:?}");
    assert!(registrar
        .register_attempts(&ext)
        .last()
        .is_some_and(|a| a.is_removal()));
}

#[test]
fn windows_cli_over_udp() {
    registers_refreshes_and_unregisters_on_ctrl_c("windows_cli_over_udp", Transport::Udp);
}

#[test]
fn windows_cli_over_tcp() {
    registers_refreshes_and_unregisters_on_ctrl_c("windows_cli_over_tcp", Transport::Tcp);
}

#[test]
fn windows_cli_over_tls_with_a_ca_file() {
    registers_refreshes_and_unregisters_on_ctrl_c(
        "windows_cli_over_tls_with_a_ca_file",
        Transport::Tls,
    );
}

/// Without `--ca-file` the test CA is unknown to the Windows store: a certificate problem, not a
/// registration.
#[test]
fn windows_cli_refuses_an_unknown_ca() {
    let Some(wine) = wine_or_skip("windows_cli_refuses_an_unknown_ca") else {
        return;
    };
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut args = command("register", &registrar, Transport::Tls, &ext);
    let i = args.iter().position(|a| a == "--ca-file").unwrap();
    args.drain(i..i + 2);
    let mut cli = wine.spawn_cli(&args, &password).unwrap();
    let problem = cli
        .wait_for(|s| s["problem"]["code"] == "tls_certificate", WAIT)
        .unwrap();
    assert_ne!(problem["state"], "registered", "{problem}");
    assert!(registrar.bindings(&ext).unwrap().is_empty());
}

/// Every file under `dir` that holds `needle` (the system DLLs are skipped: hard links to the
/// shared prefix's, which no test writes).
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && !is_system_file(&entry.path()) {
                let data = std::fs::read(entry.path()).unwrap_or_default();
                if data.windows(needle.len()).any(|w| w == needle) {
                    found.push(entry.path().display().to_string());
                }
            }
        }
    }
    found
}

/// The account's entries in Credential Manager, which Wine keeps in the registry.
fn credential_manager_entries(wine: &Wine, account: &str) -> Vec<String> {
    let out = wine
        .run(
            &["reg", "query", r"HKCU\Software\Wine\Credential Manager"],
            WAIT,
        )
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(account))
        .map(str::to_owned)
        .collect()
}

fn is_system_file(path: &Path) -> bool {
    let text = path.to_string_lossy();
    [
        "/windows/system32/",
        "/windows/syswow64/",
        "/windows/Microsoft.NET/",
    ]
    .iter()
    .any(|dir| text.contains(dir))
}

#[test]
fn windows_saved_account_uses_credential_manager() {
    let Some(shared) = wine_or_skip("windows_saved_account_uses_credential_manager") else {
        return;
    };
    // A prefix of its own, so its wineserver can be waited out and the registry read from disk.
    let wine = shared.private_copy().unwrap();
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let name = format!("desk {ext}");
    let mut set = vec!["account".to_owned(), "set".to_owned(), name.clone()];
    set.extend(windows_account_args(&registrar, Transport::Udp, &ext));
    let saved = wine.run_cli(&set, &password, WAIT).unwrap();
    assert!(saved.status.success(), "account set: {saved:?}");

    let settings = wine.appdata().unwrap().join("vicifast/config.toml");
    let file = std::fs::read_to_string(&settings)
        .unwrap_or_else(|e| panic!("settings not at %APPDATA%\\vicifast: {e}"));
    assert!(file.contains(&format!("extension = \"{ext}\"")), "{file}");
    assert!(!file.contains(&password), "password in the settings file");
    assert!(
        !credential_manager_entries(&wine, &name).is_empty(),
        "no Credential Manager entry for {name}"
    );

    let mut cli = wine
        .spawn_cli_without_password(&["register", "--account", &name, "--json"])
        .unwrap();
    let status = cli.wait_for_state("registered", WAIT).unwrap();
    registrar.sole_binding(&ext, status["contact"].as_str().expect("contact"));
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success(), "{}", cli.stderr());
    assert!(registrar.bindings(&ext).unwrap().is_empty());

    // The wineserver writes the registry (Credential Manager included) to the prefix's files
    // when it exits; then no file holds the password, as UTF-8 or as UTF-16 (Windows' own).
    wine.wait_for_wineserver_exit(WAIT).unwrap();
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    for needle in [password.as_bytes(), utf16.as_slice()] {
        let holding = files_holding(wine.prefix(), needle);
        assert!(holding.is_empty(), "the password is in {holding:?}");
    }

    let mut removed = wine
        .spawn_cli_without_password(&["account", "remove", &name])
        .unwrap();
    assert!(
        removed.wait_exit(WAIT).unwrap().success(),
        "{}",
        removed.stderr()
    );
    assert!(
        credential_manager_entries(&wine, &name).is_empty(),
        "Credential Manager still holds {name}"
    );
}
