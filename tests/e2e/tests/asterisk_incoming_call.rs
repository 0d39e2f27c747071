//! An INVITE that reaches the CLI is answered 480 (this app takes no calls) and, with `--json`,
//! printed as an `incoming_call` event line, beside the `status` lines.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

#[test]
fn an_invite_is_a_json_event() {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let args = register_args(&registrar, Transport::Udp, &ext, &[]);
    let mut cli = Cli::spawn(&args, &password).unwrap();
    let status = cli.wait_for_state("registered", WAIT).unwrap();
    assert_eq!(status["event"], "status", "{status}");
    let contact = status["contact"].as_str().unwrap().to_owned();

    let code = registrar.send_request("INVITE", &contact).unwrap();
    assert_eq!(code, 480);
    let call = cli
        .wait_for(|e| e["event"] == "incoming_call", WAIT)
        .unwrap();
    assert_eq!(call["account"], ext.as_str(), "{call}");
    assert!(
        call["from"]
            .as_str()
            .is_some_and(|f| f.starts_with("sip:registrar@")),
        "{call}"
    );
    assert!(call["call_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(call["at"].as_str().is_some());
    // Every line on stdout is a JSON object naming its event.
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
    for line in cli.stdout_lines() {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(value["event"].is_string(), "{line}");
    }
}

#[test]
fn trace_is_a_global_flag_and_json_carries_it() {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    for command in ["bindings", "unregister"] {
        let args = vicifast_e2e::command_args(command, &registrar, Transport::Tcp, &ext, &[]);
        let mut with_trace = vec!["--trace".to_owned()];
        with_trace.extend(args.clone());
        let done = Cli::run(&with_trace, &password, WAIT).unwrap();
        assert!(done.status.success(), "{command}: {}", done.stderr);
        let traces: Vec<serde_json::Value> = done
            .stdout
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "trace")
            .collect();
        assert!(
            traces.iter().any(|t| t["direction"] == "sent"
                && t["text"]
                    .as_str()
                    .is_some_and(|x| x.starts_with("REGISTER "))),
            "{command}: {:?}",
            done.stdout
        );
        // -v after the subcommand is accepted too.
        let mut verbose = args;
        verbose.push("-v".to_owned());
        assert!(Cli::run(&verbose, &password, WAIT)
            .unwrap()
            .status
            .success());
    }
}
