//! `pop3 import`: read the config and the seen-state of fetchmail, mpop or getmail6 and turn
//! them into our accounts and UIDL records.
//!
//! Everything here is a pure function over text (or bytes, for state files): no file is
//! opened, no clock is read. `cmd::import` reads the files, calls these parsers, writes the
//! config and feeds the UIDLs to `state::uidl::SeenState::import`. Every error names the file
//! and the line ([`ParseError`]); every option that has no equivalent is reported as a
//! [`Dropped`] with the reason, never silently ignored.

pub mod fetchmail;
pub mod getmail;
pub mod mpop;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::TlsMode;

/// The largest config file we read: rc files are a few KB; anything bigger is not one.
pub const MAX_RC_BYTES: u64 = 1 << 20;

/// The largest state file we read (about two million UIDLs).
pub const MAX_STATE_BYTES: u64 = 128 << 20;

/// An rc or state file that cannot be read as what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ParseError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(file: &Path, line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// A password as the other tool had it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// Written in the rc file: must not be copied into a file others can read.
    Literal(String),
    /// A command whose first output line is the password (`sh -c`).
    Command(String),
}

/// Where the messages went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deliver {
    Maildir(String),
    Mbox(String),
    /// Run with `sh -c`; `%F` is the envelope sender.
    Mda(String),
}

/// Where the other tool keeps the seen UIDLs of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeenFrom {
    /// fetchmail's idfile (one for all accounts): lines `USER@HOST UID`.
    Fetchmail { user: String, host: String },
    /// mpop's UIDLs file of this account (`%U`, `%H` already replaced; `~` not expanded),
    /// in which the list ` COUNT HOST USER` holds the UIDs.
    Mpop {
        file: String,
        host: String,
        user: String,
    },
    /// getmail's `oldmail-SERVER-PORT-USER` file, named relative to the getmail directory.
    Getmail { file_name: String },
}

/// One account as read from another tool's config, in our terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The account name to use (a TOML key; `cmd::import` makes it unique).
    pub name: String,
    /// Where the account was defined.
    pub file: PathBuf,
    pub line: usize,
    pub host: String,
    pub port: Option<u16>,
    pub user: String,
    pub tls: TlsMode,
    pub tls_ca_file: Option<String>,
    pub tls_fingerprint: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    /// The other tool sent the password unencrypted (USER/PASS, PLAIN or LOGIN without
    /// TLS): `allow_plaintext_password = true` keeps the account working, and the import
    /// warns about it ([`plaintext_warnings`]).
    pub allow_plaintext_password: bool,
    pub password: Option<Password>,
    /// A mechanism's config name (`auth = "..."`), `None` for auto.
    pub auth: Option<&'static str>,
    pub keep: bool,
    pub max_size: Option<u64>,
    /// Days after which a kept message is deleted.
    pub delete_after_days: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub add_received: Option<bool>,
    pub deliver: Option<Deliver>,
    pub seen: Option<SeenFrom>,
}

impl Imported {
    /// An account with our defaults where the other tool's are not known yet.
    fn new(file: &Path, line: usize, name: &str) -> Imported {
        Imported {
            name: name.to_owned(),
            file: file.to_path_buf(),
            line,
            host: String::new(),
            port: None,
            user: String::new(),
            tls: TlsMode::Implicit,
            tls_ca_file: None,
            tls_fingerprint: None,
            tls_cert_file: None,
            tls_key_file: None,
            allow_plaintext_password: false,
            password: None,
            auth: None,
            keep: true,
            max_size: None,
            delete_after_days: None,
            timeout_secs: None,
            add_received: None,
            deliver: None,
            seen: None,
        }
    }
}

/// An option of the other tool that pop3 does not carry over (or carries over changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub file: PathBuf,
    pub line: usize,
    /// The account it belonged to (empty for a global option).
    pub account: String,
    /// The option as written (`sslcertck`, `only_new off`).
    pub option: String,
    pub why: String,
}

/// What one rc file (or several getmailrc files) gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub accounts: Vec<Imported>,
    pub dropped: Vec<Dropped>,
}

