//! The OAuth 2.0 exchanges with the token endpoint: the refresh (RFC 6749 section 6), the
//! device authorization grant (RFC 8628) for machines without a browser, and the
//! authorization code grant through a loopback redirect (RFC 8252 section 7.3) with PKCE
//! (RFC 7636, S256) where a browser is at hand.
//!
//! What the user must see (the URL, the code) goes through the caller's `tell`; this module
//! prints nothing and logs no secret. Server text (error descriptions, the user code) is
//! escaped and capped before it is shown.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::Settings;
use super::http::{Http, Reply};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::sanitize::sanitize;
use crate::secret::Secret;

/// What a token endpoint gave.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: Secret,
    /// Seconds, as the endpoint said (`expires_in`).
    pub expires_in: Option<u64>,
    /// A new refresh token, when the endpoint sent one.
    pub refresh: Option<Secret>,
}

impl Tokens {
    /// The access token's lifetime in seconds: `expires_in`, else an hour (what Google and
    /// Microsoft issue), at most a day (a longer claim is not believed).
    pub fn lifetime_secs(&self) -> i64 {
        self.expires_in.unwrap_or(3600).min(86_400) as i64
    }
}

/// Escaped and capped text from the server.
fn shown(value: Option<&serde_json::Value>) -> Option<String> {
    let s = value?.as_str()?;
    let s: String = s.chars().take(300).collect();
    Some(sanitize(s.as_bytes()))
}

/// The `error` (and `error_description`) of an OAuth error answer, escaped.
fn error_code(reply: &Reply) -> Option<String> {
    shown(reply.json.get("error"))
}

fn describe_error(reply: &Reply) -> String {
    let code = error_code(reply).unwrap_or_else(|| "no error code".into());
    match shown(reply.json.get("error_description")) {
        Some(d) => format!("{code}: {d}"),
        None => code,
    }
}

/// A successful token answer (RFC 6749 section 5.1), or the error it is.
fn tokens(url: &str, reply: Reply) -> Result<Tokens> {
    if reply.status != 200 {
        let temporary =
            reply.status >= 500 || error_code(&reply).as_deref() == Some("temporarily_unavailable");
        let kind = if temporary {
            ErrorKind::Temporary
        } else {
            ErrorKind::Auth
        };
        return Err(Error::new(
            kind,
            format!(
                "the token endpoint {url} refused (HTTP {}, {})",
                reply.status,
                describe_error(&reply)
            ),
        ));
    }
    let bad = |what: &str| {
        Error::new(
            ErrorKind::Protocol,
            format!("the token endpoint {url} answered without {what}"),
        )
    };
    let access = reply
        .json
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("an access_token"))?;
    if let Some(t) = reply.json.get("token_type").and_then(|v| v.as_str())
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "the token endpoint {url} issued a {} token; XOAUTH2 and OAUTHBEARER need a \
                 Bearer token",
                sanitize(t.as_bytes())
            ),
        ));
    }
    // A number, or (some servers) a string of digits.
    let expires_in = match reply.json.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let refresh = reply
        .json
        .get("refresh_token")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    Ok(Tokens {
        access: Secret::new(access),
        expires_in,
        refresh,
    })
}

/// The form fields every token request carries: the client (and its secret, sent in the
/// body as RFC 6749 section 2.3.1 allows; Google and Microsoft both take it there).
fn with_client<'a>(
    settings: &'a Settings,
    secret: Option<&'a Secret>,
    mut form: Vec<(&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    form.push(("client_id", &settings.client_id));
    if let Some(s) = secret {
        form.push(("client_secret", s.expose()));
    }
    form
}

/// Trade the refresh token for a new access token. A refused refresh token (or client) is
/// `ErrorKind::Auth`; an endpoint that is down or slow is `Temporary`.
pub fn refresh(
    http: &Http,
    settings: &Settings,
    secret: Option<&Secret>,
    refresh: &Secret,
) -> Result<Tokens> {
    let form = with_client(
        settings,
        secret,
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
        ],
    );
    let reply = http.post_form(&settings.token_url, &form)?;
    tokens(&settings.token_url, reply)
}

