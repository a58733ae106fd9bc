//! The fetch algorithm: connect, log in, list, plan, then retrieve → deliver → record → DELE,
//! QUIT, prune. This is the only module that knows that order. It prints nothing; it
//! returns a [`Summary`] and logs per-message progress at `info` level (`-v`).
//!
//! # Invariants (DESIGN.md; each has a test that names it)
//!
//! 1. A message is recorded as seen only after its delivery is durable: `Pending::commit`
//!    returns only after the file and its directory are fsynced.
//! 2. A message is deleted on the server only after it is recorded as seen: DELE is queued
//!    only for UIDLs that `SeenState::record` has made durable. DELE counts only once QUIT
//!    succeeds; if QUIT fails the messages stay on the server and stay recorded.
//! 3. A dropped connection, a kill or a crash at any point loses nothing and leaves no
//!    partial message: an uncommitted delivery is removed (or never renamed into `new/`),
//!    and the record follows the commit, so a crash between the two causes at most one
//!    duplicate.
//! 4. Once delivery has started, the seen-state is saved even when the session then fails:
//!    each record is durable before the next message is read, so an error path has nothing
//!    left to save.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{info, warn};

use crate::client::{Listed, Reply, Session, Transaction};
use crate::config::{Account, Delivery, TlsMode};
use crate::deliver::maildir::Maildir;
use crate::deliver::mbox::Mbox;
use crate::deliver::mda::Mda;
use crate::deliver::{Envelope, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::net::Stream;
use crate::proto::command::Command;
use crate::proto::{MessageNumber, Uid};
use crate::session::{self, Connected};
use crate::state::lock::AccountLock;
use crate::state::uidl::SeenState;
use crate::ui::sanitize::sanitize;

/// Commands in flight at once when the server offers PIPELINING. Each is ~12 bytes, so the
/// window (3 KiB) can never fill a socket buffer and deadlock (RFC 2449 section 6.6).
const PIPELINE_WINDOW: usize = 256;

/// The window is topped up only once it has drained this far, so that commands go out in
/// one write (one TLS record) per batch rather than one per message.
const PIPELINE_REFILL: usize = PIPELINE_WINDOW / 2;

/// What `fetch` should do beyond the account's own settings.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Fetch messages already recorded as seen too.
    pub all: bool,
    /// Fetch at most this many messages.
    pub limit: Option<usize>,
    /// Connect, log in and plan, but change nothing.
    pub dry_run: bool,
    /// Set by a signal handler: finish the message in flight, then QUIT.
    pub stop: Option<Arc<AtomicBool>>,
}

impl FetchOptions {
    fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// Progress of one account's fetch, for a progress bar. Every method has a no-op default.
pub trait Progress: Sync {
    /// Retrieval starts: this many messages of about this many bytes (LIST sizes).
    fn start(&self, _account: &str, _messages: usize, _bytes: u64) {}
    /// Bytes of message data arrived.
    fn bytes(&self, _account: &str, _n: u64) {}
    /// One message is delivered and recorded.
    fn delivered(&self, _account: &str) {}
    /// The account is done (successfully or not).
    fn finish(&self, _account: &str) {}
}

/// No progress display.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A message of the listing, as the summary reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub number: MessageNumber,
    pub uid: Uid,
    pub size: u64,
}

impl From<&Listed> for MessageRef {
    fn from(m: &Listed) -> MessageRef {
        MessageRef {
            number: m.number,
            uid: m.uid.clone(),
            size: m.size.0,
        }
    }
}

/// What one fetch did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages on the server.
    pub listed: usize,
    /// Messages delivered.
    pub fetched: usize,
    /// Octets delivered (as written, LF line endings, `Received:` included).
    pub bytes: u64,
    /// Messages deleted on the server (counted only after QUIT succeeded).
    pub deleted: usize,
    /// New messages left on the server because they exceed `max_size`.
    pub too_big: Vec<MessageRef>,
    /// New messages left for a later run by `--limit`.
    pub deferred: usize,
    /// With `dry_run`: what would be fetched and deleted.
    pub would_fetch: Vec<MessageRef>,
    pub would_delete: Vec<MessageRef>,
    /// A signal stopped the run after the message in flight.
    pub interrupted: bool,
    /// The server's LOGIN-DELAY (seconds), if it announced one.
    pub login_delay: Option<u32>,
}

/// The retention and selection policy for one run.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub all: bool,
    pub limit: Option<usize>,
    pub max_size: Option<u64>,
    pub keep: bool,
    pub delete_after: Option<std::time::Duration>,
}

