//! A POP3 session over any `Read + Write` stream. This is the only code that reads or writes
//! protocol bytes; it is generic so that its tests run over a scripted in-memory stream.
//!
//! The session owns one bounded read buffer. Status and listing lines are limited to
//! [`MAX_LINE`]; multi-line listings to [`MAX_MESSAGES`] entries; message bodies are never
//! held in memory but stream through [`Decoder`] into a caller's sink (DESIGN.md invariant 6).
//!
//! Commands can be pipelined (RFC 2449 section 6.6): in the TRANSACTION state a [`Window`]
//! keeps RETR, TOP and DELE commands in flight, and the caller reads each answer in order
//! ([`Session::read_body_or_refusal`], [`Session::read_dele`]); the second CAPA, UIDL and
//! LIST after login go out in one flight ([`Session::capa_and_listing`]). This module is the
//! only one that writes commands, and it never pipelines across a state change (STLS, PASS,
//! AUTH): those methods send and wait by themselves.
//!
//! Protocol states are types: [`Session<S, Authorization>`] can log in, only
//! [`Session<S, Transaction>`] can list, retrieve and delete, and `quit` consumes it.

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use log::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::proto::auth::SaslClient;
use crate::proto::command::Command;
use crate::proto::lines::{MAX_LINE, find_eol, strip_eol};
use crate::proto::listing::{parse_list_line, parse_stat, parse_uidl_line};
use crate::proto::multiline::{Decoder, unstuff_line};
use crate::proto::response::{RespCode, Response, Status, parse_continuation, parse_status};
use crate::proto::sanitize::sanitize;
use crate::proto::{Capabilities, MessageNumber, Octets, Uid};
use crate::secret::Secret;

/// The most entries we accept in a LIST or UIDL listing (and the most lines in a CAPA
/// answer); beyond this the server is hostile or broken.
pub const MAX_MESSAGES: usize = 2_000_000;

/// The most bytes a multi-line listing (UIDL, LIST, CAPA) may take on the wire. Each entry is
/// kept in memory, so a count of lines alone does not bound memory: a million UIDL lines of
/// 512 octets would be half a gigabyte. Real listings run at 20-80 bytes a message, so this
/// still admits about a million messages.
pub const MAX_LISTING_BYTES: usize = 64 << 20;

/// The slowest a response may arrive, in bytes a second, beyond the timeout: a server that
/// drips a byte at a time (each read within the socket timeout) is still cut off after about
/// the timeout, while a slow link delivering a big message is not.
pub const MIN_RATE: u64 = 1024;

/// Size of the read buffer; large enough that one read drains several TLS records.
const READ_BUF: usize = 128 * 1024;

/// Marker: before login.
#[derive(Debug)]
pub enum Authorization {}
/// Marker: logged in.
#[derive(Debug)]
pub enum Transaction {}

/// A POP3 session in protocol state `St`.
#[derive(Debug)]
pub struct Session<S, St> {
    conn: Conn<S>,
    greeting: Vec<u8>,
    _state: PhantomData<St>,
}

/// The connection: the stream, the read buffer and the queue of unsent commands.
#[derive(Debug)]
struct Conn<S> {
    stream: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    /// How long one status line may take in total (the socket's own timeout bounds each
    /// read; this bounds a server that drips a byte at a time).
    line_deadline: Duration,
    /// Name of the server for error messages.
    host: String,
    /// When the response being read began, and how many bytes of it have arrived since:
    /// the response must keep up [`MIN_RATE`] after the first `line_deadline`.
    response_started: Instant,
    response_bytes: u64,
}

impl<S: Read + Write> Conn<S> {
    fn new(stream: S, host: &str, timeout: Duration) -> Conn<S> {
        Conn {
            stream,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            out: Vec::with_capacity(4096),
            line_deadline: timeout,
            host: host.to_owned(),
            response_started: Instant::now(),
            response_bytes: 0,
        }
    }

    /// A new response starts: restart its clock.
    fn start_response(&mut self) {
        self.response_started = Instant::now();
        self.response_bytes = 0;
    }

