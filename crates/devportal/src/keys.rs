//! An application's OAuth2 keys and API keys: `generate-keys` (a client of the resident
//! key manager; the secret is shown once and stored only as a hash), `map-keys` (a
//! client of a registered third-party key manager), `oauth-keys`, `regenerate-secret`
//! (which revokes every token of the old secret), `generate-token`, and API keys.

use crate::DevportalState;
use crate::applications::owned;
use crate::types::{
    ApiKey, ApplicationKey, ApplicationKeyList, ApplicationKeyReGenerateResponse, ApplicationToken, KeyProperties,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tollgate_events::control::KeyMappingChange;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_http::auth::{ApiKeyRole, AppManageRole, SubscriberRole};
use tollgate_http::{ApiError, ApiJson, Authenticated};
use tollgate_model::{Error, FieldError, Principal, now_millis};
use tollgate_store::keys::{self, KeyRow};
use tollgate_store::{Tx, events, key_managers};
use tollgate_tokens::{ClientAuth, IssueRequest, KeyType, MAX_TOKEN_VALIDITY, RESIDENT_KEY_MANAGER, random_token};

/// Grant types keys may support.
const GRANT_TYPES: &[&str] = &["client_credentials", "password", "refresh_token", "authorization_code"];

/// The `ApplicationKey` body of stored keys; `secret` only when it was just made.
pub(crate) fn key_body(k: &KeyRow, secret: Option<&str>) -> ApplicationKey {
    ApplicationKey {
        key_mapping_id: k.id.clone(),
        key_manager: k.key_manager.clone(),
        consumer_key: k.consumer_key.clone(),
        consumer_secret: secret.map(str::to_string),
        supported_grant_types: serde_json::from_str(&k.grant_types).unwrap_or_default(),
        callback_url: k.callback_url.clone(),
        key_state: "COMPLETED".into(),
        key_type: k.key_type.clone(),
        mode: k.mode.clone(),
        additional_properties: KeyProperties {
            scopes: serde_json::from_str(&k.scopes).unwrap_or_default(),
            validity_time: k.validity_seconds,
        },
    }
}

fn parse_key_type(field: &str, value: &str) -> Result<KeyType, ApiError> {
    value.parse().map_err(|e: String| Error::field(field, e).into())
}

/// `validityTime` is a string of seconds in the reference; numbers are accepted too.
fn parse_validity(v: &Option<Value>) -> Result<i64, FieldError> {
    let max = MAX_TOKEN_VALIDITY.as_secs() as i64;
    let bad = || {
        FieldError::new(
            "validityTime",
            format!("must be a whole number of seconds from 0 (the server's default) to {max}"),
        )
    };
    let ok = |n: &i64| (0..=max).contains(n);
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().filter(ok).ok_or_else(bad),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => s.parse::<i64>().ok().filter(ok).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

async fn key_event(tx: &mut Tx, caller: &Principal, k: &KeyRow) -> Result<(), ApiError> {
    events::append(
        tx,
        &NewEvent::new(
            caller.tenant_id,
            None,
            ControlEvent::KeyMappingUpserted(KeyMappingChange {
                id: k.id.clone(),
                application_id: k.application_id.clone(),
                consumer_key: k.consumer_key.clone(),
                key_type: k.key_type.clone(),
                key_manager: k.key_manager.clone(),
            }),
        ),
    )
    .await?;
    Ok(())
}

/// Stores new keys with their event, unless the application already has keys of that
/// type from that key manager, or the consumer key is taken (409 either way).
async fn store_keys(state: &DevportalState, caller: &Principal, row: &KeyRow) -> Result<(), ApiError> {
    let mut tx = state.am.begin().await?;
    if keys::exists_in(&mut tx, &row.application_id, &row.key_type, &row.key_manager).await? {
        return Err(keys_conflict(&row.key_type, &row.key_manager));
    }
    keys::insert(&mut tx, caller.tenant_id, row, now_millis())
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApiError::from(Error::Conflict(format!(
                    "consumer key `{}` of `{}` is already used by an application",
                    row.consumer_key, row.key_manager
                )))
            } else {
                Error::from(e).into()
            }
        })?;
    key_event(&mut tx, caller, row).await?;
    tx.commit().await?;
    Ok(())
}

fn keys_conflict(key_type: &str, key_manager: &str) -> ApiError {
    Error::Conflict(format!(
        "the application already has {key_type} keys from `{key_manager}`; use them, or regenerate the secret"
    ))
    .into()
}

