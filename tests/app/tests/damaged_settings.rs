//! A settings file the app cannot read is shown as a problem in the window, and left exactly as
//! it was (the app never overwrites what it could not read).
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use vicifast_app_e2e::{Desktop, WebDriver, WAIT};

#[test]
fn damaged_settings_file_is_shown_and_left_alone() {
    let Some(logs) = vicifast_app_e2e::prepare("damaged_settings_file_is_shown_and_left_alone")
    else {
        return;
    };
    let desktop = Desktop::start().unwrap();
    let damaged = "format = 1\n[[accounts]\nname = \"default\"\n";
    desktop.write_config(damaged).unwrap();

    let driver = WebDriver::launch(&desktop, &[], &logs.join("app-damaged.log")).unwrap();
    driver
        .wait_true(
            WAIT,
            "the settings-file problem",
            "const e = document.getElementById('load-error'); \
             return !e.hidden && e.textContent.includes('settings file');",
        )
        .unwrap();
    desktop.screenshot("08-damaged-settings-file").unwrap();
    desktop.wait_tray("failed", "tray-08-failed").unwrap();
    desktop.quit_app().unwrap();
    driver.finish();
    assert_eq!(
        std::fs::read_to_string(desktop.config_path()).unwrap(),
        damaged
    );
}
