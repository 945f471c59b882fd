//! `POST /apis/change-lifecycle`, `GET /apis/{apiId}/lifecycle-state`,
//! `GET /apis/{apiId}/lifecycle-history`.

use crate::PublisherState;
use crate::apis::{load, load_in};
use crate::types::{LifecycleHistory, LifecycleHistoryItem, LifecycleStateBody, LifecycleTransition, WorkflowResponse};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_events::control::ApiStateChange;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::{CreatorOrPublisherRole, PublisherRole};
use tollgate_http::precondition::check_if_match;
use tollgate_http::{ApiError, ApiQuery, Authenticated};
use tollgate_model::{Error, FieldError, LifecycleAction, LifecycleState, now_millis};
use tollgate_store::{apis, events};

/// The reference's `LifecycleState` body for a state.
fn state_body(state: LifecycleState) -> LifecycleStateBody {
    LifecycleStateBody {
        state: state.display_name().to_string(),
        check_items: Vec::new(),
        available_transitions: state
            .actions()
            .iter()
            .map(|a| LifecycleTransition {
                event: a.as_str().to_string(),
                target_state: a.target().display_name().to_string(),
            })
            .collect(),
    }
}

/// Query parameters of `change-lifecycle`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChangeQuery {
    api_id: String,
    action: String,
    #[serde(default)]
    #[allow(dead_code)]
    lifecycle_checklist: Option<String>,
}

/// `POST /apis/change-lifecycle?apiId&action`: moves the API along the reference's
/// lifecycle; an action the current state does not allow is a 400 naming the allowed ones.
#[utoipa::path(post, path = "/apis/change-lifecycle", operation_id = "post_apis_change_lifecycle", tag = "API Lifecycle", summary = "Apply a lifecycle action", params(("apiId" = String, Query, description = "API id"), ("action" = String, Query, description = "Publish, Deploy as a Prototype, Demote to Created, Block, Deprecate, Re-Publish, Retire"), ("lifecycleChecklist" = Option<String>, Query, description = "Accepted for compatibility")), responses((status = 200, description = "workflowStatus and the new lifecycleState", body = WorkflowResponse), (status = 412, description = "If-Match does not match"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn change(
    auth: Authenticated<PublisherRole>,
    State(state): State<PublisherState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ChangeQuery>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let mut tx = state.am.begin().await?;
    let current = load_in(&mut tx, tenant, &q.api_id).await?;
    check_if_match(&headers, &current.updated_at.to_string())?;
    let from = current.api.life_cycle_status.unwrap_or_default();
    let allowed = || from.actions().iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
    let action: LifecycleAction = q.action.parse().map_err(|_| {
        Error::Validation(vec![FieldError::new(
            "action",
            format!(
                "unknown action `{}`; from {} the allowed actions are: {}",
                q.action,
                from.display_name(),
                allowed()
            ),
        )])
    })?;
    let Some(to) = from.apply(action) else {
        let allowed = if from.actions().is_empty() {
            "none".to_string()
        } else {
            allowed()
        };
        return Err(Error::Validation(vec![FieldError::new(
            "action",
            format!(
                "`{action}` is not allowed from {}; allowed: {allowed}",
                from.display_name()
            ),
        )])
        .into());
    };
    set_state_in(&mut tx, &current, to, &auth.principal().username).await?;
    tx.commit().await?;
    tracing::info!(api_id = %q.api_id, from = %from, to = %to, by = %auth.principal().username, "API lifecycle changed.");
    Ok(axum::Json(WorkflowResponse {
        workflow_status: "APPROVED".into(),
        lifecycle_state: state_body(to),
    })
    .into_response())
}

/// Moves `current` to state `to` inside `tx`: the history records it and gateways are
/// told through the outbox. The caller has checked that the move is allowed.
pub(crate) async fn set_state_in(
    tx: &mut tollgate_store::Tx,
    current: &tollgate_store::apis::StoredApi,
    to: LifecycleState,
    user: &str,
) -> Result<(), ApiError> {
    let from = current.api.life_cycle_status.unwrap_or_default();
    let now = now_millis().max(current.updated_at + 1);
    apis::set_lifecycle(tx, &current.id, from, to, user, now).await?;
    let event = NewEvent::new(
        current.tenant_id,
        None,
        ControlEvent::ApiStateChanged(ApiStateChange {
            api_id: current.id.clone(),
            name: current.api.name.clone(),
            version: current.api.version.clone(),
            context: current.api.resolved_context(),
            previous_state: from,
            life_cycle_status: to,
        }),
    );
    events::append(tx, &event).await?;
    Ok(())
}

/// `GET /apis/{apiId}/lifecycle-state`.
#[utoipa::path(get, path = "/apis/{apiId}/lifecycle-state", operation_id = "get_api_lifecycle_state", tag = "API Lifecycle", summary = "Current state and allowed transitions", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "state, availableTransitions", body = LifecycleStateBody), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn state(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    let stored = load(&state, auth.principal().tenant_id, &api_id).await?;
    Ok(axum::Json(state_body(stored.api.life_cycle_status.unwrap_or_default())).into_response())
}

/// `GET /apis/{apiId}/lifecycle-history`.
#[utoipa::path(get, path = "/apis/{apiId}/lifecycle-history", operation_id = "get_api_lifecycle_history", tag = "API Lifecycle", summary = "Lifecycle changes, oldest first", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "The API's lifecycle changes", body = LifecycleHistory), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn history(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    load(&state, auth.principal().tenant_id, &api_id).await?;
    let entries = apis::lifecycle_history(&state.am, &api_id).await?;
    let title = |s: &str| {
        s.parse::<LifecycleState>()
            .map(|st| st.display_name().to_string())
            .unwrap_or(s.to_string())
    };
    let list: Vec<LifecycleHistoryItem> = entries
        .iter()
        .map(|e| LifecycleHistoryItem {
            previous_state: e.previous_state.as_deref().map(title),
            post_state: title(&e.post_state),
            user: e.username.clone(),
            updated_time: tollgate_model::rfc3339(e.updated_at),
        })
        .collect();
    Ok(axum::Json(LifecycleHistory {
        count: list.len(),
        list,
    })
    .into_response())
}
