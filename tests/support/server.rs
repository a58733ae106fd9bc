//! A scripted POP3 server for the end-to-end tests: std::net on `127.0.0.1:0`, one thread per
//! connection, optional implicit TLS or STLS through rustls.
//!
//! It is a small maildrop state machine (RFC 1939), not a fixed transcript: greeting, CAPA
//! (RFC 2449), STLS (RFC 2595), USER/PASS, AUTH PLAIN (RFC 5034), STAT, LIST, UIDL, RETR, TOP,
//! DELE, RSET, NOOP, QUIT. The mailbox is shared by all connections, so a second run of the
//! client sees the first run's deletions and anything added with [`TestServer::add_message`].
//! As in RFC 1939's UPDATE state, DELE only marks a message; the marks are applied when QUIT
//! is answered `+OK`, and lost when the connection ends any other way.
//!
//! Commands are read line by line from a buffered reader and answered in order, so pipelined
//! commands (RFC 2449 PIPELINING) work. Everything the client sends is recorded per
//! connection, split by whether it arrived before or after TLS, so tests can assert that no
//! secret crossed the wire in clear.
//!
//! Faults ([`Fault`]) make the failures a real server will not produce on demand: a drop in
//! the middle of a RETR body, a drop instead of a reply, STLS refused or missing, plaintext
//! injected after `STLS +OK`, `-ERR` on RETR, a stalled reply. They apply to every
//! connection until changed with [`TestServer::set_faults`].
//!
//! The server is bounded: it accepts at most `max_connections` connections and stops
//! accepting after `time_limit`; every read and write has a timeout; dropping the
//! [`TestServer`] stops the accept loop.
//!
//! The dot-stuffing here is its own small function rather than `pop3::proto::multiline::stuff`,
//! so that the server is an independent oracle for the decoder it tests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::certs::Identity;

/// The user name the server accepts unless told otherwise.
pub const USER: &str = "alice";
/// The password the server accepts unless told otherwise.
pub const PASSWORD: &str = "s3cret-Pa55";

/// The longest command line the server reads (RFC 2449 section 4 allows 255 octets; a
/// little slack for SASL lines). Longer lines end the connection.
const MAX_LINE: usize = 4096;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP, no STLS.
    None,
    /// TLS from the first byte (POP3S, port 995 style).
    Implicit,
    /// Plain TCP with STLS in CAPA (RFC 2595).
    Starttls,
}

/// A failure to inject. Verbs are matched case-insensitively; `"GREETING"` stands for the
/// greeting the server sends before any command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `RETR msg` with `+OK` and the first `after` bytes of the dot-stuffed body,
    /// then close the connection (never sending the terminating ".").
    DropInRetr { msg: u32, after: usize },
    /// Answer `RETR msg` with `+OK` and the first `after` bytes of the body, sleep `delay`,
    /// then send the rest (a slow server, or a window in which to kill the client).
    StallInRetr {
        msg: u32,
        after: usize,
        delay: Duration,
    },
    /// Read the command, then close the connection without answering it.
    DropBeforeReply(String),
    /// Answer STLS with `-ERR`.
    RefuseStls,
    /// Leave STLS out of CAPA (and refuse it when asked anyway).
    OmitStls,
    /// Send these bytes in the same write as the `+OK` to STLS, before the TLS handshake.
    ExtraAfterStls(Vec<u8>),
    /// Answer `RETR msg` with `-ERR`.
    RetrErr(u32),
    /// Sleep this long before answering the verb.
    Stall { verb: String, delay: Duration },
    /// Read the command, then send exactly these bytes instead of the answer (nothing is
    /// added: no CRLF, no state change) and go on reading commands. `"GREETING"` replaces
    /// the greeting.
    Reply { verb: String, bytes: Vec<u8> },
    /// Read the command, then send `prefix` and after it `fill` over and over, never
    /// finishing: one byte every `every` (a drip), or as fast as the client reads when
    /// `every` is zero (a flood). Ends when the client goes away, after [`ENDLESS_LIMIT`], or
    /// (a flood) after [`ENDLESS_MAX_BYTES`]; then the connection is dropped.
    Endless {
        verb: String,
        prefix: Vec<u8>,
        fill: Vec<u8>,
        every: Duration,
    },
    /// Answer the verb as usual, then close the connection (`"GREETING"`: close right after
    /// the greeting).
    CloseAfter(String),
    /// Answer `AUTH` (any mechanism) with these raw lines in turn instead of the real
    /// exchange: after each line that is a SASL challenge (starts with `+` but not `+OK`)
    /// one client line is read and recorded. Nothing is added after the last line.
    AuthScript(Vec<Vec<u8>>),
}

impl Fault {
    /// [`Fault::DropBeforeReply`] for `verb`.
    pub fn drop_before_reply(verb: &str) -> Fault {
        Fault::DropBeforeReply(verb.to_string())
    }

    /// [`Fault::Stall`] for `verb`.
    pub fn stall(verb: &str, delay: Duration) -> Fault {
        Fault::Stall {
            verb: verb.to_string(),
            delay,
        }
    }

    /// [`Fault::Reply`]: answer `verb` with exactly `bytes`.
    pub fn reply(verb: &str, bytes: impl AsRef<[u8]>) -> Fault {
        Fault::Reply {
            verb: verb.to_string(),
            bytes: bytes.as_ref().to_vec(),
        }
    }

    /// [`Fault::Endless`] as a drip: `prefix`, then one byte of `fill` (cycled) every
    /// `every`.
    pub fn drip(
        verb: &str,
        prefix: impl AsRef<[u8]>,
        fill: impl AsRef<[u8]>,
        every: Duration,
    ) -> Fault {
        Fault::Endless {
            verb: verb.to_string(),
            prefix: prefix.as_ref().to_vec(),
            fill: fill.as_ref().to_vec(),
            every,
        }
    }

