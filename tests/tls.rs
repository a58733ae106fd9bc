//! TLS end to end: STLS only with all its checks (RFC 2595, DESIGN invariant 5: a password
//! never crosses an unencrypted connection unless the account allows it), certificate
//! verification (CA file, wrong name, self-signed, SHA-256 pins), and `tls = "none"`.

use crate::support::certs::{Identity, TestCerts};
use crate::support::env::{TestEnv, delivered_forms, text};
use crate::support::server::{
    Fault, PASSWORD, ServerBuilder, TestServer, contains, sample_messages,
};

/// A STLS server with the sample mailbox and these faults, and an environment whose account
/// `test` uses `tls = "starttls"` with the test CA.
fn stls_setup(faults: &[Fault]) -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let mut builder = TestServer::builder()
        .starttls(&certs.leaf)
        .messages(sample_messages());
    for fault in faults {
        builder = builder.fault(fault.clone());
    }
    let server = builder.start();
    let env = TestEnv::new();
    env.write_config(&env.account_toml("test", server.port(), "starttls", Some(certs.ca_file())));
    (server, certs, env)
}

/// Run `pop3 fetch`, expect `code`, and return stderr.
fn fetch_fails(env: &TestEnv, code: i32) -> String {
    let out = env.cmd().arg("fetch").assert().code(code).stdout("");
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.starts_with("pop3: "), "error line: {stderr:?}");
    eprintln!("exit {code}: {stderr}");
    stderr
}

#[test]
fn stls_sends_credentials_only_inside_tls() {
    let (server, _certs, env) = stls_setup(&[]);
    env.fetch_quiet(&[]);
    let expected = delivered_forms(sample_messages().iter().map(|m| m.body.as_slice()));
    assert_eq!(env.delivered(), expected);

    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    let clear: Vec<String> = session
        .commands
        .iter()
        .filter(|c| !c.tls)
        .map(|c| c.verb())
        .collect();
    assert_eq!(clear.last().map(String::as_str), Some("STLS"), "{clear:?}");
    assert!(
        clear.iter().all(|v| v == "CAPA" || v == "STLS"),
        "sent in clear: {clear:?}"
    );
    assert!(session.sent_credentials(), "never logged in");
    assert!(!server.credentials_in_clear());
}

#[test]
fn stls_capabilities_are_asked_again_inside_tls() {
    let (server, _certs, env) = stls_setup(&[]);
    env.fetch_ok(&[]);
    let commands = server.commands();
    assert!(
        commands.iter().any(|c| c.tls && c.verb() == "CAPA"),
        "no CAPA after STLS: {commands:?}"
    );
}

#[test]
fn stls_missing_from_capa_fails_with_69_before_any_credentials() {
    let (server, _certs, env) = stls_setup(&[Fault::OmitStls]);
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("tls"), "{stderr}");
    assert!(!server.sent_credentials(), "{:?}", server.commands());
    assert!(env.new_files().is_empty());
}

#[test]
fn stls_refused_fails_with_69_and_nothing_but_quit_follows() {
    let (server, _certs, env) = stls_setup(&[Fault::RefuseStls]);
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("tls"), "{stderr}");
    let verbs = server.verbs();
    let stls = verbs.iter().position(|v| v == "STLS").expect("STLS sent");
    assert!(
        verbs[stls + 1..].iter().all(|v| v == "QUIT"),
        "sent after a refused STLS: {verbs:?}"
    );
    assert!(!server.sent_credentials());
}

#[test]
fn bytes_after_stls_ok_abort_with_76_before_credentials() {
    // Invariant 5: plaintext injected with the +OK must not be read as if it came over TLS.
    let (server, _certs, env) = stls_setup(&[Fault::ExtraAfterStls(
        b"+OK injected before the handshake\r\n".to_vec(),
    )]);
    fetch_fails(&env, 76);
    assert!(!server.sent_credentials(), "{:?}", server.commands());
    assert!(env.new_files().is_empty());
}

/// An implicit-TLS server presenting `identity`, and an account that trusts `ca` (or the
/// public roots when `None`).
fn implicit_setup(
    identity: impl Fn(&TestCerts) -> &Identity,
    trust_test_ca: bool,
) -> (TestServer, TestCerts, TestEnv) {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(identity(&certs))
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let ca = trust_test_ca.then(|| certs.ca_file());
    env.write_config(&env.account_toml("test", server.port(), "implicit", ca));
    (server, certs, env)
}

