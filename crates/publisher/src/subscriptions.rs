//! `GET /subscriptions?apiId`, `POST /subscriptions/block-subscription`,
//! `POST /subscriptions/unblock-subscription`: publishers see who uses their APIs and can
//! cut a subscription off (entirely, or for production keys only). Every change is an
//! outbox event, so that gateways refuse at once.

use crate::PublisherState;
use crate::types::{ApplicationInfo, Subscription, SubscriptionList};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_events::NewEvent;
use tollgate_http::auth::{CreatorOrPublisherRole, PublisherRole};
use tollgate_http::{ApiError, ApiQuery, Authenticated, Pagination};
use tollgate_model::{Error, FieldError, TenantId, now_millis};
use tollgate_store::events;
use tollgate_store::subscriptions::{self, SubscriptionRow};

fn not_found(id: &str) -> ApiError {
    Error::not_found("subscription", id).into()
}

fn body(s: &SubscriptionRow) -> Subscription {
    Subscription {
        subscription_id: s.id.clone(),
        application_info: ApplicationInfo {
            application_id: s.application_id.clone(),
            name: s.application_name.clone(),
            subscriber: s.application_owner.clone(),
            description: s.application_description.clone(),
        },
        api_id: s.api_id.clone(),
        throttling_policy: s.throttling_policy.clone(),
        requested_throttling_policy: s.throttling_policy.clone(),
        subscription_status: s.status.clone(),
        created_time: tollgate_model::rfc3339(s.created_at),
    }
}

/// Query of `GET /subscriptions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ListQuery {
    api_id: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
}

/// `GET /subscriptions?apiId`.
#[utoipa::path(get, path = "/subscriptions", operation_id = "get_subscriptions", tag = "Subscriptions", summary = "Subscriptions, of one API or of all",
    params(("apiId" = Option<String>, Query, description = "Only this API's subscriptions"), ("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")),
    responses((status = 200, description = "A page of subscriptions", body = SubscriptionList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let page = Pagination::from_query(q.offset, q.limit).validate()?;
    let tenant = auth.principal().tenant_id;
    if let Some(api_id) = &q.api_id {
        crate::apis::load(&state, tenant, api_id).await?;
    }
    let (rows, total) = subscriptions::list(&state.am, tenant, q.api_id.as_deref(), page.offset, page.limit).await?;
    let list: Vec<Subscription> = rows.iter().map(body).collect();
    Ok(axum::Json(SubscriptionList {
        count: list.len(),
        list,
        pagination: page.info(total),
    })
    .into_response())
}

/// Query of block and unblock.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockQuery {
    subscription_id: String,
    #[serde(default)]
    block_state: Option<String>,
}

async fn change(state: &PublisherState, tenant: TenantId, id: &str, status: &str) -> Result<Response, ApiError> {
    let sub = subscriptions::get(&state.am, tenant, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if sub.status == status {
        return Ok(axum::Json(body(&sub)).into_response());
    }
    if !matches!(sub.status.as_str(), "UNBLOCKED" | "BLOCKED" | "PROD_ONLY_BLOCKED") {
        return Err(Error::Conflict(format!("a {} subscription cannot be blocked or unblocked", sub.status)).into());
    }
    let mut tx = state.am.begin().await?;
    let changed = subscriptions::set_status(&mut tx, id, status, now_millis()).await?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(id));
    }
    // The row as it stands after the update (a plan change may have raced this).
    let sub = subscriptions::get_in(&mut tx, tenant, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let event = NewEvent::new(tenant, None, subscriptions::upserted_event(&sub));
    events::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(axum::Json(body(&sub)).into_response())
}

/// `POST /subscriptions/block-subscription?subscriptionId&blockState`.
#[utoipa::path(post, path = "/subscriptions/block-subscription", operation_id = "post_subscriptions_block_subscription", tag = "Subscriptions", summary = "Block a subscription (BLOCKED, or PROD_ONLY_BLOCKED for production keys only)",
    params(("subscriptionId" = String, Query, description = "Subscription id"), ("blockState" = String, Query, description = "BLOCKED or PROD_ONLY_BLOCKED")),
    responses((status = 200, description = "The subscription", body = Subscription), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn block(
    auth: Authenticated<PublisherRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<BlockQuery>,
) -> Result<Response, ApiError> {
    let status = match q.block_state.as_deref() {
        Some(s @ ("BLOCKED" | "PROD_ONLY_BLOCKED")) => s,
        other => {
            return Err(Error::Validation(vec![FieldError::new(
                "blockState",
                format!("`{}` must be BLOCKED or PROD_ONLY_BLOCKED", other.unwrap_or("")),
            )])
            .into());
        }
    };
    change(&state, auth.principal().tenant_id, &q.subscription_id, status).await
}

/// `POST /subscriptions/unblock-subscription?subscriptionId`.
#[utoipa::path(post, path = "/subscriptions/unblock-subscription", operation_id = "post_subscriptions_unblock_subscription", tag = "Subscriptions", summary = "Unblock a subscription",
    params(("subscriptionId" = String, Query, description = "Subscription id")),
    responses((status = 200, description = "The subscription", body = Subscription), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn unblock(
    auth: Authenticated<PublisherRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<BlockQuery>,
) -> Result<Response, ApiError> {
    change(&state, auth.principal().tenant_id, &q.subscription_id, "UNBLOCKED").await
}
