//! mpop's `filter`: a command that decides from a message's header (`TOP n 0`) whether it
//! is fetched. The header is on its standard input; `POP3_ACCOUNT`, `POP3_UIDL`,
//! `POP3_SIZE` and `POP3_SENDER` are in its environment. Exit 0: fetch it; 1: delete it on
//! the server without fetching it; 2: leave it and skip it from now on; anything else (a
//! signal, a timeout) is an error for that message, which then stays on the server, unfetched
//! this time, and is judged again next run.
//!
//! The command starts through [`crate::secret::child`] (no password in its environment, a
//! process group of its own that a timeout ends), like the MDA; the header reaches it from
//! an unlinked temporary file, so a filter that does not read it cannot block us.

use std::io::{Seek, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::config::CommandLine;
use crate::deliver::envelope::HeaderSniffer;
use crate::proto::Uid;
use crate::secret::child::{self, Group};

/// The most header bytes a filter gets (the rest of an absurdly long header is cut).
pub const MAX_FILTER_HEADER: usize = 256 * 1024;

/// The filter command and how long it may run per message.
#[derive(Debug, Clone)]
pub struct Filter {
    pub command: CommandLine,
    pub timeout: Duration,
}

/// What the filter decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: fetch it.
    Fetch,
    /// Exit 1: delete it on the server without fetching it.
    Delete,
    /// Exit 2: leave it on the server and skip it from now on.
    Skip,
    /// Anything else: an error for this message (why, for the user).
    Failed(String),
}

impl Filter {
    /// Run the filter on `header` for the message `uid` of `size` octets.
    pub fn judge(&self, account: &str, uid: &Uid, size: u64, header: &[u8]) -> Verdict {
        match self.run(account, uid, size, header) {
            Ok(v) => v,
            Err(e) => Verdict::Failed(e),
        }
    }

    fn run(
        &self,
        account: &str,
        uid: &Uid,
        size: u64,
        header: &[u8],
    ) -> std::result::Result<Verdict, String> {
        let mut input =
            tempfile::tempfile().map_err(|e| format!("cannot spool the header: {e}"))?;
        input
            .write_all(header)
            .and_then(|()| input.rewind())
            .map_err(|e| format!("cannot spool the header: {e}"))?;
        let mut sniffer = HeaderSniffer::new();
        sniffer.feed(header);
        let sender: String = sniffer
            .sender()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let mut command = match &self.command {
            CommandLine::Argv(argv) => {
                let (program, args) = argv.split_first().ok_or("the filter command is empty")?;
                let mut c = child::command(program, Group::Own);
                c.args(args);
                c
            }
            CommandLine::Shell(line) => {
                let mut c = child::command("/bin/sh", Group::Own);
                c.arg("-c").arg(line);
                c
            }
        };
        command
            .stdin(Stdio::from(input))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .env("POP3_ACCOUNT", account)
            .env("POP3_UIDL", uid.to_string())
            .env("POP3_SIZE", size.to_string())
            .env("POP3_SENDER", sender);
        let mut running = command
            .spawn()
            .map_err(|e| format!("cannot run the filter `{}`: {e}", self.command.shown()))?;
        let status = running
            .wait(self.timeout)
            .map_err(|e| format!("cannot wait for the filter: {e}"))?;
        Ok(match status.and_then(|s| s.code()) {
            Some(0) => Verdict::Fetch,
            Some(1) => Verdict::Delete,
            Some(2) => Verdict::Skip,
            _ => match status {
                None => Verdict::Failed(format!(
                    "the filter did not exit within {} s",
                    self.timeout.as_secs()
                )),
                Some(s) => Verdict::Failed(format!("the filter ended with {s}")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(line: &str) -> Filter {
        Filter {
            command: CommandLine::Shell(line.to_owned()),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn exit_codes_are_verdicts_and_the_header_and_environment_arrive() {
        let uid = Uid::new(b"u-1").unwrap();
        let header = b"Return-Path: <bob@example.org>\nSubject: spam\n\n";
        let f = shell(
            "grep -q '^Subject: spam' && [ \"$POP3_UIDL|$POP3_SIZE|$POP3_SENDER|$POP3_ACCOUNT\" \
             = 'u-1|42|bob@example.org|acct' ] && exit 1; exit 0",
        );
        assert_eq!(f.judge("acct", &uid, 42, header), Verdict::Delete);
        assert_eq!(f.judge("acct", &uid, 43, header), Verdict::Fetch);
        assert_eq!(shell("exit 2").judge("a", &uid, 1, b""), Verdict::Skip);
        for line in ["exit 3", "kill -TERM $$"] {
            assert!(
                matches!(shell(line).judge("a", &uid, 1, b""), Verdict::Failed(_)),
                "{line}"
            );
        }
        let slow = Filter {
            command: CommandLine::Argv(vec!["sleep".into(), "20".into()]),
            timeout: Duration::from_millis(200),
        };
        let Verdict::Failed(why) = slow.judge("a", &uid, 1, b"") else {
            panic!("a filter past its timeout is an error");
        };
        assert!(why.contains("did not exit"), "{why}");
    }
}