    /// Read more bytes into the buffer; 0 bytes read (EOF) is an error, and so is a response
    /// that arrives slower than [`MIN_RATE`] once the timeout has passed.
    fn fill(&mut self) -> Result<()> {
        // Saturating: a timeout near Duration::MAX must not overflow (and panic) here.
        let allowed = self
            .line_deadline
            .saturating_add(Duration::from_secs(self.response_bytes / MIN_RATE));
        if self.response_started.elapsed() > allowed {
            return Err(Error::new(
                ErrorKind::Temporary,
                format!(
                    "timed out: {} is answering too slowly ({} bytes in {}s)",
                    self.host,
                    self.response_bytes,
                    self.response_started.elapsed().as_secs()
                ),
            ));
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Temporary,
                        format!("{} closed the connection unexpectedly", self.host),
                    ));
                }
                Ok(n) => {
                    self.end += n;
                    self.response_bytes += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e, "reading from")),
            }
        }
    }

    fn io_error(&self, e: io::Error, doing: &str) -> Error {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::new(
                ErrorKind::Temporary,
                format!(
                    "timed out {doing} {}: no progress within {}s",
                    self.host,
                    self.line_deadline.as_secs()
                ),
            ),
            io::ErrorKind::UnexpectedEof => Error::new(
                ErrorKind::Temporary,
                format!("{} closed the connection unexpectedly", self.host),
            ),
            io::ErrorKind::InvalidData => {
                let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                if let Some(rustls::Error::AlertReceived(alert)) = tls {
                    // E.g. TLS 1.3 servers reject a missing client certificate only after
                    // the client thinks the handshake is done.
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("{} ended the TLS session: {alert:?}", self.host),
                    )
                } else {
                    Error::with_source(
                        ErrorKind::Protocol,
                        format!("TLS error {doing} {}", self.host),
                        e,
                    )
                }
            }
            _ => Error::with_source(
                ErrorKind::Temporary,
                format!("connection to {} failed while {doing} it", self.host),
                e,
            ),
        }
    }

    /// The next line without its line end, bounded by MAX_LINE and by the line deadline.
    fn read_line(&mut self) -> Result<&[u8]> {
        let started = Instant::now();
        let mut scanned = 0;
        loop {
            if let Some(n) = find_eol(&self.buf[self.start + scanned..self.end]) {
                let line_start = self.start;
                let line_end = self.start + scanned + n;
                self.start = line_end;
                return Ok(strip_eol(&self.buf[line_start..line_end]));
            }
            scanned = self.end - self.start;
            if scanned >= MAX_LINE {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "{} sent a line longer than {MAX_LINE} bytes where a short one was due",
                        self.host
                    ),
                ));
            }
            if started.elapsed() > self.line_deadline {
                return Err(Error::new(
                    ErrorKind::Temporary,
                    format!(
                        "timed out: {} did not finish a line within {}s",
                        self.host,
                        self.line_deadline.as_secs()
                    ),
                ));
            }
            self.fill()?;
        }
    }

    /// Bytes received but not yet consumed.
    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Queue a command (not yet written).
    fn queue(&mut self, cmd: &Command) -> Result<()> {
        debug!(target: "pop3::wire", "C: {}", cmd.trace());
        cmd.encode(&mut self.out).map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                format!("cannot send {}", cmd.keyword()),
                e,
            )
        })
    }

    /// Write every queued command.
    fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self
            .stream
            .write_all(&self.out)
            .and_then(|()| self.stream.flush());
        // Overwrite secrets in the queue before the buffer is reused or freed.
        self.out.fill(0);
        self.out.clear();
        result.map_err(|e| self.io_error(e, "writing to"))
    }
}

/// A status line as an owned value (the borrowed [`Response`] cannot outlive the buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    pub code: Option<RespCode>,
    pub text: Vec<u8>,
}

impl From<Response<'_>> for Reply {
    fn from(r: Response<'_>) -> Reply {
        Reply {
            ok: r.status == Status::Ok,
            code: r.code,
            text: r.text.to_vec(),
        }
    }
}

