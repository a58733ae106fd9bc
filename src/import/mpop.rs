//! `~/.mpoprc` and mpop's UIDLs files.
//!
//! The rc (mpop(1), "CONFIGURATION FILES"): one `command argument` per line, `#` starts a
//! comment line, an argument in double quotes loses them. `defaults` collects settings that
//! every account declared after it copies; `account NAME : A, B` copies those defaults and
//! then what accounts A and B set; `account default : NAME` is an alias, not an account of
//! its own. Unknown commands are errors naming the file and line, as in mpop.
//!
//! The UIDLs file (`uidls_file`, default `~/.mpop_uidls/%U_at_%H`): comment lines first
//! (mpop writes a `#` header), then for each mailbox a line ` COUNT HOST USER` (starting
//! with a blank) followed by exactly COUNT UIDs, one per line. It has no times.

use std::collections::HashMap;
use std::path::Path;

use super::{Deliver, Imported, ParseError, Parsed, Password, SeenFrom};
use crate::config::TlsMode;

/// mpop's default UIDLs file.
pub const DEFAULT_UIDLS_FILE: &str = "~/.mpop_uidls/%U_at_%H";

/// One `command argument` line.
#[derive(Debug, Clone)]
struct Setting {
    cmd: String,
    arg: String,
    line: usize,
}

/// Commands that pop3 does not carry over, with the reason.
const DROPPED: &[(&str, &str)] = &[
    ("pipelining", "pop3 pipelines whenever the server offers it"),
    ("proxy_host", "pop3 connects directly (no SOCKS proxy)"),
    ("proxy_port", "pop3 connects directly (no SOCKS proxy)"),
    ("socket", "pop3 connects over TCP only"),
    ("source_ip", "no equivalent"),
    ("domain", "no equivalent (used in mpop's Received: header)"),
    ("ntlmdomain", "no NTLM in pop3"),
    ("filter", "no filter command in pop3; an MDA can filter"),
    ("tls_crl_file", "no CRL checks in pop3"),
    (
        "tls_priorities",
        "pop3 allows TLS 1.2 and 1.3 (tls_min_version to raise it)",
    ),
    ("tls_min_dh_prime_bits", "pop3 has no finite-field DH"),
    (
        "tls_host_override",
        "pop3 checks the certificate against the host name",
    ),
    ("tls_force_sslv3", "SSLv3 is insecure and not supported"),
    (
        "eval",
        "pop3 does not run commands to build its config; put the result in",
    ),
];

const KNOWN: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "passwordeval",
    "auth",
    "tls",
    "tls_starttls",
    "tls_trust_file",
    "tls_fingerprint",
    "tls_certcheck",
    "tls_key_file",
    "tls_cert_file",
    "delivery",
    "keep",
    "only_new",
    "killsize",
    "skipsize",
    "uidls_file",
    "received_header",
    "timeout",
];

