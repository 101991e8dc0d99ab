//! Staff password hashing with Argon2id (default parameters, PHC strings).
//!
//! Invariant: a login for an unknown e-mail still runs one Argon2 verification (against a dummy
//! hash), so timing does not reveal which e-mails have accounts.

use std::sync::LazyLock;

use anyhow::anyhow;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// Hashes `password` with Argon2id and a random salt; returns the PHC string to store.
///
/// This is deliberately slow (tens of milliseconds); call it from a blocking task in async code.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow!("argon2 hashing failed: {e}"))
}

/// Checks `password` against a stored PHC string. A malformed hash counts as a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A real Argon2id hash of a random password, verified against when the e-mail is unknown.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    use rand::RngExt;
    let mut pw = [0u8; 24];
    rand::rng().fill(&mut pw[..]);
    hash_password(&hex::encode(pw)).unwrap_or_default()
});

/// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None`, so both paths
/// cost one Argon2 run. Runs on the blocking pool.
pub(crate) async fn verify_or_dummy(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_password(&password, &phc),
        None => {
            let _ = verify_password(&password, &DUMMY_HASH);
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mismatch() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
    }
}
