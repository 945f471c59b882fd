//! `GET/POST /subscriptions`, `GET/PUT/DELETE /subscriptions/{subscriptionId}`: a
//! subscriber's applications subscribe to published APIs with a business plan the API
//! offers. Each change is an outbox event so gateways start or stop admitting calls.

use crate::DevportalState;
use crate::apis::load_visible;
use crate::applications::owned;
use crate::types::{ApplicationInfo, Subscription, SubscriptionList};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_events::ControlEvent;
use tollgate_events::control::SubscriptionRef;
use tollgate_http::auth::{SubscribeRole, SubscriberRole};
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated, Pagination};
use tollgate_model::{Error, FieldError, LifecycleState, Principal, now_millis};
use tollgate_store::apis::StoredApi;
use tollgate_store::subscriptions::{self, SubscriptionRow};
use tollgate_store::{apis, events};

/// The `Subscription` body of a stored subscription, with its API when it still exists.
fn body(s: &SubscriptionRow, api: Option<&StoredApi>) -> Subscription {
    Subscription {
        subscription_id: s.id.clone(),
        application_id: s.application_id.clone(),
        api_id: s.api_id.clone(),
        api_info: api.map(crate::apis::info),
        application_info: ApplicationInfo {
            application_id: s.application_id.clone(),
            name: s.application_name.clone(),
            subscriber: s.application_owner.clone(),
        },
        throttling_policy: s.throttling_policy.clone(),
        requested_throttling_policy: s.throttling_policy.clone(),
        status: s.status.clone(),
    }
}

/// Checks that `api` can be subscribed to with `policy`, naming the field at fault.
pub(crate) fn check_subscribable(api: &StoredApi, policy: &str) -> Result<(), ApiError> {
    let state = api.api.life_cycle_status.unwrap_or_default();
    if state != LifecycleState::Published {
        return Err(Error::field(
            "apiId",
            format!(
                "the API is {} and cannot be subscribed to; only PUBLISHED APIs can",
                state.as_str()
            ),
        )
        .into());
    }
    if api.api.policies.is_empty() {
        return Err(Error::field(
            "throttlingPolicy",
            "the API offers no business plan yet; its publisher must add one (the API's `policies`) before anyone can subscribe",
        )
        .into());
    }
    if !api.api.policies.iter().any(|p| p == policy) {
        return Err(Error::field(
            "throttlingPolicy",
            format!(
                "the API does not offer `{policy}`; choose one of {}",
                api.api.policies.join(", ")
            ),
        )
        .into());
    }
    Ok(())
}

/// The body of `POST /subscriptions` and `PUT /subscriptions/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionInput {
    application_id: String,
    api_id: String,
    throttling_policy: String,
}

/// `POST /subscriptions`.
#[utoipa::path(post, path = "/subscriptions", operation_id = "post_subscriptions", tag = "Subscriptions", summary = "Subscribe an application to a published API with a plan it offers", request_body = SubscriptionInput, responses((status = 201, description = "The subscription; Location header", body = Subscription), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<SubscribeRole>,
    State(state): State<DevportalState>,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> Result<Response, ApiError> {
    let p = auth.principal();
    let mut errors = Vec::new();
    for (field, value) in [
        ("applicationId", &input.application_id),
        ("apiId", &input.api_id),
        ("throttlingPolicy", &input.throttling_policy),
    ] {
        if value.trim().is_empty() {
            errors.push(FieldError::new(field, "is required"));
        }
    }
    Error::check_fields(errors)?;
    owned(&state, p, &input.application_id).await.map_err(|_| {
        Error::field(
            "applicationId",
            format!("you have no application `{}`", input.application_id),
        )
    })?;
    let api = load_visible(&state, &crate::scope::TenantScope::of(p), &input.api_id)
        .await
        .map_err(|_| Error::field("apiId", format!("no API `{}` is visible to you", input.api_id)))?;
    check_subscribable(&api, &input.throttling_policy)?;
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = state.am.begin().await?;
    // The API's row lock orders this against lifecycle changes of the same API.
    let locked = apis::get_in(&mut tx, p.tenant_id, &input.api_id)
        .await?
        .ok_or_else(|| Error::field("apiId", "the API was just deleted"))?;
    check_subscribable(&locked, &input.throttling_policy)?;
    if subscriptions::find_for(&mut tx, &input.application_id, &input.api_id)
        .await?
        .is_some()
    {
        return Err(Error::Conflict("the application is already subscribed to this API".into()).into());
    }
    subscribe_in(
        &mut tx,
        p.tenant_id,
        &id,
        &input.application_id,
        &input.api_id,
        &input.throttling_policy,
    )
    .await?;
    tx.commit().await?;
    let row = subscriptions::get(&state.am, p.tenant_id, &id)
        .await?
        .ok_or_else(|| Error::not_found("subscription", &id))?;
    let location = format!("{}/subscriptions/{id}", crate::BASE_PATH);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        axum::Json(body(&row, Some(&api))),
    )
        .into_response())
}

