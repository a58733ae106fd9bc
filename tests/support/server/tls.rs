//! TLS for the server: the rustls configuration (TLS versions, optional client
//! certificates), the plain-or-TLS stream, and the STLS upgrade (RFC 2595).

use std::io;
use std::io::BufReader;
use std::net::TcpStream;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::super::certs::Identity;
use super::Config;
use super::wire::{Conn, Recorder};

pub(super) fn server_config(
    identity: &Identity,
    tls12_only: bool,
    client_ca: Option<&Identity>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("TLS versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.cert()).expect("client CA");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client certificate verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(vec![identity.cert()], identity.key())
        .expect("server certificate");
    Arc::new(config)
}

/// The client connection, plain or TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

pub(super) fn tls_stream(config: &Config, tcp: TcpStream) -> io::Result<Stream> {
    let tls_config = config.tls_config.clone().expect("TLS needs a certificate");
    let conn = ServerConnection::new(tls_config).map_err(io::Error::other)?;
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

/// Start TLS on a plain connection after `STLS +OK`. Bytes the client sent in clear after
/// STLS and that sit in the buffer are dropped (they were recorded as plain).
pub(super) fn upgrade(conn: Conn, config: &Config) -> io::Result<Conn> {
    let Recorder {
        inner, shared, idx, ..
    } = conn.into_inner();
    let Stream::Plain(tcp) = inner else {
        return Err(io::Error::other("STLS on a TLS connection"));
    };
    Ok(BufReader::new(Recorder {
        inner: tls_stream(config, tcp)?,
        tls: true,
        shared,
        idx,
    }))
}
