//! The Key Manager component: a standards-conformant OAuth2/OIDC server.
//! `POST /oauth2/token` (client credentials, password, refresh token with rotation,
//! authorization code with PKCE), `GET/POST /oauth2/authorize` with a plain login page,
//! `GET /oauth2/jwks`, OIDC discovery, RFC 7662 introspection, RFC 7009 revocation and
//! `GET /oauth2/userinfo`. Token logic lives in the `tokens` library; this crate is the
//! HTTP face of it.
//!
//! Depends on `http`, `tokens`, `store`, `config` and `model` only; never on another component.

mod authorize;
mod discovery;
pub mod external;
pub mod form;
mod introspect;
mod token;
pub mod types;

use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use tollgate_http::Authenticator;
use tollgate_http::cluster::ClusterSecret;
use tollgate_http::rate_limit::RequestLimiter;
use tollgate_store::Database;
use tollgate_tokens::TokenService;

/// Where the OAuth2 endpoints live, as in the reference.
pub const OAUTH2_BASE_PATH: &str = "/oauth2";

/// The grant types the token endpoint supports.
pub const GRANT_TYPES: &[&str] = &["client_credentials", "password", "refresh_token", "authorization_code"];

/// What the key manager's handlers need.
#[derive(Clone, Debug)]
pub struct KeyManagerState {
    /// The AM database (clients, tokens, keys).
    pub am: Database,
    /// The shared database (users).
    pub shared: Database,
    /// Issues and checks tokens.
    pub tokens: Arc<TokenService>,
    /// Limits token and login requests per client and address.
    pub limiter: Arc<RequestLimiter>,
    /// Checks users' passwords (login page, password grant) under the same failed-sign-in
    /// locks as HTTP Basic on the REST APIs.
    pub authenticator: Authenticator,
    /// Lets other nodes (gateways) introspect with the cluster secret.
    pub cluster_secret: ClusterSecret,
}

/// The key manager's routes (`/oauth2/*` and the discovery documents).
pub fn routes(state: KeyManagerState) -> Router {
    Router::new()
        .route("/oauth2/token", post(token::token))
        .route("/oauth2/authorize", get(authorize::page).post(authorize::submit))
        .route("/oauth2/jwks", get(discovery::jwks))
        .route("/oauth2/introspect", post(introspect::introspect))
        .route("/oauth2/revoke", post(introspect::revoke))
        .route("/oauth2/userinfo", get(introspect::userinfo).post(introspect::userinfo))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/oauth2/token/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .with_state(state)
}

/// Starts the key manager's background work on a node, once it has started up (after
/// migrations): refreshing external key managers' JWKS every
/// `key_manager.jwks_refresh_interval`, until `shutdown`.
pub fn start_refresh(
    am: Database,
    config: &tollgate_config::KeyManagerConfig,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    tokio::spawn(external::refresh_loop(
        am,
        config.jwks_refresh_interval,
        shutdown.clone(),
    ));
}
