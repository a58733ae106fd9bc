//! `apop::greeting_timestamp`: never panics; a timestamp found is a subslice of the
//! greeting, `<...>` with an `@` inside, printable ASCII without spaces or inner angle
//! brackets, at most `MAX_TIMESTAMP` octets; and it is the first plausible candidate.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::proto::auth::apop::{MAX_TIMESTAMP, digest, greeting_timestamp};
use pop3::secret::Secret;

/// The slow, obvious reading of the doc comment: every `<` in order, up to the first `>`
/// after it; the first plausible candidate wins.
fn reference(greeting: &[u8]) -> Option<(usize, usize)> {
    for open in 0..greeting.len() {
        if greeting[open] != b'<' {
            continue;
        }
        let close = open + 1 + greeting[open + 1..].iter().position(|&b| b == b'>')?;
        let inner = &greeting[open + 1..close];
        if close - open + 1 <= MAX_TIMESTAMP
            && inner.contains(&b'@')
            && inner
                .iter()
                .all(|&b| (0x21..0x7f).contains(&b) && b != b'<')
        {
            return Some((open, close + 1));
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let found = greeting_timestamp(data);
    let want = reference(data);
    assert_eq!(
        found.map(|ts| ts.as_ptr() as usize - data.as_ptr() as usize),
        want.map(|w| w.0)
    );
    let Some(ts) = found else {
        return;
    };
    assert!(ts.len() >= 3 && ts.len() <= MAX_TIMESTAMP);
    assert_eq!(ts[0], b'<');
    assert_eq!(ts[ts.len() - 1], b'>');
    let inner = &ts[1..ts.len() - 1];
    assert!(inner.contains(&b'@'));
    assert!(
        inner
            .iter()
            .all(|&b| (0x21..0x7f).contains(&b) && b != b'<' && b != b'>')
    );
    // A subslice of the greeting, not a copy.
    let start = ts.as_ptr() as usize - data.as_ptr() as usize;
    assert!(start + ts.len() <= data.len());
    assert_eq!(&data[start..start + ts.len()], ts);
    // The digest of any timestamp is 32 lowercase hex digits.
    let d = digest(ts, &Secret::new("tanstaaf"));
    assert_eq!(d.len(), 32);
    assert!(
        d.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
});
