//! The fetch algorithm: connect, log in, list, plan, then retrieve → deliver → record → DELE,
//! QUIT, prune. This module and its parts are the only place that knows that order: `plan`
//! (pure decisions), `commit` (deliver → record, and recovery after a kill) and `run` (one
//! session's pipelined loop, generic over the connection and the sink). It prints nothing;
//! it returns a [`Summary`] and logs per-message progress at `info` level (`-v`).
//!
//! # Invariants (DESIGN.md; each has a test that names it, and tests/crash_sim.rs checks
//! them after a crash at every durable step)
//!
//! 1. A message is recorded as seen only after its delivery is durable: `Pending::commit`
//!    (or a batch's `sync_batch` + `publish_batch`) returns only after the file and its
//!    directory are fsynced, the mbox is fsynced, or the MDA exited 0.
//! 2. A message is deleted on the server only after it is recorded as seen: DELE is queued
//!    only for UIDLs that `SeenState::record` has made durable. DELE counts only once QUIT
//!    succeeds; if QUIT fails the messages stay on the server and stay recorded. Once QUIT
//!    has confirmed a deletion, the UIDL is forgotten, so that a message re-using it is new.
//! 3. A dropped connection, a kill or a crash at any point loses nothing and leaves no
//!    partial message: an uncommitted delivery is removed (or never renamed into `new/`),
//!    intents in the state let the next run settle a batch, and the record follows the
//!    commit, so a crash between the two causes at most one duplicate.
//! 4. Once delivery has started, the seen-state is saved even when the session then fails:
//!    each record is durable before the next message is read, so an error path has nothing
//!    left to save.

pub mod commit;
pub mod filter;
pub mod plan;
pub mod run;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::client::Listed;
use crate::config::{Account, Target, TlsMode};
use crate::crashpoint;
use crate::deliver::Sink;
use crate::deliver::maildir::Maildir;
use crate::deliver::mbox::Mbox;
use crate::deliver::mda::Mda;
use crate::deliver::smtp::{Protocol, Smtp};
use crate::error::Result;
use crate::proto::{MessageNumber, Uid};
use crate::session::{self, Connected};
use crate::state::lock::AccountLock;
use crate::state::too_big::Reported;
use crate::state::uidl::SeenState;

pub use plan::{Plan, Policy, plan};
pub use run::{Ledger, Settings};

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

/// What happens during one account's fetch, for `cmd` to show: progress bars and notices.
/// The engine prints nothing itself. Every method has a no-op default.
pub trait Progress: Sync {
    /// Retrieval starts: this many messages of about this many bytes (LIST sizes).
    fn start(&self, _account: &str, _messages: usize, _bytes: u64) {}
    /// Bytes of message data arrived.
    fn bytes(&self, _account: &str, _n: u64) {}
    /// One message is delivered and recorded.
    fn delivered(&self, _account: &str) {}
    /// Something worth telling the user (see [`Notice::is_warning`]).
    fn notice(&self, _account: &str, _notice: &Notice) {}
    /// The account is done (successfully or not).
    fn finish(&self, _account: &str) {}
}

/// Something the user may want to hear about during a fetch. Warnings are shown unless
/// `-q`; the rest with `-v`. Server text in a notice is already sanitised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A session's plan.
    Plan {
        listed: usize,
        fetch: usize,
        delete: usize,
        delete_fetched: bool,
    },
    /// A message is delivered and recorded.
    Delivered {
        number: MessageNumber,
        uid: Uid,
        bytes: u64,
    },
    /// The server announces EXPIRE 0 although the account keeps mail.
    ExpireZero,
    /// The server refused RETR or DELE of a message; the run fails at its end.
    Refused {
        command: &'static str,
        host: String,
        number: MessageNumber,
        uid: Uid,
        text: String,
    },
    /// Deliveries of an interrupted run were settled.
    Recovered { settled: usize, finished: usize },
    /// A server that caps sessions: logging in again.
    Relogin,
    /// A signal: stopping after the message in flight.
    Stopping,
    /// The state file could not be compacted (nothing is lost; it is retried next run).
    PruneFailed(String),
    /// The delivery target (LMTP, SMTP) refused a message; it stays on the server.
    Rejected {
        number: MessageNumber,
        uid: Uid,
        text: String,
    },
    /// A new message is not fetched: killsize or the filter (`dry_run`: would not be).
    Unfetched {
        number: MessageNumber,
        uid: Uid,
        why: Unfetched,
        dry_run: bool,
    },
}

