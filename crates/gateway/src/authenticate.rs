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

/// Resolves opaque access tokens (applications whose `tokenType` is `OAUTH`) to their
/// claims by asking the key manager; `None` when the token is not active. The gateway
/// caches the answer until the token expires, and revocations still apply.
pub trait Introspect: Send + Sync + std::fmt::Debug {
    /// The claims of an active opaque token.
    fn introspect<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<AccessClaims>> + Send + 'a>>;
}

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

    fn remember(&self, token: &str, claims: &Arc<AccessClaims>) {
        if let Ok(mut map) = self.verified.lock() {
            if map.len() >= CACHE_CAPACITY {
                let now = now_secs();
                map.retain(|_, c| c.exp > now);
                if map.len() >= CACHE_CAPACITY {
                    map.clear();
                }
            }
            map.insert(token.to_string(), Arc::clone(claims));
        }
    }

    /// The claims of a valid, unexpired, unrevoked token of the wanted kind: a JWT checked
    /// against the published keys, or an opaque token resolved by `introspector`.
    pub async fn verify(
        &self,
        state: &RuntimeState,
        token: &str,
        kind: TokenKind,
        introspector: Option<&dyn Introspect>,
    ) -> Result<Arc<AccessClaims>, GatewayError> {
        let invalid = |why: &str| GatewayError::InvalidCredentials(format!("the token is {why}"));
        let cached = self.verified.lock().ok().and_then(|m| m.get(token).cloned());
        let claims = match cached {
            Some(c) => c,
            None if token.bytes().filter(|b| *b == b'.').count() == 2 => {
                let claims = Arc::new(verify_signature(state, token).map_err(invalid)?);
                self.remember(token, &claims);
                claims
            }
            None => {
                let Some(introspector) = introspector.filter(|_| kind == TokenKind::AccessToken) else {
                    return Err(invalid("invalid"));
                };
                let claims = Arc::new(
                    introspector
                        .introspect(token)
                        .await
                        .ok_or_else(|| invalid("invalid or revoked"))?,
                );
                self.remember(token, &claims);
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
