//! Who may connect: users and their SCRAM-SHA-256 secrets.
//!
//! A secret is kept as Postgres keeps it (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`,
//! as in `pg_authid.rolpassword`), so a leaked users file does not hand
//! out the passwords: a client proves it knows the password without
//! sending it, and the server checks the proof against `StoredKey` alone.
//! `pintail hash-password` makes such a secret from a password.
//!
//! Users come from a file (`--users FILE`: one `name:secret` per line, the
//! secret either a SCRAM verifier or a plain password, hashed on loading)
//! and from the environment (`PINTAIL_PASSWORD`, for the user named by
//! `PINTAIL_USER`, `pintail` if unset), the way container images take
//! their first password.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pintail_core::{Error, ErrorKind, Result};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::{digest, hmac, pbkdf2};

/// The iteration count of secrets Pintail makes (Postgres' default, 4096).
const ITERATIONS: NonZeroU32 = NonZeroU32::MIN.saturating_add(4095);
const SALT_LEN: usize = 16;
const KEY_LEN: usize = digest::SHA256_OUTPUT_LEN;

/// A user's SCRAM-SHA-256 secret: what the server needs to check a proof
/// of the password, and nothing that would let it be replayed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub(crate) iterations: NonZeroU32,
    pub(crate) salt: Vec<u8>,
    pub(crate) stored_key: [u8; KEY_LEN],
    pub(crate) server_key: [u8; KEY_LEN],
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret of `password` with a fresh random salt.
    pub fn from_password(password: &str) -> Result<Self> {
        let mut salt = vec![0; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| Error::new(ErrorKind::Internal, "the system's random number generator failed"))?;
        Ok(Self::derive(password, salt, ITERATIONS))
    }

    fn derive(password: &str, salt: Vec<u8>, iterations: NonZeroU32) -> Self {
        let salted = salted_password(password, &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        Self {
            iterations,
            salt,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// Reads a verifier in Postgres' form,
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse_verifier(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (iterations_salt, keys) = rest.split_once('$')?;
        let (iterations, salt) = iterations_salt.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let key = |b64: &str| STANDARD.decode(b64).ok().and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok());
        Some(Self {
            iterations: iterations.parse().ok()?,
            salt: STANDARD.decode(salt).ok().filter(|s| !s.is_empty())?,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }

    /// Whether `password` is this secret's password (for protocols that
    /// send the password itself, over TLS).
    pub fn matches_password(&self, password: &str) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        same(&sha256(&hmac_sha256(&salted, b"Client Key")), &self.stored_key)
    }

    /// A secret no password matches, the same for a name each time: an
    /// unknown user goes through the whole exchange and fails where a
    /// wrong password does, so a client cannot learn which names exist.
    pub(crate) fn unknown_user(name: &str) -> Self {
        // without randomness (never seen on Linux) the names are still
        // refused, only their fake salts become predictable
        static KEY: LazyLock<hmac::Key> = LazyLock::new(|| {
            hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
                .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, b"pintail: no system randomness"))
        });
        let tag = hmac::sign(&KEY, name.as_bytes());
        let tag = tag.as_ref();
        let mut stored_key = [0; KEY_LEN];
        stored_key.copy_from_slice(tag);
        // no SHA-256 of a client key is all ones
        Self {
            iterations: ITERATIONS,
            salt: tag[..SALT_LEN].to_vec(),
            stored_key: [0xff; KEY_LEN],
            server_key: stored_key,
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }
}

/// `Hi(Normalize(password), salt, i)` of RFC 5802: the password prepared
/// with SASLprep (or taken as it is when it has characters SASLprep
/// refuses, as Postgres does).
fn salted_password(password: &str, salt: &[u8], iterations: NonZeroU32) -> [u8; KEY_LEN] {
    let prepared = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
    let mut out = [0; KEY_LEN];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt, prepared.as_bytes(), &mut out);
    out
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; KEY_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

pub(crate) fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    let mut out = [0; KEY_LEN];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Equality in time that does not depend on where the bytes differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Whether `text` was meant as a verifier (whatever its case or spacing).
fn looks_like_verifier(text: &str) -> bool {
    text.trim_start().get(..14).is_some_and(|head| head.eq_ignore_ascii_case("SCRAM-SHA-256$"))
}

/// The users a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: HashMap<String, Secret>,
}

