//! Progress bars: one per account (messages and bytes), drawn only when stderr is a terminal,
//! `--quiet` is off and `TERM` is not `dumb`. Under cron nothing is drawn and nothing is
//! printed on success. Log lines printed while bars are drawn go through
//! [`Bars::suspend`] so they do not tear the display.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Progress;

/// Whether bars should be drawn at all.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The bars of one run.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, Entry>>,
}

/// One account's bar and its message count.
struct Entry {
    bar: ProgressBar,
    done: usize,
    total: usize,
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

impl Bars {
    /// Bars drawn on stderr.
    pub fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Run `f` with the bars hidden (for printing a line).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    fn with_entry(&self, account: &str, f: impl FnOnce(&mut Entry)) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(entry) = bars.get_mut(account)
        {
            f(entry);
        }
    }
}

impl Progress for Bars {
    fn start(&self, account: &str, messages: usize, bytes: u64) {
        if messages == 0 {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(bytes.max(1)));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {msg} ({bytes_per_sec})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(account.to_owned());
        bar.set_message(format!("0/{messages} messages"));
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut bars) = self.bars.lock() {
            let entry = Entry {
                bar,
                done: 0,
                total: messages,
            };
            bars.insert(account.to_owned(), entry);
        }
    }

    fn bytes(&self, account: &str, n: u64) {
        // LIST sizes are hints (servers count CRLF differently): stay below 100% until the
        // account is finished.
        self.with_entry(account, |e| {
            let len = e.bar.length().unwrap_or(1);
            let pos = (e.bar.position() + n).min(len.saturating_sub(1));
            e.bar.set_position(pos);
        });
    }

    fn delivered(&self, account: &str) {
        self.with_entry(account, |e| {
            e.done += 1;
            e.bar
                .set_message(format!("{}/{} messages", e.done, e.total));
        });
    }

    fn finish(&self, account: &str) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(e) = bars.remove(account)
        {
            e.bar.finish_and_clear();
            self.multi.remove(&e.bar);
        }
    }
}
