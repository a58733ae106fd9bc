//! Interop tests: the real `pop3` binary against a private Dovecot (tests/support/dovecot.rs)
//! holding generated mail (tests/support/corpus.rs). Without Dovecot installed they print a
//! notice and pass, unless POP3_REQUIRE_DOVECOT=1 (as in .ci/run).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::corpus::{self, Kind, Message};
use crate::support::dovecot::{Dovecot, Listed, Transport, virtual_size};
use crate::support::env::{delivered_form, without_received};

const USER: &str = "alice";
const PASS: &str = "s3cret-Dove";

/// A `pop3 list` row: NUM, SIZE, UIDL, STATE.
type Row = (usize, u64, String, String);

/// A `pop3` user: temp HOME and XDG dirs, a config file with one account `dove`, a Maildir.
struct Client {
    home: tempfile::TempDir,
    config: PathBuf,
    maildir: PathBuf,
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Client {
    /// `tls` is "implicit" or "starttls"; the port is chosen to match. `extra`: more lines for
    /// the account section.
    fn new(dc: &Dovecot, tls: &str, extra: &[&str]) -> Client {
        let home = tempfile::Builder::new()
            .prefix("pop3-interop-home-")
            .tempdir()
            .unwrap();
        let config_dir = home.path().join("config/pop3");
        fs::create_dir_all(&config_dir).unwrap();
        let maildir = home.path().join("Maildir");
        let port = if tls == "implicit" {
            dc.pop3s_port
        } else {
            dc.pop3_port
        };
        let config = config_dir.join("config.toml");
        let text = format!(
            "[accounts.dove]\n\
             host = \"127.0.0.1\"\n\
             port = {port}\n\
             user = {user}\n\
             password = {pass}\n\
             tls = {tls}\n\
             tls_ca_file = {ca}\n\
             timeout = \"60s\"\n\
             deliver.maildir = {maildir}\n\
             {extra}",
            user = toml_str(USER),
            pass = toml_str(PASS),
            tls = toml_str(tls),
            ca = toml_str(&dc.ca_file.display().to_string()),
            maildir = toml_str(&maildir.display().to_string()),
            extra = extra.iter().map(|l| format!("{l}\n")).collect::<String>(),
        );
        fs::write(&config, text).unwrap();
        // A literal password is only accepted from a file nobody else can read.
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        Client {
            home,
            config,
            maildir,
        }
    }

    /// `pop3` with HOME and XDG_* in the temp dir and no inherited POP3_* settings.
    fn cmd(&self) -> assert_cmd::Command {
        let h = self.home.path();
        let mut cmd = assert_cmd::Command::cargo_bin("pop3").expect("the pop3 binary");
        cmd.env("HOME", h)
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("XDG_STATE_HOME", h.join("state"))
            .env("XDG_DATA_HOME", h.join("data"))
            .env("XDG_CACHE_HOME", h.join("cache"))
            .env("XDG_RUNTIME_DIR", h.join("run"))
            .env_remove("POP3_CONFIG")
            .env_remove("POP3_PASSWORD")
            .env_remove("RUST_LOG")
            .timeout(Duration::from_secs(300));
        cmd
    }

    /// `pop3 -c CONFIG fetch dove ARGS...`: must exit 0 with empty stdout and stderr.
    fn fetch(&self, dc: &Dovecot, args: &[&str]) {
        let t = Instant::now();
        let out = self
            .cmd()
            .arg("-c")
            .arg(&self.config)
            .arg("fetch")
            .arg("dove")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "pop3 fetch {args:?}: {} after {:?}\nstdout: {}\nstderr: {}\n{}",
            out.status,
            t.elapsed(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            dc.log()
        );
        eprintln!("pop3 fetch {args:?}: {:?}", t.elapsed());
    }

    /// Files delivered so far (Maildir `new/` and `cur/`).
    fn delivered(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for d in ["new", "cur"] {
            if let Ok(rd) = fs::read_dir(self.maildir.join(d)) {
                files.extend(rd.map(|e| e.unwrap().path()));
            }
        }
        files.sort();
        files
    }

    /// Nothing may be left behind in the delivery Maildir's `tmp/`.
    fn assert_tmp_empty(&self) {
        if let Ok(rd) = fs::read_dir(self.maildir.join("tmp")) {
            let left: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
            assert!(left.is_empty(), "files left in Maildir/tmp: {left:?}");
        }
    }
}

/// Check that `files` are exactly the `expected` messages, each once, each identical (after
/// removing the prepended Received: field and normalising line ends) to what the server stored.
fn check_delivered(files: &[PathBuf], expected: &[&Message]) {
    let want: HashMap<usize, &Message> = expected.iter().map(|m| (m.id, *m)).collect();
    let mut seen: HashMap<usize, &Path> = HashMap::new();
    let mut problems = Vec::new();
    for f in files {
        let got = fs::read(f).unwrap();
        let Some(stripped) = without_received(&got) else {
            problems.push(format!("{}: does not start with Received:", f.display()));
            continue;
        };
        if got.contains(&b'\r') {
            problems.push(format!(
                "{}: contains CR (expected LF line ends)",
                f.display()
            ));
        }
        let Some(id) = corpus::test_id(stripped) else {
            problems.push(format!("{}: no X-Test-Id", f.display()));
            continue;
        };
        if let Some(prev) = seen.insert(id, f) {
            problems.push(format!(
                "message {id} delivered twice: {} and {}",
                prev.display(),
                f.display()
            ));
            continue;
        }
        let Some(m) = want.get(&id) else {
            problems.push(format!("message {id} was not expected ({})", f.display()));
            continue;
        };
        let (a, b) = (delivered_form(&m.bytes), delivered_form(stripped));
        if a != b {
            problems.push(format!(
                "message {id} ({:?}) altered: {}",
                m.kind,
                corpus::first_difference(&a, &b).unwrap_or_else(|| "length differs".into())
            ));
        }
    }
    let mut missing: Vec<usize> = want
        .keys()
        .filter(|k| !seen.contains_key(k))
        .copied()
        .collect();
    missing.sort_unstable();
    if !missing.is_empty() {
        problems.push(format!(
            "{} messages not delivered: {:?}",
            missing.len(),
            &missing[..missing.len().min(30)]
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems with the delivered mail:\n{}",
        problems.len(),
        problems[..problems.len().min(40)].join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Harness self-tests (no pop3 binary needed)
// ---------------------------------------------------------------------------------------------

#[test]
fn corpus_is_deterministic_and_well_formed() {
    let a = corpus::generate(120, 7);
    let b = corpus::generate(120, 7);
    assert_eq!(a.len(), 120);
    assert_eq!(a.iter().filter(|m| m.kind == Kind::Huge).count(), 1);
    assert_eq!(
        corpus::generate(99, 7)
            .iter()
            .filter(|m| m.kind == Kind::Huge)
            .count(),
        0
    );
    for &k in corpus::SPECIALS {
        assert_eq!(a.iter().filter(|m| m.kind == k).count(), 1, "{k:?}");
    }
    let mut msgids = std::collections::HashSet::new();
    for (m, n) in a.iter().zip(&b) {
        assert_eq!(m.bytes, n.bytes);
        assert_eq!(corpus::test_id(&m.bytes), Some(m.id));
        let msgid = m
            .bytes
            .split(|&c| c == b'\n')
            .find(|l| l.starts_with(b"Message-ID:"))
            .unwrap();
        assert!(msgids.insert(msgid.to_vec()), "duplicate Message-ID");
        // CRLF only: no bare CR or LF.
        for (i, &c) in m.bytes.iter().enumerate() {
            if c == b'\n' {
                assert_eq!(m.bytes[i - 1], b'\r', "bare LF in {}", m.id);
            }
            if c == b'\r' {
                assert_eq!(m.bytes.get(i + 1), Some(&b'\n'), "bare CR in {}", m.id);
            }
        }
        let final_crlf = m.bytes.ends_with(b"\r\n");
        let expect_final = !matches!(m.kind, Kind::NoFinalNewline | Kind::NoFinalNewlineDot);
        assert_eq!(final_crlf, expect_final, "{:?}", m.kind);
    }
    let huge = a.iter().find(|m| m.kind == Kind::Huge).unwrap();
    assert!((9_500_000..11_000_000).contains(&huge.bytes.len()));
    let long = a.iter().find(|m| m.kind == Kind::LongLines).unwrap();
    assert!(long.bytes.split(|&c| c == b'\n').any(|l| l.len() == 10_001));
    let delivered = [
        b"Received: from x\n\tby y; date\n".as_slice(),
        b"A: b\n\nbody",
    ]
    .concat();
    assert_eq!(
        without_received(&delivered),
        Some(b"A: b\n\nbody".as_slice())
    );
    assert_eq!(without_received(b"A: b\n"), None);
    assert_eq!(delivered_form(b"a\r\nb"), b"a\nb\n");
    assert_eq!(delivered_form(b"a\nb\n"), b"a\nb\n");
}

/// `check_delivered` accepts a faithful copy and catches an altered, a duplicated, a missing and
/// an un-Received message.
#[test]
fn interop_checker_catches_problems() {
    let msgs = corpus::generate(12, 9);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, m: &Message, edit: &dyn Fn(Vec<u8>) -> Vec<u8>| -> PathBuf {
        let mut lf =
            b"Received: from 127.0.0.1 by test;\n\tMon, 1 Jan 2024 00:00:00 +0000\n".to_vec();
        lf.extend(delivered_form(&m.bytes));
        let p = dir.path().join(name);
        fs::write(&p, edit(lf)).unwrap();
        p
    };
    let same = |v: Vec<u8>| v;
    let good: Vec<PathBuf> = msgs
        .iter()
        .map(|m| write(&format!("ok{}", m.id), m, &same))
        .collect();
    let all: Vec<&Message> = msgs.iter().collect();
    check_delivered(&good, &all);

    let fails = |files: Vec<PathBuf>| {
        let all = all.clone();
        std::panic::catch_unwind(move || check_delivered(&files, &all)).is_err()
    };
    assert!(fails(good[1..].to_vec()), "missing message not caught");
    let mut dup = good.clone();
    dup.push(write("dup", &msgs[0], &same));
    assert!(fails(dup), "duplicate not caught");
    let mut altered = good.clone();
    altered[3] = write("alt", &msgs[3], &|mut v: Vec<u8>| {
        let n = v.len() - 2;
        v[n] ^= 1;
        v
    });
    assert!(fails(altered), "altered message not caught");
    let mut no_received = good.clone();
    no_received[4] = dir.path().join("norec");
    fs::write(&no_received[4], delivered_form(&msgs[4].bytes)).unwrap();
    assert!(fails(no_received), "missing Received: not caught");
    let mut crlf = good;
    crlf[5] = write("crlf", &msgs[5], &|v: Vec<u8>| {
        let mut out = Vec::new();
        for &c in &v {
            if c == b'\n' {
                out.push(b'\r');
            }
            out.push(c);
        }
        out
    });
    assert!(fails(crlf), "CRLF delivery not caught");
}

/// The private Dovecot works: raw login + STAT over plain TCP, STLS and implicit TLS (rustls
/// trusting the test CA), LIST/UIDL match what was written, RETR serves the stored bytes.
#[test]
fn dovecot_harness_raw_pop3() {
    let Some(dc) = Dovecot::start(&[(USER, PASS), ("bob", "other")]) else {
        return;
    };
    let msgs = corpus::generate(30, 11);
    let uidls = dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let total: u64 = msgs.iter().map(|m| virtual_size(&m.bytes)).sum();

    let mut c = dc.connect(Transport::Plain);
    let capa = c.capa();
    eprintln!("Dovecot CAPA: {capa:?}");
    for want in ["UIDL", "PIPELINING", "STLS", "USER"] {
        assert!(
            capa.iter().any(|l| l == want),
            "CAPA lacks {want}: {capa:?}"
        );
    }
    let sasl = capa.iter().find(|l| l.starts_with("SASL ")).unwrap();
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        assert!(sasl.split(' ').any(|m| m == mech), "{sasl}");
    }
    c.login(USER, PASS);
    assert_eq!(c.stat(), (msgs.len(), total));
    let listing = c.listing();
    let expected: Vec<Listed> = msgs
        .iter()
        .zip(&uidls)
        .enumerate()
        .map(|(i, (m, u))| Listed {
            num: i + 1,
            size: virtual_size(&m.bytes),
            uidl: u.clone(),
        })
        .collect();
    assert_eq!(listing, expected);
    for (i, m) in msgs.iter().enumerate() {
        let served = c.retr(i + 1);
        let mut stored = m.bytes.clone();
        if !stored.ends_with(b"\r\n") {
            stored.extend_from_slice(b"\r\n");
        }
        assert!(served == stored, "RETR {} ({:?}) differs", i + 1, m.kind);
    }
    c.quit();

    for t in [Transport::Tls, Transport::Stls] {
        let mut c = dc.login(USER, t);
        assert_eq!(c.stat(), (msgs.len(), total), "{t:?}");
        c.quit();
    }
    assert_eq!(dc.stat("bob"), (0, 0));
    assert_eq!(dc.listing(USER), expected);
    assert_eq!(dc.file_count(USER), msgs.len());

    // APOP is enabled: Dovecot puts its <timestamp> challenge into the greeting.
    let raw = dc.connect(Transport::Plain);
    assert!(raw.greeting.contains('<'), "greeting {:?}", raw.greeting);
    raw.quit();
}

// ---------------------------------------------------------------------------------------------
// The pop3 binary against Dovecot
// ---------------------------------------------------------------------------------------------

/// 500 mixed messages over implicit TLS: each delivered once and intact; a rerun fetches nothing;
/// a new message is the only one fetched next; --delete empties the server mailbox.
#[test]
fn interop_fetch_500_over_implicit_tls() {
    let Some(dc) = Dovecot::start(&[(USER, PASS)]) else {
        return;
    };
    let t = Instant::now();
    let msgs = corpus::generate(500, 42);
    dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let total: u64 = msgs.iter().map(|m| virtual_size(&m.bytes)).sum();
    eprintln!("seeded 500 messages ({total} octets) in {:?}", t.elapsed());
    assert_eq!(dc.stat(USER), (500, total));

    let client = Client::new(&dc, "implicit", &[]);
    client.fetch(&dc, &[]);
    let files = client.delivered();
    let all: Vec<&Message> = msgs.iter().collect();
    check_delivered(&files, &all);
    client.assert_tmp_empty();
    assert_eq!(dc.stat(USER), (500, total), "keep is the default");

    // The state dir holds the account's UIDL file.
    let state = client.home.path().join("state/pop3");
    let uidl_files: Vec<_> = fs::read_dir(&state)
        .unwrap_or_else(|e| panic!("{}: {e}", state.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".uidl"))
        .collect();
    assert_eq!(uidl_files.len(), 1, "{uidl_files:?}");

    // Second run: nothing new.
    client.fetch(&dc, &[]);
    assert_eq!(client.delivered(), files, "a rerun delivered something");

    // One more message on the server: only that one is fetched.
    let extra = corpus::message(501, Kind::Text, 42);
    dc.add_messages(USER, [extra.bytes.as_slice()]);
    client.fetch(&dc, &[]);
    let now = client.delivered();
    assert_eq!(now.len(), 501);
    let new: Vec<PathBuf> = now.into_iter().filter(|f| !files.contains(f)).collect();
    check_delivered(&new, &[&extra]);

    // --delete: nothing new to deliver, every recorded message deleted on the server.
    client.fetch(&dc, &["--delete"]);
    assert_eq!(client.delivered().len(), 501);
    assert_eq!(dc.stat(USER), (0, 0));
    assert_eq!(dc.file_count(USER), 0);

    // And a rerun after that delivers nothing.
    client.fetch(&dc, &[]);
    assert_eq!(client.delivered().len(), 501);
    client.assert_tmp_empty();
    eprintln!("interop_fetch_500_over_implicit_tls: {:?}", t.elapsed());
}

/// tls = "starttls" on the plain port: CAPA, STLS, USER/PASS, then the whole mailbox, intact.
#[test]
fn interop_fetch_over_stls() {
    let Some(dc) = Dovecot::start(&[(USER, PASS)]) else {
        return;
    };
    let msgs = corpus::generate(40, 7);
    dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let client = Client::new(&dc, "starttls", &["auth = \"user\""]);
    client.fetch(&dc, &[]);
    check_delivered(&client.delivered(), &msgs.iter().collect::<Vec<_>>());
    client.assert_tmp_empty();
    client.fetch(&dc, &[]);
    assert_eq!(client.delivered().len(), msgs.len());
    assert_eq!(dc.stat(USER).0, msgs.len());
}

/// One-off account from flags (no config file), password from POP3_PASSWORD.
#[test]
fn interop_one_off_flags() {
    let Some(dc) = Dovecot::start(&[(USER, PASS)]) else {
        return;
    };
    let msgs = corpus::generate(12, 3);
    dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let client = Client::new(&dc, "implicit", &[]);
    fs::remove_file(&client.config).unwrap();
    let maildir = client.home.path().join("OneOff");
    for (tls, port) in [("implicit", dc.pop3s_port), ("starttls", dc.pop3_port)] {
        let out = client
            .cmd()
            .env("POP3_PASSWORD", PASS)
            .args(["fetch", "--all", "--host", "127.0.0.1", "--user", USER])
            .args(["--tls", tls, "--port", &port.to_string()])
            .arg("--ca-file")
            .arg(&dc.ca_file)
            .arg("--maildir")
            .arg(&maildir)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{tls}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains(PASS) && !String::from_utf8_lossy(&out.stderr).contains(PASS));
    }
    // -vv traces the protocol, but never the password.
    let out = client
        .cmd()
        .env("POP3_PASSWORD", PASS)
        .args(["-vv", "fetch", "--host", "127.0.0.1", "--user", USER])
        .args(["--port", &dc.pop3s_port.to_string()])
        .arg("--ca-file")
        .arg(&dc.ca_file)
        .arg("--maildir")
        .arg(&maildir)
        .output()
        .unwrap();
    let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    let all = String::from_utf8_lossy(&all);
    assert!(out.status.success(), "-vv: {}\n{all}", out.status);
    assert!(!all.contains(PASS), "password in -vv output:\n{all}");
    assert!(!all.is_empty(), "-vv printed nothing");

    // --all fetched everything twice (once per transport), the -vv run nothing new.
    let mut files = Vec::new();
    for d in ["new", "cur"] {
        if let Ok(rd) = fs::read_dir(maildir.join(d)) {
            files.extend(rd.map(|e| e.unwrap().path()));
        }
    }
    assert_eq!(files.len(), 2 * msgs.len());
}

/// `pop3 list` shows NUM SIZE UIDL new/seen (then possibly more columns) for the server's
/// mailbox, and delivers nothing.
#[test]
fn interop_list_shows_new_and_seen() {
    let Some(dc) = Dovecot::start(&[(USER, PASS)]) else {
        return;
    };
    let msgs = corpus::generate(8, 5);
    dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let client = Client::new(&dc, "implicit", &[]);

    // Uses the default config location ($XDG_CONFIG_HOME/pop3/config.toml).
    let list = |client: &Client| -> Vec<Row> {
        let out = client.cmd().args(["list", "dove"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "pop3 list: {}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = stdout.lines();
        let header = lines.next().unwrap_or_default();
        assert!(header.starts_with('#'), "header line: {header:?}");
        lines
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // NUM SIZE UIDL STATE (DESIGN.md adds date, from and subject after these).
                assert!(f.len() >= 4, "row {l:?}");
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].to_string(),
                    f[3].to_string(),
                )
            })
            .collect()
    };
    let expect = |listing: &[Listed], seen: usize| -> Vec<Row> {
        listing
            .iter()
            .map(|l| {
                let state = if l.num <= seen { "seen" } else { "new" };
                (l.num, l.size, l.uidl.clone(), state.to_string())
            })
            .collect()
    };

    assert_eq!(list(&client), expect(&dc.listing(USER), 0));
    assert!(client.delivered().is_empty(), "list delivered mail");

    client.fetch(&dc, &[]);
    assert_eq!(client.delivered().len(), 8);
    let more = corpus::generate(11, 5);
    dc.add_messages(USER, more[8..].iter().map(|m| m.bytes.as_slice()));
    let listing = dc.listing(USER);
    assert_eq!(listing.len(), 11);
    assert_eq!(list(&client), expect(&listing, 8));
    assert_eq!(client.delivered().len(), 8, "list delivered mail");
}

/// Every login mechanism Dovecot offers logs in for real, over implicit TLS and over STLS;
/// over plaintext, `auth = "auto"` picks a mechanism that does not reveal the password.
#[test]
fn interop_every_mechanism_logs_in() {
    let Some(dc) = Dovecot::start(&[(USER, PASS)]) else {
        return;
    };
    let msgs = corpus::generate(3, 11);
    dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let expected: Vec<&Message> = msgs.iter().collect();
    let mechanisms = [
        "scram-sha-256",
        "scram-sha-1",
        "cram-md5",
        "apop",
        "plain",
        "login",
        "user",
    ];
    for mech in mechanisms {
        for tls in ["implicit", "starttls"] {
            let auth = format!("auth = \"{mech}\"");
            let client = Client::new(&dc, tls, &[&auth]);
            let out = client
                .cmd()
                .arg("-c")
                .arg(&client.config)
                .args(["-vv", "fetch", "dove"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{mech}/{tls}: {}\n{stderr}",
                out.status
            );
            assert!(
                stderr.contains(&format!("logging in with {mech}")),
                "{mech}/{tls}: {stderr}"
            );
            assert!(!stderr.contains(PASS), "{mech}/{tls}: the password leaked");
            check_delivered(&client.delivered(), &expected);
        }
    }
    // Plaintext: auto must not choose PLAIN, LOGIN or USER without permission.
    let client = Client::new(&dc, "starttls", &[]);
    let text = fs::read_to_string(&client.config)
        .unwrap()
        .replace("tls = \"starttls\"", "tls = \"none\"");
    fs::write(&client.config, text).unwrap();
    let out = client
        .cmd()
        .arg("-c")
        .arg(&client.config)
        .args(["-vv", "fetch", "dove"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("logging in with scram-sha-256"), "{stderr}");
    check_delivered(&client.delivered(), &expected);
}

/// A client whose config has no `deliver.maildir` line yet (`extra` replaces it); its
/// Maildir exists, for MDAs that deliver into it.
fn mda_client(dc: &Dovecot, extra: &str) -> Client {
    let client = Client::new(dc, "implicit", &[]);
    let text = fs::read_to_string(&client.config).unwrap();
    let text = text
        .lines()
        .filter(|l| !l.starts_with("deliver.maildir"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + extra;
    fs::write(&client.config, text).unwrap();
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(client.maildir.join(sub)).unwrap();
    }
    client
}

/// procmail (the classic MDA) and maildrop deliver the Dovecot corpus intact.
#[test]
fn interop_procmail_and_maildrop() {
    let Some(dc) = Dovecot::start(&[(USER, PASS)]) else {
        return;
    };
    let msgs = corpus::generate(60, 23);
    dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let expected: Vec<&Message> = msgs.iter().collect();
    let mut ran = 0;
    for (tool, make) in [("procmail", "procmailrc"), ("maildrop", "mailfilter")] {
        if crate::support::dovecot::find_tool(tool).is_none() {
            assert!(
                std::env::var("POP3_REQUIRE_DOVECOT").as_deref() != Ok("1"),
                "{tool} is not installed (apt-get install {tool})"
            );
            eprintln!("notice: {tool} not installed; skipped");
            continue;
        }
        let client = mda_client(&dc, "");
        let rc_path = client.home.path().join(make);
        let maildir = format!("{}/", client.maildir.display());
        let mda = match tool {
            "procmail" => {
                fs::write(&rc_path, format!("DEFAULT={maildir}\n")).unwrap();
                format!(
                    "deliver.mda = [\"procmail\", \"-m\", {}]\n",
                    toml_str(&rc_path.display().to_string())
                )
            }
            _ => {
                fs::write(&rc_path, format!("to \"{maildir}\"\n")).unwrap();
                fs::set_permissions(&rc_path, fs::Permissions::from_mode(0o600)).unwrap();
                format!(
                    "deliver.mda = [\"maildrop\", {}]\n",
                    toml_str(&rc_path.display().to_string())
                )
            }
        };
        let text = fs::read_to_string(&client.config).unwrap() + &mda;
        fs::write(&client.config, text).unwrap();
        client.fetch(&dc, &[]);
        check_delivered(&client.delivered(), &expected);
        // Nothing new the second time.
        client.fetch(&dc, &[]);
        assert_eq!(client.delivered().len(), msgs.len(), "{tool}");
        ran += 1;
    }
    eprintln!("MDAs run: {ran}");
}

/// mbox delivery of the Dovecot corpus: mboxrd quoting undone, every message intact.
#[test]
fn interop_mbox() {
    let Some(dc) = Dovecot::start(&[(USER, PASS)]) else {
        return;
    };
    let msgs = corpus::generate(80, 31);
    dc.add_messages(USER, msgs.iter().map(|m| m.bytes.as_slice()));
    let client = mda_client(&dc, "");
    let mbox = client.home.path().join("inbox.mbox");
    let text = fs::read_to_string(&client.config).unwrap()
        + &format!("deliver.mbox = {}\n", toml_str(&mbox.display().to_string()));
    fs::write(&client.config, text).unwrap();
    client.fetch(&dc, &[]);
    client.fetch(&dc, &[]);
    let data = fs::read(&mbox).unwrap();
    // Split at "From " lines that follow a blank line (or start the file), undo mboxrd.
    let split = client.home.path().join("split");
    fs::create_dir_all(&split).unwrap();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut prev_blank = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if prev_blank && line.starts_with(b"From ") {
            messages.push(Vec::new());
            prev_blank = false;
            continue;
        }
        let current = messages
            .last_mut()
            .expect("the mbox starts with a From line");
        let unquoted = if line.starts_with(b">") {
            let gts = line.iter().take_while(|&&b| b == b'>').count();
            if line[gts..].starts_with(b"From ") {
                &line[1..]
            } else {
                line
            }
        } else {
            line
        };
        current.extend_from_slice(unquoted);
        prev_blank = line == b"\n";
    }
    let mut files = Vec::new();
    for (i, mut m) in messages.into_iter().enumerate() {
        // The writer's separator: one blank line after each message.
        assert!(m.ends_with(b"\n\n"), "message {i} lacks its blank line");
        m.pop();
        let path = split.join(format!("{i:04}"));
        fs::write(&path, m).unwrap();
        files.push(path);
    }
    check_delivered(&files, &msgs.iter().collect::<Vec<_>>());
}
