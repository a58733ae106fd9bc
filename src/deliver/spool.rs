//! The spool of the sinks that hand a whole message to another program (an MDA, an LMTP or
//! SMTP server): the message goes into an unlinked temporary file while it downloads, so
//! that the other program starts only once it is complete (a dropped connection never
//! delivers half a message) and reads it at its own pace; the header is sniffed on the way
//! for the envelope sender. This module owns only that file and what is learnt while
//! writing it.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};

use super::envelope::HeaderSniffer;
use crate::error::{Error, ErrorKind, Result};

/// The spool's write buffer.
const BUFFER: usize = 64 * 1024;

/// A message being spooled.
pub struct Spool {
    file: BufWriter<File>,
    sniffer: HeaderSniffer,
    /// The message has bytes beyond ASCII.
    eight_bit: bool,
    /// A write failed: the spooled message is incomplete and must not be delivered.
    failed: bool,
}

impl Spool {
    /// An empty spool in `$TMPDIR`. Errors are `ErrorKind::Io` saying where.
    pub fn new() -> Result<Spool> {
        let file = tempfile::tempfile().map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                "cannot create a temporary file for the message (is $TMPDIR writable?)",
                e,
            )
        })?;
        Ok(Spool {
            file: BufWriter::with_capacity(BUFFER, file),
            sniffer: HeaderSniffer::new(),
            eight_bit: false,
            failed: false,
        })
    }

    /// The envelope sender from the message's `Return-Path:` (or `MAILER-DAEMON`).
    pub fn sender(&self) -> String {
        self.sniffer.sender()
    }

    /// Whether the message has bytes beyond ASCII.
    pub fn eight_bit(&self) -> bool {
        self.eight_bit
    }

    /// The complete message, positioned at its start. Errors (`ErrorKind::Io`): an earlier
    /// write failed, or the file cannot be flushed or rewound.
    pub fn finish(self) -> Result<File> {
        let cannot =
            |e: io::Error| Error::with_source(ErrorKind::Io, "cannot spool the message", e);
        if self.failed {
            return Err(Error::new(
                ErrorKind::Io,
                "an earlier write to the spool file failed",
            ));
        }
        let mut file = self.file.into_inner().map_err(|e| cannot(e.into_error()))?;
        file.rewind().map_err(cannot)?;
        Ok(file)
    }
}

impl Write for Spool {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier write to the spool failed"));
        }
        if !self.sniffer.is_complete() {
            // Only the header matters for the sender; the sniffer keeps what it needs.
            self.sniffer.feed(data);
        }
        self.eight_bit |= !data.is_ascii();
        self.file
            .write_all(data)
            .inspect_err(|_| self.failed = true)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is delivered before `finish` anyway.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_spool_gives_back_the_message_and_its_sender() {
        let mut s = Spool::new().unwrap();
        s.write_all(b"Return-Path: <a@b.example>\nSubject: caf")
            .unwrap();
        s.write_all("é\n\nbody\n".as_bytes()).unwrap();
        assert_eq!(s.sender(), "a@b.example");
        assert!(s.eight_bit());
        let mut text = String::new();
        s.finish().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "Return-Path: <a@b.example>\nSubject: café\n\nbody\n");
    }
}
