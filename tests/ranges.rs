//! Every duration, size and count the user gives has a range (src/config/range.rs), checked
//! end to end with the real binary: at each bound the value works, beyond it the run stops
//! before connecting, with exit 78 naming the file, line and key (config) or exit 64 naming
//! the flag and the range (command line). Never a panic (exit 101), never a huge value that
//! wraps into "delete everything".

use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::account::{Target, account};
use crate::support::env::{TestEnv, text};
use crate::support::server::{Message, TestServer, plain_server};

fn message(uidl: &str) -> Message {
    Message {
        uidl: uidl.into(),
        body: format!("From: x@example.org\r\nSubject: {uidl}\r\n\r\nbody of {uidl}\r\n")
            .into_bytes(),
    }
}

/// A plain-TCP server holding two messages.
fn server() -> TestServer {
    plain_server(vec![message("u1"), message("u2")])
}

/// Write `[accounts.test]` for `server` (Maildir delivery) with `key = value` as its last
/// line (replacing the table's own `timeout` or `port`); returns the config path as text and
/// that line's number.
fn config_with(env: &TestEnv, server: &TestServer, key: &str, value: &str) -> (String, usize) {
    let toml: String = account(server.port(), &Target::Maildir(env.maildir.clone()), "")
        .lines()
        .filter(|l| !l.starts_with(&format!("{key} =")))
        .map(|l| format!("{l}\n"))
        .collect();
    let line = toml.lines().count() + 1;
    let path = env.write_config(&format!("{toml}{key} = {value}\n"));
    (path.display().to_string(), line)
}

