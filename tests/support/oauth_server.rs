//! A small OAuth 2.0 authorization server for the OAuth tests: HTTPS on 127.0.0.1:0 (rustls,
//! a leaf of its own test CA), one thread per connection, HTTP/1.1 with `Connection: close`.
//!
//! Endpoints (all POST, form-encoded bodies, JSON answers):
//! - `/device`: RFC 8628 device authorization; the code is approved for `user` once the
//!   client has polled [`OAuthServer::PENDING_POLLS`] times (`authorization_pending` until
//!   then), with `interval = 1`.
//! - `/token`: grant types `urn:ietf:params:oauth:grant-type:device_code`,
//!   `authorization_code` (with the PKCE S256 check and the redirect URI), `refresh_token`.
//!   Access tokens live [`OAuthServer::set_lifetime`] seconds; refresh tokens rotate.
//! - `/introspect`: RFC 7662 for Dovecot's `passdb oauth2` (`introspection_mode = post`):
//!   `{"active": true, "username": ...}` for a live token, `{"active": false}` otherwise.
//!
//! Faults for `/token`: [`Fault::Hang`] (reads the request, never answers), [`Fault::Garbage`]
//! (HTTP 200 with HTML), [`Fault::Huge`] (HTTP 200 announcing and sending 50 MB). Everything
//! it issued can be revoked, and it counts what it was asked.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::certs::TestCerts;
use super::dovecot::Dovecot;

/// What `/token` does instead of answering properly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Hang,
    Garbage,
    Huge,
}

#[derive(Debug, Clone)]
struct Issued {
    user: String,
    expires: Instant,
    revoked: bool,
}

#[derive(Debug, Default)]
struct State {
    access: HashMap<String, Issued>,
    refresh: HashMap<String, (String, bool)>,
    /// device code -> (user, polls so far)
    devices: HashMap<String, (String, u32)>,
    /// authorization code -> (user, challenge, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
    lifetime: u64,
    token_len: usize,
    fault: Option<Fault>,
    seq: u64,
    /// grant_type of every /token request, in order.
    grants: Vec<String>,
    /// Every token Dovecot asked about, with the answer.
    introspected: Vec<(String, bool)>,
    /// Every form field name and value the server received (to check what the client sent).
    received: Vec<(String, String)>,
}

/// The running server; stops accepting when dropped.
pub struct OAuthServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    /// Kept alive for as long as the server runs: it owns the certificate files.
    _certs: TestCerts,
    /// A 0755 directory in /tmp holding `ca.pem` (0644), readable by Dovecot's processes.
    public: tempfile::TempDir,
}

impl OAuthServer {
    /// How often a device code is polled before it is approved.
    pub const PENDING_POLLS: u32 = 2;
    /// The client id the server accepts.
    pub const CLIENT_ID: &'static str = "pop3-test-client";
    /// The client secret the server accepts when one is sent.
    pub const CLIENT_SECRET: &'static str = "s3cr3t-client-value";

