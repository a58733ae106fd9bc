//! The CAPA body: `Capabilities::add_line` on every line of the input (split on LF, one CR
//! stripped, dot-unstuffed as the client does). Never panics, and whatever the server
//! sends, the result stays bounded: at most 64 SASL mechanisms, each 1..=20 characters of
//! `[A-Z0-9_-]`, no duplicates; an IMPLEMENTATION text of at most 200 characters.
//! Adding the same lines twice changes nothing (add_line is idempotent per line).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::proto::Capabilities;
use pop3::proto::multiline::unstuff_line;

fn check(caps: &Capabilities) {
    assert!(
        caps.sasl.len() <= 64,
        "{} SASL mechanisms kept",
        caps.sasl.len()
    );
    for (i, m) in caps.sasl.iter().enumerate() {
        assert!(!m.is_empty() && m.len() <= 20, "mechanism {m:?}");
        assert!(
            m.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            "mechanism {m:?}"
        );
        assert!(!caps.sasl[..i].contains(m), "duplicate mechanism {m:?}");
    }
    if let Some(text) = &caps.implementation {
        assert!(text.chars().count() <= 200);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut caps = Capabilities::default();
    let mut lines = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(line) = unstuff_line(line) else {
            break;
        };
        caps.add_line(line);
        check(&caps);
        lines.push(line);
    }
    // The whole input as one (possibly huge) line, too.
    let mut whole = Capabilities::default();
    whole.add_line(data);
    check(&whole);

    let once = caps.clone();
    for line in lines {
        caps.add_line(line);
    }
    check(&caps);
    assert_eq!(
        once, caps,
        "adding the same CAPA lines again changed the result"
    );
});
