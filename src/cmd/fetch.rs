//! `pop3 fetch`: run the engine for each selected account, report, choose the exit code
//! (that of the first account, in config order, that failed).

use std::process::ExitCode;

use super::{Context, overrides, report, select};
use crate::cli::FetchArgs;
use crate::engine::{self, FetchOptions};

/// Run `pop3 fetch`.
pub fn run(ctx: &Context, args: &FetchArgs) -> anyhow::Result<ExitCode> {
    let keep = match (args.keep, args.delete) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let over = overrides(&args.one_off, keep);
    let accounts = select(&ctx.config, &args.accounts, &over)?;
    let opts = FetchOptions { all: args.all };
    let mut exit = 0u8;
    for name in &accounts {
        let result = ctx
            .config
            .resolve(name.as_deref(), &over)
            .and_then(|account| engine::fetch(&account, &opts).map(|summary| (account, summary)));
        match result {
            Ok((account, s)) => {
                if ctx.verbose > 0 && !ctx.quiet {
                    eprintln!(
                        "pop3: {}: {} new message{} ({} bytes) fetched, {} deleted, {} on the server",
                        account.name,
                        s.fetched,
                        if s.fetched == 1 { "" } else { "s" },
                        s.bytes,
                        s.deleted,
                        s.listed
                    );
                }
            }
            Err(e) => {
                report(name.as_deref().unwrap_or("one-off account"), &e);
                if exit == 0 {
                    exit = e.kind().exit_code();
                }
            }
        }
    }
    Ok(ExitCode::from(exit))
}
