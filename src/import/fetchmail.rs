//! `~/.fetchmailrc` and fetchmail's idfile (`~/.fetchids`).
//!
//! The rc grammar (fetchmail(1), "THE RUN CONTROL FILE"): free-form tokens, `#` comments,
//! strings in double or single quotes with C escapes, the noise words `and with has wants
//! options here there` and the punctuation `, : ;` ignored anywhere. `set ...` lines are
//! global; `poll NAME` / `skip NAME` / `defaults` start a server entry, whose server options
//! come first and whose `user NAME` starts one account each (several users per poll
//! allowed); `no X` negates a flag. A keyword we do not know is an error naming the file
//! and line: fetchmail itself would refuse the file.
//!
//! The idfile: one line per seen message, `REMOTEUSER@HOST UID`, where the user may hold
//! `@` (the last `@` before the first blank separates it) and HOST is the `via` name or
//! else the poll name (fetchmail's "truename"). It has no times.

use std::path::Path;

use super::{Deliver, Imported, ParseError, Parsed, Password, SeenFrom};
use crate::config::TlsMode;

/// A token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    line: usize,
    quoted: bool,
}

/// Split the rc text into tokens, dropping comments and punctuation.
fn tokens(file: &Path, text: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() || matches!(c, ',' | ':' | ';') => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '"' | '\'' => {
                let quote = c;
                let start = line;
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(ParseError::new(
                                file,
                                start,
                                "a string is not closed (missing quote)",
                            ));
                        }
                        Some(c) if c == quote => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('\n') => line += 1,
                            Some(c) => s.push(c),
                            None => {
                                return Err(ParseError::new(
                                    file,
                                    start,
                                    "a string is not closed (missing quote)",
                                ));
                            }
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                    }
                }
                out.push(Token {
                    text: s,
                    line: start,
                    quoted: true,
                });
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, ',' | ':' | ';' | '#' | '"' | '\'') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token {
                    text: s,
                    line,
                    quoted: false,
                });
            }
        }
    }
    Ok(out)
}

const NOISE: &[&str] = &["and", "with", "has", "wants", "options", "here", "there"];

/// Options that take one argument and have no equivalent in pop3, with the reason.
const DROPPED_WITH_ARG: &[(&str, &str)] = &[
    ("interval", "pop3 polls every account on each run"),
    (
        "envelope",
        "multidrop mode: pop3 fetches one mailbox per account",
    ),
    (
        "qvirtual",
        "multidrop mode: pop3 fetches one mailbox per account",
    ),
    ("interface", "no interface check in pop3"),
    ("monitor", "no interface check in pop3"),
    ("plugin", "pop3 connects directly (no plugin command)"),
    ("plugout", "pop3 has no SMTP delivery"),
    ("principal", "no Kerberos in pop3"),
    ("esmtpname", "pop3 has no SMTP delivery"),
    ("esmtppassword", "pop3 has no SMTP delivery"),
    ("badheader", "pop3 delivers every message as it is"),
    (
        "retrieveerror",
        "pop3 stops on a retrieval error and retries next run",
    ),
    (
        "smtphost",
        "pop3 has no SMTP delivery; sendmail is used instead",
    ),
    ("smtpaddress", "pop3 has no SMTP delivery"),
    ("smtpname", "pop3 has no SMTP delivery"),
    (
        "fetchdomains",
        "multidrop mode: pop3 fetches one mailbox per account",
    ),
    ("bsmtp", "pop3 has no BSMTP output"),
    ("preconnect", "pop3 runs no command before connecting"),
    ("postconnect", "pop3 runs no command after a poll"),
    (
        "warnings",
        "pop3 reports each oversized message on every run",
    ),
    ("fetchlimit", "use `pop3 fetch --limit N`"),
    ("fetchsizelimit", "pop3 lists all sizes at once"),
    ("fastuidl", "pop3 always reads the whole UIDL list"),
    ("batchlimit", "pop3 has no SMTP delivery"),
    (
        "expunge",
        "pop3 deletes at the end of each session (invariant 2)",
    ),
    ("properties", "no equivalent"),
    ("sslcertpath", "give the CA file as tls_ca_file"),
    (
        "sslcommonname",
        "pop3 checks the certificate against the host name",
    ),
    (
        "sslkey",
        "set tls_key_file by hand if the server wants a client certificate",
    ),
    (
        "sslcert",
        "set tls_cert_file by hand if the server wants a client certificate",
    ),
    ("folder", "folders are IMAP; POP3 has one mailbox"),
    ("antispam", "pop3 has no SMTP delivery"),
];

