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
    /// Why the verifier refused the presented chain, when it did.
    refused: Arc<Mutex<Option<rustls::Error>>>,
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
    /// The validity period (notBefore, notAfter), when the certificate can be parsed.
    pub validity: Option<(jiff::Timestamp, jiff::Timestamp)>,
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
        validity: validity(cert.as_ref()),
    }
}

/// One DER element at the start of `input`: (tag, contents, the rest). Definite lengths of
/// up to four octets only, which is all a certificate uses.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The validity period of a DER certificate (RFC 5280 section 4.1: Certificate ::=
/// SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
/// issuer, validity SEQUENCE { notBefore, notAfter }, ... } ... }). webpki checks the dates
/// but does not show them; `pop3 probe` and `pop3 init` do.
fn validity(der: &[u8]) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let (0x30, cert, _) = der_next(der)? else {
        return None;
    };
    let (0x30, tbs, _) = der_next(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = der_next(rest)?;
    if tag == 0xa0 {
        rest = after; // the explicit version
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = der_next(rest)?.2;
    }
    let (0x30, validity, _) = der_next(rest)? else {
        return None;
    };
    let (t1, before, rest) = der_next(validity)?;
    let (t2, after, _) = der_next(rest)?;
    Some((der_time(t1, before)?, der_time(t2, after)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), the
/// two forms RFC 5280 section 4.1.2.5 allows.
fn der_time(tag: u8, bytes: &[u8]) -> Option<jiff::Timestamp> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i16 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let num = |i: usize| rest[i..i + 2].parse::<i8>().ok();
    let dt =
        jiff::civil::DateTime::new(year, num(0)?, num(2)?, num(4)?, num(6)?, num(8)?, 0).ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(dt).ok()
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
    let refused = Arc::new(Mutex::new(None));
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
            refused: refused.clone(),
        })
    } else {
        Arc::new(Recording {
            inner: None,
            pins: settings.fingerprints.clone(),
            algorithms: provider.signature_verification_algorithms,
            seen: seen.clone(),
            refused: refused.clone(),
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
        refused,
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
    refused: Arc<Mutex<Option<rustls::Error>>>,
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
        let verdict = match &self.inner {
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
        };
        if let (Err(e), Ok(mut refused)) = (&verdict, self.refused.lock()) {
            *refused = Some(e.clone());
        }
        verdict
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

    /// Why the certificate check refused the chain of the last handshake, if it did.
    pub fn refusal(&self) -> Option<rustls::Error> {
        self.refused.lock().ok().and_then(|r| r.clone())
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
        let pinnable = inner.is_some_and(pinnable);
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

/// Whether a refused certificate is one a pin may stand in for. A pin is the way to trust a
/// self-signed or privately issued certificate; it is no fix for an expired or revoked one,
/// so it is only suggested for the former.
pub fn pinnable(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
                | rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// Why a certificate was refused, in plain words.
pub fn describe_refusal(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(cert) => describe(cert),
        other => other.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(before: (i32, u8, u8), after: (i32, u8, u8)) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mail.test");
        params.not_before = rcgen::date_time_ymd(before.0, before.1, before.2);
        params.not_after = rcgen::date_time_ymd(after.0, after.1, after.2);
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn validity_is_read_from_utc_and_generalized_time() {
        // rcgen writes UTCTime up to 2049 and GeneralizedTime from 2050 (RFC 5280).
        let cert = self_signed((2024, 3, 5), (2051, 12, 31));
        let s = summarize(&cert);
        let (from, to) = s.validity.expect("validity parsed");
        assert_eq!(from.to_string(), "2024-03-05T00:00:00Z");
        assert_eq!(to.to_string(), "2051-12-31T00:00:00Z");
        assert_eq!(s.subject, "mail.test");
        assert_eq!(s.issuer, "mail.test");
    }

    #[test]
    fn der_times_outside_the_forms_are_refused() {
        assert_eq!(
            der_time(0x17, b"491231235959Z").unwrap().to_string(),
            "2049-12-31T23:59:59Z"
        );
        assert_eq!(
            der_time(0x17, b"500101000000Z").unwrap().to_string(),
            "1950-01-01T00:00:00Z"
        );
        for (tag, bad) in [
            (0x17, &b"4912312359Z"[..]),
            (0x17, b"491231235959"),
            (0x18, b"491231235959Z"),
            (0x17, b"49123123595+Z"),
            (0x17, b"491331235959Z"),
            (0x05, b"491231235959Z"),
        ] {
            assert_eq!(der_time(tag, bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn garbage_has_no_validity() {
        assert_eq!(validity(b""), None);
        assert_eq!(validity(&[0x30, 0x82, 0xff]), None);
        assert_eq!(validity(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        let cert = self_signed((2024, 1, 1), (2030, 1, 1));
        let cut = &cert.as_ref()[..cert.as_ref().len() / 2];
        assert_eq!(validity(cut), None);
    }
}
