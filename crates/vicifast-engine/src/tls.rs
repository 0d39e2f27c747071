//! TLS client set-up: rustls with the operating system's certificate verifier (Keychain on macOS,
//! the Windows certificate store, the system bundle on Linux), plus any extra CA the user trusts
//! for a private registrar.
//!
//! On Windows an extra CA is not handed to the platform verifier: its extra-roots path builds a
//! custom CryptoAPI chain engine, which some Windows-compatible systems (Wine 8) refuse with
//! E_INVALIDARG. There the server is checked by rustls' WebPKI verifier against the CA file plus
//! the roots of the Windows certificate store, which is what trusting an extra CA means.

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use rustls_platform_verifier::Verifier;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why TLS could not be set up or established.
#[derive(Debug, Error)]
pub(crate) enum TlsError {
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the CA file {0} holds no certificate")]
    CaFileEmpty(PathBuf),
    #[cfg_attr(not(windows), allow(dead_code))]
    #[error("the CA file {path} holds a certificate that cannot be a trust anchor: {source}")]
    CaFileUnusable {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("cannot use the system's certificate store: {0}")]
    Verifier(rustls::Error),
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("{0}")]
    Handshake(std::io::Error),
}

impl TlsError {
    /// Whether the server's certificate was not trusted (as opposed to a broken connection).
    pub fn is_certificate_error(&self) -> bool {
        let TlsError::Handshake(err) = self else {
            return matches!(
                self,
                TlsError::CaFile { .. }
                    | TlsError::CaFileEmpty(_)
                    | TlsError::CaFileUnusable { .. }
            );
        };
        let Some(inner) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return false;
        };
        use rustls::AlertDescription as A;
        matches!(
            inner,
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::AlertReceived(
                    A::BadCertificate
                        | A::UnknownCA
                        | A::CertificateExpired
                        | A::CertificateUnknown
                        | A::UnsupportedCertificate
                )
        )
    }
}

/// A client configuration trusting the system's roots and those in `ca_file`.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra_roots = match ca_file {
        Some(path) => Some((path, read_certificates(path)?)),
        None => None,
    };
    let verifier = server_verifier(extra_roots, provider.clone())?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Verifier)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The platform's verifier, trusting also the certificates read from a CA file.
#[cfg(not(windows))]
fn server_verifier(
    ca_file: Option<(&Path, Vec<CertificateDer<'static>>)>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let extra_roots = ca_file.map(|(_, certs)| certs).unwrap_or_default();
    let verifier =
        Verifier::new_with_extra_roots(extra_roots, provider).map_err(TlsError::Verifier)?;
    Ok(Arc::new(verifier))
}

/// Windows' own verifier; with a CA file, rustls' WebPKI verifier over that file and the roots
/// of the Windows certificate store (see the module's doc).
#[cfg(windows)]
fn server_verifier(
    ca_file: Option<(&Path, Vec<CertificateDer<'static>>)>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let Some((path, extra_roots)) = ca_file else {
        let verifier = Verifier::new(provider).map_err(TlsError::Verifier)?;
        return Ok(Arc::new(verifier));
    };
    let mut roots = rustls::RootCertStore::empty();
    // Every certificate the user gave must be usable; a store root rustls cannot parse is
    // skipped, as it could not anchor a chain anyway.
    for cert in extra_roots {
        roots.add(cert).map_err(|source| TlsError::CaFileUnusable {
            path: path.to_owned(),
            source,
        })?;
    }
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Verifier(rustls::Error::General(e.to_string())))?;
    Ok(verifier)
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::CaFile {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::CaFileEmpty(path.to_owned()));
    }
    Ok(certs)
}

/// Runs the TLS handshake over an open TCP connection; `server_name` is what the certificate
/// must name (a host name, or an IP literal for a numeric registrar address).
pub(crate) async fn connect(
    tcp: TcpStream,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let name = ServerName::try_from(server_name.trim_matches(['[', ']']).to_owned())
        .map_err(|_| TlsError::ServerName(server_name.to_owned()))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(TlsError::Handshake)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn missing_ca_file_is_reported_with_its_path() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn ca_file_without_certificates_is_refused() {
        let mut file = tempfile_in_target();
        writeln!(file.1, "not a certificate").unwrap();
        let err = client_config(Some(&file.0)).unwrap_err();
        assert!(matches!(err, TlsError::CaFileEmpty(_)), "{err}");
        let _ = std::fs::remove_file(&file.0);
    }

    fn tempfile_in_target() -> (PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("vicifast-ca-{}.pem", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        (path, file)
    }
}