/// Why a new message is not fetched although it is new (besides `max_size` and `--limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfetched {
    /// Bigger than `killsize`: deleted without fetching.
    KillSize,
    /// The filter exited 1: deleted without fetching.
    FilterDelete,
    /// The filter exited 2: left on the server, skipped from now on.
    FilterSkip,
    /// The filter failed (why): left on the server, judged again next run.
    FilterFailed(String),
}

impl Unfetched {
    /// Whether the message is deleted on the server.
    pub fn deletes(&self) -> bool {
        matches!(self, Unfetched::KillSize | Unfetched::FilterDelete)
    }

    /// A short word for tables and `--json`.
    pub fn word(&self) -> &'static str {
        match self {
            Unfetched::KillSize => "killsize",
            Unfetched::FilterDelete => "filter-delete",
            Unfetched::FilterSkip => "filter-skip",
            Unfetched::FilterFailed(_) => "filter-failed",
        }
    }
}

impl std::fmt::Display for Unfetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfetched::KillSize => f.write_str("over killsize: deleted without fetching"),
            Unfetched::FilterDelete => {
                f.write_str("the filter said delete (exit 1): deleted without fetching")
            }
            Unfetched::FilterSkip => {
                f.write_str("the filter said skip (exit 2): left on the server from now on")
            }
            Unfetched::FilterFailed(why) => {
                write!(f, "the filter failed ({why}): left on the server for now")
            }
        }
    }
}

impl Notice {
    /// Whether this is a warning (shown unless `-q`) rather than detail (shown with `-v`).
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Notice::ExpireZero
                | Notice::Refused { .. }
                | Notice::PruneFailed(_)
                | Notice::Rejected { .. }
                | Notice::Unfetched {
                    why: Unfetched::FilterFailed(_),
                    ..
                }
        )
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Plan {
                listed,
                fetch,
                delete,
                delete_fetched,
            } => {
                let each = if *delete_fetched {
                    " (and each one fetched)"
                } else {
                    ""
                };
                write!(
                    f,
                    "{listed} messages on the server, {fetch} to fetch, {delete} to delete{each}"
                )
            }
            Notice::Delivered { number, uid, bytes } => {
                write!(f, "message {number} (UIDL {uid}) delivered, {bytes} bytes")
            }
            Notice::ExpireZero => f.write_str(
                "the server announces EXPIRE 0: it deletes messages once retrieved, although \
                 keep is set",
            ),
            Notice::Refused {
                command,
                host,
                number,
                uid,
                text,
            } => write!(
                f,
                "{host} refused {command} {number} (UIDL {uid}): -ERR {text}"
            ),
            Notice::Recovered { settled, finished } => write!(
                f,
                "settled {settled} deliveries of an interrupted run ({finished} had finished)"
            ),
            Notice::Relogin => f.write_str(
                "the server hands out a limited number of messages per session; logging in again",
            ),
            Notice::Stopping => f.write_str("stopping after the message in flight"),
            Notice::PruneFailed(e) => write!(f, "could not compact the state file: {e}"),
            Notice::Rejected { number, uid, text } => {
                write!(f, "message {number} (UIDL {uid}) not delivered: {text}")
            }
            Notice::Unfetched {
                number,
                uid,
                why,
                dry_run,
            } => {
                let would = if *dry_run { " (dry run)" } else { "" };
                write!(f, "message {number} (UIDL {uid}){would}: {why}")
            }
        }
    }
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
    /// New messages not fetched because of killsize or the filter, and why (with
    /// `dry_run`: what would happen to them).
    pub unfetched: Vec<(MessageRef, Unfetched)>,
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

