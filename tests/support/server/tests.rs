//! Self-tests: talk to the server with a raw socket (and a rustls client), so they run
//! without the `pop3` binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::auth::{base64_decode, cram_md5_digest};
use super::wire::top;
use super::*;
use crate::support::certs::TestCerts;

/// A minimal client: reads one byte at a time so that nothing is buffered past a line
/// (which matters around STLS).
struct Client<S: Read + Write> {
    stream: S,
}

impl Client<TcpStream> {
    fn connect(server: &TestServer) -> Client<TcpStream> {
        let stream = TcpStream::connect(server.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Client { stream }
    }

    fn into_tls(
        self,
        ca: &Identity,
        name: &str,
    ) -> Client<StreamOwned<ClientConnection, TcpStream>> {
        let conn = ClientConnection::new(
            client_config(ca),
            ServerName::try_from(name.to_string()).unwrap(),
        )
        .unwrap();
        Client {
            stream: StreamOwned::new(conn, self.stream),
        }
    }
}

impl<S: Read + Write> Client<S> {
    /// One line including its CRLF; empty at end of stream.
    fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            match self.stream.read(&mut byte) {
                Ok(0) | Err(_) => break,
                Ok(_) => line.push(byte[0]),
            }
        }
        line
    }

    fn text(&mut self) -> String {
        String::from_utf8(self.line()).unwrap()
    }

    fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).unwrap();
        self.stream.flush().unwrap();
    }

    /// Send one command and return the status line.
    fn cmd(&mut self, command: &str) -> String {
        self.send(&format!("{command}\r\n"));
        self.text()
    }

    /// The raw wire bytes of a multi-line body up to and including "." CRLF.
    fn body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "end of stream inside a body");
            body.extend_from_slice(&line);
            if line == b".\r\n" {
                return body;
            }
        }
    }

    fn login(&mut self) {
        assert!(self.text().starts_with("+OK"));
        self.login_after_greeting();
    }

    fn login_after_greeting(&mut self) {
        assert!(self.cmd(&format!("USER {USER}")).starts_with("+OK"));
        assert!(self.cmd(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    }
}

fn client_config(ca: &Identity) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn plain_server() -> TestServer {
    TestServer::builder().messages(sample_messages()).start()
}

#[test]
fn dot_stuff_adds_dots_crlf_and_terminator() {
    assert_eq!(dot_stuff(b""), b".\r\n");
    assert_eq!(dot_stuff(b"a\nb"), b"a\r\nb\r\n.\r\n");
    assert_eq!(dot_stuff(b".\r\n..x\r\n"), b"..\r\n...x\r\n.\r\n");
    assert_eq!(dot_stuff(b"x\r\n.y"), b"x\r\n..y\r\n.\r\n");
    assert_eq!(to_crlf(b"a\r\nb\nc\r"), b"a\r\nb\r\nc\r");
}

#[test]
fn base64_round_trips() {
    for input in [&b""[..], b"a", b"ab", b"abc", b"\0alice\0secret"] {
        assert_eq!(base64_decode(&base64_encode(input)).unwrap(), input);
    }
    assert_eq!(base64_encode(b"\0alice\0secret"), "AGFsaWNlAHNlY3JldA==");
}

#[test]
fn top_sends_header_and_n_lines() {
    assert_eq!(
        top(b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 2),
        b"A: b\r\n\r\n1\r\n2\r\n"
    );
    assert_eq!(top(b"A: b\r\n\r\n1\r\n", 0), b"A: b\r\n\r\n");
}

#[test]
fn plain_session_lists_retrieves_and_deletes_at_quit() {
    let server = plain_server();
    let messages = sample_messages();
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd("STAT").starts_with("-ERR"), "STAT before login");
    let capa = c.cmd("CAPA");
    assert!(capa.starts_with("+OK"));
    let capa = String::from_utf8(c.body()).unwrap();
    assert!(
        capa.contains("UIDL\r\n") && !capa.contains("STLS"),
        "{capa}"
    );
    assert!(c.cmd("USER alice").starts_with("+OK"));
    assert!(c.cmd("PASS wrong").starts_with("-ERR [AUTH]"));
    assert!(c.cmd("USER alice").starts_with("+OK"));
    assert!(c.cmd(&format!("PASS {PASSWORD}")).starts_with("+OK"));

    let total: usize = messages.iter().map(Message::size).sum();
    assert_eq!(c.cmd("STAT"), format!("+OK 3 {total}\r\n"));
    assert!(c.cmd("LIST").starts_with("+OK"));
    let list = String::from_utf8(c.body()).unwrap();
    assert_eq!(
        list,
        format!(
            "1 {}\r\n2 {}\r\n3 {}\r\n.\r\n",
            messages[0].size(),
            messages[1].size(),
            messages[2].size()
        )
    );
    assert_eq!(c.cmd("UIDL 2"), format!("+OK 2 {}\r\n", messages[1].uidl));
    assert!(c.cmd("UIDL").starts_with("+OK"));
    let uidl = String::from_utf8(c.body()).unwrap();
    assert!(uidl.starts_with(&format!("1 {}\r\n", messages[0].uidl)));

    for (i, m) in messages.iter().enumerate() {
        let status = c.cmd(&format!("RETR {}", i + 1));
        assert_eq!(status, format!("+OK {} octets\r\n", m.size()));
        assert_eq!(c.body(), dot_stuff(&m.body), "message {}", i + 1);
    }
    assert!(c.cmd("TOP 1 0").starts_with("+OK"));
    assert!(
        c.body()
            .ends_with(b"Message-ID: <plain@example.org>\r\n\r\n.\r\n")
    );

    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert!(c.cmd("DELE 1").starts_with("-ERR"), "deleted twice");
    assert!(
        c.cmd("RETR 1").starts_with("-ERR"),
        "RETR of a deleted message"
    );
    assert!(c.cmd("RSET").starts_with("+OK"));
    assert!(c.cmd("RETR 1").starts_with("+OK"), "RSET unmarks");
    c.body();
    assert!(c.cmd("DELE 2").starts_with("+OK"));
    assert!(c.cmd("NOOP").starts_with("+OK"));
    assert!(c.cmd("BOGUS").starts_with("-ERR"));
    // Still there until QUIT.
    assert_eq!(lock(&server.shared.mailbox).len(), 3);
    assert!(c.cmd("QUIT").starts_with("+OK"));
    assert_eq!(c.line(), b"", "closed after QUIT");
    assert_eq!(
        server.uidls(),
        [messages[0].uidl.clone(), messages[2].uidl.clone()]
    );

    // A second connection sees the deletion and a new message.
    server.add_message("new-one", &extra_message("new"));
    let mut c = Client::connect(&server);
    c.login();
    assert_eq!(c.cmd("UIDL 3"), "+OK 3 new-one\r\n");
    assert!(c.cmd("QUIT").starts_with("+OK"));

    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].verbs()[..3], ["STAT", "CAPA", "USER"]);
    assert!(sessions[0].credentials_in_clear(PASSWORD));
    assert!(contains(
        &sessions[0].plain,
        format!("PASS {PASSWORD}\r\n").as_bytes()
    ));
    assert!(sessions[0].tls.is_empty());
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let server = plain_server();
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    c.send(&format!("USER alice\r\nPASS {PASSWORD}\r\nUIDL 1\r\nRETR 1\r\nRETR 2\r\nDELE 1\r\nDELE 2\r\nQUIT\r\n"));
    assert!(c.text().starts_with("+OK"));
    assert!(c.text().starts_with("+OK"));
    assert_eq!(c.text(), "+OK 1 uid-0001-plain\r\n");
    let messages = sample_messages();
    for m in &messages[..2] {
        assert!(c.text().starts_with("+OK"));
        assert_eq!(c.body(), dot_stuff(&m.body));
    }
    assert!(c.text().starts_with("+OK message 1"));
    assert!(c.text().starts_with("+OK message 2"));
    assert!(c.text().starts_with("+OK bye"));
    assert_eq!(server.uidls(), ["uid-0003-big"]);
}

