//! The server side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677), with channel binding
//! `tls-server-end-point` (RFC 5929) for SCRAM-SHA-256-PLUS. Pure: messages in, messages out;
//! [`super::startup`] carries them over pgwire.
//!
//! The server holds only the verifier ([`ScramSecret`]): it recovers ClientKey from the proof
//! (`ClientProof XOR HMAC(StoredKey, AuthMessage)`) and accepts if `SHA-256(ClientKey)` is
//! StoredKey. Someone who read the verifier cannot produce a proof.
//!
//! Channel binding follows PostgreSQL: over TLS the server offers both mechanisms; a client
//! that chose SCRAM-SHA-256-PLUS must bind to the certificate the server presented; a client
//! that says it would have bound but thinks the server cannot (`y`) while the server offered
//! PLUS is refused (someone stripped PLUS from the offer); binding data with plain
//! SCRAM-SHA-256 is refused.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac};

use crate::controller::secret::ScramSecret;
use crate::sqlstate::{ErrorCode, SqlState};

/// The mechanism names, as offered in AuthenticationSASL.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";
/// The one channel binding type offered (what libpq supports).
const TLS_SERVER_END_POINT: &str = "tls-server-end-point";

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message that does not parse as SCRAM.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding the client claims and cannot prove, or a downgrade.
    #[error("{0}")]
    ChannelBinding(&'static str),
    /// The proof does not match (wrong password, or no such user).
    #[error("password authentication failed")]
    Proof,
}

impl ErrorCode for ScramError {
    fn sqlstate(&self) -> SqlState {
        match self {
            ScramError::Malformed(_) => SqlState::PROTOCOL_VIOLATION,
            ScramError::ChannelBinding(_) => SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            ScramError::Proof => SqlState::INVALID_PASSWORD,
        }
    }

    fn retryable(&self) -> bool {
        false
    }
}

/// What the server knows of the connection when a client starts an exchange.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The mechanism the client chose.
    pub plus: bool,
    /// `tls-server-end-point` data (the hash of the server's certificate) when the connection
    /// is TLS and the server offered SCRAM-SHA-256-PLUS.
    pub end_point: Option<Vec<u8>>,
}

/// An exchange after the server's first message, waiting for the client's final one.
pub struct ServerFirst {
    /// The message to send.
    pub message: String,
    gs2_header: String,
    cbind_data: Option<Vec<u8>>,
    nonce: String,
    client_first_bare: String,
    secret: ScramSecret,
}

/// Starts an exchange: `client_first` is the SASLInitialResponse's data, `secret` the user's
/// verifier (a mock one for a user that does not exist, so that one fails as a wrong password).
pub fn server_first(
    client_first: &[u8],
    binding: &Binding,
    secret: ScramSecret,
) -> Result<ServerFirst, ScramError> {
    let suffix: [u8; 18] = rand::random();
    server_first_with_nonce(client_first, binding, secret, &B64.encode(suffix))
}

fn server_first_with_nonce(
    client_first: &[u8],
    binding: &Binding,
    secret: ScramSecret,
    server_nonce: &str,
) -> Result<ServerFirst, ScramError> {
    let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    // gs2-header = gs2-cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ScramError::Malformed(
            "client-first-message has no gs2 header",
        ));
    };
    if !authzid.is_empty() {
        return Err(ScramError::Malformed(
            "authorization identities are not supported",
        ));
    }
    let cbind_data = match (flag, binding.plus) {
        ("n", false) => None,
        ("y", false) if binding.end_point.is_some() => {
            return Err(ScramError::ChannelBinding(
                "channel binding negotiation failed: the server offered SCRAM-SHA-256-PLUS \
                 but the client did not see it",
            ))
        }
        ("y", false) => None,
        (f, true) if f.strip_prefix("p=") == Some(TLS_SERVER_END_POINT) => {
            match &binding.end_point {
                Some(hash) => Some(hash.clone()),
                None => {
                    return Err(ScramError::ChannelBinding(
                        "SCRAM-SHA-256-PLUS is offered only over TLS",
                    ))
                }
            }
        }
        (f, true) if f.starts_with("p=") => {
            return Err(ScramError::ChannelBinding(
                "unsupported channel binding type: only tls-server-end-point is supported",
            ))
        }
        (_, true) => {
            return Err(ScramError::ChannelBinding(
                "the client chose SCRAM-SHA-256-PLUS without channel binding data",
            ))
        }
        (f, false) if f.starts_with("p=") => {
            return Err(ScramError::ChannelBinding(
                "the client chose SCRAM-SHA-256 but sent channel binding data",
            ))
        }
        _ => return Err(ScramError::Malformed("bad gs2 channel binding flag")),
    };
    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    let mut attrs = bare.split(',');
    if attrs.next().is_none_or(|a| !a.starts_with("n=")) {
        // PostgreSQL ignores the SCRAM user name (libpq sends it empty): the startup
        // message's user is the one authenticated.
        return Err(ScramError::Malformed(
            "client-first-message has no user name",
        ));
    }
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or(ScramError::Malformed(
            "client-first-message has no valid nonce",
        ))?;
    let nonce = format!("{client_nonce}{server_nonce}");
    let message = format!(
        "r={nonce},s={},i={}",
        B64.encode(&secret.salt),
        secret.iterations
    );
    Ok(ServerFirst {
        message,
        gs2_header: format!("{flag},{authzid},"),
        cbind_data,
        nonce,
        client_first_bare: bare.to_string(),
        secret,
    })
}