/// What to do with the listing: indexes into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// To retrieve, in server order.
    pub fetch: Vec<usize>,
    /// New but too big.
    pub too_big: Vec<usize>,
    /// New, but beyond `limit`.
    pub deferred: usize,
    /// Already recorded as seen and due for deletion now.
    pub delete: Vec<usize>,
    /// Whether each fetched message is deleted once recorded.
    pub delete_fetched: bool,
}

/// Decide what to fetch and delete. Pure: `first_seen` answers from the seen-state.
/// Only messages already recorded can be in `delete` (invariant 2).
pub fn plan(
    listing: &[Listed],
    first_seen: impl Fn(&Uid) -> Option<i64>,
    policy: &Policy,
    now: i64,
) -> Plan {
    let mut p = Plan {
        delete_fetched: !policy.keep || policy.delete_after.is_some_and(|d| d.is_zero()),
        ..Plan::default()
    };
    for (i, m) in listing.iter().enumerate() {
        let seen = first_seen(&m.uid);
        if policy.all || seen.is_none() {
            if policy.max_size.is_some_and(|max| m.size.0 > max) {
                p.too_big.push(i);
            } else if policy.limit.is_some_and(|l| p.fetch.len() >= l) {
                p.deferred += 1;
            } else {
                p.fetch.push(i);
            }
            continue;
        }
        let Some(first) = seen else { continue };
        let due = !policy.keep
            || policy
                .delete_after
                .is_some_and(|d| now.saturating_sub(first) >= d.as_secs() as i64);
        if due {
            p.delete.push(i);
        }
    }
    p
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The state file and the lock file of an account.
pub fn state_paths(account: &Account) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = crate::config::paths::state_dir()?;
    let key = account.state_key();
    Ok((
        dir.join(format!("{key}.uidl")),
        dir.join(format!("{key}.lock")),
    ))
}

/// The `Received:` header prepended to each message (DESIGN.md, Delivery).
fn received_header(account: &Account, local_host: &str, uid: &Uid) -> Vec<u8> {
    let date = jiff::fmt::rfc2822::to_string(&jiff::ZonedDateTime::now())
        .unwrap_or_else(|_| String::from("Thu, 01 Jan 1970 00:00:00 +0000"));
    let with = if account.tls == TlsMode::None {
        "POP3"
    } else {
        "POP3S"
    };
    format!(
        "Received: from {} by {local_host} (pop3 {}) with {with}\n\tid {uid}; {date}\n",
        account.host,
        env!("CARGO_PKG_VERSION"),
    )
    .into_bytes()
}

/// The bound on a message's decoded size, from its LIST size: generous (servers disagree on
/// counting CRLF), but a server streaming far more than it announced is stopped.
pub fn body_limit(listed: &Listed) -> u64 {
    listed.size.0.saturating_mul(2).saturating_add(1 << 20)
}

/// A response the engine is waiting for, in the order the commands were sent.
enum Awaiting {
    Retr(usize),
    Dele(MessageNumber),
}

/// What `pop3 check` found for one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckSummary {
    /// Messages on the server.
    pub listed: usize,
    /// Messages not yet fetched (within `max_size`).
    pub new: usize,
    /// Their total size as listed.
    pub new_bytes: u64,
    /// New messages bigger than `max_size`.
    pub too_big: usize,
}

/// Count the new messages of an account without downloading anything.
pub fn check(account: &Account) -> Result<CheckSummary> {
    let (state_path, _) = state_paths(account)?;
    let state = SeenState::load(&state_path)?;
    let (Connected { session, .. }, listing) = session::login_and_list(account)?;
    session.quit()?;
    let policy = Policy {
        keep: true,
        max_size: account.max_size,
        ..Policy::default()
    };
    let plan = plan(&listing, |u| state.first_seen(u), &policy, now_unix());
    Ok(CheckSummary {
        listed: listing.len(),
        new: plan.fetch.len(),
        new_bytes: total_size(&listing, &plan.fetch),
        too_big: plan.too_big.len(),
    })
}

/// The listed sizes of `indexes`, added without overflow (a hostile server may list sizes
/// near `u64::MAX`).
fn total_size(listing: &[Listed], indexes: &[usize]) -> u64 {
    indexes
        .iter()
        .fold(0u64, |sum, &i| sum.saturating_add(listing[i].size.0))
}

