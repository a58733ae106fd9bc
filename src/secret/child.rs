//! Every child process pop3 starts (the MDA, `password.command`) is prepared here, in one
//! place, so that no child sees a secret it was not meant to get and none outlives the job
//! it was started for (issue #9).
//!
//! * Environment: [`command`] removes `POP3_PASSWORD` and every variable an account names
//!   in `password.env` (registered with [`hide_from_children`] when the config is loaded).
//!   A child inherits our environment, and so does everything it starts: without this the
//!   MDA, its helpers and a password command would all see the password.
//! * Process group: the child leads a process group of its own, so that a timeout ends
//!   everything it started (`sh -c 'a; b'`, a pipeline, a background job), not just the
//!   shell. The exception is a command that may have to ask on our terminal
//!   ([`Group::Ours`]): a background process group that reads the terminal is stopped by
//!   SIGTTIN, so such a child stays in our group and only the child itself is ended.
//! * Ending: [`Running::end`] sends SIGTERM to the group, gives it [`GRACE`] to exit, then
//!   sends SIGKILL. The group is ended after a normal exit too (a straggler left in the
//!   background must not write after we have judged the result) and when a [`Running`] is
//!   dropped.
//!
//! The leader's exit is noticed with `waitid(WNOWAIT)`, which leaves it a zombie: its pid,
//! which is also the group's id, cannot be reused until we reap it, so a signal to the
//! group can never reach an unrelated process that happens to get the same number.

use std::ffi::OsStr;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use super::PASSWORD_ENV;

/// How long a child (and its group) has after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_millis(500);

/// The longest pause between two looks at a child that has not exited yet.
const MAX_POLL: Duration = Duration::from_millis(20);

/// Variables named by `password.env` anywhere in the config, besides [`PASSWORD_ENV`].
static HIDDEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keep the environment variable `var` (it holds a password) from every child started
/// after this call.
pub fn hide_from_children(var: &str) {
    let mut hidden = HIDDEN.lock().unwrap_or_else(|e| e.into_inner());
    if !var.is_empty() && !hidden.iter().any(|v| v == var) {
        hidden.push(var.to_owned());
    }
}

/// The variables no child may inherit: [`PASSWORD_ENV`] and those registered with
/// [`hide_from_children`].
pub fn hidden_vars() -> Vec<String> {
    let mut vars = vec![PASSWORD_ENV.to_owned()];
    vars.extend(
        HIDDEN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    vars
}

/// Which process group a child runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// A new group that the child leads: ending the child ends all it started.
    Own,
    /// Ours, so that the child can read our terminal (a password prompt). Only the child
    /// itself is ended.
    Ours,
}

/// A [`Command`] prepared for a child of pop3; build it further through `Deref`, start it
/// with [`ChildCommand::spawn`].
#[derive(Debug)]
pub struct ChildCommand {
    command: Command,
    group: Group,
}

/// A command for `program` without any password in its environment, in `group`.
pub fn command(program: impl AsRef<OsStr>, group: Group) -> ChildCommand {
    let mut command = Command::new(program);
    for var in hidden_vars() {
        command.env_remove(var);
    }
    if group == Group::Own {
        command.process_group(0);
    }
    ChildCommand { command, group }
}

impl Deref for ChildCommand {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.command
    }
}

impl DerefMut for ChildCommand {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.command
    }
}

impl ChildCommand {
    /// Start the child. Dropping the result ends it (and its group) and reaps it.
    pub fn spawn(&mut self) -> io::Result<Running> {
        let child = self.command.spawn()?;
        Ok(Running {
            pid: Pid::from_child(&child),
            child,
            group: self.group,
            status: None,
        })
    }
}

/// A started child. It is ended and reaped by [`Running::wait`], [`Running::end`] or drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pid: Pid,
    group: Group,
    /// Set once the child has been reaped.
    status: Option<ExitStatus>,
}

