//! The committed shell completions (completions/) in the real shells: account names from the
//! user's config after `pop3 fetch`, `list`, `check` and `probe` (asked from the hidden
//! `pop3 accounts --names` at completion time), and the hidden `generate` never offered.
//! bash is always there; zsh (driven through its zpty module, as a user pressing TAB) and
//! fish are tested when installed, else skipped with a notice.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::dovecot::find_tool;
use crate::support::env::{TestEnv, text};

/// A file of the source tree.
fn source_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A config with two accounts, `work` and `home`, and a second config file with `other`.
fn setup() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.write_config(
        "[accounts.work]\nhost = \"pop.example.com\"\nuser = \"alice\"\n\n\
         [accounts.home]\nhost = \"mail.example.org\"\nuser = \"al\"\n",
    );
    let other = env.write_file(
        "other.toml",
        "[accounts.other]\nhost = \"pop.example.net\"\nuser = \"x\"\n",
        0o600,
    );
    (env, other)
}

/// `program ARGS` with the test's HOME and XDG dirs, and the `pop3` under test first on PATH
/// (the scripts call `pop3 accounts --names`), in an empty directory.
fn shell(env: &TestEnv, program: &Path, args: &[&str]) -> String {
    let bin = assert_cmd::cargo::cargo_bin!("pop3");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cwd = env.root().join("empty");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("POP3_") || k.starts_with("XDG_") {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config_home)
        .env("XDG_STATE_HOME", &env.state_home)
        .env("PATH", path)
        .env("TERM", "dumb")
        .current_dir(&cwd)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program:?} {args:?}: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn accounts_names_prints_the_names_in_file_order() {
    let (env, other) = setup();
    let out = env.cmd().args(["accounts", "--names"]).assert().code(0);
    assert_eq!(text(&out.get_output().stdout), "work\nhome\n");
    let out = env
        .cmd()
        .arg("-c")
        .arg(&other)
        .args(["accounts", "--names"])
        .assert()
        .code(0);
    assert_eq!(text(&out.get_output().stdout), "other\n");
    // Hidden from --help, as from the completions.
    let help = env.cmd().args(["accounts", "--help"]).assert().code(0);
    assert!(!text(&help.get_output().stdout).contains("--names"));
}

#[test]
fn no_script_offers_the_hidden_generate_or_names() {
    for file in [
        "completions/pop3.bash",
        "completions/_pop3",
        "completions/pop3.fish",
    ] {
        let script = std::fs::read_to_string(source_file(file)).unwrap();
        assert!(!script.contains("generate"), "{file} offers generate");
        let offered = script.replace("accounts --names", "");
        assert!(!offered.contains("names["), "{file} offers --names");
        assert!(!offered.contains("--names"), "{file} offers --names");
        assert!(!offered.contains("-l names"), "{file} offers --names");
    }
}

/// What bash's `_pop3` offers for the words so far (the last one is being completed).
fn bash_complete(env: &TestEnv, words: &[&str]) -> Vec<String> {
    let script = source_file("completions/pop3.bash");
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let line = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
         COMP_LINE=\"${{COMP_WORDS[*]}}\"; \
         _pop3 pop3 \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" ")
    );
    let out = shell(env, Path::new("bash"), &["-c", &line]);
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_offers_account_names_and_not_generate() {
    let (env, other) = setup();
    let names = ["work".to_owned(), "home".to_owned()];
    for sub in ["fetch", "list", "check", "probe"] {
        assert_eq!(bash_complete(&env, &["pop3", sub, ""]), names, "pop3 {sub}");
    }
    assert_eq!(bash_complete(&env, &["pop3", "fetch", "w"]), ["work"]);
    // Several accounts for fetch; options still complete after a dash.
    assert_eq!(bash_complete(&env, &["pop3", "fetch", "work", ""]), names);
    let options = bash_complete(&env, &["pop3", "fetch", "--li"]);
    assert_eq!(options, ["--limit"]);
    // The value of an option is not an account.
    assert!(bash_complete(&env, &["pop3", "fetch", "--limit", ""]).is_empty());
    // -c on the line names the config to read the names from.
    let c = other.display().to_string();
    assert_eq!(
        bash_complete(&env, &["pop3", "-c", &c, "fetch", ""]),
        ["other"]
    );

    let commands = bash_complete(&env, &["pop3", ""]);
    for expected in ["fetch", "init", "probe", "help"] {
        assert!(commands.iter().any(|c| c == expected), "{commands:?}");
    }
    assert!(!commands.iter().any(|c| c == "generate"), "{commands:?}");
    assert!(bash_complete(&env, &["pop3", "gen"]).is_empty());
    let help = bash_complete(&env, &["pop3", "help", ""]);
    assert!(help.iter().any(|c| c == "fetch") && !help.iter().any(|c| c == "generate"));
    let flags = bash_complete(&env, &["pop3", "accounts", "--"]);
    assert!(flags.iter().any(|c| c == "--check") && !flags.iter().any(|c| c == "--names"));
}