/// Flags (with or without `no`) that have no equivalent, with the reason.
const DROPPED_FLAGS: &[(&str, &str)] = &[
    ("dns", "no equivalent"),
    (
        "checkalias",
        "multidrop mode: pop3 fetches one mailbox per account",
    ),
    ("tracepolls", "pop3 adds its own Received: header"),
    ("flush", "pop3 never deletes unseen messages"),
    ("limitflush", "pop3 never deletes unseen messages"),
    (
        "fetchall",
        "pop3 fetches what it has not seen; `pop3 fetch --all` once for all",
    ),
    ("rewrite", "pop3 delivers headers unchanged"),
    ("forcecr", "pop3 delivers with LF line ends"),
    ("stripcr", "pop3 delivers with LF line ends"),
    ("pass8bits", "pop3 delivers bytes unchanged"),
    ("dropstatus", "pop3 delivers headers unchanged"),
    ("dropdelivered", "pop3 delivers headers unchanged"),
    ("mimedecode", "pop3 delivers bytes unchanged"),
    ("idle", "POP3 has no IDLE; use `pop3 fetch --daemon`"),
    ("lmtp", "pop3 has no LMTP delivery"),
    ("uidl", "pop3 always tracks UIDLs"),
    ("showdots", "no equivalent"),
];

/// Server options that pop3 reads (the rest are in the tables above).
const KNOWN_WITH_ARG: &[&str] = &[
    "via",
    "protocol",
    "proto",
    "service",
    "port",
    "auth",
    "authenticate",
    "timeout",
    "user",
    "username",
    "pass",
    "password",
    "passwd",
    "mda",
    "sslproto",
    "sslcertfile",
    "sslfingerprint",
    "limit",
];

/// One `user` of a poll (or the poll's options before its first `user`).
#[derive(Debug, Clone)]
struct Entry {
    acc: Imported,
    via: Option<String>,
    protocol: Option<(String, usize)>,
    ssl: bool,
    sslproto: Option<String>,
    local: Option<String>,
    has_user: bool,
    /// (line, option, why) to report under the account's name.
    notes: Vec<(usize, String, String)>,
}

impl Entry {
    fn new(file: &Path) -> Entry {
        let mut acc = Imported::new(file, 1, "");
        // fetchmail deletes what it fetched unless told `keep`.
        acc.keep = false;
        acc.tls = TlsMode::Starttls;
        Entry {
            acc,
            via: None,
            protocol: None,
            ssl: false,
            sslproto: None,
            local: None,
            has_user: false,
            notes: Vec::new(),
        }
    }
}

/// What the rc file says: the accounts, what was not carried over, and `set idfile` if any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rc {
    pub parsed: Parsed,
    pub idfile: Option<String>,
}

