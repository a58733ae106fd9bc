//! The per-account lock: a separate `<account>.lock` file that is never renamed or deleted,
//! locked with `File::try_lock` (flock on Linux) for as long as the value lives.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::Result;

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
        let _ = path;
        todo!("state helper")
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
