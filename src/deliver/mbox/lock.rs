//! The two locks an mbox writer must hold, taken the way mutt, procmail and Postfix `local`
//! expect: a `<mbox>.lock` dot-lock, then an fcntl write lock on the whole file (CRATES.md
//! section 8; Linux `flock` locks would not be seen by them). Owns taking, refreshing and
//! releasing them, and breaking a dot-lock that its owner can no longer release.
//!
//! Our dot-lock holds one line, `pop3 <pid> <host> <append id>`. The append id is this run's
//! random id and a counter (`<run id>.<n>`), new for each time the lock is taken, and the
//! mbox sink puts the same id into the token of the append made under it. When a later run
//! breaks a dot-lock whose pid is dead, it remembers that id ([`MboxLock::take_broken`]):
//! proof that the append with that token was the last thing anyone who honours dot-locks
//! did to the mbox, so its tail may be cut back (see `Mbox::recover`).

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::deliver::liveness::process_exists;
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;

/// How long taking the dot-lock and the fcntl lock together may take (mpop waits 10 s).
pub(super) const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A dot-lock older than this is left over from a crashed program and is removed (procmail
/// and mutt use a few minutes too; nobody holds an mbox lock for that long while writing).
pub(super) const STALE_LOCK: Duration = Duration::from_secs(5 * 60);

/// How often a held dot-lock's time stamp is refreshed: the message streams in from the
/// network while the mbox is locked, which can take longer than [`STALE_LOCK`].
pub(super) const TOUCH_LOCK: Duration = Duration::from_secs(60);

/// The pause between two attempts to take a lock.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// How the locks of one mbox are taken.
#[derive(Debug)]
pub(super) struct MboxLock {
    /// The mbox, for messages.
    mbox: PathBuf,
    /// `<mbox>.lock`.
    path: PathBuf,
    timeout: Duration,
    stale_after: Duration,
    /// The append id in the last dot-lock this broke because its pop3 owner no longer
    /// runs ("" for a lock written before append ids existed).
    broken: RefCell<Option<String>>,
}

impl MboxLock {
    pub(super) fn new(mbox: &Path, timeout: Duration, stale_after: Duration) -> MboxLock {
        let mut path = OsString::from(mbox.as_os_str());
        path.push(".lock");
        MboxLock {
            mbox: mbox.to_path_buf(),
            path: PathBuf::from(path),
            timeout,
            stale_after,
            broken: RefCell::new(None),
        }
    }

    /// The append id of the dead pop3 dot-lock broken since the last call, if any.
    pub(super) fn take_broken(&self) -> Option<String> {
        self.broken.borrow_mut().take()
    }

    /// Take the dot-lock under a fresh append id, then the fcntl lock on `file` (the mbox's
    /// only descriptor), both within the timeout. Errors: `ErrorKind::Temporary` naming the
    /// lock when another program holds it too long, `ErrorKind::Io` otherwise.
    pub(super) fn acquire<'a>(&'a self, file: &'a File) -> Result<Locks<'a>> {
        let deadline = Instant::now() + self.timeout;
        let id = new_append_id();
        let dotlock = self.take_dotlock(&id, deadline)?;
        // From here on, dropping `locks` removes our dot-lock.
        let locks = Locks {
            lock: self,
            file,
            dotlock,
            id,
            touched: Instant::now(),
        };
        loop {
            match rustix::fs::fcntl_lock(file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(locks),
                // POSIX allows either errno for "held by another process".
                Err(e) if e == Errno::AGAIN || e == Errno::ACCESS => {
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::Temporary,
                            format!(
                                "mbox {} is locked by another program (fcntl lock held for \
                                 more than {} s)",
                                self.mbox.display(),
                                self.timeout.as_secs_f32()
                            ),
                        ));
                    }
                    thread::sleep(LOCK_RETRY);
                }
                Err(e) => {
                    return Err(Error::with_source(
                        ErrorKind::Io,
                        format!("cannot lock {}", self.mbox.display()),
                        io::Error::from(e),
                    ));
                }
            }
        }
    }

    /// Create the dot-lock exclusively, removing a stale one, retrying until `deadline`.
    fn take_dotlock(&self, id: &str, deadline: Instant) -> Result<File> {
        let lock = &self.path;
        loop {
            let e = match create_dotlock(lock, id) {
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
            if let Some(dead_id) = dead_pop3_owner(lock) {
                log::warn!(
                    "removing lock file {} left by a pop3 process that no longer runs",
                    lock.display()
                );
                match fs::remove_file(lock) {
                    Ok(()) => {
                        *self.broken.borrow_mut() = Some(dead_id);
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
                        self.mbox.display(),
                        lock.display()
                    ),
                ));
            }
            thread::sleep(LOCK_RETRY);
        }
    }
}

/// Both locks of an mbox, released (fcntl first, then the dot-lock) on drop.
pub(super) struct Locks<'a> {
    lock: &'a MboxLock,
    file: &'a File,
    /// Our `<mbox>.lock`, kept open to refresh its time stamp.
    dotlock: File,
    /// The append id written into the dot-lock.
    id: String,
    pub(super) touched: Instant,
}

