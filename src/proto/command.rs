//! Commands to wire bytes (RFC 1939, 2449, 2595, 5034). Arguments are validated when a
//! command is encoded: CR, LF and NUL are refused (so a user name cannot smuggle a second
//! command), as are empty and over-long arguments. Encoding happens in one function,
//! [`Command::encode`]; [`Command::trace`] is the only form that may be logged, and it shows
//! every secret as `***`.

use super::{MessageNumber, ParseError};

/// The longest argument we send (RFC 2449 section 4 says 40 octets, but SASL responses and
/// OAuth tokens are much longer, and real servers accept long lines).
pub const MAX_ARG: usize = 64 * 1024;

/// One POP3 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    Capa,
    Stls,
    User(&'a str),
    /// The password: never shown by `trace`.
    Pass(&'a str),
    /// `APOP name digest`: the digest is shown by `trace` as `***`. Neither may hold a space,
    /// which would move the boundary between them.
    Apop(&'a str, &'a str),
    /// `AUTH MECH [initial-response]`: the initial response is shown as `***`. Neither may
    /// hold a space; an empty initial response is sent as `=` (RFC 5034 section 4), so an
    /// empty one here is refused like any empty argument.
    Auth(&'a str, Option<&'a str>),
    /// A line answering a SASL challenge (base64 or `*`): shown as `***`. Unlike the other
    /// arguments it may be empty: an empty line is the empty response (RFC 5034 section 4),
    /// which is how a client acknowledges Microsoft 365's XOAUTH2 error challenge.
    SaslResponse(&'a str),
    Stat,
    List(Option<MessageNumber>),
    Uidl(Option<MessageNumber>),
    Retr(MessageNumber),
    Top(MessageNumber, u32),
    Dele(MessageNumber),
    Noop,
    Rset,
    Quit,
}

impl Command<'_> {
    /// Append the command and its CRLF to `out`. On error nothing is appended and the error
    /// names the command and the argument's problem (never its value, which may be secret).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        // Validate everything before writing anything, so a refused command leaves `out`
        // untouched.
        self.validate()?;
        if let Command::SaslResponse(response) = *self {
            // RFC 5034 section 4: a SASL response is the bare line, no keyword.
            out.extend_from_slice(response.as_bytes());
            out.extend_from_slice(b"\r\n");
            return Ok(());
        }
        out.extend_from_slice(self.keyword().as_bytes());
        let mut arg = |a: &[u8]| {
            out.push(b' ');
            out.extend_from_slice(a);
        };
        match *self {
            Command::User(a) | Command::Pass(a) => arg(a.as_bytes()),
            Command::Apop(name, digest) => {
                arg(name.as_bytes());
                arg(digest.as_bytes());
            }
            Command::Auth(mech, initial) => {
                arg(mech.as_bytes());
                if let Some(initial) = initial {
                    arg(initial.as_bytes());
                }
            }
            Command::List(Some(n))
            | Command::Uidl(Some(n))
            | Command::Retr(n)
            | Command::Dele(n) => {
                arg(n.to_string().as_bytes());
            }
            Command::Top(n, lines) => {
                arg(n.to_string().as_bytes());
                arg(lines.to_string().as_bytes());
            }
            Command::Capa
            | Command::Stls
            | Command::SaslResponse(_)
            | Command::Stat
            | Command::List(None)
            | Command::Uidl(None)
            | Command::Noop
            | Command::Rset
            | Command::Quit => {}
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// The command as it may appear in a log: `PASS ***`, `AUTH PLAIN ***`, `RETR 3`.
    /// Arguments that are shown (the user name, the APOP name, the SASL mechanism) have
    /// control characters escaped and are shortened, so a log line stays one short line.
    pub fn trace(&self) -> String {
        let kw = self.keyword();
        match *self {
            Command::User(user) => format!("{kw} {}", printable(user)),
            Command::Pass(_) => format!("{kw} ***"),
            Command::Apop(name, _) => format!("{kw} {} ***", printable(name)),
            Command::Auth(mech, None) => format!("{kw} {}", printable(mech)),
            Command::Auth(mech, Some(_)) => format!("{kw} {} ***", printable(mech)),
            Command::SaslResponse(_) => "***".to_string(),
            Command::List(Some(n))
            | Command::Uidl(Some(n))
            | Command::Retr(n)
            | Command::Dele(n) => {
                format!("{kw} {n}")
            }
            Command::Top(n, lines) => format!("{kw} {n} {lines}"),
            Command::Capa
            | Command::Stls
            | Command::Stat
            | Command::List(None)
            | Command::Uidl(None)
            | Command::Noop
            | Command::Rset
            | Command::Quit => kw.to_string(),
        }
    }

    /// The command's keyword, e.g. `"RETR"`. A [`Command::SaslResponse`] has no keyword of
    /// its own; it is part of an AUTH exchange and reports `"AUTH"`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop(..) => "APOP",
            Command::Auth(..) | Command::SaslResponse(_) => "AUTH",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Top(..) => "TOP",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
        }
    }

    /// Check every string argument (numbers are valid by their types).
    fn validate(&self) -> Result<(), ParseError> {
        match *self {
            Command::User(user) => check(user, "USER", "user name", Rule::Word),
            Command::Pass(pass) => check(pass, "PASS", "password", Rule::Word),
            Command::Apop(name, digest) => {
                check(name, "APOP", "name", Rule::Token)?;
                check(digest, "APOP", "digest", Rule::Token)
            }
            Command::Auth(mech, initial) => {
                check(mech, "AUTH", "mechanism", Rule::Token)?;
                match initial {
                    Some(initial) => check(initial, "AUTH", "initial response", Rule::Token),
                    None => Ok(()),
                }
            }
            Command::SaslResponse(response) => {
                check(response, "AUTH", "SASL response", Rule::MaybeEmpty)
            }
            _ => Ok(()),
        }
    }
}

