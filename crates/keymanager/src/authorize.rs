//! `GET/POST /oauth2/authorize`: the authorization-code grant's login page (RFC 6749
//! §4.1.1, PKCE S256 mandatory). Errors about the client or redirect URI are shown on
//! the page (never redirected to an unverified URI); the rest go back to the client.

use crate::KeyManagerState;
use crate::form::Form;
use axum::extract::{RawQuery, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, X_FRAME_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use tollgate_model::Tenant;
use tollgate_store::keys::ClientRow;
use tollgate_tokens::{portals_client, scopes};

/// The authorization request's parameters, carried through the login form.
#[derive(Debug, Default, Clone)]
struct AuthorizeParams {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    response_type: String,
    nonce: String,
}

impl AuthorizeParams {
    fn from_map(m: &HashMap<String, String>) -> Self {
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        Self {
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            response_type: get("response_type"),
            nonce: get("nonce"),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, Html(body)).into_response();
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
    );
    res
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}\
label{display:block;margin-top:1rem}input{width:100%;padding:.5rem;font-size:1rem}\
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}.error{color:#a00}";

fn error_page(message: &str) -> Response {
    page_response(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width\"><title>Sign-in error</title><style>{STYLE}</style></head><body>\
             <h1>Cannot sign in</h1><p class=\"error\" role=\"alert\">{}</p></body></html>",
            escape(message)
        ),
    )
}

fn login_page(p: &AuthorizeParams, app_name: &str, error: Option<&str>, username: &str) -> Response {
    let hidden: String = [
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
        ("response_type", &p.response_type),
        ("nonce", &p.nonce),
    ]
    .iter()
    .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", escape(v)))
    .collect();
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page_response(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width\"><title>Sign in to Tollgate</title><style>{STYLE}</style></head><body>\
             <h1>Sign in</h1><p><strong>{app}</strong> asks to act for you{scopes}.</p>{error_html}\
             <form method=\"post\" action=\"/oauth2/authorize\">{hidden}\
             <label for=\"username\">Username</label><input id=\"username\" name=\"username\" \
             autocomplete=\"username\" required value=\"{user}\">\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in and allow</button></form></body></html>",
            app = escape(app_name),
            scopes = if p.scope.is_empty() {
                String::new()
            } else {
                format!(" with the scopes <code>{}</code>", escape(&p.scope))
            },
            user = escape(username),
        ),
    )
}

/// `text` with its first letter in upper case, for a sentence on the page.
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn redirect(uri: &str, params: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{sep}{query}");
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            let mut res = StatusCode::FOUND.into_response();
            res.headers_mut().insert(LOCATION, v);
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => error_page("the redirect URI is not a valid header value"),
    }
}

fn redirect_error(p: &AuthorizeParams, error: &str, description: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if !p.state.is_empty() {
        params.push(("state", p.state.as_str()));
    }
    redirect(&p.redirect_uri, &params)
}

