//! What the client sent, as the server recorded it per connection: each command line and
//! the raw bytes, split by whether they crossed before or after TLS.

/// One command line as the server read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The line without its CRLF (lossy UTF-8).
    pub line: String,
    /// Whether it arrived inside TLS.
    pub tls: bool,
}

impl Command {
    /// The first word, upper-cased.
    pub fn verb(&self) -> String {
        self.line
            .split(' ')
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }
}

/// What one connection's client sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionLog {
    /// Every byte read before TLS started (all of them on a plain connection).
    pub plain: Vec<u8>,
    /// Every byte read inside TLS, decrypted.
    pub tls: Vec<u8>,
    /// The command lines in order (SASL continuation lines included).
    pub commands: Vec<Command>,
}

impl SessionLog {
    /// The verbs of all commands in order.
    pub fn verbs(&self) -> Vec<String> {
        self.commands.iter().map(Command::verb).collect()
    }

    /// True when a USER, PASS, AUTH or APOP command was sent at all.
    pub fn sent_credentials(&self) -> bool {
        self.commands.iter().any(is_credential)
    }

    /// True when a credential command, or the given password, crossed the connection in
    /// clear.
    pub fn credentials_in_clear(&self, password: &str) -> bool {
        self.commands.iter().any(|c| !c.tls && is_credential(c))
            || contains(&self.plain, password.as_bytes())
    }
}

fn is_credential(c: &Command) -> bool {
    matches!(c.verb().as_str(), "USER" | "PASS" | "AUTH" | "APOP")
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
