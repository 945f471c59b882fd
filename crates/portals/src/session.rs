//! Signing in to the portals through the key manager's login page (OAuth2 authorization
//! code with PKCE, the built-in public client `tollgate-portals`), the session cookie
//! that holds the resulting opaque access token (renewed with its refresh token when it
//! expires), and signing out (both tokens are revoked).
//! Every page learns who is calling through the [`Visitor`] extractor.

use crate::csrf::{CsrfToken, random_token, same};
use crate::rest::{Payload, RestError};
use crate::{PortalsState, cookies};
use axum::Router;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_model::{Principal, Role, Tenant};
use tollgate_tokens::portals_client::{PORTALS_CALLBACK, PORTALS_CLIENT_ID};

/// How long a sign-in may take between leaving for the login page and coming back.
const SIGN_IN_SECONDS: u64 = 600;

/// The session cookie expires this much before its token, so that a page is never served
/// with a token that runs out while it is drawn.
const SESSION_MARGIN_SECONDS: u64 = 30;

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Session {
    /// The access token (sent as `Bearer` to the REST APIs).
    pub token: String,
    /// Who it belongs to, with their roles.
    pub principal: Principal,
}

/// Whoever is calling a page: signed in or not, with the CSRF token for its forms.
#[derive(Clone, Debug)]
pub struct Visitor {
    /// The session, when the session cookie holds a live token.
    pub session: Option<Session>,
    /// The CSRF token forms must echo.
    pub csrf: String,
    /// The page's path and query (where to come back to after signing in).
    pub path: String,
    /// The tenant the page names by `?tenant=acme.com` (lower-cased; `None` for none or
    /// the super tenant): whose Developer Portal an anonymous visitor browses.
    pub tenant: Option<String>,
}

impl Visitor {
    /// The bearer token for REST calls (`None`: anonymous).
    pub fn token(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.token.as_str())
    }

    /// Whether the visitor is signed in and holds `role` (or `admin`).
    pub fn has(&self, role: Role) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.principal.roles.iter().any(|r| r.satisfies(role)))
    }

    /// The signed-in user's name as they sign in (`alice@acme.com`, `alice` in the super
    /// tenant), or "".
    pub fn username(&self) -> String {
        self.session
            .as_ref()
            .map(|s| s.principal.qualified_name())
            .unwrap_or_default()
    }

    /// The tenant whose catalogue an anonymous visitor browses (`?tenant=`). `None` for
    /// the super tenant and for signed-in visitors, who act in their own tenant.
    pub fn browsing(&self) -> Option<&str> {
        match self.session {
            Some(_) => None,
            None => self.tenant.as_deref(),
        }
    }

    /// A Developer Portal REST `path` for this visitor: with `tenant=` when browsing a
    /// tenant anonymously (the REST API takes a signed-in caller's tenant from the token).
    pub fn in_tenant(&self, path: &str) -> String {
        match self.browsing() {
            Some(domain) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{path}{sep}tenant={}", crate::rest::enc(domain))
            }
            None => path.to_string(),
        }
    }

    /// The tenant named by the page that a signed-in visitor cannot browse (not their
    /// own), for a notice saying so.
    pub fn other_tenant(&self) -> Option<&str> {
        let own = &self.session.as_ref()?.principal.tenant_domain;
        self.tenant.as_deref().filter(|t| t != own)
    }

    /// What templates see as `visitor`. `tenant` is the tenant shown in the header
    /// (empty for the super tenant); `tenant_query` (`?tenant=acme.com`) and `tenant_amp`
    /// (`&tenant=acme.com`) keep an anonymous visitor's tenant in Developer Portal links.
    pub fn template_value(&self) -> Value {
        let tenant = match &self.session {
            Some(s) if s.principal.tenant_domain != Tenant::DEFAULT_DOMAIN => s.principal.tenant_domain.clone(),
            Some(_) => String::new(),
            None => self.tenant.clone().unwrap_or_default(),
        };
        let query = self
            .browsing()
            .map(|d| format!("tenant={}", crate::rest::enc(d)))
            .unwrap_or_default();
        json!({
            "signed_in": self.session.is_some(),
            "username": self.username(),
            "admin": self.has(Role::Admin),
            "creator": self.has(Role::Creator),
            "publisher": self.has(Role::Publisher),
            "subscriber": self.has(Role::Subscriber),
            "path": self.path,
            "tenant": tenant,
            "tenant_query": if query.is_empty() { String::new() } else { format!("?{query}") },
            "tenant_amp": if query.is_empty() { String::new() } else { format!("&{query}") },
            "other_tenant": self.other_tenant(),
        })
    }

    /// The session if the visitor holds one of `roles`; otherwise the response to send:
    /// the sign-in redirect for anonymous visitors, the 403 page for the rest.
    // The error is the page to send at once; boxing it would only add an allocation.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, state: &PortalsState, roles: &[Role]) -> Result<&Session, Response> {
        let Some(session) = &self.session else {
            return Err(sign_in_redirect(&self.path));
        };
        if roles.is_empty() || roles.iter().any(|r| self.has(*r)) {
            Ok(session)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(state.pages().forbidden(self, &names.join(" or ")))
        }
    }
}

