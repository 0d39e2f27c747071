//! The core's own check of its config: whoever built it (a library user that skipped the
//! settings' validation, a provisioning source), a value with a line break never reaches the
//! wire. The registration fails at once with `invalid_settings`, naming the field, and asks
//! for nothing: no lookup, no flow, no datagram, also after "try again" or a new password.
#![allow(clippy::unwrap_used)] // a panic is the failure report

use std::time::Instant;
use vicifast_core::{
    AccountConfig, Event, Output, Password, ProblemCode, Purpose, Registration, RegistrationState,
    ServerAddress,
};

fn outputs(reg: &mut Registration) -> Vec<Output> {
    std::iter::from_fn(|| reg.poll_output()).collect()
}

#[test]
fn a_line_break_in_any_value_fails_before_anything_is_sent() {
    type Change = fn(&mut AccountConfig);
    let changes: [(&str, Change); 5] = [
        ("extension", |c| c.user = "101\r\nX-Injected: 1".into()),
        ("authentication user", |c| {
            c.auth_user = Some("agent\r\nX-Injected: 1".into())
        }),
        ("domain", |c| c.domain = Some("example.com\r\nX: 1".into())),
        ("server", |c| c.registrar.host = "pbx\r\nX: 1".into()),
        ("proxy", |c| {
            c.outbound_proxy = Some(ServerAddress {
                host: "proxy\nX: 1".into(),
                port: None,
                transport: None,
            })
        }),
    ];
    for (what, change) in changes {
        let mut config = AccountConfig::new(
            "Office",
            ServerAddress::parse("pbx.example.com").unwrap(),
            "101",
        );
        change(&mut config);
        let mut reg = Registration::new(config, Password::new("pw"), Purpose::Maintain, [7; 32]);
        let now = Instant::now();
        reg.start(now);
        let mut all = outputs(&mut reg);
        reg.retry_now(now);
        all.extend(outputs(&mut reg));
        reg.set_password(now, Password::new("pw2"));
        all.extend(outputs(&mut reg));
        assert!(
            !all.iter().any(|o| matches!(
                o,
                Output::Transmit(_) | Output::OpenFlow { .. } | Output::Resolve { .. }
            )),
            "{what}: something was asked for: {all:?}"
        );
        let last = all
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::Event(Event::Status(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(last.state, RegistrationState::Failed, "{what}");
        let problem = last.problem.unwrap();
        assert_eq!(problem.code, ProblemCode::InvalidSettings, "{what}");
        assert!(
            problem.detail.contains("control characters"),
            "{what}: {problem:?}"
        );
        assert!(reg.poll_timeout().is_none(), "{what}: a retry is scheduled");
    }
}
