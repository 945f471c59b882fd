//! `GET/POST /scopes`, `GET/PUT/DELETE /scopes/{scopeId}`, `HEAD /scopes/{name}`,
//! `GET /scopes/{scopeId}/usage`: shared scopes that many APIs can use.

use crate::PublisherState;
use crate::types::{ScopeList, SharedScope, SharedScopeUsage, SharedScopeUsedApiInfo};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tollgate_http::auth::{CreatorOrPublisherRole, CreatorRole};
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated, Pagination};
use tollgate_model::api::Scope;
use tollgate_model::{Error, TenantId, now_millis};
use tollgate_store::apis::{self, ApiFilter};
use tollgate_store::scopes;

fn not_found(id: &str) -> ApiError {
    Error::not_found("scope", id).into()
}

/// The APIs using a shared scope: `(id, name, version)`.
async fn users_of(
    state: &PublisherState,
    tenant: TenantId,
    name: &str,
) -> Result<Vec<(String, String, String)>, ApiError> {
    let (all, _) = apis::list(&state.am, tenant, &ApiFilter::default(), 0, i64::MAX).await?;
    Ok(all
        .into_iter()
        .filter(|s| s.api.scopes.iter().any(|sc| sc.shared && sc.scope.name == name))
        .map(|s| (s.id, s.api.name, s.api.version))
        .collect())
}

fn with_usage(mut scope: Scope, usage: usize) -> SharedScope {
    scope.bindings.sort();
    SharedScope {
        scope,
        usage_count: usage,
    }
}

/// `GET /scopes`.
#[utoipa::path(get, path = "/scopes", operation_id = "get_scopes", tag = "Scopes", summary = "List shared scopes", params(("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of shared scopes", body = ScopeList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> Result<Response, ApiError> {
    let page = page.validate()?;
    let tenant = auth.principal().tenant_id;
    let (list, total) = scopes::list(&state.am, tenant, page.offset, page.limit).await?;
    let mut out = Vec::new();
    for s in list {
        let usage = users_of(&state, tenant, &s.name).await?.len();
        out.push(with_usage(s, usage));
    }
    Ok(axum::Json(ScopeList {
        count: out.len(),
        list: out,
        pagination: page.info(total),
    })
    .into_response())
}

/// `GET /scopes/{scopeId}`.
#[utoipa::path(get, path = "/scopes/{scopeId}", operation_id = "get_scope", tag = "Scopes", summary = "Get a shared scope", params(("scopeId" = String, Path, description = "Scope id, or name")), responses((status = 200, description = "The scope with usageCount", body = SharedScope), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let scope = scopes::get(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let usage = users_of(&state, tenant, &scope.name).await?.len();
    Ok(axum::Json(with_usage(scope, usage)).into_response())
}

/// `HEAD /scopes/{name}`: 200 when a shared scope of that name exists, else 404; the
/// headers (content type and length) are those of the `GET` (the server drops the body).
#[utoipa::path(head, path = "/scopes/{scopeId}", operation_id = "head_scope", tag = "Scopes", summary = "Whether a shared scope of that name exists", params(("scopeId" = String, Path, description = "Scope id, or name")), responses((status = 200, description = "It exists"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn exists(
    auth: Authenticated<CreatorOrPublisherRole>,
    state: State<PublisherState>,
    name: Path<String>,
) -> Result<Response, ApiError> {
    get_one(auth, state, name).await
}

/// `GET /scopes/{scopeId}/usage`: the APIs that use the scope.
#[utoipa::path(get, path = "/scopes/{scopeId}/usage", operation_id = "get_scope_usage", tag = "Scopes", summary = "APIs using a shared scope", params(("scopeId" = String, Path, description = "Scope id, or name")), responses((status = 200, description = "The APIs using the scope", body = SharedScopeUsage), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn usage(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let scope = scopes::get(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let list: Vec<SharedScopeUsedApiInfo> = users_of(&state, tenant, &scope.name)
        .await?
        .into_iter()
        .map(|(id, name, version)| SharedScopeUsedApiInfo { id, name, version })
        .collect();
    Ok(axum::Json(SharedScopeUsage {
        id: scope.id.unwrap_or_default(),
        name: scope.name,
        used_api_list: list,
    })
    .into_response())
}

/// `POST /scopes`.
#[utoipa::path(post, path = "/scopes", operation_id = "post_scopes", tag = "Scopes", summary = "Create a shared scope", request_body = tollgate_model::api::Scope, responses((status = 201, description = "The scope", body = SharedScope), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    ApiJson(mut scope): ApiJson<Scope>,
) -> Result<Response, ApiError> {
    let errors = scope.validate();
    Error::check_fields(errors)?;
    let tenant = auth.principal().tenant_id;
    let id = uuid::Uuid::now_v7().to_string();
    scope.id = None;
    let mut tx = state.am.begin().await?;
    scopes::insert(&mut tx, tenant, &id, &scope, now_millis())
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApiError(Error::Conflict(format!(
                    "a shared scope named `{}` already exists",
                    scope.name
                )))
            } else {
                ApiError(e.into())
            }
        })?;
    tx.commit().await?;
    scope.id = Some(id.clone());
    let location = format!("{}/scopes/{id}", crate::BASE_PATH);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(with_usage(scope, 0)),
    )
        .into_response())
}

/// `PUT /scopes/{scopeId}`: description and bindings change; the name does not.
#[utoipa::path(put, path = "/scopes/{scopeId}", operation_id = "put_scope", tag = "Scopes", summary = "Change a shared scope's description and bindings", params(("scopeId" = String, Path, description = "Scope id, or name")), request_body = tollgate_model::api::Scope, responses((status = 200, description = "The scope", body = SharedScope), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(id): Path<String>,
    ApiJson(mut scope): ApiJson<Scope>,
) -> Result<Response, ApiError> {
    let errors = scope.validate();
    Error::check_fields(errors)?;
    let tenant = auth.principal().tenant_id;
    let current = scopes::get(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if scope.name != current.name {
        return Err(Error::field("name", "cannot be changed; APIs and tokens refer to it").into());
    }
    let scope_id = current.id.clone().unwrap_or(id);
    let mut tx = state.am.begin().await?;
    scopes::update(&mut tx, &scope_id, &scope, now_millis()).await?;
    tx.commit().await?;
    scope.id = Some(scope_id);
    let usage = users_of(&state, tenant, &scope.name).await?.len();
    Ok(axum::Json(with_usage(scope, usage)).into_response())
}

/// `DELETE /scopes/{scopeId}`: only scopes no API uses.
#[utoipa::path(delete, path = "/scopes/{scopeId}", operation_id = "delete_scope", tag = "Scopes", summary = "Delete an unused shared scope", params(("scopeId" = String, Path, description = "Scope id, or name")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let current = scopes::get(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let mut tx = state.am.begin().await?;
    tollgate_store::lock_named(&mut tx, &apis::references_lock(tenant)).await?;
    let users = users_of(&state, tenant, &current.name).await?;
    if !users.is_empty() {
        let names: Vec<String> = users.iter().map(|(_, n, v)| format!("API `{n}` {v}")).collect();
        return Err(Error::Conflict(format!(
            "the shared scope `{}` is used by {}; remove it from them first",
            current.name,
            names.join(", ")
        ))
        .into());
    }
    scopes::delete(&mut tx, current.id.as_deref().unwrap_or(&id)).await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}
