//! The status model shared by the CLI and the desktop app.
//!
//! Everything here is plain data that serialises to the JSON the CLI prints with `--json` and the
//! app pushes to its window. Durations are whole seconds relative to the moment the status was
//! produced; the driver adds the wall-clock timestamp (`at`) when it publishes a status.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where the registration stands, as a user would put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegistrationState {
    /// Not started yet.
    Idle,
    /// A REGISTER is on its way (first registration, or after the binding was lost).
    Registering,
    /// The registrar holds our binding; calls can reach this device.
    Registered,
    /// The last attempt failed for a reason that may pass; another attempt is scheduled.
    Retrying,
    /// Stopped for a reason that needs the user (wrong password, forbidden): no more attempts.
    Failed,
    /// No usable network path to the registrar.
    Offline,
    /// Our binding was removed on request.
    Unregistered,
}

impl RegistrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Registering => "registering",
            Self::Registered => "registered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Offline => "offline",
            Self::Unregistered => "unregistered",
        }
    }
}

impl fmt::Display for RegistrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SIP transport of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The token used in Via headers (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// The value of the `transport=` URI parameter.
    pub fn param(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Self::Udp | Self::Tcp => 5060,
            Self::Tls => 5061,
        }
    }

    /// Reliable transports have no retransmissions (RFC 3261 §17.1.2.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Self::Udp),
            "tcp" => Ok(Self::Tcp),
            "tls" => Ok(Self::Tls),
            other => Err(format!(
                "unknown transport `{other}` (expected udp, tcp or tls)"
            )),
        }
    }
}

/// Stable, machine-readable problem codes. The UI and scripts key on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemCode {
    /// The registrar rejected the credentials we had just sent.
    WrongPassword,
    /// 403: the registrar refuses this extension from this device.
    Forbidden,
    /// 404: the registrar does not know this extension.
    UnknownExtension,
    /// The registrar rejected the request for another reason the user must look at.
    Rejected,
    /// No answer from the registrar.
    Timeout,
    /// The registrar's name could not be resolved.
    DnsFailure,
    /// Nothing listens at the registrar's address and port (TCP/TLS refused, ICMP unreachable).
    ConnectionRefused,
    /// The TLS certificate of the registrar could not be verified: not retried until the user
    /// acts (try again, or change the settings).
    TlsCertificate,
    /// The registrar answered with a 5xx error.
    ServerError,
    /// No usable network path.
    NetworkDown,
    /// The connection to the registrar broke for another reason.
    TransportError,
    /// The registrar answered something we could not use.
    InvalidResponse,
    /// The keychain has no password, or could not be reached (set by the app/CLI, not the engine).
    Credentials,
    /// A setting cannot be used (a control character, a malformed host…): nothing was sent.
    InvalidSettings,
    /// Another device holds the extension's binding instead of this one: calls go there.
    /// Registration goes on at the normal refresh rate; the user chooses which device keeps it.
    ExtensionInUse,
    /// The settings file cannot be used (damaged, or written by a newer version): nothing
    /// registers from it and it is never overwritten (set by the app, not the engine).
    SettingsFile,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongPassword => "wrong_password",
            Self::Forbidden => "forbidden",
            Self::UnknownExtension => "unknown_extension",
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::DnsFailure => "dns_failure",
            Self::ConnectionRefused => "connection_refused",
            Self::TlsCertificate => "tls_certificate",
            Self::ServerError => "server_error",
            Self::NetworkDown => "network_down",
            Self::TransportError => "transport_error",
            Self::InvalidResponse => "invalid_response",
            Self::Credentials => "credentials",
            Self::InvalidSettings => "invalid_settings",
            Self::ExtensionInUse => "extension_in_use",
            Self::SettingsFile => "settings_file",
        }
    }

    /// Whether this problem stops all further attempts until the user acts.
    pub fn needs_user(self) -> bool {
        matches!(
            self,
            Self::WrongPassword
                | Self::Forbidden
                | Self::UnknownExtension
                | Self::Rejected
                | Self::TlsCertificate
                | Self::Credentials
                | Self::InvalidSettings
                | Self::SettingsFile
        )
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, in words for the agent, plus the technical detail for support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Problem {
    pub code: ProblemCode,
    /// What happened, in plain language.
    pub message: String,
    /// What to try, in plain language.
    pub action: String,
    /// Technical detail (status line, error text) for support staff.
    pub detail: String,
}

impl Problem {
    /// A problem with the standard wording for its code and the given technical detail.
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        let (message, action) = wording(code);
        Self {
            code,
            message: message.to_owned(),
            action: action.to_owned(),
            detail: detail.into(),
        }
    }
}

impl Problem {
    /// A 403 to a REGISTER whose credentials answered the challenge just received: the password
    /// is probably wrong (Asterisk's chan_sip with `alwaysauthreject` answers a wrong password
    /// so), or the extension may not register from here. Stops as for a wrong password.
    pub fn credentials_refused(detail: impl Into<String>) -> Self {
        Self {
            message: "The phone server refused the password for this extension, or does not \
                      let it register from this computer."
                .to_owned(),
            action: "Enter the password again; if it is right, ask your administrator whether \
                     this extension may register from this computer."
                .to_owned(),
            ..Self::new(ProblemCode::WrongPassword, detail)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.message, self.action, self.detail)
    }
}

