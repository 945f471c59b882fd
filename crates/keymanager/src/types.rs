//! The key manager's JSON bodies that are not token responses: OpenID Provider metadata,
//! the introspection answer for a token that is not active, userinfo, and the empty
//! revocation answer. Typed so that each field is written once and optional claims are
//! left out rather than sent as `null`.

use serde::Serialize;

/// OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2).
#[derive(Debug, Clone, Serialize)]
pub struct ProviderMetadata {
    /// The `iss` of the tokens issued here.
    pub issuer: String,
    /// Authorization code flow.
    pub authorization_endpoint: String,
    /// Every grant.
    pub token_endpoint: String,
    /// The public keys that verify signed tokens.
    pub jwks_uri: String,
    /// RFC 7662.
    pub introspection_endpoint: String,
    /// RFC 7009.
    pub revocation_endpoint: String,
    /// OIDC userinfo.
    pub userinfo_endpoint: String,
    /// `code` only.
    pub response_types_supported: Vec<&'static str>,
    /// `query` only.
    pub response_modes_supported: Vec<&'static str>,
    /// The grants the token endpoint takes.
    pub grant_types_supported: Vec<&'static str>,
    /// `public` only.
    pub subject_types_supported: Vec<&'static str>,
    /// How clients authenticate at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// How clients authenticate at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// How clients authenticate at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// PKCE.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// ID token signatures.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    /// Scopes a client may ask for.
    pub scopes_supported: Vec<&'static str>,
    /// Claims the tokens carry.
    pub claims_supported: Vec<&'static str>,
}

/// The introspection answer for a token that is unknown, expired, revoked or another
/// client's (RFC 7662 §2.2: nothing else is said about it).
#[derive(Debug, Clone, Serialize)]
pub struct InactiveToken {
    /// Always false.
    pub active: bool,
}

/// The claims about a token's user (OIDC Core §5.3).
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    /// The user's id.
    pub sub: String,
    /// The user's name.
    pub preferred_username: String,
    /// With the `email` scope, when the user has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The answer of a successful revocation (RFC 7009 §2.2: the body is not used).
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {}
