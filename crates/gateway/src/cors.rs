//! CORS per API: the gateway answers preflight requests itself (they carry no token)
//! and adds `Access-Control-Allow-Origin` to actual responses, from the API's
//! `corsConfiguration`.

use crate::answer::SetHeaders;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tollgate_model::api::CorsConfiguration;

/// The origin to echo when `origin` is allowed by `cors`.
fn allowed_origin(cors: &CorsConfiguration, origin: &str) -> Option<HeaderValue> {
    let any = cors.access_control_allow_origins.iter().any(|o| o == "*");
    if any && !cors.access_control_allow_credentials {
        return Some(HeaderValue::from_static("*"));
    }
    if any || cors.access_control_allow_origins.iter().any(|o| o == origin) {
        return HeaderValue::from_str(origin).ok();
    }
    None
}

fn join(values: &[String]) -> Option<HeaderValue> {
    HeaderValue::from_str(&values.join(", ")).ok()
}

/// The preflight answer: 204 with the allowed methods and headers when the origin is
/// allowed, 403 otherwise.
pub fn preflight(cors: &CorsConfiguration, origin: &str) -> Response {
    let Some(allow_origin) = allowed_origin(cors, origin) else {
        return (StatusCode::FORBIDDEN, "CORS: origin not allowed").into_response();
    };
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if let Some(v) = join(&cors.access_control_allow_methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    if let Some(v) = join(&cors.access_control_allow_headers) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if cors.access_control_allow_credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    res
}

/// Adds the CORS headers of an actual response.
pub(crate) fn decorate(cors: &CorsConfiguration, origin: &str, headers: &mut impl SetHeaders) {
    if let Some(allow_origin) = allowed_origin(cors, origin) {
        let origin = (header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin.as_bytes());
        if cors.access_control_allow_credentials {
            headers.set(&[origin, (header::ACCESS_CONTROL_ALLOW_CREDENTIALS, b"true")]);
        } else {
            headers.set(&[origin]);
        }
        headers.add(header::VARY, b"Origin");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> CorsConfiguration {
        CorsConfiguration {
            cors_configuration_enabled: true,
            access_control_allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            access_control_allow_credentials: credentials,
            access_control_allow_headers: vec!["authorization".into()],
            access_control_allow_methods: vec!["GET".into(), "POST".into()],
        }
    }

    #[test]
    fn origins_are_echoed_only_when_allowed() {
        let res = preflight(&cors(&["https://app.example"], false), "https://app.example");
        assert_eq!(res.status(), 204);
        assert_eq!(
            res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
        assert_eq!(
            preflight(&cors(&["https://app.example"], false), "https://evil.example").status(),
            403
        );
        let any = preflight(&cors(&["*"], false), "https://x.example");
        assert_eq!(any.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        // With credentials, `*` is not allowed by browsers: the origin is echoed.
        let creds = preflight(&cors(&["*"], true), "https://x.example");
        assert_eq!(
            creds.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://x.example"
        );
        assert_eq!(creds.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    }
}
