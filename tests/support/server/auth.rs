//! AUTH (RFC 5034) as the server answers it: PLAIN, LOGIN, CRAM-MD5 and XOAUTH2 exchanges
//! on a [`Session`], and the base64 and HMAC-MD5 they need (written here so that the server
//! stays an independent oracle for the client's encoders).

use std::io;

use super::session::Session;
use super::wire::{Conn, multiline, read_line, send};

/// The OAuth access token the server accepts for XOAUTH2 unless told otherwise.
pub const OAUTH_TOKEN: &str = "ya29.test-access-token";

/// The JSON a refused XOAUTH2 token gets as a challenge (Google's format).
pub const OAUTH_ERROR_JSON: &str =
    r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;

/// The challenge the server sends for CRAM-MD5 (RFC 2195 style).
pub const CRAM_CHALLENGE: &str = "<1896.697170952@pop3.test>";

impl Session {
    /// AUTH (RFC 5034) with PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195) and XOAUTH2
    /// (Google's form, also the two-step form Microsoft 365 uses). `None` when the client
    /// went away mid-exchange.
    pub(super) fn auth(&mut self, conn: &mut Conn, arg: &str) -> io::Result<Option<String>> {
        let mut args = arg.split_whitespace();
        let Some(mechanism) = args.next() else {
            return Ok(Some(multiline(
                "+OK mechanisms follow",
                &["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
            )));
        };
        let initial = args.next().map(str::to_string);
        match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => self.auth_plain(conn, initial),
            "LOGIN" => self.auth_login(conn, initial),
            "CRAM-MD5" => self.auth_cram_md5(conn),
            "XOAUTH2" => self.auth_xoauth2(conn, initial),
            _ => Ok(Some("-ERR unsupported mechanism\r\n".to_string())),
        }
    }

    /// Send one SASL challenge (`payload` base64-encoded) and read the client's answer,
    /// recorded. `Ok(None)`: the client went away.
    fn challenge(&mut self, conn: &mut Conn, payload: &[u8]) -> io::Result<Option<String>> {
        send(conn, format!("+ {}\r\n", base64_encode(payload)).as_bytes())?;
        let Some(line) = read_line(conn)? else {
            return Ok(None);
        };
        self.record(&line);
        Ok(Some(line))
    }

    fn auth_plain(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> io::Result<Option<String>> {
        let response = match initial.as_deref() {
            Some("=") => String::new(),
            Some(initial) => initial.to_string(),
            None => match self.challenge(conn, b"")? {
                Some(line) => line,
                None => return Ok(None),
            },
        };
        if response == "*" {
            return Ok(Some("-ERR AUTH cancelled\r\n".to_string()));
        }
        let Some(decoded) = base64_decode(&response) else {
            return Ok(Some("-ERR bad base64\r\n".to_string()));
        };
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [_authzid, user, password] = parts[..] else {
            return Ok(Some("-ERR bad PLAIN response\r\n".to_string()));
        };
        Ok(Some(self.login(
            &String::from_utf8_lossy(user),
            &String::from_utf8_lossy(password),
        )))
    }

    /// LOGIN (draft-murchison-sasl-login): "Username:", then "Password:".
    fn auth_login(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> io::Result<Option<String>> {
        let user = match initial {
            Some(user) => user,
            None => match self.challenge(conn, b"Username:")? {
                Some(line) => line,
                None => return Ok(None),
            },
        };
        let Some(password) = self.challenge(conn, b"Password:")? else {
            return Ok(None);
        };
        if user == "*" || password == "*" {
            return Ok(Some("-ERR AUTH cancelled\r\n".to_string()));
        }
        match (base64_decode(&user), base64_decode(&password)) {
            (Some(user), Some(password)) => Ok(Some(self.login(
                &String::from_utf8_lossy(&user),
                &String::from_utf8_lossy(&password),
            ))),
            _ => Ok(Some("-ERR bad base64\r\n".to_string())),
        }
    }

    /// CRAM-MD5 (RFC 2195): the client answers `user SP hex(HMAC-MD5(password, challenge))`.
    fn auth_cram_md5(&mut self, conn: &mut Conn) -> io::Result<Option<String>> {
        let Some(line) = self.challenge(conn, CRAM_CHALLENGE.as_bytes())? else {
            return Ok(None);
        };
        if line == "*" {
            return Ok(Some("-ERR AUTH cancelled\r\n".to_string()));
        }
        let Some(decoded) = base64_decode(&line) else {
            return Ok(Some("-ERR bad base64\r\n".to_string()));
        };
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        let Some((user, digest)) = decoded.rsplit_once(' ') else {
            return Ok(Some("-ERR bad CRAM-MD5 response\r\n".to_string()));
        };
        let config = &self.shared.config;
        if user != config.user || digest != cram_md5_digest(&config.password, CRAM_CHALLENGE) {
            return Ok(Some(
                "-ERR [AUTH] invalid user name or password\r\n".to_string(),
            ));
        }
        let (user, password) = (config.user.clone(), config.password.clone());
        Ok(Some(self.login(&user, &password)))
    }

    /// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A`, inline or after an empty challenge. A
    /// refused token gets [`OAUTH_ERROR_JSON`] as a challenge, an (expected empty) client
    /// line, then `-ERR`.
    fn auth_xoauth2(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> io::Result<Option<String>> {
        let response = match initial {
            Some(initial) => initial,
            None => {
                // Microsoft 365 sends a bare "+ " here.
                send(conn, b"+ \r\n")?;
                let Some(line) = read_line(conn)? else {
                    return Ok(None);
                };
                self.record(&line);
                line
            }
        };
        let config = &self.shared.config;
        let expected = format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            config.user, config.oauth_token
        );
        if base64_decode(&response).is_some_and(|d| d == expected.as_bytes()) {
            let (user, password) = (config.user.clone(), config.password.clone());
            return Ok(Some(self.login(&user, &password)));
        }
        if self.challenge(conn, OAUTH_ERROR_JSON.as_bytes())?.is_none() {
            return Ok(None);
        }
        Ok(Some("-ERR [AUTH] invalid credentials\r\n".to_string()))
    }
}

/// Lowercase hex of HMAC-MD5(password, challenge), the CRAM-MD5 digest.
pub(super) fn cram_md5_digest(password: &str, challenge: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<md5::Md5> as KeyInit>::new_from_slice(password.as_bytes())
        .expect("HMAC takes any key");
    mac.update(challenge.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Standard base64 (RFC 4648) with padding; `None` on anything else.
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.trim().as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Standard base64 with padding, for tests that speak AUTH PLAIN.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
