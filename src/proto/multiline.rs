//! Multi-line bodies (RFC 1939 section 3): each line that starts with "." is byte-stuffed,
//! and the line "." CRLF ends the body. A line is what ends in CRLF: only a "." right after
//! CRLF (or at the body's start) is a stuffing octet or the start of the terminator. A "."
//! after a bare LF is data and is kept (servers stuff only after CRLF, so dropping it would
//! alter the message); "." followed by a bare LF is stuffing followed by data.
//!
//! Two interfaces: [`unstuff_line`] for line-at-a-time bodies (CAPA, LIST, UIDL), and the
//! streaming [`Decoder`] for RETR/TOP, which never holds a line in memory.

/// For one line of a line-at-a-time body (terminator already removed, so `line` is what was
/// between the previous LF and this line's CRLF): `None` when the line is the terminating
/// ".", otherwise the line with one leading "." removed if it had one.
pub fn unstuff_line(line: &[u8]) -> Option<&[u8]> {
    match line {
        // RFC 1939 section 3: "." CRLF ends a multi-line response.
        [b'.'] => None,
        // RFC 1939 section 3: a line starting with "." is byte-stuffed; drop one ".".
        [b'.', rest @ ..] => Some(rest),
        _ => Some(line),
    }
}

/// Streaming decoder for a RETR/TOP body: dot-unstuffs, turns CRLF into LF, and finds the
/// terminating CRLF "." CRLF across any chunk boundaries (also one byte per chunk).
///
/// Output: the message with LF line endings. A bare LF stays LF; a CR not followed by LF
/// stays as it is. The body starts right after the status line's CRLF, i.e. at a line start
/// that counts as "after CRLF".
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    output_len: u64,
}

