//! The resolved, validated account: enums, durations and paths, never strings to re-parse.
//! Everything downstream (engine, client, delivery) takes an [`Account`].

use std::path::PathBuf;
use std::time::Duration;

use crate::proto::auth::Mechanism;
use crate::secret::Secret;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// TLS from the first byte (port 995).
    Implicit,
    /// Plain connection upgraded with STLS before login (port 110); no fallback.
    Starttls,
    /// No encryption at all.
    None,
}

impl TlsMode {
    /// The default port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 995,
            TlsMode::Starttls | TlsMode::None => 110,
        }
    }

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
            TlsMode::None => "none",
        }
    }
}

/// Which login mechanism to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMech {
    /// The strongest password mechanism both sides support; never one that reveals the
    /// password over an unencrypted connection unless `allow_plaintext_password`.
    Auto,
    /// Exactly this mechanism; if the server lacks it, that is an error (77).
    Named(Mechanism),
}

/// A command to run: an argv (no shell), or a string for `sh -c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Argv(Vec<String>),
    Shell(String),
}

impl CommandLine {
    /// A short form for messages: the program name, or the shell command's first word.
    pub fn shown(&self) -> &str {
        match self {
            CommandLine::Argv(argv) => argv.first().map_or("", String::as_str),
            CommandLine::Shell(s) => s.split_whitespace().next().unwrap_or("sh"),
        }
    }

    /// The whole command as the config writes it: `["procmail", "-d", "alice"]` or the
    /// shell string in quotes.
    pub fn describe(&self) -> String {
        match self {
            CommandLine::Argv(argv) => format!("{argv:?}"),
            CommandLine::Shell(s) => format!("{s:?} (sh -c)"),
        }
    }
}

/// The lowest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// `password.command` with its time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCommand {
    pub line: CommandLine,
    /// `password.timeout`: the command is ended (exit 75) when it runs longer.
    pub timeout: Duration,
}

impl PasswordCommand {
    /// A short form for messages: the program name, or `sh -c`.
    pub fn shown(&self) -> &str {
        self.line.shown()
    }
}

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Written in the config file.
    Literal(Secret),
    /// The first line of a command's output.
    Command(PasswordCommand),
    /// An environment variable.
    Env(String),
    /// Ask on the terminal.
    Prompt,
    /// The system keyring (`pop3 password set`).
    Keyring,
    /// Nothing configured: `POP3_PASSWORD`, else a prompt when stdin is a terminal.
    Default,
}

/// Where fetched mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Maildir (created when missing).
    Maildir(PathBuf),
    /// An mbox file (mboxrd; created when missing).
    Mbox(PathBuf),
    /// A delivery command (procmail, maildrop, ...) with the message on stdin.
    Mda {
        command: CommandLine,
        timeout: Duration,
    },
    /// An LMTP server (Dovecot, Cyrus): the message goes to each recipient through it.
    Lmtp(Relay),
    /// An SMTP server (the local MTA, as fetchmail does by default).
    Smtp(Relay),
    /// None configured, for commands that deliver nothing (`list`, `check`, `probe`,
    /// `password`); `fetch` never gets this far without a target.
    Nowhere,
}

impl Target {
    /// A short description for messages and `pop3 accounts`.
    pub fn describe(&self) -> String {
        match self {
            Target::Maildir(p) => format!("maildir {}", p.display()),
            Target::Mbox(p) => format!("mbox {}", p.display()),
            Target::Mda { command, .. } => format!("mda {}", command.describe()),
            Target::Lmtp(r) => format!("lmtp {}", r.describe()),
            Target::Smtp(r) => format!("smtp {}", r.describe()),
            Target::Nowhere => "(none)".to_owned(),
        }
    }
}

/// Where an LMTP or SMTP server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket (`unix:/run/dovecot/lmtp`).
    Unix(PathBuf),
    /// `host:port`.
    Tcp { host: String, port: u16 },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Delivery through an LMTP or SMTP server: `deliver.lmtp` / `deliver.smtp` with
/// `deliver.recipient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub endpoint: Endpoint,
    /// The envelope recipients (RCPT TO), at least one; checked to hold no `<`, `>`, space
    /// or control character.
    pub recipients: Vec<String>,
    /// `deliver.starttls`: upgrade with STARTTLS before MAIL (SMTP over TCP only).
    pub starttls: bool,
    /// `tls_ca_file` of the account, for STARTTLS.
    pub tls_ca_file: Option<PathBuf>,
    /// Connecting and each reply but the last must come within this (`timeout`).
    pub timeout: Duration,
    /// The reply after the message's end may take this long (`mda_timeout`: a server may
    /// run a spam filter before it answers).
    pub delivery_timeout: Duration,
    /// `deliver.auth_user` and its password: SMTP AUTH after EHLO (and STARTTLS).
    pub auth: Option<RelayAuth>,
}

impl Relay {
    /// `127.0.0.1:25 for alice (AUTH as relayuser)`.
    fn describe(&self) -> String {
        let mut s = format!("{} for {}", self.endpoint, self.recipients.join(", "));
        if let Some(auth) = &self.auth {
            s.push_str(&format!(" (AUTH as {})", auth.user));
        }
        s
    }
}

