//! Hostile and broken servers, end to end: the real `pop3` binary against the scripted
//! server with faults that a real server produces only on a bad day (or under an attacker's
//! control). Every test asserts the exit code (DESIGN.md's table), key words of the message
//! on stderr, that the run ends within a few seconds (invariant 6: every read has a timeout,
//! every line a bound), and that no secret went out in clear or shows up in the output
//! (invariant 5, and "passwords never appear in errors").
//!
//! 1. Response codes at login (RFC 2449 section 8, RFC 3206) on PASS and on AUTH, and the
//!    LOGIN-DELAY / EXPIRE capabilities.
//! 2. SASL: named and automatic mechanism choice, garbage challenges, XOAUTH2 in both forms.
//! 3. Protocol abuse: endless or dripping lines, garbage greetings, escape sequences, bad
//!    STAT/LIST/UIDL answers, hostile UIDLs, lying sizes, endless bodies, early close.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::certs::TestCerts;
use crate::support::env::{TestEnv, text};
use crate::support::server::{
    Fault, Message, OAUTH_TOKEN, PASSWORD, ServerBuilder, TestServer, base64_encode, contains,
    extra_message, sample_messages,
};

/// The account's `timeout`; every hostile run must end soon after it.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What a run that fails fast may take (process start, TLS handshake, a debug build).
const QUICK: Duration = Duration::from_secs(4);

/// What a run that has to wait for [`TIMEOUT`] may take.
const TIMEOUT_AND_SLACK: Duration = Duration::from_millis(2000 + 2500);

/// The `password` key with the server's password.
fn literal_password() -> String {
    format!("password = \"{PASSWORD}\"\n")
}

/// A `password.command` that prints `token` (how the tests hand over OAuth tokens).
fn token_command(token: &str) -> String {
    format!("password.command = [\"printf\", \"%s\", \"{token}\"]\n")
}

/// One test's world: an implicit-TLS scripted server, its certificates, and an environment
/// whose account `test` trusts the test CA and uses a 2 s timeout.
struct World {
    server: TestServer,
    env: TestEnv,
    _certs: TestCerts,
}

impl World {
    /// A server built by `build` (from an implicit-TLS builder with the sample mailbox
    /// removed: add what the test needs), and `password` plus `extra` in the account.
    fn new(
        build: impl FnOnce(ServerBuilder) -> ServerBuilder,
        password: &str,
        extra: &str,
    ) -> World {
        let certs = TestCerts::new();
        let server = build(TestServer::builder().implicit_tls(&certs.leaf)).start();
        let env = TestEnv::new();
        env.write_config(&format!(
            "[accounts.test]\n\
             host = \"127.0.0.1\"\n\
             port = {port}\n\
             user = \"alice\"\n\
             tls = \"implicit\"\n\
             tls_ca_file = '{ca}'\n\
             timeout = \"{timeout}s\"\n\
             deliver.maildir = '{maildir}'\n\
             {password}{extra}",
            port = server.port(),
            ca = certs.ca_file().display(),
            timeout = TIMEOUT.as_secs(),
            maildir = env.maildir.display(),
        ));
        World {
            server,
            env,
            _certs: certs,
        }
    }

    /// The sample mailbox, the literal password, and these faults.
    fn with_faults(faults: impl IntoIterator<Item = Fault>) -> World {
        World::new(
            |mut b| {
                b = b.messages(sample_messages());
                for f in faults {
                    b = b.fault(f);
                }
                b
            },
            &literal_password(),
            "",
        )
    }

    /// Run `pop3 ARGS` (killed after 20 s) and measure it.
    fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = self
            .env
            .cmd()
            .args(args)
            .timeout(Duration::from_secs(20))
            .output()
            .expect("run pop3");
        let run = Run {
            args: args.join(" "),
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
            elapsed: started.elapsed(),
        };
        eprintln!(
            "pop3 {}: exit {:?} after {:?}\n  stderr: {}",
            run.args,
            run.code,
            run.elapsed,
            run.err()
        );
        run
    }

    fn fetch(&self) -> Run {
        self.run(&["fetch"])
    }

    /// Nothing secret crossed the wire outside TLS (the servers here are all implicit TLS,
    /// so this checks that nothing was sent before the handshake either).
    fn assert_nothing_in_clear(&self) {
        assert!(!self.server.credentials_in_clear(), "credentials in clear");
        assert!(!contains(&self.server.plain_bytes(), PASSWORD.as_bytes()));
    }

    /// Nothing in new/ or tmp/.
    fn assert_nothing_delivered(&self) {
        assert!(
            self.env.new_files().is_empty() && self.env.tmp_files().is_empty(),
            "delivered: {:?} {:?}",
            self.env.new_files(),
            self.env.tmp_files()
        );
    }
}