/// Where the decoder stands between two input bytes. Nothing but this (and the output
/// count) survives a chunk boundary, which is what makes every split of the input decode
/// alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line. `after_crlf`: the previous line ended in CRLF (or this
    /// is the body start), so a "." CRLF line here would be the terminator.
    LineStart { after_crlf: bool },
    /// Inside a line, nothing held back.
    Data,
    /// Inside a line right after a CR that has not been written yet: it is either the first
    /// half of CRLF (written as LF) or a lone CR (written as is).
    Cr,
    /// A "." right after CRLF was read and dropped (the stuffing octet, or the start of the
    /// terminator).
    Dot,
    /// "." CR right after CRLF; the CR is held back as in `Cr`.
    DotCr,
    /// CRLF "." CRLF has been consumed.
    Done,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder positioned at the start of a body.
    pub fn new() -> Decoder {
        Decoder {
            // The status line ended in CRLF, so an immediate "." CRLF is an empty body.
            state: State::LineStart { after_crlf: true },
            output_len: 0,
        }
    }

    /// Feed the next bytes. Decoded output is passed to `out` in as few calls as possible
    /// (contiguous runs of `input`, never one call per byte in the common case). Returns how
    /// many bytes of `input` were consumed: all of them, unless the terminator was reached,
    /// in which case the bytes after the terminator's LF are left unconsumed and
    /// [`Decoder::is_done`] is true. An error from `out` is returned at once.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        // Output is always a slice of `input` from `run` (the start of the pending run) to
        // `i`; a byte that must not be output (a stuffing ".", the CR of CRLF) ends the run
        // and the next one starts after it. The LF of a CRLF is output from `input` as the
        // first byte of the next run, so a CRLF body costs one `out` call per line.
        let mut run: Option<usize> = None;
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::LineStart { after_crlf } => {
                    // RFC 1939 section 3: lines end in CRLF, and only a line's first "." is
                    // stuffing; after a bare LF we are still inside the same line.
                    if input[i] == b'.' && after_crlf {
                        self.flush(input, &mut run, i, out)?;
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        run.get_or_insert(i);
                        self.state = State::Data;
                    }
                }
                State::Data => {
                    run.get_or_insert(i);
                    // The hot loop: one vectorised search (memchr2) per line.
                    match memchr::memchr2(b'\r', b'\n', &input[i..]) {
                        None => i = input.len(),
                        Some(k) if input[i + k] == b'\n' => {
                            // A bare LF stays LF and is part of the run.
                            i += k + 1;
                            self.state = State::LineStart { after_crlf: false };
                        }
                        Some(k) => {
                            i += k;
                            self.flush(input, &mut run, i, out)?;
                            self.state = State::Cr;
                            i += 1;
                        }
                    }
                }
                State::Cr => {
                    if input[i] == b'\n' {
                        run = Some(i);
                        self.state = State::LineStart { after_crlf: true };
                        i += 1;
                    } else {
                        self.lone_cr(&mut run, i, out)?;
                        self.state = State::Data;
                    }
                }
                State::Dot => {
                    if input[i] == b'\r' {
                        self.state = State::DotCr;
                        i += 1;
                    } else {
                        // The dot was stuffing (or a stray dot, dropped all the same); the
                        // rest of the line is data, including a bare LF right here.
                        run = Some(i);
                        self.state = State::Data;
                    }
                }
                State::DotCr => {
                    if input[i] == b'\n' {
                        // RFC 1939 section 3: CRLF "." CRLF ends the body. What follows
                        // belongs to the next response and is left to the caller.
                        self.state = State::Done;
                        return Ok(i + 1);
                    } else {
                        self.lone_cr(&mut run, i, out)?;
                        self.state = State::Data;
                    }
                }
            }
        }
        self.flush(input, &mut run, i, out)?;
        Ok(i)
    }

    /// True once CRLF "." CRLF has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Octets of decoded output produced so far (LF line endings).
    pub fn output_len(&self) -> u64 {
        self.output_len
    }

    /// Output `input[run..end]` (if a run is pending and not empty) and end the run.
    fn flush<E>(
        &mut self,
        input: &[u8],
        run: &mut Option<usize>,
        end: usize,
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(start) = run.take() {
            self.emit(input.get(start..end).unwrap_or_default(), out)?;
        }
        Ok(())
    }

    /// The held-back CR (just before `input[i]`) was not followed by LF: it is data. When it
    /// came in this chunk it simply joins the new run; otherwise it is written on its own.
    fn lone_cr<E>(
        &mut self,
        run: &mut Option<usize>,
        i: usize,
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if i > 0 {
            *run = Some(i - 1);
        } else {
            self.emit(b"\r", out)?;
            *run = Some(i);
        }
        Ok(())
    }

    fn emit<E>(
        &mut self,
        bytes: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.output_len = self.output_len.saturating_add(bytes.len() as u64);
        out(bytes)
    }
}