/// Parse a fetchmailrc. `login` is the local user name (fetchmail's default remote user
/// and local recipient).
pub fn parse(file: &Path, text: &str, login: &str) -> Result<Rc, ParseError> {
    let toks = tokens(file, text)?;
    let mut rc = Rc::default();
    let mut defaults = Entry::new(file);
    // The entry being filled: (is `defaults`, poll name, skip, poll-level entry, users).
    let mut poll: Option<Poll> = None;
    let mut i = 0;
    let arg = |i: usize, kw: &Token| -> Result<Token, ParseError> {
        toks.get(i + 1).cloned().ok_or_else(|| {
            ParseError::new(
                file,
                kw.line,
                format!("`{}` needs a value at the end of the file", kw.text),
            )
        })
    };
    while i < toks.len() {
        let t = &toks[i];
        let kw = if t.quoted {
            String::new()
        } else {
            t.text.to_ascii_lowercase()
        };
        if NOISE.contains(&kw.as_str()) {
            i += 1;
            continue;
        }
        match kw.as_str() {
            "set" => {
                let mut j = i + 1;
                if toks
                    .get(j)
                    .is_some_and(|t| t.text.eq_ignore_ascii_case("no"))
                {
                    j += 1;
                }
                let Some(what) = toks.get(j) else {
                    return Err(ParseError::new(file, t.line, "`set` needs a keyword"));
                };
                let what_kw = what.text.to_ascii_lowercase();
                match what_kw.as_str() {
                    "idfile" | "daemon" | "logfile" | "postmaster" | "pidfile" | "properties" => {
                        let value = arg(j, what)?;
                        if what_kw == "idfile" {
                            rc.idfile = Some(value.text.clone());
                        } else if what_kw == "daemon" {
                            rc.parsed.drop_option(
                                file,
                                t.line,
                                "",
                                &format!("set daemon {}", value.text),
                                "run `pop3 fetch --daemon INTERVAL` (or a timer)",
                            );
                        }
                        i = j + 2;
                    }
                    "bouncemail" | "spambounce" | "softbounce" | "syslog" | "invisible"
                    | "showdots" => i = j + 1,
                    _ => {
                        return Err(ParseError::new(
                            file,
                            what.line,
                            format!("unknown global option `set {}`", what.text),
                        ));
                    }
                }
            }
            "poll" | "skip" | "server" | "defaults" => {
                if let Some(p) = poll.take() {
                    p.finish(file, login, &mut rc.parsed, &mut defaults);
                }
                let (name, next) = if kw == "defaults" {
                    (String::new(), i + 1)
                } else {
                    (arg(i, t)?.text, i + 2)
                };
                poll = Some(Poll {
                    is_defaults: kw == "defaults",
                    name,
                    line: t.line,
                    skip: kw == "skip",
                    server: defaults.clone(),
                    users: Vec::new(),
                });
                i = next;
            }
            _ => {
                let Some(p) = poll.as_mut() else {
                    return Err(ParseError::new(
                        file,
                        t.line,
                        format!(
                            "`{}` before the first poll, skip or defaults: not a fetchmailrc",
                            t.text
                        ),
                    ));
                };
                i = p.option(file, &toks, i)?;
            }
        }
    }
    if let Some(p) = poll.take() {
        p.finish(file, login, &mut rc.parsed, &mut defaults);
    }
    Ok(rc)
}

/// One `poll`/`skip`/`defaults` block being read.
struct Poll {
    is_defaults: bool,
    name: String,
    line: usize,
    skip: bool,
    server: Entry,
    users: Vec<Entry>,
}

impl Poll {
    fn current(&mut self) -> &mut Entry {
        self.users.last_mut().unwrap_or(&mut self.server)
    }

