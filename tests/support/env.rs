//! A test's private world: a temp HOME with XDG config and state dirs, a Maildir path, a
//! config writer, and a `pop3` command that sees only those (no POP3_* or XDG_* variables
//! from the developer's shell, no RUST_LOG).
//!
//! Also the helpers that turn a delivered message back into comparable bytes: strip the
//! `Received:` header the client prepends (folded or not), and the form an original message
//! takes after delivery (LF line ends, a final LF). Reading mbox files and tallying
//! deliveries is `mailbox.rs`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::mailbox::list_files;

/// How long any single `pop3` run may take before the test fails instead of hanging.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// A temp HOME, XDG dirs and a Maildir location for one test; all removed on drop.
pub struct TestEnv {
    /// `$HOME`.
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`.
    pub config_home: PathBuf,
    /// `$XDG_STATE_HOME`.
    pub state_home: PathBuf,
    /// Where configs deliver to. Not created: the client creates cur/new/tmp.
    pub maildir: PathBuf,
    root: TempDir,
}

impl TestEnv {
    /// Make the directories (HOME, XDG_CONFIG_HOME, XDG_STATE_HOME; not the Maildir).
    pub fn new() -> TestEnv {
        let root = tempfile::Builder::new()
            .prefix("pop3-e2e-")
            .tempdir()
            .expect("temp dir");
        let home = root.path().join("home");
        let config_home = home.join(".config");
        let state_home = home.join(".local/state");
        for dir in [&home, &config_home, &state_home] {
            fs::create_dir_all(dir).expect("create test dir");
        }
        let maildir = home.join("Mail/inbox");
        TestEnv {
            home,
            config_home,
            state_home,
            maildir,
            root,
        }
    }

    /// The temp root (HOME is `root/home`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The default config file: `$XDG_CONFIG_HOME/pop3/config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.config_home.join("pop3/config.toml")
    }

    /// Where the client keeps its state: `$XDG_STATE_HOME/pop3`.
    pub fn state_dir(&self) -> PathBuf {
        self.state_home.join("pop3")
    }

    /// Write the default config file with mode 0600; returns its path.
    pub fn write_config(&self, toml: &str) -> PathBuf {
        let path = self.config_path();
        write_with_mode(&path, toml.as_bytes(), 0o600);
        path
    }

    /// Write a file under the temp root with the given mode; returns its path.
    pub fn write_file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.root().join(name);
        write_with_mode(&path, contents.as_bytes(), mode);
        path
    }

    /// A `[accounts.NAME]` table for a test server on 127.0.0.1: user `alice`, a literal
    /// password `secret`, the given TLS mode and CA file, a 5 s timeout, delivery to
    /// [`TestEnv::maildir`]. Lines appended after it belong to the same table.
    pub fn account_toml(&self, name: &str, port: u16, tls: &str, ca_file: Option<&Path>) -> String {
        let mut toml = format!(
            "[accounts.{name}]\n\
             host = \"127.0.0.1\"\n\
             port = {port}\n\
             user = \"{user}\"\n\
             password = \"{password}\"\n\
             tls = \"{tls}\"\n\
             timeout = \"5s\"\n\
             deliver.maildir = '{maildir}'\n",
            user = super::server::USER,
            password = super::server::PASSWORD,
            maildir = self.maildir.display(),
        );
        if let Some(ca) = ca_file {
            toml.push_str(&format!("tls_ca_file = '{}'\n", ca.display()));
        }
        toml
    }

    /// The `pop3` binary with this environment: HOME and XDG_* pointing into the temp dir,
    /// every POP3_* and XDG_* variable of the caller's environment removed, RUST_LOG
    /// removed, stdin an empty pipe (never a terminal), run from the temp root, killed after
    /// [`RUN_LIMIT`].
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.std_cmd());
        cmd.write_stdin("").timeout(RUN_LIMIT);
        cmd
    }

    /// Run `pop3 fetch ARGS...` and check that it exits with `code`; the failure message
    /// shows stderr. Returns stderr (lossy UTF-8) for further checks.
    pub fn fetch_code(&self, args: &[&str], code: i32) -> String {
        let out = self
            .cmd()
            .arg("fetch")
            .args(args)
            .output()
            .expect("run pop3");
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "pop3 fetch {args:?}: {stderr}"
        );
        stderr
    }

    /// [`TestEnv::fetch_code`] expecting success (exit 0).
    pub fn fetch_ok(&self, args: &[&str]) -> String {
        self.fetch_code(args, 0)
    }

    /// Run `pop3 fetch ARGS...` and expect exit 0 with nothing on stdout or stderr (a
    /// normal run prints nothing).
    pub fn fetch_quiet(&self, args: &[&str]) {
        self.cmd()
            .arg("fetch")
            .args(args)
            .assert()
            .code(0)
            .stdout("")
            .stderr("");
    }

    /// The same environment as [`TestEnv::cmd`] for a `pop3` that runs in the background
    /// (std's Command: spawn, then wait or kill). stdin is null, stdout and stderr piped.
    pub fn std_cmd(&self) -> std::process::Command {
        use std::process::Stdio;
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pop3"));
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("POP3_") || key_str.starts_with("XDG_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("RUST_LOG")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("XDG_STATE_HOME", &self.state_home)
            .current_dir(self.root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Files in the Maildir's `new/`, sorted by name (empty when it does not exist).
    pub fn new_files(&self) -> Vec<PathBuf> {
        list_files(&self.maildir.join("new"))
    }

    /// Files in the Maildir's `tmp/` (empty when it does not exist).
    pub fn tmp_files(&self) -> Vec<PathBuf> {
        list_files(&self.maildir.join("tmp"))
    }

    /// The messages in `new/` in file-name order, each as delivered (with `Received:`).
    pub fn delivered_raw(&self) -> Vec<Vec<u8>> {
        self.new_files()
            .iter()
            .map(|p| fs::read(p).expect("read delivered message"))
            .collect()
    }

    /// The messages in `new/`, sorted, each without the prepended `Received:` header
    /// (which must be there).
    pub fn delivered(&self) -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = self
            .delivered_raw()
            .iter()
            .map(|m| strip_received(m).to_vec())
            .collect();
        all.sort();
        all
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

fn write_with_mode(path: &Path, contents: &[u8], mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .expect("create file");
    file.write_all(contents).expect("write file");
    // The umask may have cleared bits of `mode`; set exactly what the test asked for.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The message without its first header when that is the `Received:` pop3 prepends,
/// including its continuation lines (RFC 5322 folding: lines starting with a space or a
/// TAB); `None` when the message does not start with `Received:`.
pub fn without_received(message: &[u8]) -> Option<&[u8]> {
    if !message.starts_with(b"Received:") {
        return None;
    }
    let mut rest = message;
    loop {
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => rest = &rest[end + 1..],
            None => return Some(&[]),
        }
        if !rest.starts_with(b" ") && !rest.starts_with(b"\t") {
            return Some(rest);
        }
    }
}

/// [`without_received`] for a message that must have the header: panics without it.
pub fn strip_received(message: &[u8]) -> &[u8] {
    without_received(message).unwrap_or_else(|| {
        panic!(
            "delivered message does not start with a Received: header: {:?}",
            String::from_utf8_lossy(&message[..message.len().min(200)])
        )
    })
}

/// CRLF becomes LF; lone CR and LF stay.
pub fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// What a message stored on the server looks like in the Maildir once the `Received:`
/// header is stripped: LF line ends, and a final LF (POP3 cannot carry a message without
/// one: RFC 1939 section 3 ends every body with CRLF "." CRLF).
pub fn delivered_form(original: &[u8]) -> Vec<u8> {
    let mut out = crlf_to_lf(original);
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// [`delivered_form`] of each message, sorted (compare with [`TestEnv::delivered`]).
pub fn delivered_forms<'a>(originals: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = originals.into_iter().map(delivered_form).collect();
    all.sort();
    all
}

/// Lossy UTF-8 of a command's stderr, for messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_received_removes_the_folded_header_only() {
        let message =
            b"Received: from 127.0.0.1 by pop3\n\tfor alice;\n  Sun, 1 Jan 2026\nFrom: a\n\nbody\n";
        assert_eq!(strip_received(message), b"From: a\n\nbody\n");
        assert_eq!(strip_received(b"Received: x\nA: b\n"), b"A: b\n");
        assert_eq!(strip_received(b"Received: x"), b"");
    }

    #[test]
    #[should_panic(expected = "Received")]
    fn strip_received_insists_on_the_header() {
        strip_received(b"From: a\n\nbody\n");
    }

    #[test]
    fn delivered_form_uses_lf_and_ends_with_one() {
        assert_eq!(delivered_form(b"a\r\nb\r\n"), b"a\nb\n");
        assert_eq!(delivered_form(b"a\r\nb"), b"a\nb\n");
        assert_eq!(delivered_form(b"a\rb\n"), b"a\rb\n");
    }

    #[test]
    fn test_env_writes_configs_with_the_requested_mode() {
        let env = TestEnv::new();
        let path = env.write_config("[defaults]\n");
        assert!(path.starts_with(&env.config_home));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let other = env.write_file("other.toml", "", 0o644);
        assert_eq!(
            fs::metadata(&other).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(env.new_files().is_empty() && env.tmp_files().is_empty());
        let toml = env.account_toml("t", 995, "implicit", Some(Path::new("/ca.pem")));
        assert!(toml.parse::<toml::Table>().is_ok(), "{toml}");
    }
}
