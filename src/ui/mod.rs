//! Terminal-facing helpers: escaping untrusted text.

pub mod progress;
pub mod sanitize;
