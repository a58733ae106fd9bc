//! OAuth 2.0 access tokens for XOAUTH2 and OAUTHBEARER: getting them once (`pop3 auth`,
//! in [`flow`]: the device flow of RFC 8628 or the loopback redirect with PKCE of RFC 8252
//! and RFC 7636), keeping them ([`store`]: the refresh token in the keyring or a 0600 file,
//! the access token and its expiry in the file), and refreshing them on every run
//! ([`access_token`]) over an HTTPS client with our own TLS rules ([`http`]).
//!
//! Rules this module keeps:
//!
//! - No secret (access token, refresh token, client secret, authorization code, PKCE
//!   verifier) ever reaches an error message, a log line or `Debug` output: they travel as
//!   [`Secret`], and server text in errors is escaped and capped.
//! - Nothing here prompts except `pop3 auth`: a run whose refresh token is refused ends
//!   with exit 77 and "run `pop3 auth ACCOUNT`".
//! - Two processes never refresh the same token at once: the refresh happens under the
//!   account's token lock (`<account>.oauth.lock`, waited for, not failed on), and whoever
//!   gets it second re-reads the store and uses the token the first one got.

pub mod flow;
pub mod http;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Account, PasswordSource};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// A provider whose endpoints and scopes pop3 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    Microsoft,
}

/// What a provider preset fills in.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub auth_url: &'static str,
    pub token_url: &'static str,
    /// Google refuses the Gmail scope in its device flow, so it has none.
    pub device_url: Option<&'static str>,
    pub scopes: &'static [&'static str],
    /// Extra query parameters of the browser sign-in.
    pub extra_auth_params: &'static [(&'static str, &'static str)],
}

impl Provider {
    /// The provider a config name means.
    pub fn from_name(name: &str) -> Option<Provider> {
        match name.to_ascii_lowercase().as_str() {
            "google" | "gmail" => Some(Provider::Google),
            "microsoft" | "outlook" | "office365" => Some(Provider::Microsoft),
            _ => None,
        }
    }

    /// The name in the config.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
        }
    }

    /// Endpoints and scopes: Google's "OAuth 2.0 for desktop apps" page and its Gmail
    /// scope; Microsoft's identity platform (v2.0, the `common` tenant) with the POP scope
    /// and `offline_access` (without which there is no refresh token).
    pub fn preset(self) -> Preset {
        match self {
            Provider::Google => Preset {
                auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
                token_url: "https://oauth2.googleapis.com/token",
                device_url: None,
                scopes: &["https://mail.google.com/"],
                // Without these Google issues no refresh token on a second sign-in.
                extra_auth_params: &[("access_type", "offline"), ("prompt", "consent")],
            },
            Provider::Microsoft => Preset {
                auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                device_url: Some("https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"),
                scopes: &[
                    "https://outlook.office.com/POP.AccessAsUser.All",
                    "offline_access",
                ],
                extra_auth_params: &[],
            },
        }
    }
}

/// Where `pop3 auth` keeps the refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStore {
    /// The keyring when it is built in and answers, else the file.
    Auto,
    Keyring,
    File,
}

/// An account's resolved `oauth` table.
#[derive(Debug, Clone)]
pub struct Settings {
    pub provider: Option<Provider>,
    pub client_id: String,
    /// `None`: a public client (Microsoft's usual case).
    pub client_secret: Option<PasswordSource>,
    pub auth_url: Option<String>,
    pub token_url: String,
    pub device_url: Option<String>,
    pub scopes: Vec<String>,
    pub extra_auth_params: &'static [(&'static str, &'static str)],
    /// CA bundle for the OAuth endpoints; `None`: the public roots.
    pub tls_ca_file: Option<PathBuf>,
    pub token_store: TokenStore,
}

/// A cached access token is used only while it has at least this long to live; closer to
/// its expiry it is refreshed first, so that it cannot expire between here and the login.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// What to say when the tokens are missing or refused.
pub fn advice(account: &Account) -> String {
    format!("run `pop3 auth {}`", account.name)
}

/// The account's OAuth settings, or a configuration error.
pub fn settings(account: &Account) -> Result<&Settings> {
    account.login.oauth.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            format!(
                "account {} has no oauth table; set auth = \"xoauth2\" (or \"oauthbearer\") \
                 and oauth.provider (or oauth.token_url ...) with oauth.client_id",
                account.name
            ),
        )
    })
}

/// The client secret, when the client has one.
pub fn client_secret(account: &Account, settings: &Settings) -> Result<Option<Secret>> {
    match &settings.client_secret {
        None => Ok(None),
        Some(PasswordSource::Keyring) => {
            store::keyring_get(account, store::KeyringItem::ClientSecret).map(Some)
        }
        Some(source) => {
            crate::secret::obtain_from(account, source, "oauth.client_secret").map(Some)
        }
    }
}

/// The access token to log in with: the cached one while it is valid for at least
/// [`EXPIRY_MARGIN`], else a fresh one from the refresh token. `rejected` is a token the
/// server has just refused: then a new one is fetched even if the cached one looks valid
/// (unless another run has already replaced it). Never prompts; without usable tokens the
/// error is `ErrorKind::Auth` (77) saying to run `pop3 auth ACCOUNT`.
pub fn access_token(account: &Account, rejected: Option<&Secret>) -> Result<Secret> {
    let settings = settings(account)?;
    let paths = store::Paths::of(account)?;
    let usable = |stored: &store::Stored| -> Option<Secret> {
        let token = stored.valid_access_token(EXPIRY_MARGIN)?;
        match rejected {
            Some(bad) if bad.expose() == token.expose() => None,
            _ => Some(token),
        }
    };
    if let Some(token) = store::load(&paths)?.as_ref().and_then(usable) {
        return Ok(token);
    }
    let http = http::Http::new(settings.tls_ca_file.as_deref(), account.server.timeout)?;
    let _lock = store::TokenLock::acquire(&paths, http.lock_wait())?;
    // Whoever held the lock before us may have refreshed already.
    let Some(mut stored) = store::load(&paths)? else {
        return Err(Error::new(
            ErrorKind::Auth,
            format!(
                "account {}: no OAuth tokens yet; {}",
                account.name,
                advice(account)
            ),
        ));
    };
    if let Some(token) = usable(&stored) {
        return Ok(token);
    }
    let refresh = store::refresh_token(account, &stored)?;
    let secret = client_secret(account, settings)?;
    log::info!(
        "{}: refreshing the OAuth access token at {}",
        account.name,
        settings.token_url
    );
    let tokens = flow::refresh(&http, settings, secret.as_ref(), &refresh).map_err(|e| {
        if e.kind() == ErrorKind::Auth {
            Error::new(
                ErrorKind::Auth,
                format!(
                    "account {}: {}; {}",
                    account.name,
                    e.chain(),
                    advice(account)
                ),
            )
        } else {
            e
        }
    })?;
    stored.update(&tokens);
    store::save(account, &paths, &mut stored, tokens.refresh.as_ref())?;
    Ok(tokens.access)
}
