//! `HeaderSniffer`: fed the input in arbitrary chunks with a small or the default limit.
//! Never panics; never buffers more than its limit; what it buffers is a prefix of the
//! input and the same for every chunking; once complete it takes nothing more; the sender
//! is `MAILER-DAEMON` or 1..=256 printable ASCII characters without spaces (safe in an
//! mbox `From ` line and as an argument).
//!
//! Input layout: byte 0 picks the limit (0: the default `MAX_HEADER`, else 1..=255), byte 1
//! how many chunk sizes follow (1..=8), then the sizes (0 means 1; cycled), then the message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::deliver::envelope::{HeaderSniffer, MAX_HEADER, MAX_SENDER, NO_SENDER};

fn sniff(message: &[u8], limit: usize, sizes: &[usize]) -> HeaderSniffer {
    let mut s = HeaderSniffer::with_limit(limit);
    let mut pos = 0;
    let mut k = 0;
    while pos < message.len() {
        let size = sizes[k % sizes.len()].max(1);
        k += 1;
        let end = (pos + size).min(message.len());
        let was_complete = s.is_complete();
        let taken = s.feed(&message[pos..end]);
        assert!(taken <= end - pos);
        if was_complete {
            assert_eq!(taken, 0, "took bytes after completion");
        }
        if taken < end - pos {
            assert!(s.is_complete(), "left bytes while incomplete");
        }
        assert!(s.buffered().len() <= limit);
        pos += taken;
        if s.is_complete() {
            break;
        }
    }
    assert_eq!(s.buffered(), &message[..pos]);
    s
}

fn check_sender(sender: &str) {
    if sender == NO_SENDER {
        return;
    }
    assert!(
        !sender.is_empty() && sender.len() <= MAX_SENDER,
        "{sender:?}"
    );
    assert!(
        sender.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "{sender:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let [limit, n, rest @ ..] = data else {
        return;
    };
    let limit = if *limit == 0 {
        MAX_HEADER
    } else {
        usize::from(*limit)
    };
    let n = usize::from(n % 8) + 1;
    if rest.len() < n {
        return;
    }
    let (sizes, message) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();

    let one = sniff(message, limit, &[usize::MAX]);
    let chunked = sniff(message, limit, &sizes);
    let bytewise = sniff(message, limit, &[1]);
    for other in [&chunked, &bytewise] {
        assert_eq!(
            one.buffered(),
            other.buffered(),
            "chunking changed the header"
        );
        assert_eq!(one.is_complete(), other.is_complete());
        assert_eq!(one.sender(), other.sender());
    }
    check_sender(&one.sender());
    if !one.is_complete() {
        assert_eq!(one.buffered(), message);
    }
    let sender = one.sender();
    assert_eq!(one.into_buffered().len() <= limit, true);
    check_sender(&sender);
});
