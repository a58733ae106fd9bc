//! `pop3 init`: set up an account by asking, on a terminal. It finds the server (the one
//! typed, or guesses from the address's domain), probes port 995 (implicit TLS) and then
//! 110 (STLS) with a short timeout, shows the certificate and, when the public roots do not
//! trust it, asks whether to pin it or to use a CA file; then it tries the login (with
//! `auth = "auto"`, over a verified connection only), asks where to deliver and where to
//! keep the password, shows the new `[accounts.NAME]` table and appends it to the config.
//!
//! OAuth2 (issue #12): for a Google or Microsoft address, or when the server offers
//! XOAUTH2/OAUTHBEARER and the user says the provider needs it, it asks for the client
//! registered with the provider (or, for a provider not listed, its endpoints) instead of a
//! password, writes `auth = "xoauth2"` with an `oauth` table, and then signs in at once with
//! the code `pop3 auth` runs (`cmd::auth::sign_in`) and logs in with the token.
//!
//! Nothing is written until the end, an existing account is never replaced, and the result
//! is loaded and resolved as `pop3 accounts --check` would before it is written. The dialogue
//! goes to stderr; a password is read without echo and never shown. Without a terminal
//! there is nobody to ask: exit 64, pointing to the config file and the one-off flags.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::Context;
use super::auth::{self, SignIn};
use super::probe::{self, Opening};
use crate::config::{
    self, Account, AuthMech, CommandLine, DEFAULT_PASSWORD_TIMEOUT, DEFAULT_TIMEOUT, Delivery,
    Login, Overrides, PasswordCommand, PasswordSource, Policy, Server, Target, TlsMode, paths,
};
use crate::error::{Error, ErrorKind, Result};
use crate::net::tls;
use crate::oauth::{self, store::KeyringItem};
use crate::proto::auth::Mechanism;
use crate::secret::Secret;
use crate::session::{self, Connected, Opened};

/// How long each probe of a port may take: a guess that leads nowhere should not keep the
/// user waiting for the full default timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a refused password may be typed again.
const LOGIN_TRIES: usize = 3;

