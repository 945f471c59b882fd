//! `GET/POST /apis/{apiId}/documents`, `GET/PUT/DELETE …/documents/{documentId}`,
//! `GET/POST …/documents/{documentId}/content`: API documents, kept in the shared
//! database. Content is inline text or Markdown, a URL (GET answers 303), or a file.

use crate::PublisherState;
use crate::apis::load;
use crate::types::DocumentList;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use tollgate_http::auth::{CreatorOrPublisherRole, CreatorRole};
use tollgate_http::{ApiError, ApiJson, ApiMultipart, ApiQuery, Authenticated, Pagination};
use tollgate_model::document::Document;
use tollgate_model::{Error, TenantId, now_millis};
use tollgate_store::documents;

/// Largest document file accepted (the REST body limit applies too).
pub(crate) const MAX_FILE_BYTES: usize = 5 * 1024 * 1024;

fn not_found(id: &str) -> ApiError {
    Error::not_found("document", id).into()
}

fn invalid(doc: &Document) -> Result<(), ApiError> {
    let errors = doc.validate();
    Error::check_fields(errors).map_err(ApiError::from)
}

async fn load_doc(state: &PublisherState, tenant: TenantId, api_id: &str, id: &str) -> Result<Document, ApiError> {
    load(state, tenant, api_id).await?;
    documents::get(&state.shared, tenant, api_id, id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn duplicate(name: &str) -> impl FnOnce(tollgate_store::Error) -> ApiError + '_ {
    move |e| {
        if e.is_unique_violation() {
            ApiError(Error::Conflict(format!(
                "the API already has a document named `{name}`"
            )))
        } else {
            ApiError(e.into())
        }
    }
}

/// `GET /apis/{apiId}/documents`.
#[utoipa::path(get, path = "/apis/{apiId}/documents", operation_id = "get_api_documents", tag = "API Documents", summary = "List an API's documents", params(("apiId" = String, Path, description = "API id"), ("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of documents", body = DocumentList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> Result<Response, ApiError> {
    let page = page.validate()?;
    let tenant = auth.principal().tenant_id;
    load(&state, tenant, &api_id).await?;
    let (list, total) = documents::list(&state.shared, tenant, &api_id, page.offset, page.limit).await?;
    Ok(axum::Json(DocumentList {
        count: list.len(),
        list,
        pagination: page.info(total),
    })
    .into_response())
}

/// `POST /apis/{apiId}/documents`.
#[utoipa::path(post, path = "/apis/{apiId}/documents", operation_id = "post_api_documents", tag = "API Documents", summary = "Add a document", params(("apiId" = String, Path, description = "API id")), request_body = tollgate_model::document::Document, responses((status = 201, description = "The document", body = tollgate_model::document::Document), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    ApiJson(doc): ApiJson<Document>,
) -> Result<Response, ApiError> {
    invalid(&doc)?;
    let tenant = auth.principal().tenant_id;
    load(&state, tenant, &api_id).await?;
    let id = uuid::Uuid::now_v7().to_string();
    documents::insert(
        &state.shared,
        tenant,
        &api_id,
        &id,
        &doc,
        &auth.principal().username,
        now_millis(),
    )
    .await
    .map_err(duplicate(&doc.name))?;
    let created = load_doc(&state, tenant, &api_id, &id).await?;
    let location = format!("{}/apis/{api_id}/documents/{id}", crate::BASE_PATH);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(created)).into_response())
}

/// `GET /apis/{apiId}/documents/{documentId}`.
#[utoipa::path(get, path = "/apis/{apiId}/documents/{documentId}", operation_id = "get_api_document", tag = "API Documents", summary = "Get a document", params(("apiId" = String, Path, description = "API id"), ("documentId" = String, Path, description = "Document id")), responses((status = 200, description = "The document", body = tollgate_model::document::Document), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path((api_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let doc = load_doc(&state, auth.principal().tenant_id, &api_id, &id).await?;
    Ok(axum::Json(doc).into_response())
}

