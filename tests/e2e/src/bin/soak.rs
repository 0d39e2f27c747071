//! Soak: thousands of refresh cycles of `vicifast-cli register` against a real Kamailio on
//! loopback, while each CLI's resident memory (VmRSS) and open file descriptors are sampled.
//!
//! One CLI refreshes at most 12 times a minute (the pacing rule's REGISTER ceiling), so the soak
//! runs several CLIs side by side, each its own extension with a short expiry, to reach
//! thousands of refresh cycles in minutes. For each CLI it takes a baseline once it has refreshed
//! a few times (allocator pools and the async runtime have settled by then), then samples until
//! the end. It fails when any CLI stops being registered, or ends with more file descriptors
//! than at its baseline, or with resident memory grown past a margin.
//!
//! Usage: `soak [--clients N] [--minutes M] [--expires S] [--transport udp|tcp|tls]`
//! (defaults: 40 clients, 8 minutes, 16 s, udp). The CLI is $VICIFAST_CLI or the `vicifast-cli`
//! beside this binary.

use std::process::ExitCode;
use std::time::{Duration, Instant};
use vicifast_e2e::{random_extension, register_args, Cli, Registrar, RegistrarOptions, Transport};

/// Refresh cycles each CLI completes before its baseline is taken.
const WARM_UP_CYCLES: usize = 3;
/// Resident memory a CLI may gain between its baseline and the end without failing the soak:
/// allocator noise, not a leak (a leak of even 1 KiB per cycle over a run would pass it).
const RSS_MARGIN_KIB: u64 = 1024;
/// How often every CLI is sampled: a measurement period, not a wait for anything.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

