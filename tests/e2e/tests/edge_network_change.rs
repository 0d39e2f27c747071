//! The agent's softphone keeps taking calls through VICIfast when the laptop changes network,
//! proven in network namespaces with real parts:
//!
//! ```text
//!   laptop (cli namespace)                    router          office (reg namespace)
//!   baresip ── 127.0.0.1:5070 ── VICIfast ── wifi0 198.18.1.10 ─┐        Kamailio 198.18.0.1
//!   (the softphone)              (the CLI)   eth0  198.18.2.10 ─┴─ … ──  baresip (the caller)
//! ```
//!
//! Kamailio is the registrar and proxies calls (Record-Route); the caller is another extension
//! registered with it directly. The default route moves from Wi-Fi to wired and the Wi-Fi address
//! goes away, as when the agent plugs in a cable and Wi-Fi is switched off (or, in one test,
//! stays: only the route moved).
//!
//! - After the switch the registration moves (Kamailio holds VICIfast's binding on the wired
//!   address only) and the next call reaches the softphone: answered, each side hears the
//!   other's tone.
//! - A call in progress across the switch is measured and reported (not asserted on timing): the
//!   audio gap each side hears, whether the call survives, whether Kamailio and the caller keep
//!   sending to the old address (counted at the router), and whether the caller's in-dialog BYE
//!   still passes. Asserted: VICIfast tells the agent at once, once (the CLI's `call_moved`
//!   event, naming the call and both addresses), the softphone's re-INVITE brings the audio back
//!   (VICIfast rewrites its SDP to the flow's new address, and the caller sends there), the call
//!   ends with a BYE from one side, and the next call works. A switch with no call up is not
//!   told.
//!
//! Root only (network namespaces); skipped with a message otherwise, or without baresip.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vicifast_e2e::netns::{have_root, run, Link, Topology, TopologyOptions, REGISTRAR_ADDR};
use vicifast_e2e::softphone::{
    analyse_wav, baresip_available, longest_silence, Placement, Softphone, SoftphoneOptions,
};
use vicifast_e2e::{Cli, Registrar, RegistrarOptions, WAIT};

/// The softphone's tone and the caller's: far apart, so each recording says who was heard.
const SOFTPHONE_TONE: f64 = 1000.0;
const CALLER_TONE: f64 = 440.0;
/// VICIfast's listener in the laptop namespace: that namespace is the test's own, so the
/// default port is free.
const LISTEN: &str = "127.0.0.1:5070";
/// How long a call in progress is watched after the registration has moved, for the report.
const OBSERVE: Duration = Duration::from_secs(5);
/// How long the caller's BYE is given to reach the softphone: past Kamailio's transaction
/// timeout (fr_timer 5 s), so a BYE that has not arrived by then never will.
const BYE_WINDOW: Duration = Duration::from_secs(8);

/// The laptop, the office and the network between them. Field order is drop order: the
/// softphones and VICIfast first, then Kamailio, then the namespaces.
struct Site {
    phone: Softphone,
    caller: Softphone,
    vicifast: Cli,
    registrar: Registrar,
    ext: String,
    /// The caller's extension.
    caller_ext: String,
    /// VICIfast's contact when it first registered.
    first_contact: String,
    topo: Topology,
}

fn skip(test: &str) -> bool {
    if !have_root(test) {
        return true;
    }
    if !baresip_available() {
        vicifast_e2e::skip::skipped(test, "needs baresip-core with the aufile, sndfile, g711, menu, aubridge and ctrl_tcp modules (make test-e2e installs it)");
        return true;
    }
    false
}

