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

// The parts live in server/. Each names its file: examples/demo.rs includes this file with
// `#[path]`, which would otherwise look for them beside it.
#[path = "server/auth.rs"]
mod auth;
#[path = "server/faults.rs"]
mod faults;
#[path = "server/log.rs"]
mod log;
#[path = "server/messages.rs"]
mod messages;
#[path = "server/session.rs"]
mod session;
#[path = "server/tls.rs"]
mod tls;
#[path = "server/wire.rs"]
mod wire;

#[cfg(test)]
#[path = "server/tests.rs"]
mod tests;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use super::certs::Identity;

// The public API of the parts. examples/demo.rs builds this file too and uses only some of
// it; the test binary (cfg(test)) still reports a re-export nobody uses.
#[cfg_attr(not(test), allow(unused_imports))]
pub use self::{
    auth::{CRAM_CHALLENGE, OAUTH_ERROR_JSON, OAUTH_TOKEN, base64_encode},
    faults::Fault,
    log::{Command, SessionLog, contains},
    messages::{Message, extra_message, sample_messages},
    wire::{dot_stuff, to_crlf},
};

use session::accept_loop;
use tls::server_config;

/// The user name the server accepts unless told otherwise.
pub const USER: &str = "alice";
/// The password the server accepts unless told otherwise.
pub const PASSWORD: &str = "s3cret-Pa55";

/// How long an [`Fault::Endless`] answer goes on at most.
pub const ENDLESS_LIMIT: Duration = Duration::from_secs(30);

/// How many bytes an [`Fault::Endless`] flood sends at most.
pub const ENDLESS_MAX_BYTES: usize = 256 << 20;

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
    /// Drop a session whose client sends nothing for `limit` (Microsoft 365 does after
    /// about a minute): the read timeout of every connection.
    pub fn idle_limit(mut self, limit: Duration) -> Self {
        self.io_timeout = limit;
        self
    }

    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
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

/// A plain-TCP server with these messages that accepts many connections.
pub fn plain_server(messages: Vec<Message>) -> TestServer {
    TestServer::builder()
        .messages(messages)
        .max_connections(64)
        .start()
}