/// The body of `POST /applications/{id}/generate-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationKeyGenerateRequest)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateKeys {
    key_type: String,
    #[serde(default)]
    key_manager: Option<String>,
    grant_types_to_be_supported: Vec<String>,
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    validity_time: Option<Value>,
}

#[utoipa::path(post, path = "/applications/{applicationId}/generate-keys", operation_id = "post_application_generate_keys", tag = "Application Keys", summary = "Generate OAuth2 keys; the consumer secret is shown only in this answer", params(("applicationId" = String, Path, description = "Application id")), request_body = GenerateKeys, responses((status = 200, description = "The keys, with the consumer secret (shown only here)", body = ApplicationKey), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn generate(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<GenerateKeys>,
) -> Result<axum::Json<ApplicationKey>, ApiError> {
    let p = auth.principal();
    owned(&state, p, &app_id).await?;
    let mut errors = Vec::new();
    let key_type = match req.key_type.parse::<KeyType>() {
        Ok(k) => Some(k),
        Err(e) => {
            errors.push(FieldError::new("keyType", e));
            None
        }
    };
    let key_manager = req.key_manager.clone().unwrap_or_else(|| RESIDENT_KEY_MANAGER.into());
    if key_manager != RESIDENT_KEY_MANAGER {
        errors.push(FieldError::new(
            "keyManager",
            format!("keys can be generated only by `{RESIDENT_KEY_MANAGER}`; map an existing client of another key manager with map-keys"),
        ));
    }
    if req.grant_types_to_be_supported.is_empty() {
        errors.push(FieldError::new(
            "grantTypesToBeSupported",
            "name at least one grant type",
        ));
    }
    for g in &req.grant_types_to_be_supported {
        if !GRANT_TYPES.contains(&g.as_str()) {
            errors.push(FieldError::new(
                "grantTypesToBeSupported",
                format!("`{g}` is not supported; use {}", GRANT_TYPES.join(", ")),
            ));
        }
    }
    let callback = req.callback_url.clone().filter(|c| !c.is_empty());
    if let Some(cb) = &callback
        && (!(cb.starts_with("https://") || cb.starts_with("http://")) || cb.contains('#'))
    {
        errors.push(FieldError::new(
            "callbackUrl",
            "must be an http:// or https:// URL without a #fragment",
        ));
    }
    if callback.is_none()
        && req
            .grant_types_to_be_supported
            .iter()
            .any(|g| g == "authorization_code")
    {
        errors.push(FieldError::new(
            "callbackUrl",
            "is required for the authorization_code grant",
        ));
    }
    for s in &req.scopes {
        if s.is_empty() || s.contains(char::is_whitespace) {
            errors.push(FieldError::new("scopes", format!("`{s}` is not a valid scope name")));
        }
    }
    let validity = parse_validity(&req.validity_time)
        .map_err(|e| errors.push(e))
        .unwrap_or(0);
    Error::check_fields(errors)?;
    let key_type = key_type.ok_or_else(|| Error::field("keyType", "is required"))?;
    let secret = random_token(32)?;
    let row = KeyRow {
        id: uuid::Uuid::now_v7().to_string(),
        application_id: app_id.clone(),
        key_type: key_type.as_str().into(),
        key_manager,
        mode: "CREATED".into(),
        consumer_key: random_token(24)?,
        secret_hash: Some(state.tokens.hash(&secret)),
        grant_types: json!(req.grant_types_to_be_supported).to_string(),
        callback_url: callback,
        scopes: json!(req.scopes).to_string(),
        validity_seconds: validity,
    };
    store_keys(&state, p, &row).await?;
    tracing::info!(application = %app_id, key_type = %row.key_type, consumer_key = %row.consumer_key, "Application keys generated.");
    Ok(axum::Json(key_body(&row, Some(&secret))))
}

/// The body of `POST /applications/{id}/map-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationKeyMappingRequest)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MapKeys {
    consumer_key: String,
    #[serde(default)]
    consumer_secret: Option<String>,
    #[serde(default)]
    key_manager: Option<String>,
    key_type: String,
}

