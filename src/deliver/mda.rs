//! Delivery through a mail delivery agent (procmail, maildrop, `msmtp`, a script): one
//! process per message, the message on its standard input.
//!
//! The command is an argv, run directly, or a string the user wrote, run with `sh -c`; no
//! shell is ever involved otherwise. `%F` in an argument (or the string) becomes the envelope
//! sender from the message's `Return-Path:` (shell-quoted in the string); the process is then
//! started once the header has streamed in. `POP3_ACCOUNT`, `POP3_UIDL` and `POP3_SIZE` are
//! in its environment. stdout goes to /dev/null; stderr is read on a thread, keeping the last
//! few KiB for the error message.
//!
//! DESIGN.md invariant 1 for an MDA: a message is delivered only when the MDA exits 0. Exit
//! 75 (EX_TEMPFAIL) is "try again later", anything else a failure; either way the message
//! stays unseen on the server. The pitfalls avoided here (STYLE.md anti-pattern 7): we never
//! wait for the child while it may be blocked on a full stderr pipe, a child that exits
//! without reading its input (`BrokenPipe`) just means "look at the exit status", and a
//! child that stops reading or never exits is killed after the timeout.

use std::io::{self, Read, Write};
use std::process::{Child, ChildStderr, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::OFlags;

use super::envelope::{HeaderSniffer, NO_SENDER};
use super::{Envelope, Pending, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::ui::sanitize::sanitize;

/// The message is handed to the MDA in writes of about this size.
const BUFFER: usize = 64 * 1024;

/// How much of the MDA's stderr is kept: the end is where the reason usually is.
const STDERR_KEEP: usize = 4 * 1024;

/// How many of the last stderr lines go into an error message.
const STDERR_LINES: usize = 3;

/// After the MDA has exited, how long to wait for its stderr to reach end-of-file. A
/// process the MDA left running in the background may hold the pipe open for ever.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// sysexits.h EX_TEMPFAIL: the MDA asks us to try again later.
const EX_TEMPFAIL: i32 = 75;

/// The command to run, as the configuration gave it: the config's own type, so there is
/// one definition of "argv or sh -c string".
pub use crate::config::CommandLine as MdaCommand;

/// Delivery to an MDA, one process per message.
#[derive(Debug)]
pub struct Mda {
    command: MdaCommand,
    /// Bounds both a write the MDA does not read and the wait for it to exit.
    timeout: Duration,
}

impl Mda {
    /// An MDA that runs `command` for each message and kills it when it makes no progress
    /// reading the message, or does not exit, within `timeout`.
    pub fn new(command: MdaCommand, timeout: Duration) -> Mda {
        Mda { command, timeout }
    }

    /// Whether the command needs the envelope sender (and so the header) before it starts.
    fn wants_sender(&self) -> bool {
        match &self.command {
            MdaCommand::Argv(argv) => argv.iter().any(|a| a.contains("%F")),
            MdaCommand::Shell(line) => line.contains("%F"),
        }
    }

    /// How error messages name the MDA.
    fn describe(&self) -> String {
        match &self.command {
            MdaCommand::Argv(argv) => {
                format!("`{}`", sanitize(argv.first().map_or("", |a| a).as_bytes()))
            }
            MdaCommand::Shell(line) => format!("`sh -c {}`", sanitize(line.as_bytes())),
        }
    }

    /// Start the MDA for one message from `sender`.
    fn spawn(&self, env: &MessageEnv, sender: &str) -> Result<Running> {
        let mut command = match &self.command {
            MdaCommand::Argv(argv) => {
                let Some((program, args)) = argv.split_first() else {
                    return Err(Error::new(ErrorKind::Config, "the MDA command is empty"));
                };
                let mut c = Command::new(program.replace("%F", sender));
                c.args(args.iter().map(|a| a.replace("%F", sender)));
                c
            }
            MdaCommand::Shell(line) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(line.replace("%F", &shell_quote(sender)));
                c
            }
        };
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("POP3_ACCOUNT", &env.account)
            .env("POP3_UIDL", &env.uid)
            .env("POP3_SIZE", env.size.to_string());
        let mut child = command.spawn().map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot run MDA {}", self.describe()),
                e,
            )
        })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        // From here on, dropping `running` kills and reaps the child.
        let mut running = Running {
            child,
            stdin: None,
            stderr: None,
            reaped: false,
        };
        // Non-blocking, so that an MDA that stops reading cannot hang us past the timeout.
        rustix::fs::fcntl_getfl(&stdin)
            .and_then(|f| rustix::fs::fcntl_setfl(&stdin, f | OFlags::NONBLOCK))
            .map_err(|e| self.io_error("cannot set up the pipe to", e.into()))?;
        running.stdin = Some(stdin);
        running.stderr =
            Some(StderrTail::spawn(stderr).map_err(|e| self.io_error("cannot read stderr of", e))?);
        Ok(running)
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::with_source(ErrorKind::Io, format!("{what} MDA {}", self.describe()), e)
    }
}

