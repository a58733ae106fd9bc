//! `pop3 auth ACCOUNT [--device | --browser]`: sign in to the account's OAuth provider once
//! and store the tokens (`crate::oauth::store`), so that every later `pop3 fetch` refreshes
//! them by itself. It holds the account lock while it runs, so no fetch of the same account
//! uses half-written tokens, and the token lock while it writes them.

use std::process::ExitCode;
use std::time::Duration;

use super::Context;
use crate::cli::AuthArgs;
use crate::config::{Account, Overrides};
use crate::engine;
use crate::error::Result;
use crate::oauth::{self, flow, http::Http, store};
use crate::state::lock::AccountLock;

/// How long the browser sign-in may take.
const BROWSER_WAIT: Duration = Duration::from_secs(300);

/// Run `pop3 auth`.
pub fn run(ctx: &Context, args: &AuthArgs) -> anyhow::Result<ExitCode> {
    let account = ctx
        .config
        .resolve(Some(&args.account), &Overrides::default())?;
    let how = match (args.device, args.browser) {
        (true, _) => SignIn::Device,
        (_, true) => SignIn::Browser,
        _ => SignIn::Default,
    };
    let place = sign_in(&account, how)?;
    if !ctx.quiet {
        eprintln!(
            "pop3: signed in for account {}; {}; `pop3 fetch {}` uses it from now on",
            account.name,
            describe(&account, place)?,
            account.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Which sign-in to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The device flow where the provider has a device endpoint, else the browser.
    Default,
    Device,
    Browser,
}

/// Sign in to the account's OAuth provider and store the tokens; what the user must act on
/// (a URL, a code) goes to stderr. Shared by `pop3 auth` and `pop3 init`. Returns where the
/// refresh token went (`None`: the provider sent none).
pub fn sign_in(account: &Account, how: SignIn) -> Result<Option<store::Place>> {
    let settings = oauth::settings(account)?;
    let (_, lock_path) = engine::state_paths(account)?;
    let _lock = AccountLock::acquire(&lock_path)?;
    let secret = oauth::client_secret(account, settings)?;
    let http = Http::new(settings.tls_ca_file.as_deref(), account.server.timeout)?;
    // What the user must act on is shown even with --quiet.
    let mut tell = |line: &str| eprintln!("{line}");
    let device = match how {
        SignIn::Device => true,
        SignIn::Browser => false,
        SignIn::Default => settings.device_url.is_some(),
    };
    let tokens = if device {
        flow::device(&http, settings, secret.as_ref(), &mut tell)?
    } else {
        flow::loopback(&http, settings, secret.as_ref(), &mut tell, BROWSER_WAIT)?
    };
    if tokens.refresh.is_none() {
        log::warn!(
            "{}: the provider sent no refresh token (is `offline_access` among the scopes?); \
             pop3 will need `pop3 auth` again when this access token expires",
            account.name
        );
    }
    let paths = store::Paths::of(account)?;
    let _token_lock = store::TokenLock::acquire(&paths, http.lock_wait())?;
    store::save_new(account, &paths, settings.token_store, &tokens)
}

/// Where the refresh token is, in words.
pub fn describe(account: &Account, place: Option<store::Place>) -> Result<String> {
    Ok(match place {
        Some(store::Place::Keyring) => "the refresh token is in the keyring".to_owned(),
        Some(store::Place::File) => format!(
            "the refresh token is in {}",
            store::Paths::of(account)?.file.display()
        ),
        None => "no refresh token".to_owned(),
    })
}
