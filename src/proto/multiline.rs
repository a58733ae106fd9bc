//! Multi-line bodies (RFC 1939 section 3): each line that starts with "." is byte-stuffed,
//! and the line "." CRLF ends the body. Only CRLF "." CRLF ends a body: a "." line reached
//! after a bare LF, or "." followed by a bare LF, is data (and is unstuffed like any other).
//!
//! Two interfaces: [`unstuff_line`] for line-at-a-time bodies (CAPA, LIST, UIDL), and the
//! streaming [`Decoder`] for RETR/TOP, which never holds a line in memory.

/// For one line of a line-at-a-time body (terminator already removed, so `line` is what was
/// between the previous LF and this line's CRLF): `None` when the line is the terminating
/// ".", otherwise the line with one leading "." removed if it had one.
pub fn unstuff_line(line: &[u8]) -> Option<&[u8]> {
    let _ = line;
    todo!("proto helper")
}

/// Streaming decoder for a RETR/TOP body: dot-unstuffs, turns CRLF into LF, and finds the
/// terminating CRLF "." CRLF across any chunk boundaries (also one byte per chunk).
///
/// Output: the message with LF line endings. A bare LF stays LF; a CR not followed by LF
/// stays as it is. The body starts right after the status line's CRLF, i.e. at a line start
/// that counts as "after CRLF".
#[derive(Debug, Clone)]
pub struct Decoder {
    // private state, chosen by the implementation
    _todo: (),
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder positioned at the start of a body.
    pub fn new() -> Decoder {
        todo!("proto helper")
    }

    /// Feed the next bytes. Decoded output is passed to `out` in as few calls as possible
    /// (contiguous runs of `input`, never one call per byte in the common case). Returns how
    /// many bytes of `input` were consumed: all of them, unless the terminator was reached,
    /// in which case the bytes after the terminator's LF are left unconsumed and
    /// [`Decoder::is_done`] is true. An error from `out` is returned at once.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let _ = (input, out);
        todo!("proto helper")
    }

    /// True once CRLF "." CRLF has been consumed.
    pub fn is_done(&self) -> bool {
        todo!("proto helper")
    }

    /// Octets of decoded output produced so far (LF line endings).
    pub fn output_len(&self) -> u64 {
        todo!("proto helper")
    }
}

/// Dot-stuff `body` (any line endings) for the wire: LF becomes CRLF, every line that starts
/// with "." gets another ".", a final CRLF is added when the body does not end in a line end,
/// and "." CRLF terminates. The inverse of [`Decoder`] up to CRLF/LF normalisation; used by
/// tests and the scripted test server.
pub fn stuff(body: &[u8]) -> Vec<u8> {
    let _ = body;
    todo!("proto helper")
}
