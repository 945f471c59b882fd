//! `GET/POST /environments`, `GET/PUT/DELETE /environments/{environmentId}`: gateway
//! environments. Changes are outbox events, so gateways learn of them.

use crate::AdminState;
use crate::types::EnvironmentList;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tollgate_events::control::{EnvironmentChange, EnvironmentChangeKind};
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::{AdminRole, AnyRole};
use tollgate_http::{ApiError, ApiJson, Authenticated};
use tollgate_model::{Environment, Error, TenantId, now_millis};
use tollgate_store::{Tx, environments, events};

pub(crate) fn routes() -> Router<AdminState> {
    Router::new().route("/environments", get(list).post(create)).route(
        "/environments/{environment_id}",
        get(get_one).put(update).delete(delete),
    )
}

fn not_found(id: &str) -> ApiError {
    Error::not_found("environment", id).into()
}

async fn emit(tx: &mut Tx, tenant: TenantId, env: &Environment, change: EnvironmentChangeKind) -> Result<(), ApiError> {
    let event = NewEvent::new(
        tenant,
        Some(env.name.clone()),
        ControlEvent::EnvironmentChanged(EnvironmentChange {
            change,
            environment: env.clone(),
        }),
    );
    events::append(tx, &event).await?;
    Ok(())
}

fn invalid(env: &Environment) -> Result<(), ApiError> {
    let errors = env.validate();
    Error::check_fields(errors).map_err(ApiError::from)
}

/// Any signed-in user may list environments (the Publisher needs them to deploy).
#[utoipa::path(get, path = "/environments", operation_id = "get_environments", tag = "Environments", summary = "List gateway environments", responses((status = 200, description = "The environments", body = EnvironmentList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<AnyRole>,
    State(state): State<AdminState>,
) -> Result<axum::Json<EnvironmentList>, ApiError> {
    let list = environments::list(&state.am, auth.principal().tenant_id).await?;
    Ok(axum::Json(EnvironmentList {
        count: list.len(),
        list,
    }))
}

#[utoipa::path(get, path = "/environments/{environmentId}", operation_id = "get_environment", tag = "Environments", summary = "Get an environment", params(("environmentId" = String, Path, description = "Environment id or name")), responses((status = 200, description = "The environment", body = tollgate_model::Environment), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<AnyRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Environment>, ApiError> {
    let env = environments::find(&state.am, auth.principal().tenant_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(env))
}

#[utoipa::path(post, path = "/environments", operation_id = "post_environments", tag = "Environments", summary = "Create an environment", request_body = tollgate_model::Environment, responses((status = 201, description = "The environment", body = tollgate_model::Environment), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiJson(mut env): ApiJson<Environment>,
) -> Result<Response, ApiError> {
    invalid(&env)?;
    let tenant = auth.principal().tenant_id;
    let id = uuid::Uuid::now_v7().to_string();
    env.id = None;
    env.is_read_only = false;
    let mut tx = state.am.begin().await?;
    if environments::exists_in(&mut tx, tenant, &env.name).await? {
        return Err(Error::Conflict(format!("an environment named `{}` already exists", env.name)).into());
    }
    environments::insert(&mut tx, tenant, &id, &env, now_millis()).await?;
    env.id = Some(id.clone());
    emit(&mut tx, tenant, &env, EnvironmentChangeKind::Created).await?;
    tx.commit().await?;
    tracing::info!(environment = %env.name, by = %auth.principal().username, "Gateway environment created.");
    let location = format!("{}/environments/{id}", crate::BASE_PATH);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(env)).into_response())
}

#[utoipa::path(put, path = "/environments/{environmentId}", operation_id = "put_environment", tag = "Environments", summary = "Change an environment (not its name)", params(("environmentId" = String, Path, description = "Environment id or name")), request_body = tollgate_model::Environment, responses((status = 200, description = "The environment", body = tollgate_model::Environment), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
    ApiJson(mut env): ApiJson<Environment>,
) -> Result<axum::Json<Environment>, ApiError> {
    invalid(&env)?;
    let tenant = auth.principal().tenant_id;
    let current = environments::find(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if env.name != current.name {
        return Err(Error::field("name", "cannot be changed; gateways are configured with it").into());
    }
    let env_id = current.id.clone().unwrap_or(id);
    env.id = Some(env_id.clone());
    env.is_read_only = current.is_read_only;
    let mut tx = state.am.begin().await?;
    let changed = environments::update(&mut tx, &env_id, &env, now_millis()).await?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(&env_id));
    }
    emit(&mut tx, tenant, &env, EnvironmentChangeKind::Updated).await?;
    tx.commit().await?;
    Ok(axum::Json(env))
}

#[utoipa::path(delete, path = "/environments/{environmentId}", operation_id = "delete_environment", tag = "Environments", summary = "Remove an environment nothing is deployed to", params(("environmentId" = String, Path, description = "Environment id or name")), responses((status = 200, description = "Removed"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let env = environments::find(&state.am, tenant, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if env.is_read_only {
        return Err(Error::Conflict(format!(
            "`{}` came with the installation and cannot be removed",
            env.name
        ))
        .into());
    }
    let mut tx = state.am.begin().await?;
    let in_use = environments::deployment_count(&mut tx, tenant, &env.name).await?;
    if in_use > 0 {
        return Err(Error::Conflict(format!(
            "{in_use} API revision(s) are deployed to `{}`; undeploy them first",
            env.name
        ))
        .into());
    }
    let changed = environments::delete(&mut tx, env.id.as_deref().unwrap_or(&id)).await?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(&id));
    }
    emit(&mut tx, tenant, &env, EnvironmentChangeKind::Deleted).await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}