/// Run `pop3 init`.
pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::Usage,
            "pop3 init asks questions and needs a terminal; without one, write the account \
             into the config file by hand (see `man pop3` or the README) or use the one-off \
             flags: pop3 fetch --host HOST --user USER --maildir DIR",
        )
        .into());
    }
    let config_path = match &ctx.config.path {
        Some(p) => p.clone(),
        None => paths::default_config_file()?,
    };
    let mut d = Dialogue::new();
    say(&format!(
        "This sets up one account and adds it to {}.\nNothing is written until the end; \
         Ctrl-C stops at any time.\n",
        config_path.display()
    ));

    let address = d.ask_with("Email address", None, |a| {
        let ok = a
            .split_once('@')
            .is_some_and(|(l, h)| !l.is_empty() && h.contains('.'));
        (!ok).then(|| "that is not an address like alice@example.com".to_owned())
    })?;
    let domain = address
        .rsplit_once('@')
        .map_or("", |(_, h)| h)
        .to_ascii_lowercase();
    let user = d.ask("Login name", Some(&address))?;

    // The server: the provider's, or one of the usual names, or what the user types.
    let provider = known_provider(&domain);
    if let Some(p) = &provider {
        say(p.note);
    }
    let guesses: Vec<String> = match &provider {
        Some(p) => vec![p.host.to_owned()],
        None => ["pop", "pop3", "mail"]
            .iter()
            .map(|p| format!("{p}.{domain}"))
            .collect(),
    };
    let answer = d.ask_with("POP3 server (HOST or HOST:PORT)", Some(&guesses[0]), |s| {
        probe::split_host_port(s)
            .err()
            .map(|e| e.message().to_owned())
    })?;
    let candidates: Vec<(String, Option<u16>)> = if answer == guesses[0] {
        guesses.into_iter().map(|h| (h, None)).collect()
    } else {
        vec![probe::split_host_port(&answer)?]
    };
    let (mut server, offers_oauth) = find_server(&mut d, &candidates)?;

    // OAuth2 for the providers that need it; for others only when the server offers it
    // (without XOAUTH2 or OAUTHBEARER in its SASL list there is no way to use a token).
    let endpoints = match provider.as_ref().and_then(|p| p.oauth) {
        Some(p) => Some(Endpoints::Preset(p)),
        None if offers_oauth
            && d.yes(
                "The server also accepts OAuth2 tokens. Does your provider require OAuth2 \
                 sign-in instead of a password?",
                false,
            )? =>
        {
            Some(ask_endpoints(&mut d)?)
        }
        None => None,
    };

    // The login, over the connection just checked.
    server.timeout = DEFAULT_TIMEOUT;
    let mut account = Account {
        name: String::new(),
        server,
        login: Login {
            user,
            ..Login::default()
        },
        policy: Policy {
            keep: true,
            ..Policy::default()
        },
        delivery: Delivery {
            target: Target::Nowhere,
            add_received: true,
            keepalive: crate::config::DEFAULT_KEEPALIVE,
        },
    };
    // With a password: log in now. With OAuth: the client now, the sign-in once written.
    let mut credential = match &endpoints {
        None => {
            let (password, mechanism, count) = log_in(&mut account)?;
            Credential::Password {
                password,
                mechanism,
                count,
            }
        }
        Some(e) => {
            let (client_id, secret) = ask_client(&mut d, e)?;
            Credential::OAuth {
                endpoints: e.clone(),
                client_id,
                secret,
            }
        }
    };

    // Where the mail goes and what stays on the server.
    let maildir = d.ask_with("Deliver into this Maildir", Some("~/Mail/inbox"), |p| {
        paths::config_path(p, "the Maildir", "deliver.maildir")
            .err()
            .map(|e| e.message().to_owned())
    })?;
    let keep = d.yes(
        "Leave the messages on the server after fetching them?",
        true,
    )?;

    // The account's name, and where its password lives.
    let taken = ctx.config.account_names();
    let base = domain.split('.').next().unwrap_or("mail").to_owned();
    let mut default_name = base.clone();
    let mut n = 2;
    while taken.contains(&default_name.as_str()) {
        default_name = format!("{base}-{n}");
        n += 1;
    }
    let name = d.ask_with("Name for this account", Some(&default_name), |s| {
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            Some("use letters, digits, - and _ only".to_owned())
        } else if taken.contains(&s) {
            Some(format!(
                "there is an account {s} already; pick another name"
            ))
        } else {
            None
        }
    })?;
    account.name = name.clone();
    let login = match &mut credential {
        Credential::Password {
            password,
            mechanism,
            ..
        } => TableLogin::Password {
            stored: store_password(&mut d, &account, password, Kept::Password)?,
            mechanism: *mechanism,
        },
        Credential::OAuth {
            endpoints,
            client_id,
            secret,
        } => TableLogin::OAuth {
            endpoints: endpoints.clone(),
            client_id: client_id.clone(),
            secret: match secret.take() {
                Some(s) => Some(store_password(&mut d, &account, &s, Kept::ClientSecret)?),
                None => None,
            },
        },
    };

    let table = render(&Table {
        name: &name,
        server: &account.server,
        user: &account.login.user,
        login: &login,
        keep,
        maildir: &maildir,
    });
    say(&format!(
        "\nThis is the account, to be added to {}:",
        config_path.display()
    ));
    for line in table.lines() {
        match ["password", "oauth.client_secret"]
            .into_iter()
            .find(|key| line.starts_with(&format!("{key} = ")))
        {
            Some(key) => say(&format!("{key} = \"***\"")),
            None => say(line),
        }
    }
    say("");
    if !d.yes("Write it?", true)? {
        say("Nothing was written.");
        return Ok(ExitCode::SUCCESS);
    }
    write_config(&config_path, &name, &table)?;
    say(&format!(
        "Wrote account {name} to {} (mode 0600).",
        config_path.display()
    ));
    let count = match (&login, &credential) {
        (TableLogin::Password { stored, .. }, Credential::Password { count, .. }) => {
            if let Stored::Literal(_) = stored {
                say(
                    "Warning: the password is in that file, readable only by you (and by \
                     anyone who gets a copy of it: backups, dotfile repositories). `pop3 \
                     password set` with password.keyring = true, or password.command, keep \
                     it elsewhere.",
                );
            }
            *count
        }
        _ => sign_in_and_log_in(&config_path, &name)?,
    };
    say(&format!(
        "\nNext: `pop3 fetch {name}` fetches the {count} message(s) now on the server (add -v \
         to see them); `pop3 state {name} mark-all-seen` marks them as seen instead. \
         `pop3 list {name}` shows what is there."
    ));
    Ok(ExitCode::SUCCESS)
}

/// A mail provider whose POP3 server is known.
struct Provider {
    host: &'static str,
    note: &'static str,
    /// Its OAuth2 preset, for the providers that sign in with OAuth2.
    oauth: Option<oauth::Provider>,
}