/// Open the account's delivery target (before connecting: a target we cannot create is
/// exit 73 at once, without touching the server).
fn open_sink(delivery: &Delivery) -> Result<Box<dyn Sink>> {
    Ok(match delivery {
        Delivery::Maildir(dir) => Box::new(Maildir::open(dir)?),
        Delivery::Mbox(path) => Box::new(Mbox::open(path)?),
        Delivery::Mda { command, timeout } => Box::new(Mda::new(command.clone(), *timeout)),
    })
}

/// Fetch new mail for one account (DESIGN.md, "The flow of one fetch").
pub fn fetch(account: &Account, opts: &FetchOptions, progress: &dyn Progress) -> Result<Summary> {
    let result = fetch_inner(account, opts, progress);
    progress.finish(&account.name);
    result
}

fn fetch_inner(account: &Account, opts: &FetchOptions, progress: &dyn Progress) -> Result<Summary> {
    let (state_path, lock_path) = state_paths(account)?;
    let _lock = AccountLock::acquire(&lock_path)?;
    let mut state = SeenState::load(&state_path)?;
    let mut sink = if opts.dry_run {
        None
    } else {
        Some(open_sink(&account.delivery)?)
    };
    if let Some(sink) = sink.as_deref_mut() {
        recover(account, &mut state, sink)?;
    }
    let mut total = Summary::default();
    for round in 1.. {
        let (summary, again) = fetch_session(account, opts, progress, &mut state, &mut sink)?;
        total.merge(summary);
        if !again || round >= MAX_SESSIONS {
            break;
        }
        info!(
            "{}: the server hands out a limited number of messages per session; logging \
             in again",
            account.name
        );
    }
    Ok(total)
}

/// At most this many sessions in one run for servers that cap a session (Gmail).
const MAX_SESSIONS: u32 = 50;

/// Whether a greeting comes from Gmail's POP3 server, which serves at most about 250
/// messages per session and drops fetched messages from later sessions (DESIGN.md, Real
/// servers): one run then logs in again until a session brings nothing new.
fn caps_sessions(greeting: &[u8]) -> bool {
    greeting.windows(4).any(|w| w == b"Gpop")
}

impl Summary {
    /// Count one message that is delivered and recorded.
    fn count_delivered(&mut self, account: &Account, msg: &Listed, bytes: u64) {
        self.fetched += 1;
        self.bytes += bytes;
        info!(
            "{}: message {} (UIDL {}) delivered, {bytes} bytes",
            account.name, msg.number, msg.uid
        );
    }

    /// Add a later session's result to this run's.
    fn merge(&mut self, later: Summary) {
        self.listed = later.listed;
        self.fetched += later.fetched;
        self.bytes += later.bytes;
        self.deleted += later.deleted;
        self.too_big = later.too_big;
        self.deferred = later.deferred;
        self.would_fetch = later.would_fetch;
        self.would_delete = later.would_delete;
        self.interrupted |= later.interrupted;
        self.login_delay = later.login_delay;
    }
}

