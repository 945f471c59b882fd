//! `GET /applications/export` and `POST /applications/import`: an application with its
//! subscriptions as a project in the reference's format (decision 022). Subscriptions
//! name their APIs by name and version, so that a project moves between nodes; keys are
//! never exported with their secrets (they are hashed at rest) and never imported.
//! An import is checked whole first and written in one transaction.

use crate::DevportalState;
use crate::applications::{NewApplication, application_event, validate};
use crate::keys::key_body;
use crate::subscriptions::{change_plan_in, check_subscribable, subscribe_in};
use crate::types::ApplicationImportOutcome;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tollgate_http::auth::{AdminRole, AppManageRole, SubscribeRole, SubscriberRole, grants};
use tollgate_http::{ApiError, ApiMultipart, ApiQuery, Authenticated};
use tollgate_model::{Error, FieldError, Principal, now_millis};
use tollgate_project::api::Format;
use tollgate_project::application::{ApiIdentifier, ApplicationProject, SubscribedApi, top_folder};
use tollgate_project::{Limits, archive, decode};
use tollgate_store::applications::{self, ApplicationRow};
use tollgate_store::{apis, keys, subscriptions};

/// Query of the export (the reference's parameters).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ExportQuery {
    application_id: Option<String>,
    app_name: Option<String>,
    app_owner: Option<String>,
    with_keys: bool,
    format: Option<String>,
}

/// The owner a caller may act for: themselves, or anyone of the tenant for an
/// administrator.
fn owner_for(p: &Principal, asked: Option<&str>) -> Result<String, ApiError> {
    match asked.filter(|o| !o.trim().is_empty()) {
        Some(o) if o != p.username && !grants::<AdminRole>(p) => Err(Error::Forbidden(format!(
            "only an administrator acts for another user's applications; `{}` may name only themselves",
            p.username
        ))
        .into()),
        Some(o) => Ok(o.to_string()),
        None => Ok(p.username.clone()),
    }
}

/// `GET /applications/export?appName&appOwner&withKeys&format`.
#[utoipa::path(get, path = "/applications/export", operation_id = "get_applications_export", tag = "Import Export", summary = "Export an application with its subscriptions as a project (zip)", params(("appName" = Option<String>, Query, description = "Application name"), ("applicationId" = Option<String>, Query, description = "Or its id (our extension)"), ("appOwner" = Option<String>, Query, description = "Its owner (default: you; another user's needs an administrator)"), ("withKeys" = Option<bool>, Query, description = "Include the keys' consumer keys and settings (never their secrets)"), ("format" = Option<String>, Query, description = "YAML (default) or JSON")), responses((status = 200, description = "The project as application/zip"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn export(
    auth: Authenticated<SubscriberRole>,
    State(state): State<DevportalState>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let p = auth.principal();
    let format = match q.format.as_deref() {
        None => Format::Yaml,
        Some(f) => Format::parse(f).ok_or_else(|| Error::field("format", format!("`{f}` must be YAML or JSON")))?,
    };
    let owner = owner_for(p, q.app_owner.as_deref())?;
    let app = match (
        &q.application_id,
        q.app_name.as_deref().filter(|n| !n.trim().is_empty()),
    ) {
        (Some(id), _) => applications::get(&state.am, p.tenant_id, id)
            .await?
            .filter(|a| a.app.owner == owner)
            .ok_or_else(|| Error::not_found("application", id))?,
        (None, Some(name)) => applications::find_by_name(&state.am, p.tenant_id, &owner, name)
            .await?
            .ok_or_else(|| Error::not_found("application", name))?,
        (None, None) => {
            return Err(Error::field("appName", "name the application (appName, or our applicationId)").into());
        }
    };
    let keys = if q.with_keys {
        keys::list_for_application(&state.am, &app.app.id)
            .await?
            .iter()
            .map(|k| key_body(k, None))
            .collect()
    } else {
        Vec::new()
    };
    let info = serde_json::to_value(crate::applications::body(&app, Some(keys)))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let (subs, _) =
        subscriptions::list_for_owner(&state.am, p.tenant_id, &owner, Some(&app.app.id), None, 0, 10_000).await?;
    let mut subscribed = Vec::with_capacity(subs.len());
    for s in &subs {
        if let Some(api) = apis::get(&state.am, p.tenant_id, &s.api_id).await? {
            subscribed.push(SubscribedApi {
                api_id: ApiIdentifier {
                    provider_name: api.api.provider.clone(),
                    api_name: api.api.name.clone(),
                    version: api.api.version.clone(),
                },
                throttling_policy: s.throttling_policy.clone(),
            });
        }
    }
    let files = ApplicationProject::to_files(&info, &subscribed, format).map_err(|e| Error::Internal(e.to_string()))?;
    let top = top_folder(&owner, &app.app.name);
    let zip = archive::write_zip(&top, &files).map_err(|e| Error::Internal(e.to_string()))?;
    let file = format!(
        "{}_{}.zip",
        tollgate_project::api::folder_name(&owner),
        tollgate_project::api::folder_name(&app.app.name)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        zip,
    )
        .into_response())
}

