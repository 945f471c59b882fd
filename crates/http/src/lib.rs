//! Tollgate's HTTP edge for the REST APIs (management and internal listeners): the one
//! error envelope, the authentication extractors REST handlers declare their roles with,
//! node-to-node (cluster secret) authentication, and the health and metrics routes every
//! node serves. Authentication reads users and tokens, readiness checks the databases and
//! document downloads read them: hence its dependency on `tollgate-store` and
//! `tollgate-tokens`.
//!
//! The listeners themselves (plain or TLS sockets that drain in-flight requests on
//! shutdown) live in `tollgate-listener`, which needs no database; this crate re-exports
//! it as [`listener`] so that `tollgate_http::listener::…` keeps working. The gateway
//! depends on `tollgate-listener` only, never on this crate, so that the data plane links
//! no database driver (`crates/gateway/tests/dependency_tree.rs` checks it).
//!
//! Components build their routers on this crate; it must not depend on any component.

pub mod auth;
pub mod cluster;
pub mod destination;
pub mod directories;
pub mod document_content;
pub mod error;
pub mod health;
pub mod multipart;
pub mod precondition;
pub mod rate_limit;
pub mod request_metrics;
pub mod unknown_fields;

pub use tollgate_listener as listener;

pub use auth::{Authenticated, Authenticator, MaybeAuthenticated};
pub use error::{ApiError, ApiJson, ApiQuery, Pagination, PaginationInfo};
pub use health::{Readiness, health_routes};
pub use listener::{BoundListener, ConnectionService, ListenerError};
pub use multipart::ApiMultipart;

/// Wraps a REST API router with what every REST API shares: the body-size limit (413
/// beyond it) and the `Warning` header naming ignored fields.
pub fn rest_layers(router: axum::Router, max_body_bytes: usize) -> axum::Router {
    router
        .layer(axum::middleware::from_fn(unknown_fields::warn_unknown_fields))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
}

/// `Strict-Transport-Security` on a listener served over TLS: browsers use HTTPS for a
/// year after seeing it (not subdomains: other services may share the domain).
pub const HSTS: &str = "max-age=31536000";

/// Middleware for the management listener: `X-Content-Type-Options: nosniff` on every
/// answer (REST bodies, errors, health, metrics), so that a browser never runs a JSON or
/// uploaded document as something else; and, when the listener speaks TLS (`hsts`),
/// `Strict-Transport-Security`.
pub async fn security_headers(
    hsts: bool,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    res
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    fn app(hsts: bool) -> axum::Router {
        axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "fine" }))
            .route(
                "/refused",
                axum::routing::get(|| async { ApiError(tollgate_model::Error::Forbidden("no".into())) }),
            )
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn(move |req, next| {
                security_headers(hsts, req, next)
            }))
    }

    async fn headers(app: axum::Router, path: &str) -> axum::http::HeaderMap {
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        app.oneshot(req).await.unwrap().headers().clone()
    }

    #[tokio::test]
    async fn every_answer_says_nosniff_and_hsts_only_over_tls() {
        for path in ["/ok", "/refused", "/missing"] {
            let plain = headers(app(false), path).await;
            assert_eq!(plain["x-content-type-options"], "nosniff", "{path}");
            assert!(!plain.contains_key("strict-transport-security"), "{path}");
            let tls = headers(app(true), path).await;
            assert_eq!(tls["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(tls["strict-transport-security"], HSTS, "{path}");
        }
    }
}