    /// Start on a free port; access tokens live an hour, are 40 characters long.
    pub fn start() -> OAuthServer {
        let certs = TestCerts::new();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            lifetime: 3600,
            token_len: 40,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certs.leaf.cert()], certs.leaf.key())
            .unwrap(),
        );
        let public = tempfile::Builder::new()
            .prefix("pop3-oauth-")
            .tempdir_in("/tmp")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(public.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ca = public.path().join("ca.pem");
        std::fs::copy(&certs.ca.cert_path, &ca).unwrap();
        std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).unwrap();
        {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(tcp) = conn else { continue };
                    let (state, stop, config) = (state.clone(), stop.clone(), config.clone());
                    std::thread::spawn(move || serve(tcp, config, state, stop));
                }
            });
        }
        OAuthServer {
            port,
            state,
            stop,
            _certs: certs,
            public,
        }
    }

    /// `https://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}", self.port)
    }

    /// The CA that signed the server's certificate (PEM, world-readable).
    pub fn ca_file(&self) -> PathBuf {
        self.public.path().join("ca.pem")
    }

    /// A directory Dovecot's processes can read, for its oauth2 config file.
    pub fn public_dir(&self) -> &Path {
        self.public.path()
    }

    /// Access tokens issued from now on live `secs` seconds.
    pub fn set_lifetime(&self, secs: u64) {
        self.state.lock().unwrap().lifetime = secs;
    }

    /// Access tokens issued from now on are `len` characters long (Microsoft's are over a
    /// thousand, which forces the two-step AUTH form).
    pub fn set_token_len(&self, len: usize) {
        self.state.lock().unwrap().token_len = len.max(16);
    }

    /// Make `/token` misbehave (or behave again with `Fault::None`).
    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = Some(fault);
    }

    /// Revoke every refresh token issued so far.
    pub fn revoke_refresh_tokens(&self) {
        for r in self.state.lock().unwrap().refresh.values_mut() {
            r.1 = true;
        }
    }

    /// Revoke every access token issued so far (the server learns of it before the client).
    pub fn revoke_access_tokens(&self) {
        for a in self.state.lock().unwrap().access.values_mut() {
            a.revoked = true;
        }
    }

    /// The grant types of the `/token` requests so far.
    pub fn grants(&self) -> Vec<String> {
        self.state.lock().unwrap().grants.clone()
    }

    /// How many refreshes were asked for.
    pub fn refreshes(&self) -> usize {
        self.grants()
            .iter()
            .filter(|g| *g == "refresh_token")
            .count()
    }

    /// The tokens Dovecot asked about, with whether they were active.
    pub fn introspected(&self) -> Vec<(String, bool)> {
        self.state.lock().unwrap().introspected.clone()
    }

    /// Every access and refresh token issued so far (to check that none leaks).
    pub fn issued_secrets(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.access.keys().chain(s.refresh.keys()).cloned().collect()
    }

    /// The values the server received for form field `name`.
    pub fn received(&self, name: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.received
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Play the browser and the user of the loopback flow: read the sign-in URL pop3
    /// printed, check its parameters, approve `user`, and send the browser back to the
    /// redirect URI with a code. Returns the HTTP status line pop3's listener answered.
    pub fn sign_in_in_browser(&self, url: &str, user: &str) -> String {
        let query = url.split_once('?').expect("query in the sign-in URL").1;
        let params: HashMap<String, String> = parse_form(query).into_iter().collect();
        assert_eq!(params["response_type"], "code", "{url}");
        assert_eq!(params["client_id"], Self::CLIENT_ID, "{url}");
        assert_eq!(params["code_challenge_method"], "S256", "{url}");
        let redirect = params["redirect_uri"].clone();
        assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
        let code = {
            let mut s = self.state.lock().unwrap();
            let code = next_token(&mut s, "code", 24);
            s.codes.insert(
                code.clone(),
                (
                    user.into(),
                    params["code_challenge"].clone(),
                    redirect.clone(),
                ),
            );
            code
        };
        let hostport = redirect
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let mut tcp = TcpStream::connect(&hostport).expect("connect to pop3's redirect listener");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET /?state={}&code={code}&scope=mail HTTP/1.1\r\nHost: {hostport}\r\n\r\n",
            params["state"]
        )
        .unwrap();
        let mut status = String::new();
        BufReader::new(tcp).read_line(&mut status).unwrap();
        status.trim_end().to_owned()
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn next_token(s: &mut State, kind: &str, len: usize) -> String {
    s.seq += 1;
    let mut t = format!("{kind}-{}-", s.seq);
    let mut n = s.seq;
    while t.len() < len {
        // Deterministic but varied filler; URL-safe characters only.
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        t.push(char::from(
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[(n >> 58) as usize],
        ));
    }
    t
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
) {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    drop(reader);
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let form = parse_form(&String::from_utf8_lossy(&body));
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let fault = {
        let mut s = state.lock().unwrap();
        s.received.extend(form.iter().cloned());
        s.fault.unwrap_or(Fault::None)
    };
    if path == "/token" {
        match fault {
            Fault::None => {}
            Fault::Hang => {
                state.lock().unwrap().grants.push(field("grant_type"));
                let t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(120) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                return;
            }
            Fault::Garbage => {
                state.lock().unwrap().grants.push(field("grant_type"));
                let body = "<html><body>Service Unavailable \x1b[31m</body></html>";
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                return;
            }
            Fault::Huge => {
                state.lock().unwrap().grants.push(field("grant_type"));
                let total: usize = 50 << 20;
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n{{\"access_token\":\""
                );
                let chunk = vec![b'a'; 64 * 1024];
                let mut sent = 0;
                while sent < total {
                    if tls.write_all(&chunk).is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
                return;
            }
        }
    }
    let (status, json) = handle(&path, &form, &field, &state);
    let body = json.to_string();
    let _ = write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn oauth_error(code: &str, desc: &str) -> (&'static str, serde_json::Value) {
    (
        "400 Bad Request",
        serde_json::json!({"error": code, "error_description": desc}),
    )
}

fn issue(s: &mut State, user: &str) -> serde_json::Value {
    let len = s.token_len;
    let access = next_token(s, "at", len);
    let refresh = next_token(s, "rt", 40);
    let lifetime = s.lifetime;
    s.access.insert(
        access.clone(),
        Issued {
            user: user.into(),
            expires: Instant::now() + Duration::from_secs(lifetime),
            revoked: false,
        },
    );
    s.refresh.insert(refresh.clone(), (user.into(), false));
    serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "refresh_token": refresh,
        "scope": "mail",
    })
}

fn handle(
    path: &str,
    form: &[(String, String)],
    field: &dyn Fn(&str) -> String,
    state: &Mutex<State>,
) -> (&'static str, serde_json::Value) {
    let mut s = state.lock().unwrap();
    let _ = form;
    match path {
        "/introspect" => {
            let token = field("token");
            let live = s
                .access
                .get(&token)
                .filter(|i| !i.revoked && i.expires > Instant::now())
                .map(|i| i.user.clone());
            s.introspected.push((token, live.is_some()));
            match live {
                Some(user) => (
                    "200 OK",
                    serde_json::json!({"active": true, "username": user, "scope": "mail"}),
                ),
                None => ("200 OK", serde_json::json!({"active": false})),
            }
        }
        "/device" => {
            if field("client_id") != OAuthServer::CLIENT_ID {
                return oauth_error("invalid_client", "unknown client");
            }
            let code = next_token(&mut s, "dc", 32);
            s.devices.insert(code.clone(), ("alice".into(), 0));
            (
                "200 OK",
                serde_json::json!({
                    "device_code": code,
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://127.0.0.1/device",
                    "expires_in": 60,
                    "interval": 1,
                }),
            )
        }
        "/token" => {
            let grant = field("grant_type");
            s.grants.push(grant.clone());
            if field("client_id") != OAuthServer::CLIENT_ID {
                return oauth_error("invalid_client", "unknown client");
            }
            let secret = field("client_secret");
            if !secret.is_empty() && secret != OAuthServer::CLIENT_SECRET {
                return oauth_error("invalid_client", "wrong client secret");
            }
            match grant.as_str() {
                "urn:ietf:params:oauth:grant-type:device_code" => {
                    let code = field("device_code");
                    let Some((user, polls)) = s.devices.get_mut(&code) else {
                        return oauth_error("invalid_grant", "unknown device code");
                    };
                    *polls += 1;
                    if *polls <= OAuthServer::PENDING_POLLS {
                        return oauth_error("authorization_pending", "waiting for the user");
                    }
                    let user = user.clone();
                    s.devices.remove(&code);
                    ("200 OK", issue(&mut s, &user))
                }
                "authorization_code" => {
                    let Some((user, challenge, redirect)) = s.codes.remove(&field("code")) else {
                        return oauth_error("invalid_grant", "unknown code");
                    };
                    let verifier = field("code_verifier");
                    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    if computed != challenge {
                        return oauth_error("invalid_grant", "PKCE verification failed");
                    }
                    if field("redirect_uri") != redirect {
                        return oauth_error("invalid_grant", "redirect_uri mismatch");
                    }
                    ("200 OK", issue(&mut s, &user))
                }
                "refresh_token" => {
                    let token = field("refresh_token");
                    match s.refresh.get(&token).cloned() {
                        Some((user, false)) => {
                            // Rotate: the old refresh token stops working.
                            s.refresh.insert(token, (user.clone(), true));
                            ("200 OK", issue(&mut s, &user))
                        }
                        _ => oauth_error("invalid_grant", "Token has been expired or revoked."),
                    }
                }
                _ => oauth_error("unsupported_grant_type", "no"),
            }
        }
        _ => ("404 Not Found", serde_json::json!({"error": "not_found"})),
    }
}

/// A private Dovecot whose `passdb oauth2` asks `oauth` about every token
/// (`introspection_mode = post`), for XOAUTH2 and OAUTHBEARER (PLAIN checks `users`'
/// passwords); `None` without Dovecot.
pub fn dovecot(oauth: &OAuthServer, users: &[(&str, &str)]) -> Option<Dovecot> {
    use std::os::unix::fs::PermissionsExt;
    let conf = oauth.public_dir().join("oauth2.conf");
    std::fs::write(
        &conf,
        format!(
            "introspection_mode = post\n\
             introspection_url = {}\n\
             username_attribute = username\n\
             active_attribute = active\n\
             active_value = true\n\
             tls_ca_cert_file = {}\n\
             timeout_msecs = 5000\n",
            oauth.url("introspect"),
            oauth.ca_file().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let extra = format!(
        "auth_mechanisms = plain xoauth2 oauthbearer\n\
         passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
        conf.display()
    );
    Dovecot::start_with(users, &extra)
}
