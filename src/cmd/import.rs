//! `pop3 import fetchmail|mpop|getmail [FILE...]`: the other program's accounts into our
//! config, and its seen UIDLs into our state, so that the first `pop3 fetch` downloads
//! nothing that program already fetched.
//!
//! Order, so that a bad file changes nothing: read and parse every rc file and every state
//! file first (errors name file and line), build the new config text and check that it
//! loads and resolves, then write the config (atomically, mode 0600), then import the
//! UIDLs under each account's lock. Passwords written in the rc files go to the keyring
//! when one is reachable, else into the 0600 config; the user is told which.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Context;
use crate::cli::{ImportArgs, ImportFrom};
use crate::config::{self, Overrides, paths};
use crate::engine::state_paths;
use crate::error::{Error, ErrorKind, Result};
use crate::import::{
    self, Deliver, Imported, ParseError, Parsed, Password, PasswordPlacement, SeenFrom,
};
use crate::proto::Uid;
use crate::state::lock::AccountLock;
use crate::state::uidl::SeenState;

/// Run `pop3 import`.
pub fn run(ctx: &Context, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let home = paths::expand_tilde("~")?;
    let files = if args.files.is_empty() {
        vec![default_rc(args.from, &home)]
    } else {
        args.files.clone()
    };
    let (mut parsed, idfile) = parse_files(args.from, &files)?;
    let tool = match args.from {
        ImportFrom::Fetchmail => "fetchmail",
        ImportFrom::Mpop => "mpop",
        ImportFrom::Getmail => "getmail",
    };
    import::plaintext_warnings(&mut parsed, tool);
    if parsed.accounts.is_empty() {
        print_dropped(&parsed);
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "no POP3 account found in {}",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into());
    }
    let config_path = match &ctx.config.path {
        Some(p) => p.clone(),
        None => paths::default_config_file()?,
    };
    let existing = match std::fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::with_source(
                ErrorKind::Config,
                format!("cannot read config file {}", config_path.display()),
                e,
            )
            .into());
        }
    };
    fill_gaps(&mut parsed);
    unique_names(&mut parsed, &ctx.config.account_names());

    // The seen-state, read before anything is written.
    let seen: Vec<SeenItems> = parsed
        .accounts
        .iter()
        .map(|a| read_seen(args, a, idfile.as_deref(), &files, &home))
        .collect::<Result<_>>()?;

    // Check the result loads; then, for literal passwords, try the keyring.
    let mut placement = vec![PasswordPlacement::Literal; parsed.accounts.len()];
    let text = render(&existing, &parsed, &placement);
    let accounts = check_config(&config_path, &text, &parsed)?;
    let has_literal: Vec<bool> = parsed
        .accounts
        .iter()
        .map(|a| matches!(a.password, Some(Password::Literal(_))))
        .collect();
    if !args.dry_run && !args.no_keyring && keyring_reachable() {
        for (i, a) in parsed.accounts.iter().enumerate() {
            if let Some(Password::Literal(p)) = &a.password {
                let secret = crate::secret::Secret::new(p.clone());
                match crate::keyring::set(&accounts[i], &secret) {
                    Ok(()) => placement[i] = PasswordPlacement::Keyring,
                    Err(e) => eprintln!(
                        "pop3: {}: keyring not used ({}); the password goes into the config \
                         file (mode 0600)",
                        a.name,
                        e.chain()
                    ),
                }
            }
        }
    }
    let text = render(&existing, &parsed, &placement);
    check_config(&config_path, &text, &parsed)?;

    print_dropped(&parsed);
    print_diff(&config_path, &existing, &text);
    for (a, s) in parsed.accounts.iter().zip(&seen) {
        let what = match &s.source {
            Some(path) => format!("{} seen UIDLs in {}", s.items.len(), path.display()),
            None => "no seen-state found".to_owned(),
        };
        eprintln!(
            "pop3: {}: {what}{}",
            a.name,
            if args.dry_run { " (dry run)" } else { "" }
        );
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }

    crate::fsutil::write_atomic(&config_path, text.as_bytes()).map_err(|e| {
        Error::with_source(
            ErrorKind::Io,
            format!("cannot write config file {}", config_path.display()),
            e,
        )
    })?;
    eprintln!(
        "pop3: wrote {} account(s) to {} (mode 0600)",
        parsed.accounts.len(),
        config_path.display()
    );
    for (i, a) in parsed.accounts.iter().enumerate() {
        if has_literal[i] {
            match placement[i] {
                PasswordPlacement::Keyring => eprintln!(
                    "pop3: {}: the password from {} is now in the system keyring \
                     (password.keyring = true); remove it from that file",
                    a.name,
                    a.file.display()
                ),
                PasswordPlacement::Literal => eprintln!(
                    "pop3: {}: the password from {} is in {} (readable only by you); \
                     `pop3 password set {}` and password.keyring = true keep it in the keyring \
                     instead",
                    a.name,
                    a.file.display(),
                    config_path.display(),
                    a.name
                ),
            }
        }
    }

    // The UIDLs, each account under its lock.
    let config = config::load(Some(&config_path))?;
    for (a, s) in parsed.accounts.iter().zip(seen) {
        let account = config.resolve(Some(&a.name), &Overrides::default())?;
        if s.source.is_none() {
            eprintln!(
                "pop3: {}: no seen-state to carry over: the first fetch takes every message on \
                 the server for new (`pop3 state {} mark-all-seen` marks them seen without \
                 downloading)",
                a.name, a.name
            );
            continue;
        }
        let (state_path, lock_path) = state_paths(&account)?;
        let _lock = AccountLock::acquire(&lock_path)?;
        let mut state = SeenState::load(&state_path)?;
        let added = state.import(&s.items)?;
        eprintln!(
            "pop3: {}: {added} seen UIDLs imported into {}{}",
            a.name,
            state_path.display(),
            if s.skipped > 0 {
                format!(" ({} UIDLs not valid in POP3 were left out)", s.skipped)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the program reads its config by default.
fn default_rc(from: ImportFrom, home: &Path) -> PathBuf {
    match from {
        ImportFrom::Fetchmail => std::env::var_os("FETCHMAILHOME")
            .map_or_else(|| home.to_path_buf(), PathBuf::from)
            .join(".fetchmailrc"),
        ImportFrom::Mpop => home.join(".mpoprc"),
        ImportFrom::Getmail => {
            let xdg = home.join(".config/getmail");
            if xdg.is_dir() {
                xdg.join("getmailrc")
            } else {
                home.join(".getmail/getmailrc")
            }
        }
    }
}

/// Read a file of at most `limit` bytes; errors name the file.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| {
        Error::with_source(
            ErrorKind::Config,
            format!("cannot read {}", path.display()),
            e,
        )
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if meta.len() > limit {
        return Err(parse_error(ParseError::new(
            path,
            1,
            format!(
                "{} bytes is more than such a file can be ({limit})",
                meta.len()
            ),
        )));
    }
    std::fs::read(path).map_err(io)
}

fn parse_error(e: ParseError) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("{e}; nothing was imported or written"),
    )
}

