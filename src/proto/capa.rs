//! The CAPA response body (RFC 2449 section 6), one line at a time.

use super::{Capabilities, Expire};

/// At most this many SASL mechanisms are kept, so a hostile CAPA body cannot grow the list
/// without bound.
const MAX_SASL_MECHS: usize = 64;

/// RFC 4422 section 3.1: a mechanism name is 1 to 20 characters.
const MAX_SASL_MECH_LEN: usize = 20;

/// The longest IMPLEMENTATION text we keep, in characters.
const MAX_IMPLEMENTATION_CHARS: usize = 200;

impl Capabilities {
    /// Add one (already unstuffed, terminator-free) CAPA line. Tags are case-insensitive;
    /// unknown tags and malformed arguments are ignored (a capability we cannot read is a
    /// capability we do not use). `SASL` mechanisms are upper-cased and de-duplicated;
    /// `LOGIN-DELAY n` and `EXPIRE n|NEVER` (with an optional ` USER` suffix) are parsed;
    /// `IMPLEMENTATION` keeps the rest of the line (lossy UTF-8, at most 200 chars).
    pub fn add_line(&mut self, line: &[u8]) {
        let line = trim_ws(line);
        let (tag, args) = match line.iter().position(|&b| is_ws(b)) {
            Some(i) => (&line[..i], trim_ws(&line[i..])),
            None => (line, &[][..]),
        };
        let tag = tag.to_ascii_uppercase();
        match tag.as_slice() {
            // RFC 2449 section 6 and RFC 2595 section 4: tags without arguments. Stray
            // arguments do not change what the tag announces.
            b"STLS" => self.stls = true,
            b"USER" => self.user = true,
            b"UIDL" => self.uidl = true,
            b"TOP" => self.top = true,
            b"PIPELINING" => self.pipelining = true,
            b"RESP-CODES" => self.resp_codes = true,
            b"AUTH-RESP-CODE" => self.auth_resp_code = true,
            b"SASL" => self.add_sasl(args),
            b"LOGIN-DELAY" => {
                if let Some(secs) = without_user_suffix(args).and_then(parse_u32) {
                    self.login_delay = Some(secs);
                }
            }
            b"EXPIRE" => {
                if let Some(arg) = without_user_suffix(args) {
                    if arg.eq_ignore_ascii_case(b"NEVER") {
                        self.expire = Some(Expire::Never);
                    } else if let Some(days) = parse_u32(arg) {
                        self.expire = Some(Expire::Days(days));
                    }
                }
            }
            b"IMPLEMENTATION" if !args.is_empty() => {
                // Only a bounded prefix is decoded: 4 bytes per char is the UTF-8 maximum,
                // so the prefix always yields the first 200 characters.
                let prefix = &args[..args.len().min(MAX_IMPLEMENTATION_CHARS * 4)];
                let text: String = String::from_utf8_lossy(prefix)
                    .chars()
                    .take(MAX_IMPLEMENTATION_CHARS)
                    .collect();
                self.implementation = Some(text);
            }
            _ => {}
        }
    }

    /// RFC 2449 section 6.3: `SASL` lists mechanism names separated by spaces.
    fn add_sasl(&mut self, args: &[u8]) {
        for mech in args.split(|&b| is_ws(b)).filter(|m| !m.is_empty()) {
            // RFC 4422 section 3.1: 1*20 of upper-case letters, digits, "-" and "_". Lower
            // case is tolerated (and upper-cased); anything else is not a mechanism.
            let valid = mech.len() <= MAX_SASL_MECH_LEN
                && mech
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                continue;
            }
            let name = String::from_utf8_lossy(mech).to_ascii_uppercase();
            if !self.sasl.contains(&name) && self.sasl.len() < MAX_SASL_MECHS {
                self.sasl.push(name);
            }
        }
    }
}

/// RFC 2449 sections 6.5 and 6.7: the argument may be followed by `USER` (the value then
/// depends on the user, and is announced before login). `None` when there is not exactly
/// one argument besides an optional `USER`.
fn without_user_suffix(args: &[u8]) -> Option<&[u8]> {
    let mut words = args.split(|&b| is_ws(b)).filter(|w| !w.is_empty());
    let arg = words.next()?;
    match words.next() {
        None => Some(arg),
        Some(user) if user.eq_ignore_ascii_case(b"USER") && words.next().is_none() => Some(arg),
        Some(_) => None,
    }
}

