//! Delivery through a mail delivery agent (procmail, maildrop, `msmtp`, a script): one
//! process per message, the message on its standard input.
//!
//! The message is first spooled into an unlinked temporary file; the MDA starts only when
//! the message is complete, with that file as its standard input. So a dropped connection
//! or a kill of pop3 can never hand an MDA a truncated message that it would then deliver
//! (DESIGN.md invariant 3: no partial message in a mailbox), the MDA can never block us on a
//! full pipe, and memory stays flat whatever the size.
//!
//! The command is an argv, run directly, or a string the user wrote, run with `sh -c`; no
//! shell is ever involved otherwise. `%F` in an argument (or the string) becomes the envelope
//! sender from the message's `Return-Path:`, but only when that is a plain address made of
//! the characters in [`is_plain_address`] (letters, digits and `@ . _ + = -`, none of
//! which means anything to a shell, inside quotes or out); any other sender becomes
//! `MAILER-DAEMON` for `%F`, so that a remote sender can never put shell code into the
//! user's `sh -c` string, however the user quoted `%F` there (issue #9). The sender as found
//! is in `POP3_SENDER`, next to `POP3_ACCOUNT`, `POP3_UIDL` and `POP3_SIZE`. stdout goes to
//! /dev/null; stderr is read on a thread, keeping the last few KiB for the error message.
//!
//! The MDA starts through [`crate::secret::child`]: no password in its environment, and a
//! process group of its own, so that a timeout ends everything the command started (a
//! `sh -c` string's other commands too), and nothing it left in the background can still
//! deliver after we have judged its exit status.
//!
//! DESIGN.md invariant 1 for an MDA: a message is delivered only when the MDA exits 0. Exit
//! 75 (EX_TEMPFAIL) is "try again later", anything else a failure; either way the message
//! stays unseen on the server. An MDA that does not exit within the timeout is ended with
//! its whole process group.

