//! Mock responses of an API's definition: `POST /apis/{apiId}/generate-mock-scripts` and
//! `GET /apis/{apiId}/generated-mock-scripts`, and their compilation for the deploy
//! event of a `MOCKED_OAS` API (decision 016).
//!
//! The reference's "script" is a JavaScript mediation sequence; Tollgate's gateway runs
//! no scripts, so a script's `content` here is the JSON of the responses the gateway
//! answers that operation with (status, content type, default body, named examples).
//! Both operations compute from the stored definition and store nothing: what they show
//! is what a revision made now would serve.

use crate::PublisherState;
use crate::apis::load;
use crate::types::{MockResponsePayloadInfo, MockResponsePayloadList};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tollgate_http::auth::CreatorRole;
use tollgate_http::{ApiError, Authenticated};
use tollgate_model::Error;
use tollgate_model::mock::{OperationMock, compile};

/// The mock responses of a stored definition (none without one).
pub(crate) fn compile_text(definition: Option<&str>) -> Result<Vec<OperationMock>, ApiError> {
    match definition {
        Some(text) => {
            let doc: Value =
                serde_json::from_str(text).map_err(|e| Error::Internal(format!("stored definition: {e}")))?;
            Ok(compile(&doc))
        }
        None => Ok(Vec::new()),
    }
}

/// A script's `content`: the operation's responses as pretty JSON.
fn content(op: &OperationMock) -> String {
    serde_json::to_string_pretty(&op.responses).unwrap_or_default()
}

/// The API's definition, parsed, or 404 when the API (or its definition) is unknown.
async fn definition_of(
    state: &PublisherState,
    auth: &Authenticated<CreatorRole>,
    api_id: &str,
) -> Result<Value, ApiError> {
    let stored = load(state, auth.principal().tenant_id, api_id).await?;
    let text = stored
        .definition
        .ok_or_else(|| Error::not_found("OpenAPI definition of API", api_id))?;
    serde_json::from_str(&text).map_err(|e| Error::Internal(format!("stored definition: {e}")).into())
}

/// `POST /apis/{apiId}/generate-mock-scripts`: the API's definition with each operation's
/// mock responses in `x-mediation-script`, as the reference returns it. Nothing is stored.
#[utoipa::path(post, path = "/apis/{apiId}/generate-mock-scripts", operation_id = "post_api_generate_mock_scripts", tag = "APIs", summary = "The definition with each operation's generated mock responses (x-mediation-script)", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "The OpenAPI definition, each operation carrying `x-mediation-script`: the JSON of its mock responses", body = Object), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn generate(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut doc = definition_of(&state, &auth, &api_id).await?;
    let mocks = compile(&doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in &mocks {
            if let Some(operation) = paths
                .get_mut(&op.target)
                .and_then(|item| item.get_mut(op.verb.to_ascii_lowercase()))
                .and_then(Value::as_object_mut)
            {
                operation.insert("x-mediation-script".into(), Value::String(content(op)));
            }
        }
    }
    Ok(axum::Json(doc).into_response())
}

/// `GET /apis/{apiId}/generated-mock-scripts`: each operation's mock responses, as the
/// reference's `MockResponsePayloadList` (`count`, `list` of `path`, `verb`, `content`).
#[utoipa::path(get, path = "/apis/{apiId}/generated-mock-scripts", operation_id = "get_api_generated_mock_scripts", tag = "APIs", summary = "Each operation's mock responses", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "Each operation's mock responses; content is their JSON", body = MockResponsePayloadList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn generated(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = definition_of(&state, &auth, &api_id).await?;
    let list: Vec<MockResponsePayloadInfo> = compile(&doc)
        .iter()
        .map(|op| MockResponsePayloadInfo {
            path: op.target.clone(),
            verb: op.verb.clone(),
            content: content(op),
        })
        .collect();
    Ok(axum::Json(MockResponsePayloadList {
        count: list.len(),
        list,
    })
    .into_response())
}
