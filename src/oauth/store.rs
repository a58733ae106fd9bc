//! Where an account's tokens live: `<state dir>/<account>.oauth`, a 0600 JSON file written
//! atomically (`fsutil::write_atomic`), holds the access token, its expiry and where the
//! refresh token is; the refresh token itself is in the keyring (service `pop3`, user
//! `oauth-refresh:<login>@<host>`) or, without a keyring, in that same file. The config,
//! logs and `-vv` never see any of it.
//!
//! `<account>.oauth.lock` serialises refreshes ([`TokenLock`]). It is a separate file from
//! the fetch lock on purpose: `pop3 check` and `pop3 list` refresh too without taking the
//! fetch lock, and a fetch holding its lock must still be able to refresh.

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::TokenStore;
use super::flow::Tokens;
use crate::config::Account;
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil;
use crate::keyring::{self, Item};
use crate::secret::Secret;

/// The files of one account's tokens.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The token file.
    pub file: PathBuf,
    /// The refresh lock.
    pub lock: PathBuf,
}

impl Paths {
    /// The files for `account`, named like its UIDL state.
    pub fn of(account: &Account) -> Result<Paths> {
        let dir = crate::config::paths::state_dir()?;
        let key = account.state_key();
        Ok(Paths {
            file: dir.join(format!("{key}.oauth")),
            lock: dir.join(format!("{key}.oauth.lock")),
        })
    }
}

/// Where the refresh token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    File,
    Keyring,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::File => "file",
            Place::Keyring => "keyring",
        }
    }
}

/// The token file's content.
#[derive(Debug, Clone)]
pub struct Stored {
    access_token: Option<Secret>,
    /// Unix seconds.
    expires_at: Option<i64>,
    place: Option<Place>,
    /// Only with `Place::File`.
    refresh_token: Option<Secret>,
}

/// The JSON form; strings only while being read or written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    access_token: Option<String>,
    expires_at: Option<i64>,
    refresh_token_in: Option<String>,
    refresh_token: Option<String>,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Stored {
    /// The access token, when it is still valid for at least `margin`.
    pub fn valid_access_token(&self, margin: Duration) -> Option<Secret> {
        let expires = self.expires_at?;
        let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
        (expires.saturating_sub(margin) > now())
            .then(|| self.access_token.clone())
            .flatten()
    }

    /// Take a new access token and its lifetime (the refresh token is [`save`]'s business).
    pub fn update(&mut self, tokens: &Tokens) {
        self.access_token = Some(tokens.access.clone());
        self.expires_at = Some(now().saturating_add(tokens.lifetime_secs()));
    }

    /// When the access token expires (Unix seconds).
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Where the refresh token is, if there is one.
    pub fn place(&self) -> Option<Place> {
        self.place
    }
}

fn corrupt(paths: &Paths, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "the token file {} is damaged ({why}); delete it and run `pop3 auth` again",
            paths.file.display()
        ),
    )
}

/// Read the token file; `None` when there is none yet.
pub fn load(paths: &Paths) -> Result<Option<Stored>> {
    let text = match std::fs::read_to_string(&paths.file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::with_source(
                ErrorKind::Io,
                format!("cannot read the token file {}", paths.file.display()),
                e,
            ));
        }
    };
    // serde_json's messages quote no input values for these types, but do not risk it.
    let disk: OnDisk = serde_json::from_str(&text).map_err(|e| {
        corrupt(
            paths,
            format!(
                "not the expected JSON at line {} column {}",
                e.line(),
                e.column()
            ),
        )
    })?;
    if disk.version != 1 {
        return Err(corrupt(paths, format!("version {}", disk.version)));
    }
    let place = match disk.refresh_token_in.as_deref() {
        None => None,
        Some("file") => Some(Place::File),
        Some("keyring") => Some(Place::Keyring),
        Some(_) => return Err(corrupt(paths, "unknown refresh_token_in")),
    };
    Ok(Some(Stored {
        access_token: disk.access_token.map(Secret::new),
        expires_at: disk.expires_at,
        place,
        refresh_token: disk.refresh_token.map(Secret::new),
    }))
}

