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

/// One keyring entry of an account: its user name in the keyring, and what to say when it
/// is missing.
#[derive(Debug, Clone)]
pub struct Item {
    /// The keyring user name (service [`SERVICE`]).
    pub user: String,
    /// What is stored, for messages ("OAuth refresh token").
    pub what: &'static str,
    /// What to do when it is missing ("run `pop3 auth work`").
    pub advice: String,
}

impl Item {
    /// The account's password entry.
    pub fn password(account: &Account) -> Item {
        Item {
            user: entry_user(account),
            what: "password",
            advice: format!("store one with `pop3 password set {}`", account.name),
        }
    }
}

#[cfg(feature = "keyring")]
mod imp {
    use super::*;
    use keyring::{Entry, Error as KError};

    fn entry(account: &Account, item: &Item) -> Result<Entry> {
        Entry::new(SERVICE, &item.user).map_err(|e| failure(account, item, e))
    }

    /// Map a keyring error to ours; never includes a secret (the errors carry none we show).
    fn failure(account: &Account, item: &Item, e: KError) -> Error {
        match e {
            KError::NoEntry => Error::new(
                ErrorKind::Config,
                format!(
                    "no {} for account {} in the keyring; {}",
                    item.what, account.name, item.advice
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

    pub fn get(account: &Account, item: &Item, timeout: Duration) -> Result<Secret> {
        let worker_account = account.clone();
        let worker_item = item.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        // A worker thread, so that a keyring stuck on an unlock prompt cannot hang us; if it
        // never answers, the thread is abandoned and the process exits without it.
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                let (a, i) = (&worker_account, &worker_item);
                let result = entry(a, i)
                    .and_then(|e| e.get_password().map_err(|e| failure(a, i, e)))
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

    pub fn set(account: &Account, item: &Item, secret: &Secret) -> Result<()> {
        entry(account, item)?
            .set_password(secret.expose())
            .map_err(|e| failure(account, item, e))
    }

    pub fn delete(account: &Account, item: &Item) -> Result<()> {
        entry(account, item)?
            .delete_credential()
            .map_err(|e| failure(account, item, e))
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

    pub fn get(account: &Account, _item: &Item, _timeout: Duration) -> Result<Secret> {
        Err(missing(account))
    }

    pub fn set(account: &Account, _item: &Item, _secret: &Secret) -> Result<()> {
        Err(missing(account))
    }

    pub fn delete(account: &Account, _item: &Item) -> Result<()> {
        Err(missing(account))
    }
}

/// Whether this pop3 was built with keyring support.
pub const BUILT_IN: bool = cfg!(feature = "keyring");

/// One entry of the account from the keyring, within `timeout`.
pub fn get_item(account: &Account, item: &Item, timeout: Duration) -> Result<Secret> {
    imp::get(account, item, timeout)
}

/// Store one entry of the account in the keyring.
pub fn set_item(account: &Account, item: &Item, secret: &Secret) -> Result<()> {
    imp::set(account, item, secret)
}

/// Remove one entry of the account from the keyring.
pub fn delete_item(account: &Account, item: &Item) -> Result<()> {
    imp::delete(account, item)
}

/// The account's password from the keyring, within `timeout`.
pub fn get(account: &Account, timeout: Duration) -> Result<Secret> {
    imp::get(account, &Item::password(account), timeout)
}

/// Store the account's password in the keyring.
pub fn set(account: &Account, secret: &Secret) -> Result<()> {
    imp::set(account, &Item::password(account), secret)
}

/// Remove the account's password from the keyring.
pub fn delete(account: &Account) -> Result<()> {
    imp::delete(account, &Item::password(account))
}
