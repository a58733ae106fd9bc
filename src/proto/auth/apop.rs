//! APOP (RFC 1939 section 7): the server's greeting carries a unique timestamp
//! `<process-ID.clock@hostname>`, and the client proves it knows the password by sending
//! `APOP name digest`, the digest being the lowercase hex MD5 of the timestamp followed by
//! the password. This module finds the timestamp and computes the digest; it does not send
//! anything. MD5 is weak and the digest is open to offline guessing, so APOP ranks below
//! the SCRAM mechanisms and CRAM-MD5 in [`super::Mechanism::AUTO_ORDER`].

use md5::{Digest, Md5};

use crate::proto::secret::Secret;

/// The longest timestamp we accept, `<` and `>` included. RFC 1939 sets no limit, but the
/// greeting line is at most 512 octets (RFC 2449 section 4) and a real msg-id is short.
pub const MAX_TIMESTAMP: usize = 250;

/// The `<...>` timestamp of an RFC 1939 greeting, brackets included, or `None` when the
/// greeting has no plausible one (then the server does not offer APOP). Plausible means:
/// printable ASCII without spaces or further angle brackets, an `@` inside (msg-id syntax,
/// RFC 822), at most [`MAX_TIMESTAMP`] bytes. The first plausible candidate wins, so a
/// greeting like `+OK <hello> ready <1.2@host>` still yields `<1.2@host>`.
pub fn greeting_timestamp(greeting: &[u8]) -> Option<&[u8]> {
    let mut start = 0;
    while let Some(open) = greeting[start..].iter().position(|&b| b == b'<') {
        let open = start + open;
        let close = open + 1 + greeting[open + 1..].iter().position(|&b| b == b'>')?;
        let candidate = &greeting[open..=close];
        let inner = &candidate[1..candidate.len() - 1];
        let plausible = candidate.len() <= MAX_TIMESTAMP
            && inner.contains(&b'@')
            && inner
                .iter()
                .all(|&b| (0x21..0x7f).contains(&b) && b != b'<');
        if plausible {
            return Some(candidate);
        }
        // Look again from the next '<' (one may sit inside this candidate).
        start = open + 1;
    }
    None
}

/// The APOP digest: lowercase hex MD5 of `timestamp` (brackets included) followed by the
/// password's UTF-8 bytes.
pub fn digest(timestamp: &[u8], secret: &Secret) -> String {
    let mut md5 = Md5::new();
    md5.update(timestamp);
    md5.update(secret.expose().as_bytes());
    crate::proto::hex::encode_lower(&md5.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1939_example() {
        // RFC 1939 section 7.
        let greeting = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n";
        let ts = greeting_timestamp(greeting).unwrap();
        assert_eq!(ts, b"<1896.697170952@dbc.mtview.ca.us>");
        assert_eq!(
            digest(ts, &Secret::new("tanstaaf")),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
        assert_ne!(
            digest(ts, &Secret::new("tanstaag")),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn timestamp_rejects_implausible_ones() {
        assert_eq!(greeting_timestamp(b"+OK ready"), None);
        assert_eq!(greeting_timestamp(b"+OK <no-at-sign>"), None);
        assert_eq!(greeting_timestamp(b"+OK <a b@c>"), None);
        assert_eq!(greeting_timestamp(b"+OK <a\x01@c>"), None);
        assert_eq!(greeting_timestamp(b"+OK <unterminated@x"), None);
        assert_eq!(greeting_timestamp(b"+OK <>"), None);
        assert_eq!(greeting_timestamp("+OK <é@x>".as_bytes()), None);
        let long = format!("+OK <{}@x>", "1".repeat(MAX_TIMESTAMP));
        assert_eq!(greeting_timestamp(long.as_bytes()), None);
        let fits = format!("<{}@x>", "1".repeat(MAX_TIMESTAMP - 4));
        assert_eq!(fits.len(), MAX_TIMESTAMP);
        assert_eq!(
            greeting_timestamp(format!("+OK {fits}").as_bytes()),
            Some(fits.as_bytes())
        );
    }

    #[test]
    fn timestamp_skips_a_bad_candidate() {
        assert_eq!(
            greeting_timestamp(b"+OK <hello> ready <1.2@host>"),
            Some(&b"<1.2@host>"[..])
        );
        assert_eq!(
            greeting_timestamp(b"+OK <<1.2@host>"),
            Some(&b"<1.2@host>"[..])
        );
    }

    proptest! {
        #[test]
        fn timestamp_never_panics_and_is_plausible(greeting in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some(ts) = greeting_timestamp(&greeting) {
                prop_assert!(ts.len() <= MAX_TIMESTAMP);
                prop_assert_eq!(ts[0], b'<');
                prop_assert_eq!(ts[ts.len() - 1], b'>');
                prop_assert!(ts.contains(&b'@'));
            }
        }
    }
}
