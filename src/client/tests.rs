//! Client tests over a scripted in-memory stream (rust-imap's MockStream), run both with
//! whole reads and with one byte per read.

use std::io::{self, Read, Write};
use std::time::Duration;

use super::*;

/// A stream that serves `input` at most `chunk` bytes per read and records every write,
/// together with how many bytes had been read when the write happened.
#[derive(Debug)]
struct Mock {
    input: Vec<u8>,
    pos: usize,
    chunk: usize,
    writes: Vec<(usize, Vec<u8>)>,
}

impl Mock {
    fn new(input: &[u8], chunk: usize) -> Mock {
        Mock {
            input: input.to_vec(),
            pos: 0,
            chunk,
            writes: Vec::new(),
        }
    }

    fn written(&self) -> Vec<u8> {
        self.writes.iter().flat_map(|(_, w)| w.clone()).collect()
    }
}

impl Read for Mock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.push((self.pos, buf.to_vec()));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const T: Duration = Duration::from_secs(5);

fn both(script: &[u8], test: impl Fn(Mock)) {
    test(Mock::new(script, usize::MAX));
    test(Mock::new(script, 1));
}

fn logged_in(script: &[u8], chunk: usize) -> Session<Mock, Transaction> {
    let s = Session::connect(Mock::new(script, chunk), "h", T).unwrap();
    match s.login_user_pass("u", &Secret::new("pw"), false) {
        Ok(s) => s,
        Err(f) => panic!("{}", f.0),
    }
}

/// Send RETR n through a window of one.
fn send_retr<S: Read + Write>(s: &mut Session<S, Transaction>, n: u32) {
    let mut window = Window::new(false);
    let mut op = Some((Op::Retr(MessageNumber::new(n).unwrap()), ()));
    assert_eq!(window.top_up(s, || op.take()).unwrap(), 1);
}

const LOGIN: &[u8] = b"+OK ready <1.2@h>\r\n+OK\r\n+OK logged in\r\n";

