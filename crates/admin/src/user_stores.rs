//! `GET/POST /user-stores`, `GET/PUT/DELETE /user-stores/{userStoreId}` and
//! `POST /user-stores/test-connection` (our extension): the directories a tenant brings.
//! Each is a secondary store of the caller's tenant only; its users sign in as
//! `DOMAIN/alice@tenant`. The bind password is sealed at rest and never answered
//! (decision 021).

use crate::AdminState;
use crate::types::{DirectoryMembership, DirectoryType, UserStore, UserStoreConnection, UserStoreList};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::time::Duration;
use tollgate_config::{GroupMembership, UserStoreConfig, UserStoreType, is_store_domain};
use tollgate_http::auth::AdminRole;
use tollgate_http::{ApiError, ApiJson, Authenticated};
use tollgate_model::FieldError;
use tollgate_model::{Error, Principal, TenantId, now_millis};
use tollgate_sealing::SealingKey;
use tollgate_store::user_stores::{self, UserStoreRow};
use tollgate_userstore::LdapStore;
use tollgate_userstore::registered::{self, SealedSettings};

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/user-stores", get(list).post(create))
        .route("/user-stores/test-connection", post(test_connection))
        .route("/user-stores/{user_store_id}", get(get_one).put(update).delete(delete))
}

/// Longest domain accepted.
const MAX_DOMAIN_LEN: usize = 64;
/// Most URLs per store.
const MAX_URLS: usize = 8;

fn not_found(id: &str) -> ApiError {
    Error::not_found("user store", id).into()
}

fn sealing_key(state: &AdminState) -> Result<&SealingKey, ApiError> {
    state.authenticator.directories().sealing_key().ok_or_else(|| {
        Error::Unavailable("this node keeps no registered directories; it has no secrets key".into()).into()
    })
}

/// The settings `body` describes, checked: every problem as a field error, by its name in
/// the body.
fn settings_of(body: &UserStore) -> Result<UserStoreConfig, ApiError> {
    let mut errors = Vec::new();
    let domain = body.domain.trim();
    if domain.is_empty() {
        errors.push(FieldError::new("domain", "required; users sign in as DOMAIN/name"));
    } else if !is_store_domain(domain) || domain.len() > MAX_DOMAIN_LEN {
        errors.push(FieldError::new(
            "domain",
            format!("may hold only letters, digits, `-`, `_` and `.`, at most {MAX_DOMAIN_LEN}"),
        ));
    }
    if body.urls.len() > MAX_URLS {
        errors.push(FieldError::new("urls", format!("at most {MAX_URLS} URLs")));
    }
    let seconds =
        |field: &'static str, value: Option<u64>, min: u64, max: u64, errors: &mut Vec<FieldError>| match value {
            Some(v) if !(min..=max).contains(&v) => {
                errors.push(FieldError::new(field, format!("must be from {min} to {max}")));
                None
            }
            v => v.map(Duration::from_secs),
        };
    let defaults = UserStoreConfig::default();
    let config = UserStoreConfig {
        domain: domain.to_ascii_uppercase(),
        kind: match body.kind {
            DirectoryType::Ldap => UserStoreType::Ldap,
            DirectoryType::ActiveDirectory => UserStoreType::ActiveDirectory,
        },
        urls: body.urls.clone(),
        start_tls: body.start_tls,
        bind_dn: body.bind_dn.clone(),
        bind_password: None,
        bind_password_env: None,
        bind_password_file: None,
        user_search_base: body.user_search_base.clone(),
        user_filter: body.user_filter.clone(),
        group_search_base: body.group_search_base.clone().unwrap_or_default(),
        group_filter: body.group_filter.clone(),
        membership: body.membership.map(|m| match m {
            DirectoryMembership::Member => GroupMembership::Member,
            DirectoryMembership::UniqueMember => GroupMembership::UniqueMember,
            DirectoryMembership::MemberOf => GroupMembership::MemberOf,
        }),
        group_name_attribute: body
            .group_name_attribute
            .clone()
            .unwrap_or(defaults.group_name_attribute),
        email_attribute: body.email_attribute.clone().unwrap_or(defaults.email_attribute),
        read_only: body.read_only.unwrap_or(defaults.read_only),
        pool_size: body.pool_size.unwrap_or(defaults.pool_size),
        connect_timeout: seconds(
            "connectTimeoutSeconds",
            body.connect_timeout_seconds,
            1,
            60,
            &mut errors,
        )
        .unwrap_or(defaults.connect_timeout),
        operation_timeout: seconds(
            "operationTimeoutSeconds",
            body.operation_timeout_seconds,
            1,
            60,
            &mut errors,
        )
        .unwrap_or(defaults.operation_timeout),
        cache_ttl: seconds("cacheTtlSeconds", body.cache_ttl_seconds, 0, 86_400, &mut errors)
            .unwrap_or(defaults.cache_ttl),
        role_mapping: body.role_mapping.clone(),
    };
    if config.pool_size > 32 {
        errors.push(FieldError::new("poolSize", "must be from 1 to 32"));
    }
    if let Err((field, message)) = config.check(&format!("the store `{}`", config.domain)) {
        errors.push(FieldError::new(camel_case(field), message));
    }
    Error::check_fields(errors)?;
    Ok(config)
}

