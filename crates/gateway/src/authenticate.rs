//! Who is calling: access tokens (JWT, verified offline against the key manager's
//! published keys in the runtime state) and API keys. Verified tokens are remembered
//! until they expire, so a repeat caller pays one map lookup instead of a signature
//! check; revocations are checked on every call, against the current state.

use crate::error::GatewayError;
use crate::runtime::RuntimeState;
use foldhash::HashMap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use std::sync::{Arc, Mutex};
use tollgate_model::TenantId;
use tollgate_model::token::{AccessClaims, TokenKind};

/// Most verified tokens remembered; beyond it the cache starts over.
const CACHE_CAPACITY: usize = 50_000;

/// How many tokens the cache grows by between passes that drop the expired ones.
const PRUNE_EVERY: usize = 1_024;

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
    /// Verified tokens by [`Self::cache_key`], each with the whole token, which a hit must
    /// equal: two tokens with one key share a slot, the later one replacing the other.
    verified: Mutex<HashMap<u64, Verified>>,
    hasher: foldhash::fast::RandomState,
}

/// A verified token and its claims.
type Verified = (Box<str>, Arc<AccessClaims>);

/// How many of a token's last bytes its cache key is taken from: a JWT ends in its
/// signature, which no two tokens share, so hashing the whole (often 1 KB) token on
/// every call would buy nothing.
const KEY_BYTES: usize = 32;

fn now_secs() -> i64 {
    tollgate_model::now_millis() / 1000
}

impl TokenVerifier {
    /// An empty verifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cache slot of `token`, hashed from its last [`KEY_BYTES`] bytes.
    fn cache_key(&self, token: &[u8]) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, &token[token.len().saturating_sub(KEY_BYTES)..])
    }

    /// The remembered claims of `token`, if it was verified before.
    fn cached(&self, token: &[u8]) -> Option<Arc<AccessClaims>> {
        let key = self.cache_key(token);
        let map = self.verified.lock().ok()?;
        map.get(&key)
            .filter(|(remembered, _)| remembered.as_bytes() == token)
            .map(|(_, claims)| Arc::clone(claims))
    }

    fn remember(&self, token: &str, claims: &Arc<AccessClaims>) {
        let key = self.cache_key(token.as_bytes());
        if let Ok(mut map) = self.verified.lock() {
            // Expired tokens are dropped every PRUNE_EVERY new ones (amortised: one pass per
            // that many verifications), so the cache holds what is live, not what once was.
            if map.len() >= CACHE_CAPACITY || (!map.is_empty() && map.len().is_multiple_of(PRUNE_EVERY)) {
                let now = now_secs();
                map.retain(|_, (_, c)| c.exp > now);
                if map.len() >= CACHE_CAPACITY {
                    map.clear();
                }
            }
            map.insert(key, (token.into(), Arc::clone(claims)));
        }
    }

    /// The claims of a valid, unexpired, unrevoked token of the wanted kind: a JWT checked
    /// against the published keys, or an opaque token resolved by `introspector`. The
    /// token comes as the bytes it was sent as: one verified before is found without
    /// checking that they are text again. `now_millis` is the call's time.
    pub async fn verify(
        &self,
        state: &RuntimeState,
        token: &[u8],
        kind: TokenKind,
        introspector: Option<&dyn Introspect>,
        now_millis: i64,
    ) -> Result<Arc<AccessClaims>, GatewayError> {
        let invalid = |why: &str| GatewayError::InvalidCredentials(format!("the token is {why}"));
        let claims = match self.cached(token) {
            Some(c) => c,
            None => {
                let token = std::str::from_utf8(token).map_err(|_| invalid("not text"))?;
                let claims = if token.bytes().filter(|b| *b == b'.').count() == 2 {
                    verify_signature(state, token).map_err(invalid)?
                } else {
                    let Some(introspector) = introspector.filter(|_| kind == TokenKind::AccessToken) else {
                        return Err(invalid("invalid"));
                    };
                    introspector
                        .introspect(token)
                        .await
                        .ok_or_else(|| invalid("invalid or revoked"))?
                };
                let claims = Arc::new(claims);
                self.remember(token, &claims);
                claims
            }
        };
        if claims.exp <= now_millis / 1000 {
            return Err(invalid("expired"));
        }
        if claims.token_type != kind {
            return Err(invalid(match kind {
                TokenKind::AccessToken => "an API key, not an access token",
                TokenKind::ApiKey => "an access token, not an API key",
            }));
        }
        if state.is_revoked(&claims.jti, &claims.client_id, &claims.sub, || {
            claims.issued_at_millis()
        }) {
            return Err(invalid("revoked"));
        }
        Ok(claims)
    }
}

