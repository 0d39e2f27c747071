//! Kamailio inside the `reg` namespace, with what the mobility tests need to see: the bindings
//! (`kamcmd ul.dump`) and a log line per REGISTER and per successful save, stamped with
//! `$TV(Sn)` (CLOCK_REALTIME, microseconds) so latencies are measured in the harness's clock.

use super::bindings::{parse_register_line, parse_ul_dump, Binding, RegisterEvent};
use super::client::terminate;
use super::{io_err, run, wait_until, NetnsError, Result, Topology, REGISTRAR_ADDR};
use crate::tools::{make_test_certificates, TEST_CA_FILE, TEST_SERVER_CERT, TEST_SERVER_KEY};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

pub const SAVED_MARKER: &str = "VF-SAVED";
pub const REGISTER_MARKER: &str = "VF-REGISTER";

#[derive(Debug, Clone, Default)]
pub struct RegistrarOptions {
    /// Kamailio `registrar` `max_contacts`; 0 = unlimited.
    pub max_contacts: u32,
    pub tls: bool,
}

#[derive(Debug)]
pub struct NsRegistrar {
    child: Option<Child>,
    dir: PathBuf,
    ns: String,
    log: PathBuf,
    ctl: PathBuf,
    ca_file: Option<PathBuf>,
    user: String,
    password: String,
    tls: bool,
    starts: u32,
}

const CONFIG: &str = r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:__ADDR__:5060
listen=tcp:__ADDR__:5060
__TLS_LISTEN__
tcp_connection_lifetime=3605
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "ctl.so"
loadmodule "kex.so"
loadmodule "nathelper.so"
loadmodule "textops.so"
__TLS_MODULE__
modparam("ctl", "binrpc", "unix:__CTL__")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_contacts", __MAX_CONTACTS__)
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "received_avp", "$avp(RECEIVED)")
request_route {
  force_rport();
  if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
  if (!is_method("REGISTER")) { sl_send_reply("405", "Method Not Allowed"); exit; }
  $var(pw) = "__PASSWORD__";
  if (!pv_auth_check("$fd", "$var(pw)", "0", "1")) { auth_challenge("$fd", "1"); exit; }
  consume_credentials();
  xlog("L_NOTICE", "VF-REGISTER $TV(Sn) $si:$sp $hdr(Expires)| $(hdr(Contact)[*])\n");
  fix_nated_register();
  if (!save("location")) { xlog("L_NOTICE", "VF-SAVE-FAILED $TV(Sn) $si:$sp $hdr(Expires)| $(hdr(Contact)[*])\n"); sl_reply_error(); exit; }
  xlog("L_NOTICE", "VF-SAVED $TV(Sn) $si:$sp $hdr(Expires)| $(hdr(Contact)[*])\n");
}
"#;

