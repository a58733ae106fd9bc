//! SASL LOGIN (draft-murchison-sasl-login): no initial response; the server asks
//! `Username:` and then `Password:`, and the client answers each with the bare value. The
//! draft itself says clients should not rely on the prompt text, and servers vary (some
//! send `User Name`, some an empty prompt), so the answers go by order: the first challenge
//! gets the user name, the second the password, a third is refused. The password crosses
//! the wire as is: TLS only (STYLE.md rule 9).

use super::{AuthError, Mechanism, SaslClient, Step, unexpected};
use crate::proto::secret::Secret;

/// The LOGIN exchange. `Debug` shows the password as `***`.
#[derive(Debug)]
pub struct Login {
    user: String,
    secret: Secret,
    /// The user name goes out first, then the password; a third challenge is refused.
    step: Step,
}

impl Login {
    /// An exchange for `user` with password `secret`.
    pub fn new(user: &str, secret: &Secret) -> Login {
        Login {
            user: user.to_owned(),
            secret: secret.clone(),
            step: Step::START,
        }
    }
}

impl SaslClient for Login {
    fn mechanism(&self) -> Mechanism {
        Mechanism::Login
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        None
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthError> {
        // By order, not by prompt text (see the module documentation).
        let answers = [self.user.as_bytes(), self.secret.expose().as_bytes()];
        self.step.answer(Mechanism::Login, |sent| {
            let third = || unexpected(Mechanism::Login, "third challenge", challenge, "");
            answers
                .get(usize::from(sent))
                .map(|a| a.to_vec())
                .ok_or_else(third)
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
    fn draft_exchange() {
        // draft-murchison-sasl-login section 2's prompts.
        let mut l = Login::new("tim", &Secret::new("tanstaaftanstaaf"));
        assert_eq!(l.initial_response(), None);
        assert_eq!(l.respond(b"Username:").unwrap(), b"tim");
        assert_eq!(l.respond(b"Password:").unwrap(), b"tanstaaftanstaaf");
        let err = l.respond(b"More?").unwrap_err();
        assert!(matches!(&err, AuthError::BadChallenge(t) if t.contains("More?")));
        assert!(!err.to_string().contains("tanstaaf"));
        assert!(l.respond(b"Password:").is_err(), "stays failed");
        assert_eq!(l.finish(), Ok(()));
    }

    #[test]
    fn prompts_are_answered_by_order_whatever_they_say() {
        let mut l = Login::new("tim", &Secret::new("pw"));
        assert_eq!(l.respond(b"").unwrap(), b"tim");
        assert_eq!(l.respond(b"User Name\0").unwrap(), b"pw");
    }

    #[test]
    fn debug_hides_the_password() {
        let l = Login::new("tim", &Secret::new("tanstaaf"));
        assert!(!format!("{l:?}").contains("tanstaaf"));
    }
}
