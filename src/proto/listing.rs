//! STAT, LIST and UIDL responses (RFC 1939 sections 5 and 7).

use super::types::MAX_UID_LEN;
use super::{MessageNumber, Octets, ParseError, Uid};

/// The text of a `+OK` answer to STAT: `nn mm ...` -> (message count, total octets).
/// Extra text after the two numbers is allowed (RFC 1939 says implementations may add it).
pub fn parse_stat(text: &[u8]) -> Result<(u32, Octets), ParseError> {
    let (count, rest) = number(text, MAX_NUMBER_DIGITS, "STAT message count")?;
    let (size, _) = number(rest, MAX_SIZE_DIGITS, "STAT size")?;
    let count = u32::try_from(count)
        .map_err(|_| ParseError::TooLong("STAT message count exceeds 4294967295".into()))?;
    Ok((count, Octets(size)))
}

/// One line of a LIST body, or the text of `+OK` to `LIST n`: `n size`.
/// Numbers are plain decimal: no sign, at most 10 (message number) / 20 (size) digits,
/// message number not 0. Extra whitespace between fields is tolerated; trailing text too.
pub fn parse_list_line(line: &[u8]) -> Result<(MessageNumber, Octets), ParseError> {
    let (n, rest) = message_number(line, "LIST message number")?;
    let (size, _) = number(rest, MAX_SIZE_DIGITS, "LIST size")?;
    Ok((n, Octets(size)))
}

/// One line of a UIDL body, or the text of `+OK` to `UIDL n`: `n uid`. The uid runs to the
/// end of the line (trailing spaces trimmed) and must satisfy [`Uid::new`].
pub fn parse_uidl_line(line: &[u8]) -> Result<(MessageNumber, Uid), ParseError> {
    let (n, rest) = message_number(line, "UIDL message number")?;
    let uid = skip_ws(rest);
    let end = uid.iter().rposition(|&b| !is_ws(b)).map_or(0, |i| i + 1);
    let uid = &uid[..end];
    if uid.is_empty() {
        return Err(ParseError::Invalid("UIDL line: missing unique id".into()));
    }
    if uid.len() > MAX_UID_LEN {
        return Err(ParseError::TooLong(format!(
            "UIDL line: unique id longer than {MAX_UID_LEN} octets"
        )));
    }
    // RFC 1939 section 7: the unique id is the rest of the line; Uid::new refuses the bytes
    // that would break the state file (SP, TAB, CR, LF, NUL).
    let uid = Uid::new(uid).ok_or_else(|| {
        ParseError::Invalid("UIDL line: unique id holds a space or control octet".into())
    })?;
    Ok((n, uid))
}

/// `u32::MAX` has 10 digits.
const MAX_NUMBER_DIGITS: usize = 10;
/// `u64::MAX` has 20 digits.
const MAX_SIZE_DIGITS: usize = 20;

/// A message number (1..=u32::MAX) at the start of `line` and the rest after it.
fn message_number<'a>(line: &'a [u8], what: &str) -> Result<(MessageNumber, &'a [u8]), ParseError> {
    let (n, rest) = number(line, MAX_NUMBER_DIGITS, what)?;
    let n =
        u32::try_from(n).map_err(|_| ParseError::TooLong(format!("{what} exceeds 4294967295")))?;
    // RFC 1939 section 5: message numbers start at 1.
    let n = MessageNumber::new(n).ok_or_else(|| ParseError::Invalid(format!("{what} is 0")))?;
    Ok((n, rest))
}