/// Parse an mpoprc.
pub fn parse(file: &Path, text: &str) -> Result<Parsed, ParseError> {
    let mut defaults: Vec<Setting> = Vec::new();
    // (name, line, settings including inherited ones, own settings only)
    let mut accounts: Vec<(String, usize, Vec<Setting>)> = Vec::new();
    let mut own: HashMap<String, Vec<Setting>> = HashMap::new();
    let mut in_defaults = false;
    let mut parsed = Parsed::default();
    // `account default : x` lines, and how many settings each account has of its own.
    let mut aliases: Vec<(usize, String)> = Vec::new();
    let mut own_lines: HashMap<String, usize> = HashMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (cmd, arg) = match l.find([' ', '\t']) {
            Some(i) => (&l[..i], l[i..].trim()),
            None => (l, ""),
        };
        let arg = match arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
            Some(inner) => inner,
            None => arg,
        };
        match cmd {
            "defaults" => in_defaults = true,
            "account" => {
                in_defaults = false;
                let (name, bases) = match arg.split_once(':') {
                    Some((n, b)) => (n.trim(), Some(b)),
                    None => (arg, None),
                };
                if name.is_empty() || name.contains(',') {
                    return Err(ParseError::new(file, line, "missing or bad account name"));
                }
                if accounts.iter().any(|(a, _, _)| a == name) {
                    return Err(ParseError::new(
                        file,
                        line,
                        format!("account {name} is defined twice"),
                    ));
                }
                let mut settings = defaults.clone();
                let mut inherited = Vec::new();
                for base in bases.into_iter().flat_map(|b| b.split(',')) {
                    let base = base.trim();
                    let Some(from) = own.get(base) else {
                        return Err(ParseError::new(
                            file,
                            line,
                            format!("account {base} is not defined (before this line)"),
                        ));
                    };
                    inherited.extend(from.iter().cloned());
                }
                if name == "default" && bases.is_some() {
                    aliases.push((line, arg.to_owned()));
                }
                settings.extend(inherited.iter().cloned());
                own.insert(name.to_owned(), inherited);
                accounts.push((name.to_owned(), line, settings));
            }
            _ => {
                if !KNOWN.contains(&cmd) && !DROPPED.iter().any(|(k, _)| *k == cmd) {
                    return Err(ParseError::new(
                        file,
                        line,
                        format!("unknown command `{cmd}` (is this an mpoprc?)"),
                    ));
                }
                let s = Setting {
                    cmd: cmd.to_owned(),
                    arg: arg.to_owned(),
                    line,
                };
                if in_defaults {
                    defaults.push(s);
                } else if let Some((name, _, settings)) = accounts.last_mut() {
                    own.get_mut(name.as_str())
                        .expect("every account has its own list")
                        .push(s.clone());
                    *own_lines.entry(name.clone()).or_default() += 1;
                    settings.push(s);
                } else {
                    return Err(ParseError::new(
                        file,
                        line,
                        "the first command must be account or defaults (is this an mpoprc?)",
                    ));
                }
            }
        }
    }
    let is_alias =
        |name: &str| name == "default" && !aliases.is_empty() && !own_lines.contains_key("default");
    if let Some((line, arg)) = aliases.last()
        && is_alias("default")
    {
        parsed.drop_option(
            file,
            *line,
            "",
            &format!("account {arg}"),
            "an alias: `pop3 fetch` without a name fetches every account",
        );
    }
    for (name, line, settings) in accounts {
        if is_alias(&name) {
            continue;
        }
        account(file, &name, line, &settings, &mut parsed)?;
    }
    Ok(parsed)
}

/// `on`/`off` (mpop also takes an empty argument for `on`).
fn on_off(file: &Path, s: &Setting) -> Result<bool, ParseError> {
    match s.arg.as_str() {
        "" | "on" => Ok(true),
        "off" => Ok(false),
        other => Err(ParseError::new(
            file,
            s.line,
            format!("{} wants on or off, not \"{other}\"", s.cmd),
        )),
    }
}

