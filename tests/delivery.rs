//! Delivery the way fetchmail users do (issue #14): into a real Dovecot over LMTP (read back
//! byte for byte from its Maildir; over-quota and unknown recipients answered by Dovecot's
//! own configuration), and the POP3 session kept alive with NOOP while a slow MDA runs
//! longer than the server's idle limit.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::dovecot::Dovecot;
use crate::support::env::{TestEnv, delivered_form};
use crate::support::server::{Message, TestServer};

fn server(messages: &[(&str, &[u8])]) -> TestServer {
    TestServer::builder()
        .messages(messages.iter().map(|(u, b)| Message {
            uidl: u.to_string(),
            body: b.to_vec(),
        }))
        .start()
}

/// The files of a Maildir's `new/`, sorted by content.
fn maildir_messages(maildir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    let mut all: Vec<Vec<u8>> = entries
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    all.sort();
    all
}

/// The message Dovecot stored, without the `Return-Path:` line LMTP delivery puts first.
fn without_return_path(stored: &[u8]) -> &[u8] {
    assert!(
        stored.starts_with(b"Return-Path: <"),
        "{}",
        String::from_utf8_lossy(stored)
    );
    let end = stored.iter().position(|&b| b == b'\n').unwrap();
    &stored[end + 1..]
}

fn lmtp_account(env: &TestEnv, port: u16, dc: &Dovecot, recipients: &str, keep: bool) {
    let toml = env
        .account_toml("work", port, "none", None)
        .replace("deliver.maildir", "# deliver.maildir")
        + &format!(
            "allow_plaintext_password = true\nadd_received = false\nkeep = {keep}\n\
             deliver.lmtp = 'unix:{}'\ndeliver.recipient = {recipients}\n",
            dc.lmtp_socket().display()
        );
    env.write_config(&toml);
}

const MESSAGES: [(&str, &[u8]); 3] = [
    (
        "m1",
        b"Return-Path: <carol@example.org>\r\nFrom: carol@example.org\r\nSubject: one\r\n\r\n\
          .a line with a leading dot\r\n..two dots\r\n.\r\nend\r\n",
    ),
    (
        "m2",
        "From: d@example.org\r\nSubject: caf\u{e9} 8-bit\r\n\r\nna\u{ef}ve body\r\n".as_bytes(),
    ),
    ("m3", b"Subject: no return path\r\n\r\nlast line without LF"),
];

/// Issue #14: LMTP into Dovecot, read back from its own Maildir byte for byte; recorded,
/// then deleted on the POP3 server, and a second run delivers nothing again.
#[test]
fn lmtp_into_dovecot_is_byte_exact_recorded_and_deleted() {
    let Some(dc) = Dovecot::start_lmtp(&[("bob", "pw"), ("carl", "pw")]) else {
        return;
    };
    let pop = server(&MESSAGES);
    let env = TestEnv::new();
    lmtp_account(&env, pop.port(), &dc, "['bob', 'carl']", false);
    env.fetch_ok(&["-q"]);
    let mut want: Vec<Vec<u8>> = MESSAGES.iter().map(|(_, b)| delivered_form(b)).collect();
    want.sort();
    for user in ["bob", "carl"] {
        let stored = maildir_messages(&dc.maildir(user));
        let mut got: Vec<Vec<u8>> = stored
            .iter()
            .map(|s| without_return_path(s).to_vec())
            .collect();
        got.sort();
        assert_eq!(got.len(), 3, "{user}: {}", dc.log());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w,
                "{user}: stored {:?}\nwanted {:?}",
                String::from_utf8_lossy(g),
                String::from_utf8_lossy(w)
            );
        }
        // The envelope sender came from Return-Path, or <> without one.
        let senders: Vec<&[u8]> = stored
            .iter()
            .map(|s| &s[..s.iter().position(|&b| b == b'\n').unwrap()])
            .collect();
        assert!(
            senders.contains(&&b"Return-Path: <carol@example.org>"[..]),
            "{senders:?}"
        );
        assert!(senders.contains(&&b"Return-Path: <>"[..]), "{senders:?}");
    }
    assert!(
        pop.uidls().is_empty(),
        "deleted after the record: {:?}",
        pop.uidls()
    );
    env.fetch_ok(&["-q"]);
    assert_eq!(maildir_messages(&dc.maildir("bob")).len(), 3);
}

