//! Line framing. POP3 lines end in CRLF (RFC 1939 section 3); we also accept a bare LF from
//! broken servers in status and listing lines. Every line has a maximum length.

/// The longest status or listing line we accept, terminator included. RFC 2449 section 4
/// allows 512 octets for a response; we allow more for long `-ERR` texts and CAPA lines.
pub const MAX_LINE: usize = 8192;

/// Find the end of the first line in `buf`: `Some(n)` where `buf[..n]` is the line including
/// its LF, `None` when no LF is present yet.
pub fn find_eol(buf: &[u8]) -> Option<usize> {
    // LF ends a line whether or not a CR precedes it; the CR stays part of the line and
    // `strip_eol` removes it.
    memchr::memchr(b'\n', buf).map(|i| i + 1)
}

/// `line` without its trailing LF or CRLF (only one terminator is removed).
pub fn strip_eol(line: &[u8]) -> &[u8] {
    match line {
        [head @ .., b'\r', b'\n'] => head,
        [head @ .., b'\n'] => head,
        // No LF: a CR alone is not a line terminator (RFC 1939 section 3 says CRLF).
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn find_eol_includes_the_lf() {
        assert_eq!(find_eol(b"+OK\r\nrest"), Some(5));
        assert_eq!(find_eol(b"+OK\nrest"), Some(4));
        assert_eq!(find_eol(b"\n"), Some(1));
        assert_eq!(find_eol(b"+OK\r"), None);
        assert_eq!(find_eol(b""), None);
    }

    #[test]
    fn strip_eol_removes_one_terminator() {
        assert_eq!(strip_eol(b"+OK\r\n"), b"+OK");
        assert_eq!(strip_eol(b"+OK\n"), b"+OK");
        assert_eq!(strip_eol(b"+OK\r\n\r\n"), b"+OK\r\n");
        assert_eq!(strip_eol(b"+OK\n\n"), b"+OK\n");
        assert_eq!(strip_eol(b"+OK\r"), b"+OK\r");
        assert_eq!(strip_eol(b"+OK"), b"+OK");
        assert_eq!(strip_eol(b"\r\n"), b"");
        assert_eq!(strip_eol(b""), b"");
    }

    #[test]
    fn nul_bytes_are_data() {
        assert_eq!(find_eol(b"a\0b\r\n"), Some(5));
        assert_eq!(strip_eol(b"a\0b\r\n"), b"a\0b");
    }

    proptest! {
        #[test]
        fn framing_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            match find_eol(&buf) {
                Some(n) => {
                    prop_assert_eq!(buf[n - 1], b'\n');
                    prop_assert!(!buf[..n - 1].contains(&b'\n'));
                    let line = strip_eol(&buf[..n]);
                    prop_assert!(!line.contains(&b'\n'));
                }
                None => prop_assert!(!buf.contains(&b'\n')),
            }
            let stripped = strip_eol(&buf);
            prop_assert!(buf.starts_with(stripped));
            prop_assert!(buf.len() - stripped.len() <= 2);
        }
    }
}
