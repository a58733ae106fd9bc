//! Configuration: [`load`] reads the TOML file (strictly), [`resolve`] merges
//! `[defaults]` < `[accounts.NAME]` < command line into one validated [`Account`]
//! (STYLE.md rule 5). Validation happens here once; nothing downstream re-parses strings.

pub mod account;
pub mod file;
pub mod oauth;
pub mod paths;
pub mod range;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use account::{
    Account, AuthMech, CommandLine, Delivery, Endpoint, Login, PasswordCommand, PasswordSource,
    Policy, Relay, RelayAuth, Server, Target, TlsMode, TlsVersion,
};
use file::{AccountTable, CommandSpec, ConfigFile, PasswordTable, TlsVersionName};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// The default for every read, write and connect.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `password.command` may run by default: long enough to type a passphrase into
/// a pinentry, short enough that one waiting for a terminal nobody watches (cron) does not
/// hold the account lock for ever.
pub const DEFAULT_PASSWORD_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a delivery command may take per message by default.
pub const DEFAULT_MDA_TIMEOUT: Duration = Duration::from_secs(300);

/// A loaded config file (or none).
#[derive(Debug, Default)]
pub struct Config {
    /// The file it came from; `None` when there is no file.
    pub path: Option<PathBuf>,
    file: ConfigFile,
    /// Whether group or others may read the file (a literal password is then refused).
    readable_by_others: bool,
}

/// Settings from the command line, applied over every selected account.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub tls: Option<TlsMode>,
    pub ca_file: Option<PathBuf>,
    /// `--tls-fingerprint`: replaces the file's pins.
    pub tls_fingerprints: Vec<[u8; 32]>,
    /// `--password-command`: run with `sh -c`, replaces the file's password source.
    pub password_command: Option<String>,
    pub auth: Option<AuthMech>,
    pub timeout: Option<Duration>,
    pub maildir: Option<PathBuf>,
    pub mbox: Option<PathBuf>,
    pub mda: Option<String>,
    pub keep: Option<bool>,
    pub max_size: Option<u64>,
    /// The command delivers nothing (`list`, `check`, `probe`, `password`): an account
    /// without a `deliver.*` key is fine ([`Target::Nowhere`]).
    pub no_delivery: bool,
}

impl Overrides {
    /// Whether these flags describe an account of their own (no config needed).
    pub fn is_one_off(&self) -> bool {
        self.host.is_some()
    }
}

/// Check a config file's new text before it replaces `path`: `text` must load, and each
/// account in `accounts` must resolve, exactly as `pop3` would read them. Used by the
/// commands that write the config (`init`, `import`), so that nothing unusable is ever
/// written. Errors are `ErrorKind::Config` saying that nothing was written.
pub fn check_new_text(path: &Path, text: &str, accounts: &[&str]) -> Result<Vec<Account>> {
    let dir = tempfile::tempdir()
        .map_err(|e| Error::with_source(ErrorKind::Io, "cannot make a temporary directory", e))?;
    let tmp = dir.path().join("config.toml");
    crate::fsutil::write_atomic(&tmp, text.as_bytes())
        .map_err(|e| Error::with_source(ErrorKind::Io, "cannot write a temporary file", e))?;
    let fail = |e: Error| {
        Error::new(
            ErrorKind::Config,
            format!(
                "the new accounts would not load into {}: {}; nothing was written",
                path.display(),
                e.chain()
            ),
        )
    };
    let config = load(Some(&tmp)).map_err(fail)?;
    accounts
        .iter()
        .map(|name| {
            config
                .resolve(Some(name), &Overrides::default())
                .map_err(fail)
        })
        .collect()
}

/// Load the config: `explicit` (from `-c` or `POP3_CONFIG`) must exist; the default file
/// may be missing, which gives an empty config.
pub fn load(explicit: Option<&Path>) -> Result<Config> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => paths::default_config_file()?,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(Config::default());
        }
        Err(e) => {
            return Err(Error::with_source(
                ErrorKind::Config,
                format!("cannot read config file {}", path.display()),
                e,
            ));
        }
    };
    let file = parse(&path, &text)?;
    hide_password_variables(&file);
    let readable_by_others = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o044 != 0)
            .unwrap_or(false)
    };
    Ok(Config {
        path: Some(path),
        file,
        readable_by_others,
    })
}

/// Keep every variable that some `password.env` names (any account, `[defaults]`) out of
/// the environment of every child process: the MDA of one account must not see the
/// password of another either.
fn hide_password_variables(file: &ConfigFile) {
    let tables = std::iter::once(&file.defaults).chain(file.accounts.0.iter().map(|(_, t)| t));
    for table in tables {
        if let Some(PasswordTable::Source(s)) = &table.password
            && let Some(var) = &s.env
        {
            crate::secret::child::hide_from_children(var);
        }
        if let Some(PasswordTable::Source(s)) =
            table.oauth.as_ref().and_then(|o| o.client_secret.as_ref())
            && let Some(var) = &s.env
        {
            crate::secret::child::hide_from_children(var);
        }
    }
}