#[utoipa::path(post, path = "/applications/{applicationId}/map-keys", operation_id = "post_application_map_keys", tag = "Application Keys", summary = "Map an existing client of a third-party key manager", params(("applicationId" = String, Path, description = "Application id")), request_body = MapKeys, responses((status = 200, description = "The mapped keys", body = ApplicationKey), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn map(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<MapKeys>,
) -> Result<axum::Json<ApplicationKey>, ApiError> {
    let p = auth.principal();
    owned(&state, p, &app_id).await?;
    let mut errors = Vec::new();
    if req.consumer_key.trim().is_empty() || req.consumer_key.len() > 255 {
        errors.push(FieldError::new("consumerKey", "is required (at most 255 characters)"));
    }
    let key_type = req
        .key_type
        .parse::<KeyType>()
        .map_err(|e| errors.push(FieldError::new("keyType", e)))
        .ok();
    let km_name = req.key_manager.clone().unwrap_or_default();
    let km = if km_name.is_empty() || km_name == RESIDENT_KEY_MANAGER {
        errors.push(FieldError::new(
            "keyManager",
            "name a registered third-party key manager; the resident key manager's keys come from generate-keys",
        ));
        None
    } else {
        match key_managers::find(&state.am, p.tenant_id, &km_name).await? {
            Some(km) if km.enabled => Some(km),
            Some(_) => {
                errors.push(FieldError::new("keyManager", format!("`{km_name}` is disabled")));
                None
            }
            None => {
                errors.push(FieldError::new(
                    "keyManager",
                    format!("no key manager named `{km_name}`"),
                ));
                None
            }
        }
    };
    Error::check_fields(errors)?;
    let (Some(km), Some(key_type)) = (km, key_type) else {
        return Err(Error::field("keyManager", "is required").into());
    };
    let row = KeyRow {
        id: uuid::Uuid::now_v7().to_string(),
        application_id: app_id.clone(),
        key_type: key_type.as_str().into(),
        key_manager: km.name.clone(),
        mode: "MAPPED".into(),
        consumer_key: req.consumer_key.clone(),
        secret_hash: req
            .consumer_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| state.tokens.hash(s)),
        grant_types: "[]".into(),
        callback_url: None,
        scopes: "[]".into(),
        validity_seconds: 0,
    };
    store_keys(&state, p, &row).await?;
    Ok(axum::Json(key_body(&row, None)))
}

/// `GET /applications/{id}/oauth-keys`.
#[utoipa::path(get, path = "/applications/{applicationId}/oauth-keys", operation_id = "get_application_oauth_keys", tag = "Application Keys", summary = "An application's keys", params(("applicationId" = String, Path, description = "Application id")), responses((status = 200, description = "The application's keys (never their secrets)", body = ApplicationKeyList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<SubscriberRole>,
    State(state): State<DevportalState>,
    Path(app_id): Path<String>,
) -> Result<axum::Json<ApplicationKeyList>, ApiError> {
    owned(&state, auth.principal(), &app_id).await?;
    let list: Vec<ApplicationKey> = keys::list_for_application(&state.am, &app_id)
        .await?
        .iter()
        .map(|k| key_body(k, None))
        .collect();
    Ok(axum::Json(ApplicationKeyList {
        count: list.len(),
        list,
    }))
}

async fn owned_key(state: &DevportalState, caller: &Principal, app_id: &str, id: &str) -> Result<KeyRow, ApiError> {
    owned(state, caller, app_id).await?;
    keys::get(&state.am, app_id, id)
        .await?
        .ok_or_else(|| Error::not_found("key mapping", id).into())
}

/// `GET /applications/{id}/oauth-keys/{keyMappingId}`.
#[utoipa::path(get, path = "/applications/{applicationId}/oauth-keys/{keyMappingId}", operation_id = "get_application_oauth_key", tag = "Application Keys", summary = "One key mapping", params(("applicationId" = String, Path, description = "Application id"), ("keyMappingId" = String, Path, description = "Key mapping id")), responses((status = 200, description = "The keys (never their secret)", body = ApplicationKey), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<SubscriberRole>,
    State(state): State<DevportalState>,
    Path((app_id, id)): Path<(String, String)>,
) -> Result<axum::Json<ApplicationKey>, ApiError> {
    let k = owned_key(&state, auth.principal(), &app_id, &id).await?;
    Ok(axum::Json(key_body(&k, None)))
}

