//! What VICIfast's edge proxy costs a call: the time it adds relaying an INVITE from the PBX to
//! the softphone and the softphone's 200 OK back (p50/p95, µs), and its CPU per relayed message,
//! beside Kamailio relaying the same messages on the same path.
//!
//! Everything is on loopback UDP. The bench plays the PBX and the softphone itself (two sockets,
//! answering at once), so the only thing in between is the proxy under test:
//!
//! - VICIfast: `vicifast-cli register --softphone-listen … --softphone-contact …`, registered at
//!   the bench's PBX socket; INVITEs go to its flow, it relays them to the softphone socket.
//! - Kamailio (Debian's, `outbound` loaded as an edge proxy's would be): a stateful relay that
//!   Record-Routes and sends the PBX's INVITEs to the softphone socket.
//!
//! Added time = (PBX sends INVITE → PBX gets the 200) − (softphone got INVITE → softphone sent
//! 200), minus the same measured with no proxy at all (median). CPU = run time of the
//! proxy's processes during the calls / 2 messages per call (INVITE and 200 relayed; each proxy
//! also sends a 100 Trying of its own).
//!
//! Usage: `bench_edge [calls]` (default 200: VICIfast keeps an INVITE transaction 32 s after its
//! answer and holds at most 256, so a run stays under that). The CLI is $VICIFAST_CLI or the
//! `vicifast-cli` beside this binary.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use vicifast_e2e::{Cli, WAIT};

const WARMUP: usize = 10;

fn main() -> ExitCode {
    vicifast_e2e::bench_main("bench_edge", "calls, 1..=240", 200, 1..=240, bench)
}

/// The bench's two ends.
struct Ends {
    pbx: UdpSocket,
    softphone: UdpSocket,
}

impl Ends {
    fn new() -> Result<Self, String> {
        let bind = || {
            let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(s)
        };
        Ok(Self {
            pbx: bind()?,
            softphone: bind()?,
        })
    }

    fn addr(socket: &UdpSocket) -> SocketAddr {
        socket.local_addr().expect("bound socket")
    }
}

