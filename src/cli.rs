//! The command line as plain data (clap derive). Doc comments here are the `--help` text.
//! Nothing in this module validates or merges; `cmd` turns these into `config::Overrides`.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::range;
use crate::config::{AuthMech, TlsMode};
use crate::proto::auth::Mechanism;

/// Fetch mail from POP3 servers into a Maildir, an mbox or a delivery command, safely: TLS
/// always verified, a message is marked seen only after it is on disk, and deleted only after
/// that.
#[derive(Debug, Parser)]
#[command(name = "pop3", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The config file [default: $XDG_CONFIG_HOME/pop3/config.toml]
    #[arg(
        short = 'c',
        long,
        global = true,
        env = "POP3_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Say what is fetched (-v); trace the protocol with secrets hidden (-vv)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The clap command with `--version` saying what mpop's does: the TLS library, the login
/// mechanisms, keyring support and the config file this run would read. (`-V` stays one
/// line.)
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    // clap takes a `&'static str` here (no "string" feature); this runs once per process.
    let text: &'static str = Box::leak(long_version().into_boxed_str());
    Cli::command().long_version(text)
}

/// The text of `pop3 --version` after the version number.
pub fn long_version() -> String {
    let mechanisms: Vec<&str> = Mechanism::ALL.iter().map(|m| m.config_name()).collect();
    let config = match std::env::var_os("POP3_CONFIG") {
        Some(p) => format!("{} (from POP3_CONFIG)", PathBuf::from(p).display()),
        None => crate::config::paths::default_config_file()
            .map_or_else(|e| format!("unknown ({e})"), |p| p.display().to_string()),
    };
    format!(
        "{}\n\
         TLS library: rustls 0.23 with the ring provider; roots: webpki-roots (Mozilla)\n\
         Login mechanisms: {}\n\
         Keyring: {}\n\
         Config file: {config}",
        env!("CARGO_PKG_VERSION"),
        mechanisms.join(", "),
        if cfg!(feature = "keyring") {
            "system keyring (Secret Service, Keychain)"
        } else {
            "not built in (--no-default-features)"
        },
    )
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch new mail (from every account when none is named)
    Fetch(FetchArgs),
    /// List the messages on the server: number, size, UIDL, new or seen, date, from, subject
    List(ListArgs),
    /// Count new messages and bytes without downloading (exit 0: new mail, 1: none)
    Check(CheckArgs),
    /// Show a server's capabilities, login mechanisms, TLS version and certificates
    Probe(ProbeArgs),
    /// Show the configured accounts with their resolved settings (secrets hidden)
    Accounts(AccountsArgs),
    /// Store or delete an account's password in the system keyring
    Password(PasswordArgs),
    /// Import accounts and the already-fetched messages from fetchmail, mpop or getmail
    Import(ImportArgs),
    /// Show, export, import or change an account's seen-state (the UIDLs already fetched)
    State(StateArgs),
    /// Sign in to an OAuth account (Gmail, Microsoft 365) and store its tokens
    Auth(AuthArgs),
    /// Set up an account by answering questions: finds the server, shows its certificate,
    /// tries the login and adds the account to the config file
    Init,
    /// Write the man page or shell completions (for packagers)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `pop3 check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Accounts to check [default: all]
    #[arg(value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Print one JSON object per account on stdout
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub one_off: OneOff,
}

/// `pop3 probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// An account name from the config, or HOST[:PORT] (then no login is tried)
    #[arg(value_name = "ACCOUNT|HOST[:PORT]")]
    pub target: String,

    /// How to encrypt the connection when probing a HOST [default: starttls on port 110,
    /// implicit otherwise]
    #[arg(long, value_enum, value_name = "MODE")]
    pub tls: Option<TlsMode>,

    /// Trust this CA certificate (PEM) instead of the public roots
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// `pop3 accounts`.
#[derive(Debug, Args)]
pub struct AccountsArgs {
    /// Only validate the config file (exit 78 on the first error)
    #[arg(long)]
    pub check: bool,

    /// Print the accounts as JSON
    #[arg(long)]
    pub json: bool,

    /// Print only the account names, one per line (for shell completion; nothing else is
    /// checked)
    #[arg(long, hide = true, conflicts_with_all = ["check", "json"])]
    pub names: bool,
}

/// `pop3 password`.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(subcommand)]
    pub action: PasswordAction,
}

/// What `pop3 password` does.
#[derive(Debug, Subcommand)]
pub enum PasswordAction {
    /// Store the password (asked on the terminal, or the first line of standard input)
    Set {
        /// The account, as named in the config
        account: String,
    },
    /// Delete the stored password
    Delete {
        /// The account, as named in the config
        account: String,
    },
}

