//! The durable record of which UIDLs have been delivered, with the time each was first seen.
//!
//! File format (text, versioned): a header line `pop3-uidl 1`, then one line per UIDL:
//! `<unix-seconds> <uid>` where the uid has every byte outside 0x21..=0x7E, and `%`,
//! percent-encoded as `%XX`. New records are appended and fsynced before `record` returns
//! (an append-only journal); a final line without its LF (a crash during the append) is
//! ignored on load, which at worst re-delivers that one message. `prune` rewrites the whole
//! file with `fsutil::write_atomic`. Any other damage is an error naming the file and line,
//! never a silent "everything is new".

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::proto::Uid;

/// The seen-UIDL set of one account.
#[derive(Debug)]
pub struct SeenState {
    path: PathBuf,
    seen: HashMap<Uid, i64>,
}

impl SeenState {
    /// Load `path`; a missing file is an empty state (the parent directory is created on the
    /// first write). Errors (`ErrorKind::Io`) name the file and, for bad content, the line.
    pub fn load(path: &Path) -> Result<SeenState> {
        let _ = path;
        todo!("state helper")
    }

    /// The file this state lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `uid` has been recorded.
    pub fn contains(&self, uid: &Uid) -> bool {
        self.seen.contains_key(uid)
    }

    /// When `uid` was first recorded (Unix seconds).
    pub fn first_seen(&self, uid: &Uid) -> Option<i64> {
        self.seen.get(uid).copied()
    }

    /// How many UIDLs are recorded.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Record every uid in `uids` as seen at `now` (uids already present keep their time) and
    /// make it durable with one fsync before returning (the file and, when it was created,
    /// its directory). Errors are `ErrorKind::Io` naming the file.
    pub fn record(&mut self, uids: &[&Uid], now: i64) -> Result<()> {
        let _ = (uids, now);
        todo!("state helper")
    }

    /// Forget every recorded uid for which `keep` is false and rewrite the file atomically
    /// (only when something was removed or the journal has grown; a no-op otherwise).
    pub fn prune(&mut self, keep: impl Fn(&Uid) -> bool) -> Result<()> {
        let _ = keep;
        todo!("state helper")
    }
}
