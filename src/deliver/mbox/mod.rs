//! mbox delivery in the mboxrd flavour (RFC 4155, and the `>From ` quoting that mutt,
//! procmail and Postfix `local` agree on).
//!
//! Each message is appended as a `From <sender> <asctime UTC>` separator line, the message
//! quoted by [`quote`] (every line matching `^>*From ` gets one more `>`, and a final
//! newline when the message lacks one), and one blank line. While a message is being
//! written the mbox holds both locks of [`lock`] (dot-lock and fcntl).
//!
//! This module owns the invariants for mbox (DESIGN.md 1 and 3): `commit` returns only once
//! the mbox is fsynced; on any failure, or a drop without commit, the file is truncated
//! back to the length it had before the message, so a reader never sees a partial message
//! once the locks are gone; and recovery after a kill cuts only the tail that the killed
//! run's last append wrote under a dot-lock nobody released ([`Mbox`]'s `recover`). It never
//! rewrites or reads existing messages (beyond the last two bytes, to start the separator
//! on a fresh line).

mod lock;
pub mod quote;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::OFlags;
use rustix::io::Errno;

use self::lock::{LOCK_TIMEOUT, Locks, MboxLock, STALE_LOCK};
use self::quote::Quoter;
use super::envelope::HeaderSniffer;
use super::{Envelope, Pending, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;

/// Output is collected in a buffer this large before it is written to the mbox.
const BUFFER: usize = 64 * 1024;

/// An mbox file opened for appending.
///
/// One `Mbox` keeps one descriptor open for its whole life. fcntl locks belong to the
/// process and vanish when *any* descriptor of the file is closed, so nothing here ever
/// opens the mbox a second time.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    file: File,
    lock: MboxLock,
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
        Ok(Mbox {
            path: path.to_path_buf(),
            file,
            lock: MboxLock::new(path, lock_timeout, stale_after),
        })
    }

    /// The mbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::with_source(ErrorKind::Io, format!("{what} {}", self.path.display()), e)
    }

    /// Take the dot-lock, then the fcntl lock (see [`lock`]).
    fn lock(&self) -> Result<Locks<'_>> {
        self.lock.acquire(&self.file)
    }

    /// Lock the mbox and prepare to append one message.
    fn begin_message(&self) -> Result<MboxPending<'_>> {
        crate::crashpoint::hit("mbox.lock", self.path.display());
        let locks = self.lock()?;
        crate::crashpoint::hit("mbox.locked", self.path.display());
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

    /// A token is `<offset>:<append id>`: the mbox length at which an append began and the
    /// id its dot-lock carried. The engine passes the tokens of unrecorded intents oldest
    /// first. Appends are sequential, so only the last one can have been in flight when the
    /// run was killed; every earlier one either got its record line or was rolled back (a
    /// RETR refused, `--all` fetching a seen message again), and nothing it wrote may be
    /// touched: messages after it can be delivered and recorded.
    ///
    /// So only the tail from the last token's offset can be cut, and only with proof that
    /// its append was the last writer: taking the lock here broke a dot-lock that its dead
    /// pop3 owner left (SIGKILL, a crash, or the second Ctrl-C that exits at once) and that
    /// names the same append id. The cut message was never recorded, so it is fetched again.
    /// Without that proof nothing is cut and a warning names the offset (the message may
    /// then be incomplete or arrive twice). Tokens of the older form (a bare offset) are
    /// never cut. The answer is `false` for every token: a message that finished appending
    /// but was not recorded is fetched again rather than trusted.
    fn recover(&mut self, tokens: &[String]) -> Result<Vec<bool>> {
        let answer = vec![false; tokens.len()];
        let Some(last) = tokens.last() else {
            return Ok(answer);
        };
        let (start, id) = match parse_token(last) {
            Some((start, id)) => (start, Some(id)),
            None => match last.parse::<u64>() {
                Ok(start) => (start, None),
                Err(_) => {
                    log::warn!(
                        "{}: ignoring an unreadable delivery token {last:?}",
                        self.path.display()
                    );
                    return Ok(answer);
                }
            },
        };
        // Only a dead lock broken by this very `lock()` counts.
        self.lock.take_broken();
        let locks = self.lock()?;
        let broken = self.lock.take_broken();
        let len = self
            .file
            .metadata()
            .map_err(|e| self.io_error("cannot stat", e))?
            .len();
        if len > start {
            if id.is_some() && broken.as_deref() == id {
                log::warn!(
                    "{}: removing {} bytes at the end written by an interrupted pop3 run \
                     (that message is fetched again)",
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
        Ok(answer)
    }
}

/// `<offset>:<append id>` (see `recover`).
fn parse_token(token: &str) -> Option<(u64, &str)> {
    let (offset, id) = token.split_once(':')?;
    let offset = offset.parse().ok()?;
    (!id.is_empty()).then_some((offset, id))
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
        crate::crashpoint::hit("mbox.write", self.buf.len());
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
        crate::crashpoint::hit("mbox.fsync", self.mbox.path.display());
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
    /// `<offset>:<append id>`: where this append began, and the id in the dot-lock it
    /// holds (see `Mbox::recover`).
    fn token(&self) -> Option<String> {
        Some(format!("{}:{}", self.start_len, self.locks.id()))
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
    use super::lock::TOUCH_LOCK;
    use super::*;
    use crate::fsutil;
    use rustix::fs::FlockOperation;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::thread;
    use std::time::{Instant, SystemTime};

    use crate::deliver::test_envelope;

    fn deliver(mbox: &mut Mbox, chunks: &[&[u8]]) {
        let mut p = mbox.begin(&test_envelope()).unwrap();
        for c in chunks {
            p.write_all(c).unwrap();
        }
        p.commit().unwrap();
    }

    /// Truncate the file at `path` to nothing.
    fn empty(path: &Path) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    /// An mbox in a temporary directory holding one delivered message, and its bytes.
    fn mbox_with_one_message() -> (tempfile::TempDir, PathBuf, Mbox, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        deliver(&mut mbox, &[b"Subject: kept\n\nkept\n"]);
        let before = fs::read(&path).unwrap();
        (dir, path, mbox, before)
    }

    /// A temporary directory with the paths of an mbox in it and of its dot-lock.
    fn mbox_paths() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let lock = dir.path().join("mbox.lock");
        (dir, path, lock)
    }

    /// What tells a helper process (an ignored test run by another test) its path.
    const HELPER_PATH: &str = "POP3_TEST_HELPER_PATH";

    /// This test binary running only the ignored test `name`, as another process, with
    /// `path` for it.
    fn helper_process(name: &str, path: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            &format!("deliver::mbox::tests::{name}"),
            "--ignored",
            "--test-threads=1",
        ])
        .env(HELPER_PATH, path)
        .stdout(std::process::Stdio::null());
        cmd
    }

    /// In a helper process: the path its parent gave (`None`: run as an ordinary test).
    fn helper_arg() -> Option<PathBuf> {
        std::env::var_os(HELPER_PATH).map(PathBuf::from)
    }

    /// Not a test: the killed run for the recovery tests, in its own process (so with its
    /// own run id). In the mbox `<dir>/mbox` it delivers A, rolls back B (a refused RETR),
    /// delivers C, then begins D and dies without unlocking, as SIGKILL or the second Ctrl-C
    /// leave it. With `<dir>/partial` present, D's token is noted and half of D is written
    /// first; without it, the run dies between taking the lock and noting D's intent. The
    /// tokens an engine would still hold unresolved (B's, and D's if noted) are written to
    /// `<dir>/tokens`, oldest first.
    #[test]
    #[ignore = "helper process, run by the recovery tests"]
    fn killed_appender() {
        let Some(dir) = helper_arg() else {
            return;
        };
        let mut mbox = Mbox::open(&dir.join("mbox")).unwrap();
        let mut unresolved = Vec::new();
        deliver(&mut mbox, &[b"Subject: A\n\nrecorded\n"]);
        {
            let mut p = mbox.begin(&test_envelope()).unwrap();
            unresolved.push(p.token().unwrap());
            p.write_all(b"Subject: B\n\nrefused half way").unwrap();
        }
        deliver(&mut mbox, &[b"Subject: C\n\nrecorded too\n"]);
        let mut p = mbox.begin(&test_envelope()).unwrap();
        if dir.join("partial").exists() {
            unresolved.push(p.token().unwrap());
            p.write_all(b"Subject: D\n\n").unwrap();
            p.write_all(&vec![b'd'; 2 * BUFFER]).unwrap();
        }
        fs::write(dir.join("tokens"), unresolved.join("\n")).unwrap();
        std::process::exit(9);
    }

    /// Run [`killed_appender`]; the tokens it left unresolved.
    fn killed_run(dir: &Path, partial: bool) -> Vec<String> {
        if partial {
            fs::write(dir.join("partial"), b"").unwrap();
        }
        let status = helper_process("killed_appender", dir).status().unwrap();
        assert_eq!(status.code(), Some(9));
        assert!(
            dir.join("mbox.lock").exists(),
            "the killed run left its lock"
        );
        fs::read_to_string(dir.join("tokens"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn subjects(dir: &Path) -> Vec<String> {
        messages(&fs::read(dir.join("mbox")).unwrap())
            .into_iter()
            .map(|(_, m)| {
                String::from_utf8_lossy(&m)
                    .lines()
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn no_loss_recovery_cuts_only_the_last_append_under_its_own_dead_lock() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = killed_run(dir.path(), true);
        assert_eq!(tokens.len(), 2);
        let len = fs::metadata(dir.path().join("mbox")).unwrap().len();
        let d_start: u64 = tokens[1].split_once(':').unwrap().0.parse().unwrap();
        assert!(len > d_start + BUFFER as u64, "half of D is in the mbox");
        let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
        assert_eq!(mbox.recover(&tokens).unwrap(), [false, false]);
        // D's half is gone; A and C, recorded, are intact although B's older token starts
        // before C.
        assert_eq!(
            fs::metadata(dir.path().join("mbox")).unwrap().len(),
            d_start
        );
        assert_eq!(subjects(dir.path()), ["Subject: A", "Subject: C"]);
        assert!(!dir.path().join("mbox.lock").exists());
        deliver(&mut mbox, &[b"Subject: E\n\nnext\n"]);
        assert_eq!(
            subjects(dir.path()),
            ["Subject: A", "Subject: C", "Subject: E"]
        );
    }

    #[test]
    fn no_loss_a_dead_lock_of_an_unnoted_append_cuts_nothing() {
        // Killed between taking the lock for D and noting D's intent: the last token is
        // B's, rolled back long ago, from the same run. Its run is the lock's run, but not
        // its append: cutting there would remove C, which is recorded.
        let dir = tempfile::tempdir().unwrap();
        let tokens = killed_run(dir.path(), false);
        assert_eq!(tokens.len(), 1);
        let before = fs::read(dir.path().join("mbox")).unwrap();
        let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
        assert_eq!(mbox.recover(&tokens).unwrap(), [false]);
        assert_eq!(fs::read(dir.path().join("mbox")).unwrap(), before);
        assert_eq!(subjects(dir.path()), ["Subject: A", "Subject: C"]);
        assert!(
            !dir.path().join("mbox.lock").exists(),
            "the dead lock is broken"
        );
    }

    #[test]
    fn no_loss_earlier_tokens_and_old_style_tokens_are_never_cut() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = killed_run(dir.path(), true);
        let before = fs::read(dir.path().join("mbox")).unwrap();
        let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
        // The dead lock's append is not the last token here (as if the order were wrong):
        // nothing is cut.
        let reversed = vec![tokens[1].clone(), tokens[0].clone()];
        assert_eq!(mbox.recover(&reversed).unwrap(), [false, false]);
        assert_eq!(fs::read(dir.path().join("mbox")).unwrap(), before);

        // A bare offset (a state file written before append ids) under a dead lock of the
        // old form: never cut either.
        let old_lock = format!("pop3 {} {}\n", dead_pid(), fsutil::hostname());
        fs::write(dir.path().join("mbox.lock"), old_lock).unwrap();
        assert_eq!(mbox.recover(&["0".to_owned()]).unwrap(), [false]);
        assert_eq!(fs::read(dir.path().join("mbox")).unwrap(), before);
        // Nor is anything cut for garbage or for no tokens at all.
        assert_eq!(mbox.recover(&["x:".to_owned()]).unwrap(), [false]);
        assert_eq!(mbox.recover(&[]).unwrap(), Vec::<bool>::new());
        assert_eq!(fs::read(dir.path().join("mbox")).unwrap(), before);
    }

    #[test]
    fn recovery_without_proof_cuts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        let token = {
            let p = mbox.begin(&test_envelope()).unwrap();
            p.token().unwrap()
        };
        deliver(&mut mbox, &[b"Subject: one\n\nbody\n"]);
        let before = fs::read(&path).unwrap();
        // The append with this token let go of its lock: whatever follows may be anyone's.
        let mut mbox = Mbox::open(&path).unwrap();
        assert_eq!(mbox.recover(&[token]).unwrap(), [false]);
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_token_is_the_offset_and_the_append_id_of_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        let mut mbox = Mbox::open(&path).unwrap();
        deliver(&mut mbox, &[b"Subject: one\n\nbody\n"]);
        let len = fs::metadata(&path).unwrap().len();
        let p = mbox.begin(&test_envelope()).unwrap();
        let token = p.token().unwrap();
        let (offset, id) = parse_token(&token).unwrap();
        assert_eq!(offset, len);
        let lock = fs::read_to_string(dir.path().join("mbox.lock")).unwrap();
        assert_eq!(lock.split_whitespace().nth(3), Some(id));
        assert_eq!(parse_token("12"), None);
        assert_eq!(parse_token("12:"), None);
        assert_eq!(parse_token("12:ab.3"), Some((12, "ab.3")));
    }

    /// The pid of a process that has exited.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    /// Split an mbox into (separator line, message) pairs, checking the separator format.
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
            empty(&path);
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
        empty(&path);
        let bytes: Vec<&[u8]> = msg.chunks(1).collect();
        deliver(&mut mbox, &bytes);
        assert_eq!(messages(&fs::read(&path).unwrap())[0].1, want);
    }

    #[test]
    fn dropped_pending_truncates_to_the_previous_length() {
        let (dir, path, mut mbox, before) = mbox_with_one_message();
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
        let (_dir, path, mbox, before) = mbox_with_one_message();
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
        let (_dir, path, lock) = mbox_paths();
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
        let (_dir, path, lock) = mbox_paths();
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
        let (_dir, path, lock) = mbox_paths();
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

    /// Not a test: the other process for `an_fcntl_lock_holder_blocks_us`. It takes an
    /// fcntl lock on the file named in the environment, says so, writes, and lets go.
    #[test]
    #[ignore = "helper process, run by an_fcntl_lock_holder_blocks_us"]
    fn fcntl_lock_holder() {
        let Some(path) = helper_arg() else {
            return;
        };
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
        let mut holder = helper_process("fcntl_lock_holder", &path).spawn().unwrap();
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