fn write(paths: &Paths, stored: &Stored) -> Result<()> {
    let disk = OnDisk {
        version: 1,
        access_token: stored.access_token.as_ref().map(|s| s.expose().to_owned()),
        expires_at: stored.expires_at,
        refresh_token_in: stored.place.map(|p| p.name().to_owned()),
        refresh_token: match stored.place {
            Some(Place::File) => stored.refresh_token.as_ref().map(|s| s.expose().to_owned()),
            _ => None,
        },
    };
    let mut json = serde_json::to_string_pretty(&disk)
        .map_err(|e| Error::with_source(ErrorKind::Internal, "cannot encode the tokens", e))?;
    json.push('\n');
    // write_atomic creates the file with mode 0600 before anything is written into it.
    fsutil::write_atomic(&paths.file, json.as_bytes()).map_err(|e| {
        Error::with_source(
            ErrorKind::Io,
            format!("cannot write the token file {}", paths.file.display()),
            e,
        )
    })
}

/// The keyring entries of an account's OAuth client.
#[derive(Debug, Clone, Copy)]
pub enum KeyringItem {
    RefreshToken,
    ClientSecret,
}

fn item(account: &Account, which: KeyringItem) -> Item {
    let user = keyring::entry_user(account);
    match which {
        KeyringItem::RefreshToken => Item {
            user: format!("oauth-refresh:{user}"),
            what: "OAuth refresh token",
            advice: super::advice(account),
        },
        KeyringItem::ClientSecret => Item {
            user: format!("oauth-client-secret:{user}"),
            what: "OAuth client secret",
            advice: format!(
                "store it with `secret-tool store --label=pop3 service pop3 username \
                 oauth-client-secret:{user}`"
            ),
        },
    }
}

/// An entry from the keyring, within `keyring::LOOKUP_TIMEOUT`.
pub fn keyring_get(account: &Account, which: KeyringItem) -> Result<Secret> {
    keyring::get_item(account, &item(account, which), keyring::LOOKUP_TIMEOUT)
}

/// Store one of the account's OAuth keyring items (`pop3 init` keeps a client secret there).
pub fn keyring_set(account: &Account, which: KeyringItem, secret: &Secret) -> Result<()> {
    keyring::set_item(account, &item(account, which), secret)
}

/// The refresh token, from wherever the file says it is.
pub fn refresh_token(account: &Account, stored: &Stored) -> Result<Secret> {
    let missing = || {
        Error::new(
            ErrorKind::Auth,
            format!(
                "account {}: no OAuth refresh token is stored; {}",
                account.name,
                super::advice(account)
            ),
        )
    };
    match stored.place {
        Some(Place::File) => stored.refresh_token.clone().ok_or_else(missing),
        Some(Place::Keyring) => keyring_get(account, KeyringItem::RefreshToken).map_err(|e| {
            if e.kind() == ErrorKind::Config && e.message().starts_with("no OAuth") {
                missing()
            } else {
                e
            }
        }),
        None => Err(missing()),
    }
}

/// Save after a refresh: a new refresh token (providers may rotate it) goes where the old
/// one was; then the file. A keyring that fails to take the new refresh token costs a
/// warning, not the run: the old one usually stays valid.
pub fn save(
    account: &Account,
    paths: &Paths,
    stored: &mut Stored,
    new_refresh: Option<&Secret>,
) -> Result<()> {
    if let Some(refresh) = new_refresh {
        match stored.place {
            Some(Place::Keyring) => {
                let item = item(account, KeyringItem::RefreshToken);
                if let Err(e) = keyring::set_item(account, &item, refresh) {
                    log::warn!(
                        "{}: cannot store the new refresh token in the keyring: {}",
                        account.name,
                        e.chain()
                    );
                }
            }
            _ => {
                stored.place = Some(Place::File);
                stored.refresh_token = Some(refresh.clone());
            }
        }
    }
    write(paths, stored)
}

