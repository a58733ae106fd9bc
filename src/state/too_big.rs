//! Which messages bigger than `max_size` the user has already been told about, so that each
//! is reported once, not on every run for as long as it stays on the server (issue #11
//! item 15).
//!
//! A side file next to the seen-state, `<key>.too-big`, so that the journal format (and
//! older versions of pop3 reading it) stays as it was: a header line `pop3-too-big 1`, then
//! one UIDL per line, percent-encoded as in the journal. It is advisory: a damaged or
//! missing file at worst repeats a report, so bad lines are skipped, not errors. It holds
//! only UIDLs that are still too big on the server (rewritten whole, atomically, when that
//! set changes), so it never grows beyond the mailbox.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::uidl::{decode_uid, encode_bytes};
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;
use crate::proto::Uid;

const HEADER: &str = "pop3-too-big 1";

/// The UIDLs already reported as too big.
#[derive(Debug)]
pub struct Reported {
    path: PathBuf,
    uids: HashSet<Uid>,
    header: &'static str,
}

/// The header of the side file of messages the filter said to skip (exit 2).
const SKIPPED_HEADER: &str = "pop3-skipped 1";

/// The header of the side file of messages the delivery target refused (5xx).
const REFUSED_HEADER: &str = "pop3-refused 1";

impl Reported {
    /// The side file of the seen-state at `uidl_path` (`<key>.uidl` -> `<key>.too-big`).
    pub fn path_for(uidl_path: &Path) -> PathBuf {
        uidl_path.with_extension("too-big")
    }

    /// The side file of the messages the filter said to skip from now on
    /// (`<key>.skipped`), the same format with its own header line. Losing it means the
    /// filter judges those messages again: nothing is lost.
    pub fn skipped_path_for(uidl_path: &Path) -> PathBuf {
        uidl_path.with_extension("skipped")
    }

    /// The side file of the messages the delivery target refused for good (5xx), already
    /// reported (`<key>.refused`): each is reported once, tried again every run, and
    /// forgotten once delivered or gone from the server.
    pub fn refused_path_for(uidl_path: &Path) -> PathBuf {
        uidl_path.with_extension("refused")
    }

    /// Load a [`Reported::refused_path_for`] file.
    pub fn load_refused(path: &Path) -> Reported {
        Reported::load_with(path, REFUSED_HEADER)
    }

    /// Load a [`Reported::skipped_path_for`] file.
    pub fn load_skipped(path: &Path) -> Reported {
        Reported::load_with(path, SKIPPED_HEADER)
    }

    /// Whether `uid` is in the set.
    pub fn contains(&self, uid: &Uid) -> bool {
        self.uids.contains(uid)
    }

    /// Load `path`; missing or unreadable is empty (the worst outcome is a repeated report).
    pub fn load(path: &Path) -> Reported {
        Reported::load_with(path, HEADER)
    }

    fn load_with(path: &Path, header: &'static str) -> Reported {
        let text = std::fs::read(path).unwrap_or_default();
        let mut lines = text.split(|&b| b == b'\n');
        let uids = if lines.next() == Some(header.as_bytes()) {
            lines
                .filter(|l| !l.is_empty())
                .filter_map(|l| decode_uid(l).ok())
                .collect()
        } else {
            HashSet::new()
        };
        Reported {
            path: path.to_path_buf(),
            uids,
            header,
        }
    }

    /// Given the messages that are too big now, return those not reported before, and
    /// remember exactly the current set (a message that left the server, or that a bigger
    /// `max_size` now lets through, is forgotten). Saves the file when the set changed.
    pub fn update<'a>(&mut self, now: impl IntoIterator<Item = &'a Uid>) -> Result<Vec<Uid>> {
        let now: HashSet<Uid> = now.into_iter().cloned().collect();
        let mut fresh: Vec<Uid> = now.difference(&self.uids).cloned().collect();
        fresh.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        if now != self.uids {
            self.uids = now;
            self.save()?;
        }
        Ok(fresh)
    }

    fn save(&self) -> Result<()> {
        let mut sorted: Vec<&Uid> = self.uids.iter().collect();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut buf = format!("{}\n", self.header).into_bytes();
        for uid in sorted {
            encode_bytes(&mut buf, uid.as_bytes());
            buf.push(b'\n');
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        fsutil::write_atomic(&self.path, &buf).map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot write {}", self.path.display()),
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &[u8]) -> Uid {
        Uid::new(s).unwrap()
    }

    #[test]
    fn each_message_is_new_once_and_the_set_follows_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = Reported::path_for(&dir.path().join("a@h:995.uidl"));
        assert!(path.to_string_lossy().ends_with("a@h:995.too-big"));
        let (a, b, odd) = (uid(b"a"), uid(b"b"), uid(b"%odd\x7f"));
        let mut r = Reported::load(&path);
        assert_eq!(r.update([&a, &odd]).unwrap(), vec![odd.clone(), a.clone()]);
        // Loaded again (the next run): nothing new.
        let mut r2 = Reported::load(&path);
        assert!(r2.update([&a, &odd]).unwrap().is_empty());
        // `a` left the server, `b` arrived.
        assert_eq!(r2.update([&odd, &b]).unwrap(), vec![b.clone()]);
        let mut r3 = Reported::load(&path);
        assert_eq!(r3.update([&a]).unwrap(), vec![a.clone()], "a was forgotten");
        let _ = r;
        r = Reported::load(&path);
        assert!(r.update([&a]).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_file_repeats_a_report_at_worst() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.too-big");
        std::fs::write(&path, "garbage\nb\n").unwrap();
        assert_eq!(Reported::load(&path).update([&uid(b"b")]).unwrap().len(), 1);
        std::fs::write(&path, "pop3-too-big 1\nb\n%zz\n\n").unwrap();
        assert!(
            Reported::load(&path)
                .update([&uid(b"b")])
                .unwrap()
                .is_empty()
        );
    }
}
