//! The error envelope every REST response uses, in the reference's shape:
//! `{"code": 900901, "message": "Invalid Credentials", "description": "…", "moreInfo": "",
//! "error": [{"code": "username", "message": "…"}]}`, plus extractors whose rejections use it.

use crate::unknown_fields;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tollgate_model::Error;

/// A domain error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

/// The JSON body of every error response.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Constant per kind of rejection (HTTP status, or a reference 9xxxxx code).
    pub code: i64,
    /// Short, stable message.
    pub message: String,
    /// What went wrong and how to fix it.
    pub description: String,
    /// A link with more detail (empty for now, present for reference clients).
    #[serde(rename = "moreInfo")]
    pub more_info: String,
    /// Per-field problems: `code` is the field name, `message` the problem.
    pub error: Vec<ErrorListItem>,
}

/// One entry of [`ErrorBody::error`].
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorListItem {
    /// The field's name.
    pub code: String,
    /// What is wrong with it.
    pub message: String,
}

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %err, "Request failed.");
        }
        let body = ErrorBody {
            code: err.code(),
            message: err.message().to_string(),
            description: err.description(),
            more_info: String::new(),
            error: err
                .field_errors()
                .iter()
                .map(|f| ErrorListItem {
                    code: f.field.clone(),
                    message: f.message.clone(),
                })
                .collect(),
        };
        let retry_after = err.retry_after_secs();
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tollgate\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// A JSON request body. Parse errors come back in the envelope naming the field
/// (`operations[0].verb: invalid type…`). Fields the target type does not know are
/// ignored and named in a `Warning` response header (see [`unknown_fields`]); with
/// `?strict=true` they are a 400 instead, so a WSO2 payload carrying fields Tollgate
/// lacks still works while a typo stays visible.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_body(req).await?;
        Ok(ApiJson(parse_body(&parts, &bytes)?))
    }
}

/// Buffers a request body within the router's body limit (413 beyond it), keeping the
/// request's parts for [`parse_body`].
pub async fn read_body(req: Request) -> Result<(axum::http::request::Parts, Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(body_rejection)?;
    Ok((parts, bytes))
}

/// Parses a JSON request body as `T` with [`ApiJson`]'s rules (JSON content type, field
/// named on errors, unknown fields warned about or, with `strict=true`, refused), for
/// handlers that choose `T` at run time (a policy level from the path, say).
pub fn parse_body<T: DeserializeOwned>(parts: &axum::http::request::Parts, bytes: &[u8]) -> Result<T, ApiError> {
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        });
    if !is_json {
        return Err(ApiError(Error::BadRequest(
            "send the body as JSON with `Content-Type: application/json`".into(),
        )));
    }
    let (value, unknown) = parse_json::<T>(bytes).map_err(ApiError)?;
    let slot = parts.extensions.get::<unknown_fields::UnknownFields>();
    unknown_fields::report(slot, unknown_fields::is_strict(&parts.uri), "", unknown).map_err(ApiError)?;
    Ok(value)
}

/// Parses `bytes` as `T`, returning the value and the paths of fields `T` ignored.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Vec<String>), Error> {
    let mut unknown = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let ignoring = serde_ignored::Deserializer::new(&mut de, &mut record);
    let value: T = serde_path_to_error::deserialize(ignoring).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON: {inner}")
        } else if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        };
        Error::BadRequest(what)
    })?;
    de.end()
        .map_err(|e| Error::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok((value, unknown))
}

/// Maps a failure to read the body: over the size limit is 413, anything else 400.
pub fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(Error::PayloadTooLarge(
            "the request body exceeds management.max_body_bytes".into(),
        ))
    } else {
        ApiError(Error::BadRequest(rejection.body_text()))
    }
}

/// Query parameters whose parse errors come back in the envelope.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError(Error::BadRequest(
                e.body_text()
                    .replace("Failed to deserialize query string: ", "invalid query parameter: "),
            ))),
            Err(other) => Err(ApiError(Error::BadRequest(other.body_text()))),
        }
    }
}

/// `offset` and `limit` as the reference's list operations take them.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct Pagination {
    /// Items to skip.
    pub offset: i64,
    /// Items to return (1–1000).
    pub limit: i64,
}

impl Default for Pagination {
    fn default() -> Self {
        Self { offset: 0, limit: 25 }
    }
}

impl Pagination {
    /// From optional `offset` and `limit` query values, defaulting each. For query structs
    /// that cannot `#[serde(flatten)]` a `Pagination` (flattening makes serde_urlencoded
    /// hand numbers over as strings).
    pub fn from_query(offset: Option<i64>, limit: Option<i64>) -> Self {
        let d = Self::default();
        Self {
            offset: offset.unwrap_or(d.offset),
            limit: limit.unwrap_or(d.limit),
        }
    }

    /// Rejects negative offsets and limits outside 1–1000, naming the parameter.
    pub fn validate(self) -> Result<Self, ApiError> {
        if self.offset < 0 {
            return Err(Error::field("offset", "must be 0 or more").into());
        }
        if !(1..=1000).contains(&self.limit) {
            return Err(Error::field("limit", "must be between 1 and 1000").into());
        }
        Ok(self)
    }

    /// The `pagination` object of a list body.
    pub fn info(&self, total: i64) -> PaginationInfo {
        PaginationInfo {
            offset: self.offset,
            limit: self.limit,
            total,
        }
    }
}

/// The `pagination` object of every list body (the reference's `Pagination` schema; its
/// `next`/`previous` links are not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Pagination)]
pub struct PaginationInfo {
    /// Items skipped.
    pub offset: i64,
    /// Items asked for.
    pub limit: i64,
    /// Items in the whole list.
    pub total: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        verb: String,
    }

    #[test]
    fn unknown_fields_are_listed_with_their_path() {
        let (_, unknown) =
            parse_json::<Body>(br#"{"name":"a","extra":1,"items":[{"verb":"GET","oops":true}]}"#).unwrap();
        assert_eq!(unknown, ["extra", "items.0.oops"]);
    }

    #[test]
    fn type_errors_name_the_field_and_syntax_errors_say_so() {
        let e = parse_json::<Body>(br#"{"name":"a","items":[{"verb":7}]}"#).unwrap_err();
        assert!(e.description().starts_with("items[0].verb:"), "{}", e.description());
        let e = parse_json::<Body>(br#"{"items":[]}"#).unwrap_err();
        assert!(e.description().contains("name"), "{}", e.description());
        let e = parse_json::<Body>(br#"{"name":"a""#).unwrap_err();
        assert!(e.description().contains("not valid JSON"), "{}", e.description());
        let e = parse_json::<Body>(br#"{"name":"a"} trailing"#).unwrap_err();
        assert!(e.description().contains("not valid JSON"), "{}", e.description());
    }
}