/// The device authorization grant (RFC 8628): ask for a code, show the user where to
/// enter it, then poll the token endpoint at the interval the server asks for until the
/// user has agreed, declined, or the code expired.
pub fn device(
    http: &Http,
    settings: &Settings,
    secret: Option<&Secret>,
    tell: &mut dyn FnMut(&str),
) -> Result<Tokens> {
    let device_url = settings.device_url.as_deref().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "this provider has no device flow (oauth.device_url); use the browser sign-in",
        )
    })?;
    let scope = settings.scopes.join(" ");
    let form = with_client(settings, None, vec![("scope", &scope)]);
    let reply = http.post_form(device_url, &form)?;
    if reply.status != 200 {
        return Err(Error::new(
            ErrorKind::Auth,
            format!(
                "the device endpoint {device_url} refused (HTTP {}, {})",
                reply.status,
                describe_error(&reply)
            ),
        ));
    }
    let field = |key: &str| reply.json.get(key).and_then(|v| v.as_str());
    let missing = |what: &str| {
        Error::new(
            ErrorKind::Protocol,
            format!("the device endpoint {device_url} answered without {what}"),
        )
    };
    let device_code = Secret::new(field("device_code").ok_or_else(|| missing("a device_code"))?);
    let user_code = shown(reply.json.get("user_code")).ok_or_else(|| missing("a user_code"))?;
    // Google calls it verification_url.
    let uri = shown(
        reply
            .json
            .get("verification_uri")
            .or_else(|| reply.json.get("verification_url")),
    )
    .ok_or_else(|| missing("a verification_uri"))?;
    let number = |key: &str| reply.json.get(key).and_then(|v| v.as_u64());
    let lifetime = number("expires_in").unwrap_or(900).clamp(1, 3600);
    let mut interval = number("interval").unwrap_or(5).clamp(1, 60);
    tell(&format!(
        "To sign in, open {uri} in a browser (on any device) and enter the code {user_code}"
    ));
    if let Some(complete) = shown(reply.json.get("verification_uri_complete")) {
        tell(&format!("(or open {complete}, which has the code in it)"));
    }
    tell(&format!(
        "Waiting for the sign-in (the code expires in {} min)...",
        lifetime.div_ceil(60)
    ));
    let deadline = Instant::now() + Duration::from_secs(lifetime);
    loop {
        std::thread::sleep(Duration::from_secs(interval));
        if Instant::now() > deadline {
            return Err(Error::new(
                ErrorKind::Auth,
                "the device code expired before the sign-in was finished; run `pop3 auth` again",
            ));
        }
        let form = with_client(
            settings,
            secret,
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.expose()),
            ],
        );
        let reply = http.post_form(&settings.token_url, &form)?;
        if reply.status == 200 {
            return tokens(&settings.token_url, reply);
        }
        // RFC 8628 section 3.5.
        match error_code(&reply).as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval = (interval + 5).min(60),
            Some("access_denied") => {
                return Err(Error::new(
                    ErrorKind::Auth,
                    "the sign-in was declined (access_denied)",
                ));
            }
            Some("expired_token") => {
                return Err(Error::new(
                    ErrorKind::Auth,
                    "the device code expired before the sign-in was finished; run `pop3 \
                     auth` again",
                ));
            }
            _ => return tokens(&settings.token_url, reply),
        }
    }
}

/// Characters left as they are in a query component (RFC 3986 unreserved).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn random_b64(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(&buf))
}

/// RFC 7636 section 4.2: `BASE64URL(SHA256(verifier))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The browser sign-in URL.
fn authorization_url(
    auth_url: &str,
    settings: &Settings,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> String {
    let scope = settings.scopes.join(" ");
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &settings.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", &scope),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend(settings.extra_auth_params.iter().copied());
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY)))
        .collect();
    let sep = if auth_url.contains('?') { '&' } else { '?' };
    format!("{auth_url}{sep}{}", query.join("&"))
}

/// The query parameters of a request target, decoded.
fn query_params(target: &str) -> Vec<(String, String)> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// Read one HTTP request head (at most 16 KiB) and return its target.
fn read_target(stream: &mut TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    (method == "GET").then(|| target.to_owned())
}

