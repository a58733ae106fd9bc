//! Daily use of the `pop3` binary, as a user or a cron job meets it: `accounts` (table,
//! `--json`, `--check`), `check` and its exit codes, `fetch --json`, several accounts (every
//! one tried, the first failure's exit code), `--jobs`, silence under cron, `-v` and `-vv`,
//! progress bars under a pseudo-terminal, `probe HOST:PORT`, `list --json`, and the demo
//! example.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::certs::TestCerts;
use crate::support::env::{TestEnv, text};
use crate::support::server::{Fault, Message, PASSWORD, TestServer, USER, sample_messages};

/// A TLS server with the sample mailbox and its certificates.
fn tls_server(certs: &TestCerts) -> TestServer {
    TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .start()
}

/// `[accounts.NAME]` for a TLS test server, delivering into `maildir`, with its own
/// password and timeout. Lines appended after it belong to the same table.
fn account(
    name: &str,
    port: u16,
    ca: &Path,
    maildir: &Path,
    password: &str,
    timeout: &str,
) -> String {
    format!(
        "[accounts.{name}]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         user = \"{USER}\"\n\
         password = \"{password}\"\n\
         tls = \"implicit\"\n\
         tls_ca_file = '{ca}'\n\
         timeout = \"{timeout}\"\n\
         deliver.maildir = '{maildir}'\n\n",
        ca = ca.display(),
        maildir = maildir.display(),
    )
}

/// A TLS server with the sample mailbox, its certificates, and an environment whose config
/// has one account `test` for it (plus `extra` lines in that table).
fn setup(extra: &str) -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let server = tls_server(&certs);
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "implicit", Some(certs.ca_file()));
    toml.push_str(extra);
    env.write_config(&toml);
    (server, certs, env)
}

