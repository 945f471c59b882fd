//! The Gateway component: the data plane every API call passes through (ARCHITECTURE.md
//! §4). It opens no database: everything it serves will come from the event hub.
//!
//! Today its route table is empty, so every call is answered as the reference gateway
//! answers an unknown resource (404, code 900906); routing, authentication, throttling
//! and proxying arrive with the Gateway issue behind the same listener.
//! Depends on `http`, `events` and `model` only.

pub mod router;
pub mod runtime;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The reference gateway's code for "no API or resource matches this request".
pub const NO_MATCHING_RESOURCE: i64 = 900_906;

/// What the gateway listener needs.
#[derive(Clone, Debug)]
pub struct GatewayState {
    /// The gateway environment this node serves (`[gateway] environment`).
    pub environment: String,
}

/// The gateway's router for its environment.
pub fn routes(state: GatewayState) -> Router {
    Router::new().fallback(move || no_matching_resource(state.environment.clone()))
}

async fn no_matching_resource(environment: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "code": NO_MATCHING_RESOURCE,
            "message": "No matching resource found for given API Request",
            "description": format!("No API deployed to the `{environment}` environment matches this request's context, version and resource."),
        })),
    )
        .into_response()
}
