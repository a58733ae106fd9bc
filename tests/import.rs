//! `pop3 import` and `pop3 state`: round trips with the real fetchmail, mpop and getmail6
//! against a private Dovecot (each peer fetches in keep mode and writes its own UIDL file;
//! after the import `pop3 fetch` must fetch nothing, and after one new message exactly that
//! one), plus rc files that are broken or not what they claim, and the state commands.
//!
//! The peers are skipped with a notice when not installed, unless POP3_REQUIRE_PEERS=1 (as in
//! .ci/run). As root they run as `nobody` (fetchmail and getmail refuse root in some setups).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::dovecot::{Dovecot, find_tool};
use crate::support::env::{TestEnv, text};

const USER: &str = "alice";
const PASS: &str = "s3cret-Peer";

/// The peer's binary, or `None` after a notice (a panic with POP3_REQUIRE_PEERS=1).
fn peer(name: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(name) {
        return Some(p);
    }
    if std::env::var("POP3_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("POP3_REQUIRE_PEERS=1 but {name} is not installed (apt-get install {name})");
    }
    eprintln!(
        "NOTICE: {name} is not installed: skipping this import round trip; set \
         POP3_REQUIRE_PEERS=1 to make that an error"
    );
    None
}

/// A message with a recognisable subject.
fn message(n: usize) -> Vec<u8> {
    format!(
        "From: bob@example.com\r\nTo: alice@example.com\r\nSubject: import test {n}\r\n\
         Message-ID: <import-{n}@example.com>\r\n\r\nBody of message {n}.\r\n"
    )
    .into_bytes()
}

/// A work directory for a peer, reachable by `nobody` when we are root.
struct Work {
    dir: tempfile::TempDir,
    as_nobody: bool,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::Builder::new()
            .prefix("pop3-import-peer-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let as_nobody = rustix_uid() == 0;
        Work { dir, as_nobody }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file with mode 0600 (the peers insist for their rc files).
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// An empty Maildir (`Maildir` with cur/new/tmp) in the work dir, for a peer to fill.
    fn maildir(&self) -> PathBuf {
        for d in ["cur", "new", "tmp"] {
            self.mkdirs(&format!("Maildir/{d}"));
        }
        self.path().join("Maildir")
    }

    fn mkdirs(&self, rel: &str) -> PathBuf {
        let p = self.path().join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// Run `argv` in the work dir with HOME there (as nobody when root); must exit 0.
    fn run(&self, argv: &[&str], env: &[(&str, &Path)]) {
        if self.as_nobody {
            let status = Command::new("chown")
                .args(["-R", "nobody:"])
                .arg(self.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]);
            c.args(argv);
            c
        } else {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        };
        cmd.current_dir(self.path())
            .env("HOME", self.path())
            .env("TMPDIR", self.path())
            .env("USER", "nobody")
            .env("LOGNAME", "nobody");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{argv:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// Our uid (0 when root), from `id -u`.
fn rustix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    text(&out.stdout).trim().parse().unwrap()
}

/// Files in a directory (recursively through Maildir new/ and cur/ when they exist).
fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for sub in ["", "new", "cur"] {
        let d = dir.join(sub);
        if let Ok(entries) = fs::read_dir(&d) {
            n += entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .count();
        }
    }
    n
}

/// Every file's text under `dir` (new/ and cur/ too), concatenated.
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for sub in ["", "new", "cur"] {
        if let Ok(entries) = fs::read_dir(dir.join(sub)) {
            for e in entries.filter_map(|e| e.ok()) {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    s.push_str(&text(&fs::read(e.path()).unwrap()));
                }
            }
        }
    }
    s
}

