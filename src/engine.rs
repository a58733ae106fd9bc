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
use std::time::{SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};

use crate::client::{Authorization, Listed, Session, Transaction};
use crate::config::{Account, AuthMech, Delivery, TlsMode};
use crate::deliver::{Envelope, Sink};
use crate::deliver::maildir::Maildir;
use crate::error::{Error, ErrorKind, Result};
use crate::net::{self, Stream, tls};
use crate::proto::command::Command;
use crate::proto::{Capabilities, MessageNumber, Uid};
use crate::secret::{self, Secret};
use crate::state::lock::AccountLock;
use crate::state::uidl::SeenState;
use crate::ui::sanitize::sanitize;

/// Commands in flight at once when the server offers PIPELINING. Each is ~12 bytes, so the
/// window can never fill a socket buffer and deadlock (RFC 2449 section 6.6).
const PIPELINE_WINDOW: usize = 64;

/// What `fetch` should do beyond the account's own settings.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Fetch messages already recorded as seen too.
    pub all: bool,
}

/// What one fetch did.
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
}

/// A logged-in session and what the server announced after login.
pub struct Connected {
    pub session: Session<Stream, Transaction>,
    pub caps: Capabilities,
    /// TLS version and cipher, when encrypted.
    pub tls: Option<String>,
}

/// Connect, secure the connection as the account says, and log in.
pub fn login(account: &Account, password: &Secret) -> Result<Connected> {
    let host = account.host.as_str();
    let timeout = account.timeout;
    let tcp = net::connect(host, account.port, timeout)?;
    let mut session: Session<Stream, Authorization> = match account.tls {
        TlsMode::Implicit => {
            let config = tls::config(account.tls_ca_file.as_deref())?;
            let stream = tls::handshake(config, host, tcp)?;
            Session::connect(stream, host, timeout)?
        }
        TlsMode::Starttls => {
            let mut plain = Session::connect(Stream::Plain(tcp), host, timeout)?;
            let caps = plain.capa()?;
            if !caps.stls {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{host} does not offer STLS, so the connection cannot be encrypted; \
                         no password was sent (someone may be stripping STLS, or use \
                         tls = \"implicit\" on port 995)"
                    ),
                ));
            }
            let config = tls::config(account.tls_ca_file.as_deref())?;
            let (raw, greeting) = plain.stls()?;
            let Stream::Plain(tcp) = raw else {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "STLS on an encrypted stream",
                ));
            };
            let stream = tls::handshake(config, host, tcp)?;
            Session::resume(stream, host, timeout, greeting)
        }
        TlsMode::None => Session::connect(Stream::Plain(tcp), host, timeout)?,
    };
    debug!(
        "{}: greeting: {}",
        account.name,
        sanitize(session.greeting())
    );
    let caps = session.capa()?;
    let encrypted = account.tls != TlsMode::None;
    let session = match account.auth {
        AuthMech::Auto | AuthMech::User => {
            if !encrypted && !account.allow_plaintext_password {
                // config::resolve refuses this already; this is the last line of defence.
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!("{}: refusing to send a password unencrypted", account.name),
                ));
            }
            if !caps.user && !caps.sasl.is_empty() {
                debug!("{host} does not list USER in CAPA; trying USER/PASS anyway");
            }
            match session.login_user_pass(&account.user, password) {
                Ok(s) => s,
                Err(failed) => {
                    let (e, s) = *failed;
                    let _ = s.quit();
                    return Err(e);
                }
            }
        }
    };
    let tls = session.stream().tls_description();
    let mut session = session;
    // Some servers list TOP or PIPELINING only after login (Gmail), so ask again.
    let after = session.capa()?;
    let caps = if after == Capabilities::default() {
        caps
    } else {
        after
    };
    Ok(Connected { session, caps, tls })
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
fn body_limit(listed: &Listed) -> u64 {
    listed.size.0.saturating_mul(2).saturating_add(1 << 20)
}

