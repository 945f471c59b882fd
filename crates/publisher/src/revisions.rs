//! Revisions and deployments: `GET/POST /apis/{apiId}/revisions`,
//! `GET/DELETE …/revisions/{revisionId}`, `POST …/deploy-revision`, `…/undeploy-revision`,
//! `…/restore-revision`, `GET …/deployments`.
//!
//! A revision is an immutable snapshot of an API. Each environment serves at most one
//! revision of an API; deploying to or undeploying from one environment touches no other.

use crate::PublisherState;
use crate::apis::{api_response, load, load_in};
use crate::types::{Revision, RevisionApiInfo, RevisionDeployment, RevisionDeploymentList, RevisionList};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashSet;
use tollgate_events::control::{RevisionDeployed, RevisionUndeployed};
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::{CreatorOrPublisherRole, CreatorRole, PublisherRole};
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated};
use tollgate_model::{Api, Error, FieldError, now_millis};
use tollgate_store::apis::{self, DeploymentRow, RevisionRow, StoredApi};
use tollgate_store::{environments, events};

fn revision_not_found(id: &str) -> ApiError {
    Error::not_found("revision", id).into()
}

fn deployment_body(d: &DeploymentRow) -> RevisionDeployment {
    RevisionDeployment {
        revision_uuid: Some(d.revision_id.clone()),
        name: d.environment.clone(),
        status: Some("APPROVED".into()),
        vhost: d.vhost.clone(),
        display_on_devportal: d.display_on_devportal,
        deployed_time: Some(tollgate_model::rfc3339(d.deployed_at)),
        ..RevisionDeployment::default()
    }
}

fn revision_body(r: &RevisionRow, deployments: &[DeploymentRow]) -> Revision {
    Revision {
        id: r.id.clone(),
        display_name: format!("Revision {}", r.number),
        description: r.description.clone(),
        created_time: tollgate_model::rfc3339(r.created_at),
        api_info: RevisionApiInfo { id: r.api_id.clone() },
        deployment_info: deployments
            .iter()
            .filter(|d| d.revision_id == r.id)
            .map(deployment_body)
            .collect(),
    }
}

/// Query of `GET /revisions`: `query=deployed:true|false`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    query: Option<String>,
}

/// `GET /apis/{apiId}/revisions`.
#[utoipa::path(get, path = "/apis/{apiId}/revisions", operation_id = "get_api_revisions", tag = "API Revisions", summary = "List revisions", params(("apiId" = String, Path, description = "API id"), ("query" = Option<String>, Query, description = "deployed:true or deployed:false")), responses((status = 200, description = "The revisions with where each is deployed", body = RevisionList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    load(&state, auth.principal().tenant_id, &api_id).await?;
    let deployed_filter = match q.query.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("deployed:true") => Some(true),
        Some("deployed:false") => Some(false),
        Some(other) => {
            return Err(Error::field("query", format!("`{other}` must be deployed:true or deployed:false")).into());
        }
    };
    let revs = apis::revisions(&state.am, &api_id).await?;
    let deps = apis::deployments(&state.am, &api_id).await?;
    let list: Vec<Revision> = revs
        .iter()
        .filter(|r| deployed_filter.is_none_or(|want| deps.iter().any(|d| d.revision_id == r.id) == want))
        .map(|r| revision_body(r, &deps))
        .collect();
    Ok(axum::Json(RevisionList {
        count: list.len(),
        list,
    })
    .into_response())
}

/// The body of `POST /revisions` (the reference's `APIRevision`, of which only
/// `description` is read).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewRevision {
    /// Free text, at most 255 characters.
    #[serde(default)]
    description: Option<String>,
}

/// `POST /apis/{apiId}/revisions`: snapshots the API as it is now.
#[utoipa::path(post, path = "/apis/{apiId}/revisions", operation_id = "post_api_revisions", tag = "API Revisions", summary = "Snapshot the API as a new revision", params(("apiId" = String, Path, description = "API id")), request_body = NewRevision, responses((status = 201, description = "The revision", body = Revision), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    ApiJson(body): ApiJson<NewRevision>,
) -> Result<Response, ApiError> {
    if body.description.as_ref().is_some_and(|d| d.len() > 255) {
        return Err(Error::field("description", "must be at most 255 characters").into());
    }
    let mut tx = state.am.begin().await?;
    let api = load_in(&mut tx, auth.principal().tenant_id, &api_id).await?;
    let rev = snapshot_in(&mut tx, state.max_revisions_per_api, &api, body.description, false).await?;
    tx.commit().await?;
    let location = format!("{}/apis/{api_id}/revisions/{}", crate::BASE_PATH, rev.id);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(revision_body(&rev, &[])),
    )
        .into_response())
}

