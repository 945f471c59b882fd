//! The API catalogue: `GET /apis` (search), `GET /apis/{apiId}`, its OpenAPI definition
//! with the gateways' URLs as `servers`, documents, and ratings. Anonymous callers see
//! public APIs; signed-in callers also see APIs restricted to one of their roles. Only
//! published, prototyped and deprecated APIs are in the catalogue.

use crate::DevportalState;
use crate::scope::TenantScope;
use crate::types::{
    Api, ApiEndpointUrl, ApiInfo, ApiList, ApiOperation, ApiTier, ApiUrls, DocumentList, Rating, RatingList,
};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_http::auth::AnyRole;
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated, Pagination};
use tollgate_model::{Error, LifecycleState, Principal, Role, now_millis};
use tollgate_store::apis::{self, ApiFilter, StoredApi};
use tollgate_store::{documents, environments, ratings};

/// The lifecycle states the catalogue shows.
const LISTED: [LifecycleState; 3] = [
    LifecycleState::Published,
    LifecycleState::Prototyped,
    LifecycleState::Deprecated,
];

fn state_of(s: &StoredApi) -> LifecycleState {
    s.api.life_cycle_status.unwrap_or_default()
}

/// Whether `caller` (or an anonymous visitor) may see the API in the catalogue.
pub(crate) fn visible(s: &StoredApi, caller: Option<&Principal>) -> bool {
    if !LISTED.contains(&state_of(s)) {
        return false;
    }
    match s.api.visibility.as_str() {
        "PUBLIC" | "" => true,
        "RESTRICTED" => caller.is_some_and(|p| {
            p.has_role(Role::Admin)
                || s.api
                    .visible_roles
                    .iter()
                    .filter_map(|r| r.parse::<Role>().ok())
                    .any(|r| p.has_role(r))
        }),
        _ => caller.is_some_and(|p| p.has_role(Role::Admin)),
    }
}

/// An API of the scope's tenant the caller may see, or 404.
pub(crate) async fn load_visible(state: &DevportalState, scope: &TenantScope, id: &str) -> Result<StoredApi, ApiError> {
    match apis::get(&state.am, scope.tenant_id, id).await? {
        Some(s) if visible(&s, scope.caller()) => Ok(s),
        _ => Err(Error::not_found("API", id).into()),
    }
}

/// The gateway URLs of the environments an API is deployed to (and shown on the portal);
/// a tenant's APIs are served under its prefix (`/t/acme.com/…`).
async fn endpoint_urls(
    state: &DevportalState,
    scope: &TenantScope,
    s: &StoredApi,
) -> Result<Vec<ApiEndpointUrl>, ApiError> {
    let context = format!(
        "{}{}",
        scope.gateway_prefix(),
        tollgate_model::api::resolve_context(&s.api.context, &s.api.version)
    );
    let mut out = Vec::new();
    for d in apis::deployments(&state.am, &s.id).await? {
        if !d.display_on_devportal {
            continue;
        }
        let Some(env) = environments::find(&state.am, s.tenant_id, &d.environment).await? else {
            continue;
        };
        let vhost = env
            .vhosts
            .iter()
            .find(|v| Some(&v.host) == d.vhost.as_ref())
            .or_else(|| env.vhosts.first());
        let Some(v) = vhost else { continue };
        let prefix = v.http_context.clone().unwrap_or_default();
        let url =
            |scheme: &str, port: Option<u16>| port.map(|port| format!("{scheme}://{}:{port}{prefix}{context}", v.host));
        out.push(ApiEndpointUrl {
            environment_display_name: env.display_name.clone().unwrap_or_else(|| env.name.clone()),
            environment_name: env.name.clone(),
            environment_type: env.env_type.clone(),
            urls: ApiUrls {
                http: url("http", v.http_port),
                https: url("https", v.https_port),
            },
        });
    }
    Ok(out)
}

/// The `APIInfo` body of a stored API (also a subscription's `apiInfo`).
pub(crate) fn info(s: &StoredApi) -> ApiInfo {
    let a = &s.api;
    ApiInfo {
        id: s.id.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        context: a.context.clone(),
        version: a.version.clone(),
        api_type: a.api_type.clone(),
        provider: a.provider.clone().unwrap_or_default(),
        life_cycle_status: state_of(s),
        tags: a.tags.clone(),
        throttling_policies: a.policies.clone(),
        is_default_version: a.is_default_version,
        created_time: a
            .created_time
            .clone()
            .unwrap_or_else(|| tollgate_model::rfc3339(s.created_at)),
    }
}

/// Query of `GET /apis`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListQuery {
    query: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
}

