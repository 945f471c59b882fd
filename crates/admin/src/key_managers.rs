//! `GET/POST /key-managers`, `GET/PUT/DELETE /key-managers/{keyManagerId}`: third-party
//! OIDC providers whose tokens gateways accept. Their JWKS is fetched and cached by the
//! key-manager component and delivered to gateways through the event outbox.

use crate::{AdminState, types};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tollgate_events::control::KeyManagerInfo;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::AdminRole;
use tollgate_http::{ApiError, ApiJson, Authenticated};
use tollgate_model::key_manager::KeyManager;
use tollgate_model::{Error, TenantId, now_millis};
use tollgate_store::key_managers::{self, KeyManagerRow};
use tollgate_store::{Tx, events};

pub(crate) fn routes() -> Router<AdminState> {
    Router::new().route("/key-managers", get(list).post(create)).route(
        "/key-managers/{key_manager_id}",
        get(get_one).put(update).delete(delete),
    )
}

fn not_found(id: &str) -> ApiError {
    Error::not_found("key manager", id).into()
}

fn resource(row: &KeyManagerRow) -> Result<KeyManager, ApiError> {
    let mut km: KeyManager =
        serde_json::from_str(&row.body).map_err(|e| Error::Internal(format!("key manager {}: {e}", row.id)))?;
    km.id = Some(row.id.clone());
    km.name = row.name.clone();
    km.enabled = row.enabled;
    Ok(km)
}

/// The key manager as the API answers it.
fn body(row: &KeyManagerRow) -> Result<types::KeyManager, ApiError> {
    Ok(types::KeyManager {
        settings: resource(row)?,
        jwks_fetched_time: row.jwks_fetched_at.map(tollgate_model::rfc3339),
    })
}

/// Tells gateways of a key manager's change, without its key set (a gateway keeps the
/// one it has; the refresh loop sends a new one when it fetches it).
async fn emit(
    tx: &mut Tx,
    tenant: TenantId,
    event: fn(KeyManagerInfo) -> ControlEvent,
    row: &KeyManagerRow,
) -> Result<(), ApiError> {
    let km = resource(row)?;
    let event = NewEvent::new(tenant, None, event(KeyManagerInfo::new(&row.id, &km, None)));
    events::append(tx, &event).await?;
    Ok(())
}

fn row_of(id: &str, km: &KeyManager) -> Result<KeyManagerRow, ApiError> {
    let mut stored = km.clone();
    stored.id = None;
    Ok(KeyManagerRow {
        id: id.to_string(),
        name: km.name.clone(),
        body: serde_json::to_string(&stored).map_err(|e| Error::Internal(e.to_string()))?,
        enabled: km.enabled,
        jwks: None,
        jwks_fetched_at: None,
    })
}

fn conflict(name: &str) -> ApiError {
    Error::Conflict(format!("a key manager named `{name}` already exists")).into()
}

#[utoipa::path(get, path = "/key-managers", operation_id = "get_key_managers", tag = "Key Managers", summary = "List third-party key managers", responses((status = 200, description = "The key managers", body = types::KeyManagerList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
) -> Result<axum::Json<types::KeyManagerList>, ApiError> {
    let rows = key_managers::list(&state.am, auth.principal().tenant_id).await?;
    let list = rows.iter().map(body).collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(types::KeyManagerList {
        count: list.len(),
        list,
    }))
}

#[utoipa::path(get, path = "/key-managers/{keyManagerId}", operation_id = "get_key_manager", tag = "Key Managers", summary = "Get a key manager", params(("keyManagerId" = String, Path, description = "Key manager id or name")), responses((status = 200, description = "The key manager", body = types::KeyManager), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<axum::Json<types::KeyManager>, ApiError> {
    let row = key_managers::find(&state.am, auth.principal().tenant_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(body(&row)?))
}

#[utoipa::path(post, path = "/key-managers", operation_id = "post_key_managers", tag = "Key Managers", summary = "Register a key manager", request_body = types::KeyManager, responses((status = 201, description = "The key manager", body = types::KeyManager), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiJson(km): ApiJson<KeyManager>,
) -> Result<Response, ApiError> {
    Error::check_fields(km.validate())?;
    let tenant = auth.principal().tenant_id;
    let row = row_of(&uuid::Uuid::now_v7().to_string(), &km)?;
    let mut tx = state.am.begin().await?;
    if key_managers::name_taken(&mut tx, tenant, &km.name, &row.id).await? {
        return Err(conflict(&km.name));
    }
    key_managers::insert(&mut tx, tenant, &row, now_millis())
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                conflict(&km.name)
            } else {
                Error::from(e).into()
            }
        })?;
    emit(&mut tx, tenant, ControlEvent::KeyManagerUpserted, &row).await?;
    tx.commit().await?;
    tracing::info!(key_manager = %km.name, by = %auth.principal().username, "Key manager registered.");
    let location = format!("{}/key-managers/{}", crate::BASE_PATH, row.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body(&row)?),
    )
        .into_response())
}

#[utoipa::path(put, path = "/key-managers/{keyManagerId}", operation_id = "put_key_manager", tag = "Key Managers", summary = "Change a key manager (not its name)", params(("keyManagerId" = String, Path, description = "Key manager id or name")), request_body = types::KeyManager, responses((status = 200, description = "The key manager", body = types::KeyManager), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
    ApiJson(km): ApiJson<KeyManager>,
) -> Result<axum::Json<types::KeyManager>, ApiError> {
    Error::check_fields(km.validate())?;
    let tenant = auth.principal().tenant_id;
    let current = key_managers::find(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if km.name != current.name {
        return Err(Error::field("name", "cannot be changed; application keys are mapped by it").into());
    }
    let mut row = row_of(&current.id, &km)?;
    // The cached key set stays until the key manager fetches it again.
    row.jwks = current.jwks.clone();
    row.jwks_fetched_at = current.jwks_fetched_at;
    let mut tx = state.am.begin().await?;
    if key_managers::update(&mut tx, &row, now_millis()).await? == 0 {
        return Err(not_found(&id));
    }
    emit(&mut tx, tenant, ControlEvent::KeyManagerUpserted, &row).await?;
    tx.commit().await?;
    Ok(axum::Json(body(&row)?))
}

#[utoipa::path(delete, path = "/key-managers/{keyManagerId}", operation_id = "delete_key_manager", tag = "Key Managers", summary = "Remove a key manager no application keys are mapped from", params(("keyManagerId" = String, Path, description = "Key manager id or name")), responses((status = 200, description = "Removed"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let row = key_managers::find(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let mut tx = state.am.begin().await?;
    let mapped = key_managers::mapped_key_count(&mut tx, tenant, &row.name).await?;
    if mapped > 0 {
        return Err(Error::Conflict(format!(
            "{mapped} application key(s) are mapped from `{}`; remove those applications' keys first",
            row.name
        ))
        .into());
    }
    if key_managers::delete(&mut tx, &row.id).await? == 0 {
        return Err(not_found(&id));
    }
    emit(&mut tx, tenant, ControlEvent::KeyManagerDeleted, &row).await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}
