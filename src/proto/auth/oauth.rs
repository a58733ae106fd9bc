//! The OAuth 2.0 bearer-token mechanisms: Google's XOAUTH2 (also spoken by Microsoft 365)
//! and its standard successor OAUTHBEARER (RFC 7628). Both send the token in the initial
//! response; getting and refreshing the token is not this module's business (the secret
//! handed in *is* the access token).
//!
//! When the token is refused, the server does not say `-ERR` at once: it first sends a
//! challenge holding a JSON error (`{"status":"invalid_token","scope":...}`), which the
//! client must acknowledge (XOAUTH2: an empty response; RFC 7628 section 3.2.3: a single
//! `%x01`) before the `-ERR` arrives. The JSON's status and scope are kept for
//! [`SaslClient::error_detail`], since they say more than the `-ERR` line (an expired token
//! versus a missing scope). The token is a reusable credential: TLS only.

use super::{AuthError, Mechanism, SaslClient, Step, unexpected};
use crate::proto::sanitize::sanitize;
use crate::proto::secret::Secret;

/// The state both mechanisms share; they differ in the message and the acknowledgement.
#[derive(Debug)]
struct Exchange {
    mechanism: Mechanism,
    /// The token goes out first (initial response or answer to the empty challenge); a
    /// challenge after it is an error report, acknowledged once; the server must then say
    /// -ERR.
    step: Step,
    /// The server's error detail, escaped and capped.
    detail: Option<String>,
}

impl Exchange {
    fn new(mechanism: Mechanism) -> Exchange {
        Exchange {
            mechanism,
            step: Step::START,
            detail: None,
        }
    }

    fn initial_response(&mut self, message: Result<Vec<u8>, AuthError>) -> Option<Vec<u8>> {
        self.step.initial(|| message.ok())
    }

    fn respond(
        &mut self,
        challenge: &[u8],
        message: impl FnOnce() -> Result<Vec<u8>, AuthError>,
        acknowledgement: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        let mech = self.mechanism;
        self.step.answer(mech, |sent| match sent {
            // RFC 5034 section 4: no initial response, so the server sent an empty
            // challenge and the message is the answer.
            0 if challenge.is_empty() => message(),
            0 => Err(unexpected(
                mech,
                "challenge",
                challenge,
                " before the token was sent",
            )),
            1 => {
                self.detail = error_detail(challenge);
                Ok(acknowledgement.to_vec())
            }
            _ => Err(unexpected(
                mech,
                "challenge",
                challenge,
                " after the error report",
            )),
        })
    }
}

/// Refuse a user name that would break the message's framing.
fn check_user(name: &str, user: &str) -> Result<(), AuthError> {
    if user.bytes().any(|b| b == 0 || b == 1) {
        return Err(AuthError::Refused(format!(
            "{name} cannot carry a user name that contains NUL or ^A"
        )));
    }
    Ok(())
}

/// Refuse a token that is empty or holds control characters: RFC 6750 section 2.1's
/// b64token is printable ASCII, and a ^A would end the field early.
fn check_token(name: &str, token: &str) -> Result<(), AuthError> {
    if token.is_empty() || token.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(AuthError::Refused(format!(
            "{name}: the access token is empty or contains control characters"
        )));
    }
    Ok(())
}

/// The XOAUTH2 exchange (Google's "XOAUTH2 mechanism" page: `user=` U ^A `auth=Bearer `
/// T ^A ^A). `Debug` shows the token as `***`.
#[derive(Debug)]
pub struct XOauth2 {
    user: String,
    token: Secret,
    exchange: Exchange,
}

impl XOauth2 {
    /// An exchange for `user` with access token `token`.
    pub fn new(user: &str, token: &Secret) -> XOauth2 {
        XOauth2 {
            user: user.to_owned(),
            token: token.clone(),
            exchange: Exchange::new(Mechanism::XOauth2),
        }
    }

    fn message(&self) -> Result<Vec<u8>, AuthError> {
        check_user("XOAUTH2", &self.user)?;
        check_token("XOAUTH2", self.token.expose())?;
        let mut out = Vec::new();
        out.extend_from_slice(b"user=");
        out.extend_from_slice(self.user.as_bytes());
        out.extend_from_slice(b"\x01auth=Bearer ");
        out.extend_from_slice(self.token.expose().as_bytes());
        out.extend_from_slice(b"\x01\x01");
        Ok(out)
    }
}