#[test]
fn auth_plain_logs_in_with_and_without_initial_response() {
    let server = TestServer::builder()
        .capa(["UIDL", "SASL PLAIN"])
        .messages(sample_messages())
        .start();
    let response = base64_encode(format!("\0alice\0{PASSWORD}").as_bytes());
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd(&format!("AUTH PLAIN {response}")).starts_with("+OK"));
    assert!(c.cmd("STAT").starts_with("+OK 3 "));
    drop(c);
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert_eq!(c.cmd("AUTH PLAIN"), "+ \r\n");
    assert!(c.cmd(&base64_encode(b"\0alice\0wrong")).starts_with("-ERR"));
    assert!(c.cmd("AUTH PLAIN").starts_with("+ "));
    assert!(c.cmd("*").starts_with("-ERR"));
    assert!(c.cmd("AUTH SCRAM-SHA-256").starts_with("-ERR"));
}

#[test]
fn auth_login_cram_md5_and_xoauth2() {
    let server = TestServer::builder()
        .capa(["UIDL", "SASL PLAIN LOGIN CRAM-MD5 XOAUTH2"])
        .start();
    // LOGIN: user name and password in answer to two challenges.
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert_eq!(
        c.cmd("AUTH LOGIN"),
        format!("+ {}\r\n", base64_encode(b"Username:"))
    );
    assert_eq!(
        c.cmd(&base64_encode(b"alice")),
        format!("+ {}\r\n", base64_encode(b"Password:"))
    );
    assert!(
        c.cmd(&base64_encode(PASSWORD.as_bytes()))
            .starts_with("+OK")
    );
    // CRAM-MD5: RFC 2195's example digest with its own challenge and secret.
    assert_eq!(
        cram_md5_digest(
            "tanstaaftanstaaf",
            "<1896.697170952@postoffice.reston.mci.net>"
        ),
        "b913a602c7eda7a495b4e6e7334d3890"
    );
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    let challenge = c.cmd("AUTH CRAM-MD5");
    assert_eq!(
        challenge,
        format!("+ {}\r\n", base64_encode(CRAM_CHALLENGE.as_bytes()))
    );
    let digest = cram_md5_digest(PASSWORD, CRAM_CHALLENGE);
    assert!(
        c.cmd(&base64_encode(format!("alice {digest}").as_bytes()))
            .starts_with("+OK")
    );
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd("AUTH CRAM-MD5").starts_with("+ "));
    assert!(
        c.cmd(&base64_encode(b"alice 00"))
            .starts_with("-ERR [AUTH]")
    );
    // XOAUTH2 inline, two-step, and refused with the JSON challenge.
    let good = base64_encode(format!("user=alice\x01auth=Bearer {OAUTH_TOKEN}\x01\x01").as_bytes());
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd(&format!("AUTH XOAUTH2 {good}")).starts_with("+OK"));
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert_eq!(c.cmd("AUTH XOAUTH2"), "+ \r\n");
    assert!(c.cmd(&good).starts_with("+OK"));
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    let bad = base64_encode(b"user=alice\x01auth=Bearer nope\x01\x01");
    assert_eq!(
        c.cmd(&format!("AUTH XOAUTH2 {bad}")),
        format!("+ {}\r\n", base64_encode(OAUTH_ERROR_JSON.as_bytes()))
    );
    assert!(c.cmd("").starts_with("-ERR [AUTH]"));
    // (The clients above are still connected: do not wait for idle.)
    let commands = server.commands_now();
    assert!(commands.iter().any(|c| c.line.is_empty()), "{commands:?}");
}

