//! Every SASL client exchange: `auth::client(mech, user, &secret)`, optionally
//! `initial_response()`, then a sequence of `respond(challenge)` calls, then `finish()`.
//!
//! Input layout: byte 0 picks the mechanism (`Mechanism::ALL[b % 9]`; APOP and USER are not
//! SASL and must give `None`), bit 0x80 whether `initial_response` is called first, bit
//! 0x40 (SCRAM only) a fixed client nonce through `ScramClient::with_nonce` instead of a
//! random one. The rest, through `arbitrary`: user name, secret, and up to 8 steps. A step
//! is raw challenge bytes, or (SCRAM) a server-first built on the client's real nonce, or a
//! server-final carrying the right signature, a damaged one, or one with extensions.
//!
//! Properties:
//! - never panics; once a `respond` fails, every later one fails too;
//! - error texts and `error_detail` hold no control characters (server text is escaped)
//!   and never the secret;
//! - PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER send exactly the documented bytes,
//!   in the documented order, and refuse what the documentation says they refuse;
//! - SCRAM is checked against an independent implementation of RFC 5802 (the `sha1`,
//!   `sha2`, `hmac` and `pbkdf2` crates, not the library's own SHA-1): client-first has the
//!   documented form, server-first is accepted exactly when it is well-formed and extends
//!   our nonce, client-final carries the right proof, a server-final is accepted exactly
//!   when its signature is the right one, and `finish` succeeds exactly when a server-final
//!   was verified. So SCRAM never accepts a server-final it did not verify.
//!
//! To keep executions fast, a SCRAM iteration count above `FUZZ_MAX_ITERATIONS` (but inside
//! the library's accepted range) ends the run before that challenge is answered; counts
//! above the library's `MAX_ITERATIONS` are still sent, as they must be refused cheaply.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use pop3::proto::auth::scram::{MAX_ITERATIONS, ScramClient, ScramHash};
use pop3::proto::auth::{AuthError, Mechanism, SaslClient, client, cram_md5};
use pop3::secret::Secret;
use sha1::Sha1;
use sha2::{Digest, Sha256};

const FUZZ_MAX_ITERATIONS: u32 = 1024;
const FIXED_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

#[derive(Debug, Arbitrary)]
enum Step {
    /// Any bytes as the challenge.
    Raw(Vec<u8>),
    /// The empty challenge.
    Empty,
    /// SCRAM server-first on the client's nonce: `r=<nonce><suffix>,s=<b64 salt>,i=<n>`
    /// and optional extensions.
    ServerFirst {
        suffix: String,
        salt: Vec<u8>,
        iterations: u16,
        extension: Option<String>,
    },
    /// SCRAM server-final: `v=<b64 signature>`, the signature right or with one bit
    /// flipped or cut short, and optional extensions.
    ServerFinal {
        damage: Damage,
        extension: Option<String>,
    },
}

#[derive(Debug, Arbitrary)]
enum Damage {
    None,
    FlipBit(u16),
    Truncate(u8),
    Extend(u8),
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn h(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hi(self, password: &[u8], salt: &[u8], rounds: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, rounds, &mut out);
                out.to_vec()
            }
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out);
                out.to_vec()
            }
        }
    }
}

/// The harness's own idea of where a SCRAM exchange is.
#[derive(Debug, Clone)]
enum Scram {
    Start,
    SentFirst { nonce: String, first_bare: String },
    SentFinal { signature: Vec<u8> },
    Verified,
    Failed,
}

fn is_nonce_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// RFC 5802 section 7, as the scram module documents it: `r=` (extending our nonce, all
/// printable), `s=` (base64, not empty), `i=` (1..=MAX_ITERATIONS), extensions after.
/// Returns (server nonce, salt, iterations) when the server-first is acceptable.
fn parse_server_first(challenge: &[u8], nonce: &str) -> Option<(String, Vec<u8>, u32)> {
    let text = std::str::from_utf8(challenge).ok()?;
    let mut attrs = text.split(',');
    let server_nonce = attrs.next()?.strip_prefix("r=")?;
    let salt = attrs.next()?.strip_prefix("s=")?;
    let iterations = attrs.next()?.strip_prefix("i=")?;
    if !server_nonce.starts_with(nonce)
        || server_nonce.len() == nonce.len()
        || !server_nonce.bytes().all(is_nonce_char)
    {
        return None;
    }
    let salt = BASE64_STANDARD
        .decode(salt)
        .ok()
        .filter(|s| !s.is_empty())?;
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iterations: u32 = iterations.parse().ok()?;
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return None;
    }
    Some((server_nonce.to_owned(), salt, iterations))
}