impl Sink for Mda {
    /// Starts the MDA right away unless it needs `%F`. Errors: `ErrorKind::Io` when the
    /// program cannot be run, `ErrorKind::Config` for an empty command.
    fn begin(&mut self, envelope: &Envelope<'_>) -> Result<Box<dyn Pending + '_>> {
        let env = MessageEnv {
            account: envelope.account.to_owned(),
            uid: envelope.uid.to_string(),
            size: envelope.size.0,
        };
        let mut pending = MdaPending {
            mda: self,
            env,
            sniffer: None,
            running: None,
            buf: Vec::new(),
            error: None,
        };
        if self.wants_sender() {
            pending.sniffer = Some(HeaderSniffer::new());
        } else {
            pending.running = Some(self.spawn(&pending.env, NO_SENDER)?);
        }
        Ok(Box::new(pending))
    }
}

/// Quote `s` for `sh`: `'...'`, with each `'` written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The environment of one MDA process.
#[derive(Debug)]
struct MessageEnv {
    account: String,
    /// The UIDL in its escaped Display form.
    uid: String,
    size: u64,
}

/// A started MDA. Dropping it without [`Running::wait`] kills and reaps the process.
struct Running {
    child: Child,
    /// `None` once closed: at the end, or after the MDA stopped reading (`BrokenPipe`).
    stdin: Option<ChildStdin>,
    stderr: Option<StderrTail>,
    reaped: bool,
}

impl Running {
    /// Write all of `data`, unless the MDA has stopped reading; give up when it makes no
    /// progress for `timeout`.
    fn send(&mut self, data: &[u8], timeout: Duration, mda: &Mda) -> Result<()> {
        let mut sent = 0;
        let mut last_progress = Instant::now();
        let mut pause = Duration::from_millis(1);
        while sent < data.len() {
            let Some(stdin) = self.stdin.as_mut() else {
                // The MDA closed its input; its exit status will tell.
                return Ok(());
            };
            match stdin.write(&data[sent..]) {
                Ok(0) => self.stdin = None,
                Ok(n) => {
                    sent += n;
                    last_progress = Instant::now();
                    pause = Duration::from_millis(1);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if last_progress.elapsed() >= timeout {
                        self.kill();
                        return Err(Error::new(
                            ErrorKind::Temporary,
                            format!(
                                "MDA {} timed out: it read no input for {} s",
                                mda.describe(),
                                timeout.as_secs_f32()
                            ),
                        ));
                    }
                    // The pipe is full: the MDA is busy. (No poll(2) here: rustix is built
                    // without its `event` feature, and a short sleep costs little.)
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    log::debug!(
                        "MDA {} stopped reading its input; checking its exit status",
                        mda.describe()
                    );
                    self.stdin = None;
                }
                Err(e) => {
                    self.kill();
                    return Err(mda.io_error("cannot write to", e));
                }
            }
        }
        Ok(())
    }

