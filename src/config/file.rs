//! The TOML file, mirrored 1:1 by serde structs with `deny_unknown_fields` everywhere, so an
//! unknown or misspelt key is an error naming the file, line and key (STYLE.md rule 12).
//! Nothing here validates values beyond their type, except that durations, sizes and the
//! port carry their allowed range in their type (`config::range`); `config` turns these into
//! a typed `Account`.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::account::TlsMode;
use super::range::{
    DeleteAfter, Keepalive, MaxSize, MdaTimeout, PasswordTimeout, PortValue, Timeout,
};
use crate::proto::auth::Mechanism;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Settings every account inherits.
    #[serde(default)]
    pub defaults: AccountTable,
    /// The accounts by name, in file order (the exit code is that of the first failing
    /// account in this order).
    #[serde(default)]
    pub accounts: Accounts,
}

/// `[accounts.NAME]` tables in the order the file has them.
#[derive(Debug, Default)]
pub struct Accounts(pub Vec<(String, AccountTable)>);

impl<'de> Deserialize<'de> for Accounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Accounts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("tables [accounts.NAME]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Accounts, A::Error> {
                let mut out = Vec::new();
                while let Some((name, table)) = map.next_entry::<String, AccountTable>()? {
                    out.push((name, table));
                }
                Ok(Accounts(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One `[accounts.NAME]` or the `[defaults]` table. Every field is optional here; the
/// resolver says which are required.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountTable {
    pub host: Option<String>,
    pub port: Option<PortValue>,
    pub user: Option<String>,
    pub password: Option<PasswordTable>,
    pub auth: Option<AuthName>,
    pub tls: Option<TlsMode>,
    pub tls_ca_file: Option<String>,
    pub timeout: Option<Timeout>,
    pub allow_plaintext_password: Option<bool>,
    pub keep: Option<bool>,
    pub delete_after: Option<DeleteAfter>,
    pub max_size: Option<MaxSize>,
    pub add_received: Option<bool>,
    pub tls_fingerprint: Option<OneOrMany>,
    pub tls_min_version: Option<TlsVersionName>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub mda_timeout: Option<MdaTimeout>,
    pub deliver: Option<DeliverTable>,
    /// OAuth 2.0 for `auth = "xoauth2" | "oauthbearer"`: where tokens come from.
    pub oauth: Option<OAuthTable>,
    pub killsize: Option<MaxSize>,
    pub filter: Option<CommandSpec>,
    pub keepalive: Option<Keepalive>,
}

/// `oauth.provider = "google"` or explicit endpoints, `oauth.client_id`, ... (strings are
/// checked when the account is resolved, in `config::oauth`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthTable {
    pub provider: Option<String>,
    pub client_id: Option<String>,
    /// A literal, or the same table as `password` (command, env, prompt, keyring).
    pub client_secret: Option<PasswordTable>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    pub scopes: Option<OneOrMany>,
    /// Trust only this CA for the OAuth endpoints (default: the public roots).
    pub tls_ca_file: Option<String>,
    /// `"auto"` (the keyring when it answers, else a file), `"keyring"` or `"file"`.
    pub token_store: Option<String>,
}

/// A string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s);
                }
                Ok(OneOrMany(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// `tls_min_version = "1.2" | "1.3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsVersionName {
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

/// Parse `<digits>[k|K|M|G][B]`: powers of 1024. Too big for a `u64` gives `u64::MAX`, so
/// that the caller's range check (`config::range`) says "out of range", not "invalid".
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n = parse_digits(digits)?;
    let unit = unit.trim();
    let unit = unit.strip_suffix(['B', 'b']).unwrap_or(unit);
    let mul: u64 = match unit {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return None,
    };
    Some(n.saturating_mul(mul))
}

/// ASCII digits as a `u64`, saturating at `u64::MAX`; `None` when there are none.
fn parse_digits(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    // Only digits are left, so the one possible error is overflow.
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// `deliver.maildir = "..."`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverTable {
    pub maildir: Option<String>,
    pub mbox: Option<String>,
    pub mda: Option<CommandSpec>,
    /// `unix:/path` or `host[:port]` of an LMTP server.
    pub lmtp: Option<String>,
    /// `host[:port]` of an SMTP server.
    pub smtp: Option<String>,
    /// The envelope recipient(s) for LMTP and SMTP.
    pub recipient: Option<OneOrMany>,
    /// STARTTLS before MAIL (SMTP).
    pub starttls: Option<bool>,
    /// The user name for SMTP AUTH (PLAIN or LOGIN) at the relay.
    pub auth_user: Option<String>,
    /// Its password, in the same forms as `password` (not the keyring).
    pub auth_password: Option<PasswordTable>,
    /// SMTP AUTH without STARTTLS (the password crosses the wire unencrypted).
    pub auth_plaintext: Option<bool>,
}

/// `password = "literal"` or `password.command = [...]` (with `password.timeout`) /
/// `password.env = "VAR"` / `password.prompt = true`.
#[derive(Debug, Clone)]
pub enum PasswordTable {
    Literal(String),
    Source(PasswordSourceTable),
}

/// The table form of `password`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSourceTable {
    pub command: Option<CommandSpec>,
    /// How long `command` may run.
    pub timeout: Option<PasswordTimeout>,
    pub env: Option<String>,
    pub prompt: Option<bool>,
    pub keyring: Option<bool>,
}

