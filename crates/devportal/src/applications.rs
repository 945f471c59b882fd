//! `GET/POST /applications`, `GET/PUT/DELETE /applications/{applicationId}`. An
//! application belongs to the user who created it; to anyone else it does not exist.

use crate::DevportalState;
use crate::types::{Application, ApplicationKey, ApplicationList};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tollgate_events::control::ApplicationRef;
use tollgate_events::snapshot::ApplicationInfo;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::{AppManageRole, SubscriberRole};
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated, Pagination};
use tollgate_model::policy::PolicyLevel;
use tollgate_model::{Error, FieldError, Principal, TenantId, now_millis};
use tollgate_store::applications::{self, ApplicationListing, ApplicationRow};
use tollgate_store::{Tx, events, keys, policies};

/// An application as clients send it; server-owned fields they echo back are ignored.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewApplication {
    pub name: String,
    pub throttling_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_token_type")]
    pub token_type: String,
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub attributes: serde_json::Map<String, Value>,
}

fn default_token_type() -> String {
    "JWT".into()
}

pub(crate) async fn validate(state: &DevportalState, tenant: TenantId, app: &NewApplication) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let name = app.name.trim();
    if name.is_empty() {
        errors.push(FieldError::new("name", "is required"));
    } else if name != app.name {
        errors.push(FieldError::new("name", "must not start or end with spaces"));
    } else if app.name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be at most 100 characters"));
    } else if let Some(c) = tollgate_model::text::hidden_or_reordering_char(&app.name) {
        errors.push(FieldError::new("name", tollgate_model::text::hidden_char_message(c)));
    }
    if !matches!(app.token_type.as_str(), "JWT" | "OAUTH") {
        errors.push(FieldError::new("tokenType", "must be JWT or OAUTH"));
    }
    if app.description.as_ref().is_some_and(|d| d.chars().count() > 1024) {
        errors.push(FieldError::new("description", "must be at most 1024 characters"));
    }
    for (k, v) in &app.attributes {
        if !v.is_string() {
            errors.push(FieldError::new(format!("attributes.{k}"), "must be a string"));
        }
    }
    let known = policies::names(&state.am, tenant, PolicyLevel::Application).await?;
    if !known.iter().any(|n| n == &app.throttling_policy) {
        errors.push(FieldError::new(
            "throttlingPolicy",
            format!(
                "`{}` is not an application policy; use one of {}",
                app.throttling_policy,
                known.join(", ")
            ),
        ));
    }
    Ok(Error::check_fields(errors)?)
}

pub(crate) fn row_of(id: String, owner: &str, app: &NewApplication) -> ApplicationRow {
    ApplicationRow {
        id,
        name: app.name.clone(),
        owner: owner.to_string(),
        throttling_policy: app.throttling_policy.clone(),
        description: app.description.clone(),
        token_type: app.token_type.clone(),
        status: "APPROVED".into(),
        attributes: Value::Object(app.attributes.clone()).to_string(),
    }
}

/// Writes the application event gateways use to know an application's tier.
pub(crate) async fn application_event(tx: &mut Tx, tenant: TenantId, row: &ApplicationRow) -> Result<(), ApiError> {
    events::append(
        tx,
        &NewEvent::new(
            tenant,
            None,
            ControlEvent::ApplicationUpserted(ApplicationInfo {
                id: row.id.clone(),
                name: row.name.clone(),
                owner: row.owner.clone(),
                tier: row.throttling_policy.clone(),
                token_type: row.token_type.clone(),
                status: row.status.clone(),
            }),
        ),
    )
    .await?;
    Ok(())
}

fn name_conflict(name: &str) -> ApiError {
    Error::Conflict(format!("you already have an application named `{name}`")).into()
}

/// Validates and stores a new application of `owner`, with its event.
pub(crate) async fn insert(
    state: &DevportalState,
    tenant: TenantId,
    owner: &str,
    app: NewApplication,
) -> Result<ApplicationRow, ApiError> {
    validate(state, tenant, &app).await?;
    let row = row_of(uuid::Uuid::now_v7().to_string(), owner, &app);
    let mut tx = state.am.begin().await?;
    if applications::name_taken(&mut tx, tenant, owner, &app.name, &row.id).await? {
        return Err(name_conflict(&app.name));
    }
    applications::insert(&mut tx, tenant, &row, now_millis())
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                name_conflict(&app.name)
            } else {
                Error::from(e).into()
            }
        })?;
    application_event(&mut tx, tenant, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// The caller's application, or 404 (also for someone else's).
pub(crate) async fn owned(
    state: &DevportalState,
    caller: &Principal,
    id: &str,
) -> Result<ApplicationListing, ApiError> {
    match applications::get(&state.am, caller.tenant_id, id).await? {
        Some(app) if app.app.owner == caller.username => Ok(app),
        _ => Err(Error::not_found("application", id).into()),
    }
}

/// The `Application` body of a stored application; `keys` in the answers that show them.
pub(crate) fn body(a: &ApplicationListing, keys: Option<Vec<ApplicationKey>>) -> Application {
    let attributes = match serde_json::from_str::<Value>(&a.app.attributes) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    Application {
        application_id: a.app.id.clone(),
        name: a.app.name.clone(),
        throttling_policy: a.app.throttling_policy.clone(),
        description: a.app.description.clone(),
        token_type: a.app.token_type.clone(),
        status: a.app.status.clone(),
        groups: Vec::new(),
        subscription_count: a.subscription_count,
        attributes,
        subscription_scopes: Vec::new(),
        owner: a.app.owner.clone(),
        hash_enabled: true,
        created_time: tollgate_model::rfc3339(a.created_at),
        updated_time: tollgate_model::rfc3339(a.updated_at),
        keys,
    }
}

/// Query of `GET /applications`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    query: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
}

