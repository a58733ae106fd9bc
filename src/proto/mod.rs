//! The POP3 wire format as pure functions over bytes: no sockets, no files, no clocks, no
//! printing. Bytes in, typed values out; every function is total (errors, never panics) and
//! every buffer it implies is bounded by the caller.
//!
//! - [`response`]: a status line, `+OK`/`-ERR` with an optional `[RESP-CODE]` (RFC 2449).
//! - [`lines`]: line framing limits and end-of-line handling.
//! - [`multiline`]: dot-unstuffing of multi-line bodies; only CRLF "." CRLF ends one.
//! - [`capa`]: the CAPA body.
//! - [`listing`]: STAT, LIST and UIDL lines.
//! - [`command`]: commands to wire bytes, with validated arguments.
//! - [`types`]: `MessageNumber`, `Uid`, `Octets`, `Capabilities`.

pub mod auth;
pub mod capa;
pub mod command;
pub mod hex;
pub mod lines;
pub mod listing;
pub mod multiline;
pub mod response;
pub mod sanitize;
pub mod secret;
pub mod types;

pub use types::{Capabilities, Expire, MessageNumber, Octets, Uid};

/// Why some bytes from the server could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line does not have the expected shape; the text says what was expected.
    #[error("{0}")]
    Invalid(String),
    /// A line or a value exceeds its bound.
    #[error("{0}")]
    TooLong(String),
}
