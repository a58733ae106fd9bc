//! `pop3 probe ACCOUNT|HOST[:PORT]`: what a server offers, before and after STLS and login,
//! its TLS version and certificate chain with SHA-256 fingerprints. With a HOST no password
//! is needed and no login is tried.

use std::process::ExitCode;

use super::Context;
use crate::cli::ProbeArgs;
use crate::config::range::PORT;
use crate::config::{DEFAULT_TIMEOUT, Login, Overrides, Server, TlsMode};
use crate::error::{Error, ErrorKind};
use crate::net::tls::{self, hex_colons};
use crate::proto::sanitize::sanitize;
use crate::proto::{Capabilities, Expire};
use crate::session::{self, Connected, Opened, choose_mechanism};
use rustls::pki_types::CertificateDer;

/// Run `pop3 probe`.
pub fn run(ctx: &Context, args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let is_account = ctx.config.account_names().contains(&args.target.as_str());
    // An account brings its login too; a HOST only a server (no password, no login).
    let (server, account) = if is_account {
        let over = Overrides {
            tls: args.tls,
            ca_file: args.ca_file.clone(),
            no_delivery: true,
            ..Overrides::default()
        };
        let account = ctx.config.resolve(Some(&args.target), &over)?;
        (account.server.clone(), Some(account))
    } else {
        let (host, port) = split_host_port(&args.target)?;
        // A bare word is a mistyped account name far more often than a host on the local
        // network: say so instead of asking DNS about it.
        let bare = !host.contains(['.', ':']) && host != "localhost";
        if bare && port.is_none() {
            let known = ctx.config.account_names().join(", ");
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "no account named {host:?} in {} ({}); for a host, give its full name \
                     (pop.example.com) or HOST:PORT",
                    ctx.config
                        .path
                        .as_ref()
                        .map_or("the config (there is no config file)".into(), |p| p
                            .display()
                            .to_string()),
                    if known.is_empty() {
                        "no accounts".to_owned()
                    } else {
                        format!("accounts: {known}")
                    }
                ),
            )
            .into());
        }
        // Port 110 is POP3 with STLS; anything else is taken as implicit TLS (995 and the
        // usual alternatives). --tls says otherwise.
        let tls = args.tls.unwrap_or(if port == Some(110) {
            TlsMode::Starttls
        } else {
            TlsMode::Implicit
        });
        let mut server = Server::new(
            host,
            port.unwrap_or(tls.default_port()),
            tls,
            DEFAULT_TIMEOUT,
        );
        server.tls_ca_file = args.ca_file.clone();
        (server, None)
    };
    outln!(
        "server       {}:{} (tls {})",
        server.host,
        server.port,
        server.tls.name()
    );
    let opened = match open_showing(&server)? {
        Opening::Trusted(opened) => opened,
        Opening::Untrusted {
            chain,
            reason,
            error,
            shown,
        } => {
            // Show, don't trust: everything the server offers, but no login and no secret.
            print_chain(&chain);
            outln!("trust        refused: {}", tls::describe_refusal(&reason));
            match shown {
                Ok(opened) => {
                    show_opened(&opened, false);
                    let Opened { session, caps, .. } = opened;
                    print_mechanism(account.as_ref(), &server, &caps, &session);
                    let _ = session.quit();
                }
                Err(e) => outln!("capabilities unknown: {}", e.chain()),
            }
            if tls::pinnable(&reason) {
                outln!(
                    "pin          only once you have checked the fingerprint another way, add \
                     to the account:"
                );
                outln!("{}", pin_line(&chain[0]));
            }
            if account.is_some() {
                outln!(
                    "login        not tried: the certificate is not trusted (no password was sent)"
                );
            }
            return Err(error.into());
        }
    };
    show_opened(&opened, true);
    let Opened { session, caps, .. } = opened;
    print_mechanism(account.as_ref(), &server, &caps, &session);
    let Some(account) = account else {
        let _ = session.quit();
        return Ok(ExitCode::SUCCESS);
    };
    let password = session::credential(&account, None)?;
    let Connected {
        mut session,
        caps,
        mechanism,
        ..
    } = session::authenticate(&account, session, caps, &password)?;
    drop(password);
    outln!("logged in    with {}", mechanism.config_name());
    outln!("after login  {}", describe(&caps));
    let (count, size) = session.stat()?;
    outln!("mailbox      {count} messages, {} bytes", size.0);
    session.quit()?;
    if let Some(Expire::Days(0)) = caps.expire
        && account.policy.keep
    {
        outln!(
            "warning      the server deletes messages once retrieved (EXPIRE 0), whatever keep says"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How a connection for looking at a server turned out.
pub enum Opening {
    /// Secured as the account says (the certificate, if any, was trusted).
    Trusted(Opened),
    /// The certificate was refused. `shown` is a second connection that trusts exactly the
    /// certificate just seen (a pin of its SHA-256), so that the server's capabilities can
    /// be shown: nothing secret may be sent on it. `error` is the refusal as `open` gave it.
    Untrusted {
        chain: Vec<CertificateDer<'static>>,
        reason: rustls::Error,
        error: Error,
        shown: Result<Opened, Error>,
    },
}

/// Open a connection to `server`; when its certificate is refused, open another one that
/// trusts only that certificate, to show what the server offers ("show, don't trust").
/// Used by `pop3 probe` and `pop3 init`; neither logs in on an untrusted connection.
pub fn open_showing(server: &Server) -> Result<Opening, Error> {
    let client = match server.tls {
        TlsMode::None => None,
        _ => Some(session::tls_client(server)?),
    };
    let error = match session::open_with(server, client.clone()) {
        Ok(opened) => return Ok(Opening::Trusted(opened)),
        Err(e) => e,
    };
    let refused = client
        .as_ref()
        .and_then(|c| c.refusal().zip(c.presented_chain()));
    let Some((reason, chain)) = refused.filter(|(_, chain)| !chain.is_empty()) else {
        return Err(error);
    };
    let mut pinned = server.clone();
    pinned.tls_ca_file = None;
    pinned.tls_fingerprints = vec![tls::cert_fingerprint(&chain[0])];
    let shown = session::open(&pinned);
    Ok(Opening::Untrusted {
        chain,
        reason,
        error,
        shown,
    })
}

/// The config line that trusts exactly this certificate.
pub fn pin_line(cert: &CertificateDer<'_>) -> String {
    format!(
        "tls_fingerprint = \"sha256:{}\"",
        hex_colons(&tls::cert_fingerprint(cert))
    )
}

/// Greeting, capabilities before STLS, TLS version, the certificate chain (unless already
/// shown) and the capabilities.
fn show_opened(opened: &Opened, with_chain: bool) {
    outln!("greeting     {}", sanitize(opened.session.greeting()));
    if let Some(before) = &opened.caps_before_stls {
        outln!("before STLS  {}", describe(before));
    }
    if let Some(t) = opened.session.stream().tls_description() {
        outln!("tls          {t}");
    }
    if let Some(chain) = opened.tls.as_ref().and_then(|c| c.presented_chain())
        && with_chain
    {
        print_chain(&chain);
    }
    outln!("capabilities {}", describe(&opened.caps));
}

/// The mechanism a login would use (judged by `auth = "auto"` for a HOST).
fn print_mechanism(
    account: Option<&crate::config::Account>,
    server: &Server,
    caps: &Capabilities,
    session: &crate::client::Session<crate::net::Stream, crate::client::Authorization>,
) {
    let encrypted = session.stream().is_encrypted();
    let default_login = Login::default();
    let login = account.map_or(&default_login, |a| &a.login);
    match choose_mechanism(login, &server.host, caps, session.greeting(), encrypted) {
        Ok(m) => outln!("login        {} would be used", m.config_name()),
        Err(e) => outln!("login        impossible: {}", e.message()),
    }
}

fn print_chain(chain: &[CertificateDer<'static>]) {
    for (i, cert) in chain.iter().enumerate() {
        for line in describe_cert(i, cert) {
            outln!("{line}");
        }
    }
}

/// A certificate as `probe` and `init` show it: names, validity, fingerprints.
pub fn describe_cert(i: usize, cert: &CertificateDer<'_>) -> Vec<String> {
    let s = tls::summarize(cert);
    let mut lines = vec![format!(
        "certificate  {i}: subject CN={} issuer CN={}",
        s.subject, s.issuer
    )];
    if let Some((from, to)) = s.validity {
        let now = jiff::Timestamp::now();
        let note = if now > to {
            " (EXPIRED)"
        } else if now < from {
            " (NOT VALID YET)"
        } else {
            ""
        };
        let day = |t: jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
        lines.push(format!("  valid      {} to {}{note}", day(from), day(to)));
    }
    lines.push(format!("  sha256     {}", hex_colons(&s.sha256)));
    if let Some(spki) = s.spki_sha256 {
        lines.push(format!("  key sha256 {}", hex_colons(&spki)));
    }
    lines
}

/// The capabilities as one line, in CAPA's words.
pub fn describe(c: &Capabilities) -> String {
    let mut words: Vec<String> = Vec::new();
    let flags = [
        (c.user, "USER"),
        (c.uidl, "UIDL"),
        (c.top, "TOP"),
        (c.pipelining, "PIPELINING"),
        (c.stls, "STLS"),
        (c.resp_codes, "RESP-CODES"),
        (c.auth_resp_code, "AUTH-RESP-CODE"),
    ];
    words.extend(
        flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, w)| w.to_string()),
    );
    if !c.sasl.is_empty() {
        words.push(format!("SASL({})", c.sasl.join(" ")));
    }
    if let Some(d) = c.login_delay {
        words.push(format!("LOGIN-DELAY {d}"));
    }
    match c.expire {
        Some(Expire::Never) => words.push("EXPIRE NEVER".into()),
        Some(Expire::Days(d)) => words.push(format!("EXPIRE {d}")),
        None => {}
    }
    if let Some(i) = &c.implementation {
        words.push(format!("IMPLEMENTATION {}", sanitize(i.as_bytes())));
    }
    if words.is_empty() {
        "(none announced)".into()
    } else {
        words.join(" ")
    }
}

/// `host`, `host:port`, `[v6]:port`; the port within `config::range::PORT`.
pub(crate) fn split_host_port(target: &str) -> Result<(String, Option<u16>), Error> {
    let (host, port) = split_unchecked(target)?;
    match port {
        Some(p) if !PORT.contains(&p) => Err(Error::new(
            ErrorKind::Usage,
            format!(
                "{target:?}: port {p} is out of range: it must be from {} to {}",
                PORT.start(),
                PORT.end()
            ),
        )),
        _ => Ok((host, port)),
    }
}

fn split_unchecked(target: &str) -> Result<(String, Option<u16>), Error> {
    let bad = || {
        Error::new(
            ErrorKind::Usage,
            format!("{target:?} is neither an account in the config nor HOST[:PORT]"),
        )
    };
    if let Some(rest) = target.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None if tail.is_empty() => None,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match target.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((host.to_owned(), Some(port.parse().map_err(|_| bad())?)))
        }
        _ if target.is_empty() => Err(bad()),
        _ => Ok((target.to_owned(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("h").unwrap(), ("h".into(), None));
        assert_eq!(split_host_port("h:110").unwrap(), ("h".into(), Some(110)));
        assert_eq!(
            split_host_port("[::1]:995").unwrap(),
            ("::1".into(), Some(995))
        );
        assert!(split_host_port("h:x").is_err());
        assert!(split_host_port("").is_err());
        assert_eq!(split_host_port("h:65535").unwrap().1, Some(65535));
        for bad in ["h:0", "[::1]:0", "h:65536"] {
            let e = split_host_port(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage, "{bad}");
        }
        let e = split_host_port("h:0").unwrap_err().to_string();
        assert!(e.contains("1 to 65535"), "{e}");
    }
}