/// Checks the client and redirect URI (errors shown on the page), then the rest of the
/// request (errors sent back to the client). The client and, for an application's
/// client, its (active) tenant: the only tenant whose users it serves.
async fn validate(state: &KeyManagerState, p: &AuthorizeParams) -> Result<(ClientRow, Option<Tenant>), Response> {
    if p.client_id.is_empty() {
        return Err(error_page("the request has no client_id"));
    }
    let client = match state.tokens.find_client(&p.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(error_page("unknown client_id")),
        Err(e) => {
            tracing::error!(error = %e, "Cannot look up a client.");
            return Err(error_page("the key manager failed; try again"));
        }
    };
    let registered = client.key.callback_url.clone().unwrap_or_default();
    if registered.is_empty() {
        return Err(error_page(
            "this application's keys have no callback URL; set callbackUrl when generating keys",
        ));
    }
    if p.redirect_uri != registered {
        return Err(error_page("redirect_uri does not match the application's callback URL"));
    }
    let tenant = crate::token::client_tenant(state, &client)
        .await
        .map_err(|e| error_page(&e.error_description))?;
    if p.response_type != "code" {
        return Err(redirect_error(
            p,
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let grants: Vec<String> = serde_json::from_str(&client.key.grant_types).unwrap_or_default();
    if !grants.iter().any(|g| g == "authorization_code") {
        return Err(redirect_error(
            p,
            "unauthorized_client",
            "this client may not use the authorization_code grant",
        ));
    }
    if p.code_challenge_method != "S256" || p.code_challenge.len() != 43 {
        return Err(redirect_error(
            p,
            "invalid_request",
            "PKCE is required: send code_challenge (BASE64URL(SHA-256(verifier)), 43 characters) with code_challenge_method=S256",
        ));
    }
    Ok((client, tenant))
}

/// Shows the login page.
pub async fn page(State(state): State<KeyManagerState>, RawQuery(query): RawQuery) -> Response {
    let map: HashMap<String, String> = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let p = AuthorizeParams::from_map(&map);
    match validate(&state, &p).await {
        Ok((client, _)) => login_page(&p, &client.application_name, None, ""),
        Err(res) => res,
    }
}

/// Checks the user's credentials and redirects back with a code.
pub async fn submit(State(state): State<KeyManagerState>, req: Request) -> Response {
    let ip = crate::token::client_ip(&req);
    let Ok((parts, body)) = tollgate_http::error::read_body(req).await else {
        return error_page("the form could not be read");
    };
    let form = match Form::parse(&parts.headers, &body) {
        Ok(f) => f,
        Err(e) => return error_page(&e.error_description),
    };
    let map: HashMap<String, String> = [
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "response_type",
        "nonce",
    ]
    .iter()
    .filter_map(|k| form.get(k).map(|v| (k.to_string(), v.to_string())))
    .collect();
    let p = AuthorizeParams::from_map(&map);
    let (client, own_tenant) = match validate(&state, &p).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let username = form.get("username").unwrap_or("");
    if !state.limiter.check(ip, Some(&p.client_id)) {
        return login_page(
            &p,
            &client.application_name,
            Some("Too many attempts; wait a moment."),
            username,
        );
    }
    let password = form.get("password").unwrap_or("");
    // The user's tenant comes from the name they sign in with; an application's client
    // serves only its own tenant's users, the portals' every tenant's.
    let principal = match state.authenticator.check_password(ip, username, password).await {
        Ok(Some(p)) if own_tenant.as_ref().is_none_or(|t| t.id == p.tenant_id) => p,
        Ok(_) => {
            let message = format!("{}.", capitalise(crate::token::wrong_password_message(username)));
            return login_page(&p, &client.application_name, Some(&message), username);
        }
        // A deactivated tenant, said as such.
        Err(tollgate_model::Error::InvalidCredentials(why)) => {
            return login_page(&p, &client.application_name, Some(&why), username);
        }
        Err(tollgate_model::Error::TooManyRequests { retry_after_secs, .. }) => {
            let message = format!(
                "Too many failed sign-in attempts; try again in {} minute(s).",
                retry_after_secs.div_ceil(60)
            );
            // The page again, as a 429 that says when to come back.
            let mut res = login_page(&p, &client.application_name, Some(&message), username);
            *res.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
            return res;
        }
        Err(e) => {
            tracing::error!(error = %e, "Cannot check a user's password.");
            return error_page("the key manager failed; try again");
        }
    };
    if let Err(e) = crate::token::require_provisioned(&state, principal.tenant_id, &principal.tenant_domain).await {
        let mut res = login_page(&p, &client.application_name, Some(&e.error_description), username);
        *res.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return res;
    }
    // The portals' own client gets what the user's roles bind (the pages cannot know the
    // roles before sign-in); every other client gets exactly what it asked for.
    let granted = if client.key.consumer_key == portals_client::PORTALS_CLIENT_ID {
        portals_client::session_scopes(&principal.roles)
    } else {
        match scopes::grant(
            &state.am,
            principal.tenant_id,
            &principal.roles,
            &principal.custom_roles,
            &p.scope,
        )
        .await
        {
            Ok(g) => g,
            Err(e) => return redirect_error(&p, e.error, &e.error_description),
        }
    };
    match state
        .tokens
        .create_code(
            &client,
            &principal.qualified_name(),
            &p.redirect_uri,
            &granted,
            &p.code_challenge,
            Some(p.nonce.as_str()).filter(|n| !n.is_empty()),
        )
        .await
    {
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if !p.state.is_empty() {
                params.push(("state", p.state.as_str()));
            }
            redirect(&p.redirect_uri, &params)
        }
        Err(e) => {
            tracing::error!(error = %e, "Cannot store an authorization code.");
            redirect_error(&p, "server_error", "the key manager failed")
        }
    }
}
