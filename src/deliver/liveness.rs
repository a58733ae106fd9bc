//! Whether the process that left something behind (an mbox dot-lock, a Maildir `tmp/` file
//! named after its pid) still runs. Owns only that question; callers decide what a dead
//! owner allows them to remove.

/// Whether a process with `pid` runs on this machine (in our pid namespace). Our own pid
/// counts as running. Where there is no cheap check, every process is assumed to run, so
/// that nothing is ever removed on the strength of a guess.
pub(crate) fn process_exists(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    exists(pid)
}

#[cfg(target_os = "linux")]
fn exists(pid: u32) -> bool {
    pid == 0 || std::path::Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn exists(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::process_exists;

    #[test]
    fn we_run_and_an_exited_child_does_not() {
        assert!(process_exists(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // Reaped, so the pid is free (reuse within these microseconds is not a concern).
        assert!(!process_exists(pid) || cfg!(not(target_os = "linux")));
    }
}
