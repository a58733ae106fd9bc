//! `SeenState::load` on arbitrary file contents (written to a file in a per-process
//! directory on /dev/shm when there is one, to keep the disk out of the loop). Must never
//! panic: damage is an error naming the file, and that error quotes no file content (no
//! control characters). A state that loads has no more entries than the file has lines.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pop3::state::uidl::SeenState;

/// One file per fuzzing process, in `/dev/shm/pop3-fuzz-uidl-<pid>/` (or the temp dir).
/// libFuzzer leaves by `exit`, so nothing would remove it at the end: instead each start
/// removes the directories of processes that are gone.
fn state_file() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        const PREFIX: &str = "pop3-fuzz-uidl-";
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                    continue;
                };
                if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("state directory");
        dir.join("uidl")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = state_file();
    std::fs::write(path, data).expect("write state file");
    match SeenState::load(path) {
        Ok(state) => {
            assert_eq!(state.is_empty(), state.len() == 0);
            // More entries than lines is impossible.
            let lines = data.iter().filter(|&&b| b == b'\n').count();
            assert!(state.len() <= lines);
            assert_eq!(state.path(), path.as_path());
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            // The message quotes no file content, so nothing from the file can reach the
            // terminal through it.
            assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        }
    }
});
