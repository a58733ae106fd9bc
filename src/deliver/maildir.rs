//! Maildir delivery (<https://cr.yp.to/proto/maildir.html>): the message is written into
//! `tmp/` under a unique name opened with `create_new`, fsynced, renamed into `new/` as
//! `<secs>.M<usec>P<pid>Q<n>.<host>,S=<size>`, and `new/` is fsynced. A message that is
//! dropped before commit is removed from `tmp/`.
//!
//! This module owns the file names, the write-fsync-rename-fsync order (DESIGN.md
//! invariants 1 and 3: `commit` returns only once the message is durable, and nothing
//! partial is ever visible in `new/`) and the upkeep of `tmp/`: a group commit fsyncs every
//! file itself (several at once, never `syncfs`, which FUSE filesystems do not pass on),
//! recovery removes the `tmp/` files of a killed batch, and opening a Maildir removes what
//! dead writers left in `tmp/` (see [`Maildir::open`]). It never touches `cur/` beyond
//! creating it and looking names up, and never reads or rewrites existing messages.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::liveness::process_exists;
use super::{Envelope, Pending, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;

/// Messages are streamed through a buffer this large, so a big message costs a few hundred
/// `write` calls rather than one per line.
const BUFFER: usize = 64 * 1024;

/// How often `begin` tries a fresh name when `create_new` finds one taken (a leftover from a
/// crashed run with a recycled pid, or a clock that went backwards).
const NAME_ATTEMPTS: u32 = 100;

/// The `Q<n>` part of every name, shared by all Maildirs in this process: with the time and
/// the pid it makes a name unique even when two `Maildir` values point at one directory and
/// an earlier message has already left `tmp/` (where `create_new` could no longer see it).
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// Messages staged for one group commit at most (the engine also flushes at 32 MB). Each
/// file's fsync starts when it is staged, so a batch costs the state's and the directory's
/// fsyncs only: 256 rather than 64 took the 2000-message disk benchmark from 0.73 s to
/// 0.57 s (median of 3, beside another fsync-heavy process).
pub const BATCH: usize = 256;

/// How many fsyncs are in flight at once. Issued together, the filesystem can fold them into
/// a few journal commits (ext4, xfs) or send them in parallel (NFS, FUSE); DESIGN.md has the
/// measurements that chose 16.
const SYNC_THREADS: usize = 16;

/// A file in `tmp/` that nobody has read or written for this long is abandoned: the
/// Maildir specification's rule for cleaning `tmp/`.
pub const STALE_TMP: Duration = Duration::from_secs(36 * 60 * 60);

/// A Maildir opened for delivery.
#[derive(Debug)]
pub struct Maildir {
    root: PathBuf,
    /// The sanitised host name, computed once.
    host: String,
    /// Messages written to `tmp/` and waiting for `sync_batch` / `publish_batch`.
    staged: Vec<Staged>,
    /// fsyncs each staged file in the background (started with the first one).
    syncer: Option<Syncer>,
}

/// A complete message in `tmp/`, not yet known durable, not visible.
#[derive(Debug)]
struct Staged {
    /// The number its fsync has in the [`Syncer`].
    id: u64,
    tmp: PathBuf,
    target: PathBuf,
    synced: bool,
}

/// fsyncs staged files on [`SYNC_THREADS`] threads as soon as they are staged, so that a
/// batch becomes durable while the next messages download instead of after them. Every
/// file is fsynced itself (never `syncfs`, which FUSE filesystems do not pass on and which
/// before Linux 5.8 hid write errors); [`Syncer::wait`] collects the answers.
#[derive(Debug)]
struct Syncer {
    jobs: Option<mpsc::Sender<(u64, File)>>,
    done: mpsc::Receiver<(u64, io::Result<()>)>,
    /// Answers that arrived for files nobody waits for yet.
    early: std::collections::HashMap<u64, io::Result<()>>,
    next_id: u64,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Syncer {
    fn start() -> io::Result<Syncer> {
        let (jobs, queue) = mpsc::channel::<(u64, File)>();
        let (report, done) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::with_capacity(SYNC_THREADS);
        for _ in 0..SYNC_THREADS {
            let queue = Arc::clone(&queue);
            let report = report.clone();
            let worker = std::thread::Builder::new()
                .name("pop3-fsync".into())
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job, not during the fsync.
                        let job = queue.lock().map(|q| q.recv());
                        let Ok(Ok((id, file))) = job else { return };
                        if report.send((id, file.sync_all())).is_err() {
                            return;
                        }
                    }
                })?;
            workers.push(worker);
        }
        Ok(Syncer {
            jobs: Some(jobs),
            done,
            early: std::collections::HashMap::new(),
            next_id: 0,
            workers,
        })
    }

    /// Start the fsync of `file`; returns the number to wait for.
    fn submit(&mut self, file: File) -> io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let sent = self.jobs.as_ref().map(|jobs| jobs.send((id, file)));
        match sent {
            Some(Ok(())) => Ok(id),
            _ => Err(io::Error::other("the fsync threads are gone")),
        }
    }

    /// Wait until the fsync of `id` has finished; its result.
    fn wait(&mut self, id: u64) -> io::Result<()> {
        loop {
            if let Some(result) = self.early.remove(&id) {
                return result;
            }
            match self.done.recv() {
                Ok((got, result)) if got == id => return result,
                Ok((got, result)) => {
                    self.early.insert(got, result);
                }
                Err(_) => return Err(io::Error::other("the fsync threads are gone")),
            }
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the queue ends the workers once they have finished what they hold.
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Maildir {
    /// Open `root`, creating it and `cur/`, `new/`, `tmp/` (mode 0700) when missing.
    /// Errors are `ErrorKind::CannotCreate` naming the path.
    ///
    /// Then `tmp/` is cleaned (failures are only logged): a regular file goes when
    /// - it was neither read nor written for [`STALE_TMP`] (36 hours, the specification's
    ///   rule; the later of its atime and mtime counts, so that a `noatime` mount, where
    ///   atime never moves, still sees writes), or
    /// - its name is one this module gives (`<secs>.M<usec>P<pid>Q<n>.<host>`) with this
    ///   host's name and the pid of a process that no longer runs: the copy a killed run was
    ///   staging before its batch was noted in the state (so recovery never hears of it).
    ///   The writer is dead, so nobody can still be writing the file.
    pub fn open(root: &Path) -> Result<Maildir> {
        for sub in ["cur", "new", "tmp"] {
            let dir = root.join(sub);
            fsutil::create_dirs(&dir).map_err(|e| {
                Error::with_source(
                    ErrorKind::CannotCreate,
                    format!("cannot create Maildir directory {}", dir.display()),
                    e,
                )
            })?;
        }
        // Fail here, before any message is fetched, rather than on the first delivery.
        // (For root, permission bits are not enforced and this always succeeds.)
        for sub in ["new", "tmp"] {
            let dir = root.join(sub);
            rustix::fs::access(
                &dir,
                rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            )
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::CannotCreate,
                    format!("Maildir directory {} is not writable", dir.display()),
                    io::Error::from(e),
                )
            })?;
        }
        let maildir = Maildir {
            root: root.to_path_buf(),
            host: sanitize_host(&fsutil::hostname()),
            staged: Vec::new(),
            syncer: None,
        };
        maildir.clean_tmp(SystemTime::now());
        Ok(maildir)
    }

    /// Remove what dead writers left in `tmp/` (the rules are on [`Maildir::open`]).
    fn clean_tmp(&self, now: SystemTime) {
        let tmp_dir = self.root.join("tmp");
        let entries = match fs::read_dir(&tmp_dir) {
            Ok(entries) => entries,
            Err(e) => {
                log::warn!("cannot read {}: {e}", tmp_dir.display());
                return;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let last_use = match (meta.accessed(), meta.modified()) {
                (Ok(a), Ok(m)) => a.max(m),
                (Ok(t), Err(_)) | (Err(_), Ok(t)) => t,
                (Err(_), Err(_)) => continue,
            };
            let stale = now
                .duration_since(last_use)
                .is_ok_and(|age| age >= STALE_TMP);
            let orphan = entry
                .file_name()
                .to_str()
                .and_then(|name| writer_pid(name, &self.host))
                .is_some_and(|pid| !process_exists(pid));
            if !(stale || orphan) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => log::info!(
                    "removed {} left in tmp/ by {}",
                    path.display(),
                    if orphan {
                        "a process that no longer runs"
                    } else {
                        "a writer 36 hours ago"
                    }
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("cannot remove {}: {e}", path.display()),
            }
        }
    }

    /// The Maildir's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create the `tmp/` file of a new message under a fresh unique name.
    fn begin_message(&mut self) -> Result<MaildirPending<'_>> {
        let tmp_dir = self.root.join("tmp");
        let mut last_err = None;
        for _ in 0..NAME_ATTEMPTS {
            let name = self.unique_name();
            let tmp = tmp_dir.join(&name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(MaildirPending {
                        out: Some(BufWriter::with_capacity(BUFFER, file)),
                        root: self.root.clone(),
                        name,
                        tmp,
                        size: 0,
                        failed: false,
                        staged: &mut self.staged,
                        syncer: &mut self.syncer,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some((tmp, e)),
                Err(e) => {
                    return Err(Error::with_source(
                        ErrorKind::Io,
                        format!("cannot create {}", tmp.display()),
                        e,
                    ));
                }
            }
        }
        let (tmp, e) = last_err.expect("NAME_ATTEMPTS > 0");
        Err(Error::with_source(
            ErrorKind::Io,
            format!(
                "cannot find a free file name in {} (last tried {})",
                tmp_dir.display(),
                tmp.display()
            ),
            e,
        ))
    }

    /// `<secs>.M<usec>P<pid>Q<n>.<host>`, the modern form from the Maildir specification.
    fn unique_name(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let q = DELIVERIES.fetch_add(1, Ordering::Relaxed) + 1;
        format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            q,
            self.host
        )
    }
}

