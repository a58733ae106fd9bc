//! `pop3 check`: count new messages and bytes without downloading. Exit 0 when any account
//! has new mail, 1 when none has, or the first failing account's code.

use std::process::ExitCode;

use serde_json::json;

use super::{Context, overrides, report, select};
use crate::cli::CheckArgs;
use crate::config::Overrides;
use crate::engine;

/// Run `pop3 check`.
pub fn run(ctx: &Context, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let over = Overrides {
        no_delivery: true,
        ..overrides(&args.one_off, None, None)
    };
    let accounts = select(&ctx.config, &args.accounts, &over)?;
    let mut any_new = false;
    let mut failed = None;
    for name in &accounts {
        let label = name.as_deref().unwrap_or("one-off account");
        let result = ctx
            .config
            .resolve(name.as_deref(), &over)
            .and_then(|a| engine::check(&a).map(|c| (a, c)));
        match result {
            Ok((account, c)) => {
                any_new |= c.new > 0;
                if args.json {
                    outln!(
                        "{}",
                        json!({
                            "account": account.name,
                            "ok": true,
                            "listed": c.listed,
                            "new": c.new,
                            "new_bytes": c.new_bytes,
                            "too_big": c.too_big,
                        })
                    );
                } else if !ctx.quiet {
                    outln!(
                        "{}: {} new message{} ({} bytes as the server counts them), {} on the server",
                        account.name,
                        c.new,
                        if c.new == 1 { "" } else { "s" },
                        c.new_bytes,
                        c.listed
                    );
                }
            }
            Err(e) => {
                if args.json {
                    outln!("{}", super::json_error(label, &e));
                }
                report(label, &e);
                failed.get_or_insert(e.kind().exit_code());
            }
        }
    }
    Ok(ExitCode::from(match failed {
        Some(code) => code,
        None if any_new => 0,
        None => 1,
    }))
}