#[test]
fn reply_endless_close_after_and_auth_script_faults() {
    let server = TestServer::builder()
        .fault(Fault::reply(
            "GREETING",
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
        ))
        .fault(Fault::reply("STAT", b"+OK -1 -1\r\n"))
        .fault(Fault::auth_script([
            "+ Zm9v\r\n",
            "-ERR [SYS/TEMP] later\r\n",
        ]))
        .fault(Fault::close_after("NOOP"))
        .start();
    let mut c = Client::connect(&server);
    assert_eq!(c.text(), "HTTP/1.1 400 Bad Request\r\n");
    assert_eq!(c.text(), "\r\n");
    assert_eq!(c.cmd("AUTH PLAIN x"), "+ Zm9v\r\n");
    assert_eq!(c.cmd("whatever"), "-ERR [SYS/TEMP] later\r\n");
    c.login_after_greeting();
    assert_eq!(c.cmd("STAT"), "+OK -1 -1\r\n");
    assert!(c.cmd("NOOP").starts_with("+OK"));
    assert_eq!(c.line(), b"", "closed after NOOP");
    assert_eq!(server.commands()[1].line, "whatever");

    // A flood of bytes without a line end, and a drip.
    server.set_faults(vec![Fault::flood("GREETING", b"+OK ", b"A")]);
    let mut c = Client::connect(&server);
    let mut buf = vec![0u8; 1 << 20];
    c.stream.read_exact(&mut buf).unwrap();
    assert!(buf.starts_with(b"+OK AAAA") && !buf.contains(&b'\n'));
    drop(c);
    server.set_faults(vec![Fault::drip(
        "GREETING",
        b"",
        b"+OK",
        Duration::from_millis(50),
    )]);
    let mut c = Client::connect(&server);
    let start = Instant::now();
    let mut buf = [0u8; 4];
    c.stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+OK+");
    assert!(start.elapsed() >= Duration::from_millis(150));
    drop(c);
    server.set_faults(vec![Fault::close_after("GREETING")]);
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert_eq!(c.line(), b"");
}

