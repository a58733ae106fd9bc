//! The durable-write helpers: one way to replace a file atomically, one way to fsync a
//! directory, and the host name used in Maildir file names and `Received:` headers.
//!
//! Everything that must survive a crash goes through here (STYLE.md rule 8): a rename or a
//! create is only durable once the directory holding it has been fsynced, which is the step
//! mpop's UIDL file missed (STYLE.md anti-pattern 6). Nothing here locks; see `state::lock`.

use std::fs::{self, DirBuilder, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Replace `path` with `bytes` atomically and durably: a temp file in the same directory,
/// write, `sync_all`, rename over `path`, then fsync the directory. Creates the directory
/// (and parents) when missing. The new file has mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    create_dirs(&dir)?;
    // The temp file must live in the target directory: rename is atomic only within one
    // filesystem. A crash before `persist` leaves a `.pop3-tmp*` file behind, never a torn
    // target.
    let mut tmp = tempfile::Builder::new()
        .prefix(".pop3-tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(&dir)?;
    crate::crashpoint::hit("atomic.write", path.display());
    tmp.write_all(bytes)?;
    crate::crashpoint::hit("atomic.fsync", path.display());
    tmp.as_file().sync_all()?;
    crate::crashpoint::hit("atomic.rename", path.display());
    tmp.persist(path).map_err(|e| e.error)?;
    crate::crashpoint::hit("atomic.dirsync", dir.display());
    sync_dir(&dir)
}

/// fsync a directory so that a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// This machine's host name (uname nodename), or "localhost" when empty.
pub fn hostname() -> String {
    let uts = rustix::system::uname();
    let name = uts.nodename().to_string_lossy();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name.into_owned()
    }
}

/// Create `dir` and any missing parents with mode 0700, fsyncing the parent of every
/// directory created so that the new entries survive a crash (a state directory that
/// vanishes after a power loss would mean re-delivering every message).
pub(crate) fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut missing: Vec<&Path> = Vec::new();
    for a in dir.ancestors() {
        if a.as_os_str().is_empty() {
            break;
        }
        match fs::metadata(a) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", a.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(a),
            Err(e) => return Err(e),
        }
    }
    for d in missing.into_iter().rev() {
        match DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => sync_dir(&parent_dir(d))?,
            // Someone else (another pop3 run) created it in between: fine if it is a dir.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The directory holding `path`, with "." for a bare file name.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The names in `dir`, sorted: for tests that look at what a directory holds.
#[cfg(test)]
pub(crate) fn test_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    use super::test_names as entries;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(entries(dir.path()), vec!["state".to_owned()]);
    }

    #[test]
    fn write_atomic_creates_missing_dirs_and_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c/state");
        write_atomic(&path, b"x").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let a = fs::metadata(dir.path().join("a")).unwrap();
        assert!(a.is_dir());
        assert_eq!(a.mode() & 0o777, 0o700);
    }

    #[test]
    fn write_atomic_under_a_regular_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        assert!(write_atomic(&file.join("state"), b"y").is_err());
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn sync_dir_works_on_a_dir_and_fails_on_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path()).unwrap();
        assert!(sync_dir(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn hostname_is_not_empty() {
        let h = hostname();
        assert!(!h.is_empty());
        assert!(!h.contains('\0'));
    }

    #[test]
    fn parent_dir_of_a_bare_name_is_dot() {
        assert_eq!(parent_dir(Path::new("file")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("/a/file")), PathBuf::from("/a"));
    }
}
