//! Login mechanisms as pure state machines: APOP (RFC 1939 section 7) and the SASL
//! mechanisms of the POP3 `AUTH` command (RFC 5034): SCRAM-SHA-256 / SCRAM-SHA-1
//! (RFC 7677 / 5802), CRAM-MD5 (RFC 2195), PLAIN (RFC 4616), LOGIN
//! (draft-murchison-sasl-login), XOAUTH2 (Google) and OAUTHBEARER (RFC 7628).
//!
//! This module owns the bytes of each exchange and nothing else: no sockets, no clocks, no
//! logging, no base64 on the wire (the client encodes and decodes the lines). It must never
//! put a secret into an error, a `Debug` string or a log line; errors quote the server's
//! text only escaped and capped (`ui::sanitize`, as everywhere else). Choosing a mechanism (strongest first,
//! never a password-revealing one over plaintext) belongs to the caller, which has the
//! capabilities and the account; [`Mechanism::AUTO_ORDER`] gives it the order.
//!
//! How the client drives one exchange (RFC 5034 section 4):
//!
//! 1. Build the client with [`client`]; `None` means the mechanism is not SASL (APOP and
//!    USER/PASS have their own commands).
//! 2. Send `AUTH <sasl name>`, followed by ` ` and the base64 of
//!    [`SaslClient::initial_response`] if it returned `Some` (`=` if those bytes are empty).
//!    If that would make the line longer than 255 octets (RFC 5034 section 4), send
//!    `AUTH <name>` alone and answer the server's first (empty) challenge with those same
//!    bytes instead of calling [`SaslClient::respond`]. A mechanism whose
//!    `initial_response` was never called (or returned `None`) sends its first message in
//!    answer to that empty challenge by itself, or fails there with the reason.
//! 3. For each `+ <base64>` line: decode it and send the base64 of
//!    [`SaslClient::respond`]'s answer (an empty answer is an empty line). If the challenge
//!    does not decode, or `respond` fails, send `*` to cancel, read the server's `-ERR`, and
//!    report the `respond` error, not the server's.
//! 4. On `+OK`, call [`SaslClient::finish`]: SCRAM fails it when the server never proved
//!    that it knows the password, and the session must then be dropped. On `-ERR`, report
//!    the server's text together with [`SaslClient::error_detail`] when it is `Some`.

pub mod apop;
pub mod cram_md5;
pub mod login;
pub mod oauth;
pub mod plain;
pub mod scram;

use crate::proto::sanitize::sanitize;
use crate::proto::secret::Secret;

/// A login mechanism, strongest first in [`Mechanism::AUTO_ORDER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677): salted challenge-response with mutual authentication.
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802): as above with SHA-1.
    ScramSha1,
    /// CRAM-MD5 (RFC 2195): HMAC-MD5 of a server challenge.
    CramMd5,
    /// APOP (RFC 1939 section 7): MD5 of the greeting's timestamp and the password.
    Apop,
    /// SASL PLAIN (RFC 4616): the password in the clear (inside TLS).
    Plain,
    /// SASL LOGIN (draft-murchison-sasl-login): user name and password in the clear.
    Login,
    /// `USER` / `PASS` (RFC 1939 section 7): the password in the clear.
    User,
    /// Google's XOAUTH2: an OAuth 2.0 bearer token.
    XOauth2,
    /// OAUTHBEARER (RFC 7628): an OAuth 2.0 bearer token with a GS2 header.
    OauthBearer,
}

impl Mechanism {
    /// The password mechanisms `auth = "auto"` tries, strongest first: [`Mechanism::ALL`]
    /// up to the OAuth ones, which are declared last for this. They are missing on purpose:
    /// they need a token, not a password, so only an account that names one of them uses it.
    pub const AUTO_ORDER: [Mechanism; 7] = *Mechanism::ALL.first_chunk().unwrap();

    /// Every mechanism, in declaration order: strongest first, the OAuth ones last.
    pub const ALL: [Mechanism; 9] = [
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::CramMd5,
        Mechanism::Apop,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::User,
        Mechanism::XOauth2,
        Mechanism::OauthBearer,
    ];

