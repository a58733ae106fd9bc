//! The durable record of which UIDLs have been delivered, with the time each was first seen.
//!
//! File format (text, versioned): a header line `pop3-uidl 1`, then one line per UIDL:
//! `<unix-seconds> <uid>` where the uid has every byte outside 0x21..=0x7E, and `%`,
//! percent-encoded as `%XX`. New records are appended and fsynced before `record` returns
//! (an append-only journal); a final line without its LF (a crash during the append) is
//! ignored on load, which at worst re-delivers that one message. `prune` rewrites the whole
//! file with `fsutil::write_atomic`. Any other damage is an error naming the file and line,
//! never a silent "everything is new".
//!
//! Intent lines, `? <unix-seconds> <uid> <token>`, note a delivery that is about to become
//! visible (a group commit, or an mbox append) with a token from which the sink can tell
//! later whether it finished. An intent with no record line after it belongs to a run that
//! was killed; the engine asks the sink about it ([`SeenState::unresolved`],
//! [`SeenState::resolve`]) before fetching, so that a kill in the middle of a batch causes
//! no duplicate beyond the message in flight (DESIGN.md invariant 3).
//!
//! Deletion lines, `- <size> <uid>`, note before QUIT that a recorded message is being
//! deleted and how big it was listed. QUIT's +OK is followed by forgetting the UIDL (a
//! server may re-use it for a new message); if the run dies in between, the next run takes
//! a listed message with that UIDL for the deleted one only when its size matches, and for a
//! new message otherwise (issue 9 item 4: a server that re-uses UIDLs must cost at most a
//! duplicate, never a loss).
//!
//! The caller holds the account lock (`state::lock`) for as long as a `SeenState` lives: this
//! module assumes it is the only writer of its file.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::uid_table::UidTable;
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;
use crate::proto::Uid;

/// The first line of every state file; the number is the format version.
const HEADER: &[u8] = b"pop3-uidl 1";

/// `prune` compacts the journal when it holds more than this many lines per live entry
/// (plus a constant), even if nothing was removed.
const GROWTH_FACTOR: usize = 2;
const GROWTH_SLACK: usize = 64;

/// What a journal line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Record,
    Intent,
}

/// The seen-UIDL set of one account.
#[derive(Debug)]
pub struct SeenState {
    path: PathBuf,
    seen: UidTable,
    /// Length of the file up to the end of its last complete line (0: no valid header yet).
    valid_len: u64,
    /// Whether the file holds bytes after `valid_len` (a torn final line) that the next
    /// append must cut off first, lest it glue a new record onto the fragment.
    torn_tail: bool,
    /// Whether the file existed at load (or has since been written): a new file needs its
    /// directory fsynced.
    exists: bool,
    /// Record lines in the file, to notice a journal that has grown well past `seen`.
    file_records: usize,
    /// Intents without a record: (uid, token), in the order they were written.
    intents: Vec<(Uid, String)>,
    /// Recorded uids being deleted (a deletion line), with their listed size.
    deleting: HashMap<Uid, u64>,
    /// Intent lines in the file: they are dead weight once resolved, so many of them make
    /// `prune` compact the file.
    intent_lines: usize,
    /// No file at all ([`SeenState::in_memory`]): for unit tests of the code above, which
    /// then run without a disk.
    in_memory: bool,
}

