//! The key manager's secret: one high-entropy value from which the pepper of stored
//! hashes and the key that seals signing keys at rest are derived.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;
use tollgate_sealing::{SealError, SealingKey, derive, load_or_create_secret};

/// Where the generated secret is kept when `[key_manager] secret` is not set.
pub const SECRET_FILE: &str = "key-manager.secret";

/// The pepper and sealing key. Never logged: `Debug` prints nothing of them.
#[derive(Clone)]
pub struct KeyManagerSecret {
    pepper: [u8; 32],
    sealing: SealingKey,
}

impl std::fmt::Debug for KeyManagerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyManagerSecret(..)")
    }
}

const DOMAIN: &str = "tollgate-key-manager";

impl KeyManagerSecret {
    /// Derives both keys from a secret string.
    pub fn from_secret(secret: &str) -> Self {
        Self {
            pepper: derive(DOMAIN, "pepper", secret),
            sealing: SealingKey::new(derive(DOMAIN, "sealing", secret), "[key_manager] secret"),
        }
    }

    /// The configured secret, or the one in `data_dir/key-manager.secret`, created (mode
    /// 0600) with 32 random bytes on first use.
    pub fn load_or_create(data_dir: &Path, configured: Option<&str>) -> Result<Self> {
        let secret = load_or_create_secret(data_dir, SECRET_FILE, configured).map_err(sealing_error)?;
        Ok(Self::from_secret(&secret))
    }

    /// The stored form of a high-entropy secret (client secret, API key, opaque token,
    /// authorization code): hex SHA-256 under the pepper. Fast by design: these values
    /// cannot be guessed, so a slow hash would only slow the token endpoint.
    pub fn hash(&self, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.pepper);
        h.update(value.as_bytes());
        hex::encode(h.finalize())
    }

    /// Whether `value` hashes to `stored`, compared in constant time.
    pub fn matches(&self, value: &str, stored: &str) -> bool {
        self.hash(value).as_bytes().ct_eq(stored.as_bytes()).into()
    }

    /// Encrypts `plain` with AES-256-GCM under a random nonce; base64 of nonce ‖ ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Result<String> {
        self.sealing.seal(plain).map_err(sealing_error)
    }

    /// Decrypts what [`seal`](Self::seal) produced; fails if the secret differs.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>> {
        self.sealing.open(sealed, "signing key").map_err(sealing_error)
    }
}

fn sealing_error(e: SealError) -> Error {
    match e {
        SealError::SecretFile(m) => Error::SecretFile(m),
        SealError::NoRandomness => Error::Crypto("no OS randomness"),
        // Only signing keys are sealed under this secret.
        SealError::WrongSecret { .. } => {
            Error::Crypto("cannot open a sealed signing key: [key_manager] secret differs from the one that sealed it")
        }
    }
}

/// `bytes` random bytes as unpadded base64url: client ids, secrets, codes, opaque tokens.
pub fn random_token(bytes: usize) -> Result<String> {
    tollgate_sealing::random_token(bytes).map_err(sealing_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_peppered_and_compared_exactly() {
        let a = KeyManagerSecret::from_secret("first-secret-value");
        let b = KeyManagerSecret::from_secret("other-secret-value");
        let h = a.hash("client-secret");
        assert_eq!(h.len(), 64);
        assert_ne!(h, b.hash("client-secret"));
        assert!(a.matches("client-secret", &h));
        assert!(!a.matches("client-secreT", &h));
        assert!(!b.matches("client-secret", &h));
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_secret() {
        let a = KeyManagerSecret::from_secret("first-secret-value");
        let sealed = a.seal(b"private key bytes").unwrap();
        assert!(!sealed.contains("private"));
        assert_eq!(a.open(&sealed).unwrap(), b"private key bytes");
        assert!(KeyManagerSecret::from_secret("other").open(&sealed).is_err());
        assert!(a.open("not base64!").is_err());
    }

    #[test]
    fn generated_secret_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = KeyManagerSecret::load_or_create(dir.path(), None).unwrap();
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = KeyManagerSecret::load_or_create(dir.path(), None).unwrap();
        assert_eq!(first.hash("x"), again.hash("x"));
        let configured = KeyManagerSecret::load_or_create(dir.path(), Some("configured-secret-1")).unwrap();
        assert_ne!(first.hash("x"), configured.hash("x"));
    }
}