/// Snapshots `api` as a new revision inside `tx`. At the most revisions allowed, the
/// oldest revision no environment serves is deleted first when `rotate` is set (the
/// reference's `rotateRevision`), else the answer is 409.
pub(crate) async fn snapshot_in(
    tx: &mut tollgate_store::Tx,
    max_revisions: u32,
    api: &StoredApi,
    description: Option<String>,
    rotate: bool,
) -> Result<RevisionRow, ApiError> {
    let api_id = &api.id;
    let count = apis::count_revisions(tx, api_id).await?;
    let max = i64::from(max_revisions);
    if count >= max {
        let serving: HashSet<String> = apis::deployments_in(tx, api_id)
            .await?
            .into_iter()
            .map(|d| d.revision_id)
            .collect();
        let oldest_free = apis::revisions_in(tx, api_id)
            .await?
            .into_iter()
            .filter(|r| !serving.contains(&r.id))
            .min_by_key(|r| r.number);
        match oldest_free {
            Some(oldest) if rotate => apis::delete_revision(tx, &oldest.id).await?,
            _ => {
                let hint = if rotate {
                    "every one of them is deployed; undeploy one first"
                } else {
                    "delete an undeployed one first (an import may pass rotateRevision=true)"
                };
                return Err(Error::Conflict(format!(
                    "the API already has {count} revisions, the most allowed ([publisher] max_revisions_per_api = {max}); {hint}"
                ))
                .into());
            }
        }
    }
    let number = apis::next_revision_number(tx, api_id).await?;
    let rev = RevisionRow {
        id: uuid::Uuid::now_v7().to_string(),
        api_id: api_id.clone(),
        number,
        description,
        body: serde_json::to_string(&api.api).map_err(|e| Error::Internal(e.to_string()))?,
        definition: api.definition.clone(),
        created_at: now_millis(),
    };
    apis::insert_revision(tx, &rev).await?;
    Ok(rev)
}

/// `GET /apis/{apiId}/revisions/{revisionId}`.
#[utoipa::path(get, path = "/apis/{apiId}/revisions/{revisionId}", operation_id = "get_api_revision", tag = "API Revisions", summary = "Get a revision", params(("apiId" = String, Path, description = "API id"), ("revisionId" = String, Path, description = "Revision id")), responses((status = 200, description = "The revision", body = Revision), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path((api_id, revision_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    load(&state, auth.principal().tenant_id, &api_id).await?;
    let rev = apis::revision(&state.am, &api_id, &revision_id)
        .await?
        .ok_or_else(|| revision_not_found(&revision_id))?;
    let deps = apis::deployments(&state.am, &api_id).await?;
    Ok(axum::Json(revision_body(&rev, &deps)).into_response())
}

/// `DELETE /apis/{apiId}/revisions/{revisionId}`: only revisions no environment serves.
#[utoipa::path(delete, path = "/apis/{apiId}/revisions/{revisionId}", operation_id = "delete_api_revision", tag = "API Revisions", summary = "Delete an undeployed revision", params(("apiId" = String, Path, description = "API id"), ("revisionId" = String, Path, description = "Revision id")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path((api_id, revision_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut tx = state.am.begin().await?;
    load_in(&mut tx, auth.principal().tenant_id, &api_id).await?;
    let deps = apis::deployments_in(&mut tx, &api_id).await?;
    if apis::revision(&state.am, &api_id, &revision_id).await?.is_none() {
        return Err(revision_not_found(&revision_id));
    }
    let serving: Vec<&str> = deps
        .iter()
        .filter(|d| d.revision_id == revision_id)
        .map(|d| d.environment.as_str())
        .collect();
    if !serving.is_empty() {
        return Err(Error::Conflict(format!(
            "the revision is deployed to {}; undeploy it first",
            serving.join(", ")
        ))
        .into());
    }
    apis::delete_revision(&mut tx, &revision_id).await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}

/// `?revisionId=` of deploy, undeploy and restore.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevisionQuery {
    revision_id: String,
    #[serde(default)]
    all_environments: bool,
}

