//! Reading deliveries back: the files of a Maildir or MDA directory, the messages of an
//! mboxrd file, and a [`Tally`] of delivered messages against the originals (lost, partial,
//! duplicated).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::env::{delivered_form, without_received};

/// Files in `dir` (not directories), sorted; empty when it does not exist.
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// One message of an mbox file.
#[derive(Clone, Debug)]
pub struct MboxMessage {
    /// The `From ` separator line without its LF.
    pub separator: String,
    /// The message with one level of `>From ` quoting removed and without the blank line
    /// that ends it in the mbox. A message not followed by a blank line (a torn append)
    /// keeps all its bytes, so it never equals a complete message.
    pub body: Vec<u8>,
}

/// Split an mboxrd file at its `From ` lines. Bytes before the first separator become a
/// message with an empty separator (so that they are noticed).
pub fn parse_mbox(data: &[u8]) -> Vec<MboxMessage> {
    let mut out: Vec<MboxMessage> = Vec::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some((sep, body)) = current.take() {
                out.push(finish_mbox_message(sep, body));
            }
            let sep = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
            current = Some((sep.into_owned(), Vec::new()));
            continue;
        }
        let (_, body) = current.get_or_insert_with(|| (String::new(), Vec::new()));
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            body.extend_from_slice(&line[1..]);
        } else {
            body.extend_from_slice(line);
        }
    }
    if let Some((sep, body)) = current.take() {
        out.push(finish_mbox_message(sep, body));
    }
    out
}

fn finish_mbox_message(separator: String, mut body: Vec<u8>) -> MboxMessage {
    if body.ends_with(b"\n\n") || body == b"\n" {
        body.pop();
    } else {
        // Not ended by a blank line: mark it so that it matches nothing.
        body.extend_from_slice(b"\0<no blank line after this message>");
    }
    MboxMessage { separator, body }
}

/// How delivered messages compare with the originals.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Originals never delivered.
    pub lost: usize,
    /// Delivered messages that match no original (after Received-stripping).
    pub partial: usize,
    /// Deliveries beyond the first of an original.
    pub duplicates: usize,
    /// Indexes of the lost originals.
    pub lost_which: Vec<usize>,
}

/// Compare deliveries (raw, with `Received:`) with the originals as stored on the server.
pub fn tally(originals: &[Vec<u8>], delivered_raw: &[Vec<u8>]) -> Tally {
    let index: HashMap<Vec<u8>, usize> = originals
        .iter()
        .enumerate()
        .map(|(i, m)| (delivered_form(m), i))
        .collect();
    assert_eq!(
        index.len(),
        originals.len(),
        "test originals are not unique"
    );
    let mut count = vec![0usize; originals.len()];
    let mut t = Tally::default();
    for raw in delivered_raw {
        match without_received(raw).and_then(|m| index.get(m)) {
            Some(&i) => count[i] += 1,
            None => t.partial += 1,
        }
    }
    for (i, &c) in count.iter().enumerate() {
        if c == 0 {
            t.lost += 1;
            t.lost_which.push(i);
        }
        t.duplicates += c.saturating_sub(1);
    }
    t
}
