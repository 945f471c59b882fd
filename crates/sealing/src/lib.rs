//! Secrets Tollgate must be able to read back (signing keys, a tenant directory's bind
//! password) are kept sealed at rest: AES-256-GCM under a key derived from one
//! high-entropy secret, given in configuration or generated once into a private file
//! (decision 021). Every node of one deployment that reads a sealed value needs the same
//! secret.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The value was sealed under another secret, or is not a sealed value at all.
    #[error("cannot open a sealed {what}: the secret that sealed it differs ({setting})")]
    WrongSecret {
        /// What was sealed (`signing key`, `bind password`).
        what: &'static str,
        /// The setting that holds the secret, to say what to fix.
        setting: &'static str,
    },
    /// The operating system gave no randomness.
    #[error("no OS randomness")]
    NoRandomness,
    /// The secret's file cannot be read or written.
    #[error("{0}")]
    SecretFile(String),
}

/// A key that seals and opens values for one purpose. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct SealingKey {
    key: [u8; 32],
    setting: &'static str,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// 32 bytes for `purpose` derived from `secret` under `domain` (`tollgate-key-manager`):
/// one secret gives independent keys for independent uses.
pub fn derive(domain: &str, purpose: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update(b":");
    h.update(purpose.as_bytes());
    h.update(b":");
    h.update(secret.as_bytes());
    h.finalize().into()
}

impl SealingKey {
    /// The key of these bytes; `setting` names where its secret is configured, for the
    /// error that says a value was sealed under another one.
    pub fn new(key: [u8; 32], setting: &'static str) -> Self {
        Self { key, setting }
    }

    fn aead(&self) -> LessSafeKey {
        // A 32-byte key is always a valid AES-256 key.
        let key = UnboundKey::new(&AES_256_GCM, &self.key).unwrap_or_else(|_| unreachable!("32-byte AES-256 key"));
        LessSafeKey::new(key)
    }

    /// Encrypts `plain` under a random nonce: base64 of nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plain: &[u8]) -> Result<String, SealError> {
        self.seal_for(plain, b"")
    }

    /// [`Self::seal`], bound to `context` (whose value it is: a tenant and a store), so
    /// that a sealed value copied to another row does not open there.
    pub fn seal_for(&self, plain: &[u8], context: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError::NoRandomness)?;
        let mut buf = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut buf)
            .map_err(|_| SealError::NoRandomness)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what [`seal`](Self::seal) produced; fails if the key differs or the
    /// value was altered. `what` names the value in the error.
    pub fn open(&self, sealed: &str, what: &'static str) -> Result<Vec<u8>, SealError> {
        self.open_for(sealed, b"", what)
    }

    /// Decrypts what [`seal_for`](Self::seal_for) sealed for the same `context`.
    pub fn open_for(&self, sealed: &str, context: &[u8], what: &'static str) -> Result<Vec<u8>, SealError> {
        let wrong = || SealError::WrongSecret {
            what,
            setting: self.setting,
        };
        let raw = STANDARD.decode(sealed).map_err(|_| wrong())?;
        if raw.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buf = ct.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

/// The configured secret, or the one in `data_dir/file`, created (mode 0600) with 32
/// random bytes on first use.
pub fn load_or_create_secret(data_dir: &Path, file: &str, configured: Option<&str>) -> Result<String, SealError> {
    if let Some(s) = configured {
        return Ok(s.to_string());
    }
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SealError::SecretFile(format!("cannot read {}: {e}", path.display()))),
    }
    let secret = random_token(32)?;
    write_private(&path, &secret)
        .map_err(|e| SealError::SecretFile(format!("cannot write {}: {e}", path.display())))?;
    tracing::info!(file = %path.display(), "Generated a secret.");
    Ok(secret)
}

/// `bytes` random bytes as unpadded base64url.
pub fn random_token(bytes: usize) -> Result<String, SealError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|_| SealError::NoRandomness)?;
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

    fn key(secret: &str) -> SealingKey {
        SealingKey::new(derive("test", "sealing", secret), "[node] secrets_key")
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_unaltered() {
        let a = key("first-secret-value");
        let sealed = a.seal(b"bind password").unwrap();
        assert!(!sealed.contains("bind"));
        assert_ne!(sealed, a.seal(b"bind password").unwrap(), "a fresh nonce each time");
        assert_eq!(a.open(&sealed, "bind password").unwrap(), b"bind password");
        let err = key("other").open(&sealed, "bind password").unwrap_err();
        assert!(err.to_string().contains("[node] secrets_key"), "{err}");
        assert!(a.open("not base64!", "x").is_err());
        assert!(a.open("AAAA", "x").is_err());
        let mut raw = STANDARD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(
            a.open(&STANDARD.encode(raw), "x").is_err(),
            "an altered value is refused"
        );
    }

    #[test]
    fn a_value_sealed_for_one_context_does_not_open_in_another() {
        let a = key("first-secret-value");
        let sealed = a.seal_for(b"pw", b"tenant-1\0CORP").unwrap();
        assert_eq!(a.open_for(&sealed, b"tenant-1\0CORP", "x").unwrap(), b"pw");
        assert!(a.open_for(&sealed, b"tenant-2\0CORP", "x").is_err());
        assert!(a.open(&sealed, "x").is_err());
    }

    #[test]
    fn purposes_derive_independent_keys() {
        assert_ne!(derive("d", "a", "s"), derive("d", "b", "s"));
        assert_ne!(derive("d", "a", "s"), derive("e", "a", "s"));
    }

    #[test]
    fn a_generated_secret_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(dir.path(), "x.secret", None).unwrap();
        let mode = std::fs::metadata(dir.path().join("x.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_secret(dir.path(), "x.secret", None).unwrap(), first);
        assert_eq!(
            load_or_create_secret(dir.path(), "x.secret", Some("configured")).unwrap(),
            "configured"
        );
    }
}