/// `POST /applications/{id}/oauth-keys/{keyMappingId}/regenerate-secret`: a new secret,
/// shown once; the old one stops working and every token issued with these keys is
/// revoked.
#[utoipa::path(post, path = "/applications/{applicationId}/oauth-keys/{keyMappingId}/regenerate-secret", operation_id = "post_application_regenerate_secret", tag = "Application Keys", summary = "A new consumer secret; every token of the old one is revoked", params(("applicationId" = String, Path, description = "Application id"), ("keyMappingId" = String, Path, description = "Key mapping id")), responses((status = 200, description = "The new secret (shown only here)", body = ApplicationKeyReGenerateResponse), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn regenerate_secret(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    Path((app_id, id)): Path<(String, String)>,
) -> Result<axum::Json<ApplicationKeyReGenerateResponse>, ApiError> {
    let p = auth.principal();
    let k = owned_key(&state, p, &app_id, &id).await?;
    if k.mode != "CREATED" {
        return Err(Error::BadRequest(format!(
            "keys mapped from `{}` have their secret managed there",
            k.key_manager
        ))
        .into());
    }
    let secret = random_token(32)?;
    let mut tx = state.am.begin().await?;
    if keys::set_secret_hash(&mut tx, &id, &state.tokens.hash(&secret), now_millis()).await? == 0 {
        return Err(Error::not_found("key mapping", &id).into());
    }
    state
        .tokens
        .revoke_all_for_client(&mut tx, p.tenant_id, &k.consumer_key)
        .await?;
    tx.commit().await?;
    Ok(axum::Json(ApplicationKeyReGenerateResponse {
        consumer_key: k.consumer_key,
        consumer_secret: secret,
    }))
}

/// The body of `POST /applications/{id}/oauth-keys/{keyMappingId}/generate-token`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationTokenGenerateRequest)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateToken {
    consumer_secret: String,
    #[serde(default)]
    validity_period: Option<i64>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    revoke_token: Option<String>,
    #[serde(default)]
    grant_type: Option<String>,
}

#[utoipa::path(post, path = "/applications/{applicationId}/oauth-keys/{keyMappingId}/generate-token", operation_id = "post_application_generate_token", tag = "Application Keys", summary = "A client-credentials access token", params(("applicationId" = String, Path, description = "Application id"), ("keyMappingId" = String, Path, description = "Key mapping id")), request_body = GenerateToken, responses((status = 200, description = "The token", body = ApplicationToken), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn generate_token(
    auth: Authenticated<AppManageRole>,
    State(state): State<DevportalState>,
    Path((app_id, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<GenerateToken>,
) -> Result<axum::Json<ApplicationToken>, ApiError> {
    let p = auth.principal();
    let k = owned_key(&state, p, &app_id, &id).await?;
    let mut errors = Vec::new();
    if let Some(g) = &req.grant_type
        && g != "CLIENT_CREDENTIALS"
    {
        errors.push(FieldError::new("grantType", "only CLIENT_CREDENTIALS is supported"));
    }
    if let Some(v) = req.validity_period
        && !(0..=MAX_TOKEN_VALIDITY.as_secs() as i64).contains(&v)
    {
        errors.push(FieldError::new(
            "validityPeriod",
            format!("must be 0 to {} seconds", MAX_TOKEN_VALIDITY.as_secs()),
        ));
    }
    if k.mode != "CREATED" {
        errors.push(FieldError::new(
            "keyMappingId",
            format!(
                "tokens for keys mapped from `{}` come from that key manager",
                k.key_manager
            ),
        ));
    }
    Error::check_fields(errors)?;
    let client = state
        .tokens
        .authenticate_client(&ClientAuth {
            client_id: k.consumer_key.clone(),
            client_secret: req.consumer_secret.clone(),
        })
        .await
        .map_err(|_| Error::field("consumerSecret", "does not match these keys"))?;
    let tenant = p.tenant_id;
    if let Some(old) = req.revoke_token.as_deref().filter(|t| !t.is_empty()) {
        state
            .tokens
            .revoke(&client, old)
            .await
            .map_err(|e| ApiError::from(Error::field("revokeToken", e.error_description)))?;
    }
    // A bearer caller cannot mint a token broader than its own.
    if let Some(held) = &p.scopes
        && let Some(extra) = req
            .scopes
            .iter()
            .find(|s| !tollgate_tokens::scopes::OPEN_SCOPES.contains(&s.as_str()) && !held.contains(s))
    {
        return Err(Error::field(
            "scopes",
            format!("`{extra}` is not among the scopes of the token making this request"),
        )
        .into());
    }
    let granted = tollgate_tokens::scopes::grant(&state.am, tenant, &p.roles, &p.custom_roles, &req.scopes.join(" "))
        .await
        .map_err(|e| Error::field("scopes", e.error_description))?;
    let validity = req
        .validity_period
        .filter(|v| *v > 0)
        .map(|v| Duration::from_secs(v as u64));
    // The subject names the owner as they sign in (`alice@acme.com`), so that the token
    // resolves to their tenant wherever it is checked.
    let subject = p.qualified_name();
    let issued = state
        .tokens
        .issue(IssueRequest {
            client: &client,
            username: &subject,
            scopes: &granted,
            grant_type: "client_credentials",
            with_refresh_token: false,
            validity,
            nonce: None,
        })
        .await?;
    Ok(axum::Json(ApplicationToken {
        access_token: issued.access_token,
        token_scopes: granted,
        validity_time: issued.expires_in,
    }))
}

/// The optional body of `POST /applications/{id}/api-keys/{keyType}/generate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = APIKeyGenerateRequest)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GenerateApiKey {
    key_name: Option<String>,
    validity_period: Option<i64>,
}