#[test]
fn deletions_are_lost_when_the_connection_drops_before_quit() {
    let server = TestServer::builder()
        .messages(sample_messages())
        .fault(Fault::drop_before_reply("QUIT"))
        .start();
    let mut c = Client::connect(&server);
    c.login();
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert_eq!(c.cmd("QUIT"), "", "dropped instead of +OK");
    assert_eq!(server.uidls().len(), 3);

    // A client that just disappears deletes nothing either.
    server.clear_faults();
    let mut c = Client::connect(&server);
    c.login();
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    drop(c);
    assert_eq!(server.uidls().len(), 3);
}

#[test]
fn drop_in_retr_sends_a_truncated_body_then_eof() {
    let server = TestServer::builder()
        .messages(sample_messages())
        .fault(Fault::DropInRetr { msg: 2, after: 40 })
        .fault(Fault::RetrErr(3))
        .start();
    let messages = sample_messages();
    let mut c = Client::connect(&server);
    c.login();
    assert!(c.cmd("RETR 3").starts_with("-ERR"));
    assert!(c.cmd("RETR 1").starts_with("+OK"));
    assert_eq!(c.body(), dot_stuff(&messages[0].body));
    assert!(c.cmd("RETR 2").starts_with("+OK"));
    let mut rest = Vec::new();
    c.stream.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, dot_stuff(&messages[1].body)[..40]);
}

#[test]
fn stall_delays_the_reply() {
    let server = TestServer::builder()
        .fault(Fault::stall("NOOP", Duration::from_millis(300)))
        .start();
    let mut c = Client::connect(&server);
    c.login();
    let start = Instant::now();
    assert!(c.cmd("NOOP").starts_with("+OK"));
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn implicit_tls_session_is_recorded_as_tls() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .start();
    for name in ["127.0.0.1", "localhost"] {
        let mut c = Client::connect(&server).into_tls(&certs.ca, name);
        c.login();
        assert!(c.cmd("RETR 2").starts_with("+OK"));
        assert_eq!(c.body(), dot_stuff(&sample_messages()[1].body));
        assert!(c.cmd("QUIT").starts_with("+OK"));
    }
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        assert!(s.plain.is_empty());
        assert!(contains(&s.tls, format!("PASS {PASSWORD}\r\n").as_bytes()));
        assert!(s.sent_credentials() && !s.credentials_in_clear(PASSWORD));
    }
}