/// What a `-ERR` means when it carries no response code: the caller's choice, per command.
fn err_reply(host: &str, what: &str, reply: &Reply, plain: ErrorKind) -> Error {
    let (kind, advice) = match reply.code {
        Some(RespCode::InUse) => (
            ErrorKind::Temporary,
            " (the mailbox is in use by another session; try again later)",
        ),
        Some(RespCode::LoginDelay) => (
            ErrorKind::Temporary,
            " (the server limits how often you may log in; try again later)",
        ),
        Some(RespCode::SysTemp) => (
            ErrorKind::Temporary,
            " (a temporary problem on the server; try again later)",
        ),
        Some(RespCode::SysPerm) => (
            ErrorKind::Unavailable,
            " (a permanent problem on the server; contact its administrator)",
        ),
        Some(RespCode::Auth) => (ErrorKind::Auth, " (check the user name and password)"),
        _ => (plain, ""),
    };
    Error::new(
        kind,
        format!(
            "{host} refused {what}: -ERR {}{advice}",
            sanitize(&reply.text)
        ),
    )
}

impl<S: Read + Write, St> Session<S, St> {
    /// The greeting's text (untrusted).
    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    /// The underlying stream.
    pub fn stream(&self) -> &S {
        &self.conn.stream
    }

    /// Bytes received but not yet read by the session.
    pub fn buffered(&self) -> usize {
        self.conn.buffered()
    }

    /// The host name used in messages.
    pub fn host(&self) -> &str {
        &self.conn.host
    }

    /// Read one status line.
    pub fn read_reply(&mut self) -> Result<Reply> {
        self.conn.start_response();
        let host = self.conn.host.clone();
        let line = self.conn.read_line()?;
        debug!(target: "pop3::wire", "S: {}", sanitize(line));
        match parse_status(line) {
            Ok(r) => Ok(r.into()),
            Err(e) => Err(Error::with_source(
                ErrorKind::Protocol,
                format!(
                    "{host} sent something that is not a POP3 status line: {}",
                    sanitize(line)
                ),
                e,
            )),
        }
    }

    /// Read a status line and require `+OK`; `-ERR` becomes an error of kind `plain` unless
    /// its response code says otherwise.
    pub fn read_ok(&mut self, what: &str, plain: ErrorKind) -> Result<Vec<u8>> {
        let reply = self.read_reply()?;
        if reply.ok {
            Ok(reply.text)
        } else {
            Err(err_reply(&self.conn.host, what, &reply, plain))
        }
    }

    /// Send one command and wait for `+OK`.
    fn command(&mut self, cmd: &Command, plain: ErrorKind) -> Result<Vec<u8>> {
        self.conn.queue(cmd)?;
        self.conn.flush()?;
        self.read_ok(cmd.keyword(), plain)
    }

    /// Read the lines of a multi-line body, calling `each` with every unstuffed line.
    fn read_lines(&mut self, what: &str, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let host = self.conn.host.clone();
        let mut count = 0usize;
        let mut bytes = 0usize;
        loop {
            let line = self.conn.read_line()?;
            // The line end counts too: a listing of empty lines is bounded as well.
            bytes = bytes.saturating_add(line.len() + 2);
            let Some(line) = unstuff_line(line) else {
                return Ok(());
            };
            count += 1;
            if count > MAX_MESSAGES {
                return Err(Error::new(
                    ErrorKind::BadData,
                    format!("{host} sent more than {MAX_MESSAGES} lines in answer to {what}"),
                ));
            }
            if bytes > MAX_LISTING_BYTES {
                return Err(Error::new(
                    ErrorKind::BadData,
                    format!(
                        "{host} sent more than {} MiB in answer to {what}; refusing to hold \
                         a listing that large in memory",
                        MAX_LISTING_BYTES >> 20
                    ),
                ));
            }
            each(line)?;
        }
    }

    /// CAPA (RFC 2449). A server without CAPA (`-ERR`) has no optional capabilities.
    pub fn capa(&mut self) -> Result<Capabilities> {
        self.conn.queue(&Command::Capa)?;
        self.conn.flush()?;
        self.read_capa()
    }

    /// Read the answer to a CAPA that was sent earlier (pipelined with other commands).
    pub fn read_capa(&mut self) -> Result<Capabilities> {
        let reply = self.read_reply()?;
        let mut caps = Capabilities::default();
        if !reply.ok {
            return Ok(caps);
        }
        self.read_lines("CAPA", |line| {
            caps.add_line(line);
            Ok(())
        })?;
        Ok(caps)
    }