/// Parse the text of a config file; errors name the file, the line and the key.
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile> {
    toml::from_str(text).map_err(|e| {
        let mut msg = format!("{}", path.display());
        if let Some(span) = e.span() {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            msg.push_str(&format!(": line {line}"));
            if let Some(table) = enclosing_table(text, span.start) {
                msg.push_str(&format!(" (in [{table}])"));
            }
            // An unknown key's message names it; a bad value's message names only the value.
            if let Some(key) = key_of_value(text, span.start) {
                msg.push_str(&format!(": {key}"));
            }
        }
        msg.push_str(&format!(": {}", e.message().trim_end()));
        if let Some(guess) = did_you_mean(e.message()) {
            msg.push_str(&format!(" (did you mean `{guess}`?)"));
        }
        Error::new(ErrorKind::Config, msg)
    })
}

/// For serde's "unknown field `hots`, expected one of `host`, `port`, ...": the expected
/// name closest to the unknown one, when it is close enough to be a typo.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|name| (edit_distance(unknown, name), name))
        .filter(|(d, name)| *d <= 2.max(name.len() / 4) && *d < name.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name.to_owned())
}

/// Levenshtein distance (key names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The key whose value starts at byte offset `at` (`timeout` in `timeout = "2h"`,
/// `password.command`, `mda` in `deliver = { mda = 5 }`), for error messages; `None` when
/// `at` is not on a `key = value` line (an unknown key's own span, a multi-line array).
fn key_of_value(text: &str, at: usize) -> Option<&str> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = text.get(line_start..at)?;
    let (key, _) = before.rsplit_once('=')?;
    let key = key.rsplit(['{', ',']).next()?.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ');
    (!key.is_empty() && key.chars().all(plain)).then_some(key)
}

/// The `[table]` header in force at byte offset `at`, for error messages.
fn enclosing_table(text: &str, at: usize) -> Option<&str> {
    text[..at.min(text.len())]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
        })
}

impl Config {
    /// The account names in file order.
    pub fn account_names(&self) -> Vec<&str> {
        self.file
            .accounts
            .0
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }

