//! One session of a fetch, once logged in and listed: plan, then retrieve → deliver →
//! record → DELE in a pipelined window, QUIT, and forget what left the server. Generic over
//! the connection (`S: Read + Write`) and the sink, so that its unit tests run on an
//! in-memory server and a stub sink, without sockets or disks.
//!
//! It owns the window and the reading of answers in order; the order deliver → record is
//! [`super::commit`]'s, the decisions are [`super::plan`]'s.

use std::collections::{HashSet, VecDeque};
use std::io::{Read, Write};

use crate::client::{Listed, Listing, Op, Reply, Session, Transaction, Window};
use crate::crashpoint;
use crate::deliver::{Envelope, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::sanitize::sanitize;
use crate::proto::{Capabilities, Uid};
use crate::state::uidl::SeenState;

use super::commit::{Committer, Delivered, OnServer, Source, forget_departed};
use super::filter::{Filter, MAX_FILTER_HEADER, Verdict};
use super::plan::{Plan, Policy, plan};
use super::{
    FetchOptions, MessageRef, Notice, Progress, Summary, Unfetched, body_limit, now_unix,
    total_size,
};
use crate::state::too_big::Reported;

/// What a session needs to know of its account (nothing that connects).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The account's name, for messages.
    pub account: String,
    /// The server's name, for messages and the `Received:` header.
    pub host: String,
    /// The protocol word of the `Received:` header (`POP3` or `POP3S`); `None`: no header.
    pub received: Option<&'static str>,
    /// The whole run's policy; `limit` counts for the whole run.
    pub policy: Policy,
    /// While a slow sink commits, send NOOP this often (`None`: never).
    pub keepalive: Option<std::time::Duration>,
    /// mpop's `filter`: judges each new message from its header before it is fetched.
    pub filter: Option<Filter>,
}

impl Settings {
    /// The policy of the next session: the run's, with what is left of its `limit`.
    pub fn session_policy(&self, ledger: &Ledger) -> Policy {
        Policy {
            limit: ledger.remaining(self.policy.limit),
            ..self.policy.clone()
        }
    }
}

/// What the sessions of one run have done so far (a server that caps sessions needs
/// several): the UIDLs delivered, so that `--all` and `--limit` count per run.
#[derive(Debug, Default)]
pub struct Ledger {
    pub fetched: HashSet<Uid>,
    /// The messages the filter said to skip from now on (exit 2), kept in a side file;
    /// `None`: no such file (no filter, or a test).
    pub skipped: Option<Reported>,
    /// The messages the delivery target refused for good (5xx) and that were reported
    /// already, kept in a side file so that each is reported once (issue #14); `None`: no
    /// delivery.
    pub refused: Option<Reported>,
}

impl Ledger {
    /// What is left of the run's `limit`.
    pub fn remaining(&self, limit: Option<usize>) -> Option<usize> {
        limit.map(|l| l.saturating_sub(self.fetched.len()))
    }
}

/// What a session still has to send: the messages to retrieve (in server order) and the
/// ones to delete (DELE first: they are cheap and free the server).
struct Queue {
    fetch: Vec<usize>,
    next: usize,
    delete: VecDeque<usize>,
}

impl Queue {
    /// The next command, tagged with its listing index.
    fn next_op(&mut self, listing: &[Listed]) -> Option<(Op, usize)> {
        if let Some(i) = self.delete.pop_front() {
            crashpoint::hit("pop3.dele", &listing[i].uid);
            return Some((Op::Dele(listing[i].number), i));
        }
        let &i = self.fetch.get(self.next)?;
        self.next += 1;
        Some((Op::Retr(listing[i].number), i))
    }
}

