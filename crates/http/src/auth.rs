//! REST authentication: HTTP Basic against the user store today (bearer tokens join when
//! the key manager lands), with the required roles declared in the handler's signature:
//! `async fn h(Authenticated(p, ..): Authenticated<AdminRole>)` cannot forget its check.

use crate::error::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use std::marker::PhantomData;
use tollgate_model::{Error, Principal, Role, TenantId};
use tollgate_store::{Database, users};

/// Checks credentials against the user store (the shared database).
#[derive(Clone, Debug)]
pub struct Authenticator {
    shared: Database,
}

impl Authenticator {
    /// An authenticator over the shared database's users.
    pub fn new(shared: Database) -> Self {
        Self { shared }
    }

    /// Resolves an `Authorization` header value to a principal, or says why not.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Error> {
        let Some(value) = authorization else {
            return Err(Error::MissingCredentials(
                "send credentials with `Authorization: Basic base64(username:password)`".into(),
            ));
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::InvalidCredentials(
                "bearer tokens are not accepted on this API yet; use HTTP Basic".into(),
            ));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Error::InvalidCredentials(format!(
                "unsupported authorization scheme `{scheme}`; use HTTP Basic"
            )));
        }
        let malformed =
            || Error::InvalidCredentials("malformed Basic credentials; expected base64(username:password)".into());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
        let principal = users::authenticate(&self.shared, TenantId::DEFAULT, username, password)
            .await
            .map_err(Error::from)?;
        principal.ok_or_else(|| Error::InvalidCredentials("wrong username or password".into()))
    }
}

/// The roles an operation requires: any one of them suffices (`admin` always does).
pub trait RoleRequirement: Send + Sync + 'static {
    /// Roles that grant access; empty means any authenticated user.
    const ROLES: &'static [Role];
}

/// Any authenticated user.
pub struct AnyRole;
impl RoleRequirement for AnyRole {
    const ROLES: &'static [Role] = &[];
}

/// Administrators only.
pub struct AdminRole;
impl RoleRequirement for AdminRole {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// API creators (and administrators).
pub struct CreatorRole;
impl RoleRequirement for CreatorRole {
    const ROLES: &'static [Role] = &[Role::Creator];
}

/// API creators or publishers (reading Publisher resources).
pub struct CreatorOrPublisherRole;
impl RoleRequirement for CreatorOrPublisherRole {
    const ROLES: &'static [Role] = &[Role::Creator, Role::Publisher];
}

/// Publishers (and administrators).
pub struct PublisherRole;
impl RoleRequirement for PublisherRole {
    const ROLES: &'static [Role] = &[Role::Publisher];
}

/// Developer Portal subscribers (and administrators).
pub struct SubscriberRole;
impl RoleRequirement for SubscriberRole {
    const ROLES: &'static [Role] = &[Role::Subscriber];
}

/// An authenticated caller holding one of `R::ROLES`; extracting it answers 401 or 403
/// in the envelope otherwise.
pub struct Authenticated<R: RoleRequirement = AnyRole>(pub Principal, pub PhantomData<R>);

impl<R: RoleRequirement> Authenticated<R> {
    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl<S, R> FromRequestParts<S> for Authenticated<R>
where
    S: Send + Sync,
    R: RoleRequirement,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let principal = authenticator.authenticate(header).await?;
        if !R::ROLES.is_empty() && !principal.has_any_role(R::ROLES) {
            let names: Vec<_> = R::ROLES.iter().map(|r| r.as_str()).collect();
            return Err(Error::Forbidden(format!(
                "this operation requires the role {}; `{}` does not have it",
                names.join(" or "),
                principal.username
            ))
            .into());
        }
        Ok(Authenticated(principal, PhantomData))
    }
}