    /// Apply the option at `toks[i]`; returns the index after it.
    fn option(&mut self, file: &Path, toks: &[Token], i: usize) -> Result<usize, ParseError> {
        let t = &toks[i];
        let bad = |msg: String| ParseError::new(file, t.line, msg);
        if t.quoted {
            return Err(bad(format!("unexpected string \"{}\"", t.text)));
        }
        let kw = t.text.to_ascii_lowercase();
        let value = |i: usize| -> Result<&Token, ParseError> {
            toks.get(i + 1)
                .ok_or_else(|| bad(format!("`{}` needs a value", t.text)))
        };
        // `no X`: negated flags.
        if kw == "no" {
            let Some(flag) = toks.get(i + 1) else {
                return Err(bad("`no` needs a flag".into()));
            };
            let f = flag.text.to_ascii_lowercase();
            let e = self.current();
            match f.as_str() {
                "keep" => e.acc.keep = false,
                "ssl" => e.ssl = false,
                "sslcertck" => e.notes.push((
                    flag.line,
                    "no sslcertck".into(),
                    "pop3 always verifies the certificate; pin it with tls_fingerprint or \
                     give tls_ca_file if it is self-signed"
                        .into(),
                )),
                "envelope" | "rewrite" | "mimedecode" | "dns" | "uidl" | "checkalias" | "idle"
                | "fetchall" | "flush" | "limitflush" | "forcecr" | "stripcr" | "pass8bits"
                | "dropstatus" | "dropdelivered" | "tracepolls" | "showdots" => {}
                _ => return Err(bad(format!("unknown flag `no {}`", flag.text))),
            }
            return Ok(i + 2);
        }
        if let Some((_, why)) = DROPPED_FLAGS.iter().find(|(k, _)| *k == kw) {
            let e = self.current();
            e.notes.push((t.line, t.text.clone(), (*why).into()));
            return Ok(i + 1);
        }
        if let Some((_, why)) = DROPPED_WITH_ARG.iter().find(|(k, _)| *k == kw) {
            let v = value(i)?;
            let e = self.current();
            if kw == "antispam" {
                // A list of numbers.
                let mut j = i + 1;
                while toks.get(j).is_some_and(|t| t.text.parse::<i64>().is_ok()) {
                    j += 1;
                }
                e.notes.push((t.line, t.text.clone(), (*why).into()));
                return Ok(j);
            }
            e.notes
                .push((t.line, format!("{} {}", t.text, v.text), (*why).into()));
            return Ok(i + 2);
        }
        match kw.as_str() {
            "keep" => self.current().acc.keep = true,
            "nokeep" => self.current().acc.keep = false,
            "ssl" => self.current().ssl = true,
            "sslcertck" => {}
            "is" | "to" => {
                // Local names up to `here` or the next keyword.
                let mut j = i + 1;
                let mut first = None;
                while let Some(n) = toks.get(j) {
                    let l = n.text.to_ascii_lowercase();
                    if !n.quoted && (l == "here" || is_keyword(&l)) {
                        break;
                    }
                    first.get_or_insert_with(|| n.text.clone());
                    j += 1;
                }
                if first.is_none() {
                    return Err(bad(format!("`{}` needs a local user name", t.text)));
                }
                let e = self.current();
                if j > i + 2 {
                    e.notes.push((
                        t.line,
                        format!("{} (several local names)", t.text),
                        "pop3 delivers each account to one place; the first name is used".into(),
                    ));
                }
                e.local = first;
                return Ok(j);
            }
            k if KNOWN_WITH_ARG.contains(&k) => {
                let v = value(i)?.clone();
                self.apply(file, t, &kw, v)?;
                return Ok(i + 2);
            }
            "aka" | "localdomains" => {
                let mut j = i + 1;
                while toks
                    .get(j)
                    .is_some_and(|n| n.quoted || !is_keyword(&n.text.to_ascii_lowercase()))
                {
                    j += 1;
                }
                self.current().notes.push((
                    t.line,
                    t.text.clone(),
                    "multidrop mode: pop3 fetches one mailbox per account".into(),
                ));
                return Ok(j);
            }
            _ => {
                return Err(bad(format!(
                    "unknown keyword `{}` (is this a fetchmailrc?)",
                    t.text
                )));
            }
        }
        Ok(i + 1)
    }

    /// Apply an option with one value.
    fn apply(&mut self, file: &Path, t: &Token, kw: &str, v: Token) -> Result<(), ParseError> {
        let number = |what: &str| -> Result<u64, ParseError> {
            v.text.parse::<u64>().map_err(|_| {
                ParseError::new(
                    file,
                    v.line,
                    format!("`{what}` wants a number, not \"{}\"", v.text),
                )
            })
        };
        match kw {
            "user" | "username" => {
                if self.is_defaults {
                    self.server.acc.user = v.text;
                } else {
                    let mut e = self.server.clone();
                    e.acc.user = v.text;
                    e.acc.line = t.line;
                    e.has_user = true;
                    self.users.push(e);
                }
            }
            "via" => self.server.via = Some(v.text),
            "protocol" | "proto" => self.current().protocol = Some((v.text, t.line)),
            "service" | "port" => {
                let n = number(kw)?;
                let port = u16::try_from(n).ok().filter(|&p| p > 0).ok_or_else(|| {
                    ParseError::new(file, v.line, format!("port {n} is out of range"))
                })?;
                self.current().acc.port = Some(port);
            }
            "timeout" => {
                let n = number(kw)?;
                self.current().acc.timeout_secs = Some(n.clamp(1, 3600));
            }
            "auth" | "authenticate" => {
                let e = self.current();
                match v.text.to_ascii_lowercase().as_str() {
                    "any" | "password" => e.acc.auth = None,
                    "cram-md5" => e.acc.auth = super::auth_name("cram-md5"),
                    other => e.notes.push((
                        t.line,
                        format!("auth {other}"),
                        "pop3 has no such mechanism; it picks the strongest one offered".into(),
                    )),
                }
            }
            "pass" | "password" | "passwd" => {
                self.current().acc.password = Some(Password::Literal(v.text))
            }
            "mda" => self.current().acc.deliver = Some(Deliver::Mda(v.text)),
            "sslproto" => self.current().sslproto = Some(v.text),
            "sslcertfile" => self.current().acc.tls_ca_file = Some(v.text),
            "sslfingerprint" => {
                let e = self.current();
                if super::is_sha256_hex(&v.text) {
                    e.acc.tls_fingerprint = Some(v.text);
                } else {
                    e.notes.push((
                        t.line,
                        format!("sslfingerprint {}", v.text),
                        "an MD5 fingerprint; pop3 pins SHA-256: `pop3 probe HOST` shows it".into(),
                    ));
                }
            }
            "limit" => {
                let n = number(kw)?;
                self.current().acc.max_size = (n > 0).then_some(n);
            }
            _ => unreachable!("{kw} is in KNOWN_WITH_ARG"),
        }
        Ok(())
    }

