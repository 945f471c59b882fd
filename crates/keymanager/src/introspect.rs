//! `POST /oauth2/introspect` (RFC 7662), `POST /oauth2/revoke` (RFC 7009) and
//! `GET /oauth2/userinfo` (OIDC Core §5.3).

use crate::KeyManagerState;
use crate::form::{Form, OAuthResponse, client_auth, no_store_json};
use crate::types::{InactiveToken, Revoked, UserInfo};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tollgate_tokens::OAuthError;

async fn read_form(req: Request) -> Result<(axum::http::request::Parts, Form), OAuthError> {
    let (parts, body) = tollgate_http::error::read_body(req)
        .await
        .map_err(|e| OAuthError::invalid_request(e.0.description()))?;
    let form = Form::parse(&parts.headers, &body)?;
    Ok((parts, form))
}

/// Introspection. The caller must authenticate: as a client of this key manager, or as
/// a node of the cluster (`Authorization: Bearer <cluster secret>`).
pub async fn introspect(State(state): State<KeyManagerState>, req: Request) -> Response {
    let inner = async {
        let ip = crate::token::client_ip(&req);
        let (parts, form) = read_form(req).await?;
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let is_node = header.is_some_and(|h| h.starts_with("Bearer ")) && state.cluster_secret.verify(header).is_ok();
        // A client may introspect only its own tokens (RFC 7662 §4); cluster nodes
        // (gateways) any.
        let caller = if is_node {
            None
        } else {
            let auth = client_auth(&parts.headers, &form)?
                .ok_or_else(|| OAuthError::invalid_client("introspection requires client authentication"))?;
            if !state.limiter.check(ip, None) {
                return Err(OAuthError::slow_down("too many requests; retry in a second"));
            }
            let client = state.tokens.authenticate_client(&auth).await?;
            if !state.limiter.check(None, Some(&client.key.consumer_key)) {
                return Err(OAuthError::slow_down("too many requests; retry in a second"));
            }
            Some(client.key.consumer_key)
        };
        let token = form.require("token")?;
        let active = state
            .tokens
            .introspect(token)
            .await
            .map_err(OAuthError::from)?
            .filter(|t| caller.as_ref().is_none_or(|c| *c == t.client_id));
        Ok(match active {
            Some(t) => no_store_json(&t),
            None => no_store_json(&InactiveToken { active: false }),
        })
    };
    inner.await.unwrap_or_else(|e| OAuthResponse(e).into_response())
}

/// Revocation of an access or refresh token by the client it was issued to.
pub async fn revoke(State(state): State<KeyManagerState>, req: Request) -> Response {
    let inner = async {
        let ip = crate::token::client_ip(&req);
        let (parts, form) = read_form(req).await?;
        let auth = client_auth(&parts.headers, &form)?;
        if !state.limiter.check(ip, None) {
            return Err(OAuthError::slow_down("too many requests; retry in a second"));
        }
        // A confidential client authenticates; a public one (no secret, like the portals'
        // client) names itself, as RFC 7009 §2.1 allows: it can only revoke its own tokens.
        let client = match (auth, form.get("client_id")) {
            (Some(auth), _) => state.tokens.authenticate_client(&auth).await?,
            (None, Some(id)) => state
                .tokens
                .find_client(id)
                .await?
                .filter(|c| c.key.secret_hash.is_none())
                .ok_or_else(|| OAuthError::invalid_client("revocation requires client authentication"))?,
            (None, None) => return Err(OAuthError::invalid_client("revocation requires client authentication")),
        };
        if !tollgate_tokens::cli_client::is_builtin(&client.key.consumer_key)
            && !state.limiter.check(None, Some(&client.key.consumer_key))
        {
            return Err(OAuthError::slow_down("too many requests; retry in a second"));
        }
        let token = form.require("token")?;
        if let Some(hint) = form.get("token_type_hint")
            && !matches!(hint, "access_token" | "refresh_token")
        {
            return Err(OAuthError::unsupported_token_type(hint));
        }
        state.tokens.revoke(&client, token).await?;
        Ok(no_store_json(&Revoked {}))
    };
    inner.await.unwrap_or_else(|e| OAuthResponse(e).into_response())
}

fn bearer_error(description: &'static str) -> Response {
    let mut res = (
        StatusCode::UNAUTHORIZED,
        axum::Json(OAuthError {
            status: 401,
            error: "invalid_token",
            error_description: description.to_string(),
        }),
    )
        .into_response();
    res.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    res
}

/// The claims about the token's user.
pub async fn userinfo(State(state): State<KeyManagerState>, req: Request) -> Response {
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer "))) else {
        return bearer_error("send the access token as `Authorization: Bearer <token>`");
    };
    let active = match state.tokens.introspect(token.trim()).await {
        Ok(Some(t)) if t.token_type == "Bearer" => t,
        Ok(_) => return bearer_error("the access token is invalid, expired or revoked"),
        Err(e) => return OAuthResponse(e.into()).into_response(),
    };
    let scopes: Vec<&str> = active.scope.split_whitespace().collect();
    if !scopes.contains(&"openid") {
        let mut res = (
            StatusCode::FORBIDDEN,
            axum::Json(OAuthError {
                status: 403,
                error: "insufficient_scope",
                error_description: "userinfo needs an access token with the openid scope".to_string(),
            }),
        )
            .into_response();
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""),
        );
        return res;
    }
    // The subject names the user as they sign in (`alice@acme.com`): resolved by the one
    // rule the REST APIs use, so the claims are about that tenant's user.
    let (tenant, username) = match state.authenticator.resolve_user(&active.sub).await {
        Ok(found) => found,
        Err(tollgate_model::Error::InvalidCredentials(_)) => {
            return bearer_error("the access token's tenant is deactivated");
        }
        Err(e) => {
            tracing::error!(error = %e, "Cannot resolve a token's user.");
            return OAuthResponse(OAuthError::server_error()).into_response();
        }
    };
    let email = if scopes.contains(&"email") {
        match state.authenticator.find_user(tenant.id, &username).await {
            Ok(user) => user.and_then(|u| u.email),
            Err(e) => {
                tracing::error!(error = %e, "Cannot read a token's user.");
                return OAuthResponse(OAuthError::server_error()).into_response();
            }
        }
    } else {
        None
    };
    no_store_json(&UserInfo {
        sub: active.sub,
        preferred_username: active.username,
        email,
    })
}
