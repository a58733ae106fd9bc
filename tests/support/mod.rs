//! Shared test support: a temp HOME and config writer, the scripted POP3 server, test
//! certificates, and a private Dovecot instance.

pub mod corpus;
pub mod dovecot;

pub mod account;
pub mod certs;
pub mod env;
pub mod mailbox;
pub mod oauth_server;
pub mod server;