impl Sink for Maildir {
    /// Errors creating the `tmp/` file are `ErrorKind::Io` naming it.
    fn begin(&mut self, _envelope: &Envelope<'_>) -> Result<Box<dyn Pending + '_>> {
        Ok(Box::new(self.begin_message()?))
    }

    fn batch_limit(&self) -> usize {
        BATCH
    }

    /// Wait for the fsync of every staged file (each started when it was staged, see
    /// [`Syncer`]), so that each file's durability is the filesystem's answer about that
    /// file. The first failure is the error, naming its file.
    fn sync_batch(&mut self) -> Result<()> {
        let pending = self.staged.iter().filter(|s| !s.synced).count();
        crate::crashpoint::hit("maildir.fsync", pending);
        let Some(syncer) = self.syncer.as_mut() else {
            return if pending == 0 {
                Ok(())
            } else {
                Err(Error::new(
                    ErrorKind::Internal,
                    "staged without fsync threads",
                ))
            };
        };
        let mut failure = None;
        for s in self.staged.iter_mut().filter(|s| !s.synced) {
            // Wait for every one, also after a failure, so that no answer is left behind.
            match syncer.wait(s.id) {
                Ok(()) => s.synced = true,
                Err(e) => {
                    failure.get_or_insert_with(|| {
                        Error::with_source(
                            ErrorKind::Io,
                            format!("cannot fsync {}", s.tmp.display()),
                            e,
                        )
                    });
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Rename every synced message into `new/`, then fsync `new/`. On error, whatever was
    /// renamed is taken back out (best effort), so `Err` means none of the batch is visible.
    fn publish_batch(&mut self) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        if self.staged.iter().any(|s| !s.synced) {
            return Err(Error::new(ErrorKind::Internal, "publish before sync"));
        }
        let new_dir = self.root.join("new");
        let staged = std::mem::take(&mut self.staged);
        let mut renamed: Vec<PathBuf> = Vec::with_capacity(staged.len());
        let mut failure = None;
        for s in &staged {
            crate::crashpoint::hit("maildir.rename", s.tmp.display());
            match fs::rename(&s.tmp, &s.target) {
                Ok(()) => renamed.push(s.target.clone()),
                Err(e) => {
                    failure = Some(Error::with_source(
                        ErrorKind::Io,
                        format!("cannot move message into {}", s.target.display()),
                        e,
                    ));
                    break;
                }
            }
        }
        if failure.is_none() {
            crate::crashpoint::hit("maildir.dirsync", new_dir.display());
        }
        if failure.is_none()
            && let Err(e) = fsutil::sync_dir(&new_dir)
        {
            failure = Some(Error::with_source(
                ErrorKind::Io,
                format!("cannot fsync {}", new_dir.display()),
                e,
            ));
        }
        if let Some(e) = failure {
            for target in &renamed {
                let _ = fs::remove_file(target);
            }
            for s in &staged {
                let _ = fs::remove_file(&s.tmp);
            }
            return Err(e);
        }
        Ok(())
    }

    /// A token is the file name a message got in `tmp/`; it keeps that base name in `new/`
    /// (with `,S=`) and in `cur/` (where a mail reader may add `:2,` flags). Found there,
    /// the message was delivered (`true`). Otherwise it was not (`false`), and its copy in
    /// `tmp/`, if the killed run left one, is removed: it will be fetched again. A token
    /// that is not a plain file name (a damaged state file) is only answered `false`.
    fn recover(&mut self, tokens: &[String]) -> Result<Vec<bool>> {
        let mut present = std::collections::HashSet::new();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            let entries = fs::read_dir(&dir).map_err(|e| {
                Error::with_source(ErrorKind::Io, format!("cannot read {}", dir.display()), e)
            })?;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let base = name.split([',', ':']).next().unwrap_or_default();
                present.insert(base.to_owned());
            }
        }
        let tmp_dir = self.root.join("tmp");
        let mut removed = false;
        for token in tokens {
            if !is_plain_name(token) {
                continue;
            }
            let tmp = tmp_dir.join(token);
            match fs::remove_file(&tmp) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("cannot remove {}: {e}", tmp.display()),
            }
        }
        if removed && let Err(e) = fsutil::sync_dir(&tmp_dir) {
            // Only the clean-up is at stake: a file that comes back is removed later.
            log::warn!("cannot fsync {}: {e}", tmp_dir.display());
        }
        Ok(tokens
            .iter()
            .map(|t| is_plain_name(t) && present.contains(t))
            .collect())
    }
}

impl Drop for Maildir {
    /// Staged messages that were never published are removed from `tmp/`.
    fn drop(&mut self) {
        for s in self.staged.drain(..) {
            let _ = fs::remove_file(&s.tmp);
        }
    }
}

/// A token names a file directly in `tmp/`: no separator, not `.` or `..`, not empty.
fn is_plain_name(token: &str) -> bool {
    !token.is_empty() && token != "." && token != ".." && !token.contains(['/', '\0'])
}

/// The pid in a name this module makes, `<secs>.M<usec>P<pid>Q<n>.<host>`, if `name` has
/// exactly that form with this `host`.
fn writer_pid(name: &str, host: &str) -> Option<u32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (secs, rest) = name.split_once(".M")?;
    let (usec, rest) = rest.split_once('P')?;
    let (pid, rest) = rest.split_once('Q')?;
    let (q, rest) = rest.split_once('.')?;
    if !(digits(secs) && digits(usec) && digits(pid) && digits(q)) || rest != host {
        return None;
    }
    pid.parse().ok()
}