    /// The name in `AUTH` and in the CAPA `SASL` line; `None` for the two non-SASL logins.
    pub fn sasl_name(self) -> Option<&'static str> {
        match self {
            Mechanism::ScramSha256 => Some("SCRAM-SHA-256"),
            Mechanism::ScramSha1 => Some("SCRAM-SHA-1"),
            Mechanism::CramMd5 => Some("CRAM-MD5"),
            Mechanism::Plain => Some("PLAIN"),
            Mechanism::Login => Some("LOGIN"),
            Mechanism::XOauth2 => Some("XOAUTH2"),
            Mechanism::OauthBearer => Some("OAUTHBEARER"),
            Mechanism::Apop | Mechanism::User => None,
        }
    }

    /// The name in the config file (`auth = "..."`).
    pub fn config_name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "scram-sha-256",
            Mechanism::ScramSha1 => "scram-sha-1",
            Mechanism::CramMd5 => "cram-md5",
            Mechanism::Apop => "apop",
            Mechanism::Plain => "plain",
            Mechanism::Login => "login",
            Mechanism::User => "user",
            Mechanism::XOauth2 => "xoauth2",
            Mechanism::OauthBearer => "oauthbearer",
        }
    }

    /// The mechanism a config name means, ignoring ASCII case.
    pub fn from_config_name(s: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.config_name().eq_ignore_ascii_case(s))
    }

    /// The SASL mechanism a CAPA `SASL` word names, ignoring ASCII case (RFC 4422 section
    /// 3.1 names are upper case, but servers are not always careful).
    pub fn from_sasl_name(s: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.sasl_name().is_some_and(|n| n.eq_ignore_ascii_case(s)))
    }

    /// Whether the mechanism hands the server (and anyone who can read the connection) a
    /// reusable credential: the password itself, or an OAuth bearer token. Such mechanisms
    /// need TLS (STYLE.md rule 9).
    pub fn reveals_password(self) -> bool {
        match self {
            Mechanism::Plain
            | Mechanism::Login
            | Mechanism::User
            | Mechanism::XOauth2
            | Mechanism::OauthBearer => true,
            Mechanism::ScramSha256
            | Mechanism::ScramSha1
            | Mechanism::CramMd5
            | Mechanism::Apop => false,
        }
    }
}

/// Why an exchange failed on the client side. The texts never contain a secret; the
/// server's words in them are escaped and capped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The server sent something the mechanism does not allow at this point (malformed,
    /// out of order, or outside our bounds, like a huge SCRAM iteration count).
    #[error("{0}")]
    BadChallenge(String),
    /// The server accepted the login without proving its identity, or proved it wrongly
    /// (SCRAM's server signature): the session must not be used.
    #[error("{0}")]
    ServerNotVerified(String),
    /// The exchange cannot go on: the server reported an error inside the mechanism (SCRAM
    /// `e=`), or our credentials cannot be expressed in it (a NUL in a PLAIN user name).
    #[error("{0}")]
    Refused(String),
}

/// One SASL client exchange (RFC 5034 section 4): pure, driven by the client code as the
/// module documentation describes.
pub trait SaslClient {
    /// The mechanism this exchange runs.
    fn mechanism(&self) -> Mechanism;

    /// The initial response (raw bytes, not base64) to send with `AUTH MECH`, if the
    /// mechanism has one.
    fn initial_response(&mut self) -> Option<Vec<u8>>;

    /// Answer one decoded server challenge with the raw response bytes (the caller
    /// base64-encodes). For SCRAM the server-final message arrives as a challenge: its
    /// signature is verified here and answered with an empty response. For XOAUTH2 and
    /// OAUTHBEARER an error JSON arrives as a challenge: its text is recorded (see
    /// [`SaslClient::error_detail`]) and answered with an empty response (XOAUTH2) or
    /// `"\x01"` (OAUTHBEARER).
    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthError>;

    /// After `+OK`: `Ok` unless the mechanism requires mutual authentication that did not
    /// happen (SCRAM: the server signature must have been verified).
    fn finish(&self) -> Result<(), AuthError>;

    /// For `-ERR` after an OAuth error challenge: the server's error detail (status,
    /// scope), if any.
    fn error_detail(&self) -> Option<String> {
        None
    }
}

/// Where an exchange whose answers go by order stands (PLAIN, LOGIN, CRAM-MD5, the OAuth
/// mechanisms): how many answers went out, or that a challenge was refused, after which
/// every later one is refused too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Answered(u8),
    Failed,
}

impl Step {
    /// Nothing sent yet.
    const START: Step = Step::Answered(0);