/// A response the engine is waiting for, in the order the commands were sent.
enum Awaiting {
    Retr(usize),
    Dele(MessageNumber),
}

/// Fetch new mail for one account (DESIGN.md, "The flow of one fetch").
pub fn fetch(account: &Account, opts: &FetchOptions) -> Result<Summary> {
    let (state_path, lock_path) = state_paths(account)?;
    let _lock = AccountLock::acquire(&lock_path)?;
    let mut state = SeenState::load(&state_path)?;
    // Open the target before connecting: a Maildir we cannot create is exit 73 at once.
    let Delivery::Maildir(dir) = &account.delivery;
    let mut sink = Maildir::open(dir)?;
    let password = secret::obtain(account)?;

    let Connected {
        mut session,
        caps,
        tls,
    } = login(account, &password)?;
    drop(password);
    if let Some(t) = tls {
        debug!("{}: {t}", account.name);
    }
    let listing = session.listing(caps.pipelining)?;
    let mut summary = Summary {
        listed: listing.len(),
        ..Summary::default()
    };
    let plan: Vec<&Listed> = listing
        .iter()
        .filter(|m| opts.all || !state.contains(&m.uid))
        .collect();
    let delete = !account.keep;
    // Messages recorded by an earlier run (kept then, or whose QUIT failed) are deleted
    // now too when the policy says delete: they are durable, so invariant 2 holds.
    let mut to_delete: VecDeque<MessageNumber> = if delete {
        let planned: HashSet<MessageNumber> = plan.iter().map(|m| m.number).collect();
        listing
            .iter()
            .filter(|m| state.contains(&m.uid) && !planned.contains(&m.number))
            .map(|m| m.number)
            .collect()
    } else {
        VecDeque::new()
    };
    info!(
        "{}: {} messages on the server, {} to fetch",
        account.name,
        listing.len(),
        plan.len()
    );

    let window = if caps.pipelining { PIPELINE_WINDOW } else { 1 };
    let local_host = crate::fsutil::hostname();
    let mut in_flight: VecDeque<Awaiting> = VecDeque::new();
    let mut next = 0;
    let mut deleted = 0usize;
    loop {
        while in_flight.len() < window {
            if let Some(n) = to_delete.pop_front() {
                session.send(&Command::Dele(n))?;
                in_flight.push_back(Awaiting::Dele(n));
            } else if next < plan.len() {
                session.send(&Command::Retr(plan[next].number))?;
                in_flight.push_back(Awaiting::Retr(next));
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
            Awaiting::Retr(i) => {
                let msg = plan[i];
                let what = format!("RETR {}", msg.number);
                let envelope = Envelope {
                    account: &account.name,
                    uid: &msg.uid,
                    size: msg.size,
                };
                let mut pending = sink.begin(&envelope)?;
                let mut written = 0u64;
                if account.add_received {
                    let header = received_header(account, &local_host, &msg.uid);
                    pending.write_all(&header).map_err(|e| {
                        Error::with_source(ErrorKind::Io, "cannot write the message", e)
                    })?;
                    written += header.len() as u64;
                }
                written += session.read_body(&what, body_limit(msg), &mut |bytes| {
                    pending.write_all(bytes)
                })?;
                pending.commit()?;
                state.record(&[&msg.uid], now_unix())?;
                summary.fetched += 1;
                summary.bytes += written;
                info!(
                    "{}: message {} (UIDL {}) delivered, {written} bytes",
                    account.name, msg.number, msg.uid
                );
                if delete {
                    to_delete.push_back(msg.number);
                }
            }
        }
    }
    session.quit()?;
    // RFC 1939 section 6: deletions happen in the UPDATE state, after QUIT's +OK.
    summary.deleted = deleted;
    let on_server: HashSet<&Uid> = listing.iter().map(|m| &m.uid).collect();
    if let Err(e) = state.prune(|uid| on_server.contains(uid)) {
        warn!("{}: could not prune the state file: {e}", account.name);
    }
    Ok(summary)
}
