//! Delivery through an LMTP server (Dovecot, Cyrus: RFC 2033) or an SMTP server (the local
//! MTA, as fetchmail does: RFC 5321). LMTP is SMTP with LHLO instead of EHLO and one reply
//! per recipient after the message, so one client speaks both.
//!
//! As for an MDA, the message is first spooled into an unlinked temporary file; the server
//! is contacted only in `commit`, with the message complete, so a dropped POP3 connection
//! can never hand it a truncated message. One connection per message: LHLO/EHLO, MAIL FROM,
//! every RCPT TO (pipelined when the server offers PIPELINING), then DATA only when every
//! recipient was accepted, the message (CRLF line ends, dot-stuffed), and the replies.
//!
//! What counts as delivered (DESIGN.md invariant 1): every reply after the message's end is
//! 2xx; only then does `commit` return `Ok` and the engine record the UIDL. Anything else
//! leaves the message unrecorded on the server:
//!
//! * a refused RCPT (4xx or 5xx): no DATA at all (RSET), so no recipient gets the message
//!   and a later run cannot duplicate it for some of them;
//! * 4xx ("try later"): an error of kind `Temporary` (exit 75) for this message only; the
//!   session goes on with the others ([`Error::for_this_message`]);
//! * 5xx (refused): an error of kind `Io` (exit 74) for this message only. The message is
//!   never deleted on the server; what to do with it is the user's decision;
//! * LMTP, several recipients, some 2xx and some not after the message: the message stays
//!   unrecorded and the error says which recipients accepted it. A later run delivers it
//!   again to all of them (a duplicate for those that accepted): a copy too many is
//!   recoverable, a lost one is not;
//! * a connection that drops, a timeout, or replies that are not SMTP (a non-numeric code,
//!   a line or a reply too long): a session error, nothing recorded, nothing deleted.
//!
//! SMTP AUTH (RFC 4954), when `deliver.auth_user` is set: after EHLO (and STARTTLS), PLAIN
//! (RFC 4616) when the server offers it, else LOGIN; never outside TLS unless
//! `deliver.auth_plaintext`. The password is never logged (`-vv` shows `AUTH PLAIN ***`)
//! nor put in an error. A refused AUTH (535 and any other 5xx) is a delivery failure, exit
//! 74, but of the session, not of one message: every message would be refused the same
//! way, and retrying the login once per message could lock the relay account. So the
//! account's run stops there, nothing recorded, nothing deleted; a 4xx (454) is `Temporary`
//! (75). It is not exit 77, which means the POP3 login failed.
//!
//! Replies are bounded: [`MAX_REPLY_LINE`] bytes a line, [`MAX_REPLY_LINES`] lines a reply.
//! While waiting for a reply the caller's `tick` runs about every keep-alive interval, so
//! that the POP3 session survives a server that filters for minutes before it answers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use log::debug;

use super::envelope::NO_SENDER;
use super::spool::Spool;
use super::{Envelope, Pending, Sink};
use crate::config::{Endpoint, Relay};
use crate::error::{Error, ErrorKind, Result};
use crate::net::Stream;
use crate::proto::auth::Mechanism;
use crate::proto::sanitize::sanitize;
use crate::secret::Secret;

/// The longest reply line accepted, CRLF included (RFC 5321 section 4.5.3.1.5 says 512;
/// real servers write longer texts).
pub const MAX_REPLY_LINE: usize = 4096;

/// The most lines one reply may have (an EHLO answer has one per extension).
pub const MAX_REPLY_LINES: usize = 100;

/// The spool's buffer, and the size of each write of the message to the server.
const BUFFER: usize = 64 * 1024;

/// LMTP (LHLO, a reply per recipient after the message) or SMTP (EHLO, one reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Lmtp,
    Smtp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Lmtp => "LMTP",
            Protocol::Smtp => "SMTP",
        }
    }
}

