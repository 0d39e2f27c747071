//! `make bench-fleet`: a PBX's view of VICIfast. N registrations (distinct users, UDP, digest
//! auth) in one process against a real Kamailio on loopback:
//!
//! 1. cold start: the agents log in at `--rate` per second;
//! 2. registrar restart: Kamailio is stopped and started again, losing every binding;
//! 3. broken path: every packet to and from the registrar is dropped (nftables) for
//!    `--drop-secs`, then let through again (needs root; skipped with a message otherwise);
//!
//! and for each, how the REGISTERs and the returning registrations spread over time: the busiest
//! second, and the time until half, 95 % and all of the fleet are registered again. Then SIPp
//! registers N other users (same registrar, same digest auth, same rate) and the CPU time per
//! registration of both is compared.
//!
//! Usage: bench_fleet [--sizes "100 1000 10000"] [--drop-secs 60] [--expires 60] [--rate 1000]
//!                    [--transport udp|tcp] [--no-sipp]

use std::process::ExitCode;
use std::time::{Duration, Instant};
use vicifast_e2e::fleet::outage::PathDrop;
use vicifast_e2e::fleet::sipp::{register_users, SippRun};
use vicifast_e2e::fleet::{
    process_cpu, process_footprint, raise_open_files, Fleet, FleetOptions, Spread,
};
use vicifast_e2e::netns::have_root;
use vicifast_e2e::{derived_password, random_password, Registrar, RegistrarOptions};
use vicifast_engine::Transport;

/// File descriptors per registration: its UDP socket (the network monitor is one per process).
const FDS_PER_REGISTRATION: u64 = 1;
const FDS_SPARE: u64 = 256;
/// How long a phase may take beyond what the pacing rule explains, before it is reported as
/// not finished (the benchmark always ends by itself).
const SLACK: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
struct Settings {
    sizes: Vec<usize>,
    drop_for: Duration,
    expires: Duration,
    rate: u32,
    sipp: bool,
    transport: Transport,
}

