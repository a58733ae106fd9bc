//! The `oauth` table of an account: a provider preset or explicit endpoints, the client,
//! and where tokens are kept. Turned here into [`crate::oauth::Settings`] once, so that
//! nothing downstream re-reads strings.

use super::file::OAuthTable;
use super::{AuthMech, Config, PasswordSource};
use crate::error::{Error, ErrorKind, Result};
use crate::oauth::{Provider, Settings, TokenStore};
use crate::proto::auth::Mechanism;

/// `[defaults]` `oauth` under the account's: key by key, the account's wins, so that a
/// provider and client can be set once for every account.
pub(super) fn merge(
    defaults: Option<OAuthTable>,
    account: Option<OAuthTable>,
) -> Option<OAuthTable> {
    match (defaults, account) {
        (None, a) => a,
        (d, None) => d,
        (Some(d), Some(a)) => Some(OAuthTable {
            provider: a.provider.or(d.provider),
            client_id: a.client_id.or(d.client_id),
            client_secret: a.client_secret.or(d.client_secret),
            auth_url: a.auth_url.or(d.auth_url),
            token_url: a.token_url.or(d.token_url),
            device_url: a.device_url.or(d.device_url),
            scopes: a.scopes.or(d.scopes),
            tls_ca_file: a.tls_ca_file.or(d.tls_ca_file),
            token_store: a.token_store.or(d.token_store),
        }),
    }
}

/// Check an endpoint: an `https://` URL without spaces or control characters (tokens and
/// secrets go there, so never plain HTTP). `pop3 init` checks typed URLs with it too.
pub fn endpoint(label: &str, key: &str, url: String) -> Result<String> {
    let ok = url
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        && url.len() > 8
        && !url.chars().any(|c| c.is_control() || c == ' ');
    if ok {
        Ok(url)
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!("{label}: oauth.{key} must be an https:// URL, not {url:?}"),
        ))
    }
}