impl NsRegistrar {
    pub fn start(
        topo: &Topology,
        opts: &RegistrarOptions,
        user: &str,
        password: &str,
    ) -> Result<NsRegistrar> {
        let dir = topo.dir().join("kamailio");
        std::fs::create_dir_all(&dir).map_err(io_err("creating kamailio dir"))?;
        let ctl = dir.join("ctl.sock");
        let mut ca_file = None;
        let (tls_listen, tls_module) = if opts.tls {
            ca_file = Some(make_certs(&dir)?);
            std::fs::write(
                dir.join("tls.cfg"),
                format!(
                    "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
                     private_key = {0}/{TEST_SERVER_KEY}\ncertificate = {0}/{TEST_SERVER_CERT}\n",
                    dir.display()
                ),
            )
            .map_err(io_err("writing tls.cfg"))?;
            (
                format!("listen=tls:{REGISTRAR_ADDR}:5061\nenable_tls=yes"),
                format!(
                    "loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}/tls.cfg\")",
                    dir.display()
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let config = CONFIG
            .replace("__ADDR__", REGISTRAR_ADDR)
            .replace("__TLS_LISTEN__", &tls_listen)
            .replace("__TLS_MODULE__", &tls_module)
            .replace("__CTL__", &ctl.display().to_string())
            .replace("__MAX_CONTACTS__", &opts.max_contacts.to_string())
            .replace("__PASSWORD__", password);
        std::fs::write(dir.join("kamailio.cfg"), config).map_err(io_err("writing kamailio.cfg"))?;
        let mut reg = NsRegistrar {
            child: None,
            log: dir.join("kamailio.log"),
            dir,
            ns: topo.reg().name().to_owned(),
            ctl,
            ca_file,
            user: user.into(),
            password: password.into(),
            tls: opts.tls,
            starts: 0,
        };
        reg.spawn(topo)?;
        Ok(reg)
    }

    fn spawn(&mut self, topo: &Topology) -> Result<()> {
        let _ = std::fs::remove_file(&self.ctl);
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_err("opening kamailio log"))?;
        let mut cmd = topo.reg().command("kamailio");
        cmd.args(["-DD", "-E", "-m", "32", "-M", "8", "-f"])
            .arg(self.dir.join("kamailio.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().map_err(io_err("starting kamailio"))?);
        let ready = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            let udp = topo
                .reg()
                .exec("ss", ["-Hlnu", "src", &format!("{REGISTRAR_ADDR}:5060")])
                .ok()?;
            let tcp = topo
                .reg()
                .exec("ss", ["-Hlnt", "src", &format!("{REGISTRAR_ADDR}:5060")])
                .ok()?;
            (!udp.trim().is_empty() && !tcp.trim().is_empty() && self.ctl.exists()).then_some(())
        });
        if ready.is_none() {
            return Err(NetnsError::Timeout {
                what: "kamailio to listen".into(),
                waited: Duration::from_secs(10),
                last: self.log_tail(),
            });
        }
        Ok(())
    }

    /// Stops Kamailio and starts it again: every in-memory binding is gone.
    pub fn restart(&mut self, topo: &Topology) -> Result<std::time::SystemTime> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
        let at = std::time::SystemTime::now();
        self.spawn(topo)?;
        Ok(at)
    }

    pub fn bindings(&self) -> Result<Vec<Binding>> {
        let out = run(
            "ip",
            [
                "netns",
                "exec",
                &self.ns,
                "kamcmd",
                "-s",
                &format!("unix:{}", self.ctl.display()),
                "ul.dump",
            ],
        )?;
        Ok(parse_ul_dump(&out)
            .into_iter()
            .filter(|b| b.aor == self.user)
            .collect())
    }

    /// Every successful save logged so far, oldest first.
    pub fn saves(&self) -> Vec<RegisterEvent> {
        self.log_events(SAVED_MARKER)
    }

    /// Every REGISTER whose save failed (e.g. too many contacts), oldest first.
    pub fn rejected(&self) -> Vec<RegisterEvent> {
        self.log_events("VF-SAVE-FAILED")
    }

    /// Every authenticated REGISTER logged so far (before save), oldest first.
    pub fn registers(&self) -> Vec<RegisterEvent> {
        self.log_events(REGISTER_MARKER)
    }

    fn log_events(&self, marker: &str) -> Vec<RegisterEvent> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut v: Vec<RegisterEvent> = text
            .lines()
            .filter(|l| l.contains(&format!("{marker} ")))
            .filter_map(|l| parse_register_line(l, marker))
            .collect();
        v.sort_by(|a, b| a.at.total_cmp(&b.at));
        v
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn tls(&self) -> bool {
        self.tls
    }
}

impl Drop for NsRegistrar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
    }
}

/// A throwaway CA and a server certificate for the registrar's address; returns the CA file.
fn make_certs(dir: &Path) -> Result<PathBuf> {
    make_test_certificates(dir, &format!("IP:{REGISTRAR_ADDR}")).map_err(|detail| {
        NetnsError::Unexpected {
            expected: "a test certificate".into(),
            seen: detail,
        }
    })?;
    Ok(dir.join(TEST_CA_FILE))
}
