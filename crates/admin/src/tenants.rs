//! `GET/POST /tenants`, `GET /tenants/{domain}`, `POST /tenants/{domain}/activate` and
//! `/deactivate` (our extension; the reference manages tenants outside its REST APIs).
//! Super-tenant administrators manage every tenant. A tenant's administrator sees only
//! their own tenant and changes none: another tenant does not exist for them (404).

use crate::AdminState;
use crate::types::{CreateTenant, TenantInfo, TenantList};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tollgate_http::auth::AdminRole;
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated, Pagination};
use tollgate_model::{Error, Principal, Tenant, TenantId};
use tollgate_store::tenants;

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/tenants", get(list).post(create))
        .route("/tenants/{domain}", get(get_one))
        .route("/tenants/{domain}/activate", post(activate))
        .route("/tenants/{domain}/deactivate", post(deactivate))
}

/// Whether `caller` may see `tenant`: super-tenant callers see all, others their own.
fn visible(caller: &Principal, tenant: &Tenant) -> bool {
    caller.tenant_id == TenantId::DEFAULT || caller.tenant_id == tenant.id
}

/// Refuses callers outside the super tenant: only its administrators manage tenants.
fn require_super(caller: &Principal) -> Result<(), ApiError> {
    if caller.tenant_id == TenantId::DEFAULT {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "only administrators of the super tenant `carbon.super` manage tenants; `{}` is an administrator of `{}`",
        caller.qualified_name(),
        caller.tenant_domain
    ))
    .into())
}

/// The tenant `domain` as `caller` may see it, or 404.
async fn load(state: &AdminState, caller: &Principal, domain: &str) -> Result<Tenant, ApiError> {
    tenants::find_by_domain(&state.shared, domain)
        .await?
        .filter(|t| visible(caller, t))
        .ok_or_else(|| {
            Error::NotFound {
                resource: "tenant",
                id: domain.to_string(),
            }
            .into()
        })
}

#[utoipa::path(get, path = "/tenants", operation_id = "get_tenants", tag = "Tenants", summary = "List tenants (a tenant's administrators see only their own)", params(("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of tenants", body = TenantList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> Result<axum::Json<TenantList>, ApiError> {
    let page = page.validate()?;
    let caller = auth.principal();
    let (all, total) = if caller.tenant_id == TenantId::DEFAULT {
        tenants::list(&state.shared, page.offset, page.limit).await?
    } else {
        let own: Vec<Tenant> = tenants::get(&state.shared, caller.tenant_id)
            .await?
            .into_iter()
            .collect();
        let total = own.len() as i64;
        (own.into_iter().skip(page.offset as usize).collect(), total)
    };
    let list: Vec<TenantInfo> = all.into_iter().map(TenantInfo::from).collect();
    Ok(axum::Json(TenantList {
        count: list.len(),
        list,
        pagination: page.info(total),
    }))
}

#[utoipa::path(post, path = "/tenants", operation_id = "post_tenants", tag = "Tenants", summary = "Create a tenant with its first administrator", request_body = CreateTenant, responses((status = 201, description = "The tenant", body = TenantInfo), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<Response, ApiError> {
    require_super(auth.principal())?;
    let (tenant, admin) = tenants::create(
        &state.shared,
        tenants::NewTenant {
            domain: body.domain,
            name: body.name.unwrap_or_default(),
            admin_username: body.admin_username,
            admin_password: body.admin_password,
            admin_email: Some(body.email).filter(|e| !e.is_empty()),
        },
    )
    .await?;
    // The AM side (environment access, default policies, gateways told); start-up repeats
    // it for every tenant, so a failure here is repaired by the next start.
    tenants::provision(&state.am, &tenant).await?;
    tracing::info!(tenant = %tenant.domain, admin = %tenant.qualify(&admin.username), by = %auth.principal().qualified_name(), "Tenant created.");
    // Anyone may have signed up as `x@domain` before the tenant existed: not a reason to
    // refuse it, but the administrator is told whom it locks out.
    let shadowed = tenants::shadowed_users(&state.shared, &tenant.domain).await?;
    if !shadowed.is_empty() {
        tracing::warn!(tenant = %tenant.domain, users = ?shadowed, "Super-tenant users named like the new tenant now sign in to it.");
    }
    let location = format!("{}/tenants/{}", crate::BASE_PATH, tenant.domain);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(TenantInfo {
            shadowed_users: shadowed,
            ..TenantInfo::from(tenant)
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/tenants/{domain}", operation_id = "get_tenant", tag = "Tenants", summary = "Get a tenant", params(("domain" = String, Path, description = "Tenant domain")), responses((status = 200, description = "The tenant", body = TenantInfo), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(domain): Path<String>,
) -> Result<axum::Json<TenantInfo>, ApiError> {
    Ok(axum::Json(load(&state, auth.principal(), &domain).await?.into()))
}

#[utoipa::path(post, path = "/tenants/{domain}/activate", operation_id = "activate_tenant", tag = "Tenants", summary = "Activate a tenant: its users sign in and its APIs answer again", params(("domain" = String, Path, description = "Tenant domain")), responses((status = 200, description = "The tenant", body = TenantInfo), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn activate(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(domain): Path<String>,
) -> Result<axum::Json<TenantInfo>, ApiError> {
    set_active(&state, auth.principal(), &domain, true).await
}

#[utoipa::path(post, path = "/tenants/{domain}/deactivate", operation_id = "deactivate_tenant", tag = "Tenants", summary = "Deactivate a tenant: its users cannot sign in, its tokens stop working and gateways refuse its APIs; nothing is deleted", params(("domain" = String, Path, description = "Tenant domain")), responses((status = 200, description = "The tenant", body = TenantInfo), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn deactivate(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(domain): Path<String>,
) -> Result<axum::Json<TenantInfo>, ApiError> {
    set_active(&state, auth.principal(), &domain, false).await
}

async fn set_active(
    state: &AdminState,
    caller: &Principal,
    domain: &str,
    active: bool,
) -> Result<axum::Json<TenantInfo>, ApiError> {
    let tenant = load(state, caller, domain).await?;
    require_super(caller)?;
    // Two databases, two writes, the AM side first: a deactivation that fails halfway
    // has already stopped the gateways, and both writes are idempotent, so sending the
    // request again completes it. The shared database has the last word: start-up
    // provisioning brings the AM side back in line with it when no one retries.
    let tenant = Tenant { active, ..tenant };
    tenants::provision(&state.am, &tenant).await?;
    tenants::set_active(&state.shared, tenant.id, active).await?;
    // Cached sign-ins of the tenant's users end now on this node (others: within the
    // credential cache's lifetime).
    state.authenticator.forget_all();
    tracing::info!(tenant = %tenant.domain, active, by = %caller.qualified_name(), "Tenant activation changed.");
    Ok(axum::Json(tenant.into()))
}
