//! A real softphone for the edge-proxy tests: Debian's baresip (`baresip-core`), on loopback,
//! with a generated tone as its microphone and what it hears dumped to WAV files.
//!
//! Each instance has a private config directory (its account line carries a password generated
//! by the test, so none is committed or put on a command line) and its own SIP port. Audio needs
//! no sound card: `aufile` plays the tone, `sndfile` dumps what is sent (`-enc.wav`) and heard
//! (`-dec.wav`), and the player is the null `aubridge` device.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const MODULE_DIR: &str = "/usr/lib/baresip/modules";
/// G.711's rate: baresip's aufile source must match the call's sample rate.
pub const SAMPLE_RATE: u32 = 8000;
const KEEP_LINES: usize = 400;

/// Whether baresip and the modules the tests need are installed.
pub fn baresip_available() -> bool {
    crate::tools::find_program("baresip").is_some()
        && [
            "aufile.so",
            "sndfile.so",
            "g711.so",
            "menu.so",
            "aubridge.so",
            "ctrl_tcp.so",
        ]
        .iter()
        .all(|m| Path::new(MODULE_DIR).join(m).exists())
}

/// A free loopback UDP port (free when asked; the caller binds it soon after).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free UDP port: {e}"))
}

/// A loopback port free for both UDP and TCP when asked (baresip binds both).
pub fn free_port_pair() -> u16 {
    for _ in 0..20 {
        let port = free_udp_port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    free_udp_port()
}

/// A free loopback TCP port (free when asked).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free TCP port: {e}"))
}

/// Writes `seconds` of a `frequency` Hz sine (16-bit mono PCM at [`SAMPLE_RATE`]) to `path`.
pub fn write_tone(path: &Path, frequency: f64, seconds: u32) -> std::io::Result<()> {
    let samples = SAMPLE_RATE * seconds;
    let mut data = Vec::with_capacity(samples as usize * 2);
    for n in 0..samples {
        let t = f64::from(n) / f64::from(SAMPLE_RATE);
        let value = (t * frequency * std::f64::consts::TAU).sin() * 12_000.0;
        data.extend_from_slice(&(value as i16).to_le_bytes());
    }
    let mut wav = Vec::with_capacity(44 + data.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(path, wav)
}

/// What a recording holds: its length, loudness and the frequency its zero crossings give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    pub seconds: f64,
    /// Root mean square of the samples (0 = silence; the tone is about 8500).
    pub rms: f64,
    /// Zero crossings / 2 / seconds, over the non-silent part.
    pub frequency: f64,
}

/// The sample rate and samples (first channel) of a 16-bit PCM WAV.
fn read_pcm(path: &Path) -> Result<(u32, Vec<f64>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("{} is not a WAV file", path.display()));
    }
    let (mut rate, mut channels, mut bits, mut data) = (0u32, 1u16, 16u16, None);
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " && body.len() >= 16 {
            channels = u16::from_le_bytes([body[2], body[3]]);
            rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            bits = u16::from_le_bytes([body[14], body[15]]);
        } else if id == b"data" {
            // A recording still being written has its length filled in only when closed.
            data = Some(if len == 0 { &bytes[at + 8..] } else { body });
            if len == 0 {
                break;
            }
        }
        at += 8 + len + (len & 1);
    }
    let data = data.ok_or_else(|| format!("{} has no data chunk", path.display()))?;
    if bits != 16 || rate == 0 || channels == 0 {
        return Err(format!(
            "{}: {bits}-bit, {rate} Hz, {channels} channels: expected 16-bit PCM",
            path.display()
        ));
    }
    let samples: Vec<f64> = data
        .chunks_exact(2 * channels as usize)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
        .collect();
    Ok((rate, samples))
}