#[test]
fn rfc1939_session_with_listing_and_streamed_retr() {
    let mut script = LOGIN.to_vec();
    script.extend_from_slice(
        b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n\
          +OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n\
          +OK 120 octets\r\nSubject: hi\r\n\r\n..dot line\r\nlast\r\n.\r\n+OK bye\r\n",
    );
    for chunk in [usize::MAX, 1, 7] {
        let mut s = logged_in(&script, chunk);
        let listing = s.listing(true).unwrap();
        assert_eq!(listing.len(), 2);
        assert_eq!(listing[0].uid.as_bytes(), b"whqtswO00WBw418f9t5JxYwZ");
        assert_eq!(listing[1].size, Octets(200));
        send_retr(&mut s, 1);
        let mut body = Vec::new();
        let n = s
            .read_body("RETR 1", 10_000, &mut |b| {
                body.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(body, b"Subject: hi\n\n.dot line\nlast\n");
        assert_eq!(n, body.len() as u64);
        s.quit().unwrap();
    }
}

#[test]
fn user_pass_are_sent_in_order_and_password_only_once() {
    let s = logged_in(LOGIN, usize::MAX);
    let sent = s.stream().written();
    assert_eq!(sent, b"USER u\r\nPASS pw\r\n");
}

#[test]
fn without_pipelining_list_waits_for_the_uidl_answer() {
    let mut script = LOGIN.to_vec();
    script.extend_from_slice(b"+OK\r\n1 a\r\n.\r\n+OK\r\n1 10\r\n.\r\n");
    let mut s = logged_in(&script, 1);
    s.listing(false).unwrap();
    let writes = &s.stream().writes;
    let uidl = writes.iter().find(|(_, w)| w == b"UIDL\r\n").unwrap();
    let list = writes.iter().find(|(_, w)| w == b"LIST\r\n").unwrap();
    assert!(
        list.0 > uidl.0,
        "LIST was written before the UIDL answer was read"
    );
    let mut s = logged_in(&script, usize::MAX);
    s.listing(true).unwrap();
    assert!(
        s.stream()
            .writes
            .iter()
            .any(|(_, w)| w == b"UIDL\r\nLIST\r\n"),
        "with PIPELINING, UIDL and LIST go in one write"
    );
}

#[test]
fn stls_with_injected_bytes_is_refused() {
    // Bytes that arrived together with the +OK are detected here. Bytes that arrive later
    // are read by rustls as TLS records and fail the handshake instead.
    let m = Mock::new(b"+OK hi\r\n+OK begin TLS\r\n+OK injected\r\n", usize::MAX);
    let s = Session::connect(m, "h", T).unwrap();
    let err = s.stls().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    // Without extra bytes the raw stream comes back, positioned after the +OK.
    let s = Session::connect(Mock::new(b"+OK hi\r\n+OK go\r\n", usize::MAX), "h", T).unwrap();
    let (stream, greeting) = s.stls().unwrap();
    assert_eq!(greeting, b"hi");
    assert_eq!(stream.written(), b"STLS\r\n");
}

#[test]
fn stls_refused_is_unavailable() {
    both(b"+OK hi\r\n-ERR no TLS today\r\n", |m| {
        let s = Session::connect(m, "h", T).unwrap();
        assert_eq!(s.stls().unwrap_err().kind(), ErrorKind::Unavailable);
    });
}

#[test]
fn login_errors_map_resp_codes() {
    let cases: [(&[u8], ErrorKind); 5] = [
        (b"-ERR bad password", ErrorKind::Auth),
        (b"-ERR [AUTH] bad password", ErrorKind::Auth),
        (b"-ERR [IN-USE] locked", ErrorKind::Temporary),
        (b"-ERR [LOGIN-DELAY] wait", ErrorKind::Temporary),
        (b"-ERR [SYS/PERM] disabled", ErrorKind::Unavailable),
    ];
    for (line, kind) in cases {
        let mut script = b"+OK hi\r\n+OK\r\n".to_vec();
        script.extend_from_slice(line);
        script.extend_from_slice(b"\r\n+OK bye\r\n");
        let s = Session::connect(Mock::new(&script, 3), "h", T).unwrap();
        let failed = s
            .login_user_pass("u", &Secret::new("pw"), false)
            .unwrap_err();
        assert_eq!(failed.0.kind(), kind, "{}", failed.0);
        assert!(!failed.0.to_string().contains("pw\r"), "{}", failed.0);
        // The session comes back and can still QUIT.
        failed.1.quit().unwrap();
    }
}

#[test]
fn server_text_is_sanitised_in_errors() {
    let s = Session::connect(
        Mock::new(b"+OK\r\n+OK\r\n-ERR \x1b[2Jgotcha\r\n", usize::MAX),
        "h",
        T,
    )
    .unwrap();
    let failed = s
        .login_user_pass("u", &Secret::new("pw"), false)
        .unwrap_err();
    let msg = failed.0.to_string();
    assert!(!msg.contains('\x1b'), "{msg:?}");
    assert!(msg.contains("\\x1b[2Jgotcha"), "{msg:?}");
}

#[test]
fn over_long_line_is_a_protocol_error_not_unbounded_memory() {
    let mut script = b"+OK ".to_vec();
    script.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
    script.extend_from_slice(b"\r\n");
    let err = Session::connect(Mock::new(&script, 4096), "h", T).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}

#[test]
fn eof_in_the_middle_of_a_body_is_an_error() {
    let mut script = LOGIN.to_vec();
    script.extend_from_slice(b"+OK\r\nSubject: x\r\n\r\npartial");
    both(&script, |m| {
        let s = Session::connect(m, "h", T).unwrap();
        let mut s = match s.login_user_pass("u", &Secret::new("pw"), false) {
            Ok(s) => s,
            Err(f) => panic!("{}", f.0),
        };
        send_retr(&mut s, 1);
        let err = s.read_body("RETR 1", 1000, &mut |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Temporary, "{err}");
    });
}

#[test]
fn a_body_larger_than_its_bound_is_bad_data() {
    let mut script = LOGIN.to_vec();
    script.extend_from_slice(b"+OK\r\n");
    for _ in 0..100 {
        script.extend_from_slice(b"0123456789\r\n");
    }
    script.extend_from_slice(b".\r\n");
    let mut s = logged_in(&script, usize::MAX);
    send_retr(&mut s, 1);
    let err = s.read_body("RETR 1", 500, &mut |_| Ok(())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadData, "{err}");
}

#[test]
fn sink_failure_is_an_io_error() {
    let mut script = LOGIN.to_vec();
    script.extend_from_slice(b"+OK\r\nabc\r\n.\r\n");
    let mut s = logged_in(&script, usize::MAX);
    send_retr(&mut s, 1);
    let err = s
        .read_body("RETR 1", 500, &mut |_| Err(io::Error::other("disk full")))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
}

#[test]
fn listing_rejects_repeats_and_mismatches() {
    let cases: [&[u8]; 4] = [
        b"+OK\r\n1 a\r\n2 a\r\n.\r\n+OK\r\n1 1\r\n2 2\r\n.\r\n",
        b"+OK\r\n1 a\r\n1 b\r\n.\r\n+OK\r\n1 1\r\n.\r\n",
        b"+OK\r\n1 a\r\n2 b\r\n.\r\n+OK\r\n1 1\r\n.\r\n",
        b"+OK\r\n1 a\r\n.\r\n+OK\r\n1 -5\r\n.\r\n",
    ];
    for tail in cases {
        let mut script = LOGIN.to_vec();
        script.extend_from_slice(tail);
        let err = logged_in(&script, usize::MAX).listing(true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadData, "{err}");
    }
}

#[test]
fn uidl_unsupported_is_unavailable_and_pipelined_list_is_drained() {
    let mut script = LOGIN.to_vec();
    script.extend_from_slice(b"-ERR unknown command\r\n+OK\r\n1 10\r\n.\r\n");
    let err = logged_in(&script, 1).listing(true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("UIDL"), "{err}");
}

#[test]
fn capa_before_login_and_no_capa_support() {
    both(
        b"+OK\r\n+OK\r\nUSER\r\nSTLS\r\nPIPELINING\r\nSASL PLAIN\r\n.\r\n",
        |m| {
            let mut s = Session::connect(m, "h", T).unwrap();
            let caps = s.capa().unwrap();
            assert!(caps.stls && caps.user && caps.pipelining);
            assert_eq!(caps.sasl, ["PLAIN"]);
        },
    );
    let mut s = Session::connect(Mock::new(b"+OK\r\n-ERR what\r\n", 1), "h", T).unwrap();
    assert_eq!(s.capa().unwrap(), Capabilities::default());
}

#[test]
fn garbage_status_line_is_a_protocol_error() {
    for script in [&b"HTTP/1.1 200 OK\r\n"[..], b"\0\0\0\r\n", b"+OKAY\r\n"] {
        let err = Session::connect(Mock::new(script, 2), "h", T).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    }
}

#[test]
fn a_listing_is_bounded_by_bytes_not_only_by_lines() {
    // Issue 9 item 11: far fewer lines than MAX_MESSAGES, but each with a 500-octet UIDL:
    // the listing is refused once it passes MAX_LISTING_BYTES, before it is all in memory.
    let mut script = LOGIN.to_vec();
    script.extend_from_slice(b"+OK\r\n");
    let uid = "u".repeat(500);
    let lines = MAX_LISTING_BYTES / 500 + 10;
    for n in 1..=lines {
        script.extend_from_slice(format!("{n} {uid}\r\n").as_bytes());
    }
    script.extend_from_slice(b".\r\n");
    let mut s = logged_in(&script, usize::MAX);
    let err = s.listing(false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadData, "{err}");
    assert!(err.to_string().contains("MiB"), "{err}");
    // The limit leaves room for a realistic big mailbox: 100 000 typical UIDL lines.
    let typical = 100_000 * "100000 GmailId18c2f3a4b5c6d7e8\r\n".len();
    assert!(typical < MAX_LISTING_BYTES);
}

#[test]
fn a_pipelined_window_fills_in_one_write_and_refills_at_half() {
    let script = LOGIN.to_vec();
    let mut s = logged_in(&script, usize::MAX);
    let writes_before = s.stream().writes.len();
    let mut window = Window::new(true);
    let mut next = 0u32;
    let mut source = || {
        next += 1;
        (next as usize <= 3 * PIPELINE_WINDOW)
            .then(|| (Op::Dele(MessageNumber::new(next).unwrap()), next))
    };
    assert_eq!(window.top_up(&mut s, &mut source).unwrap(), PIPELINE_WINDOW);
    assert_eq!(s.stream().writes.len(), writes_before + 1, "one flight");
    // Not yet drained to half: nothing more goes out.
    for _ in 0..PIPELINE_WINDOW / 2 - 1 {
        window.next_answer().unwrap();
    }
    assert_eq!(window.top_up(&mut s, &mut source).unwrap(), 0);
    window.next_answer().unwrap();
    assert_eq!(
        window.top_up(&mut s, &mut source).unwrap(),
        PIPELINE_WINDOW / 2
    );
    // Answers come back in the order sent, with their tags.
    let n = PIPELINE_WINDOW as u32 / 2 + 1;
    assert_eq!(
        window.next_answer(),
        Some((Op::Dele(MessageNumber::new(n).unwrap()), n))
    );
}

#[test]
fn without_pipelining_the_window_holds_one_command() {
    let mut s = logged_in(LOGIN, usize::MAX);
    let mut window = Window::new(false);
    let mut ops = (1..=3).map(|n| (Op::Top(MessageNumber::new(n).unwrap(), 0), n));
    assert_eq!(window.top_up(&mut s, || ops.next()).unwrap(), 1);
    assert_eq!(window.top_up(&mut s, || ops.next()).unwrap(), 0);
    assert_eq!(window.next_answer().map(|a| a.1), Some(1));
    assert_eq!(window.top_up(&mut s, || ops.next()).unwrap(), 1);
    assert!(s.stream().written().ends_with(b"TOP 2 0\r\n"));
}

#[test]
fn with_pipelining_user_and_pass_go_out_in_one_flight() {
    let script = b"+OK ready\r\n+OK\r\n+OK logged in\r\n+OK bye\r\n";
    let s = Session::connect(Mock::new(script, usize::MAX), "h", T).unwrap();
    let s = match s.login_user_pass("u", &Secret::new("pw"), true) {
        Ok(s) => s,
        Err(f) => panic!("{}", f.0),
    };
    let flights: Vec<Vec<u8>> = s.stream().writes.iter().map(|w| w.1.clone()).collect();
    assert_eq!(flights, [b"USER u\r\nPASS pw\r\n".to_vec()]);
    s.quit().unwrap();
    // A refused USER is the error reported; the PASS answer is read too, so the session
    // stays in step.
    let script = b"+OK ready\r\n-ERR no such user\r\n-ERR not logged in\r\n+OK bye\r\n";
    let s = Session::connect(Mock::new(script, usize::MAX), "h", T).unwrap();
    let failed = s
        .login_user_pass("u", &Secret::new("pw"), true)
        .unwrap_err();
    let (err, s) = *failed;
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("no such user"), "{err}");
    s.quit().unwrap();
}
