//! Speed and memory of `vicifast-cli register` on loopback UDP against a real Kamailio:
//! time from process start to the `registered` status (median of N runs), and the CLI's resident
//! memory (VmRSS) while registered.
//!
//! Usage: `bench_register [runs]` (default 20). The CLI is $VICIFAST_CLI or the `vicifast-cli`
//! beside this binary.

use std::process::ExitCode;
use std::time::{Duration, Instant};
use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

fn main() -> ExitCode {
    vicifast_e2e::bench_main("bench_register", "runs", 20, 1..=usize::MAX, bench)
}

fn bench(runs: usize) -> Result<(), String> {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let args = register_args(&registrar, Transport::Udp, &ext, &[]);
    let mut times = Vec::with_capacity(runs);
    let mut rss_kib = Vec::with_capacity(runs);
    for run in 1..=runs {
        let start = Instant::now();
        let mut cli = Cli::spawn(&args, &password).map_err(|e| e.to_string())?;
        cli.wait_for_state("registered", WAIT)?;
        times.push(start.elapsed());
        rss_kib.push(vicifast_e2e::proc_status_kib(cli.pid(), "VmRSS:")?);
        cli.interrupt()?;
        let status = cli.wait_exit(WAIT)?;
        if !status.success() {
            return Err(format!("run {run}: CLI exited with {status}"));
        }
        if !registrar
            .bindings(&ext)
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            return Err(format!("run {run}: binding left after SIGINT"));
        }
    }
    times.sort();
    rss_kib.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("vicifast-cli register, loopback UDP against Kamailio, {runs} runs");
    println!(
        "time to registered: median {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    println!(
        "VmRSS while registered: median {} KiB, max {} KiB",
        rss_kib[rss_kib.len() / 2],
        rss_kib[rss_kib.len() - 1]
    );
    Ok(())
}