/// Import, then: `pop3 fetch` fetches nothing; one new message on the server; `pop3 fetch`
/// delivers exactly that one into `dest` (the peer's own delivery target).
fn round_trip(dc: &Dovecot, env: &TestEnv, import: &[&str], dest: &Path, delivered: usize) {
    let out = env.cmd().arg("import").args(import).output().unwrap();
    assert!(
        out.status.success(),
        "pop3 import {import:?}: {}\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{delivered} seen UIDLs imported")),
        "{stderr}"
    );
    // The password never shows in the diff; the config holding it is 0600.
    assert!(!text(&out.stdout).contains(PASS), "{}", text(&out.stdout));
    let mode = fs::metadata(env.config_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let check = env.cmd().args(["accounts", "--check"]).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));

    let before = count_files(dest);
    assert_eq!(before, delivered, "the peer's own delivery");
    let fetch = env.cmd().arg("fetch").output().unwrap();
    assert!(fetch.status.success(), "fetch: {}", text(&fetch.stderr));
    assert_eq!(count_files(dest), before, "nothing fetched twice");

    dc.add_messages(USER, [message(99).as_slice()]);
    let fetch = env.cmd().arg("fetch").output().unwrap();
    assert!(fetch.status.success(), "fetch: {}", text(&fetch.stderr));
    assert_eq!(count_files(dest), before + 1, "exactly the new message");
    let all = all_text(dest);
    assert_eq!(all.matches("Subject: import test 99").count(), 1, "{all}");
    let fetch = env.cmd().arg("fetch").output().unwrap();
    assert!(fetch.status.success());
    assert_eq!(count_files(dest), before + 1);
}

/// Dovecot with three messages for USER, or `None` when it is not installed.
fn dovecot_with_mail() -> Option<Dovecot> {
    let dc = Dovecot::start(&[(USER, PASS)])?;
    let msgs: Vec<Vec<u8>> = (1..=3).map(message).collect();
    dc.add_messages(USER, msgs.iter().map(Vec::as_slice));
    Some(dc)
}

#[test]
fn fetchmail_round_trip_fetches_nothing_twice() {
    let Some(fetchmail) = peer("fetchmail") else {
        return;
    };
    let Some(dc) = dovecot_with_mail() else {
        return;
    };
    let work = Work::new();
    let out = work.mkdirs("out");
    // fetchmail does not match IP SANs: it checks the name given as sslcommonname (pop3
    // checks 127.0.0.1 itself, so the import leaves that option out and says so).
    let rc = work.write(
        "fetchmailrc",
        &format!(
            "set no bouncemail\n\
             poll 127.0.0.1 with protocol pop3 and port {port}:\n\
             \x20 user \"{USER}\" there with password \"{PASS}\" is nobody here;\n\
             \x20 options ssl sslcertck sslcertfile \"{ca}\" sslcommonname localhost\n\
             \x20 keep mda \"/bin/sh -c 'cat > {out}/$$.msg'\"\n",
            port = dc.pop3s_port,
            ca = dc.ca_file.display(),
            out = out.display(),
        ),
    );
    let fm = fetchmail.to_str().unwrap().to_owned();
    let pid = work.path().join("fetchmail.pid");
    work.run(
        &[
            &fm,
            "-f",
            rc.to_str().unwrap(),
            "--nosyslog",
            "--pidfile",
            pid.to_str().unwrap(),
        ],
        &[("FETCHMAILHOME", work.path())],
    );
    let ids = work.path().join(".fetchids");
    let ids_text = fs::read_to_string(&ids).expect("fetchmail wrote its idfile");
    assert_eq!(ids_text.lines().count(), 3, "{ids_text}");
    let env = TestEnv::new();
    round_trip(
        &dc,
        &env,
        &[
            "fetchmail",
            rc.to_str().unwrap(),
            "--state",
            ids.to_str().unwrap(),
            "--no-keyring",
        ],
        &out,
        3,
    );
}

#[test]
fn mpop_round_trip_fetches_nothing_twice() {
    let Some(mpop) = peer("mpop") else {
        return;
    };
    let Some(dc) = dovecot_with_mail() else {
        return;
    };
    let work = Work::new();
    let maildir = work.maildir();
    // `defaults` carries the TLS settings and keep into the account.
    let rc = work.write(
        "mpoprc",
        &format!(
            "defaults\n\
             tls on\n\
             tls_starttls off\n\
             tls_trust_file {ca}\n\
             keep on\n\
             \n\
             account dove\n\
             host 127.0.0.1\n\
             port {port}\n\
             user {USER}\n\
             password {PASS}\n\
             uidls_file {work}/uidls/%U_at_%H\n\
             delivery maildir {maildir}\n",
            ca = dc.ca_file.display(),
            port = dc.pop3s_port,
            work = work.path().display(),
            maildir = maildir.display(),
        ),
    );
    work.mkdirs("uidls");
    let m = mpop.to_str().unwrap().to_owned();
    work.run(&[&m, "-C", rc.to_str().unwrap(), "-q", "dove"], &[]);
    let uidls = work.path().join(format!("uidls/{USER}_at_127.0.0.1"));
    assert!(
        fs::read_to_string(&uidls)
            .expect("mpop wrote its UIDLs file")
            .contains(&format!(" 3 127.0.0.1 {USER}"))
    );
    let env = TestEnv::new();
    round_trip(
        &dc,
        &env,
        &["mpop", rc.to_str().unwrap(), "--no-keyring"],
        &maildir,
        3,
    );
}

