//! Reading the `Cookie` header and writing `Set-Cookie`: every portal cookie is
//! `HttpOnly` and `SameSite`, and `Secure` when the portals are served over HTTPS.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// The session cookie: the signed-in user's (opaque) access token.
pub const SESSION: &str = "tg_session";
/// The refresh cookie: the session's refresh token, which renews the session cookie when
/// the browser has dropped it (the access token expired).
pub const REFRESH: &str = "tg_refresh";
/// The sign-in cookie: state, PKCE verifier and where to go after signing in.
pub const SIGN_IN: &str = "tg_signin";
/// The CSRF cookie (double submit: every form echoes it).
pub const CSRF: &str = "tg_csrf";

/// The value of cookie `name`, if the request carries it.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
pub fn set(name: &str, value: &str, path: &str, max_age: u64, same_site: &str, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_a_cookie_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; tg_session=tok"));
        h.append(COOKIE, HeaderValue::from_static("tg_csrf=c"));
        assert_eq!(get(&h, SESSION), Some("tok"));
        assert_eq!(get(&h, CSRF), Some("c"));
        assert_eq!(get(&h, "missing"), None);
    }

    #[test]
    fn set_cookie_is_http_only_and_secure_on_request() {
        let c = set(SESSION, "v", "/", 60, "Lax", true);
        assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Lax"));
        assert!(!set(SESSION, "v", "/", 60, "Lax", false).contains("Secure"));
    }
}
