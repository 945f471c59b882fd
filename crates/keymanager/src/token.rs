//! `POST /oauth2/token` (RFC 6749 §4.1.3, §4.3, §4.4, §6; PKCE RFC 7636).

use crate::form::{Form, OAuthResponse, client_auth, no_store_json};
use crate::{GRANT_TYPES, KeyManagerState};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use tollgate_model::{Role, TenantId};
use tollgate_store::keys::ClientRow;
use tollgate_store::users;
use tollgate_tokens::{IssueRequest, OAuthError, scopes};
use tollgate_tokens::{cli_client, portals_client};

/// The caller's address, when the listener recorded it.
pub(crate) fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The token endpoint.
pub async fn token(State(state): State<KeyManagerState>, req: Request) -> Response {
    match token_inner(&state, req).await {
        Ok(res) => {
            metrics::counter!("tollgate_key_manager_token_requests_total", "outcome" => "issued").increment(1);
            res
        }
        Err(e) => {
            // Labelled by the RFC 6749 error code: a small, fixed set.
            metrics::counter!("tollgate_key_manager_token_requests_total", "outcome" => e.error).increment(1);
            OAuthResponse(e).into_response()
        }
    }
}

fn allowed_grants(client: &ClientRow) -> Vec<String> {
    serde_json::from_str(&client.key.grant_types).unwrap_or_default()
}

fn require_grant(client: &ClientRow, grant_type: &str) -> Result<(), OAuthError> {
    if allowed_grants(client).iter().any(|g| g == grant_type) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(format!(
            "this client may not use the `{grant_type}` grant; add it to the keys' grantTypesToBeSupported"
        )))
    }
}

fn tenant_of(client: &ClientRow) -> TenantId {
    client.tenant_id.parse().unwrap_or(TenantId::DEFAULT)
}

/// The roles of the user a token will speak for; a missing or disabled user gets none.
async fn roles_of(state: &KeyManagerState, tenant: TenantId, username: &str) -> Result<Vec<Role>, OAuthError> {
    let user = users::find_by_username(&state.shared, tenant, username)
        .await
        .map_err(tollgate_tokens::Error::from)?;
    match user {
        Some(u) if u.enabled => Ok(u.roles),
        _ => Err(OAuthError::invalid_grant(format!(
            "the user `{username}` this token would act for does not exist or is disabled"
        ))),
    }
}

/// A password check that could not run: locked (429 `slow_down`), too busy to hash
/// (503), or a failure of the store.
fn password_check_failed(e: tollgate_model::Error) -> OAuthError {
    match e {
        tollgate_model::Error::TooManyRequests { description, .. } => OAuthError::slow_down(description),
        tollgate_model::Error::Unavailable(d) => OAuthError::temporarily_unavailable(d),
        other => {
            tracing::error!(error = %other, "Cannot check a user's password.");
            OAuthError::server_error()
        }
    }
}