/// Run one session to its QUIT. `sink` is `None` for `--dry-run`. Returns the session's
/// summary; the messages it delivered are added to `ledger`.
#[allow(clippy::too_many_arguments)]
pub fn run_session<S: Read + Write>(
    mut session: Session<S, Transaction>,
    caps: &Capabilities,
    listed: &Listing,
    on_server: &OnServer,
    settings: &Settings,
    opts: &FetchOptions,
    progress: &dyn Progress,
    state: &mut SeenState,
    sink: Option<&mut dyn Sink>,
    ledger: &mut Ledger,
) -> Result<Summary> {
    let name = settings.account.as_str();
    let listing = listed.messages.as_slice();
    let policy = settings.session_policy(ledger);
    let mut plan = plan(
        listing,
        |m| state.first_seen_listed(&m.uid, m.size.0),
        |u| ledger.fetched.contains(u),
        &policy,
        now_unix(),
    );
    if let Some(skipped) = &ledger.skipped {
        plan.fetch.retain(|&i| !skipped.contains(&listing[i].uid));
    }
    let mut unfetched: Vec<(usize, Unfetched)> = plan
        .kill
        .iter()
        .map(|&i| (i, Unfetched::KillSize))
        .collect();
    if let Some(filter) = &settings.filter
        && !plan.fetch.is_empty()
    {
        if !caps.top {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{} does not offer TOP, which `filter` needs to show it the headers",
                    settings.host
                ),
            ));
        }
        let verdicts = filter_pass(
            &mut session,
            listing,
            &plan.fetch,
            caps.pipelining,
            filter,
            name,
        )?;
        let mut skip_now = Vec::new();
        plan.fetch.clear();
        for (i, verdict) in verdicts {
            match verdict {
                Verdict::Fetch => plan.fetch.push(i),
                Verdict::Delete => unfetched.push((i, Unfetched::FilterDelete)),
                Verdict::Skip => {
                    skip_now.push(i);
                    unfetched.push((i, Unfetched::FilterSkip));
                }
                Verdict::Failed(why) => unfetched.push((i, Unfetched::FilterFailed(why))),
            }
        }
        if sink.is_some()
            && let Some(skipped) = &mut ledger.skipped
        {
            // Those skipped before and still listed, and the new ones.
            let keep: Vec<&Uid> = listing
                .iter()
                .map(|m| &m.uid)
                .filter(|u| skipped.contains(u))
                .chain(skip_now.iter().map(|&i| &listing[i].uid))
                .collect();
            skipped.update(keep)?;
        }
    }
    let mut summary = Summary {
        listed: listed.total,
        too_big: plan.too_big.iter().map(|&i| (&listing[i]).into()).collect(),
        deferred: plan.deferred,
        login_delay: caps.login_delay,
        unfetched: unfetched
            .iter()
            .map(|(i, why)| (MessageRef::from(&listing[*i]), why.clone()))
            .collect(),
        ..Summary::default()
    };
    for (i, why) in &unfetched {
        let m = &listing[*i];
        progress.notice(
            name,
            &Notice::Unfetched {
                number: m.number,
                uid: m.uid.clone(),
                why: why.clone(),
                dry_run: sink.is_none(),
            },
        );
    }
    if let Some(crate::proto::Expire::Days(0)) = caps.expire
        && settings.policy.keep
    {
        progress.notice(name, &Notice::ExpireZero);
    }
    // Messages over max_size are in the summary; `cmd` reports them once.
    progress.notice(
        name,
        &Notice::Plan {
            listed: listed.total,
            fetch: plan.fetch.len(),
            delete: plan.delete.len() + unfetched.iter().filter(|(_, w)| w.deletes()).count(),
            delete_fetched: plan.delete_fetched,
        },
    );
    let Some(sink) = sink else {
        // --dry-run: report and leave without changing anything (QUIT with nothing marked).
        summary.would_fetch = plan.fetch.iter().map(|&i| (&listing[i]).into()).collect();
        summary.would_delete = plan.delete.iter().map(|&i| (&listing[i]).into()).collect();
        if plan.delete_fetched {
            summary
                .would_delete
                .extend(summary.would_fetch.iter().cloned());
        }
        session.quit()?;
        return Ok(summary);
    };
    progress.start(name, plan.fetch.len(), total_size(listing, &plan.fetch));
    // A slow sink is kept company by NOOPs, which must not queue behind a RETR the server
    // is still sending: one command at a time then.
    let mut window = Window::new(caps.pipelining && !sink.slow_commit());
    let mut queue = Queue {
        fetch: plan.fetch.clone(),
        next: 0,
        delete: plan
            .delete
            .iter()
            .copied()
            .chain(
                unfetched
                    .iter()
                    .filter(|(_, w)| w.deletes())
                    .map(|(i, _)| *i),
            )
            .collect(),
    };
    let mut outcome = Outcome {
        filter_failed: unfetched
            .iter()
            .filter(|(_, w)| matches!(w, Unfetched::FilterFailed(_)))
            .map(|(i, _)| *i)
            .collect(),
        ..Outcome::default()
    };
    let mut committer = Committer::new(sink, settings.keepalive);
    let local_host = crate::fsutil::hostname();
    let result = exchange(
        &mut session,
        listing,
        settings,
        opts,
        progress,
        state,
        &mut committer,
        &mut window,
        &mut queue,
        &plan,
        &local_host,
        &mut summary,
        &mut outcome,
        ledger,
    );
    // Invariant 4: whatever is complete is made durable and recorded, also on failure.
    let flushed = committer.flush(state, listing);
    for (i, bytes) in committer.recorded.drain(..) {
        delivered(progress, name, &listing[i], bytes, &mut summary, ledger);
    }
    if let Some(reported) = &mut ledger.refused {
        // Refused for good now, or before and neither delivered since nor gone. Advisory:
        // a file we cannot write at worst repeats a report.
        let keep: Vec<&Uid> = listing
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                outcome.refused_for_good.contains(i)
                    || (reported.contains(&m.uid) && !ledger.fetched.contains(&m.uid))
            })
            .map(|(_, m)| &m.uid)
            .collect();
        if let Err(e) = reported.update(keep) {
            log::warn!("{e:#}");
        }
    }
    result?;
    flushed?;
    // QUIT is never pipelined behind RETR: Dovecot, for one, may close the connection with
    // the end of the last message still in its output buffer (seen in the benchmark).
    // Before QUIT makes the deletions happen, note them with their sizes: should this run
    // die before it forgets them, the next can still tell a re-used UIDL (state::uidl).
    let deleting: Vec<(&Uid, u64)> = outcome
        .deleted
        .iter()
        .map(|&i| (&listing[i].uid, listing[i].size.0))
        .collect();
    state.note_deleting(&deleting)?;
    crashpoint::hit("pop3.quit", outcome.deleted.len());
    if deleting.is_empty() {
        // Nothing marked for deletion: the answer to QUIT changes nothing, so do not wait
        // for it (one round trip less per run).
        session.quit_without_waiting()?;
    } else {
        session.quit()?;
    }
    // RFC 1939 section 6: deletions happen in the UPDATE state, after QUIT's +OK.
    summary.deleted = outcome.deleted.len();
    if let Err(e) = forget_departed(state, listing, on_server, &outcome.deleted) {
        if outcome.deleted.is_empty() {
            progress.notice(name, &Notice::PruneFailed(e.to_string()));
        } else {
            // Deleted UIDLs that stay recorded would make a message that re-uses one of
            // them count as seen (and be deleted unread with keep = false): fail loudly.
            return Err(e);
        }
    }
    refusals(settings, listing, &outcome)?;
    Ok(summary)
}