fn wording(code: ProblemCode) -> (&'static str, &'static str) {
    match code {
        ProblemCode::WrongPassword => (
            "The phone server did not accept the password for this extension.",
            "Check the extension and password with your administrator, then enter the password again.",
        ),
        ProblemCode::Forbidden => (
            "The phone server refused this extension from this computer.",
            "Check the extension, authentication user and password with your administrator; the server may also be blocking this address.",
        ),
        ProblemCode::UnknownExtension => (
            "The phone server does not know this extension.",
            "Check the extension number and domain in Settings with your administrator.",
        ),
        ProblemCode::Rejected => (
            "The phone server rejected the registration.",
            "Send the technical details to your administrator.",
        ),
        ProblemCode::Timeout => (
            "The phone server did not answer.",
            "A firewall may be blocking SIP: try the TCP or TLS transport, or check the server address. Retrying automatically.",
        ),
        ProblemCode::DnsFailure => (
            "The phone server's name could not be found.",
            "Check the server address in Settings and that this computer is online. Retrying automatically.",
        ),
        ProblemCode::ConnectionRefused => (
            "The phone server refused the connection.",
            "Check the server address, port and transport in Settings. Retrying automatically.",
        ),
        ProblemCode::TlsCertificate => (
            "The phone server's security certificate could not be verified.",
            "Ask your administrator for the right server name or certificate, then try again; do not continue on an untrusted network.",
        ),
        ProblemCode::ServerError => (
            "The phone server had a problem handling the registration.",
            "Retrying automatically; tell your administrator if it lasts.",
        ),
        ProblemCode::NetworkDown => (
            "This computer has no network connection to the phone server.",
            "Check Wi-Fi or the network cable. The phone registers again as soon as the network is back.",
        ),
        ProblemCode::TransportError => (
            "The connection to the phone server broke.",
            "Retrying automatically; if it keeps happening, try another transport.",
        ),
        ProblemCode::InvalidResponse => (
            "The phone server sent an answer this app could not use.",
            "Retrying automatically; send the technical details to your administrator.",
        ),
        ProblemCode::Credentials => (
            "The password for this extension could not be read from the keychain.",
            "Unlock the system keychain or enter the password again in Settings.",
        ),
        ProblemCode::InvalidSettings => (
            "A setting of this account cannot be used, so nothing was sent to the phone server.",
            "Correct the setting named in the details in Settings.",
        ),
        ProblemCode::ExtensionInUse => (
            "Another device is registered on this extension and took it from this computer: \
             calls go to whichever device registered last.",
            "Sign out the other device, or choose which one keeps the extension: use this \
             computer, or stop here.",
        ),
        ProblemCode::SettingsFile => (
            "The settings file could not be read.",
            "Ask your administrator to repair or remove the settings file, then restart VICIfast.",
        ),
    }
}

/// Why a status was published: the event that led to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    Started,
    Registered,
    Refreshed,
    RefreshFailed,
    Failed,
    RetryScheduled,
    Unregistered,
    CredentialsChanged,
    UserRequest,
    NetworkChanged,
    AddressChanged,
    NatRebinding,
    FlowFailed,
    Resumed,
    BindingLost,
    /// Another device took the extension's binding (see [`Status::extension_in_use`]).
    ExtensionInUse,
    /// The user chose to use this computer for the extension: registered again at once.
    TakeOver,
    /// No other device has held the extension for a while: the episode is over.
    ExtensionFree,
    /// A binding check found other bindings listed for the extension than before (ours kept).
    BindingsChanged,
}

/// One binding the registrar holds for the extension, as listed in its 200 OK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BindingInfo {
    /// The Contact URI (without the angle brackets and header parameters).
    pub contact: String,
    /// Seconds until the registrar drops it, as the registrar said.
    pub expires_in: Option<u32>,
    /// Whether this binding was registered by this installation (this one, or a stale one).
    pub ours: bool,
    /// Ours, but not the binding this registration keeps: left from before a crash or a network
    /// change, and removed with our next REGISTER.
    #[serde(default)]
    pub stale: bool,
}

/// Why VICIfast refreshes our binding on another lifetime than the registrar granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExpiryAdjustmentReason {
    /// Shorter than 30 s (or than we asked, if that was less): refreshing that often would
    /// flood the registrar, so we refresh as if it had granted the floor.
    BelowMinimum,
    /// Longer than we asked (or than a day): refreshing that late would leave a lost binding
    /// unnoticed, so we refresh as if it had granted what we asked.
    AboveRequested,
}

/// The registrar granted a binding lifetime VICIfast does not refresh by, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ExpiryAdjustment {
    /// Seconds the registrar granted.
    pub granted: u32,
    /// Seconds VICIfast refreshes as if it had granted.
    pub refreshed_as: u32,
    pub reason: ExpiryAdjustmentReason,
    /// The same, in plain words.
    pub message: String,
}

