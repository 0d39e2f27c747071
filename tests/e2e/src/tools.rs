//! Finding the external programs the harness drives, running one under a deadline, and making
//! the throwaway certificates the TLS registrars use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `name` on PATH or in the sbin dirs (Debian installs kamailio and kamcmd in /usr/sbin, which a
/// non-root PATH may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Why a command run by [`run_with_deadline`] gave no output.
#[derive(Debug)]
pub enum RunError {
    Spawn(std::io::Error),
    TimedOut(Duration),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "could not start: {e}"),
            RunError::TimedOut(d) => write!(f, "no answer within {d:?} (killed)"),
        }
    }
}

/// Runs `cmd` to completion, killing it if it outlives `deadline` (a wedged kamcmd or openssl
/// must fail the test, not hang it).
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Result<Output, RunError> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RunError::Spawn)?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(RunError::Spawn(e)),
        Err(_) => {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            Err(RunError::TimedOut(deadline))
        }
    }
}

/// Files of a throwaway test PKI made by [`make_test_certificates`], in the directory given.
pub const TEST_CA_FILE: &str = "ca.pem";
pub const TEST_SERVER_KEY: &str = "key.pem";
pub const TEST_SERVER_CERT: &str = "cert.pem";

/// Makes a throwaway CA (valid two days) and a server certificate it signed for
/// `subject_alt_names` (openssl syntax, e.g. `IP:127.0.0.1,DNS:localhost`), in `dir`. The error
/// says which openssl step failed and what it printed.
pub fn make_test_certificates(dir: &Path, subject_alt_names: &str) -> Result<(), String> {
    const OPENSSL_DEADLINE: Duration = Duration::from_secs(10);
    let openssl = find_program("openssl").ok_or("openssl is not installed (package openssl)")?;
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName={subject_alt_names}\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n"
        ),
    )
    .map_err(|e| format!("writing {}: {e}", dir.join("server.ext").display()))?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", TEST_CA_FILE, "-days", "2"],
        ]
        .concat()
        .into_iter()
        .chain([
            "-subj",
            "/CN=VICIfast test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .collect(),
        [
            &["req"][..],
            &ec,
            &["-keyout", TEST_SERVER_KEY, "-out", "server.csr"],
        ]
        .concat()
        .into_iter()
        .chain(["-subj", "/CN=VICIfast test registrar"])
        .collect(),
        vec![
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            TEST_CA_FILE,
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            TEST_SERVER_CERT,
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    ];
    for args in steps {
        let output = run_with_deadline(
            Command::new(&openssl).args(&args).current_dir(dir),
            OPENSSL_DEADLINE,
        )
        .map_err(|e| format!("openssl {}: {e}", args.join(" ")))?;
        if !output.status.success() {
            return Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(())
}
