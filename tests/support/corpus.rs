//! Deterministic test mail: `generate(n, seed)` returns `n` messages of mixed size and content,
//! with CRLF line endings exactly as they are stored on the server, and `test_id` to find the
//! original of a delivered copy (whose comparable form comes from `env::without_received` and
//! `env::delivered_form`).
//!
//! Every message carries a unique `Message-ID` and an `X-Test-Id: N` header (N = 1..=n). The
//! "nasty but legal" specials (dot lines, `From ` lines, 8-bit text, 10 000 character lines, no
//! final newline, header only ...) sit at pseudo-random positions chosen by the seed, and a set of
//! 100 or more messages holds exactly one ~10 MB base64 attachment (built once per process).

use std::sync::OnceLock;

/// Size of the huge base64 attachment (before encoding): the encoded message is ~10 MB.
pub const HUGE_ATTACHMENT: usize = 7_500_000;

/// One generated message as stored on the server (CRLF line endings).
#[derive(Clone, Debug)]
pub struct Message {
    /// The value of its `X-Test-Id` header.
    pub id: usize,
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Attachment,
    Huge,
    Dots,
    FromLines,
    Utf8,
    Latin1,
    LongLines,
    NoFinalNewline,
    NoFinalNewlineDot,
    HeaderOnly,
    EmptyBody,
    OwnReceived,
}

/// The specials placed once each in every set that is large enough.
pub const SPECIALS: &[Kind] = &[
    Kind::Dots,
    Kind::FromLines,
    Kind::Utf8,
    Kind::Latin1,
    Kind::LongLines,
    Kind::NoFinalNewline,
    Kind::NoFinalNewlineDot,
    Kind::HeaderOnly,
    Kind::EmptyBody,
    Kind::OwnReceived,
];

/// A small, fast, deterministic PRNG (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "the",
    "be",
    "to",
    "of",
    "and",
    "a",
    "in",
    "that",
    "have",
    "it",
    "for",
    "not",
    "on",
    "with",
    "as",
    "you",
    "do",
    "at",
    "this",
    "but",
    "by",
    "from",
    "they",
    "we",
    "say",
    "or",
    "an",
    "will",
    "one",
    "all",
    "there",
    "what",
    "so",
    "up",
    "out",
    "if",
    "about",
    "who",
    "get",
    "which",
    "go",
    "when",
    "make",
    "can",
    "like",
    "time",
    "no",
    "just",
    "know",
    "take",
    "people",
    "into",
    "year",
    "good",
    "some",
    "mailbox",
    "server",
    "client",
    "message",
    "retrieve",
    "fetch",
    "protocol",
    "pipelining",
    "maildir",
    "delivery",
    "header",
    "body",
    "attachment",
    "invoice",
    "meeting",
    "report",
    "please",
    "regards",
    "thanks",
    "review",
    "draft",
    "budget",
    "deadline",
    "release",
];

const UTF8_WORDS: &[&str] = &[
    "grüße",
    "Straße",
    "naïve",
    "façade",
    "smörgåsbord",
    "żółć",
    "Ελληνικά",
    "русский",
    "日本語",
    "中文",
    "한국어",
    "עברית",
    "emoji🎉",
    "café",
    "€100",
    "Ångström",
];

const NAMES: &[&str] = &[
    "Alice Example",
    "Bob Sample",
    "Carol Tester",
    "Dave Mailer",
    "Eve Sender",
];

/// Which kind each of the ids 1..=n gets in a set of `n` generated with `seed`.
pub fn plan(n: usize, seed: u64) -> Vec<Kind> {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(n as u64));
    let mut kinds: Vec<Kind> = (0..n)
        .map(|_| {
            if rng.chance(10) {
                Kind::Attachment
            } else {
                Kind::Text
            }
        })
        .collect();
    // Fisher-Yates shuffle of the positions; the first ones get the specials.
    let mut pos: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.range(0, i);
        pos.swap(i, j);
    }
    let mut it = pos.into_iter();
    for &special in SPECIALS {
        match it.next() {
            Some(p) => kinds[p] = special,
            None => break,
        }
    }
    if n >= 100
        && let Some(p) = it.next()
    {
        kinds[p] = Kind::Huge;
    }
    kinds
}

