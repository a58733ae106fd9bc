//! `pop3 state ACCOUNT list|export|import FILE|mark-all-seen|forget UID...`: the account's
//! seen-state, so that a new machine or a reinstall never fetches old mail again.
//!
//! Every change holds the account lock (`state::lock`), like a fetch.

use std::process::ExitCode;

use super::Context;
use crate::cli::{StateAction, StateArgs};
use crate::config::{Account, Overrides};
use crate::engine::{self, state_paths};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::Uid;
use crate::state::lock::AccountLock;
use crate::state::uidl::SeenState;

/// Run `pop3 state`.
pub fn run(ctx: &Context, args: &StateArgs) -> anyhow::Result<ExitCode> {
    let account = ctx
        .config
        .resolve(Some(&args.account), &Overrides::default())?;
    let (state_path, lock_path) = state_paths(&account)?;
    match &args.action {
        StateAction::List => {
            let state = SeenState::load(&state_path)?;
            for (uid, time) in state.entries() {
                outln!("{}  {uid}", show_time(time));
            }
        }
        StateAction::Export => {
            let state = SeenState::load(&state_path)?;
            let mut buf = b"pop3-uidl 1\n".to_vec();
            for (uid, time) in state.entries() {
                buf.extend_from_slice(time.to_string().as_bytes());
                buf.push(b' ');
                crate::proto::hex::percent_encode(&mut buf, uid.as_bytes());
                buf.push(b'\n');
            }
            super::write_stdout_bytes(&buf);
        }
        StateAction::Import { file } => {
            // The export is a state file: the same parser, with errors naming file and line.
            let source = SeenState::load(file)?;
            if source.is_empty() && !file.exists() {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!("cannot import {}: no such file", file.display()),
                )
                .into());
            }
            let items: Vec<(Uid, i64)> = source
                .entries()
                .into_iter()
                .map(|(u, t)| (u.clone(), t))
                .collect();
            let _lock = AccountLock::acquire(&lock_path)?;
            let mut state = SeenState::load(&state_path)?;
            let added = state.import(&items)?;
            say(
                ctx,
                &format!(
                    "{}: imported {} UIDLs from {} ({added} new)",
                    account.name,
                    items.len(),
                    file.display()
                ),
            );
        }
        StateAction::MarkAllSeen => {
            let added = mark_all_seen(&account, &lock_path, &state_path)?;
            say(
                ctx,
                &format!(
                    "{}: {added} messages on the server newly marked as seen (nothing was \
                     downloaded)",
                    account.name
                ),
            );
        }
        StateAction::Forget { uids } => {
            let parsed = uids
                .iter()
                .map(|u| parse_uid(u))
                .collect::<Result<Vec<Uid>>>()?;
            let _lock = AccountLock::acquire(&lock_path)?;
            let mut state = SeenState::load(&state_path)?;
            let removed = state.forget(&parsed)?;
            say(
                ctx,
                &format!(
                    "{}: forgot {removed} of {} UIDLs; the next fetch takes them for new",
                    account.name,
                    parsed.len()
                ),
            );
            if removed < parsed.len() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Log in, list, and record every listed UIDL as seen now. Returns how many were new.
fn mark_all_seen(
    account: &Account,
    lock_path: &std::path::Path,
    state_path: &std::path::Path,
) -> Result<usize> {
    let _lock = AccountLock::acquire(lock_path)?;
    let mut state = SeenState::load(state_path)?;
    let keep = &mut |_: crate::proto::MessageNumber, uid: &Uid| Ok(!state.contains(uid));
    let (connected, listed) = crate::session::login_and_list(account, keep)?;
    connected.session.quit()?;
    let listing = listed.messages;
    let fresh: Vec<&Uid> = listing
        .iter()
        .map(|m| &m.uid)
        .filter(|u| !state.contains(u))
        .collect();
    let n = fresh.len();
    state.record(&fresh, engine::now_unix())?;
    Ok(n)
}

/// A UIDL as `list` shows it (`%XX` for bytes outside printable ASCII).
fn parse_uid(shown: &str) -> Result<Uid> {
    let bad = || {
        Error::new(
            ErrorKind::Usage,
            format!("{shown:?} is not a UIDL (1 to 70 printable characters, %XX for others)"),
        )
    };
    let bytes = shown.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes
                .get(i + 1)
                .and_then(|&h| crate::proto::hex::digit_value(h));
            let lo = bytes
                .get(i + 2)
                .and_then(|&l| crate::proto::hex::digit_value(l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(bad());
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Uid::new(&out).ok_or_else(bad)
}

/// A Unix time as `2026-01-02T03:04:05Z`.
fn show_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// A message for the user on stderr, unless `--quiet`.
fn say(ctx: &Context, msg: &str) {
    if !ctx.quiet {
        eprintln!("pop3: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_read_as_list_shows_them() {
        let u = parse_uid("a%25b%FF").unwrap();
        assert_eq!(u.as_bytes(), b"a%b\xff");
        assert_eq!(u.to_string(), "a%25b%FF");
        assert!(parse_uid("a%2").is_err());
        assert!(parse_uid("").is_err());
        assert_eq!(show_time(0), "1970-01-01T00:00:00Z");
    }
}