impl SaslClient for XOauth2 {
    fn mechanism(&self) -> Mechanism {
        Mechanism::XOauth2
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        let message = self.message();
        self.exchange.initial_response(message)
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthError> {
        let message = self.message();
        // Google: "the client should send an empty response" to the error challenge.
        self.exchange.respond(challenge, || message, b"")
    }

    fn finish(&self) -> Result<(), AuthError> {
        Ok(())
    }

    fn error_detail(&self) -> Option<String> {
        self.exchange.detail.clone()
    }
}

/// The OAUTHBEARER exchange (RFC 7628 section 3.1: a GS2 header naming the user as
/// authzid, then `auth=Bearer T` between ^A separators; no host or port, which are
/// optional). `Debug` shows the token as `***`.
#[derive(Debug)]
pub struct OauthBearer {
    user: String,
    token: Secret,
    exchange: Exchange,
}

impl OauthBearer {
    /// An exchange for `user` with access token `token`.
    pub fn new(user: &str, token: &Secret) -> OauthBearer {
        OauthBearer {
            user: user.to_owned(),
            token: token.clone(),
            exchange: Exchange::new(Mechanism::OauthBearer),
        }
    }

    fn message(&self) -> Result<Vec<u8>, AuthError> {
        check_user("OAUTHBEARER", &self.user)?;
        check_token("OAUTHBEARER", self.token.expose())?;
        let mut out = Vec::new();
        // RFC 5801 section 4 (gs2-header): no channel binding, "a=" saslname with "," and
        // "=" escaped.
        out.extend_from_slice(b"n,a=");
        out.extend_from_slice(super::scram::escape_saslname(&self.user).as_bytes());
        out.extend_from_slice(b",\x01auth=Bearer ");
        out.extend_from_slice(self.token.expose().as_bytes());
        out.extend_from_slice(b"\x01\x01");
        Ok(out)
    }
}

impl SaslClient for OauthBearer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OauthBearer
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        let message = self.message();
        self.exchange.initial_response(message)
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthError> {
        let message = self.message();
        // RFC 7628 section 3.2.3: the client answers the error challenge with a single
        // %x01 (kvsep), and the server then fails the exchange.
        self.exchange.respond(challenge, || message, b"\x01")
    }

    fn finish(&self) -> Result<(), AuthError> {
        Ok(())
    }

    fn error_detail(&self) -> Option<String> {
        self.exchange.detail.clone()
    }
}

/// The most bytes of an error challenge read as JSON. Real ones are a few hundred bytes;
/// a longer one is only quoted (capped by [`sanitize`]), so a hostile server cannot make us
/// build a large document.
const MAX_ERROR_JSON: usize = 16 * 1024;

/// The detail of an error challenge: `status S, scope C` from its JSON object (RFC 7628
/// section 3.2.2; Google's page shows the same keys), else the escaped raw text, else
/// `None`.
fn error_detail(challenge: &[u8]) -> Option<String> {
    let fields: Vec<String> = match error_object(challenge) {
        Some(object) => ["status", "scope"]
            .into_iter()
            .filter_map(|key| {
                let value = match object.get(key)? {
                    serde_json::Value::String(s) => sanitize(s.as_bytes()),
                    // A number, true/false/null, or something nested: its JSON text.
                    other => sanitize(other.to_string().as_bytes()),
                };
                Some(format!("{key} {value}"))
            })
            .collect(),
        None => Vec::new(),
    };
    if !fields.is_empty() {
        Some(fields.join(", "))
    } else if challenge.is_empty() {
        None
    } else {
        Some(format!("server said \"{}\"", sanitize(challenge)))
    }
}

