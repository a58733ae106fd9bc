//! Multi-line bodies: the streaming `Decoder` fed in arbitrary chunk splits, `unstuff_line`
//! and `stuff`.
//!
//! Input layout: byte 0 picks how many chunk sizes follow (1..=8), those bytes are the
//! chunk sizes (0 means 1; cycled), the rest is the payload. The payload is used twice: as
//! raw wire bytes for the decoder, and as a message body for the stuff -> decode round trip.
//!
//! Properties: never panics; every chunking decodes like one-shot decoding (same output,
//! same bytes consumed, same done flag); output is never longer than the input consumed;
//! `output_len` counts the output; bytes are left unconsumed only once the terminator has
//! been read; the terminator is CRLF "." CRLF; `decode(stuff(body))` is the body with CRLF
//! turned into LF plus a final LF, and consumes exactly the stuffed bytes.

#![no_main]

use std::convert::Infallible;

use libfuzzer_sys::fuzz_target;
use pop3::proto::multiline::{Decoder, stuff, unstuff_line};

struct Decoded {
    output: Vec<u8>,
    consumed: usize,
    done: bool,
}

fn decode(wire: &[u8], sizes: &[usize]) -> Decoded {
    let mut d = Decoder::new();
    let mut output = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < wire.len() && !d.is_done() {
        let size = sizes[k % sizes.len()].max(1);
        k += 1;
        let end = (pos + size).min(wire.len());
        let used = d
            .feed(&wire[pos..end], &mut |b: &[u8]| {
                assert!(!b.is_empty(), "out called with nothing");
                output.extend_from_slice(b);
                Ok::<(), Infallible>(())
            })
            .unwrap();
        assert!(used <= end - pos, "consumed more than it was given");
        if used < end - pos {
            assert!(d.is_done(), "bytes left over before the terminator");
        }
        pos += used;
        // A chunk can release a CR held back from the previous one, so the bound holds for
        // the stream so far, not for each chunk.
        assert!(output.len() <= pos, "output longer than the input consumed");
    }
    // Feeding a finished decoder takes nothing and outputs nothing.
    if d.is_done() {
        let used = d
            .feed(b".\r\nmore", &mut |_: &[u8]| -> Result<(), Infallible> {
                panic!("output after the terminator")
            })
            .unwrap();
        assert_eq!(used, 0);
    }
    assert_eq!(d.output_len(), output.len() as u64);
    Decoded {
        output,
        consumed: pos,
        done: d.is_done(),
    }
}

/// What the round trip must give back: CRLF becomes LF, a final LF is added when the body
/// does not end in one (`stuff` adds the line end, the decoder turns it into LF).
fn normalise(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 1);
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        v.push(body[i]);
        i += 1;
    }
    if !v.is_empty() && v.last() != Some(&b'\n') {
        v.push(b'\n');
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8) + 1;
    if rest.len() < n {
        return;
    }
    let (sizes, payload) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();

    // 1. The payload as wire bytes.
    let one_shot = decode(payload, &[usize::MAX]);
    let chunked = decode(payload, &sizes);
    let bytewise = decode(payload, &[1]);
    for other in [&chunked, &bytewise] {
        assert_eq!(one_shot.output, other.output, "chunking changed the output");
        assert_eq!(
            one_shot.consumed, other.consumed,
            "chunking changed the length"
        );
        assert_eq!(one_shot.done, other.done, "chunking changed the end");
    }
    assert!(one_shot.output.len() <= one_shot.consumed);
    if one_shot.done {
        // Only CRLF "." CRLF ends a body; at the very start the status line's CRLF counts.
        let used = &payload[..one_shot.consumed];
        assert!(used.ends_with(b".\r\n"));
        assert!(used.len() == 3 || used[..used.len() - 3].ends_with(b"\r\n"));
    } else {
        assert_eq!(one_shot.consumed, payload.len());
    }

    // 2. Line-at-a-time unstuffing of the same bytes.
    for line in payload.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match unstuff_line(line) {
            None => assert_eq!(line, b"."),
            Some(u) => {
                assert!(line.ends_with(u));
                assert!(line.len() - u.len() <= 1);
                if line.len() != u.len() {
                    assert_eq!(line[0], b'.');
                }
            }
        }
    }

    // 3. The payload as a message body: stuff, then decode (with trailing bytes of the
    // next response that must be left alone).
    let mut wire = stuff(payload);
    let stuffed_len = wire.len();
    assert!(wire.ends_with(b".\r\n"));
    wire.extend_from_slice(b"+OK next\r\n");
    let round = decode(&wire, &sizes);
    assert!(round.done, "a stuffed body did not end");
    assert_eq!(
        round.consumed, stuffed_len,
        "the terminator was not where stuff put it"
    );
    assert_eq!(
        round.output,
        normalise(payload),
        "stuff -> decode changed the body"
    );
});