/// Files in `maildir/new`.
fn new_in(maildir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(maildir.join("new")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Every line of stdout parsed as one JSON value.
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn total_size(messages: &[Message]) -> u64 {
    messages.iter().map(|m| m.size() as u64).sum()
}

/// Standard base64 with padding (to look for an encoded secret in output).
fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// accounts

/// Two accounts: `work` on a test port with a literal password, `home` with a password
/// command whose arguments are secret-ish and must not be shown.
fn two_accounts_config(env: &TestEnv) -> String {
    let mut toml = String::from("[defaults]\nkeep = true\n\n");
    toml.push_str(&env.account_toml("work", 9995, "implicit", Some(Path::new("/etc/ca.pem"))));
    toml.push_str(
        "\n[accounts.home]\n\
         host = \"pop.example.org\"\n\
         user = \"bob\"\n\
         tls = \"starttls\"\n\
         password.command = [\"secret-tool\", \"lookup\", \"hunter2-arg\"]\n\
         max_size = \"25M\"\n\
         keep = false\n\
         deliver.maildir = \"/var/mail/bob\"\n",
    );
    toml
}

#[test]
fn accounts_shows_resolved_settings_and_hides_every_secret() {
    let env = TestEnv::new();
    env.write_config(&two_accounts_config(&env));
    let out = env.cmd().arg("accounts").assert().code(0);
    let stdout = text(&out.get_output().stdout);
    let stderr = text(&out.get_output().stderr);
    assert_eq!(stderr, "");

    let work = stdout.find("work").expect("work listed");
    let home = stdout.find("home").expect("home listed");
    assert!(work < home, "config order: {stdout}");
    for expected in [
        "127.0.0.1:9995",
        "implicit",
        USER,
        "/etc/ca.pem",
        // home: the port resolved from tls = "starttls".
        "pop.example.org:110",
        "starttls",
        "bob",
        "/var/mail/bob",
        "secret-tool",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    assert!(
        !stdout.contains(PASSWORD),
        "literal password shown:\n{stdout}"
    );
    for arg in ["lookup", "hunter2-arg"] {
        assert!(
            !stdout.contains(arg),
            "password.command argument {arg:?} shown:\n{stdout}"
        );
    }
}

#[test]
fn accounts_json_has_one_object_per_account_with_its_fields() {
    let env = TestEnv::new();
    env.write_config(&two_accounts_config(&env));
    let out = env.cmd().args(["accounts", "--json"]).assert().code(0);
    let stdout = text(&out.get_output().stdout);
    assert!(!stdout.contains(PASSWORD) && !stdout.contains("hunter2-arg"));
    let all: Value = serde_json::from_str(&stdout).expect("accounts --json is JSON");
    let all = all.as_array().expect("an array of accounts");
    assert_eq!(all.len(), 2, "{stdout}");

    let work = &all[0];
    assert_eq!(work["name"], "work");
    assert_eq!(work["host"], "127.0.0.1");
    assert_eq!(work["port"], 9995);
    assert_eq!(work["user"], USER);
    assert_eq!(work["tls"], "implicit");
    assert_eq!(work["tls_ca_file"], "/etc/ca.pem");
    assert_eq!(work["keep"], true);
    assert_eq!(work["timeout_secs"], 5);
    assert!(work["password"].is_string(), "{work}");

    let home = &all[1];
    assert_eq!(home["name"], "home");
    assert_eq!(home["port"], 110);
    assert_eq!(home["tls"], "starttls");
    assert_eq!(home["keep"], false);
    let max = home["max_size"].as_u64().expect("max_size is a number");
    assert!(
        max == 25_000_000 || max == 25 << 20,
        "max_size = \"25M\" resolved to {max}"
    );
    let password = home["password"].as_str().expect("password source shown");
    assert!(password.contains("secret-tool"), "{password}");
    assert!(!password.contains("lookup"), "{password}");
}

#[test]
fn accounts_check_accepts_a_good_config() {
    let env = TestEnv::new();
    env.write_config(&two_accounts_config(&env));
    env.cmd()
        .args(["accounts", "--check"])
        .assert()
        .code(0)
        .stderr("");
}

#[test]
fn accounts_check_names_file_line_and_key_of_an_unknown_key() {
    let env = TestEnv::new();
    let mut toml = env.account_toml("work", 9995, "implicit", None);
    let line = toml.lines().count() + 1;
    toml.push_str("delete_afer = \"14d\"\n");
    let path = env.write_config(&toml);
    let out = env.cmd().args(["accounts", "--check"]).assert().code(78);
    let stderr = text(&out.get_output().stderr);
    assert!(
        stderr.contains(&path.display().to_string()),
        "file not named: {stderr}"
    );
    assert!(
        stderr.contains(&format!("line {line}")),
        "line {line} not named: {stderr}"
    );
    assert!(stderr.contains("delete_afer"), "key not named: {stderr}");
}

// ---------------------------------------------------------------------------------------
// check

#[test]
fn check_exits_0_with_new_mail_and_1_without() {
    let (server, _certs, env) = setup("");
    let out = env.cmd().arg("check").assert().code(0);
    let stdout = text(&out.get_output().stdout);
    assert!(
        stdout.contains("test") && stdout.contains('3'),
        "check output: {stdout:?}"
    );
    assert!(env.new_files().is_empty(), "check downloaded mail");
    assert!(
        !server.verbs().contains(&"RETR".to_string()),
        "check sent RETR"
    );

    env.fetch_ok(&[]);
    env.cmd().arg("check").assert().code(1);
}

#[test]
fn check_json_reports_each_account() {
    let certs = TestCerts::new();
    let full = tls_server(&certs);
    let empty = TestServer::builder().implicit_tls(&certs.leaf).start();
    let env = TestEnv::new();
    let mut toml = account(
        "full",
        full.port(),
        certs.ca_file(),
        &env.root().join("a"),
        PASSWORD,
        "5s",
    );
    toml.push_str(&account(
        "empty",
        empty.port(),
        certs.ca_file(),
        &env.root().join("b"),
        PASSWORD,
        "5s",
    ));
    env.write_config(&toml);
    let out = env.cmd().args(["check", "--json"]).assert().code(0);
    let objects = json_lines(&out.get_output().stdout);
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert_eq!(objects[0]["account"], "full");
    assert_eq!(objects[0]["ok"], true);
    assert_eq!(objects[0]["new"], 3);
    assert_eq!(objects[0]["new_bytes"], total_size(&sample_messages()));
    assert_eq!(objects[1]["account"], "empty");
    assert_eq!(objects[1]["ok"], true);
    assert_eq!(objects[1]["new"], 0);
}

// ---------------------------------------------------------------------------------------
// fetch --json, several accounts, --jobs

#[test]
fn fetch_json_summarises_each_account_and_its_failure() {
    let certs = TestCerts::new();
    let good = tls_server(&certs);
    let bad = tls_server(&certs);
    let env = TestEnv::new();
    let good_dir = env.root().join("good");
    let mut toml = account(
        "good",
        good.port(),
        certs.ca_file(),
        &good_dir,
        PASSWORD,
        "5s",
    );
    toml.push_str(&account(
        "bad",
        bad.port(),
        certs.ca_file(),
        &env.root().join("bad"),
        "wrong-password",
        "5s",
    ));
    env.write_config(&toml);

    let out = env.cmd().args(["fetch", "--json"]).assert().code(77);
    let objects = json_lines(&out.get_output().stdout);
    assert_eq!(objects.len(), 2, "{objects:?}");

    let g = &objects[0];
    assert_eq!(g["account"], "good");
    assert_eq!(g["ok"], true);
    assert_eq!(g["fetched"], 3);
    assert_eq!(g["skipped"], 0);
    assert_eq!(g["deleted"], 0);
    let bytes = g["bytes"].as_u64().expect("bytes is a number");
    assert!(
        bytes > 0 && bytes <= total_size(&sample_messages()) + 3 * 200,
        "bytes = {bytes}"
    );
    assert_eq!(new_in(&good_dir).len(), 3);

    let b = &objects[1];
    assert_eq!(b["account"], "bad");
    assert_eq!(b["ok"], false);
    assert_eq!(b["error"]["code"], 77, "{b}");
    let message = b["error"]["message"].as_str().expect("error.message");
    assert!(!message.is_empty());
    assert!(!message.contains("wrong-password"), "{message}");
}

#[test]
fn every_account_is_tried_and_the_first_failure_in_config_order_sets_the_exit_code() {
    let certs = TestCerts::new();
    let auth_fails = tls_server(&certs);
    let stls_missing = TestServer::builder()
        .starttls(&certs.leaf)
        .fault(Fault::OmitStls)
        .start();
    let good = tls_server(&certs);
    let env = TestEnv::new();
    let good_dir = env.root().join("good");
    let auth_toml = account(
        "a_auth",
        auth_fails.port(),
        certs.ca_file(),
        &env.root().join("x"),
        "wrong",
        "5s",
    );
    let stls_toml = format!(
        "[accounts.b_stls]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
         password = \"{PASSWORD}\"\ntls = \"starttls\"\ntls_ca_file = '{}'\ntimeout = \"5s\"\n\
         deliver.maildir = '{}'\n\n",
        stls_missing.port(),
        certs.ca_file().display(),
        env.root().join("y").display()
    );
    let good_toml = account(
        "c_good",
        good.port(),
        certs.ca_file(),
        &good_dir,
        PASSWORD,
        "5s",
    );

    // auth (77) before STLS missing (69): 77, and the last account still fetched.
    env.write_config(&format!("{auth_toml}{stls_toml}{good_toml}"));
    let out = env.cmd().arg("fetch").assert().code(77);
    let stderr = text(&out.get_output().stderr);
    assert_eq!(new_in(&good_dir).len(), 3, "good account not fetched");
    assert!(stls_missing.connection_count() >= 1, "b_stls not tried");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per failed account: {stderr}");
    assert!(lines[0].starts_with("pop3: a_auth:"), "{stderr}");
    assert!(lines[1].starts_with("pop3: b_stls:"), "{stderr}");

    // The other order: 69 comes first now.
    let stls_toml = stls_toml.replace("[accounts.b_stls]", "[accounts.a_stls]");
    let auth_toml = auth_toml.replace("[accounts.a_auth]", "[accounts.b_auth]");
    env.write_config(&format!("{stls_toml}{auth_toml}{good_toml}"));
    env.cmd().arg("fetch").assert().code(69);
    assert_eq!(auth_fails.connection_count(), 2, "b_auth not tried");
}

#[test]
fn jobs_2_lets_a_fast_account_finish_while_a_slow_one_stalls() {
    let certs = TestCerts::new();
    let slow = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .fault(Fault::stall("CAPA", Duration::from_secs(6)))
        .start();
    let fast = tls_server(&certs);
    let env = TestEnv::new();
    let fast_dir = env.root().join("fast");
    let mut toml = account(
        "slow",
        slow.port(),
        certs.ca_file(),
        &env.root().join("slow"),
        PASSWORD,
        "4s",
    );
    toml.push_str(&account(
        "fast",
        fast.port(),
        certs.ca_file(),
        &fast_dir,
        PASSWORD,
        "5s",
    ));
    env.write_config(&toml);

    let start = Instant::now();
    let mut child = env
        .std_cmd()
        .args(["fetch", "--jobs", "2"])
        .spawn()
        .expect("spawn pop3");
    let filled = loop {
        if new_in(&fast_dir).len() == 3 {
            break true;
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(5) {
            break false;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let still_running = child.try_wait().unwrap().is_none();
    let out = child.wait_with_output().unwrap();
    assert!(
        filled && still_running,
        "fast account not done while slow one stalled (filled {filled}, running \
         {still_running}); stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(75),
        "the slow account's timeout is the exit code; stderr: {}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("pop3: slow:"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

// ---------------------------------------------------------------------------------------
// cron mode, -v, -vv

#[test]
fn cron_success_prints_nothing_at_all() {
    let (_server, _certs, env) = setup("");
    // assert_cmd: stdin an empty pipe, stdout and stderr pipes; none is a terminal.
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 3);
    env.fetch_quiet(&[]);
}

#[test]
fn cron_failure_prints_one_line_and_a_distinct_exit_code() {
    // Authentication refused: 77.
    let (_server, _certs, env) = setup("");
    let toml = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&toml.replace(PASSWORD, "not-the-password"));
    let out = env.cmd().arg("fetch").assert().code(77).stdout("");
    let stderr = text(&out.get_output().stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.starts_with("pop3: test:"), "{stderr:?}");
    assert!(!stderr.contains("not-the-password"), "{stderr:?}");

    // Nobody listening: 69.
    let (server, _certs, env) = setup("");
    let port = server.port();
    drop(server);
    let toml = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(toml.contains(&format!("port = {port}")));
    let out = env.cmd().arg("fetch").assert().code(69).stdout("");
    let stderr = text(&out.get_output().stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.starts_with("pop3: test:"), "{stderr:?}");
}

#[test]
fn verbose_says_what_was_fetched() {
    let (_server, _certs, env) = setup("");
    let out = env.cmd().args(["-v", "fetch"]).assert().code(0).stdout("");
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains("test"), "{stderr}");
    assert!(
        stderr.contains("3 new messages") && stderr.contains("fetched"),
        "-v does not say what was fetched: {stderr}"
    );
    assert!(!stderr.contains(PASSWORD));
}

#[test]
fn vv_traces_the_protocol_with_pass_hidden() {
    let (_server, _certs, env) = setup("auth = \"user\"\n");
    let out = env.cmd().args(["-vv", "fetch"]).assert().code(0);
    let all = text(&out.get_output().stderr) + &text(&out.get_output().stdout);
    for expected in ["PASS ***", "USER alice", "UIDL", "RETR", "QUIT"] {
        assert!(all.contains(expected), "{expected:?} not in trace:\n{all}");
    }
    assert!(!all.contains(PASSWORD), "password in the trace:\n{all}");
}

#[test]
fn vv_traces_auth_plain_with_the_response_hidden() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .capa(["UIDL", "TOP", "SASL PLAIN", "RESP-CODES"])
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "implicit", Some(certs.ca_file()));
    toml.push_str("auth = \"plain\"\n");
    env.write_config(&toml);
    let out = env.cmd().args(["-vv", "fetch"]).assert().code(0);
    let all = text(&out.get_output().stderr) + &text(&out.get_output().stdout);
    assert!(all.contains("AUTH PLAIN ***"), "{all}");
    assert!(!all.contains(PASSWORD), "password in the trace:\n{all}");
    let encoded = base64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    assert!(
        !all.contains(&encoded) && !all.contains(&encoded[..16]),
        "base64 credentials in the trace:\n{all}"
    );
    assert!(server.verbs().contains(&"AUTH".to_string()));
    assert_eq!(env.new_files().len(), 3);
}

// ---------------------------------------------------------------------------------------
// progress bars under a pseudo-terminal

/// Run `pop3 ARGS` under `script(1)`, so that stdin, stdout and stderr are a terminal;
/// returns everything the terminal showed and the exit code.
fn under_pty(env: &TestEnv, args: &[&str]) -> (String, Option<i32>) {
    let bin = assert_cmd::cargo::cargo_bin!("pop3");
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = quote(&bin.display().to_string());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut cmd = Command::new("script");
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("POP3_") || k.starts_with("XDG_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config_home)
        .env("XDG_STATE_HOME", &env.state_home)
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "120")
        .env("LINES", "40")
        .current_dir(env.root())
        .args(["-qfec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run script(1) from util-linux");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pop3 under script(1) did not finish");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap();
    (text(&out), status.code())
}

/// A server whose third message takes a second to arrive, so that the bar is drawn.
fn slow_setup() -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .fault(Fault::StallInRetr {
            msg: 3,
            after: 20_000,
            delay: Duration::from_millis(1200),
        })
        .start();
    let env = TestEnv::new();
    env.write_config(&env.account_toml(
        "progress_acct",
        server.port(),
        "implicit",
        Some(certs.ca_file()),
    ));
    (server, certs, env)
}

#[test]
fn progress_bar_is_drawn_on_a_terminal() {
    let (_server, _certs, env) = slow_setup();
    let (shown, code) = under_pty(&env, &["fetch"]);
    assert_eq!(code, Some(0), "terminal showed: {shown:?}");
    assert_eq!(env.new_files().len(), 3);
    assert!(
        shown.contains("progress_acct"),
        "no bar naming the account: {shown:?}"
    );
    assert!(
        shown.contains("messages") || shown.contains("KiB") || shown.contains("bytes"),
        "no message or byte count in the bar: {shown:?}"
    );
}

#[test]
fn quiet_draws_no_progress_bar_on_a_terminal() {
    let (_server, _certs, env) = slow_setup();
    let (shown, code) = under_pty(&env, &["fetch", "-q"]);
    assert_eq!(code, Some(0), "terminal showed: {shown:?}");
    assert_eq!(env.new_files().len(), 3);
    assert_eq!(shown.trim(), "", "-q drew something: {shown:?}");
}

// ---------------------------------------------------------------------------------------
// probe, list --json

#[test]
fn probe_host_port_shows_capabilities_tls_version_and_certificate_fingerprint() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .capa(["UIDL", "TOP", "PIPELINING", "SASL PLAIN", "RESP-CODES"])
        .start();
    let env = TestEnv::new();
    let target = format!("127.0.0.1:{}", server.port());
    let ca = certs.ca_file().display().to_string();
    let out = env
        .cmd()
        .args(["probe", &target, "--ca-file", &ca])
        .assert()
        .code(0);
    let stdout = text(&out.get_output().stdout);
    let capabilities = stdout
        .lines()
        .find(|l| l.starts_with("capabilities"))
        .unwrap_or_else(|| panic!("no capabilities line:\n{stdout}"));
    for capa in ["UIDL", "TOP", "PIPELINING", "PLAIN"] {
        assert!(
            capabilities.contains(capa),
            "{capa} missing: {capabilities}"
        );
    }
    let tls = stdout
        .lines()
        .find(|l| l.starts_with("tls"))
        .unwrap_or_else(|| panic!("no tls line:\n{stdout}"));
    assert!(
        tls.contains("1_3") || tls.contains("1.3"),
        "TLS version not shown: {tls}"
    );
    let pin = certs.leaf.sha256_pin();
    let fingerprint = pin.trim_start_matches("sha256:");
    assert!(
        stdout.to_uppercase().contains(fingerprint),
        "leaf fingerprint {fingerprint} not shown:\n{stdout}"
    );
    // No login was tried with a HOST.
    assert!(!server.sent_credentials());
}

#[test]
fn list_json_describes_each_message() {
    let (server, _certs, env) = setup("");
    env.fetch_ok(&[]);
    server.add_message(
        "uid-0004-later",
        b"From: Erin <erin@example.org>\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nhi\r\n",
    );
    let out = env.cmd().args(["list", "--json"]).assert().code(0);
    // JSON lines: one object per message, like fetch --json and check --json.
    let rows: Vec<Value> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line of list --json is JSON"))
        .collect();
    let messages = server.messages();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (i, (row, m)) in rows.iter().zip(&messages).enumerate() {
        assert_eq!(row["number"], i + 1);
        assert_eq!(row["size"], m.size());
        assert_eq!(row["uidl"], m.uidl.as_str());
        assert_eq!(row["state"], if i < 3 { "seen" } else { "new" });
    }
    assert_eq!(rows[0]["subject"], "hello");
    assert_eq!(rows[3]["subject"], "Grüße");
    assert!(
        rows[3]["from"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("erin"),
        "{}",
        rows[3]
    );
    assert_eq!(rows[3]["from_address"], "erin@example.org");
}

// ---------------------------------------------------------------------------------------
// the demo

/// `target/<profile>/examples/demo`, next to the `pop3` binary `cargo test` built. `cargo
/// test` builds the examples; `cargo test --test integration` does not, so then it is built
/// here (with the same target dir and profile).
fn demo_binary() -> PathBuf {
    let bin = assert_cmd::cargo::cargo_bin!("pop3");
    let profile_dir = bin.parent().expect("target/<profile>");
    let demo = profile_dir.join("examples/demo");
    if demo.exists() {
        return demo;
    }
    let target_dir = profile_dir.parent().expect("target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", "demo", "--target-dir"])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
    }
    let status = build.status().expect("run cargo build --example demo");
    assert!(
        status.success() && demo.exists(),
        "{} is missing and `cargo build --example demo` failed ({status})",
        demo.display()
    );
    demo
}

#[test]
fn demo_example_runs() {
    let demo = demo_binary();
    let start = Instant::now();
    let out = Command::new(&demo)
        .env("POP3_DEMO_BIN", assert_cmd::cargo::cargo_bin!("pop3"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run the demo");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(10), "demo too slow");
    for expected in ["pop3 list", "pop3 fetch -v", "new/"] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
}
