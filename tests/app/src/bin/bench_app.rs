//! `make bench-app`: memory of the whole VICIfast app while registered: started at login (the
//! tray process alone), with the window open (plus the window process and its WebKit children),
//! and closed to the tray again. PSS (proportional set size, /proc/<pid>/smaps_rollup) of every
//! process, so shared libraries are counted once across them.
//!
//! `VICIFAST_APP=<path>` measures another build (e.g. target/release/vicifast).
//!
//! Runs the real app on a private X display, session bus and Secret Service against a local
//! Kamailio, like the end-to-end test; settings are entered once through the real window.

use std::time::Duration;
use vicifast_app_e2e::{
    anon_pss_kib, command_name, output_dir, private_kib, process_tree, pss_kib,
    save_settings_in_ui, wait_for, AppTestError, Desktop, Registrar, RegistrarOptions, WebDriver,
    WAIT,
};

/// Samples per state; the figure is the median.
const SAMPLES: usize = 5;

/// What the issue measured for a minimal Tauri window with its WebKit processes, in MiB.
const REFERENCE_MIB: f64 = 256.0;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-app failed: {e}");
        std::process::exit(1);
    }
}

/// One process: name, PSS, private (USS) and anonymous PSS, in KiB.
type Part = (String, u64, u64, u64);

fn tree_pss(roots: &[u32]) -> (u64, Vec<Part>) {
    let mut pids: Vec<u32> = roots.iter().flat_map(|r| process_tree(*r)).collect();
    // The window process may be the tray process's child: count each process once.
    pids.sort_unstable();
    pids.dedup();
    let parts: Vec<Part> = pids
        .into_iter()
        .map(|p| {
            (
                format!("{} ({p})", command_name(p)),
                pss_kib(p),
                private_kib(p),
                anon_pss_kib(p),
            )
        })
        .collect();
    (parts.iter().map(|(_, k, _, _)| k).sum(), parts)
}

/// The median of a few samples taken 1 s apart (a measurement interval, not a wait).
fn measure(roots: &[u32]) -> (u64, Vec<Part>) {
    let mut samples = Vec::new();
    for i in 0..SAMPLES {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        samples.push(tree_pss(roots));
    }
    samples.sort_by_key(|s| s.0);
    samples.swap_remove(SAMPLES / 2)
}

fn print(label: &str, (total, parts): &(u64, Vec<Part>)) {
    let private: u64 = parts.iter().map(|(_, _, u, _)| u).sum();
    let anon: u64 = parts.iter().map(|(_, _, _, a)| a).sum();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{label}: {:.1} MiB PSS ({:.1} MiB private, {:.1} MiB anonymous; {:.0}% of the {REFERENCE_MIB:.0} MiB reference)",
        mib(*total),
        mib(private),
        mib(anon),
        100.0 * mib(*total) / REFERENCE_MIB
    );
    for (name, pss, uss, anon) in parts {
        println!(
            "    {name:<28} {:>8.1} MiB PSS {:>8.1} MiB private {:>8.1} MiB anonymous",
            mib(*pss),
            mib(*uss),
            mib(*anon)
        );
    }
}

fn run() -> Result<(), AppTestError> {
    let logs = output_dir();
    std::fs::create_dir_all(&logs).map_err(|e| AppTestError::Setup(e.to_string()))?;
    let desktop = Desktop::start()?;
    let registrar = Registrar::start(RegistrarOptions::default())
        .map_err(|e| AppTestError::Setup(e.to_string()))?;
    let ext = vicifast_e2e::random_extension();
    let password = registrar
        .add_user(&ext)
        .map_err(|e| AppTestError::Setup(e.to_string()))?;
    let registered = |n: usize| {
        let (registrar, ext) = (&registrar, &ext);
        move || (registrar.bindings(ext).map(|b| b.len()).unwrap_or(0) == n).then_some(())
    };

    // Save the account once through the window, then quit.
    let driver = WebDriver::launch(&desktop, &[], &logs.join("bench-setup.log"))?;
    save_settings_in_ui(&driver, &registrar, &ext, &password)?;
    driver.wait_state("registered", WAIT)?;
    desktop.quit_app()?;
    driver.finish();
    wait_for(WAIT, "the binding to go", registered(0))?;

    // As at login: the tray process alone registers from the keychain.
    let mut child = desktop.spawn_tray(&[], &logs.join("bench-app.log"))?;
    let tray = child.id();
    wait_for(WAIT, "registration", registered(1))?;
    desktop.wait_tray("registered", "bench-tray")?;
    let at_login = measure(&[tray]);

    // The agent opens the window from the tray.
    desktop.click_tray_menu("Open window")?;
    wait_for(WAIT, "the window", || {
        desktop.has_app_window().then_some(())
    })?;
    let window = wait_for(WAIT, "the window process", || {
        desktop.window_pids().first().copied()
    })?;
    wait_for(WAIT, "the WebKit web process", || {
        process_tree(window)
            .iter()
            .any(|p| command_name(*p).starts_with("WebKitWeb"))
            .then_some(())
    })?;
    let open = measure(&[tray, window]);

    desktop.close_app_window_and_wait()?;
    wait_for(WAIT, "the window process to end", || {
        desktop.window_pids().is_empty().then_some(())
    })?;
    let closed = measure(&[tray]);

    println!(
        "VICIfast app memory while registered ({} and {}, median of {SAMPLES} samples):",
        vicifast_app_e2e::tray_binary().display(),
        vicifast_app_e2e::app_binary().display()
    );
    print("started at login (tray only)", &at_login);
    print("window open", &open);
    print("closed to tray", &closed);
    println!(
        "(PSS splits shared pages among the processes mapping them, so compare the totals. \
         Anonymous memory is what the processes allocated; the rest is mapped library code and data.)"
    );

    desktop.quit_app()?;
    wait_for(WAIT, "the app to quit", || child.try_wait().ok().flatten())?;
    Ok(())
}
