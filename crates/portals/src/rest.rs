//! The portals' REST client: requests go to the node's own REST router in-process (no
//! socket, same handlers, same checks) with the signed-in user's bearer token, so a page
//! can do exactly what that user could do with the CLI.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use tower::ServiceExt as _;

/// The Developer Portal REST API.
pub const DEVPORTAL: &str = "/api/am/devportal/v3";
/// The Publisher REST API.
pub const PUBLISHER: &str = "/api/am/publisher/v4";
/// The Admin REST API.
pub const ADMIN: &str = "/api/am/admin/v4";

/// The largest REST answer a page reads (an API list, a definition).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// A refused or failed REST call, as a page shows it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestError {
    /// HTTP status of the answer.
    pub status: u16,
    /// The answer's `description` (or `message`), for the top of the form.
    pub message: String,
    /// Per-field problems (`error[].code` → `error[].message`), shown next to each field.
    pub fields: BTreeMap<String, String>,
}

impl RestError {
    fn from_answer(status: StatusCode, body: &Value) -> Self {
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut message = text("description");
        if message.is_empty() {
            message = text("message");
        }
        if message.is_empty() {
            message = text("error_description");
        }
        if message.is_empty() {
            message = format!("the server answered {status}");
        }
        let fields = body
            .get("error")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        Some((
                            i.get("code")?.as_str()?.to_string(),
                            i.get("message")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status: status.as_u16(),
            message,
            fields,
        }
    }

    /// The REST API names nested fields by path (`defaultLimit.requestCount.unitTime`);
    /// forms name them by their last segment.
    pub fn with_short_field_names(mut self) -> Self {
        self.fields = self
            .fields
            .into_iter()
            .map(|(k, v)| (k.rsplit('.').next().unwrap_or(&k).to_string(), v))
            .collect();
        self
    }

    fn internal(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }
}

/// The in-process client.
#[derive(Clone)]
pub struct Rest {
    router: Router,
}

/// A request body for [`Rest::call`].
pub enum Payload {
    /// No body.
    None,
    /// A JSON document.
    Json(Value),
    /// An `application/x-www-form-urlencoded` form (OAuth2 endpoints).
    Form(Vec<(String, String)>),
    /// Raw bytes with their content type (multipart uploads).
    Raw(String, bytes::Bytes),
}

impl Rest {
    /// A client of `router` (the REST routes with their layers, without the portals).
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// `GET path` as `token`'s user (anonymous without one); the JSON answer.
    pub async fn get(&self, token: Option<&str>, path: &str) -> Result<Value, RestError> {
        self.call(Method::GET, path, token, Payload::None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Result<Value, RestError> {
        self.call(Method::POST, path, token, Payload::Json(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, token: Option<&str>, path: &str, body: Value) -> Result<Value, RestError> {
        self.call(Method::PUT, path, token, Payload::Json(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, token: Option<&str>, path: &str) -> Result<Value, RestError> {
        self.call(Method::DELETE, path, token, Payload::None).await
    }

    /// Any call; a non-2xx answer becomes a [`RestError`] with its field errors.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        payload: Payload,
    ) -> Result<Value, RestError> {
        let (status, bytes) = self.call_raw(method, path, token, payload).await?;
        answer(status, &bytes)
    }

    /// `POST path` with a JSON body on behalf of an anonymous visitor at `client` (its
    /// address counts against per-address limits, as if it had called the API itself).
    pub async fn post_from(&self, client: Option<IpAddr>, path: &str, body: Value) -> Result<Value, RestError> {
        let (status, bytes) = self.send(Method::POST, path, None, Payload::Json(body), client).await?;
        answer(status, &bytes)
    }

    /// Any call; the status and the raw answer (document contents, definitions).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        payload: Payload,
    ) -> Result<(StatusCode, bytes::Bytes), RestError> {
        self.send(method, path, token, payload, None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        payload: Payload,
        client: Option<IpAddr>,
    ) -> Result<(StatusCode, bytes::Bytes), RestError> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(ip) = client {
            builder = builder.extension(ConnectInfo(SocketAddr::new(ip, 0)));
        }
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match payload {
            Payload::None => Body::empty(),
            Payload::Json(v) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            Payload::Form(pairs) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(serde_urlencoded::to_string(pairs).unwrap_or_default())
            }
            Payload::Raw(content_type, bytes) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                Body::from(bytes)
            }
        };
        let request = builder
            .body(body)
            .map_err(|e| RestError::internal(format!("cannot build the request: {e}")))?;
        let response = match self.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| RestError::internal(format!("cannot read the answer: {e}")))?
            .to_bytes();
        Ok((status, bytes))
    }
}

/// A JSON answer, or the [`RestError`] a non-2xx one means.
fn answer(status: StatusCode, bytes: &[u8]) -> Result<Value, RestError> {
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    };
    if status.is_success() {
        Ok(body)
    } else {
        Err(RestError::from_answer(status, &body))
    }
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').replace('+', "%20"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_errors_are_read_from_the_reference_envelope() {
        let e = RestError::from_answer(
            StatusCode::BAD_REQUEST,
            &json!({"code": 400, "message": "Bad Request", "description": "name is required",
                    "error": [{"code": "name", "message": "is required"}]}),
        );
        assert_eq!(e.message, "name is required");
        assert_eq!(e.fields.get("name").map(String::as_str), Some("is required"));
    }

    #[test]
    fn enc_escapes_spaces_and_slashes() {
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }
}
