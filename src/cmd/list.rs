//! `pop3 list`: the messages on the server with their number, size, UIDL, whether they are
//! new (not in the seen-state), and the Date, From and Subject from `TOP n 0`, RFC 2047
//! decoded and escaped for the terminal.

use std::io::Write;
use std::process::ExitCode;

use mail_parser::MessageParser;
use serde_json::json;

use super::{Context, overrides, select};
use crate::cli::ListArgs;
use crate::client::{Listed, Op, Session, Transaction, Window};
use crate::config::Overrides;
use crate::engine;
use crate::engine::filter::{Filter, MAX_FILTER_HEADER, Verdict};
use crate::error::{Error, ErrorKind, Result};
use crate::net::Stream;
use crate::proto::sanitize::sanitize;
use crate::session::{self, Connected};
use crate::state::too_big::Reported;
use crate::state::uidl::SeenState;

/// The most header bytes kept per message (TOP may return more; the rest is discarded):
/// what a `filter` would get.
const HEADER_KEEP: usize = MAX_FILTER_HEADER;

/// Date, From and Subject of one message, already sanitised.
#[derive(Debug, Default, Clone)]
struct Headers {
    date: String,
    /// The sender's display name, or the address when there is none.
    from: String,
    from_address: String,
    subject: String,
}

/// Run `pop3 list`.
pub fn run(ctx: &Context, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let over = Overrides {
        no_delivery: true,
        ..overrides(&args.one_off, None, None)
    };
    let named: Vec<String> = args.account.iter().cloned().collect();
    let name = select(&ctx.config, &named, &over)?
        .into_iter()
        .next()
        .flatten();
    let account = ctx.config.resolve(name.as_deref(), &over)?;
    let (state_path, _) = engine::state_paths(&account)?;
    let state = SeenState::load(&state_path)?;
    let (
        Connected {
            mut session, caps, ..
        },
        listing,
    ) = session::login_and_list(&account, &mut |_, _| Ok(true))?;
    let listing = listing.messages;
    let raw = if caps.top {
        fetch_headers(&mut session, &listing, caps.pipelining)?
    } else {
        vec![Vec::new(); listing.len()]
    };
    session.quit()?;
    let headers: Vec<Headers> = raw.iter().map(|r| parse_headers(r)).collect();
    let states = states(&account, &listing, &raw, &state, caps.top, &state_path);

    let mut out = Vec::new();
    if args.json {
        // JSON lines, one object per message, like `fetch --json` and `check --json`.
        for (i, (m, h)) in listing.iter().zip(&headers).enumerate() {
            let row = json!({
                "number": m.number.get(),
                "size": m.size.0,
                "uidl": m.uid.to_string(),
                "state": states[i],
                "date": h.date,
                "from": h.from,
                "from_address": h.from_address,
                "subject": h.subject,
            });
            out.extend_from_slice(row.to_string().as_bytes());
            out.push(b'\n');
        }
    } else {
        print_table(&mut out, &listing, &headers, &states)
            .map_err(|e| Error::with_source(ErrorKind::Internal, "cannot format the table", e))?;
    }
    super::write_stdout_bytes(&out);
    Ok(ExitCode::SUCCESS)
}

fn print_table(
    out: &mut impl Write,
    listing: &[Listed],
    headers: &[Headers],
    states: &[&str],
) -> std::io::Result<()> {
    let num_w = listing
        .last()
        .map_or(3, |m| m.number.to_string().len().max(3));
    let uid_w = listing
        .iter()
        .map(|m| m.uid.to_string().len())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    writeln!(
        out,
        "#{:>num_w$} {:>10} {:<uid_w$} {:<5} {:<16} {:<24} SUBJECT",
        "NUM", "SIZE", "UIDL", "STATE", "DATE", "FROM"
    )?;
    for ((m, h), state) in listing.iter().zip(headers).zip(states) {
        writeln!(
            out,
            " {:>num_w$} {:>10} {:<uid_w$} {:<5} {:<16} {:<24} {}",
            m.number,
            m.size.0,
            m.uid.to_string(),
            state,
            cut(&h.date, 16),
            cut(&h.from, 24),
            h.subject
        )?;
    }
    Ok(())
}

