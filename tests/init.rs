//! `pop3 init` in a pseudo-terminal (util-linux `script`) against the private Dovecot
//! (tests/support/dovecot.rs): the test answers the questions as a user would, then checks
//! the TOML written, `pop3 accounts --check`, and that `pop3 fetch` with the new account
//! fetches the Dovecot mailbox. Without Dovecot the tests print a notice and pass, unless
//! POP3_REQUIRE_DOVECOT=1. Without a terminal `pop3 init` refuses with exit 64.
//!
//! The OAuth2 set-up runs against the test authorization server
//! (tests/support/oauth_server.rs) and a Dovecot that checks tokens with it, through the
//! "provider not listed" answers, since Google's and Microsoft's endpoints are out of reach.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::dovecot::Dovecot;
use crate::support::env::{TestEnv, text};
use crate::support::oauth_server::{self, OAuthServer};

const USER: &str = "alice";
const PASS: &str = "Init-s3cret";

/// How long any one prompt may take to appear (a refused login costs Dovecot's auth
/// failure delay, 2 s by default).
const PROMPT_WAIT: Duration = Duration::from_secs(30);

/// `pop3 ARGS` on a pseudo-terminal, driven like `expect`: wait for a prompt, type a line.
struct Terminal {
    child: Child,
    input: ChildStdin,
    shown: Arc<Mutex<Vec<u8>>>,
    /// How much of `shown` the last `expect` consumed.
    seen: usize,
}

impl Terminal {
    fn start(env: &TestEnv, args: &[&str]) -> Terminal {
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
        let mut child = cmd
            // No keyring here: the choices are command, ask, literal.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("RUST_LOG")
            .env("HOME", &env.home)
            .env("XDG_CONFIG_HOME", &env.config_home)
            .env("XDG_STATE_HOME", &env.state_home)
            .env("TERM", "dumb")
            .current_dir(env.root())
            .args(["-qfec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run script(1) from util-linux");
        let input = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let shown = Arc::new(Mutex::new(Vec::new()));
        let sink = shown.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            input,
            shown,
            seen: 0,
        }
    }

    /// Everything the terminal showed so far.
    fn transcript(&self) -> String {
        text(&self.shown.lock().unwrap()).replace('\r', "")
    }

    /// Wait until `what` appears after what earlier calls consumed.
    fn expect(&mut self, what: &str) {
        let deadline = Instant::now() + PROMPT_WAIT;
        loop {
            let all = self.transcript();
            if let Some(at) = all[self.seen.min(all.len())..].find(what) {
                self.seen += at + what.len();
                return;
            }
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "waited for {what:?}; the terminal showed:\n{}",
                    self.transcript()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Type a line.
    fn send(&mut self, line: &str) {
        self.input.write_all(line.as_bytes()).unwrap();
        self.input.write_all(b"\n").unwrap();
        self.input.flush().unwrap();
    }

    /// Type a password once the prompt has turned echo off (rpassword prints the prompt
    /// first, then switches echo off).
    fn send_secret(&mut self, line: &str) {
        thread::sleep(Duration::from_millis(500));
        self.send(line);
    }

    /// Wait for the program to end; its exit code and the whole transcript.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + PROMPT_WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("pop3 init did not finish:\n{}", self.transcript());
            }
            thread::sleep(Duration::from_millis(20));
        };
        thread::sleep(Duration::from_millis(100));
        (status.code(), self.transcript())
    }
}

/// A Dovecot with three messages for alice, or `None` (skip).
fn dovecot() -> Option<Dovecot> {
    let dc = Dovecot::start(&[(USER, PASS)])?;
    let msgs: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            format!(
                "From: bob@example.org\r\nTo: alice@example.test\r\nSubject: init test {i}\r\n\
                 Message-ID: <init-{i}@example.org>\r\n\r\nHello number {i}.\r\n"
            )
            .into_bytes()
        })
        .collect();
    dc.add_messages(USER, msgs.iter().map(Vec::as_slice));
    Some(dc)
}

