//! Delivery sinks. A sink hands out one [`Pending`] message at a time; the engine streams the
//! decoded message into it and then calls [`Pending::commit`], which returns only once the
//! message is durable (DESIGN.md invariant 1). Dropping a `Pending` without committing
//! removes every trace of it: no partial message is ever visible in a mailbox.

pub mod envelope;
pub mod maildir;
pub mod mbox;
pub mod mda;

use std::io::Write;

use crate::error::Result;
use crate::proto::{Octets, Uid};

/// What a sink may know about the message it is about to receive (for an MDA's
/// environment, say). The envelope sender is not here: mbox and MDA sinks read it from the
/// message's own `Return-Path:` as it streams in.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The account's name.
    pub account: &'a str,
    /// The message's UIDL.
    pub uid: &'a Uid,
    /// The size the server listed (a hint).
    pub size: Octets,
}

/// A message being delivered.
pub trait Pending: Write {
    /// Make the message durable and visible. After `Ok` the message survives a crash or a
    /// power loss; after `Err` nothing of it is visible.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A delivery target.
pub trait Sink {
    /// Start a new message.
    fn begin(&mut self, envelope: &Envelope<'_>) -> Result<Box<dyn Pending + '_>>;
}