/// Delivery to an LMTP or SMTP server, one connection per message.
#[derive(Debug)]
pub struct Smtp {
    protocol: Protocol,
    relay: Relay,
    /// The name we give in LHLO/EHLO.
    local_host: String,
    /// The password for `relay.auth`, obtained when the sink was opened.
    password: Option<Secret>,
}

impl Smtp {
    /// A sink that hands each message to the server `relay` names.
    pub fn new(protocol: Protocol, relay: Relay) -> Smtp {
        Smtp {
            protocol,
            relay,
            local_host: helo_name(&crate::fsutil::hostname()),
            password: None,
        }
    }

    /// The same sink with the password for `relay.auth` (SMTP AUTH).
    pub fn with_password(mut self, password: Secret) -> Smtp {
        self.password = Some(password);
        self
    }

    /// `LMTP server unix:/run/dovecot/lmtp`, for messages.
    fn describe(&self) -> String {
        format!("{} server {}", self.protocol.name(), self.relay.endpoint)
    }
}

/// Our host name as LHLO/EHLO takes it: a domain made of letters, digits, `-` and `.`;
/// anything else becomes `localhost`.
fn helo_name(host: &str) -> String {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        host.to_owned()
    } else {
        "localhost".to_owned()
    }
}

impl Sink for Smtp {
    fn begin(&mut self, envelope: &Envelope<'_>) -> Result<Box<dyn Pending + '_>> {
        Ok(Box::new(SmtpPending {
            sink: self,
            uid: envelope.uid.to_string(),
            spool: Spool::new()?,
        }))
    }

    /// A server may filter for minutes before it answers: keep the session alive.
    fn slow_commit(&self) -> bool {
        true
    }
}

/// One message on its way: spooled until `commit` talks to the server.
struct SmtpPending<'a> {
    sink: &'a Smtp,
    uid: String,
    spool: Spool,
}

impl Write for SmtpPending<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.spool.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.spool.flush()
    }
}

impl Pending for SmtpPending<'_> {
    fn commit(self: Box<Self>) -> Result<()> {
        (*self).deliver(None, &mut || {})
    }

    fn commit_ticking(self: Box<Self>, every: Duration, tick: &mut dyn FnMut()) -> Result<()> {
        (*self).deliver(Some(every), tick)
    }
}

impl SmtpPending<'_> {
    fn deliver(self, every: Option<Duration>, tick: &mut dyn FnMut()) -> Result<()> {
        let sink = self.sink;
        let sender = envelope_sender(&self.spool.sender());
        let eight_bit = self.spool.eight_bit();
        let mut file = self.spool.finish()?;
        let mut client = Client::connect(sink, every, tick)?;
        let result = client.transaction(&sender, eight_bit, &self.uid, &mut file);
        // QUIT is a courtesy: the outcome is already decided.
        client.quit();
        result
    }
}

/// The reverse path for MAIL FROM: the `Return-Path:` address when it is safe on a command
/// line (printable ASCII, no `<`, `>`, space or `"`... the sniffer already refuses most),
/// else the null sender `<>`, as for a bounce.
fn envelope_sender(sniffed: &str) -> String {
    let safe = sniffed != NO_SENDER
        && !sniffed.is_empty()
        && sniffed.len() <= 256
        && sniffed
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'));
    if safe {
        sniffed.to_owned()
    } else {
        String::new()
    }
}

/// One parsed reply: its code and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<Vec<u8>>,
}

impl Reply {
    fn class(&self) -> u16 {
        self.code / 100
    }

    /// `550 5.1.1 no such user`, sanitised, the lines joined by ` / `.
    pub fn shown(&self) -> String {
        let text: Vec<String> = self.lines.iter().map(|l| sanitize(l)).collect();
        format!("{} {}", self.code, text.join(" / "))
            .trim_end()
            .to_owned()
    }
}