    fn into_state<T>(self) -> Session<S, T> {
        Session {
            conn: self.conn,
            greeting: self.greeting,
            _state: PhantomData,
        }
    }
}

impl<S: Read + Write> Session<S, Authorization> {
    /// Read the greeting of a fresh connection.
    pub fn connect(stream: S, host: &str, timeout: Duration) -> Result<Self> {
        let mut session = Session {
            conn: Conn::new(stream, host, timeout),
            greeting: Vec::new(),
            _state: PhantomData,
        };
        let greeting = session.read_ok("the connection", ErrorKind::Unavailable)?;
        session.greeting = greeting;
        Ok(session)
    }

    /// Continue on a stream that has just been upgraded by STLS: there is no new greeting
    /// (RFC 2595 section 4) and nothing from before the upgrade is kept.
    pub fn resume(stream: S, host: &str, timeout: Duration, greeting: Vec<u8>) -> Self {
        Session {
            conn: Conn::new(stream, host, timeout),
            greeting,
            _state: PhantomData,
        }
    }

    /// Send STLS and, on `+OK`, give back the raw stream for the TLS handshake.
    ///
    /// Any byte buffered after the `+OK` is an error: it arrived before encryption and could
    /// be injected by an attacker (RFC 2595 section 4; the STARTTLS command-injection bugs).
    pub fn stls(mut self) -> Result<(S, Vec<u8>)> {
        self.conn.queue(&Command::Stls)?;
        self.conn.flush()?;
        self.read_ok("STLS", ErrorKind::Unavailable)?;
        if self.conn.buffered() != 0 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} sent {} unexpected bytes after accepting STLS; refusing to continue \
                     (someone may be tampering with the connection)",
                    self.conn.host,
                    self.conn.buffered()
                ),
            ));
        }
        Ok((self.conn.stream, self.greeting))
    }

    /// USER/PASS (RFC 1939 section 7). The caller has checked that the connection is
    /// encrypted or that the account allows a cleartext password.
    ///
    /// With `pipelining` (the server listed PIPELINING in its CAPA) USER and PASS go out in
    /// one flight and both answers are read: one round trip instead of two. Nothing is ever
    /// pipelined behind PASS (Courier drops such commands).
    pub fn login_user_pass(
        mut self,
        user: &str,
        password: &Secret,
        pipelining: bool,
    ) -> std::result::Result<Session<S, Transaction>, LoginFailed<S>> {
        if pipelining {
            let sent = self
                .conn
                .queue(&Command::User(user))
                .and_then(|()| self.conn.queue(&Command::Pass(password.expose())))
                .and_then(|()| self.conn.flush());
            if let Err(e) = sent {
                return Err(Box::new((e, self)));
            }
            let user_ok = self.read_ok("USER", ErrorKind::Auth);
            let pass_ok = self.read_ok("PASS", ErrorKind::Auth);
            return match user_ok.and(pass_ok) {
                Ok(_) => Ok(self.into_state()),
                Err(e) => Err(Box::new((e, self))),
            };
        }
        if let Err(e) = self.command(&Command::User(user), ErrorKind::Auth) {
            return Err(Box::new((e, self)));
        }
        match self.command(&Command::Pass(password.expose()), ErrorKind::Auth) {
            Ok(_) => Ok(self.into_state()),
            Err(e) => Err(Box::new((e, self))),
        }
    }

    /// APOP (RFC 1939 section 7) with a digest the caller computed from the greeting.
    pub fn login_apop(
        mut self,
        user: &str,
        digest: &str,
    ) -> std::result::Result<Session<S, Transaction>, LoginFailed<S>> {
        match self.command(&Command::Apop(user, digest), ErrorKind::Auth) {
            Ok(_) => Ok(self.into_state()),
            Err(e) => Err(Box::new((e, self))),
        }
    }

    /// A SASL exchange (RFC 5034 section 4) driven by `sasl`. Each step waits for the
    /// server: nothing is pipelined behind AUTH (Cyrus drops such commands).
    pub fn login_sasl(
        mut self,
        sasl: &mut dyn SaslClient,
    ) -> std::result::Result<Session<S, Transaction>, LoginFailed<S>> {
        match self.sasl_exchange(sasl) {
            Ok(()) => Ok(self.into_state()),
            Err(e) => Err(Box::new((e, self))),
        }
    }

    fn sasl_exchange(&mut self, sasl: &mut dyn SaslClient) -> Result<()> {
        let name = sasl.mechanism().sasl_name().ok_or_else(|| {
            Error::new(ErrorKind::Internal, "login_sasl with a non-SASL mechanism")
        })?;
        let initial = sasl.initial_response().map(|bytes| {
            if bytes.is_empty() {
                // RFC 5034 section 4: "=" is an empty initial response.
                "=".to_owned()
            } else {
                BASE64.encode(bytes)
            }
        });
        // RFC 5034 section 4: a command line may not exceed 255 octets; a longer initial
        // response (an OAuth token, typically) is sent as the answer to the first, empty
        // challenge instead. Microsoft 365 requires exactly that form for XOAUTH2.
        let (inline, mut deferred) = match initial {
            Some(b64) if b64.len() + name.len() + 7 > 255 => (None, Some(b64)),
            other => (other, None),
        };
        self.conn.queue(&Command::Auth(name, inline.as_deref()))?;
        self.conn.flush()?;
        let host = self.conn.host.clone();
        // A bound on the rounds: no mechanism here needs more than three.
        for _ in 0..8 {
            self.conn.start_response();
            let line = self.conn.read_line()?;
            debug!(target: "pop3::wire", "S: {}", sanitize(line));
            if let Some(payload) = parse_continuation(line) {
                if let Some(b64) = deferred.take() {
                    self.conn.queue(&Command::SaslResponse(&b64))?;
                    self.conn.flush()?;
                    continue;
                }
                let answer = match BASE64.decode(payload) {
                    Ok(challenge) => sasl.respond(&challenge).map_err(|e| {
                        Error::with_source(
                            ErrorKind::Auth,
                            format!("{name} login to {host} failed"),
                            e,
                        )
                    }),
                    Err(_) => Err(Error::new(
                        ErrorKind::Protocol,
                        format!("{host} sent a {name} challenge that is not base64"),
                    )),
                };
                match answer {
                    Ok(bytes) => {
                        let encoded = BASE64.encode(bytes);
                        self.conn.queue(&Command::SaslResponse(&encoded))?;
                        self.conn.flush()?;
                    }
                    Err(e) => {
                        // Cancel (RFC 5034 section 4) and report our reason, not the -ERR.
                        self.conn.queue(&Command::SaslResponse("*"))?;
                        self.conn.flush()?;
                        let _ = self.read_reply();
                        return Err(e);
                    }
                }
                continue;
            }
            let reply: Reply = match parse_status(line) {
                Ok(r) => r.into(),
                Err(e) => {
                    return Err(Error::with_source(
                        ErrorKind::Protocol,
                        format!(
                            "{host} sent something that is neither a status nor a challenge during {name}: {}",
                            sanitize(line)
                        ),
                        e,
                    ));
                }
            };
            if reply.ok {
                return sasl.finish().map_err(|e| {
                    Error::with_source(
                        ErrorKind::Auth,
                        format!("{host} accepted the {name} login but did not prove its identity"),
                        e,
                    )
                });
            }
            let mut err = err_reply(&host, &format!("the {name} login"), &reply, ErrorKind::Auth);
            if let Some(detail) = sasl.error_detail() {
                err = Error::new(err.kind(), format!("{} ({})", err.message(), detail));
            }
            return Err(err);
        }
        Err(Error::new(
            ErrorKind::Protocol,
            format!("{host} kept sending {name} challenges; giving up"),
        ))
    }

    /// Close politely before login.
    pub fn quit(mut self) -> Result<()> {
        self.command(&Command::Quit, ErrorKind::Protocol).map(drop)
    }
}

