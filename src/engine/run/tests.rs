//! The session loop on an in-memory POP3 server, a stub sink (lettre's `StubTransport`
//! idea) and an in-memory seen-state: no sockets, no disk. The server keeps its mailbox across sessions, applies DELE only on
//! QUIT (RFC 1939 section 6) and can refuse RETR or DELE.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::deliver::Pending;
use crate::proto::multiline::stuff;
use crate::secret::Secret;

/// The server's side: the mailbox and what it was asked.
#[derive(Default)]
struct Mailbox {
    /// (uid, body); a deleted message leaves the list on QUIT.
    messages: Vec<(String, Vec<u8>)>,
    refuse_retr: HashSet<String>,
    refuse_dele: HashSet<String>,
    /// Close without answering QUIT.
    silent_quit: bool,
    commands: Vec<String>,
}

/// One connection to the mailbox.
struct Conn {
    mailbox: Rc<RefCell<Mailbox>>,
    /// The message list as this session saw it at login (numbers stay fixed).
    view: Vec<(String, Vec<u8>)>,
    marked: HashSet<usize>,
    input: Vec<u8>,
    output: VecDeque<u8>,
}

impl Conn {
    fn open(mailbox: &Rc<RefCell<Mailbox>>) -> Conn {
        Conn {
            view: mailbox.borrow().messages.clone(),
            mailbox: mailbox.clone(),
            marked: HashSet::new(),
            input: Vec::new(),
            output: b"+OK ready\r\n".iter().copied().collect(),
        }
    }

    fn reply(&mut self, text: &[u8]) {
        self.output.extend(text);
    }