/// What an argument may hold besides "no CR, LF or NUL, at most MAX_ARG octets".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Not empty; spaces allowed (RFC 1939 section 7: a server may take the rest of the PASS
    /// line as the password, and user names with spaces exist).
    Word,
    /// Not empty, no SP or TAB: the argument is followed by another one on the same line.
    Token,
    /// May be empty (an empty SASL response).
    MaybeEmpty,
}

/// Validate one argument. The error names the command and the argument, never its value,
/// which may be a secret.
fn check(arg: &str, command: &str, name: &str, rule: Rule) -> Result<(), ParseError> {
    let invalid = |why: &str| Err(ParseError::Invalid(format!("{command}: the {name} {why}")));
    if arg.len() > MAX_ARG {
        return Err(ParseError::TooLong(format!(
            "{command}: the {name} is longer than {MAX_ARG} octets"
        )));
    }
    if arg.is_empty() && rule != Rule::MaybeEmpty {
        return invalid("is empty");
    }
    // A CR or LF would end the command early and let the rest run as a second command; NUL
    // truncates the line in C servers.
    if let Some(&b) = arg
        .as_bytes()
        .iter()
        .find(|&&b| matches!(b, b'\r' | b'\n' | 0))
    {
        let what = match b {
            b'\r' => "contains a CR",
            b'\n' => "contains an LF",
            _ => "contains a NUL",
        };
        return invalid(what);
    }
    if rule == Rule::Token && arg.bytes().any(|b| b == b' ' || b == b'\t') {
        return invalid("contains a space");
    }
    Ok(())
}

/// The longest shown argument in a trace, in characters.
const MAX_TRACE_ARG: usize = 100;