impl SeenState {
    /// Load `path`; a missing file is an empty state (the parent directory is created on the
    /// first write). Errors (`ErrorKind::Io`) name the file and, for bad content, the line.
    pub fn load(path: &Path) -> Result<SeenState> {
        let mut state = SeenState::empty(path, false);
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(state),
            Err(e) => return Err(state.read_error(e)),
        };
        state.exists = true;
        // About 50 bytes a line, most of it the UIDL: reserving avoids regrowing a big
        // state (and holding the old and the new table at once). Untouched capacity costs
        // address space, not memory.
        if let Ok(meta) = file.metadata() {
            let bytes = usize::try_from(meta.len())
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            state.seen = UidTable::with_capacity(bytes / 50, bytes);
        }
        // Streamed line by line: a state of 100 000 UIDLs never sits in memory twice.
        state.parse(io::BufReader::with_capacity(64 * 1024, file))?;
        Ok(state)
    }

    /// A state that lives in memory only: everything works as with a file, nothing is
    /// written (the engine's unit tests use it; `path` appears in messages only).
    pub fn in_memory(path: &Path) -> SeenState {
        SeenState::empty(path, true)
    }

    fn empty(path: &Path, in_memory: bool) -> SeenState {
        SeenState {
            path: path.to_path_buf(),
            seen: UidTable::default(),
            valid_len: 0,
            torn_tail: false,
            exists: false,
            file_records: 0,
            intents: Vec::new(),
            deleting: HashMap::new(),
            intent_lines: 0,
            in_memory,
        }
    }

    fn read_error(&self, e: io::Error) -> Error {
        Error::with_source(
            ErrorKind::Io,
            format!("cannot read UIDL state {}", self.path.display()),
            e,
        )
    }

    /// Fill `seen` (and the unresolved intents) from the file.
    fn parse(&mut self, mut reader: impl io::BufRead) -> Result<()> {
        let mut line = Vec::with_capacity(256);
        let mut number = 0usize;
        // Intents not (yet) followed by their record, with their position in the file;
        // usually a handful at a time.
        let mut pending: HashMap<Uid, (usize, String)> = HashMap::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.read_error(e))?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                // Only complete lines count; a fragment after the last LF is a torn append.
                self.torn_tail = true;
                log::warn!(
                    "{}: ignoring an incomplete last line (an interrupted write)",
                    self.path.display()
                );
                break;
            }
            self.valid_len += n as u64;
            number += 1;
            let text = &line[..n - 1];
            if number == 1 {
                if text != HEADER {
                    let what = if text.starts_with(b"pop3-uidl ") {
                        "unsupported state file version (expected \"pop3-uidl 1\")"
                    } else {
                        "not a pop3 UIDL state file (expected \"pop3-uidl 1\")"
                    };
                    return Err(self.bad_line(1, what));
                }
                continue;
            }
            self.file_records += 1;
            if let Some(rest) = text.strip_prefix(b"- ") {
                let (size, uid) = parse_record(rest).map_err(|what| self.bad_line(number, what))?;
                self.intent_lines += 1;
                self.deleting.insert(uid, u64::try_from(size).unwrap_or(0));
                continue;
            }
            if let Some(rest) = text.strip_prefix(b"? ") {
                let (uid, token) =
                    parse_intent(rest).map_err(|what| self.bad_line(number, what))?;
                self.intent_lines += 1;
                // A later intent for the same uid replaces the earlier one (and its place).
                pending.insert(uid, (number, token));
                continue;
            }
            let (time, uid) = parse_record(text).map_err(|what| self.bad_line(number, what))?;
            // An intent whose uid was recorded later finished normally.
            pending.remove(&uid);
            // The first line for a uid is the earliest: keep it as "first seen".
            self.seen.insert(uid.as_bytes(), time);
        }
        // In the order they were written: only the last one can have been in flight
        // when a run that appends one message at a time (mbox) was killed.
        let mut pending: Vec<(usize, Uid, String)> =
            pending.into_iter().map(|(u, (n, t))| (n, u, t)).collect();
        pending.sort_unstable_by_key(|(n, _, _)| *n);
        self.intents = pending.into_iter().map(|(_, u, t)| (u, t)).collect();
        Ok(())
    }

    fn bad_line(&self, line: usize, what: &str) -> Error {
        Error::new(
            ErrorKind::Io,
            format!(
                "UIDL state {} is damaged at line {line}: {what}; fix or remove the line \
                 (removing it re-delivers that message)",
                self.path.display()
            ),
        )
    }

    /// The file this state lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `uid` has been recorded.
    pub fn contains(&self, uid: &Uid) -> bool {
        self.seen.contains(uid.as_bytes())
    }

    /// When `uid` was first recorded (Unix seconds).
    pub fn first_seen(&self, uid: &Uid) -> Option<i64> {
        self.seen.get(uid.as_bytes())
    }

    /// When `uid`, listed with `size` octets, was first recorded; `None` when it was not, or
    /// when a deletion of that UIDL was noted for a message of another size (the server has
    /// re-used the UIDL for a new message).
    pub fn first_seen_listed(&self, uid: &Uid, size: u64) -> Option<i64> {
        match self.deleting.get(uid) {
            Some(&was) if was != size => None,
            _ => self.first_seen(uid),
        }
    }

    /// Whether a deletion of `uid` was noted and not yet confirmed (see the module
    /// documentation): its listed size then decides whether it is the same message.
    pub fn deletion_noted(&self, uid: &Uid) -> bool {
        self.deleting.contains_key(uid)
    }

    /// Note durably that the recorded messages `items` (uid, listed size) are being deleted
    /// (before QUIT; see the module documentation).
    pub fn note_deleting(&mut self, items: &[(&Uid, u64)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.append_lines(LineKind::Intent, items.len(), true, |buf| {
            for (uid, size) in items {
                buf.extend_from_slice(b"- ");
                encode_record(
                    buf,
                    i64::try_from(*size).unwrap_or(i64::MAX),
                    uid.as_bytes(),
                );
            }
        })?;
        for (uid, size) in items {
            self.deleting.insert((*uid).clone(), *size);
        }
        Ok(())
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
        let mut batch: HashSet<&Uid> = HashSet::with_capacity(uids.len());
        let fresh: Vec<&Uid> = uids
            .iter()
            .copied()
            .filter(|&uid| !self.seen.contains(uid.as_bytes()) && batch.insert(uid))
            .collect();
        if fresh.is_empty() {
            // Everything is already durable.
            return Ok(());
        }
        self.append_lines(LineKind::Record, fresh.len(), true, |buf| {
            for uid in &fresh {
                encode_record(buf, now, uid.as_bytes());
            }
        })?;
        for uid in fresh {
            self.seen.insert(uid.as_bytes(), now);
        }
        Ok(())
    }

    /// Note that the deliveries `items` (uid, sink token) are about to become visible.
    /// With `sync` the note is fsynced before returning; without, the caller calls
    /// [`SeenState::sync`] before the deliveries become visible (so that one fsync of the
    /// message data can come first).
    pub fn note_intents(&mut self, items: &[(&Uid, &str)], now: i64, sync: bool) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.append_lines(LineKind::Intent, items.len(), sync, |buf| {
            for (uid, token) in items {
                buf.extend_from_slice(b"? ");
                encode_record(buf, now, uid.as_bytes());
                buf.pop();
                buf.push(b' ');
                encode_bytes(buf, token.as_bytes());
                buf.push(b'\n');
            }
        })
    }

    /// Append `lines` journal lines of `kind` written by `write` (after the header, for a new
    /// file) with one write, and one fsync when `sync`.
    fn append_lines(
        &mut self,
        kind: LineKind,
        lines: usize,
        sync: bool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let mut buf = Vec::with_capacity(lines * 80 + HEADER.len() + 1);
        if self.valid_len == 0 {
            buf.extend_from_slice(HEADER);
            buf.push(b'\n');
        }
        write(&mut buf);
        self.write_journal(&buf, sync).map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot write UIDL state {}", self.path.display()),
                e,
            )
        })?;
        self.valid_len += buf.len() as u64;
        self.file_records += lines;
        if kind == LineKind::Intent {
            self.intent_lines += lines;
        }
        Ok(())
    }

    /// fsync the state file (after [`SeenState::note_intents`] without `sync`).
    pub fn sync(&mut self) -> Result<()> {
        if self.in_memory {
            return Ok(());
        }
        crate::crashpoint::hit("state.fsync", self.path.display());
        let result = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|f| f.sync_all());
        result.map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot fsync UIDL state {}", self.path.display()),
                e,
            )
        })
    }

    /// Deliveries a killed run started but never recorded: (uid, token), oldest first.
    pub fn unresolved(&self) -> &[(Uid, String)] {
        &self.intents
    }

    /// Settle the unresolved intents: `delivered[i]` says whether the sink found the i-th
    /// delivery complete; those are recorded as seen at `now`, the others forgotten (their
    /// messages are still new). The file is then compacted so the intents are gone.
    pub fn resolve(&mut self, delivered: &[bool], now: i64) -> Result<()> {
        if self.intents.is_empty() {
            return Ok(());
        }
        let intents = std::mem::take(&mut self.intents);
        let done: Vec<&Uid> = intents
            .iter()
            .zip(delivered)
            .filter(|(_, d)| **d)
            .map(|((uid, _), _)| uid)
            .collect();
        self.record(&done, now)?;
        self.rewrite()
    }

    /// Append `buf` to the journal with one write, and an fsync when `sync`.
    fn write_journal(&mut self, buf: &[u8], sync: bool) -> io::Result<()> {
        if self.in_memory {
            return Ok(());
        }
        let created = !self.exists;
        let dir = fsutil::parent_dir(&self.path);
        if created {
            fsutil::create_dirs(&dir)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        let len = file.metadata()?.len();
        if len < self.valid_len {
            return Err(io::Error::other(
                "the file shrank since it was loaded (another program changed it)",
            ));
        }
        if len > self.valid_len {
            // A torn line from a crash, or the remains of a write that failed earlier in this
            // run: cut it off so the new records start on a line of their own.
            file.set_len(self.valid_len)?;
        }
        crate::crashpoint::hit("state.append", buf.len());
        let result = file.write_all(buf).and_then(|()| {
            if sync {
                crate::crashpoint::hit("state.fsync", self.path.display());
                file.sync_all()
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            // Best effort: take back what may have reached the file; the next append cuts
            // it off anyway.
            let _ = file.set_len(self.valid_len);
            return Err(e);
        }
        self.torn_tail = false;
        if created {
            // Until this succeeds the next append counts as a creation again and retries it.
            fsutil::sync_dir(&dir)?;
            self.exists = true;
        }
        Ok(())
    }

    /// Forget every recorded uid for which `keep` is false and rewrite the file atomically
    /// (only when something was removed or the journal has grown; a no-op otherwise).
    pub fn prune(&mut self, keep: impl Fn(&[u8]) -> bool) -> Result<()> {
        let before = self.seen.len();
        self.seen.retain(keep);
        let seen = &self.seen;
        self.deleting.retain(|uid, _| seen.contains(uid.as_bytes()));
        let removed = before - self.seen.len();
        let grown = self.file_records > GROWTH_FACTOR * self.seen.len() + GROWTH_SLACK
            || self.intent_lines > self.seen.len() / 4 + GROWTH_SLACK;
        if removed == 0 && !grown && !self.torn_tail {
            return Ok(());
        }
        self.rewrite()
    }

    /// Every recorded uid with its first-seen time, sorted by time then uid (the order the
    /// file is written in), for `pop3 state ACCOUNT list` and `export`.
    pub fn entries(&self) -> Vec<(Uid, i64)> {
        self.sorted()
            .into_iter()
            .filter_map(|(u, t)| Some((Uid::new(u)?, t)))
            .collect()
    }

    /// Every recorded uid with its time, sorted by time then uid.
    fn sorted(&self) -> Vec<(&[u8], i64)> {
        let mut entries: Vec<(&[u8], i64)> = self.seen.iter().collect();
        entries.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        entries
    }

    /// Merge `items` (uid, first-seen time) into the state, as when carrying over another
    /// program's seen-state: a new uid gets its time, a uid already recorded keeps the
    /// earlier of the two times (so `delete_after` counts from when the message was really
    /// first seen). The file is rewritten atomically once (a crash leaves the old state or
    /// the new one). Returns how many uids were new.
    pub fn import(&mut self, items: &[(Uid, i64)]) -> Result<usize> {
        let mut added = 0;
        let mut changed = false;
        for (uid, time) in items {
            let new = !self.seen.contains(uid.as_bytes());
            if self.seen.insert_earliest(uid.as_bytes(), *time) {
                changed = true;
                added += usize::from(new);
            }
        }
        if changed {
            self.rewrite()?;
        }
        Ok(added)
    }

    /// Forget `uids` (the next fetch takes those messages for new) and rewrite the file
    /// atomically when any was recorded. Returns how many were.
    pub fn forget(&mut self, uids: &[Uid]) -> Result<usize> {
        let mut removed = 0;
        for uid in uids {
            if self.seen.remove(uid.as_bytes()) {
                removed += 1;
            }
            self.deleting.remove(uid);
        }
        if removed > 0 {
            self.rewrite()?;
        }
        Ok(removed)
    }

    /// Replace the file with the live records only (no intents, no duplicates).
    fn rewrite(&mut self) -> Result<()> {
        // Sorted by time then uid: the file reads like the journal it replaces and the
        // output does not depend on hash order.
        let entries = self.sorted();
        let mut buf = Vec::with_capacity(entries.len() * 40 + HEADER.len() + 1);
        buf.extend_from_slice(HEADER);
        buf.push(b'\n');
        for (uid, time) in entries {
            encode_record(&mut buf, time, uid);
        }
        // Deletion notes of uids still recorded (their QUIT failed): keep them.
        let mut deleting: Vec<(&Uid, &u64)> = self.deleting.iter().collect();
        deleting.sort_unstable();
        for (uid, &size) in deleting {
            buf.extend_from_slice(b"- ");
            encode_record(
                &mut buf,
                i64::try_from(size).unwrap_or(i64::MAX),
                uid.as_bytes(),
            );
        }
        let written = if self.in_memory {
            Ok(())
        } else {
            fsutil::write_atomic(&self.path, &buf)
        };
        written.map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot rewrite UIDL state {}", self.path.display()),
                e,
            )
        })?;
        self.exists = true;
        self.valid_len = buf.len() as u64;
        self.torn_tail = false;
        self.file_records = self.seen.len() + self.deleting.len();
        self.intent_lines = self.deleting.len();
        Ok(())
    }
}

