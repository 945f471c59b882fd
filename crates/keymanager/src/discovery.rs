//! `GET /oauth2/jwks` and the OIDC discovery document.

use crate::types::ProviderMetadata;
use crate::{GRANT_TYPES, KeyManagerState};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use tollgate_http::ApiError;

/// Every published signing key (active and retired-within-overlap).
pub async fn jwks(State(state): State<KeyManagerState>) -> Result<Response, ApiError> {
    let jwks = state.tokens.signer().jwks().await?;
    let mut res = axum::Json(jwks).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    Ok(res)
}

/// The server's base URL: the issuer without its `/oauth2/token` suffix.
pub fn base_url(issuer: &str) -> &str {
    issuer.strip_suffix("/oauth2/token").unwrap_or(issuer)
}

/// OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414).
pub async fn openid_configuration(State(state): State<KeyManagerState>) -> impl IntoResponse {
    let issuer = state.tokens.issuer();
    let base = base_url(issuer);
    axum::Json(ProviderMetadata {
        issuer: issuer.to_string(),
        authorization_endpoint: format!("{base}/oauth2/authorize"),
        token_endpoint: format!("{base}/oauth2/token"),
        jwks_uri: format!("{base}/oauth2/jwks"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        revocation_endpoint: format!("{base}/oauth2/revoke"),
        userinfo_endpoint: format!("{base}/oauth2/userinfo"),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: GRANT_TYPES.to_vec(),
        subject_types_supported: vec!["public"],
        token_endpoint_auth_methods_supported: vec!["client_secret_basic", "client_secret_post", "none"],
        introspection_endpoint_auth_methods_supported: vec!["client_secret_basic", "client_secret_post"],
        revocation_endpoint_auth_methods_supported: vec!["client_secret_basic", "client_secret_post"],
        code_challenge_methods_supported: vec!["S256"],
        id_token_signing_alg_values_supported: vec!["ES256", "RS256"],
        scopes_supported: tollgate_tokens::scopes::OPEN_SCOPES
            .iter()
            .copied()
            .chain(tollgate_tokens::scopes::REST_SCOPES.iter().map(|(s, _)| *s))
            .collect(),
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "scope",
            "client_id",
            "application",
            "keytype",
            "token_type",
        ],
    })
}
