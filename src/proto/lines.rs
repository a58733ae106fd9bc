//! Line framing. POP3 lines end in CRLF (RFC 1939 section 3); we also accept a bare LF from
//! broken servers in status and listing lines. Every line has a maximum length.

/// The longest status or listing line we accept, terminator included. RFC 2449 section 4
/// allows 512 octets for a response; we allow more for long `-ERR` texts and CAPA lines.
pub const MAX_LINE: usize = 8192;

/// Find the end of the first line in `buf`: `Some(n)` where `buf[..n]` is the line including
/// its LF, `None` when no LF is present yet.
pub fn find_eol(buf: &[u8]) -> Option<usize> {
    let _ = buf;
    todo!("proto helper")
}

/// `line` without its trailing LF or CRLF (only one terminator is removed).
pub fn strip_eol(line: &[u8]) -> &[u8] {
    let _ = line;
    todo!("proto helper")
}