/// Dot-stuff `body` (any line endings) for the wire: LF becomes CRLF, every line that starts
/// with "." gets another ".", a final CRLF is added when the body does not end in a line end,
/// and "." CRLF terminates. The inverse of [`Decoder`] up to CRLF/LF normalisation; used by
/// tests and the scripted test server. An empty body has no line to end, so it becomes just
/// "." CRLF.
pub fn stuff(body: &[u8]) -> Vec<u8> {
    // Room for the CRs of LF-only bodies and a few stuffed dots without regrowing.
    let mut wire = Vec::with_capacity(body.len() + body.len() / 32 + 5);
    let mut line_start = true;
    let mut prev = None;
    for &b in body {
        if line_start && b == b'.' {
            // RFC 1939 section 3: byte-stuff a line that starts with the termination octet.
            wire.push(b'.');
        }
        if b == b'\n' && prev != Some(b'\r') {
            wire.push(b'\r');
        }
        wire.push(b);
        line_start = b == b'\n';
        prev = Some(b);
    }
    if !body.is_empty() && !line_start {
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::convert::Infallible;

    /// Feed `wire` in chunks of the given sizes (cycled); returns output, bytes consumed,
    /// whether the decoder finished, and the number of `out` calls.
    fn decode_chunked(wire: &[u8], sizes: &[usize]) -> (Vec<u8>, usize, bool, usize) {
        let mut d = Decoder::new();
        let mut output = Vec::new();
        let mut calls = 0;
        let mut pos = 0;
        let mut k = 0;
        while pos < wire.len() && !d.is_done() {
            let size = sizes[k % sizes.len()].max(1);
            k += 1;
            let end = (pos + size).min(wire.len());
            let used = d
                .feed(&wire[pos..end], &mut |b: &[u8]| {
                    assert!(!b.is_empty(), "out called with nothing");
                    calls += 1;
                    output.extend_from_slice(b);
                    Ok::<(), Infallible>(())
                })
                .unwrap();
            assert!(used <= end - pos);
            if used < end - pos {
                assert!(d.is_done(), "bytes left over before the terminator");
            }
            pos += used;
        }
        assert_eq!(d.output_len(), output.len() as u64);
        (output, pos, d.is_done(), calls)
    }

    fn decode(wire: &[u8]) -> (Vec<u8>, usize, bool) {
        let (out, used, done, _) = decode_chunked(wire, &[usize::MAX]);
        (out, used, done)
    }

    /// The body as the decoder should give it back: CRLF and bare LF both become LF, and
    /// a final LF is added when the body does not end in one.
    fn normalise(body: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(body.len() + 1);
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            v.push(body[i]);
            i += 1;
        }
        if !v.is_empty() && v.last() != Some(&b'\n') {
            v.push(b'\n');
        }
        v
    }

    /// RFC 1939 read literally, one CRLF-terminated line at a time: a line "." ends the
    /// body, a line starting with "." loses that one dot, CRLF becomes LF, and anything else
    /// (a bare LF, a lone CR, a "." after a bare LF) is data. Returns the decoded body and
    /// the bytes up to the terminator, or `None` for the bytes when there is no terminator.
    fn reference_decode(wire: &[u8]) -> (Vec<u8>, Option<usize>) {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(k) = wire[pos..].windows(2).position(|w| w == b"\r\n") {
            let line = &wire[pos..pos + k];
            pos += k + 2;
            if line == b"." {
                return (out, Some(pos));
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            out.push(b'\n');
        }
        (out, None)
    }

    #[test]
    fn unstuff_line_rfc1939_section3() {
        assert_eq!(unstuff_line(b"."), None);
        assert_eq!(unstuff_line(b".."), Some(&b"."[..]));
        assert_eq!(unstuff_line(b"..foo"), Some(&b".foo"[..]));
        assert_eq!(unstuff_line(b"1 120"), Some(&b"1 120"[..]));
        assert_eq!(unstuff_line(b""), Some(&b""[..]));
        assert_eq!(unstuff_line(b". "), Some(&b" "[..]));
    }

    #[test]
    fn rfc1939_retr_example() {
        // RFC 1939 section 5, RETR: the body follows "+OK 120 octets" and ends with ".".
        let wire = b"From: a@example.com\r\nSubject: hi\r\n\r\nline one\r\n..dotted\r\n.\r\n";
        let (out, used, done) = decode(wire);
        assert!(done);
        assert_eq!(used, wire.len());
        assert_eq!(
            out,
            b"From: a@example.com\nSubject: hi\n\nline one\n.dotted\n".to_vec()
        );
    }

    #[test]
    fn empty_body() {
        let (out, used, done) = decode(b".\r\n");
        assert!(done);
        assert_eq!(used, 3);
        assert!(out.is_empty());
    }

    #[test]
    fn body_of_one_empty_line() {
        let (out, used, done) = decode(b"\r\n.\r\n");
        assert!(done);
        assert_eq!(used, 5);
        assert_eq!(out, b"\n");
    }

    #[test]
    fn lines_starting_with_two_dots() {
        let (out, _, done) = decode(b"..\r\n...\r\n..x\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b".\n..\n.x\n");
    }

    #[test]
    fn stray_single_dot_is_dropped_like_stuffing() {
        let (out, _, done) = decode(b".x\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b"x\n");
    }

    #[test]
    fn dot_bare_lf_does_not_terminate() {
        // "." followed by a bare LF is data (an empty line after unstuffing).
        let wire = b"a\r\n.\nb\r\n.\r\n";
        let (out, used, done) = decode(wire);
        assert!(done);
        assert_eq!(used, wire.len());
        assert_eq!(out, b"a\n\nb\n");
        let (out, _, done) = decode(b".\n");
        assert!(!done);
        assert_eq!(out, b"\n");
    }

    #[test]
    fn dot_after_bare_lf_is_data_and_kept() {
        // Issue 9 item 3: "x" LF "." CRLF is one line whose text is "x\n."; the server did
        // not stuff it (it stuffs only after CRLF), so the dot is part of the message.
        let wire = b"a\n.\r\nb\r\n.\r\n";
        let (out, used, done) = decode(wire);
        assert!(done);
        assert_eq!(used, wire.len());
        assert_eq!(out, b"a\n.\nb\n");
        let (out, _, done) = decode(b"x\n..y\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b"x\n..y\n");
    }

    #[test]
    fn unterminated_body_is_not_done() {
        for wire in [&b"a\r\n"[..], b"a\r\n.", b"a\r\n.\r", b"a\r\n.x", b"a"] {
            let (_, used, done) = decode(wire);
            assert!(!done, "{:?}", String::from_utf8_lossy(wire));
            assert_eq!(used, wire.len());
        }
    }

    #[test]
    fn lone_cr_is_kept() {
        let (out, _, done) = decode(b"a\rb\r\r\n.\rc\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b"a\rb\r\n\rc\n");
    }

    #[test]
    fn lone_cr_across_chunks() {
        let wire = b"a\r\rb\r\n.\r\r\n.\r\n";
        let (one_shot, _, _) = decode(wire);
        assert_eq!(one_shot, b"a\r\rb\n\r\n");
        let (bytewise, _, done, _) = decode_chunked(wire, &[1]);
        assert!(done);
        assert_eq!(bytewise, one_shot);
    }

    #[test]
    fn nul_bytes_are_data() {
        let (out, _, done) = decode(b"\0a\0\r\n.\0\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b"\0a\0\n\0\n");
    }

    #[test]
    fn leftover_after_terminator_is_not_consumed() {
        let wire = b"x\r\n.\r\n+OK next\r\n";
        let (out, used, done) = decode(wire);
        assert!(done);
        assert_eq!(out, b"x\n");
        assert_eq!(&wire[used..], b"+OK next\r\n");

        // Once done, nothing more is consumed or output.
        let mut d = Decoder::new();
        let mut sink = |_: &[u8]| -> Result<(), Infallible> { panic!("no output expected") };
        assert_eq!(d.feed(b".\r\n", &mut sink).unwrap(), 3);
        assert_eq!(d.feed(b"more\r\n", &mut sink).unwrap(), 0);
        assert!(d.is_done());
    }

    #[test]
    fn terminator_split_at_every_position() {
        let wire = b"line\r\n\r\n.\r\nafter";
        let body_end = wire.len() - b"after".len();
        for cut in 0..=wire.len() {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            let mut sink = |b: &[u8]| {
                out.extend_from_slice(b);
                Ok::<(), Infallible>(())
            };
            let first = d.feed(&wire[..cut], &mut sink).unwrap();
            let second = if d.is_done() {
                0
            } else {
                assert_eq!(first, cut);
                d.feed(&wire[cut..], &mut sink).unwrap()
            };
            assert!(d.is_done(), "cut at {cut}");
            assert_eq!(first + second, body_end, "cut at {cut}");
            assert_eq!(out, b"line\n\n", "cut at {cut}");
        }
    }

    #[test]
    fn output_is_one_call_per_line_not_per_byte() {
        let mut wire = Vec::new();
        for _ in 0..100 {
            wire.extend_from_slice(b"a fairly ordinary line of a message body\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        let (out, _, done, calls) = decode_chunked(&wire, &[usize::MAX]);
        assert!(done);
        assert_eq!(out.len(), 100 * 41);
        assert!(calls <= 101, "{calls} calls for 100 lines");

        // Bare LF bodies need no splitting at all.
        let mut wire = b"a\nb\nc\n".repeat(100);
        wire.extend_from_slice(b"\r\n.\r\n");
        let (_, _, done, calls) = decode_chunked(&wire, &[usize::MAX]);
        assert!(done);
        assert!(calls <= 2, "{calls} calls");
    }

    #[test]
    fn error_from_out_is_returned_at_once() {
        let mut d = Decoder::new();
        let mut calls = 0;
        let r = d.feed(b"a\r\nb\r\n.\r\n", &mut |_: &[u8]| {
            calls += 1;
            Err("disk full")
        });
        assert_eq!(r, Err("disk full"));
        assert_eq!(calls, 1);
    }

    #[test]
    fn long_lines_cross_the_search_blocks() {
        // memchr searches in 16- and 32-byte vectors: lines around those lengths.
        for len in [31, 32, 33, 63, 64, 65, 100] {
            let line = vec![b'x'; len];
            // A lone CR, a CRLF and a bare LF, each after a line longer or shorter than a block.
            let wire = [
                &line[..],
                b"\r",
                &line,
                b"\r\n",
                &line,
                b"\n",
                &line,
                b"\r\n.\r\n",
            ]
            .concat();
            let (out, used, done) = decode(&wire);
            assert!(done, "{len}");
            assert_eq!(used, wire.len());
            let want = [&line[..], b"\r", &line, b"\n", &line, b"\n", &line, b"\n"].concat();
            assert_eq!(out, want, "{len}");
        }
    }

    #[test]
    fn stuff_rfc1939_section3() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b".\r\n"),
            (b"a\n", b"a\r\n.\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b".\n", b"..\r\n.\r\n"),
            (b"x\n.y\n..z", b"x\r\n..y\r\n...z\r\n.\r\n"),
            (b"\n", b"\r\n.\r\n"),
        ];
        for (body, wire) in cases {
            assert_eq!(stuff(body), wire, "{:?}", String::from_utf8_lossy(body));
        }
    }

    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        // Mostly the interesting bytes, so that dots, CRs and LFs meet often.
        let byte = prop_oneof![
            4 => Just(b'.'),
            4 => Just(b'\n'),
            3 => Just(b'\r'),
            2 => Just(b'a'),
            1 => Just(0u8),
            1 => any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..200)
    }

    proptest! {
        #[test]
        fn stuffed_body_decodes_to_normalised_body(
            body in body_strategy(),
            sizes in proptest::collection::vec(1usize..16, 1..8),
        ) {
            let mut wire = stuff(&body);
            let body_len = wire.len();
            wire.extend_from_slice(b"+OK next");
            let (out, used, done, _) = decode_chunked(&wire, &sizes);
            prop_assert!(done);
            prop_assert_eq!(used, body_len);
            prop_assert_eq!(out, normalise(&body));
        }

        #[test]
        fn byte_at_a_time_equals_one_shot(
            wire in proptest::collection::vec(
                prop_oneof![Just(b'.'), Just(b'\n'), Just(b'\r'), any::<u8>()], 0..200),
        ) {
            let (out1, used1, done1, _) = decode_chunked(&wire, &[usize::MAX]);
            let (out2, used2, done2, _) = decode_chunked(&wire, &[1]);
            prop_assert_eq!(out1, out2);
            prop_assert_eq!(used1, used2);
            prop_assert_eq!(done1, done2);
        }

        #[test]
        fn decoder_matches_the_line_by_line_reference(
            wire in proptest::collection::vec(
                prop_oneof![Just(b'.'), Just(b'\n'), Just(b'\r'), Just(b'a')], 0..120),
            sizes in proptest::collection::vec(1usize..9, 1..6),
        ) {
            let (want, want_used) = reference_decode(&wire);
            let (out, used, done, _) = decode_chunked(&wire, &sizes);
            prop_assert_eq!(done, want_used.is_some());
            if let Some(n) = want_used {
                prop_assert_eq!(used, n);
                prop_assert_eq!(out, want);
            }
        }

        #[test]
        fn unstuff_line_never_panics(line in proptest::collection::vec(any::<u8>(), 0..32)) {
            match unstuff_line(&line) {
                None => prop_assert_eq!(&line[..], b"."),
                Some(rest) => prop_assert!(line.ends_with(rest) && line.len() - rest.len() <= 1),
            }
        }
    }
}
