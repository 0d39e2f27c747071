//! Losing the registration and getting it back each raise one desktop notification: over TCP, a
//! registrar that stops breaks the connection and forgets every binding; the app says the
//! registration was lost, retries (amber tray icon) while the registrar refuses connections,
//! registers again on "Register now" once it is back, and says so. The notifications are seen on
//! the private session bus (dbus-monitor), where the app sends them to the notification service.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::process::Stdio;
use vicifast_app_e2e::{
    save_settings_over, wait_for, Desktop, Registrar, RegistrarOptions, WebDriver, WAIT,
};

#[test]
fn lost_and_restored_registration_notify() {
    let Some(logs) = vicifast_app_e2e::prepare("lost_and_restored_registration_notify") else {
        return;
    };
    let desktop = Desktop::start().unwrap();
    let mut registrar = Registrar::start(RegistrarOptions::default()).unwrap();
    let ext = vicifast_e2e::random_extension();
    let password = registrar.add_user(&ext).unwrap();

    let monitor_log = logs.join("notifications-dbus-monitor.log");
    let mut monitor = desktop
        .command("dbus-monitor")
        .args(["--session", "interface='org.freedesktop.Notifications'"])
        .stdout(std::fs::File::create(&monitor_log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = |text: &str| {
        std::fs::read_to_string(&monitor_log)
            .unwrap_or_default()
            .contains(text)
    };

    let driver = WebDriver::launch(&desktop, &[], &logs.join("app-notifications.log")).unwrap();
    save_settings_over(&driver, &registrar, "tcp", &ext, &password).unwrap();
    driver.wait_state("registered", WAIT).unwrap();
    assert!(
        !seen("Phone registration lost"),
        "a notification before any loss"
    );

    registrar.stop();
    wait_for(WAIT, "the `registration lost` notification", || {
        seen("Phone registration lost").then_some(())
    })
    .unwrap();
    // The quick reconnects are refused while the registrar is down: the app retries.
    driver.wait_state("retrying", WAIT).unwrap();
    desktop
        .screenshot("10-retrying-after-registrar-restart")
        .unwrap();
    desktop.wait_tray("working", "tray-10-working").unwrap();
    // Back again; the agent presses "Register now" instead of waiting for the next retry.
    registrar.start_again().unwrap();
    driver.click("#btn-register").unwrap();
    wait_for(WAIT, "the `registered again` notification", || {
        seen("Phone registered again").then_some(())
    })
    .unwrap();
    driver.wait_state("registered", WAIT).unwrap();
    desktop.screenshot("11-registered-again").unwrap();

    desktop.quit_app().unwrap();
    driver.finish();
    let _ = monitor.kill();
    let _ = monitor.wait();
}
