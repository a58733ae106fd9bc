//! `pop3`: a POP3 mail fetcher. The binary is a thin shell around [`run`]; every piece is a
//! module here so that tests, fuzz targets and benchmarks reach it.
//!
//! Data flows one way: `config` resolves an `Account`, `net` connects, `client` speaks the
//! protocol (using the pure parsers in `proto`), `engine` decides what to fetch and keeps the
//! no-loss invariants, `deliver` and `state` touch the disk, and `cmd` prints.

#![forbid(unsafe_code)]

pub mod deliver;
pub mod error;
pub mod fsutil;
pub mod proto;
pub mod state;

pub use error::{Error, ErrorKind, Result};
