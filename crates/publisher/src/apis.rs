//! `GET/POST /apis`, `GET/PUT/DELETE /apis/{apiId}`, `POST /apis/copy-api`.

use crate::definition;
use crate::types::{ApiInfo, ApiList};
use crate::{PublisherState, known_policies};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use tollgate_events::control::RevisionUndeployed;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::{CreatorOrPublisherRole, CreatorRole};
use tollgate_http::precondition::{check_if_match, etag};
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated, Pagination};
use tollgate_model::{Api, Error, LifecycleState, Principal, Role, TenantId, now_millis};
use tollgate_store::apis::{self, ApiFilter, StoredApi};
use tollgate_store::{Tx, events};

/// Loads an API of the caller's tenant or answers 404.
pub(crate) async fn load(state: &PublisherState, tenant: TenantId, id: &str) -> Result<StoredApi, ApiError> {
    apis::get(&state.am, tenant, id).await?.ok_or_else(|| not_found(id))
}

/// Loads an API inside a transaction or answers 404.
pub(crate) async fn load_in(tx: &mut Tx, tenant: TenantId, id: &str) -> Result<StoredApi, ApiError> {
    apis::get_in(tx, tenant, id).await?.ok_or_else(|| not_found(id))
}

pub(crate) fn not_found(id: &str) -> ApiError {
    Error::not_found("API", id).into()
}

/// The API as the REST API returns it, with its ETag.
pub(crate) fn api_response(status: StatusCode, stored: &StoredApi) -> Response {
    let location = format!("{}/apis/{}", crate::BASE_PATH, stored.id);
    let mut response = (status, axum::Json(&stored.api)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(&stored.updated_at.to_string()));
    if status == StatusCode::CREATED
        && let Ok(v) = location.parse()
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Validates `api` (normalised first) against the tenant's policies, or answers 400
/// naming every bad field.
pub(crate) async fn validate(state: &PublisherState, tenant: TenantId, api: &mut Api) -> Result<(), ApiError> {
    api.normalize();
    let mut errors = api.validate(&known_policies(state, tenant).await?);
    if api.scopes.iter().any(|s| s.shared) {
        let shared = tollgate_store::scopes::names(&state.am, tenant).await?;
        for (i, s) in api.scopes.iter().enumerate() {
            if s.shared && !shared.contains(&s.scope.name) {
                errors.push(tollgate_model::FieldError::new(
                    format!("scopes[{i}].scope.name"),
                    format!(
                        "no shared scope named `{}`; create it with POST /scopes or set shared to false",
                        s.scope.name
                    ),
                ));
            }
        }
    }
    Error::check_fields(errors).map_err(ApiError::from)
}

/// Refuses a name+version, context or base context another API of the tenant uses.
pub(crate) async fn ensure_unique(
    tx: &mut Tx,
    tenant: TenantId,
    api: &Api,
    exclude: Option<&str>,
) -> Result<(), ApiError> {
    // Held until commit: concurrent creates cannot both pass the check, and policy or
    // scope deletes (which take the same lock) see this API's references.
    tollgate_store::lock_named(tx, &apis::references_lock(tenant)).await?;
    if let Some((_, name, version, what)) = apis::find_clash(tx, tenant, api, exclude).await? {
        let detail = match what {
            "name and version" => format!("an API named `{name}` with version `{version}` already exists"),
            "context" => format!(
                "context `{}` is already used by API `{name}` {version}",
                api.resolved_context()
            ),
            _ => format!(
                "context `{}` belongs to API `{name}`; versions of one API share a context, other APIs need their own",
                tollgate_model::api::base_context(&api.context)
            ),
        };
        return Err(ApiError(Error::Conflict(detail)));
    }
    Ok(())
}

/// Creates an API from a validated resource: provider is the caller (an admin may name
/// another), state `CREATED`, a definition generated when none is given. Used by
/// `POST /apis`, the OpenAPI import and `copy-api`.
pub(crate) async fn create_api(
    state: &PublisherState,
    principal: &Principal,
    mut api: Api,
    definition_doc: Option<Value>,
) -> Result<StoredApi, ApiError> {
    validate(state, principal.tenant_id, &mut api).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_millis();
    if !(principal.has_role(Role::Admin) && api.provider.as_deref().is_some_and(|p| !p.is_empty())) {
        api.provider = Some(principal.username.clone());
    }
    api.life_cycle_status = Some(LifecycleState::Created);
    let mut doc = definition_doc.unwrap_or_else(|| definition::generate(&api));
    definition::sync(&mut doc, &api);
    let mut stored = StoredApi {
        id: id.clone(),
        tenant_id: principal.tenant_id,
        api,
        definition: Some(doc.to_string()),
        revision_counter: 0,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.am.begin().await?;
    ensure_unique(&mut tx, principal.tenant_id, &stored.api, None).await?;
    if stored.api.is_default_version {
        apis::clear_other_default_versions(&mut tx, principal.tenant_id, &stored.api.name, &id).await?;
    }
    apis::insert(&mut tx, &stored).await.map_err(conflict_on_race)?;
    apis::record_lifecycle(&mut tx, &id, None, LifecycleState::Created, &principal.username, now).await?;
    tx.commit().await?;
    tracing::info!(api_id = %id, name = %stored.api.name, version = %stored.api.version, by = %principal.username, "API created.");
    // Read back so that the response carries exactly what is stored.
    stored = load(state, principal.tenant_id, &id).await?;
    Ok(stored)
}

/// A unique violation that slipped past the explicit check (two writers at once).
pub(crate) fn conflict_on_race(e: tollgate_store::Error) -> ApiError {
    if e.is_unique_violation() {
        ApiError(Error::Conflict(
            "another API with the same name and version or context was just created".into(),
        ))
    } else {
        ApiError(e.into())
    }
}

/// Query parameters of `GET /apis`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    // Not `#[serde(flatten)] Pagination`: flattening makes serde_urlencoded hand numbers
    // over as strings, and `limit=2` would be refused.
    offset: Option<i64>,
    limit: Option<i64>,
    /// The reference's search: `name:pizza`, `context:/pizza`, `tag:food`,
    /// `version:1.0.0`, `status:PUBLISHED`, or a bare word matched against the name.
    query: Option<String>,
}

/// Parses the reference's `query` parameter into a filter.
pub(crate) fn parse_query(query: &str) -> Result<ApiFilter, ApiError> {
    Ok(ApiFilter::parse(query)?)
}

/// The list entry of an API (the reference's `APIInfo`).
pub(crate) fn api_info(s: &StoredApi) -> ApiInfo {
    let a = &s.api;
    ApiInfo {
        id: s.id.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        context: a.context.clone(),
        version: a.version.clone(),
        provider: a.provider.clone(),
        api_type: a.api_type.clone(),
        life_cycle_status: a.life_cycle_status,
        has_thumbnail: false,
        security_scheme: a.security_scheme.clone(),
        is_default_version: a.is_default_version,
        created_time: a.created_time.clone(),
        updated_time: a.last_updated_time.clone(),
    }
}

/// `GET /apis`.
#[utoipa::path(get, path = "/apis", operation_id = "get_apis", tag = "APIs", summary = "List and search APIs", params(("query" = Option<String>, Query, description = "name:, context:, tag:, version:, status: terms, or a word matched against names"), ("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of APIs", body = ApiList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let page = Pagination::from_query(q.offset, q.limit).validate()?;
    let filter = match q.query.as_deref() {
        Some(text) if !text.trim().is_empty() => parse_query(text)?,
        _ => ApiFilter::default(),
    };
    let (rows, total) = apis::list(&state.am, auth.principal().tenant_id, &filter, page.offset, page.limit).await?;
    let list: Vec<ApiInfo> = rows.iter().map(api_info).collect();
    Ok(axum::Json(ApiList {
        count: list.len(),
        list,
        pagination: page.info(total),
    })
    .into_response())
}

