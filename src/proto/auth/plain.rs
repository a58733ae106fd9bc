//! SASL PLAIN (RFC 4616): one message, `authzid NUL authcid NUL passwd`, sent as the
//! initial response. We never ask to act as another user, so the authzid is empty. The
//! password crosses the wire as is, so the caller must only pick PLAIN inside TLS
//! (STYLE.md rule 9). RFC 4616 section 2 forbids NUL in the authcid and the password (it
//! would move the field boundaries): such credentials make the exchange fail instead.

use super::{AuthError, Mechanism, SaslClient, Step, unexpected};
use crate::proto::secret::Secret;

/// The PLAIN exchange. `Debug` shows the password as `***`.
#[derive(Debug)]
pub struct Plain {
    user: String,
    secret: Secret,
    /// One answer at most: the message (as initial response or answer to the empty
    /// challenge).
    step: Step,
}

impl Plain {
    /// An exchange for `user` with password `secret`.
    pub fn new(user: &str, secret: &Secret) -> Plain {
        Plain {
            user: user.to_owned(),
            secret: secret.clone(),
            step: Step::START,
        }
    }
}

/// `NUL user NUL password`, or `None` if either holds a NUL.
fn message(user: &str, secret: &Secret) -> Option<Vec<u8>> {
    let user = user.as_bytes();
    let pass = secret.expose().as_bytes();
    if user.contains(&0) || pass.contains(&0) {
        return None;
    }
    let mut out = Vec::with_capacity(user.len() + pass.len() + 2);
    out.push(0);
    out.extend_from_slice(user);
    out.push(0);
    out.extend_from_slice(pass);
    Some(out)
}

impl SaslClient for Plain {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Plain
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        self.step.initial(|| message(&self.user, &self.secret))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.step.answer(Mechanism::Plain, |sent| match sent {
            // RFC 5034 section 4: without an initial response the server sends an empty
            // challenge, and the message goes out as the answer.
            0 if challenge.is_empty() => message(&self.user, &self.secret).ok_or_else(|| {
                AuthError::Refused(
                    "PLAIN cannot carry a user name or password that contains NUL".into(),
                )
            }),
            _ => Err(unexpected(Mechanism::Plain, "challenge", challenge, "")),
        })
    }

    fn finish(&self) -> Result<(), AuthError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4616_message_with_empty_authzid() {
        // RFC 4616 section 4's second example, without the authzid.
        let mut p = Plain::new("tim", &Secret::new("tanstaaftanstaaf"));
        assert_eq!(
            p.initial_response().unwrap(),
            b"\0tim\0tanstaaftanstaaf".to_vec()
        );
        assert_eq!(p.initial_response(), None, "sent once");
        assert!(matches!(p.respond(b""), Err(AuthError::BadChallenge(_))));
        assert_eq!(p.finish(), Ok(()));
    }

    #[test]
    fn message_answers_the_empty_challenge_without_initial_response() {
        let mut p = Plain::new("tim", &Secret::new("pw"));
        assert_eq!(p.respond(b"").unwrap(), b"\0tim\0pw".to_vec());
        assert!(p.respond(b"").is_err(), "only once");
    }

    #[test]
    fn nul_in_credentials_is_refused() {
        let mut p = Plain::new("t\0im", &Secret::new("pw"));
        assert_eq!(p.initial_response(), None);
        let err = p.respond(b"").unwrap_err();
        assert!(matches!(err, AuthError::Refused(_)));

        let mut p = Plain::new("tim", &Secret::new("p\0w"));
        assert_eq!(p.initial_response(), None);
        let err = p.respond(b"").unwrap_err();
        assert!(!err.to_string().contains("p\0w"));
    }

    #[test]
    fn a_non_empty_challenge_is_refused_and_quoted_escaped() {
        let mut p = Plain::new("tim", &Secret::new("pw"));
        let err = p.respond(b"hi\r\n").unwrap_err();
        assert_eq!(
            err,
            AuthError::BadChallenge("PLAIN: unexpected challenge \"hi\\x0d\\x0a\"".into())
        );
        assert_eq!(p.initial_response(), None, "stays failed");
    }

    #[test]
    fn debug_hides_the_password() {
        let p = Plain::new("tim", &Secret::new("tanstaaf"));
        assert!(!format!("{p:?}").contains("tanstaaf"));
    }
}
