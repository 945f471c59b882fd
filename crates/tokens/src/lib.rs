//! Tokens: what the key manager issues and everything else verifies. Signing keys and
//! JWKS ([`signing`]), access-token and API-key claims ([`claims`]), the peppered hashes
//! secrets are stored as ([`secret`]), and issuing, introspecting and revoking tokens
//! ([`service`]).
//!
//! A library, not a component: the key manager, the Developer Portal (generate-token,
//! API keys) and the REST edge (bearer authentication) all use it. Depends on `store`,
//! `events` and `model`.

/// Token claims (defined in the model, shared with gateways).
pub use tollgate_model::token as claims;
pub mod cli_client;
pub mod portals_client;
pub mod scopes;
pub mod secret;
pub mod service;
pub mod signing;

pub use claims::{AccessClaims, ApplicationClaim, KeyType, TokenKind};
pub use secret::{KeyManagerSecret, random_token};
pub use service::{
    ActiveToken, ClientAuth, IssueRequest, IssuedTokens, MAX_TOKEN_VALIDITY, OAuthError, RefreshGrant, TokenService,
    TokenSettings, revoke_user_tokens,
};
pub use signing::Signer;

pub use tollgate_model::key_manager::RESIDENT_KEY_MANAGER;

/// Why a token operation failed (as opposed to an OAuth2 error a client caused).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] tollgate_store::Error),
    /// A cryptographic primitive failed.
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
    /// Signing a token failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// Stored key material could not be decoded.
    #[error("stored key data is invalid: {0}")]
    Corrupt(String),
    /// No key can sign yet.
    #[error("no active signing key; a key-manager node creates one when it starts")]
    NoSigningKey,
    /// The secret file could not be read or written.
    #[error("{0}")]
    SecretFile(String),
    /// A token failed verification.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// A token's subject is a user of another tenant than its client's application (a
    /// caller passed a bare name for a tenant's user, or the wrong client).
    #[error("{0}")]
    WrongTenant(String),
    /// The tenant (by domain) is deactivated: its users and applications get no tokens.
    #[error(
        "the tenant `{0}` is deactivated; its users and applications get no tokens until a super-tenant administrator activates it"
    )]
    TenantInactive(String),
    /// The AM database does not know the tenant (it was never provisioned there).
    #[error("the tenant `{0}` is not provisioned in the AM database")]
    UnknownTenant(String),
}

/// Shorthand for token results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for tollgate_model::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => s.into(),
            Error::InvalidToken(why) => tollgate_model::Error::InvalidCredentials(format!("invalid token: {why}")),
            e @ Error::TenantInactive(_) => tollgate_model::Error::InvalidCredentials(e.to_string()),
            other => tollgate_model::Error::Internal(other.to_string()),
        }
    }
}
