//! `GET /throttling-policies/{policyLevel}`: the policies a publisher can pick from,
//! `subscription` (business plans) or `api` (advanced), in the reference's
//! `ThrottlingPolicy` shape.

use crate::PublisherState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use tollgate_http::auth::CreatorOrPublisherRole;
use tollgate_http::{ApiError, Authenticated};
use tollgate_model::Error;
use tollgate_model::policy::PolicyLevel;
use tollgate_model::policy::ThrottlingPolicyList;
use tollgate_model::policy::ThrottlingPolicySummary;
use tollgate_store::policies;

/// `GET /throttling-policies/{policyLevel}`.
#[utoipa::path(get, path = "/throttling-policies/{policyLevel}", operation_id = "get_throttling_policies", tag = "Throttling Policies", summary = "Policies a publisher can choose", params(("policyLevel" = String, Path, description = "subscription or api")), responses((status = 200, description = "The policies", body = ThrottlingPolicyList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(level): Path<String>,
) -> Result<Response, ApiError> {
    let (store_level, shown) = match level.as_str() {
        "subscription" => (PolicyLevel::Subscription, "subscription"),
        "api" => (PolicyLevel::Advanced, "api"),
        other => {
            return Err(Error::field("policyLevel", format!("`{other}` must be subscription or api")).into());
        }
    };
    let list: Vec<ThrottlingPolicySummary> = policies::list(&state.am, auth.principal().tenant_id, store_level)
        .await?
        .iter()
        .map(|p| p.policy_summary(shown))
        .collect();
    Ok(axum::Json(ThrottlingPolicyList {
        count: list.len(),
        list,
    })
    .into_response())
}