/// `POST /apis`.
#[utoipa::path(post, path = "/apis", operation_id = "post_apis", tag = "APIs", summary = "Create an API", request_body = tollgate_model::Api, responses((status = 201, description = "The created API; Location and ETag headers", body = tollgate_model::Api), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    ApiJson(api): ApiJson<Api>,
) -> Result<Response, ApiError> {
    let stored = create_api(&state, auth.principal(), api, None).await?;
    Ok(api_response(StatusCode::CREATED, &stored))
}

/// `GET /apis/{apiId}`.
#[utoipa::path(get, path = "/apis/{apiId}", operation_id = "get_api", tag = "APIs", summary = "Get an API", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "The API; ETag header", body = tollgate_model::Api), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<CreatorOrPublisherRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    let stored = load(&state, auth.principal().tenant_id, &api_id).await?;
    Ok(api_response(StatusCode::OK, &stored))
}

/// `PUT /apis/{apiId}`: replaces the working copy. Name and version are fixed (copy the
/// API to make a new version); `If-Match` guards against lost updates.
#[utoipa::path(put, path = "/apis/{apiId}", operation_id = "put_api", tag = "APIs", summary = "Replace an API (name and version fixed; If-Match honoured)", params(("apiId" = String, Path, description = "API id"), ("If-Match" = Option<String>, Header, description = "ETag from GET")), request_body = tollgate_model::Api, responses((status = 200, description = "The updated API", body = tollgate_model::Api), (status = 412, description = "If-Match does not match"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
    headers: HeaderMap,
    ApiJson(mut api): ApiJson<Api>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let mut tx = state.am.begin().await?;
    let current = load_in(&mut tx, tenant, &api_id).await?;
    check_if_match(&headers, &current.updated_at.to_string())?;
    let mut fixed = Vec::new();
    if api.name != current.api.name {
        fixed.push(tollgate_model::FieldError::new(
            "name",
            "cannot be changed; create a new API instead",
        ));
    }
    if api.version != current.api.version {
        fixed.push(tollgate_model::FieldError::new(
            "version",
            "cannot be changed; use POST /apis/copy-api to make a new version",
        ));
    }
    if !fixed.is_empty() {
        return Err(Error::Validation(fixed).into());
    }
    validate(&state, tenant, &mut api).await?;
    // Server-owned fields keep their stored values.
    api.provider = current.api.provider.clone();
    api.life_cycle_status = current.api.life_cycle_status;
    ensure_unique(&mut tx, tenant, &api, Some(&api_id)).await?;
    let mut doc: Value = current
        .definition
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| definition::generate(&api));
    definition::sync(&mut doc, &api);
    if api.is_default_version {
        apis::clear_other_default_versions(&mut tx, tenant, &api.name, &api_id).await?;
    }
    let updated = StoredApi {
        api,
        definition: Some(doc.to_string()),
        updated_at: now_millis().max(current.updated_at + 1),
        ..current
    };
    apis::update(&mut tx, &updated).await.map_err(conflict_on_race)?;
    tx.commit().await?;
    let stored = load(&state, tenant, &api_id).await?;
    Ok(api_response(StatusCode::OK, &stored))
}

