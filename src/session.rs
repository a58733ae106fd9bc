//! Opening a session for an account: TCP, then TLS or STLS as the account says, CAPA, the
//! choice of login mechanism, and the login itself. The glue between `net`, `client` and
//! `proto::auth`; `engine`, `cmd::list`, `cmd::check` and `cmd::probe` all start here.

use log::debug;

use crate::client::{Authorization, Keep, Listing, Session, Transaction};
use crate::config::{Account, AuthMech, Login, Server, TlsMode};
use crate::error::{Error, ErrorKind, Result};
use crate::net::{self, Stream, tls};
use crate::proto::Capabilities;
use crate::proto::auth::{self, Mechanism, apop};
use crate::proto::sanitize::sanitize;
use crate::secret::Secret;

/// A logged-in session and what the server announced after login.
pub struct Connected {
    pub session: Session<Stream, Transaction>,
    pub caps: Capabilities,
    /// The mechanism that logged in.
    pub mechanism: Mechanism,
    /// TLS version and cipher, when encrypted.
    pub tls: Option<String>,
}

fn no_client() -> Error {
    Error::new(ErrorKind::Internal, "TLS wanted but no TLS client given")
}

/// A secured connection before login, with everything `pop3 probe` shows.
pub struct Opened {
    pub session: Session<Stream, Authorization>,
    /// CAPA on the secured connection (after STLS when there was one).
    pub caps: Capabilities,
    /// CAPA before STLS, with `tls = "starttls"`.
    pub caps_before_stls: Option<Capabilities>,
    /// The TLS client, which remembers the certificates the server presented.
    pub tls: Option<tls::Client>,
}

/// Connect and secure the connection as the account says (DESIGN.md invariant 5: with
/// STLS missing, refused or followed by extra bytes, nothing secret has been sent).
pub fn open(server: &Server) -> Result<Opened> {
    let client = match server.tls {
        TlsMode::None => None,
        _ => Some(tls_client(server)?),
    };
    open_with(server, client)
}

/// [`open`] with a TLS client made by the caller, who can then read the certificates the
/// server presented even when the handshake failed (`pop3 probe`).
pub fn open_with(server: &Server, client: Option<tls::Client>) -> Result<Opened> {
    let host = server.host.as_str();
    let timeout = server.timeout;
    let tcp = net::connect(host, server.port, timeout)?;
    let (mut session, caps_before_stls, client) = match server.tls {
        TlsMode::Implicit => {
            let client = client.ok_or_else(no_client)?;
            let stream = client.handshake(host, tcp)?;
            (Session::connect(stream, host, timeout)?, None, Some(client))
        }
        TlsMode::Starttls => {
            let client = client.ok_or_else(no_client)?;
            await_greeting(server, &tcp, Some(&client))?;
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
            let (raw, greeting) = plain.stls()?;
            let Stream::Plain(tcp) = raw else {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "STLS on an encrypted stream",
                ));
            };
            let stream = client.handshake(host, tcp)?;
            // RFC 2595 section 4: forget what was learnt before the handshake.
            (
                Session::resume(stream, host, timeout, greeting),
                Some(caps),
                Some(client),
            )
        }
        TlsMode::None => {
            await_greeting(server, &tcp, None)?;
            (
                Session::connect(Stream::Plain(tcp), host, timeout)?,
                None,
                None,
            )
        }
    };
    debug!("{host}: greeting: {}", sanitize(session.greeting()));
    if let Some(t) = session.stream().tls_description() {
        debug!("{host}: {t}");
    }
    let caps = session.capa()?;
    debug!("{host}: capabilities: {}", describe_caps(&caps));
    Ok(Opened {
        session,
        caps,
        caps_before_stls,
        tls: client,
    })
}

/// How long a plain connection waits for the greeting before it checks, on a second
/// connection, whether the port speaks TLS at once.
const GREETING_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