    /// Answer the next challenge with `answer(n)`, `n` being the number of answers already
    /// sent (an initial response counts); an error from it fails the exchange for good.
    fn answer(
        &mut self,
        mech: Mechanism,
        answer: impl FnOnce(u8) -> Result<Vec<u8>, AuthError>,
    ) -> Result<Vec<u8>, AuthError> {
        let Step::Answered(n) = *self else {
            return Err(AuthError::BadChallenge(format!(
                "{}: the exchange already failed",
                mech.sasl_name().unwrap_or_default()
            )));
        };
        let result = answer(n);
        *self = match result {
            Ok(_) => Step::Answered(n.saturating_add(1)),
            Err(_) => Step::Failed,
        };
        result
    }

    /// The initial response, if nothing went out yet and `message` gives one. When it does
    /// not, nothing changes: the answer to the server's empty challenge reports why.
    fn initial(&mut self, message: impl FnOnce() -> Option<Vec<u8>>) -> Option<Vec<u8>> {
        if *self != Step::START {
            return None;
        }
        let message = message()?;
        *self = Step::Answered(1);
        Some(message)
    }
}

/// The error for a challenge the mechanism does not expect: `which` names it ("challenge",
/// "second challenge"), `when` may add when it came.
fn unexpected(mech: Mechanism, which: &str, challenge: &[u8], when: &str) -> AuthError {
    AuthError::BadChallenge(format!(
        "{}: unexpected {which} \"{}\"{when}",
        mech.sasl_name().unwrap_or_default(),
        sanitize(challenge)
    ))
}

