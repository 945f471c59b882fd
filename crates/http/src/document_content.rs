//! An API document's content as a response, shared by the Publisher and the Developer
//! Portal: text or Markdown inline, files as attachments, URL documents as a redirect.

use crate::ApiError;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tollgate_model::Error;
use tollgate_model::document::Document;
use tollgate_store::Database;
use tollgate_store::documents::{self, Content};

/// The content of document `id` (already found as `doc`).
pub async fn response(shared: &Database, doc: &Document, id: &str) -> Result<Response, ApiError> {
    if doc.source_type == "URL" {
        let url = doc.source_url.clone().unwrap_or_default();
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response());
    }
    match documents::content(shared, id).await? {
        Content::Text(text) => {
            let media = if doc.source_type == "MARKDOWN" {
                "text/markdown; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            };
            Ok(([(header::CONTENT_TYPE, media)], text).into_response())
        }
        Content::File {
            name,
            media_type,
            bytes,
        } => {
            let disposition = format!(
                "attachment; filename=\"{}\"",
                name.replace(['"', '\\', '\r', '\n'], "_")
            );
            Ok((
                [
                    (header::CONTENT_TYPE, media_type),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                Body::from(bytes),
            )
                .into_response())
        }
        Content::None => Err(Error::not_found("document content", id).into()),
    }
}