/// The outcome of one run.
struct Run {
    args: String,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
}

impl Run {
    fn err(&self) -> String {
        text(&self.stderr)
    }

    fn out(&self) -> String {
        text(&self.stdout)
    }

    /// Exit `code` within `within`, every word of `words` in stderr (ignoring case), a
    /// `pop3: ` error line, nothing on stdout, and no secret anywhere in the output.
    fn expect(&self, code: i32, words: &[&str], within: Duration) -> &Run {
        let stderr = self.err();
        assert_eq!(self.code, Some(code), "pop3 {}: {stderr}", self.args);
        assert!(
            self.elapsed < within,
            "pop3 {} took {:?}",
            self.args,
            self.elapsed
        );
        assert!(stderr.starts_with("pop3: "), "no error line: {stderr:?}");
        let lower = stderr.to_lowercase();
        for word in words {
            assert!(
                lower.contains(&word.to_lowercase()),
                "{word:?} missing from the message: {stderr}"
            );
        }
        assert!(self.stdout.is_empty(), "stdout: {}", self.out());
        self.assert_no_secret(PASSWORD);
        self
    }

    /// Exit 0 within [`QUICK`] and no secret in the output.
    fn expect_ok(&self) -> &Run {
        assert_eq!(self.code, Some(0), "pop3 {}: {}", self.args, self.err());
        assert!(
            self.elapsed < QUICK,
            "pop3 {} took {:?}",
            self.args,
            self.elapsed
        );
        self.assert_no_secret(PASSWORD);
        self
    }