/// One entry of a deploy or undeploy body (the reference's `APIRevisionDeployment`, of
/// which these fields are read).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeploymentRequest {
    /// Environment name.
    pub(crate) name: String,
    /// Virtual host (default: the environment's first).
    #[serde(default)]
    pub(crate) vhost: Option<String>,
    /// Whether the Developer Portal lists the environment's URLs (default true).
    #[serde(default = "yes")]
    pub(crate) display_on_devportal: bool,
}

fn yes() -> bool {
    true
}

/// Checks that the named environments are listed once each.
fn unique_names(body: &[DeploymentRequest]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    for (i, d) in body.iter().enumerate() {
        if d.name.trim().is_empty() {
            errors.push(FieldError::new(format!("[{i}].name"), "is required"));
        } else if !seen.insert(d.name.as_str()) {
            errors.push(FieldError::new(
                format!("[{i}].name"),
                format!("`{}` is listed twice", d.name),
            ));
        }
    }
    Error::check_fields(errors).map_err(ApiError::from)
}

/// `POST /apis/{apiId}/deploy-revision?revisionId`, body `[{"name", "vhost",
/// "displayOnDevportal"}]`: each named environment now serves this revision. One outbox
/// event per environment whose revision changed.
#[utoipa::path(post, path = "/apis/{apiId}/deploy-revision", operation_id = "post_api_deploy_revision", tag = "API Revisions", summary = "Deploy a revision to gateway environments", params(("apiId" = String, Path, description = "API id"), ("revisionId" = String, Query, description = "Revision id")), request_body = Vec<DeploymentRequest>, responses((status = 201, description = "The deployments made", body = Vec<RevisionDeployment>), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn deploy(
    auth: Authenticated<PublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    ApiQuery(q): ApiQuery<RevisionQuery>,
    ApiJson(body): ApiJson<Vec<DeploymentRequest>>,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(Error::field("body", "name at least one environment: [{\"name\": \"Default\"}]").into());
    }
    unique_names(&body)?;
    let tenant = auth.principal().tenant_id;
    // The API first: another tenant's API does not exist, whatever the revision.
    let mut tx = state.am.begin().await?;
    let live = load_in(&mut tx, tenant, &api_id).await?;
    let rev = apis::revision(&state.am, &api_id, &q.revision_id)
        .await?
        .ok_or_else(|| revision_not_found(&q.revision_id))?;
    let result = deploy_in(&mut tx, &state, &live, &rev, &body, "").await?;
    tx.commit().await?;
    tracing::info!(api_id = %api_id, revision = rev.number, environments = body.len(), by = %auth.principal().username, "API revision deployed.");
    Ok((StatusCode::CREATED, axum::Json(result)).into_response())
}

