//! A settings file the app cannot read is shown as a problem in the window, and left exactly as
//! it was (the app never overwrites what it could not read).
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use vicifast_app_e2e::{
    app_binary, is_running, output_dir, terminate, wait_for, Desktop, WebDriver, WAIT,
};

#[test]
fn damaged_settings_file_is_shown_and_left_alone() {
    if !vicifast_app_e2e::enabled("damaged_settings_file_is_shown_and_left_alone") {
        return;
    }
    assert!(app_binary().exists(), "run `make app-build` first");
    let logs = output_dir();
    std::fs::create_dir_all(&logs).unwrap();
    let desktop = Desktop::start().unwrap();
    let path = desktop.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let damaged = "format = 1\n[[accounts]\nname = \"default\"\n";
    std::fs::write(&path, damaged).unwrap();

    let driver = WebDriver::launch(&desktop, &[], &logs.join("app-damaged.log")).unwrap();
    let app = driver.app_pid().unwrap();
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
    terminate(app);
    wait_for(WAIT, "the app to quit", || (!is_running(app)).then_some(())).unwrap();
    driver.finish();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), damaged);
}
