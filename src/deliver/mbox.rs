//! mbox delivery in the mboxrd flavour (RFC 4155, and the `>From ` quoting that mutt,
//! procmail and Postfix `local` agree on).
//!
//! Each message is appended as a `From <sender> <asctime UTC>` separator line, the message
//! with every line matching `^>*From ` given one more `>`, a final newline when the message
//! lacks one, and one blank line. While a message is being written the mbox is locked the
//! way other mbox writers expect: a `<mbox>.lock` dot-lock created with `create_new`, plus
//! an fcntl write lock on the whole file (CRATES.md section 8; Linux `flock` locks would not
//! be seen by them).
//!
//! This module owns the invariants for mbox (DESIGN.md 1 and 3): `commit` returns only once
//! the mbox is fsynced, and on any failure, or a drop without commit, the file is truncated
//! back to the length it had before the message, so a reader never sees a partial message
//! once the locks are gone. It never rewrites or reads existing messages (beyond the last two
//! bytes, to start the separator on a fresh line).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{FlockOperation, OFlags};
use rustix::io::Errno;

use super::envelope::HeaderSniffer;
use super::{Envelope, Pending, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;

/// Output is collected in a buffer this large before it is written to the mbox.
const BUFFER: usize = 64 * 1024;

/// How long `begin` waits for the dot-lock and the fcntl lock together (mpop waits 10 s).
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A dot-lock older than this is left over from a crashed program and is removed (procmail
/// and mutt use a few minutes too; nobody holds an mbox lock for that long while writing).
const STALE_LOCK: Duration = Duration::from_secs(5 * 60);

/// How often a held dot-lock's time stamp is refreshed: the message streams in from the
/// network while the mbox is locked, which can take longer than [`STALE_LOCK`].
const TOUCH_LOCK: Duration = Duration::from_secs(60);

/// The pause between two attempts to take a lock.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// mboxrd quoting: a line that begins with any number of `>` followed by this gets one
/// more `>` (RFC 4155 section 2 describes the problem; mboxrd makes it reversible).
const FROM: &[u8] = b"From ";

/// An mbox file opened for appending.
///
/// One `Mbox` keeps one descriptor open for its whole life. fcntl locks belong to the
/// process and vanish when *any* descriptor of the file is closed, so nothing here ever
/// opens the mbox a second time.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    lock_path: PathBuf,
    file: File,
    lock_timeout: Duration,
    stale_after: Duration,
    /// Set when `take_dotlock` removed a dot-lock left by a pop3 process that no longer
    /// runs: proof that nobody who honours dot-locks wrote the mbox since that process died.
    broke_dead_lock: std::cell::Cell<bool>,
}

impl Mbox {
    /// Open `path` for appending, creating it (mode 0600) when missing. A symbolic link is
    /// refused (someone could point it at a file we should not write), and so is anything
    /// that is not a regular file. The directory must exist. Errors are
    /// `ErrorKind::CannotCreate` naming the path.
    pub fn open(path: &Path) -> Result<Mbox> {
        Mbox::with_timeouts(path, LOCK_TIMEOUT, STALE_LOCK)
    }

    fn with_timeouts(path: &Path, lock_timeout: Duration, stale_after: Duration) -> Result<Mbox> {
        let cannot = |what: &str, e: io::Error| {
            Error::with_source(
                ErrorKind::CannotCreate,
                format!("{what} {}", path.display()),
                e,
            )
        };
        let dir = fsutil::parent_dir(path);
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::CannotCreate,
                format!(
                    "cannot open mbox {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
            ));
        }
        let mut options = OpenOptions::new();
        // O_NONBLOCK only so that opening a FIFO cannot hang; it is cleared below.
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
        options
            .read(true)
            .append(true)
            .custom_flags(flags.bits() as i32);
        let file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match options.clone().create_new(true).mode(0o600).open(path) {
                    Ok(file) => {
                        // The new directory entry must survive a crash like the messages.
                        fsutil::sync_dir(&dir).map_err(|e| cannot("cannot fsync", e))?;
                        file
                    }
                    // Created by someone else in between: open theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options
                        .open(path)
                        .map_err(|e| cannot("cannot open mbox", e))?,
                    Err(e) => return Err(cannot("cannot create mbox", e)),
                }
            }
            Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
                return Err(cannot("refusing to follow the symbolic link at mbox", e));
            }
            Err(e) => return Err(cannot("cannot open mbox", e)),
        };
        let meta = file.metadata().map_err(|e| cannot("cannot stat mbox", e))?;
        if !meta.is_file() {
            return Err(Error::new(
                ErrorKind::CannotCreate,
                format!("mbox {} is not a regular file", path.display()),
            ));
        }
        rustix::fs::fcntl_getfl(&file)
            .and_then(|f| rustix::fs::fcntl_setfl(&file, f - OFlags::NONBLOCK))
            .map_err(|e| cannot("cannot set flags on mbox", e.into()))?;
        let mut lock_path = OsString::from(path.as_os_str());
        lock_path.push(".lock");
        Ok(Mbox {
            path: path.to_path_buf(),
            lock_path: PathBuf::from(lock_path),
            file,
            lock_timeout,
            stale_after,
            broke_dead_lock: std::cell::Cell::new(false),
        })
    }

    /// The mbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::with_source(ErrorKind::Io, format!("{what} {}", self.path.display()), e)
    }

    /// Take the dot-lock, then the fcntl lock, both within `lock_timeout`.
    fn lock(&self) -> Result<Locks<'_>> {
        let deadline = Instant::now() + self.lock_timeout;
        let dotlock = self.take_dotlock(deadline)?;
        // From here on, dropping `locks` removes our dot-lock.
        let locks = Locks {
            mbox: self,
            dotlock,
            touched: Instant::now(),
        };
        loop {
            match rustix::fs::fcntl_lock(&self.file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(locks),
                // POSIX allows either errno for "held by another process".
                Err(e) if e == Errno::AGAIN || e == Errno::ACCESS => {
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::Temporary,
                            format!(
                                "mbox {} is locked by another program (fcntl lock held for \
                                 more than {} s)",
                                self.path.display(),
                                self.lock_timeout.as_secs_f32()
                            ),
                        ));
                    }
                    thread::sleep(LOCK_RETRY);
                }
                Err(e) => return Err(self.io_error("cannot lock", e.into())),
            }
        }
    }

    /// Create `<mbox>.lock` exclusively, removing a stale one, retrying until `deadline`.
    fn take_dotlock(&self, deadline: Instant) -> Result<File> {
        let lock = &self.lock_path;
        loop {
            let e = match create_dotlock(lock) {
                Ok(file) => return Ok(file),
                Err(e) => e,
            };
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(Error::with_source(
                    ErrorKind::Io,
                    format!("cannot create lock file {}", lock.display()),
                    e,
                ));
            }
            if left_by_dead_pop3(lock) {
                log::warn!(
                    "removing lock file {} left by a pop3 process that no longer runs",
                    lock.display()
                );
                match fs::remove_file(lock) {
                    Ok(()) => {
                        self.broke_dead_lock.set(true);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => log::warn!("cannot remove {}: {e}", lock.display()),
                }
            }
            let age = fs::symlink_metadata(lock)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            if age.is_some_and(|age| age > self.stale_after) {
                log::warn!(
                    "removing stale lock file {} (older than {} s)",
                    lock.display(),
                    self.stale_after.as_secs()
                );
                match fs::remove_file(lock) {
                    Ok(()) => continue,
                    // Its owner removed it first.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => log::warn!("cannot remove {}: {e}", lock.display()),
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Temporary,
                    format!(
                        "mbox {} is locked: lock file {} exists (remove it if no other \
                         program is writing the mbox)",
                        self.path.display(),
                        lock.display()
                    ),
                ));
            }
            thread::sleep(LOCK_RETRY);
        }
    }

    /// Lock the mbox and prepare to append one message.
    fn begin_message(&self) -> Result<MboxPending<'_>> {
        let locks = self.lock()?;
        let start_len = self
            .file
            .metadata()
            .map_err(|e| self.io_error("cannot stat", e))?
            .len();
        let mut buf = Vec::with_capacity(BUFFER);
        buf.extend_from_slice(self.separator_prefix(start_len)?);
        Ok(MboxPending {
            mbox: self,
            locks,
            start_len,
            sniffer: Some(HeaderSniffer::new()),
            quoter: Quoter::new(),
            buf,
            failed: false,
            committed: false,
        })
    }

    /// What must precede our `From ` line so that it follows a blank line, as it does
    /// after every message an mbox writer appends, even if another program left the file
    /// without a final newline.
    fn separator_prefix(&self, len: u64) -> Result<&'static [u8]> {
        if len == 0 {
            return Ok(b"");
        }
        let mut tail = [0u8; 2];
        let n = len.min(2) as usize;
        self.file
            .read_exact_at(&mut tail[..n], len - n as u64)
            .map_err(|e| self.io_error("cannot read", e))?;
        Ok(match &tail[..n] {
            b"\n\n" | b"\n" => b"",
            [.., b'\n'] => b"\n",
            _ => b"\n\n",
        })
    }
}