/// Append `<time> <encoded uid>\n` to `buf`.
fn encode_record(buf: &mut Vec<u8>, time: i64, uid: &[u8]) {
    buf.extend_from_slice(time.to_string().as_bytes());
    buf.push(b' ');
    encode_bytes(buf, uid);
    buf.push(b'\n');
}

/// Percent-encode every byte outside 0x21..=0x7E, and `%` itself.
pub(crate) fn encode_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    crate::proto::hex::percent_encode(buf, bytes);
}

/// Parse the part of an intent line after `? `: `<time> <uid> <token>`.
fn parse_intent(rest: &[u8]) -> std::result::Result<(Uid, String), &'static str> {
    let last = rest
        .iter()
        .rposition(|&b| b == b' ')
        .ok_or("expected \"? <unix-seconds> <uid> <token>\"")?;
    let (_, uid) = parse_record(&rest[..last])?;
    let token = decode_bytes(&rest[last + 1..])?;
    let token = String::from_utf8(token).map_err(|_| "intent token is not UTF-8")?;
    if token.is_empty() {
        return Err("empty intent token");
    }
    Ok((uid, token))
}

/// Parse one record line (without its LF).
fn parse_record(line: &[u8]) -> std::result::Result<(i64, Uid), &'static str> {
    let sp = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or("expected \"<unix-seconds> <uid>\"")?;
    let (num, enc) = (&line[..sp], &line[sp + 1..]);
    let time = parse_time(num).ok_or("bad time (expected Unix seconds)")?;
    let uid = decode_uid(enc)?;
    Ok((time, uid))
}