/// Query of the import (the reference's parameters).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ImportQuery {
    preserve_owner: bool,
    skip_subscriptions: bool,
    app_owner: Option<String>,
    skip_application_keys: bool,
    update: bool,
}

/// `applicationInfo` as a project carries it: what an application is made of, and the
/// fields the reference writes that the server owns (read, not used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ImportedInfo {
    name: String,
    throttling_policy: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "jwt")]
    token_type: String,
    #[serde(default)]
    attributes: serde_json::Map<String, Value>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    keys: Vec<Value>,
    #[serde(default)]
    application_id: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    subscription_count: Option<Value>,
    #[serde(default)]
    subscription_scopes: Option<Value>,
    #[serde(default)]
    hash_enabled: Option<Value>,
    #[serde(default)]
    created_time: Option<Value>,
    #[serde(default)]
    updated_time: Option<Value>,
    #[serde(default)]
    groups: Vec<Value>,
}

fn jwt() -> String {
    "JWT".into()
}

/// `POST /applications/import` (multipart `file`: the project as a zip).
#[utoipa::path(post, path = "/applications/import", operation_id = "post_applications_import", tag = "Import Export", summary = "Import an application project: create or update the application and its subscriptions", params(("preserveOwner" = Option<bool>, Query, description = "Keep the project's owner (an administrator only)"), ("skipSubscriptions" = Option<bool>, Query, description = "Import the application alone"), ("appOwner" = Option<String>, Query, description = "Import for this user (an administrator only)"), ("skipApplicationKeys" = Option<bool>, Query, description = "Say nothing of the project's keys (never imported)"), ("update" = Option<bool>, Query, description = "Update the application when it exists")), request_body(content = crate::api_doc::ApplicationImportForm, content_type = "multipart/form-data"), responses((status = 200, description = "What was created or changed", body = ApplicationImportOutcome), (status = 409, description = "The application exists and update is false"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn import(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    form: ApiMultipart,
) -> Result<Response, ApiError> {
    let p = auth.principal();
    let parts = form.into_parts().await?;
    let zip = parts
        .get("file")
        .ok_or_else(|| Error::field("file", "send the project as a zip in the multipart part `file`"))?;
    let files = archive::read_zip(zip, Limits::UPLOAD).map_err(Error::from)?;
    let project = ApplicationProject::from_files(&files).map_err(Error::from)?;
    let (info, unknown): (ImportedInfo, _) =
        decode::typed(&project.file, "data.applicationInfo", &project.info).map_err(Error::from)?;
    let mut warnings = project.warnings.clone();
    warnings.extend(unknown.into_iter().map(|f| {
        format!(
            "{}: {f} is not supported by Tollgate and was not imported",
            project.file
        )
    }));
    if !info.keys.is_empty() && !q.skip_application_keys {
        warnings.push(format!(
            "{}: data.applicationInfo.keys are not imported: secrets never leave a node; generate new keys with POST /applications/{{applicationId}}/generate-keys",
            project.file
        ));
    }
    let asked_owner = q
        .app_owner
        .clone()
        .or(if q.preserve_owner { info.owner.clone() } else { None });
    let owner = owner_for(p, asked_owner.as_deref())?;
    let new = NewApplication {
        name: info.name.clone(),
        throttling_policy: info.throttling_policy.clone(),
        description: info.description.clone(),
        token_type: info.token_type.clone(),
        attributes: info.attributes.clone(),
    };
    validate(&state, p.tenant_id, &new)
        .await
        .map_err(|e| ApiError(e.0.with_field_prefix(&format!("{}#data.applicationInfo.", project.file))))?;

    // Every subscription's API, found and checked before anything is written.
    let scope = crate::scope::TenantScope::of(p);
    let mut targets = Vec::new();
    if !q.skip_subscriptions && !project.subscribed.is_empty() {
        if !grants::<SubscribeRole>(p) {
            return Err(Error::Forbidden(
                "the project subscribes the application to APIs, which needs a token with apim:subscribe; import with skipSubscriptions=true, or use a token that has it".into(),
            )
            .into());
        }
        let mut errors = Vec::new();
        for (i, s) in project.subscribed.iter().enumerate() {
            let field = format!("{}#data.subscribedAPIs[{i}]", project.file);
            let found = apis::find_by_name(&state.am, p.tenant_id, &s.api_id.api_name, &s.api_id.version).await?;
            let visible = match found {
                Some(api) => crate::apis::load_visible(&state, &scope, &api.id).await.ok(),
                None => None,
            };
            let Some(api) = visible else {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "no API {} {} is visible to you here; import it first, or pass skipSubscriptions=true",
                        s.api_id.api_name, s.api_id.version
                    ),
                ));
                continue;
            };
            if let Err(e) = check_subscribable(&api, &s.throttling_policy) {
                errors.push(FieldError::new(field, e.0.to_string()));
                continue;
            }
            targets.push((api, s.throttling_policy.clone()));
        }
        Error::check_fields(errors)?;
    }

    let tenant = p.tenant_id;
    let mut tx = state.am.begin().await?;
    let existing = applications::find_by_name_in(&mut tx, tenant, &owner, &new.name).await?;
    let mut changes = Vec::new();
    let row = match existing {
        Some(_) if !q.update => {
            return Err(Error::Conflict(format!(
                "`{owner}` already has an application named `{}`; import with update=true (--update) to update it",
                new.name
            ))
            .into());
        }
        Some(current) => {
            let wanted = ApplicationRow {
                throttling_policy: new.throttling_policy.clone(),
                description: new.description.clone(),
                token_type: new.token_type.clone(),
                attributes: Value::Object(new.attributes.clone()).to_string(),
                ..current.clone()
            };
            let same_attributes =
                serde_json::from_str::<Value>(&current.attributes).ok() == Some(Value::Object(new.attributes.clone()));
            let same = same_attributes
                && current.throttling_policy == wanted.throttling_policy
                && current.description == wanted.description
                && current.token_type == wanted.token_type;
            if !same {
                applications::update(&mut tx, &wanted, now_millis()).await?;
                application_event(&mut tx, tenant, &wanted).await?;
                changes.push("changed the application".to_string());
            }
            wanted
        }
        None => {
            let row = crate::applications::row_of(uuid::Uuid::now_v7().to_string(), &owner, &new);
            applications::insert(&mut tx, tenant, &row, now_millis())
                .await
                .map_err(|e| {
                    if e.is_unique_violation() {
                        ApiError::from(Error::Conflict(format!(
                            "`{owner}` already has an application named `{}`",
                            row.name
                        )))
                    } else {
                        Error::from(e).into()
                    }
                })?;
            application_event(&mut tx, tenant, &row).await?;
            changes.push("created the application".to_string());
            row
        }
    };
    for (api, plan) in &targets {
        // The API's row lock orders this against lifecycle changes of the same API.
        let locked = apis::get_in(&mut tx, tenant, &api.id)
            .await?
            .ok_or_else(|| Error::Conflict(format!("the API {} {} was just deleted", api.api.name, api.api.version)))?;
        check_subscribable(&locked, plan)?;
        match subscriptions::find_for(&mut tx, &row.id, &api.id).await? {
            Some(id) => {
                let current = subscriptions::get_in(&mut tx, tenant, &id).await?;
                if current.is_some_and(|c| &c.throttling_policy != plan) {
                    change_plan_in(&mut tx, tenant, &id, plan).await?;
                    changes.push(format!(
                        "changed the plan for {} {} to {plan}",
                        api.api.name, api.api.version
                    ));
                }
            }
            None => {
                subscribe_in(
                    &mut tx,
                    tenant,
                    &uuid::Uuid::now_v7().to_string(),
                    &row.id,
                    &api.id,
                    plan,
                )
                .await?;
                changes.push(format!(
                    "subscribed to {} {} with {plan}",
                    api.api.name, api.api.version
                ));
            }
        }
    }
    tx.commit().await?;
    let created = changes.first().is_some_and(|c| c == "created the application");
    let status = if created {
        "CREATED"
    } else if changes.is_empty() {
        "UNCHANGED"
    } else {
        "UPDATED"
    };
    Ok(axum::Json(ApplicationImportOutcome {
        application_id: row.id,
        name: row.name,
        owner: row.owner,
        status: status.into(),
        changes,
        warnings,
    })
    .into_response())
}
