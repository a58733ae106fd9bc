//! Faults in the middle of a session: each test names the DESIGN.md invariant it checks.
//! Nothing may be lost, nothing partial may appear in the Maildir, nothing may be deleted
//! on the server before it is recorded, and DELE counts only after QUIT's +OK.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::certs::TestCerts;
use crate::support::env::{TestEnv, delivered_form, delivered_forms, text};
use crate::support::server::{Fault, TestServer, sample_messages};

/// A TLS server with the sample mailbox and `fault`, and an account `test` for it.
fn setup(fault: Fault, extra: &str) -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .fault(fault)
        .start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "implicit", Some(certs.ca_file()));
    toml.push_str(extra);
    env.write_config(&toml);
    (server, certs, env)
}

fn all_bodies() -> Vec<Vec<u8>> {
    delivered_forms(sample_messages().iter().map(|m| m.body.as_slice()))
}

/// Every file in new/ is one complete sample message, none twice, and tmp/ is empty.
fn assert_only_complete_messages(env: &TestEnv) {
    assert!(
        env.tmp_files().is_empty(),
        "left in tmp/: {:?}",
        env.tmp_files()
    );
    assert_new_has_only_complete_messages(env);
}

/// Every file in new/ is one complete sample message, none twice.
fn assert_new_has_only_complete_messages(env: &TestEnv) {
    let all = all_bodies();
    let delivered = env.delivered();
    for message in &delivered {
        assert!(
            all.contains(message),
            "partial or altered message in new/: {:?}",
            String::from_utf8_lossy(&message[..message.len().min(300)])
        );
    }
    let mut unique = delivered.clone();
    unique.dedup();
    assert_eq!(unique, delivered, "a message was delivered twice");
}

#[test]
fn drop_in_the_middle_of_retr_loses_nothing_and_rerun_delivers_each_once() {
    // Invariant 3: a dropped connection loses nothing and leaves no partial message.
    // Invariant 2: nothing is deleted on the server (DELE counts only after QUIT +OK).
    // Invariant 4: what was delivered before the drop stays recorded.
    let (server, _certs, env) = setup(
        Fault::DropInRetr {
            msg: 3,
            after: 30_000,
        },
        "",
    );
    env.cmd()
        .args(["fetch", "--delete"])
        .assert()
        .code(75)
        .stdout("");
    assert_only_complete_messages(&env);
    assert!(
        !env.delivered()
            .contains(&delivered_form(&sample_messages()[2].body)),
        "the cut message was delivered"
    );
    assert_eq!(server.messages(), sample_messages(), "deleted after a drop");

    server.clear_faults();
    env.fetch_quiet(&["--delete"]);
    assert_only_complete_messages(&env);
    assert_eq!(
        env.delivered(),
        all_bodies(),
        "each message exactly once in total"
    );
    assert!(server.messages().is_empty(), "left: {:?}", server.uidls());
}

#[test]
fn drop_in_the_first_retr_delivers_nothing_and_rerun_delivers_all() {
    // Invariant 3: a drop before the final "." delivers nothing of that message.
    let (server, _certs, env) = setup(Fault::DropInRetr { msg: 1, after: 10 }, "");
    env.cmd().arg("fetch").assert().code(75).stdout("");
    assert_only_complete_messages(&env);
    assert!(env.new_files().is_empty(), "{:?}", env.new_files());
    server.clear_faults();
    env.fetch_quiet(&[]);
    assert_eq!(env.delivered(), all_bodies());
}

#[test]
fn drop_before_the_quit_reply_keeps_messages_on_server_and_recorded() {
    // Invariant 2: DELE counts only once QUIT succeeds; if QUIT fails the messages stay on
    // the server and stay recorded.
    let (server, _certs, env) = setup(Fault::drop_before_reply("QUIT"), "");
    env.cmd()
        .args(["fetch", "--delete"])
        .assert()
        .code(75)
        .stdout("");
    assert_eq!(env.delivered(), all_bodies());
    assert!(server.verbs().contains(&"DELE".to_string()), "no DELE sent");
    assert_eq!(
        server.messages(),
        sample_messages(),
        "deleted without QUIT +OK"
    );

    // Recorded: a rerun delivers nothing new, and this time the deletions count.
    server.clear_faults();
    env.fetch_quiet(&["--delete"]);
    assert_eq!(
        env.delivered(),
        all_bodies(),
        "delivered again after a failed QUIT"
    );
    assert!(server.messages().is_empty(), "left: {:?}", server.uidls());
}

