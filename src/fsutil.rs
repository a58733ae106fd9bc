//! The durable-write helpers: one way to replace a file atomically, one way to fsync a
//! directory, and the host name used in Maildir file names and `Received:` headers.

use std::io;
use std::path::Path;

/// Replace `path` with `bytes` atomically and durably: a temp file in the same directory,
/// write, `sync_all`, rename over `path`, then fsync the directory. Creates the directory
/// (and parents) when missing. The new file has mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let _ = (path, bytes);
    todo!("state helper")
}

/// fsync a directory so that a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let _ = dir;
    todo!("state helper")
}

/// This machine's host name (uname nodename), or "localhost" when empty.
pub fn hostname() -> String {
    todo!("state helper")
}
