//! The system keyring for real: a private D-Bus session (dbus-run-session) with an unlocked
//! gnome-keyring, `pop3 password set`, a fetch that reads the password from the keyring, and
//! `pop3 password delete`. Skipped with a notice where dbus-run-session or gnome-keyring is
//! missing, unless POP3_REQUIRE_KEYRING=1 (CI).

use std::path::Path;
use std::process::Command;

use crate::support::certs::TestCerts;
use crate::support::env::TestEnv;
use crate::support::server::{self, TestServer, sample_messages};

fn available() -> bool {
    let have = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    };
    let ok = have("dbus-run-session") && have("gnome-keyring-daemon");
    if !ok {
        assert!(
            std::env::var("POP3_REQUIRE_KEYRING").as_deref() != Ok("1"),
            "POP3_REQUIRE_KEYRING=1 but dbus-run-session or gnome-keyring-daemon is missing \
             (apt-get install dbus gnome-keyring)"
        );
        eprintln!("notice: keyring test skipped (no dbus-run-session or gnome-keyring)");
    }
    ok
}

/// Run `script` (sh) inside a private session bus with an unlocked keyring, in `env`.
fn in_session(env: &TestEnv, script: &str) -> (i32, String, String) {
    let pop3 = assert_cmd::cargo::cargo_bin!("pop3");
    let full = format!(
        "printf %s keyring-unlock | gnome-keyring-daemon --unlock --components=secrets \
         >/dev/null\nPOP3={pop3}\n{script}",
        pop3 = shell_quote(pop3)
    );
    let mut cmd = Command::new("dbus-run-session");
    cmd.arg("--").arg("sh").arg("-c").arg(full);
    let base = env.std_cmd();
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(env.root());
    let out = cmd.output().expect("dbus-run-session runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn password_set_then_fetch_reads_the_keyring_then_delete() {
    if !available() {
        return;
    }
    let certs = TestCerts::new();
    let srv = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let toml = env
        .account_toml("work", srv.port(), "implicit", Some(certs.ca_file()))
        .replace(
            &format!("password = \"{}\"\n", server::PASSWORD),
            "password.keyring = true\n",
        );
    env.write_config(&toml);
    let (code, stdout, stderr) = in_session(
        &env,
        &format!(
            "printf '%s\\n' '{pw}' | $POP3 password set work || exit 10\n\
             $POP3 fetch || exit 11\n\
             $POP3 password delete work || exit 12\n\
             $POP3 fetch; echo \"after-delete=$?\"",
            pw = server::PASSWORD
        ),
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("stored the password for work"), "{stderr}");
    assert_eq!(env.new_files().len(), sample_messages().len(), "{stderr}");
    // Without the entry, fetch fails with a configuration error that says what to do.
    assert!(stdout.contains("after-delete=78"), "{stdout}\n{stderr}");
    assert!(stderr.contains("pop3 password set work"), "{stderr}");
    assert!(!stdout.contains(server::PASSWORD) && !stderr.contains(server::PASSWORD));
}

#[test]
fn without_a_session_bus_the_keyring_fails_at_once_with_advice() {
    let env = TestEnv::new();
    env.write_config(
        "[accounts.work]\nhost = \"127.0.0.1\"\nport = 9\nuser = \"u\"\n\
         password.keyring = true\ndeliver.maildir = \"~/Mail\"\n",
    );
    let started = std::time::Instant::now();
    let out = env
        .cmd()
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .arg("fetch")
        .assert()
        .code(78);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.starts_with("pop3: work: "), "{stderr}");
    assert!(stderr.contains("password.command"), "{stderr}");
}
