//! The failures the server injects on demand ([`Fault`]) and the helpers that apply the
//! ones not tied to a single command: drop before a reply, close after it, a scripted or
//! endless reply in place of the real one. RETR, STLS and AUTH faults are applied where
//! those commands are answered (`session.rs`, `auth.rs`).

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use super::session::Next;
use super::wire::{Conn, send};
use super::{ENDLESS_LIMIT, ENDLESS_MAX_BYTES};

/// A failure to inject. Verbs are matched case-insensitively; `"GREETING"` stands for the
/// greeting the server sends before any command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `RETR msg` with `+OK` and the first `after` bytes of the dot-stuffed body,
    /// then close the connection (never sending the terminating ".").
    DropInRetr { msg: u32, after: usize },
    /// Answer `RETR msg` with `+OK` and the first `after` bytes of the body, sleep `delay`,
    /// then send the rest (a slow server, or a window in which to kill the client).
    StallInRetr {
        msg: u32,
        after: usize,
        delay: Duration,
    },
    /// Read the command, then close the connection without answering it.
    DropBeforeReply(String),
    /// Answer STLS with `-ERR`.
    RefuseStls,
    /// Leave STLS out of CAPA (and refuse it when asked anyway).
    OmitStls,
    /// Send these bytes in the same write as the `+OK` to STLS, before the TLS handshake.
    ExtraAfterStls(Vec<u8>),
    /// Answer `RETR msg` with `-ERR`.
    RetrErr(u32),
    /// Sleep this long before answering the verb.
    Stall { verb: String, delay: Duration },
    /// Read the command, then send exactly these bytes instead of the answer (nothing is
    /// added: no CRLF, no state change) and go on reading commands. `"GREETING"` replaces
    /// the greeting.
    Reply { verb: String, bytes: Vec<u8> },
    /// Read the command, then send `prefix` and after it `fill` over and over, never
    /// finishing: one byte every `every` (a drip), or as fast as the client reads when
    /// `every` is zero (a flood). Ends when the client goes away, after [`ENDLESS_LIMIT`], or
    /// (a flood) after [`ENDLESS_MAX_BYTES`]; then the connection is dropped.
    Endless {
        verb: String,
        prefix: Vec<u8>,
        fill: Vec<u8>,
        every: Duration,
    },
    /// Answer the verb as usual, then close the connection (`"GREETING"`: close right after
    /// the greeting).
    CloseAfter(String),
    /// Answer `AUTH` (any mechanism) with these raw lines in turn instead of the real
    /// exchange: after each line that is a SASL challenge (starts with `+` but not `+OK`)
    /// one client line is read and recorded. Nothing is added after the last line.
    AuthScript(Vec<Vec<u8>>),
}

impl Fault {
    /// [`Fault::DropBeforeReply`] for `verb`.
    pub fn drop_before_reply(verb: &str) -> Fault {
        Fault::DropBeforeReply(verb.to_string())
    }

    /// [`Fault::Stall`] for `verb`.
    pub fn stall(verb: &str, delay: Duration) -> Fault {
        Fault::Stall {
            verb: verb.to_string(),
            delay,
        }
    }

    /// [`Fault::Reply`]: answer `verb` with exactly `bytes`.
    pub fn reply(verb: &str, bytes: impl AsRef<[u8]>) -> Fault {
        Fault::Reply {
            verb: verb.to_string(),
            bytes: bytes.as_ref().to_vec(),
        }
    }

    /// [`Fault::Endless`] as a drip: `prefix`, then one byte of `fill` (cycled) every
    /// `every`.
    pub fn drip(
        verb: &str,
        prefix: impl AsRef<[u8]>,
        fill: impl AsRef<[u8]>,
        every: Duration,
    ) -> Fault {
        Fault::Endless {
            verb: verb.to_string(),
            prefix: prefix.as_ref().to_vec(),
            fill: fill.as_ref().to_vec(),
            every,
        }
    }

    /// [`Fault::Endless`] as a flood: `prefix`, then `fill` (cycled) as fast as it goes.
    pub fn flood(verb: &str, prefix: impl AsRef<[u8]>, fill: impl AsRef<[u8]>) -> Fault {
        Fault::drip(verb, prefix, fill, Duration::ZERO)
    }

    /// [`Fault::CloseAfter`] for `verb`.
    pub fn close_after(verb: &str) -> Fault {
        Fault::CloseAfter(verb.to_string())
    }

    /// [`Fault::AuthScript`] from text lines (each sent as given, CRLF included).
    pub fn auth_script<S: AsRef<[u8]>>(lines: impl IntoIterator<Item = S>) -> Fault {
        Fault::AuthScript(lines.into_iter().map(|l| l.as_ref().to_vec()).collect())
    }
}

pub(super) fn drops_before(verb: &str, faults: &[Fault]) -> bool {
    faults
        .iter()
        .any(|f| matches!(f, Fault::DropBeforeReply(v) if v.eq_ignore_ascii_case(verb)))
}

pub(super) fn closes_after(verb: &str, faults: &[Fault]) -> bool {
    faults
        .iter()
        .any(|f| matches!(f, Fault::CloseAfter(v) if v.eq_ignore_ascii_case(verb)))
}

/// The [`Fault::Reply`] or [`Fault::Endless`] answer for `verb`, if there is one: `None`
/// when the verb is to be answered as usual.
pub(super) fn hostile(verb: &str, conn: &mut Conn, faults: &[Fault]) -> io::Result<Option<Next>> {
    for fault in faults {
        match fault {
            Fault::Reply { verb: v, bytes } if v.eq_ignore_ascii_case(verb) => {
                send(conn, bytes)?;
                return Ok(Some(Next::Continue));
            }
            Fault::Endless {
                verb: v,
                prefix,
                fill,
                every,
            } if v.eq_ignore_ascii_case(verb) => {
                endless(conn, prefix, fill, *every);
                return Ok(Some(Next::Drop));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Send `prefix`, then `fill` over and over (see [`Fault::Endless`]). Write errors (the
/// client went away) end it.
fn endless(conn: &mut Conn, prefix: &[u8], fill: &[u8], every: Duration) {
    assert!(!fill.is_empty(), "Fault::Endless needs something to send");
    if send(conn, prefix).is_err() {
        return;
    }
    let deadline = Instant::now() + ENDLESS_LIMIT;
    if every.is_zero() {
        let chunk: Vec<u8> = fill.iter().copied().cycle().take(64 * 1024).collect();
        let mut sent = 0;
        while sent < ENDLESS_MAX_BYTES && Instant::now() < deadline {
            if send(conn, &chunk).is_err() {
                return;
            }
            sent += chunk.len();
        }
    } else {
        for &byte in fill.iter().cycle() {
            if Instant::now() >= deadline || send(conn, &[byte]).is_err() {
                return;
            }
            thread::sleep(every);
        }
    }
}
