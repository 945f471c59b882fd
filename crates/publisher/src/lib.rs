//! The Publisher component: the Publisher REST API under `/api/am/publisher/v4`, shaped
//! like the reference's v4 API for what Tollgate implements: APIs (create, edit, search,
//! delete, copy), OpenAPI import and validation, lifecycle, revisions and deployments,
//! and whole API projects in the reference's format (export and import).
//!
//! Every change gateways must see (lifecycle state, deployments) is written to the
//! `events` outbox in the same transaction as the change. Depends on `http`, `store`,
//! `events` and `model` only; never on another component.

pub mod api_doc;
mod apis;
pub mod definition;
mod documents;
mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod lifecycle;
mod mocks;
mod openapi;
mod projects;
mod revisions;
mod scopes;
mod subscriptions;
mod throttling;
pub mod types;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use tollgate_http::Authenticator;
use tollgate_model::TenantId;
use tollgate_model::api::KnownPolicies;
use tollgate_store::{Database, policies};

/// Where the Publisher REST API lives, as in the reference.
pub const BASE_PATH: &str = "/api/am/publisher/v4";

/// What the Publisher's handlers need.
#[derive(Clone, Debug)]
pub struct PublisherState {
    /// The AM database (APIs, revisions, deployments, environments, events).
    pub am: Database,
    /// The shared database (API documents).
    pub shared: Database,
    /// Checks REST credentials.
    pub authenticator: Authenticator,
    /// Most revisions one API may keep (`[publisher] max_revisions_per_api`).
    pub max_revisions_per_api: u32,
    /// Whether OpenAPI import by URL may reach private addresses
    /// (`[publisher] url_import_allow_private`).
    pub url_import_allow_private: bool,
}

impl FromRef<PublisherState> for Authenticator {
    fn from_ref(state: &PublisherState) -> Self {
        state.authenticator.clone()
    }
}

/// The subscription and advanced policy names the tenant's APIs may use.
pub(crate) async fn known_policies(
    state: &PublisherState,
    tenant: TenantId,
) -> Result<KnownPolicies, tollgate_http::ApiError> {
    use tollgate_model::policy::PolicyLevel;
    let names = |level| policies::names(&state.am, tenant, level);
    Ok(KnownPolicies {
        subscription: names(PolicyLevel::Subscription).await?,
        advanced: names(PolicyLevel::Advanced).await?,
    })
}

/// `GET /openapi.json`: this API's own OpenAPI document (no credentials needed).
async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        api_doc::document_json(),
    )
}

/// The Publisher REST API's routes, nested under [`BASE_PATH`].
pub fn routes(state: PublisherState) -> Router {
    let api = Router::new()
        .route("/apis", get(apis::list).post(apis::create))
        .route("/apis/copy-api", post(apis::copy))
        .route("/apis/import-openapi", post(openapi::import))
        .route("/apis/validate-openapi", post(openapi::validate))
        .route("/apis/change-lifecycle", post(lifecycle::change))
        .route("/apis/export", get(projects::export))
        .route("/apis/import", post(projects::import))
        .route(
            "/apis/{api_id}",
            get(apis::get_one).put(apis::update).delete(apis::delete),
        )
        .route(
            "/apis/{api_id}/swagger",
            get(openapi::get_definition).put(openapi::put_definition),
        )
        .route("/apis/{api_id}/generate-mock-scripts", post(mocks::generate))
        .route("/apis/{api_id}/generated-mock-scripts", get(mocks::generated))
        .route("/apis/{api_id}/lifecycle-state", get(lifecycle::state))
        .route("/apis/{api_id}/lifecycle-history", get(lifecycle::history))
        .route("/apis/{api_id}/revisions", get(revisions::list).post(revisions::create))
        .route(
            "/apis/{api_id}/revisions/{revision_id}",
            get(revisions::get_one).delete(revisions::delete),
        )
        .route("/apis/{api_id}/deploy-revision", post(revisions::deploy))
        .route("/apis/{api_id}/undeploy-revision", post(revisions::undeploy))
        .route("/apis/{api_id}/restore-revision", post(revisions::restore))
        .route("/apis/{api_id}/deployments", get(revisions::deployments))
        .route("/apis/{api_id}/documents", get(documents::list).post(documents::create))
        .route(
            "/apis/{api_id}/documents/{document_id}",
            get(documents::get_one).put(documents::update).delete(documents::delete),
        )
        .route(
            "/apis/{api_id}/documents/{document_id}/content",
            get(documents::get_content).post(documents::put_content),
        )
        .route("/throttling-policies/{policy_level}", get(throttling::list))
        .route("/openapi.json", get(openapi_json))
        .route("/subscriptions", get(subscriptions::list))
        .route("/subscriptions/block-subscription", post(subscriptions::block))
        .route("/subscriptions/unblock-subscription", post(subscriptions::unblock))
        .route("/scopes", get(scopes::list).post(scopes::create))
        .route(
            "/scopes/{scope_id}",
            get(scopes::get_one)
                .put(scopes::update)
                .delete(scopes::delete)
                .head(scopes::exists),
        )
        .route("/scopes/{scope_id}/usage", get(scopes::usage))
        .with_state(state);
    Router::new().nest(BASE_PATH, api)
}