/// A plain decimal number after optional white space: digits only (no sign, no "0x"), at
/// most `max_digits` of them, ending at white space or the end of `input`. Returns the value
/// and the rest of the input. The error names `what` but never quotes the server's bytes.
fn number<'a>(
    input: &'a [u8],
    max_digits: usize,
    what: &str,
) -> Result<(u64, &'a [u8]), ParseError> {
    let input = skip_ws(input);
    let len = input
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(input.len());
    let (digits, rest) = input.split_at(len);
    if digits.is_empty() {
        return Err(ParseError::Invalid(format!(
            "{what}: expected a decimal number"
        )));
    }
    if rest.first().is_some_and(|&b| !is_ws(b)) {
        return Err(ParseError::Invalid(format!(
            "{what}: unexpected character after the number"
        )));
    }
    if digits.len() > max_digits {
        return Err(ParseError::TooLong(format!(
            "{what}: more than {max_digits} digits"
        )));
    }
    let value = digits
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or_else(|| ParseError::TooLong(format!("{what}: number too large")))?;
    Ok((value, rest))
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_ws(input: &[u8]) -> &[u8] {
    let start = input.iter().position(|&b| !is_ws(b)).unwrap_or(input.len());
    &input[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(v: u32) -> MessageNumber {
        MessageNumber::new(v).unwrap()
    }

    #[test]
    fn rfc1939_stat_example() {
        // RFC 1939 section 5: "S: +OK 2 320".
        assert_eq!(parse_stat(b"2 320"), Ok((2, Octets(320))));
        assert_eq!(parse_stat(b"0 0"), Ok((0, Octets(0))));
        // Implementations may add text after the two numbers.
        assert_eq!(
            parse_stat(b"2 320 messages in maildrop"),
            Ok((2, Octets(320)))
        );
    }

    #[test]
    fn rfc1939_list_examples() {
        // RFC 1939 section 5: "S: 1 120", "S: 2 200", and "+OK 2 200" for "LIST 2".
        assert_eq!(parse_list_line(b"1 120"), Ok((n(1), Octets(120))));
        assert_eq!(parse_list_line(b"2 200"), Ok((n(2), Octets(200))));
    }

    #[test]
    fn rfc1939_uidl_examples() {
        // RFC 1939 section 7: "S: 1 whqtswO00WBw418f9t5JxYwZ", "S: 2 QhdPYR:00WBw1Ph7x7".
        let (m, uid) = parse_uidl_line(b"1 whqtswO00WBw418f9t5JxYwZ").unwrap();
        assert_eq!(m, n(1));
        assert_eq!(uid.as_bytes(), b"whqtswO00WBw418f9t5JxYwZ");
        let (m, uid) = parse_uidl_line(b"2 QhdPYR:00WBw1Ph7x7").unwrap();
        assert_eq!(m, n(2));
        assert_eq!(uid.as_bytes(), b"QhdPYR:00WBw1Ph7x7");
    }

    #[test]
    fn whitespace_is_tolerated() {
        assert_eq!(parse_list_line(b"3  4096"), Ok((n(3), Octets(4096))));
        assert_eq!(parse_list_line(b"3\t4096 extra"), Ok((n(3), Octets(4096))));
        let (_, uid) = parse_uidl_line(b"7   abc  \t").unwrap();
        assert_eq!(uid.as_bytes(), b"abc");
    }

    #[test]
    fn largest_values_fit() {
        assert_eq!(
            parse_list_line(b"4294967295 18446744073709551615"),
            Ok((n(u32::MAX), Octets(u64::MAX)))
        );
        assert_eq!(parse_stat(b"4294967295 1"), Ok((u32::MAX, Octets(1))));
        assert_eq!(parse_list_line(b"007 0"), Ok((n(7), Octets(0))));
    }

    #[test]
    fn huge_numbers_are_too_long() {
        for line in [
            &b"4294967296 1"[..],
            b"99999999999 1",
            b"1 18446744073709551616",
            b"1 123456789012345678901",
            b"1 99999999999999999999",
        ] {
            assert!(
                matches!(parse_list_line(line), Err(ParseError::TooLong(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(matches!(
            parse_stat(b"4294967296 1"),
            Err(ParseError::TooLong(_))
        ));
        // A long run of digits is refused without reading all of it into a number.
        let long = [b"1 ".to_vec(), vec![b'9'; 10_000]].concat();
        assert!(matches!(
            parse_list_line(&long),
            Err(ParseError::TooLong(_))
        ));
    }

    #[test]
    fn signs_zero_and_junk_are_invalid() {
        for line in [
            &b"0 120"[..],
            b"-1 120",
            b"+1 120",
            b"1 -120",
            b"1 +120",
            b"1 0x10",
            b"1 12a",
            b"1a 12",
            b"1",
            b"1 ",
            b"",
            b" ",
            b"one two",
            b"1\x00 2",
            b"\xd9\xa1 2",
        ] {
            assert!(
                matches!(parse_list_line(line), Err(ParseError::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(parse_stat(b"-1 0").is_err());
        assert!(parse_stat(b"2").is_err());
        assert!(parse_stat(b"2 x").is_err());
    }

    #[test]
    fn bad_uids_are_refused() {
        assert!(parse_uidl_line(b"1").is_err());
        assert!(parse_uidl_line(b"1 ").is_err());
        assert!(parse_uidl_line(b"0 abc").is_err());
        assert!(parse_uidl_line(b"1 a b").is_err());
        assert!(parse_uidl_line(b"1 a\0b").is_err());
        assert!(parse_uidl_line(b"1 a\rb").is_err());
        let long = [b"1 ".to_vec(), vec![b'x'; MAX_UID_LEN + 1]].concat();
        assert!(matches!(
            parse_uidl_line(&long),
            Err(ParseError::TooLong(_))
        ));
        let longest = [b"1 ".to_vec(), vec![b'x'; MAX_UID_LEN]].concat();
        assert!(parse_uidl_line(&longest).is_ok());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(line in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_stat(&line);
            if let Ok((m, _)) = parse_list_line(&line) {
                prop_assert!(m.get() > 0);
            }
            if let Ok((_, uid)) = parse_uidl_line(&line) {
                prop_assert!(line.windows(uid.as_bytes().len()).any(|w| w == uid.as_bytes()));
            }
        }

        #[test]
        fn list_round_trips(m in 1u32.., size in any::<u64>()) {
            let line = format!("{m} {size}");
            prop_assert_eq!(parse_list_line(line.as_bytes()), Ok((n(m), Octets(size))));
        }
    }
}