/// One reply line: (code, is the last line, text). Pure; `Err` names what is wrong.
pub fn parse_reply_line(line: &[u8]) -> std::result::Result<(u16, bool, &[u8]), &'static str> {
    let digits = line.get(..3).ok_or("a reply line shorter than its code")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err("a reply that does not start with a three-digit code");
    }
    if !(b'2'..=b'5').contains(&digits[0]) {
        return Err("a reply code outside 2xx-5xx");
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, true, b"")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err("a reply code followed by neither space nor hyphen"),
    }
}

/// The connection to the server.
enum Wire {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// After STARTTLS; the TCP socket is kept to set its timeouts.
    Tls(Box<Stream>, TcpStream),
}

impl Wire {
    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Wire::Tcp(s) | Wire::Tls(_, s) => s.set_read_timeout(t),
            Wire::Unix(s) => s.set_read_timeout(t),
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.read(buf),
            Wire::Unix(s) => s.read(buf),
            Wire::Tls(s, _) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.write(buf),
            Wire::Unix(s) => s.write(buf),
            Wire::Tls(s, _) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.flush(),
            Wire::Unix(s) => s.flush(),
            Wire::Tls(s, _) => s.flush(),
        }
    }
}

/// What LHLO/EHLO announced.
#[derive(Debug, Default)]
struct Extensions {
    pipelining: bool,
    eight_bit_mime: bool,
    smtputf8: bool,
    starttls: bool,
    auth_plain: bool,
    auth_login: bool,
}

