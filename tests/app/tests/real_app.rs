//! The real app, end to end, on a private X display, session bus, Secret Service and stand-in
//! panel, against a real Kamailio:
//! 1. first run: the window (`vicifast`) starts VICIfast in the tray (`vicifast-tray`); settings
//!    entered in the real window register the extension; the password is in the Secret Service
//!    and not in the settings file; the tray icon, tooltip and menu follow; the tray menu's Quit
//!    removes the binding before the app exits, and the window goes with it;
//! 2. the tray process started alone (as at login) registers from the keychain without a window;
//!    a second launch opens the window; closing it ends the window process and its web engine
//!    while the tray process stays registered; the tray menu opens the window, unregisters and
//!    registers;
//! 3. Unregister and Register in the window remove and add the binding; a wrong password saved
//!    in the window shows the wrong-password panel.
//!
//! Screenshots of each state land in test-output/app/ (01 first-run settings … 07 wrong password).
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use vicifast_app_e2e::{
    command_name, process_tree, save_settings_in_ui, wait_for, Desktop, Registrar,
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
    driver
        .wait_true(
            WAIT,
            "the first-run settings",
            "return !document.getElementById('view-settings').hidden \
             && !document.getElementById('first-run').hidden;",
        )
        .unwrap();
    desktop.screenshot("01-first-run-settings").unwrap();
    let tray = desktop.wait_tray_pid().unwrap();
    driver.click("#f-start_at_login").unwrap();
    save_settings_in_ui(&driver, &registrar, &ext, &password).unwrap();
    driver.wait_state("registered", WAIT).unwrap();
    desktop.screenshot("02-registered").unwrap();
    desktop
        .wait_tray("registered", "tray-02-registered")
        .unwrap();
    assert_eq!(bindings(&registrar, &ext), 1, "Kamailio holds the binding");
    let tooltip = desktop.tray().tooltip().unwrap_or_default();
    assert!(
        tooltip.contains(&format!("Extension {ext}")) && tooltip.contains("registered"),
        "tooltip: {tooltip}"
    );
    let menu: Vec<(String, bool)> = desktop
        .tray()
        .menu_items()
        .into_iter()
        .map(|e| (e.label, e.enabled))
        .collect();
    let item = |label: &str, enabled| (label.to_owned(), enabled);
    assert_eq!(
        menu,
        [
            item("Open window", true),
            item("Register", false),
            item("Unregister", true),
            item("", true),
            item("Quit", true),
        ]
    );

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

    // "Start VICIfast when I log in" was applied on save: an XDG autostart entry (under
    // $HOME/.config whatever XDG_CONFIG_HOME says) that starts the tray process.
    let autostart = desktop.home().join(".config/autostart");
    let entries: Vec<String> = std::fs::read_dir(&autostart)
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        entries.iter().any(|e| e.contains("vicifast-tray")),
        "no autostart entry for vicifast-tray in {}: {entries:?}",
        autostart.display()
    );

    // The tray menu's Quit: unregister, then exit; the window closes with it.
    desktop.click_tray_menu("Quit").unwrap();
    wait_bindings(&registrar, &ext, 0, "Quit to remove the binding");
    wait_for(WAIT, "the app to exit", || {
        (desktop.tray_pid().is_none() && desktop.window_pids().is_empty()).then_some(())
    })
    .unwrap();
    assert!(!vicifast_app_e2e::is_running(tray));
    driver.finish();
    let log = std::fs::read_to_string(logs.join("app-1-first-run.log")).unwrap();
    assert!(!log.contains(&password), "the password is in the app's log");

    // ---- 2. At login: the tray process alone registers from the keychain, no window ----
    // Two launches at the same moment (login item and agent): one stays, the other leaves.
    let mut launches = [
        desktop
            .spawn_tray(&["--no-window"], &logs.join("app-2-restart.log"))
            .unwrap(),
        desktop
            .spawn_tray(&["--no-window"], &logs.join("app-2-restart-racer.log"))
            .unwrap(),
    ];
    let (loser, status) = wait_for(WAIT, "one of two simultaneous launches to leave", || {
        launches
            .iter_mut()
            .enumerate()
            .find_map(|(i, c)| c.try_wait().ok().flatten().map(|s| (i, s)))
    })
    .unwrap();
    assert!(status.success(), "the second launch: {status}");
    let [a, b] = launches;
    let mut first = if loser == 0 { b } else { a };
    assert_eq!(desktop.tray_pid(), Some(first.id()));
    wait_bindings(&registrar, &ext, 1, "registration from the keychain");
    desktop
        .wait_tray("registered", "tray-03-registered")
        .unwrap();
    assert_eq!(
        bindings(&registrar, &ext),
        1,
        "one binding, from one process"
    );
    assert!(!desktop.has_app_window(), "a window opened at start");
    assert!(desktop.window_pids().is_empty(), "a window process started");
    desktop.screenshot("03-restarted-tray-only").unwrap();
    let tray_only = process_tree(first.id());

    // A second launch hands over to the first instance, which opens the window.
    let mut second = desktop
        .spawn_tray(&[], &logs.join("app-2-second-launch.log"))
        .unwrap();
    let exited = wait_for(WAIT, "the second instance to exit", || {
        second.try_wait().ok().flatten()
    })
    .unwrap();
    assert!(exited.success(), "second instance: {exited}");
    wait_for(WAIT, "the window", || {
        desktop.has_app_window().then_some(())
    })
    .unwrap();
    let window = desktop.window_pids();
    assert_eq!(window.len(), 1, "one window process: {window:?}");
    // The tray process started the window: it is in the tray process's tree.
    let with_window = process_tree(first.id());
    assert!(with_window.contains(&window[0]), "{with_window:?}");
    desktop.screenshot("04-second-launch-opens-window").unwrap();

    // Closing the window ends its process and web engine; the app stays registered in the tray.
    desktop.close_app_window_and_wait().unwrap();
    wait_for(
        WAIT,
        "the window process and its WebKit processes to end",
        || {
            let gone = with_window
                .iter()
                .all(|p| *p == first.id() || !vicifast_app_e2e::is_running(*p));
            gone.then_some(())
        },
    )
    .unwrap();
    assert!(
        first.try_wait().unwrap().is_none(),
        "the tray process quit with the window"
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

    // The tray opens the window again (menu, then a click on the icon) ...
    desktop.click_tray_menu("Open window").unwrap();
    wait_for(WAIT, "the window from the tray menu", || {
        desktop.has_app_window().then_some(())
    })
    .unwrap();
    desktop.close_app_window_and_wait().unwrap();
    wait_for(WAIT, "the window process to end", || {
        desktop.window_pids().is_empty().then_some(())
    })
    .unwrap();
    assert!(desktop.tray().activate(), "the icon did not take the click");
    wait_for(WAIT, "the window from a click on the icon", || {
        desktop.has_app_window().then_some(())
    })
    .unwrap();
    desktop.close_app_window_and_wait().unwrap();

    // ... unregisters and registers.
    desktop.click_tray_menu("Unregister").unwrap();
    wait_bindings(
        &registrar,
        &ext,
        0,
        "the tray's Unregister to remove the binding",
    );
    desktop
        .wait_tray("offline", "tray-05-unregistered")
        .unwrap();
    desktop.click_tray_menu("Register").unwrap();
    wait_bindings(
        &registrar,
        &ext,
        1,
        "the tray's Register to add the binding",
    );
    desktop
        .wait_tray("registered", "tray-05-registered")
        .unwrap();

    desktop.quit_app().unwrap();
    let _ = first.wait();
    wait_bindings(&registrar, &ext, 0, "Quit to remove the binding");

    // ---- 3. A wrong password shows the wrong-password panel ----
    // The window started when the tray process is not running starts it.
    let driver = WebDriver::launch(&desktop, &[], &logs.join("app-3-wrong.log")).unwrap();
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
    desktop.quit_app().unwrap();
    driver.finish();
}
