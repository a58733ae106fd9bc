//! SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-1 (RFC 5802) as a pure client state machine,
//! without channel binding (GS2 header `n,,`). Four messages:
//!
//! ```text
//! C: n,,n=user,r=<client nonce>                        client-first (initial response)
//! S: r=<client nonce><server nonce>,s=<salt>,i=<count> server-first
//! C: c=biws,r=<nonce>,p=<proof>                        client-final
//! S: v=<server signature>                              server-final (a challenge in POP3)
//! ```
//!
//! The client proves it knows the password without sending it, and the server proves it
//! knows the salted password: [`SaslClient::finish`] fails unless that proof arrived and
//! matched (compared in constant time), so a server that answers `+OK` without it is not
//! trusted. Everything the server sends is checked before use: its nonce must extend ours,
//! the salt must be base64, and the iteration count must lie in 1..=[`MAX_ITERATIONS`],
//! since each iteration costs us CPU and a hostile server could ask for billions.
//!
//! SASLprep (RFC 4013) is simplified: the user name and the password go out as their UTF-8
//! bytes, without normalisation. For ASCII credentials without control characters that is
//! exactly what SASLprep gives; non-ASCII ones that SASLprep would map (NFKC, non-ASCII
//! spaces, soft hyphens) can fail against a server that applies it. In the user name `=`
//! and `,` are escaped as `=3D` and `=2C` (RFC 5802 section 5.1), and a NUL is refused.
//!
//! The hashes come from the RustCrypto `sha1` and `sha2` crates, HMAC and PBKDF2 from
//! `hmac` and `pbkdf2`; one generic derivation serves both. The server signature is
//! checked with `Mac::verify_slice`, which compares in constant time.

use base64::prelude::*;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{AuthError, Mechanism, SaslClient, unexpected};
use crate::proto::sanitize::sanitize;
use crate::proto::secret::Secret;

/// The highest iteration count we accept from a server. RFC 7677 asks for at least 4096;
/// servers use up to a few hundred thousand. A million PBKDF2 rounds take well under a
/// second in a release build; more than that is treated as an attack on our CPU.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// Random bytes in a client nonce (32 base64 characters, far beyond RFC 5802's need for
/// a value that does not repeat).
const NONCE_BYTES: usize = 24;

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

impl ScramHash {
    fn mechanism(self) -> Mechanism {
        match self {
            ScramHash::Sha1 => Mechanism::ScramSha1,
            ScramHash::Sha256 => Mechanism::ScramSha256,
        }
    }

    fn name(self) -> &'static str {
        self.mechanism().sasl_name().unwrap_or("SCRAM")
    }

    /// RFC 5802 section 3 for this hash: the ClientProof and the ServerKey.
    fn derive(self, password: &[u8], salt: &[u8], iterations: u32, auth_message: &[u8]) -> Derived {
        match self {
            ScramHash::Sha1 => derive::<Sha1>(password, salt, iterations, auth_message),
            ScramHash::Sha256 => derive::<Sha256>(password, salt, iterations, auth_message),
        }
    }

    /// Whether `signature` is HMAC(server_key, auth_message), compared in constant time.
    fn verify(self, server_key: &[u8], auth_message: &[u8], signature: &[u8]) -> bool {
        match self {
            ScramHash::Sha1 => hmac::<Sha1>(server_key, auth_message).verify_slice(signature),
            ScramHash::Sha256 => hmac::<Sha256>(server_key, auth_message).verify_slice(signature),
        }
        .is_ok()
    }
}

/// What client-final needs from the password, and what server-final is checked against.
struct Derived {
    /// ClientKey XOR ClientSignature.
    proof: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key"): the key of the server's signature.
    server_key: Vec<u8>,
}

