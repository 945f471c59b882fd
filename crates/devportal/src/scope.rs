//! The tenant a Developer Portal request acts in, decided here and nowhere else
//! (decision 019). A signed-in caller always acts in their own tenant. An anonymous
//! caller browses the tenant named by the reference's `X-WSO2-Tenant` header or by
//! Tollgate's `?tenant=` query parameter (the web portal's), and the super tenant when
//! neither is sent.
//!
//! The reference documents that a signed-in caller's own tenant is used whatever the
//! header says, while its implementation lets the header win; Tollgate does neither
//! silently: a signed-in caller naming another tenant gets 404, so a client never reads
//! one tenant's catalogue believing it another's, and never reaches across tenants.
//! An unknown or deactivated tenant is a 404 naming it.

use crate::DevportalState;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tollgate_http::{ApiError, MaybeAuthenticated};
use tollgate_model::tenant::{gateway_prefix, split_qualified};
use tollgate_model::{Error, Principal, Tenant, TenantId};
use tollgate_store::tenants;

/// The reference's header naming the tenant an anonymous caller browses.
pub const TENANT_HEADER: &str = "X-WSO2-Tenant";

/// The query parameter that does the same (links and the web portal cannot set headers).
pub const TENANT_QUERY: &str = "tenant";

/// The tenant a request acts in and who is calling. Handlers take it as an argument
/// instead of deciding the tenant themselves.
#[derive(Clone, Debug)]
pub struct TenantScope {
    /// The tenant every read and write of the request is scoped to.
    pub tenant_id: TenantId,
    /// Its domain (`carbon.super`, `acme.com`).
    pub domain: String,
    /// The signed-in caller, `None` for anonymous visitors.
    pub caller: Option<Principal>,
}

impl TenantScope {
    /// A signed-in caller's scope: their own tenant.
    pub fn of(principal: &Principal) -> Self {
        Self {
            tenant_id: principal.tenant_id,
            domain: principal.tenant_domain.clone(),
            caller: Some(principal.clone()),
        }
    }

    /// An anonymous visitor of `tenant`.
    fn anonymous(tenant: Tenant) -> Self {
        Self {
            tenant_id: tenant.id,
            domain: tenant.domain,
            caller: None,
        }
    }

    /// The signed-in caller, if any.
    pub fn caller(&self) -> Option<&Principal> {
        self.caller.as_ref()
    }

    /// The path prefix of the tenant's APIs on gateways (`/t/acme.com`, empty for the
    /// super tenant).
    pub fn gateway_prefix(&self) -> String {
        gateway_prefix(self.tenant_id, &self.domain)
    }
}

/// The tenant domain a request names by `X-WSO2-Tenant` or `?tenant=` (lower-cased),
/// `None` when it names none (both absent or empty). Naming two different tenants, or
/// an unreadable header, is a 400.
pub fn named_tenant(parts: &Parts) -> Result<Option<String>, ApiError> {
    let header = match parts.headers.get(TENANT_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Error::BadRequest(format!("the {TENANT_HEADER} header must be a tenant domain in ASCII")))?
                .trim()
                .to_ascii_lowercase(),
        ),
    };
    let mut named: Vec<(&str, String)> = header
        .filter(|d| !d.is_empty())
        .map(|d| (TENANT_HEADER, d))
        .into_iter()
        .collect();
    if parts.uri.query().is_some() {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| Error::BadRequest(format!("invalid query string: {}", e.body_text())))?;
        named.extend(
            pairs
                .into_iter()
                .filter(|(k, v)| k == TENANT_QUERY && !v.trim().is_empty())
                .map(|(_, v)| ("?tenant=", v.trim().to_ascii_lowercase())),
        );
    }
    let Some((_, first)) = named.first() else {
        return Ok(None);
    };
    if let Some((how, other)) = named.iter().find(|(_, d)| d != first) {
        return Err(Error::BadRequest(format!(
            "the request names two tenants, `{first}` and `{other}` ({how}); name one"
        ))
        .into());
    }
    Ok(Some(first.clone()))
}

/// The tenant domain a request names ([`named_tenant`]), as a handler argument.
#[derive(Clone, Debug)]
pub struct NamedTenant(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for NamedTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        named_tenant(parts).map(NamedTenant)
    }
}

