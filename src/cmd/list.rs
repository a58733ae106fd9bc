//! `pop3 list`: the messages on the server with their number, size, UIDL and whether they
//! are new (not in the seen-state).

use std::io::Write;
use std::process::ExitCode;

use super::{Context, overrides, select};
use crate::cli::ListArgs;
use crate::engine::{self, Connected};
use crate::error::{Error, ErrorKind};
use crate::secret;
use crate::state::uidl::SeenState;

/// Run `pop3 list`.
pub fn run(ctx: &Context, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let over = overrides(&args.one_off, None, None);
    let named: Vec<String> = args.account.iter().cloned().collect();
    let name = select(&ctx.config, &named, &over)?
        .into_iter()
        .next()
        .flatten();
    let account = ctx.config.resolve(name.as_deref(), &over)?;
    let (state_path, _) = engine::state_paths(&account)?;
    let state = SeenState::load(&state_path)?;
    let password = secret::obtain(&account)?;
    let Connected {
        mut session, caps, ..
    } = engine::login(&account, &password)?;
    drop(password);
    let listing = session.listing(caps.pipelining)?;
    session.quit()?;

    let mut out = std::io::stdout().lock();
    let width = listing.last().map_or(1, |m| m.number.to_string().len());
    let mut print = || -> std::io::Result<()> {
        writeln!(
            out,
            "#{:>w$} {:>10} {:<24} STATE",
            "NUM",
            "SIZE",
            "UIDL",
            w = width.max(3)
        )?;
        for m in &listing {
            let state = if state.contains(&m.uid) {
                "seen"
            } else {
                "new"
            };
            writeln!(
                out,
                " {:>w$} {:>10} {:<24} {state}",
                m.number,
                m.size.0,
                m.uid.to_string(),
                w = width.max(3)
            )?;
        }
        out.flush()
    };
    match print() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Error::with_source(ErrorKind::Io, "cannot write to stdout", e).into()),
    }
}
