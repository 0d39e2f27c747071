//! Every saved account is registered, not only the one the window edits: accounts added with
//! `vicifast-cli account set` (the same settings file and keychain entries) register at start
//! beside the app's own, the tray's icon and tooltip cover them all, the window lists them, an
//! account with no saved password is a named problem, and the tray's Unregister and Quit remove
//! every binding. Accounts added or removed with the CLI while the app runs are taken up at once.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::process::Stdio;
use vicifast_app_e2e::{wait_for, Desktop, Registrar, RegistrarOptions, WebDriver, WAIT};

/// Waits until the tray's tooltip has every line of `present` and none of `absent`.
fn wait_tray_tooltip(desktop: &Desktop, present: &[String], absent: &[String]) {
    let mut last = String::new();
    let shown = wait_for(WAIT, "the tray tooltip", || {
        last = desktop.tray().tooltip().unwrap_or_default();
        (present.iter().all(|p| last.contains(p.as_str()))
            && !absent.iter().any(|a| last.contains(a.as_str())))
        .then_some(())
    });
    assert!(
        shown.is_ok(),
        "tooltip: {last}\nwanted {present:?}, not {absent:?}"
    );
}

fn count(registrar: &Registrar, ext: &str) -> usize {
    registrar.bindings(ext).map(|b| b.len()).unwrap_or(0)
}

#[test]
fn every_saved_account_is_registered() {
    let Some(logs) = vicifast_app_e2e::prepare("every_saved_account_is_registered") else {
        return;
    };
    let desktop = Desktop::start().unwrap();
    let registrar = Registrar::start(RegistrarOptions::default()).unwrap();
    let (own, sales, night) = (
        vicifast_e2e::random_extension(),
        vicifast_e2e::random_extension(),
        vicifast_e2e::random_extension(),
    );
    let own_pw = registrar.add_user(&own).unwrap();
    let sales_pw = registrar.add_user(&sales).unwrap();
    desktop
        .account_set("default", &registrar, &own, &own_pw)
        .unwrap();
    desktop
        .account_set("sales", &registrar, &sales, &sales_pw)
        .unwrap();
    // Written by hand, with no password in the keychain.
    let mut config = std::fs::read_to_string(desktop.config_path()).unwrap();
    config.push_str(&format!(
        "\n[[accounts]]\nname = \"night\"\nserver = \"127.0.0.1\"\nport = {}\n\
         extension = \"{night}\"\ntransport = \"udp\"\nexpires = 300\n",
        registrar.udp_port()
    ));
    desktop.write_config(&config).unwrap();

    let mut tray = desktop
        .spawn_tray(&[], &logs.join("app-accounts.log"))
        .unwrap();
    let both = || (count(&registrar, &own) == 1 && count(&registrar, &sales) == 1).then_some(());
    wait_for(WAIT, "both accounts to register", both)
        .unwrap_or_else(|e| panic!("{e}\n{}", registrar.log_tail()));
    assert!(!desktop.has_app_window(), "no window needed at start");
    // One account cannot register: the icon says so, the tooltip says which and why.
    desktop
        .wait_tray("failed", "tray-12-one-account-failed")
        .unwrap();
    let expected = [
        format!("Extension {own}: registered"),
        format!("Extension {sales}: registered"),
        format!("Extension {night}: not registered — password not available"),
    ];
    wait_tray_tooltip(&desktop, &expected, &[]);

    // The window lists the other accounts.
    let driver = WebDriver::launch(&desktop, &[], &logs.join("app-accounts-window.log")).unwrap();
    driver.wait_state("registered", WAIT).unwrap();
    driver
        .wait_true(
            WAIT,
            "the other accounts",
            &format!(
                "const s = document.querySelector('[data-account=\"sales\"]'); \
                 const n = document.querySelector('[data-account=\"night\"]'); \
                 return !document.getElementById('other-accounts').hidden && !!s && !!n \
                   && s.dataset.state === 'registered' && s.textContent.includes('{sales}') \
                   && n.dataset.state === 'failed' && n.textContent.includes('No password is saved');"
            ),
        )
        .unwrap();
    desktop.screenshot("12-other-accounts").unwrap();

    // Unregister (the tray's) removes every binding; Register brings them back.
    desktop.click_tray_menu("Unregister").unwrap();
    let none = || (count(&registrar, &own) == 0 && count(&registrar, &sales) == 0).then_some(());
    wait_for(WAIT, "every binding to go", none).unwrap();
    desktop.click_tray_menu("Register").unwrap();
    wait_for(WAIT, "both accounts to register again", both).unwrap();

    // Support adds an account and removes another with the CLI while the app runs.
    let extra = vicifast_e2e::random_extension();
    let extra_pw = registrar.add_user(&extra).unwrap();
    desktop
        .account_set("extra", &registrar, &extra, &extra_pw)
        .unwrap();
    wait_for(WAIT, "the account added with the CLI to register", || {
        (count(&registrar, &extra) == 1).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", registrar.log_tail()));
    let contacts = |ext: &str| -> Vec<String> {
        let bindings = registrar.bindings(ext).unwrap_or_default();
        bindings.into_iter().map(|b| b.uri).collect()
    };
    let (own_before, extra_before) = (contacts(&own), contacts(&extra));
    let status = desktop
        .command(vicifast_e2e::Cli::binary().unwrap())
        .args(["account", "remove", "sales"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "account remove: {status}");
    wait_for(
        WAIT,
        "the account removed with the CLI to unregister",
        || (count(&registrar, &sales) == 0).then_some(()),
    )
    .unwrap();
    // The others were not restarted: a restart registers from a new socket, a new Contact.
    assert_eq!(
        contacts(&own),
        own_before,
        "the app's own account kept running"
    );
    assert_eq!(contacts(&extra), extra_before, "`extra` kept running");
    wait_tray_tooltip(
        &desktop,
        &[format!("Extension {extra}: registered")],
        &[format!("Extension {sales}")],
    );

    desktop.quit_app().unwrap();
    let none = || (count(&registrar, &own) == 0 && count(&registrar, &extra) == 0).then_some(());
    wait_for(WAIT, "Quit to remove every binding", none).unwrap();
    let _ = tray.wait();
    driver.finish();
}
