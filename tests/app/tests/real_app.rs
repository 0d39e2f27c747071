//! The real app, end to end, on a private X display, session bus and Secret Service, against a
//! real Kamailio:
//! 1. first run: settings entered in the real window register the extension; the password is in
//!    the Secret Service and not in the settings file; the tray's X window exists;
//!    Quit (SIGTERM, as at logout) removes the binding before the app exits;
//! 2. a restart registers from the keychain at once without opening a window; a second launch
//!    opens the first instance's window (showing `registered` from `get_state`); closing the
//!    window keeps the app registered in the tray and ends the WebKit processes;
//! 3. Unregister and Register in the window remove and add the binding; a wrong password saved
//!    in the window shows the wrong-password panel.
//!
//! Screenshots of each state land in test-output/app/ (01 first-run settings … 07 wrong password).
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use vicifast_app_e2e::{
    command_name, process_tree, quit_app, save_settings_in_ui, wait_for, Desktop, Registrar,
    RegistrarOptions, WebDriver, WAIT,
};

fn bindings(registrar: &Registrar, ext: &str) -> usize {
    registrar.bindings(ext).map(|b| b.len()).unwrap_or(0)
}

fn wait_bindings(registrar: &Registrar, ext: &str, n: usize, what: &str) {
    wait_for(WAIT, what, || (bindings(registrar, ext) == n).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", registrar.log_tail()));
}

#[test]
fn real_app_end_to_end() {
    let Some(logs) = vicifast_app_e2e::prepare("real_app_end_to_end") else {
        return;
    };
    let desktop = Desktop::start().unwrap();
    let registrar = Registrar::start(RegistrarOptions::default()).unwrap();
    let ext = vicifast_e2e::random_extension();
    let password = registrar.add_user(&ext).unwrap();

    // ---- 1. First run through the real window ----
    let driver = WebDriver::launch(&desktop, &[], &logs.join("app-1-first-run.log")).unwrap();
    let app = driver.app_pid().unwrap();
    driver
        .wait_true(
            WAIT,
            "the first-run settings",
            "return !document.getElementById('view-settings').hidden \
             && !document.getElementById('first-run').hidden;",
        )
        .unwrap();
    desktop.screenshot("01-first-run-settings").unwrap();
    driver.click("#f-start_at_login").unwrap();
    save_settings_in_ui(&driver, &registrar, &ext, &password).unwrap();
    driver.wait_state("registered", WAIT).unwrap();
    desktop.screenshot("02-registered").unwrap();
    desktop
        .wait_tray("registered", "tray-02-registered")
        .unwrap();
    assert_eq!(bindings(&registrar, &ext), 1, "Kamailio holds the binding");

    let config = std::fs::read_to_string(desktop.config_path()).unwrap();
    assert!(config.contains(&ext), "{config}");
    assert!(
        !config.contains(&password),
        "the password is in the settings file"
    );
    assert_eq!(
        desktop.keychain_secret("default").as_deref(),
        Some(password.as_str()),
        "secret-tool does not find the password"
    );

    // "Start VICIfast when I log in" was applied on save (an XDG autostart entry, which the
    // autostart plugin puts under $HOME/.config whatever XDG_CONFIG_HOME says).
    let autostart = desktop.home().join(".config/autostart");
    let entries: Vec<String> = std::fs::read_dir(&autostart)
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        entries.iter().any(|e| e.contains("vicifast")),
        "no autostart entry in {}: {entries:?}",
        autostart.display()
    );

    // No StatusNotifier host here: the tray falls back to an X window.
    let tree = desktop.window_tree();
    assert!(
        tree.lines().any(|l| l.to_lowercase().contains("tray")),
        "no tray window:\n{tree}"
    );

    quit_app(app).unwrap();
    wait_bindings(&registrar, &ext, 0, "Quit to remove the binding");
    driver.finish();
    let log = std::fs::read_to_string(logs.join("app-1-first-run.log")).unwrap();
    assert!(!log.contains(&password), "the password is in the app's log");

    // ---- 2. Restart: registers from the keychain, no window; tray only ----
    let mut first = desktop
        .spawn_app(&[], &logs.join("app-2-restart.log"))
        .unwrap();
    wait_bindings(&registrar, &ext, 1, "registration from the keychain");
    assert!(!desktop.has_app_window(), "a window opened at start");
    desktop.screenshot("03-restarted-tray-only").unwrap();
    desktop
        .wait_tray("registered", "tray-03-registered")
        .unwrap();
    let tray_only = process_tree(first.id());

    // A second launch hands over to the first instance, which opens its window.
    let mut second = desktop
        .spawn_app(&[], &logs.join("app-2-second-launch.log"))
        .unwrap();
    let exited = wait_for(WAIT, "the second instance to exit", || {
        second.try_wait().ok().flatten()
    })
    .unwrap();
    assert!(exited.success(), "second instance: {exited}");
    wait_for(WAIT, "the first instance's window", || {
        desktop.has_app_window().then_some(())
    })
    .unwrap();
    let with_window = process_tree(first.id());
    desktop.screenshot("04-second-launch-opens-window").unwrap();

    // Closing the window destroys it (and its WebKit processes); the app stays registered.
    desktop.close_app_window_and_wait().unwrap();
    wait_for(WAIT, "the WebKit processes to end", || {
        let tree = process_tree(first.id());
        (!tree
            .iter()
            .any(|p| command_name(*p).starts_with("WebKitWeb")))
        .then_some(())
    })
    .unwrap();
    assert!(
        first.try_wait().unwrap().is_none(),
        "the app quit with its window"
    );
    assert_eq!(bindings(&registrar, &ext), 1);
    desktop.screenshot("05-closed-to-tray").unwrap();
    eprintln!(
        "processes: tray only {tray_only:?}, window open {with_window:?} ({})",
        with_window
            .iter()
            .map(|p| command_name(*p))
            .collect::<Vec<_>>()
            .join(", ")
    );
    quit_app(first.id()).unwrap();
    let _ = first.wait();
    wait_bindings(&registrar, &ext, 0, "Quit to remove the binding");

    // ---- 3. A wrong password shows the wrong-password panel ----
    let driver = WebDriver::launch(&desktop, &["--window"], &logs.join("app-3-wrong.log")).unwrap();
    let app = driver.app_pid().unwrap();
    driver.wait_state("registered", WAIT).unwrap();

    // Unregister and Register from the window.
    driver.click("#btn-unregister").unwrap();
    driver.wait_state("unregistered", WAIT).unwrap();
    wait_bindings(&registrar, &ext, 0, "Unregister to remove the binding");
    desktop.screenshot("06-unregistered").unwrap();
    desktop.wait_tray("offline", "tray-06-offline").unwrap();
    driver.click("#btn-register").unwrap();
    driver.wait_state("registered", WAIT).unwrap();
    wait_bindings(&registrar, &ext, 1, "Register to add the binding");

    driver.click("#btn-settings").unwrap();
    driver
        .wait_true(
            WAIT,
            "the settings form",
            "return !document.getElementById('view-settings').hidden;",
        )
        .unwrap();
    driver.type_into("#f-password", "not-the-password").unwrap();
    driver.click("#btn-save").unwrap();
    driver.wait_state("failed", WAIT).unwrap();
    driver
        .wait_true(
            WAIT,
            "the wrong-password panel",
            "const p = document.getElementById('problem'); \
             return !p.hidden && p.dataset.code === 'wrong_password';",
        )
        .unwrap();
    desktop.screenshot("07-wrong-password").unwrap();
    desktop.wait_tray("failed", "tray-07-failed").unwrap();
    assert_eq!(
        desktop.keychain_secret("default").as_deref(),
        Some("not-the-password")
    );
    quit_app(app).unwrap();
    driver.finish();
}