/// What the server refused, and what it deleted (pending QUIT).
#[derive(Default)]
struct Outcome {
    deleted: Vec<usize>,
    refused_retr: Vec<usize>,
    refused_dele: Vec<usize>,
    /// The delivery target refused these (LMTP/SMTP 4xx or 5xx), with the error's kind.
    rejected: Vec<(usize, ErrorKind)>,
    /// Refused for good (5xx) by the delivery target, reported now or by an earlier run.
    refused_for_good: Vec<usize>,
    /// The filter failed for these.
    filter_failed: Vec<usize>,
}

/// Read every answer in order, delivering each message, until nothing is in flight.
#[allow(clippy::too_many_arguments)]
fn exchange<S: Read + Write>(
    session: &mut Session<S, Transaction>,
    listing: &[Listed],
    settings: &Settings,
    opts: &FetchOptions,
    progress: &dyn Progress,
    state: &mut SeenState,
    committer: &mut Committer<'_>,
    window: &mut Window<usize>,
    queue: &mut Queue,
    plan: &Plan,
    local_host: &str,
    summary: &mut Summary,
    outcome: &mut Outcome,
    ledger: &mut Ledger,
) -> Result<()> {
    let name = settings.account.as_str();
    loop {
        if opts.stopping() && !summary.interrupted {
            // The first signal: send nothing new; what is in flight is drained below.
            summary.interrupted = true;
            progress.notice(name, &Notice::Stopping);
        }
        let stopping = summary.interrupted;
        let sent = window.top_up(session, || {
            if stopping {
                None
            } else {
                queue.next_op(listing)
            }
        })?;
        if sent > 0 {
            crashpoint::hit("pop3.sent", sent);
        }
        let Some((op, i)) = window.next_answer() else {
            return Ok(());
        };
        match op {
            Op::Dele(_) => match session.read_dele()? {
                Ok(()) => outcome.deleted.push(i),
                Err(reply) => {
                    progress.notice(name, &refused("DELE", settings, &listing[i], &reply));
                    outcome.refused_dele.push(i);
                }
            },
            Op::Retr(_) | Op::Top(..) if summary.interrupted => {
                // Pipelined ahead of the signal: read and drop it, unrecorded, so that
                // QUIT can be read. It stays new on the server.
                let msg = &listing[i];
                let what = format!("RETR {}", msg.number);
                // A refusal is as good as a body here: nothing was to be delivered.
                let _ = session.read_body_or_refusal(&what, body_limit(msg), &mut |_| Ok(()))?;
            }
            Op::Retr(_) | Op::Top(..) => {
                let msg = &listing[i];
                let envelope = Envelope {
                    account: name,
                    uid: &msg.uid,
                    size: msg.size,
                };
                let header = settings
                    .received
                    .map(|with| received_header(&settings.host, with, local_host, &msg.uid))
                    .unwrap_or_default();
                let mut source = Retr {
                    session: &mut *session,
                    what: format!("RETR {}", msg.number),
                    limit: body_limit(msg),
                    progress,
                    name,
                    lost: None,
                };
                let delivered = committer.deliver(state, &envelope, i, &header, &mut source)?;
                let lost = source.lost.take();
                match delivered {
                    Delivered::Yes => {}
                    Delivered::Refused(reply) => {
                        // A message that vanished since UIDL (another client deleted it) or
                        // that the server will not send: leave it, go on with the others,
                        // and fail the run at the end so that it is noticed.
                        progress.notice(name, &refused("RETR", settings, msg, &reply));
                        outcome.refused_retr.push(i);
                    }
                    Delivered::Rejected(e) => {
                        // The LMTP/SMTP server refused it: unrecorded, it stays on the
                        // server; the others go on. Refused for good (5xx) and reported
                        // by an earlier run: tried again, but not reported again, and it
                        // does not fail this run (issue #14).
                        let for_good = e.kind() != ErrorKind::Temporary;
                        let known = for_good
                            && ledger
                                .refused
                                .as_ref()
                                .is_some_and(|r| r.contains(&msg.uid));
                        if for_good {
                            outcome.refused_for_good.push(i);
                        }
                        if known {
                            log::info!(
                                "{name}: message {} still refused (reported before): {}",
                                msg.number,
                                e.message()
                            );
                        } else {
                            progress.notice(
                                name,
                                &Notice::Rejected {
                                    number: msg.number,
                                    uid: msg.uid.clone(),
                                    text: e.message().to_owned(),
                                },
                            );
                            outcome.rejected.push((i, e.kind()));
                        }
                    }
                }
                if let Some(e) = lost {
                    // The session died during a slow delivery: the delivery itself is
                    // settled above (recorded if it succeeded); nothing more can be sent.
                    return Err(Error::new(
                        e.kind(),
                        format!(
                            "the POP3 session was lost while a message was being delivered \
                             (keep-alive NOOP failed: {}); what was delivered is recorded",
                            e.message()
                        ),
                    ));
                }
            }
        }
        let more_retr = queue.next < queue.fetch.len()
            || window.in_flight().any(|(op, _)| matches!(op, Op::Retr(_)));
        if committer.due(!more_retr || opts.stopping()) {
            committer.flush(state, listing)?;
        }
        for (i, bytes) in committer.recorded.drain(..) {
            delivered(progress, name, &listing[i], bytes, summary, ledger);
            // Invariant 2: DELE only for what is now recorded.
            if plan.delete_fetched && !summary.interrupted {
                queue.delete.push_back(i);
            }
        }
    }
}