/// `n` messages with X-Test-Id 1..=n.
pub fn generate(n: usize, seed: u64) -> Vec<Message> {
    plan(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, kind)| message(i + 1, kind, seed))
        .collect()
}

/// One message of the given kind (deterministic in `id`, `kind` and `seed`).
pub fn message(id: usize, kind: Kind, seed: u64) -> Message {
    let mut rng = Rng::new(seed ^ (id as u64).wrapping_mul(0x1000_0000_01B3));
    let mut h = Headers::new(&mut rng, id, seed);
    let mut body: Vec<Vec<u8>> = Vec::new();
    let mut final_newline = true;
    match kind {
        Kind::Text => {
            let size = 1 << rng.range(9, 15); // 512 B .. 32 KiB
            let size = size + rng.range(0, size);
            let utf8 = rng.chance(20);
            if utf8 {
                h.utf8();
            }
            h.subject(format!("Report {id}: {}", words(&mut rng, 5)));
            body = text(&mut rng, size, utf8);
            if rng.chance(30) {
                body.extend(["".into(), "-- ".into(), rng.pick(NAMES).as_bytes().to_vec()]);
            }
        }
        Kind::Attachment | Kind::Huge => {
            let size = if kind == Kind::Huge {
                HUGE_ATTACHMENT
            } else {
                rng.range(20_000, 400_000)
            };
            let boundary = format!("=_pop3test_{id}_{seed}");
            h.subject(format!("Files for {id} ({} KiB)", size / 1024));
            h.content_type(
                format!("multipart/mixed;\r\n boundary=\"{boundary}\""),
                None,
            );
            body.push(b"This is a multi-part message in MIME format.".to_vec());
            body.push(Vec::new());
            body.push(format!("--{boundary}").into_bytes());
            body.push(b"Content-Type: text/plain; charset=us-ascii".to_vec());
            body.push(Vec::new());
            let n = rng.range(200, 2000);
            body.extend(text(&mut rng, n, false));
            body.push(Vec::new());
            body.push(format!("--{boundary}").into_bytes());
            body.push(
                format!("Content-Type: application/octet-stream; name=\"file-{id}.bin\"")
                    .into_bytes(),
            );
            body.push(b"Content-Transfer-Encoding: base64".to_vec());
            body.push(Vec::new());
            if kind == Kind::Huge {
                body.extend(huge_base64().iter().cloned());
            } else {
                let mut data = vec![0u8; size];
                rng.fill(&mut data);
                body.extend(base64_lines(&data));
            }
            body.push(format!("--{boundary}--").into_bytes());
        }
        Kind::Dots => {
            h.subject(format!("dot-stuffing test {id}"));
            body = text(&mut rng, 1500, false);
            for l in [
                ".",
                "..",
                "...",
                ".leading dot",
                "..two leading dots",
                ". dot space",
            ] {
                body.push(l.into());
            }
            body.push(Vec::new());
            body.push(b".".to_vec());
            body.extend(text(&mut rng, 1500, false));
            body.push(b"end:".to_vec());
            body.push(b".".to_vec());
        }
        Kind::FromLines => {
            h.subject(format!("From_ line test {id}"));
            for l in [
                "From the desk of the test suite:",
                "From here on, lines start with From.",
                ">From a quoted line",
                ">>From a double-quoted line",
                "From MAILER-DAEMON Thu Jan  1 00:00:00 1970",
                " From indented",
                "From:not-a-header",
                "",
            ] {
                body.push(l.into());
            }
            body.extend(text(&mut rng, 2000, false));
            body.push(b"From the end".to_vec());
        }
        Kind::Utf8 => {
            h.utf8();
            h.subject(format!("Ünïcödé sübjéct 日本語 {id}"));
            body.push(
                "Grüße aus Köln! Ελληνικά, русский, 日本語, 中文, 한국어, emoji 🎉✉️.".into(),
            );
            body.push("Combining: e\u{301}  NBSP:\u{a0}end  ZWJ: 👩\u{200d}💻".into());
            body.extend(text(&mut rng, 3000, true));
        }
        Kind::Latin1 => {
            h.subject(format!("ISO-8859-1 8-bit body {id}"));
            h.content_type("text/plain; charset=iso-8859-1".into(), Some("8bit".into()));
            // "Grüße, été, naïve, © ® ± µ ÿ" in ISO-8859-1.
            body.push(b"Gr\xfc\xdfe, \xe9t\xe9, na\xefve, \xa9 \xae \xb1 \xb5 \xff".to_vec());
            for line in text(&mut rng, 2000, false) {
                let mut l = line;
                l.extend_from_slice(b" \xe4\xf6\xfc");
                body.push(l);
            }
        }
        Kind::LongLines => {
            h.subject(format!("very long lines {id}"));
            body.push(b"Long lines follow:".to_vec());
            for n in [999, 1000, 4096, 8191, 8192, 10_000] {
                let mut l = format!("L{n}:").into_bytes();
                while l.len() < n {
                    l.push(b'a' + (l.len() % 26) as u8);
                }
                body.push(l);
                let words = words(&mut rng, n / 3);
                body.push(words.as_bytes()[..n.min(words.len())].to_vec());
            }
            body.push(b"short line after".to_vec());
        }
        Kind::NoFinalNewline => {
            h.subject(format!("no final newline {id}"));
            body = text(&mut rng, 2000, false);
            body.push(b"this last line has no newline".to_vec());
            final_newline = false;
        }
        Kind::NoFinalNewlineDot => {
            h.subject(format!("ends in a lone dot without newline {id}"));
            body = text(&mut rng, 1000, false);
            body.push(b"the last line is a lone dot without newline:".to_vec());
            body.push(b".".to_vec());
            final_newline = false;
        }
        Kind::HeaderOnly => {
            h.subject(format!("header only, no body, no blank line {id}"));
            for k in 0..30 {
                h.push(format!("X-Filler-{k}: {}", words(&mut rng, 8)).into_bytes());
            }
            let mut out = h.finish();
            // No separator line and no body at all.
            out.truncate(out.len() - 2);
            return Message {
                id,
                kind,
                bytes: out,
            };
        }
        Kind::EmptyBody => {
            h.subject(format!("empty body {id}"));
        }
        Kind::OwnReceived => {
            // The stored message starts with its own Received: fields: stripping exactly the
            // one pop3 prepends must leave these intact.
            h.subject(format!("own Received fields {id}"));
            body = text(&mut rng, 1500, false);
        }
    }
    let mut out = h.finish();
    for (i, line) in body.iter().enumerate() {
        out.extend_from_slice(line);
        if final_newline || i + 1 < body.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    Message {
        id,
        kind,
        bytes: out,
    }
}

struct Headers {
    top: Vec<Vec<u8>>,
    fields: Vec<Vec<u8>>,
    subject: String,
    content_type: String,
    cte: Option<String>,
    from: String,
}

impl Headers {
    fn new(rng: &mut Rng, id: usize, seed: u64) -> Headers {
        let mut top = Vec::new();
        if rng.chance(40) {
            top.push(format!("Return-Path: <sender-{}@example.org>", id % 97).into_bytes());
        }
        let received = if rng.chance(30) { rng.range(1, 2) } else { 0 };
        for k in 0..received {
            top.push(
                format!(
                    "Received: from mx{k}.example.org (mx{k}.example.org [192.0.2.{}])\r\n\
                     \tby mail.corpus.test (Postfix) with ESMTPS id {:08X}\r\n\
                     \tfor <alice@corpus.test>; {}",
                    10 + k,
                    rng.next_u64() as u32,
                    date(id),
                )
                .into_bytes(),
            );
        }
        let from = format!("\"{}\" <sender-{}@example.org>", rng.pick(NAMES), id % 97);
        Headers {
            top,
            fields: vec![
                format!("Message-ID: <{id}.{seed}@corpus.pop3.test>").into_bytes(),
                format!("X-Test-Id: {id}").into_bytes(),
                format!("Date: {}", date(id)).into_bytes(),
            ],
            subject: String::new(),
            content_type: "text/plain; charset=us-ascii".into(),
            cte: Some("7bit".into()),
            from,
        }
    }

    fn subject(&mut self, s: String) {
        self.subject = s;
    }

    fn utf8(&mut self) {
        self.from = "\"Jörg Müller-Lüdenscheidt 日本\" <joerg@example.org>".into();
        self.content_type("text/plain; charset=utf-8".into(), Some("8bit".into()));
    }

    fn content_type(&mut self, ct: String, cte: Option<String>) {
        self.content_type = ct;
        self.cte = cte;
    }

    fn push(&mut self, field: Vec<u8>) {
        self.fields.push(field);
    }

    /// The header block including the empty separator line.
    fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line = |l: &[u8]| {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        };
        for l in &self.top {
            line(l);
        }
        line(format!("From: {}", self.from).as_bytes());
        line(b"To: Alice <alice@corpus.test>");
        line(format!("Subject: {}", self.subject).as_bytes());
        for l in &self.fields {
            line(l);
        }
        line(b"MIME-Version: 1.0");
        line(format!("Content-Type: {}", self.content_type).as_bytes());
        if let Some(cte) = &self.cte {
            line(format!("Content-Transfer-Encoding: {cte}").as_bytes());
        }
        line(b"");
        out
    }
}

