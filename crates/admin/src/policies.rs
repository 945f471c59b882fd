//! `GET/POST /throttling/policies/{subscription|application|advanced|custom}`,
//! `GET/PUT/DELETE /throttling/policies/{level}/{policyId}`: throttling policies in the
//! reference's shapes. Each level has its own routes and body type (documented per level,
//! as the reference does); a level that does not exist is 404. A policy that APIs use
//! cannot be deleted (409 naming them); every change is an outbox event for the traffic
//! manager and gateways.

use crate::AdminState;
use crate::types::{
    AdvancedThrottlePolicy, AdvancedThrottlePolicyList, ApplicationThrottlePolicy, ApplicationThrottlePolicyList,
    CustomRule, CustomRuleList, SubscriptionThrottlePolicy, SubscriptionThrottlePolicyList,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tollgate_events::ControlEvent;
use tollgate_events::control::{PolicyChange, PolicyName, PolicyRemoval};
use tollgate_http::auth::AdminRole;
use tollgate_http::{ApiError, ApiJson, Authenticated};
use tollgate_model::custom_rule::CustomPolicy;
use tollgate_model::policy::{AdvancedPolicy, ApplicationPolicy, PolicyLevel, SubscriptionPolicy};
use tollgate_model::{Error, FieldError, Principal, TenantId, now_millis};
use tollgate_store::apis::{self, ApiFilter};
use tollgate_store::events;
use tollgate_store::policies::{self, StoredPolicy};

pub(crate) mod transfer;

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/throttling/policies/export", get(transfer::export))
        .route("/throttling/policies/import", axum::routing::post(transfer::import))
        .route(
            "/throttling/policies/subscription",
            get(list_subscription).post(create_subscription),
        )
        .route(
            "/throttling/policies/subscription/{policy_id}",
            get(get_subscription)
                .put(update_subscription)
                .delete(delete_subscription),
        )
        .route(
            "/throttling/policies/application",
            get(list_application).post(create_application),
        )
        .route(
            "/throttling/policies/application/{policy_id}",
            get(get_application).put(update_application).delete(delete_application),
        )
        .route(
            "/throttling/policies/advanced",
            get(list_advanced).post(create_advanced),
        )
        .route(
            "/throttling/policies/advanced/{policy_id}",
            get(get_advanced).put(update_advanced).delete(delete_advanced),
        )
        .route("/throttling/policies/custom", get(list_custom).post(create_custom))
        .route(
            "/throttling/policies/custom/{rule_id}",
            get(get_custom).put(update_custom).delete(delete_custom),
        )
        // Any other level: 404 naming the levels (after authentication, as before).
        .route("/throttling/policies/{level}", get(unknown_level).post(unknown_level))
        .route(
            "/throttling/policies/{level}/{policy_id}",
            get(unknown_level_item)
                .put(unknown_level_item)
                .delete(unknown_level_item),
        )
}

/// What the four policy shapes have in common, for the handlers below.
trait PolicyBody: DeserializeOwned + Serialize + Send + 'static {
    /// The level whose routes take and answer this shape.
    const LEVEL: PolicyLevel;
    /// The policy's name (unique per level).
    fn name(&self) -> &str;
    /// Every bad field.
    fn check(&self) -> Vec<FieldError>;
    /// Fills in the output-only fields.
    fn set_output(&mut self, id: &str);
}

macro_rules! policy_body {
    ($t:ty, $level:expr) => {
        impl PolicyBody for $t {
            const LEVEL: PolicyLevel = $level;
            fn name(&self) -> &str {
                &self.policy_name
            }
            fn check(&self) -> Vec<FieldError> {
                self.validate()
            }
            fn set_output(&mut self, id: &str) {
                self.policy_id = Some(id.to_string());
                self.policy_type = Some(Self::LEVEL.type_name().to_string());
                self.is_deployed = true;
            }
        }
    };
}
policy_body!(SubscriptionPolicy, PolicyLevel::Subscription);
policy_body!(ApplicationPolicy, PolicyLevel::Application);
policy_body!(AdvancedPolicy, PolicyLevel::Advanced);
policy_body!(CustomPolicy, PolicyLevel::Custom);