/// The bound on a message's decoded size, from its LIST size: generous (servers disagree on
/// counting CRLF), but a server streaming far more than it announced is stopped.
pub fn body_limit(listed: &Listed) -> u64 {
    listed.size.0.saturating_mul(2).saturating_add(1 << 20)
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
    let policy = Policy {
        keep: true,
        max_size: account.policy.max_size,
        killsize: account.policy.killsize,
        ..Policy::default()
    };
    // The same listing filter as a fetch: what the plan cannot act on is only counted.
    let now = now_unix();
    let mut on_server = commit::OnServer::new(&state);
    let mut keep = on_server.filter(&state, &policy, now, &account.server.host);
    let (Connected { session, .. }, listed) = session::login_and_list(account, &mut keep)?;
    drop(keep);
    session.quit()?;
    let listing = &listed.messages;
    let plan = plan(
        listing,
        |m| state.first_seen_listed(&m.uid, m.size.0),
        |_| false,
        &policy,
        now,
    );
    Ok(CheckSummary {
        listed: listed.total,
        new: plan.fetch.len(),
        new_bytes: total_size(listing, &plan.fetch),
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
fn open_sink(account: &Account) -> Result<Box<dyn Sink>> {
    // The relay's AUTH password is obtained once, up front: a failing password command
    // stops the account before its POP3 server is touched.
    let relay = |protocol, relay: &crate::config::Relay| -> Result<Box<dyn Sink>> {
        let mut sink = Smtp::new(protocol, relay.clone());
        if let Some(auth) = &relay.auth {
            sink = sink.with_password(crate::secret::obtain_from(
                account,
                &auth.password,
                "deliver.auth_password",
            )?);
        }
        Ok(Box::new(sink))
    };
    Ok(match &account.delivery.target {
        Target::Maildir(dir) => Box::new(Maildir::open(dir)?),
        Target::Mbox(path) => Box::new(Mbox::open(path)?),
        Target::Mda { command, timeout } => Box::new(Mda::new(command.clone(), *timeout)),
        Target::Lmtp(r) => relay(Protocol::Lmtp, r)?,
        Target::Smtp(r) => relay(Protocol::Smtp, r)?,
        Target::Nowhere => {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::Config,
                "no delivery target: set deliver.maildir, deliver.mbox or deliver.mda (or \
                 give --maildir, --mbox or --mda)",
            ));
        }
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
    crashpoint::hit("account.lock", &account.name);
    let mut state = SeenState::load(&state_path)?;
    let mut sink = if opts.dry_run {
        None
    } else {
        Some(open_sink(account)?)
    };
    if let Some(sink) = sink.as_deref_mut()
        && let Some(notice) = commit::recover(&mut state, sink)?
    {
        progress.notice(&account.name, &notice);
    }
    let settings = settings(account, opts);
    let mut ledger = Ledger {
        skipped: settings
            .filter
            .is_some()
            .then(|| Reported::load_skipped(&Reported::skipped_path_for(&state_path))),
        refused: sink
            .is_some()
            .then(|| Reported::load_refused(&Reported::refused_path_for(&state_path))),
        ..Ledger::default()
    };
    let mut total = Summary::default();
    for round in 1.. {
        let mut on_server = commit::OnServer::new(&state);
        let now = now_unix();
        let session_policy = settings.session_policy(&ledger);
        let mut keep = on_server.filter(&state, &session_policy, now, &account.server.host);
        let (Connected { session, caps, .. }, listing) =
            session::login_and_list(account, &mut keep)?;
        drop(keep);
        let capped = caps_sessions(session.greeting());
        let summary = run::run_session(
            session,
            &caps,
            &listing,
            &on_server,
            &settings,
            opts,
            progress,
            &mut state,
            sink.as_deref_mut().map(|s| s as &mut dyn Sink),
            &mut ledger,
        )?;
        // A server that caps sessions (Gmail) hands out more in the next one: go on while
        // a session brings mail and the run's --limit has room.
        let again = capped
            && summary.fetched > 0
            && !summary.interrupted
            && ledger.remaining(settings.policy.limit) != Some(0);
        total.merge(summary);
        if !again || round >= MAX_SESSIONS {
            break;
        }
        progress.notice(&account.name, &Notice::Relogin);
    }
    Ok(total)
}

/// What a session needs of the account and the command line.
fn settings(account: &Account, opts: &FetchOptions) -> Settings {
    Settings {
        account: account.name.clone(),
        host: account.server.host.clone(),
        received: account
            .delivery
            .add_received
            .then_some(if account.server.tls == TlsMode::None {
                "POP3"
            } else {
                "POP3S"
            }),
        policy: Policy {
            all: opts.all,
            limit: opts.limit,
            max_size: account.policy.max_size,
            killsize: account.policy.killsize,
            keep: account.policy.keep,
            delete_after: account.policy.delete_after,
        },
        keepalive: Some(account.delivery.keepalive),
        filter: account.policy.filter.clone().map(|command| filter::Filter {
            command,
            timeout: account.policy.filter_timeout,
        }),
    }
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
    fn count_delivered(&mut self, bytes: u64) {
        self.fetched += 1;
        self.bytes += bytes;
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
        self.unfetched.extend(later.unfetched);
    }
}
