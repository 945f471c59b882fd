//! `GET/POST /throttling/deny-policies`, `GET/DELETE/PATCH /throttling/deny-policy/{conditionId}`:
//! block conditions over an API, application, user, IP or IP range (invertible). Every
//! change is an outbox event, so that every gateway starts or stops refusing at once.

use crate::AdminState;
use crate::types::{BlockingCondition, BlockingConditionList, BlockingConditionStatus};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tollgate_events::ControlEvent;
use tollgate_http::auth::AdminRole;
use tollgate_http::{ApiError, ApiJson, Authenticated};
use tollgate_model::{Error, now_millis};
use tollgate_store::{block_conditions, events};

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/throttling/deny-policies", get(list).post(create))
        .route(
            "/throttling/deny-policy/{condition_id}",
            get(get_one).delete(delete).patch(set_status),
        )
}

fn not_found(id: &str) -> ApiError {
    Error::not_found("deny policy", id).into()
}

#[utoipa::path(get, path = "/throttling/deny-policies", operation_id = "get_deny_policies", tag = "Deny Policies", summary = "List deny policies", responses((status = 200, description = "The deny policies", body = BlockingConditionList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
) -> Result<axum::Json<BlockingConditionList>, ApiError> {
    let list: Vec<BlockingCondition> = block_conditions::list(&state.am, auth.principal().tenant_id)
        .await?
        .into_iter()
        .map(BlockingCondition)
        .collect();
    Ok(axum::Json(list.into()))
}

#[utoipa::path(get, path = "/throttling/deny-policy/{conditionId}", operation_id = "get_deny_policy", tag = "Deny Policies", summary = "Get a deny policy", params(("conditionId" = String, Path, description = "Deny policy id")), responses((status = 200, description = "The deny policy", body = BlockingCondition), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<axum::Json<BlockingCondition>, ApiError> {
    let cond = block_conditions::get(&state.am, auth.principal().tenant_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(BlockingCondition(cond)))
}

#[utoipa::path(post, path = "/throttling/deny-policies", operation_id = "post_deny_policies", tag = "Deny Policies", summary = "Create a deny policy", request_body = BlockingCondition, responses((status = 201, description = "The deny policy", body = BlockingCondition), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiJson(BlockingCondition(mut cond)): ApiJson<BlockingCondition>,
) -> Result<Response, ApiError> {
    let key = cond.validate().map_err(Error::Validation)?;
    let tenant = auth.principal().tenant_id;
    let id = uuid::Uuid::now_v7().to_string();
    cond.condition_id = Some(id.clone());
    let mut tx = state.am.begin().await?;
    if block_conditions::exists_in(&mut tx, tenant, &key).await? {
        return Err(Error::Conflict("an identical deny policy already exists".into()).into());
    }
    block_conditions::insert(&mut tx, tenant, &id, &cond, &key, now_millis()).await?;
    events::emit(
        &mut tx,
        tenant,
        None,
        ControlEvent::BlockConditionUpserted(cond.clone()),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(condition = %key, by = %auth.principal().username, "Deny policy created.");
    let location = format!("{}/throttling/deny-policy/{id}", crate::BASE_PATH);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(BlockingCondition(cond)),
    )
        .into_response())
}

#[utoipa::path(patch, path = "/throttling/deny-policy/{conditionId}", operation_id = "patch_deny_policy", tag = "Deny Policies", summary = "Enable or disable a deny policy", params(("conditionId" = String, Path, description = "Deny policy id")), request_body = BlockingConditionStatus, responses((status = 200, description = "The deny policy", body = BlockingCondition), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn set_status(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
    ApiJson(BlockingConditionStatus(body)): ApiJson<BlockingConditionStatus>,
) -> Result<axum::Json<BlockingCondition>, ApiError> {
    let tenant = auth.principal().tenant_id;
    let mut cond = block_conditions::get(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if cond.condition_status == body.condition_status {
        return Ok(axum::Json(BlockingCondition(cond)));
    }
    cond.condition_status = body.condition_status;
    let mut tx = state.am.begin().await?;
    let changed = block_conditions::set_enabled(&mut tx, &id, body.condition_status, now_millis()).await?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(&id));
    }
    events::emit(
        &mut tx,
        tenant,
        None,
        ControlEvent::BlockConditionUpserted(cond.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(BlockingCondition(cond)))
}

#[utoipa::path(delete, path = "/throttling/deny-policy/{conditionId}", operation_id = "delete_deny_policy", tag = "Deny Policies", summary = "Delete a deny policy", params(("conditionId" = String, Path, description = "Deny policy id")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let cond = block_conditions::get(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let mut tx = state.am.begin().await?;
    let changed = block_conditions::delete(&mut tx, &id).await?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(&id));
    }
    events::emit(&mut tx, tenant, None, ControlEvent::BlockConditionDeleted(cond)).await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}
