//! The mailbox's contents: [`Message`], and the sample messages most tests fetch.

use super::wire::to_crlf;

/// One message in the mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The unique-id listing (RFC 1939 section 7: 1 to 70 printable characters).
    pub uidl: String,
    /// The message as stored; bare LF is sent as CRLF.
    pub body: Vec<u8>,
}

impl Message {
    /// The size LIST and STAT report: octets with CRLF line ends, before dot-stuffing.
    pub fn size(&self) -> usize {
        to_crlf(&self.body).len()
    }
}

/// Three messages that exercise what a fetcher must keep byte for byte:
///
/// 1. a plain message;
/// 2. lines starting with "." (also a line that is only "."), "..", "From " and ">From ",
///    8-bit bytes that are not UTF-8, a bare-LF line end, and no final line end;
/// 3. 100 KiB of body, so that the body crosses many reads and TLS records.
pub fn sample_messages() -> Vec<Message> {
    let mut tricky = b"From: Bob <bob@example.org>\r\n\
To: alice@example.org\r\n\
Subject: =?ISO-8859-1?Q?caf=E9?= and dots\r\n\
Message-ID: <tricky@example.org>\r\n\
\r\n\
.leading dot\r\n\
.\r\n\
..two dots\r\n\
From the start of a line\r\n\
>From quoted already\r\n\
bare LF line\n\
8-bit: caf\xe9 \xff\xfe \xc3\xa9\r\n\
.\r\n\
\r\n"
        .to_vec();
    tricky.extend_from_slice(b"last line without end");

    let mut big = b"From: Carol <carol@example.org>\r\n\
To: alice@example.org\r\n\
Subject: big\r\n\
\r\n"
        .to_vec();
    for i in 0..1600 {
        big.extend_from_slice(format!("{i:05} {}\r\n", "x".repeat(58)).as_bytes());
    }
    vec![
        Message {
            uidl: "uid-0001-plain".to_string(),
            body: b"From: Alice <alice@example.org>\r\n\
To: alice@example.org\r\n\
Subject: hello\r\n\
Message-ID: <plain@example.org>\r\n\
\r\n\
Hello, world.\r\n"
                .to_vec(),
        },
        Message {
            uidl: "uid-0002-tricky.!~".to_string(),
            body: tricky,
        },
        Message {
            uidl: "uid-0003-big".to_string(),
            body: big,
        },
    ]
}

/// A small extra message with the given marker in its Subject and body.
pub fn extra_message(marker: &str) -> Vec<u8> {
    format!(
        "From: Dave <dave@example.org>\r\nTo: alice@example.org\r\nSubject: {marker}\r\n\r\nbody {marker}\r\n"
    )
    .into_bytes()
}