/// Run `pop3 ARGS`: it must exit with `code`, print nothing on stdout and one error on
/// stderr; returns stderr.
fn fails(env: &TestEnv, args: &[&str], code: i32) -> String {
    let out = env.cmd().args(args).assert().code(code).stdout("");
    let stderr = text(&out.get_output().stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

/// A config error: exit 78, and stderr names the file, the line, the key and the range.
fn assert_config_error(stderr: &str, path: &str, line: usize, key: &str, range: &str) {
    assert!(stderr.starts_with("pop3: "), "{stderr}");
    assert!(stderr.contains(path), "file not named: {stderr}");
    assert!(
        stderr.contains(&format!("line {line}")),
        "line {line} not named: {stderr}"
    );
    assert!(
        stderr.contains(&format!(": {key}: ")),
        "key {key} not named: {stderr}"
    );
    assert!(stderr.contains(range), "range {range} not named: {stderr}");
}

#[test]
fn no_loss_huge_delete_after_is_refused_not_wrapped() {
    // 10^19 s is beyond i64 seconds: before the range check it wrapped negative and made
    // every seen message due for deletion.
    let server = server();
    let env = TestEnv::new();
    let (path, line) = config_with(&env, &server, "delete_after", "\"10000000000000000000s\"");
    for _ in 0..2 {
        let stderr = fails(&env, &["fetch"], 78);
        assert_config_error(&stderr, &path, line, "delete_after", "0 to 36500d");
    }
    assert_eq!(
        server.connection_count(),
        0,
        "connected despite a config error"
    );
    assert_eq!(server.uidls(), ["u1", "u2"], "deleted on the server");
}

#[test]
fn no_loss_longest_delete_after_keeps_what_was_fetched() {
    // The upper bound itself must mean "a century from now", not "already due".
    let server = server();
    let env = TestEnv::new();
    config_with(&env, &server, "delete_after", "\"36500d\"");
    for _ in 0..2 {
        env.fetch_quiet(&[]);
    }
    assert_eq!(env.new_files().len(), 2);
    assert_eq!(server.uidls(), ["u1", "u2"], "deleted on the server");
    assert!(
        !server.verbs().iter().any(|v| v == "DELE"),
        "DELE sent: {:?}",
        server.verbs()
    );
}

#[test]
fn delete_after_zero_is_the_lower_bound_and_deletes_once_fetched() {
    let server = server();
    let env = TestEnv::new();
    config_with(&env, &server, "delete_after", "\"0s\"");
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 2);
    assert!(server.uidls().is_empty(), "left: {:?}", server.uidls());
}

#[test]
fn huge_timeout_is_a_config_error_not_a_panic() {
    let server = server();
    let env = TestEnv::new();
    let toml = account(server.port(), &Target::Maildir(env.maildir.clone()), "");
    let line = toml.lines().position(|l| l.starts_with("timeout")).unwrap() + 1;
    let path =
        env.write_config(&toml.replace("timeout = \"5s\"", "timeout = \"18446744073709551615s\""));
    let stderr = fails(&env, &["fetch"], 78);
    assert_config_error(
        &stderr,
        &path.display().to_string(),
        line,
        "timeout",
        "1s to 1h",
    );
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn huge_mda_timeout_is_a_config_error_not_a_panic() {
    let server = server();
    let env = TestEnv::new();
    let dir = env.root().join("mda-out");
    let toml = account(server.port(), &Target::MdaDir(dir.clone()), "");
    let line = toml.lines().count() + 1;
    let path = env.write_config(&format!("{toml}mda_timeout = \"18446744073709551615s\"\n"));
    let stderr = fails(&env, &["fetch"], 78);
    assert_config_error(
        &stderr,
        &path.display().to_string(),
        line,
        "mda_timeout",
        "1s to 24h",
    );
    assert_eq!(server.connection_count(), 0);
    assert!(!dir.exists(), "the MDA ran");
}

/// `(key, TOML value, the range the error must state)` for values just beyond a bound.
const BEYOND: &[(&str, &str, &str)] = &[
    ("timeout", "\"999ms\"", "1s to 1h"),
    ("timeout", "\"0s\"", "1s to 1h"),
    ("timeout", "\"3601s\"", "1s to 1h"),
    ("mda_timeout", "\"0s\"", "1s to 24h"),
    ("mda_timeout", "\"86401s\"", "1s to 24h"),
    ("delete_after", "\"36501d\"", "0 to 36500d"),
    ("delete_after", "\"3153600001s\"", "0 to 36500d"),
    ("max_size", "0", "1 to 1024G"),
    ("max_size", "\"0k\"", "1 to 1024G"),
    ("max_size", "-5", "1 to 1024G"),
    ("max_size", "\"1025G\"", "1 to 1024G"),
    ("max_size", "1099511627777", "1 to 1024G"),
    ("max_size", "\"99999999999999999999\"", "1 to 1024G"),
    ("port", "0", "1 to 65535"),
    ("port", "65536", "1 to 65535"),
];

#[test]
fn config_values_beyond_their_bounds_fail_with_78_before_connecting() {
    let server = server();
    for &(key, value, range) in BEYOND {
        let env = TestEnv::new();
        let (path, line) = config_with(&env, &server, key, value);
        let stderr = fails(&env, &["fetch"], 78);
        assert_config_error(&stderr, &path, line, key, range);
        // `accounts --check` reports the same.
        let stderr = fails(&env, &["accounts", "--check"], 78);
        assert_config_error(&stderr, &path, line, key, range);
    }
    assert_eq!(
        server.connection_count(),
        0,
        "connected despite a config error"
    );
}

#[test]
fn config_values_beyond_their_bounds_in_defaults_fail_with_78() {
    let server = server();
    for &(key, value, range) in BEYOND {
        let env = TestEnv::new();
        let toml = account(server.port(), &Target::Maildir(env.maildir.clone()), "");
        let path = env.write_config(&format!("[defaults]\n{key} = {value}\n\n{toml}"));
        let stderr = fails(&env, &["fetch"], 78);
        assert_config_error(&stderr, &path.display().to_string(), 2, key, range);
        assert!(stderr.contains("[defaults]"), "table not named: {stderr}");
    }
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn config_values_at_their_bounds_are_accepted_as_written() {
    let env = TestEnv::new();
    let server = server();
    let base = account(server.port(), &Target::Maildir(env.maildir.clone()), "");
    // Without the test account's own timeout and port, so each bound can be set here.
    let base: String = base
        .lines()
        .filter(|l| !l.starts_with("timeout") && !l.starts_with("port"))
        .map(|l| format!("{l}\n"))
        .collect();
    let resolved = |extra: &str| -> serde_json::Value {
        env.write_config(&format!("{base}{extra}"));
        let out = env.cmd().args(["accounts", "--json"]).assert().code(0);
        let all: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        all[0].clone()
    };
    let low = resolved(
        "timeout = \"1s\"\nmda_timeout = \"1s\"\ndelete_after = \"0s\"\nmax_size = 1\nport = 1\n",
    );
    assert_eq!(low["timeout_secs"], 1);
    assert_eq!(low["delete_after_secs"], 0);
    assert_eq!(low["max_size"], 1);
    assert_eq!(low["port"], 1);
    let high = resolved(
        "timeout = \"1h\"\nmda_timeout = \"24h\"\ndelete_after = \"36500d\"\n\
         max_size = \"1024G\"\nport = 65535\n",
    );
    assert_eq!(high["timeout_secs"], 3600);
    assert_eq!(high["delete_after_secs"], 36_500u64 * 86_400);
    assert_eq!(high["max_size"], 1u64 << 40);
    assert_eq!(high["port"], 65535);
    // The same spelled in other units.
    let same = resolved("timeout = \"3600000ms\"\ndelete_after = \"3153600000s\"\n");
    assert_eq!(same["timeout_secs"], 3600);
    assert_eq!(same["delete_after_secs"], 36_500u64 * 86_400);
}

#[test]
fn huge_daemon_interval_is_a_usage_error_not_a_panic() {
    let server = server();
    let env = TestEnv::new();
    config_with(&env, &server, "keep", "true");
    let stderr = fails(&env, &["fetch", "--daemon", "18446744073709551615s"], 64);
    assert!(stderr.contains("--daemon"), "flag not named: {stderr}");
    assert!(stderr.contains("1s to 30d"), "range not named: {stderr}");
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn command_line_values_beyond_their_bounds_fail_with_64_naming_flag_and_range() {
    let server = server();
    let env = TestEnv::new();
    config_with(&env, &server, "keep", "true");
    for (flag, value, range) in [
        ("--daemon", "0s", "1s to 30d"),
        ("--daemon", "999ms", "1s to 30d"),
        ("--daemon", "31d", "1s to 30d"),
        ("--daemon", "2592001s", "1s to 30d"),
        ("--limit", "0", "1..=4294967295"),
        ("--limit", "4294967296", "1..=4294967295"),
        ("--jobs", "0", "1..=64"),
        ("--jobs", "65", "1..=64"),
        ("--max-size", "0", "1 to 1024G"),
        ("--max-size", "1025G", "1 to 1024G"),
        ("--max-size", "99999999999999999999", "1 to 1024G"),
        ("--port", "0", "1..=65535"),
    ] {
        let stderr = fails(&env, &["fetch", flag, value], 64);
        assert!(
            stderr.contains(flag),
            "{flag} {value}: flag not named: {stderr}"
        );
        assert!(
            stderr.contains(range),
            "{flag} {value}: range not named: {stderr}"
        );
    }
    // probe's HOST:PORT is a number from the command line too.
    let stderr = fails(&env, &["probe", "127.0.0.1:0"], 64);
    assert!(stderr.contains("1 to 65535"), "{stderr}");
    assert_eq!(
        server.connection_count(),
        0,
        "connected despite a usage error"
    );
}

#[test]
fn command_line_values_at_their_bounds_are_accepted() {
    let server = server();
    let env = TestEnv::new();
    config_with(&env, &server, "keep", "true");
    // --max-size 1 leaves both messages on the server and says so.
    let out = env
        .cmd()
        .args(["fetch", "--jobs", "1", "--limit", "1", "--max-size", "1"])
        .assert()
        .code(0)
        .stdout("");
    let stderr = text(&out.get_output().stderr);
    assert!(
        stderr.contains("2 messages bigger than max_size (1)"),
        "{stderr}"
    );
    assert!(env.new_files().is_empty());
    // --limit 1 fetches one of them.
    env.fetch_ok(&["--limit", "1"]);
    assert_eq!(env.new_files().len(), 1);
    env.cmd()
        .args([
            "fetch",
            "--jobs",
            "64",
            "--limit",
            "4294967295",
            "--max-size",
            "1024G",
        ])
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    assert_eq!(env.new_files().len(), 2);
}

/// Send SIGTERM to our own child, by its pid.
fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Wait up to `limit` for `child` to exit; kill it and fail if it does not.
fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pop3 still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn longest_daemon_interval_waits_after_a_round_instead_of_panicking() {
    // Before the range check a huge interval panicked computing the next deadline, right
    // after the first round; the longest allowed one must simply wait.
    let server = server();
    let env = TestEnv::new();
    config_with(&env, &server, "keep", "true");
    let mut child = env
        .std_cmd()
        .args(["fetch", "--daemon", "30d"])
        .spawn()
        .expect("spawn pop3");
    let start = Instant::now();
    while !server.verbs().iter().any(|v| v == "QUIT") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no round finished"
        );
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("pop3 exited during the first round: {status}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    // Past the point where the next deadline is computed.
    thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "exited after the first round"
    );
    assert_eq!(env.new_files().len(), 2);
    sigterm(&child);
    let status = wait(&mut child, Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "a signal while idle ends the daemon cleanly"
    );
    assert_eq!(server.connection_count(), 1, "polled again within 30 days");
}
