//! Secrets (passwords, tokens) have their own type, so that no `{:?}`, `{}` or log line can
//! show one by accident: `Debug` and `Display` print `***` in every build profile. The only
//! way to the value is [`Secret::expose`], which the authentication code calls when it
//! writes the value to an encrypted (or explicitly allowed) connection. A leaf: it imports
//! nothing of this crate.

use std::fmt;

/// A secret string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Call only to put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
