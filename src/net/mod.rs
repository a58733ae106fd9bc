//! Getting a byte stream to the server: TCP with timeouts ([`connect`]), TLS with rustls
//! ([`tls`]), and the [`Stream`] that the client speaks over.
//!
//! Every socket gets the account's timeout as its read and write timeout, so no read can
//! block forever (DESIGN.md invariant 6).

pub mod stream;
pub mod tls;

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

pub use stream::Stream;

/// Connect to `host:port`, trying every address the name resolves to, each within
/// `timeout`, and set `timeout` as the socket's read and write timeout.
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let addrs = (host, port).to_socket_addrs().map_err(|e| {
        Error::with_source(
            ErrorKind::Unavailable,
            format!("cannot resolve host name {host}"),
            e,
        )
    })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                let configure = || -> std::io::Result<()> {
                    tcp.set_read_timeout(Some(timeout))?;
                    tcp.set_write_timeout(Some(timeout))?;
                    tcp.set_nodelay(true)
                };
                configure().map_err(|e| {
                    Error::with_source(ErrorKind::Io, "cannot configure the socket", e)
                })?;
                return Ok(tcp);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == std::io::ErrorKind::TimedOut => Error::with_source(
            ErrorKind::Temporary,
            format!(
                "cannot connect to {host} port {port} ({addr}): no answer within {}s",
                timeout.as_secs()
            ),
            e,
        ),
        Some((addr, e)) => Error::with_source(
            ErrorKind::Unavailable,
            format!("cannot connect to {host} port {port} ({addr})"),
            e,
        ),
        None => Error::new(
            ErrorKind::Unavailable,
            format!("host name {host} has no address"),
        ),
    })
}