impl Running {
    /// The child, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Wait up to `timeout` for the child to exit. `Some(status)` when it exited by itself,
    /// `None` when it did not (it has then been ended). Either way, when this returns
    /// nothing of the child's group runs any more.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        // An absurd timeout (no deadline representable) means "wait as long as it takes".
        let deadline = Instant::now().checked_add(timeout);
        let mut pause = Duration::from_millis(1);
        loop {
            if self.exited()? {
                self.end();
                return Ok(self.status);
            }
            let now = Instant::now();
            let left = deadline.map_or(MAX_POLL, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                self.end();
                return Ok(None);
            }
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// [`Running::wait`], calling `tick` about every `every` while the child runs (the
    /// engine keeps its POP3 session alive from there).
    pub fn wait_ticking(
        &mut self,
        timeout: Duration,
        every: Duration,
        tick: &mut dyn FnMut(),
    ) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now().checked_add(timeout);
        let every = every.max(Duration::from_millis(10));
        loop {
            let left = deadline.map_or(every, |d| d.saturating_duration_since(Instant::now()));
            if left <= every {
                return self.wait(left);
            }
            let slice_end = Instant::now() + every;
            let mut pause = Duration::from_millis(1);
            while Instant::now() < slice_end {
                if self.exited()? {
                    self.end();
                    return Ok(self.status);
                }
                thread::sleep(pause.min(slice_end.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(MAX_POLL);
            }
            tick();
        }
    }

    /// Whether the child has exited (or has been reaped), without reaping it.
    fn exited(&mut self) -> io::Result<bool> {
        if self.status.is_some() {
            return Ok(true);
        }
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        match rustix::process::waitid(WaitId::Pid(self.pid), options) {
            Ok(found) => Ok(found.is_some()),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// End the child and, with [`Group::Own`], every process left in its group: SIGTERM,
    /// up to [`GRACE`] to exit, then SIGKILL; reap the child. After a normal exit this only
    /// clears away what the child left running. Idempotent.
    pub fn end(&mut self) {
        if self.status.is_some() {
            return;
        }
        let deadline = Instant::now() + GRACE;
        let exited = self.exited().unwrap_or(false);
        if !exited || self.group == Group::Own {
            self.signal(Signal::TERM);
        }
        while !self.exited().unwrap_or(true) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if !self.exited().unwrap_or(true) {
            self.signal(Signal::KILL);
        }
        match self.child.wait() {
            Ok(status) => self.status = Some(status),
            Err(e) => {
                log::warn!(
                    "cannot reap child process {}: {e}",
                    self.pid.as_raw_nonzero()
                );
                // Do not try again: a second wait would fail the same way.
                self.status = Some(std::os::unix::process::ExitStatusExt::from_raw(0));
            }
        }
        if self.group == Group::Own {
            // The leader is reaped; what is left of the group is what it put in the
            // background. Its members still hold the group id, so it cannot be reused.
            while group_alive(self.pid) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if group_alive(self.pid)
                && let Err(e) = rustix::process::kill_process_group(self.pid, Signal::KILL)
                && e != rustix::io::Errno::SRCH
            {
                log::debug!(
                    "cannot kill process group {}: {e}",
                    self.pid.as_raw_nonzero()
                );
            }
        }
    }

    /// Send `signal` to the child's group ([`Group::Own`]) or to the child alone.
    fn signal(&self, signal: Signal) {
        let result = match self.group {
            Group::Own => rustix::process::kill_process_group(self.pid, signal),
            Group::Ours => rustix::process::kill_process(self.pid, signal),
        };
        if let Err(e) = result
            && e != rustix::io::Errno::SRCH
        {
            log::debug!("cannot signal child {}: {e}", self.pid.as_raw_nonzero());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.end();
    }
}

/// Whether any process is left in process group `pgid`.
fn group_alive(pgid: Pid) -> bool {
    rustix::process::test_kill_process_group(pgid) != Err(rustix::io::Errno::SRCH)
}

/// For tests: whether process `pid` is gone (or a zombie, dead but not yet reaped by
/// whoever inherited it), waiting up to 2 s for that.
#[cfg(test)]
pub(crate) fn process_gone(pid: i32) -> bool {
    let t0 = Instant::now();
    loop {
        let exists =
            Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
        // /proc/PID/stat: "pid (comm) S ...", the state letter after the last ')'.
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        });
        if !exists || zombie {
            return true;
        }
        if t0.elapsed() > Duration::from_secs(2) {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Stdio;

    fn sh(script: &str, group: Group) -> ChildCommand {
        let mut c = command("/bin/sh", group);
        c.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }

    /// Wait up to 2 s for `path` to hold a pid.
    fn read_pid(path: &std::path::Path) -> i32 {
        let t0 = Instant::now();
        loop {
            if let Ok(s) = fs::read_to_string(path)
                && let Ok(pid) = s.trim().parse()
            {
                return pid;
            }
            assert!(t0.elapsed() < Duration::from_secs(2), "no pid in {path:?}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn no_leak_password_variables_are_removed_from_every_child_command() {
        // The end-to-end proof (a real environment inherited by a real MDA) is in
        // tests/children.rs; here: `command` removes both kinds of variable, whatever group.
        hide_from_children("POP3_TEST_CHILD_SECRET");
        hide_from_children("POP3_TEST_CHILD_SECRET");
        for group in [Group::Own, Group::Ours] {
            let c = command("/bin/true", group);
            let removed: Vec<String> = c
                .get_envs()
                .filter(|(_, value)| value.is_none())
                .map(|(k, _)| k.to_string_lossy().into_owned())
                .collect();
            assert!(removed.iter().any(|k| k == PASSWORD_ENV), "{removed:?}");
            assert_eq!(
                removed
                    .iter()
                    .filter(|k| *k == "POP3_TEST_CHILD_SECRET")
                    .count(),
                1,
                "{removed:?}"
            );
        }
    }

    #[test]
    fn timeout_ends_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The shell waits for a grandchild; killing only the shell would leave it running.
        let mut running = sh(
            &format!("sleep 30 & echo $! > '{}'; wait", pid_file.display()),
            Group::Own,
        )
        .spawn()
        .unwrap();
        let grandchild = read_pid(&pid_file);
        let t0 = Instant::now();
        assert_eq!(running.wait(Duration::from_millis(200)).unwrap(), None);
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert!(
            process_gone(grandchild),
            "grandchild {grandchild} survived the timeout"
        );
    }

    #[test]
    fn a_normal_exit_leaves_no_straggler() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut running = sh(
            &format!("sleep 30 & echo $! > '{}'; exit 0", pid_file.display()),
            Group::Own,
        )
        .spawn()
        .unwrap();
        let status = running.wait(Duration::from_secs(10)).unwrap().unwrap();
        assert!(status.success());
        let grandchild = read_pid(&pid_file);
        assert!(
            process_gone(grandchild),
            "background job {grandchild} outlived its MDA"
        );
    }

    #[test]
    fn a_child_ignoring_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let mut running = sh(
            &format!(
                "trap '' TERM; echo $$ > '{}'; while :; do sleep 1; done",
                ready.display()
            ),
            Group::Own,
        )
        .spawn()
        .unwrap();
        read_pid(&ready);
        let t0 = Instant::now();
        assert_eq!(running.wait(Duration::from_millis(50)).unwrap(), None);
        let took = t0.elapsed();
        assert!(took >= GRACE, "{took:?}");
        assert!(took < GRACE + Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn our_group_ends_only_the_child_and_keeps_its_status() {
        let mut running = sh("exit 3", Group::Ours).spawn().unwrap();
        let status = running.wait(Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(status.code(), Some(3));
        // Ending again is a no-op, and dropping does not signal anyone.
        running.end();
        drop(running);

        let mut running = sh("sleep 30", Group::Ours).spawn().unwrap();
        assert_eq!(running.wait(Duration::from_millis(100)).unwrap(), None);
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        let mut running = sh("exit 0", Group::Own).spawn().unwrap();
        let status = running.wait(Duration::MAX).unwrap().unwrap();
        assert!(status.success());
    }
}
