//! Cross-site request forgery protection for every portal form: a random token in a
//! `SameSite=Strict` cookie that each form echoes in a hidden `csrf` field (multipart
//! forms: in the action's `csrf` query parameter), compared in constant time, plus an
//! `Origin` check. A page from another site can neither read the cookie nor guess the
//! token, so its POST is refused before any handler runs.

use crate::PortalsState;
use crate::cookies;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use http_body_util::BodyExt as _;

/// The largest form body the CSRF check reads (an OpenAPI file upload is multipart and
/// not read here).
const MAX_FORM_BYTES: usize = 1 << 20;

/// The CSRF token of this browser, for templates (`csrf` in every form).
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

/// A fresh random token (32 bytes, base64url).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // Without OS randomness no token can be trusted; an empty one never matches.
        tracing::error!("No OS randomness for a CSRF token.");
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether two tokens are equal, in constant time.
pub fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

fn field(query_or_form: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query_or_form)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Whether the `Origin` header, when a browser sent one, names this host.
fn same_origin(req: &Request) -> bool {
    let Some(origin) = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = req.headers().get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The middleware: gives every visitor a token, and refuses an unsafe request whose
/// token does not match (403 page, nothing changed).
pub async fn protect(State(state): State<PortalsState>, req: Request, next: Next) -> Response {
    let existing = cookies::get(req.headers(), cookies::CSRF)
        .filter(|t| well_formed(t))
        .map(String::from);
    let (token, fresh) = match existing {
        Some(t) => (t, false),
        None => (random_token(), true),
    };
    let mut req = req;
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        match checked(req, &token, fresh).await {
            Ok(r) => req = r,
            Err(reason) => {
                tracing::warn!(reason, "Refused a portal form without a valid CSRF token.");
                return state.pages().error(
                    StatusCode::FORBIDDEN,
                    "This form cannot be accepted",
                    "It was sent from another site, or from a page that is too old. Go back, reload the page and send it again.",
                );
            }
        }
    }
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut res = next.run(req).await;
    if fresh
        && let Ok(v) = HeaderValue::from_str(&cookies::set(
            cookies::CSRF,
            &token,
            "/",
            86_400 * 30,
            "Strict",
            state.secure_cookies(),
        ))
    {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

/// Checks an unsafe request's token and gives the request back (its body re-attached).
async fn checked(req: Request, token: &str, fresh: bool) -> Result<Request, &'static str> {
    if !same_origin(&req) {
        return Err("the Origin header names another site");
    }
    if fresh {
        return Err("the browser sent no CSRF cookie");
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let submitted = req.uri().query().and_then(|q| field(q, "csrf")).unwrap_or_default();
        return if same(&submitted, token) {
            Ok(req)
        } else {
            Err("the multipart form's csrf parameter does not match")
        };
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err("portal forms are urlencoded or multipart");
    }
    let (parts, body) = req.into_parts();
    let bytes = http_body_util::Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|_| "the form is too large or could not be read")?
        .to_bytes();
    let submitted = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| field(s, "csrf"))
        .unwrap_or_default();
    if !same(&submitted, token) {
        return Err("the form's csrf field does not match");
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = random_token();
        assert!(well_formed(&a));
        assert_ne!(a, random_token());
        assert!(!well_formed("short"));
    }

    #[test]
    fn an_empty_token_never_matches() {
        assert!(!same("", ""));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
    }

    #[test]
    fn origin_must_name_the_host() {
        let req = |origin: &str| {
            Request::builder()
                .header(HOST, "127.0.0.1:9443")
                .header(ORIGIN, origin)
                .body(Body::empty())
                .unwrap_or_default()
        };
        assert!(same_origin(&req("http://127.0.0.1:9443")));
        assert!(!same_origin(&req("http://127.0.0.1:8000")));
        assert!(!same_origin(&req("null")));
    }
}
