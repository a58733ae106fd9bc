//! End-to-end fetches into a Maildir over implicit TLS: byte-for-byte delivery, the seen
//! state across runs, keep / delete, `--all`, `list`, one-off flags without a config file,
//! and `-c` after the subcommand.

use std::path::PathBuf;

use crate::support::certs::TestCerts;
use crate::support::env::{TestEnv, delivered_form, delivered_forms, text};
use crate::support::server::{Message, PASSWORD, TestServer, USER, extra_message, sample_messages};

/// A TLS server with the sample mailbox, its certificates, and a test environment whose
/// default config has one account `test` for it (plus `extra` lines in that table).
fn setup(extra: &str) -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "implicit", Some(certs.ca_file()));
    toml.push_str(extra);
    env.write_config(&toml);
    (server, certs, env)
}

fn bodies(messages: &[Message]) -> Vec<Vec<u8>> {
    delivered_forms(messages.iter().map(|m| m.body.as_slice()))
}

#[test]
fn fetch_over_implicit_tls_delivers_every_message_byte_for_byte() {
    let (server, _certs, env) = setup("");
    env.fetch_quiet(&[]);

    assert_eq!(env.delivered(), bodies(&sample_messages()));
    assert!(
        env.tmp_files().is_empty(),
        "left in tmp/: {:?}",
        env.tmp_files()
    );
    // The tricky message: stuffed dots removed, "From " untouched, 8-bit kept, final LF added.
    let tricky = delivered_form(&sample_messages()[1].body);
    assert!(env.delivered().contains(&tricky));
    assert!(tricky.windows(13).any(|w| w == b"\n.leading dot"));
    assert!(tricky.windows(4).any(|w| w == b"\n.\n\n"));
    assert!(tricky.ends_with(b"last line without end\n"));
    // Credentials went only through TLS.
    assert!(server.sent_credentials() && !server.credentials_in_clear());
}

#[test]
fn received_header_names_pop3_and_the_uidl() {
    let (_server, _certs, env) = setup("");
    env.fetch_quiet(&[]);
    let raw = env.delivered_raw();
    assert_eq!(raw.len(), 3);
    for uidl in sample_messages().iter().map(|m| m.uidl.clone()) {
        let found = raw.iter().any(|m| {
            let header_end = m.windows(2).position(|w| w == b"\n\n").unwrap_or(m.len());
            let header = text(&m[..header_end]);
            let received: String = header
                .split_inclusive('\n')
                .take_while(|l| l.starts_with("Received:") || l.starts_with([' ', '\t']))
                .collect();
            received.contains("pop3") && received.contains(&uidl)
        });
        assert!(found, "no Received: header names pop3 and {uidl}: {raw:?}");
    }
}

#[test]
fn second_run_fetches_nothing_and_prints_nothing() {
    let (server, _certs, env) = setup("");
    env.fetch_quiet(&[]);
    let first = env.new_files();
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files(), first, "second run delivered again");
    assert_eq!(server.connection_count(), 2);
}

#[test]
fn message_added_on_server_is_the_only_one_fetched_next() {
    let (server, _certs, env) = setup("");
    env.fetch_quiet(&[]);
    let first = env.new_files();
    let extra = extra_message("added later");
    server.add_message("uid-0004-later", &extra);
    env.fetch_quiet(&[]);
    let new: Vec<_> = env
        .new_files()
        .into_iter()
        .filter(|f| !first.contains(f))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let mut expected = bodies(&sample_messages());
    expected.push(delivered_form(&extra));
    expected.sort();
    assert_eq!(env.delivered(), expected);
}

#[test]
fn keep_is_the_default_and_leaves_every_message_on_the_server() {
    let (server, _certs, env) = setup("");
    env.fetch_quiet(&[]);
    assert_eq!(server.messages(), sample_messages());
    assert!(
        !server.verbs().contains(&"DELE".to_string()),
        "DELE sent with keep"
    );
}

#[test]
fn delete_flag_empties_the_server_and_rerun_delivers_nothing() {
    let (server, _certs, env) = setup("");
    env.fetch_quiet(&["--delete"]);
    assert_eq!(env.delivered(), bodies(&sample_messages()));
    assert!(server.messages().is_empty(), "left: {:?}", server.uidls());
    env.fetch_quiet(&["--delete"]);
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn keep_false_in_config_empties_the_server() {
    let (server, _certs, env) = setup("keep = false\n");
    env.fetch_quiet(&[]);
    assert_eq!(env.delivered(), bodies(&sample_messages()));
    assert!(server.messages().is_empty(), "left: {:?}", server.uidls());
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn keep_flag_overrides_keep_false_in_config() {
    let (server, _certs, env) = setup("keep = false\n");
    env.fetch_quiet(&["--keep"]);
    assert_eq!(env.new_files().len(), 3);
    assert_eq!(server.messages(), sample_messages());
}

#[test]
fn all_flag_refetches_seen_messages() {
    let (_server, _certs, env) = setup("");
    env.fetch_quiet(&[]);
    env.fetch_quiet(&["--all"]);
    let mut twice = bodies(&sample_messages());
    twice.extend(bodies(&sample_messages()));
    twice.sort();
    assert_eq!(env.delivered(), twice);
}

/// `list` rows as (number, size, uidl, state), skipping the `#` header.
fn list_rows(env: &TestEnv) -> Vec<(u32, usize, String, String)> {
    let out = env.cmd().arg("list").assert().code(0);
    let stdout = text(&out.get_output().stdout);
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or("");
    assert!(header.starts_with('#'), "no # header line: {stdout:?}");
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 4, "short row {l:?}");
            (
                f[0].parse().expect("NUM"),
                f[1].parse().expect("SIZE"),
                f[2].to_string(),
                f[3].to_string(),
            )
        })
        .collect()
}

