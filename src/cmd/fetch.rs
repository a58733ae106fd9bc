//! `pop3 fetch`: run the engine for each selected account (in parallel with `--jobs`, again
//! and again with `--daemon`), report, and choose the exit code: that of the first account,
//! in config order, that failed.
//!
//! Signals: the first SIGTERM or SIGINT lets every account finish the message in flight,
//! record it and QUIT, then the run exits 75 (0 when `--daemon` was waiting between rounds
//! or its round finished anyway: that is a clean stop); a second one exits at once (still
//! safe: a message is recorded only after it is durable).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Context, overrides, report, select};
use crate::cli::FetchArgs;
use crate::config::range::{DaemonInterval, show_size};
use crate::config::{Account, Overrides};
use crate::engine::{self, FetchOptions, Notice, Progress, Summary, Unfetched};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::sanitize::sanitize;
use crate::state::too_big::Reported;
use crate::ui::progress::{self, Bars};

/// Exit code when a signal ended the run (EX_TEMPFAIL: run again later).
const SIGNALLED: u8 = ErrorKind::Temporary.exit_code();

/// Run `pop3 fetch`.
pub fn run(ctx: &Context, args: &FetchArgs) -> anyhow::Result<ExitCode> {
    let keep = match (args.keep, args.delete) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let over = overrides(&args.one_off, keep, args.max_size);
    let names = select(&ctx.config, &args.accounts, &over)?;
    super::warn_shared_logins(ctx, &names);
    if args.jobs == 0 {
        return Err(Error::new(ErrorKind::Usage, "--jobs must be at least 1").into());
    }
    let stop = install_signal_handlers()?;
    let opts = FetchOptions {
        all: args.all,
        limit: args.limit,
        dry_run: args.dry_run,
        stop: Some(stop.clone()),
    };
    let bars = (progress::wanted(ctx.quiet) && !args.json && !args.dry_run).then(Bars::new);
    let reporter = Reporter {
        bars: bars.as_ref(),
        quiet: ctx.quiet,
        verbose: ctx.verbose,
    };
    let progress: &dyn Progress = &reporter;
    let out = Output {
        ctx,
        json: args.json,
        dry_run: args.dry_run,
        bars: bars.as_ref(),
    };
    let Some(interval) = args.daemon else {
        let results = run_round(ctx, &names, &over, &opts, args.jobs, progress);
        let mut exit = 0;
        for (name, result) in names.iter().zip(&results) {
            let code = out.show(name.as_deref(), result);
            if exit == 0 {
                exit = code;
            }
        }
        if stop.load(Ordering::Relaxed) && exit == 0 {
            exit = SIGNALLED;
        }
        return Ok(ExitCode::from(exit));
    };
    daemon(
        ctx, &names, &over, &opts, args.jobs, interval, &stop, &out, progress,
    )
}

/// Shows what the engine reports: the bars when they are drawn, warnings unless `-q`, the
/// rest with `-v`, each line printed with the bars out of the way.
struct Reporter<'a> {
    bars: Option<&'a Bars>,
    quiet: bool,
    verbose: u8,
}

impl Progress for Reporter<'_> {
    fn start(&self, account: &str, messages: usize, bytes: u64) {
        if let Some(b) = self.bars {
            b.start(account, messages, bytes);
        }
    }

    fn bytes(&self, account: &str, n: u64) {
        if let Some(b) = self.bars {
            b.bytes(account, n);
        }
    }

    fn delivered(&self, account: &str) {
        if let Some(b) = self.bars {
            b.delivered(account);
        }
    }

    fn notice(&self, account: &str, notice: &Notice) {
        let line = match (notice.is_warning(), self.quiet, self.verbose) {
            (_, true, _) | (false, false, 0) => return,
            (true, false, _) => format!("pop3: warning: {account}: {notice}"),
            (false, false, _) => format!("pop3: {account}: {notice}"),
        };
        match self.bars {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self, account: &str) {
        if let Some(b) = self.bars {
            b.finish(account);
        }
    }
}

/// SIGTERM and SIGINT set the flag; a second one exits the process at once.
fn install_signal_handlers() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, i32::from(SIGNALLED), stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| {
                Error::with_source(ErrorKind::Internal, "cannot install signal handlers", e)
            })?;
    }
    Ok(stop)
}

/// One account's outcome.
type Outcome = Result<(Account, Summary)>;

/// Fetch every account once, up to `jobs` at a time; results in the order of `names`.
fn run_round(
    ctx: &Context,
    names: &[Option<String>],
    over: &Overrides,
    opts: &FetchOptions,
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<Outcome> {
    let one = |name: &Option<String>| -> Outcome {
        let account = ctx.config.resolve(name.as_deref(), over)?;
        // `-vv` lines of parallel accounts say whose they are.
        let summary = crate::ui::log_context::with_account(&account.name, || {
            engine::fetch(&account, opts, progress)
        })?;
        Ok((account, summary))
    };
    if jobs <= 1 || names.len() <= 1 {
        return names.iter().map(one).collect();
    }
    // Each account runs under its own lock, so a slow or failing one holds up nobody.
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Outcome>>> =
        names.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(names.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let result = one(name);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(Error::new(ErrorKind::Internal, "a fetch thread panicked")))
        })
        .collect()
}

