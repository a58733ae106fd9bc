//! Shared test support: a temp HOME and config writer, the scripted POP3 server, test
//! certificates, a private Dovecot instance and a private OpenSMTPD.

pub mod corpus;
pub mod dovecot;

pub mod account;
pub mod certs;
pub mod env;
pub mod mailbox;
pub mod mta;
pub mod oauth_server;
pub mod server;