    fn assert_no_secret(&self, secret: &str) {
        for (name, bytes) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "the secret appears on {name}: {}",
                text(bytes)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Response codes at login
// ---------------------------------------------------------------------------------------

/// The `-ERR` lines a login can get, with the exit code and the words the message must
/// have: what happened (the server's text) and what to do.
const LOGIN_REFUSALS: [(&str, i32, &[&str]); 6] = [
    (
        "-ERR [IN-USE] mailbox locked by another session",
        75,
        &[
            "in use",
            "try again later",
            "mailbox locked by another session",
        ],
    ),
    (
        "-ERR [LOGIN-DELAY] minimum time between logins is 15 minutes",
        75,
        &["how often", "try again later", "15 minutes"],
    ),
    (
        "-ERR [SYS/TEMP] disk quota check failed",
        75,
        &["temporary", "try again later", "disk quota check failed"],
    ),
    (
        "-ERR [SYS/PERM] account disabled",
        69,
        &["permanent", "administrator", "account disabled"],
    ),
    (
        "-ERR [AUTH] invalid credentials",
        77,
        &["check the user name and password", "invalid credentials"],
    ),
    (
        "-ERR no such user or bad password",
        77,
        &["refused", "no such user or bad password"],
    ),
];

#[test]
fn resp_codes_on_pass_map_to_exit_codes_with_advice() {
    for (line, code, words) in LOGIN_REFUSALS {
        let w = World::with_faults([Fault::reply("PASS", format!("{line}\r\n"))]);
        // -vv: the protocol trace must hide the password too.
        w.run(&["-vv", "fetch"]).expect(code, words, QUICK);
        let verbs = w.server.verbs();
        assert!(verbs.contains(&"PASS".to_string()), "{line}: {verbs:?}");
        assert!(
            !verbs.iter().any(|v| v == "UIDL" || v == "RETR"),
            "{line}: went on after a refused login: {verbs:?}"
        );
        w.assert_nothing_in_clear();
        w.assert_nothing_delivered();
    }
}

#[test]
fn resp_codes_on_auth_map_to_exit_codes_with_advice() {
    for (line, code, words) in LOGIN_REFUSALS {
        let w = World::new(
            |b| {
                b.capa(["UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN"])
                    .messages(sample_messages())
                    .fault(Fault::reply("AUTH", format!("{line}\r\n")))
            },
            &literal_password(),
            "",
        );
        let run = w.run(&["-vv", "fetch"]);
        run.expect(code, words, QUICK);
        run.assert_no_secret(&plain_b64());
        let commands = w.server.commands();
        assert!(
            commands.iter().any(|c| c.line.starts_with("AUTH PLAIN")),
            "{line}: {commands:?}"
        );
        assert!(
            !commands.iter().any(|c| c.verb() == "PASS"),
            "fell back to USER/PASS after AUTH failed: {commands:?}"
        );
        w.assert_nothing_in_clear();
        w.assert_nothing_delivered();
    }
}

#[test]
fn probe_shows_login_delay_and_expire_and_warns_about_expire_0() {
    let w = World::new(
        |b| {
            b.capa(["UIDL", "USER", "RESP-CODES", "LOGIN-DELAY 900", "EXPIRE 0"])
                .messages(sample_messages())
        },
        &literal_password(),
        "",
    );
    let run = w.run(&["probe", "test"]);
    run.expect_ok();
    let out = run.out();
    assert!(out.contains("LOGIN-DELAY 900"), "{out}");
    assert!(out.contains("EXPIRE 0"), "{out}");
    assert!(
        out.to_lowercase().contains("warning") && out.contains("EXPIRE 0"),
        "no warning about EXPIRE 0 with keep: {out}"
    );
    w.assert_nothing_in_clear();
    w.assert_nothing_delivered();
}

#[test]
fn keep_meeting_expire_0_warns_on_fetch_and_still_fetches() {
    let w = World::new(
        |b| {
            b.capa(["UIDL", "USER", "RESP-CODES", "LOGIN-DELAY 900", "EXPIRE 0"])
                .messages(sample_messages())
        },
        &literal_password(),
        "keep = true\n",
    );
    let run = w.fetch();
    run.expect_ok();
    let stderr = run.err();
    assert!(
        stderr.contains("warn") && stderr.contains("EXPIRE 0") && stderr.contains("keep"),
        "{stderr}"
    );
    assert_eq!(w.env.new_files().len(), 3);
    assert!(!w.server.verbs().contains(&"DELE".to_string()));

    // EXPIRE NEVER is no reason to warn.
    let w = World::new(
        |b| {
            b.capa(["UIDL", "USER", "EXPIRE NEVER"])
                .messages(sample_messages())
        },
        &literal_password(),
        "",
    );
    let run = w.fetch();
    run.expect_ok();
    assert_eq!(run.err(), "");
}

// ---------------------------------------------------------------------------------------
// 2. SASL
// ---------------------------------------------------------------------------------------

/// A server offering `sasl` (plus UIDL and USER) with the sample mailbox.
fn sasl_world(capa: &[&str], password: &str, extra: &str) -> World {
    let capa: Vec<String> = capa.iter().map(|s| s.to_string()).collect();
    World::new(
        move |b| b.capa(capa).messages(sample_messages()),
        password,
        extra,
    )
}

/// The AUTH PLAIN initial response with the server's password, base64 (as secret as the
/// password itself).
fn plain_b64() -> String {
    base64_encode(format!("\0alice\0{PASSWORD}").as_bytes())
}

#[test]
fn auth_plain_logs_in_inside_tls() {
    let w = sasl_world(
        &["UIDL", "USER", "SASL PLAIN"],
        &literal_password(),
        "auth = \"plain\"\n",
    );
    let run = w.run(&["-vv", "fetch"]);
    run.expect_ok();
    run.assert_no_secret(&plain_b64());
    assert!(run.err().contains("AUTH PLAIN ***"), "{}", run.err());
    assert_eq!(w.env.new_files().len(), 3);
    let commands = w.server.commands();
    let auth: Vec<_> = commands.iter().filter(|c| c.verb() == "AUTH").collect();
    assert_eq!(auth.len(), 1, "{commands:?}");
    assert!(auth[0].line.starts_with("AUTH PLAIN ") && auth[0].tls);
    assert!(!commands.iter().any(|c| c.verb() == "PASS"));
    w.assert_nothing_in_clear();
}

#[test]
fn named_mechanism_the_server_lacks_fails_with_77_listing_what_it_offers() {
    let w = sasl_world(
        &["UIDL", "USER", "SASL LOGIN CRAM-MD5"],
        &literal_password(),
        "auth = \"plain\"\n",
    );
    w.fetch()
        .expect(77, &["plain", "offers", "LOGIN", "CRAM-MD5", "USER"], QUICK);
    assert!(!w.server.sent_credentials(), "{:?}", w.server.commands());
    w.assert_nothing_delivered();
}

#[test]
fn auto_picks_the_strongest_mechanism_offered() {
    let w = sasl_world(
        &["UIDL", "USER", "SASL PLAIN LOGIN CRAM-MD5"],
        &literal_password(),
        "auth = \"auto\"\n",
    );
    w.fetch().expect_ok();
    assert_eq!(w.env.new_files().len(), 3);
    let sessions = w.server.sessions();
    let commands: Vec<_> = sessions.iter().flat_map(|s| s.commands.clone()).collect();
    let logins: Vec<&str> = commands
        .iter()
        .filter(|c| matches!(c.verb().as_str(), "AUTH" | "USER" | "PASS"))
        .map(|c| c.line.as_str())
        .collect();
    assert_eq!(logins, ["AUTH CRAM-MD5"], "{commands:?}");
    // CRAM-MD5 never sends the password, not even inside TLS.
    for s in &sessions {
        assert!(!contains(&s.tls, PASSWORD.as_bytes()));
    }
    w.assert_nothing_in_clear();

    // Without CRAM-MD5, PLAIN beats LOGIN and USER.
    let w = sasl_world(
        &["UIDL", "USER", "SASL LOGIN PLAIN"],
        &literal_password(),
        "",
    );
    w.fetch().expect_ok();
    let verbs: Vec<String> = w
        .server
        .commands()
        .iter()
        .filter(|c| matches!(c.verb().as_str(), "AUTH" | "USER" | "PASS"))
        .map(|c| c.line.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(verbs, ["AUTH PLAIN"]);
}

#[test]
fn a_challenge_that_is_not_base64_is_a_clean_protocol_error() {
    let w = World::new(
        |b| {
            b.capa(["UIDL", "USER", "SASL CRAM-MD5"])
                .messages(sample_messages())
                .fault(Fault::auth_script([
                    "+ !!!this is *not* base64!!!\r\n",
                    "-ERR [AUTH] exchange cancelled\r\n",
                ]))
        },
        &literal_password(),
        "",
    );
    w.fetch().expect(76, &["CRAM-MD5", "not base64"], QUICK);
    // The client cancelled with "*" (RFC 5034 section 4) instead of answering.
    let lines: Vec<String> = w.server.commands().iter().map(|c| c.line.clone()).collect();
    let auth = lines
        .iter()
        .position(|l| l == "AUTH CRAM-MD5")
        .expect("AUTH sent");
    assert_eq!(
        lines.get(auth + 1).map(String::as_str),
        Some("*"),
        "{lines:?}"
    );
    w.assert_nothing_in_clear();
    w.assert_nothing_delivered();
}

#[test]
fn garbage_during_sasl_ends_cleanly_without_hanging() {
    // (script, expected exit code, words)
    let cases: [(Fault, i32, &[&str]); 4] = [
        // A status line that is neither +OK, -ERR nor a challenge.
        (
            Fault::auth_script(["HTTP/1.1 502 Bad Gateway\r\n"]),
            76,
            &["neither a status nor a challenge", "HTTP/1.1 502"],
        ),
        // A valid base64 challenge that PLAIN (which sent everything at once) cannot take.
        (
            Fault::auth_script(["+ Zm9vYmFy\r\n", "-ERR [AUTH] cancelled\r\n"]),
            77,
            &["PLAIN", "unexpected challenge", "foobar"],
        ),
        // Challenges without end.
        (
            Fault::AuthScript(vec![b"+ \r\n".to_vec(); 40]),
            77,
            &["PLAIN"],
        ),
        // A challenge line that never ends.
        (Fault::flood("AUTH", b"+ ", b"QUFB"), 76, &["longer than"]),
    ];
    for (fault, code, words) in cases {
        let w = World::new(
            |b| {
                b.capa(["UIDL", "USER", "SASL PLAIN"])
                    .messages(sample_messages())
                    .fault(fault.clone())
            },
            &literal_password(),
            "",
        );
        w.fetch().expect(code, words, QUICK);
        w.assert_nothing_in_clear();
        w.assert_nothing_delivered();
    }
}

/// The XOAUTH2 message for `token` as the server must receive it, base64.
fn xoauth2_b64(token: &str) -> String {
    base64_encode(format!("user=alice\x01auth=Bearer {token}\x01\x01").as_bytes())
}

/// An XOAUTH2 server accepting `accepted`, and an account whose token command prints
/// `token`.
fn xoauth2_world(accepted: &str, token: &str) -> World {
    let accepted = accepted.to_string();
    World::new(
        move |b| {
            b.capa(["UIDL", "USER", "SASL XOAUTH2"])
                .oauth_token(&accepted)
                .messages(sample_messages())
        },
        &token_command(token),
        "auth = \"xoauth2\"\n",
    )
}

#[test]
fn xoauth2_short_token_goes_inline_and_logs_in() {
    let w = xoauth2_world(OAUTH_TOKEN, OAUTH_TOKEN);
    let run = w.run(&["-vv", "fetch"]);
    run.expect_ok();
    run.assert_no_secret(OAUTH_TOKEN);
    run.assert_no_secret(&xoauth2_b64(OAUTH_TOKEN));
    assert_eq!(w.env.new_files().len(), 3);
    let commands = w.server.commands();
    let auth: Vec<_> = commands.iter().filter(|c| c.verb() == "AUTH").collect();
    assert_eq!(auth.len(), 1);
    assert_eq!(
        auth[0].line,
        format!("AUTH XOAUTH2 {}", xoauth2_b64(OAUTH_TOKEN))
    );
    assert!(auth[0].tls);
    assert!(!contains(&w.server.plain_bytes(), OAUTH_TOKEN.as_bytes()));
}

#[test]
fn xoauth2_refused_token_fails_with_77_and_the_json_status() {
    let token = "ya29.expired-token";
    let w = xoauth2_world(OAUTH_TOKEN, token);
    let run = w.run(&["-vv", "fetch"]);
    run.expect(77, &["XOAUTH2", "401", "https://mail.google.com/"], QUICK);
    run.assert_no_secret(token);
    run.assert_no_secret(&xoauth2_b64(token));
    // The client answered the JSON challenge with an empty line, then got -ERR.
    let lines: Vec<String> = w.server.commands().iter().map(|c| c.line.clone()).collect();
    let auth = lines
        .iter()
        .position(|l| l.starts_with("AUTH XOAUTH2"))
        .unwrap();
    assert_eq!(
        lines.get(auth + 1).map(String::as_str),
        Some(""),
        "{lines:?}"
    );
    w.assert_nothing_delivered();
    assert!(!contains(&w.server.plain_bytes(), token.as_bytes()));
}

/// A token too long for one 255-octet command line.
fn long_token(tag: &str) -> String {
    let mut token = format!("ya29.{tag}-");
    while token.len() < 300 {
        token.push_str("AbCdEf0123456789_-");
    }
    token
}

#[test]
fn xoauth2_long_token_goes_in_the_two_step_form() {
    let token = long_token("good");
    let w = xoauth2_world(&token, &token);
    let run = w.run(&["-vv", "fetch"]);
    run.expect_ok();
    run.assert_no_secret(&token);
    run.assert_no_secret(&xoauth2_b64(&token));
    assert_eq!(w.env.new_files().len(), 3);
    let lines: Vec<String> = w.server.commands().iter().map(|c| c.line.clone()).collect();
    let auth = lines.iter().position(|l| l.starts_with("AUTH")).unwrap();
    assert_eq!(lines[auth], "AUTH XOAUTH2", "{lines:?}");
    assert_eq!(lines[auth + 1], xoauth2_b64(&token));
    assert!(
        lines.iter().all(|l| l.len() <= 510),
        "no line over the limit"
    );
}

#[test]
fn xoauth2_long_refused_token_in_two_steps_reports_the_json_status() {
    let token = long_token("revoked");
    let w = xoauth2_world(OAUTH_TOKEN, &token);
    let run = w.run(&["-vv", "fetch"]);
    run.expect(77, &["401"], QUICK);
    run.assert_no_secret(&token);
    run.assert_no_secret(&xoauth2_b64(&token));
    let lines: Vec<String> = w.server.commands().iter().map(|c| c.line.clone()).collect();
    let auth = lines.iter().position(|l| l.starts_with("AUTH")).unwrap();
    assert_eq!(lines[auth], "AUTH XOAUTH2");
    assert_eq!(lines[auth + 1], xoauth2_b64(&token));
    assert_eq!(
        lines[auth + 2],
        "",
        "the JSON challenge is answered with an empty line"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Hostile behaviour
// ---------------------------------------------------------------------------------------

#[test]
fn a_greeting_that_drips_forever_times_out_with_75() {
    let w = World::with_faults([Fault::drip(
        "GREETING",
        b"+OK ",
        b"slow ",
        Duration::from_millis(200),
    )]);
    w.fetch().expect(75, &["timed out"], TIMEOUT_AND_SLACK);
    assert!(!w.server.sent_credentials());
}

#[test]
fn a_status_line_that_drips_forever_after_login_times_out_with_75() {
    let w = World::with_faults([Fault::drip(
        "UIDL",
        b"+OK ",
        b"unique-id listing follows ",
        Duration::from_millis(200),
    )]);
    w.fetch().expect(75, &["timed out"], TIMEOUT_AND_SLACK);
    w.assert_nothing_in_clear();
    w.assert_nothing_delivered();
}

#[test]
fn an_endless_line_without_lf_fails_fast_with_76() {
    for verb in ["GREETING", "CAPA", "PASS"] {
        let w = World::with_faults([Fault::flood(verb, b"+OK ", b"AAAAAAAA\r")]);
        w.fetch().expect(76, &["longer than"], QUICK);
        w.assert_nothing_in_clear();
    }
    // Inside a listing, too.
    let w = World::with_faults([Fault::flood("UIDL", b"+OK\r\n1 ", b"A")]);
    w.fetch().expect(76, &["longer than"], QUICK);
    w.assert_nothing_delivered();
}

#[test]
fn garbage_greetings_fail_with_76_before_any_credentials() {
    let greetings: [&[u8]; 5] = [
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html></html>\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x00\x00\x00\x00\x00\x00\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xff\xfe\r\n",
        b"\r\n",
    ];
    for greeting in greetings {
        let w = World::with_faults([Fault::reply("GREETING", greeting)]);
        let run = w.fetch();
        run.expect(76, &["not a POP3 status line"], QUICK);
        assert!(!run.stderr.contains(&0), "a NUL byte reached the terminal");
        assert!(!w.server.sent_credentials(), "{:?}", w.server.commands());
    }
}

#[test]
fn escape_sequences_in_server_text_are_escaped_in_messages() {
    let hostile =
        b"-ERR [AUTH] \x1b[2J\x1b]0;owned\x07 bad\x9b31m \xe2\x80\xae desrever \xff password\r\n";
    let w = World::with_faults([Fault::reply("PASS", hostile)]);
    let run = w.fetch();
    run.expect(77, &["bad", "password", "\\x1b"], QUICK);
    for (what, bad) in [
        ("ESC", &b"\x1b"[..]),
        ("BEL", b"\x07"),
        ("CSI", "\u{9b}".as_bytes()),
        ("RLO", "\u{202e}".as_bytes()),
    ] {
        assert!(
            !contains(&run.stderr, bad),
            "raw {what} in stderr: {:?}",
            run.err()
        );
    }

    // The greeting `pop3 probe` prints, too.
    let w = World::with_faults([Fault::reply(
        "GREETING",
        b"+OK \x1b[31mred\x1b[0m \x1b]8;;http://evil/\x07link\r\n",
    )]);
    let run = w.run(&["probe", "test"]);
    run.expect_ok();
    assert!(run.out().contains("red"), "{}", run.out());
    assert!(
        !run.stdout.contains(&0x1b) && !run.stdout.contains(&0x07),
        "{:?}",
        run.out()
    );
}

#[test]
fn stat_with_a_huge_or_negative_count_or_size_fails_with_65() {
    // Only `probe` with an account sends STAT.
    for answer in [
        "+OK 99999999999 100\r\n",
        "+OK -1 100\r\n",
        "+OK 3 -100\r\n",
        "+OK 3 999999999999999999999999\r\n",
        "+OK 3 1e9\r\n",
    ] {
        let w = World::with_faults([Fault::reply("STAT", answer)]);
        w.run(&["probe", "test"])
            .expect_code_and_words(65, &["bad", "STAT"]);
        w.assert_nothing_in_clear();
    }
}

impl Run {
    /// Like [`Run::expect`], but stdout may hold what `probe` printed before the error.
    fn expect_code_and_words(&self, code: i32, words: &[&str]) {
        let stderr = self.err();
        assert_eq!(self.code, Some(code), "pop3 {}: {stderr}", self.args);
        assert!(self.elapsed < QUICK, "took {:?}", self.elapsed);
        for word in words {
            assert!(stderr.contains(word), "{word:?} missing: {stderr}");
        }
        self.assert_no_secret(PASSWORD);
    }
}

#[test]
fn list_or_uidl_with_huge_or_negative_numbers_fails_with_65() {
    let sizes: Vec<usize> = sample_messages().iter().map(Message::size).collect();
    let list = |line: &str| format!("+OK\r\n1 {}\r\n{line}\r\n3 {}\r\n.\r\n", sizes[0], sizes[2]);
    let uidl = |line: &str| format!("+OK\r\n1 a\r\n{line}\r\n3 c\r\n.\r\n");
    let cases = [
        ("LIST", list("2 -100"), "LIST"),
        ("LIST", list("2 999999999999999999999999"), "LIST"),
        ("LIST", list("2 0x100"), "LIST"),
        ("LIST", list("-2 100"), "LIST"),
        ("LIST", list("99999999999 100"), "LIST"),
        ("LIST", list("0 100"), "LIST"),
        ("UIDL", uidl("-2 b"), "UIDL"),
        ("UIDL", uidl("99999999999 b"), "UIDL"),
        ("UIDL", uidl("2"), "UIDL"),
    ];
    for (verb, answer, what) in cases {
        let w = World::with_faults([Fault::reply(verb, &answer)]);
        w.fetch().expect(65, &[&format!("bad {what} line")], QUICK);
        w.assert_nothing_in_clear();
        w.assert_nothing_delivered();
    }
}

#[test]
fn list_sizes_near_u64_max_do_not_crash() {
    // Sizes that parse but add up past u64::MAX: whatever the client decides, it must not
    // panic (exit 101) or report an internal error (70).
    let max = u64::MAX;
    let answer = format!("+OK\r\n1 {max}\r\n2 {max}\r\n3 {max}\r\n.\r\n");
    let mut failures = Vec::new();
    for command in ["fetch", "check"] {
        let w = World::with_faults([Fault::reply("LIST", &answer)]);
        let run = w.run(&[command]);
        if !matches!(run.code, Some(0 | 1 | 65)) || run.err().contains("panicked") {
            failures.push(format!(
                "pop3 {command}: exit {:?}: {}",
                run.code,
                run.err()
            ));
        }
        assert!(run.elapsed < QUICK);
        run.assert_no_secret(PASSWORD);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_same_uidl_for_two_messages_fails_with_65_and_delivers_nothing() {
    let w = World::new(
        |b| {
            b.message("dup-uid", &extra_message("one"))
                .message("dup-uid", &extra_message("two"))
                .message("unique", &extra_message("three"))
        },
        &literal_password(),
        "",
    );
    w.fetch().expect(65, &["same UIDL", "dup-uid"], QUICK);
    assert!(!w.server.verbs().contains(&"RETR".to_string()));
    w.assert_nothing_in_clear();
    w.assert_nothing_delivered();
}

/// UIDLs that would do harm if they reached a file name, a shell or a format string.
const HOSTILE_UIDS: [&str; 14] = [
    "../../../../../../../../tmp/pop3-hostile-escape",
    "a/b/c",
    "..",
    ".",
    "/etc/passwd",
    "'single'\"double\"",
    "$(touch${IFS}pwned)",
    "`touch${IFS}pwned2`",
    ";touch${IFS}pwned3;",
    "%s%n%x%2e%2e%2f%00",
    "100%",
    "~root",
    "-rf",
    "caf\u{e9}-\u{202e}txt",
];

#[test]
fn hostile_uidls_are_fetched_and_never_reach_the_file_system() {
    let w = World::new(
        |mut b| {
            for (i, uid) in HOSTILE_UIDS.iter().enumerate() {
                b = b.message(uid, &extra_message(&format!("hostile-{i}")));
            }
            b
        },
        &literal_password(),
        "",
    );
    w.fetch().expect_ok();
    assert_eq!(w.env.new_files().len(), HOSTILE_UIDS.len());
    assert!(w.env.tmp_files().is_empty());

    // The state remembers every one of them: a second run fetches nothing.
    let run = w.fetch();
    run.expect_ok();
    assert_eq!(run.err(), "");
    assert_eq!(w.env.new_files().len(), HOSTILE_UIDS.len());
    // And after they leave the server, a third run prunes them without trouble.
    w.server.add_message("later", &extra_message("later"));
    w.fetch().expect_ok();
    assert_eq!(w.env.new_files().len(), HOSTILE_UIDS.len() + 1);

    assert_tree_is_only_config_maildir_and_state(&w.env);
    assert!(!Path::new("/tmp/pop3-hostile-escape").exists());
}

/// Every path under the temp root is the config file, the Maildir (cur/new/tmp and files
/// directly in them) or a file directly in the state dir; nothing called `pwned*`.
fn assert_tree_is_only_config_maildir_and_state(env: &TestEnv) {
    let maildir = &env.maildir;
    let state = env.state_dir();
    let mut allowed_dirs: Vec<PathBuf> = vec![env.home.clone(), state.clone()];
    for dir in [&env.config_home, &env.state_home, maildir] {
        for ancestor in dir.ancestors().take_while(|a| a.starts_with(&env.home)) {
            allowed_dirs.push(ancestor.to_path_buf());
        }
    }
    allowed_dirs.push(env.config_path().parent().unwrap().to_path_buf());
    for sub in ["cur", "new", "tmp"] {
        allowed_dirs.push(maildir.join(sub));
    }
    let mut stack = vec![env.root().to_path_buf()];
    let mut seen = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.contains("pwned"), "a UIDL ran a command: {path:?}");
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                assert!(
                    allowed_dirs.contains(&path),
                    "unexpected directory {path:?}"
                );
                stack.push(path);
            } else {
                let parent = path.parent().unwrap();
                let ok = path == env.config_path()
                    || parent == state
                    || ["cur", "new", "tmp"]
                        .iter()
                        .any(|s| parent == maildir.join(s));
                assert!(ok, "unexpected file {path:?}");
                assert!(meta.is_file(), "not a regular file: {path:?}");
                seen.push(path);
            }
        }
    }
    assert!(
        seen.iter().any(|p| p.parent() == Some(state.as_path())),
        "no state file at all: {seen:?}"
    );
}

#[test]
fn a_list_size_that_lies_fails_with_65_and_delivers_nothing_of_that_message() {
    let honest = extra_message("honest");
    let mut huge = b"From: liar@example.org\r\nSubject: liar\r\n\r\n".to_vec();
    while huge.len() < 5 << 20 {
        huge.extend_from_slice(
            b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n",
        );
    }
    let honest_size = Message {
        uidl: String::new(),
        body: honest.clone(),
    }
    .size();
    let w = World::new(
        |b| {
            b.message("honest", &honest)
                .message("liar", &huge)
                .fault(Fault::reply(
                    "LIST",
                    format!("+OK\r\n1 {honest_size}\r\n2 100\r\n.\r\n"),
                ))
        },
        &literal_password(),
        "",
    );
    w.fetch().expect(65, &["LIST size", "RETR 2"], QUICK);
    let delivered = w.env.delivered();
    assert_eq!(delivered.len(), 1, "only the honest message");
    assert!(text(&delivered[0]).contains("Subject: honest"));
    assert!(w.env.tmp_files().is_empty(), "{:?}", w.env.tmp_files());
    w.assert_nothing_in_clear();

    // The liar stays new: the next run tries it again (and fails the same way).
    w.fetch().expect(65, &["LIST size"], QUICK);
    assert_eq!(w.env.new_files().len(), 1);
}

#[test]
fn a_body_that_never_ends_fails_with_65_in_bounded_time() {
    let w = World::with_faults([Fault::flood(
        "RETR",
        b"+OK message follows\r\n",
        b"an endless body line\r\n",
    )]);
    w.fetch().expect(65, &["LIST size"], QUICK);
    w.assert_nothing_delivered();
    w.assert_nothing_in_clear();
}

#[test]
fn a_body_that_stalls_fails_with_75_after_the_timeout() {
    let w = World::with_faults([Fault::StallInRetr {
        msg: 1,
        after: 20,
        delay: Duration::from_secs(10),
    }]);
    w.fetch().expect(75, &["timed out"], TIMEOUT_AND_SLACK);
    w.assert_nothing_delivered();
}

#[test]
fn a_server_that_closes_right_after_the_greeting_fails_with_75() {
    // Without TLS the client sees a clean end of stream.
    let server = TestServer::builder()
        .messages(sample_messages())
        .fault(Fault::close_after("GREETING"))
        .start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "none", None);
    toml.push_str("timeout = \"2s\"\n");
    env.write_config(&toml.replace("timeout = \"5s\"\n", ""));
    let started = Instant::now();
    let out = env.cmd().arg("fetch").output().unwrap();
    let run = Run {
        args: "fetch (tls = none)".into(),
        code: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
        elapsed: started.elapsed(),
    };
    run.expect(75, &["closed the connection"], QUICK);
    assert!(!server.sent_credentials());

    // With TLS the end comes without close_notify; still 75, still "closed".
    let w = World::with_faults([Fault::close_after("GREETING")]);
    w.fetch().expect(75, &["closed", "connection"], QUICK);
    assert!(!w.server.sent_credentials());

    // Right after the login is accepted, too.
    let w = World::with_faults([Fault::close_after("PASS")]);
    w.fetch().expect(75, &["closed", "connection"], QUICK);
    w.assert_nothing_in_clear();
    w.assert_nothing_delivered();
}

#[test]
fn a_listing_that_drips_forever_ends_in_bounded_time() {
    // One CAPA line every 400 ms: each line is within the 2 s timeout, the answer never ends.
    let w = World::with_faults([Fault::drip(
        "CAPA",
        b"+OK capability list follows\r\n",
        b"X-\r\n",
        Duration::from_millis(100),
    )]);
    let run = w.fetch();
    assert!(
        matches!(run.code, Some(75 | 76)),
        "exit {:?} after {:?}: {}",
        run.code,
        run.elapsed,
        run.err()
    );
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn garbage_during_sasl_gives_a_tidy_message() {
    let w = World::new(
        |b| {
            b.capa(["UIDL", "USER", "SASL PLAIN"])
                .messages(sample_messages())
                .fault(Fault::auth_script(["HTTP/1.1 502 Bad Gateway\r\n"]))
        },
        &literal_password(),
        "",
    );
    let run = w.fetch();
    run.expect(76, &["challenge during PLAIN"], QUICK);
    assert!(!run.err().contains("   "), "stray spaces: {:?}", run.err());
}