/// A 303 to the sign-in start, coming back to `next`.
pub fn sign_in_redirect(next: &str) -> Response {
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    see_other(&format!("/portals/sign-in?{query}"))
}

/// A 303 See Other (after a form, the browser GETs the target).
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

impl FromRequestParts<PortalsState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &PortalsState) -> Result<Self, Self::Rejection> {
        let csrf = parts
            .extensions
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let path = if parts.method == Method::GET {
            path
        } else {
            parts.uri.path().to_string()
        };
        let session = match cookies::get(&parts.headers, cookies::SESSION) {
            Some(token) if token.len() < 512 => {
                let header = format!("Bearer {token}");
                match state.authenticator().authenticate(Some(&header)).await {
                    Ok(principal) => Some(Session {
                        token: token.to_string(),
                        principal,
                    }),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let tenant = page_tenant(&parts.uri);
        Ok(Visitor {
            session,
            csrf,
            path,
            tenant,
        })
    }
}

/// The tenant a page's `?tenant=` names (lower-cased, as the REST API reads it); `None`
/// when it names none or the super tenant. Forms keep it in their action's query, so
/// that a POST reads it too.
fn page_tenant(uri: &axum::http::Uri) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query()?).ok()?;
    pairs
        .into_iter()
        .find(|(k, v)| k == "tenant" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .filter(|d| d != Tenant::DEFAULT_DOMAIN)
}

/// The sign-in, callback and sign-out routes.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route("/portals/sign-in", get(sign_in))
        .route(PORTALS_CALLBACK, get(callback))
        .route("/portals/sign-out", post(sign_out))
}

/// `next` when it is a path on this site that every browser reads the same way: it starts
/// with a single `/`, holds only visible ASCII, and, percent-decoded (repeatedly), holds
/// no backslash, control or whitespace character and does not start with `//` or `/\`.
/// Anything else (`//evil.example`, `/\evil.example`, `/%09/evil.example`, which
/// browsers drop the tab from and follow to another site) is `None`: go home instead.
pub fn local_path(next: &str) -> Option<&str> {
    let plain = |s: &str| {
        s.starts_with('/')
            && !s.starts_with("//")
            && !s.starts_with("/\\")
            && !s.contains('\\')
            && !s.chars().any(|c| c.is_control() || c.is_whitespace())
    };
    if !plain(next) || !next.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut current = next.to_string();
    // Decoding stops changing after a few rounds for any honest path.
    for _ in 0..4 {
        let decoded = percent_encoding::percent_decode_str(&current).decode_utf8().ok()?;
        if decoded == current {
            return Some(next);
        }
        if !plain(&decoded) {
            return None;
        }
        current = decoded.into_owned();
    }
    None
}

