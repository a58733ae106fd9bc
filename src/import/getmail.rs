//! getmail6's rc files (`~/.config/getmail/getmailrc`, `~/.getmail/getmailrc`, or any file
//! given with `--rcfile`; one account per file) and its `oldmail-*` state files.
//!
//! The rc is an INI file (Python's configparser): `[section]` headers, `key = value` or
//! `key: value`, comment lines starting with `#` or `;`, indented lines continuing the
//! value above. Arguments are Python tuples: `("a", "b")`.
//!
//! The state: `oldmail-SERVER-PORT-USER` in the getmail directory (the characters
//! `/ \ : ; < > |` replaced by `-`), one line per message: `UID` NUL `UNIX-SECONDS`, the
//! time getmail first saw it.

use std::collections::HashMap;
use std::path::Path;

use super::{Deliver, Imported, ParseError, Parsed, Password, SeenFrom};
use crate::config::TlsMode;

/// One section: key -> (value, line).
type Section = HashMap<String, (String, usize)>;

/// Read the INI structure: sections in file order.
fn ini(file: &Path, text: &str) -> Result<Vec<(String, usize, Section)>, ParseError> {
    let mut out: Vec<(String, usize, Section)> = Vec::new();
    let mut last_key: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let (Some(key), Some((_, _, section))) = (&last_key, out.last_mut())
        {
            // A continuation line.
            if let Some((value, _)) = section.get_mut(key) {
                value.push('\n');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| {
                ParseError::new(file, line, "a section header without its closing ]")
            })?;
            out.push((name.trim().to_owned(), line, Section::new()));
            last_key = None;
            continue;
        }
        let Some(sep) = trimmed.find(['=', ':']) else {
            return Err(ParseError::new(
                file,
                line,
                format!(
                    "expected `key = value` or a [section], not {trimmed:?} (is this a getmailrc?)"
                ),
            ));
        };
        let Some((_, _, section)) = out.last_mut() else {
            return Err(ParseError::new(
                file,
                line,
                "a setting before the first [section] (is this a getmailrc?)",
            ));
        };
        let key = trimmed[..sep].trim().to_ascii_lowercase();
        let value = trimmed[sep + 1..].trim().to_owned();
        section.insert(key.clone(), (value, line));
        last_key = Some(key);
    }
    Ok(out)
}

/// A Python boolean as configparser reads it.
fn boolean(file: &Path, key: &str, (value, line): &(String, usize)) -> Result<bool, ParseError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(ParseError::new(
            file,
            *line,
            format!("{key} wants true or false, not {value:?}"),
        )),
    }
}

fn number(file: &Path, key: &str, (value, line): &(String, usize)) -> Result<u64, ParseError> {
    value
        .parse()
        .map_err(|_| ParseError::new(file, *line, format!("{key} wants a number, not {value:?}")))
}