/// The providers whose server is not at one of the usual names, or that need a word first.
fn known_provider(domain: &str) -> Option<Provider> {
    match domain {
        "gmail.com" | "googlemail.com" => Some(Provider {
            host: "pop.gmail.com",
            note: "Gmail signs in with OAuth2 (auth = \"xoauth2\"): this sets it up and signs \
                   you in. Enable POP in Gmail's settings (Forwarding and POP/IMAP) first.",
            oauth: Some(oauth::Provider::Google),
        }),
        "outlook.com" | "hotmail.com" | "live.com" | "msn.com" | "office365.com" => {
            Some(Provider {
                host: "outlook.office365.com",
                note: "Microsoft 365 / Outlook.com signs in with OAuth2 (auth = \"xoauth2\"): \
                       this sets it up and signs you in.",
                oauth: Some(oauth::Provider::Microsoft),
            })
        }
        _ => None,
    }
}

/// Where an OAuth2 account gets its tokens: a provider preset, or the endpoints of a
/// provider not listed (the README's "Other providers").
#[derive(Debug, Clone)]
enum Endpoints {
    Preset(oauth::Provider),
    Own {
        token_url: String,
        device_url: Option<String>,
        auth_url: Option<String>,
        scopes: Vec<String>,
        /// A private CA for these URLs, as typed (`~/...` is kept for the config).
        ca_file: Option<String>,
    },
}

/// Which provider signs the user in, for an address whose domain says nothing: Google,
/// Microsoft, or one not listed, whose URLs the user types.
fn ask_endpoints(d: &mut Dialogue) -> Result<Endpoints> {
    let choice = d.choose(
        "Which provider: Google (g), Microsoft (m), or a provider not listed, whose URLs you \
         give (o)?",
        &['g', 'm', 'o'],
        None,
    )?;
    match choice {
        'g' => return Ok(Endpoints::Preset(oauth::Provider::Google)),
        'm' => return Ok(Endpoints::Preset(oauth::Provider::Microsoft)),
        _ => {}
    }
    say("A provider not listed: its documentation names these URLs (https:// only).");
    let url = |key: &'static str, optional: bool| {
        move |u: &str| -> Option<String> {
            if optional && u.is_empty() {
                return None;
            }
            config::oauth::endpoint("the URL", key, u.to_owned())
                .err()
                .map(|e| e.message().to_owned())
        }
    };
    let token_url = d.ask_with("Token URL", None, url("token_url", false))?;
    let some = |s: String| (!s.is_empty()).then_some(s);
    let (device_url, auth_url) = loop {
        let device = d.ask_with(
            "Device authorization URL (for a code entered on any device; empty: none)",
            Some(""),
            url("device_url", true),
        )?;
        let auth = d.ask_with(
            "Authorization URL (for a browser on this machine; empty: none)",
            Some(""),
            url("auth_url", true),
        )?;
        if device.is_empty() && auth.is_empty() {
            say("  pop3 needs one of the two to sign in");
            continue;
        }
        break (some(device), some(auth));
    };
    let scopes = d.ask_with("Scopes, separated by spaces", None, |s| {
        s.split_whitespace()
            .next()
            .is_none()
            .then(|| "at least one scope".to_owned())
    })?;
    let ca_file = d.ask_with(
        "CA certificate file for these URLs (empty: the public roots)",
        Some(""),
        |p| {
            if p.is_empty() {
                return None;
            }
            match paths::config_path(p, "the CA file", "oauth.tls_ca_file") {
                Ok(path) if !path.is_file() => Some(format!("no file {}", path.display())),
                Ok(_) => None,
                Err(e) => Some(e.message().to_owned()),
            }
        },
    )?;
    Ok(Endpoints::Own {
        token_url,
        device_url,
        auth_url,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        ca_file: some(ca_file),
    })
}

/// The client registered with the provider: its id and, if it has one, its secret (read
/// without echo).
fn ask_client(d: &mut Dialogue, endpoints: &Endpoints) -> Result<(String, Option<Secret>)> {
    let who = match endpoints {
        Endpoints::Preset(oauth::Provider::Google) => "Google",
        Endpoints::Preset(oauth::Provider::Microsoft) => "Microsoft",
        Endpoints::Own { .. } => "the provider",
    };
    say(&format!(
        "pop3 signs in as a client you register with {who} once (README: \"Gmail and \
         Microsoft 365 (OAuth2)\" says how)."
    ));
    let client_id = d.ask_with("OAuth client id", None, |c| {
        c.chars()
            .any(|c| c.is_control() || c.is_whitespace())
            .then(|| "a client id has no spaces".to_owned())
    })?;
    let secret = rpassword::prompt_password(
        "OAuth client secret, if the client has one (not shown; empty: none): ",
    )
    .map_err(|e| Error::with_source(ErrorKind::Io, "cannot read the client secret", e))?;
    let secret = secret.trim();
    Ok((client_id, (!secret.is_empty()).then(|| Secret::new(secret))))
}