/// A POP3 server greets first; an implicit-TLS port (995) waits silently for a ClientHello,
/// so a plain connection to it would wait out the whole timeout and fail with "try again
/// later" (75) for ever. When no byte arrives within [`GREETING_PATIENCE`], ask a second
/// connection whether the server answers a ClientHello: then the account's `tls` is wrong
/// (69, at once). A server that is merely slow keeps its full timeout.
fn await_greeting(
    server: &Server,
    tcp: &std::net::TcpStream,
    client: Option<&tls::Client>,
) -> Result<()> {
    let patience = GREETING_PATIENCE.min(server.timeout);
    let restore = |e: std::io::Error| Error::with_source(ErrorKind::Io, "socket setup failed", e);
    tcp.set_read_timeout(Some(patience)).map_err(restore)?;
    let greeted = tcp.peek(&mut [0u8; 1]);
    tcp.set_read_timeout(Some(server.timeout))
        .map_err(restore)?;
    let silent = matches!(&greeted, Err(e) if matches!(e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    if !silent {
        return Ok(());
    }
    let own;
    let client = match client {
        Some(c) => c,
        None => match tls_client(server) {
            Ok(c) => {
                own = c;
                &own
            }
            Err(_) => return Ok(()),
        },
    };
    let Ok(second) = net::connect(&server.host, server.port, server.timeout) else {
        return Ok(());
    };
    let _ = second.set_read_timeout(Some(server.timeout.min(std::time::Duration::from_secs(5))));
    if tls::speaks_tls(client, &server.host, second) {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "{} port {} speaks TLS at once and sends no POP3 greeting in the clear: use \
                 tls = \"implicit\" (--tls implicit) for this port, not tls = \"{}\"",
                server.host,
                server.port,
                server.tls.name()
            ),
        ));
    }
    Ok(())
}

/// What the account logs in with: its password, or with an `oauth` table the current
/// OAuth access token (cached, or refreshed now; see `crate::oauth`). `rejected` is an
/// access token the server has just refused, which forces a refresh.
pub fn credential(account: &Account, rejected: Option<&Secret>) -> Result<Secret> {
    if account.login.oauth.is_some() {
        crate::oauth::access_token(account, rejected)
    } else {
        crate::secret::obtain(account)
    }
}

/// Get the password, log in and list the mailbox (UIDL and LIST): where `fetch`, `check`
/// and `list` all begin. The password is dropped as soon as the login is done. When the
/// server offered PIPELINING before login, the second CAPA, UIDL and LIST go out in one
/// flight (nothing is pipelined across the login itself).
///
/// With OAuth, a token the server refuses (an `-ERR` to the AUTH exchange, after the
/// XOAUTH2/OAUTHBEARER error challenge) is refreshed once and the login tried once more on a
/// new connection: the server may know of a revocation or an expiry that our clock does not.
///
/// `keep` decides which listed messages the caller wants in the [`Listing`] (all of them:
/// `&mut |_, _| Ok(true)`).
pub fn login_and_list(account: &Account, keep: Keep<'_>) -> Result<(Connected, Listing)> {
    let password = credential(account, None)?;
    let logged_in = match connect_and_log_in(account, &password) {
        Err(Refused::ByServer(e)) if account.login.oauth.is_some() => {
            log::info!(
                "{}: the server refused the access token ({}); refreshing it and trying once more",
                account.name,
                e.message()
            );
            let fresh = credential(account, Some(&password))?;
            drop(password);
            connect_and_log_in(account, &fresh)
        }
        other => other,
    };
    let (mut session, caps, mechanism) = logged_in.map_err(Refused::into_error)?;
    let tls = session.stream().tls_description();
    let (after, listing) = session.capa_and_listing(caps.pipelining, keep)?;
    let caps = after_login(caps, after);
    debug!(
        "{}: capabilities after login: {}",
        account.name,
        describe_caps(&caps)
    );
    let connected = Connected {
        session,
        caps,
        mechanism,
        tls,
    };
    Ok((connected, listing))
}

/// Why a login did not happen: the server said no to the credential, or anything else.
enum Refused {
    ByServer(Error),
    Other(Error),
}

impl Refused {
    fn into_error(self) -> Error {
        match self {
            Refused::ByServer(e) | Refused::Other(e) => e,
        }
    }
}

type LoggedIn = (Session<Stream, Transaction>, Capabilities, Mechanism);

fn connect_and_log_in(
    account: &Account,
    password: &Secret,
) -> std::result::Result<LoggedIn, Refused> {
    let Opened { session, caps, .. } = open(&account.server).map_err(Refused::Other)?;
    let (session, mechanism) = log_in_or_refused(account, session, &caps, password)?;
    Ok((session, caps, mechanism))
}

/// Log in on an opened session with the mechanism [`choose_mechanism`] picks, then ask
/// for the capabilities again (some servers list TOP or PIPELINING only after login).
pub fn authenticate(
    account: &Account,
    session: Session<Stream, Authorization>,
    caps: Capabilities,
    password: &Secret,
) -> Result<Connected> {
    let (mut session, mechanism) = log_in(account, session, &caps, password)?;
    let tls = session.stream().tls_description();
    let caps = after_login(caps, session.capa()?);
    Ok(Connected {
        session,
        caps,
        mechanism,
        tls,
    })
}