fn verify_signature(state: &RuntimeState, token: &str) -> Result<AccessClaims, &'static str> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed")?;
    let kid = header.kid.clone().ok_or("not signed by a known key")?;
    let Some(jwk) = state.signing_key(&kid) else {
        return verify_external(state, token, header.alg, &kid);
    };
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|_| "not signed by a known key")?;
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

/// A token of a registered third-party key manager: found by its `iss`, verified with that
/// provider's JWKS from the runtime state, its client id and scopes read from the claims
/// the key manager names, and its application from the client's key mapping. Several
/// tenants may register the same provider (one issuer, each under its own name): each is
/// tried, and the one that mapped the token's client wins.
fn verify_external(
    state: &RuntimeState,
    token: &str,
    alg: jsonwebtoken::Algorithm,
    kid: &str,
) -> Result<AccessClaims, &'static str> {
    use base64::Engine as _;
    let unknown = "not signed by a known key";
    let payload = token.split('.').nth(1).ok_or("malformed")?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| "malformed")?;
    let unverified: serde_json::Value = serde_json::from_slice(&payload).map_err(|_| "malformed")?;
    let iss = unverified.get("iss").and_then(|v| v.as_str()).ok_or(unknown)?;
    let mut outcome = Err(unknown);
    for (tenant, km) in state.key_managers_by_issuer(iss) {
        outcome = verify_with(state, token, alg, kid, iss, tenant, km);
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

/// [`verify_external`] with one registered key manager `km` of the token's issuer,
/// registered by `tenant`: only that tenant's mapping of the client counts.
fn verify_with(
    state: &RuntimeState,
    token: &str,
    alg: jsonwebtoken::Algorithm,
    kid: &str,
    iss: &str,
    tenant: TenantId,
    km: &serde_json::Value,
) -> Result<AccessClaims, &'static str> {
    let unknown = "not signed by a known key";
    if km.get("enabled").and_then(|v| v.as_bool()) == Some(false) {
        return Err("issued by a disabled key manager");
    }
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(km.get("jwks").cloned().ok_or(unknown)?).map_err(|_| unknown)?;
    let jwk = jwks.find(kid).ok_or(unknown)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| unknown)?;
    if !matches!(alg, jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::RS256) {
        return Err("signed with an unsupported algorithm");
    }
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_issuer(&[iss]);
    validation.set_required_spec_claims(&["exp"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired",
            _ => "invalid",
        })?;
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(String::from);
    let claim_name = |field: &str, default: &str| km.get(field).and_then(|v| v.as_str()).unwrap_or(default).to_string();
    let client_id = text(&claim_name("consumerKeyClaim", "azp"))
        .or_else(|| text("client_id"))
        .ok_or("without a client id claim")?;
    let scope = match claims.get(claim_name("scopesClaim", "scope")) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    };
    let km_name = km.get("name").and_then(|v| v.as_str()).unwrap_or_default();
    let mapping = state
        .key_mapping(tenant, km_name, &client_id)
        .ok_or("issued to a client no application has mapped")?;
    let app = state
        .application(&mapping.application_id)
        .ok_or("issued to an unknown application")?;
    // NumericDate may carry a fraction (RFC 7519 §2).
    let number = |name: &str| {
        claims
            .get(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
            .unwrap_or(0)
    };
    Ok(AccessClaims {
        iss: iss.to_string(),
        sub: text("sub").unwrap_or_else(|| client_id.clone()),
        aud: client_id.clone(),
        exp: number("exp"),
        iat: number("iat"),
        nbf: number("nbf"),
        jti: text("jti").unwrap_or_default(),
        scope,
        client_id,
        application: tollgate_model::token::ApplicationClaim {
            id: app.id.clone(),
            name: app.name.clone(),
            tier: app.tier.clone(),
            owner: app.owner.clone(),
        },
        keytype: mapping
            .key_type
            .parse()
            .map_err(|_| "mapped with an unknown key type")?,
        token_type: TokenKind::AccessToken,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_model::token::{ApplicationClaim, KeyType};

    fn claims(sub: &str) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "tollgate".into(),
            sub: sub.into(),
            aud: "ck".into(),
            exp: now_secs() + 60,
            iat: now_secs(),
            nbf: now_secs(),
            jti: "j".into(),
            scope: String::new(),
            client_id: "ck".into(),
            application: ApplicationClaim {
                id: "app".into(),
                name: "App".into(),
                tier: "Unlimited".into(),
                owner: sub.into(),
            },
            keytype: KeyType::Production,
            token_type: TokenKind::AccessToken,
        })
    }

    #[test]
    fn a_token_sharing_another_tokens_cache_key_is_not_taken_for_it() {
        let verifier = TokenVerifier::new();
        let tail = "s".repeat(KEY_BYTES);
        let (alice, mallory) = (format!("a.b.{tail}"), format!("m.b.{tail}"));
        assert_eq!(
            verifier.cache_key(alice.as_bytes()),
            verifier.cache_key(mallory.as_bytes())
        );
        verifier.remember(&alice, &claims("alice"));
        assert_eq!(
            verifier.cached(alice.as_bytes()).map(|c| c.sub.clone()).as_deref(),
            Some("alice")
        );
        assert!(
            verifier.cached(mallory.as_bytes()).is_none(),
            "same key, different token: a miss"
        );
        verifier.remember(&mallory, &claims("mallory"));
        assert!(
            verifier.cached(alice.as_bytes()).is_none(),
            "the slot now holds the other token"
        );
        assert!(verifier.cached(b"short").is_none());
    }

    #[test]
    fn expired_tokens_leave_the_cache_as_new_ones_come() {
        let verifier = TokenVerifier::new();
        let mut expired = (*claims("old")).clone();
        expired.exp = now_secs() - 1;
        let expired = Arc::new(expired);
        for i in 0..3 * PRUNE_EVERY {
            verifier.remember(&format!("old.{i:040}"), &expired);
        }
        let live = claims("new");
        verifier.remember("new.token.0000000000000000000000000000000000", &live);
        let held = verifier.verified.lock().unwrap().len();
        assert!(held < PRUNE_EVERY, "{held} tokens held, most of them expired");
        assert!(
            verifier
                .cached(b"new.token.0000000000000000000000000000000000")
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_credential_that_is_not_text_is_refused_and_not_remembered() {
        let verifier = TokenVerifier::new();
        let state = RuntimeState::default();
        let now = tollgate_model::now_millis();
        let sent = b"a.b.\xff\xfe";
        let err = verifier
            .verify(&state, sent, TokenKind::AccessToken, None, now)
            .await
            .expect_err("bytes that are not UTF-8 are no token");
        assert!(
            matches!(&err, GatewayError::InvalidCredentials(m) if m.contains("not text")),
            "{err:?}"
        );
        assert!(verifier.cached(sent).is_none());
    }

    #[test]
    fn tenants_registering_the_same_provider_each_get_their_own_clients() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        use base64::Engine as _;
        use serde_json::json;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = key.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "idp1",
            "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65])}]});
        let issuer = "https://idp.example";
        // One provider registered by two tenants under their own names; the first tried
        // (by id) is acme's.
        let section = |id: &str, domain: &str, km: &str, client: &str, app: &str| {
            json!({"tenantId": id, "domain": domain, "active": true,
                "applications": [{"id": app, "name": app, "owner": "o", "tier": "Unlimited", "tokenType": "JWT", "status": "APPROVED"}],
                "keyMappings": [{"consumerKey": client, "applicationId": app, "keyType": "PRODUCTION", "keyManager": km}],
                "keyManagers": [{"id": format!("km-{domain}"), "name": km, "issuer": issuer, "enabled": true, "jwks": jwks}]})
        };
        let snapshot = json!({"seq": 1, "environment": "Default", "apis": [], "applications": [], "subscriptions": [],
        "keyMappings": [], "revocations": [], "signingKeys": [], "keyManagers": [], "tenants": [
            section("00000000-0000-7000-8000-0000000000aa", "acme.com", "Okta A", "client-a", "acme-app"),
            section("00000000-0000-7000-8000-0000000000bb", "beta.org", "Okta B", "client-b", "beta-app"),
        ]});
        let state = RuntimeState::from_snapshot(serde_json::from_value(snapshot).unwrap());
        let token = |client: &str| {
            let header = b64.encode(json!({"alg": "ES256", "kid": "idp1", "typ": "JWT"}).to_string());
            let claims =
                b64.encode(json!({"iss": issuer, "azp": client, "sub": "someone", "exp": now_secs() + 60}).to_string());
            let signed = format!("{header}.{claims}");
            let signature = key.sign(&rng, signed.as_bytes()).unwrap();
            format!("{signed}.{}", b64.encode(signature.as_ref()))
        };
        for (client, app) in [("client-a", "acme-app"), ("client-b", "beta-app")] {
            let claims = verify_signature(&state, &token(client)).unwrap_or_else(|e| panic!("{client}: {e}"));
            assert_eq!(claims.application.id, app);
            assert!(state.application_tenant(&claims.application.id).is_some());
        }
        assert_eq!(
            verify_signature(&state, &token("client-unmapped")).unwrap_err(),
            "issued to a client no application has mapped"
        );
    }
}
