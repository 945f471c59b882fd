//! `GET/POST /throttling/policies/{subscription|application|advanced}`,
//! `GET/PUT/DELETE /throttling/policies/{level}/{policyId}`: throttling policies in the
//! reference's shapes. A policy that APIs use cannot be deleted (409 naming them); every
//! change is an outbox event for the traffic manager and gateways.

use crate::AdminState;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tollgate_events::control::{PolicyChange, PolicyName, PolicyRemoval};
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::AdminRole;
use tollgate_http::error::{parse_body, read_body};
use tollgate_http::{ApiError, Authenticated};
use tollgate_model::custom_rule::CustomPolicy;
use tollgate_model::policy::{AdvancedPolicy, ApplicationPolicy, PolicyLevel, SubscriptionPolicy};
use tollgate_model::{Error, FieldError, TenantId, now_millis};
use tollgate_store::apis::{self, ApiFilter};
use tollgate_store::policies::{self, StoredPolicy};
use tollgate_store::{Tx, events};

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/throttling/policies/{level}", get(list).post(create))
        .route(
            "/throttling/policies/{level}/{policy_id}",
            get(get_one).put(update).delete(delete),
        )
}

/// What the three policy shapes have in common, for the handlers below.
trait PolicyBody: DeserializeOwned + Serialize {
    fn name(&self) -> &str;
    fn check(&self) -> Vec<FieldError>;
    fn set_output(&mut self, id: &str, level: PolicyLevel);
}

macro_rules! policy_body {
    ($t:ty) => {
        impl PolicyBody for $t {
            fn name(&self) -> &str {
                &self.policy_name
            }
            fn check(&self) -> Vec<FieldError> {
                self.validate()
            }
            fn set_output(&mut self, id: &str, level: PolicyLevel) {
                self.policy_id = Some(id.to_string());
                self.policy_type = Some(level.type_name().to_string());
                self.is_deployed = true;
            }
        }
    };
}
policy_body!(SubscriptionPolicy);
policy_body!(ApplicationPolicy);
policy_body!(AdvancedPolicy);
policy_body!(CustomPolicy);

fn level_of(segment: &str) -> Result<PolicyLevel, ApiError> {
    segment.parse().map_err(|e: String| {
        ApiError(Error::NotFound {
            resource: "policy level",
            id: e,
        })
    })
}

/// Parses, validates and normalises a body of `level`: (name, JSON to store).
fn parse(level: PolicyLevel, parts: &axum::http::request::Parts, bytes: &[u8]) -> Result<(String, Value), ApiError> {
    fn typed<T: PolicyBody>(parts: &axum::http::request::Parts, bytes: &[u8]) -> Result<(String, Value), ApiError> {
        let mut p: T = parse_body(parts, bytes)?;
        let errors = p.check();
        Error::check_fields(errors)?;
        p.set_output("", PolicyLevel::Subscription);
        let mut v = serde_json::to_value(&p).map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            for key in ["policyId", "type", "isDeployed"] {
                o.remove(key);
            }
        }
        Ok((p.name().to_string(), v))
    }
    match level {
        PolicyLevel::Subscription => typed::<SubscriptionPolicy>(parts, bytes),
        PolicyLevel::Application => typed::<ApplicationPolicy>(parts, bytes),
        PolicyLevel::Advanced => typed::<AdvancedPolicy>(parts, bytes),
        PolicyLevel::Custom => typed::<CustomPolicy>(parts, bytes),
    }
}

/// The policy as the API returns it.
fn body(p: &StoredPolicy) -> Value {
    let mut v = p.body.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("policyId".into(), json!(p.id));
        o.insert("type".into(), json!(p.level.type_name()));
        o.insert("isDeployed".into(), json!(true));
    }
    v
}

async fn emit(tx: &mut Tx, tenant: TenantId, event: ControlEvent) -> Result<(), ApiError> {
    let event = NewEvent::new(tenant, None, event);
    events::append(tx, &event).await.map_err(Error::from)?;
    Ok(())
}

fn not_found(id: &str) -> ApiError {
    Error::not_found("policy", id).into()
}

#[utoipa::path(get, path = "/throttling/policies/{level}", operation_id = "get_throttling_policies", tag = "Throttling Policies", summary = "List policies of a level", params(("level" = String, Path, description = "subscription, application, advanced or custom")), responses((status = 200, description = "count, list", body = Object), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(level): Path<String>,
) -> Result<Response, ApiError> {
    let level = level_of(&level)?;
    let list: Vec<Value> = policies::list(&state.am, auth.principal().tenant_id, level)
        .await
        .map_err(Error::from)?
        .iter()
        .map(body)
        .collect();
    Ok(axum::Json(json!({ "count": list.len(), "list": list })).into_response())
}

#[utoipa::path(get, path = "/throttling/policies/{level}/{policyId}", operation_id = "get_throttling_policy", tag = "Throttling Policies", summary = "Get a policy", params(("level" = String, Path, description = "subscription, application, advanced or custom"), ("policyId" = String, Path, description = "Policy id or name")), responses((status = 200, description = "The policy", body = Object), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path((level, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let level = level_of(&level)?;
    let p = policies::get(&state.am, auth.principal().tenant_id, level, &id)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(body(&p)).into_response())
}

