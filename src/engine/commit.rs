//! The order deliver → record, and its recovery: the only code that calls a sink's
//! `commit`/`stage`, notes intents in the seen-state and records UIDLs.
//!
//! Invariant 1: a UIDL is recorded only after its message is durable (`Pending::commit`,
//! or a batch's `sync_batch` + `publish_batch`). Invariant 3: an intent (UIDL + the sink's
//! token) is durable in the state before a delivery can become visible, so that after a
//! kill [`recover`] can ask the sink which deliveries finished and record exactly those.

use std::collections::HashSet;
use std::io::Write;

use crate::client::{Listed, Reply};
use crate::crashpoint;
use crate::deliver::{Envelope, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::Uid;
use crate::state::uidl::SeenState;

use super::{Notice, now_unix};

/// A batch is flushed at this many bytes even if it has room for more messages, so that a
/// run of big messages does not hold many unsynced megabytes.
const BATCH_BYTES: u64 = 32 << 20;

/// Deliveries on their way to being recorded: one at a time for sinks that commit each
/// message, a group commit for sinks that batch (Maildir).
///
/// Group commit keeps invariants 1 and 3: each staged message is complete in the sink but
/// neither durable nor visible. [`Committer::flush`] notes every (UIDL, token) in the state
/// as an intent, makes the messages durable together (`Sink::sync_batch`: an fsync of each
/// file), fsyncs the intents, makes the messages visible, and then records them, with one
/// fsync. A kill at any point leaves intents that [`recover`] settles on the next run by
/// asking the sink which deliveries finished, so no message of a batch is delivered twice.
pub(super) struct Committer<'a> {
    sink: &'a mut dyn Sink,
    batching: bool,
    /// Staged: (listing index, token, bytes written).
    staged: Vec<(usize, String, u64)>,
    staged_bytes: u64,
    /// Recorded since the caller last looked: (listing index, bytes written).
    pub(super) recorded: Vec<(usize, u64)>,
}

impl<'a> Committer<'a> {
    pub(super) fn new(sink: &'a mut dyn Sink) -> Committer<'a> {
        let batching = sink.batch_limit() > 1;
        Committer {
            sink,
            batching,
            staged: Vec::new(),
            staged_bytes: 0,
            recorded: Vec::new(),
        }
    }

    /// Whether the staged batch should be flushed now (`last`: nothing more is coming).
    pub(super) fn due(&self, last: bool) -> bool {
        !self.staged.is_empty()
            && (last
                || self.staged.len() >= self.sink.batch_limit()
                || self.staged_bytes >= BATCH_BYTES)
    }

    /// Deliver one message: `header` first, then whatever `body` writes (the RETR answer,
    /// streamed). Without batching the message is committed and recorded before this
    /// returns; with batching it is staged. `Ok(Err(reply))`: the server answered -ERR and
    /// nothing was delivered (the sink's `Pending` was dropped, which removes every trace).
    pub(super) fn deliver(
        &mut self,
        state: &mut SeenState,
        envelope: &Envelope<'_>,
        index: usize,
        header: &[u8],
        body: impl FnOnce(&mut dyn Write) -> Result<std::result::Result<u64, Reply>>,
    ) -> Result<std::result::Result<(), Reply>> {
        let mut pending = self.sink.begin(envelope)?;
        let token = pending.token();
        if !self.batching
            && let Some(token) = &token
        {
            // An mbox append: note where it starts, durably, before the first byte, so
            // that a kill in the middle can be repaired (Sink::recover).
            state.note_intents(&[(envelope.uid, token)], now_unix(), true)?;
        }
        crashpoint::hit("deliver.write", envelope.uid);
        pending
            .write_all(header)
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot write the message", e))?;
        let n = match body(&mut pending)? {
            Ok(n) => n,
            Err(reply) => return Ok(Err(reply)),
        };
        let written = header.len() as u64 + n;
        if self.batching {
            crashpoint::hit("deliver.stage", envelope.uid);
            pending.stage()?;
            self.staged
                .push((index, token.unwrap_or_default(), written));
            self.staged_bytes += written;
        } else {
            crashpoint::hit("deliver.commit", envelope.uid);
            pending.commit()?;
            state.record(&[envelope.uid], now_unix())?;
            self.recorded.push((index, written));
        }
        Ok(Ok(()))
    }

    /// Group commit of the staged messages (see the type's documentation).
    pub(super) fn flush(&mut self, state: &mut SeenState, listing: &[Listed]) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.staged);
        self.staged_bytes = 0;
        let intents: Vec<(&Uid, &str)> = staged
            .iter()
            .map(|(i, token, _)| (&listing[*i].uid, token.as_str()))
            .collect();
        let now = now_unix();
        state.note_intents(&intents, now, false)?;
        crashpoint::hit("batch.sync", staged.len());
        self.sink.sync_batch()?;
        state.sync()?;
        crashpoint::hit("batch.publish", staged.len());
        self.sink.publish_batch()?;
        let uids: Vec<&Uid> = intents.iter().map(|(u, _)| *u).collect();
        state.record(&uids, now)?;
        self.recorded
            .extend(staged.iter().map(|(i, _, bytes)| (*i, *bytes)));
        Ok(())
    }
}

/// Settle deliveries that a killed run started but did not record: ask the sink which of
/// them finished, record those, forget the others (DESIGN.md invariant 3). The tokens go
/// to the sink oldest first, as `Sink::recover` documents.
pub(super) fn recover(state: &mut SeenState, sink: &mut dyn Sink) -> Result<Option<Notice>> {
    if state.unresolved().is_empty() {
        return Ok(None);
    }
    let tokens: Vec<String> = state.unresolved().iter().map(|(_, t)| t.clone()).collect();
    let delivered = sink.recover(&tokens)?;
    let finished = delivered.iter().filter(|d| **d).count();
    state.resolve(&delivered, now_unix())?;
    Ok(Some(Notice::Recovered {
        settled: tokens.len(),
        finished,
    }))
}

/// Forget the recorded UIDLs that are no longer on the server, and those whose deletion the
/// server has just confirmed (`deleted`): a server may give a later message the same UIDL,
/// and that message must count as new, never as seen (issue 9 item 4; a duplicate is
/// acceptable if the server lied, a loss is not). In the common case (every recorded UIDL
/// is still listed, nothing deleted) this costs one lookup per listed message and builds no
/// set; `prune` may still compact the file.
pub(super) fn forget_departed(
    state: &mut SeenState,
    listing: &[Listed],
    deleted: &[usize],
) -> Result<()> {
    let still_listed = listing.iter().filter(|m| state.contains(&m.uid)).count();
    if still_listed == state.len() && deleted.is_empty() {
        return state.prune(|_| true);
    }
    let gone: HashSet<&Uid> = deleted.iter().map(|&i| &listing[i].uid).collect();
    let on_server: HashSet<&Uid> = listing
        .iter()
        .map(|m| &m.uid)
        .filter(|u| !gone.contains(u))
        .collect();
    crashpoint::hit("state.forget", gone.len());
    state.prune(|uid| on_server.contains(uid))
}