/// Once the account is written: sign in with the code `pop3 auth` runs, then log in with
/// the token. Returns the message count. A failure leaves the account written and says
/// how to try again.
fn sign_in_and_log_in(config_path: &Path, name: &str) -> Result<u32> {
    let again = |e: Error| {
        say(&format!(
            "The account is written, but this did not work: {}\nFix it and run `pop3 auth \
             {name}` to sign in again.",
            e.chain()
        ));
        e
    };
    let account = config::load(Some(config_path))
        .and_then(|c| c.resolve(Some(name), &Overrides::default()))
        .map_err(again)?;
    say(&format!(
        "\nSigning in (later, `pop3 auth {name}` does the same)..."
    ));
    let place = auth::sign_in(&account, SignIn::Default).map_err(again)?;
    say(&format!(
        "  signed in; {}",
        auth::describe(&account, place)?
    ));
    say("Logging in with the token...");
    let token = session::credential(&account, None).map_err(again)?;
    let (mechanism, count, size) = try_login(&account, &token).map_err(again)?;
    say(&format!(
        "  logged in with {}; {count} message(s), {size} bytes on the server",
        mechanism.config_name()
    ));
    Ok(count)
}

/// Try each candidate: port 995 with TLS, then 110 with STLS (or the given port both ways).
/// The first that answers is shown; an untrusted certificate is pinned or checked against a
/// CA file, as the user says.
/// Also says whether the server offers an OAuth2 SASL mechanism.
fn find_server(d: &mut Dialogue, candidates: &[(String, Option<u16>)]) -> Result<(Server, bool)> {
    let offers_oauth = |opened: &Opened| {
        opened
            .caps
            .sasl
            .iter()
            .any(|m| m == "XOAUTH2" || m == "OAUTHBEARER")
    };
    let mut tried = Vec::new();
    for (host, port) in candidates {
        let attempts = match port {
            Some(p) => [(*p, TlsMode::Implicit), (*p, TlsMode::Starttls)],
            None => [(995, TlsMode::Implicit), (110, TlsMode::Starttls)],
        };
        for (port, mode) in attempts {
            let server = Server::new(host.clone(), port, mode, PROBE_TIMEOUT);
            let how = match mode {
                TlsMode::Implicit => "TLS",
                _ => "STLS",
            };
            say(&format!("Trying {host} port {port} ({how})..."));
            tried.push(format!("{host}:{port}"));
            match probe::open_showing(&server) {
                Ok(Opening::Trusted(opened)) => {
                    show_certificates(&opened, "trusted (the public roots vouch for it)");
                    report_server(&opened);
                    let oauth = offers_oauth(&opened);
                    let _ = opened.session.quit();
                    return Ok((server, oauth));
                }
                Ok(Opening::Untrusted {
                    chain,
                    reason,
                    error,
                    shown,
                }) => {
                    for (i, cert) in chain.iter().enumerate() {
                        for line in probe::describe_cert(i, cert) {
                            say(&format!("  {line}"));
                        }
                    }
                    say(&format!(
                        "  NOT trusted: {}",
                        tls::describe_refusal(&reason)
                    ));
                    let oauth = match shown {
                        Ok(opened) => {
                            report_server(&opened);
                            let oauth = offers_oauth(&opened);
                            let _ = opened.session.quit();
                            oauth
                        }
                        Err(e) => {
                            say(&format!("  and pinned to it: {}", e.chain()));
                            return Err(error);
                        }
                    };
                    if !tls::pinnable(&reason) {
                        return Err(error);
                    }
                    return Ok((trust(d, server, &chain[0], error)?, oauth));
                }
                Err(e) => say(&format!("  no: {}", e.chain())),
            }
        }
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        format!(
            "found no POP3 server at {}; run pop3 init again and type the server your \
             provider names (its help pages say, often under \"POP3\" or \"mail client \
             settings\")",
            tried.join(", ")
        ),
    ))
}

/// The certificate chain of a trusted connection, indented.
fn show_certificates(opened: &Opened, verdict: &str) {
    let Some(chain) = opened.tls.as_ref().and_then(|c| c.presented_chain()) else {
        return;
    };
    for (i, cert) in chain.iter().enumerate() {
        for line in probe::describe_cert(i, cert) {
            say(&format!("  {line}"));
        }
    }
    say(&format!("  {verdict}"));
}

/// What the server said it is and offers.
fn report_server(opened: &Opened) {
    if let Some(t) = opened.session.stream().tls_description() {
        say(&format!("  {t}"));
    }
    say(&format!(
        "  capabilities: {}",
        probe::describe(&opened.caps)
    ));
}