/// RFC 5802 section 3 with hash `D`:
///
/// ```text
/// SaltedPassword  := Hi(Normalize(password), salt, i)        (PBKDF2 with HMAC-D)
/// ClientKey       := HMAC(SaltedPassword, "Client Key")
/// StoredKey       := H(ClientKey)
/// ClientSignature := HMAC(StoredKey, AuthMessage)
/// ClientProof     := ClientKey XOR ClientSignature
/// ServerKey       := HMAC(SaltedPassword, "Server Key")
/// ```
fn derive<D: EagerHash>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &[u8],
) -> Derived {
    let mut salted = vec![0u8; <D as Digest>::output_size()];
    pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut salted);
    let client_key = hmac::<D>(&salted, b"Client Key").finalize().into_bytes();
    let stored_key = D::digest(&client_key);
    let client_signature = hmac::<D>(&stored_key, auth_message).finalize().into_bytes();
    let proof = client_key
        .iter()
        .zip(client_signature.iter())
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac::<D>(&salted, b"Server Key")
        .finalize()
        .into_bytes()
        .to_vec();
    salted.fill(0);
    Derived { proof, server_key }
}

/// HMAC-D keyed with `key`, fed `data`.
fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> Hmac<D> {
    // HMAC takes keys of any length (RFC 2104 section 2): this cannot fail.
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac
}

/// Where the exchange is.
enum State {
    /// Nothing sent.
    Start,
    /// client-first went out; the server-first message must extend `nonce`.
    SentFirst { nonce: String, first_bare: String },
    /// client-final went out; the server-final message must carry HMAC(server_key,
    /// auth_message).
    SentFinal {
        server_key: Vec<u8>,
        auth_message: String,
    },
    /// The server proved itself.
    Verified,
    /// A challenge was refused; every later one is refused too.
    Failed,
}

impl State {
    fn describe(&self) -> &'static str {
        match self {
            State::Start => "start",
            State::SentFirst { .. } => "sent client-first",
            State::SentFinal { .. } => "sent client-final",
            State::Verified => "verified",
            State::Failed => "failed",
        }
    }
}

/// A SCRAM client exchange. `Debug` shows only the hash and the state.
pub struct ScramClient {
    hash: ScramHash,
    user: String,
    secret: Secret,
    /// A fixed nonce (tests), else a random one is drawn for client-first.
    fixed_nonce: Option<String>,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("state", &self.state.describe())
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// An exchange for `user` with password `secret`; the client nonce is drawn from the
    /// operating system when client-first is built.
    pub fn new(hash: ScramHash, user: &str, secret: &Secret) -> ScramClient {
        ScramClient {
            hash,
            user: user.to_owned(),
            secret: secret.clone(),
            fixed_nonce: None,
            state: State::Start,
        }
    }

    /// As [`ScramClient::new`] with a fixed client nonce, for reproducing the RFC examples.
    /// Never use it against a real server: the nonce is what keeps an old exchange from
    /// being replayed. `None` if the nonce is empty or not printable ASCII without `,`.
    pub fn with_nonce(
        hash: ScramHash,
        user: &str,
        secret: &Secret,
        nonce: &str,
    ) -> Option<ScramClient> {
        if nonce.is_empty() || !nonce.bytes().all(is_nonce_char) {
            return None;
        }
        let mut client = ScramClient::new(hash, user, secret);
        client.fixed_nonce = Some(nonce.to_owned());
        Some(client)
    }

    /// Build client-first; on error the state is unchanged.
    fn client_first(&mut self) -> Result<Vec<u8>, AuthError> {
        let name = self.hash.name();
        if self.user.is_empty() || self.user.contains('\0') {
            return Err(AuthError::Refused(format!(
                "{name}: the user name is empty or contains NUL"
            )));
        }
        let nonce = match &self.fixed_nonce {
            Some(nonce) => nonce.clone(),
            None => {
                let mut random = [0u8; NONCE_BYTES];
                getrandom::fill(&mut random).map_err(|e| {
                    AuthError::Refused(format!(
                        "{name}: cannot get random bytes for the client nonce: {e}"
                    ))
                })?;
                // Standard base64 is printable ASCII without ',' (RFC 5802 "printable").
                BASE64_STANDARD.encode(random)
            }
        };
        let first_bare = format!("n={},r={nonce}", escape_saslname(&self.user));
        // GS2 header "n,,": no channel binding, no authzid.
        let message = format!("n,,{first_bare}").into_bytes();
        self.state = State::SentFirst { nonce, first_bare };
        Ok(message)
    }