use std::fs::File;
use std::io::{self, Read, Write};
use std::process::{ChildStderr, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use super::envelope::NO_SENDER;
use super::spool::Spool;
use super::{Envelope, Pending, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::sanitize::sanitize;
use crate::secret::child::{self, Group};

/// How much of the MDA's stderr is kept: the end is where the reason usually is.
const STDERR_KEEP: usize = 4 * 1024;

/// How many of the last stderr lines go into an error message.
const STDERR_LINES: usize = 3;

/// After the MDA has exited, how long to wait for its stderr to reach end-of-file. A
/// process the MDA left running in the background may hold the pipe open for ever.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// sysexits.h EX_TEMPFAIL: the MDA asks us to try again later (the same code we exit with
/// for a temporary failure).
const EX_TEMPFAIL: i32 = ErrorKind::Temporary.exit_code() as i32;

/// The command to run, as the configuration gave it: the config's own type, so there is
/// one definition of "argv or sh -c string".
pub use crate::config::CommandLine as MdaCommand;

/// Delivery to an MDA, one process per message.
#[derive(Debug)]
pub struct Mda {
    command: MdaCommand,
    /// How long the MDA may run for one message.
    timeout: Duration,
}

impl Mda {
    /// An MDA that runs `command` for each message and is killed when it does not exit
    /// within `timeout`.
    pub fn new(command: MdaCommand, timeout: Duration) -> Mda {
        Mda { command, timeout }
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

    /// Start the MDA for one message from `sender` (the raw sender; `%F` gets its
    /// [`percent_f`] form), reading `input`.
    fn spawn(&self, env: &MessageEnv, sender: &str, input: File) -> Result<Running> {
        let percent_f = percent_f(sender);
        let mut command = match &self.command {
            MdaCommand::Argv(argv) => {
                let Some((program, args)) = argv.split_first() else {
                    return Err(Error::new(ErrorKind::Config, "the MDA command is empty"));
                };
                let mut c = child::command(program.replace("%F", percent_f), Group::Own);
                c.args(args.iter().map(|a| a.replace("%F", percent_f)));
                c
            }
            MdaCommand::Shell(line) => {
                // No quoting: `percent_f` holds no character a shell treats specially, so
                // `%F`, `'%F'` and `"%F"` all give the MDA the same bare address.
                let mut c = child::command("/bin/sh", Group::Own);
                c.arg("-c").arg(line.replace("%F", percent_f));
                c
            }
        };
        command
            .stdin(Stdio::from(input))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("POP3_ACCOUNT", &env.account)
            .env("POP3_UIDL", &env.uid)
            .env("POP3_SIZE", env.size.to_string())
            .env("POP3_SENDER", env_safe(sender));
        // From here on, dropping `running` ends the MDA's process group and reaps it.
        let mut running = Running {
            child: command.spawn().map_err(|e| {
                Error::with_source(
                    ErrorKind::Io,
                    format!("cannot run MDA {}", self.describe()),
                    e,
                )
            })?,
            stderr: None,
        };
        let stderr = running.child.child_mut().stderr.take();
        if let Some(stderr) = stderr {
            running.stderr = Some(
                StderrTail::spawn(stderr).map_err(|e| self.io_error("cannot read stderr of", e))?,
            );
        }
        Ok(running)
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::with_source(ErrorKind::Io, format!("{what} MDA {}", self.describe()), e)
    }

    /// Check the command before any message: an empty argv is a configuration error.
    fn check(&self) -> Result<()> {
        match &self.command {
            MdaCommand::Argv(argv) if argv.is_empty() => {
                Err(Error::new(ErrorKind::Config, "the MDA command is empty"))
            }
            _ => Ok(()),
        }
    }
}

impl Sink for Mda {
    /// An MDA may run for minutes (a spam filter): the session is kept alive meanwhile.
    fn slow_commit(&self) -> bool {
        true
    }

    /// Opens the spool file. Errors: `ErrorKind::Io` when it cannot be created,
    /// `ErrorKind::Config` for an empty command.
    fn begin(&mut self, envelope: &Envelope<'_>) -> Result<Box<dyn Pending + '_>> {
        self.check()?;
        let spool = Spool::new()?;
        Ok(Box::new(MdaPending {
            mda: self,
            env: MessageEnv {
                account: envelope.account.to_owned(),
                uid: envelope.uid.to_string(),
                size: envelope.size.0,
            },
            spool,
        }))
    }
}

/// Whether `sender` is a plain address that may replace `%F` anywhere, even inside the
/// user's own quotes in a `sh -c` string: non-empty, not starting with `-` (it would read
/// as an option), and only ASCII letters, digits and `@ . _ + = -`. That covers ordinary
/// addresses and the rewritten senders of SRS, BATV and VERP (`SRS0=ab=cd=example.org=bob@`,
/// `list-bounces+bob=example.org@`), and leaves out every shell metacharacter: quotes, `$`,
/// backquote, `\`, space, `;|&<>(){}`, globs and `~`, `#`, `!`.
pub fn is_plain_address(sender: &str) -> bool {
    !sender.is_empty()
        && !sender.starts_with('-')
        && sender.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b'+' | b'=' | b'-')
        })
}

/// What `%F` becomes for `sender`: the sender itself when it is a plain address
/// ([`is_plain_address`]), else [`NO_SENDER`] (`MAILER-DAEMON`, what procmail and Postfix
/// `local` write for an unusable sender). The MDA still finds the real one in
/// `POP3_SENDER`.
fn percent_f(sender: &str) -> &str {
    if is_plain_address(sender) {
        sender
    } else {
        NO_SENDER
    }
}

/// `s` without control characters (an environment value cannot hold NUL, and none of them
/// belongs in an address).
fn env_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// The environment of one MDA process.
#[derive(Debug)]
struct MessageEnv {
    account: String,
    /// The UIDL in its escaped Display form.
    uid: String,
    size: u64,
}

/// A started MDA. Dropping it without [`Running::wait`] ends its process group and reaps
/// it ([`child::Running`]).
struct Running {
    child: child::Running,
    stderr: Option<StderrTail>,
}

impl Running {
    /// Wait up to `timeout` for the MDA to exit; `None` when it did not. Either way nothing
    /// of its process group runs any more when this returns.
    fn wait(&mut self, timeout: Duration) -> io::Result<Option<std::process::ExitStatus>> {
        self.child.wait(timeout)
    }

    /// [`Running::wait`] with `tick` about every `every` (keep-alive).
    fn wait_ticking(
        &mut self,
        timeout: Duration,
        every: Duration,
        tick: &mut dyn FnMut(),
    ) -> io::Result<Option<std::process::ExitStatus>> {
        self.child.wait_ticking(timeout, every, tick)
    }

    /// The last lines of the MDA's stderr, sanitised, for an error message.
    fn stderr_summary(&mut self) -> String {
        self.stderr
            .take()
            .map(|s| summarize(&s.collect(STDERR_GRACE)))
            .unwrap_or_default()
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

/// One message on its way into an MDA: spooled until `commit` runs the MDA on it.
struct MdaPending<'a> {
    mda: &'a Mda,
    env: MessageEnv,
    /// The message, and the envelope sender for `%F` found in its header.
    spool: Spool,
}

impl MdaPending<'_> {
    /// The envelope sender as found (`POP3_SENDER`); `%F` gets [`percent_f`] of it.
    fn sender(&self) -> String {
        let sender = self.spool.sender();
        if !is_plain_address(&sender) {
            log::warn!(
                "envelope sender {} is not a plain address; using {NO_SENDER} for %F \
                 instead (POP3_SENDER has it as found)",
                sanitize(sender.as_bytes())
            );
        }
        sender
    }

    /// Run the MDA on the complete spooled message and judge its exit status; `tick` is
    /// called about every `every` while it runs (keep-alive, [`Pending::commit_ticking`]).
    fn deliver(self, every: Option<Duration>, tick: &mut dyn FnMut()) -> Result<()> {
        let sender = self.sender();
        let mda = self.mda;
        let file = self.spool.finish()?;
        crate::crashpoint::hit("mda.spawn", &self.env.uid);
        let mut running = mda.spawn(&self.env, &sender, file)?;
        crate::crashpoint::hit("mda.started", &self.env.uid);
        let status = match every {
            Some(every) => running.wait_ticking(mda.timeout, every, tick),
            None => running.wait(mda.timeout),
        }
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
            crate::crashpoint::hit("mda.exited", &self.env.uid);
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
        self.spool.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.spool.flush()
    }
}

impl Pending for MdaPending<'_> {
    /// `Ok` only when the MDA exited 0. Errors: `ErrorKind::Temporary` for exit 75 and for
    /// a timeout, `ErrorKind::Io` naming the MDA, its exit status and the end of its stderr
    /// otherwise.
    fn commit(self: Box<Self>) -> Result<()> {
        (*self).deliver(None, &mut || {})
    }

    fn commit_ticking(self: Box<Self>, every: Duration, tick: &mut dyn FnMut()) -> Result<()> {
        (*self).deliver(Some(every), tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;
    use std::process::Command;
    use std::time::Instant;

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

    /// Quote `s` for `sh`: `'...'`, with each `'` written as `'\''`.
    fn shell_quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
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
    fn percent_f_is_the_sender_in_argv_and_in_shell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("argv");
        let msg: &[&[u8]] = &[
            b"Received: by pop3\nReturn-Path: <SRS0=ab=cd=example.org=bob+x@forw",
            b"arder.example>\n\nbody\n",
        ];
        let sender = "SRS0=ab=cd=example.org=bob+x@forwarder.example";
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
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            format!("sender={sender}")
        );
        // The header buffered for %F reaches the MDA too.
        assert_eq!(fs::read(dir.path().join("argv.msg")).unwrap(), msg.concat());

        // Bare, single-quoted or double-quoted by the user: the same bare address.
        let out = dir.path().join("shell");
        for form in ["%F", "'%F'", "\"%F\""] {
            let mut mda = shell(&format!("printf %s {form} > {}; cat > /dev/null", q(&out)));
            deliver(&mut mda, msg).unwrap();
            assert_eq!(fs::read_to_string(&out).unwrap(), sender, "{form}");
        }
        let mut mda = shell(&format!("printf %s %F > {}; cat > /dev/null", q(&out)));

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
    fn environment_names_account_uidl_size_and_sender() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let mut mda = shell(&format!(
            "printf '%s|%s|%s|%s' \"$POP3_ACCOUNT\" \"$POP3_UIDL\" \"$POP3_SIZE\" \
             \"$POP3_SENDER\" > {}; cat >/dev/null",
            q(&out)
        ));
        deliver(&mut mda, &[b"Return-Path: <bob@example.org>\n\nbody\n"]).unwrap();
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            "work|uid-%01-7|1234|bob@example.org"
        );
        deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap();
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            format!("work|uid-%01-7|1234|{NO_SENDER}")
        );
    }

    /// Issue #9: a Return-Path is written by whoever sent the mail. Whatever it holds and
    /// however the user quoted `%F`, it must not run as shell code; the MDA gets
    /// MAILER-DAEMON for `%F` and the sender as found in POP3_SENDER.
    #[test]
    fn mda_sender_substitution_cannot_inject_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let m = marker.to_str().unwrap();
        let senders = [
            format!("$(touch${{IFS}}{m})@evil.example"),
            format!("`touch${{IFS}}{m}`@evil.example"),
            format!("x';touch${{IFS}}{m};'@evil.example"),
            format!("x\";touch${{IFS}}{m};\"@evil.example"),
            format!("x|touch${{IFS}}{m}@evil.example"),
            format!("x&&touch${{IFS}}{m}@evil.example"),
            format!("x<(touch${{IFS}}{m})@evil.example"),
        ];
        let out = dir.path().join("out");
        for form in ["%F", "'%F'", "\"%F\"", "-f%F"] {
            let mut mda = shell(&format!(
                "cat > /dev/null; printf '%s|%s' {form} \"$POP3_SENDER\" > {}",
                q(&out)
            ));
            for sender in &senders {
                let header = format!("Return-Path: <{sender}>\n\nbody\n");
                deliver(&mut mda, &[header.as_bytes()]).unwrap();
                assert!(
                    !marker.exists(),
                    "{form} with {sender}: the sender ran a command"
                );
                let got = fs::read_to_string(&out).unwrap();
                let want_f = if form == "-f%F" {
                    "-fMAILER-DAEMON"
                } else {
                    NO_SENDER
                };
                assert_eq!(got, format!("{want_f}|{sender}"), "{form}");
            }
        }
    }

    #[test]
    fn plain_addresses_are_the_only_percent_f_values() {
        for ok in ["bob@example.org", "a.b-c_d+e=f@x.example", "MAILER-DAEMON"] {
            assert!(is_plain_address(ok), "{ok}");
            assert_eq!(percent_f(ok), ok);
        }
        for bad in [
            "", "-oQ@x", "a b@x", "a'b@x", "a\"b@x", "a$b@x", "a`b@x", "a\\b@x", "a;b@x", "a|b@x",
            "a&b@x", "a<b@x", "a>b@x", "a(b)@x", "a{b}@x", "a*b@x", "a?b@x", "a[b]@x", "~a@x",
            "a#b@x", "a!b@x", "a/b@x", "a%b@x", "\u{e9}@x", "a\tb@x",
        ] {
            assert!(!is_plain_address(bad), "{bad:?}");
            assert_eq!(percent_f(bad), NO_SENDER);
        }
        assert_eq!(env_safe("a\u{0}b\x1bc\u{85}d"), "abcd");
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

    /// Issue #9: a `sh -c` string is a shell and its children; a timeout must end them all,
    /// or the rest of the command may deliver after we gave up on the message.
    #[test]
    fn mda_timeout_ends_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("delivered-late");
        let mut mda = Mda::new(
            MdaCommand::Shell(format!(
                "cat > /dev/null; (sleep 1; touch {}) & sleep 1; touch {}",
                q(&late),
                q(&late)
            )),
            Duration::from_millis(200),
        );
        let err = deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Temporary);
        thread::sleep(Duration::from_millis(1500));
        assert!(!late.exists(), "part of the timed-out MDA still ran");
    }

    /// A command the MDA put in the background is not left to write after the MDA exited.
    #[test]
    fn mda_exit_leaves_no_background_writer() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("written-late");
        for line in [
            format!("cat > /dev/null; (sleep 1; touch {}) & exit 0", q(&late)),
            format!("cat > /dev/null; (sleep 1; touch {}) & exit 1", q(&late)),
        ] {
            let mut mda = shell(&line);
            let t0 = Instant::now();
            let _ = deliver(&mut mda, &[b"S: x\n\nbody\n"]);
            assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        }
        thread::sleep(Duration::from_millis(1500));
        assert!(
            !late.exists(),
            "a background job of the MDA wrote after it exited"
        );
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
    fn a_missing_program_is_a_clear_error() {
        for argv in [
            ["/nonexistent/pop3-mda", "-x"],
            ["/nonexistent/pop3-mda", "%F"],
        ] {
            let mut mda = Mda::new(
                MdaCommand::Argv(argv.iter().map(|a| a.to_string()).collect()),
                TIMEOUT,
            );
            let err = deliver(&mut mda, &[b"S: x\n\nbody\n"]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io);
            let chain = err.chain();
            assert!(chain.contains("/nonexistent/pop3-mda"), "{chain}");
            assert!(chain.contains("No such file"), "{chain}");
        }
    }

    #[test]
    fn the_mda_starts_only_with_the_complete_message() {
        // A pop3 that dies mid-message must not hand the MDA a truncated message: nothing
        // runs before commit, so nothing runs at all here.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let mut mda = shell(&format!("cat > {}", q(&marker)));
        {
            let mut p = mda.begin(&test_envelope()).unwrap();
            p.write_all(b"S: x\n\npartial").unwrap();
        }
        assert!(!marker.exists());
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
    fn drop_without_commit_runs_nothing_and_commit_does() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let mut mda = shell(&format!("cat > /dev/null; echo delivered > {}", q(&marker)));
        {
            let mut p = mda.begin(&test_envelope()).unwrap();
            p.write_all(b"S: x\n\npartial").unwrap();
        }
        thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists(), "the MDA ran for an abandoned message");
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
