//! The LMTP/SMTP client against a scripted peer on a Unix socket: the hostile cases
//! (multi-line and over-long replies, non-numeric codes, a drop mid-DATA) and the reply
//! rules, and STARTTLS against a TLS peer on 127.0.0.1. The real servers (Dovecot LMTP,
//! OpenSMTPD) are in tests/delivery.rs.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

use super::*;
use crate::proto::{Octets, Uid};

/// What the peer does when a command (or the message) arrives.
type Script = fn(&str) -> Option<&'static [u8]>;

/// A peer that greets, then answers each command line by `script` (`None`: close). After
/// `DATA` and a 354 it reads the message up to `.` and answers it with `script(".")`.
/// Returns the socket path and everything the client sent.
fn peer(dir: &tempfile::TempDir, script: Script) -> (PathBuf, Arc<Mutex<Vec<u8>>>) {
    let path = dir.path().join("lmtp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        if w.write_all(b"220 peer ready\r\n").is_err() {
            return;
        }
        let mut in_data = false;
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return;
            }
            log.lock().unwrap().extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            if in_data {
                if text != "." {
                    continue;
                }
                in_data = false;
            }
            let key = if text == "." { "." } else { text.as_str() };
            let Some(answer) = script(key) else { return };
            if w.write_all(answer).is_err() {
                return;
            }
            if text == "DATA" && answer.starts_with(b"354") {
                in_data = true;
            }
        }
    });
    (path, seen)
}

fn relay(path: PathBuf, recipients: &[&str]) -> Relay {
    Relay {
        endpoint: Endpoint::Unix(path),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        starttls: false,
        tls_ca_file: None,
        timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(5),
        auth: None,
    }
}

fn deliver(sink: &mut Smtp, message: &[u8]) -> Result<()> {
    let uid = Uid::new(b"u1").unwrap();
    let mut p = sink.begin(&Envelope {
        account: "a",
        uid: &uid,
        size: Octets(message.len() as u64),
    })?;
    p.write_all(message).unwrap();
    p.commit()
}

fn sent(seen: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&seen.lock().unwrap()).into_owned()
}

/// A well-behaved LMTP server for two recipients.
fn lmtp_ok(cmd: &str) -> Option<&'static [u8]> {
    Some(match cmd {
        c if c.starts_with("LHLO") => {
            b"250-peer\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
        }
        "DATA" => b"354 go ahead\r\n",
        "." => b"250 2.0.0 <alice> saved\r\n250 2.0.0 <bob> saved\r\n",
        "QUIT" => b"221 bye\r\n",
        _ => b"250 ok\r\n",
    })
}

#[test]
fn lmtp_delivers_dot_stuffed_crlf_with_8bitmime_to_every_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let (path, seen) = peer(&dir, lmtp_ok);
    let mut sink = Smtp::new(Protocol::Lmtp, relay(path, &["alice", "bob"]));
    let msg = "Return-Path: <carol@example.org>\nSubject: caf\u{e9}\n\n.leading dot\n..two\nend";
    deliver(&mut sink, msg.as_bytes()).unwrap();
    let wire = sent(&seen);
    assert!(
        wire.contains(
            "MAIL FROM:<carol@example.org> BODY=8BITMIME\r\nRCPT TO:<alice>\r\nRCPT TO:<bob>\r\n"
        ),
        "MAIL and RCPTs pipelined: {wire}"
    );
    assert!(
        wire.ends_with("\r\n\r\n..leading dot\r\n...two\r\nend\r\n.\r\nQUIT\r\n"),
        "{wire:?}"
    );
    assert!(!wire.contains("\n\n"), "bare LF on the wire: {wire:?}");
}

#[test]
fn a_refused_recipient_means_no_data_at_all() {
    fn script(cmd: &str) -> Option<&'static [u8]> {
        match cmd {
            "RCPT TO:<nobody>" => Some(b"550 5.1.1 <nobody> User doesn't exist\r\n"),
            other => lmtp_ok(other),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, seen) = peer(&dir, script);
    let mut sink = Smtp::new(Protocol::Lmtp, relay(path, &["alice", "nobody"]));
    let err = deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap_err();
    assert!(err.is_per_message());
    assert_eq!(err.kind(), ErrorKind::Io, "5xx is a refusal: {err}");
    assert!(err.message().contains("550 5.1.1"), "{err}");
    assert!(err.message().contains("delivered to nobody"), "{err}");
    let wire = sent(&seen);
    assert!(!wire.contains("DATA"), "{wire}");
    assert!(wire.contains("RSET"), "{wire}");
}