    /// Check server-first and build client-final; returns it and the state that checks
    /// server-final.
    fn client_final(
        &self,
        server_first: &[u8],
        nonce: &str,
        first_bare: &str,
    ) -> Result<(Vec<u8>, State), AuthError> {
        let name = self.hash.name();
        let bad = |what: &str| {
            AuthError::BadChallenge(format!(
                "{name}: {what} in server-first message \"{}\"",
                sanitize(server_first)
            ))
        };
        if let Some(error) = server_first.strip_prefix(b"e=") {
            return Err(refused(name, error));
        }
        if server_first.starts_with(b"m=") {
            return Err(bad("unsupported mandatory extension"));
        }
        let text = std::str::from_utf8(server_first).map_err(|_| bad("non-UTF-8 bytes"))?;
        // RFC 5802 section 7: nonce "," salt "," iteration-count ["," extensions], in
        // that order.
        let mut attrs = text.split(',');
        let server_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| bad("no nonce (r=)"))?;
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or_else(|| bad("no salt (s=)"))?;
        let iterations = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .ok_or_else(|| bad("no iteration count (i=)"))?;

        // The server's nonce must be ours plus its own part (RFC 5802 section 5.1), or an
        // old exchange could be replayed to us.
        if !server_nonce.starts_with(nonce) || server_nonce.len() == nonce.len() {
            return Err(bad("a nonce that does not extend the client nonce"));
        }
        if !server_nonce.bytes().all(is_nonce_char) {
            return Err(bad("a nonce with non-printable characters"));
        }
        let salt = BASE64_STANDARD
            .decode(salt)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("a salt that is not base64"))?;
        let iterations = Some(iterations)
            .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|i| i.parse::<u32>().ok())
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| bad(&format!("an iteration count outside 1..={MAX_ITERATIONS}")))?;

        // "biws" is base64("n,,"), the GS2 header sent in client-first.
        let without_proof = format!("c=biws,r={server_nonce}");
        let auth_message = format!("{first_bare},{text},{without_proof}");
        let Derived { proof, server_key } = self.hash.derive(
            self.secret.expose().as_bytes(),
            &salt,
            iterations,
            auth_message.as_bytes(),
        );
        let message = format!("{without_proof},p={}", BASE64_STANDARD.encode(proof));
        Ok((
            message.into_bytes(),
            State::SentFinal {
                server_key,
                auth_message,
            },
        ))
    }

    /// Check server-final's signature against HMAC(server_key, auth_message).
    fn verify(
        &self,
        server_final: &[u8],
        server_key: &[u8],
        auth_message: &str,
    ) -> Result<(), AuthError> {
        let name = self.hash.name();
        if let Some(error) = server_final.strip_prefix(b"e=") {
            return Err(refused(name, error));
        }
        let Some(verifier) = server_final.strip_prefix(b"v=") else {
            return Err(AuthError::BadChallenge(format!(
                "{name}: server-final message \"{}\" has no verifier (v=)",
                sanitize(server_final)
            )));
        };
        // Extensions may follow after a ','.
        let verifier = verifier.split(|&b| b == b',').next().unwrap_or_default();
        let signature = BASE64_STANDARD.decode(verifier).map_err(|_| {
            AuthError::ServerNotVerified(format!("{name}: the server's signature is not base64"))
        })?;
        if self
            .hash
            .verify(server_key, auth_message.as_bytes(), &signature)
        {
            Ok(())
        } else {
            Err(AuthError::ServerNotVerified(format!(
                "{name}: the server's signature is wrong: it does not know the password, \
                 or someone is in the middle"
            )))
        }
    }
}

