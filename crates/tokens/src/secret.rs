//! The key manager's secret: one high-entropy value from which the pepper of stored
//! hashes and the key that seals signing keys at rest are derived.

use crate::{Error, Result};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

/// Where the generated secret is kept when `[key_manager] secret` is not set.
pub const SECRET_FILE: &str = "key-manager.secret";

/// The pepper and sealing key. Never logged: `Debug` prints nothing of them.
#[derive(Clone)]
pub struct KeyManagerSecret {
    pepper: [u8; 32],
    sealing: [u8; 32],
}

impl std::fmt::Debug for KeyManagerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyManagerSecret(..)")
    }
}

fn derive(purpose: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tollgate-key-manager:");
    h.update(purpose.as_bytes());
    h.update(b":");
    h.update(secret.as_bytes());
    h.finalize().into()
}

impl KeyManagerSecret {
    /// Derives both keys from a secret string.
    pub fn from_secret(secret: &str) -> Self {
        Self {
            pepper: derive("pepper", secret),
            sealing: derive("sealing", secret),
        }
    }

    /// The configured secret, or the one in `data_dir/key-manager.secret`, created (mode
    /// 0600) with 32 random bytes on first use.
    pub fn load_or_create(data_dir: &Path, configured: Option<&str>) -> Result<Self> {
        if let Some(s) = configured {
            return Ok(Self::from_secret(s));
        }
        let path = data_dir.join(SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(Self::from_secret(s.trim())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::SecretFile(format!("cannot read {}: {e}", path.display()))),
        }
        let secret = random_token(32)?;
        write_private(&path, &secret)
            .map_err(|e| Error::SecretFile(format!("cannot write {}: {e}", path.display())))?;
        tracing::info!(file = %path.display(), "Generated the key manager secret.");
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

    fn sealing_key(&self) -> Result<LessSafeKey> {
        let key = UnboundKey::new(&AES_256_GCM, &self.sealing).map_err(|_| Error::Crypto("sealing key"))?;
        Ok(LessSafeKey::new(key))
    }

    /// Encrypts `plain` with AES-256-GCM under a random nonce; base64 of nonce ‖ ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::Crypto("no OS randomness"))?;
        let mut buf = plain.to_vec();
        self.sealing_key()?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| Error::Crypto("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what [`seal`](Self::seal) produced; fails if the secret differs.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>> {
        let wrong = || {
            Error::Crypto("cannot open a sealed signing key: [key_manager] secret differs from the one that sealed it")
        };
        let raw = STANDARD.decode(sealed).map_err(|_| wrong())?;
        if raw.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buf = ct.to_vec();
        let plain = self
            .sealing_key()?
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

/// `bytes` random bytes as unpadded base64url: client ids, secrets, codes, opaque tokens.
pub fn random_token(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|_| Error::Crypto("no OS randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")
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
