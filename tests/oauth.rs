//! OAuth 2.0 end to end (issue #12): the real `pop3` binary, the test authorization server
//! (tests/support/oauth_server.rs, HTTPS with its own test CA) and a private Dovecot whose
//! `passdb oauth2` asks that server (`introspection_mode = post`) about every token pop3
//! presents. Nothing here is faked on the POP3 side: a token Dovecot accepts is one the
//! server issued and still considers live.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::support::dovecot::Dovecot;
use crate::support::env::TestEnv;
use crate::support::oauth_server::{self, Fault, OAuthServer};

const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: oauth\r\n\r\nhello over a token\r\n";

struct Setup {
    // Dropped in this order: Dovecot before the server it asks.
    dc: Dovecot,
    oauth: OAuthServer,
    env: TestEnv,
}

/// The authorization server, a Dovecot that validates tokens through it (XOAUTH2 and
/// OAUTHBEARER), one message for alice, and a test environment; `None` without Dovecot.
fn setup() -> Option<Setup> {
    let oauth = OAuthServer::start();
    let dc = oauth_server::dovecot(&oauth, &[("alice", "not-the-token")])?;
    dc.add_messages("alice", [MESSAGE]);
    Some(Setup {
        dc,
        oauth,
        env: TestEnv::new(),
    })
}

impl Setup {
    /// Account `work` on Dovecot's TLS port with `auth = mech` and the oauth table pointing
    /// at the test server; `extra` lines join the oauth table's account.
    fn config(&self, mech: &str, extra: &str) {
        let o = &self.oauth;
        self.env.write_config(&format!(
            "[accounts.work]\n\
             host = \"127.0.0.1\"\n\
             port = {port}\n\
             tls = \"implicit\"\n\
             tls_ca_file = '{ca}'\n\
             user = \"alice\"\n\
             auth = \"{mech}\"\n\
             timeout = \"10s\"\n\
             deliver.maildir = '{maildir}'\n\
             oauth.client_id = \"{client}\"\n\
             oauth.token_url = \"{token}\"\n\
             oauth.device_url = \"{device}\"\n\
             oauth.auth_url = \"{auth}\"\n\
             oauth.scopes = [\"mail\"]\n\
             oauth.tls_ca_file = '{oca}'\n\
             oauth.token_store = \"file\"\n\
             {extra}",
            port = self.dc.pop3s_port,
            ca = self.dc.ca_file.display(),
            maildir = self.env.maildir.display(),
            client = OAuthServer::CLIENT_ID,
            token = o.url("token"),
            device = o.url("device"),
            auth = o.url("authorize"),
            oca = o.ca_file().display(),
        ));
    }

    /// `pop3 auth work` through the device flow; its stderr.
    fn auth_device(&self) -> String {
        let out = self.env.cmd().args(["auth", "work"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "pop3 auth: {stderr}");
        stderr
    }

    /// `pop3 ARGS`: (exit code, stdout + stderr).
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.env.cmd().args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// No token the server issued, and not the client secret, appears in `text`.
    fn assert_no_secret(&self, text: &str) {
        for secret in self.oauth.issued_secrets() {
            assert!(!text.contains(&secret), "a token leaked: {text}");
        }
        assert!(
            !text.contains(OAuthServer::CLIENT_SECRET),
            "the client secret leaked: {text}"
        );
    }

    fn token_file(&self) -> std::path::PathBuf {
        self.env
            .state_dir()
            .join("alice@127.0.0.1_".to_owned() + &self.dc.pop3s_port.to_string() + ".oauth")
    }
}

/// A new user: an empty state, `pop3 auth` through the device flow (the URL and code
/// printed, polled through `authorization_pending`), then `pop3 fetch` logs in to Dovecot
/// with the token, which Dovecot checked with the authorization server. The tokens are in a
/// 0600 file in the state dir, never in the config or the -vv trace; `pop3 accounts` shows
/// their state but no token. A second fetch uses the cached token without a refresh.
#[test]
fn device_flow_first_login_then_fetch_with_the_token() {
    let Some(s) = setup() else { return };
    s.config(
        "xoauth2",
        &format!("oauth.client_secret = \"{}\"\n", OAuthServer::CLIENT_SECRET),
    );
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 77, "before pop3 auth: {text}");
    assert!(text.contains("run `pop3 auth work`"), "{text}");