#[test]
fn list_shows_number_size_uidl_and_new_or_seen() {
    let (server, _certs, env) = setup("");
    let expect = |states: &[&str], messages: &[Message]| -> Vec<(u32, usize, String, String)> {
        messages
            .iter()
            .zip(states)
            .enumerate()
            .map(|(i, (m, s))| (i as u32 + 1, m.size(), m.uidl.clone(), s.to_string()))
            .collect()
    };
    assert_eq!(list_rows(&env), expect(&["new"; 3], &sample_messages()));
    assert!(env.new_files().is_empty(), "list delivered something");

    env.fetch_quiet(&[]);
    server.add_message("uid-0004-later", &extra_message("later"));
    let messages = server.messages();
    assert_eq!(
        list_rows(&env),
        expect(&["seen", "seen", "seen", "new"], &messages)
    );
    assert_eq!(server.messages(), messages, "list changed the mailbox");
}

#[test]
fn one_off_flags_work_without_a_config_file() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let port = server.port().to_string();
    let maildir = env.maildir.to_str().unwrap().to_string();
    let ca = certs.ca_file().to_str().unwrap().to_string();
    let args = [
        "fetch",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        USER,
        "--tls",
        "implicit",
        "--ca-file",
        &ca,
        "--maildir",
        &maildir,
    ];
    assert!(!env.config_path().exists());
    env.cmd()
        .args(args)
        .env("POP3_PASSWORD", PASSWORD)
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    assert_eq!(env.delivered(), bodies(&sample_messages()));
    // The one-off account keeps its own state too.
    env.cmd()
        .args(args)
        .env("POP3_PASSWORD", PASSWORD)
        .assert()
        .code(0);
    assert_eq!(env.new_files().len(), 3);
}

/// Move the default config to another path, so only `-c` can find it.
fn config_elsewhere(env: &TestEnv) -> PathBuf {
    let elsewhere = env.root().join("elsewhere.toml");
    std::fs::rename(env.config_path(), &elsewhere).unwrap();
    elsewhere
}

#[test]
fn config_flag_is_accepted_after_the_subcommand() {
    let (_server, _certs, env) = setup("");
    let path = config_elsewhere(&env);
    let path = path.to_str().unwrap();
    env.fetch_quiet(&["-c", path, "test"]);
    assert_eq!(env.delivered(), bodies(&sample_messages()));
    env.cmd()
        .args(["-c", path, "fetch", "test"])
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    env.fetch_quiet(&["--config", path]);
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn pop3_config_env_names_the_config_file() {
    let (_server, _certs, env) = setup("");
    let path = config_elsewhere(&env);
    env.cmd()
        .arg("fetch")
        .env("POP3_CONFIG", &path)
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn verbose_trace_shows_the_protocol_but_never_the_password() {
    let (_server, _certs, env) = setup("");
    let out = env.cmd().args(["-vv", "fetch"]).assert().code(0);
    let (stdout, stderr) = (
        text(&out.get_output().stdout),
        text(&out.get_output().stderr),
    );
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stderr}"
    );
    assert!(
        stderr.contains("PASS ***"),
        "no masked PASS in the trace: {stderr}"
    );
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn verbose_prints_one_summary_line_naming_the_account() {
    let (_server, _certs, env) = setup("");
    let stderr = env.fetch_ok(&["-v"]);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("test") && l.contains('3')),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD));
}

/// Gmail serves about 250 messages per session and hides a message once it has been
/// retrieved (DESIGN.md, Real servers): one `pop3 fetch` logs in again until a session
/// brings nothing new, so the whole mailbox arrives in one run, each message once.
#[test]
fn a_gmail_like_server_is_emptied_in_one_run_over_several_sessions() {
    let certs = TestCerts::new();
    let mut builder = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .greeting("+OK Gpop ready for requests from 127.0.0.1 x1mb12345")
        .session_cap(4)
        .max_connections(16);
    let messages: Vec<Message> = (1..=10)
        .map(|i| Message {
            uidl: format!("GmailId{i:04}"),
            body: format!("Subject: message {i}\n\nbody {i}\n").into_bytes(),
        })
        .collect();
    builder = builder.messages(messages.clone());
    let server = builder.start();
    let env = TestEnv::new();
    env.write_config(&env.account_toml("gmail", server.port(), "implicit", Some(certs.ca_file())));
    env.fetch_quiet(&[]);
    assert_eq!(env.delivered(), bodies(&messages));
    // Sessions of 4, 4, 2, then one that brings nothing and ends the run.
    let logins = server
        .commands()
        .iter()
        .filter(|c| c.verb() == "PASS")
        .count();
    assert_eq!(logins, 4, "{:?}", server.verbs());
    // An ordinary server gets one session.
    let (plain, _certs, env) = setup("");
    env.fetch_quiet(&[]);
    let logins = plain
        .commands()
        .iter()
        .filter(|c| c.verb() == "PASS")
        .count();
    assert_eq!(logins, 1);
}