/// Reads a 16-bit PCM WAV (mono or the first channel) and measures it.
pub fn analyse_wav(path: &Path) -> Result<Heard, String> {
    let (rate, samples) = read_pcm(path)?;
    let seconds = samples.len() as f64 / f64::from(rate);
    if samples.is_empty() {
        return Ok(Heard {
            seconds,
            rms: 0.0,
            frequency: 0.0,
        });
    }
    let rms = (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt();
    // Count over the audible stretch only: a call's first and last moments are often silent.
    let loud = rms / 4.0;
    let first = samples.iter().position(|s| s.abs() > loud).unwrap_or(0);
    let last = samples.iter().rposition(|s| s.abs() > loud).unwrap_or(0);
    let audible = &samples[first..=last.max(first)];
    let crossings = audible
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let audible_seconds = audible.len() as f64 / f64::from(rate);
    let frequency = if audible_seconds > 0.0 {
        crossings as f64 / 2.0 / audible_seconds
    } else {
        0.0
    };
    Ok(Heard {
        seconds,
        rms,
        frequency,
    })
}

/// The longest stretch of a recording without the tone, in 20 ms windows quieter than a tenth
/// of the tone's level, between the first and the last loud window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Silence {
    /// Length of the longest quiet stretch, in seconds.
    pub seconds: f64,
    /// Where it starts, in seconds from the start of the recording.
    pub at: f64,
}

/// The longest quiet stretch inside a recording (see [`Silence`]); zero when it has none.
pub fn longest_silence(path: &Path) -> Result<Silence, String> {
    const TONE_RMS: f64 = 8500.0;
    let (rate, samples) = read_pcm(path)?;
    let window = (rate / 50).max(1) as usize;
    let loud: Vec<bool> = samples
        .chunks(window)
        .map(|w| (w.iter().map(|s| s * s).sum::<f64>() / w.len() as f64).sqrt() > TONE_RMS / 10.0)
        .collect();
    let (Some(first), Some(last)) = (loud.iter().position(|l| *l), loud.iter().rposition(|l| *l))
    else {
        return Ok(Silence {
            seconds: samples.len() as f64 / f64::from(rate),
            at: 0.0,
        });
    };
    let (mut longest, mut longest_at, mut run) = (0usize, 0usize, 0usize);
    for (i, is_loud) in loud.iter().enumerate().take(last + 1).skip(first) {
        if *is_loud {
            run = 0;
            continue;
        }
        run += 1;
        if run > longest {
            longest = run;
            longest_at = i + 1 - run;
        }
    }
    let window_seconds = window as f64 / f64::from(rate);
    Ok(Silence {
        seconds: longest as f64 * window_seconds,
        at: longest_at as f64 * window_seconds,
    })
}

/// How one baresip is set up.
#[derive(Debug, Clone)]
pub struct SoftphoneOptions {
    pub user: String,
    pub password: String,
    /// The domain of its address of record.
    pub domain: String,
    /// `sip:host:port` every request goes through (VICIfast's listener, or the PBX).
    pub outbound: String,
    /// Registration interval in seconds; 0 = do not register.
    pub regint: u32,
    /// The tone it plays into calls, in Hz.
    pub tone: f64,
    /// Answer incoming calls at once.
    pub auto_answer: bool,
    /// Talk SIP over TCP (to the outbound proxy and in its Contact) instead of UDP.
    pub tcp: bool,
}

/// Where a baresip runs: a network namespace the test made (or this process's own) and the
/// address it uses for SIP and announces for media.
#[derive(Debug, Clone)]
pub struct Placement {
    pub netns: Option<String>,
    pub address: std::net::IpAddr,
}

impl Placement {
    /// This network namespace, on loopback.
    pub fn loopback() -> Placement {
        Placement {
            netns: None,
            address: std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }

    /// Inside `netns`, at `address`.
    pub fn netns(netns: &str, address: std::net::IpAddr) -> Placement {
        Placement {
            netns: Some(netns.to_owned()),
            address,
        }
    }
}

/// A running baresip. Dropping it stops it (SIGINT, as baresip ignores SIGTERM).
pub struct Softphone {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    ctrl_port: u16,
    output: Arc<Output>,
    placement: Placement,
}

#[derive(Default)]
struct Output {
    lines: Mutex<VecDeque<String>>,
    /// Every line ever printed, for `wait_for_output`.
    all: Mutex<String>,
    grew: Condvar,
}

impl Softphone {
    /// Writes the config and starts baresip on a free loopback port, running `commands` (such
    /// as `/dial sip:…`) once it is up; returns once it says it is ready. A port taken between
    /// choosing and binding it (other tests run at the same time) means another try.
    pub fn start(options: &SoftphoneOptions, commands: &[String]) -> Result<Softphone, String> {
        Self::start_placed(options, &Placement::loopback(), commands)
    }

