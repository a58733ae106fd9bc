//! TLS with rustls and the ring provider. Certificate and host-name verification are always
//! on: against Mozilla's roots (webpki-roots) by default, or against the account's
//! `tls_ca_file` instead. `tls_fingerprint` pins (SHA-256 of the certificate or of its
//! public key) replace the chain check, which is how a self-signed server is trusted; the
//! handshake signature is still verified. The handshake is completed eagerly so that
//! certificate problems are reported as such (exit 69), with the fingerprint the server
//! showed, not as a failed read later.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use sha2::{Digest, Sha256};

use super::Stream;
use super::stream::BufSocket;
use crate::config::TlsVersion;
use crate::error::{Error, ErrorKind, Result};

/// What the account says about TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Trust only this CA bundle (PEM) instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// SHA-256 pins of the certificate or its SubjectPublicKeyInfo.
    pub fingerprints: Vec<[u8; 32]>,
    pub min_version: Option<TlsVersion>,
    /// Client certificate chain and key (PEM).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// A ready client configuration plus the end-entity certificate the server presented (filled
/// in during the handshake, for error messages and `pop3 probe`).
#[derive(Debug, Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    seen: Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>,
}

/// Colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it.
pub use crate::proto::hex::encode_upper_colons as hex_colons;

/// SHA-256 of a certificate's DER encoding.
pub fn cert_fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (a pin that survives renewal with the
/// same key), or `None` when the certificate cannot be parsed.
pub fn spki_fingerprint(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    Some(Sha256::digest(ee.subject_public_key_info().as_ref()).into())
}

/// One certificate of a chain, for `pop3 probe` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The subject's common name (or `?`).
    pub subject: String,
    /// The issuer's common name (or `?`).
    pub issuer: String,
    pub sha256: [u8; 32],
    pub spki_sha256: Option<[u8; 32]>,
}

/// Summarise a certificate: names for people, fingerprints for pinning.
pub fn summarize(cert: &CertificateDer<'_>) -> CertSummary {
    let (subject, issuer) = match webpki::EndEntityCert::try_from(cert) {
        Ok(ee) => (
            common_name(ee.subject()).unwrap_or_else(|| "?".into()),
            common_name(ee.issuer()).unwrap_or_else(|| "?".into()),
        ),
        Err(_) => ("?".into(), "?".into()),
    };
    CertSummary {
        subject,
        issuer,
        sha256: cert_fingerprint(cert),
        spki_sha256: spki_fingerprint(cert),
    }
}

/// The first commonName (OID 2.5.4.3) in a DER-encoded Name, decoded leniently and
/// sanitised (it comes from the server).
fn common_name(name: &[u8]) -> Option<String> {
    const CN_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = name.windows(CN_OID.len()).position(|w| w == CN_OID)? + CN_OID.len();
    let tag = *name.get(at)?;
    let len = usize::from(*name.get(at + 1)?);
    // Short-form lengths only: a CN is at most 64 characters (RFC 5280).
    if !matches!(tag, 0x0c | 0x13 | 0x14 | 0x16 | 0x1e) || len >= 0x80 {
        return None;
    }
    let value = name.get(at + 2..at + 2 + len)?;
    Some(crate::proto::sanitize::sanitize(value))
}

fn read_error(what: &str, path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::with_source(
        ErrorKind::Config,
        format!("cannot read {what} {}", path.display()),
        e,
    )
}

/// Build the client configuration: the ring provider (never the process default, see
/// CRATES.md section 2), TLS 1.2 and 1.3 (or only 1.3), the root store or the pins, and
/// the client certificate.
pub fn client(settings: &TlsSettings) -> Result<Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
        Some(TlsVersion::V1_3) => &[&rustls::version::TLS13],
        _ => rustls::DEFAULT_VERSIONS,
    };
    let seen = Arc::new(Mutex::new(None));
    let verifier: Arc<dyn ServerCertVerifier> = if settings.fingerprints.is_empty() {
        let roots = Arc::new(root_store(settings.ca_file.as_deref())?);
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| Error::with_source(ErrorKind::Internal, "TLS setup failed", e))?;
        Arc::new(Recording {
            inner: Some(inner),
            pins: Vec::new(),
            algorithms: provider.signature_verification_algorithms,
            seen: seen.clone(),
        })
    } else {
        Arc::new(Recording {
            inner: None,
            pins: settings.fingerprints.clone(),
            algorithms: provider.signature_verification_algorithms,
            seen: seen.clone(),
        })
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Error::with_source(ErrorKind::Internal, "TLS setup failed", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &settings.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| read_error("tls_cert_file", cert, e))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| read_error("tls_key_file", key, e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| read_error("tls_cert_file/tls_key_file", cert, e))?
        }
    };
    Ok(Client {
        config: Arc::new(config),
        seen,
    })
}

fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let Some(path) = ca_file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| read_error("tls_ca_file", path, e))?;
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("tls_ca_file {} holds no certificate", path.display()),
        ));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                format!("tls_ca_file {} holds a bad certificate", path.display()),
                e,
            )
        })?;
    }
    Ok(roots)
}