/// The JSON object at the start of `challenge`, if it is one and not longer than
/// [`MAX_ERROR_JSON`]. Bytes that are not UTF-8 become U+FFFD;
/// anything after the object is ignored. serde_json refuses nesting deeper than 128, so
/// no input can exhaust the stack.
fn error_object(challenge: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    if challenge.len() > MAX_ERROR_JSON {
        return None;
    }
    let text = String::from_utf8_lossy(challenge);
    let mut values = serde_json::Deserializer::from_str(&text).into_iter();
    match values.next()? {
        Ok(serde_json::Value::Object(object)) => Some(object),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::prelude::*;

    /// RFC 7628 section 4.3's failed-exchange challenge, base64 as on the wire.
    const RFC7628_ERROR: &str = "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=";

    #[test]
    fn xoauth2_exact_bytes() {
        // Google's XOAUTH2 page: "user=" {User} "^Aauth=Bearer " {Access Token} "^A^A".
        let mut x = XOauth2::new(
            "someuser@example.com",
            &Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        );
        let ir = x.initial_response().unwrap();
        assert_eq!(
            ir,
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
                .to_vec()
        );
        // The page's example initial response, base64.
        assert_eq!(
            BASE64_STANDARD.encode(&ir),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        assert_eq!(x.initial_response(), None, "sent once");
        assert_eq!(x.finish(), Ok(()));
        assert_eq!(x.error_detail(), None);
    }

    #[test]
    fn xoauth2_error_challenge_gets_an_empty_answer() {
        let mut x = XOauth2::new("u@example.com", &Secret::new("tok"));
        x.initial_response().unwrap();
        // Google's XOAUTH2 page: the error challenge, as on the wire.
        let json = BASE64_STANDARD
            .decode(
                "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9t\
                 YWlsLmdvb2dsZS5jb20vIn0K",
            )
            .unwrap();
        assert_eq!(x.respond(&json).unwrap(), b"");
        assert_eq!(
            x.error_detail().as_deref(),
            Some("status 401, scope https://mail.google.com/")
        );
        assert!(matches!(
            x.respond(b"again"),
            Err(AuthError::BadChallenge(_))
        ));
        assert!(x.respond(b"").is_err(), "stays failed");
    }

    #[test]
    fn oauthbearer_exact_bytes() {
        // RFC 7628 section 4.1 without the optional host and port.
        let mut o = OauthBearer::new(
            "user@example.com",
            &Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
        );
        assert_eq!(
            o.initial_response().unwrap(),
            b"n,a=user@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
                .to_vec()
        );
    }

    #[test]
    fn oauthbearer_escapes_the_authzid() {
        let mut o = OauthBearer::new("a,b=c", &Secret::new("t"));
        assert_eq!(
            o.initial_response().unwrap(),
            b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01".to_vec()
        );
    }

    #[test]
    fn oauthbearer_rfc7628_error_path() {
        let mut o = OauthBearer::new("user@example.com", &Secret::new("tok"));
        o.initial_response().unwrap();
        let challenge = BASE64_STANDARD.decode(RFC7628_ERROR).unwrap();
        // RFC 7628 section 4.3: the client answers "AQ==", i.e. %x01.
        let answer = o.respond(&challenge).unwrap();
        assert_eq!(BASE64_STANDARD.encode(&answer), "AQ==");
        assert_eq!(
            o.error_detail().as_deref(),
            Some("status invalid_token, scope example_scope")
        );
    }

    #[test]
    fn token_sent_in_answer_to_the_empty_challenge() {
        let mut o = OauthBearer::new("u", &Secret::new("t"));
        assert_eq!(o.respond(b"").unwrap(), b"n,a=u,\x01auth=Bearer t\x01\x01");
        let mut x = XOauth2::new("u", &Secret::new("t"));
        assert_eq!(x.respond(b"").unwrap(), b"user=u\x01auth=Bearer t\x01\x01");
        let mut x = XOauth2::new("u", &Secret::new("t"));
        assert!(matches!(x.respond(b"{}"), Err(AuthError::BadChallenge(_))));
    }

    #[test]
    fn framing_breakers_are_refused_without_showing_the_token() {
        for (user, token) in [
            ("u\x01", "tok"),
            ("u", "to\x01k"),
            ("u", ""),
            ("u\0", "tok"),
        ] {
            let mut x = XOauth2::new(user, &Secret::new(token));
            assert_eq!(x.initial_response(), None);
            let err = x.respond(b"").unwrap_err();
            assert!(matches!(err, AuthError::Refused(_)));
            let mut o = OauthBearer::new(user, &Secret::new(token));
            assert_eq!(o.initial_response(), None);
            let err = o.respond(b"").unwrap_err();
            assert!(matches!(err, AuthError::Refused(_)));
        }
        let x = XOauth2::new("u", &Secret::new("sekrit-token"));
        assert!(!format!("{x:?}").contains("sekrit"));
        let o = OauthBearer::new("u", &Secret::new("sekrit-token"));
        assert!(!format!("{o:?}").contains("sekrit"));
    }

    #[test]
    fn error_detail_shapes() {
        assert_eq!(error_detail(b""), None);
        assert_eq!(
            error_detail(b"not json\x1b").as_deref(),
            Some("server said \"not json\\x1b\"")
        );
        assert_eq!(
            error_detail(br#"{ "status" : 400 , "x":"scope"}"#).as_deref(),
            Some("status 400")
        );
        // Escapes are decoded, then controls and bidi overrides shown escaped.
        assert_eq!(
            error_detail(br#"{"status":"a\"b\n\u0041\u00e9\u202e"}"#).as_deref(),
            Some("status a\"b\\x0aAé\\u{202e}")
        );
        // Unterminated strings and objects are not JSON: the raw text is quoted.
        assert_eq!(
            error_detail(br#"{"status":"open"#).as_deref(),
            Some("server said \"{\"status\":\"open\"")
        );
        assert_eq!(
            error_detail(br#"{"status":"#).as_deref(),
            Some("server said \"{\"status\":\"")
        );
        assert_eq!(
            error_detail(br#"{"a":"\u00"#).as_deref(),
            Some("server said \"{\"a\":\"\\u00\"")
        );
        // Only the top-level object counts; nested values are shown as JSON text.
        assert_eq!(
            error_detail(br#"{"error":{"status":"x"}}"#).as_deref(),
            Some("server said \"{\"error\":{\"status\":\"x\"}}\"")
        );
        assert_eq!(
            error_detail(br#"{"status":{"code":[1,true,null]},"scope":null}"#).as_deref(),
            Some("status {\"code\":[1,true,null]}, scope null")
        );
        assert_eq!(
            error_detail(br#"["status","x"]"#).as_deref(),
            Some("server said \"[\"status\",\"x\"]\"")
        );
        // Trailing bytes after the object are ignored.
        assert_eq!(
            error_detail(b"{\"status\":\"401\"}\r\n\0junk").as_deref(),
            Some("status 401")
        );
    }

    #[test]
    fn error_detail_hostile_bodies() {
        // Not UTF-8: the object is still read, the bad bytes shown as U+FFFD.
        assert_eq!(
            error_detail(b"{\"status\":\"a\xffb\",\"scope\":\"s\"}").as_deref(),
            Some("status a\u{fffd}b, scope s")
        );
        // Nesting far beyond serde_json's limit: refused without exhausting the stack.
        let mut deep = b"{\"status\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 10_000));
        assert!(deep.len() < MAX_ERROR_JSON);
        let detail = error_detail(&deep).unwrap();
        assert!(
            detail.starts_with("server said \"{\"status\":[[["),
            "{detail}"
        );
        let mut deep = b"{\"status\":\"x\",\"scope\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 10_000));
        deep.extend(std::iter::repeat_n(b']', 10_000));
        deep.push(b'}');
        assert!(error_detail(&deep).unwrap().starts_with("server said"));
        // Huge: not parsed, only quoted and capped, even when it is valid JSON.
        let mut huge = b"{\"status\":\"".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1 << 20));
        huge.extend_from_slice(b"\"}");
        let detail = error_detail(&huge).unwrap();
        assert!(detail.starts_with("server said") && detail.len() < 300);
        // Just under the bound it is parsed, and the value is capped.
        let mut big = b"{\"status\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_ERROR_JSON - 13));
        big.extend_from_slice(b"\"}");
        assert_eq!(big.len(), MAX_ERROR_JSON);
        let detail = error_detail(&big).unwrap();
        assert!(detail.starts_with("status aaa") && detail.ends_with('…'));
        assert!(detail.len() < 300);
    }
}
