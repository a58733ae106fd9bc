//! The one integration-test binary: every module below runs the real `pop3` executable
//! against the scripted test server (tests/support/server/) or a private Dovecot.

mod support;

mod interop;

mod children;
mod completions;
mod config;
mod crash;
mod crash_sim;
mod daemon;
mod daily;
mod delivery;
mod demo;
mod faults;
mod fetch;
mod generated;
mod hostile;
mod import;
mod init;
mod keyring;
mod kill;
mod newuser;
mod no_loss;
mod oauth;
mod policy;
mod probe;
mod ranges;
mod sinks;
mod tls;
