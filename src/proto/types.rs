//! The protocol's nouns, in RFC 1939's words: message numbers, unique ids, octet counts and
//! the capabilities a server announces. Constructors validate, so a value of these types is
//! always safe to put on the wire or into the state file.

use std::fmt;
use std::num::NonZeroU32;

/// A message number in the maildrop (RFC 1939 section 5: 1-based, never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageNumber(NonZeroU32);

impl MessageNumber {
    /// `None` for 0.
    pub fn new(n: u32) -> Option<MessageNumber> {
        NonZeroU32::new(n).map(MessageNumber)
    }

    /// The number as sent on the wire.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for MessageNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest unique id we accept. RFC 1939 section 7 allows 70 octets; real servers
/// sometimes send longer ones, so we are lenient up to this bound (memory stays bounded).
pub const MAX_UID_LEN: usize = 512;

/// A unique-id listing as the server sent it (RFC 1939 section 7).
///
/// RFC 1939 restricts it to 0x21..=0x7E; we accept any byte except SP, TAB, CR, LF and NUL
/// so that a slightly broken server still works. It is never used as a file name (the state
/// file percent-encodes everything outside printable ASCII).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(Box<[u8]>);

impl Uid {
    /// Validate and wrap. `None` when empty, too long, or holding SP, TAB, CR, LF or NUL.
    pub fn new(bytes: &[u8]) -> Option<Uid> {
        let ok = !bytes.is_empty()
            && bytes.len() <= MAX_UID_LEN
            && !bytes
                .iter()
                .any(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0));
        ok.then(|| Uid(bytes.into()))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self)
    }
}

/// Shows printable ASCII as is and every other byte as `%XX`, so a hostile UIDL cannot
/// reach a terminal or a log unescaped.
impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = Vec::with_capacity(self.0.len());
        crate::proto::hex::percent_encode(&mut shown, &self.0);
        // Percent-encoded text is ASCII: nothing is replaced.
        f.write_str(&String::from_utf8_lossy(&shown))
    }
}

/// A size in octets as the server reports it (a hint: servers disagree on CRLF counting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Octets(pub u64);

/// The EXPIRE capability (RFC 2449 section 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// `EXPIRE NEVER`.
    Never,
    /// `EXPIRE n`: messages are deleted n days after they were first retrieved (0: at QUIT).
    Days(u32),
}

/// What the server announced in its CAPA response (RFC 2449). Unknown tags are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `STLS` (RFC 2595).
    pub stls: bool,
    /// `USER`: USER/PASS is allowed.
    pub user: bool,
    /// `UIDL`.
    pub uidl: bool,
    /// `TOP`.
    pub top: bool,
    /// `PIPELINING`.
    pub pipelining: bool,
    /// `RESP-CODES`.
    pub resp_codes: bool,
    /// `AUTH-RESP-CODE` (RFC 3206).
    pub auth_resp_code: bool,
    /// `SASL` mechanisms, upper-cased.
    pub sasl: Vec<String>,
    /// `LOGIN-DELAY n` in seconds.
    pub login_delay: Option<u32>,
    /// `EXPIRE`.
    pub expire: Option<Expire>,
    /// `IMPLEMENTATION` text (untrusted: sanitise before printing).
    pub implementation: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_display_percent_encodes_like_the_state_file() {
        let uid = Uid::new(b"ab%c\x1b[31m\x7f\xc3\xa9~").unwrap();
        assert_eq!(uid.to_string(), "ab%25c%1B[31m%7F%C3%A9~");
        assert_eq!(format!("{uid:?}"), "Uid(ab%25c%1B[31m%7F%C3%A9~)");
    }
}
