//! `pop3 accounts [--check] [--json]`: the resolved accounts, secrets hidden.

use std::process::ExitCode;

use serde_json::json;

use super::Context;
use crate::cli::AccountsArgs;
use crate::config::range::{show_duration, show_size};
use crate::config::{Account, AuthMech, PasswordSource};
use crate::error::{Error, ErrorKind};

/// Run `pop3 accounts`.
pub fn run(ctx: &Context, args: &AccountsArgs) -> anyhow::Result<ExitCode> {
    if args.names {
        // For the completion scripts: whatever the config names, even with no file (none).
        for name in ctx.config.account_names() {
            outln!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(path) = &ctx.config.path else {
        let looked = crate::config::paths::default_config_file()
            .map_or_else(|e| e.to_string(), |p| p.display().to_string());
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "no config file: {looked} does not exist (-c FILE or POP3_CONFIG names another); \
                 `man pop3` shows the format, and README.md an example"
            ),
        )
        .into());
    };
    if ctx.config.account_names().is_empty() {
        // As `pop3 fetch` says: a file with nothing to fetch is a configuration error.
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "{}: no accounts: add an [accounts.NAME] table with host, user and \
                 deliver.maildir (see `man pop3`)",
                path.display()
            ),
        )
        .into());
    }
    let mut resolved = Vec::new();
    for name in ctx.config.account_names() {
        // --check stops at the first error, with exit 78 (and file, table and key).
        resolved.push(ctx.config.resolve(Some(name), &Default::default())?);
    }
    if !ctx.quiet {
        for (_, line) in super::shared_logins(&ctx.config) {
            eprintln!("pop3: warning: {line}");
        }
    }
    if args.check {
        if !ctx.quiet {
            outln!(
                "{}: {} account{} OK",
                path.display(),
                resolved.len(),
                if resolved.len() == 1 { "" } else { "s" }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        let all: Vec<_> = resolved.iter().map(to_json).collect();
        outln!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    for a in &resolved {
        outln!("[{}]", a.name);
        for (key, value) in describe(a) {
            outln!("  {key:<10} {value}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn password_source(a: &Account) -> String {
    match &a.login.password {
        PasswordSource::Literal(_) => "in the config file (hidden)".into(),
        PasswordSource::Command(c) => format!("command {}", c.shown()),
        PasswordSource::Env(v) => format!("environment variable {v}"),
        PasswordSource::Prompt => "prompt".into(),
        PasswordSource::Keyring => format!(
            "keyring (service {}, user {})",
            crate::keyring::SERVICE,
            crate::keyring::entry_user(a)
        ),
        PasswordSource::Default => format!(
            "{} or a prompt (none configured)",
            crate::secret::PASSWORD_ENV
        ),
    }
}

/// The OAuth client and its endpoints (never the client secret).
fn oauth_source(a: &Account) -> String {
    let Some(o) = &a.login.oauth else {
        return String::new();
    };
    let who = o
        .provider
        .map_or_else(|| o.token_url.clone(), |p| p.name().to_owned());
    format!(
        "{who}, client {}{}",
        o.client_id,
        if o.client_secret.is_some() {
            " with a secret (hidden)"
        } else {
            ""
        }
    )
}

/// The state of the stored tokens: when the access token expires, where the refresh token
/// is; never a token.
fn token_state(a: &Account) -> String {
    match crate::oauth::store::Paths::of(a) {
        Ok(paths) => crate::oauth::store::describe(&paths),
        Err(e) => e.message().to_owned(),
    }
}

fn auth_name(a: &Account) -> &'static str {
    match a.login.auth {
        AuthMech::Auto => "auto",
        AuthMech::Named(m) => m.config_name(),
    }
}

fn describe(a: &Account) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        (
            "server",
            format!(
                "{}:{} (tls {})",
                a.server.host,
                a.server.port,
                a.server.tls.name()
            ),
        ),
        ("user", a.login.user.clone()),
        match &a.login.oauth {
            Some(_) => ("oauth", oauth_source(a)),
            None => ("password", password_source(a)),
        },
        ("auth", auth_name(a).into()),
        ("deliver", a.delivery.target.describe()),
        (
            "keep",
            match (a.policy.keep, a.policy.delete_after) {
                (false, _) => "no (delete after delivery)".into(),
                (true, Some(d)) => format!("yes, delete after {}", show_duration(d)),
                (true, None) => "yes".into(),
            },
        ),
        ("timeout", show_duration(a.server.timeout)),
    ];
    if a.login.oauth.is_some() {
        rows.push(("tokens", token_state(a)));
    }
    if let Some(m) = a.policy.max_size {
        rows.push(("max_size", show_size(m)));
    }
    if let Some(ca) = &a.server.tls_ca_file {
        rows.push(("tls_ca", ca.display().to_string()));
    }
    if !a.server.tls_fingerprints.is_empty() {
        rows.push((
            "pinned",
            format!("{} fingerprint(s)", a.server.tls_fingerprints.len()),
        ));
    }
    rows
}

fn to_json(a: &Account) -> serde_json::Value {
    json!({
        "name": a.name,
        "host": a.server.host,
        "port": a.server.port,
        "user": a.login.user,
        "tls": a.server.tls.name(),
        "tls_ca_file": a.server.tls_ca_file.as_ref().map(|p| p.display().to_string()),
        "tls_fingerprints": a.server.tls_fingerprints.len(),
        "auth": auth_name(a),
        "password": password_source(a),
        "deliver": a.delivery.target.describe(),
        "keep": a.policy.keep,
        "delete_after_secs": a.policy.delete_after.map(|d| d.as_secs()),
        "max_size": a.policy.max_size,
        "timeout_secs": a.server.timeout.as_secs(),
        "add_received": a.delivery.add_received,
        "oauth": a.login.oauth.as_ref().map(|_| {
            let (valid_until, refresh) = crate::oauth::store::Paths::of(a)
                .map(|p| crate::oauth::store::state(&p))
                .unwrap_or((None, None));
            json!({
                "client": oauth_source(a),
                "access_token_valid_until": valid_until,
                "refresh_token": refresh,
            })
        }),
    })
}