    /// [`Fault::Endless`] as a flood: `prefix`, then `fill` (cycled) as fast as it goes.
    pub fn flood(verb: &str, prefix: impl AsRef<[u8]>, fill: impl AsRef<[u8]>) -> Fault {
        Fault::drip(verb, prefix, fill, Duration::ZERO)
    }

    /// [`Fault::CloseAfter`] for `verb`.
    pub fn close_after(verb: &str) -> Fault {
        Fault::CloseAfter(verb.to_string())
    }

    /// [`Fault::AuthScript`] from text lines (each sent as given, CRLF included).
    pub fn auth_script<S: AsRef<[u8]>>(lines: impl IntoIterator<Item = S>) -> Fault {
        Fault::AuthScript(lines.into_iter().map(|l| l.as_ref().to_vec()).collect())
    }
}

/// How long an [`Fault::Endless`] answer goes on at most.
pub const ENDLESS_LIMIT: Duration = Duration::from_secs(30);

/// How many bytes an [`Fault::Endless`] flood sends at most.
pub const ENDLESS_MAX_BYTES: usize = 256 << 20;

/// The OAuth access token the server accepts for XOAUTH2 unless told otherwise.
pub const OAUTH_TOKEN: &str = "ya29.test-access-token";

/// The JSON a refused XOAUTH2 token gets as a challenge (Google's format).
pub const OAUTH_ERROR_JSON: &str =
    r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;

/// The challenge the server sends for CRAM-MD5 (RFC 2195 style).
pub const CRAM_CHALLENGE: &str = "<1896.697170952@pop3.test>";

/// One message in the mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The unique-id listing (RFC 1939 section 7: 1 to 70 printable characters).
    pub uidl: String,
    /// The message as stored; bare LF is sent as CRLF.
    pub body: Vec<u8>,
}

impl Message {
    /// The size LIST and STAT report: octets with CRLF line ends, before dot-stuffing.
    pub fn size(&self) -> usize {
        to_crlf(&self.body).len()
    }
}

/// Three messages that exercise what a fetcher must keep byte for byte:
///
/// 1. a plain message;
/// 2. lines starting with "." (also a line that is only "."), "..", "From " and ">From ",
///    8-bit bytes that are not UTF-8, a bare-LF line end, and no final line end;
/// 3. 100 KiB of body, so that the body crosses many reads and TLS records.
pub fn sample_messages() -> Vec<Message> {
    let mut tricky = b"From: Bob <bob@example.org>\r\n\
To: alice@example.org\r\n\
Subject: =?ISO-8859-1?Q?caf=E9?= and dots\r\n\
Message-ID: <tricky@example.org>\r\n\
\r\n\
.leading dot\r\n\
.\r\n\
..two dots\r\n\
From the start of a line\r\n\
>From quoted already\r\n\
bare LF line\n\
8-bit: caf\xe9 \xff\xfe \xc3\xa9\r\n\
.\r\n\
\r\n"
        .to_vec();
    tricky.extend_from_slice(b"last line without end");

    let mut big = b"From: Carol <carol@example.org>\r\n\
To: alice@example.org\r\n\
Subject: big\r\n\
\r\n"
        .to_vec();
    for i in 0..1600 {
        big.extend_from_slice(format!("{i:05} {}\r\n", "x".repeat(58)).as_bytes());
    }
    vec![
        Message {
            uidl: "uid-0001-plain".to_string(),
            body: b"From: Alice <alice@example.org>\r\n\
To: alice@example.org\r\n\
Subject: hello\r\n\
Message-ID: <plain@example.org>\r\n\
\r\n\
Hello, world.\r\n"
                .to_vec(),
        },
        Message {
            uidl: "uid-0002-tricky.!~".to_string(),
            body: tricky,
        },
        Message {
            uidl: "uid-0003-big".to_string(),
            body: big,
        },
    ]
}

/// A small extra message with the given marker in its Subject and body.
pub fn extra_message(marker: &str) -> Vec<u8> {
    format!(
        "From: Dave <dave@example.org>\r\nTo: alice@example.org\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n"
    )
    .into_bytes()
}

/// One command line as the server read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The line without its CRLF (lossy UTF-8).
    pub line: String,
    /// Whether it arrived inside TLS.
    pub tls: bool,
}

impl Command {
    /// The first word, upper-cased.
    pub fn verb(&self) -> String {
        self.line
            .split(' ')
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }
}

/// What one connection's client sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionLog {
    /// Every byte read before TLS started (all of them on a plain connection).
    pub plain: Vec<u8>,
    /// Every byte read inside TLS, decrypted.
    pub tls: Vec<u8>,
    /// The command lines in order (SASL continuation lines included).
    pub commands: Vec<Command>,
}

impl SessionLog {
    /// The verbs of all commands in order.
    pub fn verbs(&self) -> Vec<String> {
        self.commands.iter().map(Command::verb).collect()
    }

    /// True when a USER, PASS, AUTH or APOP command was sent at all.
    pub fn sent_credentials(&self) -> bool {
        self.commands.iter().any(is_credential)
    }

    /// True when a credential command, or the given password, crossed the connection in
    /// clear.
    pub fn credentials_in_clear(&self, password: &str) -> bool {
        self.commands.iter().any(|c| !c.tls && is_credential(c))
            || contains(&self.plain, password.as_bytes())
    }
}