#[test]
fn getmail_round_trip_keeps_first_seen_times() {
    let Some(getmail) = peer("getmail") else {
        return;
    };
    let Some(dc) = dovecot_with_mail() else {
        return;
    };
    let work = Work::new();
    let maildir = work.maildir();
    let rc = work.write(
        "getmailrc",
        &format!(
            "[retriever]\n\
             type = SimplePOP3SSLRetriever\n\
             server = 127.0.0.1\n\
             port = {port}\n\
             username = {USER}\n\
             password = {PASS}\n\
             ca_certs = {ca}\n\
             \n\
             [destination]\n\
             type = Maildir\n\
             path = {maildir}/\n\
             \n\
             [options]\n\
             read_all = false\n\
             delete = false\n\
             verbose = 0\n",
            port = dc.pop3s_port,
            ca = dc.ca_file.display(),
            maildir = maildir.display(),
        ),
    );
    let g = getmail.to_str().unwrap().to_owned();
    let dir = work.path().to_str().unwrap().to_owned();
    work.run(
        &[&g, "--getmaildir", &dir, "--rcfile", rc.to_str().unwrap()],
        &[],
    );
    let oldmail = work
        .path()
        .join(format!("oldmail-127.0.0.1-{}-{USER}", dc.pop3s_port));
    let state = fs::read(&oldmail).expect("getmail wrote its oldmail file");
    // getmail's own first-seen times must survive the import.
    let times: Vec<String> = state
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| text(&l[l.iter().position(|&b| b == 0).unwrap() + 1..]))
        .collect();
    assert_eq!(times.len(), 3);
    // Make them recognisably old: a week ago, as if getmail had fetched them then.
    let week_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 7 * 86400;
    let mut rewritten = Vec::new();
    for l in state.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let nul = l.iter().position(|&b| b == 0).unwrap();
        rewritten.extend_from_slice(&l[..=nul]);
        rewritten.extend_from_slice(format!("{week_ago}\n").as_bytes());
    }
    fs::write(&oldmail, rewritten).unwrap();
    let env = TestEnv::new();
    round_trip(
        &dc,
        &env,
        &["getmail", rc.to_str().unwrap(), "--no-keyring"],
        &maildir,
        3,
    );
    let list = env
        .cmd()
        .args(["state", "getmail", "list"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    let old = jiff::Timestamp::from_second(week_ago as i64)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(listed.matches(&old).count(), 3, "{listed}");
}

#[test]
fn mark_all_seen_skips_the_mail_on_the_server() {
    let Some(dc) = dovecot_with_mail() else {
        return;
    };
    let env = TestEnv::new();
    env.write_config(&format!(
        "[accounts.dove]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
         password = \"{PASS}\"\ntls_ca_file = '{}'\ndeliver.maildir = '{}'\n",
        dc.pop3s_port,
        dc.ca_file.display(),
        env.maildir.display()
    ));
    let out = env
        .cmd()
        .args(["state", "dove", "mark-all-seen"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("3 messages"),
        "{}",
        text(&out.stderr)
    );
    let fetch = env.cmd().arg("fetch").output().unwrap();
    assert!(fetch.status.success(), "{}", text(&fetch.stderr));
    assert!(env.new_files().is_empty(), "nothing was downloaded");
    dc.add_messages(USER, [message(7).as_slice()]);
    assert!(env.cmd().arg("fetch").output().unwrap().status.success());
    assert_eq!(env.new_files().len(), 1);
}

#[test]
fn state_export_import_and_forget_carry_the_state_to_another_machine() {
    let old = TestEnv::new();
    let account = "[accounts.w]\nhost = \"pop.example.com\"\nuser = \"alice\"\n\
                   deliver.maildir = \"~/Mail\"\n";
    old.write_config(account);
    fs::create_dir_all(old.state_dir()).unwrap();
    fs::write(
        old.state_dir().join("alice@pop.example.com_995.uidl"),
        "pop3-uidl 1\n100 a\n200 b%FFc\n",
    )
    .unwrap();
    let export = old.cmd().args(["state", "w", "export"]).output().unwrap();
    assert!(export.status.success(), "{}", text(&export.stderr));
    assert_eq!(text(&export.stdout), "pop3-uidl 1\n100 a\n200 b%FFc\n");

    let new = TestEnv::new();
    new.write_config(account);
    let file = new.write_file("seen.txt", &text(&export.stdout), 0o600);
    let import = new
        .cmd()
        .args(["state", "w", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", text(&import.stderr));
    let list = new.cmd().args(["state", "w", "list"]).output().unwrap();
    assert_eq!(
        text(&list.stdout),
        "1970-01-01T00:01:40Z  a\n1970-01-01T00:03:20Z  b%FFc\n"
    );
    let forget = new
        .cmd()
        .args(["state", "w", "forget", "b%FFc"])
        .output()
        .unwrap();
    assert!(forget.status.success(), "{}", text(&forget.stderr));
    let list = new.cmd().args(["state", "w", "list"]).output().unwrap();
    assert_eq!(text(&list.stdout), "1970-01-01T00:01:40Z  a\n");
    // Forgetting what is not there says so with exit 1.
    let again = new
        .cmd()
        .args(["state", "w", "forget", "zz"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    // A damaged export is refused with its line, and nothing changes.
    let bad = new.write_file("bad.txt", "pop3-uidl 1\n100 a\nnonsense\n", 0o600);
    let out = new
        .cmd()
        .args(["state", "w", "import"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("line 3"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn broken_or_foreign_rc_files_write_nothing_and_name_the_line() {
    let env = TestEnv::new();
    let cases: [(&str, &str, &str, &str); 5] = [
        // (program, file name, contents, expected "file:line")
        (
            "fetchmail",
            "fetchmailrc",
            "poll a.example\n  user x\n  frobnicate\n",
            ":3:",
        ),
        (
            "fetchmail",
            "mpoprc",
            "defaults\ntls on\naccount x\n",
            ":2:",
        ),
        (
            "mpop",
            "mpoprc",
            "account a\nhost h\nuser u\nkeep maybe\n",
            ":4:",
        ),
        (
            "mpop",
            "getmailrc",
            "[retriever]\ntype = SimplePOP3Retriever\n",
            ":1:",
        ),
        (
            "getmail",
            "fetchmailrc",
            "# fetchmail\npoll a.example user x\n",
            ":2:",
        ),
    ];
    for (program, name, contents, line) in cases {
        let file = env.write_file(name, contents, 0o600);
        let out = env
            .cmd()
            .args(["import", program])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{program} {name}: {stderr}");
        assert!(
            stderr.contains(&format!("{}{line}", file.display())),
            "{program} {name}: {stderr}"
        );
        assert!(!env.config_path().exists(), "nothing written: {stderr}");
    }
    // Binary data and a huge file.
    let bin = env.root().join("binary");
    fs::write(&bin, b"poll a\n\x00\x01\x02").unwrap();
    let out = env
        .cmd()
        .args(["import", "fetchmail"])
        .arg(&bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains(":2: a NUL byte"),
        "{}",
        text(&out.stderr)
    );
    let huge = env.root().join("huge");
    fs::write(&huge, vec![b'#'; 2 << 20]).unwrap();
    let out = env
        .cmd()
        .args(["import", "mpop"])
        .arg(&huge)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("huge:1:"),
        "{}",
        text(&out.stderr)
    );
    // A state file that is not one: nothing written either.
    let rc = env.write_file(
        "mpoprc2",
        "account a\nhost h.example\nuser u\ndelivery maildir ~/M\nuidls_file ~/uidls\n",
        0o600,
    );
    fs::write(env.home.join("uidls"), "u@h.example UID1\n").unwrap();
    let out = env
        .cmd()
        .args(["import", "mpop"])
        .arg(&rc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("uidls:1:"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env.config_path().exists());
    assert!(!env.state_dir().exists());
}

#[test]
fn dry_run_prints_and_appending_keeps_the_existing_config() {
    let env = TestEnv::new();
    let existing = "[accounts.a]\nhost = \"x.example\"\nuser = \"u\"\ndeliver.maildir = \"~/M\"\n";
    env.write_config(existing);
    // Several getmailrc files, one account each; the name `a` is taken already.
    let one = env.write_file(
        "getmailrc-a",
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = one.example\nusername = u1\n\
         password = p1\n[destination]\ntype = Mboxrd\npath = ~/mbox\n[options]\n\
         delete_after = 3\nmessage_log = ~/log\n",
        0o600,
    );
    let two = env.write_file(
        "getmailrc-b",
        "[retriever]\ntype = SimplePOP3Retriever\nserver = two.example\nusername = u2\n\
         password_command = (\"pass\", \"mail\")\n[destination]\ntype = Maildir\npath = ~/Mail/\n",
        0o600,
    );
    let dry = env
        .cmd()
        .args(["import", "getmail", "--dry-run"])
        .arg(&one)
        .arg(&two)
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let diff = text(&dry.stdout);
    assert!(
        diff.contains("+[accounts.a-2]") && diff.contains("+[accounts.b]"),
        "{diff}"
    );
    assert!(
        diff.contains("+password = \"***\"") && !diff.contains("p1"),
        "{diff}"
    );
    assert!(
        text(&dry.stderr).contains("message_log"),
        "{}",
        text(&dry.stderr)
    );
    assert_eq!(fs::read_to_string(env.config_path()).unwrap(), existing);

    let out = env
        .cmd()
        .args(["import", "getmail", "--no-keyring"])
        .arg(&one)
        .arg(&two)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = fs::read_to_string(env.config_path()).unwrap();
    assert!(config.starts_with(existing), "{config}");
    assert!(config.contains("delete_after = \"3d\""), "{config}");
    assert!(
        config.contains("password.command = \"pass mail\""),
        "{config}"
    );
    let accounts = env.cmd().args(["accounts", "--check"]).output().unwrap();
    assert!(accounts.status.success(), "{}", text(&accounts.stderr));
}

/// mpop's default is `tls off`; with `auth user` it sent the password in the clear. The
/// import carries that over as `allow_plaintext_password = true` (our config refuses USER
/// over tls = "none" otherwise, and the whole import stopped), warns first thing, and the
/// imported account then fetches from a plain POP3 server with USER/PASS.
#[test]
fn mpop_auth_user_without_tls_is_imported_with_a_warning_and_fetches() {
    use crate::support::server::{self, Message, TestServer};
    let pop = TestServer::builder()
        .messages([Message {
            uidl: "p1".into(),
            body: b"Subject: plain\r\n\r\nx\r\n".to_vec(),
        }])
        .start();
    let env = TestEnv::new();
    let maildir = env.root().join("Mail");
    let rc = env.write_file(
        "mpoprc",
        &format!(
            "account plain\nhost 127.0.0.1\nport {}\nuser {}\npassword {}\nauth user\n\
             keep on\ndelivery maildir {}\n",
            pop.port(),
            server::USER,
            server::PASSWORD,
            maildir.display()
        ),
        0o600,
    );
    let out = env
        .cmd()
        .args(["import", "mpop", "--no-keyring"])
        .arg(&rc)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let first = stderr
        .lines()
        .skip_while(|l| !l.starts_with("pop3: not carried over"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first.contains("[plain] WARNING: no TLS")
            && first.contains("sends its password unencrypted, as it did with mpop"),
        "{stderr}"
    );
    let config = fs::read_to_string(env.config_path()).unwrap();
    assert!(config.contains("tls = \"none\""), "{config}");
    assert!(
        config.contains("\nallow_plaintext_password = true\n"),
        "{config}"
    );
    assert!(config.contains("auth = \"user\""), "{config}");
    env.fetch_ok(&["-q"]);
    assert_eq!(fs::read_dir(maildir.join("new")).unwrap().count(), 1);
    assert!(pop.verbs().iter().any(|v| v == "PASS"), "{:?}", pop.verbs());
}