/// A command as an argv array or as a string for `sh -c`.
#[derive(Debug, Clone)]
pub enum CommandSpec {
    Argv(Vec<String>),
    Shell(String),
}

// Hand-written instead of `#[serde(untagged)]`, whose "data did not match any variant"
// hides the real problem (an unknown key inside `password.`, say).
impl<'de> Deserialize<'de> for PasswordTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PasswordTable;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a string or a table with command (and timeout), env, prompt or keyring",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PasswordTable, E> {
                Ok(PasswordTable::Literal(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PasswordTable, A::Error> {
                PasswordSourceTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(PasswordTable::Source)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for CommandSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings (argv) or a string (run with sh -c)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandSpec, E> {
                Ok(CommandSpec::Shell(v.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<CommandSpec, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(CommandSpec::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// `auth = "auto"` (None) or a mechanism's config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthName(pub Option<Mechanism>);

impl<'de> Deserialize<'de> for AuthName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("auto") {
            return Ok(AuthName(None));
        }
        Mechanism::from_config_name(&s)
            .map(|m| AuthName(Some(m)))
            .ok_or_else(|| {
                let names: Vec<&str> = Mechanism::ALL.iter().map(|m| m.config_name()).collect();
                de::Error::custom(format!(
                    "invalid auth {s:?}: expected \"auto\" or one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// Parse `<digits><unit>` with unit ms, s, m, h or d (a bare number is seconds). Too long
/// for a `Duration` of `u64` seconds saturates there, so that the caller's range check
/// (`config::range`) says "out of range", not "invalid".
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n = parse_digits(digits)?;
    let secs = |mul: u64| Some(std::time::Duration::from_secs(n.saturating_mul(mul)));
    match unit.trim() {
        "ms" => Some(std::time::Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        "d" => secs(86400),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for TlsMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "implicit" => Ok(TlsMode::Implicit),
            "starttls" => Ok(TlsMode::Starttls),
            "none" => Ok(TlsMode::None),
            _ => Err(de::Error::custom(format!(
                "invalid tls {s:?}: expected \"implicit\", \"starttls\" or \"none\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("14d"), Some(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3 weeks"), None);
        let longest = Some(Duration::from_secs(u64::MAX));
        assert_eq!(parse_duration("99999999999999999999d"), longest);
        assert_eq!(parse_duration("18446744073709551615d"), longest);
        assert_eq!(parse_duration("d"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("25M"), Some(25 << 20));
        assert_eq!(parse_size("500k"), Some(500 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("1234"), Some(1234));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("12T"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999999999999"), Some(u64::MAX));
        assert_eq!(parse_size("18446744073709551615G"), Some(u64::MAX));
    }
}