/// The account's OAuth settings, or `None` without an `oauth` table (then an OAuth
/// mechanism reads the access token from the password source, as before).
pub(super) fn resolve(
    config: &Config,
    table: Option<OAuthTable>,
    label: &str,
    auth: AuthMech,
    password: &PasswordSource,
) -> Result<Option<Settings>> {
    let Some(t) = table else {
        return Ok(None);
    };
    let err = |msg: String| Error::new(ErrorKind::Config, format!("{label}: {msg}"));
    if !matches!(
        auth,
        AuthMech::Named(Mechanism::XOauth2 | Mechanism::OauthBearer)
    ) {
        return Err(err(
            "an oauth table needs auth = \"xoauth2\" or auth = \"oauthbearer\"".into(),
        ));
    }
    if !matches!(password, PasswordSource::Default) {
        return Err(err(
            "set either password or oauth: with oauth, pop3 gets the access token itself \
             (run `pop3 auth ACCOUNT` once)"
                .into(),
        ));
    }
    let provider = match t.provider.as_deref() {
        None => None,
        Some(name) => Some(Provider::from_name(name).ok_or_else(|| {
            err(format!(
                "oauth.provider {name:?} is not known: expected \"google\" or \"microsoft\" \
                 (or leave it out and set oauth.auth_url, token_url, device_url and scopes)"
            ))
        })?),
    };
    let preset = provider.map(Provider::preset);
    let pick = |own: Option<String>, preset: Option<&'static str>| {
        own.or_else(|| preset.map(str::to_owned))
    };
    let token_url = pick(t.token_url, preset.as_ref().map(|p| p.token_url)).ok_or_else(|| {
        err(
            "oauth.token_url is not set (or set oauth.provider = \"google\" | \"microsoft\")"
                .into(),
        )
    })?;
    let token_url = endpoint(label, "token_url", token_url)?;
    let auth_url = pick(t.auth_url, preset.as_ref().map(|p| p.auth_url))
        .map(|u| endpoint(label, "auth_url", u))
        .transpose()?;
    let device_url = pick(t.device_url, preset.as_ref().and_then(|p| p.device_url))
        .map(|u| endpoint(label, "device_url", u))
        .transpose()?;
    if auth_url.is_none() && device_url.is_none() {
        return Err(err(
            "set oauth.auth_url (browser sign-in) or oauth.device_url (device code), or both"
                .into(),
        ));
    }
    let scopes: Vec<String> = match t.scopes {
        Some(s) => s.0,
        None => preset
            .as_ref()
            .map(|p| p.scopes.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
    };
    if scopes.is_empty() || scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
        return Err(err(
            "oauth.scopes must list at least one scope, each without spaces".into(),
        ));
    }
    let client_id = t
        .client_id
        .filter(|c| !c.is_empty() && !c.chars().any(char::is_control))
        .ok_or_else(|| {
            err("oauth.client_id is not set; the README says how to register a client".into())
        })?;
    let client_secret =
        match config.password_source(t.client_secret, label, "oauth.client_secret")? {
            PasswordSource::Default => None,
            source => Some(source),
        };
    let tls_ca_file = t
        .tls_ca_file
        .map(|s| super::paths::expand_tilde(&s))
        .transpose()?;
    let token_store = match t.token_store.as_deref() {
        None | Some("auto") => TokenStore::Auto,
        Some("keyring") => TokenStore::Keyring,
        Some("file") => TokenStore::File,
        Some(other) => {
            return Err(err(format!(
                "oauth.token_store {other:?}: expected \"auto\", \"keyring\" or \"file\""
            )));
        }
    };
    Ok(Some(Settings {
        provider,
        client_id,
        client_secret,
        auth_url,
        token_url,
        device_url,
        scopes,
        extra_auth_params: preset.map(|p| p.extra_auth_params).unwrap_or(&[]),
        tls_ca_file,
        token_store,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Overrides, parse};
    use crate::error::ErrorKind;
    use crate::oauth::{Provider, TokenStore};

    const BASE: &str = "[accounts.a]\nhost = \"h\"\nuser = \"u\"\ndeliver.maildir = \"/m\"\n";

    fn resolve(extra: &str) -> crate::error::Result<crate::config::Account> {
        let path = std::path::PathBuf::from("test.toml");
        let file = parse(&path, &format!("{BASE}{extra}"))?;
        let config = crate::config::Config {
            path: Some(path),
            file,
            readable_by_others: false,
        };
        config.resolve(Some("a"), &Overrides::default())
    }

    #[test]
    fn a_provider_fills_in_endpoints_and_scopes() {
        let a = resolve(
            "auth = \"xoauth2\"\noauth.provider = \"microsoft\"\noauth.client_id = \"c\"\n",
        )
        .unwrap();
        let o = a.login.oauth.unwrap();
        assert_eq!(o.provider, Some(Provider::Microsoft));
        assert!(o.device_url.is_some());
        assert_eq!(
            o.scopes,
            [
                "https://outlook.office.com/POP.AccessAsUser.All",
                "offline_access"
            ]
        );
        assert_eq!(o.token_store, TokenStore::Auto);
        let a = resolve(
            "auth = \"oauthbearer\"\noauth.provider = \"google\"\noauth.client_id = \"c\"\n\
             oauth.client_secret.env = \"S\"\n",
        )
        .unwrap();
        let o = a.login.oauth.unwrap();
        assert_eq!(o.scopes, ["https://mail.google.com/"]);
        assert!(o.device_url.is_none() && o.client_secret.is_some());
    }

    #[test]
    fn bad_oauth_tables_are_config_errors_naming_the_key() {
        for (extra, want) in [
            (
                "auth = \"plain\"\noauth.provider = \"google\"\noauth.client_id = \"c\"\n",
                "auth = \"xoauth2\"",
            ),
            (
                "auth = \"xoauth2\"\noauth.provider = \"yahoo\"\noauth.client_id = \"c\"\n",
                "oauth.provider",
            ),
            (
                "auth = \"xoauth2\"\noauth.provider = \"google\"\n",
                "oauth.client_id",
            ),
            (
                "auth = \"xoauth2\"\noauth.client_id = \"c\"\noauth.token_url = \"http://x/t\"\noauth.device_url = \"https://x/d\"\noauth.scopes = [\"s\"]\n",
                "https://",
            ),
            (
                "auth = \"xoauth2\"\npassword = \"p\"\noauth.provider = \"google\"\noauth.client_id = \"c\"\n",
                "either password or oauth",
            ),
            (
                "auth = \"xoauth2\"\noauth.provider = \"google\"\noauth.client_id = \"c\"\noauth.token_store = \"disk\"\n",
                "oauth.token_store",
            ),
            (
                "auth = \"xoauth2\"\noauth.provider = \"google\"\noauth.client_id = \"c\"\noauth.clientid = \"c\"\n",
                "clientid",
            ),
        ] {
            let err = resolve(extra).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{extra}");
            assert!(err.to_string().contains(want), "{extra}: {err}");
        }
    }
}
