//! Crash points: a named hook just before every durable step (each message write, fsync and
//! rename, each state append, the lock, DELE and QUIT), so that the crash simulation
//! (tests/crash_sim.rs) can stop the process at exactly that step, as a kill would, and
//! then check that the next run loses nothing.
//!
//! Off unless the environment sets `POP3_CRASH_AT=N` (end the process at the N-th crash
//! point reached, counting from 1) or `POP3_CRASH_TRACE=FILE` (append one line per crash
//! point: its number, its name and a detail). The cost when off is one `OnceLock` read.
//!
//! The process ends with [`std::process::exit`]: no destructor runs, no buffer of ours is
//! flushed, no temporary file is removed, no lock file is taken back, exactly as after
//! SIGKILL; the kernel still closes files and releases `flock` and `fcntl` locks, as it
//! does for a killed process. This module owns nothing else and must never change what
//! the program does when it is off.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The exit status of a process ended at a crash point (distinct from every sysexits code).
pub const EXIT_STATUS: i32 = 86;

/// What the environment asked for.
struct Plan {
    at: Option<u64>,
    trace: Option<File>,
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
static REACHED: AtomicU64 = AtomicU64::new(0);

fn plan() -> Option<&'static Plan> {
    PLAN.get_or_init(|| {
        let at = std::env::var("POP3_CRASH_AT")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        let trace = std::env::var_os("POP3_CRASH_TRACE")
            .and_then(|path| OpenOptions::new().create(true).append(true).open(path).ok());
        (at.is_some() || trace.is_some()).then_some(Plan { at, trace })
    })
    .as_ref()
}

/// A durable step named `name` (with `detail`, e.g. the file or UIDL it concerns) is about
/// to happen.
pub fn hit(name: &str, detail: impl Display) {
    let Some(plan) = plan() else {
        return;
    };
    let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(mut trace) = plan.trace.as_ref() {
        // One write per line on an O_APPEND file: lines from threads never interleave.
        let _ = trace.write_all(format!("{n} {name} {detail}\n").as_bytes());
    }
    if plan.at == Some(n) {
        std::process::exit(EXIT_STATUS);
    }
}