/// A refused login: the error and the session, still in the AUTHORIZATION state.
pub type LoginFailed<S> = Box<(Error, Session<S, Authorization>)>;

/// Decides, for each UIDL line, whether that message goes into the [`Listing`]; an `Err`
/// ends the listing (and the session).
pub type Keep<'a> = &'a mut dyn FnMut(MessageNumber, &Uid) -> Result<bool>;

/// The messages of a listing that the caller kept (see [`Keep`]), and how many the server
/// listed in all. A caller that keeps only what it may act on (new messages, those due for
/// deletion) holds a mailbox of 100 000 seen messages in a few kilobytes.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub messages: Vec<Listed>,
    pub total: usize,
}

/// A message number with its size and unique id, as the server listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub number: MessageNumber,
    pub size: Octets,
    pub uid: Uid,
}

impl<S: Read + Write> Session<S, Transaction> {
    /// STAT: message count and total size.
    pub fn stat(&mut self) -> Result<(u32, Octets)> {
        let text = self.command(&Command::Stat, ErrorKind::Protocol)?;
        parse_stat(&text).map_err(|e| {
            Error::with_source(
                ErrorKind::BadData,
                format!("{} sent a bad STAT answer", self.conn.host),
                e,
            )
        })
    }

    /// CAPA (the capabilities after login) and the listing: all three commands in one flight
    /// when `pipelining` (the server offered PIPELINING before login), else one at a time.
    /// `keep` decides per UIDL line whether the message goes into the listing (see
    /// [`Listing`]).
    pub fn capa_and_listing(
        &mut self,
        pipelining: bool,
        keep: Keep<'_>,
    ) -> Result<(Capabilities, Listing)> {
        if pipelining {
            self.conn.queue(&Command::Capa)?;
            self.send_listing(true)?;
            let caps = self.read_capa()?;
            Ok((caps, self.read_listing(true, keep)?))
        } else {
            let caps = self.capa()?;
            self.send_listing(caps.pipelining)?;
            let listing = self.read_listing(caps.pipelining, keep)?;
            Ok((caps, listing))
        }
    }

