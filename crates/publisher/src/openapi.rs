//! OpenAPI definitions over REST: `POST /apis/import-openapi`, `POST
//! /apis/validate-openapi`, `GET/PUT /apis/{apiId}/swagger`. Documents arrive as
//! multipart form data, as in the reference.

use crate::PublisherState;
use crate::apis::{api_response, conflict_on_race, create_api, load, load_in, validate as validate_api};
use crate::definition::{self, Definition, SpecVersion};
use crate::types::{DefinitionInfo, DefinitionOperation, DefinitionValidation, ErrorListItem};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use tollgate_http::auth::{CreatorOrPublisherRole, CreatorRole};
use tollgate_http::precondition::{check_if_match, etag};
use tollgate_http::unknown_fields::{UnknownFields, is_strict, report};
use tollgate_http::{ApiError, ApiMultipart, ApiQuery, Authenticated};
use tollgate_model::{Api, Error, FieldError, now_millis};
use tollgate_store::apis::{self, StoredApi};

/// Reads every part of a multipart body into memory (the body limit bounds the total).
pub(crate) async fn read_form(form: ApiMultipart) -> Result<HashMap<String, Vec<u8>>, ApiError> {
    form.into_parts().await
}

/// The definition bytes from `file`, an inline field, or a `url` to fetch.
async fn definition_bytes(
    state: &PublisherState,
    parts: &HashMap<String, Vec<u8>>,
    inline_field: &str,
) -> Result<Vec<u8>, ApiError> {
    if let Some(b) = parts.get("file").or_else(|| parts.get(inline_field)) {
        return Ok(b.clone());
    }
    if let Some(url) = parts.get("url") {
        let url = String::from_utf8_lossy(url).to_string();
        return crate::fetch::fetch_definition(
            "url",
            &url,
            state.url_import_allow_private,
            definition::MAX_DEFINITION_BYTES,
        )
        .await
        .map_err(ApiError);
    }
    Err(Error::field(
        "file",
        format!("send the OpenAPI document as the multipart part `file`, `{inline_field}` or `url`"),
    )
    .into())
}

fn parse_definition(bytes: &[u8]) -> Result<Definition, ApiError> {
    definition::parse(bytes).map_err(|errors| ApiError(Error::Validation(errors)))
}

/// `POST /apis/import-openapi` (multipart `file` or `inlineAPIDefinition`, plus
/// `additionalProperties`: the API's fields as JSON, at least `context`). Operations come
/// from the document; name, version and description default to its `info`.
#[utoipa::path(post, path = "/apis/import-openapi", operation_id = "post_apis_import_openapi", tag = "APIs", summary = "Create an API from an OpenAPI document", request_body(content = crate::api_doc::ImportForm, content_type = "multipart/form-data"), responses((status = 201, description = "The created API", body = tollgate_model::Api), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn import(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    uri: Uri,
    slot: Option<Extension<UnknownFields>>,
    form: ApiMultipart,
) -> Result<Response, ApiError> {
    let parts = read_form(form).await?;
    let bytes = definition_bytes(&state, &parts, "inlineAPIDefinition").await?;
    let def = parse_definition(&bytes)?;
    let props_text = parts.get("additionalProperties").map(Vec::as_slice).unwrap_or(b"{}");
    let mut props: Value = serde_json::from_slice(props_text)
        .map_err(|e| Error::field("additionalProperties", format!("is not valid JSON: {e}")))?;
    let Some(obj) = props.as_object_mut() else {
        return Err(Error::field("additionalProperties", "must be a JSON object of API fields").into());
    };
    if !obj.contains_key("context") {
        return Err(Error::field(
            "additionalProperties.context",
            "is required, e.g. {\"context\": \"/petstore\"}",
        )
        .into());
    }
    for key in ["name", "version"] {
        obj.entry(key).or_insert_with(|| json!(""));
    }
    let text = props.to_string();
    let (mut api, unknown) = tollgate_http::error::parse_json::<Api>(text.as_bytes())
        .map_err(|e| ApiError(Error::field("additionalProperties", e.description())))?;
    report(
        slot.as_ref().map(|Extension(s)| s),
        is_strict(&uri),
        "additionalProperties.",
        unknown,
    )?;
    definition::apply_to_api(&def, &mut api);
    let stored = create_api(&state, auth.principal(), api, Some(def.doc)).await?;
    Ok(api_response(StatusCode::CREATED, &stored))
}

/// Query of `validate-openapi`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ValidateQuery {
    return_content: bool,
}

