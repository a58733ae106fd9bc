//! Status lines: `+OK text`, `-ERR [CODE/SUB] text` (RFC 1939 section 3, RFC 2449 section 8),
//! and SASL continuation lines `+ base64` (RFC 5034 section 4).

use super::ParseError;

/// `+OK` or `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
}

/// An extended response code (RFC 2449 section 8, RFC 3206). Hierarchical codes keep their
/// first component in the match: `SYS/TEMP` and `SYS/PERM` are distinct variants, any other
/// code is kept upper-cased in `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespCode {
    InUse,
    LoginDelay,
    SysTemp,
    SysPerm,
    Auth,
    Other(String),
}

/// A parsed status line. `text` is what follows the status and the optional code, with one
/// leading space removed; it is untrusted server text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: Status,
    pub code: Option<RespCode>,
    pub text: &'a [u8],
}

/// Parse one status line (`line` has its CRLF or LF already removed).
///
/// Accepts `+OK` / `-ERR` case-insensitively, followed by end of line or a space (a TAB is
/// tolerated). A `[...]` right after the space is a resp-code only when it closes on the same
/// line and holds no space; otherwise it is part of the text. Anything else is
/// `ParseError::Invalid`.
pub fn parse_status(line: &[u8]) -> Result<Response<'_>, ParseError> {
    // RFC 1939 section 3: the status indicators are "+OK" and "-ERR"; RFC 2449 section 3
    // lets them be matched case-insensitively.
    let (status, rest) = if starts_with_ignore_case(line, b"+OK") {
        (Status::Ok, &line[3..])
    } else if starts_with_ignore_case(line, b"-ERR") {
        (Status::Err, &line[4..])
    } else {
        return Err(ParseError::Invalid(
            "expected a status line starting with +OK or -ERR".into(),
        ));
    };
    let rest = match rest.split_first() {
        None => rest,
        Some((&(b' ' | b'\t'), tail)) => tail,
        // "+OKAY" or "-ERROR" is not a status line.
        Some(_) => {
            return Err(ParseError::Invalid(
                "expected a space after +OK or -ERR".into(),
            ));
        }
    };
    match split_resp_code(rest) {
        Some((code, text)) => Ok(Response {
            status,
            code: Some(code),
            text: strip_one_space(text),
        }),
        None => Ok(Response {
            status,
            code: None,
            text: rest,
        }),
    }
}

/// `[CODE]` at the start of `rest`, and what follows its `]`. `None` when `rest` does not
/// start with a well-formed code, in which case the bracket is ordinary text.
fn split_resp_code(rest: &[u8]) -> Option<(RespCode, &[u8])> {
    let inner = rest.strip_prefix(b"[")?;
    let close = inner.iter().position(|&b| b == b']')?;
    let code = &inner[..close];
    // RFC 2449 section 3: resp-level = 1*schar, printable ASCII without "/" and "]"; we only
    // insist on what keeps the code unambiguous (non-empty, no white space, no nested "[").
    if code.is_empty() || code.iter().any(|&b| matches!(b, b' ' | b'\t' | b'[')) {
        return None;
    }
    Some((classify(code), &inner[close + 1..]))
}

/// Map a code to its variant. RFC 2449 section 8: codes are hierarchical and a client treats
/// an unknown lower level like its parent, so `[IN-USE/FOO]` is `InUse` and `[SYS/TEMP/X]` is
/// `SysTemp`; `SYS` needs its second level (TEMP or PERM, RFC 3206) to mean anything.
fn classify(code: &[u8]) -> RespCode {
    let mut levels = code.split(|&b| b == b'/');
    let first = levels.next().unwrap_or_default();
    let second = levels.next().unwrap_or_default();
    if first.eq_ignore_ascii_case(b"IN-USE") {
        RespCode::InUse
    } else if first.eq_ignore_ascii_case(b"LOGIN-DELAY") {
        RespCode::LoginDelay
    } else if first.eq_ignore_ascii_case(b"AUTH") {
        RespCode::Auth
    } else if first.eq_ignore_ascii_case(b"SYS") && second.eq_ignore_ascii_case(b"TEMP") {
        RespCode::SysTemp
    } else if first.eq_ignore_ascii_case(b"SYS") && second.eq_ignore_ascii_case(b"PERM") {
        RespCode::SysPerm
    } else {
        RespCode::Other(String::from_utf8_lossy(code).to_ascii_uppercase())
    }
}