/// Ask how to trust a certificate the public roots do not vouch for: pin it, or a CA file
/// (checked by connecting again), or give up (69).
fn trust(
    d: &mut Dialogue,
    mut server: Server,
    leaf: &rustls::pki_types::CertificateDer<'_>,
    refused: Error,
) -> Result<Server> {
    say(
        "A self-signed certificate or one from a private CA. Trust it only if the \
         fingerprint above is the one your provider or administrator gave you.",
    );
    loop {
        let choice = d.choose(
            "Pin this certificate (p), give the CA certificate file (c), or stop (s)?",
            &['p', 'c', 's'],
            None,
        )?;
        match choice {
            'p' => {
                server.tls_fingerprints = vec![tls::cert_fingerprint(leaf)];
                return Ok(server);
            }
            'c' => {
                let file = d.ask("CA certificate file (PEM)", None)?;
                let path = match paths::config_path(&file, "the CA file", "tls_ca_file") {
                    Ok(p) => p,
                    Err(e) => {
                        say(&format!("  {}", e.message()));
                        continue;
                    }
                };
                let mut with_ca = server.clone();
                with_ca.tls_ca_file = Some(path);
                match session::open(&with_ca) {
                    Ok(opened) => {
                        let _ = opened.session.quit();
                        say("  trusted with that CA file");
                        // Keep what the user typed (`~/...`) for the config.
                        with_ca.tls_ca_file = Some(PathBuf::from(file));
                        return Ok(with_ca);
                    }
                    Err(e) => say(&format!("  still not trusted: {}", e.chain())),
                }
            }
            _ => return Err(refused),
        }
    }
}

/// Ask the password and log in (with `auth = "auto"`) until the server accepts it or
/// [`LOGIN_TRIES`] are used up. Returns the password, the mechanism and the message count.
fn log_in(account: &mut Account) -> Result<(Secret, Mechanism, u32)> {
    let mut server = account.server.clone();
    // A CA file typed as `~/...` is kept so for the config; expanded here to connect.
    if let Some(ca) = &server.tls_ca_file {
        server.tls_ca_file = Some(paths::expand_tilde(&ca.to_string_lossy())?);
    }
    let mut tries = 0;
    loop {
        tries += 1;
        let prompt = format!(
            "Password for {}@{} (not shown): ",
            account.login.user, account.server.host
        );
        let password = rpassword::prompt_password(prompt)
            .map(Secret::new)
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot read the password", e))?;
        let trial = Account {
            server: server.clone(),
            login: Login {
                password: PasswordSource::Literal(password.clone()),
                auth: AuthMech::Auto,
                ..account.login.clone()
            },
            ..account.clone()
        };
        say("Logging in...");
        match try_login(&trial, &password) {
            Ok((mechanism, count, size)) => {
                say(&format!(
                    "  logged in with {}; {count} message(s), {size} bytes on the server",
                    mechanism.config_name()
                ));
                return Ok((password, mechanism, count));
            }
            Err(e) if e.kind() == ErrorKind::Auth && tries < LOGIN_TRIES => {
                say(&format!("  refused: {}", e.chain()));
            }
            Err(e) => return Err(e),
        }
    }
}

fn try_login(account: &Account, password: &Secret) -> Result<(Mechanism, u32, u64)> {
    let opened = session::open(&account.server)?;
    let Connected {
        mut session,
        mechanism,
        ..
    } = session::authenticate(account, opened.session, opened.caps, password)?;
    let (count, size) = session.stat()?;
    session.quit()?;
    Ok((mechanism, count, size.0))
}

/// What the user logs in with, as asked.
enum Credential {
    /// Accepted by the server just now.
    Password {
        password: Secret,
        mechanism: Mechanism,
        count: u32,
    },
    /// Not tried yet: the sign-in comes once the account is written.
    OAuth {
        endpoints: Endpoints,
        client_id: String,
        secret: Option<Secret>,
    },
}

/// Which secret [`store_password`] keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    Password,
    ClientSecret,
}

impl Kept {
    fn words(self) -> &'static str {
        match self {
            Kept::Password => "the password",
            Kept::ClientSecret => "the client secret",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kept::Password => "password",
            Kept::ClientSecret => "oauth.client_secret",
        }
    }
}

/// Where the account's password (or client secret) is kept.
enum Stored {
    Keyring,
    Command(String),
    Prompt,
    Literal(Secret),
}

