//! Retention and selection policy, and the three delivery targets end to end: the real
//! `pop3` binary against the scripted server (plain TCP on 127.0.0.1, USER/PASS allowed).
//!
//! `delete_after`, `max_size` / `--max-size`, `--limit`, `--dry-run`, `add_received = false`,
//! `--all --delete`; mbox (mboxrd quoting, separators, appending), MDA (environment, `%F`,
//! exit 75 and other failures) and procmail as an MDA.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::account::{Target, account, is_recorded, state_file, toml_str};
use crate::support::env::{
    TestEnv, crlf_to_lf, delivered_form, delivered_forms, text, without_received,
};
use crate::support::mailbox::{Tally, list_files, parse_mbox, tally};
use crate::support::server::plain_server;
use crate::support::server::{Message, TestServer, sample_messages};

fn bodies(messages: &[Message]) -> Vec<Vec<u8>> {
    delivered_forms(messages.iter().map(|m| m.body.as_slice()))
}

/// The plain-TCP server with the sample mailbox, and an env whose account delivers into
/// the env's Maildir with `extra` lines.
fn setup(extra: &str) -> (TestServer, TestEnv) {
    let server = plain_server(sample_messages());
    let env = TestEnv::new();
    let target = Target::Maildir(env.maildir.clone());
    env.write_config(&account(server.port(), &target, extra));
    (server, env)
}

fn has_verb(server: &TestServer, verb: &str) -> bool {
    server.verbs().iter().any(|v| v == verb)
}

/// `n` small distinct messages.
fn numbered(n: usize) -> Vec<Message> {
    (1..=n)
        .map(|i| Message {
            uidl: format!("num-{i:03}"),
            body: format!("From: n@example.org\r\nSubject: number {i}\r\n\r\nbody {i}\r\n")
                .into_bytes(),
        })
        .collect()
}

#[test]
fn delete_after_deletes_seen_messages_once_they_are_old_enough() {
    let (server, env) = setup("delete_after = \"1s\"\n");
    env.fetch_ok(&[]);
    assert_eq!(env.delivered(), bodies(&sample_messages()));
    assert!(!has_verb(&server, "DELE"), "DELE on the first run");
    assert_eq!(server.messages(), sample_messages(), "deleted too early");

    std::thread::sleep(Duration::from_millis(2100));
    env.fetch_ok(&[]);
    assert!(
        server.messages().is_empty(),
        "old messages not deleted: {:?}",
        server.uidls()
    );
    assert_eq!(env.new_files().len(), 3, "delivered again");

    // A message that arrives now is fetched but, being new, not deleted yet.
    server.add_message("uid-0004-later", b"Subject: later\r\n\r\nlater\r\n");
    env.fetch_ok(&[]);
    assert_eq!(env.new_files().len(), 4);
    assert_eq!(server.uidls(), ["uid-0004-later"]);
}

#[test]
fn max_size_leaves_big_messages_on_the_server_and_says_so() {
    let (server, env) = setup("max_size = \"1k\"\n");
    let stderr = env.fetch_ok(&["--delete"]);
    let samples = sample_messages();
    assert_eq!(env.delivered(), bodies(&samples[..2]));
    assert!(
        stderr.contains("max_size") || stderr.contains("too big"),
        "no word about the big message: {stderr:?}"
    );
    assert_eq!(
        server.uidls(),
        ["uid-0003-big"],
        "big message not left alone"
    );

    // Not recorded as seen: raising the limit fetches it.
    let target = Target::Maildir(env.maildir.clone());
    env.write_config(&account(server.port(), &target, "max_size = \"1M\"\n"));
    env.fetch_ok(&["--delete"]);
    assert_eq!(env.delivered(), bodies(&samples));
    assert!(server.messages().is_empty());
}

#[test]
fn max_size_flag_leaves_big_messages_on_the_server() {
    let (server, env) = setup("");
    let stderr = env.fetch_ok(&["--delete", "--max-size", "1k"]);
    let samples = sample_messages();
    assert_eq!(env.delivered(), bodies(&samples[..2]));
    assert!(
        stderr.contains("max_size") || stderr.contains("too big"),
        "no word about the big message: {stderr:?}"
    );
    assert_eq!(server.uidls(), ["uid-0003-big"]);
    env.fetch_ok(&["--delete"]);
    assert_eq!(env.delivered(), bodies(&samples));
    assert!(server.messages().is_empty());
}

