//! The one error type of the library and the one table that maps it to an exit code.
//!
//! Every module returns [`Error`]: a [`ErrorKind`] that says what a caller (and the user's
//! shell script) would do differently, plus a message that already names the host, account or
//! path involved. `main` finds the `Error` in an `anyhow` chain and exits with
//! [`ErrorKind::exit_code`]; nothing else chooses an exit code.

use std::fmt;

/// What went wrong, at the granularity of DESIGN.md's exit-code table (sysexits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad command-line usage (64).
    Usage,
    /// The server sent data we cannot accept: a bad UIDL list, sizes that lie (65).
    BadData,
    /// Host unreachable, TLS or certificate failure, STLS/UIDL missing, [SYS/PERM] (69).
    Unavailable,
    /// A bug in pop3 (70).
    Internal,
    /// The delivery target cannot be created or opened (73).
    CannotCreate,
    /// Delivery or state I/O failed (74).
    Io,
    /// Try again later: timeout, [IN-USE], [LOGIN-DELAY], [SYS/TEMP], lock held (75).
    Temporary,
    /// The server broke the protocol (76).
    Protocol,
    /// Authentication refused or impossible (77).
    Auth,
    /// Configuration error (78).
    Config,
}

impl ErrorKind {
    /// The process exit code for this kind (DESIGN.md, "Exit codes").
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => 64,
            ErrorKind::BadData => 65,
            ErrorKind::Unavailable => 69,
            ErrorKind::Internal => 70,
            ErrorKind::CannotCreate => 73,
            ErrorKind::Io => 74,
            ErrorKind::Temporary => 75,
            ErrorKind::Protocol => 76,
            ErrorKind::Auth => 77,
            ErrorKind::Config => 78,
        }
    }
}

/// An error with its kind, a message for the user and an optional cause.
///
/// The message never contains a secret: callers build it from host names, paths and
/// sanitised server text only.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// The failure concerns one message only (a delivery target refused it): the session
    /// goes on with the others ([`Error::for_this_message`]).
    per_message: bool,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
            per_message: false,
        }
    }

    /// An error of `kind` caused by `source` (shown after the message by `{:#}` chains).
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        Error {
            kind,
            message: message.into(),
            source: Some(source.into()),
            per_message: false,
        }
    }

    /// Mark this error as concerning one message only: an LMTP or SMTP server answered
    /// 4xx or 5xx for it. The engine leaves that message on the server unrecorded, goes
    /// on with the others, and fails the run at its end with this kind.
    pub fn for_this_message(mut self) -> Error {
        self.per_message = true;
        self
    }

    /// Whether this error concerns one message only ([`Error::for_this_message`]).
    pub fn is_per_message(&self) -> bool {
        self.per_message
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message with every cause appended, `a: b: c`.
    pub fn chain(&self) -> String {
        use std::error::Error as _;
        let mut s = self.message.clone();
        let mut cur = self.source();
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit code for an `anyhow` chain: that of the first [`Error`] in it, else 70.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map_or(ErrorKind::Internal.exit_code(), |e| e.kind().exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_design_table() {
        let table = [
            (ErrorKind::Usage, 64),
            (ErrorKind::BadData, 65),
            (ErrorKind::Unavailable, 69),
            (ErrorKind::Internal, 70),
            (ErrorKind::CannotCreate, 73),
            (ErrorKind::Io, 74),
            (ErrorKind::Temporary, 75),
            (ErrorKind::Protocol, 76),
            (ErrorKind::Auth, 77),
            (ErrorKind::Config, 78),
        ];
        for (kind, code) in table {
            assert_eq!(kind.exit_code(), code, "{kind:?}");
        }
    }

    #[test]
    fn exit_code_is_found_under_anyhow_context() {
        let e = anyhow::Error::new(Error::new(ErrorKind::Auth, "login refused"))
            .context("account work");
        assert_eq!(exit_code(&e), 77);
        assert_eq!(exit_code(&anyhow::anyhow!("plain")), 70);
    }
}