/// Refuses environment names the tenant does not have, naming the ones it has. `field`
/// prefixes each entry's field (`[0].name`, or a project file's path).
pub(crate) async fn check_environments(
    tx: &mut tollgate_store::Tx,
    state: &PublisherState,
    tenant: tollgate_model::TenantId,
    names: &[(String, &str)],
) -> Result<(), ApiError> {
    let mut unknown = Vec::new();
    for (field, name) in names {
        if !environments::exists_in(tx, tenant, name).await? {
            unknown.push(FieldError::new(
                field.clone(),
                format!("no gateway environment named `{name}`"),
            ));
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = environments::list(&state.am, tenant)
        .await?
        .into_iter()
        .map(|e| format!("`{}`", e.name))
        .collect();
    let known = if known.is_empty() {
        "there is none yet; an administrator adds one with POST /api/am/admin/v4/environments".to_string()
    } else {
        format!("the environments are {}", known.join(", "))
    };
    for e in &mut unknown {
        e.message = format!("{}; {known}", e.message);
    }
    Err(Error::Validation(unknown).into())
}

/// Makes each named environment serve `rev` of `live` inside `tx`, with one outbox
/// event per environment whose revision changed. `field` prefixes the field names of
/// errors (empty for the REST body).
pub(crate) async fn deploy_in(
    tx: &mut tollgate_store::Tx,
    state: &PublisherState,
    live: &StoredApi,
    rev: &RevisionRow,
    body: &[DeploymentRequest],
    field: &str,
) -> Result<Vec<RevisionDeployment>, ApiError> {
    let tenant = live.tenant_id;
    let api_id = &live.id;
    // Gateways serve the revision, so the event describes the revision, not the
    // working copy (which may have changed since).
    let snapshot: Api = serde_json::from_str(&rev.body).map_err(|e| Error::Internal(format!("revision body: {e}")))?;
    // A mocked API's answers, compiled once here from the revision's definition, travel
    // with the event: gateways never read definitions (decision 016).
    let mocks = if snapshot.is_mocked() {
        crate::mocks::compile_text(rev.definition.as_deref())?
    } else {
        Vec::new()
    };
    let names: Vec<(String, &str)> = body
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("{field}[{i}].name"), d.name.as_str()))
        .collect();
    check_environments(tx, state, tenant, &names).await?;
    let current = apis::deployments_in(tx, api_id).await?;
    let now = now_millis();
    let mut result = Vec::new();
    for d in body {
        let vhost = match &d.vhost {
            Some(v) => Some(v.clone()),
            None => default_vhost(state, tenant, &d.name).await?,
        };
        let row = DeploymentRow {
            api_id: api_id.clone(),
            environment: d.name.clone(),
            revision_id: rev.id.clone(),
            vhost,
            display_on_devportal: d.display_on_devportal,
            deployed_at: now,
        };
        let previous = current.iter().find(|c| c.environment == d.name);
        let changed = previous.is_none_or(|p| p.revision_id != rev.id);
        apis::upsert_deployment(tx, &row).await?;
        if changed {
            let event = NewEvent::new(
                tenant,
                Some(d.name.clone()),
                ControlEvent::ApiRevisionDeployed(Box::new(RevisionDeployed {
                    api_id: api_id.clone(),
                    revision_id: rev.id.clone(),
                    revision_number: rev.number,
                    previous_revision_id: previous.map(|p| p.revision_id.clone()),
                    environment: d.name.clone(),
                    vhost: row.vhost.clone(),
                    name: snapshot.name.clone(),
                    version: snapshot.version.clone(),
                    context: snapshot.resolved_context(),
                    // What a gateway serves, so that it needs nothing else.
                    api: snapshot.clone(),
                    life_cycle_status: live.api.life_cycle_status,
                    is_default_version: live.api.is_default_version,
                    mocks: mocks.clone(),
                })),
            );
            events::append(tx, &event).await?;
        }
        result.push(deployment_body(&row));
    }
    Ok(result)
}

async fn default_vhost(
    state: &PublisherState,
    tenant: tollgate_model::TenantId,
    env: &str,
) -> Result<Option<String>, ApiError> {
    let env = environments::find(&state.am, tenant, env).await?;
    Ok(env.and_then(|e| e.vhosts.first().map(|v| v.host.clone())))
}

/// `POST /apis/{apiId}/undeploy-revision?revisionId[&allEnvironments]`, body
/// `[{"name"}]` (`[]` with `allEnvironments=true`): the named environments stop serving
/// this revision; others are untouched.
#[utoipa::path(post, path = "/apis/{apiId}/undeploy-revision", operation_id = "post_api_undeploy_revision", tag = "API Revisions", summary = "Undeploy a revision from environments", params(("apiId" = String, Path, description = "API id"), ("revisionId" = String, Query, description = "Revision id"), ("allEnvironments" = Option<bool>, Query, description = "From every environment serving it")), request_body = Vec<DeploymentRequest>, responses((status = 201, description = "The API's remaining deployments", body = Vec<RevisionDeployment>), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn undeploy(
    auth: Authenticated<PublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    ApiQuery(q): ApiQuery<RevisionQuery>,
    ApiJson(body): ApiJson<Vec<DeploymentRequest>>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    if body.is_empty() && !q.all_environments {
        return Err(Error::field(
            "body",
            "name the environments to undeploy from, or pass allEnvironments=true",
        )
        .into());
    }
    unique_names(&body)?;
    let mut tx = state.am.begin().await?;
    load_in(&mut tx, tenant, &api_id).await?;
    if apis::revision(&state.am, &api_id, &q.revision_id).await?.is_none() {
        return Err(revision_not_found(&q.revision_id));
    }
    let current = apis::deployments_in(&mut tx, &api_id).await?;
    let targets: Vec<String> = if q.all_environments {
        current
            .iter()
            .filter(|d| d.revision_id == q.revision_id)
            .map(|d| d.environment.clone())
            .collect()
    } else {
        let mut errors = Vec::new();
        for (i, d) in body.iter().enumerate() {
            if !current
                .iter()
                .any(|c| c.environment == d.name && c.revision_id == q.revision_id)
            {
                errors.push(FieldError::new(
                    format!("[{i}].name"),
                    format!("this revision is not deployed to `{}`", d.name),
                ));
            }
        }
        Error::check_fields(errors)?;
        body.iter().map(|d| d.name.clone()).collect()
    };
    for env in &targets {
        apis::delete_deployment(&mut tx, &api_id, env).await?;
        let event = NewEvent::new(
            tenant,
            Some(env.clone()),
            ControlEvent::ApiRevisionUndeployed(RevisionUndeployed {
                api_id: api_id.clone(),
                revision_id: q.revision_id.clone(),
                environment: env.clone(),
                reason: None,
            }),
        );
        events::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    let remaining = apis::deployments(&state.am, &api_id).await?;
    let list: Vec<RevisionDeployment> = remaining.iter().map(deployment_body).collect();
    Ok((StatusCode::CREATED, axum::Json(list)).into_response())
}

