//! The Admin component: the Admin REST API under `/api/am/admin/v4`. Today it manages
//! users and roles (the reference delegates these to its user store; Tollgate keeps them
//! in the shared database), gateway environments, throttling policies and deny policies;
//! custom rules (policies of level `custom`), third-party key managers, tenants, and the
//! directories (user stores) a tenant brings.
//!
//! Depends on `http`, `store` and `model` only; never on another component.

pub mod api_doc;
mod deny_policies;
mod environments;
mod key_managers;
mod policies;
mod tenants;
pub mod types;
mod user_stores;
mod users;

use axum::Router;
use axum::extract::FromRef;
use tollgate_http::Authenticator;
use tollgate_store::Database;

/// Where the Admin REST API lives, as in the reference.
pub const BASE_PATH: &str = "/api/am/admin/v4";

/// What the Admin API's handlers need.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The shared database (users, roles, tenants).
    pub shared: Database,
    /// The AM database (environments, policies, events).
    pub am: Database,
    /// Checks REST credentials, and knows the directories users sign in with.
    pub authenticator: Authenticator,
}

impl FromRef<AdminState> for Authenticator {
    fn from_ref(state: &AdminState) -> Self {
        state.authenticator.clone()
    }
}

/// The Admin REST API's routes, nested under [`BASE_PATH`].
pub fn routes(state: AdminState) -> Router {
    let doc = Router::new().route(
        "/openapi.json",
        axum::routing::get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                api_doc::document_json(),
            )
        }),
    );
    Router::new().nest(
        BASE_PATH,
        doc.merge(users::routes())
            .merge(environments::routes())
            .merge(policies::routes())
            .merge(deny_policies::routes())
            .merge(key_managers::routes())
            .merge(tenants::routes())
            .merge(user_stores::routes())
            .with_state(state),
    )
}