/// `PUT /apis/{apiId}/documents/{documentId}`.
#[utoipa::path(put, path = "/apis/{apiId}/documents/{documentId}", operation_id = "put_api_document", tag = "API Documents", summary = "Replace a document's metadata", params(("apiId" = String, Path, description = "API id"), ("documentId" = String, Path, description = "Document id")), request_body = tollgate_model::document::Document, responses((status = 200, description = "The document", body = tollgate_model::document::Document), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path((api_id, id)): Path<(String, String)>,
    ApiJson(doc): ApiJson<Document>,
) -> Result<Response, ApiError> {
    invalid(&doc)?;
    let tenant = auth.principal().tenant_id;
    load_doc(&state, tenant, &api_id, &id).await?;
    documents::update(&state.shared, &id, &doc, &auth.principal().username, now_millis())
        .await
        .map_err(duplicate(&doc.name))?;
    Ok(axum::Json(load_doc(&state, tenant, &api_id, &id).await?).into_response())
}

/// `DELETE /apis/{apiId}/documents/{documentId}`.
#[utoipa::path(delete, path = "/apis/{apiId}/documents/{documentId}", operation_id = "delete_api_document", tag = "API Documents", summary = "Delete a document", params(("apiId" = String, Path, description = "API id"), ("documentId" = String, Path, description = "Document id")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path((api_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    load_doc(&state, auth.principal().tenant_id, &api_id, &id).await?;
    documents::delete(&state.shared, &id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /apis/{apiId}/documents/{documentId}/content`: the text, the file, or a 303 to
/// the document's URL.
#[utoipa::path(get, path = "/apis/{apiId}/documents/{documentId}/content", operation_id = "get_api_document_content", tag = "API Documents", summary = "The document's text or file, or a redirect to its URL", params(("apiId" = String, Path, description = "API id"), ("documentId" = String, Path, description = "Document id")), responses((status = 200, description = "The content"), (status = 303, description = "See the document's URL"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_content(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path((api_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let doc = load_doc(&state, auth.principal().tenant_id, &api_id, &id).await?;
    tollgate_http::document_content::response(&state.shared, &doc, &id).await
}

/// `POST /apis/{apiId}/documents/{documentId}/content` (multipart `inlineContent` for
/// INLINE and MARKDOWN documents, `file` for FILE documents).
#[utoipa::path(post, path = "/apis/{apiId}/documents/{documentId}/content", operation_id = "post_api_document_content", tag = "API Documents", summary = "Upload a document's content", params(("apiId" = String, Path, description = "API id"), ("documentId" = String, Path, description = "Document id")), request_body(content = crate::api_doc::ContentForm, content_type = "multipart/form-data"), responses((status = 201, description = "The document", body = tollgate_model::document::Document), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn put_content(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path((api_id, id)): Path<(String, String)>,
    mut form: ApiMultipart,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let doc = load_doc(&state, tenant, &api_id, &id).await?;
    let user = auth.principal().username.clone();
    let mut handled = false;
    while let Some(field) = form.next_field().await? {
        match (field.name().unwrap_or(""), doc.source_type.as_str()) {
            ("inlineContent", "INLINE" | "MARKDOWN") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| Error::field("inlineContent", format!("must be UTF-8 text: {}", e.body_text())))?;
                documents::set_text(&state.shared, &id, &text, &user, now_millis()).await?;
                handled = true;
            }
            ("file", "FILE") => {
                let name = field.file_name().unwrap_or("document").to_string();
                let media = field.content_type().unwrap_or("application/octet-stream").to_string();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| Error::field("file", format!("cannot be read: {}", e.body_text())))?;
                if bytes.len() > MAX_FILE_BYTES {
                    return Err(Error::PayloadTooLarge(format!(
                        "document files may be at most {MAX_FILE_BYTES} bytes"
                    ))
                    .into());
                }
                documents::set_file(&state.shared, &id, &name, &media, &bytes, &user, now_millis()).await?;
                handled = true;
            }
            (other, kind) => {
                let expected = match kind {
                    "FILE" => "`file`",
                    "URL" => "nothing (a URL document's content is its sourceUrl)",
                    _ => "`inlineContent`",
                };
                return Err(Error::field(
                    if other.is_empty() { "content" } else { other },
                    format!("a {kind} document takes {expected}"),
                )
                .into());
            }
        }
    }
    if !handled {
        return Err(Error::field("content", "send `inlineContent` or `file` as multipart/form-data").into());
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(load_doc(&state, tenant, &api_id, &id).await?),
    )
        .into_response())
}