/// The RETR answer as a [`Source`] for the committer, which also keeps the session alive
/// with NOOP while a slow sink commits (nothing else is in flight then: a slow sink gets a
/// window of one command).
struct Retr<'a, S> {
    session: &'a mut Session<S, Transaction>,
    what: String,
    limit: u64,
    progress: &'a dyn Progress,
    name: &'a str,
    /// A NOOP failed: the session is gone; no more NOOPs, and the caller fails after the
    /// delivery is settled.
    lost: Option<Error>,
}

impl<S: Read + Write> Source for Retr<'_, S> {
    fn body(&mut self, out: &mut dyn Write) -> Result<std::result::Result<u64, Reply>> {
        let (progress, name) = (self.progress, self.name);
        self.session
            .read_body_or_refusal(&self.what, self.limit, &mut |bytes| {
                progress.bytes(name, bytes.len() as u64);
                out.write_all(bytes)
            })
    }

    fn keepalive(&mut self) {
        if self.lost.is_none() {
            log::debug!("keep-alive during a slow delivery: NOOP");
            if let Err(e) = self.session.noop() {
                self.lost = Some(e);
            }
        }
    }
}

/// `TOP n 0` for each message of `fetch` (pipelined when allowed) and the filter's
/// verdict on each header, in order. A refused TOP is a failed verdict for that message.
fn filter_pass<S: Read + Write>(
    session: &mut Session<S, Transaction>,
    listing: &[Listed],
    fetch: &[usize],
    pipelining: bool,
    filter: &Filter,
    account: &str,
) -> Result<Vec<(usize, Verdict)>> {
    let mut window = Window::new(pipelining);
    let mut ops = fetch.iter().map(|&i| (Op::Top(listing[i].number, 0), i));
    let mut verdicts = Vec::with_capacity(fetch.len());
    loop {
        window.top_up(session, || ops.next())?;
        let Some((_, i)) = window.next_answer() else {
            return Ok(verdicts);
        };
        let m = &listing[i];
        let mut header = Vec::new();
        let answer = session.read_body_or_refusal(
            &format!("TOP {} 0", m.number),
            body_limit(m),
            &mut |bytes| {
                let room = MAX_FILTER_HEADER.saturating_sub(header.len());
                header.extend_from_slice(&bytes[..bytes.len().min(room)]);
                Ok(())
            },
        )?;
        let verdict = match answer {
            Ok(_) => filter.judge(account, &m.uid, m.size.0, &header),
            Err(reply) => Verdict::Failed(format!(
                "the server refused TOP: -ERR {}",
                sanitize(&reply.text)
            )),
        };
        verdicts.push((i, verdict));
    }
}

