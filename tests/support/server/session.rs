//! The connection side: the accept loop, one thread per connection, the command loop, and
//! the RFC 1939 state of one session (AUTHORIZATION, TRANSACTION, UPDATE). SASL exchanges
//! live in `auth.rs`; bytes on the wire in `wire.rs`.

use std::io::{self, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::faults::{Fault, closes_after, drops_before, hostile};
use super::log::{Command, SessionLog};
use super::tls::{Stream, tls_stream, upgrade};
use super::wire::{Conn, Recorder, dot_stuff, drop_connection, multiline, read_line, send, top};
use super::{Message, Shared, TlsMode, lock};

pub(super) fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    max: usize,
    deadline: Instant,
) {
    let mut accepted = 0;
    while accepted < max && !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match listener.accept() {
            Ok((tcp, _)) => {
                accepted += 1;
                // Count the connection before the test can look, so wait_idle sees it.
                shared.active.fetch_add(1, Ordering::SeqCst);
                let idx = {
                    let mut sessions = lock(&shared.sessions);
                    sessions.push(SessionLog::default());
                    sessions.len() - 1
                };
                let shared = shared.clone();
                let spawned = thread::Builder::new()
                    .name(format!("pop3-test-conn-{idx}"))
                    .spawn(move || {
                        let _ = serve(&shared, tcp, idx);
                        shared.active.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    // The listener is dropped here: later connection attempts are refused.
}

/// What the connection loop does after a command.
pub(super) enum Next {
    Continue,
    /// The session ended normally (QUIT answered).
    Close,
    /// Close abruptly without another byte.
    Drop,
    /// STLS was answered `+OK`: start the TLS handshake.
    StartTls,
}

fn serve(shared: &Arc<Shared>, tcp: TcpStream, idx: usize) -> io::Result<()> {
    let config = &shared.config;
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(config.io_timeout))?;
    tcp.set_write_timeout(Some(config.io_timeout))?;
    tcp.set_nodelay(true)?;
    let (stream, tls) = match config.tls {
        TlsMode::Implicit => (tls_stream(config, tcp)?, true),
        TlsMode::None | TlsMode::Starttls => (Stream::Plain(tcp), false),
    };
    let mut conn = BufReader::new(Recorder {
        inner: stream,
        tls,
        shared: shared.clone(),
        idx,
    });
    let mut session = Session {
        shared: shared.clone(),
        idx,
        tls,
        user: None,
        maildrop: None,
        deleted: Vec::new(),
    };

    let faults = session.faults();
    session.stall("GREETING", &faults);
    if drops_before("GREETING", &faults) {
        drop_connection(conn);
        return Ok(());
    }
    match hostile("GREETING", &mut conn, &faults)? {
        Some(Next::Continue) => {}
        Some(_) => {
            drop_connection(conn);
            return Ok(());
        }
        None => send(&mut conn, format!("{}\r\n", config.greeting).as_bytes())?,
    }
    if closes_after("GREETING", &faults) {
        drop_connection(conn);
        return Ok(());
    }

    loop {
        let Some(line) = read_line(&mut conn)? else {
            return Ok(());
        };
        session.record(&line);
        match session.handle(&mut conn, &line)? {
            Next::Continue => {}
            Next::Close => return Ok(()),
            Next::Drop => {
                drop_connection(conn);
                return Ok(());
            }
            Next::StartTls => {
                conn = upgrade(conn, config)?;
                session.tls = true;
            }
        }
    }
}

/// One connection's POP3 state.
pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    /// This connection's entry in the session log.
    idx: usize,
    tls: bool,
    /// The name given with USER.
    user: Option<String>,
    /// TRANSACTION state: the mailbox as it was at login.
    maildrop: Option<Vec<Message>>,
    /// DELE marks, by message number - 1.
    deleted: Vec<bool>,
}

impl Session {
    fn faults(&self) -> Vec<Fault> {
        lock(&self.shared.faults).clone()
    }

    fn stall(&self, verb: &str, faults: &[Fault]) {
        for fault in faults {
            if let Fault::Stall { verb: v, delay } = fault
                && v.eq_ignore_ascii_case(verb)
            {
                thread::sleep(*delay);
            }
        }
    }

    pub(super) fn record(&self, line: &str) {
        lock(&self.shared.sessions)[self.idx]
            .commands
            .push(Command {
                line: line.to_string(),
                tls: self.tls,
            });
    }

    /// Answer one command, with the faults that apply to it.
    fn handle(&mut self, conn: &mut Conn, line: &str) -> io::Result<Next> {
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let faults = self.faults();
        self.stall(&verb, &faults);
        if drops_before(&verb, &faults) {
            return Ok(Next::Drop);
        }
        if let Some(next) = hostile(&verb, conn, &faults)? {
            return Ok(next);
        }
        if verb == "AUTH" && self.maildrop.is_none() {
            let script = faults.iter().find_map(|f| match f {
                Fault::AuthScript(lines) => Some(lines.clone()),
                _ => None,
            });
            if let Some(script) = script {
                return self.auth_script(conn, &script);
            }
        }
        let next = self.answer(conn, line, &faults)?;
        if matches!(next, Next::Continue) && closes_after(&verb, &faults) {
            return Ok(Next::Drop);
        }
        Ok(next)
    }

    /// Send the lines of a [`Fault::AuthScript`], reading a client line after each
    /// challenge.
    fn auth_script(&mut self, conn: &mut Conn, script: &[Vec<u8>]) -> io::Result<Next> {
        for line in script {
            send(conn, line)?;
            if line.starts_with(b"+") && !line.starts_with(b"+OK") {
                let Some(answer) = read_line(conn)? else {
                    return Ok(Next::Close);
                };
                self.record(&answer);
            }
        }
        Ok(Next::Continue)
    }

    /// Answer one command as a (fault-free) server would.
    fn answer(&mut self, conn: &mut Conn, line: &str, faults: &[Fault]) -> io::Result<Next> {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        let config = &self.shared.config;
        let reply = match verb.as_str() {
            "CAPA" => {
                let mut capa = config.capa.clone();
                if config.tls == TlsMode::Starttls
                    && !self.tls
                    && self.maildrop.is_none()
                    && !faults.contains(&Fault::OmitStls)
                {
                    capa.push("STLS".to_string());
                }
                multiline("+OK Capability list follows", &capa)
            }
            "QUIT" => {
                self.update();
                send(conn, b"+OK bye\r\n")?;
                return Ok(Next::Close);
            }
            "NOOP" if self.maildrop.is_some() => "+OK\r\n".to_string(),
            "STLS" => {
                let refused =
                    faults.contains(&Fault::RefuseStls) || faults.contains(&Fault::OmitStls);
                if config.tls != TlsMode::Starttls || self.tls || self.maildrop.is_some() {
                    "-ERR STLS not available\r\n".to_string()
                } else if refused {
                    "-ERR TLS not available right now\r\n".to_string()
                } else {
                    let mut out = b"+OK Begin TLS negotiation\r\n".to_vec();
                    for fault in faults {
                        if let Fault::ExtraAfterStls(extra) = fault {
                            out.extend_from_slice(extra);
                        }
                    }
                    send(conn, &out)?;
                    return Ok(Next::StartTls);
                }
            }
            "USER" if self.maildrop.is_none() => {
                self.user = Some(arg.to_string());
                "+OK send PASS\r\n".to_string()
            }
            "PASS" if self.maildrop.is_none() => match self.user.take() {
                None => "-ERR USER first\r\n".to_string(),
                Some(user) => self.login(&user, arg),
            },
            "AUTH" if self.maildrop.is_none() => match self.auth(conn, arg)? {
                Some(reply) => reply,
                None => return Ok(Next::Close),
            },
            "APOP" if self.maildrop.is_none() => "-ERR APOP not supported\r\n".to_string(),
            "USER" | "PASS" | "AUTH" | "APOP" => "-ERR already logged in\r\n".to_string(),
            "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET" | "NOOP"
                if self.maildrop.is_none() =>
            {
                "-ERR not logged in\r\n".to_string()
            }
            "STAT" => {
                let (count, size) = self
                    .live()
                    .fold((0, 0), |(c, s), (_, m)| (c + 1, s + m.size()));
                format!("+OK {count} {size}\r\n")
            }
            "LIST" | "UIDL" => {
                let show = |n: usize, m: &Message| {
                    if verb == "LIST" {
                        format!("{n} {}", m.size())
                    } else {
                        format!("{n} {}", m.uidl)
                    }
                };
                if arg.is_empty() {
                    let lines: Vec<String> = self.live().map(|(n, m)| show(n, m)).collect();
                    multiline("+OK listing follows", &lines)
                } else {
                    match self.lookup(arg) {
                        Some(n) => format!("+OK {}\r\n", show(n, self.message(n))),
                        None => "-ERR no such message\r\n".to_string(),
                    }
                }
            }
            "RETR" => match self.lookup(arg) {
                None => "-ERR no such message\r\n".to_string(),
                Some(n) if faults.contains(&Fault::RetrErr(n as u32)) => {
                    "-ERR cannot open message\r\n".to_string()
                }
                Some(n) => {
                    let message = self.message(n);
                    if self.shared.config.session_cap.is_some() {
                        lock(&self.shared.retrieved).insert(message.uidl.clone());
                    }
                    let mut out = format!("+OK {} octets\r\n", message.size()).into_bytes();
                    let wire = dot_stuff(&message.body);
                    let cut = faults.iter().find_map(|f| match f {
                        Fault::DropInRetr { msg, after } if *msg as usize == n => Some(*after),
                        _ => None,
                    });
                    if let Some(after) = cut {
                        // Never send the whole terminator: the body must stay unfinished.
                        let after = after.min(wire.len() - 3);
                        out.extend_from_slice(&wire[..after]);
                        send(conn, &out)?;
                        return Ok(Next::Drop);
                    }
                    let pause = faults.iter().find_map(|f| match f {
                        Fault::StallInRetr { msg, after, delay } if *msg as usize == n => {
                            Some((*after, *delay))
                        }
                        _ => None,
                    });
                    if let Some((after, delay)) = pause {
                        let after = after.min(wire.len() - 3);
                        out.extend_from_slice(&wire[..after]);
                        send(conn, &out)?;
                        thread::sleep(delay);
                        send(conn, &wire[after..])?;
                        return Ok(Next::Continue);
                    }
                    out.extend_from_slice(&wire);
                    send(conn, &out)?;
                    return Ok(Next::Continue);
                }
            },
            "TOP" => {
                let mut args = arg.split_whitespace();
                let n = args.next().and_then(|a| self.lookup(a));
                let lines = args.next().and_then(|a| a.parse::<usize>().ok());
                match (n, lines) {
                    (Some(n), Some(lines)) => {
                        let mut out = b"+OK top of message follows\r\n".to_vec();
                        out.extend_from_slice(&dot_stuff(&top(&self.message(n).body, lines)));
                        send(conn, &out)?;
                        return Ok(Next::Continue);
                    }
                    _ => "-ERR usage: TOP msg lines\r\n".to_string(),
                }
            }
            "DELE" => match self.lookup(arg) {
                Some(n) => {
                    self.deleted[n - 1] = true;
                    format!("+OK message {n} deleted\r\n")
                }
                None => "-ERR no such message\r\n".to_string(),
            },
            "RSET" => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                "+OK\r\n".to_string()
            }
            _ => "-ERR unknown command\r\n".to_string(),
        };
        send(conn, reply.as_bytes())?;
        Ok(Next::Continue)
    }

    /// Check the credentials; on success enter TRANSACTION with a snapshot of the mailbox.
    pub(super) fn login(&mut self, user: &str, password: &str) -> String {
        let config = &self.shared.config;
        if user != config.user || password != config.password {
            return "-ERR [AUTH] invalid user name or password\r\n".to_string();
        }
        let mut snapshot = lock(&self.shared.mailbox).clone();
        if let Some(cap) = config.session_cap {
            let retrieved = lock(&self.shared.retrieved);
            snapshot.retain(|m| !retrieved.contains(&m.uidl));
            snapshot.truncate(cap);
        }
        self.deleted = vec![false; snapshot.len()];
        self.maildrop = Some(snapshot);
        "+OK maildrop locked and ready\r\n".to_string()
    }

    /// RFC 1939 UPDATE state: remove the marked messages from the shared mailbox.
    fn update(&mut self) {
        let Some(maildrop) = self.maildrop.take() else {
            return;
        };
        let gone: Vec<&str> = maildrop
            .iter()
            .zip(&self.deleted)
            .filter(|(_, d)| **d)
            .map(|(m, _)| m.uidl.as_str())
            .collect();
        lock(&self.shared.mailbox).retain(|m| !gone.contains(&m.uidl.as_str()));
    }

    /// Messages not marked deleted, with their numbers.
    fn live(&self) -> impl Iterator<Item = (usize, &Message)> {
        self.maildrop
            .iter()
            .flatten()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
            .map(|(i, m)| (i + 1, m))
    }

    /// A message number that exists and is not marked deleted.
    fn lookup(&self, arg: &str) -> Option<usize> {
        let n: usize = arg.trim().parse().ok()?;
        let count = self.maildrop.as_ref()?.len();
        (n >= 1 && n <= count && !self.deleted[n - 1]).then_some(n)
    }

    fn message(&self, n: usize) -> &Message {
        &self.maildrop.as_ref().expect("TRANSACTION state")[n - 1]
    }
}
