//! `POST /signup`: self sign-up. The new user gets the `subscriber` role and, as in the
//! reference, an application called `DefaultApplication` on the `Unlimited` policy, both
//! in the tenant the request or the username names ([`scope::sign_up_target`]).

use crate::DevportalState;
use crate::applications::{self, NewApplication};
use crate::scope::{self, NamedTenant};
use crate::types::SignedUpUser;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tollgate_http::auth::ClientIp;
use tollgate_http::{ApiError, ApiJson};
use tollgate_model::{Error, NewUser, Role};
use tollgate_store::users;

/// The sign-up form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignUp {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
}

/// The application every new user starts with.
pub const DEFAULT_APPLICATION: &str = "DefaultApplication";

/// `POST /signup`.
#[utoipa::path(post, path = "/signup", operation_id = "post_signup", tag = "Sign-up", summary = "Self sign-up: a subscriber with a DefaultApplication", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant to sign up into (default: the one the username names, as in alice@acme.com, else the super tenant)"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for web pages")), request_body = SignUp, responses((status = 201, description = "The new account", body = SignedUpUser), (status = 429, description = "Too many sign-ups from this address; see Retry-After", body = tollgate_http::error::ErrorBody), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn signup(
    State(state): State<DevportalState>,
    ClientIp(ip): ClientIp,
    NamedTenant(named): NamedTenant,
    ApiJson(form): ApiJson<SignUp>,
) -> Result<(StatusCode, axum::Json<SignedUpUser>), ApiError> {
    if !state.self_signup {
        return Err(Error::Forbidden(
            "self sign-up is turned off on this server ([devportal] self_signup); ask an administrator for an account"
                .into(),
        )
        .into());
    }
    // Every attempt counts, valid or not, before any work (a new password costs argon2).
    if let Some(ip) = ip
        && let Err(wait) = state.signup_limiter.check_address(ip)
    {
        return Err(Error::too_many(
            "too many sign-ups from this address; try again later ([devportal] self_signups_per_hour)",
            wait,
        )
        .into());
    }
    let (tenant, username) = scope::sign_up_target(&state, named.as_deref(), &form.username).await?;
    let new = NewUser {
        tenant_id: tenant.id,
        username,
        password: form.password,
        email: form.email.filter(|e| !e.is_empty()),
        roles: vec![Role::Subscriber],
    };
    // Into the directory the name belongs to when there is one (refused when read-only).
    let user = match state.authenticator.add_directory_user(&new).await? {
        Some(user) => user,
        None => {
            new.validate()?;
            users::create(&state.shared, new).await?
        }
    };
    let app = NewApplication {
        name: DEFAULT_APPLICATION.into(),
        throttling_policy: "Unlimited".into(),
        description: Some("The application every new user starts with".into()),
        token_type: "JWT".into(),
        attributes: serde_json::Map::new(),
    };
    let created = applications::insert(&state, tenant.id, &user.username, app).await;
    let qualified = tenant.qualify(&user.username);
    if let Err(e) = created {
        // The user exists and can create applications; only the convenience is missing.
        tracing::warn!(user = %qualified, error = ?e.0, "Signed up, but the default application could not be created.");
    }
    tracing::info!(user = %qualified, tenant = %tenant.domain, "User signed up.");
    Ok((
        StatusCode::CREATED,
        axum::Json(SignedUpUser {
            username: qualified,
            tenant_domain: tenant.domain,
            email: user.email,
            roles: user.roles,
        }),
    ))
}
