//! `GET /throttling/policies/export` and `POST /throttling/policies/import`: one policy
//! as the reference's policy file (`{type: throttling policy, subtype, version, data}`),
//! to move policies between environments or keep them in Git. An import that matches
//! the stored policy writes nothing.

use super::{PolicyBody, answer, create_of, to_store, update_of};
use crate::AdminState;
use crate::types::PolicyImportOutcome;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tollgate_http::auth::AdminRole;
use tollgate_http::{ApiError, ApiMultipart, ApiQuery, Authenticated};
use tollgate_model::custom_rule::CustomPolicy;
use tollgate_model::policy::{AdvancedPolicy, ApplicationPolicy, PolicyLevel, SubscriptionPolicy};
use tollgate_model::{Error, Principal};
use tollgate_project::api::Format;
use tollgate_project::{decode, policy};
use tollgate_store::policies::{self, StoredPolicy};

/// Query of the export (the reference's parameters).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ExportQuery {
    policy_id: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    format: Option<String>,
}

/// The levels a `type` names: the reference's `sub`, `app`, `api`, `global`, or
/// Tollgate's level names; all four (application first, as the reference looks) when
/// absent.
fn levels(kind: Option<&str>) -> Result<Vec<PolicyLevel>, ApiError> {
    use PolicyLevel::*;
    let Some(kind) = kind else {
        return Ok(vec![Application, Subscription, Advanced, Custom]);
    };
    let level = match kind.to_ascii_lowercase().as_str() {
        "sub" | "subscription" => Subscription,
        "app" | "application" => Application,
        "api" | "advanced" => Advanced,
        "global" | "custom" => Custom,
        _ => {
            return Err(Error::field(
                "type",
                format!("`{kind}` must be sub, app, api or global (or subscription, application, advanced, custom)"),
            )
            .into());
        }
    };
    Ok(vec![level])
}

/// The policy as the Admin API answers it, for the file's `data`.
fn data_of(p: &StoredPolicy) -> Result<Value, ApiError> {
    let value = match p.level {
        PolicyLevel::Subscription => serde_json::to_value(answer::<SubscriptionPolicy>(p)?),
        PolicyLevel::Application => serde_json::to_value(answer::<ApplicationPolicy>(p)?),
        PolicyLevel::Advanced => serde_json::to_value(answer::<AdvancedPolicy>(p)?),
        PolicyLevel::Custom => serde_json::to_value(answer::<CustomPolicy>(p)?),
    };
    value.map_err(|e| Error::Internal(e.to_string()).into())
}

/// `GET /throttling/policies/export?policyId|name&type&format`.
#[utoipa::path(get, path = "/throttling/policies/export", operation_id = "get_throttling_policies_export", tag = "Import Export", summary = "Export a throttling policy as the reference's policy file", params(("policyId" = Option<String>, Query, description = "Policy id (or name)"), ("name" = Option<String>, Query, description = "Policy name"), ("type" = Option<String>, Query, description = "sub, app, api or global (default: each, application first)"), ("format" = Option<String>, Query, description = "JSON (default) or YAML")), responses((status = 200, description = "The policy file"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn export(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref() {
        None => Format::Json,
        Some(f) => Format::parse(f).ok_or_else(|| Error::field("format", format!("`{f}` must be JSON or YAML")))?,
    };
    let key = q
        .policy_id
        .or(q.name)
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| Error::field("name", "name the policy: policyId or name"))?;
    for level in levels(q.kind.as_deref())? {
        if let Some(p) = policies::get(&state.am, auth.principal().tenant_id, level, &key).await? {
            let bytes =
                policy::write_policy(format, level, &data_of(&p)?).map_err(|e| Error::Internal(e.to_string()))?;
            let media = match format {
                Format::Json => "application/json",
                Format::Yaml => "application/yaml",
            };
            let file = policy::file_name(level, &p.name, format);
            return Ok((
                [
                    (header::CONTENT_TYPE, media.to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
                ],
                bytes,
            )
                .into_response());
        }
    }
    Err(Error::not_found("policy", &key).into())
}

/// Query of the import.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ImportQuery {
    overwrite: bool,
}

/// `POST /throttling/policies/import?overwrite` (multipart `file`: the policy file).
#[utoipa::path(post, path = "/throttling/policies/import", operation_id = "post_throttling_policies_import", tag = "Import Export", summary = "Import a throttling policy file: create it, or update it with overwrite", params(("overwrite" = Option<bool>, Query, description = "Update the policy when one of that name exists")), request_body(content = crate::api_doc::PolicyImportForm, content_type = "multipart/form-data"), responses((status = 200, description = "What was created or changed", body = PolicyImportOutcome), (status = 409, description = "The policy exists and overwrite is false"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn import(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    form: ApiMultipart,
) -> Result<Response, ApiError> {
    let parts = form.into_parts().await?;
    let bytes = parts.get("file").ok_or_else(|| {
        Error::field(
            "file",
            "send the policy file (YAML or JSON) in the multipart part `file`",
        )
    })?;
    let (level, data) = policy::read("file", bytes).map_err(Error::from)?;
    let who = auth.principal();
    let outcome = match level {
        PolicyLevel::Subscription => import_of::<SubscriptionPolicy>(who, &state, &data, q.overwrite).await?,
        PolicyLevel::Application => import_of::<ApplicationPolicy>(who, &state, &data, q.overwrite).await?,
        PolicyLevel::Advanced => import_of::<AdvancedPolicy>(who, &state, &data, q.overwrite).await?,
        PolicyLevel::Custom => import_of::<CustomPolicy>(who, &state, &data, q.overwrite).await?,
    };
    Ok(axum::Json(outcome).into_response())
}

async fn import_of<T: PolicyBody>(
    who: &Principal,
    state: &AdminState,
    data: &Value,
    overwrite: bool,
) -> Result<PolicyImportOutcome, ApiError> {
    let level = T::LEVEL;
    let typed =
        || -> Result<(T, Vec<String>), ApiError> { Ok(decode::typed::<T>("file", "data", data).map_err(Error::from)?) };
    let (body, unknown) = typed()?;
    let warnings: Vec<String> = unknown
        .into_iter()
        .map(|f| format!("{f} is not supported by Tollgate and was not imported"))
        .collect();
    let name = body.name().to_string();
    let outcome = |id: String, status: &str| PolicyImportOutcome {
        policy_id: id,
        policy_name: name.clone(),
        subtype: policy::subtype(level).into(),
        status: status.into(),
        warnings: warnings.clone(),
    };
    // By name, in any case (as names are unique), never by id.
    let current = policies::list(&state.am, who.tenant_id, level)
        .await?
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(&name));
    let Some(current) = current else {
        let (_, created) = create_of(who, state, body).await?;
        let id = serde_json::to_value(&created)
            .ok()
            .and_then(|v| v["policyId"].as_str().map(String::from))
            .unwrap_or_default();
        return Ok(outcome(id, "CREATED"));
    };
    if !overwrite {
        return Err(Error::Conflict(format!(
            "a {level} policy named `{name}` already exists; import with overwrite=true (--update) to change it"
        ))
        .into());
    }
    let (_, value) = to_store(body)?;
    if value == current.body {
        return Ok(outcome(current.id, "UNCHANGED"));
    }
    let (body, _) = typed()?;
    update_of(who, state, &current.id, body).await?;
    Ok(outcome(current.id, "UPDATED"))
}
