//! Multipart form bodies for the REST APIs (OpenAPI import and validation, document
//! content), with every refusal in the JSON error envelope.
//!
//! axum's own `Multipart` extractor answers a missing or invalid boundary with a plain-text
//! body ("Invalid `boundary` for `multipart/form-data` request"), which clients of a JSON
//! API cannot read as an error; this extractor and [`read_error`] put those refusals in the
//! envelope, with 413 where the body limit was passed.

use crate::ApiError;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use tollgate_model::Error;

/// A `multipart/form-data` body; a request that is not one (no boundary, another content
/// type) is refused with 400 in the error envelope, naming `Content-Type`.
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|rejection| {
                ApiError(Error::field(
                    "Content-Type",
                    format!(
                        "must be multipart/form-data with a boundary ({})",
                        rejection.body_text()
                    ),
                ))
            })
    }
}

impl ApiMultipart {
    /// The next part, or `None` at the end; a malformed body is a 400 (413 past the body
    /// limit) in the envelope.
    pub async fn next_field(&mut self) -> Result<Option<Field<'_>>, ApiError> {
        self.0.next_field().await.map_err(read_error)
    }

    /// Every part by name, read into memory (the body limit bounds the total); a name
    /// sent twice keeps its last part.
    pub async fn into_parts(mut self) -> Result<std::collections::HashMap<String, Vec<u8>>, ApiError> {
        let mut parts = std::collections::HashMap::new();
        while let Some(field) = self.next_field().await? {
            let name = field.name().unwrap_or("").to_string();
            let bytes = field.bytes().await.map_err(read_error)?;
            parts.insert(name, bytes.to_vec());
        }
        Ok(parts)
    }
}

/// The envelope's error for a multipart body that cannot be read: 413 when the body limit
/// was passed, else 400.
pub fn read_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(Error::PayloadTooLarge(
            "the request body exceeds management.max_body_bytes".into(),
        ))
    } else {
        ApiError(Error::BadRequest(format!(
            "malformed multipart/form-data body: {}",
            e.body_text()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::response::IntoResponse;

    async fn extract(content_type: &str, body: &'static str) -> Result<ApiMultipart, ApiError> {
        let req = Request::builder()
            .method("POST")
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        ApiMultipart::from_request(req, &()).await
    }

    async fn json_of(e: ApiError) -> (u16, serde_json::Value) {
        let response = e.into_response();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("application/json"), "{content_type}");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_missing_or_invalid_boundary_is_an_enveloped_400_naming_the_header() {
        for content_type in ["multipart/form-data", "application/json; boundary=X", "text/plain"] {
            let Err(e) = extract(content_type, "x").await else {
                panic!("{content_type} was taken as a form")
            };
            let (status, body) = json_of(e).await;
            assert_eq!(status, 400, "{content_type}: {body}");
            assert_eq!(body["code"], 400, "{body}");
            assert_eq!(body["error"][0]["code"], "Content-Type", "{content_type}: {body}");
        }
    }

    #[tokio::test]
    async fn a_malformed_body_is_an_enveloped_400() {
        let mut form = extract("multipart/form-data; boundary=X", "--X\r\nno blank line")
            .await
            .ok()
            .unwrap();
        let Err(e) = form.next_field().await else {
            panic!("a part was read")
        };
        let (status, body) = json_of(e).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["description"].as_str().unwrap().contains("multipart"), "{body}");
    }
}
