//! The envelope sender of a message that is still streaming in.
//!
//! mbox (`From <sender> <date>`) and MDA (`%F`) delivery need the envelope sender before
//! they write the first byte, but the engine hands over the message in chunks and the only
//! place the sender appears is the message's own `Return-Path:` header (RFC 5321 section
//! 4.4). [`HeaderSniffer`] buffers the start of the message, bounded by
//! [`MAX_HEADER`] bytes, until the blank line that ends the header, and then answers
//! [`HeaderSniffer::sender`]. It is pure: no I/O, and it never holds more than the bound,
//! whatever the server sends (DESIGN.md invariant 6).

/// The most bytes of a message that are buffered while looking for the end of its header.
/// A header larger than this is unusual (mailing-list traffic stays far below); the sender
/// is then looked for in what was buffered.
pub const MAX_HEADER: usize = 64 * 1024;

/// The longest envelope sender accepted; a longer `Return-Path` counts as garbage.
pub const MAX_SENDER: usize = 256;

/// The sender used when there is none (`Return-Path: <>`, a bounce) or it is unusable,
/// as procmail and Postfix `local` write it.
pub const NO_SENDER: &str = "MAILER-DAEMON";

/// Buffers the start of a message until its header is complete (or the bound is reached).
#[derive(Debug)]
pub struct HeaderSniffer {
    buf: Vec<u8>,
    limit: usize,
    /// The header has ended (blank line seen) or the limit was reached.
    complete: bool,
    /// The limit, not a blank line, ended the buffering: the last line may be cut short.
    truncated: bool,
    /// The next byte starts a line (so a `\n` now would be the blank line).
    at_line_start: bool,
}

impl Default for HeaderSniffer {
    fn default() -> Self {
        HeaderSniffer::new()
    }
}

impl HeaderSniffer {
    /// A sniffer bounded by [`MAX_HEADER`].
    pub fn new() -> HeaderSniffer {
        HeaderSniffer::with_limit(MAX_HEADER)
    }

    /// A sniffer bounded by `limit` bytes (at least 1).
    pub fn with_limit(limit: usize) -> HeaderSniffer {
        HeaderSniffer {
            buf: Vec::new(),
            limit: limit.max(1),
            complete: false,
            truncated: false,
            at_line_start: true,
        }
    }

    /// Buffer the start of `bytes`, up to and including the end of the header. Returns how
    /// many bytes were taken; when that is less than `bytes.len()`, or when
    /// [`is_complete`](Self::is_complete) turns true, the rest belongs to the body and the
    /// caller passes it on itself. Once complete, nothing more is taken.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        if self.complete {
            return 0;
        }
        let room = self.limit - self.buf.len();
        let mut taken = bytes.len().min(room);
        for (i, &b) in bytes[..taken].iter().enumerate() {
            match b {
                b'\n' if self.at_line_start => {
                    // RFC 5322 section 2.1: the header ends at the first empty line.
                    self.complete = true;
                    taken = i + 1;
                    break;
                }
                b'\n' => self.at_line_start = true,
                // Tolerate CRLF input: a CR does not end the "empty line" state.
                b'\r' => {}
                _ => self.at_line_start = false,
            }
        }
        self.buf.extend_from_slice(&bytes[..taken]);
        if !self.complete && self.buf.len() == self.limit {
            self.complete = true;
            self.truncated = true;
        }
        taken
    }

    /// The header has ended, or the bound was reached: [`feed`](Self::feed) takes nothing
    /// more and [`sender`](Self::sender) is final.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Everything taken so far, byte for byte.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Give up the buffer (the sniffer is spent afterwards).
    pub fn into_buffered(self) -> Vec<u8> {
        self.buf
    }

    /// The envelope sender from the first `Return-Path:` header seen so far: `addr` for
    /// `<addr>`, [`NO_SENDER`] for `<>`, for a missing header and for anything that is not
    /// a plausible address (non-printable or non-ASCII bytes, spaces, longer than
    /// [`MAX_SENDER`]). The result is safe in an mbox `From ` line and in an argument.
    pub fn sender(&self) -> String {
        let mut header = self.buf.as_slice();
        if self.truncated {
            // The bound may have cut the last line in the middle of an address.
            let end = header
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            header = &header[..end];
        }
        return_path(header)
            .and_then(|value| parse_sender(&value))
            .unwrap_or_else(|| NO_SENDER.to_owned())
    }
}