/// Ask where to keep the password (or the client secret): the keyring when one answers, a
/// command (checked: it must print the secret just typed), a prompt on every run, or the
/// config file.
fn store_password(
    d: &mut Dialogue,
    account: &Account,
    password: &Secret,
    kept: Kept,
) -> Result<Stored> {
    let keyring =
        cfg!(feature = "keyring") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some();
    say(&format!(
        "Where should pop3 get {} from when it fetches?",
        kept.words()
    ));
    if keyring {
        say("  k: the system keyring (not reachable from cron jobs)");
    }
    say("  c: a command that prints it, e.g. pass show mail/NAME (works from cron)");
    say("  a: ask every time (not from cron)");
    say("  l: write it into the config file (mode 0600)");
    let options: &[char] = if keyring {
        &['k', 'c', 'a', 'l']
    } else {
        &['c', 'a', 'l']
    };
    loop {
        match d.choose("Choice", options, Some(options[0]))? {
            'k' => match match kept {
                Kept::Password => crate::keyring::set(account, password),
                Kept::ClientSecret => {
                    oauth::store::keyring_set(account, KeyringItem::ClientSecret, password)
                }
            } {
                Ok(()) => {
                    say("  stored in the keyring");
                    return Ok(Stored::Keyring);
                }
                Err(e) => say(&format!("  the keyring failed: {}", e.chain())),
            },
            'c' => {
                let default = match kept {
                    Kept::Password => format!("pass show mail/{}", account.name),
                    Kept::ClientSecret => format!("pass show mail/{}-client-secret", account.name),
                };
                let command = d.ask("Command", Some(&default))?;
                let source = PasswordSource::Command(PasswordCommand {
                    line: CommandLine::Shell(command.clone()),
                    timeout: DEFAULT_PASSWORD_TIMEOUT,
                });
                match crate::secret::obtain_from(account, &source, kept.key()) {
                    Ok(p) if p.expose() == password.expose() => {
                        return Ok(Stored::Command(command));
                    }
                    Ok(_) => say(&format!(
                        "  that command prints something else than {}",
                        kept.words()
                    )),
                    Err(e) => say(&format!("  that command failed: {}", e.chain())),
                }
            }
            'a' => return Ok(Stored::Prompt),
            _ => return Ok(Stored::Literal(password.clone())),
        }
    }
}

/// How the new account logs in, as written into the table.
enum TableLogin {
    Password {
        stored: Stored,
        mechanism: Mechanism,
    },
    OAuth {
        endpoints: Endpoints,
        client_id: String,
        secret: Option<Stored>,
    },
}

/// What goes into the new table.
struct Table<'a> {
    name: &'a str,
    server: &'a Server,
    user: &'a str,
    login: &'a TableLogin,
    keep: bool,
    maildir: &'a str,
}

/// `KEY = ...` for a secret kept as `stored`.
fn secret_line(key: &str, stored: &Stored) -> String {
    match stored {
        Stored::Keyring => format!("{key}.keyring = true\n"),
        Stored::Command(c) => format!("{key}.command = {}\n", quoted(c)),
        Stored::Prompt => format!("{key}.prompt = true\n"),
        Stored::Literal(p) => format!("{key} = {}\n", quoted(p.expose())),
    }
}

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The `[accounts.NAME]` table.
fn render(t: &Table<'_>) -> String {
    let s = t.server;
    let mut out = format!(
        "\n# written by pop3 init\n[accounts.{}]\nhost = {}\n",
        t.name,
        quoted(&s.host)
    );
    if s.port != s.tls.default_port() {
        out.push_str(&format!("port = {}\n", s.port));
    }
    out.push_str(&format!("tls = {}\n", quoted(s.tls.name())));
    if let Some(ca) = &s.tls_ca_file {
        out.push_str(&format!(
            "tls_ca_file = {}\n",
            quoted(&ca.to_string_lossy())
        ));
    }
    for pin in &s.tls_fingerprints {
        out.push_str(&format!(
            "tls_fingerprint = \"sha256:{}\"\n",
            tls::hex_colons(pin)
        ));
    }
    out.push_str(&format!("user = {}\n", quoted(t.user)));
    match t.login {
        TableLogin::Password { stored, mechanism } => {
            out.push_str(&secret_line("password", stored));
            out.push_str(&format!(
                "auth = \"auto\"                    # logged in with {} when this was written\n",
                mechanism.config_name()
            ));
        }
        TableLogin::OAuth {
            endpoints,
            client_id,
            secret,
        } => {
            out.push_str("auth = \"xoauth2\"\n");
            match endpoints {
                Endpoints::Preset(p) => {
                    out.push_str(&format!("oauth.provider = {}\n", quoted(p.name())));
                }
                Endpoints::Own {
                    token_url,
                    device_url,
                    auth_url,
                    scopes,
                    ca_file,
                } => {
                    out.push_str(&format!("oauth.token_url = {}\n", quoted(token_url)));
                    if let Some(u) = device_url {
                        out.push_str(&format!("oauth.device_url = {}\n", quoted(u)));
                    }
                    if let Some(u) = auth_url {
                        out.push_str(&format!("oauth.auth_url = {}\n", quoted(u)));
                    }
                    let list: Vec<String> = scopes.iter().map(|s| quoted(s)).collect();
                    out.push_str(&format!("oauth.scopes = [{}]\n", list.join(", ")));
                    if let Some(ca) = ca_file {
                        out.push_str(&format!("oauth.tls_ca_file = {}\n", quoted(ca)));
                    }
                }
            }
            out.push_str(&format!("oauth.client_id = {}\n", quoted(client_id)));
            if let Some(stored) = secret {
                out.push_str(&secret_line("oauth.client_secret", stored));
            }
        }
    }
    out.push_str(&format!("keep = {}\n", t.keep));
    out.push_str(&format!("deliver.maildir = {}\n", quoted(t.maildir)));
    out
}

