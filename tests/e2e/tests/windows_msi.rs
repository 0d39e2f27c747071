//! VICIfast's MSI under Wine: `msiexec /i … /qn` installs silently per user (no administrator:
//! %LOCALAPPDATA%\Programs\VICIfast, the Start-menu entry, the login item under HKCU) and the
//! installed CLI registers with a saved account against Kamailio; a newer MSI replaces the older
//! one in place (one product left) keeping the settings and the saved password; `msiexec /x`
//! removes the programs, the Start-menu entry and the login item, and keeps the settings and
//! the password. `ALLUSERS=1` installs per machine (Program Files, HKLM) and uninstalls as
//! cleanly.
//!
//! Needs `VICIFAST_MSI` and `VICIFAST_MSI_OLDER` (two builds of the same programs, the second
//! with a lower version), which `make test-windows-msi` builds; runs inside
//! tests/windows/run-under-wine.sh, and says why it was skipped elsewhere.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::{Path, PathBuf};
use vicifast_e2e::wine::{windows_path, Wine};
use vicifast_e2e::{account_args, registrar_with_user, RegistrarOptions, Transport, WAIT};

const PROGRAMS: [&str; 4] = [
    "vicifast.exe",
    "vicifast-tray.exe",
    "vicifast-cli.exe",
    "WebView2Loader.dll",
];
const RUN_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";

struct Packages {
    current: PathBuf,
    older: PathBuf,
}

fn setup_or_skip(test: &str) -> Option<(Wine, Packages)> {
    let found = Wine::from_env().and_then(|wine| {
        let msi = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .ok_or(format!("{var} names no built MSI (make test-windows-msi)"))
        };
        let packages = Packages {
            current: msi("VICIFAST_MSI")?,
            older: msi("VICIFAST_MSI_OLDER")?,
        };
        Ok((wine.private_copy()?, packages))
    });
    match found {
        Ok(found) => Some(found),
        Err(why) => {
            vicifast_e2e::wine::not_run(test, &why);
            None
        }
    }
}

fn msiexec(wine: &Wine, args: &[&str]) {
    let out = wine.run(&[&["msiexec"], args].concat(), WAIT).unwrap();
    assert!(
        out.status.success(),
        "msiexec {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value `name` under `key` as `reg query` prints it, if it exists.
fn registry_value(wine: &Wine, key: &str, name: &str) -> Option<String> {
    let out = wine.run(&["reg", "query", key, "/v", name], WAIT).unwrap();
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_owned()
    })
}

