//! Faults at every protocol step and in every delivery target, with `--delete`: each test
//! names the DESIGN.md invariant it checks.
//!
//! Where the scripted server has no fault for a step (a drop in the middle of the UIDL or
//! LIST answer, right after the whole answer to the k-th RETR, before the k-th RETR), a small
//! cutting proxy ([`CutProxy`]) sits between the client and the server: it follows the
//! replies command by command and closes both sides at a chosen byte of a chosen reply.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::account::{Target, account, is_recorded, state_file};
use crate::support::env::{TestEnv, text};
use crate::support::mailbox::{Tally, list_files, parse_mbox, tally};
use crate::support::server::{Fault, Message, plain_server, sample_messages};

// ---------------------------------------------------------------------------------------
// The cutting proxy.

/// Where the proxy cuts the first connection through it.
#[derive(Clone, Debug)]
struct Cut {
    /// The verb whose reply is cut (`"GREETING"` for the greeting).
    verb: &'static str,
    /// Which occurrence of the verb (1-based).
    nth: usize,
    /// How many bytes of that reply reach the client before both sides are closed;
    /// `usize::MAX`: the whole reply, then close.
    bytes: usize,
}

/// A TCP proxy on 127.0.0.1 in front of a [`TestServer`]. The first connection is cut as
/// its [`Cut`] says; later connections pass through untouched.
struct CutProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Whether the cut happened.
    fired: Arc<AtomicBool>,
}

