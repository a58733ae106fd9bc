//! mboxrd `>From ` quoting (RFC 4155 section 2 describes the problem; mboxrd, which mutt,
//! procmail and Postfix `local` agree on, makes it reversible): every line of a message that
//! matches `^>*From ` gets one more `>`, and the message ends with a newline. Owns only that
//! transformation. Pure: bytes in, bytes out, no I/O; fuzzed by `fuzz/fuzz_targets/quote.rs`.

/// A line that begins with any number of `>` followed by this gets one more `>`.
const FROM: &[u8] = b"From ";

/// Where the quoter is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineState {
    /// At the start of a line, or after only `>` characters.
    Start,
    /// The first `n` bytes of `From ` (1..=4) have been seen and are held back.
    Match(usize),
    /// Anywhere else in a line: nothing to do until the next newline.
    Middle,
}

/// mboxrd quoting as a streaming state machine: it holds back at most the four bytes of a
/// partial `From ` and never buffers a line, so chunks may split a line anywhere.
#[derive(Debug)]
pub struct Quoter {
    state: LineState,
    /// The last byte emitted was a newline (true before anything: the separator line ends
    /// with one).
    at_newline: bool,
}

impl Quoter {
    /// A quoter at the start of a message.
    pub fn new() -> Quoter {
        Quoter {
            state: LineState::Start,
            at_newline: true,
        }
    }

    /// Append `input`, quoted, to `out`.
    pub fn quote(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while let Some(&b) = input.first() {
            match self.state {
                LineState::Middle => {
                    let end = match input.iter().position(|&c| c == b'\n') {
                        Some(i) => {
                            self.state = LineState::Start;
                            i + 1
                        }
                        None => input.len(),
                    };
                    out.extend_from_slice(&input[..end]);
                    self.at_newline = input[end - 1] == b'\n';
                    input = &input[end..];
                }
                LineState::Start => {
                    match b {
                        b'F' => self.state = LineState::Match(1),
                        b'>' | b'\n' => out.push(b),
                        _ => {
                            out.push(b);
                            self.state = LineState::Middle;
                        }
                    }
                    if b != b'F' {
                        self.at_newline = b == b'\n';
                    }
                    input = &input[1..];
                }
                LineState::Match(n) if b == FROM[n] => {
                    if n + 1 == FROM.len() {
                        // The one change mboxrd makes: `>*From ` gets one more `>`.
                        // Adding it just before `From` is the same as adding it in front.
                        out.push(b'>');
                        out.extend_from_slice(FROM);
                        self.at_newline = false;
                        self.state = LineState::Middle;
                    } else {
                        self.state = LineState::Match(n + 1);
                    }
                    input = &input[1..];
                }
                LineState::Match(n) => {
                    // Not `From `: release what was held back and look at `b` again as
                    // part of an ordinary line.
                    out.extend_from_slice(&FROM[..n]);
                    self.at_newline = false;
                    self.state = LineState::Middle;
                }
            }
        }
    }

    /// End the message: release a held-back partial `From` and make sure the last line
    /// ends with a newline.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let LineState::Match(n) = self.state {
            out.extend_from_slice(&FROM[..n]);
            self.at_newline = false;
        }
        if !self.at_newline {
            out.push(b'\n');
        }
        self.state = LineState::Start;
        self.at_newline = true;
    }
}

impl Default for Quoter {
    fn default() -> Quoter {
        Quoter::new()
    }
}

/// The definition, one whole message at a time: what [`Quoter`] must produce however the
/// message is split into chunks. For tests and the fuzz target.
pub fn quote_whole(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 1);
    for line in msg.split_inclusive(|&b| b == b'\n') {
        let gt = line.iter().take_while(|&&b| b == b'>').count();
        if line[gt..].starts_with(FROM) {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quote `msg` fed in the pieces that `cuts` (offsets, any order) make.
    fn quote_in_pieces(msg: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(msg.len())).collect();
        cuts.sort_unstable();
        let mut q = Quoter::new();
        let mut out = Vec::new();
        let mut last = 0;
        for c in cuts.into_iter().chain(std::iter::once(msg.len())) {
            q.quote(&msg[last..c], &mut out);
            last = c;
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn a_from_line_in_the_header_is_quoted_too() {
        let mut out = Vec::new();
        let mut q = Quoter::new();
        q.quote(b"From bogus envelope\nX: y\n\n", &mut out);
        q.finish(&mut out);
        assert_eq!(out, b">From bogus envelope\nX: y\n\n");
    }

    #[test]
    fn the_definition_on_examples() {
        assert_eq!(quote_whole(b""), b"");
        assert_eq!(quote_whole(b"x"), b"x\n");
        assert_eq!(
            quote_whole(b"From a\n>From b\n >From c\nFrom\n>>From "),
            b">From a\n>>From b\n >From c\nFrom\n>>>From \n"
        );
    }

    /// Every message of up to 6 bytes over the bytes that matter, split at every point.
    #[test]
    fn quoting_matches_the_definition_exhaustively_for_short_messages() {
        let alphabet = b"From >x\n";
        let mut msg = Vec::new();
        for len in 0..=6u32 {
            for mut k in 0..alphabet.len().pow(len) {
                msg.clear();
                for _ in 0..len {
                    msg.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let want = quote_whole(&msg);
                for cut in 0..=msg.len() {
                    assert_eq!(
                        quote_in_pieces(&msg, &[cut]),
                        want,
                        "{:?} cut at {cut}",
                        String::from_utf8_lossy(&msg)
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// The reviewers' property (issue #9): the streaming quoter agrees with the
        /// definition for any message cut into any pieces.
        #[test]
        fn quoting_in_pieces_matches_the_definition(
            msg in proptest::collection::vec(
                proptest::sample::select(b"From >x\n\r".to_vec()),
                0..120,
            ),
            cuts in proptest::collection::vec(0usize..120, 0..8),
        ) {
            proptest::prop_assert_eq!(quote_in_pieces(&msg, &cuts), quote_whole(&msg));
        }

        #[test]
        fn arbitrary_bytes_in_pieces_match_the_definition(
            msg in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..8),
        ) {
            proptest::prop_assert_eq!(quote_in_pieces(&msg, &cuts), quote_whole(&msg));
        }
    }
}
