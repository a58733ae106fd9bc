//! The kill campaign (DESIGN.md invariant 3: a kill at any point loses nothing, leaves no
//! partial message in a mailbox, and costs at most one duplicate per kill).
//!
//! For each delivery target (Maildir, mbox, an MDA writing one file per message) and each
//! kill point: a fresh scripted server with a mailbox of varied sizes (some over 100 KB), a
//! fresh account, `pop3 fetch --delete` started and SIGKILLed, either after a delay (spread
//! from 0 to the time a whole run takes: connect, RETR, delivery, state write, DELE, QUIT)
//! or right after the server has received the k-th RETR or DELE, the first UIDL, or QUIT
//! (the test thread polls the server's command log). Then `pop3 fetch --delete` is run
//! again until it exits 0, and what was delivered is compared with what the server held:
//!
//! - lost: on the server at the start, never delivered;
//! - partial: delivered but not byte-identical once the `Received:` header is stripped;
//! - duplicates: deliveries beyond the first of a message.
//!
//! The bounded form (8 kills per target, 60 messages) runs by default; the full campaign
//! (300 messages, 36 kills per target) is ignored and runs with
//! `cargo test --test integration kill -- --ignored --nocapture`, printing a table.

use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::account::{Target, account};
use crate::support::env::{TestEnv, text};
use crate::support::mailbox::{Tally, tally};
use crate::support::server::{Message, TestServer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    Maildir,
    Mbox,
    Mda,
}

impl Sink {
    fn target(self, env: &TestEnv) -> Target {
        match self {
            Sink::Maildir => Target::Maildir(env.maildir.clone()),
            Sink::Mbox => {
                let path = env.home.join("Mail/inbox.mbox");
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                Target::Mbox(path)
            }
            Sink::Mda => {
                let dir = env.root().join("mda-out");
                fs::create_dir_all(&dir).unwrap();
                Target::MdaDir(dir)
            }
        }
    }
}

/// SplitMix64: deterministic test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// `n` distinct messages: mostly small, every 7th a few KB, every 23rd 100 to 250 KB; some
/// with dot lines, `From ` lines and a Return-Path.
fn corpus(n: usize, seed: u64) -> Vec<Message> {
    let mut rng = Rng(seed);
    (1..=n)
        .map(|i| {
            let target = if i % 23 == 5 {
                rng.range(100_000, 250_000)
            } else if i % 7 == 3 {
                rng.range(3_000, 20_000)
            } else {
                rng.range(150, 1_500)
            };
            let mut body = String::new();
            if i % 5 == 0 {
                body.push_str(&format!("Return-Path: <sender{i}@example.org>\r\n"));
            }
            body.push_str(&format!(
                "From: Sender {i} <sender{i}@example.org>\r\nTo: alice@example.org\r\n\
                 Subject: kill campaign message {i}\r\nMessage-ID: <kill-{i}-{seed}@example.org>\r\n\
                 X-Kill-Id: {i}\r\n\r\n"
            ));
            let mut line = 0;
            while body.len() < target {
                line += 1;
                match rng.range(0, 30) {
                    0 => body.push_str(".a line with a leading dot\r\n"),
                    1 => body.push_str(".\r\n"),
                    2 => body.push_str("From the middle of a message\r\n"),
                    3 => body.push_str(">From a quoted line\r\n"),
                    _ => {
                        let len = rng.range(0, 76);
                        let text: String = (0..len)
                            .map(|k| (b'a' + ((k + line + i) % 26) as u8) as char)
                            .collect();
                        body.push_str(&format!("{line:05} {text}\r\n"));
                    }
                }
            }
            Message {
                uidl: format!("kill-{seed}-{i:04}"),
                body: body.into_bytes(),
            }
        })
        .collect()
}

/// When to kill.
#[derive(Clone, Debug)]
enum Trigger {
    /// After this long.
    Delay(Duration),
    /// Once the server has received the `nth` command with this verb, plus `extra`.
    Command {
        verb: &'static str,
        nth: usize,
        extra: Duration,
    },
}

/// What one trial did.
#[derive(Debug, Default, Clone)]
struct Trial {
    /// Whether pop3 was still running when it was killed.
    killed: bool,
    /// Runs after the kill until one exited 0.
    reruns: usize,
    /// Reruns that failed (with their stderr).
    failed_reruns: Vec<String>,
    /// A dot-lock was left behind by the kill (mbox).
    dotlock_left: bool,
    /// Files in `Maildir/tmp/` after the recovering run: a killed run's copies that
    /// nothing removed (DESIGN.md: no partial message left behind, in `tmp/` either).
    stray_tmp: usize,
    tally: Tally,
    left_on_server: usize,
}

fn server_for(messages: &[Message]) -> TestServer {
    TestServer::builder()
        .messages(messages.to_vec())
        .max_connections(100)
        .time_limit(Duration::from_secs(600))
        .start()
}

fn dotlock(target: &Target) -> Option<PathBuf> {
    match target {
        Target::Mbox(path) => {
            let mut lock = path.clone().into_os_string();
            lock.push(".lock");
            Some(PathBuf::from(lock))
        }
        _ => None,
    }
}