#[derive(Deserialize)]
struct SignInQuery {
    next: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts signing in: remembers state, PKCE verifier and `next` in a short-lived cookie,
/// then sends the browser to the key manager's login page.
async fn sign_in(State(state): State<PortalsState>, Query(q): Query<SignInQuery>) -> Response {
    let next = q.next.as_deref().and_then(local_path).unwrap_or(state.home());
    let (flow_state, verifier) = (random_token(), random_token());
    if flow_state.is_empty() || verifier.is_empty() {
        return state.pages().error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot sign in now",
            "The server has no source of randomness. Try again later.",
        );
    }
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", PORTALS_CLIENT_ID),
        ("redirect_uri", PORTALS_CALLBACK),
        ("state", flow_state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    let mut res = see_other(&format!("/oauth2/authorize?{query}"));
    let cookie = cookies::set(
        cookies::SIGN_IN,
        &format!("{flow_state}.{verifier}.{}", b64(next.as_bytes())),
        "/portals",
        SIGN_IN_SECONDS,
        "Lax",
        state.secure_cookies(),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from the login page: checks the state, exchanges the code for a token and sets
/// the session cookie.
async fn callback(State(state): State<PortalsState>, Query(q): Query<CallbackQuery>, headers: HeaderMap) -> Response {
    let failed = |message: &str| {
        state
            .pages()
            .error(StatusCode::BAD_REQUEST, "Sign-in did not complete", message)
    };
    if let Some(error) = q.error {
        return failed(&format!(
            "The key manager said {error}: {}. Sign in again.",
            q.error_description.unwrap_or_default()
        ));
    }
    let Some(remembered) = cookies::get(&headers, cookies::SIGN_IN) else {
        return failed("This browser did not start the sign-in (or it took longer than 10 minutes). Sign in again.");
    };
    let mut pieces = remembered.splitn(3, '.');
    let (Some(flow_state), Some(verifier), Some(next)) = (pieces.next(), pieces.next(), pieces.next()) else {
        return failed("The sign-in cookie is damaged. Sign in again.");
    };
    if !same(q.state.as_deref().unwrap_or(""), flow_state) {
        return failed("The sign-in answer does not belong to this browser's sign-in. Sign in again.");
    }
    let next = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(next)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let next = next.as_deref().and_then(local_path).unwrap_or(state.home());
    let form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), q.code.unwrap_or_default()),
        ("redirect_uri".to_string(), PORTALS_CALLBACK.to_string()),
        ("client_id".to_string(), PORTALS_CLIENT_ID.to_string()),
        ("code_verifier".to_string(), verifier.to_string()),
    ];
    let answer = match state
        .rest()
        .call(Method::POST, "/oauth2/token", None, Payload::Form(form))
        .await
    {
        Ok(a) => a,
        Err(RestError { message, .. }) => return failed(&format!("The key manager refused the sign-in: {message}.")),
    };
    let Some((_, session_cookies)) = session_cookies(&answer, &state) else {
        return failed("The key manager's answer had no access token.");
    };
    let mut res = see_other(next);
    let done = cookies::set(cookies::SIGN_IN, "", "/portals", 0, "Lax", state.secure_cookies());
    append_cookies(&mut res, session_cookies.into_iter().chain([done]));
    res
}

/// The session's access token and the cookies that hold it (and its refresh token), from
/// a token endpoint answer; `None` when it has no access token. The refresh cookie lives
/// exactly as long as the refresh token (`key_manager.refresh_token_validity`; every
/// refresh issues a new one for as long), so that the browser neither keeps a dead token
/// nor drops a live one.
fn session_cookies(answer: &Value, state: &PortalsState) -> Option<(String, Vec<String>)> {
    let secure = state.secure_cookies();
    let token = answer.get("access_token").and_then(Value::as_str)?;
    let expires_in = answer.get("expires_in").and_then(Value::as_u64)?;
    let lifetime = expires_in.saturating_sub(SESSION_MARGIN_SECONDS).max(1);
    let mut set = vec![cookies::set(cookies::SESSION, token, "/", lifetime, "Lax", secure)];
    if let Some(refresh) = answer.get("refresh_token").and_then(Value::as_str) {
        set.push(cookies::set(
            cookies::REFRESH,
            refresh,
            "/",
            state.refresh_lifetime().as_secs().max(1),
            "Lax",
            secure,
        ));
    }
    Some((token.to_string(), set))
}

fn append_cookies(res: &mut Response, cookies: impl IntoIterator<Item = String>) {
    for cookie in cookies {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
}

/// Middleware: when the browser has dropped the session cookie (its token expired) but
/// holds a refresh token, renews the session before the page is drawn, so that signed-in
/// people stay signed in for as long as the refresh token lasts. A refresh the key
/// manager refuses deletes the refresh cookie, and the page treats the visitor as signed
/// out. Static files and the sign-in routes are left alone.
pub async fn renew(State(state): State<PortalsState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/portals/") || cookies::get(req.headers(), cookies::SESSION).is_some() {
        return next.run(req).await;
    }
    let Some(refresh) = cookies::get(req.headers(), cookies::REFRESH).map(str::to_string) else {
        return next.run(req).await;
    };
    let form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), refresh),
        ("client_id".to_string(), PORTALS_CLIENT_ID.to_string()),
    ];
    let secure = state.secure_cookies();
    let renewed = state
        .rest()
        .call(Method::POST, "/oauth2/token", None, Payload::Form(form))
        .await
        .ok()
        .and_then(|answer| session_cookies(&answer, &state));
    match renewed {
        Some((token, set)) => {
            // This request already counts as signed in with the new token.
            if let Ok(v) = HeaderValue::from_str(&format!("{}={token}", cookies::SESSION)) {
                req.headers_mut().append(COOKIE, v);
            }
            let mut res = next.run(req).await;
            append_cookies(&mut res, set);
            res
        }
        None => {
            let mut res = next.run(req).await;
            append_cookies(&mut res, [cookies::set(cookies::REFRESH, "", "/", 0, "Lax", secure)]);
            res
        }
    }
}

