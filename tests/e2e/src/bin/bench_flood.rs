//! What a flood on the TCP flow costs `vicifast-cli register`: a registrar (a loopback stand-in)
//! that, once the REGISTER arrives, sends
//!
//! 1. `MB` megabytes of tiny responses (37 bytes each): the CLI's peak and final resident memory;
//! 2. `MB` megabytes of RFC 5626 CRLFCRLF pings: the CLI's CPU time and the pongs it wrote back;
//!
//! and, for both, how much the CLI logged at its default level.
//!
//! Each flood ends with an OPTIONS the CLI must answer, so the figures are read once it has
//! worked through everything. Usage: `bench_flood [MB]` (default 51, the size in issue 8). The
//! CLI is $VICIFAST_CLI or the `vicifast-cli` beside this binary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vicifast_e2e::{random_password, Cli, WAIT};

const TINY_RESPONSE: &[u8] = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
const PING: &[u8] = b"\r\n\r\n";
/// How long one flood may take before the run is called off.
const FLOOD_LIMIT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let mb: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 51,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: bench_flood [MB]");
            return ExitCode::from(2);
        }
    };
    let cli = std::env::var("VICIFAST_CLI").unwrap_or_else(|_| "vicifast-cli".into());
    println!("vicifast-cli register over TCP, flooded by a loopback registrar ({cli})");
    for (what, unit) in [("tiny responses", TINY_RESPONSE), ("CRLFCRLF pings", PING)] {
        match flood(mb, unit) {
            Ok(f) => println!(
                "{mb} MB of {what} ({} units): RSS {} MB before, peak {} MB, {} MB after; \
                 CPU {:.2} s; pongs written {}; log {} lines, {} bytes; {:.1} s",
                f.units,
                f.rss_before_kib / 1024,
                f.peak_kib / 1024,
                f.rss_after_kib / 1024,
                f.cpu_s,
                f.pongs,
                f.log_lines,
                f.log_bytes,
                f.elapsed.as_secs_f64()
            ),
            Err(err) => {
                eprintln!("bench_flood: {what}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

struct Figures {
    units: usize,
    rss_before_kib: u64,
    peak_kib: u64,
    rss_after_kib: u64,
    cpu_s: f64,
    pongs: u64,
    /// What the CLI wrote to stderr (warnings, the default level) during the run.
    log_lines: usize,
    log_bytes: usize,
    elapsed: Duration,
}

fn flood(mb: usize, unit: &[u8]) -> Result<Figures, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let registrar = format!("sip:127.0.0.1:{port};transport=tcp");
    let args = [
        "register",
        "--registrar",
        &registrar,
        "--user",
        "101",
        "--expires",
        "3600",
    ];
    let mut cli = Cli::spawn(&args, &random_password()).map_err(|e| e.to_string())?;
    let result = flood_cli(&listener, &cli, mb, unit);
    let _ = cli.kill_hard();
    result
}

fn flood_cli(listener: &TcpListener, cli: &Cli, mb: usize, unit: &[u8]) -> Result<Figures, String> {
    let pid = cli.pid();
    let mut stream = accept(listener)?;
    stream
        .set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    // The REGISTER: read up to the end of its headers (it has no body).
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("no REGISTER: {e}"))?;
        if n == 0 {
            return Err("the CLI closed before registering".into());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    // Registered for an hour: no refresh or timeout falls inside the flood.
    stream
        .write_all(&ok_to(&seen)?)
        .map_err(|e| e.to_string())?;
    // From here the CLI may be silent for long while it works through a flood; the flood's
    // own limit applies instead.
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    let rss_before_kib = vicifast_e2e::proc_status_kib(pid, "VmRSS:")?;
    let cpu_before = cpu_ticks(pid)?;
    let (done_tx, done_rx) = mpsc::channel();
    let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let _ = done_tx.send(read_answers(&mut reader));
    });

    let units = mb * 1024 * 1024 / unit.len();
    let chunk: Vec<u8> = unit.repeat(64 * 1024 / unit.len());
    let per_chunk = 64 * 1024 / unit.len();
    let started = Instant::now();
    let mut sent = 0;
    while sent < units {
        let n = per_chunk.min(units - sent);
        stream
            .write_all(&chunk[..n * unit.len()])
            .map_err(|e| format!("the CLI stopped reading after {sent} units: {e}"))?;
        sent += n;
    }
    let options = format!(
        "OPTIONS sip:101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{};branch=z9hG4bK-flood-done\r\n\
         From: <sip:registrar@127.0.0.1>;tag=flood\r\nTo: <sip:101@127.0.0.1>\r\n\
         Call-ID: flood-done\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        listener.local_addr().map_err(|e| e.to_string())?.port()
    );
    stream
        .write_all(options.as_bytes())
        .map_err(|e| e.to_string())?;
    let pongs = done_rx
        .recv_timeout(FLOOD_LIMIT)
        .map_err(|_| "no answer to the closing OPTIONS".to_owned())??;
    let elapsed = started.elapsed();
    let cpu_s = (cpu_ticks(pid)? - cpu_before) as f64 / 100.0;
    let log = cli.stderr();
    Ok(Figures {
        units,
        rss_before_kib,
        peak_kib: vicifast_e2e::proc_status_kib(pid, "VmHWM:")?,
        rss_after_kib: vicifast_e2e::proc_status_kib(pid, "VmRSS:")?,
        cpu_s,
        pongs,
        log_lines: log.lines().count(),
        log_bytes: log.len(),
        elapsed,
    })
}

/// A 200 OK granting the REGISTER in `request` for an hour.
fn ok_to(request: &[u8]) -> Result<Vec<u8>, String> {
    let text = String::from_utf8_lossy(request);
    let header = |name: &str| {
        text.lines()
            .find(|l| {
                l.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            })
            .map(str::to_owned)
            .ok_or_else(|| format!("the REGISTER has no {name}"))
    };
    let contact = header("Contact")?;
    let contact = contact
        .split_once(':')
        .map(|(_, v)| v.trim())
        .unwrap_or_default();
    let contact = contact.split(";expires").next().unwrap_or(contact);
    Ok(format!(
        "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{};tag=flood\r\n{}\r\n{}\r\nContact: {contact};expires=3600\r\n\
         Content-Length: 0\r\n\r\n",
        header("Via")?,
        header("From")?,
        header("To")?,
        header("Call-ID")?,
        header("CSeq")?,
    )
    .into_bytes())
}

fn accept(listener: &TcpListener) -> Result<TcpStream, String> {
    listener.set_nonblocking(false).map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    let listener = listener.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    rx.recv_timeout(WAIT)
        .map_err(|_| "the CLI did not connect".to_owned())?
        .map_err(|e| e.to_string())
}

/// Reads what the CLI sends until it answers the closing OPTIONS; returns the pongs counted.
fn read_answers(stream: &mut TcpStream) -> Result<u64, String> {
    let deadline = Instant::now() + FLOOD_LIMIT;
    let mut pending: Vec<u8> = Vec::new();
    let mut pongs = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the CLI closed the connection".into());
        }
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        loop {
            let rest = &pending[at..];
            if rest.starts_with(b"\r\n") && !rest.starts_with(b"\r\n\r\n") {
                pongs += 1;
                at += 2;
                continue;
            }
            if rest.starts_with(b"\r\n\r\n") {
                // Two pongs back to back.
                pongs += 2;
                at += 4;
                continue;
            }
            let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let message = &rest[..end];
            if message.starts_with(b"SIP/2.0 200") && contains(message, b"flood-done") {
                return Ok(pongs);
            }
            at += end + 4;
        }
        pending.drain(..at);
    }
    Err("gave up waiting for the answer".into())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// User plus system time of the process, in USER_HZ ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("odd /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no field {i} in {path}"))
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Ok(field(11)? + field(12)?)
}
