//! Secrets: random opaque tokens (sessions, invitation and guest links, walk-in visits), their
//! SHA-256 digests as stored in the database, and the constant-time comparison of digests.
//!
//! A leaf module: [`crate::auth`], [`crate::tokens`] and [`crate::links`] depend on it, it
//! depends on nothing of the crate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits, base64url without padding (43 characters).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token, as stored in the database.
pub(crate) fn sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether two digests are equal, in time independent of where they differ.
pub(crate) fn digest_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_base64url_chars_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert!(URL_SAFE_NO_PAD.decode(a.as_bytes()).is_ok());
        assert_ne!(a, random_token());
        assert!(digest_eq(&sha256(&a), &sha256(&a)));
        assert!(!digest_eq(&sha256(&a), &sha256("other")));
    }
}