/// `DELETE /apis/{apiId}`: removes the API, its revisions and deployments; every
/// environment that served it is told in the outbox.
#[utoipa::path(delete, path = "/apis/{apiId}", operation_id = "delete_api", tag = "APIs", summary = "Delete an API, its revisions, deployments and documents", params(("apiId" = String, Path, description = "API id")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let mut tx = state.am.begin().await?;
    let current = load_in(&mut tx, tenant, &api_id).await?;
    let subscriptions = tollgate_store::subscriptions::count_for_api(&mut tx, &api_id).await?;
    if subscriptions > 0 {
        return Err(Error::Conflict(format!(
            "the API has {subscriptions} subscription(s); they must be removed before the API can be deleted (retire it instead)"
        ))
        .into());
    }
    for d in apis::deployments_in(&mut tx, &api_id).await? {
        let event = NewEvent::new(
            tenant,
            Some(d.environment.clone()),
            ControlEvent::ApiRevisionUndeployed(RevisionUndeployed {
                api_id: api_id.clone(),
                revision_id: d.revision_id,
                environment: d.environment,
                reason: Some("api_deleted".into()),
            }),
        );
        events::append(&mut tx, &event).await?;
    }
    apis::delete(&mut tx, &api_id).await?;
    tx.commit().await?;
    // Documents live in the shared database, outside this transaction: a failure here
    // leaves orphaned documents (invisible, since their API is gone), never a broken API.
    if let Err(e) = tollgate_store::documents::delete_for_api(&state.shared, tenant, &api_id).await {
        tracing::warn!(api_id = %api_id, error = %e, "Could not delete the documents of a deleted API.");
    }
    tracing::info!(api_id = %api_id, name = %current.api.name, by = %auth.principal().username, "API deleted.");
    Ok(StatusCode::OK.into_response())
}

/// Query parameters of `POST /apis/copy-api`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CopyQuery {
    api_id: String,
    new_version: String,
    #[serde(default)]
    default_version: bool,
}

/// `POST /apis/copy-api?apiId&newVersion&defaultVersion`: a new version of an API, in
/// state `CREATED`, with the same settings and definition.
#[utoipa::path(post, path = "/apis/copy-api", operation_id = "post_apis_copy_api", tag = "APIs", summary = "Copy an API to a new version", params(("apiId" = String, Query, description = "API to copy"), ("newVersion" = String, Query, description = "The new version"), ("defaultVersion" = Option<bool>, Query, description = "Make the copy the default version")), responses((status = 201, description = "The new API", body = tollgate_model::Api), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn copy(
    auth: Authenticated<CreatorRole>,
    State(state): State<PublisherState>,
    ApiQuery(q): ApiQuery<CopyQuery>,
) -> Result<Response, ApiError> {
    let source = load(&state, auth.principal().tenant_id, &q.api_id).await?;
    let mut api = source.api.clone();
    api.id = None;
    api.version = q.new_version;
    api.is_default_version = q.default_version;
    api.created_time = None;
    api.last_updated_time = None;
    let doc = source.definition.as_deref().and_then(|d| serde_json::from_str(d).ok());
    let stored = create_api(&state, auth.principal(), api, doc)
        .await
        .map_err(|e| match e.0 {
            // Name the query parameter the caller can change.
            Error::Validation(fields) => ApiError(Error::Validation(
                fields
                    .into_iter()
                    .map(|f| {
                        if f.field == "version" {
                            tollgate_model::FieldError::new("newVersion", f.message)
                        } else {
                            f
                        }
                    })
                    .collect(),
            )),
            other => ApiError(other),
        })?;
    Ok(api_response(StatusCode::CREATED, &stored))
}
