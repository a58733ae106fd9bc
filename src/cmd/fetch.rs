//! `pop3 fetch`: run the engine for each selected account, report, choose the exit code
//! (that of the first account, in config order, that failed).

use std::process::ExitCode;

use super::{Context, overrides, report, select};
use crate::cli::FetchArgs;
use crate::engine::{self, FetchOptions, Summary};

/// Run `pop3 fetch`.
pub fn run(ctx: &Context, args: &FetchArgs) -> anyhow::Result<ExitCode> {
    let keep = match (args.keep, args.delete) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let over = overrides(&args.one_off, keep, args.max_size);
    let accounts = select(&ctx.config, &args.accounts, &over)?;
    let opts = FetchOptions {
        all: args.all,
        limit: args.limit,
        dry_run: args.dry_run,
    };
    let mut exit = 0u8;
    for name in &accounts {
        let result = ctx
            .config
            .resolve(name.as_deref(), &over)
            .and_then(|account| engine::fetch(&account, &opts).map(|s| (account, s)));
        match result {
            Ok((account, s)) if opts.dry_run => print_plan(&account.name, &s),
            Ok((account, s)) => {
                if ctx.verbose > 0 && !ctx.quiet {
                    eprintln!("pop3: {}: {}", account.name, describe(&s));
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

/// One line for `-v`: what happened.
fn describe(s: &Summary) -> String {
    let mut text = format!(
        "{} new message{} ({} bytes) fetched, {} deleted, {} on the server",
        s.fetched,
        if s.fetched == 1 { "" } else { "s" },
        s.bytes,
        s.deleted,
        s.listed
    );
    if !s.too_big.is_empty() {
        text.push_str(&format!(", {} left as too big", s.too_big.len()));
    }
    if s.deferred > 0 {
        text.push_str(&format!(", {} left for the next run (--limit)", s.deferred));
    }
    text
}

/// `--dry-run`: the plan on stdout.
fn print_plan(account: &str, s: &Summary) {
    println!("{account}: {} messages on the server", s.listed);
    for m in &s.would_fetch {
        println!("  would fetch  {:>5} {:>10} {}", m.number, m.size, m.uid);
    }
    for m in &s.too_big {
        println!("  too big      {:>5} {:>10} {}", m.number, m.size, m.uid);
    }
    for m in &s.would_delete {
        println!("  would delete {:>5} {:>10} {}", m.number, m.size, m.uid);
    }
    if s.deferred > 0 {
        println!("  {} more new messages beyond --limit", s.deferred);
    }
}
