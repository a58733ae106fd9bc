//! A private Dovecot POP3 server for the interop tests.
//!
//! `Dovecot::start(&[("alice", "secret")])` generates everything in a fresh temp dir (config,
//! base_dir, state_dir, log, a test CA + `localhost`/`127.0.0.1` certificate made with rcgen, a
//! passwd-file with `{PLAIN}` passwords, the Maildirs), runs `dovecot -F -c CONF` as a child on two
//! free loopback ports (plain/STLS and implicit TLS) and kills it on drop. Nothing touches the
//! system Dovecot or `/etc/dovecot`.
//!
//! When no `dovecot` binary is found, `start` prints a notice and returns `None` (the caller skips
//! the test), unless `POP3_REQUIRE_DOVECOT=1`, in which case it panics.
//!
//! Running as root: Dovecot's passwd-file refuses UID 0, so the mailboxes belong to the `mail`
//! account (files written here are chowned to it) and the temp dir is made 0755 so that the
//! unprivileged auth and mail processes can reach the passwd-file and the Maildirs.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

/// Base of the time stamp in the Maildir file names written by `add_messages`.
const T0: u64 = 1_704_067_200;

/// How the raw test client reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP on the POP3 port.
    Plain,
    /// Plain port, then STLS.
    Stls,
    /// Implicit TLS on the POP3S port.
    Tls,
}

/// One message as listed by the server: number, RFC 1939 size, UIDL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub num: usize,
    pub size: u64,
    pub uidl: String,
}

pub struct Dovecot {
    child: Option<Child>,
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// Plain POP3 port (USER/PASS, SASL, STLS).
    pub pop3_port: u16,
    /// Implicit TLS port.
    pub pop3s_port: u16,
    /// PEM file of the test CA that signed the server certificate.
    pub ca_file: PathBuf,
    ca_der: CertificateDer<'static>,
    users: Vec<(String, String)>,
    /// uid/gid that must own the mail files (when running as root).
    mail_owner: Option<(u32, u32)>,
    doveadm: PathBuf,
    seq: AtomicUsize,
}

/// Look for a program in PATH and the usual sbin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/local/sbin",
                "/sbin",
                "/usr/bin",
                "/usr/local/bin",
            ]
            .iter()
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether Dovecot's `lmtp` helper is installed (Debian: dovecot-lmtpd).
fn lmtpd_installed() -> bool {
    [
        "/usr/lib/dovecot",
        "/usr/libexec/dovecot",
        "/usr/local/libexec/dovecot",
        "/usr/local/lib/dovecot",
    ]
    .iter()
    .any(|d| Path::new(d).join("lmtp").exists())
}

