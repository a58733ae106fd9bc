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

/// Expand a leading `~/` (or a lone `~`) to the home directory.
pub fn expand_tilde(path: &str) -> Result<PathBuf> {
    if path == "~" {
        return Ok(strategy()?.home_dir().to_path_buf());
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return Ok(strategy()?.home_dir().join(rest));
    }
    Ok(Path::new(path).to_path_buf())
}