    fn handle(&mut self, line: &str) {
        self.mailbox.borrow_mut().commands.push(line.to_owned());
        let mut words = line.split(' ');
        let verb = words.next().unwrap_or_default();
        let n: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let uid = n
            .checked_sub(1)
            .and_then(|i| self.view.get(i))
            .map(|m| m.0.clone());
        match verb {
            "USER" | "PASS" | "NOOP" => self.reply(b"+OK\r\n"),
            "TOP" => match uid {
                Some(_) => {
                    // The header: everything up to the first empty line.
                    let body = &self.view[n - 1].1;
                    let end = body
                        .windows(2)
                        .position(|w| w == b"\n\n")
                        .map_or(body.len(), |p| p + 2);
                    let head = stuff(&body[..end]);
                    self.reply(b"+OK\r\n");
                    self.reply(&head);
                }
                None => self.reply(b"-ERR no such message\r\n"),
            },
            "UIDL" | "LIST" => {
                let mut text = b"+OK\r\n".to_vec();
                for (i, (uid, body)) in self.view.iter().enumerate() {
                    let item = if verb == "UIDL" {
                        uid.clone()
                    } else {
                        body.len().to_string()
                    };
                    text.extend_from_slice(format!("{} {item}\r\n", i + 1).as_bytes());
                }
                text.extend_from_slice(b".\r\n");
                self.reply(&text);
            }
            "RETR" => match uid {
                Some(u) if !self.mailbox.borrow().refuse_retr.contains(&u) => {
                    let body = stuff(&self.view[n - 1].1);
                    self.reply(b"+OK\r\n");
                    self.reply(&body);
                }
                _ => self.reply(b"-ERR no such message\r\n"),
            },
            "DELE" => match uid {
                Some(u) if !self.mailbox.borrow().refuse_dele.contains(&u) => {
                    self.marked.insert(n - 1);
                    self.reply(b"+OK\r\n");
                }
                _ => self.reply(b"-ERR cannot\r\n"),
            },
            "QUIT" => {
                let gone: HashSet<String> = self
                    .marked
                    .iter()
                    .map(|&i| self.view[i].0.clone())
                    .collect();
                self.mailbox
                    .borrow_mut()
                    .messages
                    .retain(|(u, _)| !gone.contains(u));
                if !self.mailbox.borrow().silent_quit {
                    self.reply(b"+OK bye\r\n");
                }
            }
            _ => self.reply(b"-ERR unknown\r\n"),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.output.len());
        for (slot, b) in buf.iter_mut().zip(self.output.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.input.extend_from_slice(buf);
        while let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&self.input[..end]).into_owned();
            self.input.drain(..end + 2);
            self.handle(&line);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps delivered messages in memory; `batch` > 1 makes it batch like
/// Maildir. `fail` makes every write of a message containing that text fail.
#[derive(Default)]
struct Stub {
    delivered: Rc<RefCell<Vec<Vec<u8>>>>,
    staged: Vec<Vec<u8>>,
    synced: bool,
    batch: usize,
    fail: Option<&'static str>,
    events: Rc<RefCell<Vec<String>>>,
    /// Like an MDA: each commit waits this long, calling its keep-alive tick meanwhile.
    slow: Option<Duration>,
    /// A message containing this text is refused like an LMTP 4xx (for this message only).
    reject: Option<&'static str>,
}

struct StubPending<'a> {
    stub: &'a mut Stub,
    buf: Vec<u8>,
}

impl Write for StubPending<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if let Some(f) = self.stub.fail
            && String::from_utf8_lossy(&self.buf).contains(f)
        {
            return Err(io::Error::other("disk full"));
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pending for StubPending<'_> {
    fn commit_ticking(
        self: Box<Self>,
        every: Duration,
        tick: &mut dyn FnMut(),
    ) -> crate::Result<()> {
        if let Some(slow) = self.stub.slow {
            let t0 = std::time::Instant::now();
            while t0.elapsed() < slow {
                std::thread::sleep(every.min(slow));
                tick();
            }
        }
        self.commit()
    }
    fn commit(self: Box<Self>) -> crate::Result<()> {
        if let Some(r) = self.stub.reject
            && String::from_utf8_lossy(&self.buf).contains(r)
        {
            return Err(
                crate::Error::new(crate::ErrorKind::Temporary, "452 over quota").for_this_message(),
            );
        }
        self.stub.events.borrow_mut().push("commit".into());
        self.stub.delivered.borrow_mut().push(self.buf);
        Ok(())
    }
    fn stage(self: Box<Self>) -> crate::Result<()> {
        self.stub.staged.push(self.buf);
        self.stub.synced = false;
        Ok(())
    }
    fn token(&self) -> Option<String> {
        Some(format!("t{}", self.stub.delivered.borrow().len()))
    }
}

impl Sink for Stub {
    fn slow_commit(&self) -> bool {
        self.slow.is_some()
    }
    fn begin(&mut self, _: &Envelope<'_>) -> crate::Result<Box<dyn Pending + '_>> {
        Ok(Box::new(StubPending {
            stub: self,
            buf: Vec::new(),
        }))
    }
    fn batch_limit(&self) -> usize {
        self.batch.max(1)
    }
    fn sync_batch(&mut self) -> crate::Result<()> {
        self.synced = true;
        Ok(())
    }
    fn publish_batch(&mut self) -> crate::Result<()> {
        assert!(self.synced, "published before sync");
        self.events
            .borrow_mut()
            .push(format!("publish {}", self.staged.len()));
        self.delivered.borrow_mut().append(&mut self.staged);
        Ok(())
    }
}

struct World {
    mailbox: Rc<RefCell<Mailbox>>,
    sink: Stub,
    state: SeenState,
    caps: Capabilities,
}

fn world(messages: &[(&str, &str)]) -> World {
    let state = SeenState::in_memory(std::path::Path::new("memory"));
    let mailbox = Mailbox {
        messages: messages
            .iter()
            .map(|(u, b)| (u.to_string(), b.as_bytes().to_vec()))
            .collect(),
        ..Mailbox::default()
    };
    World {
        mailbox: Rc::new(RefCell::new(mailbox)),
        sink: Stub::default(),
        state,
        caps: Capabilities::default(),
    }
}

fn settings(keep: bool) -> Settings {
    Settings {
        account: "test".into(),
        host: "mem".into(),
        received: None,
        policy: Policy {
            keep,
            ..Policy::default()
        },
        keepalive: Some(Duration::from_millis(20)),
        filter: None,
    }
}

impl World {
    /// One session: log in, list, run the loop.
    fn session(&mut self, settings: &Settings, ledger: &mut Ledger) -> crate::Result<Summary> {
        let s = Session::connect(Conn::open(&self.mailbox), "mem", Duration::from_secs(5))?;
        let mut s = s
            .login_user_pass("u", &Secret::new("p"), false)
            .map_err(|f| f.0)?;
        // The listing filter the engine uses: seen messages it will not act on stay out.
        let mut on_server = OnServer::new(&self.state);
        let policy = settings.session_policy(ledger);
        let mut keep = on_server.filter(&self.state, &policy, now_unix(), "mem");
        let (_, listing) = s.capa_and_listing(false, &mut keep)?;
        drop(keep);
        run_session(
            s,
            &self.caps,
            &listing,
            &on_server,
            settings,
            &FetchOptions::default(),
            &super::super::NoProgress,
            &mut self.state,
            Some(&mut self.sink),
            ledger,
        )
    }