/// Decimal seconds, optionally negative; nothing else (no `+`, no spaces).
fn parse_time(num: &[u8]) -> Option<i64> {
    let digits = num.strip_prefix(b"-").unwrap_or(num);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(num).ok()?.parse().ok()
}

/// Undo `encode_record`'s percent-encoding and validate the result as a `Uid`.
pub(crate) fn decode_uid(enc: &[u8]) -> std::result::Result<Uid, &'static str> {
    // The common case, nothing encoded: no intermediate buffer.
    if enc.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b'%') {
        return Uid::new(enc).ok_or("invalid uid (empty or too long)");
    }
    let out = decode_bytes(enc)?;
    Uid::new(&out).ok_or("invalid uid (empty, too long, or holding a forbidden byte)")
}

/// Undo [`encode_bytes`].
fn decode_bytes(enc: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(enc.len());
    let mut i = 0;
    while i < enc.len() {
        let b = enc[i];
        if b == b'%' {
            let hi = enc
                .get(i + 1)
                .and_then(|&h| crate::proto::hex::digit_value(h));
            let lo = enc
                .get(i + 2)
                .and_then(|&l| crate::proto::hex::digit_value(l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err("bad percent-encoding in uid");
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else if (0x21..=0x7e).contains(&b) {
            out.push(b);
            i += 1;
        } else {
            return Err("unencoded byte in uid");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uid(s: &[u8]) -> Uid {
        Uid::new(s).unwrap()
    }

    /// A new state in a temporary directory (kept alive by the first value).
    fn fresh() -> (tempfile::TempDir, PathBuf, SeenState) {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(&dir);
        let s = SeenState::load(&path).unwrap();
        (dir, path, s)
    }

    fn state_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("state/pop3/alice@pop.example.com:995")
    }

    #[test]
    fn import_keeps_the_earliest_time_and_survives_a_reload() {
        let (_dir, path, mut s) = fresh();
        s.record(&[&uid(b"a"), &uid(b"b")], 500).unwrap();
        let added = s
            .import(&[(uid(b"a"), 100), (uid(b"b"), 900), (uid(b"c/d"), 300)])
            .unwrap();
        assert_eq!(added, 1);
        assert_eq!(s.first_seen(&uid(b"a")), Some(100));
        assert_eq!(s.first_seen(&uid(b"b")), Some(500));
        let s = SeenState::load(&path).unwrap();
        let got: Vec<(Vec<u8>, i64)> = s
            .entries()
            .into_iter()
            .map(|(u, t)| (u.as_bytes().to_vec(), t))
            .collect();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), 100),
                (b"c/d".to_vec(), 300),
                (b"b".to_vec(), 500)
            ]
        );
        // The file is still the version-1 journal: a record appended later loads too.
        let mut s = SeenState::load(&path).unwrap();
        s.record(&[&uid(b"e")], 600).unwrap();
        assert_eq!(SeenState::load(&path).unwrap().len(), 4);
    }

    #[test]
    fn import_of_nothing_new_writes_nothing() {
        let (_dir, path, mut s) = fresh();
        assert_eq!(s.import(&[]).unwrap(), 0);
        assert!(!path.exists());
        s.record(&[&uid(b"a")], 5).unwrap();
        assert_eq!(s.import(&[(uid(b"a"), 9)]).unwrap(), 0);
        assert_eq!(
            SeenState::load(&path).unwrap().first_seen(&uid(b"a")),
            Some(5)
        );
    }

    #[test]
    fn forget_removes_only_the_named_uids_durably() {
        let (_dir, path, mut s) = fresh();
        s.record(&[&uid(b"a"), &uid(b"b")], 7).unwrap();
        s.note_deleting(&[(&uid(b"b"), 10)]).unwrap();
        assert_eq!(s.forget(&[uid(b"b"), uid(b"zz")]).unwrap(), 1);
        assert_eq!(s.forget(&[uid(b"zz")]).unwrap(), 0);
        let s = SeenState::load(&path).unwrap();
        assert!(s.contains(&uid(b"a")));
        assert!(!s.contains(&uid(b"b")));
        // No deletion note is left for the forgotten uid.
        assert_eq!(s.first_seen_listed(&uid(b"b"), 99), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn missing_file_is_empty_and_not_created_by_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(&dir);
        let s = SeenState::load(&path).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.len(), 0);
        assert_eq!(s.path(), path);
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
    }

    #[test]
    fn intents_survive_a_kill_and_are_resolved() {
        let (_dir, path, mut s) = fresh();
        s.record(&[&uid(b"old")], 1).unwrap();
        let (a, b, c) = (uid(b"a"), uid(b"b/..%x\xff"), uid(b"c"));
        s.note_intents(&[(&a, "tok-a"), (&b, "tok b%")], 5, true)
            .unwrap();
        s.note_intents(&[(&c, "tok-c")], 6, false).unwrap();
        s.sync().unwrap();
        // c finished normally before the "kill"; a and b did not get their records.
        s.record(&[&c], 7).unwrap();
        drop(s);

        let mut s = SeenState::load(&path).unwrap();
        let pending: Vec<(Uid, String)> = s.unresolved().to_vec();
        assert_eq!(
            pending,
            [
                (a.clone(), "tok-a".to_owned()),
                (b.clone(), "tok b%".to_owned())
            ]
        );
        assert!(s.contains(&c) && !s.contains(&a) && !s.contains(&b));
        // The sink found a's delivery complete, b's not.
        s.resolve(&[true, false], 9).unwrap();
        assert!(s.unresolved().is_empty());
        assert_eq!(s.first_seen(&a), Some(9));
        assert!(!s.contains(&b));
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("? "), "intents are compacted away: {text}");

        let s = SeenState::load(&path).unwrap();
        assert!(s.unresolved().is_empty());
        assert!(s.contains(&a) && s.contains(&c) && s.contains(&uid(b"old")));
        assert!(!s.contains(&b));
    }

    #[test]
    fn a_bad_intent_line_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(&dir);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "pop3-uidl 1\n1 a\n? 2 b\n").unwrap();
        let err = SeenState::load(&path).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn record_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(&dir);
        let (a, b) = (uid(b"msg-1"), uid(b"msg-2"));
        let mut s = SeenState::load(&path).unwrap();
        s.record(&[&a, &b], 1_700_000_000).unwrap();
        assert!(s.contains(&a));
        let c = uid(b"msg-3");
        s.record(&[&c], 1_700_000_100).unwrap();

        let t = SeenState::load(&path).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.first_seen(&a), Some(1_700_000_000));
        assert_eq!(t.first_seen(&b), Some(1_700_000_000));
        assert_eq!(t.first_seen(&c), Some(1_700_000_100));
        assert!(!t.contains(&uid(b"msg-4")));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "pop3-uidl 1\n1700000000 msg-1\n1700000000 msg-2\n1700000100 msg-3\n"
        );
    }

    #[test]
    fn new_file_and_dirs_are_private() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, path, mut s) = fresh();
        s.record(&[&uid(b"x")], 1).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let parent = fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.mode() & 0o777, 0o700);
    }

    #[test]
    fn first_seen_is_kept_on_re_record() {
        let (_dir, path, mut s) = fresh();
        let a = uid(b"a");
        s.record(&[&a], 100).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        s.record(&[&a, &a], 200).unwrap();
        assert_eq!(s.first_seen(&a), Some(100));
        // Nothing new: the journal did not grow.
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
        assert_eq!(SeenState::load(&path).unwrap().first_seen(&a), Some(100));
    }

    #[test]
    fn duplicate_in_one_batch_is_written_once() {
        let (_dir, path, mut s) = fresh();
        s.record(&[&uid(b"a"), &uid(b"a")], 5).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "pop3-uidl 1\n5 a\n");
    }

    #[test]
    fn hostile_uids_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(&dir);
        let mut hostile: Vec<Uid> = [
            &b"%"[..],
            b"%41",
            b"/",
            b"../../etc/passwd",
            b"..",
            b"\"quoted'\"",
            b"\x7f\x01\x1b[31m",
            b"caf\xc3\xa9",
        ]
        .iter()
        .map(|b| uid(b))
        .collect();
        hostile.push(uid(&(0x80..=0xffu8).collect::<Vec<_>>()));
        let refs: Vec<&Uid> = hostile.iter().collect();
        let mut s = SeenState::load(&path).unwrap();
        s.record(&refs, 42).unwrap();

        let text = fs::read(&path).unwrap();
        assert!(
            text.iter()
                .all(|&b| b == b'\n' || (0x20..=0x7e).contains(&b))
        );
        let t = SeenState::load(&path).unwrap();
        assert_eq!(t.len(), hostile.len());
        for u in &hostile {
            assert_eq!(t.first_seen(u), Some(42), "{u}");
        }
        // "%41" is stored encoded, so it does not collide with "A".
        assert!(!t.contains(&uid(b"A")));
    }

    #[test]
    fn truncated_final_line_is_ignored_and_then_overwritten() {
        let (_dir, path, mut s) = fresh();
        s.record(&[&uid(b"a")], 1).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"2 torn-uid").unwrap();
        drop(f);

        let mut t = SeenState::load(&path).unwrap();
        assert_eq!(t.len(), 1);
        assert!(!t.contains(&uid(b"torn-uid")));
        // The next append must not glue onto the fragment.
        t.record(&[&uid(b"b")], 3).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "pop3-uidl 1\n1 a\n3 b\n"
        );
        assert_eq!(SeenState::load(&path).unwrap().len(), 2);
    }

    #[test]
    fn an_empty_file_or_a_torn_header_is_an_empty_state_that_recovers() {
        for content in [&b""[..], b"pop3-ui"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s");
            fs::write(&path, content).unwrap();
            let mut s = SeenState::load(&path).unwrap();
            assert!(s.is_empty());
            s.record(&[&uid(b"a")], 7).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), "pop3-uidl 1\n7 a\n");
            assert_eq!(
                SeenState::load(&path).unwrap().first_seen(&uid(b"a")),
                Some(7)
            );
        }
    }

    /// An I/O error whose message names the state file.
    fn assert_io_error_naming(err: &Error, path: &Path) {
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(
            err.message().contains(&*path.to_string_lossy()),
            "{}",
            err.message()
        );
    }

    fn load_err(content: &[u8]) -> Error {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uidl-state");
        fs::write(&path, content).unwrap();
        let err = SeenState::load(&path).unwrap_err();
        assert_io_error_naming(&err, &path);
        err
    }

    #[test]
    fn corrupt_middle_line_names_the_line() {
        let err = load_err(b"pop3-uidl 1\n1 a\n2 b\nnonsense\n3 c\n");
        assert!(err.message().contains("line 4"), "{}", err.message());
    }

    #[test]
    fn every_kind_of_damage_is_an_error() {
        let cases: &[(&[u8], &str)] = &[
            (b"pop3-uidl 2\n1 a\n", "line 1"),
            (b"something else\n", "line 1"),
            (b"1 a\n", "line 1"),
            (b"pop3-uidl 1\nx1 a\n", "line 2"),
            (b"pop3-uidl 1\n+1 a\n", "line 2"),
            (b"pop3-uidl 1\n 1 a\n", "line 2"),
            (b"pop3-uidl 1\n99999999999999999999 a\n", "line 2"),
            (b"pop3-uidl 1\n1 a\n2 %4\n", "line 3"),
            (b"pop3-uidl 1\n1 a\n2 %zz\n", "line 3"),
            (b"pop3-uidl 1\n1 a\n2 a b\n", "line 3"),
            (b"pop3-uidl 1\n1 a\n2 \xff\n", "line 3"),
            (b"pop3-uidl 1\n1 a\n2 %00\n", "line 3"),
            (b"pop3-uidl 1\n1 a\n2 %20\n", "line 3"),
            (b"pop3-uidl 1\n1 a\n2 \n", "line 3"),
            (b"pop3-uidl 1\n1 a\n2\n", "line 3"),
            (b"pop3-uidl 1\n1 a\n\n", "line 3"),
        ];
        for (content, line) in cases {
            let err = load_err(content);
            assert!(
                err.message().contains(line),
                "{:?}: {}",
                String::from_utf8_lossy(content),
                err.message()
            );
        }
    }

    #[test]
    fn too_long_uid_is_an_error() {
        let mut content = b"pop3-uidl 1\n1 ".to_vec();
        content.extend(std::iter::repeat_n(
            b'a',
            crate::proto::types::MAX_UID_LEN + 1,
        ));
        content.push(b'\n');
        let err = load_err(&content);
        assert!(err.message().contains("line 2"), "{}", err.message());
    }

    #[test]
    fn lowercase_hex_and_negative_time_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        fs::write(&path, b"pop3-uidl 1\n-5 a%2fb\n").unwrap();
        let s = SeenState::load(&path).unwrap();
        assert_eq!(s.first_seen(&uid(b"a/b")), Some(-5));
    }

    #[test]
    fn prune_rewrites_and_keeps_only_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(&dir);
        let uids: Vec<Uid> = (0..10).map(|i| uid(format!("u{i}").as_bytes())).collect();
        let refs: Vec<&Uid> = uids.iter().collect();
        let mut s = SeenState::load(&path).unwrap();
        s.record(&refs[..5], 10).unwrap();
        s.record(&refs[5..], 20).unwrap();
        let on_server: Vec<&Uid> = vec![&uids[1], &uids[7]];
        s.prune(|u| on_server.iter().any(|k| k.as_bytes() == u))
            .unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.contains(&uids[1]) && s.contains(&uids[7]));
        assert!(!s.contains(&uids[0]));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "pop3-uidl 1\n10 u1\n20 u7\n"
        );
        // No temp files left next to the state file.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        // Appends after a prune go to the rewritten file.
        s.record(&[&uids[3]], 30).unwrap();
        let t = SeenState::load(&path).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.first_seen(&uids[3]), Some(30));
        assert_eq!(t.first_seen(&uids[1]), Some(10));
    }

    #[test]
    fn prune_without_removal_does_not_touch_the_file() {
        let (dir, path, mut s) = fresh();
        s.record(&[&uid(b"a")], 1).unwrap();
        // Replace the file by hand: a rewrite would restore the original content.
        fs::write(&path, b"pop3-uidl 1\n1 a\n1 a\n").unwrap();
        s.prune(|_| true).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "pop3-uidl 1\n1 a\n1 a\n"
        );
        // And a prune of a never-written state does not create the file.
        let other = dir.path().join("other");
        SeenState::load(&other).unwrap().prune(|_| false).unwrap();
        assert!(!other.exists());
    }

    #[test]
    fn prune_compacts_a_journal_full_of_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut content = b"pop3-uidl 1\n".to_vec();
        for i in 0..200 {
            content.extend_from_slice(format!("{i} same\n").as_bytes());
        }
        fs::write(&path, &content).unwrap();
        let mut s = SeenState::load(&path).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.first_seen(&uid(b"same")), Some(0));
        s.prune(|_| true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "pop3-uidl 1\n0 same\n");
    }

    #[test]
    fn prune_everything_leaves_a_valid_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut s = SeenState::load(&path).unwrap();
        s.record(&[&uid(b"a")], 1).unwrap();
        s.prune(|_| false).unwrap();
        assert!(s.is_empty());
        assert_eq!(fs::read_to_string(&path).unwrap(), "pop3-uidl 1\n");
        s.record(&[&uid(b"b")], 2).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "pop3-uidl 1\n2 b\n");
    }

    #[test]
    fn record_under_a_regular_file_is_io_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        let path = sub.join("state");
        let mut s = SeenState::load(&path).unwrap();
        // The directory cannot be created once a regular file has taken its name.
        fs::write(&sub, b"x").unwrap();
        let a = uid(b"a");
        let err = s.record(&[&a], 1).unwrap_err();
        assert_io_error_naming(&err, &path);
        assert!(!s.contains(&a), "a failed record must not count as seen");
        // Loading through the regular file fails too, rather than reading as "all new".
        let err = SeenState::load(&path).unwrap_err();
        assert_io_error_naming(&err, &path);
    }

    #[test]
    fn hundred_thousand_entries_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let uids: Vec<Uid> = (0..100_000)
            .map(|i| uid(format!("{i:08x}.{}", i * 7).as_bytes()))
            .collect();
        let refs: Vec<&Uid> = uids.iter().collect();
        let mut s = SeenState::load(&path).unwrap();
        s.record(&refs, 1_700_000_000).unwrap();
        let start = std::time::Instant::now();
        let t = SeenState::load(&path).unwrap();
        let took = start.elapsed();
        assert_eq!(t.len(), 100_000);
        assert!(t.contains(&uids[99_999]));
        // Generous even for a debug build on a busy machine; a per-line regex or a
        // quadratic scan would blow it.
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }

    proptest! {
        #[test]
        fn save_load_round_trip(
            entries in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        any::<u8>().prop_filter("valid uid byte", |b| {
                            !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0)
                        }),
                        1..40,
                    ),
                    any::<i64>(),
                ),
                0..20,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s");
            let mut s = SeenState::load(&path).unwrap();
            let mut expected: HashMap<Uid, i64> = HashMap::new();
            for (bytes, time) in &entries {
                let u = uid(bytes);
                s.record(&[&u], *time).unwrap();
                expected.entry(u).or_insert(*time);
            }
            let t = SeenState::load(&path).unwrap();
            prop_assert_eq!(t.len(), expected.len());
            for (u, time) in &expected {
                prop_assert_eq!(t.first_seen(u), Some(*time));
            }
        }

        #[test]
        fn load_never_panics(content in proptest::collection::vec(any::<u8>(), 0..200)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s");
            let mut data = b"pop3-uidl 1\n".to_vec();
            data.extend_from_slice(&content);
            fs::write(&path, &data).unwrap();
            let _ = SeenState::load(&path);
        }
    }
}
