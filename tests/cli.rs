//! The one integration-test binary: every module below runs the real `pop3` executable
//! against the scripted test server (tests/support/server.rs) or a private Dovecot.

mod support;

mod interop;

mod config;
mod crash;
mod daemon;
mod daily;
mod faults;
mod fetch;
mod generated;
mod hostile;
mod keyring;
mod kill;
mod policy;
mod sinks;
mod tls;
