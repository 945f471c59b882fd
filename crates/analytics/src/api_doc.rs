//! The analytics REST API's own OpenAPI document, generated from the handlers'
//! annotations and served at `/api/am/analytics/v1/openapi.json`.

use tollgate_http::openapi_doc::BasicAuth;
use utoipa::OpenApi;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate Analytics API", version = "v1", description = "API-call analytics aggregated per minute, hour and day: requests, errors, throttled calls, bytes and latency percentiles by API, resource, application, user, environment, status and error code."),
    servers((url = "/api/am/analytics/v1")),
    modifiers(&BasicAuth),
    paths(crate::usage::usage),
    components(schemas(tollgate_http::error::ErrorBody))
)]
pub struct AnalyticsApiDoc;

/// The document as pretty JSON, as served and as committed in `openapi.json`.
pub fn document_json() -> String {
    AnalyticsApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