fn date(id: usize) -> String {
    // Not a real calendar computation, just plausible and deterministic.
    let day = 1 + id % 28;
    let (h, m, s) = ((id / 3600) % 24, (id / 60) % 60, id % 60);
    format!("Mon, {day:02} Jan 2024 {h:02}:{m:02}:{s:02} +0000")
}

fn words(rng: &mut Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick::<&str>(WORDS));
    }
    s
}

/// Wrapped text lines totalling about `nbytes`.
fn text(rng: &mut Rng, nbytes: usize, utf8: bool) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut total = 0;
    while total < nbytes {
        let w = if utf8 && rng.chance(15) {
            rng.pick(UTF8_WORDS)
        } else {
            rng.pick(WORDS)
        };
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
        if rng.chance(5) {
            cur.push('.');
        }
        if cur.len() >= 72 {
            total += cur.len() + 2;
            lines.push(std::mem::take(&mut cur).into_bytes());
            if rng.chance(12) {
                lines.push(Vec::new());
                total += 2;
            }
        }
    }
    if !cur.is_empty() {
        lines.push(cur.into_bytes());
    }
    lines
}

fn huge_base64() -> &'static Vec<Vec<u8>> {
    static HUGE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    HUGE.get_or_init(|| {
        let mut data = vec![0u8; HUGE_ATTACHMENT];
        Rng::new(0x00C0_FFEE).fill(&mut data);
        base64_lines(&data)
    })
}