/// Count a message that is delivered and recorded, and tell the user.
fn delivered(
    progress: &dyn Progress,
    name: &str,
    msg: &Listed,
    bytes: u64,
    summary: &mut Summary,
    ledger: &mut Ledger,
) {
    summary.count_delivered(bytes);
    ledger.fetched.insert(msg.uid.clone());
    progress.delivered(name);
    progress.notice(
        name,
        &Notice::Delivered {
            number: msg.number,
            uid: msg.uid.clone(),
            bytes,
        },
    );
}

/// The notice for a refused command.
fn refused(command: &'static str, settings: &Settings, msg: &Listed, reply: &Reply) -> Notice {
    Notice::Refused {
        command,
        host: settings.host.clone(),
        number: msg.number,
        uid: msg.uid.clone(),
        text: sanitize(&reply.text),
    }
}

/// The run fails at its end when the server refused to send or delete a message, so that
/// it is noticed; the messages stay on the server and are tried again next time.
fn refusals(settings: &Settings, listing: &[Listed], outcome: &Outcome) -> Result<()> {
    let numbers = |v: &[usize]| {
        v.iter()
            .map(|&i| listing[i].number.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut what = Vec::new();
    if !outcome.refused_retr.is_empty() {
        what.push(format!(
            "to send message(s) {} (the others were fetched)",
            numbers(&outcome.refused_retr)
        ));
    }
    if !outcome.refused_dele.is_empty() {
        what.push(format!(
            "to delete message(s) {} (they are recorded as fetched)",
            numbers(&outcome.refused_dele)
        ));
    }
    if what.is_empty() {
        // Refusals by the delivery target, and filter failures: each was reported as it
        // happened; the run fails with 74 when one is permanent, else 75 (try later).
        let rejected: Vec<usize> = outcome.rejected.iter().map(|(i, _)| *i).collect();
        let mut parts = Vec::new();
        if !rejected.is_empty() {
            parts.push(format!(
                "the delivery target refused message(s) {}",
                numbers(&rejected)
            ));
        }
        if !outcome.filter_failed.is_empty() {
            parts.push(format!(
                "the filter failed for message(s) {}",
                numbers(&outcome.filter_failed)
            ));
        }
        if parts.is_empty() {
            return Ok(());
        }
        let permanent = !outcome.filter_failed.is_empty()
            || outcome
                .rejected
                .iter()
                .any(|(_, k)| *k != ErrorKind::Temporary);
        return Err(Error::new(
            if permanent {
                ErrorKind::Io
            } else {
                ErrorKind::Temporary
            },
            format!(
                "{}; they stay on the server and are tried again next time",
                parts.join(" and ")
            ),
        ));
    }
    Err(Error::new(
        ErrorKind::Protocol,
        format!(
            "{} refused {}; they stay on the server and are tried again next time",
            settings.host,
            what.join(" and ")
        ),
    ))
}

/// The `Received:` header prepended to each message (DESIGN.md, Delivery).
fn received_header(host: &str, with: &str, local_host: &str, uid: &Uid) -> Vec<u8> {
    let date = jiff::fmt::rfc2822::to_string(&jiff::ZonedDateTime::now())
        .unwrap_or_else(|_| String::from("Thu, 01 Jan 1970 00:00:00 +0000"));
    format!(
        "Received: from {host} by {local_host} (pop3 {}) with {with}\n\tid {uid}; {date}\n",
        env!("CARGO_PKG_VERSION"),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests;
