//! Shared test support: a temp HOME and config writer, the scripted POP3 server, test
//! certificates, and a private Dovecot instance.
#![allow(dead_code)]

pub mod corpus;
pub mod dovecot;

pub mod certs;
pub mod env;
pub mod oauth_server;
pub mod server;