impl Sink for Mbox {
    /// Lock the mbox for this message. Errors: `ErrorKind::Temporary` naming the lock when
    /// another program holds it for too long, `ErrorKind::Io` naming the path otherwise.
    fn begin(&mut self, _envelope: &Envelope<'_>) -> Result<Box<dyn Pending + '_>> {
        Ok(Box::new(self.begin_message()?))
    }

    /// Tokens are the mbox lengths at which killed runs began appending. Whatever follows
    /// the earliest one was written by those runs if the dot-lock they held is still there
    /// with a dead owner (nobody who honours dot-locks has written since): then the mbox is
    /// cut back to that length, removing a partial message, and the messages are fetched
    /// again. Without that proof nothing is cut (another program may have appended) and a
    /// warning names the offset; the message may then arrive twice.
    fn recover(&mut self, tokens: &[String]) -> Result<Vec<bool>> {
        let Some(start) = tokens.iter().filter_map(|t| t.parse::<u64>().ok()).min() else {
            return Ok(vec![false; tokens.len()]);
        };
        let locks = self.lock()?;
        let len = self
            .file
            .metadata()
            .map_err(|e| self.io_error("cannot stat", e))?
            .len();
        if len > start {
            if self.broke_dead_lock.get() {
                log::warn!(
                    "{}: removing {} bytes at the end written by an interrupted pop3 run \
                     (they are fetched again)",
                    self.path.display(),
                    len - start
                );
                self.file
                    .set_len(start)
                    .and_then(|()| self.file.sync_all())
                    .map_err(|e| self.io_error("cannot truncate", e))?;
            } else {
                log::warn!(
                    "{}: an interrupted pop3 run was appending at byte {start}; that message \
                     may be incomplete or arrive twice; please check the end of the mbox",
                    self.path.display()
                );
            }
        }
        drop(locks);
        Ok(vec![false; tokens.len()])
    }
}

/// Create the dot-lock with our owner line already in it: written to a unique temporary
/// name first and then hard-linked to the lock name, so that a kill can never leave an
/// empty lock that no later run could attribute (the classic NFS-safe recipe). Where the
/// filesystem has no hard links, `create_new` and a write.
fn create_dotlock(lock: &Path) -> io::Result<File> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pid = std::process::id();
    let mut tmp = OsString::from(lock.as_os_str());
    tmp.push(format!(
        ".{pid}.{}",
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = file.write_all(lock_owner_line(pid).as_bytes());
    let linked = written.and_then(|()| fs::hard_link(&tmp, lock));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            // No hard links here (some FUSE filesystems): the plain way.
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(lock)?;
            let _ = file.write_all(lock_owner_line(pid).as_bytes());
            Ok(file)
        }
    }
}