#[utoipa::path(post, path = "/applications/{applicationId}/api-keys/{keyType}/generate", operation_id = "post_application_api_key_generate", tag = "API Keys", summary = "A signed API key bound to the application", params(("applicationId" = String, Path, description = "Application id"), ("keyType" = String, Path, description = "PRODUCTION or SANDBOX")), request_body(content = Option<GenerateApiKey>, description = "Optional"), responses((status = 200, description = "The key (shown only here)", body = ApiKey), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn generate_api_key(
    auth: Authenticated<ApiKeyRole>,
    State(state): State<DevportalState>,
    Path((app_id, key_type)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Result<axum::Json<ApiKey>, ApiError> {
    let p = auth.principal();
    let app = owned(&state, p, &app_id).await?;
    let key_type = parse_key_type("keyType", &key_type)?;
    // The body is optional, as in the reference.
    let (parts, bytes) = tollgate_http::error::read_body(request).await?;
    let req: GenerateApiKey = if bytes.iter().all(u8::is_ascii_whitespace) {
        GenerateApiKey::default()
    } else {
        tollgate_http::error::parse_body(&parts, &bytes)?
    };
    let mut errors = Vec::new();
    let name = req
        .key_name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", app.app.name, key_type.as_str()));
    if name.chars().count() > 100 || name.trim().is_empty() {
        errors.push(FieldError::new("keyName", "must be 1 to 100 characters"));
    }
    let max = MAX_TOKEN_VALIDITY.as_secs() as i64;
    let validity = match req.validity_period {
        None | Some(-1) | Some(0) => None,
        Some(v) if v > 0 && v <= max => Some(Duration::from_secs(v as u64)),
        Some(_) => {
            errors.push(FieldError::new(
                "validityPeriod",
                format!("must be between 1 and {max} seconds, or -1 for the longest (one year)"),
            ));
            None
        }
    };
    Error::check_fields(errors)?;
    let mut tx = state.am.begin().await?;
    let (key, row) = state
        .tokens
        .issue_api_key(&mut tx, p.tenant_id, &app.app, key_type, &name, validity)
        .await?;
    tx.commit().await?;
    let seconds = row.expires_at.map(|e| (e - row.issued_at) / 1000).unwrap_or(-1);
    Ok(axum::Json(ApiKey {
        key_name: name,
        apikey: key,
        validity_period: seconds,
    }))
}

/// The body of `POST /applications/{id}/api-keys/{keyType}/revoke`: `{"apikey": …}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = APIKeyRevokeRequest)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevokeApiKey {
    apikey: String,
}

#[utoipa::path(post, path = "/applications/{applicationId}/api-keys/{keyType}/revoke", operation_id = "post_application_api_key_revoke", tag = "API Keys", summary = "Revoke an API key", params(("applicationId" = String, Path, description = "Application id"), ("keyType" = String, Path, description = "PRODUCTION or SANDBOX")), request_body = RevokeApiKey, responses((status = 200, description = "Revoked"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn revoke_api_key(
    auth: Authenticated<ApiKeyRole>,
    State(state): State<DevportalState>,
    Path((app_id, key_type)): Path<(String, String)>,
    ApiJson(req): ApiJson<RevokeApiKey>,
) -> Result<Response, ApiError> {
    let p = auth.principal();
    owned(&state, p, &app_id).await?;
    let key_type = parse_key_type("keyType", &key_type)?;
    if req.apikey.trim().is_empty() {
        return Err(Error::field("apikey", "is required").into());
    }
    let mut tx = state.am.begin().await?;
    let found = state
        .tokens
        .revoke_api_key(&mut tx, p.tenant_id, &app_id, key_type, &req.apikey)
        .await?;
    if !found {
        return Err(Error::field("apikey", format!("is not a {key_type} API key of this application")).into());
    }
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}
