//! The committed man page and shell completions are exactly what `pop3 generate` prints, and
//! the man page documents every config key of the README's key table and every exit code.

use std::path::PathBuf;

use crate::support::env::{TestEnv, text};

/// A file of the source tree.
fn source_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `pop3 generate ARGS` must print exactly the committed `path`.
fn assert_generated(args: &[&str], path: &str) {
    let env = TestEnv::new();
    let out = env.cmd().arg("generate").args(args).assert().code(0);
    let generated = text(&out.get_output().stdout);
    let regenerate = format!("cargo run -- generate {} > {path}", args.join(" "));
    let committed = std::fs::read_to_string(source_file(path)).unwrap_or_else(|e| {
        panic!("cannot read {path} ({e}); create it with `{regenerate}`");
    });
    if generated == committed {
        return;
    }
    let line = generated
        .lines()
        .zip(committed.lines())
        .position(|(g, c)| g != c)
        .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
    panic!(
        "{path} is out of date: regenerate it with `{regenerate}` and commit it.\n\
         first difference at line {}:\n  generated: {:?}\n  committed: {:?}",
        line + 1,
        generated.lines().nth(line).unwrap_or("<end of file>"),
        committed.lines().nth(line).unwrap_or("<end of file>"),
    );
}

#[test]
fn man_page_is_up_to_date() {
    assert_generated(&["man"], "man/pop3.1");
}

#[test]
fn bash_completions_are_up_to_date() {
    assert_generated(&["completions", "bash"], "completions/pop3.bash");
}

#[test]
fn zsh_completions_are_up_to_date() {
    assert_generated(&["completions", "zsh"], "completions/_pop3");
}

#[test]
fn fish_completions_are_up_to_date() {
    assert_generated(&["completions", "fish"], "completions/pop3.fish");
}

/// The man page as it is generated now, with the roff font escapes removed.
fn man_page() -> String {
    let env = TestEnv::new();
    let out = env.cmd().args(["generate", "man"]).assert().code(0);
    text(&out.get_output().stdout)
}

/// The rows of the markdown table that follows `heading` in the README.
fn readme_table(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(source_file("README.md")).expect("README.md");
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(str::to_string)
        .collect()
}

/// The `backticked` names in the first column of a README table row.
fn first_column_names(row: &str) -> Vec<String> {
    let cell = row.split('|').nth(1).unwrap_or("");
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(|k| k.split(" =").next().unwrap_or(k).trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

fn plain(roff: &str) -> String {
    roff.replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
        .replace("\\-", "-")
}

#[test]
fn man_page_documents_every_config_key_in_the_readme() {
    let rows = readme_table("### Keys");
    let keys: Vec<String> = rows.iter().flat_map(|r| first_column_names(r)).collect();
    assert!(
        keys.len() >= 20 && keys.contains(&"deliver.maildir".to_string()),
        "README key table not understood: {keys:?}"
    );
    let man = plain(&man_page());
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| {
            !man.match_indices(key.as_str()).any(|(i, _)| {
                let before = man[..i].chars().next_back();
                let after = man[i + key.len()..].chars().next();
                !before.is_some_and(is_name_char)
                    && !after.is_some_and(|c| is_name_char(c) && c != '.')
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the man page does not mention {missing:?}; document them in src/cmd/generate.rs \
         and regenerate with `cargo run -- generate man > man/pop3.1`"
    );
}

#[test]
fn man_page_documents_every_exit_code() {
    let rows = readme_table("## Exit codes");
    let mut codes: Vec<u8> = rows
        .iter()
        .map(|r| {
            let cell = r.split('|').nth(1).unwrap_or("").trim();
            cell.parse()
                .unwrap_or_else(|_| panic!("bad exit code row {r:?}"))
        })
        .collect();
    assert!(
        codes.len() >= 10,
        "README exit codes not understood: {codes:?}"
    );
    // `check`: 1 is "no new mail" (DESIGN.md).
    codes.push(1);
    let man = man_page();
    let section = man
        .split(".SH \"EXIT STATUS\"")
        .nth(1)
        .expect("the man page has an EXIT STATUS section");
    let section = section.split("\n.SH ").next().unwrap_or(section);
    let missing: Vec<u8> = codes
        .into_iter()
        .filter(|c| !section.contains(&format!("\\fB{c}\\fR")))
        .collect();
    assert!(
        missing.is_empty(),
        "EXIT STATUS does not list {missing:?}; document them in src/cmd/generate.rs and \
         regenerate with `cargo run -- generate man > man/pop3.1`"
    );
}
