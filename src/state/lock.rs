//! The per-account lock: a separate `<account>.lock` file that is never renamed or deleted,
//! locked with `File::try_lock` (flock on Linux) for as long as the value lives.
//!
//! Why a separate file: the UIDL state is replaced by rename when pruned, and a lock on a
//! file that is then renamed over protects nothing for the next process (STYLE.md
//! anti-pattern 6). Deleting the lock file on exit would race the same way, so it stays.
//!
//! Once it holds the lock, a run writes who it is into the file, one line:
//! `<pid> <start time, RFC 3339 UTC> <host>`. The lock is the flock, never the content;
//! the content only lets a second run say who holds the lock and since when ("held by pid
//! 1234 since 2026-12-06 20:01:02"), and whether that process still exists, so that a run
//! stuck for hours (a password command waiting for a terminal under cron) can be found.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;

/// A held account lock; released on drop.
#[derive(Debug)]
pub struct AccountLock {
    _file: File,
    path: PathBuf,
}

/// Open (creating it and its directory, mode 0600) a lock file that is never renamed or
/// deleted, without truncating it: another process may hold it and have written its name
/// in it. The one way this crate opens a lock file (the account lock here, the OAuth token
/// lock in `oauth::store`). Errors are `ErrorKind::Io` naming the file as `what`.
pub fn open_lock_file(path: &Path, what: &str) -> Result<File> {
    let io_err = |doing: &str, e| {
        Error::with_source(
            ErrorKind::Io,
            format!("{doing} {what} {}", path.display()),
            e,
        )
    };
    fsutil::create_dirs(&fsutil::parent_dir(path))
        .map_err(|e| io_err("cannot create the directory of", e))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err("cannot open", e))
}

