//! Status lines and SASL continuations: `parse_status` and `parse_continuation` on every
//! line of the input (framed with `find_eol` / `strip_eol`, as the client frames them).
//! Never panics; the text of a parsed line is a suffix of the line; a continuation payload
//! is a suffix of the line; a line is never both a status line and a continuation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::proto::lines::{find_eol, strip_eol};
use pop3::proto::response::{RespCode, Status, parse_continuation, parse_status};

fn check_line(line: &[u8]) {
    let status = parse_status(line);
    if let Ok(r) = &status {
        assert!(line.ends_with(r.text), "text is not a suffix of the line");
        let want = match r.status {
            Status::Ok => &b"+OK"[..],
            Status::Err => &b"-ERR"[..],
        };
        assert!(line[..want.len()].eq_ignore_ascii_case(want));
        if let Some(RespCode::Other(code)) = &r.code {
            assert!(!code.is_empty());
            assert!(!code.contains(' ') && !code.contains('\t') && !code.contains('['));
            assert!(!code.chars().any(|c| c.is_ascii_lowercase()));
        }
        if r.code.is_none() {
            // Without a code, the text is everything after the status and one separator.
            assert!(line.len() - r.text.len() <= want.len() + 1);
        }
    }
    if let Some(payload) = parse_continuation(line) {
        assert!(line.ends_with(payload));
        assert!(line.len() - payload.len() <= 2);
        // "+" and "+ ..." are never "+OK".
        assert!(
            status.is_err(),
            "a line parsed as both status and continuation"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one line (the client hands over a line without its terminator).
    check_line(data);
    // And line by line, as the reader frames them.
    let mut rest = data;
    while let Some(n) = find_eol(rest) {
        assert!(n >= 1 && n <= rest.len() && rest[n - 1] == b'\n');
        let line = strip_eol(&rest[..n]);
        assert!(!line.contains(&b'\n'));
        check_line(line);
        rest = &rest[n..];
    }
    assert!(!rest.contains(&b'\n'));
    check_line(rest);
});
