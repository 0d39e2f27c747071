//! The softphone on this computer registers with VICIfast and also, by a second account for the
//! same extension, directly with the PBX (Kamailio): the set-up that makes Asterisk swap the
//! binding between the two at each refresh. VICIfast must name it — the softphone's problem
//! `also_registered_directly`, with the direct contact — and keep its own binding as it is
//! instead of fighting for it. It shows in the registrar's answer to VICIfast's next binding check
//! (a REGISTER without Contact), which lists every binding of the extension: within the check
//! interval, long before the next refresh.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::edge::{
    answering_softphone, skip_without_baresip, start_vicifast, stop_vicifast, vicifast_contact,
    wait_bindings,
};
use vicifast_e2e::softphone::{Placement, Softphone};
use vicifast_e2e::{Registrar, RegistrarOptions, WAIT};

#[test]
fn a_softphone_that_also_registers_directly_is_reported_and_not_fought() {
    let test = "a_softphone_that_also_registers_directly_is_reported_and_not_fought";
    if skip_without_baresip(test) {
        return;
    }
    let registrar = Registrar::start(RegistrarOptions::default()).unwrap();
    let ext = vicifast_e2e::random_extension();
    let password = registrar.add_user(&ext).unwrap();
    // The registrar's answer to a binding check lists every binding of the extension: that is
    // where the conflict shows. The default lifetime keeps the next refresh minutes away, so
    // only the check (every 2 s here) can find it in time.
    let (mut cli, listen) = start_vicifast(
        &registrar,
        &ext,
        &password,
        &["--binding-check-interval", "2"],
    );
    let vicifast_contact = vicifast_contact(&cli);

    // One baresip, two accounts for the extension: through VICIfast, and straight to Kamailio.
    let direct = format!(
        "<sip:{ext}@127.0.0.1>;auth_pass={password};outbound=\"sip:127.0.0.1:{}\";regint=60",
        registrar.udp_port()
    );
    let phone = Softphone::start_with_accounts(
        &answering_softphone(
            &ext,
            &password,
            "127.0.0.1",
            format!("sip:{listen}"),
            1000.0,
        ),
        &Placement::loopback(),
        &[direct],
        &[],
    )
    .unwrap();
    // VICIfast's binding and the direct account's.
    wait_bindings(&registrar, &ext, 2, &phone);

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
    stop_vicifast(cli);
}
