//! Commands to wire bytes (RFC 1939, 2449, 2595, 5034). Arguments are validated when a
//! command is encoded: CR, LF and NUL are refused (so a user name cannot smuggle a second
//! command), as are empty and over-long arguments. Encoding happens in one function,
//! [`Command::encode`]; [`Command::trace`] is the only form that may be logged, and it shows
//! every secret as `***`.

use super::{MessageNumber, ParseError};

/// The longest argument we send (RFC 2449 section 4 says 40 octets, but SASL responses and
/// OAuth tokens are much longer, and real servers accept long lines).
pub const MAX_ARG: usize = 64 * 1024;

/// One POP3 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    Capa,
    Stls,
    User(&'a str),
    /// The password: never shown by `trace`.
    Pass(&'a str),
    /// `APOP name digest`: the digest is shown by `trace` as `***`.
    Apop(&'a str, &'a str),
    /// `AUTH MECH [initial-response]`: the initial response is shown as `***`.
    Auth(&'a str, Option<&'a str>),
    /// A line answering a SASL challenge (base64 or `*`): shown as `***`.
    SaslResponse(&'a str),
    Stat,
    List(Option<MessageNumber>),
    Uidl(Option<MessageNumber>),
    Retr(MessageNumber),
    Top(MessageNumber, u32),
    Dele(MessageNumber),
    Noop,
    Rset,
    Quit,
}

impl Command<'_> {
    /// Append the command and its CRLF to `out`. On error nothing is appended and the error
    /// names the command and the argument's problem (never its value, which may be secret).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let _ = out;
        todo!("proto helper")
    }

    /// The command as it may appear in a log: `PASS ***`, `AUTH PLAIN ***`, `RETR 3`.
    pub fn trace(&self) -> String {
        todo!("proto helper")
    }

    /// The command's keyword, e.g. `"RETR"`.
    pub fn keyword(&self) -> &'static str {
        todo!("proto helper")
    }
}