struct Options {
    clients: usize,
    minutes: u64,
    expires: u32,
    transport: Transport,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        clients: 40,
        minutes: 8,
        expires: 16,
        transport: Transport::Udp,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: `{value}` is not a positive number"))
        };
        match flag.as_str() {
            "--clients" => options.clients = number()? as usize,
            "--minutes" => options.minutes = number()?,
            "--expires" => {
                options.expires = u32::try_from(number()?).map_err(|_| "--expires too large")?
            }
            "--transport" => {
                options.transport = match value.as_str() {
                    "udp" => Transport::Udp,
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    _ => return Err(format!("--transport: `{value}` is not udp, tcp or tls")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(err) => {
            eprintln!("soak: {err}\nusage: soak [--clients N] [--minutes M] [--expires S] [--transport udp|tcp|tls]");
            return ExitCode::from(2);
        }
    };
    match soak(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("soak: FAILED: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One resource reading of one CLI.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kib: u64,
    fds: usize,
}

struct Client {
    ext: String,
    cli: Cli,
    /// The first sample, before the warm-up cycles.
    first: Option<Sample>,
    baseline: Option<Sample>,
    /// The first sample in the second half of the run: a leak grows in both halves.
    mid: Option<Sample>,
    last: Option<Sample>,
    peak_rss_kib: u64,
    peak_fds: usize,
}

impl Client {
    /// Refresh cycles completed: statuses the CLI printed with cause `refreshed`.
    fn cycles(&self) -> usize {
        self.cli
            .stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["cause"] == "refreshed")
            .count()
    }

    fn last_state(&self) -> Option<String> {
        self.cli
            .stdout_lines()
            .iter()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["state"].as_str().map(str::to_owned))
    }
}

fn soak(options: &Options) -> Result<(), String> {
    let registrar = Registrar::start(RegistrarOptions {
        min_expires: 1,
        ..RegistrarOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let expires = options.expires.to_string();
    let mut clients = Vec::with_capacity(options.clients);
    for _ in 0..options.clients {
        let ext = unique_extension(&clients);
        let password = registrar.add_user(&ext).map_err(|e| e.to_string())?;
        let args = register_args(
            &registrar,
            options.transport,
            &ext,
            &["--expires", &expires],
        );
        let cli = Cli::spawn(&args, &password).map_err(|e| e.to_string())?;
        clients.push(Client {
            ext,
            cli,
            first: None,
            baseline: None,
            mid: None,
            last: None,
            peak_rss_kib: 0,
            peak_fds: 0,
        });
    }
    println!(
        "soak: {} × vicifast-cli register over {} against Kamailio on loopback, expires {} s, {} min",
        options.clients, options.transport, options.expires, options.minutes
    );
    let start = Instant::now();
    let end = start + Duration::from_secs(options.minutes * 60);
    let half = start + Duration::from_secs(options.minutes * 30);
    let mut next_report = start + Duration::from_secs(60);
    while Instant::now() < end {
        for client in &mut clients {
            let sample =
                sample(client.cli.pid()).map_err(|e| format!("extension {}: {e}", client.ext))?;
            client.peak_rss_kib = client.peak_rss_kib.max(sample.rss_kib);
            client.peak_fds = client.peak_fds.max(sample.fds);
            client.first.get_or_insert(sample);
            if client.baseline.is_none() && client.cycles() >= WARM_UP_CYCLES {
                client.baseline = Some(sample);
            }
            if Instant::now() >= half && client.baseline.is_some() {
                client.mid.get_or_insert(sample);
            }
            client.last = Some(sample);
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(60);
            let cycles: usize = clients.iter().map(Client::cycles).sum();
            println!(
                "  {:>3} min: {cycles} refresh cycles so far",
                start.elapsed().as_secs() / 60
            );
        }
        std::thread::park_timeout(SAMPLE_EVERY);
    }
    report(&registrar, &mut clients, start.elapsed())
}

fn report(registrar: &Registrar, clients: &mut [Client], elapsed: Duration) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut cycles_total = 0;
    println!(
        "\n{:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>6} {:>6} {:>6}",
        "ext",
        "cycles",
        "rss start",
        "rss mid",
        "rss end",
        "rss peak",
        "growth",
        "fd st",
        "fd end",
        "fd pk"
    );
    for client in clients.iter() {
        let cycles = client.cycles();
        cycles_total += cycles;
        let (Some(base), Some(last)) = (client.baseline, client.last) else {
            problems.push(format!(
                "extension {}: only {cycles} refresh cycles (state {:?})",
                client.ext,
                client.last_state()
            ));
            continue;
        };
        let growth = last.rss_kib as i64 - base.rss_kib as i64;
        println!(
            "{:>6} {cycles:>7} {:>7} KiB {:>7} KiB {:>7} KiB {:>7} KiB {growth:>+5} KiB {:>6} {:>6} {:>6}",
            client.ext,
            base.rss_kib,
            client.mid.map_or(0, |m| m.rss_kib),
            last.rss_kib,
            client.peak_rss_kib,
            base.fds,
            last.fds,
            client.peak_fds
        );
        if last.rss_kib > base.rss_kib + RSS_MARGIN_KIB {
            problems.push(format!(
                "extension {}: resident memory grew {growth} KiB ({} → {} KiB) over {cycles} cycles",
                client.ext, base.rss_kib, last.rss_kib
            ));
        }
        if last.fds > base.fds {
            problems.push(format!(
                "extension {}: open file descriptors grew {} → {}",
                client.ext, base.fds, last.fds
            ));
        }
        if client.last_state().as_deref() != Some("registered") {
            problems.push(format!(
                "extension {}: ended {:?}, not registered",
                client.ext,
                client.last_state()
            ));
        }
    }
    let rss = |f: fn(&Client) -> Option<u64>| -> Vec<u64> {
        let mut v: Vec<u64> = clients.iter().filter_map(f).collect();
        v.sort_unstable();
        v
    };
    let firsts = rss(|c| c.first.map(|s| s.rss_kib));
    let starts = rss(|c| c.baseline.map(|s| s.rss_kib));
    let growth = |f: fn(&Client) -> Option<i64>| -> Vec<i64> {
        let mut v: Vec<i64> = clients.iter().filter_map(f).collect();
        v.sort_unstable();
        v
    };
    let first_half = growth(|c| Some(c.mid?.rss_kib as i64 - c.baseline?.rss_kib as i64));
    let second_half = growth(|c| Some(c.last?.rss_kib as i64 - c.mid?.rss_kib as i64));
    let ends = rss(|c| c.last.map(|s| s.rss_kib));
    let peaks = rss(|c| Some(c.peak_rss_kib));
    let median = |v: &[u64]| v.get(v.len() / 2).copied().unwrap_or(0);
    let max = |v: &[u64]| v.last().copied().unwrap_or(0);
    let fd_start = clients
        .iter()
        .filter_map(|c| c.baseline.map(|s| s.fds))
        .max();
    let fd_end = clients.iter().filter_map(|c| c.last.map(|s| s.fds)).max();
    let fd_peak = clients.iter().map(|c| c.peak_fds).max();
    println!(
        "\nsoak: {cycles_total} refresh cycles in {:.1} min across {} CLIs",
        elapsed.as_secs_f64() / 60.0,
        clients.len()
    );
    println!(
        "VmRSS per CLI at the first sample: median {} KiB (max {})",
        median(&firsts),
        max(&firsts)
    );
    println!(
        "VmRSS per CLI after {WARM_UP_CYCLES} cycles (start): median {} KiB (max {}), end median {} KiB (max {}), peak max {} KiB",
        median(&starts),
        max(&starts),
        median(&ends),
        max(&ends),
        max(&peaks)
    );
    println!(
        "VmRSS growth per CLI, median: first half {:+} KiB, second half {:+} KiB",
        first_half.get(first_half.len() / 2).copied().unwrap_or(0),
        second_half.get(second_half.len() / 2).copied().unwrap_or(0)
    );
    println!(
        "open fds per CLI (max over CLIs): start {}, end {}, peak {}",
        fd_start.unwrap_or(0),
        fd_end.unwrap_or(0),
        fd_peak.unwrap_or(0)
    );
    for client in clients.iter_mut() {
        client.cli.interrupt()?;
    }
    for client in clients.iter_mut() {
        let status = client.cli.wait_exit(vicifast_e2e::WAIT)?;
        if !status.success() {
            problems.push(format!(
                "extension {}: CLI exited with {status}",
                client.ext
            ));
        }
        let left = registrar.bindings(&client.ext).map_err(|e| e.to_string())?;
        if !left.is_empty() {
            problems.push(format!(
                "extension {}: {} binding(s) left after SIGINT",
                client.ext,
                left.len()
            ));
        }
    }
    if problems.is_empty() {
        println!("soak: memory and file descriptors flat; every CLI unregistered on SIGINT");
        Ok(())
    } else {
        Err(problems.join("\n  "))
    }
}

/// A random extension no other client of this soak has.
fn unique_extension(clients: &[Client]) -> String {
    loop {
        let ext = random_extension();
        if clients.iter().all(|c| c.ext != ext) {
            return ext;
        }
    }
}

fn sample(pid: u32) -> Result<Sample, String> {
    let path = format!("/proc/{pid}/status");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e} (did the CLI exit?)"))?;
    let rss_kib = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in {path}"))?;
    let fd_dir = format!("/proc/{pid}/fd");
    let fds = std::fs::read_dir(&fd_dir)
        .map_err(|e| format!("{fd_dir}: {e}"))?
        .count();
    Ok(Sample { rss_kib, fds })
}
