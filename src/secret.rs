//! Where passwords come from: the one module for every password source (a literal, a
//! command, an environment variable, a prompt, the keyring through `crate::keyring`), and,
//! in [`child`], the one place that starts child processes (MDA and password command) with
//! an environment that holds no password. The `Secret` type itself is the leaf
//! `proto::secret`, re-exported here.

pub mod child;

use std::io::{IsTerminal, Read};
use std::process::Stdio;
use std::sync::mpsc;

use crate::config::{Account, CommandLine, PasswordCommand, PasswordSource};
use crate::error::{Error, ErrorKind, Result};
use child::Group;

pub use crate::proto::secret::Secret;

/// The environment variable consulted when an account configures no password source. No
/// child process ever inherits it ([`child::command`]).
pub const PASSWORD_ENV: &str = "POP3_PASSWORD";

/// The most a password command may print. A password is a line; more is a mistake (a
/// whole file, a loop) that we neither keep in memory nor wait for.
pub const MAX_COMMAND_OUTPUT: usize = 64 * 1024;

/// Get the account's password from its configured source (DESIGN.md, Config): a literal,
/// a command's first output line, an environment variable, or a prompt when stdin is a
/// terminal. Errors are `ErrorKind::Config` naming the account and the keys to set, or
/// `ErrorKind::Temporary` when the password command runs out of time; they never contain
/// the secret.
pub fn obtain(account: &Account) -> Result<Secret> {
    obtain_from(account, &account.login.password, "password")
}

/// [`obtain`] from another source of the account, named `key` in messages
/// (`oauth.client_secret`).
pub fn obtain_from(account: &Account, source: &PasswordSource, key: &str) -> Result<Secret> {
    match source {
        PasswordSource::Literal(s) => Ok(s.clone()),
        PasswordSource::Command(command) => run_command(command, key),
        PasswordSource::Env(var) => {
            // Already hidden when the config was loaded; again here for a config that
            // came from elsewhere.
            child::hide_from_children(var);
            std::env::var(var).map(Secret::new).map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!("{key}.env names {var}, which is not set"),
                )
            })
        }
        PasswordSource::Prompt => prompt(account, key),
        PasswordSource::Keyring => crate::keyring::get(account, crate::keyring::LOOKUP_TIMEOUT),
        PasswordSource::Default => match std::env::var(PASSWORD_ENV) {
            Ok(p) => Ok(Secret::new(p)),
            Err(_) if std::io::stdin().is_terminal() => prompt(account, key),
            Err(_) => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "no password for {}@{}: give --password-command COMMAND or set \
                     {PASSWORD_ENV} (or, for an account in the config file, set \
                     password.command, password.keyring, password.env or password.prompt); \
                     without a terminal nobody can be asked",
                    account.login.user, account.server.host
                ),
            )),
        },
    }
}

fn prompt(account: &Account, key: &str) -> Result<Secret> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "cannot prompt for the password of {}@{} without a terminal; set \
                 password.command (or give --password-command) or {PASSWORD_ENV}",
                account.login.user, account.server.host
            ),
        ));
    }
    let text = match key {
        "password" => format!(
            "Password for {}@{}: ",
            account.login.user, account.server.host
        ),
        "deliver.auth_password" => format!(
            "Relay password (deliver.auth_password) of account {}: ",
            account.name
        ),
        _ => format!(
            "OAuth client secret for {}@{}: ",
            account.login.user, account.server.host
        ),
    };
    rpassword::prompt_password(text)
        .map(Secret::new)
        .map_err(|e| Error::with_source(ErrorKind::Config, "cannot read the password", e))
}

