//! JWT signing keys: generated here (ES256 or RS256), stored in the AM database with the
//! private part sealed, published as a JWKS, rotated on command with an overlap during
//! which the retired key still verifies what it signed.

use crate::secret::KeyManagerSecret;
use crate::{Error, Result};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tollgate_config::SigningAlgorithm;
use tollgate_events::control::SigningKey;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_model::{TenantId, now_millis};
use tollgate_store::oauth::{self, SigningKeyRow};
use tollgate_store::{Database, lock_named};

/// How long a loaded key set is trusted before the database is read again, so that a
/// rotation made by another node is picked up.
const RELOAD_AFTER: Duration = Duration::from_secs(30);

/// The lock that key creation and rotation take, so two nodes never both create a key.
const SIGNING_KEYS_LOCK: &str = "tollgate:signing-keys";

struct PublishedKey {
    kid: String,
    alg: Algorithm,
    jwk: Jwk,
    decoding: DecodingKey,
}

struct ActiveKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
}

struct KeySet {
    active: Option<ActiveKey>,
    published: Vec<PublishedKey>,
    loaded: Instant,
}

/// Signs and verifies tokens with the key manager's keys.
pub struct Signer {
    am: Database,
    secret: Arc<KeyManagerSecret>,
    algorithm: SigningAlgorithm,
    keys: RwLock<Arc<KeySet>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn jwt_alg(alg: SigningAlgorithm) -> Algorithm {
    match alg {
        SigningAlgorithm::ES256 => Algorithm::ES256,
        SigningAlgorithm::RS256 => Algorithm::RS256,
    }
}

fn parse_alg(name: &str) -> Result<Algorithm> {
    match name {
        "ES256" => Ok(Algorithm::ES256),
        "RS256" => Ok(Algorithm::RS256),
        other => Err(Error::Corrupt(format!("signing key algorithm `{other}`"))),
    }
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (which is what
/// jsonwebtoken's RSA signer takes): SEQUENCE { INTEGER, SEQUENCE, OCTET STRING }.
fn pkcs8_inner_key(der: &[u8]) -> Option<&[u8]> {
    fn read(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, body, _) = read(der)? else { return None };
    let (0x02, _, body) = read(body)? else { return None };
    let (0x30, _, body) = read(body)? else { return None };
    let (0x04, key, _) = read(body)? else { return None };
    Some(key)
}

fn generate(alg: SigningAlgorithm) -> Result<(Vec<u8>, EncodingKey)> {
    match alg {
        SigningAlgorithm::ES256 => {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| Error::Crypto("cannot generate an EC key"))?;
            let der = doc.as_ref().to_vec();
            let key = EncodingKey::from_ec_der(&der);
            Ok((der, key))
        }
        SigningAlgorithm::RS256 => {
            use aws_lc_rs::encoding::AsDer;
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| Error::Crypto("cannot generate an RSA key"))?;
            let der = pair
                .as_der()
                .map_err(|_| Error::Crypto("cannot encode an RSA key"))?
                .as_ref()
                .to_vec();
            let key = encoding_key(Algorithm::RS256, &der)?;
            Ok((der, key))
        }
    }
}

fn encoding_key(alg: Algorithm, pkcs8: &[u8]) -> Result<EncodingKey> {
    match alg {
        Algorithm::RS256 => Ok(EncodingKey::from_rsa_der(
            pkcs8_inner_key(pkcs8).ok_or(Error::Crypto("malformed RSA key"))?,
        )),
        _ => Ok(EncodingKey::from_ec_der(pkcs8)),
    }
}

impl Signer {
    /// A signer over the AM database's keys; new keys use `algorithm`.
    pub fn new(am: Database, secret: Arc<KeyManagerSecret>, algorithm: SigningAlgorithm) -> Self {
        Self {
            am,
            secret,
            algorithm,
            keys: RwLock::new(Arc::new(KeySet {
                active: None,
                published: Vec::new(),
                loaded: Instant::now() - RELOAD_AFTER * 2,
            })),
        }
    }

    /// Creates a signing key when there is no active one (first start); safe when several
    /// nodes start at once.
    pub async fn ensure_key(&self) -> Result<()> {
        let mut tx = self.am.begin().await?;
        lock_named(&mut tx, SIGNING_KEYS_LOCK).await?;
        if oauth::active_signing_key_count(&mut tx).await? == 0 {
            let kid = self.insert_new_key(&mut tx).await?;
            tx.commit().await?;
            tracing::info!(kid = %kid, algorithm = ?self.algorithm, "Created the first token signing key.");
        }
        self.reload().await
    }

    /// Retires the active key(s) and makes a new one. Retired keys stay published for
    /// `overlap` (and until the last live API key expires), so what they signed keeps
    /// verifying. Returns the new key id.
    pub async fn rotate(&self, overlap: Duration) -> Result<String> {
        let now = now_millis();
        let mut tx = self.am.begin().await?;
        lock_named(&mut tx, SIGNING_KEYS_LOCK).await?;
        let overlap_ms = i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX / 2);
        // API keys are long-lived JWTs: the retired key stays published until the last
        // live one it may have signed expires.
        let api_keys_until = oauth::latest_api_key_expiry(&mut tx, now).await?.unwrap_or(0);
        let publish_until = now.saturating_add(overlap_ms).max(api_keys_until);
        oauth::retire_signing_keys(&mut tx, now, publish_until).await?;
        let kid = self.insert_new_key(&mut tx).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(kid)
    }

