//! `GET /throttling-policies/{policyLevel}`: the business plans (`subscription`) and
//! application policies (`application`) a subscriber can choose from.

use crate::DevportalState;
use crate::scope::TenantScope;
use axum::extract::{Path, State};
use tollgate_http::ApiError;
use tollgate_model::Error;
use tollgate_model::policy::ThrottlingPolicyList;
use tollgate_model::policy::{PolicyLevel, ThrottlingPolicySummary};
use tollgate_store::policies;

/// `GET /throttling-policies/{policyLevel}` (anonymous allowed, as the catalogue is).
#[utoipa::path(get, path = "/throttling-policies/{policyLevel}", operation_id = "get_throttling_policies", tag = "Throttling Policies", summary = "Business plans (subscription) or application policies", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("policyLevel" = String, Path, description = "subscription or application")), responses((status = 200, description = "The policies of that level", body = ThrottlingPolicyList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    scope: TenantScope,
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
    let list: Vec<ThrottlingPolicySummary> = policies::list(&state.am, scope.tenant_id, store_level)
        .await?
        .iter()
        .map(|p| p.policy_summary(&level))
        .collect();
    Ok(axum::Json(ThrottlingPolicyList {
        count: list.len(),
        list,
    }))
}
