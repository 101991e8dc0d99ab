//! Secrets: random opaque tokens (sessions, invitation and guest links, walk-in visits), their
//! SHA-256 digests as stored in the database, and the constant-time comparison of digests.
//!
//! A leaf module: [`crate::auth`], [`crate::tokens`] and [`crate::links`] depend on it, it
//! depends on nothing of the crate. Public for the server binary (the key derivation) and the
//! reminders benchmark (links derived as the server derives them).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// 256 random bits, base64url without padding (43 characters).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key for `purpose` ("jwt", "cookie") derived from the server secret: SHA-512 over a
/// versioned prefix, the purpose and the secret, so one secret never serves two purposes.
pub fn derive_key(secret: &[u8], purpose: &str) -> Vec<u8> {
    let mut h = Sha512::new();
    h.update(b"consultroom key derivation v1\0");
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(secret);
    h.finalize().to_vec()
}

/// A link token derived from the server secret and a record id: HMAC-SHA-256(`key`,
/// `label:id`), base64url (43 characters). The database keeps only its SHA-256 as for random
/// tokens, but the link can be shown again (an appointment's page, a repeated booking, the mails
/// of a reschedule) without storing it: recomputing needs the server secret as well as the row.
pub fn derived_token(key: &[u8], label: &str, id: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"consultroom link v1:");
    ctx.update(label.as_bytes());
    ctx.update(b":");
    ctx.update(id.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
}

/// SHA-256 of a token, as stored in the database.
pub fn sha256(token: &str) -> Vec<u8> {
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

    #[test]
    fn derived_tokens_depend_on_key_label_and_id() {
        let t = derived_token(b"k1", "invitation", "id-1");
        assert_eq!(t.len(), 43);
        assert_eq!(t, derived_token(b"k1", "invitation", "id-1"));
        assert_ne!(t, derived_token(b"k2", "invitation", "id-1"));
        assert_ne!(t, derived_token(b"k1", "guest", "id-1"));
        assert_ne!(t, derived_token(b"k1", "invitation", "id-2"));
    }
}