/// Run a password command: its stdout's first line is the secret; stderr goes to the user.
///
/// It runs without any password in its environment and, unless it may have to ask on our
/// terminal (stdin is one), in a process group of its own. When it has not finished within
/// its timeout, the group is ended and the error is `ErrorKind::Temporary` (exit 75): a
/// pinentry waiting under cron must not hold the account lock for ever. Its output is read
/// up to [`MAX_COMMAND_OUTPUT`] bytes and never appears in an error.
fn run_command(command: &PasswordCommand, key: &str) -> Result<Secret> {
    let shown = command.shown();
    let group = if std::io::stdin().is_terminal() {
        Group::Ours
    } else {
        Group::Own
    };
    let mut cmd = match &command.line {
        CommandLine::Argv(argv) => {
            let mut cmd = child::command(&argv[0], group);
            cmd.args(&argv[1..]);
            cmd
        }
        CommandLine::Shell(script) => {
            let mut cmd = child::command("sh", group);
            cmd.arg("-c").arg(script);
            cmd
        }
    };
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let failed =
        |what: String| Error::new(ErrorKind::Config, format!("{key}.command {shown:?} {what}"));
    let mut running = cmd.spawn().map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            format!("cannot run {key}.command {shown:?}"),
            e,
        )
    })?;
    let output = running.child_mut().stdout.take().map(read_bounded);
    let status = running.wait(command.timeout).map_err(|e| {
        Error::with_source(
            ErrorKind::Io,
            format!("cannot wait for {key}.command {shown:?}"),
            e,
        )
    })?;
    let Some(status) = status else {
        return Err(Error::new(
            ErrorKind::Temporary,
            format!(
                "{key}.command {shown:?} did not finish within {} s \
                 and was stopped (is it waiting for input nobody can give, like a pinentry \
                 under cron?); set {key}.timeout to allow it longer",
                command.timeout.as_secs_f32()
            ),
        ));
    };
    // The command and (with its own group) all it started are gone, so the reader sees
    // the end of the pipe at once, unless something outside the group still holds it.
    let mut stdout = match output.map(|rx| rx.recv_timeout(child::GRACE)) {
        Some(Ok(Ok(bytes))) => bytes,
        Some(Ok(Err(_))) | None => return Err(failed("gave no readable output".into())),
        Some(Err(_)) => {
            return Err(failed(
                "exited but left a process holding its output open".into(),
            ));
        }
    };
    if stdout.len() > MAX_COMMAND_OUTPUT {
        stdout.fill(0);
        return Err(failed(format!(
            "printed more than {} KiB; it should print the password on one line",
            MAX_COMMAND_OUTPUT / 1024
        )));
    }
    if !status.success() {
        stdout.fill(0);
        return Err(failed(format!("failed ({status})")));
    }
    let first = stdout.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let secret = String::from_utf8(first.to_vec());
    stdout.fill(0);
    match secret {
        Ok(s) if !s.is_empty() => Ok(Secret::new(s)),
        _ => Err(failed(
            "printed no usable password (empty or not UTF-8)".into(),
        )),
    }
}

/// Read `pipe` on a thread, at most [`MAX_COMMAND_OUTPUT`] + 1 bytes (one more tells that
/// there was too much), into a buffer allocated once so that no copy of the secret is left
/// behind in freed memory. The pipe is closed after that, so a writer of more gets EPIPE.
fn read_bounded(pipe: impl Read + Send + 'static) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("password-command".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(MAX_COMMAND_OUTPUT + 1);
            let limit = (MAX_COMMAND_OUTPUT + 1) as u64;
            let result = pipe.take(limit).read_to_end(&mut buf).map(|_| buf);
            let _ = tx.send(result);
        });
    // Without a thread the receiver reports a disconnect, which reads as "no output".
    if let Err(e) = spawned {
        log::warn!("cannot start a thread for the password command's output: {e}");
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    fn shell_command(script: &str, timeout: std::time::Duration) -> PasswordCommand {
        PasswordCommand {
            line: CommandLine::Shell(script.to_owned()),
            timeout,
        }
    }

    const LONG: std::time::Duration = std::time::Duration::from_secs(20);

    #[test]
    fn password_command_first_line_is_the_password() {
        let cmd = shell_command("printf 'hunter2\\r\\nsecond line\\n'", LONG);
        assert_eq!(run_command(&cmd, "password").unwrap().expose(), "hunter2");
        let err =
            run_command(&shell_command("echo hunter2; exit 1", LONG), "password").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.chain().contains("hunter2"), "{err}");
    }

    /// Issue #9: a password command that never returns (a pinentry under cron) must not
    /// hold the account lock for ever: it is ended with all it started, and the run exits
    /// 75 naming the account and the command, never its output.
    #[test]
    fn password_command_timeout_ends_its_process_group_and_is_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!(
            "printf partial-secret; sleep 30 & echo $! > '{}'; wait",
            pid_file.display()
        );
        let t0 = std::time::Instant::now();
        let err = run_command(
            &shell_command(&script, std::time::Duration::from_millis(300)),
            "password",
        )
        .unwrap_err();
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(err.kind(), ErrorKind::Temporary);
        let msg = err.chain();
        assert!(msg.contains("password.command \"printf\""), "{msg}");
        assert!(msg.contains("did not finish within 0.3 s"), "{msg}");
        assert!(!msg.contains("partial-secret"), "{msg}");
        // Under `cargo test` stdin may be a terminal; the group is then ours and only the
        // shell is ended, which is what a prompt needs.
        if !std::io::stdin().is_terminal() {
            let pid: i32 = std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!(
                child::process_gone(pid),
                "the command's background sleep survived"
            );
        }
    }

    #[test]
    fn password_command_output_is_bounded() {
        // Endless output: we stop reading, the writer gets EPIPE, and no memory grows.
        let t0 = std::time::Instant::now();
        let err = run_command(&shell_command("yes", LONG), "password").unwrap_err();
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("printed more than 64 KiB"), "{err}");
        // Exactly the limit is still read (and the first line taken).
        let script = format!("echo pw; head -c {} /dev/zero", MAX_COMMAND_OUTPUT - 3);
        assert_eq!(
            run_command(&shell_command(&script, LONG), "password")
                .unwrap()
                .expose(),
            "pw"
        );
    }
}