/// The STATE column: `seen`, or for a new message what a fetch would do with it: `new`
/// (fetch), `kill` (over killsize: deleted unfetched), `big` (over max_size: left),
/// `drop` / `skip` / `error` (the filter's exit 1, exit 2 or failure; `skip` also for a
/// message skipped in an earlier run).
fn states(
    account: &crate::config::Account,
    listing: &[Listed],
    raw: &[Vec<u8>],
    state: &SeenState,
    top: bool,
    state_path: &std::path::Path,
) -> Vec<&'static str> {
    let skipped = Reported::load_skipped(&Reported::skipped_path_for(state_path));
    let filter = account.policy.filter.clone().map(|command| Filter {
        command,
        timeout: account.policy.filter_timeout,
    });
    listing
        .iter()
        .zip(raw)
        .map(|(m, header)| {
            if state.contains(&m.uid) {
                return "seen";
            }
            if account.policy.killsize.is_some_and(|k| m.size.0 > k) {
                return "kill";
            }
            if account.policy.max_size.is_some_and(|k| m.size.0 > k) {
                return "big";
            }
            let Some(filter) = &filter else { return "new" };
            if skipped.contains(&m.uid) {
                return "skip";
            }
            if !top {
                return "error";
            }
            match filter.judge(&account.name, &m.uid, m.size.0, header) {
                Verdict::Fetch => "new",
                Verdict::Delete => "drop",
                Verdict::Skip => "skip",
                Verdict::Failed(_) => "error",
            }
        })
        .collect()
}

/// At most `n` characters, with `…` when cut; `-` when empty.
fn cut(s: &str, n: usize) -> String {
    if s.is_empty() {
        return "-".into();
    }
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(n - 1).collect();
    t.push('…');
    t
}

/// `TOP n 0` for every message (pipelined when allowed), keeping the first bytes of each
/// header block (as much as a filter gets).
fn fetch_headers(
    session: &mut Session<Stream, Transaction>,
    listing: &[Listed],
    pipelining: bool,
) -> Result<Vec<Vec<u8>>> {
    let mut window = Window::new(pipelining);
    let mut out = Vec::with_capacity(listing.len());
    let mut ops = listing
        .iter()
        .enumerate()
        .map(|(i, m)| (Op::Top(m.number, 0), i));
    loop {
        window.top_up(session, || ops.next())?;
        let Some((_, i)) = window.next_answer() else {
            return Ok(out);
        };
        let m = &listing[i];
        let mut buf = Vec::new();
        session.read_body(
            &format!("TOP {}", m.number),
            engine::body_limit(m),
            &mut |bytes| {
                let room = HEADER_KEEP.saturating_sub(buf.len());
                buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
                Ok(())
            },
        )?;
        out.push(buf);
    }
}

fn parse_headers(bytes: &[u8]) -> Headers {
    let Some(msg) = MessageParser::default().parse_headers(bytes) else {
        return Headers::default();
    };
    let date = msg
        .date()
        .map(|d| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                d.year, d.month, d.day, d.hour, d.minute
            )
        })
        .unwrap_or_default();
    let sender = msg.from().and_then(|a| a.first());
    let from_address = sender
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    let from = sender
        .and_then(|a| a.name())
        .map_or_else(|| from_address.clone(), str::to_string);
    let subject = msg.subject().unwrap_or_default().to_string();
    Headers {
        date: sanitize(date.as_bytes()),
        from: sanitize(from.as_bytes()),
        from_address: sanitize(from_address.as_bytes()),
        subject: sanitize(subject.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_decoded_and_sanitised() {
        let h = parse_headers(
            b"From: =?utf-8?q?Caf=C3=A9?= <a@b.c>\nSubject: =?utf-8?q?hi_=1B[2J?=\n\
              Date: Mon, 30 Nov 2026 07:26:53 +0000\n\n",
        );
        assert_eq!(h.from, "Café");
        assert_eq!(h.from_address, "a@b.c");
        assert_eq!(h.subject, "hi \\x1b[2J");
        assert_eq!(h.date, "2026-11-30 07:26");
        let bidi = parse_headers("Subject: a\u{202e}b\n\n".as_bytes());
        assert_eq!(bidi.subject, "a\\u{202e}b");
    }

    #[test]
    fn cut_marks_truncation() {
        assert_eq!(cut("", 5), "-");
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abcdefgh", 5), "abcd…");
    }
}
