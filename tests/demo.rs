//! The demo with an installed `pop3` (#11, item 1): the example binary, run outside cargo
//! and away from the target directory (as a copy of it elsewhere would be), uses the
//! `pop3` on PATH, and the tour succeeds.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::env::{TestEnv, text};

/// `target/<profile>/examples/demo`, built when `cargo test --test integration` did not.
fn demo_example() -> PathBuf {
    let bin = assert_cmd::cargo::cargo_bin!("pop3");
    let profile_dir = bin.parent().expect("target/<profile>");
    let demo = profile_dir.join("examples/demo");
    if !demo.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--example", "demo", "--target-dir"])
            .arg(profile_dir.parent().expect("target dir"))
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().expect("run cargo build --example demo");
        assert!(status.success() && demo.exists(), "cannot build the demo");
    }
    demo
}

#[test]
fn installed_demo_uses_the_pop3_on_path() {
    let env = TestEnv::new();
    // A copy in ~/.cargo/bin, beside an installed pop3.
    let bin_dir = env.home.join(".cargo/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let demo = bin_dir.join("demo");
    std::fs::copy(demo_example(), &demo).unwrap();
    // The pop3 on PATH notes each run, then is the real one.
    let marker = env.root().join("pop3-ran");
    let wrapper = format!(
        "#!/bin/sh\necho \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
        marker.display(),
        assert_cmd::cargo::cargo_bin!("pop3").display()
    );
    let pop3 = bin_dir.join("pop3");
    std::fs::write(&pop3, wrapper).unwrap();
    std::fs::set_permissions(&pop3, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = Command::new(&demo);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO") || k.starts_with("POP3_") || k.starts_with("XDG_") {
            cmd.env_remove(&key);
        }
    }
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = cmd
        .env("PATH", path)
        .env("HOME", &env.home)
        .env_remove("RUST_LOG")
        .current_dir(env.root())
        .stdin(Stdio::null())
        .output()
        .expect("run the demo");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    for expected in ["$ pop3 list", "$ pop3 fetch -v", "new/"] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    let ran = std::fs::read_to_string(&marker).expect("the pop3 on PATH was not run");
    assert!(ran.contains("fetch"), "{ran}");
}
