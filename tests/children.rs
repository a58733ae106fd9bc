//! The processes pop3 starts (a delivery command, a password command), end to end: the real
//! `pop3` binary against the scripted server on 127.0.0.1, issue #9 (secrets and hostile
//! input). Each test is named after the invariant it guards:
//!
//! * no child inherits a password: not `POP3_PASSWORD`, not a variable that an account names
//!   in `password.env`;
//! * `%F` cannot carry shell code from a hostile `Return-Path`, whatever the user's quoting;
//! * an MDA timeout ends the MDA's whole process group, so nothing delivers after pop3 gave up;
//! * a password command that never returns is ended after `password.timeout` (exit 75) and
//!   does not hold the account lock for ever; a run that finds the lock held names the holder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::account::{Target, is_recorded, state_file, toml_str};
use crate::support::env::{TestEnv, text};
use crate::support::mailbox::list_files;
use crate::support::server::{Message, PASSWORD, USER, plain_server};

/// A second secret, for a variable that an account names in `password.env`.
const OTHER_PASSWORD: &str = "other-Pa55-for-env";

/// The variable that account `other` reads its password from.
const OTHER_VAR: &str = "POP3_TEST_OTHER_PASSWORD";

/// One small message with this Return-Path.
fn message_from(return_path: &str) -> Message {
    Message {
        uidl: "uid-children-1".into(),
        body: format!("Return-Path: <{return_path}>\r\nSubject: hi\r\n\r\nbody\r\n").into_bytes(),
    }
}

/// `[accounts.test]` on the plain test server with `password_lines` as its password source
/// and `rest` (delivery and more) after it; then `[accounts.other]`, which takes its
/// password from [`OTHER_VAR`] (never fetched here: its mere mention must hide the variable).
fn config(port: u16, password_lines: &str, rest: &str) -> String {
    format!(
        "[accounts.test]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         user = \"{USER}\"\n\
         tls = \"none\"\n\
         allow_plaintext_password = true\n\
         timeout = \"5s\"\n\
         {password_lines}{rest}\n\
         [accounts.other]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         user = \"bob\"\n\
         tls = \"none\"\n\
         password.env = \"{OTHER_VAR}\"\n\
         deliver.maildir = \"~/unused\"\n"
    )
}

/// An MDA (argv, no shell of ours) that writes its environment to `dump` and the message
/// into `dir`.
fn env_dumping_mda(dump: &Path, dir: &Path) -> String {
    fs::create_dir_all(dir).unwrap();
    format!(
        "deliver.mda = [\"sh\", \"-c\", {}, {}, {}]\n",
        toml_str("env > \"$0\"; cat > \"$1/$POP3_UIDL\""),
        toml_str(dump),
        toml_str(dir)
    )
}

/// `pop3 fetch test` with both secrets in its environment.
fn fetch_with_secrets(env: &TestEnv) -> std::process::Output {
    env.cmd()
        .env("POP3_PASSWORD", PASSWORD)
        .env(OTHER_VAR, OTHER_PASSWORD)
        .args(["fetch", "test"])
        .output()
        .unwrap()
}

/// Assert that an environment dump holds neither secret, nor the names that carry them.
fn assert_no_secret(dump: &Path, who: &str) {
    let seen = fs::read_to_string(dump).unwrap_or_else(|e| panic!("{who} did not run: {e}"));
    for secret in [PASSWORD, OTHER_PASSWORD] {
        assert!(
            !seen.contains(secret),
            "{who} saw a password in its environment: {:?}",
            seen.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
        );
    }
    for name in ["POP3_PASSWORD=", &format!("{OTHER_VAR}=")] {
        assert!(!seen.contains(name), "{who} inherited {name}");
    }
}