/// One session: log in, list, plan, retrieve, delete, QUIT. Returns the session's summary
/// and whether another session should follow (a server that caps sessions gave us mail).
fn fetch_session(
    account: &Account,
    opts: &FetchOptions,
    progress: &dyn Progress,
    state: &mut SeenState,
    sink: &mut Option<Box<dyn Sink>>,
) -> Result<(Summary, bool)> {
    let (
        Connected {
            mut session, caps, ..
        },
        listing,
    ) = session::login_and_list(account)?;
    let capped = caps_sessions(session.greeting());
    let policy = Policy {
        all: opts.all,
        limit: opts.limit,
        max_size: account.max_size,
        keep: account.keep,
        delete_after: account.delete_after,
    };
    let plan = plan(&listing, |u| state.first_seen(u), &policy, now_unix());
    let mut summary = Summary {
        listed: listing.len(),
        too_big: plan.too_big.iter().map(|&i| (&listing[i]).into()).collect(),
        deferred: plan.deferred,
        login_delay: caps.login_delay,
        ..Summary::default()
    };
    if let Some(crate::proto::Expire::Days(0)) = caps.expire
        && account.keep
    {
        warn!(
            "{}: the server announces EXPIRE 0: it deletes messages once retrieved, \
             although keep is set",
            account.name
        );
    }
    for m in &summary.too_big {
        warn!(
            "{}: message {} ({} bytes) is bigger than max_size; left on the server",
            account.name, m.number, m.size
        );
    }
    info!(
        "{}: {} messages on the server, {} to fetch, {} to delete",
        account.name,
        listing.len(),
        plan.fetch.len(),
        plan.delete.len()
    );
    let Some(sink) = sink.as_deref_mut() else {
        // --dry-run: report and leave without changing anything (RSET is implied by QUIT
        // with nothing marked).
        summary.would_fetch = plan.fetch.iter().map(|&i| (&listing[i]).into()).collect();
        summary.would_delete = plan.delete.iter().map(|&i| (&listing[i]).into()).collect();
        if plan.delete_fetched {
            summary
                .would_delete
                .extend(summary.would_fetch.iter().cloned());
        }
        session.quit()?;
        return Ok((summary, false));
    };

    progress.start(
        &account.name,
        plan.fetch.len(),
        total_size(&listing, &plan.fetch),
    );
    let window = if caps.pipelining { PIPELINE_WINDOW } else { 1 };
    let local_host = crate::fsutil::hostname();
    let mut to_delete: VecDeque<MessageNumber> =
        plan.delete.iter().map(|&i| listing[i].number).collect();
    let mut in_flight: VecDeque<Awaiting> = VecDeque::new();
    let mut next = 0;
    let mut deleted = 0usize;
    let mut refused: Vec<MessageNumber> = Vec::new();
    let mut committer = Committer::new(sink);
    let mut run = || -> Result<()> {
        loop {
            if opts.stopping() && !summary.interrupted {
                // The first signal: send nothing new; what is in flight is drained below.
                summary.interrupted = true;
                info!("{}: stopping after the message in flight", account.name);
            }
            // Top up when the window has drained to the refill mark (or, without pipelining,
            // when it is empty).
            let refill = window == 1 || in_flight.len() <= PIPELINE_REFILL;
            while refill && in_flight.len() < window && !summary.interrupted {
                if let Some(n) = to_delete.pop_front() {
                    session.send(&Command::Dele(n))?;
                    in_flight.push_back(Awaiting::Dele(n));
                } else if next < plan.fetch.len() {
                    session.send(&Command::Retr(listing[plan.fetch[next]].number))?;
                    in_flight.push_back(Awaiting::Retr(plan.fetch[next]));
                    next += 1;
                } else {
                    break;
                }
            }
            session.flush()?;
            let Some(awaiting) = in_flight.pop_front() else {
                break;
            };
            match awaiting {
                Awaiting::Dele(n) => {
                    session.read_ok(&format!("DELE {n}"), ErrorKind::Protocol)?;
                    deleted += 1;
                }
                Awaiting::Retr(i) if summary.interrupted => {
                    // Pipelined ahead of the signal: read and drop it, unrecorded, so that
                    // QUIT can be read. It stays new on the server.
                    let msg = &listing[i];
                    session.read_body(
                        &format!("RETR {}", msg.number),
                        body_limit(msg),
                        &mut |_| Ok(()),
                    )?;
                }
                Awaiting::Retr(i) => {
                    let msg = &listing[i];
                    let delivered = committer.retrieve(
                        account,
                        &local_host,
                        &mut session,
                        state,
                        msg,
                        i,
                        progress,
                    )?;
                    if let Err(reply) = delivered {
                        // A message that vanished since UIDL (another client deleted it)
                        // or that the server will not send: leave it, go on with the
                        // others, and fail the run at the end so that it is noticed.
                        warn!(
                            "{}: {} refused RETR {} (UIDL {}): -ERR {}",
                            account.name,
                            account.host,
                            msg.number,
                            msg.uid,
                            sanitize(&reply.text)
                        );
                        refused.push(msg.number);
                    }
                }
            }
            let more_retr =
                next < plan.fetch.len() || in_flight.iter().any(|a| matches!(a, Awaiting::Retr(_)));
            if committer.due(!more_retr || opts.stopping()) {
                committer.flush(state, &listing)?;
            }
            for (i, bytes) in committer.recorded.drain(..) {
                let msg = &listing[i];
                summary.count_delivered(account, msg, bytes);
                progress.delivered(&account.name);
                if plan.delete_fetched && !summary.interrupted {
                    to_delete.push_back(msg.number);
                }
            }
        }
        Ok(())
    };
    let outcome = run();
    // Invariant 4: whatever is complete is made durable and recorded, also on failure.
    let flushed = committer.flush(state, &listing);
    for (i, bytes) in committer.recorded.drain(..) {
        summary.count_delivered(account, &listing[i], bytes);
    }
    outcome?;
    flushed?;
    // QUIT is never pipelined behind RETR: Dovecot, for one, may close the connection with
    // the end of the last message still in its output buffer (seen in the benchmark: the
    // last message cut short, once in a few hundred runs).
    session.quit()?;
    // RFC 1939 section 6: deletions happen in the UPDATE state, after QUIT's +OK.
    summary.deleted = deleted;
    if let Err(e) = forget_departed(state, &listing) {
        warn!("{}: could not prune the state file: {e}", account.name);
    }
    if !refused.is_empty() {
        let numbers: Vec<String> = refused.iter().map(|n| n.to_string()).collect();
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "{} refused to send message(s) {} (the others were fetched); they stay on \
                 the server and are tried again next time",
                account.host,
                numbers.join(", ")
            ),
        ));
    }
    let again = capped && summary.fetched > 0 && !summary.interrupted;
    Ok((summary, again))
}