impl AccountLock {
    /// Create (if needed, with its parent directory) and lock `path` without waiting, then
    /// write our pid, the time and the host into it. When another process holds it:
    /// `ErrorKind::Temporary` with a message naming the holder and the lock file ("another
    /// pop3 is already fetching this account: held by pid 1234 since ... (lock file ...)");
    /// other failures are `ErrorKind::Io` naming the file.
    pub fn acquire(path: &Path) -> Result<AccountLock> {
        let io_err = |what: &str, e| {
            Error::with_source(
                ErrorKind::Io,
                format!("{what} lock file {}", path.display()),
                e,
            )
        };
        let file = open_lock_file(path, "lock file")?;
        match file.try_lock() {
            Ok(()) => {
                let holder = Holder::me().to_line();
                // Write, then cut: a reader never sees an empty file, and reads one line.
                // Only informative, so a failure costs the next run's message, not the lock.
                if let Err(e) = file
                    .write_all_at(holder.as_bytes(), 0)
                    .and_then(|()| file.set_len(holder.len() as u64))
                {
                    log::debug!("cannot write the holder into {}: {e}", path.display());
                }
                Ok(AccountLock {
                    _file: file,
                    path: path.to_path_buf(),
                })
            }
            Err(TryLockError::WouldBlock) => {
                let content = std::fs::read_to_string(path).unwrap_or_default();
                let holder = match Holder::parse(&content) {
                    Some(h) => h.describe(),
                    None => "the lock file does not say which process holds it".to_owned(),
                };
                Err(Error::new(
                    ErrorKind::Temporary,
                    format!(
                        "another pop3 is already fetching this account: {holder} (lock file {})",
                        path.display()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => Err(io_err("cannot lock", e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    since: jiff::Timestamp,
    host: String,
}

impl Holder {
    /// This process, now, here.
    fn me() -> Holder {
        Holder {
            pid: std::process::id(),
            since: jiff::Timestamp::now(),
            host: fsutil::hostname(),
        }
    }

    /// `<pid> <RFC 3339 UTC> <host>` and a newline.
    fn to_line(&self) -> String {
        format!(
            "{} {} {}\n",
            self.pid,
            self.since.round(jiff::Unit::Second).unwrap_or(self.since),
            self.host
        )
    }

    /// The first line of a lock file; `None` when it is not one we wrote.
    fn parse(content: &str) -> Option<Holder> {
        let line = content.lines().next()?;
        let mut fields = line.split(' ');
        let pid = fields.next()?.parse().ok().filter(|p| *p > 0)?;
        let since = fields.next()?.parse().ok()?;
        let host = fields.next()?.to_owned();
        if fields.next().is_some() {
            return None;
        }
        Some(Holder { pid, since, host })
    }

    /// "held by pid 1234 since 2026-12-06 20:01:02" (local time), saying when that process
    /// is on another host, or no longer exists here.
    fn describe(&self) -> String {
        let since = self
            .since
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let host = crate::proto::sanitize::sanitize(self.host.as_bytes());
        if self.host != fsutil::hostname() {
            return format!("held by pid {} on host {host} since {since}", self.pid);
        }
        let mut text = format!("held by pid {} since {since}", self.pid);
        if !process_exists(self.pid) {
            text.push_str(&format!(
                ", but no process {} exists now (a run in another PID namespace, or one \
                 that has only just started?)",
                self.pid
            ));
        }
        text
    }
}

/// Whether a process with this pid exists (kill with signal 0; EPERM means it does but is
/// not ours).
fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_temporary_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/pop3/alice@pop.example.com:995.lock");
        let first = AccountLock::acquire(&path).unwrap();
        assert_eq!(first.path(), path);
        assert!(path.is_file());

        let err = AccountLock::acquire(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Temporary);
        assert!(
            err.message().contains(&*path.to_string_lossy()),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("already fetching"),
            "{}",
            err.message()
        );

        drop(first);
        let again = AccountLock::acquire(&path).unwrap();
        // The lock file is never removed, by drop or otherwise.
        drop(again);
        assert!(path.is_file());
    }

    #[test]
    fn different_accounts_do_not_block_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let _a = AccountLock::acquire(&dir.path().join("a.lock")).unwrap();
        let b = AccountLock::acquire(&dir.path().join("b.lock"));
        assert!(b.is_ok());
    }

    #[test]
    fn the_holder_replaces_what_an_earlier_run_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let stale = format!(
            "12345 2001-01-01T00:00:00Z {} and a long tail\n",
            "x".repeat(300)
        );
        std::fs::write(&path, stale).unwrap();
        let _l = AccountLock::acquire(&path).unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        let holder = Holder::parse(&content).expect(&content);
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.host, fsutil::hostname());
        assert_eq!(content.lines().count(), 1, "{content}");
        let age = jiff::Timestamp::now().duration_since(holder.since);
        assert!(age.as_secs() < 60 && age.as_secs() >= 0, "{age:?}");
    }

    /// Issue #9: a run that holds the lock for hours must be findable from the message the
    /// next run prints.
    #[test]
    fn lock_held_message_names_the_holder_pid_and_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let _first = AccountLock::acquire(&path).unwrap();
        let since = Holder::parse(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .since
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let err = AccountLock::acquire(&path).unwrap_err();
        let msg = err.message();
        assert_eq!(err.kind(), ErrorKind::Temporary);
        let want = format!("held by pid {} since {since}", std::process::id());
        assert!(msg.contains(&want), "{msg}");
        assert!(!msg.contains("no process"), "{msg}");
    }

    #[test]
    fn lock_held_message_says_when_the_holder_is_gone_or_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = AccountLock::acquire(&path).unwrap();
        // A pid that cannot exist: above every pid_max (2^22).
        let gone = Holder {
            pid: 99_999_999,
            since: "2026-12-06T19:01:02Z".parse().unwrap(),
            host: fsutil::hostname(),
        };
        std::fs::write(&path, gone.to_line()).unwrap();
        let msg = AccountLock::acquire(&path)
            .unwrap_err()
            .message()
            .to_owned();
        assert!(
            msg.contains("held by pid 99999999 since 2026-12-0"),
            "{msg}"
        );
        assert!(msg.contains("no process 99999999 exists now"), "{msg}");

        let elsewhere = Holder {
            host: "other-host.example".into(),
            ..gone
        };
        std::fs::write(&path, elsewhere.to_line()).unwrap();
        let msg = AccountLock::acquire(&path)
            .unwrap_err()
            .message()
            .to_owned();
        assert!(
            msg.contains("held by pid 99999999 on host other-host.example since"),
            "{msg}"
        );
        assert!(!msg.contains("no process"), "{msg}");

        std::fs::write(&path, b"").unwrap();
        let msg = AccountLock::acquire(&path)
            .unwrap_err()
            .message()
            .to_owned();
        assert!(msg.contains("does not say which process"), "{msg}");
        drop(first);
    }

    #[test]
    fn lock_under_a_regular_file_is_io_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let path = file.join("x.lock");
        let err = AccountLock::acquire(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(
            err.message().contains(&*path.to_string_lossy()),
            "{}",
            err.message()
        );
    }
}