/// `pop3 import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The program to move from
    #[arg(value_enum)]
    pub from: ImportFrom,

    /// Its config files [default: ~/.fetchmailrc; ~/.mpoprc; ~/.config/getmail/getmailrc or
    /// ~/.getmail/getmailrc] (getmail: one account per file, several files allowed)
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Print the accounts, the options left out and the UIDLs found; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Where the program keeps its seen-state: fetchmail's idfile, mpop's UIDLs file,
    /// getmail's directory [default: where the program itself looks]
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,

    /// Keep passwords found in the files in the config file (mode 0600) instead of trying
    /// the system keyring
    #[arg(long)]
    pub no_keyring: bool,
}

/// The programs `pop3 import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFrom {
    Fetchmail,
    Mpop,
    Getmail,
}

/// `pop3 state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The account, as named in the config
    pub account: String,

    #[command(subcommand)]
    pub action: StateAction,
}

/// What `pop3 state ACCOUNT` does.
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Print each seen UIDL with the time it was first seen
    List,
    /// Write the seen-state to standard output (for `pop3 state ACCOUNT import` elsewhere)
    Export,
    /// Merge a file written by `export` (a UIDL seen in both keeps the earlier time)
    Import {
        /// The exported file
        file: PathBuf,
    },
    /// Record every message now on the server as seen, without downloading any
    MarkAllSeen,
    /// Forget UIDLs: the next fetch takes those messages for new
    Forget {
        /// The UIDLs, as `list` shows them
        #[arg(required = true)]
        uids: Vec<String>,
    },
}

/// `pop3 auth`.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// The account, as named in the config (it needs an `oauth` table)
    pub account: String,

    /// Sign in with a code entered on any device (RFC 8628) [default when the provider has
    /// a device endpoint]
    #[arg(long, conflicts_with = "browser")]
    pub device: bool,

    /// Sign in in a browser on this machine, which returns to pop3 on 127.0.0.1 [default
    /// otherwise]
    #[arg(long)]
    pub browser: bool,
}

/// `pop3 generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,
}

/// What `pop3 generate` writes.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// The man page, pop3.1
    Man,
    /// Completions for a shell
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `pop3 fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Accounts to fetch, as named in the config [default: all]
    #[arg(value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Fetch every message, also those fetched before
    #[arg(long)]
    pub all: bool,

    /// Leave messages on the server (the default unless the config says keep = false)
    #[arg(long, conflicts_with = "delete")]
    pub keep: bool,

    /// Delete messages on the server once they are safely delivered
    #[arg(long)]
    pub delete: bool,

    /// Leave messages bigger than SIZE on the server (e.g. 25M, 500k; 1 to 1024G)
    #[arg(long, value_name = "SIZE", value_parser = parse_max_size)]
    pub max_size: Option<u64>,

    /// Fetch at most N messages per account in this run (N at least 1)
    #[arg(long, value_name = "N", value_parser = count_parser(range::LIMIT))]
    pub limit: Option<usize>,

    /// Connect, log in and print what would be fetched, skipped and deleted; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON summary object per account on stdout
    #[arg(long)]
    pub json: bool,

    /// Fetch up to N accounts in parallel (1 to 64)
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1,
          value_parser = count_parser(range::JOBS))]
    pub jobs: usize,

    /// Keep running: fetch every INTERVAL (e.g. 5m; 1s to 30d) until SIGTERM or SIGINT
    #[arg(long, value_name = "INTERVAL", value_parser = parse_daemon_interval)]
    pub daemon: Option<std::time::Duration>,

    #[command(flatten)]
    pub one_off: OneOff,
}

/// `pop3 list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The account to list, as named in the config [default: the first]
    #[arg(value_name = "ACCOUNT")]
    pub account: Option<String>,

    /// Print the listing as JSON lines, one object per message
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub one_off: OneOff,
}

/// Flags that describe or override an account, so no config file is needed:
/// `pop3 fetch --host pop.example.com --user alice --maildir ~/Mail`.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Account (overrides the config)")]
pub struct OneOff {
    /// The POP3 server
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// The server's port [default: 995 for implicit TLS, 110 otherwise]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// The login name
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// How to encrypt the connection
    #[arg(long, value_enum, value_name = "MODE")]
    pub tls: Option<TlsMode>,

    /// Trust this CA certificate (PEM) instead of the public roots
    #[arg(long, visible_alias = "tls-ca-file", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Trust the server's certificate by its SHA-256 fingerprint ("sha256:AB:CD:..."; as
    /// `pop3 probe` shows it), for a self-signed server; repeatable
    #[arg(long, value_name = "PIN", value_parser = parse_pin)]
    pub tls_fingerprint: Vec<[u8; 32]>,

    /// Run this command (with sh -c) and use the first line it prints as the password
    #[arg(long, value_name = "COMMAND")]
    pub password_command: Option<String>,

