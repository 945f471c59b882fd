//! Tollgate's HTTP edge, shared by every component: listeners (plain or TLS) that drain
//! in-flight requests on shutdown, the one error envelope, the authentication extractors
//! REST handlers declare their roles with, node-to-node (cluster secret) authentication,
//! and the health and metrics routes every node serves.
//!
//! Components build their routers on this crate; it must not depend on any component.

pub mod auth;
pub mod cluster;
pub mod document_content;
pub mod error;
pub mod health;
pub mod listener;
pub mod precondition;
pub mod rate_limit;
pub mod request_metrics;
pub mod unknown_fields;

pub use auth::{Authenticated, Authenticator, MaybeAuthenticated};
pub use error::{ApiError, ApiJson, ApiQuery, Pagination};
pub use health::{Readiness, health_routes};
pub use listener::{BoundListener, ConnectionService, ListenerError};

/// Wraps a REST API router with what every REST API shares: the body-size limit (413
/// beyond it) and the `Warning` header naming ignored fields.
pub fn rest_layers(router: axum::Router, max_body_bytes: usize) -> axum::Router {
    router
        .layer(axum::middleware::from_fn(unknown_fields::warn_unknown_fields))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
}

/// Pieces every REST API's OpenAPI document shares.
pub mod openapi_doc {
    use crate::error::ErrorBody;
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

    /// The error responses any authenticated operation may give.
    #[derive(utoipa::IntoResponses)]
    pub enum CommonErrors {
        /// Malformed input; `error` names each bad field.
        #[response(status = 400)]
        BadRequest(ErrorBody),
        /// Missing (900902) or invalid (900901) credentials.
        #[response(status = 401)]
        Unauthorized(ErrorBody),
        /// The caller's roles do not allow the operation (900910).
        #[response(status = 403)]
        Forbidden(ErrorBody),
        /// The resource does not exist.
        #[response(status = 404)]
        NotFound(ErrorBody),
        /// A duplicate, or a resource still in use.
        #[response(status = 409)]
        Conflict(ErrorBody),
        /// The body exceeds `management.max_body_bytes`.
        #[response(status = 413)]
        PayloadTooLarge(ErrorBody),
    }

    /// Adds HTTP Basic, or a bearer access token from Tollgate's key manager, as the
    /// schemes every operation requires (either one).
    pub struct BasicAuth;

    impl utoipa::Modify for BasicAuth {
        fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
            let components = openapi.components.get_or_insert_with(Default::default);
            components.add_security_scheme(
                "basicAuth",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
            );
            components.add_security_scheme(
                "bearerAuth",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
            openapi.security = Some(vec![
                utoipa::openapi::security::SecurityRequirement::new("basicAuth", Vec::<String>::new()),
                utoipa::openapi::security::SecurityRequirement::new("bearerAuth", Vec::<String>::new()),
            ]);
        }
    }
}
