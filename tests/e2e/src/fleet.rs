//! A fleet: many registrations in one process, each with its own user, flow and network watch,
//! as a PBX's agents look to it. The fleet benchmark (`bench_fleet`) starts one against a real
//! Kamailio, breaks the registrar or the path to it, and reads from the [`Recorder`] how the
//! re-registrations spread over time.
//!
//! Every registration runs on `vicifast-engine` exactly as the CLI's does; only the events are
//! counted here instead of printed: REGISTERs on the wire (retransmissions included) from the
//! trace, and successes from the status.

pub mod outage;
pub mod sipp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vicifast_engine::{
    AccountConfig, Direction, DriverOptions, EngineEvent, Password, Registration,
    RegistrationState, ServerAddress, Transport,
};

/// How finely the recorder's timelines count: peaks are the busiest 1 s window of these slots.
const SLOT: Duration = Duration::from_millis(100);
const SLOTS_PER_SECOND: usize = 10;
/// Timelines cover this long from the fleet's start; later events land in the last slot.
const TIMELINE_SPAN: Duration = Duration::from_secs(3600);
const NOT_YET: u64 = u64::MAX;

/// What to start.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub size: usize,
    /// The registrar.
    pub registrar: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Users are `<prefix><index>`, zero-padded.
    pub user_prefix: String,
    /// Each user's password is [`crate::derived_password`]`(key, user)`.
    pub password_key: String,
    /// The binding lifetime each registration asks for.
    pub expires: Duration,
    /// Registrations started per second at the beginning (agents logging in); 0 starts all at
    /// once.
    pub start_rate: u32,
}

impl FleetOptions {
    /// The user name of registration `index`.
    pub fn user(&self, index: usize) -> String {
        format!("{}{index:05}", self.user_prefix)
    }
}

/// A running fleet. Dropping it abandons the registrations without unregistering them (the
/// registrar is thrown away with it).
pub struct Fleet {
    recorder: Arc<Recorder>,
    runtime: Option<tokio::runtime::Runtime>,
    handles: Arc<std::sync::Mutex<Vec<Registration>>>,
}