/// Remove one leading space (or TAB) that separates a resp-code from the text.
fn strip_one_space(text: &[u8]) -> &[u8] {
    match text.split_first() {
        Some((&(b' ' | b'\t'), tail)) => tail,
        _ => text,
    }
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A SASL continuation (`+ ` followed by base64, or a bare `+`): returns the payload bytes
/// still base64-encoded (empty for a bare `+`), or `None` when the line is a status line.
pub fn parse_continuation(line: &[u8]) -> Option<&[u8]> {
    // RFC 5034 section 4: a server challenge is "+" SP base64; some servers (Microsoft 365
    // with XOAUTH2) send a bare "+" for an empty challenge. "+OK ..." is not a challenge.
    match line {
        [b'+'] => Some(&[]),
        [b'+', b' ', payload @ ..] => Some(payload),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(line: &[u8]) -> Response<'_> {
        parse_status(line).expect("a valid status line")
    }

    #[test]
    fn rfc1939_examples() {
        // RFC 1939 section 4, the greeting with an APOP timestamp.
        let r = ok(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>");
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.code, None);
        assert_eq!(
            r.text,
            b"POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
        );
        // RFC 1939 section 5, STAT: the text is what parse_stat reads.
        assert_eq!(ok(b"+OK 2 320").text, b"2 320");
        // RFC 1939 section 5, RETR of a deleted message.
        let r = ok(b"-ERR no such message");
        assert_eq!(r.status, Status::Err);
        assert_eq!(r.text, b"no such message");
        // RFC 1939 section 7: LIST answer "+OK" alone.
        let r = ok(b"+OK");
        assert_eq!((r.status, r.text), (Status::Ok, &b""[..]));
    }

    #[test]
    fn status_is_case_insensitive() {
        assert_eq!(ok(b"+ok fine").status, Status::Ok);
        assert_eq!(ok(b"-eRr nope").status, Status::Err);
        assert_eq!(ok(b"-err").text, b"");
    }

    #[test]
    fn tab_separator_is_tolerated() {
        assert_eq!(ok(b"+OK\thello").text, b"hello");
    }

    #[test]
    fn only_one_space_is_removed() {
        assert_eq!(ok(b"+OK  two").text, b" two");
    }

    #[test]
    fn rejects_other_lines() {
        for line in [
            &b""[..],
            b"+",
            b"+O",
            b"+OKAY",
            b"-ERROR",
            b"OK",
            b"* OK",
            b" +OK",
            b"+ dGVzdA==",
            b"-ERR[IN-USE] x",
            b"\0+OK",
        ] {
            assert!(
                matches!(parse_status(line), Err(ParseError::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn rfc2449_resp_codes() {
        // RFC 2449 section 8.1.1 / 8.1.2 and RFC 3206 section 4 codes, as Cyrus sends them.
        let r = ok(b"-ERR [IN-USE] Unable to lock maildrop");
        assert_eq!(r.code, Some(RespCode::InUse));
        assert_eq!(r.text, b"Unable to lock maildrop");
        let r = ok(b"-ERR [LOGIN-DELAY] Logins must be at least 1 minute apart");
        assert_eq!(r.code, Some(RespCode::LoginDelay));
        assert_eq!(r.text, b"Logins must be at least 1 minute apart");
        assert_eq!(
            ok(b"-ERR [SYS/TEMP] try later").code,
            Some(RespCode::SysTemp)
        );
        assert_eq!(
            ok(b"-ERR [SYS/PERM] Unable to open maildrop").code,
            Some(RespCode::SysPerm)
        );
        assert_eq!(
            ok(b"-ERR [AUTH] Authentication failed.").code,
            Some(RespCode::Auth)
        );
    }

    #[test]
    fn resp_codes_are_case_insensitive_and_hierarchical() {
        assert_eq!(ok(b"-ERR [in-use] x").code, Some(RespCode::InUse));
        assert_eq!(ok(b"-ERR [sys/temp] x").code, Some(RespCode::SysTemp));
        // RFC 2449 section 8: an unknown lower level means the same as its parent.
        assert_eq!(ok(b"-ERR [IN-USE/LOCKED] x").code, Some(RespCode::InUse));
        assert_eq!(ok(b"-ERR [SYS/TEMP/DISK] x").code, Some(RespCode::SysTemp));
        assert_eq!(
            ok(b"-ERR [SYS] x").code,
            Some(RespCode::Other("SYS".into()))
        );
        assert_eq!(
            ok(b"-ERR [sys/other] x").code,
            Some(RespCode::Other("SYS/OTHER".into()))
        );
        assert_eq!(
            ok(b"+OK [x-custom] hi").code,
            Some(RespCode::Other("X-CUSTOM".into()))
        );
    }

    #[test]
    fn code_without_text() {
        let r = ok(b"-ERR [AUTH]");
        assert_eq!(r.code, Some(RespCode::Auth));
        assert_eq!(r.text, b"");
    }

    #[test]
    fn brackets_that_are_not_codes_stay_text() {
        for line in [
            &b"-ERR [not a code] x"[..],
            b"-ERR [unclosed",
            b"-ERR []",
            b"-ERR  [IN-USE] leading space",
            b"-ERR x [IN-USE]",
        ] {
            let r = ok(line);
            assert_eq!(r.code, None, "{:?}", String::from_utf8_lossy(line));
            assert_eq!(r.text, &line[5..]);
        }
    }

    #[test]
    fn continuation_lines() {
        // The CRAM-MD5 challenge of RFC 2195 section 2, sent the RFC 5034 way.
        assert_eq!(
            parse_continuation(b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"),
            Some(&b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"[..])
        );
        assert_eq!(parse_continuation(b"+"), Some(&b""[..]));
        assert_eq!(parse_continuation(b"+ "), Some(&b""[..]));
        assert_eq!(parse_continuation(b"+OK"), None);
        assert_eq!(parse_continuation(b"+OK done"), None);
        assert_eq!(parse_continuation(b"+ok"), None);
        assert_eq!(parse_continuation(b"-ERR"), None);
        assert_eq!(parse_continuation(b""), None);
        assert_eq!(parse_continuation(b"+x"), None);
    }

    proptest! {
        #[test]
        fn parse_status_never_panics(
            prefix in prop::sample::select(vec![&b""[..], b"+OK", b"-ERR ", b"-err [", b"+ "]),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            // A likely prefix so that the random tail reaches the resp-code parser.
            let mut line = prefix.to_vec();
            line.extend_from_slice(&tail);
            if let Ok(r) = parse_status(&line) {
                // The text is always a suffix of the line.
                prop_assert!(line.ends_with(r.text));
            }
            let _ = parse_continuation(&line);
        }

        #[test]
        fn any_text_after_ok_round_trips(text in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assume!(text.first() != Some(&b'['));
            let mut line = b"+OK ".to_vec();
            line.extend_from_slice(&text);
            let r = parse_status(&line).unwrap();
            prop_assert_eq!(r.status, Status::Ok);
            prop_assert_eq!(r.text, &text[..]);
        }
    }
}