impl Site {
    fn start(tag: &str) -> Site {
        let topo = Topology::new(TopologyOptions {
            nat: false,
            default_link: Link::Wifi,
            tag: tag.to_owned(),
        })
        .unwrap();
        let registrar = Registrar::start_in_netns(
            RegistrarOptions {
                calls: true,
                ..RegistrarOptions::default()
            },
            topo.reg().name(),
            REGISTRAR_ADDR,
        )
        .unwrap();
        let ext = vicifast_e2e::random_extension();
        let mut caller_ext = vicifast_e2e::random_extension();
        while caller_ext == ext {
            caller_ext = vicifast_e2e::random_extension();
        }
        let password = registrar.add_user(&ext).unwrap();
        let caller_password = registrar.add_user(&caller_ext).unwrap();
        let registrar_addr = format!("{REGISTRAR_ADDR}:{}", registrar.udp_port());

        // VICIfast in the laptop namespace, with a private /etc/hosts and resolv.conf.
        let wrapper = topo.cli().command(Cli::binary().unwrap());
        let mut args: Vec<String> = wrapper
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        args.extend(
            [
                "register",
                "--registrar",
                &registrar_addr,
                "--transport",
                "udp",
                "--user",
                &ext,
                "--json",
                "--softphone-listen",
                LISTEN,
            ]
            .map(str::to_owned),
        );
        let mut vicifast =
            Cli::spawn_program(PathBuf::from(wrapper.get_program()), &args, &password).unwrap();
        vicifast
            .wait_for(|s| s["event"] == "softphone_listener", WAIT)
            .unwrap();
        let registered = vicifast.wait_for_state("registered", WAIT).unwrap();
        let first_contact = registered["contact"].as_str().unwrap().to_owned();

        let phone = Softphone::start_placed(
            &SoftphoneOptions {
                user: ext.clone(),
                password,
                domain: REGISTRAR_ADDR.into(),
                outbound: format!("sip:{LISTEN}"),
                regint: 60,
                tone: SOFTPHONE_TONE,
                auto_answer: true,
                tcp: false,
            },
            &Placement::netns(topo.cli().name(), [127, 0, 0, 1].into()),
            &[],
        )
        .unwrap();
        if let Err(err) = vicifast.wait_for(
            |s| s["event"] == "softphone" && s["state"] == "answering",
            WAIT,
        ) {
            panic!("{err}\n--- baresip ---\n{}", phone.output_tail());
        }

        let caller = Softphone::start_placed(
            &SoftphoneOptions {
                user: caller_ext.clone(),
                password: caller_password,
                domain: REGISTRAR_ADDR.into(),
                outbound: format!("sip:{registrar_addr}"),
                regint: 60,
                tone: CALLER_TONE,
                auto_answer: true,
                tcp: false,
            },
            &Placement::netns(topo.reg().name(), REGISTRAR_ADDR.parse().unwrap()),
            &[],
        )
        .unwrap();
        let deadline = Instant::now() + WAIT;
        while registrar.bindings(&caller_ext).unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the caller did not register: {}",
                caller.output_tail()
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
        Site {
            phone,
            caller,
            vicifast,
            registrar,
            ext,
            caller_ext,
            first_contact,
            topo,
        }
    }