/// Make a host name safe inside a Maildir file name: `/` would be a path separator and `:`
/// starts the info part (`:2,S`), so they become `\057` and `\072` as the specification says.
pub fn sanitize_host(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    for c in host.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            c => out.push(c),
        }
    }
    out
}

/// One message on its way into a Maildir: a file in `tmp/` until `commit` renames it.
struct MaildirPending<'a> {
    /// `None` once committed (or given up), so that `Drop` knows there is nothing to remove.
    out: Option<BufWriter<File>>,
    root: PathBuf,
    /// The file name in `tmp/`, without the `,S=` suffix.
    name: String,
    tmp: PathBuf,
    /// Bytes accepted by `write` so far: the `,S=` size.
    size: u64,
    /// A write or flush failed: the file's content is unknown, so `commit` must refuse.
    failed: bool,
    /// The Maildir's batch, for `stage`.
    staged: &'a mut Vec<Staged>,
    /// The Maildir's fsync threads, started by the first `stage`.
    syncer: &'a mut Option<Syncer>,
}

impl MaildirPending<'_> {
    fn io_error(&self, what: &str, path: &Path, e: io::Error) -> Error {
        Error::with_source(ErrorKind::Io, format!("{what} {}", path.display()), e)
    }

    /// Everything `commit` does up to the rename; on error the tmp file is still ours.
    fn finish_tmp(&mut self) -> Result<()> {
        if self.failed {
            return Err(Error::new(
                ErrorKind::Io,
                format!("an earlier write to {} failed", self.tmp.display()),
            ));
        }
        let Some(out) = self.out.as_mut() else {
            return Err(Error::new(
                ErrorKind::Internal,
                "Maildir message committed twice",
            ));
        };
        if let Err(e) = out.flush() {
            self.failed = true;
            return Err(self.io_error("cannot write", &self.tmp, e));
        }
        let out = self.out.as_ref().expect("checked above");
        out.get_ref()
            .sync_all()
            .map_err(|e| self.io_error("cannot fsync", &self.tmp, e))
    }
}