impl ExpiryAdjustment {
    pub fn new(granted: u32, refreshed_as: u32, reason: ExpiryAdjustmentReason) -> Self {
        let message = match reason {
            ExpiryAdjustmentReason::BelowMinimum => format!(
                "The phone server keeps this registration for only {granted} s. VICIfast renews \
                 it as if it kept it {refreshed_as} s, so as not to flood the server, so calls \
                 may not reach this computer between renewals. Tell your administrator."
            ),
            ExpiryAdjustmentReason::AboveRequested => format!(
                "The phone server keeps this registration for {granted} s, longer than asked. \
                 VICIfast renews it as if it kept it {refreshed_as} s, so that a lost \
                 registration is noticed in time."
            ),
        };
        Self {
            granted,
            refreshed_as,
            reason,
            message,
        }
    }
}

/// A snapshot of one account's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Status {
    pub account: String,
    pub state: RegistrationState,
    pub cause: Cause,
    /// Our Contact URI as registered (or being registered).
    pub contact: Option<String>,
    /// The registrar (or outbound proxy) address we talk to, `ip:port`.
    pub server: Option<String>,
    pub transport: Transport,
    /// The local address of our flow, `ip:port`.
    pub local_address: Option<String>,
    /// Seconds the registrar granted for our binding, counted from now.
    pub expires_in: Option<u32>,
    /// Seconds until we refresh the binding.
    pub next_refresh_in: Option<u32>,
    /// Seconds until the next attempt, while retrying.
    pub next_attempt_in: Option<u32>,
    pub problem: Option<Problem>,
    /// All bindings of the extension in the last 200 OK.
    pub bindings: Vec<BindingInfo>,
    /// Set while our binding is refreshed on another lifetime than the registrar granted (boxed,
    /// like `extension_in_use`: seldom there, and it keeps a status small to pass around).
    #[serde(default)]
    pub expiry_adjusted: Option<Box<ExpiryAdjustment>>,
    /// Set while another device holds the extension's binding instead of this one.
    #[serde(default)]
    pub extension_in_use: Option<Box<ExtensionInUse>>,
}

impl Status {
    /// A status with no flow behind it: no contact, addresses, timers, problem or bindings (an
    /// embedder reporting something the engine never got to, such as an unreadable keychain).
    pub fn without_flow(
        account: impl Into<String>,
        state: RegistrationState,
        cause: Cause,
        transport: Transport,
    ) -> Self {
        Self {
            account: account.into(),
            state,
            cause,
            contact: None,
            server: None,
            transport,
            local_address: None,
            expires_in: None,
            next_refresh_in: None,
            next_attempt_in: None,
            problem: None,
            bindings: Vec::new(),
            expiry_adjusted: None,
            extension_in_use: None,
        }
    }
}

/// How another device on the extension was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InUseDetection {
    /// A binding query between refreshes listed another device and not this one.
    BindingCheck,
    /// The registrar's qualify requests stopped arriving; the query that followed listed
    /// another device.
    QualifyStopped,
    /// The answer to our own REGISTER listed another device instead of this one.
    Registration,
}

/// A device other than this one holding a binding of the extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OtherDevice {
    /// Its Contact URI, as the registrar listed it.
    pub contact: String,
    /// Where it is reached (`host:port`): the address the registrar saw it at when it says so
    /// (`received`), else the Contact's.
    pub address: Option<String>,
    /// Its User-Agent, when the registrar tells it.
    pub user_agent: Option<String>,
    /// Seconds until the registrar drops its binding, as the registrar said.
    pub expires_in: Option<u32>,
}

/// Another device holds the extension's binding instead of this one: one episode, from the
/// first time it was seen until the user chooses or no other device is seen for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ExtensionInUse {
    pub account: String,
    pub others: Vec<OtherDevice>,
    pub detected_by: InUseDetection,
    /// What happened, in plain words, naming the other device.
    pub message: String,
    /// What "use this computer" does, for the window and tray to show beside the choice.
    pub take_over_note: String,
}

impl ExtensionInUse {
    pub fn new(account: impl Into<String>, others: Vec<OtherDevice>, by: InUseDetection) -> Self {
        let named: Vec<String> = others
            .iter()
            .map(|o| {
                let at = o.address.as_deref().unwrap_or(&o.contact);
                match &o.user_agent {
                    Some(agent) => format!("{agent} at {at}"),
                    None => at.to_owned(),
                }
            })
            .collect();
        let message = format!(
            "Another device ({}) is registered on this extension instead of this computer: calls \
             go to whichever device registered last.",
            named.join(", ")
        );
        Self {
            account: account.into(),
            others,
            detected_by: by,
            message,
            take_over_note: "Use this computer registers the extension here now. The other \
                             device takes it back at its next refresh unless it is signed out."
                .to_owned(),
        }
    }
}

/// An INVITE reached this device over the registration's flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IncomingCall {
    pub account: String,
    pub from: String,
    pub call_id: String,
}

/// Direction of a traced SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Sent,
    Received,
}

/// A SIP message as sent or received, with credentials redacted, for the support trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TraceEntry {
    pub account: String,
    pub direction: Direction,
    pub remote: String,
    pub transport: Transport,
    pub text: String,
}