/// Both Run keys as `reg query` shows them, for a failure report.
fn registry_dump(wine: &Wine) -> String {
    ["HKCU", "HKLM"]
        .iter()
        .map(|root| {
            let out = wine
                .run(&["reg", "query", &format!(r"{root}\{RUN_KEY}")], WAIT)
                .unwrap();
            format!(
                "{root}: {}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .collect()
}

/// The installed products named VICIfast (per user), by their `Version` values.
fn installed_versions(wine: &Wine) -> Vec<String> {
    let out = wine
        .run(
            &[
                "reg",
                "query",
                r"HKCU\Software\Microsoft\Installer\Products",
                "/s",
            ],
            WAIT,
        )
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("\nHKEY_")
        .filter(|key| key.contains("ProductName    REG_SZ    VICIfast"))
        .filter_map(|key| {
            key.lines()
                .find(|l| l.trim_start().starts_with("Version "))
                .map(|l| l.trim().to_owned())
        })
        .collect()
}

fn start_menu_entry(wine: &Wine) -> PathBuf {
    wine.appdata()
        .unwrap()
        .join("Microsoft/Windows/Start Menu/Programs/VICIfast.lnk")
}

fn assert_installed_in(dir: &Path) {
    for program in PROGRAMS {
        assert!(dir.join(program).is_file(), "{program} not in {dir:?}");
    }
}

#[test]
fn msi_installs_per_user_upgrades_in_place_and_uninstalls_cleanly() {
    let Some((wine, packages)) =
        setup_or_skip("msi_installs_per_user_upgrades_in_place_and_uninstalls_cleanly")
    else {
        return;
    };
    let older = windows_path(&packages.older);
    let current = windows_path(&packages.current);
    let install_dir = wine.local_appdata().unwrap().join("Programs/VICIfast");

    msiexec(&wine, &["/i", &older, "/qn"]);
    assert_installed_in(&install_dir);
    assert!(start_menu_entry(&wine).is_file(), "no Start-menu entry");
    let login_item = registry_value(&wine, &format!(r"HKCU\{RUN_KEY}"), "VICIfast")
        .unwrap_or_else(|| panic!("no login item under HKCU:\n{}", registry_dump(&wine)));
    assert!(
        login_item.contains(r"Programs\VICIfast\vicifast-tray.exe"),
        "{login_item}"
    );
    assert!(
        registry_value(&wine, &format!(r"HKLM\{RUN_KEY}"), "VICIfast").is_none(),
        "a per-user install wrote the machine's login items"
    );
    assert_eq!(installed_versions(&wine).len(), 1);

    // The installed CLI, run from the install folder, saves an account and registers with it.
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let installed = wine.with_cli_exe(install_dir.join("vicifast-cli.exe"));
    let name = format!("desk {ext}");
    let mut set = vec!["account".to_owned(), "set".to_owned(), name.clone()];
    set.extend(account_args(&registrar, Transport::Udp, &ext));
    let saved = installed.run_cli(&set, &password, WAIT).unwrap();
    assert!(saved.status.success(), "account set: {saved:?}");
    let settings_path = installed.appdata().unwrap().join("vicifast/config.toml");
    let settings = std::fs::read_to_string(&settings_path).unwrap();
    let register = ["register", "--account", &name, "--json"];
    let mut cli = installed.spawn_cli_without_password(&register).unwrap();
    cli.wait_for_state("registered", WAIT).unwrap();
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success(), "{}", cli.stderr());

    // Upgrade in place: one product, the newer one; settings and password kept.
    let version_before = installed_versions(&installed);
    msiexec(&installed, &["/i", &current, "/qn"]);
    let versions = installed_versions(&installed);
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_ne!(
        versions, version_before,
        "the newer version did not replace the older"
    );
    assert_installed_in(&install_dir);
    assert_eq!(std::fs::read_to_string(&settings_path).unwrap(), settings);
    let mut cli = installed.spawn_cli_without_password(&register).unwrap();
    cli.wait_for_state("registered", WAIT).unwrap();
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success(), "{}", cli.stderr());

    // Uninstall: programs, Start-menu entry and login item gone; settings and password kept.
    msiexec(&installed, &["/x", &current, "/qn"]);
    for program in PROGRAMS {
        assert!(!install_dir.join(program).exists(), "{program} left behind");
    }
    assert!(!install_dir.exists(), "the install folder was left behind");
    assert!(
        !start_menu_entry(&installed).exists(),
        "Start-menu entry left behind"
    );
    assert!(
        registry_value(&installed, &format!(r"HKCU\{RUN_KEY}"), "VICIfast").is_none(),
        "login item left behind"
    );
    assert!(installed_versions(&installed).is_empty());
    assert_eq!(std::fs::read_to_string(&settings_path).unwrap(), settings);
    // The development build of the CLI (not the removed one) still finds the saved password.
    let dev = Wine::from_env().unwrap();
    let dev = installed.with_cli_exe(dev.cli_exe().to_owned());
    let mut cli = dev.spawn_cli_without_password(&register).unwrap();
    cli.wait_for_state("registered", WAIT).unwrap();
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success(), "{}", cli.stderr());
}

#[test]
fn msi_installs_per_machine_when_asked() {
    let Some((wine, packages)) = setup_or_skip("msi_installs_per_machine_when_asked") else {
        return;
    };
    let current = windows_path(&packages.current);
    let program_files = wine.prefix().join("drive_c/Program Files/VICIfast");

    msiexec(&wine, &["/i", &current, "ALLUSERS=1", "/qn"]);
    assert_installed_in(&program_files);
    let login_item = registry_value(&wine, &format!(r"HKLM\{RUN_KEY}"), "VICIfast")
        .unwrap_or_else(|| panic!("no login item under HKLM:\n{}", registry_dump(&wine)));
    assert!(
        login_item.contains(r"Program Files\VICIfast\vicifast-tray.exe"),
        "{login_item}"
    );
    let per_user = wine.local_appdata().unwrap().join("Programs/VICIfast");
    assert!(
        !per_user.exists(),
        "a per-machine install wrote the user's programs folder"
    );

    let installed = wine.with_cli_exe(program_files.join("vicifast-cli.exe"));
    let mut version = installed
        .spawn_cli_without_password(&["--version"])
        .unwrap();
    assert!(
        version.wait_exit(WAIT).unwrap().success(),
        "{}",
        version.stderr()
    );

    msiexec(&installed, &["/x", &current, "ALLUSERS=1", "/qn"]);
    assert!(
        !program_files.exists(),
        "Program Files\\VICIfast left behind"
    );
    assert!(
        registry_value(&installed, &format!(r"HKLM\{RUN_KEY}"), "VICIfast").is_none(),
        "login item left behind"
    );
}
