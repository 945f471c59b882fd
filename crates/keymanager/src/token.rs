//! `POST /oauth2/token` (RFC 6749 §4.1.3, §4.3, §4.4, §6; PKCE RFC 7636).

use crate::form::{Form, OAuthResponse, client_auth, no_store_json};
use crate::{GRANT_TYPES, KeyManagerState};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use tollgate_model::{Tenant, User};
use tollgate_store::keys::ClientRow;
use tollgate_store::tenants;
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

/// The tenant of an application's client, which must be active: a deactivated tenant's
/// applications get no tokens (`invalid_client`, saying why). `None` for the built-in
/// clients, which serve every tenant (their users' tenants are checked instead).
pub(crate) async fn client_tenant(state: &KeyManagerState, client: &ClientRow) -> Result<Option<Tenant>, OAuthError> {
    if cli_client::is_builtin(&client.key.consumer_key) {
        return Ok(None);
    }
    let id = client.tenant().map_err(tollgate_tokens::Error::from)?;
    let tenant = tenants::get(&state.shared, id)
        .await
        .map_err(tollgate_tokens::Error::from)?
        .ok_or_else(|| {
            tracing::error!(client = %client.key.consumer_key, tenant = %id, "A client's tenant does not exist.");
            OAuthError::invalid_client("client authentication failed")
        })?;
    if !tenant.active {
        return Err(OAuthError::invalid_client(format!(
            "the tenant `{}` is deactivated; its applications get no tokens until a super-tenant administrator activates it",
            tenant.domain
        )));
    }
    Ok(Some(tenant))
}

/// Refuses to act for a tenant's user until the AM side knows the tenant
/// (`tenants::provision`; start-up repairs one that was missed): tokens find their tenant
/// there by the subject's domain, and would otherwise be filed under the super tenant.
pub(crate) async fn require_provisioned(
    state: &KeyManagerState,
    tenant: tollgate_model::TenantId,
    domain: &str,
) -> Result<(), OAuthError> {
    if tenant == tollgate_model::TenantId::DEFAULT {
        return Ok(());
    }
    let known = tollgate_store::oauth::tenant_state(&state.am, tenant)
        .await
        .map_err(tollgate_tokens::Error::from)?;
    if known.is_some_and(|t| t.domain == domain) {
        return Ok(());
    }
    tracing::warn!(tenant = %domain, "A tenant's user signs in, but the tenant is not provisioned in the AM database.");
    Err(OAuthError::temporarily_unavailable(format!(
        "the tenant `{domain}` is not set up on the key manager yet; try again shortly"
    )))
}

/// The user a token will act for, named as they sign in (`alice@acme.com`, bare in the
/// super tenant), resolved by the one `Authenticator` rule: enabled, of an active tenant,
/// and of the client's tenant unless the client is built-in. Their tenant and roles.
async fn user_for(
    state: &KeyManagerState,
    client_tenant: Option<&Tenant>,
    subject: &str,
) -> Result<(Tenant, User), OAuthError> {
    let gone = || {
        OAuthError::invalid_grant(format!(
            "the user `{subject}` this token would act for does not exist or is disabled"
        ))
    };
    let (tenant, username) = state.authenticator.resolve_user(subject).await.map_err(|e| match e {
        // A deactivated tenant, said as such.
        tollgate_model::Error::InvalidCredentials(why) => OAuthError::invalid_grant(why),
        other => {
            tracing::error!(error = %other, "Cannot resolve a token's user.");
            OAuthError::server_error()
        }
    })?;
    if client_tenant.is_some_and(|t| t.id != tenant.id) {
        return Err(gone());
    }
    require_provisioned(state, tenant.id, &tenant.domain).await?;
    let user = state
        .authenticator
        .find_user(tenant.id, &username)
        .await
        .map_err(password_check_failed)?;
    match user {
        Some(u) if u.enabled => Ok((tenant, u)),
        _ => Err(gone()),
    }
}

