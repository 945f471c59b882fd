//! `GET /throttling-policies/{policyLevel}`: the business plans (`subscription`) and
//! application policies (`application`) a subscriber can choose from.

use crate::DevportalState;
use axum::extract::{Path, State};
use tollgate_http::{ApiError, MaybeAuthenticated};
use tollgate_model::policy::ThrottlingPolicyList;
use tollgate_model::policy::{PolicyLevel, ThrottlingPolicySummary};
use tollgate_model::{Error, TenantId};
use tollgate_store::policies;

/// `GET /throttling-policies/{policyLevel}` (anonymous allowed, as the catalogue is).
#[utoipa::path(get, path = "/throttling-policies/{policyLevel}", operation_id = "get_throttling_policies", tag = "Throttling Policies", summary = "Business plans (subscription) or application policies", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("policyLevel" = String, Path, description = "subscription or application")), responses((status = 200, description = "The policies of that level", body = ThrottlingPolicyList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    MaybeAuthenticated(caller): MaybeAuthenticated,
    State(state): State<DevportalState>,
    Path(level): Path<String>,
) -> Result<axum::Json<ThrottlingPolicyList>, ApiError> {
    let store_level = match level.as_str() {
        "subscription" => PolicyLevel::Subscription,
        "application" => PolicyLevel::Application,
        other => {
            return Err(Error::field("policyLevel", format!("`{other}` must be subscription or application")).into());
        }
    };
    let tenant = caller.map(|p| p.tenant_id).unwrap_or(TenantId::DEFAULT);
    let list: Vec<ThrottlingPolicySummary> = policies::list(&state.am, tenant, store_level)
        .await?
        .iter()
        .map(|p| p.policy_summary(&level))
        .collect();
    Ok(axum::Json(ThrottlingPolicyList {
        count: list.len(),
        list,
    }))
}