    /// Waits until Kamailio holds exactly one binding for the extension and it reaches `ip`;
    /// returns its Contact.
    #[track_caller]
    fn wait_sole_binding_at(&self, ip: &str) -> String {
        let needle = format!("@{ip}:");
        let deadline = Instant::now() + WAIT;
        loop {
            let bindings = self.registrar.bindings(&self.ext).unwrap();
            if let [only] = bindings.as_slice() {
                if only.uri.contains(&needle) {
                    return only.uri.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "Kamailio does not hold VICIfast's binding at {ip} alone: {bindings:?}"
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Waits until VICIfast reports `registered` with a contact at `ip`.
    #[track_caller]
    fn wait_registered_at(&mut self, ip: &str) {
        let needle = format!("@{ip}:");
        if let Err(err) = self.vicifast.wait_for(
            |s| {
                s["state"] == "registered"
                    && s["contact"].as_str().is_some_and(|c| c.contains(&needle))
            },
            WAIT,
        ) {
            panic!("{err}");
        }
    }

    /// The `call_moved` events VICIfast printed up to its `incoming_call` for the next call,
    /// which comes after anything a route switch before it made VICIfast say.
    #[track_caller]
    fn calls_moved_before_next_call(&mut self) -> Vec<serde_json::Value> {
        if let Err(err) = self
            .vicifast
            .wait_for(|s| s["event"] == "incoming_call", WAIT)
        {
            panic!("{err}");
        }
        self.vicifast
            .statuses()
            .iter()
            .filter(|s| s["event"] == "call_moved")
            .cloned()
            .collect()
    }

    /// The caller dials the extension; returns once both sides have heard 2 s of each other
    /// (asserting the tones), with the two recordings: (softphone's, caller's).
    #[track_caller]
    fn call_in(&self) -> (PathBuf, PathBuf) {
        let phone_before = self.phone.heard_file();
        let caller_before = self.caller.heard_file();
        self.caller
            .command("dial", &format!("sip:{}@{REGISTRAR_ADDR}", self.ext))
            .unwrap();
        let phone_heard = new_recording(&self.phone, phone_before, "softphone");
        let caller_heard = new_recording(&self.caller, caller_before, "caller");
        self.phone.wait_heard(2.0, WAIT).unwrap();
        self.caller.wait_heard(2.0, WAIT).unwrap();
        assert_tone(&phone_heard, CALLER_TONE, "softphone");
        assert_tone(&caller_heard, SOFTPHONE_TONE, "caller");
        (phone_heard, caller_heard)
    }
}

/// Waits until `phone` has a recording other than `before` (a new call's) and returns it.
#[track_caller]
fn new_recording(phone: &Softphone, before: Option<PathBuf>, who: &str) -> PathBuf {
    let deadline = Instant::now() + WAIT;
    loop {
        match phone.heard_file() {
            Some(file) if Some(&file) != before.as_ref() => return file,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "no new call at the {who}: {}",
                    phone.output_tail()
                );
                std::thread::park_timeout(Duration::from_millis(50));
            }
        }
    }
}

/// Asserts a recording carries `expected` Hz (±5 %) loudly, and prints what was measured.
#[track_caller]
fn assert_tone(file: &Path, expected: f64, who: &str) {
    let heard = analyse_wav(file).unwrap();
    assert!(
        heard.rms > 1000.0,
        "the {who} heard near silence: {heard:?}"
    );
    assert!(
        (heard.frequency - expected).abs() < expected * 0.05,
        "the {who} heard {heard:?}, expected {expected} Hz"
    );
    eprintln!(
        "the {who} heard {:.1} Hz (rms {:.0}) over {:.1} s",
        heard.frequency, heard.rms, heard.seconds
    );
}

/// Waits until `phone` has printed `needle` more than `before` times.
fn wait_count(phone: &Softphone, needle: &str, before: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while phone.count_output(needle) <= before {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    true
}

/// Watches a recording grow (baresip's `sndfile` dump is written as RTP arrives): when each
/// growth was seen, polled every 10 ms, for the audio-gap figures.
struct GrowthWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Instant>>,
}

impl GrowthWatch {
    fn start(file: PathBuf) -> GrowthWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut grew = Vec::new();
            let mut last = 0;
            // Bounded: the test stops it, and it gives up on its own after ten minutes.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                if size != last {
                    last = size;
                    grew.push(Instant::now());
                }
                std::thread::park_timeout(Duration::from_millis(10));
            }
            grew
        });
        GrowthWatch { stop, thread }
    }

    fn finish(self) -> Vec<Instant> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The longest time without growth between `from` and `to`, and when audio first came back
/// after `from` (`None`: it never did).
fn longest_stall(grew: &[Instant], from: Instant, to: Instant) -> (Duration, Option<Duration>) {
    let mut points = vec![from];
    points.extend(grew.iter().copied().filter(|t| *t > from && *t <= to));
    points.push(to);
    let longest = points
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    let back = grew
        .iter()
        .find(|t| **t > from)
        .map(|t| t.duration_since(from));
    (longest, back)
}

/// nftables counters on the router for packets forwarded to one of the laptop's addresses: to
/// VICIfast's SIP port there (Kamailio's requests and responses) and to any other port (the
/// caller's RTP).
struct AddressCounters {
    router: String,
    table: String,
}

impl AddressCounters {
    fn install(topo: &Topology, name: &str, ip: &str, sip_port: u16) -> Self {
        let counters = AddressCounters {
            router: topo.router().name().to_owned(),
            table: format!("vf{name}{}", std::process::id()),
        };
        let table = &counters.table;
        counters.nft(&format!(
            "add table inet {table}; \
                     add chain inet {table} watch {{ type filter hook forward priority -20; }}; \
                     add rule inet {table} watch ip daddr {ip} udp dport {sip_port} counter; \
                     add rule inet {table} watch ip daddr {ip} udp dport != {sip_port} counter"
        ));
        counters
    }

    fn nft(&self, script: &str) -> String {
        run("ip", ["netns", "exec", &self.router, "nft", script]).unwrap()
    }

    /// (SIP packets, other UDP packets) forwarded to the address so far.
    fn read(&self) -> (u64, u64) {
        let listing = self.nft(&format!("list table inet {}", self.table));
        let mut counts = listing
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .collect::<Vec<_>>()
            .chunks(2)
            .filter(|pair| pair[0] == "packets")
            .filter_map(|pair| pair.get(1).and_then(|n| n.parse().ok()))
            .collect::<Vec<u64>>()
            .into_iter();
        (counts.next().unwrap_or(0), counts.next().unwrap_or(0))
    }
}

/// The port of `sip:user@ip:port;…`.
fn contact_port(contact: &str, ip: &str) -> u16 {
    let after = contact
        .split_once(&format!("@{ip}:"))
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port in {contact}"))
}