/// `GET /apis`.
#[utoipa::path(get, path = "/apis", operation_id = "get_apis", tag = "APIs", summary = "The API catalogue: published, prototyped and deprecated APIs visible to the caller", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("query" = Option<String>, Query, description = "name:, context:, tag:, version:, status: terms, or a word matched against names"), ("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of the catalogue", body = ApiList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    scope: TenantScope,
    State(state): State<DevportalState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<ApiList>, ApiError> {
    let page = Pagination::from_query(q.offset, q.limit).validate()?;
    let mut filter = match q.query.as_deref() {
        Some(text) if !text.trim().is_empty() => ApiFilter::parse(text)?,
        _ => ApiFilter::default(),
    };
    let asked_for_states = !filter.states.is_empty();
    filter.states.retain(|s| LISTED.contains(s));
    if asked_for_states && filter.states.is_empty() {
        // Only unlisted states were asked for (status:CREATED): nothing to show.
        return Ok(axum::Json(ApiList {
            count: 0,
            list: Vec::new(),
            pagination: page.info(0),
        }));
    }
    if filter.states.is_empty() {
        filter.states = LISTED.to_vec();
    }
    // Visibility is per caller; restricted APIs the caller cannot see are left out of
    // the page (and of the total).
    let (rows, total) = apis::list(&state.am, scope.tenant_id, &filter, page.offset, page.limit).await?;
    let hidden = rows.iter().filter(|s| !visible(s, scope.caller())).count() as i64;
    let list: Vec<ApiInfo> = rows.iter().filter(|s| visible(s, scope.caller())).map(info).collect();
    Ok(axum::Json(ApiList {
        count: list.len(),
        list,
        pagination: page.info(total - hidden),
    }))
}

/// `GET /apis/{apiId}`.
#[utoipa::path(get, path = "/apis/{apiId}", operation_id = "get_api", tag = "APIs", summary = "An API, with its plans and gateway URLs", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("apiId" = String, Path, description = "API id")), responses((status = 200, description = "The API", body = Api), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    scope: TenantScope,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Api>, ApiError> {
    let s = load_visible(&state, &scope, &id).await?;
    let a = &s.api;
    let rates = ratings::list(&state.am, &id).await?;
    let avg = if rates.is_empty() {
        0.0
    } else {
        rates.iter().map(|r| r.rating as f64).sum::<f64>() / rates.len() as f64
    };
    let summary = info(&s);
    Ok(axum::Json(Api {
        id: summary.id,
        name: summary.name,
        description: summary.description,
        context: summary.context,
        version: summary.version,
        api_type: summary.api_type,
        provider: summary.provider,
        life_cycle_status: summary.life_cycle_status,
        tags: summary.tags,
        throttling_policies: summary.throttling_policies,
        is_default_version: summary.is_default_version,
        created_time: summary.created_time,
        tiers: a
            .policies
            .iter()
            .map(|p| ApiTier {
                tier_name: p.clone(),
                tier_plan: "FREE".into(),
            })
            .collect(),
        endpoint_urls: endpoint_urls(&state, &scope, &s).await?,
        authorization_header: a.authorization_header.clone().unwrap_or_else(|| "Authorization".into()),
        api_key_header: a.api_key_header.clone().unwrap_or_else(|| "apikey".into()),
        security_scheme: a.security_scheme.clone(),
        operations: a
            .operations
            .iter()
            .map(|o| ApiOperation {
                target: o.target.clone(),
                verb: o.verb.clone(),
                auth_type: o.auth_type.clone(),
                scopes: o.scopes.clone(),
            })
            .collect(),
        avg_rating: format!("{avg:.1}"),
        has_thumbnail: false,
    }))
}

/// `GET /apis/{apiId}/swagger`: the definition with `servers` set to the gateway URLs.
#[utoipa::path(get, path = "/apis/{apiId}/swagger", operation_id = "get_api_swagger", tag = "APIs", summary = "The API's OpenAPI definition, servers set to its gateway URLs", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("apiId" = String, Path, description = "API id")), responses((status = 200, description = "The definition", body = Object), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn swagger(
    scope: TenantScope,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = load_visible(&state, &scope, &id).await?;
    let Some(text) = &s.definition else {
        return Err(Error::not_found("API definition", &id).into());
    };
    let mut def: Value = serde_json::from_str(text).map_err(|e| Error::Internal(format!("stored definition: {e}")))?;
    let mut servers = Vec::new();
    for env in endpoint_urls(&state, &scope, &s).await? {
        for (scheme, url) in [("https", &env.urls.https), ("http", &env.urls.http)] {
            if let Some(url) = url {
                servers.push(json!({ "url": url, "description": format!("{} ({scheme})", env.environment_name) }));
            }
        }
    }
    if let Some(obj) = def.as_object_mut() {
        obj.insert("servers".into(), Value::Array(servers));
    }
    Ok(axum::Json(def).into_response())
}

