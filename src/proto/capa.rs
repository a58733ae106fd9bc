//! The CAPA response body (RFC 2449 section 6), one line at a time.

use super::Capabilities;

impl Capabilities {
    /// Add one (already unstuffed, terminator-free) CAPA line. Tags are case-insensitive;
    /// unknown tags and malformed arguments are ignored (a capability we cannot read is a
    /// capability we do not use). `SASL` mechanisms are upper-cased and de-duplicated;
    /// `LOGIN-DELAY n` and `EXPIRE n|NEVER` (with an optional ` USER` suffix) are parsed;
    /// `IMPLEMENTATION` keeps the rest of the line (lossy UTF-8, at most 200 chars).
    pub fn add_line(&mut self, line: &[u8]) {
        let _ = line;
        todo!("proto helper")
    }
}