    let stderr = s.auth_device();
    assert!(stderr.contains("enter the code WDJB-MJHT"), "{stderr}");
    assert!(stderr.contains("https://127.0.0.1/device"), "{stderr}");
    let device_polls = s
        .oauth
        .grants()
        .iter()
        .filter(|g| g.ends_with("device_code"))
        .count();
    assert_eq!(device_polls, OAuthServer::PENDING_POLLS as usize + 1);
    assert_eq!(
        s.oauth.received("client_secret")[0],
        OAuthServer::CLIENT_SECRET
    );
    s.assert_no_secret(&stderr);

    let file = s.token_file();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    // The config holds the client secret (that test put it there), never a token.
    let config = std::fs::read_to_string(s.env.config_path()).unwrap();
    for token in s.oauth.issued_secrets() {
        assert!(!config.contains(&token), "{config}");
    }

    let (code, text) = s.run(&["-vv", "fetch", "work"]);
    assert_eq!(code, 0, "{text}\n{}", s.dc.log());
    assert_eq!(s.env.delivered().len(), 1, "{text}");
    s.assert_no_secret(&text);
    let seen = s.oauth.introspected();
    assert!(
        seen.iter().any(|(_, live)| *live),
        "Dovecot never validated a token: {seen:?}"
    );

    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.oauth.refreshes(), 0, "a valid cached token was refreshed");

    let (code, text) = s.run(&["accounts"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("access token valid until"), "{text}");
    assert!(text.contains("refresh token in the token file"), "{text}");
    s.assert_no_secret(&text);
}

/// An access token that has expired (or is about to) is refreshed before the login, the
/// rotated refresh token is kept, and Dovecot accepts the new access token.
#[test]
fn an_expired_access_token_is_refreshed_before_login() {
    let Some(s) = setup() else { return };
    s.config("oauthbearer", "");
    s.oauth.set_lifetime(1);
    s.auth_device();
    std::thread::sleep(Duration::from_millis(1500));
    s.oauth.set_lifetime(3600);
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 0, "{text}\n{}", s.dc.log());
    assert_eq!(s.oauth.refreshes(), 1);
    assert_eq!(s.env.delivered().len(), 1);
    // The server rotated the refresh token: a second refresh works only with the new one.
    s.oauth.revoke_access_tokens();
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.oauth.refreshes(), 2);
}

/// A token that looks valid to us but that the server refuses (revoked at the provider):
/// Dovecot's introspection says inactive, the SASL exchange fails (XOAUTH2's error
/// challenge, OAUTHBEARER's), pop3 refreshes once and logs in on a new connection.
#[test]
fn a_token_the_server_refuses_is_refreshed_once_and_retried() {
    for mech in ["xoauth2", "oauthbearer"] {
        let Some(s) = setup() else { return };
        s.config(mech, "");
        s.auth_device();
        s.oauth.revoke_access_tokens();
        let (code, text) = s.run(&["-v", "fetch", "work"]);
        assert_eq!(code, 0, "{mech}: {text}\n{}", s.dc.log());
        assert!(text.contains("refused the access token"), "{mech}: {text}");
        assert_eq!(s.oauth.refreshes(), 1, "{mech}");
        let seen: Vec<bool> = s.oauth.introspected().iter().map(|(_, l)| *l).collect();
        assert_eq!(seen, [false, true], "{mech}");
        assert_eq!(s.env.delivered().len(), 1, "{mech}");
    }
}

/// The refresh token itself revoked: exit 77 with the advice to run `pop3 auth`, without a
/// prompt (stdin is not a terminal) and without any token in the message. The same when
/// the server refuses the access token and then the refresh.
#[test]
fn a_revoked_refresh_token_exits_77_with_advice() {
    let Some(s) = setup() else { return };
    s.config("xoauth2", "");
    s.oauth.set_lifetime(1);
    s.auth_device();
    s.oauth.revoke_refresh_tokens();
    std::thread::sleep(Duration::from_millis(1500));
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 77, "{text}");
    assert!(text.contains("invalid_grant"), "{text}");
    assert!(text.contains("run `pop3 auth work`"), "{text}");
    s.assert_no_secret(&text);
    assert_eq!(s.env.delivered().len(), 0);

    // Access token live for us, revoked at the server, refresh refused.
    s.oauth.set_lifetime(3600);
    s.auth_device();
    s.oauth.revoke_access_tokens();
    s.oauth.revoke_refresh_tokens();
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 77, "{text}");
    assert!(text.contains("run `pop3 auth work`"), "{text}");
    s.assert_no_secret(&text);
}