    /// UIDL and LIST for every message, in one flight when `pipelining`, joined by message
    /// number. Duplicate message numbers or duplicate UIDLs are rejected (ErrorKind::BadData):
    /// with a repeated UIDL we could not tell which message was delivered.
    pub fn listing(&mut self, pipelining: bool) -> Result<Vec<Listed>> {
        self.send_listing(pipelining)?;
        Ok(self
            .read_listing(pipelining, &mut |_, _| Ok(true))?
            .messages)
    }

    /// Queue UIDL (and LIST too with `pipelining`) and write everything queued, so that a
    /// CAPA queued before goes out in the same flight.
    fn send_listing(&mut self, pipelining: bool) -> Result<()> {
        self.conn.queue(&Command::Uidl(None))?;
        if pipelining {
            self.conn.queue(&Command::List(None))?;
        }
        self.conn.flush()
    }

    /// Read the answers to [`Session::send_listing`] (sending LIST only now without
    /// `pipelining`) and join them; see [`Session::listing`].
    fn read_listing(&mut self, pipelining: bool, keep: Keep<'_>) -> Result<Listing> {
        let host = self.conn.host.clone();
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::BadData,
                format!("{host} sent a bad {what} line: {e}"),
            )
        };
        let reply = self.read_reply()?;
        if !reply.ok {
            if pipelining {
                // Drain the LIST answer so the connection stays in step.
                if self.read_reply()?.ok {
                    self.read_lines("LIST", |_| Ok(()))?;
                }
            }
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{host} does not support UIDL (-ERR {}); pop3 needs it to know which \
                     messages it has already fetched",
                    sanitize(&reply.text)
                ),
            ));
        }
        let mut uids: Vec<(MessageNumber, Uid)> = Vec::new();
        let mut total = 0usize;
        self.read_lines("UIDL", |line| {
            let (number, uid) = parse_uidl_line(line).map_err(|e| bad("UIDL", &e))?;
            total += 1;
            if keep(number, &uid)? {
                uids.push((number, uid));
            }
            Ok(())
        })?;
        if !pipelining {
            self.conn.queue(&Command::List(None))?;
            self.conn.flush()?;
        }
        self.read_ok("LIST", ErrorKind::Protocol)?;
        uids.sort_by_key(|(n, _)| *n);
        // Only the sizes of the messages kept are held; the others are counted.
        let mut sizes: Vec<(MessageNumber, Octets)> = Vec::with_capacity(uids.len());
        let mut listed = 0usize;
        self.read_lines("LIST", |line| {
            let (number, size) = parse_list_line(line).map_err(|e| bad("LIST", &e))?;
            listed += 1;
            if uids.binary_search_by_key(&number, |(n, _)| *n).is_ok() {
                sizes.push((number, size));
            }
            Ok(())
        })?;
        if listed != total {
            return Err(Error::new(
                ErrorKind::BadData,
                format!("{host} listed different messages in UIDL ({total}) and LIST ({listed})"),
            ));
        }
        Ok(Listing {
            messages: join_listing(&host, uids, sizes)?,
            total,
        })
    }

    /// Read the answer to a DELE sent earlier: `Ok(Err(reply))` when the server refused it
    /// (the connection stays in step). The deletion takes effect only once QUIT succeeds.
    pub fn read_dele(&mut self) -> Result<std::result::Result<(), Reply>> {
        let reply = self.read_reply()?;
        Ok(if reply.ok { Ok(()) } else { Err(reply) })
    }

    /// Read the answer to a RETR or TOP that was sent earlier and stream the decoded message
    /// (LF line endings, dot-unstuffed) into `sink`. A `-ERR` answer is an error here; see
    /// [`Session::read_body_or_refusal`] to handle it. On any error the connection is no
    /// longer in step and must be dropped.
    pub fn read_body(
        &mut self,
        what: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64> {
        match self.read_body_or_refusal(what, limit, sink)? {
            Ok(n) => Ok(n),
            Err(reply) => Err(err_reply(
                &self.conn.host,
                what,
                &reply,
                ErrorKind::Protocol,
            )),
        }
    }

    /// Like [`Session::read_body`], but a `-ERR` answer (a message that vanished, say) comes
    /// back as `Ok(Err(reply))` with the connection still in step.
    ///
    /// `limit` bounds the decoded size: a body that grows beyond it is a server that lies
    /// (ErrorKind::BadData). Time is bounded too: after the timeout the body must keep
    /// arriving at [`MIN_RATE`] bytes a second, so a server that drips a byte at a time
    /// cannot hold the session for ever (each read also has the socket timeout).
    pub fn read_body_or_refusal(
        &mut self,
        what: &str,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<std::result::Result<u64, Reply>> {
        let reply = self.read_reply()?;
        if !reply.ok {
            return Ok(Err(reply));
        }
        let mut decoder = Decoder::new();
        let mut sink_error = None;
        loop {
            let chunk = &self.conn.buf[self.conn.start..self.conn.end];
            let consumed = decoder.feed(chunk, &mut |bytes: &[u8]| {
                sink(bytes).map_err(|e| {
                    sink_error = Some(e);
                })
            });
            let consumed = match consumed {
                Ok(n) => n,
                Err(()) => {
                    let e = sink_error
                        .take()
                        .unwrap_or_else(|| io::Error::other("the delivery failed"));
                    return Err(Error::with_source(
                        ErrorKind::Io,
                        format!("cannot deliver the message ({what})"),
                        e,
                    ));
                }
            };
            self.conn.start += consumed;
            if decoder.output_len() > limit {
                return Err(Error::new(
                    ErrorKind::BadData,
                    format!(
                        "{} sent more than {limit} bytes for {what}; its LIST size is far off",
                        self.conn.host
                    ),
                ));
            }
            if decoder.is_done() {
                return Ok(Ok(decoder.output_len()));
            }
            self.conn.fill()?;
        }
    }

    /// NOOP (RFC 1939 section 5): keeps an idle session alive while a slow delivery runs.
    /// Sent alone and waited for: the caller must have nothing else in flight, so that the
    /// answer read is the NOOP's.
    pub fn noop(&mut self) -> Result<()> {
        self.command(&Command::Noop, ErrorKind::Protocol).map(drop)
    }

    /// QUIT: ends the session; deletions take effect only when this returns `Ok`
    /// (RFC 1939 section 6, the UPDATE state).
    pub fn quit(mut self) -> Result<()> {
        self.command(&Command::Quit, ErrorKind::Protocol).map(drop)
    }

    /// QUIT without waiting for the answer, for a session that marked nothing for
    /// deletion: nothing depends on the UPDATE state then, and the round trip is saved.
    /// Every answer before it must have been read (the caller has drained its window).
    pub fn quit_without_waiting(mut self) -> Result<()> {
        self.conn.queue(&Command::Quit)?;
        self.conn.flush()
    }
}

/// A command of the TRANSACTION state that a [`Window`] keeps in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Retr(MessageNumber),
    /// TOP with this many body lines.
    Top(MessageNumber, u32),
    Dele(MessageNumber),
}

