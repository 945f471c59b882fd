//! The Key Manager component: the OAuth2/OIDC server (`/oauth2/token`, `/oauth2/jwks`,
//! introspection, revocation, discovery), application keys and API keys. This crate is
//! the seam the Key Manager and Developer Portal issue fills.
//!
//! Depends on `http`, `store` and `model` only; never on another component.

/// Where the OAuth2 endpoints live, as in the reference.
pub const OAUTH2_BASE_PATH: &str = "/oauth2";