/// mpop's size argument: a number with an optional `k` or `m`.
fn size(file: &Path, s: &Setting) -> Result<u64, ParseError> {
    let (digits, mul) = match s.arg.strip_suffix('k') {
        Some(d) => (d, 1 << 10),
        None => match s.arg.strip_suffix('m') {
            Some(d) => (d, 1 << 20),
            None => (s.arg.as_str(), 1),
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| {
            ParseError::new(
                file,
                s.line,
                format!("{} wants a size, not \"{}\"", s.cmd, s.arg),
            )
        })
}

/// Interpret the settings of one account (later ones win, as in mpop).
fn account(
    file: &Path,
    name: &str,
    line: usize,
    settings: &[Setting],
    out: &mut Parsed,
) -> Result<(), ParseError> {
    let mut a = Imported::new(file, line, &super::account_name(name));
    a.keep = false;
    let mut tls = false;
    let mut starttls = true;
    let mut uidls_file = DEFAULT_UIDLS_FILE.to_owned();
    let mut notes: Vec<(usize, String, &str)> = Vec::new();
    for s in settings {
        match s.cmd.as_str() {
            "host" => a.host = s.arg.clone(),
            "port" => {
                a.port = Some(
                    s.arg
                        .parse::<u16>()
                        .ok()
                        .filter(|&p| p > 0)
                        .ok_or_else(|| {
                            ParseError::new(file, s.line, format!("invalid port \"{}\"", s.arg))
                        })?,
                )
            }
            "user" => a.user = s.arg.clone(),
            "password" => a.password = Some(Password::Literal(s.arg.clone())),
            "passwordeval" => a.password = Some(Password::Command(s.arg.clone())),
            "auth" => match s.arg.to_ascii_lowercase().as_str() {
                "" | "on" => a.auth = None,
                other => match super::auth_name(other) {
                    Some(m) => a.auth = Some(m),
                    None => {
                        a.auth = None;
                        notes.push((
                            s.line,
                            format!("auth {other}"),
                            "pop3 has no such mechanism; it picks the strongest one offered",
                        ));
                    }
                },
            },
            "tls" => tls = on_off(file, s)?,
            "tls_starttls" => starttls = on_off(file, s)?,
            "tls_trust_file" => {
                a.tls_ca_file = (!s.arg.is_empty() && s.arg != "system").then(|| s.arg.clone())
            }
            "tls_fingerprint" => {
                if super::is_sha256_hex(&s.arg) {
                    a.tls_fingerprint = Some(s.arg.clone());
                } else if !s.arg.is_empty() {
                    notes.push((
                        s.line,
                        format!("tls_fingerprint {}", s.arg),
                        "not SHA-256 (SHA-1 or MD5): `pop3 probe HOST` shows the SHA-256 one",
                    ));
                }
            }
            "tls_certcheck" => {
                if !on_off(file, s)? {
                    notes.push((
                        s.line,
                        "tls_certcheck off".into(),
                        "pop3 always verifies the certificate; pin it with tls_fingerprint",
                    ));
                }
            }
            "tls_key_file" => a.tls_key_file = Some(s.arg.clone()),
            "tls_cert_file" => a.tls_cert_file = Some(s.arg.clone()),
            "delivery" => {
                let (kind, target) = match s.arg.find([' ', '\t']) {
                    Some(i) => (&s.arg[..i], s.arg[i..].trim()),
                    None => (s.arg.as_str(), ""),
                };
                let target = target.to_owned();
                a.deliver = match kind {
                    "maildir" if !target.is_empty() => Some(Deliver::Maildir(target)),
                    "mbox" if !target.is_empty() => Some(Deliver::Mbox(target)),
                    "mda" if !target.is_empty() => Some(Deliver::Mda(target)),
                    "exchange" => {
                        notes.push((
                            s.line,
                            format!("delivery {}", s.arg),
                            "pop3 has no Exchange delivery; set deliver.* by hand",
                        ));
                        None
                    }
                    _ => {
                        return Err(ParseError::new(
                            file,
                            s.line,
                            format!(
                                "invalid delivery \"{}\" (maildir DIR, mbox FILE, mda CMD)",
                                s.arg
                            ),
                        ));
                    }
                }
            }
            "keep" => a.keep = on_off(file, s)?,
            "only_new" => {
                if !on_off(file, s)? {
                    notes.push((
                        s.line,
                        "only_new off".into(),
                        "pop3 fetches only what it has not seen; `pop3 fetch --all` fetches \
                         everything once",
                    ));
                }
            }
            "killsize" => {
                if s.arg != "off" {
                    size(file, s)?;
                    notes.push((
                        s.line,
                        format!("killsize {}", s.arg),
                        "pop3 never deletes a message it has not delivered; it leaves big \
                         ones on the server (max_size)",
                    ));
                }
            }
            "skipsize" => {
                a.max_size = if s.arg == "off" {
                    None
                } else {
                    Some(size(file, s)?).filter(|&n| n > 0)
                }
            }
            "uidls_file" => uidls_file = s.arg.clone(),
            "received_header" => a.add_received = Some(on_off(file, s)?),
            "timeout" => {
                a.timeout_secs = if s.arg == "off" {
                    None
                } else {
                    Some(s.arg.parse::<u64>().map_err(|_| {
                        ParseError::new(file, s.line, format!("invalid timeout \"{}\"", s.arg))
                    })?)
                    .map(|t| t.clamp(1, 3600))
                }
            }
            other => {
                let why = DROPPED
                    .iter()
                    .find(|(k, _)| *k == other)
                    .map_or("no equivalent", |(_, w)| w);
                notes.push((s.line, format!("{} {}", s.cmd, s.arg), why));
            }
        }
    }
    if a.host.is_empty() {
        return Err(ParseError::new(
            file,
            line,
            format!("account {name} has no host"),
        ));
    }
    a.tls = match (tls, starttls) {
        (false, _) => TlsMode::None,
        (true, true) => TlsMode::Starttls,
        (true, false) => TlsMode::Implicit,
    };
    if a.tls == TlsMode::None {
        // Our default port follows our default tls, which is not mpop's.
        a.port.get_or_insert(110);
    }
    // `auth user|plain|login` with `tls off`: mpop sent the password in the clear (its
    // automatic choice never picks those methods without TLS).
    super::carry_plaintext(&mut a, false);
    if a.user.is_empty() {
        return Err(ParseError::new(
            file,
            line,
            format!("account {name} has no user"),
        ));
    }
    let file_name = uidls_file.replace("%U", &a.user).replace("%H", &a.host);
    a.seen = Some(SeenFrom::Mpop {
        file: file_name,
        host: a.host.clone(),
        user: a.user.clone(),
    });
    for (line, option, why) in notes {
        out.drop_option(file, line, &a.name, &option, why);
    }
    out.accounts.push(a);
    Ok(())
}

/// One list of an mpop UIDLs file: (host, user, uids).
pub type UidList = (String, String, Vec<String>);

/// Parse an mpop UIDLs file.
pub fn parse_uidls(file: &Path, text: &str) -> Result<Vec<UidList>, ParseError> {
    let mut out: Vec<UidList> = Vec::new();
    let mut want = 0usize;
    let mut comments = true;
    let mut last_line = 0;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        last_line = line_no;
        if comments && line.starts_with('#') {
            continue;
        }
        comments = false;
        if want == 0 {
            let bad = |what: &str| {
                ParseError::new(
                    file,
                    line_no,
                    format!("{what} (expected \" COUNT HOST USER\": is this an mpop UIDLs file?)"),
                )
            };
            let Some(rest) = line.strip_prefix(' ') else {
                return Err(bad("a UID without a list"));
            };
            let mut parts = rest.splitn(3, ' ');
            let count = parts
                .next()
                .and_then(|c| c.parse::<usize>().ok())
                .filter(|&c| c > 0)
                .ok_or_else(|| bad("an invalid number of UIDs"))?;
            let host = parts.next().filter(|h| !h.is_empty());
            let user = parts.next().filter(|u| !u.is_empty() && !u.contains(' '));
            let (Some(host), Some(user)) = (host, user) else {
                return Err(bad("a missing host or user name"));
            };
            out.push((host.to_owned(), user.to_owned(), Vec::new()));
            want = count;
        } else {
            if line.starts_with(' ') || line.is_empty() {
                return Err(ParseError::new(
                    file,
                    line_no,
                    "too few UIDs for the list above",
                ));
            }
            if let Some(list) = out.last_mut() {
                list.2.push(line.to_owned());
            }
            want -= 1;
        }
    }
    if want > 0 {
        return Err(ParseError::new(
            file,
            last_line,
            "too few UIDs for the last list (a truncated file?)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Parsed) -> Vec<&str> {
        p.accounts.iter().map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn defaults_and_account_inheritance() {
        let p = parse(
            Path::new("mpoprc"),
            "# comment\n\
             defaults\n\
             tls on\n\
             keep on\n\
             delivery maildir ~/Mail\n\
             account base\n\
             host pop.example.com\n\
             user alice\n\
             passwordeval \"pass show mail\"\n\
             \n\
             defaults\n\
             tls_starttls off\n\
             account second : base\n\
             user bob\n\
             password \"two words\"\n\
             skipsize 10k\n\
             killsize 20m\n\
             uidls_file ~/.u/%U@%H\n\
             account default : second\n",
        )
        .unwrap();
        assert_eq!(names(&p), ["base", "second"]);
        let (base, second) = (&p.accounts[0], &p.accounts[1]);
        assert_eq!(base.tls, TlsMode::Starttls, "defaults later do not apply");
        assert_eq!(second.tls, TlsMode::Implicit);
        assert_eq!(second.host, "pop.example.com", "inherited from base");
        assert_eq!(second.user, "bob");
        assert!(base.keep && second.keep);
        assert_eq!(
            base.password,
            Some(Password::Command("pass show mail".into()))
        );
        assert_eq!(second.password, Some(Password::Literal("two words".into())));
        assert_eq!(second.max_size, Some(10 << 10));
        assert_eq!(second.deliver, Some(Deliver::Maildir("~/Mail".into())));
        assert_eq!(
            second.seen,
            Some(SeenFrom::Mpop {
                file: "~/.u/bob@pop.example.com".into(),
                host: "pop.example.com".into(),
                user: "bob".into()
            })
        );
        assert_eq!(
            base.seen,
            Some(SeenFrom::Mpop {
                file: "~/.mpop_uidls/alice_at_pop.example.com".into(),
                host: "pop.example.com".into(),
                user: "alice".into()
            })
        );
        let dropped: Vec<&str> = p.dropped.iter().map(|d| d.option.as_str()).collect();
        assert_eq!(dropped, ["account default : second", "killsize 20m"]);
        assert_eq!(p.dropped[1].line, 17);
    }

    #[test]
    fn tls_off_keeps_port_110_and_unknown_auth_is_reported() {
        let p = parse(
            Path::new("rc"),
            "account a\nhost h\nuser u\nauth gssapi\ntls off\ntls_certcheck off\n\
             delivery mda /usr/bin/procmail -f '%F'\n",
        )
        .unwrap();
        let a = &p.accounts[0];
        assert_eq!((a.tls, a.port, a.auth), (TlsMode::None, Some(110), None));
        assert_eq!(
            a.deliver,
            Some(Deliver::Mda("/usr/bin/procmail -f '%F'".into()))
        );
        assert_eq!(p.dropped.len(), 2);
    }

    /// `auth user|plain|login` with `tls off` (mpop's default) sent the password in the
    /// clear: carried over with allow_plaintext_password, which the TOML shows. mpop's
    /// automatic choice and a hiding mechanism do not need it, nor does TLS.
    #[test]
    fn plaintext_login_without_tls_is_allowed_explicitly() {
        for (lines, allowed) in [
            ("auth user\n", true),
            ("auth plain\n", true),
            ("auth login\n", true),
            ("", false),
            ("auth on\n", false),
            ("auth cram-md5\n", false),
            ("auth user\ntls on\n", false),
        ] {
            let p = parse(
                Path::new("rc"),
                &format!("account a\nhost h\nuser u\n{lines}delivery maildir ~/M\n"),
            )
            .unwrap();
            let a = &p.accounts[0];
            assert_eq!(a.allow_plaintext_password, allowed, "{lines:?}");
            let toml = crate::import::to_toml(a, crate::import::PasswordPlacement::Literal);
            assert_eq!(
                toml.contains("\nallow_plaintext_password = true\n"),
                allowed,
                "{toml}"
            );
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = |text: &str| parse(Path::new("rc"), text).unwrap_err();
        let e = err("account a\nhost h\nfrobnicate 1\n");
        assert_eq!(
            e.to_string(),
            "rc:3: unknown command `frobnicate` (is this an mpoprc?)"
        );
        assert_eq!(err("host h\n").line, 1);
        assert_eq!(err("account a : nope\n").line, 1);
        assert_eq!(err("account a\nhost h\nkeep maybe\n").line, 3);
        assert_eq!(
            err("account a\nhost h\nuser u\ndelivery pigeon x\n").line,
            4
        );
        assert!(err("account a\nuser u\n").message.contains("no host"));
        // A fetchmailrc is not an mpoprc.
        assert_eq!(err("# x\npoll pop.example.com user a\n").line, 2);
        // A getmailrc neither.
        assert_eq!(err("[retriever]\ntype = SimplePOP3Retriever\n").line, 1);
    }

    #[test]
    fn uidls_files() {
        let text = "# This file was generated by mpop version 1.4.18.\n#\n \
                    2 pop.example.com alice\nA1\n#B2\n 1 h bob\nC\n";
        let lists = parse_uidls(Path::new("u"), text).unwrap();
        assert_eq!(
            lists,
            vec![
                (
                    "pop.example.com".into(),
                    "alice".into(),
                    vec!["A1".into(), "#B2".into()]
                ),
                ("h".into(), "bob".into(), vec!["C".into()]),
            ]
        );
        let e = parse_uidls(Path::new("u"), " 3 h u\na\nb\n").unwrap_err();
        assert_eq!((e.line, e.message.contains("too few")), (3, true));
        let e = parse_uidls(Path::new("u"), " 2 h u\na\n 1 h v\nb\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_uidls(Path::new("u"), "bench@127.0.0.1 uid\n").unwrap_err();
        assert!(
            e.to_string().starts_with("u:1: a UID without a list"),
            "{e}"
        );
        assert!(parse_uidls(Path::new("u"), "").unwrap().is_empty());
    }
}