impl Op {
    fn command(self) -> Command<'static> {
        match self {
            Op::Retr(n) => Command::Retr(n),
            Op::Top(n, lines) => Command::Top(n, lines),
            Op::Dele(n) => Command::Dele(n),
        }
    }
}

/// Commands in flight at once when the server offers PIPELINING: enough that a mailbox of
/// up to this many messages goes out in one flight (no round trip lost to a refill). Each
/// command is ~12 bytes, so the window (about 24 KiB) fits in the socket buffers and cannot
/// deadlock against a server that stops reading while we do not read (RFC 2449 section 6.6).
pub const PIPELINE_WINDOW: usize = 2048;

/// A pipelining window (RFC 2449 section 6.6): commands in flight, each with the caller's
/// tag, answered in order. Without PIPELINING it holds one command at a time.
#[derive(Debug)]
pub struct Window<T> {
    size: usize,
    in_flight: std::collections::VecDeque<(Op, T)>,
}

impl<T> Window<T> {
    /// A window for a server that offers PIPELINING (`pipelining`) or not.
    pub fn new(pipelining: bool) -> Window<T> {
        Window {
            size: if pipelining { PIPELINE_WINDOW } else { 1 },
            in_flight: std::collections::VecDeque::new(),
        }
    }

    /// Once the window has drained to half (or, without pipelining, is empty), fill it from
    /// `next` and write the new commands in one flight (one TLS record rather than one per
    /// message). Returns how many commands were sent.
    pub fn top_up<S: Read + Write>(
        &mut self,
        session: &mut Session<S, Transaction>,
        mut next: impl FnMut() -> Option<(Op, T)>,
    ) -> Result<usize> {
        let mut sent = 0;
        if self.size == 1 || self.in_flight.len() <= self.size / 2 {
            while self.in_flight.len() < self.size {
                let Some((op, tag)) = next() else { break };
                session.conn.queue(&op.command())?;
                self.in_flight.push_back((op, tag));
                sent += 1;
            }
        }
        session.conn.flush()?;
        Ok(sent)
    }