fn is_credential(c: &Command) -> bool {
    matches!(c.verb().as_str(), "USER" | "PASS" | "AUTH" | "APOP")
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Settings fixed when the server starts.
struct Config {
    tls: TlsMode,
    tls_config: Option<Arc<ServerConfig>>,
    capa: Vec<String>,
    user: String,
    password: String,
    greeting: String,
    io_timeout: Duration,
    oauth_token: String,
    /// Gmail-like: at most this many messages per session, and a message once retrieved
    /// is hidden from later sessions even without DELE.
    session_cap: Option<usize>,
}

/// State shared by the accept loop, the connection threads and the test.
struct Shared {
    config: Config,
    mailbox: Mutex<Vec<Message>>,
    faults: Mutex<Vec<Fault>>,
    sessions: Mutex<Vec<SessionLog>>,
    /// UIDLs retrieved so far (only used with a session cap).
    retrieved: Mutex<std::collections::HashSet<String>>,
    /// Connections accepted and not yet finished.
    active: AtomicUsize,
}

/// Lock a mutex, ignoring poisoning (a panicking connection thread must not hide the log).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds a [`TestServer`].
pub struct ServerBuilder {
    tls: TlsMode,
    identity: Option<Identity>,
    capa: Vec<String>,
    user: String,
    password: String,
    greeting: String,
    messages: Vec<Message>,
    faults: Vec<Fault>,
    max_connections: usize,
    time_limit: Duration,
    io_timeout: Duration,
    oauth_token: String,
    tls12_only: bool,
    client_ca: Option<Identity>,
    session_cap: Option<usize>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            tls: TlsMode::None,
            identity: None,
            capa: ["TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING"]
                .map(String::from)
                .to_vec(),
            user: USER.to_string(),
            password: PASSWORD.to_string(),
            greeting: "+OK pop3 test server ready".to_string(),
            messages: Vec::new(),
            faults: Vec::new(),
            max_connections: 8,
            time_limit: Duration::from_secs(60),
            io_timeout: Duration::from_secs(10),
            oauth_token: OAUTH_TOKEN.to_string(),
            tls12_only: false,
            client_ca: None,
            session_cap: None,
        }
    }
}

impl ServerBuilder {
    /// TLS from the first byte with this certificate.
    pub fn implicit_tls(mut self, identity: &Identity) -> Self {
        self.tls = TlsMode::Implicit;
        self.identity = Some(identity.clone());
        self
    }

    /// STLS offered in CAPA, upgrading with this certificate.
    pub fn starttls(mut self, identity: &Identity) -> Self {
        self.tls = TlsMode::Starttls;
        self.identity = Some(identity.clone());
        self
    }

    /// The CAPA list (STLS is added by itself in STLS mode). Default: TOP, UIDL, USER,
    /// RESP-CODES, PIPELINING.
    pub fn capa<S: Into<String>>(mut self, capa: impl IntoIterator<Item = S>) -> Self {
        self.capa = capa.into_iter().map(Into::into).collect();
        self
    }

    /// The accepted user name and password (default [`USER`], [`PASSWORD`]).
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.user = user.to_string();
        self.password = password.to_string();
        self
    }

    /// Behave like Gmail: a session lists at most `cap` messages, and a message retrieved
    /// once is hidden from every later session, DELE or not.
    pub fn session_cap(mut self, cap: usize) -> Self {
        self.session_cap = Some(cap);
        self
    }

    /// The whole greeting line without CRLF. The default has no `<timestamp>`, so it does
    /// not offer APOP (which this server does not implement), like Dovecot's default.
    pub fn greeting(mut self, greeting: &str) -> Self {
        self.greeting = greeting.to_string();
        self
    }

    /// Add a message to the mailbox.
    pub fn message(mut self, uidl: &str, body: &[u8]) -> Self {
        self.messages.push(Message {
            uidl: uidl.to_string(),
            body: body.to_vec(),
        });
        self
    }

    /// Add several messages to the mailbox.
    pub fn messages(mut self, messages: impl IntoIterator<Item = Message>) -> Self {
        self.messages.extend(messages);
        self
    }

    /// Inject a fault into every connection (until [`TestServer::set_faults`]).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Stop accepting after this many connections (default 8).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Stop accepting after this long (default 60 s).
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Read and write timeout of every connection (default 10 s).
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// The OAuth access token XOAUTH2 accepts (default [`OAUTH_TOKEN`]).
    pub fn oauth_token(mut self, token: &str) -> Self {
        self.oauth_token = token.to_string();
        self
    }

    /// Speak only TLS 1.2 (default: 1.2 and 1.3).
    pub fn tls12_only(mut self) -> Self {
        self.tls12_only = true;
        self
    }

    /// Require a client certificate signed by `ca` in the TLS handshake.
    pub fn require_client_cert(mut self, ca: &Identity) -> Self {
        self.client_ca = Some(ca.clone());
        self
    }

    /// Bind `127.0.0.1:0` and start the accept loop.
    pub fn start(self) -> TestServer {
        let tls_config = self
            .identity
            .as_ref()
            .map(|id| server_config(id, self.tls12_only, self.client_ca.as_ref()));
        assert!(
            self.tls == TlsMode::None || tls_config.is_some(),
            "a TLS mode needs a certificate"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared {
            config: Config {
                tls: self.tls,
                tls_config,
                capa: self.capa,
                user: self.user,
                password: self.password,
                greeting: self.greeting,
                io_timeout: self.io_timeout,
                oauth_token: self.oauth_token,
                session_cap: self.session_cap,
            },
            mailbox: Mutex::new(self.messages),
            faults: Mutex::new(self.faults),
            sessions: Mutex::new(Vec::new()),
            retrieved: Mutex::new(std::collections::HashSet::new()),
            active: AtomicUsize::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (shared, stop) = (shared.clone(), stop.clone());
            let deadline = Instant::now() + self.time_limit;
            let max = self.max_connections;
            thread::Builder::new()
                .name(format!("pop3-test-server-{}", addr.port()))
                .spawn(move || accept_loop(listener, shared, stop, max, deadline))
                .expect("spawn accept thread")
        };
        TestServer {
            addr,
            shared,
            stop,
            accept: Some(accept),
        }
    }
}