    fn fetch(&mut self, keep: bool) -> crate::Result<Summary> {
        self.session(&settings(keep), &mut Ledger::default())
    }

    fn delivered(&self) -> Vec<String> {
        self.sink
            .delivered
            .borrow()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    fn on_server(&self) -> Vec<String> {
        self.mailbox
            .borrow()
            .messages
            .iter()
            .map(|m| m.0.clone())
            .collect()
    }

    fn verbs(&self) -> Vec<String> {
        self.mailbox.borrow().commands.clone()
    }
}

#[test]
fn keep_delivers_new_messages_once_and_deletes_nothing() {
    let mut w = world(&[("a", "one\n"), ("b", "two\n")]);
    let s = w.fetch(true).unwrap();
    assert_eq!((s.fetched, s.deleted), (2, 0));
    assert_eq!(w.delivered(), ["one\n", "two\n"]);
    assert!(!w.verbs().iter().any(|v| v.starts_with("DELE")));
    let s = w.fetch(true).unwrap();
    assert_eq!(s.fetched, 0, "a second session fetches nothing");
    assert_eq!(w.on_server(), ["a", "b"]);
}

#[test]
fn dele_goes_out_only_after_the_record() {
    // Invariant 2: the DELE of a message follows its commit and its record.
    let mut w = world(&[("a", "one\n"), ("b", "two\n")]);
    let s = w.fetch(false).unwrap();
    assert_eq!((s.fetched, s.deleted), (2, 2));
    assert!(w.on_server().is_empty());
    let verbs = w.verbs();
    let retr_a = verbs.iter().position(|v| v == "RETR 1").unwrap();
    let dele_a = verbs.iter().position(|v| v == "DELE 1").unwrap();
    assert!(retr_a < dele_a, "{verbs:?}");
}

#[test]
fn no_loss_reused_uidl_after_delete_is_fetched_not_deleted_unread() {
    // Issue 9 item 4: the server gives a new message the UIDL of one pop3 deleted.
    let mut w = world(&[("1", "old\n")]);
    w.fetch(false).unwrap();
    assert!(w.on_server().is_empty());
    assert!(
        !w.state.contains(&Uid::new(b"1").unwrap()),
        "forgotten after QUIT"
    );
    w.mailbox
        .borrow_mut()
        .messages
        .push(("1".into(), b"new\n".to_vec()));
    let s = w.fetch(false).unwrap();
    assert_eq!(s.fetched, 1);
    assert_eq!(w.delivered(), ["old\n", "new\n"]);
}

#[test]
fn refused_retr_skips_that_message_and_fails_at_the_end() {
    let mut w = world(&[("a", "one\n"), ("b", "two\n"), ("c", "three\n")]);
    w.mailbox.borrow_mut().refuse_retr.insert("b".into());
    let err = w.fetch(false).unwrap_err();
    assert!(
        err.to_string().contains("refused to send message(s) 2"),
        "{err}"
    );
    assert_eq!(w.delivered(), ["one\n", "three\n"]);
    // The refused one is neither recorded nor deleted; the others are both.
    assert_eq!(w.on_server(), ["b"]);
    assert!(!w.state.contains(&Uid::new(b"b").unwrap()));
}

#[test]
fn refused_dele_keeps_the_message_recorded() {
    let mut w = world(&[("a", "one\n"), ("b", "two\n")]);
    w.mailbox.borrow_mut().refuse_dele.insert("a".into());
    let err = w.fetch(false).unwrap_err();
    assert!(err.to_string().contains("to delete message(s) 1"), "{err}");
    assert_eq!(w.on_server(), ["a"]);
    assert!(w.state.contains(&Uid::new(b"a").unwrap()));
    w.mailbox.borrow_mut().refuse_dele.clear();
    let s = w.fetch(false).unwrap();
    assert_eq!(
        (s.fetched, s.deleted),
        (0, 1),
        "deleted later, not fetched twice"
    );
}

#[test]
fn no_loss_a_failed_delivery_is_neither_recorded_nor_deleted() {
    let mut w = world(&[("a", "one\n"), ("b", "two\n")]);
    w.sink.fail = Some("two");
    let err = w.fetch(false).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Io, "{err}");
    assert_eq!(w.delivered(), ["one\n"]);
    assert!(!w.state.contains(&Uid::new(b"b").unwrap()));
    assert!(w.on_server().contains(&"b".to_owned()));
}

#[test]
fn a_batching_sink_publishes_in_batches_before_recording() {
    let mut w = world(&[
        ("a", "1\n"),
        ("b", "2\n"),
        ("c", "3\n"),
        ("d", "4\n"),
        ("e", "5\n"),
    ]);
    w.sink.batch = 2;
    let s = w.fetch(false).unwrap();
    assert_eq!((s.fetched, s.deleted), (5, 5));
    assert_eq!(
        *w.sink.events.borrow(),
        ["publish 2", "publish 2", "publish 1"]
    );
    assert_eq!(w.delivered().len(), 5);
}

#[test]
fn all_and_limit_count_per_run_not_per_session() {
    // Issue 9 item 6: a server that caps sessions lists the same messages again.
    let mut w = world(&[("a", "1\n"), ("b", "2\n"), ("c", "3\n")]);
    w.fetch(true).unwrap();
    let mut s = settings(true);
    s.policy.all = true;
    s.policy.limit = Some(2);
    let mut ledger = Ledger::default();
    assert_eq!(w.session(&s, &mut ledger).unwrap().fetched, 2);
    assert_eq!(ledger.remaining(s.policy.limit), Some(0));
    assert_eq!(w.session(&s, &mut ledger).unwrap().fetched, 0);
    s.policy.limit = None;
    assert_eq!(
        w.session(&s, &mut ledger).unwrap().fetched,
        1,
        "only c is left"
    );
    assert_eq!(w.session(&s, &mut ledger).unwrap().fetched, 0);
    assert_eq!(w.delivered().len(), 6);
}

#[test]
fn no_loss_reused_uidl_after_a_crash_before_forgetting() {
    // The run died between QUIT's +OK and forgetting the UIDL: the deletion note (with the
    // listed size) lets the next run take a same-named message of another size for new.
    let dir = tempfile::tempdir().unwrap();
    let mut w = world(&[("1", "old\n"), ("2", "other\n")]);
    w.state = SeenState::load(&dir.path().join("state")).unwrap();
    w.fetch(true).unwrap();
    let one = Uid::new(b"1").unwrap();
    w.state.note_deleting(&[(&one, 4)]).unwrap();
    let path = w.state.path().to_path_buf();
    w.state = SeenState::load(&path).unwrap();
    // The same message (same size) still counts as seen...
    assert_eq!(w.fetch(true).unwrap().fetched, 0);
    // ... a new one under the old UIDL does not.
    w.mailbox.borrow_mut().messages[0] = ("1".into(), b"brand new\n".to_vec());
    assert_eq!(w.fetch(true).unwrap().fetched, 1);
    assert_eq!(w.delivered(), ["old\n", "other\n", "brand new\n"]);
}

#[test]
fn quit_is_not_waited_for_when_nothing_was_deleted() {
    let mut w = world(&[("a", "one\n")]);
    w.mailbox.borrow_mut().silent_quit = true;
    assert_eq!(w.fetch(true).unwrap().fetched, 1, "no round trip for QUIT");
    // With deletions the answer decides whether they happened: it is waited for, and a
    // connection that closes instead is an error (the messages stay recorded).
    w.mailbox
        .borrow_mut()
        .messages
        .push(("b".into(), b"two\n".to_vec()));
    let err = w.fetch(false).unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    assert!(w.state.contains(&Uid::new(b"b").unwrap()));
}

#[test]
fn a_slow_delivery_keeps_the_session_alive_with_noop_and_nothing_behind_it() {
    let mut w = world(&[("a", "one\n"), ("b", "two\n")]);
    w.caps.pipelining = true;
    w.sink.slow = Some(Duration::from_millis(100));
    let s = w.fetch(false).unwrap();
    assert_eq!((s.fetched, s.deleted), (2, 2));
    let verbs = w.verbs();
    let pos = |v: &str| verbs.iter().position(|x| x == v).unwrap();
    let noops = verbs.iter().filter(|v| *v == "NOOP").count();
    assert!(
        noops >= 4,
        "a NOOP about every 20 ms of 2 x 100 ms: {verbs:?}"
    );
    // No RETR is pipelined ahead of a NOOP: every NOOP comes between one message's RETR
    // and the next command, never with a second RETR in flight.
    assert!(
        pos("RETR 1") < pos("NOOP") && pos("NOOP") < pos("RETR 2"),
        "{verbs:?}"
    );
    let first_after_retr1 = &verbs[pos("RETR 1") + 1];
    assert_eq!(first_after_retr1, "NOOP", "{verbs:?}");
}

#[test]
fn a_quick_sink_sends_no_noop() {
    let mut w = world(&[("a", "one\n")]);
    w.fetch(true).unwrap();
    assert!(!w.verbs().iter().any(|v| v == "NOOP"), "{:?}", w.verbs());
}

#[test]
fn no_loss_a_message_the_target_refuses_stays_unrecorded_and_the_rest_go_on() {
    let mut w = world(&[("a", "one\n"), ("b", "reject me\n"), ("c", "three\n")]);
    w.sink.reject = Some("reject");
    let err = w.fetch(false).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Temporary, "{err}");
    assert!(err.to_string().contains("refused message(s) 2"), "{err}");
    assert_eq!(w.delivered(), ["one\n", "three\n"]);
    assert_eq!(w.on_server(), ["b"], "the refused one is never deleted");
    assert!(!w.state.contains(&Uid::new(b"b").unwrap()));
    // Once the target takes it, it is delivered (once) and deleted.
    w.sink.reject = None;
    let s = w.fetch(false).unwrap();
    assert_eq!((s.fetched, s.deleted), (1, 1));
    assert_eq!(w.delivered(), ["one\n", "three\n", "reject me\n"]);
}

#[test]
fn killsize_deletes_big_new_messages_unfetched_even_with_keep() {
    let mut w = world(&[("a", "small\n"), ("b", &"x".repeat(500)), ("c", "tiny\n")]);
    let mut s = settings(true);
    s.policy.killsize = Some(100);
    let summary = w.session(&s, &mut Ledger::default()).unwrap();
    assert_eq!((summary.fetched, summary.deleted), (2, 1));
    assert_eq!(summary.unfetched.len(), 1);
    assert_eq!(summary.unfetched[0].1, Unfetched::KillSize);
    assert_eq!(w.on_server(), ["a", "c"]);
    assert!(!w.verbs().iter().any(|v| v == "RETR 2"), "{:?}", w.verbs());
}

#[test]
fn the_filter_decides_from_the_header_fetch_delete_or_skip_for_good() {
    let mut w = world(&[
        ("a", "Subject: keep\n\nbody a\n"),
        ("b", "Subject: spam\n\nbody b\n"),
        ("c", "Subject: later\n\nbody c\n"),
        ("d", "Subject: broken\n\nbody d\n"),
    ]);
    w.caps.top = true;
    let dir = tempfile::tempdir().unwrap();
    let skipped_path = dir.path().join("x.skipped");
    let mut s = settings(true);
    s.filter = Some(crate::engine::filter::Filter {
        command: crate::config::CommandLine::Shell(
            "h=$(cat); case \"$h\" in *spam*) exit 1;; *later*) exit 2;; *broken*) exit 7;; \
             esac; exit 0"
                .into(),
        ),
        timeout: Duration::from_secs(10),
    });
    let mut ledger = Ledger {
        skipped: Some(Reported::load_skipped(&skipped_path)),
        ..Ledger::default()
    };
    let err = w.session(&s, &mut ledger).unwrap_err();
    assert!(
        err.to_string().contains("filter failed for message(s) 4"),
        "{err}"
    );
    assert_eq!(w.delivered(), ["Subject: keep\n\nbody a\n"]);
    assert_eq!(w.on_server(), ["a", "c", "d"], "b deleted unfetched");
    assert!(w.verbs().iter().any(|v| v == "TOP 2 0"), "{:?}", w.verbs());
    assert!(!w.verbs().iter().any(|v| v == "RETR 2" || v == "RETR 3"));
    // The next run: c is skipped without asking the filter again; d is judged again.
    w.mailbox.borrow_mut().commands.clear();
    let mut ledger = Ledger {
        skipped: Some(Reported::load_skipped(&skipped_path)),
        ..Ledger::default()
    };
    let _ = w.session(&s, &mut ledger);
    let verbs = w.verbs();
    assert!(
        !verbs.iter().any(|v| v.starts_with("TOP 2")),
        "c is skipped: {verbs:?}"
    );
    assert!(
        verbs.iter().any(|v| v.starts_with("TOP 3")),
        "d again: {verbs:?}"
    );
    assert_eq!(w.on_server(), ["a", "c", "d"]);
}