/// For a diagnosis: `pid: command line` of every process with a file open in `dir` whose
/// name ends with `suffix`.
fn holders_of(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if target.starts_with(dir) && target.to_string_lossy().ends_with(suffix) {
                let cmdline = fs::read(p.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                found.push(format!(
                    "{}: {}",
                    p.file_name().to_string_lossy(),
                    cmdline.trim()
                ));
            }
        }
    }
    found
}

/// One uninterrupted run: how long it takes (and that it delivers everything once).
fn calibrate(sink: Sink, messages: &[Message]) -> Duration {
    let server = server_for(messages);
    let env = TestEnv::new();
    let target = sink.target(&env);
    env.write_config(&account(server.port(), &target, ""));
    let start = Instant::now();
    let out = env.cmd().args(["fetch", "--delete"]).output().unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let originals: Vec<Vec<u8>> = messages.iter().map(|m| m.body.clone()).collect();
    assert_eq!(
        tally(&originals, &target.delivered_raw()),
        Tally::default(),
        "{sink:?}: an uninterrupted run"
    );
    assert!(server.messages().is_empty());
    took
}

/// Start pop3, kill it at `trigger`, rerun until success, count.
fn trial(sink: Sink, messages: &[Message], trigger: &Trigger) -> Trial {
    let server = server_for(messages);
    let env = TestEnv::new();
    let target = sink.target(&env);
    env.write_config(&account(server.port(), &target, ""));
    let mut child = env
        .std_cmd()
        .args(["fetch", "--delete"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pop3");
    let deadline = Instant::now() + Duration::from_secs(60);
    match trigger {
        Trigger::Delay(d) => thread::sleep(*d),
        Trigger::Command { verb, nth, extra } => {
            loop {
                let seen = server
                    .commands_now()
                    .iter()
                    .filter(|c| c.verb() == *verb)
                    .count();
                if seen >= *nth || child.try_wait().unwrap().is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "pop3 ran for a minute");
                thread::sleep(Duration::from_micros(200));
            }
            thread::sleep(*extra);
        }
    }
    let mut result = Trial {
        killed: child.try_wait().unwrap().is_none(),
        ..Trial::default()
    };
    let _ = child.kill();
    child.wait().expect("reap pop3");
    result.dotlock_left = dotlock(&target).is_some_and(|l| l.exists());

    loop {
        result.reruns += 1;
        let out = env.cmd().args(["fetch", "--delete"]).output().unwrap();
        if out.status.code() == Some(0) {
            break;
        }
        let stderr = text(&out.stderr);
        let holders = holders_of(&env.state_dir(), ".lock");
        let dotlock_content = dotlock(&target).map(|l| fs::read(l).map(|c| text(&c)));
        result.failed_reruns.push(format!(
            "exit {:?}: {} [processes holding the account lock open: {holders:?}; \
             mbox dot-lock content: {dotlock_content:?}]",
            out.status.code(),
            stderr.trim()
        ));
        // A dot-lock the killed run left and the rerun did not break: remove it by hand
        // (as its error message asks) so that the campaign can go on; it is reported.
        if let Some(lock) = dotlock(&target).filter(|l| l.exists()) {
            let _ = fs::remove_file(lock);
        }
        assert!(
            result.reruns < 4,
            "{sink:?} {trigger:?}: reruns keep failing: {:?}",
            result.failed_reruns
        );
    }
    if let Target::Maildir(dir) = &target {
        result.stray_tmp = fs::read_dir(dir.join("tmp")).map_or(0, |d| d.count());
    }
    let originals: Vec<Vec<u8>> = messages.iter().map(|m| m.body.clone()).collect();
    result.tally = tally(&originals, &target.delivered_raw());
    result.left_on_server = server.messages().len();
    result
}

/// `kills` kill points for a run that takes about `full`: half of them spread in time from
/// 0 to nearly `full`, half right after a command the server received.
fn triggers(kills: usize, messages: usize, full: Duration) -> Vec<Trigger> {
    let timed = kills / 2;
    let mut out: Vec<Trigger> = (0..timed)
        .map(|i| Trigger::Delay(full.mul_f64(i as f64 / (timed - 1).max(1) as f64 * 0.95)))
        .collect();
    let commanded = kills - timed;
    let extras = [0u64, 1, 3];
    for i in 0..commanded {
        let k = 1 + i * (messages - 1) / commanded.max(1);
        let extra = Duration::from_millis(extras[i % extras.len()]);
        let (verb, nth) = match i % 6 {
            0 | 3 => ("RETR", k),
            1 | 4 => ("DELE", k),
            2 => ("QUIT", 1),
            _ => ("UIDL", 1),
        };
        let trigger = Trigger::Command { verb, nth, extra };
        out.push(trigger);
    }
    out
}

/// The sum over one target's trials.
#[derive(Debug, Default)]
struct Row {
    sink: &'static str,
    trials: usize,
    kills: usize,
    lost: usize,
    partial: usize,
    duplicates: usize,
    max_duplicates_per_kill: usize,
    dotlocks_left: usize,
    failed_reruns: usize,
    left_on_server: usize,
    stray_tmp: usize,
    notes: Vec<String>,
}

fn campaign(sink: Sink, messages: usize, kills: usize, seed: u64) -> Row {
    let mailbox = corpus(messages, seed);
    let full = calibrate(sink, &mailbox);
    let mut row = Row {
        sink: match sink {
            Sink::Maildir => "maildir",
            Sink::Mbox => "mbox",
            Sink::Mda => "mda",
        },
        ..Row::default()
    };
    eprintln!("{sink:?}: {messages} messages, an uninterrupted run takes {full:?}");
    for trigger in triggers(kills, messages, full) {
        let t = trial(sink, &mailbox, &trigger);
        row.trials += 1;
        row.kills += usize::from(t.killed);
        row.lost += t.tally.lost;
        row.partial += t.tally.partial;
        row.duplicates += t.tally.duplicates;
        row.max_duplicates_per_kill = row.max_duplicates_per_kill.max(t.tally.duplicates);
        row.dotlocks_left += usize::from(t.dotlock_left);
        row.failed_reruns += t.failed_reruns.len();
        row.left_on_server += t.left_on_server;
        row.stray_tmp += t.stray_tmp;
        let bad = t.tally.lost > 0
            || t.stray_tmp > 0
            || t.tally.partial > 0
            || t.tally.duplicates > usize::from(t.killed)
            || !t.failed_reruns.is_empty()
            || t.left_on_server > 0;
        if bad {
            row.notes.push(format!(
                "{trigger:?}: killed={} lost={:?} partial={} dup={} left={} stray tmp={} \
                 failed reruns={:?}",
                t.killed,
                t.tally.lost_which,
                t.tally.partial,
                t.tally.duplicates,
                t.left_on_server,
                t.stray_tmp,
                t.failed_reruns
            ));
        }
    }
    row
}

fn print_table(rows: &[Row]) {
    eprintln!(
        "\n{:<8} {:>6} {:>5} {:>5} {:>7} {:>10} {:>8} {:>9} {:>13} {:>10}",
        "sink",
        "trials",
        "kills",
        "lost",
        "partial",
        "duplicates",
        "max dup",
        "dotlocks",
        "failed rerun",
        "stray tmp"
    );
    for r in rows {
        eprintln!(
            "{:<8} {:>6} {:>5} {:>5} {:>7} {:>10} {:>8} {:>9} {:>13} {:>10}",
            r.sink,
            r.trials,
            r.kills,
            r.lost,
            r.partial,
            r.duplicates,
            r.max_duplicates_per_kill,
            r.dotlocks_left,
            r.failed_reruns,
            r.stray_tmp
        );
    }
    for r in rows {
        for note in &r.notes {
            eprintln!("  {}: {note}", r.sink);
        }
    }
}

fn assert_row(r: &Row) {
    assert_eq!(r.lost, 0, "{}: lost messages: {:#?}", r.sink, r.notes);
    assert_eq!(r.partial, 0, "{}: partial messages: {:#?}", r.sink, r.notes);
    assert!(
        r.duplicates <= r.kills && r.max_duplicates_per_kill <= 1,
        "{}: {} duplicates after {} kills: {:#?}",
        r.sink,
        r.duplicates,
        r.kills,
        r.notes
    );
    assert_eq!(r.left_on_server, 0, "{}: {:#?}", r.sink, r.notes);
    assert_eq!(
        r.stray_tmp, 0,
        "{}: files left in Maildir/tmp/: {:#?}",
        r.sink, r.notes
    );
    assert!(r.kills > 0, "{}: no run was actually killed", r.sink);
}

/// Bounded campaign: 8 kills of a 60-message fetch.
fn bounded(sink: Sink, seed: u64) {
    let row = campaign(sink, 60, 8, seed);
    print_table(std::slice::from_ref(&row));
    assert_row(&row);
}

#[test]
fn kill_campaign_bounded_maildir() {
    bounded(Sink::Maildir, 11);
}

#[test]
fn kill_campaign_bounded_mbox() {
    bounded(Sink::Mbox, 12);
}

#[test]
fn kill_campaign_bounded_mda() {
    bounded(Sink::Mda, 13);
}

#[test]
#[ignore = "the full kill campaign takes minutes: cargo test --test integration kill -- --ignored --nocapture"]
fn kill_campaign_full() {
    let rows: Vec<Row> = [(Sink::Maildir, 21), (Sink::Mbox, 22), (Sink::Mda, 23)]
        .into_iter()
        .map(|(sink, seed)| campaign(sink, 300, 36, seed))
        .collect();
    print_table(&rows);
    for row in &rows {
        assert_row(row);
    }
}

#[test]
fn corpus_is_varied_and_distinct() {
    let c = corpus(300, 1);
    let big = c.iter().filter(|m| m.body.len() >= 100_000).count();
    assert!(big >= 10, "{big} messages of 100 KB or more");
    let mut bodies: Vec<&Vec<u8>> = c.iter().map(|m| &m.body).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 300);
}
