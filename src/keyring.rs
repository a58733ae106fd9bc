//! The system keyring as a password source (cargo feature `keyring`, on by default): the
//! Secret Service on Linux (GNOME Keyring, KWallet, KeePassXC), the Keychain on macOS.
//! Entries use service `pop3` and user `<login>@<host>`, so `secret-tool lookup service pop3
//! username alice@pop.example.com` finds them.
//!
//! A keyring is a desktop service: with no session bus (cron, ssh, a container) it fails at
//! once with a message that names the account and the other password sources, and a read
//! from `pop3 fetch` has a timeout so that a keyring waiting for an unlock prompt nobody can
//! see never hangs a cron job.

use std::time::Duration;

use crate::config::Account;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// The keyring service name of every entry.
pub const SERVICE: &str = "pop3";

/// How long a password lookup may take before it is given up.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The keyring user name of an account's entry.
pub fn entry_user(account: &Account) -> String {
    format!("{}@{}", account.login.user, account.server.host)
}

/// What to suggest when the keyring cannot be used.
fn alternatives(account: &Account) -> String {
    format!(
        "use password.command or password.env for account {} instead (cron jobs and ssh \
         sessions usually have no keyring)",
        account.name
    )
}

#[cfg(feature = "keyring")]
mod imp {
    use super::*;
    use keyring::{Entry, Error as KError};

    fn entry(account: &Account) -> Result<Entry> {
        Entry::new(SERVICE, &entry_user(account)).map_err(|e| failure(account, e))
    }

    /// Map a keyring error to ours; never includes a secret (the errors carry none we show).
    fn failure(account: &Account, e: KError) -> Error {
        match e {
            KError::NoEntry => Error::new(
                ErrorKind::Config,
                format!(
                    "no password for account {} in the keyring; store one with `pop3 \
                     password set {}`",
                    account.name, account.name
                ),
            ),
            KError::NoStorageAccess(inner) => Error::new(
                ErrorKind::Temporary,
                format!(
                    "the keyring is locked or refused access ({inner}); unlock it, or {}",
                    alternatives(account)
                ),
            ),
            KError::NoDefaultStore => Error::new(
                ErrorKind::Config,
                format!(
                    "no keyring is available here (no D-Bus session?); {}",
                    alternatives(account)
                ),
            ),
            other => Error::new(
                ErrorKind::Config,
                format!("the keyring failed ({other}); {}", alternatives(account)),
            ),
        }
    }

    pub fn get(account: &Account, timeout: Duration) -> Result<Secret> {
        let worker_account = account.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        // A worker thread, so that a keyring stuck on an unlock prompt cannot hang us; if it
        // never answers, the thread is abandoned and the process exits without it.
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                let result = entry(&worker_account)
                    .and_then(|e| e.get_password().map_err(|e| failure(&worker_account, e)))
                    .map(Secret::new);
                let _ = tx.send(result);
            })
            .map_err(|e| Error::with_source(ErrorKind::Internal, "cannot start a thread", e))?;
        rx.recv_timeout(timeout).unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Temporary,
                format!(
                    "the keyring did not answer within {}s (waiting for an unlock?); {}",
                    timeout.as_secs(),
                    alternatives(account)
                ),
            ))
        })
    }

    pub fn set(account: &Account, secret: &Secret) -> Result<()> {
        entry(account)?
            .set_password(secret.expose())
            .map_err(|e| failure(account, e))
    }

    pub fn delete(account: &Account) -> Result<()> {
        entry(account)?
            .delete_credential()
            .map_err(|e| failure(account, e))
    }
}

#[cfg(not(feature = "keyring"))]
mod imp {
    use super::*;

    fn missing(account: &Account) -> Error {
        Error::new(
            ErrorKind::Config,
            format!(
                "this pop3 was built without keyring support; {}",
                alternatives(account)
            ),
        )
    }

    pub fn get(account: &Account, _timeout: Duration) -> Result<Secret> {
        Err(missing(account))
    }

    pub fn set(account: &Account, _secret: &Secret) -> Result<()> {
        Err(missing(account))
    }

    pub fn delete(account: &Account) -> Result<()> {
        Err(missing(account))
    }
}

/// The account's password from the keyring, within `timeout`.
pub fn get(account: &Account, timeout: Duration) -> Result<Secret> {
    imp::get(account, timeout)
}

/// Store the account's password in the keyring.
pub fn set(account: &Account, secret: &Secret) -> Result<()> {
    imp::set(account, secret)
}

/// Remove the account's password from the keyring.
pub fn delete(account: &Account) -> Result<()> {
    imp::delete(account)
}
