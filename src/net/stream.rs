//! The connection the client speaks over: plain TCP (before STLS, or with `tls = "none"`) or
//! rustls over TCP. One enum instead of a trait object keeps reads monomorphic on the hot path.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use rustls::{ClientConnection, StreamOwned};

/// A plain or TLS stream.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, BufSocket>>),
}

/// The socket under TLS, read through a large buffer: rustls asks for 4 KiB at a time, and
/// serving those from one 64 KiB `recv` cuts the system calls for a big message sixteenfold.
/// Writes go straight through.
#[derive(Debug)]
pub struct BufSocket {
    sock: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The first bytes the server ever sent, kept so that a failed handshake can tell a
    /// plain POP3 greeting (`+OK`) from broken TLS.
    head: Vec<u8>,
}

impl BufSocket {
    /// Wrap a connected socket.
    pub fn new(sock: TcpStream) -> BufSocket {
        BufSocket {
            sock,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            head: Vec::new(),
        }
    }

    /// The first bytes received on this socket (at most 16).
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

/// How many of the first bytes [`BufSocket::head`] keeps.
const HEAD: usize = 16;

impl Read for BufSocket {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if out.len() >= self.buf.len() {
                return self.sock.read(out);
            }
            // Empty first: a read interrupted by a signal must not leave old bytes that
            // would be served again.
            self.start = 0;
            self.end = 0;
            self.end = self.sock.read(&mut self.buf)?;
            if self.head.len() < HEAD {
                let take = (HEAD - self.head.len()).min(self.end);
                self.head.extend_from_slice(&self.buf[..take]);
            }
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

impl Write for BufSocket {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.sock.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl Stream {
    /// Whether the bytes travel encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The negotiated TLS version and cipher suite, for `-v` output.
    pub fn tls_description(&self) -> Option<String> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => {
                let version = s.conn.protocol_version()?;
                let suite = s.conn.negotiated_cipher_suite()?;
                Some(format!("{version:?} {:?}", suite.suite()))
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn buffered_reads_return_every_byte_once_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            for chunk in sent.chunks(7_777) {
                s.write_all(chunk).unwrap();
            }
        });
        let mut sock = BufSocket::new(TcpStream::connect(addr).unwrap());
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.join().unwrap();
        assert_eq!(got, data);
    }
}
