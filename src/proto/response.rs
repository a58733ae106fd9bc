//! Status lines: `+OK text`, `-ERR [CODE/SUB] text` (RFC 1939 section 3, RFC 2449 section 8),
//! and SASL continuation lines `+ base64` (RFC 5034 section 4).

use super::ParseError;

/// `+OK` or `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
}

/// An extended response code (RFC 2449 section 8, RFC 3206). Hierarchical codes keep their
/// first component in the match: `SYS/TEMP` and `SYS/PERM` are distinct variants, any other
/// code is kept upper-cased in `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespCode {
    InUse,
    LoginDelay,
    SysTemp,
    SysPerm,
    Auth,
    Other(String),
}

/// A parsed status line. `text` is what follows the status and the optional code, with one
/// leading space removed; it is untrusted server text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: Status,
    pub code: Option<RespCode>,
    pub text: &'a [u8],
}

/// Parse one status line (`line` has its CRLF or LF already removed).
///
/// Accepts `+OK` / `-ERR` case-insensitively, followed by end of line or a space (a TAB is
/// tolerated). A `[...]` right after the space is a resp-code only when it closes on the same
/// line and holds no space; otherwise it is part of the text. Anything else is
/// `ParseError::Invalid`.
pub fn parse_status(line: &[u8]) -> Result<Response<'_>, ParseError> {
    let _ = line;
    todo!("proto helper")
}

/// A SASL continuation (`+ ` followed by base64, or a bare `+`): returns the payload bytes
/// still base64-encoded (empty for a bare `+`), or `None` when the line is a status line.
pub fn parse_continuation(line: &[u8]) -> Option<&[u8]> {
    let _ = line;
    todo!("proto helper")
}
