//! Staff password hashing with Argon2id (default parameters, PHC strings).
//!
//! The `*_with` functions run Argon2 in a caller-owned memory buffer (the password-check pool's
//! threads reuse one each, see `hasher.rs`); [`hash_password`] and [`verify_password`] allocate
//! their own and are for tools and tests, not for request paths.
//!
//! Invariant: a login for an unknown e-mail still runs one Argon2 verification (against a dummy
//! hash), so timing does not reveal which e-mails have accounts.

use std::sync::OnceLock;

use anyhow::anyhow;
use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;

/// Largest Argon2 buffer a hashing thread keeps between runs (the default parameters' 19 MiB);
/// a stored hash with a larger memory cost gets a buffer of its own for that run.
const KEPT_BLOCKS: usize = Params::DEFAULT_M_COST as usize;

/// Shortest password a staff member may set, in characters (NIST SP 800-63B asks for at least 8;
/// a phrase of 10 is easy to type and remember).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted anywhere, in bytes (Argon2's cost grows with the input).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The rules a new password must meet (set-password links, password change): at least
/// [`MIN_PASSWORD_CHARS`] characters that are not all white space, at most [`MAX_PASSWORD_BYTES`]
/// bytes. `Err` holds the reason, for the person typing it.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is too long (at most {MAX_PASSWORD_BYTES} bytes)"
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS || password.trim().is_empty() {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    Ok(())
}

/// Hashes `password` with Argon2id and a random salt; returns the PHC string to store.
///
/// This is deliberately slow (tens of milliseconds) and allocates 19 MiB; request paths go through
/// the clinic's password-check pool instead.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    hash_password_with(password, &mut Vec::new())
}

/// Checks `password` against a stored PHC string. A malformed hash counts as a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_with(password, phc, &mut Vec::new())
}

/// [`hash_password`] in `memory` (grown to the needed size, kept for the next run).
pub(crate) fn hash_password_with(
    password: &str,
    memory: &mut Vec<Block>,
) -> anyhow::Result<String> {
    let params = Params::DEFAULT;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = {
        use rand::RngExt;
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes[..]);
        Salt::new(&bytes).map_err(|e| anyhow!("argon2 salt: {e}"))?
    };
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_blocks(memory, params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
    })
    .map_err(|e| anyhow!("argon2 hashing failed: {e}"))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow!("argon2 params: {e}"))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| anyhow!("argon2 output: {e}"))?),
    };
    Ok(hash.to_string())
}

/// [`verify_password`] in `memory`.
pub(crate) fn verify_password_with(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt.as_ref(), hash.hash.as_ref()) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let hashed = with_blocks(memory, blocks, |memory| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
    });
    hashed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

/// Runs `f` with at least `count` Argon2 blocks: from `memory` (grown up to [`KEPT_BLOCKS`]), or
/// from a buffer of its own for larger counts.
fn with_blocks<T>(memory: &mut Vec<Block>, count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    if count > KEPT_BLOCKS {
        return f(&mut vec![Block::default(); count]);
    }
    if memory.len() < count {
        memory.resize(count, Block::default());
    }
    f(&mut memory[..count])
}

/// A real Argon2id hash of a random password, verified against when the e-mail is unknown.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

/// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None`, so both paths
/// cost one Argon2 run (plus, once per process, the dummy hash itself).
pub(crate) fn verify_or_dummy_with(
    password: &str,
    phc: Option<&str>,
    memory: &mut Vec<Block>,
) -> bool {
    match phc {
        Some(phc) => verify_password_with(password, phc, memory),
        None => {
            let dummy = DUMMY_HASH.get_or_init(|| {
                use rand::RngExt;
                let mut pw = [0u8; 24];
                rand::rng().fill(&mut pw[..]);
                hash_password_with(&hex::encode(pw), memory).unwrap_or_default()
            });
            let _ = verify_password_with(password, dummy, memory);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    #[test]
    fn round_trip_and_mismatch() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn reused_memory_verifies_hashes_made_by_the_argon2_crate() {
        let mut memory = Vec::new();
        // A hash made the crate's own way (as stored by earlier versions), with other parameters.
        let small = Params::new(1024, 1, 1, None).expect("params");
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, small)
            .hash_password(b"pw")
            .expect("hash")
            .to_string();
        let ours = hash_password_with("pw", &mut memory).expect("hash");
        for _ in 0..2 {
            assert!(verify_password_with("pw", &theirs, &mut memory));
            assert!(!verify_password_with("pW", &theirs, &mut memory));
            assert!(verify_password_with("pw", &ours, &mut memory));
            assert!(!verify_password_with("pw ", &ours, &mut memory));
        }
        assert!(
            Argon2::default()
                .verify_password(b"pw", &PasswordHash::new(&ours).expect("phc"))
                .is_ok()
        );
        assert_eq!(memory.len(), KEPT_BLOCKS);
        assert!(!verify_or_dummy_with("pw", None, &mut memory));
    }
}