/// How results are shown.
struct Output<'a> {
    ctx: &'a Context,
    json: bool,
    dry_run: bool,
    bars: Option<&'a Bars>,
}

impl Output<'_> {
    /// Show one account's result; returns its exit code (0 on success).
    fn show(&self, name: Option<&str>, result: &Outcome) -> u8 {
        let label = name.unwrap_or("one-off account");
        let print = |f: &dyn Fn()| match self.bars {
            Some(b) => b.suspend(f),
            None => f(),
        };
        match result {
            Ok((account, s)) => {
                if self.json {
                    outln!("{}", summary_json(&account.name, s));
                } else if self.dry_run {
                    print_plan(&account.name, s);
                } else if self.ctx.verbose > 0 && !self.ctx.quiet {
                    print(&|| eprintln!("pop3: {}: {}", account.name, describe(s)));
                }
                if !self.dry_run {
                    self.report_too_big(account, s, &print);
                }
                if s.interrupted { SIGNALLED } else { 0 }
            }
            Err(e) => {
                if self.json {
                    outln!("{}", super::json_error(label, e));
                }
                print(&|| report(label, e));
                e.kind().exit_code()
            }
        }
    }
}

impl Output<'_> {
    /// Say once, ever, that a message is too big to fetch (issue #11 item 15): worth saying
    /// without -v and even with -q (a cron job's only chance to learn that mail is waiting
    /// that will never be fetched), but not on every run for as long as it stays there. The
    /// side file next to the seen-state remembers what was said (`state::too_big`).
    fn report_too_big(&self, account: &Account, s: &Summary, print: &dyn Fn(&dyn Fn())) {
        let Some(max) = account.policy.max_size else {
            return;
        };
        let fresh = engine::state_paths(account).and_then(|(uidl, _)| {
            let mut reported = Reported::load(&Reported::path_for(&uidl));
            reported.update(s.too_big.iter().map(|m| &m.uid))
        });
        let fresh = match fresh {
            Ok(f) => f,
            // The state directory is unwritable: say it every time rather than never.
            Err(_) => s.too_big.iter().map(|m| m.uid.clone()).collect(),
        };
        if fresh.is_empty() {
            return;
        }
        let shown: Vec<String> = s
            .too_big
            .iter()
            .filter(|m| fresh.contains(&m.uid))
            .map(|m| format!("{} ({} bytes)", sanitize(m.uid.as_bytes()), m.size))
            .collect();
        print(&|| {
            eprintln!(
                "pop3: warning: {}: {} message{} bigger than max_size ({}) left on the \
                 server: {}; said once, not again for {}",
                account.name,
                shown.len(),
                if shown.len() == 1 { "" } else { "s" },
                show_size(max),
                shown.join(", "),
                if shown.len() == 1 { "it" } else { "them" },
            )
        });
    }
}

/// `--daemon`: fetch every account when it is due, until a signal. A failing account is
/// retried with exponential backoff (capped at an hour, or the interval when longer);
/// a LOGIN-DELAY the server announced is waited out.
#[allow(clippy::too_many_arguments)]
fn daemon(
    ctx: &Context,
    names: &[Option<String>],
    over: &Overrides,
    opts: &FetchOptions,
    jobs: usize,
    interval: Duration,
    stop: &AtomicBool,
    out: &Output<'_>,
    progress: &dyn Progress,
) -> anyhow::Result<ExitCode> {
    let mut due: Vec<Instant> = vec![Instant::now(); names.len()];
    let mut failures: Vec<u32> = vec![0; names.len()];
    loop {
        let now = Instant::now();
        let ready: Vec<usize> = (0..names.len()).filter(|&i| due[i] <= now).collect();
        let batch: Vec<Option<String>> = ready.iter().map(|&i| names[i].clone()).collect();
        let results = run_round(ctx, &batch, over, opts, jobs, progress);
        for (&i, result) in ready.iter().zip(&results) {
            out.show(names[i].as_deref(), result);
            let wait = match result {
                Ok((_, s)) => {
                    failures[i] = 0;
                    let delay = Duration::from_secs(s.login_delay.unwrap_or(0).into());
                    interval.max(delay)
                }
                Err(e) => {
                    failures[i] = failures[i].saturating_add(1);
                    backoff(interval, failures[i], e.kind())
                }
            };
            due[i] = later(Instant::now(), wait);
        }
        if stop.load(Ordering::Relaxed) {
            // Stopped during a round: 75 only when a fetch was cut short (mail is left
            // for the next run); a round that finished anyway is a clean stop.
            let cut_short = results
                .iter()
                .any(|r| matches!(r, Ok((_, s)) if s.interrupted));
            return Ok(ExitCode::from(if cut_short { SIGNALLED } else { 0 }));
        }
        let next = due
            .iter()
            .min()
            .copied()
            .unwrap_or_else(|| later(now, interval));
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) {
                // A stop while idle is the normal way to end a daemon (systemd's SIGTERM):
                // exit 0, or the unit is marked failed.
                return Ok(ExitCode::SUCCESS);
            }
            let left = next.saturating_duration_since(Instant::now());
            std::thread::sleep(Duration::from_millis(200).min(left));
        }
    }
}