    /// The login mechanism: auto, scram-sha-256, scram-sha-1, cram-md5, apop, plain, login,
    /// user, xoauth2, oauthbearer [default: auto]
    #[arg(long, value_name = "MECH", value_parser = parse_auth)]
    pub auth: Option<AuthMech>,

    /// Give up when connecting, the TLS handshake or any reply takes longer (1s to 1h)
    /// [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,

    /// Deliver into this Maildir (created when missing)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["mbox", "mda"])]
    pub maildir: Option<PathBuf>,

    /// Deliver into this mbox file (created when missing)
    #[arg(long, value_name = "FILE", conflicts_with = "mda")]
    pub mbox: Option<PathBuf>,

    /// Deliver through this command (run with sh -c, message on stdin; %F is the sender)
    #[arg(long, value_name = "COMMAND")]
    pub mda: Option<String>,
}

// The ranges are those of the config (`config::range`); clap's error names the flag, and a
// usage error exits 64 (main.rs).

fn parse_daemon_interval(s: &str) -> Result<std::time::Duration, String> {
    range::DaemonInterval::parse(s).map(|d| d.0)
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    range::Timeout::parse(s).map(|d| d.0)
}

fn parse_pin(s: &str) -> Result<[u8; 32], String> {
    crate::config::parse_fingerprint(s).ok_or_else(|| {
        "not a SHA-256 fingerprint (64 hex digits, colons allowed, optional \"sha256:\" prefix)"
            .to_owned()
    })
}

fn parse_auth(s: &str) -> Result<AuthMech, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(AuthMech::Auto);
    }
    Mechanism::from_config_name(s)
        .map(AuthMech::Named)
        .ok_or_else(|| {
            let names: Vec<&str> = Mechanism::ALL.iter().map(|m| m.config_name()).collect();
            format!("expected auto or one of {}", names.join(", "))
        })
}

fn parse_max_size(s: &str) -> Result<u64, String> {
    range::MaxSize::parse(s).map(|n| n.0)
}

/// A count within `bounds` (clap says "0 is not in 1..=64").
fn count_parser(bounds: RangeInclusive<u64>) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(bounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flag_before_or_after_the_subcommand() {
        let a = Cli::try_parse_from(["pop3", "-c", "x.toml", "fetch"]).unwrap();
        let b = Cli::try_parse_from(["pop3", "fetch", "-c", "x.toml"]).unwrap();
        assert_eq!(a.config, b.config);
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
    }

    /// Parse `pop3 fetch ARGS`: the fetch arguments, or clap's error message.
    fn fetch(args: &[&str]) -> Result<FetchArgs, String> {
        let argv = ["pop3", "fetch"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Fetch(f),
                ..
            }) => Ok(f),
            Ok(other) => panic!("not fetch: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn daemon_interval_range_is_checked_at_both_ends() {
        use std::time::Duration;
        let ok = |v: &str| fetch(&["--daemon", v]).unwrap().daemon.unwrap();
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("30d"), Duration::from_secs(30 * 86400));
        for bad in ["0s", "999ms", "31d", "18446744073709551615s", "soon"] {
            let e = fetch(&["--daemon", bad]).unwrap_err();
            assert!(e.contains("--daemon"), "{bad}: {e}");
        }
        let e = fetch(&["--daemon", "31d"]).unwrap_err();
        assert!(e.contains("1s to 30d"), "{e}");
    }

    #[test]
    fn counts_and_sizes_have_ranges() {
        assert_eq!(fetch(&["--jobs", "64"]).unwrap().jobs, 64);
        assert_eq!(fetch(&[]).unwrap().jobs, 1);
        assert_eq!(fetch(&["--limit", "1"]).unwrap().limit, Some(1));
        assert_eq!(
            fetch(&["--limit", "4294967295"]).unwrap().limit,
            Some(4294967295)
        );
        assert_eq!(
            fetch(&["--max-size", "1024G"]).unwrap().max_size,
            Some(1 << 40)
        );
        assert_eq!(
            fetch(&["--port", "65535"]).unwrap().one_off.port,
            Some(65535)
        );
        for (flag, bad, range) in [
            ("--jobs", "0", "1..=64"),
            ("--jobs", "65", "1..=64"),
            ("--limit", "0", "1..=4294967295"),
            ("--limit", "4294967296", "1..=4294967295"),
            ("--limit", "99999999999999999999", "--limit"),
            ("--max-size", "0", "1 to 1024G"),
            ("--max-size", "1025G", "1 to 1024G"),
            ("--port", "0", "1..=65535"),
            ("--port", "65536", "--port"),
        ] {
            let e = fetch(&[flag, bad]).unwrap_err();
            assert!(e.contains(flag) && e.contains(range), "{flag} {bad}: {e}");
        }
    }

    #[test]
    fn keep_and_delete_conflict() {
        assert!(Cli::try_parse_from(["pop3", "fetch", "--keep", "--delete"]).is_err());
    }
}