/// The iteration count a challenge would make the client compute, if it gets that far.
fn requested_iterations(challenge: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(challenge).ok()?;
    let i = text.split(',').nth(2)?.strip_prefix("i=")?;
    if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    i.parse().ok()
}

/// With `POP3_FUZZ_TRACE` set, the SCRAM model's transitions go to stderr, so that a
/// replay of the corpus (`-runs=0`) shows which states the fuzzer reached.
fn trace(what: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("POP3_FUZZ_TRACE").is_some()) {
        eprintln!("sasl-trace: {what}");
    }
}

fn check_text(text: &str, secret: &str, secret_checkable: bool) {
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
    if secret_checkable {
        assert!(!text.contains(secret), "the secret is in {text:?}");
    }
}

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let Some((&selector, rest)) = data.split_first() else {
        return Ok(());
    };
    let mech = Mechanism::ALL[usize::from(selector) % Mechanism::ALL.len()];
    let call_initial = selector & 0x80 != 0;
    let fixed_nonce = selector & 0x40 != 0;
    let mut u = Unstructured::new(rest);
    let user: String = u.arbitrary()?;
    let secret_text: String = u.arbitrary()?;
    let secret = Secret::new(secret_text.clone());
    // `shown` turns every non-ASCII and control byte into `\xNN`, so a secret holding one
    // cannot appear in an error through quoted server text; only then is "no secret in any
    // error" a property we can check without knowing what the server echoed.
    let secret_checkable = !secret_text.is_empty()
        && !user.contains(&secret_text)
        && secret_text
            .chars()
            .any(|c| !c.is_ascii() || c.is_ascii_control());

    let hash = match mech {
        Mechanism::ScramSha1 => Some((Hash::Sha1, ScramHash::Sha1)),
        Mechanism::ScramSha256 => Some((Hash::Sha256, ScramHash::Sha256)),
        _ => None,
    };
    let mut c: Box<dyn SaslClient> = match (hash, fixed_nonce) {
        (Some((_, h)), true) => {
            Box::new(ScramClient::with_nonce(h, &user, &secret, FIXED_NONCE).unwrap())
        }
        _ => match client(mech, &user, &secret) {
            Some(c) => c,
            None => {
                assert!(matches!(mech, Mechanism::Apop | Mechanism::User));
                return Ok(());
            }
        },
    };
    assert!(!matches!(mech, Mechanism::Apop | Mechanism::User));
    assert_eq!(c.mechanism(), mech);

    let user_ok_plain = !user.contains('\0') && !secret_text.contains('\0');
    let plain_message = || [b"\0", user.as_bytes(), b"\0", secret_text.as_bytes()].concat();
    let oauth_ok = !user.bytes().any(|b| b == 0 || b == 1)
        && !secret_text.is_empty()
        && !secret_text.bytes().any(|b| b < 0x20 || b == 0x7f);
    let oauth_message = || match mech {
        Mechanism::XOauth2 => [
            b"user=",
            user.as_bytes(),
            b"\x01auth=Bearer ",
            secret_text.as_bytes(),
            b"\x01\x01",
        ]
        .concat(),
        _ => [
            b"n,a=",
            user.replace('=', "=3D").replace(',', "=2C").as_bytes(),
            b",\x01auth=Bearer ",
            secret_text.as_bytes(),
            b"\x01\x01",
        ]
        .concat(),
    };
    let scram_user_ok = !user.is_empty() && !user.contains('\0');

    // The harness's model: SCRAM state, and for the others how many answers went out.
    let mut scram = Scram::Start;
    let mut sent = 0usize; // messages sent (initial response included)
    let mut failed = false;

    // Check a client-first message and move the SCRAM model on.
    let client_first = |msg: &[u8], scram: &mut Scram| {
        let msg = std::str::from_utf8(msg).expect("client-first is UTF-8");
        let first_bare = msg.strip_prefix("n,,").expect("GS2 header n,,");
        let (name, nonce) = first_bare.split_once(",r=").expect("r= in client-first");
        assert_eq!(
            name,
            format!("n={}", user.replace('=', "=3D").replace(',', "=2C"))
        );
        assert!(
            !nonce.is_empty() && nonce.bytes().all(is_nonce_char),
            "nonce {nonce:?}"
        );
        if fixed_nonce {
            assert_eq!(nonce, FIXED_NONCE);
        }
        *scram = Scram::SentFirst {
            nonce: nonce.to_owned(),
            first_bare: first_bare.to_owned(),
        };
    };

    if call_initial {
        let initial = c.initial_response();
        match mech {
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                assert_eq!(initial.is_some(), scram_user_ok);
                if let Some(m) = &initial {
                    client_first(m, &mut scram);
                }
            }
            Mechanism::Plain => {
                assert_eq!(initial, user_ok_plain.then(plain_message));
            }
            Mechanism::XOauth2 | Mechanism::OauthBearer => {
                assert_eq!(initial, oauth_ok.then(oauth_message));
            }
            _ => assert_eq!(initial, None),
        }
        if initial.is_some() {
            sent += 1;
            // Asking twice gives nothing: the message went out once.
            assert_eq!(c.initial_response(), None);
        }
    }

    for _ in 0..8 {
        if u.is_empty() {
            break;
        }
        let step: Step = u.arbitrary()?;
        let challenge: Vec<u8> = match (&step, &scram) {
            (Step::Raw(b), _) => b.clone(),
            (Step::Empty, _) => Vec::new(),
            (
                Step::ServerFirst {
                    suffix,
                    salt,
                    iterations,
                    extension,
                },
                Scram::SentFirst { nonce, .. },
            ) => {
                let suffix: String = suffix
                    .chars()
                    .filter(|c| is_nonce_char(*c as u8) && c.is_ascii())
                    .collect();
                let suffix = if suffix.is_empty() {
                    "x".to_owned()
                } else {
                    suffix
                };
                let salt = if salt.is_empty() {
                    vec![0]
                } else {
                    salt.clone()
                };
                let i = u32::from(*iterations) % 64 + 1;
                let mut s = format!(
                    "r={nonce}{suffix},s={},i={i}",
                    BASE64_STANDARD.encode(&salt)
                );
                if let Some(e) = extension {
                    s.push(',');
                    s.push_str(e);
                }
                s.into_bytes()
            }
            (Step::ServerFinal { damage, extension }, Scram::SentFinal { signature }) => {
                let mut sig = signature.clone();
                match damage {
                    Damage::None => {}
                    Damage::FlipBit(bit) => {
                        let bit = usize::from(*bit) % (sig.len() * 8);
                        sig[bit / 8] ^= 1 << (bit % 8);
                    }
                    Damage::Truncate(n) => sig.truncate(usize::from(*n) % sig.len()),
                    Damage::Extend(b) => sig.push(*b),
                }
                let mut s = format!("v={}", BASE64_STANDARD.encode(&sig)).into_bytes();
                if let Some(e) = extension {
                    s.push(b',');
                    s.extend_from_slice(e.as_bytes());
                }
                s
            }
            // A structured step that does not fit the state: send its raw form instead.
            (Step::ServerFirst { suffix, .. }, _) => suffix.clone().into_bytes(),
            (Step::ServerFinal { .. }, _) => b"v=".to_vec(),
        };

        if let Scram::SentFirst { .. } = scram {
            if requested_iterations(&challenge)
                .is_some_and(|i| i > FUZZ_MAX_ITERATIONS && i <= MAX_ITERATIONS)
            {
                // Too slow for the fuzzer (see the module comment).
                break;
            }
        }

        let result = c.respond(&challenge);
        if let Err(e) = &result {
            check_text(&e.to_string(), &secret_text, secret_checkable);
            check_text(&format!("{e:?}"), &secret_text, secret_checkable);
        }
        if failed {
            assert!(result.is_err(), "{mech:?} answered after it had failed");
            continue;
        }

        match mech {
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                let (h, _) = hash.unwrap();
                let next = match std::mem::replace(&mut scram, Scram::Failed) {
                    Scram::Start => {
                        if challenge.is_empty() && scram_user_ok {
                            let m = result
                                .as_ref()
                                .expect("client-first to the empty challenge");
                            client_first(m, &mut scram);
                            scram.clone()
                        } else {
                            assert!(result.is_err(), "{mech:?} answered {challenge:?} at start");
                            Scram::Failed
                        }
                    }
                    Scram::SentFirst { nonce, first_bare } => {
                        match parse_server_first(&challenge, &nonce) {
                            None => {
                                assert!(
                                    result.is_err(),
                                    "{mech:?} accepted server-first {:?} (nonce {nonce:?})",
                                    String::from_utf8_lossy(&challenge)
                                );
                                Scram::Failed
                            }
                            Some((server_nonce, salt, iterations)) => {
                                let got = match &result {
                                    Ok(m) => m,
                                    Err(e) => panic!(
                                        "{mech:?} refused good server-first {:?}: {e}",
                                        String::from_utf8_lossy(&challenge)
                                    ),
                                };
                                let text = std::str::from_utf8(&challenge).unwrap();
                                let salted = h.hi(secret_text.as_bytes(), &salt, iterations);
                                let client_key = h.hmac(&salted, b"Client Key");
                                let stored_key = h.h(&client_key);
                                let without_proof = format!("c=biws,r={server_nonce}");
                                let auth_message = format!("{first_bare},{text},{without_proof}");
                                let client_sig = h.hmac(&stored_key, auth_message.as_bytes());
                                let proof: Vec<u8> = client_key
                                    .iter()
                                    .zip(&client_sig)
                                    .map(|(a, b)| a ^ b)
                                    .collect();
                                let want =
                                    format!("{without_proof},p={}", BASE64_STANDARD.encode(&proof));
                                assert_eq!(
                                    String::from_utf8_lossy(got),
                                    want,
                                    "{mech:?} client-final differs from RFC 5802"
                                );
                                let server_key = h.hmac(&salted, b"Server Key");
                                Scram::SentFinal {
                                    signature: h.hmac(&server_key, auth_message.as_bytes()),
                                }
                            }
                        }
                    }
                    Scram::SentFinal { signature } => {
                        let verified = challenge
                            .strip_prefix(b"v=")
                            .map(|v| v.split(|&b| b == b',').next().unwrap_or_default())
                            .and_then(|v| BASE64_STANDARD.decode(v).ok())
                            .is_some_and(|v| v == signature);
                        if verified {
                            assert_eq!(
                                result.as_deref().ok(),
                                Some(&[][..]),
                                "{mech:?} refused the right server signature"
                            );
                            Scram::Verified
                        } else {
                            assert!(
                                result.is_err(),
                                "{mech:?} ACCEPTED A SERVER-FINAL IT DID NOT VERIFY: {:?}",
                                String::from_utf8_lossy(&challenge)
                            );
                            Scram::Failed
                        }
                    }
                    Scram::Verified | Scram::Failed => {
                        assert!(result.is_err(), "{mech:?} answered after the exchange");
                        Scram::Failed
                    }
                };
                trace(&format!(
                    "{mech:?} -> {}",
                    match &next {
                        Scram::Start => "start",
                        Scram::SentFirst { .. } => "sent-first",
                        Scram::SentFinal { .. } => "sent-final",
                        Scram::Verified => "verified",
                        Scram::Failed => "failed",
                    }
                ));
                scram = next;
            }
            Mechanism::CramMd5 => {
                if sent == 0 && !challenge.is_empty() {
                    let m = result.as_ref().expect("CRAM-MD5 answers one challenge");
                    assert_eq!(m, &cram_md5::response(&user, &secret, &challenge));
                    let (u_part, digest) = m.split_at(m.len() - 33);
                    assert_eq!(u_part, user.as_bytes());
                    assert_eq!(digest[0], b' ');
                    assert!(digest[1..].iter().all(|b| b"0123456789abcdef".contains(b)));
                } else {
                    assert!(
                        result.is_err(),
                        "CRAM-MD5 answered {challenge:?} (sent {sent})"
                    );
                }
            }
            Mechanism::Plain => {
                if sent == 0 && challenge.is_empty() && user_ok_plain {
                    assert_eq!(result.as_ref().ok(), Some(&plain_message()));
                } else {
                    assert!(
                        result.is_err(),
                        "PLAIN answered {challenge:?} (sent {sent})"
                    );
                }
            }
            Mechanism::Login => match sent {
                0 => assert_eq!(result.as_ref().ok(), Some(&user.as_bytes().to_vec())),
                1 => assert_eq!(result.as_ref().ok(), Some(&secret_text.as_bytes().to_vec())),
                _ => assert!(result.is_err(), "LOGIN answered a third challenge"),
            },
            Mechanism::XOauth2 | Mechanism::OauthBearer => match sent {
                0 if challenge.is_empty() && oauth_ok => {
                    assert_eq!(result.as_ref().ok(), Some(&oauth_message()))
                }
                1 => {
                    let ack: &[u8] = if mech == Mechanism::XOauth2 {
                        b""
                    } else {
                        b"\x01"
                    };
                    assert_eq!(result.as_deref().ok(), Some(ack));
                }
                _ => assert!(
                    result.is_err(),
                    "{mech:?} answered {challenge:?} (sent {sent})"
                ),
            },
            Mechanism::Apop | Mechanism::User => unreachable!(),
        }
        if result.is_ok() {
            sent += 1;
        } else {
            failed = true;
        }
        if let Some(detail) = c.error_detail() {
            check_text(&detail, &secret_text, secret_checkable);
        }
    }

    trace(&format!("{mech:?} end sent={sent} failed={failed}"));
    let finish = c.finish();
    match mech {
        Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
            assert_eq!(
                finish.is_ok(),
                matches!(scram, Scram::Verified),
                "{mech:?} finish() disagrees with verification ({scram:?})"
            );
            if let Err(e) = &finish {
                assert!(matches!(e, AuthError::ServerNotVerified(_)));
            }
        }
        _ => assert!(finish.is_ok()),
    }
    if let Err(e) = &finish {
        check_text(&e.to_string(), &secret_text, secret_checkable);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