/// The active tenant `domain`, or a 404 naming it (unknown and deactivated alike: a
/// deactivated tenant's catalogue is not shown, and nothing may be signed up into it).
pub async fn active_tenant(state: &DevportalState, domain: &str) -> Result<Tenant, ApiError> {
    match tenants::find_by_domain(&state.shared, domain).await? {
        Some(t) if t.active => Ok(t),
        _ => Err(Error::not_found("active tenant", domain).into()),
    }
}

/// The super tenant, which always exists and cannot be deactivated.
fn super_tenant() -> Tenant {
    Tenant {
        id: TenantId::DEFAULT,
        domain: Tenant::DEFAULT_DOMAIN.to_string(),
        name: Tenant::DEFAULT_DOMAIN.to_string(),
        active: true,
        created_at: 0,
    }
}

/// Decides a request's [`TenantScope`]; see the module documentation for the rules.
async fn resolve(parts: &mut Parts, state: &DevportalState) -> Result<TenantScope, ApiError> {
    let named = named_tenant(parts)?;
    let MaybeAuthenticated(caller) = MaybeAuthenticated::from_request_parts(parts, state).await?;
    match (caller, named) {
        (Some(p), None) => Ok(TenantScope::of(&p)),
        (Some(p), Some(d)) if d == p.tenant_domain => Ok(TenantScope::of(&p)),
        // The same answer whether `d` exists or not: signed-in callers learn nothing of
        // other tenants here.
        (Some(_), Some(d)) => Err(Error::not_found("tenant (a signed-in caller sees only their own)", d).into()),
        (None, None) => Ok(TenantScope::anonymous(super_tenant())),
        (None, Some(d)) => Ok(TenantScope::anonymous(active_tenant(state, &d).await?)),
    }
}

impl FromRequestParts<DevportalState> for TenantScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &DevportalState) -> Result<Self, Self::Rejection> {
        if let Some(scope) = parts.extensions.get::<TenantScope>() {
            return Ok(scope.clone());
        }
        resolve(parts, state).await
    }
}

/// Middleware over every route but sign-up: a request that names a tenant is checked
/// against the rules before its handler runs, so that operations for signed-in callers
/// only (applications, keys, subscriptions) refuse another tenant exactly as the
/// catalogue does. Requests naming no tenant pass untouched (no extra work).
pub async fn check_named_tenant(State(state): State<DevportalState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match named_tenant(&parts) {
        Ok(None) => {}
        Ok(Some(_)) => match resolve(&mut parts, &state).await {
            Ok(scope) => {
                parts.extensions.insert(scope);
            }
            Err(e) => return e.into_response(),
        },
        Err(e) => return e.into_response(),
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The tenant a sign-up goes to and the new user's name inside it. The tenant is the
/// one the request names (`named`, from [`named_tenant`]) or the one the username
/// names (`alice@acme.com`, when `acme.com` is a tenant: as at sign-in, any other
/// `@domain` is part of a super-tenant user's name); the super tenant when neither
/// does. Naming two tenants is a 400 on `username`; an unknown or deactivated tenant
/// is a 404.
pub async fn sign_up_target(
    state: &DevportalState,
    named: Option<&str>,
    username: &str,
) -> Result<(Tenant, String), ApiError> {
    let (local, domain) = split_qualified(username);
    let in_name = match domain {
        Some(d) => tenants::find_by_domain(&state.shared, d).await?,
        None => None,
    };
    let target = match (named, &in_name) {
        (Some(n), Some(t)) if t.domain != n => {
            return Err(Error::field(
                "username",
                format!(
                    "`{username}` names the tenant `{}`, but the request signs up into `{n}`; give the name without `@{}`",
                    t.domain, t.domain
                ),
            )
            .into());
        }
        (Some(n), _) => n.to_string(),
        (None, Some(t)) => t.domain.clone(),
        (None, None) => Tenant::DEFAULT_DOMAIN.to_string(),
    };
    let tenant = if target == Tenant::DEFAULT_DOMAIN {
        super_tenant()
    } else {
        active_tenant(state, &target).await?
    };
    let name = if in_name.is_some() { local } else { username };
    Ok((tenant, name.to_string()))
}