/// The content of our dot-lock: `pop3 <pid> <host>`.
fn lock_owner_line(pid: u32) -> String {
    format!("pop3 {pid} {}\n", fsutil::hostname())
}

/// Whether `lock` was written by a pop3 process on this host that no longer runs.
fn left_by_dead_pop3(lock: &Path) -> bool {
    let Ok(text) = fs::read_to_string(lock) else {
        return false;
    };
    let mut words = text.split_whitespace();
    let (Some("pop3"), Some(pid), Some(host)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == fsutil::hostname() && pid != std::process::id() && !process_exists(pid)
}

#[cfg(target_os = "linux")]
fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_exists(_pid: u32) -> bool {
    // Without a cheap check, assume it runs: the lock then goes stale by age only.
    true
}

/// Both locks of an mbox, released (fcntl first, then the dot-lock) on drop.
struct Locks<'a> {
    mbox: &'a Mbox,
    /// Our `<mbox>.lock`, kept open to refresh its time stamp.
    dotlock: File,
    touched: Instant,
}

impl Locks<'_> {
    /// Keep our dot-lock from looking stale to others while a slow download holds it.
    fn refresh(&mut self) {
        if self.touched.elapsed() >= TOUCH_LOCK {
            self.touched = Instant::now();
            if let Err(e) = self.dotlock.set_modified(SystemTime::now()) {
                log::warn!("cannot touch {}: {e}", self.mbox.lock_path.display());
            }
        }
    }
}