/// `POST /apis/validate-openapi`: reports whether a document is usable, and what it
/// describes, without creating anything.
#[utoipa::path(post, path = "/apis/validate-openapi", operation_id = "post_apis_validate_openapi", tag = "APIs", summary = "Check an OpenAPI document without creating anything", params(("returnContent" = Option<bool>, Query, description = "Include the document as JSON")), request_body(content = crate::api_doc::ValidateForm, content_type = "multipart/form-data"), responses((status = 200, description = "isValid, info, errors", body = DefinitionValidation), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn validate(
    _auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<ValidateQuery>,
    form: ApiMultipart,
) -> Result<Response, ApiError> {
    let parts = read_form(form).await?;
    let bytes = definition_bytes(&state, &parts, "inlineAPIDefinition").await?;
    let body = match definition::parse(&bytes) {
        Ok(def) => {
            let version = match def.version {
                SpecVersion::Swagger2 => format!("swagger {}", def.version_text),
                _ => def.version_text.clone(),
            };
            DefinitionValidation {
                is_valid: true,
                info: Some(DefinitionInfo {
                    name: def.title(),
                    version: def.version(),
                    description: def.description(),
                    open_api_version: version,
                    endpoints: def.server_url().into_iter().collect(),
                    operations: def
                        .operations()
                        .iter()
                        .map(|o| DefinitionOperation {
                            verb: o.verb.clone(),
                            target: o.target.clone(),
                        })
                        .collect(),
                }),
                content: q.return_content.then(|| def.to_json()),
                errors: Vec::new(),
            }
        }
        Err(errors) => DefinitionValidation {
            is_valid: false,
            info: None,
            content: None,
            errors: errors
                .iter()
                .map(|e| ErrorListItem {
                    code: e.field.clone(),
                    message: e.message.clone(),
                })
                .collect(),
        },
    };
    Ok(axum::Json(body).into_response())
}

/// `GET /apis/{apiId}/swagger`: the API's OpenAPI definition.
#[utoipa::path(get, path = "/apis/{apiId}/swagger", operation_id = "get_api_swagger", tag = "APIs", summary = "Get the API's OpenAPI definition", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "The definition", body = Object), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_definition(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    let stored = load(&state, auth.principal().tenant_id, &api_id).await?;
    let doc: Value = match stored.definition.as_deref() {
        Some(text) => serde_json::from_str(text).map_err(|e| Error::Internal(format!("stored definition: {e}")))?,
        None => definition::generate(&stored.api),
    };
    let mut response = axum::Json(doc).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(&stored.updated_at.to_string()));
    Ok(response)
}

/// `PUT /apis/{apiId}/swagger` (multipart `apiDefinition` or `file`): replaces the
/// definition; the API's operations follow it (an operation it keeps keeps its settings).
#[utoipa::path(put, path = "/apis/{apiId}/swagger", operation_id = "put_api_swagger", tag = "APIs", summary = "Replace the definition; operations follow it", params(("apiId" = String, Path, description = "API id")), request_body(content = crate::api_doc::SwaggerForm, content_type = "multipart/form-data"), responses((status = 200, description = "The stored definition", body = Object), (status = 412, description = "If-Match does not match"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn put_definition(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    headers: HeaderMap,
    form: ApiMultipart,
) -> Result<Response, ApiError> {
    let parts = read_form(form).await?;
    let bytes = definition_bytes(&state, &parts, "apiDefinition").await?;
    let def = parse_definition(&bytes)?;
    let tenant = auth.principal().tenant_id;
    let mut tx = state.am.begin().await?;
    let current = load_in(&mut tx, tenant, &api_id).await?;
    check_if_match(&headers, &current.updated_at.to_string())?;
    let mut api = current.api.clone();
    definition::apply_to_api(&def, &mut api);
    validate_api(&state, tenant, &mut api).await.map_err(|e| match e.0 {
        Error::Validation(fields) => ApiError(Error::Validation(
            fields
                .into_iter()
                .map(|f| FieldError::new(format!("definition: {}", f.field), f.message))
                .collect(),
        )),
        other => ApiError(other),
    })?;
    let mut doc = def.doc;
    definition::sync(&mut doc, &api);
    let updated = StoredApi {
        api,
        definition: Some(doc.to_string()),
        updated_at: now_millis().max(current.updated_at + 1),
        ..current
    };
    apis::update(&mut tx, &updated).await.map_err(conflict_on_race)?;
    tx.commit().await?;
    let mut response = axum::Json(doc).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(&updated.updated_at.to_string()));
    Ok(response)
}
