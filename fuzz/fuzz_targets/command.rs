//! `Command::encode` with arbitrary arguments: an encoded command is exactly one line (one
//! CRLF, at the end; no other CR, LF or NUL), it starts with its keyword, and a refused
//! command leaves the buffer untouched. `trace` is one line too and never shows a password,
//! an APOP digest, a SASL initial response or a SASL response.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pop3::proto::MessageNumber;
use pop3::proto::command::{Command, MAX_ARG};

#[derive(Debug, Arbitrary)]
enum Shape {
    Capa,
    Stls,
    User(String),
    Pass(String),
    Apop(String, String),
    Auth(String, Option<String>),
    SaslResponse(String),
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    Top(u32, u32),
    Dele(u32),
    Noop,
    Rset,
    Quit,
}

#[derive(Debug, Arbitrary)]
struct Input {
    prefix: Vec<u8>,
    shapes: Vec<Shape>,
}

/// The documented rule: sanitised as all text for a terminal (`ui::sanitize`), at most 100
/// characters then "…".
fn shown(arg: &str) -> String {
    pop3::proto::sanitize::sanitize_capped(arg.as_bytes(), 100)
}

fn n(v: u32) -> MessageNumber {
    MessageNumber::new(v.max(1)).unwrap()
}

fuzz_target!(|input: Input| {
    for shape in &input.shapes {
        let cmd = match shape {
            Shape::Capa => Command::Capa,
            Shape::Stls => Command::Stls,
            Shape::User(a) => Command::User(a),
            Shape::Pass(a) => Command::Pass(a),
            Shape::Apop(a, b) => Command::Apop(a, b),
            Shape::Auth(a, b) => Command::Auth(a, b.as_deref()),
            Shape::SaslResponse(a) => Command::SaslResponse(a),
            Shape::Stat => Command::Stat,
            Shape::List(v) => Command::List(v.map(n)),
            Shape::Uidl(v) => Command::Uidl(v.map(n)),
            Shape::Retr(v) => Command::Retr(n(*v)),
            Shape::Top(v, l) => Command::Top(n(*v), *l),
            Shape::Dele(v) => Command::Dele(n(*v)),
            Shape::Noop => Command::Noop,
            Shape::Rset => Command::Rset,
            Shape::Quit => Command::Quit,
        };
        let mut out = input.prefix.clone();
        let result = cmd.encode(&mut out);
        // The documented rule, from the other side: an argument without CR, LF or NUL, not
        // empty (except a SASL response), at most MAX_ARG octets and, where another argument
        // follows or it is a token, without SP or TAB, is accepted.
        let fine = |a: &str, token: bool, may_be_empty: bool| {
            (may_be_empty || !a.is_empty())
                && a.len() <= MAX_ARG
                && !a.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
                && !(token && a.bytes().any(|b| b == b' ' || b == b'\t'))
        };
        let valid = match cmd {
            Command::User(a) | Command::Pass(a) => fine(a, false, false),
            Command::Apop(a, b) => fine(a, true, false) && fine(b, true, false),
            Command::Auth(a, b) => fine(a, true, false) && b.is_none_or(|b| fine(b, true, false)),
            Command::SaslResponse(a) => fine(a, false, true),
            _ => true,
        };
        assert_eq!(result.is_ok(), valid, "{cmd:?} -> {result:?}");
        assert!(
            out.starts_with(&input.prefix),
            "encode changed what was in the buffer"
        );
        let line = &out[input.prefix.len()..];
        match result {
            Err(_) => assert!(line.is_empty(), "a refused command wrote {line:?}"),
            Ok(()) => {
                assert!(line.ends_with(b"\r\n"), "{line:?}");
                let body = &line[..line.len() - 2];
                assert!(
                    !body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
                    "CR, LF or NUL inside the line: {line:?}"
                );
                if !matches!(cmd, Command::SaslResponse(_)) {
                    assert!(body.starts_with(cmd.keyword().as_bytes()));
                }
                // Arguments that must be a single token keep the word count fixed.
                let words = body.split(|&b| b == b' ').count();
                match cmd {
                    Command::Apop(..) => assert_eq!(words, 3, "{line:?}"),
                    Command::Auth(_, None) => assert_eq!(words, 2, "{line:?}"),
                    Command::Auth(_, Some(_)) => assert_eq!(words, 3, "{line:?}"),
                    Command::Top(..) => assert_eq!(words, 3),
                    _ => {}
                }
            }
        }
        let trace = cmd.trace();
        assert!(!trace.chars().any(char::is_control), "{trace:?}");
        // The exact log forms: secrets are `***`, shown names are escaped by the one
        // sanitiser for terminal text, capped at 100 characters.
        match cmd {
            Command::Pass(_) => assert_eq!(trace, "PASS ***"),
            Command::SaslResponse(_) => assert_eq!(trace, "***"),
            Command::Apop(name, _) => assert_eq!(trace, format!("APOP {} ***", shown(name))),
            Command::Auth(mech, Some(_)) => {
                assert_eq!(trace, format!("AUTH {} ***", shown(mech)))
            }
            Command::Auth(mech, None) => assert_eq!(trace, format!("AUTH {}", shown(mech))),
            Command::User(user) => assert_eq!(trace, format!("USER {}", shown(user))),
            _ => assert!(trace.starts_with(cmd.keyword())),
        }
    }
});
