//! Configuration errors end to end: strict keys (exit 78 naming file, line and key), a
//! literal password only in a private file, unknown accounts, bad values, and where the
//! password comes from when the file has none.

use crate::support::certs::TestCerts;
use crate::support::env::{TestEnv, text};
use crate::support::server::{PASSWORD, TestServer, sample_messages};

/// A TLS server with the sample mailbox, and the `[accounts.NAME]` table for it.
fn setup(name: &str) -> (TestServer, TestCerts, TestEnv, String) {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let toml = env.account_toml(name, server.port(), "implicit", Some(certs.ca_file()));
    (server, certs, env, toml)
}

/// Run `pop3 ARGS`, expect `code` and an error line on stderr; return stderr.
fn fails(env: &TestEnv, args: &[&str], code: i32) -> String {
    let out = env.cmd().args(args).assert().code(code).stdout("");
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.starts_with("pop3: "), "error line: {stderr:?}");
    stderr
}

fn without_password(toml: &str) -> String {
    toml.lines()
        .filter(|l| !l.starts_with("password"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn unknown_key_fails_with_78_naming_file_line_and_key() {
    let (server, _certs, env, mut toml) = setup("test");
    let line = toml.lines().count() + 1;
    toml.push_str("colour = \"blue\"\n");
    let path = env.write_config(&toml);
    let stderr = fails(&env, &["fetch"], 78);
    assert!(stderr.contains(path.to_str().unwrap()), "no file: {stderr}");
    assert!(
        stderr.contains(&format!("line {line}")),
        "no line {line}: {stderr}"
    );
    assert!(stderr.contains("colour"), "no key: {stderr}");
    assert_eq!(
        server.connection_count(),
        0,
        "connected despite a config error"
    );
}

#[test]
fn unknown_key_in_defaults_fails_with_78() {
    let (_server, _certs, env, toml) = setup("test");
    let path = env.write_config(&format!("[defaults]\nkeep = true\nkepp = false\n\n{toml}"));
    let stderr = fails(&env, &["fetch"], 78);
    assert!(stderr.contains(path.to_str().unwrap()), "no file: {stderr}");
    assert!(stderr.contains("line 3"), "no line: {stderr}");
    assert!(stderr.contains("kepp"), "no key: {stderr}");
}

#[test]
fn literal_password_in_a_group_or_world_readable_file_fails_with_78() {
    for mode in [0o640, 0o604, 0o644] {
        let (server, _certs, env, toml) = setup("test");
        let path = env.write_file("config.toml", &toml, mode);
        let stderr = fails(&env, &["-c", path.to_str().unwrap(), "fetch"], 78);
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "mode {mode:o}: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD));
        assert!(!server.sent_credentials(), "mode {mode:o}: password sent");
        assert!(env.new_files().is_empty());
    }
}

#[test]
fn password_command_in_a_readable_file_is_fine() {
    let (_server, _certs, env, toml) = setup("test");
    let toml = format!(
        "{}password.command = [\"printf\", \"%s\", \"{PASSWORD}\"]\n",
        without_password(&toml)
    );
    let path = env.write_file("config.toml", &toml, 0o644);
    env.cmd()
        .args(["-c", path.to_str().unwrap(), "fetch"])
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn unknown_account_name_fails_naming_it() {
    let (server, _certs, env, toml) = setup("test");
    env.write_config(&toml);
    let out = env
        .cmd()
        .args(["fetch", "nosuchaccount"])
        .assert()
        .failure();
    let stderr = text(&out.get_output().stderr);
    eprintln!("unknown account: exit {:?}", out.get_output().status.code());
    assert!(stderr.contains("nosuchaccount"), "{stderr}");
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn bad_tls_value_fails_with_78() {
    let (server, _certs, env, toml) = setup("test");
    env.write_config(&toml.replace("tls = \"implicit\"", "tls = \"sometimes\""));
    let stderr = fails(&env, &["fetch"], 78);
    assert!(
        stderr.contains("tls") || stderr.contains("sometimes"),
        "{stderr}"
    );
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn no_password_source_without_a_terminal_fails_with_78_naming_the_account() {
    let (server, _certs, env, toml) = setup("work");
    env.write_config(&without_password(&toml));
    let stderr = fails(&env, &["fetch"], 78);
    assert!(stderr.contains("work"), "account not named: {stderr}");
    assert!(stderr.contains("password"), "keys not named: {stderr}");
    assert!(!server.sent_credentials());
}

#[test]
fn pop3_password_env_is_used_when_the_file_has_no_password() {
    let (_server, _certs, env, toml) = setup("work");
    env.write_config(&without_password(&toml));
    env.cmd()
        .arg("fetch")
        .env("POP3_PASSWORD", PASSWORD)
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    assert_eq!(env.new_files().len(), 3);
}