/// `GET /applications`: the caller's applications.
#[utoipa::path(get, path = "/applications", operation_id = "get_applications", tag = "Applications", summary = "Your applications", params(("query" = Option<String>, Query, description = "Part of the name"), ("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of your applications", body = ApplicationList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<SubscriberRole>,
    State(state): State<DevportalState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<ApplicationList>, ApiError> {
    let page = Pagination::from_query(q.offset, q.limit).validate()?;
    let p = auth.principal();
    let (rows, total) = applications::list_by_owner(
        &state.am,
        p.tenant_id,
        &p.username,
        q.query.as_deref().filter(|s| !s.is_empty()),
        page.offset,
        page.limit,
    )
    .await?;
    let list: Vec<Application> = rows.iter().map(|a| body(a, None)).collect();
    Ok(axum::Json(ApplicationList {
        count: list.len(),
        list,
        pagination: page.info(total),
    }))
}

/// `POST /applications`.
#[utoipa::path(post, path = "/applications", operation_id = "post_applications", tag = "Applications", summary = "Create an application", request_body = NewApplication, responses((status = 201, description = "The application; Location header", body = Application), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    ApiJson(app): ApiJson<NewApplication>,
) -> Result<Response, ApiError> {
    let p = auth.principal();
    let row = insert(&state, p.tenant_id, &p.username, app).await?;
    let stored = owned(&state, p, &row.id).await?;
    let location = format!("{}/applications/{}", crate::BASE_PATH, row.id);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        axum::Json(body(&stored, Some(Vec::new()))),
    )
        .into_response())
}

/// `GET /applications/{applicationId}`, with its keys (never their secrets).
#[utoipa::path(get, path = "/applications/{applicationId}", operation_id = "get_application", tag = "Applications", summary = "One of your applications, with its keys (never their secrets)", params(("applicationId" = String, Path, description = "Application id")), responses((status = 200, description = "The application", body = Application), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<SubscriberRole>,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Application>, ApiError> {
    let app = owned(&state, auth.principal(), &id).await?;
    let keys = keys::list_for_application(&state.am, &id)
        .await?
        .iter()
        .map(|k| crate::keys::key_body(k, None))
        .collect();
    Ok(axum::Json(body(&app, Some(keys))))
}

/// `PUT /applications/{applicationId}`.
#[utoipa::path(put, path = "/applications/{applicationId}", operation_id = "put_application", tag = "Applications", summary = "Change an application", params(("applicationId" = String, Path, description = "Application id")), request_body = NewApplication, responses((status = 200, description = "The application", body = Application), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
    ApiJson(app): ApiJson<NewApplication>,
) -> Result<axum::Json<Application>, ApiError> {
    let p = auth.principal();
    let existing = owned(&state, p, &id).await?;
    validate(&state, p.tenant_id, &app).await?;
    let mut row = row_of(id.clone(), &p.username, &app);
    row.status = existing.app.status.clone();
    let mut tx = state.am.begin().await?;
    if applications::name_taken(&mut tx, p.tenant_id, &p.username, &app.name, &id).await? {
        return Err(name_conflict(&app.name));
    }
    let n = applications::update(&mut tx, &row, now_millis()).await.map_err(|e| {
        if e.is_unique_violation() {
            name_conflict(&app.name)
        } else {
            Error::from(e).into()
        }
    })?;
    if n == 0 {
        return Err(Error::not_found("application", &id).into());
    }
    application_event(&mut tx, p.tenant_id, &row).await?;
    tx.commit().await?;
    let stored = owned(&state, p, &id).await?;
    Ok(axum::Json(body(&stored, None)))
}

/// `DELETE /applications/{applicationId}`: with its subscriptions and keys; every token
/// issued to its keys is revoked.
#[utoipa::path(delete, path = "/applications/{applicationId}", operation_id = "delete_application", tag = "Applications", summary = "Delete an application, its keys and subscriptions; its tokens are revoked", params(("applicationId" = String, Path, description = "Application id")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = auth.principal();
    owned(&state, p, &id).await?;
    let app_keys = keys::list_for_application(&state.am, &id).await?;
    let mut tx = state.am.begin().await?;
    // The tokens of the keys Tollgate issued, and its API keys (whose client id is the
    // application's id). A mapped client's tokens are a third-party key manager's: they
    // stop working with the mapping, and the client id, which another tenant may have
    // mapped as well, is not revoked for everyone.
    let issued = app_keys.iter().filter(|k| k.mode == "CREATED");
    for client in issued.map(|k| k.consumer_key.as_str()).chain([id.as_str()]) {
        state.tokens.revoke_all_for_client(&mut tx, p.tenant_id, client).await?;
    }
    if applications::delete(&mut tx, &id).await? == 0 {
        return Err(Error::not_found("application", &id).into());
    }
    events::append(
        &mut tx,
        &NewEvent::new(
            p.tenant_id,
            None,
            ControlEvent::ApplicationDeleted(ApplicationRef { id: id.clone() }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}