fn recv(socket: &UdpSocket) -> Result<(SocketAddr, String), String> {
    let mut buf = [0u8; 65_535];
    let (n, from) = socket
        .recv_from(&mut buf)
        .map_err(|e| format!("nothing within 5 s: {e}"))?;
    Ok((from, String::from_utf8_lossy(&buf[..n]).into_owned()))
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A response to `req` with every Via, a To tag and (for the softphone) its Contact.
fn answer(req: &str, status: &str, contact: Option<SocketAddr>) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for line in req.lines().filter(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("via"))
    }) {
        text.push_str(line);
        text.push_str("\r\n");
    }
    for name in ["Record-Route", "From", "Call-ID", "CSeq"] {
        if let Some(v) = header(req, name) {
            text.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    let to = header(req, "To").unwrap_or_default();
    if to.contains("tag=") {
        text.push_str(&format!("To: {to}\r\n"));
    } else {
        text.push_str(&format!("To: {to};tag=b\r\n"));
    }
    if let Some(contact) = contact {
        text.push_str(&format!("Contact: <sip:101@{contact}>\r\n"));
    } else if let Some(c) = header(req, "Contact") {
        text.push_str(&format!("Contact: {c}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

fn invite(i: usize, pbx: SocketAddr, to: SocketAddr) -> String {
    format!(
        "INVITE sip:101@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bKbench{i}\r\nFrom: <sip:200@bench.test>;tag=f{i}\r\nTo: <sip:101@bench.test>\r\nCall-ID: bench-{i}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:200@{pbx}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// One call: INVITE from the PBX to `via`, answered by the softphone. Returns the time added on
/// the way (round trip minus the softphone's own turnaround).
fn call(ends: &Ends, i: usize, via: SocketAddr) -> Result<Duration, String> {
    let pbx = Ends::addr(&ends.pbx);
    let softphone = Ends::addr(&ends.softphone);
    let id = format!("bench-{i}");
    let start = Instant::now();
    ends.pbx
        .send_to(invite(i, pbx, via).as_bytes(), via)
        .map_err(|e| e.to_string())?;
    let (got, from, req) = loop {
        let (from, text) = recv(&ends.softphone)?;
        if text.starts_with("OPTIONS ") {
            let _ = ends
                .softphone
                .send_to(answer(&text, "200 OK", Some(softphone)).as_bytes(), from);
            continue;
        }
        if text.starts_with("INVITE ") && text.contains(&id) {
            break (Instant::now(), from, text);
        }
    };
    let reply = answer(&req, "200 OK", Some(softphone));
    let sent = Instant::now();
    ends.softphone
        .send_to(reply.as_bytes(), from)
        .map_err(|e| e.to_string())?;
    loop {
        let (_, text) = recv(&ends.pbx)?;
        if text.starts_with("SIP/2.0 200") && text.contains(&id) {
            let total = start.elapsed();
            return Ok(total.saturating_sub(sent - got));
        }
    }
}

/// The same exchange with nothing in between: what loopback and the bench cost by themselves.
fn direct(ends: &Ends, i: usize) -> Result<Duration, String> {
    call(ends, i, Ends::addr(&ends.softphone))
}

/// CPU time (ns, from the scheduler: every thread of `pid`, or of every process in `pid`'s
/// process group, which is all of Kamailio's processes).
fn cpu_ns(pid: u32, group: bool) -> Result<u64, String> {
    let process_ns = |proc_dir: &Path| -> u64 {
        let Ok(tasks) = std::fs::read_dir(proc_dir.join("task")) else {
            return 0;
        };
        tasks
            .filter_map(|t| t.ok())
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    if !group {
        let dir = Path::new("/proc").join(pid.to_string());
        if !dir.exists() {
            return Err(format!("process {pid} is gone"));
        }
        return Ok(process_ns(&dir));
    }
    let pgrp_of = |dir: &Path| -> Option<u32> {
        let text = std::fs::read_to_string(dir.join("stat")).ok()?;
        // After the command: state, ppid, pgrp.
        text.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(2)?
            .parse()
            .ok()
    };
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").map_err(|e| e.to_string())? {
        let Ok(entry) = entry else { continue };
        if pgrp_of(&entry.path()) == Some(pid) {
            total += process_ns(&entry.path());
        }
    }
    Ok(total)
}

struct Figures {
    added: Vec<Duration>,
    cpu_per_message: Duration,
}

fn run_calls(
    ends: &Ends,
    first: usize,
    calls: usize,
    via: SocketAddr,
    cpu: impl Fn() -> Result<u64, String>,
) -> Result<Figures, String> {
    for i in first..first + WARMUP {
        call(ends, i, via)?;
    }
    let before = cpu()?;
    let mut added = Vec::with_capacity(calls);
    for i in first + WARMUP..first + WARMUP + calls {
        added.push(call(ends, i, via)?);
    }
    let ns = cpu()?.saturating_sub(before);
    added.sort();
    Ok(Figures {
        added,
        cpu_per_message: Duration::from_nanos(ns / (2 * calls) as u64),
    })
}

fn bench(calls: usize) -> Result<(), String> {
    let ends = Ends::new()?;
    let pbx = Ends::addr(&ends.pbx);
    let softphone = Ends::addr(&ends.softphone);

    let mut baseline = Vec::with_capacity(calls);
    for i in 0..calls {
        baseline.push(direct(&ends, 100_000 + i)?);
    }
    baseline.sort();
    let base = baseline[baseline.len() / 2];

    let (cli, flow) = start_vicifast(&ends)?;
    let pid = cli.pid();
    let vicifast = run_calls(&ends, 0, calls, flow, || cpu_ns(pid, false))?;
    drop(cli);

    let kamailio = Kamailio::start(pbx, softphone)?;
    let group = kamailio.child.id();
    let kam = run_calls(&ends, 200_000, calls, kamailio.addr, || cpu_ns(group, true))?;

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |v: &[Duration], p: f64| {
        let at = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        us(v[at]).max(0.0) - us(base)
    };
    println!(
        "edge relay, loopback UDP, {calls} calls after {WARMUP} warm-up: INVITE PBX -> softphone and 200 OK back"
    );
    println!(
        "(time added = round trip through the proxy minus the same with no proxy, median {:.0} µs)",
        us(base)
    );
    println!(
        "{:<44} {:>8} {:>8} {:>15}",
        "", "p50 µs", "p95 µs", "CPU µs/message"
    );
    let row = |name: &str, f: &Figures| {
        println!(
            "{name:<44} {:>8.0} {:>8.0} {:>15.1}",
            pct(&f.added, 0.5),
            pct(&f.added, 0.95),
            us(f.cpu_per_message)
        );
    };
    row("VICIfast (vicifast-cli --softphone-listen)", &vicifast);
    row("Kamailio (stateful relay, record_route)", &kam);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    println!(
        "ratio VICIfast / Kamailio: p50 {:.2}, p95 {:.2}, CPU {:.2}",
        ratio(pct(&vicifast.added, 0.5), pct(&kam.added, 0.5)),
        ratio(pct(&vicifast.added, 0.95), pct(&kam.added, 0.95)),
        ratio(us(vicifast.cpu_per_message), us(kam.cpu_per_message)),
    );
    Ok(())
}

/// Starts the CLI as the edge proxy, registered at the bench's PBX socket; returns it and the
/// flow address INVITEs must go to.
fn start_vicifast(ends: &Ends) -> Result<(Cli, SocketAddr), String> {
    let pbx = Ends::addr(&ends.pbx);
    let softphone = Ends::addr(&ends.softphone);
    let args: Vec<String> = [
        "register",
        "--registrar",
        &pbx.to_string(),
        "--user",
        "101",
        "--json",
        "--softphone-listen",
        "127.0.0.1:0",
        "--softphone-contact",
        &format!("sip:{softphone}"),
        "--softphone-check-interval",
        "3600",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let password = vicifast_e2e::random_password();
    let mut cli = Cli::spawn(&args, &password).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + WAIT;
    let mut flow = None;
    ends.pbx
        .set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| e.to_string())?;
    loop {
        let mut buf = [0u8; 65_535];
        if let Ok((n, from)) = ends.pbx.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("REGISTER ") {
                flow = Some(from);
                let _ = ends
                    .pbx
                    .send_to(answer(&text, "200 OK", None).as_bytes(), from);
            }
        }
        if let Ok((from, text)) = recv_nowait(&ends.softphone) {
            if text.starts_with("OPTIONS ") {
                let _ = ends
                    .softphone
                    .send_to(answer(&text, "200 OK", Some(softphone)).as_bytes(), from);
            }
        }
        if flow.is_some()
            && cli
                .wait_for(
                    |s| s["event"] == "softphone" && s["state"] == "answering",
                    Duration::from_millis(5),
                )
                .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("vicifast-cli did not register with the bench's PBX".into());
        }
    }
    ends.pbx
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    Ok((cli, flow.ok_or("no REGISTER")?))
}

fn recv_nowait(socket: &UdpSocket) -> Result<(SocketAddr, String), String> {
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let result = recv(socket);
    socket.set_nonblocking(false).map_err(|e| e.to_string())?;
    result
}

/// Kamailio relaying the PBX's INVITEs to the softphone, statefully, staying in the dialog.
struct Kamailio {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    fn start(pbx: SocketAddr, softphone: SocketAddr) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("vicifast-bench-edge-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let config = format!(
            r#"#!KAMAILIO
debug=1
log_stderror=yes
children=1
auto_aliases=no
dns=no
rev_dns=no
listen=udp:127.0.0.1:{port}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "stun.so"
loadmodule "outbound.so"
request_route {{
	if (!mf_process_maxfwd_header("10")) {{
		sl_send_reply("483", "Too Many Hops");
		exit;
	}}
	if (has_totag()) {{
		loose_route();
		t_relay();
		exit;
	}}
	if ($si == "{pbx_ip}" && $sp == {pbx_port}) {{
		record_route();
		$du = "sip:{softphone}";
		t_relay();
		exit;
	}}
	sl_send_reply("403", "Not from the PBX");
}}
"#,
            pbx_ip = pbx.ip(),
            pbx_port = pbx.port(),
        );
        let cfg = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg, config).map_err(|e| e.to_string())?;
        use std::os::unix::process::CommandExt;
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-w")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting kamailio: {e}"))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        // Ready once it answers: a request not from the PBX gets 403.
        let probe = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let me = probe.local_addr().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + WAIT;
        let kamailio = Kamailio {
            child,
            addr,
            _dir: dir,
        };
        loop {
            let options = format!("OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready\r\nFrom: <sip:b@bench.test>;tag=r\r\nTo: <sip:{addr}>\r\nCall-ID: ready\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
            let _ = probe.send_to(options.as_bytes(), addr);
            let mut buf = [0u8; 4096];
            if probe.recv_from(&mut buf).is_ok() {
                return Ok(kamailio);
            }
            if Instant::now() > deadline {
                return Err("kamailio did not start".into());
            }
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