/// The unfolded value of the first `Return-Path` field of `header`.
fn return_path(header: &[u8]) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            // RFC 5322 section 2.2.3: a folded continuation of the previous field.
            if let Some(v) = value.as_mut() {
                v.extend_from_slice(line);
            }
            continue;
        }
        if value.is_some() {
            // The field we wanted has ended.
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        // RFC 5322 section 4.5.3 (obsolete syntax): white space may precede the colon.
        if line[..colon]
            .trim_ascii_end()
            .eq_ignore_ascii_case(b"Return-Path")
        {
            value = Some(line[colon + 1..].to_vec());
        }
    }
    value
}

/// `<addr>` -> addr, `<>` -> MAILER-DAEMON, a bare address as is; `None` for garbage.
fn parse_sender(value: &[u8]) -> Option<String> {
    let value = value.trim_ascii();
    let addr = match value.iter().position(|&b| b == b'<') {
        Some(open) => {
            let rest = &value[open + 1..];
            let close = rest.iter().position(|&b| b == b'>')?;
            &rest[..close]
        }
        // Some MTAs write the address without angle brackets; accept a single word.
        None => value,
    };
    let addr = addr.trim_ascii();
    if addr.is_empty() {
        // A null reverse-path (RFC 5321 section 4.5.5): a bounce.
        return Some(NO_SENDER.to_owned());
    }
    // RFC 5321 section 4.1.2: drop an obsolete source route, `<@a,@b:user@c>`.
    let addr = match (addr[0], addr.iter().position(|&b| b == b':')) {
        (b'@', Some(colon)) => &addr[colon + 1..],
        _ => addr,
    };
    let printable = addr.iter().all(|b| (0x21..=0x7e).contains(b));
    if addr.is_empty() || addr.len() > MAX_SENDER || !printable {
        return None;
    }
    Some(String::from_utf8_lossy(addr).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(message: &[u8]) -> HeaderSniffer {
        let mut s = HeaderSniffer::new();
        s.feed(message);
        s
    }

    #[test]
    fn angle_address_is_the_sender() {
        let s = sniff(b"Return-Path: <alice@example.com>\nSubject: x\n\nbody\n");
        assert!(s.is_complete());
        assert_eq!(s.sender(), "alice@example.com");
    }

    #[test]
    fn null_path_is_mailer_daemon() {
        assert_eq!(sniff(b"Return-Path: <>\n\n").sender(), NO_SENDER);
        assert_eq!(sniff(b"Return-Path: < >\n\n").sender(), NO_SENDER);
    }

    #[test]
    fn missing_header_is_mailer_daemon() {
        assert_eq!(
            sniff(b"From: a@b\nSubject: x\n\nbody\n").sender(),
            NO_SENDER
        );
        assert_eq!(sniff(b"").sender(), NO_SENDER);
        // Only the header counts: a Return-Path in the body is not an envelope.
        assert_eq!(
            sniff(b"Subject: x\n\nReturn-Path: <b@c>\n").sender(),
            NO_SENDER
        );
    }

    #[test]
    fn name_is_case_insensitive_and_may_follow_received() {
        let s = sniff(
            b"Received: from pop.example.com by pop3 (UIDL 1)\n\tfor <x@y>\n\
              RETURN-PATH : <bob@example.org>\nSubject: x\n\n",
        );
        assert_eq!(s.sender(), "bob@example.org");
    }

    #[test]
    fn folded_value_is_unfolded() {
        let s = sniff(b"Subject: x\nReturn-Path:\n <carol@example.net>\nTo: y\n\n");
        assert_eq!(s.sender(), "carol@example.net");
    }

    #[test]
    fn first_return_path_wins() {
        let s = sniff(b"Return-Path: <first@a>\nReturn-Path: <second@b>\n\n");
        assert_eq!(s.sender(), "first@a");
    }

    #[test]
    fn garbage_is_mailer_daemon() {
        for value in [
            &b"<unterminated@a"[..],
            b"<has space@a>",
            b"<caf\xc3\xa9@a>",
            b"<ctl\x07@a>",
            b"two words",
        ] {
            let mut msg = b"Return-Path: ".to_vec();
            msg.extend_from_slice(value);
            msg.extend_from_slice(b"\n\n");
            assert_eq!(
                sniff(&msg).sender(),
                NO_SENDER,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        let long = format!("Return-Path: <{}@a>\n\n", "x".repeat(MAX_SENDER));
        assert_eq!(sniff(long.as_bytes()).sender(), NO_SENDER);
        let just_fits = format!("Return-Path: <{}@a>\n\n", "x".repeat(MAX_SENDER - 2));
        assert_eq!(sniff(just_fits.as_bytes()).sender().len(), MAX_SENDER);
    }

    #[test]
    fn bare_address_and_source_route_and_comment() {
        assert_eq!(sniff(b"Return-Path: d@e\n\n").sender(), "d@e");
        assert_eq!(sniff(b"Return-Path: <@relay,@r2:f@g>\n\n").sender(), "f@g");
        assert_eq!(
            sniff(b"Return-Path: <h@i> (bounce here)\n\n").sender(),
            "h@i"
        );
    }

    #[test]
    fn crlf_header_works() {
        let s = sniff(b"Return-Path: <j@k>\r\nSubject: x\r\n\r\nbody\r\n");
        assert!(s.is_complete());
        assert_eq!(s.sender(), "j@k");
        assert_eq!(s.buffered(), b"Return-Path: <j@k>\r\nSubject: x\r\n\r\n");
    }

    #[test]
    fn feed_stops_after_the_blank_line_across_chunks() {
        let msg = b"Return-Path: <l@m>\nSubject: y\n\nbody line\n";
        for split in 0..=msg.len() {
            let mut s = HeaderSniffer::new();
            let a = s.feed(&msg[..split]);
            let b = if s.is_complete() {
                0
            } else {
                s.feed(&msg[split..])
            };
            let header_len = b"Return-Path: <l@m>\nSubject: y\n\n".len();
            assert!(s.is_complete(), "split {split}");
            assert_eq!(a + b, header_len, "split {split}");
            assert_eq!(s.buffered(), &msg[..header_len], "split {split}");
            assert_eq!(s.sender(), "l@m", "split {split}");
            // Once complete, nothing more is taken.
            assert_eq!(s.feed(b"more"), 0);
        }
    }

    #[test]
    fn empty_header_completes_at_once() {
        let mut s = HeaderSniffer::new();
        assert_eq!(s.feed(b"\nbody\n"), 1);
        assert!(s.is_complete());
        assert_eq!(s.sender(), NO_SENDER);
    }

    #[test]
    fn incomplete_header_is_not_complete_but_has_a_sender() {
        // A message with no body and no blank line: the caller asks at the end.
        let mut s = HeaderSniffer::new();
        let msg = b"Return-Path: <n@o>\nSubject: z\n";
        assert_eq!(s.feed(msg), msg.len());
        assert!(!s.is_complete());
        assert_eq!(s.sender(), "n@o");
    }

    #[test]
    fn header_larger_than_the_bound_is_cut() {
        let mut s = HeaderSniffer::with_limit(64);
        let mut msg = b"Return-Path: <p@q>\n".to_vec();
        msg.extend_from_slice(
            &b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"[..],
        );
        msg.extend_from_slice(b"\nbody\n");
        let taken = s.feed(&msg);
        assert_eq!(taken, 64);
        assert!(s.is_complete());
        assert_eq!(s.buffered(), &msg[..64]);
        assert_eq!(s.sender(), "p@q");
        assert_eq!(s.feed(b"x"), 0);

        // A Return-Path cut by the bound is not trusted.
        let mut s = HeaderSniffer::with_limit(20);
        s.feed(b"Return-Path: abcdefghijklmnop@example.com\n\n");
        assert!(s.is_complete());
        assert_eq!(s.sender(), NO_SENDER);

        // The real bound holds for a huge header fed in small chunks.
        let mut s = HeaderSniffer::new();
        let line = b"X-Long: 0123456789012345678901234567890123456789\n";
        let mut total = 0;
        for _ in 0..10_000 {
            total += s.feed(line);
        }
        assert_eq!(total, MAX_HEADER);
        assert_eq!(s.buffered().len(), MAX_HEADER);
    }
}