/// `POST /apis/{apiId}/restore-revision?revisionId`: the working copy becomes the
/// revision again (lifecycle state and deployments are not touched).
#[utoipa::path(post, path = "/apis/{apiId}/restore-revision", operation_id = "post_api_restore_revision", tag = "API Revisions", summary = "Make a revision the working copy again", params(("apiId" = String, Path, description = "API id"), ("revisionId" = String, Query, description = "Revision id")), responses((status = 201, description = "The restored API", body = tollgate_model::Api), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn restore(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    ApiQuery(q): ApiQuery<RevisionQuery>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    // The API first: another tenant's API does not exist, whatever the revision.
    let mut tx = state.am.begin().await?;
    let current = load_in(&mut tx, tenant, &api_id).await?;
    let rev = apis::revision(&state.am, &api_id, &q.revision_id)
        .await?
        .ok_or_else(|| revision_not_found(&q.revision_id))?;
    let snapshot: Api = serde_json::from_str(&rev.body).map_err(|e| Error::Internal(format!("revision body: {e}")))?;
    let restored = StoredApi {
        api: Api {
            life_cycle_status: current.api.life_cycle_status,
            provider: current.api.provider.clone(),
            ..snapshot
        },
        definition: rev.definition.clone(),
        updated_at: now_millis().max(current.updated_at + 1),
        ..current
    };
    crate::apis::ensure_unique(&mut tx, tenant, &restored.api, Some(&api_id)).await?;
    if restored.api.is_default_version {
        apis::clear_other_default_versions(&mut tx, tenant, &restored.api.name, &api_id).await?;
    }
    apis::update(&mut tx, &restored)
        .await
        .map_err(crate::apis::conflict_on_race)?;
    tx.commit().await?;
    let stored = load(&state, tenant, &api_id).await?;
    Ok(api_response(StatusCode::CREATED, &stored))
}

/// `GET /apis/{apiId}/deployments`, with the reference's live / deployed / failed gateway
/// counts per environment from the gateways' reports.
#[utoipa::path(get, path = "/apis/{apiId}/deployments", operation_id = "get_api_deployments", tag = "API Revisions", summary = "Which revision each environment serves", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "Which revision each environment serves, with gateway counts", body = RevisionDeploymentList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn deployments(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    load(&state, auth.principal().tenant_id, &api_id).await?;
    let deps = apis::deployments(&state.am, &api_id).await?;
    // Gateways that reported within three report intervals count as live.
    let window = i64::try_from(tollgate_events::hub::GATEWAY_REPORT_INTERVAL.as_millis() * 3).unwrap_or(i64::MAX);
    let live_since = tollgate_model::now_millis() - window;
    let mut list = Vec::with_capacity(deps.len());
    for d in &deps {
        let counts =
            tollgate_store::gateway_status::counts(&state.am, &d.environment, &d.revision_id, live_since).await?;
        let mut body = deployment_body(d);
        body.live_gateway_count = Some(counts.live);
        body.deployed_gateway_count = Some(counts.deployed);
        body.failed_gateway_count = Some(counts.failed);
        if counts.deployed > 0 {
            body.success_deployed_time = body.deployed_time.clone();
        }
        list.push(body);
    }
    Ok(axum::Json(RevisionDeploymentList {
        count: list.len(),
        list,
    })
    .into_response())
}