/// Standard base64 in 76-character lines.
pub fn base64_lines(data: &[u8]) -> Vec<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut enc = Vec::with_capacity(data.len() / 3 * 4 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        enc.push(ALPHABET[(v >> 18) as usize & 63]);
        enc.push(ALPHABET[(v >> 12) as usize & 63]);
        enc.push(if chunk.len() > 1 {
            ALPHABET[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        enc.push(if chunk.len() > 2 {
            ALPHABET[v as usize & 63]
        } else {
            b'='
        });
    }
    enc.chunks(76).map(<[u8]>::to_vec).collect()
}

/// The value of the first `X-Test-Id:` field in the header section.
pub fn test_id(msg: &[u8]) -> Option<usize> {
    for line in msg.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() > 10 && line[..10].eq_ignore_ascii_case(b"x-test-id:") {
            return std::str::from_utf8(&line[10..]).ok()?.trim().parse().ok();
        }
    }
    None
}

/// The first line where `a` and `b` differ (1-based), with both lines, for assertion messages.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<String> {
    let (la, lb): (Vec<&[u8]>, Vec<&[u8]>) = (
        a.split(|&c| c == b'\n').collect(),
        b.split(|&c| c == b'\n').collect(),
    );
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        if x != y {
            let show = |l: Option<&&[u8]>| match l {
                None => "<none>".to_string(),
                Some(l) => {
                    let s = String::from_utf8_lossy(l);
                    let s: String = s.chars().take(120).collect();
                    format!("{s:?} ({} bytes)", l.len())
                }
            };
            return Some(format!(
                "line {}: expected {} got {}",
                i + 1,
                show(x),
                show(y)
            ));
        }
    }
    None
}
