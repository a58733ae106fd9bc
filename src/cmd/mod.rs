//! Subcommands. This is the only place that prints results (stdout) and per-account errors
//! (stderr); `main` prints the error that ends a whole run.

/// `println!` for results: a closed stdout (`pop3 fetch --dry-run | head`) ends the run
/// quietly with success instead of a panic (STYLE.md rule 13).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cmd::write_stdout(format_args!($($arg)*))
    };
}

pub mod accounts;
pub mod auth;
pub mod check;
pub mod fetch;
pub mod generate;
pub mod import;
pub mod init;
pub mod list;
pub mod password;
pub mod probe;
pub mod state;

use std::process::ExitCode;

use crate::cli::{Cli, Command, OneOff};
use crate::config::{self, Config, Overrides};
use crate::error::{Error, ErrorKind, Result};

/// What every subcommand gets: the parsed global flags and the loaded config.
pub struct Context {
    pub config: Config,
    pub quiet: bool,
    pub verbose: u8,
}

/// Load the config and run the subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Generate(args) = &cli.command {
        return generate::run(args);
    }
    let config = config::load(cli.config.as_deref())?;
    let ctx = Context {
        config,
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    match cli.command {
        Command::Fetch(args) => fetch::run(&ctx, &args),
        Command::List(args) => list::run(&ctx, &args),
        Command::Check(args) => check::run(&ctx, &args),
        Command::Probe(args) => probe::run(&ctx, &args),
        Command::Accounts(args) => accounts::run(&ctx, &args),
        Command::Password(args) => password::run(&ctx, &args),
        Command::Import(args) => import::run(&ctx, &args),
        Command::Init => init::run(&ctx),
        Command::State(args) => state::run(&ctx, &args),
        Command::Auth(args) => auth::run(&ctx, &args),
        Command::Generate(_) => unreachable!("handled before the config is loaded"),
    }
}

/// The command-line flags as config overrides.
fn overrides(one_off: &OneOff, keep: Option<bool>, max_size: Option<u64>) -> Overrides {
    Overrides {
        host: one_off.host.clone(),
        port: one_off.port,
        user: one_off.user.clone(),
        tls: one_off.tls,
        ca_file: one_off.ca_file.clone(),
        tls_fingerprints: one_off.tls_fingerprint.clone(),
        password_command: one_off.password_command.clone(),
        auth: one_off.auth,
        timeout: one_off.timeout,
        maildir: one_off.maildir.clone(),
        mbox: one_off.mbox.clone(),
        mda: one_off.mda.clone(),
        keep,
        max_size,
        no_delivery: false,
    }
}

/// Which accounts a command runs on: the named ones, else the one-off account of the
/// flags, else every account in the config (in file order). `None` is the one-off account.
fn select(config: &Config, named: &[String], over: &Overrides) -> Result<Vec<Option<String>>> {
    if !named.is_empty() {
        return Ok(named.iter().cloned().map(Some).collect());
    }
    if over.is_one_off() {
        return Ok(vec![None]);
    }
    let all: Vec<Option<String>> = config
        .account_names()
        .into_iter()
        .map(|n| Some(n.to_owned()))
        .collect();
    if all.is_empty() {
        let file = config::paths::default_config_file()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "~/.config/pop3/config.toml".into());
        let shown = config
            .path
            .as_ref()
            .map_or(file, |p| p.display().to_string());
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "no accounts configured: add an [accounts.NAME] table to {shown}, or give \
                 --host, --user and --maildir"
            ),
        ));
    }
    Ok(all)
}

/// Accounts of the config that log in as the same user on the same server and port, and
/// so share one seen-state and one lock (`user@host:port`, DESIGN.md, State): a message
/// fetched by one of them is seen for all, so the others never deliver it. That is mpop's
/// rule too, and what keeps a duplicated account from fetching everything twice; but it is
/// worth a warning, since a second account with another destination gets nothing.
/// One (accounts, message) per shared login.
fn shared_logins(config: &Config) -> Vec<(Vec<String>, String)> {
    let over = Overrides {
        no_delivery: true,
        ..Overrides::default()
    };
    let mut by_key: Vec<(String, Vec<&str>)> = Vec::new();
    for name in config.account_names() {
        let Ok(account) = config.resolve(Some(name), &over) else {
            continue;
        };
        let key = format!(
            "{}@{}:{}",
            account.login.user, account.server.host, account.server.port
        );
        match by_key.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(name),
            None => by_key.push((key, vec![name])),
        }
    }
    by_key
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(key, names)| {
            let line = format!(
                "accounts {} log in as {key} and share one seen-state: a message fetched by \
                 one is not fetched by the others (merge them, or give each its own login)",
                names.join(", ")
            );
            (names.into_iter().map(str::to_owned).collect(), line)
        })
        .collect()
}

/// Print [`shared_logins`] warnings that concern any of `selected` (all when empty).
fn warn_shared_logins(ctx: &Context, selected: &[Option<String>]) {
    if ctx.quiet {
        return;
    }
    for (names, line) in shared_logins(&ctx.config) {
        if selected.iter().flatten().any(|n| names.contains(n)) {
            eprintln!("pop3: warning: {line}");
        }
    }
}

/// The `--json` object for an account that failed.
fn json_error(account: &str, err: &Error) -> serde_json::Value {
    serde_json::json!({
        "account": account,
        "ok": false,
        "error": { "code": err.kind().exit_code(), "message": err.chain() },
    })
}

/// Write one line of results to stdout; see [`outln!`].
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut line = std::fmt::format(args);
    line.push('\n');
    write_stdout_bytes(line.as_bytes());
}

/// The one writer of results: all of `bytes` to stdout, flushed. A closed stdout
/// (`pop3 list | head`, `pop3 generate man | true`) ends the run quietly with success, as
/// ripgrep does; any other failure ends it with exit 74.
pub(crate) fn write_stdout_bytes(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // Whoever reads our output has seen enough; everything is already durable.
            std::process::exit(0);
        }
        eprintln!("pop3: cannot write to stdout: {e}");
        std::process::exit(i32::from(ErrorKind::Io.exit_code()));
    }
}

/// Print one account's error as a single line on stderr.
fn report(account: &str, err: &Error) {
    eprintln!("pop3: {account}: {}", err.chain());
}
