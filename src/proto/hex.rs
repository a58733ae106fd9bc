//! Hex digits, in one place: bytes to hex text (lower case for the APOP and CRAM-MD5
//! digests, upper case with colons for certificate fingerprints), the `%XX` percent-encoding
//! that keeps a UIDL printable (in the state file and in `Uid`'s `Display`), and one hex
//! digit back to its value. Pure functions, no I/O. A crate is not worth it for this:
//! digest 0.11 outputs lost `LowerHex`, and the `hex` crate is only in the tree through the
//! optional keyring stack.

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Lowercase hex, two digits a byte: `[0x0f, 0xa0]` is `0fa0`.
pub fn encode_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(LOWER[usize::from(b >> 4)]));
        out.push(char::from(LOWER[usize::from(b & 0x0f)]));
    }
    out
}

/// Upper-case hex pairs joined by `:`, as `openssl x509 -fingerprint -sha256` prints them:
/// `[0x0f, 0xa0]` is `0F:A0`.
pub fn encode_upper_colons(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(UPPER[usize::from(b >> 4)]));
        out.push(char::from(UPPER[usize::from(b & 0x0f)]));
    }
    out
}

/// Whether percent-encoding keeps `b` as it is: printable ASCII except space and `%`.
pub fn percent_plain(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b'%'
}

/// Append `bytes` to `out`, every byte that is not [`percent_plain`] as `%XX` (upper case):
/// `a b%` becomes `a%20b%25`. The result is printable ASCII.
pub fn percent_encode(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if percent_plain(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                UPPER[usize::from(b >> 4)],
                UPPER[usize::from(b & 0x0f)],
            ]);
        }
    }
}

/// The value of one hex digit, either case; `None` for anything else.
pub fn digit_value(h: u8) -> Option<u8> {
    match h {
        b'0'..=b'9' => Some(h - b'0'),
        b'A'..=b'F' => Some(h - b'A' + 10),
        b'a'..=b'f' => Some(h - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoders() {
        assert_eq!(encode_lower(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(encode_lower(&[]), "");
        assert_eq!(
            encode_upper_colons(&[0x00, 0x0f, 0xa0, 0xff]),
            "00:0F:A0:FF"
        );
        assert_eq!(encode_upper_colons(&[0xab]), "AB");
        assert_eq!(encode_upper_colons(&[]), "");
        let mut out = b"x".to_vec();
        percent_encode(&mut out, b"a b%\x00\x7f\xff~!");
        assert_eq!(out, b"xa%20b%25%00%7F%FF~!");
    }

    #[test]
    fn digits() {
        assert_eq!(digit_value(b'0'), Some(0));
        assert_eq!(digit_value(b'9'), Some(9));
        assert_eq!(digit_value(b'a'), Some(10));
        assert_eq!(digit_value(b'F'), Some(15));
        for b in [b'g', b'G', b'/', b':', b'@', b'`', b' ', 0xff] {
            assert_eq!(digit_value(b), None, "{b}");
        }
    }

    proptest! {
        #[test]
        fn encodings_decode_back(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let pairs = |text: &[u8]| -> Vec<u8> {
                text.chunks(2)
                    .map(|p| digit_value(p[0]).unwrap() << 4 | digit_value(p[1]).unwrap())
                    .collect()
            };
            let lower = encode_lower(&bytes);
            prop_assert_eq!(pairs(lower.as_bytes()), bytes.clone());
            let colons = encode_upper_colons(&bytes).replace(':', "");
            prop_assert_eq!(pairs(colons.as_bytes()), bytes.clone());

            let mut encoded = Vec::new();
            percent_encode(&mut encoded, &bytes);
            prop_assert!(encoded.iter().all(|&b| percent_plain(b) || b == b'%'));
            let mut decoded = Vec::new();
            let mut rest = &encoded[..];
            while let Some((&b, tail)) = rest.split_first() {
                if b == b'%' {
                    decoded.push(pairs(&tail[..2])[0]);
                    rest = &tail[2..];
                } else {
                    decoded.push(b);
                    rest = tail;
                }
            }
            prop_assert_eq!(decoded, bytes);
        }
    }
}