impl Write for MaildirPending<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            // After a short or failed write we no longer know what the file holds.
            return Err(io::Error::other(format!(
                "an earlier write to {} failed",
                self.tmp.display()
            )));
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("Maildir message already finished"))?;
        match out.write(buf) {
            Ok(n) => {
                self.size += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.flush().inspect_err(|_| self.failed = true)
    }
}

impl Pending for MaildirPending<'_> {
    fn token(&self) -> Option<String> {
        Some(self.name.clone())
    }

    /// Flush into the `tmp/` file and hand it to the Maildir's batch (no fsync yet).
    fn stage(mut self: Box<Self>) -> Result<()> {
        if self.failed {
            return Err(Error::new(
                ErrorKind::Io,
                format!("an earlier write to {} failed", self.tmp.display()),
            ));
        }
        let Some(mut out) = self.out.take() else {
            return Err(Error::new(
                ErrorKind::Internal,
                "Maildir message staged twice",
            ));
        };
        if let Err(e) = out.flush() {
            // Put it back so that Drop removes the tmp file.
            self.out = Some(out);
            self.failed = true;
            return Err(self.io_error("cannot write", &self.tmp, e));
        }
        let (file, _) = out.into_parts();
        if self.syncer.is_none() {
            let started = Syncer::start().map_err(|e| {
                Error::with_source(ErrorKind::Io, "cannot start the fsync threads", e)
            })?;
            *self.syncer = Some(started);
        }
        let Some(syncer) = self.syncer.as_mut() else {
            return Err(Error::new(ErrorKind::Internal, "no fsync threads"));
        };
        // The fsync starts now, while the next message downloads; `sync_batch` waits.
        let id = syncer.submit(file).map_err(|e| {
            // Nothing will publish it: take it back out of tmp/ now.
            let _ = fs::remove_file(&self.tmp);
            self.io_error("cannot fsync", &self.tmp, e)
        })?;
        let target = self
            .root
            .join("new")
            .join(format!("{},S={}", self.name, self.size));
        let staged = Staged {
            id,
            tmp: self.tmp.clone(),
            target,
            synced: false,
        };
        self.staged.push(staged);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        // Any error before the rename leaves the tmp file to `Drop`, which removes it.
        self.finish_tmp()?;
        let new_dir = self.root.join("new");
        let target = new_dir.join(format!("{},S={}", self.name, self.size));
        if let Err(e) = fs::rename(&self.tmp, &target) {
            return Err(self.io_error("cannot move message into", &target, e));
        }
        // The tmp path no longer exists; closing the file without a flush (it is flushed).
        if let Some(out) = self.out.take() {
            drop(out.into_parts());
        }
        if let Err(e) = fsutil::sync_dir(&new_dir) {
            // Not durable, so not delivered: take it back out (best effort) so that `Err`
            // means "nothing visible" and the message stays unseen on the server.
            let _ = fs::remove_file(&target);
            return Err(self.io_error("cannot fsync", &new_dir, e));
        }
        // Only makes the removal from tmp/ durable; the message is already safe.
        let tmp_dir = self.root.join("tmp");
        if let Err(e) = fsutil::sync_dir(&tmp_dir) {
            log::warn!("cannot fsync {}: {e}", tmp_dir.display());
        }
        Ok(())
    }
}