#[test]
fn wrong_name_and_self_signed_certificates_fail_verification() {
    let certs = TestCerts::new();
    for identity in [&certs.wrong_name, &certs.self_signed] {
        let server = TestServer::builder().implicit_tls(identity).start();
        let mut c = Client::connect(&server).into_tls(&certs.ca, "127.0.0.1");
        let mut buf = [0u8; 16];
        let err = c.stream.read(&mut buf).expect_err("handshake must fail");
        assert!(err.to_string().contains("certificate"), "{err}");
    }
    assert!(certs.leaf.sha256_pin().starts_with("sha256:"));
    assert_eq!(certs.leaf.sha256_pin().len(), "sha256:".len() + 32 * 3 - 1);
    assert_eq!(certs.leaf.sha256_hex().len(), 64);
    assert!(certs.ca_file().exists() && certs.dir().join("leaf.key").exists());
}

#[test]
fn stls_upgrades_and_records_what_crossed_in_clear() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .starttls(&certs.leaf)
        .messages(sample_messages())
        .start();
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd("CAPA").starts_with("+OK"));
    assert!(String::from_utf8(c.body()).unwrap().contains("STLS\r\n"));
    assert!(c.cmd("STLS").starts_with("+OK"));
    let mut c = c.into_tls(&certs.ca, "localhost");
    assert!(c.cmd("CAPA").starts_with("+OK"));
    assert!(!String::from_utf8(c.body()).unwrap().contains("STLS"));
    assert!(c.cmd("STLS").starts_with("-ERR"), "no second STLS");
    assert!(c.cmd("USER alice").starts_with("+OK"));
    assert!(c.cmd(&format!("PASS {PASSWORD}")).starts_with("+OK"));
    assert!(c.cmd("QUIT").starts_with("+OK"));

    let sessions = server.sessions();
    let s = &sessions[0];
    assert_eq!(s.plain, b"CAPA\r\nSTLS\r\n");
    assert!(contains(
        &s.tls,
        format!("USER alice\r\nPASS {PASSWORD}\r\n").as_bytes()
    ));
    let clear: Vec<_> = s
        .commands
        .iter()
        .filter(|c| !c.tls)
        .map(Command::verb)
        .collect();
    assert_eq!(clear, ["CAPA", "STLS"]);
    assert!(!s.credentials_in_clear(PASSWORD));
}

#[test]
fn stls_faults_refuse_omit_and_inject() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .starttls(&certs.leaf)
        .fault(Fault::OmitStls)
        .start();
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd("CAPA").starts_with("+OK"));
    assert!(!String::from_utf8(c.body()).unwrap().contains("STLS"));
    assert!(c.cmd("STLS").starts_with("-ERR"));

    server.set_faults(vec![Fault::RefuseStls]);
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd("CAPA").starts_with("+OK"));
    assert!(String::from_utf8(c.body()).unwrap().contains("STLS"));
    assert!(c.cmd("STLS").starts_with("-ERR"));

    server.set_faults(vec![Fault::ExtraAfterStls(b"+OK injected\r\n".to_vec())]);
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd("STLS").starts_with("+OK Begin"));
    assert_eq!(c.text(), "+OK injected\r\n");
}

#[test]
fn server_is_bounded_by_connection_count_and_time() {
    let server = TestServer::builder().max_connections(1).start();
    let mut c = Client::connect(&server);
    assert!(c.text().starts_with("+OK"));
    assert!(c.cmd("QUIT").starts_with("+OK"));
    assert!(server.wait_idle(Duration::from_secs(5)));
    // The listener is gone: a second connection is refused or gets no greeting.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match TcpStream::connect(server.addr()) {
            Err(_) => break,
            Ok(s) => {
                let mut c = Client { stream: s };
                c.stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                assert!(c.line().is_empty(), "served past max_connections");
            }
        }
        assert!(Instant::now() < deadline, "listener still open");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.connection_count(), 1);

    let server = TestServer::builder()
        .time_limit(Duration::from_millis(100))
        .start();
    std::thread::sleep(Duration::from_millis(300));
    assert!(TcpStream::connect(server.addr()).is_err());
}