/// Validates a body: (name, JSON to store, without the output-only fields).
fn to_store<T: PolicyBody>(mut p: T) -> Result<(String, Value), ApiError> {
    Error::check_fields(p.check())?;
    p.set_output("");
    let mut v = serde_json::to_value(&p).map_err(|e| Error::Internal(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        for key in ["policyId", "type", "isDeployed"] {
            o.remove(key);
        }
    }
    Ok((p.name().to_string(), v))
}

/// The stored policy as the API answers it (the stored JSON is the shape's own, written
/// by [`to_store`] or the built-in defaults).
fn answer<T: PolicyBody>(p: &StoredPolicy) -> Result<T, ApiError> {
    let mut t: T = serde_json::from_value(p.body.clone())
        .map_err(|e| Error::Internal(format!("stored {} policy {}: {e}", p.level, p.id)))?;
    t.set_output(&p.id);
    Ok(t)
}

fn not_found(id: &str) -> ApiError {
    Error::not_found("policy", id).into()
}

async fn list_of<T: PolicyBody>(who: &Principal, state: &AdminState) -> Result<Vec<T>, ApiError> {
    policies::list(&state.am, who.tenant_id, T::LEVEL)
        .await?
        .iter()
        .map(answer)
        .collect()
}

async fn get_of<T: PolicyBody>(who: &Principal, state: &AdminState, id: &str) -> Result<T, ApiError> {
    let p = policies::get(&state.am, who.tenant_id, T::LEVEL, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    answer(&p)
}

/// Creates the policy: (its `Location`, the policy as answered).
async fn create_of<T: PolicyBody>(who: &Principal, state: &AdminState, body: T) -> Result<(String, T), ApiError> {
    let level = T::LEVEL;
    let (name, value) = to_store(body)?;
    let tenant = who.tenant_id;
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = state.am.begin().await?;
    if policies::exists_in(&mut tx, tenant, level, &name).await? {
        return Err(Error::Conflict(format!("a {level} policy named `{name}` already exists")).into());
    }
    policies::insert(&mut tx, tenant, level, &id, &name, &value, false, now_millis()).await?;
    let change = PolicyChange {
        level,
        policy_id: id.clone(),
        policy: value.clone(),
    };
    events::emit(&mut tx, tenant, None, ControlEvent::PolicyUpserted(change)).await?;
    tx.commit().await?;
    tracing::info!(level = %level, policy = %name, by = %who.username, "Throttling policy created.");
    let stored = StoredPolicy {
        id: id.clone(),
        level,
        name,
        body: value,
        read_only: false,
    };
    let location = format!("{}/throttling/policies/{level}/{id}", crate::BASE_PATH);
    Ok((location, answer(&stored)?))
}

async fn update_of<T: PolicyBody>(who: &Principal, state: &AdminState, id: &str, body: T) -> Result<T, ApiError> {
    let level = T::LEVEL;
    let (name, value) = to_store(body)?;
    let tenant = who.tenant_id;
    let current = policies::get(&state.am, tenant, level, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if name != current.name {
        return Err(Error::field("policyName", "cannot be changed; APIs and subscriptions refer to it").into());
    }
    let mut tx = state.am.begin().await?;
    let changed = policies::update(&mut tx, &current.id, &value, now_millis()).await?;
    // Zero rows: another request removed it since we read it; tell no one.
    if changed == 0 {
        return Err(not_found(&current.id));
    }
    let change = PolicyChange {
        level,
        policy_id: current.id.clone(),
        policy: value.clone(),
    };
    events::emit(&mut tx, tenant, None, ControlEvent::PolicyUpserted(change)).await?;
    tx.commit().await?;
    let stored = StoredPolicy { body: value, ..current };
    answer(&stored)
}

/// The APIs of the tenant that use `name` at `level` (`Name version` each).
async fn users_of(
    state: &AdminState,
    tenant: TenantId,
    level: PolicyLevel,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    let (all, _) = apis::list(&state.am, tenant, &ApiFilter::default(), 0, i64::MAX).await?;
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
    let (subscriptions, applications) = tollgate_store::subscriptions::policy_usage(&state.am, tenant, name).await?;
    match level {
        PolicyLevel::Subscription if subscriptions > 0 => users.push(format!("{subscriptions} subscription(s)")),
        PolicyLevel::Application if applications > 0 => users.push(format!("{applications} application(s)")),
        _ => {}
    }
    Ok(users)
}

async fn delete_of(level: PolicyLevel, who: &Principal, state: &AdminState, id: &str) -> Result<StatusCode, ApiError> {
    let tenant = who.tenant_id;
    let current = policies::get(&state.am, tenant, level, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if current.read_only {
        return Err(Error::Conflict(format!("`{}` is built in and cannot be deleted", current.name)).into());
    }
    let mut tx = state.am.begin().await?;
    tollgate_store::lock_named(&mut tx, &apis::references_lock(tenant)).await?;
    let users = users_of(state, tenant, level, &current.name).await?;
    if !users.is_empty() {
        return Err(Error::Conflict(format!(
            "the {level} policy `{}` is in use by {}; change them first",
            current.name,
            users.join(", ")
        ))
        .into());
    }
    let changed = policies::delete(&mut tx, &current.id).await?;
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
    events::emit(&mut tx, tenant, None, ControlEvent::PolicyDeleted(removal)).await?;
    tx.commit().await?;
    Ok(StatusCode::OK)
}

/// Any other level (`/throttling/policies/weird`): 404 naming the levels.
async fn unknown_level(_auth: Authenticated<AdminRole>, Path(level): Path<String>) -> ApiError {
    level_not_found(&level)
}

/// Any other level, one policy of it: 404 naming the levels.
async fn unknown_level_item(_auth: Authenticated<AdminRole>, Path((level, _)): Path<(String, String)>) -> ApiError {
    level_not_found(&level)
}

fn level_not_found(segment: &str) -> ApiError {
    ApiError(Error::NotFound {
        resource: "policy level",
        id: segment
            .parse::<PolicyLevel>()
            .err()
            .unwrap_or_else(|| segment.to_string()),
    })
}

/// The five operations of one level, each typed with the level's body and documented
/// under its own path, as the reference documents them.
macro_rules! level_operations {
    (
        $model:ty => $body:ident, $list:ident;
        tag: $tag:tt, collection: $coll:tt, item: $item:tt, id: $id:tt;
        $list_fn:ident = $list_op:tt, $get_fn:ident = $get_op:tt, $create_fn:ident = $create_op:tt,
        $update_fn:ident = $update_op:tt, $delete_fn:ident = $delete_op:tt $(,)?
    ) => {
        #[utoipa::path(get, path = $coll, operation_id = $list_op, tag = $tag, summary = "List the policies of the level", responses((status = 200, description = "The policies", body = $list), tollgate_http::openapi_doc::CommonErrors))]
        pub(crate) async fn $list_fn(
            auth: Authenticated<AdminRole>,
            State(state): State<AdminState>,
        ) -> Result<axum::Json<$list>, ApiError> {
            let list: Vec<$body> = list_of::<$model>(auth.principal(), &state)
                .await?
                .into_iter()
                .map($body)
                .collect();
            Ok(axum::Json(list.into()))
        }

        #[utoipa::path(get, path = $item, operation_id = $get_op, tag = $tag, summary = "Get a policy", params(($id = String, Path, description = "Policy id or name")), responses((status = 200, description = "The policy", body = $body), tollgate_http::openapi_doc::CommonErrors))]
        pub(crate) async fn $get_fn(
            auth: Authenticated<AdminRole>,
            State(state): State<AdminState>,
            Path(id): Path<String>,
        ) -> Result<axum::Json<$body>, ApiError> {
            Ok(axum::Json($body(get_of::<$model>(auth.principal(), &state, &id).await?)))
        }

        #[utoipa::path(post, path = $coll, operation_id = $create_op, tag = $tag, summary = "Create a policy", request_body = $body, responses((status = 201, description = "The policy", body = $body), tollgate_http::openapi_doc::CommonErrors))]
        pub(crate) async fn $create_fn(
            auth: Authenticated<AdminRole>,
            State(state): State<AdminState>,
            ApiJson($body(body)): ApiJson<$body>,
        ) -> Result<Response, ApiError> {
            let (location, policy) = create_of::<$model>(auth.principal(), &state, body).await?;
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                axum::Json($body(policy)),
            )
                .into_response())
        }

        #[utoipa::path(put, path = $item, operation_id = $update_op, tag = $tag, summary = "Change a policy (not its name)", params(($id = String, Path, description = "Policy id or name")), request_body = $body, responses((status = 200, description = "The policy", body = $body), tollgate_http::openapi_doc::CommonErrors))]
        pub(crate) async fn $update_fn(
            auth: Authenticated<AdminRole>,
            State(state): State<AdminState>,
            Path(id): Path<String>,
            ApiJson($body(body)): ApiJson<$body>,
        ) -> Result<axum::Json<$body>, ApiError> {
            Ok(axum::Json($body(update_of::<$model>(auth.principal(), &state, &id, body).await?)))
        }

        #[utoipa::path(delete, path = $item, operation_id = $delete_op, tag = $tag, summary = "Delete a policy nothing uses", params(($id = String, Path, description = "Policy id or name")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
        pub(crate) async fn $delete_fn(
            auth: Authenticated<AdminRole>,
            State(state): State<AdminState>,
            Path(id): Path<String>,
        ) -> Result<StatusCode, ApiError> {
            delete_of(<$model as PolicyBody>::LEVEL, auth.principal(), &state, &id).await
        }
    };
}

level_operations!(
    SubscriptionPolicy => SubscriptionThrottlePolicy, SubscriptionThrottlePolicyList;
    tag: "Subscription Policies", collection: "/throttling/policies/subscription",
    item: "/throttling/policies/subscription/{policyId}", id: "policyId";
    list_subscription = "get_subscription_policies", get_subscription = "get_subscription_policy",
    create_subscription = "post_subscription_policies", update_subscription = "put_subscription_policy",
    delete_subscription = "delete_subscription_policy",
);
level_operations!(
    ApplicationPolicy => ApplicationThrottlePolicy, ApplicationThrottlePolicyList;
    tag: "Application Policies", collection: "/throttling/policies/application",
    item: "/throttling/policies/application/{policyId}", id: "policyId";
    list_application = "get_application_policies", get_application = "get_application_policy",
    create_application = "post_application_policies", update_application = "put_application_policy",
    delete_application = "delete_application_policy",
);
level_operations!(
    AdvancedPolicy => AdvancedThrottlePolicy, AdvancedThrottlePolicyList;
    tag: "Advanced Policies", collection: "/throttling/policies/advanced",
    item: "/throttling/policies/advanced/{policyId}", id: "policyId";
    list_advanced = "get_advanced_policies", get_advanced = "get_advanced_policy",
    create_advanced = "post_advanced_policies", update_advanced = "put_advanced_policy",
    delete_advanced = "delete_advanced_policy",
);
level_operations!(
    CustomPolicy => CustomRule, CustomRuleList;
    tag: "Custom Rules", collection: "/throttling/policies/custom",
    item: "/throttling/policies/custom/{ruleId}", id: "ruleId";
    list_custom = "get_custom_rules", get_custom = "get_custom_rule",
    create_custom = "post_custom_rules", update_custom = "put_custom_rule",
    delete_custom = "delete_custom_rule",
);
