//! Line framing: `find_eol` and `strip_eol`. `find_eol` returns the length up to and
//! including the first LF; `strip_eol` removes exactly one LF or CRLF and nothing else.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::proto::lines::{find_eol, strip_eol};

fuzz_target!(|data: &[u8]| {
    match find_eol(data) {
        Some(n) => {
            assert!(n >= 1 && n <= data.len());
            assert_eq!(data[n - 1], b'\n');
            assert!(!data[..n - 1].contains(&b'\n'));
        }
        None => assert!(!data.contains(&b'\n')),
    }
    let stripped = strip_eol(data);
    assert!(data.starts_with(stripped));
    let removed = &data[stripped.len()..];
    match data {
        [.., b'\r', b'\n'] => assert_eq!(removed, b"\r\n"),
        [.., b'\n'] => assert_eq!(removed, b"\n"),
        _ => assert!(removed.is_empty()),
    }
});
