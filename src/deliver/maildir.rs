//! Maildir delivery (<https://cr.yp.to/proto/maildir.html>): the message is written into
//! `tmp/` under a unique name opened with `create_new`, fsynced, renamed into `new/` as
//! `<secs>.M<usec>P<pid>Q<n>.<host>,S=<size>`, and `new/` is fsynced. A message that is
//! dropped before commit is removed from `tmp/`.

use std::path::{Path, PathBuf};

use super::{Pending, Sink};
use crate::error::Result;

/// A Maildir opened for delivery.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// Open `root`, creating it and `cur/`, `new/`, `tmp/` (mode 0700) when missing.
    /// Errors are `ErrorKind::CannotCreate` naming the path.
    pub fn open(root: &Path) -> Result<Maildir> {
        let _ = root;
        todo!("deliver helper")
    }

    /// The Maildir's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Sink for Maildir {
    fn begin(&mut self) -> Result<Box<dyn Pending + '_>> {
        todo!("deliver helper")
    }
}