    /// Close stdin and wait up to `timeout` for the MDA to exit; `None` when it did not
    /// (it has then been killed).
    fn wait(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                self.kill();
                return Ok(None);
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Kill the MDA (if it still runs) and reap it. Killing comes first, so that an MDA
    /// that is interrupted never sees a clean end of its input.
    fn kill(&mut self) {
        if !self.reaped {
            if let Err(e) = self.child.kill() {
                log::debug!("cannot kill MDA {}: {e}", self.child.id());
            }
            if let Err(e) = self.child.wait() {
                log::warn!("cannot reap MDA {}: {e}", self.child.id());
            }
            self.reaped = true;
        }
        self.stdin = None;
    }

    /// The last lines of the MDA's stderr, sanitised, for an error message.
    fn stderr_summary(&mut self) -> String {
        self.stderr
            .take()
            .map(|s| summarize(&s.collect(STDERR_GRACE)))
            .unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The MDA's stderr, drained on a thread into a buffer that keeps the last
/// [`STDERR_KEEP`] bytes, so that the MDA never blocks on a full pipe.
struct StderrTail {
    tail: Arc<Mutex<Vec<u8>>>,
    /// Disconnected when the thread has seen end-of-file.
    done: mpsc::Receiver<()>,
}

impl StderrTail {
    fn spawn(mut stderr: ChildStderr) -> io::Result<StderrTail> {
        let tail = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel::<()>();
        let shared = Arc::clone(&tail);
        thread::Builder::new()
            .name("mda-stderr".to_owned())
            .spawn(move || {
                let _tx = tx;
                let mut chunk = [0u8; 8192];
                loop {
                    match stderr.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            let mut t = shared.lock().unwrap_or_else(|e| e.into_inner());
                            t.extend_from_slice(&chunk[..n]);
                            if t.len() > STDERR_KEEP {
                                let cut = t.len() - STDERR_KEEP;
                                t.drain(..cut);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            })?;
        Ok(StderrTail { tail, done })
    }

    /// What the MDA wrote, waiting at most `grace` for the end of it. The thread is left
    /// to finish on its own if something still holds the pipe.
    fn collect(self, grace: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(grace);
        self.tail.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The last [`STDERR_LINES`] non-empty lines of `stderr`, each sanitised, joined by ` / `.
fn summarize(stderr: &[u8]) -> String {
    let lines: Vec<&[u8]> = stderr
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(STDERR_LINES)..]
        .iter()
        .map(|l| sanitize(l))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// One message on its way into an MDA.
struct MdaPending<'a> {
    mda: &'a Mda,
    env: MessageEnv,
    /// `Some` while the header is buffered to find `%F`; the MDA is not running yet.
    sniffer: Option<HeaderSniffer>,
    running: Option<Running>,
    /// Bytes not yet written to the MDA.
    buf: Vec<u8>,
    /// A failure seen by `write`; `commit` returns it.
    error: Option<Error>,
}

impl MdaPending<'_> {
    /// Start the MDA once the sender is known, handing it the buffered header.
    fn start(&mut self) -> Result<()> {
        let Some(sniffer) = self.sniffer.take() else {
            return Ok(());
        };
        let mut sender = sniffer.sender();
        if sender.starts_with('-') {
            // It would read as an option to the MDA.
            log::warn!(
                "envelope sender {sender} starts with '-'; using {NO_SENDER} for %F instead"
            );
            sender = NO_SENDER.to_owned();
        }
        self.running = Some(self.mda.spawn(&self.env, &sender)?);
        self.buf = sniffer.into_buffered();
        Ok(())
    }

    fn push(&mut self, data: &[u8]) -> Result<()> {
        let mut rest = data;
        if let Some(sniffer) = self.sniffer.as_mut() {
            rest = &rest[sniffer.feed(rest)..];
            if !sniffer.is_complete() {
                return Ok(());
            }
            self.start()?;
        }
        self.buf.extend_from_slice(rest);
        if self.buf.len() >= BUFFER {
            self.send_buffered()?;
        }
        Ok(())
    }

    fn send_buffered(&mut self) -> Result<()> {
        if let Some(running) = self.running.as_mut() {
            running.send(&self.buf, self.mda.timeout, self.mda)?;
        }
        self.buf.clear();
        Ok(())
    }

    /// Everything `commit` does after the last byte: end the input, wait, judge the status.
    fn finish(&mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.start()?;
        self.send_buffered()?;
        let mda = self.mda;
        let running = self
            .running
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "MDA message without a process"))?;
        let status = running
            .wait(mda.timeout)
            .map_err(|e| mda.io_error("cannot wait for", e))?;
        let Some(status) = status else {
            return Err(Error::new(
                ErrorKind::Temporary,
                format!(
                    "MDA {} timed out: it did not exit within {} s",
                    mda.describe(),
                    mda.timeout.as_secs_f32()
                ),
            ));
        };
        if status.success() {
            return Ok(());
        }
        let stderr = running.stderr_summary();
        let said = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        };
        if status.code() == Some(EX_TEMPFAIL) {
            Err(Error::new(
                ErrorKind::Temporary,
                format!(
                    "the MDA asked to try again later: {} ended with {status}{said}",
                    mda.describe()
                ),
            ))
        } else {
            Err(Error::new(
                ErrorKind::Io,
                format!("MDA {} failed with {status}{said}", mda.describe()),
            ))
        }
    }
}

impl Write for MdaPending<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(io::Error::other(e.chain()));
        }
        match self.push(data) {
            Ok(()) => Ok(data.len()),
            Err(e) => {
                let io = io::Error::other(e.chain());
                self.error = Some(e);
                Err(io)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pending for MdaPending<'_> {
    /// `Ok` only when the MDA exited 0. Errors: `ErrorKind::Temporary` for exit 75 and for
    /// a timeout, `ErrorKind::Io` naming the MDA, its exit status and the end of its stderr
    /// otherwise.
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.finish()
        // Dropping `self` kills an MDA that is still running (after an error).
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn test_envelope() -> Envelope<'static> {
        static UID: std::sync::LazyLock<crate::proto::Uid> =
            std::sync::LazyLock::new(|| crate::proto::Uid::new(b"uid-\x01-7").unwrap());
        Envelope {
            account: "work",
            uid: &UID,
            size: crate::proto::Octets(1234),
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(20);

    fn shell(line: &str) -> Mda {
        Mda::new(MdaCommand::Shell(line.to_owned()), TIMEOUT)
    }

    fn q(path: &Path) -> String {
        shell_quote(path.to_str().unwrap())
    }

    fn deliver(mda: &mut Mda, chunks: &[&[u8]]) -> Result<()> {
        let mut p = mda.begin(&test_envelope())?;
        for c in chunks {
            p.write_all(c).unwrap();
        }
        p.commit()
    }

    #[test]
    fn shell_command_gets_the_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut mda = shell(&format!("cat > {}", q(&out)));
        let mut msg = b"Subject: x\n\n".to_vec();
        msg.extend((0..200_000u32).map(|i| (i % 256) as u8));
        msg.extend_from_slice(b"no final newline");
        let chunks: Vec<&[u8]> = msg.chunks(777).collect();
        deliver(&mut mda, &chunks).unwrap();
        assert_eq!(fs::read(&out).unwrap(), msg);
    }

    #[test]
    fn percent_f_is_the_sender_in_argv_and_quoted_in_shell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("argv");
        let msg: &[&[u8]] = &[
            b"Received: by pop3\nReturn-Path: <o'brien$x@ex",
            b"ample.com>\n\nbody\n",
        ];
        let mut mda = Mda::new(
            MdaCommand::Argv(vec![
                "/bin/sh".into(),
                "-c".into(),
                "printf %s \"$1\" > \"$0\"; cat > \"$0.msg\"".into(),
                out.to_str().unwrap().into(),
                "sender=%F".into(),
            ]),
            TIMEOUT,
        );
        deliver(&mut mda, msg).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"sender=o'brien$x@example.com");
        // The header buffered for %F reaches the MDA too.
        assert_eq!(fs::read(dir.path().join("argv.msg")).unwrap(), msg.concat());

        let out = dir.path().join("shell");
        let mut mda = shell(&format!("printf %s %F > {}; cat > /dev/null", q(&out)));
        deliver(&mut mda, msg).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"o'brien$x@example.com");

