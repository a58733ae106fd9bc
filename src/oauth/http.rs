//! The HTTPS client for the OAuth endpoints: ureq 3 for HTTP/1.1, with TLS done by our own
//! rustls configuration from `net::tls` (ring, TLS 1.2/1.3, the public roots or a CA file),
//! so that the certificate rules are the POP3 connection's. Every exchange is bounded: a
//! global timeout (the account's `timeout`), a cap on the header and body sizes, no
//! redirects, no proxy, HTTPS only.
//!
//! A request body holds secrets (refresh token, client secret, authorization code, PKCE
//! verifier); ureq's own log lines are kept below `-vv` by `main`, and nothing here logs a
//! body or puts one into an error.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

use crate::error::{Error, ErrorKind, Result};
use crate::net::tls;
use crate::proto::sanitize::sanitize;

/// The most bytes of a response body read: token responses are a few KiB (Microsoft's
/// JWTs included); anything longer is refused, never buffered.
pub const MAX_BODY: u64 = 256 * 1024;

/// The most bytes of response headers.
const MAX_HEADERS: usize = 64 * 1024;

/// An answer from an endpoint: the status and the body parsed as a JSON object.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub json: serde_json::Map<String, serde_json::Value>,
}

/// The client: one per run, for one account's endpoints.
pub struct Http {
    agent: ureq::Agent,
    timeout: Duration,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Http {
    /// A client trusting `ca_file` (else the public roots), every request within `timeout`.
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Http> {
        let tls = tls::client(&tls::TlsSettings {
            ca_file: ca_file.map(Path::to_path_buf),
            ..tls::TlsSettings::default()
        })?;
        let config = ureq::Agent::config_builder()
            .https_only(true)
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_response_header_size(MAX_HEADERS)
            .user_agent(concat!("pop3/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = ().chain(TcpConnector::default()).chain(OurTls {
            config: tls.rustls_config(),
        });
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        Ok(Http { agent, timeout })
    }

    /// How long to wait for another run's refresh: its whole exchange, and some.
    pub fn lock_wait(&self) -> Duration {
        self.timeout.saturating_mul(2) + Duration::from_secs(5)
    }

    /// POST an `application/x-www-form-urlencoded` form and read a JSON object back. The
    /// status is the caller's to judge (OAuth errors come as 400 with a JSON body). A body
    /// that is not a JSON object, too long, or late is an error naming `url`, never
    /// quoting what we sent.
    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Reply> {
        let response = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .send_form(form.iter().copied())
            .map_err(|e| self.failure(url, e))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let bytes = body
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.failure(url, e))?;
        let json = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                let shown: Vec<u8> = bytes.iter().copied().take(200).collect();
                let kind = if status >= 500 {
                    ErrorKind::Temporary
                } else {
                    ErrorKind::Protocol
                };
                return Err(Error::new(
                    kind,
                    format!(
                        "{url} answered HTTP {status} with something that is not a JSON \
                         object: \"{}\"",
                        sanitize(&shown)
                    ),
                ));
            }
        };
        Ok(Reply { status, json })
    }

    fn failure(&self, url: &str, e: ureq::Error) -> Error {
        use ureq::Error as U;
        let (kind, what) = match &e {
            U::Timeout(_) => (
                ErrorKind::Temporary,
                format!("no complete answer within {} s", self.timeout.as_secs()),
            ),
            U::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                (
                    ErrorKind::Temporary,
                    format!("no answer within {} s", self.timeout.as_secs()),
                )
            }
            U::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => (
                ErrorKind::Unavailable,
                format!("TLS failed: {io} (is oauth.tls_ca_file right?)"),
            ),
            U::BodyExceedsLimit(_) => (
                ErrorKind::Protocol,
                format!("the answer is longer than {} KiB", MAX_BODY / 1024),
            ),
            U::HostNotFound | U::ConnectionFailed => {
                (ErrorKind::Unavailable, "cannot connect".to_owned())
            }
            U::Io(io) => (ErrorKind::Unavailable, io.to_string()),
            U::Protocol(_) | U::Http(_) | U::LargeResponseHeader(..) => {
                (ErrorKind::Protocol, format!("a broken HTTP answer ({e})"))
            }
            U::RequireHttpsOnly(_) | U::BadUri(_) => {
                (ErrorKind::Config, format!("not a usable URL ({e})"))
            }
            other => (ErrorKind::Unavailable, other.to_string()),
        };
        Error::new(kind, format!("OAuth endpoint {url}: {what}"))
    }
}

/// TLS for ureq with our rustls configuration (ureq 3 builds its own otherwise).
#[derive(Debug)]
struct OurTls {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for OurTls {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ureq::Error::Tls("not a valid TLS server name"))?;
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|_| ureq::Error::Tls("TLS setup failed"))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned::new(conn, sock),
        })))
    }
}

/// An encrypted connection as a ureq transport (as ureq's own rustls transport does it).
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> std::result::Result<(), ureq::Error> {
        use std::io::Write;
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        use std::io::Read;
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