/// Issue #14: Dovecot answers 4xx for a recipient over quota and 5xx for an unknown one
/// (its own configuration, not a script). Either way the message is delivered to nobody,
/// not recorded, never deleted; 4xx ends the run with 75, 5xx with 74; the other
/// account's messages still go through.
#[test]
fn lmtp_over_quota_is_75_unknown_recipient_is_74_and_nothing_is_lost() {
    let Some(dc) = Dovecot::start_lmtp(&[("bob", "pw"), ("full", "pw")]) else {
        return;
    };
    for (recipients, code, says) in [
        ("['full']", 75, "Quota"),
        ("['bob', 'nosuchuser']", 74, "5.1.1"),
    ] {
        let pop = server(&MESSAGES[..2]);
        let env = TestEnv::new();
        lmtp_account(&env, pop.port(), &dc, recipients, false);
        let stderr = env.fetch_code(&[], code);
        assert!(
            stderr.contains(says),
            "{recipients}: {stderr}\n{}",
            dc.log()
        );
        assert!(
            stderr.contains("refused message(s) 1, 2"),
            "{recipients}: {stderr}"
        );
        assert_eq!(pop.uidls(), ["m1", "m2"], "{recipients}: nothing deleted");
        assert!(
            maildir_messages(&dc.maildir("bob")).is_empty(),
            "{recipients}: bob got nothing (a refused RCPT means no DATA)"
        );
        assert!(maildir_messages(&dc.maildir("full")).is_empty());
        // Nothing recorded: fixed, the next run delivers both.
        if code == 74 {
            lmtp_account(&env, pop.port(), &dc, "'bob'", false);
            env.fetch_ok(&["-q"]);
            assert_eq!(maildir_messages(&dc.maildir("bob")).len(), 2);
            assert!(pop.uidls().is_empty());
        }
    }
}

/// Issue #14: a POP3 server that drops a session idle for 5 s, and an MDA that takes 8 s
/// per message. With keep-alive NOOPs every 2 s the session survives both deliveries and
/// QUIT deletes both messages; with NOOPs only every hour the server drops the session
/// during the first delivery, which is still recorded, and nothing is deleted.
#[test]
fn keepalive_noop_carries_the_session_through_a_slow_mda() {
    let messages: [(&str, &[u8]); 2] = [
        ("s1", b"Subject: one\r\n\r\nx\r\n"),
        ("s2", b"Subject: two\r\n\r\ny\r\n"),
    ];
    for (keepalive, ok) in [("2s", true), ("1h", false)] {
        let pop = TestServer::builder()
            .messages(messages.iter().map(|(u, b)| Message {
                uidl: u.to_string(),
                body: b.to_vec(),
            }))
            .idle_limit(Duration::from_secs(5))
            .start();
        let env = TestEnv::new();
        let out = env.root().join("out");
        fs::create_dir(&out).unwrap();
        let toml = env
            .account_toml("work", pop.port(), "none", None)
            .replace("deliver.maildir", "# deliver.maildir")
            + &format!(
                "allow_plaintext_password = true\nkeep = false\nkeepalive = \"{keepalive}\"\n\
                 deliver.mda = 'sleep 8; cat > {}/$POP3_UIDL'\n",
                out.display()
            );
        env.write_config(&toml);
        if ok {
            env.fetch_ok(&["-q"]);
            assert!(pop.uidls().is_empty(), "both deleted after QUIT");
            let verbs = pop.verbs();
            assert!(
                verbs.iter().filter(|v| *v == "NOOP").count() >= 4,
                "{verbs:?}"
            );
            assert!(out.join("s1").exists() && out.join("s2").exists());
        } else {
            let stderr = env.fetch_code(&[], 75);
            assert!(
                stderr.contains("closed"),
                "the server dropped the idle session: {stderr}"
            );
            assert_eq!(pop.uidls(), ["s1", "s2"], "nothing deleted");
            assert!(out.join("s1").exists(), "the first delivery finished");
            // It was recorded: the next run (fast now) fetches only the second.
            let toml = fs::read_to_string(env.config_path())
                .unwrap()
                .replace("sleep 8; ", "");
            env.write_config(&toml);
            env.fetch_ok(&["-q"]);
            assert!(pop.uidls().is_empty());
        }
    }
}

fn smtp_account(env: &TestEnv, pop_port: u16, relay: &str, recipients: &str, extra: &str) {
    let toml = env
        .account_toml("work", pop_port, "none", None)
        .replace("deliver.maildir", "# deliver.maildir")
        + &format!(
            "allow_plaintext_password = true\nadd_received = false\nkeep = false\n\
             deliver.smtp = '{relay}'\ndeliver.recipient = {recipients}\n{extra}"
        );
    env.write_config(&toml);
}

