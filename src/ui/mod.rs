//! Terminal-facing helpers: escaping untrusted text.

pub mod sanitize;