#[test]
fn no_leak_password_env_not_inherited_by_mda() {
    let server = plain_server(vec![message_from("bob@example.org")]);
    let env = TestEnv::new();
    let dump = env.root().join("mda-env");
    let dir = env.root().join("mda-out");
    // No password key: the password comes from POP3_PASSWORD, the documented default.
    env.write_config(&config(server.port(), "", &env_dumping_mda(&dump, &dir)));
    let out = fetch_with_secrets(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(list_files(&dir).len(), 1, "the MDA did not deliver");
    assert_no_secret(&dump, "the MDA");
    // What it is meant to see, it sees.
    let seen = fs::read_to_string(&dump).unwrap();
    for line in [
        "POP3_ACCOUNT=test",
        "POP3_UIDL=uid-children-1",
        "POP3_SENDER=bob@example.org",
    ] {
        assert!(seen.lines().any(|l| l == line), "{line} missing:\n{seen}");
    }
}

#[test]
fn no_leak_password_env_var_not_inherited_by_mda() {
    let server = plain_server(vec![message_from("bob@example.org")]);
    let env = TestEnv::new();
    let dump = env.root().join("mda-env");
    let dir = env.root().join("mda-out");
    // This account reads its own password from a named variable.
    let password = "password.env = \"POP3_TEST_OWN_PASSWORD\"\n";
    env.write_config(&config(
        server.port(),
        password,
        &env_dumping_mda(&dump, &dir),
    ));
    let out = env
        .cmd()
        .env("POP3_TEST_OWN_PASSWORD", PASSWORD)
        .env(OTHER_VAR, OTHER_PASSWORD)
        .args(["fetch", "test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_no_secret(&dump, "the MDA");
    let seen = fs::read_to_string(&dump).unwrap();
    assert!(!seen.contains("POP3_TEST_OWN_PASSWORD="), "{seen}");
}

#[test]
fn no_leak_password_env_not_inherited_by_password_command() {
    let server = plain_server(vec![message_from("bob@example.org")]);
    let env = TestEnv::new();
    let dump = env.root().join("command-env");
    let script = format!("env > '{}'; echo {PASSWORD}", dump.display());
    let password = format!("password.command = {}\n", toml_str(&script));
    let rest = Target::Maildir(env.maildir.clone()).toml();
    env.write_config(&config(server.port(), &password, &rest));
    let out = fetch_with_secrets(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.new_files().len(), 1);
    // The command printed PASSWORD itself; its environment must not have held one.
    let seen = fs::read_to_string(&dump).unwrap();
    assert!(!seen.contains("POP3_PASSWORD="), "{seen}");
    assert!(!seen.contains(&format!("{OTHER_VAR}=")), "{seen}");
    assert!(!seen.contains(OTHER_PASSWORD), "{seen}");
}

/// A remote sender controls the Return-Path. With `%F` inside the user's own quotes it must
/// still be data, never shell code (the audit's reproduction, and its single-quoted twin).
#[test]
fn mda_sender_substitution_cannot_inject_shell() {
    for quoted in ["\\\"%F\\\"", "'%F'", "%F"] {
        let env = TestEnv::new();
        let marker = env.root().join("pwned");
        let sender = format!("$(touch${{IFS}}{})@evil.example", marker.display());
        let server = plain_server(vec![message_from(&sender)]);
        let got = env.root().join("percent-f");
        let line = format!(
            "deliver.mda = \"cat >/dev/null; printf '%s|%s' {quoted} \\\"$POP3_SENDER\\\" > {}\"\n",
            got.display()
        );
        env.write_config(&config(
            server.port(),
            &format!("password = \"{PASSWORD}\"\n"),
            &line,
        ));
        let out = env.cmd().args(["fetch", "test"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{quoted}: {}",
            text(&out.stderr)
        );
        assert!(!marker.exists(), "{quoted}: the Return-Path ran a command");
        // %F fell back to MAILER-DAEMON; the sender as found is in POP3_SENDER, as data.
        assert_eq!(
            fs::read_to_string(&got).unwrap(),
            format!("MAILER-DAEMON|{sender}"),
            "{quoted}"
        );
        assert!(
            is_recorded(
                &fs::read_to_string(state_file(&env, server.port())).unwrap(),
                "uid-children-1"
            ),
            "{quoted}: delivered but not recorded"
        );
    }
}

/// The audit's reproduction: a compound `sh -c` string that times out must not go on and
/// deliver after pop3 reported the failure; the message stays new on the server.
#[test]
fn mda_timeout_ends_the_whole_process_group() {
    let server = plain_server(vec![message_from("bob@example.org")]);
    let env = TestEnv::new();
    let late = env.root().join("delivered-late");
    let also_late = env.root().join("delivered-late-2");
    let line = format!(
        "mda_timeout = \"1s\"\ndeliver.mda = {}\n",
        toml_str(format!(
            "cat >/dev/null; (sleep 2; touch '{}') & sh -c 'sleep 2; touch {}' || exit 75",
            late.display(),
            also_late.display()
        ))
    );
    env.write_config(&config(
        server.port(),
        &format!("password = \"{PASSWORD}\"\n"),
        &line,
    ));
    let t0 = Instant::now();
    let stderr = env.fetch_code(&["test"], 75);
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Everything in the string would have finished 2 s after it started.
    thread::sleep(Duration::from_millis(2500).saturating_sub(t0.elapsed()));
    thread::sleep(Duration::from_millis(300));
    assert!(
        !late.exists(),
        "a background part of the timed-out MDA delivered"
    );
    assert!(
        !also_late.exists(),
        "a grandchild of the timed-out MDA delivered"
    );
    assert_eq!(server.uidls(), ["uid-children-1"]);
    let state = fs::read_to_string(state_file(&env, server.port())).unwrap_or_default();
    assert!(!is_recorded(&state, "uid-children-1"), "{state}");
}

/// The account's lock file.
fn lock_file(env: &TestEnv, port: u16) -> PathBuf {
    env.state_dir()
        .join(format!("{USER}@127.0.0.1_{port}.lock"))
}

/// Whether process `pid` is gone (or a zombie), waiting up to 2 s.
fn process_gone(pid: &str) -> bool {
    let t0 = Instant::now();
    loop {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) if t0.elapsed() > Duration::from_secs(2) => return false,
            Ok(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A password command that never answers (a pinentry under cron) is ended after
/// `password.timeout`, with everything it started; the run exits 75 naming the account and
/// the command, never what the command printed; and the lock is free for the next run.
#[test]
fn password_command_timeout_exits_75_and_frees_the_account_lock() {
    let server = plain_server(vec![message_from("bob@example.org")]);
    let env = TestEnv::new();
    let pid_file = env.root().join("pinentry.pid");
    let script = format!(
        "printf half-typed-secret; sleep 30 & echo $! > '{}'; wait",
        pid_file.display()
    );
    let password = format!(
        "password.command = {}\npassword.timeout = \"1s\"\n",
        toml_str(&script)
    );
    let rest = Target::Maildir(env.maildir.clone()).toml();
    env.write_config(&config(server.port(), &password, &rest));
    let t0 = Instant::now();
    let stderr = env.fetch_code(&["test"], 75);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(stderr.starts_with("pop3: test: "), "{stderr}");
    assert!(
        !stderr.contains("account test"),
        "prefix said twice: {stderr}"
    );
    assert!(stderr.contains("password.command \"printf\""), "{stderr}");
    assert!(stderr.contains("did not finish within 1 s"), "{stderr}");
    assert!(!stderr.contains("half-typed-secret"), "{stderr}");
    let sleeper = fs::read_to_string(&pid_file).unwrap();
    assert!(
        process_gone(sleeper.trim()),
        "the password command's child {sleeper} outlived the timeout"
    );
    assert!(!server.sent_credentials(), "logged in without a password");

    // The lock is free: the next run, with a command that answers, fetches.
    let password = format!("password.command = [\"echo\", \"{PASSWORD}\"]\n");
    env.write_config(&config(server.port(), &password, &rest));
    env.fetch_ok(&["test"]);
    assert_eq!(env.new_files().len(), 1);
}

/// A run that finds the account locked names the process holding it and since when, so a
/// stuck run can be found (and killed) instead of guessed at.
#[test]
fn lock_held_message_names_the_holder_pid_and_start_time() {
    let server = plain_server(vec![message_from("bob@example.org")]);
    let env = TestEnv::new();
    // The first run hangs in its password command for 3 s, holding the lock.
    let password = "password.command = [\"sleep\", \"10\"]\npassword.timeout = \"3s\"\n";
    let rest = Target::Maildir(env.maildir.clone()).toml();
    env.write_config(&config(server.port(), password, &rest));
    let mut first = env.std_cmd();
    let first = first
        .args(["fetch", "test"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    let lock = lock_file(&env, server.port());
    let t0 = Instant::now();
    while !fs::read_to_string(&lock).is_ok_and(|c| c.starts_with(&format!("{pid} "))) {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the first run never took the lock"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let stderr = env.fetch_code(&["test"], 75);
    assert!(stderr.contains("already fetching"), "{stderr}");
    assert!(
        stderr.contains(&format!("held by pid {pid} since ")),
        "{stderr}"
    );
    assert!(!stderr.contains("no process"), "{stderr}");
    // "since YYYY-MM-DD HH:MM:SS"
    let since = stderr.split(" since ").nth(1).unwrap_or_default();
    assert!(
        since.len() >= 19 && since.as_bytes()[4] == b'-' && since.as_bytes()[13] == b':',
        "{stderr}"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(75), "{}", text(&first.stderr));
    // The file is never removed; it names the last holder.
    assert!(lock.is_file());
}