    fn where_(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "the command line (no config file)".to_owned(),
        }
    }

    /// Resolve account `name` (or, with `name = None`, the one-off account that the
    /// command-line flags describe) into a validated [`Account`].
    pub fn resolve(&self, name: Option<&str>, over: &Overrides) -> Result<Account> {
        let table = match name {
            Some(n) => {
                let found = self.file.accounts.0.iter().find(|(k, _)| k == n);
                match found {
                    Some((_, t)) => merge(&self.file.defaults, t),
                    None => {
                        let known = self.account_names().join(", ");
                        return Err(Error::new(
                            ErrorKind::Config,
                            format!(
                                "no account named {n:?} in {}{}",
                                self.where_(),
                                if known.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (accounts: {known})")
                                }
                            ),
                        ));
                    }
                }
            }
            None => self.file.defaults.clone(),
        };
        self.validate(name, table, over)
    }

    fn validate(&self, name: Option<&str>, t: AccountTable, over: &Overrides) -> Result<Account> {
        let label = match name {
            Some(n) => format!("[accounts.{n}] in {}", self.where_()),
            None => "the one-off account (--host ...)".to_owned(),
        };
        let missing = |key: &str, flag: &str| {
            Error::new(
                ErrorKind::Config,
                format!("{label}: `{key}` is not set (or give {flag})"),
            )
        };
        let host = over
            .host
            .clone()
            .or(t.host)
            .ok_or_else(|| missing("host", "--host"))?;
        let user = over
            .user
            .clone()
            .or(t.user)
            .ok_or_else(|| missing("user", "--user"))?;
        for (key, value) in [("host", &host), ("user", &user)] {
            if value.is_empty() || value.chars().any(|c| c.is_control()) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{label}: `{key}` must be non-empty and hold no control characters"),
                ));
            }
        }
        let tls = over.tls.or(t.tls).unwrap_or(TlsMode::Implicit);
        let port = over
            .port
            .or(t.port.map(|p| p.0))
            .unwrap_or(tls.default_port());
        let file_path = |s: &str, key: &str| paths::config_path(s, &label, key);
        let tls_ca_file = match (&over.ca_file, &t.tls_ca_file) {
            (Some(p), _) => Some(paths::command_line_path(p)?),
            (None, Some(s)) => Some(file_path(s, "tls_ca_file")?),
            (None, None) => None,
        };
        let mda_timeout = t.mda_timeout.map_or(DEFAULT_MDA_TIMEOUT, |d| d.0);
        // Durations and sizes were range-checked as the file was read (`range`).
        let timeout = over
            .timeout
            .unwrap_or(t.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0));
        let target = match (&over.maildir, &over.mbox, &over.mda) {
            (Some(p), None, None) => Target::Maildir(paths::command_line_path(p)?),
            (None, Some(p), None) => Target::Mbox(paths::command_line_path(p)?),
            (None, None, Some(c)) => Target::Mda {
                command: CommandLine::Shell(c.clone()),
                timeout: mda_timeout,
            },
            (None, None, None) => {
                let d = t.deliver.clone().unwrap_or_default();
                let auth = self.relay_auth(&d, &label)?;
                let relay = |spec: &str, key: &str, default_port: u16| {
                    relay(
                        spec,
                        key,
                        &d,
                        &label,
                        auth.clone(),
                        default_port,
                        t.tls_ca_file
                            .as_deref()
                            .map(|s| file_path(s, "tls_ca_file"))
                            .transpose()?,
                        timeout,
                        mda_timeout,
                    )
                };
                let set = [
                    d.maildir.is_some(),
                    d.mbox.is_some(),
                    d.mda.is_some(),
                    d.lmtp.is_some(),
                    d.smtp.is_some(),
                ];
                if set.iter().filter(|s| **s).count() > 1 {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "{label}: set only one of deliver.maildir, deliver.mbox, \
                             deliver.mda, deliver.lmtp, deliver.smtp"
                        ),
                    ));
                }
                if (d.recipient.is_some() || d.starttls.is_some() || auth.is_some())
                    && d.lmtp.is_none()
                    && d.smtp.is_none()
                {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "{label}: deliver.recipient, deliver.starttls and \
                             deliver.auth_user belong to deliver.lmtp or deliver.smtp"
                        ),
                    ));
                }
                if let Some(s) = &d.maildir {
                    Target::Maildir(file_path(s, "deliver.maildir")?)
                } else if let Some(s) = &d.mbox {
                    Target::Mbox(file_path(s, "deliver.mbox")?)
                } else if let Some(c) = d.mda.clone() {
                    Target::Mda {
                        command: command_line(c, &label, "deliver.mda")?,
                        timeout: mda_timeout,
                    }
                } else if let Some(s) = &d.lmtp {
                    Target::Lmtp(relay(s, "deliver.lmtp", 24)?)
                } else if let Some(s) = &d.smtp {
                    Target::Smtp(relay(s, "deliver.smtp", 25)?)
                } else if over.no_delivery {
                    Target::Nowhere
                } else {
                    return Err(missing(
                        "deliver.maildir (or deliver.mbox, deliver.mda, deliver.lmtp, \
                         deliver.smtp)",
                        "--maildir, --mbox or --mda",
                    ));
                }
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "give only one of --maildir, --mbox, --mda",
                ));
            }
        };
        let file_pins = t
            .tls_fingerprint
            .map(|f| f.0)
            .unwrap_or_default()
            .iter()
            .map(|f| {
                parse_fingerprint(f).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        format!(
                            "{label}: tls_fingerprint {f:?} is not a SHA-256 fingerprint \
                             (64 hex digits, colons allowed, optional \"sha256:\" prefix)"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tls_fingerprints = if over.tls_fingerprints.is_empty() {
            file_pins
        } else {
            over.tls_fingerprints.clone()
        };
        let tls_client_cert = match (t.tls_cert_file, t.tls_key_file) {
            (Some(c), Some(k)) => Some((
                file_path(&c, "tls_cert_file")?,
                file_path(&k, "tls_key_file")?,
            )),
            (None, None) => None,
            _ => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{label}: set both tls_cert_file and tls_key_file, or neither"),
                ));
            }
        };
        let password = match &over.password_command {
            Some(c) => PasswordSource::Command(PasswordCommand {
                line: CommandLine::Shell(c.clone()),
                timeout: DEFAULT_PASSWORD_TIMEOUT,
            }),
            None => self.password_source(t.password, &label, "password")?,
        };
        let auth = match (over.auth, t.auth.and_then(|a| a.0)) {
            (Some(a), _) => a,
            (None, None) => AuthMech::Auto,
            (None, Some(m)) => AuthMech::Named(m),
        };
        let oauth = oauth::resolve(self, t.oauth, &label, auth, &password)?;
        let allow_plaintext_password = t.allow_plaintext_password.unwrap_or(false);
        if let AuthMech::Named(m) = auth
            && tls == TlsMode::None
            && m.reveals_password()
            && !allow_plaintext_password
        {
            // DESIGN.md, Config: USER/PASS, PLAIN and LOGIN over plaintext need explicit
            // permission. Known before connecting, so it is a configuration error.
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{label}: auth = \"{}\" with tls = \"none\" would send the password \
                     unencrypted; use tls = \"implicit\" or \"starttls\", a mechanism that \
                     hides it (scram-sha-256, cram-md5, apop), or set \
                     allow_plaintext_password = true if you accept that risk",
                    m.config_name()
                ),
            ));
        }
        let filter = t
            .filter
            .map(|c| command_line(c, &label, "filter"))
            .transpose()?;
        Ok(Account {
            name: name.map_or_else(|| format!("{user}@{host}"), str::to_owned),
            server: Server {
                host,
                port,
                tls,
                tls_ca_file,
                tls_fingerprints,
                tls_min_version: t.tls_min_version.map(|v| match v {
                    TlsVersionName::V1_2 => TlsVersion::V1_2,
                    TlsVersionName::V1_3 => TlsVersion::V1_3,
                }),
                tls_client_cert,
                timeout,
            },
            login: Login {
                user,
                password,
                auth,
                allow_plaintext_password,
                oauth,
            },
            policy: Policy {
                keep: over.keep.or(t.keep).unwrap_or(true),
                delete_after: t.delete_after.map(|d| d.0),
                max_size: over.max_size.or(t.max_size.map(|s| s.0)),
                killsize: t.killsize.map(|s| s.0),
                filter,
                filter_timeout: mda_timeout,
            },
            delivery: Delivery {
                target,
                add_received: t.add_received.unwrap_or(true),
                keepalive: t.keepalive.map_or(DEFAULT_KEEPALIVE, |d| d.0),
            },
        })
    }
    /// `deliver.auth_user` with `deliver.auth_password` (both or neither) and
    /// `deliver.auth_plaintext`. Whether TLS protects it is checked in [`relay`].
    fn relay_auth(&self, d: &file::DeliverTable, label: &str) -> Result<Option<RelayAuth>> {
        let bad = |why: &str| Error::new(ErrorKind::Config, format!("{label}: {why}"));
        let Some(user) = &d.auth_user else {
            if d.auth_password.is_some() || d.auth_plaintext.is_some() {
                return Err(bad(
                    "deliver.auth_password and deliver.auth_plaintext need deliver.auth_user",
                ));
            }
            return Ok(None);
        };
        if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
            return Err(bad(
                "deliver.auth_user must be 1 to 256 characters without control characters",
            ));
        }
        let password =
            match self.password_source(d.auth_password.clone(), label, "deliver.auth_password")? {
                PasswordSource::Default => {
                    return Err(bad(
                        "deliver.auth_user needs deliver.auth_password (a string, or \
                     deliver.auth_password.command, .env or .prompt = true)",
                    ));
                }
                PasswordSource::Keyring => {
                    return Err(bad(
                        "deliver.auth_password.keyring is not supported (the keyring holds the \
                     POP3 password); use deliver.auth_password.command or .env",
                    ));
                }
                p => p,
            };
        Ok(Some(RelayAuth {
            user: user.clone(),
            password,
            plaintext: d.auth_plaintext.unwrap_or(false),
        }))
    }

    /// A `password` (or `oauth.client_secret`, named by `key`) table as a source: a
    /// literal only in a file nobody else can read, exactly one of the table's sources.
    fn password_source(
        &self,
        table: Option<PasswordTable>,
        label: &str,
        key: &str,
    ) -> Result<PasswordSource> {
        Ok(match table {
            None => PasswordSource::Default,
            Some(PasswordTable::Literal(p)) => {
                if self.readable_by_others {
                    let path = self.where_();
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "{label}: refusing a literal `{key}` in a file that group or \
                         others can read; run `chmod 600 {path}` or use {key}.command"
                        ),
                    ));
                }
                PasswordSource::Literal(Secret::new(p))
            }
            Some(PasswordTable::Source(s)) => {
                let set = [
                    s.command.is_some(),
                    s.env.is_some(),
                    s.prompt == Some(true),
                    s.keyring == Some(true),
                ];
                if set.iter().filter(|b| **b).count() != 1 {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "{label}: set exactly one of {key}.command, {key}.env, \
                         {key}.prompt = true, {key}.keyring = true"
                        ),
                    ));
                }
                let timeout = match (&s.command, s.timeout) {
                    (_, None) => DEFAULT_PASSWORD_TIMEOUT,
                    (Some(_), Some(t)) => t.0,
                    (None, Some(_)) => {
                        return Err(Error::new(
                            ErrorKind::Config,
                            format!("{label}: `{key}.timeout` applies only to {key}.command"),
                        ));
                    }
                };
                match (s.command, s.env, s.keyring == Some(true)) {
                    (Some(c), _, _) => PasswordSource::Command(PasswordCommand {
                        line: command_line(c, label, &format!("{key}.command"))?,
                        timeout,
                    }),
                    (None, Some(var), _) => PasswordSource::Env(var),
                    (None, None, true) => PasswordSource::Keyring,
                    (None, None, false) => PasswordSource::Prompt,
                }
            }
        })
    }
}