    /// The command whose answer comes next; the caller reads it from the session.
    pub fn next_answer(&mut self) -> Option<(Op, T)> {
        self.in_flight.pop_front()
    }

    /// The commands in flight, oldest first.
    pub fn in_flight(&self) -> impl Iterator<Item = &(Op, T)> {
        self.in_flight.iter()
    }
}

/// Join UIDL and LIST answers by message number, rejecting repeats and mismatches.
fn join_listing(
    host: &str,
    mut uids: Vec<(MessageNumber, Uid)>,
    mut sizes: Vec<(MessageNumber, Octets)>,
) -> Result<Vec<Listed>> {
    let bad = |msg: String| Error::new(ErrorKind::BadData, format!("{host} {msg}"));
    uids.sort_by_key(|(n, _)| *n);
    sizes.sort_by_key(|(n, _)| *n);
    if uids.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(bad("listed a message number twice in UIDL".into()));
    }
    if sizes.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(bad("listed a message number twice in LIST".into()));
    }
    {
        let mut seen: Vec<&Uid> = uids.iter().map(|(_, u)| u).collect();
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!(
                "gave two messages the same UIDL {}; refusing to guess which one was fetched",
                w[0]
            )));
        }
    }
    if uids.len() != sizes.len() || uids.iter().zip(&sizes).any(|(a, b)| a.0 != b.0) {
        return Err(bad(format!(
            "listed different messages in UIDL ({}) and LIST ({})",
            uids.len(),
            sizes.len()
        )));
    }
    Ok(uids
        .into_iter()
        .zip(sizes)
        .map(|((number, uid), (_, size))| Listed { number, size, uid })
        .collect())
}

#[cfg(test)]
mod tests;