/// Signs out: revokes the session's access and refresh tokens and deletes their cookies.
async fn sign_out(State(state): State<PortalsState>, visitor: Visitor, headers: HeaderMap) -> Response {
    let tokens = visitor
        .token()
        .into_iter()
        .chain(cookies::get(&headers, cookies::REFRESH));
    for token in tokens {
        let form = vec![
            ("token".to_string(), token.to_string()),
            ("client_id".to_string(), PORTALS_CLIENT_ID.to_string()),
        ];
        if let Err(e) = state
            .rest()
            .call(Method::POST, "/oauth2/revoke", None, Payload::Form(form))
            .await
        {
            tracing::warn!(error = %e.message, "Cannot revoke a portal session's token.");
        }
    }
    let mut res = see_other(state.home());
    let secure = state.secure_cookies();
    append_cookies(
        &mut res,
        [
            cookies::set(cookies::SESSION, "", "/", 0, "Lax", secure),
            cookies::set(cookies::REFRESH, "", "/", 0, "Lax", secure),
        ],
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(page: &str, signed_in_to: Option<&str>) -> Visitor {
        let uri: axum::http::Uri = page.parse().unwrap_or_else(|e| panic!("{page}: {e}"));
        Visitor {
            session: signed_in_to.map(|domain| Session {
                token: "t".into(),
                principal: Principal {
                    user_id: tollgate_model::UserId::new(),
                    tenant_id: tollgate_model::TenantId::new(),
                    tenant_domain: domain.into(),
                    username: "alice".into(),
                    roles: vec![Role::Subscriber],
                    custom_roles: Vec::new(),
                    scopes: None,
                },
            }),
            csrf: String::new(),
            path: page.into(),
            tenant: page_tenant(&uri),
        }
    }

    #[test]
    fn a_page_names_its_tenant_by_query_and_only_anonymous_visitors_pass_it_on() {
        for (page, want) in [
            ("/devportal?tenant=acme.com", Some("acme.com")),
            ("/devportal?q=pets&tenant=%20Acme.COM%20", Some("acme.com")),
            ("/devportal?tenant=carbon.super", None),
            ("/devportal?tenant=", None),
            ("/devportal?tag=x", None),
            ("/devportal", None),
        ] {
            assert_eq!(visitor(page, None).tenant.as_deref(), want, "{page}");
        }
        let anon = visitor("/devportal/apis/1?tenant=acme.com", None);
        assert_eq!(anon.in_tenant("/api/x"), "/api/x?tenant=acme.com");
        assert_eq!(anon.in_tenant("/api/x?limit=5"), "/api/x?limit=5&tenant=acme.com");
        assert_eq!(anon.template_value()["tenant_query"], "?tenant=acme.com");
        assert_eq!(anon.template_value()["tenant"], "acme.com");
        // Signed in: the token decides; a page naming another tenant gets a notice.
        let member = visitor("/devportal?tenant=beta.com", Some("acme.com"));
        assert_eq!(member.in_tenant("/api/x"), "/api/x");
        assert_eq!(member.template_value()["tenant_query"], "");
        assert_eq!(member.template_value()["tenant"], "acme.com");
        assert_eq!(member.template_value()["username"], "alice@acme.com");
        assert_eq!(member.other_tenant(), Some("beta.com"));
        assert_eq!(
            visitor("/devportal?tenant=acme.com", Some("acme.com")).other_tenant(),
            None
        );
        let main = visitor("/devportal", Some("carbon.super"));
        assert_eq!(main.template_value()["tenant"], "");
        assert_eq!(main.template_value()["username"], "alice");
    }

    #[test]
    fn only_paths_on_this_site_are_followed_after_sign_in() {
        for ok in [
            "/publisher/apis",
            "/devportal/apis?query=name%3Apets&offset=25",
            "/devportal/apis/01a2-b3/documents#usage",
            "/admin/users?q=100%25",
            "/",
        ] {
            assert_eq!(local_path(ok), Some(ok), "{ok}");
        }
        for attack in [
            "//evil.example/",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/\\evil.example",
            "/evil\\..\\example",
            "/%09/evil.example.com",
            "/\t/evil.example.com",
            "/%0a/evil.example.com",
            "/%0d%0aSet-Cookie:x=1",
            "/%00/evil.example.com",
            "/%20/evil.example.com",
            "/ /evil.example.com",
            "/%2F/evil.example.com",
            "/%2f%2fevil.example.com",
            "/%5C/evil.example.com",
            "/%5cevil.example.com",
            "/%252F%252Fevil.example.com",
            "/%25252F%25252Fevil.example.com",
            "/%E2%80%A8/evil.example.com",
            "/%C2%A0/evil.example.com",
            "/\u{3000}/evil.example.com",
            "/%7F/evil.example.com",
            "/%ff/evil.example.com",
            "/caf\u{e9}",
        ] {
            assert_eq!(local_path(attack), None, "{attack:?}");
        }
    }
}