/// A configuration key's name in the REST body (`user_search_base` → `userSearchBase`).
fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The store as the API answers it: every setting with its value, never the password.
fn body_of(id: &str, config: &UserStoreConfig) -> UserStore {
    UserStore {
        id: Some(id.to_string()),
        domain: config.domain.clone(),
        kind: match config.kind {
            UserStoreType::ActiveDirectory => DirectoryType::ActiveDirectory,
            _ => DirectoryType::Ldap,
        },
        urls: config.urls.clone(),
        start_tls: config.start_tls,
        bind_dn: config.bind_dn.clone(),
        bind_password: None,
        user_search_base: config.user_search_base.clone(),
        user_filter: Some(config.user_filter().to_string()),
        group_search_base: Some(config.group_search_base().to_string()),
        group_filter: (config.membership() != GroupMembership::MemberOf).then(|| config.group_filter()),
        membership: Some(match config.membership() {
            GroupMembership::Member => DirectoryMembership::Member,
            GroupMembership::UniqueMember => DirectoryMembership::UniqueMember,
            GroupMembership::MemberOf => DirectoryMembership::MemberOf,
        }),
        group_name_attribute: Some(config.group_name_attribute.clone()),
        email_attribute: Some(config.email_attribute.clone()),
        read_only: Some(config.read_only),
        pool_size: Some(config.pool_size),
        connect_timeout_seconds: Some(config.connect_timeout.as_secs()),
        operation_timeout_seconds: Some(config.operation_timeout.as_secs()),
        cache_ttl_seconds: Some(config.cache_ttl.as_secs()),
        role_mapping: config.role_mapping.clone(),
    }
}

fn sealed_of(row: &UserStoreRow) -> SealedSettings {
    SealedSettings {
        settings: row.settings.clone(),
        bind_password_sealed: row.bind_password_sealed.clone(),
    }
}

fn answer(row: &UserStoreRow) -> Result<UserStore, ApiError> {
    let config = registered::settings(&sealed_of(row)).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(body_of(&row.id, &config))
}

/// The password a write brings: non-empty, and present when `required`.
fn password_of(body: &UserStore, required: bool) -> Result<Option<&str>, ApiError> {
    match body.bind_password.as_ref().map(|p| p.expose()) {
        Some("") => Err(Error::field("bindPassword", "must not be empty; an anonymous bind is refused").into()),
        Some(p) => Ok(Some(p)),
        None if required => Err(Error::field("bindPassword", "required to register a store").into()),
        None => Ok(None),
    }
}