/// `now + wait`, never panicking: `--daemon` is range-checked (`config::range`), but a wait
/// that `Instant` cannot hold (a LOGIN-DELAY, a lib caller) becomes the longest interval,
/// and failing that `now`.
fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(DaemonInterval::MAX))
        .unwrap_or(now)
}

/// The wait after the `failures`-th failure in a row: the interval doubled each time, at
/// most an hour (or the interval, when that is longer); at least a minute for temporary
/// errors such as [LOGIN-DELAY] or [IN-USE].
fn backoff(interval: Duration, failures: u32, kind: ErrorKind) -> Duration {
    let cap = interval.max(Duration::from_secs(3600));
    let doubled = interval.saturating_mul(1u32 << failures.min(16));
    let wait = doubled.min(cap);
    if kind == ErrorKind::Temporary {
        wait.max(Duration::from_secs(60))
    } else {
        wait
    }
}

/// The `--json` object of one account.
fn summary_json(account: &str, s: &Summary) -> serde_json::Value {
    json!({
        "account": account,
        "ok": true,
        "listed": s.listed,
        "fetched": s.fetched,
        "bytes": s.bytes,
        "deleted": s.deleted,
        "skipped": s.too_big.len(),
        "deferred": s.deferred,
        "interrupted": s.interrupted,
        "would_fetch": s.would_fetch.len(),
        "would_delete": s.would_delete.len(),
        "unfetched": s.unfetched.iter().map(|(m, why)| json!({
            "number": m.number.get(),
            "uidl": m.uid.to_string(),
            "size": m.size,
            "why": why.word(),
        })).collect::<Vec<_>>(),
    })
}

/// One line for `-v`: what happened.
fn describe(s: &Summary) -> String {
    let mut text = format!(
        // Bytes as written (LF line ends, the Received: header); `check` counts the
        // server's LIST sizes, so the two differ and each says which it is.
        "{} new message{} fetched ({} bytes written), {} deleted, {} on the server",
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
    if s.interrupted {
        text.push_str(", stopped by a signal");
    }
    text
}

/// `--dry-run`: the plan on stdout.
fn print_plan(account: &str, s: &Summary) {
    outln!("{account}: {} messages on the server", s.listed);
    for m in &s.would_fetch {
        outln!("  would fetch  {:>5} {:>10} {}", m.number, m.size, m.uid);
    }
    for m in &s.too_big {
        outln!("  too big      {:>5} {:>10} {}", m.number, m.size, m.uid);
    }
    for m in &s.would_delete {
        outln!("  would delete {:>5} {:>10} {}", m.number, m.size, m.uid);
    }
    for (m, why) in &s.unfetched {
        let label = match why {
            Unfetched::KillSize => "would kill",
            Unfetched::FilterDelete => "would delete",
            Unfetched::FilterSkip => "would skip",
            Unfetched::FilterFailed(_) => "filter error",
        };
        outln!(
            "  {label:<12} {:>5} {:>10} {} ({why})",
            m.number,
            m.size,
            m.uid
        );
    }
    if s.deferred > 0 {
        outln!("  {} more new messages beyond --limit", s.deferred);
    }
    if s.would_fetch.is_empty() && s.would_delete.is_empty() && s.unfetched.is_empty() {
        outln!("  nothing to do");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_beyond_what_instant_holds_does_not_panic() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let far = later(now, Duration::MAX);
        assert!(far >= now);
        let longest = backoff(Duration::MAX, 30, ErrorKind::Temporary);
        assert!(later(now, longest) >= now);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let m = Duration::from_secs(60);
        assert_eq!(
            backoff(m, 1, ErrorKind::Unavailable),
            Duration::from_secs(120)
        );
        assert_eq!(
            backoff(m, 2, ErrorKind::Unavailable),
            Duration::from_secs(240)
        );
        assert_eq!(
            backoff(m, 30, ErrorKind::Unavailable),
            Duration::from_secs(3600)
        );
        let s = Duration::from_secs(5);
        assert_eq!(backoff(s, 1, ErrorKind::Temporary), Duration::from_secs(60));
        let day = Duration::from_secs(86400);
        assert_eq!(backoff(day, 3, ErrorKind::Auth), day);
    }
}
