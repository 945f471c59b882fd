//! User passwords: argon2id in PHC form. Hashing costs tens of milliseconds by design,
//! so it runs on the blocking pool, never on a request-handling thread.

use crate::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes `password` with argon2id and a random salt.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::Corrupt(format!("cannot hash password: {e}")))
    })
    .await
    .map_err(|e| Error::Corrupt(format!("password hashing task failed: {e}")))?
}

/// Whether `password` matches the stored PHC `hash` (the comparison is constant-time).
pub async fn verify(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .map_err(|e| Error::Corrupt(format!("password verification task failed: {e}")))
}

/// A valid argon2id hash of a random password. Verifying against it when a user does
/// not exist costs the same time as a real check, so response times do not reveal
/// which usernames exist.
pub(crate) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$dG9sbGdhdGVkdW1teXNhbHQ$Zm5iEujHnVSvnUhs6WVWwTxwDuOtKrpgsplDi7S/Q5s";

/// Generates a random password of `len` characters from an unambiguous alphabet.
pub fn generate(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| Error::Corrupt(format!("no randomness available: {e}")))?;
    // 256 % 57 leaves a small bias; rejection sampling removes it.
    let limit = 256 - (256 % ALPHABET.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 1];
    for b in bytes {
        let mut b = usize::from(b);
        while b >= limit {
            getrandom::fill(&mut buf).map_err(|e| Error::Corrupt(format!("no randomness available: {e}")))?;
            b = usize::from(buf[0]);
        }
        out.push(char::from(ALPHABET[b % ALPHABET.len()]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!verify("wrong horse".into(), h).await.unwrap());
    }

    #[tokio::test]
    async fn dummy_hash_is_a_valid_hash_that_matches_nothing_guessable() {
        assert!(argon2::password_hash::phc::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify("admin".into(), DUMMY_HASH.into()).await.unwrap());
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate(24).unwrap();
        let b = generate(24).unwrap();
        assert_eq!(a.chars().count(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
