//! Regression tests for the paths a hostile review found to lose or alter mail (issue 9),
//! each through the real binary against the scripted server, named after the invariant.

use crate::support::env::{TestEnv, strip_received};
use crate::support::server::{Fault, Message, PASSWORD, TestServer, USER};

fn config(env: &TestEnv, port: u16, extra: &str) {
    env.write_config(&format!(
        "[accounts.test]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{USER}\"\n\
         password = \"{PASSWORD}\"\ntls = \"none\"\nallow_plaintext_password = true\n\
         timeout = \"5s\"\ndeliver.maildir = '{}'\n{extra}",
        env.maildir.display()
    ));
}

/// A server that says Gpop; with `cap`, it serves that many messages a session and hides
/// what was retrieved from later sessions (Gmail), without, it lists everything every time
/// (Gmail's `recent:` mode).
fn gmail_like(n: usize, cap: Option<usize>) -> TestServer {
    let messages: Vec<Message> = (1..=n)
        .map(|i| Message {
            uidl: format!("GmailId{i:04}"),
            body: format!("Subject: message {i}\n\nbody {i}\n").into_bytes(),
        })
        .collect();
    let mut builder = TestServer::builder()
        .greeting("+OK Gpop ready for requests from 127.0.0.1 x1mb12345")
        .max_connections(128)
        .messages(messages);
    if let Some(cap) = cap {
        builder = builder.session_cap(cap);
    }
    builder.start()
}

#[test]
fn no_loss_dot_after_bare_lf_is_delivered_exactly() {
    // Issue 9 item 3: "x" LF "." CRLF is one line; servers stuff only after CRLF, so the
    // dot is data. It used to be dropped, and the altered message deleted on the server.
    let server = TestServer::builder()
        .message("u1", b"Subject: dots\r\n\r\nplaceholder\r\n")
        .fault(Fault::reply(
            "RETR",
            b"+OK\r\nSubject: dots\r\n\r\nx\n.\r\ny\n..z\r\n..w\r\n.\r\n",
        ))
        .start();
    let env = TestEnv::new();
    config(&env, server.port(), "keep = false\n");
    env.fetch_ok(&[]);
    let delivered = env.delivered_raw();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        strip_received(&delivered[0]),
        b"Subject: dots\n\nx\n.\ny\n..z\n.w\n",
        "only the dot right after CRLF is stuffing"
    );
}

#[test]
fn no_loss_all_against_a_capped_server_delivers_each_message_once() {
    // Issue 9 item 6: with --all every session re-listed what it had fetched, so a server
    // that caps sessions (Gmail) got every message delivered up to 50 times in one run.
    let server = gmail_like(6, None);
    let env = TestEnv::new();
    config(&env, server.port(), "");
    env.fetch_ok(&[]);
    assert_eq!(env.new_files().len(), 6);
    env.fetch_ok(&["--all"]);
    assert_eq!(
        env.new_files().len(),
        12,
        "each message once more, not 50 times"
    );
}

#[test]
fn limit_counts_per_run_against_a_capped_server() {
    // Issue 9 item 6: --limit counted per session, so the re-login loop fetched everything.
    let server = gmail_like(6, Some(4));
    let env = TestEnv::new();
    config(&env, server.port(), "");
    env.fetch_ok(&["--limit", "1"]);
    assert_eq!(env.new_files().len(), 1);
    env.fetch_ok(&["--limit", "5"]);
    assert_eq!(env.new_files().len(), 6);
}