/// Deliveries on their way to being recorded: one at a time for sinks that commit each
/// message, a group commit for sinks that batch (Maildir).
///
/// Group commit keeps invariants 1 and 3: each staged message is complete in the sink but
/// neither durable nor visible. [`Committer::flush`] notes every (UIDL, token) in the state
/// as an intent, makes the messages durable together (one `syncfs`), fsyncs the intents,
/// makes the messages visible, and then records them, with one fsync. A kill at any point
/// leaves intents that [`recover`] settles on the next run by asking the sink which
/// deliveries finished, so no message of a batch is delivered twice.
struct Committer<'a> {
    sink: &'a mut dyn Sink,
    batching: bool,
    /// Staged: (listing index, token, bytes written).
    staged: Vec<(usize, String, u64)>,
    staged_bytes: u64,
    /// Recorded since the caller last looked: (listing index, bytes written).
    recorded: Vec<(usize, u64)>,
}

/// A batch is flushed at this many bytes even if it has room for more messages, so that a
/// run of big messages does not hold many unsynced megabytes.
const BATCH_BYTES: u64 = 32 << 20;

impl<'a> Committer<'a> {
    fn new(sink: &'a mut dyn Sink) -> Committer<'a> {
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
    fn due(&self, last: bool) -> bool {
        !self.staged.is_empty()
            && (last
                || self.staged.len() >= self.sink.batch_limit()
                || self.staged_bytes >= BATCH_BYTES)
    }

    /// Read one RETR answer into a new message of the sink. Without batching the message
    /// is committed and recorded before this returns; with batching it is staged.
    /// `Ok(Err(reply))`: the server answered -ERR and nothing was delivered.
    #[allow(clippy::too_many_arguments)]
    fn retrieve(
        &mut self,
        account: &Account,
        local_host: &str,
        session: &mut Session<Stream, Transaction>,
        state: &mut SeenState,
        msg: &Listed,
        index: usize,
        progress: &dyn Progress,
    ) -> Result<std::result::Result<(), Reply>> {
        let envelope = Envelope {
            account: &account.name,
            uid: &msg.uid,
            size: msg.size,
        };
        let mut pending = self.sink.begin(&envelope)?;
        let token = pending.token();
        if !self.batching
            && let Some(token) = &token
        {
            // An mbox append: note where it starts, durably, before the first byte, so
            // that a kill in the middle can be repaired (Sink::recover).
            state.note_intents(&[(&msg.uid, token)], now_unix(), true)?;
        }
        let mut written = 0u64;
        if account.add_received {
            let header = received_header(account, local_host, &msg.uid);
            pending
                .write_all(&header)
                .map_err(|e| Error::with_source(ErrorKind::Io, "cannot write the message", e))?;
            written += header.len() as u64;
        }
        let what = format!("RETR {}", msg.number);
        let body = session.read_body_or_refusal(&what, body_limit(msg), &mut |bytes| {
            progress.bytes(&account.name, bytes.len() as u64);
            pending.write_all(bytes)
        })?;
        let n = match body {
            Ok(n) => n,
            // Dropping `pending` removes every trace of it.
            Err(reply) => return Ok(Err(reply)),
        };
        written += n;
        if self.batching {
            pending.stage()?;
            self.staged
                .push((index, token.unwrap_or_default(), written));
            self.staged_bytes += written;
        } else {
            pending.commit()?;
            state.record(&[&msg.uid], now_unix())?;
            self.recorded.push((index, written));
        }
        Ok(Ok(()))
    }

    /// Group commit of the staged messages (see the type's documentation).
    fn flush(&mut self, state: &mut SeenState, listing: &[Listed]) -> Result<()> {
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
        self.sink.sync_batch()?;
        state.sync()?;
        self.sink.publish_batch()?;
        let uids: Vec<&Uid> = intents.iter().map(|(u, _)| *u).collect();
        state.record(&uids, now)?;
        self.recorded
            .extend(staged.iter().map(|(i, _, bytes)| (*i, *bytes)));
        Ok(())
    }
}

/// Forget the recorded UIDLs that are no longer on the server. In the common case (every
/// recorded UIDL is still listed) this costs one lookup per listed message and builds no
/// set; `prune` may still compact the file.
fn forget_departed(state: &mut SeenState, listing: &[Listed]) -> Result<()> {
    let still_listed = listing.iter().filter(|m| state.contains(&m.uid)).count();
    if still_listed == state.len() {
        return state.prune(|_| true);
    }
    let on_server: HashSet<&Uid> = listing.iter().map(|m| &m.uid).collect();
    state.prune(|uid| on_server.contains(uid))
}

/// Settle deliveries that a killed run started but did not record: ask the sink which of
/// them finished, record those, forget the others (DESIGN.md invariant 3).
fn recover(account: &Account, state: &mut SeenState, sink: &mut dyn Sink) -> Result<()> {
    if state.unresolved().is_empty() {
        return Ok(());
    }
    let tokens: Vec<String> = state.unresolved().iter().map(|(_, t)| t.clone()).collect();
    let delivered = sink.recover(&tokens)?;
    let finished = delivered.iter().filter(|d| **d).count();
    info!(
        "{}: settled {} deliveries of an interrupted run ({finished} had finished)",
        account.name,
        tokens.len()
    );
    state.resolve(&delivered, now_unix())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Octets;
    use std::time::Duration;

    fn listing(n: u32) -> Vec<Listed> {
        (1..=n)
            .map(|i| Listed {
                number: MessageNumber::new(i).unwrap(),
                size: Octets(u64::from(i) * 100),
                uid: Uid::new(format!("u{i}").as_bytes()).unwrap(),
            })
            .collect()
    }

    fn seen(uids: &'static [(&'static str, i64)]) -> impl Fn(&Uid) -> Option<i64> {
        move |u: &Uid| {
            uids.iter()
                .find(|(s, _)| s.as_bytes() == u.as_bytes())
                .map(|(_, t)| *t)
        }
    }

