//! Where files live: the config file and the state directory, following XDG on every
//! platform (what command-line users expect, CRATES.md section 7). Tests point `HOME` and
//! `XDG_*` at temporary directories.

use std::path::{Path, PathBuf};

use etcetera::BaseStrategy;

use crate::error::{Error, ErrorKind, Result};

fn strategy() -> Result<etcetera::base_strategy::Xdg> {
    etcetera::base_strategy::Xdg::new().map_err(|e| {
        Error::with_source(
            ErrorKind::Config,
            "cannot find the home directory (set HOME)",
            e,
        )
    })
}

/// `$XDG_CONFIG_HOME/pop3/config.toml`, else `~/.config/pop3/config.toml`.
pub fn default_config_file() -> Result<PathBuf> {
    Ok(strategy()?.config_dir().join("pop3").join("config.toml"))
}

/// `$XDG_STATE_HOME/pop3`, else `~/.local/state/pop3`.
pub fn state_dir() -> Result<PathBuf> {
    let s = strategy()?;
    let base = s
        .state_dir()
        .unwrap_or_else(|| s.home_dir().join(".local").join("state"));
    Ok(base.join("pop3"))
}

/// Expand a leading `~/`, `$HOME/` or `${HOME}/` (or one of them alone) to the home
/// directory. Nothing else is expanded.
pub fn expand_tilde(path: &str) -> Result<PathBuf> {
    for home in ["~", "$HOME", "${HOME}"] {
        if path == home {
            return Ok(strategy()?.home_dir().to_path_buf());
        }
        if let Some(rest) = path.strip_prefix(home).and_then(|r| r.strip_prefix('/')) {
            return Ok(strategy()?.home_dir().join(rest));
        }
    }
    Ok(Path::new(path).to_path_buf())
}

/// A path from the config file: `~`, `$HOME` and `${HOME}` expanded, and then it must be
/// absolute. A relative path would resolve against whatever directory pop3 happens to run
/// in (another one under cron), so it is refused, naming `key` (`what` says where it is).
pub fn config_path(path: &str, what: &str, key: &str) -> Result<PathBuf> {
    let expanded = expand_tilde(path)?;
    if expanded.is_absolute() {
        return Ok(expanded);
    }
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "{what}: {key} = {path:?} is a relative path, which would depend on the directory \
             pop3 runs in (different under cron); write it from the home directory \
             (\"~/{path}\") or as an absolute path (only ~ and $HOME are expanded)"
        ),
    ))
}

/// A path from the command line: a leading `~` expanded (the shell does not expand it after
/// `--maildir=`, nor inside quotes), then made absolute against the current directory, as
/// a path typed in a shell means.
pub fn command_line_path(path: &Path) -> Result<PathBuf> {
    let expanded = match path.to_str() {
        Some(s) => expand_tilde(s)?,
        None => path.to_path_buf(),
    };
    std::path::absolute(&expanded).map_err(|e| {
        Error::with_source(
            ErrorKind::Usage,
            format!("cannot make {} absolute", expanded.display()),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_expand_home_and_refuse_relative_ones() {
        let home = strategy().unwrap().home_dir().to_path_buf();
        for p in ["~/Mail/x", "$HOME/Mail/x", "${HOME}/Mail/x"] {
            assert_eq!(
                config_path(p, "t", "k").unwrap(),
                home.join("Mail/x"),
                "{p}"
            );
        }
        assert_eq!(config_path("/abs", "t", "k").unwrap(), Path::new("/abs"));
        for p in ["Mail/x", "./x", "$MAIL/x", "~other/x"] {
            let e = config_path(p, "[accounts.a]", "deliver.maildir").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains("deliver.maildir"), "{e}");
            assert!(e.to_string().contains("relative"), "{e}");
        }
    }

    #[test]
    fn command_line_paths_become_absolute() {
        let home = strategy().unwrap().home_dir().to_path_buf();
        assert_eq!(command_line_path(Path::new("~/M")).unwrap(), home.join("M"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(command_line_path(Path::new("M")).unwrap(), cwd.join("M"));
    }
}