/// Append the table to the config, after checking that the result loads and that the new
/// account resolves; never replaces an account (checked again here, against the file as it
/// is now).
fn write_config(path: &Path, name: &str, table: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::with_source(
                ErrorKind::Config,
                format!("cannot read config file {}", path.display()),
                e,
            ));
        }
    };
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(table);
    // A duplicate [accounts.NAME] table is a TOML error: an existing account is never replaced.
    config::check_new_text(path, &text, &[name])?;
    crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| {
        Error::with_source(
            ErrorKind::Io,
            format!("cannot write config file {}", path.display()),
            e,
        )
    })
}

/// One line of the dialogue, on stderr.
fn say(text: &str) {
    eprintln!("{text}");
}

/// Questions on the terminal, answers from stdin.
struct Dialogue {
    input: std::io::StdinLock<'static>,
}

impl Dialogue {
    fn new() -> Dialogue {
        Dialogue {
            input: std::io::stdin().lock(),
        }
    }

    /// One answer, trimmed; empty takes the default. End of input stops the dialogue.
    fn answer(&mut self, question: &str, default: Option<&str>) -> Result<String> {
        loop {
            // "Name [default]: ", but "Question? [Y/n] ".
            let end = if question.contains('?') { " " } else { ": " };
            match default {
                Some(d) if !d.is_empty() => eprint!("{question} [{d}]{end}"),
                _ => eprint!("{question}{end}"),
            }
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            let n = self
                .input
                .read_line(&mut line)
                .map_err(|e| Error::with_source(ErrorKind::Io, "cannot read the answer", e))?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "the input ended before the questions did; nothing was written",
                ));
            }
            let line = line.trim();
            match (line.is_empty(), default) {
                (false, _) => return Ok(line.to_owned()),
                (true, Some(d)) => return Ok(d.to_owned()),
                (true, None) => {}
            }
        }
    }

    fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String> {
        self.answer(question, default)
    }

    /// Ask until `problem` finds nothing wrong with the answer.
    fn ask_with(
        &mut self,
        question: &str,
        default: Option<&str>,
        problem: impl Fn(&str) -> Option<String>,
    ) -> Result<String> {
        loop {
            let a = self.answer(question, default)?;
            match problem(&a) {
                None => return Ok(a),
                Some(why) => say(&format!("  {why}")),
            }
        }
    }

    fn yes(&mut self, question: &str, default: bool) -> Result<bool> {
        let d = if default { "Y/n" } else { "y/N" };
        loop {
            let a = self.answer(&format!("{question} [{d}]"), Some(""))?;
            match a.to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => say("  y or n"),
            }
        }
    }

    fn choose(&mut self, question: &str, options: &[char], default: Option<char>) -> Result<char> {
        let d = default.map(String::from);
        loop {
            let a = self.answer(question, d.as_deref())?.to_ascii_lowercase();
            let mut chars = a.chars();
            if let (Some(c), None) = (chars.next(), chars.next())
                && options.contains(&c)
            {
                return Ok(c);
            }
            let list: Vec<String> = options.iter().map(char::to_string).collect();
            say(&format!("  one of {}", list.join(", ")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_providers_and_their_servers() {
        assert_eq!(known_provider("gmail.com").unwrap().host, "pop.gmail.com");
        assert_eq!(
            known_provider("hotmail.com").unwrap().host,
            "outlook.office365.com"
        );
        assert_eq!(
            known_provider("googlemail.com").unwrap().oauth,
            Some(oauth::Provider::Google)
        );
        assert_eq!(
            known_provider("live.com").unwrap().oauth,
            Some(oauth::Provider::Microsoft)
        );
        assert!(known_provider("example.com").is_none());
    }

    #[test]
    fn the_table_loads_and_quotes_what_it_must() {
        let mut server = Server::new("127.0.0.1", 1995, TlsMode::Implicit, PROBE_TIMEOUT);
        server.tls_fingerprints = vec![[0xab; 32]];
        let table = render(&Table {
            name: "home",
            server: &server,
            user: "al\"ice",
            login: &TableLogin::Password {
                stored: Stored::Command("pass show \"mail\"".into()),
                mechanism: Mechanism::ScramSha256,
            },
            keep: false,
            maildir: "~/Mail/inbox",
        });
        assert!(table.contains("port = 1995\n"), "{table}");
        assert!(
            table.contains("tls_fingerprint = \"sha256:AB:AB:"),
            "{table}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        crate::fsutil::write_atomic(&path, table.as_bytes()).unwrap();
        let config = config::load(Some(&path)).unwrap();
        let a = config
            .resolve(Some("home"), &crate::config::Overrides::default())
            .unwrap();
        assert_eq!(a.login.user, "al\"ice");
        assert_eq!(a.server.port, 1995);
        assert!(!a.policy.keep);
        assert!(matches!(a.login.auth, AuthMech::Auto));
    }

    /// A gmail.com address: the Google preset table, which loads and resolves to Google's
    /// endpoints with `auth = "xoauth2"` and the client secret from a command.
    #[test]
    fn a_gmail_address_gets_the_google_oauth_table() {
        let provider = known_provider("gmail.com").unwrap();
        let endpoints = Endpoints::Preset(provider.oauth.unwrap());
        let server = Server::new(provider.host, 995, TlsMode::Implicit, PROBE_TIMEOUT);
        let table = render(&Table {
            name: "gmail",
            server: &server,
            user: "you@gmail.com",
            login: &TableLogin::OAuth {
                endpoints,
                client_id: "1234-abc.apps.googleusercontent.com".into(),
                secret: Some(Stored::Command("pass show mail/gmail-client-secret".into())),
            },
            keep: true,
            maildir: "~/Mail/gmail",
        });
        for line in [
            "host = \"pop.gmail.com\"",
            "auth = \"xoauth2\"",
            "oauth.provider = \"google\"",
            "oauth.client_id = \"1234-abc.apps.googleusercontent.com\"",
            "oauth.client_secret.command = \"pass show mail/gmail-client-secret\"",
        ] {
            assert!(table.lines().any(|l| l == line), "no {line:?} in {table}");
        }
        assert!(!table.contains("password"), "{table}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        crate::fsutil::write_atomic(&path, table.as_bytes()).unwrap();
        let config = config::load(Some(&path)).unwrap();
        let a = config
            .resolve(Some("gmail"), &crate::config::Overrides::default())
            .unwrap();
        assert!(matches!(a.login.auth, AuthMech::Named(Mechanism::XOauth2)));
        let o = a.login.oauth.unwrap();
        let preset = oauth::Provider::Google.preset();
        assert_eq!(o.provider, Some(oauth::Provider::Google));
        assert_eq!(o.token_url, preset.token_url);
        assert_eq!(o.auth_url.as_deref(), Some(preset.auth_url));
        assert_eq!(o.scopes, ["https://mail.google.com/"]);
        assert!(o.client_secret.is_some());
    }

    /// A provider not listed: its endpoints, scopes and CA file are written as typed.
    #[test]
    fn own_endpoints_are_written_and_resolve() {
        let server = Server::new("pop.example.org", 995, TlsMode::Implicit, PROBE_TIMEOUT);
        let table = render(&Table {
            name: "other",
            server: &server,
            user: "me",
            login: &TableLogin::OAuth {
                endpoints: Endpoints::Own {
                    token_url: "https://id.example.org/token".into(),
                    device_url: Some("https://id.example.org/device".into()),
                    auth_url: None,
                    scopes: vec!["pop".into(), "offline_access".into()],
                    ca_file: Some("~/ca.pem".into()),
                },
                client_id: "c".into(),
                secret: None,
            },
            keep: true,
            maildir: "~/Mail/other",
        });
        assert!(
            table.contains("oauth.scopes = [\"pop\", \"offline_access\"]\n"),
            "{table}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        crate::fsutil::write_atomic(&path, table.as_bytes()).unwrap();
        let a = config::load(Some(&path))
            .unwrap()
            .resolve(Some("other"), &crate::config::Overrides::default())
            .unwrap();
        let o = a.login.oauth.unwrap();
        assert_eq!(
            o.device_url.as_deref(),
            Some("https://id.example.org/device")
        );
        assert!(o.auth_url.is_none() && o.client_secret.is_none());
        assert!(o.tls_ca_file.unwrap().ends_with("ca.pem"));
    }
}