/// What an interactive zsh lists after typing `line` and TAB (through zsh/zpty), once the
/// listing contains `until`.
fn zsh_tab(env: &TestEnv, zsh: &Path, line: &str, until: &str) -> String {
    let script = format!(
        r#"zmodload zsh/zpty
zpty z 'TERM=xterm zsh -f -i'
zpty -w z 'PS1="> "; fpath=({dir} $fpath); autoload -U compinit; compinit -u -D; unsetopt beep'
zpty -w -n z $'{line}\t'
out=""
for i in {{1..100}}; do
  if zpty -rt z chunk; then out+=$chunk; fi
  [[ $out == *"{until}"* ]] && break
  sleep 0.1
done
zpty -d z
print -r -- "$out"
"#,
        dir = source_file("completions").display(),
    );
    shell(env, zsh, &["-f", "-c", &script])
}

#[test]
fn zsh_offers_account_names_and_not_generate() {
    let Some(zsh) = find_tool("zsh") else {
        eprintln!("NOTICE: zsh not installed (apt-get install zsh): zsh completions not tested");
        return;
    };
    let (env, _) = setup();
    for sub in ["fetch", "list", "check", "probe"] {
        // zsh lists the two names sorted, two spaces apart.
        let shown = zsh_tab(&env, &zsh, &format!("pop3 {sub} "), "home  work");
        assert!(shown.contains("home  work"), "pop3 {sub} TAB: {shown:?}");
    }
    // The subcommands, listed with their descriptions: init is there, generate is not.
    let shown = zsh_tab(&env, &zsh, "pop3 ", "state");
    assert!(
        shown.contains("init") && shown.contains("fetch"),
        "{shown:?}"
    );
    assert!(!shown.contains("generate"), "{shown:?}");
}

#[test]
fn fish_offers_account_names_and_not_generate() {
    let Some(fish) = find_tool("fish") else {
        eprintln!("NOTICE: fish not installed (apt-get install fish): fish completions not tested");
        return;
    };
    let (env, _) = setup();
    let script = source_file("completions/pop3.fish");
    let complete = |line: &str| -> Vec<String> {
        let cmd = format!("source '{}'; complete -C '{line}'", script.display());
        shell(&env, &fish, &["--no-config", "-c", &cmd])
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect()
    };
    for sub in ["fetch", "list", "check", "probe"] {
        let offered = complete(&format!("pop3 {sub} "));
        assert!(
            offered.contains(&"work".to_owned()) && offered.contains(&"home".to_owned()),
            "pop3 {sub}: {offered:?}"
        );
    }
    let commands = complete("pop3 ");
    assert!(commands.contains(&"init".to_owned()), "{commands:?}");
    assert!(!commands.contains(&"generate".to_owned()), "{commands:?}");
    assert!(!complete("pop3 help ").contains(&"generate".to_owned()));
}