impl Extensions {
    fn from_reply(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        // The first line is the server's greeting text, the others one extension each.
        for line in reply.lines.iter().skip(1) {
            let line = line.to_ascii_uppercase();
            // `AUTH PLAIN LOGIN`, or the pre-standard `AUTH=PLAIN LOGIN` some servers add.
            let mut words = line.split(|&b| b == b' ' || b == b'=');
            match words.next().unwrap_or_default() {
                b"PIPELINING" => ext.pipelining = true,
                b"8BITMIME" => ext.eight_bit_mime = true,
                b"SMTPUTF8" => ext.smtputf8 = true,
                b"STARTTLS" => ext.starttls = true,
                b"AUTH" => {
                    for mech in words {
                        match mech {
                            b"PLAIN" => ext.auth_plain = true,
                            b"LOGIN" => ext.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

/// A client for one message.
struct Client<'a> {
    sink: &'a Smtp,
    wire: Wire,
    /// Read buffer: bytes received but not yet consumed.
    buf: Vec<u8>,
    every: Option<Duration>,
    tick: &'a mut dyn FnMut(),
    ext: Extensions,
}

impl<'a> Client<'a> {
    /// Connect, read the greeting, LHLO/EHLO (and STARTTLS when configured).
    fn connect(
        sink: &'a Smtp,
        every: Option<Duration>,
        tick: &'a mut dyn FnMut(),
    ) -> Result<Client<'a>> {
        let timeout = sink.relay.timeout;
        let wire = match &sink.relay.endpoint {
            Endpoint::Tcp { host, port } => Wire::Tcp(crate::net::connect(host, *port, timeout)?),
            Endpoint::Unix(path) => {
                let s = UnixStream::connect(path).map_err(|e| {
                    Error::with_source(
                        ErrorKind::Temporary,
                        format!("cannot connect to {}", sink.describe()),
                        e,
                    )
                })?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| Error::with_source(ErrorKind::Io, "cannot set a timeout", e))?;
                Wire::Unix(s)
            }
        };
        let mut client = Client {
            sink,
            wire,
            buf: Vec::new(),
            every,
            tick,
            ext: Extensions::default(),
        };
        let greeting = client.read_reply(timeout)?;
        if greeting.code != 220 {
            return Err(client.refusal("the connection", &greeting));
        }
        client.hello()?;
        if sink.relay.starttls {
            client.starttls()?;
            client.hello()?;
        }
        if sink.relay.auth.is_some() {
            client.authenticate()?;
        }
        Ok(client)
    }

    /// SMTP AUTH (RFC 4954) with PLAIN, else LOGIN: only inside TLS unless
    /// `deliver.auth_plaintext`. The secret goes only into `send_hidden`.
    fn authenticate(&mut self) -> Result<()> {
        let sink = self.sink;
        let (Some(auth), Some(secret)) = (&sink.relay.auth, &sink.password) else {
            return Err(Error::new(
                ErrorKind::Internal,
                "deliver.auth_user without its password",
            ));
        };
        if !matches!(self.wire, Wire::Tls(..)) && !auth.plaintext {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "refusing to send the deliver.auth_user password to the {} without TLS; \
                     set deliver.starttls = true, or deliver.auth_plaintext = true if you \
                     accept that risk",
                    sink.describe()
                ),
            ));
        }
        let mech = if self.ext.auth_plain {
            Mechanism::Plain
        } else if self.ext.auth_login {
            Mechanism::Login
        } else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{} offers neither AUTH PLAIN nor AUTH LOGIN, which deliver.auth_user \
                     needs",
                    sink.describe()
                ),
            ));
        };
        let name = mech.sasl_name().unwrap_or_default();
        let user = sanitize(auth.user.as_bytes());
        let failed = |why: String| {
            Error::new(
                ErrorKind::Protocol,
                format!("AUTH {name} as {user} at the {}: {why}", sink.describe()),
            )
        };
        let mut sasl = crate::proto::auth::client(mech, &auth.user, secret)
            .ok_or_else(|| failed("not a SASL mechanism".into()))?;
        match sasl.initial_response() {
            Some(ir) => self.send_hidden(
                &format!("AUTH {name} {}\r\n", BASE64.encode(ir)),
                &format!("AUTH {name} ***"),
            )?,
            None => self.send(&format!("AUTH {name}\r\n"))?,
        }
        // PLAIN needs at most one challenge, LOGIN two; a server asking more is broken.
        for _ in 0..4 {
            let reply = self.read_reply(sink.relay.timeout)?;
            match reply.code {
                235 => return sasl.finish().map_err(|e| failed(e.to_string())),
                334 => {
                    let text = reply.lines.first().map(Vec::as_slice).unwrap_or_default();
                    let answer = BASE64
                        .decode(text.trim_ascii())
                        .map_err(|_| failed("a challenge that is not base64".into()))
                        .and_then(|c| sasl.respond(&c).map_err(|e| failed(e.to_string())));
                    match answer {
                        Ok(a) => self.send_hidden(&format!("{}\r\n", BASE64.encode(a)), "***")?,
                        Err(e) => {
                            // RFC 4954 section 4: `*` cancels the exchange.
                            if self.send("*\r\n").is_ok() {
                                let _ = self.read_reply(sink.relay.timeout);
                            }
                            return Err(e);
                        }
                    }
                }
                _ => {
                    return Err(Error::new(
                        kind_of(&reply),
                        format!(
                            "the {} refused AUTH {name} as {user}: {}; check \
                             deliver.auth_user and deliver.auth_password. Nothing was \
                             delivered; the messages stay on the POP3 server",
                            sink.describe(),
                            reply.shown()
                        ),
                    ));
                }
            }
        }
        Err(failed("more challenges than the mechanism has".into()))
    }

    /// LHLO or EHLO; SMTP falls back to HELO for a server without extensions.
    fn hello(&mut self) -> Result<()> {
        let timeout = self.sink.relay.timeout;
        let verb = match self.sink.protocol {
            Protocol::Lmtp => "LHLO",
            Protocol::Smtp => "EHLO",
        };
        let name = self.sink.local_host.clone();
        self.send(&format!("{verb} {name}\r\n"))?;
        let reply = self.read_reply(timeout)?;
        if reply.class() == 2 {
            self.ext = Extensions::from_reply(&reply);
            return Ok(());
        }
        if self.sink.protocol == Protocol::Smtp && reply.class() == 5 {
            self.send(&format!("HELO {name}\r\n"))?;
            let reply = self.read_reply(timeout)?;
            if reply.class() == 2 {
                self.ext = Extensions::default();
                return Ok(());
            }
            return Err(self.refusal("HELO", &reply));
        }
        Err(self.refusal(verb, &reply))
    }

    /// STARTTLS (RFC 3207), then a TLS handshake checked against the system roots or the
    /// account's `tls_ca_file`.
    fn starttls(&mut self) -> Result<()> {
        let Wire::Tcp(tcp) = &self.wire else {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "deliver.starttls is set, but {} is not a TCP address",
                    self.sink.relay.endpoint
                ),
            ));
        };
        let Endpoint::Tcp { host, .. } = &self.sink.relay.endpoint else {
            return Err(Error::new(ErrorKind::Internal, "STARTTLS without TCP"));
        };
        if !self.ext.starttls {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{} does not offer STARTTLS, which deliver.starttls requires",
                    self.sink.describe()
                ),
            ));
        }
        let tcp = tcp
            .try_clone()
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot use the socket", e))?;
        self.send("STARTTLS\r\n")?;
        let reply = self.read_reply(self.sink.relay.timeout)?;
        if reply.code != 220 {
            return Err(self.refusal("STARTTLS", &reply));
        }
        if !self.buf.is_empty() {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} sent bytes after accepting STARTTLS; refusing to continue",
                    self.sink.describe()
                ),
            ));
        }
        let settings = crate::net::tls::TlsSettings {
            ca_file: self.sink.relay.tls_ca_file.clone(),
            ..Default::default()
        };
        let stream = crate::net::tls::client(&settings)?.handshake(
            host,
            tcp.try_clone()
                .map_err(|e| Error::with_source(ErrorKind::Io, "cannot use the socket", e))?,
        )?;
        self.wire = Wire::Tls(Box::new(stream), tcp);
        Ok(())
    }

    /// MAIL, RCPT, DATA, the message, and the replies after it.
    fn transaction(
        &mut self,
        sender: &str,
        eight_bit: bool,
        uid: &str,
        message: &mut File,
    ) -> Result<()> {
        let timeout = self.sink.relay.timeout;
        let recipients = &self.sink.relay.recipients;
        let mut mail = format!("MAIL FROM:<{sender}>");
        if eight_bit && self.ext.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        let non_ascii = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        if non_ascii && self.ext.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        let rcpts: Vec<String> = recipients
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n"))
            .collect();
        // RFC 2920: MAIL and the RCPTs in one flight; DATA only once they are all accepted,
        // so that a refused recipient never gets us a 354 we would have to fill.
        let mut replies = Vec::with_capacity(rcpts.len() + 1);
        if self.ext.pipelining {
            self.send(&(mail + &rcpts.concat()))?;
            for _ in 0..=rcpts.len() {
                replies.push(self.read_reply(timeout)?);
            }
        } else {
            self.send(&mail)?;
            replies.push(self.read_reply(timeout)?);
            if replies[0].class() == 2 {
                for rcpt in &rcpts {
                    self.send(rcpt)?;
                    replies.push(self.read_reply(timeout)?);
                }
            }
        }
        if replies[0].class() != 2 {
            self.reset();
            return Err(self.refusal("MAIL FROM", &replies[0]).for_this_message());
        }
        let refused: Vec<(&String, &Reply)> = recipients
            .iter()
            .zip(&replies[1..])
            .filter(|(_, r)| r.class() != 2)
            .collect();
        if let Some(worst) = worst(refused.iter().map(|(_, r)| *r)) {
            self.reset();
            let each: Vec<String> = refused
                .iter()
                .map(|(who, r)| format!("{} for {}", r.shown(), sanitize(who.as_bytes())))
                .collect();
            return Err(Error::new(
                kind_of(worst),
                format!(
                    "{} refused the recipient(s): {}; the message was delivered to nobody and \
                     stays on the POP3 server",
                    self.sink.describe(),
                    each.join(", ")
                ),
            )
            .for_this_message());
        }
        crate::crashpoint::hit("smtp.data", uid);
        self.send("DATA\r\n")?;
        let go = self.read_reply(timeout)?;
        if go.code != 354 {
            self.reset();
            return Err(self.refusal("DATA", &go).for_this_message());
        }
        self.send_message(message)?;
        crate::crashpoint::hit("smtp.sent", uid);
        // After the message: SMTP answers once, LMTP once per accepted recipient (RFC 2033
        // section 4.2), each within the delivery timeout.
        let answers = match self.sink.protocol {
            Protocol::Smtp => 1,
            Protocol::Lmtp => recipients.len(),
        };
        let deadline = self.sink.relay.delivery_timeout;
        let mut finals = Vec::with_capacity(answers);
        for _ in 0..answers {
            finals.push(self.read_reply(deadline)?);
        }
        let Some(worst) = worst(finals.iter()) else {
            crate::crashpoint::hit("smtp.done", uid);
            return Ok(());
        };
        let accepted: Vec<&str> = recipients
            .iter()
            .zip(&finals)
            .filter(|(_, r)| r.class() == 2)
            .map(|(who, _)| who.as_str())
            .collect();
        let what = if self.sink.protocol == Protocol::Lmtp {
            let each: Vec<String> = recipients
                .iter()
                .zip(&finals)
                .filter(|(_, r)| r.class() != 2)
                .map(|(who, r)| format!("{} for {}", r.shown(), sanitize(who.as_bytes())))
                .collect();
            each.join(", ")
        } else {
            worst.shown()
        };
        let partial = if accepted.is_empty() {
            String::new()
        } else {
            format!(
                " (it did accept the message for {}, who will get it again when it is \
                 retried)",
                sanitize(accepted.join(", ").as_bytes())
            )
        };
        Err(Error::new(
            kind_of(worst),
            format!(
                "{} refused the message: {what}{partial}; it stays on the POP3 server",
                self.sink.describe()
            ),
        )
        .for_this_message())
    }

    /// The spooled message (LF line ends) as DATA: CRLF line ends, a `.` doubled at the
    /// start of a line, a final line end if missing, and the terminating `.`.
    fn send_message(&mut self, message: &mut File) -> Result<()> {
        let mut input = vec![0u8; BUFFER];
        let mut out = Vec::with_capacity(BUFFER * 2 + 8);
        let mut at_start = true;
        loop {
            let n = match message.read(&mut input) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::with_source(
                        ErrorKind::Io,
                        "cannot read the spooled message",
                        e,
                    ));
                }
            };
            for &b in &input[..n] {
                if at_start && b == b'.' {
                    out.push(b'.');
                }
                if b == b'\n' {
                    out.extend_from_slice(b"\r\n");
                    at_start = true;
                } else {
                    out.push(b);
                    at_start = false;
                }
            }
            self.write_raw(&out)?;
            out.clear();
        }
        if !at_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.write_raw(&out)
    }

    /// RSET after a refusal, to leave the server clean before QUIT; its answer is read
    /// but does not matter.
    fn reset(&mut self) {
        if self.send("RSET\r\n").is_ok() {
            let _ = self.read_reply(self.sink.relay.timeout);
        }
    }

    fn quit(&mut self) {
        if self.send("QUIT\r\n").is_ok() {
            let _ = self.read_reply(self.sink.relay.timeout.min(Duration::from_secs(5)));
        }
    }

    fn send(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            debug!(target: "pop3::wire", "{} C: {}", self.sink.protocol.name(), sanitize(line.as_bytes()));
        }
        self.write_raw(text.as_bytes())
    }

    /// Send a line holding a secret; the log shows `shown` instead.
    fn send_hidden(&mut self, text: &str, shown: &str) -> Result<()> {
        debug!(target: "pop3::wire", "{} C: {shown}", self.sink.protocol.name());
        self.write_raw(text.as_bytes())
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.wire
            .write_all(bytes)
            .and_then(|()| self.wire.flush())
            .map_err(|e| self.io_error(e, "writing to"))
    }

    fn io_error(&self, e: io::Error, doing: &str) -> Error {
        // A timeout, a reset, a broken pipe: try again later, nothing was delivered.
        Error::with_source(
            ErrorKind::Temporary,
            format!(
                "connection failed while {doing} the {}",
                self.sink.describe()
            ),
            e,
        )
    }

    /// An error for a reply that is not the expected 2xx/3xx: 4xx is `Temporary`, 5xx
    /// `Io`. The caller marks it per message where that applies.
    fn refusal(&self, what: &str, reply: &Reply) -> Error {
        Error::new(
            kind_of(reply),
            format!("{} refused {what}: {}", self.sink.describe(), reply.shown()),
        )
    }

    /// Read one whole reply within `limit`, bounded in line length and line count. The
    /// keep-alive `tick` runs while it waits.
    fn read_reply(&mut self, limit: Duration) -> Result<Reply> {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        let mut code = None;
        loop {
            let line = self.read_line(deadline, limit)?;
            debug!(target: "pop3::wire", "{} S: {}", self.sink.protocol.name(), sanitize(&line));
            let (c, last, text) = parse_reply_line(&line).map_err(|why| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("{} sent {why}: {}", self.sink.describe(), sanitize(&line)),
                )
            })?;
            if code.is_some_and(|first| first != c) {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "{} changed the code within one reply: {}",
                        self.sink.describe(),
                        sanitize(&line)
                    ),
                ));
            }
            code = Some(c);
            lines.push(text.to_vec());
            if last {
                return Ok(Reply { code: c, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "{} sent a reply of more than {MAX_REPLY_LINES} lines",
                        self.sink.describe()
                    ),
                ));
            }
        }
    }

    /// One line without its CRLF (a bare LF is accepted too), at most [`MAX_REPLY_LINE`].
    fn read_line(&mut self, deadline: Instant, limit: Duration) -> Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                if i + 1 > MAX_REPLY_LINE {
                    return Err(self.too_long());
                }
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() >= MAX_REPLY_LINE {
                return Err(self.too_long());
            }
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Temporary,
                    format!(
                        "timed out: the {} did not answer within {} s",
                        self.sink.describe(),
                        limit.as_secs()
                    ),
                ));
            }
            let wait = self.every.map_or(left, |e| e.min(left));
            self.wire
                .set_read_timeout(wait)
                .map_err(|e| self.io_error(e, "waiting for"))?;
            let mut chunk = [0u8; 4096];
            match self.wire.read(&mut chunk) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Temporary,
                        format!(
                            "the {} closed the connection before it answered; nothing \
                             is recorded as delivered",
                            self.sink.describe()
                        ),
                    ));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.every.is_some() && Instant::now() < deadline {
                        (self.tick)();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e, "reading from")),
            }
        }
    }

    fn too_long(&self) -> Error {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "{} sent a reply line longer than {MAX_REPLY_LINE} bytes",
                self.sink.describe()
            ),
        )
    }
}

/// The most serious of some replies that are not 2xx: a 5xx before a 4xx. `None` when all
/// are 2xx.
fn worst<'r>(replies: impl Iterator<Item = &'r Reply>) -> Option<&'r Reply> {
    replies.filter(|r| r.class() != 2).max_by_key(|r| r.class())
}

/// 4xx: try again later (75); anything else refused: a delivery failure (74).
fn kind_of(reply: &Reply) -> ErrorKind {
    if reply.class() == 4 {
        ErrorKind::Temporary
    } else {
        ErrorKind::Io
    }
}

#[cfg(test)]
mod tests;