/// SMTP AUTH at the relay (`deliver.auth_user`, `deliver.auth_password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAuth {
    pub user: String,
    /// Never [`PasswordSource::Default`] or [`PasswordSource::Keyring`] (those are the
    /// POP3 password's).
    pub password: PasswordSource,
    /// `deliver.auth_plaintext`: AUTH is allowed without STARTTLS.
    pub plaintext: bool,
}

/// Where the server is and how the connection to it is secured: all that `pop3 probe HOST`
/// needs.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub tls_ca_file: Option<PathBuf>,
    /// SHA-256 pins: of the server certificate or of its public key.
    pub tls_fingerprints: Vec<[u8; 32]>,
    pub tls_min_version: Option<TlsVersion>,
    /// Client certificate and key (PEM).
    pub tls_client_cert: Option<(PathBuf, PathBuf)>,
    /// Connect, TLS handshake, and every read and write must finish within it.
    pub timeout: Duration,
}

/// Who logs in, and how.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: PasswordSource,
    pub auth: AuthMech,
    /// USER/PASS, PLAIN or LOGIN over an unencrypted connection are allowed.
    pub allow_plaintext_password: bool,
    /// With `auth = "xoauth2" | "oauthbearer"` and an `oauth` table: pop3 gets and refreshes
    /// the access token itself (`crate::oauth`) instead of reading it as the password.
    pub oauth: Option<crate::oauth::Settings>,
}

/// What is fetched, and what is left on or deleted from the server.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Leave messages on the server.
    pub keep: bool,
    /// With `keep`: delete messages first seen this long ago.
    pub delete_after: Option<Duration>,
    /// Leave bigger messages on the server (and say so).
    pub max_size: Option<u64>,
    /// Delete new messages bigger than this without fetching them (mpop's `killsize`).
    pub killsize: Option<u64>,
    /// Decide from each new message's header whether to fetch it (mpop's `filter`): exit 0
    /// fetch, 1 delete unfetched, 2 leave it and skip it from now on.
    pub filter: Option<CommandLine>,
    /// How long the filter may run for one message.
    pub filter_timeout: Duration,
}

/// How and where mail is delivered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub target: Target,
    /// Prepend a `Received:` header.
    pub add_received: bool,
    /// While a slow delivery (MDA, LMTP, SMTP) runs, send the POP3 server a NOOP this often,
    /// so that it does not drop an idle session (Microsoft 365 does after about a minute).
    pub keepalive: Duration,
}

/// One account, ready to fetch: four parts, each used by the module that needs it
/// (`net`/`session` the server, `session`/`secret` the login, `engine` the policy and the
/// delivery).
#[derive(Debug, Clone)]
pub struct Account {
    /// The name in the config (`[accounts.NAME]`), or `user@host` for a one-off account.
    pub name: String,
    pub server: Server,
    pub login: Login,
    pub policy: Policy,
    pub delivery: Delivery,
}

impl Default for Login {
    /// No user, no password source, `auth = "auto"`, no plaintext passwords: what
    /// `pop3 probe HOST` judges the server's mechanisms by.
    fn default() -> Login {
        Login {
            user: String::new(),
            password: PasswordSource::Default,
            auth: AuthMech::Auto,
            allow_plaintext_password: false,
            oauth: None,
        }
    }
}

impl Server {
    /// A server with every optional setting at its default (no pins, system roots, the
    /// default timeout).
    pub fn new(host: impl Into<String>, port: u16, tls: TlsMode, timeout: Duration) -> Server {
        Server {
            host: host.into(),
            port,
            tls,
            tls_ca_file: None,
            tls_fingerprints: Vec::new(),
            tls_min_version: None,
            tls_client_cert: None,
            timeout,
        }
    }
}

impl Account {
    /// The account's identity for state and lock files: `user@host:port`, made safe for a
    /// file name (anything but ASCII letters, digits, `.`, `-`, `_` and `@` becomes `_`,
    /// and a leading `.` too).
    pub fn state_key(&self) -> String {
        let raw = format!(
            "{}@{}:{}",
            self.login.user, self.server.host, self.server.port
        );
        let mut key: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if key.starts_with('.') {
            key.replace_range(0..1, "_");
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: &str, host: &str) -> Account {
        Account {
            name: "t".into(),
            server: Server::new(host, 995, TlsMode::Implicit, Duration::from_secs(60)),
            login: Login {
                user: user.into(),
                password: PasswordSource::Default,
                auth: AuthMech::Auto,
                allow_plaintext_password: false,
                oauth: None,
            },
            policy: Policy {
                keep: true,
                ..Policy::default()
            },
            delivery: Delivery {
                target: Target::Maildir("/tmp/m".into()),
                add_received: true,
                keepalive: Duration::from_secs(30),
            },
        }
    }

    #[test]
    fn state_key_is_a_safe_file_name() {
        assert_eq!(
            account("alice@example.com", "pop.example.com").state_key(),
            "alice@example.com@pop.example.com_995"
        );
        let k = account("../../etc/passwd", "h/x").state_key();
        assert!(!k.contains('/'), "{k}");
        assert!(!k.starts_with('.'), "{k}");
        assert_eq!(account("a b\n", "h").state_key(), "a_b_@h_995");
    }
}