/// How often a slow delivery sends the POP3 server a NOOP by default: well within the
/// idle limit of the strictest server known (Microsoft 365, about 60 s).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);

/// `deliver.lmtp` / `deliver.smtp` with `deliver.recipient` and `deliver.starttls`.
#[allow(clippy::too_many_arguments)]
fn relay(
    spec: &str,
    key: &str,
    d: &file::DeliverTable,
    label: &str,
    auth: Option<RelayAuth>,
    default_port: u16,
    tls_ca_file: Option<PathBuf>,
    timeout: Duration,
    delivery_timeout: Duration,
) -> Result<Relay> {
    let bad = |why: String| Error::new(ErrorKind::Config, format!("{label}: {key}: {why}"));
    let endpoint = if let Some(path) = spec.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(bad("`unix:` needs a socket path".into()));
        }
        Endpoint::Unix(paths::config_path(path, label, key)?)
    } else {
        parse_host_port(spec, default_port).map_err(bad)?
    };
    let recipients = match &d.recipient {
        Some(r) => r.0.clone(),
        None => vec![local_user().ok_or_else(|| {
            bad("deliver.recipient is not set and the local user name is unknown ($USER)".into())
        })?],
    };
    if recipients.is_empty() {
        return Err(bad("deliver.recipient is an empty list".into()));
    }
    for r in &recipients {
        let ok = !r.is_empty()
            && r.len() <= 256
            && !r
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>'));
        if !ok {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{label}: deliver.recipient {r:?} is not an address (no spaces, control \
                     characters, < or >)"
                ),
            ));
        }
    }
    let starttls = d.starttls.unwrap_or(false);
    if starttls && !matches!(endpoint, Endpoint::Tcp { .. }) {
        return Err(bad(
            "deliver.starttls needs a host:port, not a unix: socket".into(),
        ));
    }
    if auth.as_ref().is_some_and(|a| !a.plaintext) && !starttls {
        return Err(bad(
            "deliver.auth_user would send the password unencrypted: set deliver.starttls = \
             true (host:port only), or deliver.auth_plaintext = true if you accept that risk"
                .into(),
        ));
    }
    Ok(Relay {
        endpoint,
        recipients,
        starttls,
        tls_ca_file,
        timeout,
        delivery_timeout,
        auth,
    })
}