impl Drop for MaildirPending<'_> {
    fn drop(&mut self) {
        if let Some(out) = self.out.take() {
            // `into_parts` discards the buffer instead of flushing it into a file that is
            // about to be removed.
            drop(out.into_parts());
            if let Err(e) = fs::remove_file(&self.tmp) {
                log::warn!("cannot remove {}: {e}", self.tmp.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    use crate::deliver::test_envelope;

    #[test]
    fn a_staged_batch_is_invisible_until_published_and_recoverable_by_token() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Mail");
        let mut md = Maildir::open(&root).unwrap();
        assert_eq!(md.batch_limit(), BATCH);
        let mut tokens = Vec::new();
        for body in [&b"one\n"[..], b"two\n", b"three\n"] {
            let mut p = md.begin(&test_envelope()).unwrap();
            tokens.push(p.token().unwrap());
            p.write_all(body).unwrap();
            p.stage().unwrap();
        }
        assert!(
            names(&root.join("new")).is_empty(),
            "staged messages are not visible"
        );
        md.sync_batch().unwrap();
        md.publish_batch().unwrap();
        let new = names(&root.join("new"));
        assert_eq!(new.len(), 3);
        assert!(names(&root.join("tmp")).is_empty());
        // A mail reader moves one into cur/ with flags: still found by its token.
        let moved = &new[0];
        fs::rename(
            root.join("new").join(moved),
            root.join("cur").join(format!("{moved}:2,S")),
        )
        .unwrap();
        assert_eq!(md.recover(&tokens).unwrap(), [true, true, true]);
        assert_eq!(md.recover(&["nope".to_owned()]).unwrap(), [false]);
    }

    #[test]
    fn an_unpublished_batch_leaves_nothing_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Mail");
        {
            let mut md = Maildir::open(&root).unwrap();
            let mut p = md.begin(&test_envelope()).unwrap();
            p.write_all(b"body\n").unwrap();
            p.stage().unwrap();
            md.sync_batch().unwrap();
        }
        assert!(names(&root.join("new")).is_empty());
        assert!(names(&root.join("tmp")).is_empty());
    }

    use crate::fsutil::test_names as names;

    /// Nothing in any of the Maildir's three directories.
    fn assert_empty(root: &Path) {
        for sub in ["cur", "new", "tmp"] {
            assert!(names(&root.join(sub)).is_empty(), "{sub}");
        }
    }

    /// Swap in a read-only handle (buffered by `buffer` bytes), so that the next write that
    /// reaches the file fails the way ENOSPC would.
    fn read_only(p: &mut MaildirPending<'_>, buffer: usize) {
        let ro = File::open(&p.tmp).unwrap();
        drop(
            p.out
                .replace(BufWriter::with_capacity(buffer, ro))
                .unwrap()
                .into_parts(),
        );
    }

    #[test]
    fn open_creates_the_three_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Mail/inbox");
        let md = Maildir::open(&root).unwrap();
        assert_eq!(md.root(), root);
        for sub in ["cur", "new", "tmp"] {
            assert!(root.join(sub).is_dir(), "{sub}");
        }
        // Opening an existing Maildir works and changes nothing.
        Maildir::open(&root).unwrap();
        assert_eq!(names(&root), vec!["cur", "new", "tmp"]);
    }

    #[test]
    fn commit_makes_exactly_one_file_in_new_with_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        let body = b"Subject: hi\n\nhello\n";
        let mut p = md.begin(&test_envelope()).unwrap();
        p.write_all(&body[..5]).unwrap();
        p.write_all(&body[5..]).unwrap();
        assert_eq!(names(&dir.path().join("tmp")).len(), 1);
        assert!(names(&dir.path().join("new")).is_empty());
        p.commit().unwrap();

        let new = names(&dir.path().join("new"));
        assert_eq!(new.len(), 1);
        assert!(
            new[0].ends_with(&format!(",S={}", body.len())),
            "{}",
            new[0]
        );
        assert!(!new[0].contains(':'));
        assert_eq!(
            fs::read(dir.path().join("new").join(&new[0])).unwrap(),
            body
        );
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert!(names(&dir.path().join("cur")).is_empty());
    }

    #[test]
    fn name_follows_the_specification() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        let p = md.begin(&test_envelope()).unwrap();
        p.commit().unwrap();
        let name = names(&dir.path().join("new")).remove(0);
        let (secs, rest) = name.split_once(".M").unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
        let (usec, rest) = rest.split_once('P').unwrap();
        assert!(usec.parse::<u32>().unwrap() < 1_000_000);
        let (pid, rest) = rest.split_once('Q').unwrap();
        assert_eq!(pid.parse::<u32>().unwrap(), std::process::id());
        let (q, rest) = rest.split_once('.').unwrap();
        q.parse::<u64>().unwrap();
        let host = sanitize_host(&fsutil::hostname());
        assert_eq!(rest, format!("{host},S=0"));
    }

    #[test]
    fn large_message_streams_through_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut p = md.begin(&test_envelope()).unwrap();
        for chunk in body.chunks(777) {
            p.write_all(chunk).unwrap();
        }
        p.commit().unwrap();
        let new = names(&dir.path().join("new"));
        assert!(new[0].ends_with(",S=300000"));
        assert_eq!(
            fs::read(dir.path().join("new").join(&new[0])).unwrap(),
            body
        );
    }

    #[test]
    fn dropped_pending_leaves_no_file_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        {
            let mut p = md.begin(&test_envelope()).unwrap();
            p.write_all(b"partial message").unwrap();
            assert_eq!(names(&dir.path().join("tmp")).len(), 1);
        }
        assert_empty(dir.path());
    }

    #[test]
    fn many_messages_get_unique_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        // A second Maildir value on the same directory shares the Q counter.
        let mut md2 = Maildir::open(dir.path()).unwrap();
        for i in 0..200 {
            let sink = if i % 2 == 0 { &mut md } else { &mut md2 };
            let mut p = sink.begin(&test_envelope()).unwrap();
            p.write_all(b"same\n").unwrap();
            p.commit().unwrap();
        }
        let new = names(&dir.path().join("new"));
        assert_eq!(new.len(), 200);
        assert_eq!(new.iter().collect::<HashSet<_>>().len(), 200);
    }

    #[test]
    fn failed_write_makes_commit_fail_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        let mut p = md.begin_message().unwrap();
        read_only(&mut p, 16);
        assert!(p.write_all(&[b'x'; 64]).is_err());
        assert!(
            p.write_all(b"y").is_err(),
            "writes after a failure must fail"
        );
        let err = Box::new(p).commit().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("tmp"), "{}", err.message());
        assert_empty(dir.path());
    }

    #[test]
    fn failed_flush_at_commit_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut md = Maildir::open(dir.path()).unwrap();
        let mut p = md.begin_message().unwrap();
        read_only(&mut p, BUFFER);
        // Fits in the buffer, so only the flush inside commit sees the error.
        p.write_all(b"short").unwrap();
        let err = Box::new(p).commit().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(names(&dir.path().join("new")).is_empty());
        assert!(names(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn open_under_a_regular_file_is_cannot_create() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"not a dir").unwrap();
        let root = file.join("inbox");
        let err = Maildir::open(&root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
        assert!(
            err.message().contains(&*root.to_string_lossy()),
            "{}",
            err.message()
        );
    }

    #[test]
    fn open_on_a_regular_file_is_cannot_create() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"not a dir").unwrap();
        let err = Maildir::open(&file).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
        assert!(
            err.message().contains(&*file.to_string_lossy()),
            "{}",
            err.message()
        );
        assert_eq!(fs::read(&file).unwrap(), b"not a dir");
    }

    /// Stage a batch of `n` messages and sync it; their tokens.
    fn stage_batch(md: &mut Maildir, n: usize) -> Vec<String> {
        let mut tokens = Vec::new();
        for i in 0..n {
            let mut p = md.begin(&test_envelope()).unwrap();
            tokens.push(p.token().unwrap());
            p.write_all(format!("Subject: {i}\n\nbody {i}\n").as_bytes())
                .unwrap();
            p.stage().unwrap();
        }
        md.sync_batch().unwrap();
        tokens
    }

    #[test]
    fn no_loss_recovery_finds_published_messages_and_removes_a_killed_batch_from_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Mail");
        let mut md = Maildir::open(&root).unwrap();
        let mut tokens = stage_batch(&mut md, 2);
        md.publish_batch().unwrap();
        // A mail reader has already moved one of them to cur/ and flagged it.
        let first = names(&root.join("new")).remove(0);
        fs::rename(
            root.join("new").join(&first),
            root.join("cur").join(format!("{first}:2,S")),
        )
        .unwrap();
        // The next batch is synced but the run is killed before the renames: `forget`
        // skips the Drop that would tidy up, as SIGKILL does.
        tokens.extend(stage_batch(&mut md, 3));
        std::mem::forget(md);
        assert_eq!(names(&root.join("tmp")).len(), 3);

        let mut md = Maildir::open(&root).unwrap();
        // Our own pid still runs, so opening left the killed batch to recovery.
        assert_eq!(names(&root.join("tmp")).len(), 3);
        let mut asked = tokens.clone();
        asked.push("../new".to_owned());
        asked.push(String::new());
        assert_eq!(
            md.recover(&asked).unwrap(),
            [true, true, false, false, false, false, false]
        );
        assert!(
            names(&root.join("tmp")).is_empty(),
            "the killed batch is gone"
        );
        assert_eq!(names(&root.join("new")).len(), 1);
        assert_eq!(names(&root.join("cur")).len(), 1);
        // Asking again changes nothing.
        assert_eq!(
            md.recover(&tokens).unwrap(),
            [true, true, false, false, false]
        );
    }

    #[test]
    fn opening_removes_stale_and_orphaned_tmp_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Mail");
        Maildir::open(&root).unwrap();
        let tmp = root.join("tmp");
        let host = sanitize_host(&fsutil::hostname());
        let dead = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            pid
        };
        let me = std::process::id();
        let write = |name: &str, age: Option<Duration>| {
            let path = tmp.join(name);
            let f = File::create(&path).unwrap();
            if let Some(age) = age {
                let t = SystemTime::now() - age;
                f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
                    .unwrap();
            }
        };
        let hours = |h: u64| Some(Duration::from_secs(h * 3600));
        write("old.foreign", hours(37));
        write("young.foreign", hours(35));
        // Read recently, written long ago: someone still uses it.
        write("read-recently", None);
        {
            let f = File::options()
                .write(true)
                .open(tmp.join("read-recently"))
                .unwrap();
            f.set_times(
                fs::FileTimes::new()
                    .set_modified(SystemTime::now() - Duration::from_secs(40 * 3600)),
            )
            .unwrap();
        }
        write(&format!("1700000000.M1P{dead}Q1.{host}"), None);
        write(&format!("1700000000.M1P{me}Q2.{host}"), None);
        write(&format!("1700000000.M1P{dead}Q3.other-host"), None);
        write(&format!("1700000000.M1P{dead}.{host}"), None);
        fs::create_dir(tmp.join("a-directory")).unwrap();
        Maildir::open(&root).unwrap();
        let mut want = vec![
            "a-directory".to_owned(),
            "read-recently".to_owned(),
            "young.foreign".to_owned(),
            format!("1700000000.M1P{me}Q2.{host}"),
            format!("1700000000.M1P{dead}Q3.other-host"),
            format!("1700000000.M1P{dead}.{host}"),
        ];
        want.sort();
        assert_eq!(names(&tmp), want);
    }

    #[test]
    fn writer_pid_reads_only_our_names() {
        assert_eq!(writer_pid("1.M2P345Q6.h.example", "h.example"), Some(345));
        assert_eq!(writer_pid("1.M2P345Q6.h.example", "h"), None);
        assert_eq!(writer_pid("1.M2P345.h.example", "h.example"), None);
        assert_eq!(writer_pid("1.M2Px5Q6.h", "h"), None);
        assert_eq!(writer_pid("x.M2P3Q6.h", "h"), None);
    }

    #[test]
    fn the_fsync_threads_answer_each_file_in_any_order() {
        let mut syncer = Syncer::start().unwrap();
        let ids: Vec<u64> = (0..40)
            .map(|_| syncer.submit(tempfile::tempfile().unwrap()).unwrap())
            .collect();
        // Waited for out of order: answers that come early are kept.
        for id in ids.iter().rev() {
            syncer.wait(*id).unwrap();
        }
        // A descriptor that cannot be fsynced is reported for that file only.
        let (r, w) = std::io::pipe().unwrap();
        let good = syncer.submit(tempfile::tempfile().unwrap()).unwrap();
        let bad = syncer
            .submit(File::from(std::os::fd::OwnedFd::from(w)))
            .unwrap();
        drop(r);
        assert!(syncer.wait(bad).is_err());
        syncer.wait(good).unwrap();
        drop(syncer); // the workers end
    }

    /// Not a check: the cost of the group commit. 2000 messages of 4.5 KB through batches
    /// of [`BATCH`] (stage, `sync_batch`, `publish_batch`), wall time printed. Run with
    /// `cargo test --release --lib -- --ignored --nocapture group_commit_timing`, and
    /// `POP3_TIMING_DIR` to measure another filesystem than the temporary directory's.
    #[test]
    #[ignore = "timing only"]
    fn group_commit_timing() {
        let base = std::env::var_os("POP3_TIMING_DIR").map(PathBuf::from);
        let dir = match &base {
            Some(b) => tempfile::tempdir_in(b).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let body = vec![b'x'; 4500];
        for round in 0..3 {
            let root = dir.path().join(format!("Mail{round}"));
            let mut md = Maildir::open(&root).unwrap();
            let t0 = std::time::Instant::now();
            for chunk in 0..2000usize.div_ceil(BATCH) {
                for _ in 0..BATCH.min(2000 - chunk * BATCH) {
                    let mut p = md.begin(&test_envelope()).unwrap();
                    p.write_all(&body).unwrap();
                    p.stage().unwrap();
                }
                md.sync_batch().unwrap();
                md.publish_batch().unwrap();
            }
            let took = t0.elapsed();
            assert_eq!(names(&root.join("new")).len(), 2000);
            println!("round {round}: 2000 messages in batches of {BATCH}: {took:?}");
        }
    }

    #[test]
    fn host_names_are_sanitised() {
        assert_eq!(sanitize_host("a/b:c.example"), "a\\057b\\072c.example");
        assert_eq!(sanitize_host("plain.host"), "plain.host");
    }
}