/// Save what `pop3 auth` obtained, replacing whatever was there. With
/// [`TokenStore::Auto`] the refresh token goes to the keyring when it takes it, else to the
/// file. Returns where it went.
pub fn save_new(
    account: &Account,
    paths: &Paths,
    store: TokenStore,
    tokens: &Tokens,
) -> Result<Option<Place>> {
    let mut stored = Stored {
        access_token: None,
        expires_at: None,
        place: None,
        refresh_token: None,
    };
    stored.update(tokens);
    if let Some(refresh) = &tokens.refresh {
        let item = item(account, KeyringItem::RefreshToken);
        let place = match store {
            TokenStore::File => Place::File,
            TokenStore::Keyring => {
                keyring::set_item(account, &item, refresh)?;
                Place::Keyring
            }
            TokenStore::Auto if keyring::BUILT_IN => {
                match keyring::set_item(account, &item, refresh) {
                    Ok(()) => Place::Keyring,
                    Err(e) => {
                        log::info!(
                            "{}: the keyring is not usable ({}); keeping the refresh token in {}",
                            account.name,
                            e.message(),
                            paths.file.display()
                        );
                        Place::File
                    }
                }
            }
            TokenStore::Auto => Place::File,
        };
        stored.place = Some(place);
        if place == Place::File {
            stored.refresh_token = Some(refresh.clone());
        }
    }
    write(paths, &stored)?;
    Ok(stored.place)
}

/// The refresh lock of one account: held while a refresh runs and its result is saved.
#[derive(Debug)]
pub struct TokenLock {
    _file: File,
}

impl TokenLock {
    /// Wait (up to `wait`) for the lock: another run refreshing the same token finishes
    /// within its HTTP timeout, and then we read what it got. Past `wait` the error is
    /// `ErrorKind::Temporary` naming the lock file.
    pub fn acquire(paths: &Paths, wait: Duration) -> Result<TokenLock> {
        let path = &paths.lock;
        let io_err = |what: &str, e| {
            Error::with_source(
                ErrorKind::Io,
                format!("{what} token lock file {}", path.display()),
                e,
            )
        };
        let file = crate::state::lock::open_lock_file(path, "token lock file")?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(TokenLock { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::new(
                        ErrorKind::Temporary,
                        format!(
                            "another pop3 has been refreshing this account's token for over \
                             {} s (lock file {})",
                            wait.as_secs(),
                            path.display()
                        ),
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(io_err("cannot lock", e)),
            }
        }
    }
}

/// One line for `pop3 accounts`: the access token's expiry and where the refresh token
/// is, never a token.
pub fn describe(paths: &Paths) -> String {
    match load(paths) {
        Ok(None) => "none yet (run `pop3 auth`)".into(),
        Err(e) => e.message().to_owned(),
        Ok(Some(s)) => {
            let access = match s.expires_at {
                Some(t) if t > now() => match jiff::Timestamp::from_second(t) {
                    Ok(ts) => format!(
                        "access token valid until {}",
                        ts.round(jiff::Unit::Second).unwrap_or(ts)
                    ),
                    Err(_) => "access token valid".into(),
                },
                Some(_) => "access token expired".into(),
                None => "no access token".into(),
            };
            let refresh = match s.place {
                Some(Place::File) if s.refresh_token.is_some() => "refresh token in the token file",
                Some(Place::Keyring) => "refresh token in the keyring",
                _ => "no refresh token (run `pop3 auth`)",
            };
            format!("{access}; {refresh}")
        }
    }
}

/// For `--json`: `(valid until, refresh token place)`.
pub fn state(paths: &Paths) -> (Option<i64>, Option<&'static str>) {
    match load(paths) {
        Ok(Some(s)) => (
            s.expires_at,
            match s.place {
                Some(Place::File) if s.refresh_token.is_some() => Some("file"),
                Some(Place::Keyring) => Some("keyring"),
                _ => None,
            },
        ),
        _ => (None, None),
    }
}