impl Parsed {
    fn drop_option(&mut self, file: &Path, line: usize, account: &str, option: &str, why: &str) {
        self.dropped.push(Dropped {
            file: file.to_path_buf(),
            line,
            account: account.to_owned(),
            option: option.to_owned(),
            why: why.to_owned(),
        });
    }
}

/// Reject text that is not a config file at all (binary data): the error names the line.
pub fn check_text(file: &Path, bytes: &[u8]) -> Result<String, ParseError> {
    if bytes.len() as u64 > MAX_RC_BYTES {
        return Err(ParseError::new(
            file,
            1,
            format!(
                "{} bytes is too big for a config file (at most {MAX_RC_BYTES})",
                bytes.len()
            ),
        ));
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        let line = bytes[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(ParseError::new(
            file,
            line,
            "a NUL byte: this is not a text config file",
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        ParseError::new(file, line, "not UTF-8 text: this is not a config file")
    })
}

/// A name usable as `[accounts.NAME]` without quoting: letters, digits, `-`, `_`.
pub fn account_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "imported".to_owned()
    } else {
        name
    }
}

/// A TOML basic string, escaped.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// How the password of an account is to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPlacement {
    /// As `password = "..."` (the file must then be 0600).
    Literal,
    /// Stored in the keyring: `password.keyring = true`.
    Keyring,
}

/// The `[accounts.NAME]` table of `a`, with a comment naming where it came from.
pub fn to_toml(a: &Imported, placement: PasswordPlacement) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "\n# imported from {} line {}", a.file.display(), a.line);
    let _ = writeln!(t, "[accounts.{}]", a.name);
    let _ = writeln!(t, "host = {}", toml_string(&a.host));
    if let Some(port) = a.port {
        let _ = writeln!(t, "port = {port}");
    }
    let _ = writeln!(t, "user = {}", toml_string(&a.user));
    match &a.password {
        Some(Password::Literal(p)) => match placement {
            PasswordPlacement::Literal => {
                let _ = writeln!(t, "password = {}", toml_string(p));
            }
            PasswordPlacement::Keyring => t.push_str("password.keyring = true\n"),
        },
        Some(Password::Command(c)) => {
            let _ = writeln!(t, "password.command = {}", toml_string(c));
        }
        None => {}
    }
    if let Some(auth) = a.auth {
        let _ = writeln!(t, "auth = {}", toml_string(auth));
    }
    let tls = match a.tls {
        TlsMode::Implicit => "implicit",
        TlsMode::Starttls => "starttls",
        TlsMode::None => "none",
    };
    let _ = writeln!(t, "tls = \"{tls}\"");
    if a.allow_plaintext_password {
        t.push_str(
            "# The password crosses the network unencrypted, as it did before the import.\n\
             allow_plaintext_password = true\n",
        );
    }
    for (key, value) in [
        ("tls_ca_file", &a.tls_ca_file),
        ("tls_fingerprint", &a.tls_fingerprint),
        ("tls_cert_file", &a.tls_cert_file),
        ("tls_key_file", &a.tls_key_file),
    ] {
        if let Some(v) = value {
            let _ = writeln!(t, "{key} = {}", toml_string(v));
        }
    }
    if let Some(secs) = a.timeout_secs {
        let _ = writeln!(t, "timeout = \"{secs}s\"");
    }
    let _ = writeln!(t, "keep = {}", a.keep);
    if let Some(days) = a.delete_after_days {
        let _ = writeln!(t, "delete_after = \"{days}d\"");
    }
    if let Some(size) = a.max_size {
        let _ = writeln!(t, "max_size = \"{size}\"");
    }
    if let Some(r) = a.add_received {
        let _ = writeln!(t, "add_received = {r}");
    }
    match &a.deliver {
        Some(Deliver::Maildir(p)) => {
            let _ = writeln!(t, "deliver.maildir = {}", toml_string(p));
        }
        Some(Deliver::Mbox(p)) => {
            let _ = writeln!(t, "deliver.mbox = {}", toml_string(p));
        }
        Some(Deliver::Mda(c)) => {
            let _ = writeln!(t, "deliver.mda = {}", toml_string(c));
        }
        None => {}
    }
    t
}