/// `pop3 ARGS` must exit 0; its stdout.
fn ok(env: &TestEnv, args: &[&str]) -> String {
    let out = env.cmd().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "pop3 {args:?}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// What landed in `~/Mail/inbox/new`.
fn inbox(env: &TestEnv) -> Vec<String> {
    let mut bodies: Vec<String> = std::fs::read_dir(env.home.join("Mail/inbox/new"))
        .map(|rd| {
            rd.map(|e| text(&std::fs::read(e.unwrap().path()).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    bodies.sort();
    bodies
}

/// `pop3 init` in a terminal, answered up to the server: alice@example.test, login
/// `USER`, the server at 127.0.0.1:`port`.
fn start_for_alice(env: &TestEnv, port: u16) -> Terminal {
    let mut t = Terminal::start(env, &["init"]);
    t.expect("Email address: ");
    t.send("alice@example.test");
    t.expect("Login name [alice@example.test]: ");
    t.send(USER);
    t.expect("POP3 server (HOST or HOST:PORT) [pop.example.test]: ");
    t.send(&format!("127.0.0.1:{port}"));
    t
}

#[test]
fn init_over_tls_pins_the_certificate_and_the_account_fetches() {
    let Some(dc) = dovecot() else {
        return;
    };
    let env = TestEnv::new();
    let mut t = start_for_alice(&env, dc.pop3s_port);
    // The certificate, with its validity and fingerprint, and the capabilities.
    t.expect("  valid      ");
    t.expect("NOT trusted: it is not signed by a trusted authority");
    t.expect("capabilities: ");
    t.expect("Pin this certificate (p), give the CA certificate file (c), or stop (s)? ");
    t.send("p");
    // A wrong password first: refused, and asked again.
    t.expect("Password for alice@127.0.0.1 (not shown): ");
    t.send_secret("wrong-password");
    t.expect("refused: ");
    t.expect("Password for alice@127.0.0.1 (not shown): ");
    t.send_secret(PASS);
    t.expect("logged in with ");
    t.expect("3 message(s)");
    t.expect("Deliver into this Maildir [~/Mail/inbox]: ");
    t.send("");
    t.expect("Leave the messages on the server after fetching them? [Y/n]");
    t.send("");
    t.expect("Name for this account [example]: ");
    t.send("dove");
    t.expect("Choice [c]: ");
    t.send("l");
    t.expect("password = \"***\"");
    t.expect("Write it? [Y/n]");
    t.send("y");
    t.expect("Wrote account dove");
    let (code, transcript) = t.finish();
    eprintln!("---- pop3 init transcript ----\n{transcript}\n------------------------------");
    assert_eq!(code, Some(0), "{transcript}");
    assert!(transcript.contains("Warning: the password is in that file"));
    // Typed without echo, and never shown.
    assert!(
        !transcript.contains(PASS) && !transcript.contains("wrong-password"),
        "{transcript}"
    );

    let config = std::fs::read_to_string(env.config_path()).unwrap();
    let mode = std::fs::metadata(env.config_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{config}");
    for line in [
        "[accounts.dove]",
        "host = \"127.0.0.1\"",
        &format!("port = {}", dc.pop3s_port),
        "tls = \"implicit\"",
        "user = \"alice\"",
        &format!("password = \"{PASS}\""),
        "keep = true",
        "deliver.maildir = \"~/Mail/inbox\"",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "no {line:?} in:\n{config}"
        );
    }
    // The pin is the certificate's, and the transcript showed the same fingerprint.
    let pin = config
        .lines()
        .find_map(|l| l.strip_prefix("tls_fingerprint = \"sha256:"))
        .unwrap_or_else(|| panic!("no pin in:\n{config}"));
    assert!(
        transcript.contains(pin.trim_end_matches('"')),
        "{transcript}"
    );

    ok(&env, &["accounts", "--check"]);
    ok(&env, &["fetch", "dove"]);
    let got = inbox(&env);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].contains("Subject: init test 1"), "{}", got[0]);
    // Kept on the server, as answered.
    assert_eq!(dc.stat(USER).0, 3);
}

#[test]
fn init_over_stls_with_a_ca_file_and_a_password_command_keeps_existing_accounts() {
    let Some(dc) = dovecot() else {
        return;
    };
    let env = TestEnv::new();
    let old = "[accounts.dove]\nhost = \"pop.example.org\"\nuser = \"old\"\n\
               deliver.maildir = \"~/Mail/old\"\n";
    env.write_config(old);
    let secret_file = env.write_file("pass.txt", &format!("{PASS}\n"), 0o600);
    let mut t = Terminal::start(&env, &["init"]);
    t.expect("Email address: ");
    t.send("not-an-address");
    t.expect("not an address like alice@example.com");
    t.send("alice@dove.example.test");
    t.expect("Login name [alice@dove.example.test]: ");
    t.send(USER);
    t.expect("[pop.dove.example.test]: ");
    // The plain port: implicit TLS is tried first and fails at once, then STLS.
    t.send(&format!("127.0.0.1:{}", dc.pop3_port));
    t.expect("(TLS)...");
    t.expect("no: ");
    t.expect("(STLS)...");
    t.expect("  sha256     ");
    t.expect("NOT trusted");
    t.expect("or stop (s)? ");
    t.send("c");
    t.expect("CA certificate file (PEM): ");
    t.send(&dc.ca_file.display().to_string());
    t.expect("trusted with that CA file");
    t.expect("(not shown): ");
    t.send_secret(PASS);
    t.expect("logged in with ");
    t.expect("Deliver into this Maildir [~/Mail/inbox]: ");
    t.send("Mail/relative");
    t.expect("is a relative path");
    t.send("~/Mail/dove");
    t.expect("[Y/n]");
    t.send("n");
    // `dove` is taken: the default is the next free name, and `dove` itself is refused.
    t.expect("Name for this account [dove-2]: ");
    t.send("dove");
    t.expect("there is an account dove already");
    t.send("dove2");
    t.expect("Choice [c]: ");
    t.send("c");
    t.expect("Command [pass show mail/dove2]: ");
    t.send("echo not-it");
    t.expect("prints something else than the password");
    t.expect("Choice [c]: ");
    t.send("c");
    t.expect("Command [pass show mail/dove2]: ");
    t.send(&format!("cat {}", secret_file.display()));
    t.expect("Write it? [Y/n]");
    t.send("");
    t.expect("Wrote account dove2");
    let (code, transcript) = t.finish();
    eprintln!("---- pop3 init transcript ----\n{transcript}\n------------------------------");
    assert_eq!(code, Some(0), "{transcript}");
    assert!(!transcript.contains(PASS), "{transcript}");

    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        config.starts_with(old),
        "the old account changed:\n{config}"
    );
    for line in [
        "[accounts.dove2]",
        &format!("port = {}", dc.pop3_port),
        "tls = \"starttls\"",
        &format!("tls_ca_file = \"{}\"", dc.ca_file.display()),
        &format!("password.command = \"cat {}\"", secret_file.display()),
        "keep = false",
        "deliver.maildir = \"~/Mail/dove\"",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "no {line:?} in:\n{config}"
        );
    }
    assert!(!config.contains(PASS), "{config}");
    ok(&env, &["accounts", "--check"]);
    ok(&env, &["fetch", "dove2"]);
    let delivered = std::fs::read_dir(env.home.join("Mail/dove/new"))
        .unwrap()
        .count();
    assert_eq!(delivered, 3);
    // keep = false: deleted on the server once delivered.
    assert_eq!(dc.stat(USER).0, 0);
}

/// A new user with an empty config and a provider that needs OAuth2: the server offers
/// XOAUTH2, so init asks; the user gives the provider's URLs (a provider not listed), the
/// client id and secret; init writes `auth = "xoauth2"` with the oauth table (the secret
/// shown as ***), runs the device flow right away (the test server approves after its
/// pending polls), logs in to Dovecot with the token, and `pop3 fetch` delivers the mailbox
/// with nothing more than that.
#[test]
fn init_sets_up_an_oauth_account_signs_in_and_the_account_fetches() {
    let oauth = OAuthServer::start();
    let Some(dc) = oauth_server::dovecot(&oauth, &[(USER, "not-the-token")]) else {
        return;
    };
    dc.add_messages(
        USER,
        [&b"From: bob@example.org\r\nSubject: oauth init\r\n\r\nHello.\r\n"[..]],
    );
    let env = TestEnv::new();
    let mut t = start_for_alice(&env, dc.pop3s_port);
    t.expect("XOAUTH2");
    t.expect("or stop (s)? ");
    t.send("p");
    t.expect("require OAuth2 sign-in instead of a password? [y/N] ");
    t.send("y");
    t.expect("whose URLs you give (o)? ");
    t.send("o");
    t.expect("Token URL: ");
    t.send("http://127.0.0.1/token");
    t.expect("must be an https:// URL");
    t.expect("Token URL: ");
    t.send(&oauth.url("token"));
    t.expect("Device authorization URL (for a code entered on any device; empty: none): ");
    t.send(&oauth.url("device"));
    t.expect("Authorization URL (for a browser on this machine; empty: none): ");
    t.send("");
    t.expect("Scopes, separated by spaces: ");
    t.send("mail");
    t.expect("CA certificate file for these URLs (empty: the public roots): ");
    t.send(&oauth.ca_file().display().to_string());
    t.expect("\"Gmail and Microsoft 365 (OAuth2)\"");
    t.expect("OAuth client id: ");
    t.send(OAuthServer::CLIENT_ID);
    t.expect("(not shown; empty: none): ");
    t.send_secret(OAuthServer::CLIENT_SECRET);
    t.expect("Deliver into this Maildir [~/Mail/inbox]: ");
    t.send("");
    t.expect("[Y/n]");
    t.send("");
    t.expect("Name for this account [example]: ");
    t.send("work");
    t.expect("get the client secret from");
    t.expect("Choice [c]: ");
    t.send("l");
    t.expect("oauth.client_secret = \"***\"");
    t.expect("Write it? [Y/n]");
    t.send("y");
    t.expect("Wrote account work");
    t.expect("enter the code WDJB-MJHT");
    t.expect("signed in; the refresh token is in ");
    t.expect("logged in with xoauth2; 1 message(s)");
    t.expect("pop3 fetch work");
    let (code, transcript) = t.finish();
    eprintln!("---- pop3 init transcript ----\n{transcript}\n------------------------------");
    assert_eq!(code, Some(0), "{transcript}");
    assert!(
        !transcript.contains(OAuthServer::CLIENT_SECRET),
        "{transcript}"
    );
    for secret in oauth.issued_secrets() {
        assert!(
            !transcript.contains(&secret),
            "a token leaked: {transcript}"
        );
    }
    assert_eq!(
        oauth.received("client_secret")[0],
        OAuthServer::CLIENT_SECRET
    );

    let config = std::fs::read_to_string(env.config_path()).unwrap();
    for line in [
        "[accounts.work]",
        "auth = \"xoauth2\"",
        &format!("oauth.token_url = \"{}\"", oauth.url("token")),
        &format!("oauth.device_url = \"{}\"", oauth.url("device")),
        "oauth.scopes = [\"mail\"]",
        &format!("oauth.client_id = \"{}\"", OAuthServer::CLIENT_ID),
        &format!("oauth.client_secret = \"{}\"", OAuthServer::CLIENT_SECRET),
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "no {line:?} in:\n{config}"
        );
    }
    assert!(
        !config.lines().any(|l| l.starts_with("password")),
        "{config}"
    );

    ok(&env, &["accounts", "--check"]);
    ok(&env, &["fetch", "work"]);
    let got = inbox(&env);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("Subject: oauth init"), "{}", got[0]);
    // Dovecot let pop3 in only after asking the authorization server about the token.
    assert!(oauth.introspected().iter().any(|(_, live)| *live));
    drop(dc);
}

#[test]
fn init_without_a_terminal_exits_64_and_says_what_to_do_instead() {
    let env = TestEnv::new();
    let out = env.cmd().arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("needs a terminal") && stderr.contains("--host"),
        "{stderr}"
    );
    assert!(!env.config_path().exists());
}