#[test]
fn drop_during_dele_keeps_messages_on_server_and_recorded() {
    // Invariant 2: a message is deleted only after it is recorded, and DELE counts only
    // after QUIT +OK. Invariant 4: the state is saved although the session failed.
    let (server, _certs, env) = setup(Fault::drop_before_reply("DELE"), "keep = false\n");
    env.cmd().arg("fetch").assert().code(75).stdout("");
    assert_only_complete_messages(&env);
    assert_eq!(
        server.messages(),
        sample_messages(),
        "deleted without QUIT +OK"
    );
    let delivered = env.new_files().len();

    server.clear_faults();
    env.fetch_quiet(&[]);
    assert_eq!(
        env.delivered(),
        all_bodies(),
        "each message exactly once in total"
    );
    assert!(
        env.new_files().len() == 3 && delivered <= 3,
        "{delivered} then {}",
        env.new_files().len()
    );
    assert!(server.messages().is_empty(), "left: {:?}", server.uidls());
}

#[test]
fn retr_err_fails_but_keeps_earlier_messages_delivered_and_recorded() {
    // Invariant 4: once delivery has started, the seen-state is saved even when the session
    // then fails. Invariant 1: nothing is recorded for the message that was not delivered.
    let (server, _certs, env) = setup(Fault::RetrErr(2), "");
    let out = env.cmd().arg("fetch").assert().failure();
    let code = out.get_output().status.code();
    eprintln!("RETR -ERR: exit {code:?}");
    assert!(
        matches!(code, Some(c) if c != 0 && c != 70),
        "exit {code:?}"
    );
    let bodies = sample_messages();
    let delivered = env.delivered();
    assert!(
        delivered.contains(&delivered_form(&bodies[0].body)),
        "message 1 lost"
    );
    assert!(
        !delivered.contains(&delivered_form(&bodies[1].body)),
        "message 2 delivered"
    );
    assert_only_complete_messages(&env);
    assert_eq!(server.messages(), sample_messages());

    server.clear_faults();
    env.fetch_quiet(&[]);
    assert_eq!(
        env.delivered(),
        all_bodies(),
        "each message exactly once in total"
    );
}

#[test]
fn stalled_reply_times_out_with_75() {
    // Invariant 6: every read has a timeout.
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .fault(Fault::stall("RETR", Duration::from_secs(3)))
        .start();
    let env = TestEnv::new();
    let toml = env
        .account_toml("test", server.port(), "implicit", Some(certs.ca_file()))
        .replace("timeout = \"5s\"", "timeout = \"1s\"");
    env.write_config(&toml);
    let start = Instant::now();
    env.cmd().arg("fetch").assert().code(75).stdout("");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?} with timeout = 1s",
        start.elapsed()
    );
    assert_only_complete_messages(&env);
    assert!(env.new_files().is_empty());
    assert_eq!(server.messages(), sample_messages());
}

/// Poll until `done` holds, failing the test after 10 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_during_a_body_loses_nothing_and_duplicates_at_most_one() {
    // Invariant 3: a kill at any point loses nothing and leaves no partial message in the
    // mailbox (new/); at most one message is delivered twice per crash.
    let (server, _certs, env) = setup(
        Fault::StallInRetr {
            msg: 2,
            after: 100,
            delay: Duration::from_secs(2),
        },
        "keep = false\n",
    );
    let mut child = env.std_cmd().arg("fetch").spawn().expect("spawn pop3");
    // Kill once message 2's body has started and message 1 had time to be committed.
    wait_until("RETR 2", || {
        server.commands_now().iter().any(|c| c.line == "RETR 2")
    });
    thread::sleep(Duration::from_millis(500));
    child.kill().expect("kill pop3");
    child.wait().expect("reap pop3");
    // A killed writer may leave its file in tmp/: Maildir readers never look there, and
    // the Maildir convention cleans tmp/ files older than 36 hours. new/ must be clean.
    assert_new_has_only_complete_messages(&env);
    eprintln!("delivered before the kill: {}", env.new_files().len());
    assert_eq!(server.messages(), sample_messages(), "deleted without QUIT");

    server.clear_faults();
    env.fetch_quiet(&[]);
    let delivered = env.delivered();
    let all = all_bodies();
    for message in &all {
        assert!(delivered.contains(message), "a message was lost");
    }
    assert!(
        delivered.len() <= all.len() + 1,
        "{} deliveries of {} messages after one kill",
        delivered.len(),
        all.len()
    );
    assert!(server.messages().is_empty(), "left: {:?}", server.uidls());
}

#[test]
fn second_run_while_one_is_running_fails_with_75_naming_the_lock() {
    // The per-account lock: two runs never fetch one account at once (DESIGN.md, State).
    let (server, _certs, env) = setup(Fault::stall("UIDL", Duration::from_secs(2)), "");
    let first = env.std_cmd().arg("fetch").spawn().expect("spawn pop3");
    wait_until("UIDL", || {
        server.commands_now().iter().any(|c| c.verb() == "UIDL")
    });
    let out = env.cmd().arg("fetch").assert().code(75).stdout("");
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains(".lock"), "lock file not named: {stderr}");
    let first = first.wait_with_output().expect("wait for pop3");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(env.delivered(), all_bodies());
    assert_eq!(server.connection_count(), 1, "the second run connected");
}