/// Verifies as webpki does (or by pin), and remembers the chain the server presented.
#[derive(Debug)]
struct Recording {
    inner: Option<Arc<WebPkiServerVerifier>>,
    pins: Vec<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(chain);
        }
        match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
            None => {
                let cert = cert_fingerprint(end_entity);
                let spki = spki_fingerprint(end_entity);
                if self.pins.iter().any(|p| *p == cert || Some(*p) == spki) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(
                        "the certificate matches none of the configured tls_fingerprint pins"
                            .into(),
                    ))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl Client {
    /// The rustls configuration itself, for the OAuth endpoints' HTTPS client
    /// (`oauth::http`), so that it verifies certificates exactly as POP3 does.
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The chain the server presented in the last handshake (end entity first).
    pub fn presented_chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }

    /// Run the TLS handshake over `tcp` for `host` and return the encrypted stream.
    pub fn handshake(&self, host: &str, tcp: TcpStream) -> Result<Stream> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                format!("{host} is not a valid TLS server name"),
                e,
            )
        })?;
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| Error::with_source(ErrorKind::Internal, "TLS setup failed", e))?;
        let mut sock = BufSocket::new(tcp);
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                // A server that refuses us sends an alert and closes; if our write hit the
                // closed socket first, the alert is still there to read and says why.
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) && conn.read_tls(&mut sock).is_ok()
                    && let Err(alert) = conn.process_new_packets()
                {
                    let e = std::io::Error::new(std::io::ErrorKind::InvalidData, alert);
                    return Err(self.handshake_error(host, e));
                }
                if let Some(plain) = plain_pop3(sock.head()) {
                    return Err(plain.into_error(host));
                }
                return Err(self.handshake_error(host, e));
            }
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, sock))))
    }

    /// Turn a handshake failure into a message that names the problem and, for a refused
    /// certificate, its fingerprint.
    fn handshake_error(&self, host: &str, e: std::io::Error) -> Error {
        use std::io::ErrorKind as Io;
        if matches!(e.kind(), Io::TimedOut | Io::WouldBlock) {
            return Error::with_source(
                ErrorKind::Temporary,
                format!("TLS handshake with {host} timed out"),
                e,
            );
        }
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        let refused = matches!(
            inner,
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::General(_))
        );
        let mut what = match inner {
            Some(rustls::Error::InvalidCertificate(cert)) => {
                format!("the certificate of {host} was refused: {}", describe(cert))
            }
            Some(other) => format!("TLS handshake with {host} failed: {other}"),
            None => format!("TLS handshake with {host} failed: {e}"),
        };
        // A pin is the way to trust a self-signed or privately issued certificate; it is no
        // fix for an expired or revoked one, so it is only suggested for the former.
        let pinnable = matches!(
            inner,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
                    | rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        );
        if refused && let Some(chain) = self.presented_chain() {
            let fp = hex_colons(&cert_fingerprint(&chain[0]));
            if pinnable {
                what.push_str(&format!(
                    " (certificate SHA-256 fingerprint {fp}; only if you have checked it \
                     another way, trust it with tls_fingerprint = \"sha256:{fp}\")"
                ));
            } else {
                what.push_str(&format!(" (certificate SHA-256 fingerprint {fp})"));
            }
        }
        Error::new(ErrorKind::Unavailable, what)
    }
}

/// A plain POP3 greeting where a TLS handshake was expected: the server at that port does
/// not speak TLS at once (a plain or STLS port).
struct PlainGreeting(String);

impl PlainGreeting {
    fn into_error(self, host: &str) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "{host} answered the TLS handshake with a plain POP3 greeting (\"{}\"): this port \
                 speaks plain POP3, so use tls = \"starttls\" (--tls starttls, usually port 110) \
                 instead of tls = \"implicit\", or the implicit-TLS port (995)",
                self.0
            ),
        )
    }
}

/// Whether `head`, the first bytes the server sent, is a POP3 status line (`+OK`/`-ERR`).
fn plain_pop3(head: &[u8]) -> Option<PlainGreeting> {
    (head.starts_with(b"+OK") || head.starts_with(b"-ERR")).then(|| {
        let end = head.iter().position(|b| *b == b'\r' || *b == b'\n');
        let shown = crate::proto::sanitize::sanitize(&head[..end.unwrap_or(head.len())]);
        PlainGreeting(shown)
    })
}

/// Whether a server that has said nothing yet speaks TLS: send a TLS ClientHello on a
/// fresh connection (`tcp`) and see whether the first byte back is a TLS record (handshake
/// or alert). Nothing secret is sent; the connection is then dropped. Used when a plain
/// connection gets no greeting, to tell a slow server from an implicit-TLS port.
pub fn speaks_tls(client: &Client, host: &str, tcp: TcpStream) -> bool {
    use std::io::Read;
    let name = ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid name"));
    let Ok(mut conn) = ClientConnection::new(client.config.clone(), name) else {
        return false;
    };
    let mut tcp = tcp;
    if conn.write_tls(&mut tcp).is_err() {
        return false;
    }
    let mut first = [0u8; 1];
    // 0x16: handshake record (ServerHello), 0x15: alert.
    matches!(tcp.read(&mut first), Ok(1) if first[0] == 0x16 || first[0] == 0x15)
}

/// Plain words for the usual certificate errors.
fn describe(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not valid for that host name".into()
        }
        C::UnknownIssuer => {
            "it is not signed by a trusted authority (self-signed or a private CA: set \
             tls_ca_file, or tls_fingerprint)"
                .into()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
        C::Revoked => "it has been revoked".into(),
        C::BadSignature => "its signature is invalid".into(),
        other => format!("{other:?}"),
    }
}