    /// Turn the block into accounts (or, for `defaults`, into the new defaults).
    fn finish(self, file: &Path, login: &str, out: &mut Parsed, defaults: &mut Entry) {
        if self.is_defaults {
            *defaults = self.server;
            return;
        }
        let several = self.users.len() > 1;
        let users = if self.users.is_empty() {
            let mut e = self.server.clone();
            e.acc.line = self.line;
            if e.acc.user.is_empty() {
                e.acc.user = login.to_owned();
            }
            vec![e]
        } else {
            self.users
        };
        for mut e in users {
            let name = if several {
                super::account_name(&format!("{}-{}", self.name, e.acc.user))
            } else {
                super::account_name(&self.name)
            };
            let mut report = |line: usize, option: &str, why: &str| {
                out.drop_option(file, line, &name, option, why);
            };
            if let Some((proto, line)) = &e.protocol {
                match proto.to_ascii_lowercase().as_str() {
                    "pop3" | "auto" => {}
                    "apop" => e.acc.auth = super::auth_name("apop"),
                    other => {
                        report(
                            *line,
                            &format!("protocol {other}"),
                            "not POP3: this account is not imported",
                        );
                        continue;
                    }
                }
            }
            if self.skip {
                report(
                    self.line,
                    "skip",
                    "imported like poll; `pop3 fetch` fetches every account (name the ones \
                     you want)",
                );
            }
            e.acc.tls = if e.ssl {
                TlsMode::Implicit
            } else {
                match e
                    .sslproto
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    Some("") | Some("none") => TlsMode::None,
                    _ => TlsMode::Starttls,
                }
            };
            if e.acc.tls == TlsMode::Starttls && e.sslproto.is_none() {
                report(
                    self.line,
                    "(no ssl)",
                    "fetchmail used STLS only when offered; pop3 requires it (tls = \
                     \"starttls\"); set tls = \"none\" if the server has no TLS",
                );
            }
            if let Some(p) = &e.sslproto
                && !p.is_empty()
                && !p.eq_ignore_ascii_case("none")
            {
                report(
                    self.line,
                    &format!("sslproto {p}"),
                    "pop3 allows TLS 1.2 and 1.3 only (tls_min_version to raise it)",
                );
            }
            // Without TLS, fetchmail's `auth any` (the default) and `auth password` end in
            // USER/PASS: the password went unencrypted.
            super::carry_plaintext(&mut e.acc, true);
            let host = e.via.clone().unwrap_or_else(|| self.name.clone());
            e.acc.host = host.clone();
            e.acc.name = name.clone();
            e.acc.seen = Some(SeenFrom::Fetchmail {
                user: e.acc.user.clone(),
                host,
            });
            if e.acc.deliver.is_none() {
                let local = e.local.clone().unwrap_or_else(|| login.to_owned());
                report(
                    e.acc.line,
                    "(SMTP delivery to localhost)",
                    "pop3 has no SMTP client: delivered through sendmail to the same local \
                     user instead",
                );
                e.acc.deliver = Some(Deliver::Mda(format!(
                    "/usr/sbin/sendmail -i -f %F -- {}",
                    shell_quote(&local)
                )));
            }
            if let Some(Deliver::Mda(cmd)) = &e.acc.deliver
                && cmd.contains("%T")
            {
                report(
                    e.acc.line,
                    "mda %T",
                    "pop3 knows only %F (the sender); replace %T by the local user",
                );
            }
            for (line, option, why) in &e.notes {
                report(*line, option, why);
            }
            out.accounts.push(e.acc);
        }
        // Notes of a poll with users were copied into each user.
    }
}