impl Fleet {
    /// Starts the fleet on its own runtime (two worker threads: the machine's cores).
    pub fn start(options: &FleetOptions) -> std::io::Result<Fleet> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let recorder = Arc::new(Recorder::new(options.size));
        let handles = Arc::new(std::sync::Mutex::new(Vec::with_capacity(options.size)));
        let registrar = ServerAddress {
            host: options.registrar.ip().to_string(),
            port: Some(options.registrar.port()),
            transport: Some(options.transport),
        };
        let configs: Vec<(AccountConfig, Password)> = (0..options.size)
            .map(|index| {
                let user = options.user(index);
                let password = crate::derived_password(&options.password_key, &user);
                let mut config = AccountConfig::new(user.clone(), registrar.clone(), user);
                config.transport = Some(options.transport);
                config.expires = options.expires;
                (config, Password::new(password))
            })
            .collect();
        let spacing = match options.start_rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs(1) / rate,
        };
        let (rec, list) = (recorder.clone(), handles.clone());
        runtime.spawn(async move {
            let begin = tokio::time::Instant::now();
            for (index, (config, password)) in configs.into_iter().enumerate() {
                tokio::time::sleep_until(begin + spacing * index as u32).await;
                let (registration, mut events) =
                    Registration::start(config, password, DriverOptions::default());
                list.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(registration);
                let rec = rec.clone();
                tokio::spawn(async move {
                    while let Some(event) = events.recv().await {
                        rec.observe(index, &event);
                    }
                });
            }
        });
        Ok(Fleet {
            recorder,
            runtime: Some(runtime),
            handles,
        })
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// How many registrations have been started so far.
    pub fn started(&self) -> usize {
        self.handles.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Counts over time, shared by every registration's event task.
pub struct Recorder {
    origin: Instant,
    /// REGISTERs put on the wire, retransmissions included.
    registers: Timeline,
    /// 2xx to REGISTER (new bindings and refreshes).
    successes: Timeline,
    /// The current phase began at this many ms after `origin`.
    mark: AtomicU64,
    /// Per registration: its first success since the mark (ms after `origin`), or NOT_YET.
    back_at: Vec<AtomicU64>,
    back: AtomicUsize,
    registered: Vec<AtomicBool>,
    registered_now: AtomicUsize,
    /// Registrations in the `failed` state (given up, needs the user).
    failed_now: AtomicUsize,
    failed: Vec<AtomicBool>,
}

impl Recorder {
    fn new(size: usize) -> Self {
        Self {
            origin: Instant::now(),
            registers: Timeline::new(),
            successes: Timeline::new(),
            mark: AtomicU64::new(0),
            back_at: (0..size).map(|_| AtomicU64::new(NOT_YET)).collect(),
            back: AtomicUsize::new(0),
            registered: (0..size).map(|_| AtomicBool::new(false)).collect(),
            registered_now: AtomicUsize::new(0),
            failed_now: AtomicUsize::new(0),
            failed: (0..size).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(NOT_YET - 1)
    }

    fn observe(&self, index: usize, event: &EngineEvent) {
        let now = self.ms(Instant::now());
        match event {
            EngineEvent::Trace(trace)
                if trace.inner.direction == Direction::Sent
                    && trace.inner.text.starts_with("REGISTER ") =>
            {
                self.registers.add(now);
            }
            EngineEvent::Status(status) => {
                let state = status.inner.state;
                let registered = state == RegistrationState::Registered;
                if registered {
                    self.successes.add(now);
                    if now >= self.mark.load(Ordering::Acquire)
                        && self.back_at[index]
                            .compare_exchange(NOT_YET, now, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                    {
                        self.back.fetch_add(1, Ordering::AcqRel);
                    }
                }
                flip(&self.registered[index], &self.registered_now, registered);
                flip(
                    &self.failed[index],
                    &self.failed_now,
                    state == RegistrationState::Failed,
                );
            }
            _ => {}
        }
    }

    /// Starts a phase now: from here on, each registration's next success counts as it being
    /// back. Returns the phase's start.
    pub fn begin_phase(&self) -> Instant {
        let at = Instant::now();
        for slot in &self.back_at {
            slot.store(NOT_YET, Ordering::Release);
        }
        self.back.store(0, Ordering::Release);
        self.mark.store(self.ms(at), Ordering::Release);
        at
    }

    /// The fleet's size: how many must be back for a phase to be over.
    pub fn back_target(&self) -> usize {
        self.back_at.len()
    }

    /// Registrations that succeeded since the phase began.
    pub fn back(&self) -> usize {
        self.back.load(Ordering::Acquire)
    }

    /// Registrations whose last status is `registered`.
    pub fn registered_now(&self) -> usize {
        self.registered_now.load(Ordering::Acquire)
    }

    /// Registrations that gave up (state `failed`).
    pub fn failed_now(&self) -> usize {
        self.failed_now.load(Ordering::Acquire)
    }

    /// REGISTERs on the wire in `[from, to)`.
    pub fn registers_between(&self, from: Instant, to: Instant) -> u64 {
        self.registers.sum(self.ms(from), self.ms(to))
    }

    /// The spread of the comeback after `from` (the moment the path or the registrar returned),
    /// for the phase begun at `phase_start`, observed until `to`.
    pub fn spread(&self, phase_start: Instant, from: Instant, to: Instant) -> Spread {
        let from_ms = self.ms(from);
        let mut back: Vec<u64> = self
            .back_at
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .filter(|&at| at != NOT_YET)
            .map(|at| at.saturating_sub(from_ms))
            .collect();
        back.sort_unstable();
        let quantile = |q: f64| -> Option<Duration> {
            if back.len() < self.back_at.len() || back.is_empty() {
                return None;
            }
            let index = ((back.len() as f64 * q).ceil() as usize).clamp(1, back.len()) - 1;
            Some(Duration::from_millis(back[index]))
        };
        Spread {
            back: back.len(),
            size: self.back_at.len(),
            half_back: quantile(0.5),
            most_back: quantile(0.95),
            all_back: quantile(1.0),
            registers: self.registers.sum(self.ms(phase_start), self.ms(to)),
            peak_registers_per_second: self.registers.peak_per_second(from_ms, self.ms(to)),
            peak_back_per_second: peak_per_second_of(&back, to.saturating_duration_since(from)),
        }
    }
}

fn flip(flag: &AtomicBool, count: &AtomicUsize, on: bool) {
    if flag.swap(on, Ordering::AcqRel) != on {
        if on {
            count.fetch_add(1, Ordering::AcqRel);
        } else {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The busiest 1 s window (in 100 ms steps) of sorted offsets (ms) within `[0, span]`.
fn peak_per_second_of(sorted_ms: &[u64], span: Duration) -> u32 {
    let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
    let mut peak = 0;
    let mut start = 0;
    let slot = SLOT.as_millis() as u64;
    for (end, &at) in sorted_ms.iter().enumerate() {
        if at > span_ms {
            break;
        }
        // Windows start on slot boundaries, as the timelines' do.
        let window_start = (at / slot).saturating_sub(SLOTS_PER_SECOND as u64 - 1) * slot;
        while sorted_ms[start] < window_start {
            start += 1;
        }
        peak = peak.max(end + 1 - start);
    }
    u32::try_from(peak).unwrap_or(u32::MAX)
}

/// How a fleet came back after an outage.
#[derive(Debug, Clone)]
pub struct Spread {
    pub size: usize,
    /// Registrations that came back within the observation.
    pub back: usize,
    /// Times from the return of the registrar (or path) until half, 95 % and all of the fleet
    /// were registered again; `None` while not all are back.
    pub half_back: Option<Duration>,
    pub most_back: Option<Duration>,
    pub all_back: Option<Duration>,
    /// REGISTERs on the wire during the whole phase (outage and recovery).
    pub registers: u64,
    /// The busiest second's REGISTERs, and registrations coming back, after the return.
    pub peak_registers_per_second: u32,
    pub peak_back_per_second: u32,
}

/// Event counts in 100 ms slots from the recorder's origin.
struct Timeline {
    slots: Vec<AtomicU32>,
}

impl Timeline {
    fn new() -> Self {
        let len = (TIMELINE_SPAN.as_millis() / SLOT.as_millis()) as usize;
        Self {
            slots: (0..len).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn slot(&self, ms: u64) -> usize {
        usize::try_from(ms / SLOT.as_millis() as u64)
            .unwrap_or(usize::MAX)
            .min(self.slots.len() - 1)
    }

    fn add(&self, ms: u64) {
        self.slots[self.slot(ms)].fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self, from_ms: u64, to_ms: u64) -> u64 {
        self.slots[self.slot(from_ms)..=self.slot(to_ms)]
            .iter()
            .map(|s| u64::from(s.load(Ordering::Relaxed)))
            .sum()
    }

    /// The most events in any 1 s window (10 consecutive slots) within `[from, to]`.
    fn peak_per_second(&self, from_ms: u64, to_ms: u64) -> u32 {
        let counts: Vec<u32> = self.slots[self.slot(from_ms)..=self.slot(to_ms)]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        let mut window: u32 = 0;
        let mut peak = 0;
        for (i, &count) in counts.iter().enumerate() {
            window += count;
            if i >= SLOTS_PER_SECOND {
                window -= counts[i - SLOTS_PER_SECOND];
            }
            peak = peak.max(window);
        }
        peak
    }
}

/// CPU time (user + system) of this process so far.
pub fn process_cpu() -> Duration {
    rusage_cpu(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

/// CPU time (user + system) of the children this process has waited for.
pub fn children_cpu() -> Duration {
    rusage_cpu(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn rusage_cpu(who: nix::sys::resource::UsageWho) -> Duration {
    let Ok(usage) = nix::sys::resource::getrusage(who) else {
        return Duration::ZERO;
    };
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// This process's resident memory (KiB) and open file descriptors.
pub fn process_footprint() -> (u64, usize) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    (rss, fds)
}

/// Raises this process's open-file limit to at least `wanted` (each registration holds a UDP
/// socket). Returns the limit in effect.
pub fn raise_open_files(wanted: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    if soft >= wanted {
        return soft;
    }
    // Raising the hard limit needs CAP_SYS_RESOURCE; without it, go as far as the hard limit
    // (which also leaves room to the registrar started after this, which inherits it).
    if wanted > hard && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        return wanted;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_busiest_second() {
        let timeline = Timeline::new();
        for ms in [0, 50, 950, 1_000, 1_050, 1_850, 5_000] {
            timeline.add(ms);
        }
        // The window 900..1900 ms holds 950, 1000, 1050 and 1850.
        assert_eq!(timeline.peak_per_second(0, 6_000), 4);
        assert_eq!(timeline.sum(0, 6_000), 7);
        assert_eq!(timeline.sum(1_000, 1_999), 3);
        assert_eq!(
            peak_per_second_of(
                &[0, 50, 950, 1_000, 1_050, 1_850, 5_000],
                Duration::from_secs(6)
            ),
            4
        );
        assert_eq!(peak_per_second_of(&[], Duration::from_secs(6)), 0);
    }

    #[test]
    fn the_spread_counts_only_successes_after_the_mark() {
        let recorder = Recorder::new(2);
        let registered = |index| {
            let mut status = vicifast_engine_status();
            status.state = RegistrationState::Registered;
            recorder.observe(
                index,
                &EngineEvent::Status(vicifast_engine::Stamped::now(status)),
            );
        };
        registered(0);
        let start = recorder.begin_phase();
        assert_eq!(recorder.back(), 0);
        registered(0);
        registered(0);
        assert_eq!(recorder.back(), 1);
        let spread = recorder.spread(start, start, Instant::now());
        assert_eq!((spread.back, spread.all_back), (1, None));
        registered(1);
        let spread = recorder.spread(start, start, Instant::now());
        assert_eq!(spread.back, 2);
        assert!(spread.all_back.is_some());
        assert_eq!(recorder.registered_now(), 2);
    }

    fn vicifast_engine_status() -> vicifast_engine::Status {
        vicifast_engine::Status::without_flow(
            "fleet",
            RegistrationState::Registering,
            vicifast_engine::Cause::Started,
            Transport::Udp,
        )
    }
}
