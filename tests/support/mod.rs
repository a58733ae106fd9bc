//! Shared test support: a temp HOME and config writer, the scripted POP3 server, test
//! certificates, and a private Dovecot instance.
