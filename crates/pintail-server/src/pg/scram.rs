//! The server's side of a SCRAM-SHA-256 exchange (RFC 5802, RFC 7677), as
//! Postgres runs it: the client proves it knows the password, checked
//! against the user's `StoredKey`, and the server proves it knows the
//! secret too. Over TLS, `SCRAM-SHA-256-PLUS` binds the exchange to the
//! server's certificate (`tls-server-end-point`, RFC 5929), so a man in
//! the middle with another certificate cannot relay it.
//!
//! pgwire has a SCRAM exchange of its own, but it keeps the salted
//! password itself, which is enough to log in; Pintail keeps Postgres'
//! verifiers, which are not.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::auth::{Secret, hmac_sha256, same, sha256};

pub(crate) const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub(crate) const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";
const END_POINT: &str = "tls-server-end-point";

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A message that is not SCRAM, or breaks its rules (SQLSTATE 08P01).
    Malformed(String),
    /// The proof does not match: a wrong password or an unknown user
    /// (SQLSTATE 28P01).
    WrongPassword,
}

fn malformed(why: impl Into<String>) -> Failure {
    Failure::Malformed(why.into())
}

/// The mechanisms to offer: with channel binding first when the
/// connection is TLS and the certificate's hash is known.
pub(crate) fn mechanisms(end_point: Option<&[u8]>) -> Vec<String> {
    let mut out = Vec::new();
    if end_point.is_some() {
        out.push(SCRAM_SHA_256_PLUS.to_owned());
    }
    out.push(SCRAM_SHA_256.to_owned());
    out
}

