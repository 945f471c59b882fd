//! The Developer Portal REST API's own OpenAPI document, generated from the handlers'
//! annotations and served at `/api/am/devportal/v3/openapi.json`.

use tollgate_http::openapi_doc::BasicAuth;
use utoipa::{OpenApi, ToSchema};

/// Multipart body of `POST /applications/import`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ApplicationImportForm {
    /// The project as a zip (as `GET /applications/export` or the reference writes it).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate Developer Portal API", version = "v3", description = "Sign-up, the API catalogue, applications, OAuth2 keys, API keys and subscriptions. Shaped like the reference's Developer Portal v3 API."),
    servers((url = "/api/am/devportal/v3")),
    modifiers(&BasicAuth),
    paths(
        crate::signup::signup,
        crate::apis::list, crate::apis::get_one, crate::apis::swagger, crate::apis::documents, crate::apis::document,
        crate::apis::document_content, crate::apis::ratings, crate::apis::rate,
        crate::applications::list, crate::applications::create, crate::applications::get_one,
        crate::applications::update, crate::applications::delete,
        crate::keys::generate, crate::keys::map, crate::keys::list, crate::keys::get_one,
        crate::keys::regenerate_secret, crate::keys::generate_token, crate::keys::generate_api_key, crate::keys::revoke_api_key,
        crate::subscriptions::create, crate::subscriptions::list, crate::subscriptions::get_one,
        crate::subscriptions::update, crate::subscriptions::delete,
        crate::throttling::list,
        crate::projects::export, crate::projects::import,
    ),
    components(schemas(tollgate_http::error::ErrorBody))
)]
pub struct DevportalApiDoc;

/// The document as pretty JSON, as served and as committed in `openapi.json`.
pub fn document_json() -> String {
    DevportalApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
