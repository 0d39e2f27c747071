//! Speed and memory of `vicifast-tray.exe` under Wine, the process agents' laptops run all day:
//! started with no window (as the login item starts it) with an account saved in Credential
//! Manager, against a real Kamailio on loopback UDP. Per run: time from start to its binding at
//! the registrar, its resident memory (VmRSS of the Wine process that runs it) once registered,
//! and time from `quit` on its pipe to the answer (given once the binding is gone).
//!
//! Usage: `bench_tray_windows [runs]` (default 5), inside tests/windows/run-under-wine.sh with
//! VICIFAST_WINDOWS_E2E=1, VICIFAST_CLI_EXE (for `account set`), VICIFAST_TRAY_EXE and
//! VICIFAST_TRAY_CALL_EXE (`make bench-windows`).

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use vicifast_e2e::wine::Wine;
use vicifast_e2e::{account_args, registrar_with_user, RegistrarOptions, Transport, WAIT};

fn main() -> ExitCode {
    vicifast_e2e::bench_main("bench_tray_windows", "runs", 5, 1..=usize::MAX, bench)
}

fn program(var: &str) -> Result<PathBuf, String> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .ok_or(format!("{var} names no built program (make bench-windows)"))
}

/// Polls `done` every few milliseconds until it holds; fails after [`WAIT`] saying `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    while !done()? {
        if Instant::now() > deadline {
            return Err(format!("{what} within {WAIT:?}"));
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    Ok(())
}

/// Ends a tray process a failed run left behind.
struct Tray(Child);

impl Drop for Tray {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bench(runs: usize) -> Result<(), String> {
    let tray_exe = program("VICIFAST_TRAY_EXE")?;
    let tray_call_exe = program("VICIFAST_TRAY_CALL_EXE")?;
    let wine = Wine::from_env()?.private_copy()?;
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut set = vec!["account".to_owned(), "set".to_owned(), "default".to_owned()];
    set.extend(account_args(&registrar, Transport::Udp, &ext));
    let saved = wine.run_cli(&set, &password, WAIT)?;
    if !saved.status.success() {
        return Err(format!("account set: {saved:?}"));
    }
    let bound = || {
        registrar
            .bindings(&ext)
            .map(|b| b.len())
            .map_err(|e| e.to_string())
    };

    let (mut to_registered, mut rss_kib, mut to_quit) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let start = Instant::now();
        let mut tray = Tray(
            Command::new("wine")
                .arg(&tray_exe)
                .arg("--no-window")
                .env("WINEPREFIX", wine.prefix())
                .env_remove(vicifast_e2e::PASSWORD_ENV)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("wine: {e}"))?,
        );
        wait_until("a binding at the registrar", || Ok(bound()? == 1))?;
        to_registered.push(start.elapsed());
        rss_kib.push(tray_rss_kib(tray.0.id())?);

        let asked = Instant::now();
        let exe = tray_call_exe.to_str().ok_or("tray_call.exe: not UTF-8")?;
        let answer = wine.run(&[exe, "quit"], WAIT)?;
        to_quit.push(asked.elapsed());
        if !answer.status.success() || bound()? != 0 {
            return Err(format!(
                "run {run}: quit did not remove the binding: {answer:?}"
            ));
        }
        wait_until("vicifast-tray.exe to exit after quit", || {
            Ok(tray.0.try_wait().map_err(|e| e.to_string())?.is_some())
        })?;
    }

    to_registered.sort();
    to_quit.sort();
    rss_kib.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let median = |v: &[Duration]| ms(v[v.len() / 2]);
    println!("vicifast-tray.exe under Wine, no window, loopback UDP against Kamailio, {runs} runs");
    println!(
        "start to binding: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        median(&to_registered),
        ms(to_registered[0]),
        ms(to_registered[runs - 1])
    );
    println!(
        "VmRSS once registered: median {:.1} MiB, max {:.1} MiB",
        mib(rss_kib[runs / 2]),
        mib(rss_kib[runs - 1])
    );
    println!(
        "quit over the pipe to its answer (binding gone): median {:.0} ms, max {:.0} ms",
        median(&to_quit),
        ms(to_quit[runs - 1])
    );
    Ok(())
}

/// Resident set size of the tray process in KiB, from /proc/<pid>/status: `wine` execs into the
/// process that runs the program, so the pid started is the program's (checked).
fn tray_rss_kib(pid: u32) -> Result<u64, String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&cmdline).contains("vicifast-tray.exe") {
        return Err(format!("process {pid} does not run vicifast-tray.exe"));
    }
    vicifast_e2e::proc_status_kib(pid, "VmRSS:")
}