impl CutProxy {
    fn start(upstream: u16, cut: Cut) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (stop2, fired2) = (stop.clone(), fired.clone());
        thread::spawn(move || {
            let mut first = true;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((client, _)) => {
                        let cut = first.then(|| cut.clone());
                        first = false;
                        let fired = fired2.clone();
                        thread::spawn(move || {
                            let _ = relay(client, upstream, cut, fired);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        CutProxy { port, stop, fired }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Whether the reply to `command` is multi-line when it starts with `+OK`.
fn multiline(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let verb = words.next().unwrap_or("").to_ascii_uppercase();
    let has_arg = words.next().is_some();
    match verb.as_str() {
        "CAPA" | "RETR" | "TOP" => true,
        "LIST" | "UIDL" => !has_arg,
        _ => false,
    }
}

fn relay(
    client: TcpStream,
    upstream: u16,
    cut: Option<Cut>,
    fired: Arc<AtomicBool>,
) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(("127.0.0.1", upstream))?;
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
    }
    // Commands in the order the client sent them; reply i answers command i - 1 (reply 0
    // is the greeting).
    let commands: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let cut_done = Arc::new(AtomicBool::new(false));

    // Client to server: record each line before forwarding it.
    let up = {
        let (mut from, mut to) = (client.try_clone()?, server.try_clone()?);
        let (commands, cut_done) = (commands.clone(), cut_done.clone());
        thread::spawn(move || {
            let mut line = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if cut_done.load(Ordering::SeqCst) {
                    continue; // drain until the client goes away
                }
                for &b in &buf[..n] {
                    line.push(b);
                    if b == b'\n' {
                        let text = String::from_utf8_lossy(&line).trim_end().to_string();
                        commands.lock().unwrap().push(text);
                        line.clear();
                    }
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })
    };

    // Server to client: follow the replies and cut where told.
    let (mut from, mut to) = (server.try_clone()?, client.try_clone()?);
    let mut tracker = ReplyTracker::default();
    let mut buf = [0u8; 16384];
    let mut cut_now = false;
    while !cut_now {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Every reply in this chunk answers a command already recorded (the client sent
        // it before the server could answer it).
        let cmds = commands.lock().unwrap().clone();
        let target = cut.as_ref().and_then(|c| target_reply(c, &cmds));
        let cut_bytes = cut.as_ref().map_or(usize::MAX, |c| c.bytes);
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            let at_target = target == Some(tracker.reply);
            if at_target && cut_bytes != usize::MAX && tracker.reply_bytes == cut_bytes {
                cut_now = true;
                break;
            }
            out.push(b);
            let ended = tracker.feed(b, &cmds);
            if ended && at_target && cut_bytes == usize::MAX {
                cut_now = true;
                break;
            }
        }
        if to.write_all(&out).is_err() {
            break;
        }
    }
    if cut_now {
        // The client sees end-of-stream after what was relayed; the server sees its client
        // go away (no QUIT, so no deletions).
        fired.store(true, Ordering::SeqCst);
        cut_done.store(true, Ordering::SeqCst);
        let _ = server.shutdown(Shutdown::Both);
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// The reply index that answers the `nth` command with the cut's verb, once it was sent.
fn target_reply(cut: &Cut, commands: &[String]) -> Option<usize> {
    if cut.verb == "GREETING" {
        return Some(0);
    }
    commands
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.split_whitespace()
                .next()
                .is_some_and(|v| v.eq_ignore_ascii_case(cut.verb))
        })
        .nth(cut.nth - 1)
        .map(|(i, _)| i + 1)
}

/// Follows the server's byte stream reply by reply.
#[derive(Default)]
struct ReplyTracker {
    /// The reply being relayed: 0 is the greeting, i answers command i - 1.
    reply: usize,
    /// Bytes of it relayed so far.
    reply_bytes: usize,
    in_body: bool,
    line: Vec<u8>,
}

impl ReplyTracker {
    /// Account for one byte; true when it ended the current reply.
    fn feed(&mut self, b: u8, commands: &[String]) -> bool {
        self.reply_bytes += 1;
        self.line.push(b);
        if b != b'\n' {
            return false;
        }
        let ended = if self.in_body {
            self.line == b".\r\n"
        } else {
            let command = match self.reply {
                0 => "",
                i => commands.get(i - 1).map_or("", String::as_str),
            };
            if self.line.starts_with(b"+OK") && multiline(command) {
                self.in_body = true;
                false
            } else {
                true
            }
        };
        self.line.clear();
        if ended {
            self.in_body = false;
            self.reply += 1;
            self.reply_bytes = 0;
        }
        ended
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// Five messages: the three samples (plain, tricky, 100 KiB) and two small ones.
fn mailbox() -> Vec<Message> {
    let mut m = sample_messages();
    for i in 4..=5 {
        m.push(Message {
            uidl: format!("uid-000{i}-small"),
            body: format!("From: e@example.org\r\nSubject: small {i}\r\n\r\nsmall {i}\r\n")
                .into_bytes(),
        });
    }
    m
}

fn originals() -> Vec<Vec<u8>> {
    mailbox().into_iter().map(|m| m.body).collect()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Maildir,
    Mbox,
}

/// A test env and its delivery target of `kind`.
fn target(env: &TestEnv, kind: Kind) -> Target {
    match kind {
        Kind::Maildir => Target::Maildir(env.maildir.clone()),
        Kind::Mbox => {
            let path = env.home.join("Mail/inbox.mbox");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            Target::Mbox(path)
        }
    }
}

/// No partial message and no duplicate in the target; nothing left in Maildir `tmp/`, no
/// mbox dot-lock left behind.
fn assert_clean(target: &Target, what: &str) -> Tally {
    let t = tally(&originals(), &target.delivered_raw());
    assert_eq!(
        t.partial,
        0,
        "{what}: partial message in the {}",
        target.name()
    );
    assert_eq!(
        t.duplicates,
        0,
        "{what}: duplicate in the {}",
        target.name()
    );
    match target {
        Target::Maildir(dir) => {
            assert!(
                list_files(&dir.join("tmp")).is_empty(),
                "{what}: left in tmp/: {:?}",
                list_files(&dir.join("tmp"))
            );
        }
        Target::Mbox(path) => {
            let mut lock = path.clone().into_os_string();
            lock.push(".lock");
            assert!(
                !PathBuf::from(lock).exists(),
                "{what}: dot-lock left behind"
            );
            if let Ok(data) = std::fs::read(path) {
                assert!(
                    data.is_empty() || data.ends_with(b"\n\n"),
                    "{what}: the mbox does not end with a complete message"
                );
                assert_eq!(parse_mbox(&data).len(), t_len(&t), "{what}");
            }
        }
        Target::MdaDir(_) => {}
    }
    t
}

/// How many messages a tally counted as delivered (for the mbox cross-check).
fn t_len(t: &Tally) -> usize {
    mailbox().len() - t.lost + t.duplicates + t.partial
}

/// How one scenario injects its fault.
#[derive(Clone, Debug)]
enum Inject {
    Server(Fault),
    Proxy(Cut),
}

/// Invariants 2, 3 and 4 for one dropped connection, in a Maildir and in an mbox: the run
/// fails with 75, nothing partial is delivered, nothing is deleted (QUIT never succeeded),
/// and a rerun without the fault ends with each message delivered exactly once and the
/// server empty.
fn drop_scenario(step: &str, inject: Inject) {
    for kind in [Kind::Maildir, Kind::Mbox] {
        let what = format!("{step} ({kind:?})");
        let server = plain_server(mailbox());
        let proxy = match &inject {
            Inject::Server(fault) => {
                server.set_faults(vec![fault.clone()]);
                None
            }
            Inject::Proxy(cut) => Some(CutProxy::start(server.port(), cut.clone())),
        };
        let port = proxy.as_ref().map_or(server.port(), |p| p.port);
        let env = TestEnv::new();
        let target = target(&env, kind);
        env.write_config(&account(port, &target, ""));

        let out = env.cmd().args(["fetch", "--delete"]).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{what}: {stderr}");
        assert!(!stderr.is_empty(), "{what}: failed silently");
        if let Some(p) = &proxy {
            assert!(
                p.fired.load(Ordering::SeqCst),
                "{what}: the cut never happened"
            );
        }
        let first = assert_clean(&target, &what);
        assert_eq!(
            server.messages(),
            mailbox(),
            "{what}: deleted without QUIT +OK (delivered {} of 5)",
            5 - first.lost
        );

        server.clear_faults();
        let out = env.cmd().args(["fetch", "--delete"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: rerun: {}",
            text(&out.stderr)
        );
        let t = assert_clean(&target, &format!("{what}, after the rerun"));
        assert_eq!(t.lost, 0, "{what}: lost {:?}", t.lost_which);
        assert!(
            server.messages().is_empty(),
            "{what}: left on the server: {:?}",
            server.uidls()
        );
    }
}

fn proxy_cut(verb: &'static str, nth: usize, bytes: usize) -> Inject {
    Inject::Proxy(Cut { verb, nth, bytes })
}

// ---------------------------------------------------------------------------------------
// A dropped connection at each protocol step (invariants 2, 3, 4).

#[test]
fn drop_before_the_greeting() {
    // Invariant 3: nothing lost, nothing partial; invariant 2: nothing deleted.
    drop_scenario(
        "before the greeting",
        Inject::Server(Fault::drop_before_reply("GREETING")),
    );
}

#[test]
fn drop_in_the_middle_of_the_greeting() {
    // Invariant 3.
    drop_scenario("in the greeting", proxy_cut("GREETING", 1, 5));
}

#[test]
fn drop_after_the_greeting() {
    // Invariant 3.
    drop_scenario(
        "after the greeting",
        Inject::Server(Fault::drop_before_reply("CAPA")),
    );
}

#[test]
fn drop_after_capa() {
    // Invariant 3.
    drop_scenario("after CAPA", proxy_cut("CAPA", 1, usize::MAX));
}

#[test]
fn drop_after_user() {
    // Invariant 3.
    drop_scenario("after USER", proxy_cut("USER", 1, usize::MAX));
}

#[test]
fn drop_after_pass() {
    // Invariant 3.
    drop_scenario("after PASS", proxy_cut("PASS", 1, usize::MAX));
}

#[test]
fn drop_before_the_pass_reply() {
    // Invariant 3.
    drop_scenario(
        "before the PASS reply",
        Inject::Server(Fault::drop_before_reply("PASS")),
    );
}

#[test]
fn drop_during_uidl() {
    // Invariant 3: a cut listing delivers nothing and deletes nothing.
    drop_scenario("during UIDL", proxy_cut("UIDL", 1, 40));
}

#[test]
fn drop_during_list() {
    // Invariant 3.
    drop_scenario("during LIST", proxy_cut("LIST", 1, 30));
}

#[test]
fn drop_before_the_first_retr_reply() {
    // Invariant 3.
    drop_scenario(
        "before RETR 1",
        Inject::Server(Fault::drop_before_reply("RETR")),
    );
}

#[test]
fn drop_before_the_reply_to_retr_3() {
    // Invariants 3 and 4: messages 1 and 2 stay delivered and recorded.
    drop_scenario("before RETR 3", proxy_cut("RETR", 3, 0));
}

#[test]
fn drop_during_retr_of_a_small_message() {
    // Invariant 3: a drop before the final "." delivers nothing of that message.
    drop_scenario(
        "during RETR 2",
        Inject::Server(Fault::DropInRetr { msg: 2, after: 40 }),
    );
}

#[test]
fn drop_during_retr_of_the_big_message() {
    // Invariant 3, with a body that spans many reads and the sinks' write buffers.
    drop_scenario(
        "during RETR 3",
        Inject::Server(Fault::DropInRetr {
            msg: 3,
            after: 90_000,
        }),
    );
}

#[test]
fn drop_right_after_the_whole_retr_2_reply() {
    // Invariants 1 and 4: message 2 arrived whole, is delivered and stays recorded.
    drop_scenario("after RETR 2", proxy_cut("RETR", 2, usize::MAX));
}

#[test]
fn drop_before_the_dele_reply() {
    // Invariant 2: DELE counts only after QUIT +OK.
    drop_scenario(
        "during DELE",
        Inject::Server(Fault::drop_before_reply("DELE")),
    );
}

#[test]
fn drop_before_the_third_dele_reply() {
    // Invariant 2.
    drop_scenario("during DELE 3", proxy_cut("DELE", 3, 0));
}

#[test]
fn drop_before_the_quit_reply() {
    // Invariant 2: if QUIT fails the messages stay on the server and stay recorded.
    drop_scenario(
        "before the QUIT reply",
        Inject::Server(Fault::drop_before_reply("QUIT")),
    );
}

// ---------------------------------------------------------------------------------------
// -ERR answers (invariants 1, 2, 4).

#[test]
fn retr_err_with_delete_keeps_the_refused_message_and_rerun_delivers_it_once() {
    // Invariant 1: nothing is recorded for the refused message; invariant 2: it is not
    // deleted; invariant 4: the others stay recorded although the run fails.
    for kind in [Kind::Maildir, Kind::Mbox] {
        let server = plain_server(mailbox());
        server.set_faults(vec![Fault::RetrErr(2)]);
        let env = TestEnv::new();
        let target = target(&env, kind);
        env.write_config(&account(server.port(), &target, ""));
        let out = env.cmd().args(["fetch", "--delete"]).output().unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(c) if c != 0 && c != 70),
            "{kind:?}: exit {code:?}: {}",
            text(&out.stderr)
        );
        let t = assert_clean(&target, "RETR -ERR");
        assert_eq!(t.lost_which, [1], "{kind:?}: only message 2 is missing");
        let left = server.uidls();
        assert!(
            left.contains(&mailbox()[1].uidl),
            "{kind:?}: refused message deleted"
        );

        server.clear_faults();
        env.fetch_ok(&["--delete"]);
        let t = assert_clean(&target, "RETR -ERR, rerun");
        assert_eq!(t.lost, 0, "{kind:?}");
        assert!(
            server.messages().is_empty(),
            "{kind:?}: {:?}",
            server.uidls()
        );
    }
}

#[test]
fn dele_err_keeps_messages_recorded_and_rerun_deletes_them() {
    // Invariant 2: a message whose DELE failed stays on the server and stays recorded
    // (invariant 4): the rerun deletes it without delivering it again.
    for kind in [Kind::Maildir, Kind::Mbox] {
        let server = plain_server(mailbox());
        server.set_faults(vec![Fault::reply(
            "DELE",
            "-ERR cannot delete right now\r\n",
        )]);
        let env = TestEnv::new();
        let target = target(&env, kind);
        env.write_config(&account(server.port(), &target, ""));
        let out = env.cmd().args(["fetch", "--delete"]).output().unwrap();
        let code = out.status.code();
        eprintln!(
            "DELE -ERR ({kind:?}): exit {code:?}: {}",
            text(&out.stderr).trim()
        );
        assert!(
            matches!(code, Some(c) if c != 0 && c != 70),
            "{kind:?}: a failed DELE went unreported: exit {code:?}"
        );
        let t = assert_clean(&target, "DELE -ERR");
        assert_eq!(
            server.messages(),
            mailbox(),
            "{kind:?}: the server deleted nothing"
        );

        server.clear_faults();
        env.fetch_ok(&["--delete"]);
        let t2 = assert_clean(&target, "DELE -ERR, rerun");
        assert_eq!(t2.lost, 0, "{kind:?}");
        assert!(t.lost >= t2.lost);
        assert!(
            server.messages().is_empty(),
            "{kind:?}: {:?}",
            server.uidls()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The delivery target fails or cannot be opened.

/// `env.std_cmd()`'s environment for `sh -c SCRIPT pop3 ARGS...` (the script ends with
/// `exec "$0" "$@"`).
fn through_sh(env: &TestEnv, script: &str, args: &[&str]) -> std::process::Command {
    let pop3 = env.std_cmd();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg(pop3.get_program())
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null());
    for (key, value) in pop3.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    for key in ["PATH", "LANG"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    if let Some(dir) = pop3.get_current_dir() {
        cmd.current_dir(dir);
    }
    cmd
}

#[test]
fn full_target_fails_with_74_records_nothing_for_the_message_and_deletes_nothing() {
    // Invariant 1: the message that could not be written is not recorded; invariant 2: it
    // is not deleted; invariant 3: nothing partial remains. RLIMIT_FSIZE of 40 blocks
    // (20 KiB in dash, 40 KiB in bash) is well below the 100 KiB message 3.
    for kind in [Kind::Maildir, Kind::Mbox] {
        let server = plain_server(mailbox());
        let env = TestEnv::new();
        let target = target(&env, kind);
        env.write_config(&account(server.port(), &target, ""));
        let out = through_sh(
            &env,
            "ulimit -f 40; exec \"$0\" \"$@\"",
            &["fetch", "--delete"],
        )
        .output()
        .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.signal(),
            None,
            "{kind:?}: pop3 was killed by signal {:?} (SIGXFSZ is 25) instead of failing \
             the write: {stderr}",
            out.status.signal()
        );
        assert_eq!(out.status.code(), Some(74), "{kind:?}: {stderr}");
        let t = assert_clean(&target, "full target");
        assert!(
            t.lost_which.contains(&2),
            "{kind:?}: the big message got through"
        );
        let state = std::fs::read_to_string(state_file(&env, server.port())).unwrap_or_default();
        assert!(
            !is_recorded(&state, "uid-0003-big"),
            "{kind:?}: the failed message is recorded: {state}"
        );
        let left = server.uidls();
        assert!(
            left.contains(&"uid-0003-big".to_string()),
            "{kind:?}: deleted"
        );
        for (i, m) in mailbox().iter().enumerate() {
            if !left.contains(&m.uidl) {
                assert!(
                    !t.lost_which.contains(&i),
                    "{kind:?}: {} deleted, not delivered",
                    m.uidl
                );
            }
        }

        env.fetch_ok(&["--delete"]);
        let t = assert_clean(&target, "full target, rerun");
        assert_eq!(t.lost, 0, "{kind:?}");
        assert!(server.messages().is_empty());
    }
}

#[test]
fn maildir_that_cannot_be_created_is_73_before_connecting() {
    let server = plain_server(mailbox());
    let env = TestEnv::new();
    let file = env.write_file("not-a-directory", "x", 0o600);
    let target = Target::Maildir(file.join("inbox"));
    env.write_config(&account(server.port(), &target, ""));
    let stderr = env.fetch_code(&["--delete"], 73);
    assert!(
        stderr.contains("not-a-directory"),
        "path not named: {stderr}"
    );
    assert!(
        !server.sent_credentials(),
        "logged in before checking the Maildir"
    );
    assert_eq!(
        server.connection_count(),
        0,
        "connected before checking the Maildir"
    );
    assert_eq!(server.messages(), mailbox());
}

#[test]
fn mbox_in_a_missing_directory_is_73_before_connecting() {
    let server = plain_server(mailbox());
    let env = TestEnv::new();
    let target = Target::Mbox(env.root().join("no/such/dir/inbox.mbox"));
    env.write_config(&account(server.port(), &target, ""));
    let stderr = env.fetch_code(&["--delete"], 73);
    assert!(stderr.contains("no/such/dir"), "path not named: {stderr}");
    assert!(!server.sent_credentials());
    assert_eq!(server.messages(), mailbox());
}

// ---------------------------------------------------------------------------------------
// The state file.

#[test]
fn state_file_damaged_in_the_middle_is_an_error_naming_file_and_line() {
    // Never "everything is new": a damaged state must not re-deliver the whole mailbox.
    let server = plain_server(mailbox());
    let env = TestEnv::new();
    let target = target(&env, Kind::Maildir);
    env.write_config(&account(server.port(), &target, ""));
    let state = state_file(&env, server.port());
    let damaged = "pop3-uidl 1\n1700000000 uid-0001-plain\nthis is not a record\n\
                   1700000000 uid-0002-tricky.!~\n";
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(&state, damaged).unwrap();
    let stderr = env.fetch_code(&["--delete"], 74);
    assert!(
        stderr.contains(&state.display().to_string()),
        "state file not named: {stderr}"
    );
    assert!(stderr.contains("line 3"), "line not named: {stderr}");
    assert!(env.new_files().is_empty(), "delivered with a damaged state");
    assert_eq!(server.messages(), mailbox());
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        damaged,
        "state rewritten"
    );
}

#[test]
fn state_file_with_a_torn_last_line_costs_at_most_one_duplicate() {
    // Invariant 3: a crash during the append leaves a torn line; at most that one message
    // is delivered twice.
    let server = plain_server(mailbox());
    let env = TestEnv::new();
    let target = target(&env, Kind::Maildir);
    env.write_config(&account(server.port(), &target, ""));
    let state = state_file(&env, server.port());
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(
        &state,
        "pop3-uidl 1\n1700000000 uid-0001-plain\n1700000000 uid-0002-tri",
    )
    .unwrap();
    env.fetch_ok(&[]);
    let t = tally(&originals(), &target.delivered_raw());
    assert_eq!(
        t.lost_which,
        [0],
        "message 1 was recorded; the others are new"
    );
    assert_eq!(env.new_files().len(), 4);

    env.fetch_ok(&[]);
    assert_eq!(env.new_files().len(), 4, "delivered again");
    let data = std::fs::read_to_string(&state).unwrap();
    assert!(data.ends_with('\n'), "torn line left: {data:?}");
    for m in mailbox() {
        assert!(
            is_recorded(&data, &m.uidl),
            "{} not recorded: {data}",
            m.uidl
        );
    }
}

#[test]
fn second_run_for_the_same_account_exits_75_naming_the_lock() {
    // The account lock (DESIGN.md, State): no two runs fetch one account at once, so there
    // are no duplicates.
    let server = plain_server(mailbox());
    server.set_faults(vec![Fault::stall("UIDL", Duration::from_millis(1500))]);
    let env = TestEnv::new();
    let target = target(&env, Kind::Mbox);
    env.write_config(&account(server.port(), &target, ""));
    let first = env.std_cmd().args(["fetch", "--delete"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.commands_now().iter().any(|c| c.verb() == "UIDL") {
        assert!(Instant::now() < deadline, "the first run never sent UIDL");
        thread::sleep(Duration::from_millis(5));
    }
    let stderr = env.fetch_code(&["--delete"], 75);
    let lock = env
        .state_dir()
        .join(format!("alice@127.0.0.1_{}.lock", server.port()));
    assert!(
        stderr.contains(&lock.display().to_string()),
        "lock file {} not named: {stderr}",
        lock.display()
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(server.connection_count(), 1, "the second run connected");
    let t = assert_clean(&target, "two runs");
    assert_eq!(t.lost, 0);
    assert!(server.messages().is_empty());
}