#[test]
fn certificate_for_the_wrong_name_fails_with_69_naming_the_certificate() {
    let (server, _certs, env) = implicit_setup(|c| &c.wrong_name, true);
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(!server.sent_credentials());
    assert!(env.new_files().is_empty());
}

#[test]
fn self_signed_certificate_fails_with_69() {
    let (server, _certs, env) = implicit_setup(|c| &c.self_signed, true);
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(!server.sent_credentials());
}

#[test]
fn unknown_ca_fails_with_69_without_tls_ca_file() {
    let (server, _certs, env) = implicit_setup(|c| &c.leaf, false);
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(!server.sent_credentials());
    assert!(env.new_files().is_empty());
}

/// A plain server (no TLS at all) and an account with `tls = "none"` plus `extra`.
fn plain_setup(extra: &str) -> (TestServer, TestEnv) {
    let server = TestServer::builder().messages(sample_messages()).start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "none", None);
    toml.push_str(extra);
    env.write_config(&toml);
    (server, env)
}

#[test]
fn tls_none_without_allow_plaintext_password_refuses_to_send_it() {
    let (server, env) = plain_setup("");
    let out = env.cmd().arg("fetch").assert().failure();
    let output = out.get_output();
    let code = output.status.code();
    let stderr = text(&output.stderr);
    // The contract allows 77 (no acceptable mechanism) or 78 (configuration); print which.
    eprintln!("tls = none without allow_plaintext_password: exit {code:?}: {stderr}");
    assert!(matches!(code, Some(c) if c != 0), "{code:?}");
    assert!(
        !server.verbs().iter().any(|v| v == "PASS"),
        "PASS sent in clear: {:?}",
        server.commands()
    );
    assert!(!server.credentials_in_clear());
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("allow_plaintext_password")
            || lower.contains("plaintext")
            || lower.contains("unencrypted")
            || lower.contains("cleartext"),
        "the message does not say why: {stderr}"
    );
}

#[test]
fn tls_none_with_allow_plaintext_password_fetches() {
    let (server, env) = plain_setup("allow_plaintext_password = true\n");
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 3);
    assert!(server.credentials_in_clear(), "the opt-in was used");
}

#[test]
fn pinned_fingerprint_trusts_a_self_signed_certificate() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.self_signed)
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "implicit", None);
    toml.push_str(&format!(
        "tls_fingerprint = \"{}\"\n",
        certs.self_signed.sha256_pin()
    ));
    env.write_config(&toml);
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 3);
}

#[test]
fn pinned_fingerprint_mismatch_fails_with_69() {
    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.self_signed)
        .messages(sample_messages())
        .start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "implicit", None);
    // The pin of another certificate (the CA-signed leaf).
    toml.push_str(&format!(
        "tls_fingerprint = \"{}\"\n",
        certs.leaf.sha256_pin()
    ));
    env.write_config(&toml);
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("certificate") || stderr.contains("fingerprint"));
    assert!(!server.sent_credentials());
    assert!(env.new_files().is_empty());
}

/// An implicit-TLS server built from `build` with the sample mailbox, and an account `test`
/// for it with `extra` (which says how to trust the server).
fn custom_setup(
    certs: &TestCerts,
    build: impl FnOnce(ServerBuilder) -> ServerBuilder,
    extra: &str,
) -> (TestServer, TestEnv) {
    let server = build(TestServer::builder().messages(sample_messages())).start();
    let env = TestEnv::new();
    let mut toml = env.account_toml("test", server.port(), "implicit", None);
    toml.push_str(extra);
    env.write_config(&toml);
    let _ = certs;
    (server, env)
}

/// `tls_ca_file` for the test CA.
fn trust_ca(certs: &TestCerts) -> String {
    format!("tls_ca_file = '{}'\n", certs.ca_file().display())
}

/// Neither stdout nor stderr holds the password.
fn assert_no_password(out: &std::process::Output) {
    for bytes in [&out.stdout, &out.stderr] {
        assert!(!contains(bytes, PASSWORD.as_bytes()), "{}", text(bytes));
    }
}