/// Undo a leading `~/` against `home` (for reading state files the other tool names).
pub fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None if path == "~" => home.to_path_buf(),
        None => PathBuf::from(path),
    }
}

/// Whether `s` is a SHA-256 fingerprint (64 hex digits, colons allowed).
fn is_sha256_hex(s: &str) -> bool {
    let hex: String = s.chars().filter(|&c| c != ':').collect();
    hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether logging in with `auth` (a config name; `None`: the other tool's automatic
/// choice, which `plain_auto` says may fall back to USER/PASS) sends the password as it is.
fn reveals_password(auth: Option<&str>, plain_auto: bool) -> bool {
    use crate::proto::auth::Mechanism;
    match auth {
        None => plain_auto,
        Some(name) => Mechanism::from_config_name(name).is_some_and(|m| m.reveals_password()),
    }
}

/// Set `allow_plaintext_password` on an account without TLS whose login sends the password
/// unencrypted, so that the imported account works as it did (our config refuses that
/// combination otherwise).
fn carry_plaintext(a: &mut Imported, plain_auto: bool) {
    a.allow_plaintext_password = a.tls == TlsMode::None && reveals_password(a.auth, plain_auto);
}

/// Put a warning for every account that sends its password unencrypted at the top of the
/// list of what changed, so that it is the first thing the user reads.
pub fn plaintext_warnings(parsed: &mut Parsed, tool: &str) {
    let warnings: Vec<Dropped> = parsed
        .accounts
        .iter()
        .filter(|a| a.allow_plaintext_password)
        .map(|a| Dropped {
            file: a.file.clone(),
            line: a.line,
            account: a.name.clone(),
            option: "WARNING: no TLS".to_owned(),
            why: format!(
                "this account sends its password unencrypted, as it did with {tool} \
                 (allow_plaintext_password = true); consider tls = \"starttls\" or \
                 tls = \"implicit\" if {} offers TLS",
                a.host
            ),
        })
        .collect();
    parsed.dropped.splice(0..0, warnings);
}

/// A POP3 mechanism name of the other tools, as our config name; `None` when we have no
/// such mechanism.
fn auth_name(name: &str) -> Option<&'static str> {
    use crate::proto::auth::Mechanism;
    Mechanism::from_config_name(name).map(|m| m.config_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_huge_files_are_refused_with_the_line() {
        let f = Path::new("rc");
        let e = check_text(f, b"poll a\nuser b\n\0\x01").unwrap_err();
        assert_eq!(
            e.to_string(),
            "rc:3: a NUL byte: this is not a text config file"
        );
        let e = check_text(f, b"a\nb\n\xff\xfe").unwrap_err();
        assert_eq!(e.line, 3);
        let big = vec![b'#'; MAX_RC_BYTES as usize + 1];
        assert!(check_text(f, &big).unwrap_err().message.contains("too big"));
        assert_eq!(check_text(f, b"ok\n").unwrap(), "ok\n");
    }

    #[test]
    fn account_names_are_bare_toml_keys() {
        assert_eq!(account_name("pop.example.com"), "pop-example-com");
        assert_eq!(account_name("work_1"), "work_1");
        assert_eq!(account_name("..."), "imported");
    }

    #[test]
    fn rendered_tables_load_as_toml_with_escapes() {
        let mut a = Imported::new(Path::new("/h/.mpoprc"), 3, "work");
        a.host = "pop.example.com".into();
        a.user = "al\"ice".into();
        a.password = Some(Password::Literal("p\\w\"d".into()));
        a.deliver = Some(Deliver::Mda("procmail -d alice".into()));
        a.max_size = Some(1000);
        let text = to_toml(&a, PasswordPlacement::Literal);
        let v: toml::Table = text.parse().unwrap();
        let acc = &v["accounts"]["work"];
        assert_eq!(acc["user"].as_str(), Some("al\"ice"));
        assert_eq!(acc["password"].as_str(), Some("p\\w\"d"));
        let text = to_toml(&a, PasswordPlacement::Keyring);
        assert!(!text.contains("p\\\\w"), "{text}");
        assert!(text.contains("password.keyring = true"), "{text}");
    }
}
