//! `pop3 fetch --daemon INTERVAL`: polling until a signal, the state saved on SIGTERM, the
//! message in flight finished (first signal) or abandoned safely (second signal), a failing
//! account retried with backoff without holding up a good one, and LOGIN-DELAY honoured.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::support::certs::TestCerts;
use crate::support::env::{TestEnv, delivered_forms, text};
use crate::support::server::{Fault, PASSWORD, TestServer, extra_message, sample_messages};

/// A `pop3 fetch --daemon` running in the background; killed on drop if still running.
struct Daemon {
    child: Child,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Daemon {
    fn start(env: &TestEnv, args: &[&str]) -> Daemon {
        let mut child = env.std_cmd().args(args).spawn().expect("spawn pop3");
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            buf
        });
        Daemon {
            child,
            stderr: Some(stderr),
        }
    }

    /// Send SIGTERM (to this child only, by its pid).
    fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Wait up to `limit` for the exit; the status and how long it took. Panics (with the
    /// daemon's stderr) on timeout.
    fn wait(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "pop3 --daemon still running after {limit:?}; stderr: {}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything it wrote on stderr (after it exited).
    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| text(&h.join().unwrap_or_default()))
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `cond` every 10 ms for up to `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// When each connection to `server` was accepted, watched for `span` by polling.
fn connection_times(server: &TestServer, span: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let mut times = Vec::new();
    let mut seen = server.connection_count();
    while start.elapsed() < span {
        let now = server.connection_count();
        for _ in seen..now {
            times.push(start.elapsed());
        }
        seen = now;
        thread::sleep(Duration::from_millis(10));
    }
    times
}

fn setup(server: TestServer, certs: TestCerts) -> (TestServer, TestCerts, TestEnv) {
    let env = TestEnv::new();
    env.write_config(&env.account_toml("test", server.port(), "implicit", Some(certs.ca_file())));
    (server, certs, env)
}

fn sample_setup() -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .max_connections(32)
        .start();
    setup(server, certs)
}

#[test]
fn daemon_delivers_mail_that_arrives_after_the_first_round() {
    let (server, _certs, env) = sample_setup();
    let mut daemon = Daemon::start(&env, &["fetch", "--daemon", "1s"]);
    assert!(
        wait_for(Duration::from_secs(5), || env.new_files().len() == 3),
        "first round did not deliver; stderr: {}",
        daemon.stderr()
    );
    server.add_message("uid-0004-later", &extra_message("arrived later"));
    assert!(
        wait_for(Duration::from_secs(4), || env.new_files().len() == 4),
        "the new message was not delivered by a later round"
    );
    assert!(daemon.running(), "the daemon stopped by itself");
    assert!(server.connection_count() >= 2);
    daemon.sigterm();
    let (status, _) = daemon.wait(Duration::from_secs(3));
    assert_eq!(status.code(), Some(0), "stderr: {}", daemon.stderr());
}

#[test]
fn sigterm_while_idle_exits_0_at_once_and_the_state_is_saved() {
    let (server, _certs, env) = sample_setup();
    let mut daemon = Daemon::start(&env, &["fetch", "--daemon", "1s"]);
    assert!(wait_for(Duration::from_secs(5), || env.new_files().len() == 3));
    assert!(server.wait_idle(Duration::from_secs(3)));
    daemon.sigterm();
    let (status, took) = daemon.wait(Duration::from_secs(3));
    assert_eq!(status.code(), Some(0), "stderr: {}", daemon.stderr());
    assert!(took < Duration::from_secs(2), "took {took:?} to exit");

    // A rerun delivers nothing new.
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 3);
}

/// A server whose third (100 KiB) message stalls half-way for `delay`.
fn stalling_setup(delay: Duration) -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .fault(Fault::StallInRetr {
            msg: 3,
            after: 50_000,
            delay,
        })
        .start();
    setup(server, certs)
}

/// Start the daemon and wait until it is receiving message 3. The server answers in
/// order, so when it has read `RETR 3` it has sent messages 1 and 2; the client may hold
/// them in a commit batch (not yet in `new/`).
fn start_and_wait_for_retr_3(server: &TestServer, env: &TestEnv) -> Daemon {
    let mut daemon = Daemon::start(env, &["fetch", "--daemon", "1s"]);
    let receiving = wait_for(Duration::from_secs(5), || {
        server.commands_now().iter().any(|c| c.line == "RETR 3")
    });
    assert!(
        receiving,
        "never got to RETR 3: {:?}; stderr: {}",
        server.commands_now(),
        if daemon.running() {
            String::new()
        } else {
            daemon.stderr()
        }
    );
    // Let the first part of the body arrive.
    thread::sleep(Duration::from_millis(300));
    assert!(daemon.running(), "stderr: {}", daemon.stderr());
    daemon
}

#[test]
fn sigterm_during_a_large_message_finishes_it_records_it_and_quits() {
    let (server, _certs, env) = stalling_setup(Duration::from_millis(2000));
    let mut daemon = start_and_wait_for_retr_3(&server, &env);
    daemon.sigterm();
    let (status, took) = daemon.wait(Duration::from_secs(6));
    let stderr = daemon.stderr();
    assert_eq!(status.code(), Some(75), "stderr: {stderr}");
    assert!(
        took >= Duration::from_millis(800),
        "exited after {took:?}: it did not wait for the message in flight"
    );
    let originals = sample_messages();
    assert_eq!(
        env.delivered(),
        delivered_forms(originals.iter().map(|m| m.body.as_slice())),
        "stderr: {stderr}"
    );
    assert!(
        env.tmp_files().is_empty(),
        "left in tmp/: {:?}",
        env.tmp_files()
    );
    let last = server.sessions().pop().expect("a session");
    assert_eq!(
        last.verbs().last().map(String::as_str),
        Some("QUIT"),
        "no QUIT after the message in flight: {:?}",
        last.verbs()
    );

    // Recorded: a rerun fetches nothing.
    server.clear_faults();
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn second_sigterm_exits_at_once_and_loses_nothing() {
    let (server, _certs, env) = stalling_setup(Duration::from_secs(5));
    let mut daemon = start_and_wait_for_retr_3(&server, &env);
    daemon.sigterm();
    thread::sleep(Duration::from_millis(300));
    assert!(
        daemon.running(),
        "the first SIGTERM did not wait for the message in flight"
    );
    daemon.sigterm();
    let (status, took) = daemon.wait(Duration::from_secs(3));
    assert_eq!(status.code(), Some(75), "stderr: {}", daemon.stderr());
    assert!(
        took < Duration::from_secs(1),
        "second SIGTERM took {took:?}"
    );
    // Nothing partial in new/: whatever is there is a complete message.
    let originals = sample_messages();
    let complete = delivered_forms(originals.iter().map(|m| m.body.as_slice()));
    for message in env.delivered() {
        assert!(complete.contains(&message), "a partial message in new/");
    }

    // Whatever was not recorded is fetched by the next run: every message arrives, at
    // most one of them twice (DESIGN.md invariant 3).
    server.clear_faults();
    env.fetch_ok(&[]);
    let mut delivered = env.delivered();
    assert!(delivered.len() <= 4, "more than one duplicate");
    delivered.dedup();
    assert_eq!(delivered, complete);
}

#[test]
fn a_failing_account_is_retried_with_backoff_and_does_not_stop_a_good_one() {
    let certs = TestCerts::new();
    let bad = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .max_connections(32)
        .start();
    let good = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .max_connections(32)
        .start();
    let env = TestEnv::new();
    let bad_toml = env
        .account_toml("bad", bad.port(), "implicit", Some(certs.ca_file()))
        .replace(PASSWORD, "wrong-password")
        .replace(
            &env.maildir.display().to_string(),
            "/nonexistent-never-used",
        );
    let good_toml = env.account_toml("good", good.port(), "implicit", Some(certs.ca_file()));
    env.write_config(&format!("{bad_toml}\n{good_toml}"));

    let mut daemon = Daemon::start(&env, &["fetch", "--daemon", "1s"]);
    let start = Instant::now();
    assert!(wait_for(Duration::from_secs(5), || env.new_files().len() == 3));
    good.add_message("uid-0004-later", &extra_message("for the good account"));
    let attempts = connection_times(&bad, Duration::from_millis(6500) - start.elapsed());
    assert_eq!(
        env.new_files().len(),
        4,
        "the good account stopped fetching"
    );
    assert!(daemon.running(), "a failing account stopped the daemon");
    daemon.sigterm();
    let (status, _) = daemon.wait(Duration::from_secs(3));
    let stderr = daemon.stderr();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    assert!(
        stderr.contains("pop3: bad:"),
        "failure not reported: {stderr}"
    );

    // The first attempt came before we started watching; the retries after it.
    let logins = bad
        .commands()
        .iter()
        .filter(|c| c.verb() == "PASS" || c.verb() == "AUTH")
        .count();
    assert!(logins >= 2, "bad account tried {logins} time(s)");
    assert!(
        good.connection_count() >= 3,
        "the good account was polled {} times",
        good.connection_count()
    );
    // Backoff: the interval doubles, so retries are not every second.
    assert!(
        attempts.len() <= 2,
        "retried every interval, no backoff: {attempts:?}"
    );
    if let [a, b] = attempts[..] {
        assert!(b - a >= Duration::from_millis(2500), "gaps {attempts:?}");
    }
}

#[test]
fn login_delay_spaces_the_rounds_of_an_account() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .capa(["TOP", "UIDL", "USER", "RESP-CODES", "LOGIN-DELAY 3"])
        .messages(sample_messages())
        .max_connections(32)
        .start();
    let (server, _certs, env) = setup(server, certs);
    let mut daemon = Daemon::start(&env, &["fetch", "--daemon", "1s"]);
    let times = connection_times(&server, Duration::from_millis(4500));
    daemon.sigterm();
    let (status, _) = daemon.wait(Duration::from_secs(3));
    assert_eq!(status.code(), Some(0), "stderr: {}", daemon.stderr());
    assert_eq!(env.new_files().len(), 3);
    assert!(!times.is_empty(), "never connected");
    assert!(
        times.len() <= 2,
        "LOGIN-DELAY 3 ignored: connections at {times:?}"
    );
    if let [a, b] = times[..] {
        assert!(
            b - a >= Duration::from_millis(2800),
            "second login {:?} after the first (LOGIN-DELAY 3)",
            b - a
        );
    }
}