/// Build the client for a SASL mechanism; `None` for [`Mechanism::Apop`] and
/// [`Mechanism::User`], which are not SASL. For the OAuth mechanisms `secret` is the
/// access token.
pub fn client(mech: Mechanism, user: &str, secret: &Secret) -> Option<Box<dyn SaslClient>> {
    let client: Box<dyn SaslClient> = match mech {
        Mechanism::ScramSha256 => Box::new(scram::ScramClient::new(
            scram::ScramHash::Sha256,
            user,
            secret,
        )),
        Mechanism::ScramSha1 => Box::new(scram::ScramClient::new(
            scram::ScramHash::Sha1,
            user,
            secret,
        )),
        Mechanism::CramMd5 => Box::new(cram_md5::CramMd5::new(user, secret)),
        Mechanism::Plain => Box::new(plain::Plain::new(user, secret)),
        Mechanism::Login => Box::new(login::Login::new(user, secret)),
        Mechanism::XOauth2 => Box::new(oauth::XOauth2::new(user, secret)),
        Mechanism::OauthBearer => Box::new(oauth::OauthBearer::new(user, secret)),
        Mechanism::Apop | Mechanism::User => return None,
    };
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_config_name(m.config_name()), Some(m));
            assert_eq!(
                Mechanism::from_config_name(&m.config_name().to_ascii_uppercase()),
                Some(m)
            );
            if let Some(name) = m.sasl_name() {
                assert_eq!(Mechanism::from_sasl_name(name), Some(m));
                assert_eq!(
                    Mechanism::from_sasl_name(&name.to_ascii_lowercase()),
                    Some(m)
                );
            }
        }
        assert_eq!(Mechanism::from_config_name("scram-sha-512"), None);
        assert_eq!(Mechanism::from_config_name(""), None);
        assert_eq!(Mechanism::from_sasl_name("APOP"), None);
        assert_eq!(Mechanism::from_sasl_name("USER"), None);
        assert_eq!(Mechanism::Apop.sasl_name(), None);
        assert_eq!(Mechanism::User.sasl_name(), None);
        assert_eq!(Mechanism::ScramSha256.sasl_name(), Some("SCRAM-SHA-256"));
        assert_eq!(Mechanism::OauthBearer.config_name(), "oauthbearer");
    }

    #[test]
    fn auto_order_is_all_without_oauth() {
        let password: Vec<_> = Mechanism::ALL
            .into_iter()
            .filter(|m| !matches!(m, Mechanism::XOauth2 | Mechanism::OauthBearer))
            .collect();
        assert_eq!(Mechanism::AUTO_ORDER[..], password[..]);
    }

    #[test]
    fn steps_count_answers_and_stay_failed() {
        let mut s = Step::START;
        assert_eq!(s.initial(|| None), None);
        assert_eq!(s, Step::START);
        assert_eq!(s.initial(|| Some(b"a".to_vec())), Some(b"a".to_vec()));
        assert_eq!(s.initial(|| Some(b"b".to_vec())), None);
        assert_eq!(s.answer(Mechanism::Plain, |n| Ok(vec![n])), Ok(vec![1]));
        assert_eq!(s, Step::Answered(2));
        let err = unexpected(Mechanism::Plain, "challenge", b"x\x1b", " here");
        assert_eq!(
            err,
            AuthError::BadChallenge("PLAIN: unexpected challenge \"x\\x1b\" here".into())
        );
        assert_eq!(s.answer(Mechanism::Plain, |_| Err(err.clone())), Err(err));
        assert_eq!(s, Step::Failed);
        assert_eq!(
            s.answer(Mechanism::Login, |n| Ok(vec![n])),
            Err(AuthError::BadChallenge(
                "LOGIN: the exchange already failed".into()
            ))
        );
    }

    #[test]
    fn auto_order_is_strongest_first_and_has_no_oauth() {
        assert_eq!(Mechanism::AUTO_ORDER[0], Mechanism::ScramSha256);
        assert_eq!(Mechanism::AUTO_ORDER[6], Mechanism::User);
        assert!(!Mechanism::AUTO_ORDER.contains(&Mechanism::XOauth2));
        assert!(!Mechanism::AUTO_ORDER.contains(&Mechanism::OauthBearer));
        // Every mechanism that keeps the password hidden comes before every one that
        // reveals it.
        let first_revealing = Mechanism::AUTO_ORDER
            .iter()
            .position(|m| m.reveals_password())
            .unwrap();
        assert!(
            Mechanism::AUTO_ORDER[first_revealing..]
                .iter()
                .all(|m| m.reveals_password())
        );
    }

    #[test]
    fn reveals_password() {
        let revealing: Vec<_> = Mechanism::ALL
            .into_iter()
            .filter(|m| m.reveals_password())
            .collect();
        assert_eq!(
            revealing,
            [
                Mechanism::Plain,
                Mechanism::Login,
                Mechanism::User,
                Mechanism::XOauth2,
                Mechanism::OauthBearer
            ]
        );
    }

    #[test]
    fn client_exists_exactly_for_sasl_mechanisms() {
        let secret = Secret::new("pw");
        for m in Mechanism::ALL {
            let c = client(m, "u", &secret);
            assert_eq!(c.is_some(), m.sasl_name().is_some(), "{m:?}");
            if let Some(c) = c {
                assert_eq!(c.mechanism(), m);
            }
        }
    }

    /// Drive a whole exchange with hostile challenges; nothing may panic, and no answer
    /// may be produced after an error (a failed client stays failed).
    fn drive(m: Mechanism, use_initial: bool, challenges: &[Vec<u8>]) {
        let secret = Secret::new("pencil");
        let mut c = client(m, "user", &secret).unwrap();
        if use_initial {
            let _ = c.initial_response();
        }
        let mut failed = false;
        for ch in challenges {
            let r = c.respond(ch);
            if failed {
                assert!(r.is_err(), "{m:?} answered after failing");
            }
            failed |= r.is_err();
            if let Ok(bytes) = &r {
                assert!(bytes.len() < 4096);
            }
        }
        let _ = c.finish();
        let _ = c.error_detail();
    }

    proptest! {
        #[test]
        fn respond_never_panics(
            use_initial in any::<bool>(),
            challenges in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..300), 0..5),
        ) {
            for m in Mechanism::ALL {
                if m.sasl_name().is_some() {
                    drive(m, use_initial, &challenges);
                }
            }
        }

        #[test]
        fn respond_never_panics_on_near_valid_text(
            use_initial in any::<bool>(),
            challenges in proptest::collection::vec(
                "(r=|s=|i=|v=|e=|m=|,|=|[A-Za-z0-9+/]{1,8}|\\{\"status\":\"|\"\\}|<|>|@)*", 0..5),
        ) {
            let challenges: Vec<Vec<u8>> =
                challenges.into_iter().map(String::into_bytes).collect();
            for m in Mechanism::ALL {
                if m.sasl_name().is_some() {
                    drive(m, use_initial, &challenges);
                }
            }
        }
    }
}