#[test]
fn limit_fetches_n_per_run_in_server_order() {
    let server = plain_server(numbered(5));
    let env = TestEnv::new();
    env.write_config(&account(
        server.port(),
        &Target::Maildir(env.maildir.clone()),
        "",
    ));
    let all = numbered(5);
    for (run, expect) in [(1, 2), (2, 4), (3, 5), (4, 5)] {
        env.fetch_ok(&["--limit", "2"]);
        assert_eq!(
            env.delivered(),
            bodies(&all[..expect]),
            "after run {run} of --limit 2"
        );
    }
    // Each RETR asked for the next messages in order: 1 2, 3 4, 5.
    let retrs: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.verb() == "RETR")
        .map(|c| c.line)
        .collect();
    assert_eq!(retrs, ["RETR 1", "RETR 2", "RETR 3", "RETR 4", "RETR 5"]);
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let (server, env) = setup("");
    let state = state_file(&env, server.port());

    // A fresh account: nothing is created, nothing fetched.
    let out = env
        .cmd()
        .args(["fetch", "--dry-run", "--delete"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for m in sample_messages() {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("would fetch") && l.contains(&m.uidl)),
            "no would-fetch line for {}: {stdout}",
            m.uidl
        );
    }
    assert!(!env.maildir.exists(), "the dry run created the Maildir");
    assert!(!state.exists(), "the dry run wrote a state file");

    // With one message seen, a size limit and --delete: all three kinds of line.
    env.fetch_ok(&["--limit", "1"]);
    let state_before = fs::read(&state).expect("state file after a fetch");
    let files_before = env.new_files();
    let sessions_before = server.sessions().len();
    let out = env
        .cmd()
        .args(["fetch", "--dry-run", "--delete", "--max-size", "1k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line_with =
        |what: &str, uidl: &str| stdout.lines().any(|l| l.contains(what) && l.contains(uidl));
    assert!(line_with("would fetch", "uid-0002-tricky"), "{stdout}");
    assert!(line_with("too big", "uid-0003-big"), "{stdout}");
    assert!(line_with("would delete", "uid-0001-plain"), "{stdout}");
    assert!(!line_with("would fetch", "uid-0001-plain"), "{stdout}");

    assert_eq!(fs::read(&state).unwrap(), state_before, "state changed");
    assert_eq!(env.new_files(), files_before, "Maildir changed");
    assert!(env.tmp_files().is_empty());
    assert_eq!(server.messages(), sample_messages(), "server changed");
    let sessions = server.sessions();
    let dry = &sessions[sessions_before..];
    assert_eq!(dry.len(), 1);
    let verbs = dry[0].verbs();
    assert!(
        !verbs.iter().any(|v| v == "RETR" || v == "DELE"),
        "the dry run sent {verbs:?}"
    );
}

#[test]
fn add_received_false_delivers_the_messages_byte_for_byte() {
    let (_server, env) = setup("add_received = false\n");
    env.fetch_ok(&[]);
    let mut raw = env.delivered_raw();
    raw.sort();
    for m in &raw {
        assert!(!m.starts_with(b"Received:"), "Received: header added");
    }
    assert_eq!(raw, bodies(&sample_messages()));
    // Only CRLF became LF: the tricky message's bare LF and 8-bit bytes are intact.
    let tricky = crlf_to_lf(&sample_messages()[1].body);
    assert!(raw.iter().any(|m| m.starts_with(&tricky)));
}

#[test]
fn all_with_delete_fetches_seen_messages_again_and_empties_the_server() {
    let (server, env) = setup("");
    env.fetch_ok(&[]);
    assert_eq!(env.new_files().len(), 3);
    env.fetch_ok(&["--all", "--delete"]);
    let mut twice: Vec<Vec<u8>> = bodies(&sample_messages())
        .into_iter()
        .flat_map(|m| [m.clone(), m])
        .collect();
    twice.sort();
    assert_eq!(env.delivered(), twice);
    assert!(server.messages().is_empty(), "left: {:?}", server.uidls());
}

/// A message with a Return-Path (the envelope sender for mbox separators and `%F`).
fn with_return_path() -> Message {
    Message {
        uidl: "uid-0004-return-path".to_string(),
        body: b"Return-Path: <bob@example.org>\r\n\
From: Bob <bob@example.org>\r\n\
Subject: from bob\r\n\
\r\n\
From here on, >From and >>From lines.\r\n\
>From one\r\n\
>>From two\r\n\
From three\r\n"
            .to_vec(),
    }
}

#[test]
fn mbox_delivery_quotes_from_lines_and_appends_only_new_messages() {
    let mut messages = sample_messages();
    messages.push(with_return_path());
    let server = plain_server(messages.clone());
    let env = TestEnv::new();
    let mbox = env.home.join("Mail/inbox.mbox");
    fs::create_dir_all(mbox.parent().unwrap()).unwrap();
    let target = Target::Mbox(mbox.clone());
    env.write_config(&account(server.port(), &target, ""));
    env.fetch_ok(&[]);

    let data = fs::read(&mbox).expect("mbox written");
    assert!(data.starts_with(b"From "), "no separator first");
    assert!(
        data.ends_with(b"\n\n"),
        "no blank line after the last message"
    );
    assert!(!mbox.with_extension("mbox.lock").exists(), "dot-lock left");
    let parsed = parse_mbox(&data);
    assert_eq!(parsed.len(), 4, "{parsed:?}");
    for m in &parsed {
        // From SENDER asctime: "From MAILER-DAEMON Mon Nov 30 07:26:53 2026".
        let fields: Vec<&str> = m.separator.split_whitespace().collect();
        assert_eq!(fields.len(), 7, "separator {:?}", m.separator);
        let sender = if m.body.windows(11).any(|w| w == b"Subject: fr") {
            "bob@example.org"
        } else {
            "MAILER-DAEMON"
        };
        assert_eq!(fields[1], sender, "separator {:?}", m.separator);
    }
    let got: Vec<Vec<u8>> = parsed.iter().map(|m| m.body.clone()).collect();
    let t = tally(
        &messages.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        &got,
    );
    assert_eq!(t, Tally::default(), "mbox content");
    // mboxrd on disk: every `>*From ` line inside a message got one more `>`.
    let raw = text(&data);
    for line in [
        ">From the start of a line\n",
        ">>From quoted already\n",
        ">From here on",
        ">>From one\n",
        ">>>From two\n",
        ">From three\n",
    ] {
        assert!(raw.contains(line), "{line:?} not in the mbox:\n{raw}");
    }
    assert_eq!(
        raw.lines().filter(|l| l.starts_with("From ")).count(),
        4,
        "an unquoted From line inside a message"
    );

    // The second run appends only the new message and leaves the rest byte for byte.
    env.fetch_ok(&[]);
    assert_eq!(
        fs::read(&mbox).unwrap(),
        data,
        "second run changed the mbox"
    );
    let later = b"From: Dave <dave@example.org>\r\nSubject: later\r\n\r\nFrom later\r\n".to_vec();
    server.add_message("uid-0005-later", &later);
    env.fetch_ok(&[]);
    let after = fs::read(&mbox).unwrap();
    assert!(after.starts_with(&data), "earlier messages rewritten");
    let appended = parse_mbox(&after[data.len()..]);
    assert_eq!(appended.len(), 1, "{appended:?}");
    assert_eq!(
        without_received(&appended[0].body).unwrap(),
        delivered_form(&later).as_slice()
    );
}

#[test]
fn mda_gets_the_message_the_environment_and_the_sender() {
    let mut messages = sample_messages();
    messages.push(with_return_path());
    let server = plain_server(messages.clone());
    let env = TestEnv::new();
    let dir = env.root().join("mda-out");
    fs::create_dir_all(&dir).unwrap();
    let script = "cat > \"$0/$POP3_UIDL\" && \
                  printf '%s|%s|%s|%s\\n' \"$POP3_ACCOUNT\" \"$POP3_UIDL\" \"$POP3_SIZE\" \"$1\" \
                  >> \"$0/env.log\"";
    let deliver = format!(
        "deliver.mda = [\"sh\", \"-c\", {}, {}, \"%F\"]\n",
        toml_str(script),
        toml_str(&dir)
    );
    let toml = account(server.port(), &Target::Maildir(env.maildir.clone()), "")
        .replace(&Target::Maildir(env.maildir.clone()).toml(), &deliver);
    env.write_config(&toml);
    env.fetch_ok(&[]);

    for m in &messages {
        let delivered = fs::read(dir.join(&m.uidl)).expect("MDA output for each UIDL");
        assert_eq!(
            without_received(&delivered).expect("Received: header"),
            delivered_form(&m.body).as_slice(),
            "{}",
            m.uidl
        );
    }
    let log = fs::read_to_string(dir.join("env.log")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort();
    let mut expected: Vec<String> = messages
        .iter()
        .map(|m| {
            let sender = if m.uidl.contains("return-path") {
                "bob@example.org"
            } else {
                "MAILER-DAEMON"
            };
            format!("test|{}|{}|{sender}", m.uidl, m.size())
        })
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
    assert!(!env.maildir.exists());
}

/// An account delivering through the MDA `command` (a `sh -c` string) with `--delete`.
fn mda_setup(command: &str) -> (TestServer, TestEnv) {
    let server = plain_server(sample_messages());
    let env = TestEnv::new();
    let maildir = Target::Maildir(env.maildir.clone());
    let toml = account(server.port(), &maildir, "").replace(
        &maildir.toml(),
        &format!("deliver.mda = {}\n", toml_str(command)),
    );
    env.write_config(&toml);
    (server, env)
}

/// Switch the account of `mda_setup` to a working MDA that writes into `dir`.
fn working_mda(env: &TestEnv, server: &TestServer, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    env.write_config(&account(
        server.port(),
        &Target::MdaDir(dir.to_path_buf()),
        "",
    ));
}

#[test]
fn mda_exit_75_is_a_temporary_failure_that_records_and_deletes_nothing() {
    let (server, env) = mda_setup("cat > /dev/null; exit 75");
    let out = env.cmd().args(["fetch", "--delete"]).output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(!has_verb(&server, "DELE"), "DELE after a failed delivery");
    assert_eq!(server.messages(), sample_messages());
    let state = fs::read_to_string(state_file(&env, server.port())).unwrap_or_default();
    for m in sample_messages() {
        assert!(
            !is_recorded(&state, &m.uidl),
            "{} recorded: {state}",
            m.uidl
        );
    }

    let dir = env.root().join("mda-out");
    working_mda(&env, &server, &dir);
    env.fetch_ok(&["--delete"]);
    let raw: Vec<Vec<u8>> = list_files(&dir)
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    let originals: Vec<Vec<u8>> = sample_messages().into_iter().map(|m| m.body).collect();
    assert_eq!(tally(&originals, &raw), Tally::default());
    assert!(server.messages().is_empty());
}

#[test]
fn mda_failure_is_74_with_the_mda_error_text() {
    let (server, env) =
        mda_setup("cat > /dev/null; echo 'quota exceeded for alice (mda-test)' >&2; exit 1");
    let stderr = env.fetch_code(&["--delete"], 74);
    assert!(
        stderr.contains("quota exceeded for alice (mda-test)"),
        "the MDA's message is missing: {stderr}"
    );
    assert_eq!(server.messages(), sample_messages(), "deleted");
    assert!(!has_verb(&server, "DELE"));

    let dir = env.root().join("mda-out");
    working_mda(&env, &server, &dir);
    env.fetch_ok(&["--delete"]);
    assert_eq!(
        list_files(&dir).len(),
        3,
        "not every message delivered once"
    );
}

#[test]
fn procmail_as_mda_delivers_into_a_maildir() {
    let Ok(out) = std::process::Command::new("sh")
        .args(["-c", "command -v procmail"])
        .output()
    else {
        eprintln!("NOTICE: skipping the procmail test: no sh");
        return;
    };
    if !out.status.success() {
        eprintln!("NOTICE: skipping the procmail test: procmail is not installed");
        return;
    }
    let procmail = text(&out.stdout).trim().to_string();
    let server = plain_server(sample_messages());
    let env = TestEnv::new();
    let maildir = env.root().join("procmail-maildir");
    let rc = env.write_file(
        "procmailrc",
        &format!(
            "MAILDIR={dir}/\nDEFAULT={dir}/\nLOGFILE={log}\nVERBOSE=no\n",
            dir = maildir.display(),
            log = env.root().join("procmail.log").display()
        ),
        0o600,
    );
    let deliver = format!(
        "deliver.mda = [{}, {}]\n",
        toml_str(&procmail),
        toml_str(&rc)
    );
    let target = Target::Maildir(env.maildir.clone());
    let toml = account(server.port(), &target, "").replace(&target.toml(), &deliver);
    env.write_config(&toml);
    env.fetch_ok(&["--delete"]);
    let raw = Target::Maildir(maildir).delivered_raw();
    let originals: Vec<Vec<u8>> = sample_messages().into_iter().map(|m| m.body).collect();
    assert_eq!(
        tally(&originals, &raw),
        Tally::default(),
        "procmail log: {}",
        fs::read_to_string(env.root().join("procmail.log")).unwrap_or_default()
    );
    assert!(server.messages().is_empty());
}

#[test]
fn mbox_parser_handles_quoting_and_torn_tails() {
    let data = b"From a Mon Jan  1 00:00:00 2024\nA: b\n\n>From x\n>>From y\n\nFrom b Mon Jan  1 00:00:00 2024\nC: d\n\ntorn";
    let parsed = parse_mbox(data);
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].body, b"A: b\n\nFrom x\n>From y\n");
    assert!(
        parsed[1]
            .body
            .ends_with(b"<no blank line after this message>")
    );
}