#[test]
fn expired_certificate_fails_with_69_naming_expiry_and_fingerprint() {
    let certs = TestCerts::new();
    let (server, env) = custom_setup(
        &certs,
        |b| b.implicit_tls(&certs.expired),
        &trust_ca(&certs),
    );
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(
        stderr.contains(&certs.expired.sha256_colons()),
        "no fingerprint {} in: {stderr}",
        certs.expired.sha256_colons()
    );
    assert!(!stderr.contains(PASSWORD));
    assert!(!server.sent_credentials());
    assert!(env.new_files().is_empty());
}

#[test]
fn tls_min_version_1_3_against_a_tls12_only_server_fails_with_69() {
    let certs = TestCerts::new();
    // The TLS 1.2-only server itself works with the default minimum (1.2).
    let (server, env) = custom_setup(
        &certs,
        |b| b.implicit_tls(&certs.leaf).tls12_only(),
        &trust_ca(&certs),
    );
    env.fetch_quiet(&[]);
    assert_eq!(env.new_files().len(), 3);
    drop((server, env));

    let (server, env) = custom_setup(
        &certs,
        |b| b.implicit_tls(&certs.leaf).tls12_only(),
        &format!("{}tls_min_version = \"1.3\"\n", trust_ca(&certs)),
    );
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.contains("TLS"), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("version"),
        "the message does not say that the versions do not match: {stderr}"
    );
    assert!(!server.sent_credentials());
    assert!(env.new_files().is_empty());
}

#[test]
fn client_certificate_is_presented_when_configured() {
    let certs = TestCerts::new();
    let (server, env) = custom_setup(
        &certs,
        |b| b.implicit_tls(&certs.leaf).require_client_cert(&certs.ca),
        &format!(
            "{}tls_cert_file = '{}'\ntls_key_file = '{}'\n",
            trust_ca(&certs),
            certs.client.cert_path.display(),
            certs.client.key_path.display()
        ),
    );
    let out = env.cmd().arg("fetch").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    assert_no_password(&out);
    assert_eq!(env.new_files().len(), 3);
    assert!(server.sent_credentials() && !server.credentials_in_clear());
}

#[test]
fn missing_client_certificate_fails_with_69() {
    let certs = TestCerts::new();
    let (server, env) = custom_setup(
        &certs,
        |b| b.implicit_tls(&certs.leaf).require_client_cert(&certs.ca),
        &trust_ca(&certs),
    );
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(!stderr.contains(PASSWORD));
    assert!(!server.sent_credentials());
    assert!(env.new_files().is_empty());
}

#[test]
fn missing_client_certificate_with_tls12_fails_with_69() {
    // With TLS 1.2 the server refuses inside the handshake (in 1.3 only after it).
    let certs = TestCerts::new();
    let (server, env) = custom_setup(
        &certs,
        |b| {
            b.implicit_tls(&certs.leaf)
                .tls12_only()
                .require_client_cert(&certs.ca)
        },
        &trust_ca(&certs),
    );
    let stderr = fetch_fails(&env, 69);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(!server.sent_credentials());
}

#[test]
fn public_key_pin_trusts_a_self_signed_certificate() {
    let certs = TestCerts::new();
    let pin = certs.self_signed.spki_sha256_pin();
    assert_ne!(pin, certs.self_signed.sha256_pin());
    let (server, env) = custom_setup(
        &certs,
        |b| b.implicit_tls(&certs.self_signed),
        &format!("tls_fingerprint = \"{pin}\"\n"),
    );
    let out = env.cmd().arg("fetch").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_no_password(&out);
    assert_eq!(env.new_files().len(), 3);
    assert!(!server.credentials_in_clear());

    // `probe` shows the same public-key fingerprint, so that a user can pin it.
    let out = env.cmd().args(["probe", "test"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(pin.trim_start_matches("sha256:")),
        "{stdout}"
    );
    assert_no_password(&out);
}

#[test]
fn public_key_pin_of_another_key_fails_with_69() {
    let certs = TestCerts::new();
    let (server, env) = custom_setup(
        &certs,
        |b| b.implicit_tls(&certs.self_signed),
        &format!("tls_fingerprint = \"{}\"\n", certs.leaf.spki_sha256_pin()),
    );
    let stderr = fetch_fails(&env, 69);
    assert!(
        stderr.contains(&certs.self_signed.sha256_colons()),
        "{stderr}"
    );
    assert!(!server.sent_credentials());
    assert!(env.new_files().is_empty());
}
