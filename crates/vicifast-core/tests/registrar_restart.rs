//! A registrar that restarts (or a load balancer that drops every connection at once) gets its
//! agents back within seconds, spread out: after a flow whose binding had held breaks, the next
//! attempts come after random waits under 2, 4, 8 and 16 s, then the backoff applies. One
//! laptop's own network change still re-registers in the same instant.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{FlowErrorKind, RegistrationState, Transport};

fn seed(n: u32) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed
}

/// Agent `n`, registered over TCP for five minutes (its binding has held).
fn registered_for_five_minutes(n: u32) -> Sim {
    let mut sim = Sim::with_seed(
        config_over(Transport::Tcp),
        "pw",
        FakeRegistrar::new("pw"),
        seed(n),
    );
    sim.register();
    sim.run_for(Duration::from_secs(300));
    sim
}

/// Agent `n` after five minutes, when the registrar drops the connection; while it is `down`,
/// it refuses new ones.
fn registered_then_dropped(n: u32, down: bool) -> (Sim, Duration) {
    let mut sim = registered_for_five_minutes(n);
    if down {
        sim.refuse.insert(addr(REGISTRAR), FlowErrorKind::Refused);
    }
    let dropped_at = sim.elapsed();
    sim.break_flow(FlowErrorKind::Closed);
    (sim, dropped_at)
}

#[test]
fn a_tcp_registrar_back_after_two_seconds_has_its_agents_back_within_seconds() {
    let mut back_after = Vec::new();
    for n in 0..50 {
        // The registrar is down for 2 s: connections are refused.
        let (mut sim, dropped_at) = registered_then_dropped(n, true);
        sim.run_until(dropped_at + Duration::from_secs(2), |_| false);
        sim.refuse.clear();
        let up_at = sim.elapsed();
        assert!(
            sim.run_until(up_at + Duration::from_secs(60), |s| s.last_status().state
                == RegistrationState::Registered)
        );
        back_after.push((sim.elapsed() - up_at).as_secs_f64());
    }
    back_after.sort_by(f64::total_cmp);
    let mean = back_after.iter().sum::<f64>() / back_after.len() as f64;
    println!(
        "registered again after the registrar came back (50 seeds): median {:.1} s, mean {mean:.1} s, max {:.1} s",
        back_after[25],
        back_after[49]
    );
    // At worst one quick-retry window after the registrar is back (the backoff alone waited
    // 30 to 60 s).
    assert!(back_after[49] < 16.0, "{back_after:?}");
    assert!(back_after[25] < 4.0, "{back_after:?}");
}

#[test]
fn a_restarted_registrars_agents_come_back_spread_out_not_in_one_spike() {
    let agents = 200;
    let mut first_register = Vec::new();
    for n in 0..agents {
        let (mut sim, dropped_at) = registered_then_dropped(n, false);
        let before = sim.registers_sent().len();
        sim.run_until(dropped_at + Duration::from_secs(60), |s| {
            s.registers_sent().len() > before
        });
        first_register.push(sim.registers_sent()[before].at - dropped_at);
    }
    // Ten slices of 200 ms over the first 2 s.
    let mut slices = [0usize; 10];
    for at in &first_register {
        assert!(*at < Duration::from_secs(2), "{at:?}");
        slices[(at.as_millis() / 200) as usize] += 1;
    }
    println!("first REGISTERs of {agents} agents after a registrar drop, per 200 ms: {slices:?}");
    // Uniform would be 20 a slice; one instant for all would be 200 in the first.
    assert!(slices.iter().all(|n| *n <= 40), "{slices:?}");
}

#[test]
fn the_laptops_own_network_change_still_re_registers_in_the_same_instant() {
    for n in 0..20 {
        let mut sim = registered_for_five_minutes(n);
        let before = sim.registers_sent().len();
        let changed_at = sim.elapsed();
        sim.move_to(Some("198.18.2.2"));
        assert_eq!(sim.last_status().state, RegistrationState::Registered);
        assert_eq!(sim.registers_sent()[before].at, changed_at);
    }
}