#[test]
fn lmtp_partial_acceptance_is_not_delivered_and_says_who_got_it() {
    fn script(cmd: &str) -> Option<&'static [u8]> {
        match cmd {
            "." => Some(b"250 2.0.0 <alice> saved\r\n452 4.2.2 <bob> Quota exceeded\r\n"),
            other => lmtp_ok(other),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = peer(&dir, script);
    let mut sink = Smtp::new(Protocol::Lmtp, relay(path, &["alice", "bob"]));
    let err = deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap_err();
    assert!(err.is_per_message());
    assert_eq!(err.kind(), ErrorKind::Temporary, "{err}");
    let m = err.message();
    assert!(m.contains("452 4.2.2"), "{m}");
    assert!(m.contains("accept the message for alice"), "{m}");
}

#[test]
fn hostile_replies_are_protocol_errors_for_the_session() {
    fn long(cmd: &str) -> Option<&'static [u8]> {
        static LONG: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut v = b"250 ".to_vec();
            v.extend(std::iter::repeat_n(b'x', 10_000));
            v.extend_from_slice(b"\r\n");
            v
        });
        if cmd.starts_with("LHLO") {
            Some(LONG.as_slice())
        } else {
            lmtp_ok(cmd)
        }
    }
    fn non_numeric(cmd: &str) -> Option<&'static [u8]> {
        if cmd.starts_with("MAIL") {
            Some(b"2x0 ok\r\n")
        } else {
            lmtp_ok(cmd)
        }
    }
    fn endless(cmd: &str) -> Option<&'static [u8]> {
        static MANY: std::sync::LazyLock<Vec<u8>> =
            std::sync::LazyLock::new(|| b"250-ext\r\n".repeat(500));
        if cmd.starts_with("LHLO") {
            Some(MANY.as_slice())
        } else {
            lmtp_ok(cmd)
        }
    }
    fn mixed(cmd: &str) -> Option<&'static [u8]> {
        if cmd.starts_with("LHLO") {
            Some(b"250-peer\r\n550 surprise\r\n")
        } else {
            lmtp_ok(cmd)
        }
    }
    for (script, want) in [
        (long as Script, "longer than"),
        (non_numeric, "three-digit code"),
        (endless, "more than 100 lines"),
        (mixed, "changed the code"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = peer(&dir, script);
        let mut sink = Smtp::new(Protocol::Lmtp, relay(path, &["alice"]));
        let err = deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{want}: {err}");
        assert!(!err.is_per_message(), "{want}");
        assert!(err.message().contains(want), "{want}: {err}");
    }
}

#[test]
fn a_drop_mid_data_is_not_delivered_and_fails_the_session() {
    fn script(cmd: &str) -> Option<&'static [u8]> {
        match cmd {
            // The message arrives, then the server goes away without a reply.
            "." => None,
            other => lmtp_ok(other),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = peer(&dir, script);
    let mut sink = Smtp::new(Protocol::Lmtp, relay(path, &["alice"]));
    let err = deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Temporary, "{err}");
    assert!(!err.is_per_message());
    assert!(err.message().contains("closed the connection"), "{err}");
}

#[test]
fn smtp_one_reply_after_data_and_a_4xx_is_temporary_for_this_message() {
    fn script(cmd: &str) -> Option<&'static [u8]> {
        Some(match cmd {
            c if c.starts_with("EHLO") => b"250-mta\r\n250 SMTPUTF8\r\n",
            "DATA" => b"354 go\r\n",
            "." => b"451 4.3.0 try later\r\n",
            "QUIT" => b"221 bye\r\n",
            _ => b"250 ok\r\n",
        })
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, seen) = peer(&dir, script);
    let mut sink = Smtp::new(Protocol::Smtp, relay(path, &["alice", "bob"]));
    let err = deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap_err();
    assert!(err.is_per_message());
    assert_eq!(err.kind(), ErrorKind::Temporary);
    let wire = sent(&seen);
    // No PIPELINING offered: MAIL, then each RCPT on its own; no return path: <>.
    assert!(wire.contains("MAIL FROM:<>\r\n"), "{wire}");
    assert!(!wire.contains("BODY=8BITMIME"), "{wire}");
}

