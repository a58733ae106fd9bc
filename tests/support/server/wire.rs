//! Bytes on the wire: the recording reader every connection goes through, reading a command
//! line, sending, closing with a FIN, and the RFC 1939 formats of replies (multi-line
//! replies, dot-stuffing, TOP).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tls::Stream;
use super::{Shared, lock};

/// The longest command line the server reads (RFC 2449 section 4 allows 255 octets; a
/// little slack for SASL lines). Longer lines end the connection.
pub(super) const MAX_LINE: usize = 4096;

/// Records every byte read into the connection's [`SessionLog`]; writes pass through.
pub(super) struct Recorder {
    pub(super) inner: Stream,
    pub(super) tls: bool,
    pub(super) shared: Arc<Shared>,
    pub(super) idx: usize,
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

pub(super) type Conn = BufReader<Recorder>;

/// Close so that the client sees end-of-stream (a FIN, no TLS close_notify) after what was
/// already sent. Reads what the client still sends, for up to 2 s, so that unread input
/// does not turn the close into a reset that could discard data in flight.
pub(super) fn drop_connection(mut conn: Conn) {
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

pub(super) fn send(conn: &mut Conn, bytes: &[u8]) -> io::Result<()> {
    let out = conn.get_mut();
    out.write_all(bytes)?;
    out.flush()
}

/// One line without its line end; `None` at end of stream.
pub(super) fn read_line(conn: &mut Conn) -> io::Result<Option<String>> {
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

/// A multi-line reply: status line, dot-stuffed lines, terminator.
pub(super) fn multiline<S: AsRef<str>>(status: &str, lines: &[S]) -> String {
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
pub(super) fn top(body: &[u8], lines: usize) -> Vec<u8> {
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