    #[test]
    fn keep_fetches_only_new_and_deletes_nothing() {
        let policy = Policy {
            keep: true,
            ..Policy::default()
        };
        let p = plan(&listing(3), seen(&[("u2", 0)]), &policy, 1000);
        assert_eq!(p.fetch, [0, 2]);
        assert!(p.delete.is_empty() && !p.delete_fetched);
    }

    #[test]
    fn delete_policy_deletes_only_what_is_recorded_or_fetched() {
        // Invariant 2: only recorded messages are planned for DELE up front; fetched ones
        // are deleted by the engine after their record.
        let policy = Policy::default();
        let p = plan(&listing(3), seen(&[("u2", 0)]), &policy, 1000);
        assert_eq!(p.fetch, [0, 2]);
        assert_eq!(p.delete, [1]);
        assert!(p.delete_fetched);
    }

    #[test]
    fn delete_after_counts_from_first_seen() {
        let policy = Policy {
            keep: true,
            delete_after: Some(Duration::from_secs(100)),
            ..Policy::default()
        };
        let p = plan(&listing(3), seen(&[("u1", 0), ("u2", 950)]), &policy, 1000);
        assert_eq!(p.delete, [0], "u1 is 1000 s old, u2 only 50 s");
        assert_eq!(p.fetch, [2]);
        assert!(!p.delete_fetched);
    }

    #[test]
    fn max_size_and_limit() {
        let policy = Policy {
            keep: true,
            max_size: Some(250),
            limit: Some(1),
            ..Policy::default()
        };
        let p = plan(&listing(4), seen(&[]), &policy, 0);
        assert_eq!(p.fetch, [0]);
        assert_eq!(p.deferred, 1);
        assert_eq!(p.too_big, [2, 3]);
    }

    #[test]
    fn all_refetches_seen_messages() {
        let policy = Policy {
            keep: true,
            all: true,
            ..Policy::default()
        };
        let p = plan(&listing(2), seen(&[("u1", 0), ("u2", 0)]), &policy, 0);
        assert_eq!(p.fetch, [0, 1]);
        assert!(p.delete.is_empty());
    }
}