#[utoipa::path(post, path = "/throttling/policies/{level}", operation_id = "post_throttling_policies", tag = "Throttling Policies", summary = "Create a policy (body shape by level)", params(("level" = String, Path, description = "subscription, application, advanced or custom")), request_body = crate::api_doc::AnyPolicy, responses((status = 201, description = "The policy", body = Object), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(level): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let level = level_of(&level)?;
    let (parts, bytes) = read_body(req).await?;
    let (name, value) = parse(level, &parts, &bytes)?;
    let tenant = auth.principal().tenant_id;
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = state.am.begin().await.map_err(Error::from)?;
    if policies::exists_in(&mut tx, tenant, level, &name)
        .await
        .map_err(Error::from)?
    {
        return Err(Error::Conflict(format!("a {level} policy named `{name}` already exists")).into());
    }
    policies::insert(&mut tx, tenant, level, &id, &name, &value, false, now_millis())
        .await
        .map_err(Error::from)?;
    let change = PolicyChange {
        level,
        policy_id: id.clone(),
        policy: value.clone(),
    };
    emit(&mut tx, tenant, ControlEvent::PolicyUpserted(change)).await?;
    tx.commit().await.map_err(Error::from)?;
    tracing::info!(level = %level, policy = %name, by = %auth.principal().username, "Throttling policy created.");
    let stored = StoredPolicy {
        id: id.clone(),
        level,
        name,
        body: value,
        read_only: false,
    };
    let location = format!("{}/throttling/policies/{level}/{id}", crate::BASE_PATH);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body(&stored)),
    )
        .into_response())
}

#[utoipa::path(put, path = "/throttling/policies/{level}/{policyId}", operation_id = "put_throttling_policy", tag = "Throttling Policies", summary = "Change a policy (not its name)", params(("level" = String, Path, description = "subscription, application, advanced or custom"), ("policyId" = String, Path, description = "Policy id or name")), request_body = crate::api_doc::AnyPolicy, responses((status = 200, description = "The policy", body = Object), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path((level, id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let level = level_of(&level)?;
    let (parts, bytes) = read_body(req).await?;
    let (name, value) = parse(level, &parts, &bytes)?;
    let tenant = auth.principal().tenant_id;
    let current = policies::get(&state.am, tenant, level, &id)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| not_found(&id))?;
    if name != current.name {
        return Err(Error::field("policyName", "cannot be changed; APIs and subscriptions refer to it").into());
    }
    let mut tx = state.am.begin().await.map_err(Error::from)?;
    let changed = policies::update(&mut tx, &current.id, &value, now_millis())
        .await
        .map_err(Error::from)?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(&current.id));
    }
    let change = PolicyChange {
        level,
        policy_id: current.id.clone(),
        policy: value.clone(),
    };
    emit(&mut tx, tenant, ControlEvent::PolicyUpserted(change)).await?;
    tx.commit().await.map_err(Error::from)?;
    let stored = StoredPolicy { body: value, ..current };
    Ok(axum::Json(body(&stored)).into_response())
}

/// The APIs of the tenant that use `name` at `level` (`Name version` each).
async fn users_of(
    state: &AdminState,
    tenant: TenantId,
    level: PolicyLevel,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    let (all, _) = apis::list(&state.am, tenant, &ApiFilter::default(), 0, i64::MAX)
        .await
        .map_err(Error::from)?;
    let mut users: Vec<String> = all
        .iter()
        .filter(|s| match level {
            PolicyLevel::Subscription => s.api.policies.iter().any(|p| p == name),
            PolicyLevel::Advanced => {
                s.api.api_throttling_policy.as_deref() == Some(name)
                    || s.api.operations.iter().any(|o| o.throttling_policy == name)
            }
            // Applications name application policies (counted below); custom rules
            // apply to all traffic and nothing names them.
            PolicyLevel::Application | PolicyLevel::Custom => false,
        })
        .map(|s| format!("API `{}` {}", s.api.name, s.api.version))
        .collect();
    let (subscriptions, applications) = tollgate_store::subscriptions::policy_usage(&state.am, tenant, name)
        .await
        .map_err(Error::from)?;
    match level {
        PolicyLevel::Subscription if subscriptions > 0 => users.push(format!("{subscriptions} subscription(s)")),
        PolicyLevel::Application if applications > 0 => users.push(format!("{applications} application(s)")),
        _ => {}
    }
    Ok(users)
}

#[utoipa::path(delete, path = "/throttling/policies/{level}/{policyId}", operation_id = "delete_throttling_policy", tag = "Throttling Policies", summary = "Delete a policy no API uses", params(("level" = String, Path, description = "subscription, application, advanced or custom"), ("policyId" = String, Path, description = "Policy id or name")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path((level, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let level = level_of(&level)?;
    let tenant = auth.principal().tenant_id;
    let current = policies::get(&state.am, tenant, level, &id)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| not_found(&id))?;
    if current.read_only {
        return Err(Error::Conflict(format!("`{}` is built in and cannot be deleted", current.name)).into());
    }
    let mut tx = state.am.begin().await.map_err(Error::from)?;
    tollgate_store::lock_named(&mut tx, &apis::references_lock(tenant))
        .await
        .map_err(Error::from)?;
    let users = users_of(&state, tenant, level, &current.name).await?;
    if !users.is_empty() {
        return Err(Error::Conflict(format!(
            "the {level} policy `{}` is in use by {}; change them first",
            current.name,
            users.join(", ")
        ))
        .into());
    }
    let changed = policies::delete(&mut tx, &current.id).await.map_err(Error::from)?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(&current.id));
    }
    let removal = PolicyRemoval {
        level,
        policy_id: current.id.clone(),
        policy: PolicyName {
            policy_name: current.name.clone(),
        },
    };
    emit(&mut tx, tenant, ControlEvent::PolicyDeleted(removal)).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(StatusCode::OK.into_response())
}