impl Drop for Locks<'_> {
    fn drop(&mut self) {
        // Unlocking a lock we never got is harmless, so this also serves the error path
        // between the dot-lock and the fcntl lock.
        if let Err(e) = rustix::fs::fcntl_lock(&self.mbox.file, FlockOperation::Unlock) {
            log::warn!("cannot unlock {}: {e}", self.mbox.path.display());
        }
        if let Err(e) = fs::remove_file(&self.mbox.lock_path) {
            log::warn!("cannot remove {}: {e}", self.mbox.lock_path.display());
        }
    }
}

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
struct Quoter {
    state: LineState,
    /// The last byte emitted was a newline (true before anything: the separator line ends
    /// with one).
    at_newline: bool,
}

impl Quoter {
    fn new() -> Quoter {
        Quoter {
            state: LineState::Start,
            at_newline: true,
        }
    }

    /// Append `input`, quoted, to `out`.
    fn quote(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
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
    fn finish(&mut self, out: &mut Vec<u8>) {
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

/// The `From ` separator line for a message from `sender` delivered at `when`:
/// `From alice@example.com Mon Nov 30 07:26:53 2026` (asctime format, UTC).
fn separator(sender: &str, when: jiff::Timestamp) -> String {
    format!("From {sender} {}\n", when.strftime("%a %b %e %H:%M:%S %Y"))
}

/// One message being appended. The mbox stays locked until this is committed or dropped.
struct MboxPending<'a> {
    mbox: &'a Mbox,
    /// Dropped after `Drop::drop` has truncated, so the rollback happens under the locks.
    locks: Locks<'a>,
    /// The mbox length before this message: where a failure truncates back to.
    start_len: u64,
    /// Buffers the header until the sender is known; `None` once the separator is written.
    sniffer: Option<HeaderSniffer>,
    quoter: Quoter,
    /// Quoted output not yet written to the file.
    buf: Vec<u8>,
    /// A write failed: the file holds an unknown part of the message.
    failed: bool,
    committed: bool,
}

impl MboxPending<'_> {
    /// The header is complete (or the message ended): write the separator and the header.
    fn start_message(&mut self) {
        let Some(sniffer) = self.sniffer.take() else {
            return;
        };
        let line = separator(&sniffer.sender(), jiff::Timestamp::now());
        self.buf.extend_from_slice(line.as_bytes());
        self.quoter.quote(sniffer.buffered(), &mut self.buf);
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(format!(
                "an earlier write to {} failed",
                self.mbox.path.display()
            )));
        }
        // O_APPEND: every write lands at the end, which is ours while we hold the locks.
        let result = (&self.mbox.file).write_all(&self.buf);
        self.buf.clear();
        result.inspect_err(|_| self.failed = true)
    }

    /// Everything `commit` does; on error `Drop` rolls back.
    fn finish(&mut self) -> Result<()> {
        if self.failed {
            return Err(Error::new(
                ErrorKind::Io,
                format!("an earlier write to {} failed", self.mbox.path.display()),
            ));
        }
        self.start_message();
        self.quoter.finish(&mut self.buf);
        // RFC 4155: a blank line ends each message, before the next separator.
        self.buf.push(b'\n');
        self.flush_buf()
            .map_err(|e| self.mbox.io_error("cannot write", e))?;
        self.mbox
            .file
            .sync_all()
            .map_err(|e| self.mbox.io_error("cannot fsync", e))
    }

    /// Take the file back to its length before this message, durably.
    fn rollback(&mut self) {
        self.buf.clear();
        let file = &self.mbox.file;
        let result = file.set_len(self.start_len).and_then(|()| file.sync_all());
        if let Err(e) = result {
            log::error!(
                "cannot truncate {} back to {} bytes after a failed delivery: {e}",
                self.mbox.path.display(),
                self.start_len
            );
        }
    }
}

