//! `pop3`: a POP3 mail fetcher. The binary is a thin shell around [`run`]; every piece is a
//! module here so that tests, fuzz targets and benchmarks reach it.
//!
//! Data flows one way: `config` resolves an `Account`, `net` connects, `client` speaks the
//! protocol (using the pure parsers in `proto`), `engine` decides what to fetch and keeps the
//! no-loss invariants, `deliver` and `state` touch the disk, and `cmd` prints.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod crashpoint;
pub mod deliver;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod import;
pub mod keyring;
pub mod net;
pub mod oauth;
pub mod proto;
pub mod secret;
pub mod session;
pub mod state;
pub mod ui;

pub use error::{Error, ErrorKind, Result};

/// Run the parsed command line; the `ExitCode` is the command's own (e.g. the first failing
/// account's), an `Err` ends the whole run.
pub fn run(cli: cli::Cli) -> anyhow::Result<std::process::ExitCode> {
    cmd::run(cli)
}
