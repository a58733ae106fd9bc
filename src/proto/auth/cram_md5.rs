//! CRAM-MD5 (RFC 2195): the server sends one challenge (a msg-id like
//! `<1896.697170952@postoffice.example.net>`), the client answers `user SP digest`, the
//! digest being the lowercase hex HMAC-MD5 of the challenge keyed with the password. There
//! is no initial response and no second round. The password never crosses the wire, but
//! the answer allows offline guessing, and the server must store the password (or its
//! HMAC state) in the clear; SCRAM is preferred when offered.

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;

use super::{AuthError, Mechanism, SaslClient, Step, unexpected};
use crate::proto::secret::Secret;

/// The CRAM-MD5 exchange. `Debug` shows the password as `***`.
#[derive(Debug)]
pub struct CramMd5 {
    user: String,
    secret: Secret,
    /// One answer, to the one challenge; a second is refused.
    step: Step,
}

impl CramMd5 {
    /// An exchange for `user` with password `secret`.
    pub fn new(user: &str, secret: &Secret) -> CramMd5 {
        CramMd5 {
            user: user.to_owned(),
            secret: secret.clone(),
            step: Step::START,
        }
    }
}

/// `user SP hex(HMAC-MD5(password, challenge))` (RFC 2195 section 2).
pub fn response(user: &str, secret: &Secret, challenge: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length (longer ones are hashed first, RFC 2104 section 2),
    // so this cannot fail.
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(challenge);
    let digest = mac.finalize().into_bytes();
    let mut out = Vec::with_capacity(user.len() + 33);
    out.extend_from_slice(user.as_bytes());
    out.push(b' ');
    out.extend_from_slice(crate::proto::hex::encode_lower(&digest).as_bytes());
    out
}

impl SaslClient for CramMd5 {
    fn mechanism(&self) -> Mechanism {
        Mechanism::CramMd5
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        // RFC 2195: the server speaks first.
        None
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.step.answer(Mechanism::CramMd5, |sent| match sent {
            0 if challenge.is_empty() => Err(AuthError::BadChallenge(
                "CRAM-MD5: the server sent an empty challenge".into(),
            )),
            0 => Ok(response(&self.user, &self.secret, challenge)),
            _ => Err(unexpected(
                Mechanism::CramMd5,
                "second challenge",
                challenge,
                "",
            )),
        })
    }

    fn finish(&self) -> Result<(), AuthError> {
        // CRAM-MD5 does not authenticate the server.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2195_example() {
        // RFC 2195 section 2: user "tim", password "tanstaaftanstaaf".
        let mut c = CramMd5::new("tim", &Secret::new("tanstaaftanstaaf"));
        assert_eq!(c.initial_response(), None);
        let answer = c
            .respond(b"<1896.697170952@postoffice.reston.mci.net>")
            .unwrap();
        assert_eq!(answer, b"tim b913a602c7eda7a495b4e6e7334d3890");
        assert_eq!(c.finish(), Ok(()));
    }

    #[test]
    fn a_different_challenge_gives_a_different_digest() {
        let s = Secret::new("tanstaaftanstaaf");
        assert_ne!(
            response("tim", &s, b"<1896.697170952@postoffice.reston.mci.net>"),
            response("tim", &s, b"<1896.697170953@postoffice.reston.mci.net>")
        );
    }

    #[test]
    fn a_second_or_empty_challenge_is_refused() {
        let mut c = CramMd5::new("tim", &Secret::new("tanstaaftanstaaf"));
        c.respond(b"<1@x>").unwrap();
        let err = c.respond(b"again\x1b").unwrap_err();
        assert!(matches!(&err, AuthError::BadChallenge(t) if t.contains("again\\x1b")));
        assert!(!err.to_string().contains("tanstaaf"));
        assert!(c.respond(b"<1@x>").is_err());

        let mut c = CramMd5::new("tim", &Secret::new("tanstaaftanstaaf"));
        assert!(matches!(c.respond(b""), Err(AuthError::BadChallenge(_))));
        assert!(c.respond(b"<1@x>").is_err(), "stays failed");
    }

    #[test]
    fn debug_hides_the_password() {
        let c = CramMd5::new("tim", &Secret::new("tanstaaftanstaaf"));
        let debug = format!("{c:?}");
        assert!(debug.contains("tim"));
        assert!(!debug.contains("tanstaaf"));
    }
}