impl Write for MboxPending<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(format!(
                "an earlier write to {} failed",
                self.mbox.path.display()
            )));
        }
        let mut rest = data;
        if let Some(sniffer) = self.sniffer.as_mut() {
            rest = &rest[sniffer.feed(rest)..];
            if !sniffer.is_complete() {
                return Ok(data.len());
            }
            self.start_message();
        }
        self.quoter.quote(rest, &mut self.buf);
        if self.buf.len() >= BUFFER {
            self.locks.refresh();
            self.flush_buf().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot write {}: {e}", self.mbox.path.display()),
                )
            })?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is visible before commit anyway; writing out early only bounds memory,
        // which `write` already does.
        Ok(())
    }
}

impl Pending for MboxPending<'_> {
    fn token(&self) -> Option<String> {
        Some(self.start_len.to_string())
    }

    /// Errors are `ErrorKind::Io` naming the mbox; the mbox is then as it was before.
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.finish()?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for MboxPending<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.rollback();
        }
        // `locks` is dropped next, releasing the mbox.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn test_envelope() -> Envelope<'static> {
        static UID: std::sync::LazyLock<crate::proto::Uid> =
            std::sync::LazyLock::new(|| crate::proto::Uid::new(b"uid-1").unwrap());
        Envelope {
            account: "test",
            uid: &UID,
            size: crate::proto::Octets(10),
        }
    }

    fn deliver(mbox: &mut Mbox, chunks: &[&[u8]]) {
        let mut p = mbox.begin(&test_envelope()).unwrap();
        for c in chunks {
            p.write_all(c).unwrap();
        }
        p.commit().unwrap();
    }

    /// Split an mbox into (separator line, message) pairs, checking the separator format.
    /// The pid of a process that has exited.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn recovery_cuts_a_partial_tail_left_under_a_dead_pop3_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        deliver(&mut mbox, &[b"Subject: one\n\nbody\n"]);
        let good = fs::read(&path).unwrap();
        // A killed run: its lock file with its (dead) pid, and half a message.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: par")
            .unwrap();
        fs::write(dir.path().join("mbox.lock"), lock_owner_line(dead_pid())).unwrap();
        let token = good.len().to_string();
        let mut mbox = Mbox::open(&path).unwrap();
        assert_eq!(mbox.recover(&[token]).unwrap(), [false]);
        assert_eq!(fs::read(&path).unwrap(), good);
        assert!(!dir.path().join("mbox.lock").exists());
        // And delivery goes on normally.
        deliver(&mut mbox, &[b"Subject: two\n\nbody\n"]);
        assert_eq!(messages(&fs::read(&path).unwrap()).len(), 2);
    }

    #[test]
    fn recovery_without_proof_cuts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        deliver(&mut mbox, &[b"Subject: one\n\nbody\n"]);
        let before = fs::read(&path).unwrap();
        // Someone else may have appended after the interrupted run: no lock was left.
        let mut mbox = Mbox::open(&path).unwrap();
        assert_eq!(mbox.recover(&["0".to_owned()]).unwrap(), [false]);
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    fn messages(content: &[u8]) -> Vec<(String, Vec<u8>)> {
        let text = String::from_utf8(content.to_vec()).unwrap();
        assert!(text.starts_with("From "), "{text:?}");
        let mut out = Vec::new();
        for part in text[5..].split("\n\nFrom ") {
            let (line, body) = part.split_once('\n').unwrap();
            // `split` ate the message's last newline and the blank line after it.
            let mut body = body.as_bytes().to_vec();
            body.push(b'\n');
            out.push((format!("From {line}"), body));
        }
        // The last message kept its blank line, and got one more newline above.
        let last = &mut out.last_mut().unwrap().1;
        assert!(
            last.ends_with(b"\n\n\n"),
            "{:?}",
            String::from_utf8_lossy(last)
        );
        last.truncate(last.len() - 2);
        out
    }

    fn assert_separator(line: &str, sender: &str) {
        let rest = line
            .strip_prefix(&format!("From {sender} "))
            .unwrap_or_else(|| panic!("{line:?}"));
        // asctime: `Www Mmm dd hh:mm:ss yyyy`, the day padded with a space.
        assert_eq!(rest.len(), 24, "{rest:?}");
        let parsed = jiff::fmt::strtime::parse("%a %b %e %H:%M:%S %Y", rest)
            .unwrap()
            .to_datetime()
            .unwrap()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp();
        let skew = jiff::Timestamp::now().as_second() - parsed.as_second();
        assert!((0..120).contains(&skew), "{rest:?} is not now in UTC");
    }

    #[test]
    fn separator_is_asctime_in_utc() {
        let t: jiff::Timestamp = "2026-11-30T07:26:53Z".parse().unwrap();
        assert_eq!(
            separator("MAILER-DAEMON", t),
            "From MAILER-DAEMON Mon Nov 30 07:26:53 2026\n"
        );
        let t: jiff::Timestamp = "2026-12-05T17:02:03+01:00".parse().unwrap();
        assert_eq!(separator("a@b", t), "From a@b Sat Dec  5 16:02:03 2026\n");
    }

    #[test]
    fn two_messages_are_appended_with_separators() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox");
        let mut mbox = Mbox::open(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        deliver(&mut mbox, &[b"Subject: one\n\nfirst\n"]);
        deliver(
            &mut mbox,
            &[
                b"Return-Path: <alice@example.com>\nSubj",
                b"ect: two\n\nsecond, no final newline",
            ],
        );
        let content = fs::read(&path).unwrap();
        let msgs = messages(&content);
        assert_eq!(msgs.len(), 2);
        assert_separator(&msgs[0].0, "MAILER-DAEMON");
        assert_eq!(msgs[0].1, b"Subject: one\n\nfirst\n");
        assert_separator(&msgs[1].0, "alice@example.com");
        assert_eq!(
            msgs[1].1,
            b"Return-Path: <alice@example.com>\nSubject: two\n\nsecond, no final newline\n"
        );
        // No lock file is left behind.
        assert!(!dir.path().join("inbox.lock").exists());
    }

    #[test]
    fn quoting_is_mboxrd_at_every_chunk_boundary() {
        let msg: &[u8] = b"From: a@b\nSubject: q\n\nFrom x\n>From x\n>>From x\n\
              Fromage\n From x\n>F\n>Fro\nFrom\n\nFrom y\n>>>>From z";
        let want: &[u8] = b"From: a@b\nSubject: q\n\n>From x\n>>From x\n>>>From x\n\
              Fromage\n From x\n>F\n>Fro\nFrom\n\n>From y\n>>>>>From z\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        for split in 0..=msg.len() {
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(0)
                .unwrap();
            deliver(&mut mbox, &[&msg[..split], &msg[split..]]);
            let got = messages(&fs::read(&path).unwrap());
            assert_eq!(got.len(), 1);
            assert_eq!(
                String::from_utf8_lossy(&got[0].1),
                String::from_utf8_lossy(want),
                "split at {split}"
            );
        }
        // One byte per write.
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let bytes: Vec<&[u8]> = msg.chunks(1).collect();
        deliver(&mut mbox, &bytes);
        assert_eq!(messages(&fs::read(&path).unwrap())[0].1, want);
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
    fn dropped_pending_truncates_to_the_previous_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        deliver(&mut mbox, &[b"Subject: kept\n\nkept\n"]);
        let before = fs::read(&path).unwrap();
        {
            let mut p = mbox.begin(&test_envelope()).unwrap();
            // More than the buffer, so part of it really reaches the file.
            let big = vec![b'x'; 3 * BUFFER];
            p.write_all(b"Subject: lost\n\n").unwrap();
            p.write_all(&big).unwrap();
            assert!(fs::metadata(&path).unwrap().len() > before.len() as u64);
        }
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(!dir.path().join("mbox.lock").exists());
        // The next message goes right after the kept one.
        deliver(&mut mbox, &[b"Subject: next\n\nnext\n"]);
        let msgs = messages(&fs::read(&path).unwrap());
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1].1, b"Subject: next\n\nnext\n");
    }

    #[test]
    fn failed_write_makes_commit_fail_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        deliver(&mut mbox, &[b"Subject: kept\n\nkept\n"]);
        let before = fs::read(&path).unwrap();
        let mut p = mbox.begin_message().unwrap();
        p.write_all(b"Subject: doomed\n\n").unwrap();
        p.write_all(&vec![b'y'; 2 * BUFFER]).unwrap();
        // What a failed write (ENOSPC, EFBIG) leaves behind.
        p.failed = true;
        assert!(p.write_all(b"more").is_err(), "writes after a failure fail");
        let err = Box::new(p).commit().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains(&*path.to_string_lossy()), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_file_without_final_newlines_gets_them_first() {
        for (existing, want_prefix) in [
            (&b"From a Mon Nov 30 07:26:53 2026\nbody"[..], &b"\n\n"[..]),
            (b"From a Mon Nov 30 07:26:53 2026\nbody\n", b"\n"),
            (b"From a Mon Nov 30 07:26:53 2026\nbody\n\n", b""),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mbox");
            fs::write(&path, existing).unwrap();
            let mut mbox = Mbox::open(&path).unwrap();
            deliver(&mut mbox, &[b"S: x\n\nnew\n"]);
            let content = fs::read(&path).unwrap();
            let rest = &content[existing.len()..];
            assert!(rest.starts_with(want_prefix));
            assert!(rest[want_prefix.len()..].starts_with(b"From MAILER-DAEMON "));
        }
    }

    #[test]
    fn a_symlink_mbox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("mbox");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = Mbox::open(&link).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
        assert!(err.message().contains(&*link.to_string_lossy()), "{err}");
        assert!(err.message().contains("symbolic link"), "{err}");
        // A dangling link is refused too, and nothing is created through it.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert_eq!(
            Mbox::open(&dangling).unwrap_err().kind(),
            ErrorKind::CannotCreate
        );
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn missing_directory_and_non_files_are_cannot_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/mbox");
        let err = Mbox::open(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
        assert_eq!(err.kind().exit_code(), 73);
        assert!(err.message().contains("does not exist"), "{err}");
        assert!(!dir.path().join("no").exists());

        let err = Mbox::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
    }

    #[test]
    fn unwritable_mbox_is_cannot_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        if OpenOptions::new().append(true).open(&path).is_ok() {
            return; // Running as root: permission bits do not bind.
        }
        assert_eq!(
            Mbox::open(&path).unwrap_err().kind(),
            ErrorKind::CannotCreate
        );
    }

    #[test]
    fn a_stale_dotlock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let lock = dir.path().join("mbox.lock");
        let mut mbox = Mbox::open(&path).unwrap();
        let f = File::create(&lock).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(600))
            .unwrap();
        drop(f);
        let t0 = Instant::now();
        deliver(&mut mbox, &[b"S: x\n\nbody\n"]);
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(messages(&fs::read(&path).unwrap()).len(), 1);
        assert!(!lock.exists());
    }

    #[test]
    fn a_held_dotlock_is_kept_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let lock = dir.path().join("mbox.lock");
        let mbox = Mbox::open(&path).unwrap();
        let mut p = mbox.begin_message().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let Some(long_ago) = Instant::now().checked_sub(TOUCH_LOCK) else {
            return; // The machine booted less than a minute ago.
        };
        p.locks.touched = long_ago;
        p.write_all(b"S: x\n\n").unwrap();
        p.write_all(&vec![b'x'; BUFFER]).unwrap();
        let age = fs::metadata(&lock).unwrap().modified().unwrap().elapsed();
        assert!(age.unwrap_or_default() < Duration::from_secs(60));
        drop(p);
        assert!(!lock.exists());
    }

    #[test]
    fn a_held_dotlock_times_out_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let lock = dir.path().join("mbox.lock");
        fs::write(&lock, b"someone else's").unwrap();
        let mut mbox = Mbox::with_timeouts(&path, Duration::from_millis(300), STALE_LOCK).unwrap();
        let t0 = Instant::now();
        let err = match mbox.begin(&test_envelope()) {
            Ok(_) => panic!("begin must not succeed while the lock is held"),
            Err(e) => e,
        };
        assert!(t0.elapsed() >= Duration::from_millis(300));
        assert_eq!(err.kind(), ErrorKind::Temporary);
        assert!(err.message().contains(&*lock.to_string_lossy()), "{err}");
        assert_eq!(fs::read(&lock).unwrap(), b"someone else's");
        assert_eq!(fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_second_mbox_in_this_process_waits_for_the_dotlock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut a = Mbox::open(&path).unwrap();
        let mut b = Mbox::with_timeouts(&path, Duration::from_millis(200), STALE_LOCK).unwrap();
        let mut p = a.begin(&test_envelope()).unwrap();
        p.write_all(b"S: a\n\nfrom a\n").unwrap();
        assert_eq!(
            b.begin(&test_envelope()).err().map(|e| e.kind()),
            Some(ErrorKind::Temporary)
        );
        p.commit().unwrap();
        deliver(&mut b, &[b"S: b\n\nfrom b\n"]);
        let msgs = messages(&fs::read(&path).unwrap());
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].1, b"S: a\n\nfrom a\n");
    }

    const HOLDER_ENV: &str = "POP3_TEST_FCNTL_HOLDER";

    /// Not a test: the other process for `an_fcntl_lock_holder_blocks_us`. It takes an
    /// fcntl lock on the file named in the environment, says so, writes, and lets go.
    #[test]
    #[ignore = "helper process, run by an_fcntl_lock_holder_blocks_us"]
    fn fcntl_lock_holder() {
        let Some(path) = std::env::var_os(HOLDER_ENV) else {
            return;
        };
        let path = PathBuf::from(path);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        rustix::fs::fcntl_lock(&file, FlockOperation::LockExclusive).unwrap();
        file.write_all(b"holder part 1\n").unwrap();
        fs::write(path.with_extension("ready"), b"").unwrap();
        thread::sleep(Duration::from_millis(800));
        file.write_all(b"holder part 2\n\n").unwrap();
        file.sync_all().unwrap();
    }

    #[test]
    fn an_fcntl_lock_holder_blocks_us() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        // fcntl locks are per process: the holder must be another process.
        let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "deliver::mbox::tests::fcntl_lock_holder",
                "--ignored",
                "--test-threads=1",
            ])
            .env(HOLDER_ENV, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ready = path.with_extension("ready");
        let t0 = Instant::now();
        while !ready.exists() {
            assert!(t0.elapsed() < Duration::from_secs(20), "holder never ran");
            thread::sleep(Duration::from_millis(10));
        }
        let t1 = Instant::now();
        let mut p = mbox.begin(&test_envelope()).unwrap();
        assert!(
            t1.elapsed() >= Duration::from_millis(300),
            "begin did not wait for the fcntl lock ({:?})",
            t1.elapsed()
        );
        p.write_all(b"S: ours\n\nours\n").unwrap();
        p.commit().unwrap();
        assert!(holder.wait().unwrap().success());
        let content = fs::read(&path).unwrap();
        let holder_part = b"holder part 1\nholder part 2\n\n";
        assert!(
            content.starts_with(holder_part),
            "{:?}",
            String::from_utf8_lossy(&content)
        );
        let msgs = messages(&content[holder_part.len()..]);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].1, b"S: ours\n\nours\n");
    }
}