impl Locks<'_> {
    /// The append id this lock was taken under: the mbox token of the append it guards
    /// carries it.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Keep our dot-lock from looking stale to others while a slow download holds it.
    pub(super) fn refresh(&mut self) {
        if self.touched.elapsed() >= TOUCH_LOCK {
            self.touched = Instant::now();
            if let Err(e) = self.dotlock.set_modified(SystemTime::now()) {
                log::warn!("cannot touch {}: {e}", self.lock.path.display());
            }
        }
    }
}

impl Drop for Locks<'_> {
    fn drop(&mut self) {
        crate::crashpoint::hit("mbox.unlock", self.lock.path.display());
        // Unlocking a lock we never got is harmless, so this also serves the error path
        // between the dot-lock and the fcntl lock.
        if let Err(e) = rustix::fs::fcntl_lock(self.file, FlockOperation::Unlock) {
            log::warn!("cannot unlock {}: {e}", self.lock.mbox.display());
        }
        if let Err(e) = fs::remove_file(&self.lock.path) {
            log::warn!("cannot remove {}: {e}", self.lock.path.display());
        }
    }
}

/// This process's random run id: 16 hex digits, the same for every mbox and every append
/// of this run, and (with overwhelming probability) different from any other run's.
fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // No entropy source: the pid and the clock still tell runs apart.
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            bytes = (nanos ^ (u64::from(std::process::id()) << 32)).to_be_bytes();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// A fresh append id, `<run id>.<n>`.
fn new_append_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("{}.{}", run_id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Create the dot-lock with our owner line already in it: written to a unique temporary
/// name first and then hard-linked to the lock name, so that a kill can never leave an
/// empty lock that no later run could attribute (the classic NFS-safe recipe). Where the
/// filesystem has no hard links, `create_new` and a write.
fn create_dotlock(lock: &Path, id: &str) -> io::Result<File> {
    let pid = std::process::id();
    let line = owner_line(pid, id);
    let mut tmp = OsString::from(lock.as_os_str());
    tmp.push(format!(".{pid}.{id}"));
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = file.write_all(line.as_bytes());
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
            let _ = file.write_all(line.as_bytes());
            Ok(file)
        }
    }
}

/// The content of our dot-lock: `pop3 <pid> <host> <append id>`.
fn owner_line(pid: u32, id: &str) -> String {
    format!("pop3 {pid} {} {id}\n", fsutil::hostname())
}

/// If `lock` was written by a pop3 process on this host that no longer runs, the append id
/// it names ("" for an older lock without one).
fn dead_pop3_owner(lock: &Path) -> Option<String> {
    let text = fs::read_to_string(lock).ok()?;
    let mut words = text.split_whitespace();
    let (Some("pop3"), Some(pid), Some(host)) = (words.next(), words.next(), words.next()) else {
        return None;
    };
    let pid = pid.parse::<u32>().ok()?;
    let dead = host == fsutil::hostname() && !process_exists(pid);
    dead.then(|| words.next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn the_dotlock_names_us_and_a_fresh_append_id_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("mbox");
        let file = File::create(&mbox).unwrap();
        let lock = MboxLock::new(&mbox, LOCK_TIMEOUT, STALE_LOCK);
        let first = {
            let locks = lock.acquire(&file).unwrap();
            let text = fs::read_to_string(dir.path().join("mbox.lock")).unwrap();
            let want = format!(
                "pop3 {} {} {}\n",
                std::process::id(),
                fsutil::hostname(),
                locks.id()
            );
            assert_eq!(text, want);
            let (run, n) = locks.id().split_once('.').unwrap();
            assert_eq!(run, run_id());
            assert_eq!(run.len(), 16);
            n.parse::<u64>().unwrap();
            locks.id().to_owned()
        };
        assert!(!dir.path().join("mbox.lock").exists());
        let second = lock.acquire(&file).unwrap();
        assert_ne!(second.id(), first);
        // Nothing was broken: our own locks were released by us.
        drop(second);
        assert_eq!(lock.take_broken(), None);
        // Only the lock is left in the directory (no temporary link names).
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_dead_pop3_lock_is_broken_and_its_append_id_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("mbox");
        let file = File::create(&mbox).unwrap();
        let lock = MboxLock::new(&mbox, Duration::from_millis(300), STALE_LOCK);
        let lock_path = dir.path().join("mbox.lock");
        let host = fsutil::hostname();

        fs::write(&lock_path, owner_line(dead_pid(), "abc.7")).unwrap();
        drop(lock.acquire(&file).unwrap());
        assert_eq!(lock.take_broken().as_deref(), Some("abc.7"));
        assert_eq!(lock.take_broken(), None, "taken once");

        // An older lock without an append id is broken too, with an empty id.
        fs::write(&lock_path, format!("pop3 {} {host}\n", dead_pid())).unwrap();
        drop(lock.acquire(&file).unwrap());
        assert_eq!(lock.take_broken().as_deref(), Some(""));

        // A live owner, another host, or another program: waited for, never broken.
        for text in [
            owner_line(std::process::id(), "live.1"),
            format!("pop3 {} other-{host} x.1\n", dead_pid()),
            "12345\n".to_owned(),
        ] {
            fs::write(&lock_path, &text).unwrap();
            let err = lock.acquire(&file).err().expect("the lock is held");
            assert_eq!(err.kind(), ErrorKind::Temporary, "{text}");
            assert_eq!(fs::read_to_string(&lock_path).unwrap(), text);
            assert_eq!(lock.take_broken(), None);
        }
    }
}