/// The capabilities as one line for `-vv`: the tags the server announced, SASL mechanisms
/// after `SASL`.
pub fn describe_caps(c: &Capabilities) -> String {
    let mut tags: Vec<String> = [
        (c.stls, "STLS"),
        (c.user, "USER"),
        (c.uidl, "UIDL"),
        (c.top, "TOP"),
        (c.pipelining, "PIPELINING"),
        (c.resp_codes, "RESP-CODES"),
        (c.auth_resp_code, "AUTH-RESP-CODE"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| (*name).to_owned())
    .collect();
    if !c.sasl.is_empty() {
        tags.push(format!("SASL {}", c.sasl.join(" ")));
    }
    if let Some(d) = c.login_delay {
        tags.push(format!("LOGIN-DELAY {d}"));
    }
    if tags.is_empty() {
        "none".to_owned()
    } else {
        tags.join(", ")
    }
}

/// The capabilities to use after login: the new CAPA answer, unless the server gave none
/// (then what it said before login still holds).
fn after_login(before: Capabilities, after: Capabilities) -> Capabilities {
    if after == Capabilities::default() {
        before
    } else {
        after
    }
}

/// The login itself; a refused login QUITs politely and returns the error.
fn log_in(
    account: &Account,
    session: Session<Stream, Authorization>,
    caps: &Capabilities,
    password: &Secret,
) -> Result<(Session<Stream, Transaction>, Mechanism)> {
    log_in_or_refused(account, session, caps, password).map_err(Refused::into_error)
}

/// [`log_in`], telling a refusal by the server (an authentication error after the
/// exchange) from everything else (no usable mechanism, a broken connection).
fn log_in_or_refused(
    account: &Account,
    session: Session<Stream, Authorization>,
    caps: &Capabilities,
    password: &Secret,
) -> std::result::Result<(Session<Stream, Transaction>, Mechanism), Refused> {
    let encrypted = session.stream().is_encrypted();
    let mech = choose_mechanism(
        &account.login,
        &account.server.host,
        caps,
        session.greeting(),
        encrypted,
    )
    .map_err(Refused::Other)?;
    debug!("{}: logging in with {}", account.name, mech.config_name());
    let result = match mech {
        Mechanism::User => session.login_user_pass(&account.login.user, password, caps.pipelining),
        Mechanism::Apop => {
            // choose_mechanism checked that the greeting has a valid timestamp.
            let stamp = apop::greeting_timestamp(session.greeting())
                .unwrap_or_default()
                .to_vec();
            let digest = apop::digest(&stamp, password);
            session.login_apop(&account.login.user, &digest)
        }
        sasl => match auth::client(sasl, &account.login.user, password) {
            Some(mut client) => session.login_sasl(client.as_mut()),
            None => {
                return Err(Refused::Other(Error::new(
                    ErrorKind::Internal,
                    format!("no SASL client for {}", sasl.config_name()),
                )));
            }
        },
    };
    match result {
        Ok(s) => Ok((s, mech)),
        Err(failed) => {
            let (e, s) = *failed;
            let _ = s.quit();
            if e.kind() == ErrorKind::Auth {
                Err(Refused::ByServer(e))
            } else {
                Err(Refused::Other(e))
            }
        }
    }
}

/// Whether the server offers `mech`, as far as its capabilities and greeting tell.
fn offers(mech: Mechanism, caps: &Capabilities, greeting: &[u8]) -> bool {
    match mech {
        Mechanism::Apop => apop::greeting_timestamp(greeting).is_some(),
        // USER is mandatory-to-implement in spirit; a server without CAPA still has it.
        Mechanism::User => caps.user || *caps == Capabilities::default(),
        sasl => sasl
            .sasl_name()
            .is_some_and(|name| caps.sasl.iter().any(|m| m == name)),
    }
}

/// Pick the login mechanism (DESIGN.md, Protocol rules): a named one must be offered, and
/// `auto` takes the strongest that both sides have. Neither ever reveals the password over
/// an unencrypted connection without `allow_plaintext_password`, and there is no fallback
/// to a weaker mechanism after a failure.
pub fn choose_mechanism(
    login: &Login,
    host: &str,
    caps: &Capabilities,
    greeting: &[u8],
    encrypted: bool,
) -> Result<Mechanism> {
    let cleartext_ok = encrypted || login.allow_plaintext_password;
    let offered = || {
        let mut names: Vec<String> = caps.sasl.clone();
        if caps.user {
            names.push("USER".into());
        }
        if apop::greeting_timestamp(greeting).is_some() {
            names.push("APOP".into());
        }
        if names.is_empty() {
            "none announced".into()
        } else {
            names.join(" ")
        }
    };
    match login.auth {
        AuthMech::Named(m) => {
            if m.reveals_password() && !cleartext_ok {
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "refusing to send the password for {}@{host} unencrypted ({}); use \
                         TLS or set allow_plaintext_password = true",
                        login.user,
                        m.config_name()
                    ),
                ));
            }
            if !offers(m, caps, greeting) {
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "{host} does not offer auth = \"{}\" (it offers: {}); pop3 does not \
                         fall back to another mechanism by itself",
                        m.config_name(),
                        offered()
                    ),
                ));
            }
            Ok(m)
        }
        AuthMech::Auto => Mechanism::AUTO_ORDER
            .into_iter()
            .filter(|m| cleartext_ok || !m.reveals_password())
            .find(|m| offers(*m, caps, greeting))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Auth,
                    format!(
                        "no acceptable login mechanism on {host} (it offers: {}){}",
                        offered(),
                        if cleartext_ok {
                            ""
                        } else {
                            "; the connection is not encrypted, so mechanisms that reveal the \
                             password are not used (set allow_plaintext_password = true to \
                             allow them)"
                        }
                    ),
                )
            }),
    }
}