/// `GET /apis/{apiId}/documents`.
#[utoipa::path(get, path = "/apis/{apiId}/documents", operation_id = "get_api_documents", tag = "API Documents", summary = "An API's documents", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("apiId" = String, Path, description = "API id"), ("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)")), responses((status = 200, description = "A page of the API's documents", body = DocumentList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn documents(
    scope: TenantScope,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Pagination>,
) -> Result<axum::Json<DocumentList>, ApiError> {
    let page = page.validate()?;
    let s = load_visible(&state, &scope, &id).await?;
    let (docs, total) = documents::list(&state.shared, s.tenant_id, &id, page.offset, page.limit).await?;
    Ok(axum::Json(DocumentList {
        count: docs.len(),
        list: docs,
        pagination: page.info(total),
    }))
}

/// `GET /apis/{apiId}/documents/{documentId}`.
#[utoipa::path(get, path = "/apis/{apiId}/documents/{documentId}", operation_id = "get_api_document", tag = "API Documents", summary = "One document", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("apiId" = String, Path, description = "API id"), ("documentId" = String, Path, description = "Document id")), responses((status = 200, description = "The document", body = tollgate_model::document::Document), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn document(
    scope: TenantScope,
    State(state): State<DevportalState>,
    Path((id, doc_id)): Path<(String, String)>,
) -> Result<axum::Json<tollgate_model::document::Document>, ApiError> {
    let s = load_visible(&state, &scope, &id).await?;
    let doc = documents::get(&state.shared, s.tenant_id, &id, &doc_id)
        .await?
        .ok_or_else(|| Error::not_found("document", &doc_id))?;
    Ok(axum::Json(doc))
}

/// `GET /apis/{apiId}/documents/{documentId}/content`.
#[utoipa::path(get, path = "/apis/{apiId}/documents/{documentId}/content", operation_id = "get_api_document_content", tag = "API Documents", summary = "A document's content (text, file, or a redirect to its URL)", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("apiId" = String, Path, description = "API id"), ("documentId" = String, Path, description = "Document id")), responses((status = 200, description = "The content"), (status = 303, description = "The document lives at a URL"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn document_content(
    scope: TenantScope,
    State(state): State<DevportalState>,
    Path((id, doc_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let s = load_visible(&state, &scope, &id).await?;
    let doc = documents::get(&state.shared, s.tenant_id, &id, &doc_id)
        .await?
        .ok_or_else(|| Error::not_found("document", &doc_id))?;
    tollgate_http::document_content::response(&state.shared, &doc, &doc_id).await
}

/// The `Rating` body of a stored rating.
fn rating_body(r: &ratings::RatingRow) -> Rating {
    Rating {
        rating_id: r.id.clone(),
        api_id: r.api_id.clone(),
        rated_by: r.username.clone(),
        rating: r.rating,
    }
}

/// `GET /apis/{apiId}/ratings`.
#[utoipa::path(get, path = "/apis/{apiId}/ratings", operation_id = "get_api_ratings", tag = "Ratings", summary = "An API's ratings", security((), ("basicAuth" = []), ("bearerAuth" = [])), params(("X-WSO2-Tenant" = Option<String>, Header, nullable = false, description = "The tenant domain an anonymous caller browses (default: the super tenant, carbon.super); a signed-in caller acts in their own tenant and may name only that one"), ("tenant" = Option<String>, Query, description = "The same as the X-WSO2-Tenant header, for links and web pages"), ("apiId" = String, Path, description = "API id")), responses((status = 200, description = "The API's ratings", body = RatingList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn ratings(
    scope: TenantScope,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
) -> Result<axum::Json<RatingList>, ApiError> {
    load_visible(&state, &scope, &id).await?;
    let list: Vec<Rating> = ratings::list(&state.am, &id).await?.iter().map(rating_body).collect();
    Ok(axum::Json(RatingList {
        count: list.len(),
        list,
    }))
}

/// The body of `PUT /apis/{apiId}/user-rating`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct RatingInput {
    rating: i64,
}

/// `PUT /apis/{apiId}/user-rating`: the caller's 1–5 rating, replacing an earlier one.
#[utoipa::path(put, path = "/apis/{apiId}/user-rating", operation_id = "put_api_user_rating", tag = "Ratings", summary = "Rate an API from 1 to 5 (replaces your earlier rating)", params(("apiId" = String, Path, description = "API id")), request_body = RatingInput, responses((status = 200, description = "The rating", body = Rating), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn rate(
    auth: Authenticated<AnyRole>,
    State(state): State<DevportalState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RatingInput>,
) -> Result<axum::Json<Rating>, ApiError> {
    let p = auth.principal();
    load_visible(&state, &TenantScope::of(p), &id).await?;
    if !(1..=5).contains(&input.rating) {
        return Err(Error::field("rating", "must be a whole number from 1 to 5").into());
    }
    let row = ratings::upsert(&state.am, &id, &p.username, input.rating as i32, now_millis()).await?;
    Ok(axum::Json(rating_body(&row)))
}