/// A Python tuple of strings, `("a", 'b',)`, or a bare string (one element).
fn tuple(
    file: &Path,
    key: &str,
    (value, line): &(String, usize),
) -> Result<Vec<String>, ParseError> {
    let v = value.trim();
    let Some(inner) = v.strip_prefix('(').and_then(|v| v.strip_suffix(')')) else {
        return Ok(vec![v.to_owned()]);
    };
    let bad = || ParseError::new(file, *line, format!("{key}: not a tuple of strings: {v}"));
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(q) = chars.next() else { break };
        if q != '"' && q != '\'' {
            return Err(bad());
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                None => return Err(bad()),
                Some('\\') => s.push(chars.next().ok_or_else(bad)?),
                Some(c) if c == q => break,
                Some(c) => s.push(c),
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// argv as one `sh -c` string.
fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%,+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The account name for a getmailrc file name: `getmailrc` -> `getmail`, `getmailrc-work`
/// or `work.getmailrc` -> `work`.
pub fn name_for(file: &Path) -> String {
    let stem = file
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest = stem.replace("getmailrc", "");
    let rest = rest.trim_matches(['-', '.', '_']);
    if rest.is_empty() {
        "getmail".to_owned()
    } else {
        super::account_name(rest)
    }
}

/// getmail's name for the state file of a POP3 account.
pub fn oldmail_name(server: &str, port: u16, user: &str) -> String {
    let raw = format!("oldmail-{server}-{port}-{user}");
    let mut out = String::with_capacity(raw.len());
    let mut in_run = false;
    for c in raw.chars() {
        if "/\\:;<>|".contains(c) {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// Options of `[options]` that pop3 does not carry over, with the reason.
const DROPPED_OPTIONS: &[(&str, &str)] = &[
    (
        "delete_bigger_than",
        "pop3 never deletes a message it has not delivered",
    ),
    ("max_messages_per_session", "use `pop3 fetch --limit N`"),
    ("max_bytes_per_session", "use `pop3 fetch --limit N`"),
    ("delivered_to", "pop3 adds only its Received: header"),
    ("message_log", "pop3 logs to stderr (-v)"),
    ("message_log_syslog", "pop3 logs to stderr (-v)"),
    ("message_log_verbose", "pop3 logs to stderr (-v)"),
    (
        "to_oldmail_on_each_mail",
        "pop3 records each message as soon as it is delivered",
    ),
    ("skip_imap_fetch_size", "IMAP only"),
    ("fingerprint", "use `pop3 probe` to see the certificate"),
    ("logfile", "pop3 logs to stderr (-v)"),
];

/// Options of `[options]` that change nothing we need to say.
const QUIET_OPTIONS: &[&str] = &["verbose"];

/// Parse one getmailrc (one account, named after the file).
pub fn parse(file: &Path, text: &str) -> Result<Parsed, ParseError> {
    let sections = ini(file, text)?;
    let mut out = Parsed::default();
    let find = |name: &str| sections.iter().find(|(n, _, _)| n == name);
    let Some((_, r_line, r)) = find("retriever") else {
        return Err(ParseError::new(
            file,
            1,
            "no [retriever] section (is this a getmailrc?)",
        ));
    };
    let mut a = Imported::new(file, *r_line, &name_for(file));
    let name = a.name.clone();
    let get = |s: &Section, k: &str| s.get(k).cloned();
    let need = |k: &str| {
        get(r, k).ok_or_else(|| ParseError::new(file, *r_line, format!("[retriever] has no `{k}`")))
    };
    let (kind, kind_line) = need("type")?;
    let note = |out: &mut Parsed, line: usize, option: &str, why: &str| {
        out.drop_option(file, line, &name, option, why);
    };
    let (ssl, multidrop, broken) = match kind.as_str() {
        "SimplePOP3Retriever" => (false, false, false),
        "SimplePOP3SSLRetriever" => (true, false, false),
        "MultidropPOP3Retriever" => (false, true, false),
        "MultidropPOP3SSLRetriever" => (true, true, false),
        "BrokenUIDLPOP3Retriever" => (false, false, true),
        "BrokenUIDLPOP3SSLRetriever" => (true, false, true),
        k if k.contains("IMAP") || k.contains("SPDS") => {
            note(
                &mut out,
                kind_line,
                &format!("type = {k}"),
                "not POP3: this account is not imported",
            );
            return Ok(out);
        }
        k => {
            return Err(ParseError::new(
                file,
                kind_line,
                format!("unknown retriever type {k:?}"),
            ));
        }
    };
    if multidrop {
        note(
            &mut out,
            kind_line,
            &format!("type = {kind}"),
            "multidrop: pop3 delivers the whole mailbox to one place",
        );
    }
    a.tls = if ssl {
        TlsMode::Implicit
    } else {
        TlsMode::None
    };
    a.host = need("server")?.0;
    a.user = need("username")?.0;
    let port = match get(r, "port") {
        Some(p) => {
            let n = number(file, "port", &p)?;
            u16::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| ParseError::new(file, p.1, format!("port {n} is out of range")))?
        }
        None if ssl => 995,
        None => 110,
    };
    a.port = Some(port);
    if !broken {
        a.seen = Some(SeenFrom::Getmail {
            file_name: oldmail_name(&a.host, port, &a.user),
        });
    } else {
        note(
            &mut out,
            kind_line,
            &format!("type = {kind}"),
            "getmail did not use UIDLs here; its state cannot be carried over (pop3 needs \
             UIDL; `pop3 state NAME mark-all-seen` skips what is on the server now)",
        );
    }
    let mut keys: Vec<(&String, &(String, usize))> = r.iter().collect();
    keys.sort_by_key(|(_, (_, l))| *l);
    for (k, v) in keys {
        match k.as_str() {
            "type" | "server" | "username" | "port" => {}
            "password" => a.password = Some(Password::Literal(v.0.clone())),
            "password_command" => {
                a.password = Some(Password::Command(shell_join(&tuple(file, k, v)?)))
            }
            "timeout" => a.timeout_secs = Some(number(file, k, v)?.clamp(1, 3600)),
            "ca_certs" => a.tls_ca_file = Some(v.0.clone()),
            "certfile" => a.tls_cert_file = Some(v.0.clone()),
            "keyfile" => a.tls_key_file = Some(v.0.clone()),
            "use_apop" => {
                if boolean(file, k, v)? {
                    a.auth = super::auth_name("apop");
                }
            }
            "ssl_fingerprints" => {
                let all = tuple(file, k, v)?;
                match all.iter().find(|f| super::is_sha256_hex(f)) {
                    Some(f) => a.tls_fingerprint = Some(f.clone()),
                    None => note(&mut out, v.1, k, "no SHA-256 fingerprint in the list"),
                }
                if all.len() > 1 {
                    note(
                        &mut out,
                        v.1,
                        k,
                        "only the first SHA-256 fingerprint is kept",
                    );
                }
            }
            "envelope_recipient" => note(
                &mut out,
                v.1,
                k,
                "multidrop: pop3 delivers the whole mailbox to one place",
            ),
            "ssl_cert_hostname" => note(
                &mut out,
                v.1,
                k,
                "pop3 checks the certificate against the server name",
            ),
            other => note(&mut out, v.1, other, "no equivalent in pop3"),
        }
    }
    if let Some((_, d_line, d)) = find("destination") {
        let (dtype, t_line) = get(d, "type")
            .ok_or_else(|| ParseError::new(file, *d_line, "[destination] has no `type`"))?;
        let path = get(d, "path");
        let need_path = || {
            path.clone()
                .map(|p| p.0)
                .ok_or_else(|| ParseError::new(file, *d_line, "[destination] has no `path`"))
        };
        match dtype.as_str() {
            "Maildir" => a.deliver = Some(Deliver::Maildir(need_path()?)),
            "Mboxrd" => a.deliver = Some(Deliver::Mbox(need_path()?)),
            "MDA_external" => {
                let mut argv = vec![need_path()?];
                if let Some(args) = get(d, "arguments") {
                    argv.extend(tuple(file, "arguments", &args)?);
                }
                let cmd = shell_join(&argv).replace("%(sender)s", "%F");
                if cmd.contains("%(") {
                    note(
                        &mut out,
                        t_line,
                        "MDA_external arguments",
                        "pop3 substitutes only %F (the sender); replace the other %(...)s",
                    );
                }
                a.deliver = Some(Deliver::Mda(cmd));
            }
            other => note(
                &mut out,
                t_line,
                &format!("type = {other}"),
                "no such delivery in pop3; set deliver.* by hand",
            ),
        }
        let mut keys: Vec<(&String, &(String, usize))> = d.iter().collect();
        keys.sort_by_key(|(_, (_, l))| *l);
        for (k, v) in keys {
            if !matches!(k.as_str(), "type" | "path" | "arguments") {
                note(&mut out, v.1, k, "no equivalent in pop3");
            }
        }
    }
    // getmail's defaults: delete = false, read_all = true.
    a.keep = true;
    if let Some((_, _, o)) = find("options") {
        let mut keys: Vec<(&String, &(String, usize))> = o.iter().collect();
        keys.sort_by_key(|(_, (_, l))| *l);
        for (k, v) in keys {
            match k.as_str() {
                "delete" => a.keep = !boolean(file, k, v)?,
                "delete_after" => {
                    let days = number(file, k, v)?;
                    a.delete_after_days = (days > 0).then_some(days);
                }
                "max_message_size" => {
                    let n = number(file, k, v)?;
                    a.max_size = (n > 0).then_some(n);
                }
                "read_all" => {
                    if boolean(file, k, v)? {
                        note(
                            &mut out,
                            v.1,
                            "read_all = true",
                            "pop3 fetches only what it has not seen; `pop3 fetch --all` \
                             fetches everything once",
                        );
                    }
                }
                "received" => a.add_received = Some(boolean(file, k, v)?),
                k if QUIET_OPTIONS.contains(&k) => {}
                other => {
                    let why = DROPPED_OPTIONS
                        .iter()
                        .find(|(n, _)| *n == other)
                        .map_or("no equivalent in pop3", |(_, w)| w);
                    note(&mut out, v.1, other, why);
                }
            }
        }
    }
    for (sname, line, _) in &sections {
        if !matches!(sname.as_str(), "retriever" | "destination" | "options") {
            note(
                &mut out,
                *line,
                &format!("[{sname}]"),
                "no filters in pop3; an MDA (deliver.mda) can filter",
            );
        }
    }
    // SimplePOP3Retriever logs in with USER/PASS (APOP with use_apop): unencrypted.
    super::carry_plaintext(&mut a, true);
    out.accounts.push(a);
    Ok(out)
}

/// Parse an oldmail file: (uid, first-seen unix seconds). Blank lines are skipped; any
/// other line without a NUL and a number is an error naming the line.
pub fn parse_oldmail(file: &Path, bytes: &[u8]) -> Result<Vec<(String, i64)>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |what: &str| {
            ParseError::new(
                file,
                n + 1,
                format!("{what} (expected UID, NUL, seconds: is this a getmail oldmail file?)"),
            )
        };
        let nul = line
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("no NUL"))?;
        let uid = std::str::from_utf8(&line[..nul])
            .map_err(|_| bad("a UID that is not UTF-8"))?
            .trim();
        let time = std::str::from_utf8(&line[nul + 1..])
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .ok_or_else(|| bad("a bad time"))?;
        if uid.is_empty() {
            return Err(bad("an empty UID"));
        }
        out.push((uid.to_owned(), time));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_retriever_maildir_and_options() {
        let p = parse(
            Path::new("/h/.config/getmail/getmailrc-work"),
            "[retriever]\n\
             type = SimplePOP3SSLRetriever\n\
             server = pop.example.com\n\
             username = alice@example.com\n\
             password_command = (\"/usr/bin/pass\", 'show', \"mail work\")\n\
             ca_certs = /etc/ca.pem\n\
             \n\
             [destination]\n\
             type = Maildir\n\
             path = ~/Mail/office/\n\
             \n\
             ; comment\n\
             [options]\n\
             delete = false\n\
             delete_after = 14\n\
             max_message_size: 1000000\n\
             verbose = 2\n\
             message_log = ~/.getmail/log\n\
             \n\
             [filter-spam]\n\
             type = Filter_external\n",
        )
        .unwrap();
        let a = &p.accounts[0];
        assert_eq!(a.name, "work");
        assert_eq!((a.tls, a.port), (TlsMode::Implicit, Some(995)));
        assert_eq!(
            a.password,
            Some(Password::Command("/usr/bin/pass show 'mail work'".into()))
        );
        assert_eq!(a.deliver, Some(Deliver::Maildir("~/Mail/office/".into())));
        assert!(a.keep);
        assert_eq!(a.delete_after_days, Some(14));
        assert_eq!(a.max_size, Some(1000000));
        assert_eq!(
            a.seen,
            Some(SeenFrom::Getmail {
                file_name: "oldmail-pop.example.com-995-alice@example.com".into()
            })
        );
        let dropped: Vec<&str> = p.dropped.iter().map(|d| d.option.as_str()).collect();
        assert_eq!(dropped, ["message_log", "[filter-spam]"]);
    }

    /// SimplePOP3Retriever logs in with USER/PASS over plain TCP: allowed explicitly; with
    /// use_apop or SSL it is not needed.
    #[test]
    fn simple_pop3_with_user_pass_is_allowed_explicitly() {
        for (retriever, allowed) in [
            ("type = SimplePOP3Retriever\n", true),
            ("type = SimplePOP3Retriever\nuse_apop = true\n", false),
            ("type = SimplePOP3SSLRetriever\n", false),
        ] {
            let p = parse(
                Path::new("getmailrc"),
                &format!(
                    "[retriever]\n{retriever}server = h\nusername = u\npassword = p\n\
                     [destination]\ntype = Maildir\npath = ~/M/\n"
                ),
            )
            .unwrap();
            assert_eq!(
                p.accounts[0].allow_plaintext_password, allowed,
                "{retriever}"
            );
        }
    }

    #[test]
    fn mda_external_plain_pop_and_imap() {
        let p = parse(
            Path::new("getmailrc"),
            "[retriever]\ntype = SimplePOP3Retriever\nserver = h\nusername = u\n\
             password = se:cr=et\nuse_apop = true\n\
             [destination]\ntype = MDA_external\npath = /usr/bin/procmail\n\
             arguments = (\"-f\", \"%(sender)s\")\n[options]\ndelete = true\n",
        )
        .unwrap();
        let a = &p.accounts[0];
        assert_eq!(a.name, "getmail");
        assert_eq!(
            (a.tls, a.port, a.auth),
            (TlsMode::None, Some(110), Some("apop"))
        );
        assert_eq!(a.password, Some(Password::Literal("se:cr=et".into())));
        assert_eq!(
            a.deliver,
            Some(Deliver::Mda("/usr/bin/procmail -f '%F'".into()))
        );
        assert!(!a.keep);
        let p = parse(
            Path::new("imaprc"),
            "[retriever]\ntype = SimpleIMAPSSLRetriever\nserver = h\nusername = u\n",
        )
        .unwrap();
        assert!(p.accounts.is_empty());
        assert_eq!(p.dropped[0].line, 2);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = |text: &str| parse(Path::new("rc"), text).unwrap_err();
        let e = err("[retriever]\ntype = SimplePOP3Retriever\nserver h\n");
        assert!(
            e.to_string().starts_with("rc:3: expected `key = value`"),
            "{e}"
        );
        assert_eq!(err("[options]\ndelete = 1\n").line, 1);
        let e = err("[retriever]\ntype = POP9\nserver = h\nusername = u\n");
        assert_eq!(e.line, 2);
        let e = err(
            "[retriever]\ntype = SimplePOP3Retriever\nserver = h\nusername = u\n\
             [options]\ndelete = perhaps\n",
        );
        assert_eq!(e.line, 6);
        // An mpoprc or a fetchmailrc is not a getmailrc.
        assert_eq!(err("account a\nhost h\n").line, 1);
        assert_eq!(err("poll pop.example.com\n").line, 1);
    }

    #[test]
    fn oldmail_files() {
        assert_eq!(
            oldmail_name("pop.example.com", 995, "a/b:c|d"),
            "oldmail-pop.example.com-995-a-b-c-d"
        );
        let got = parse_oldmail(Path::new("o"), b"u1\x001796590521\n\nu2\x0017\r\n").unwrap();
        assert_eq!(got, vec![("u1".into(), 1796590521), ("u2".into(), 17)]);
        let e = parse_oldmail(Path::new("o"), b"u1\x001\n 3 h u\n").unwrap_err();
        assert!(e.to_string().starts_with("o:2: no NUL"), "{e}");
        let e = parse_oldmail(Path::new("o"), b"u1\x00soon\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
