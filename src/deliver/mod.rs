//! Delivery sinks. A sink hands out one [`Pending`] message at a time; the engine streams the
//! decoded message into it and then calls [`Pending::commit`], which returns only once the
//! message is durable (DESIGN.md invariant 1). Dropping a `Pending` without committing
//! removes every trace of it: no partial message is ever visible in a mailbox.

pub mod envelope;
mod liveness;
pub mod maildir;
pub mod mbox;
pub mod mda;
pub mod smtp;
pub mod spool;

use std::io::Write;
use std::time::Duration;

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

    /// [`Pending::commit`] for a delivery that may wait a long time on something else (an
    /// MDA, an LMTP or SMTP server): `tick` is called about every `every` while it waits,
    /// so that the caller can keep its POP3 session alive (a NOOP). `tick` must not fail
    /// the delivery; the caller keeps its own errors. Sinks that never wait ignore it.
    fn commit_ticking(self: Box<Self>, every: Duration, tick: &mut dyn FnMut()) -> Result<()> {
        let _ = (every, tick);
        self.commit()
    }

    /// Finish writing the message but leave durability and visibility to the sink's next
    /// [`Sink::sync_batch`] and [`Sink::publish_batch`] (group commit). Sinks that do not
    /// batch ([`Sink::batch_limit`] of 1) commit here.
    fn stage(self: Box<Self>) -> Result<()> {
        self.commit()
    }

    /// A token from which [`Sink::recover`] can tell, after a crash, what became of this
    /// message (a Maildir file name, an mbox offset). The engine notes it in the state
    /// before the message can become visible (DESIGN.md invariant 3).
    fn token(&self) -> Option<String> {
        None
    }
}

/// A delivery target.
pub trait Sink {
    /// Start a new message.
    fn begin(&mut self, envelope: &Envelope<'_>) -> Result<Box<dyn Pending + '_>>;

    /// Whether a commit may wait long on another program or server (an MDA, LMTP, SMTP).
    /// The engine then keeps the POP3 session alive with NOOP during each commit
    /// ([`Pending::commit_ticking`]), and so does not pipeline RETR: a NOOP must never sit
    /// behind a message the server is still sending.
    fn slow_commit(&self) -> bool {
        false
    }

    /// How many staged messages may wait for one `sync_batch`; 1 means no batching.
    fn batch_limit(&self) -> usize {
        1
    }

    /// Make every staged message's content durable (not yet visible).
    fn sync_batch(&mut self) -> Result<()> {
        Ok(())
    }

    /// Make every synced message visible and the visibility durable. On `Err`, none of the
    /// batch is visible.
    fn publish_batch(&mut self) -> Result<()> {
        Ok(())
    }

    /// Called before anything else with the tokens of deliveries an earlier run started but
    /// did not record (it was killed). Returns, per token, whether that message was fully
    /// delivered; the sink may also repair the target (an mbox cut back to before a partial
    /// message).
    fn recover(&mut self, tokens: &[String]) -> Result<Vec<bool>> {
        Ok(vec![false; tokens.len()])
    }
}

/// What the sinks' unit tests deliver: an envelope for account `test`, UIDL `uid-1`.
#[cfg(test)]
pub(crate) fn test_envelope() -> Envelope<'static> {
    static UID: std::sync::LazyLock<Uid> = std::sync::LazyLock::new(|| Uid::new(b"uid-1").unwrap());
    Envelope {
        account: "test",
        uid: &UID,
        size: Octets(10),
    }
}