/// Stores a new subscription inside `tx`, with its event for gateways.
pub(crate) async fn subscribe_in(
    tx: &mut tollgate_store::Tx,
    tenant: tollgate_model::TenantId,
    id: &str,
    application_id: &str,
    api_id: &str,
    policy: &str,
) -> Result<SubscriptionRow, ApiError> {
    subscriptions::insert(
        tx,
        tenant,
        id,
        application_id,
        api_id,
        policy,
        "UNBLOCKED",
        now_millis(),
    )
    .await
    .map_err(|e| {
        if e.is_unique_violation() {
            ApiError::from(Error::Conflict(
                "the application is already subscribed to this API".into(),
            ))
        } else {
            Error::from(e).into()
        }
    })?;
    let row = subscriptions::get_in(tx, tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("subscription", id))?;
    events::emit(tx, tenant, None, subscriptions::upserted_event(&row)).await?;
    Ok(row)
}

/// Changes a subscription's plan inside `tx`, with its event for gateways.
pub(crate) async fn change_plan_in(
    tx: &mut tollgate_store::Tx,
    tenant: tollgate_model::TenantId,
    id: &str,
    policy: &str,
) -> Result<SubscriptionRow, ApiError> {
    if subscriptions::set_policy(tx, id, policy, now_millis()).await? == 0 {
        return Err(Error::not_found("subscription", id).into());
    }
    let row = subscriptions::get_in(tx, tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("subscription", id))?;
    events::emit(tx, tenant, None, subscriptions::upserted_event(&row)).await?;
    Ok(row)
}

/// Query of `GET /subscriptions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ListQuery {
    application_id: Option<String>,
    api_id: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
}

/// `GET /subscriptions?applicationId&apiId`: the caller's subscriptions.
#[utoipa::path(get, path = "/subscriptions", operation_id = "get_subscriptions", tag = "Subscriptions", summary = "Your subscriptions", params(("applicationId" = Option<String>, Query, description = "Of one application"), ("apiId" = Option<String>, Query, description = "To one API"), ("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of your subscriptions", body = SubscriptionList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<SubscriberRole>,
    State(state): State<DevportalState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<SubscriptionList>, ApiError> {
    let page = Pagination::from_query(q.offset, q.limit).validate()?;
    let p = auth.principal();
    if let Some(app) = &q.application_id {
        owned(&state, p, app).await?;
    }
    let (rows, total) = subscriptions::list_for_owner(
        &state.am,
        p.tenant_id,
        &p.username,
        q.application_id.as_deref(),
        q.api_id.as_deref(),
        page.offset,
        page.limit,
    )
    .await?;
    // Each subscribed API once, for `apiInfo` (name and version in the portals' lists).
    let mut apis_by_id: std::collections::HashMap<&str, Option<StoredApi>> = std::collections::HashMap::new();
    for r in &rows {
        if !apis_by_id.contains_key(r.api_id.as_str()) {
            let api = apis::get(&state.am, p.tenant_id, &r.api_id).await?;
            apis_by_id.insert(r.api_id.as_str(), api);
        }
    }
    let list: Vec<Subscription> = rows
        .iter()
        .map(|s| body(s, apis_by_id.get(s.api_id.as_str()).and_then(Option::as_ref)))
        .collect();
    Ok(axum::Json(SubscriptionList {
        count: list.len(),
        list,
        pagination: page.info(total),
    }))
}