fn main() -> ExitCode {
    let settings = match parse_args() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("bench_fleet: {message}");
            eprintln!(
                "usage: bench_fleet [--sizes \"100 1000 10000\"] [--drop-secs 60] [--expires 60] \
                 [--rate 1000] [--transport udp|tcp] [--no-sipp]"
            );
            return ExitCode::from(2);
        }
    };
    let root = have_root("bench-fleet (broken-path phase)");
    let mut rows = Vec::new();
    for &size in &settings.sizes {
        eprintln!("bench_fleet: {size} registrations");
        match bench_size(size, &settings, root) {
            Ok(row) => {
                print_row(&row, &settings);
                rows.push(row);
            }
            Err(err) => {
                eprintln!("bench_fleet: {size} registrations: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_summary(&rows, &settings);
    ExitCode::SUCCESS
}

fn parse_args() -> Result<Settings, String> {
    let mut settings = Settings {
        sizes: vec![100, 1_000, 10_000],
        drop_for: Duration::from_secs(60),
        expires: Duration::from_secs(60),
        rate: 1_000,
        sipp: true,
        transport: Transport::Udp,
    };
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> Result<u64, String> {
        value
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("{flag} needs a whole number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                let list = args.next().unwrap_or_default();
                settings.sizes = list
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().ok().filter(|&n: &usize| n > 0))
                    .collect::<Option<Vec<usize>>>()
                    .filter(|v| !v.is_empty())
                    .ok_or("--sizes needs positive whole numbers, e.g. \"100 1000\"")?;
            }
            "--drop-secs" => settings.drop_for = Duration::from_secs(number(&arg, args.next())?),
            "--expires" => {
                let secs = number(&arg, args.next())?;
                if !(30..=3600).contains(&secs) {
                    return Err("--expires must be between 30 and 3600 seconds".to_owned());
                }
                settings.expires = Duration::from_secs(secs);
            }
            "--rate" => {
                settings.rate = u32::try_from(number(&arg, args.next())?)
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or("--rate must be a positive number of registrations per second")?;
            }
            "--no-sipp" => settings.sipp = false,
            "--transport" => {
                settings.transport = match args.next().as_deref() {
                    Some("udp") => Transport::Udp,
                    Some("tcp") => Transport::Tcp,
                    _ => return Err("--transport takes udp or tcp".to_owned()),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(settings)
}

/// Everything measured for one fleet size.
struct Row {
    size: usize,
    cold: Phase,
    restart: Phase,
    /// `None` without root.
    path_drop: Option<Phase>,
    /// REGISTERs the whole fleet sent while the path was down.
    registers_while_down: u64,
    rss_kib: u64,
    fds: usize,
    kamailio_contacts: Option<u64>,
    sipp: Option<Result<SippRun, String>>,
}

struct Phase {
    spread: Spread,
    cpu: Duration,
}

fn bench_size(size: usize, settings: &Settings, root: bool) -> Result<Row, String> {
    let wanted = size as u64 * FDS_PER_REGISTRATION + FDS_SPARE;
    let limit = raise_open_files(wanted);
    if limit < wanted {
        return Err(format!(
            "needs {wanted} open files but the limit is {limit} (raise it with `ulimit -n`)"
        ));
    }
    let key = random_password();
    let mut registrar = Registrar::start(RegistrarOptions {
        derived_password_key: Some(key.clone()),
        // Bindings and transactions of 10,000 users need more than the test default.
        shared_memory_mib: 48 + u32::try_from(size / 100).unwrap_or(u32::MAX),
        max_tcp_connections: (settings.transport == Transport::Tcp)
            .then(|| u32::try_from(size + 256).unwrap_or(u32::MAX)),
        ..RegistrarOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let options = FleetOptions {
        size,
        registrar: ([127, 0, 0, 1], registrar.udp_port()).into(),
        transport: settings.transport,
        user_prefix: "f".to_owned(),
        password_key: key.clone(),
        expires: settings.expires,
        start_rate: settings.rate,
    };

    // (a) Cold start.
    let cpu = process_cpu();
    let start = Instant::now();
    let fleet = Fleet::start(&options).map_err(|e| format!("starting the runtime: {e}"))?;
    let logins = Duration::from_secs_f64(size as f64 / f64::from(settings.rate));
    let done = wait_all_back(&fleet, logins + SLACK);
    let cold = Phase {
        spread: fleet.recorder().spread(start, start, done),
        cpu: process_cpu().saturating_sub(cpu),
    };
    let (rss_kib, fds) = process_footprint();
    let kamailio_contacts = registrar
        .statistic("usrloc:location_contacts")
        .map_err(|err| eprintln!("  cannot read Kamailio's binding count: {err}"))
        .ok();
    eprintln!("  cold start done: {}/{size} registered", cold.spread.back);
    if cold.spread.back < size {
        return Err(format!(
            "only {} of {size} registered from cold\n--- Kamailio log tail ---\n{}",
            cold.spread.back,
            registrar.log_tail()
        ));
    }

    // (b) Registrar restart: bindings are in memory, so every one is lost. Over UDP nothing
    // tells a client; each finds out at its next refresh. Over TCP every connection closes at
    // once: the correlated failure that the quick retries' jitter must spread out.
    let cpu = process_cpu();
    let phase = fleet.recorder().begin_phase();
    registrar.restart().map_err(|e| e.to_string())?;
    let up = Instant::now();
    let done = wait_all_back(&fleet, settings.expires + SLACK);
    let restart = Phase {
        spread: fleet.recorder().spread(phase, up, done),
        cpu: process_cpu().saturating_sub(cpu),
    };
    eprintln!("  restart done: {}/{size} back", restart.spread.back);

    // (c) Broken path, then restored.
    let mut registers_while_down = 0;
    let path_drop = if root {
        let cpu = process_cpu();
        let phase = fleet.recorder().begin_phase();
        let outage = PathDrop::start(registrar.udp_port()).map_err(|e| e.to_string())?;
        wait_for(settings.drop_for, || false);
        outage.end();
        let restored = Instant::now();
        registers_while_down = fleet.recorder().registers_between(phase, restored);
        // The longest wait the backoff can have reached by then, plus a refresh's worth.
        let done = wait_all_back(&fleet, settings.drop_for * 2 + settings.expires + SLACK);
        eprintln!(
            "  broken path done: {}/{size} back",
            fleet.recorder().back()
        );
        Some(Phase {
            spread: fleet.recorder().spread(phase, restored, done),
            cpu: process_cpu().saturating_sub(cpu),
        })
    } else {
        None
    };
    drop(fleet);

    // SIPp: the same registrations (other users, so the bindings do not mix) at the same rate.
    let sipp = settings.sipp.then(|| {
        let users: Vec<(String, String)> = (0..size)
            .map(|i| {
                let user = format!("s{i:05}");
                let password = derived_password(&key, &user);
                (user, password)
            })
            .collect();
        register_users(
            ([127, 0, 0, 1], registrar.udp_port()).into(),
            settings.transport,
            &users,
            settings.expires,
            settings.rate,
            logins + SLACK,
        )
    });
    Ok(Row {
        size,
        cold,
        restart,
        path_drop,
        registers_while_down,
        rss_kib,
        fds,
        kamailio_contacts,
        sipp,
    })
}

/// Waits until every registration is back (or `deadline` passes); returns when it stopped.
fn wait_all_back(fleet: &Fleet, deadline: Duration) -> Instant {
    let size = fleet.recorder().back_target();
    wait_for(deadline, || fleet.recorder().back() >= size);
    Instant::now()
}

/// Polls `done` until it holds or `deadline` passes.
fn wait_for(deadline: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !done() && Instant::now() < end {
        std::thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn micros_per(cpu: Duration, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    cpu.as_secs_f64() * 1e6 / count as f64
}

fn print_row(row: &Row, settings: &Settings) {
    println!();
    println!(
        "Fleet of {} registrations ({}, digest auth, expires {} s, logins at {}/s) against Kamailio on loopback",
        row.size,
        settings.transport.to_string().to_uppercase(),
        settings.expires.as_secs(),
        settings.rate
    );
    println!(
        "{:<28} {:>9} {:>10} {:>11} {:>9} {:>9} {:>9} {:>8} {:>12}",
        "phase",
        "REGISTERs",
        "peak REG/s",
        "peak back/s",
        "50% back",
        "95% back",
        "all back",
        "back",
        "CPU/reg"
    );
    let line = |name: &str, phase: &Phase| {
        let s = &phase.spread;
        println!(
            "{:<28} {:>9} {:>10} {:>11} {:>9} {:>9} {:>9} {:>8} {:>9.0} µs",
            name,
            s.registers,
            s.peak_registers_per_second,
            s.peak_back_per_second,
            secs(s.half_back),
            secs(s.most_back),
            secs(s.all_back),
            format!("{}/{}", s.back, s.size),
            micros_per(phase.cpu, s.size as u64),
        );
    };
    line("cold start", &row.cold);
    line("registrar restart", &row.restart);
    match &row.path_drop {
        Some(phase) => line(
            &format!("paths dropped {} s", settings.drop_for.as_secs()),
            phase,
        ),
        None => println!("paths dropped: skipped (needs root for nftables)"),
    }
    if row.path_drop.is_some() {
        let minutes = settings.drop_for.as_secs_f64().max(1.0) / 60.0;
        println!(
            "  while the path was down: {} REGISTERs, {:.1} per registration per minute",
            row.registers_while_down,
            row.registers_while_down as f64 / row.size as f64 / minutes
        );
    }
    println!(
        "  process while registered: {} KiB resident ({:.1} KiB per registration), {} open files; Kamailio held {} bindings",
        row.rss_kib,
        row.rss_kib as f64 / row.size as f64,
        row.fds,
        row.kamailio_contacts.map_or_else(|| "?".to_owned(), |c| c.to_string())
    );
    match &row.sipp {
        None => {}
        Some(Err(err)) => println!("  SIPp: {err}"),
        Some(Ok(run)) => {
            let vicifast = micros_per(row.cold.cpu, row.size as u64);
            let sipp = micros_per(run.cpu, run.succeeded);
            println!(
                "  SIPp, same load: {}/{} registered ({} failed) in {:.1} s, {:.0} µs CPU per registration; \
                 VICIfast/SIPp CPU per registration (cold start) = {:.2}",
                run.succeeded,
                row.size,
                run.failed,
                run.wall.as_secs_f64(),
                sipp,
                if sipp > 0.0 { vicifast / sipp } else { f64::NAN }
            );
        }
    }
}

fn print_summary(rows: &[Row], settings: &Settings) {
    println!();
    println!(
        "Fleet summary ({}, expires {} s, logins at {}/s, path dropped {} s); times from the registrar's (or the path's) return",
        settings.transport.to_string().to_uppercase(),
        settings.expires.as_secs(),
        settings.rate,
        settings.drop_for.as_secs()
    );
    println!(
        "{:>6} | {:>9} {:>9} | {:>10} {:>9} | {:>10} {:>9} | {:>9} {:>9} {:>7}",
        "N",
        "cold peak",
        "cold all",
        "rst peak/s",
        "rst all",
        "drop peak/s",
        "drop all",
        "CPU/reg",
        "SIPp",
        "ratio"
    );
    for row in rows {
        let vicifast = micros_per(row.cold.cpu, row.size as u64);
        let sipp = match &row.sipp {
            Some(Ok(run)) => Some(micros_per(run.cpu, run.succeeded)),
            _ => None,
        };
        let (drop_peak, drop_all) = row.path_drop.as_ref().map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |p| {
                (
                    p.spread.peak_registers_per_second.to_string(),
                    secs(p.spread.all_back),
                )
            },
        );
        println!(
            "{:>6} | {:>9} {:>9} | {:>10} {:>9} | {:>11} {:>9} | {:>6.0} µs {:>6} {:>7}",
            row.size,
            row.cold.spread.peak_registers_per_second,
            secs(row.cold.spread.all_back),
            row.restart.spread.peak_registers_per_second,
            secs(row.restart.spread.all_back),
            drop_peak,
            drop_all,
            vicifast,
            sipp.map_or_else(|| "-".to_owned(), |s| format!("{s:.0} µs")),
            sipp.filter(|&s| s > 0.0)
                .map_or_else(|| "-".to_owned(), |s| format!("{:.2}", vicifast / s)),
        );
    }
}
