//! The Developer Portal component: the Developer Portal REST API under
//! `/api/am/devportal/v3`, shaped like the reference's v3 for what Tollgate implements:
//! self sign-up, the API catalogue (anonymous for public APIs), applications, their
//! OAuth2 keys and API keys, subscriptions with a business plan, and ratings.
//!
//! Every request acts in one tenant, decided by [`scope::TenantScope`] alone: a signed-in
//! caller's own; for anonymous callers the one named by `X-WSO2-Tenant` or `?tenant=`,
//! else the super tenant. Only an application's owner sees or changes it, its keys and
//! its subscriptions; anyone else gets 404. Every change gateways must know (applications, subscriptions,
//! key mappings, revocations) is written to the `events` outbox in the same transaction.
//! Depends on `http`, `tokens`, `store`, `events` and `model` only.

pub mod api_doc;
mod apis;
mod applications;
mod keys;
mod projects;
pub mod scope;
mod signup;
mod subscriptions;
mod throttling;
pub mod types;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use std::sync::Arc;
use tollgate_http::Authenticator;
use tollgate_http::rate_limit::RequestLimiter;
use tollgate_store::Database;
use tollgate_tokens::TokenService;

/// Where the Developer Portal REST API lives, as in the reference.
pub const BASE_PATH: &str = "/api/am/devportal/v3";

/// What the Developer Portal's handlers need.
#[derive(Clone, Debug)]
pub struct DevportalState {
    /// The AM database (APIs, applications, keys, subscriptions, events).
    pub am: Database,
    /// The shared database (users, documents).
    pub shared: Database,
    /// Checks REST credentials (Basic or bearer).
    pub authenticator: Authenticator,
    /// Issues client secrets' tokens and API keys.
    pub tokens: Arc<TokenService>,
    /// Whether anyone may sign up (`[devportal] self_signup`).
    pub self_signup: bool,
    /// Sign-ups per client address (`[devportal] self_signups_per_hour`).
    pub signup_limiter: Arc<RequestLimiter>,
}

impl FromRef<DevportalState> for Authenticator {
    fn from_ref(state: &DevportalState) -> Self {
        state.authenticator.clone()
    }
}

/// The Developer Portal REST API's routes, nested under [`BASE_PATH`].
pub fn routes(state: DevportalState) -> Router {
    // Sign-up decides its tenant itself from the name too (scope::sign_up_target), and
    // the document is the same for every tenant: neither passes the tenant check.
    let open = Router::new().route("/signup", post(signup::signup)).route(
        "/openapi.json",
        get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                api_doc::document_json(),
            )
        }),
    );
    let api = Router::new()
        .route("/apis", get(apis::list))
        .route("/apis/{api_id}", get(apis::get_one))
        .route("/apis/{api_id}/swagger", get(apis::swagger))
        .route("/apis/{api_id}/documents", get(apis::documents))
        .route("/apis/{api_id}/documents/{document_id}", get(apis::document))
        .route(
            "/apis/{api_id}/documents/{document_id}/content",
            get(apis::document_content),
        )
        .route("/apis/{api_id}/ratings", get(apis::ratings))
        .route("/apis/{api_id}/user-rating", put(apis::rate))
        .route("/applications", get(applications::list).post(applications::create))
        .route("/applications/export", get(projects::export))
        .route("/applications/import", post(projects::import))
        .route(
            "/applications/{application_id}",
            get(applications::get_one)
                .put(applications::update)
                .delete(applications::delete),
        )
        .route("/applications/{application_id}/generate-keys", post(keys::generate))
        .route("/applications/{application_id}/map-keys", post(keys::map))
        .route("/applications/{application_id}/oauth-keys", get(keys::list))
        .route(
            "/applications/{application_id}/oauth-keys/{key_mapping_id}",
            get(keys::get_one),
        )
        .route(
            "/applications/{application_id}/oauth-keys/{key_mapping_id}/regenerate-secret",
            post(keys::regenerate_secret),
        )
        .route(
            "/applications/{application_id}/oauth-keys/{key_mapping_id}/generate-token",
            post(keys::generate_token),
        )
        .route(
            "/applications/{application_id}/api-keys/{key_type}/generate",
            post(keys::generate_api_key),
        )
        .route(
            "/applications/{application_id}/api-keys/{key_type}/revoke",
            post(keys::revoke_api_key),
        )
        .route("/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route(
            "/subscriptions/{subscription_id}",
            get(subscriptions::get_one)
                .put(subscriptions::update)
                .delete(subscriptions::delete),
        )
        .route("/throttling-policies/{policy_level}", get(throttling::list))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            scope::check_named_tenant,
        ))
        .merge(open)
        .with_state(state);
    Router::new().nest(BASE_PATH, api)
}