/// A password check that could not run or was refused before any password was checked:
/// locked (429 `slow_down`), too busy to hash (503), a deactivated tenant
/// (`invalid_grant` saying so), or a failure of the store.
fn password_check_failed(e: tollgate_model::Error) -> OAuthError {
    match e {
        tollgate_model::Error::TooManyRequests { description, .. } => OAuthError::slow_down(description),
        tollgate_model::Error::Unavailable(d) => OAuthError::temporarily_unavailable(d),
        tollgate_model::Error::InvalidCredentials(d) => OAuthError::invalid_grant(d),
        other => {
            tracing::error!(error = %other, "Cannot check a user's password.");
            OAuthError::server_error()
        }
    }
}

/// The answer to a wrong username or password; a name that cannot be a tenant's user
/// (`@acme.com`, `alice@`) is told how tenant users sign in.
pub(crate) fn wrong_password_message(username: &str) -> &'static str {
    if username.starts_with('@') || username.ends_with('@') {
        "wrong username or password (a tenant's users sign in as `name@tenant-domain`)"
    } else {
        "wrong username or password"
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
    let own_tenant = client_tenant(state, &client).await?;
    let refreshable = allowed_grants(&client).iter().any(|g| g == "refresh_token");
    let issued = match grant_type {
        "client_credentials" => {
            // The application's owner, as they sign in (`owner@domain`); the built-in
            // clients have no client-credentials grant.
            let tenant = own_tenant.as_ref().ok_or_else(|| {
                OAuthError::unauthorized_client("this client may not use the `client_credentials` grant")
            })?;
            let owner = tenant.qualify(&client.application_owner);
            let (tenant, user) = user_for(state, Some(tenant), &owner).await?;
            let granted = scopes::grant(
                &state.am,
                tenant.id,
                &user.roles,
                &user.custom_roles,
                form.get("scope").unwrap_or(""),
            )
            .await?;
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
            // The user's tenant comes from the name they sign in with; an application's
            // client serves only its own tenant's users, a built-in one every tenant's.
            let principal = state
                .authenticator
                .check_password(ip, username, password)
                .await
                .map_err(password_check_failed)?
                .filter(|p| own_tenant.as_ref().is_none_or(|t| t.id == p.tenant_id))
                .ok_or_else(|| OAuthError::invalid_grant(wrong_password_message(username)))?;
            require_provisioned(state, principal.tenant_id, &principal.tenant_domain).await?;
            let tenant = principal.tenant_id;
            let subject = principal.qualified_name();
            // `tollgate login` asks for no scope and gets every REST scope the user's roles
            // bind, as a portal session does.
            let granted = match form.get("scope") {
                None if client.key.consumer_key == cli_client::CLI_CLIENT_ID => {
                    portals_client::session_scopes(&principal.roles)
                }
                requested => {
                    scopes::grant(
                        &state.am,
                        tenant,
                        &principal.roles,
                        &principal.custom_roles,
                        requested.unwrap_or(""),
                    )
                    .await?
                }
            };
            state
                .tokens
                .issue(IssueRequest {
                    client: &client,
                    username: &subject,
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
            // The user must still exist, be enabled, be in the token's (active) tenant and
            // hold every scope being renewed.
            let grant = state.tokens.refresh_token_grant(&client, refresh_token).await?;
            let (tenant, user) = user_for(state, own_tenant.as_ref(), &grant.subject).await?;
            if tenant.id != grant.tenant {
                return Err(OAuthError::invalid_grant(format!(
                    "the user `{}` this token would act for does not exist or is disabled",
                    grant.subject
                )));
            }
            let renewing = form
                .get("scope")
                .map(str::to_string)
                .unwrap_or_else(|| grant.scopes.join(" "));
            scopes::grant(&state.am, tenant.id, &user.roles, &user.custom_roles, &renewing)
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
            // The user must still exist, be enabled, be of an active tenant (the client's,
            // unless built-in) and hold the scopes they approved.
            let user_may_hold = async |subject: &str, approved: &[String]| {
                let (tenant, user) = user_for(state, own_tenant.as_ref(), subject).await?;
                scopes::grant(
                    &state.am,
                    tenant.id,
                    &user.roles,
                    &user.custom_roles,
                    &approved.join(" "),
                )
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
