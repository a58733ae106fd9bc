//! STAT, LIST and UIDL responses (RFC 1939 sections 5 and 7).

use super::{MessageNumber, Octets, ParseError, Uid};

/// The text of a `+OK` answer to STAT: `nn mm ...` -> (message count, total octets).
/// Extra text after the two numbers is allowed (RFC 1939 says implementations may add it).
pub fn parse_stat(text: &[u8]) -> Result<(u32, Octets), ParseError> {
    let _ = text;
    todo!("proto helper")
}

/// One line of a LIST body, or the text of `+OK` to `LIST n`: `n size`.
/// Numbers are plain decimal: no sign, at most 10 (message number) / 20 (size) digits,
/// message number not 0. Extra whitespace between fields is tolerated; trailing text too.
pub fn parse_list_line(line: &[u8]) -> Result<(MessageNumber, Octets), ParseError> {
    let _ = line;
    todo!("proto helper")
}

/// One line of a UIDL body, or the text of `+OK` to `UIDL n`: `n uid`. The uid runs to the
/// end of the line (trailing spaces trimmed) and must satisfy [`Uid::new`].
pub fn parse_uidl_line(line: &[u8]) -> Result<(MessageNumber, Uid), ParseError> {
    let _ = line;
    todo!("proto helper")
}
