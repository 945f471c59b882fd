//! The Publisher REST API's own OpenAPI document, generated from the handlers'
//! annotations and served at `/api/am/publisher/v4/openapi.json`.

use tollgate_http::openapi_doc::BasicAuth;
use utoipa::{OpenApi, ToSchema};

/// Multipart body of `import-openapi`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImportForm {
    /// The OpenAPI document (JSON or YAML).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// The document as text, instead of `file`.
    inline_api_definition: Option<String>,
    /// The API's fields as JSON; at least `context`.
    additional_properties: String,
}

/// Multipart body of `validate-openapi`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ValidateForm {
    /// The OpenAPI document.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// The document as text, instead of `file`.
    inline_api_definition: Option<String>,
}

/// Multipart body of `PUT /apis/{apiId}/swagger`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwaggerForm {
    /// The new definition as text.
    api_definition: Option<String>,
    /// The new definition as a file, instead.
    #[schema(format = Binary, value_type = Option<String>)]
    file: Option<Vec<u8>>,
}

/// Multipart body of a document's content.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContentForm {
    /// Text for INLINE and MARKDOWN documents.
    inline_content: Option<String>,
    /// The file for FILE documents.
    #[schema(format = Binary, value_type = Option<String>)]
    file: Option<Vec<u8>>,
}

/// Multipart body of `POST /apis/import`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ProjectImportForm {
    /// The project as a zip (as `GET /apis/export` or the reference's `apictl export api` writes it).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// An `api_params.yaml` whose entry `paramsEnvironment` overrides the project.
    #[schema(format = Binary, value_type = Option<String>)]
    params: Option<Vec<u8>>,
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate Publisher API", version = "v4", description = "Create, import, edit, publish, revise and deploy APIs. Shaped like the reference's Publisher v4 API."),
    servers((url = "/api/am/publisher/v4")),
    modifiers(&BasicAuth),
    paths(
        crate::apis::list, crate::apis::create, crate::apis::get_one, crate::apis::update, crate::apis::delete, crate::apis::copy,
        crate::openapi::import, crate::openapi::validate, crate::openapi::get_definition, crate::openapi::put_definition,
        crate::mocks::generate, crate::mocks::generated,
        crate::lifecycle::change, crate::lifecycle::state, crate::lifecycle::history,
        crate::revisions::list, crate::revisions::create, crate::revisions::get_one, crate::revisions::delete,
        crate::revisions::deploy, crate::revisions::undeploy, crate::revisions::restore, crate::revisions::deployments,
        crate::throttling::list,
        crate::scopes::list, crate::scopes::get_one, crate::scopes::exists, crate::scopes::usage,
        crate::scopes::create, crate::scopes::update, crate::scopes::delete,
        crate::documents::list, crate::documents::create, crate::documents::get_one, crate::documents::update,
        crate::documents::delete, crate::documents::get_content, crate::documents::put_content,
        crate::subscriptions::list, crate::subscriptions::block, crate::subscriptions::unblock,
        crate::projects::export, crate::projects::import,
    ),
    components(schemas(tollgate_http::error::ErrorBody))
)]
pub struct PublisherApiDoc;

/// The document as pretty JSON, as served and as committed in `openapi.json`.
pub fn document_json() -> String {
    PublisherApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