impl ServerFirst {
    /// Checks the client's final message; on success, the server-final message to send.
    pub fn client_final(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("client-final-message has no proof"))?;
        let mut attrs = without_proof.split(',');
        let cbind =
            attrs
                .next()
                .and_then(|a| a.strip_prefix("c="))
                .ok_or(ScramError::Malformed(
                    "client-final-message has no channel binding",
                ))?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("client-final-message has no nonce"))?;
        let cbind = B64
            .decode(cbind)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        let mut expected = self.gs2_header.clone().into_bytes();
        expected.extend_from_slice(self.cbind_data.as_deref().unwrap_or_default());
        if !constant_time_eq(&cbind, &expected) {
            return Err(ScramError::ChannelBinding(
                "SCRAM channel binding check failed",
            ));
        }
        if nonce != self.nonce {
            return Err(ScramError::Malformed("the nonce does not match"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("the proof is not base64"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.message, without_proof
        );
        let stored_key = hmac::Key::new(hmac::HMAC_SHA256, &self.secret.stored_key);
        let signature = hmac::sign(&stored_key, auth_message.as_bytes());
        if proof.len() != signature.as_ref().len() {
            return Err(ScramError::Proof);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        let computed = digest::digest(&digest::SHA256, &client_key);
        if !constant_time_eq(computed.as_ref(), &self.secret.stored_key) {
            return Err(ScramError::Proof);
        }
        let server_key = hmac::Key::new(hmac::HMAC_SHA256, &self.secret.server_key);
        let server_signature = hmac::sign(&server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature.as_ref())))
    }
}

/// A verifier for a user that does not exist: its salt is the same on every attempt (derived
/// from the name with a key of this process), so probing cannot tell such a user from one with
/// a wrong password; no proof matches its keys.
pub fn mock_secret(mock_key: &hmac::Key, user: &str, iterations: u32) -> ScramSecret {
    let tag = hmac::sign(mock_key, user.as_bytes());
    ScramSecret {
        salt: tag.as_ref()[..16].to_vec(),
        iterations,
        stored_key: rand::random::<[u8; 32]>().to_vec(),
        server_key: rand::random::<[u8; 32]>().to_vec(),
    }
}

/// `tls-server-end-point` channel binding data of a DER certificate (RFC 5929 section 4.1):
/// its hash with the hash function of its signature algorithm, SHA-256 for MD5 and SHA-1.
pub fn end_point_hash(cert_der: &[u8]) -> Vec<u8> {
    let algorithm = match signature_algorithm_oid(cert_der) {
        Some(oid) if SHA384_SIGNATURES.contains(&oid) => &digest::SHA384,
        Some(oid) if SHA512_SIGNATURES.contains(&oid) => &digest::SHA512,
        _ => &digest::SHA256,
    };
    digest::digest(algorithm, cert_der).as_ref().to_vec()
}

/// DER contents of the signature algorithm OIDs hashed with SHA-384 / SHA-512:
/// sha384WithRSAEncryption, ecdsa-with-SHA384; sha512WithRSAEncryption, ecdsa-with-SHA512.
const SHA384_SIGNATURES: &[&[u8]] = &[
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
];
const SHA512_SIGNATURES: &[&[u8]] = &[
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
];

