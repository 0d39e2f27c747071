//! The softphone's status in the real window and tray, end to end. The tray process runs the
//! edge proxy for the saved account's `[accounts.softphone]` table, registered at a real
//! Kamailio; Debian's baresip, a real softphone, signs in to it.
//! - The window shows "Softphone: baresip, answering" and the address the softphone points at.
//! - baresip killed, as a crash would (no un-REGISTER): the next check goes unanswered; the
//!   window says "not running", the tray icon asks for attention and its tooltip says why, while
//!   the extension stays registered at Kamailio.
//! - A window opened now shows it too (from `get_state`, not from a live event).
//! - baresip started again: answering, and the tray is back to registered.
//!
//! Screenshots: test-output/app/20-softphone-answering.png, 21-softphone-not-running.png.
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use vicifast_app_e2e::{wait_for, Desktop, Registrar, RegistrarOptions, WebDriver, WAIT};
use vicifast_e2e::softphone::{baresip_available, free_port_pair, Softphone, SoftphoneOptions};

fn baresip(ext: &str, password: &str, listen: &str) -> Softphone {
    Softphone::start(
        &SoftphoneOptions {
            user: ext.to_owned(),
            password: password.to_owned(),
            domain: "127.0.0.1".into(),
            outbound: format!("sip:{listen}"),
            regint: 60,
            tone: 440.0,
            auto_answer: true,
            tcp: false,
        },
        &[],
    )
    .unwrap()
}

/// Waits until the window's softphone card is in `state` and says `words`.
fn wait_card(driver: &WebDriver, state: &str, words: &str) {
    let script = format!(
        "const c = document.querySelector('#softphones .softphone[data-account=\"default\"]'); \
         return !!c && !document.getElementById('softphones').hidden \
           && c.dataset.state === {state:?} && c.textContent.includes({words:?});"
    );
    let shown = driver.wait_true(WAIT, &format!("the softphone card `{state}`"), &script);
    if shown.is_err() {
        let card = driver
            .exec("const c = document.getElementById('softphones'); return c ? c.textContent : '(none)';")
            .unwrap_or_default();
        panic!("the window does not show the softphone `{state}` ({words}): {card}");
    }
}

fn wait_tooltip(desktop: &Desktop, wanted: impl Fn(&str) -> bool, what: &str) {
    let mut last = String::new();
    let shown = wait_for(WAIT, what, || {
        last = desktop.tray().tooltip().unwrap_or_default();
        wanted(&last).then_some(())
    });
    assert!(shown.is_ok(), "{what}: tooltip {last}");
}

#[test]
fn the_window_and_the_tray_show_the_softphone() {
    let Some(logs) = vicifast_app_e2e::prepare("the_window_and_the_tray_show_the_softphone") else {
        return;
    };
    if !baresip_available() {
        vicifast_e2e::skip::skipped(
            "the_window_and_the_tray_show_the_softphone",
            "needs baresip-core with the aufile, sndfile, g711, menu, aubridge and ctrl_tcp modules (make test-e2e installs it)",
        );
        return;
    }
    let desktop = Desktop::start().unwrap();
    let registrar = Registrar::start(RegistrarOptions::default()).unwrap();
    let ext = vicifast_e2e::random_extension();
    let password = registrar.add_user(&ext).unwrap();
    desktop
        .account_set("default", &registrar, &ext, &password)
        .unwrap();
    let listen = format!("127.0.0.1:{}", free_port_pair());
    let mut config = std::fs::read_to_string(desktop.config_path()).unwrap();
    config.push_str(&format!("\n[accounts.softphone]\nlisten = \"{listen}\"\n"));
    desktop.write_config(&config).unwrap();

    let mut tray = desktop
        .spawn_tray(&[], &logs.join("app-softphone.log"))
        .unwrap();
    let registered = || (registrar.bindings(&ext).map(|b| b.len()).unwrap_or(0) == 1).then_some(());
    wait_for(WAIT, "the extension to register", registered)
        .unwrap_or_else(|e| panic!("{e}\n{}", registrar.log_tail()));

    // The softphone signs in to VICIfast and answers its checks.
    let mut phone = baresip(&ext, &password, &listen);
    let driver =
        WebDriver::launch(&desktop, &[], &logs.join("app-softphone-window-1.log")).unwrap();
    driver.wait_state("registered", WAIT).unwrap();
    wait_card(&driver, "answering", "Softphone: baresip, answering");
    wait_card(&driver, "answering", &listen);
    desktop.screenshot("20-softphone-answering").unwrap();
    desktop
        .wait_tray("registered", "tray-20-softphone-answering")
        .unwrap();
    wait_tooltip(
        &desktop,
        |t| t.contains("registered") && !t.contains("softphone"),
        "nothing to say about a softphone that answers",
    );

    // It crashes: the next check goes unanswered.
    phone.kill();
    wait_card(&driver, "not_answering", "Softphone: baresip, not running");
    wait_card(
        &driver,
        "not_answering",
        "calls are refused until it answers",
    );
    desktop.screenshot("21-softphone-not-running").unwrap();
    desktop
        .wait_tray("failed", "tray-21-softphone-not-running")
        .unwrap();
    wait_tooltip(
        &desktop,
        |t| {
            t.contains(&format!(
                "Extension {ext}: registered — softphone not running"
            ))
        },
        "the tooltip to say the softphone is not running",
    );
    assert!(registered().is_some(), "the extension stays registered");

    // A window opened now shows it from the state it fetches.
    desktop.close_app_window_and_wait().unwrap();
    driver.finish();
    let driver =
        WebDriver::launch(&desktop, &[], &logs.join("app-softphone-window-2.log")).unwrap();
    wait_card(&driver, "not_answering", "not running");

    // Started again: it signs in and answers; the tray is back to registered.
    let _phone = baresip(&ext, &password, &listen);
    wait_card(&driver, "answering", "Softphone: baresip, answering");
    desktop
        .wait_tray("registered", "tray-22-softphone-back")
        .unwrap();

    desktop.quit_app().unwrap();
    let _ = tray.wait();
    driver.finish();
}