/// Refuses, for a tenant's administrator, URLs that are not a plain `ldap://host[:port]`
/// or whose host resolves to this host, a link-local address (cloud metadata) or an
/// unspecified one, unless `[admin] tenant_directory_internal_addresses` allows it. The
/// store checks again before each connection.
async fn check_addresses(state: &AdminState, caller: &Principal, config: &UserStoreConfig) -> Result<(), ApiError> {
    if !state.authenticator.directories().refuses_internal(caller.tenant_id) {
        return Ok(());
    }
    for url in &config.urls {
        tollgate_userstore::address::refuse_internal(url)
            .await
            .map_err(|why| Error::field("urls", why))?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/user-stores", operation_id = "get_user_stores", tag = "User Stores", summary = "List the directories of the caller's tenant", responses((status = 200, description = "The directories", body = UserStoreList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
) -> Result<axum::Json<UserStoreList>, ApiError> {
    let rows = user_stores::list(&state.shared, auth.principal().tenant_id).await?;
    let list = rows.iter().map(answer).collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(UserStoreList {
        count: list.len(),
        list,
    }))
}

#[utoipa::path(get, path = "/user-stores/{userStoreId}", operation_id = "get_user_store", tag = "User Stores", summary = "Get a directory", params(("userStoreId" = String, Path, description = "User store id")), responses((status = 200, description = "The directory", body = UserStore), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_one(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<axum::Json<UserStore>, ApiError> {
    let row = user_stores::find(&state.shared, auth.principal().tenant_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(answer(&row)?))
}

/// After a change: this node reads the store again at once and trusts no credential it
/// verified with the old one (other nodes follow within
/// [`tollgate_http::directories::REGISTERED_RECHECK`] and their credential cache's time).
fn forget(state: &AdminState, tenant: TenantId) {
    state.authenticator.directories().forget(tenant);
    state.authenticator.forget_tenant(tenant);
}

fn conflict(domain: &str) -> ApiError {
    Error::Conflict(format!("the tenant already has a user store `{domain}`")).into()
}

#[utoipa::path(post, path = "/user-stores", operation_id = "post_user_stores", tag = "User Stores", summary = "Register a directory for the caller's tenant", request_body = UserStore, responses((status = 201, description = "The directory", body = UserStore), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<UserStore>,
) -> Result<Response, ApiError> {
    let caller = auth.principal();
    let config = settings_of(&body)?;
    let password = password_of(&body, true)?.unwrap_or_default();
    check_addresses(&state, caller, &config).await?;
    if caller.tenant_id == TenantId::DEFAULT && state.authenticator.directories().configured_domain(&config.domain) {
        return Err(conflict(&config.domain));
    }
    let sealed = registered::seal(&config, password, sealing_key(&state)?, &caller.tenant_id.to_string())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let row = UserStoreRow {
        id: uuid::Uuid::now_v7().to_string(),
        domain: config.domain.clone(),
        settings: sealed.settings,
        bind_password_sealed: sealed.bind_password_sealed,
        updated_at: now_millis(),
    };
    let mut tx = state.shared.begin().await?;
    user_stores::insert(&mut tx, caller.tenant_id, &row)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                conflict(&config.domain)
            } else {
                Error::from(e).into()
            }
        })?;
    tx.commit().await?;
    forget(&state, caller.tenant_id);
    tracing::info!(domain = %row.domain, tenant = %caller.tenant_domain, by = %caller.username, "User store registered.");
    let location = format!("{}/user-stores/{}", crate::BASE_PATH, row.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body_of(&row.id, &config)),
    )
        .into_response())
}