/// The OID of `Certificate.signatureAlgorithm`:
/// `SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, ... }, ... }`.
fn signature_algorithm_oid(der: &[u8]) -> Option<&[u8]> {
    let (tag, certificate, _) = der_item(der)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_tbs) = der_item(certificate)?;
    let (tag, algorithm, _) = der_item(after_tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_item(algorithm)?;
    (tag == 0x06).then_some(oid)
}

/// One DER item: its tag, its contents and what follows it.
fn der_item(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |l, b| (l << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwire::api::auth::sasl::scram::gen_salted_password;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    fn secret(password: &str) -> ScramSecret {
        let salt = vec![3u8; 16];
        let salted = gen_salted_password(password, &salt, 4096);
        ScramSecret::from_salted_password(salt, 4096, &salted)
    }

    fn plain() -> Binding {
        Binding {
            plus: false,
            end_point: None,
        }
    }

    /// Runs a whole exchange with tokio-postgres' client side.
    fn exchange(
        password: &str,
        client_binding: ChannelBinding,
        binding: &Binding,
        secret: ScramSecret,
    ) -> Result<(), ScramError> {
        let mut client = ScramSha256::new(password.as_bytes(), client_binding);
        let first = server_first(client.message(), binding, secret)?;
        client
            .update(first.message.as_bytes())
            .expect("the client accepts server-first");
        let server_final = first.client_final(client.message())?;
        client
            .finish(server_final.as_bytes())
            .expect("the client verifies the server's signature");
        Ok(())
    }

    #[test]
    fn rfc7677_example_is_accepted_with_the_verifier_only() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = gen_salted_password("pencil", &salt, 4096);
        let secret = ScramSecret::from_salted_password(salt, 4096, &salted);
        let first = server_first_with_nonce(
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            &plain(),
            secret,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            first.message,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            first.client_final(client_final.as_bytes()).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // One bit off in the proof.
        let forged = client_final.replace("p=dHzb", "p=dHzc");
        assert_eq!(
            first.client_final(forged.as_bytes()),
            Err(ScramError::Proof)
        );
    }

    #[test]
    fn a_client_with_the_password_logs_in_and_a_wrong_one_does_not() {
        exchange("pw", ChannelBinding::unsupported(), &plain(), secret("pw")).unwrap();
        assert_eq!(
            exchange(
                "nope",
                ChannelBinding::unsupported(),
                &plain(),
                secret("pw")
            ),
            Err(ScramError::Proof)
        );
    }

    #[test]
    fn the_verifier_as_a_password_does_not_log_in() {
        // An attacker who read StoredKey/ServerKey (or the old SaltedPassword) tries them.
        let s = secret("pw");
        for stolen in [&s.stored_key, &s.server_key] {
            let as_text = B64.encode(stolen);
            assert_eq!(
                exchange(&as_text, ChannelBinding::unsupported(), &plain(), s.clone()),
                Err(ScramError::Proof)
            );
        }
    }

    #[test]
    fn channel_binding_must_match_the_servers_certificate() {
        let ours = end_point_hash(b"certificate");
        let tls = Binding {
            plus: true,
            end_point: Some(ours.clone()),
        };
        exchange(
            "pw",
            ChannelBinding::tls_server_end_point(ours.clone()),
            &tls,
            secret("pw"),
        )
        .unwrap();
        // A client talking to someone else's certificate (a man in the middle).
        assert!(matches!(
            exchange(
                "pw",
                ChannelBinding::tls_server_end_point(end_point_hash(b"another")),
                &tls,
                secret("pw"),
            ),
            Err(ScramError::ChannelBinding(_))
        ));
        // PLUS without TLS, and binding data with plain SCRAM-SHA-256.
        let no_tls = Binding {
            plus: true,
            end_point: None,
        };
        assert!(matches!(
            exchange(
                "pw",
                ChannelBinding::tls_server_end_point(ours.clone()),
                &no_tls,
                secret("pw")
            ),
            Err(ScramError::ChannelBinding(_))
        ));
        let first = server_first(b"p=tls-server-end-point,,n=,r=abc", &plain(), secret("pw"));
        assert!(matches!(first, Err(ScramError::ChannelBinding(_))));
    }

    #[test]
    fn a_client_that_did_not_see_plus_is_refused_when_it_was_offered() {
        let offered = Binding {
            plus: false,
            end_point: Some(vec![1; 32]),
        };
        let first = server_first(b"y,,n=,r=abc", &offered, secret("pw"));
        assert!(matches!(first, Err(ScramError::ChannelBinding(_))));
        // Without TLS `y` is fine: nothing was offered.
        exchange("pw", ChannelBinding::unrequested(), &plain(), secret("pw")).unwrap();
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for m in [
            &b""[..],
            b"n",
            b"n,,",
            b"n,a=x,n=,r=abc",
            b"x,,n=,r=abc",
            b"n,,n=,r=",
            &[0xff, 0xfe],
        ] {
            assert!(
                matches!(
                    server_first(m, &plain(), secret("pw")),
                    Err(ScramError::Malformed(_))
                ),
                "{m:?}"
            );
        }
        let first = server_first(b"n,,n=,r=abc", &plain(), secret("pw")).unwrap();
        for m in [
            &b""[..],
            b"c=biws",
            b"c=biws,r=abc,p=!!",
            b"c=???,r=x,p=AA==",
        ] {
            assert!(first.client_final(m).is_err(), "{m:?}");
        }
    }

    #[test]
    fn the_end_point_hash_of_an_ecdsa_p256_certificate_is_its_sha256() {
        let pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let der = cert.der().to_vec();
        assert_eq!(
            signature_algorithm_oid(&der),
            Some(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02][..])
        );
        assert_eq!(
            end_point_hash(&der),
            digest::digest(&digest::SHA256, &der).as_ref()
        );
    }

    /// Logs `password` in against `secret` with tokio-postgres' client.
    fn logs_in(password: &str, secret: &ScramSecret) -> bool {
        exchange(
            password,
            ChannelBinding::unsupported(),
            &plain(),
            secret.clone(),
        )
        .is_ok()
    }

    #[test]
    fn a_user_saved_by_an_older_build_logs_in_and_its_salted_password_is_not_written_again() {
        use crate::controller::client::MetadataView;
        use crate::controller::metadata::{Command, Metadata};
        let secret = |m: &Metadata| {
            let view = MetadataView::from(m.clone());
            view.user("carol").map(|u| u.secret.clone()).unwrap()
        };
        let salt = vec![5u8; 16];
        let salted = gen_salted_password("old secret", &salt, 4096);
        let as_json = |b: &[u8]| serde_json::to_string(b).unwrap();
        // A snapshot written by the build that stored SaltedPassword.
        let mut snapshot = serde_json::to_value(Metadata::default()).unwrap();
        snapshot["users"]["carol"] = serde_json::json!({
            "name": "carol", "salt": salt, "iterations": 4096,
            "salted_password": salted, "is_admin": false,
        });
        let mut m: Metadata = serde_json::from_value(snapshot).unwrap();
        assert!(logs_in("old secret", &secret(&m)));
        assert!(!logs_in("wrong", &secret(&m)));

        // A password change in a log entry of that build.
        let new_salted = gen_salted_password("new secret", &salt, 4096);
        let entry = format!(
            r#"{{"AlterUserPassword":{{"name":"carol","salt":{},"iterations":4096,"salted_password":{}}}}}"#,
            as_json(&salt),
            as_json(&new_salted)
        );
        let cmd: Command = serde_json::from_str(&entry).unwrap();
        assert!(!matches!(
            m.apply(&cmd),
            crate::controller::metadata::CommandResult::Err(_)
        ));
        assert!(logs_in("new secret", &secret(&m)));
        assert!(!logs_in("old secret", &secret(&m)));

        // What this build writes (snapshots, log entries, the change feed) holds neither.
        for written in [
            serde_json::to_string(&m).unwrap(),
            serde_json::to_string(&cmd).unwrap(),
            format!("{m:?}"),
            format!("{cmd:?}"),
        ] {
            assert!(!written.contains("salted_password"), "{written}");
            for old in [&salted, &new_salted] {
                let inner = as_json(old);
                assert!(!written.contains(&inner[1..inner.len() - 1]), "{written}");
            }
        }
        // And reads back to the same verifier.
        let again: Metadata = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert!(logs_in("new secret", &secret(&again)));
    }
}