async fn token_inner(state: &KeyManagerState, req: Request) -> Result<Response, OAuthError> {
    let ip = client_ip(&req);
    let (parts, body) = tollgate_http::error::read_body(req)
        .await
        .map_err(|e| OAuthError::invalid_request(e.0.description()))?;
    let form = Form::parse(&parts.headers, &body)?;
    let auth = client_auth(&parts.headers, &form)?;
    // Per address before anything else; per client only once it has proved itself, so
    // that nobody can exhaust another client's allowance with its (public) client id.
    if !state.limiter.check(ip, None) {
        return Err(OAuthError::slow_down("too many token requests; retry in a second"));
    }
    let grant_type = form.require("grant_type")?;
    if !GRANT_TYPES.contains(&grant_type) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type `{grant_type}` is not supported; use one of {}",
            GRANT_TYPES.join(", ")
        )));
    }
    // A public client may use the authorization-code grant with PKCE and no secret.
    let client = match (&auth, grant_type) {
        (Some(auth), _) => state.tokens.authenticate_client(auth).await?,
        (None, "authorization_code" | "refresh_token" | "password") if form.get("client_id").is_some() => {
            // Only a public client (one without a secret) may go without authentication
            // (PKCE protects its codes; the CLI's password grant proves the user, under
            // the same sign-in locks as HTTP Basic); a confidential one must authenticate
            // (RFC 6749 §3.2.1, §4.1.3). Each client's grant types are checked below.
            let id = form.require("client_id")?;
            state
                .tokens
                .find_client(id)
                .await?
                .filter(|c| c.key.secret_hash.is_none())
                .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?
        }
        (None, _) => {
            return Err(OAuthError::invalid_client(
                "client authentication required: HTTP Basic or client_id and client_secret",
            ));
        }
    };
    // The built-in clients (portals, CLI) speak for every user: one allowance for all of
    // them would cap every user's sign-ins and session renewals together. Their callers
    // are this node (in-process, after the login form's per-address limit) or are limited
    // per address above.
    if !cli_client::is_builtin(&client.key.consumer_key) && !state.limiter.check(None, Some(&client.key.consumer_key)) {
        return Err(OAuthError::slow_down(
            "too many token requests for this client; retry in a second",
        ));
    }
    require_grant(&client, grant_type)?;
    let tenant = tenant_of(&client);
    let refreshable = allowed_grants(&client).iter().any(|g| g == "refresh_token");
    let issued = match grant_type {
        "client_credentials" => {
            let owner = client.application_owner.clone();
            let roles = roles_of(state, tenant, &owner).await?;
            let granted = scopes::grant(&state.am, tenant, &roles, form.get("scope").unwrap_or("")).await?;
            state
                .tokens
                .issue(IssueRequest {
                    client: &client,
                    username: &owner,
                    scopes: &granted,
                    grant_type,
                    with_refresh_token: false,
                    validity: None,
                    nonce: None,
                })
                .await?
        }
        "password" => {
            let username = form.require("username")?;
            let password = form.require("password")?;
            let principal = state
                .authenticator
                .check_password(ip, username, password)
                .await
                .map_err(password_check_failed)?
                .filter(|p| p.tenant_id == tenant || cli_client::is_builtin(&client.key.consumer_key))
                .ok_or_else(|| OAuthError::invalid_grant("wrong username or password"))?;
            let tenant = principal.tenant_id;
            // `tollgate login` asks for no scope and gets every REST scope the user's roles
            // bind, as a portal session does.
            let granted = match form.get("scope") {
                None if client.key.consumer_key == cli_client::CLI_CLIENT_ID => {
                    portals_client::session_scopes(&principal.roles)
                }
                requested => scopes::grant(&state.am, tenant, &principal.roles, requested.unwrap_or("")).await?,
            };
            state
                .tokens
                .issue(IssueRequest {
                    client: &client,
                    username: &principal.username,
                    scopes: &granted,
                    grant_type,
                    with_refresh_token: refreshable,
                    validity: None,
                    nonce: None,
                })
                .await?
        }
        "refresh_token" => {
            let refresh_token = form.require("refresh_token")?;
            // The user must still exist, be enabled and hold every scope being renewed.
            let (username, original) = state.tokens.refresh_token_grant(&client, refresh_token).await?;
            let roles = roles_of(state, tenant, &username).await?;
            let renewing = form
                .get("scope")
                .map(str::to_string)
                .unwrap_or_else(|| original.join(" "));
            scopes::grant(&state.am, tenant, &roles, &renewing)
                .await
                .map_err(|e| OAuthError::invalid_grant(format!("{}; sign in again", e.error_description)))?;
            state.tokens.refresh(&client, refresh_token, form.get("scope")).await?
        }
        "authorization_code" => {
            let code = form.require("code")?;
            let redirect_uri = form.require("redirect_uri")?;
            let verifier = form.get("code_verifier").ok_or_else(|| {
                OAuthError::invalid_request("parameter `code_verifier` is required (PKCE S256 is mandatory)")
            })?;
            // The user must still exist, be enabled and hold the scopes they approved.
            let user_may_hold = async |username: &str, approved: &[String]| {
                let roles = roles_of(state, tenant, username).await?;
                scopes::grant(&state.am, tenant, &roles, &approved.join(" "))
                    .await
                    .map(drop)
                    .map_err(|e| OAuthError::invalid_grant(format!("{}; sign in again", e.error_description)))
            };
            state
                .tokens
                .exchange_code(&client, code, redirect_uri, verifier, refreshable, user_may_hold)
                .await?
        }
        other => {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type `{other}` is not supported"
            )));
        }
    };
    Ok(no_store_json(&issued))
}