#[test]
fn the_keepalive_tick_runs_while_the_server_takes_its_time() {
    fn script(cmd: &str) -> Option<&'static [u8]> {
        if cmd == "." {
            thread::sleep(Duration::from_millis(400));
        }
        lmtp_ok(cmd).map(|a| {
            if cmd == "." {
                b"250 2.0.0 saved\r\n".as_slice()
            } else {
                a
            }
        })
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = peer(&dir, script);
    let mut sink = Smtp::new(Protocol::Lmtp, relay(path, &["alice"]));
    let uid = Uid::new(b"u1").unwrap();
    let mut p = sink
        .begin(&Envelope {
            account: "a",
            uid: &uid,
            size: Octets(10),
        })
        .unwrap();
    p.write_all(b"Subject: x\n\nbody\n").unwrap();
    let mut ticks = 0;
    p.commit_ticking(Duration::from_millis(50), &mut || ticks += 1)
        .unwrap();
    assert!(ticks >= 4, "{ticks} ticks in 400 ms at 50 ms");
}

#[test]
fn reply_lines_parse() {
    assert_eq!(parse_reply_line(b"250 ok"), Ok((250, true, &b"ok"[..])));
    assert_eq!(parse_reply_line(b"250-ext"), Ok((250, false, &b"ext"[..])));
    assert_eq!(parse_reply_line(b"354"), Ok((354, true, &b""[..])));
    for bad in [&b"25"[..], b"abc ok", b"650 no", b"250x", b"-250 ok"] {
        assert!(parse_reply_line(bad).is_err(), "{bad:?}");
    }
    assert_eq!(envelope_sender("bob@example.org"), "bob@example.org");
    assert_eq!(envelope_sender(NO_SENDER), "");
    assert_eq!(helo_name("my host"), "localhost");
}

/// What the TLS peer saw: the lines before STARTTLS and the lines inside TLS.
#[derive(Default)]
struct TlsSeen {
    plain: Vec<u8>,
    tls: Vec<u8>,
}

/// Answer SMTP commands on `r` (a well-behaved MTA) until QUIT or the end; `AUTH ...` gets
/// `auth`. Returns true when the client sent STARTTLS (answered with 220, nothing read
/// beyond it).
fn converse<S: io::Read + io::Write>(
    r: &mut BufReader<S>,
    log: &mut Vec<u8>,
    ehlo: &'static [u8],
    auth: &'static [u8],
) -> bool {
    let mut in_data = false;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return false;
        }
        log.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        if in_data {
            if text != "." {
                continue;
            }
            in_data = false;
        }
        let answer: &[u8] = match text.as_str() {
            t if t.starts_with("EHLO") => ehlo,
            t if t.starts_with("AUTH") => auth,
            "STARTTLS" => {
                let _ = r.get_mut().write_all(b"220 2.0.0 ready to start TLS\r\n");
                return true;
            }
            "DATA" => {
                in_data = true;
                b"354 go ahead\r\n"
            }
            "." => b"250 2.0.0 queued\r\n",
            "QUIT" => {
                let _ = r.get_mut().write_all(b"221 bye\r\n");
                return false;
            }
            _ => b"250 ok\r\n",
        };
        if r.get_mut().write_all(answer).is_err() {
            return false;
        }
    }
}

/// An SMTP peer on 127.0.0.1 that offers STARTTLS (when `offer`) with a certificate for
/// `127.0.0.1` signed by a fresh CA, whose PEM it writes to `dir/ca.pem`. Returns the port,
/// that CA file, and what it saw before and inside TLS (complete once the thread ends).
fn tls_peer(
    dir: &tempfile::TempDir,
    offer: bool,
) -> (u16, PathBuf, Arc<Mutex<TlsSeen>>, thread::JoinHandle<()>) {
    let ehlo: &'static [u8] = if offer {
        b"250-peer\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    } else {
        b"250-peer\r\n250 8BITMIME\r\n"
    };
    tls_peer_with(
        dir,
        ehlo,
        b"250-peer\r\n250 8BITMIME\r\n",
        b"502 no AUTH\r\n",
    )
}

/// [`tls_peer`] answering EHLO with `plain_ehlo` before TLS and `tls_ehlo` inside, and AUTH
/// with `auth`.
fn tls_peer_with(
    dir: &tempfile::TempDir,
    plain_ehlo: &'static [u8],
    tls_ehlo: &'static [u8],
    auth: &'static [u8],
) -> (u16, PathBuf, Arc<Mutex<TlsSeen>>, thread::JoinHandle<()>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &Issuer::new(ca, ca_key))
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(TlsSeen::default()));
    let log = seen.clone();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut r = BufReader::new(tcp);
        if r.get_mut().write_all(b"220 peer ESMTP\r\n").is_err() {
            return;
        }
        let mut plain = Vec::new();
        let upgrade = converse(&mut r, &mut plain, plain_ehlo, auth);
        log.lock().unwrap().plain = plain;
        if !upgrade {
            return;
        }
        let conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let tls = rustls::StreamOwned::new(conn, r.into_inner());
        let mut inside = Vec::new();
        converse(&mut BufReader::new(tls), &mut inside, tls_ehlo, auth);
        log.lock().unwrap().tls = inside;
    });
    (port, ca_file, seen, handle)
}