async fn owned_subscription(state: &DevportalState, p: &Principal, id: &str) -> Result<SubscriptionRow, ApiError> {
    match subscriptions::get(&state.am, p.tenant_id, id).await? {
        Some(s) if s.application_owner == p.username => Ok(s),
        _ => Err(Error::not_found("subscription", id).into()),
    }
}

/// `GET /subscriptions/{subscriptionId}`.
#[utoipa::path(get, path = "/subscriptions/{subscriptionId}", operation_id = "get_subscription", tag = "Subscriptions", summary = "One subscription", params(("subscriptionId" = String, Path, description = "Subscription id")), responses((status = 200, description = "The subscription", body = Subscription), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<SubscriberRole>,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Subscription>, ApiError> {
    let s = owned_subscription(&state, auth.principal(), &id).await?;
    let api = apis::get(&state.am, auth.principal().tenant_id, &s.api_id).await?;
    Ok(axum::Json(body(&s, api.as_ref())))
}

/// `PUT /subscriptions/{subscriptionId}`: changes the business plan.
#[utoipa::path(put, path = "/subscriptions/{subscriptionId}", operation_id = "put_subscription", tag = "Subscriptions", summary = "Change the business plan", params(("subscriptionId" = String, Path, description = "Subscription id")), request_body = SubscriptionInput, responses((status = 200, description = "The subscription", body = Subscription), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<SubscribeRole>,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> Result<axum::Json<Subscription>, ApiError> {
    let p = auth.principal();
    let s = owned_subscription(&state, p, &id).await?;
    let mut errors = Vec::new();
    if input.application_id != s.application_id {
        errors.push(FieldError::new(
            "applicationId",
            "cannot change; subscribe the other application instead",
        ));
    }
    if input.api_id != s.api_id {
        errors.push(FieldError::new(
            "apiId",
            "cannot change; subscribe to the other API instead",
        ));
    }
    Error::check_fields(errors)?;
    let mut tx = state.am.begin().await?;
    let api = apis::get_in(&mut tx, p.tenant_id, &s.api_id)
        .await?
        .ok_or_else(|| Error::not_found("API", &s.api_id))?;
    check_subscribable(&api, &input.throttling_policy)?;
    change_plan_in(&mut tx, p.tenant_id, &id, &input.throttling_policy).await?;
    tx.commit().await?;
    let row = owned_subscription(&state, p, &id).await?;
    Ok(axum::Json(body(&row, Some(&api))))
}

/// `DELETE /subscriptions/{subscriptionId}`: unsubscribes, unless the publisher blocked
/// the subscription (409 until they unblock it).
#[utoipa::path(delete, path = "/subscriptions/{subscriptionId}", operation_id = "delete_subscription", tag = "Subscriptions", summary = "Unsubscribe", params(("subscriptionId" = String, Path, description = "Subscription id")), responses((status = 200, description = "Removed"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<SubscribeRole>,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = auth.principal();
    let s = owned_subscription(&state, p, &id).await?;
    let mut tx = state.am.begin().await?;
    if subscriptions::delete_unless_blocked(&mut tx, &id).await? == 0 {
        // Gone meanwhile, or blocked: a block stays until the publisher lifts it, or the
        // subscriber could undo it by subscribing afresh (decision 011).
        return Err(match subscriptions::get_in(&mut tx, p.tenant_id, &id).await? {
            Some(now) if subscriptions::BLOCKED_STATUSES.contains(&now.status.as_str()) => Error::Conflict(format!(
                "the subscription is {} by the API's publisher and cannot be removed until the publisher \
                     unblocks it",
                now.status
            )),
            _ => Error::not_found("subscription", &id),
        }
        .into());
    }
    events::emit(
        &mut tx,
        p.tenant_id,
        None,
        ControlEvent::SubscriptionDeleted(SubscriptionRef {
            subscription_id: id,
            application_id: s.application_id,
            api_id: s.api_id,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}
