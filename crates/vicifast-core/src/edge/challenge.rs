//! Digest authentication as a server (RFC 3261 §22.4, RFC 7616, RFC 8760): the local
//! registrar's challenges and the check of a softphone's answer.
//!
//! The hashing is `digest_auth`'s, the same code that answers the PBX's challenges
//! (`AuthorizationHeader::digest` recomputes the response a client should have sent). Its
//! Authorization parser is not used, for the reason `digest.rs` gives for its challenge parser:
//! it matches names and tokens case-sensitively and slices by character count.
//!
//! Nonces are random, expire after a set lifetime, and remember the highest nonce count used
//! with them: a credential replayed with a count already seen is refused, however correct.

use super::config::DigestAlgorithm;
use crate::config::Password;
use crate::message::{parse_params, split_list};
use digest_auth::{Algorithm, AlgorithmType, AuthContext, AuthorizationHeader, HttpMethod, Qop};
use rand::Rng;
use rand_chacha::ChaCha20Rng;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Nonces outstanding at once; the oldest is forgotten first.
const MAX_NONCES: usize = 16;

/// What a softphone's credentials amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    /// The response was right for a nonce that expired, is unknown, or whose count was already
    /// used: challenge again with `stale=true` (the softphone answers without asking the agent).
    Stale,
    /// No credentials for our realm, or in a form we did not offer: challenge.
    Missing,
    /// Credentials for another user name than the account's.
    WrongUser(String),
    /// The response does not match the password.
    WrongPassword,
}

#[derive(Debug)]
struct IssuedNonce {
    value: String,
    algorithm: DigestAlgorithm,
    issued: Instant,
    /// The highest `nc` accepted with this nonce.
    last_count: u32,
}

/// The nonces handed out by the local registrar.
#[derive(Debug)]
pub(crate) struct Nonces {
    issued: VecDeque<IssuedNonce>,
    lifetime: Duration,
}

/// The fields of one `Authorization: Digest …` value.
#[derive(Debug, Default)]
struct Credentials {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
    cnonce: Option<String>,
}

impl Nonces {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            issued: VecDeque::new(),
            lifetime,
        }
    }

    /// A `WWW-Authenticate` value with a fresh nonce.
    pub fn challenge(
        &mut self,
        now: Instant,
        rng: &mut ChaCha20Rng,
        realm: &str,
        algorithm: DigestAlgorithm,
        stale: bool,
    ) -> String {
        let value = format!("{:016x}{:016x}", rng.gen::<u64>(), rng.gen::<u64>());
        if self.issued.len() >= MAX_NONCES {
            self.issued.pop_front();
        }
        self.issued.push_back(IssuedNonce {
            value: value.clone(),
            algorithm,
            issued: now,
            last_count: 0,
        });
        let stale = if stale { ", stale=true" } else { "" };
        format!(
            "Digest realm=\"{realm}\", nonce=\"{value}\", algorithm={}, qop=\"auth\"{stale}",
            algorithm.token()
        )
    }

    /// Checks the `Authorization` values of a request against the password.
    pub fn verify<'a>(
        &mut self,
        now: Instant,
        authorizations: impl IntoIterator<Item = &'a str>,
        method: &str,
        realm: &str,
        users: &[&str],
        password: &Password,
    ) -> Verdict {
        let Some(credentials) = authorizations
            .into_iter()
            .filter_map(parse_credentials)
            .find(|c| c.realm == realm)
        else {
            return Verdict::Missing;
        };
        if !users.contains(&credentials.username.as_str()) {
            return Verdict::WrongUser(credentials.username);
        }
        let algorithm = match credentials.algorithm.as_deref() {
            None => DigestAlgorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => DigestAlgorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => DigestAlgorithm::Sha256,
            Some(_) => return Verdict::Missing,
        };
        let (Some(qop), Some(nc), Some(cnonce)) = (
            credentials.qop.as_deref(),
            credentials.nc.as_deref(),
            credentials.cnonce.as_deref(),
        ) else {
            return Verdict::Missing;
        };
        let Ok(count) = u32::from_str_radix(nc, 16) else {
            return Verdict::Missing;
        };
        if !qop.eq_ignore_ascii_case("auth") || cnonce.is_empty() {
            return Verdict::Missing;
        }
        let expected = expected_response(&credentials, algorithm, count, method, password);
        if !same_hex(&expected, &credentials.response) {
            return Verdict::WrongPassword;
        }
        self.issued
            .retain(|n| now.saturating_duration_since(n.issued) < self.lifetime);
        match self
            .issued
            .iter_mut()
            .find(|n| n.value == credentials.nonce)
        {
            Some(nonce) if nonce.algorithm == algorithm && count > nonce.last_count => {
                nonce.last_count = count;
                Verdict::Accepted
            }
            _ => Verdict::Stale,
        }
    }
}

fn expected_response(
    credentials: &Credentials,
    algorithm: DigestAlgorithm,
    count: u32,
    method: &str,
    password: &Password,
) -> String {
    let algorithm_type = match algorithm {
        DigestAlgorithm::Md5 => AlgorithmType::MD5,
        DigestAlgorithm::Sha256 => AlgorithmType::SHA2_256,
    };
    let mut header = AuthorizationHeader {
        realm: credentials.realm.clone(),
        nonce: credentials.nonce.clone(),
        opaque: None,
        userhash: false,
        algorithm: Algorithm::new(algorithm_type, false),
        response: String::new(),
        username: credentials.username.clone(),
        uri: credentials.uri.clone(),
        qop: Some(Qop::AUTH),
        cnonce: credentials.cnonce.clone(),
        nc: count,
    };
    let context = AuthContext::new_with_method(
        credentials.username.as_str(),
        password.expose(),
        credentials.uri.as_str(),
        Option::<&[u8]>::None,
        HttpMethod(method.to_owned().into()),
    );
    header.digest(&context);
    header.response
}