fn tcp_relay(port: u16, ca_file: Option<PathBuf>) -> Relay {
    Relay {
        endpoint: Endpoint::Tcp {
            host: "127.0.0.1".to_owned(),
            port,
        },
        recipients: vec!["alice@example.org".to_owned()],
        starttls: true,
        tls_ca_file: ca_file,
        timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(5),
        auth: None,
    }
}

/// `deliver.starttls` with the peer's CA as `tls_ca_file`: EHLO and STARTTLS in plaintext,
/// then EHLO again, MAIL, RCPT and the message only inside TLS.
#[test]
fn starttls_with_a_trusted_certificate_sends_the_message_only_inside_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca, seen, peer) = tls_peer(&dir, true);
    let mut sink = Smtp::new(Protocol::Smtp, tcp_relay(port, Some(ca)));
    deliver(&mut sink, b"Subject: secret\n\nbody\n").unwrap();
    peer.join().unwrap();
    let seen = seen.lock().unwrap();
    let plain = String::from_utf8_lossy(&seen.plain);
    let tls = String::from_utf8_lossy(&seen.tls);
    assert!(
        plain.starts_with("EHLO ") && plain.ends_with("\r\nSTARTTLS\r\n"),
        "{plain:?}"
    );
    assert_eq!(plain.matches("\r\n").count(), 2, "{plain:?}");
    assert!(tls.starts_with("EHLO "), "{tls:?}");
    assert!(
        tls.contains("MAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
            || tls.contains("MAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"),
        "{tls:?}"
    );
    assert!(
        tls.contains("Subject: secret\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
        "{tls:?}"
    );
}

/// The certificate is verified as for POP3: with the public roots (no `tls_ca_file`) the
/// test CA is unknown, the handshake fails, and no MAIL is sent, inside TLS or out.
#[test]
fn starttls_with_an_untrusted_certificate_fails_before_mail() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _ca, seen, peer) = tls_peer(&dir, true);
    let mut sink = Smtp::new(Protocol::Smtp, tcp_relay(port, None));
    let err = deliver(&mut sink, b"Subject: secret\n\nbody\n").unwrap_err();
    assert!(!err.is_per_message(), "a session error: {err}");
    assert!(
        format!("{err:#}").contains("not signed by a trusted authority"),
        "{err:#}"
    );
    peer.join().unwrap();
    let seen = seen.lock().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&seen.plain),
        String::from_utf8_lossy(&seen.tls)
    );
    assert!(!all.contains("MAIL"), "{all:?}");
    assert!(!all.contains("secret"), "{all:?}");
}

/// A server that does not offer STARTTLS when `deliver.starttls` asks for it: an error
/// before MAIL FROM, never a silent plaintext delivery.
#[test]
fn starttls_not_offered_is_an_error_before_mail() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca, seen, peer) = tls_peer(&dir, false);
    let mut sink = Smtp::new(Protocol::Smtp, tcp_relay(port, Some(ca)));
    let err = deliver(&mut sink, b"Subject: secret\n\nbody\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("does not offer STARTTLS"), "{err}");
    peer.join().unwrap();
    let seen = seen.lock().unwrap();
    let plain = String::from_utf8_lossy(&seen.plain);
    assert!(plain.starts_with("EHLO "), "{plain:?}");
    assert!(
        !plain.contains("MAIL") && !plain.contains("STARTTLS"),
        "{plain:?}"
    );
    assert!(seen.tls.is_empty());
}

const AUTH_USER: &str = "relayuser";
const AUTH_PASS: &str = "s3cret-pw";

fn with_auth(mut relay: Relay, plaintext: bool) -> Smtp {
    relay.auth = Some(crate::config::RelayAuth {
        user: AUTH_USER.to_owned(),
        password: crate::config::PasswordSource::Literal(Secret::new(AUTH_PASS.to_owned())),
        plaintext,
    });
    Smtp::new(Protocol::Smtp, relay).with_password(Secret::new(AUTH_PASS.to_owned()))
}

