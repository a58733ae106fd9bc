//! The per-account lock: a separate `<account>.lock` file that is never renamed or deleted,
//! locked with `File::try_lock` (flock on Linux) for as long as the value lives.
//!
//! Why a separate file: the UIDL state is replaced by rename when pruned, and a lock on a
//! file that is then renamed over protects nothing for the next process (STYLE.md
//! anti-pattern 6). Deleting the lock file on exit would race the same way, so it stays.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;

/// A held account lock; released on drop.
#[derive(Debug)]
pub struct AccountLock {
    _file: File,
    path: PathBuf,
}

impl AccountLock {
    /// Create (if needed, with its parent directory) and lock `path` without waiting. When
    /// another process holds it: `ErrorKind::Temporary` with a message naming the lock file
    /// ("another pop3 is already fetching this account (lock file ...)"); other failures are
    /// `ErrorKind::Io` naming the file.
    pub fn acquire(path: &Path) -> Result<AccountLock> {
        let io_err = |what: &str, e| {
            Error::with_source(
                ErrorKind::Io,
                format!("{what} lock file {}", path.display()),
                e,
            )
        };
        fsutil::create_dirs(&fsutil::parent_dir(path))
            .map_err(|e| io_err("cannot create the directory of", e))?;
        // No truncate: the file's content is irrelevant, and it may be locked by another run.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err("cannot open", e))?;
        match file.try_lock() {
            Ok(()) => Ok(AccountLock {
                _file: file,
                path: path.to_path_buf(),
            }),
            Err(TryLockError::WouldBlock) => Err(Error::new(
                ErrorKind::Temporary,
                format!(
                    "another pop3 is already fetching this account (lock file {})",
                    path.display()
                ),
            )),
            Err(TryLockError::Error(e)) => Err(io_err("cannot lock", e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
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
    fn existing_content_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(&path, b"12345\n").unwrap();
        let _l = AccountLock::acquire(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"12345\n");
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