/// The account's TLS client configuration.
pub fn tls_client(server: &Server) -> Result<tls::Client> {
    tls::client(&tls::TlsSettings {
        ca_file: server.tls_ca_file.clone(),
        fingerprints: server.tls_fingerprints.clone(),
        min_version: server.tls_min_version,
        client_cert: server.tls_client_cert.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(auth: AuthMech, tls: TlsMode, allow: bool) -> Account {
        let over = crate::config::Overrides {
            host: Some("h".into()),
            user: Some("u".into()),
            maildir: Some("/m".into()),
            ..Default::default()
        };
        let mut a = crate::config::Config::default()
            .resolve(None, &over)
            .unwrap();
        a.login.auth = auth;
        a.server.tls = tls;
        a.login.allow_plaintext_password = allow;
        a
    }

    fn caps(sasl: &[&str], user: bool) -> Capabilities {
        Capabilities {
            sasl: sasl.iter().map(|s| s.to_string()).collect(),
            user,
            uidl: true,
            ..Capabilities::default()
        }
    }

    #[test]
    fn auto_picks_the_strongest_offered() {
        let a = account(AuthMech::Auto, TlsMode::Implicit, false);
        let c = caps(&["PLAIN", "SCRAM-SHA-1", "CRAM-MD5"], true);
        assert_eq!(
            choose_mechanism(&a.login, "h", &c, b"", true).unwrap(),
            Mechanism::ScramSha1
        );
        let c = caps(&["PLAIN", "LOGIN"], true);
        assert_eq!(
            choose_mechanism(&a.login, "h", &c, b"", true).unwrap(),
            Mechanism::Plain
        );
        let c = caps(&[], true);
        assert_eq!(
            choose_mechanism(&a.login, "h", &c, b"ready <1.2@h>", true).unwrap(),
            Mechanism::Apop
        );
        // A server without CAPA still gets USER/PASS over TLS.
        let none = Capabilities::default();
        assert_eq!(
            choose_mechanism(&a.login, "h", &none, b"", true).unwrap(),
            Mechanism::User
        );
    }

    #[test]
    fn auto_never_reveals_the_password_in_clear() {
        let a = account(AuthMech::Auto, TlsMode::None, false);
        let c = caps(&["PLAIN", "LOGIN"], true);
        let err = choose_mechanism(&a.login, "h", &c, b"", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(
            err.to_string().contains("allow_plaintext_password"),
            "{err}"
        );
        let c = caps(&["PLAIN", "CRAM-MD5"], true);
        assert_eq!(
            choose_mechanism(&a.login, "h", &c, b"", false).unwrap(),
            Mechanism::CramMd5
        );
        let a = account(AuthMech::Auto, TlsMode::None, true);
        assert_eq!(
            choose_mechanism(&a.login, "h", &caps(&["PLAIN"], true), b"", false).unwrap(),
            Mechanism::Plain
        );
    }

    #[test]
    fn a_named_mechanism_the_server_lacks_is_an_error() {
        let a = account(
            AuthMech::Named(Mechanism::ScramSha256),
            TlsMode::Implicit,
            false,
        );
        let err = choose_mechanism(&a.login, "h", &caps(&["PLAIN"], true), b"", true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.to_string().contains("PLAIN"), "{err}");
        let a = account(AuthMech::Named(Mechanism::Apop), TlsMode::Implicit, false);
        assert!(choose_mechanism(&a.login, "h", &caps(&[], true), b"no stamp", true).is_err());
        let a = account(AuthMech::Named(Mechanism::User), TlsMode::None, false);
        let err = choose_mechanism(&a.login, "h", &caps(&[], true), b"", false).unwrap_err();
        assert!(err.to_string().contains("unencrypted"), "{err}");
    }
}