/// `deliver.auth_user` with STARTTLS: AUTH PLAIN (preferred over LOGIN) goes out only inside
/// TLS, after the second EHLO, with `base64(NUL user NUL password)` as initial response;
/// the plaintext EHLO offering AUTH does not tempt the client.
#[test]
fn auth_plain_is_sent_only_inside_tls_with_the_right_base64() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca, seen, peer) = tls_peer_with(
        &dir,
        b"250-peer\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n",
        b"250-peer\r\n250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n",
        b"235 2.7.0 Authentication successful\r\n",
    );
    let mut sink = with_auth(tcp_relay(port, Some(ca)), false);
    deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap();
    peer.join().unwrap();
    let seen = seen.lock().unwrap();
    let plain = String::from_utf8_lossy(&seen.plain);
    let tls = String::from_utf8_lossy(&seen.tls);
    assert!(!plain.contains("AUTH"), "{plain:?}");
    // printf '\0relayuser\0s3cret-pw' | base64
    let want = "AUTH PLAIN AHJlbGF5dXNlcgBzM2NyZXQtcHc=\r\nMAIL FROM:<>";
    assert!(tls.starts_with("EHLO ") && tls.contains(want), "{tls:?}");
    assert_eq!(tls.matches("AUTH").count(), 1, "{tls:?}");
}

/// Without TLS (and without `deliver.auth_plaintext`) the client refuses to authenticate:
/// no AUTH on the wire, no MAIL, a configuration error naming the server.
#[test]
fn auth_is_refused_without_tls() {
    fn script(cmd: &str) -> Option<&'static [u8]> {
        Some(match cmd {
            c if c.starts_with("EHLO") => b"250-peer\r\n250 AUTH PLAIN LOGIN\r\n",
            "QUIT" => b"221 bye\r\n",
            _ => b"250 ok\r\n",
        })
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, seen) = peer(&dir, script);
    let mut sink = with_auth(relay(path, &["alice"]), false);
    let err = deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.is_per_message(), "{err}");
    assert!(
        err.message().contains("without TLS") && err.message().contains("SMTP server unix:"),
        "{err}"
    );
    let wire = sent(&seen);
    assert!(!wire.contains("AUTH") && !wire.contains("MAIL"), "{wire}");
}

/// `deliver.auth_plaintext = true` and a server offering only LOGIN: user name, then
/// password, each base64 in answer to a 334 challenge, then the message.
#[test]
fn auth_login_when_plain_is_not_offered_and_plaintext_is_allowed() {
    fn script(cmd: &str) -> Option<&'static [u8]> {
        Some(match cmd {
            c if c.starts_with("EHLO") => b"250-peer\r\n250 AUTH=LOGIN\r\n",
            "AUTH LOGIN" => b"334 VXNlcm5hbWU6\r\n",
            "cmVsYXl1c2Vy" => b"334 UGFzc3dvcmQ6\r\n",
            "czNjcmV0LXB3" => b"235 2.7.0 ok\r\n",
            "DATA" => b"354 go\r\n",
            "QUIT" => b"221 bye\r\n",
            _ => b"250 ok\r\n",
        })
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, seen) = peer(&dir, script);
    let mut sink = with_auth(relay(path, &["alice"]), true);
    deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap();
    let wire = sent(&seen);
    assert!(
        wire.contains("\r\nAUTH LOGIN\r\ncmVsYXl1c2Vy\r\nczNjcmV0LXB3\r\nMAIL FROM:<>\r\n"),
        "{wire}"
    );
}

/// 535: a delivery failure (74) of the session, not of one message, naming the server and
/// the user, never the password; no MAIL is sent.
#[test]
fn auth_535_is_a_session_error_naming_the_server_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca, seen, peer) = tls_peer_with(
        &dir,
        b"250-peer\r\n250 STARTTLS\r\n",
        b"250-peer\r\n250 AUTH PLAIN\r\n",
        b"535 5.7.8 Authentication credentials invalid\r\n",
    );
    let mut sink = with_auth(tcp_relay(port, Some(ca)), false);
    let err = deliver(&mut sink, b"Subject: x\n\nbody\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(!err.is_per_message(), "{err}");
    let shown = format!("{err:#}");
    assert!(
        shown.contains(&format!("SMTP server 127.0.0.1:{port}")),
        "{shown}"
    );
    assert!(
        shown.contains("535 5.7.8") && shown.contains(AUTH_USER),
        "{shown}"
    );
    assert!(
        !shown.contains(AUTH_PASS) && !shown.contains("czNjcmV0"),
        "{shown}"
    );
    peer.join().unwrap();
    let tls = String::from_utf8_lossy(&seen.lock().unwrap().tls).into_owned();
    assert!(
        tls.contains("AUTH PLAIN ") && !tls.contains("MAIL"),
        "{tls:?}"
    );
}
