//! The same load from SIPp (`sip-tester`), the SIP industry's load generator: each call of the
//! scenario is one registration with digest auth (REGISTER, 401, REGISTER with credentials,
//! 200), one per user of an injection file, at a fixed rate. Its CPU time is what the fleet's
//! is compared with.

use crate::fleet::children_cpu;
use crate::tools::find_program;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scenario: a REGISTER, its 401, the REGISTER with SIPp's answer to the challenge, its 200.
fn register_scenario() -> String {
    let first = register_message(1, None);
    let second = register_message(
        2,
        Some(r#"[authentication username="[field0]" password="[field1]"]"#),
    );
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register with digest auth">
{first}  <recv response="401" auth="true"/>
{second}  <recv response="200"/>
</scenario>
"#
    )
}

/// One REGISTER of the scenario, with `authorization` (SIPp's answer to a challenge) if any.
fn register_message(cseq: u32, authorization: Option<&str>) -> String {
    let authorization = authorization
        .map(|line| format!("      {line}\n"))
        .unwrap_or_default();
    format!(
        r#"  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:[field0]@[remote_ip]>;tag=[call_number]
      To: <sip:[field0]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port]>
{authorization}      Expires: [field2]
      User-Agent: SIPp
      Content-Length: 0

    ]]>
  </send>
"#
    )
}

/// What one SIPp run did.
#[derive(Debug, Clone)]
pub struct SippRun {
    pub succeeded: u64,
    pub failed: u64,
    pub wall: Duration,
    /// SIPp's own CPU time (user + system).
    pub cpu: Duration,
}

/// Registers each `(user, password)` once through SIPp over `transport` (UDP or TCP) at `rate`
/// per second, asking for
/// `expires`; SIPp is killed if it outlives `deadline`.
///
/// SIPp's CPU time is read from this process's reaped-children usage around the wait, so no other
/// child may be reaped meanwhile (the fleet benchmark runs nothing else then).
pub fn register_users(
    registrar: SocketAddr,
    transport: vicifast_engine::Transport,
    users: &[(String, String)],
    expires: Duration,
    rate: u32,
    deadline: Duration,
) -> Result<SippRun, String> {
    let sipp = find_program("sipp").ok_or("sipp not found: run `make bench`, which installs it")?;
    let dir = tempfile::Builder::new()
        .prefix("vicifast-fleet-sipp-")
        .tempdir()
        .map_err(|e| format!("temp dir for SIPp: {e}"))?;
    let scenario = dir.path().join("register.xml");
    std::fs::write(&scenario, register_scenario())
        .map_err(|e| format!("writing the scenario: {e}"))?;
    let mut csv = String::from("SEQUENTIAL\n");
    for (user, password) in users {
        let _ = writeln!(csv, "{user};{password};{};", expires.as_secs());
    }
    let injection = dir.path().join("users.csv");
    std::fs::write(&injection, csv).map_err(|e| format!("writing the users file: {e}"))?;
    let stats = dir.path().join("stats.csv");
    let mut command = Command::new(sipp);
    command
        .arg(registrar.to_string())
        .arg("-sf")
        .arg(&scenario)
        .arg("-inf")
        .arg(&injection)
        .args(["-i", &registrar.ip().to_string()])
        // One socket (or one connection) for every call.
        .args([
            "-t",
            if transport == vicifast_engine::Transport::Udp {
                "u1"
            } else {
                "t1"
            },
        ])
        .args(["-m", &users.len().to_string()])
        .args(["-r", &rate.max(1).to_string()])
        .args(["-buff_size", "4194304"])
        .args(["-timeout", &format!("{}s", deadline.as_secs().max(1))])
        .args(["-nostdin", "-trace_stat", "-fd", "1"])
        .arg("-stf")
        .arg(&stats)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let cpu_before = children_cpu();
    let start = Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("starting sipp: {e}"))?;
    let wall = start.elapsed();
    let cpu = children_cpu().saturating_sub(cpu_before);
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let (succeeded, failed) = final_counts(&text).ok_or_else(|| {
        format!(
            "sipp ({}) wrote no statistics: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    Ok(SippRun {
        succeeded,
        failed,
        wall,
        cpu,
    })
}

/// The cumulative successful and failed call counts from SIPp's statistics file (`;`-separated,
/// a header line, then one line per dump; the last is final).
fn final_counts(csv: &str) -> Option<(u64, u64)> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let column = |name: &str| -> Option<u64> {
        let index = header.iter().position(|h| h.trim() == name)?;
        last.get(index)?.trim().parse().ok()
    };
    Some((column("SuccessfulCall(C)")?, column("FailedCall(C)")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_dump() {
        let csv = "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n\
                   a;1;1;0;0;\n\
                   b;5;6;1;2;\n";
        assert_eq!(final_counts(csv), Some((6, 2)));
        assert_eq!(final_counts("StartTime;\n"), None);
    }
}