/// `arg` for a log line: sanitised like all text shown on a terminal, at most
/// MAX_TRACE_ARG characters.
fn printable(arg: &str) -> String {
    crate::proto::sanitize::sanitize_capped(arg.as_bytes(), MAX_TRACE_ARG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(v: u32) -> MessageNumber {
        MessageNumber::new(v).unwrap()
    }

    fn wire(c: Command<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        c.encode(&mut out).expect("a valid command");
        out
    }

    #[test]
    fn rfc1939_commands_on_the_wire() {
        // The client lines of RFC 1939 sections 4-7 and section 10's example session.
        assert_eq!(wire(Command::User("mrose")), b"USER mrose\r\n");
        assert_eq!(wire(Command::Pass("secret")), b"PASS secret\r\n");
        assert_eq!(
            wire(Command::Apop("mrose", "c4c9334bac560ecc979e58001b3e22fb")),
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
        );
        assert_eq!(wire(Command::Stat), b"STAT\r\n");
        assert_eq!(wire(Command::List(None)), b"LIST\r\n");
        assert_eq!(wire(Command::List(Some(n(2)))), b"LIST 2\r\n");
        assert_eq!(wire(Command::Retr(n(1))), b"RETR 1\r\n");
        assert_eq!(wire(Command::Dele(n(1))), b"DELE 1\r\n");
        assert_eq!(wire(Command::Noop), b"NOOP\r\n");
        assert_eq!(wire(Command::Rset), b"RSET\r\n");
        assert_eq!(wire(Command::Quit), b"QUIT\r\n");
        assert_eq!(wire(Command::Top(n(1), 10)), b"TOP 1 10\r\n");
        assert_eq!(wire(Command::Uidl(None)), b"UIDL\r\n");
        assert_eq!(wire(Command::Uidl(Some(n(2)))), b"UIDL 2\r\n");
        assert_eq!(wire(Command::Retr(n(u32::MAX))), b"RETR 4294967295\r\n");
    }

    #[test]
    fn extension_commands_on_the_wire() {
        // RFC 2449 section 5, RFC 2595 section 4, RFC 5034 section 4.
        assert_eq!(wire(Command::Capa), b"CAPA\r\n");
        assert_eq!(wire(Command::Stls), b"STLS\r\n");
        assert_eq!(wire(Command::Auth("PLAIN", None)), b"AUTH PLAIN\r\n");
        assert_eq!(
            wire(Command::Auth("PLAIN", Some("dGVzdAB0ZXN0AHRlc3Q="))),
            b"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n"
        );
        assert_eq!(
            wire(Command::Auth("EXTERNAL", Some("="))),
            b"AUTH EXTERNAL =\r\n"
        );
        assert_eq!(wire(Command::SaslResponse("dGVzdA==")), b"dGVzdA==\r\n");
        assert_eq!(wire(Command::SaslResponse("*")), b"*\r\n");
        assert_eq!(wire(Command::SaslResponse("")), b"\r\n");
    }

    #[test]
    fn password_with_spaces_is_sent_whole() {
        assert_eq!(
            wire(Command::Pass("correct horse")),
            b"PASS correct horse\r\n"
        );
    }

    #[test]
    fn injection_is_refused_and_nothing_is_written() {
        let bad = [
            Command::User("alice\r\nDELE 1"),
            Command::User("alice\n"),
            Command::User("ali\0ce"),
            Command::User(""),
            Command::Pass("pw\rDELE 1"),
            Command::Pass(""),
            Command::Apop("mrose", ""),
            Command::Apop("", "digest"),
            Command::Apop("m rose", "digest"),
            Command::Apop("mrose", "dig est"),
            Command::Auth("", None),
            Command::Auth("PLA IN", None),
            Command::Auth("PLAIN", Some("")),
            Command::Auth("PLAIN", Some("a\r\nb")),
            Command::Auth("PLAIN\n", None),
            Command::SaslResponse("a\r\nQUIT"),
            Command::SaslResponse("\0"),
        ];
        for c in bad {
            let mut out = b"kept".to_vec();
            let err = c.encode(&mut out).expect_err(&c.trace());
            assert!(matches!(err, ParseError::Invalid(_)), "{err:?}");
            assert_eq!(out, b"kept", "{}", c.trace());
            // The error names the command.
            assert!(err.to_string().starts_with(c.keyword()), "{err}");
        }
    }

    #[test]
    fn errors_never_show_the_secret() {
        let mut out = Vec::new();
        let err = Command::Pass("hunter2\r\n").encode(&mut out).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(err.to_string().contains("password"));
        let err = Command::Apop("mrose", "s3cr3t digest")
            .encode(&mut out)
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
        assert!(out.is_empty());
    }

    #[test]
    fn over_long_arguments_are_refused() {
        let long = "x".repeat(MAX_ARG + 1);
        let longest = "x".repeat(MAX_ARG);
        let mut out = Vec::new();
        for c in [
            Command::User(&long),
            Command::Pass(&long),
            Command::Apop(&long, "d"),
            Command::Auth("PLAIN", Some(&long)),
            Command::SaslResponse(&long),
        ] {
            assert!(matches!(c.encode(&mut out), Err(ParseError::TooLong(_))));
        }
        assert!(out.is_empty());
        assert!(Command::SaslResponse(&longest).encode(&mut out).is_ok());
        assert_eq!(out.len(), MAX_ARG + 2);
    }

    #[test]
    fn trace_hides_secrets() {
        assert_eq!(Command::Pass("hunter2").trace(), "PASS ***");
        assert_eq!(
            Command::Apop("mrose", "c4c9334bac560ecc979e58001b3e22fb").trace(),
            "APOP mrose ***"
        );
        assert_eq!(
            Command::Auth("PLAIN", Some("dGVzdAB0ZXN0AHRlc3Q=")).trace(),
            "AUTH PLAIN ***"
        );
        assert_eq!(Command::Auth("XOAUTH2", None).trace(), "AUTH XOAUTH2");
        assert_eq!(Command::SaslResponse("dGVzdA==").trace(), "***");
        assert_eq!(Command::User("mrose").trace(), "USER mrose");
        assert_eq!(Command::Retr(n(3)).trace(), "RETR 3");
        assert_eq!(Command::Top(n(3), 0).trace(), "TOP 3 0");
        assert_eq!(Command::List(None).trace(), "LIST");
        assert_eq!(Command::Quit.trace(), "QUIT");
    }

    #[test]
    fn trace_escapes_and_shortens_shown_arguments() {
        assert_eq!(Command::User("a\r\nb").trace(), "USER a\\x0d\\x0ab");
        assert_eq!(
            Command::Auth("X\u{202e}Y", None).trace(),
            "AUTH X\\u{202e}Y"
        );
        let long = "u".repeat(500);
        let t = Command::User(&long).trace();
        assert_eq!(t.chars().count(), "USER ".len() + MAX_TRACE_ARG + 1);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn keywords() {
        assert_eq!(Command::Retr(n(1)).keyword(), "RETR");
        assert_eq!(Command::Top(n(1), 1).keyword(), "TOP");
        assert_eq!(Command::Stls.keyword(), "STLS");
        assert_eq!(Command::Apop("a", "b").keyword(), "APOP");
        assert_eq!(Command::SaslResponse("x").keyword(), "AUTH");
        assert_eq!(Command::Uidl(None).keyword(), "UIDL");
    }

    proptest! {
        #[test]
        fn encoded_commands_are_one_line(user in ".*", pass in ".*") {
            for c in [Command::User(&user), Command::Pass(&pass), Command::Apop(&user, &pass),
                      Command::Auth(&user, Some(&pass)), Command::SaslResponse(&pass)] {
                let mut out = Vec::new();
                match c.encode(&mut out) {
                    Ok(()) => {
                        // Exactly one CRLF, at the end, and no NUL: one command on the wire.
                        prop_assert!(out.ends_with(b"\r\n"));
                        let body = &out[..out.len() - 2];
                        prop_assert!(!body.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)));
                    }
                    Err(_) => prop_assert!(out.is_empty()),
                }
                let trace = c.trace();
                prop_assert!(!trace.contains('\r') && !trace.contains('\n'));
            }
        }
    }
}