/// `host`, `host:port` or `[v6]:port`.
fn parse_host_port(spec: &str, default_port: u16) -> std::result::Result<Endpoint, String> {
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{spec:?}: missing `]`"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("{spec:?}: expected `:port` after `]`")),
        }
    } else if spec.matches(':').count() == 1 {
        let (h, p) = spec.split_once(':').unwrap_or((spec, ""));
        (h, Some(p))
    } else {
        (spec, None)
    };
    if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{spec:?} is not `unix:/path`, `host` or `host:port`"
        ));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{spec:?}: the port must be 1 to 65535"))?,
    };
    Ok(Endpoint::Tcp {
        host: host.to_owned(),
        port,
    })
}

/// The user running pop3, the default recipient (fetchmail delivers to the local user).
fn local_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
}

/// A command from the file, checked: an argv must not be empty.
fn command_line(spec: CommandSpec, label: &str, key: &str) -> Result<CommandLine> {
    match spec {
        CommandSpec::Argv(argv) if argv.is_empty() => Err(Error::new(
            ErrorKind::Config,
            format!("{label}: {key} is an empty list"),
        )),
        CommandSpec::Argv(argv) => Ok(CommandLine::Argv(argv)),
        CommandSpec::Shell(s) if s.trim().is_empty() => Err(Error::new(
            ErrorKind::Config,
            format!("{label}: {key} is an empty string"),
        )),
        CommandSpec::Shell(s) => Ok(CommandLine::Shell(s)),
    }
}

