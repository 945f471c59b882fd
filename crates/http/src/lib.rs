//! Tollgate's HTTP edge, shared by every component: listeners (plain or TLS) that drain
//! in-flight requests on shutdown, the one error envelope, the authentication extractors
//! REST handlers declare their roles with, node-to-node (cluster secret) authentication,
//! and the health and metrics routes every node serves.
//!
//! Components build their routers on this crate; it must not depend on any component.

pub mod auth;
pub mod cluster;
pub mod error;
pub mod health;
pub mod listener;
pub mod precondition;
pub mod request_metrics;
pub mod unknown_fields;

pub use auth::{Authenticated, Authenticator};
pub use error::{ApiError, ApiJson, ApiQuery, Pagination};
pub use health::{Readiness, health_routes};
pub use listener::{BoundListener, ListenerError};

/// Wraps a REST API router with what every REST API shares: the body-size limit (413
/// beyond it) and the `Warning` header naming ignored fields.
pub fn rest_layers(router: axum::Router, max_body_bytes: usize) -> axum::Router {
    router
        .layer(axum::middleware::from_fn(unknown_fields::warn_unknown_fields))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
}
