//! Terminal-facing helpers: progress bars (escaping untrusted text is `proto::sanitize`).

pub mod log_context;
pub mod progress;