/// Check a message the MTA stored against what pop3 sent (`sent`, LF line ends): the body
/// is byte for byte the same; the header section is pop3's header lines, unchanged and in
/// order, with in front only the MTA's trace fields (`Return-Path:`, `Delivered-To:`,
/// `Received:` with its folded lines) and behind only the `Date:` and `Message-ID:` that
/// OpenSMTPD adds to a message that has none.
fn assert_mta_kept(stored: &[u8], sent: &[u8], what: &str) {
    let split = |m: &[u8]| -> (String, Vec<u8>) {
        let end = m
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("a header section");
        (
            String::from_utf8_lossy(&m[..end + 1]).into_owned(),
            m[end + 2..].to_vec(),
        )
    };
    let (stored_head, stored_body) = split(stored);
    let (sent_head, sent_body) = split(sent);
    assert!(
        stored_body == sent_body,
        "{what}: body {:?}, sent {:?}",
        String::from_utf8_lossy(&stored_body),
        String::from_utf8_lossy(&sent_body)
    );
    let at = stored_head
        .find(&sent_head)
        .unwrap_or_else(|| panic!("{what}: sent headers {sent_head:?} not in {stored_head:?}"));
    let (front, back) = (&stored_head[..at], &stored_head[at + sent_head.len()..]);
    assert!(front.contains("Received: from "), "{what}: {front}");
    for line in front.lines() {
        assert!(
            ["Return-Path: ", "Delivered-To: ", "Received: ", "\t", " "]
                .iter()
                .any(|p| line.starts_with(p)),
            "{what}: not a trace field in front: {line:?}"
        );
    }
    for line in back.lines() {
        let name = line.split(':').next().unwrap();
        assert!(
            ["Date", "Message-ID"].contains(&name)
                && !sent_head
                    .to_ascii_lowercase()
                    .contains(&format!("\n{}:", name.to_ascii_lowercase())),
            "{what}: the MTA added {line:?} to headers {sent_head:?}"
        );
    }
}

/// Issue #14: SMTP into a real MTA (a private OpenSMTPD) that delivers into a Maildir: each
/// message arrives once, body and headers exactly as pop3 sent them (leading dots, 8-bit
/// text, a last line without LF) behind the MTA's own trace headers; then the messages are
/// deleted on the POP3 server and a second run sends nothing.
#[test]
fn smtp_into_opensmtpd_maildir_keeps_what_pop3_sent() {
    let Some(mta) = crate::support::mta::Mta::start(&["bob"]) else {
        return;
    };
    let pop = server(&MESSAGES);
    let env = TestEnv::new();
    smtp_account(
        &env,
        pop.port(),
        &format!("127.0.0.1:{}", mta.port),
        "'bob@localhost'",
        "",
    );
    env.fetch_ok(&["-q"]);
    assert!(
        pop.uidls().is_empty(),
        "deleted after the MTA accepted them"
    );
    let stored = mta.wait_messages("bob", 3);
    mta.settle();
    assert_eq!(mta.messages("bob").len(), 3, "{}", mta.log());
    for (uidl, original) in MESSAGES {
        let sent = delivered_form(original);
        let subject = sent
            .split(|&b| b == b'\n')
            .find(|l| l.starts_with(b"Subject: "))
            .unwrap();
        let matching: Vec<&Vec<u8>> = stored
            .iter()
            .filter(|s| s.split(|&b| b == b'\n').any(|l| l == subject))
            .collect();
        assert_eq!(matching.len(), 1, "{uidl}: {}", mta.log());
        assert_mta_kept(matching[0], &sent, uidl);
    }
    // The envelope sender came from Return-Path (OpenSMTPD writes it into its own
    // Return-Path line), or <> without one.
    let firsts: Vec<String> = stored
        .iter()
        .map(|s| {
            String::from_utf8_lossy(&s[..s.iter().position(|&b| b == b'\n').unwrap()]).into_owned()
        })
        .collect();
    assert!(
        firsts.contains(&"Return-Path: <carol@example.org>".to_owned()),
        "{firsts:?}"
    );
    env.fetch_ok(&["-q"]);
    mta.settle();
    assert_eq!(mta.messages("bob").len(), 3);
}