#[test]
fn after_a_route_switch_the_next_call_reaches_the_softphone() {
    let test = "after_a_route_switch_the_next_call_reaches_the_softphone";
    if skip(test) {
        return;
    }
    let mut site = Site::start("edgnxt");
    let old = site.topo.client_addr(Link::Wifi).unwrap().to_string();
    assert!(
        site.first_contact.contains(&format!("@{old}:")),
        "{}",
        site.first_contact
    );
    site.wait_sole_binding_at(&old);

    site.topo.switch_default_route(Link::Wired, true).unwrap();
    let new = site.topo.client_addr(Link::Wired).unwrap().to_string();
    site.wait_registered_at(&new);
    let binding = site.wait_sole_binding_at(&new);
    eprintln!("the registration moved: Kamailio holds {binding} only");

    site.call_in();
    let told = site.calls_moved_before_next_call();
    assert!(
        told.is_empty(),
        "no call was up during the switch: {told:?}"
    );
    let ended = site.phone.count_output("terminated");
    site.caller.command("hangup", "").unwrap();
    assert!(
        wait_count(&site.phone, "terminated", ended, WAIT),
        "the caller's BYE did not end the call at the softphone: {}",
        site.phone.output_tail()
    );
}

#[test]
fn a_call_across_a_route_switch_is_measured_and_the_next_call_works() {
    call_across_a_route_switch(
        "a_call_across_a_route_switch_is_measured_and_the_next_call_works",
        "edgmid",
        true,
    );
}

#[test]
fn a_call_across_a_route_switch_keeping_the_old_address_is_measured() {
    call_across_a_route_switch(
        "a_call_across_a_route_switch_keeping_the_old_address_is_measured",
        "edgkeep",
        false,
    );
}