    /// Like [`Softphone::start`], run where `placement` says (e.g. in a test's namespace).
    pub fn start_placed(
        options: &SoftphoneOptions,
        placement: &Placement,
        commands: &[String],
    ) -> Result<Softphone, String> {
        Self::start_with_accounts(options, placement, &[], commands)
    }

    /// Like [`Softphone::start_placed`], with more account lines after the one `options`
    /// describes (baresip's `accounts` syntax, e.g. the same extension registered directly with
    /// the PBX). They go in the private accounts file, never on a command line.
    pub fn start_with_accounts(
        options: &SoftphoneOptions,
        placement: &Placement,
        extra_accounts: &[String],
        commands: &[String],
    ) -> Result<Softphone, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let phone = Self::start_once(options, placement, extra_accounts, commands)?;
            match phone.wait_for_output("baresip is ready", Duration::from_secs(20)) {
                Ok(()) => return Ok(phone),
                Err(err) if phone.output_tail().contains("Address already in use") => last = err,
                Err(err) => return Err(err),
            }
        }
        Err(last)
    }

    fn start_once(
        options: &SoftphoneOptions,
        placement: &Placement,
        extra_accounts: &[String],
        commands: &[String],
    ) -> Result<Softphone, String> {
        let dir = tempfile::Builder::new()
            .prefix("vicifast-softphone-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let port = free_port_pair();
        let ctrl_port = free_tcp_port();
        let tone = dir.path().join("tone.wav");
        write_tone(&tone, options.tone, 60).map_err(|e| format!("writing the tone: {e}"))?;
        let address = placement.address;
        let sip_listen = std::net::SocketAddr::new(address, port);
        let config = format!(
            "poll_method\tepoll\n\
             sip_listen\t{sip_listen}\n\
             net_interface\t{address}\n\
             module_path\t{MODULE_DIR}\n\
             module\tg711.so\n\
             module\taufile.so\n\
             module\taubridge.so\n\
             module\tsndfile.so\n\
             module_app\taccount.so\n\
             module_app\tmenu.so\n\
             module_app\tctrl_tcp.so\n\
             ctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n\
             audio_source\taufile,{}\n\
             audio_player\taubridge,x\n\
             audio_alert\taubridge,x\n\
             snd_path\t{}\n\
             rtp_ports\t20000-40000\n",
            tone.display(),
            dir.path().display(),
        );
        std::fs::write(dir.path().join("config"), config)
            .map_err(|e| format!("writing baresip config: {e}"))?;
        let (transport, outbound) = if options.tcp {
            (
                ";transport=tcp",
                format!("{};transport=tcp", options.outbound),
            )
        } else {
            ("", options.outbound.clone())
        };
        let mut account = format!(
            "<sip:{}@{}{transport}>;auth_pass={};outbound=\"{outbound}\";regint={};audio_codecs=PCMU,PCMA",
            options.user, options.domain, options.password, options.regint
        );
        if options.auto_answer {
            account.push_str(";answermode=auto");
        }
        account.push('\n');
        for extra in extra_accounts {
            account.push_str(extra);
            account.push('\n');
        }
        let accounts = dir.path().join("accounts");
        std::fs::write(&accounts, account).map_err(|e| format!("writing baresip accounts: {e}"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("chmod accounts: {e}"))?;
        }
        let mut cmd = match &placement.netns {
            // `ip netns exec` execs baresip: the child's pid is baresip's (for SIGINT).
            Some(netns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", netns, "baresip"]);
                cmd
            }
            None => Command::new("baresip"),
        };
        cmd.arg("-f").arg(dir.path()).arg("-v");
        for command in commands {
            cmd.arg("-e").arg(command);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting baresip: {e}"))?;
        let output = Arc::new(Output::default());
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut lines = output.lines.lock().unwrap_or_else(|p| p.into_inner());
                    if lines.len() == KEEP_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(line.clone());
                    drop(lines);
                    let mut all = output.all.lock().unwrap_or_else(|p| p.into_inner());
                    all.push_str(&line);
                    all.push('\n');
                    output.grew.notify_all();
                }
            });
        }
        Ok(Softphone {
            child: Some(child),
            dir,
            port,
            ctrl_port,
            output,
            placement: placement.clone(),
        })
    }

    /// Runs a menu command (`dial`, `hangup`, `accept`…) over baresip's ctrl_tcp socket
    /// (netstring-framed JSON) and returns its answer.
    pub fn command(&self, command: &str, params: &str) -> Result<String, String> {
        use std::io::Write;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match connect_in(self.placement.netns.as_deref(), self.ctrl_port) {
                Ok(stream) => break stream,
                Err(err) if Instant::now() >= deadline => {
                    return Err(format!("baresip's control socket: {err}"))
                }
                // Not listening yet: baresip is still starting.
                Err(_) => std::thread::park_timeout(Duration::from_millis(50)),
            }
        };
        let json =
            serde_json::json!({ "command": command, "params": params, "token": "t" }).to_string();
        stream
            .write_all(format!("{}:{json},", json.len()).as_bytes())
            .map_err(|e| format!("sending {command}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        // The answer is the netstring carrying `"response":true`; events may come first.
        while !String::from_utf8_lossy(&answer).contains("\"response\"") {
            let n = stream
                .read(&mut buf)
                .map_err(|e| format!("reading the answer to {command}: {e}"))?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Its SIP address (`ip:port`).
    pub fn sip_addr(&self) -> String {
        std::net::SocketAddr::new(self.placement.address, self.port).to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines baresip printed, for diagnostics.
    pub fn output_tail(&self) -> String {
        let lines = self.output.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits until baresip has printed `needle` (anywhere in its output so far).
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut all = self.output.all.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if all.contains(needle) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(all);
                return Err(format!(
                    "baresip did not print {needle:?} within {timeout:?}; its last lines:\n{}",
                    self.output_tail()
                ));
            }
            all = self
                .output
                .grew
                .wait_timeout(all, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// How many times baresip has printed `needle` so far.
    pub fn count_output(&self, needle: &str) -> usize {
        let all = self.output.all.lock().unwrap_or_else(|p| p.into_inner());
        all.matches(needle).count()
    }

    /// The dump of what it heard (`…-dec.wav`) in its latest call, once one exists.
    pub fn heard_file(&self) -> Option<PathBuf> {
        self.dump_file("-dec.wav")
    }

    fn dump_file(&self, suffix: &str) -> Option<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("dump-") && n.ends_with(suffix))
            })
            .collect();
        files.sort();
        files.pop()
    }

    /// Waits until it has heard at least `seconds` of audio in its latest call (the dump grows
    /// as RTP arrives), polling the file under a deadline.
    pub fn wait_heard(&self, seconds: f64, timeout: Duration) -> Result<PathBuf, String> {
        let deadline = Instant::now() + timeout;
        let want = 44 + (seconds * f64::from(SAMPLE_RATE) * 2.0) as u64;
        loop {
            if let Some(file) = self.heard_file() {
                if std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) >= want {
                    return Ok(file);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "baresip did not hear {seconds} s of audio within {timeout:?}; its last lines:\n{}",
                    self.output_tail()
                ));
            }
            // Condition polling (file size), bounded by the deadline above.
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Stops it as a user would (SIGINT: it hangs up and unregisters first) and waits.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills it at once, as a crash would: no BYE, no un-REGISTER.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Connects to `127.0.0.1:port` in network namespace `netns` (or in this one). A socket belongs
/// to the namespace it was made in, so a short-lived thread enters the namespace (which moves
/// only that thread) and makes it there.
fn connect_in(netns: Option<&str>, port: u16) -> std::io::Result<std::net::TcpStream> {
    let Some(netns) = netns else {
        return std::net::TcpStream::connect(("127.0.0.1", port));
    };
    let path = Path::new("/run/netns").join(netns);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = std::fs::File::open(&path)?;
                nix::sched::setns(namespace, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                std::net::TcpStream::connect(("127.0.0.1", port))
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the connecting thread panicked")))
    })
}

impl Drop for Softphone {
    fn drop(&mut self) {
        self.stop();
    }
}
