//! The error envelope every REST response uses, in the reference's shape:
//! `{"code": 900901, "message": "Invalid Credentials", "description": "…", "moreInfo": "",
//! "error": [{"code": "username", "message": "…"}]}`, plus extractors whose rejections use it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tollgate_model::Error;

/// A domain error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

/// The JSON body of every error response.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
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
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
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
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tollgate\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// A JSON request body whose parse errors come back in the envelope, naming the field
/// (`username: invalid type: integer, expected a string`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Error::BadRequest("send the body as JSON with `Content-Type: application/json`".into())
        }
        JsonRejection::JsonDataError(e) => Error::BadRequest(
            e.body_text()
                .replace("Failed to deserialize the JSON body into the target type: ", ""),
        ),
        JsonRejection::JsonSyntaxError(e) => {
            Error::BadRequest(format!("the body is not valid JSON: {}", e.body_text()))
        }
        other => Error::BadRequest(other.body_text()),
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
    pub fn body(&self, total: i64) -> serde_json::Value {
        serde_json::json!({ "offset": self.offset, "limit": self.limit, "total": total })
    }
}
