//! The gateway's error answers, in the reference gateway's shape and codes
//! (docs/architecture.md, "Gateway request path"):
//! `{"code": 900901, "message": "Invalid Credentials", "description": "…"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why the gateway refused or failed a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// No API or resource matches (404, 900906).
    NoMatchingResource(String),
    /// The resource exists, not for this method (405).
    MethodNotAllowed(Vec<String>),
    /// No credentials were sent (401, 900902).
    MissingCredentials(String),
    /// The credentials are invalid, expired or revoked (401, 900901).
    InvalidCredentials(String),
    /// The application is not subscribed to the API (403, 900908).
    NotSubscribed(String),
    /// The subscription or API is blocked (403, 900907).
    Blocked(String),
    /// The token lacks the resource's scope (403, 900910).
    ScopeMissing(String),
    /// A block condition (deny policy) refuses the call (403, 900805).
    RequestBlocked(String),
    /// The API is blocked by its publisher (503, 700700).
    ApiBlocked(String),
    /// The request is malformed or ambiguous (400): a refused upgrade, a path the backend
    /// could read differently from how it was routed, a missing or repeated `Host`.
    BadRequest(String),
    /// A WebSocket API was called without a WebSocket handshake (426, with
    /// `Upgrade: websocket`).
    UpgradeRequired(String),
    /// The request body did not start coming in time (408).
    RequestTimeout(String),
    /// The request body exceeds the gateway's limit (413).
    PayloadTooLarge(String),
    /// The request uses a transfer coding the gateway does not decode (501, RFC 9112 §6.1).
    NotImplemented(String),
    /// The backend could not be reached (502, 101503).
    BackendUnreachable(String),
    /// The backend did not answer in time (504, 101504).
    BackendTimeout(String),
    /// A throttling limit refuses the call (429, 900800–900807 by kind).
    Throttled(Throttled),
    /// The call addresses a deactivated tenant (`/t/{domain}/…`): 500, as the reference
    /// answers (docs/gateway-tenants.md, "Deactivated tenants").
    TenantInactive(String),
}

/// Which limit refused a call, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// The kind of limit (its error code).
    pub kind: crate::throttle_policies::ThrottleKind,
    /// The limit per window.
    pub limit: u64,
    /// Seconds until the window ends.
    pub reset_after: u64,
    /// Seconds until a retry may pass (`Retry-After`).
    pub retry_after: u64,
    /// Why, for the description.
    pub description: String,
}

impl GatewayError {
    fn parts(&self) -> (StatusCode, i64, &'static str, &str) {
        match self {
            GatewayError::NoMatchingResource(d) => (
                StatusCode::NOT_FOUND,
                900_906,
                "No matching resource found for given API Request",
                d,
            ),
            GatewayError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                405,
                "Method not allowed for given API resource",
                "",
            ),
            GatewayError::MissingCredentials(d) => (StatusCode::UNAUTHORIZED, 900_902, "Missing Credentials", d),
            GatewayError::InvalidCredentials(d) => (StatusCode::UNAUTHORIZED, 900_901, "Invalid Credentials", d),
            GatewayError::NotSubscribed(d) => (StatusCode::FORBIDDEN, 900_908, "Resource forbidden", d),
            GatewayError::Blocked(d) => (
                StatusCode::FORBIDDEN,
                900_907,
                "The requested API is temporarily blocked",
                d,
            ),
            GatewayError::RequestBlocked(d) => (StatusCode::FORBIDDEN, 900_805, "Message blocked", d),
            GatewayError::ScopeMissing(d) => (
                StatusCode::FORBIDDEN,
                900_910,
                "The access token does not allow you to access the requested resource",
                d,
            ),
            GatewayError::ApiBlocked(d) => (StatusCode::SERVICE_UNAVAILABLE, 700_700, "API blocked", d),
            GatewayError::BadRequest(d) => (StatusCode::BAD_REQUEST, 400, "Bad request", d),
            GatewayError::UpgradeRequired(d) => (StatusCode::UPGRADE_REQUIRED, 426, "Upgrade required", d),
            GatewayError::RequestTimeout(d) => (StatusCode::REQUEST_TIMEOUT, 408, "Request timeout", d),
            GatewayError::PayloadTooLarge(d) => (StatusCode::PAYLOAD_TOO_LARGE, 413, "Request entity too large", d),
            GatewayError::NotImplemented(d) => (StatusCode::NOT_IMPLEMENTED, 501, "Not implemented", d),
            GatewayError::BackendUnreachable(d) => {
                (StatusCode::BAD_GATEWAY, 101_503, "Error connecting to the back end", d)
            }
            GatewayError::BackendTimeout(d) => (StatusCode::GATEWAY_TIMEOUT, 101_504, "Connection timed out", d),
            GatewayError::Throttled(t) => (
                StatusCode::TOO_MANY_REQUESTS,
                t.kind.code(),
                "Message throttled out",
                &t.description,
            ),
            GatewayError::TenantInactive(d) => (StatusCode::INTERNAL_SERVER_ERROR, 500, "Inactive tenant", d),
        }
    }

    /// The reference code (for analytics and logs).
    pub fn code(&self) -> i64 {
        self.parts().1
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, code, message, description) = self.parts();
        let mut res = (
            status,
            axum::Json(json!({ "code": code, "message": message, "description": description })),
        )
            .into_response();
        match &self {
            GatewayError::MethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    res.headers_mut().insert(header::ALLOW, v);
                }
            }
            GatewayError::MissingCredentials(_) | GatewayError::InvalidCredentials(_) => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tollgate\""),
                );
            }
            GatewayError::UpgradeRequired(_) => {
                let headers = res.headers_mut();
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            }
            GatewayError::Throttled(t) => {
                let headers = res.headers_mut();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after.max(1)));
                crate::throttle::rate_limit_headers(headers, t.limit, 0, t.reset_after);
            }
            _ => {}
        }
        res
    }
}
