//! `make bench-mobility`: how long after a network change the registrar holds the client's new
//! binding, for VICIfast and for baresip, on the same scenarios in the same run.
//!
//! Usage: bench_mobility [--runs N] [--no-baresip] [--no-vicifast]   (needs root: network namespaces)
//!
//! VICIfast runs one trial at a time (it reacts in milliseconds, so it must not share the CPU
//! with other trials). baresip trials run in parallel, each in its own namespaces: Debian's
//! baresip 1.0 notices a change only by polling every 60 s, so each trial waits a random phase of
//! that cycle before the change, and running them one by one would take most of an hour.

use std::process::ExitCode;
use std::time::Duration;
use vicifast_e2e::netns::bench::{run_trial, summarize, BenchClient, BenchScenario, Trial};
use vicifast_e2e::netns::{
    baresip_has_netroam, baresip_version, cli_path, generate_password, have_root, NetnsError,
};

const SCENARIOS: [BenchScenario; 2] = [BenchScenario::RouteSwitch, BenchScenario::AddressChange];

struct Row {
    scenario: BenchScenario,
    client: BenchClient,
    runs: usize,
    results: Vec<Result<Trial, NetnsError>>,
}

fn main() -> ExitCode {
    let mut runs = 20usize;
    let mut with_baresip = true;
    let mut with_vicifast = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => runs = n,
                _ => return usage("--runs needs a positive number"),
            },
            "--no-baresip" => with_baresip = false,
            "--no-vicifast" => with_vicifast = false,
            "-h" | "--help" => {
                println!("usage: bench_mobility [--runs N] [--no-baresip] [--no-vicifast]");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    if !have_root("bench-mobility") {
        return ExitCode::SUCCESS;
    }
    if with_vicifast && !cli_path().exists() {
        eprintln!(
            "bench-mobility: {} not built (cargo build -p vicifast-cli)",
            cli_path().display()
        );
        return ExitCode::FAILURE;
    }
    if with_baresip && baresip_version().is_none() {
        eprintln!("bench-mobility: baresip not installed (make netns-deps); run with --no-baresip to skip it");
        return ExitCode::FAILURE;
    }

    let mut rows = Vec::new();
    for scenario in SCENARIOS.into_iter().filter(|_| with_vicifast) {
        eprintln!("vicifast: {} x{runs}", scenario.name());
        let results = (0..runs)
            .map(|i| {
                let r = run_trial(
                    BenchClient::Vicifast,
                    scenario,
                    Duration::ZERO,
                    Duration::from_secs(60),
                );
                progress(i, &r);
                r
            })
            .collect();
        rows.push(Row {
            scenario,
            client: BenchClient::Vicifast,
            runs,
            results,
        });
    }
    if with_baresip {
        eprintln!("baresip: {} trials in parallel (each waits a random part of baresip's 60 s network poll)", 2 * runs);
        let handles: Vec<_> = SCENARIOS
            .iter()
            .flat_map(|&scenario| (0..runs).map(move |_| scenario))
            .map(|scenario| {
                let phase = random_phase(Duration::from_secs(60));
                std::thread::spawn(move || {
                    (
                        scenario,
                        run_trial(
                            BenchClient::Baresip,
                            scenario,
                            phase,
                            Duration::from_secs(150),
                        ),
                    )
                })
            })
            .collect();
        let mut by_scenario: Vec<(BenchScenario, Vec<Result<Trial, NetnsError>>)> =
            SCENARIOS.iter().map(|&s| (s, Vec::new())).collect();
        for (i, h) in handles.into_iter().enumerate() {
            if let Ok((scenario, r)) = h.join() {
                progress(i, &r);
                if let Some((_, v)) = by_scenario.iter_mut().find(|(s, _)| *s == scenario) {
                    v.push(r);
                }
            }
        }
        for (scenario, results) in by_scenario {
            rows.push(Row {
                scenario,
                client: BenchClient::Baresip,
                runs,
                results,
            });
        }
    }
    print_table(&rows, with_baresip);
    ExitCode::SUCCESS
}

fn usage(msg: &str) -> ExitCode {
    eprintln!(
        "bench_mobility: {msg}\nusage: bench_mobility [--runs N] [--no-baresip] [--no-vicifast]"
    );
    ExitCode::from(2)
}

fn progress(i: usize, r: &Result<Trial, NetnsError>) {
    match r {
        Ok(t) => eprintln!(
            "  run {:>2}: {:>10.1} ms{}",
            i + 1,
            t.latency_ms,
            if t.stale_left {
                "  (stale binding left)"
            } else {
                ""
            }
        ),
        Err(e) => eprintln!("  run {:>2}: failed: {e}", i + 1),
    }
}

/// Uniform in [0, max): from the kernel's CSPRNG via the password generator (no RNG crate here).
fn random_phase(max: Duration) -> Duration {
    let hex = generate_password().unwrap_or_default();
    let n = u64::from_str_radix(&hex[..hex.len().min(12)], 16).unwrap_or(0);
    Duration::from_millis(n % max.as_millis().max(1) as u64)
}

fn print_table(rows: &[Row], with_baresip: bool) {
    println!();
    println!("Mobility benchmark: network change -> registrar saved the new binding");
    println!(
        "(change stamped by the harness, save() stamped by Kamailio $TV(Sn); both CLOCK_REALTIME)"
    );
    if with_baresip {
        println!(
            "baresip: {}; netroam module: {}",
            baresip_version().unwrap_or_else(|| "?".into()),
            if baresip_has_netroam() {
                "loaded"
            } else {
                "not in this build (polls the network every 60 s)"
            }
        );
    }
    println!();
    println!(
        "{:<34} {:<9} {:>5} {:>11} {:>11} {:>11} {:>11}",
        "scenario", "client", "ok", "p50 ms", "p95 ms", "max ms", "stale left"
    );
    println!("{}", "-".repeat(98));
    for row in rows {
        let ok: Vec<&Trial> = row.results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let lat: Vec<f64> = ok.iter().map(|t| t.latency_ms).collect();
        let stale = ok.iter().filter(|t| t.stale_left).count();
        let (p50, p95, max) = summarize(&lat).map_or(("-".into(), "-".into(), "-".into()), |s| {
            (
                format!("{:.1}", s.p50),
                format!("{:.1}", s.p95),
                format!("{:.1}", s.max),
            )
        });
        println!(
            "{:<34} {:<9} {:>5} {:>11} {:>11} {:>11} {:>11}",
            row.scenario.name(),
            row.client.name(),
            format!("{}/{}", ok.len(), row.runs),
            p50,
            p95,
            max,
            format!("{stale}/{}", ok.len())
        );
    }
    if with_baresip {
        println!();
        for scenario in SCENARIOS {
            let p50 = |c: BenchClient| {
                rows.iter()
                    .find(|r| r.scenario == scenario && r.client == c)
                    .and_then(|r| {
                        summarize(
                            &r.results
                                .iter()
                                .filter_map(|t| t.as_ref().ok())
                                .map(|t| t.latency_ms)
                                .collect::<Vec<_>>(),
                        )
                    })
                    .map(|s| s.p50)
            };
            match (p50(BenchClient::Baresip), p50(BenchClient::Vicifast)) {
                (Some(b), Some(v)) if v > 0.0 => {
                    println!(
                        "{:<34} baresip p50 / vicifast p50 = {:.0}x",
                        scenario.name(),
                        b / v
                    )
                }
                _ => println!(
                    "{:<34} ratio: n/a (a client had no successful run)",
                    scenario.name()
                ),
            }
        }
    }
}