impl SaslClient for ScramClient {
    fn mechanism(&self) -> Mechanism {
        self.hash.mechanism()
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        match self.state {
            // On error stay in Start: the answer to the empty challenge reports it.
            State::Start => self.client_first().ok(),
            _ => None,
        }
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthError> {
        let name = self.hash.name();
        let state = std::mem::replace(&mut self.state, State::Failed);
        let result = match state {
            // RFC 5034 section 4: no initial response, so client-first answers the empty
            // challenge (client_first sets the next state).
            State::Start if challenge.is_empty() => self.client_first(),
            State::Start => Err(unexpected(
                self.hash.mechanism(),
                "challenge",
                challenge,
                " before client-first",
            )),
            State::SentFirst { nonce, first_bare } => self
                .client_final(challenge, &nonce, &first_bare)
                .map(|(message, next)| {
                    self.state = next;
                    message
                }),
            // RFC 5034 section 4: additional data with success travels as a challenge,
            // answered with an empty response.
            State::SentFinal {
                server_key,
                auth_message,
            } => self
                .verify(challenge, &server_key, &auth_message)
                .map(|()| {
                    self.state = State::Verified;
                    Vec::new()
                }),
            State::Verified => Err(unexpected(
                self.hash.mechanism(),
                "challenge",
                challenge,
                " after server-final",
            )),
            State::Failed => Err(AuthError::BadChallenge(format!(
                "{name}: the exchange already failed"
            ))),
        };
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn finish(&self) -> Result<(), AuthError> {
        match self.state {
            State::Verified => Ok(()),
            _ => Err(AuthError::ServerNotVerified(format!(
                "{}: the server accepted the login without proving that it knows the \
                 password (no valid server signature)",
                self.hash.name()
            ))),
        }
    }
}

/// The error for a server's `e=` attribute (RFC 5802 section 7, server-error-value).
fn refused(name: &str, error: &[u8]) -> AuthError {
    let error = error.split(|&b| b == b',').next().unwrap_or_default();
    AuthError::Refused(format!("{name}: the server refused: {}", sanitize(error)))
}

/// RFC 5802 section 7 "printable": %x21-2B / %x2D-7E (no ',').
fn is_nonce_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// A user name as an RFC 5802 `saslname` (also RFC 5801's GS2 authzid): `=` becomes
/// `=3D` and `,` becomes `=2C`.
pub(crate) fn escape_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Run a whole exchange; returns client-first and client-final as text.
    fn exchange(
        client: &mut ScramClient,
        server_first: &str,
        server_final: &str,
    ) -> (String, String, Result<Vec<u8>, AuthError>) {
        let first = String::from_utf8(client.initial_response().unwrap()).unwrap();
        let last = String::from_utf8(client.respond(server_first.as_bytes()).unwrap()).unwrap();
        let verdict = client.respond(server_final.as_bytes());
        (first, last, verdict)
    }

    fn rfc5802() -> ScramClient {
        ScramClient::with_nonce(
            ScramHash::Sha1,
            "user",
            &Secret::new("pencil"),
            "fyko+d2lbbFgONRv9qkxdawL",
        )
        .unwrap()
    }

    fn rfc7677() -> ScramClient {
        ScramClient::with_nonce(
            ScramHash::Sha256,
            "user",
            &Secret::new("pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        )
        .unwrap()
    }

    const RFC5802_SERVER_FIRST: &str =
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
    const RFC5802_SERVER_FINAL: &str = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";
    const RFC7677_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn rfc5802_example() {
        // RFC 5802 section 5: user "user", password "pencil".
        let mut c = rfc5802();
        assert_eq!(c.mechanism(), Mechanism::ScramSha1);
        let (first, last, verdict) = exchange(&mut c, RFC5802_SERVER_FIRST, RFC5802_SERVER_FINAL);
        assert_eq!(first, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(
            last,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert_eq!(verdict, Ok(Vec::new()));
        assert_eq!(c.finish(), Ok(()));
        // Nothing may follow server-final.
        assert!(matches!(c.respond(b"x"), Err(AuthError::BadChallenge(_))));
    }

    #[test]
    fn rfc7677_example() {
        // RFC 7677 section 3: user "user", password "pencil".
        let mut c = rfc7677();
        assert_eq!(c.mechanism(), Mechanism::ScramSha256);
        let (first, last, verdict) = exchange(&mut c, RFC7677_SERVER_FIRST, RFC7677_SERVER_FINAL);
        assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            last,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(verdict, Ok(Vec::new()));
        assert_eq!(c.finish(), Ok(()));
    }

    #[test]
    fn tampered_server_final_fails() {
        for tampered in [
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            "v=",
            "v=!!!",
            // The right signature cut short, or with a byte more: a prefix is no proof.
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95A==",
            "v=6rriTRBi23WpRR/wtup+mMhUZUk=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4A",
        ] {
            let mut c = rfc7677();
            let (_, _, verdict) = exchange(&mut c, RFC7677_SERVER_FIRST, tampered);
            assert!(
                matches!(verdict, Err(AuthError::ServerNotVerified(_))),
                "{tampered}: {verdict:?}"
            );
            assert!(matches!(c.finish(), Err(AuthError::ServerNotVerified(_))));
        }
        // A wrong password on our side gives a different expected signature too.
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha1,
            "user",
            &Secret::new("pencil2"),
            "fyko+d2lbbFgONRv9qkxdawL",
        )
        .unwrap();
        let (_, last, verdict) = exchange(&mut c, RFC5802_SERVER_FIRST, RFC5802_SERVER_FINAL);
        assert!(!last.ends_with("p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="));
        assert!(matches!(verdict, Err(AuthError::ServerNotVerified(_))));
    }

    #[test]
    fn ok_without_server_final_is_not_trusted() {
        let mut c = rfc7677();
        c.initial_response().unwrap();
        c.respond(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        let err = c.finish().unwrap_err();
        assert!(matches!(err, AuthError::ServerNotVerified(_)));
        assert!(!err.to_string().contains("pencil"));
        assert!(matches!(
            rfc7677().finish(),
            Err(AuthError::ServerNotVerified(_))
        ));
    }

    #[test]
    fn client_first_answers_the_empty_challenge() {
        let mut c = rfc7677();
        assert_eq!(c.respond(b"").unwrap(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.initial_response(), None);
        let mut c = rfc7677();
        assert!(matches!(c.respond(b"r=x"), Err(AuthError::BadChallenge(_))));
    }

    #[test]
    fn server_errors_are_refusals_with_their_text() {
        let mut c = rfc7677();
        c.initial_response().unwrap();
        c.respond(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            c.respond(b"e=invalid-proof"),
            Err(AuthError::Refused(
                "SCRAM-SHA-256: the server refused: invalid-proof".into()
            ))
        );
        assert!(c.finish().is_err());

        let mut c = rfc5802();
        c.initial_response().unwrap();
        assert_eq!(
            c.respond(b"e=unknown-user\x1b,x=1"),
            Err(AuthError::Refused(
                "SCRAM-SHA-1: the server refused: unknown-user\\x1b".into()
            ))
        );
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        let n = "rOprNGfwEbeRWgbNEkqO";
        let cases = [
            // The nonce does not extend ours, or adds nothing.
            "r=XOprNGfwEbeRWgbNEkqO123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_owned(),
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            "r=rOprNG,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_owned(),
            // Iteration counts.
            format!("r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"),
            format!("r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001"),
            format!("r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4294967296"),
            format!("r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+4096"),
            format!("r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1"),
            format!("r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i="),
            // Salts.
            format!("r={n}x,s=not*base64,i=4096"),
            format!("r={n}x,s=,i=4096"),
            // Missing or reordered attributes, extensions, bytes.
            format!("r={n}x,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ=="),
            format!("r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ=="),
            format!("s=W22ZaJ0SNY7soEsUEjb6gQ==,r={n}x,i=4096"),
            format!("m=ext,r={n}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            format!("r={n}\u{e9},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
            String::new(),
        ];
        for case in &cases {
            let mut c = rfc7677();
            c.initial_response().unwrap();
            let err = c.respond(case.as_bytes()).unwrap_err();
            assert!(matches!(err, AuthError::BadChallenge(_)), "{case}: {err:?}");
            assert!(
                c.respond(RFC7677_SERVER_FINAL.as_bytes()).is_err(),
                "stays failed"
            );
            assert!(c.finish().is_err());
        }
        let mut c = rfc7677();
        c.initial_response().unwrap();
        assert!(c.respond(&[b'r', b'=', 0xff]).is_err());
    }

    #[test]
    fn iteration_bounds_are_inclusive() {
        // i=1 is allowed (RFC 5802 sets no minimum), and an extension may follow.
        let mut c = rfc7677();
        c.initial_response().unwrap();
        let first = "r=rOprNGfwEbeRWgbNEkqOx,s=c2FsdA==,i=1,x=ext";
        let last = c.respond(first.as_bytes()).unwrap();
        assert!(last.starts_with(b"c=biws,r=rOprNGfwEbeRWgbNEkqOx,p="));
    }

    #[test]
    fn user_name_is_escaped_and_nul_refused() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "a=b,c", &Secret::new("p"), "abc").unwrap();
        assert_eq!(c.initial_response().unwrap(), b"n,,n=a=3Db=2Cc,r=abc");
        let mut c = ScramClient::new(ScramHash::Sha256, "a\0b", &Secret::new("p"));
        assert_eq!(c.initial_response(), None);
        assert!(matches!(c.respond(b""), Err(AuthError::Refused(_))));
        let mut c = ScramClient::new(ScramHash::Sha256, "", &Secret::new("p"));
        assert_eq!(c.initial_response(), None);
    }

    #[test]
    fn fixed_nonce_must_be_printable() {
        let s = Secret::new("p");
        assert!(ScramClient::with_nonce(ScramHash::Sha1, "u", &s, "").is_none());
        assert!(ScramClient::with_nonce(ScramHash::Sha1, "u", &s, "a,b").is_none());
        assert!(ScramClient::with_nonce(ScramHash::Sha1, "u", &s, "a b").is_none());
        assert!(ScramClient::with_nonce(ScramHash::Sha1, "u", &s, "a~!").is_some());
    }

    #[test]
    fn random_nonces_are_printable_and_differ() {
        let s = Secret::new("p");
        let nonce = |mut c: ScramClient| {
            let first = String::from_utf8(c.initial_response().unwrap()).unwrap();
            first.strip_prefix("n,,n=u,r=").unwrap().to_owned()
        };
        let a = nonce(ScramClient::new(ScramHash::Sha256, "u", &s));
        let b = nonce(ScramClient::new(ScramHash::Sha256, "u", &s));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(is_nonce_char));
    }

    #[test]
    fn debug_hides_the_password() {
        let mut c = rfc7677();
        c.initial_response().unwrap();
        let debug = format!("{c:?}");
        assert!(debug.contains("Sha256") && debug.contains("sent client-first"));
        assert!(!debug.contains("pencil"));
    }

    proptest! {
        #[test]
        fn server_first_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Our nonce, then anything: the tail may form a salt and a small count.
            let mut first = b"r=rOprNGfwEbeRWgbNEkqO".to_vec();
            first.extend_from_slice(&tail);
            let mut c = rfc7677();
            c.initial_response().unwrap();
            if let Ok(last) = c.respond(&first) {
                prop_assert!(last.starts_with(b"c=biws,r=rOprNGfwEbeRWgbNEkqO"));
            }
            prop_assert!(c.finish().is_err());
        }

        #[test]
        fn near_valid_server_first_never_panics(
            extra in "[ -~]{0,10}",
            salt in "[A-Za-z0-9+/=]{0,12}",
            count in "[0-9+-]{0,3}",
            rest in "(,[a-z]=[ -+--~]{0,5}){0,2}",
        ) {
            let first = format!("r=rOprNGfwEbeRWgbNEkqO{extra},s={salt},i={count}{rest}");
            let mut c = rfc7677();
            c.initial_response().unwrap();
            let _ = c.respond(first.as_bytes());
            let _ = c.respond(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
            // Only the RFC's own server-first can lead to the RFC's signature.
            prop_assert_eq!(c.finish().is_ok(), first == RFC7677_SERVER_FIRST);
        }
    }
}