/// A call in progress while the default route moves to wired; with `remove_old_address` the
/// Wi-Fi address goes too (Wi-Fi switched off), otherwise it stays (only the route moved).
fn call_across_a_route_switch(test: &str, tag: &str, remove_old_address: bool) {
    if skip(test) {
        return;
    }
    let mut site = Site::start(tag);
    let old = site.topo.client_addr(Link::Wifi).unwrap().to_string();
    assert!(
        site.first_contact.contains(&format!("@{old}:")),
        "{}",
        site.first_contact
    );
    let old_contact = site.wait_sole_binding_at(&old);
    let counters =
        AddressCounters::install(&site.topo, "old", &old, contact_port(&old_contact, &old));

    let (phone_file, caller_file) = site.call_in();
    let phone_ended = site.phone.count_output("terminated");
    let caller_ended = site.caller.count_output("terminated");
    let phone_watch = GrowthWatch::start(phone_file.clone());
    let caller_watch = GrowthWatch::start(caller_file.clone());

    let (sip_before, rtp_before) = counters.read();
    let switched = Instant::now();
    site.topo
        .switch_default_route(Link::Wired, remove_old_address)
        .unwrap();
    let new = site.topo.client_addr(Link::Wired).unwrap().to_string();
    site.wait_registered_at(&new);
    let new_contact = site.wait_sole_binding_at(&new);
    let moved = switched.elapsed();
    // VICIfast tells the agent, since the softphone cannot notice: the event may come before or
    // after the new registration's status.
    let told = match site
        .vicifast
        .statuses()
        .iter()
        .find(|s| s["event"] == "call_moved")
        .cloned()
    {
        Some(told) => told,
        None => site
            .vicifast
            .wait_for(|s| s["event"] == "call_moved", WAIT)
            .unwrap_or_else(|err| panic!("{err}")),
    };
    let told_after = switched.elapsed();
    assert_eq!(told["old_address"], old.as_str(), "{told}");
    assert_eq!(told["new_address"], new.as_str(), "{told}");
    let calls = told["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{told}");
    assert_eq!(calls[0]["direction"], "incoming", "{told}");
    assert!(
        calls[0]["other_party"]
            .as_str()
            .is_some_and(|p| p.contains(&site.caller_ext)),
        "{told}"
    );
    assert!(
        told["message"]
            .as_str()
            .is_some_and(|m| m.contains("put the call on hold and take it off hold")),
        "{told}"
    );
    let new_counters =
        AddressCounters::install(&site.topo, "new", &new, contact_port(&new_contact, &new));

    // Watch the call as it is, with nobody doing anything: a measurement window, not a wait
    // for anything.
    let observe_until = Instant::now() + OBSERVE;
    while Instant::now() < observe_until {
        std::thread::park_timeout(observe_until - Instant::now());
    }
    let survived = site.phone.count_output("terminated") == phone_ended
        && site.caller.count_output("terminated") == caller_ended;
    let (sip_observed, rtp_observed) = counters.read();

    // The softphone re-INVITEs: VICIfast puts the flow's new address in its SDP, the caller
    // sends its audio there, and the softphone hears it again.
    let reinvited = Instant::now();
    site.phone.command("reinvite", "").unwrap();
    let heard_before = std::fs::metadata(&phone_file).map_or(0, |m| m.len());
    let deadline = Instant::now() + WAIT;
    // A second of audio more (8000 samples of 16 bits).
    while std::fs::metadata(&phone_file).map_or(0, |m| m.len()) < heard_before + 16_000 {
        assert!(
            Instant::now() < deadline,
            "the softphone heard nothing after its re-INVITE: {}",
            site.phone.output_tail()
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
    let heard_again = Instant::now();
    let (_, rtp_to_new) = new_counters.read();
    assert!(
        rtp_to_new > 0,
        "the caller's audio did not go to the new address"
    );
    let (_, rtp_after_reinvite) = counters.read();

    // The caller hangs up: its BYE follows the dialog's route set, fixed when the call began.
    site.caller.command("hangup", "").unwrap();
    let bye_passed = wait_count(&site.phone, "terminated", phone_ended, BYE_WINDOW);
    let (sip_after_bye, _) = counters.read();
    if !bye_passed {
        // The softphone ends the call from its side: its BYE goes out over the new flow.
        site.phone.command("hangup", "").unwrap();
        assert!(
            wait_count(&site.phone, "terminated", phone_ended, WAIT),
            "the softphone's BYE did not end the call: {}",
            site.phone.output_tail()
        );
    }
    let phone_grew = phone_watch.finish();
    let caller_grew = caller_watch.finish();
    let (phone_gap, _) = longest_stall(&phone_grew, switched, reinvited);
    let (caller_gap, _) = longest_stall(&caller_grew, switched, reinvited);
    let (_, phone_back) = longest_stall(&phone_grew, reinvited, heard_again);
    let phone_silence = longest_silence(&phone_file).unwrap();
    let caller_silence = longest_silence(&caller_file).unwrap();

    eprintln!(
        "--- a call across a route switch (Wi-Fi to wired, the Wi-Fi address {}) ---",
        if remove_old_address {
            "removed"
        } else {
            "kept"
        }
    );
    eprintln!("registration moved: new binding {moved:?} after the switch");
    eprintln!(
        "VICIfast told the agent (call_moved) at most {told_after:?} after the switch: {}",
        told["message"]
    );
    eprintln!(
        "call still up {:?} after the switch (nobody hung up): {survived}",
        OBSERVE + moved
    );
    eprintln!(
        "softphone (hears the caller): no audio for {phone_gap:?} from the switch to its re-INVITE{}; \
         audio back {} after the re-INVITE",
        if phone_gap >= reinvited.duration_since(switched) {
            " (the whole time)"
        } else {
            ""
        },
        phone_back.map_or("never".to_owned(), |d| format!("{d:?}")),
    );
    eprintln!("caller (hears the softphone): longest stretch without audio after the switch {caller_gap:?}");
    eprintln!(
        "recordings (baresip writes only what arrives): longest quiet stretch inside: softphone {:.2} s, caller {:.2} s",
        phone_silence.seconds, caller_silence.seconds
    );
    eprintln!(
        "sent to the old address after the switch (counted at the router): {} RTP packets and {} SIP messages \
         before the re-INVITE, {} RTP after it; {} SIP messages after the caller's BYE; \
         RTP to the new address after the re-INVITE: {rtp_to_new}",
        rtp_observed - rtp_before,
        sip_observed - sip_before,
        rtp_after_reinvite - rtp_observed,
        sip_after_bye - sip_observed,
    );
    eprintln!(
        "the caller's in-dialog BYE {}",
        if bye_passed {
            "reached the softphone"
        } else {
            "did not reach the softphone (the softphone's own BYE ended the call)"
        },
    );

    // Whatever happened to that call, the next one works.
    site.call_in();
    let told = site.calls_moved_before_next_call();
    assert_eq!(told.len(), 1, "told once per switch: {told:?}");
    let ended = site.phone.count_output("terminated");
    site.caller.command("hangup", "").unwrap();
    assert!(
        wait_count(&site.phone, "terminated", ended, WAIT),
        "the caller's BYE did not end the next call: {}",
        site.phone.output_tail()
    );
}