/// An exchange waiting for the client's final message.
#[derive(Debug)]
pub(crate) struct Pending {
    secret: Secret,
    /// The channel binding data the client must send back:
    /// the GS2 header, then (with `-PLUS`) the certificate's hash.
    binding: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

/// A fresh server nonce: 18 random bytes in base64.
pub(crate) fn server_nonce() -> Result<String, Failure> {
    let mut bytes = [0u8; 18];
    SystemRandom::new().fill(&mut bytes).map_err(|_| malformed("the system's random number generator failed"))?;
    Ok(STANDARD.encode(bytes))
}

/// Takes the client's first message (`data`, for `mechanism`), answers
/// with the server's first message. `end_point` is the certificate's hash
/// when the connection is TLS (and `-PLUS` was offered).
pub(crate) fn first(
    mechanism: &str,
    data: &[u8],
    secret: Secret,
    end_point: Option<&[u8]>,
    server_nonce: &str,
) -> Result<(String, Pending), Failure> {
    let text = std::str::from_utf8(data).map_err(|_| malformed("the client's first message is not UTF-8"))?;
    // gs2-header: cbind-flag "," [authzid] ","
    let (flag, rest) = text.split_once(',').ok_or_else(|| malformed("the client's first message has no GS2 header"))?;
    let (authzid, bare) = rest.split_once(',').ok_or_else(|| malformed("the client's first message has no GS2 header"))?;
    if !authzid.is_empty() {
        return Err(malformed("an authorization identity is not supported"));
    }
    let header = &text[..flag.len() + authzid.len() + 2];
    let plus = mechanism == SCRAM_SHA_256_PLUS;
    let mut binding = header.as_bytes().to_vec();
    match (flag, plus) {
        ("n", false) => {}
        // the client could bind but thinks the server cannot: if it can,
        // someone removed -PLUS from the offer on the way
        ("y", false) if end_point.is_none() => {}
        ("y", false) => return Err(malformed("channel binding was offered, and the client says it was not (a downgrade?)")),
        (flag, true) if flag.strip_prefix("p=") == Some(END_POINT) => {
            let hash = end_point.ok_or_else(|| malformed("channel binding needs a TLS connection"))?;
            binding.extend_from_slice(hash);
        }
        (flag, true) if flag.starts_with("p=") => return Err(malformed(format!("channel binding type '{}' is not supported", &flag[2..]))),
        (_, true) => return Err(malformed("SCRAM-SHA-256-PLUS was chosen without channel binding")),
        (flag, false) if flag.starts_with("p=") => return Err(malformed("channel binding was asked for with SCRAM-SHA-256")),
        _ => return Err(malformed(format!("unknown channel binding flag '{flag}'"))),
    }
    // client-first-bare: n=user,r=nonce[,extensions]; Postgres takes the
    // user from the startup message and ignores this one
    let mut fields = bare.split(',');
    match fields.next() {
        Some(user) if user.starts_with("n=") => {}
        Some(m) if m.starts_with("m=") => return Err(malformed("SCRAM extensions are not supported")),
        _ => return Err(malformed("the client's first message has no user name attribute")),
    }
    let client_nonce = fields
        .next()
        .and_then(|r| r.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or_else(|| malformed("the client's first message has no valid nonce"))?;
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!("r={nonce},s={},i={}", STANDARD.encode(&secret.salt), secret.iterations);
    let pending = Pending { secret, binding, nonce, client_first_bare: bare.to_owned(), server_first: server_first.clone() };
    Ok((server_first, pending))
}

impl Pending {
    /// Checks the client's final message; answers with the server's
    /// final message (its own proof) when the client's proof holds.
    pub(crate) fn finish(&self, data: &[u8]) -> Result<String, Failure> {
        let text = std::str::from_utf8(data).map_err(|_| malformed("the client's final message is not UTF-8"))?;
        let proof_at = text.rfind(",p=").ok_or_else(|| malformed("the client's final message has no proof"))?;
        let (without_proof, proof) = (&text[..proof_at], &text[proof_at + 3..]);
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .and_then(|c| STANDARD.decode(c).ok())
            .ok_or_else(|| malformed("the client's final message has no channel binding attribute"))?;
        if binding != self.binding {
            return Err(malformed("the channel binding does not match"));
        }
        if fields.next().and_then(|r| r.strip_prefix("r=")) != Some(self.nonce.as_str()) {
            return Err(malformed("the nonce does not match"));
        }
        let proof = STANDARD.decode(proof).map_err(|_| malformed("the proof is not base64"))?;
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let client_signature = hmac_sha256(&self.secret.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(Failure::WrongPassword);
        }
        let client_key: Vec<u8> = proof.iter().zip(client_signature).map(|(p, s)| p ^ s).collect();
        if !same(&sha256(&client_key), &self.secret.stored_key) {
            return Err(Failure::WrongPassword);
        }
        let server_signature = hmac_sha256(&self.secret.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

/// The `tls-server-end-point` channel binding of a DER certificate: its
/// hash, with the hash of its signature algorithm (SHA-256 for MD5 and
/// SHA-1). `None` for algorithms RFC 5929 leaves undefined (Ed25519,
/// RSA-PSS): then `-PLUS` is not offered, as Postgres does.
pub(crate) fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    use ring::digest;
    // the OID prefixes of RSA's PKCS#1 and of ECDSA's signature algorithms
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let (certificate, _) = der_element(der, 0x30)?;
    let (_, rest) = der_element(certificate, 0x30)?;
    let (algorithm, _) = der_element(rest, 0x30)?;
    let (oid, _) = der_element(algorithm, 0x06)?;
    let hash = match oid {
        // md5, sha1, sha256 WithRSAEncryption
        [prefix @ .., 0x04 | 0x05 | 0x0b] if prefix == RSA => &digest::SHA256,
        [prefix @ .., 0x0c] if prefix == RSA => &digest::SHA384,
        [prefix @ .., 0x0d] if prefix == RSA => &digest::SHA512,
        _ if oid == ECDSA_SHA1 => &digest::SHA256,
        [prefix @ .., 0x02] if prefix == ECDSA_SHA2 => &digest::SHA256,
        [prefix @ .., 0x03] if prefix == ECDSA_SHA2 => &digest::SHA384,
        [prefix @ .., 0x04] if prefix == ECDSA_SHA2 => &digest::SHA512,
        _ => return None,
    };
    Some(digest::digest(hash, der).as_ref().to_vec())
}

/// The contents of the DER element with `tag` at the start of `input`,
/// and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, input) = input.split_first()?;
    let (&first, input) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (len, input) = if first < 0x80 {
        (usize::from(first), input)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let (len, input) = input.split_at(n);
        (len.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), input)
    };
    (input.len() >= len).then(|| input.split_at(len))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    /// RFC 7677's example: user "user", password "pencil".
    fn rfc_secret() -> Secret {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = {
            let mut out = [0u8; 32];
            ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, NonZeroU32::new(4096).unwrap(), &salt, b"pencil", &mut out);
            out
        };
        let client_key = hmac_sha256(&salted, b"Client Key");
        Secret { iterations: NonZeroU32::new(4096).unwrap(), salt, stored_key: sha256(&client_key), server_key: hmac_sha256(&salted, b"Server Key") }
    }

    #[test]
    fn the_rfc_7677_exchange() {
        let (server_first, pending) = first(SCRAM_SHA_256, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", rfc_secret(), None, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        assert_eq!(server_first, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let client_final = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(pending.finish(client_final).unwrap(), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // one bit of the proof changed
        let wrong = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=";
        assert_eq!(pending.finish(wrong), Err(Failure::WrongPassword));
        // another nonce
        let replay = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert!(matches!(pending.finish(replay), Err(Failure::Malformed(_))));
    }

    #[test]
    fn channel_binding_rules() {
        let go = |mechanism, data: &[u8], end_point: Option<&[u8]>| first(mechanism, data, rfc_secret(), end_point, "x").map(|_| ()).map_err(|e| format!("{e:?}"));
        assert!(go(SCRAM_SHA_256, b"n,,n=,r=abc", Some(b"hash")).is_ok());
        assert!(go(SCRAM_SHA_256, b"y,,n=,r=abc", None).is_ok());
        assert!(go(SCRAM_SHA_256, b"y,,n=,r=abc", Some(b"hash")).unwrap_err().contains("downgrade"));
        assert!(go(SCRAM_SHA_256_PLUS, b"p=tls-server-end-point,,n=,r=abc", Some(b"hash")).is_ok());
        assert!(go(SCRAM_SHA_256_PLUS, b"p=tls-unique,,n=,r=abc", Some(b"hash")).unwrap_err().contains("'tls-unique' is not supported"));
        assert!(go(SCRAM_SHA_256_PLUS, b"n,,n=,r=abc", Some(b"hash")).unwrap_err().contains("without channel binding"));
        assert!(go(SCRAM_SHA_256, b"p=tls-server-end-point,,n=,r=abc", Some(b"hash")).unwrap_err().contains("with SCRAM-SHA-256"));
        assert!(go(SCRAM_SHA_256, b"n,a=admin,n=,r=abc", None).unwrap_err().contains("authorization identity"));
        assert!(go(SCRAM_SHA_256, b"n,,n=,r=", None).unwrap_err().contains("nonce"));
        assert!(go(SCRAM_SHA_256, b"garbage", None).unwrap_err().contains("GS2"));
        assert!(go(SCRAM_SHA_256, b"\xff,,", None).unwrap_err().contains("UTF-8"));

        // with -PLUS, the final message carries the header and the hash
        let (_, pending) = first(SCRAM_SHA_256_PLUS, b"p=tls-server-end-point,,n=,r=abc", rfc_secret(), Some(b"hash"), "x").unwrap();
        let unbound = format!("c={},r=abcx,p=AAAA", STANDARD.encode("p=tls-server-end-point,,"));
        assert_eq!(pending.finish(unbound.as_bytes()), Err(Failure::Malformed("the channel binding does not match".into())));
        let bound = format!("c={},r=abcx,p=AAAA", STANDARD.encode("p=tls-server-end-point,,hash"));
        assert_eq!(pending.finish(bound.as_bytes()), Err(Failure::WrongPassword));
    }

    #[test]
    fn end_point_hashes_follow_the_signature_algorithm() {
        // a minimal certificate-shaped DER: SEQUENCE { SEQUENCE {}, SEQUENCE { OID }, BIT STRING }
        let cert = |oid: &[u8]| {
            let mut algorithm = vec![0x30, (oid.len() + 2) as u8, 0x06, oid.len() as u8];
            algorithm.extend_from_slice(oid);
            let mut body = vec![0x30, 0x00];
            body.extend(algorithm);
            body.extend([0x03, 0x01, 0x00]);
            let mut der = vec![0x30, body.len() as u8];
            der.extend(body);
            der
        };
        let sha256_rsa = cert(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]);
        assert_eq!(end_point_hash(&sha256_rsa).unwrap(), sha256(&sha256_rsa).to_vec());
        let ecdsa_384 = cert(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]);
        assert_eq!(end_point_hash(&ecdsa_384).unwrap().len(), 48);
        let sha1_rsa = cert(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05]);
        assert_eq!(end_point_hash(&sha1_rsa).unwrap().len(), 32);
        assert_eq!(end_point_hash(&cert(&[0x2b, 0x65, 0x70])), None, "Ed25519");
        assert_eq!(end_point_hash(b"\x30\x85"), None);
        assert_eq!(end_point_hash(b""), None);
    }
}