/// Parse every rc file; fetchmail's `set idfile` comes back too.
fn parse_files(from: ImportFrom, files: &[PathBuf]) -> Result<(Parsed, Option<String>)> {
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_owned());
    let mut all = Parsed::default();
    let mut idfile = None;
    for file in files {
        let bytes = read_limited(file, import::MAX_RC_BYTES)?;
        let text = import::check_text(file, &bytes).map_err(parse_error)?;
        let parsed = match from {
            ImportFrom::Fetchmail => {
                let rc = import::fetchmail::parse(file, &text, &login).map_err(parse_error)?;
                idfile = rc.idfile.or(idfile);
                rc.parsed
            }
            ImportFrom::Mpop => import::mpop::parse(file, &text).map_err(parse_error)?,
            ImportFrom::Getmail => import::getmail::parse(file, &text).map_err(parse_error)?,
        };
        all.accounts.extend(parsed.accounts);
        all.dropped.extend(parsed.dropped);
    }
    Ok((all, idfile))
}

/// Give every account a delivery target (an rc without one still has to load).
fn fill_gaps(parsed: &mut Parsed) {
    for a in &mut parsed.accounts {
        if a.deliver.is_none() {
            a.deliver = Some(Deliver::Maildir("~/Maildir".to_owned()));
            parsed.dropped.push(import::Dropped {
                file: a.file.clone(),
                line: a.line,
                account: a.name.clone(),
                option: "(delivery)".to_owned(),
                why: "none that pop3 can use: set to deliver.maildir = \"~/Maildir\"; change it"
                    .to_owned(),
            });
        }
    }
}

/// Rename accounts whose name is taken (by the config or an earlier import): `name-2`, ...
fn unique_names(parsed: &mut Parsed, existing: &[&str]) {
    let mut taken: HashSet<String> = existing.iter().map(|s| (*s).to_owned()).collect();
    for a in &mut parsed.accounts {
        let base = a.name.clone();
        let mut n = 2;
        while taken.contains(&a.name) {
            a.name = format!("{base}-{n}");
            n += 1;
        }
        if a.name != base {
            for d in &mut parsed.dropped {
                if d.account == base && d.file == a.file {
                    d.account = a.name.clone();
                }
            }
        }
        taken.insert(a.name.clone());
    }
}

/// The whole new config text: the old one, then the imported tables.
fn render(existing: &str, parsed: &Parsed, placement: &[PasswordPlacement]) -> String {
    let mut text = existing.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for (a, p) in parsed.accounts.iter().zip(placement) {
        text.push_str(&import::to_toml(a, *p));
    }
    text
}

