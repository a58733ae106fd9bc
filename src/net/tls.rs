//! TLS with rustls and the ring provider. Certificate and host-name verification are always
//! on: against Mozilla's roots (webpki-roots) by default, or against the account's
//! `tls_ca_file` instead. The handshake is completed eagerly so that certificate problems
//! are reported as such (exit 69), not as a failed read later.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::Stream;
use crate::error::{Error, ErrorKind, Result};

/// Build the client configuration: the ring provider (never the process default, see
/// CRATES.md section 2), TLS 1.2 and 1.3, and the root store.
pub fn config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::with_source(
                        ErrorKind::Config,
                        format!("cannot read tls_ca_file {}", path.display()),
                        e,
                    )
                })?;
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
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::with_source(ErrorKind::Internal, "TLS setup failed", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Run the TLS handshake over `tcp` for `host` and return the encrypted stream.
pub fn handshake(config: Arc<ClientConfig>, host: &str, mut tcp: TcpStream) -> Result<Stream> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("{host} is not a valid TLS server name"),
            e,
        )
    })?;
    let mut conn = ClientConnection::new(config, name)
        .map_err(|e| Error::with_source(ErrorKind::Internal, "TLS setup failed", e))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Err(handshake_error(host, e));
        }
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

/// Turn a handshake failure into a message that names the problem.
fn handshake_error(host: &str, e: std::io::Error) -> Error {
    use std::io::ErrorKind as Io;
    if matches!(e.kind(), Io::TimedOut | Io::WouldBlock) {
        return Error::with_source(
            ErrorKind::Temporary,
            format!("TLS handshake with {host} timed out"),
            e,
        );
    }
    let what = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            format!("the certificate of {host} was refused ({cert:?})")
        }
        Some(other) => format!("TLS handshake with {host} failed ({other})"),
        None => format!("TLS handshake with {host} failed"),
    };
    Error::with_source(ErrorKind::Unavailable, what, e)
}