/// Whether `kw` (lower case) starts an option, ends a local-name list, or starts a block.
fn is_keyword(kw: &str) -> bool {
    matches!(
        kw,
        "poll"
            | "skip"
            | "server"
            | "defaults"
            | "set"
            | "no"
            | "keep"
            | "nokeep"
            | "ssl"
            | "sslcertck"
            | "is"
            | "to"
            | "aka"
            | "localdomains"
    ) || KNOWN_WITH_ARG.contains(&kw)
        || DROPPED_FLAGS.iter().any(|(k, _)| *k == kw)
        || DROPPED_WITH_ARG.iter().any(|(k, _)| *k == kw)
        || NOISE.contains(&kw)
}

/// `s` as one word for `sh -c`.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// One idfile line: (remote user, host, uid).
pub type IdLine = (String, String, String);

/// Parse fetchmail's idfile. Lines that fetchmail itself would skip (no blank) are errors
/// here: such a file is not an idfile.
pub fn parse_ids(file: &Path, text: &str) -> Result<Vec<IdLine>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start_matches([' ', '\t']).trim_end();
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| {
            ParseError::new(
                file,
                n + 1,
                format!("{what} (expected \"USER@HOST UID\": is this fetchmail's idfile?)"),
            )
        };
        let (who, uid) = line.split_once([' ', '\t']).ok_or_else(|| bad("no UID"))?;
        let uid = uid.trim_start_matches([' ', '\t']);
        let uid = uid.split([' ', '\t']).next().unwrap_or("");
        let (user, host) = who.rsplit_once('@').ok_or_else(|| bad("no USER@HOST"))?;
        if user.is_empty() || host.is_empty() || uid.is_empty() {
            return Err(bad("an empty user, host or UID"));
        }
        out.push((user.to_owned(), host.to_owned(), uid.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Rc {
        parse(Path::new("fetchmailrc"), text, "me").unwrap()
    }

    fn dropped(rc: &Rc) -> Vec<String> {
        rc.parsed.dropped.iter().map(|d| d.option.clone()).collect()
    }

    #[test]
    fn noise_words_quoting_and_defaults() {
        let rc = parse_ok(
            "# comment\n\
             set no bouncemail\nset idfile \"~/.fm/ids\"\n\
             defaults proto pop3 , keep ; timeout 30\n\
             poll mail.example.com with protocol POP3 and port 995:\n\
             \x20 user 'alice@example.com' there with password \"p\\\"w # not a comment\" \
             is alice here\n\
             \x20 options ssl sslcertck sslcertfile \"/etc/ca.pem\" limit 100000\n\
             \x20 mda \"/usr/bin/procmail -d %T\"\n",
        );
        assert_eq!(rc.idfile.as_deref(), Some("~/.fm/ids"));
        let a = &rc.parsed.accounts[0];
        assert_eq!(a.name, "mail-example-com");
        assert_eq!(a.line, 6);
        assert_eq!(a.host, "mail.example.com");
        assert_eq!(a.port, Some(995));
        assert_eq!(a.user, "alice@example.com");
        assert_eq!(
            a.password,
            Some(Password::Literal("p\"w # not a comment".into()))
        );
        assert_eq!(a.tls, TlsMode::Implicit);
        assert!(a.keep, "keep from defaults");
        assert_eq!(a.timeout_secs, Some(30));
        assert_eq!(a.max_size, Some(100000));
        assert_eq!(a.tls_ca_file.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            a.deliver,
            Some(Deliver::Mda("/usr/bin/procmail -d %T".into()))
        );
        assert!(dropped(&rc).contains(&"mda %T".to_owned()), "{rc:?}");
        assert_eq!(
            a.seen,
            Some(SeenFrom::Fetchmail {
                user: "alice@example.com".into(),
                host: "mail.example.com".into()
            })
        );
    }

    #[test]
    fn several_users_via_skip_and_no_keep() {
        let rc = parse_ok(
            "skip pop.example.com via 10.0.0.1 proto apop no keep fetchall\n\
             user bob pass b1 is bob\n\
             user carol pass c1 is carol here keep\n\
             poll imap.example.com proto imap user dave\n",
        );
        let names: Vec<&str> = rc.parsed.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["pop-example-com-bob", "pop-example-com-carol"]);
        let (bob, carol) = (&rc.parsed.accounts[0], &rc.parsed.accounts[1]);
        assert_eq!(bob.host, "10.0.0.1");
        assert_eq!(bob.auth, Some("apop"));
        assert!(!bob.keep);
        assert!(carol.keep);
        assert_eq!(bob.tls, TlsMode::Starttls);
        assert_eq!(
            bob.deliver,
            Some(Deliver::Mda("/usr/sbin/sendmail -i -f %F -- bob".into()))
        );
        let d = dropped(&rc);
        for want in ["fetchall", "skip", "protocol imap", "(no ssl)"] {
            assert!(d.iter().any(|o| o == want), "{want} in {d:?}");
        }
    }

    #[test]
    fn defaults_user_and_no_user_fall_back_to_the_login() {
        let rc = parse_ok("poll a.example sslproto '' user x\npoll b.example\n");
        assert_eq!(rc.parsed.accounts[0].tls, TlsMode::None);
        assert_eq!(rc.parsed.accounts[1].user, "me");
    }

    /// Without TLS fetchmail's `auth any` (the default) and `auth password` end in USER/PASS;
    /// APOP and CRAM-MD5 hide the password; with TLS nothing is sent in the clear.
    #[test]
    fn plain_pop3_with_user_pass_is_allowed_explicitly_and_warned_about() {
        for (poll, allowed) in [
            ("poll a sslproto '' user x\n", true),
            ("poll a sslproto none auth password user x\n", true),
            ("poll a sslproto '' protocol apop user x\n", false),
            ("poll a sslproto '' auth cram-md5 user x\n", false),
            ("poll a ssl user x\n", false),
            ("poll a user x\n", false),
        ] {
            let mut rc = parse_ok(poll);
            assert_eq!(
                rc.parsed.accounts[0].allow_plaintext_password, allowed,
                "{poll}"
            );
            crate::import::plaintext_warnings(&mut rc.parsed, "fetchmail");
            let first = rc.parsed.dropped.first().map(|d| d.why.clone());
            assert_eq!(
                first.as_deref().is_some_and(
                    |w| w.contains("sends its password unencrypted, as it did with fetchmail")
                ),
                allowed,
                "{poll}: {first:?}"
            );
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse(Path::new("rc"), "poll a\n  user b\n  frobnicate\n", "me").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .starts_with("rc:3: unknown keyword `frobnicate`"),
            "{e}"
        );
        let e = parse(Path::new("rc"), "poll a\nuser \"b\n\n", "me").unwrap_err();
        assert_eq!((e.line, e.message.contains("not closed")), (2, true));
        // An mpoprc is not a fetchmailrc.
        let e = parse(Path::new("rc"), "defaults\ntls on\naccount x\n", "me").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse(Path::new("rc"), "host x\n", "me").unwrap_err();
        assert!(e.message.contains("not a fetchmailrc"), "{e}");
        let e = parse(Path::new("rc"), "poll a port 99999\n", "me").unwrap_err();
        assert!(e.message.contains("out of range"), "{e}");
    }

    #[test]
    fn idfile_lines() {
        let ids = parse_ids(
            Path::new("ids"),
            "alice@example.com@pop.example.com <a@b.c>\n  bob@h UID 2\n\n",
        )
        .unwrap();
        assert_eq!(
            ids,
            vec![
                (
                    "alice@example.com".into(),
                    "pop.example.com".into(),
                    "<a@b.c>".into()
                ),
                ("bob".into(), "h".into(), "UID".into()),
            ]
        );
        let e = parse_ids(Path::new("ids"), "a@b x\nMPOP_UIDLS\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("ids:2: "), "{e}");
    }
}
