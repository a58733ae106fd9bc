//! The delivery sinks end to end (DESIGN.md invariants 1 and 3): what a kill or a second
//! Ctrl-C in the middle of an mbox append leaves for recovery, and that a Maildir group
//! commit fsyncs every message file itself, also on a FUSE filesystem (where `syncfs`
//! never reaches the daemon). Each mail-loss test starts with `no_loss_`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::account::{Target, account, is_recorded, state_file};
use crate::support::env::{TestEnv, delivered_form, text, without_received};
use crate::support::mailbox::parse_mbox;
use crate::support::server::{Fault, Message, TestServer};

fn msg(uidl: &str, subject: &str, body_lines: usize) -> Message {
    let mut body = format!("From: x@example.org\r\nSubject: {subject}\r\n\r\n");
    for i in 0..body_lines {
        body.push_str(&format!(
            "{subject} line {i:05} ..........................\r\n"
        ));
    }
    Message {
        uidl: uidl.to_string(),
        body: body.into_bytes(),
    }
}

fn mbox_bodies(path: &Path) -> Vec<Vec<u8>> {
    match fs::read(path) {
        Ok(data) => parse_mbox(&data)
            .into_iter()
            .map(|m| {
                without_received(&m.body)
                    .map(<[u8]>::to_vec)
                    .unwrap_or(m.body)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Wait until the server has received `n` commands with `verb`.
fn wait_for(server: &TestServer, verb: &str, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let count = server
            .commands_now()
            .iter()
            .filter(|c| c.verb() == verb)
            .count();
        if count >= n {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// How the run appending message 3 is stopped.
enum Stop {
    Kill,
    DoubleCtrlC,
}

/// Message 1 refused by RETR (its append rolled back, its intent never resolved), message 2
/// delivered and recorded, the run stopped in the middle of appending message 3, then two
/// clean runs. Message 2 must still be in the mbox, message 3 there once and whole.
fn mbox_run_stopped_after_a_refused_retr(stop: Stop) {
    let m1 = msg("uid-a", "first", 3);
    let m2 = msg("uid-b", "second", 3);
    let m3 = msg("uid-c", "third", 3000);
    let server = TestServer::builder()
        .messages(vec![m1.clone(), m2.clone(), m3.clone()])
        .max_connections(16)
        .fault(Fault::RetrErr(1))
        .fault(Fault::StallInRetr {
            msg: 3,
            after: 20_000,
            delay: Duration::from_secs(8),
        })
        .start();
    let env = TestEnv::new();
    let mbox = env.home.join("Mail/inbox.mbox");
    fs::create_dir_all(mbox.parent().unwrap()).unwrap();
    env.write_config(&account(
        server.port(),
        &Target::Mbox(mbox.clone()),
        "keep = false\n",
    ));
    let mut child = env.std_cmd().args(["fetch"]).spawn().unwrap();
    assert!(wait_for(&server, "RETR", 3));
    let mut lock = mbox.clone().into_os_string();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(lock.exists() && mbox_bodies(&mbox).contains(&delivered_form(&m2.body))) {
        assert!(Instant::now() < deadline, "message 3 is not being appended");
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    let state = fs::read_to_string(state_file(&env, server.port())).unwrap();
    assert!(is_recorded(&state, "uid-b"), "message 2 is recorded");
    match stop {
        Stop::Kill => child.kill().unwrap(),
        Stop::DoubleCtrlC => {
            let pid = child.id().to_string();
            for _ in 0..2 {
                let ok = Command::new("kill")
                    .args(["-INT", &pid])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(lock.exists(), "the stopped run left its dot-lock");

    server.clear_faults();
    for _ in 0..2 {
        env.fetch_ok(&["-v"]);
    }
    let after = mbox_bodies(&mbox);
    for (m, name) in [(&m1, "1"), (&m2, "2"), (&m3, "3")] {
        let copies = after
            .iter()
            .filter(|b| **b == delivered_form(&m.body))
            .count();
        assert_eq!(copies, 1, "message {name} in the mbox {copies} times");
    }
    assert_eq!(after.len(), 3, "nothing partial is left");
    assert!(!lock.exists());
}

#[test]
fn no_loss_mbox_recovery_after_a_kill_keeps_a_recorded_message_behind_a_refused_one() {
    mbox_run_stopped_after_a_refused_retr(Stop::Kill);
}

#[test]
fn no_loss_mbox_recovery_after_a_double_ctrl_c_keeps_recorded_mail() {
    mbox_run_stopped_after_a_refused_retr(Stop::DoubleCtrlC);
}

/// A bindfs mount on a directory, unmounted on drop with the `fusermount` found.
struct Mount(PathBuf, &'static str);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new(self.1).arg("-u").arg(&self.0).status();
    }
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Mount `src` on `dst`, or say why not.
fn bindfs(src: &Path, dst: &Path) -> Result<Mount, String> {
    for tool in ["bindfs", "strace"] {
        if !installed(tool) {
            return Err(format!("{tool} is not installed"));
        }
    }
    // fuse3 installs fusermount3; the older fuse package fusermount.
    let Some(fusermount) = ["fusermount3", "fusermount"]
        .into_iter()
        .find(|t| installed(t))
    else {
        return Err("neither fusermount3 nor fusermount is installed".to_owned());
    };
    let out = Command::new("bindfs")
        .arg(src)
        .arg(dst)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("bindfs failed: {}", text(&out.stderr)));
    }
    Ok(Mount(dst.to_path_buf(), fusermount))
}

/// On a FUSE filesystem (bindfs), pop3 runs under strace: every message file is fsynced
/// (by itself, not through `syncfs`) before it is renamed into `new/`, and the state
/// records the messages only after that. Skipped with a notice without bindfs, FUSE or
/// strace, unless POP3_REQUIRE_FUSE=1.
#[test]
fn no_loss_every_maildir_file_is_fsynced_before_it_is_recorded_on_fuse() {
    let env = TestEnv::new();
    let src = env.root().join("fuse-src");
    let mnt = env.root().join("fuse-mnt");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    let _mount = match bindfs(&src, &mnt) {
        Ok(m) => m,
        Err(why) => {
            assert!(
                std::env::var_os("POP3_REQUIRE_FUSE").is_none_or(|v| v != "1"),
                "POP3_REQUIRE_FUSE=1 but {why}"
            );
            eprintln!("skipped: {why}");
            return;
        }
    };
    let maildir = mnt.join("Maildir");
    let messages: Vec<Message> = (1..=20)
        .map(|i| msg(&format!("f{i}"), "fuse", 10))
        .collect();
    let server = TestServer::builder().messages(messages.clone()).start();
    env.write_config(&account(
        server.port(),
        &Target::Maildir(maildir.clone()),
        "",
    ));
    let state = state_file(&env, server.port());

    let cmd = env.std_cmd();
    let log = env.root().join("strace.log");
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-y", "-qq", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=syncfs,fsync,fdatasync,rename,renameat,renameat2,write,pwrite64",
        ])
        .arg(cmd.get_program())
        .arg("fetch");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    traced.current_dir(env.root());
    let out = traced.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let trace = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert!(
        !lines.iter().any(|l| l.contains("syncfs(")),
        "syncfs is not durability on FUSE"
    );

    let delivered: Vec<String> = fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(delivered.len(), 20);
    let state_s = state.to_string_lossy().into_owned();
    let first_state_write_after = |i: usize| {
        lines[i..]
            .iter()
            .position(|l| l.contains("write") && l.contains(&*state_s))
            .map(|p| p + i)
    };
    let mut last_rename = 0;
    for name in &delivered {
        let base = name.split(',').next().unwrap();
        let tmp = format!("/tmp/{base}>");
        let fsync = lines
            .iter()
            .position(|l| l.contains("fsync(") && l.contains(&tmp))
            .unwrap_or_else(|| panic!("no fsync of tmp/{base}:\n{trace}"));
        let rename = lines
            .iter()
            .position(|l| l.contains("rename") && l.contains(&format!("{base}\"")))
            .unwrap_or_else(|| panic!("no rename of {base}"));
        assert!(fsync < rename, "tmp/{base} renamed before its fsync");
        last_rename = last_rename.max(rename);
    }
    // The record comes after the batch is visible (and so after every fsync).
    assert!(
        first_state_write_after(last_rename).is_some(),
        "no state write after the last rename"
    );
    let state_text = fs::read_to_string(&state).unwrap();
    for m in &messages {
        assert!(is_recorded(&state_text, &m.uidl));
    }
}
