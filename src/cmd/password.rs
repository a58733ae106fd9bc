//! `pop3 password set|delete ACCOUNT`: the account's password in the system keyring.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use super::Context;
use crate::cli::{PasswordAction, PasswordArgs};
use crate::config::{Overrides, PasswordSource};
use crate::error::{Error, ErrorKind, Result};
use crate::keyring;
use crate::secret::Secret;

/// Run `pop3 password`.
pub fn run(ctx: &Context, args: &PasswordArgs) -> anyhow::Result<ExitCode> {
    let name = match &args.action {
        PasswordAction::Set { account } | PasswordAction::Delete { account } => account,
    };
    let account = ctx.config.resolve(
        Some(name),
        &Overrides {
            no_delivery: true,
            ..Overrides::default()
        },
    )?;
    match &args.action {
        PasswordAction::Set { .. } => {
            let secret = read_new_password(&account.login.user, &account.server.host)?;
            keyring::set(&account, &secret)?;
            if !ctx.quiet {
                eprintln!(
                    "pop3: stored the password for {} in the keyring (service {}, user {})",
                    account.name,
                    keyring::SERVICE,
                    keyring::entry_user(&account)
                );
                if !matches!(account.login.password, PasswordSource::Keyring) {
                    eprintln!(
                        "pop3: note: account {} does not use it yet; add \
                         password.keyring = true to its config",
                        account.name
                    );
                }
            }
        }
        PasswordAction::Delete { .. } => {
            keyring::delete(&account)?;
            if !ctx.quiet {
                eprintln!(
                    "pop3: deleted the password for {} from the keyring",
                    account.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask twice on a terminal; otherwise read the first line of standard input (for scripts:
/// `pass show mail | pop3 password set work`).
fn read_new_password(user: &str, host: &str) -> Result<Secret> {
    let read_err = |e| Error::with_source(ErrorKind::Io, "cannot read the password", e);
    let secret = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {user}@{host}: "))
            .map_err(read_err)?;
        let again = rpassword::prompt_password("Again: ").map_err(read_err)?;
        if first != again {
            return Err(Error::new(ErrorKind::Usage, "the two passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(read_err)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if secret.is_empty() {
        return Err(Error::new(ErrorKind::Usage, "the password is empty"));
    }
    Ok(Secret::new(secret))
}