fn server_config(
    identity: &Identity,
    tls12_only: bool,
    client_ca: Option<&Identity>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("TLS versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.cert()).expect("client CA");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client certificate verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(vec![identity.cert()], identity.key())
        .expect("server certificate");
    Arc::new(config)
}

/// A running scripted server. Dropping it stops the accept loop.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Start building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address it listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Add a message to the mailbox; sessions that start later see it.
    pub fn add_message(&self, uidl: &str, body: &[u8]) {
        lock(&self.shared.mailbox).push(Message {
            uidl: uidl.to_string(),
            body: body.to_vec(),
        });
    }

    /// The mailbox as it is now (after every QUIT so far).
    pub fn messages(&self) -> Vec<Message> {
        self.wait_idle(Duration::from_secs(5));
        lock(&self.shared.mailbox).clone()
    }

    /// The UIDLs in the mailbox now.
    pub fn uidls(&self) -> Vec<String> {
        self.messages().into_iter().map(|m| m.uidl).collect()
    }

    /// Replace the faults for connections that start from now on.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        *lock(&self.shared.faults) = faults;
    }

    /// No more faults for new connections.
    pub fn clear_faults(&self) {
        self.set_faults(Vec::new());
    }

    /// How many connections were accepted so far.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.sessions).len()
    }

    /// What each connection's client sent, in accept order. Waits (up to 5 s) for the
    /// connections to finish first, so that everything the client wrote before it exited is
    /// in the log.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.wait_idle(Duration::from_secs(5));
        lock(&self.shared.sessions).clone()
    }

    /// The commands received so far, without waiting for connections to finish (for
    /// watching a client that is still running).
    pub fn commands_now(&self) -> Vec<Command> {
        lock(&self.shared.sessions)
            .iter()
            .flat_map(|s| s.commands.clone())
            .collect()
    }

    /// Every command of every connection, in order.
    pub fn commands(&self) -> Vec<Command> {
        self.sessions()
            .into_iter()
            .flat_map(|s| s.commands)
            .collect()
    }

    /// The verbs of every command of every connection, in order.
    pub fn verbs(&self) -> Vec<String> {
        self.commands().iter().map(Command::verb).collect()
    }

    /// Every byte any client sent outside TLS.
    pub fn plain_bytes(&self) -> Vec<u8> {
        self.sessions().into_iter().flat_map(|s| s.plain).collect()
    }

    /// True when any connection sent USER, PASS, AUTH or APOP.
    pub fn sent_credentials(&self) -> bool {
        self.sessions().iter().any(SessionLog::sent_credentials)
    }

    /// True when any connection sent a credential command or the password outside TLS.
    pub fn credentials_in_clear(&self) -> bool {
        let password = self.shared.config.password.clone();
        self.sessions()
            .iter()
            .any(|s| s.credentials_in_clear(&password))
    }

    /// Wait until no connection has been open for 50 ms (a client that just exited may
    /// still sit in the accept backlog for a few milliseconds). False on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut quiet_since: Option<(Instant, usize)> = None;
        loop {
            let accepted = lock(&self.shared.sessions).len();
            let idle = self.shared.active.load(Ordering::SeqCst) == 0;
            match (idle, quiet_since) {
                (true, Some((since, n))) if n == accepted => {
                    if since.elapsed() >= Duration::from_millis(50) {
                        return true;
                    }
                }
                (true, _) => quiet_since = Some((Instant::now(), accepted)),
                (false, _) => quiet_since = None,
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    max: usize,
    deadline: Instant,
) {
    let mut accepted = 0;
    while accepted < max && !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match listener.accept() {
            Ok((tcp, _)) => {
                accepted += 1;
                // Count the connection before the test can look, so wait_idle sees it.
                shared.active.fetch_add(1, Ordering::SeqCst);
                let idx = {
                    let mut sessions = lock(&shared.sessions);
                    sessions.push(SessionLog::default());
                    sessions.len() - 1
                };
                let shared = shared.clone();
                let spawned = thread::Builder::new()
                    .name(format!("pop3-test-conn-{idx}"))
                    .spawn(move || {
                        let _ = serve(&shared, tcp, idx);
                        shared.active.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    // The listener is dropped here: later connection attempts are refused.
}

/// The client connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

/// Records every byte read into the connection's [`SessionLog`]; writes pass through.
struct Recorder {
    inner: Stream,
    tls: bool,
    shared: Arc<Shared>,
    idx: usize,
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Stream::Plain(s) => s.read(buf)?,
            Stream::Tls(s) => s.read(buf)?,
        };
        let mut sessions = lock(&self.shared.sessions);
        let log = &mut sessions[self.idx];
        if self.tls {
            log.tls.extend_from_slice(&buf[..n]);
        } else {
            log.plain.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

type Conn = BufReader<Recorder>;

/// What the connection loop does after a command.
enum Next {
    Continue,
    /// The session ended normally (QUIT answered).
    Close,
    /// Close abruptly without another byte.
    Drop,
    /// STLS was answered `+OK`: start the TLS handshake.
    StartTls,
}

fn serve(shared: &Arc<Shared>, tcp: TcpStream, idx: usize) -> io::Result<()> {
    let config = &shared.config;
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(config.io_timeout))?;
    tcp.set_write_timeout(Some(config.io_timeout))?;
    tcp.set_nodelay(true)?;
    let (stream, tls) = match config.tls {
        TlsMode::Implicit => (tls_stream(config, tcp)?, true),
        TlsMode::None | TlsMode::Starttls => (Stream::Plain(tcp), false),
    };
    let mut conn = BufReader::new(Recorder {
        inner: stream,
        tls,
        shared: shared.clone(),
        idx,
    });
    let mut session = Session {
        shared: shared.clone(),
        idx,
        tls,
        user: None,
        maildrop: None,
        deleted: Vec::new(),
    };

    let faults = session.faults();
    session.stall("GREETING", &faults);
    if drops_before("GREETING", &faults) {
        drop_connection(conn);
        return Ok(());
    }
    match hostile("GREETING", &mut conn, &faults)? {
        Some(Next::Continue) => {}
        Some(_) => {
            drop_connection(conn);
            return Ok(());
        }
        None => send(&mut conn, format!("{}\r\n", config.greeting).as_bytes())?,
    }
    if closes_after("GREETING", &faults) {
        drop_connection(conn);
        return Ok(());
    }

    loop {
        let Some(line) = read_line(&mut conn)? else {
            return Ok(());
        };
        session.record(&line);
        match session.handle(&mut conn, &line)? {
            Next::Continue => {}
            Next::Close => return Ok(()),
            Next::Drop => {
                drop_connection(conn);
                return Ok(());
            }
            Next::StartTls => {
                conn = upgrade(conn, config)?;
                session.tls = true;
            }
        }
    }
}

fn tls_stream(config: &Config, tcp: TcpStream) -> io::Result<Stream> {
    let tls_config = config.tls_config.clone().expect("TLS needs a certificate");
    let conn = ServerConnection::new(tls_config).map_err(io::Error::other)?;
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

/// Start TLS on a plain connection after `STLS +OK`. Bytes the client sent in clear after
/// STLS and that sit in the buffer are dropped (they were recorded as plain).
fn upgrade(conn: Conn, config: &Config) -> io::Result<Conn> {
    let Recorder {
        inner, shared, idx, ..
    } = conn.into_inner();
    let Stream::Plain(tcp) = inner else {
        return Err(io::Error::other("STLS on a TLS connection"));
    };
    Ok(BufReader::new(Recorder {
        inner: tls_stream(config, tcp)?,
        tls: true,
        shared,
        idx,
    }))
}

/// Close so that the client sees end-of-stream (a FIN, no TLS close_notify) after what was
/// already sent. Reads what the client still sends, for up to 2 s, so that unread input
/// does not turn the close into a reset that could discard data in flight.
fn drop_connection(mut conn: Conn) {
    let _ = conn.get_mut().flush();
    let _ = conn.get_ref().inner.tcp().shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(2);
    let _ = conn
        .get_ref()
        .inner
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match conn.get_mut().read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    // The TLS layer gave up (or time ran out): drain the raw socket instead.
    let mut tcp = conn.get_ref().inner.tcp();
    while Instant::now() < deadline {
        match tcp.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

fn send(conn: &mut Conn, bytes: &[u8]) -> io::Result<()> {
    let out = conn.get_mut();
    out.write_all(bytes)?;
    out.flush()
}

/// One line without its line end; `None` at end of stream.
fn read_line(conn: &mut Conn) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = conn
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    // Without a line end the line was either too long or cut by the end of the stream
    // (which is treated as the last line).
    if !line.ends_with(b"\n") && line.len() >= MAX_LINE {
        return Err(io::Error::other("command line too long"));
    }
    while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn drops_before(verb: &str, faults: &[Fault]) -> bool {
    faults
        .iter()
        .any(|f| matches!(f, Fault::DropBeforeReply(v) if v.eq_ignore_ascii_case(verb)))
}

fn closes_after(verb: &str, faults: &[Fault]) -> bool {
    faults
        .iter()
        .any(|f| matches!(f, Fault::CloseAfter(v) if v.eq_ignore_ascii_case(verb)))
}

/// The [`Fault::Reply`] or [`Fault::Endless`] answer for `verb`, if there is one: `None`
/// when the verb is to be answered as usual.
fn hostile(verb: &str, conn: &mut Conn, faults: &[Fault]) -> io::Result<Option<Next>> {
    for fault in faults {
        match fault {
            Fault::Reply { verb: v, bytes } if v.eq_ignore_ascii_case(verb) => {
                send(conn, bytes)?;
                return Ok(Some(Next::Continue));
            }
            Fault::Endless {
                verb: v,
                prefix,
                fill,
                every,
            } if v.eq_ignore_ascii_case(verb) => {
                endless(conn, prefix, fill, *every);
                return Ok(Some(Next::Drop));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Send `prefix`, then `fill` over and over (see [`Fault::Endless`]). Write errors (the
/// client went away) end it.
fn endless(conn: &mut Conn, prefix: &[u8], fill: &[u8], every: Duration) {
    assert!(!fill.is_empty(), "Fault::Endless needs something to send");
    if send(conn, prefix).is_err() {
        return;
    }
    let deadline = Instant::now() + ENDLESS_LIMIT;
    if every.is_zero() {
        let chunk: Vec<u8> = fill.iter().copied().cycle().take(64 * 1024).collect();
        let mut sent = 0;
        while sent < ENDLESS_MAX_BYTES && Instant::now() < deadline {
            if send(conn, &chunk).is_err() {
                return;
            }
            sent += chunk.len();
        }
    } else {
        for &byte in fill.iter().cycle() {
            if Instant::now() >= deadline || send(conn, &[byte]).is_err() {
                return;
            }
            thread::sleep(every);
        }
    }
}

/// One connection's POP3 state.
struct Session {
    shared: Arc<Shared>,
    /// This connection's entry in the session log.
    idx: usize,
    tls: bool,
    /// The name given with USER.
    user: Option<String>,
    /// TRANSACTION state: the mailbox as it was at login.
    maildrop: Option<Vec<Message>>,
    /// DELE marks, by message number - 1.
    deleted: Vec<bool>,
}

impl Session {
    fn faults(&self) -> Vec<Fault> {
        lock(&self.shared.faults).clone()
    }

    fn stall(&self, verb: &str, faults: &[Fault]) {
        for fault in faults {
            if let Fault::Stall { verb: v, delay } = fault
                && v.eq_ignore_ascii_case(verb)
            {
                thread::sleep(*delay);
            }
        }
    }

    fn record(&self, line: &str) {
        lock(&self.shared.sessions)[self.idx]
            .commands
            .push(Command {
                line: line.to_string(),
                tls: self.tls,
            });
    }

    /// Answer one command, with the faults that apply to it.
    fn handle(&mut self, conn: &mut Conn, line: &str) -> io::Result<Next> {
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let faults = self.faults();
        self.stall(&verb, &faults);
        if drops_before(&verb, &faults) {
            return Ok(Next::Drop);
        }
        if let Some(next) = hostile(&verb, conn, &faults)? {
            return Ok(next);
        }
        if verb == "AUTH" && self.maildrop.is_none() {
            let script = faults.iter().find_map(|f| match f {
                Fault::AuthScript(lines) => Some(lines.clone()),
                _ => None,
            });
            if let Some(script) = script {
                return self.auth_script(conn, &script);
            }
        }
        let next = self.answer(conn, line, &faults)?;
        if matches!(next, Next::Continue) && closes_after(&verb, &faults) {
            return Ok(Next::Drop);
        }
        Ok(next)
    }

    /// Send the lines of a [`Fault::AuthScript`], reading a client line after each
    /// challenge.
    fn auth_script(&mut self, conn: &mut Conn, script: &[Vec<u8>]) -> io::Result<Next> {
        for line in script {
            send(conn, line)?;
            if line.starts_with(b"+") && !line.starts_with(b"+OK") {
                let Some(answer) = read_line(conn)? else {
                    return Ok(Next::Close);
                };
                self.record(&answer);
            }
        }
        Ok(Next::Continue)
    }

    /// Answer one command as a (fault-free) server would.
    fn answer(&mut self, conn: &mut Conn, line: &str, faults: &[Fault]) -> io::Result<Next> {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        let config = &self.shared.config;
        let reply = match verb.as_str() {
            "CAPA" => {
                let mut capa = config.capa.clone();
                if config.tls == TlsMode::Starttls
                    && !self.tls
                    && self.maildrop.is_none()
                    && !faults.contains(&Fault::OmitStls)
                {
                    capa.push("STLS".to_string());
                }
                multiline("+OK Capability list follows", &capa)
            }
            "QUIT" => {
                self.update();
                send(conn, b"+OK bye\r\n")?;
                return Ok(Next::Close);
            }
            "NOOP" if self.maildrop.is_some() => "+OK\r\n".to_string(),
            "STLS" => {
                let refused =
                    faults.contains(&Fault::RefuseStls) || faults.contains(&Fault::OmitStls);
                if config.tls != TlsMode::Starttls || self.tls || self.maildrop.is_some() {
                    "-ERR STLS not available\r\n".to_string()
                } else if refused {
                    "-ERR TLS not available right now\r\n".to_string()
                } else {
                    let mut out = b"+OK Begin TLS negotiation\r\n".to_vec();
                    for fault in faults {
                        if let Fault::ExtraAfterStls(extra) = fault {
                            out.extend_from_slice(extra);
                        }
                    }
                    send(conn, &out)?;
                    return Ok(Next::StartTls);
                }
            }
            "USER" if self.maildrop.is_none() => {
                self.user = Some(arg.to_string());
                "+OK send PASS\r\n".to_string()
            }
            "PASS" if self.maildrop.is_none() => match self.user.take() {
                None => "-ERR USER first\r\n".to_string(),
                Some(user) => self.login(&user, arg),
            },
            "AUTH" if self.maildrop.is_none() => match self.auth(conn, arg)? {
                Some(reply) => reply,
                None => return Ok(Next::Close),
            },
            "APOP" if self.maildrop.is_none() => "-ERR APOP not supported\r\n".to_string(),
            "USER" | "PASS" | "AUTH" | "APOP" => "-ERR already logged in\r\n".to_string(),
            "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET" | "NOOP"
                if self.maildrop.is_none() =>
            {
                "-ERR not logged in\r\n".to_string()
            }
            "STAT" => {
                let (count, size) = self
                    .live()
                    .fold((0, 0), |(c, s), (_, m)| (c + 1, s + m.size()));
                format!("+OK {count} {size}\r\n")
            }
            "LIST" | "UIDL" => {
                let show = |n: usize, m: &Message| {
                    if verb == "LIST" {
                        format!("{n} {}", m.size())
                    } else {
                        format!("{n} {}", m.uidl)
                    }
                };
                if arg.is_empty() {
                    let lines: Vec<String> = self.live().map(|(n, m)| show(n, m)).collect();
                    multiline("+OK listing follows", &lines)
                } else {
                    match self.lookup(arg) {
                        Some(n) => format!("+OK {}\r\n", show(n, self.message(n))),
                        None => "-ERR no such message\r\n".to_string(),
                    }
                }
            }
            "RETR" => match self.lookup(arg) {
                None => "-ERR no such message\r\n".to_string(),
                Some(n) if faults.contains(&Fault::RetrErr(n as u32)) => {
                    "-ERR cannot open message\r\n".to_string()
                }
                Some(n) => {
                    let message = self.message(n);
                    if self.shared.config.session_cap.is_some() {
                        lock(&self.shared.retrieved).insert(message.uidl.clone());
                    }
                    let mut out = format!("+OK {} octets\r\n", message.size()).into_bytes();
                    let wire = dot_stuff(&message.body);
                    let cut = faults.iter().find_map(|f| match f {
                        Fault::DropInRetr { msg, after } if *msg as usize == n => Some(*after),
                        _ => None,
                    });
                    if let Some(after) = cut {
                        // Never send the whole terminator: the body must stay unfinished.
                        let after = after.min(wire.len() - 3);
                        out.extend_from_slice(&wire[..after]);
                        send(conn, &out)?;
                        return Ok(Next::Drop);
                    }
                    let pause = faults.iter().find_map(|f| match f {
                        Fault::StallInRetr { msg, after, delay } if *msg as usize == n => {
                            Some((*after, *delay))
                        }
                        _ => None,
                    });
                    if let Some((after, delay)) = pause {
                        let after = after.min(wire.len() - 3);
                        out.extend_from_slice(&wire[..after]);
                        send(conn, &out)?;
                        thread::sleep(delay);
                        send(conn, &wire[after..])?;
                        return Ok(Next::Continue);
                    }
                    out.extend_from_slice(&wire);
                    send(conn, &out)?;
                    return Ok(Next::Continue);
                }
            },
            "TOP" => {
                let mut args = arg.split_whitespace();
                let n = args.next().and_then(|a| self.lookup(a));
                let lines = args.next().and_then(|a| a.parse::<usize>().ok());
                match (n, lines) {
                    (Some(n), Some(lines)) => {
                        let mut out = b"+OK top of message follows\r\n".to_vec();
                        out.extend_from_slice(&dot_stuff(&top(&self.message(n).body, lines)));
                        send(conn, &out)?;
                        return Ok(Next::Continue);
                    }
                    _ => "-ERR usage: TOP msg lines\r\n".to_string(),
                }
            }
            "DELE" => match self.lookup(arg) {
                Some(n) => {
                    self.deleted[n - 1] = true;
                    format!("+OK message {n} deleted\r\n")
                }
                None => "-ERR no such message\r\n".to_string(),
            },
            "RSET" => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                "+OK\r\n".to_string()
            }
            _ => "-ERR unknown command\r\n".to_string(),
        };
        send(conn, reply.as_bytes())?;
        Ok(Next::Continue)
    }

    /// Check the credentials; on success enter TRANSACTION with a snapshot of the mailbox.
    fn login(&mut self, user: &str, password: &str) -> String {
        let config = &self.shared.config;
        if user != config.user || password != config.password {
            return "-ERR [AUTH] invalid user name or password\r\n".to_string();
        }
        let mut snapshot = lock(&self.shared.mailbox).clone();
        if let Some(cap) = config.session_cap {
            let retrieved = lock(&self.shared.retrieved);
            snapshot.retain(|m| !retrieved.contains(&m.uidl));
            snapshot.truncate(cap);
        }
        self.deleted = vec![false; snapshot.len()];
        self.maildrop = Some(snapshot);
        "+OK maildrop locked and ready\r\n".to_string()
    }

    /// AUTH (RFC 5034) with PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195) and XOAUTH2
    /// (Google's form, also the two-step form Microsoft 365 uses). `None` when the client
    /// went away mid-exchange.
    fn auth(&mut self, conn: &mut Conn, arg: &str) -> io::Result<Option<String>> {
        let mut args = arg.split_whitespace();
        let Some(mechanism) = args.next() else {
            return Ok(Some(multiline(
                "+OK mechanisms follow",
                &["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
            )));
        };
        let initial = args.next().map(str::to_string);
        match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => self.auth_plain(conn, initial),
            "LOGIN" => self.auth_login(conn, initial),
            "CRAM-MD5" => self.auth_cram_md5(conn),
            "XOAUTH2" => self.auth_xoauth2(conn, initial),
            _ => Ok(Some("-ERR unsupported mechanism\r\n".to_string())),
        }
    }

    /// Send one SASL challenge (`payload` base64-encoded) and read the client's answer,
    /// recorded. `Ok(None)`: the client went away.
    fn challenge(&mut self, conn: &mut Conn, payload: &[u8]) -> io::Result<Option<String>> {
        send(conn, format!("+ {}\r\n", base64_encode(payload)).as_bytes())?;
        let Some(line) = read_line(conn)? else {
            return Ok(None);
        };
        self.record(&line);
        Ok(Some(line))
    }

    fn auth_plain(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> io::Result<Option<String>> {
        let response = match initial.as_deref() {
            Some("=") => String::new(),
            Some(initial) => initial.to_string(),
            None => match self.challenge(conn, b"")? {
                Some(line) => line,
                None => return Ok(None),
            },
        };
        if response == "*" {
            return Ok(Some("-ERR AUTH cancelled\r\n".to_string()));
        }
        let Some(decoded) = base64_decode(&response) else {
            return Ok(Some("-ERR bad base64\r\n".to_string()));
        };
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [_authzid, user, password] = parts[..] else {
            return Ok(Some("-ERR bad PLAIN response\r\n".to_string()));
        };
        Ok(Some(self.login(
            &String::from_utf8_lossy(user),
            &String::from_utf8_lossy(password),
        )))
    }

    /// LOGIN (draft-murchison-sasl-login): "Username:", then "Password:".
    fn auth_login(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> io::Result<Option<String>> {
        let user = match initial {
            Some(user) => user,
            None => match self.challenge(conn, b"Username:")? {
                Some(line) => line,
                None => return Ok(None),
            },
        };
        let Some(password) = self.challenge(conn, b"Password:")? else {
            return Ok(None);
        };
        if user == "*" || password == "*" {
            return Ok(Some("-ERR AUTH cancelled\r\n".to_string()));
        }
        match (base64_decode(&user), base64_decode(&password)) {
            (Some(user), Some(password)) => Ok(Some(self.login(
                &String::from_utf8_lossy(&user),
                &String::from_utf8_lossy(&password),
            ))),
            _ => Ok(Some("-ERR bad base64\r\n".to_string())),
        }
    }

    /// CRAM-MD5 (RFC 2195): the client answers `user SP hex(HMAC-MD5(password, challenge))`.
    fn auth_cram_md5(&mut self, conn: &mut Conn) -> io::Result<Option<String>> {
        let Some(line) = self.challenge(conn, CRAM_CHALLENGE.as_bytes())? else {
            return Ok(None);
        };
        if line == "*" {
            return Ok(Some("-ERR AUTH cancelled\r\n".to_string()));
        }
        let Some(decoded) = base64_decode(&line) else {
            return Ok(Some("-ERR bad base64\r\n".to_string()));
        };
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        let Some((user, digest)) = decoded.rsplit_once(' ') else {
            return Ok(Some("-ERR bad CRAM-MD5 response\r\n".to_string()));
        };
        let config = &self.shared.config;
        if user != config.user || digest != cram_md5_digest(&config.password, CRAM_CHALLENGE) {
            return Ok(Some(
                "-ERR [AUTH] invalid user name or password\r\n".to_string(),
            ));
        }
        let (user, password) = (config.user.clone(), config.password.clone());
        Ok(Some(self.login(&user, &password)))
    }

    /// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A`, inline or after an empty challenge. A
    /// refused token gets [`OAUTH_ERROR_JSON`] as a challenge, an (expected empty) client
    /// line, then `-ERR`.
    fn auth_xoauth2(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> io::Result<Option<String>> {
        let response = match initial {
            Some(initial) => initial,
            None => {
                // Microsoft 365 sends a bare "+ " here.
                send(conn, b"+ \r\n")?;
                let Some(line) = read_line(conn)? else {
                    return Ok(None);
                };
                self.record(&line);
                line
            }
        };
        let config = &self.shared.config;
        let expected = format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            config.user, config.oauth_token
        );
        if base64_decode(&response).is_some_and(|d| d == expected.as_bytes()) {
            let (user, password) = (config.user.clone(), config.password.clone());
            return Ok(Some(self.login(&user, &password)));
        }
        if self.challenge(conn, OAUTH_ERROR_JSON.as_bytes())?.is_none() {
            return Ok(None);
        }
        Ok(Some("-ERR [AUTH] invalid credentials\r\n".to_string()))
    }

    /// RFC 1939 UPDATE state: remove the marked messages from the shared mailbox.
    fn update(&mut self) {
        let Some(maildrop) = self.maildrop.take() else {
            return;
        };
        let gone: Vec<&str> = maildrop
            .iter()
            .zip(&self.deleted)
            .filter(|(_, d)| **d)
            .map(|(m, _)| m.uidl.as_str())
            .collect();
        lock(&self.shared.mailbox).retain(|m| !gone.contains(&m.uidl.as_str()));
    }

    /// Messages not marked deleted, with their numbers.
    fn live(&self) -> impl Iterator<Item = (usize, &Message)> {
        self.maildrop
            .iter()
            .flatten()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
            .map(|(i, m)| (i + 1, m))
    }

    /// A message number that exists and is not marked deleted.
    fn lookup(&self, arg: &str) -> Option<usize> {
        let n: usize = arg.trim().parse().ok()?;
        let count = self.maildrop.as_ref()?.len();
        (n >= 1 && n <= count && !self.deleted[n - 1]).then_some(n)
    }

    fn message(&self, n: usize) -> &Message {
        &self.maildrop.as_ref().expect("TRANSACTION state")[n - 1]
    }
}

/// A multi-line reply: status line, dot-stuffed lines, terminator.
fn multiline<S: AsRef<str>>(status: &str, lines: &[S]) -> String {
    let mut out = format!("{status}\r\n");
    for line in lines {
        let line = line.as_ref();
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// Bare LF becomes CRLF; everything else stays.
pub fn to_crlf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32);
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' && (i == 0 || body[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The body as RFC 1939 section 3 sends it: CRLF line ends, a "." added to every line that
/// starts with ".", a CRLF added when the body does not end with one, and "." CRLF.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let crlf = to_crlf(body);
    let mut out = Vec::with_capacity(crlf.len() + 16);
    for line in crlf.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// What TOP sends before stuffing: the header, the blank line, and `lines` body lines.
fn top(body: &[u8], lines: usize) -> Vec<u8> {
    let crlf = to_crlf(body);
    let mut out = Vec::new();
    let mut in_body = false;
    let mut sent = 0;
    for line in crlf.split_inclusive(|&b| b == b'\n') {
        if in_body {
            if sent == lines {
                break;
            }
            sent += 1;
        } else if line == b"\r\n" {
            in_body = true;
        }
        out.extend_from_slice(line);
    }
    out
}

/// Lowercase hex of HMAC-MD5(password, challenge), the CRAM-MD5 digest.
fn cram_md5_digest(password: &str, challenge: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<md5::Md5> as KeyInit>::new_from_slice(password.as_bytes())
        .expect("HMAC takes any key");
    mac.update(challenge.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Standard base64 (RFC 4648) with padding; `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.trim().as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Standard base64 with padding, for tests that speak AUTH PLAIN.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Self-tests: talk to the server with a raw socket (and a rustls client), so they run
    //! without the `pop3` binary.

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

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
        let good =
            base64_encode(format!("user=alice\x01auth=Bearer {OAUTH_TOKEN}\x01\x01").as_bytes());
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
}