/// Compares two hex digests without stopping at the first difference.
fn same_hex(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
}

fn parse_credentials(value: &str) -> Option<Credentials> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Credentials::default();
    for (name, value) in split_list(rest).iter().flat_map(|item| parse_params(item)) {
        let Some(value) = value else {
            continue;
        };
        match name.as_str() {
            "username" => c.username = value,
            "realm" => c.realm = value,
            "nonce" => c.nonce = value,
            "uri" => c.uri = value,
            "response" => c.response = value,
            "algorithm" => c.algorithm = Some(value),
            "qop" => c.qop = Some(value),
            "nc" => c.nc = Some(value),
            "cnonce" => c.cnonce = Some(value),
            _ => {}
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DigestSession;
    use rand::SeedableRng;

    const REALM: &str = "example.test";

    fn answer(challenge: &str, user: &str, password: &str, count: usize) -> String {
        let mut session = DigestSession::from_challenges([challenge], false).unwrap();
        let mut header = String::new();
        for _ in 0..count {
            header = session.authorize(
                "REGISTER",
                "sip:example.test",
                user,
                &Password::new(password),
                b"",
                "c0ffee",
            );
        }
        header
    }

    fn verify(nonces: &mut Nonces, now: Instant, header: &str) -> Verdict {
        nonces.verify(
            now,
            [header],
            "REGISTER",
            REALM,
            &["101"],
            &Password::new("secret"),
        )
    }

    #[test]
    fn accepts_md5_and_sha256_answers_from_our_own_client_code() {
        let now = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let mut nonces = Nonces::new(Duration::from_secs(300));
        for algorithm in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
            let challenge = nonces.challenge(now, &mut rng, REALM, algorithm, false);
            let header = answer(&challenge, "101", "secret", 1);
            assert_eq!(verify(&mut nonces, now, &header), Verdict::Accepted);
        }
    }

    #[test]
    fn wrong_password_user_and_replays_are_told_apart() {
        let now = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let mut nonces = Nonces::new(Duration::from_secs(300));
        let challenge = nonces.challenge(now, &mut rng, REALM, DigestAlgorithm::Md5, false);
        let wrong = answer(&challenge, "101", "guess", 1);
        assert_eq!(verify(&mut nonces, now, &wrong), Verdict::WrongPassword);
        let other = answer(&challenge, "102", "secret", 1);
        assert_eq!(
            verify(&mut nonces, now, &other),
            Verdict::WrongUser("102".into())
        );
        let first = answer(&challenge, "101", "secret", 1);
        assert_eq!(verify(&mut nonces, now, &first), Verdict::Accepted);
        assert_eq!(verify(&mut nonces, now, &first), Verdict::Stale, "replay");
        let second = answer(&challenge, "101", "secret", 2);
        assert_eq!(verify(&mut nonces, now, &second), Verdict::Accepted);
    }

    #[test]
    fn expired_and_unknown_nonces_are_stale_and_other_realms_missing() {
        let now = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let mut nonces = Nonces::new(Duration::from_secs(300));
        let challenge = nonces.challenge(now, &mut rng, REALM, DigestAlgorithm::Md5, false);
        let header = answer(&challenge, "101", "secret", 1);
        let later = now + Duration::from_secs(301);
        assert_eq!(verify(&mut nonces, later, &header), Verdict::Stale);
        let forged = answer(
            r#"Digest realm="example.test", nonce="made-up", qop="auth""#,
            "101",
            "secret",
            1,
        );
        assert_eq!(verify(&mut nonces, now, &forged), Verdict::Stale);
        let elsewhere = answer(
            r#"Digest realm="pbx", nonce="n", qop="auth""#,
            "101",
            "secret",
            1,
        );
        assert_eq!(verify(&mut nonces, now, &elsewhere), Verdict::Missing);
        let no_qop = answer(
            r#"Digest realm="example.test", nonce="n""#,
            "101",
            "secret",
            1,
        );
        assert_eq!(verify(&mut nonces, now, &no_qop), Verdict::Missing);
        for junk in [
            "",
            "Basic abc",
            "Digest",
            "Digest ,,,",
            "Digest realm=\"☎\", nc=zz",
        ] {
            assert_ne!(verify(&mut nonces, now, junk), Verdict::Accepted);
        }
    }

    #[test]
    fn nonce_issued_for_sha256_does_not_take_an_md5_answer() {
        let now = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let mut nonces = Nonces::new(Duration::from_secs(300));
        let challenge = nonces.challenge(now, &mut rng, REALM, DigestAlgorithm::Sha256, false);
        let downgraded = answer(
            &challenge.replace("algorithm=SHA-256", "algorithm=MD5"),
            "101",
            "secret",
            1,
        );
        assert_eq!(verify(&mut nonces, now, &downgraded), Verdict::Stale);
    }

    #[test]
    fn nonce_table_is_bounded() {
        let now = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let mut nonces = Nonces::new(Duration::from_secs(300));
        let first = nonces.challenge(now, &mut rng, REALM, DigestAlgorithm::Md5, false);
        for _ in 0..100 {
            nonces.challenge(now, &mut rng, REALM, DigestAlgorithm::Md5, false);
        }
        assert_eq!(nonces.issued.len(), MAX_NONCES);
        let header = answer(&first, "101", "secret", 1);
        assert_eq!(verify(&mut nonces, now, &header), Verdict::Stale);
    }
}
