//! The softphone on this computer registers with VICIfast and also, by a second account for the
//! same extension, directly with the PBX (Kamailio): the set-up that makes Asterisk swap the
//! binding between the two at each refresh. VICIfast must name it — the softphone's problem
//! `also_registered_directly`, with the direct contact — and keep its own binding as it is
//! instead of fighting for it. It shows in the registrar's answer to VICIfast's next binding check
//! (a REGISTER without Contact), which lists every binding of the extension: within the check
//! interval, long before the next refresh.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::time::{Duration, Instant};
use vicifast_e2e::softphone::{baresip_available, Placement, Softphone, SoftphoneOptions};
use vicifast_e2e::{register_args, Cli, Registrar, RegistrarOptions, Transport, WAIT};

#[test]
fn a_softphone_that_also_registers_directly_is_reported_and_not_fought() {
    let test = "a_softphone_that_also_registers_directly_is_reported_and_not_fought";
    if !baresip_available() {
        vicifast_e2e::skip::skipped(test, "needs baresip-core with the aufile, sndfile, g711, menu, aubridge and ctrl_tcp modules (make test-e2e installs it)");
        return;
    }
    let registrar = Registrar::start(RegistrarOptions::default()).unwrap();
    let ext = vicifast_e2e::random_extension();
    let password = registrar.add_user(&ext).unwrap();
    // The registrar's answer to a binding check lists every binding of the extension: that is
    // where the conflict shows. The default lifetime keeps the next refresh minutes away, so
    // only the check (every 2 s here) can find it in time.
    let mut cli = Cli::spawn(
        &register_args(
            &registrar,
            Transport::Udp,
            &ext,
            &[
                "--softphone-listen",
                "127.0.0.1:0",
                "--binding-check-interval",
                "2",
            ],
        ),
        &password,
    )
    .unwrap();
    let listen = cli
        .wait_for(|s| s["event"] == "softphone_listener", WAIT)
        .unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.wait_for_state("registered", WAIT).unwrap();
    let vicifast_contact = cli
        .statuses()
        .iter()
        .rev()
        .filter(|s| s["event"] == "status")
        .find_map(|s| s["contact"].as_str().map(str::to_owned))
        .unwrap();

    // One baresip, two accounts for the extension: through VICIfast, and straight to Kamailio.
    let direct = format!(
        "<sip:{ext}@127.0.0.1>;auth_pass={password};outbound=\"sip:127.0.0.1:{}\";regint=60",
        registrar.udp_port()
    );
    let phone = Softphone::start_with_accounts(
        &SoftphoneOptions {
            user: ext.clone(),
            password: password.clone(),
            domain: "127.0.0.1".into(),
            outbound: format!("sip:{listen}"),
            regint: 60,
            tone: 1000.0,
            auto_answer: true,
            tcp: false,
        },
        &Placement::loopback(),
        &[direct],
        &[],
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while registrar.bindings(&ext).unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the direct account did not register: {:?}\n{}",
            registrar.bindings(&ext),
            phone.output_tail()
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }

    let reported = cli
        .wait_for(
            |s| s["event"] == "softphone" && s["problem"]["code"] == "also_registered_directly",
            WAIT,
        )
        .unwrap_or_else(|e| panic!("{e}\n--- baresip ---\n{}", phone.output_tail()));
    eprintln!(
        "reported: {} {} ({})",
        reported["problem"]["message"],
        reported["problem"]["action"],
        reported["problem"]["detail"]
    );
    let detail = reported["problem"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&phone.sip_addr()),
        "the report does not name the direct contact {}: {reported}",
        phone.sip_addr()
    );
    assert!(
        !reported["problem"]["action"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "the report says nothing about what to change: {reported}"
    );

    // Both bindings stay: VICIfast neither gave up its own nor removed the softphone's.
    let bindings = registrar.bindings(&ext).unwrap();
    assert!(
        bindings.iter().any(|b| b.uri == vicifast_contact),
        "{bindings:?}"
    );
    assert!(
        bindings.iter().any(|b| b.uri.contains(&phone.sip_addr())),
        "VICIfast removed the softphone's direct binding: {bindings:?}"
    );

    drop(phone);
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}
