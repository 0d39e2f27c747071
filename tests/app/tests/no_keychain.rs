//! Without a Secret Service, saved settings cannot be used: the window shows the `credentials`
//! problem (the password could not be read) instead of failing silently.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use vicifast_app_e2e::{Desktop, WebDriver, WAIT};

#[test]
fn missing_keychain_is_a_clear_problem() {
    let Some(logs) = vicifast_app_e2e::prepare("missing_keychain_is_a_clear_problem") else {
        return;
    };
    let desktop = Desktop::without_keychain().unwrap();
    desktop
        .write_config(
            "format = 1\nstart_at_login = false\n\n[[accounts]]\nname = \"default\"\n\
         server = \"127.0.0.1\"\nextension = \"101\"\ntransport = \"udp\"\nexpires = 300\n",
        )
        .unwrap();

    let driver = WebDriver::launch(&desktop, &[], &logs.join("app-no-keychain.log")).unwrap();
    driver.wait_state("failed", WAIT).unwrap();
    driver
        .wait_true(
            WAIT,
            "the credentials problem",
            "const p = document.getElementById('problem'); \
             return !p.hidden && p.dataset.code === 'credentials';",
        )
        .unwrap();
    desktop.screenshot("09-no-keychain").unwrap();
    desktop.wait_tray("failed", "tray-09-failed").unwrap();
    desktop.quit_app().unwrap();
    driver.finish();
}
