//! OAuth2 request plumbing: form bodies (parameters must not repeat, RFC 6749 §3.2),
//! client authentication by HTTP Basic or form fields (§2.3.1), and error responses in
//! the RFC's JSON shape with `no-store` caching.

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::collections::HashMap;
use tollgate_tokens::{ClientAuth, OAuthError};

/// A parsed `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    /// Parses a form body; a repeated parameter is `invalid_request`.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "send parameters as application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("the form body is malformed"))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(OAuthError::invalid_request(format!("parameter `{k}` is repeated")));
            }
        }
        Ok(Self(map))
    }

    /// A parameter, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter `{name}` is required")))
    }
}

fn url_decode(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

/// The client's credentials, from `Authorization: Basic` (URL-encoded id and secret, as
/// RFC 6749 §2.3.1 says) or the `client_id`/`client_secret` form fields, never both.
/// `Ok(None)` when neither is present.
pub fn client_auth(headers: &HeaderMap, form: &Form) -> Result<Option<ClientAuth>, OAuthError> {
    let header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let from_header = match header {
        Some(value) => {
            let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client("use HTTP Basic client authentication"));
            }
            let malformed = || OAuthError::invalid_client("malformed Basic credentials");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| malformed())?;
            let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
            Some(ClientAuth {
                client_id: url_decode(id).ok_or_else(malformed)?,
                client_secret: url_decode(secret).ok_or_else(malformed)?,
            })
        }
        None => None,
    };
    let in_form = form.get("client_secret").is_some();
    match (from_header, in_form) {
        (Some(_), true) => Err(OAuthError::invalid_request(
            "send client credentials either in the Authorization header or in the body, not both",
        )),
        (Some(auth), false) => Ok(Some(auth)),
        (None, true) => Ok(Some(ClientAuth {
            client_id: form.require("client_id")?.to_string(),
            client_secret: form.require("client_secret")?.to_string(),
        })),
        (None, false) => Ok(None),
    }
}

/// An OAuth2 error as a response.
pub struct OAuthResponse(pub OAuthError);

impl From<OAuthError> for OAuthResponse {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl IntoResponse for OAuthResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut res = (status, axum::Json(&self.0)).into_response();
        let headers = res.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tollgate\""));
        }
        res
    }
}

/// A JSON body with the `no-store` headers token responses need (RFC 6749 §5.1).
pub fn no_store_json<T: serde::Serialize>(body: &T) -> Response {
    let mut res = axum::Json(body).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h
    }

    #[test]
    fn repeated_parameters_and_wrong_content_types_are_invalid_requests() {
        let e = Form::parse(&form_headers(), b"grant_type=a&grant_type=b").unwrap_err();
        assert_eq!(e.error, "invalid_request");
        assert!(e.error_description.contains("grant_type"));
        let e = Form::parse(&HeaderMap::new(), b"grant_type=a").unwrap_err();
        assert_eq!(e.error, "invalid_request");
    }

    #[test]
    fn basic_credentials_are_url_decoded_and_exclusive_with_the_body() {
        let mut h = form_headers();
        let creds = base64::engine::general_purpose::STANDARD.encode("my%20id:s%3Acret");
        h.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Basic {creds}")).unwrap());
        let form = Form::parse(&h, b"grant_type=client_credentials").unwrap();
        let auth = client_auth(&h, &form).unwrap().unwrap();
        assert_eq!(
            (auth.client_id.as_str(), auth.client_secret.as_str()),
            ("my id", "s:cret")
        );
        let both = Form::parse(&h, b"client_id=x&client_secret=y").unwrap();
        assert_eq!(client_auth(&h, &both).unwrap_err().error, "invalid_request");
        let none = Form::parse(&form_headers(), b"grant_type=x").unwrap();
        assert!(client_auth(&form_headers(), &none).unwrap().is_none());
    }
}
