//! The optional backend JWT: when `[gateway] backend_jwt` is on, every authenticated call
//! reaches the backend with an `X-JWT-Assertion` header, a short-lived JWT signed by this
//! gateway that says who called (subscriber, application, its tier, the key type, the
//! subscription's plan). Backends verify it with the gateway's public key, published at
//! `GET /.well-known/gateway-jwks.json` on the gateway listener.

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tollgate_model::token::ApplicationClaim;

/// The header backends read.
pub const HEADER: &str = "x-jwt-assertion";

/// [`HEADER`] as a header name, so that the request path does not parse it per call.
pub(crate) const HEADER_NAME: axum::http::HeaderName = axum::http::HeaderName::from_static(HEADER);

/// Where the gateway publishes its key.
pub const JWKS_PATH: &str = "/.well-known/gateway-jwks.json";

/// How long a backend JWT is valid, seconds: long enough for the backend to check it.
const LIFETIME_SECS: i64 = 60;

/// The gateway's signing key (made at start-up; one per process).
pub struct BackendJwtSigner {
    key: EncodingKey,
    kid: String,
    jwks: serde_json::Value,
}

impl std::fmt::Debug for BackendJwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendJwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The claims of a backend JWT.
#[derive(Debug, Serialize)]
struct BackendClaims<'a> {
    iss: &'static str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    subscriber: &'a str,
    application: &'a ApplicationClaim,
    keytype: &'a str,
    tier: &'a str,
    api: &'a str,
    version: &'a str,
}

impl BackendJwtSigner {
    /// A fresh ES256 key.
    pub fn generate() -> Result<Self, String> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "cannot generate the backend JWT key".to_string())?;
        let key = EncodingKey::from_ec_der(doc.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).map_err(|e| e.to_string())?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| e.to_string())?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            key,
            kid,
            jwks: serde_json::json!({ "keys": [jwk] }),
        })
    }

    /// The published key set.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// A backend JWT for one call.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &self,
        subscriber: &str,
        application: &ApplicationClaim,
        keytype: &str,
        tier: &str,
        api: &str,
        version: &str,
    ) -> Option<String> {
        let now = tollgate_model::now_millis() / 1000;
        let claims = BackendClaims {
            iss: "tollgate-gateway",
            sub: subscriber,
            iat: now,
            exp: now + LIFETIME_SECS,
            subscriber,
            application,
            keytype,
            tier,
            api,
            version,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.key).ok()
    }
}