fn answer(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!("<!doctype html><meta charset=utf-8><title>pop3</title><p>{text}</p>\n");
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The authorization code grant with a loopback redirect (RFC 8252 section 7.3) and PKCE:
/// listen on 127.0.0.1 on a free port, show the sign-in URL, wait (up to `wait`) for the
/// browser to come back with the code and our `state`, and trade the code for tokens.
pub fn loopback(
    http: &Http,
    settings: &Settings,
    secret: Option<&Secret>,
    tell: &mut dyn FnMut(&str),
    wait: Duration,
) -> Result<Tokens> {
    let auth_url = settings.auth_url.as_deref().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "this provider has no browser sign-in (oauth.auth_url); use --device",
        )
    })?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::with_source(ErrorKind::Io, "cannot listen on 127.0.0.1", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::with_source(ErrorKind::Io, "cannot listen on 127.0.0.1", e))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/");
    let verifier = Secret::new(random_b64(32)?);
    let state = random_b64(16)?;
    let url = authorization_url(
        auth_url,
        settings,
        &redirect_uri,
        &state,
        &pkce_challenge(verifier.expose()),
    );
    tell("Open this URL in a browser on this machine and sign in:");
    tell(&url);
    tell(&format!(
        "Waiting up to {} min for the browser to come back to {redirect_uri} ...",
        wait.as_secs().div_ceil(60)
    ));
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::with_source(ErrorKind::Io, "cannot listen on 127.0.0.1", e))?;
    let deadline = Instant::now() + wait;
    let code = loop {
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(Error::new(
                        ErrorKind::Temporary,
                        format!(
                            "no sign-in arrived within {} min; run `pop3 auth` again (or use \
                             --device)",
                            wait.as_secs().div_ceil(60)
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => {
                return Err(Error::with_source(
                    ErrorKind::Io,
                    "cannot accept the browser's connection",
                    e,
                ));
            }
        };
        let _ = stream.set_nonblocking(false);
        let Some(target) = read_target(&mut stream) else {
            continue;
        };
        if !target.starts_with("/?") && target != "/" {
            answer(&mut stream, "404 Not Found", "Not here.");
            continue;
        }
        let params = query_params(&target);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        // Only the browser we sent knows the state; anything else is ignored.
        if get("state") != Some(state.as_str()) {
            answer(
                &mut stream,
                "400 Bad Request",
                "This is not the answer pop3 is waiting for.",
            );
            continue;
        }
        if let Some(error) = get("error") {
            answer(
                &mut stream,
                "200 OK",
                "The sign-in did not succeed; see the terminal.",
            );
            let desc = get("error_description")
                .map(|d| format!(": {}", sanitize(d.as_bytes())))
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "the sign-in was refused ({}{desc})",
                    sanitize(error.as_bytes())
                ),
            ));
        }
        match get("code") {
            Some(code) if !code.is_empty() => {
                answer(
                    &mut stream,
                    "200 OK",
                    "Signed in. You can close this tab and go back to the terminal.",
                );
                break Secret::new(code);
            }
            _ => answer(&mut stream, "400 Bad Request", "No authorization code."),
        }
    };
    let form = with_client(
        settings,
        secret,
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier.expose()),
        ],
    );
    let reply = http.post_form(&settings.token_url, &form)?;
    tokens(&settings.token_url, reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    fn reply(status: u16, json: &str) -> Reply {
        match serde_json::from_str(json).unwrap() {
            serde_json::Value::Object(json) => Reply { status, json },
            _ => unreachable!(),
        }
    }

    #[test]
    fn token_answers() {
        let t = tokens(
            "u",
            reply(
                200,
                r#"{"access_token":"at","token_type":"Bearer","expires_in":"120","refresh_token":"rt"}"#,
            ),
        )
        .unwrap();
        assert_eq!(t.access.expose(), "at");
        assert_eq!(t.refresh.as_ref().unwrap().expose(), "rt");
        assert_eq!(t.lifetime_secs(), 120);
        let err = tokens("u", reply(400, r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(
            err.message()
                .contains("invalid_grant: Token has been expired or revoked."),
            "{err}"
        );
        let err = tokens("u", reply(503, r#"{"error":"x"}"#)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Temporary);
        let err = tokens(
            "u",
            reply(200, r#"{"access_token":"at","token_type":"mac"}"#),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(!err.message().contains("at\""), "{err}");
        // A hostile description is escaped.
        let err = tokens("u", reply(400, r#"{"error":"e\u001b[31m"}"#)).unwrap_err();
        assert!(!err.message().contains('\u{1b}'), "{err}");
    }

    #[test]
    fn redirect_queries_decode() {
        let p = query_params("/?code=a%2Fb+c&state=xy&scope=https%3A%2F%2Fmail.google.com%2F");
        assert_eq!(p[0], ("code".into(), "a/b c".into()));
        assert_eq!(p[2].1, "https://mail.google.com/");
        assert!(query_params("/").is_empty());
    }
}