    async fn insert_new_key(&self, tx: &mut tollgate_store::Tx) -> Result<String> {
        let (der, key) = generate(self.algorithm)?;
        let alg = jwt_alg(self.algorithm);
        let mut jwk = Jwk::from_encoding_key(&key, alg).map_err(|_| Error::Crypto("cannot derive the public key"))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| Error::Crypto("cannot compute the key thumbprint"))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let row = SigningKeyRow {
            kid: kid.clone(),
            alg: format!("{alg:?}"),
            public_jwk: serde_json::to_string(&jwk).map_err(|e| Error::Corrupt(e.to_string()))?,
            private_sealed: self.secret.seal(&der)?,
            created_at: now_millis(),
            retired_at: None,
            publish_until: None,
        };
        oauth::insert_signing_key(tx, &row).await?;
        // One issuer signs every tenant's tokens: its keys are the platform's, announced as
        // the super tenant's event (every gateway needs them, whatever tenants it serves).
        tollgate_store::events::append(
            tx,
            &NewEvent::new(
                TenantId::DEFAULT,
                None,
                ControlEvent::SigningKeysChanged(SigningKey {
                    kid: kid.clone(),
                    alg: row.alg.clone(),
                    jwk: serde_json::to_value(&jwk).map_err(|e| Error::Corrupt(e.to_string()))?,
                }),
            ),
        )
        .await?;
        Ok(kid)
    }

    /// Reads the published keys again.
    pub async fn reload(&self) -> Result<()> {
        let rows = oauth::published_signing_keys(&self.am, now_millis()).await?;
        let mut active = None;
        let mut published = Vec::new();
        for row in rows {
            let alg = parse_alg(&row.alg)?;
            let jwk: Jwk = serde_json::from_str(&row.public_jwk).map_err(|e| Error::Corrupt(e.to_string()))?;
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| Error::Corrupt(format!("key {}: {e}", row.kid)))?;
            if active.is_none() && row.retired_at.is_none() {
                // A node with another secret can still verify; it just cannot sign.
                match self.secret.open(&row.private_sealed) {
                    Ok(der) => {
                        active = Some(ActiveKey {
                            kid: row.kid.clone(),
                            alg,
                            encoding: encoding_key(alg, &der)?,
                        });
                    }
                    Err(e) => tracing::warn!(kid = %row.kid, error = %e, "Cannot use the active signing key to sign."),
                }
            }
            published.push(PublishedKey {
                kid: row.kid,
                alg,
                jwk,
                decoding,
            });
        }
        let set = Arc::new(KeySet {
            active,
            published,
            loaded: Instant::now(),
        });
        if let Ok(mut keys) = self.keys.write() {
            *keys = set;
        }
        Ok(())
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.keys.read().ok().map(|k| Arc::clone(&k))
    }

    async fn current(&self) -> Result<Arc<KeySet>> {
        match self.snapshot() {
            Some(set) if set.loaded.elapsed() < RELOAD_AFTER => Ok(set),
            _ => {
                self.reload().await?;
                self.snapshot().ok_or(Error::Crypto("key set lock poisoned"))
            }
        }
    }

    /// Signs `claims` with the active key (its `kid` in the header).
    pub async fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        let set = self.current().await?;
        let key = set.active.as_ref().ok_or(Error::NoSigningKey)?;
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| Error::Signing(e.to_string()))
    }

    /// Every published public key as a JWKS document.
    pub async fn jwks(&self) -> Result<serde_json::Value> {
        let set = self.current().await?;
        let keys: Vec<&Jwk> = set.published.iter().map(|k| &k.jwk).collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Verifies a token's signature with the published key its `kid` names, and its
    /// `iss` and (unless `allow_expired`) `exp`; returns the claims.
    pub async fn verify<T: DeserializeOwned>(&self, token: &str, issuer: &str, allow_expired: bool) -> Result<T> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken("malformed JWT"))?;
        let kid = header.kid.ok_or(Error::InvalidToken("JWT without kid"))?;
        let mut set = self.current().await?;
        if !set.published.iter().any(|k| k.kid == kid) && set.loaded.elapsed() > Duration::from_secs(1) {
            // Possibly a key made by another node since the last load.
            self.reload().await?;
            set = self.snapshot().ok_or(Error::Crypto("key set lock poisoned"))?;
        }
        let key = set
            .published
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(Error::InvalidToken("signed by an unknown key"))?;
        if header.alg != key.alg {
            return Err(Error::InvalidToken("algorithm does not match the key"));
        }
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.validate_exp = !allow_expired;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<T>(token, &key.decoding, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::InvalidToken("expired"),
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => Error::InvalidToken("issued by another issuer"),
            _ => Error::InvalidToken("signature or claims invalid"),
        })?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_is_found_inside_pkcs8() {
        let (der, _) = generate(SigningAlgorithm::RS256).unwrap();
        let inner = pkcs8_inner_key(&der).unwrap();
        assert!(aws_lc_rs::rsa::KeyPair::from_der(inner).is_ok());
        assert!(pkcs8_inner_key(&der[..10]).is_none());
        assert!(pkcs8_inner_key(b"").is_none());
    }
}