impl Users {
    /// The users of `file` (if given) and of the environment's
    /// `PINTAIL_USER` / `PINTAIL_PASSWORD` (if set); `None` when neither
    /// names any.
    pub fn load(file: Option<&Path>, environment: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let mut users = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io(format!("cannot read the users file {}: {e}", path.display())))?;
            users.add_lines(&text, &path.display().to_string())?;
        }
        if let Some(password) = environment("PINTAIL_PASSWORD").filter(|p| !p.is_empty()) {
            let name = environment("PINTAIL_USER").filter(|u| !u.is_empty()).unwrap_or_else(|| "pintail".to_owned());
            let secret = if looks_like_verifier(&password) {
                Secret::parse_verifier(password.trim()).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOption, "PINTAIL_PASSWORD holds a malformed SCRAM-SHA-256 verifier")
                        .with_hint("give the password itself, or a verifier from `pintail hash-password`")
                })?
            } else {
                Secret::from_password(&password)?
            };
            users.by_name.insert(name, secret);
        }
        Ok((!users.by_name.is_empty()).then_some(users))
    }

    /// Adds the `name:secret` lines of `text` (from `source`); blank lines
    /// and lines starting with `#` are skipped.
    fn add_lines(&mut self, text: &str, source: &str) -> Result<()> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                Error::new(ErrorKind::InvalidOption, format!("{source}, line {}: {why}", number + 1))
                    .with_hint("write one user per line as name:secret, the secret a SCRAM-SHA-256 verifier from `pintail hash-password` or a password")
            };
            let (name, secret) = line.split_once(':').ok_or_else(|| bad("expected name:secret"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(bad("the user name is empty"));
            }
            if secret.is_empty() {
                return Err(bad(&format!("user '{name}' has an empty secret")));
            }
            // a verifier that does not parse is an error, never a password
            // (the verifier's text would become the password)
            let secret = if looks_like_verifier(secret) {
                Secret::parse_verifier(secret.trim()).ok_or_else(|| bad(&format!("user '{name}' has a malformed SCRAM-SHA-256 verifier")))?
            } else {
                Secret::from_password(secret)?
            };
            if self.by_name.insert(name.to_owned(), secret).is_some() {
                return Err(bad(&format!("user '{name}' is listed twice")));
            }
        }
        Ok(())
    }

    /// The secret of `name`, if the user is known.
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.by_name.get(name)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_round_trip_and_check_passwords() {
        let secret = Secret::from_password("pencil").unwrap();
        let text = secret.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        assert_eq!(Secret::parse_verifier(&text), Some(secret.clone()));
        assert!(secret.matches_password("pencil"));
        assert!(!secret.matches_password("pencil "));
        assert!(!Secret::unknown_user("x").matches_password(""));
    }

    #[test]
    fn verifiers_match_postgres() {
        // made by Postgres 15: SET password_encryption = 'scram-sha-256'; CREATE ROLE u PASSWORD 'secret';
        let theirs = "SCRAM-SHA-256$4096:myLUm/6703GOzFSFCQiJ7A==$HDTRKlC9bVnhjhENrzSyFtnuh5cxcsUQO2LPC+Xo0zg=:Xl4kzV10gdFUoEcIytLo4X9QwIxyRFnvwxNEoawa9YY=";
        let secret = Secret::parse_verifier(theirs).unwrap();
        assert!(secret.matches_password("secret"));
        assert!(!secret.matches_password("Secret"));
        // with Postgres' salt, the same password gives the same keys
        let ours = Secret::derive("secret", secret.salt.clone(), secret.iterations);
        assert_eq!(ours.to_string(), theirs);
    }

    #[test]
    fn users_files_name_the_bad_line() {
        let mut users = Users::default();
        let err = |text: &str| Users::default().add_lines(text, "users.txt").unwrap_err().message().to_owned();
        users.add_lines("# comment\n\nalice:wonderland\nbob:SCRAM-SHA-256$4096:c2FsdA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "f").unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.secret("alice").unwrap().matches_password("wonderland"));
        assert_eq!(err("alice"), "users.txt, line 1: expected name:secret");
        assert_eq!(err("\n:pw"), "users.txt, line 2: the user name is empty");
        assert_eq!(err("a:"), "users.txt, line 1: user 'a' has an empty secret");
        assert_eq!(err("a:SCRAM-SHA-256$4096:bad"), "users.txt, line 1: user 'a' has a malformed SCRAM-SHA-256 verifier");
        assert_eq!(err("a:x\na:y"), "users.txt, line 2: user 'a' is listed twice");
        // a verifier mistyped is refused, not taken as a password
        assert_eq!(err("a: SCRAM-SHA-256$4096:bad"), "users.txt, line 1: user 'a' has a malformed SCRAM-SHA-256 verifier");
        assert_eq!(err("a:scram-sha-256$4096:c2FsdA==$x:y"), "users.txt, line 1: user 'a' has a malformed SCRAM-SHA-256 verifier");
    }

    #[test]
    fn the_environment_adds_one_user() {
        let env = |name: &str| match name {
            "PINTAIL_PASSWORD" => Some("hunter2".to_owned()),
            _ => None,
        };
        let users = Users::load(None, env).unwrap().unwrap();
        assert!(users.secret("pintail").unwrap().matches_password("hunter2"));
        assert!(Users::load(None, |_| None).unwrap().is_none());
    }
}