/// A plain decimal `u32`: digits only, no sign, no overflow.
fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |n, &d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn caps(lines: &[&[u8]]) -> Capabilities {
        let mut c = Capabilities::default();
        for line in lines {
            c.add_line(line);
        }
        c
    }

    #[test]
    fn rfc2449_capa_example() {
        // RFC 2449 section 5, the example CAPA body (terminator already removed).
        let c = caps(&[
            b"TOP",
            b"USER",
            b"SASL CRAM-MD5 KERBEROS_V4",
            b"RESP-CODES",
            b"LOGIN-DELAY 900",
            b"PIPELINING",
            b"EXPIRE 60",
            b"UIDL",
            b"IMPLEMENTATION Shlemazle-Plotz-v302",
        ]);
        assert_eq!(
            c,
            Capabilities {
                stls: false,
                user: true,
                uidl: true,
                top: true,
                pipelining: true,
                resp_codes: true,
                auth_resp_code: false,
                sasl: vec!["CRAM-MD5".into(), "KERBEROS_V4".into()],
                login_delay: Some(900),
                expire: Some(Expire::Days(60)),
                implementation: Some("Shlemazle-Plotz-v302".into()),
            }
        );
    }

    #[test]
    fn dovecot_capa() {
        let c = caps(&[
            b"CAPA",
            b"TOP",
            b"UIDL",
            b"RESP-CODES",
            b"PIPELINING",
            b"AUTH-RESP-CODE",
            b"STLS",
            b"USER",
            b"SASL PLAIN LOGIN",
        ]);
        assert!(c.stls && c.auth_resp_code && c.user && c.top);
        assert_eq!(c.sasl, ["PLAIN", "LOGIN"]);
    }

    #[test]
    fn tags_are_case_insensitive_and_mechs_upper_cased_once() {
        let c = caps(&[
            b"stls",
            b"Sasl plain scram-sha-256",
            b"SASL PLAIN  XOAUTH2\t",
        ]);
        assert!(c.stls);
        assert_eq!(c.sasl, ["PLAIN", "SCRAM-SHA-256", "XOAUTH2"]);
    }

    #[test]
    fn malformed_sasl_mechanisms_are_ignored() {
        let c = caps(&[b"SASL PLAIN BAD/MECH THIS-NAME-IS-FAR-TOO-LONG-FOR-SASL \xff"]);
        assert_eq!(c.sasl, ["PLAIN"]);
    }

    #[test]
    fn sasl_list_is_bounded() {
        let mut c = Capabilities::default();
        for i in 0..1000 {
            c.add_line(format!("SASL M{i}").as_bytes());
        }
        assert_eq!(c.sasl.len(), MAX_SASL_MECHS);
    }

    #[test]
    fn login_delay_and_expire() {
        // RFC 2449 sections 6.5 and 6.7, including the USER suffix before login.
        let c = caps(&[b"LOGIN-DELAY 60 USER", b"EXPIRE NEVER"]);
        assert_eq!(c.login_delay, Some(60));
        assert_eq!(c.expire, Some(Expire::Never));
        let c = caps(&[b"EXPIRE 0 USER"]);
        assert_eq!(c.expire, Some(Expire::Days(0)));
        let c = caps(&[b"expire never"]);
        assert_eq!(c.expire, Some(Expire::Never));
    }

    #[test]
    fn malformed_numbers_are_ignored() {
        for line in [
            &b"LOGIN-DELAY"[..],
            b"LOGIN-DELAY -5",
            b"LOGIN-DELAY +5",
            b"LOGIN-DELAY 99999999999",
            b"LOGIN-DELAY 5 minutes",
            b"LOGIN-DELAY 5 USER extra",
            b"LOGIN-DELAY 0x10",
            b"EXPIRE",
            b"EXPIRE soon",
            b"EXPIRE 4294967296",
            b"EXPIRE 1 2",
        ] {
            let c = caps(&[line]);
            assert_eq!(
                c,
                Capabilities::default(),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn unknown_tags_are_ignored() {
        let c = caps(&[
            b"X-FANCY 1 2 3",
            b"",
            b"   ",
            b"\0",
            b"LANG",
            b"TOPS",
            b"STLSX",
        ]);
        assert_eq!(c, Capabilities::default());
    }

    #[test]
    fn implementation_is_lossy_and_bounded() {
        let c = caps(&[b"IMPLEMENTATION Cyrus POP3 \xff v3.6"]);
        assert_eq!(
            c.implementation.as_deref(),
            Some("Cyrus POP3 \u{fffd} v3.6")
        );
        let long = [b"IMPLEMENTATION ".to_vec(), "é".repeat(1000).into_bytes()].concat();
        let c = caps(&[&long]);
        assert_eq!(
            c.implementation.as_deref().map(|s| s.chars().count()),
            Some(200)
        );
        assert_eq!(c.implementation.as_deref(), Some("é".repeat(200).as_str()));
        let c = caps(&[b"IMPLEMENTATION"]);
        assert_eq!(c.implementation, None);
    }

    proptest! {
        #[test]
        fn add_line_never_panics(
            tag in prop::sample::select(vec![
                &b""[..], b"SASL ", b"LOGIN-DELAY ", b"EXPIRE ", b"IMPLEMENTATION ", b"STLS",
            ]),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut line = tag.to_vec();
            line.extend_from_slice(&tail);
            let mut c = Capabilities::default();
            c.add_line(&line);
            for m in &c.sasl {
                prop_assert!(!m.is_empty() && m.len() <= MAX_SASL_MECH_LEN);
                prop_assert_eq!(m.clone(), m.to_ascii_uppercase());
            }
            if let Some(text) = &c.implementation {
                prop_assert!(text.chars().count() <= MAX_IMPLEMENTATION_CHARS);
            }
        }
    }
}
