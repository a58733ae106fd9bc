//! Delivery sinks. A sink hands out one [`Pending`] message at a time; the engine streams the
//! decoded message into it and then calls [`Pending::commit`], which returns only once the
//! message is durable (DESIGN.md invariant 1). Dropping a `Pending` without committing
//! removes every trace of it: no partial message is ever visible in a mailbox.

pub mod maildir;

use std::io::Write;

use crate::error::Result;

/// A message being delivered.
pub trait Pending: Write {
    /// Make the message durable and visible. After `Ok` the message survives a crash or a
    /// power loss; after `Err` nothing of it is visible.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A delivery target.
pub trait Sink {
    /// Start a new message.
    fn begin(&mut self) -> Result<Box<dyn Pending + '_>>;
}
