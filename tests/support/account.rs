//! A test account for the plain-TCP scripted server: its `[accounts.test]` TOML, where it
//! delivers ([`Target`]), and its UIDL state file. Tests that need TLS or another account
//! name use [`TestEnv::account_toml`](super::env::TestEnv::account_toml) instead.

use std::fs;
use std::path::PathBuf;

use super::env::TestEnv;
use super::mailbox::{list_files, parse_mbox};
use super::server::{PASSWORD, USER};

/// Where a test account delivers.
#[derive(Clone, Debug)]
pub enum Target {
    Maildir(PathBuf),
    Mbox(PathBuf),
    /// An MDA that writes each message as a new file in this directory.
    MdaDir(PathBuf),
}

impl Target {
    /// The `deliver.*` line of the account table.
    pub fn toml(&self) -> String {
        match self {
            Target::Maildir(dir) => format!("deliver.maildir = {}\n", toml_str(dir)),
            Target::Mbox(path) => format!("deliver.mbox = {}\n", toml_str(path)),
            Target::MdaDir(dir) => {
                // A new file per message, named after the time and the shell's pid.
                let script = "cat > \"$0/$(date +%s%N).$$\"";
                format!(
                    "deliver.mda = [\"sh\", \"-c\", {}, {}]\n",
                    toml_str(script),
                    toml_str(dir)
                )
            }
        }
    }

    /// Every message delivered so far, as delivered (the `Received:` header included).
    /// For an mbox: each message between separators, unquoted (mboxrd).
    pub fn delivered_raw(&self) -> Vec<Vec<u8>> {
        match self {
            Target::Maildir(dir) => {
                let mut files = list_files(&dir.join("new"));
                files.extend(list_files(&dir.join("cur")));
                files.iter().map(|p| fs::read(p).expect("read")).collect()
            }
            Target::Mbox(path) => match fs::read(path) {
                Ok(data) => parse_mbox(&data).into_iter().map(|m| m.body).collect(),
                Err(_) => Vec::new(),
            },
            Target::MdaDir(dir) => list_files(dir)
                .iter()
                .map(|p| fs::read(p).expect("read"))
                .collect(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Maildir(_) => "maildir",
            Target::Mbox(_) => "mbox",
            Target::MdaDir(_) => "mda",
        }
    }
}

/// A TOML string for a path or text.
pub fn toml_str(s: impl AsRef<std::ffi::OsStr>) -> String {
    toml::Value::String(s.as_ref().to_string_lossy().into_owned()).to_string()
}

/// An `[accounts.test]` table for a plain-TCP test server: USER/PASS allowed in clear, a
/// 5 s timeout, the given target and `extra` lines.
pub fn account(port: u16, target: &Target, extra: &str) -> String {
    format!(
        "[accounts.test]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         user = \"{USER}\"\n\
         password = \"{PASSWORD}\"\n\
         tls = \"none\"\n\
         allow_plaintext_password = true\n\
         timeout = \"5s\"\n\
         {}{extra}",
        target.toml()
    )
}

/// The account's state file (`<user>@<host>_<port>.uidl`).
pub fn state_file(env: &TestEnv, port: u16) -> PathBuf {
    env.state_dir()
        .join(format!("{USER}@127.0.0.1_{port}.uidl"))
}

/// Whether the state file text holds a seen record `<unix-seconds> <uid>` for `uid`
/// (DESIGN.md, State; other kinds of line may sit beside the records).
pub fn is_recorded(state: &str, uid: &str) -> bool {
    state.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() == 2 && fields[0].bytes().all(|b| b.is_ascii_digit()) && fields[1] == uid
    })
}
