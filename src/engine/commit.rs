//! The order deliver → record, and its recovery: the only code that calls a sink's
//! `commit`/`stage`, notes intents in the seen-state and records UIDLs.
//!
//! Invariant 1: a UIDL is recorded only after its message is durable (`Pending::commit`,
//! or a batch's `sync_batch` + `publish_batch`). Invariant 3: an intent (UIDL + the sink's
//! token) is durable in the state before a delivery can become visible, so that after a
//! kill [`recover`] can ask the sink which deliveries finished and record exactly those.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

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
    /// For a sink whose commit may wait long: how often the source's keep-alive runs.
    keepalive: Option<Duration>,
    /// Staged: (listing index, token, bytes written).
    staged: Vec<(usize, String, u64)>,
    staged_bytes: u64,
    /// Recorded since the caller last looked: (listing index, bytes written).
    pub(super) recorded: Vec<(usize, u64)>,
}

impl<'a> Committer<'a> {
    /// `keepalive`: how often to keep the POP3 session alive while a slow sink commits.
    pub(super) fn new(sink: &'a mut dyn Sink, keepalive: Option<Duration>) -> Committer<'a> {
        let batching = sink.batch_limit() > 1;
        let keepalive = keepalive.filter(|_| sink.slow_commit());
        Committer {
            sink,
            batching,
            keepalive,
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

    /// Deliver one message: `header` first, then what `source` writes (the RETR answer,
    /// streamed). Without batching the message is committed and recorded before this
    /// returns; with batching it is staged. [`Delivered::Refused`]: the server answered
    /// -ERR; [`Delivered::Rejected`]: the target refused this message. Either way nothing
    /// was delivered (the sink's `Pending` was dropped, which removes every trace).
    pub(super) fn deliver(
        &mut self,
        state: &mut SeenState,
        envelope: &Envelope<'_>,
        index: usize,
        header: &[u8],
        source: &mut dyn Source,
    ) -> Result<Delivered> {
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
        let n = match source.body(&mut pending)? {
            Ok(n) => n,
            Err(reply) => return Ok(Delivered::Refused(reply)),
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
            let committed = match self.keepalive {
                Some(every) => pending.commit_ticking(every, &mut || source.keepalive()),
                None => pending.commit(),
            };
            match committed {
                Ok(()) => {}
                Err(e) if e.is_per_message() => return Ok(Delivered::Rejected(e)),
                Err(e) => return Err(e),
            }
            state.record(&[envelope.uid], now_unix())?;
            self.recorded.push((index, written));
        }
        Ok(Delivered::Yes)
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

/// Where a message comes from: the server's answer to RETR, read while it is delivered.
pub(super) trait Source {
    /// Stream the message into `out`; `Ok(Err(reply))` when the server refused to send it.
    fn body(&mut self, out: &mut dyn Write) -> Result<std::result::Result<u64, Reply>>;
    /// Called while a slow sink commits ([`crate::deliver::Pending::commit_ticking`]):
    /// keep the session alive. Never fails the delivery; the source keeps its own error.
    fn keepalive(&mut self);
}

/// What became of one message handed to [`Committer::deliver`].
#[derive(Debug)]
pub(super) enum Delivered {
    /// Delivered (committed and recorded, or staged in a batch).
    Yes,
    /// The POP3 server answered -ERR to RETR.
    Refused(Reply),
    /// The delivery target refused this message ([`Error::is_per_message`]).
    Rejected(Error),
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

/// Which UIDLs the server listed in this session, and the listing filter built on it: a
/// message already recorded is left out of the listing unless the plan may act on it (due
/// for deletion, `--all`, or a deletion note that makes its size matter), so that a mailbox
/// of 100 000 seen messages costs a 64-bit hash each here instead of a listing entry. A
/// UIDL listed twice is refused, as the listing itself refuses it (with a repeated UIDL we
/// could not tell which message was delivered).
///
/// The hashes are keyed anew in every run. Two UIDLs with the same hash (about one chance
/// in 10^9 for a mailbox of 100 000) can only make a departed UIDL stay recorded (harmless)
/// or be taken for a repeated UIDL (the run fails, and the next, with other keys, does
/// not): never a loss.
pub struct OnServer {
    key: std::hash::RandomState,
    listed: HashSet<u64>,
    /// How many of the listed UIDLs are recorded in the state, and how many the state held
    /// when the listing began: equal when no recorded UIDL has left the server.
    recorded: usize,
    state_len: usize,
}

impl OnServer {
    /// Ready for a session's listing, against the state as it is now.
    pub fn new(state: &SeenState) -> OnServer {
        OnServer {
            key: Default::default(),
            // Most listed UIDLs are usually recorded ones: no regrowth on the way.
            listed: HashSet::with_capacity(state.len()),
            recorded: 0,
            state_len: state.len(),
        }
    }

    fn hash(&self, uid: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.key.hash_one(uid)
    }

    /// The listing filter ([`crate::client::Keep`]) for `uid`: note it, and say whether the
    /// session needs it in the listing.
    pub fn keep(
        &mut self,
        state: &SeenState,
        policy: &super::Policy,
        now: i64,
        host: &str,
        uid: &Uid,
    ) -> Result<bool> {
        if !self.listed.insert(self.hash(uid.as_bytes())) {
            return Err(Error::new(
                ErrorKind::BadData,
                format!(
                    "{host} gave two messages the same UIDL {uid}; refusing to guess which \
                     one was fetched"
                ),
            ));
        }
        let Some(first) = state.first_seen(uid) else {
            return Ok(true);
        };
        self.recorded += 1;
        Ok(policy.all || super::plan::due(policy, first, now) || state.deletion_noted(uid))
    }

    /// [`OnServer::keep`] as the listing filter of a session (`policy` is the session's,
    /// `now` when it began).
    pub fn filter<'a>(
        &'a mut self,
        state: &'a SeenState,
        policy: &'a super::Policy,
        now: i64,
        host: &'a str,
    ) -> impl FnMut(crate::proto::MessageNumber, &Uid) -> Result<bool> + 'a {
        move |_, uid| self.keep(state, policy, now, host, uid)
    }

    /// Whether the server listed the UIDL `uid` in this session.
    pub fn contains(&self, uid: &[u8]) -> bool {
        self.listed.contains(&self.hash(uid))
    }
}

/// Forget the recorded UIDLs that are no longer on the server, and those whose deletion the
/// server has just confirmed (`deleted`, indexes into `listing`): a server may give a later
/// message the same UIDL, and that message must count as new, never as seen (issue 9 item
/// 4; a duplicate is acceptable if the server lied, a loss is not). In the common case
/// (every recorded UIDL is still listed, nothing deleted) nothing is looked up; `prune` may
/// still compact the file.
pub(super) fn forget_departed(
    state: &mut SeenState,
    listing: &[Listed],
    on_server: &OnServer,
    deleted: &[usize],
) -> Result<()> {
    if on_server.recorded == on_server.state_len && deleted.is_empty() {
        return state.prune(|_| true);
    }
    let gone: HashSet<&[u8]> = deleted.iter().map(|&i| listing[i].uid.as_bytes()).collect();
    crashpoint::hit("state.forget", gone.len());
    state.prune(|uid| on_server.contains(uid) && !gone.contains(uid))
}