/// Load `text` as the config would be loaded and resolve every imported account.
fn check_config(
    config_path: &Path,
    text: &str,
    parsed: &Parsed,
) -> Result<Vec<crate::config::Account>> {
    let names: Vec<&str> = parsed.accounts.iter().map(|a| a.name.as_str()).collect();
    config::check_new_text(config_path, text, &names)
}

/// Whether a keyring could answer: built with it and a session bus is there.
fn keyring_reachable() -> bool {
    cfg!(feature = "keyring") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
}

/// The UIDLs of one account from the other program's state.
struct SeenItems {
    /// The file they came from; `None` when there is none.
    source: Option<PathBuf>,
    items: Vec<(Uid, i64)>,
    /// UIDs that are not valid POP3 UIDLs (left out).
    skipped: usize,
}

fn read_seen(
    args: &ImportArgs,
    a: &Imported,
    idfile: Option<&str>,
    files: &[PathBuf],
    home: &Path,
) -> Result<SeenItems> {
    let now = crate::engine::now_unix();
    let none = SeenItems {
        source: None,
        items: Vec::new(),
        skipped: 0,
    };
    let Some(seen) = &a.seen else {
        return Ok(none);
    };
    let path = match (seen, &args.state) {
        (SeenFrom::Getmail { file_name }, Some(dir)) => dir.join(file_name),
        (_, Some(p)) => p.clone(),
        (SeenFrom::Fetchmail { .. }, None) => match idfile {
            Some(f) => import::expand_home(f, home),
            None => std::env::var_os("FETCHMAILHOME")
                .map_or_else(|| home.to_path_buf(), PathBuf::from)
                .join(".fetchids"),
        },
        (SeenFrom::Mpop { file, .. }, None) => import::expand_home(file, home),
        (SeenFrom::Getmail { file_name }, None) => {
            // getmail keeps its state beside its rc files (its --getmaildir).
            let dir = a
                .file
                .parent()
                .map(Path::to_path_buf)
                .or_else(|| {
                    files
                        .first()
                        .and_then(|f| f.parent().map(Path::to_path_buf))
                })
                .unwrap_or_default();
            dir.join(file_name)
        }
    };
    if !path.exists() {
        return Ok(none);
    }
    let bytes = read_limited(&path, import::MAX_STATE_BYTES)?;
    let raw: Vec<(String, i64)> = match seen {
        SeenFrom::Fetchmail { user, host } => {
            let text = String::from_utf8_lossy(&bytes);
            import::fetchmail::parse_ids(&path, &text)
                .map_err(parse_error)?
                .into_iter()
                .filter(|(u, h, _)| u == user && h.eq_ignore_ascii_case(host))
                .map(|(_, _, uid)| (uid, now))
                .collect()
        }
        SeenFrom::Mpop { host, user, .. } => {
            let text = String::from_utf8_lossy(&bytes);
            import::mpop::parse_uidls(&path, &text)
                .map_err(parse_error)?
                .into_iter()
                .filter(|(h, u, _)| h == host && u == user)
                .flat_map(|(_, _, uids)| uids)
                .map(|uid| (uid, now))
                .collect()
        }
        SeenFrom::Getmail { .. } => {
            import::getmail::parse_oldmail(&path, &bytes).map_err(parse_error)?
        }
    };
    let mut items = Vec::with_capacity(raw.len());
    let mut skipped = 0;
    for (uid, time) in raw {
        match Uid::new(uid.as_bytes()) {
            Some(u) => items.push((u, time)),
            None => skipped += 1,
        }
    }
    Ok(SeenItems {
        source: Some(path),
        items,
        skipped,
    })
}

/// The options not carried over, on stderr.
fn print_dropped(parsed: &Parsed) {
    if parsed.dropped.is_empty() {
        return;
    }
    eprintln!("pop3: not carried over (or changed):");
    for d in &parsed.dropped {
        let account = if d.account.is_empty() {
            String::new()
        } else {
            format!("[{}] ", d.account)
        };
        eprintln!(
            "  {}:{}: {account}{}: {}",
            d.file.display(),
            d.line,
            d.option,
            d.why
        );
    }
}

/// The change to the config as a unified diff (only lines are added), on stdout.
fn print_diff(path: &Path, old: &str, new: &str) {
    let old_lines = old.lines().count();
    let added: Vec<&str> = new.lines().skip(old_lines).collect();
    let from = if old.is_empty() {
        "/dev/null".to_owned()
    } else {
        path.display().to_string()
    };
    let mut out = format!(
        "--- {from}\n+++ {}\n@@ -{},0 +{},{} @@\n",
        path.display(),
        old_lines,
        old_lines + 1,
        added.len()
    );
    for line in added {
        out.push('+');
        // The diff goes to a terminal or a file of any mode: never the password itself.
        if line.starts_with("password = ") {
            out.push_str("password = \"***\"");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    super::write_stdout_bytes(out.as_bytes());
}
