//! What the controller keeps of a user's password: the SCRAM-SHA-256 verifier of RFC 5802/7677
//! (salt, iteration count, StoredKey, ServerKey), never the password nor SaltedPassword.
//!
//! With StoredKey and ServerKey a server checks a client's proof and signs its own answer, but
//! nobody can log in with them: the proof needs ClientKey, which only the password (or
//! SaltedPassword) yields, and StoredKey is its SHA-256.
//!
//! ```text
//! SaltedPassword := Hi(Normalize(password), salt, i)        (PBKDF2-HMAC-SHA-256)
//! ClientKey      := HMAC(SaltedPassword, "Client Key")
//! StoredKey      := SHA-256(ClientKey)
//! ServerKey      := HMAC(SaltedPassword, "Server Key")
//! ```
//!
//! Format: serialised flattened into user records and password changes as `salt`,
//! `iterations`, `stored_key`, `server_key`. Records written before this format carry
//! `salted_password` instead; reading one derives both keys from it and drops it, so it is
//! never written again (see [`ScramSecret`]'s `Deserialize`).

use ring::{digest, hmac};
use serde::{Deserialize, Serialize};

/// A user's SCRAM-SHA-256 verifier. `Debug` shows neither key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SecretRecord")]
pub struct ScramSecret {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramSecret {
    /// The verifier of a password whose SaltedPassword is `salted_password`.
    pub fn from_salted_password(salt: Vec<u8>, iterations: u32, salted_password: &[u8]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, salted_password);
        let client_key = hmac::sign(&key, b"Client Key");
        ScramSecret {
            salt,
            iterations,
            stored_key: digest::digest(&digest::SHA256, client_key.as_ref())
                .as_ref()
                .to_vec(),
            server_key: hmac::sign(&key, b"Server Key").as_ref().to_vec(),
        }
    }
}

impl std::fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The serialised shapes a verifier is read from: this build's keys, or an older build's
/// `salted_password`.
#[derive(Deserialize)]
struct SecretRecord {
    salt: Vec<u8>,
    iterations: u32,
    #[serde(default)]
    stored_key: Option<Vec<u8>>,
    #[serde(default)]
    server_key: Option<Vec<u8>>,
    /// Written by builds before StoredKey/ServerKey; only read.
    #[serde(default)]
    salted_password: Option<Vec<u8>>,
}

impl TryFrom<SecretRecord> for ScramSecret {
    type Error = &'static str;

    fn try_from(r: SecretRecord) -> Result<Self, Self::Error> {
        match (r.stored_key, r.server_key, r.salted_password) {
            (Some(stored_key), Some(server_key), _) => Ok(ScramSecret {
                salt: r.salt,
                iterations: r.iterations,
                stored_key,
                server_key,
            }),
            (None, None, Some(salted)) => Ok(ScramSecret::from_salted_password(
                r.salt,
                r.iterations,
                &salted,
            )),
            _ => Err("a password needs stored_key and server_key (or an older salted_password)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_debug_hides_them() {
        let s = ScramSecret::from_salted_password(vec![7; 16], 4096, &[9; 32]);
        assert_eq!(s.stored_key.len(), 32);
        assert_eq!(s.server_key.len(), 32);
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("salted_password"), "{json}");
        assert_eq!(serde_json::from_str::<ScramSecret>(&json).unwrap(), s);
        let debug = format!("{s:?}");
        assert!(!debug.contains("key"), "{debug}");
    }

    #[test]
    fn an_old_record_derives_the_keys_and_an_empty_one_is_refused() {
        let s: ScramSecret =
            serde_json::from_str(r#"{"salt":[1],"iterations":4096,"salted_password":[2,3]}"#)
                .unwrap();
        assert_eq!(s, ScramSecret::from_salted_password(vec![1], 4096, &[2, 3]));
        assert!(serde_json::from_str::<ScramSecret>(r#"{"salt":[1],"iterations":1}"#).is_err());
    }
}