        // No Return-Path, and a message too short to finish its header.
        deliver(&mut mda, &[b"Subject: short"]).unwrap();
        assert_eq!(fs::read(&out).unwrap(), NO_SENDER.as_bytes());
    }

    #[test]
    fn a_sender_that_looks_like_an_option_is_not_passed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut mda = shell(&format!("printf %s %F > {}; cat > /dev/null", q(&out)));
        deliver(&mut mda, &[b"Return-Path: <-oQ/tmp/x>\n\n"]).unwrap();
        assert_eq!(fs::read(&out).unwrap(), NO_SENDER.as_bytes());
    }

    #[test]
    fn environment_names_account_uidl_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let mut mda = shell(&format!(
            "printf '%s|%s|%s' \"$POP3_ACCOUNT\" \"$POP3_UIDL\" \"$POP3_SIZE\" > {}; cat >/dev/null",
            q(&out)
        ));
        deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "work|uid-%01-7|1234");
    }

    #[test]
    fn exit_75_is_temporary() {
        let mut mda = shell("cat > /dev/null; echo 'mailbox busy' >&2; exit 75");
        let err = deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Temporary);
        assert!(err.message().contains("try again later"), "{err}");
        assert!(err.message().contains("mailbox busy"), "{err}");
    }

    #[test]
    fn exit_1_is_io_with_stderr_and_status() {
        let mut mda = shell(
            "cat > /dev/null; echo first >&2; echo second >&2; echo 'no such user' >&2; \
             printf '\\033[31mred\\n' >&2; exit 1",
        );
        let err = deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        let m = err.message();
        assert!(m.contains("no such user"), "{m}");
        assert!(m.contains("exit status: 1"), "{m}");
        let (_, m) = m.split_once("exit status: 1: ").unwrap();
        // Only the last lines, and escape sequences are escaped.
        assert!(!m.contains("first"), "{m}");
        assert!(!m.contains('\x1b'), "{m}");
        assert!(m.contains("red"), "{m}");
    }

    #[test]
    fn a_signal_is_io() {
        let mut mda = shell("kill -TERM $$");
        let err = deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("signal"), "{err}");
    }

    #[test]
    fn an_mda_that_reads_nothing_does_not_hang_us() {
        let big = vec![b'z'; 2 * 1024 * 1024];
        for (line, ok) in [("exit 0", true), ("exit 3", false)] {
            let mut mda = shell(line);
            let t0 = Instant::now();
            let result = deliver(&mut mda, &[b"S: big\n\n", &big]);
            assert!(t0.elapsed() < Duration::from_secs(10), "{line}");
            assert_eq!(result.is_ok(), ok, "{line}: {result:?}");
        }
    }

    #[test]
    fn an_mda_writing_much_to_stderr_does_not_deadlock() {
        // 1 MiB of stderr before it reads a byte of its 2 MiB input.
        let mut mda = shell(
            "head -c 1048576 /dev/zero | tr '\\0' e >&2; echo >&2; echo 'last words' >&2; \
             cat > /dev/null; exit 1",
        );
        let big = vec![b'z'; 2 * 1024 * 1024];
        let t0 = Instant::now();
        let err = deliver(&mut mda, &[b"S: big\n\n", &big]).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(15));
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().ends_with("last words"), "{err}");
        // The kept tail is bounded, so is the message.
        assert!(err.message().len() < 1000, "{}", err.message().len());
    }

    #[test]
    fn timeout_kills_an_mda_that_does_not_exit() {
        let mut mda = Mda::new(
            MdaCommand::Argv(vec!["sleep".into(), "30".into()]),
            Duration::from_millis(300),
        );
        let t0 = Instant::now();
        let err = deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(t0.elapsed() >= Duration::from_millis(300));
        assert_eq!(err.kind(), ErrorKind::Temporary);
        assert!(err.message().contains("timed out"), "{err}");
    }

    #[test]
    fn timeout_stops_a_write_the_mda_never_reads() {
        let mut mda = Mda::new(
            MdaCommand::Argv(vec!["sleep".into(), "30".into()]),
            Duration::from_millis(300),
        );
        let t0 = Instant::now();
        let mut p = mda.begin(&test_envelope()).unwrap();
        // Far more than a pipe holds.
        let write = p.write_all(&vec![b'z'; 4 * 1024 * 1024]);
        assert!(write.is_err());
        let err = p.commit().unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(err.kind(), ErrorKind::Temporary);
        assert!(err.message().contains("read no input"), "{err}");
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let mut mda = Mda::new(
            MdaCommand::Argv(vec!["/nonexistent/pop3-mda".into(), "-x".into()]),
            TIMEOUT,
        );
        let err = match mda.begin(&test_envelope()) {
            Ok(_) => panic!("a missing program must fail at begin"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::Io);
        let chain = err.chain();
        assert!(chain.contains("/nonexistent/pop3-mda"), "{chain}");
        assert!(chain.contains("No such file"), "{chain}");

        // With %F the program starts only after the header; the error reaches commit.
        let mut mda = Mda::new(
            MdaCommand::Argv(vec!["/nonexistent/pop3-mda".into(), "%F".into()]),
            TIMEOUT,
        );
        let mut p = mda.begin(&test_envelope()).unwrap();
        assert!(p.write_all(b"S: x\n\nbody\n").is_err());
        let err = p.commit().unwrap_err();
        assert!(err.chain().contains("/nonexistent/pop3-mda"), "{err}");
    }

    #[test]
    fn an_empty_argv_is_a_config_error() {
        let mut mda = Mda::new(MdaCommand::Argv(Vec::new()), TIMEOUT);
        assert_eq!(
            mda.begin(&test_envelope()).err().map(|e| e.kind()),
            Some(ErrorKind::Config)
        );
    }

    #[test]
    fn drop_without_commit_kills_the_mda() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let mut mda = shell(&format!("cat > /dev/null; echo delivered > {}", q(&marker)));
        {
            let mut p = mda.begin(&test_envelope()).unwrap();
            p.write_all(b"S: x\n\npartial").unwrap();
        }
        thread::sleep(Duration::from_millis(300));
        assert!(!marker.exists(), "the MDA saw a clean end of input");
        // The same command committed does write the marker.
        deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap();
        assert!(marker.exists());
    }

    #[test]
    fn shell_quote_round_trips_through_sh() {
        for s in ["plain@x", "o'brien@x", "a'b'c", "$(reboot)`x`;|&"] {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }

    #[test]
    fn summarize_keeps_the_last_lines() {
        assert_eq!(summarize(b"a\nb\n\nc\nd\n\n"), "b / c / d");
        assert_eq!(summarize(b""), "");
        assert_eq!(summarize(b"bell\x07\n"), "bell\\x07");
    }
}