/// Issue #14: the MTA's own configuration refuses: 550 for a recipient it does not know
/// (exit 74), 452 from its filter for `full` (exit 75). Nothing reaches a Maildir, nothing is
/// recorded or deleted on the POP3 server; with the recipient fixed the next run delivers
/// each message exactly once and then deletes it.
#[test]
fn smtp_mta_unknown_recipient_is_74_full_is_75_then_fixed_delivers_once() {
    let Some(mta) = crate::support::mta::Mta::start(&["bob"]) else {
        return;
    };
    let relay = format!("127.0.0.1:{}", mta.port);
    for (recipient, code, says) in [
        ("'nosuch@localhost'", 74, "550"),
        ("'full@localhost'", 75, "452 4.2.2 Mailbox full"),
    ] {
        let bob_before = mta.messages("bob").len();
        let pop = server(&MESSAGES[..2]);
        let env = TestEnv::new();
        smtp_account(&env, pop.port(), &relay, recipient, "");
        let stderr = env.fetch_code(&[], code);
        assert!(stderr.contains(says), "{recipient}: {stderr}");
        assert!(
            stderr.contains("refused message(s) 1, 2"),
            "{recipient}: {stderr}"
        );
        assert_eq!(pop.uidls(), ["m1", "m2"], "{recipient}: nothing deleted");
        // Again: still refused, still there (nothing was recorded). A 5xx was reported
        // once: the second run says nothing about it and succeeds; a 4xx fails again.
        if code == 74 {
            let again = env.fetch_ok(&[]);
            assert!(
                !again.contains("550") && !again.contains("refused"),
                "{again}"
            );
        } else {
            env.fetch_code(&["-q"], code);
        }
        assert_eq!(pop.uidls(), ["m1", "m2"], "{recipient}: nothing deleted");
        mta.settle();
        assert_eq!(mta.messages("bob").len(), bob_before, "{recipient}");
        assert!(mta.messages("full").is_empty(), "{recipient}");
        smtp_account(&env, pop.port(), &relay, "'bob@localhost'", "");
        env.fetch_ok(&["-q"]);
        assert!(
            pop.uidls().is_empty(),
            "{recipient}: deleted once delivered"
        );
        mta.wait_messages("bob", bob_before + 2);
        env.fetch_ok(&["-q"]);
        mta.settle();
        assert_eq!(
            mta.messages("bob").len(),
            bob_before + 2,
            "{recipient}: once"
        );
    }
}

/// Issue #14, `deliver.starttls` against a real MTA that does not offer STARTTLS: the run
/// fails (exit 69, naming the missing STARTTLS) and never falls back to plaintext: the MTA
/// receives no message, nothing is recorded or deleted. (The TLS handshake itself, trusted
/// and untrusted, is tested against the scripted peer in src/deliver/smtp/tests.rs: this
/// OpenSMTPD cannot serve TLS, see tests/support/mta.rs.)
#[test]
fn smtp_starttls_required_but_not_offered_by_the_mta_sends_nothing() {
    let Some(mta) = crate::support::mta::Mta::start(&["bob"]) else {
        return;
    };
    let pop = server(&MESSAGES[..1]);
    let env = TestEnv::new();
    smtp_account(
        &env,
        pop.port(),
        &format!("127.0.0.1:{}", mta.port),
        "'bob@localhost'",
        "deliver.starttls = true\n",
    );
    let stderr = env.fetch_code(&[], 69);
    assert!(stderr.contains("does not offer STARTTLS"), "{stderr}");
    assert_eq!(pop.uidls(), ["m1"]);
    // Without deliver.starttls the same MTA takes it: the refusal above was the client's.
    smtp_account(
        &env,
        pop.port(),
        &format!("127.0.0.1:{}", mta.port),
        "'bob@localhost'",
        "",
    );
    mta.settle();
    assert!(mta.messages("bob").is_empty(), "{}", mta.log());
    assert!(!mta.log().contains("smtp message"), "{}", mta.log());
    env.fetch_ok(&["-q"]);
    assert!(pop.uidls().is_empty());
    mta.wait_messages("bob", 1);
}

/// Issue #14, `deliver.auth_user` end to end through the config file against the real MTA
/// (which offers neither STARTTLS nor AUTH). Without `deliver.auth_plaintext` the config is
/// refused (78) before the POP3 server is contacted. With it, the password command runs, the
/// MTA offers no AUTH mechanism: exit 69 naming the MTA, nothing sent or deleted, and the
/// password appears nowhere in the `-vv` output.
#[test]
fn smtp_auth_config_is_checked_and_the_secret_never_shown() {
    let Some(mta) = crate::support::mta::Mta::start(&["bob"]) else {
        return;
    };
    let relay = format!("127.0.0.1:{}", mta.port);
    let pop = server(&MESSAGES[..1]);
    let env = TestEnv::new();
    let auth = "deliver.auth_user = 'relayuser'\n\
                deliver.auth_password.command = ['sh', '-c', 'echo s3cret-relay-pw']\n";
    smtp_account(&env, pop.port(), &relay, "'bob@localhost'", auth);
    let stderr = env.fetch_code(&[], 78);
    assert!(
        stderr.contains("set deliver.starttls") && stderr.contains("deliver.auth_plaintext"),
        "{stderr}"
    );
    assert!(
        pop.verbs().is_empty(),
        "POP3 not contacted: {:?}",
        pop.verbs()
    );
    smtp_account(
        &env,
        pop.port(),
        &relay,
        "'bob@localhost'",
        &format!("{auth}deliver.auth_plaintext = true\n"),
    );
    let stderr = env.fetch_code(&["-vv"], 69);
    assert!(
        stderr.contains(&format!("SMTP server {relay} offers neither AUTH PLAIN")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-relay-pw"), "{stderr}");
    assert_eq!(pop.uidls(), ["m1"]);
    mta.settle();
    assert!(mta.messages("bob").is_empty());
}