/// A token endpoint that hangs ends the run within the timeout with 75; one that answers
/// HTML or a 50 MB body ends it at once with 76, reading no more than the bound. Nothing is
/// fetched and the stored tokens stay usable once the endpoint recovers.
#[test]
fn a_broken_token_endpoint_is_bounded() {
    let Some(s) = setup() else { return };
    s.config("xoauth2", "");
    s.oauth.set_lifetime(1);
    s.auth_device();
    std::thread::sleep(Duration::from_millis(1500));
    s.oauth.set_lifetime(3600);

    // The HTTP exchange has the account's timeout; a short one for the hang.
    let set_timeout = |t: &str| {
        let path = s.env.config_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("timeout = \"10s\"", &format!("timeout = \"{t}\""));
        let text = text.replace("timeout = \"3s\"", &format!("timeout = \"{t}\""));
        s.env.write_config(&text);
    };
    set_timeout("3s");
    s.oauth.set_fault(Fault::Hang);
    let t0 = Instant::now();
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 75, "{text}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(text.contains(&s.oauth.url("token")), "{text}");

    s.oauth.set_fault(Fault::Garbage);
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 76, "{text}");
    assert!(text.contains("not a JSON object"), "{text}");
    assert!(!text.contains('\u{1b}'), "unescaped server text: {text}");

    s.oauth.set_fault(Fault::Huge);
    let t0 = Instant::now();
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 76, "{text}");
    assert!(text.contains("longer than 256 KiB"), "{text}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(s.env.delivered().len(), 0);

    s.oauth.set_fault(Fault::None);
    set_timeout("10s");
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(s.env.delivered().len(), 1);
}

/// Microsoft 365's form: XOAUTH2 in two steps (`AUTH XOAUTH2`, `+`, then the token), which
/// pop3 uses when the initial response would not fit a 255-octet command, as with
/// Microsoft's long tokens. Dovecot accepts it; the trace shows the token as `***` only.
#[test]
fn microsoft_two_step_xoauth2_with_a_long_token() {
    let Some(s) = setup() else { return };
    s.config("xoauth2", "");
    s.oauth.set_token_len(1500);
    s.auth_device();
    let (code, text) = s.run(&["-vv", "fetch", "work"]);
    assert_eq!(code, 0, "{text}\n{}", s.dc.log());
    let auth_line = text
        .lines()
        .find(|l| l.contains("AUTH XOAUTH2"))
        .unwrap_or_else(|| panic!("no AUTH line in the trace: {text}"));
    assert!(
        auth_line.trim_end().ends_with("AUTH XOAUTH2"),
        "{auth_line}"
    );
    s.assert_no_secret(&text);
    assert_eq!(s.env.delivered().len(), 1);
}

/// The browser flow: pop3 listens on 127.0.0.1, prints the sign-in URL (with the PKCE S256
/// challenge and a state), the "browser" comes back with a code, pop3 trades it with the
/// verifier (the server checks it against the challenge) and the tokens log in to Dovecot.
#[test]
fn browser_flow_with_loopback_redirect_and_pkce() {
    let Some(s) = setup() else { return };
    s.config("xoauth2", "");
    let mut child = s
        .env
        .std_cmd()
        .args(["auth", "work", "--browser"])
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("pop3 auth ended early").unwrap();
        if line.starts_with(&s.oauth.url("authorize")) {
            break line;
        }
    };
    assert_eq!(s.oauth.sign_in_in_browser(&url, "alice"), "HTTP/1.1 200 OK");
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    assert_eq!(s.oauth.grants(), ["authorization_code"]);
    let (code, text) = s.run(&["fetch", "work"]);
    assert_eq!(code, 0, "{text}\n{}", s.dc.log());
    assert_eq!(s.env.delivered().len(), 1);
}

/// Two runs that both find the access token expired refresh it once between them: the
/// second waits for the token lock and takes what the first got (with rotating refresh
/// tokens, a second refresh with the old one would have failed).
#[test]
fn concurrent_runs_refresh_once() {
    let Some(s) = setup() else { return };
    s.config("xoauth2", "");
    s.oauth.set_lifetime(1);
    s.auth_device();
    s.oauth.set_lifetime(3600);
    std::thread::sleep(Duration::from_millis(1500));
    let children: Vec<_> = (0..2)
        .map(|_| s.env.std_cmd().args(["check", "work"]).spawn().unwrap())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(s.oauth.refreshes(), 1, "{:?}", s.oauth.grants());
}