/// `sha256:AB:CD:...`, `AB:CD:...` or `abcd...`: 32 bytes.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let s = match s.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256:") => &s[7..],
        _ => s,
    };
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// `[defaults]` under an account table: each key the account sets wins.
fn merge(defaults: &AccountTable, account: &AccountTable) -> AccountTable {
    let d = defaults.clone();
    let a = account.clone();
    AccountTable {
        host: a.host.or(d.host),
        port: a.port.or(d.port),
        user: a.user.or(d.user),
        password: a.password.or(d.password),
        auth: a.auth.or(d.auth),
        tls: a.tls.or(d.tls),
        tls_ca_file: a.tls_ca_file.or(d.tls_ca_file),
        timeout: a.timeout.or(d.timeout),
        allow_plaintext_password: a.allow_plaintext_password.or(d.allow_plaintext_password),
        keep: a.keep.or(d.keep),
        delete_after: a.delete_after.or(d.delete_after),
        max_size: a.max_size.or(d.max_size),
        add_received: a.add_received.or(d.add_received),
        tls_fingerprint: a.tls_fingerprint.or(d.tls_fingerprint),
        tls_min_version: a.tls_min_version.or(d.tls_min_version),
        tls_cert_file: a.tls_cert_file.or(d.tls_cert_file),
        tls_key_file: a.tls_key_file.or(d.tls_key_file),
        mda_timeout: a.mda_timeout.or(d.mda_timeout),
        deliver: a.deliver.or(d.deliver),
        oauth: oauth::merge(d.oauth, a.oauth),
        killsize: a.killsize.or(d.killsize),
        filter: a.filter.or(d.filter),
        keepalive: a.keepalive.or(d.keepalive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<Config> {
        let path = PathBuf::from("test.toml");
        let file = parse(&path, text)?;
        Ok(Config {
            path: Some(path),
            file,
            readable_by_others: false,
        })
    }

    #[test]
    fn unknown_key_names_file_line_table_and_key() {
        let err = config("[defaults]\nkeep = true\n\n[accounts.work]\nhost = \"h\"\nhots = 1\n")
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(msg.starts_with("test.toml: line 6"), "{msg}");
        assert!(msg.contains("accounts.work"), "{msg}");
        assert!(msg.contains("hots"), "{msg}");
    }

    #[test]
    fn a_misspelt_key_or_table_gets_a_suggestion() {
        let msg = config("[accounts.a]\nhots = \"h\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("did you mean `host`?"), "{msg}");
        let msg = config("[acounts.a]\nhost = \"h\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("did you mean `accounts`?"), "{msg}");
        let msg = config("[accounts.a]\ndelete_afer = \"1d\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("did you mean `delete_after`?"), "{msg}");
        let msg = config("[accounts.a]\nzzzzzz = 1\n")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("did you mean"), "{msg}");
        let msg = config("[accounts.a]\nport = \"995\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("port = 995 (without quotes)"), "{msg}");
    }

    #[test]
    fn bad_enum_values_are_config_errors_with_line() {
        let msg = config("[accounts.a]\n\ntls = \"ssl\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3") && msg.contains("ssl"), "{msg}");
        let msg = config("[accounts.a]\ntimeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2") && msg.contains("soon"), "{msg}");
        let msg = config("[accounts.a]\npassword.cmd = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cmd"), "{msg}");
    }

    /// The error for `key = value` on line 3 of `[accounts.a]` (or of `[defaults]`).
    fn range_error(table: &str, key: &str, value: &str) -> String {
        let err = config(&format!("[{table}]\nhost = \"h\"\n{key} = {value}\n")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{key} = {value}");
        let msg = err.to_string();
        let want = format!("test.toml: line 3 (in [{table}]): {key}: ");
        assert!(msg.starts_with(&want), "{key} = {value}: {msg}");
        assert!(msg.contains("out of range"), "{key} = {value}: {msg}");
        msg
    }

    #[test]
    fn every_duration_size_and_port_out_of_range_names_file_line_and_key() {
        let cases = [
            ("timeout", "\"0s\"", "1s to 1h"),
            ("timeout", "\"3601s\"", "1s to 1h"),
            ("timeout", "\"18446744073709551615s\"", "1s to 1h"),
            ("mda_timeout", "\"999ms\"", "1s to 24h"),
            ("mda_timeout", "\"86401s\"", "1s to 24h"),
            ("delete_after", "\"36501d\"", "0 to 36500d"),
            ("delete_after", "\"10000000000000000000s\"", "0 to 36500d"),
            ("max_size", "0", "1 to 1024G"),
            ("max_size", "-1", "1 to 1024G"),
            ("max_size", "\"1025G\"", "1 to 1024G"),
            ("max_size", "1099511627777", "1 to 1024G"),
            ("port", "0", "1 to 65535"),
            ("port", "65536", "1 to 65535"),
            ("port", "-1", "1 to 65535"),
        ];
        for table in ["accounts.a", "defaults"] {
            for (key, value, range) in cases {
                let msg = range_error(table, key, value);
                assert!(msg.contains(range), "{key} = {value}: {msg}");
            }
        }
    }

    #[test]
    fn values_at_the_bounds_are_accepted() {
        let base = "[accounts.a]\nhost = \"h\"\nuser = \"u\"\ndeliver.mda = \"cat\"\n";
        let at = |extra: &str| {
            config(&format!("{base}{extra}"))
                .unwrap()
                .resolve(Some("a"), &Overrides::default())
                .unwrap()
        };
        let low = at(
            "timeout = \"1s\"\nmda_timeout = \"1s\"\ndelete_after = \"0s\"\n\
                      max_size = 1\nport = 1\n",
        );
        assert_eq!(low.server.timeout, Duration::from_secs(1));
        assert_eq!(low.policy.delete_after, Some(Duration::ZERO));
        assert_eq!((low.policy.max_size, low.server.port), (Some(1), 1));
        assert!(
            matches!(low.delivery.target, Target::Mda { timeout, .. } if timeout == Duration::from_secs(1))
        );
        let high = at(
            "timeout = \"1h\"\nmda_timeout = \"24h\"\ndelete_after = \"36500d\"\n\
                       max_size = \"1024G\"\nport = 65535\n",
        );
        assert_eq!(high.server.timeout, Duration::from_secs(3600));
        assert_eq!(
            high.policy.delete_after,
            Some(Duration::from_secs(36_500 * 86400))
        );
        assert_eq!(
            (high.policy.max_size, high.server.port),
            (Some(1 << 40), 65535)
        );
        assert!(
            matches!(high.delivery.target, Target::Mda { timeout, .. } if timeout == Duration::from_secs(86400))
        );
    }

    #[test]
    fn a_bad_value_names_its_key_in_every_toml_form() {
        let msg = config("[accounts.a]\npassword.command = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 2 (in [accounts.a]): password.command: "),
            "{msg}"
        );
        let msg = config("[accounts.a]\ndeliver = { maildir = \"m\", mda = 5 }\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(": mda: "), "{msg}");
        let msg = config("[accounts.a]\n  timeout   =   \"2h\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 2 (in [accounts.a]): timeout: \"2h\""),
            "{msg}"
        );
        // An unknown key is named by toml itself, once.
        let msg = config("[accounts.a]\nhots = 1\n").unwrap_err().to_string();
        assert_eq!(msg.matches("hots").count(), 1, "{msg}");
    }

    #[test]
    fn defaults_merge_and_accounts_keep_file_order() {
        let c = config(
            "[defaults]\ntls = \"starttls\"\nuser = \"u\"\ndeliver.maildir = \"/m\"\n\
             [accounts.zeta]\nhost = \"z\"\n[accounts.alpha]\nhost = \"a\"\nport = 1100\n\
             tls = \"implicit\"\npassword.command = [\"pass\", \"x\"]\n",
        )
        .unwrap();
        assert_eq!(c.account_names(), ["zeta", "alpha"]);
        let z = c.resolve(Some("zeta"), &Overrides::default()).unwrap();
        assert_eq!(
            (z.server.tls, z.server.port, z.login.user.as_str()),
            (TlsMode::Starttls, 110, "u")
        );
        assert!(z.policy.keep);
        let a = c.resolve(Some("alpha"), &Overrides::default()).unwrap();
        assert_eq!((a.server.tls, a.server.port), (TlsMode::Implicit, 1100));
        assert!(
            matches!(a.login.password, PasswordSource::Command(PasswordCommand { line: CommandLine::Argv(ref v), timeout }) if v == &["pass", "x"] && timeout == DEFAULT_PASSWORD_TIMEOUT)
        );
        let over = Overrides {
            keep: Some(false),
            port: Some(7),
            ..Overrides::default()
        };
        let a = c.resolve(Some("alpha"), &over).unwrap();
        assert_eq!((a.server.port, a.policy.keep), (7, false));
        assert!(
            c.resolve(Some("nope"), &over)
                .unwrap_err()
                .to_string()
                .contains("zeta")
        );
    }

    #[test]
    fn literal_password_refused_when_file_is_readable() {
        let mut c = config(
            "[accounts.a]\nhost = \"h\"\nuser = \"u\"\npassword = \"pw\"\ndeliver.maildir = \"/m\"\n",
        )
        .unwrap();
        assert!(c.resolve(Some("a"), &Overrides::default()).is_ok());
        c.readable_by_others = true;
        let err = c.resolve(Some("a"), &Overrides::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(!err.to_string().contains("pw\""), "{err}");
    }

    #[test]
    fn plaintext_needs_explicit_permission() {
        let base = "[accounts.a]\nhost = \"h\"\nuser = \"u\"\ntls = \"none\"\nauth = \"user\"\ndeliver.maildir = \"/m\"\n";
        let err = config(base)
            .unwrap()
            .resolve(Some("a"), &Overrides::default())
            .unwrap_err();
        assert!(
            err.to_string().contains("allow_plaintext_password"),
            "{err}"
        );
        let ok = config(&format!("{base}allow_plaintext_password = true\n")).unwrap();
        let a = ok.resolve(Some("a"), &Overrides::default()).unwrap();
        assert_eq!(a.server.port, 110);
    }

    #[test]
    fn relay_auth_keys() {
        let base = "[accounts.a]\nhost = \"h\"\nuser = \"u\"\ndeliver.smtp = \"mx:587\"\n\
                    deliver.recipient = \"me\"\n";
        let resolve = |extra: &str| {
            config(&format!("{base}{extra}"))
                .unwrap()
                .resolve(Some("a"), &Overrides::default())
        };
        let a = resolve(
            "deliver.starttls = true\ndeliver.auth_user = \"relay\"\n\
             deliver.auth_password.command = [\"pass\", \"mx\"]\n",
        )
        .unwrap();
        let Target::Smtp(r) = &a.delivery.target else {
            panic!("{:?}", a.delivery.target)
        };
        let auth = r.auth.as_ref().unwrap();
        assert_eq!(auth.user, "relay");
        assert!(!auth.plaintext);
        assert!(
            matches!(&auth.password, PasswordSource::Command(PasswordCommand { line: CommandLine::Argv(v), .. }) if v == &["pass", "mx"])
        );
        assert!(a.delivery.target.describe().contains("(AUTH as relay)"));
        let ok = resolve(
            "deliver.auth_user = \"relay\"\ndeliver.auth_password = \"pw\"\n\
             deliver.auth_plaintext = true\n",
        )
        .unwrap();
        let Target::Smtp(r) = &ok.delivery.target else {
            panic!()
        };
        assert!(r.auth.as_ref().unwrap().plaintext);
        for (extra, want) in [
            (
                "deliver.auth_user = \"relay\"\ndeliver.auth_password = \"pw\"\n",
                "unencrypted: set deliver.starttls",
            ),
            (
                "deliver.starttls = true\ndeliver.auth_user = \"relay\"\n",
                "needs deliver.auth_password",
            ),
            (
                "deliver.starttls = true\ndeliver.auth_password = \"pw\"\n",
                "need deliver.auth_user",
            ),
            (
                "deliver.starttls = true\ndeliver.auth_user = \"relay\"\n\
                 deliver.auth_password.keyring = true\n",
                "keyring is not supported",
            ),
            (
                "deliver.starttls = true\ndeliver.auth_user = \"relay\"\n\
                 deliver.auth_password.env = \"X\"\ndeliver.auth_password.prompt = true\n",
                "exactly one of deliver.auth_password.command",
            ),
        ] {
            let err = resolve(extra).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{extra}: {err}");
            assert!(err.to_string().contains(want), "{extra}: {err}");
            assert!(!err.to_string().contains("pw\""), "{err}");
        }
    }

    #[test]
    fn fingerprints() {
        let fp = "AB:".repeat(31) + "AB";
        assert_eq!(parse_fingerprint(&fp), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&format!("SHA256:{fp}")), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("ab:cd"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn delivery_choices() {
        let c = config(
            "[accounts.a]\nhost = \"h\"\nuser = \"u\"\ndeliver.mda = [\"procmail\", \"-d\", \"u\"]\n\
             max_size = \"25M\"\ndelete_after = \"14d\"\n\
             [accounts.b]\nhost = \"h\"\nuser = \"u\"\ndeliver.mbox = \"/m\"\ndeliver.maildir = \"/d\"\n",
        )
        .unwrap();
        let a = c.resolve(Some("a"), &Overrides::default()).unwrap();
        assert!(
            matches!(&a.delivery.target, Target::Mda { command: CommandLine::Argv(v), .. } if v[0] == "procmail")
        );
        assert_eq!(a.policy.max_size, Some(25 << 20));
        assert_eq!(a.policy.delete_after, Some(Duration::from_secs(14 * 86400)));
        let err = c.resolve(Some("b"), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("only one"), "{err}");
    }

    #[test]
    fn lmtp_smtp_killsize_filter_and_keepalive() {
        let base = "[accounts.a]\nhost = \"h\"\nuser = \"u\"\n";
        let c = config(&format!(
            "{base}deliver.lmtp = \"unix:/run/dovecot/lmtp\"\ndeliver.recipient = [\"a\", \"b\"]\n\
             killsize = \"1M\"\nfilter = [\"spamc\", \"-c\"]\nkeepalive = \"10s\"\n\
             [accounts.b]\nhost = \"h\"\nuser = \"u\"\ndeliver.smtp = \"[::1]\"\n\
             deliver.recipient = \"me\"\n"
        ))
        .unwrap();
        let a = c.resolve(Some("a"), &Overrides::default()).unwrap();
        let Target::Lmtp(r) = &a.delivery.target else {
            panic!("{:?}", a.delivery.target)
        };
        assert_eq!(r.endpoint, Endpoint::Unix("/run/dovecot/lmtp".into()));
        assert_eq!(r.recipients, ["a", "b"]);
        assert_eq!(a.policy.killsize, Some(1 << 20));
        assert!(matches!(&a.policy.filter, Some(CommandLine::Argv(v)) if v[0] == "spamc"));
        assert_eq!(a.delivery.keepalive, Duration::from_secs(10));
        let b = c.resolve(Some("b"), &Overrides::default()).unwrap();
        let Target::Smtp(r) = &b.delivery.target else {
            panic!("{:?}", b.delivery.target)
        };
        assert_eq!(r.endpoint.to_string(), "[::1]:25");
        for (bad, says) in [
            ("deliver.smtp = \"h:0\"", "port"),
            (
                "deliver.smtp = \"h\"\ndeliver.recipient = \"a b\"",
                "not an address",
            ),
            (
                "deliver.lmtp = \"unix:/s\"\ndeliver.maildir = \"/m\"",
                "only one",
            ),
            (
                "deliver.maildir = \"/m\"\ndeliver.recipient = \"a\"",
                "belong to",
            ),
            (
                "deliver.lmtp = \"unix:/s\"\ndeliver.recipient = \"a\"\ndeliver.starttls = true",
                "not a unix",
            ),
        ] {
            let err = config(&format!("{base}{bad}\n"))
                .and_then(|c| c.resolve(Some("a"), &Overrides::default()))
                .unwrap_err();
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn one_off_account_from_flags() {
        let over = Overrides {
            host: Some("pop.example.com".into()),
            user: Some("alice".into()),
            maildir: Some("/tmp/M".into()),
            ..Overrides::default()
        };
        let a = Config::default().resolve(None, &over).unwrap();
        assert_eq!(a.name, "alice@pop.example.com");
        assert_eq!((a.server.port, a.server.tls), (995, TlsMode::Implicit));
        let err = Config::default()
            .resolve(
                None,
                &Overrides {
                    maildir: None,
                    ..over
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("--maildir"), "{err}");
    }

    #[test]
    fn password_timeout_belongs_to_password_command() {
        let base = "[accounts.a]\nhost = \"h\"\nuser = \"u\"\ndeliver.maildir = \"/m\"\n";
        let resolve = |extra: &str| {
            config(&format!("{base}{extra}"))
                .and_then(|c| c.resolve(Some("a"), &Overrides::default()))
        };
        let a = resolve("password.command = \"pass x\"\npassword.timeout = \"90s\"\n").unwrap();
        assert!(
            matches!(&a.login.password, PasswordSource::Command(c)
                if c.timeout == Duration::from_secs(90) && c.line == CommandLine::Shell("pass x".into())),
            "{:?}",
            a.login.password
        );
        let err =
            resolve("password.command = \"pass x\"\npassword.timeout = \"0s\"\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("password.timeout"), "{err}");
        let err = resolve("password.env = \"X\"\npassword.timeout = \"5s\"\n").unwrap_err();
        assert!(
            err.to_string().contains("only to password.command"),
            "{err}"
        );
    }
}