/// False when Dovecot's helper directory is found but holds no `pop3-login` (Debian:
/// dovecot-core without dovecot-pop3d).
fn pop3d_installed() -> bool {
    let dirs = [
        "/usr/lib/dovecot",
        "/usr/libexec/dovecot",
        "/usr/local/libexec/dovecot",
        "/usr/local/lib/dovecot",
    ];
    match dirs.iter().map(Path::new).find(|d| d.join("auth").exists()) {
        Some(dir) => dir.join("pop3-login").exists(),
        None => true, // unusual layout: let Dovecot itself tell
    }
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("run `id`");
    assert!(out.status.success(), "id {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Two distinct free ports on 127.0.0.1 (both held while picking, then released).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn write_mode(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// RFC 1939 size of stored bytes: every bare LF counts as CRLF.
pub fn virtual_size(raw: &[u8]) -> u64 {
    let bare_lf = raw
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
        .count();
    (raw.len() + bare_lf) as u64
}

struct Certs {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_pem: String,
    server_key_pem: String,
}

fn make_certs() -> Certs {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "pop3 interop test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);

    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    Certs {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
    }
}

impl Dovecot {
    /// Start a private Dovecot with these `(user, password)` accounts, or `None` (after a notice
    /// on stderr) when Dovecot is not installed and `POP3_REQUIRE_DOVECOT` is not `1`.
    pub fn start(users: &[(&str, &str)]) -> Option<Dovecot> {
        Dovecot::start_inner(users, false, "")
    }

    /// [`Dovecot::start`] with `extra` appended to the generated config (a later setting
    /// overrides an earlier one; `@TOP@` is replaced as in the config itself).
    pub fn start_with(users: &[(&str, &str)], extra: &str) -> Option<Dovecot> {
        Dovecot::start_inner(users, false, extra)
    }

    /// Like [`Dovecot::start`], with an LMTP listener too ([`Dovecot::lmtp_socket`]): it
    /// delivers into the same Maildirs, with the quota plugin on (a user named `full` gets
    /// a quota of one byte, answered with 4xx) and Dovecot adding no header of its own
    /// beyond `Return-Path:`. `None` (after a notice) when `dovecot-lmtpd` is missing,
    /// unless `POP3_REQUIRE_DOVECOT=1`.
    pub fn start_lmtp(users: &[(&str, &str)]) -> Option<Dovecot> {
        if !lmtpd_installed() {
            if std::env::var("POP3_REQUIRE_DOVECOT").is_ok_and(|v| v == "1") {
                panic!(
                    "POP3_REQUIRE_DOVECOT=1 but Dovecot's LMTP server is not installed \
                     (apt-get install dovecot-lmtpd)"
                );
            }
            eprintln!(
                "NOTICE: Dovecot LMTP not installed (dovecot-lmtpd): skipping this test; set \
                 POP3_REQUIRE_DOVECOT=1 to make that an error"
            );
            return None;
        }
        Dovecot::start_inner(users, true, "")
    }

    /// The LMTP socket of an instance from [`Dovecot::start_lmtp`].
    pub fn lmtp_socket(&self) -> PathBuf {
        self.dir().join("base/pop3-lmtp")
    }

    fn start_inner(users: &[(&str, &str)], lmtp: bool, extra: &str) -> Option<Dovecot> {
        let required = std::env::var("POP3_REQUIRE_DOVECOT").is_ok_and(|v| v == "1");
        let tools = (find_tool("dovecot"), find_tool("doveadm"));
        let (dovecot, doveadm) = match tools {
            (Some(d), Some(a)) if pop3d_installed() => (d, a),
            _ => {
                if required {
                    panic!(
                        "POP3_REQUIRE_DOVECOT=1 but Dovecot's POP3 server was not found: need the \
                         `dovecot` and `doveadm` binaries and pop3-login \
                         (apt-get install dovecot-core dovecot-pop3d)"
                    );
                }
                eprintln!(
                    "NOTICE: Dovecot POP3 not installed (dovecot-core + dovecot-pop3d): skipping \
                     this interop test; set POP3_REQUIRE_DOVECOT=1 to make that an error"
                );
                return None;
            }
        };
        let root = id(&["-u"]) == "0";
        // /tmp rather than $TMPDIR: the unprivileged Dovecot processes must be able to traverse
        // every parent directory.
        let mut builder = tempfile::Builder::new();
        builder.prefix("pop3-dovecot-");
        let dir = if Path::new("/tmp").is_dir() {
            builder.tempdir_in("/tmp")
        } else {
            builder.tempdir()
        }
        .expect("create temp dir");
        let top = dir.path().to_path_buf();
        fs::set_permissions(&top, fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["etc", "tls", "log", "base", "state", "mail"] {
            fs::create_dir(top.join(d)).unwrap();
            fs::set_permissions(top.join(d), fs::Permissions::from_mode(0o755)).unwrap();
        }

        let (uid, gid, internal_user, internal_group, login_user, mail_owner);
        if root {
            let has_user = |u: &str| {
                Command::new("id")
                    .arg(u)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let mail_user = if has_user("mail") { "mail" } else { "nobody" };
            uid = id(&["-u", mail_user]).parse::<u32>().unwrap();
            gid = id(&["-g", mail_user]).parse::<u32>().unwrap();
            internal_user = if has_user("dovecot") {
                "dovecot".to_string()
            } else {
                "nobody".to_string()
            };
            internal_group = id(&["-gn", &internal_user]);
            login_user = if has_user("dovenull") {
                "dovenull".to_string()
            } else {
                "nobody".to_string()
            };
            mail_owner = Some((uid, gid));
        } else {
            uid = id(&["-u"]).parse::<u32>().unwrap();
            gid = id(&["-g"]).parse::<u32>().unwrap();
            internal_user = id(&["-un"]);
            internal_group = id(&["-gn"]);
            login_user = internal_user.clone();
            mail_owner = None;
        }

        let certs = make_certs();
        let ca_file = top.join("tls/ca.pem");
        write_mode(&ca_file, certs.ca_pem.as_bytes(), 0o644);
        write_mode(
            &top.join("tls/server.pem"),
            certs.server_pem.as_bytes(),
            0o644,
        );
        write_mode(
            &top.join("tls/server.key"),
            certs.server_key_pem.as_bytes(),
            0o600,
        );

        let mut passwd = String::new();
        for (user, pass) in users {
            let home = top.join("mail").join(user);
            let extra = if *user == "full" {
                "userdb_quota_rule=*:storage=1B"
            } else {
                ""
            };
            passwd.push_str(&format!(
                "{user}:{{PLAIN}}{pass}:{uid}:{gid}::{}::{extra}\n",
                home.display()
            ));
        }
        write_mode(&top.join("etc/passwd"), passwd.as_bytes(), 0o644);

        let mut dc = Dovecot {
            child: None,
            conf: top.join("etc/dovecot.conf"),
            dir,
            pop3_port: 0,
            pop3s_port: 0,
            ca_file,
            ca_der: certs.ca_der,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            mail_owner,
            doveadm,
            seq: AtomicUsize::new(0),
        };
        for (user, _) in users {
            dc.make_maildir(user);
        }

        let chroot_off = if root {
            ""
        } else {
            // Unprivileged Dovecot cannot chroot its login and anvil processes.
            "service anvil {\n  chroot =\n}\nservice pop3-login {\n  chroot =\n}\n"
        };
        let mut last_log = String::new();
        for attempt in 0..5 {
            let (pop3, pop3s) = free_ports();
            let conf = CONFIG
                .replace("@TOP@", &top.display().to_string())
                .replace("@POP3_PORT@", &pop3.to_string())
                .replace("@POP3S_PORT@", &pop3s.to_string())
                .replace("@FIRST_VALID_UID@", &uid.to_string())
                .replace("@INTERNAL_USER@", &internal_user)
                .replace("@INTERNAL_GROUP@", &internal_group)
                .replace("@LOGIN_USER@", &login_user)
                + chroot_off
                + if lmtp { LMTP_CONFIG } else { "" }
                + &extra.replace("@TOP@", &top.display().to_string());
            let conf = if lmtp {
                conf.replace("protocols = pop3\n", "protocols = pop3 lmtp\n")
            } else {
                conf
            };
            write_mode(&dc.conf, conf.as_bytes(), 0o644);
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(top.join("log/dovecot.stdout"))
                .unwrap();
            dc.child = Some(
                Command::new(&dovecot)
                    .arg("-F")
                    .arg("-c")
                    .arg(&dc.conf)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .unwrap_or_else(|e| panic!("start {}: {e}", dovecot.display())),
            );
            dc.pop3_port = pop3;
            dc.pop3s_port = pop3s;
            match dc.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return Some(dc),
                Err(why) => {
                    dc.stop();
                    last_log = format!("attempt {attempt}: {why}\n{}", dc.log());
                    let collision = last_log.contains("Address already in use");
                    if !collision {
                        break;
                    }
                }
            }
        }
        panic!("private Dovecot did not start:\n{last_log}");
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Err(format!("dovecot exited early: {status}"));
            }
            if port_open(self.pop3_port) && port_open(self.pop3s_port) {
                // Something listens; make sure it is our Dovecot answering.
                let mut c =
                    RawPop3::connect_plain(self.pop3_port).map_err(|e| format!("connect: {e}"))?;
                let mut greeting = String::new();
                c.r.read_line(&mut greeting)
                    .map_err(|e| format!("reading the greeting: {e}"))?;
                if !greeting.starts_with("+OK") {
                    return Err(format!("unexpected greeting {greeting:?}"));
                }
                if let Some(status) = self.exited() {
                    return Err(format!("dovecot exited early: {status}"));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("ports not open after {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    fn stop(&mut self) {
        // SIGKILL on the master (by its pid, which we own): the other Dovecot processes watch the
        // master through a pipe and exit on their own.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The temp dir that holds everything of this instance.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log (plus Dovecot's own stdout/stderr), for assertion messages.
    pub fn log(&self) -> String {
        let mut s = String::new();
        for f in ["log/dovecot.log", "log/dovecot.stdout"] {
            if let Ok(t) = fs::read_to_string(self.dir().join(f)) {
                s.push_str(&format!("--- {f} ---\n{t}"));
            }
        }
        s
    }

    fn password(&self, user: &str) -> &str {
        &self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .unwrap_or_else(|| panic!("no user {user}"))
            .1
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.dir().join("mail").join(user)
    }

    /// The server-side Maildir of `user`.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.home(user).join("Maildir")
    }

    fn chown(&self, path: &Path) {
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }

    fn make_maildir(&self, user: &str) {
        let home = self.home(user);
        for d in [
            home.clone(),
            home.join("Maildir"),
            home.join("Maildir/cur"),
            home.join("Maildir/new"),
            home.join("Maildir/tmp"),
        ] {
            fs::create_dir_all(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
            self.chown(&d);
        }
    }

    /// Write messages (stored bytes, as `corpus::Message::bytes`) straight into `user`'s
    /// `Maildir/cur` with names `<time>.M<seq>P<pid>.pop3test,S=<size>,W=<vsize>:2,`, then let
    /// Dovecot index the mailbox. Returns the UIDLs the server will report (the base names, as
    /// `pop3_uidl_format = %f`), in order.
    pub fn add_messages<'a>(
        &self,
        user: &str,
        messages: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<String> {
        let maildir = self.maildir(user);
        let mut uidls = Vec::new();
        for raw in messages {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
            let base = format!(
                "{}.M{seq:06}P{}.pop3test,S={},W={}",
                T0 + seq as u64,
                std::process::id(),
                raw.len(),
                virtual_size(raw)
            );
            let tmp = maildir.join("tmp").join(&base);
            write_mode(&tmp, raw, 0o600);
            self.chown(&tmp);
            fs::rename(&tmp, maildir.join("cur").join(format!("{base}:2,"))).unwrap();
            uidls.push(base);
        }
        self.index(user);
        uidls
    }

    /// `doveadm mailbox status`: makes Dovecot sync and index the Maildir now.
    pub fn index(&self, user: &str) -> String {
        let out = Command::new(&self.doveadm)
            .arg("-c")
            .arg(&self.conf)
            .args(["mailbox", "status", "-u", user, "messages", "INBOX"])
            .output()
            .expect("run doveadm");
        assert!(
            out.status.success(),
            "doveadm mailbox status failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Message files in the server Maildir (`cur/` + `new/`).
    pub fn file_count(&self, user: &str) -> usize {
        ["cur", "new"]
            .iter()
            .map(|d| fs::read_dir(self.maildir(user).join(d)).unwrap().count())
            .sum()
    }

    /// A raw POP3 session, logged in as `user`.
    pub fn login(&self, user: &str, transport: Transport) -> RawPop3 {
        let mut c = self.connect(transport);
        c.login(user, self.password(user));
        c
    }

    /// A raw POP3 connection after the greeting (and after STLS for `Transport::Stls`).
    pub fn connect(&self, transport: Transport) -> RawPop3 {
        let port = match transport {
            Transport::Plain | Transport::Stls => self.pop3_port,
            Transport::Tls => self.pop3s_port,
        };
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to dovecot");
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        match transport {
            Transport::Plain => {
                let mut c = RawPop3::new(Box::new(tcp));
                c.greeting = c.expect_ok_line();
                c
            }
            Transport::Tls => {
                let mut c = RawPop3::new(Box::new(self.tls(tcp)));
                c.greeting = c.expect_ok_line();
                c
            }
            Transport::Stls => {
                let mut plain = BufReader::new(tcp);
                let mut line = String::new();
                plain.read_line(&mut line).unwrap();
                assert!(line.starts_with("+OK"), "greeting {line:?}");
                plain.get_mut().write_all(b"STLS\r\n").unwrap();
                line.clear();
                plain.read_line(&mut line).unwrap();
                assert!(line.starts_with("+OK"), "STLS answered {line:?}");
                assert!(plain.buffer().is_empty(), "bytes after STLS +OK");
                let tcp = plain.into_inner();
                RawPop3::new(Box::new(self.tls(tcp)))
            }
        }
    }

    /// rustls client over `tcp`, trusting only the test CA, verifying `127.0.0.1`.
    pub fn tls(&self, tcp: TcpStream) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    }

    /// STAT over a plain-TCP session: (messages, octets) left on the server.
    pub fn stat(&self, user: &str) -> (usize, u64) {
        let mut c = self.login(user, Transport::Plain);
        let st = c.stat();
        c.quit();
        st
    }

    /// LIST + UIDL over a plain-TCP session.
    pub fn listing(&self, user: &str) -> Vec<Listed> {
        let mut c = self.login(user, Transport::Plain);
        let l = c.listing();
        c.quit();
        l
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- private Dovecot log tail ({}) ---",
                self.dir().display()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A minimal POP3 client for checking the server side (no line length limit).
pub struct RawPop3 {
    r: BufReader<Box<dyn Stream>>,
    /// The server greeting (empty after STLS).
    pub greeting: String,
}

impl RawPop3 {
    fn new(s: Box<dyn Stream>) -> RawPop3 {
        RawPop3 {
            r: BufReader::with_capacity(64 * 1024, s),
            greeting: String::new(),
        }
    }

    fn connect_plain(port: u16) -> std::io::Result<RawPop3> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(RawPop3::new(Box::new(tcp)))
    }

    /// One line without its CRLF (panics on EOF or timeout).
    pub fn line(&mut self) -> String {
        String::from_utf8_lossy(&self.raw_line()).into_owned()
    }

    fn raw_line(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let n = self
            .r
            .read_until(b'\n', &mut buf)
            .expect("read from dovecot");
        assert!(n > 0, "dovecot closed the connection");
        if buf.ends_with(b"\n") {
            buf.pop();
        }
        if buf.ends_with(b"\r") {
            buf.pop();
        }
        buf
    }

    fn expect_ok_line(&mut self) -> String {
        let l = self.line();
        assert!(l.starts_with("+OK"), "expected +OK, got {l:?}");
        l
    }

    pub fn send(&mut self, cmd: &str) {
        let w = self.r.get_mut();
        w.write_all(cmd.as_bytes()).unwrap();
        w.write_all(b"\r\n").unwrap();
        w.flush().unwrap();
    }

    /// Send a command and return its status line, which must be +OK.
    pub fn cmd(&mut self, cmd: &str) -> String {
        self.send(cmd);
        let l = self.line();
        assert!(l.starts_with("+OK"), "{cmd:?} answered {l:?}");
        l
    }

    /// The body of a multi-line response, dot-unstuffed, each line with CRLF.
    pub fn multiline(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let l = self.raw_line();
            if l == b"." {
                return out;
            }
            let l = l.strip_prefix(b".").unwrap_or(&l);
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
    }

    pub fn login(&mut self, user: &str, pass: &str) {
        self.cmd(&format!("USER {user}"));
        self.cmd(&format!("PASS {pass}"));
    }

    pub fn capa(&mut self) -> Vec<String> {
        self.cmd("CAPA");
        String::from_utf8(self.multiline())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn stat(&mut self) -> (usize, u64) {
        let l = self.cmd("STAT");
        let mut it = l.split_whitespace().skip(1);
        let n = it.next().unwrap().parse().unwrap();
        let size = it.next().unwrap().parse().unwrap();
        (n, size)
    }

    pub fn listing(&mut self) -> Vec<Listed> {
        self.cmd("LIST");
        let sizes = String::from_utf8(self.multiline()).unwrap();
        self.cmd("UIDL");
        let uidls = String::from_utf8(self.multiline()).unwrap();
        sizes
            .lines()
            .zip(uidls.lines())
            .map(|(s, u)| {
                let (n, size) = s.split_once(' ').unwrap();
                let (n2, uidl) = u.split_once(' ').unwrap();
                assert_eq!(n, n2);
                Listed {
                    num: n.parse().unwrap(),
                    size: size.parse().unwrap(),
                    uidl: uidl.to_string(),
                }
            })
            .collect()
    }

    /// The message as served (CRLF line endings, dot-unstuffed).
    pub fn retr(&mut self, n: usize) -> Vec<u8> {
        self.cmd(&format!("RETR {n}"));
        self.multiline()
    }

    pub fn quit(mut self) {
        self.cmd("QUIT");
    }
}

const CONFIG: &str = r#"# Generated by tests/support/dovecot.rs for one test run; never uses /etc/dovecot.
protocols = pop3
listen = 127.0.0.1
instance_name = pop3test-@POP3_PORT@
base_dir = @TOP@/base
state_dir = @TOP@/state
log_path = @TOP@/log/dovecot.log
info_log_path = @TOP@/log/dovecot.log

default_internal_user = @INTERNAL_USER@
default_internal_group = @INTERNAL_GROUP@
default_login_user = @LOGIN_USER@
first_valid_uid = @FIRST_VALID_UID@
first_valid_gid = 1
mail_location = maildir:@TOP@/mail/%u/Maildir

ssl = yes
ssl_cert = <@TOP@/tls/server.pem
ssl_key = <@TOP@/tls/server.key
ssl_min_protocol = TLSv1.2

disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256 apop
auth_cache_size = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u @TOP@/etc/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u @TOP@/etc/passwd
}

pop3_uidl_format = %f
pop3_no_flag_updates = yes
pop3_fast_size_lookups = no
mail_max_userip_connections = 64

service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = @POP3_PORT@
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = @POP3S_PORT@
    ssl = yes
  }
}
"#;

/// Appended for [`Dovecot::start_lmtp`]: a Unix-socket LMTP listener delivering into the same
/// Maildirs, the quota plugin (over quota is 4xx, `quota_full_tempfail`), and no
/// Delivered-To or Received header from Dovecot, so that the test can compare bytes.
const LMTP_CONFIG: &str = r#"
mail_plugins = $mail_plugins quota
plugin {
  quota = maildir:User quota
}
quota_full_tempfail = yes
lmtp_add_received_header = no
lmtp_hdr_delivery_address = none
service lmtp {
  unix_listener pop3-lmtp {
    mode = 0666
  }
}
"#;
