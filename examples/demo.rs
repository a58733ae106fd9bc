//! A tour of `pop3` against a private POP3 server: `cargo run --example demo`.
//!
//! It starts the scripted test server from `tests/support` on 127.0.0.1 with implicit TLS
//! (a throwaway CA and certificate made with rcgen) and a handful of realistic messages,
//! writes a config file for it (mode 0600: it holds a literal password), and runs the real
//! `pop3` binary: `list`, `fetch -v`, `list` again. Then it shows what landed in the
//! Maildir. Everything lives in a temp dir that is removed at the end.
//!
//! The `pop3` binary is the one cargo builds next to this example (`target/<profile>/pop3`).
//! `cargo run --example demo` builds only the example, so when run by cargo the demo first
//! runs `cargo build --bin pop3 --example demo` itself (a no-op when it is up to date).
//! `POP3_DEMO_BIN` names another binary to use instead (the test in tests/daily.rs does).

#[path = "../tests/support/certs.rs"]
#[allow(dead_code)]
mod certs;
#[path = "../tests/support/server.rs"]
#[allow(dead_code)]
mod server;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use certs::TestCerts;
use server::{PASSWORD, TestServer, USER};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let started = Instant::now();
    let pop3 = pop3_binary()?;

    let certs = TestCerts::new();
    let server = TestServer::builder()
        .implicit_tls(&certs.leaf)
        .capa([
            "TOP",
            "UIDL",
            "USER",
            "RESP-CODES",
            "PIPELINING",
            "SASL PLAIN",
        ])
        .greeting("+OK demo POP3 server ready")
        .messages(mailbox())
        .time_limit(Duration::from_secs(30))
        .start();
    println!(
        "# A POP3 server with implicit TLS on 127.0.0.1:{} holding {} messages",
        server.port(),
        mailbox().len()
    );

    let dir = tempfile::Builder::new()
        .prefix("pop3-demo-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let home = dir.path().join("home");
    let maildir = home.join("Mail/inbox");
    let config = home.join(".config/pop3/config.toml");
    let toml = format!(
        "[accounts.demo]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         user = \"{USER}\"\n\
         password = \"{PASSWORD}\"\n\
         tls = \"implicit\"\n\
         tls_ca_file = '{ca}'\n\
         timeout = \"10s\"\n\
         deliver.maildir = '{maildir}'\n",
        port = server.port(),
        ca = certs.ca_file().display(),
        maildir = maildir.display(),
    );
    write_private(&config, &toml)?;
    println!("# Config {} (mode 0600):", shown(&config, dir.path()));
    for line in toml.lines() {
        if line.starts_with("password") {
            println!(
                "    password = \"********\"   # a literal password: the file must be private"
            );
        } else {
            println!("    {}", shown_str(line, dir.path()));
        }
    }

    for args in [&["list"][..], &["fetch", "-v"], &["list"]] {
        println!();
        println!("$ pop3 {}", args.join(" "));
        let out = Command::new(&pop3)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("TERM", "dumb")
            .current_dir(&home)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", pop3.display()))?;
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            for line in text.lines() {
                println!("    {}", shown_str(line, dir.path()));
            }
        }
        if !out.status.success() {
            return Err(format!(
                "pop3 {} failed with {}",
                args.join(" "),
                out.status
            ));
        }
    }

    println!();
    println!("# Delivered into the Maildir:");
    let mut files: Vec<PathBuf> = fs::read_dir(maildir.join("new"))
        .map_err(|e| format!("no Maildir: {e}"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    files.sort();
    for file in &files {
        let bytes = fs::read(file).map_err(|e| e.to_string())?;
        let subject = String::from_utf8_lossy(&bytes)
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            .unwrap_or_default();
        println!(
            "    {}  {} bytes  Subject: {subject}",
            shown(file, dir.path()),
            bytes.len()
        );
    }
    if files.len() != mailbox().len() {
        return Err(format!(
            "{} messages delivered, {} expected",
            files.len(),
            mailbox().len()
        ));
    }
    println!();
    println!(
        "# Done in {:.1} s; the messages are still on the server (keep = true is the default).",
        started.elapsed().as_secs_f64()
    );
    drop(server);
    dir.close().map_err(|e| format!("cleanup: {e}"))?;
    Ok(())
}

/// The `pop3` binary: `POP3_DEMO_BIN`, else the one next to this example's directory,
/// built first when cargo runs us.
fn pop3_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("POP3_DEMO_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/examples/demo
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?;
    let bin = profile_dir.join("pop3");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let target_dir = profile_dir
            .parent()
            .ok_or("cannot find the target directory")?;
        let mut build = Command::new(cargo);
        build
            // With the example in the same build, the features match those of the build
            // that made this example, so pop3 is not rebuilt every time.
            .args(["build", "--quiet", "--bin", "pop3", "--example", "demo"])
            .arg("--target-dir")
            .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
            None => {}
        }
        if let Some(manifest) = option_env!("CARGO_MANIFEST_DIR") {
            build.current_dir(manifest);
        }
        // `cargo run` gives us the variables of a running package (CARGO_MANIFEST_DIR,
        // CARGO_PKG_*, ...). ring's build script tracks some of them, so a nested build that
        // inherits them looks different from a plain `cargo build` and rebuilds ring,
        // rustls and pop3 each time (half a minute). Drop them; cargo's own settings
        // (CARGO_HOME, CARGO_TARGET_DIR, CARGO_BUILD_*, ...) stay.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let per_package = key.starts_with("CARGO_PKG_")
                || matches!(
                    key.as_str(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_RUSTC_CURRENT_DIR"
                );
            if per_package {
                build.env_remove(&key);
            }
        }
        let status = build
            .status()
            .map_err(|e| format!("cargo build --bin pop3 --example demo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build --bin pop3 failed: {status}"));
        }
    }
    if !bin.exists() && std::env::var_os("CARGO").is_none() {
        // Run outside cargo (the example binary copied or installed): the `pop3` that
        // `cargo install` put on PATH.
        if let Some(installed) = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("pop3"))
                .find(|p| p.is_file())
        }) {
            return Ok(installed);
        }
    }
    if !bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build` first (or set POP3_DEMO_BIN)",
            bin.display()
        ));
    }
    Ok(bin)
}

/// Write `contents` to `path` with mode 0600, creating the parent directories.
fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| e.to_string())?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
}

/// A path with the temp dir shown as `$DEMO`.
fn shown(path: &Path, root: &Path) -> String {
    shown_str(&path.display().to_string(), root)
}

fn shown_str(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "$DEMO")
}

/// The demo mailbox: plain text, a UTF-8 subject (RFC 2047), an attachment, a long reply.
fn mailbox() -> Vec<server::Message> {
    let plain = "From: Alice Example <alice@example.org>\r\n\
To: Bob <bob@example.org>\r\n\
Subject: Lunch on Friday?\r\n\
Date: Mon, 6 Apr 2026 09:12:00 +0200\r\n\
Message-ID: <lunch-1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Hi Bob,\r\n\
\r\n\
the new place on Main Street does a good curry. Friday at noon?\r\n\
\r\n\
Alice\r\n"
        .to_string();

    let utf8 = "From: =?UTF-8?Q?Ren=C3=A9e_Fran=C3=A7ois?= <renee@example.fr>\r\n\
To: bob@example.org\r\n\
Subject: =?UTF-8?B?UsOpc3Vtw6kgZsO8ciBkaWUgQmV3ZXJidW5nIOKYlQ==?=\r\n\
Date: Mon, 6 Apr 2026 10:30:00 +0200\r\n\
Message-ID: <cv-2@example.fr>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Bonjour Bob,\r\n\
\r\n\
voici mon résumé. Grüße aus Köln ☕\r\n\
\r\n\
Renée\r\n"
        .to_string();

    let csv = "date,amount,description\n2026-03-01,12.50,coffee\n2026-03-02,48.00,train\n";
    let attachment = format!(
        "From: Accounting <accounting@example.com>\r\n\
To: bob@example.org\r\n\
Subject: Your March statement\r\n\
Date: Tue, 7 Apr 2026 08:00:00 +0000\r\n\
Message-ID: <statement-3@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_boundary_42\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
\r\n\
--=_boundary_42\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Your statement for March is attached.\r\n\
\r\n\
--=_boundary_42\r\n\
Content-Type: text/csv; name=\"march.csv\"\r\n\
Content-Disposition: attachment; filename=\"march.csv\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{}\r\n\
--=_boundary_42--\r\n",
        base64_lines(csv.as_bytes())
    );

    let mut reply = "From: Carol <carol@example.net>\r\n\
To: team@example.org\r\n\
Cc: bob@example.org\r\n\
Subject: Re: Re: Re: Release plan for 2.0\r\n\
Date: Tue, 7 Apr 2026 17:45:00 -0700\r\n\
Message-ID: <thread-4@example.net>\r\n\
In-Reply-To: <thread-3@example.org>\r\n\
References: <thread-1@example.org> <thread-2@example.net>\r\n\
 <thread-3@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Agreed on the freeze date. Notes inline.\r\n\
\r\n\
On Tue, 7 Apr 2026, Dave wrote:\r\n"
        .to_string();
    for i in 1..=60 {
        reply.push_str(&format!(
            "> {i:02}. item {i}: tests, docs and the changelog need another look\r\n"
        ));
        if i % 15 == 0 {
            reply.push_str(">\r\n> .and a line that starts with a dot\r\n>\r\n");
            reply.push_str(&format!("Carol: noted for item {i}.\r\n\r\n"));
        }
    }
    reply.push_str("\r\n-- \r\nCarol\r\n");

    [
        ("demo-0001", plain),
        ("demo-0002", utf8),
        ("demo-0003", attachment),
        ("demo-0004", reply),
    ]
    .into_iter()
    .map(|(uidl, body)| server::Message {
        uidl: uidl.to_string(),
        body: body.into_bytes(),
    })
    .collect()
}

/// Base64 in lines of 76 characters (RFC 2045).
fn base64_lines(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    let lines: Vec<String> = out
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    lines.join("\r\n")
}
