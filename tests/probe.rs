//! `pop3 probe` against a server whose certificate is not trusted (#11, item 20): it shows
//! the chain with validity dates and fingerprints and the server's capabilities ("show,
//! don't trust"), prints the exact `tls_fingerprint` line to add, sends no credentials, and
//! exits 69.

use crate::support::certs::{Identity, TestCerts};
use crate::support::env::{TestEnv, text};
use crate::support::server::{TestServer, sample_messages};

const CAPA: [&str; 5] = ["UIDL", "TOP", "PIPELINING", "SASL PLAIN", "RESP-CODES"];

/// A server with implicit TLS (or STLS) presenting `identity`, and an environment whose
/// account `test` trusts only the public roots (no CA file, no pin).
fn setup(identity: &Identity, starttls: bool) -> (TestServer, TestEnv) {
    let builder = TestServer::builder().capa(CAPA).messages(sample_messages());
    let builder = if starttls {
        builder.starttls(identity)
    } else {
        builder.implicit_tls(identity)
    };
    let server = builder.start();
    let env = TestEnv::new();
    let tls = if starttls { "starttls" } else { "implicit" };
    env.write_config(&env.account_toml("test", server.port(), tls, None));
    (server, env)
}

/// Run `pop3 ARGS`, expect `code`; (stdout, stderr).
fn run(env: &TestEnv, args: &[&str], code: i32) -> (String, String) {
    let out = env.cmd().args(args).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "pop3 {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}:\n{stdout}"))
}

#[test]
fn probe_shows_a_self_signed_server_and_the_pin_to_add_without_logging_in() {
    let certs = TestCerts::new();
    let (server, env) = setup(&certs.self_signed, false);
    let (stdout, stderr) = run(&env, &["probe", "test"], 69);

    // The chain, with its validity and fingerprint.
    assert!(
        line(&stdout, "certificate  0:").contains("subject CN="),
        "{stdout}"
    );
    let valid = line(&stdout, "  valid ");
    assert!(
        valid.contains(" UTC to ") && !valid.contains("EXPIRED"),
        "{valid}"
    );
    assert!(
        stdout.contains(&certs.self_signed.sha256_colons()),
        "{stdout}"
    );
    assert!(line(&stdout, "trust ").contains("not signed by a trusted authority"));
    // The capabilities, read over a connection that trusts only that certificate.
    let capabilities = line(&stdout, "capabilities");
    for capa in ["UIDL", "TOP", "PIPELINING", "SASL(PLAIN)"] {
        assert!(capabilities.contains(capa), "{capa}: {capabilities}");
    }
    assert!(line(&stdout, "login ").contains("plain would be used"));
    assert!(line(&stdout, "login        not tried").contains("no password was sent"));
    // The exact line to add, on a line of its own.
    let pin = format!("tls_fingerprint = \"{}\"", certs.self_signed.sha256_pin());
    assert!(
        stdout.lines().any(|l| l == pin),
        "no line {pin:?}:\n{stdout}"
    );
    assert!(stderr.contains("was refused"), "{stderr}");
    // Two connections (the refused one and the one that shows), no credentials on either.
    assert!(!server.sent_credentials());
    assert_eq!(server.connection_count(), 2);

    // The printed line, added to the account, is all it takes.
    let config = env.account_toml("test", server.port(), "implicit", None) + &pin + "\n";
    env.write_config(&config);
    let (stdout, _) = run(&env, &["probe", "test"], 0);
    assert!(line(&stdout, "logged in").contains("plain"), "{stdout}");
    assert!(line(&stdout, "mailbox").contains("3 messages"), "{stdout}");
}

#[test]
fn probe_over_stls_shows_capabilities_before_and_after_for_an_unknown_ca() {
    let certs = TestCerts::new();
    // Signed by the test CA, which the account does not trust.
    let (server, env) = setup(&certs.leaf, true);
    let (stdout, _) = run(&env, &["probe", "test"], 69);
    assert!(line(&stdout, "before STLS").contains("STLS"), "{stdout}");
    assert!(line(&stdout, "capabilities").contains("PIPELINING"));
    assert!(line(&stdout, "certificate  0:").contains("issuer CN=pop3 test CA"));
    let pin = format!("tls_fingerprint = \"{}\"", certs.leaf.sha256_pin());
    assert!(stdout.lines().any(|l| l == pin), "{stdout}");
    assert!(!server.sent_credentials());
}

#[test]
fn probe_of_an_expired_certificate_says_so_and_offers_no_pin() {
    let certs = TestCerts::new();
    let (server, env) = setup(&certs.expired, false);
    let target = format!("127.0.0.1:{}", server.port());
    let ca = certs.ca_file().display().to_string();
    let (stdout, stderr) = run(&env, &["probe", &target, "--ca-file", &ca], 69);
    let valid = line(&stdout, "  valid ");
    assert!(
        valid.contains("2020-01-01 00:00:00 UTC to 2021-01-01 00:00:00 UTC (EXPIRED)"),
        "{valid}"
    );
    assert!(line(&stdout, "trust ").contains("expired"));
    assert!(line(&stdout, "capabilities").contains("UIDL"));
    // A pin is no cure for an expired certificate.
    assert!(!stdout.contains("tls_fingerprint"), "{stdout}");
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(!server.sent_credentials());
}
