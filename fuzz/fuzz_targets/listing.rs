//! STAT, LIST and UIDL lines: `parse_stat`, `parse_list_line`, `parse_uidl_line`. Never
//! panic; whatever parses re-parses to the same value from its canonical form; a uid is a
//! subslice-equal piece of the line that `Uid::new` accepts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::proto::Uid;
use pop3::proto::listing::{parse_list_line, parse_stat, parse_uidl_line};
use pop3::proto::types::MAX_UID_LEN;

fn check(line: &[u8]) {
    if let Ok((count, size)) = parse_stat(line) {
        let canonical = format!("{count} {}", size.0);
        assert_eq!(parse_stat(canonical.as_bytes()), Ok((count, size)));
    }
    if let Ok((n, size)) = parse_list_line(line) {
        assert!(n.get() >= 1);
        let canonical = format!("{} {}", n.get(), size.0);
        assert_eq!(parse_list_line(canonical.as_bytes()), Ok((n, size)));
        // A LIST line is also a valid STAT answer.
        assert_eq!(
            parse_stat(line).map(|(c, s)| (c, s.0)),
            Ok((n.get(), size.0))
        );
    }
    if let Ok((n, uid)) = parse_uidl_line(line) {
        assert!(n.get() >= 1);
        let bytes = uid.as_bytes();
        assert!(!bytes.is_empty() && bytes.len() <= MAX_UID_LEN);
        assert!(
            !bytes
                .iter()
                .any(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0))
        );
        assert!(
            line.windows(bytes.len()).any(|w| w == bytes),
            "uid not in the line"
        );
        assert_eq!(Uid::new(bytes).as_ref(), Some(&uid));
        let mut canonical = format!("{} ", n.get()).into_bytes();
        canonical.extend_from_slice(bytes);
        assert_eq!(parse_uidl_line(&canonical), Ok((n, uid)));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    for line in data.split(|&b| b == b'\n') {
        check(line.strip_suffix(b"\r").unwrap_or(line));
    }
});