#[utoipa::path(put, path = "/user-stores/{userStoreId}", operation_id = "put_user_store", tag = "User Stores", summary = "Change a directory (not its domain); the bind password is kept when absent", params(("userStoreId" = String, Path, description = "User store id")), request_body = UserStore, responses((status = 200, description = "The directory", body = UserStore), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserStore>,
) -> Result<axum::Json<UserStore>, ApiError> {
    let caller = auth.principal();
    let current = user_stores::find(&state.shared, caller.tenant_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let config = settings_of(&body)?;
    if config.domain != current.domain {
        return Err(Error::field("domain", "cannot be changed; its users sign in by it").into());
    }
    let key = sealing_key(&state)?;
    let before = registered::settings(&sealed_of(&current)).map_err(|e| Error::Internal(e.to_string()))?;
    let moved = before.urls != config.urls || before.bind_dn != config.bind_dn || before.start_tls != config.start_tls;
    let password = match password_of(&body, false)? {
        Some(p) => p.to_string(),
        // The stored password is only ever sent where it was given for.
        None if moved => {
            return Err(Error::field(
                "bindPassword",
                "required when urls, bindDn or startTls change: the stored password is sent only to the directory it was given for",
            )
            .into());
        }
        None => registered::bind_password(&sealed_of(&current), key, &caller.tenant_id.to_string())
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .expose()
            .to_string(),
    };
    check_addresses(&state, caller, &config).await?;
    let sealed = registered::seal(&config, &password, key, &caller.tenant_id.to_string())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let row = UserStoreRow {
        id: current.id.clone(),
        domain: current.domain.clone(),
        settings: sealed.settings,
        bind_password_sealed: sealed.bind_password_sealed,
        updated_at: user_stores::next_version(current.updated_at, now_millis()),
    };
    let mut tx = state.shared.begin().await?;
    if user_stores::update(&mut tx, caller.tenant_id, &row).await? == 0 {
        return Err(not_found(&id));
    }
    tx.commit().await?;
    forget(&state, caller.tenant_id);
    tracing::info!(domain = %row.domain, tenant = %caller.tenant_domain, by = %caller.username, "User store changed.");
    Ok(axum::Json(body_of(&row.id, &config)))
}

#[utoipa::path(delete, path = "/user-stores/{userStoreId}", operation_id = "delete_user_store", tag = "User Stores", summary = "Remove a directory: its users can no longer sign in, and their tokens stop working", params(("userStoreId" = String, Path, description = "User store id")), responses((status = 200, description = "Removed"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = auth.principal();
    let row = user_stores::find(&state.shared, caller.tenant_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let mut tx = state.shared.begin().await?;
    if user_stores::delete(&mut tx, caller.tenant_id, &row.id).await? == 0 {
        return Err(not_found(&id));
    }
    tx.commit().await?;
    forget(&state, caller.tenant_id);
    tracing::info!(domain = %row.domain, tenant = %caller.tenant_domain, by = %caller.username, "User store removed.");
    Ok(StatusCode::OK.into_response())
}

#[utoipa::path(post, path = "/user-stores/test-connection", operation_id = "post_user_store_test_connection", tag = "User Stores", summary = "Try a directory's settings without registering it: connect, bind as the service account, read the search bases", request_body = UserStore, responses((status = 200, description = "What was found", body = UserStoreConnection), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn test_connection(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<UserStore>,
) -> Result<axum::Json<UserStoreConnection>, ApiError> {
    let mut config = settings_of(&body)?;
    let password = password_of(&body, true)?.unwrap_or_default();
    check_addresses(&state, auth.principal(), &config).await?;
    config.bind_password = Some(tollgate_config::Secret::new(password));
    let store = LdapStore::new(&config).map_err(|e| Error::field("bindPassword", e.to_string()))?;
    let outcome = match store.test_connection().await {
        Ok(()) => UserStoreConnection {
            connection: true,
            message: format!("connected, bound as `{}` and found the search bases", config.bind_dn),
        },
        Err(e) => UserStoreConnection {
            connection: false,
            message: e.to_string(),
        },
    };
    Ok(axum::Json(outcome))
}
