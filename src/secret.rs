//! Secrets (passwords, tokens) have their own type, so that no `{:?}`, `{}` or log line can
//! show one by accident: `Debug` and `Display` print `***` in every build profile. The only
//! way to the value is [`Secret::expose`], which the authentication code calls when it
//! writes the value to an encrypted (or explicitly allowed) connection.

use std::fmt;
use std::io::IsTerminal;
use std::process::{Command, Stdio};

use crate::config::{Account, CommandLine, PasswordSource};
use crate::error::{Error, ErrorKind, Result};

/// The environment variable consulted when an account configures no password source.
pub const PASSWORD_ENV: &str = "POP3_PASSWORD";

/// A secret string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Call only to put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Get the account's password from its configured source (DESIGN.md, Config): a literal,
/// a command's first output line, an environment variable, or a prompt when stdin is a
/// terminal. Errors are `ErrorKind::Config` naming the account and the keys to set; they
/// never contain the secret.
pub fn obtain(account: &Account) -> Result<Secret> {
    let name = &account.name;
    match &account.password {
        PasswordSource::Literal(s) => Ok(s.clone()),
        PasswordSource::Command(line) => {
            let cmd = match line {
                CommandLine::Argv(argv) => {
                    let mut cmd = Command::new(&argv[0]);
                    cmd.args(&argv[1..]);
                    cmd
                }
                CommandLine::Shell(script) => {
                    let mut cmd = Command::new("sh");
                    cmd.arg("-c").arg(script);
                    cmd
                }
            };
            run_command(cmd, name, line.shown())
        }
        PasswordSource::Env(var) => std::env::var(var).map(Secret::new).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!("account {name}: password.env names {var}, which is not set"),
            )
        }),
        PasswordSource::Prompt => prompt(account),
        PasswordSource::Keyring => crate::keyring::get(account, crate::keyring::LOOKUP_TIMEOUT),
        PasswordSource::Default => match std::env::var(PASSWORD_ENV) {
            Ok(p) => Ok(Secret::new(p)),
            Err(_) if std::io::stdin().is_terminal() => prompt(account),
            Err(_) => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "account {name}: no password source; set password.command (or password, \
                     password.env, password.prompt) in the config, or {PASSWORD_ENV} in the \
                     environment"
                ),
            )),
        },
    }
}

fn prompt(account: &Account) -> Result<Secret> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "account {}: cannot prompt for the password without a terminal; set \
                 password.command or {PASSWORD_ENV}",
                account.name
            ),
        ));
    }
    let text = format!("Password for {}@{}: ", account.user, account.host);
    rpassword::prompt_password(text)
        .map(Secret::new)
        .map_err(|e| Error::with_source(ErrorKind::Config, "cannot read the password", e))
}

/// Run a password command: its stdout's first line is the secret; stderr goes to the user.
fn run_command(mut cmd: Command, account: &str, shown: &str) -> Result<Secret> {
    let output = cmd
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Config,
                format!("account {account}: cannot run password.command {shown:?}"),
                e,
            )
        })?;
    if !output.status.success() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "account {account}: password.command {shown:?} failed ({})",
                output.status
            ),
        ));
    }
    let mut stdout = output.stdout;
    let first = stdout.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let secret = String::from_utf8(first.to_vec());
    stdout.fill(0);
    match secret {
        Ok(s) if !s.is_empty() => Ok(Secret::new(s)),
        _ => Err(Error::new(
            ErrorKind::Config,
            format!(
                "account {account}: password.command {shown:?} printed no usable password \
                 (empty or not UTF-8)"
            ),
        )),
    }
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
}
