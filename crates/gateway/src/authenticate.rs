//! Who is calling: access tokens (JWT, verified offline against the key manager's
//! published keys in the runtime state) and API keys. Verified tokens are remembered
//! until they expire, so a repeat caller pays one map lookup instead of a signature
//! check; revocations are checked on every call, against the current state.

use crate::error::GatewayError;
use crate::runtime::RuntimeState;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tollgate_model::token::{AccessClaims, TokenKind};

/// Most verified tokens remembered; beyond it the cache starts over.
const CACHE_CAPACITY: usize = 50_000;

/// Verifies tokens and remembers the ones that passed.
#[derive(Debug, Default)]
pub struct TokenVerifier {
    verified: Mutex<HashMap<String, Arc<AccessClaims>>>,
}

fn now_secs() -> i64 {
    tollgate_model::now_millis() / 1000
}

impl TokenVerifier {
    /// An empty verifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// The claims of a valid, unexpired, unrevoked token of the wanted kind.
    pub fn verify(
        &self,
        state: &RuntimeState,
        token: &str,
        kind: TokenKind,
    ) -> Result<Arc<AccessClaims>, GatewayError> {
        let invalid = |why: &str| GatewayError::InvalidCredentials(format!("the token is {why}"));
        let cached = self.verified.lock().ok().and_then(|m| m.get(token).cloned());
        let claims = match cached {
            Some(c) => c,
            None => {
                let claims = Arc::new(verify_signature(state, token).map_err(invalid)?);
                if let Ok(mut map) = self.verified.lock() {
                    if map.len() >= CACHE_CAPACITY {
                        let now = now_secs();
                        map.retain(|_, c| c.exp > now);
                        if map.len() >= CACHE_CAPACITY {
                            map.clear();
                        }
                    }
                    map.insert(token.to_string(), Arc::clone(&claims));
                }
                claims
            }
        };
        if claims.exp <= now_secs() {
            return Err(invalid("expired"));
        }
        if claims.token_type != kind {
            return Err(invalid(match kind {
                TokenKind::AccessToken => "an API key, not an access token",
                TokenKind::ApiKey => "an access token, not an API key",
            }));
        }
        if state.is_revoked(&claims.jti, &claims.client_id, claims.issued_at_millis()) {
            return Err(invalid("revoked"));
        }
        Ok(claims)
    }
}

fn verify_signature(state: &RuntimeState, token: &str) -> Result<AccessClaims, &'static str> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed")?;
    let kid = header.kid.ok_or("not signed by a known key")?;
    let jwk: Jwk = state
        .signing_key(&kid)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .ok_or("not signed by a known key")?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "not signed by a known key")?;
    if !matches!(
        header.alg,
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::RS256
    ) {
        return Err("signed with an unsupported algorithm");
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired",
            _ => "invalid",
        })
}
